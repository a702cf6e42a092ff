//! Operations shared by several commands, above the host machinery and below the commands: the
//! pin write path (rollback, promote).

pub mod pins;
