//! The one error type of the commands, and the exit codes of the contract. Lower layers have
//! their own typed errors (engine, lock, git, manifest); a command turns what stops it into an
//! `Error`, which knows how it is shown and with which code fleetpin exits.

use crate::manifest::diagnostics::ManifestError;
use std::process::ExitCode;

/// Exit codes of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    Failure = 1,
    /// `plan --detailed-exitcode` with changes pending, `audit --exit-code` with drift.
    Pending = 2,
    Interrupted = 130,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// What went wrong and what to do, for the operator.
    #[error("{0}")]
    Message(String),
    /// Every problem of a manifest, located.
    #[error("{} has problems", .0.file)]
    Manifest(Box<ManifestError>),
    /// What stopped a command, with its own exit code (130 when Ctrl-C stopped a hook).
    #[error("{message}")]
    Failed { message: String, exit: Exit },
    /// Already shown (a report was printed): only the exit code is left to give.
    #[error("already reported")]
    Reported(Exit),
}

impl Error {
    pub fn msg(m: impl Into<String>) -> Error {
        Error::Message(m.into())
    }

    pub fn exit(&self) -> Exit {
        match self {
            Error::Reported(e) | Error::Failed { exit: e, .. } => *e,
            _ => Exit::Failure,
        }
    }
}

impl From<ManifestError> for Error {
    fn from(e: ManifestError) -> Error {
        Error::Manifest(Box::new(e))
    }
}

impl From<crate::git::GitError> for Error {
    fn from(e: crate::git::GitError) -> Error {
        Error::Message(e.to_string())
    }
}

/// Typed errors of the layers below the commands, shown as they read (`Error::Message`).
macro_rules! shown_as_message {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Error {
                Error::Message(e.to_string())
            }
        }
    )*};
}

shown_as_message!(
    crate::manifest::resolve::UnknownEnvironment,
    crate::host::fleet::HostsError,
);

pub type Result<T, E = Error> = std::result::Result<T, E>;
