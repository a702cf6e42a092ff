//! What fleetpin writes on the containers it creates, and how it reads them back.
//!
//! Labels cannot change after create, so they record the deploy that created a container (the
//! contract's `io.fleetpin.*` set), and the container's *role* — current, retained, failed — is
//! carried by its name instead: `{platform}-{env}-{service}` for the running one, a `.prev-`,
//! `.rolled-back-`, `.old-`, `.failed-`, `.new-` or `.broken-` suffix otherwise. `.` cannot appear in a
//! service name, so a suffixed name never collides with another service's stable name.

use crate::manifest::resolve::{ResolvedService, SPEC_HASH_SCHEME};
use std::collections::BTreeMap;

pub const PLATFORM: &str = "io.fleetpin.platform";
pub const ENVIRONMENT: &str = "io.fleetpin.environment";
pub const SERVICE: &str = "io.fleetpin.service";
pub const VERSION: &str = "io.fleetpin.version";
pub const SPEC_HASH: &str = "io.fleetpin.spec-hash";
pub const COMMIT: &str = "io.fleetpin.commit";
pub const DEPLOYED_AT: &str = "io.fleetpin.deployed-at";
pub const DEPLOYED_BY: &str = "io.fleetpin.deployed-by";
/// The spec's restart policy, restored when rollback starts a retained container again (retained
/// containers have theirs set to `no`).
pub const RESTART: &str = "io.fleetpin.restart";
/// Who holds a lock: the operator's identity.
pub const LOCK_OWNER: &str = "io.fleetpin.lock.owner";
/// The operation holding the lock: its command and id (`apply apply-18f…-1`).
pub const LOCK_OPERATION: &str = "io.fleetpin.lock.operation";
/// The holder's machine id (`/etc/machine-id`), empty when it has none: a process can only be
/// judged dead on the machine it ran on.
pub const LOCK_MACHINE: &str = "io.fleetpin.lock.machine";
/// The holder's host name, for people.
pub const LOCK_HOSTNAME: &str = "io.fleetpin.lock.hostname";
pub const LOCK_PID: &str = "io.fleetpin.lock.pid";
/// The holder process's start time (clock ticks since boot), so a reused pid is not taken for it.
pub const LOCK_PID_START: &str = "io.fleetpin.lock.pid-start";
/// Seconds without a heartbeat after which the lock has expired, by the engine's clock.
pub const LOCK_TTL: &str = "io.fleetpin.lock.ttl";
/// On a heartbeat container: the id of the lock it renews.
pub const LOCK_OF: &str = "io.fleetpin.lock.of";

/// On the agent's status container (`host::agent`): the host it converges, the commit it last
/// synced, when (its clock, RFC 3339), the result and why, its interval in seconds, the releases
/// it will not try again (`service=spec-hash,…`) and the repository it follows.
pub const AGENT_HOST: &str = "io.fleetpin.agent.host";
pub const AGENT_COMMIT: &str = "io.fleetpin.agent.commit";
pub const AGENT_SYNCED_AT: &str = "io.fleetpin.agent.synced-at";
pub const AGENT_RESULT: &str = "io.fleetpin.agent.result";
pub const AGENT_REASON: &str = "io.fleetpin.agent.reason";
pub const AGENT_INTERVAL: &str = "io.fleetpin.agent.interval";
pub const AGENT_FAILED: &str = "io.fleetpin.agent.failed";
pub const AGENT_REPO: &str = "io.fleetpin.agent.repo";
pub const AGENT_APPLIED: &str = "io.fleetpin.agent.applied";
/// The artifact an agent following `oci://` read its commit from (`sha256:…`).
pub const AGENT_DIGEST: &str = "io.fleetpin.agent.digest";

pub const PREV: &str = ".prev-";
/// A previous container that a rollback stepped away from: retained (it counts in `retain`,
/// `--to` may name it) but never the default target of a later rollback.
pub const ROLLED_BACK: &str = ".rolled-back-";
/// A container stepped aside by a swap whose gate has not passed yet (`.old-`, and its variants
/// below, which say what to make of it and of the incoming container if a run is killed).
pub const OLD: &str = ".old-";
/// Stepped aside by apply for a kept container started again (relaunch).
pub const OLD_KEPT: &str = ".old-k-";
/// Stepped aside by a rollback for a kept container started again.
pub const OLD_ROLLBACK: &str = ".old-rb-";
/// Stepped aside by a rollback for a new container of a version no longer kept.
pub const OLD_ROLLBACK_NEW: &str = ".old-rbn-";
pub const FAILED: &str = ".failed-";
/// A retained container the engine refused to start (its containerd task outlived a daemon
/// crash, say) and then refused to remove, once a fresh one of the same spec passed its gate:
/// outside `retain`, never relaunched nor chosen by rollback; removed when the engine allows.
pub const BROKEN: &str = ".broken-";
pub const NEW: &str = ".new-";
/// A retained (`.prev-`) container a start-first swap is starting beside the serving one: if the
/// run is killed, it goes back to being retained (a `.new-` one is removed).
pub const NEW_KEPT: &str = ".new-k-";
/// The same for a `.rolled-back-` container: it goes back to that role.
pub const NEW_KEPT_RB: &str = ".new-kr-";

/// The name a kept container takes while a start-first swap starts it beside the serving one.
pub fn pending_kept_name(stable: &str, kept_name: &str, now_millis: u128, id: &str) -> String {
    let marker = if kept_name.contains(ROLLED_BACK) {
        NEW_KEPT_RB
    } else {
        NEW_KEPT
    };
    format!("{stable}{marker}{}", suffix(now_millis, id))
}

/// For a pending (`.new-…`) container that was a kept one: the retained name it goes back to.
pub fn kept_again(stable: &str, pending: &str, now_millis: u128, id: &str) -> Option<String> {
    let role = if pending.contains(NEW_KEPT_RB) {
        ROLLED_BACK
    } else if pending.contains(NEW_KEPT) {
        PREV
    } else {
        return None;
    };
    Some(format!("{stable}{role}{}", suffix(now_millis, id)))
}

/// Who and what a deploy records on every container it creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployStamp {
    pub commit: String,
    pub deployed_at: String,
    pub deployed_by: String,
}

/// The labels of a new container for `r`.
pub fn for_service(r: &ResolvedService, stamp: &DeployStamp) -> BTreeMap<String, String> {
    let mut l = r.labels.clone();
    l.insert(PLATFORM.into(), r.platform.clone());
    l.insert(ENVIRONMENT.into(), r.environment.clone());
    l.insert(SERVICE.into(), r.service.clone());
    l.insert(VERSION.into(), r.pin.to_string());
    l.insert(SPEC_HASH.into(), r.spec_hash.clone());
    l.insert(COMMIT.into(), stamp.commit.clone());
    l.insert(DEPLOYED_AT.into(), stamp.deployed_at.clone());
    l.insert(DEPLOYED_BY.into(), stamp.deployed_by.clone());
    l.insert(RESTART.into(), r.restart.as_str().into());
    l.insert(SPEC_HASH_SCHEME_LABEL.into(), SPEC_HASH_SCHEME.to_string());
    l
}

/// The scheme of the spec hash a container or service carries (absent: scheme 1).
pub const SPEC_HASH_SCHEME_LABEL: &str = "io.fleetpin.spec-hash-scheme";

/// Whether `labels` carry a hash of the current scheme: an older one mixes in digests of
/// secret values and is never copied anywhere new.
pub fn current_scheme(labels: &BTreeMap<String, String>) -> bool {
    labels.get(SPEC_HASH_SCHEME_LABEL).map(String::as_str)
        == Some(SPEC_HASH_SCHEME.to_string().as_str())
}

/// Labels for volumes and networks fleetpin creates (so an operator can tell whose they are).
pub fn for_resource(platform: &str, environment: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (PLATFORM.to_string(), platform.to_string()),
        (ENVIRONMENT.to_string(), environment.to_string()),
    ])
}

/// The role a container's name gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Current,
    Retained,
    /// Retained, stepped away from by a rollback.
    RolledBack,
    Failed,
    /// Refused by the engine, replaced, and kept only because it could not be removed.
    Broken,
    /// Created by a run that did not finish swapping names.
    Pending,
    /// Stepped aside by a swap not confirmed yet (the run may have been killed).
    Unconfirmed,
}

/// Splits `acme-prod-billing.prev-1a2b` into (`billing`, Retained) for the prefix `acme-prod-`.
pub fn parse_name<'a>(prefix: &str, name: &'a str) -> Option<(&'a str, Role)> {
    let rest = name.strip_prefix(prefix)?;
    for (marker, role) in [
        (PREV, Role::Retained),
        (ROLLED_BACK, Role::RolledBack),
        (FAILED, Role::Failed),
        (BROKEN, Role::Broken),
        (NEW, Role::Pending),
        (OLD, Role::Unconfirmed),
    ] {
        if let Some(i) = rest.find(marker) {
            return Some((&rest[..i], role));
        }
    }
    if rest.contains('.') {
        return None;
    }
    Some((rest, Role::Current))
}

/// A unique suffix for a container that steps aside (local time and the container's id): it
/// makes names unique and readable; it does not order them (the engine's `Created` does).
pub fn suffix(now_millis: u128, id: &str) -> String {
    format!("{now_millis:013}-{}", &id[..id.len().min(8)])
}

/// The role a container stepped aside by a swap takes once the swap is confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aside {
    /// A previous version, a rollback target (`.prev-`).
    Previous,
    /// Stepped away from by a rollback: kept, never a default target (`.rolled-back-`).
    RolledBack,
}

/// The unconfirmed name of a container being stepped aside: its role once confirmed, and
/// whether the container taking its place was a kept one (repair must not remove that one).
pub fn aside_name(
    stable: &str,
    role: Aside,
    incoming_kept: bool,
    now_millis: u128,
    id: &str,
) -> String {
    let marker = match (role, incoming_kept) {
        (Aside::Previous, false) => OLD,
        (Aside::Previous, true) => OLD_KEPT,
        (Aside::RolledBack, true) => OLD_ROLLBACK,
        (Aside::RolledBack, false) => OLD_ROLLBACK_NEW,
    };
    format!("{stable}{marker}{}", suffix(now_millis, id))
}

/// The markers of unconfirmed names, the longest first (each begins with `.old-`).
const ASIDE_MARKERS: [&str; 4] = [OLD_ROLLBACK_NEW, OLD_ROLLBACK, OLD_KEPT, OLD];

fn aside_marker(aside: &str) -> &'static str {
    ASIDE_MARKERS
        .into_iter()
        .find(|m| aside.contains(m))
        .unwrap_or(OLD)
}

/// The role an unconfirmed name was given, and its confirmed name.
pub fn confirmed(aside: &str) -> (Aside, String) {
    let marker = aside_marker(aside);
    if marker == OLD_ROLLBACK || marker == OLD_ROLLBACK_NEW {
        (Aside::RolledBack, aside.replacen(marker, ROLLED_BACK, 1))
    } else {
        (Aside::Previous, aside.replacen(marker, PREV, 1))
    }
}

/// Whether the container that took the stable name in this swap was a kept one (relaunched).
pub fn incoming_was_kept(aside: &str) -> bool {
    matches!(aside_marker(aside), OLD_KEPT | OLD_ROLLBACK)
}

/// Whether the swap that stepped this container aside was a rollback's.
pub fn by_rollback(aside: &str) -> bool {
    matches!(aside_marker(aside), OLD_ROLLBACK | OLD_ROLLBACK_NEW)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_give_roles() {
        assert_eq!(
            parse_name("acme-prod-", "acme-prod-billing"),
            Some(("billing", Role::Current))
        );
        assert_eq!(
            parse_name("acme-prod-", "acme-prod-billing.prev-0001-abc"),
            Some(("billing", Role::Retained))
        );
        assert_eq!(
            parse_name("acme-prod-", "acme-prod-hr-portal.failed-1"),
            Some(("hr-portal", Role::Failed))
        );
        assert_eq!(
            parse_name("acme-prod-", "acme-prod-x.new-1"),
            Some(("x", Role::Pending))
        );
        assert_eq!(
            parse_name("acme-prod-", "acme-prod-x.old-1"),
            Some(("x", Role::Unconfirmed))
        );
        assert_eq!(
            parse_name("acme-prod-", "acme-prod-x.rolled-back-1"),
            Some(("x", Role::RolledBack))
        );
        assert_eq!(
            parse_name("acme-prod-", "acme-prod-x.old-rb-1"),
            Some(("x", Role::Unconfirmed))
        );
        assert_eq!(parse_name("acme-prod-", "acme-preprod-x"), None);
        assert_eq!(
            parse_name("acme-prod-", "acme-prod-x.broken-1"),
            Some(("x", Role::Broken))
        );
        assert_eq!(parse_name("acme-prod-", "acme-prod-x.weird"), None);
    }

    #[test]
    fn asides_confirm_into_their_role() {
        let a = aside_name("acme-prod-x", Aside::RolledBack, true, 1, "abcdef0123");
        assert_eq!(a, "acme-prod-x.old-rb-0000000000001-abcdef01");
        assert_eq!(
            confirmed(&a),
            (
                Aside::RolledBack,
                "acme-prod-x.rolled-back-0000000000001-abcdef01".into()
            )
        );
        assert!(incoming_was_kept(&a) && by_rollback(&a));
        let n = aside_name("acme-prod-x", Aside::RolledBack, false, 1, "ab");
        assert_eq!(confirmed(&n).1, "acme-prod-x.rolled-back-0000000000001-ab");
        assert!(!incoming_was_kept(&n) && by_rollback(&n));
        let p = aside_name("acme-prod-x", Aside::Previous, false, 1, "ab");
        assert_eq!(
            confirmed(&p),
            (Aside::Previous, "acme-prod-x.prev-0000000000001-ab".into())
        );
        assert!(!incoming_was_kept(&p) && !by_rollback(&p));
        let k = aside_name("acme-prod-x", Aside::Previous, true, 1, "ab");
        assert_eq!(confirmed(&k).1, "acme-prod-x.prev-0000000000001-ab");
        assert!(incoming_was_kept(&k) && !by_rollback(&k));
        for name in [&a, &n, &p, &k] {
            assert_eq!(
                parse_name("acme-prod-", name),
                Some(("x", Role::Unconfirmed))
            );
        }
    }
}
