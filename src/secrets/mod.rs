//! Secrets kept in git as SOPS files (what the `sops` 3.x CLI writes with age recipients), read
//! in memory. No maintained Rust crate reads SOPS files, so the format is read here with kept
//! crates: `age` opens the data key, `aes-gcm` the values, `sha2` checks the MAC. The facts come
//! from sops's own source (aes/cipher.go, sops.go, stores/), not its code.
//!
//! Only age recipients are read; key groups and Shamir thresholds are refused. No value ever
//! reaches an error, a Debug output or a log line: [`Secret`] redacts itself and the errors carry
//! file names, key paths and public keys only.

mod decrypt;
mod document;
mod identity;

pub use decrypt::{Decrypted, SopsFile};
pub use document::is_sops;
pub use identity::{Identities, KEY_VARS, Keys, process_keys, take_process_keys};

use std::fmt;

/// A secret value: never printed. Debug and Display show `***`; `expose()` gives the value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    /// The value itself, for the one place that hands it on (an engine, a file).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// One step of a [`KeyPath`]: a map key or a list index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyStep {
    Key(String),
    Index(usize),
}

/// Where a value sits in a document: map keys and list indexes from the top.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPath(pub Vec<KeyStep>);

impl KeyPath {
    /// "billing.db_url" → [Key billing, Key db_url]. Every part is a map key; a key that holds a
    /// dot, or a list index, needs the steps spelled out.
    pub fn dotted(s: &str) -> KeyPath {
        KeyPath(s.split('.').map(|k| KeyStep::Key(k.to_string())).collect())
    }
}

/// For messages: `billing.db_url`, `replicas[0].password`, `["smtp.host"]` (a key with a dot).
impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            match step {
                KeyStep::Index(n) => write!(f, "[{n}]")?,
                KeyStep::Key(k) if k.contains('.') || k.is_empty() => write!(f, "[{k:?}]")?,
                KeyStep::Key(k) if i == 0 => f.write_str(k)?,
                KeyStep::Key(k) => write!(f, ".{k}")?,
            }
        }
        Ok(())
    }
}

/// What stops reading a SOPS file. Each names the file (or the place identities came from) and
/// at most a key path or public keys: never a value.
#[derive(Debug, thiserror::Error)]
pub enum SopsError {
    #[error("{file}: cannot read it: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: not a readable SOPS file: {reason}")]
    Parse { file: String, reason: String },
    #[error("{file}: not a SOPS file (no `sops` metadata with `mac` and `lastmodified`)")]
    NotSops { file: String },
    #[error("{file}: bad SOPS metadata: {reason}")]
    Metadata { file: String, reason: String },
    #[error("{file}: {what} is not supported; re-encrypt it for plain age recipients")]
    Unsupported { file: String, what: String },
    #[error("{file}: no age identity at hand opens it; it is encrypted for {}", recipients_list(.recipients))]
    NoIdentity {
        file: String,
        recipients: Vec<String>,
    },
    #[error("{file}: its data key is not a 256-bit key")]
    DataKey { file: String },
    #[error("{file}: MAC mismatch: the file was changed after sops encrypted it")]
    Mac { file: String },
    #[error("{file}: `{key}` should be encrypted but is not")]
    NotEncrypted { file: String, key: String },
    #[error("{file}: `{key}` does not decrypt to a valid {kind}")]
    BadValue {
        file: String,
        key: String,
        kind: String,
    },
    #[error("{file}: no key `{key}`")]
    KeyNotFound { file: String, key: String },
    #[error("{file}: `{key}` is a map, a list or null, not a single value")]
    NotScalar { file: String, key: String },
    #[error("{file}: line {line} is not an age identity (AGE-SECRET-KEY-1…)")]
    InvalidIdentity { file: String, line: usize },
}

fn recipients_list(recipients: &[String]) -> String {
    if recipients.is_empty() {
        "no age recipient".to_string()
    } else {
        recipients.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints_its_value() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s} {s:?} {:?}", Some(&s)), "*** *** Some(***)");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn key_paths_read_and_show() {
        let p = KeyPath::dotted("billing.db_url");
        assert_eq!(
            p.0,
            vec![
                KeyStep::Key("billing".into()),
                KeyStep::Key("db_url".into())
            ]
        );
        assert_eq!(p.to_string(), "billing.db_url");
        let q = KeyPath(vec![
            KeyStep::Key("replicas".into()),
            KeyStep::Index(0),
            KeyStep::Key("password".into()),
        ]);
        assert_eq!(q.to_string(), "replicas[0].password");
        let r = KeyPath(vec![KeyStep::Key("smtp.host".into())]);
        assert_eq!(r.to_string(), "[\"smtp.host\"]");
    }
}
