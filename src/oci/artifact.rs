//! The reference at one commit as an OCI artifact, and back. An OCI image manifest with
//! fleetpin's own config and layer media types (as Helm charts do: registries without OCI 1.1
//! artifact manifests store it), whose layer is a set of git objects:
//!
//! - the commit object, byte for byte (its signature included);
//! - the trees on the paths to the manifest and each SOPS file it reads, and those blobs (SOPS
//!   files still encrypted): nothing else of the repository;
//! - the first-parent commit objects back to a bound, for the ancestry check.
//!
//! Unpacking trusts nothing it was given: every object's id is recomputed from its bytes (a
//! blob changed by hand no longer has the id its tree names), the objects go into the agent's
//! bare cache, and from there the manifest is read, the signature verified and the ancestry
//! checked by the very code that serves a git fetch.

use base64::Engine as _;
use git2::{ObjectType, Oid, Repository};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use std::path::Path;

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.fleetpin.reference.config.v1+json";
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.fleetpin.reference.objects.v1+json";

/// The most an artifact's parts may weigh when read (a hostile registry could serve anything).
pub const MAX_BLOB: u64 = 64 << 20;

/// What the config blob says. Informative: the commit it names is checked against the objects,
/// and everything that matters is then read from the objects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// The published commit (40 hexadecimal digits).
    pub commit: String,
    /// The manifest's path in the repository.
    pub manifest: String,
    /// The branch it was published from, when HEAD was on one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// The other files carried (SOPS files), paths in the repository.
    #[serde(default)]
    pub files: Vec<String>,
    /// First-parent commits carried before `commit`.
    #[serde(default)]
    pub history: usize,
    /// When it was published (RFC 3339, the publisher's clock).
    #[serde(default)]
    pub created: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Layer {
    objects: Vec<Object>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Object {
    id: String,
    /// `commit`, `tree` or `blob`.
    kind: String,
    /// The object's bytes (without git's `kind len\0` header), base64.
    data: String,
}

/// An artifact ready to push: its three parts and their digests.
#[derive(Debug, Clone)]
pub struct Built {
    pub config: Vec<u8>,
    pub layer: Vec<u8>,
    pub manifest: Vec<u8>,
    /// The manifest's digest (`sha256:…`): what a tag points to.
    pub digest: String,
    pub commit: String,
    pub objects: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArtifactError {
    #[error("cannot read {what} of commit {commit}: {reason}")]
    Read {
        what: String,
        commit: String,
        reason: String,
    },
    #[error("commit {commit} has no file {path}")]
    Missing { commit: String, path: String },
    /// The artifact breaks its own format (a part is not what its media type says).
    #[error("the artifact is malformed: {0}")]
    Malformed(String),
    /// An object whose bytes do not hash to its id: changed after it was published.
    #[error(
        "the artifact's {kind} {id} does not hash to its id (its bytes give {actual}): changed after it was published"
    )]
    Tampered {
        kind: String,
        id: String,
        actual: String,
    },
    #[error("cannot write to the cache {path}: {reason}")]
    Cache { path: String, reason: String },
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

fn kind_name(k: ObjectType) -> &'static str {
    match k {
        ObjectType::Commit => "commit",
        ObjectType::Tree => "tree",
        ObjectType::Blob => "blob",
        ObjectType::Tag => "tag",
        _ => "any",
    }
}

/// The artifact of `commit` in the repository holding `repo_path`: the manifest at `manifest`
/// and the `files` (paths in the repository), with `history` first-parent commits.
pub fn build(
    repo_path: &Path,
    commit: &str,
    manifest: &str,
    files: &[String],
    history: usize,
    branch: Option<String>,
    created: String,
) -> Result<Built, ArtifactError> {
    let read = |what: &str, e: &dyn std::fmt::Display| ArtifactError::Read {
        what: what.into(),
        commit: commit.into(),
        reason: e.to_string(),
    };
    let repo = Repository::discover(repo_path).map_err(|e| read("the repository", &e))?;
    let odb = repo.odb().map_err(|e| read("the object database", &e))?;
    let oid = Oid::from_str(commit).map_err(|e| read("the commit id", &e))?;
    let mut seen = std::collections::BTreeSet::new();
    let mut objects = Vec::new();
    let mut add = |id: Oid, objects: &mut Vec<Object>| -> Result<(), ArtifactError> {
        if !seen.insert(id) {
            return Ok(());
        }
        let o = odb
            .read(id)
            .map_err(|e| read(&format!("object {id}"), &e))?;
        objects.push(Object {
            id: id.to_string(),
            kind: kind_name(o.kind()).into(),
            data: base64::engine::general_purpose::STANDARD.encode(o.data()),
        });
        Ok(())
    };
    let c = repo.find_commit(oid).map_err(|e| read("the commit", &e))?;
    add(oid, &mut objects)?;
    let root = c.tree().map_err(|e| read("the tree", &e))?;
    add(root.id(), &mut objects)?;
    let mut paths = vec![manifest.to_string()];
    paths.extend(files.iter().cloned());
    for path in &paths {
        let mut tree = root.clone();
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        for (i, part) in parts.iter().enumerate() {
            let id = tree
                .get_name(part)
                .ok_or_else(|| ArtifactError::Missing {
                    commit: commit.into(),
                    path: path.clone(),
                })?
                .id();
            add(id, &mut objects)?;
            if i + 1 < parts.len() {
                tree = repo.find_tree(id).map_err(|_| ArtifactError::Missing {
                    commit: commit.into(),
                    path: path.clone(),
                })?;
            }
        }
    }
    let mut carried = 0;
    let mut parent = c.parent(0).ok();
    while let Some(p) = parent {
        if carried == history {
            break;
        }
        add(p.id(), &mut objects)?;
        carried += 1;
        parent = p.parent(0).ok();
    }
    let config = serde_json::to_vec(&Config {
        commit: commit.into(),
        manifest: manifest.into(),
        branch,
        files: files.to_vec(),
        history: carried,
        created: created.clone(),
    })
    .expect("a config serialises");
    let count = objects.len();
    let layer = serde_json::to_vec(&Layer { objects }).expect("objects serialise");
    let image = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": sha256(&config), "size": config.len()},
        "layers": [{"mediaType": LAYER_MEDIA_TYPE, "digest": sha256(&layer), "size": layer.len()}],
        "annotations": {
            "org.opencontainers.image.revision": commit,
            "org.opencontainers.image.created": created,
            "org.opencontainers.image.title": manifest,
        },
    });
    let manifest_bytes = serde_json::to_vec(&image).expect("a manifest serialises");
    Ok(Built {
        digest: sha256(&manifest_bytes),
        config,
        layer,
        manifest: manifest_bytes,
        commit: commit.into(),
        objects: count,
    })
}

/// A descriptor of the image manifest: what to download next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

/// The config and layer descriptors of an image manifest, checked to be fleetpin's.
pub fn parts(manifest: &[u8]) -> Result<(Descriptor, Descriptor), ArtifactError> {
    let bad = |why: String| ArtifactError::Malformed(why);
    let v: serde_json::Value =
        serde_json::from_slice(manifest).map_err(|e| bad(format!("its manifest: {e}")))?;
    let desc = |d: &serde_json::Value| -> Option<Descriptor> {
        Some(Descriptor {
            media_type: d.get("mediaType")?.as_str()?.to_string(),
            digest: d.get("digest")?.as_str()?.to_string(),
            size: d.get("size")?.as_u64()?,
        })
    };
    let config = v
        .get("config")
        .and_then(desc)
        .ok_or_else(|| bad("no config descriptor".into()))?;
    let layers: Vec<Descriptor> = v
        .get("layers")
        .and_then(|l| l.as_array())
        .map(|l| l.iter().filter_map(desc).collect())
        .unwrap_or_default();
    if config.media_type != CONFIG_MEDIA_TYPE {
        return Err(bad(format!(
            "its config is `{}`, not fleetpin's reference ({CONFIG_MEDIA_TYPE}): is this a container image?",
            config.media_type
        )));
    }
    let [layer] = layers.as_slice() else {
        return Err(bad(format!("{} layers, expected one", layers.len())));
    };
    if layer.media_type != LAYER_MEDIA_TYPE {
        return Err(bad(format!(
            "its layer is `{}`, not {LAYER_MEDIA_TYPE}",
            layer.media_type
        )));
    }
    for d in [&config, layer] {
        if d.size > MAX_BLOB {
            return Err(bad(format!(
                "a part of {} bytes (at most {MAX_BLOB})",
                d.size
            )));
        }
    }
    Ok((config, layer.clone()))
}

/// Checks that `bytes` are what `d` announced (the registry served the right blob).
pub fn check_blob(d: &Descriptor, bytes: &[u8]) -> Result<(), ArtifactError> {
    let actual = sha256(bytes);
    if actual != d.digest || bytes.len() as u64 != d.size {
        return Err(ArtifactError::Malformed(format!(
            "the blob {} has digest {actual} and {} bytes",
            d.digest,
            bytes.len()
        )));
    }
    Ok(())
}

/// Unpacks an artifact into the bare repository `cache` (created when missing), after checking
/// every object's id; returns the config, whose commit is now in the cache.
pub fn unpack(config: &[u8], layer: &[u8], cache: &Path) -> Result<Config, ArtifactError> {
    let bad = |why: String| ArtifactError::Malformed(why);
    let config: Config =
        serde_json::from_slice(config).map_err(|e| bad(format!("its config: {e}")))?;
    let layer: Layer = serde_json::from_slice(layer).map_err(|e| bad(format!("its layer: {e}")))?;
    let mut checked = Vec::with_capacity(layer.objects.len());
    for o in layer.objects {
        let kind = match o.kind.as_str() {
            "commit" => ObjectType::Commit,
            "tree" => ObjectType::Tree,
            "blob" => ObjectType::Blob,
            other => return Err(bad(format!("an object of kind `{other}`"))),
        };
        let data = base64::engine::general_purpose::STANDARD
            .decode(o.data.as_bytes())
            .map_err(|e| bad(format!("object {}: {e}", o.id)))?;
        let actual =
            Oid::hash_object(kind, &data).map_err(|e| bad(format!("object {}: {e}", o.id)))?;
        if actual.to_string() != o.id {
            return Err(ArtifactError::Tampered {
                kind: o.kind,
                id: o.id,
                actual: actual.to_string(),
            });
        }
        checked.push((kind, actual, data));
    }
    if !checked
        .iter()
        .any(|(k, id, _)| *k == ObjectType::Commit && id.to_string() == config.commit)
    {
        return Err(bad(format!(
            "its config names commit {}, which it does not carry",
            config.commit
        )));
    }
    let cache_err = |e: &dyn std::fmt::Display| ArtifactError::Cache {
        path: cache.display().to_string(),
        reason: e.to_string(),
    };
    let repo = match Repository::open_bare(cache) {
        Ok(r) => r,
        Err(_) => {
            std::fs::create_dir_all(cache).map_err(|e| cache_err(&e))?;
            Repository::init_bare(cache).map_err(|e| cache_err(&e))?
        }
    };
    let odb = repo.odb().map_err(|e| cache_err(&e))?;
    for (kind, id, data) in &checked {
        let written = odb.write(*kind, data).map_err(|e| cache_err(&e))?;
        debug_assert_eq!(written, *id);
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@x")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@x")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn repo() -> (tempfile::TempDir, String) {
        let d = tempfile::tempdir().unwrap();
        git(d.path(), &["init", "-q", "-b", "main"]);
        std::fs::create_dir_all(d.path().join("ops/secrets")).unwrap();
        std::fs::write(d.path().join("ops/fleetpin.yaml"), "platform: a\n").unwrap();
        std::fs::write(d.path().join("ops/secrets/prod.env"), "sops\n").unwrap();
        std::fs::write(d.path().join("README"), "not carried\n").unwrap();
        git(d.path(), &["add", "."]);
        git(d.path(), &["commit", "-qm", "one"]);
        std::fs::write(d.path().join("ops/fleetpin.yaml"), "platform: b\n").unwrap();
        git(d.path(), &["commit", "-qam", "two"]);
        let head = git(d.path(), &["rev-parse", "HEAD"]);
        (d, head)
    }

    #[test]
    fn an_artifact_carries_the_paths_and_history_and_nothing_else() {
        let (d, head) = repo();
        let files = vec!["ops/secrets/prod.env".to_string()];
        let b = build(
            d.path(),
            &head,
            "ops/fleetpin.yaml",
            &files,
            10,
            None,
            "t".into(),
        )
        .unwrap();
        // commit, root tree, ops tree, manifest blob, secrets tree, sops blob, parent commit.
        assert_eq!(b.objects, 7);
        let cache = tempfile::tempdir().unwrap();
        let (c, l) = parts(&b.manifest).unwrap();
        check_blob(&c, &b.config).unwrap();
        check_blob(&l, &b.layer).unwrap();
        let config = unpack(&b.config, &b.layer, &cache.path().join("c")).unwrap();
        assert_eq!(config.commit, head);
        assert_eq!(config.history, 1);
        let text = crate::git::read_file_at(
            &cache.path().join("c"),
            &head,
            Path::new("ops/fleetpin.yaml"),
        )
        .unwrap();
        assert_eq!(text, "platform: b\n");
        assert!(
            crate::git::read_file_at(&cache.path().join("c"), &head, Path::new("README")).is_err()
        );
    }

    #[test]
    fn a_blob_changed_by_hand_is_refused_by_its_id() {
        let (d, head) = repo();
        let b = build(
            d.path(),
            &head,
            "ops/fleetpin.yaml",
            &[],
            0,
            None,
            "t".into(),
        )
        .unwrap();
        let mut layer: serde_json::Value = serde_json::from_slice(&b.layer).unwrap();
        let blob = layer["objects"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|o| o["kind"] == "blob")
            .unwrap();
        blob["data"] = base64::engine::general_purpose::STANDARD
            .encode("platform: evil\n")
            .into();
        let layer = serde_json::to_vec(&layer).unwrap();
        let cache = tempfile::tempdir().unwrap();
        let err = unpack(&b.config, &layer, cache.path()).unwrap_err();
        assert!(
            matches!(err, ArtifactError::Tampered { ref kind, .. } if kind == "blob"),
            "{err}"
        );
    }

    #[test]
    fn a_container_image_is_not_a_reference() {
        let m = serde_json::json!({
            "schemaVersion": 2,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:00", "size": 2},
            "layers": [],
        });
        let err = parts(&serde_json::to_vec(&m).unwrap()).unwrap_err();
        assert!(err.to_string().contains("container image"), "{err}");
    }
}
