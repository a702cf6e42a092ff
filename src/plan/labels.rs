//! What fleetpin writes on the containers it creates, and how it reads them back.
//!
//! Labels cannot change after create, so they record the deploy that created a container (the
//! contract's `io.fleetpin.*` set), and the container's *role* — current, retained, failed — is
//! carried by its name instead: `{platform}-{env}-{service}` for the running one, a `.prev-`,
//! `.old-`, `.failed-` or `.new-` suffix otherwise. `.` cannot appear in a service name, so a suffixed name
//! never collides with another service's stable name.

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
pub const LOCK_OWNER: &str = "io.fleetpin.lock.owner";
pub const LOCK_TAKEN_AT: &str = "io.fleetpin.lock.taken-at";
pub const LOCK_EXPIRES_AT: &str = "io.fleetpin.lock.expires-at";
pub const LOCK_MACHINE: &str = "io.fleetpin.lock.machine";
pub const LOCK_PID: &str = "io.fleetpin.lock.pid";

pub const PREV: &str = ".prev-";
/// A previous container stepped aside by a swap whose health gate has not passed yet.
pub const OLD: &str = ".old-";
pub const FAILED: &str = ".failed-";
pub const NEW: &str = ".new-";

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
    l.insert(
        "io.fleetpin.spec-hash-scheme".into(),
        SPEC_HASH_SCHEME.to_string(),
    );
    l
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
    Failed,
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
        (FAILED, Role::Failed),
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

/// A unique suffix for a container that steps aside: time-ordered, so names sort by age.
pub fn suffix(now_millis: u128, id: &str) -> String {
    format!("{now_millis:013}-{}", &id[..id.len().min(8)])
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
        assert_eq!(parse_name("acme-prod-", "acme-preprod-x"), None);
        assert_eq!(parse_name("acme-prod-", "acme-prod-x.weird"), None);
    }
}
