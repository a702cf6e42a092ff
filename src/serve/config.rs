//! `serve.yaml`: the console's configuration — where it keeps its state, what it follows, whom
//! it trusts (proxies, the OpenID provider) and who gets which role. Read once at start, checked
//! whole: an unknown key is named, and a secret never lives here (the OpenID client secret comes
//! from the environment variable the file names), so the file can be committed and reviewed.
//!
//! Relative paths (`state_dir`, `age_identities`) are read from the file's directory.

use super::rights::RoleMapping;
use crate::secrets::Secret;
use indexmap::IndexMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// The console's configuration, checked and with its defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    /// The file it was read from.
    pub file: PathBuf,
    /// Sessions, tokens and the clone (default: `fleetpin-serve` beside the file).
    pub state_dir: PathBuf,
    /// The reference to follow (`--repo` wins); none: the current repository.
    pub repo: Option<String>,
    /// Its branch; none: the repository's default branch.
    pub branch: Option<String>,
    /// The manifest's path inside the repository (default `platform.yaml`).
    pub manifest: PathBuf,
    /// Peers whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed.
    pub trusted_proxies: Vec<IpRange>,
    /// The address people reach the console at (no trailing slash), e.g. behind a proxy.
    pub public_url: Option<String>,
    pub oidc: Option<OidcConfig>,
    /// Token sign-in to the pages, for when the OpenID provider is down (off by default).
    pub break_glass: bool,
    /// Environment → age identity file, to open its SOPS secrets; an environment without one
    /// has its secrets unchecked and no action offered.
    pub age_identities: IndexMap<String, PathBuf>,
    pub session: SessionConfig,
}

/// OpenID Connect sign-in (authorization code flow with PKCE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcConfig {
    /// The provider's issuer URL (`iss`); discovery at `ISSUER/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    /// The NAME of the environment variable holding the client secret (none: a public client).
    pub client_secret_env: Option<String>,
    pub redirect_url: Option<String>,
    /// Always holds `openid` (default: `openid email profile`).
    pub scopes: Vec<String>,
    /// The ID token claim listing the person's groups (default `groups`).
    pub groups_claim: String,
    /// Which group gets which role on which environments.
    pub roles: Vec<RoleMapping>,
}

impl OidcConfig {
    /// The client secret, from the environment variable `client_secret_env` names.
    pub fn client_secret(&self) -> Result<Option<Secret>, ConfigError> {
        self.client_secret_from(|name| std::env::var(name).ok())
    }

    /// As [`client_secret`](Self::client_secret), with the environment given.
    pub fn client_secret_from(
        &self,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Secret>, ConfigError> {
        let Some(name) = &self.client_secret_env else {
            return Ok(None);
        };
        match var(name) {
            Some(v) if !v.is_empty() => Ok(Some(Secret::new(v))),
            _ => Err(ConfigError::MissingSecret { var: name.clone() }),
        }
    }
}

/// How long a signed-in session lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// Ended after this long without a request (default 1h).
    pub idle: Duration,
    /// Ended this long after sign-in whatever happens (default 12h).
    pub max: Duration,
}

impl Default for SessionConfig {
    fn default() -> SessionConfig {
        SessionConfig {
            idle: Duration::from_secs(3600),
            max: Duration::from_secs(12 * 3600),
        }
    }
}

/// An address or a CIDR block (`10.0.0.0/8`, `::1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpRange {
    /// Whether `ip` is in the block (an IPv4-mapped IPv6 address counts as its IPv4 one).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr.to_canonical(), ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpRange {
    type Err = String;

    fn from_str(s: &str) -> Result<IpRange, String> {
        let bad = || format!("`{s}` is not an IP address or a CIDR block (10.0.0.0/8, ::1)");
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        // A mapped address is stored as the IPv4 one it is, with its prefix narrowed to match.
        let (addr, max, shift) = match addr {
            IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => (addr.to_canonical(), 32, 96),
            IpAddr::V4(_) => (addr, 32, 0),
            IpAddr::V6(_) => (addr, 128, 0),
        };
        let prefix = match prefix {
            None => max,
            Some(p) => {
                let p: u8 = p.trim().parse().map_err(|_| bad())?;
                if p < shift || p - shift > max {
                    return Err(bad());
                }
                p - shift
            }
        };
        Ok(IpRange { addr, prefix })
    }
}

impl std::fmt::Display for IpRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Why serve.yaml could not be used. Messages name the key at fault; none quotes a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read it: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error(
        "the environment variable {var} (named by oidc.client_secret_env in serve.yaml) is not set or empty"
    )]
    MissingSecret { var: String },
}

/// The file as written; `deny_unknown_fields` names a misspelt key.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    state_dir: Option<PathBuf>,
    #[serde(default)]
    repo: Option<String>,
    #[serde(default)]
    branch: Option<String>,
    #[serde(default)]
    manifest: Option<String>,
    #[serde(default)]
    trusted_proxies: Vec<String>,
    #[serde(default)]
    public_url: Option<String>,
    #[serde(default)]
    oidc: Option<RawOidc>,
    #[serde(default)]
    break_glass: bool,
    #[serde(default)]
    age_identities: IndexMap<String, PathBuf>,
    #[serde(default)]
    session: Option<RawSession>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOidc {
    issuer: String,
    client_id: String,
    /// Read only to be refused: its value is never looked at.
    #[serde(default)]
    client_secret: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    client_secret_env: Option<String>,
    #[serde(default)]
    redirect_url: Option<String>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default)]
    groups_claim: Option<String>,
    #[serde(default)]
    roles: Vec<RoleMapping>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSession {
    #[serde(default)]
    idle: Option<String>,
    #[serde(default)]
    max: Option<String>,
}

/// serve.yaml is small; anything bigger is not one.
const MAX_FILE_BYTES: u64 = 1 << 20;

impl ServeConfig {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<ServeConfig, ConfigError> {
        let read_err = |e: std::io::Error| ConfigError::Read {
            path: path.to_path_buf(),
            reason: if e.kind() == std::io::ErrorKind::NotFound {
                "no such file (write one, even empty: docs/console.md lists its keys; or pass --config)"
                    .into()
            } else {
                e.to_string()
            },
        };
        let meta = std::fs::metadata(path).map_err(read_err)?;
        if meta.len() > MAX_FILE_BYTES {
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                message: format!("{} bytes is too big for serve.yaml", meta.len()),
            });
        }
        let text = std::fs::read_to_string(path).map_err(read_err)?;
        ServeConfig::parse(path, &text)
    }

    /// Checks `text` as the content of `path` (relative paths are read from its directory).
    pub fn parse(path: &Path, text: &str) -> Result<ServeConfig, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let blank = text
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
        let raw: RawConfig = if blank {
            RawConfig::default()
        } else {
            let mut options = serde_saphyr::Options::default();
            options.with_snippet = false;
            serde_saphyr::from_str_with_options(text, options)
                .map_err(|e| invalid(e.to_string()))?
        };
        let base = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };

        let manifest = raw.manifest.unwrap_or_else(|| "platform.yaml".into());
        let mp = Path::new(&manifest);
        if manifest.is_empty()
            || mp.is_absolute()
            || mp
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(invalid(format!(
                "manifest: `{manifest}` is not a path inside the repository (relative, no `..`)"
            )));
        }
        let trusted_proxies = raw
            .trusted_proxies
            .iter()
            .map(|s| s.parse::<IpRange>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("trusted_proxies: {e}")))?;
        let public_url = match raw.public_url {
            None => None,
            Some(u) => Some(web_url("public_url", &u).map_err(invalid)?),
        };
        for (key, value) in [("repo", &raw.repo), ("branch", &raw.branch)] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(invalid(format!("{key}: empty (leave the key out instead)")));
            }
        }
        let oidc = raw.oidc.map(oidc).transpose().map_err(invalid)?;
        let session = session(raw.session).map_err(invalid)?;
        if let Some(env) = raw.age_identities.keys().find(|e| e.trim().is_empty()) {
            return Err(invalid(format!(
                "age_identities: `{env}` is not an environment name"
            )));
        }
        Ok(ServeConfig {
            file: path.to_path_buf(),
            state_dir: base.join(
                raw.state_dir
                    .unwrap_or_else(|| PathBuf::from("fleetpin-serve")),
            ),
            repo: raw.repo,
            branch: raw.branch,
            manifest: PathBuf::from(manifest),
            trusted_proxies,
            public_url,
            oidc,
            break_glass: raw.break_glass,
            age_identities: raw
                .age_identities
                .into_iter()
                .map(|(env, p)| (env, base.join(p)))
                .collect(),
            session,
        })
    }

    /// Creates the state directory (see [`create_state_dir`]).
    pub fn create_state_dir(&self) -> std::io::Result<()> {
        create_state_dir(&self.state_dir)
    }

    /// Where the API tokens are kept.
    pub fn tokens_path(&self) -> PathBuf {
        self.state_dir.join("tokens.json")
    }

    /// The age identity file of `env`, if the console holds one.
    pub fn age_identity(&self, env: &str) -> Option<&Path> {
        self.age_identities.get(env).map(|p| p.as_path())
    }
}

/// Creates a state directory when missing: mode 0700, with a `.gitignore` of `*`, since by
/// default it sits beside serve.yaml, often in a repository, and its tokens and sessions must
/// never be committed. An existing directory is left as it is.
pub fn create_state_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::write(
        dir.join(".gitignore"),
        "# fleetpin serve's state (sessions, token hashes): never committed\n*\n",
    )
}

/// An `http(s)://` URL, without its trailing slash.
fn web_url(key: &str, url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') && !url.contains(char::is_whitespace) => {
            Ok(url.trim_end_matches('/').to_string())
        }
        _ => Err(format!("{key}: `{url}` is not an http:// or https:// URL")),
    }
}

/// Plain http is for a provider on this machine (tests, a local proxy) only.
fn is_loopback_url(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host == "localhost"
        || host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

fn oidc(raw: RawOidc) -> Result<OidcConfig, String> {
    if raw.client_secret.is_some() {
        return Err(
            "oidc.client_secret: secrets come from the environment: use client_secret_env \
                    (the name of an environment variable that holds it)"
                .into(),
        );
    }
    let issuer = web_url("oidc.issuer", &raw.issuer)?;
    if !issuer.starts_with("https://") && !is_loopback_url(&issuer) {
        return Err(format!(
            "oidc.issuer: `{issuer}` must be https:// (plain http only on localhost)"
        ));
    }
    if raw.client_id.trim().is_empty() {
        return Err("oidc.client_id: empty".into());
    }
    if let Some(var) = &raw.client_secret_env {
        let ok = !var.is_empty()
            && !var.starts_with(|c: char| c.is_ascii_digit())
            && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            // The value is not repeated: it may be the secret pasted in the wrong key.
            return Err(
                "oidc.client_secret_env: the name of an environment variable (letters, \
                        digits and _, e.g. FLEETPIN_OIDC_SECRET), not the secret itself"
                    .into(),
            );
        }
    }
    let redirect_url = raw
        .redirect_url
        .map(|u| web_url("oidc.redirect_url", &u))
        .transpose()?;
    let scopes = raw
        .scopes
        .unwrap_or_else(|| vec!["openid".into(), "email".into(), "profile".into()]);
    if !scopes.iter().any(|s| s == "openid") {
        return Err("oidc.scopes: must include `openid`".into());
    }
    if let Some(s) = scopes.iter().find(|s| s.is_empty() || s.contains(' ')) {
        return Err(format!("oidc.scopes: `{s}` is not one scope"));
    }
    let groups_claim = raw.groups_claim.unwrap_or_else(|| "groups".into());
    if groups_claim.trim().is_empty() {
        return Err("oidc.groups_claim: empty".into());
    }
    for m in &raw.roles {
        if m.group.trim().is_empty() {
            return Err("oidc.roles: a mapping has an empty group".into());
        }
        if m.envs.as_ref().is_some_and(|e| e.is_empty()) {
            return Err(format!(
                "oidc.roles: group `{}` has an empty envs list (leave it out for all environments)",
                m.group
            ));
        }
    }
    Ok(OidcConfig {
        issuer,
        client_id: raw.client_id,
        client_secret_env: raw.client_secret_env,
        redirect_url,
        scopes,
        groups_claim,
        roles: raw.roles,
    })
}

fn session(raw: Option<RawSession>) -> Result<SessionConfig, String> {
    let d = SessionConfig::default();
    let Some(raw) = raw else { return Ok(d) };
    let read = |key: &str, v: Option<String>, default: Duration| -> Result<Duration, String> {
        match v {
            None => Ok(default),
            Some(text) => match humantime::parse_duration(text.trim()) {
                Ok(d) if d.as_secs() > 0 => Ok(d),
                Ok(_) => Err(format!("session.{key}: must be longer than zero")),
                Err(_) => Err(format!(
                    "session.{key}: `{text}` is not a duration (e.g. 30m, 1h, 12h)"
                )),
            },
        }
    };
    let idle = read("idle", raw.idle, d.idle)?;
    let max = read("max", raw.max, d.max)?;
    if idle > max {
        return Err(format!(
            "session.idle ({}) is longer than session.max ({})",
            humantime::format_duration(idle),
            humantime::format_duration(max)
        ));
    }
    Ok(SessionConfig { idle, max })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::rights::Role;

    fn parse(text: &str) -> Result<ServeConfig, ConfigError> {
        ServeConfig::parse(Path::new("/etc/fleetpin/serve.yaml"), text)
    }

    fn message(text: &str) -> String {
        match parse(text) {
            Err(ConfigError::Invalid { message, .. }) => message,
            other => panic!("expected an invalid file, got {other:?}"),
        }
    }

    const FULL: &str = r#"
state_dir: /var/lib/fleetpin
repo: git@git.acme.example:ops/platform.git
branch: main
manifest: deploy/platform.yaml
trusted_proxies: [10.0.0.0/8, "::1", 192.168.1.7]
public_url: https://fleet.acme.example/
oidc:
  issuer: https://sso.acme.example/realms/acme
  client_id: fleetpin
  client_secret_env: FLEETPIN_OIDC_SECRET
  redirect_url: https://fleet.acme.example/auth/callback
  scopes: [openid, email, groups]
  groups_claim: roles
  roles:
    - {group: devs, role: view}
    - {group: devs, role: deploy, envs: [recette]}
    - {group: ops, role: admin}
break_glass: true
age_identities:
  prod: keys/prod.txt
  recette: /etc/fleetpin/recette.txt
session:
  idle: 30m
  max: 8h
"#;

    #[test]
    fn a_full_file_reads_with_every_key() {
        let c = parse(FULL).unwrap();
        assert_eq!(c.file, Path::new("/etc/fleetpin/serve.yaml"));
        assert_eq!(c.state_dir, Path::new("/var/lib/fleetpin"));
        assert_eq!(c.tokens_path(), Path::new("/var/lib/fleetpin/tokens.json"));
        assert_eq!(
            c.repo.as_deref(),
            Some("git@git.acme.example:ops/platform.git")
        );
        assert_eq!(c.branch.as_deref(), Some("main"));
        assert_eq!(c.manifest, Path::new("deploy/platform.yaml"));
        assert_eq!(c.trusted_proxies.len(), 3);
        assert_eq!(c.public_url.as_deref(), Some("https://fleet.acme.example"));
        assert!(c.break_glass);
        let o = c.oidc.as_ref().unwrap();
        assert_eq!(o.issuer, "https://sso.acme.example/realms/acme");
        assert_eq!(o.client_id, "fleetpin");
        assert_eq!(o.client_secret_env.as_deref(), Some("FLEETPIN_OIDC_SECRET"));
        assert_eq!(
            o.redirect_url.as_deref(),
            Some("https://fleet.acme.example/auth/callback")
        );
        assert_eq!(o.scopes, vec!["openid", "email", "groups"]);
        assert_eq!(o.groups_claim, "roles");
        assert_eq!(o.roles.len(), 3);
        assert_eq!(o.roles[1].role, Role::Deploy);
        assert_eq!(o.roles[1].envs, Some(vec!["recette".to_string()]));
        assert_eq!(o.roles[0].envs, None);
        assert_eq!(
            c.age_identity("prod"),
            Some(Path::new("/etc/fleetpin/keys/prod.txt"))
        );
        assert_eq!(
            c.age_identity("recette"),
            Some(Path::new("/etc/fleetpin/recette.txt"))
        );
        assert_eq!(c.age_identity("preprod"), None);
        assert_eq!(c.session.idle, Duration::from_secs(1800));
        assert_eq!(c.session.max, Duration::from_secs(8 * 3600));
    }

    #[test]
    fn an_empty_file_takes_every_default() {
        for text in ["", "\n", "# nothing yet\n", "{}"] {
            let c = parse(text).unwrap();
            assert_eq!(c.state_dir, Path::new("/etc/fleetpin/fleetpin-serve"));
            assert_eq!(c.manifest, Path::new("platform.yaml"));
            assert_eq!(c.repo, None);
            assert_eq!(c.branch, None);
            assert!(c.trusted_proxies.is_empty());
            assert_eq!(c.public_url, None);
            assert_eq!(c.oidc, None);
            assert!(!c.break_glass);
            assert!(c.age_identities.is_empty());
            assert_eq!(c.session.idle, Duration::from_secs(3600));
            assert_eq!(c.session.max, Duration::from_secs(12 * 3600));
        }
    }

    #[test]
    fn relative_paths_are_read_beside_the_file() {
        let c = ServeConfig::parse(
            Path::new("serve.yaml"),
            "state_dir: state\nage_identities: {prod: prod.key}\n",
        )
        .unwrap();
        assert_eq!(c.state_dir, Path::new("./state"));
        assert_eq!(c.age_identity("prod"), Some(Path::new("./prod.key")));
        let d = ServeConfig::parse(Path::new("conf/serve.yaml"), "").unwrap();
        assert_eq!(d.state_dir, Path::new("conf/fleetpin-serve"));
    }

    #[test]
    fn oidc_defaults() {
        let c = parse("oidc: {issuer: 'https://sso.example', client_id: fp}\n").unwrap();
        let o = c.oidc.unwrap();
        assert_eq!(o.scopes, vec!["openid", "email", "profile"]);
        assert_eq!(o.groups_claim, "groups");
        assert!(o.roles.is_empty());
        assert_eq!(o.client_secret_env, None);
        assert_eq!(o.redirect_url, None);
        assert_eq!(o.client_secret().unwrap(), None);
    }

    #[test]
    fn unknown_keys_are_named() {
        for (text, key) in [
            ("stat_dir: /x\n", "stat_dir"),
            (
                "oidc: {issuer: 'https://s', client_id: c, isuer: x}\n",
                "isuer",
            ),
            ("session: {idel: 1h}\n", "idel"),
            (
                "oidc: {issuer: 'https://s', client_id: c, roles: [{group: g, role: view, env: [prod]}]}\n",
                "env",
            ),
        ] {
            let m = message(text);
            assert!(m.contains(key), "{key} not named in: {m}");
            assert!(m.contains("unknown field"), "{m}");
        }
    }

    #[test]
    fn a_client_secret_in_the_file_is_refused_without_repeating_it() {
        let m = message(
            "oidc:\n  issuer: https://sso.example\n  client_id: fp\n  client_secret: s3cr3t-value\n",
        );
        assert!(
            m.contains("secrets come from the environment: use client_secret_env"),
            "{m}"
        );
        assert!(!m.contains("s3cr3t-value"), "{m}");
    }

    #[test]
    fn client_secret_env_is_a_variable_name_read_from_the_environment() {
        let c = parse(
            "oidc: {issuer: 'https://sso.example', client_id: fp, client_secret_env: FP_SECRET}\n",
        )
        .unwrap();
        let o = c.oidc.unwrap();
        let got = o
            .client_secret_from(|n| (n == "FP_SECRET").then(|| "value-1".to_string()))
            .unwrap()
            .unwrap();
        assert_eq!(got.expose(), "value-1");
        let e = o.client_secret_from(|_| None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the environment variable FP_SECRET (named by oidc.client_secret_env in serve.yaml) is not set or empty"
        );
        assert!(o.client_secret_from(|_| Some(String::new())).is_err());
        // A pasted secret is not a variable name, and is not repeated.
        let m = message(
            "oidc: {issuer: 'https://sso.example', client_id: fp, client_secret_env: 'aB3$x/9+z='}\n",
        );
        assert!(m.contains("not the secret itself"), "{m}");
        assert!(!m.contains("aB3$x"), "{m}");
    }

    #[test]
    fn the_issuer_is_https_except_on_localhost() {
        assert!(message("oidc: {issuer: 'http://sso.example', client_id: fp}\n").contains("https"));
        assert!(message("oidc: {issuer: 'sso.example', client_id: fp}\n").contains("oidc.issuer"));
        for ok in [
            "http://localhost:9000",
            "http://127.0.0.1:9000/oidc",
            "http://[::1]:9000",
            "https://sso.example",
        ] {
            assert!(
                parse(&format!("oidc: {{issuer: '{ok}', client_id: fp}}\n")).is_ok(),
                "{ok}"
            );
        }
        assert!(
            message("oidc: {issuer: 'http://localhost.evil.example', client_id: fp}\n")
                .contains("https")
        );
    }

    #[test]
    fn oidc_needs_its_keys_and_openid_in_its_scopes() {
        assert!(message("oidc: {client_id: fp}\n").contains("issuer"));
        assert!(message("oidc: {issuer: 'https://s'}\n").contains("client_id"));
        assert!(message("oidc: {issuer: 'https://s', client_id: ' '}\n").contains("client_id"));
        assert!(
            message("oidc: {issuer: 'https://s', client_id: c, scopes: [email]}\n")
                .contains("openid")
        );
        assert!(
            message(
                "oidc: {issuer: 'https://s', client_id: c, roles: [{group: g, role: owner}]}\n"
            )
            .contains("owner")
        );
        assert!(
            message("oidc: {issuer: 'https://s', client_id: c, roles: [{group: g, role: view, envs: []}]}\n")
                .contains("empty envs")
        );
    }

    #[test]
    fn trusted_proxies_are_addresses_or_blocks() {
        let c =
            parse("trusted_proxies: [10.1.0.0/16, '::1', '::ffff:192.168.0.0/120', 172.16.0.9]\n")
                .unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // As the console judges a peer (`oidc::Transport::trusts`): in any of the blocks.
        let trusts = |c: &ServeConfig, a: IpAddr| c.trusted_proxies.iter().any(|r| r.contains(a));
        assert!(trusts(&c, ip("10.1.200.3")));
        assert!(!trusts(&c, ip("10.2.0.1")));
        assert!(trusts(&c, ip("::1")));
        assert!(!trusts(&c, ip("::2")));
        assert!(trusts(&c, ip("192.168.0.77")));
        assert!(
            trusts(&c, ip("::ffff:10.1.0.1")),
            "a mapped address is its IPv4 one"
        );
        assert!(trusts(&c, ip("172.16.0.9")));
        assert!(!trusts(&c, ip("172.16.0.10")));
        assert!(!trusts(&c, ip("127.0.0.1")));
        let all = parse("trusted_proxies: [0.0.0.0/0]\n").unwrap();
        assert!(trusts(&all, ip("8.8.8.8")));
        assert!(!trusts(&all, ip("2001:db8::1")));
        for bad in [
            "10.0.0.0/33",
            "fleet.example",
            "10.0.0/8",
            "::1/129",
            "1.2.3.4/x",
        ] {
            let m = message(&format!("trusted_proxies: ['{bad}']\n"));
            assert!(m.contains("trusted_proxies") && m.contains(bad), "{m}");
        }
        assert!(
            parse("trusted_proxies: []\n")
                .unwrap()
                .trusted_proxies
                .is_empty()
        );
    }

    #[test]
    fn session_lengths_are_durations_idle_within_max() {
        let c = parse("session: {idle: 15m}\n").unwrap();
        assert_eq!(c.session.idle, Duration::from_secs(900));
        assert_eq!(c.session.max, Duration::from_secs(12 * 3600));
        assert!(message("session: {idle: soon}\n").contains("session.idle"));
        assert!(message("session: {max: 0s}\n").contains("session.max"));
        assert!(message("session: {idle: 2h, max: 1h}\n").contains("longer than session.max"));
    }

    #[test]
    fn the_manifest_is_a_path_inside_the_repository() {
        assert!(message("manifest: /etc/platform.yaml\n").contains("manifest"));
        assert!(message("manifest: ../platform.yaml\n").contains("manifest"));
        assert!(message("manifest: ''\n").contains("manifest"));
        assert_eq!(
            parse("manifest: ops/platform.yaml\n").unwrap().manifest,
            Path::new("ops/platform.yaml")
        );
    }

    #[test]
    fn urls_and_values_are_checked() {
        assert!(message("public_url: fleet.example\n").contains("public_url"));
        assert!(message("branch: ''\n").contains("branch"));
        // A wrong type is located (the parser does not name the key).
        assert!(message("break_glass: maybe\n").contains("line 1, column 14"));
        assert!(
            message("oidc: {issuer: 'https://s', client_id: c, redirect_url: '/cb'}\n")
                .contains("redirect_url")
        );
    }

    #[test]
    fn a_missing_file_says_what_to_do() {
        let d = tempfile::tempdir().unwrap();
        let e = ServeConfig::load(&d.path().join("serve.yaml")).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }));
        assert!(e.to_string().contains("no such file"), "{e}");
        std::fs::write(d.path().join("serve.yaml"), "break_glass: true\n").unwrap();
        let c = ServeConfig::load(&d.path().join("serve.yaml")).unwrap();
        assert!(c.break_glass);
        assert_eq!(c.state_dir, d.path().join("fleetpin-serve"));
    }
}
