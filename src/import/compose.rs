//! One compose file, decoded into what a fleetpin manifest can say, with every value located.
//!
//! The file is parsed by the manifest's own YAML reader (`manifest::yaml`), so a compose problem
//! is shown exactly like a manifest problem: file, line, column, snippet. Every key is either
//! carried (translated into the manifest's form) or refused where it is written: a setting that
//! cannot be expressed is never dropped quietly, because a service that silently lost its
//! `privileged` or its `secrets` would fail in production, not at import. The few keys that
//! change nothing on a Linux host (`expose`, `:cached`) are dropped with a warning.
//! Values go through compose's substitution (`interpolate`) with the variables of the `.env`
//! beside the file, exactly where compose would substitute them: in values, never in keys.

use crate::import::dotenv;
use crate::import::interpolate::{InterpError, substitute};
use crate::manifest::decode::{
    check_repository, did_you_mean, is_service_name, valid_env_key, valid_label_key,
};
use crate::manifest::diagnostics::Problem;
use crate::manifest::pin::VersionPin;
use crate::manifest::values::{
    PortMapping, VolumeMount, parse_duration, parse_memory, valid_network_name, valid_volume_name,
};
use crate::manifest::yaml::{Key, Node, Span, Value};
use crate::manifest::{Healthcheck, Logging, RestartPolicy};
use indexmap::IndexMap;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

/// What decoding needs besides the YAML tree.
pub struct Settings<'a> {
    /// The `.env` variables beside the compose file.
    pub vars: &'a IndexMap<String, String>,
    /// Where that `.env` is (or would be), for messages.
    pub dotenv: &'a Path,
    /// The compose file's directory, absolute: relative `env_file` paths start there.
    pub dir: &'a Path,
    /// The directory the compose project lives in on the hosts (`--project-dir`): relative bind
    /// mounts start there. Without it they cannot be carried.
    pub project_dir: Option<&'a str>,
    /// The manifest's directory, absolute: the `env_file` paths written are relative to it.
    pub out_dir: &'a Path,
}

/// A service as the manifest will say it. Two files define a service identically when their
/// `Svc` are equal.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Svc {
    /// Repository, without tag or digest.
    pub image: String,
    /// The pin: the tag, with `@sha256:…` when the compose file had a digest.
    pub pin: String,
    pub ports: Vec<PortMapping>,
    pub volumes: Vec<VolumeMount>,
    pub env: BTreeMap<String, String>,
    /// As the manifest writes it: relative to the manifest's directory, or absolute.
    pub env_file: Option<String>,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub user: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// As written (validated with the manifest's memory syntax).
    pub memory: Option<String>,
    pub cpus: Option<f64>,
    pub logging: Option<Logging>,
    pub healthcheck: Option<Healthcheck>,
    pub depends_on: Vec<String>,
    /// Compose's default is `no` (fleetpin's is unless-stopped): `None` means "not written".
    pub restart: Option<RestartPolicy>,
    pub stop_timeout: Option<Duration>,
    pub networks: Vec<String>,
}

/// A service of one compose file, where it is, and what the manifest's comments should say.
#[derive(Debug, Clone)]
pub struct Imported {
    pub name: String,
    pub span: Span,
    pub svc: Svc,
    /// Where each of `svc.ports` was written (a range gives several ports one place).
    pub port_spans: Vec<Span>,
    /// Where each of `svc.depends_on` was written.
    pub dep_spans: Vec<Span>,
    /// Comment lines for the manifest, each above the key it is about (what changed meaning on
    /// the way).
    pub notes: Vec<(&'static str, String)>,
}

/// A named volume declared at the top level.
#[derive(Debug, Clone)]
pub struct VolumeDecl {
    pub span: Span,
    /// The name compose gave the Docker volume, when the file says it (`name:`, `external`).
    pub explicit: Option<String>,
    pub external: bool,
    /// Whether a carried service mounts it.
    pub used: bool,
}

/// Everything read from one compose file.
#[derive(Debug, Default)]
pub struct Decoded {
    /// The top-level `name` (compose's project name), if written.
    pub name: Option<String>,
    pub services: Vec<Imported>,
    pub volumes: IndexMap<String, VolumeDecl>,
    pub problems: Vec<Problem>,
    pub warnings: Vec<Problem>,
}

/// The service keys import carries into the manifest.
const CARRIED: &[&str] = &[
    "image",
    "ports",
    "volumes",
    "environment",
    "env_file",
    "command",
    "entrypoint",
    "healthcheck",
    "depends_on",
    "restart",
    "networks",
    "labels",
    "logging",
    "user",
    "stop_grace_period",
    "mem_limit",
    "cpus",
    "expose",
];

/// The other keys of the compose specification: known, and not expressible in a manifest.
const NOT_CARRIED: &[&str] = &[
    "annotations",
    "attach",
    "blkio_config",
    "build",
    "cap_add",
    "cap_drop",
    "cgroup",
    "cgroup_parent",
    "configs",
    "container_name",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpu_shares",
    "cpuset",
    "credential_spec",
    "deploy",
    "develop",
    "device_cgroup_rules",
    "devices",
    "dns",
    "dns_opt",
    "dns_search",
    "domainname",
    "extends",
    "external_links",
    "extra_hosts",
    "gpus",
    "group_add",
    "hostname",
    "init",
    "ipc",
    "isolation",
    "label_file",
    "links",
    "mac_address",
    "mem_reservation",
    "mem_swappiness",
    "memswap_limit",
    "models",
    "network_mode",
    "oom_kill_disable",
    "oom_score_adj",
    "pid",
    "pids_limit",
    "platform",
    "post_start",
    "pre_stop",
    "privileged",
    "profiles",
    "provider",
    "pull_policy",
    "read_only",
    "runtime",
    "scale",
    "secrets",
    "security_opt",
    "shm_size",
    "stdin_open",
    "stop_signal",
    "storage_opt",
    "sysctls",
    "tmpfs",
    "tty",
    "ulimits",
    "use_api_socket",
    "userns_mode",
    "uts",
    "volumes_from",
    "working_dir",
];

/// What an operator can do about a key that cannot be carried.
fn help_for(key: &str) -> String {
    match key {
        "build" => "fleetpin deploys images from a registry and never builds: build and push the image once (in CI), then write `image: REPOSITORY:TAG` instead of `build`".into(),
        "deploy" | "scale" => "`deploy` and `scale` describe Swarm replicas and resources: fleetpin runs one container per service per host (list more hosts for more replicas); write `mem_limit` and `cpus` for limits".into(),
        "extends" => "copy the keys of the extended service into this one (import reads each file on its own)".into(),
        "profiles" => "a profile switches a service on at `docker compose up --profile …`: remove `profiles` to import the service, or remove the service to leave it out".into(),
        "secrets" | "configs" => "put secret values in an `env_file` (fleetpin never prints, logs or labels its values), or mount the file with an absolute bind mount (`/etc/app/secret:/run/secrets/x:ro`)".into(),
        "network_mode" => "fleetpin attaches every service to user-defined bridge networks (`networks`); host, none and container:… modes have no equivalent".into(),
        "container_name" | "hostname" | "domainname" => "fleetpin names the container {platform}-{environment}-{service}; neighbours on a shared network reach it by its service name, as in compose: remove this key".into(),
        "links" | "external_links" => "on a user-defined network services reach each other by service name: remove `links` and share a network".into(),
        "volumes_from" => "mount the same named volumes explicitly under `volumes`".into(),
        "tmpfs" => "fleetpin mounts named volumes and bind mounts only".into(),
        _ => format!("the fleetpin manifest has no `{key}`: remove it if the service runs without it, or keep this service under compose"),
    }
}

impl Decoded {
    fn err(&mut self, span: Span, msg: impl Into<String>) {
        self.problems.push(Problem::new(span, msg.into()));
    }
    fn err_help(&mut self, span: Span, msg: impl Into<String>, help: impl Into<String>) {
        self.problems
            .push(Problem::new(span, msg.into()).with_help(help.into()));
    }
    fn warn(&mut self, span: Span, msg: impl Into<String>) {
        self.warnings.push(Problem::new(span, msg.into()));
    }
}

/// Decodes one parsed compose file.
pub fn decode(root: &Node, s: &Settings) -> Decoded {
    let mut d = Dec {
        s,
        out: Decoded::default(),
    };
    d.file(root);
    d.out
}

struct Dec<'a> {
    s: &'a Settings<'a>,
    out: Decoded,
}

fn entries(n: &Node) -> Option<&[(Key, Node)]> {
    match &n.value {
        Value::Map(m) => Some(m),
        _ => None,
    }
}

fn get<'n>(m: &'n [(Key, Node)], name: &str) -> Option<&'n Node> {
    m.iter().find(|(k, _)| k.name == name).map(|(_, v)| v)
}

/// Where an empty value (`key:` with nothing) is best shown: at its key.
fn at_key(k: &Key, v: &Node) -> Span {
    if v.value == Value::Null {
        k.span
    } else {
        v.span
    }
}

impl Dec<'_> {
    fn err(&mut self, span: Span, msg: impl Into<String>) {
        self.out.err(span, msg)
    }

    /// `raw` after compose's substitution; a problem at `n` when it cannot be done.
    fn interp(&mut self, n: &Node, raw: &str, what: &str) -> Option<String> {
        let vars = self.s.vars;
        match substitute(raw, &|name| vars.get(name).cloned()) {
            Ok(v) => Some(v),
            Err(e) => {
                let help = match &e {
                    InterpError::Invalid { .. } => "write $$ for a literal $".to_string(),
                    _ => {
                        let name = e.variable().unwrap_or("NAME");
                        format!(
                            "add `{name}=…` to {} (import reads variables from the .env beside the compose file, never from the shell), or give a default: ${{{name}:-value}}",
                            self.s.dotenv.display()
                        )
                    }
                };
                self.out
                    .err_help(n.span, format!("{what}: {}", e.message()), help);
                None
            }
        }
    }

    /// A scalar as text, substituted.
    fn text(&mut self, n: &Node, what: &str) -> Option<String> {
        match &n.value {
            Value::Str(s) => {
                let s = s.clone();
                let v = self.interp(n, &s, what)?;
                if v.contains('\0') {
                    self.err(n.span, format!("{what} contains a NUL byte"));
                    return None;
                }
                Some(v)
            }
            Value::Int(_) | Value::Float(_) | Value::Bool(_) => n.scalar_text(),
            _ => {
                self.err(
                    n.span,
                    format!("{what} must be a string, found {}", n.kind()),
                );
                None
            }
        }
    }

    fn map<'n>(&mut self, n: &'n Node, what: &str) -> Option<&'n [(Key, Node)]> {
        match entries(n) {
            Some(m) => Some(m),
            None => {
                self.err(
                    n.span,
                    format!("{what} must be a mapping, found {}", n.kind()),
                );
                None
            }
        }
    }

    fn seq<'n>(&mut self, n: &'n Node, what: &str) -> Option<&'n [Node]> {
        match &n.value {
            Value::Seq(items) => Some(items),
            _ => {
                self.err(n.span, format!("{what} must be a list, found {}", n.kind()));
                None
            }
        }
    }

    /// Keys of a small mapping outside `allowed` (extension fields `x-…` aside) are problems.
    fn only(&mut self, m: &[(Key, Node)], what: &str, allowed: &[&str], why: &str) {
        for (k, _) in m {
            if !allowed.contains(&k.name.as_str()) && !k.name.starts_with("x-") {
                let mut p = Problem::new(
                    k.span,
                    format!(
                        "`{}` in {what} cannot be carried into a fleetpin manifest",
                        k.name
                    ),
                );
                p.help = Some(if why.is_empty() {
                    format!("import carries only: {}", allowed.join(", "))
                } else {
                    why.to_string()
                });
                self.out.problems.push(p);
            }
        }
    }

    fn file(&mut self, root: &Node) {
        let Some(top) = entries(root) else {
            self.err(
                root.span,
                format!(
                    "a compose file is a mapping with `services`, found {}",
                    root.kind()
                ),
            );
            return;
        };
        for (k, v) in top {
            match k.name.as_str() {
                "services" | "volumes" | "networks" | "version" => {}
                "name" => self.out.name = self.text(v, "`name`"),
                "secrets" | "configs" => self.out.err_help(
                    k.span,
                    format!(
                        "top-level `{}` cannot be carried into a fleetpin manifest",
                        k.name
                    ),
                    help_for(&k.name),
                ),
                "include" => self.out.err_help(
                    k.span,
                    "`include` cannot be carried into a fleetpin manifest",
                    "import the included files themselves: name them on the command line",
                ),
                n if n.starts_with("x-") => {}
                n => {
                    let allowed = ["services", "volumes", "networks", "name", "version"];
                    let mut p = Problem::new(
                        k.span,
                        format!(
                            "unknown top-level key `{n}` in a compose file; expected: services, volumes, networks, name"
                        ),
                    );
                    p.help = did_you_mean(n, &allowed, &[]);
                    self.out.problems.push(p);
                }
            }
        }
        // Declarations first: services refer to them, whatever the order written.
        if let Some(v) = get(top, "volumes") {
            self.volume_decls(v);
        }
        let networks = match get(top, "networks") {
            Some(v) => self.network_decls(v),
            None => BTreeSet::new(),
        };
        let Some(services) = get(top, "services") else {
            self.err(root.span, "the compose file has no `services`");
            return;
        };
        let Some(list) = self.map(services, "`services`") else {
            return;
        };
        if list.is_empty() {
            self.err(services.span, "`services` is empty: nothing to import");
            return;
        }
        let names: BTreeSet<&str> = list.iter().map(|(k, _)| k.name.as_str()).collect();
        for (k, v) in list {
            if !is_service_name(&k.name) {
                self.out.err_help(
                    k.span,
                    format!("`{}` is not a valid fleetpin service name: a lowercase letter, then up to 30 lowercase letters, digits or `-`", k.name),
                    "rename the service in the compose file (and wherever its neighbours call it by that name), e.g. `my_db` → `my-db`",
                );
                continue;
            }
            if let Some(i) = self.service(k, v, &names, &networks) {
                self.out.services.push(i);
            }
        }
        self.cycles();
    }

    /// A `depends_on` cycle (compose refuses one too), reported at the edge that closes it.
    /// Walked with its own stack: a long chain in a hostile file cannot overflow the thread's.
    fn cycles(&mut self) {
        let services = &self.out.services;
        let index: std::collections::HashMap<&str, usize> = services
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.as_str(), i))
            .collect();
        let mut found: Vec<(Span, String)> = vec![];
        // 0 new, 1 on the current path, 2 done.
        let mut mark = vec![0u8; services.len()];
        for start in 0..services.len() {
            if mark[start] != 0 {
                continue;
            }
            // The current path: each service with the next of its dependencies to follow.
            let mut path: Vec<(usize, usize)> = vec![(start, 0)];
            mark[start] = 1;
            while let Some(&mut (at, ref mut next)) = path.last_mut() {
                let imp = &services[at];
                let Some((d, span)) = imp.svc.depends_on.get(*next).zip(imp.dep_spans.get(*next))
                else {
                    mark[at] = 2;
                    path.pop();
                    continue;
                };
                *next += 1;
                let Some(&to) = index.get(d.as_str()) else {
                    continue;
                };
                match mark[to] {
                    0 => {
                        mark[to] = 1;
                        path.push((to, 0));
                    }
                    1 => {
                        let from = path.iter().position(|p| p.0 == to).unwrap_or(0);
                        let mut names: Vec<&str> = path[from..]
                            .iter()
                            .map(|p| services[p.0].name.as_str())
                            .collect();
                        names.push(&services[to].name);
                        // A long cycle is named by its ends, so the message stays readable.
                        let shown = if names.len() > 12 {
                            let more = format!("({} more)", names.len() - 10);
                            let (head, tail) = (&names[..5], &names[names.len() - 5..]);
                            [head.join(" -> "), more, tail.join(" -> ")].join(" -> ")
                        } else {
                            names.join(" -> ")
                        };
                        found.push((*span, shown));
                    }
                    _ => {}
                }
            }
        }
        for (span, cycle) in found {
            self.out.err_help(
                span,
                format!("`depends_on` makes a cycle: {cycle}"),
                "services on one host start in depends_on order, so the order must have a beginning; remove one of these dependencies",
            );
        }
    }

    fn volume_decls(&mut self, n: &Node) {
        if n.value == Value::Null {
            return;
        }
        let Some(m) = self.map(n, "top-level `volumes`") else {
            return;
        };
        for (k, v) in m {
            if !valid_volume_name(&k.name) {
                self.err(
                    k.span,
                    format!("`{}` is not a valid volume name (letters, digits, `_`, `.`, `-`, starting with a letter or digit)", k.name),
                );
                continue;
            }
            let mut decl = VolumeDecl {
                span: k.span,
                explicit: None,
                external: false,
                used: false,
            };
            if let Some(dm) = entries(v) {
                let what = format!("volume `{}`", k.name);
                self.only(
                    dm,
                    &what,
                    &["driver", "external", "name"],
                    "fleetpin creates its named volumes with Docker's local driver and its own labels",
                );
                if let Some(drv) = get(dm, "driver") {
                    let d = self.text(drv, &format!("`driver` of {what}"));
                    if d.as_deref().is_some_and(|d| d != "local") {
                        self.out.err_help(
                            drv.span,
                            format!("`driver` of {what} cannot be carried: fleetpin creates volumes with the local driver"),
                            "keep the data on the local driver, or mount the storage on the hosts and use a bind mount",
                        );
                    }
                }
                if let Some(x) = get(dm, "name") {
                    decl.explicit = self.text(x, &format!("`name` of {what}"));
                }
                if let Some(x) = get(dm, "external") {
                    match &x.value {
                        Value::Bool(b) => decl.external = *b,
                        // The old form: `external: {name: …}`.
                        Value::Map(em) => {
                            decl.external = true;
                            if let Some(nm) = get(em, "name") {
                                decl.explicit =
                                    self.text(nm, &format!("`external.name` of {what}"));
                            }
                        }
                        _ => self.err(
                            x.span,
                            format!(
                                "`external` of {what} must be true or false, found {}",
                                x.kind()
                            ),
                        ),
                    }
                }
            } else if v.value != Value::Null {
                self.err(
                    v.span,
                    format!(
                        "volume `{}` must be a mapping or empty, found {}",
                        k.name,
                        v.kind()
                    ),
                );
            }
            self.out.volumes.insert(k.name.clone(), decl);
        }
    }

    fn network_decls(&mut self, n: &Node) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        if n.value == Value::Null {
            return out;
        }
        let Some(m) = self.map(n, "top-level `networks`") else {
            return out;
        };
        for (k, v) in m {
            if !valid_network_name(&k.name) {
                self.err(
                    k.span,
                    format!(
                        "`{}` is not a valid network name (letters, digits, `_`, `.`, `-`)",
                        k.name
                    ),
                );
                continue;
            }
            out.insert(k.name.clone());
            let what = format!("network `{}`", k.name);
            if let Some(dm) = entries(v) {
                self.only(
                    dm,
                    &what,
                    &["driver"],
                    "fleetpin creates each network as a plain bridge named {platform}-{environment}-{name}; it cannot join an existing (external) network or set its options",
                );
                if let Some(drv) = get(dm, "driver") {
                    let d = self.text(drv, &format!("`driver` of {what}"));
                    if d.as_deref().is_some_and(|d| d != "bridge") {
                        self.out.err_help(
                            drv.span,
                            format!("`driver` of {what} cannot be carried: fleetpin creates bridge networks"),
                            "fleetpin runs plain Docker hosts: overlay and macvlan networks have no equivalent",
                        );
                    }
                }
            } else if v.value != Value::Null {
                self.err(
                    v.span,
                    format!(
                        "network `{}` must be a mapping or empty, found {}",
                        k.name,
                        v.kind()
                    ),
                );
            }
        }
        out
    }

    fn service(
        &mut self,
        k: &Key,
        n: &Node,
        names: &BTreeSet<&str>,
        networks: &BTreeSet<String>,
    ) -> Option<Imported> {
        let what = format!("service `{}`", k.name);
        let m = self.map(n, &what)?;
        let mut imp = Imported {
            name: k.name.clone(),
            span: k.span,
            svc: Svc::default(),
            port_spans: vec![],
            dep_spans: vec![],
            notes: vec![],
        };
        for (key, _) in m {
            let name = key.name.as_str();
            if CARRIED.contains(&name) || name.starts_with("x-") {
                continue;
            }
            if NOT_CARRIED.contains(&name) {
                self.out.err_help(
                    key.span,
                    format!("`{name}` of {what} cannot be carried into a fleetpin manifest"),
                    help_for(name),
                );
            } else {
                let mut p = Problem::new(
                    key.span,
                    format!(
                        "`{name}` of {what} is not a compose key import knows; it carries: {}",
                        CARRIED.join(", ")
                    ),
                );
                p.help = did_you_mean(name, CARRIED, &[]);
                self.out.problems.push(p);
            }
        }
        let before = self.out.problems.len();
        match get(m, "image") {
            Some(i) => {
                if let Some((image, pin)) = self.image(i, &what) {
                    imp.svc.image = image;
                    imp.svc.pin = pin;
                }
            }
            None => self.out.err_help(
                k.span,
                format!("{what} has no `image`"),
                "fleetpin deploys images from a registry: write `image: REPOSITORY:TAG`",
            ),
        }
        if let Some(p) = get(m, "ports") {
            self.ports(p, &what, &mut imp);
        }
        if let Some(v) = get(m, "volumes") {
            self.volumes(v, &what, &mut imp);
        }
        if let Some(e) = get(m, "environment") {
            imp.svc.env = self.environment(e, &what);
        }
        if let Some(f) = get(m, "env_file") {
            imp.svc.env_file = self.env_file(f, &what, &imp.svc.env);
        }
        for (key, field) in [("command", 0), ("entrypoint", 1)] {
            if let Some(c) = get(m, key) {
                let v = self.command(c, &format!("`{key}` of {what}"));
                if field == 0 {
                    imp.svc.command = v;
                } else {
                    imp.svc.entrypoint = v;
                }
            }
        }
        if let Some(h) = get(m, "healthcheck") {
            let at = m
                .iter()
                .find(|(k, _)| k.name == "healthcheck")
                .map(|(k, _)| k.span)
                .unwrap_or(k.span);
            imp.svc.healthcheck = self.healthcheck(h, &what, at);
        }
        if let Some(d) = get(m, "depends_on") {
            self.depends_on(d, &what, names, &mut imp);
        }
        match get(m, "restart") {
            Some(r) => imp.svc.restart = self.restart(r, &what),
            None => imp.notes.push((
                "restart",
                "no `restart` in compose: compose's default `no` is kept (fleetpin's own default is unless-stopped)".into(),
            )),
        }
        if let Some(nw) = get(m, "networks") {
            imp.svc.networks = self.networks(nw, &what, networks);
        }
        if let Some(l) = get(m, "labels") {
            imp.svc.labels = self.labels(l, &what);
        }
        if let Some(l) = get(m, "logging") {
            imp.svc.logging = self.logging(l, &what);
        }
        if let Some(u) = get(m, "user") {
            imp.svc.user = self
                .text(u, &format!("`user` of {what}"))
                .filter(|u| !u.trim().is_empty());
        }
        if let Some(g) = get(m, "stop_grace_period") {
            let w = format!("`stop_grace_period` of {what}");
            if let Some(d) = self.duration(g, &w) {
                if d.subsec_nanos() != 0 {
                    self.err(
                        g.span,
                        format!(
                            "{w} must be whole seconds: Docker counts the stop timeout in seconds"
                        ),
                    );
                } else {
                    imp.svc.stop_timeout = Some(d);
                }
            }
        }
        if let Some(x) = get(m, "mem_limit") {
            let w = format!("`mem_limit` of {what}");
            if let Some(t) = self.text(x, &w) {
                match parse_memory(&t) {
                    Ok(_) => imp.svc.memory = Some(t),
                    Err(e) => self.err(x.span, format!("{w}: {e}")),
                }
            }
        }
        if let Some(x) = get(m, "cpus") {
            let w = format!("`cpus` of {what}");
            if let Some(t) = self.text(x, &w) {
                match t.trim().parse::<f64>() {
                    Ok(c) if (0.01..=1024.0).contains(&c) => imp.svc.cpus = Some(c),
                    // Compose reads 0 as "no limit".
                    Ok(0.0) => {}
                    _ => self.err(
                        x.span,
                        format!("{w} is `{t}`; expected a number of cores from 0.01 to 1024"),
                    ),
                }
            }
        }
        if let Some(x) = get(m, "expose") {
            self.out.warn(
                x.span,
                format!("`expose` of {what} is dropped: it only documents ports, and services on a shared network reach each other's ports anyway"),
            );
        }
        (self.out.problems.len() == before).then_some(imp)
    }

    /// `REPOSITORY:TAG[@sha256:…]` → (repository, pin).
    fn image(&mut self, n: &Node, what: &str) -> Option<(String, String)> {
        let w = format!("`image` of {what}");
        let s = self.text(n, &w)?;
        let s = s.trim();
        let (name, digest) = match s.split_once('@') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let last = name.rsplit('/').next().unwrap_or(name);
        let (repo, tag) = match last.rfind(':') {
            Some(i) => {
                let cut = name.len() - last.len() + i;
                (&name[..cut], Some(&name[cut + 1..]))
            }
            None => (name, None),
        };
        let Some(tag) = tag else {
            let help = match digest {
                Some(d) => format!(
                    "fleetpin pins a tag, optionally nailed to a digest: write `{repo}:TAG@{d}`"
                ),
                None => format!(
                    "compose pulls `{repo}:latest`, which moves; pin the version that runs today, e.g. `{repo}:1.2.3` (`docker image inspect` on the host shows its tags)"
                ),
            };
            self.out
                .err_help(n.span, format!("{w}: `{s}` has no tag"), help);
            return None;
        };
        let pin_text = match digest {
            Some(d) => format!("{tag}@{d}"),
            None => tag.to_string(),
        };
        let pin = match VersionPin::parse(&pin_text) {
            Ok(p) => p,
            Err(e) => {
                self.err(n.span, format!("{w}: {e}"));
                return None;
            }
        };
        if let Err(e) = check_repository(repo) {
            self.err(n.span, format!("{w}: {e}"));
            return None;
        }
        Some((repo.to_string(), pin.to_string()))
    }

    fn ports(&mut self, n: &Node, what: &str, imp: &mut Imported) {
        let w = format!("`ports` of {what}");
        let Some(items) = self.seq(n, &w) else {
            return;
        };
        for i in items {
            let written = match &i.value {
                Value::Map(pm) => self.long_port(pm, &w),
                Value::Int(_) => {
                    let t = i.scalar_text().unwrap_or_default();
                    Err(random_port(&t))
                }
                _ => match self.text(i, &w) {
                    Some(t) => compose_port(&t),
                    None => continue,
                },
            };
            match written {
                Ok(list) => {
                    for p in list {
                        match PortMapping::parse(&p) {
                            Ok(pm) => {
                                imp.svc.ports.push(pm);
                                imp.port_spans.push(i.span);
                            }
                            Err(e) => self.err(i.span, format!("{w}: {e}")),
                        }
                    }
                }
                Err((msg, help)) => self.out.err_help(i.span, format!("{w}: {msg}"), help),
            }
        }
    }

    /// The long form: `{target, published, host_ip, protocol, mode}`.
    fn long_port(&mut self, pm: &[(Key, Node)], w: &str) -> Result<Vec<String>, (String, String)> {
        let lw = format!("a port of {w}");
        for (k, _) in pm {
            match k.name.as_str() {
                "target" | "published" | "host_ip" | "protocol" | "mode" => {}
                "name" | "app_protocol" => self.out.warn(
                    k.span,
                    format!("`{}` of {lw} is dropped: it only names the port", k.name),
                ),
                x if x.starts_with("x-") => {}
                x => self.err(
                    k.span,
                    format!("`{x}` in {lw} cannot be carried; a port is target, published, host_ip, protocol"),
                ),
            }
        }
        let field = |d: &mut Self, name: &str| {
            get(pm, name).and_then(|x| d.text(x, &format!("`{name}` of {lw}")))
        };
        let target = field(self, "target");
        let published = field(self, "published");
        let host_ip = field(self, "host_ip");
        let protocol = field(self, "protocol");
        let Some(target) = target else {
            return Err((
                format!("{lw} has no `target` (the container port)"),
                "write `target: 80` and `published: 8080`".into(),
            ));
        };
        let Some(published) = published.filter(|p| !p.is_empty()) else {
            return Err(random_port(&target));
        };
        let mut s = String::new();
        if let Some(ip) = host_ip.filter(|i| !i.is_empty()) {
            if ip.contains(':') && !ip.starts_with('[') {
                s.push_str(&format!("[{ip}]:"));
            } else {
                s.push_str(&ip);
                s.push(':');
            }
        }
        s.push_str(&format!("{published}:{target}"));
        if let Some(p) = protocol {
            s.push('/');
            s.push_str(&p);
        }
        compose_port(&s)
    }

    fn volumes(&mut self, n: &Node, what: &str, imp: &mut Imported) {
        let w = format!("`volumes` of {what}");
        let Some(items) = self.seq(n, &w) else {
            return;
        };
        for i in items {
            let parsed = match &i.value {
                Value::Map(vm) => self.long_volume(vm, &w),
                _ => match self.text(i, &w) {
                    Some(t) => self.short_volume(&t, i, &w),
                    None => continue,
                },
            };
            let Some((src, target, read_only)) = parsed else {
                continue;
            };
            let src = match src {
                Src::Named(name) => match self.out.volumes.get_mut(&name) {
                    Some(decl) => {
                        decl.used = true;
                        name
                    }
                    None => {
                        self.out.err_help(
                            i.span,
                            format!("{w}: volume `{name}` is not declared under the top-level `volumes`"),
                            format!("declare `{name}:` under the top-level `volumes` (compose refuses it too)"),
                        );
                        continue;
                    }
                },
                Src::Bind(path) => {
                    self.out.warn(
                        i.span,
                        format!("{w}: the bind mount `{path}` needs that path on every host before apply: compose created a missing directory, Docker's mount API does not"),
                    );
                    path
                }
                Src::Relative(rel) if rel.starts_with('~') => {
                    self.out.err_help(
                        i.span,
                        format!(
                            "{w}: `{rel}` is relative to the home directory of whoever runs compose"
                        ),
                        "write the absolute path it stands for on the hosts",
                    );
                    continue;
                }
                Src::Relative(rel) => match self.s.project_dir {
                    Some(base) => {
                        let path = join_lexically(base, &rel);
                        self.out.warn(
                            i.span,
                            format!("{w}: the bind mount `{rel}` becomes `{path}` (--project-dir): that path must exist on every host before apply"),
                        );
                        path
                    }
                    None => {
                        self.out.err_help(
                            i.span,
                            format!("{w}: `{rel}` is a path relative to the compose file, which the hosts do not have"),
                            "pass --project-dir DIR (the directory of the compose project on the hosts) to carry relative bind mounts as DIR/…, or write an absolute path",
                        );
                        continue;
                    }
                },
            };
            let text = format!("{src}:{target}{}", if read_only { ":ro" } else { "" });
            match VolumeMount::parse(&text) {
                Ok(v) => imp.svc.volumes.push(v),
                Err(e) => self.err(i.span, format!("{w}: {e}")),
            }
        }
    }

    /// `SOURCE:TARGET[:MODE]`; a lone `TARGET` is an anonymous volume.
    fn short_volume(&mut self, t: &str, i: &Node, w: &str) -> Option<(Src, String, bool)> {
        let parts: Vec<&str> = t.split(':').collect();
        let (src, target, mode) = match parts.as_slice() {
            [target] => {
                self.out.err_help(
                    i.span,
                    format!("{w}: `{target}` is an anonymous volume, which compose recreates empty with each new container"),
                    format!("name it so its data outlives the container: declare a volume and write `NAME:{target}`"),
                );
                return None;
            }
            [s, t] => (*s, *t, ""),
            [s, t, m] => (*s, *t, *m),
            _ => {
                self.err(
                    i.span,
                    format!("{w}: `{t}`: expected SOURCE:TARGET or SOURCE:TARGET:MODE"),
                );
                return None;
            }
        };
        let mut read_only = false;
        for opt in mode.split(',').filter(|o| !o.is_empty()) {
            match opt {
                "ro" => read_only = true,
                "rw" => {}
                "cached" | "delegated" | "consistent" => self.out.warn(
                    i.span,
                    format!("{w}: `:{opt}` is dropped: it only tunes Docker Desktop's file sharing and changes nothing on a Linux host"),
                ),
                "z" | "Z" | "nocopy" => {
                    self.out.err_help(
                        i.span,
                        format!("{w}: the mount option `{opt}` cannot be carried"),
                        "fleetpin mounts with `ro` or `rw` only (SELinux relabelling and nocopy have no equivalent)",
                    );
                    return None;
                }
                o => {
                    self.err(i.span, format!("{w}: unknown mount option `{o}` in `{t}`; expected ro or rw"));
                    return None;
                }
            }
        }
        Some((classify(src), target.to_string(), read_only))
    }

    /// `{type, source, target, read_only, bind, volume, consistency}`.
    fn long_volume(&mut self, vm: &[(Key, Node)], w: &str) -> Option<(Src, String, bool)> {
        let lw = format!("a mount of {w}");
        let before = self.out.problems.len();
        for (k, v) in vm {
            match k.name.as_str() {
                "type" | "source" | "target" | "read_only" => {}
                "consistency" => self.out.warn(
                    k.span,
                    format!("`consistency` of {lw} is dropped: it changes nothing on a Linux host"),
                ),
                "bind" => {
                    if let Some(bm) = entries(v) {
                        self.only(
                            bm,
                            &format!("`bind` of {lw}"),
                            &["create_host_path"],
                            "fleetpin mounts host paths with default propagation and no SELinux relabelling",
                        );
                    }
                }
                x if x.starts_with("x-") => {}
                x => self.out.err_help(
                    k.span,
                    format!("`{x}` of {lw} cannot be carried"),
                    "fleetpin mounts named volumes and host paths, read-only or not",
                ),
            }
        }
        let typ = match get(vm, "type") {
            Some(t) => self.text(t, &format!("`type` of {lw}"))?,
            None => {
                self.err(
                    vm.first().map(|(k, _)| k.span).unwrap_or_default(),
                    format!("{lw} has no `type` (volume or bind)"),
                );
                return None;
            }
        };
        let target = match get(vm, "target") {
            Some(t) => self.text(t, &format!("`target` of {lw}"))?,
            None => {
                self.err(
                    vm.first().map(|(k, _)| k.span).unwrap_or_default(),
                    format!("{lw} has no `target`"),
                );
                return None;
            }
        };
        let source = get(vm, "source").and_then(|s| self.text(s, &format!("`source` of {lw}")));
        let read_only = match get(vm, "read_only") {
            Some(r) => match r.value {
                Value::Bool(b) => b,
                _ => {
                    self.err(r.span, format!("`read_only` of {lw} must be true or false"));
                    return None;
                }
            },
            None => false,
        };
        if self.out.problems.len() != before {
            return None;
        }
        let at = get(vm, "type").map(|t| t.span).unwrap_or_default();
        match typ.as_str() {
            "volume" => match source {
                Some(s) if !s.is_empty() => Some((Src::Named(s), target, read_only)),
                _ => {
                    self.out.err_help(
                        at,
                        format!("{lw}: a volume without `source` is anonymous, and compose recreates it empty with each new container"),
                        "give it a declared volume name in `source`",
                    );
                    None
                }
            },
            "bind" => match source {
                Some(s) if !s.is_empty() => Some((classify(&s), target, read_only)),
                _ => {
                    self.err(at, format!("{lw}: a bind mount needs a `source` path"));
                    None
                }
            },
            other => {
                self.out.err_help(
                    at,
                    format!("{lw}: a `{other}` mount cannot be carried"),
                    "fleetpin mounts named volumes and host paths only",
                );
                None
            }
        }
    }

    fn environment(&mut self, n: &Node, what: &str) -> BTreeMap<String, String> {
        let w = format!("`environment` of {what}");
        let mut out = BTreeMap::new();
        let mut pairs: Vec<(String, Option<String>, Span)> = vec![];
        match &n.value {
            Value::Map(m) => {
                for (k, v) in m {
                    let value = match &v.value {
                        Value::Null => None,
                        Value::Seq(_) | Value::Map(_) => {
                            self.err(
                                v.span,
                                format!(
                                    "`{}` in {w} must be a single value, found {}",
                                    k.name,
                                    v.kind()
                                ),
                            );
                            continue;
                        }
                        _ => match self.text(v, &format!("`{}` in {w}", k.name)) {
                            Some(t) => Some(t),
                            None => continue,
                        },
                    };
                    pairs.push((k.name.clone(), value, at_key(k, v)));
                }
            }
            Value::Seq(items) => {
                for i in items {
                    let Some(t) = self.text(i, &w) else { continue };
                    match t.split_once('=') {
                        Some((k, v)) => pairs.push((k.to_string(), Some(v.to_string()), i.span)),
                        None => pairs.push((t, None, i.span)),
                    }
                }
            }
            _ => {
                self.err(
                    n.span,
                    format!(
                        "{w} must be a mapping or a list of NAME=value, found {}",
                        n.kind()
                    ),
                );
                return out;
            }
        }
        for (k, v, span) in pairs {
            if let Err(rule) = valid_env_key(&k) {
                self.err(span, format!("`{k}` in {w}: {rule}"));
                continue;
            }
            let v = match v {
                Some(v) => v,
                // `NAME` alone: compose passes the value of the project's environment.
                None => match self.s.vars.get(&k) {
                    Some(v) => v.clone(),
                    None => {
                        self.out.err_help(
                            span,
                            format!("`{k}` in {w} has no value: compose would pass it from the shell at `up`"),
                            format!("write `{k}=value`, or add `{k}=…` to {} (import never reads the shell)", self.s.dotenv.display()),
                        );
                        continue;
                    }
                },
            };
            let flag = matches!(
                v.to_ascii_lowercase().as_str(),
                "" | "yes" | "no" | "true" | "false" | "0" | "1"
            );
            if looks_secret(&k) && !flag {
                self.out.warn(
                    span,
                    format!("`{k}` in {w} looks like a secret and is now written in the manifest, which lives in git: move it to the service's env_file (its values are never printed)"),
                );
            }
            out.insert(k, v);
        }
        out
    }

    fn env_file(&mut self, n: &Node, what: &str, env: &BTreeMap<String, String>) -> Option<String> {
        let w = format!("`env_file` of {what}");
        // (path, required, where)
        let mut files: Vec<(String, bool, Span)> = vec![];
        let one = |d: &mut Self, i: &Node, files: &mut Vec<(String, bool, Span)>| match &i.value {
            Value::Map(fm) => {
                d.only(
                    fm,
                    &w,
                    &["path", "required"],
                    "fleetpin reads env files as plain NAME=value lines",
                );
                let path = get(fm, "path").and_then(|p| d.text(p, &format!("`path` of {w}")));
                let required = match get(fm, "required") {
                    Some(r) => r.value != Value::Bool(false),
                    None => true,
                };
                match path {
                    Some(p) => files.push((p, required, i.span)),
                    None => d.err(i.span, format!("{w}: an entry needs a `path`")),
                }
            }
            _ => {
                if let Some(p) = d.text(i, &w) {
                    files.push((p, true, i.span));
                }
            }
        };
        match &n.value {
            Value::Seq(items) => {
                for i in items {
                    one(self, i, &mut files);
                }
            }
            _ => one(self, n, &mut files),
        }
        // Optional files that are not there carry nothing.
        let mut kept = vec![];
        for (p, required, span) in files {
            let abs = normalize(&self.s.dir.join(&p));
            if !required && !abs.is_file() {
                self.out.warn(
                    span,
                    format!("{w}: `{p}` is optional and not found here: left out"),
                );
                continue;
            }
            kept.push((p, abs, span));
        }
        if kept.len() > 1 {
            self.out.err_help(
                kept[1].2,
                format!(
                    "{w}: fleetpin reads one env_file per service, this one has {}",
                    kept.len()
                ),
                "merge the files into one (later files win in compose)",
            );
            return None;
        }
        let (p, abs, span) = kept.into_iter().next()?;
        match std::fs::read_to_string(&abs) {
            Err(_) => self.out.warn(
                span,
                format!("{w}: `{p}` is not readable here ({}); plan and apply will need it beside the manifest", abs.display()),
            ),
            Ok(text) => {
                // The same file must mean the same to both: compose's rules and fleetpin's.
                let compose = dotenv::parse(&text);
                let fleetpin = crate::manifest::resolve::parse_env_file(&text);
                match (compose, fleetpin) {
                    (Err(e), _) => self.err(
                        span,
                        format!("{w}: `{p}` line {}: {}", e.span.line, e.message),
                    ),
                    (_, Err(e)) => self.out.err_help(
                        span,
                        format!("{w}: fleetpin cannot read `{p}`: {e}"),
                        "write plain NAME=value lines",
                    ),
                    (Ok(c), Ok(f)) => {
                        let f: BTreeMap<String, String> = f.into_iter().collect();
                        let c: BTreeMap<String, String> = c.into_iter().collect();
                        if let Some(k) = c
                            .keys()
                            .chain(f.keys())
                            .find(|k| c.get(*k) != f.get(*k))
                        {
                            self.out.err_help(
                                span,
                                format!("{w}: compose and fleetpin read `{k}` in `{p}` differently (escapes, ${{…}} or quotes)"),
                                "write plain NAME=value lines, without ${…}, escapes or comments after values",
                            );
                        } else if let Some(k) = c.keys().find(|k| env.contains_key(*k)) {
                            self.out.err_help(
                                span,
                                format!("{w}: `{k}` is set both in `environment` and in `{p}`: compose uses `environment`'s value, fleetpin the env_file's"),
                                "keep it in one place",
                            );
                        }
                    }
                }
            }
        }
        Some(manifest_path(&abs, self.s.out_dir))
    }

    fn command(&mut self, n: &Node, what: &str) -> Option<Vec<String>> {
        let v = match &n.value {
            Value::Null => return None,
            Value::Seq(items) => {
                let mut out = vec![];
                for i in items {
                    out.push(self.text(i, &format!("each item of {what}"))?);
                }
                out
            }
            _ => {
                let t = self.text(n, what)?;
                match shell_words(&t) {
                    Ok(v) => v,
                    Err(e) => {
                        self.err(n.span, format!("{what}: {e}"));
                        return None;
                    }
                }
            }
        };
        if v.is_empty() {
            self.out.err_help(
                n.span,
                format!("{what} is empty: compose clears the image's setting, which a manifest cannot say"),
                "write the command explicitly, or remove the key to keep the image's",
            );
            return None;
        }
        Some(v)
    }

    fn duration(&mut self, n: &Node, what: &str) -> Option<Duration> {
        let t = self.text(n, what)?;
        match go_duration(&t) {
            Ok(d) => Some(d),
            Err(e) => {
                self.err(n.span, format!("{what}: {e}"));
                None
            }
        }
    }

    fn healthcheck(&mut self, n: &Node, what: &str, at: Span) -> Option<Healthcheck> {
        let w = format!("`healthcheck` of {what}");
        let m = self.map(n, &w)?;
        self.only(
            m,
            &w,
            &[
                "test",
                "interval",
                "timeout",
                "retries",
                "start_period",
                "disable",
            ],
            "fleetpin's healthcheck has test, interval, timeout, retries and start_period",
        );
        if let Some(d) = get(m, "disable") {
            if d.value == Value::Bool(true) {
                if m.iter().any(|(k, _)| k.name != "disable") {
                    self.err(
                        d.span,
                        format!(
                            "{w}: `disable: true` with other settings; compose refuses that too"
                        ),
                    );
                    return None;
                }
                return Some(Healthcheck {
                    test: vec!["NONE".into()],
                    interval: None,
                    timeout: None,
                    retries: None,
                    start_period: None,
                });
            }
            if d.value != Value::Bool(false) {
                self.err(d.span, format!("`disable` of {w} must be true or false"));
                return None;
            }
        }
        let test = match get(m, "test") {
            None => {
                self.out.err_help(
                    at,
                    format!("{w} has no `test`: compose keeps the image's test and changes only its timings"),
                    "copy the test from the image's HEALTHCHECK (`docker image inspect`), or remove the healthcheck to keep the image's as it is",
                );
                return None;
            }
            Some(t) => match &t.value {
                Value::Seq(items) => {
                    let mut v = vec![];
                    for i in items {
                        v.push(self.text(i, &format!("`test` of {w}"))?);
                    }
                    let ok = match v.first().map(String::as_str) {
                        Some("CMD") => v.len() >= 2,
                        Some("CMD-SHELL") => v.len() == 2,
                        Some("NONE") => v.len() == 1,
                        _ => false,
                    };
                    if !ok {
                        self.err(t.span, format!("`test` of {w} must start with \"CMD\" (then the program and its arguments), \"CMD-SHELL\" (then one shell command), or be [\"NONE\"]"));
                        return None;
                    }
                    v
                }
                _ => {
                    let s = self.text(t, &format!("`test` of {w}"))?;
                    if s.trim().is_empty() {
                        self.err(t.span, format!("`test` of {w} is empty"));
                        return None;
                    }
                    vec!["CMD-SHELL".into(), s]
                }
            },
        };
        let dur = |d: &mut Self, name: &str| -> Option<Option<Duration>> {
            let Some(x) = get(m, name) else {
                return Some(None);
            };
            let lw = format!("`{name}` of {w}");
            let v = d.duration(x, &lw)?;
            if v < Duration::from_millis(1) || !v.subsec_nanos().is_multiple_of(1_000_000) {
                d.err(
                    x.span,
                    format!("{lw} must be a whole number of milliseconds, at least 1ms"),
                );
                return None;
            }
            Some(Some(v))
        };
        let interval = dur(self, "interval");
        let timeout = dur(self, "timeout");
        let start_period = dur(self, "start_period");
        let retries = match get(m, "retries") {
            None => Some(None),
            Some(r) => match r.value {
                Value::Int(i) if (1..=100).contains(&i) => Some(Some(i as u32)),
                _ => {
                    self.err(
                        r.span,
                        format!("`retries` of {w} must be a whole number from 1 to 100"),
                    );
                    None
                }
            },
        };
        Some(Healthcheck {
            test,
            interval: interval?,
            timeout: timeout?,
            retries: retries?,
            start_period: start_period?,
        })
    }

    /// The names of a list-or-mapping key (`depends_on`, `networks`), each with where it is
    /// written; in the mapping form, `entry` reads what each name maps to. None (reported) when
    /// it is neither.
    fn list_or_mapping(
        &mut self,
        n: &Node,
        w: &str,
        mut entry: impl FnMut(&mut Self, &Key, &Node),
    ) -> Option<Vec<(String, Span)>> {
        let mut names = vec![];
        match &n.value {
            Value::Seq(items) => {
                for i in items {
                    if let Some(t) = self.text(i, w) {
                        names.push((t, i.span));
                    }
                }
            }
            Value::Map(m) => {
                for (k, v) in m {
                    entry(self, k, v);
                    names.push((k.name.clone(), k.span));
                }
            }
            _ => {
                self.err(
                    n.span,
                    format!("{w} must be a list or a mapping, found {}", n.kind()),
                );
                return None;
            }
        }
        Some(names)
    }

    fn depends_on(&mut self, n: &Node, what: &str, names: &BTreeSet<&str>, imp: &mut Imported) {
        let w = format!("`depends_on` of {what}");
        let deps = self.list_or_mapping(n, &w, |this, k, v| {
                    let mut condition = "service_started".to_string();
                    if let Some(dm) = entries(v) {
                        let dw = format!("`{}` in {w}", k.name);
                        this.only(dm, &dw, &["condition", "required", "restart"], "");
                        if let Some(c) = get(dm, "condition") {
                            condition = this
                                .text(c, &format!("`condition` of {dw}"))
                                .unwrap_or_default();
                            match condition.as_str() {
                                "service_started" | "service_healthy" => {}
                                "service_completed_successfully" => this.out.err_help(
                                    c.span,
                                    format!("{dw}: `service_completed_successfully` cannot be carried: fleetpin runs long-lived services, and a one-shot job (a migration) would fail its health gate"),
                                    "run the job before `fleetpin apply` (a pre_apply hook, or your CI), and remove it from the compose file",
                                ),
                                other => this.err(c.span, format!("{dw}: unknown condition `{other}`; expected service_started or service_healthy")),
                            }
                        }
                        if let Some(r) = get(dm, "required")
                            && r.value == Value::Bool(false)
                        {
                            this.out.err_help(
                                r.span,
                                format!("{dw}: `required: false` cannot be carried: in fleetpin a dependency is always required"),
                                "remove the dependency, or make it required",
                            );
                        }
                        if let Some(r) = get(dm, "restart")
                            && r.value == Value::Bool(true)
                        {
                            this.out.warn(
                                r.span,
                                format!("{dw}: `restart: true` is dropped: fleetpin does not restart a service when its dependency is replaced"),
                            );
                        }
                    } else if v.value != Value::Null {
                        this.err(
                            v.span,
                            format!(
                                "`{}` in {w} must be a mapping (condition, required), found {}",
                                k.name,
                                v.kind()
                            ),
                        );
                    }
                    if condition == "service_healthy" {
                        imp.notes.push((
                            "depends_on",
                            format!(
                                "compose started it once `{}` was healthy: fleetpin starts it once `{}` passed its gate (healthy, with a healthcheck)",
                                k.name, k.name
                            ),
                        ));
                    }
        });
        let Some(deps) = deps else { return };
        for (d, span) in deps {
            if !names.contains(d.as_str()) {
                self.err(
                    span,
                    format!("{w}: `{d}` is not a service of this compose file"),
                );
            } else if imp.svc.depends_on.contains(&d) {
                self.err(span, format!("{w}: `{d}` is written twice"));
            } else if d == imp.name {
                self.err(span, format!("{w}: `{d}` depends on itself"));
            } else {
                imp.svc.depends_on.push(d);
                imp.dep_spans.push(span);
            }
        }
    }

    fn restart(&mut self, n: &Node, what: &str) -> Option<RestartPolicy> {
        let w = format!("`restart` of {what}");
        // YAML 1.1 reads a bare `no` as false.
        if n.value == Value::Bool(false) {
            return Some(RestartPolicy::No);
        }
        let t = self.text(n, &w)?;
        if let Some(p) = RestartPolicy::ALL.iter().find(|p| p.as_str() == t) {
            return Some(*p);
        }
        if t.starts_with("on-failure:") {
            self.out.err_help(
                n.span,
                format!("{w}: `{t}` cannot be carried: fleetpin's on-failure has no retry limit"),
                "write `on-failure` (retry without limit) or another policy",
            );
        } else {
            self.err(
                n.span,
                format!("{w} is `{t}`; expected no, always, unless-stopped or on-failure"),
            );
        }
        None
    }

    fn networks(&mut self, n: &Node, what: &str, declared: &BTreeSet<String>) -> Vec<String> {
        let w = format!("`networks` of {what}");
        let names = self.list_or_mapping(n, &w, |this, k, v| {
                    if let Some(nm) = entries(v) {
                        this.only(
                            nm,
                            &format!("`{}` in {w}", k.name),
                            &[],
                            "fleetpin gives a service one name on its networks, its service name (as compose does by default): no extra aliases, fixed addresses or options",
                        );
                    } else if v.value != Value::Null {
                        this.err(
                            v.span,
                            format!(
                                "`{}` in {w} must be a mapping or empty, found {}",
                                k.name,
                                v.kind()
                            ),
                        );
                    }
        });
        let Some(names) = names else { return vec![] };
        let mut out = vec![];
        for (name, span) in names {
            if name != "default" && !declared.contains(&name) {
                self.out.err_help(
                    span,
                    format!("{w}: network `{name}` is not declared under the top-level `networks`"),
                    format!(
                        "declare `{name}:` under the top-level `networks` (compose refuses it too)"
                    ),
                );
            } else if !out.contains(&name) {
                out.push(name);
            }
        }
        out
    }

    fn labels(&mut self, n: &Node, what: &str) -> BTreeMap<String, String> {
        let w = format!("`labels` of {what}");
        let mut pairs: Vec<(String, String, Span)> = vec![];
        match &n.value {
            Value::Map(m) => {
                for (k, v) in m {
                    let value = match &v.value {
                        Value::Null => String::new(),
                        _ => match self.text(v, &format!("`{}` in {w}", k.name)) {
                            Some(t) => t,
                            None => continue,
                        },
                    };
                    pairs.push((k.name.clone(), value, k.span));
                }
            }
            Value::Seq(items) => {
                for i in items {
                    let Some(t) = self.text(i, &w) else { continue };
                    let (k, v) = t.split_once('=').unwrap_or((t.as_str(), ""));
                    pairs.push((k.to_string(), v.to_string(), i.span));
                }
            }
            _ => {
                self.err(
                    n.span,
                    format!(
                        "{w} must be a mapping or a list of name=value, found {}",
                        n.kind()
                    ),
                );
            }
        }
        let mut out = BTreeMap::new();
        for (k, v, span) in pairs {
            match valid_label_key(&k) {
                Ok(()) => {
                    out.insert(k, v);
                }
                Err(rule) => self.err(span, format!("`{k}` in {w}: {rule}")),
            }
        }
        out
    }

    fn logging(&mut self, n: &Node, what: &str) -> Option<Logging> {
        let w = format!("`logging` of {what}");
        let m = self.map(n, &w)?;
        self.only(m, &w, &["driver", "options"], "");
        let driver = match get(m, "driver") {
            Some(d) => self.text(d, &format!("`driver` of {w}"))?,
            None => {
                self.out.err_help(
                    n.span,
                    format!("{w} has no `driver`: compose uses the daemon's default driver, which a manifest cannot name"),
                    "write the driver the hosts use (Docker's default is json-file)",
                );
                return None;
            }
        };
        let mut options = BTreeMap::new();
        if let Some(o) = get(m, "options")
            && o.value != Value::Null
        {
            let om = self.map(o, &format!("`options` of {w}"))?;
            for (k, v) in om {
                if let Some(t) = self.text(v, &format!("`{}` in `options` of {w}", k.name)) {
                    options.insert(k.name.clone(), t);
                }
            }
        }
        Some(Logging { driver, options })
    }
}

/// Where a mount's data comes from, before it is checked.
enum Src {
    Named(String),
    Bind(String),
    Relative(String),
}

fn classify(src: &str) -> Src {
    if src.starts_with('/') {
        Src::Bind(src.to_string())
    } else if src == "."
        || src == ".."
        || src.starts_with("./")
        || src.starts_with("../")
        || src.starts_with('~')
    {
        Src::Relative(src.to_string())
    } else {
        Src::Named(src.to_string())
    }
}

/// `base/rel`, with `.` and `..` resolved on the text (the hosts' paths are not on this machine).
pub fn join_lexically(base: &str, rel: &str) -> String {
    let mut parts: Vec<&str> = vec![];
    for c in base.split('/').chain(rel.split('/')) {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// A path with `.` and `..` resolved on the text.
pub fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c.as_os_str()),
        }
    }
    out
}

/// `abs` as the manifest writes it: relative to its directory when inside it, else absolute
/// (the manifest refuses relative paths that leave its directory).
pub fn manifest_path(abs: &Path, out_dir: &Path) -> String {
    match abs.strip_prefix(out_dir) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel.display().to_string(),
        _ => abs.display().to_string(),
    }
}

fn looks_secret(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    [
        "PASSWORD",
        "PASSWD",
        "SECRET",
        "TOKEN",
        "API_KEY",
        "PRIVATE_KEY",
        "ACCESS_KEY",
    ]
    .iter()
    .any(|s| n.contains(s))
}

fn random_port(container: &str) -> (String, String) {
    (
        format!(
            "`{container}` publishes on a host port Docker picks at random, which nothing can rely on"
        ),
        format!(
            "write a fixed host port, e.g. \"8080:{container}\", or remove it: services on a shared network reach each other without published ports"
        ),
    )
}

/// Compose's short port syntax `[IP:][HOST:]CONTAINER[/PROTOCOL]`, ranges included, as the
/// manifest's `[IP:]HOST:CONTAINER/PROTOCOL` strings.
pub fn compose_port(s: &str) -> Result<Vec<String>, (String, String)> {
    let plain = |m: String| (m, String::new());
    let (body, proto) = match s.rsplit_once('/') {
        Some((b, p @ ("tcp" | "udp"))) => (b, p),
        Some((_, p)) => {
            return Err((
                format!("`{s}`: protocol `{p}` cannot be carried"),
                "fleetpin publishes tcp and udp ports".into(),
            ));
        }
        None => (s, "tcp"),
    };
    let (ip, rest) = if let Some(after) = body.strip_prefix('[') {
        match after.split_once("]:") {
            Some((ip, rest)) => (Some(format!("[{ip}]")), rest),
            None => return Err(plain(format!("`{s}` is not a port mapping"))),
        }
    } else {
        let parts: Vec<&str> = body.split(':').collect();
        match parts.len() {
            1 | 2 => (None, body),
            3 => (Some(parts[0].to_string()), &body[parts[0].len() + 1..]),
            _ => {
                return Err(plain(format!(
                    "`{s}` is not a port mapping; expected [IP:]HOST:CONTAINER[/PROTOCOL]"
                )));
            }
        }
    };
    let (host, container) = match rest.split_once(':') {
        Some((h, c)) if !h.is_empty() => (h, c),
        Some((_, c)) => return Err(random_port(c)),
        None => return Err(random_port(rest)),
    };
    let range = |r: &str| -> Result<(u32, u32), (String, String)> {
        let bad = || plain(format!("`{r}` in port `{s}` is not a port number or range"));
        let (a, b) = r.split_once('-').unwrap_or((r, r));
        let a: u32 = a.parse().map_err(|_| bad())?;
        let b: u32 = b.parse().map_err(|_| bad())?;
        if a > b {
            return Err(bad());
        }
        Ok((a, b))
    };
    let (h0, h1) = range(host)?;
    let (c0, c1) = range(container)?;
    if h1 - h0 != c1 - c0 {
        return Err((
            format!(
                "`{s}`: the host range and the container range differ in size, so Docker picks the host port"
            ),
            "write one fixed host port per container port".into(),
        ));
    }
    if h1 - h0 > 1000 {
        return Err(plain(format!("`{s}` publishes more than 1000 ports")));
    }
    Ok((0..=h1 - h0)
        .map(|i| {
            let ip = ip.as_ref().map(|i| format!("{i}:")).unwrap_or_default();
            format!("{ip}{}:{}/{proto}", h0 + i, c0 + i)
        })
        .collect())
}

/// A Go duration as compose writes them: `1m30s`, `500ms`, `1.5s`, `2h`, `0`.
pub fn go_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("`{s}` is not a duration; expected e.g. \"30s\", \"1m30s\", \"500ms\"");
    let t = s.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    if t.is_empty() {
        return Err(bad());
    }
    let mut total: f64 = 0.0;
    let mut rest = t;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if num_end == 0 {
            return Err(bad());
        }
        let num: f64 = rest[..num_end].parse().map_err(|_| bad())?;
        let after = &rest[num_end..];
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let nanos: f64 = match &after[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += num * nanos;
        rest = &after[unit_end..];
    }
    if !total.is_finite() || total > 24.0 * 3600e9 {
        return Err(format!("`{s}` is longer than a day; that cannot be meant"));
    }
    Ok(Duration::from_nanos(total.round() as u64))
}

/// A duration as the manifest writes it (`90s`, `1500ms`), checked against its parser.
pub fn manifest_duration(d: Duration) -> String {
    let text = if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d.as_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}us", d.as_micros())
    };
    debug_assert_eq!(parse_duration(&text).ok(), Some(d), "{text}");
    text
}

/// Compose's reading of a `command` string: words split on blanks, with single quotes, double
/// quotes and backslashes as a POSIX shell reads them, and nothing else (no variables, no globs).
pub fn shell_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = vec![];
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err(format!("`{s}` has an unclosed single quote")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(n @ ('"' | '\\' | '$' | '`')) => cur.push(n),
                            Some(n) => {
                                cur.push('\\');
                                cur.push(n);
                            }
                            None => return Err(format!("`{s}` has an unclosed double quote")),
                        },
                        Some(c) => cur.push(c),
                        None => return Err(format!("`{s}` has an unclosed double quote")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(n) => cur.push(n),
                    None => cur.push('\\'),
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::values::VolumeSource;

    struct T {
        vars: IndexMap<String, String>,
        dir: tempfile::TempDir,
        project_dir: Option<String>,
    }

    impl T {
        fn new() -> T {
            T {
                vars: IndexMap::new(),
                dir: tempfile::tempdir().unwrap(),
                project_dir: None,
            }
        }
        fn var(mut self, k: &str, v: &str) -> T {
            self.vars.insert(k.into(), v.into());
            self
        }
        fn decode(&self, text: &str) -> Decoded {
            let root = crate::manifest::yaml::parse(text).unwrap();
            let dotenv = self.dir.path().join(".env");
            let s = Settings {
                vars: &self.vars,
                dotenv: &dotenv,
                dir: self.dir.path(),
                project_dir: self.project_dir.as_deref(),
                out_dir: self.dir.path(),
            };
            decode(&root, &s)
        }
        /// The one service of `text`, which must decode without problems.
        fn svc(&self, text: &str) -> Imported {
            let d = self.decode(text);
            assert!(d.problems.is_empty(), "{:#?}", d.problems);
            assert_eq!(d.services.len(), 1);
            d.services.into_iter().next().unwrap()
        }
        /// The problems of `text`, as (line, column, message).
        fn problems(&self, text: &str) -> Vec<(u32, u32, String)> {
            let d = self.decode(text);
            d.problems
                .into_iter()
                .map(|p| (p.span.line, p.span.column, p.message))
                .collect()
        }
    }

    fn one(text: &str) -> Svc {
        T::new().svc(text).svc
    }

    fn problem(text: &str) -> (u32, u32, String) {
        let p = T::new().problems(text);
        assert_eq!(p.len(), 1, "{p:#?}");
        p.into_iter().next().unwrap()
    }

    /// A service's environment as (name, value) pairs, in order.
    fn env_pairs(i: &Imported) -> Vec<(&str, &str)> {
        i.svc
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    /// The one problem of `text`, which says `needle`: its line and column.
    fn problem_says(text: &str, needle: &str) -> (u32, u32) {
        let (l, c, m) = problem(text);
        assert!(m.contains(needle), "{m}");
        (l, c)
    }

    #[test]
    fn image_tags_become_pins() {
        let s = one("services:\n  web:\n    image: registry.acme:5000/shop/web:2.4.1\n");
        assert_eq!(
            (s.image.as_str(), s.pin.as_str()),
            ("registry.acme:5000/shop/web", "2.4.1")
        );
        let d = format!("sha256:{}", "a".repeat(64));
        let s = one(&format!("services:\n  web:\n    image: nginx:1.25@{d}\n"));
        assert_eq!((s.image.as_str(), s.pin), ("nginx", format!("1.25@{d}")));
        let (l, c) = problem_says(
            "services:\n  web:\n    image: nginx\n",
            "`nginx` has no tag",
        );
        assert_eq!((l, c), (3, 12));
        problem_says(
            "services:\n  web:\n    image: nginx:latest\n",
            "`latest` is not a version",
        );
        problem_says(
            &format!("services:\n  web:\n    image: nginx@{d}\n"),
            "has no tag",
        );
        // A registry port is not a tag.
        problem_says(
            "services:\n  web:\n    image: localhost:5000/web\n",
            "has no tag",
        );
        let (l, _) = problem_says(
            "services:\n  web:\n    ports: [\"80:80\"]\n",
            "has no `image`",
        );
        assert_eq!(l, 2);
    }

    #[test]
    fn ports_short_long_and_ranges() {
        let s = one(
            "services:\n  web:\n    image: a:1\n    ports:\n      - \"8080:80\"\n      - 127.0.0.1:8443:443\n      - 53:53/udp\n      - 9000-9001:7000-7001\n      - target: 81\n        published: 8081\n        host_ip: 10.0.0.1\n        protocol: tcp\n        mode: host\n      - \"[::1]:8082:82\"\n      - 2222:22\n",
        );
        let got: Vec<String> = s.ports.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            got,
            [
                "8080:80/tcp",
                "127.0.0.1:8443:443/tcp",
                "53:53/udp",
                "9000:7000/tcp",
                "9001:7001/tcp",
                "10.0.0.1:8081:81/tcp",
                "[::1]:8082:82/tcp",
                "2222:22/tcp"
            ]
        );
        for bad in [
            "\"80\"",
            "80",
            "\"127.0.0.1::80\"",
            "\"8000-8001:80\"",
            "\"80:80/sctp\"",
        ] {
            let (l, c, _) = problem(&format!(
                "services:\n  web:\n    image: a:1\n    ports:\n      - {bad}\n"
            ));
            assert_eq!((l, c), (5, 9), "{bad}");
        }
        problem_says(
            "services:\n  web:\n    image: a:1\n    ports: [\"80\"]\n",
            "random",
        );
        problem_says(
            "services:\n  web:\n    image: a:1\n    ports:\n      - target: 80\n",
            "random",
        );
    }

    #[test]
    fn volumes_named_bind_and_refused_forms() {
        let t = T::new();
        let i = t.svc("services:\n  db:\n    image: a:1\n    volumes:\n      - dbdata:/var/lib/mysql\n      - /srv/conf:/etc/mysql/conf.d:ro\n      - ./themes:/themes:cached\n      - type: volume\n        source: dbdata\n        target: /backup\n        read_only: true\n      - type: bind\n        source: /etc/localtime\n        target: /etc/localtime\n        read_only: true\nvolumes:\n  dbdata:\n".replace("      - ./themes:/themes:cached\n", "").as_str());
        let got: Vec<String> = i
            .svc
            .volumes
            .iter()
            .map(|v| {
                let src = match &v.source {
                    VolumeSource::Named { name } => name.clone(),
                    VolumeSource::Bind { path } => path.clone(),
                };
                format!("{src}:{}:{}", v.target, v.read_only)
            })
            .collect();
        assert_eq!(
            got,
            [
                "dbdata:/var/lib/mysql:false",
                "/srv/conf:/etc/mysql/conf.d:true",
                "dbdata:/backup:true",
                "/etc/localtime:/etc/localtime:true"
            ]
        );
        // Relative bind mounts need --project-dir.
        let (l, c) = problem_says(
            "services:\n  wp:\n    image: a:1\n    volumes:\n      - ./themes:/themes:cached\n",
            "relative to the compose file",
        );
        assert_eq!((l, c), (5, 9));
        let mut t = T::new();
        t.project_dir = Some("/srv/blog".into());
        let d = t.decode("services:\n  wp:\n    image: a:1\n    volumes:\n      - ./themes:/themes:cached\n      - ../shared/x:/x:ro\n");
        assert!(d.problems.is_empty(), "{:?}", d.problems);
        let v = &d.services[0].svc.volumes;
        assert_eq!(
            v[0].source,
            VolumeSource::Bind {
                path: "/srv/blog/themes".into()
            }
        );
        assert_eq!(
            v[1].source,
            VolumeSource::Bind {
                path: "/srv/shared/x".into()
            }
        );
        assert!(
            d.warnings
                .iter()
                .any(|w| w.message.contains("`:cached` is dropped"))
        );
        let d = t.decode("services:\n  wp:\n    image: a:1\n    volumes: [\"~/x:/x\"]\n");
        assert!(
            d.problems[0].message.contains("home directory"),
            "{:?}",
            d.problems
        );
        // Undeclared, anonymous, SELinux.
        problem_says(
            "services:\n  db:\n    image: a:1\n    volumes: [\"data:/d\"]\n",
            "not declared",
        );
        problem_says(
            "services:\n  db:\n    image: a:1\n    volumes: [\"/d\"]\n",
            "anonymous",
        );
        problem_says(
            "services:\n  db:\n    image: a:1\n    volumes: [\"/a:/d:Z\"]\n",
            "`Z` cannot be carried",
        );
        let (l, _) = problem_says(
            "services:\n  db:\n    image: a:1\n    volumes:\n      - type: tmpfs\n        target: /tmp\n",
            "`tmpfs` mount cannot be carried",
        );
        assert_eq!(l, 5);
    }

    #[test]
    fn volume_declarations_remember_compose_names() {
        let d = T::new().decode("services:\n  db:\n    image: a:1\n    volumes: [\"a:/a\", \"b:/b\"]\nvolumes:\n  a:\n  b:\n    external: true\n    name: legacy_b\n  c: {}\n");
        assert!(d.problems.is_empty(), "{:?}", d.problems);
        assert!(d.volumes["a"].used && d.volumes["b"].used && !d.volumes["c"].used);
        assert_eq!(d.volumes["b"].explicit.as_deref(), Some("legacy_b"));
        assert!(d.volumes["b"].external);
        let (l, _) = problem_says(
            "services:\n  db:\n    image: a:1\nvolumes:\n  a:\n    driver: nfs\n",
            "driver",
        );
        assert_eq!(l, 6);
    }

    #[test]
    fn environment_list_and_map_forms_with_interpolation() {
        let t = T::new()
            .var("MYSQL_HOST", "db")
            .var("PREFIX", "wp_")
            .var("SHELLISH", "x");
        let i = t.svc("services:\n  wp:\n    image: a:1\n    environment:\n      WORDPRESS_DB_HOST: ${MYSQL_HOST}\n      TABLE_PREFIX: $PREFIX\n      PORT: 3306\n      DEBUG: true\n      COST: 5$$\n      SHELLISH:\n");
        assert_eq!(
            env_pairs(&i),
            [
                ("COST", "5$"),
                ("DEBUG", "true"),
                ("PORT", "3306"),
                ("SHELLISH", "x"),
                ("TABLE_PREFIX", "wp_"),
                ("WORDPRESS_DB_HOST", "db")
            ]
        );
        let i = t.svc("services:\n  wp:\n    image: a:1\n    environment:\n      - A=1\n      - B=${MYSQL_HOST:-x}=y\n      - C=\n      - SHELLISH\n");
        assert_eq!(
            env_pairs(&i),
            [("A", "1"), ("B", "db=y"), ("C", ""), ("SHELLISH", "x")]
        );
        // Unset variables are located errors, in both forms.
        let (l, c) = problem_says(
            "services:\n  wp:\n    image: a:1\n    environment:\n      HOST: ${MYSQL_HOST}\n",
            "`${MYSQL_HOST}` has no value",
        );
        assert_eq!((l, c), (5, 13));
        let (l, c) = problem_says(
            "services:\n  wp:\n    image: a:1\n    environment:\n      - FROM_SHELL\n",
            "has no value",
        );
        assert_eq!((l, c), (5, 9));
        problem_says(
            "services:\n  wp:\n    image: a:1\n    environment:\n      - my.var=1\n",
            "not a valid variable name",
        );
        // A secret-looking value is carried, with a warning.
        let d = T::new()
            .decode("services:\n  wp:\n    image: a:1\n    environment: {DB_PASSWORD: hunter2}\n");
        assert!(
            d.warnings[0].message.contains("looks like a secret"),
            "{:?}",
            d.warnings
        );
    }

    #[test]
    fn env_file_forms_paths_and_agreement() {
        let t = T::new();
        std::fs::create_dir(t.dir.path().join("secrets")).unwrap();
        std::fs::write(
            t.dir.path().join("secrets/wp.env"),
            "DB_PASSWORD=s3cret\n# c\nexport X=1\n",
        )
        .unwrap();
        let s = t
            .svc("services:\n  wp:\n    image: a:1\n    env_file: ./secrets/wp.env\n")
            .svc;
        assert_eq!(s.env_file.as_deref(), Some("secrets/wp.env"));
        let s = t.svc("services:\n  wp:\n    image: a:1\n    env_file:\n      - path: secrets/wp.env\n      - path: missing.env\n        required: false\n").svc;
        assert_eq!(s.env_file.as_deref(), Some("secrets/wp.env"));
        // Two files, a key in both places, a file fleetpin reads otherwise.
        std::fs::write(t.dir.path().join("b.env"), "Y=2\n").unwrap();
        let p =
            t.problems("services:\n  wp:\n    image: a:1\n    env_file: [secrets/wp.env, b.env]\n");
        assert!(p[0].2.contains("one env_file per service"), "{p:?}");
        let p = t.problems("services:\n  wp:\n    image: a:1\n    environment: {X: 2}\n    env_file: secrets/wp.env\n");
        assert_eq!((p[0].0, p[0].1), (5, 15));
        assert!(p[0].2.contains("`X` is set both in `environment`"), "{p:?}");
        std::fs::write(t.dir.path().join("esc.env"), "A=\"x\\ny\"\n").unwrap();
        let p = t.problems("services:\n  wp:\n    image: a:1\n    env_file: esc.env\n");
        assert!(
            p[0].2.contains("read `A` in `esc.env` differently"),
            "{p:?}"
        );
        // A missing file is a warning: secrets are often not on the importing machine.
        let d = t.decode("services:\n  wp:\n    image: a:1\n    env_file: nowhere.env\n");
        assert!(d.problems.is_empty());
        assert!(
            d.warnings[0].message.contains("not readable here"),
            "{:?}",
            d.warnings
        );
    }

    #[test]
    fn command_and_entrypoint_string_and_list_forms() {
        let s = one(
            "services:\n  w:\n    image: a:1\n    command: catalina.sh run --opt 'a b' \"c \\\"d\\\"\" e\\ f\n    entrypoint: [\"/bin/sh\", \"-c\"]\n",
        );
        assert_eq!(
            s.command.unwrap(),
            ["catalina.sh", "run", "--opt", "a b", "c \"d\"", "e f"]
        );
        assert_eq!(s.entrypoint.unwrap(), ["/bin/sh", "-c"]);
        let s = one(
            "services:\n  w:\n    image: a:1\n    entrypoint: /entrypoint.sh --verbose\n    command: [\"echo\", \"$$HOME\"]\n",
        );
        assert_eq!(s.entrypoint.unwrap(), ["/entrypoint.sh", "--verbose"]);
        assert_eq!(s.command.unwrap(), ["echo", "$HOME"]);
        problem_says(
            "services:\n  w:\n    image: a:1\n    entrypoint: []\n",
            "empty",
        );
        problem_says(
            "services:\n  w:\n    image: a:1\n    command: echo 'oops\n",
            "unclosed single quote",
        );
    }

    #[test]
    fn healthcheck_forms() {
        let s = one(
            "services:\n  w:\n    image: a:1\n    healthcheck:\n      test: [\"CMD\", \"curl\", \"-f\", \"http://localhost\"]\n      interval: 1m30s\n      timeout: 1.5s\n      retries: 3\n      start_period: 40s\n",
        );
        let h = s.healthcheck.unwrap();
        assert_eq!(h.test, ["CMD", "curl", "-f", "http://localhost"]);
        assert_eq!(h.interval, Some(Duration::from_secs(90)));
        assert_eq!(h.timeout, Some(Duration::from_millis(1500)));
        assert_eq!(h.retries, Some(3));
        assert_eq!(h.start_period, Some(Duration::from_secs(40)));
        let h = one("services:\n  w:\n    image: a:1\n    healthcheck:\n      test: wget -q -O- localhost/health || exit 1\n").healthcheck.unwrap();
        assert_eq!(
            h.test,
            ["CMD-SHELL", "wget -q -O- localhost/health || exit 1"]
        );
        let h = one("services:\n  w:\n    image: a:1\n    healthcheck:\n      disable: true\n")
            .healthcheck
            .unwrap();
        assert_eq!(h.test, ["NONE"]);
        let (l, _) = problem_says(
            "services:\n  w:\n    image: a:1\n    healthcheck:\n      interval: 5s\n",
            "has no `test`",
        );
        assert_eq!(l, 4);
        let (l, _) = problem_says(
            "services:\n  w:\n    image: a:1\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n      start_interval: 1s\n",
            "`start_interval`",
        );
        assert_eq!(l, 6);
        problem_says(
            "services:\n  w:\n    image: a:1\n    healthcheck:\n      test: [\"curl\"]\n",
            "must start with",
        );
    }

    #[test]
    fn depends_on_list_and_map_forms() {
        let i = T::new().svc_of("services:\n  db:\n    image: a:1\n  cache:\n    image: a:1\n  web:\n    image: a:1\n    depends_on:\n      db:\n        condition: service_healthy\n      cache:\n        condition: service_started\n        required: true\n", "web");
        assert_eq!(i.svc.depends_on, ["db", "cache"]);
        assert!(
            i.notes.iter().any(|n| n.1.contains("`db` was healthy")),
            "{:?}",
            i.notes
        );
        let i = T::new().svc_of(
            "services:\n  db:\n    image: a:1\n  web:\n    image: a:1\n    depends_on: [db]\n",
            "web",
        );
        assert_eq!(i.svc.depends_on, ["db"]);
        let p = T::new().problems("services:\n  a:\n    image: a:1\n    depends_on: [b]\n  b:\n    image: a:1\n    depends_on: [a]\n");
        assert_eq!(
            p,
            [(7, 18, "`depends_on` makes a cycle: a -> b -> a".to_string())]
        );
        // Reported once, at the edge that closes it, wherever the walk starts.
        let p = T::new().problems("services:\n  d:\n    image: a:1\n    depends_on: [a]\n  a:\n    image: a:1\n    depends_on: [b]\n  b:\n    image: a:1\n    depends_on: [c]\n  c:\n    image: a:1\n    depends_on: [a]\n");
        assert_eq!(
            p,
            [(
                13,
                18,
                "`depends_on` makes a cycle: a -> b -> c -> a".to_string()
            )]
        );
        // A chain as long as a hostile file likes is walked without recursion.
        let n = 20_000;
        let mut long = String::from("services:\n");
        for i in 0..n {
            long.push_str(&format!(
                "  s{i}:\n    image: a:1\n    depends_on: [s{}]\n",
                (i + 1) % n
            ));
        }
        let p = T::new().problems(&long);
        assert_eq!(p.len(), 1, "{:?}", &p[..p.len().min(3)]);
        assert_eq!((p[0].0, p[0].1), (3 * n as u32 + 1, 18));
        assert!(
            p[0].2.ends_with(
                "cycle: s0 -> s1 -> s2 -> s3 -> s4 -> (19991 more) -> s19996 -> s19997 -> s19998 -> s19999 -> s0"
            ),
            "{}",
            p[0].2
        );
        let p = T::new().problems("services:\n  a:\n    image: a:1\n    depends_on: [a]\n");
        assert_eq!((p.len(), p[0].0, p[0].1), (1, 4, 18), "{p:?}");
        assert!(p[0].2.ends_with("`a` depends on itself"), "{p:?}");
        let p = T::new().problems("services:\n  web:\n    image: a:1\n    depends_on: [nope]\n");
        assert_eq!((p[0].0, p[0].1), (4, 18));
        let p = T::new().problems("services:\n  job:\n    image: a:1\n  web:\n    image: a:1\n    depends_on:\n      job:\n        condition: service_completed_successfully\n");
        assert_eq!(p[0].0, 8);
        assert!(p[0].2.contains("one-shot"), "{p:?}");
    }

    #[test]
    fn restart_networks_labels_logging_and_limits() {
        let s = one(
            "services:\n  w:\n    image: a:1\n    restart: unless-stopped\n    networks: [front, default]\n    labels:\n      traefik.enable: \"true\"\n      com.example.team: shop\n    logging:\n      driver: json-file\n      options:\n        max-size: 10m\n        max-file: 3\n    user: 1000:1000\n    stop_grace_period: 1m\n    mem_limit: 512m\n    cpus: 1.5\nnetworks:\n  front:\n",
        );
        assert_eq!(s.restart, Some(RestartPolicy::UnlessStopped));
        assert_eq!(s.networks, ["front", "default"]);
        assert_eq!(s.labels["traefik.enable"], "true");
        assert_eq!(s.labels["com.example.team"], "shop");
        let l = s.logging.unwrap();
        assert_eq!(l.driver, "json-file");
        assert_eq!(l.options["max-file"], "3");
        assert_eq!(s.user.as_deref(), Some("1000:1000"));
        assert_eq!(s.stop_timeout, Some(Duration::from_secs(60)));
        assert_eq!(s.memory.as_deref(), Some("512m"));
        assert_eq!(s.cpus, Some(1.5));
        let s = one(
            "services:\n  w:\n    image: a:1\n    restart: no\n    labels: [\"a.b=c\", \"flag\"]\n    networks:\n      back:\nnetworks:\n  back:\n",
        );
        assert_eq!(s.restart, Some(RestartPolicy::No));
        assert_eq!(s.labels["a.b"], "c");
        assert_eq!(s.labels["flag"], "");
        assert_eq!(s.networks, ["back"]);
        let i = T::new().svc("services:\n  w:\n    image: a:1\n");
        assert_eq!(i.svc.restart, None);
        assert!(i.notes[0].1.contains("compose's default `no`"));
        problem_says(
            "services:\n  w:\n    image: a:1\n    restart: on-failure:3\n",
            "no retry limit",
        );
        problem_says(
            "services:\n  w:\n    image: a:1\n    networks: [nowhere]\n",
            "not declared",
        );
        let (l, _) = problem_says(
            "services:\n  w:\n    image: a:1\n    networks:\n      front:\n        aliases: [x]\nnetworks:\n  front:\n",
            "`aliases`",
        );
        assert_eq!(l, 6);
        problem_says(
            "services:\n  w:\n    image: a:1\n    labels: {io.fleetpin.version: x}\n",
            "fleetpin's own",
        );
        problem_says(
            "services:\n  w:\n    image: a:1\n    logging: {options: {max-size: 1m}}\n",
            "no `driver`",
        );
    }

    #[test]
    fn keys_that_cannot_be_carried_are_located_errors() {
        let (l, c) = problem_says(
            "services:\n  web:\n    image: a:1\n    build: .\n",
            "`build` of service `web` cannot be carried",
        );
        assert_eq!((l, c), (4, 5));
        for key in [
            "deploy: {replicas: 2}",
            "extends: {service: base}",
            "profiles: [debug]",
            "secrets: [x]",
            "configs: [x]",
            "network_mode: host",
            "privileged: true",
            "container_name: web",
        ] {
            let (l, c, _) = problem(&format!("services:\n  web:\n    image: a:1\n    {key}\n"));
            assert_eq!((l, c), (4, 5), "{key}");
        }
        problem_says(
            "services:\n  web:\n    image: a:1\n    enviroment: {A: 1}\n",
            "not a compose key",
        );
        let (l, _) = problem_says(
            "services:\n  web:\n    image: a:1\nsecrets:\n  x: {file: ./x}\n",
            "top-level `secrets`",
        );
        assert_eq!(l, 4);
        // Extension fields are compose's own way to be ignored.
        one(
            "x-common: &c {restart: always}\nservices:\n  web:\n    <<: *c\n    image: a:1\n    x-note: hi\n",
        );
        problem_says(
            "services:\n  my_web:\n    image: a:1\n",
            "not a valid fleetpin service name",
        );
    }

    #[test]
    fn merge_keys_carry_what_they_merge() {
        let s = one(
            "x-base: &base\n  restart: always\n  environment: {A: 1}\nservices:\n  web:\n    <<: *base\n    image: a:1\n",
        );
        assert_eq!(s.restart, Some(RestartPolicy::Always));
        assert_eq!(s.env["A"], "1");
    }

    #[test]
    fn small_syntaxes() {
        assert_eq!(go_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(go_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(go_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(go_duration("300ms").unwrap(), Duration::from_millis(300));
        assert!(go_duration("10").is_err());
        assert!(go_duration("soon").is_err());
        assert_eq!(manifest_duration(Duration::from_secs(90)), "90s");
        assert_eq!(manifest_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(join_lexically("/srv/app", "./data/../db"), "/srv/app/db");
        assert_eq!(shell_words("  a  b ").unwrap(), ["a", "b"]);
        assert_eq!(shell_words("''").unwrap(), [""]);
    }

    impl T {
        fn svc_of(&self, text: &str, name: &str) -> Imported {
            let d = self.decode(text);
            assert!(d.problems.is_empty(), "{:#?}", d.problems);
            d.services.into_iter().find(|s| s.name == name).unwrap()
        }
    }
}
