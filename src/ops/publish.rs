//! `fleetpin publish`: the reference at a commit, pushed to the registry the manifest names
//! (`reference: {repository}`) for agents that follow it there (`pull: oci`). Tagged with the
//! commit id, the branch HEAD is on (by `oci::tag_for_branch`) and any `--tag`. Rollback and
//! promote call it too, so a pin commit in such an environment reaches the agents.

use crate::manifest::Loaded;
use crate::oci::{self, Registry, artifact};
use crate::ops::error::{OpError, OpResult};
use serde::Serialize;
use std::path::{Component, Path};

#[derive(Debug, Clone, Default)]
pub struct PublishInput {
    /// The commit to publish (a revision); HEAD when `None`, and then the branch is tagged too.
    pub rev: Option<String>,
    /// More tags (`--tag`).
    pub tags: Vec<String>,
    /// First-parent commits carried for the agents' ancestry check.
    pub history: usize,
}

/// What was published, where.
#[derive(Debug, Clone, Serialize)]
pub struct Published {
    /// `REGISTRY/PATH`.
    pub repository: String,
    /// The artifact's manifest digest: what each tag now points to.
    pub digest: String,
    pub commit: String,
    pub tags: Vec<String>,
    /// The files carried besides the manifest (SOPS files, still encrypted), repository paths.
    pub files: Vec<String>,
    /// Git objects carried, and the artifact's size (config and layer).
    pub objects: usize,
    pub bytes: usize,
}

/// `path` (relative to the manifest's directory `dir`, itself relative to the repository's
/// root) as a path from the repository's root; `None` when it leaves the repository.
fn in_repository(dir: &Path, path: &str) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in dir.join(path).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(parts.join("/"))
}

/// Publishes the reference of the manifest at `manifest` (a file in a git work tree).
pub async fn run(manifest: &Path, input: &PublishInput) -> OpResult<Published> {
    let rev = input.rev.as_deref().unwrap_or("HEAD");
    let (rel, commit, branch) = crate::git::locate(manifest, rev)?;
    let loaded = crate::ops::deploy::load(manifest, Some(&commit))?;
    let Some(reference) = loaded.manifest.reference.clone() else {
        return Err(OpError::Invalid(format!(
            "{} at {} has no `reference: {{repository: REGISTRY/PATH}}`: there is nowhere to publish to",
            manifest.display(),
            crate::git::short_id(&commit)
        )));
    };
    let mut tags = vec![commit.clone()];
    tags.extend(branch.as_deref().map(oci::tag_for_branch));
    for t in &input.tags {
        oci::check_tag(t).map_err(|e| OpError::Invalid(format!("--tag {t}: {e}")))?;
        tags.push(t.clone());
    }
    let mut seen = std::collections::BTreeSet::new();
    tags.retain(|t| seen.insert(t.clone()));
    let files = carried_files(&loaded, &rel)?;
    let built = artifact::build(
        manifest
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
        &commit,
        &rel.to_string_lossy(),
        &files,
        if input.history == 0 {
            oci::DEFAULT_HISTORY
        } else {
            input.history
        },
        branch,
        crate::clock::rfc3339(std::time::SystemTime::now()),
    )?;
    let registry = Registry::connect(&reference.repository.value, reference.insecure).await?;
    registry.push(&built, &tags).await?;
    Ok(Published {
        repository: reference.repository.value.clone(),
        digest: built.digest.clone(),
        commit,
        tags,
        files,
        objects: built.objects,
        bytes: built.config.len() + built.layer.len(),
    })
}

/// The SOPS files of every environment, as paths from the repository's root.
fn carried_files(loaded: &Loaded, rel: &Path) -> OpResult<Vec<String>> {
    let dir = rel.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut out = std::collections::BTreeSet::new();
    for env in loaded.manifest.environments.keys() {
        for f in crate::ops::secrets::sops_files(loaded, env) {
            let p = in_repository(&dir, &f).ok_or_else(|| {
                OpError::Invalid(format!(
                    "the SOPS file {f} is outside the repository: it cannot travel with the reference"
                ))
            })?;
            out.insert(p);
        }
    }
    Ok(out.into_iter().collect())
}

/// Whether a command that pushes its pin commit in `env` must publish it too: the environment's
/// agents follow the registry, or the manifest says `reference: {publish: true}`.
pub fn wanted(loaded: &Loaded, env: &str) -> bool {
    loaded.manifest.follows_oci(env)
        || loaded
            .manifest
            .reference
            .as_ref()
            .is_some_and(|r| r.publish)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_named_from_the_repository_root() {
        assert_eq!(
            in_repository(Path::new("ops"), "secrets/prod.env").as_deref(),
            Some("ops/secrets/prod.env")
        );
        assert_eq!(
            in_repository(Path::new("ops"), "../shared/x.yaml").as_deref(),
            Some("shared/x.yaml")
        );
        assert_eq!(
            in_repository(Path::new(""), "./a.env").as_deref(),
            Some("a.env")
        );
        assert_eq!(in_repository(Path::new(""), "../outside"), None);
    }
}
