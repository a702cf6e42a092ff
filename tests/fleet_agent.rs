//! The pull agent (`fleetpin agent`) on the private fleet. A bare repository is served by
//! `git daemon`, started here on the fleet bridge's address; one agent per host runs in that
//! host's network namespace (`ip netns exec`) and talks to its engine over the host's unix socket,
//! as an agent on a server would. A pushed pin reaches every host; a release that never gets
//! healthy is refused on every host once, with no retry loop; moving the pin back relaunches the
//! retained container; audit shows each agent; SIGTERM stops an agent at once; SIGKILL mid-swap
//! and a restart repair; an agent also follows an ssh:// remote through the fleet's sshd, and
//! the image of packaging/agent does as a container on h3 with the engine's socket mounted.
//! Each test owns its platform name (`ag…`) and ports (191xx).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::Scenario;
use support::agent::{Agent, AgentBox, bridge_address, wait_for};
use support::webhook::{Request, receiver_on};

const INTERVAL_SECS: u64 = 2;

/// Runs the git CLI in `dir` as the operator; panics on failure.
fn git(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> String {
    support::git::cli_as("ops", dir, args, envs)
}

/// `git daemon` serving `base` on `addr:port`, stopped on drop.
struct GitDaemon {
    child: Child,
}

impl GitDaemon {
    fn start(base: &Path, addr: &str, port: u16) -> GitDaemon {
        // `git daemon` runs `git-daemon` as its child: start that one, so that killing it stops
        // the server.
        let exec_path = git(Path::new("/"), &["--exec-path"], &[]);
        let child = Command::new(Path::new(&exec_path).join("git-daemon"))
            .args([
                "--reuseaddr",
                "--export-all",
                &format!("--listen={addr}"),
                &format!("--port={port}"),
                &format!("--base-path={}", base.display()),
            ])
            .arg(base)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("git daemon (Debian's git) starts");
        // Ready when it accepts connections.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect((addr, port)).is_err() {
            assert!(Instant::now() < deadline, "git daemon did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
        GitDaemon { child }
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A bare repository the scenario's manifest is pushed to (`main`).
fn reference(s: &Scenario) -> PathBuf {
    let bare = s.dir.path().join("served").join("platform.git");
    git(
        Path::new("/"),
        &["init", "-q", "--bare", bare.to_str().unwrap()],
        &[],
    );
    git(
        s.dir.path(),
        &["remote", "add", "origin", bare.to_str().unwrap()],
        &[],
    );
    bare
}

/// Writes and commits the manifest, pushes it to the reference; returns the commit.
fn publish(s: &Scenario, manifest: &str) -> String {
    s.write(manifest);
    git(
        s.dir.path(),
        &["push", "-q", "-f", "origin", "HEAD:refs/heads/main"],
        &[],
    );
    s.head()
}

/// The agent's arguments for `host` following `url`.
fn agent_args(s: &Scenario, url: &str, host: &str) -> Vec<String> {
    [
        "agent",
        "--repo",
        url,
        "--branch",
        "main",
        "--env",
        "test",
        "--host",
        host,
        "--endpoint",
        &s.host(host).unix,
        "--interval",
        &format!("{INTERVAL_SECS}s"),
        "--health-timeout",
        "20",
        "--cache-dir",
        s.dir.path().join(format!("cache-{host}")).to_str().unwrap(),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect()
}

/// Starts an agent for `host` in that host's network namespace.
fn start_agent(s: &Scenario, url: &str, host: &str, envs: &[(&str, &str)]) -> Agent {
    let log = s.dir.path().join(format!("agent-{host}.log"));
    Agent::start(&s.host(host).netns, &agent_args(s, url, host), envs, log)
}

/// Waits (a minute at most) until `agent` is paused at fault point `started`.
fn wait_started(agent: &Agent, what: &str) {
    wait_for(Duration::from_secs(60), what, &[agent], || {
        agent.output().contains("fault point started")
    });
}

/// The id of the container named `name` on `host`.
fn id_of(s: &Scenario, host: &str, name: &str) -> String {
    s.inspect(host, name).id.unwrap_or_default()
}

/// The labels of the agent's status container on `host`, if there is one.
fn status(s: &Scenario, host: &str) -> Option<std::collections::HashMap<String, String>> {
    // While an agent replaces it, the status steps aside as `….agent.old`.
    let name = format!("{}-test.agent", s.platform);
    s.try_inspect(host, &name)
        .or_else(|_| s.try_inspect(host, &format!("{name}.old")))
        .ok()
        .and_then(|c| c.config)
        .and_then(|c| c.labels)
}

/// The bodies of the next `n` notifications (each within a minute).
fn drain(rx: &std::sync::mpsc::Receiver<Request>, n: usize) -> Vec<serde_json::Value> {
    (0..n).map(|_| support::webhook::next(rx).body).collect()
}

/// `test` on h1 and h2, followed by agents (`pull: true`).
fn manifest(s: &Scenario, port: u16, version: &str) -> String {
    s.manifest(&["h1", "h2"], &[("web", port, "")], &[("web", version)])
        .replace("  test:\n", "  test:\n    pull: true\n")
}

#[test]
fn agents_follow_pushed_pins_refuse_a_broken_release_once_and_relaunch_when_moved_back() {
    let (_, s) = fleet_scenario!("ag1");
    let port = 19101;
    reference(&s);
    let addr = bridge_address(&s.host("h1").netns);
    let _daemon = GitDaemon::start(&s.dir.path().join("served"), &addr, 19102);
    let url = format!("git://{addr}:19102/platform.git");
    // The agents post to a webhook in the root namespace when their news changes.
    let (hook_port, hooks) = receiver_on(&addr);
    let manifest = |s: &Scenario, port: u16, version: &str| {
        manifest(s, port, version)
            + &format!("notify:\n  - webhook: http://{addr}:{hook_port}/agent\n")
    };
    let v1 = publish(&s, &manifest(&s, port, "1.0.0"));
    // A pull environment: a push apply refuses, and audit shows the hosts have no agent yet.
    let out = s.run(&["apply", "test", "--yes"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("followed by pull agents"), "{out:?}");
    let doc = s.run(&["audit", "test", "--format", "json"]).json();
    let states: Vec<&str> = doc["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["none", "none"], "{doc}");
    let mut agents = vec![
        start_agent(&s, &url, "h1", &[]),
        start_agent(&s, &url, "h2", &[]),
    ];
    let refs: Vec<&Agent> = agents.iter().collect();
    let serving = |v: &str| {
        ["h1", "h2"]
            .iter()
            .all(|h| s.version(h, port).as_deref() == Some(v))
    };
    wait_for(
        Duration::from_secs(90),
        "1.0.0 serves on h1 and h2",
        &refs,
        || serving("1.0.0"),
    );
    let stable = format!("{}-test-web", s.platform);
    let first_id = id_of(&s, "h1", &stable);
    wait_for(
        Duration::from_secs(30),
        "both agents record the sync",
        &refs,
        || {
            ["h1", "h2"]
                .iter()
                .all(|h| status(&s, h).is_some_and(|l| l["io.fleetpin.agent.commit"] == v1))
        },
    );

    // One message per agent: each created web 1.0.0.
    let mut posts = drain(&hooks, 2);
    posts.sort_by_key(|b| b["hosts"][0]["host"].as_str().unwrap_or("").to_string());
    for (post, h) in posts.iter().zip(["h1", "h2"]) {
        assert_eq!(post["command"], "agent", "{post}");
        assert_eq!(post["result"], "success", "{post}");
        assert_eq!(post["commit"], v1.as_str(), "{post}");
        assert_eq!(post["hosts"][0]["host"], h, "{post}");
        assert_eq!(post["changes"][0]["to"], "1.0.0", "{post}");
    }

    // The status container is never an orphan to plan.
    let plan = s.run(&["plan", "test", "--format", "json"]);
    assert!(!plan.stdout.contains("orphan"), "{plan:?}");
    assert!(plan.stdout.contains("\"hosts\""), "{plan:?}");

    // A pushed pin reaches every host. How fast is measured by benches/agent_spread.py (12
    // hosts, docs/benchmarks.md), not here: this bound only says it arrives, on a machine
    // shared by parallel suites (a gate took 24 s there once).
    publish(&s, &manifest(&s, port, "1.1.0"));
    let pushed = Instant::now();
    let limit = Duration::from_secs(INTERVAL_SECS + INTERVAL_SECS / 5 + 1 + 10 + 20);
    wait_for(limit, "1.1.0 serves on h1 and h2", &refs, || {
        serving("1.1.0")
    });
    println!(
        "1.1.0 served on h1 and h2 {:.1} s after the push (interval {INTERVAL_SECS} s)",
        pushed.elapsed().as_secs_f64()
    );
    assert_eq!(drain(&hooks, 2).len(), 2, "one message per agent for 1.1.0");

    // A release that never gets healthy: refused on every host, once; the hosts stay on 1.1.0.
    let broken = publish(&s, &manifest(&s, port, "broken"));
    wait_for(
        Duration::from_secs(90),
        "both agents refuse `broken`",
        &refs,
        || {
            ["h1", "h2"].iter().all(|h| {
                status(&s, h).is_some_and(|l| {
                    l["io.fleetpin.agent.commit"] == broken
                        && l["io.fleetpin.agent.result"] == "refused"
                })
            })
        },
    );
    // The service's containers (the status container is replaced at every sync).
    let services_of = |h: &str| {
        s.containers(h)
            .into_iter()
            .filter(|(n, _, _)| !n.contains(".agent"))
            .collect::<Vec<_>>()
    };
    let failed_of = |h: &str| {
        s.containers(h)
            .into_iter()
            .filter(|(n, _, _)| n.contains(".failed-"))
            .map(|(n, _, _)| n)
            .collect::<Vec<_>>()
    };
    let before: Vec<_> = ["h1", "h2"]
        .iter()
        .map(|h| (services_of(h), failed_of(h)))
        .collect();
    for (h, (_, failed)) in ["h1", "h2"].iter().zip(&before) {
        assert_eq!(
            failed.len(),
            1,
            "{h}: one failed container, kept for its logs"
        );
    }
    // Each agent posted the refusal once.
    for post in drain(&hooks, 2) {
        assert_eq!(post["result"], "failure", "{post}");
        assert_eq!(post["commit"], broken.as_str(), "{post}");
        assert!(
            post["text"].as_str().unwrap().contains("broken"),
            "the chat line names the release: {post}"
        );
    }
    // Several intervals later: nothing was tried again, the containers did not grow.
    std::thread::sleep(Duration::from_secs(4 * INTERVAL_SECS + 2));
    let again: Vec<_> = hooks.try_iter().map(|r| r.body).collect();
    assert!(
        again.is_empty(),
        "a refusal that repeats is not news: {again:?}"
    );
    for (h, (containers, failed)) in ["h1", "h2"].iter().zip(&before) {
        assert_eq!(
            &failed_of(h),
            failed,
            "{h}: the broken release was not tried again"
        );
        assert_eq!(
            &services_of(h),
            containers,
            "{h}: the containers stopped changing"
        );
        assert_eq!(s.version(h, port).as_deref(), Some("1.1.0"), "{h}");
    }

    // audit shows each agent, at the reference's commit, refusing the release.
    let out = s.run(&["audit", "test", "--format", "json"]);
    let doc = out.json();
    let agents_json = doc["agents"]
        .as_array()
        .unwrap_or_else(|| panic!("{out:?}"));
    assert_eq!(agents_json.len(), 2, "{out:?}");
    for a in agents_json {
        assert_eq!(a["commit"], broken.as_str(), "{out:?}");
        assert_eq!(a["result"], "refused", "{out:?}");
        assert_eq!(a["state"], "refused", "{out:?}");
    }
    let table = s.run(&["audit", "test"]);
    let after = table
        .stdout
        .split_once("Pull agents:")
        .unwrap_or_else(|| panic!("no agents table: {table:?}"))
        .1;
    for h in ["h1", "h2"] {
        assert!(
            after.lines().any(|l| l.contains(&format!(" {h} "))
                && l.contains("refused")
                && l.contains(&broken[..12])),
            "{h}'s agent in the table: {table:?}"
        );
    }

    let md = s.run(&["audit", "test", "--format", "markdown"]);
    assert!(md.stdout.contains("## Pull agents"), "{md:?}");
    assert!(md.stdout.contains("| h1 | **refused** |"), "{md:?}");
    let (html, page) = s.audit_html(&["test"]);
    let section = page
        .split_once("<h2>Pull agents</h2>")
        .unwrap_or_else(|| panic!("no agents in the HTML report: {html:?}"))
        .1;
    for h in ["h1", "h2"] {
        assert!(
            section.contains(&format!("<td>{h}</td><td class=\"status\">refused</td>")),
            "{h} in the HTML report: {section}"
        );
    }

    // Moving the pin back (a revert) relaunches the retained 1.0.0 container: the same id.
    let back = publish(&s, &manifest(&s, port, "1.0.0"));
    wait_for(Duration::from_secs(60), "1.0.0 serves again", &refs, || {
        serving("1.0.0")
    });
    assert_eq!(
        id_of(&s, "h1", &stable),
        first_id,
        "the retained container runs again"
    );
    wait_for(
        Duration::from_secs(30),
        "the agents sync the revert",
        &refs,
        || {
            ["h1", "h2"]
                .iter()
                .all(|h| status(&s, h).is_some_and(|l| l["io.fleetpin.agent.commit"] == back))
        },
    );
    let doc = s.run(&["audit", "test", "--format", "json"]).json();
    for a in doc["agents"].as_array().unwrap() {
        assert_eq!(a["state"], "ok", "{doc}");
    }
    for post in drain(&hooks, 2) {
        assert_eq!(post["result"], "success", "{post}");
        assert_eq!(post["commit"], back.as_str(), "{post}");
    }

    // SIGTERM stops an idle agent at once, exit 0.
    drop(refs);
    for a in &mut agents {
        a.signal(libc::SIGTERM);
        let code = a.wait_exit(Duration::from_secs(10));
        assert_eq!(code, Some(0), "{}", a.output());
    }
    // No sync for 3 intervals: audit calls the agents stale.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let doc = s.run(&["audit", "test", "--format", "json"]).json();
        if doc["agents"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["state"] == "stale")
        {
            break;
        }
        assert!(Instant::now() < deadline, "agents not stale: {doc}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn an_agent_killed_mid_swap_repairs_when_restarted_and_one_terminated_mid_swap_finishes_it() {
    let (_, s) = fleet_scenario!("ag2");
    let port = 19111;
    let bare = reference(&s);
    let url = format!("file://{}", bare.display());
    publish(
        &s,
        &s.manifest(&["h1"], &[("web", port, "")], &[("web", "1.0.0")]),
    );
    let once = |envs: &[(&str, &str)]| {
        let mut args = agent_args(&s, &url, "h1");
        args.push("--once".into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        s.run_with(&args, envs)
    };
    let out = once(&[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(s.version("h1", port).as_deref(), Some("1.0.0"));

    // The next release: the agent is killed once the new container has started.
    publish(
        &s,
        &s.manifest(&["h1"], &[("web", port, "")], &[("web", "1.1.0")]),
    );
    let mut agent = start_agent(&s, &url, "h1", &[("FLEETPIN_FAULT_PAUSE", "started")]);
    wait_started(&agent, "the agent reaches the fault point");
    agent.signal(libc::SIGKILL);
    assert!(agent.wait_exit(Duration::from_secs(10)).is_some());
    assert!(
        s.containers("h1")
            .iter()
            .any(|(n, _, _)| n.contains(".new-") || n.contains(".old-")),
        "the kill left a half-done swap: {:?}",
        s.containers("h1")
    );

    // Restarted, it repairs and converges.
    let out = once(&[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(s.version("h1", port).as_deref(), Some("1.1.0"));
    let names: Vec<String> = s.containers("h1").into_iter().map(|(n, _, _)| n).collect();
    assert!(
        names
            .iter()
            .all(|n| !n.contains(".new-") && !n.contains(".old-")),
        "{names:?}"
    );

    // SIGTERM mid-swap: the swap in flight finishes (gate and all), then the agent exits 0.
    publish(
        &s,
        &s.manifest(&["h1"], &[("web", port, "")], &[("web", "1.2.0")]),
    );
    let mut agent = start_agent(
        &s,
        &url,
        "h1",
        &[
            ("FLEETPIN_FAULT_PAUSE", "started"),
            ("FLEETPIN_FAULT_PAUSE_SECS", "3"),
        ],
    );
    wait_started(&agent, "the agent is mid-swap");
    agent.signal(libc::SIGTERM);
    let code = agent.wait_exit(Duration::from_secs(90));
    assert_eq!(code, Some(0), "{}", agent.output());
    assert_eq!(
        s.version("h1", port).as_deref(),
        Some("1.2.0"),
        "{}",
        agent.output()
    );
    let names: Vec<String> = s.containers("h1").into_iter().map(|(n, _, _)| n).collect();
    assert!(
        names
            .iter()
            .all(|n| !n.contains(".new-") && !n.contains(".old-")),
        "the swap was finished, not left for repair: {names:?}"
    );
}

#[test]
fn an_agent_follows_an_ssh_remote() {
    let (fleet, ssh) = require_ssh!();
    let s = Scenario::new(&fleet, "ag3");
    let port = 19121;
    let bare = reference(&s);
    // The sshd runs as its user on this machine: the repository must be readable by it.
    let url = format!("ssh://{}@{}{}", ssh.user, ssh.addr, bare.display());
    publish(
        &s,
        &s.manifest(&["h1"], &[("web", port, "")], &[("web", "1.0.0")]),
    );
    let mut args = agent_args(&s, &url, "h1");
    args.push("--once".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let command = ssh.command();
    let out = s.run_with(&args, &[("GIT_SSH_COMMAND", command.as_str())]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(s.version("h1", port).as_deref(), Some("1.0.0"));
    let l = status(&s, "h1").expect("the sync is recorded");
    assert_eq!(l["io.fleetpin.agent.commit"], s.head());
    assert_eq!(l["io.fleetpin.agent.repo"], url);
}

#[test]
fn on_a_pull_environment_rollback_and_promote_must_push() {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q"], &[]);
    std::fs::write(
        dir.path().join("platform.yaml"),
        "platform: ag4\nservices:\n  web: {image: r/web}\nenvironments:\n  a:\n    hosts:\n      h: {endpoint: \"unix:///nonexistent/a.sock\"}\n    versions: {web: \"1.0.0\"}\n  b:\n    pull: true\n    hosts:\n      h: {endpoint: \"unix:///nonexistent/b.sock\"}\n    versions: {web: \"1.0.0\"}\n",
    )
    .unwrap();
    git(dir.path(), &["add", "platform.yaml"], &[]);
    git(dir.path(), &["commit", "-qm", "m"], &[]);
    let run = |args: &[&str]| {
        let out = support::run::run_in(dir.path(), args);
        (Some(out.code), out.stderr)
    };
    for args in [
        &["apply", "b", "--yes"][..],
        &["rollback", "b", "--yes"],
        &["rollback", "b", "--yes", "--no-commit"],
        &["promote", "a", "b"],
        &["promote", "a", "b", "--no-push"],
    ] {
        let (code, stderr) = run(args);
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("followed by pull agents"),
            "{args:?}: {stderr}"
        );
    }
    // With --push, the refusal is not about pull (the host is simply not there).
    let (code, stderr) = run(&["rollback", "b", "--yes", "--push"]);
    assert_ne!(code, Some(0));
    assert!(!stderr.contains("followed by pull agents"), "{stderr}");
}

/// `docker` (the CLI) against the engine of `host`; its stdout, or a panic with its stderr.
fn docker(s: &Scenario, host: &str, args: &[&str]) -> String {
    let mut cmd = Command::new("docker");
    cmd.args(args).env("DOCKER_HOST", &s.host(host).unix);
    support::run::stdout_ok(&mut cmd, &format!("docker {args:?} on {host}"))
}

#[test]
fn the_agent_image_follows_the_reference_as_a_container_with_the_socket_mounted() {
    let (fleet, ssh) = require_ssh!();
    let s = Scenario::new(&fleet, "ag5");
    let (host, port) = ("h3", 19131);
    // The image of packaging/agent: the release binary when CI built one, else this test's.
    let tag = format!("fleetpin-agent:{}", s.platform);
    let (binary, built) = AgentBox::build_image(&s.host(host).unix, &tag);
    println!("agent image from {binary}: {}", built.trim());
    let layers = docker(
        &s,
        host,
        &["image", "inspect", "-f", "{{len .RootFS.Layers}}", &tag],
    );
    assert_eq!(layers, "1", "FROM scratch: one layer, no base image");

    // Over ssh:// through the fleet's sshd, the transport that needs most of the image: ssh, its
    // key and known_hosts mounted at /root/.ssh, and the /bin/sh git runs ssh through.
    let bare = reference(&s);
    let url = format!("ssh://{}@{}{}", ssh.user, ssh.addr, bare.display());
    let keys = std::path::Path::new(&ssh.config).parent().unwrap();
    let dot_ssh = s.dir.path().join("dot-ssh");
    std::fs::create_dir(&dot_ssh).unwrap();
    for f in ["id_ed25519", "known_hosts"] {
        std::fs::copy(keys.join(f), dot_ssh.join(f)).unwrap();
    }
    std::fs::write(
        dot_ssh.join("config"),
        format!(
            "Host {}\n  IdentityFile /root/.ssh/id_ed25519\n  IdentitiesOnly yes\n  StrictHostKeyChecking yes\n",
            ssh.addr
        ),
    )
    .unwrap();
    let manifest = |v: &str| {
        s.manifest(&[host], &[("web", port, "")], &[("web", v)])
            .replace("  test:\n", "  test:\n    pull: true\n")
    };
    let v1 = publish(&s, &manifest("1.0.0"));

    // As docs/agent.md runs it: the host's network, its engine's socket at the default path.
    let interval = format!("{INTERVAL_SECS}s");
    let agent = AgentBox::run(
        &s.host(host).unix,
        &format!("{}-agentbox", s.platform),
        &[
            "--stop-timeout",
            "60",
            "-v",
            &format!("{}:/root/.ssh:ro", dot_ssh.display()),
        ],
        &tag,
        &[
            "--repo",
            &url,
            "--branch",
            "main",
            "--env",
            "test",
            "--host",
            host,
            "--interval",
            &interval,
            "--health-timeout",
            "20",
        ],
    );
    agent.until(Duration::from_secs(90), "1.0.0 serves", || {
        s.version(host, port).as_deref() == Some("1.0.0")
    });
    agent.until(Duration::from_secs(30), "the sync is recorded", || {
        status(&s, host).is_some_and(|l| l["io.fleetpin.agent.commit"] == v1)
    });
    let v2 = publish(&s, &manifest("1.1.0"));
    agent.until(Duration::from_secs(60), "1.1.0 serves", || {
        s.version(host, port).as_deref() == Some("1.1.0")
    });
    agent.until(
        Duration::from_secs(30),
        "the second sync is recorded",
        || {
            status(&s, host).is_some_and(|l| {
                l["io.fleetpin.agent.commit"] == v2 && l["io.fleetpin.agent.result"] == "converged"
            })
        },
    );
    let doc = s.run(&["audit", "test", "--format", "json"]).json();
    assert_eq!(doc["agents"][0]["state"], "ok", "{doc}");

    // `docker stop` (SIGTERM) of an idle agent: it exits 0 at once.
    let stopping = Instant::now();
    docker(&s, host, &["stop", &agent.name]);
    let took = stopping.elapsed();
    let code = docker(
        &s,
        host,
        &["inspect", "-f", "{{.State.ExitCode}}", &agent.name],
    );
    assert_eq!(code, "0", "{}", agent.logs());
    println!("docker stop took {:.1} s", took.as_secs_f64());
    assert!(
        took < Duration::from_secs(10),
        "SIGTERM stops it within 10 s, not the stop timeout: {took:?}"
    );
}
