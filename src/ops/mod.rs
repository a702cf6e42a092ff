//! Operations shared by several commands, above the host machinery and below the commands:
//! preparing a run over an environment (`deploy`: resolve, observe, plan), the audit's rows and
//! statuses, the pull agent's loop, promotion's gates, the pin history, and the one pin write path.

pub mod agent;
pub mod audit;
pub mod deploy;
pub mod event;
pub mod history;
pub mod hooks;
pub mod logs;
pub mod notify;
pub mod pins;
pub mod promote;
pub mod rollback;
pub mod swarm;
