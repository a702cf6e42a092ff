//! fleetpin keeps a fleet of plain Docker hosts at the image versions pinned, per environment, in
//! one manifest versioned in git. See docs/architecture.md for the layers and what each holds.

pub mod app;
pub mod apply;
pub mod audit;
pub mod cli;
pub mod deploy;
pub mod engine;
pub mod fleet;
pub mod git;
pub mod history;
pub mod interrupt;
pub mod lock;
pub mod manifest;
pub mod ops;
pub mod plan;
pub mod promote;
pub mod render;
pub mod repair;
pub mod rollback;

pub use app::run;
