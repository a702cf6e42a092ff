//! The rules of "who may change an environment" around an operation (docs/trust.md): whether the
//! commit deployed must be signed, by whom, and how the commits fleetpin writes are signed. The
//! verification itself is `crate::trust`; here is when it applies.
//!
//! Signatures are required when the manifest deployed **or the one the hosts run now** says
//! `trust: {signed: true}` — so an unsigned commit that deletes the line is refused — and always
//! for an agent given its own allowed signers.

use crate::manifest::Loaded;
use crate::ops::error::{OpError, OpResult};
use crate::trust::{Signer, Signing, TrustRoot};
use std::collections::BTreeSet;
use std::path::Path;

/// The environment's `trust.signers`, as `crate::trust::verify` compares them.
pub fn signers(loaded: &Loaded, env: &str) -> Vec<String> {
    loaded
        .manifest
        .environments
        .get(env)
        .map(|e| {
            e.trust
                .signers
                .iter()
                .map(|s| s.value.as_str().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `env` takes signed commits only in this manifest.
pub fn signed_here(loaded: &Loaded, env: &str) -> bool {
    loaded
        .manifest
        .environments
        .get(env)
        .is_some_and(|e| e.trust.signed)
}

/// Whether the manifest at any of `commits` (what the hosts run, by their labels) says `env`
/// takes signed commits only. A commit this repository does not have says nothing.
pub fn signed_at(manifest: &Path, env: &str, commits: &BTreeSet<String>) -> bool {
    signed_in(env, commits, |c| {
        crate::git::read_at_rev(manifest, c).ok().map(|(t, _)| t)
    })
}

/// `signed_at`, the manifest text of a commit read by `read`.
pub fn signed_in(
    env: &str,
    commits: &BTreeSet<String>,
    read: impl Fn(&str) -> Option<String>,
) -> bool {
    commits.iter().any(|c| {
        read(c)
            .and_then(|text| crate::manifest::parse_str(&text).ok())
            .and_then(|m| m.environments.get(env).map(|e| e.trust.signed))
            .unwrap_or(false)
    })
}

/// The `signers` lists a commit must satisfy: the new manifest's and those of the manifests the
/// hosts run — a commit cannot widen the set that may sign it by rewriting `signers` itself.
pub fn signer_lists(
    loaded: &Loaded,
    env: &str,
    running: &BTreeSet<String>,
    read: impl Fn(&str) -> Option<String>,
) -> Vec<Vec<String>> {
    let mut lists = vec![signers(loaded, env)];
    for c in running {
        let Some(m) = read(c).and_then(|t| crate::manifest::parse_str(&t).ok()) else {
            continue;
        };
        if let Some(e) = m.environments.get(env)
            && e.trust.signed
        {
            lists.push(
                e.trust
                    .signers
                    .iter()
                    .map(|s| s.value.as_str().to_string())
                    .collect(),
            );
        }
    }
    lists
}

/// `crate::trust::verify` against every list of `signer_lists`.
pub fn verify_all(
    repo: &Path,
    commit: &str,
    root: &TrustRoot,
    env: &str,
    lists: &[Vec<String>],
) -> Result<Signer, crate::trust::TrustError> {
    let mut signer = crate::trust::verify(repo, commit, root, env, &[])?;
    for l in lists.iter().filter(|l| !l.is_empty()) {
        signer = crate::trust::verify(repo, commit, root, env, l)?;
    }
    Ok(signer)
}

/// The directory of the manifest's repository, where git runs.
fn repo_dir(loaded: &Loaded) -> std::path::PathBuf {
    loaded.dir()
}

/// Before an apply or a promote touches a host of `env`: when signatures are required (here or
/// by what the hosts run, `running`), the manifest deployed must be exactly a commit's (`commit`)
/// and that commit signed by an allowed signer of the operator's git configuration, within the
/// environment's `signers`. Returns who signed, when it was checked.
pub fn check_deploy(
    loaded: &Loaded,
    env: &str,
    commit: Option<&str>,
    running: &BTreeSet<String>,
) -> OpResult<Option<Signer>> {
    let required = signed_here(loaded, env) || signed_at(&loaded.path, env, running);
    if !required {
        return Ok(None);
    }
    let Some(commit) = commit else {
        return Err(OpError::Refused(format!(
            "refused: `{env}` takes only signed commits, and {} has uncommitted changes: commit them and sign the commit (`git commit -S`)",
            loaded.path.display()
        )));
    };
    // What is deployed is what was signed: no env_file tracked in git may differ from the commit.
    let files = crate::git::CommitFiles::Worktree {
        manifest: loaded.path.clone(),
        commit: commit.to_string(),
    };
    let e = &loaded.manifest.environments[env];
    for service in e.versions.keys() {
        let Some(f) = &loaded.manifest.services[service].env_file else {
            continue;
        };
        if let Ok(Some(committed)) = files.read(&f.value)
            && std::fs::read_to_string(loaded.dir().join(&f.value)).ok() != Some(committed)
        {
            return Err(OpError::Refused(format!(
                "refused: env_file {} differs from commit {}: `{env}` deploys only what a signed commit holds; commit and sign it, or restore it",
                f.value,
                crate::git::short_id(commit)
            )));
        }
    }
    let root = TrustRoot::from_git_config(&repo_dir(loaded));
    let lists = signer_lists(loaded, env, running, |c| {
        crate::git::read_at_rev(&loaded.path, c)
            .ok()
            .map(|(t, _)| t)
    });
    verify_all(&repo_dir(loaded), commit, &root, env, &lists)
        .map(Some)
        .map_err(|e| OpError::Refused(e.to_string()))
}

/// How the commit fleetpin writes for `env` is signed: with the operator's signing
/// configuration when the environment requires signatures or git config asks for them
/// (`commit.gpgsign`), else not at all. Checked before any host changes: where `env` takes
/// signed commits only, a probe commit signed so must pass the check an apply or an agent makes
/// (an allowed signer, within the environment's `signers`); elsewhere the key must sign at all.
pub fn signing(loaded: &Loaded, env: &str) -> OpResult<Option<Signing>> {
    let dir = repo_dir(loaded);
    if !signed_here(loaded, env) && !Signing::wanted_by_config(&dir) {
        return Ok(None);
    }
    let s = Signing::from_git_config(&dir);
    if !signed_here(loaded, env) {
        s.sign(b"fleetpin: can this key sign?\n")
            .map_err(|e| OpError::Refused(e.to_string()))?;
        return Ok(Some(s));
    }
    let probe =
        crate::git::signed_probe(&loaded.path, &s).map_err(|e| OpError::Refused(e.to_string()))?;
    let root = TrustRoot::from_git_config(&dir);
    verify_all(&dir, &probe, &root, env, &[signers(loaded, env)]).map_err(|e| {
        let short = crate::git::short_id(&probe);
        OpError::Refused(format!(
            "{}; set user.signingkey to a key that may sign for `{env}` (docs/trust.md)",
            e.to_string()
                .replace(short, "the commit fleetpin would write")
        ))
    })?;
    Ok(Some(s))
}
