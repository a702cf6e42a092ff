//! Resolution: for one (environment, host), the exact container specs fleetpin wants there — the
//! service merged with the environment's override and pin, names prefixed, in start order — each
//! with a spec hash.
//!
//! The hash is what lets `plan` tell `reconfigure` from `unchanged` without reading back every
//! setting from Docker: same input, same hash; any change that needs a new container, a new hash.
//! It covers the resolved spec only (never the commit or deployed-* labels), and includes
//! `SPEC_HASH_SCHEME` so that changing what is hashed is a deliberate, visible step.
//!
//! Secret values are not in it — only their names: a hash of a short password in a label or a
//! saved plan could be tested against guesses offline. A changed value is found by comparing
//! with the container's own environment (`plan::secrets`). Scheme 1 mixed each value's SHA-256
//! in; `legacy_hash` recomputes it in memory only, so that a container deployed by an older
//! fleetpin plans `unchanged` and upgrading fleetpin redeploys nothing.

use crate::manifest::pin::VersionPin;
use crate::manifest::values::{PortMapping, VolumeMount, VolumeSource};
use crate::manifest::{Environment, Healthcheck, Logging, Manifest, RestartPolicy};
use crate::secrets::KeyPath;
pub use crate::secrets::Secret;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Bump when the hashed content changes meaning (and keep recognising the previous scheme, as
/// `legacy_hash` does for 1, or every container plans `reconfigure`).
pub const SPEC_HASH_SCHEME: u32 = 2;

/// The network a service joins when it names none, so neighbours reach it by name as in compose.
pub const DEFAULT_NETWORK: &str = "default";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mount {
    /// Host-side name of a named volume (`{platform}-{environment}-{name}`), or an absolute path.
    pub source: MountSource,
    pub target: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum MountSource {
    Volume { name: String },
    Bind { path: String },
}

/// Everything needed to create one container, and nothing Docker-specific.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResolvedService {
    pub platform: String,
    pub environment: String,
    pub service: String,
    /// `{platform}-{environment}-{service}`
    pub container_name: String,
    pub repository: String,
    pub pin: VersionPin,
    /// What to pull and run: `repo@sha256:…` when pinned by digest, else `repo:tag`.
    pub image_ref: String,
    pub ports: Vec<PortMapping>,
    pub mounts: Vec<Mount>,
    pub env: BTreeMap<String, String>,
    /// Values from env_files and SOPS files: only their names are ever shown or hashed.
    #[serde(serialize_with = "names_only")]
    pub secret_env: BTreeMap<String, Secret>,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub user: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub memory: Option<u64>,
    pub cpus: Option<f64>,
    pub logging: Option<Logging>,
    pub healthcheck: Option<Healthcheck>,
    pub depends_on: Vec<String>,
    pub restart: RestartPolicy,
    #[serde(with = "opt_secs")]
    pub stop_timeout: Option<Duration>,
    /// Host-side network names (`{platform}-{environment}-{name}`); the service name is the alias.
    pub networks: Vec<String>,
    /// How long the gate watches a container without a healthcheck (`update.monitor`); how to
    /// deploy, not what to run: outside the spec hash, like `order` and `drain`.
    #[serde(with = "secs")]
    pub monitor: Duration,
    /// start-first or stop-first, resolved for this environment (`checks::order_in`).
    pub order: crate::manifest::Order,
    /// start-first: how long the old container serves on after the new one passed its gate.
    #[serde(with = "secs")]
    pub drain: Duration,
    pub spec_hash: String,
    /// The scheme-1 hash, in memory only (see the module comment).
    #[serde(skip)]
    pub legacy_hash: LegacyHash,
}

/// A scheme-1 spec hash: it mixes digests of secret values, so it is compared and never shown.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct LegacyHash(String);

impl LegacyHash {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for LegacyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<scheme 1>")
    }
}

impl ResolvedService {
    /// Whether a container labelled with `hash` runs this spec (under either scheme).
    pub fn hash_matches(&self, hash: &str) -> bool {
        hash == self.spec_hash || hash == self.legacy_hash.0
    }
}

fn names_only<S: serde::Serializer>(m: &BTreeMap<String, Secret>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(m.keys())
}

mod secs {
    use serde::Serializer;
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

mod opt_secs {
    use serde::Serializer;
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }
}

/// An environment the manifest does not have: the one lookup of an environment by name
/// (`Manifest::environment`), for every command. The error names those there are; `file`, when
/// known, says which manifest was read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "there is no environment `{name}`{} (environments: {})",
    file.as_ref().map(|f| format!(" in {}", f.display())).unwrap_or_default(),
    known.join(", ")
)]
pub struct UnknownEnvironment {
    pub name: String,
    /// The environments there are, in manifest order.
    pub known: Vec<String>,
    pub file: Option<std::path::PathBuf>,
}

impl UnknownEnvironment {
    /// The same error, naming the manifest file it was looked up in.
    pub fn in_file(mut self, file: &std::path::Path) -> UnknownEnvironment {
        self.file = Some(file.to_path_buf());
        self
    }
}

/// A host that environment `env` does not have; the error names those it has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("there is no host `{host}` in environment `{env}` (hosts: {})", known.join(", "))]
pub struct UnknownHost {
    pub env: String,
    pub host: String,
    pub known: Vec<String>,
}

impl Manifest {
    /// The environment `name`, or an error that lists the known ones.
    pub fn environment(&self, name: &str) -> Result<&Environment, UnknownEnvironment> {
        self.environments
            .get(name)
            .ok_or_else(|| UnknownEnvironment {
                name: name.to_string(),
                known: self.environments.keys().cloned().collect(),
                file: None,
            })
    }
}

/// Whether environment `e` (named `env`) has host `host`.
pub fn check_host(env: &str, e: &Environment, host: &str) -> Result<(), UnknownHost> {
    if e.hosts.contains_key(host) {
        Ok(())
    } else {
        Err(UnknownHost {
            env: env.to_string(),
            host: host.to_string(),
            known: e.hosts.keys().cloned().collect(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    UnknownEnvironment(#[from] UnknownEnvironment),
    #[error(transparent)]
    UnknownHost(#[from] UnknownHost),
    #[error("cannot read env_file `{path}` of service `{service}`: {reason}")]
    EnvFile {
        service: String,
        path: String,
        reason: String,
    },
    #[error("cannot read the secret `{variable}` of service `{service}`: {reason}")]
    Sops {
        service: String,
        variable: String,
        reason: String,
    },
}

/// Where secret values come from, by the paths written in the manifest; injected so resolution
/// stays pure. Errors name the file and key, never a value.
pub trait Secrets {
    /// The variables of env_file `path`: plain `KEY=VALUE` lines or a SOPS file.
    fn env_file(&self, path: &str) -> Result<Vec<(String, Secret)>, String>;
    /// One value of SOPS file `file`.
    fn sops_value(&self, file: &str, key: &KeyPath) -> Result<Secret, String>;
}

/// A plain reader (tests, tools): env_files are dotenv text; SOPS values are not available.
impl<F: Fn(&str) -> Result<String, String>> Secrets for F {
    fn env_file(&self, path: &str) -> Result<Vec<(String, Secret)>, String> {
        Ok(parse_env_file(&self(path)?)?
            .into_iter()
            .map(|(k, v)| (k, Secret::new(v)))
            .collect())
    }
    fn sops_value(&self, file: &str, _key: &KeyPath) -> Result<Secret, String> {
        Err(format!("{file}: no SOPS reader here"))
    }
}

pub type EnvFileReader<'a> = &'a dyn Secrets;

/// The services of `host` in `env`, fully resolved, in start order (dependencies first).
pub fn resolve_host(
    m: &Manifest,
    env: &str,
    host: &str,
    read_env_file: EnvFileReader,
) -> Result<Vec<Arc<ResolvedService>>, ResolveError> {
    resolve_hosts(m, env, &[host], read_env_file).map(|mut v| v.pop().unwrap_or_default())
}

/// `resolve_host` for several hosts of one environment at once. A service resolves the same on
/// every host (the host is not in its spec), so each is resolved — env_file read, spec hashed —
/// once, and shared by the hosts that run it: on a fleet of hundreds of hosts that is most of
/// the work `plan` does before it talks to any of them, and, copied, most of its memory.
pub fn resolve_hosts(
    m: &Manifest,
    env: &str,
    hosts: &[&str],
    read_env_file: EnvFileReader,
) -> Result<Vec<Vec<Arc<ResolvedService>>>, ResolveError> {
    let e = m.environment(env)?;
    let mut once: HashMap<&str, Arc<ResolvedService>> = HashMap::with_capacity(m.services.len());
    let mut out = Vec::with_capacity(hosts.len());
    for host in hosts {
        check_host(env, e, host)?;
        let names = m.services_on(env, host);
        let mut list = Vec::with_capacity(names.len());
        for name in start_order(m, &names) {
            let resolved = match once.entry(name) {
                Entry::Occupied(o) => o.get().clone(),
                Entry::Vacant(v) => v
                    .insert(Arc::new(resolve_one(m, env, name, read_env_file)?))
                    .clone(),
            };
            list.push(resolved);
        }
        out.push(list);
    }
    Ok(out)
}

/// Environment `env`, or the error that lists the others.
/// The services pinned in Swarm environment `env`, resolved, in manifest order: Swarm places
/// them on its nodes, so there is no host, and no start order (`depends_on` is ignored there).
pub fn resolve_swarm(
    m: &Manifest,
    env: &str,
    read_env_file: EnvFileReader,
) -> Result<Vec<Arc<ResolvedService>>, ResolveError> {
    let e = m.environment(env)?;
    m.services
        .keys()
        .filter(|s| e.versions.contains_key(*s))
        .map(|s| resolve_one(m, env, s, read_env_file).map(Arc::new))
        .collect()
}

/// Dependencies first, otherwise manifest order; dependencies not on this host are ignored.
pub fn start_order<'a>(m: &Manifest, names: &[&'a str]) -> Vec<&'a str> {
    let on_host: HashSet<&str> = names.iter().copied().collect();
    // Most hosts have no dependency among their own services: manifest order as it is.
    let depends = |n: &str| {
        m.services[n]
            .depends_on
            .iter()
            .any(|d| on_host.contains(d.value.as_str()))
    };
    if !names.iter().any(|n| depends(n)) {
        return names.to_vec();
    }
    let mut done: HashSet<&str> = HashSet::with_capacity(names.len());
    let mut out = Vec::new();
    // Validation rejected cycles, so repeated passes always make progress; the bound guards anyway.
    for _ in 0..=names.len() {
        for n in names {
            if done.contains(n) {
                continue;
            }
            let ready = m.services[*n]
                .depends_on
                .iter()
                .all(|d| !on_host.contains(d.value.as_str()) || done.contains(d.value.as_str()));
            if ready {
                done.insert(n);
                out.push(*n);
            }
        }
        if out.len() == names.len() {
            break;
        }
    }
    for n in names {
        if !done.contains(n) {
            out.push(n);
        }
    }
    out
}

fn resolve_one(
    m: &Manifest,
    env: &str,
    name: &str,
    read_env_file: EnvFileReader,
) -> Result<ResolvedService, ResolveError> {
    let s = &m.services[name];
    let e = &m.environments[env];
    let ov = e.overrides.get(name);
    let pin = e.versions[name].value.clone();
    let prefix = format!("{}-{}", m.platform, env);

    let (env_vars, secret_env) = environment(name, s, ov, read_env_file)?;

    let volumes: &Vec<crate::manifest::Located<VolumeMount>> =
        ov.and_then(|o| o.volumes.as_ref()).unwrap_or(&s.volumes);
    let mounts = volumes
        .iter()
        .map(|v| Mount {
            source: match &v.value.source {
                VolumeSource::Named { name } => MountSource::Volume {
                    name: format!("{prefix}-{name}"),
                },
                VolumeSource::Bind { path } => MountSource::Bind { path: path.clone() },
            },
            target: v.value.target.clone(),
            read_only: v.value.read_only,
        })
        .collect();
    let ports = ov
        .and_then(|o| o.ports.as_ref())
        .unwrap_or(&s.ports)
        .iter()
        .map(|p| p.value.clone())
        .collect();
    let mut networks: Vec<String> = s
        .networks
        .iter()
        .map(|n| format!("{prefix}-{}", n.value))
        .collect();
    if networks.is_empty() {
        networks.push(format!("{prefix}-{DEFAULT_NETWORK}"));
    }

    let mut r = ResolvedService {
        platform: m.platform.clone(),
        environment: env.to_string(),
        service: name.to_string(),
        container_name: format!("{prefix}-{name}"),
        repository: s.image.clone(),
        image_ref: pin.image_ref(&s.image),
        pin,
        ports,
        mounts,
        env: env_vars,
        secret_env,
        command: ov
            .and_then(|o| o.command.clone())
            .or_else(|| s.command.clone()),
        entrypoint: s.entrypoint.clone(),
        user: s.user.clone(),
        labels: s.labels.clone(),
        memory: ov.and_then(|o| o.memory).or(s.memory),
        cpus: ov.and_then(|o| o.cpus).or(s.cpus),
        logging: s.logging.clone(),
        healthcheck: ov
            .and_then(|o| o.healthcheck.clone())
            .or_else(|| s.healthcheck.clone()),
        depends_on: s.depends_on.iter().map(|d| d.value.clone()).collect(),
        restart: s.restart,
        stop_timeout: s.stop_timeout,
        networks,
        monitor: s.update.monitor.unwrap_or(crate::manifest::DEFAULT_MONITOR),
        order: crate::manifest::checks::order_in(m, env, name),
        drain: s.update.drain.unwrap_or(crate::manifest::DEFAULT_DRAIN),
        spec_hash: String::new(),
        legacy_hash: LegacyHash::default(),
    };
    r.spec_hash = spec_hash(&r);
    r.legacy_hash = legacy_hash(&r);
    Ok(r)
}

type SecretEnv = BTreeMap<String, Secret>;

/// The plain and the secret variables of a service in one environment. Later sources win, and a
/// name is either plain or secret: the service's `env`, the environment's override of it, then
/// the env_file (a secret is never shown as a plain value).
fn environment(
    name: &str,
    s: &crate::manifest::Service,
    ov: Option<&crate::manifest::Override>,
    secrets: EnvFileReader,
) -> Result<(BTreeMap<String, String>, SecretEnv), ResolveError> {
    let mut plain = s.env.clone();
    let mut refs: BTreeMap<&str, &crate::manifest::Located<crate::manifest::SopsRef>> =
        s.secret_env.iter().map(|(k, v)| (k.as_str(), v)).collect();
    if let Some(o) = ov {
        for (k, v) in o.env.iter().flatten() {
            refs.remove(k.as_str());
            plain.insert(k.clone(), v.clone());
        }
        for (k, v) in &o.secret_env {
            plain.remove(k);
            refs.insert(k, v);
        }
    }
    let mut secret = BTreeMap::new();
    for (k, r) in refs {
        let v = secrets
            .sops_value(&r.value.file, &r.value.key)
            .map_err(|reason| ResolveError::Sops {
                service: name.to_string(),
                variable: k.to_string(),
                reason,
            })?;
        secret.insert(k.to_string(), v);
    }
    if let Some(file) = &s.env_file {
        let pairs = secrets
            .env_file(&file.value)
            .map_err(|reason| ResolveError::EnvFile {
                service: name.to_string(),
                path: file.value.clone(),
                reason,
            })?;
        for (k, v) in pairs {
            plain.remove(&k);
            secret.insert(k, v);
        }
    }
    Ok((plain, secret))
}

/// `KEY=VALUE` lines; `#` comments, blank lines and a leading `export ` are allowed, and one pair
/// of surrounding quotes is removed. Errors name the line, never its value.
pub fn parse_env_file(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let l = l.strip_prefix("export ").unwrap_or(l);
        let Some((k, v)) = l.split_once('=') else {
            return Err(format!("line {} is not KEY=VALUE", i + 1));
        };
        let k = k.trim();
        let valid = k
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "line {}: `{k}` is not a valid variable name",
                i + 1
            ));
        }
        let v = v.trim();
        let v = if v.len() >= 2
            && ((v.starts_with('"') && v.ends_with('"'))
                || (v.starts_with('\'') && v.ends_with('\'')))
        {
            &v[1..v.len() - 1]
        } else {
            v
        };
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// The hash of everything that shapes the container (see the module comment): the secrets' names,
/// not their values.
pub fn spec_hash(r: &ResolvedService) -> String {
    let names = r.secret_env.keys().map(|k| (k.as_str(), String::new()));
    hashed(r, SPEC_HASH_SCHEME, names.collect())
}

/// Scheme 1, in memory only, to recognise containers an older fleetpin deployed: it mixed in a
/// SHA-256 of each secret value. Never stored, printed or sent anywhere.
fn legacy_hash(r: &ResolvedService) -> LegacyHash {
    let digests = r.secret_env.iter().map(|(k, v)| {
        (
            k.as_str(),
            hex::encode(Sha256::digest(v.expose().as_bytes())),
        )
    });
    LegacyHash(hashed(r, 1, digests.collect()))
}

fn hashed(r: &ResolvedService, scheme: u32, secret_env: BTreeMap<&str, String>) -> String {
    #[derive(Serialize)]
    struct Hashed<'a> {
        scheme: u32,
        container_name: &'a str,
        image_ref: &'a str,
        version: String,
        ports: Vec<String>,
        mounts: &'a [Mount],
        env: &'a BTreeMap<String, String>,
        secret_env: BTreeMap<&'a str, String>,
        command: &'a Option<Vec<String>>,
        entrypoint: &'a Option<Vec<String>>,
        user: &'a Option<String>,
        labels: &'a BTreeMap<String, String>,
        memory: Option<u64>,
        /// Fixed-point so the float's formatting cannot change the hash.
        nano_cpus: Option<i64>,
        logging: &'a Option<Logging>,
        healthcheck: Option<[Option<String>; 5]>,
        restart: &'static str,
        stop_timeout_ms: Option<u128>,
        networks: &'a [String],
        alias: &'a str,
    }
    let h = Hashed {
        scheme,
        container_name: &r.container_name,
        image_ref: &r.image_ref,
        version: r.pin.to_string(),
        ports: r.ports.iter().map(|p| p.to_string()).collect(),
        mounts: &r.mounts,
        env: &r.env,
        secret_env,
        command: &r.command,
        entrypoint: &r.entrypoint,
        user: &r.user,
        labels: &r.labels,
        memory: r.memory,
        nano_cpus: r.cpus.map(|c| (c * 1e9).round() as i64),
        logging: &r.logging,
        healthcheck: r.healthcheck.as_ref().map(|h| {
            [
                Some(serde_json::to_string(&h.test).unwrap_or_default()),
                h.interval.map(|d| d.as_millis().to_string()),
                h.timeout.map(|d| d.as_millis().to_string()),
                h.retries.map(|n| n.to_string()),
                h.start_period.map(|d| d.as_millis().to_string()),
            ]
        }),
        restart: r.restart.as_str(),
        stop_timeout_ms: r.stop_timeout.map(|d| d.as_millis()),
        networks: &r.networks,
        alias: &r.service,
    };
    let json = serde_json::to_vec(&h).expect("plain data always serialises");
    hex::encode(Sha256::digest(&json))
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &str = r#"
platform: acme
services:
  db:
    image: r/db
  billing:
    image: r/billing
    ports: ["8081:8080"]
    volumes: ["logs:/var/log/tomcat"]
    env: {A: "1"}
    env_file: secrets/billing.env
    depends_on: [db]
environments:
  recette:
    hosts:
      rec-1: {endpoint: "unix:///var/run/docker.sock"}
    versions: {billing: "2.4.1", db: "15"}
    overrides:
      billing: {env: {A: "2"}}
  prod:
    hosts:
      p1: {endpoint: "tcp://10.0.0.1:2375", insecure: true}
      p2: {endpoint: "tcp://10.0.0.2:2375", insecure: true, services: [db]}
    versions: {billing: "2.4.0", db: "15"}
"#;

    fn secrets(_: &str) -> Result<String, String> {
        Ok("PASSWORD=hunter2\n".into())
    }

    fn manifest(text: &str) -> Manifest {
        crate::manifest::parse_str(text).unwrap_or_else(|p| panic!("{p:?}"))
    }

    #[test]
    fn a_hosts_list_gives_its_services_in_manifest_order_and_only_pinned_ones() {
        let m = manifest(
            r#"
platform: acme
services:
  a: {image: r/a}
  b: {image: r/b}
  c: {image: r/c}
  d: {image: r/d}
environments:
  prod:
    hosts:
      p1: {endpoint: "tcp://10.0.0.1:2375", insecure: true, services: [d, b, a]}
      p2: {endpoint: "tcp://10.0.0.2:2375", insecure: true}
    versions: {a: "1", b: "1", c: "1"}
"#,
        );
        assert_eq!(m.services_on("prod", "p1"), ["a", "b"]);
        assert_eq!(m.services_on("prod", "p2"), ["a", "b", "c"]);
        assert!(m.services_on("prod", "nope").is_empty());
    }

    #[test]
    fn resolves_in_dependency_order_with_overrides_and_names() {
        let m = manifest(M);
        let r = resolve_host(&m, "recette", "rec-1", &secrets).unwrap();
        assert_eq!(
            r.iter().map(|s| s.service.as_str()).collect::<Vec<_>>(),
            ["db", "billing"]
        );
        let b = &r[1];
        assert_eq!(b.container_name, "acme-recette-billing");
        assert_eq!(b.image_ref, "r/billing:2.4.1");
        assert_eq!(b.env["A"], "2");
        assert_eq!(b.secret_env["PASSWORD"].expose(), "hunter2");
        assert_eq!(
            b.mounts[0].source,
            MountSource::Volume {
                name: "acme-recette-logs".into()
            }
        );
        assert_eq!(b.networks, ["acme-recette-default"]);
        assert_eq!(b.spec_hash.len(), 64);
        assert!(!format!("{b:?}").contains("hunter2"));
        assert!(!serde_json::to_string(&**b).unwrap().contains("hunter2"));
    }

    #[test]
    fn host_service_lists_filter() {
        let m = manifest(M);
        let r = resolve_host(&m, "prod", "p2", &secrets).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].service, "db");
    }

    #[test]
    fn hash_is_stable_and_sensitive() {
        let m = manifest(M);
        let a = resolve_host(&m, "prod", "p1", &secrets).unwrap();
        let b = resolve_host(&m, "prod", "p1", &secrets).unwrap();
        assert_eq!(a[1].spec_hash, b[1].spec_hash);
        let m2 = manifest(&M.replace("2.4.0", "2.4.2"));
        let c = resolve_host(&m2, "prod", "p1", &secrets).unwrap();
        assert_ne!(a[1].spec_hash, c[1].spec_hash);
        assert_eq!(a[0].spec_hash, c[0].spec_hash, "db did not change");
        let m3 = manifest(&M.replace("env: {A: \"1\"}", "env: {A: \"1\", B: x}"));
        let d = resolve_host(&m3, "prod", "p1", &secrets).unwrap();
        assert_ne!(a[1].spec_hash, d[1].spec_hash);
    }

    #[test]
    fn secret_values_stay_out_of_the_hash_but_their_names_do_not() {
        let m = manifest(M);
        let a = resolve_host(&m, "prod", "p1", &secrets).unwrap();
        let other = resolve_host(&m, "prod", "p1", &|_: &str| {
            Ok("PASSWORD=other\n".to_string())
        })
        .unwrap();
        assert_eq!(
            a[1].spec_hash, other[1].spec_hash,
            "a value is found by comparing with the container, never hashed"
        );
        let renamed = resolve_host(&m, "prod", "p1", &|_: &str| {
            Ok("PASSWD=hunter2\n".to_string())
        })
        .unwrap();
        assert_ne!(a[1].spec_hash, renamed[1].spec_hash);
    }

    /// The hashes fleetpin 0.x (scheme 1) wrote on these very containers: they must still be
    /// recognised, so that upgrading fleetpin redeploys nothing.
    #[test]
    fn containers_labelled_by_scheme_one_are_recognised() {
        let m = manifest(M);
        let a = resolve_host(&m, "prod", "p1", &secrets).unwrap();
        let db = "864fa2e068a39878482726ce5dad17fb6dcc687e445649f77a51af5beaeaf363";
        let billing = "890d338f94ba39b6ead63f8b5b6adf6ca35662c5d87ae74e90a51b96e834f5cd";
        assert_ne!(a[0].spec_hash, db);
        assert!(a[0].hash_matches(db));
        assert!(a[1].hash_matches(billing));
        assert!(!a[0].hash_matches(billing));
        // The old scheme's hash of another value does not match: that container is replaced.
        let other = resolve_host(&m, "prod", "p1", &|_: &str| {
            Ok("PASSWORD=other\n".to_string())
        })
        .unwrap();
        assert!(!other[1].hash_matches(billing));
        // And it is never shown: not in Debug, not in JSON.
        assert!(!format!("{:?}", a[1]).contains(billing));
        assert!(!serde_json::to_string(&*a[1]).unwrap().contains(billing));
    }

    #[test]
    fn sops_values_and_plain_ones_override_each_other_per_environment() {
        use crate::secrets::KeyPath;
        struct Fake;
        impl Secrets for Fake {
            fn env_file(&self, _: &str) -> Result<Vec<(String, Secret)>, String> {
                Ok(vec![])
            }
            fn sops_value(&self, file: &str, key: &KeyPath) -> Result<Secret, String> {
                Ok(Secret::new(format!("{file}#{key}")))
            }
        }
        let m = manifest(
            r#"
platform: acme
services:
  api:
    image: r/api
    env:
      PLAIN: a
      DB: {sops: s/all.yaml, key: db.url}
      TOKEN: {sops: s/all.yaml, key: [api, "tok.en"]}
environments:
  recette:
    hosts: {r1: {endpoint: "unix:///var/run/docker.sock"}}
    versions: {api: "1"}
    overrides:
      api:
        env:
          DB: recette-db
          PLAIN: {sops: s/rec.yaml, key: [list, 0, v]}
  prod:
    hosts: {p1: {endpoint: "unix:///var/run/docker.sock"}}
    versions: {api: "1"}
"#,
        );
        let rec = &resolve_host(&m, "recette", "r1", &Fake).unwrap()[0];
        assert_eq!(
            rec.env,
            BTreeMap::from([("DB".into(), "recette-db".into())])
        );
        assert_eq!(rec.secret_env["PLAIN"].expose(), "s/rec.yaml#list[0].v");
        assert_eq!(
            rec.secret_env["TOKEN"].expose(),
            "s/all.yaml#api[\"tok.en\"]"
        );
        assert!(!rec.secret_env.contains_key("DB"));
        let prod = &resolve_host(&m, "prod", "p1", &Fake).unwrap()[0];
        assert_eq!(prod.env, BTreeMap::from([("PLAIN".into(), "a".into())]));
        assert_eq!(prod.secret_env["DB"].expose(), "s/all.yaml#db.url");
        let json = serde_json::to_string(prod).unwrap();
        assert!(json.contains(r#""secret_env":["DB","TOKEN"]"#), "{json}");
        assert!(!json.contains("s/all.yaml#"), "{json}");
    }

    #[test]
    fn env_file_errors_do_not_leak_values() {
        let e = parse_env_file("OK=1\nthis-is-secret-but-broken\n").unwrap_err();
        assert!(!e.contains("secret"), "{e}");
        assert_eq!(
            parse_env_file("# c\nexport A=\"x y\"\n\nB='z'\n").unwrap(),
            vec![("A".into(), "x y".into()), ("B".into(), "z".into())]
        );
    }

    #[test]
    fn an_unknown_environment_or_host_names_those_there_are() {
        let m = manifest(M);
        let e = m.environment("staging").unwrap_err();
        assert_eq!(
            e.to_string(),
            "there is no environment `staging` (environments: recette, prod)"
        );
        assert_eq!(
            e.in_file(std::path::Path::new("fleet.yaml")).to_string(),
            "there is no environment `staging` in fleet.yaml (environments: recette, prod)"
        );
        let prod = m.environment("prod").unwrap();
        assert_eq!(
            check_host("prod", prod, "p9").unwrap_err().to_string(),
            format!(
                "there is no host `p9` in environment `prod` (hosts: {})",
                prod.hosts.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        );
    }

    #[test]
    fn unknown_environment_and_host() {
        let m = manifest(M);
        assert!(matches!(
            resolve_host(&m, "staging", "x", &secrets),
            Err(ResolveError::UnknownEnvironment(..))
        ));
        assert!(matches!(
            resolve_host(&m, "prod", "p9", &secrets),
            Err(ResolveError::UnknownHost { .. })
        ));
    }
}
