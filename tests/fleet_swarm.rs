//! Swarm environments on the fleet's two-node swarm (s1 manager, s2 worker; tests/fleet/README.md,
//! "Swarm"): apply creates the services with their replicas serving on both nodes (host-mode
//! ports, GET on each node's address), an upgrade rolls, a never-healthy release exits 1 with the
//! old version serving; rollback walks back through fleetpin's own history and commits the pin;
//! promote from a plain-host preprod pins the swarm by digest; audit shows tasks per node and a
//! manual scale is drift.

mod support;

use support::{Scenario, block_on, http_get};

/// The swarm's facts from fleet.env: the manager's tcp endpoint and each node's address.
struct Swarm {
    manager: String,
    nodes: Vec<(String, String)>,
}

fn swarm() -> Option<Swarm> {
    let path = std::env::var("FLEETPIN_FLEET_ENV")
        .unwrap_or_else(|_| support::DEFAULT_ENV_FILE.to_string());
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let found = (|| {
        let manager = get("FLEET_SWARM_MANAGER")?;
        let nodes = get("FLEET_SWARM_NODES")?
            .split_whitespace()
            .map(|n| {
                Some((
                    n.to_string(),
                    get(&format!("FLEET_{}_ADDR", n.to_uppercase()))?,
                ))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Swarm { manager, nodes })
    })();
    if found.is_none() {
        let msg = format!(
            "the fleet's swarm is not up ({path} has no FLEET_SWARM_MANAGER / FLEET_SWARM_NODES); start the fleet with `sudo tests/fleet/fleet.sh up`"
        );
        if std::env::var_os("CI").is_some() {
            panic!("{msg}");
        }
        eprintln!("\n!!! SKIPPING swarm test: {msg}\n");
    }
    found
}

fn manager(sw: &Swarm) -> bollard::Docker {
    let hostport = sw.manager.trim_start_matches("tcp://");
    bollard::Docker::connect_with_http(
        &format!("http://{hostport}"),
        60,
        bollard::API_DEFAULT_VERSION,
    )
    .unwrap()
}

/// Removes the scenario's Swarm services when created and when dropped.
struct Services {
    docker: bollard::Docker,
    prefix: String,
}

impl Services {
    fn new(sw: &Swarm, platform: &str) -> Services {
        let s = Services {
            docker: manager(sw),
            prefix: format!("{platform}-"),
        };
        s.remove();
        s
    }

    fn remove(&self) {
        let docker = self.docker.clone();
        let prefix = self.prefix.clone();
        block_on(async move {
            for s in docker.list_services(None).await.unwrap_or_default() {
                let name = s.spec.and_then(|s| s.name).unwrap_or_default();
                if name.starts_with(&prefix) {
                    let _ = docker.delete_service(&name).await;
                }
            }
        });
        // Host-mode ports are free again once the tasks' containers are gone.
        std::thread::sleep(std::time::Duration::from_secs(2));
        let docker = self.docker.clone();
        let prefix = self.prefix.clone();
        block_on(async move {
            let nets = docker
                .list_networks(None::<bollard::query_parameters::ListNetworksOptions>)
                .await
                .unwrap_or_default();
            for n in nets {
                let name = n.name.unwrap_or_default();
                // Removed once the last task's endpoint is gone, a moment after the service.
                for _ in 0..20 {
                    if !name.starts_with(&prefix) || docker.remove_network(&name).await.is_ok() {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
            }
        });
    }

    fn scale(&self, name: &str, replicas: i64) {
        let docker = self.docker.clone();
        let name = name.to_string();
        block_on(async move {
            let s = docker.inspect_service(&name, None).await.unwrap();
            let mut spec = s.spec.unwrap();
            spec.mode
                .as_mut()
                .unwrap()
                .replicated
                .as_mut()
                .unwrap()
                .replicas = Some(replicas);
            let opts = bollard::query_parameters::UpdateServiceOptionsBuilder::default()
                .version(s.version.unwrap().index.unwrap() as i32)
                .build();
            docker
                .update_service(&name, spec, opts, None)
                .await
                .unwrap();
        });
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.remove();
        }
    }
}

/// A scenario with a platform name of the swarm tests' own (`sw…`).
fn scenario(fleet: &support::Fleet, platform: &str) -> Scenario {
    let mut s = Scenario::new(fleet, platform);
    s.platform = platform.to_string();
    s.cleanup();
    s
}

/// Every swarm test's setup: the fleet and the swarm (or `None`, after the skip note, when
/// either is not up; under CI, a panic), the scenario, and its Swarm services, removed now and
/// when dropped. Bind them in this order, so that the services go before the scenario's
/// containers.
fn swarm_scenario(platform: &str) -> Option<(support::Fleet, Swarm, Scenario, Services)> {
    let fleet = support::fleet()?;
    let sw = swarm()?;
    let s = scenario(&fleet, platform);
    let services = Services::new(&sw, &s.platform);
    Some((fleet, sw, s, services))
}

/// The manifest's head: platform and service `web`, two replicas on host-mode `port`.
fn web_service(s: &Scenario, image: &str, port: u16) -> String {
    format!(
        r#"platform: {platform}
services:
  web:
    image: {image}
    ports: ["{port}:8080"]
    replicas: 2
    update: {{monitor: 3s}}
environments:
"#,
        platform = s.platform,
    )
}

/// An environment's target lines: the swarm.
fn on_swarm(sw: &Swarm) -> String {
    format!(
        "    swarm: {{endpoint: \"{}\", insecure: true, publish: host}}\n",
        sw.manager
    )
}

/// Service `web` on `port` pinned at 1.0.0 in the swarm environment `prod`.
fn swarm_manifest(s: &Scenario, image: &str, sw: &Swarm, port: u16) -> String {
    format!(
        "{}  prod:\n{}    versions:\n      web: \"1.0.0\"\n",
        web_service(s, image, port),
        on_swarm(sw)
    )
}

/// Service `web` on `port` in two environments, `preprod` at 1.1.0 and `prod` at 1.0.0, one of
/// them (`swarm_env`) the swarm and the other plain host `host`.
fn mixed_manifest(
    s: &Scenario,
    image: &str,
    sw: &Swarm,
    port: u16,
    host: &support::FleetHost,
    swarm_env: &str,
) -> String {
    let env = |name: &str| {
        if name == swarm_env {
            on_swarm(sw)
        } else {
            format!("    hosts:\n{}", s.host_lines(&[&host.name]))
        }
    };
    format!(
        "{}  preprod:\n{}    versions:\n      web: \"1.1.0\"\n  prod:\n{}    versions:\n      web: \"1.0.0\"\n",
        web_service(s, image, port),
        env("preprod"),
        env("prod"),
    )
}

fn set_pin(s: &Scenario, from: &str, to: &str) {
    let text = std::fs::read_to_string(s.path()).unwrap();
    let new = text.replace(&format!("web: \"{from}\""), &format!("web: \"{to}\""));
    assert_ne!(text, new, "no pin {from} in the manifest");
    s.write(&new);
}

/// What each node answers on `port`'s /version.
fn versions(sw: &Swarm, port: u16) -> Vec<Option<String>> {
    sw.nodes
        .iter()
        .map(|(_, addr)| http_get(addr, port, "/version").map(|v| v.trim().to_string()))
        .collect()
}

fn both(v: &str) -> Vec<Option<String>> {
    vec![Some(v.to_string()), Some(v.to_string())]
}

#[test]
fn apply_serves_on_both_nodes_an_upgrade_rolls_and_a_broken_release_exits_1() {
    let Some((fleet, sw, s, _services)) = swarm_scenario("swapply") else {
        return;
    };
    s.write(&swarm_manifest(&s, &fleet.image, &sw, 19210));

    let plan = s.run(&["plan", "prod", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{plan:?}");
    let host = s.run(&["plan", "prod", "--host", "s1"]);
    assert_eq!(host.code, 1, "{host:?}");
    assert!(
        host.stderr
            .contains("--host does not apply to environment `prod`"),
        "{host:?}"
    );
    assert!(
        plan.stdout.contains("create") && plan.stdout.contains("replicas 2"),
        "{plan:?}"
    );

    s.apply_ok("prod");
    assert_eq!(
        versions(&sw, 19210),
        both("1.0.0"),
        "one task per node, each answering"
    );

    set_pin(&s, "1.0.0", "1.1.0");
    let up = s.apply_ok("prod");
    assert!(up.stdout.contains("upgrade"), "{up:?}");
    assert_eq!(versions(&sw, 19210), both("1.1.0"));

    set_pin(&s, "1.1.0", "broken");
    let bad = s.run(&["apply", "prod", "--yes"]);
    assert_eq!(bad.code, 1, "{bad:?}");
    assert!(bad.stdout.contains("rolled it back"), "{bad:?}");
    assert_eq!(
        versions(&sw, 19210),
        both("1.1.0"),
        "the old version serves on"
    );
    let again = s.run(&["plan", "prod"]);
    assert!(again.stdout.contains("1.1.0 -> broken"), "{again:?}");
}

#[test]
fn rollback_walks_back_through_the_history_and_commits_the_pin() {
    let Some((fleet, sw, s, _services)) = swarm_scenario("swrollback") else {
        return;
    };
    s.write(&swarm_manifest(&s, &fleet.image, &sw, 19211));
    s.apply_ok("prod");
    set_pin(&s, "1.0.0", "1.1.0");
    s.apply_ok("prod");
    set_pin(&s, "1.1.0", "2.0.0");
    s.apply_ok("prod");
    assert_eq!(versions(&sw, 19211), both("2.0.0"));

    let back = s.run(&["rollback", "prod", "--yes"]);
    assert_eq!(back.code, 0, "{back:?}");
    assert_eq!(versions(&sw, 19211), both("1.1.0"));
    let text = std::fs::read_to_string(s.path()).unwrap();
    assert!(text.contains("web: \"1.1.0\""), "{text}");
    assert_eq!(s.head_subject(), "rollback prod: web 2.0.0 -> 1.1.0");

    // Further back, never forward again to 2.0.0.
    let back2 = s.run(&["rollback", "prod", "--yes"]);
    assert_eq!(back2.code, 0, "{back2:?}");
    assert_eq!(versions(&sw, 19211), both("1.0.0"));
    assert_eq!(s.head_subject(), "rollback prod: web 1.1.0 -> 1.0.0");
    let plan = s.run(&["plan", "prod", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "the pin is what runs: {plan:?}");

    let none = s.run(&["rollback", "prod", "--yes"]);
    assert_eq!(none.code, 1, "{none:?}");
    assert!(none.stderr.contains("nothing to go back to"), "{none:?}");
    assert_eq!(versions(&sw, 19211), both("1.0.0"));
}

#[test]
fn promote_from_plain_preprod_pins_the_swarm_by_digest_and_apply_deploys_it() {
    let Some((fleet, sw, s, _services)) = swarm_scenario("swpromote") else {
        return;
    };
    let h1 = &fleet.hosts[0];
    s.write(&mixed_manifest(&s, &fleet.image, &sw, 19212, h1, "prod"));
    s.apply_ok("preprod");
    let tested = s.running_digest(
        &h1.name,
        &format!("{}-preprod-web", s.platform),
        &fleet.image,
    );
    assert!(tested.starts_with("sha256:"), "{tested}");

    let out = s.run(&["promote", "preprod", "prod"]);
    assert_eq!(out.code, 0, "{out:?}");
    let text = std::fs::read_to_string(s.path()).unwrap();
    assert!(text.contains(&format!("1.1.0@{tested}")), "{text}");

    s.apply_ok("prod");
    assert_eq!(versions(&sw, 19212), both("1.1.0"));
    let audit = s.run(&["audit", "prod", "--format", "json"]);
    assert_eq!(audit.code, 0, "{audit:?}");
    let row = &audit.json()["swarm"]["prod"]["services"][0];
    assert_eq!(row["digest"], tested.as_str(), "{audit:?}");
}

#[test]
fn audit_shows_tasks_per_node_and_a_manual_scale_exits_2() {
    let Some((fleet, sw, s, services)) = swarm_scenario("swaudit") else {
        return;
    };
    s.write(&swarm_manifest(&s, &fleet.image, &sw, 19214));
    s.apply_ok("prod");

    let audit = s.run(&["audit", "prod", "--exit-code", "--format", "json"]);
    assert_eq!(audit.code, 0, "{audit:?}");
    let row = &audit.json()["swarm"]["prod"]["services"][0];
    assert_eq!(row["running"], "1.0.0");
    assert_eq!(row["status"], "ok");
    assert_eq!(
        row["tasks"],
        serde_json::json!({"fpfleet-s1": 1, "fpfleet-s2": 1}),
        "{audit:?}"
    );
    assert!(row["digest"].as_str().unwrap().starts_with("sha256:"));
    let table = s.run(&["audit", "prod"]);
    assert!(
        table.stdout.contains("fpfleet-s1:1 fpfleet-s2:1"),
        "{table:?}"
    );
    // The reports for a ticket or a mail show the swarm too.
    let md = s.run(&["audit", "prod", "--format", "markdown"]);
    assert_eq!(md.code, 0, "{md:?}");
    assert!(md.stdout.contains("## Swarm environment `prod`"), "{md:?}");
    assert!(
        md.stdout
            .contains("| 2/2 | fpfleet-s1:1 fpfleet-s2:1 | ok |"),
        "{md:?}"
    );
    let (html, page) = s.audit_html(&["prod"]);
    assert_eq!(html.code, 0, "{html:?}");
    assert!(
        page.contains("<h2>Swarm environment <code>prod</code></h2>")
            && page.contains(
                "<td>2/2</td><td>fpfleet-s1:1 fpfleet-s2:1</td><td class=\"status ok\">ok</td>"
            ),
        "{page}"
    );

    services.scale(&format!("{}-prod-web", s.platform), 1);
    let drift = s.run(&["audit", "prod", "--exit-code"]);
    assert_eq!(drift.code, 2, "{drift:?}");
    assert!(drift.stdout.contains("scale"), "{drift:?}");
}

#[test]
fn the_lock_is_a_cluster_config_a_held_one_refuses_apply_and_a_run_releases_its_own() {
    let Some((fleet, sw, s, services)) = swarm_scenario("swlock") else {
        return;
    };
    let docker = services.docker.clone();
    let lock = format!("fleetpin-lock-{}-prod", s.platform);
    let remove = |docker: bollard::Docker, lock: String| {
        block_on(async move {
            let _ = docker.delete_config(&lock).await;
        })
    };
    remove(docker.clone(), lock.clone());
    s.write(&swarm_manifest(&s, &fleet.image, &sw, 19215));

    // Someone else's fresh lock, on another machine.
    let labels = std::collections::HashMap::from([
        (
            "io.fleetpin.lock.owner".to_string(),
            "alice@example.test".to_string(),
        ),
        (
            "io.fleetpin.lock.machine".to_string(),
            "another-machine".to_string(),
        ),
        (
            "io.fleetpin.lock.hostname".to_string(),
            "alice-laptop".to_string(),
        ),
        ("io.fleetpin.lock.pid".to_string(), "4242".to_string()),
        ("io.fleetpin.lock.ttl".to_string(), "120".to_string()),
    ]);
    {
        let docker = docker.clone();
        let lock = lock.clone();
        block_on(async move {
            docker
                .create_config(bollard::models::ConfigSpec {
                    name: Some(lock),
                    labels: Some(labels),
                    data: Some("eA==".into()),
                    ..Default::default()
                })
                .await
                .unwrap();
        });
    }
    let refused = s.run(&["apply", "prod", "--yes"]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("locked by alice@example.test on alice-laptop (pid 4242)"),
        "{refused:?}"
    );
    assert_eq!(
        versions(&sw, 19215),
        vec![None, None],
        "nothing was deployed"
    );

    let unlock = s.run(&["unlock", "prod"]);
    assert_eq!(unlock.code, 0, "{unlock:?}");
    assert!(
        unlock
            .stdout
            .contains("removed the lock of prod (held by alice@example.test)"),
        "{unlock:?}"
    );
    s.apply_ok("prod");
    let left = {
        let docker = docker.clone();
        let lock = lock.clone();
        block_on(async move { docker.inspect_config(&lock).await.is_ok() })
    };
    assert!(!left, "apply released its lock");
}

#[test]
fn registry_credentials_go_with_the_service_so_the_nodes_pull_from_a_registry_behind_auth() {
    let Some((fleet, sw, s, _services)) = swarm_scenario("swauth") else {
        return;
    };
    assert!(
        !fleet.auth_registry.is_empty(),
        "the fleet has no auth registry (FLEET_AUTH_REGISTRY)"
    );
    let image = format!("{}/fleetpin/app", fleet.auth_registry);
    s.write(&swarm_manifest(&s, &image, &sw, 19216));
    // No node holds the image yet: each must pull it with the credentials apply sends.
    for (_, addr) in &sw.nodes {
        let node = bollard::Docker::connect_with_http(
            &format!("http://{addr}:2375"),
            60,
            bollard::API_DEFAULT_VERSION,
        )
        .unwrap();
        let repo = image.clone();
        block_on(async move {
            // By id: a task's image is held by digest, with no tag to remove it by.
            let filters = std::collections::HashMap::from([("reference", vec![repo.as_str()])]);
            let list = node
                .list_images(Some(
                    bollard::query_parameters::ListImagesOptionsBuilder::new()
                        .filters(&filters)
                        .build(),
                ))
                .await
                .unwrap();
            for i in list {
                let opts = bollard::query_parameters::RemoveImageOptionsBuilder::new()
                    .force(true)
                    .build();
                node.remove_image(&i.id, Some(opts), None).await.unwrap();
            }
        });
    }
    // The operator's docker config holds the credentials, as after `docker login`.
    let config = tempfile::tempdir().unwrap();
    let token = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{}:{}", fleet.auth_user, fleet.auth_password),
    );
    std::fs::write(
        config.path().join("config.json"),
        format!(
            r#"{{"auths": {{"{}": {{"auth": "{token}"}}}}}}"#,
            fleet.auth_registry
        ),
    )
    .unwrap();
    let out = s.run_with(
        &["apply", "prod", "--yes", "--health-timeout", "60"],
        &[("DOCKER_CONFIG", config.path().to_str().unwrap())],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(versions(&sw, 19216), both("1.0.0"));
}

#[test]
fn logs_show_each_running_task_prefixed_by_its_node() {
    let Some((fleet, sw, s, _services)) = swarm_scenario("swlogs") else {
        return;
    };
    s.write(&format!(
        r#"platform: {p}
services:
  talker:
    image: {i}
    command: ["sh", "-c", "echo hello-from-$(hostname); exec httpd -f -p 8080 -h /www"]
    replicas: 2
    update: {{monitor: 3s}}
environments:
  prod:
    swarm: {{endpoint: "{m}", insecure: true, publish: host}}
    versions:
      talker: "1.0.0"
"#,
        p = s.platform,
        i = fleet.image,
        m = sw.manager
    ));
    s.apply_ok("prod");

    // One task per node; the manager fetches each task's output from its node (which may lag
    // the task's start by a moment).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let out = loop {
        let out = s.run(&["logs", "prod"]);
        assert_eq!(out.code, 0, "{out:?}");
        if out.stdout.lines().count() >= 2 || std::time::Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    let mut lines: Vec<&str> = out.stdout.lines().collect();
    lines.sort();
    assert_eq!(lines.len(), 2, "{out:?}");
    for (line, node) in lines.iter().zip(["fpfleet-s1", "fpfleet-s2"]) {
        assert!(
            line.starts_with(&format!("{node} talker | hello-from-")),
            "each task's line under its node: {out:?}"
        );
    }

    // JSON Lines name the node and the task (service.slot).
    let out = s.run(&["logs", "prod", "--format", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let mut docs: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    docs.sort_by_key(|d| d["host"].as_str().unwrap_or("").to_string());
    assert_eq!(docs.len(), 2, "{out:?}");
    assert_eq!(docs[0]["host"], "fpfleet-s1", "{out:?}");
    assert_eq!(docs[1]["host"], "fpfleet-s2", "{out:?}");
    let task = format!("{}-prod-talker.", s.platform);
    for d in &docs {
        assert_eq!(d["service"], "talker", "{out:?}");
        assert!(
            d["container"].as_str().unwrap().starts_with(&task),
            "{out:?}"
        );
        assert!(d["time"].as_str().is_some(), "the engine's time: {out:?}");
    }

    // Swarm places the tasks: --host means nothing here.
    let out = s.run(&["logs", "prod", "--host", "fpfleet-s1"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("--host does not apply"), "{out:?}");
}

#[test]
fn promote_from_a_swarm_preprod_pins_the_digest_its_tasks_run() {
    let Some((fleet, sw, s, services)) = swarm_scenario("swfrom") else {
        return;
    };
    let h1 = &fleet.hosts[0];
    s.write(&mixed_manifest(&s, &fleet.image, &sw, 19216, h1, "preprod"));
    s.apply_ok("preprod");
    let audit = s.run(&["audit", "preprod", "--format", "json"]);
    let tested = audit.json()["swarm"]["preprod"]["services"][0]["digest"]
        .as_str()
        .unwrap_or_else(|| panic!("{audit:?}"))
        .to_string();
    assert!(tested.starts_with("sha256:"), "{tested}");

    // Scaled by hand to one task: not the tested state, refused before any pin is written.
    services.scale(&format!("{}-preprod-web", s.platform), 1);
    let before = std::fs::read_to_string(s.path()).unwrap();
    let out = s.run(&["promote", "preprod", "prod"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("converged") || out.stdout.contains("converged"),
        "{out:?}"
    );
    assert_eq!(std::fs::read_to_string(s.path()).unwrap(), before);
    assert_eq!(s.run(&["apply", "preprod", "--yes"]).code, 0, "scaled back");

    let out = s.run(&["promote", "preprod", "prod"]);
    assert_eq!(out.code, 0, "{out:?}");
    let text = std::fs::read_to_string(s.path()).unwrap();
    assert!(text.contains(&format!("web: \"1.1.0@{tested}\"")), "{text}");
    s.apply_ok("prod");
    assert_eq!(s.version(&h1.name, 19216).as_deref(), Some("1.1.0"));
    assert_eq!(
        s.running_digest(&h1.name, &format!("{}-prod-web", s.platform), &fleet.image),
        tested
    );
}

/// Moving tests' plain containers and local networks on the swarm's nodes (which `Scenario`
/// does not clean, its hosts being the plain fleet's): removed now and when dropped.
struct PlainNodes {
    nodes: Vec<bollard::Docker>,
    prefix: String,
}

impl PlainNodes {
    fn new(sw: &Swarm, platform: &str) -> PlainNodes {
        let p = PlainNodes {
            nodes: sw
                .nodes
                .iter()
                .map(|(_, addr)| {
                    bollard::Docker::connect_with_http(
                        &format!("http://{addr}:2375"),
                        60,
                        bollard::API_DEFAULT_VERSION,
                    )
                    .unwrap()
                })
                .collect(),
            prefix: format!("{platform}-"),
        };
        p.remove();
        p
    }

    /// (node index, container name, running) of the plain containers of the platform: the
    /// containers that are not a Swarm task.
    fn plain(&self) -> Vec<(usize, String, bool)> {
        let mut out = Vec::new();
        for (i, d) in self.nodes.iter().enumerate() {
            let d = d.clone();
            let list = block_on(async move {
                let opts = bollard::query_parameters::ListContainersOptionsBuilder::new()
                    .all(true)
                    .build();
                d.list_containers(Some(opts)).await.unwrap_or_default()
            });
            for c in list {
                let labels = c.labels.clone().unwrap_or_default();
                let name = c
                    .names
                    .clone()
                    .unwrap_or_default()
                    .first()
                    .cloned()
                    .unwrap_or_default()
                    .trim_start_matches('/')
                    .to_string();
                if name.starts_with(&self.prefix)
                    && !labels.contains_key("com.docker.swarm.service.name")
                {
                    let running = c.state.as_ref().map(|s| format!("{s:?}").to_lowercase())
                        == Some("running".into());
                    out.push((i, name, running));
                }
            }
        }
        out
    }

    fn remove(&self) {
        for d in &self.nodes {
            let d = d.clone();
            let prefix = self.prefix.clone();
            block_on(async move {
                let opts = bollard::query_parameters::ListContainersOptionsBuilder::new()
                    .all(true)
                    .build();
                for c in d.list_containers(Some(opts)).await.unwrap_or_default() {
                    let labels = c.labels.unwrap_or_default();
                    let name = c
                        .names
                        .unwrap_or_default()
                        .first()
                        .cloned()
                        .unwrap_or_default();
                    if name.trim_start_matches('/').starts_with(&prefix)
                        && !labels.contains_key("com.docker.swarm.service.name")
                    {
                        let rm = bollard::query_parameters::RemoveContainerOptionsBuilder::new()
                            .force(true)
                            .build();
                        let _ = d
                            .remove_container(name.trim_start_matches('/'), Some(rm))
                            .await;
                    }
                }
                for n in d
                    .list_networks(None::<bollard::query_parameters::ListNetworksOptions>)
                    .await
                    .unwrap_or_default()
                {
                    let name = n.name.unwrap_or_default();
                    if name.starts_with(&prefix) && n.driver.as_deref() == Some("bridge") {
                        let _ = d.remove_network(&name).await;
                    }
                }
            });
        }
    }
}

impl Drop for PlainNodes {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.remove();
        }
    }
}

/// Service `web` on `port` at `version` in `prod` on the swarm's nodes as plain hosts.
fn plain_on_nodes(s: &Scenario, image: &str, sw: &Swarm, port: u16, version: &str) -> String {
    let hosts: String = sw
        .nodes
        .iter()
        .map(|(n, addr)| {
            format!("      {n}: {{endpoint: \"tcp://{addr}:2375\", insecure: true}}\n")
        })
        .collect();
    format!(
        "platform: {platform}\nservices:\n  web:\n    image: {image}\n    ports: [\"{port}:8080\"]\n    update: {{monitor: 3s}}\nenvironments:\n  prod:\n    hosts:\n{hosts}    versions:\n      web: \"{version}\"\n",
        platform = s.platform,
    )
}

#[test]
fn moving_prod_from_plain_hosts_to_swarm_on_the_same_machines_is_one_apply() {
    let Some((fleet, sw, s, _services)) = swarm_scenario("swmove") else {
        return;
    };
    let nodes = PlainNodes::new(&sw, &s.platform);
    s.write(&plain_on_nodes(&s, &fleet.image, &sw, 19240, "1.0.0"));
    s.apply_ok("prod");
    assert_eq!(
        versions(&sw, 19240),
        both("1.0.0"),
        "plain containers serve"
    );

    // The same machines as a Swarm: prod switches to `swarm:`, 2 replicas, host-mode ports.
    let mut text = swarm_manifest(&s, &fleet.image, &sw, 19240);
    text = text.replace("web: \"1.0.0\"", "web: \"1.1.0\"");
    s.write(&text);
    let plan = s.run(&["plan", "prod"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    for (node, _) in &sw.nodes {
        assert!(
            plan.stdout.contains(&format!("retires on {node}")),
            "{plan:?}"
        );
    }
    assert!(
        plan.stdout.contains("stop swmove-prod-web (1.0.0)")
            && plan.stdout.contains("remove network swmove-prod-default")
            && plan.stdout.contains("interruption"),
        "{plan:?}"
    );
    let json = s.run(&["plan", "prod", "--format", "json"]).json();
    assert_eq!(json["retire"].as_array().unwrap().len(), 2, "{json}");

    let out = s.apply_ok("prod");
    assert!(out.stdout.contains("retired"), "{out:?}");
    assert_eq!(
        versions(&sw, 19240),
        both("1.1.0"),
        "2/2 tasks serve, one per node"
    );
    assert!(
        nodes.plain().iter().all(|(_, _, running)| !running),
        "no plain container of prod runs: {:?}",
        nodes.plain()
    );
    assert!(
        nodes.plain().is_empty(),
        "retired ones removed: {:?}",
        nodes.plain()
    );
    let audit = s.run(&["audit", "prod", "--exit-code"]);
    assert_eq!(audit.code, 0, "{audit:?}");
    // Done: the old hosts are history, a second apply has nothing to do.
    let again = s.run(&["plan", "prod", "--detailed-exitcode"]);
    assert_eq!(again.code, 0, "{again:?}");

    // And back to plain hosts: refused while the cluster runs prod's services.
    s.write(&plain_on_nodes(&s, &fleet.image, &sw, 19240, "1.1.0"));
    let back = s.run(&["apply", "prod", "--yes"]);
    assert_eq!(back.code, 1, "{back:?}");
    assert!(
        back.stderr
            .contains("the cluster still runs its services (swmove-prod-web)"),
        "{back:?}"
    );
    assert_eq!(versions(&sw, 19240), both("1.1.0"), "nothing changed");
}

#[test]
fn a_move_whose_release_never_becomes_healthy_gives_the_hosts_back() {
    let Some((fleet, sw, s, _services)) = swarm_scenario("swmoveback") else {
        return;
    };
    let nodes = PlainNodes::new(&sw, &s.platform);
    s.write(&plain_on_nodes(&s, &fleet.image, &sw, 19241, "1.0.0"));
    s.apply_ok("prod");
    let before: Vec<String> = nodes.plain().into_iter().map(|(_, n, _)| n).collect();
    assert_eq!(before.len(), 2, "{before:?}");

    let mut text = swarm_manifest(&s, &fleet.image, &sw, 19241);
    text = text.replace("web: \"1.0.0\"", "web: \"broken\"");
    s.write(&text);
    let out = s.run(&["apply", "prod", "--yes", "--health-timeout", "30"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("was undone"), "{out:?}");
    assert_eq!(
        versions(&sw, 19241),
        both("1.0.0"),
        "the plain containers serve again: {out:?}"
    );
    let after: Vec<(usize, String, bool)> = nodes.plain();
    assert!(
        after
            .iter()
            .all(|(_, n, running)| *running && before.contains(n)),
        "the same containers, under their names, running: {after:?}"
    );
    let docker = manager(&sw);
    let left = block_on(async move { docker.inspect_service("swmoveback-prod-web", None).await });
    assert!(left.is_err(), "the move's service is removed: {left:?}");
}

#[test]
fn a_network_of_the_overlays_name_that_fleetpin_did_not_create_stops_the_move() {
    let Some((fleet, sw, s, _services)) = swarm_scenario("swforeign") else {
        return;
    };
    let nodes = PlainNodes::new(&sw, &s.platform);
    // prod's last plain-host commit names the nodes; one of them has a stranger's network.
    s.write(&plain_on_nodes(&s, &fleet.image, &sw, 19242, "1.0.0"));
    let d = nodes.nodes[1].clone();
    block_on(async move {
        d.create_network(bollard::models::NetworkCreateRequest {
            name: "swforeign-prod-default".into(),
            driver: Some("bridge".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    });
    s.write(&swarm_manifest(&s, &fleet.image, &sw, 19242));
    let out = s.run(&["apply", "prod", "--yes"]);
    assert_eq!(out.code, 1, "{out:?}");
    let node = &sw.nodes[1].0;
    assert!(
        out.stderr.contains(&format!(
            "{node} has a network swforeign-prod-default (bridge) that fleetpin did not create"
        )),
        "{out:?}"
    );
    let docker = manager(&sw);
    let left = block_on(async move { docker.inspect_service("swforeign-prod-web", None).await });
    assert!(left.is_err(), "nothing was created: {left:?}");
}

#[test]
fn a_deny_window_holds_a_swarm_apply_by_the_managers_clock() {
    let Some((fleet, sw, s, _services)) = swarm_scenario("swwindow") else {
        return;
    };
    s.write(&swarm_manifest(&s, &fleet.image, &sw, 19213));
    s.apply_ok("prod");
    // A deny window from a minute ago (UTC) for 2 h.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 60;
    let window = format!(
        "    windows:\n      - {{deny: \"{} {} * * *\", duration: 2h}}\n",
        (now / 60) % 60,
        (now / 3600) % 24
    );
    let text = std::fs::read_to_string(s.path()).unwrap();
    s.write(&text.replace("    versions:\n", &format!("{window}    versions:\n")));
    set_pin(&s, "1.0.0", "1.1.0");
    let o = s.run(&["apply", "prod", "--yes"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("held by window deny"), "{o:?}");
    // This machine's clock 3 h on says the window ended; the manager's does not.
    let o = s.run_prefixed(&["faketime", "-f", "+3h"], &["apply", "prod", "--yes"], &[]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("held by window deny"), "{o:?}");
    assert_eq!(versions(&sw, 19213), both("1.0.0"), "nothing changed");
    let o = s.run(&[
        "apply",
        "prod",
        "--yes",
        "--override-window",
        "hotfix INC-7",
    ]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(versions(&sw, 19213), both("1.1.0"));
}
