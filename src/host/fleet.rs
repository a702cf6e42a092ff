//! Reaching the hosts of an environment: which hosts a command selects, how to connect to each
//! (TLS files resolved against the manifest's directory), and observing them all at once — each
//! with its own connect timeout, so a dead host costs one timeout, not the sum.

use crate::engine::docker::{DockerEngine, Target, TlsFiles};
use crate::engine::{ContainerSummary, Engine, EngineError};
use crate::manifest::{Environment, Loaded};
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct HostRef {
    pub environment: String,
    pub name: String,
    pub target: Target,
}

impl HostRef {
    pub fn endpoint(&self) -> String {
        self.target.endpoint.key()
    }
}

/// The environment `env`, or an error that lists the known ones.
pub fn environment<'a>(loaded: &'a Loaded, env: &str) -> Result<&'a Environment, String> {
    let m = &loaded.manifest;
    m.environments.get(env).ok_or_else(|| {
        format!(
            "there is no environment `{env}` in {} (environments: {})",
            loaded.path.display(),
            m.environments
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// The hosts of `env`, limited to `only` when given; unknown names are errors that list the
/// known ones.
pub fn hosts(loaded: &Loaded, env: &str, only: &[String]) -> Result<Vec<HostRef>, String> {
    let e = environment(loaded, env)?;
    for h in only {
        if !e.hosts.contains_key(h) {
            return Err(format!(
                "there is no host `{h}` in environment `{env}` (hosts: {})",
                e.hosts.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    let dir = loaded.dir();
    Ok(e.hosts
        .iter()
        .filter(|(name, _)| only.is_empty() || only.contains(name))
        .map(|(name, h)| HostRef {
            environment: env.to_string(),
            name: name.clone(),
            target: Target {
                endpoint: h.endpoint.value.clone(),
                tls: h.tls.as_ref().map(|t| TlsFiles {
                    ca: resolve_path(&dir, &t.ca.value),
                    cert: resolve_path(&dir, &t.cert.value),
                    key: resolve_path(&dir, &t.key.value),
                }),
                insecure: h.insecure,
            },
        })
        .collect())
}

fn resolve_path(dir: &Path, p: &str) -> std::path::PathBuf {
    let path = Path::new(p);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        dir.join(path)
    }
}

/// A host, connected and listed, or why not.
pub struct Observation {
    pub host: HostRef,
    pub result: Result<(DockerEngine, Vec<ContainerSummary>), EngineError>,
}

/// Connects to every host and lists its containers named with `prefix`, all concurrently.
pub async fn observe_all(hosts: Vec<HostRef>, prefix: &str, timeout: Duration) -> Vec<Observation> {
    let futures = hosts.into_iter().map(|host| async move {
        let result = async {
            let engine = DockerEngine::connect(&host.target, timeout).await?;
            // The first request says whether the host answers: within the connect timeout.
            let list = tokio::time::timeout(timeout, engine.list_containers(prefix))
                .await
                .map_err(|_| EngineError::Timeout {
                    endpoint: host.endpoint(),
                    seconds: timeout.as_secs(),
                })??;
            Ok((engine, list))
        }
        .await;
        Observation { host, result }
    });
    futures::future::join_all(futures).await
}
