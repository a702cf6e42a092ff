//! What every request of the console can reach (`App`: the manifest followed, the keys, the
//! token check, sessions, operations, the fleet cache, the counters), who is calling (`Caller`),
//! and the JSON answer every handler writes.

use super::rights::Principal;
use super::session::{Live, Sessions};
use crate::manifest::Loaded;
use crate::secrets::Keys;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Reads an API token's secret: who it is, if it is valid now.
pub type TokenCheck = Arc<dyn Fn(&str) -> Option<Principal> + Send + Sync>;

/// What every request can reach.
pub struct App {
    /// The manifest followed: the working tree's file, or the console's clone.
    pub reference: Arc<super::reference::Reference>,
    /// Every environment's identities at once: reading (audit, logs' masking).
    pub keys: Arc<Keys>,
    /// serve.yaml's `age_identities`: environment → identity file. An action on an environment
    /// opens its secrets with its own key alone.
    pub age_identities: indexmap::IndexMap<String, std::path::PathBuf>,
    pub connect_timeout: Duration,
    pub tokens: TokenCheck,
    /// serve.yaml's `break_glass`: an API token may open a browser session.
    pub break_glass: bool,
    pub sessions: Sessions,
    pub operations: super::operations::Operations,
    pub cache: super::cache::FleetCache,
    pub counters: super::metrics::Operations,
    /// How browsers reach the console (TLS here, or trusted proxies), for cookies' `Secure`.
    pub transport: super::oidc::Transport,
    /// OpenID Connect sign-in, when configured.
    pub oidc: Option<Arc<super::oidc::Oidc>>,
    /// The manifest as last parsed (`load_shared`).
    pub parsed: Mutex<Option<Arc<Loaded>>>,
}

impl App {
    /// The keys that open `env`'s secrets: its identity file in serve.yaml, nothing else.
    pub fn keys_for(&self, env: &str) -> Arc<Keys> {
        Arc::new(match self.age_identities.get(env) {
            Some(file) => Keys::none().with_file(file.clone()),
            None => Keys::none(),
        })
    }

    /// Why `env`'s secrets are not checked here: it reads SOPS files and serve.yaml holds no age
    /// identity for it. Its plans say so, and no action is offered there.
    pub fn secrets_unchecked(&self, loaded: &Loaded, env: &str) -> Option<String> {
        if self.age_identities.contains_key(env) {
            return None;
        }
        let files = crate::ops::secrets::sops_files(loaded, env);
        (!files.is_empty()).then(|| {
            format!(
                "secrets not checked: serve.yaml holds no age identity for `{env}` (age_identities), so {} cannot be opened here; the console plans {env} without comparing secret values and offers no action there",
                files.join(", ")
            )
        })
    }

    /// The manifest as it is now.
    pub fn load(&self) -> Result<Loaded, super::error::ApiError> {
        crate::ops::deploy::load(&self.reference.manifest, None)
            .map_err(super::error::ApiError::from)
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
            let same_len = std::fs::metadata(&self.reference.manifest)
                .is_ok_and(|m| m.len() == last.text.len() as u64);
            if same_len
                && std::fs::read(&self.reference.manifest)
                    .is_ok_and(|now| now == last.text.as_bytes())
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
