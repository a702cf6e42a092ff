//! Pushing and reading the reference in a registry, through the ORAS project's distribution
//! client (token and basic auth, blob uploads). Credentials are found as for pulls
//! (`engine::credentials`: the docker config, credential helpers included). No error or log
//! line carries a credential: the client's errors name URLs, never the `Authorization` header.

use crate::oci::artifact::{self, Built, Descriptor, MANIFEST_MEDIA_TYPE};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use std::time::Duration;

/// `oci://REGISTRY/PATH:TAG` (or `@sha256:…`), as `fleetpin agent --ref` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciRef {
    /// `REGISTRY/PATH`.
    pub repository: String,
    pub tag: String,
}

impl OciRef {
    pub fn parse(s: &str) -> Result<OciRef, String> {
        let rest = s
            .strip_prefix("oci://")
            .ok_or_else(|| format!("`{s}` is not an oci:// reference"))?;
        let (repository, tag) = match rest.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo, tag),
            _ => {
                return Err(format!(
                    "`{s}` has no tag: write oci://REGISTRY/PATH:TAG (the branch's tag, e.g. :main)"
                ));
            }
        };
        crate::oci::check_repository(repository)?;
        crate::oci::check_tag(tag)?;
        Ok(OciRef {
            repository: repository.into(),
            tag: tag.into(),
        })
    }

    pub fn registry(&self) -> &str {
        self.repository.split('/').next().unwrap_or_default()
    }
}

impl std::fmt::Display for OciRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "oci://{}:{}", self.repository, self.tag)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("{registry}: {detail}")]
    Unreachable { registry: String, detail: String },
    #[error("{reference} does not exist in the registry (not published yet?)")]
    NotFound { reference: String },
    #[error(
        "{registry} refused the credentials for {repository}: {detail}; log in (`docker login {registry}`) or fix the credential helper"
    )]
    Denied {
        registry: String,
        repository: String,
        detail: String,
    },
    #[error("{reference}: {0}", reference = .1)]
    Artifact(artifact::ArtifactError, String),
    #[error("credentials for {registry}: {detail}")]
    Credentials { registry: String, detail: String },
}

/// A client for one repository, with its credentials.
pub struct Registry {
    client: Client,
    auth: RegistryAuth,
    repository: String,
    registry: String,
    insecure: bool,
    /// Set once a tag was read with no credentials and no challenge: the registry needs none,
    /// so the next reads are one plain `HEAD` each (the distribution client would probe `/v2/`
    /// before every request of an anonymous reader, doubling an agent's requests).
    open: std::sync::atomic::AtomicBool,
    plain: reqwest::Client,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Registry({})", self.repository)
    }
}

impl Registry {
    /// A client for `repository` (`REGISTRY/PATH`), plain HTTP when `insecure`.
    pub async fn connect(repository: &str, insecure: bool) -> Result<Registry, RegistryError> {
        // reqwest is built without a provider of its own: this binary's is ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let registry = repository.split('/').next().unwrap_or_default().to_string();
        let creds = crate::engine::credentials::for_image(repository)
            .await
            .map_err(|e| RegistryError::Credentials {
                registry: registry.clone(),
                detail: e.to_string(),
            })?;
        let auth = match creds {
            Some(c) => match (c.username, c.password, c.identity_token) {
                (_, _, Some(token)) => RegistryAuth::Bearer(token),
                (Some(u), Some(p), _) => RegistryAuth::Basic(u, p),
                _ => RegistryAuth::Anonymous,
            },
            None => RegistryAuth::Anonymous,
        };
        let config = ClientConfig {
            protocol: if insecure {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            connect_timeout: Some(Duration::from_secs(10)),
            read_timeout: Some(Duration::from_secs(60)),
            user_agent: concat!("fleetpin/", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        };
        let plain = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("fleetpin/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| RegistryError::Unreachable {
                registry: registry.clone(),
                detail: e.to_string(),
            })?;
        Ok(Registry {
            client: Client::new(config),
            auth,
            repository: repository.into(),
            registry,
            insecure,
            open: std::sync::atomic::AtomicBool::new(false),
            plain,
        })
    }

    fn reference(&self, tag: &str) -> Reference {
        let (_, path) = self.repository.split_once('/').unwrap_or_default();
        Reference::with_tag(self.registry.clone(), path.into(), tag.into())
    }

    fn by_digest(&self, digest: &str) -> Reference {
        let (_, path) = self.repository.split_once('/').unwrap_or_default();
        Reference::with_digest(self.registry.clone(), path.into(), digest.into())
    }

    fn error(&self, what: &str, e: oci_client::errors::OciDistributionError) -> RegistryError {
        use oci_client::errors::OciDistributionError as E;
        let text = e.to_string();
        match e {
            E::ImageManifestNotFoundError(_) => RegistryError::NotFound {
                reference: what.into(),
            },
            E::AuthenticationFailure(_) | E::UnauthorizedError { .. } => RegistryError::Denied {
                registry: self.registry.clone(),
                repository: self.repository.clone(),
                detail: text,
            },
            E::RegistryError { ref envelope, .. }
                if envelope
                    .errors
                    .iter()
                    .any(|x| format!("{:?}", x.code).contains("Unknown")) =>
            {
                RegistryError::NotFound {
                    reference: what.into(),
                }
            }
            _ => RegistryError::Unreachable {
                registry: self.registry.clone(),
                detail: format!("{what}: {text}"),
            },
        }
    }

    /// Pushes an artifact (its blobs, then its manifest under each tag).
    pub async fn push(&self, built: &Built, tags: &[String]) -> Result<(), RegistryError> {
        let first = self.reference(tags.first().map(String::as_str).unwrap_or("latest"));
        self.client
            .store_auth_if_needed(&self.registry, &self.auth)
            .await;
        self.client
            .auth(&first, &self.auth, oci_client::RegistryOperation::Push)
            .await
            .map_err(|e| self.error(&self.repository, e))?;
        for (bytes, what) in [(&built.config, "config"), (&built.layer, "layer")] {
            let digest = format!(
                "sha256:{}",
                hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes))
            );
            let exists = self
                .client
                .blob_exists(&first, &digest)
                .await
                .unwrap_or(false);
            if !exists {
                self.client
                    .push_blob(&first, bytes.clone(), &digest)
                    .await
                    .map_err(|e| self.error(&format!("pushing the {what}"), e))?;
            }
        }
        for tag in tags {
            let r = self.reference(tag);
            self.client
                .push_manifest_raw(
                    &r,
                    built.manifest.clone(),
                    http::HeaderValue::from_static(MANIFEST_MEDIA_TYPE),
                )
                .await
                .map_err(|e| self.error(&format!("tagging {tag}"), e))?;
        }
        Ok(())
    }

    /// The digest `tag` points to now: one HEAD request.
    pub async fn digest(&self, tag: &str) -> Result<String, RegistryError> {
        use std::sync::atomic::Ordering;
        let at = format!("oci://{}:{tag}", self.repository);
        if self.open.load(Ordering::Relaxed) {
            match self.plain_digest(tag).await {
                Ok(Some(d)) => return Ok(d),
                // Asked for credentials now, or no digest header: the full client decides.
                Ok(None) => self.open.store(false, Ordering::Relaxed),
                Err(e) => {
                    return Err(RegistryError::Unreachable {
                        registry: self.registry.clone(),
                        detail: format!("{at}: {e}"),
                    });
                }
            }
        }
        let r = self.reference(tag);
        let d = self
            .client
            .fetch_manifest_digest(&r, &self.auth)
            .await
            .map_err(|e| self.error(&at, e))?;
        if matches!(self.auth, RegistryAuth::Anonymous) {
            self.open.store(true, Ordering::Relaxed);
        }
        Ok(d)
    }

    /// `HEAD …/manifests/TAG` without credentials: the digest, or `None` when the registry
    /// wants credentials (or names no digest).
    async fn plain_digest(&self, tag: &str) -> Result<Option<String>, reqwest::Error> {
        let (_, path) = self.repository.split_once('/').unwrap_or_default();
        let scheme = if self.insecure { "http" } else { "https" };
        let url = format!("{scheme}://{}/v2/{path}/manifests/{tag}", self.registry);
        let res = self
            .plain
            .head(url)
            .header(reqwest::header::ACCEPT, MANIFEST_MEDIA_TYPE)
            .send()
            .await?;
        if !res.status().is_success() {
            return Ok(None);
        }
        Ok(res
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.starts_with("sha256:"))
            .map(str::to_string))
    }

    /// The artifact at `digest`: its manifest, config and layer, each checked against the digest
    /// that names it.
    pub async fn pull(&self, digest: &str) -> Result<(Vec<u8>, Vec<u8>), RegistryError> {
        let r = self.by_digest(digest);
        let at = format!("oci://{}@{digest}", self.repository);
        let (manifest, got) = self
            .client
            .pull_manifest_raw(&r, &self.auth, &[MANIFEST_MEDIA_TYPE])
            .await
            .map_err(|e| self.error(&at, e))?;
        let wrong = |e: artifact::ArtifactError| RegistryError::Artifact(e, at.clone());
        let actual = format!(
            "sha256:{}",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&manifest))
        );
        if actual != digest || got != digest {
            return Err(wrong(artifact::ArtifactError::Malformed(format!(
                "its manifest hashes to {actual}"
            ))));
        }
        let (config, layer) = artifact::parts(&manifest).map_err(wrong)?;
        let config = self.blob(&r, &config, &at).await?;
        let layer_bytes = self.blob(&r, &layer, &at).await?;
        Ok((config, layer_bytes))
    }

    async fn blob(
        &self,
        r: &Reference,
        d: &Descriptor,
        at: &str,
    ) -> Result<Vec<u8>, RegistryError> {
        let mut out = Vec::with_capacity(d.size as usize);
        self.client
            .pull_blob(r, d.digest.as_str(), &mut out)
            .await
            .map_err(|e| self.error(at, e))?;
        artifact::check_blob(d, &out).map_err(|e| RegistryError::Artifact(e, at.into()))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_references_name_a_repository_and_a_tag() {
        let r = OciRef::parse("oci://10.213.7.2:5000/fleet/ref:main").unwrap();
        assert_eq!(r.repository, "10.213.7.2:5000/fleet/ref");
        assert_eq!(r.tag, "main");
        assert_eq!(r.registry(), "10.213.7.2:5000");
        assert_eq!(r.to_string(), "oci://10.213.7.2:5000/fleet/ref:main");
        assert!(OciRef::parse("oci://10.213.7.2:5000/fleet/ref").is_err());
        assert!(OciRef::parse("https://x/y:z").is_err());
        assert!(OciRef::parse("oci://reg.io/a:-bad").is_err());
    }
}
