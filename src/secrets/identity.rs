//! The age identities that open SOPS files, found where the `sops` CLI finds them. The caller
//! passes the variable lookup, so that tests and the agent decide what "the environment" is.

use super::SopsError;
use age::x25519;
use std::fmt;
use std::path::{Path, PathBuf};

/// age identities (X25519 `AGE-SECRET-KEY-1…` lines) to decrypt with.
#[derive(Default, Clone)]
pub struct Identities {
    keys: Vec<x25519::Identity>,
}

impl Identities {
    /// Where the `sops` CLI finds them, through `var`: SOPS_AGE_KEY_FILE and SOPS_AGE_KEY (keys
    /// inline, several a line allowed, `#` comments), both read when both are set; else
    /// $XDG_CONFIG_HOME/sops/age/keys.txt, else $HOME/.config/sops/age/keys.txt. A missing
    /// default file gives an empty set; a missing SOPS_AGE_KEY_FILE is an error, as in sops.
    pub fn from_vars(var: &dyn Fn(&str) -> Option<String>) -> Result<Identities, SopsError> {
        let mut ids = Identities::default();
        let key_file = var("SOPS_AGE_KEY_FILE").filter(|v| !v.is_empty());
        let inline = var("SOPS_AGE_KEY").filter(|v| !v.is_empty());
        if let Some(path) = &key_file {
            ids.keys
                .extend(Identities::from_file(Path::new(path))?.keys);
        }
        if let Some(text) = &inline {
            ids.keys
                .extend(parse_keys("SOPS_AGE_KEY", text, true)?.keys);
        }
        if key_file.is_some() || inline.is_some() {
            return Ok(ids);
        }
        let config = var("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                var("HOME")
                    .filter(|v| !v.is_empty())
                    .map(|h| Path::new(&h).join(".config"))
            });
        let Some(config) = config else {
            return Ok(ids);
        };
        let path = config.join("sops").join("age").join("keys.txt");
        match std::fs::metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ids),
            _ => Identities::from_file(&path),
        }
    }

    /// One identity a line (`age-keygen`'s output), `#` comments and blank lines skipped.
    pub fn from_file(path: &Path) -> Result<Identities, SopsError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| SopsError::Io {
            file: name.clone(),
            source,
        })?;
        parse_keys(&name, &text, false)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The public keys (age1…) of these identities.
    pub fn recipients(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| k.to_public().to_string())
            .collect()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &dyn age::Identity> {
        self.keys.iter().map(|k| k as &dyn age::Identity)
    }
}

/// Public keys only.
impl fmt::Debug for Identities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identities")
            .field("recipients", &self.recipients())
            .finish()
    }
}

fn parse_keys(source: &str, text: &str, several_a_line: bool) -> Result<Identities, SopsError> {
    let mut keys = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = if several_a_line {
            line.split_whitespace().collect()
        } else {
            vec![line]
        };
        for word in words {
            let key = word
                .parse::<x25519::Identity>()
                .map_err(|_| SopsError::InvalidIdentity {
                    file: source.to_string(),
                    line: n + 1,
                })?;
            keys.push(key);
        }
    }
    Ok(Identities { keys })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The prefix of every X25519 identity.
    const PREFIX: &str = "AGE-SECRET-KEY-1";

    #[test]
    fn nothing_set_and_no_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_str().unwrap().to_string();
        let ids = Identities::from_vars(&|v| (v == "HOME").then(|| home.clone())).unwrap();
        assert!(ids.is_empty());
        assert!(Identities::from_vars(&|_| None).unwrap().is_empty());
    }

    #[test]
    fn a_bad_line_names_its_place_not_its_text() {
        let err = parse_keys("SOPS_AGE_KEY", &format!("# c\n{PREFIX}NOPE"), true).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("SOPS_AGE_KEY: line 2"), "{msg}");
        assert!(!msg.contains("NOPE"), "{msg}");
    }
}
