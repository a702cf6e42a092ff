//! The host machinery, the one place that changes hosts: the runner (which hosts, in what order,
//! each locked and repaired first), the swap (one service from one container to another), the
//! gate that judges a new container, converge (apply's steps on a host), rollback's steps, repair,
//! the lock, and reaching hosts (`fleet`). Everything here is generic over `engine::Engine`.

pub mod agent;
pub mod cleanup;
pub mod converge;
pub mod crashed;
pub mod fleet;
pub mod gate;
pub mod lock;
pub mod moving;
pub mod repair;
pub mod report;
pub mod rollback;
pub mod rollout;
pub mod runner;
pub mod secrets;
pub mod settings;
pub mod spec;
pub mod swap;
pub mod swarm;
pub mod waves;
