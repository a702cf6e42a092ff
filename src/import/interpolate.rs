//! Compose's variable substitution, so an imported value is the value compose would have used.
//!
//! `docker compose` rewrites every value of a compose file before reading it: `$VAR`, `${VAR}`,
//! `${VAR:-default}` (unset or empty), `${VAR-default}` (unset), `${VAR:?message}` and
//! `${VAR?message}` (required), `${VAR:+other}` and `${VAR+other}` (when set), and `$$` for a
//! literal `$`. Defaults and messages may hold substitutions themselves. A `$` followed by
//! anything else stays as it is, as in compose. Where compose would quietly substitute an empty
//! string for an unset variable (and warn), import refuses: a manifest must not carry a value
//! nobody chose.

/// Why a value could not be substituted; the caller adds where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterpError {
    /// `$VAR` or `${VAR}` with no value to give it.
    Unset { name: String },
    /// `${VAR:?message}` or `${VAR?message}` with the variable missing (or empty, for `:?`).
    Required { name: String, message: String },
    /// `${` that does not hold a variable name and one of the operators above.
    Invalid { text: String },
}

impl InterpError {
    pub fn message(&self) -> String {
        match self {
            InterpError::Unset { name } => format!("`${{{name}}}` has no value"),
            InterpError::Required { name, message } if message.is_empty() => {
                format!("`{name}` is required and has no value")
            }
            InterpError::Required { name, message } => {
                format!("`{name}` is required and has no value: {message}")
            }
            InterpError::Invalid { text } => format!(
                "`{text}` is not a valid substitution; expected ${{NAME}}, ${{NAME:-default}}, ${{NAME-default}}, ${{NAME:?message}}, ${{NAME:+value}} (write $$ for a literal $)"
            ),
        }
    }

    /// The variable the problem is about, if any.
    pub fn variable(&self) -> Option<&str> {
        match self {
            InterpError::Unset { name } | InterpError::Required { name, .. } => Some(name),
            InterpError::Invalid { .. } => None,
        }
    }
}

fn name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `text` with every substitution done, looking variables up with `lookup`.
pub fn substitute(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpError> {
    if !text.contains('$') {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after.chars().next() {
            Some('$') => {
                out.push('$');
                rest = &after[1..];
            }
            Some(c) if name_start(c) => {
                let end = after.find(|c: char| !name_char(c)).unwrap_or(after.len());
                let name = &after[..end];
                match lookup(name) {
                    Some(v) => out.push_str(&v),
                    None => {
                        return Err(InterpError::Unset {
                            name: name.to_string(),
                        });
                    }
                }
                rest = &after[end..];
            }
            Some('{') => {
                let Some(close) = closing_brace(after) else {
                    return Err(InterpError::Invalid {
                        text: rest[i..].to_string(),
                    });
                };
                let inner = &after[1..close];
                out.push_str(&braced(inner, lookup)?);
                rest = &after[close + 1..];
            }
            // A lone `$` (before a digit, a space, the end): compose leaves it alone.
            _ => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The index in `s` (which starts with `{`) of the brace closing it, nested braces counted.
fn closing_brace(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// What `${inner}` stands for.
fn braced(inner: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, InterpError> {
    let invalid = || InterpError::Invalid {
        text: format!("${{{inner}}}"),
    };
    let end = inner.find(|c: char| !name_char(c)).unwrap_or(inner.len());
    let name = &inner[..end];
    if !name.chars().next().is_some_and(name_start) {
        return Err(invalid());
    }
    let op = &inner[end..];
    let value = lookup(name);
    let set_nonempty = value.as_deref().is_some_and(|v| !v.is_empty());
    let (operator, arg) = if op.is_empty() {
        ("", "")
    } else {
        [":-", ":?", ":+", "-", "?", "+"]
            .iter()
            .find(|o| op.starts_with(**o))
            .map(|o| (*o, &op[o.len()..]))
            .ok_or_else(invalid)?
    };
    match operator {
        "" => value.ok_or_else(|| InterpError::Unset {
            name: name.to_string(),
        }),
        ":-" if set_nonempty => Ok(value.unwrap_or_default()),
        ":-" => substitute(arg, lookup),
        "-" => match value {
            Some(v) => Ok(v),
            None => substitute(arg, lookup),
        },
        ":?" if set_nonempty => Ok(value.unwrap_or_default()),
        "?" if value.is_some() => Ok(value.unwrap_or_default()),
        ":?" | "?" => Err(InterpError::Required {
            name: name.to_string(),
            message: substitute(arg, lookup)?,
        }),
        ":+" if set_nonempty => substitute(arg, lookup),
        "+" if value.is_some() => substitute(arg, lookup),
        ":+" | "+" => Ok(value.unwrap_or_default()),
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)], text: &str) -> Result<String, InterpError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |n: &str| vars.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        substitute(text, &lookup)
    }

    #[test]
    fn plain_and_braced_variables() {
        let v = [("HOST", "db"), ("PORT", "3306")];
        assert_eq!(with(&v, "${HOST}:$PORT").unwrap(), "db:3306");
        assert_eq!(with(&v, "x${HOST}y").unwrap(), "xdby");
        assert_eq!(with(&v, "$HOST.local").unwrap(), "db.local");
        assert_eq!(with(&v, "no dollar").unwrap(), "no dollar");
    }

    #[test]
    fn unset_variables_are_errors_not_empty_strings() {
        assert_eq!(
            with(&[], "${MYSQL_HOST}"),
            Err(InterpError::Unset {
                name: "MYSQL_HOST".into()
            })
        );
        assert_eq!(
            with(&[], "a $NOPE b"),
            Err(InterpError::Unset {
                name: "NOPE".into()
            })
        );
        // Set to empty is a value.
        assert_eq!(with(&[("E", "")], "[${E}]").unwrap(), "[]");
    }

    #[test]
    fn defaults_with_and_without_colon() {
        let v = [("EMPTY", ""), ("SET", "yes")];
        assert_eq!(with(&v, "${MISSING:-d}").unwrap(), "d");
        assert_eq!(with(&v, "${EMPTY:-d}").unwrap(), "d");
        assert_eq!(with(&v, "${SET:-d}").unwrap(), "yes");
        assert_eq!(with(&v, "${MISSING-d}").unwrap(), "d");
        assert_eq!(with(&v, "${EMPTY-d}").unwrap(), "");
        assert_eq!(with(&v, "${SET-d}").unwrap(), "yes");
        // An empty default is a value too.
        assert_eq!(with(&v, "${MISSING:-}").unwrap(), "");
        // Defaults may hold substitutions, and `}` nests.
        assert_eq!(with(&v, "${MISSING:-${SET}}").unwrap(), "yes");
        assert_eq!(with(&v, "${MISSING:-${ALSO:-deep}}/x").unwrap(), "deep/x");
        // A default that is never used is never looked at.
        assert_eq!(with(&v, "${SET:-${UNSET}}").unwrap(), "yes");
        // Defaults may hold colons and dashes.
        assert_eq!(
            with(&v, "${MISSING:-mysql://db:3306}").unwrap(),
            "mysql://db:3306"
        );
    }

    #[test]
    fn required_variables() {
        let v = [("EMPTY", ""), ("SET", "yes")];
        assert_eq!(with(&v, "${SET:?need it}").unwrap(), "yes");
        assert_eq!(
            with(&v, "${EMPTY:?need a password}"),
            Err(InterpError::Required {
                name: "EMPTY".into(),
                message: "need a password".into()
            })
        );
        assert_eq!(with(&v, "${EMPTY?need it}").unwrap(), "");
        assert!(matches!(
            with(&v, "${MISSING?}"),
            Err(InterpError::Required { .. })
        ));
        let e = with(&v, "${MISSING:?set MISSING in .env}").unwrap_err();
        assert_eq!(
            e.message(),
            "`MISSING` is required and has no value: set MISSING in .env"
        );
    }

    #[test]
    fn alternative_values() {
        let v = [("EMPTY", ""), ("SET", "yes")];
        assert_eq!(with(&v, "${SET:+on}").unwrap(), "on");
        assert_eq!(with(&v, "${EMPTY:+on}").unwrap(), "");
        assert_eq!(with(&v, "${EMPTY+on}").unwrap(), "on");
        assert_eq!(with(&v, "${MISSING+on}").unwrap(), "");
        assert_eq!(with(&v, "${MISSING:+on}").unwrap(), "");
    }

    #[test]
    fn dollar_escapes_and_lone_dollars() {
        assert_eq!(with(&[], "$$HOME").unwrap(), "$HOME");
        assert_eq!(with(&[], "a$$$$b").unwrap(), "a$$b");
        assert_eq!(with(&[], "cost: 5$").unwrap(), "cost: 5$");
        assert_eq!(with(&[], "$1 $ x").unwrap(), "$1 $ x");
        assert_eq!(with(&[("A", "1")], "$$${A}").unwrap(), "$1");
    }

    #[test]
    fn malformed_substitutions() {
        for bad in ["${}", "${1X}", "${A!}", "${A:x}", "${A", "x ${A:-b"] {
            assert!(
                matches!(with(&[("A", "1")], bad), Err(InterpError::Invalid { .. })),
                "{bad}"
            );
        }
    }
}
