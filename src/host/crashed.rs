//! Which containers cannot be trusted to serve because their engine crashed under them.
//!
//! Docker 20.10, killed and started again without live-restore, leaves a container that was
//! running then `exited` with its network endpoint still recorded (a clean stop clears it). Such
//! a container started again in place — by the engine's own restart policy or by a `restart` —
//! can run and pass its health check while neither its published port nor its address answers;
//! a fresh container of the same spec does answer. So the planner replaces these through the one
//! swap instead of starting them in place, and never relaunches a kept one that stopped so
//! (`HostView::untrusted`). Read here, from the engine, so that `plan`, `apply` (under the lock)
//! and `audit` see the same; the planner stays pure.
//!
//! Two signs, both what the engine itself reports:
//! - stopped, yet its record still holds an address on a network: it stopped under a crash;
//! - running, and on one of the service's networks by its own record, yet that network does not
//!   list it: its endpoint did not come back.

use crate::engine::{Engine, RunState};
use crate::manifest::resolve::ResolvedService;
use crate::plan::view::HostView;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Why a stopped container is not started again in place (also the plan's reason).
pub const STOPPED_UNDER_A_CRASH: &str =
    "stopped under an engine crash (its network endpoint was never released): created afresh";

/// Whether a stopped container's record still holds an address: it stopped under a crash.
pub fn stopped_under_a_crash(endpoints: &BTreeMap<String, String>) -> bool {
    endpoints.values().any(|held| !held.is_empty())
}

/// The containers of `view` that must not serve as they are, with why: the current one of each
/// desired service, and the kept ones a relaunch could start (their spec hash is the one
/// wanted). One inspect per stopped candidate and one network inspect per network of the
/// services; a container or network that cannot be read is left as it is (judged next time).
pub async fn untrusted<E: Engine>(
    engine: &E,
    desired: &[Arc<ResolvedService>],
    view: &HostView,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stopped = Vec::new();
    let mut running = Vec::new();
    for r in desired {
        if let Some(cur) = view.current.get(&r.service) {
            if cur.state == RunState::Running {
                running.push((r, cur));
            } else {
                stopped.push(cur);
            }
        }
        let hashes = [r.spec_hash.as_str(), r.legacy_hash.as_str()];
        stopped.extend(view.kept(&r.service).into_iter().filter(|k| {
            k.labels
                .get(crate::plan::labels::SPEC_HASH)
                .is_some_and(|h| hashes.contains(&h.as_str()))
        }));
    }
    for c in stopped {
        if let Ok(d) = engine.inspect_container(&c.id).await
            && d.state != RunState::Running
            && stopped_under_a_crash(&d.endpoints)
        {
            out.insert(c.id.clone(), STOPPED_UNDER_A_CRASH.to_string());
        }
    }
    // One look at each network the running services should be on.
    let wanted: BTreeSet<&str> = running
        .iter()
        .flat_map(|(r, _)| r.networks.iter().map(String::as_str))
        .collect();
    let mut listed: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for n in wanted {
        // Only a local bridge network lists its containers' endpoints here.
        if let Ok(Some(info)) = engine.network(n).await
            && info.driver == "bridge"
        {
            listed.insert(n, info.containers.into_iter().collect());
        }
    }
    for (r, cur) in running {
        let missing = r.networks.iter().find(|n| {
            listed
                .get(n.as_str())
                .is_some_and(|ids| !ids.contains(&cur.id))
        });
        // Its own record must say it is on that network (then the network's word is the
        // engine's own disagreement, not a container attached elsewhere by hand).
        let Some(n) = missing else { continue };
        let claims = engine
            .inspect_container(&cur.id)
            .await
            .is_ok_and(|d| d.state == RunState::Running && d.networks.contains_key(n.as_str()));
        if claims {
            out.insert(
                cur.id.clone(),
                format!(
                    "runs, but network {n} does not list it (its endpoint did not come back after an engine restart): created afresh"
                ),
            );
        }
    }
    out
}
