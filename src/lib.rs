//! fleetpin keeps a fleet of plain Docker hosts at the image versions pinned, per environment, in
//! one manifest versioned in git.
//!
//! Layout: `manifest` (model and loading) with `yaml` (spanned tree), `decode` and `checks`;
//! `values` and `pin` (value syntaxes); `resolve` (desired state per host, spec hash); `engine`
//! (the one Docker seam) and `docker` (bollard behind it); `cli`, `app`, `render`, `schema` (the
//! command line). See docs/architecture.md.

pub mod app;
pub mod apply;
pub mod audit;
pub mod checks;
pub mod cli;
pub mod credentials;
pub mod decode;
pub mod deploy;
pub mod diagnostics;
pub mod docker;
pub mod engine;
pub mod fleet;
pub mod git;
pub mod history;
pub mod interrupt;
pub mod labels;
pub mod lock;
pub mod manifest;
pub mod memory;
pub mod pin;
pub mod pins;
pub mod plan;
pub mod promote;
pub mod render;
pub mod repair;
pub mod report;
pub mod resolve;
pub mod rollback;
pub mod schema;
pub mod values;
pub mod yaml;

pub use app::run;
