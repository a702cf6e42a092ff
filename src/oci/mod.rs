//! The reference through the registry (contract §12), as the seed's enterprise carried it: the
//! reference at a commit packed as an OCI artifact (`artifact`), pushed to and read from a
//! registry (`registry`). Production networks often reach a registry (through a mirror) and not
//! the git server, and a registry answers a thousand "did the tag move?" questions cheaply.
//!
//! What travels is git itself — the signed commit object, the trees and blobs on the paths to the
//! manifest and its SOPS files, and first-parent commit objects back to a bound — so an agent
//! recomputes every object id and verifies signatures and ancestry exactly as after a fetch.

pub mod artifact;
pub mod registry;

pub use registry::{OciRef, Registry, RegistryError};

/// How many first-parent commits before the published one travel with it: the agent's ancestry
/// check sees that far back (a host that ran a commit older than that is asked for `--accept`).
pub const DEFAULT_HISTORY: usize = 200;

/// A repository as `reference: {repository}` and `oci://` write it: `REGISTRY/PATH`, no tag or
/// digest, path components lowercase (the distribution spec's grammar).
pub fn check_repository(repository: &str) -> Result<(), String> {
    let (registry, path) = repository
        .split_once('/')
        .ok_or_else(|| format!("`{repository}` has no registry: write REGISTRY/PATH"))?;
    if registry.is_empty()
        || !(registry.contains('.') || registry.contains(':') || registry == "localhost")
    {
        return Err(format!(
            "`{repository}` does not start with a registry host (a name with a `.` or a `:port`, or localhost)"
        ));
    }
    if path.contains('@')
        || path
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'))
    {
        return Err(format!(
            "`{repository}` names a tag or a digest; the repository alone is written here (tags are the commit id and the branch)"
        ));
    }
    for part in path.split('/') {
        let ok = !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
            && part.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && part.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !ok {
            return Err(format!(
                "`{part}` in `{repository}` is not a repository path component: lowercase letters, digits and . _ - inside"
            ));
        }
    }
    Ok(())
}

/// Whether `tag` is a valid tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn check_tag(tag: &str) -> Result<(), String> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{tag}` is not a valid tag: up to 128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`"
        ))
    }
}

/// The tag a branch is published under (docs/agent.md): every character outside `A-Za-z0-9_.-`
/// becomes `-` (`feature/login` → `feature-login`), a leading `.` or `-` becomes `_`, and the
/// result is cut to 128 characters.
pub fn tag_for_branch(branch: &str) -> String {
    let mut t: String = branch
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    if t.starts_with(['.', '-']) {
        t.replace_range(0..1, "_");
    }
    if t.is_empty() {
        t.push('_');
    }
    t.truncate(128);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_names_become_tags_by_the_documented_rule() {
        assert_eq!(tag_for_branch("main"), "main");
        assert_eq!(tag_for_branch("feature/login"), "feature-login");
        assert_eq!(tag_for_branch("release/2.0+hotfix"), "release-2.0-hotfix");
        assert_eq!(tag_for_branch(".hidden"), "_hidden");
        assert_eq!(tag_for_branch("-x"), "_x");
        assert_eq!(tag_for_branch("équipe"), "-quipe".replacen('-', "_", 1));
        assert_eq!(tag_for_branch(&"a".repeat(300)).len(), 128);
        for b in ["main", "feature/login", ".hidden", "équipe", "a/b/c"] {
            assert!(check_tag(&tag_for_branch(b)).is_ok(), "{b}");
        }
    }

    #[test]
    fn repositories_are_registry_and_path_without_tag() {
        assert!(check_repository("registry.acme.internal:5000/acme/platform").is_ok());
        assert!(check_repository("10.213.7.2:5000/fleet/ref").is_ok());
        assert!(check_repository("localhost/ref").is_ok());
        assert!(check_repository("acme/platform").is_err());
        assert!(check_repository("reg.io/acme/platform:main").is_err());
        assert!(check_repository("reg.io/acme/platform@sha256:00").is_err());
        assert!(check_repository("reg.io/Acme/platform").is_err());
        assert!(check_repository("reg.io").is_err());
    }

    #[test]
    fn tags_follow_the_distribution_grammar() {
        assert!(check_tag("main").is_ok());
        assert!(check_tag("0123456789abcdef0123456789abcdef01234567").is_ok());
        assert!(check_tag("-x").is_err());
        assert!(check_tag("a/b").is_err());
        assert!(check_tag(&"a".repeat(129)).is_err());
    }
}
