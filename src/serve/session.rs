//! Server-side sessions for people signed in through the browser: the cookie holds a random id
//! and nothing else; the server keeps who it is, its CSRF token, and when it was last used. A
//! session ends after an idle hour or twelve hours in all (both configurable), or at sign-out.

use super::rights::Principal;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The session cookie's name.
pub const COOKIE: &str = "fleetpin_session";

struct Session {
    principal: Principal,
    csrf: String,
    created: Instant,
    seen: Instant,
}

/// Every live session, by the SHA-256 of its cookie (a memory dump shows no usable cookie).
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    idle: Duration,
    max: Duration,
}

/// A signed-in person and the CSRF token their state-changing requests must carry.
#[derive(Debug, Clone)]
pub struct Live {
    pub principal: Principal,
    pub csrf: String,
}

fn key(cookie: &str) -> String {
    hex::encode(Sha256::digest(cookie.as_bytes()))
}

impl Sessions {
    pub fn new(idle: Duration, max: Duration) -> Sessions {
        Sessions {
            map: Mutex::new(HashMap::new()),
            idle,
            max,
        }
    }

    /// A new session for `principal`: the cookie value to set, and its CSRF token.
    pub fn create(&self, principal: Principal) -> (String, String) {
        let cookie = super::random_id();
        let csrf = super::random_id();
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, s| !self.expired(s, now));
        map.insert(
            key(&cookie),
            Session {
                principal,
                csrf: csrf.clone(),
                created: now,
                seen: now,
            },
        );
        (cookie, csrf)
    }

    fn expired(&self, s: &Session, now: Instant) -> bool {
        now.duration_since(s.seen) > self.idle || now.duration_since(s.created) > self.max
    }

    /// The session of `cookie`, if it lives (and it is used now).
    pub fn get(&self, cookie: &str) -> Option<Live> {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let k = key(cookie);
        let s = map.get_mut(&k)?;
        if self.expired(s, now) {
            map.remove(&k);
            return None;
        }
        s.seen = now;
        Some(Live {
            principal: s.principal.clone(),
            csrf: s.csrf.clone(),
        })
    }

    /// Sign-out: the cookie no longer opens anything.
    pub fn revoke(&self, cookie: &str) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key(cookie));
    }
}

/// The value of cookie `name` in a request's headers.
pub fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Equal, in time that does not depend on where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn someone() -> Principal {
        Principal {
            id: "ops@acme.example".into(),
            subject: "s1".into(),
            grants: vec![],
        }
    }

    #[test]
    fn a_session_lives_until_idle_or_revoked() {
        let s = Sessions::new(Duration::from_millis(50), Duration::from_secs(60));
        let (cookie, csrf) = s.create(someone());
        let live = s.get(&cookie).unwrap();
        assert_eq!(live.csrf, csrf);
        assert!(s.get("another").is_none());
        std::thread::sleep(Duration::from_millis(80));
        assert!(s.get(&cookie).is_none(), "idle too long");
        let (cookie, _) = s.create(someone());
        s.revoke(&cookie);
        assert!(s.get(&cookie).is_none(), "signed out");
    }

    #[test]
    fn comparison_is_exact() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
    }
}
