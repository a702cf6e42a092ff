//! Editing pins in place: only the version scalars change, at the byte spans the YAML parser
//! reported, keeping their quoting; comments, key order and blank lines stay as written, so the
//! git diff shows one line per pin. `rollback` and `promote` both edit pins through here (by way
//! of `ops::pins`, which writes and commits the result).

use crate::manifest::yaml::{self, Node, Value};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinEditError {
    #[error("the manifest no longer parses: {0}")]
    Parse(String),
    #[error("environment `{0}` has no `versions` mapping to edit")]
    NoVersions(String),
    #[error("`{service}` in environment `{env}` is pinned through a YAML alias; edit it by hand")]
    Alias { env: String, service: String },
}

fn get<'a>(n: &'a Node, key: &str) -> Option<&'a Node> {
    match &n.value {
        Value::Map(entries) => entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v),
        _ => None,
    }
}

/// Writes `version` in the quoting style of `old` (the scalar as written, quotes included).
fn styled(old: &str, version: &str) -> String {
    if old.starts_with('"') {
        format!("\"{version}\"")
    } else if old.starts_with('\'') {
        format!("'{version}'")
    } else {
        version.to_string()
    }
}

/// Sets `environments.<env>.versions.<service>` for each pair; a service not pinned yet gets a
/// new line after the last pin (block style) or a new entry (flow style).
pub fn set_pins(text: &str, env: &str, pins: &[(String, String)]) -> Result<String, PinEditError> {
    let mut out = text.to_string();
    // Edit one pin at a time, re-parsing, so every span is fresh.
    for (service, version) in pins {
        let root = yaml::parse(&out).map_err(|e| PinEditError::Parse(e.message))?;
        let versions = get(&root, "environments")
            .and_then(|e| get(e, env))
            .and_then(|e| get(e, "versions"))
            .ok_or_else(|| PinEditError::NoVersions(env.to_string()))?;
        let Value::Map(entries) = &versions.value else {
            return Err(PinEditError::NoVersions(env.to_string()));
        };
        if let Some((_, v)) = entries.iter().find(|(k, _)| &k.name == service) {
            if v.span != v.defined {
                return Err(PinEditError::Alias {
                    env: env.to_string(),
                    service: service.clone(),
                });
            }
            let old = &out[v.span.offset..v.span.offset + v.span.len];
            let new = styled(old, version);
            out.replace_range(v.span.offset..v.span.offset + v.span.len, &new);
            continue;
        }
        out = add_pin(&out, versions, entries, service, version)?;
    }
    Ok(out)
}

fn add_pin(
    text: &str,
    versions: &Node,
    entries: &[(yaml::Key, Node)],
    service: &str,
    version: &str,
) -> Result<String, PinEditError> {
    let flow = text[versions.span.offset..].starts_with('{');
    let Some((last_key, last_val)) = entries.last() else {
        return Err(PinEditError::NoVersions(String::new()));
    };
    let quoted = text[last_val.span.offset..last_val.span.offset + last_val.span.len].to_string();
    let value = styled(&quoted, version);
    let mut out = text.to_string();
    if flow {
        let at = last_val.span.offset + last_val.span.len;
        out.insert_str(at, &format!(", {service}: {value}"));
    } else {
        // A new line after the last pin's line, with the same indentation.
        let line_start = text[..last_key.span.offset]
            .rfind('\n')
            .map(|i| i + 1)
            .unwrap_or(0);
        let indent = &text[line_start..last_key.span.offset];
        let line_end = text[last_val.span.offset..]
            .find('\n')
            .map(|i| last_val.span.offset + i + 1)
            .unwrap_or(text.len());
        let mut line = format!("{indent}{service}: {value}\n");
        if line_end == text.len() && !text.ends_with('\n') {
            line.insert(0, '\n');
        }
        out.insert_str(line_end, &line);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &str = r#"# the platform
platform: acme
services:
  billing: {image: r/billing}
  crm: {image: r/crm}
  db: {image: r/db}
environments:
  recette:
    hosts: {r1: {endpoint: "unix:///x.sock"}}
    versions:
      billing: "2.4.1"   # tested on monday
      crm: '1.9.0'

  prod:
    hosts: {p1: {endpoint: "unix:///y.sock"}}
    versions: {billing: 2.4.0, crm: "1.8.2"}
"#;

    fn pins(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn changed_lines(a: &str, b: &str) -> Vec<(String, String)> {
        a.lines()
            .zip(b.lines())
            .filter(|(x, y)| x != y)
            .map(|(x, y)| (x.to_string(), y.to_string()))
            .collect()
    }

    #[test]
    fn edits_only_the_version_scalars_keeping_quotes_and_comments() {
        let out = set_pins(
            M,
            "recette",
            &pins(&[("billing", "2.4.0"), ("crm", "1.8.2")]),
        )
        .unwrap();
        assert_eq!(
            changed_lines(M, &out),
            vec![
                (
                    "      billing: \"2.4.1\"   # tested on monday".into(),
                    "      billing: \"2.4.0\"   # tested on monday".into()
                ),
                ("      crm: '1.9.0'".into(), "      crm: '1.8.2'".into()),
            ]
        );
        let out = set_pins(M, "prod", &pins(&[("billing", "2.4.1")])).unwrap();
        assert_eq!(
            changed_lines(M, &out),
            vec![(
                "    versions: {billing: 2.4.0, crm: \"1.8.2\"}".into(),
                "    versions: {billing: 2.4.1, crm: \"1.8.2\"}".into()
            )]
        );
        crate::manifest::parse_str(&out).unwrap();
    }

    #[test]
    fn adds_a_line_for_a_service_not_pinned_yet() {
        let out = set_pins(M, "recette", &pins(&[("db", "15")])).unwrap();
        assert_eq!(out.lines().count(), M.lines().count() + 1);
        assert!(
            out.contains("      crm: '1.9.0'\n      db: '15'\n"),
            "{out}"
        );
        let out = set_pins(M, "prod", &pins(&[("db", "15")])).unwrap();
        assert!(
            out.contains("{billing: 2.4.0, crm: \"1.8.2\", db: \"15\"}"),
            "{out}"
        );
        let m = crate::manifest::parse_str(&out).unwrap();
        assert_eq!(m.environments["prod"].versions["db"].value.tag, "15");
    }
}
