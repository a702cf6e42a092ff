//! What every request of the console can reach (`App`: the manifest followed, the keys, the
//! token check, sessions, operations, the fleet cache, the counters), who is calling (`Caller`),
//! and the JSON answer every handler writes.

use super::rights::Principal;
use super::session::{Live, Sessions};
use crate::manifest::Loaded;
use crate::secrets::Keys;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Reads an API token's secret: who it is, if it is valid now.
pub type TokenCheck = Arc<dyn Fn(&str) -> Option<Principal> + Send + Sync>;

/// What every request can reach.
pub struct App {
    /// The manifest followed (the working tree's file, or the fetched reference).
    pub manifest: PathBuf,
    pub keys: Arc<Keys>,
    pub connect_timeout: Duration,
    pub tokens: TokenCheck,
    /// serve.yaml's `break_glass`: an API token may open a browser session.
    pub break_glass: bool,
    pub sessions: Sessions,
    pub operations: super::operations::Operations,
    pub cache: super::cache::FleetCache,
    pub counters: super::metrics::Operations,
    /// OpenID Connect sign-in, when configured.
    pub oidc: Option<Arc<super::oidc::Oidc>>,
    /// The manifest as last parsed (`load_shared`).
    pub parsed: Mutex<Option<Arc<Loaded>>>,
}

impl App {
    /// The manifest as it is now.
    pub fn load(&self) -> Result<Loaded, super::error::ApiError> {
        crate::ops::deploy::load(&self.manifest, None).map_err(super::error::ApiError::from)
    }

    /// The manifest as it is now, parsed again only when its text changed. Parsing and checking
    /// 1,000 hosts takes ~10 ms, the bulk of a cached audit answer once the answer itself is
    /// written once per reading, so the requests that poll (audit, /metrics) share the last
    /// parse. A `Loaded` is a function of the text alone (`manifest::load`), so the text is
    /// the key: a change on disk is seen at the next request, as with `load`.
    pub fn load_shared(&self) -> Result<Arc<Loaded>, super::error::ApiError> {
        let last = self
            .parsed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(last) = last {
            let same_len =
                std::fs::metadata(&self.manifest).is_ok_and(|m| m.len() == last.text.len() as u64);
            if same_len
                && std::fs::read(&self.manifest).is_ok_and(|now| now == last.text.as_bytes())
            {
                return Ok(last);
            }
        }
        let loaded = Arc::new(self.load()?);
        *self.parsed.lock().unwrap_or_else(|e| e.into_inner()) = Some(loaded.clone());
        Ok(loaded)
    }
}

/// Who is calling, and how: a token (no CSRF: a header a cross-site page cannot set) or a
/// session (its CSRF token required on state-changing requests).
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub session: Option<Live>,
}
