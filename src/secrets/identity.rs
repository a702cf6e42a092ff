//! The age identities that open SOPS files, found where the `sops` CLI finds them. The caller
//! passes the variable lookup, so that tests and the agent decide what "the environment" is.

use super::{Secret, SopsError};
use age::x25519;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

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

/// The identities an operation may open SOPS files with: the variables `sops` reads, captured
/// once (the command line takes them out of its own environment at start, so that no child
/// process inherits a key), plus an agent's `--age-identity` file. Read on first need, so that a
/// command with no SOPS file never fails on a broken key file.
pub struct Keys {
    vars: Vec<(&'static str, Secret)>,
    files: Vec<PathBuf>,
    loaded: OnceLock<Result<Identities, String>>,
}

/// The variables `Identities::from_vars` reads.
pub const KEY_VARS: [&str; 4] = [
    "SOPS_AGE_KEY_FILE",
    "SOPS_AGE_KEY",
    "XDG_CONFIG_HOME",
    "HOME",
];

impl Keys {
    /// No identity at all.
    pub fn none() -> Keys {
        Keys::from_vars(&|_| None, None)
    }

    /// `KEY_VARS` through `var`, and an identity file (`--age-identity`).
    pub fn from_vars(var: &dyn Fn(&str) -> Option<String>, file: Option<PathBuf>) -> Keys {
        Keys {
            vars: KEY_VARS
                .iter()
                .filter_map(|k| var(k).map(|v| (*k, Secret::new(v))))
                .collect(),
            files: file.into_iter().collect(),
            loaded: OnceLock::new(),
        }
    }

    /// The same variables, and the identity file `file` (an agent's `--age-identity`).
    pub fn with_file(&self, file: PathBuf) -> Keys {
        self.with_files(vec![file])
    }

    /// The same variables, and these identity files (a console's, one per environment).
    pub fn with_files(&self, files: Vec<PathBuf>) -> Keys {
        Keys {
            vars: self.vars.clone(),
            files,
            loaded: OnceLock::new(),
        }
    }

    /// The identities, read the first time they are asked for; the error names the file or the
    /// variable and the line, never a key.
    pub fn get(&self) -> Result<&Identities, String> {
        self.loaded
            .get_or_init(|| {
                let var = |k: &str| {
                    self.vars
                        .iter()
                        .find(|(n, _)| *n == k)
                        .map(|(_, v)| v.expose().to_string())
                };
                let mut ids = Identities::default();
                for f in &self.files {
                    ids.keys
                        .extend(Identities::from_file(f).map_err(|e| e.to_string())?.keys);
                }
                ids.keys
                    .extend(Identities::from_vars(&var).map_err(|e| e.to_string())?.keys);
                Ok(ids)
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

static PROCESS: OnceLock<Arc<Keys>> = OnceLock::new();

/// Captures the process's key variables for [`process_keys`] and removes every `SOPS_AGE_KEY*`
/// variable from the environment, so that no hook, git, ssh or credential helper inherits a key.
///
/// # Safety
/// Changes the process environment: call it at the very start of `main`, before any thread.
pub unsafe fn take_process_keys() {
    let keys = Arc::new(Keys::from_vars(&|k| std::env::var(k).ok(), None));
    let _ = PROCESS.set(keys);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SOPS_AGE_KEY") {
            // SAFETY: the caller guarantees no other thread runs yet.
            unsafe { std::env::remove_var(&name) };
        }
    }
}

/// The keys captured at start, or (when fleetpin runs as a library, e.g. in tests) read from the
/// environment now.
pub fn process_keys() -> Arc<Keys> {
    PROCESS
        .get_or_init(|| Arc::new(Keys::from_vars(&|k| std::env::var(k).ok(), None)))
        .clone()
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys")
            .field(
                "vars",
                &self.vars.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            )
            .field("files", &self.files)
            .finish()
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
