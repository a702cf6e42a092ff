//! The pull agent (`fleetpin agent`): a process on a server that follows the reference in git and
//! converges that one host to it, through the same runner (lock, repair, swap, gate, retention,
//! image cleanup) as `apply`. Servers behind NAT need no inbound access, and a fleet grows past
//! what one operator's machine can push to.
//!
//! Each sync: fetch the followed branch with the git CLI into a bare cache (`git::fetch_reference`),
//! read the manifest at that commit, resolve this host (env_files from `--secrets`, never from
//! git), list the host, plan; when something is to do, the runner does it under the host's lock.
//! A release whose gate failed here is remembered (in memory and on the status container) and not
//! tried again until its pin, spec or SOPS files change. Errors (remote or engine unreachable, a
//! manifest that does not load, the lock held) back off exponentially. Between syncs the agent waits its
//! interval plus a random splay, so agents restarted together do not stay in step.
//!
//! An agent runs no hooks (they would run on every server, with its secrets) but posts to the
//! manifest's `notify` webhooks when its news changes: when it changed the host, or when its result
//! differs from the sync before (the one recorded on the host, after a restart). A release refused
//! or a remote unreachable for hours is one message, not one per interval.

use crate::engine::Engine;
use crate::engine::docker::DockerEngine;
use crate::host::agent::{self, Follow, Refused, Sync};
use crate::host::fleet;
use crate::host::lock::LockConfig;
use crate::host::report::{HostReport, HostStatus};
use crate::host::runner::{self, Settings as RunSettings};
use crate::manifest::values::Endpoint;
use crate::manifest::{self, Loaded, Notifier};
use crate::ops::context::{Ctx, Op, Progress};
use crate::ops::deploy::{self, Selection};
use crate::ops::event::{Event, HostEntry, Outcome as Ended};
use crate::ops::notify::{self, Sent};
use crate::plan::labels::DeployStamp;
use crate::plan::view;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How an agent runs, from its command line.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    pub repo: String,
    pub branch: Option<String>,
    /// The manifest's path inside the repository.
    pub file: PathBuf,
    pub environment: String,
    pub host: String,
    pub endpoint: Endpoint,
    pub secrets: Option<PathBuf>,
    pub interval: Duration,
    pub once: bool,
    pub cache: PathBuf,
    pub connect_timeout: Duration,
    pub health_timeout: Duration,
    /// Who deploys, on the containers and the lock.
    pub identity: String,
    /// How long the host's lock holds without a heartbeat (`FLEETPIN_LOCK_TTL`), else the default.
    pub lock_ttl: Option<Duration>,
    /// `--allowed-signers` / `--gpg-home`: when given, every commit must be signed by them.
    pub trust: Option<crate::trust::TrustRoot>,
    /// `--accept COMMIT`: a commit that does not descend from the one the host runs, accepted
    /// once (a deliberate rewind).
    pub accept: Option<String>,
    /// `--ref oci://…`: follow the reference published to a registry instead of `repo` (which
    /// then names it for the status), plain HTTP when `insecure`.
    pub oci: Option<OciSource>,
}

/// A registry the reference is followed from.
#[derive(Debug, Clone)]
pub struct OciSource {
    pub reference: crate::oci::OciRef,
    pub insecure: bool,
}

/// What following the registry remembers between syncs: the client, the digest the tag pointed
/// to and the commit it carried (a tag that did not move is not downloaded again), or why that
/// digest was refused (a tampered artifact is refused once, not downloaded every interval).
#[derive(Default)]
struct OciState {
    registry: Option<crate::oci::Registry>,
    digest: Option<String>,
    commit: Option<String>,
    refused: Option<(String, String)>,
}

/// Why a fetch gave no commit: the source is unreachable (back off), or what it serves is
/// refused (a steady state until it changes).
enum NoCommit {
    Error(String),
    Refused(String),
}

pub use crate::host::agent::Outcome;

/// The longest wait after errors.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

struct Agent<'a> {
    s: &'a AgentSettings,
    /// This agent's operation: its cancellation, sink and variables.
    op: Op,
    refused: Refused,
    /// Whether the refused releases recorded on the host were read back (once).
    recalled: bool,
    /// Where the status is written: the engine and the platform.
    status: Option<(Arc<DockerEngine>, String)>,
    errors: u32,
    last: Option<(String, Option<String>)>,
    /// The result of the sync before (read back from the host after a restart).
    last_result: Option<String>,
    /// The last commit this host converged to: a new one must descend from it.
    applied: Option<String>,
    /// A new commit held or refused while the running one is repaired: (commit, result, why),
    /// what the status says once the repair is done.
    standing: Option<(String, &'static str, String)>,
    /// The webhooks and platform of the last manifest that loaded.
    notify: Vec<Notifier>,
    platform: Option<String>,
    oci: OciState,
}

/// Why a sync could not start, or `--secrets` is refused: the agent's status says it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentError {
    /// `--secrets DIR` is missing, not a directory, or readable by others.
    #[error("{0}")]
    Secrets(String),
    /// A service's env_file breaks the agent's rules (only in `--secrets`, private).
    #[error("service {service}: {why}")]
    EnvFile { service: String, why: String },
    /// The manifest at the fetched commit could not be read or does not name this host.
    #[error("{0}")]
    Manifest(String),
}

/// Checks `--secrets`: a directory that others cannot read or enter.
pub fn check_secrets_dir(dir: &Path) -> Result<(), AgentError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(dir)
        .map_err(|e| AgentError::Secrets(format!("--secrets {}: {e}", dir.display())))?;
    if !meta.is_dir() {
        return Err(AgentError::Secrets(format!(
            "--secrets {} is not a directory",
            dir.display()
        )));
    }
    let mode = meta.permissions().mode();
    if mode & 0o005 != 0 {
        return Err(AgentError::Secrets(format!(
            "--secrets {} can be read by any user (mode {:o}); the env_files in it are secrets: `chmod o-rwx {}`",
            dir.display(),
            mode & 0o777,
            dir.display()
        )));
    }
    Ok(())
}

/// Checks `--age-identity`: a file that others cannot read.
pub fn check_identity_file(file: &Path) -> Result<(), AgentError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(file)
        .map_err(|e| AgentError::Secrets(format!("--age-identity {}: {e}", file.display())))?;
    if meta.permissions().mode() & 0o004 != 0 {
        return Err(AgentError::Secrets(format!(
            "--age-identity {} can be read by any user; it opens the environment's secrets: `chmod o-r {}`",
            file.display(),
            file.display()
        )));
    }
    Ok(())
}

/// The env_files the services of this host read: relative paths inside `--secrets`, each not
/// readable by others. The manifest comes from git, so a path must not leave the directory.
fn check_env_files(loaded: &Loaded, s: &AgentSettings) -> Result<(), AgentError> {
    use std::os::unix::fs::PermissionsExt;
    let m = &loaded.manifest;
    for service in m.services_on(&s.environment, &s.host) {
        let Some(f) = &m.services[service].env_file else {
            continue;
        };
        let refuse = |why: String| AgentError::EnvFile {
            service: service.to_string(),
            why,
        };
        // In git: a SOPS file travels with the reference; a plain one has no place there.
        if let Some(files) = &loaded.cache {
            match files.read(&f.value) {
                Ok(Some(text)) if crate::secrets::is_sops(&text) => continue,
                Ok(Some(_)) => {
                    return Err(refuse(format!(
                        "env_file {} is committed to git in plain text: encrypt it with sops (docs/secrets.md), or keep it out of git and in --secrets",
                        f.value
                    )));
                }
                Ok(None) => {}
                Err(e) => return Err(refuse(format!("env_file {}: {e}", f.value))),
            }
        }
        let Some(dir) = &s.secrets else {
            return Err(AgentError::Manifest(format!(
                "service {service} reads env_file {}: the agent reads env_files only from --secrets DIR (never from git); pass --secrets",
                f.value
            )));
        };
        let rel = Path::new(&f.value);
        if rel.is_absolute()
            || rel
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(refuse(format!(
                "env_file {} must be a plain relative path inside --secrets",
                f.value
            )));
        }
        let path = dir.join(rel);
        let meta = std::fs::metadata(&path)
            .map_err(|e| refuse(format!("env_file {}: {e}", path.display())))?;
        if meta.permissions().mode() & 0o004 != 0 {
            return Err(refuse(format!(
                "env_file {} can be read by any user: `chmod o-r {}`",
                path.display(),
                path.display()
            )));
        }
    }
    Ok(())
}

/// A random share of `max`, different in every process.
fn splay(max: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    let frac = (h.finish() % 10_000) as f64 / 10_000.0;
    max.mul_f64(frac)
}

/// The wait before the next sync: the interval and a splay of up to a fifth of it; after errors,
/// doubling from the interval up to `MAX_BACKOFF` (or the interval, if longer).
pub fn next_wait(interval: Duration, errors: u32) -> Duration {
    if errors == 0 {
        return interval + splay(interval / 5);
    }
    let cap = MAX_BACKOFF.max(interval);
    let grown = interval.saturating_mul(1u32 << errors.min(16));
    grown.min(cap) + splay(interval / 5)
}

/// Runs the agent until cancelled (SIGTERM on the command line), or once with `--once`; each
/// sync is an event (`Progress::Sync`) of the operation. Returns whether the last sync succeeded.
pub async fn run(ctx: &Ctx, s: &AgentSettings) -> bool {
    let op = ctx.op("agent", &s.environment);
    let mut a = Agent::new(s, &op);
    loop {
        let started = std::time::Instant::now();
        let Some(mut outcome) = a.sync().await else {
            return true; // stopped before anything was done
        };
        outcome.took = started.elapsed();
        op.emit(Progress::Sync(Box::new(outcome.clone())));
        if outcome.news {
            a.notify(&outcome).await;
        }
        let ok = outcome.ok();
        if s.once || ctx.cancelled() {
            return ok || ctx.cancelled();
        }
        // A refusal or a deploy window is a steady state, not a failure to back off from: a
        // window that opens is seen within one interval.
        a.errors = if ok || matches!(outcome.sync.result.as_str(), "refused" | "held") {
            0
        } else {
            a.errors + 1
        };
        let wait = next_wait(s.interval, a.errors);
        tracing::debug!("next sync in {:.1}s", wait.as_secs_f64());
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = ctx.cancel.cancelled() => return true,
        }
    }
}

impl<'a> Agent<'a> {
    /// An agent that has synced nothing yet.
    fn new(s: &'a AgentSettings, op: &Op) -> Agent<'a> {
        Agent {
            s,
            op: op.clone(),
            refused: Refused::new(),
            recalled: false,
            status: None,
            errors: 0,
            last: None,
            last_result: None,
            applied: None,
            standing: None,
            notify: vec![],
            platform: None,
            oci: OciState::default(),
        }
    }

    /// The commit the reference points to now: fetched with git, or read from the registry.
    async fn fetch(&mut self) -> Result<String, NoCommit> {
        let s = self.s;
        let Some(src) = &s.oci else {
            return crate::git::fetch_reference(&s.repo, s.branch.as_deref(), &s.cache)
                .await
                .map_err(|e| NoCommit::Error(e.to_string()));
        };
        use crate::oci::{Registry, RegistryError, artifact::ArtifactError};
        let st = &mut self.oci;
        if st.registry.is_none() {
            let r = Registry::connect(&src.reference.repository, src.insecure)
                .await
                .map_err(|e| NoCommit::Error(e.to_string()))?;
            st.registry = Some(r);
        }
        let registry = st.registry.as_ref().expect("connected above");
        let digest = registry
            .digest(&src.reference.tag)
            .await
            .map_err(|e| NoCommit::Error(e.to_string()))?;
        if st.digest.as_deref() == Some(digest.as_str())
            && let Some(c) = &st.commit
        {
            return Ok(c.clone());
        }
        if let Some((d, why)) = &st.refused
            && *d == digest
        {
            return Err(NoCommit::Refused(why.clone()));
        }
        let refuse = |st: &mut OciState, why: String| {
            let why = format!("refused: {} ({digest}): {why}", src.reference);
            st.refused = Some((digest.clone(), why.clone()));
            NoCommit::Refused(why)
        };
        let (config, layer) = match registry.pull(&digest).await {
            Ok(parts) => parts,
            Err(RegistryError::Artifact(e, _)) => return Err(refuse(st, e.to_string())),
            Err(e) => return Err(NoCommit::Error(e.to_string())),
        };
        match crate::oci::artifact::unpack(&config, &layer, &s.cache) {
            Ok(c) => {
                st.digest = Some(digest);
                st.commit = Some(c.commit.clone());
                st.refused = None;
                Ok(c.commit)
            }
            Err(e @ ArtifactError::Cache { .. }) => Err(NoCommit::Error(e.to_string())),
            Err(e) => Err(refuse(st, e.to_string())),
        }
    }

    /// One sync; `None` when interrupted before it did anything.
    async fn sync(&mut self) -> Option<Outcome> {
        let cancel = self.op.ctx.cancel.clone();
        let fetched = tokio::select! {
            r = self.fetch() => r,
            _ = cancel.cancelled() => return None,
        };
        let commit = match fetched {
            Ok(c) => c,
            Err(NoCommit::Error(e)) => {
                return Some(self.finish(None, "error", Some(e), None).await);
            }
            Err(NoCommit::Refused(e)) => {
                return Some(self.finish(None, "refused", Some(e), None).await);
            }
        };
        let loaded = match self.load(&commit) {
            Ok(l) => l,
            Err(e) => {
                return Some(
                    self.finish(Some(commit), "error", Some(e.to_string()), None)
                        .await,
                );
            }
        };
        self.platform = Some(loaded.manifest.platform.clone());
        // Webhooks come from a commit that passed the trust checks, never from one being
        // refused (it could send the refusal anywhere): else from the commit the host runs.
        if self.trust_refusal(&loaded, &commit).is_none() {
            self.notify = loaded.manifest.notify.clone();
        } else if self.notify.is_empty()
            && let Some(a) = self.applied.clone()
            && let Ok(running) = self.load(&a)
        {
            self.notify = running.manifest.notify.clone();
        }
        Some(self.converge(&loaded, commit).await)
    }

    /// The manifest at `commit`, with env_files read from `--secrets`.
    fn load(&self, commit: &str) -> Result<Loaded, AgentError> {
        let s = self.s;
        let text = crate::git::read_file_at(&s.cache, commit, &s.file)
            .map_err(|e| AgentError::Manifest(e.to_string()))?;
        // Relative env_file (and tls) paths are read beside `path`: in --secrets, never in git.
        let beside = s
            .secrets
            .clone()
            .unwrap_or_else(|| s.cache.join("no-secrets"))
            .join(s.file.file_name().unwrap_or_default());
        let display = format!("{}@{}", s.file.display(), crate::git::short_id(commit));
        let mut loaded = manifest::from_text(&display, &beside, text, Some(commit.to_string()))
            .map_err(|e| {
                let first = e
                    .problems
                    .first()
                    .map(|p| format!(" (first, line {}: {})", p.span.line, p.message))
                    .unwrap_or_default();
                AgentError::Manifest(format!("{e}{first}"))
            })?;
        // SOPS files are read in git, at this commit.
        loaded.cache = Some(crate::git::CommitFiles::Cache {
            cache: s.cache.clone(),
            dir: s.file.parent().map(Path::to_path_buf).unwrap_or_default(),
            commit: commit.to_string(),
        });
        fleet::hosts(&loaded, &s.environment, std::slice::from_ref(&s.host))
            .map_err(|e| AgentError::Manifest(e.to_string()))?;
        check_env_files(&loaded, s)?;
        Ok(loaded)
    }

    async fn converge(&mut self, loaded: &Loaded, commit: String) -> Outcome {
        let s = self.s;
        let m = &loaded.manifest;
        let select = Selection {
            services: vec![],
            hosts: vec![s.host.clone()],
        };
        // The engine first: whatever stops the sync after this is recorded in the host's status
        // (a secret no identity here opens, say), where audit shows it.
        let host = match fleet::hosts(loaded, &s.environment, std::slice::from_ref(&s.host)) {
            Ok(mut h) if h.len() == 1 => {
                let mut h = h.remove(0);
                h.target.endpoint = s.endpoint.clone();
                h
            }
            _ => {
                let why = format!("no host {} in {}", s.host, s.environment);
                return self.finish(Some(commit), "error", Some(why), None).await;
            }
        };
        let prefix = view::prefix(&m.platform, &s.environment);
        let observed = fleet::observe(host.clone(), &prefix, s.connect_timeout).await;
        if let Ok((engine, _)) = &observed.result {
            self.status = Some((engine.clone(), m.platform.clone()));
            self.recall(engine, &m.platform).await;
        }
        let mut wanted =
            match deploy::wanted(loaded, &s.environment, &select, false, &self.op.ctx.keys) {
                Ok(w) => w,
                Err(e) => {
                    return self
                        .finish(Some(commit), "error", Some(e.to_string()), None)
                        .await;
                }
            };
        let Some(mut w) = wanted.pop() else {
            let why = format!("no host {} in {}", s.host, s.environment);
            return self.finish(Some(commit), "error", Some(why), None).await;
        };
        w.host = host;
        let p = deploy::prepared(loaded, &select, w, observed.result, true).await;
        if p.engine.is_none() {
            let why = p.error.clone().unwrap_or_else(|| "unreachable".into());
            return self.finish(Some(commit), "error", Some(why), None).await;
        }
        if let Some(why) = self.trust_refusal(loaded, &commit) {
            return self.stand(commit, "refused", why).await;
        }
        // A deploy window holds a new commit (by the engine's clock); when it opens, the newest
        // commit is applied, not each one held in turn. The commit the host runs is still kept.
        if self.applied.as_deref() != Some(commit.as_str())
            && let Some(engine) = &p.engine
            && let Some(h) = crate::ops::windows::hold(loaded, &s.environment, [&**engine]).await
        {
            return self.stand(commit, "held", h.message).await;
        }
        // A refused release is forgotten once its pin, spec or SOPS files changed (or it left
        // this host).
        let keys = agent::release_keys(&p.desired, &sops_tags(loaded, &s.environment, &p.desired));
        self.refused
            .retain(|service, key| keys.get(service) == Some(&*key));
        let todo = agent::without_refused(p.changes.clone(), &keys, &self.refused);
        let held = held_note(&self.refused, &p.desired, &keys);
        if !p.view.needs_repair() && !todo.iter().any(|c| c.kind.is_pending()) {
            let result = if held.is_some() { "refused" } else { "in-sync" };
            return self.finish(Some(commit), result, held, None).await;
        }
        let settings = RunSettings {
            platform: m.platform.clone(),
            environment: s.environment.clone(),
            parallel: 1,
            lock: LockConfig::new(
                &s.identity,
                &format!("agent {}", self.op.info.id),
                None,
                s.lock_ttl,
            ),
            health_timeout: s.health_timeout,
            retain: m.retain,
            rollout: Default::default(),
            stamp: DeployStamp {
                commit: commit.clone(),
                deployed_at: crate::clock::rfc3339(SystemTime::now()),
                deployed_by: s.identity.clone(),
            },
            cancel: self.op.ctx.cancel.clone(),
        };
        let work = Follow {
            refused: self.refused.clone(),
            keys: keys.clone(),
        };
        let progress = |m: &str| tracing::info!("{m}");
        let progress_for =
            |_: &str| -> Box<dyn Fn(&str) + Send + std::marker::Sync> { Box::new(progress) };
        let report = runner::run(vec![p.target(true)], &settings, &work, &progress_for)
            .await
            .pop()
            .expect("one report for one host");
        let (result, reason) = match report.status {
            HostStatus::Converged | HostStatus::Unchanged => {
                let r = if report.actions.is_empty() && report.repaired.is_empty() {
                    "in-sync"
                } else {
                    "converged"
                };
                (r, held_note(&self.refused, &p.desired, &keys))
            }
            HostStatus::Failed => match report.failure.as_ref().filter(|f| f.judged) {
                Some(f) => {
                    if let Some(key) = keys.get(&f.service) {
                        self.refused.insert(f.service.clone(), key.clone());
                    }
                    ("refused", report.error.clone())
                }
                None => ("failed", report.error.clone()),
            },
            HostStatus::Locked => ("locked", report.error.clone()),
            HostStatus::Interrupted => ("interrupted", report.error.clone()),
            _ => ("error", report.error.clone()),
        };
        self.finish(Some(commit), result, reason, Some(report))
            .await
    }

    /// `commit` is held or refused: the host keeps the commit it runs, and what that commit pins
    /// is still repaired (a container stopped or removed by hand, a swap a crash interrupted),
    /// under the host's lock as any sync. The status then names the new commit and why it waits.
    async fn stand(&mut self, commit: String, result: &'static str, why: String) -> Outcome {
        let running = self
            .applied
            .clone()
            .filter(|a| *a != commit && self.standing.is_none())
            .and_then(|a| self.load(&a).ok().map(|l| (a, l)));
        let Some((applied, loaded)) = running else {
            return self.finish(Some(commit), result, Some(why), None).await;
        };
        self.standing = Some((commit, result, why));
        Box::pin(self.converge(&loaded, applied)).await
    }

    /// Why `commit` may not be applied here, if it may not: it does not descend from the commit
    /// this host runs (a replay of an older signed commit; `--accept` lets one through), or it
    /// must be signed — the agent has its own allowed signers, or the manifest deployed or the
    /// one the host runs says `trust: {signed: true}` — and is not, by an allowed signer.
    fn trust_refusal(&self, loaded: &Loaded, commit: &str) -> Option<String> {
        use crate::git::short_id;
        let s = self.s;
        let accepted = s
            .accept
            .as_deref()
            .is_some_and(|a| a.len() >= 7 && commit.starts_with(a));
        if let Some(applied) = &self.applied
            && !accepted
        {
            match crate::git::descends(&s.cache, commit, applied) {
                Ok(true) => {}
                Ok(false) => {
                    return Some(format!(
                        "refused: {} is not a descendant of {} (the commit this host runs); `--accept {}` rewinds deliberately",
                        short_id(commit),
                        short_id(applied),
                        short_id(commit)
                    ));
                }
                Err(e) => return Some(format!("refused: {e}")),
            }
        }
        let env = &s.environment;
        let running: std::collections::BTreeSet<String> = self.applied.iter().cloned().collect();
        let required = s.trust.is_some()
            || crate::ops::trust::signed_here(loaded, env)
            || crate::ops::trust::signed_in(env, &running, |c| {
                crate::git::read_file_at(&s.cache, c, &s.file).ok()
            });
        if !required {
            return None;
        }
        let root = s.trust.clone().unwrap_or_default();
        let lists = crate::ops::trust::signer_lists(loaded, env, &running, |c| {
            crate::git::read_file_at(&s.cache, c, &s.file).ok()
        });
        crate::ops::trust::verify_all(&s.cache, commit, &root, env, &lists)
            .err()
            .map(|e| e.to_string())
    }

    /// Once: the releases refused on this host by an earlier run of the agent.
    async fn recall(&mut self, engine: &DockerEngine, platform: &str) {
        if self.recalled {
            return;
        }
        if let Ok(found) = agent::read_status(engine, platform, &self.s.environment).await {
            self.recalled = true;
            if let Some(c) = found {
                let before = Sync::from_labels(&c.labels);
                if before.host == self.s.host {
                    self.refused.extend(before.refused);
                    self.last_result.get_or_insert(before.result);
                    if self.applied.is_none() {
                        self.applied = before.applied;
                    }
                }
            }
        }
    }

    /// Records a sync on the host (when it can be reached) and says what it was.
    async fn finish(
        &mut self,
        commit: Option<String>,
        result: &str,
        reason: Option<String>,
        report: Option<HostReport>,
    ) -> Outcome {
        let s = self.s;
        let applied = if matches!(result, "in-sync" | "converged") {
            commit.clone()
        } else {
            self.applied.clone()
        };
        // Repairing the running commit while a new one waits: the status names the new one.
        let (commit, result, reason) = match self.standing.take() {
            None => (commit, result, reason),
            Some((new, held, why)) if matches!(result, "in-sync" | "converged") => {
                (Some(new), held, Some(why))
            }
            Some((new, _, why)) => {
                let failed = reason.unwrap_or_else(|| result.to_string());
                let running = applied.as_deref().map(crate::git::short_id);
                let why = format!(
                    "{why}; repairing {} failed: {failed}",
                    running.unwrap_or_default()
                );
                (Some(new), result, Some(why))
            }
        };
        let sync = Sync {
            host: s.host.clone(),
            commit,
            synced_at: crate::clock::rfc3339(SystemTime::now()),
            result: result.to_string(),
            reason,
            interval_secs: s.interval.as_secs().max(1),
            refused: self.refused.clone(),
            repo: crate::git::redact_url(&s.repo),
            applied,
            digest: self.oci.digest.clone(),
        };
        self.applied = sync.applied.clone();
        if let Some((engine, platform)) = &self.status
            && let Err(e) = agent::write_status(&**engine, platform, &s.environment, &sync).await
        {
            tracing::warn!("could not record the sync on {}: {e}", engine.endpoint());
        }
        let key = (
            format!("{}{}", sync.result, sync.commit.clone().unwrap_or_default()),
            sync.reason.clone(),
        );
        let changed = self.last.as_ref() != Some(&key);
        self.last = Some(key);
        let acted = report
            .as_ref()
            .is_some_and(|r| !r.actions.is_empty() || !r.repaired.is_empty());
        // `converged` then `in-sync` is one state (the host is on the reference): not news twice.
        let state = |r: &str| if r == "converged" { "in-sync" } else { r }.to_string();
        let news = acted || self.last_result.as_deref().map(state) != Some(state(result));
        self.last_result = Some(result.to_string());
        Outcome {
            sync,
            report,
            changed,
            news,
            took: std::time::Duration::ZERO,
        }
    }

    /// Posts the sync to the manifest's webhooks; a failure is a warning in the agent's log.
    async fn notify(&self, o: &Outcome) {
        let (Some(platform), false) = (&self.platform, self.notify.is_empty()) else {
            return;
        };
        let event = agent_event(platform, &self.s.environment, &self.s.identity, o);
        for sent in notify::send_all(&self.notify, &event, &self.op.ctx.vars).await {
            match sent {
                Sent::Delivered { to, status } => tracing::debug!("notified {to} (HTTP {status})"),
                Sent::Failed { to, why } => {
                    tracing::warn!("the notification to {to} failed: {why}")
                }
            }
        }
    }
}

/// The event a webhook receives for an agent's sync: command `agent`, the host's report when the
/// agent ran one, else the host and why the sync did not get that far.
fn agent_event(platform: &str, environment: &str, who: &str, o: &Outcome) -> Event {
    let ended = match o.sync.result.as_str() {
        "in-sync" | "converged" => Ended::Success,
        "interrupted" => Ended::Interrupted,
        _ => Ended::Failure,
    };
    let commit = o.sync.commit.as_deref().unwrap_or("unknown");
    let mut event = Event::new("agent", platform, environment, commit, who);
    event = match &o.report {
        Some(r) => event.ran(std::slice::from_ref(r), ended),
        None => {
            event.hosts.push(HostEntry {
                host: o.sync.host.clone(),
                status: None,
                error: o.sync.reason.clone(),
            });
            event.ended(ended)
        }
    };
    event.notes.push(match &o.sync.reason {
        Some(r) => format!("{}: {r}", o.sync.result),
        None => o.sync.result.clone(),
    });
    event
}

/// Says which releases are held back on this host, if any.
fn held_note(
    refused: &Refused,
    desired: &[Arc<crate::manifest::resolve::ResolvedService>],
    keys: &BTreeMap<String, String>,
) -> Option<String> {
    let held: Vec<String> = desired
        .iter()
        .filter(|r| {
            refused
                .get(&r.service)
                .is_some_and(|k| keys.get(&r.service) == Some(k))
        })
        .map(|r| format!("{} {}", r.service, r.pin))
        .collect();
    (!held.is_empty()).then(|| {
        format!(
            "{} failed its gate on this host: not tried again until its pin, spec or secrets change",
            held.join(", ")
        )
    })
}

/// Per service of `desired` that reads SOPS files: a digest of those files as the fetched commit
/// holds them — their encrypted text, which git already publishes, never a decrypted value —
/// so that a release refused for a wrong secret is tried again once the secret is corrected.
fn sops_tags(
    loaded: &Loaded,
    env: &str,
    desired: &[Arc<crate::manifest::resolve::ResolvedService>],
) -> BTreeMap<String, String> {
    use sha2::{Digest, Sha256};
    let Some(files) = &loaded.cache else {
        return BTreeMap::new();
    };
    desired
        .iter()
        .filter_map(|r| {
            let mut h = Sha256::new();
            let mut any = false;
            let mut paths = crate::ops::secrets::files_of(&loaded.manifest, env, &r.service);
            paths.sort_unstable();
            paths.dedup();
            for path in paths {
                if let Ok(Some(text)) = files.read(path)
                    && crate::secrets::is_sops(&text)
                {
                    h.update(path.as_bytes());
                    h.update([0]);
                    h.update(text.as_bytes());
                    h.update([0]);
                    any = true;
                }
            }
            any.then(|| (r.service.clone(), hex::encode(&h.finalize()[..8])))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secrets_dir_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile_dir();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = check_secrets_dir(&dir).unwrap_err();
        assert!(
            e.to_string().contains("can be read by any user (mode 755)"),
            "{e}"
        );
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750)).unwrap();
        assert_eq!(check_secrets_dir(&dir), Ok(()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("fleetpin-agent-test-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn settings() -> AgentSettings {
        AgentSettings {
            repo: "git://git.example/platform.git".into(),
            branch: None,
            file: "fleet.yaml".into(),
            environment: "prod".into(),
            host: "h1".into(),
            endpoint: Endpoint::parse("unix:///var/run/docker.sock").unwrap(),
            secrets: None,
            interval: Duration::from_secs(30),
            once: false,
            cache: std::env::temp_dir(),
            connect_timeout: Duration::from_secs(5),
            health_timeout: Duration::from_secs(60),
            identity: "fleetpin-agent@h1".into(),
            lock_ttl: None,
            trust: None,
            accept: None,
            oci: None,
        }
    }

    fn test_op() -> crate::ops::context::Op {
        crate::ops::context::Ctx::new(
            crate::ops::context::Actor::new("fleetpin-agent@h1"),
            crate::cancel::Cancel::new(),
            std::sync::Arc::new(crate::ops::context::Discard),
            Duration::from_secs(5),
        )
        .op("agent", "prod")
    }

    fn agent(s: &AgentSettings) -> Agent<'_> {
        Agent {
            platform: Some("shop".into()),
            ..Agent::new(s, &test_op())
        }
    }

    /// Whether a sync with `result` (and `report`) is news to the agent `a`.
    fn news(a: &mut Agent<'_>, result: &str, report: Option<HostReport>) -> bool {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(a.finish(Some("c1".into()), result, Some("why".into()), report))
            .news
    }

    #[test]
    fn a_result_that_repeats_is_news_once() {
        let s = settings();
        let a = &mut agent(&s);
        assert!(news(a, "error", None));
        // Unreachable for hours: one message, not one per interval.
        assert!(!news(a, "error", None));
        assert!(!news(a, "error", None));
        assert!(news(a, "in-sync", None));
        assert!(!news(a, "in-sync", None));
        // A sync that changed the host is news; the next one (nothing to do) is not.
        let mut report = HostReport::new("h1", "unix:///run/docker.sock", HostStatus::Converged);
        report.repaired.push("web: a half-done swap".into());
        assert!(news(a, "converged", Some(report)));
        assert!(!news(a, "in-sync", None));
        assert!(news(a, "refused", None));
        assert!(!news(a, "refused", None));
    }

    #[test]
    fn after_a_restart_the_result_recorded_on_the_host_is_the_one_before() {
        let s = settings();
        let mut a = agent(&s);
        a.last_result = Some("refused".into()); // what `recall` read back
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let o = rt.block_on(a.finish(Some("c1".into()), "refused", None, None));
        assert!(!o.news, "agents restarted together do not all post again");
    }

    #[test]
    fn a_sync_that_did_not_reach_the_host_says_why_in_the_chat_line() {
        let s = settings();
        let mut a = agent(&s);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let o = rt.block_on(a.finish(
            None,
            "error",
            Some("git fetch git://git.example/platform.git: connection refused".into()),
            None,
        ));
        let e = agent_event("shop", "prod", &s.identity, &o);
        assert_eq!(e.command, "agent");
        assert_eq!(e.commit, "unknown");
        assert_eq!(e.result, Some(Ended::Failure));
        assert_eq!(
            e.text(),
            "❌ fleetpin agent prod (shop) failed — by fleetpin-agent@h1, manifest unknown: \
             h1: git fetch git://git.example/platform.git: connection refused"
        );
    }

    #[test]
    fn errors_back_off_up_to_a_cap() {
        let i = Duration::from_secs(30);
        let w0 = next_wait(i, 0);
        assert!(w0 >= i && w0 <= i + i / 5);
        let w1 = next_wait(i, 1);
        assert!(w1 >= 2 * i && w1 <= 2 * i + i / 5);
        let w9 = next_wait(i, 9);
        assert!(w9 >= MAX_BACKOFF && w9 <= MAX_BACKOFF + i / 5);
        // An interval longer than the cap is never shortened by errors.
        let long = Duration::from_secs(900);
        assert!(next_wait(long, 3) >= long);
    }
}
