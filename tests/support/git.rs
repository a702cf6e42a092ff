//! Git helpers shared by the test crates: commits through libgit2 (as fleetpin reads them) and
//! the git CLI (as a teammate or the operator would run it). Fleet-free.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Commits `files` (already written, relative to `dir`) on HEAD as `name <email>`.
pub fn commit(dir: &Path, files: &[&str], name: &str, email: &str, message: &str) {
    let repo = git2::Repository::open(dir).unwrap();
    let mut index = repo.index().unwrap();
    for f in files {
        index.add_path(Path::new(f)).unwrap();
    }
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::now(name, email).unwrap();
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
        .unwrap();
}

/// The id of the commit HEAD points to.
pub fn head(dir: &Path) -> String {
    let repo = git2::Repository::open(dir).unwrap();
    repo.head()
        .unwrap()
        .peel_to_commit()
        .unwrap()
        .id()
        .to_string()
}

/// The subject line of the commit HEAD points to.
pub fn head_subject(dir: &Path) -> String {
    let repo = git2::Repository::open(dir).unwrap();
    let head = repo.head().unwrap().peel_to_commit().unwrap();
    head.summary().unwrap().unwrap_or("").to_string()
}

/// Runs the git CLI in `dir` as `user` (`user@example.test`); panics on failure; returns its
/// trimmed stdout.
pub fn cli_as(user: &str, dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> String {
    let mut cmd = Command::new("git");
    cmd.arg("-C")
        .arg(dir)
        .arg("-c")
        .arg(format!("user.name={user}"))
        .arg("-c")
        .arg(format!("user.email={user}@example.test"))
        .args(args)
        .envs(envs.iter().copied());
    super::run::stdout_ok(&mut cmd, &format!("git {args:?} failed"))
}

/// An SSH key pair made by ssh-keygen: the private key file and its `.pub`.
pub fn ssh_key(dir: &Path, name: &str) -> PathBuf {
    let key = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "ssh-keygen: {out:?}");
    key
}

/// The public half of `key`, as allowed_signers lists it.
pub fn public(key: &Path) -> String {
    std::fs::read_to_string(key.with_extension("pub"))
        .unwrap()
        .trim()
        .to_string()
}
