//! Reaching the hosts of an environment: which hosts a command selects, how to connect to each
//! (TLS files resolved against the manifest's directory), and observing them all at once — each
//! with its own connect timeout, so a dead host costs one timeout, not the sum.

use crate::engine::docker::{DockerEngine, Target, TlsFiles};
use crate::engine::{ContainerSummary, Engine, EngineError};
use crate::manifest::resolve::{UnknownEnvironment, UnknownHost, check_host};
use crate::manifest::{Environment, Loaded};
use std::path::Path;
use std::sync::Arc;
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

/// Why the hosts of an environment cannot be selected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostsError {
    #[error(transparent)]
    UnknownEnvironment(#[from] UnknownEnvironment),
    /// A Swarm environment has no hosts of its own: the commands that serve it go through
    /// ops::swarm; the others must not read "no hosts" as "nothing to do".
    #[error(
        "environment `{0}` is a Docker Swarm cluster: this command works on plain-host environments only (see docs/swarm.md for what Swarm environments support)"
    )]
    Swarm(String),
    #[error(transparent)]
    UnknownHost(#[from] UnknownHost),
}

/// The environment `env` of the loaded manifest (`Manifest::environment`), or an error that
/// lists the known ones and names the file.
pub fn environment<'a>(
    loaded: &'a Loaded,
    env: &str,
) -> Result<&'a Environment, UnknownEnvironment> {
    loaded
        .manifest
        .environment(env)
        .map_err(|e| e.in_file(&loaded.path))
}

/// The hosts of `env`, limited to `only` when given; unknown names are errors that list the
/// known ones.
pub fn hosts(loaded: &Loaded, env: &str, only: &[String]) -> Result<Vec<HostRef>, HostsError> {
    let e = environment(loaded, env)?;
    if e.is_swarm() {
        return Err(HostsError::Swarm(env.to_string()));
    }
    for h in only {
        check_host(env, e, h)?;
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

/// Descriptors kept for what is not a connection to an engine: the binary, the manifest, stdio,
/// the runtime, env_files, git.
const RESERVED_FDS: u64 = 96;

/// Requests in flight to one engine at most, however many descriptors there are: a Docker engine
/// answers inspects concurrently, and a few more connections buy nothing once latency is hidden.
const MAX_PER_HOST: usize = 16;

/// Connections open at once across the fleet at most, whatever the descriptor limit: each costs
/// some 30 KB of buffers in the HTTP client, so 1,024 of them are about 30 MB.
const MAX_CONNECTIONS: usize = 1024;

/// The open-file limit this process may use: its soft limit, first raised to the hard limit (a
/// limit of 1,024 is a default, not a choice; Go's runtime raises it the same way).
pub fn descriptor_limit() -> u64 {
    static LIMIT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(|| {
        let mut l = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit only read and write the struct given.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) != 0 {
                return 1024;
            }
            if l.rlim_cur < l.rlim_max {
                let raised = libc::rlimit {
                    rlim_cur: l.rlim_max,
                    rlim_max: l.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    l.rlim_cur = l.rlim_max;
                }
            }
        }
        l.rlim_cur
    })
}

/// How a command that reads many hosts spreads its requests: how many hosts it works on at once
/// (`window`), each with how many requests in flight (`per_host`). Every request in flight is a
/// connection, a connection is a descriptor and some buffers, and both are bounded for the whole
/// fleet. For a latency-bound read what counts is the connections in flight, not how they are
/// split; a smaller window holds fewer hosts' containers at once, so hosts get a few connections
/// each: at 1,000 hosts, 256 hosts at a time with 4 each; at 100 hosts, all with 10 each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spread {
    pub window: usize,
    pub per_host: usize,
}

/// Requests in flight per host that a large fleet still gets (a window of fewer hosts instead).
const MIN_PER_HOST: usize = 4;

pub fn spread(hosts: usize) -> Spread {
    let budget = (descriptor_limit().saturating_sub(RESERVED_FDS) as usize).min(MAX_CONNECTIONS);
    spread_within(hosts, budget)
}

fn spread_within(hosts: usize, connections: usize) -> Spread {
    let connections = connections.max(1);
    let per_host = (connections / hosts.max(1)).clamp(MIN_PER_HOST.min(connections), MAX_PER_HOST);
    Spread {
        window: (connections / per_host).clamp(1, hosts.max(1)),
        per_host,
    }
}

/// A host, connected and listed, or why not.
pub struct Observation<E = DockerEngine> {
    pub host: HostRef,
    pub result: Result<(Arc<E>, Vec<ContainerSummary>), EngineError>,
}

/// How an operation reaches a host's engine: Docker for both faces (`Docker`), an in-memory
/// engine per host for the orchestration tests. The one place a host's endpoint becomes an
/// engine.
pub trait Connect: Send + Sync {
    type Engine: Engine + 'static;

    fn connect(
        &self,
        host: &HostRef,
        timeout: Duration,
    ) -> impl std::future::Future<Output = Result<Arc<Self::Engine>, EngineError>> + Send;
}

/// Docker engines, reached at each host's endpoint.
#[derive(Debug, Clone, Copy, Default)]
pub struct Docker;

impl Connect for Docker {
    type Engine = DockerEngine;

    async fn connect(
        &self,
        host: &HostRef,
        timeout: Duration,
    ) -> Result<Arc<DockerEngine>, EngineError> {
        DockerEngine::connect(&host.target, timeout)
            .await
            .map(Arc::new)
    }
}

/// Connects to every host and lists its containers named with `prefix`, all concurrently (plan
/// and apply; audit, which reads more of each host, goes a `spread` at a time).
pub async fn observe_all(hosts: Vec<HostRef>, prefix: &str, timeout: Duration) -> Vec<Observation> {
    observe_all_on(&Docker, hosts, prefix, timeout).await
}

/// `observe_all` through `connect`.
pub async fn observe_all_on<C: Connect>(
    connect: &C,
    hosts: Vec<HostRef>,
    prefix: &str,
    timeout: Duration,
) -> Vec<Observation<C::Engine>> {
    // One connection per host stays open after its list (apply goes on with it), so the hosts
    // must fit in the descriptors: say so rather than fail host after host with EMFILE.
    let budget = descriptor_limit().saturating_sub(RESERVED_FDS) as usize;
    if hosts.len() > budget {
        tracing::warn!(
            "{} hosts, but {} open files allowed (ulimit -n): raise the limit, or some hosts will fail with `too many open files`",
            hosts.len(),
            descriptor_limit()
        );
    }
    futures::future::join_all(
        hosts
            .into_iter()
            .map(|host| observe_on(connect, host, prefix, timeout)),
    )
    .await
}

/// Connects to one host and lists its containers named with `prefix`.
pub async fn observe(host: HostRef, prefix: &str, timeout: Duration) -> Observation {
    observe_on(&Docker, host, prefix, timeout).await
}

/// `observe` through `connect`.
pub async fn observe_on<C: Connect>(
    connect: &C,
    host: HostRef,
    prefix: &str,
    timeout: Duration,
) -> Observation<C::Engine> {
    let result = async {
        let engine = connect.connect(&host, timeout).await?;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_keeps_connections_within_the_budget() {
        // 1,000 hosts: 256 at a time, 4 connections each.
        assert_eq!(
            spread_within(1000, 1024),
            Spread {
                window: 256,
                per_host: 4
            }
        );
        // Fewer hosts than the budget allows at 4 each: all at once, with more each.
        assert_eq!(
            spread_within(100, 1024),
            Spread {
                window: 100,
                per_host: 10
            }
        );
        assert_eq!(
            spread_within(3, 1024),
            Spread {
                window: 3,
                per_host: MAX_PER_HOST
            }
        );
        assert_eq!(
            spread_within(0, 1024),
            Spread {
                window: 1,
                per_host: MAX_PER_HOST
            }
        );
        // A tiny descriptor limit: one host, one request at a time.
        assert_eq!(
            spread_within(50, 1),
            Spread {
                window: 1,
                per_host: 1
            }
        );
        for hosts in [1, 7, 255, 300, 999, 1025, 20_000] {
            for budget in [1, 3, 100, 1024, 4000] {
                let s = spread_within(hosts, budget);
                assert!(s.window * s.per_host <= budget, "{hosts}/{budget}: {s:?}");
                assert!(
                    s.window >= 1 && s.window <= hosts.max(1),
                    "{hosts}/{budget}: {s:?}"
                );
            }
        }
    }
}
