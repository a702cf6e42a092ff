//! Moving an environment from plain hosts to Swarm on the same machines, as a plan (pure): what
//! each host the environment ran on before gives up — fleetpin's plain containers of that
//! environment and its local networks that carry an overlay's name — and what would stop the
//! move: anything of those names fleetpin did not create, which it never removes.
//!
//! The move is one apply and all-or-nothing: the services share their networks, and a local
//! network must be gone before the overlay of its name can serve, so every plain container of
//! the environment steps aside before the first Swarm service is created, and all of them serve
//! again if any service fails.

use crate::observed::NetworkInfo;
use crate::plan::labels;
use crate::plan::view::HostView;
use serde::Serialize;
use std::collections::BTreeMap;

/// What one host the environment ran on before gives up.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Retirement {
    pub host: String,
    pub endpoint: String,
    /// The containers that serve there: stopped and kept aside until the Swarm services
    /// converged, then removed; started again if a service fails.
    pub containers: Vec<Retiree>,
    /// fleetpin's kept containers there (previous versions, stopped): removed once the move
    /// succeeded.
    pub kept: Vec<String>,
    #[serde(skip)]
    pub kept_ids: Vec<String>,
    /// fleetpin's local networks with an overlay's name: removed (the overlay takes the name),
    /// made again if the move fails.
    pub networks: Vec<String>,
}

/// One container that serves on an old host.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Retiree {
    pub service: String,
    pub name: String,
    pub id: String,
    pub version: String,
}

/// What stops a move before anything changes, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoveRefusal {
    #[error(
        "{host} has a network {name} ({driver}) that fleetpin did not create, with the name of {environment}'s overlay: fleetpin never removes it; rename or remove it on {host} (`docker network rm {name}`), then apply again"
    )]
    ForeignNetwork {
        host: String,
        name: String,
        driver: String,
        environment: String,
    },
    #[error(
        "{host} has a container {name} that fleetpin did not create, with one of {environment}'s names: fleetpin never removes it; rename or remove it on {host}, then apply again"
    )]
    ForeignContainer {
        host: String,
        name: String,
        environment: String,
    },
    #[error(
        "on {host}, the network {network} is used by container {container}, which fleetpin did not create: detach it (`docker network disconnect {network} {container}`), then apply again"
    )]
    NetworkInUse {
        host: String,
        network: String,
        container: String,
    },
}

/// What `host` gives up when its environment moves to Swarm: `view`, its containers of the
/// environment; `networks`, each overlay name with the local network of that name, if any.
pub fn retirement(
    platform: &str,
    environment: &str,
    host: &str,
    endpoint: &str,
    view: &HostView,
    networks: &[(String, Option<NetworkInfo>)],
) -> Result<Retirement, Vec<MoveRefusal>> {
    let mut refusals: Vec<MoveRefusal> = view
        .foreign
        .keys()
        .map(|name| MoveRefusal::ForeignContainer {
            host: host.into(),
            name: name.clone(),
            environment: environment.into(),
        })
        .collect();
    let ours_labels = labels::for_resource(platform, environment);
    let ours = |l: &BTreeMap<String, String>| {
        ours_labels
            .iter()
            .all(|(k, v)| l.get(k).map(String::as_str) == Some(v.as_str()))
    };
    let containers: Vec<Retiree> = view
        .current
        .iter()
        .map(|(service, c)| Retiree {
            service: service.clone(),
            name: c.name.clone(),
            id: c.id.clone(),
            version: c.labels.get(labels::VERSION).cloned().unwrap_or_default(),
        })
        .collect();
    let mut kept: Vec<(String, String)> = view
        .retained
        .values()
        .chain(view.rolled_back.values())
        .chain(view.failed.values())
        .chain(view.broken.values())
        .chain(view.unconfirmed.values())
        .flatten()
        .chain(&view.pending)
        .map(|c| (c.name.clone(), c.id.clone()))
        .collect();
    kept.sort();
    let environment_ids: Vec<&str> = view
        .current
        .values()
        .chain(view.retained.values().flatten())
        .chain(view.rolled_back.values().flatten())
        .chain(view.failed.values().flatten())
        .chain(view.broken.values().flatten())
        .chain(view.unconfirmed.values().flatten())
        .chain(&view.pending)
        .map(|c| c.id.as_str())
        .collect();
    let mut remove = Vec::new();
    for (name, info) in networks {
        let Some(n) = info else { continue };
        // The overlay itself, as a manager shows it once created: nothing to retire.
        if n.driver == "overlay" && ours(&n.labels) {
            continue;
        }
        if n.driver != "bridge" || !ours(&n.labels) {
            refusals.push(MoveRefusal::ForeignNetwork {
                host: host.into(),
                name: name.clone(),
                driver: n.driver.clone(),
                environment: environment.into(),
            });
            continue;
        }
        for c in &n.containers {
            if !environment_ids.iter().any(|id| id == c) {
                refusals.push(MoveRefusal::NetworkInUse {
                    host: host.into(),
                    network: name.clone(),
                    container: c.clone(),
                });
            }
        }
        remove.push(name.clone());
    }
    if !refusals.is_empty() {
        return Err(refusals);
    }
    Ok(Retirement {
        host: host.into(),
        endpoint: endpoint.into(),
        containers,
        kept_ids: kept.iter().map(|(_, id)| id.clone()).collect(),
        kept: kept.into_iter().map(|(name, _)| name).collect(),
        networks: remove,
    })
}

impl Retirement {
    /// Nothing to give up here.
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty() && self.kept.is_empty() && self.networks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::view::{classify, fixture};

    fn running(name: &str, service: &str, version: &str) -> crate::observed::ContainerSummary {
        let mut c = fixture(&format!("id-{name}"), name, service, Some(version), 10);
        c.state = crate::observed::RunState::Running;
        c
    }

    fn network(driver: &str, labels: BTreeMap<String, String>, on: &[&str]) -> NetworkInfo {
        NetworkInfo {
            name: "acme-prod-default".into(),
            driver: driver.into(),
            labels,
            containers: on.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_host_gives_up_its_containers_kept_ones_and_its_own_networks() {
        let list = [
            running("acme-prod-web", "web", "1.0.0"),
            fixture("id-old", "acme-prod-web.prev-1-a", "web", Some("0.9.0"), 5),
        ];
        let view = classify("acme", "prod", &list);
        let nets = [(
            "acme-prod-default".to_string(),
            Some(network(
                "bridge",
                labels::for_resource("acme", "prod"),
                &["id-acme-prod-web"],
            )),
        )];
        let r = retirement("acme", "prod", "h1", "tcp://h1:2375", &view, &nets).unwrap();
        assert_eq!(r.containers.len(), 1);
        assert_eq!(r.containers[0].id, "id-acme-prod-web");
        assert_eq!(r.containers[0].version, "1.0.0");
        assert_eq!(r.kept, ["acme-prod-web.prev-1-a"]);
        assert_eq!(r.networks, ["acme-prod-default"]);
    }

    #[test]
    fn what_fleetpin_did_not_create_is_refused_and_named() {
        let view = classify("acme", "prod", &[]);
        let foreign = [(
            "acme-prod-default".to_string(),
            Some(network("bridge", BTreeMap::new(), &[])),
        )];
        let e = retirement("acme", "prod", "h1", "tcp://h1:2375", &view, &foreign).unwrap_err();
        assert_eq!(
            e[0].to_string(),
            "h1 has a network acme-prod-default (bridge) that fleetpin did not create, with the name of prod's overlay: fleetpin never removes it; rename or remove it on h1 (`docker network rm acme-prod-default`), then apply again"
        );
        // Ours, but a stranger is attached to it.
        let used = [(
            "acme-prod-default".to_string(),
            Some(network(
                "bridge",
                labels::for_resource("acme", "prod"),
                &["stranger"],
            )),
        )];
        let e = retirement("acme", "prod", "h1", "tcp://h1:2375", &view, &used).unwrap_err();
        assert!(
            matches!(&e[0], MoveRefusal::NetworkInUse { container, .. } if container == "stranger")
        );
        // The overlay itself is not retired.
        let overlay = [(
            "acme-prod-default".to_string(),
            Some(network(
                "overlay",
                labels::for_resource("acme", "prod"),
                &[],
            )),
        )];
        let r = retirement("acme", "prod", "h1", "tcp://h1:2375", &view, &overlay).unwrap();
        assert!(r.is_empty());
    }
}
