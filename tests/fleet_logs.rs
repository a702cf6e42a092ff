//! `fleetpin logs` on the private fleet: containers started through `fleetpin apply` print known
//! lines; `logs` shows them from two hosts at once, each prefixed by host and service, with
//! `--tail`, `-s`, JSON Lines, an unreachable host, and `-f` through a container that stops and
//! a Ctrl-C. No host port is published.

mod support;

use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::Duration;
use support::Scenario;

/// `talker` prints four known lines (one on stderr, one naming its own hostname, spaced by a
/// second so that their times order them), then serves; `db` prints one.
fn manifest(s: &Scenario, hosts: &[&str], extra_host: Option<&str>) -> String {
    let mut m = format!(
        "platform: {p}\nservices:\n  talker:\n    image: {i}\n    command: [\"sh\", \"-c\", \"echo out-one; sleep 1; echo err-one >&2; sleep 1; echo id=$(hostname); echo out-two; exec httpd -f -p 8080 -h /www\"]\n  db:\n    image: {i}\n    command: [\"sh\", \"-c\", \"echo db-ready; exec httpd -f -p 8080 -h /www\"]\n  ticker:\n    image: {i}\n    command: [\"sh\", \"-c\", \"httpd -p 8080 -h /www; i=0; while true; do i=$((i+1)); echo tick-$i; sleep 1; done\"]\nenvironments:\n  test:\n    hosts:\n",
        p = s.platform,
        i = s.fleet.image
    );
    m.push_str(&s.host_lines(hosts));
    if let Some(ep) = extra_host {
        m.push_str(&format!(
            "      dead: {{endpoint: \"{ep}\", insecure: true}}\n"
        ));
    }
    m.push_str(
        "    versions:\n      talker: \"1.0.0\"\n      db: \"1.0.0\"\n      ticker: \"1.0.0\"\n",
    );
    m
}

fn hostname(s: &Scenario, host: &str, name: &str) -> String {
    s.inspect(host, name).config.unwrap().hostname.unwrap()
}

fn sorted(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text.lines().map(String::from).collect();
    v.sort();
    v
}

#[test]
fn lines_from_two_hosts_each_prefixed_with_tail_and_json_lines() {
    let (_, s) = fleet_scenario!("lhlogs");
    s.write(&manifest(&s, &["h1", "h2"], None));
    s.apply_ok("test");
    let talker = format!("{}-test-talker", s.platform);
    let id1 = hostname(&s, "h1", &talker);
    let id2 = hostname(&s, "h2", &talker);
    assert_ne!(id1, id2);

    // Every line of talker, from both hosts: each host's lines in the order written, each line
    // prefixed by the host it came from (its container's hostname proves it).
    let out = s.run(&["logs", "test", "-s", "talker"]);
    assert_eq!(out.code, 0, "{out:?}");
    for (h, id) in [("h1", &id1), ("h2", &id2)] {
        let mine: Vec<&str> = out
            .stdout
            .lines()
            .filter(|l| l.starts_with(&format!("{h} ")))
            .collect();
        assert_eq!(
            mine,
            [
                format!("{h} talker | out-one"),
                format!("{h} talker | err-one"),
                format!("{h} talker | id={id}"),
                format!("{h} talker | out-two"),
            ],
            "{out:?}"
        );
    }
    assert_eq!(out.stdout.lines().count(), 8, "{out:?}");

    // --tail 1 and two services: the last line of each container, prefixes aligned.
    let out = s.run(&["logs", "test", "-s", "talker", "-s", "db", "--tail", "1"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        sorted(&out.stdout),
        [
            "h1 db     | db-ready",
            "h1 talker | out-two",
            "h2 db     | db-ready",
            "h2 talker | out-two",
        ],
        "{out:?}"
    );

    // --host: one host only.
    let out = s.run(&["logs", "test", "-s", "db", "--host", "h2"]);
    assert_eq!(out.stdout, "h2 db | db-ready\n", "{out:?}");

    // JSON Lines: one object per line, the stream named, the engine's time.
    let out = s.run(&[
        "logs", "test", "-s", "talker", "--tail", "all", "--format", "json",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let docs: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(docs.len(), 8, "{out:?}");
    for d in &docs {
        assert_eq!(d["service"], "talker");
        assert_eq!(d["container"], talker.as_str());
        assert!(d["host"] == "h1" || d["host"] == "h2", "{d}");
        let t = d["time"].as_str().unwrap();
        assert!(fleetpin::clock::parse_rfc3339(t).is_some(), "{d}");
        let expected = if d["line"] == "err-one" {
            "stderr"
        } else {
            "stdout"
        };
        assert_eq!(d["stream"], expected, "{d}");
    }
    let h1_lines: Vec<&str> = docs
        .iter()
        .filter(|d| d["host"] == "h1")
        .map(|d| d["line"].as_str().unwrap())
        .collect();
    assert_eq!(
        h1_lines,
        ["out-one", "err-one", &format!("id={id1}"), "out-two"]
    );

    // --since a time after everything was written: nothing; a duration back: everything.
    let out = s.run(&[
        "logs",
        "test",
        "-s",
        "db",
        "--since",
        "2999-01-01T00:00:00Z",
    ]);
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{out:?}");
    let out = s.run(&["logs", "test", "-s", "db", "--since", "1h"]);
    assert_eq!(
        sorted(&out.stdout),
        ["h1 db | db-ready", "h2 db | db-ready"]
    );
}

#[test]
fn an_unreachable_host_is_a_warning_and_exit_1_and_the_others_are_shown() {
    let (_, s) = fleet_scenario!("lhlogsdead");
    s.write(&manifest(&s, &["h3"], None));
    s.apply_ok("test");
    // 10.213.7.250 is in the fleet's subnet and never assigned: a host whose engine is gone.
    s.write(&manifest(&s, &["h3"], Some("tcp://10.213.7.250:2375")));
    let out = s.run(&["--connect-timeout", "2", "logs", "test", "-s", "db"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(out.stdout, "h3 db | db-ready\n", "{out:?}");
    assert!(
        out.stderr
            .contains("warning: dead is unreachable, its logs are missing"),
        "{out:?}"
    );
}

#[test]
fn follow_says_when_a_container_stops_keeps_the_others_and_ctrl_c_exits_0() {
    let (_, s) = fleet_scenario!("lhlogsfollow");
    s.write(&manifest(&s, &["h1", "h2"], None));
    s.apply_ok("test");
    let ticker = format!("{}-test-ticker", s.platform);

    let mut child = support::run::fleetpin_in(s.dir.path())
        .args(["logs", "test", "-s", "ticker", "--tail", "0", "-f"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel::<(bool, String)>();
    let out_tx = tx.clone();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = out_tx.send((true, l));
        }
    });
    std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send((false, l));
        }
    });
    let mut seen = Vec::new();
    // Waits (bounded, so a broken follow fails instead of hanging) for a line matching `want`.
    let mut wait_for = |want: &dyn Fn(bool, &str) -> bool| {
        loop {
            let (is_out, l) = rx
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("no such line; seen: {seen:#?}"));
            seen.push(format!("{}{l}", if is_out { "out: " } else { "err: " }));
            if want(is_out, &l) {
                return l;
            }
        }
    };
    let tick = |h: &'static str| {
        move |o: bool, l: &str| o && l.starts_with(&format!("{h} ticker | tick-"))
    };
    wait_for(&tick("h1"));
    wait_for(&tick("h2"));
    // The h1 container stops: said on stderr, and h2 keeps coming.
    let docker = s.docker("h1");
    let name = ticker.clone();
    support::block_on(async move {
        let opts = bollard::query_parameters::StopContainerOptionsBuilder::new()
            .t(0)
            .build();
        docker.stop_container(&name, Some(opts)).await.unwrap();
    });
    let stopped = wait_for(&|o, l| !o && l.contains("h1 ticker:"));
    assert_eq!(
        stopped,
        format!("h1 ticker: {ticker} is not running (exited); no more lines from it")
    );
    wait_for(&tick("h2"));
    wait_for(&tick("h2"));
    // Ctrl-C ends following: exit 0.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "seen: {seen:#?}");
}
