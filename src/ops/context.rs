//! What an operation takes from whoever calls it instead of reading the process: who acts (the
//! deployed-by label, the lock's owner, the commit's author), a cancellation token, where its
//! progress goes (a sink of typed events), and how long to wait for an engine. The command line
//! builds one per command; a console builds one per request, so two people's operations can run
//! at once in one process, each with its own events, commits and cancellation.

use crate::cancel::Cancel;
use crate::git::Author;
use crate::ops::event::Event;
use crate::secrets::Keys;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Who acts: what goes on containers (`io.fleetpin.deployed-by`), on the lock, in events and
/// webhooks; and who authors the commits an operation writes (`None`: the repository's own git
/// identity, as `git commit` would take it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub id: String,
    pub author: Option<Author>,
    /// Who the console signed in (the OpenID subject, or the token's id): the commits it writes
    /// for them carry a `Fleetpin-Actor: id (subject)` trailer.
    pub subject: Option<String>,
}

impl Actor {
    pub fn new(id: impl Into<String>) -> Actor {
        Actor {
            id: id.into(),
            author: None,
            subject: None,
        }
    }

    /// The operator at a terminal: `named` (the command line's `FLEETPIN_USER`), else git's
    /// user.email in the manifest's repository, else user@hostname; commits by git's identity.
    pub fn operator(manifest: &std::path::Path, named: Option<String>) -> Actor {
        Actor::new(
            named
                .or_else(|| crate::git::user_email(manifest))
                .unwrap_or_else(|| {
                    format!(
                        "{}@{}",
                        crate::identity::user(),
                        crate::identity::hostname()
                    )
                }),
        )
    }
}

/// The variables an operation may read by name (a webhook's `webhook_env` token): the process
/// environment for the command line; whatever a console allows for its requests.
pub type Vars = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// What every operation is given.
#[derive(Clone)]
pub struct Ctx {
    pub actor: Actor,
    pub cancel: Cancel,
    pub sink: Arc<dyn Sink>,
    pub connect_timeout: Duration,
    pub vars: Vars,
    /// The age identities that open the reference's SOPS files.
    pub keys: Arc<Keys>,
    /// Who runs the manifest's hooks, and so how far they are trusted.
    pub hooks: Hooks,
}

/// Whose machine the manifest's hooks run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Hooks {
    /// The operator's own (the command line, an agent): a hook sees the process's environment,
    /// which is how it gets its tokens.
    #[default]
    Operator,
    /// The console's, which holds every environment's keys and serves many people: a hook runs
    /// only from a commit that passes the environment's signature check, with an environment
    /// scrubbed of everything but PATH, LANG, TZ and fleetpin's own variables.
    Console,
}

impl Ctx {
    /// A context with no variables (`vars`) to read.
    pub fn new(
        actor: Actor,
        cancel: Cancel,
        sink: Arc<dyn Sink>,
        connect_timeout: Duration,
    ) -> Ctx {
        Ctx {
            actor,
            cancel,
            sink,
            connect_timeout,
            vars: Arc::new(|_: &str| None),
            keys: Arc::new(Keys::none()),
            hooks: Hooks::Operator,
        }
    }

    /// Hooks run as the console runs them (`Hooks::Console`).
    pub fn with_console_hooks(mut self) -> Ctx {
        self.hooks = Hooks::Console;
        self
    }

    pub fn with_keys(mut self, keys: Arc<Keys>) -> Ctx {
        self.keys = keys;
        self
    }

    pub fn with_vars(mut self, vars: Vars) -> Ctx {
        self.vars = vars;
        self
    }

    /// Starts one operation: its events carry its id, command, environment and actor.
    pub fn op(&self, command: &str, environment: &str) -> Op {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
        Op {
            info: Arc::new(OpInfo {
                id: format!("{command}-{:x}{:x}-{n}", nanos, std::process::id()),
                command: command.into(),
                environment: environment.into(),
                actor: self.actor.id.clone(),
            }),
            ctx: self.clone(),
        }
    }

    pub fn cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
}

/// Which operation an event belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpInfo {
    pub id: String,
    /// `apply`, `rollback`, `promote`, `unlock`, `logs`, `agent`…
    pub command: String,
    pub environment: String,
    pub actor: String,
}

/// One running operation: emits its events to the caller's sink.
#[derive(Clone)]
pub struct Op {
    pub info: Arc<OpInfo>,
    pub ctx: Ctx,
}

impl Op {
    pub fn emit(&self, progress: Progress) {
        self.ctx.sink.emit(&OpEvent {
            operation: self.info.clone(),
            progress,
        });
    }

    pub fn warn(&self, message: impl Into<String>) {
        self.emit(Progress::Warning {
            message: message.into(),
        });
    }

    pub fn cancel(&self) -> &Cancel {
        &self.ctx.cancel
    }

    /// A reporter of one host's steps, as the host runner takes it.
    pub fn host_steps(&self, host: &str) -> Box<dyn Fn(&str) + Send + Sync> {
        let op = self.clone();
        let host = host.to_string();
        Box::new(move |step: &str| {
            op.emit(Progress::Step {
                host: host.clone(),
                step: step.to_string(),
            })
        })
    }
}

/// What an operation reports while it works. Serde documents: `--format json` faces and the
/// console stream them as they are.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Progress {
    /// A host's step in a run (`pulling web`, `web healthy`, `converged`).
    Step { host: String, step: String },
    /// Every host of the run has its report (a terminal clears its spinners).
    HostsDone,
    /// A Swarm run's progress line.
    Swarm { line: String },
    /// Something the person should know; the operation goes on.
    Warning { message: String },
    /// One of the manifest's hooks starts (its first line).
    Hook { hook: String, line: String },
    /// A webhook received the event.
    Notified { to: String, status: u16 },
    /// A webhook could not be told.
    NotifyFailed { to: String, why: String },
    /// The webhook document: before the work (no result yet) and once it ended.
    Event(Box<Event>),
    /// A pull agent's sync ended.
    Sync(Box<crate::host::agent::Outcome>),
}

/// One event of one operation.
#[derive(Debug, Clone, Serialize)]
pub struct OpEvent {
    pub operation: Arc<OpInfo>,
    #[serde(flatten)]
    pub progress: Progress,
}

/// Where an operation's events go.
pub trait Sink: Send + Sync {
    fn emit(&self, event: &OpEvent);
}

/// Drops every event (a caller that only wants the outcome).
pub struct Discard;

impl Sink for Discard {
    fn emit(&self, _: &OpEvent) {}
}

/// Keeps every event, for tests and for a console that replays an operation's events.
#[derive(Default)]
pub struct Recorder(Mutex<Vec<OpEvent>>);

impl Recorder {
    pub fn new() -> Arc<Recorder> {
        Arc::new(Recorder::default())
    }

    pub fn events(&self) -> Vec<OpEvent> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Sink for Recorder {
    fn emit(&self, event: &OpEvent) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event.clone());
    }
}
