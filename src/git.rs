//! The manifest's git repository, through libgit2 (vendored): which commit a deploy comes from,
//! who the operator is, and committing a pin change. No `git` binary is needed for those. Network
//! operations — `--push`, and the agent following the reference (`fetch_reference`) — run the git
//! CLI instead, so the operator's ssh config, agent, known_hosts and credential helpers apply.

use git2::{Repository, Signature, Status, StatusOptions};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitError {
    #[error("{0} is not inside a git repository; run `git init` there, or pass --no-commit")]
    NotARepository(String),
    #[error("{0} has uncommitted changes; commit or stash them first, or pass --no-commit")]
    Dirty(String),
    #[error(
        "HEAD is detached (as in most CI checkouts), so a commit would belong to no branch and be lost at the next checkout; check out the branch first (`git switch <branch>`, or `git checkout -B <branch>` in CI), or pass --no-commit"
    )]
    Detached,
    /// What libgit2 said.
    #[error("git: {0}")]
    Git(String),
    /// What libgit2 said about the repository's HEAD or config, shown as it says it.
    #[error("{0}")]
    Repository(String),
    #[error("git: {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("git: a bare repository has no working tree")]
    Bare,
    #[error("git: {0} is outside the repository's working tree")]
    OutsideWorkTree(String),
    #[error("git: `{rev}` is not a revision of this repository ({reason})")]
    NoSuchRevision { rev: String, reason: String },
    #[error("git: `{0}` does not name a commit")]
    NotACommit(String),
    /// `at`: the revision as given, or `commit <short id>`.
    #[error("git: {path} does not exist at {at}")]
    Missing { path: String, at: String },
    #[error("git: {path}{} is not a file", at_rev(.rev))]
    NotAFile { path: String, rev: Option<String> },
    #[error("git: {path}{} is not UTF-8 text", at_rev(.rev))]
    NotText { path: String, rev: Option<String> },
    #[error("git: cannot create {path}: {reason}")]
    CacheDir { path: String, reason: String },
    #[error("git: cannot run `git` ({0}): the agent fetches with the git CLI; install git")]
    NoGit(String),
    /// `detail`: git's last lines of error, or its exit status.
    #[error("git: fetching {branch} of {url} failed: {detail}")]
    Fetch {
        branch: String,
        /// Redacted (`redact_url`).
        url: String,
        detail: String,
    },
}

fn at_rev(rev: &Option<String>) -> String {
    rev.as_ref().map(|r| format!(" at {r}")).unwrap_or_default()
}

impl From<git2::Error> for GitError {
    fn from(e: git2::Error) -> Self {
        GitError::Git(e.message().to_string())
    }
}

fn open(manifest: &Path) -> Result<(Repository, PathBuf), GitError> {
    let abs = std::fs::canonicalize(manifest).map_err(|e| GitError::Unreadable {
        path: manifest.display().to_string(),
        reason: e.to_string(),
    })?;
    let dir = abs.parent().unwrap_or(Path::new("/"));
    let repo = Repository::discover(dir)
        .map_err(|_| GitError::NotARepository(manifest.display().to_string()))?;
    let workdir = repo.workdir().ok_or(GitError::Bare)?;
    let workdir = std::fs::canonicalize(workdir).unwrap_or_else(|_| workdir.to_path_buf());
    let rel = abs
        .strip_prefix(&workdir)
        .map_err(|_| GitError::OutsideWorkTree(abs.display().to_string()))?
        .to_path_buf();
    Ok((repo, rel))
}

fn file_status(repo: &Repository, rel: &Path) -> Result<Status, GitError> {
    let mut opts = StatusOptions::new();
    opts.pathspec(rel)
        .include_untracked(true)
        .disable_pathspec_match(true);
    let statuses = repo.statuses(Some(&mut opts))?;
    Ok(statuses
        .iter()
        .fold(Status::empty(), |acc, s| acc | s.status()))
}

/// The commit the manifest comes from: HEAD when the file is committed and unchanged, else
/// `None` (deploys then record `uncommitted`).
pub fn manifest_commit(manifest: &Path) -> Option<String> {
    let (repo, rel) = open(manifest).ok()?;
    let head = repo.head().ok()?.peel_to_commit().ok()?;
    let status = file_status(&repo, &rel).ok()?;
    status.is_empty().then(|| head.id().to_string())
}

/// Where the manifest is in its repository (a path from the repository's root), the commit
/// `rev` names, and the branch HEAD is on when `rev` is HEAD: what a publish names.
pub fn locate(manifest: &Path, rev: &str) -> Result<(PathBuf, String, Option<String>), GitError> {
    let (repo, rel) = open(manifest)?;
    let commit = repo
        .revparse_single(rev)
        .map_err(|e| GitError::NoSuchRevision {
            rev: rev.to_string(),
            reason: e.message().to_string(),
        })?
        .peel_to_commit()
        .map_err(|_| GitError::NotACommit(rev.to_string()))?
        .id()
        .to_string();
    let branch = (rev == "HEAD")
        .then(|| repo.head().ok())
        .flatten()
        .filter(|h| h.is_branch())
        .and_then(|h| h.shorthand().ok().map(str::to_string));
    Ok((rel, commit, branch))
}

/// `user.email` from the repository's (or the global) git config.
pub fn user_email(manifest: &Path) -> Option<String> {
    let config = match open(manifest) {
        Ok((repo, _)) => repo.config().ok()?,
        Err(_) => git2::Config::open_default().ok()?,
    };
    config
        .get_string("user.email")
        .ok()
        .filter(|s| !s.is_empty())
}

/// Fails unless fleetpin can commit the manifest afterwards: the file has no uncommitted change
/// and HEAD is on a branch. Checked before any host is touched.
pub fn ensure_committable(manifest: &Path) -> Result<(), GitError> {
    let (repo, rel) = open(manifest)?;
    if repo.head_detached().unwrap_or(false) {
        return Err(GitError::Detached);
    }
    if file_status(&repo, &rel)?.is_empty() {
        Ok(())
    } else {
        Err(GitError::Dirty(manifest.display().to_string()))
    }
}

/// Who authors a commit fleetpin writes for someone (a console's signed-in person).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    pub name: String,
    pub email: String,
}

/// Commits the manifest file as it is on disk, and nothing else, with `message`; returns the
/// commit id. The commit's tree is HEAD's with the manifest's blob alone replaced, whatever else
/// is staged; the index keeps every other staged entry, and its manifest entry gets the committed
/// blob. A detached HEAD is refused. The author is `author` when given (a console's signed-in
/// person), else git config's (user.name, user.email), else `fleetpin <who>` (the actor).
pub fn commit_manifest(
    manifest: &Path,
    message: &str,
    author: Option<&Author>,
    who: &str,
    sign: Option<&crate::trust::Signing>,
) -> Result<String, GitError> {
    let (repo, rel) = open(manifest)?;
    if repo.head_detached().unwrap_or(false) {
        return Err(GitError::Detached);
    }
    let content = std::fs::read(manifest).map_err(|e| GitError::Unreadable {
        path: manifest.display().to_string(),
        reason: e.to_string(),
    })?;
    let blob = repo.blob(&content)?;
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let base = match &parent {
        Some(c) => c.tree()?,
        None => repo.find_tree(repo.treebuilder(None)?.write()?)?,
    };
    let mode = base
        .get_path(&rel)
        .map(|e| e.filemode())
        .unwrap_or(i32::from(git2::FileMode::Blob));
    let mode = if mode == i32::from(git2::FileMode::BlobExecutable) {
        git2::FileMode::BlobExecutable
    } else {
        git2::FileMode::Blob
    };
    let mut update = git2::build::TreeUpdateBuilder::new();
    update.upsert(&rel, blob, mode);
    let tree = repo.find_tree(update.create_updated(&repo, &base)?)?;
    let sig = signature(&repo, author, who)?;
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    let id = match sign {
        None => repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)?,
        Some(signing) => {
            // As `git commit -S`: the commit object signed, then the branch moved to it.
            let id = signed_object(&repo, &sig, message, &tree, &parents, signing)?;
            let head = repo.find_reference("HEAD")?;
            let branch = head
                .symbolic_target()?
                .map(str::to_string)
                .ok_or(GitError::Detached)?;
            repo.reference(&branch, id, true, message)?;
            id
        }
    };
    // The index: the manifest as committed, everything else staged as it was.
    let mut index = repo.index()?;
    index.add_path(&rel)?;
    index.write()?;
    Ok(id.to_string())
}

/// A commit object signed with `sign` on HEAD's tree, referenced by no branch: what a commit
/// fleetpin writes would carry, so that its signature can be judged before any host changes.
/// Returns its id; the object stays unreferenced (git's gc removes it).
pub fn signed_probe(manifest: &Path, sign: &crate::trust::Signing) -> Result<String, GitError> {
    let (repo, _) = open(manifest)?;
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let tree = match &parent {
        Some(c) => c.tree()?,
        None => repo.find_tree(repo.treebuilder(None)?.write()?)?,
    };
    let sig = signature(&repo, None, "fleetpin")?;
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    let message = "fleetpin: which key signs the commits it writes (a probe no branch names)\n";
    Ok(signed_object(&repo, &sig, message, &tree, &parents, sign)?.to_string())
}

/// A commit object signed with `signing`, written to the object database; no reference moved.
fn signed_object(
    repo: &Repository,
    sig: &Signature<'_>,
    message: &str,
    tree: &git2::Tree<'_>,
    parents: &[&git2::Commit<'_>],
    signing: &crate::trust::Signing,
) -> Result<git2::Oid, GitError> {
    let buffer = repo.commit_create_buffer(sig, sig, message, tree, parents)?;
    let text = std::str::from_utf8(&buffer)
        .map_err(|_| GitError::Git("the commit is not UTF-8 text".into()))?;
    let signature = signing
        .sign(&buffer)
        .map_err(|e| GitError::Repository(e.to_string()))?;
    Ok(repo.commit_signed(text, &signature, None)?)
}

fn signature(
    repo: &Repository,
    author: Option<&Author>,
    who: &str,
) -> Result<Signature<'static>, GitError> {
    if let Some(a) = author {
        return Ok(Signature::now(&a.name, &a.email)?);
    }
    if let Ok(sig) = repo.signature() {
        return Ok(sig.to_owned());
    }
    Ok(Signature::now("fleetpin", who)?)
}

/// The manifest as it is at `rev` (a commit, tag or branch), read from git without checking it
/// out; returns the text and the full commit id.
pub fn read_at_rev(manifest: &Path, rev: &str) -> Result<(String, String), GitError> {
    let (repo, rel) = open(manifest)?;
    let obj = repo
        .revparse_single(rev)
        .map_err(|e| GitError::NoSuchRevision {
            rev: rev.to_string(),
            reason: e.message().to_string(),
        })?;
    let commit = obj
        .peel_to_commit()
        .map_err(|_| GitError::NotACommit(rev.to_string()))?;
    let text = file_text(&repo, &commit, &rel, rev, Some(rev))?;
    Ok((text, commit.id().to_string()))
}

/// The file `path` of `commit` as UTF-8 text; `at` names the commit in a "does not exist" error,
/// `rev` (when the operator gave one) the others.
fn file_text(
    repo: &Repository,
    commit: &git2::Commit,
    path: &Path,
    at: &str,
    rev: Option<&str>,
) -> Result<String, GitError> {
    let shown = || path.display().to_string();
    let entry = commit
        .tree()?
        .get_path(path)
        .map_err(|_| GitError::Missing {
            path: shown(),
            at: at.to_string(),
        })?;
    let blob = repo.find_blob(entry.id()).map_err(|_| GitError::NotAFile {
        path: shown(),
        rev: rev.map(str::to_string),
    })?;
    String::from_utf8(blob.content().to_vec()).map_err(|_| GitError::NotText {
        path: shown(),
        rev: rev.map(str::to_string),
    })
}

/// One commit that changed the manifest: its metadata and the file before and after.
pub struct FileChange {
    pub id: String,
    pub time: i64,
    pub author: String,
    pub subject: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// The commits reachable from HEAD that changed the manifest file, newest first, calling `f`
/// for each until it returns false. Only blob ids are compared along the walk; the file's text is
/// read only for commits that changed it.
pub fn walk_file_changes(
    manifest: &Path,
    mut f: impl FnMut(FileChange) -> bool,
) -> Result<(), GitError> {
    let (repo, rel) = open(manifest)?;
    let mut walk = repo.revwalk()?;
    if walk.push_head().is_err() {
        return Ok(()); // no commit yet
    }
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::TIME)?;
    let blob_at = |c: &git2::Commit| {
        c.tree()
            .ok()
            .and_then(|t| t.get_path(&rel).ok())
            .map(|e| e.id())
    };
    let text_of = |id: Option<git2::Oid>| {
        id.and_then(|id| repo.find_blob(id).ok())
            .and_then(|b| String::from_utf8(b.content().to_vec()).ok())
    };
    for oid in walk {
        let commit = repo.find_commit(oid?)?;
        let after = blob_at(&commit);
        let before = commit.parent(0).ok().and_then(|p| blob_at(&p));
        if after == before {
            continue;
        }
        let author = commit.author();
        let change = FileChange {
            id: commit.id().to_string(),
            time: commit.time().seconds(),
            author: author
                .email()
                .ok()
                .filter(|e| !e.is_empty())
                .or(author.name().ok())
                .unwrap_or("?")
                .to_string(),
            subject: commit.summary().ok().flatten().unwrap_or("").to_string(),
            before: text_of(before),
            after: text_of(after),
        };
        if !f(change) {
            break;
        }
    }
    Ok(())
}

/// Where a push goes: the current branch's upstream (`branch.NAME.remote`, `branch.NAME.merge`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Upstream {
    pub branch: String,
    pub remote: String,
    /// The remote's branch, as a ref (`refs/heads/main`).
    pub merge: String,
}

impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let short = self
            .merge
            .strip_prefix("refs/heads/")
            .unwrap_or(&self.merge);
        write!(f, "{}/{short}", self.remote)
    }
}

/// Why a pin commit was not pushed. The commit is always kept: every message says how to push it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error(
        "branch `{branch}` has no upstream, so commit {commit} was not pushed (it is kept here); set one with `git branch --set-upstream-to=origin/{branch}` (or push once with `git push -u origin {branch}`), then run `git push`"
    )]
    NoUpstream { branch: String, commit: String },
    #[error(
        "the push to {upstream} was rejected: the remote branch has commits this clone does not have (someone pushed first); commit {commit} is kept here. Run `git pull --rebase` (settle a conflict on a pin line by hand), check the pins, then `git push`"
    )]
    Rejected { upstream: String, commit: String },
    #[error(
        "git push to {upstream} failed: {reason}; commit {commit} is kept here: push it with `git push` once that is fixed"
    )]
    Failed {
        upstream: String,
        commit: String,
        reason: String,
    },
    #[error(
        "cannot run `git` ({reason}): --push uses the git CLI, so that your ssh config, agent and credential helpers apply; commit {commit} is kept here: install git, or push from elsewhere"
    )]
    NoGit { reason: String, commit: String },
    #[error("{0}; the commit is kept here")]
    Repo(#[from] GitError),
}

/// The current branch's upstream, read from git config.
pub fn upstream(manifest: &Path, commit: &str) -> Result<Upstream, PushError> {
    let (repo, _) = open(manifest)?;
    let unreadable = |e: git2::Error| GitError::Repository(e.message().to_string());
    let head = repo.head().map_err(unreadable)?;
    if !head.is_branch() {
        return Err(GitError::Detached.into());
    }
    let branch = head.shorthand().unwrap_or("HEAD").to_string();
    let config = repo.config().map_err(unreadable)?;
    let get = |key: &str| config.get_string(key).ok().filter(|s| !s.is_empty());
    match (
        get(&format!("branch.{branch}.remote")),
        get(&format!("branch.{branch}.merge")),
    ) {
        (Some(remote), Some(merge)) => Ok(Upstream {
            branch,
            remote,
            merge,
        }),
        _ => Err(PushError::NoUpstream {
            branch,
            commit: short(commit),
        }),
    }
}

fn short(commit: &str) -> String {
    short_id(commit).to_string()
}

/// A commit id as people read it: its first 12 hex digits; anything else (`uncommitted`) as is.
pub fn short_id(id: &str) -> &str {
    if id.len() > 12 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        &id[..12]
    } else {
        id
    }
}

/// Pushes `commit` to the current branch's upstream with the git CLI — never forced: a remote
/// that moved rejects it, and the local commit stays. Network operations use the git program, not
/// libgit2, so that the operator's ssh config, agent, known_hosts and credential helpers apply as
/// for any `git push` (and no TLS or ssh library is built into fleetpin). git never prompts here:
/// `GIT_TERMINAL_PROMPT=0`, and ssh runs with BatchMode unless the operator chose their own ssh
/// command (`GIT_SSH_COMMAND`, `GIT_SSH`, `core.sshCommand`).
pub fn push(manifest: &Path, commit: &str) -> Result<Upstream, PushError> {
    let up = upstream(manifest, commit)?;
    let (repo, _) = open(manifest)?;
    let workdir = repo.workdir().unwrap_or(Path::new(".")).to_path_buf();
    let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    let own_ssh = set("GIT_SSH_COMMAND")
        || set("GIT_SSH")
        || repo
            .config()
            .ok()
            .and_then(|c| c.get_string("core.sshCommand").ok())
            .is_some();
    let mut cmd = std::process::Command::new("git");
    cmd.arg("-C")
        .arg(&workdir)
        .args(["push", "--porcelain", &up.remote])
        .arg(format!("{commit}:{}", up.merge))
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::null());
    if !own_ssh {
        cmd.env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes");
    }
    let out = cmd.output().map_err(|e| PushError::NoGit {
        reason: e.to_string(),
        commit: short(commit),
    })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    // A refused ref is marked `!` (whatever the exit status of this git version).
    if out.status.success() && !stdout.lines().any(|l| l.starts_with('!')) {
        return Ok(up);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    if rejected_because_remote_moved(&stdout) {
        return Err(PushError::Rejected {
            upstream: up.to_string(),
            commit: short(commit),
        });
    }
    let reason: Vec<&str> = stderr
        .lines()
        .chain(stdout.lines().filter(|l| l.starts_with('!')))
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("hint:"))
        .collect();
    Err(PushError::Failed {
        upstream: up.to_string(),
        commit: short(commit),
        reason: if reason.is_empty() {
            format!("git exited with {}", out.status)
        } else {
            reason[reason.len().saturating_sub(3)..].join(" / ")
        },
    })
}

/// `git push --porcelain` marks a rejected ref with `!`; `fetch first` and `non-fast-forward`
/// (and `stale info`) say the remote has commits this clone has not.
fn rejected_because_remote_moved(porcelain: &str) -> bool {
    porcelain.lines().any(|l| {
        l.starts_with('!')
            && (l.contains("(fetch first)")
                || l.contains("(non-fast-forward)")
                || l.contains("(stale info)"))
            && !l.contains("[remote rejected]")
    })
}

/// Where the agent keeps the followed branch in its bare cache repository.
pub const FOLLOWED_REF: &str = "refs/fleetpin/followed";

/// A URL as it may be shown and stored: a password in it (`https://user:token@host/…`) is hidden.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}{path}")
        }
        _ => url.to_string(),
    }
}

/// The git command for a network operation: never prompting (`GIT_TERMINAL_PROMPT=0`, ssh in
/// BatchMode unless the operator chose their own ssh command), stdin closed.
fn network_git(own_ssh_configured: bool) -> tokio::process::Command {
    let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    let mut cmd = tokio::process::Command::new("git");
    cmd.env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    if !(own_ssh_configured || set("GIT_SSH_COMMAND") || set("GIT_SSH")) {
        cmd.env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes");
    }
    cmd
}

/// Fetches the followed branch (`branch`, else the remote's HEAD) of `url` into the bare
/// repository `cache` (created when missing) with the git CLI; returns the commit it points to.
/// The fetch is forced: a branch rewritten upstream is followed as it is now, like any clone.
pub async fn fetch_reference(
    url: &str,
    branch: Option<&str>,
    cache: &Path,
) -> Result<String, GitError> {
    if Repository::open_bare(cache).is_err() {
        std::fs::create_dir_all(cache).map_err(|e| GitError::CacheDir {
            path: cache.display().to_string(),
            reason: e.to_string(),
        })?;
        Repository::init_bare(cache)?;
    }
    let src = match branch {
        Some(b) => format!("refs/heads/{b}"),
        None => "HEAD".to_string(),
    };
    let out = network_git(false)
        .arg("--git-dir")
        .arg(cache)
        .args([
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            "--",
        ])
        .arg(url)
        .arg(format!("+{src}:{FOLLOWED_REF}"))
        .output()
        .await
        .map_err(|e| GitError::NoGit(e.to_string()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("hint:"))
            .collect();
        return Err(GitError::Fetch {
            branch: branch.unwrap_or("HEAD").to_string(),
            url: redact_url(url),
            detail: if lines.is_empty() {
                format!("git exited with {}", out.status)
            } else {
                lines[lines.len().saturating_sub(3)..].join(" / ")
            },
        });
    }
    let repo = Repository::open_bare(cache)?;
    Ok(repo.refname_to_id(FOLLOWED_REF)?.to_string())
}

/// Keeps `dir` a clone of `url` at the tip of `branch` (else the remote's default branch): cloned
/// when missing, else fetched and reset hard to the remote branch — the console's own clone,
/// where nothing local is kept (its commits are pushed as they are written). Returns the commit.
/// A clone of another URL in `dir` is refused rather than silently repointed.
pub async fn sync_clone(url: &str, branch: Option<&str>, dir: &Path) -> Result<String, GitError> {
    let failed = |what: &str, out: &std::process::Output| GitError::Fetch {
        branch: branch.unwrap_or("HEAD").to_string(),
        url: redact_url(url),
        detail: {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let lines: Vec<&str> = stderr
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("hint:"))
                .collect();
            if lines.is_empty() {
                format!("git {what} exited with {}", out.status)
            } else {
                lines[lines.len().saturating_sub(3)..].join(" / ")
            }
        },
    };
    let run = |cmd: &mut tokio::process::Command| {
        let fut = cmd.output();
        async move { fut.await.map_err(|e| GitError::NoGit(e.to_string())) }
    };
    if Repository::open(dir).is_err() {
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent).map_err(|e| GitError::CacheDir {
                path: parent.display().to_string(),
                reason: e.to_string(),
            })?;
        }
        let mut cmd = network_git(false);
        cmd.args(["clone", "--quiet", "--no-tags"]);
        if let Some(b) = branch {
            cmd.args(["--branch", b]);
        }
        cmd.arg("--").arg(url).arg(dir);
        let out = run(&mut cmd).await?;
        if !out.status.success() {
            return Err(failed("clone", &out));
        }
    } else {
        let origin = Repository::open(dir)?
            .find_remote("origin")
            .ok()
            .and_then(|r| r.url().ok().map(str::to_string));
        if origin.as_deref() != Some(url) {
            return Err(GitError::Repository(format!(
                "{} is a clone of {}, not of {}: remove it (it holds nothing of its own) or give its URL",
                dir.display(),
                origin
                    .as_deref()
                    .map(redact_url)
                    .unwrap_or_else(|| "nothing".into()),
                redact_url(url)
            )));
        }
        let out = run(network_git(false).arg("-C").arg(dir).args([
            "fetch",
            "--quiet",
            "--no-tags",
            "origin",
        ]))
        .await?;
        if !out.status.success() {
            return Err(failed("fetch", &out));
        }
    }
    let local = Repository::open(dir)?
        .head()?
        .shorthand()
        .unwrap_or("HEAD")
        .to_string();
    let tracked = format!("refs/remotes/origin/{}", branch.unwrap_or(&local));
    let out = run(tokio::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["reset", "--hard", "--quiet", &tracked])
        .stdin(std::process::Stdio::null()))
    .await?;
    if !out.status.success() {
        return Err(failed("reset", &out));
    }
    Ok(Repository::open(dir)?
        .head()?
        .peel_to_commit()?
        .id()
        .to_string())
}

/// Where the files of a commit are read: the working tree's repository (the command line), or an
/// agent's bare cache. `dir` is the manifest's directory inside the repository.
#[derive(Debug, Clone)]
pub enum CommitFiles {
    Worktree {
        manifest: PathBuf,
        commit: String,
    },
    Cache {
        cache: PathBuf,
        dir: PathBuf,
        commit: String,
    },
}

impl CommitFiles {
    pub fn commit(&self) -> &str {
        match self {
            CommitFiles::Worktree { commit, .. } | CommitFiles::Cache { commit, .. } => commit,
        }
    }

    /// The file `rel` (relative to the manifest's directory) at the commit, or `None` when the
    /// commit has no such file.
    pub fn read(&self, rel: &str) -> Result<Option<String>, GitError> {
        let (repo, path) = match self {
            CommitFiles::Worktree { manifest, .. } => {
                let (repo, m) = open(manifest)?;
                let dir = m.parent().map(Path::to_path_buf).unwrap_or_default();
                (repo, dir.join(rel))
            }
            CommitFiles::Cache { cache, dir, .. } => (Repository::open_bare(cache)?, dir.join(rel)),
        };
        // `a/../b` is not a tree path: normalise the way a checkout would resolve it.
        let mut parts: Vec<std::ffi::OsString> = Vec::new();
        for c in path.components() {
            match c {
                std::path::Component::ParentDir if parts.pop().is_none() => return Ok(None),
                std::path::Component::ParentDir => {}
                std::path::Component::Normal(p) => parts.push(p.to_os_string()),
                _ => {}
            }
        }
        let path: PathBuf = parts.iter().collect();
        let commit = repo.find_commit(git2::Oid::from_str(self.commit())?)?;
        let at = format!("commit {}", short(self.commit()));
        match file_text(&repo, &commit, &path, &at, None) {
            Ok(t) => Ok(Some(t)),
            Err(GitError::Missing { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Those of `commits` that carry a signature (a `gpgsig` header), read in-process.
pub fn signed(manifest: &Path, commits: &[String]) -> Vec<String> {
    let Ok((repo, _)) = open(manifest) else {
        return vec![];
    };
    let mut out: Vec<String> = commits
        .iter()
        .filter(|c| {
            git2::Oid::from_str(c)
                .ok()
                .is_some_and(|oid| repo.extract_signature(&oid, None).is_ok())
        })
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Whether `commit` is `ancestor` or descends from it, in the bare repository `cache`.
pub fn descends(cache: &Path, commit: &str, ancestor: &str) -> Result<bool, GitError> {
    let repo = Repository::open_bare(cache)?;
    let c = git2::Oid::from_str(commit)?;
    let a = git2::Oid::from_str(ancestor)?;
    if c == a {
        return Ok(true);
    }
    if repo.find_commit(a).is_err() {
        // A commit the cache does not have (another repository, or history rewritten away).
        return Ok(false);
    }
    match repo.graph_descendant_of(c, a) {
        Ok(d) => Ok(d),
        // A cache filled from registry artifacts holds commit objects back to a bound, and
        // a merge's other parents only when they were carried: walk the commits it has.
        Err(_) => Ok(walk_descends(&repo, c, a)),
    }
}

/// Whether `ancestor` is reached from `commit` through the parents present in `repo`.
fn walk_descends(repo: &Repository, commit: git2::Oid, ancestor: git2::Oid) -> bool {
    let mut todo = vec![commit];
    let mut seen = std::collections::HashSet::new();
    while let Some(id) = todo.pop() {
        if id == ancestor {
            return true;
        }
        if !seen.insert(id) {
            continue;
        }
        if let Ok(c) = repo.find_commit(id) {
            todo.extend(c.parent_ids());
        }
    }
    false
}

/// The file `path` of the repository (`cache`, bare) at `commit`, as UTF-8 text.
pub fn read_file_at(cache: &Path, commit: &str, path: &Path) -> Result<String, GitError> {
    let repo = Repository::open_bare(cache)?;
    let commit = repo.find_commit(git2::Oid::from_str(commit)?)?;
    let at = format!("commit {}", short(&commit.id().to_string()));
    file_text(&repo, &commit, path, &at, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remote_that_moved_is_told_apart_from_other_refusals() {
        assert!(rejected_because_remote_moved(
            "To /tmp/r.git\n!\tabc:refs/heads/main\t[rejected] (fetch first)\nDone\n"
        ));
        assert!(rejected_because_remote_moved(
            "To x\n!\tabc:refs/heads/main\t[rejected] (non-fast-forward)\nDone\n"
        ));
        assert!(!rejected_because_remote_moved(
            "To x\n!\tabc:refs/heads/main\t[remote rejected] (pre-receive hook declined)\nDone\n"
        ));
        assert!(!rejected_because_remote_moved(
            "To x\n \tabc:refs/heads/main\t1111..2222\nDone\n"
        ));
    }

    #[test]
    fn passwords_in_urls_are_hidden() {
        assert_eq!(
            redact_url("https://bot:s3cret@git.example.com/ops/platform.git"),
            "https://bot:***@git.example.com/ops/platform.git"
        );
        assert_eq!(
            redact_url("ssh://git@host/ops.git"),
            "ssh://git@host/ops.git"
        );
        assert_eq!(redact_url("/srv/platform.git"), "/srv/platform.git");
    }

    #[test]
    fn upstream_names_remote_and_branch() {
        let u = Upstream {
            branch: "main".into(),
            remote: "origin".into(),
            merge: "refs/heads/main".into(),
        };
        assert_eq!(u.to_string(), "origin/main");
    }
}
