//! The test crates' one shared support. `run` (the fleetpin binary), `git`, `mem` (in-memory
//! hosts) and `sops` (the real sops CLI) need no fleet and are what the fleet-free crates use; the
//! rest is what integration tests know about the private Docker fleet (tests/fleet/fleet.sh),
//! read only when a test asks for the fleet.
//!
//! The fleet script writes its addresses to a KEY=VALUE file; tests read it here. When the fleet
//! is not up, a test must not pass silently: under CI it fails with the command that starts the
//! fleet; on a developer machine it skips with a loud note.

#![allow(dead_code)]

pub mod agent;
pub mod docker;
pub mod git;
pub mod mem;
pub mod oidc;
pub mod run;
pub mod sops;
pub mod webhook;

pub use run::Out;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub const DEFAULT_ENV_FILE: &str = "/run/fleetpin-fleet/fleet.env";

#[derive(Debug, Clone)]
pub struct FleetHost {
    pub name: String,
    pub addr: String,
    /// Empty for the TLS host, which has no plain endpoint.
    pub tcp: String,
    /// `tcp://ADDR:2376` for the TLS host.
    pub tls: String,
    pub unix: String,
    pub netns: String,
}

#[derive(Debug, Clone)]
pub struct Fleet {
    /// Where the TLS host's certificates are (ca.pem, cert.pem, key.pem, other-*.pem).
    pub tls_dir: String,
    pub auth_registry: String,
    pub auth_user: String,
    pub auth_password: String,
    pub registry: String,
    pub image: String,
    pub proxy_image: String,
    /// A reverse proxy (Caddy) that re-resolves its upstream alias every second and retries.
    pub caddy_image: String,
    /// An HTTP app that drains in-flight requests on SIGTERM (tags 1.0.0, 1.1.0, 2.0.0, broken).
    pub graceful_image: String,
    pub tags: Vec<String>,
    pub hosts: Vec<FleetHost>,
    /// The fleet's sshd (FLEET_SSH_*), when fleet.env describes one.
    pub ssh: Option<FleetSsh>,
}

/// The fleet's sshd: in one host's namespace, key authentication only, its sessions reaching
/// that host's dockerd (tests/fleet/README.md, "sshd").
#[derive(Debug, Clone)]
pub struct FleetSsh {
    /// The fleet host whose dockerd the sessions reach (`h2`).
    pub host: String,
    pub user: String,
    pub addr: String,
    /// 22 and 2222.
    pub ports: Vec<u16>,
    /// For `ssh -F`: the fleet's key and known_hosts for that address.
    pub config: String,
}

impl FleetSsh {
    /// The ssh command line tests give fleetpin (FLEETPIN_SSH_COMMAND) and git (GIT_SSH_COMMAND).
    pub fn command(&self) -> String {
        format!("ssh -F {}", self.config)
    }
}

/// The fleet's sshd, or `None` (after a loud note) outside CI when fleet.env has none; under CI,
/// panics.
pub fn ssh(fleet: &Fleet) -> Option<FleetSsh> {
    match &fleet.ssh {
        Some(s) => Some(s.clone()),
        None => {
            let msg = "the fleet has no sshd (no FLEET_SSH_* in fleet.env: it was started by an \
                       older fleet.sh); run `sudo tests/fleet/fleet.sh up` again.";
            if std::env::var_os("CI").is_some() {
                panic!("{msg}");
            }
            eprintln!("\n!!! SKIPPING ssh fleet test: {msg}\n");
            None
        }
    }
}

/// Skip (outside CI) or fail (under CI) when the fleet or its sshd is not up.
#[macro_export]
macro_rules! require_ssh {
    () => {{
        let fleet = require_fleet!();
        match support::ssh(&fleet) {
            Some(s) => (fleet, s),
            None => return,
        }
    }};
}

fn env_file() -> PathBuf {
    std::env::var_os("FLEETPIN_FLEET_ENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ENV_FILE))
}

fn parse(text: &str) -> Option<Fleet> {
    let vars: BTreeMap<&str, &str> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    let get = |k: &str| vars.get(k).map(|v| v.to_string());
    let hosts = get("FLEET_HOSTS")?
        .split_whitespace()
        .map(|h| {
            let up = h.to_ascii_uppercase();
            Some(FleetHost {
                name: h.to_string(),
                addr: get(&format!("FLEET_{up}_ADDR"))?,
                tcp: get(&format!("FLEET_{up}_TCP")).unwrap_or_default(),
                tls: get(&format!("FLEET_{up}_TLS")).unwrap_or_default(),
                unix: get(&format!("FLEET_{up}_UNIX"))?,
                netns: get(&format!("FLEET_{up}_NETNS")).unwrap_or_default(),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Fleet {
        tls_dir: get("FLEET_TLS_DIR").unwrap_or_default(),
        auth_registry: get("FLEET_AUTH_REGISTRY").unwrap_or_default(),
        auth_user: get("FLEET_AUTH_USER").unwrap_or_default(),
        auth_password: get("FLEET_AUTH_PASSWORD").unwrap_or_default(),
        registry: get("FLEET_REGISTRY")?,
        image: get("FLEET_IMAGE")?,
        proxy_image: get("FLEET_PROXY_IMAGE").unwrap_or_default(),
        caddy_image: match (get("FLEET_CADDY_IMAGE"), get("FLEET_CADDY_TAG")) {
            (Some(i), Some(t)) => format!("{i}:{t}"),
            _ => String::new(),
        },
        graceful_image: get("FLEET_GRACEFUL_IMAGE").unwrap_or_default(),
        tags: get("FLEET_TAGS")?
            .split_whitespace()
            .map(String::from)
            .collect(),
        hosts,
        ssh: (|| {
            Some(FleetSsh {
                host: get("FLEET_SSH_HOST")?,
                user: get("FLEET_SSH_USER")?,
                addr: get("FLEET_SSH_ADDR")?,
                ports: get("FLEET_SSH_PORTS")?
                    .split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect(),
                config: get("FLEET_SSH_CONFIG")?,
            })
        })(),
    })
}

/// The fleet, or `None` (after a loud note) when it is not up outside CI. Under CI, panics.
pub fn fleet() -> Option<Fleet> {
    let path = env_file();
    let found = std::fs::read_to_string(&path).ok().and_then(|t| parse(&t));
    match found {
        Some(f) => Some(f),
        None => {
            let msg = format!(
                "the private Docker fleet is not up ({} missing or incomplete).\n\
                 Start it with `sudo tests/fleet/fleet.sh up`, or run the whole suite with \
                 `sudo tests/fleet/fleet.sh run cargo test`.",
                path.display()
            );
            if std::env::var_os("CI").is_some() {
                panic!("{msg}");
            }
            eprintln!("\n!!! SKIPPING fleet test: {msg}\n");
            None
        }
    }
}

/// Skip (outside CI) or fail (under CI) when the fleet is not up.
#[macro_export]
macro_rules! require_fleet {
    () => {
        match support::fleet() {
            Some(f) => f,
            None => return,
        }
    };
}

/// Every fleet test's opening: the fleet (skipping or failing as `require_fleet!` does) and
/// the test's `Scenario` named `$name`, as `(fleet, scenario)`.
#[macro_export]
macro_rules! fleet_scenario {
    ($name:expr) => {{
        let fleet = require_fleet!();
        let s = support::Scenario::new(&fleet, $name);
        (fleet, s)
    }};
}

/// One test's private corner of the fleet: its own platform name (so tests run in parallel
/// without touching each other's containers), its own manifest in a temp git repository, and
/// its own host ports.
pub struct Scenario {
    pub fleet: Fleet,
    pub platform: String,
    pub dir: tempfile::TempDir,
}

impl Scenario {
    pub fn new(fleet: &Fleet, name: &str) -> Scenario {
        let s = Scenario {
            fleet: fleet.clone(),
            platform: format!("t-{name}"),
            dir: tempfile::tempdir().unwrap(),
        };
        git2::Repository::init(s.dir.path()).unwrap();
        s.cleanup();
        s
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("platform.yaml")
    }

    /// Writes the manifest and commits it, so deploys carry a real commit label.
    pub fn write(&self, manifest: &str) {
        std::fs::write(self.path(), manifest).unwrap();
        self.commit("manifest");
    }

    pub fn commit(&self, message: &str) {
        git::commit(
            self.dir.path(),
            &["platform.yaml"],
            "tester",
            "tester@example.test",
            message,
        );
    }

    pub fn head(&self) -> String {
        git::head(self.dir.path())
    }

    /// The subject of the manifest repository's last commit.
    pub fn head_subject(&self) -> String {
        git::head_subject(self.dir.path())
    }

    /// The plain-TCP hosts (h1..h3); the TLS host is only used by the security tests.
    pub fn plain_hosts(&self) -> Vec<&FleetHost> {
        self.fleet
            .hosts
            .iter()
            .filter(|h| !h.tcp.is_empty())
            .collect()
    }

    pub fn host(&self, name: &str) -> &FleetHost {
        self.fleet.hosts.iter().find(|h| h.name == name).unwrap()
    }

    /// An environment's `hosts:` entries for fleet hosts `hosts`, by their plain-TCP endpoint.
    pub fn host_lines(&self, hosts: &[&str]) -> String {
        hosts
            .iter()
            .map(|h| {
                format!(
                    "      {h}: {{endpoint: \"{}\", insecure: true}}\n",
                    self.host(h).tcp
                )
            })
            .collect()
    }

    /// A manifest: `services` are (name, host port, extra YAML lines); `versions` the pins of
    /// environment `test` on `hosts`.
    pub fn manifest(
        &self,
        hosts: &[&str],
        services: &[(&str, u16, &str)],
        versions: &[(&str, &str)],
    ) -> String {
        let mut m = format!("platform: {}\nretain: 2\nservices:\n", self.platform);
        for (name, port, extra) in services {
            m.push_str(&format!(
                "  {name}:\n    image: {}\n    ports: [\"{port}:8080\"]\n",
                self.fleet.image
            ));
            for line in extra.lines().filter(|l| !l.trim().is_empty()) {
                m.push_str(&format!("    {line}\n"));
            }
        }
        m.push_str("environments:\n  test:\n    hosts:\n");
        for h in hosts {
            let endpoint = match self.fleet.hosts.iter().find(|x| x.name == *h) {
                Some(x) => x.tcp.clone(),
                None => h.to_string(),
            };
            let name = if h.contains("://") { "dead" } else { h };
            m.push_str(&format!(
                "      {name}: {{endpoint: \"{endpoint}\", insecure: true}}\n"
            ));
        }
        m.push_str("    versions:\n");
        for (s, v) in versions {
            m.push_str(&format!("      {s}: \"{v}\"\n"));
        }
        m
    }

    /// `manifest` with one service, `web` on host port `port`, pinned at `version`.
    pub fn web(&self, hosts: &[&str], port: u16, version: &str) -> String {
        self.manifest(hosts, &[("web", port, "")], &[("web", version)])
    }

    /// Writes and commits `web(hosts, port, version)`.
    pub fn write_web(&self, hosts: &[&str], port: u16, version: &str) {
        self.write(&self.web(hosts, port, version));
    }

    /// `write_web`, then an apply of `test` that must succeed.
    pub fn deploy(&self, hosts: &[&str], port: u16, version: &str) -> Out {
        self.write_web(hosts, port, version);
        self.apply_ok("test")
    }

    /// `fleetpin apply ENV --yes`, which must exit 0.
    pub fn apply_ok(&self, env: &str) -> Out {
        let out = self.run(&["apply", env, "--yes"]);
        assert_eq!(out.code, 0, "{out:?}");
        out
    }

    /// What `host` answers on `port`'s /version.
    pub fn version(&self, host: &str, port: u16) -> Option<String> {
        self.get(host, port, "/version")
    }

    pub fn run(&self, args: &[&str]) -> Out {
        self.run_with(args, &[])
    }

    /// `run` with extra environment variables.
    pub fn run_with(&self, args: &[&str], envs: &[(&str, &str)]) -> Out {
        self.run_prefixed(&[], args, envs)
    }

    /// `run` under a wrapper program (`faketime +2h`, …).
    pub fn run_prefixed(&self, wrapper: &[&str], args: &[&str], envs: &[(&str, &str)]) -> Out {
        run::output(
            run::wrapped(wrapper)
                .current_dir(self.dir.path())
                .args(args)
                .envs(envs.iter().copied())
                .env("FLEETPIN_USER", "tester@example.test"),
        )
    }

    pub fn docker(&self, host: &str) -> bollard::Docker {
        let h = self.host(host);
        let path = h.unix.trim_start_matches("unix://");
        bollard::Docker::connect_with_unix(path, 60, bollard::API_DEFAULT_VERSION).unwrap()
    }

    /// Containers of this scenario on `host`: (name, state, version label).
    pub fn containers(&self, host: &str) -> Vec<(String, String, String)> {
        let docker = self.docker(host);
        let prefix = format!("{}-", self.platform);
        block_on(async move {
            let opts = bollard::query_parameters::ListContainersOptionsBuilder::new()
                .all(true)
                .build();
            let list = docker.list_containers(Some(opts)).await.unwrap();
            let mut out: Vec<(String, String, String)> = list
                .into_iter()
                .filter_map(|c| {
                    let name = c.names?.first()?.trim_start_matches('/').to_string();
                    name.starts_with(&prefix).then(|| {
                        (
                            name,
                            c.state.map(|s| s.to_string()).unwrap_or_default(),
                            c.labels
                                .and_then(|l| l.get("io.fleetpin.version").cloned())
                                .unwrap_or_default(),
                        )
                    })
                })
                .collect();
            out.sort();
            out
        })
    }

    /// `containers(host)` whose name contains `part` (`.failed-`, `.prev-`, …).
    pub fn containers_with(&self, host: &str, part: &str) -> Vec<(String, String, String)> {
        self.containers(host)
            .into_iter()
            .filter(|(n, _, _)| n.contains(part))
            .collect()
    }

    /// The container `name`'s configuration on `host`.
    pub fn config(&self, host: &str, name: &str) -> bollard::models::ContainerConfig {
        self.inspect(host, name).config.unwrap()
    }

    pub fn inspect(&self, host: &str, name: &str) -> bollard::models::ContainerInspectResponse {
        self.try_inspect(host, name).unwrap()
    }

    /// `inspect`, for a container that may not be there.
    pub fn try_inspect(
        &self,
        host: &str,
        name: &str,
    ) -> Result<bollard::models::ContainerInspectResponse, bollard::errors::Error> {
        let docker = self.docker(host);
        let name = name.to_string();
        let opts = None::<bollard::query_parameters::InspectContainerOptions>;
        block_on(async move { docker.inspect_container(&name, opts).await })
    }

    /// The image `reference` (a name or an id) on `host`, if it is there.
    pub fn inspect_image(
        &self,
        host: &str,
        reference: &str,
    ) -> Result<bollard::models::ImageInspect, bollard::errors::Error> {
        let docker = self.docker(host);
        let reference = reference.to_string();
        block_on(async move { docker.inspect_image(&reference).await })
    }

    /// The restart policy of the container `name` on `host` (`no`, `unless-stopped`, …).
    pub fn restart_policy(&self, host: &str, name: &str) -> String {
        let hc = self.inspect(host, name).host_config.unwrap();
        hc.restart_policy.unwrap().name.unwrap().to_string()
    }

    /// `fleetpin audit ARGS… --format html -o audit.html`: the run and the page it wrote (a
    /// panic showing the run when it wrote none).
    pub fn audit_html(&self, args: &[&str]) -> (Out, String) {
        let path = self.dir.path().join("audit.html");
        let mut all = vec!["audit"];
        all.extend(args);
        all.extend(["--format", "html", "-o", path.to_str().unwrap()]);
        let out = self.run(&all);
        let page = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("{out:?}"));
        (out, page)
    }

    /// GET http://{host addr}:{port}{path}, with a short timeout; None when nothing answers.
    pub fn get(&self, host: &str, port: u16, path: &str) -> Option<String> {
        http_get(&self.host(host).addr, port, path)
    }

    /// Removes every container, lock and volume of this scenario on every host.
    pub fn cleanup(&self) {
        for h in &self.fleet.hosts {
            let docker = self.docker(&h.name);
            let platform = self.platform.clone();
            block_on(async move {
                let opts = bollard::query_parameters::ListContainersOptionsBuilder::new()
                    .all(true)
                    .build();
                let Ok(list) = docker.list_containers(Some(opts)).await else {
                    return;
                };
                for c in list {
                    let Some(name) = c
                        .names
                        .as_ref()
                        .and_then(|n| n.first())
                        .map(|n| n.trim_start_matches('/').to_string())
                    else {
                        continue;
                    };
                    if name.starts_with(&format!("{platform}-"))
                        || name.starts_with(&format!("fleetpin-lock-{platform}-"))
                    {
                        let opts = bollard::query_parameters::RemoveContainerOptionsBuilder::new()
                            .force(true)
                            .build();
                        let _ = docker.remove_container(&name, Some(opts)).await;
                    }
                }
                // Networks too: every test's network is a /16 bridge, and an engine has ~30.
                if let Ok(nets) = docker
                    .list_networks(None::<bollard::query_parameters::ListNetworksOptions>)
                    .await
                {
                    for n in nets {
                        let name = n.name.unwrap_or_default();
                        if name.starts_with(&format!("{platform}-")) {
                            let _ = docker.remove_network(&name).await;
                        }
                    }
                }
                if let Ok(v) = docker
                    .list_volumes(None::<bollard::query_parameters::ListVolumesOptions>)
                    .await
                {
                    for vol in v.volumes.unwrap_or_default() {
                        if vol.name.starts_with(&format!("{platform}-")) {
                            let _ = docker
                                .remove_volume(
                                    &vol.name,
                                    None::<bollard::query_parameters::RemoveVolumeOptions>,
                                )
                                .await;
                        }
                    }
                }
            });
        }
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.cleanup();
        }
    }
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

pub fn http_get(addr: &str, port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::time::Duration;
    let sock: SocketAddr = format!("{addr}:{port}").parse().ok()?;
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let (head, body) = buf.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.").then(|| body.trim().to_string())
}

impl Scenario {
    /// Makes `repo:tag` in the test registry point at the image `source` (pulled on `host`
    /// first), as a release engineer re-pushing a tag would; returns the registry digest.
    pub fn push_as(&self, host: &str, source: &str, repo: &str, tag: &str) -> String {
        let docker = self.docker(host);
        let (source, repo, tag) = (source.to_string(), repo.to_string(), tag.to_string());
        block_on(async move {
            docker::pull(&docker, &source).await;
            let opts = bollard::query_parameters::TagImageOptionsBuilder::new()
                .repo(&repo)
                .tag(&tag)
                .build();
            docker.tag_image(&source, Some(opts)).await.unwrap();
            docker::push(&docker, &repo, &tag).await;
            let img = docker
                .inspect_image(&format!("{repo}:{tag}"))
                .await
                .unwrap();
            let digest = img
                .repo_digests
                .unwrap_or_default()
                .into_iter()
                .find_map(|d| d.strip_prefix(&format!("{repo}@")).map(str::to_string))
                .expect("a pushed image has a registry digest");
            // Leave the host without the tag so that later pulls go to the registry.
            let _ = docker
                .remove_image(
                    &format!("{repo}:{tag}"),
                    None::<bollard::query_parameters::RemoveImageOptions>,
                    None,
                )
                .await;
            digest
        })
    }

    /// Pulls `image` on `host` and creates the container `name` from it by hand, as someone
    /// who is not fleetpin would (started when `start`); returns its id.
    pub fn by_hand(&self, host: &str, name: &str, image: &str, start: bool) -> String {
        let docker = self.docker(host);
        block_on(async move {
            docker::pull(&docker, image).await;
            let id = docker::create_plain(&docker, name, image).await;
            if start {
                docker::start(&docker, &id).await;
            }
            id
        })
    }

    /// Removes an image from a host (so that the next deploy has to pull it), if it is there.
    pub fn remove_image(&self, host: &str, reference: &str) {
        let docker = self.docker(host);
        let reference = reference.to_string();
        block_on(async move {
            let opts = bollard::query_parameters::RemoveImageOptionsBuilder::new()
                .force(true)
                .build();
            let _ = docker.remove_image(&reference, Some(opts), None).await;
        });
    }

    /// The registry digest of the image the container `name` on `host` runs.
    pub fn running_digest(&self, host: &str, name: &str, repo: &str) -> String {
        let image = self.inspect(host, name).image.unwrap();
        self.inspect_image(host, &image)
            .unwrap()
            .repo_digests
            .unwrap_or_default()
            .into_iter()
            .find_map(|d| d.strip_prefix(&format!("{repo}@")).map(str::to_string))
            .unwrap_or_default()
    }

    /// Writes and commits `path_manifest` of the fleet's image on h1, h2 and h3.
    pub fn write_path(&self, port: u16, pins: [&str; 3]) {
        self.write(&self.path_manifest(&self.fleet.image, port, pins, ["h1", "h2", "h3"]));
    }

    /// A three-environment manifest (recette on `hosts[0]`, preprod on `hosts[1]`, prod on
    /// `hosts[2]`), with comments, for promotion tests.
    pub fn path_manifest(
        &self,
        image: &str,
        port: u16,
        pins: [&str; 3],
        hosts: [&str; 3],
    ) -> String {
        let ep = |h: &str| self.host(h).tcp.clone();
        format!(
            "# {platform}: the promotion path\nplatform: {platform}\nservices:\n  web:\n    image: {image}\n    ports: [\"{port}:8080\"]\n\nenvironments:\n  recette:   # first stop\n    hosts:\n      r1: {{endpoint: \"{r}\", insecure: true}}\n    versions:\n      web: \"{a}\"   # what the testers see\n  preprod:\n    hosts:\n      p1: {{endpoint: \"{p}\", insecure: true}}\n    versions:\n      web: '{b}'\n  prod:\n    hosts:\n      q1: {{endpoint: \"{q}\", insecure: true}}\n    versions:\n      web: {c}\n",
            platform = self.platform,
            r = ep(hosts[0]),
            p = ep(hosts[1]),
            q = ep(hosts[2]),
            a = pins[0],
            b = pins[1],
            c = pins[2],
        )
    }
}

/// Runs `tests/fleet/fleet.sh ARGS…`; whether it ran and succeeded.
fn fleet_sh_ok<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> bool {
    std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fleet/fleet.sh"))
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

pub fn fleet_sh(args: &[&str]) {
    assert!(fleet_sh_ok(args), "fleet.sh {args:?} failed");
}

/// A fault put on the fleet (a killed engine, a cut network, a stopped registry) and the
/// `fleet.sh` command that undoes it. Dropped, it undoes the fault even when the test panicked
/// first: one failed assertion must not leave a dead host to every suite that runs after it.
pub struct Fault {
    undo: Vec<String>,
    undone: bool,
}

/// Runs `fleet.sh do_args` now and `fleet.sh undo_args` when the fault is undone or dropped.
pub fn fault(do_args: &[&str], undo_args: &[&str]) -> Fault {
    fleet_sh(do_args);
    Fault {
        undo: undo_args.iter().map(|a| a.to_string()).collect(),
        undone: false,
    }
}

impl Fault {
    /// Undoes the fault now (asserting that it worked).
    pub fn undo(mut self) {
        self.undone = true;
        let args: Vec<&str> = self.undo.iter().map(String::as_str).collect();
        fleet_sh(&args);
    }
}

impl Drop for Fault {
    fn drop(&mut self) {
        if !self.undone {
            // Already unwinding: report, never panic twice.
            if !fleet_sh_ok(&self.undo) {
                eprintln!("fleet.sh {:?} failed while undoing a fault", self.undo);
            }
        }
    }
}

/// Starts fleetpin with `args`, pausing at fault point `at`, and returns once it got there.
pub fn spawn_paused(
    s: &Scenario,
    args: &[&str],
    at: &str,
    pause_secs: u64,
) -> (std::process::Child, std::thread::JoinHandle<String>) {
    spawn_paused_with(s, args, at, pause_secs, &[])
}

/// `spawn_paused` with extra environment variables.
pub fn spawn_paused_with(
    s: &Scenario,
    args: &[&str],
    at: &str,
    pause_secs: u64,
    envs: &[(&str, &str)],
) -> (std::process::Child, std::thread::JoinHandle<String>) {
    spawn_paused_times(s, args, at, pause_secs, envs, 1)
}

/// `spawn_paused_with` that returns once `times` swaps (one per host when hosts run side by
/// side) have reached the fault point: the first host there is not necessarily the one a test
/// is about to disturb.
pub fn spawn_paused_times(
    s: &Scenario,
    args: &[&str],
    at: &str,
    pause_secs: u64,
    envs: &[(&str, &str)],
    times: usize,
) -> (std::process::Child, std::thread::JoinHandle<String>) {
    let mut child = run::fleetpin_in(s.dir.path())
        .args(args)
        .envs(envs.iter().copied())
        .env("FLEETPIN_USER", "tester@example.test")
        .env("FLEETPIN_FAULT_PAUSE", at)
        .env("FLEETPIN_FAULT_PAUSE_SECS", pause_secs.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
            if line.starts_with("fault point") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    for reached in 0..times {
        rx.recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!("fleetpin reached fault point {at} {reached} time(s), not {times}")
            });
    }
    (child, reader)
}

pub fn names(s: &Scenario, host: &str) -> Vec<String> {
    s.containers(host).into_iter().map(|(n, _, _)| n).collect()
}

/// Exactly one running container under the stable name, no half-created one, at most two
/// retained, and the port answering `version` (the fault suites' "nothing lost, converged").
pub fn assert_converged(s: &Scenario, host: &str, service: &str, version: &str, port: u16) {
    let stable = format!("{}-test-{service}", s.platform);
    let list = s.containers(host);
    let running: Vec<_> = list.iter().filter(|(_, st, _)| st == "running").collect();
    assert_eq!(running.len(), 1, "{host}: {list:?}");
    assert_eq!(running[0].0, stable, "{host}: {list:?}");
    assert_eq!(running[0].2, version, "{host}: {list:?}");
    assert!(
        !list.iter().any(|(n, _, _)| n.contains(".new-")),
        "{host}: {list:?}"
    );
    assert!(
        list.iter().filter(|(n, _, _)| n.contains(".prev-")).count() <= 2,
        "{host}: {list:?}"
    );
    assert_eq!(
        s.version(host, port).as_deref(),
        Some(version),
        "{host} answers"
    );
}

/// The file the fault suites write in `volume` on `host`, to find it intact after a fault.
pub fn volume_file(s: &Scenario, host: &str, volume: &str) -> std::path::PathBuf {
    let docker = s.docker(host);
    let name = format!("{}-test-{volume}", s.platform);
    let mount = block_on(async move { docker.inspect_volume(&name).await.unwrap().mountpoint });
    std::path::Path::new(&mount).join("precious.txt")
}

/// A service's named volume, whose file `volume_file` finds on the host.
pub const VOL: &str = "volumes: [\"data:/data\"]";
