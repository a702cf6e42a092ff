//! Opening a SOPS file: the data key from an age stanza, every value with AES-256-GCM, and the
//! MAC over the plaintexts checked, all as sops 3.x does it:
//! - a value is `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]` with a 32-byte IV, its additional
//!   data the map keys down to it joined with `:` plus a trailing `:` (list indexes do not
//!   count); an empty string is stored as is;
//! - which values are encrypted follows the metadata's one rule (`unencrypted_suffix`, default
//!   `_unencrypted`, or `encrypted_suffix`, `unencrypted_regex`, `encrypted_regex`), matched
//!   against every key of the path;
//! - the MAC is SHA-512 over the plaintexts in document order (all values, or only encrypted
//!   ones after a fixed prefix with `mac_only_encrypted`), nulls skipped, ints, floats and bools
//!   as Go prints them (`True`/`False`), in upper-case hex, itself stored encrypted with the
//!   `lastmodified` time (RFC 3339, whole seconds) as additional data.

use super::document::{self, Format, Node};
use super::{Identities, KeyPath, KeyStep, Secret, SopsError};
use aes_gcm::aead::consts::U32;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use aes_gcm::{AesGcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha512};
use std::io::Read;

/// sops's nonce is 32 bytes, not GCM's usual 12.
type SopsGcm = AesGcm<Aes256, U32>;

/// The first bytes of the hash when `mac_only_encrypted` is set: sha256("sops").
const MAC_ONLY_ENCRYPTED_INIT: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
    0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

/// A parsed (still encrypted) SOPS file. `name` is for messages (a path).
pub struct SopsFile {
    name: String,
    format: Format,
    /// The document without `sops`: always a map.
    data: Node,
    age: Vec<AgeStanza>,
    mac: String,
    lastmodified: String,
    rule: Rule,
    mac_only_encrypted: bool,
}

/// Its name, format and recipients only: values left in clear stay out of logs too.
impl std::fmt::Debug for SopsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SopsFile")
            .field("name", &self.name)
            .field("format", &self.format())
            .field("recipients", &self.recipients())
            .finish_non_exhaustive()
    }
}

struct AgeStanza {
    recipient: String,
    enc: String,
}

/// Which values sops encrypted: one rule a file.
#[derive(Debug)]
enum Rule {
    UnencryptedSuffix(String),
    EncryptedSuffix(String),
    UnencryptedRegex(regex_lite::Regex),
    EncryptedRegex(regex_lite::Regex),
}

impl Rule {
    fn encrypts(&self, path: &[&str]) -> bool {
        match self {
            Rule::UnencryptedSuffix(s) => !path.iter().any(|k| k.ends_with(s.as_str())),
            Rule::EncryptedSuffix(s) => path.iter().any(|k| k.ends_with(s.as_str())),
            Rule::UnencryptedRegex(r) => !path.iter().any(|k| r.is_match(k)),
            Rule::EncryptedRegex(r) => path.iter().any(|k| r.is_match(k)),
        }
    }
}

impl SopsFile {
    /// The variable names the file gives as an env_file, read without a key (sops leaves keys in
    /// clear): the top-level keys whose values are scalars, in order, as `env_pairs` gives them.
    /// A console without the environment's key plans with these names (the spec hash holds
    /// names, not values).
    pub fn env_names(&self) -> Vec<String> {
        match &self.data {
            Node::Map(items) => items
                .iter()
                .filter(|(_, v)| {
                    matches!(
                        v,
                        Node::Str(_) | Node::Int(_) | Node::Float(_) | Node::Bool(_)
                    )
                })
                .map(|(k, _)| k.clone())
                .collect(),
            _ => vec![],
        }
    }

    pub fn parse(name: &str, text: &str) -> Result<SopsFile, SopsError> {
        let parsed = document::parse(name, text)?;
        let meta = &parsed.metadata;
        let bad = |reason: &str| SopsError::Metadata {
            file: name.to_string(),
            reason: reason.to_string(),
        };
        let unsupported = |what: &str| SopsError::Unsupported {
            file: name.to_string(),
            what: what.to_string(),
        };
        let text_of = |key: &str| -> Result<Option<String>, SopsError> {
            match meta.get(key) {
                None | Some(Node::Null) => Ok(None),
                Some(Node::Str(s)) => Ok(Some(s.clone())),
                Some(Node::Int(i)) => Ok(Some(i.to_string())),
                Some(Node::Bool(b)) => Ok(Some(b.to_string())),
                Some(_) => Err(bad(&format!("`{key}` is not a scalar"))),
            }
        };

        if let Some(Node::List(groups)) = meta.get("key_groups")
            && !groups.is_empty()
        {
            return Err(unsupported("key groups (`sops.key_groups`)"));
        }
        if let Some(t) = text_of("shamir_threshold")? {
            let t: i64 = t
                .trim()
                .parse()
                .map_err(|_| bad("`shamir_threshold` is not a number"))?;
            if t > 1 {
                return Err(unsupported("a Shamir threshold above 1"));
            }
        }

        let mut age = Vec::new();
        match meta.get("age") {
            None | Some(Node::Null) => {}
            Some(Node::List(entries)) => {
                for entry in entries {
                    let recipient = entry.get("recipient").and_then(Node::as_str);
                    let enc = entry.get("enc").and_then(Node::as_str);
                    let (Some(recipient), Some(enc)) = (recipient, enc) else {
                        return Err(bad("an `age` entry without `recipient` and `enc`"));
                    };
                    age.push(AgeStanza {
                        recipient: recipient.to_string(),
                        enc: enc.to_string(),
                    });
                }
            }
            Some(_) => return Err(bad("`age` is not a list")),
        }

        let mac = text_of("mac")?.ok_or_else(|| bad("no `mac`"))?;
        let lastmodified = text_of("lastmodified")?.ok_or_else(|| bad("no `lastmodified`"))?;

        let regex = |key: &str, pattern: String| {
            regex_lite::Regex::new(&pattern).map_err(|_| {
                bad(&format!(
                    "`{key}` is not a regular expression this reader takes"
                ))
            })
        };
        let mut rules = Vec::new();
        for key in [
            "unencrypted_suffix",
            "encrypted_suffix",
            "unencrypted_regex",
            "encrypted_regex",
            "unencrypted_comment_regex",
            "encrypted_comment_regex",
        ] {
            if let Some(v) = text_of(key)?.filter(|v| !v.is_empty()) {
                rules.push((key, v));
            }
        }
        if rules.len() > 1 {
            return Err(bad(
                "more than one of the encrypted/unencrypted suffix and regex rules",
            ));
        }
        let rule = match rules.pop() {
            None => Rule::UnencryptedSuffix("_unencrypted".to_string()),
            Some(("unencrypted_suffix", v)) => Rule::UnencryptedSuffix(v),
            Some(("encrypted_suffix", v)) => Rule::EncryptedSuffix(v),
            Some((key @ "unencrypted_regex", v)) => Rule::UnencryptedRegex(regex(key, v)?),
            Some((key @ "encrypted_regex", v)) => Rule::EncryptedRegex(regex(key, v)?),
            // They turn on comments, which this reader does not keep.
            Some((key, _)) => return Err(unsupported(&format!("`{key}`"))),
        };
        let mac_only_encrypted = match text_of("mac_only_encrypted")? {
            None => false,
            Some(v) => match v.trim() {
                "true" | "True" | "TRUE" => true,
                "false" | "False" | "FALSE" | "" => false,
                _ => return Err(bad("`mac_only_encrypted` is not a boolean")),
            },
        };

        Ok(SopsFile {
            name: name.to_string(),
            format: parsed.format,
            data: Node::Map(parsed.data),
            age,
            mac,
            lastmodified,
            rule,
            mac_only_encrypted,
        })
    }

    /// Which store wrote it: "yaml", "json" or "dotenv".
    pub fn format(&self) -> &'static str {
        match self.format {
            Format::Yaml => "yaml",
            Format::Json => "json",
            Format::Dotenv => "dotenv",
        }
    }

    /// The age recipients (public keys) it is encrypted for.
    pub fn recipients(&self) -> Vec<String> {
        self.age.iter().map(|a| a.recipient.clone()).collect()
    }

    pub fn decrypt(&self, ids: &Identities) -> Result<Decrypted, SopsError> {
        let key = self.data_key(ids)?;
        let cipher = SopsGcm::new_from_slice(&key).map_err(|_| SopsError::DataKey {
            file: self.name.clone(),
        })?;
        let mut walk = Walk {
            file: self,
            cipher: &cipher,
            hash: Sha512::new(),
            path: Vec::new(),
            shown: KeyPath(Vec::new()),
        };
        if self.mac_only_encrypted {
            walk.hash.update(MAC_ONLY_ENCRYPTED_INIT);
        }
        let Plain::Map(root) = walk.node(&self.data)? else {
            unreachable!("a map walks to a map")
        };
        let computed = hex::encode_upper(walk.hash.finalize());

        let mac_error = || SopsError::Mac {
            file: self.name.clone(),
        };
        let aad = go_rfc3339(&self.lastmodified);
        let stored = match parse_enc(&self.mac) {
            Some(enc) => open(&cipher, &enc, aad.as_bytes()).ok_or_else(mac_error)?,
            None => return Err(mac_error()),
        };
        if stored != computed.as_bytes() {
            return Err(mac_error());
        }
        Ok(Decrypted {
            file: self.name.clone(),
            root,
        })
    }

    /// The data key from the first age stanza an identity opens (each stanza holds the same key).
    fn data_key(&self, ids: &Identities) -> Result<Vec<u8>, SopsError> {
        for stanza in &self.age {
            let armored = age::armor::ArmoredReader::new(stanza.enc.as_bytes());
            let Ok(decryptor) = age::Decryptor::new(armored) else {
                continue;
            };
            let Ok(mut reader) = decryptor.decrypt(ids.iter()) else {
                continue;
            };
            let mut key = Vec::new();
            if reader.read_to_end(&mut key).is_err() {
                continue;
            }
            if key.len() != 32 {
                return Err(SopsError::DataKey {
                    file: self.name.clone(),
                });
            }
            return Ok(key);
        }
        Err(SopsError::NoIdentity {
            file: self.name.clone(),
            recipients: self.recipients(),
        })
    }
}

/// One walk over the data, decrypting and hashing in document order.
struct Walk<'a> {
    file: &'a SopsFile,
    cipher: &'a SopsGcm,
    hash: Sha512,
    /// Map keys only: what the rule and the additional data see.
    path: Vec<&'a str>,
    /// With list indexes: what messages show.
    shown: KeyPath,
}

impl<'a> Walk<'a> {
    fn node(&mut self, node: &'a Node) -> Result<Plain, SopsError> {
        match node {
            Node::Map(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (k, v) in items {
                    self.path.push(k);
                    self.shown.0.push(KeyStep::Key(k.clone()));
                    let value = self.node(v)?;
                    self.path.pop();
                    self.shown.0.pop();
                    out.push((k.clone(), value));
                }
                Ok(Plain::Map(out))
            }
            Node::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, v) in items.iter().enumerate() {
                    self.shown.0.push(KeyStep::Index(i));
                    out.push(self.node(v)?);
                    self.shown.0.pop();
                }
                Ok(Plain::List(out))
            }
            Node::Null => Ok(Plain::Null),
            leaf => {
                let encrypted = self.file.rule.encrypts(&self.path);
                let (mac_bytes, shown) = if encrypted {
                    self.decrypt_leaf(leaf)?
                } else {
                    clear_leaf(leaf)
                };
                if !self.file.mac_only_encrypted || encrypted {
                    self.hash.update(mac_bytes.as_bytes());
                }
                Ok(Plain::Value(Secret::new(shown)))
            }
        }
    }

    /// (what the MAC hashes, what the caller gets) for an encrypted value.
    fn decrypt_leaf(&self, leaf: &Node) -> Result<(String, String), SopsError> {
        let not_encrypted = || SopsError::NotEncrypted {
            file: self.file.name.clone(),
            key: self.shown.to_string(),
        };
        let Node::Str(text) = leaf else {
            return Err(not_encrypted());
        };
        // sops stores an empty value as is.
        if text.is_empty() {
            return Ok((String::new(), String::new()));
        }
        let enc = parse_enc(text).ok_or_else(not_encrypted)?;
        let aad = format!("{}:", self.path.join(":"));
        let plain = open(self.cipher, &enc, aad.as_bytes()).ok_or_else(|| SopsError::Mac {
            file: self.file.name.clone(),
        })?;
        let bad = |kind: &str| SopsError::BadValue {
            file: self.file.name.clone(),
            key: self.shown.to_string(),
            kind: kind.to_string(),
        };
        let text = String::from_utf8(plain).map_err(|_| bad("text"))?;
        match enc.kind.as_str() {
            "str" | "bytes" | "time" => Ok((text.clone(), text)),
            "int" => {
                let i: i64 = text.trim().parse().map_err(|_| bad("integer"))?;
                Ok((i.to_string(), text))
            }
            "float" => {
                let f: f64 = text.trim().parse().map_err(|_| bad("number"))?;
                Ok((go_float(f), text))
            }
            "bool" => {
                let b = go_bool(&text).ok_or_else(|| bad("boolean"))?;
                Ok((go_bool_text(b).to_string(), b.to_string()))
            }
            _ => Err(bad("type this reader knows")),
        }
    }
}

/// (what the MAC hashes, what the caller gets) for a value left in clear.
fn clear_leaf(leaf: &Node) -> (String, String) {
    match leaf {
        Node::Str(s) => (s.clone(), s.clone()),
        Node::Int(i) => (i.to_string(), i.to_string()),
        Node::Float(f) => (go_float(*f), f.to_string()),
        Node::Bool(b) => (go_bool_text(*b).to_string(), b.to_string()),
        Node::Map(_) | Node::List(_) | Node::Null => (String::new(), String::new()),
    }
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`: shortest digits, never an exponent, as Rust's
/// Display prints finite floats.
fn go_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_string()
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        f.to_string()
    }
}

/// Go's `strconv.ParseBool`.
fn go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// How sops writes a bool into the MAC and the ciphertext (after its Python ancestor).
fn go_bool_text(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// `lastmodified` as Go's `time.Format(time.RFC3339)` prints it back after parsing: whole
/// seconds, `Z` for a zero offset.
fn go_rfc3339(t: &str) -> String {
    let t = t.trim();
    let (stamp, zone) = match t
        .char_indices()
        .skip(19)
        .find(|&(_, c)| matches!(c, 'Z' | 'z' | '+' | '-'))
    {
        Some((at, _)) => t.split_at(at),
        None => (t, ""),
    };
    let stamp = stamp
        .split('.')
        .next()
        .unwrap_or(stamp)
        .replacen(['t', ' '], "T", 1);
    let zone = match zone {
        "z" | "+00:00" | "-00:00" => "Z",
        z => z,
    };
    format!("{stamp}{zone}")
}

struct Enc {
    data: Vec<u8>,
    iv: Vec<u8>,
    tag: Vec<u8>,
    kind: String,
}

/// `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`.
fn parse_enc(text: &str) -> Option<Enc> {
    let inner = text.strip_prefix("ENC[AES256_GCM,")?.strip_suffix(']')?;
    let mut data = None;
    let mut iv = None;
    let mut tag = None;
    let mut kind = None;
    for part in inner.split(',') {
        let (k, v) = part.split_once(':')?;
        match k {
            "data" => data = Some(STANDARD.decode(v).ok()?),
            "iv" => iv = Some(STANDARD.decode(v).ok()?),
            "tag" => tag = Some(STANDARD.decode(v).ok()?),
            "type" => kind = Some(v.to_string()),
            _ => return None,
        }
    }
    let enc = Enc {
        data: data?,
        iv: iv?,
        tag: tag?,
        kind: kind?,
    };
    (enc.iv.len() == 32 && enc.tag.len() == 16).then_some(enc)
}

/// AES-256-GCM open; `None` when the tag does not check out.
fn open(cipher: &SopsGcm, enc: &Enc, aad: &[u8]) -> Option<Vec<u8>> {
    let mut msg = Vec::with_capacity(enc.data.len() + enc.tag.len());
    msg.extend_from_slice(&enc.data);
    msg.extend_from_slice(&enc.tag);
    cipher
        .decrypt(Nonce::from_slice(&enc.iv), Payload { msg: &msg, aad })
        .ok()
}

/// A decrypted node. Debug shows the keys and `***` for every value.
#[derive(Debug)]
enum Plain {
    Map(Vec<(String, Plain)>),
    List(Vec<Plain>),
    Value(Secret),
    Null,
}

/// A decrypted document, in memory only.
#[derive(Debug)]
pub struct Decrypted {
    file: String,
    root: Vec<(String, Plain)>,
}

impl Decrypted {
    /// `key`: a path of map keys and list indexes (`KeyPath`).
    pub fn get(&self, key: &KeyPath) -> Result<Secret, SopsError> {
        let not_found = || SopsError::KeyNotFound {
            file: self.file.clone(),
            key: key.to_string(),
        };
        let mut steps = key.0.iter();
        let Some(KeyStep::Key(first)) = steps.next() else {
            return Err(not_found());
        };
        let mut node = find(&self.root, first).ok_or_else(not_found)?;
        for step in steps {
            node = match (node, step) {
                (Plain::Map(items), KeyStep::Key(k)) => find(items, k),
                (Plain::List(items), KeyStep::Index(i)) => items.get(*i),
                _ => None,
            }
            .ok_or_else(not_found)?;
        }
        match node {
            Plain::Value(s) => Ok(s.clone()),
            _ => Err(SopsError::NotScalar {
                file: self.file.clone(),
                key: key.to_string(),
            }),
        }
    }

    /// As an env_file: dotenv → its pairs in order; YAML/JSON → the top-level keys whose values
    /// are scalars (strings, numbers, bools as written), in order; maps, lists and nulls are
    /// left out.
    pub fn env_pairs(&self) -> Result<Vec<(String, Secret)>, SopsError> {
        Ok(self
            .root
            .iter()
            .filter_map(|(k, v)| match v {
                Plain::Value(s) => Some((k.clone(), s.clone())),
                _ => None,
            })
            .collect())
    }
}

fn find<'a>(items: &'a [(String, Plain)], key: &str) -> Option<&'a Plain> {
    items.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lastmodified_reads_as_go_prints_it() {
        assert_eq!(go_rfc3339("2026-12-06T23:09:21Z"), "2026-12-06T23:09:21Z");
        assert_eq!(
            go_rfc3339("2026-12-06T23:09:21.123Z"),
            "2026-12-06T23:09:21Z"
        );
        assert_eq!(
            go_rfc3339("2026-12-06T23:09:21+00:00"),
            "2026-12-06T23:09:21Z"
        );
        assert_eq!(
            go_rfc3339("2026-12-06T23:09:21.5+02:00"),
            "2026-12-06T23:09:21+02:00"
        );
    }

    #[test]
    fn floats_and_bools_hash_as_go_prints_them() {
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(7.0), "7");
        assert_eq!(go_float(1e21), "1000000000000000000000");
        assert_eq!(go_bool("True"), Some(true));
        assert_eq!(go_bool("yes"), None);
    }

    #[test]
    fn the_suffix_rule_looks_at_every_key_of_the_path() {
        let rule = Rule::UnencryptedSuffix("_unencrypted".into());
        assert!(rule.encrypts(&["a", "b"]));
        assert!(!rule.encrypts(&["a_unencrypted", "b"]));
        let rule = Rule::EncryptedRegex(regex_lite::Regex::new("^pass").unwrap());
        assert!(rule.encrypts(&["db", "password"]));
        assert!(!rule.encrypts(&["db", "user"]));
    }
}
