//! What the console follows: the working tree it was started in, or — with `--repo URL` (or
//! serve.yaml's `repo:`) — a clone of its own in the state directory, kept at the remote branch's
//! tip. The clone is fetched every `FETCH_EVERY` and before each action, never while an action
//! runs on it: actions hold a read guard for their whole life, a fetch takes the write guard.
//! The clone holds nothing of its own: what an action commits is pushed at once.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedRwLockReadGuard, RwLock};

/// How often the followed reference is fetched when nobody acts.
pub const FETCH_EVERY: Duration = Duration::from_secs(30);

/// A clone the console keeps fetched.
#[derive(Debug)]
pub struct Followed {
    pub url: String,
    pub branch: Option<String>,
    pub dir: PathBuf,
}

/// The reference the console reads its manifest from.
#[derive(Debug)]
pub struct Reference {
    /// The manifest's path (inside the clone, or as given on the command line).
    pub manifest: PathBuf,
    followed: Option<Followed>,
    /// Readers: actions (the files must not move under them). Writer: a fetch.
    guard: Arc<RwLock<()>>,
}

/// Held by an action for its whole life: no fetch moves the files under it.
pub type Held = OwnedRwLockReadGuard<()>;

impl Reference {
    /// The working tree's manifest, as the command line reads it.
    pub fn working_tree(manifest: PathBuf) -> Reference {
        Reference {
            manifest,
            followed: None,
            guard: Default::default(),
        }
    }

    /// A clone of `url` in `dir`, made or brought up to date now: the console does not start on a
    /// reference it cannot read.
    pub async fn cloned(
        url: String,
        branch: Option<String>,
        dir: PathBuf,
        manifest_in_repo: &std::path::Path,
    ) -> Result<Reference, crate::git::GitError> {
        crate::git::sync_clone(&url, branch.as_deref(), &dir).await?;
        Ok(Reference {
            manifest: dir.join(manifest_in_repo),
            followed: Some(Followed { url, branch, dir }),
            guard: Default::default(),
        })
    }

    /// Whether actions commit and push through the console's own clone.
    pub fn is_clone(&self) -> bool {
        self.followed.is_some()
    }

    /// Brings the clone to the remote branch's tip (nothing for a working tree), waiting for
    /// running actions to end; returns the commit.
    pub async fn fetch(&self) -> Result<Option<String>, crate::git::GitError> {
        let Some(c) = &self.followed else {
            return Ok(None);
        };
        let _writing = self.guard.write().await;
        crate::git::sync_clone(&c.url, c.branch.as_deref(), &c.dir)
            .await
            .map(Some)
    }

    /// Fetches, then holds the files still for an action.
    pub async fn for_action(&self) -> Result<Held, crate::git::GitError> {
        self.fetch().await?;
        Ok(self.guard.clone().read_owned().await)
    }

    /// Fetches in the background every `FETCH_EVERY`, skipping a turn while an action runs; a
    /// failed fetch is logged and the last commit kept (a git server that is down is no reason
    /// to stop showing the fleet).
    pub fn keep_fetched(self: &Arc<Self>, after: impl Fn() + Send + Sync + 'static) {
        if self.followed.is_none() {
            return;
        }
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut last = None;
            loop {
                tokio::time::sleep(FETCH_EVERY).await;
                let Ok(_writing) = me.guard.clone().try_write_owned() else {
                    continue;
                };
                let c = me.followed.as_ref().expect("a clone");
                match crate::git::sync_clone(&c.url, c.branch.as_deref(), &c.dir).await {
                    Ok(commit) => {
                        if last.as_ref() != Some(&commit) {
                            tracing::info!(commit = %crate::git::short_id(&commit), "the reference moved");
                            last = Some(commit);
                            after();
                        }
                    }
                    Err(e) => tracing::warn!("fetching the reference: {e}"),
                }
            }
        });
    }
}
