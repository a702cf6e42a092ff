//! The `.env` file beside a compose file, read the way `docker compose` reads it.
//!
//! Compose takes the values of `${VAR}` from this file, so import must read it with compose's
//! rules, not fleetpin's simpler env_file rules: `export` prefixes, `KEY=value` and `KEY: value`,
//! comments (a line starting with `#`, or ` #` after an unquoted value), single quotes (literal),
//! double quotes (escapes such as `\n`, then substitution), values over several lines inside
//! quotes, and `${VAR}` in unquoted and double-quoted values referring to earlier lines. A line
//! with a bare `KEY` takes its value from the shell in compose; import does not read the shell
//! (a manifest must not depend on who ran the import), so such a variable stays unset.

use crate::import::interpolate::substitute;
use crate::manifest::diagnostics::Problem;
use crate::manifest::yaml::span_at;
use indexmap::IndexMap;

fn blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\x0b' | '\x0c')
}

/// The variables of a `.env` text, in order, or the first problem (compose stops there too).
pub fn parse(text: &str) -> Result<IndexMap<String, String>, Problem> {
    let mut vars: IndexMap<String, String> = IndexMap::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    let problem = |at: usize, len: usize, msg: String| Problem::new(span_at(text, at, len), msg);
    loop {
        // The next statement: skip blank lines and comment lines.
        while i < text.len() && (bytes[i] as char).is_ascii_whitespace() {
            i += 1;
        }
        if i >= text.len() {
            break;
        }
        if bytes[i] == b'#' {
            i = text[i..].find('\n').map(|n| i + n).unwrap_or(text.len());
            continue;
        }
        if let Some(after) = text[i..].strip_prefix("export")
            && after.starts_with([' ', '\t'])
        {
            i += "export".len();
            while i < text.len() && blank(bytes[i] as char) {
                i += 1;
            }
        }
        // The name, up to `=`, `:` or the end of the line.
        let key_start = i;
        let mut sep = None;
        for (j, c) in text[i..].char_indices() {
            match c {
                '=' | ':' | '\n' => {
                    sep = Some((i + j, c));
                    break;
                }
                c if blank(c) => {}
                c if c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '[' | ']') => {}
                c => {
                    return Err(problem(
                        i + j,
                        c.len_utf8(),
                        format!(
                            "unexpected character {c:?} in a variable name; a line is NAME=value"
                        ),
                    ));
                }
            }
        }
        let (end, sep) = sep.unwrap_or((text.len(), '\n'));
        let key = text[key_start..end].trim_end();
        if key.is_empty() {
            return Err(problem(
                key_start,
                1,
                "a line starts without a variable name; a line is NAME=value".into(),
            ));
        }
        if key.contains(|c: char| blank(c)) {
            return Err(problem(
                key_start,
                key.len(),
                format!("`{key}`: a variable name cannot contain a space"),
            ));
        }
        let key = key.to_string();
        if sep == '\n' {
            // `NAME` alone: compose takes it from the shell; import does not read the shell.
            i = end;
            continue;
        }
        i = end + 1;
        while i < text.len() && blank(bytes[i] as char) {
            i += 1;
        }
        let value_start = i;
        let lookup = |n: &str| vars.get(n).cloned();
        let value = match bytes.get(i).copied() {
            Some(q @ (b'"' | b'\'')) => {
                let q = q as char;
                let mut raw = String::new();
                let mut escaped = false;
                let mut close = None;
                for (j, c) in text[i + 1..].char_indices() {
                    if c == '\\' && !escaped {
                        escaped = true;
                        continue;
                    }
                    if c == q && !escaped {
                        close = Some(i + 1 + j);
                        break;
                    }
                    if escaped && c != q {
                        raw.push('\\');
                    }
                    escaped = false;
                    raw.push(c);
                }
                let Some(close) = close else {
                    return Err(problem(
                        value_start,
                        1,
                        format!("the quoted value of `{key}` is never closed"),
                    ));
                };
                i = close + 1;
                // After the closing quote: only blanks and a comment.
                while i < text.len() && blank(bytes[i] as char) {
                    i += 1;
                }
                if i < text.len() && bytes[i] == b'#' {
                    i = text[i..].find('\n').map(|n| i + n).unwrap_or(text.len());
                } else if i < text.len() && bytes[i] != b'\n' {
                    return Err(problem(
                        i,
                        1,
                        format!("unexpected text after the closing quote of `{key}`"),
                    ));
                }
                if q == '"' {
                    substitute(&unescape(&raw), &lookup)
                } else {
                    Ok(raw)
                }
            }
            _ => {
                let eol = text[i..].find('\n').map(|n| i + n).unwrap_or(text.len());
                let line = &text[i..eol];
                let line = line.split_once(" #").map(|(v, _)| v).unwrap_or(line);
                i = eol;
                substitute(line.trim_end(), &lookup)
            }
        };
        match value {
            Ok(v) => {
                vars.insert(key, v);
            }
            Err(e) => {
                return Err(problem(
                    value_start,
                    0,
                    format!("the value of `{key}`: {}", e.message()),
                ));
            }
        }
    }
    Ok(vars)
}

/// The escapes compose reads in a double-quoted value; `\$` is a literal `$` (kept as `$$` for
/// the substitution that follows).
fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.peek().copied() {
            Some(n @ ('a' | 'b' | 'f' | 'n' | 'r' | 't' | 'v' | '"' | '\\' | '$')) => {
                chars.next();
                out.push_str(match n {
                    'a' => "\x07",
                    'b' => "\x08",
                    'f' => "\x0c",
                    'n' => "\n",
                    'r' => "\r",
                    't' => "\t",
                    'v' => "\x0b",
                    '"' => "\"",
                    '\\' => "\\",
                    _ => "$$",
                });
            }
            Some('0') => {
                chars.next();
                let mut digits = String::new();
                while digits.len() < 3 && chars.peek().is_some_and(|d| ('0'..='7').contains(d)) {
                    digits.push(chars.next().unwrap_or('0'));
                }
                match u32::from_str_radix(if digits.is_empty() { "0" } else { &digits }, 8)
                    .ok()
                    .and_then(char::from_u32)
                {
                    Some(ch) => out.push(ch),
                    None => {
                        out.push_str("\\0");
                        out.push_str(&digits);
                    }
                }
            }
            _ => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(text: &str) -> Vec<(String, String)> {
        parse(text)
            .unwrap_or_else(|p| panic!("{}:{}: {}", p.span.line, p.span.column, p.message))
            .into_iter()
            .collect()
    }

    fn get(text: &str, key: &str) -> String {
        parse(text)
            .unwrap()
            .get(key)
            .cloned()
            .unwrap_or_else(|| panic!("no {key}"))
    }

    #[test]
    fn plain_lines_comments_and_export() {
        let v = vars(
            "# the db\nMYSQL_HOST=db\n\nexport MYSQL_USER=wp   \nA: b\n  B = c d  # a comment\n",
        );
        assert_eq!(
            v,
            vec![
                ("MYSQL_HOST".into(), "db".into()),
                ("MYSQL_USER".into(), "wp".into()),
                ("A".into(), "b".into()),
                ("B".into(), "c d".into()),
            ]
        );
        // `#` without a space before it is part of the value, as in compose.
        assert_eq!(get("C=a#b\n", "C"), "a#b");
        // An empty value is a value.
        assert_eq!(get("E=\n", "E"), "");
        // Later lines win.
        assert_eq!(get("X=1\nX=2\n", "X"), "2");
    }

    #[test]
    fn quotes() {
        assert_eq!(get("P='a $b # c'\n", "P"), "a $b # c");
        assert_eq!(get("P=\"a # c\" # comment\n", "P"), "a # c");
        assert_eq!(get("P=\"line1\\nline2\"\n", "P"), "line1\nline2");
        assert_eq!(get("P=\"say \\\"hi\\\"\"\n", "P"), "say \"hi\"");
        assert_eq!(get("P='it\\'s'\n", "P"), "it's");
        assert_eq!(get("P='a\\nb'\n", "P"), "a\\nb");
        assert_eq!(get("P=\"a\\\\b\"\n", "P"), "a\\b");
        assert_eq!(get("P=\"cost \\$5\"\n", "P"), "cost $5");
        // Over several lines.
        assert_eq!(
            get("K=\"-----BEGIN\nxyz\n-----END\"\nN=1\n", "K"),
            "-----BEGIN\nxyz\n-----END"
        );
        assert_eq!(get("K=\"-----BEGIN\nxyz\n-----END\"\nN=1\n", "N"), "1");
    }

    #[test]
    fn substitution_refers_to_earlier_lines() {
        let text = "HOST=db\nURL=mysql://${HOST}:3306\nRAW='${HOST}'\nQ=\"$HOST\"\nD=${NOPE:-dflt}\nDOLLAR=a$$b\n";
        assert_eq!(get(text, "URL"), "mysql://db:3306");
        assert_eq!(get(text, "RAW"), "${HOST}");
        assert_eq!(get(text, "Q"), "db");
        assert_eq!(get(text, "D"), "dflt");
        assert_eq!(get(text, "DOLLAR"), "a$b");
    }

    #[test]
    fn a_bare_name_is_left_to_the_shell_so_stays_unset() {
        let v = parse("FROM_SHELL\nA=1\n").unwrap();
        assert!(!v.contains_key("FROM_SHELL"));
        assert_eq!(v["A"], "1");
    }

    #[test]
    fn problems_are_located() {
        let p = parse("A=1\nB=\"open\nC=2\n").unwrap_err();
        assert_eq!((p.span.line, p.span.column), (2, 3));
        assert!(p.message.contains("never closed"), "{}", p.message);
        let p = parse("A=1\nMY VAR=2\n").unwrap_err();
        assert_eq!(p.span.line, 2);
        assert!(
            p.message.contains("cannot contain a space"),
            "{}",
            p.message
        );
        let p = parse("A=1\nB$=2\n").unwrap_err();
        assert_eq!((p.span.line, p.span.column), (2, 2));
        let p = parse("PASS=ab$cd\n").unwrap_err();
        assert_eq!((p.span.line, p.span.column), (1, 6));
        assert!(p.message.contains("`${cd}` has no value"), "{}", p.message);
        let p = parse("A=\"x\" y\n").unwrap_err();
        assert!(
            p.message.contains("after the closing quote"),
            "{}",
            p.message
        );
    }
}
