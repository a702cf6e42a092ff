//! The one write path for pins, shared by rollback and promote: edit an environment's pins in
//! the manifest text (pure, `manifest::edit`), write the file, and commit it alone (`git`).

use crate::ops::context::Actor;

/// Why pins could not be written, and whether the file was already changed on disk.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PinWriteError {
    #[error("{0}")]
    Edit(String),
    #[error("cannot write {path}: {reason}")]
    Write { path: String, reason: String },
    /// The file was written; the commit failed.
    #[error("{0}")]
    Commit(#[from] crate::git::GitError),
}

impl PinWriteError {
    /// Whether the manifest file on disk was changed before the error.
    pub fn written(&self) -> bool {
        matches!(self, PinWriteError::Commit(_))
    }
}

/// How a pins commit is written: signed (`ops::trust::signing`), and with a trailer paragraph
/// (a deploy window overridden, and why).
#[derive(Debug, Clone, Default)]
pub struct CommitHow {
    pub signing: Option<crate::trust::Signing>,
    pub trailer: Option<String>,
}

impl CommitHow {
    /// `message`, with the trailer as its last paragraph.
    pub fn message(&self, message: &str) -> String {
        match &self.trailer {
            Some(t) => format!("{message}\n\n{t}"),
            None => message.to_string(),
        }
    }
}

/// The one write path for pins, shared by rollback and promote: edit `env`'s pins in the
/// manifest text, write the file, and — with a message — commit it alone, authored by `actor`.
/// Returns the commit id when committed.
pub fn write_and_commit(
    path: &std::path::Path,
    text: &str,
    env: &str,
    edits: &[(String, String)],
    message: Option<&str>,
    actor: &Actor,
    sign: Option<&crate::trust::Signing>,
) -> Result<Option<String>, PinWriteError> {
    let new = crate::manifest::edit::set_pins(text, env, edits)
        .map_err(|e| PinWriteError::Edit(e.to_string()))?;
    std::fs::write(path, new).map_err(|e| PinWriteError::Write {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    // A console's action: who asked, beyond the author line (which a console sets too).
    let message = message.map(|m| match &actor.subject {
        Some(subject) => format!("{m}\n\nFleetpin-Actor: {} ({subject})", actor.id),
        None => m.to_string(),
    });
    match message.as_deref() {
        Some(m) => Ok(Some(crate::git::commit_manifest(
            path,
            m,
            actor.author.as_ref(),
            &actor.id,
            sign,
        )?)),
        None => Ok(None),
    }
}

/// `rollback prod: billing 2.4.1 -> 2.4.0, crm 1.9.0 -> 1.8.2`
pub fn message(verb: &str, envs: &str, moves: &[(String, String, String)]) -> String {
    let list: Vec<String> = moves
        .iter()
        .map(|(s, from, to)| format!("{s} {from} -> {to}"))
        .collect();
    format!("{verb} {envs}: {}", list.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_lists_every_move() {
        let moves = vec![(
            "billing".to_string(),
            "2.4.1".to_string(),
            "2.4.0".to_string(),
        )];
        assert_eq!(
            message("rollback", "prod", &moves),
            "rollback prod: billing 2.4.1 -> 2.4.0"
        );
    }
}
