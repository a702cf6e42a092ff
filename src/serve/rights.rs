//! Who may do what, per environment (docs/console.md has the table). Pure.

/// A right on one environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Right {
    /// Read the environment: audit, plan, history, logs, its series in /metrics.
    View,
    /// apply, rollback, unlock; promote needs it on the target.
    Deploy,
    /// Deploy although a deploy window holds changes (`--override-window`).
    OverrideWindow,
}

/// What a token or a group grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    View,
    Deploy,
    Admin,
}

/// A role on some environments (`None`: all of them).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Grant {
    pub role: Role,
    pub envs: Option<Vec<String>>,
}

/// Someone signed in (a session) or a script (a token).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Principal {
    /// The email (OpenID) or `token:NAME`.
    pub id: String,
    /// The OpenID subject, or the token's id.
    pub subject: String,
    pub grants: Vec<Grant>,
}

impl Principal {
    pub fn allows(&self, right: Right, env: &str) -> bool {
        let _ = (right, env);
        false
    }
}
