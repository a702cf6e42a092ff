//! Commit signatures: who signed the commit fleetpin is about to deploy, whether that signer may
//! change an environment, and signing the commits fleetpin writes itself.
//!
//! Verification is git's own (`git log --format=%G?…`, which runs `ssh-keygen -Y verify` or
//! `gpg --verify`): "good" means what `git verify-commit` means, and SSH revocations
//! (`gpg.ssh.revocationFile`) are honoured. The trust root — who is allowed at all — never comes
//! from the repository being verified: it is the operator's git configuration
//! (`gpg.ssh.allowedSignersFile`; for OpenPGP `fleetpin.gpgHome`, a dedicated keyring, or
//! `fleetpin.signer` fingerprints) or an agent's `--allowed-signers` / `--gpg-home`. An
//! environment's `trust.signers` narrows that set, never widens it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Who may sign at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustRoot {
    /// SSH: an allowed signers file (`principal key` lines).
    pub allowed_signers: Option<PathBuf>,
    /// SSH: revoked keys (`gpg.ssh.revocationFile`).
    pub revocations: Option<PathBuf>,
    /// OpenPGP: a dedicated keyring; every key in it may sign.
    pub gpg_home: Option<PathBuf>,
    /// OpenPGP: allowed key fingerprints (checked against the operator's keyring otherwise).
    pub fingerprints: Vec<String>,
    /// Where it came from, for messages ("git config", "--allowed-signers").
    pub source: String,
}

impl TrustRoot {
    /// The operator's: git configuration as seen from `repo` (its own config, then global).
    pub fn from_git_config(repo: &Path) -> TrustRoot {
        let get = |key: &str| -> Vec<String> {
            Command::new("git")
                .arg("-C")
                .arg(repo)
                .args(["config", "--get-all", key])
                .stderr(Stdio::null())
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .map(|l| l.trim().to_string())
                        .filter(|l| !l.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        let path = |key: &str| get(key).pop().map(|p| expand_home(&p));
        TrustRoot {
            allowed_signers: path("gpg.ssh.allowedSignersFile"),
            revocations: path("gpg.ssh.revocationFile"),
            gpg_home: path("fleetpin.gpgHome"),
            fingerprints: get("fleetpin.signer")
                .iter()
                .map(|f| normalise(f))
                .collect(),
            source: "your git configuration".into(),
        }
    }

    /// Nothing is allowed: every signature is refused.
    pub fn is_empty(&self) -> bool {
        self.allowed_signers.is_none() && self.gpg_home.is_none() && self.fingerprints.is_empty()
    }
}

fn expand_home(p: &str) -> PathBuf {
    match p.strip_prefix("~/") {
        Some(rest) => std::env::var_os("HOME")
            .map(|h| Path::new(&h).join(rest))
            .unwrap_or_else(|| PathBuf::from(p)),
        None => PathBuf::from(p),
    }
}

/// An OpenPGP fingerprint as compared: upper-case hex, no spaces.
fn normalise(f: &str) -> String {
    f.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Ssh,
    Openpgp,
}

/// A good signature by an allowed key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Signer {
    pub kind: Kind,
    /// SSH: the principal of the allowed signers file; OpenPGP: the key's user id.
    pub principal: String,
    /// SSH: `SHA256:…`; OpenPGP: the primary key's fingerprint.
    pub fingerprint: String,
}

impl std::fmt::Display for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.principal.is_empty() {
            write!(f, "key {}", self.fingerprint)
        } else {
            write!(f, "{} (key {})", self.principal, self.fingerprint)
        }
    }
}

/// Why a commit may not be deployed. Each says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    #[error(
        "refused: unsigned {short}: `{env}` takes only signed commits (trust: signed: true); sign it (`git commit -S`, or `git commit --amend -S` before pushing; docs/trust.md)"
    )]
    Unsigned { short: String, env: String },
    #[error(
        "refused: {short} is signed by {who}, a key {root} does not allow; an allowed signer must sign it"
    )]
    NotAllowed {
        short: String,
        who: String,
        root: String,
    },
    #[error(
        "refused: {short} is signed by {who}, who may not sign for `{env}` (signers: {signers}); one of them must sign it"
    )]
    NotASigner {
        short: String,
        who: String,
        env: String,
        signers: String,
    },
    #[error("refused: {short} has a bad or revoked signature ({detail})")]
    Bad { short: String, detail: String },
    #[error(
        "refused: {short} must be signed for `{env}`, and no allowed signers are configured here: set gpg.ssh.allowedSignersFile (SSH) or fleetpin.gpgHome / fleetpin.signer (OpenPGP) in git config, or give an agent --allowed-signers / --gpg-home (docs/trust.md)"
    )]
    NoTrustRoot { short: String, env: String },
    #[error("cannot check the signature of {short}: {detail}")]
    Git { short: String, detail: String },
}

/// `git` on `repo`: a work tree or a bare repository (an agent's cache).
fn git(repo: &Path) -> Command {
    let mut c = Command::new("git");
    if repo.join(".git").exists() || !repo.join("HEAD").exists() {
        c.arg("-C").arg(repo);
    } else {
        c.arg("--git-dir").arg(repo);
    }
    c.env("GIT_TERMINAL_PROMPT", "0");
    c
}

fn short(commit: &str) -> String {
    commit.chars().take(12).collect()
}

/// The signature of `commit` as git judges it with `root`: `None` when the commit is unsigned.
pub fn signer(repo: &Path, commit: &str, root: &TrustRoot) -> Result<Option<Signer>, TrustError> {
    let mut c = git(repo);
    // Never the repository's own notion of who is allowed: only the root's files.
    let signers = root
        .allowed_signers
        .clone()
        .unwrap_or_else(|| PathBuf::from("/dev/null"));
    c.arg("-c")
        .arg(format!("gpg.ssh.allowedSignersFile={}", signers.display()));
    c.arg("-c").arg(format!(
        "gpg.ssh.revocationFile={}",
        root.revocations
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    ));
    if let Some(home) = &root.gpg_home {
        c.env("GNUPGHOME", home);
    }
    let out = c
        .args(["log", "-1", "--no-show-signature"])
        .arg("--format=%G?%x1f%GS%x1f%GF%x1f%GP%x1f%GK")
        .arg(commit)
        .arg("--")
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| TrustError::Git {
            short: short(commit),
            detail: format!("cannot run git: {e}"),
        })?;
    if !out.status.success() {
        return Err(TrustError::Git {
            short: short(commit),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<&str> = text.trim_end_matches('\n').split('\x1f').collect();
    let field = |i: usize| f.get(i).copied().unwrap_or("").trim().to_string();
    let status = field(0);
    let kind = if field(2).starts_with("SHA256:") {
        Kind::Ssh
    } else {
        Kind::Openpgp
    };
    let fingerprint = match kind {
        Kind::Ssh => field(2),
        Kind::Openpgp => {
            let primary = field(3);
            if primary.is_empty() {
                field(2)
            } else {
                primary
            }
        }
    };
    let signer = Signer {
        kind,
        principal: field(1),
        fingerprint: fingerprint.clone(),
    };
    let who = || {
        if fingerprint.is_empty() {
            format!("key {}", field(4))
        } else {
            signer.to_string()
        }
    };
    match status.as_str() {
        "N" => Ok(None),
        // SSH: good and its key is in the allowed signers file. OpenPGP: good, and trusted.
        "G" => Ok(Some(signer)),
        // OpenPGP with a dedicated keyring (or a fingerprint list): a good signature by a key
        // of that keyring, whatever its web-of-trust validity. SSH: a good signature by a key
        // that is not in the allowed signers file.
        "U" if kind == Kind::Openpgp => Ok(Some(signer)),
        "U" => Err(TrustError::NotAllowed {
            short: short(commit),
            who: who(),
            root: root.source.clone(),
        }),
        // A key missing from the keyring: not one the root allows.
        "E" => Err(TrustError::NotAllowed {
            short: short(commit),
            who: if field(4).is_empty() {
                "an unknown key".into()
            } else {
                format!("key {}", field(4))
            },
            root: root.source.clone(),
        }),
        other => Err(TrustError::Bad {
            short: short(commit),
            detail: match other {
                "B" => "bad signature".into(),
                "X" => "the signature has expired".into(),
                "Y" => "the key has expired".into(),
                "R" => "the key is revoked".into(),
                s => format!("status {s}"),
            },
        }),
    }
}

/// Who signed each of `commits`, for `history`: one `git log` for all of them, judged with
/// `root`; unsigned commits are left out.
pub fn signatures(
    repo: &Path,
    commits: &[String],
    root: &TrustRoot,
) -> std::collections::HashMap<String, String> {
    let mut out = std::collections::HashMap::new();
    if commits.is_empty() {
        return out;
    }
    let mut unique: Vec<&String> = commits.iter().collect();
    unique.sort();
    unique.dedup();
    let mut c = git(repo);
    let signers = root
        .allowed_signers
        .clone()
        .unwrap_or_else(|| PathBuf::from("/dev/null"));
    c.arg("-c")
        .arg(format!("gpg.ssh.allowedSignersFile={}", signers.display()));
    if let Some(home) = &root.gpg_home {
        c.env("GNUPGHOME", home);
    }
    c.args(["log", "--no-walk=unsorted", "--no-show-signature"])
        .arg("--format=%H%x1f%G?%x1f%GS%x1f%GK")
        .args(unique)
        .arg("--")
        .stderr(Stdio::null());
    let Ok(o) = c.output() else { return out };
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        let f: Vec<&str> = line.split('\x1f').collect();
        let [id, status, who, key] = f[..] else {
            continue;
        };
        let shown = match status {
            "N" => continue,
            "G" if !who.is_empty() => who.to_string(),
            "G" | "U" if !who.is_empty() => format!("{who} (unverified)"),
            "G" | "U" | "E" => format!("unverified key {key}"),
            "R" => format!("revoked key {key}"),
            _ => "bad signature".to_string(),
        };
        out.insert(id.to_string(), shown);
    }
    out
}

/// `commit` must carry a good signature by a key `root` allows and, when `signers` is not empty,
/// by one of them (a principal, a user id's email, or a fingerprint).
pub fn verify(
    repo: &Path,
    commit: &str,
    root: &TrustRoot,
    env: &str,
    signers: &[String],
) -> Result<Signer, TrustError> {
    if root.is_empty() {
        return Err(TrustError::NoTrustRoot {
            short: short(commit),
            env: env.to_string(),
        });
    }
    let Some(s) = signer(repo, commit, root)? else {
        return Err(TrustError::Unsigned {
            short: short(commit),
            env: env.to_string(),
        });
    };
    if s.kind == Kind::Openpgp
        && root.gpg_home.is_none()
        && !root.fingerprints.contains(&normalise(&s.fingerprint))
    {
        return Err(TrustError::NotAllowed {
            short: short(commit),
            who: s.to_string(),
            root: root.source.clone(),
        });
    }
    if !signers.is_empty() && !signers.iter().any(|p| names(&s, p)) {
        return Err(TrustError::NotASigner {
            short: short(commit),
            who: s.to_string(),
            env: env.to_string(),
            signers: signers.join(", "),
        });
    }
    Ok(s)
}

/// Whether `principal` (as an environment's `signers` writes it) names signer `s`.
fn names(s: &Signer, principal: &str) -> bool {
    if s.principal == principal || normalise(&s.fingerprint) == normalise(principal) {
        return true;
    }
    // OpenPGP user ids read `Name <email>`.
    s.kind == Kind::Openpgp && s.principal.contains(&format!("<{principal}>"))
}

/// Why fleetpin cannot sign a commit it writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "cannot sign the commit fleetpin writes ({0}); set user.signingkey (and gpg.format=ssh for an SSH key) in git config — see docs/trust.md"
)]
pub struct SignError(pub String);

/// How commits are signed here: git config's `gpg.format`, `user.signingkey`, `gpg.program` /
/// `gpg.ssh.program`, read from `repo`.
#[derive(Debug, Clone)]
pub struct Signing {
    format: Kind,
    key: Option<String>,
    program: String,
}

impl Signing {
    pub fn from_git_config(repo: &Path) -> Signing {
        let get = |key: &str| {
            Command::new("git")
                .arg("-C")
                .arg(repo)
                .args(["config", "--get", key])
                .stderr(Stdio::null())
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let format = match get("gpg.format").as_deref() {
            Some("ssh") => Kind::Ssh,
            _ => Kind::Openpgp,
        };
        let program = match format {
            Kind::Ssh => get("gpg.ssh.program").unwrap_or_else(|| "ssh-keygen".into()),
            Kind::Openpgp => get("gpg.program").unwrap_or_else(|| "gpg".into()),
        };
        Signing {
            format,
            key: get("user.signingkey").map(|k| expand_home(&k).display().to_string()),
            program,
        }
    }

    /// Whether git config asks every commit to be signed (`commit.gpgsign`).
    pub fn wanted_by_config(repo: &Path) -> bool {
        Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(["config", "--type=bool", "--get", "commit.gpgsign"])
            .stderr(Stdio::null())
            .output()
            .ok()
            .is_some_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "true")
    }

    /// The detached signature of `payload`, as git writes it in a commit's `gpgsig` header.
    pub fn sign(&self, payload: &[u8]) -> Result<String, SignError> {
        let mut c = Command::new(&self.program);
        match self.format {
            Kind::Ssh => {
                let key = self
                    .key
                    .clone()
                    .ok_or_else(|| SignError("no user.signingkey".into()))?;
                if key.starts_with("key::") {
                    return Err(SignError(
                        "a literal user.signingkey (key::…) is not supported: name the key's file"
                            .into(),
                    ));
                }
                c.args(["-Y", "sign", "-n", "git", "-f"]).arg(key);
            }
            Kind::Openpgp => {
                c.args(["--status-fd=2", "-bsa"]);
                if let Some(k) = &self.key {
                    c.args(["-u", k]);
                }
            }
        }
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| SignError(format!("cannot run {}: {e}", self.program)))?;
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(payload)
            .map_err(|e| SignError(e.to_string()))?;
        let out = child
            .wait_with_output()
            .map_err(|e| SignError(e.to_string()))?;
        let sig = String::from_utf8_lossy(&out.stdout).to_string();
        if !out.status.success() || sig.trim().is_empty() {
            let err = String::from_utf8_lossy(&out.stderr);
            let last = err
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            return Err(SignError(format!(
                "{} failed: {}",
                self.program,
                last.trim()
            )));
        }
        Ok(sig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_compare_without_spaces_or_case() {
        assert_eq!(normalise("ab12 CD34"), "AB12CD34");
        let s = Signer {
            kind: Kind::Openpgp,
            principal: "Ops <ops@acme.example>".into(),
            fingerprint: "AB12CD34".into(),
        };
        assert!(names(&s, "ops@acme.example"));
        assert!(names(&s, "ab12 cd34"));
        assert!(!names(&s, "dev@acme.example"));
        let ssh = Signer {
            kind: Kind::Ssh,
            principal: "ops@acme.example".into(),
            fingerprint: "SHA256:x".into(),
        };
        assert!(names(&ssh, "ops@acme.example"));
        assert!(!names(&ssh, "ops"));
    }
}
