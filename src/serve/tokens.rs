//! API tokens for scripts: created with a secret shown once, stored hashed.
//!
//! A token's secret is `fpt_` and 32 random bytes (base64url, no padding): guessing one is out of
//! reach, so a plain SHA-256 of it is enough to store (no slow hash: it protects nothing a random
//! secret does not). The store is one JSON file, `STATE_DIR/tokens.json`, mode 0600 in a 0700
//! directory, replaced atomically (a temp file renamed) under an advisory lock, so the
//! command line can create and revoke tokens while the server reads them: the server sees a
//! revocation on its next request (the rename gives the file a new inode, which it checks).
//! The directory gets a `.gitignore` of `*`: by default it sits beside serve.yaml, often in a
//! repository.
//!
//! No secret reaches a message, a Debug output or the file: [`TokenSecret`] redacts itself and no
//! error carries one.

use super::rights::{Grant, Principal, Role};
use sha2::{Digest, Sha256};
use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// What every secret starts with, so a leaked one is recognisable (secret scanners, logs).
pub const SECRET_PREFIX: &str = "fpt_";

/// The file's layout version.
const VERSION: u32 = 1;

/// `last_used` is written at most this often per token: a script polling every second must not
/// rewrite the file every second.
const LAST_USED_EVERY: Duration = Duration::from_secs(60);

/// A token as it is listed: everything but its secret and hash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TokenInfo {
    pub name: String,
    /// A random, public identifier: the token's subject in the logs and commit trailers.
    pub id: String,
    pub role: Role,
    /// The environments it applies to; `null`: all of them.
    pub envs: Option<Vec<String>>,
    #[serde(with = "rfc3339")]
    pub created_at: SystemTime,
    /// `null`: valid until revoked.
    #[serde(with = "rfc3339_opt")]
    pub expires_at: Option<SystemTime>,
    #[serde(default, with = "rfc3339_opt")]
    pub last_used: Option<SystemTime>,
}

impl TokenInfo {
    /// Who the token is: `token:NAME`, its id as subject, its role on its environments.
    pub fn principal(&self) -> Principal {
        Principal {
            id: format!("token:{}", self.name),
            subject: self.id.clone(),
            grants: vec![Grant {
                role: self.role,
                envs: self.envs.clone(),
            }],
        }
    }

    /// Expired at `now` (a token is refused from its expiry on).
    pub fn is_expired(&self, now: SystemTime) -> bool {
        self.expires_at.is_some_and(|t| now >= t)
    }
}

/// A token's secret, as `create` gives it once. Never printed by Debug; no Display.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecret(String);

impl TokenSecret {
    /// The secret itself, for the one place that shows it (the command line, once).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret(***)")
    }
}

/// Why a token could not be created, revoked or read. No variant holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error(
        "a token named `{0}` exists already: pick another name, or revoke it first (fleetpin serve token revoke {0})"
    )]
    NameTaken(String),
    #[error("no token named `{0}` (fleetpin serve token list shows them)")]
    NotFound(String),
    #[error(
        "`{0}` cannot name a token: use 1 to {MAX_NAME} letters, digits, `.`, `_` or `-`, not starting with `-`"
    )]
    InvalidName(String),
    #[error("an environment name cannot be empty")]
    EmptyEnvironment,
    #[error("--expires must be longer than zero")]
    ZeroExpiry,
    #[error("--expires is too far in the future")]
    ExpiryTooFar,
    #[error("{path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("{path} is not a token store fleetpin can read: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("the operating system gave no random bytes: {0}")]
    Random(String),
}

const MAX_NAME: usize = 64;

/// One token in the file: what is listed, and the SHA-256 (hex) of its secret.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Record {
    #[serde(flatten)]
    info: TokenInfo,
    sha256: String,
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The hash is no secret, but it has nothing to tell a reader either.
        f.debug_struct("Record").field("info", &self.info).finish()
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoreFile {
    version: u32,
    tokens: Vec<Record>,
}

/// Which file was read last: a replaced file (rename: new inode) or an edited one differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl Stamp {
    fn of(m: &fs::Metadata) -> Stamp {
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.size(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
        }
    }
}

/// The tokens of one console. `verify` is cheap on every request: the file is read again only
/// when it changed.
#[derive(Debug)]
pub struct TokenStore {
    path: PathBuf,
    cache: Mutex<Option<(Stamp, Arc<Vec<Record>>)>>,
}

impl TokenStore {
    /// The store at `path` (`STATE_DIR/tokens.json`); nothing is read or created yet.
    pub fn new(path: impl Into<PathBuf>) -> TokenStore {
        TokenStore {
            path: path.into(),
            cache: Mutex::new(None),
        }
    }

    /// The store of a console's configuration.
    pub fn for_config(config: &super::config::ServeConfig) -> TokenStore {
        TokenStore::new(config.tokens_path())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A new token; its secret is returned here and nowhere else (the file keeps its hash).
    /// `envs` empty: all environments.
    pub fn create(
        &self,
        name: &str,
        role: Role,
        envs: &[String],
        expires: Option<Duration>,
        now: SystemTime,
    ) -> Result<(TokenInfo, TokenSecret), TokenError> {
        check_name(name)?;
        if envs.iter().any(|e| e.trim().is_empty()) {
            return Err(TokenError::EmptyEnvironment);
        }
        let mut unique: Vec<String> = Vec::new();
        for e in envs {
            if !unique.contains(e) {
                unique.push(e.clone());
            }
        }
        // Whole seconds, as the file keeps them.
        let created_at = crate::clock::from_unix(crate::clock::unix(now));
        let expires_at = match expires {
            None => None,
            Some(d) if d.as_secs() == 0 => return Err(TokenError::ZeroExpiry),
            Some(d) => Some(
                created_at
                    .checked_add(Duration::from_secs(d.as_secs()))
                    .filter(|t| crate::clock::unix(*t) < 253_402_300_800) // year 10000
                    .ok_or(TokenError::ExpiryTooFar)?,
            ),
        };

        self.ensure_dir()?;
        let _lock = self.lock()?;
        let mut records = self.read()?;
        if records.iter().any(|r| r.info.name == name) {
            return Err(TokenError::NameTaken(name.to_string()));
        }
        let secret = TokenSecret(format!("{SECRET_PREFIX}{}", {
            use base64::Engine as _;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random::<32>()?)
        }));
        let id = loop {
            let id = format!("tok_{}", hex::encode(random::<6>()?));
            if !records.iter().any(|r| r.info.id == id) {
                break id;
            }
        };
        let info = TokenInfo {
            name: name.to_string(),
            id,
            role,
            envs: if unique.is_empty() {
                None
            } else {
                Some(unique)
            },
            created_at,
            expires_at,
            last_used: None,
        };
        records.push(Record {
            info: info.clone(),
            sha256: digest(secret.expose()),
        });
        self.write(&records)?;
        Ok((info, secret))
    }

    /// Every token, in the order they were created (expired ones too: `is_expired` tells).
    pub fn list(&self) -> Result<Vec<TokenInfo>, TokenError> {
        Ok(self.read()?.into_iter().map(|r| r.info).collect())
    }

    /// Removes the token named `name`; it is refused from the server's next request on.
    pub fn revoke(&self, name: &str) -> Result<TokenInfo, TokenError> {
        // No store, no token (and no directory created for nothing).
        if !self.dir().is_dir() {
            return Err(TokenError::NotFound(name.to_string()));
        }
        let _lock = self.lock()?;
        let mut records = self.read()?;
        let at = records
            .iter()
            .position(|r| r.info.name == name)
            .ok_or_else(|| TokenError::NotFound(name.to_string()))?;
        let gone = records.remove(at);
        self.write(&records)?;
        Ok(gone.info)
    }

    /// The token whose secret this is, unless it expired. Hashes are compared in constant time;
    /// a store that cannot be read accepts nothing (and says why in the log).
    pub fn verify(&self, secret: &str, now: SystemTime) -> Option<TokenInfo> {
        let presented = digest(secret);
        let records = match self.cached() {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("API tokens refused: {e}");
                return None;
            }
        };
        let mut found = None;
        // Every hash is compared, so the time taken does not say which one came close.
        for r in records.iter() {
            if ct_eq(presented.as_bytes(), r.sha256.as_bytes()) && found.is_none() {
                found = Some(&r.info);
            }
        }
        found.filter(|i| !i.is_expired(now)).cloned()
    }

    /// Notes that the token named `name` was used at `now`; written at most once a minute per
    /// token. A token revoked meanwhile is left gone.
    pub fn record_use(&self, name: &str, now: SystemTime) -> Result<(), TokenError> {
        let stale = |r: &Record| match r.info.last_used {
            None => true,
            Some(t) => now.duration_since(t).unwrap_or_default() >= LAST_USED_EVERY,
        };
        if !self
            .cached()?
            .iter()
            .any(|r| r.info.name == name && stale(r))
        {
            return Ok(());
        }
        let _lock = self.lock()?;
        let mut records = self.read()?;
        match records.iter_mut().find(|r| r.info.name == name) {
            Some(r) if stale(r) => {
                r.info.last_used = Some(crate::clock::from_unix(crate::clock::unix(now)));
                self.write(&records)
            }
            _ => Ok(()),
        }
    }

    fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    fn io(&self, path: &Path, e: std::io::Error) -> TokenError {
        TokenError::Io {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    }

    /// The state directory, created 0700 (with its `.gitignore`) when missing; an existing one
    /// is left as it is.
    fn ensure_dir(&self) -> Result<(), TokenError> {
        let dir = self.dir();
        super::config::create_state_dir(&dir).map_err(|e| self.io(&dir, e))
    }

    fn lock_path(&self) -> PathBuf {
        let mut name = self
            .path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        name.push(".lock");
        self.dir().join(name)
    }

    /// The writers' lock (flock on `tokens.json.lock`): creations and revocations from two
    /// processes do not lose each other's changes. Released when dropped.
    fn lock(&self) -> Result<fs::File, TokenError> {
        let path = self.lock_path();
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| self.io(&path, e))?;
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor this function owns; the lock goes with the file.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(self.io(&path, std::io::Error::last_os_error()));
        }
        Ok(f)
    }

    /// The file as it is now (no file: no token).
    fn read(&self) -> Result<Vec<Record>, TokenError> {
        match fs::File::open(&self.path) {
            Ok(f) => self.read_open(f).map(|(_, r)| r),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(self.io(&self.path, e)),
        }
    }

    fn read_open(&self, mut f: fs::File) -> Result<(Stamp, Vec<Record>), TokenError> {
        let meta = f.metadata().map_err(|e| self.io(&self.path, e))?;
        let mut text = String::new();
        f.read_to_string(&mut text)
            .map_err(|e| self.io(&self.path, e))?;
        let file: StoreFile = serde_json::from_str(&text).map_err(|e| TokenError::Corrupt {
            path: self.path.clone(),
            // Where only: the parser's messages may quote what the file holds.
            reason: format!("not valid at line {}, column {}", e.line(), e.column()),
        })?;
        if file.version != VERSION {
            return Err(TokenError::Corrupt {
                path: self.path.clone(),
                reason: format!(
                    "version {} (this fleetpin reads version {VERSION})",
                    file.version
                ),
            });
        }
        Ok((Stamp::of(&meta), file.tokens))
    }

    /// The records, read again only when the file changed since the last call.
    fn cached(&self) -> Result<Arc<Vec<Record>>, TokenError> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let f = match fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                *cache = None;
                return Ok(Arc::new(Vec::new()));
            }
            Err(e) => return Err(self.io(&self.path, e)),
        };
        let meta = f.metadata().map_err(|e| self.io(&self.path, e))?;
        if let Some((stamp, records)) = cache.as_ref()
            && *stamp == Stamp::of(&meta)
        {
            return Ok(records.clone());
        }
        let (stamp, records) = self.read_open(f)?;
        let records = Arc::new(records);
        *cache = Some((stamp, records.clone()));
        Ok(records)
    }

    /// Replaces the file: a 0600 temp file beside it, synced, renamed over it.
    fn write(&self, records: &[Record]) -> Result<(), TokenError> {
        let file = StoreFile {
            version: VERSION,
            tokens: records.to_vec(),
        };
        let mut bytes = serde_json::to_vec_pretty(&file).expect("tokens serialise");
        bytes.push(b'\n');
        let dir = self.dir();
        let tmp = dir.join(format!(
            ".{}.{}.tmp",
            self.path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default(),
            hex::encode(random::<6>()?)
        ));
        let written = (|| {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &self.path)
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(self.io(&self.path, e));
        }
        // The rename itself survives a crash once the directory is synced.
        if let Ok(d) = fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

fn check_name(name: &str) -> Result<(), TokenError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(TokenError::InvalidName(name.to_string()))
    }
}

/// SHA-256 of a secret, hex.
fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Equal without stopping at the first difference (lengths are public: hashes have one).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

fn random<const N: usize>() -> Result<[u8; N], TokenError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| TokenError::Random(e.to_string()))?;
    Ok(buf)
}

/// Times in the file and in JSON: RFC 3339, UTC, whole seconds.
mod rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::SystemTime;

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::clock::rfc3339(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        crate::clock::parse_rfc3339(&text)
            .ok_or_else(|| serde::de::Error::custom("not an RFC 3339 time"))
    }
}

mod rfc3339_opt {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::SystemTime;

    pub fn serialize<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::rfc3339::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) => crate::clock::parse_rfc3339(&text)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom("not an RFC 3339 time")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::rights::Right;

    const T0: u64 = 1_800_000_000;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn store() -> (tempfile::TempDir, TokenStore) {
        let d = tempfile::tempdir().unwrap();
        let s = TokenStore::new(d.path().join("state").join("tokens.json"));
        (d, s)
    }

    fn envs(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_secret_is_the_prefix_and_32_random_bytes_in_base64url() {
        let (_d, s) = store();
        let (_, a) = s.create("ci", Role::View, &[], None, at(T0)).unwrap();
        let (_, b) = s.create("ci2", Role::View, &[], None, at(T0)).unwrap();
        let body = a.expose().strip_prefix(SECRET_PREFIX).unwrap();
        // 32 bytes: 43 characters without padding.
        assert_eq!(body.len(), 43);
        assert!(
            body.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(a, b);
    }

    #[test]
    fn created_tokens_verify_and_give_their_principal() {
        let (_d, s) = store();
        let (info, secret) = s
            .create(
                "deployer",
                Role::Deploy,
                &envs(&["recette", "recette", "preprod"]),
                None,
                at(T0),
            )
            .unwrap();
        assert_eq!(info.envs, Some(envs(&["recette", "preprod"])));
        assert_eq!(info.created_at, at(T0));
        assert_eq!(info.expires_at, None);
        let got = s.verify(secret.expose(), at(T0 + 10)).unwrap();
        assert_eq!(got, info);
        let p = got.principal();
        assert_eq!(p.id, "token:deployer");
        assert_eq!(p.subject, info.id);
        assert!(p.allows(Right::Deploy, "recette"));
        assert!(!p.allows(Right::View, "prod"));
        // A fresh store (another process) reads the same file.
        let again = TokenStore::new(s.path());
        assert_eq!(again.verify(secret.expose(), at(T0 + 10)), Some(info));
    }

    #[test]
    fn no_env_means_all_environments() {
        let (_d, s) = store();
        let (info, _) = s.create("all", Role::View, &[], None, at(T0)).unwrap();
        assert_eq!(info.envs, None);
        assert!(info.principal().allows(Right::View, "anything"));
    }

    #[test]
    fn wrong_secrets_are_refused() {
        let (_d, s) = store();
        let (_, secret) = s.create("ci", Role::Admin, &[], None, at(T0)).unwrap();
        let real = secret.expose();
        let mut altered = real.to_string();
        let last = altered.pop().unwrap();
        altered.push(if last == 'A' { 'B' } else { 'A' });
        for wrong in [
            "",
            "fpt_",
            altered.as_str(),
            &real[..real.len() - 1],
            &format!("{real}x"),
            &real[SECRET_PREFIX.len()..],
            &digest(real),
        ] {
            assert_eq!(s.verify(wrong, at(T0)), None, "{wrong:?}");
        }
        assert!(s.verify(real, at(T0)).is_some());
    }

    #[test]
    fn expired_tokens_are_refused_from_their_expiry_on() {
        let (_d, s) = store();
        let day = Duration::from_secs(86_400);
        let (info, secret) = s
            .create("short", Role::View, &[], Some(day), at(T0))
            .unwrap();
        assert_eq!(info.expires_at, Some(at(T0 + 86_400)));
        assert!(s.verify(secret.expose(), at(T0 + 86_399)).is_some());
        assert_eq!(s.verify(secret.expose(), at(T0 + 86_400)), None);
        assert_eq!(s.verify(secret.expose(), at(T0 + 90_000)), None);
        // Still listed (and marked expired), until revoked.
        let listed = s.list().unwrap();
        assert!(listed[0].is_expired(at(T0 + 86_400)));
        assert!(!listed[0].is_expired(at(T0)));
    }

    #[test]
    fn zero_and_absurd_expiries_are_refused() {
        let (_d, s) = store();
        assert_eq!(
            s.create("z", Role::View, &[], Some(Duration::ZERO), at(T0)),
            Err(TokenError::ZeroExpiry)
        );
        assert_eq!(
            s.create(
                "z",
                Role::View,
                &[],
                Some(Duration::from_millis(900)),
                at(T0)
            ),
            Err(TokenError::ZeroExpiry)
        );
        assert_eq!(
            s.create(
                "z",
                Role::View,
                &[],
                Some(Duration::from_secs(u64::MAX / 2)),
                at(T0)
            ),
            Err(TokenError::ExpiryTooFar)
        );
        assert!(s.list().unwrap().is_empty());
    }

    #[test]
    fn names_are_unique_and_checked() {
        let (_d, s) = store();
        s.create("ci", Role::View, &[], None, at(T0)).unwrap();
        let e = s.create("ci", Role::Admin, &[], None, at(T0)).unwrap_err();
        assert_eq!(e, TokenError::NameTaken("ci".into()));
        assert_eq!(
            e.to_string(),
            "a token named `ci` exists already: pick another name, or revoke it first (fleetpin serve token revoke ci)"
        );
        for bad in ["", "-x", "a b", "a/b", "é", &"x".repeat(65)] {
            assert_eq!(
                s.create(bad, Role::View, &[], None, at(T0)),
                Err(TokenError::InvalidName(bad.to_string())),
                "{bad:?}"
            );
        }
        s.create("ok.name_2-x", Role::View, &[], None, at(T0))
            .unwrap();
        assert_eq!(
            s.create("e", Role::View, &envs(&["prod", " "]), None, at(T0)),
            Err(TokenError::EmptyEnvironment)
        );
        assert_eq!(s.list().unwrap().len(), 2);
    }

    #[test]
    fn revoked_tokens_stop_at_once_even_in_a_store_that_cached_them() {
        let (_d, s) = store();
        let (_, a) = s.create("a", Role::View, &[], None, at(T0)).unwrap();
        let (_, b) = s.create("b", Role::View, &[], None, at(T0)).unwrap();
        let server = TokenStore::new(s.path());
        assert!(server.verify(a.expose(), at(T0)).is_some());
        // Another process (the command line) revokes it.
        let gone = s.revoke("a").unwrap();
        assert_eq!(gone.name, "a");
        assert_eq!(server.verify(a.expose(), at(T0)), None);
        assert!(server.verify(b.expose(), at(T0)).is_some());
        assert_eq!(s.revoke("a"), Err(TokenError::NotFound("a".into())));
        assert_eq!(
            s.revoke("a").unwrap_err().to_string(),
            "no token named `a` (fleetpin serve token list shows them)"
        );
    }

    #[test]
    fn tokens_created_elsewhere_are_seen() {
        let (_d, s) = store();
        let server = TokenStore::new(s.path());
        assert!(server.verify("fpt_nothing", at(T0)).is_none());
        let (_, a) = s.create("a", Role::View, &[], None, at(T0)).unwrap();
        assert!(server.verify(a.expose(), at(T0)).is_some());
    }

    #[test]
    fn the_file_holds_hashes_only_mode_0600_in_a_0700_directory() {
        use std::os::unix::fs::PermissionsExt;
        let (_d, s) = store();
        let (info, secret) = s.create("ci", Role::Deploy, &[], None, at(T0)).unwrap();
        let text = fs::read_to_string(s.path()).unwrap();
        assert!(!text.contains(secret.expose()));
        assert!(!text.contains(&secret.expose()[SECRET_PREFIX.len()..]));
        assert!(text.contains(&digest(secret.expose())));
        assert!(text.contains(&info.id));
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(s.path()), 0o600);
        assert_eq!(mode(s.path().parent().unwrap()), 0o700);
        // A state directory beside serve.yaml may sit in a repository: git is told to ignore it.
        let ignore = s.path().parent().unwrap().join(".gitignore");
        assert!(
            fs::read_to_string(ignore)
                .unwrap()
                .lines()
                .any(|l| l == "*")
        );
        // Rewritten (a revocation) it stays 0600, and no temp file is left.
        s.create("other", Role::View, &[], None, at(T0)).unwrap();
        s.revoke("other").unwrap();
        assert_eq!(mode(s.path()), 0o600);
        let left: Vec<String> = fs::read_dir(s.path().parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        assert!(left.iter().all(|n| !n.ends_with(".tmp")), "{left:?}");
    }

    #[test]
    fn listing_an_absent_store_is_empty_and_creates_nothing() {
        let (d, s) = store();
        assert!(s.list().unwrap().is_empty());
        assert!(!d.path().join("state").exists());
        assert_eq!(s.revoke("x"), Err(TokenError::NotFound("x".into())));
        assert!(!d.path().join("state").exists());
    }

    #[test]
    fn a_damaged_store_is_an_error_that_quotes_nothing_of_it() {
        let (_d, s) = store();
        s.create("ci", Role::View, &[], None, at(T0)).unwrap();
        fs::write(s.path(), "{\"version\": 1, \"tokens\": [\"leaked-value\"]}").unwrap();
        let e = s.list().unwrap_err();
        assert!(matches!(e, TokenError::Corrupt { .. }));
        assert!(!e.to_string().contains("leaked-value"), "{e}");
        // A server accepts nothing from it.
        assert_eq!(s.verify("leaked-value", at(T0)), None);
        fs::write(s.path(), "{\"version\": 9, \"tokens\": []}").unwrap();
        assert!(s.list().unwrap_err().to_string().contains("version 9"));
    }

    #[test]
    fn last_use_is_recorded_at_most_once_a_minute() {
        let (_d, s) = store();
        s.create("ci", Role::View, &[], None, at(T0)).unwrap();
        s.record_use("ci", at(T0 + 5)).unwrap();
        assert_eq!(s.list().unwrap()[0].last_used, Some(at(T0 + 5)));
        s.record_use("ci", at(T0 + 30)).unwrap();
        assert_eq!(s.list().unwrap()[0].last_used, Some(at(T0 + 5)));
        s.record_use("ci", at(T0 + 70)).unwrap();
        assert_eq!(s.list().unwrap()[0].last_used, Some(at(T0 + 70)));
        // A name that is gone: nothing to do.
        s.record_use("gone", at(T0 + 200)).unwrap();
    }

    #[test]
    fn ct_eq_compares_whole_slices() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(ct_eq(b"", b""));
    }

    /// No Debug or Display of anything the store hands out, and no error, shows the secret.
    #[test]
    fn no_secret_in_any_debug_display_or_listing() {
        let (_d, s) = store();
        let (info, secret) = s
            .create(
                "ci",
                Role::Admin,
                &envs(&["prod"]),
                Some(Duration::from_secs(60)),
                at(T0),
            )
            .unwrap();
        let raw = secret.expose().to_string();
        let body = raw[SECRET_PREFIX.len()..].to_string();
        let verified = s.verify(&raw, at(T0)).unwrap();
        let errors = [
            s.create("ci", Role::View, &[], None, at(T0)).unwrap_err(),
            s.revoke("nope").unwrap_err(),
            TokenError::InvalidName("bad name".into()),
            TokenError::EmptyEnvironment,
            TokenError::ZeroExpiry,
            TokenError::ExpiryTooFar,
            TokenError::Io {
                path: s.path().to_path_buf(),
                reason: "denied".into(),
            },
            TokenError::Corrupt {
                path: s.path().to_path_buf(),
                reason: "x".into(),
            },
            TokenError::Random("no".into()),
        ];
        let mut shown = vec![
            format!("{secret:?}"),
            format!("{secret:#?}"),
            format!("{info:?}"),
            format!("{verified:#?}"),
            format!("{:?}", info.principal()),
            format!("{s:?}"),
            format!("{:?}", s.list().unwrap()),
            serde_json::to_string(&s.list().unwrap()).unwrap(),
            serde_json::to_string(&info.principal()).unwrap(),
        ];
        for e in &errors {
            shown.push(format!("{e:?}"));
            shown.push(e.to_string());
        }
        for text in &shown {
            assert!(!text.contains(&body), "the secret shows in {text}");
            assert!(
                !text.contains(&digest(&raw)),
                "the secret's hash shows in {text}"
            );
        }
        assert_eq!(format!("{secret:?}"), "TokenSecret(***)");
    }
}
