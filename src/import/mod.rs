//! `fleetpin import`: a manifest from the compose files a team already has.
//!
//! A team's compose file is the map of its stack (functional service names, images, ports,
//! volumes, networks); import turns it into a fleetpin manifest instead of asking for a rewrite.
//! Several files (one per host, typically) merge into one manifest whose hosts list the services
//! they run. The rule that makes the result trustworthy: whatever cannot be said in a manifest is
//! an error located in the compose file, never dropped; the few things that change meaning on
//! the way (volume names, bind mounts that must exist, compose's restart default) are warnings or
//! comments in the manifest. The manifest written is checked by the manifest's own parser before
//! it is handed back, so it validates as written.
//!
//! Pure apart from reading the compose files, their `.env` and their env_files: the command
//! (`cmd/import`) decides where the text goes.

pub mod compose;
pub mod dotenv;
pub mod interpolate;
pub mod write;

use crate::import::compose::{Decoded, Settings, Svc};
use crate::manifest::decode::{is_environment_name, is_host_name, is_service_name};
use crate::manifest::diagnostics::{ManifestError, Problem};
use crate::manifest::values::{Endpoint, PortMapping};
use crate::manifest::yaml::Span;
use crate::manifest::{DEFAULT_FILE, MAX_FILE_BYTES};
use indexmap::IndexMap;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// A compose file and the hosts that run it (`None`: every host).
#[derive(Debug, Clone, PartialEq)]
pub struct FileSpec {
    pub path: PathBuf,
    pub hosts: Option<Vec<String>>,
}

/// `--host NAME=ENDPOINT`.
#[derive(Debug, Clone, PartialEq)]
pub struct HostSpec {
    pub name: String,
    pub endpoint: String,
}

#[derive(Debug, Clone)]
pub struct Request {
    /// The compose files as written on the command line (`FILE` or `FILE@HOST[,HOST…]`).
    pub files: Vec<String>,
    pub environment: String,
    pub hosts: Vec<HostSpec>,
    pub platform: Option<String>,
    /// The directory the manifest will live in, absolute: env_file paths are written relative to
    /// it.
    pub out_dir: PathBuf,
    /// Where the compose project lives on the hosts, for relative bind mounts.
    pub project_dir: Option<String>,
    /// Client certificates for tcp:// hosts (ca.pem, cert.pem, key.pem), relative to the manifest.
    pub tls_dir: Option<String>,
    /// Write `insecure: true` for tcp:// hosts without TLS.
    pub insecure: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The command line does not describe an import (a bad host, a host with no file…).
    #[error("{0}")]
    Usage(String),
    /// Problems located in the compose files (and their `.env`), every one of them.
    #[error("the compose files have problems")]
    Files(Vec<ManifestError>),
    /// The manifest import wrote does not validate: a bug in import, shown with its problems.
    #[error("the manifest import wrote does not validate")]
    Invalid(ManifestError),
}

/// A note for the operator, located in a compose file.
#[derive(Debug, Clone, PartialEq)]
pub struct Warning {
    pub file: String,
    pub span: Span,
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.span.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.span.line, self.span.column, self.message
            )
        }
    }
}

/// What an import produced.
#[derive(Debug)]
pub struct Output {
    pub text: String,
    pub platform: String,
    pub environment: String,
    pub services: Vec<String>,
    pub hosts: Vec<String>,
    pub warnings: Vec<Warning>,
}

/// `NAME=ENDPOINT`.
pub fn parse_host(arg: &str) -> Result<HostSpec, String> {
    let Some((name, endpoint)) = arg.split_once('=') else {
        return Err(format!(
            "--host `{arg}`: expected NAME=ENDPOINT, e.g. --host web-1=ssh://deploy@web-1"
        ));
    };
    if !is_host_name(name) {
        return Err(format!(
            "--host `{arg}`: `{name}` is not a valid host name (letters, digits, `-`, `_`, `.`, at most 63)"
        ));
    }
    Endpoint::parse(endpoint).map_err(|e| format!("--host `{arg}`: {e}"))?;
    Ok(HostSpec {
        name: name.to_string(),
        endpoint: endpoint.to_string(),
    })
}

/// `FILE` or `FILE@HOST[,HOST…]`. The part after the last `@` names hosts when every name in it
/// is a declared host; a file whose own name holds an `@` still reads as a file.
pub fn parse_file(arg: &str, hosts: &[HostSpec]) -> Result<FileSpec, String> {
    let known = |h: &str| hosts.iter().any(|x| x.name == h);
    if let Some((path, list)) = arg.rsplit_once('@')
        && !path.is_empty()
        && !list.contains('/')
    {
        let names: Vec<String> = list.split(',').map(|h| h.trim().to_string()).collect();
        if names.iter().all(|h| known(h)) {
            return Ok(FileSpec {
                path: PathBuf::from(path),
                hosts: Some(names),
            });
        }
        if !Path::new(arg).exists() {
            let unknown: Vec<&str> = names
                .iter()
                .filter(|h| !known(h))
                .map(String::as_str)
                .collect();
            return Err(format!(
                "`{arg}`: no host named {}: declare each with --host NAME=ENDPOINT",
                unknown
                    .iter()
                    .map(|h| format!("`{h}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    Ok(FileSpec {
        path: PathBuf::from(arg),
        hosts: None,
    })
}

/// Compose's project name rule (lowercase letters, digits, `_`, `-`), which names its volumes.
fn compose_project(s: &str) -> String {
    let s: String = s
        .to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
        .collect();
    s.trim_start_matches(['_', '-']).to_string()
}

/// A fleetpin platform name from a compose project name, if one can be made.
fn platform_from(project: &str) -> Option<String> {
    let mut out = String::new();
    for c in project.to_ascii_lowercase().chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if c == '-' && (out.is_empty() || out.ends_with('-')) {
            continue;
        }
        if out.is_empty() && !c.is_ascii_lowercase() {
            continue;
        }
        out.push(c);
    }
    let out: String = out.chars().take(31).collect();
    let out = out.trim_end_matches('-').to_string();
    is_service_name(&out).then_some(out)
}

/// One compose file as read: its text, its `.env`, what was decoded.
struct Read {
    display: String,
    text: String,
    hosts: Option<Vec<String>>,
    project: String,
    decoded: Decoded,
    problems: Vec<Problem>,
}

fn read_text(path: &Path, display: &str) -> Result<String, ManifestError> {
    let meta = std::fs::metadata(path).map_err(|e| io_error(display, &e))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(ManifestError::single(
            display,
            String::new(),
            Problem::new(
                Span::default(),
                format!(
                    "the file is {} bytes; import refuses files above {MAX_FILE_BYTES} bytes",
                    meta.len()
                ),
            ),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| io_error(display, &e))?;
    String::from_utf8(bytes).map_err(|_| {
        ManifestError::single(
            display,
            String::new(),
            Problem::new(Span::default(), "the file is not UTF-8 text".into()),
        )
    })
}

fn io_error(display: &str, e: &std::io::Error) -> ManifestError {
    ManifestError::single(
        display,
        String::new(),
        Problem::new(Span::default(), format!("cannot read the file: {e}")),
    )
}

/// Reads and decodes one compose file; `Err` holds problems of another file (its `.env`).
fn read_one(spec: &FileSpec, req: &Request) -> Result<Read, ManifestError> {
    let display = spec.path.display().to_string();
    let text = read_text(&spec.path, &display)?;
    let abs = std::path::absolute(&spec.path).unwrap_or_else(|_| spec.path.clone());
    let dir = compose::normalize(abs.parent().unwrap_or(Path::new("/")));
    // The .env beside the compose file, read as compose reads it.
    let dotenv_path = dir.join(".env");
    let dotenv_display = match spec.path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join(".env").display().to_string(),
        _ => ".env".to_string(),
    };
    let vars = match std::fs::read_to_string(&dotenv_path) {
        Ok(t) => dotenv::parse(&t)
            .map_err(|p| ManifestError::new(&dotenv_display, t.clone(), vec![p]))?,
        Err(_) => IndexMap::new(),
    };
    let mut read = Read {
        display: display.clone(),
        text: text.clone(),
        hosts: spec.hosts.clone(),
        project: String::new(),
        decoded: Decoded::default(),
        problems: vec![],
    };
    if text.trim().is_empty() {
        read.problems.push(Problem::new(
            Span::START,
            "the file is empty; a compose file needs `services`".into(),
        ));
        return Ok(read);
    }
    let root = match crate::manifest::yaml::parse(&text) {
        Ok(r) => r,
        Err(e) => {
            let message = e
                .message
                .replace(
                    "a manifest needs at least `platform`, `services` and `environments`",
                    "a compose file needs `services`",
                )
                .replace(
                    "a manifest is one YAML document",
                    "import reads one YAML document per compose file",
                )
                .replace("a manifest needs about 8", "a compose file needs about 6");
            read.problems.push(Problem::new(e.span, message));
            return Ok(read);
        }
    };
    let settings = Settings {
        vars: &vars,
        dotenv: Path::new(&dotenv_display),
        dir: &dir,
        project_dir: req.project_dir.as_deref(),
        out_dir: &req.out_dir,
    };
    read.decoded = compose::decode(&root, &settings);
    read.problems = std::mem::take(&mut read.decoded.problems);
    // Compose names its volumes after the project: COMPOSE_PROJECT_NAME, else `name`, else the
    // directory's name.
    read.project = compose_project(
        &vars
            .get("COMPOSE_PROJECT_NAME")
            .cloned()
            .or_else(|| read.decoded.name.clone())
            .unwrap_or_else(|| {
                dir.file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default()
            }),
    );
    Ok(read)
}

/// The fields in which two definitions of a service differ.
fn differences(a: &Svc, b: &Svc) -> Vec<&'static str> {
    let mut d = vec![];
    let mut check = |name: &'static str, same: bool| {
        if !same {
            d.push(name);
        }
    };
    check("image", a.image == b.image && a.pin == b.pin);
    check("ports", a.ports == b.ports);
    check("volumes", a.volumes == b.volumes);
    check("environment", a.env == b.env);
    check("env_file", a.env_file == b.env_file);
    check("command", a.command == b.command);
    check("entrypoint", a.entrypoint == b.entrypoint);
    check("user", a.user == b.user);
    check("labels", a.labels == b.labels);
    check("mem_limit", a.memory == b.memory);
    check("cpus", a.cpus == b.cpus);
    check("logging", a.logging == b.logging);
    check("healthcheck", a.healthcheck == b.healthcheck);
    check("depends_on", a.depends_on == b.depends_on);
    check("restart", a.restart == b.restart);
    check("stop_grace_period", a.stop_timeout == b.stop_timeout);
    check("networks", a.networks == b.networks);
    d
}

/// Checks the command line, reads every file, merges, writes the manifest and checks it.
pub fn run(req: &Request) -> Result<Output, ImportError> {
    let usage = |m: String| Err(ImportError::Usage(m));
    if !is_environment_name(&req.environment) {
        return usage(format!(
            "--env `{}` is not a valid environment name: a lowercase letter, then up to 15 lowercase letters or digits (no `-`)",
            req.environment
        ));
    }
    if req.hosts.is_empty() {
        return usage("name at least one host: --host NAME=ENDPOINT".into());
    }
    let mut seen = BTreeSet::new();
    let mut endpoints = BTreeSet::new();
    for h in &req.hosts {
        if !seen.insert(h.name.as_str()) {
            return usage(format!("--host `{}` is given twice", h.name));
        }
        let ep = Endpoint::parse(&h.endpoint).map_err(ImportError::Usage)?;
        if !endpoints.insert(ep.key()) {
            return usage(format!(
                "--host `{}`: the endpoint {} is already another host's",
                h.name, h.endpoint
            ));
        }
        if matches!(ep, Endpoint::Tcp { .. }) && req.tls_dir.is_none() && !req.insecure {
            return usage(format!(
                "--host `{}` is plain tcp://, which is root on that host for whoever reaches the port: pass --tls-dir DIR (ca.pem, cert.pem, key.pem) or, on a trusted network, --insecure",
                h.name
            ));
        }
    }
    if let Some(p) = &req.platform
        && !is_service_name(p)
    {
        return usage(format!(
            "--platform `{p}` is not a valid platform name: a lowercase letter, then up to 30 lowercase letters, digits or `-`"
        ));
    }
    if req.files.is_empty() {
        return usage("name at least one compose file".into());
    }
    let specs = req
        .files
        .iter()
        .map(|f| parse_file(f, &req.hosts))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ImportError::Usage)?;
    for h in &req.hosts {
        let runs = specs
            .iter()
            .any(|s| s.hosts.as_ref().is_none_or(|l| l.contains(&h.name)));
        if !runs {
            return usage(format!(
                "host `{}` runs no compose file: name it after a file (FILE@{}) or leave it out",
                h.name, h.name
            ));
        }
    }

    // Read every file; a file that cannot be read at all stops nothing else.
    let mut failed: Vec<ManifestError> = vec![];
    let mut reads: Vec<Read> = vec![];
    for spec in &specs {
        match read_one(spec, req) {
            Ok(r) => reads.push(r),
            Err(e) => failed.push(e),
        }
    }

    // One definition per service across files.
    let mut first: IndexMap<String, (usize, usize)> = IndexMap::new();
    let mut extra: Vec<(usize, Problem)> = vec![];
    for (fi, r) in reads.iter().enumerate() {
        for (si, imp) in r.decoded.services.iter().enumerate() {
            match first.get(&imp.name) {
                None => {
                    first.insert(imp.name.clone(), (fi, si));
                }
                Some(&(ff, fs)) => {
                    let other = &reads[ff].decoded.services[fs];
                    let diff = differences(&other.svc, &imp.svc);
                    if !diff.is_empty() {
                        extra.push((
                            fi,
                            Problem::new(
                                imp.span,
                                format!(
                                    "service `{}` is defined differently in {}:{}:{} ({} differ{}); a service that runs from several files must be defined identically in each",
                                    imp.name,
                                    reads[ff].display,
                                    other.span.line,
                                    other.span.column,
                                    diff.join(", "),
                                    if diff.len() == 1 { "s" } else { "" }
                                ),
                            )
                            .with_help("make the two definitions the same, or give the services different names"),
                        ));
                    }
                }
            }
        }
    }

    // Two services publishing one host port on one host (a service merged from several files
    // is counted once: its definitions are identical).
    let mut reported = BTreeSet::new();
    for h in &req.hosts {
        let mut taken: Vec<(&PortMapping, &str, usize, Span)> = vec![];
        let mut visited = BTreeSet::new();
        for (fi, r) in reads.iter().enumerate() {
            if !r.hosts.as_ref().is_none_or(|l| l.contains(&h.name)) {
                continue;
            }
            for imp in &r.decoded.services {
                if !visited.insert(imp.name.as_str()) {
                    continue;
                }
                for (p, span) in imp.svc.ports.iter().zip(&imp.port_spans) {
                    match taken.iter().find(|t| t.0.collides_with(p)) {
                        Some(t) if reported.insert((fi, span.offset)) => extra.push((
                            fi,
                            Problem::new(
                                *span,
                                format!(
                                    "host port {} is published twice on host `{}`: also by service `{}` at {}:{}:{}",
                                    p.host, h.name, t.1, reads[t.2].display, t.3.line, t.3.column
                                ),
                            ),
                        )),
                        Some(_) => {}
                        None => taken.push((p, &imp.name, fi, *span)),
                    }
                }
            }
        }
    }

    for (fi, p) in extra {
        reads[fi].problems.push(p);
    }
    for r in &mut reads {
        if !r.problems.is_empty() {
            let mut problems = std::mem::take(&mut r.problems);
            problems.sort_by_key(|p| (p.span.line, p.span.column));
            problems.dedup_by(|a, b| a.span == b.span && a.message == b.message);
            failed.push(ManifestError::new(&r.display, r.text.clone(), problems));
        }
    }
    if !failed.is_empty() {
        return Err(ImportError::Files(failed));
    }

    let platform = match &req.platform {
        Some(p) => p.clone(),
        None => platform_from(&reads[0].project).ok_or_else(|| {
            ImportError::Usage(format!(
                "cannot make a platform name out of the compose project `{}`: pass --platform NAME",
                reads[0].project
            ))
        })?,
    };

    // Warnings, in file order: the files' own, then what moves with named volumes.
    let mut warnings = vec![];
    let mut volumes: Vec<(String, String)> = vec![];
    for r in &reads {
        let mut ws: Vec<Warning> = r
            .decoded
            .warnings
            .iter()
            .map(|w| Warning {
                file: r.display.clone(),
                span: w.span,
                message: w.message.clone(),
            })
            .collect();
        for (name, decl) in &r.decoded.volumes {
            if !decl.used {
                continue;
            }
            let old = decl
                .explicit
                .clone()
                .unwrap_or_else(|| format!("{}_{name}", r.project));
            let new = format!("{platform}-{}-{name}", req.environment);
            ws.push(Warning {
                file: r.display.clone(),
                span: decl.span,
                message: format!(
                    "volume `{name}`: compose keeps its data in the Docker volume `{old}`; the manifest mounts `{new}`, which starts empty: copy the data over before the first apply (docs/import.md, \"Moving volume data\")"
                ),
            });
            if !volumes.iter().any(|(n, o)| *n == *name && *o == old) {
                volumes.push((name.clone(), old));
            }
        }
        ws.sort_by_key(|w| (w.span.line, w.span.column));
        warnings.extend(ws);
    }

    // The manifest.
    let all: Vec<&str> = first.keys().map(String::as_str).collect();
    let services: Vec<write::ServiceOut> = first
        .iter()
        .map(|(name, &(fi, si))| write::ServiceOut {
            imported: &reads[fi].decoded.services[si],
            origins: reads
                .iter()
                .filter_map(|r| {
                    r.decoded
                        .services
                        .iter()
                        .find(|s| s.name == *name)
                        .map(|s| format!("{}:{}", r.display, s.span.line))
                })
                .collect(),
        })
        .collect();
    // The hosts, each with the services its files bring.
    let on_host = |h: &str| -> BTreeSet<String> {
        reads
            .iter()
            .filter(|r| r.hosts.as_ref().is_none_or(|l| l.iter().any(|x| x == h)))
            .flat_map(|r| r.decoded.services.iter().map(|s| s.name.clone()))
            .collect()
    };

    let hosts: Vec<write::HostOut> = req
        .hosts
        .iter()
        .map(|h| {
            let runs = on_host(&h.name);
            let tcp = h.endpoint.starts_with("tcp://");
            write::HostOut {
                name: &h.name,
                endpoint: &h.endpoint,
                insecure: tcp && req.tls_dir.is_none(),
                tls_dir: if tcp { req.tls_dir.as_deref() } else { None },
                services: (runs.len() != all.len())
                    .then(|| all.iter().copied().filter(|s| runs.contains(*s)).collect()),
            }
        })
        .collect();
    let files = reads
        .iter()
        .map(|r| {
            (
                r.display.clone(),
                match &r.hosts {
                    None => "every host".to_string(),
                    Some(l) => l.join(", "),
                },
            )
        })
        .collect();
    let doc = write::Doc {
        platform: &platform,
        environment: &req.environment,
        files,
        services,
        hosts,
        volumes,
    };
    let text = write::manifest(&doc);

    // The manifest must validate as written.
    if let Err(problems) = crate::manifest::parse_str(&text) {
        return Err(ImportError::Invalid(ManifestError::new(
            &format!("(the manifest import wrote, for {DEFAULT_FILE})"),
            text,
            problems,
        )));
    }
    Ok(Output {
        text,
        platform,
        environment: req.environment.clone(),
        services: all.iter().map(|s| s.to_string()).collect(),
        hosts: req.hosts.iter().map(|h| h.name.clone()).collect(),
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(names: &[&str]) -> Vec<HostSpec> {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| HostSpec {
                name: n.to_string(),
                endpoint: format!("ssh://deploy@10.0.0.{}", i + 1),
            })
            .collect()
    }

    struct Dir(tempfile::TempDir);

    impl Dir {
        fn new() -> Dir {
            Dir(tempfile::tempdir().unwrap())
        }
        fn file(&self, name: &str, text: &str) -> String {
            let p = self.0.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, text).unwrap();
            p.display().to_string()
        }
        fn req(&self, files: Vec<String>, host_names: &[&str]) -> Request {
            Request {
                files,
                environment: "prod".into(),
                hosts: hosts(host_names),
                platform: Some("shop".into()),
                out_dir: self.0.path().to_path_buf(),
                project_dir: None,
                tls_dir: None,
                insecure: false,
            }
        }
    }

    fn problems(e: ImportError) -> Vec<(String, u32, u32, String)> {
        match e {
            ImportError::Files(list) => list
                .into_iter()
                .flat_map(|f| {
                    let file = f.file.clone();
                    f.problems
                        .into_iter()
                        .map(move |p| (file.clone(), p.span.line, p.span.column, p.message))
                })
                .collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn file_arguments_name_their_hosts() {
        let h = hosts(&["h1", "h2"]);
        assert_eq!(
            parse_file("web.yml@h1,h2", &h).unwrap(),
            FileSpec {
                path: "web.yml".into(),
                hosts: Some(vec!["h1".into(), "h2".into()])
            }
        );
        assert_eq!(parse_file("web.yml", &h).unwrap().hosts, None);
        let e = parse_file("web.yml@h9", &h).unwrap_err();
        assert!(e.contains("no host named `h9`"), "{e}");
        // An `@` in a directory name is a path.
        assert_eq!(parse_file("dir@x/web.yml", &h).unwrap().hosts, None);
        assert!(parse_host("web-1=ssh://deploy@web-1").is_ok());
        assert!(parse_host("web-1").is_err());
        assert!(parse_host("web 1=ssh://x").is_err());
        assert!(parse_host("w=http://x").is_err());
    }

    #[test]
    fn platform_names_come_from_compose_projects() {
        assert_eq!(platform_from("my_blog").as_deref(), Some("my-blog"));
        assert_eq!(platform_from("2024shop").as_deref(), Some("shop"));
        assert_eq!(platform_from("___"), None);
        assert_eq!(compose_project("My Blog!"), "myblog");
    }

    #[test]
    fn one_file_on_every_host_writes_no_services_lists() {
        let d = Dir::new();
        let f = d.file(
            "app/compose.yml",
            "services:\n  web:\n    image: nginx:1.25\n    ports: [\"80:80\"]\n",
        );
        let out = run(&d.req(vec![f], &["h1", "h2"])).unwrap();
        assert!(!out.text.contains("services: ["), "{}", out.text);
        let m = crate::manifest::parse_str(&out.text).unwrap();
        assert_eq!(m.services_on("prod", "h2"), ["web"]);
        assert_eq!(
            m.environments["prod"].versions["web"].value.to_string(),
            "1.25"
        );
    }

    #[test]
    fn files_per_host_merge_with_services_lists() {
        let d = Dir::new();
        let web = d.file(
            "web.yml",
            "services:\n  web:\n    image: nginx:1.25\n    depends_on: [cache]\n  cache:\n    image: redis:7.2\n",
        );
        let db = d.file(
            "db.yml",
            "services:\n  db:\n    image: mysql:8.0\n  cache:\n    image: redis:7.2\n",
        );
        let out = run(&d.req(
            vec![format!("{web}@h1,h2"), format!("{db}@h3")],
            &["h1", "h2", "h3"],
        ))
        .unwrap();
        let m = crate::manifest::parse_str(&out.text).unwrap();
        assert_eq!(m.services_on("prod", "h1"), ["web", "cache"]);
        assert_eq!(m.services_on("prod", "h2"), ["web", "cache"]);
        assert_eq!(m.services_on("prod", "h3"), ["cache", "db"]);
        assert_eq!(out.services, ["web", "cache", "db"]);
        // Both origins are named.
        assert!(out.text.contains("web.yml:5, "), "{}", out.text);
    }

    #[test]
    fn a_service_defined_differently_in_two_files_names_both_places() {
        let d = Dir::new();
        let a = d.file("a.yml", "services:\n  cache:\n    image: redis:7.2\n");
        let b = d.file(
            "b.yml",
            "services:\n  web:\n    image: nginx:1.25\n  cache:\n    image: redis:7.4\n    ports: [\"6379:6379\"]\n",
        );
        let e = run(&d.req(vec![format!("{a}@h1"), format!("{b}@h2")], &["h1", "h2"])).unwrap_err();
        let p = problems(e);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!((p[0].0.as_str(), p[0].1, p[0].2), (b.as_str(), 4, 3));
        assert!(
            p[0].3.contains(&format!(
                "defined differently in {a}:2:3 (image, ports differ)"
            )),
            "{}",
            p[0].3
        );
    }

    #[test]
    fn host_ports_published_twice_on_one_host() {
        let d = Dir::new();
        let a = d.file(
            "a.yml",
            "services:\n  web:\n    image: nginx:1.25\n    ports: [\"80:80\"]\n",
        );
        let b = d.file(
            "b.yml",
            "services:\n  api:\n    image: nginx:1.25\n    ports: [\"8080:80\", \"80:81\"]\n",
        );
        // Apart: fine.
        assert!(run(&d.req(vec![format!("{a}@h1"), format!("{b}@h2")], &["h1", "h2"])).is_ok());
        // Together on h1: located at the second.
        let p = problems(
            run(&d.req(vec![format!("{a}@h1"), format!("{b}@h1,h2")], &["h1", "h2"])).unwrap_err(),
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!((p[0].1, p[0].2), (4, 24));
        assert!(
            p[0].3
                .contains("host port 80 is published twice on host `h1`: also by service `web`"),
            "{}",
            p[0].3
        );
    }

    #[test]
    fn usage_problems() {
        let d = Dir::new();
        let f = d.file("c.yml", "services:\n  web:\n    image: nginx:1.25\n");
        let e = run(&d.req(vec![format!("{f}@h1")], &["h1", "h2"])).unwrap_err();
        assert!(
            e.to_string().contains("host `h2` runs no compose file"),
            "{e}"
        );
        let mut r = d.req(vec![f.clone()], &["h1"]);
        r.hosts[0].endpoint = "tcp://10.0.0.1:2375".into();
        let e = run(&r).unwrap_err();
        assert!(e.to_string().contains("--insecure"), "{e}");
        r.insecure = true;
        assert!(run(&r).unwrap().text.contains("insecure: true"));
        r.insecure = false;
        r.tls_dir = Some("certs".into());
        assert!(
            run(&r)
                .unwrap()
                .text
                .contains("tls: {ca: certs/ca.pem, cert: certs/cert.pem, key: certs/key.pem}")
        );
        let mut r = d.req(vec![f.clone()], &["h1"]);
        r.environment = "pre-prod".into();
        assert!(run(&r).is_err());
    }

    #[test]
    fn named_volumes_warn_with_both_names() {
        let d = Dir::new();
        let f = d.file(
            "blog/compose.yml",
            "services:\n  db:\n    image: mysql:8.0\n    volumes: [\"dbdata:/var/lib/mysql\"]\nvolumes:\n  dbdata:\n",
        );
        let mut r = d.req(vec![f], &["h1"]);
        r.platform = None;
        let out = run(&r).unwrap();
        assert_eq!(out.platform, "blog");
        let w = &out.warnings[0];
        assert_eq!(w.span.line, 6);
        assert!(
            w.message
                .contains("Docker volume `blog_dbdata`; the manifest mounts `blog-prod-dbdata`"),
            "{}",
            w.message
        );
        assert!(
            out.text.contains("#   blog_dbdata -> blog-prod-dbdata"),
            "{}",
            out.text
        );
    }

    #[test]
    fn dotenv_problems_are_located_in_the_dotenv() {
        let d = Dir::new();
        d.file("p/.env", "OK=1\nBAD LINE=2\n");
        let f = d.file(
            "p/compose.yml",
            "services:\n  web:\n    image: nginx:${OK}\n",
        );
        let p = problems(run(&d.req(vec![f], &["h1"])).unwrap_err());
        assert!(p[0].0.ends_with("p/.env"), "{p:?}");
        assert_eq!(p[0].1, 2);
    }
}
