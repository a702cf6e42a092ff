//! fleetpin keeps a fleet of plain Docker hosts at the image versions pinned, per environment, in
//! one manifest versioned in git.
//!
//! Layers, each importing only those below it (docs/architecture.md draws them):
//! `manifest` (the format: parse, check, resolve, edit pins — pure) and `engine` (the one seam to
//! a container engine: the trait, bollard behind it, an in-memory one for tests) at the bottom,
//! with `observed` (what an engine reports: containers, log lines, Swarm services and tasks);
//! `plan` (pure decisions over what a host shows: roles, changes, rollback's choice); `host` (the
//! one runner and the one swap, the gate, repair, the lock); `ops` (operations several commands
//! share); `render` (what people read); `cmd` (one file per command); `app` (dispatch, the edge).
//! `secrets` stands apart, importing none of them: SOPS files (age) read and checked in memory.

/// mimalloc instead of glibc's malloc: parsing a manifest, classifying a fleet's containers and
/// planning are allocation-heavy (small strings and maps by the hundred thousand), and glibc's
/// malloc and free were about a third of the pure plan's time (docs/benchmarks.md). Declared in
/// the library so that the benchmarks measure the allocator the binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod app;
pub mod cancel;
pub mod cli;
pub mod clock;
pub mod cmd;
pub mod config;
pub mod engine;
pub mod error;
pub mod git;
pub mod host;
pub mod identity;
pub mod import;
pub mod interrupt;
pub mod manifest;
pub mod observed;
pub mod oci;
pub mod ops;
pub mod plan;
pub mod render;
pub mod secrets;
pub mod serve;
pub mod trust;

pub use app::run;
