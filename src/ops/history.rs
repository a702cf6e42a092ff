//! Who changed which pin when, read from the manifest's git history (`fleetpin history`). Only
//! commits that changed the file are parsed (the walk compares blob ids), so a repository with
//! thousands of commits answers quickly. Old revisions may not validate any more: pins are read
//! leniently, straight from the YAML tree.

use crate::manifest::yaml::{self, Node, Value};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// RFC 3339, UTC.
    pub date: String,
    pub author: String,
    pub commit: String,
    pub environment: String,
    pub service: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub subject: String,
    /// Who signed the commit, as git judges it with the operator's allowed signers
    /// (`ops@acme.example`, `unverified key SHA256:…`, `bad signature`); none when unsigned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
}

/// environment -> service -> pin, as written; empty when the text does not parse.
pub fn pins_of(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let Ok(root) = yaml::parse(text) else {
        return out;
    };
    let get = |n: &Node, k: &str| match &n.value {
        Value::Map(e) => e
            .iter()
            .find(|(key, _)| key.name == k)
            .map(|(_, v)| v.clone()),
        _ => None,
    };
    let Some(Node {
        value: Value::Map(envs),
        ..
    }) = get(&root, "environments")
    else {
        return out;
    };
    for (env, body) in envs {
        if let Some(Node {
            value: Value::Map(pins),
            ..
        }) = get(&body, "versions")
        {
            let m: BTreeMap<String, String> = pins
                .iter()
                .filter_map(|(k, v)| v.scalar_text().map(|t| (k.name.clone(), t)))
                .collect();
            out.insert(env.name.clone(), m);
        }
    }
    out
}

/// The pin changes between two versions of the manifest.
pub fn diff(before: &str, after: &str) -> Vec<(String, String, Option<String>, Option<String>)> {
    let (a, b) = (pins_of(before), pins_of(after));
    let mut out = Vec::new();
    let envs: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for env in envs {
        let empty = BTreeMap::new();
        let (pa, pb) = (a.get(env).unwrap_or(&empty), b.get(env).unwrap_or(&empty));
        let services: std::collections::BTreeSet<&String> = pa.keys().chain(pb.keys()).collect();
        for s in services {
            let (x, y) = (pa.get(s), pb.get(s));
            if x != y {
                out.push((env.clone(), s.clone(), x.cloned(), y.cloned()));
            }
        }
    }
    out
}

pub fn rows(
    manifest: &std::path::Path,
    env: Option<&str>,
    service: Option<&str>,
    limit: Option<usize>,
) -> Result<Vec<Row>, crate::git::GitError> {
    let mut rows = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    crate::git::walk_file_changes(manifest, |c| {
        let before = c.before.as_deref().unwrap_or("");
        let after = c.after.as_deref().unwrap_or("");
        for (e, s, from, to) in diff(before, after) {
            if env.is_some_and(|x| x != e) || service.is_some_and(|x| x != s) {
                continue;
            }
            rows.push(Row {
                date: crate::clock::rfc3339(
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs(c.time.max(0) as u64),
                ),
                author: c.author.clone(),
                commit: crate::git::short_id(&c.id).to_string(),
                environment: e,
                service: s,
                from,
                to,
                subject: c.subject.clone(),
                signed_by: None,
            });
            ids.push(c.id.clone());
        }
        limit.is_none_or(|n| rows.len() < n)
    })?;
    if let Some(n) = limit {
        rows.truncate(n);
        ids.truncate(n);
    }
    let dir = match manifest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    // Only signed commits are asked of git (in-process, the header is enough to tell).
    let signed_ids = crate::git::signed(manifest, &ids);
    if signed_ids.is_empty() {
        return Ok(rows);
    }
    let root = crate::trust::TrustRoot::from_git_config(&dir);
    let signed = crate::trust::signatures(&dir, &signed_ids, &root);
    for (row, id) in rows.iter_mut().zip(&ids) {
        row.signed_by = signed.get(id).cloned();
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_lists_each_pin_change() {
        let a = "environments:\n  prod:\n    versions: {billing: 2.4.0, crm: \"1.8.2\"}\n";
        let b = "environments:\n  prod:\n    versions: {billing: 2.4.1, db: \"15\"}\n";
        assert_eq!(
            diff(a, b),
            vec![
                (
                    "prod".into(),
                    "billing".into(),
                    Some("2.4.0".into()),
                    Some("2.4.1".into())
                ),
                ("prod".into(), "crm".into(), Some("1.8.2".into()), None),
                ("prod".into(), "db".into(), None, Some("15".into())),
            ]
        );
        assert!(
            diff("not: [yaml", b).len() == 2,
            "a broken old revision reads as no pins"
        );
    }
}
