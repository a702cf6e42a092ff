//! The one write path for pins, shared by rollback and promote: edit an environment's pins in
//! the manifest text (pure, `manifest::edit`), write the file, and commit it alone (`git`).

/// The one write path for pins, shared by rollback and promote: edit `env`'s pins in the
/// manifest text, write the file, and — with a message — commit it alone. Returns the commit id
/// when committed; an error says whether the file was already written.
pub fn write_and_commit(
    path: &std::path::Path,
    text: &str,
    env: &str,
    edits: &[(String, String)],
    message: Option<&str>,
) -> Result<Option<String>, (bool, String)> {
    let new =
        crate::manifest::edit::set_pins(text, env, edits).map_err(|e| (false, e.to_string()))?;
    std::fs::write(path, new).map_err(|e| (false, e.to_string()))?;
    match message {
        Some(m) => crate::git::commit_manifest(path, m)
            .map(Some)
            .map_err(|e| (true, e.to_string())),
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
