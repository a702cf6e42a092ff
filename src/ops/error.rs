//! The operations' one error type. Each variant says what stopped an operation before it changed
//! anything, with the input that caused it and what to do; the command line maps it to a message
//! and an exit code (`error::Error`), a console to an HTTP status (`status`).

use crate::manifest::diagnostics::ManifestError;
use crate::ops::hooks::HookError;

#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// Every problem of a manifest, located.
    #[error("{} has problems", .0.file)]
    Manifest(Box<ManifestError>),
    /// The request does not fit the manifest (an environment, service or host it does not have,
    /// a flag that does not apply there).
    #[error("{0}")]
    Invalid(String),
    /// `-s NAME` names a service the environment does not pin.
    #[error("`{service}` is not pinned in {environment}, {why} (pinned: {pinned})")]
    NotPinned {
        service: String,
        environment: String,
        why: &'static str,
        pinned: String,
    },
    /// A rule of the manifest or of the fleet refuses what was asked; nothing was changed.
    #[error("{0}")]
    Refused(String),
    /// A `pre_` hook failed, timed out or was interrupted: nothing was changed.
    #[error("{0}: nothing was changed")]
    Blocked(HookError),
    /// A Swarm environment's lock is held (or vanished once taken).
    #[error(transparent)]
    SwarmLock(Box<crate::host::swarm::SwarmLockError>),
    /// The manifest's repository.
    #[error(transparent)]
    Git(#[from] crate::git::GitError),
    /// An engine (a Swarm manager, a host) could not be reached or answered an error.
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    /// The registry the reference is published to (unreachable, credentials refused).
    #[error(transparent)]
    Registry(#[from] crate::oci::RegistryError),
    /// The reference could not be packed at a commit.
    #[error(transparent)]
    Artifact(#[from] crate::oci::artifact::ArtifactError),
    /// A file could not be read or written.
    #[error("cannot {what} {path}: {reason}")]
    File {
        what: &'static str,
        path: String,
        reason: String,
    },
}

/// What a console answers for each error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    BadRequest,
    Conflict,
    BadGateway,
    Internal,
}

impl OpError {
    /// Whether a cancellation stopped it (exit 130 on the command line).
    pub fn interrupted(&self) -> bool {
        matches!(self, OpError::Blocked(h) if h.interrupted())
    }

    pub fn status(&self) -> Status {
        match self {
            OpError::Manifest(_) | OpError::Invalid(_) | OpError::NotPinned { .. } => {
                Status::BadRequest
            }
            OpError::Refused(_) | OpError::Blocked(_) | OpError::SwarmLock(_) => Status::Conflict,
            OpError::Engine(_) | OpError::Registry(_) => Status::BadGateway,
            OpError::Git(_) | OpError::File { .. } | OpError::Artifact(_) => Status::Internal,
        }
    }

    /// `service` is not pinned in `env`: `why` completes "so it has nothing to roll back".
    pub fn not_pinned(
        env: &str,
        e: &crate::manifest::Environment,
        service: &str,
        why: &'static str,
    ) -> OpError {
        OpError::NotPinned {
            service: service.into(),
            environment: env.into(),
            why,
            pinned: e.versions.keys().cloned().collect::<Vec<_>>().join(", "),
        }
    }
}

impl From<ManifestError> for OpError {
    fn from(e: ManifestError) -> OpError {
        OpError::Manifest(Box::new(e))
    }
}

impl From<crate::host::swarm::SwarmLockError> for OpError {
    fn from(e: crate::host::swarm::SwarmLockError) -> OpError {
        OpError::SwarmLock(Box::new(e))
    }
}

impl From<crate::manifest::resolve::UnknownEnvironment> for OpError {
    fn from(e: crate::manifest::resolve::UnknownEnvironment) -> OpError {
        OpError::Invalid(e.to_string())
    }
}

impl From<crate::host::fleet::HostsError> for OpError {
    fn from(e: crate::host::fleet::HostsError) -> OpError {
        OpError::Invalid(e.to_string())
    }
}

/// The Swarm entry points still answer with the commands' error; carried over as they read.
impl From<crate::error::Error> for OpError {
    fn from(e: crate::error::Error) -> OpError {
        match e {
            crate::error::Error::Manifest(m) => OpError::Manifest(m),
            e => OpError::Invalid(e.to_string()),
        }
    }
}

pub type OpResult<T> = Result<T, OpError>;
