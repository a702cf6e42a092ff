//! From the spanned YAML tree to the typed manifest, collecting every problem instead of stopping
//! at the first: unknown fields (with a "did you mean"), wrong types, malformed values. Checks that
//! need the whole manifest (unknown services, cycles, port clashes) live in `checks`.

use crate::manifest::diagnostics::Problem;
use crate::manifest::pin::VersionPin;
use crate::manifest::values::{
    Endpoint, PortMapping, VolumeMount, check_webhook, parse_duration, parse_memory,
};
use crate::manifest::yaml::{Key, Node, Span, Value};
use crate::manifest::{
    DEFAULT_RETAIN, Environment, Git, Healthcheck, Hooks, Host, Located, Logging, MAX_WINDOW,
    Manifest, ManifestSpans, Notifier, OnFailure, Order, Override, Publish, PublishedReference,
    RestartPolicy, Rollout, Service, Signer, SopsRef, Swarm, Tls, Trust, Update, Window,
    WindowKind,
};
use indexmap::IndexMap;
use std::collections::BTreeMap;
use std::time::Duration;

/// The longest `update.monitor` accepted.
const MAX_MONITOR: Duration = Duration::from_secs(3600);
/// The longest `update.drain` accepted.
const MAX_DRAIN: Duration = Duration::from_secs(600);
/// The longest `hooks.timeout` accepted.
const MAX_HOOK_TIMEOUT: Duration = Duration::from_secs(3600);
/// The longest notification `timeout` accepted.
const MAX_NOTIFY_TIMEOUT: Duration = Duration::from_secs(300);

pub fn decode(root: &Node) -> (Option<Manifest>, Vec<Problem>) {
    let mut d = Decoder {
        problems: vec![],
        written_services: Default::default(),
    };
    let m = d.manifest(root);
    (m, d.problems)
}

struct Decoder {
    problems: Vec<Problem>,
    /// Every service name written, valid or not, so a broken service is not also reported as
    /// unknown wherever it is referenced.
    written_services: std::collections::BTreeSet<String>,
}

/// How a top-level mapping of names is called and which names it takes (`Decoder::named`).
struct Names {
    /// The key, plural: `services`.
    key: &'static str,
    /// One of them: `service`.
    one: &'static str,
    /// The problem of an empty mapping.
    empty: &'static str,
    valid: fn(&str) -> bool,
    /// What a valid name is, in words.
    rule: &'static str,
}

/// The `{sops, key}` entries of an `env` mapping, by variable.
type SopsEnv = BTreeMap<String, Located<SopsRef>>;

/// A mapping being read: which keys exist, with the allowed ones checked up front.
struct Obj<'a> {
    entries: &'a [(Key, Node)],
    span: Span,
}

impl<'a> Obj<'a> {
    fn get(&self, name: &str) -> Option<&'a Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.name == name)
            .map(|(_, v)| v)
    }
    fn key_span(&self, name: &str) -> Span {
        self.entries
            .iter()
            .find(|(k, _)| k.name == name)
            .map(|(k, _)| k.span)
            .unwrap_or(self.span)
    }
}

pub fn is_name(s: &str, max_rest: usize, hyphen: bool) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z'))
        && s.len() <= max_rest + 1
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9') || (hyphen && c == '-'))
}

pub fn is_service_name(s: &str) -> bool {
    is_name(s, 30, true)
}

pub fn is_environment_name(s: &str) -> bool {
    is_name(s, 15, false)
}

pub fn is_host_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && s.len() <= 63
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

pub fn did_you_mean(name: &str, allowed: &[&str], present: &[&str]) -> Option<String> {
    allowed
        .iter()
        .filter(|a| !present.contains(a))
        // A distance is only worth computing between names of about the same length.
        .filter(|a| a.len().abs_diff(name.len()) <= 2.max(a.len() / 3))
        .map(|a| (strsim::damerau_levenshtein(name, a), *a))
        .filter(|(d, a)| *d <= 2.max(a.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| format!("did you mean `{a}`?"))
}

impl Decoder {
    fn problem(&mut self, span: Span, msg: impl Into<String>) {
        self.problems.push(Problem::new(span, msg.into()));
    }

    /// Two YAML keys that read as one name (`null` and `"null"`, `1` and `"1"`): the second
    /// would silently replace the first.
    fn duplicate_names(&mut self, entries: &[(Key, Node)], what: &str) {
        let mut seen = std::collections::HashSet::new();
        for (k, _) in entries {
            if !seen.insert(k.name.as_str()) {
                self.problem(
                    k.span,
                    format!(
                        "duplicate name `{}` in {what} (written twice, once perhaps with quotes)",
                        k.name
                    ),
                );
            }
        }
    }

    fn obj<'a>(&mut self, node: &'a Node, what: &str, allowed: &[&str]) -> Option<Obj<'a>> {
        if let Value::Map(entries) = &node.value {
            self.duplicate_names(entries, what);
        }
        match &node.value {
            Value::Map(entries) => {
                // Only allowed names matter for "did you mean": the present ones among them.
                let present: Vec<&str> = allowed
                    .iter()
                    .copied()
                    .filter(|a| entries.iter().any(|(k, _)| k.name == *a))
                    .collect();
                for (k, _) in entries {
                    if !allowed.contains(&k.name.as_str()) {
                        let mut p = Problem::new(
                            k.span,
                            format!(
                                "unknown field `{}` in {what}; expected one of: {}",
                                k.name,
                                allowed.join(", ")
                            ),
                        );
                        p.help = did_you_mean(&k.name, allowed, &present);
                        self.problems.push(p);
                    }
                }
                Some(Obj {
                    entries,
                    span: node.span,
                })
            }
            _ => {
                self.problem(
                    node.span,
                    format!("{what} must be a mapping, found {}", node.kind()),
                );
                None
            }
        }
    }

    fn required<'a>(&mut self, o: &Obj<'a>, name: &str, what: &str) -> Option<&'a Node> {
        let n = o.get(name);
        if n.is_none() {
            self.problem(o.span, format!("{what} has no `{name}`, which is required"));
        }
        n
    }

    fn text(&mut self, n: &Node, what: &str) -> Option<String> {
        match n.scalar_text() {
            Some(s) => Some(s),
            None => {
                self.problem(
                    n.span,
                    format!("{what} must be a string, found {}", n.kind()),
                );
                None
            }
        }
    }

    fn nonempty_text(&mut self, n: &Node, what: &str) -> Option<String> {
        let s = self.text(n, what)?;
        if s.trim().is_empty() {
            self.problem(n.span, format!("{what} is empty"));
            return None;
        }
        if s.chars().any(|c| c.is_control()) {
            self.problem(n.span, format!("{what} contains a control character"));
            return None;
        }
        Some(s)
    }

    fn located_text(&mut self, n: &Node, what: &str) -> Option<Located<String>> {
        self.nonempty_text(n, what).map(|value| Located {
            value,
            span: n.span,
        })
    }

    fn uint(&mut self, n: &Node, what: &str, min: u32, max: u32) -> Option<u32> {
        match n.value {
            Value::Int(i) if i >= min as i128 && i <= max as i128 => Some(i as u32),
            Value::Int(i) => {
                self.problem(
                    n.span,
                    format!("{what} is {i}; expected a whole number from {min} to {max}"),
                );
                None
            }
            _ => {
                self.problem(
                    n.span,
                    format!(
                        "{what} must be a whole number from {min} to {max}, found {}",
                        n.kind()
                    ),
                );
                None
            }
        }
    }

    fn boolean(&mut self, n: &Node, what: &str) -> Option<bool> {
        match n.value {
            Value::Bool(b) => Some(b),
            _ => {
                self.problem(
                    n.span,
                    format!("{what} must be true or false, found {}", n.kind()),
                );
                None
            }
        }
    }

    fn float(&mut self, n: &Node, what: &str, min: f64, max: f64) -> Option<f64> {
        let v = match n.value {
            Value::Int(i) => i as f64,
            Value::Float(f) => f,
            _ => {
                self.problem(
                    n.span,
                    format!("{what} must be a number, found {}", n.kind()),
                );
                return None;
            }
        };
        if !(min..=max).contains(&v) || !v.is_finite() {
            self.problem(
                n.span,
                format!("{what} is {v}; expected a number from {min} to {max}"),
            );
            return None;
        }
        Some(v)
    }

    fn seq<'a>(&mut self, n: &'a Node, what: &str) -> Option<&'a [Node]> {
        match &n.value {
            Value::Seq(items) => Some(items),
            _ => {
                self.problem(n.span, format!("{what} must be a list, found {}", n.kind()));
                None
            }
        }
    }

    fn string_list(&mut self, n: &Node, what: &str) -> Option<Vec<String>> {
        let items = self.seq(n, what)?;
        let mut out = Vec::new();
        let mut ok = true;
        for i in items {
            match self.text(i, &format!("each item of {what}")) {
                Some(s) if !s.chars().any(|c| c == '\0') => out.push(s),
                Some(_) => {
                    self.problem(i.span, format!("an item of {what} contains a NUL byte"));
                    ok = false;
                }
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn located_list(&mut self, n: &Node, what: &str) -> Option<Vec<Located<String>>> {
        let items = self.seq(n, what)?;
        let mut out = Vec::new();
        for i in items {
            if let Some(v) = self.located_text(i, &format!("each item of {what}")) {
                out.push(v);
            }
        }
        Some(out)
    }

    fn string_map(
        &mut self,
        n: &Node,
        what: &str,
        key_ok: fn(&str) -> Result<(), String>,
    ) -> Option<BTreeMap<String, String>> {
        let Value::Map(entries) = &n.value else {
            self.problem(
                n.span,
                format!(
                    "{what} must be a mapping of names to values, found {}",
                    n.kind()
                ),
            );
            return None;
        };
        let mut out = BTreeMap::new();
        for (k, v) in entries {
            if let Err(rule) = key_ok(&k.name) {
                self.problem(k.span, format!("`{}` in {what}: {rule}", k.name));
                continue;
            }
            match v.value {
                // An empty value is best shown at its key: the value has no place of its own.
                Value::Null => self.problem(
                    null_at(k, v),
                    format!(
                        "`{}` in {what} has no value; write an empty string \"\" if that is meant",
                        k.name
                    ),
                ),
                Value::Seq(_) | Value::Map(_) => self.problem(
                    v.span,
                    format!(
                        "`{}` in {what} must be a single value, found {}",
                        k.name,
                        v.kind()
                    ),
                ),
                _ => {
                    let s = v.scalar_text().unwrap_or_default();
                    if s.contains('\0') {
                        self.problem(
                            v.span,
                            format!("`{}` in {what} contains a NUL byte", k.name),
                        );
                    } else {
                        out.insert(k.name.clone(), s);
                    }
                }
            }
        }
        Some(out)
    }

    /// An `env` mapping: plain values, and `{sops: FILE, key: PATH}` entries apart.
    fn env_map(&mut self, n: &Node, what: &str) -> Option<(BTreeMap<String, String>, SopsEnv)> {
        let mut plain = n.clone();
        let mut secret = BTreeMap::new();
        if let Value::Map(entries) = &mut plain.value {
            let mut kept = Vec::with_capacity(entries.len());
            for (k, v) in std::mem::take(entries) {
                if !matches!(v.value, Value::Map(_)) {
                    kept.push((k, v));
                    continue;
                }
                if let Err(rule) = valid_env_key(&k.name) {
                    self.problem(k.span, format!("`{}` in {what}: {rule}", k.name));
                    continue;
                }
                if let Some(r) = self.sops_ref(&v, &format!("`{}` in {what}", k.name)) {
                    secret.insert(k.name.clone(), r);
                }
            }
            *entries = kept;
        }
        let plain = self.string_map(&plain, what, valid_env_key)?;
        Some((plain, secret))
    }

    /// `{sops: FILE, key: a.b}` or `{sops: FILE, key: [a, "b.c", 0]}`.
    fn sops_ref(&mut self, n: &Node, what: &str) -> Option<Located<SopsRef>> {
        use crate::secrets::{KeyPath, KeyStep};
        let o = self.obj(n, what, &["sops", "key"])?;
        let file = self.required(&o, "sops", what).and_then(|f| {
            let s = self.nonempty_text(f, &format!("`sops` of {what}"))?;
            if s.starts_with('/') {
                self.problem(
                    f.span,
                    format!("`sops` of {what} is an absolute path; SOPS files are read from git, at the commit deployed: write a path relative to the manifest"),
                );
                return None;
            }
            Some(s)
        });
        let key = self.required(&o, "key", what).and_then(|k| {
            let kw = format!("`key` of {what}");
            match &k.value {
                Value::Seq(items) if !items.is_empty() => {
                    let mut steps = Vec::with_capacity(items.len());
                    for i in items {
                        match &i.value {
                            Value::Int(x) if *x >= 0 && *x <= u32::MAX as i128 => {
                                steps.push(KeyStep::Index(*x as usize))
                            }
                            Value::Str(s) if !s.is_empty() => steps.push(KeyStep::Key(s.clone())),
                            _ => {
                                self.problem(
                                    i.span,
                                    format!("each item of {kw} must be a map key (a non-empty string) or a list index (a whole number), found {}", i.kind()),
                                );
                                return None;
                            }
                        }
                    }
                    if !matches!(steps.first(), Some(KeyStep::Key(_))) {
                        self.problem(k.span, format!("{kw} must start with a map key"));
                        return None;
                    }
                    Some(KeyPath(steps))
                }
                Value::Seq(_) => {
                    self.problem(k.span, format!("{kw} is an empty list"));
                    None
                }
                _ => {
                    let s = self.nonempty_text(k, &kw)?;
                    if s.split('.').any(str::is_empty) {
                        self.problem(
                            k.span,
                            format!("{kw} `{s}` has an empty part; a key that holds a dot is written as a list: [a, \"b.c\"]"),
                        );
                        return None;
                    }
                    Some(KeyPath::dotted(&s))
                }
            }
        });
        Some(Located {
            value: SopsRef {
                file: file?,
                key: key?,
            },
            span: n.span,
        })
    }

    /// A text that `parse` reads; its error is a problem of `what`.
    fn parsed<T, E: std::fmt::Display>(
        &mut self,
        n: &Node,
        what: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        let s = self.text(n, what)?;
        match parse(&s) {
            Ok(v) => Some(v),
            Err(e) => {
                self.problem(n.span, format!("{what}: {e}"));
                None
            }
        }
    }

    /// A list of texts that `parse` reads, each located; `item` names one in a type error.
    fn parsed_list<T, E: std::fmt::Display>(
        &mut self,
        n: &Node,
        what: &str,
        item: &str,
        parse: impl Fn(&str) -> Result<T, E>,
    ) -> Option<Vec<Located<T>>> {
        let items = self.seq(n, what)?;
        let mut out = Vec::new();
        for i in items {
            let Some(s) = self.text(i, item) else {
                continue;
            };
            match parse(&s) {
                Ok(value) => out.push(Located {
                    value,
                    span: i.span,
                }),
                Err(e) => self.problem(i.span, format!("{what}: {e}")),
            }
        }
        Some(out)
    }

    fn duration(&mut self, n: &Node, what: &str) -> Option<Duration> {
        self.parsed(n, what, parse_duration)
    }

    fn memory(&mut self, n: &Node, what: &str) -> Option<u64> {
        self.parsed(n, what, parse_memory)
    }

    fn ports(&mut self, n: &Node, what: &str) -> Option<Vec<Located<PortMapping>>> {
        // `8080:80` unquoted is a sexagesimal number in YAML 1.1; the raw text is what was meant.
        self.parsed_list(n, what, "a port", PortMapping::parse)
    }

    fn volumes(&mut self, n: &Node, what: &str) -> Option<Vec<Located<VolumeMount>>> {
        self.parsed_list(n, what, "a volume", VolumeMount::parse)
    }

    fn command(&mut self, n: &Node, what: &str) -> Option<Vec<String>> {
        if let Value::Str(_) = n.value {
            self.problem(
                n.span,
                format!("{what} must be a list of arguments, e.g. [\"catalina.sh\", \"run\"]; a single string is ambiguous about quoting"),
            );
            return None;
        }
        let v = self.string_list(n, what)?;
        if v.is_empty() {
            self.problem(
                n.span,
                format!("{what} is an empty list; leave it out to use the image's"),
            );
            return None;
        }
        Some(v)
    }

    /// `at` is where the healthcheck is named, for "has no `test`".
    fn healthcheck(&mut self, n: &Node, what: &str, at: Span) -> Option<Healthcheck> {
        let mut o = self.obj(
            n,
            what,
            &["test", "interval", "timeout", "retries", "start_period"],
        )?;
        o.span = at;
        let test = match self.required(&o, "test", what) {
            Some(t) => match &t.value {
                Value::Str(s) if s.trim().is_empty() => {
                    self.problem(
                        t.span,
                        format!("`test` of {what} is empty; write a command, or [\"NONE\"] to disable the image's check"),
                    );
                    None
                }
                Value::Str(s) => Some(vec!["CMD-SHELL".to_string(), s.clone()]),
                _ => self
                    .string_list(t, &format!("`test` of {what}"))
                    .and_then(|v| match v.first().map(|s| s.as_str()) {
                        Some("CMD") if v.len() >= 2 => Some(v),
                        Some("CMD-SHELL") if v.len() == 2 => Some(v),
                        Some("NONE") if v.len() == 1 => Some(v),
                        _ => {
                            self.problem(
                                t.span,
                                format!("`test` of {what} must start with \"CMD\" (then the program and its arguments), \"CMD-SHELL\" (then one shell command), or be [\"NONE\"]"),
                            );
                            None
                        }
                    }),
            },
            None => None,
        };
        // Docker refuses health durations under a millisecond.
        let mut dur = |name: &str| {
            o.get(name).and_then(|x| {
                let d = self.duration(x, &format!("`{name}` of {what}"))?;
                if d < std::time::Duration::from_millis(1) {
                    self.problem(x.span, format!("`{name}` of {what} must be at least 1ms"));
                    return None;
                }
                Some(d)
            })
        };
        let interval = dur("interval");
        let timeout = dur("timeout");
        let start_period = dur("start_period");
        let retries = o
            .get("retries")
            .and_then(|x| self.uint(x, &format!("`retries` of {what}"), 1, 100));
        Some(Healthcheck {
            test: test?,
            interval,
            timeout,
            retries,
            start_period,
        })
    }

    fn manifest(&mut self, root: &Node) -> Option<Manifest> {
        let o = self.obj(
            root,
            "the manifest",
            &[
                "platform",
                "retain",
                "services",
                "environments",
                "hooks",
                "notify",
                "git",
                "reference",
            ],
        )?;
        let mut spans = ManifestSpans::default();
        let platform = self.required(&o, "platform", "the manifest").and_then(|n| {
            spans.platform = n.span;
            let s = self.text(n, "`platform`")?;
            if !is_service_name(&s) {
                self.problem(
                    n.span,
                    format!("`{s}` is not a valid platform name: a lowercase letter, then up to 30 lowercase letters, digits or `-`"),
                );
                return None;
            }
            Some(s)
        });
        let retain = match o.get("retain") {
            Some(n) => {
                spans.retain = n.span;
                self.uint(n, "`retain`", 0, 100)
            }
            None => Some(DEFAULT_RETAIN),
        };
        let services = self.required(&o, "services", "the manifest").and_then(|n| {
            spans.services = n.span;
            self.services(n)
        });
        let environments = self
            .required(&o, "environments", "the manifest")
            .and_then(|n| {
                spans.environments = n.span;
                self.environments(n)
            });
        let git = o.get("git").and_then(|n| self.git(n)).unwrap_or_default();
        let hooks = o
            .get("hooks")
            .and_then(|n| self.hooks(n, o.key_span("hooks")));
        let notify = o.get("notify").and_then(|n| self.notify(n));
        let reference = o.get("reference").and_then(|n| self.reference(n));
        let mut environments = environments.unwrap_or_default();
        for (name, env) in environments.iter_mut() {
            if env.pull_oci && reference.is_none() && o.get("reference").is_none() {
                self.problems.push(
                    Problem::new(
                        env.span,
                        format!("environment `{name}` says `pull: oci`, but the manifest has no `reference`"),
                    )
                    .with_help("add `reference: {repository: REGISTRY/PATH}`: where `fleetpin publish` puts the reference and the agents follow it"),
                );
            }
            // With a `reference`, agents of every pull environment follow the registry.
            env.pull_oci |= env.pull && reference.is_some();
        }
        Some(Manifest {
            platform: platform.unwrap_or_default(),
            retain: retain.unwrap_or(DEFAULT_RETAIN),
            services: services.unwrap_or_default(),
            environments,
            git,
            reference,
            hooks: hooks.unwrap_or_default(),
            notify: notify.unwrap_or_default(),
            spans,
            written_services: self.written_services.clone(),
        })
    }

    /// `git: {push: true}`: what fleetpin does with its pin commits.
    fn git(&mut self, n: &Node) -> Option<Git> {
        let o = self.obj(n, "`git`", &["push"])?;
        let push = o
            .get("push")
            .and_then(|x| self.boolean(x, "`push` of `git`"))
            .unwrap_or(false);
        Some(Git { push })
    }

    /// `reference: {repository: REGISTRY/PATH, publish, insecure}`.
    fn reference(&mut self, n: &Node) -> Option<PublishedReference> {
        let o = self.obj(n, "`reference`", &["repository", "publish", "insecure"])?;
        let repository = self
            .required(&o, "repository", "`reference`")
            .and_then(|x| {
                let s = self.text(x, "`repository` of `reference`")?;
                match crate::oci::check_repository(&s) {
                    Ok(()) => Some(Located {
                        value: s,
                        span: x.span,
                    }),
                    Err(why) => {
                        self.problems.push(
                            Problem::new(x.span, format!("`repository` of `reference`: {why}"))
                                .with_help("write REGISTRY/PATH, e.g. registry.acme.internal:5000/acme/platform: a registry host, then a lowercase path, no tag"),
                        );
                        None
                    }
                }
            });
        let publish = o
            .get("publish")
            .and_then(|x| self.boolean(x, "`publish` of `reference`"))
            .unwrap_or(false);
        let insecure = o
            .get("insecure")
            .and_then(|x| self.boolean(x, "`insecure` of `reference`"))
            .unwrap_or(false);
        Some(PublishedReference {
            repository: repository?,
            publish,
            insecure,
        })
    }

    /// A hook: a shell command, several lines allowed (a YAML block scalar).
    fn hook_command(&mut self, n: &Node, what: &str) -> Option<Located<String>> {
        let s = self.text(n, what)?;
        if s.trim().is_empty() {
            self.problem(
                n.span,
                format!("{what} is empty; write a command, or leave the hook out"),
            );
            return None;
        }
        if s.chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
        {
            self.problem(n.span, format!("{what} contains a control character"));
            return None;
        }
        Some(Located {
            value: s,
            span: n.span,
        })
    }

    /// A duration from 1s to `max`.
    fn bounded_duration(&mut self, n: &Node, what: &str, max: Duration) -> Option<Duration> {
        let d = self.duration(n, what)?;
        if d < Duration::from_secs(1) || d > max {
            self.problem(
                n.span,
                format!(
                    "{what} is {}; expected from 1s to {}",
                    humantime::format_duration(d),
                    humantime::format_duration(max)
                ),
            );
            return None;
        }
        Some(d)
    }

    fn hooks(&mut self, n: &Node, at: Span) -> Option<Hooks> {
        let mut o = self.obj(
            n,
            "`hooks`",
            &[
                "pre_apply",
                "post_apply",
                "pre_rollback",
                "post_rollback",
                "pre_promote",
                "post_promote",
                "on_failure",
                "timeout",
            ],
        )?;
        o.span = at;
        let mut cmd = |name: &str| {
            o.get(name)
                .and_then(|x| self.hook_command(x, &format!("`{name}` of `hooks`")))
        };
        let (pre_apply, post_apply) = (cmd("pre_apply"), cmd("post_apply"));
        let (pre_rollback, post_rollback) = (cmd("pre_rollback"), cmd("post_rollback"));
        let (pre_promote, post_promote) = (cmd("pre_promote"), cmd("post_promote"));
        let on_failure = cmd("on_failure");
        let timeout = o
            .get("timeout")
            .and_then(|x| self.bounded_duration(x, "`timeout` of `hooks`", MAX_HOOK_TIMEOUT));
        Some(Hooks {
            pre_apply,
            post_apply,
            pre_rollback,
            post_rollback,
            pre_promote,
            post_promote,
            on_failure,
            timeout,
            span: at,
        })
    }

    fn notify(&mut self, n: &Node) -> Option<Vec<Notifier>> {
        let items = self.seq(n, "`notify`")?;
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let what = format!("item {} of `notify`", i + 1);
            let Some(o) = self.obj(item, &what, &["webhook", "webhook_env", "timeout"]) else {
                continue;
            };
            let webhook = self.required(&o, "webhook", &what).and_then(|x| {
                let s = self.text(x, &format!("`webhook` of {what}"))?;
                if let Err(e) = check_webhook(&s) {
                    self.problem(x.span, format!("`webhook` of {what}: {e}"));
                    return None;
                }
                Some(Located {
                    value: s,
                    span: x.span,
                })
            });
            let webhook_env = o.get("webhook_env").and_then(|x| {
                let s = self.text(x, &format!("`webhook_env` of {what}"))?;
                if let Err(rule) = valid_env_key(&s) {
                    self.problem(
                        x.span,
                        format!(
                            "`webhook_env` of {what} names an environment variable: `{s}` is {rule}"
                        ),
                    );
                    return None;
                }
                Some(s)
            });
            let timeout = o.get("timeout").and_then(|x| {
                self.bounded_duration(x, &format!("`timeout` of {what}"), MAX_NOTIFY_TIMEOUT)
            });
            if let Some(webhook) = webhook {
                out.push(Notifier {
                    webhook,
                    webhook_env,
                    timeout,
                    span: item.span,
                });
            }
        }
        Some(out)
    }

    fn services(&mut self, n: &Node) -> Option<IndexMap<String, Service>> {
        // Every service written is known before the first is read (depends_on names later ones).
        if let Value::Map(entries) = &n.value {
            for (k, _) in entries {
                self.written_services.insert(k.name.clone());
            }
        }
        self.named(
            n,
            Names {
                key: "services",
                one: "service",
                empty: "`services` is empty; a platform needs at least one service",
                valid: is_service_name,
                rule: "a lowercase letter, then up to 30 lowercase letters, digits or `-`",
            },
            Self::service,
        )
    }

    /// A top-level mapping of names to definitions (`services`, `environments`): a mapping, not
    /// empty, each name written once and valid, each definition read by `read`.
    fn named<T>(
        &mut self,
        n: &Node,
        names: Names,
        mut read: impl FnMut(&mut Self, &Key, &Node) -> Option<T>,
    ) -> Option<IndexMap<String, T>> {
        let Names {
            key,
            one,
            empty,
            valid,
            rule,
        } = names;
        let Value::Map(entries) = &n.value else {
            self.problem(
                n.span,
                format!(
                    "`{key}` must be a mapping of {one} names to {key}, found {}",
                    n.kind()
                ),
            );
            return None;
        };
        if entries.is_empty() {
            self.problem(n.span, empty);
            return None;
        }
        self.duplicate_names(entries, &format!("`{key}`"));
        let mut out = IndexMap::new();
        for (k, v) in entries {
            if !valid(&k.name) {
                self.problem(
                    k.span,
                    format!("`{}` is not a valid {one} name: {rule}", k.name),
                );
                continue;
            }
            if let Some(d) = read(self, k, v) {
                out.insert(k.name.clone(), d);
            }
        }
        Some(out)
    }

    fn service(&mut self, k: &Key, n: &Node) -> Option<Service> {
        let what = format!("service `{}`", k.name);
        let mut o = self.obj(
            n,
            &what,
            &[
                "image",
                "ports",
                "volumes",
                "env",
                "env_file",
                "command",
                "entrypoint",
                "user",
                "labels",
                "memory",
                "cpus",
                "logging",
                "healthcheck",
                "depends_on",
                "restart",
                "stop_timeout",
                "networks",
                "update",
                "replicas",
            ],
        )?;
        o.span = k.span;
        let image = self.required(&o, "image", &what).and_then(|n| {
            let s = self.nonempty_text(n, &format!("`image` of {what}"))?;
            if let Err(e) = check_repository(&s) {
                self.problem(n.span, format!("`image` of {what}: {e}"));
                return None;
            }
            Some(s)
        });
        let ports = o
            .get("ports")
            .map(|x| self.ports(x, &format!("`ports` of {what}")));
        let volumes = o
            .get("volumes")
            .map(|x| self.volumes(x, &format!("`volumes` of {what}")));
        let env = o
            .get("env")
            .map(|x| self.env_map(x, &format!("`env` of {what}")));
        let env_file = o
            .get("env_file")
            .map(|x| self.located_text(x, &format!("`env_file` of {what}")));
        let command = o
            .get("command")
            .map(|x| self.command(x, &format!("`command` of {what}")));
        let entrypoint = o
            .get("entrypoint")
            .map(|x| self.command(x, &format!("`entrypoint` of {what}")));
        let user = o
            .get("user")
            .map(|x| self.nonempty_text(x, &format!("`user` of {what}")));
        let labels = o
            .get("labels")
            .map(|x| self.string_map(x, &format!("`labels` of {what}"), valid_label_key));
        let memory = o
            .get("memory")
            .map(|x| self.memory(x, &format!("`memory` of {what}")));
        let cpus = o
            .get("cpus")
            .map(|x| self.float(x, &format!("`cpus` of {what}"), 0.01, 1024.0));
        let logging = o.get("logging").map(|x| {
            let lw = format!("`logging` of {what}");
            let mut lo = self.obj(x, &lw, &["driver", "options"])?;
            lo.span = o.key_span("logging");
            let driver = self
                .required(&lo, "driver", &lw)
                .and_then(|d| self.nonempty_text(d, &format!("`driver` of {lw}")));
            let options = match lo.get("options") {
                Some(op) => self.string_map(op, &format!("`options` of {lw}"), |k| {
                    if k.is_empty() {
                        Err("an option needs a name".into())
                    } else {
                        Ok(())
                    }
                }),
                None => Some(BTreeMap::new()),
            };
            Some(Logging {
                driver: driver?,
                options: options?,
            })
        });
        let healthcheck = o.get("healthcheck").map(|x| {
            self.healthcheck(
                x,
                &format!("`healthcheck` of {what}"),
                o.key_span("healthcheck"),
            )
        });
        let depends_on = o
            .get("depends_on")
            .map(|x| self.located_list(x, &format!("`depends_on` of {what}")));
        let restart = o.get("restart").map(|x| {
            let s = self.text(x, &format!("`restart` of {what}"))?;
            match RestartPolicy::ALL.iter().find(|p| p.as_str() == s) {
                Some(p) => Some(*p),
                None => {
                    // YAML reads a bare `no` as the boolean false.
                    if x.value == Value::Bool(false) && x.raw.as_deref() == Some("no") {
                        return Some(RestartPolicy::No);
                    }
                    self.problem(
                        x.span,
                        format!("`restart` of {what} is `{s}`; expected one of: no, always, unless-stopped, on-failure"),
                    );
                    None
                }
            }
        });
        let stop_timeout = o.get("stop_timeout").map(|x| {
            let d = self.duration(x, &format!("`stop_timeout` of {what}"))?;
            // Docker counts the stop timeout in whole seconds.
            if d.subsec_nanos() != 0 {
                self.problem(
                    x.span,
                    format!("`stop_timeout` of {what} must be whole seconds, e.g. \"10s\" (Docker counts seconds)"),
                );
                return None;
            }
            Some(d)
        });
        let networks = o.get("networks").map(|x| {
            let list = self.located_list(x, &format!("`networks` of {what}"))?;
            for l in &list {
                if !crate::manifest::values::valid_network_name(&l.value) {
                    self.problem(
                        l.span,
                        format!("`{}` in `networks` of {what} is not a valid network name (letters, digits, `_`, `.`, `-`)", l.value),
                    );
                }
            }
            Some(list)
        });
        let update = o
            .get("update")
            .map(|x| self.update(x, &format!("`update` of {what}"), o.key_span("update")));
        let replicas = o
            .get("replicas")
            .map(|x| self.replicas(x, &format!("`replicas` of {what}")));
        Some(Service {
            image: image.unwrap_or_default(),
            ports: ports.flatten().unwrap_or_default(),
            volumes: volumes.flatten().unwrap_or_default(),
            env: env.clone().flatten().map(|e| e.0).unwrap_or_default(),
            secret_env: env.flatten().map(|e| e.1).unwrap_or_default(),
            env_file: env_file.flatten(),
            command: command.flatten(),
            entrypoint: entrypoint.flatten(),
            user: user.flatten(),
            labels: labels.flatten().unwrap_or_default(),
            memory: memory.flatten(),
            cpus: cpus.flatten(),
            logging: logging.flatten(),
            healthcheck: healthcheck.flatten(),
            depends_on: depends_on.flatten().unwrap_or_default(),
            restart: restart.flatten().unwrap_or_default(),
            stop_timeout: stop_timeout.flatten(),
            networks: networks.flatten().unwrap_or_default(),
            update: update.flatten().unwrap_or_default(),
            replicas: replicas.flatten(),
            span: k.span,
        })
    }

    /// How a service is replaced: not part of the container, so not part of the spec hash.
    fn update(&mut self, n: &Node, what: &str, at: Span) -> Option<Update> {
        let mut o = self.obj(n, what, &["order", "drain", "monitor"])?;
        o.span = at;
        let order = o.get("order").and_then(|x| {
            let s = self.text(x, &format!("`order` of {what}"))?;
            let order = match s.as_str() {
                "start-first" => Order::StartFirst,
                "stop-first" => Order::StopFirst,
                _ => {
                    self.problem(
                        x.span,
                        format!("`order` of {what} is `{s}`; expected start-first or stop-first"),
                    );
                    return None;
                }
            };
            Some(Located {
                value: order,
                span: x.span,
            })
        });
        let mut bounded = |name: &str, max: Duration, why: &str| {
            o.get(name).and_then(|x| {
                let d = self.duration(x, &format!("`{name}` of {what}"))?;
                if d > max {
                    self.problem(
                        x.span,
                        format!(
                            "`{name}` of {what} is longer than {}s; {why}",
                            max.as_secs()
                        ),
                    );
                    return None;
                }
                Some(d)
            })
        };
        let monitor = bounded(
            "monitor",
            MAX_MONITOR,
            "a gate watches a new container for minutes at most",
        );
        let drain = bounded(
            "drain",
            MAX_DRAIN,
            "two versions serve together for seconds, not hours",
        );
        Some(Update {
            order,
            drain,
            monitor,
            span: at,
        })
    }

    fn rollout(&mut self, n: &Node, what: &str, at: Span) -> Option<Rollout> {
        let mut o = self.obj(n, what, &["canary", "on_failure"])?;
        o.span = at;
        let canary = o
            .get("canary")
            .and_then(|x| self.uint(x, &format!("`canary` of {what}"), 0, 10_000));
        let on_failure = o.get("on_failure").and_then(|x| {
            let s = self.text(x, &format!("`on_failure` of {what}"))?;
            match s.as_str() {
                "stop" => Some(OnFailure::Stop),
                "rollback" => Some(OnFailure::Rollback),
                _ => {
                    self.problem(
                        x.span,
                        format!("`on_failure` of {what} is `{s}`; expected stop or rollback"),
                    );
                    None
                }
            }
        });
        Some(Rollout {
            canary: canary.unwrap_or(0),
            on_failure: on_failure.unwrap_or_default(),
            span: at,
        })
    }

    fn environments(&mut self, n: &Node) -> Option<IndexMap<String, Environment>> {
        self.named(
            n,
            Names {
                key: "environments",
                one: "environment",
                empty: "`environments` is empty; name at least one, e.g. `prod`",
                valid: is_environment_name,
                rule: "a lowercase letter, then up to 15 lowercase letters or digits (no `-`)",
            },
            Self::environment,
        )
    }

    fn environment(&mut self, k: &Key, n: &Node) -> Option<Environment> {
        let what = format!("environment `{}`", k.name);
        let mut o = self.obj(
            n,
            &what,
            &[
                "hosts",
                "swarm",
                "versions",
                "overrides",
                "max_parallel",
                "rollout",
                "pull",
                "trust",
                "timezone",
                "windows",
            ],
        )?;
        // A missing field is reported at the name of what lacks it.
        o.span = k.span;
        let max_parallel = o
            .get("max_parallel")
            .map(|x| self.uint(x, &format!("`max_parallel` of {what}"), 1, 10_000));
        let swarm = o
            .get("swarm")
            .and_then(|x| self.swarm(x, &what, o.key_span("swarm")));
        // An environment is plain hosts or one Swarm cluster, never both.
        let hosts_node = match (o.get("hosts"), o.get("swarm")) {
            (Some(_), Some(_)) => {
                self.problems.push(
                    Problem::new(
                        o.key_span("swarm"),
                        format!("{what} has both `hosts` and `swarm`: an environment is either plain Docker hosts or one Swarm cluster"),
                    )
                    .with_help("remove one of them, or make a second environment"),
                );
                None
            }
            (None, None) => {
                self.problem(
                    o.span,
                    format!("{what} has no `hosts`, which is required (or `swarm`, for a Docker Swarm cluster)"),
                );
                None
            }
            (h, None) => h,
            (None, Some(_)) => None,
        };
        let hosts = hosts_node.and_then(|h| {
            let Value::Map(entries) = &h.value else {
                self.problem(h.span, format!("`hosts` of {what} must be a mapping of host names to hosts, found {}", h.kind()));
                return None;
            };
            if entries.is_empty() {
                self.problem(h.span, format!("`hosts` of {what} is empty; an environment needs at least one host"));
                return None;
            }
            self.duplicate_names(entries, &format!("`hosts` of {what}"));
            let mut out = IndexMap::new();
            for (hk, hv) in entries {
                if !is_host_name(&hk.name) {
                    self.problem(
                        hk.span,
                        format!("`{}` is not a valid host name in {what} (letters, digits, `-`, `_`, `.`, at most 63)", hk.name),
                    );
                    continue;
                }
                if let Some(host) = self.host(&what, hk, hv) {
                    out.insert(hk.name.clone(), host);
                }
            }
            Some(out)
        });
        let mut versions_span = o.key_span("versions");
        let mut version_keys = IndexMap::new();
        let versions = match o.get("versions") {
            None => {
                self.problem(
                    o.span,
                    format!(
                        "{what} has no `versions`, which is required (the pins: service -> tag)"
                    ),
                );
                None
            }
            Some(v) => {
                versions_span = v.span;
                self.versions(v, &what, &mut version_keys)
            }
        };
        let overrides = match o.get("overrides") {
            None => Some(IndexMap::new()),
            Some(ov) => self.overrides(ov, &what),
        };
        if o.get("swarm").is_none() {
            for (svc, ov) in overrides.iter().flatten() {
                if let Some(r) = &ov.replicas {
                    self.problems.push(
                        Problem::new(
                            r.span,
                            format!("`replicas` in the override of `{svc}` in {what}: a plain-host environment runs one container of a service per host"),
                        )
                        .with_help("replicas applies to `swarm` environments only; choose the hosts instead"),
                    );
                }
            }
        }
        let rollout = o
            .get("rollout")
            .map(|x| self.rollout(x, &format!("`rollout` of {what}"), o.key_span("rollout")));
        // `pull: true`, `false`, or `oci` (the agents follow the published reference).
        let (pull, pull_oci) = match o.get("pull") {
            Some(Node {
                value: Value::Str(v),
                ..
            }) if v == "oci" => (true, true),
            Some(
                x @ Node {
                    value: Value::Str(v),
                    ..
                },
            ) => {
                self.problem(
                    x.span,
                    format!("`pull` of {what} is `{v}`; expected true, false or oci"),
                );
                (false, false)
            }
            Some(x) => (
                self.boolean(x, &format!("`pull` of {what}"))
                    .unwrap_or(false),
                false,
            ),
            None => (false, false),
        };
        if pull && swarm.is_some() {
            // An agent converges the one host it runs on; a Swarm cluster has no host of its own
            // to converge, and its manager already reconciles the services.
            self.problems.push(
                Problem::new(
                    o.key_span("pull"),
                    format!("`pull: true` on {what}: pull agents converge plain hosts, one each; a Swarm environment is updated through its manager"),
                )
                .with_help("remove `pull`, and deploy this environment with `fleetpin apply` (a CI job on each push is the pull-like setup)"),
            );
        }
        let trust = o
            .get("trust")
            .and_then(|x| self.trust(x, &what, o.key_span("trust")));
        let timezone = o.get("timezone").and_then(|x| self.timezone(x, &what));
        let windows = o.get("windows").and_then(|x| self.windows(x, &what));
        Some(Environment {
            trust: trust.unwrap_or_default(),
            timezone,
            windows: windows.unwrap_or_default(),
            pull,
            pull_oci,
            max_parallel: max_parallel.flatten(),
            rollout: rollout.flatten().unwrap_or_default(),
            hosts: hosts.unwrap_or_default(),
            swarm,
            versions: versions.unwrap_or_default(),
            overrides: overrides.unwrap_or_default(),
            span: k.span,
            versions_span,
            version_keys,
        })
    }

    /// `trust: {signed: BOOL, signers: [PRINCIPAL | FINGERPRINT…]}`.
    fn trust(&mut self, n: &Node, env_what: &str, at: Span) -> Option<Trust> {
        let what = format!("`trust` of {env_what}");
        let mut o = self.obj(n, &what, &["signed", "signers"])?;
        o.span = at;
        let signed = self
            .required(&o, "signed", &what)
            .and_then(|x| self.boolean(x, &format!("`signed` of {what}")));
        let sw = format!("`signers` of {what}");
        let signers = o.get("signers").and_then(|x| {
            let items = self.seq(x, &sw)?;
            if items.is_empty() {
                self.problems.push(
                    Problem::new(x.span, format!("{sw} is empty: no commit could be deployed"))
                        .with_help("list SSH principals or OpenPGP fingerprints, or leave `signers` out to accept every allowed signer"),
                );
                return None;
            }
            let mut out = Vec::with_capacity(items.len());
            for i in items {
                let Some(s) = self.text(i, &format!("each item of {sw}")) else {
                    continue;
                };
                match parse_signer(&s) {
                    Ok(value) => out.push(Located {
                        value,
                        span: i.span,
                    }),
                    Err(help) => self.problems.push(
                        Problem::new(
                            i.span,
                            format!("{sw}: an unknown signer form `{s}`; expected an SSH principal (e.g. ops@acme.example) or an OpenPGP fingerprint (40 hexadecimal digits)"),
                        )
                        .with_help(help),
                    ),
                }
            }
            Some(out)
        });
        // `signers` alone would read as protection while nothing is verified.
        if o.get("signers").is_some() && signed == Some(false) {
            self.problems.push(
                Problem::new(
                    o.key_span("signers"),
                    format!("{sw} without `signed: true` does nothing: no signature is verified"),
                )
                .with_help("add `signed: true`, or remove `signers`"),
            );
        }
        Some(Trust {
            signed: signed?,
            signers: signers.unwrap_or_default(),
            span: at,
        })
    }

    /// `timezone: Europe/Paris`: a name of the bundled IANA database.
    fn timezone(&mut self, n: &Node, env_what: &str) -> Option<Located<jiff::tz::TimeZone>> {
        let what = format!("`timezone` of {env_what}");
        let name = self.nonempty_text(n, &what)?;
        match jiff::tz::db().get(name.trim()) {
            Ok(value) => Some(Located {
                value,
                span: n.span,
            }),
            Err(_) => {
                let names: Vec<String> = jiff::tz::db()
                    .available()
                    .map(|z| z.as_str().to_string())
                    .collect();
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                let help = did_you_mean(name.trim(), &names, &[]).unwrap_or_else(|| {
                    "write an IANA name such as Europe/Paris, America/New_York or UTC".into()
                });
                self.problems.push(
                    Problem::new(
                        n.span,
                        format!("{what}: `{name}` is not a time zone of the IANA database"),
                    )
                    .with_help(help),
                );
                None
            }
        }
    }

    /// `windows: [{deny: CRON, duration: D} | {allow: CRON, duration: D}, …]`.
    fn windows(&mut self, n: &Node, env_what: &str) -> Option<Vec<Window>> {
        let items = self.seq(n, &format!("`windows` of {env_what}"))?;
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match self.window(item, &format!("window {} of {env_what}", i + 1)) {
                Some(w) => out.push(w),
                None => ok = false,
            }
        }
        // A window that could not be read is not dropped silently: the manifest fails anyway.
        ok.then_some(out)
    }

    fn window(&mut self, n: &Node, what: &str) -> Option<Window> {
        let o = self.obj(n, what, &["allow", "deny", "duration"])?;
        let kind = match (o.get("allow"), o.get("deny")) {
            (Some(_), Some(_)) => {
                self.problems.push(
                    Problem::new(
                        o.key_span("deny"),
                        format!("{what} has both `allow` and `deny`; an entry is one or the other"),
                    )
                    .with_help("write two entries"),
                );
                None
            }
            (None, None) => {
                self.problems.push(
                    Problem::new(n.span, format!("{what} has neither `allow` nor `deny`"))
                        .with_help("write e.g. {deny: \"0 16 * * FRI\", duration: 64h}"),
                );
                None
            }
            (Some(_), None) => Some(WindowKind::Allow),
            (None, Some(_)) => Some(WindowKind::Deny),
        };
        let cron = kind.and_then(|k| {
            let x = o.get(k.as_str())?;
            let sw = format!("`{}` of {what}", k.as_str());
            let s = self.nonempty_text(x, &sw)?;
            match parse_schedule(&s) {
                Ok(c) => Some((s.split_whitespace().collect::<Vec<_>>().join(" "), c)),
                Err(e) => {
                    let mut p = Problem::new(x.span, format!("{sw}: {}", e.message));
                    if e.syntax {
                        p = p.with_help(SCHEDULE_HELP);
                    }
                    self.problems.push(p);
                    None
                }
            }
        });
        let duration = self.required(&o, "duration", what).and_then(|x| {
            let dw = format!("`duration` of {what}");
            let s = self.text(x, &dw)?;
            match parse_window_duration(&s) {
                Ok(d) => Some((d, s.trim().to_string())),
                Err(e) => {
                    self.problem(x.span, format!("{dw}: {e}"));
                    None
                }
            }
        });
        let ((schedule, cron), (duration, duration_text)) = (cron?, duration?);
        Some(Window {
            kind: kind?,
            schedule,
            cron,
            duration,
            duration_text,
            span: n.span,
        })
    }

    fn host(&mut self, env_what: &str, k: &Key, n: &Node) -> Option<Host> {
        let what = format!("host `{}` of {env_what}", k.name);
        let mut o = self.obj(n, &what, &["endpoint", "tls", "insecure", "services"])?;
        o.span = k.span;
        let (endpoint, tls, insecure) = self.connection(&o, &what, "host");
        let services = o
            .get("services")
            .map(|x| self.located_list(x, &format!("`services` of {what}")));
        Some(Host {
            endpoint: endpoint?,
            tls,
            insecure,
            services: services.flatten(),
            span: k.span,
        })
    }

    /// A Swarm cluster: a manager's endpoint, its protection, and the publish mode.
    fn swarm(&mut self, n: &Node, env_what: &str, at: Span) -> Option<Swarm> {
        let what = format!("`swarm` of {env_what}");
        let mut o = self.obj(n, &what, &["endpoint", "tls", "insecure", "publish"])?;
        o.span = at;
        let (endpoint, tls, insecure) = self.connection(&o, &what, "cluster");
        let publish = o.get("publish").and_then(|x| {
            let s = self.text(x, &format!("`publish` of {what}"))?;
            match s.as_str() {
                "ingress" => Some(Publish::Ingress),
                "host" => Some(Publish::Host),
                _ => {
                    self.problem(
                        x.span,
                        format!("`publish` of {what} is `{s}`; expected ingress or host"),
                    );
                    None
                }
            }
        });
        Some(Swarm {
            endpoint: endpoint?,
            tls,
            insecure,
            publish: publish.unwrap_or_default(),
            span: at,
        })
    }

    fn replicas(&mut self, n: &Node, what: &str) -> Option<Located<u32>> {
        self.uint(n, what, 0, 10_000).map(|value| Located {
            value,
            span: n.span,
        })
    }

    /// An engine endpoint and its protection (`tls` or `insecure`), as a host and a Swarm
    /// manager write them; `machine` names what a plain tcp port would expose.
    fn connection(
        &mut self,
        o: &Obj,
        what: &str,
        machine: &str,
    ) -> (Option<Located<Endpoint>>, Option<Tls>, bool) {
        let endpoint = match o.get("endpoint") {
            None => {
                self.problem(
                    o.span,
                    format!("{what} has no `endpoint`; write e.g. endpoint: \"tcp://10.0.0.11:2376\" or \"ssh://deploy@host\""),
                );
                None
            }
            Some(e) => {
                let s = self.nonempty_text(e, &format!("`endpoint` of {what}"));
                s.and_then(|s| match Endpoint::parse(&s) {
                    Ok(ep) => Some(Located {
                        value: ep,
                        span: e.span,
                    }),
                    Err(msg) => {
                        self.problem(e.span, format!("`endpoint` of {what}: {msg}"));
                        None
                    }
                })
            }
        };
        let tls = o.get("tls").map(|t| {
            let tw = format!("`tls` of {what}");
            let mut to = self.obj(t, &tw, &["ca", "cert", "key"])?;
            to.span = o.key_span("tls");
            let mut field = |name: &str| {
                self.required(&to, name, &tw)
                    .and_then(|x| self.located_text(x, &format!("`{name}` of {tw}")))
            };
            let ca = field("ca");
            let cert = field("cert");
            let key = field("key");
            Some(Tls {
                ca: ca?,
                cert: cert?,
                key: key?,
            })
        });
        let insecure = o
            .get("insecure")
            .map(|x| self.boolean(x, &format!("`insecure` of {what}")));
        // Whether the operator wrote either protection, even a broken one (then that is the error).
        let protected = o.get("tls").is_some() || o.get("insecure").is_some();
        let tls = tls.flatten();
        let insecure = insecure.flatten().unwrap_or(false);
        if let Some(ep) = &endpoint {
            match ep.value {
                Endpoint::Tcp { .. } if !protected => self.problems.push(
                    Problem::new(
                        ep.span,
                        format!("{what}: plain tcp:// is refused: whoever reaches that port is root on the {machine}"),
                    )
                    .with_help("add `tls: {ca: …, cert: …, key: …}`, or `insecure: true` if this network is trusted"),
                ),
                Endpoint::Unix { .. } | Endpoint::Ssh { .. } if tls.is_some() => self.problem(
                    ep.span,
                    format!("{what}: `tls` only applies to tcp:// endpoints"),
                ),
                _ => {}
            }
        }
        (endpoint, tls, insecure)
    }

    fn versions(
        &mut self,
        n: &Node,
        what: &str,
        keys: &mut IndexMap<String, Span>,
    ) -> Option<IndexMap<String, Located<VersionPin>>> {
        let Value::Map(entries) = &n.value else {
            if n.value == Value::Null {
                return Some(IndexMap::new());
            }
            self.problem(
                n.span,
                format!(
                    "`versions` of {what} must be a mapping of service names to versions, found {}",
                    n.kind()
                ),
            );
            return None;
        };
        self.duplicate_names(entries, &format!("`versions` of {what}"));
        let mut out = IndexMap::new();
        for (k, v) in entries {
            keys.insert(k.name.clone(), k.span);
            let text = match &v.value {
                Value::Null => {
                    self.problem(
                        null_at(k, v),
                        format!(
                            "the version of `{}` in {what} is empty; write a tag such as \"2.4.1\"",
                            k.name
                        ),
                    );
                    continue;
                }
                Value::Seq(_) | Value::Map(_) => {
                    self.problem(
                        v.span,
                        format!(
                            "the version of `{}` in {what} must be a tag, found {}",
                            k.name,
                            v.kind()
                        ),
                    );
                    continue;
                }
                _ => v.scalar_text().unwrap_or_default(),
            };
            match VersionPin::parse(&text) {
                Ok(p) => {
                    out.insert(
                        k.name.clone(),
                        Located {
                            value: p,
                            span: v.span,
                        },
                    );
                }
                Err(e) => self.problem(
                    v.span,
                    format!("the version of `{}` in {what}: {e}", k.name),
                ),
            }
        }
        Some(out)
    }

    fn overrides(&mut self, n: &Node, what: &str) -> Option<IndexMap<String, Override>> {
        let Value::Map(entries) = &n.value else {
            self.problem(n.span, format!("`overrides` of {what} must be a mapping of service names to overrides, found {}", n.kind()));
            return None;
        };
        self.duplicate_names(entries, &format!("`overrides` of {what}"));
        let mut out = IndexMap::new();
        for (k, v) in entries {
            let ow = format!("the override of `{}` in {what}", k.name);
            let Some(o) = self.obj(
                v,
                &ow,
                &[
                    "env",
                    "ports",
                    "volumes",
                    "command",
                    "healthcheck",
                    "memory",
                    "cpus",
                    "replicas",
                ],
            ) else {
                continue;
            };
            let env = o
                .get("env")
                .and_then(|x| self.env_map(x, &format!("`env` of {ow}")));
            let ov = Override {
                env: env.as_ref().map(|e| e.0.clone()),
                secret_env: env.map(|e| e.1).unwrap_or_default(),
                ports: o
                    .get("ports")
                    .and_then(|x| self.ports(x, &format!("`ports` of {ow}"))),
                volumes: o
                    .get("volumes")
                    .and_then(|x| self.volumes(x, &format!("`volumes` of {ow}"))),
                command: o
                    .get("command")
                    .and_then(|x| self.command(x, &format!("`command` of {ow}"))),
                healthcheck: o.get("healthcheck").and_then(|x| {
                    self.healthcheck(
                        x,
                        &format!("`healthcheck` of {ow}"),
                        o.key_span("healthcheck"),
                    )
                }),
                memory: o
                    .get("memory")
                    .and_then(|x| self.memory(x, &format!("`memory` of {ow}"))),
                cpus: o
                    .get("cpus")
                    .and_then(|x| self.float(x, &format!("`cpus` of {ow}"), 0.01, 1024.0)),
                replicas: o
                    .get("replicas")
                    .and_then(|x| self.replicas(x, &format!("`replicas` of {ow}"))),
                span: k.span,
            };
            out.insert(k.name.clone(), ov);
        }
        Some(out)
    }
}

/// An allowed signer of `trust.signers`: an OpenPGP fingerprint (40 hexadecimal digits, kept in
/// upper case as GnuPG prints it) or an SSH principal as an allowed signers file names it. The
/// error is the help: what is wrong with the text.
pub fn parse_signer(s: &str) -> Result<Signer, String> {
    let t = s.trim();
    let is_hex = |x: &str| !x.is_empty() && x.chars().all(|c| c.is_ascii_hexdigit());
    let hex = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    if hex.len() == 40 && is_hex(hex) {
        return Ok(Signer::Fingerprint(hex.to_ascii_uppercase()));
    }
    if t.is_empty() {
        return Err("the signer is empty".into());
    }
    if t.chars().any(|c| c.is_control()) {
        return Err("it contains a control character".into());
    }
    if t.chars().any(char::is_whitespace) {
        let joined: String = t.split_whitespace().collect();
        if joined.len() == 40 && is_hex(&joined) {
            return Err(format!(
                "a fingerprint is written without spaces: {}",
                joined.to_ascii_uppercase()
            ));
        }
        return Err("an SSH principal has no spaces".into());
    }
    if is_hex(hex) && hex.len() >= 16 && hex.chars().any(|c| c.is_ascii_digit()) {
        return Err(format!(
            "{} hexadecimal digits: a key id or a shortened fingerprint? Write the key's whole fingerprint, 40 digits (`gpg --fingerprint`)",
            hex.len()
        ));
    }
    if t.contains([',', '"', '\'']) {
        return Err(
            "an SSH principal has no comma or quote (an allowed signers file separates principals with commas)"
                .into(),
        );
    }
    if t.contains(['*', '?']) || t.starts_with('!') {
        return Err("patterns are for the allowed signers file; here a principal is named exactly, as `git verify-commit` reports it".into());
    }
    Ok(Signer::Principal(t.to_string()))
}

/// What a window's schedule is, for the help of a schedule that does not read.
const SCHEDULE_HELP: &str = "5 fields: minute hour day-of-month month day-of-week, e.g. \"0 16 * * FRI\" (Fridays at 16:00) or \"0 7 * * MON-FRI\"";

/// Why a schedule was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleError {
    pub message: String,
    /// It does not read as cron (rather than: it reads, but never happens).
    pub syntax: bool,
}

impl std::fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A window's schedule: 5 cron fields (minute hour day-of-month month day-of-week), with ranges,
/// lists, steps and day and month names (any case); when both day fields are restricted a day
/// matches if either does (croner's default, as in Vixie cron). croner's extensions (`L`, `W`,
/// `#`, a `+` before the weekday field for AND) read too; seconds, years and `@daily`-style
/// nicknames do not.
pub fn parse_schedule(s: &str) -> Result<croner::Cron, ScheduleError> {
    use croner::parser::{CronParser, Seconds, Year};
    let syntax = |message| ScheduleError {
        message,
        syntax: true,
    };
    let fields = s.split_whitespace().count();
    if fields != 5 {
        return Err(syntax(format!(
            "`{}` has {fields} field{}; a schedule has 5",
            s.trim(),
            if fields == 1 { "" } else { "s" }
        )));
    }
    let cron = CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(s)
        .map_err(|e| {
            let e = e.to_string();
            syntax(format!(
                "`{}` is not a cron schedule ({})",
                s.trim(),
                e.trim_end_matches('.')
            ))
        })?;
    // A schedule with no start at all (`0 0 30 2 *`) would make its window never happen. A
    // cron schedule repeats every 400 years at most: one start after any instant is enough.
    let from = jiff::civil::date(2000, 1, 1).at(0, 0, 0, 0);
    if cron.find_next_occurrence(&from, true).is_err() {
        return Err(ScheduleError {
            message: format!("`{}` never happens", s.trim()),
            syntax: false,
        });
    }
    Ok(cron)
}

/// A window's duration, in the manifest's duration syntax (`64h`, `2d 16h`, `90m`): elapsed
/// time, more than zero and at most a week (a window is looked for at most that far back).
pub fn parse_window_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() || t.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "`{s}` is not a duration; expected a number with a unit, e.g. \"64h\", \"2d 16h\", \"90m\""
        ));
    }
    let d = humantime::parse_duration(t).map_err(|_| {
        format!(
            "`{s}` is not a duration; expected a number with a unit, e.g. \"64h\", \"2d 16h\", \"90m\""
        )
    })?;
    if d.is_zero() {
        return Err(format!("`{s}` is zero; a window lasts some time"));
    }
    if d > MAX_WINDOW {
        return Err(format!(
            "`{s}` is longer than a week, the longest a window may last; write windows that start more often"
        ));
    }
    Ok(d)
}

/// An empty value has no place of its own: show its key; a written `~` or `null` is shown itself.
fn null_at(k: &Key, v: &Node) -> Span {
    if v.raw.as_deref().is_some_and(|r| !r.is_empty()) {
        v.span
    } else {
        k.span
    }
}

pub fn valid_env_key(k: &str) -> Result<(), String> {
    let mut c = k.chars();
    let ok = matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
    if ok {
        Ok(())
    } else {
        Err("not a valid variable name (letters, digits and `_`, not starting with a digit)".into())
    }
}

pub fn valid_label_key(k: &str) -> Result<(), String> {
    if k.starts_with("io.fleetpin.") {
        return Err("labels starting with `io.fleetpin.` are fleetpin's own".into());
    }
    let ok = !k.is_empty()
        && k.len() <= 128
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/'));
    if ok {
        Ok(())
    } else {
        Err("not a valid label name (letters, digits, `.`, `-`, `_`, `/`)".into())
    }
}

/// An image repository: optional `registry[:port]/`, path components, no tag and no digest.
pub fn check_repository(s: &str) -> Result<(), String> {
    if s.contains('@') {
        return Err(format!(
            "`{s}` holds a digest; write the repository only and pin the digest in `versions`"
        ));
    }
    let last = s.rsplit('/').next().unwrap_or(s);
    if last.contains(':') {
        return Err(format!(
            "`{s}` holds a tag; write the repository only and pin the tag in `versions`"
        ));
    }
    let mut parts = s.split('/').peekable();
    let mut first = true;
    while let Some(p) = parts.next() {
        let is_registry = first
            && parts.peek().is_some()
            && (p.contains('.') || p.contains(':') || p == "localhost");
        first = false;
        let ok = if is_registry {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
        } else {
            !p.is_empty()
                && p.chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                && p.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
                })
        };
        if !ok {
            return Err(format!(
                "`{s}` is not a valid image repository (lowercase path components of letters, digits, `.`, `_`, `-`, after an optional registry host)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    /// A one-environment manifest with `extra` (indented 4) in environment `prod`.
    fn with_prod(extra: &str) -> Result<crate::manifest::Manifest, Vec<String>> {
        let text = format!(
            "platform: acme
services: {{api: {{image: registry.acme.internal:5000/acme/api}}}}
environments:
  prod:
    hosts: {{p1: {{endpoint: \"unix:///var/run/docker.sock\"}}}}
    versions: {{api: \"1.0.0\"}}
{extra}"
        );
        crate::manifest::parse_str(&text).map_err(|ps| {
            ps.into_iter()
                .map(|p| match p.help {
                    Some(h) => format!("{}:{}: {} | {h}", p.span.line, p.span.column, p.message),
                    None => format!("{}:{}: {}", p.span.line, p.span.column, p.message),
                })
                .collect()
        })
    }

    #[test]
    fn pull_oci_needs_a_reference_and_a_reference_makes_pull_follow_the_registry() {
        let m = with_prod(
            "    pull: oci\nreference: {repository: \"reg.acme.internal:5000/acme/ref\", publish: true}\n",
        )
        .unwrap();
        assert!(m.follows_oci("prod"));
        let r = m.reference.as_ref().unwrap();
        assert_eq!(r.repository.value, "reg.acme.internal:5000/acme/ref");
        assert!(r.publish && !r.insecure);
        // `pull: true` with a reference follows the registry too; without `pull`, nothing does.
        let m =
            with_prod("    pull: true\nreference: {repository: \"reg.io/acme/ref\"}\n").unwrap();
        assert!(m.follows_oci("prod"));
        let m = with_prod("reference: {repository: \"reg.io/acme/ref\"}\n").unwrap();
        assert!(!m.follows_oci("prod"));
        // `pull: oci` without a reference, a tag in the repository, another word: located errors.
        let e = with_prod("    pull: oci\n").unwrap_err();
        assert!(
            e[0].contains("says `pull: oci`, but the manifest has no `reference`"),
            "{e:?}"
        );
        let e = with_prod("reference: {repository: \"reg.io/acme/ref:main\"}\n").unwrap_err();
        assert!(
            e[0].starts_with("7:") && e[0].contains("names a tag or a digest"),
            "{e:?}"
        );
        let e = with_prod("    pull: git\n").unwrap_err();
        assert!(e[0].contains("expected true, false or oci"), "{e:?}");
    }

    #[test]
    fn trust_timezone_and_windows_are_read() {
        let m = with_prod(
            "    trust: {signed: true, signers: [ops@acme.example, 0xabcdef0123456789abcdef0123456789ABCDEF01]}
    timezone: europe/paris
    windows:
      - {deny: \"0 16 * * FRI\", duration: 64h}
      - {allow: \"0  7 * * mon-fri\", duration: 12h}
",
        )
        .unwrap();
        let prod = &m.environments["prod"];
        assert!(prod.trust.signed);
        let signers: Vec<_> = prod.trust.signers.iter().map(|s| s.value.clone()).collect();
        assert_eq!(
            signers,
            vec![
                crate::manifest::Signer::Principal("ops@acme.example".into()),
                crate::manifest::Signer::Fingerprint(
                    "ABCDEF0123456789ABCDEF0123456789ABCDEF01".into()
                ),
            ]
        );
        assert_eq!(prod.time_zone().iana_name(), Some("Europe/Paris"));
        assert_eq!(prod.windows.len(), 2);
        assert_eq!(prod.windows[0].kind, crate::manifest::WindowKind::Deny);
        assert_eq!(prod.windows[0].duration, Duration::from_secs(64 * 3600));
        assert_eq!(prod.windows[0].describe(), "deny 0 16 * * FRI for 64h");
        assert_eq!(prod.windows[1].describe(), "allow 0 7 * * mon-fri for 12h");
        assert_eq!(prod.windows[1].span.line, 11);
        // Unwritten: unsigned, UTC, always open.
        let plain = with_prod("").unwrap();
        let prod = &plain.environments["prod"];
        assert_eq!(prod.trust, crate::manifest::Trust::default());
        assert_eq!(prod.time_zone(), jiff::tz::TimeZone::UTC);
        assert!(prod.windows.is_empty());
        // `signed: false` is allowed, and so is an empty list of windows.
        let off = with_prod("    trust: {signed: false}\n    windows: []\n").unwrap();
        assert!(!off.environments["prod"].trust.signed);
    }

    #[test]
    fn trust_problems_are_located() {
        let e = with_prod("    trust: {signers: [ops@acme.example]}\n").unwrap_err();
        assert_eq!(
            e,
            vec![
                "7:5: `trust` of environment `prod` has no `signed`, which is required".to_string()
            ]
        );
        let e = with_prod("    trust: {signed: false, signers: [ops@acme.example]}\n").unwrap_err();
        assert_eq!(
            e,
            vec!["7:28: `signers` of `trust` of environment `prod` without `signed: true` does nothing: no signature is verified | add `signed: true`, or remove `signers`".to_string()]
        );
        let e = with_prod("    trust: {signed: true, signers: []}\n").unwrap_err();
        assert!(
            e[0].starts_with("7:36: `signers` of `trust` of environment `prod` is empty"),
            "{e:?}"
        );
        let e = with_prod("    trust: {signed: \"yes\"}\n").unwrap_err();
        assert!(e[0].contains("must be true or false"), "{e:?}");
        let e = with_prod(
            "    trust:
      signed: true
      signers:
        - \"\"
        - ops team
        - \"ABCD EF01 2345 6789 ABCD  EF01 2345 6789 ABCD EF01\"
        - 0123456789ABCDEF
        - \"a,b\"
        - \"*@acme.example\"
        - \"ops\\u0007\"
",
        )
        .unwrap_err();
        let expect = [
            ("10:11", "`\"`: the signer is empty"),
            ("11:11", "`ops team`: an SSH principal has no spaces"),
            (
                "12:11",
                "written without spaces: ABCDEF0123456789ABCDEF0123456789ABCDEF01",
            ),
            ("13:11", "16 hexadecimal digits: a key id"),
            ("14:11", "no comma or quote"),
            ("15:11", "patterns are for the allowed signers file"),
            ("16:11", "a control character"),
        ];
        assert_eq!(e.len(), expect.len(), "{e:#?}");
        for (got, (at, part)) in e.iter().zip(expect) {
            assert!(
                got.starts_with(&format!(
                    "{at}: `signers` of `trust` of environment `prod`: an unknown signer form"
                )),
                "{got}"
            );
            assert!(
                got.contains(part) || part.starts_with('`'),
                "{got} lacks {part}"
            );
        }
    }

    #[test]
    fn timezone_problems_are_located() {
        let e = with_prod("    timezone: Europe/Pariss\n").unwrap_err();
        assert_eq!(
            e,
            vec!["7:15: `timezone` of environment `prod`: `Europe/Pariss` is not a time zone of the IANA database | did you mean `Europe/Paris`?".to_string()]
        );
        let e = with_prod("    timezone: CEST+2\n").unwrap_err();
        assert_eq!(
            e,
            vec!["7:15: `timezone` of environment `prod`: `CEST+2` is not a time zone of the IANA database | write an IANA name such as Europe/Paris, America/New_York or UTC".to_string()]
        );
        let e = with_prod("    timezone: \"\"\n").unwrap_err();
        assert!(e[0].contains("is empty"), "{e:?}");
    }

    #[test]
    fn window_problems_are_located() {
        let e = with_prod(
            "    windows:
      - {deny: \"0 16 * * FRY\", duration: 64h}
      - {allow: \"0 7 * *\", duration: 12h}
      - {deny: \"0 0 30 2 *\", duration: 1h}
      - {deny: \"@daily\", duration: 1h}
      - {deny: \"0 16 * * FRI\", duration: 8d}
      - {deny: \"0 16 * * FRI\", duration: 0s}
      - {deny: \"0 16 * * FRI\", duration: 64}
      - {deny: \"0 16 * * FRI\"}
      - {allow: \"0 7 * * *\", deny: \"0 16 * * FRI\", duration: 1h}
      - {duration: 1h}
      - {deny: \"0 16 * * FRI\", duration: 1h, reason: freeze}
      - \"0 16 * * FRI\"
",
        )
        .unwrap_err();
        let expect = [
            "8:16: `deny` of window 1 of environment `prod`: `0 16 * * FRY` is not a cron schedule (Pattern contains illegal characters: CronPattern contains illegal character 'F' in part 'FRY') | 5 fields: minute hour day-of-month month day-of-week, e.g. \"0 16 * * FRI\"",
            "9:17: `allow` of window 2 of environment `prod`: `0 7 * *` has 4 fields; a schedule has 5 | 5 fields: minute hour",
            "10:16: `deny` of window 3 of environment `prod`: `0 0 30 2 *` never happens",
            "11:16: `deny` of window 4 of environment `prod`: `@daily` has 1 field; a schedule has 5 | 5 fields",
            "12:42: `duration` of window 5 of environment `prod`: `8d` is longer than a week, the longest a window may last; write windows that start more often",
            "13:42: `duration` of window 6 of environment `prod`: `0s` is zero; a window lasts some time",
            "14:42: `duration` of window 7 of environment `prod`: `64` is not a duration; expected a number with a unit, e.g. \"64h\", \"2d 16h\", \"90m\"",
            "15:9: window 8 of environment `prod` has no `duration`, which is required",
            "16:30: window 9 of environment `prod` has both `allow` and `deny`; an entry is one or the other | write two entries",
            "17:9: window 10 of environment `prod` has neither `allow` nor `deny` | write e.g. {deny: \"0 16 * * FRI\", duration: 64h}",
            "18:46: unknown field `reason` in window 11 of environment `prod`; expected one of: allow, deny, duration",
            "19:9: window 12 of environment `prod` must be a mapping, found a string",
        ];
        assert_eq!(e.len(), expect.len(), "{e:#?}");
        for (got, want) in e.iter().zip(expect) {
            assert!(
                got.starts_with(want),
                "{got}\n  does not start with\n{want}"
            );
        }
        // A schedule that never happens is not a syntax problem: no cron help.
        assert!(!e[2].contains('|'), "{}", e[2]);
        // A week is the longest, in any unit.
        assert!(with_prod("    windows: [{deny: \"0 9 * * MON\", duration: 1w}]\n").is_ok());
        assert!(with_prod("    windows: [{deny: \"0 9 * * MON\", duration: 6d 24h}]\n").is_ok());
        assert!(with_prod("    windows: [{deny: \"0 9 * * MON\", duration: 7d 1s}]\n").is_err());
    }

    #[test]
    fn hooks_and_notify_are_read() {
        let m = crate::manifest::parse_str(
            "platform: acme
services: {api: {image: registry.acme.internal:5000/acme/api}}
hooks:
  pre_apply: ./checks/smoke.sh
  on_failure: |
    ./page.sh
    echo paged
  timeout: 90s
notify:
  - webhook: https://hooks.example/fleetpin/T0/SECRET
    webhook_env: FLEETPIN_HOOK_TOKEN
  - webhook: http://127.0.0.1:9000/in
    timeout: 3s
environments:
  prod:
    hosts: {p1: {endpoint: \"unix:///var/run/docker.sock\"}}
    versions: {api: \"1.0.0\"}
",
        )
        .unwrap();
        assert_eq!(m.hooks.pre_apply.unwrap().value, "./checks/smoke.sh");
        assert_eq!(m.hooks.on_failure.unwrap().value, "./page.sh\necho paged\n");
        assert_eq!(m.hooks.post_apply, None);
        assert_eq!(m.hooks.timeout, Some(Duration::from_secs(90)));
        assert_eq!(m.notify.len(), 2);
        assert_eq!(
            m.notify[0].webhook_env.as_deref(),
            Some("FLEETPIN_HOOK_TOKEN")
        );
        assert_eq!(m.notify[1].timeout, Some(Duration::from_secs(3)));
        let plain = crate::manifest::parse_str(
            "platform: acme
services: {api: {image: registry.acme.internal:5000/acme/api}}
environments:
  prod:
    hosts: {p1: {endpoint: \"unix:///var/run/docker.sock\"}}
    versions: {api: \"1.0.0\"}
",
        )
        .unwrap();
        assert_eq!(plain.hooks.timeout(), crate::manifest::DEFAULT_HOOK_TIMEOUT);
        assert!(plain.notify.is_empty());
    }
}
