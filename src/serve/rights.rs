//! Who may do what, per environment. Pure: the server asks a [`Principal`] before it reads or
//! acts, so every check is one place, tested case by case (and against the table in
//! docs/console.md, which a test reads).
//!
//! | action                                   | view | deploy | admin |
//! |------------------------------------------|------|--------|-------|
//! | GET audit, plan, history, hosts, logs    | yes  | yes    | yes   |
//! | the environment's series in `/metrics`   | yes  | yes    | yes   |
//! | POST apply, rollback, unlock             | no   | yes    | yes   |
//! | POST promote FROM TO (rights on TO)      | no   | yes    | yes   |
//! | `--override-window` (deploy in a window) | no   | no     | yes   |
//!
//! Every row is per environment: a grant names the environments it applies to (none named: all
//! of them), and someone holds a right on an environment when any of their grants gives it
//! there. Promote reads FROM and changes TO, so it needs `view` on FROM and `deploy` on TO.

use std::fmt;
use std::str::FromStr;

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

impl Role {
    pub const ALL: [Role; 3] = [Role::View, Role::Deploy, Role::Admin];

    /// The rights the role gives on each environment it applies to.
    pub fn rights(self) -> &'static [Right] {
        match self {
            Role::View => &[Right::View],
            Role::Deploy => &[Right::View, Right::Deploy],
            Role::Admin => &[Right::View, Right::Deploy, Right::OverrideWindow],
        }
    }

    pub fn has(self, right: Right) -> bool {
        self.rights().contains(&right)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::View => "view",
            Role::Deploy => "deploy",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is none of `view`, `deploy`, `admin`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{0}`: a role is view, deploy or admin")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Role, UnknownRole> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_string()))
    }
}

/// A role on some environments (`None`: all of them).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Grant {
    pub role: Role,
    pub envs: Option<Vec<String>>,
}

impl Grant {
    /// Whether the grant covers `env` (an empty list covers nothing).
    pub fn applies_to(&self, env: &str) -> bool {
        match &self.envs {
            None => true,
            Some(envs) => envs.iter().any(|e| e == env),
        }
    }
}

/// An OpenID group given a role (serve.yaml's `oidc.roles`): everyone whose groups claim holds
/// `group` gets `role` on `envs` (absent: all environments).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleMapping {
    pub group: String,
    pub role: Role,
    #[serde(default)]
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
    /// Whether any grant gives `right` on `env`.
    pub fn allows(&self, right: Right, env: &str) -> bool {
        self.grants
            .iter()
            .any(|g| g.applies_to(env) && g.role.has(right))
    }

    /// The environments of `envs` it may view, in their order.
    pub fn visible(&self, envs: &[String]) -> Vec<String> {
        envs.iter()
            .filter(|e| self.allows(Right::View, e))
            .cloned()
            .collect()
    }

    /// Promote reads FROM and pins TO: `view` on FROM and `deploy` on TO.
    pub fn allows_promote(&self, from: &str, to: &str) -> bool {
        self.allows(Right::View, from) && self.allows(Right::Deploy, to)
    }

    /// Every right it holds on `env`, in order (for pages that show or hide actions).
    pub fn rights(&self, env: &str) -> Vec<Right> {
        let mut rights: Vec<Right> = self
            .grants
            .iter()
            .filter(|g| g.applies_to(env))
            .flat_map(|g| g.role.rights().iter().copied())
            .collect();
        rights.sort();
        rights.dedup();
        rights
    }

    /// Someone signed in by OpenID: one grant per mapping whose group is among `groups` (exact,
    /// case-sensitive: group names are identifiers). No matching group: no grant, so nothing is
    /// allowed beyond signing in.
    pub fn from_groups(
        id: &str,
        subject: &str,
        groups: &[String],
        mappings: &[RoleMapping],
    ) -> Principal {
        let grants = mappings
            .iter()
            .filter(|m| groups.contains(&m.group))
            .map(|m| Grant {
                role: m.role,
                envs: m.envs.clone(),
            })
            .collect();
        Principal {
            id: id.to_string(),
            subject: subject.to_string(),
            grants,
        }
    }
}

/// What the API offers on an environment, each with the right it needs there (promote: on its
/// target; it also needs `view` on its source, see [`Principal::allows_promote`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Audit,
    Plan,
    History,
    Hosts,
    Logs,
    /// The environment's series in `/metrics`.
    Metrics,
    Apply,
    Rollback,
    Unlock,
    Promote,
    /// Acting although a deploy window holds changes (`--override-window`).
    OverrideWindow,
}

impl Action {
    pub const ALL: [Action; 11] = [
        Action::Audit,
        Action::Plan,
        Action::History,
        Action::Hosts,
        Action::Logs,
        Action::Metrics,
        Action::Apply,
        Action::Rollback,
        Action::Unlock,
        Action::Promote,
        Action::OverrideWindow,
    ];

    /// The right needed on the environment acted on.
    pub fn right(self) -> Right {
        match self {
            Action::Audit
            | Action::Plan
            | Action::History
            | Action::Hosts
            | Action::Logs
            | Action::Metrics => Right::View,
            Action::Apply | Action::Rollback | Action::Unlock | Action::Promote => Right::Deploy,
            Action::OverrideWindow => Right::OverrideWindow,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envs(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn who(grants: &[(Role, Option<&[&str]>)]) -> Principal {
        Principal {
            id: "ana@acme.example".into(),
            subject: "sub-1".into(),
            grants: grants
                .iter()
                .map(|(role, e)| Grant {
                    role: *role,
                    envs: e.map(envs),
                })
                .collect(),
        }
    }

    #[test]
    fn view_reads_only() {
        let p = who(&[(Role::View, None)]);
        assert!(p.allows(Right::View, "prod"));
        assert!(!p.allows(Right::Deploy, "prod"));
        assert!(!p.allows(Right::OverrideWindow, "prod"));
    }

    #[test]
    fn deploy_reads_and_deploys_but_does_not_override_windows() {
        let p = who(&[(Role::Deploy, None)]);
        assert!(p.allows(Right::View, "prod"));
        assert!(p.allows(Right::Deploy, "prod"));
        assert!(!p.allows(Right::OverrideWindow, "prod"));
    }

    #[test]
    fn admin_holds_every_right() {
        let p = who(&[(Role::Admin, None)]);
        for r in [Right::View, Right::Deploy, Right::OverrideWindow] {
            assert!(p.allows(r, "prod"), "{r:?}");
        }
    }

    #[test]
    fn a_grant_applies_to_its_environments_only() {
        let p = who(&[(Role::Deploy, Some(&["recette", "preprod"]))]);
        assert!(p.allows(Right::Deploy, "recette"));
        assert!(p.allows(Right::View, "preprod"));
        assert!(!p.allows(Right::View, "prod"));
        assert!(!p.allows(Right::Deploy, "prod"));
    }

    #[test]
    fn an_empty_environment_list_grants_nothing() {
        let p = who(&[(Role::Admin, Some(&[]))]);
        assert!(!p.allows(Right::View, "prod"));
        assert!(p.visible(&envs(&["recette", "prod"])).is_empty());
    }

    #[test]
    fn environment_names_match_exactly() {
        let p = who(&[(Role::Deploy, Some(&["prod"]))]);
        assert!(!p.allows(Right::View, "Prod"));
        assert!(!p.allows(Right::View, "prod2"));
        assert!(!p.allows(Right::View, ""));
    }

    #[test]
    fn no_grant_allows_nothing() {
        let p = who(&[]);
        for a in Action::ALL {
            assert!(!p.allows(a.right(), "recette"), "{a:?}");
        }
        assert!(!p.allows_promote("recette", "preprod"));
        assert!(p.visible(&envs(&["recette"])).is_empty());
    }

    #[test]
    fn grants_add_up() {
        let p = who(&[
            (Role::View, None),
            (Role::Deploy, Some(&["recette"])),
            (Role::Admin, Some(&["preprod"])),
        ]);
        assert_eq!(p.rights("prod"), vec![Right::View]);
        assert_eq!(p.rights("recette"), vec![Right::View, Right::Deploy]);
        assert_eq!(
            p.rights("preprod"),
            vec![Right::View, Right::Deploy, Right::OverrideWindow]
        );
    }

    #[test]
    fn visible_keeps_the_given_order_and_drops_the_others() {
        let p = who(&[
            (Role::View, Some(&["prod", "recette"])),
            (Role::Deploy, Some(&["staging"])),
        ]);
        assert_eq!(
            p.visible(&envs(&["recette", "preprod", "staging", "prod"])),
            envs(&["recette", "staging", "prod"])
        );
        let all = who(&[(Role::View, None)]);
        assert_eq!(
            all.visible(&envs(&["recette", "prod"])),
            envs(&["recette", "prod"])
        );
    }

    #[test]
    fn promote_needs_view_on_the_source_and_deploy_on_the_target() {
        // deploy on the target, view on the source: yes.
        let p = who(&[
            (Role::View, Some(&["recette"])),
            (Role::Deploy, Some(&["preprod"])),
        ]);
        assert!(p.allows_promote("recette", "preprod"));
        // The other way round: view only on the target.
        assert!(!p.allows_promote("preprod", "recette"));
        // deploy on the target but nothing on the source.
        let q = who(&[(Role::Deploy, Some(&["preprod"]))]);
        assert!(!q.allows_promote("recette", "preprod"));
        // view everywhere is not enough.
        let v = who(&[(Role::View, None)]);
        assert!(!v.allows_promote("recette", "preprod"));
        // deploy on the source only is not enough.
        let s = who(&[(Role::Deploy, Some(&["recette"]))]);
        assert!(!s.allows_promote("recette", "preprod"));
        // deploy and admin everywhere: yes.
        assert!(who(&[(Role::Deploy, None)]).allows_promote("recette", "preprod"));
        assert!(who(&[(Role::Admin, None)]).allows_promote("recette", "preprod"));
    }

    #[test]
    fn roles_read_and_print_their_names() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
            assert_eq!(r.to_string(), r.as_str());
        }
        let e = "Admin".parse::<Role>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown role `Admin`: a role is view, deploy or admin"
        );
        assert!("".parse::<Role>().is_err());
    }

    #[test]
    fn groups_map_to_grants() {
        let mappings = vec![
            RoleMapping {
                group: "devs".into(),
                role: Role::View,
                envs: None,
            },
            RoleMapping {
                group: "devs".into(),
                role: Role::Deploy,
                envs: Some(envs(&["recette"])),
            },
            RoleMapping {
                group: "ops".into(),
                role: Role::Admin,
                envs: None,
            },
        ];
        let dev = Principal::from_groups(
            "ana@acme.example",
            "sub-1",
            &envs(&["devs", "other"]),
            &mappings,
        );
        assert_eq!(dev.id, "ana@acme.example");
        assert_eq!(dev.subject, "sub-1");
        assert_eq!(dev.grants.len(), 2);
        assert!(dev.allows(Right::Deploy, "recette"));
        assert!(dev.allows(Right::View, "prod"));
        assert!(!dev.allows(Right::Deploy, "prod"));
        let ops = Principal::from_groups("bo@acme.example", "sub-2", &envs(&["ops"]), &mappings);
        assert!(ops.allows(Right::OverrideWindow, "prod"));
        // Group names match exactly.
        let nobody = Principal::from_groups("c@x", "s", &envs(&["Ops", "dev"]), &mappings);
        assert!(nobody.grants.is_empty());
        assert!(!nobody.allows(Right::View, "recette"));
        let none = Principal::from_groups("c@x", "s", &[], &mappings);
        assert!(none.grants.is_empty());
    }

    #[test]
    fn every_action_needs_its_right_for_each_role() {
        // (action, view, deploy, admin)
        let table: [(Action, bool, bool, bool); 11] = [
            (Action::Audit, true, true, true),
            (Action::Plan, true, true, true),
            (Action::History, true, true, true),
            (Action::Hosts, true, true, true),
            (Action::Logs, true, true, true),
            (Action::Metrics, true, true, true),
            (Action::Apply, false, true, true),
            (Action::Rollback, false, true, true),
            (Action::Unlock, false, true, true),
            (Action::Promote, false, true, true),
            (Action::OverrideWindow, false, false, true),
        ];
        for (action, view, deploy, admin) in table {
            for (role, expected) in [
                (Role::View, view),
                (Role::Deploy, deploy),
                (Role::Admin, admin),
            ] {
                let on_prod = who(&[(role, Some(&["prod"]))]);
                assert_eq!(
                    on_prod.allows(action.right(), "prod"),
                    expected,
                    "{action:?} as {role} on its environment"
                );
                assert!(
                    !on_prod.allows(action.right(), "recette"),
                    "{action:?} as {role} elsewhere"
                );
            }
        }
    }

    /// The table in docs/console.md says what the code does: each row's cells, read as yes/no
    /// per role, match the role's rights for that row's actions.
    #[test]
    fn the_documented_table_matches_the_code() {
        let doc = include_str!("../../docs/console.md");
        let section = doc
            .split("## Who may do what")
            .nth(1)
            .expect("docs/console.md has a \"Who may do what\" section");
        let rows: Vec<Vec<String>> = section
            .lines()
            .take_while(|l| !l.starts_with("## "))
            .filter(|l| l.starts_with('|') && !l.contains("---"))
            .map(|l| {
                l.trim_matches('|')
                    .split('|')
                    .map(|c| c.trim().to_string())
                    .collect()
            })
            .collect();
        assert_eq!(
            rows.first().map(|h| h[1..].to_vec()),
            Some(vec!["view".into(), "deploy".into(), "admin".into()]),
            "the header names the roles"
        );
        // Which actions each row speaks of, by the words it uses.
        let words: [(&str, Action); 11] = [
            ("audit", Action::Audit),
            ("plan", Action::Plan),
            ("history", Action::History),
            ("hosts", Action::Hosts),
            ("logs", Action::Logs),
            ("/metrics", Action::Metrics),
            ("apply", Action::Apply),
            ("rollback", Action::Rollback),
            ("unlock", Action::Unlock),
            ("promote", Action::Promote),
            ("--override-window", Action::OverrideWindow),
        ];
        let mut seen = Vec::new();
        for row in &rows[1..] {
            assert_eq!(row.len(), 4, "{row:?}");
            let actions: Vec<Action> = words
                .iter()
                .filter(|(w, _)| {
                    row[0]
                        .split(|c: char| c.is_whitespace() || c == ',' || c == '`')
                        .any(|t| t == *w)
                })
                .map(|(_, a)| *a)
                .collect();
            assert!(!actions.is_empty(), "row names no action: {row:?}");
            for action in actions {
                for (i, role) in Role::ALL.into_iter().enumerate() {
                    let documented = match row[i + 1].as_str() {
                        "yes" => true,
                        "no" => false,
                        other => panic!("cell {other:?} in {row:?}"),
                    };
                    let p = who(&[(role, None)]);
                    assert_eq!(
                        p.allows(action.right(), "prod"),
                        documented,
                        "{action:?} for {role} in {row:?}"
                    );
                }
                seen.push(action);
            }
        }
        for a in Action::ALL {
            assert!(seen.contains(&a), "the table has no row for {a:?}");
        }
    }
}
