//! Fault injection on the private fleet: a dockerd killed mid-apply or under a start, a cut
//! network, a registry stopped during a pull, an unreachable host, and 50 upgrade/rollback cycles
//! that count the engines' descriptors. Each case checks that nothing is lost: the previous
//! version answers right after the fault, named-volume data is intact, and a re-run converges.
//! The cases share hosts whose engines they kill, so they run one at a time, and tests/suites.sh
//! runs this binary apart from the other fleet suites. fleetpin itself killed or interrupted
//! (which disturbs no other suite) is tests/fleet_kills.rs.

mod support;

use std::sync::Mutex;
use std::time::{Duration, Instant};
use support::{
    Scenario, VOL, assert_converged, fault, names, spawn_paused, spawn_paused_times, volume_file,
};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn a_dockerd_killed_mid_apply_then_restarted_converges_on_rerun() {
    let fleet = require_fleet!();
    let _one = serial();
    let s = Scenario::new(&fleet, "dockerd");
    s.write(&s.manifest(&["h2", "h3"], &[("web", 18431, VOL)], &[("web", "1.0.0")]));
    s.apply_ok("test");
    let data = volume_file(&s, "h2", "data");
    std::fs::write(&data, "orders\n").unwrap();

    s.write(&s.manifest(&["h2", "h3"], &[("web", 18431, VOL)], &[("web", "1.1.0")]));
    // Both hosts swap side by side: kill h2's engine once both new containers are started, so
    // it is h2's health gate (not its start) that meets the dead engine.
    let (child, _err) = spawn_paused_times(
        &s,
        &["--connect-timeout", "2", "apply", "test", "--yes"],
        "started",
        3,
        &[],
        2,
    );
    let down = fault(&["kill-host", "h2"], &["start-host", "h2"]);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("h2  failed") && stdout.contains("could not be judged"),
        "the report says h2's gate could not be judged: {stdout}"
    );
    assert!(stdout.contains("h3  converged"), "{stdout}");
    down.undo();

    s.apply_ok("test");
    assert_converged(&s, "h2", "web", "1.1.0", 18431);
    assert_converged(&s, "h3", "web", "1.1.0", 18431);
    assert_eq!(std::fs::read_to_string(&data).unwrap(), "orders\n");
}

#[test]
fn a_network_cut_mid_apply_then_restored_converges() {
    let fleet = require_fleet!();
    let _one = serial();
    let s = Scenario::new(&fleet, "netcut");
    s.deploy(&["h1"], 18441, "1.0.0");
    s.write_web(&["h1"], 18441, "1.2.0");
    let (child, _err) = spawn_paused(&s, &["apply", "test", "--yes"], "stopped", 1);
    let cut = fault(&["cut", "h1"], &["restore", "h1"]);
    std::thread::sleep(Duration::from_secs(4));
    cut.undo();
    let out = child.wait_with_output().unwrap();
    // A 4 s cut is within a request's patience: the swap goes on once the network is back.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("h1  converged"), "{stdout}");
    assert_converged(&s, "h1", "web", "1.2.0", 18441);
    let rerun = s.apply_ok("test");
    assert!(rerun.stdout.contains("Nothing to do"), "{rerun:?}");
}

#[test]
fn a_registry_stopped_during_the_pull_leaves_hosts_untouched() {
    let fleet = require_fleet!();
    let _one = serial();
    let s = Scenario::new(&fleet, "registry");
    // Pull into a repository no other test uses, so the images are not on the host yet.
    let repo = format!("{}/fleetpin/regstop", fleet.registry);
    s.push_as("h1", &format!("{}:1.0.0", fleet.image), &repo, "1.0.0");
    s.push_as("h1", &format!("{}:1.1.0", fleet.image), &repo, "1.1.0");
    let manifest = |v: &str| {
        format!(
            "platform: {}\nservices:\n  web: {{image: {repo}, ports: [\"18451:8080\"]}}\nenvironments:\n  test:\n    hosts: {{h3: {{endpoint: \"{}\", insecure: true}}}}\n    versions: {{web: \"{v}\"}}\n",
            s.platform,
            s.host("h3").tcp
        )
    };
    s.write(&manifest("1.0.0"));
    s.apply_ok("test");
    let before = s.containers("h3");
    s.write(&manifest("1.1.0"));
    // An earlier run on this fleet may have left the image: it must be pulled.
    s.remove_image("h3", &format!("{repo}:1.1.0"));
    // Stopped while fleetpin is about to pull, so the pull itself meets a dead registry.
    let (child, _err) = spawn_paused(&s, &["apply", "test", "--yes"], "pulling", 3);
    let stopped = fault(&["stop-registry"], &["start-registry"]);
    let out = child.wait_with_output().unwrap();
    stopped.undo();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("pull of") && stdout.contains("nothing was changed"),
        "{stdout}"
    );
    assert_eq!(s.containers("h3"), before);
    assert_eq!(s.version("h3", 18451).as_deref(), Some("1.0.0"));
    s.apply_ok("test");
    assert_eq!(s.version("h3", 18451).as_deref(), Some("1.1.0"));
}

#[test]
fn a_host_down_from_the_start_is_named_and_the_others_proceed() {
    let fleet = require_fleet!();
    let _one = serial();
    let s = Scenario::new(&fleet, "hostdown");
    s.write_web(&["h1", "h2", "h3"], 18461, "1.0.0");
    let down = fault(&["kill-host", "h3"], &["start-host", "h3"]);
    let started = Instant::now();
    let out = s.run(&["--connect-timeout", "2", "apply", "test", "--yes"]);
    let took = started.elapsed();
    down.undo();
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("h3  unreachable"), "{out:?}");
    assert!(
        took < Duration::from_secs(30),
        "one timeout, not a hang: {took:?}"
    );
    for h in ["h1", "h2"] {
        assert_eq!(s.version(h, 18461).as_deref(), Some("1.0.0"), "{h}");
    }
    assert_eq!(
        s.run(&["apply", "test", "--yes"]).code,
        0,
        "h3 converges once back"
    );
    assert_eq!(s.version("h3", 18461).as_deref(), Some("1.0.0"));
}

fn open_fds(pid: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn fifty_upgrade_and_rollback_cycles_on_three_hosts_leak_nothing() {
    let fleet = require_fleet!();
    let _one = serial();
    let s = Scenario::new(&fleet, "cycles");
    let hosts = ["h1", "h2", "h3"];
    let env = std::fs::read_to_string(support::DEFAULT_ENV_FILE).unwrap_or_default();
    let pids: Vec<String> = hosts
        .iter()
        .filter_map(|h| {
            let key = format!("FLEET_{}_PID=", h.to_uppercase());
            env.lines()
                .find_map(|l| l.strip_prefix(&key).map(str::to_string))
        })
        .collect();
    s.write(&s.manifest(&hosts, &[("web", 18471, VOL)], &[("web", "1.0.0")]));
    s.apply_ok("test");
    assert_eq!(
        pids.len(),
        3,
        "each host's dockerd pid is in fleet.env: {pids:?}"
    );
    let fds_before: Vec<usize> = pids.iter().map(|p| open_fds(p)).collect();
    assert!(
        fds_before.iter().all(|n| *n > 0),
        "every dockerd's descriptors are readable in /proc: {fds_before:?}"
    );
    let cycles: usize = std::env::var("FLEETPIN_CYCLES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(50);
    for cycle in 0..cycles {
        s.write(&s.manifest(&hosts, &[("web", 18471, VOL)], &[("web", "1.1.0")]));
        let up = s.run(&["apply", "test", "--yes"]);
        assert_eq!(up.code, 0, "cycle {cycle}: {up:?}");
        for h in hosts {
            assert_eq!(
                s.version(h, 18471).as_deref(),
                Some("1.1.0"),
                "cycle {cycle} {h}"
            );
        }
        let back = s.run(&["rollback", "test", "--yes"]);
        assert_eq!(back.code, 0, "cycle {cycle}: {back:?}");
        for h in hosts {
            assert_eq!(
                s.version(h, 18471).as_deref(),
                Some("1.0.0"),
                "cycle {cycle} {h}"
            );
            let list = names(&s, h);
            assert!(
                list.len() <= 3,
                "cycle {cycle} {h}: one running + at most retain=2: {list:?}"
            );
        }
    }
    let fds_after: Vec<usize> = pids.iter().map(|p| open_fds(p)).collect();
    for (b, a) in fds_before.iter().zip(&fds_after) {
        assert!(
            *a <= *b + 10,
            "open descriptors of a dockerd grew from {b} to {a}"
        );
    }
    println!("{cycles} cycles; dockerd open fds before {fds_before:?} after {fds_after:?}");
}

/// Starts the stopped container `id` on `host` by hand and SIGKILLs the host's dockerd while
/// the start is under way, then starts the engine again — until the engine refuses every start
/// of it because its containerd task (and shim) outlived the crash: `task …: already exists`,
/// the container `Exited (128)`. That is what a start racing a dockerd crash leaves (the field
/// report: two operators at once while the engine was killed). The window is a few tens of
/// milliseconds after the start request, so each round tries another delay. Returns the
/// engine's refusal.
fn make_its_task_outlive_the_engine(s: &Scenario, host: &str, id: &str) -> String {
    use bollard::query_parameters::{StartContainerOptions, StopContainerOptions};
    let start = |id: &str| {
        let docker = s.docker(host);
        let id = id.to_string();
        move || {
            support::block_on(async move {
                docker
                    .start_container(&id, None::<StartContainerOptions>)
                    .await
            })
        }
    };
    let delays_ms = [20, 40, 60, 80, 30, 50, 70, 100, 10, 120, 150, 200];
    let mut seen = Vec::new();
    for delay in delays_ms.iter().cycle().take(3 * delays_ms.len()) {
        let starting = std::thread::spawn(start(id));
        std::thread::sleep(Duration::from_millis(*delay));
        let down = fault(&["kill-host", host], &["start-host", host]);
        let _ = starting.join();
        down.undo();
        match start(id)() {
            Err(e) if e.to_string().contains("already exists") => return e.to_string(),
            other => {
                // Not caught in the window: it started (or failed otherwise); stop it, again.
                seen.push(format!("{delay} ms: {other:?}"));
                let docker = s.docker(host);
                let id = id.to_string();
                support::block_on(async move {
                    let _ = docker
                        .stop_container(&id, None::<StopContainerOptions>)
                        .await;
                });
            }
        }
    }
    panic!("the engine never refused to start {id} after a crash mid-start: {seen:#?}");
}

#[test]
fn a_retained_container_whose_task_outlived_a_dockerd_crash_is_created_afresh() {
    let fleet = require_fleet!();
    let _one = serial();
    let s = Scenario::new(&fleet, "taskexists");
    let port = 18491;
    let stable = format!("{}-test-web", s.platform);
    s.deploy(&["h1"], port, "2.0.0");
    s.deploy(&["h1"], port, "1.1.0");
    let (stale, _, _) = s
        .containers_with("h1", ".prev-")
        .into_iter()
        .find(|(_, _, v)| v == "2.0.0")
        .expect("2.0.0 is retained");
    let stale_id = s.inspect("h1", &stale).id.unwrap();
    // The serving 1.1.0 stops (its port must be free for the retained one's start by hand),
    // as the crash would have stopped it anyway.
    let docker = s.docker("h1");
    let serving = stable.clone();
    support::block_on(async move {
        docker
            .stop_container(
                &serving,
                None::<bollard::query_parameters::StopContainerOptions>,
            )
            .await
            .unwrap();
    });
    let refusal = make_its_task_outlive_the_engine(&s, "h1", &stale_id);
    let state = s.inspect("h1", &stale_id).state.unwrap();
    assert_eq!(state.exit_code, Some(128), "{refusal}: {state:?}");

    // The pin goes back to 2.0.0: apply picks the retained container (same spec hash), which
    // the engine refuses to start; a fresh one of the same spec takes its place.
    s.write_web(&["h1"], port, "2.0.0");
    let out = s.run(&["apply", "test", "--yes"]);
    println!("{}", out.stdout);
    assert_eq!(out.code, 0, "{refusal}: {out:?}");
    assert!(
        out.stdout
            .contains(&format!("retained container {stale} could not be started"))
            && out.stdout.contains("already exists")
            && out.stdout.contains("created afresh"),
        "the report says what happened: {out:?}"
    );
    let now = s.inspect("h1", &stable);
    let fresh = now.id.clone().unwrap();
    assert_ne!(fresh, stale_id, "a fresh container serves");
    assert_eq!(
        now.config.unwrap().labels.unwrap()["io.fleetpin.version"],
        "2.0.0"
    );
    assert_converged(&s, "h1", "web", "2.0.0", port);
    // The refused one is gone, or out of the way as `.broken-` (never kept nor chosen).
    match s.try_inspect("h1", &stale_id) {
        Err(_) => assert!(out.stdout.contains("the old one removed"), "{out:?}"),
        Ok(c) => {
            let name = c.name.unwrap_or_default();
            assert!(
                name.starts_with(&format!("/{stable}.broken-")),
                "{name}: {out:?}"
            );
            assert!(out.stdout.contains(".broken-"), "{out:?}");
        }
    }
    let prev = s.containers_with("h1", ".prev-");
    assert!(prev.len() <= 2, "within retain: {prev:?}");
    assert!(
        prev.iter()
            .all(|(n, _, _)| s.inspect("h1", n).id.unwrap() != stale_id),
        "{prev:?}"
    );
    // The host is at its pin: the next plan has nothing to do.
    let plan = s.run(&["plan", "test", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{plan:?}");
}

/// What `host`'s containers of this scenario say about their networking, for a failure message.
fn networking(s: &Scenario, host: &str) -> String {
    s.containers(host)
        .iter()
        .map(|(name, state, version)| {
            let c = s.inspect(host, name);
            let state_of = c.state.unwrap_or_default();
            let nets = c
                .network_settings
                .and_then(|n| n.networks)
                .unwrap_or_default()
                .into_iter()
                .map(|(net, e)| {
                    format!(
                        "{net}: ip {:?} endpoint {:?}",
                        e.ip_address.unwrap_or_default(),
                        e.endpoint_id.unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "{name} {state} {version} started {:?} finished {:?} exit {:?}: {nets}",
                state_of.started_at, state_of.finished_at, state_of.exit_code
            )
        })
        .chain(std::iter::once({
            // What the network itself says is attached.
            let docker = s.docker(host);
            let name = format!("{}-test-default", s.platform);
            let attached = support::block_on(async move {
                docker
                    .inspect_network(
                        &name,
                        None::<bollard::query_parameters::InspectNetworkOptions>,
                    )
                    .await
                    .map(|n| n.containers.unwrap_or_default())
            });
            match attached {
                Ok(m) => m
                    .values()
                    .map(|e| {
                        format!(
                            "network: {:?} {:?} {:?}",
                            e.name.clone().unwrap_or_default(),
                            e.ipv4_address.clone().unwrap_or_default(),
                            e.endpoint_id.clone().unwrap_or_default()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
                Err(e) => format!("network: {e}"),
            }
        }))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits up to 5 s for `host` to answer `version` on `port` (a gate that passed may leave the
/// port a moment to bind).
fn answers(s: &Scenario, host: &str, port: u16, version: &str) -> bool {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        if s.version(host, port).as_deref() == Some(version) {
            return true;
        }
        if Instant::now() > until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn after_a_dockerd_crash_and_restart_every_service_answers_on_its_port_and_audit_says_so() {
    let fleet = require_fleet!();
    let _one = serial();
    let s = Scenario::new(&fleet, "deadports");
    // `web` keeps the default policy (unless-stopped), `api` is `always`, `job` is `no`: the
    // engine starts some of them again by itself after a crash, fleetpin the others. Each has a
    // kept previous version, as on any host that was ever upgraded.
    let services = [
        ("web", 18521, ""),
        ("api", 18522, "restart: always"),
        ("job", 18523, "restart: \"no\""),
    ];
    let pins = |v: &'static str| [("web", v), ("api", v), ("job", v)];
    s.write(&s.manifest(&["h2"], &services, &pins("1.0.0")));
    s.apply_ok("test");
    s.write(&s.manifest(&["h2"], &services, &pins("1.1.0")));
    s.apply_ok("test");
    for (_, port, _) in services {
        assert!(answers(&s, "h2", port, "1.1.0"), "{port} before the crash");
    }

    let down = fault(&["kill-host", "h2"], &["start-host", "h2"]);
    down.undo();
    // Whatever the engine started again by itself has had time to pass its health check.
    std::thread::sleep(Duration::from_secs(3));
    // Those left stopped under the crash: never to be started again in place.
    let crashed: Vec<(&str, String)> = services
        .iter()
        .filter_map(|(service, _, _)| {
            let c = s.inspect("h2", &format!("{}-test-{service}", s.platform));
            let running = c.state.as_ref().and_then(|st| st.running) == Some(true);
            (!running).then(|| (*service, c.id.unwrap_or_default()))
        })
        .collect();
    let dead: Vec<u16> = services
        .iter()
        .map(|(_, port, _)| *port)
        .filter(|port| s.version("h2", *port).as_deref() != Some("1.1.0"))
        .collect();
    let audit = s.run(&["audit", "test", "--exit-code"]);
    if !dead.is_empty() {
        assert_eq!(
            audit.code,
            2,
            "audit must not call a host with dead ports ({dead:?}) in sync:\n{}\n{audit:?}",
            networking(&s, "h2")
        );
    }

    let out = s.run(&["apply", "test", "--yes"]);
    assert_eq!(out.code, 0, "{}\n{out:?}", networking(&s, "h2"));
    for (service, port, _) in services {
        assert!(
            answers(&s, "h2", port, "1.1.0"),
            "{service} does not answer on {port} after the repair apply:\n{}\n{}",
            out.stdout,
            networking(&s, "h2")
        );
    }
    for (service, id) in &crashed {
        let now = s.inspect("h2", &format!("{}-test-{service}", s.platform));
        assert_ne!(
            now.id.as_ref(),
            Some(id),
            "{service} stopped under the crash and was started again in place:\n{}",
            out.stdout
        );
    }
    let audit = s.run(&["audit", "test", "--exit-code"]);
    assert_eq!(audit.code, 0, "{audit:?}");
    let plan = s.run(&["plan", "test", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "nothing left to do: {plan:?}");
}
