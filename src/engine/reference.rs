//! Image references the way Docker reads them, so that names written differently but meaning the
//! same repository compare equal.
//!
//! Docker shortens what it reports: `docker.io/library/nginx` is `nginx` in RepoDigests,
//! `index.docker.io/acme/app` is `acme/app`. A manifest may write either form, so every comparison
//! of a manifest's repository with what an engine reports goes through `normalize` (the rules of
//! the distribution reference library: a first component with a `.` or `:`, or `localhost`, is a
//! registry; otherwise the registry is Docker Hub, whose one-component names live in `library/`).
//! The written form is still what fleetpin pulls and hashes: normalising never changes a spec hash.

const HUB: &str = "docker.io";

/// The full name of a repository: `nginx` → `docker.io/library/nginx`,
/// `index.docker.io/acme/app` → `docker.io/acme/app`, `registry:5000/x` unchanged.
pub fn normalize(repository: &str) -> String {
    let (domain, path) = match repository.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first, rest)
        }
        _ => (HUB, repository),
    };
    let domain = match domain {
        "index.docker.io" | "registry-1.docker.io" => HUB,
        d => d,
    };
    if domain == HUB && !path.contains('/') {
        format!("{HUB}/library/{path}")
    } else {
        format!("{domain}/{path}")
    }
}

/// Whether two repository names mean the same repository.
pub fn same_repository(a: &str, b: &str) -> bool {
    a == b || normalize(a) == normalize(b)
}

/// The digest (`sha256:…`) under which an image is known for `repository`, from the image's
/// RepoDigests (`name@sha256:…`, names as Docker shortens them).
pub fn digest_for(repo_digests: &[String], repository: &str) -> Option<String> {
    repo_digests.iter().find_map(|entry| {
        let (name, digest) = entry.rsplit_once('@')?;
        same_repository(name, repository).then(|| digest.to_string())
    })
}

/// The registry host of a repository (`docker.io` for Docker Hub), as credentials are keyed.
pub fn registry_of(repository: &str) -> String {
    let full = normalize(repository);
    full.split('/').next().unwrap_or(HUB).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:4d0bc6182dc5ee4ce965969bfdd025bf1491b12cc22a3c9edb5597ff23dc551b";

    #[test]
    fn hub_names_are_completed_and_registries_kept() {
        for (written, full) in [
            ("nginx", "docker.io/library/nginx"),
            ("library/nginx", "docker.io/library/nginx"),
            ("docker.io/library/nginx", "docker.io/library/nginx"),
            ("docker.io/nginx", "docker.io/library/nginx"),
            ("index.docker.io/library/nginx", "docker.io/library/nginx"),
            ("traefik/whoami", "docker.io/traefik/whoami"),
            (
                "registry.acme.internal:5000/acme/billing",
                "registry.acme.internal:5000/acme/billing",
            ),
            ("localhost/app", "localhost/app"),
            (
                "10.213.7.2:5000/fleetpin/app",
                "10.213.7.2:5000/fleetpin/app",
            ),
            ("ghcr.io/acme/app", "ghcr.io/acme/app"),
        ] {
            assert_eq!(normalize(written), full, "{written}");
        }
    }

    #[test]
    fn digests_are_found_whatever_form_the_manifest_writes() {
        let reported = vec![format!("nginx@{D}")];
        assert_eq!(
            digest_for(&reported, "docker.io/library/nginx").as_deref(),
            Some(D)
        );
        assert_eq!(digest_for(&reported, "nginx").as_deref(), Some(D));
        assert_eq!(digest_for(&reported, "library/nginx").as_deref(), Some(D));
        assert_eq!(digest_for(&reported, "acme/nginx"), None);
        let private = vec![format!("10.213.7.2:5000/fleetpin/app@{D}")];
        assert_eq!(
            digest_for(&private, "10.213.7.2:5000/fleetpin/app").as_deref(),
            Some(D)
        );
        assert_eq!(digest_for(&private, "fleetpin/app"), None);
    }

    #[test]
    fn registries_of_repositories() {
        assert_eq!(registry_of("nginx"), "docker.io");
        assert_eq!(registry_of("traefik/whoami"), "docker.io");
        assert_eq!(
            registry_of("registry.acme.internal:5000/acme/billing"),
            "registry.acme.internal:5000"
        );
    }
}
