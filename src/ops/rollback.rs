//! What a rollback leaves to write down once the hosts are done: the pins to move (to exactly the
//! `io.fleetpin.version` the hosts now run) and what the operator should know — hosts that did
//! not get there, and, for a rollback of some hosts only, the hosts that now differ from the pin.

use crate::host::report::{ActionStatus, HostReport};
use crate::manifest::Environment;
use std::collections::BTreeMap;

/// Pin moves (service, from, to) and notes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub moves: Vec<(String, String, String)>,
    pub notes: Vec<String>,
}

/// `targets`: service → the agreed version; `hosts`: every selected host with the services that
/// run there; `subset`: only some of the environment's hosts were selected.
pub fn outcome(
    env_name: &str,
    env: &Environment,
    targets: &BTreeMap<String, String>,
    reports: &[HostReport],
    hosts: &[(String, Vec<String>)],
    subset: bool,
) -> Outcome {
    // What each host now runs, per service it rolled back.
    let mut running: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
    for r in reports {
        for a in r.actions.iter().filter(|a| a.status == ActionStatus::Done) {
            if let Some(v) = &a.to {
                running
                    .entry(a.service.as_str())
                    .or_default()
                    .push((r.host.as_str(), v.as_str()));
            }
        }
    }
    let mut out = Outcome::default();
    for (service, on) in &running {
        let now = on[0].1;
        let pinned = env.versions.get(*service).map(|p| p.value.to_string());
        if pinned.as_deref() != Some(now) {
            out.moves.push((
                service.to_string(),
                pinned.unwrap_or_else(|| "-".into()),
                now.to_string(),
            ));
        }
    }
    if subset {
        for (service, pinned, now) in &out.moves {
            let on: Vec<&str> = running[service.as_str()].iter().map(|(h, _)| *h).collect();
            out.notes.push(format!(
                "{} now run{} {service} {now} while {env_name} pins {pinned}: the pin is the environment's, so it was not changed; `fleetpin apply {env_name}` would put them back",
                on.join(", "),
                if on.len() == 1 { "s" } else { "" },
            ));
        }
        return out;
    }
    // Hosts that did not get there (failed, skipped, unreachable) differ from the new pin.
    for (service, target) in targets {
        let Some(on) = running.get(service.as_str()) else {
            continue;
        };
        let behind: Vec<&str> = hosts
            .iter()
            .filter(|(_, services)| services.contains(service))
            .map(|(h, _)| h.as_str())
            .filter(|h| !on.iter().any(|(host, v)| host == h && v == target))
            .collect();
        if !behind.is_empty() {
            out.notes.push(format!(
                "{} did not go back to {service} {target}; `fleetpin apply {env_name}` brings them to the pin",
                behind.join(", ")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::report::{Action, HostStatus};
    use crate::plan::ChangeKind;

    fn env() -> Environment {
        let m = crate::manifest::parse_str(
            "platform: acme\nservices:\n  web: {image: r/web}\nenvironments:\n  prod:\n    hosts:\n      h1: {endpoint: \"unix:///a.sock\"}\n      h2: {endpoint: \"unix:///b.sock\"}\n    versions: {web: \"2.0.0\"}\n",
        )
        .unwrap();
        m.environments["prod"].clone()
    }

    fn report(host: &str, to: Option<&str>) -> HostReport {
        let mut r = HostReport::new(host, "x", HostStatus::Converged);
        if let Some(v) = to {
            r.actions.push(Action::new(
                "web",
                ChangeKind::Downgrade,
                Some("2.0.0".into()),
                Some(v.into()),
            ));
        } else {
            r.status = HostStatus::Failed;
        }
        r
    }

    #[test]
    fn the_pin_moves_to_what_runs_and_hosts_left_behind_are_named() {
        let targets = BTreeMap::from([("web".to_string(), "1.1.0".to_string())]);
        let hosts = vec![
            ("h1".to_string(), vec!["web".to_string()]),
            ("h2".to_string(), vec!["web".to_string()]),
        ];
        let o = outcome(
            "prod",
            &env(),
            &targets,
            &[report("h1", Some("1.1.0")), report("h2", None)],
            &hosts,
            false,
        );
        assert_eq!(
            o.moves,
            vec![("web".into(), "2.0.0".into(), "1.1.0".into())]
        );
        assert_eq!(o.notes.len(), 1);
        assert!(
            o.notes[0].starts_with("h2 did not go back to web 1.1.0"),
            "{:?}",
            o.notes
        );
        let o = outcome(
            "prod",
            &env(),
            &targets,
            &[report("h2", Some("1.1.0"))],
            &hosts[1..],
            true,
        );
        assert!(
            o.notes[0].starts_with("h2 now runs web 1.1.0 while prod pins 2.0.0"),
            "{:?}",
            o.notes
        );
    }
}
