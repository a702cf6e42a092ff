//! A YAML document as a tree of nodes that remember where they stand in the source.
//!
//! Why not deserialize straight into the manifest types: serde stops at the first error, and an
//! operator fixing a manifest wants every problem at once, each with file, line and column. So
//! serde-saphyr (safe Rust, alias budgets, spans) builds this neutral tree, and `manifest` walks it,
//! collecting every problem. The byte spans of scalars are also what lets `pins` rewrite one version
//! in place without re-serialising the file.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;
use std::fmt;

/// Where a node stands in the source: 1-based line and column, and a byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Span {
    pub line: u32,
    pub column: u32,
    pub offset: usize,
    pub len: usize,
}

impl Span {
    /// The start of a file: for a problem of the whole file (empty, no document).
    pub const START: Span = Span {
        line: 1,
        column: 1,
        offset: 0,
        len: 0,
    };

    fn of<T>(s: &Spanned<T>) -> Span {
        Span::at(s.referenced)
    }

    fn defined<T>(s: &Spanned<T>) -> Span {
        Span::at(s.defined)
    }

    fn at(loc: serde_saphyr::Location) -> Span {
        let sp = loc.span();
        Span {
            line: loc.line() as u32,
            column: loc.column() as u32,
            offset: sp.byte_offset().unwrap_or(0) as usize,
            len: sp.byte_len().unwrap_or(0) as usize,
        }
    }
}

/// A scalar keeps both its typed reading and the text as written, so `1.10` stays `1.10` where a
/// string is expected (versions, environment values) instead of becoming the float 1.1.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Span,
    /// Where the value is defined: differs from `span` for an alias (`*a`), whose text lives at
    /// its anchor.
    pub defined: Span,
    /// The scalar as written in the source (quotes stripped), when it was written here.
    pub raw: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub span: Span,
}

impl Node {
    /// What kind of node this is, for "expected X, found Y" messages.
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "nothing (null)",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// A scalar read as text, the way it was written (numbers and booleans included).
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(_) | Value::Float(_) | Value::Bool(_) => {
                self.raw.clone().or_else(|| match &self.value {
                    Value::Int(i) => Some(i.to_string()),
                    Value::Float(f) => Some(f.to_string()),
                    Value::Bool(b) => Some(b.to_string()),
                    _ => None,
                })
            }
            _ => None,
        }
    }
}

/// Limits against hostile input (alias bombs, absurd nesting); a real manifest stays far below them.
pub const MAX_DEPTH: usize = 24;

#[derive(Debug, Clone)]
pub struct ParseError {
    pub span: Span,
    pub message: String,
}

/// Parses one YAML document into a spanned tree.
pub fn parse(text: &str) -> Result<Node, ParseError> {
    if text.trim().is_empty() {
        return Err(ParseError {
            span: Span::START,
            message: "the file is empty; a manifest needs at least `platform`, `services` and `environments`".into(),
        });
    }
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    // An alias bomb expands a few lines into millions of nodes: stop it long before it costs time.
    options.alias_limits.max_total_replayed_events = 200_000;
    options.alias_limits.max_alias_expansions_per_anchor = 10_000;
    // Real manifests nest about 8 levels; a hostile one must not exhaust the stack.
    let mut budget = options.budget.clone().unwrap_or_default();
    budget.max_depth = MAX_DEPTH;
    // An honest platform of tens of thousands of services must parse; aliases have their own budget.
    budget.max_nodes = 1_000_000;
    options.budget = Some(budget);
    let parsed: Result<Spanned<Node>, _> = serde_saphyr::from_str_with_options(text, options);
    match parsed {
        Ok(node) => {
            let span = Span::of(&node);
            let defined = Span::defined(&node);
            let mut n = node.value;
            n.span = span;
            n.defined = defined;
            if n.value == Value::Null {
                return Err(ParseError {
                    span: Span::START,
                    message: "the file holds no YAML document (only comments?); a manifest needs at least `platform`, `services` and `environments`".into(),
                });
            }
            fill_raw(&mut n, text);
            let depth = depth(&n);
            if depth > MAX_DEPTH {
                return Err(ParseError {
                    span: n.span,
                    message: format!(
                        "the document nests {depth} levels deep; a manifest needs fewer than {MAX_DEPTH}"
                    ),
                });
            }
            Ok(n)
        }
        Err(e) => {
            // Where the offending value is used (an alias), rather than where it was defined.
            let located = e
                .locations()
                .map(|l| l.reference_location)
                .filter(|l| l.line() > 0)
                .or_else(|| e.location());
            let span = located
                .map(|l| Span {
                    line: l.line() as u32,
                    column: l.column() as u32,
                    offset: l.span().byte_offset().map(|o| o as usize).unwrap_or(0),
                    len: 0,
                })
                .unwrap_or(Span::START);
            let message = clean_message(&e.to_string());
            // The scanner reports the scalar around a stray control character; point at it.
            let span = if message.contains("unexpected character") {
                first_control_char(text, span.offset).unwrap_or(span)
            } else {
                span
            };
            // Point a second document at its `---`, the line to remove.
            let span = if message.contains("one YAML document") {
                second_document(text).unwrap_or(span)
            } else {
                span
            };
            Err(ParseError { span, message })
        }
    }
}

/// serde-saphyr's message carries its own snippet and positions, and sometimes library advice;
/// we render our own location and say what an operator can do.
fn clean_message(msg: &str) -> String {
    let first = msg.lines().next().unwrap_or(msg);
    let first = first.strip_prefix("error: ").unwrap_or(first);
    // Drop a leading "line N column M: ".
    let mut text = match first.find(": ") {
        Some(i) if first.starts_with("line ") => first[i + 2..].to_string(),
        _ => first.to_string(),
    };
    // And a trailing " at line N, column M".
    if let Some(i) = text.rfind(" at line ") {
        text.truncate(i);
    }
    let lower = text.to_ascii_lowercase();
    if lower.contains("budget") && lower.contains("nodes") {
        return "the document holds more YAML nodes than fleetpin reads (1,000,000); split the platform, or look for a runaway alias".into();
    }
    if lower.contains("budget") && lower.contains("depth") {
        return format!(
            "the document nests deeper than {MAX_DEPTH} levels; a manifest needs about 8"
        );
    }
    if lower.contains("budget")
        || lower.contains("alias") && (lower.contains("limit") || lower.contains("expan"))
    {
        return "aliases expand to far more data than a manifest holds (a \"billion laughs\" document?); refused".into();
    }
    if lower.contains("multiple") && lower.contains("document")
        || lower.contains("from_str_multiple")
    {
        return "a manifest is one YAML document: remove the `---` separator and what follows it"
            .into();
    }
    let text = text.replace(", set DuplicateKeyPolicy in Options if acceptable", "");
    format!("invalid YAML: {text}")
}

/// The first control character (other than tab, CR, LF) at or after `from`, as a span.
fn first_control_char(text: &str, from: usize) -> Option<Span> {
    let from = (0..=from.min(text.len()))
        .rev()
        .find(|i| text.is_char_boundary(*i))?;
    let (i, _) = text[from..]
        .char_indices()
        .find(|(_, c)| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))?;
    Some(span_at(text, from + i, 1))
}

/// The span of `len` bytes at `offset` in `text`, with its 1-based line and column (in
/// characters, as editors count them).
pub fn span_at(text: &str, offset: usize, len: usize) -> Span {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() as u32 + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0) as u32
        + 1;
    Span {
        line,
        column,
        offset,
        len,
    }
}

/// The position of the second `---` document marker, if any.
fn second_document(text: &str) -> Option<Span> {
    let mut offset = 0;
    let mut seen_content = false;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let t = line.trim_end();
        if t == "---" || t.starts_with("--- ") {
            if seen_content {
                return Some(Span {
                    line: i as u32 + 1,
                    column: 1,
                    offset,
                    len: 3,
                });
            }
        } else if !t.trim().is_empty() && !t.trim_start().starts_with('#') {
            seen_content = true;
        }
        offset += line.len();
    }
    None
}

fn depth(n: &Node) -> usize {
    // Iterative: a hostile document must not overflow our own stack either.
    let mut max = 0;
    let mut stack = vec![(n, 1usize)];
    while let Some((n, d)) = stack.pop() {
        max = max.max(d);
        match &n.value {
            Value::Seq(items) => stack.extend(items.iter().map(|i| (i, d + 1))),
            Value::Map(entries) => stack.extend(entries.iter().map(|(_, v)| (v, d + 1))),
            _ => {}
        }
    }
    max
}

/// Gives every scalar the text it was written with, read at its definition (so an alias of
/// `1.20` still reads `1.20`).
fn fill_raw(n: &mut Node, text: &str) {
    match &mut n.value {
        Value::Seq(items) => items.iter_mut().for_each(|i| fill_raw(i, text)),
        Value::Map(entries) => entries.iter_mut().for_each(|(_, v)| fill_raw(v, text)),
        _ => {
            let d = n.defined;
            n.raw = text
                .get(d.offset..d.offset + d.len)
                .map(unquote)
                .filter(|r| !r.starts_with('*') && !r.starts_with('&'));
        }
    }
}

fn unquote(s: &str) -> String {
    let t = s.trim();
    if t.len() >= 2
        && ((t.starts_with('"') && t.ends_with('"')) || (t.starts_with('\'') && t.ends_with('\'')))
    {
        t[1..t.len() - 1].to_string()
    } else {
        t.to_string()
    }
}

// --- serde glue

fn wrap(s: Spanned<Node>) -> Node {
    let span = Span::of(&s);
    let defined = Span::defined(&s);
    let mut n = s.value;
    n.span = span;
    n.defined = defined;
    n
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(leaf(Value::Null))
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(leaf(Value::Null))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(leaf(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(leaf(Value::Int(v.into())))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(leaf(Value::Int(v.into())))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Node, E> {
        Ok(leaf(Value::Int(v)))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Node, E> {
        Ok(leaf(match i128::try_from(v) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::Float(v as f64),
        }))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(leaf(Value::Float(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(leaf(Value::Str(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(leaf(Value::Str(v)))
    }
    fn visit_bytes<E: serde::de::Error>(self, _: &[u8]) -> Result<Node, E> {
        Err(E::custom("binary values are not allowed in a manifest"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = a.next_element::<Spanned<Node>>()? {
            items.push(wrap(item));
        }
        Ok(leaf(Value::Seq(items)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(k) = a.next_key::<Spanned<KeyText>>()? {
            let span = Span::of(&k);
            let v = a.next_value::<Spanned<Node>>()?;
            entries.push((
                Key {
                    name: k.value.0,
                    span,
                },
                wrap(v),
            ));
        }
        Ok(leaf(Value::Map(entries)))
    }
}

fn leaf(value: Value) -> Node {
    Node {
        value,
        span: Span::default(),
        defined: Span::default(),
        raw: None,
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

/// Mapping keys are read as text whatever they look like (`8080:` or `true:` included), so that a
/// wrong key is reported by name instead of as a type error.
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<KeyText, D::Error> {
        let n = d.deserialize_any(NodeVisitor)?;
        match n.value {
            Value::Str(s) => Ok(KeyText(s)),
            Value::Int(i) => Ok(KeyText(i.to_string())),
            Value::Float(f) => Ok(KeyText(f.to_string())),
            Value::Bool(b) => Ok(KeyText(b.to_string())),
            Value::Null => Ok(KeyText("null".into())),
            _ => Err(serde::de::Error::custom(
                "a mapping key must be a plain word, not a list or a mapping",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(n: &Node) -> &Vec<(Key, Node)> {
        match &n.value {
            Value::Map(m) => m,
            other => panic!("not a map: {other:?}"),
        }
    }

    #[test]
    fn scalars_keep_their_written_text_and_location() {
        let doc = parse("a: '2.4.1'\nb: 1.10\nc: \"x\"\n").unwrap();
        let m = map(&doc);
        assert_eq!(m[0].1.scalar_text().unwrap(), "2.4.1");
        assert_eq!(m[1].1.scalar_text().unwrap(), "1.10");
        assert_eq!((m[1].1.span.line, m[1].1.span.column), (2, 4));
        assert_eq!((m[2].0.span.line, m[2].0.span.column), (3, 1));
        let b = &m[1].1.span;
        assert_eq!(
            &"a: '2.4.1'\nb: 1.10\nc: \"x\"\n"[b.offset..b.offset + b.len],
            "1.10"
        );
    }

    #[test]
    fn aliases_keep_the_text_of_their_anchor() {
        let doc = parse("a: &x 1.20\nb: *x\n").unwrap();
        let m = map(&doc);
        assert_eq!(m[1].1.value, Value::Float(1.2));
        assert_eq!(m[1].1.scalar_text().unwrap(), "1.20");
        assert_eq!(m[1].1.span.line, 2, "errors point at the alias");
    }

    #[test]
    fn comment_only_and_multi_document_files_say_so() {
        let e = parse("# nothing\n# here\n").unwrap_err();
        assert_eq!(e.span.line, 1);
        let e = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!(e.span.line, 2, "{}", e.message);
        assert!(e.message.contains("one YAML document"), "{}", e.message);
    }

    #[test]
    fn syntax_errors_are_located() {
        let e = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert_eq!(e.span.line, 2);
        assert!(e.message.starts_with("invalid YAML"), "{}", e.message);
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let e = parse("a: 1\na: 2\n").unwrap_err();
        assert!(e.message.contains("duplicate"), "{}", e.message);
        assert_eq!(e.span.line, 2);
    }

    #[test]
    fn alias_bomb_is_rejected() {
        let mut doc = String::from("a: &a [x,x,x,x,x,x,x,x,x]\n");
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
        for w in names.windows(2) {
            doc.push_str(&format!(
                "{}: &{} [{}]\n",
                w[1],
                w[1],
                vec![format!("*{}", w[0]); 9].join(",")
            ));
        }
        assert!(parse(&doc).is_err());
    }

    #[test]
    fn deep_nesting_is_rejected() {
        let doc = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        assert!(parse(&doc).is_err());
    }
}
