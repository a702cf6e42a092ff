//! What every request of the console can reach (`App`: the manifest followed, the keys, the
//! token check, sessions, operations, the fleet cache, the counters), who is calling (`Caller`),
//! and the JSON answer every handler writes.

use super::rights::Principal;
use super::session::{Live, Sessions};
use crate::manifest::Loaded;
use crate::secrets::Keys;
use std::sync::Arc;
use std::time::Duration;

/// Reads an API token's secret: who it is, if it is valid now.
pub type TokenCheck = Arc<dyn Fn(&str) -> Option<Principal> + Send + Sync>;

/// What every request can reach.
pub struct App {
    /// The manifest followed: the working tree's file, or the console's clone.
    pub reference: Arc<super::reference::Reference>,
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
}

impl App {
    /// The manifest as it is now.
    pub fn load(&self) -> Result<Loaded, super::error::ApiError> {
        crate::ops::deploy::load(&self.reference.manifest, None)
            .map_err(super::error::ApiError::from)
    }
}

/// Who is calling, and how: a token (no CSRF: a header a cross-site page cannot set) or a
/// session (its CSRF token required on state-changing requests).
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub session: Option<Live>,
}
