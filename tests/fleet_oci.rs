//! The reference through the registry, on the private fleet: `fleetpin publish` pushes the
//! reference to the fleet's registry, agents in two hosts' namespaces follow `oci://…:BRANCH`
//! through a TCP relay this test controls (so "the registry is unreachable" touches these agents
//! only, not the other suites pulling images), and on a `signed: true` environment:
//!
//! - a published pin serves on both hosts within the interval + 10 s;
//! - an artifact whose manifest was changed by hand, keeping the commit's old signature, is
//!   refused (audit shows it) and nothing is redeployed;
//! - the branch's tag moved back to an older, validly signed artifact is refused like a
//!   force-push;
//! - the registry unreachable for a minute leaves every container as it was, and the next
//!   publish after it returns is applied;
//! - a rollback there publishes its commit, and the agents keep it.
//!
//! Each test owns its platform name (`oc…`) and ports (196xx).

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::Scenario;
use support::agent::{Agent, AgentBox, bridge_address, wait_for};
use support::git::{public, ssh_key};

const INTERVAL_SECS: u64 = 2;

/// Environment for every fleetpin run here: the registry is on the fleet's private network.
const NO_PROXY: [(&str, &str); 2] = [("no_proxy", "*"), ("NO_PROXY", "*")];

/// git in the scenario's repository; panics on failure, returns stdout.
fn git(s: &Scenario, args: &[&str], input: Option<&[u8]>) -> String {
    let mut c = Command::new("git");
    c.arg("-C").arg(s.dir.path()).args(args);
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    {
        let mut stdin = child.stdin.take().unwrap();
        if let Some(i) = input {
            stdin.write_all(i).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Writes the manifest and commits it, signed by the repository's signing key.
fn commit(s: &Scenario, manifest: &str, message: &str) -> String {
    std::fs::write(s.path(), manifest).unwrap();
    git(s, &["add", "platform.yaml"], None);
    git(s, &["commit", "-q", "-S", "-m", message], None);
    s.head()
}

/// A TCP relay from `listen` to `target`, that can be cut (every connection closed, nothing
/// accepted) and restored: the registry as these agents see it.
struct Relay {
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    listen: String,
    /// Requests the agents sent, by method (`HEAD`, `GET`), counted from their request lines.
    seen: Arc<Mutex<std::collections::BTreeMap<String, usize>>>,
}

impl Relay {
    fn start(listen: &str, target: &str) -> Relay {
        let r = Relay {
            up: Arc::new(AtomicBool::new(true)),
            conns: Arc::default(),
            listen: listen.into(),
            seen: Arc::default(),
        };
        let listener = TcpListener::bind(listen).unwrap();
        let (up, conns, target) = (r.up.clone(), r.conns.clone(), target.to_string());
        let seen = r.seen.clone();
        std::thread::spawn(move || {
            for incoming in listener.incoming() {
                let Ok(client) = incoming else { continue };
                if !up.load(Ordering::SeqCst) {
                    // Cut: the connection is refused as it opens.
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                let mut held = conns.lock().unwrap();
                held.push(client.try_clone().unwrap());
                held.push(server.try_clone().unwrap());
                drop(held);
                for (i, (mut from, mut to)) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ]
                .into_iter()
                .enumerate()
                {
                    let seen = seen.clone();
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16384];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                            // What the agents ask: request lines start a read of the client side.
                            let text = String::from_utf8_lossy(&buf[..n]);
                            if i == 0
                                && let Some((method, rest)) = text.split_once(' ')
                                && rest.starts_with("/v2/")
                            {
                                *seen.lock().unwrap().entry(method.to_string()).or_default() += 1;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        r
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// The labels of the agent's status container on `host`.
fn status(s: &Scenario, host: &str) -> std::collections::HashMap<String, String> {
    // While an agent replaces it, the status steps aside as `….agent.old`.
    let name = format!("{}-test.agent", s.platform);
    s.try_inspect(host, &name)
        .or_else(|_| s.try_inspect(host, &format!("{name}.old")))
        .ok()
        .and_then(|c| c.config)
        .and_then(|c| c.labels)
        .unwrap_or_default()
}

fn web_id(s: &Scenario, host: &str) -> String {
    s.inspect(host, &format!("{}-test-web", s.platform))
        .id
        .unwrap_or_default()
}

fn publish(s: &Scenario, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["publish", "--format", "json"];
    all.extend_from_slice(args);
    let out = s.run_with(&all, &NO_PROXY);
    assert_eq!(out.code, 0, "publish {args:?}: {out:?}");
    out.json()
}

#[test]
fn agents_follow_the_published_reference_and_refuse_tampering_and_replays() {
    let (fleet, s) = fleet_scenario!("oc1");
    let port = 19601;
    let repository = format!("{}/{}/reference", fleet.registry, s.platform);

    // The operator: ops signs with an SSH key; allowed signers outside the repository.
    let keys = tempfile::tempdir().unwrap();
    let ops = ssh_key(keys.path(), "ops");
    let allowed = keys.path().join("allowed_signers");
    std::fs::write(&allowed, format!("ops@acme.example {}\n", public(&ops))).unwrap();
    for (k, v) in [
        ("user.name", "ops"),
        ("user.email", "ops@acme.example"),
        ("gpg.format", "ssh"),
        ("user.signingkey", ops.to_str().unwrap()),
        ("gpg.ssh.allowedSignersFile", allowed.to_str().unwrap()),
    ] {
        git(&s, &["config", k, v], None);
    }
    // The git remote the operator pushes to (the agents never read it).
    let bare = s.dir.path().join("served.git");
    git(&s, &["init", "-q", "--bare", bare.to_str().unwrap()], None);
    git(
        &s,
        &["remote", "add", "origin", bare.to_str().unwrap()],
        None,
    );

    let manifest = |v: &str| {
        s.web(&["h1", "h2"], port, v).replace(
            "  test:\n",
            "  test:\n    pull: oci\n    trust: {signed: true, signers: [ops@acme.example]}\n",
        ) + &format!("reference: {{repository: \"{repository}\", insecure: true}}\n")
    };
    let v1 = commit(&s, &manifest("1.0.0"), "1.0.0");
    let branch = git(&s, &["symbolic-ref", "--short", "HEAD"], None);
    git(&s, &["push", "-q", "-u", "origin", &branch], None);
    let p1 = publish(&s, &[]);
    assert_eq!(p1["commit"], v1.as_str(), "{p1}");
    assert_eq!(p1["tags"], serde_json::json!([v1, branch]), "{p1}");
    let d1 = p1["digest"].as_str().unwrap().to_string();
    // Nothing of the repository but the manifest's path travels (commit, root tree, blob).
    assert_eq!(p1["objects"], 3, "{p1}");

    // The agents reach the registry through a relay on the bridge.
    let addr = bridge_address(&s.host("h1").netns);
    let relay = Relay::start(&format!("{addr}:19602"), &fleet.registry);
    let followed = format!("oci://{}/{}/reference:{branch}", relay.listen, s.platform);
    let start = |host: &str| {
        let args: Vec<String> = [
            "agent",
            "--ref",
            &followed,
            "--insecure-registry",
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
            "--allowed-signers",
            allowed.to_str().unwrap(),
            "--cache-dir",
            s.dir.path().join(format!("cache-{host}")).to_str().unwrap(),
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        let log = s.dir.path().join(format!("agent-{host}.log"));
        Agent::start(&s.host(host).netns, &args, &NO_PROXY, log)
    };
    let (a1, a2) = (start("h1"), start("h2"));
    let agents = [&a1, &a2];
    let serves = |v: &str| {
        ["h1", "h2"]
            .iter()
            .all(|h| s.version(h, port).as_deref() == Some(v))
    };
    wait_for(
        Duration::from_secs(90),
        "1.0.0 on h1 and h2",
        &agents,
        || serves("1.0.0"),
    );
    wait_for(
        Duration::from_secs(30),
        "the status names the artifact",
        &agents,
        || {
            ["h1", "h2"]
                .iter()
                .all(|h| status(&s, h).get("io.fleetpin.agent.digest") == Some(&d1))
        },
    );

    // A published pin serves on both within the interval + 10 s.
    let v2 = commit(&s, &manifest("1.1.0"), "1.1.0");
    git(&s, &["push", "-q"], None);
    publish(&s, &[]);
    let published = Instant::now();
    wait_for(
        Duration::from_secs(INTERVAL_SECS + 10),
        "1.1.0 on h1 and h2 within the interval + 10 s",
        &agents,
        || serves("1.1.0"),
    );
    println!(
        "published to served on 2 hosts: {:.1} s",
        published.elapsed().as_secs_f64()
    );
    wait_for(
        Duration::from_secs(30),
        "both agents in sync at v2",
        &agents,
        || {
            ["h1", "h2"].iter().all(|h| {
                let st = status(&s, h);
                st.get("io.fleetpin.agent.applied") == Some(&v2)
            })
        },
    );
    let ids = || (web_id(&s, "h1"), web_id(&s, "h2"));
    let running = ids();

    // Idle, the tag unmoved: each sync is one HEAD of the tag, nothing downloaded, no probe.
    relay.seen.lock().unwrap().clear();
    std::thread::sleep(Duration::from_secs(5 * INTERVAL_SECS));
    let seen = relay.seen.lock().unwrap().clone();
    println!("idle requests over {} s: {seen:?}", 5 * INTERVAL_SECS);
    assert!(seen.get("HEAD").is_some_and(|n| *n >= 2), "{seen:?}");
    assert_eq!(seen.keys().collect::<Vec<_>>(), ["HEAD"], "{seen:?}");

    // Changed by hand, old signature kept: the next signed commit (1.2.0) with its manifest
    // edited to 2.0.0, its tree and commit object rewritten around the same `gpgsig`.
    let v3 = commit(&s, &manifest("1.2.0"), "1.2.0");
    let blob = git(
        &s,
        &["hash-object", "-w", "--stdin"],
        Some(manifest("2.0.0").as_bytes()),
    );
    let tree: String = git(&s, &["ls-tree", &v3], None)
        .lines()
        .map(|l| {
            if l.ends_with("\tplatform.yaml") {
                format!("100644 blob {blob}\tplatform.yaml\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let tree = git(&s, &["mktree"], Some(tree.as_bytes()));
    let raw = git(&s, &["cat-file", "commit", &v3], None) + "\n";
    let old_tree = git(&s, &["rev-parse", &format!("{v3}^{{tree}}")], None);
    let forged = raw.replacen(&format!("tree {old_tree}"), &format!("tree {tree}"), 1);
    assert!(forged.contains("gpgsig"), "the signature is kept: {forged}");
    let forged = git(
        &s,
        &["hash-object", "-t", "commit", "-w", "--stdin"],
        Some(forged.as_bytes()),
    );
    publish(&s, &["--rev", &forged, "--tag", &branch]);
    wait_for(
        Duration::from_secs(30),
        "both agents refusing the forged artifact",
        &agents,
        || {
            ["h1", "h2"].iter().all(|h| {
                let st = status(&s, h);
                st.get("io.fleetpin.agent.result").map(String::as_str) == Some("refused")
                    && st.get("io.fleetpin.agent.commit") == Some(&forged)
            })
        },
    );
    let audit = s.run(&["audit", "test", "--format", "json"]).json();
    for a in audit["agents"].as_array().unwrap() {
        assert_eq!(a["state"], "refused", "{audit}");
        let reason = a["reason"].as_str().unwrap_or_default();
        assert!(reason.contains(&forged[..7]), "{reason}");
    }
    println!("forged: {}", audit["agents"][0]["reason"]);
    assert_eq!(ids(), running, "nothing redeployed");
    assert!(serves("1.1.0"));

    // The branch's tag moved back to v1's artifact (validly signed): refused like a force-push.
    publish(&s, &["--rev", &v1, "--tag", &branch]);
    wait_for(
        Duration::from_secs(30),
        "both agents refusing the replay",
        &agents,
        || {
            ["h1", "h2"].iter().all(|h| {
                status(&s, h)
                    .get("io.fleetpin.agent.reason")
                    .is_some_and(|r| r.contains("is not a descendant of"))
            })
        },
    );
    assert_eq!(ids(), running, "nothing redeployed");

    // The registry unreachable for a minute: every container as it was, the agents erring.
    relay.cut();
    let cut = Instant::now();
    wait_for(
        Duration::from_secs(30),
        "both agents erring without the registry",
        &agents,
        || {
            ["h1", "h2"].iter().all(|h| {
                status(&s, h)
                    .get("io.fleetpin.agent.result")
                    .map(String::as_str)
                    == Some("error")
            })
        },
    );
    while cut.elapsed() < Duration::from_secs(60) {
        assert_eq!(ids(), running, "a registry that is down changes nothing");
        std::thread::sleep(Duration::from_secs(2));
    }
    assert!(serves("1.1.0"));
    relay.restore();
    // The next publish after it returns (v3, signed, descends from v2) is applied.
    git(&s, &["push", "-q"], None);
    publish(&s, &[]);
    wait_for(
        Duration::from_secs(120),
        "1.2.0 on h1 and h2 after the registry returned",
        &agents,
        || serves("1.2.0"),
    );

    wait_for(
        Duration::from_secs(60),
        "both agents in sync at v3",
        &agents,
        || {
            ["h1", "h2"].iter().all(|h| {
                let st = status(&s, h);
                st.get("io.fleetpin.agent.applied") == Some(&v3)
                    && matches!(
                        st.get("io.fleetpin.agent.result").map(String::as_str),
                        Some("converged" | "in-sync")
                    )
            })
        },
    );

    // A rollback there publishes its commit (signed by ops), and the agents keep it.
    let out = s.run_with(&["rollback", "test", "--yes", "--push"], &NO_PROXY);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("published it to"), "{out:?}");
    let rolled = s.head();
    // An agent that synced between the hosts' change and the publish saw the old artifact and
    // may have put 1.2.0 back for a moment (docs/agent.md): once published, 1.1.0 is kept.
    wait_for(
        Duration::from_secs(60),
        "1.1.0 again on h1 and h2",
        &agents,
        || serves("1.1.0"),
    );
    wait_for(
        Duration::from_secs(30),
        "both agents in sync at the rollback commit",
        &agents,
        || {
            ["h1", "h2"].iter().all(|h| {
                let st = status(&s, h);
                st.get("io.fleetpin.agent.applied") == Some(&rolled)
                    && st.get("io.fleetpin.agent.result").map(String::as_str) == Some("in-sync")
            })
        },
    );
    let kept = ids();
    std::thread::sleep(Duration::from_secs(3 * INTERVAL_SECS));
    assert!(serves("1.1.0"), "the agents keep the rollback");
    assert_eq!(ids(), kept);
    let audit = s.run(&["audit", "test", "--format", "json"]).json();
    for a in audit["agents"].as_array().unwrap() {
        assert_eq!(a["state"], "ok", "{audit}");
        assert!(
            a["digest"].as_str().unwrap().starts_with("sha256:"),
            "{audit}"
        );
        assert_eq!(a["follows"], followed.as_str(), "{audit}");
    }
}

#[test]
fn on_an_oci_environment_rollback_and_promote_must_publish() {
    let dir = tempfile::tempdir().unwrap();
    support::git::cli_as("ops", dir.path(), &["init", "-q"], &[]);
    std::fs::write(
        dir.path().join("platform.yaml"),
        "platform: oc2\nservices:\n  web: {image: r/web}\nreference: {repository: \"reg.example:5000/oc2/ref\"}\nenvironments:\n  a:\n    hosts:\n      h: {endpoint: \"unix:///nonexistent/a.sock\"}\n    versions: {web: \"1.0.0\"}\n  b:\n    pull: oci\n    hosts:\n      h: {endpoint: \"unix:///nonexistent/b.sock\"}\n    versions: {web: \"1.0.0\"}\n",
    )
    .unwrap();
    support::git::cli_as("ops", dir.path(), &["add", "platform.yaml"], &[]);
    support::git::cli_as("ops", dir.path(), &["commit", "-qm", "m"], &[]);
    for args in [
        &["rollback", "b", "--yes"][..],
        &["promote", "a", "b"],
        &["promote", "a", "b", "--no-push"],
    ] {
        let out = support::run::run_in(dir.path(), args);
        assert_eq!(out.code, 1, "{args:?}: {out:?}");
        assert!(
            out.stderr
                .contains("followed through the registry (`pull: oci`)")
                && out.stderr.contains("reg.example:5000/oc2/ref"),
            "{args:?}: {}",
            out.stderr
        );
    }
}

/// The agent's image (packaging/agent) follows an `oci://` reference with no git remote at all:
/// the host's network, its engine's socket, the registry's address.
#[test]
fn the_agent_image_follows_an_oci_reference_without_git() {
    let (fleet, s) = fleet_scenario!("oc3");
    let (host, port) = ("h3", 19631);
    let tag = format!("fleetpin-agent:{}", s.platform);
    AgentBox::build_image(&s.host(host).unix, &tag);
    let repository = format!("{}/{}/reference", fleet.registry, s.platform);
    let manifest = |v: &str| {
        s.web(&[host], port, v)
            .replace("  test:\n", "  test:\n    pull: oci\n")
            + &format!("reference: {{repository: \"{repository}\", insecure: true}}\n")
    };
    s.write(&manifest("1.0.0"));
    let branch = git(&s, &["symbolic-ref", "--short", "HEAD"], None);
    publish(&s, &[]);
    let agent = AgentBox::run(
        &s.host(host).unix,
        &format!("{}-agentbox", s.platform),
        &[],
        &tag,
        &[
            "--ref",
            &format!("oci://{repository}:{branch}"),
            "--insecure-registry",
            "--env",
            "test",
            "--host",
            host,
            "--interval",
            &format!("{INTERVAL_SECS}s"),
            "--health-timeout",
            "20",
        ],
    );
    agent.until(Duration::from_secs(90), "1.0.0 serves", || {
        s.version(host, port).as_deref() == Some("1.0.0")
    });
    s.write(&manifest("1.1.0"));
    publish(&s, &[]);
    agent.until(Duration::from_secs(60), "1.1.0 serves", || {
        s.version(host, port).as_deref() == Some("1.1.0")
    });
}
