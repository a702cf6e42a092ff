//! A SOPS file as a tree, in document order (the MAC hashes values in that order), read from
//! YAML, JSON or dotenv, with its `sops` metadata split off. The format is told by the content,
//! never by the file name.

use super::SopsError;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// A document node. Maps keep their keys in the order written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Map(Vec<(String, Node)>),
    List(Vec<Node>),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
}

impl Node {
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(items) => items.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML or JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(i64::try_from(v).map_or(Node::Float(v as f64), Node::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut items: Vec<(String, Node)> = Vec::new();
        while let Some(key) = map.next_key::<KeyString>()? {
            let value = map.next_value()?;
            items.push((key.0, value));
        }
        Ok(Node::Map(items))
    }
}

/// A map key: sops keeps only string keys, but YAML writes `1:` or `true:` plainly; they are
/// read as the text they show.
struct KeyString(String);

impl<'de> Deserialize<'de> for KeyString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<KeyString, D::Error> {
        match Node::deserialize(d)? {
            Node::Str(s) => Ok(KeyString(s)),
            Node::Int(i) => Ok(KeyString(i.to_string())),
            Node::Bool(b) => Ok(KeyString(b.to_string())),
            Node::Float(f) => Ok(KeyString(f.to_string())),
            _ => Err(de::Error::custom("a map key that is not a scalar")),
        }
    }
}

/// Which store wrote the file: it decides how values are typed and how metadata is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Yaml,
    Json,
    Dotenv,
}

/// A parsed SOPS file: the data (a map, without `sops`) and the metadata tree.
pub(crate) struct Parsed {
    pub format: Format,
    pub data: Vec<(String, Node)>,
    pub metadata: Node,
}

/// Whether `text` is a SOPS file (by its `sops` metadata, NOT by the file name): a YAML or JSON
/// document with a top-level `sops` map holding `mac` and `lastmodified`, or a dotenv file with
/// `sops_mac=` / `sops_lastmodified=` lines.
pub fn is_sops(text: &str) -> bool {
    parse("", text).is_ok()
}

/// Reads `text` as a SOPS file of any of the three formats; `NotSops` when it has no metadata.
pub(crate) fn parse(file: &str, text: &str) -> Result<Parsed, SopsError> {
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    let (format, root) = if trimmed.starts_with('{') {
        match serde_json::from_str(text) {
            Ok(root) => (Format::Json, root),
            // A YAML flow map starts with `{` too.
            Err(e) => match yaml(file, text) {
                Ok(root) => (Format::Yaml, root),
                Err(_) => {
                    return Err(SopsError::Parse {
                        file: file.to_string(),
                        reason: format!(
                            "not valid JSON (line {}, column {})",
                            e.line(),
                            e.column()
                        ),
                    });
                }
            },
        }
    } else if looks_dotenv(text) {
        (Format::Dotenv, dotenv(file, text)?)
    } else {
        (Format::Yaml, yaml(file, text)?)
    };
    let Node::Map(items) = root else {
        return Err(SopsError::NotSops {
            file: file.to_string(),
        });
    };
    let (data, metadata) = match format {
        Format::Dotenv => split_flat(items),
        Format::Yaml | Format::Json => split_nested(items),
    };
    let metadata = match metadata {
        Some(m @ Node::Map(_)) if m.get("mac").is_some() && m.get("lastmodified").is_some() => m,
        _ => {
            return Err(SopsError::NotSops {
                file: file.to_string(),
            });
        }
    };
    Ok(Parsed {
        format,
        data,
        metadata,
    })
}

/// A dotenv SOPS file carries `sops_mac=` and `sops_lastmodified=` lines; a YAML file never
/// starts a line that way (it would be a plain scalar, not a map).
fn looks_dotenv(text: &str) -> bool {
    let has = |prefix: &str| text.lines().any(|l| l.starts_with(prefix));
    has("sops_mac=") && has("sops_lastmodified=")
}

fn yaml(file: &str, text: &str) -> Result<Node, SopsError> {
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    options.alias_limits.max_total_replayed_events = 200_000;
    options.alias_limits.max_alias_expansions_per_anchor = 10_000;
    // Type plain scalars as sops's YAML library (yaml.v3) does, since values left in clear enter
    // the MAC as it types them: `yes`/`on` stay strings, `012` is octal, `.inf` a float.
    options.strict_booleans = true;
    options.legacy_octal_numbers = true;
    options.non_finite_float_policy = serde_saphyr::options::NonFiniteFloatPolicy::PassThrough;
    serde_saphyr::from_str_with_options::<Node>(text, options).map_err(|e| SopsError::Parse {
        file: file.to_string(),
        // Only where: the parser's messages may quote a scalar, and values stay out of errors.
        reason: match e.location() {
            Some(at) => format!(
                "not valid YAML (line {}, column {})",
                at.line(),
                at.column()
            ),
            None => "not valid YAML".to_string(),
        },
    })
}

/// sops's dotenv store: one `KEY=value` a line, `#` lines are comments (encrypted, outside the
/// MAC), `\n` in a value stands for a newline. Lines are split on `\n` only, as sops does.
fn dotenv(file: &str, text: &str) -> Result<Node, SopsError> {
    let mut items = Vec::new();
    for (n, line) in text.split('\n').enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(SopsError::Parse {
                file: file.to_string(),
                reason: format!("line {} is not KEY=value", n + 1),
            });
        };
        items.push((key.to_string(), Node::Str(value.replace("\\n", "\n"))));
    }
    Ok(Node::Map(items))
}

/// YAML and JSON: the top-level `sops` entry is the metadata.
fn split_nested(items: Vec<(String, Node)>) -> (Vec<(String, Node)>, Option<Node>) {
    let mut metadata = None;
    let mut data = Vec::with_capacity(items.len());
    for (k, v) in items {
        if k == "sops" {
            metadata.get_or_insert(v);
        } else {
            data.push((k, v));
        }
    }
    (data, metadata)
}

/// dotenv: every `sops_` key is metadata, flattened with `__map_` and `__list_` separators
/// (`sops_age__list_0__map_recipient`); rebuild the tree the other formats carry.
fn split_flat(items: Vec<(String, Node)>) -> (Vec<(String, Node)>, Option<Node>) {
    let mut metadata = Node::Map(Vec::new());
    let mut data = Vec::with_capacity(items.len());
    let mut any = false;
    for (k, v) in items {
        match k.strip_prefix("sops_") {
            Some(flat) => {
                any = true;
                place(&mut metadata, &tokens(flat), v);
            }
            None => data.push((k, v)),
        }
    }
    (data, any.then_some(metadata))
}

enum Token {
    Key(String),
    Index(usize),
}

fn tokens(flat: &str) -> Vec<Token> {
    const MAP: &str = "__map_";
    const LIST: &str = "__list_";
    let mut out = Vec::new();
    let mut rest = flat;
    let mut is_list = false;
    loop {
        let next = [rest.find(MAP), rest.find(LIST)]
            .into_iter()
            .flatten()
            .min();
        let (part, after) = match next {
            Some(at) => (&rest[..at], Some(at)),
            None => (rest, None),
        };
        out.push(if is_list {
            Token::Index(part.parse().unwrap_or(0))
        } else {
            Token::Key(part.to_string())
        });
        let Some(at) = after else { break };
        is_list = rest[at..].starts_with(LIST);
        rest = &rest[at + if is_list { LIST.len() } else { MAP.len() }..];
    }
    out
}

fn place(root: &mut Node, path: &[Token], value: Node) {
    let Some((first, rest)) = path.split_first() else {
        *root = value;
        return;
    };
    match first {
        Token::Key(k) => {
            if !matches!(root, Node::Map(_)) {
                *root = Node::Map(Vec::new());
            }
            let Node::Map(items) = root else { return };
            let at = match items.iter().position(|(key, _)| key == k) {
                Some(at) => at,
                None => {
                    items.push((k.clone(), Node::Null));
                    items.len() - 1
                }
            };
            place(&mut items[at].1, rest, value);
        }
        Token::Index(i) => {
            if !matches!(root, Node::List(_)) {
                *root = Node::List(Vec::new());
            }
            let Node::List(items) = root else { return };
            // Bounded: an index far past the list is not a real sops file.
            if *i > items.len() + 1024 {
                return;
            }
            while items.len() <= *i {
                items.push(Node::Null);
            }
            place(&mut items[*i], rest, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_keeps_key_order_and_scalar_types() {
        let text = "b: 1\na: x\nc: [true, 1.5, null]\nsops:\n  mac: m\n  lastmodified: t\n";
        let p = parse("f", text).unwrap();
        assert_eq!(p.format, Format::Yaml);
        let keys: Vec<_> = p.data.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["b", "a", "c"]);
        assert_eq!(p.data[0].1, Node::Int(1));
        assert_eq!(
            p.data[2].1,
            Node::List(vec![Node::Bool(true), Node::Float(1.5), Node::Null])
        );
    }

    #[test]
    fn plain_scalars_are_typed_as_yaml_v3_does() {
        let root = yaml(
            "f",
            "a: yes\nb: 0x10\nc: ~\nd: 1e3\ne: .inf\nf: 012\ng: \"5\"\nh: True\n",
        )
        .unwrap();
        let Node::Map(items) = root else { panic!() };
        let values: Vec<_> = items.into_iter().map(|(_, v)| v).collect();
        assert_eq!(
            values,
            [
                Node::Str("yes".into()),
                Node::Int(16),
                Node::Null,
                Node::Float(1000.0),
                Node::Float(f64::INFINITY),
                Node::Int(10),
                Node::Str("5".into()),
                Node::Bool(true),
            ]
        );
    }

    #[test]
    fn a_yaml_error_quotes_nothing() {
        let Err(SopsError::Parse { reason, .. }) = parse("f", "a: [secret-value\n") else {
            panic!()
        };
        assert!(!reason.contains("secret"), "{reason}");
    }

    #[test]
    fn dotenv_metadata_is_unflattened() {
        let text = "A=1\nsops_age__list_0__map_recipient=age1x\nsops_age__list_0__map_enc=E\\nF\nsops_mac=m\nsops_lastmodified=t\n";
        let p = parse("f", text).unwrap();
        assert_eq!(p.format, Format::Dotenv);
        assert_eq!(p.data, vec![("A".to_string(), Node::Str("1".into()))]);
        let age = p.metadata.get("age").unwrap();
        let Node::List(entries) = age else {
            panic!("{age:?}")
        };
        assert_eq!(
            entries[0].get("recipient"),
            Some(&Node::Str("age1x".into()))
        );
        assert_eq!(entries[0].get("enc"), Some(&Node::Str("E\nF".into())));
    }

    #[test]
    fn only_sops_metadata_makes_a_sops_file() {
        assert!(!is_sops("a: 1\n"));
        assert!(!is_sops("sops: {mac: x}\n"));
        assert!(is_sops("sops: {mac: x, lastmodified: y}\n"));
        assert!(is_sops(
            "{\"sops\": {\"mac\": \"x\", \"lastmodified\": \"y\"}}"
        ));
        assert!(!is_sops("A=1\nsops_mac=x\n"));
        assert!(is_sops("A=1\nsops_mac=x\nsops_lastmodified=y\n"));
        assert!(!is_sops("not: [valid"));
    }
}
