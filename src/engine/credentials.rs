//! Registry credentials as the docker CLI finds them, so that what `docker pull` can pull on the
//! operator's machine fleetpin can pull too. They come from the operator's docker config
//! (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`) — never from the manifest, which
//! is committed. For the registry of an image, keyed as the docker CLI keys it (the registry host
//! as written, `registry.acme.internal:5000`; `https://index.docker.io/v1/` for Docker Hub):
//!
//! 1. `credHelpers[KEY]`, else `credsStore`: the helper program `docker-credential-NAME` (on
//!    PATH) is run with `get`, KEY on stdin, and prints `{"ServerURL","Username","Secret"}`;
//!    "credentials not found in native keychain" means anonymous; the username `<token>` means the
//!    secret is an identity token. `auths` is not read for that registry then.
//! 2. Otherwise `auths[KEY]` (`auth` is base64 `user:password`; or `identitytoken`); an entry
//!    with an empty `auth` (what `docker login` leaves beside a `credsStore`) is anonymous.
//! 3. A config that configures no credentials at all falls back, like the docker CLI, to the
//!    platform's default store when its helper is installed (`osxkeychain`, `wincred`; on Linux
//!    `pass` when `pass` is installed, else `secretservice`).
//!
//! A helper is run once per registry and process (a run pulls on many hosts at once), bounded by
//! a timeout (a helper waiting for a passphrase must not hang a deploy). A helper that fails
//! leaves the pull anonymous, as the docker CLI does, with a warning; if the pull then fails, its
//! error says why (which helper, and what to do). No secret is ever printed or logged:
//! `Credentials`' Debug shows the server only, and a helper's output is quoted only when it
//! cannot hold one.

use crate::engine::Credentials;
use base64::Engine as _;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// How the docker CLI keys Docker Hub's credentials.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// How long a helper may take to answer.
const HELPER_TIMEOUT: Duration = Duration::from_secs(60);

/// What helpers print when they hold nothing for a registry: anonymous, not an error.
const NOT_FOUND: &str = "credentials not found in native keychain";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("cannot read the docker config {path}: {reason}; fix it (or run `docker login` again)")]
    Config { path: String, reason: String },
    #[error(
        "the credential helper docker-credential-{helper} ({setting} in {config}, for {server}) is not on PATH: install it, or change {setting}"
    )]
    Missing {
        helper: String,
        setting: String,
        config: String,
        server: String,
    },
    #[error(
        "the credential helper docker-credential-{helper} failed for {server}: {detail}; log in again (`docker login {server}`) or fix the helper ({setting} in {config})"
    )]
    Failed {
        helper: String,
        setting: String,
        config: String,
        server: String,
        detail: String,
    },
    #[error(
        "the credential helper docker-credential-{helper} answered for {server} with {reason}, not the JSON {{\"ServerURL\", \"Username\", \"Secret\"}} docker expects (its output is not shown: it may hold a secret); fix the helper ({setting} in {config})"
    )]
    BadOutput {
        helper: String,
        setting: String,
        config: String,
        server: String,
        reason: String,
    },
    #[error(
        "the credential helper docker-credential-{helper} gave no answer for {server} within {seconds}s (is it waiting for a passphrase?); unlock it and run again ({setting} in {config})"
    )]
    Timeout {
        helper: String,
        setting: String,
        config: String,
        server: String,
        seconds: u64,
    },
}

/// One `auths` entry, decoded as the docker CLI decodes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct AuthEntry {
    username: String,
    password: String,
    identity_token: String,
}

/// Where the credentials of one registry come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `docker-credential-{name}`, chosen by `setting` (`credHelpers["KEY"]`, `credsStore`, or
    /// the platform's default store).
    Helper { name: String, setting: String },
    /// The `auths` entry of the registry, if it has one.
    File,
}

/// The credential settings of a docker config file.
#[derive(Debug, Clone, Default)]
pub struct DockerConfig {
    /// For messages.
    pub path: String,
    auths: Vec<(String, AuthEntry)>,
    creds_store: Option<String>,
    cred_helpers: HashMap<String, String>,
    /// The platform's default store, for a config that configures no credentials (`load`
    /// finds it on PATH, as the docker CLI does).
    pub default_store: Option<String>,
}

impl DockerConfig {
    /// Reads the config text (`path` for messages).
    pub fn parse(text: &str, path: &str) -> Result<DockerConfig, CredentialError> {
        let bad = |reason: String| CredentialError::Config {
            path: path.to_string(),
            reason,
        };
        let doc: serde_json::Value =
            serde_json::from_str(text).map_err(|e| bad(format!("not JSON ({e})")))?;
        let mut c = DockerConfig {
            path: path.to_string(),
            ..Default::default()
        };
        let text_of = |v: Option<&serde_json::Value>| {
            v.and_then(|v| v.as_str()).unwrap_or_default().to_string()
        };
        if let Some(auths) = doc.get("auths").and_then(|a| a.as_object()) {
            for (key, entry) in auths {
                let mut a = AuthEntry {
                    username: text_of(entry.get("username")),
                    password: text_of(entry.get("password")),
                    identity_token: text_of(entry.get("identitytoken")),
                };
                let auth = text_of(entry.get("auth"));
                if !auth.is_empty() {
                    // The docker CLI refuses the whole file when one `auth` does not decode.
                    let decoded = base64::engine::general_purpose::STANDARD
                        .decode(auth.trim())
                        .ok()
                        .and_then(|d| String::from_utf8(d).ok())
                        .ok_or_else(|| bad(format!("the `auth` of {key} is not base64")))?;
                    let (u, p) = decoded
                        .split_once(':')
                        .ok_or_else(|| bad(format!("the `auth` of {key} is not user:password")))?;
                    a.username = u.to_string();
                    a.password = p.trim_end_matches('\0').to_string();
                }
                c.auths.push((key.clone(), a));
            }
        }
        c.creds_store = Some(text_of(doc.get("credsStore"))).filter(|s| !s.is_empty());
        if let Some(helpers) = doc.get("credHelpers").and_then(|h| h.as_object()) {
            for (key, name) in helpers {
                if let Some(name) = name.as_str().filter(|n| !n.is_empty()) {
                    c.cred_helpers.insert(key.clone(), name.to_string());
                }
            }
        }
        Ok(c)
    }

    /// The operator's docker config; none at all reads as an empty one.
    pub fn load() -> Result<DockerConfig, CredentialError> {
        let path = config_path();
        let shown = path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "~/.docker/config.json".into());
        let mut c = match path.as_ref().map(std::fs::read_to_string) {
            Some(Ok(text)) => DockerConfig::parse(&text, &shown)?,
            Some(Err(e)) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(CredentialError::Config {
                    path: shown,
                    reason: e.to_string(),
                });
            }
            _ => DockerConfig {
                path: shown,
                ..Default::default()
            },
        };
        if c.configures_nothing() {
            c.default_store = platform_default_store();
        }
        Ok(c)
    }

    /// Whether the config says nothing about credentials (the docker CLI's `ContainsAuth`).
    fn configures_nothing(&self) -> bool {
        self.creds_store.is_none() && self.cred_helpers.is_empty() && self.auths.is_empty()
    }

    /// Where the credentials for `server` (a key from `server_key`) come from, as the docker
    /// CLI chooses: `credHelpers` for that key, else `credsStore`, else `auths`.
    pub fn source(&self, server: &str) -> Source {
        if let Some(name) = self.cred_helpers.get(server) {
            return Source::Helper {
                name: name.clone(),
                setting: format!("credHelpers[\"{server}\"]"),
            };
        }
        if let Some(name) = &self.creds_store {
            return Source::Helper {
                name: name.clone(),
                setting: "credsStore".into(),
            };
        }
        if self.configures_nothing()
            && let Some(name) = &self.default_store
        {
            return Source::Helper {
                name: name.clone(),
                setting: "the platform's default store (no credentials configured)".into(),
            };
        }
        Source::File
    }

    /// The `auths` entry for `server`: the exact key, else a key naming the same host
    /// (`https://host/v2/`), as the docker CLI reads older files; Docker Hub under any of its
    /// names.
    fn auths_entry(&self, server: &str) -> Option<(&str, &AuthEntry)> {
        let hub = |k: &str| {
            matches!(
                host_of(k),
                "index.docker.io" | "registry-1.docker.io" | "docker.io"
            )
        };
        self.auths
            .iter()
            .find(|(k, _)| k == server)
            .or_else(|| self.auths.iter().find(|(k, _)| host_of(k) == server))
            .or_else(|| {
                (server == DOCKER_HUB_KEY)
                    .then(|| self.auths.iter().find(|(k, _)| hub(k)))
                    .flatten()
            })
            .map(|(k, a)| (k.as_str(), a))
    }

    /// The credentials `auths` holds for `server`; an entry without any is anonymous.
    pub fn from_auths(&self, server: &str) -> Option<Credentials> {
        let (key, a) = self.auths_entry(server)?;
        let c = Credentials {
            username: Some(a.username.clone()).filter(|s| !s.is_empty()),
            password: Some(a.password.clone()).filter(|s| !s.is_empty()),
            identity_token: Some(a.identity_token.clone()).filter(|s| !s.is_empty()),
            server: key.to_string(),
        };
        (c.username.is_some() || c.identity_token.is_some()).then_some(c)
    }
}

fn config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

/// `https://host:5000/v1/` → `host:5000` (the docker CLI's `ConvertToHostname`).
fn host_of(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p).any(|d| {
            let f = d.join(program);
            f.is_file() || (cfg!(windows) && d.join(format!("{program}.exe")).is_file())
        })
    })
}

/// The docker CLI's `DetectDefaultStore`: the platform's store, if its helper is installed.
fn platform_default_store() -> Option<String> {
    let store = if cfg!(target_os = "macos") {
        "osxkeychain"
    } else if cfg!(windows) {
        "wincred"
    } else if on_path("pass") {
        "pass"
    } else {
        "secretservice"
    };
    on_path(&format!("docker-credential-{store}")).then(|| store.to_string())
}

/// The registry host of an image reference, as the docker CLI reads it (`docker.io` when none is
/// written): a first component with a `.` or `:`, `localhost`, or capitals names a registry.
pub fn registry_of(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _))
            if first.contains('.')
                || first.contains(':')
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            match first {
                "index.docker.io" => "docker.io".to_string(),
                other => other.to_string(),
            }
        }
        _ => "docker.io".to_string(),
    }
}

/// The key the docker CLI looks credentials up under for `image`'s registry: its host, or
/// `https://index.docker.io/v1/` for Docker Hub.
pub fn server_key(image: &str) -> String {
    match registry_of(image).as_str() {
        "docker.io" => DOCKER_HUB_KEY.to_string(),
        other => other.to_string(),
    }
}

/// Runs `program get` (the helper `helper`, chosen by `setting`) for `server` exactly as the
/// docker CLI does.
pub async fn from_helper(
    program: &Path,
    helper: &str,
    setting: &str,
    config: &str,
    server: &str,
) -> Result<Option<Credentials>, CredentialError> {
    use tokio::io::AsyncWriteExt;
    let (h, st, cf, sv) = (
        helper.to_string(),
        setting.to_string(),
        config.to_string(),
        server.to_string(),
    );
    let failed = |detail: String| CredentialError::Failed {
        helper: h.clone(),
        setting: st.clone(),
        config: cf.clone(),
        server: sv.clone(),
        detail,
    };
    let mut child = match tokio::process::Command::new(program)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(CredentialError::Missing {
                helper: h,
                setting: st,
                config: cf,
                server: sv,
            });
        }
        Err(e) => return Err(failed(format!("cannot run it: {e}"))),
    };
    if let Some(mut stdin) = child.stdin.take() {
        // The server URL, no newline, then end of input.
        let _ = stdin.write_all(server.as_bytes()).await;
    }
    let out = match tokio::time::timeout(HELPER_TIMEOUT, child.wait_with_output()).await {
        Err(_) => {
            return Err(CredentialError::Timeout {
                helper: h,
                setting: st,
                config: cf,
                server: sv,
                seconds: HELPER_TIMEOUT.as_secs(),
            });
        }
        Ok(Err(e)) => return Err(failed(e.to_string())),
        Ok(Ok(out)) => out,
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        if stdout.trim() == NOT_FOUND || stderr.trim() == NOT_FOUND {
            return Ok(None);
        }
        return Err(failed(format!(
            "{}{}",
            out.status,
            message_of(&stdout, &stderr)
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        )));
    }
    let bad = |reason: &str| CredentialError::BadOutput {
        helper: h.clone(),
        setting: st.clone(),
        config: cf.clone(),
        server: sv.clone(),
        reason: reason.to_string(),
    };
    let doc: serde_json::Value =
        serde_json::from_str(stdout.trim()).map_err(|_| bad("output that is not JSON"))?;
    let field = |name: &str| -> Result<String, CredentialError> {
        match doc.get(name) {
            None | Some(serde_json::Value::Null) => Ok(String::new()),
            Some(serde_json::Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(bad(&format!("a `{name}` that is not a string"))),
        }
    };
    if !doc.is_object() {
        return Err(bad("JSON that is not an object"));
    }
    let (username, secret) = (field("Username")?, field("Secret")?);
    if secret.is_empty() {
        return Ok(None);
    }
    let mut c = Credentials {
        server: server.to_string(),
        ..Default::default()
    };
    if username == "<token>" {
        c.identity_token = Some(secret);
    } else {
        c.username = Some(username);
        c.password = Some(secret);
    }
    Ok(Some(c))
}

/// The first line of what a failed helper said, when it cannot be a secret it printed (helpers
/// print their errors on stdout, like "error getting credentials").
fn message_of(stdout: &str, stderr: &str) -> Option<String> {
    let text = if stdout.trim().is_empty() {
        stderr
    } else {
        stdout
    };
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    if line.contains("Secret") || line.starts_with('{') {
        return None;
    }
    Some(line.chars().take(200).collect())
}

/// The credentials for `server` as `config` says (`Source`), running a helper if it names one.
pub async fn lookup(
    config: &DockerConfig,
    server: &str,
) -> Result<Option<Credentials>, CredentialError> {
    match config.source(server) {
        Source::File => Ok(config.from_auths(server)),
        Source::Helper { name, setting } => {
            let program = PathBuf::from(format!("docker-credential-{name}"));
            from_helper(&program, &name, &setting, &config.path, server).await
        }
    }
}

type Cache = HashMap<(Option<PathBuf>, String), Result<Option<Credentials>, CredentialError>>;

/// Credentials for the registry `image` lives in, as the docker CLI would find them: looked up
/// once per registry and process. An error means the lookup failed (the pull may still go
/// anonymous, as the docker CLI's does).
pub async fn for_image(image: &str) -> Result<Option<Credentials>, CredentialError> {
    static CACHE: OnceLock<tokio::sync::Mutex<Cache>> = OnceLock::new();
    let server = server_key(image);
    let key = (config_path(), server.clone());
    let mut cache = CACHE.get_or_init(Default::default).lock().await;
    if let Some(found) = cache.get(&key) {
        return found.clone();
    }
    let found = match DockerConfig::load() {
        Ok(config) => lookup(&config, &server).await,
        Err(e) => Err(e),
    };
    if let Err(e) = &found {
        tracing::warn!("{e}; pulling from {server} anonymously");
    }
    cache.insert(key, found.clone());
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const B64_USER_PASS: &str = "dXNlcjpwYXNz"; // user:pass

    fn block<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn cfg(json: &str) -> DockerConfig {
        DockerConfig::parse(json, "config.json").unwrap()
    }

    #[test]
    fn keys_registries_as_the_docker_cli_does() {
        assert_eq!(
            registry_of("registry.acme.internal:5000/acme/billing"),
            "registry.acme.internal:5000"
        );
        assert_eq!(registry_of("nginx"), "docker.io");
        assert_eq!(registry_of("traefik/whoami"), "docker.io");
        assert_eq!(registry_of("localhost/app"), "localhost");
        assert_eq!(registry_of("index.docker.io/library/nginx"), "docker.io");
        assert_eq!(registry_of("nginx@sha256:abc"), "docker.io");
        assert_eq!(server_key("nginx:1.25"), "https://index.docker.io/v1/");
        assert_eq!(server_key("docker.io/library/nginx"), DOCKER_HUB_KEY);
        assert_eq!(server_key("ghcr.io/acme/api:1.0"), "ghcr.io");
    }

    #[test]
    fn auths_entries_by_exact_key_or_host() {
        let c = cfg(&format!(
            r#"{{"auths":{{"https://registry.acme.internal:5000/v2/":{{"auth":"{B64_USER_PASS}"}}}}}}"#
        ));
        let got = c.from_auths("registry.acme.internal:5000").unwrap();
        assert_eq!(got.username.as_deref(), Some("user"));
        assert_eq!(got.password.as_deref(), Some("pass"));
        assert_eq!(got.server, "https://registry.acme.internal:5000/v2/");
        assert!(!format!("{got:?}").contains("pass"), "Debug hides it");
        assert_eq!(c.from_auths(DOCKER_HUB_KEY), None);
        assert_eq!(c.source("registry.acme.internal:5000"), Source::File);

        let hub = cfg(&format!(
            r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{B64_USER_PASS}"}}}}}}"#
        ));
        assert!(hub.from_auths(server_key("nginx").as_str()).is_some());
        let token = cfg(r#"{"auths":{"ghcr.io":{"identitytoken":"tok"}}}"#);
        assert_eq!(
            token
                .from_auths("ghcr.io")
                .unwrap()
                .identity_token
                .as_deref(),
            Some("tok")
        );
    }

    #[test]
    fn an_empty_auth_beside_a_creds_store_is_the_helpers_business() {
        // The seed's own config: what `docker login` writes on a Mac.
        let c = cfg(
            r#"{"auths":{"registry.acme.internal:5000":{"auth":""}},"credsStore":"osxkeychain"}"#,
        );
        assert_eq!(
            c.source("registry.acme.internal:5000"),
            Source::Helper {
                name: "osxkeychain".into(),
                setting: "credsStore".into()
            }
        );
        // Without a store, the same empty entry is anonymous.
        let c = cfg(r#"{"auths":{"registry.acme.internal:5000":{"auth":""}}}"#);
        assert_eq!(c.source("registry.acme.internal:5000"), Source::File);
        assert_eq!(c.from_auths("registry.acme.internal:5000"), None);
    }

    #[test]
    fn cred_helpers_come_before_the_store_and_auths_per_registry() {
        let c = cfg(&format!(
            r#"{{"auths":{{"ghcr.io":{{"auth":"{B64_USER_PASS}"}},"quay.io":{{"auth":"{B64_USER_PASS}"}}}},
                "credsStore":"desktop",
                "credHelpers":{{"123.dkr.ecr.eu-west-1.amazonaws.com":"ecr-login","ghcr.io":"pass"}}}}"#
        ));
        let helper = |s: &str| match c.source(s) {
            Source::Helper { name, setting } => (name, setting),
            Source::File => ("file".into(), String::new()),
        };
        assert_eq!(
            helper("123.dkr.ecr.eu-west-1.amazonaws.com"),
            (
                "ecr-login".into(),
                "credHelpers[\"123.dkr.ecr.eu-west-1.amazonaws.com\"]".into()
            )
        );
        assert_eq!(helper("ghcr.io").0, "pass");
        // Not in credHelpers: the store, even though auths has an entry.
        assert_eq!(helper("quay.io"), ("desktop".into(), "credsStore".into()));
        assert_eq!(helper(DOCKER_HUB_KEY).0, "desktop");
        // Docker Hub's key in credHelpers is the docker CLI's, not `docker.io`.
        let hub = cfg(r#"{"credHelpers":{"https://index.docker.io/v1/":"pass","docker.io":"x"}}"#);
        assert_eq!(
            hub.source(&server_key("nginx")),
            Source::Helper {
                name: "pass".into(),
                setting: "credHelpers[\"https://index.docker.io/v1/\"]".into()
            }
        );
    }

    #[test]
    fn the_default_store_only_when_nothing_is_configured() {
        let mut empty = cfg("{}");
        empty.default_store = Some("secretservice".into());
        assert!(
            matches!(empty.source("ghcr.io"), Source::Helper { name, .. } if name == "secretservice")
        );
        let mut with_auths = cfg(r#"{"auths":{"ghcr.io":{"auth":""}}}"#);
        with_auths.default_store = Some("secretservice".into());
        assert_eq!(with_auths.source("ghcr.io"), Source::File);
    }

    #[test]
    fn a_broken_config_is_an_error_that_names_the_file() {
        let e = DockerConfig::parse("{", "/home/me/.docker/config.json").unwrap_err();
        assert!(
            e.to_string().contains("/home/me/.docker/config.json"),
            "{e}"
        );
        let e = DockerConfig::parse(r#"{"auths":{"x.io":{"auth":"%%"}}}"#, "c.json").unwrap_err();
        assert!(e.to_string().contains("x.io"), "{e}");
    }

    /// A helper script in a temp dir: `body` is sh, reading the server URL on stdin. The
    /// executable is written by a child process (`install`), never through a descriptor of this
    /// one: a test on another thread that forks meanwhile would inherit that descriptor, and
    /// running the script would fail with "Text file busy".
    fn helper(body: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("script");
        std::fs::write(&text, format!("#!/bin/sh\n{body}\n")).unwrap();
        let p = dir.path().join("docker-credential-t");
        let ok = std::process::Command::new("install")
            .arg("-m755")
            .arg(&text)
            .arg(&p)
            .status()
            .unwrap();
        assert!(ok.success());
        (dir, p)
    }

    fn run(program: &Path) -> Result<Option<Credentials>, CredentialError> {
        block(from_helper(
            program,
            "t",
            "credsStore",
            "c.json",
            "reg.test:5000",
        ))
    }

    #[test]
    fn a_helper_is_asked_with_the_server_on_stdin() {
        let (_d, p) = helper(
            r#"[ "$1" = get ] || exit 3
read -r server || true
[ "$server" = "reg.test:5000" ] || { echo "wrong server $server"; exit 1; }
echo '{"ServerURL":"reg.test:5000","Username":"fleet","Secret":"s3cret"}'"#,
        );
        let c = run(&p).unwrap().unwrap();
        assert_eq!(c.username.as_deref(), Some("fleet"));
        assert_eq!(c.password.as_deref(), Some("s3cret"));
        assert_eq!(c.server, "reg.test:5000");
        assert_eq!(c.identity_token, None);
    }

    #[test]
    fn a_token_username_means_an_identity_token() {
        let (_d, p) = helper(r#"echo '{"ServerURL":"x","Username":"<token>","Secret":"tok"}'"#);
        let c = run(&p).unwrap().unwrap();
        assert_eq!(c.identity_token.as_deref(), Some("tok"));
        assert_eq!((c.username, c.password), (None, None));
    }

    #[test]
    fn not_found_in_the_keychain_is_anonymous() {
        let (_d, p) = helper("echo 'credentials not found in native keychain'; exit 1");
        assert_eq!(run(&p), Ok(None));
    }

    #[test]
    fn helper_errors_name_the_helper_and_never_the_secret() {
        let missing = run(Path::new("/nonexistent/docker-credential-t")).unwrap_err();
        assert!(
            matches!(missing, CredentialError::Missing { .. }),
            "{missing}"
        );
        assert!(
            missing.to_string().contains("docker-credential-t"),
            "{missing}"
        );
        assert!(missing.to_string().contains("install it"), "{missing}");

        let (_d, p) = helper("echo 'keychain locked' >&2; exit 2");
        let failed = run(&p).unwrap_err().to_string();
        assert!(
            failed.contains("docker-credential-t failed for reg.test:5000"),
            "{failed}"
        );
        assert!(failed.contains("keychain locked"), "{failed}");
        assert!(failed.contains("docker login reg.test:5000"), "{failed}");

        let (_d, p) = helper("echo 'Secret: hunter2'; exit 1");
        let failed = run(&p).unwrap_err().to_string();
        assert!(!failed.contains("hunter2"), "{failed}");

        let (_d, p) = helper(r#"echo '{"Username":"u","Secret":12345}'"#);
        let bad = run(&p).unwrap_err().to_string();
        assert!(bad.contains("`Secret` that is not a string"), "{bad}");
        assert!(!bad.contains("12345"), "{bad}");
        let (_d, p) = helper("echo 'user=u password=hunter2'");
        let bad = run(&p).unwrap_err().to_string();
        assert!(bad.contains("not JSON"), "{bad}");
        assert!(!bad.contains("hunter2"), "{bad}");
    }
}
