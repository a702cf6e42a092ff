//! The operations both faces call — the command line and, later, a console. Each takes typed
//! inputs and a context (`context`: the actor, a cancellation token, a sink for its events),
//! returns a typed outcome or an `OpError`, and never prints. Beside them, what they share:
//! preparing a run over an environment (`deploy`: resolve, observe, plan), the hooks, webhooks
//! and push around the work (`around`), a run over hosts (`run`), the one pin write path, the
//! webhook document (`event`).

pub mod agent;
pub mod apply;
pub mod around;
pub mod audit;
pub mod context;
pub mod deploy;
pub mod error;
pub mod event;
pub mod history;
pub mod hooks;
pub mod logs;
pub mod moving;
pub mod notify;
pub mod pins;
pub mod plan;
pub mod prepared;
pub mod promote;
pub mod publish;
pub mod rollback;
pub mod run;
pub mod secrets;
pub mod swarm;
pub mod trust;
pub mod unlock;
pub mod validate;
pub mod windows;
