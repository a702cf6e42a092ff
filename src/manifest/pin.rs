//! A version pin: the tag an environment runs, optionally nailed to a digest.
//!
//! Pins are compared by semver where both sides parse (a leading `v` allowed), so the planner can
//! say upgrade or downgrade; anything else only compares equal or not (`change`). A digest makes
//! the pin immutable: promotion writes `tag@sha256:…` so a tag moved in the registry later can never
//! reach the next environment.

use serde::Serialize;
use std::cmp::Ordering;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct VersionPin {
    pub tag: String,
    /// `sha256:<64 hex>` when pinned by digest.
    pub digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    #[error("the version is empty; write a tag such as \"2.4.1\"")]
    Empty,
    #[error("`latest` is not a version: it moves; pin a real tag such as \"2.4.1\"")]
    Latest,
    #[error(
        "`{0}` is not a valid image tag (letters, digits, `_`, `.` and `-`, at most 128, not starting with `.` or `-`)"
    )]
    BadTag(String),
    #[error("`{0}` is not a valid digest; expected `sha256:` followed by 64 lowercase hex digits")]
    BadDigest(String),
}

impl VersionPin {
    pub fn parse(text: &str) -> Result<VersionPin, PinError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(PinError::Empty);
        }
        let (tag, digest) = match text.split_once('@') {
            Some((t, d)) => (t, Some(d)),
            None => (text, None),
        };
        if tag.is_empty() {
            return Err(PinError::Empty);
        }
        if tag.eq_ignore_ascii_case("latest") {
            return Err(PinError::Latest);
        }
        if !valid_tag(tag) {
            return Err(PinError::BadTag(tag.to_string()));
        }
        let digest = match digest {
            None => None,
            Some(d) => {
                if !valid_digest(d) {
                    return Err(PinError::BadDigest(d.to_string()));
                }
                Some(d.to_string())
            }
        };
        Ok(VersionPin {
            tag: tag.to_string(),
            digest,
        })
    }

    /// The semver reading of the tag, if it has one.
    pub fn semver(&self) -> Option<semver::Version> {
        let t = self.tag.strip_prefix('v').unwrap_or(&self.tag);
        semver::Version::parse(t).ok()
    }

    /// Order of two pins: by semver when both parse, else only equality is known.
    pub fn compare(&self, other: &VersionPin) -> Option<Ordering> {
        if self.tag == other.tag {
            return Some(Ordering::Equal);
        }
        match (self.semver(), other.semver()) {
            (Some(a), Some(b)) => Some(a.cmp(&b)),
            _ => None,
        }
    }

    /// The reference to pull for `repository`: by digest when pinned, else by tag.
    pub fn image_ref(&self, repository: &str) -> String {
        match &self.digest {
            Some(d) => format!("{repository}@{d}"),
            None => format!("{repository}:{}", self.tag),
        }
    }
}

impl fmt::Display for VersionPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.digest {
            Some(d) => write!(f, "{}@{}", self.tag, d),
            None => f.write_str(&self.tag),
        }
    }
}

pub fn valid_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    tag.len() <= 128
        && (first.is_ascii_alphanumeric() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

pub fn valid_digest(d: &str) -> bool {
    match d.strip_prefix("sha256:") {
        Some(hex) => hex.len() == 64 && hex.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:4d0bc6182dc5ee4ce965969bfdd025bf1491b12cc22a3c9edb5597ff23dc551b";

    #[test]
    fn parses_tags_and_digests() {
        let p = VersionPin::parse("2.4.1").unwrap();
        assert_eq!(p.tag, "2.4.1");
        assert_eq!(p.digest, None);
        let p = VersionPin::parse(&format!("2.4.0@{D}")).unwrap();
        assert_eq!(p.digest.as_deref(), Some(D));
        assert_eq!(p.to_string(), format!("2.4.0@{D}"));
        assert_eq!(p.image_ref("r/app"), format!("r/app@{D}"));
    }

    #[test]
    fn rejects_latest_blank_and_bad_digests() {
        assert_eq!(VersionPin::parse("latest"), Err(PinError::Latest));
        assert_eq!(VersionPin::parse("  "), Err(PinError::Empty));
        assert!(matches!(
            VersionPin::parse("1.0@sha256:abc"),
            Err(PinError::BadDigest(_))
        ));
        assert!(matches!(
            VersionPin::parse("1.0@md5:abc"),
            Err(PinError::BadDigest(_))
        ));
        assert!(matches!(
            VersionPin::parse("-bad"),
            Err(PinError::BadTag(_))
        ));
        assert!(matches!(VersionPin::parse("a b"), Err(PinError::BadTag(_))));
    }

    #[test]
    fn semver_orders_and_others_only_compare_equal() {
        let a = VersionPin::parse("v1.9.0").unwrap();
        let b = VersionPin::parse("1.10.0").unwrap();
        assert_eq!(a.compare(&b), Some(Ordering::Less));
        let c = VersionPin::parse("2024-05-01").unwrap();
        let d = VersionPin::parse("2024-06-01").unwrap();
        assert_eq!(c.compare(&d), None);
        assert_eq!(c.compare(&c.clone()), Some(Ordering::Equal));
    }
}
