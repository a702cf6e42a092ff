//! Hooks and notifications on the private fleet: the manifest's `pre_`/`post_` hooks run around
//! apply, rollback and promote with the change in their environment (and never an env_file
//! value); a failing or timed-out `pre_apply` leaves every host untouched and a failing
//! `pre_promote` writes no pin; a webhook receiver on loopback gets each outcome with the bearer
//! token; an unreachable webhook only warns. No host port is published; the receivers listen on
//! ephemeral loopback ports.

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::time::Duration;
use support::Scenario;
use support::webhook::{next, receiver};

const SECRET: &str = "s3cr3t-env-file-value-8d1f";

/// Environment `test` on `hosts` runs `web` (with an env_file), `next` on h3 pins it (never
/// deployed there);
/// `top` is written as is at the top of the manifest (hooks, notify).
fn manifest(s: &Scenario, hosts: &[&str], version: &str, top: &str) -> String {
    let mut m = format!(
        "platform: {p}\n{top}services:\n  web:\n    image: {i}\n    env_file: secrets/web.env\nenvironments:\n  test:\n    hosts:\n",
        p = s.platform,
        i = s.fleet.image
    );
    m.push_str(&s.host_lines(hosts));
    m.push_str(&format!(
        "    versions:\n      web: \"{version}\"\n  next:\n    hosts:\n      h3: {{endpoint: \"{}\", insecure: true}}\n    versions:\n      web: \"1.0.0\"\n",
        s.host("h3").tcp
    ));
    m
}

fn secrets(s: &Scenario) {
    let dir = s.dir.path().join("secrets");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("web.env"), format!("DB_PASSWORD={SECRET}\n")).unwrap();
}

/// A hook's environment as it wrote it with `env > FILE`: NAME -> value.
fn env_of(s: &Scenario, file: &str) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(s.dir.path().join(file))
        .unwrap_or_else(|e| panic!("the hook wrote {file}: {e}"));
    assert!(
        !text.contains(SECRET),
        "an env_file value reached the hook's environment ({file})"
    );
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn changes(env: &BTreeMap<String, String>) -> Value {
    serde_json::from_str(&env["FLEETPIN_CHANGES"]).unwrap()
}

fn id(s: &Scenario, host: &str) -> String {
    s.inspect(host, &format!("{}-test-web", s.platform))
        .id
        .unwrap()
}

#[test]
fn hooks_see_the_change_never_an_env_file_value_and_the_receiver_gets_each_outcome() {
    let (_, s) = fleet_scenario!("lhhooks");
    secrets(&s);
    let (port, rx) = receiver();
    let top = format!(
        "hooks:\n  pre_apply: 'env > pre-apply.env; cp \"$FLEETPIN_CHANGES_FILE\" pre-apply.json'\n  post_apply: 'env > post-apply.env; echo hook-stdout-line'\n  post_rollback: 'env > post-rollback.env'\n  pre_promote: 'env > pre-promote.env'\n  post_promote: 'env > post-promote.env'\nnotify:\n  - webhook: http://127.0.0.1:{port}/hooks/T0/SECRETPATH\n    webhook_env: FLEETPIN_TEST_HOOK_TOKEN\n"
    );
    let token = [("FLEETPIN_TEST_HOOK_TOKEN", "tok-81c2e")];

    // apply: create on h1 and h2.
    s.write(&manifest(&s, &["h1", "h2"], "1.0.0", &top));
    let commit = s.head();
    let out = s.run_with(&["apply", "test", "--yes", "--format", "json"], &token);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.json()["ok"],
        true,
        "stdout is one JSON document: {out:?}"
    );
    assert!(
        out.stderr.contains("hook-stdout-line") && !out.stdout.contains("hook-stdout-line"),
        "a hook's stdout goes to stderr: {out:?}"
    );
    // The container does carry the env_file value: the hooks never saw it.
    let env = s
        .config("h1", &format!("{}-test-web", s.platform))
        .env
        .unwrap();
    assert!(env.contains(&format!("DB_PASSWORD={SECRET}")));

    let pre = env_of(&s, "pre-apply.env");
    assert_eq!(pre["FLEETPIN_HOOK"], "pre_apply");
    assert_eq!(pre["FLEETPIN_COMMAND"], "apply");
    assert_eq!(pre["FLEETPIN_ENVIRONMENT"], "test");
    assert_eq!(pre["FLEETPIN_PLATFORM"], s.platform);
    assert_eq!(pre["FLEETPIN_COMMIT"], commit);
    assert_eq!(pre["FLEETPIN_USER"], "tester@example.test");
    assert!(!pre.contains_key("FLEETPIN_RESULT"), "{pre:?}");
    // fleetpin's own environment is inherited (that is how hooks get their tokens).
    assert_eq!(pre["FLEETPIN_TEST_HOOK_TOKEN"], "tok-81c2e");
    let doc = changes(&pre);
    let file: Value = serde_json::from_str(
        &std::fs::read_to_string(s.dir.path().join("pre-apply.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(doc, file, "FLEETPIN_CHANGES_FILE holds the same document");
    assert!(
        !std::path::Path::new(&pre["FLEETPIN_CHANGES_FILE"]).exists(),
        "the file is removed after the hook"
    );
    assert_eq!(doc["command"], "apply");
    assert_eq!(doc["environment"], "test");
    assert_eq!(doc["result"], Value::Null);
    assert_eq!(
        doc["changes"],
        serde_json::json!([
            {"host": "h1", "service": "web", "kind": "create", "from": null, "to": "1.0.0"},
            {"host": "h2", "service": "web", "kind": "create", "from": null, "to": "1.0.0"},
        ])
    );

    let post = env_of(&s, "post-apply.env");
    assert_eq!(post["FLEETPIN_HOOK"], "post_apply");
    assert_eq!(post["FLEETPIN_RESULT"], "success");
    let doc = changes(&post);
    assert_eq!(doc["result"], "success");
    for (i, h) in ["h1", "h2"].iter().enumerate() {
        assert_eq!(doc["hosts"][i]["host"], *h);
        assert_eq!(doc["hosts"][i]["status"], "converged");
        assert_eq!(doc["changes"][i]["host"], *h);
        assert_eq!(doc["changes"][i]["to"], "1.0.0");
        assert_eq!(doc["changes"][i]["result"], "done");
    }

    let req = next(&rx);
    assert_eq!(req.line, "POST /hooks/T0/SECRETPATH HTTP/1.1");
    assert_eq!(req.headers["authorization"], "Bearer tok-81c2e");
    assert_eq!(req.headers["content-type"], "application/json");
    let b = &req.body;
    assert_eq!(b["command"], "apply");
    assert_eq!(b["environment"], "test");
    assert_eq!(b["result"], "success");
    assert_eq!(b["commit"], commit);
    assert_eq!(b["who"], "tester@example.test");
    assert_eq!(b["changes"], doc["changes"]);
    assert_eq!(
        b["text"],
        format!(
            "✅ fleetpin apply test ({}) succeeded — by tester@example.test, manifest {}: web → 1.0.0 on h1, h2",
            s.platform,
            &commit[..12]
        )
    );

    // rollback: upgrade, then back; post_rollback sees the pin commit.
    s.write(&manifest(&s, &["h1", "h2"], "1.1.0", &top));
    assert_eq!(s.run_with(&["apply", "test", "--yes"], &token).code, 0);
    assert_eq!(next(&rx).body["result"], "success");
    let out = s.run_with(&["rollback", "test", "--yes"], &token);
    assert_eq!(out.code, 0, "{out:?}");
    let post = env_of(&s, "post-rollback.env");
    assert_eq!(post["FLEETPIN_COMMAND"], "rollback");
    let doc = changes(&post);
    assert_eq!(doc["changes"][0]["from"], "1.1.0");
    assert_eq!(doc["changes"][0]["to"], "1.0.0");
    assert_eq!(doc["changes"][0]["kind"], "downgrade");
    assert_eq!(doc["pin_commit"], s.head(), "the pin commit rollback made");
    let req = next(&rx);
    assert_eq!(req.body["command"], "rollback");
    assert_eq!(req.body["pin_commit"], s.head());

    // promote test -> next: the pin moves, no host is touched.
    let out = s.run_with(&["promote", "test", "next"], &token);
    assert_eq!(out.code, 0, "{out:?}");
    let pre = env_of(&s, "pre-promote.env");
    assert_eq!(pre["FLEETPIN_COMMAND"], "promote");
    assert_eq!(pre["FLEETPIN_ENVIRONMENT"], "next");
    assert_eq!(pre["FLEETPIN_FROM_ENVIRONMENT"], "test");
    let doc = changes(&pre);
    assert_eq!(doc["changes"][0]["kind"], "pin");
    assert_eq!(doc["changes"][0]["from"], "1.0.0");
    assert!(
        doc["changes"][0]["to"]
            .as_str()
            .unwrap()
            .starts_with("1.0.0@sha256:")
    );
    let post = env_of(&s, "post-promote.env");
    assert_eq!(post["FLEETPIN_RESULT"], "success");
    assert_eq!(changes(&post)["pin_commit"], s.head());
    let req = next(&rx);
    assert_eq!(req.body["command"], "promote");
    assert_eq!(req.body["from_environment"], "test");
    assert_eq!(req.body["changes"][0]["result"], "written");

    // plan and --dry-run run no hook and send nothing.
    for f in ["pre-apply.env", "pre-promote.env"] {
        std::fs::remove_file(s.dir.path().join(f)).unwrap();
    }
    assert_eq!(s.run_with(&["plan", "test"], &token).code, 0);
    assert_eq!(
        s.run_with(&["promote", "test", "next", "--dry-run"], &token)
            .code,
        0
    );
    assert!(!s.dir.path().join("pre-apply.env").exists());
    assert!(!s.dir.path().join("pre-promote.env").exists());
    assert!(
        rx.recv_timeout(Duration::from_millis(500)).is_err(),
        "nothing was notified"
    );
}

#[test]
fn a_failing_or_timed_out_pre_hook_leaves_every_host_untouched() {
    let (_, s) = fleet_scenario!("lhhookpre");
    secrets(&s);
    let (port, rx) = receiver();
    s.write(&manifest(&s, &["h1", "h2"], "1.0.0", ""));
    s.apply_ok("test");
    let before: Vec<(String, Vec<String>)> = ["h1", "h2"]
        .iter()
        .map(|h| (id(&s, h), support::names(&s, h)))
        .collect();

    let top = format!(
        "hooks:\n  pre_apply: 'echo checking the change window; exit 7'\n  on_failure: 'touch on-failure-ran'\nnotify:\n  - webhook: http://127.0.0.1:{port}/in\n"
    );
    s.write(&manifest(&s, &["h1", "h2"], "1.1.0", &top));
    let out = s.run(&["apply", "test", "--yes"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains("error: the pre_apply hook failed (exit status 7): nothing was changed"),
        "{out:?}"
    );
    assert!(out.stderr.contains("checking the change window"), "{out:?}");
    let req = next(&rx);
    assert_eq!(req.body["result"], "blocked");
    assert_eq!(
        req.body["notes"][0],
        "the pre_apply hook failed (exit status 7)"
    );
    assert_eq!(req.body["changes"][0]["to"], "1.1.0");
    assert!(
        !s.dir.path().join("on-failure-ran").exists(),
        "nothing was changed: on_failure is for failed work"
    );

    let top = "hooks:\n  pre_apply: 'sleep 60'\n  timeout: 1s\n";
    s.write(&manifest(&s, &["h1", "h2"], "1.1.0", top));
    let out = s.run(&["apply", "test", "--yes"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains(
            "error: the pre_apply hook did not finish within 1s and was killed: nothing was changed"
        ),
        "{out:?}"
    );

    // promote: a failing pre_promote writes no pin and commits nothing.
    let top = "hooks:\n  pre_promote: 'echo no promotions on Fridays >&2; exit 4'\n";
    s.write(&manifest(&s, &["h1", "h2"], "1.0.0", top));
    let (head, text) = (s.head(), std::fs::read_to_string(s.path()).unwrap());
    let out = s.run(&["promote", "test", "next"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains("error: the pre_promote hook failed (exit status 4): nothing was changed"),
        "{out:?}"
    );
    assert_eq!(s.head(), head, "no pin commit");
    assert_eq!(std::fs::read_to_string(s.path()).unwrap(), text);

    // Every host as it was: the same containers, none added, still 1.0.0.
    let after: Vec<(String, Vec<String>)> = ["h1", "h2"]
        .iter()
        .map(|h| (id(&s, h), support::names(&s, h)))
        .collect();
    assert_eq!(before, after);
    for h in ["h1", "h2"] {
        assert!(
            s.containers(h).iter().all(|(_, _, v)| v == "1.0.0"),
            "{:?}",
            s.containers(h)
        );
    }
}

#[test]
fn an_unreachable_webhook_or_a_missing_token_only_warns() {
    let (_, s) = fleet_scenario!("lhhooknotify");
    secrets(&s);
    // A port nobody listens on any more.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let top = format!(
        "notify:\n  - webhook: http://127.0.0.1:{closed}/x/SECRETPATH?k=SECRETQUERY\n    timeout: 5s\n  - webhook: https://hooks.example.invalid/y/SECRETPATH2\n    webhook_env: FLEETPIN_TEST_UNSET_TOKEN\n"
    );
    s.write(&manifest(&s, &["h1"], "1.0.0", &top));
    let out = s.apply_ok("test");
    assert!(
        out.stderr.contains(&format!(
            "warning: the notification to http://127.0.0.1:{closed} failed:"
        )),
        "{out:?}"
    );
    assert!(
        out.stderr.contains(
            "warning: the notification to https://hooks.example.invalid failed: FLEETPIN_TEST_UNSET_TOKEN is not set"
        ),
        "{out:?}"
    );
    assert!(!out.stderr.contains("SECRET"), "{out:?}");
    assert!(!out.stdout.contains("SECRET"), "{out:?}");
    assert_eq!(
        s.containers("h1"),
        [(
            format!("{}-test-web", s.platform),
            "running".to_string(),
            "1.0.0".to_string()
        )]
    );
}
