//! Where a deploy's secret values come from: the one implementation of `resolve::Secrets` that
//! reads files. SOPS files are read at the commit being deployed (HEAD, `--rev`, an agent's
//! fetched commit) and decrypted in memory with the operation's age identities; plain env_files
//! from the working tree (an agent's `--secrets`), as before. Each SOPS file is decrypted once
//! per operation, however many services and hosts read it.
//!
//! Every error names a file, a key path, a commit or public keys — never a value.

use crate::git::CommitFiles;
use crate::manifest::resolve::{self, Secret};
use crate::manifest::{Loaded, Manifest};
use crate::secrets::{Decrypted, KeyPath, Keys, SopsFile, is_sops};
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Why a secret could not be read, sorted by what `validate` makes of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// A plain env_file not in the working tree (validate: a warning; plan: an error).
    #[error("{0}")]
    Unreadable(String),
    /// No identity at hand opens the file, or the identities could not be read.
    #[error("{0}")]
    NoIdentity(String),
    /// The file or the reference is wrong: not SOPS, tampered, unsupported, no such key, a
    /// plain file in git where agents follow.
    #[error("{0}")]
    Invalid(String),
}

/// What a plain (not encrypted) env_file committed to git does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlainInGit {
    /// Read it as before (the caller warns: `plain_committed`).
    Allow,
    /// An environment followed by agents: its secrets in git must be encrypted.
    Refuse,
}

/// The secret values of one operation's manifest.
pub struct SecretFiles<'a> {
    /// Plain env_files are read here (beside the manifest; an agent's `--secrets`).
    dir: PathBuf,
    /// The commit deployed; `None` when the manifest is not committed (everything is read from
    /// the working tree then).
    commit: Option<CommitFiles>,
    keys: &'a Keys,
    plain_in_git: PlainInGit,
    /// Audit: a file that cannot be read or opened reads as empty, and is recorded.
    lenient: bool,
    opened: Mutex<HashMap<String, Arc<Decrypted>>>,
    unreadable: Mutex<BTreeSet<String>>,
}

impl<'a> SecretFiles<'a> {
    /// For `loaded`, deployed from its commit (`--rev`, HEAD when the manifest is committed and
    /// unchanged, an agent's fetched commit).
    pub fn new(loaded: &Loaded, keys: &'a Keys, plain_in_git: PlainInGit) -> SecretFiles<'a> {
        let commit = loaded.cache.clone().or_else(|| {
            // As `deploy::source_commit`: the --rev commit, else HEAD for a committed manifest.
            let commit = loaded
                .rev_commit
                .clone()
                .or_else(|| crate::git::manifest_commit(&loaded.path));
            commit.map(|commit| CommitFiles::Worktree {
                manifest: loaded.path.clone(),
                commit,
            })
        });
        SecretFiles {
            dir: loaded.dir(),
            commit,
            keys,
            plain_in_git,
            lenient: false,
            opened: Mutex::new(HashMap::new()),
            unreadable: Mutex::new(BTreeSet::new()),
        }
    }

    /// Unreadable files read as empty and are recorded (`unreadable`): audit never creates
    /// containers, and secrets are often not at hand.
    pub fn lenient(mut self) -> SecretFiles<'a> {
        self.lenient = true;
        self
    }

    /// The files that could not be read or opened (with `lenient`).
    pub fn unreadable(&self) -> BTreeSet<String> {
        self.unreadable.lock().unwrap().clone()
    }

    /// How a file is named in messages: its path, and the commit it was read at.
    fn shown(&self, path: &str) -> String {
        match &self.commit {
            Some(c) => format!("{path} (commit {})", crate::git::short_id(c.commit())),
            None => path.to_string(),
        }
    }

    /// The file at the commit, if the commit has it.
    fn committed(&self, path: &str) -> Result<Option<String>, SecretError> {
        match &self.commit {
            Some(c) => c
                .read(path)
                .map_err(|e| SecretError::Invalid(e.to_string())),
            None => Ok(None),
        }
    }

    fn working_tree(&self, path: &str) -> Result<String, SecretError> {
        std::fs::read_to_string(self.dir.join(path))
            .map_err(|e| SecretError::Unreadable(format!("{path}: {e}")))
    }

    /// Decrypts `text` (the SOPS file `path`) once per operation.
    fn open(&self, path: &str, text: &str) -> Result<Arc<Decrypted>, SecretError> {
        use crate::secrets::SopsError;
        if let Some(d) = self.opened.lock().unwrap().get(path) {
            return Ok(d.clone());
        }
        let name = self.shown(path);
        let file = SopsFile::parse(&name, text).map_err(|e| SecretError::Invalid(e.to_string()))?;
        let ids = self
            .keys
            .get()
            .map_err(|e| SecretError::NoIdentity(format!("{name}: {e}")))?;
        let d = Arc::new(file.decrypt(ids).map_err(|e| match e {
            SopsError::NoIdentity { .. } => SecretError::NoIdentity(e.to_string()),
            e => SecretError::Invalid(e.to_string()),
        })?);
        self.opened
            .lock()
            .unwrap()
            .insert(path.to_string(), d.clone());
        Ok(d)
    }

    /// The variables of env_file `path` (typed errors: `validate` sorts them).
    pub fn env_file_checked(&self, path: &str) -> Result<Vec<(String, Secret)>, SecretError> {
        let invalid = |e: crate::secrets::SopsError| SecretError::Invalid(e.to_string());
        if let Some(text) = self.committed(path)? {
            if is_sops(&text) {
                return self.open(path, &text)?.env_pairs().map_err(invalid);
            }
            if self.plain_in_git == PlainInGit::Refuse {
                return Err(SecretError::Invalid(format!(
                    "{} is a plain env_file committed to git, and this environment is followed by agents: encrypt it with sops (docs/secrets.md) or keep it out of git",
                    self.shown(path)
                )));
            }
        }
        let text = self.working_tree(path)?;
        if is_sops(&text) {
            // A SOPS file travels with the reference: one the commit does not hold is not what
            // is deployed (an agent following that commit would never see it).
            if self.commit.is_some() {
                return Err(SecretError::Invalid(format!(
                    "{} is a SOPS file that is not committed: SOPS files are read at the commit being deployed; commit it",
                    self.shown(path)
                )));
            }
            return self.open(path, &text)?.env_pairs().map_err(invalid);
        }
        Ok(resolve::parse_env_file(&text)
            .map_err(SecretError::Invalid)?
            .into_iter()
            .map(|(k, v)| (k, Secret::new(v)))
            .collect())
    }

    /// One value of SOPS file `file` (typed errors: `validate` sorts them).
    pub fn value_checked(&self, file: &str, key: &KeyPath) -> Result<Secret, SecretError> {
        let text = match self.committed(file)? {
            Some(t) => t,
            None if self.commit.is_some() => {
                return Err(SecretError::Invalid(format!(
                    "{} does not exist: SOPS files are read at the commit being deployed; commit it",
                    self.shown(file)
                )));
            }
            None => self.working_tree(file)?,
        };
        if !is_sops(&text) {
            return Err(SecretError::Invalid(format!(
                "{} is not a SOPS file (no `sops` metadata): encrypt it with `sops --encrypt --in-place`",
                self.shown(file)
            )));
        }
        self.open(file, &text)?
            .get(key)
            .map_err(|e| SecretError::Invalid(e.to_string()))
    }

    /// With `lenient`, an error reads as the default value and the file is recorded.
    fn or_default<T: Default>(&self, path: &str, r: Result<T, SecretError>) -> Result<T, String> {
        match r {
            Err(_) if self.lenient => {
                self.unreadable.lock().unwrap().insert(path.to_string());
                Ok(T::default())
            }
            r => r.map_err(|e| e.to_string()),
        }
    }
}

impl resolve::Secrets for SecretFiles<'_> {
    fn env_file(&self, path: &str) -> Result<Vec<(String, Secret)>, String> {
        let r = self.env_file_checked(path);
        if r.is_err() && self.lenient {
            // A SOPS file that cannot be opened here still names its variables (sops leaves
            // keys in clear): their names keep the spec hash right, their values read as empty.
            let text = match self.committed(path) {
                Ok(Some(t)) => Some(t),
                _ => self.working_tree(path).ok(),
            };
            if let Some(file) = text
                .filter(|t| is_sops(t))
                .and_then(|t| SopsFile::parse(path, &t).ok())
            {
                self.unreadable.lock().unwrap().insert(path.to_string());
                return Ok(file
                    .env_names()
                    .into_iter()
                    .map(|k| (k, Secret::new(String::new())))
                    .collect());
            }
        }
        self.or_default(path, r)
    }

    fn sops_value(&self, file: &str, key: &KeyPath) -> Result<Secret, String> {
        self.or_default(file, self.value_checked(file, key))
    }
}

/// Every file a service reads secrets from in `env`: its env_file and the SOPS files of its
/// `env` (the service's and the environment's override).
pub fn files_of<'m>(m: &'m Manifest, env: &str, service: &str) -> Vec<&'m str> {
    let s = &m.services[service];
    let ov = m
        .environments
        .get(env)
        .and_then(|e| e.overrides.get(service));
    s.env_file
        .iter()
        .map(|f| f.value.as_str())
        .chain(s.secret_env.values().map(|r| r.value.file.as_str()))
        .chain(
            ov.into_iter()
                .flat_map(|o| o.secret_env.values().map(|r| r.value.file.as_str())),
        )
        .collect()
}

/// The env_files of `env`'s services that are committed to git in plain text at the deployed
/// commit: a warning for the command line, an error where agents follow (`PlainInGit::Refuse`).
pub fn plain_committed(loaded: &Loaded, env: &str) -> Vec<String> {
    let files = SecretFiles::new(loaded, &NO_KEYS, PlainInGit::Allow);
    let Some(e) = loaded.manifest.environments.get(env) else {
        return vec![];
    };
    let mut out = BTreeSet::new();
    for service in e.versions.keys() {
        if let Some(f) = &loaded.manifest.services[service].env_file
            && let Ok(Some(text)) = files.committed(&f.value)
            && !is_sops(&text)
        {
            out.insert(f.value.clone());
        }
    }
    out.into_iter().collect()
}

/// The SOPS files `env`'s services read at the deployed commit (env_files recognised by their
/// `sops` metadata, and every `{sops: …}` value): what opening `env`'s secrets needs a key for.
pub fn sops_files(loaded: &Loaded, env: &str) -> Vec<String> {
    let files = SecretFiles::new(loaded, &NO_KEYS, PlainInGit::Allow);
    let Some(e) = loaded.manifest.environments.get(env) else {
        return vec![];
    };
    let mut out = BTreeSet::new();
    for service in e.versions.keys() {
        let s = &loaded.manifest.services[service];
        if let Some(f) = &s.env_file {
            let text = match files.committed(&f.value) {
                Ok(Some(text)) => Some(text),
                _ => files.working_tree(&f.value).ok(),
            };
            if text.is_some_and(|t| is_sops(&t)) {
                out.insert(f.value.clone());
            }
        }
        for f in files_of(&loaded.manifest, env, service)
            .into_iter()
            .filter(|f| s.env_file.as_ref().is_none_or(|e| e.value != *f))
        {
            out.insert(f.to_string());
        }
    }
    out.into_iter().collect()
}

/// Says which plain env_files of `env` are committed to git (where agents follow, reading them
/// is refused instead).
pub fn warn_plain_committed(
    ctx: &crate::ops::context::Ctx,
    loaded: &Loaded,
    command: &str,
    env: &str,
) {
    if policy(loaded, env) == PlainInGit::Refuse {
        return;
    }
    let files = plain_committed(loaded, env);
    if files.is_empty() {
        return;
    }
    ctx.op(command, env).warn(format!(
        "{} committed to git in plain text: anyone who can read the repository reads these secrets; encrypt them with sops (docs/secrets.md)",
        files.join(", ")
    ));
}

static NO_KEYS: std::sync::LazyLock<Keys> = std::sync::LazyLock::new(Keys::none);

/// What a plain env_file in git does in `env`: refused where agents follow (`pull`, or the agent
/// itself), allowed (with a warning) elsewhere.
pub fn policy(loaded: &Loaded, env: &str) -> PlainInGit {
    if loaded
        .manifest
        .environments
        .get(env)
        .is_some_and(|e| e.pull)
        || loaded.cache.is_some()
    {
        PlainInGit::Refuse
    } else {
        PlainInGit::Allow
    }
}
