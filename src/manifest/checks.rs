//! Checks that need the whole manifest: names that must refer to a service, start-order cycles,
//! endpoints written twice, host ports published twice on one engine, paths that leave the
//! manifest's directory. Run after `decode`; a manifest with any problem touches no host.

use crate::manifest::diagnostics::Problem;
use crate::manifest::values::PortMapping;
use crate::manifest::{Located, Manifest};
use std::collections::{BTreeMap, HashMap};

pub fn validate(m: &Manifest) -> Vec<Problem> {
    let mut p = Vec::new();
    references(m, &mut p);
    cycles(m, &mut p);
    endpoints(m, &mut p);
    ports(m, &mut p);
    paths(m, &mut p);
    orders(m, &mut p);
    swarm_rules(m, &mut p);
    p
}

/// What a Swarm environment cannot do (docs/swarm.md): Swarm schedules the tasks itself, so there
/// is no host to go first (`canary`) and no old container fleetpin keeps serving (`drain`).
fn swarm_rules(m: &Manifest, out: &mut Vec<Problem>) {
    for (ename, e) in &m.environments {
        if !e.is_swarm() {
            continue;
        }
        if e.rollout.canary > 0 {
            out.push(
                Problem::new(
                    e.rollout.span,
                    format!("`rollout.canary` of environment `{ename}`: a Swarm environment has no hosts to go first; Swarm rolls the tasks itself"),
                )
                .with_help("remove `canary`; `max_parallel` sets how many tasks are updated at once"),
            );
        }
        for name in e.versions.keys() {
            let Some(s) = m.services.get(name) else {
                continue;
            };
            if s.update.drain.is_some() {
                out.push(
                    Problem::new(
                        s.update.span,
                        format!("`update.drain` of service `{name}`: it runs in Swarm environment `{ename}`, where Swarm stops the old task itself (its stop grace period is `stop_timeout`)"),
                    )
                    .with_help("remove `drain`, or run this service on plain hosts only"),
                );
            }
        }
    }
}

/// What the service's settings look like in `env`, after its overrides: (publishes a host port,
/// has a writable mount).
fn exposure(m: &Manifest, env: &str, svc: &str) -> (bool, bool) {
    let s = &m.services[svc];
    let o = m.environments[env].overrides.get(svc);
    let ports = o.and_then(|o| o.ports.as_ref()).unwrap_or(&s.ports);
    let volumes = o.and_then(|o| o.volumes.as_ref()).unwrap_or(&s.volumes);
    (
        !ports.is_empty(),
        volumes.iter().any(|v| !v.value.read_only),
    )
}

/// The order a service is replaced with in `env`: as written, else start-first when it publishes
/// no host port and has no writable mount (two containers can share neither), else stop-first.
pub fn order_in(m: &Manifest, env: &str, svc: &str) -> crate::manifest::Order {
    use crate::manifest::Order;
    if let Some(o) = &m.services[svc].update.order {
        return o.value;
    }
    match exposure(m, env, svc) {
        (false, false) => Order::StartFirst,
        _ => Order::StopFirst,
    }
}

/// The services whose manifest says start-first, with where it says so.
fn start_first(
    m: &Manifest,
) -> impl Iterator<Item = (&String, &crate::manifest::Located<crate::manifest::Order>)> {
    m.services.iter().filter_map(|(name, s)| {
        s.update
            .order
            .as_ref()
            .filter(|o| o.value == crate::manifest::Order::StartFirst)
            .map(|o| (name, o))
    })
}

/// start-first on a service that publishes a host port cannot work: two containers cannot bind
/// one port. Checked per environment, after its overrides.
fn orders(m: &Manifest, out: &mut Vec<Problem>) {
    for (name, order) in start_first(m) {
        for (ename, e) in &m.environments {
            if !e.versions.contains_key(name) {
                continue;
            }
            // Swarm's routing mesh lets two tasks serve one published port; host mode cannot.
            if let Some(sw) = &e.swarm {
                if sw.publish == crate::manifest::Publish::Ingress || !exposure(m, ename, name).0 {
                    continue;
                }
                out.push(Problem::new(
                    order.span,
                    format!(
                        "service `{name}` is start-first, but Swarm environment `{ename}` publishes its ports in host mode: two tasks cannot bind one port of a node at once; use stop-first, or `publish: ingress`"
                    ),
                ));
                continue;
            }
            if exposure(m, ename, name).0 {
                out.push(Problem::new(
                    order.span,
                    format!(
                        "service `{name}` is start-first, but in environment `{ename}` it publishes a host port: two containers cannot publish one port at once; use stop-first, or put a reverse proxy in front (docs/zero-downtime.md)"
                    ),
                ));
            }
        }
    }
}

/// What is allowed but deserves a second look; `validate` prints these without failing.
pub fn warnings(m: &Manifest) -> Vec<Problem> {
    let mut out = Vec::new();
    for (name, order) in start_first(m) {
        for (ename, e) in &m.environments {
            if e.versions.contains_key(name) && exposure(m, ename, name).1 {
                out.push(Problem::new(
                    order.span,
                    format!(
                        "service `{name}` is start-first with a writable mount in environment `{ename}`: for a moment two containers write the same data; make sure the application allows it (two databases must never share one data directory)"
                    ),
                ));
                break;
            }
        }
    }
    // Swarm starts a service's tasks wherever it schedules them, in no order fleetpin controls.
    for (name, s) in &m.services {
        let Some(first) = s.depends_on.first() else {
            continue;
        };
        if let Some((ename, _)) = m
            .environments
            .iter()
            .find(|(_, e)| e.is_swarm() && e.versions.contains_key(name))
        {
            out.push(Problem::new(
                first.span,
                format!(
                    "`depends_on` of service `{name}` is ignored in Swarm environment `{ename}`: Swarm starts services in no particular order; make the service retry its dependencies"
                ),
            ));
        }
    }
    out
}

/// `budget` bounds the suggestions: each costs a string distance per service, enough for the
/// first unknown names, never quadratic on a hostile file with thousands of them.
fn unknown_service(
    budget: &mut usize,
    m: &Manifest,
    name: &Located<String>,
    context: &str,
) -> Problem {
    let names: Vec<&str> = m.services.keys().map(|s| s.as_str()).collect();
    // A short list: a manifest of a thousand services must not print a thousand names per error.
    let shown = if names.len() > 8 {
        format!("{}, … and {} more", names[..8].join(", "), names.len() - 8)
    } else {
        names.join(", ")
    };
    let mut p = Problem::new(
        name.span,
        format!(
            "{context} names `{}`, which is not a service of this manifest (services: {shown})",
            name.value,
        ),
    );
    let suggest = *budget > 0;
    *budget = budget.saturating_sub(1);
    let len = name.value.chars().count();
    if suggest
        && let Some(best) = names
            .iter()
            .filter(|n| n.chars().count().abs_diff(len) <= 2)
            .map(|n| (strsim::damerau_levenshtein(&name.value, n), n))
            .filter(|(d, _)| *d <= 2)
            .min_by_key(|(d, _)| *d)
    {
        p.help = Some(format!("did you mean `{}`?", best.1));
    }
    p
}

/// Written in `services`, even if that definition has problems of its own.
fn known(m: &Manifest, name: &str) -> bool {
    m.services.contains_key(name) || m.written_services.contains(name)
}

fn references(m: &Manifest, out: &mut Vec<Problem>) {
    let mut budget = 50;
    // When `services` itself is broken, every reference would look unknown: say it once, there.
    if m.services.is_empty() && m.written_services.is_empty() {
        return;
    }
    for (sname, s) in &m.services {
        for d in &s.depends_on {
            if !known(m, &d.value) {
                out.push(unknown_service(
                    &mut budget,
                    m,
                    d,
                    &format!("`depends_on` of service `{sname}`"),
                ));
            } else if &d.value == sname {
                out.push(Problem::new(
                    d.span,
                    format!("service `{sname}` depends on itself"),
                ));
            }
        }
    }
    for (ename, e) in &m.environments {
        for (svc, pin) in &e.versions {
            if !known(m, svc) {
                let named = Located {
                    value: svc.clone(),
                    span: e.version_keys.get(svc).copied().unwrap_or(pin.span),
                };
                out.push(unknown_service(
                    &mut budget,
                    m,
                    &named,
                    &format!("`versions` of environment `{ename}`"),
                ));
            }
        }
        for (svc, ov) in &e.overrides {
            if !known(m, svc) {
                let named = Located {
                    value: svc.clone(),
                    span: ov.span,
                };
                out.push(unknown_service(
                    &mut budget,
                    m,
                    &named,
                    &format!("`overrides` of environment `{ename}`"),
                ));
            }
        }
        for (hname, h) in &e.hosts {
            for s in h.services.iter().flatten() {
                if !known(m, &s.value) {
                    out.push(unknown_service(
                        &mut budget,
                        m,
                        s,
                        &format!("`services` of host `{hname}` in environment `{ename}`"),
                    ));
                }
            }
        }
    }
}

fn cycles(m: &Manifest, out: &mut Vec<Problem>) {
    // Iterative three-colour DFS: report each cycle once, at the edge that closes it.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let names: Vec<&String> = m.services.keys().collect();
    let index: HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let mut mark = vec![Mark::New; names.len()];
    for start in 0..names.len() {
        if mark[start] != Mark::New {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        mark[start] = Mark::Active;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let deps = &m.services[node].depends_on;
            if *next < deps.len() {
                let edge = &deps[*next];
                *next += 1;
                let Some(&to) = index.get(edge.value.as_str()) else {
                    continue;
                };
                if to == node {
                    continue; // reported as "depends on itself"
                }
                match mark[to] {
                    Mark::New => {
                        mark[to] = Mark::Active;
                        stack.push((to, 0));
                    }
                    Mark::Active => {
                        let pos = stack.iter().position(|(n, _)| *n == to).unwrap_or(0);
                        let mut path: Vec<&str> = stack[pos..]
                            .iter()
                            .map(|(n, _)| names[*n].as_str())
                            .collect();
                        path.push(names[to]);
                        out.push(Problem::new(
                            edge.span,
                            format!("`depends_on` makes a cycle: {}", path.join(" -> ")),
                        ).with_help("services on one host start in depends_on order, so the order must have a beginning; remove one of these dependencies"));
                    }
                    Mark::Done => {}
                }
            } else {
                mark[node] = Mark::Done;
                stack.pop();
            }
        }
    }
}

fn endpoints(m: &Manifest, out: &mut Vec<Problem>) {
    for (ename, e) in &m.environments {
        let mut seen: HashMap<String, &str> = HashMap::new();
        for (hname, h) in &e.hosts {
            let key = h.endpoint.value.key();
            if let Some(first) = seen.get(&key) {
                out.push(Problem::new(
                    h.endpoint.span,
                    format!("host `{hname}` of environment `{ename}` has the same endpoint as host `{first}`; one engine would be deployed twice"),
                ));
            } else {
                seen.insert(key, hname);
            }
        }
    }
}

/// Host ports are checked per engine, across environments: two environments may share a host,
/// and then their containers compete for the same ports.
fn ports(m: &Manifest, out: &mut Vec<Problem>) {
    type Seen<'a> = Vec<(String, &'a PortMapping)>;
    // Per engine, per (host port, protocol): only mappings in one bucket can collide.
    let mut by_engine: BTreeMap<String, HashMap<(u16, crate::manifest::values::Protocol), Seen>> =
        BTreeMap::new();
    for (ename, e) in &m.environments {
        let mut seen_in_env = std::collections::BTreeSet::new();
        for (hname, h) in &e.hosts {
            let engine = h.endpoint.value.key();
            // A duplicate endpoint is reported as such; its ports would only echo it.
            if !seen_in_env.insert(engine.clone()) {
                continue;
            }
            for svc in m.services_on(ename, hname) {
                let s = &m.services[svc];
                let ports = e
                    .overrides
                    .get(svc)
                    .and_then(|o| o.ports.as_ref())
                    .unwrap_or(&s.ports);
                let who = format!("service `{svc}` of environment `{ename}` on host `{hname}`");
                let buckets = by_engine.entry(engine.clone()).or_default();
                for p in ports {
                    let bucket = buckets.entry((p.value.host, p.value.protocol)).or_default();
                    if let Some((other, _)) = bucket.iter().find(|(_, q)| p.value.collides_with(q))
                    {
                        let by = if *other == who {
                            format!("twice by {who}")
                        } else {
                            format!("by {who} and by {other}")
                        };
                        out.push(Problem::new(
                            p.span,
                            format!(
                                "host port {} is published twice on one engine: {by}",
                                p.value.host
                            ),
                        ));
                        continue;
                    }
                    bucket.push((who.clone(), &p.value));
                }
            }
        }
    }
}

/// Relative paths stay inside the manifest's directory; leaving it must be written as an absolute
/// path, so that a manifest from elsewhere cannot quietly read `../../.ssh/id_rsa` into a container.
fn paths(m: &Manifest, out: &mut Vec<Problem>) {
    let check = |l: &Located<String>, what: String, out: &mut Vec<Problem>| {
        let path = std::path::Path::new(&l.value);
        // Lexically: `secrets/../x.env` stays inside, `../x.env` leaves.
        let mut depth: i32 = 0;
        let mut leaves = false;
        for c in path.components() {
            match c {
                std::path::Component::ParentDir => {
                    depth -= 1;
                    leaves |= depth < 0;
                }
                std::path::Component::Normal(_) => depth += 1,
                _ => {}
            }
        }
        if path.is_relative() && leaves {
            out.push(
                Problem::new(l.span, format!("{what} `{}` leaves the manifest's directory", l.value))
                    .with_help("write an absolute path if a file outside the manifest's directory is really meant"),
            );
        }
    };
    for (sname, s) in &m.services {
        if let Some(f) = &s.env_file {
            check(f, format!("`env_file` of service `{sname}`"), out);
        }
        for (var, r) in &s.secret_env {
            let file = Located {
                value: r.value.file.clone(),
                span: r.span,
            };
            check(
                &file,
                format!("the SOPS file of `{var}` in service `{sname}`"),
                out,
            );
        }
    }
    for (ename, e) in &m.environments {
        for (sname, o) in &e.overrides {
            for (var, r) in &o.secret_env {
                let file = Located {
                    value: r.value.file.clone(),
                    span: r.span,
                };
                check(
                    &file,
                    format!(
                        "the SOPS file of `{var}` in the override of `{sname}` in environment `{ename}`"
                    ),
                    out,
                );
            }
        }
    }
    for (ename, e) in &m.environments {
        for (hname, h) in &e.hosts {
            if let Some(t) = &h.tls {
                for (n, l) in [("ca", &t.ca), ("cert", &t.cert), ("key", &t.key)] {
                    check(
                        l,
                        format!("`tls.{n}` of host `{hname}` in environment `{ename}`"),
                        out,
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Order;

    fn manifest(services: &str, overrides: &str) -> Manifest {
        let text = format!(
            "platform: acme\nservices:\n{services}environments:\n  recette:\n    hosts: {{r: {{endpoint: \"unix:///a.sock\"}}}}\n    versions: {{api: \"1\", db: \"1\"}}\n  prod:\n    hosts: {{p: {{endpoint: \"unix:///b.sock\"}}}}\n    versions: {{api: \"1\", db: \"1\"}}\n{overrides}"
        );
        let (m, problems) =
            crate::manifest::decode::decode(&crate::manifest::yaml::parse(&text).unwrap());
        assert!(problems.is_empty(), "{problems:?}");
        m.unwrap()
    }

    #[test]
    fn the_default_order_follows_ports_and_writable_mounts_per_environment() {
        let m = manifest(
            "  api: {image: r/api}\n  db: {image: r/db, volumes: [\"data:/var/lib/db\"]}\n",
            "    overrides:\n      api: {ports: [\"8080:8080\"]}\n",
        );
        assert_eq!(order_in(&m, "recette", "api"), Order::StartFirst);
        assert_eq!(
            order_in(&m, "prod", "api"),
            Order::StopFirst,
            "it publishes a port in prod"
        );
        assert_eq!(
            order_in(&m, "recette", "db"),
            Order::StopFirst,
            "a writable mount"
        );
        let ro = manifest(
            "  api: {image: r/api, volumes: [\"conf:/etc/app:ro\"]}\n  db: {image: r/db}\n",
            "",
        );
        assert_eq!(
            order_in(&ro, "recette", "api"),
            Order::StartFirst,
            "read-only is fine"
        );
    }

    #[test]
    fn start_first_written_with_a_writable_mount_is_a_warning_not_an_error() {
        let m = manifest(
            "  api: {image: r/api}\n  db: {image: r/db, volumes: [\"data:/var/lib/db\"], update: {order: start-first}}\n",
            "",
        );
        assert!(validate(&m).is_empty());
        let w = warnings(&m);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].message
                .contains("two databases must never share one data directory")
        );
        assert_eq!(
            order_in(&m, "recette", "db"),
            Order::StartFirst,
            "as written"
        );
    }
}
