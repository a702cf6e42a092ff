//! The manifest's git repository, through libgit2 (vendored): which commit a deploy comes from,
//! who the operator is, and committing a pin change. No `git` binary is needed on the machine.

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
    #[error("git: {0}")]
    Git(String),
}

impl From<git2::Error> for GitError {
    fn from(e: git2::Error) -> Self {
        GitError::Git(e.message().to_string())
    }
}

fn open(manifest: &Path) -> Result<(Repository, PathBuf), GitError> {
    let abs = std::fs::canonicalize(manifest)
        .map_err(|e| GitError::Git(format!("{}: {e}", manifest.display())))?;
    let dir = abs.parent().unwrap_or(Path::new("/"));
    let repo = Repository::discover(dir)
        .map_err(|_| GitError::NotARepository(manifest.display().to_string()))?;
    let workdir = repo
        .workdir()
        .ok_or_else(|| GitError::Git("a bare repository has no working tree".into()))?;
    let workdir = std::fs::canonicalize(workdir).unwrap_or_else(|_| workdir.to_path_buf());
    let rel = abs
        .strip_prefix(&workdir)
        .map_err(|_| {
            GitError::Git(format!(
                "{} is outside the repository's working tree",
                abs.display()
            ))
        })?
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

/// Commits the manifest file as it is on disk, and nothing else, with `message`; returns the
/// commit id. The commit's tree is HEAD's with the manifest's blob alone replaced, whatever else
/// is staged; the index keeps every other staged entry, and its manifest entry gets the committed
/// blob. A detached HEAD is refused. The author comes from git config (user.name, user.email);
/// without them, from FLEETPIN_USER, else `fleetpin <user@host>`.
pub fn commit_manifest(manifest: &Path, message: &str) -> Result<String, GitError> {
    let (repo, rel) = open(manifest)?;
    if repo.head_detached().unwrap_or(false) {
        return Err(GitError::Detached);
    }
    let content = std::fs::read(manifest)
        .map_err(|e| GitError::Git(format!("{}: {e}", manifest.display())))?;
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
    let sig = signature(&repo)?;
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    let id = repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)?;
    // The index: the manifest as committed, everything else staged as it was.
    let mut index = repo.index()?;
    index.add_path(&rel)?;
    index.write()?;
    Ok(id.to_string())
}

fn signature(repo: &Repository) -> Result<Signature<'static>, GitError> {
    if let Ok(sig) = repo.signature() {
        return Ok(sig.to_owned());
    }
    let who = std::env::var("FLEETPIN_USER").unwrap_or_else(|_| {
        format!(
            "{}@{}",
            std::env::var("USER").unwrap_or_else(|_| "fleetpin".into()),
            crate::identity::hostname()
        )
    });
    Ok(Signature::now("fleetpin", &who)?)
}

/// The manifest as it is at `rev` (a commit, tag or branch), read from git without checking it
/// out; returns the text and the full commit id.
pub fn read_at_rev(manifest: &Path, rev: &str) -> Result<(String, String), GitError> {
    let (repo, rel) = open(manifest)?;
    let obj = repo.revparse_single(rev).map_err(|e| {
        GitError::Git(format!(
            "`{rev}` is not a revision of this repository ({})",
            e.message()
        ))
    })?;
    let commit = obj
        .peel_to_commit()
        .map_err(|_| GitError::Git(format!("`{rev}` does not name a commit")))?;
    let entry = commit
        .tree()?
        .get_path(&rel)
        .map_err(|_| GitError::Git(format!("{} does not exist at {rev}", rel.display())))?;
    let blob = repo
        .find_blob(entry.id())
        .map_err(|_| GitError::Git(format!("{} at {rev} is not a file", rel.display())))?;
    let text = String::from_utf8(blob.content().to_vec())
        .map_err(|_| GitError::Git(format!("{} at {rev} is not UTF-8 text", rel.display())))?;
    Ok((text, commit.id().to_string()))
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
