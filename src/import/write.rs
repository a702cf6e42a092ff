//! The manifest import writes: YAML text made by hand rather than by a serializer, because the
//! file is for people first (it goes into git and gets reviewed): comments say where each service
//! came from and what changed meaning on the way, and the layout follows docs/manifest.md. Every
//! scalar that YAML could read as something else is quoted, so the text reads back as written.

use crate::import::compose::{Imported, manifest_duration};
use crate::manifest::Healthcheck;
use crate::manifest::values::VolumeSource;
use std::fmt::Write;

/// A host of the environment, as the manifest will name it.
pub struct HostOut<'a> {
    pub name: &'a str,
    pub endpoint: &'a str,
    /// tcp:// without TLS: write `insecure: true`.
    pub insecure: bool,
    /// The TLS directory (ca.pem, cert.pem, key.pem), for tcp:// with TLS.
    pub tls_dir: Option<&'a str>,
    /// `None`: every service of the manifest runs there.
    pub services: Option<Vec<&'a str>>,
}

/// A service of the manifest and where it was defined (`file:line`, one per file).
pub struct ServiceOut<'a> {
    pub imported: &'a Imported,
    pub origins: Vec<String>,
}

pub struct Doc<'a> {
    pub platform: &'a str,
    pub environment: &'a str,
    /// Each compose file and where it runs ("every host", or its hosts).
    pub files: Vec<(String, String)>,
    pub services: Vec<ServiceOut<'a>>,
    pub hosts: Vec<HostOut<'a>>,
    /// Named volumes carried: (name, what compose called it).
    pub volumes: Vec<(String, String)>,
}

/// `s` as a YAML scalar: plain when nothing could misread it, else double-quoted (JSON's string
/// syntax is YAML's double-quoted style).
pub fn q(s: &str) -> String {
    // `30s`, `512m`, `128mb`: a number with a unit suffix is a string to YAML too.
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = digits.len() < s.len()
        && !digits.is_empty()
        && digits.chars().next().is_some_and(|c| c.is_ascii_digit())
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && digits.matches('.').count() <= 1
        && !digits.ends_with('.');
    if unit {
        return s.to_string();
    }
    let plain = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '/')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-'))
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null"
        );
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
    }
}

/// A flow list of names: `[db, cache]`.
fn flow<S: AsRef<str>>(items: &[S]) -> String {
    let inner: Vec<String> = items.iter().map(|i| q(i.as_ref())).collect();
    format!("[{}]", inner.join(", "))
}

/// A flow list of arguments, every one quoted as docs/manifest.md writes them:
/// `["redis-server", "--save", ""]`.
fn args<S: AsRef<str>>(items: &[S]) -> String {
    let inner: Vec<String> = items
        .iter()
        .map(|i| serde_json::to_string(i.as_ref()).unwrap_or_default())
        .collect();
    format!("[{}]", inner.join(", "))
}

/// `[IP:]HOST:CONTAINER`, with `/udp` only when it is udp.
fn port(p: &crate::manifest::values::PortMapping) -> String {
    let text = p.to_string();
    text.strip_suffix("/tcp")
        .map(str::to_string)
        .unwrap_or(text)
}

/// A comment line: whatever it quotes stays on its line.
fn comment(indent: &str, text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("{indent}# {clean}\n")
}

/// `key:` at `indent` and the map's entries one level below, quoted; nothing for an empty map.
fn mapping(
    out: &mut String,
    indent: &str,
    key: &str,
    map: &std::collections::BTreeMap<String, String>,
) {
    if map.is_empty() {
        return;
    }
    let _ = writeln!(out, "{indent}{key}:");
    for (k, v) in map {
        let _ = writeln!(out, "{indent}  {}: {}", q(k), q(v));
    }
}

fn healthcheck(out: &mut String, h: &Healthcheck) {
    out.push_str("    healthcheck:\n");
    let _ = writeln!(out, "      test: {}", args(&h.test));
    for (name, d) in [
        ("interval", h.interval),
        ("timeout", h.timeout),
        ("start_period", h.start_period),
    ] {
        if let Some(d) = d {
            let _ = writeln!(out, "      {name}: {}", q(&manifest_duration(d)));
        }
    }
    if let Some(r) = h.retries {
        let _ = writeln!(out, "      retries: {r}");
    }
}

pub fn manifest(doc: &Doc) -> String {
    let mut out = String::new();
    out.push_str("# Written by `fleetpin import` from these compose files:\n");
    for (file, hosts) in &doc.files {
        out.push_str(&comment("", &format!("  {file} -> {hosts}")));
    }
    out.push_str(&comment(
        "",
        &format!(
            "Review it, then: fleetpin validate && fleetpin plan {}",
            doc.environment
        ),
    ));
    if !doc.volumes.is_empty() {
        out.push_str("# Named volumes get new names on the hosts, so they start empty; copy the data compose\n");
        out.push_str("# kept before the first apply (docs/import.md, \"Moving volume data\"):\n");
        for (name, old) in &doc.volumes {
            out.push_str(&comment(
                "",
                &format!("  {old} -> {}-{}-{name}", doc.platform, doc.environment),
            ));
        }
    }
    let _ = writeln!(out, "platform: {}", q(doc.platform));
    out.push_str("\nservices:\n");
    for (i, so) in doc.services.iter().enumerate() {
        let imp = so.imported;
        let s = &imp.svc;
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&comment("  ", &format!("from {}", so.origins.join(", "))));
        let note = |out: &mut String, key: &str| {
            for (k, n) in &imp.notes {
                if *k == key {
                    out.push_str(&comment("    ", n));
                }
            }
        };
        let _ = writeln!(out, "  {}:", imp.name);
        let _ = writeln!(out, "    image: {}", q(&s.image));
        if !s.ports.is_empty() {
            out.push_str("    ports:\n");
            for p in &s.ports {
                let _ = writeln!(out, "      - {}", q(&port(p)));
            }
        }
        if !s.volumes.is_empty() {
            out.push_str("    volumes:\n");
            for v in &s.volumes {
                let src = match &v.source {
                    VolumeSource::Named { name } => name.as_str(),
                    VolumeSource::Bind { path } => path.as_str(),
                };
                let text = format!("{src}:{}{}", v.target, if v.read_only { ":ro" } else { "" });
                let _ = writeln!(out, "      - {}", q(&text));
            }
        }
        mapping(&mut out, "    ", "env", &s.env);
        if let Some(f) = &s.env_file {
            let _ = writeln!(out, "    env_file: {}", q(f));
        }
        if let Some(c) = &s.entrypoint {
            let _ = writeln!(out, "    entrypoint: {}", args(c));
        }
        if let Some(c) = &s.command {
            let _ = writeln!(out, "    command: {}", args(c));
        }
        if let Some(u) = &s.user {
            let _ = writeln!(out, "    user: {}", q(u));
        }
        mapping(&mut out, "    ", "labels", &s.labels);
        if let Some(m) = &s.memory {
            let _ = writeln!(out, "    memory: {}", q(m));
        }
        if let Some(c) = s.cpus {
            let _ = writeln!(out, "    cpus: {c}");
        }
        if let Some(l) = &s.logging {
            out.push_str("    logging:\n");
            let _ = writeln!(out, "      driver: {}", q(&l.driver));
            mapping(&mut out, "      ", "options", &l.options);
        }
        if let Some(h) = &s.healthcheck {
            healthcheck(&mut out, h);
        }
        if !s.depends_on.is_empty() {
            note(&mut out, "depends_on");
            let _ = writeln!(out, "    depends_on: {}", flow(&s.depends_on));
        }
        note(&mut out, "restart");
        let _ = writeln!(
            out,
            "    restart: {}",
            q(s.restart
                .unwrap_or(crate::manifest::RestartPolicy::No)
                .as_str())
        );
        if let Some(t) = s.stop_timeout {
            let _ = writeln!(out, "    stop_timeout: {}", q(&manifest_duration(t)));
        }
        if !s.networks.is_empty() {
            let _ = writeln!(out, "    networks: {}", flow(&s.networks));
        }
    }
    out.push_str("\nenvironments:\n");
    let _ = writeln!(out, "  {}:", doc.environment);
    out.push_str("    hosts:\n");
    for h in &doc.hosts {
        let _ = writeln!(out, "      {}:", q(h.name));
        let _ = writeln!(
            out,
            "        endpoint: {}",
            serde_json::to_string(h.endpoint).unwrap_or_default()
        );
        if let Some(dir) = h.tls_dir {
            let p = |f: &str| q(&format!("{}/{f}", dir.trim_end_matches('/')));
            let _ = writeln!(
                out,
                "        tls: {{ca: {}, cert: {}, key: {}}}",
                p("ca.pem"),
                p("cert.pem"),
                p("key.pem")
            );
        } else if h.insecure {
            out.push_str("        insecure: true   # plain tcp: whoever reaches this port is root on the host\n");
        }
        if let Some(list) = &h.services {
            let _ = writeln!(out, "        services: {}", flow(list));
        }
    }
    out.push_str("    # The pins: the image tags the compose files ran.\n");
    out.push_str("    versions:\n");
    for so in &doc.services {
        let _ = writeln!(
            out,
            "      {}: {}",
            so.imported.name,
            serde_json::to_string(&so.imported.svc.pin).unwrap_or_default()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_are_quoted_when_yaml_could_misread_them() {
        let reads_back = |written: &str| {
            let doc = crate::manifest::yaml::parse(&format!("k: {written}\n")).unwrap();
            let crate::manifest::yaml::Value::Map(m) = doc.value else {
                panic!()
            };
            (m[0].1.value.clone(), m[0].1.scalar_text())
        };
        for plain in [
            "db",
            "json-file",
            "/srv/x",
            "a.b_c-d",
            "_x",
            "30s",
            "1.5g",
            "128mb",
            "0x",
            "1h",
        ] {
            assert_eq!(q(plain), plain);
            assert_eq!(
                reads_back(plain).0,
                crate::manifest::yaml::Value::Str(plain.into()),
                "{plain}"
            );
        }
        for quoted in [
            "", "no", "No", "on", "true", "null", "8080", "1.10", "80:80", "a b", "-x", "#x",
            "a: b", "[x]", "x,y", "*a", "&a", "!x", "%x", "@x", "`x`", "{x}", "'x'", "\"x\"",
            "a\nb", "~", "é", "1e3", "0x1F", "1_000", "1.", "1.2.3s", ".5s", "10",
        ] {
            let written = q(quoted);
            assert!(written.starts_with('"'), "{quoted:?} -> {written}");
            // It reads back as the same string.
            assert_eq!(
                reads_back(&written).0,
                crate::manifest::yaml::Value::Str(quoted.into()),
                "{written}"
            );
        }
    }

    #[test]
    fn comments_stay_on_their_line() {
        assert_eq!(comment("  ", "a\nplatform: x"), "  # a platform: x\n");
    }
}
