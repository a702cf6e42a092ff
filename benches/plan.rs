//! The pure planning path at fleet scale: parse + check a generated manifest of 2,000 services on
//! 200 hosts, then for every host resolve the desired state, classify its observed containers and
//! plan the changes — everything `fleetpin plan` does except talking to Docker.
//!
//! Shape (see docs/benchmarks.md): 200 hosts in 20 groups of 10; each group runs its own 100
//! services (`services:` lists), so each service runs on 10 hosts: 20,000 (host, service) pairs,
//! ~60,000 observed containers. Every host running every service would be 400,000 pairs, which no
//! plain-Docker fleet looks like (and every host would publish 2,000 ports).
//!
//! The observed state is made from the desired one, so the mix is realistic: ~91% unchanged, 5%
//! upgrades, 2% missing (create), 2% stopped (restart), two retained `.prev-` containers per
//! service, one orphan per host.
//!
//! Run: `cargo bench --bench plan` (target: the whole `parse_resolve_plan` under 150 ms).

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use fleetpin::engine::{ContainerSummary, Health, RunState};
use fleetpin::manifest::resolve::{ResolvedService, resolve_hosts};
use fleetpin::manifest::{Manifest, parse_str};
use fleetpin::plan::labels::{self, DeployStamp};
use fleetpin::plan::view::classify_owned;
use fleetpin::plan::{ChangeKind, classify, plan_host};
use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Duration;

const SERVICES: usize = 2_000;
const HOSTS: usize = 200;
const GROUP_HOSTS: usize = 10; // hosts per group
const GROUP_SERVICES: usize = SERVICES / (HOSTS / GROUP_HOSTS); // 100 services per group
const PLATFORM: &str = "acme";
const ENV: &str = "prod";

fn service(i: usize) -> String {
    format!("svc{i:04}")
}

fn host(h: usize) -> String {
    format!("host{h:03}")
}

fn group_services(h: usize) -> std::ops::Range<usize> {
    let g = h / GROUP_HOSTS;
    g * GROUP_SERVICES..(g + 1) * GROUP_SERVICES
}

/// The manifest text: every service with an image, a port, a volume, env; a tenth of them with
/// their own healthcheck and a dependency on their group's first service.
fn manifest_text() -> String {
    let mut t = String::with_capacity(1 << 20);
    t.push_str("platform: acme\nretain: 3\nservices:\n");
    for i in 0..SERVICES {
        let s = service(i);
        let _ = writeln!(t, "  {s}:");
        let _ = writeln!(t, "    image: registry.acme.internal:5000/acme/{s}");
        let _ = writeln!(t, "    ports: [\"{}:8080\"]", 10_000 + i);
        let _ = writeln!(t, "    volumes: [\"{s}-logs:/var/log/app\"]");
        let _ = writeln!(
            t,
            "    env: {{JAVA_OPTS: \"-Xmx256m\", SERVICE_NAME: \"{s}\"}}"
        );
        if i % 10 == 5 {
            t.push_str("    healthcheck: {test: [\"CMD\", \"wget\", \"-q\", \"-O-\", \"http://127.0.0.1:8080/health\"], interval: 2s, retries: 3}\n");
            let first = service(i / GROUP_SERVICES * GROUP_SERVICES);
            let _ = writeln!(t, "    depends_on: [{first}]");
        }
    }
    t.push_str("environments:\n  prod:\n    max_parallel: 10\n    hosts:\n");
    for h in 0..HOSTS {
        let list: Vec<String> = group_services(h).map(service).collect();
        let _ = writeln!(
            t,
            "      {}: {{endpoint: \"ssh://deploy@{}.acme.internal\", services: [{}]}}",
            host(h),
            host(h),
            list.join(", ")
        );
    }
    t.push_str("    versions:\n");
    for i in 0..SERVICES {
        let _ = writeln!(t, "      {}: \"2.{}.{}\"", service(i), i % 7, i % 13);
    }
    t
}

fn summary(
    r: &ResolvedService,
    name: String,
    id: String,
    version: &str,
    state: RunState,
) -> ContainerSummary {
    let stamp = DeployStamp {
        commit: "3f1c2a9d0b17e8a6c5d4b3a291807f6e5d4c3b2a".into(),
        deployed_at: "2026-11-23T09:12:00Z".into(),
        deployed_by: "ops@acme.example".into(),
    };
    let mut l = labels::for_service(r, &stamp);
    if version != r.pin.to_string() {
        l.insert(labels::VERSION.into(), version.into());
        l.insert(labels::SPEC_HASH.into(), format!("old-{id}"));
    }
    l.insert(
        "org.opencontainers.image.version".into(),
        version.to_string(),
    );
    ContainerSummary {
        id: format!("{id:0>64}"),
        name,
        image: format!("{}:{version}", r.repository),
        image_id: format!("sha256:{id:0>64}"),
        state,
        health: if state == RunState::Running {
            Health::Healthy
        } else {
            Health::None
        },
        labels: l,
        created: 1_795_400_000,
    }
}

/// What one host shows in its list call, derived from what it should run.
fn observed_for(desired: &[std::sync::Arc<ResolvedService>], h: usize) -> Vec<ContainerSummary> {
    let mut out = Vec::new();
    for (k, r) in desired.iter().enumerate() {
        let i = h * 1000 + k;
        let pin = r.pin.to_string();
        // two retained previous versions, newest first by name
        for (n, old) in ["1.9.0", "1.8.0"].iter().enumerate() {
            out.push(summary(
                r,
                format!(
                    "{}{}{}",
                    r.container_name,
                    labels::PREV,
                    labels::suffix(1_795_400_000_000 - n as u128, &format!("{i:08}"))
                ),
                format!("p{n}{i}"),
                old,
                RunState::Exited,
            ));
        }
        match k % 100 {
            0 | 50 => {} // missing: create
            2 | 52 => out.push(summary(
                r,
                r.container_name.clone(),
                format!("c{i}"),
                &pin,
                RunState::Exited,
            )), // stopped: restart
            1 | 21 | 41 | 61 | 81 => out.push(summary(
                r,
                r.container_name.clone(),
                format!("c{i}"),
                "1.9.0",
                RunState::Running,
            )), // upgrade
            _ => out.push(summary(
                r,
                r.container_name.clone(),
                format!("c{i}"),
                &pin,
                RunState::Running,
            )),
        }
    }
    // one orphan: a service of another group, still running here
    if let Some(r) = desired.first() {
        let mut o = summary(
            r,
            format!("{PLATFORM}-{ENV}-gone{h:03}"),
            format!("o{h}"),
            "1.0.0",
            RunState::Running,
        );
        o.labels
            .insert(labels::SERVICE.into(), format!("gone{h:03}"));
        out.push(o);
    }
    out
}

fn no_env_file(_: &str) -> Result<String, String> {
    Ok(String::new())
}

fn resolve_all(m: &Manifest, hosts: &[String]) -> Vec<Vec<std::sync::Arc<ResolvedService>>> {
    let names: Vec<&str> = hosts.iter().map(String::as_str).collect();
    resolve_hosts(m, ENV, &names, &no_env_file).expect("resolves")
}

fn bench(c: &mut Criterion) {
    let text = manifest_text();
    let hosts: Vec<String> = (0..HOSTS).map(host).collect();
    let m = parse_str(&text).expect("the generated manifest is valid");
    let desired = resolve_all(&m, &hosts);
    let observed: Vec<Vec<ContainerSummary>> = desired
        .iter()
        .enumerate()
        .map(|(h, d)| observed_for(d, h))
        .collect();

    // Sanity: the shape is what the module comment says.
    let pairs: usize = desired.iter().map(Vec::len).sum();
    let containers: usize = observed.iter().map(Vec::len).sum();
    assert_eq!(pairs, HOSTS * GROUP_SERVICES);
    let mut kinds = std::collections::BTreeMap::<ChangeKind, usize>::new();
    for (d, o) in desired.iter().zip(&observed) {
        for ch in plan_host(d, &classify(PLATFORM, ENV, o)) {
            *kinds.entry(ch.kind).or_default() += 1;
        }
    }
    eprintln!(
        "plan bench: {} bytes of manifest, {SERVICES} services, {HOSTS} hosts, {pairs} (host, service) pairs, {containers} observed containers; planned: {kinds:?}",
        text.len()
    );
    assert_eq!(kinds[&ChangeKind::RemoveOrphan], HOSTS);

    // The lists are the engines' answers, owned by the plan as in `ops::deploy` (made outside
    // the timing: they come from the network, not from planning).
    c.bench_function("parse_resolve_plan 2000x200", |b| {
        b.iter_batched(
            || observed.clone(),
            |observed| {
                let m = parse_str(black_box(&text)).expect("valid");
                let names: Vec<&str> = hosts.iter().map(String::as_str).collect();
                let desired = resolve_hosts(&m, ENV, &names, &no_env_file).expect("resolves");
                let mut n = 0;
                for (d, obs) in desired.iter().zip(observed) {
                    let view = classify_owned(PLATFORM, ENV, obs);
                    n += plan_host(d, &view).len();
                }
                black_box(n)
            },
            BatchSize::LargeInput,
        )
    });
    // The same work in its parts, to see where the time goes.
    c.bench_function("part: parse+check", |b| {
        b.iter(|| black_box(parse_str(black_box(&text)).expect("valid")))
    });
    c.bench_function("part: resolve 200 hosts", |b| {
        b.iter(|| black_box(resolve_all(black_box(&m), &hosts)))
    });
    c.bench_function("part: classify+plan 200 hosts", |b| {
        b.iter_batched(
            || observed.clone(),
            |observed| {
                let mut n = 0;
                for (d, obs) in desired.iter().zip(observed) {
                    n += plan_host(d, &classify_owned(PLATFORM, ENV, black_box(obs))).len();
                }
                black_box(n)
            },
            BatchSize::LargeInput,
        )
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
