//! Who may change an environment, and when, on the private fleet: commits signed with real
//! `ssh-keygen` keys and a real GnuPG key; `trust: {signed: true, signers: […]}` refuses what an
//! allowed signer of the environment did not sign — in `apply` (container ids unchanged) and in
//! an agent (its status says why, nothing redeployed) — and a force-push back to an older signed
//! commit; deploy windows set around the real current time (the engines share this machine's
//! clock) hold `apply` unless `--override-window`, never a rollback, and an agent until they end.
//! Each test owns its platform name (`tr…`) and ports (194xx).

mod support;

use std::path::Path;
use std::process::Command;
use support::Scenario;
use support::git::{public, ssh_key};
use support::webhook::receiver;

/// Runs git in the scenario's repository with `config` (`-c k=v`), as `ops`.
fn git(s: &Scenario, config: &[String], args: &[&str]) -> std::process::Output {
    let mut c = Command::new("git");
    c.arg("-C").arg(s.dir.path());
    for kv in config {
        c.arg("-c").arg(kv);
    }
    c.args(["-c", "user.name=ops", "-c", "user.email=ops@acme.example"])
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0");
    c.output().unwrap()
}

/// Writes the manifest and commits it (and nothing else), signed with SSH key `key` (or
/// unsigned); returns the commit.
fn commit(s: &Scenario, manifest: &str, key: Option<&Path>, message: &str) -> String {
    std::fs::write(s.path(), manifest).unwrap();
    assert!(git(s, &[], &["add", "platform.yaml"]).status.success());
    let mut config = vec![];
    let mut args = vec!["commit", "-q", "--allow-empty", "-m", message];
    if let Some(k) = key {
        config.push("gpg.format=ssh".to_string());
        config.push(format!("user.signingkey={}", k.display()));
        args.push("-S");
    } else {
        args.push("--no-gpg-sign");
    }
    let out = git(s, &config, &args);
    assert!(out.status.success(), "git commit: {out:?}");
    s.head()
}

fn web_id(s: &Scenario, host: &str) -> String {
    s.inspect(host, &format!("{}-test-web", s.platform))
        .id
        .unwrap()
}

/// `test` on h1, signed commits only, by `ops@acme.example`.
fn signed_manifest(s: &Scenario, port: u16, version: &str) -> String {
    s.manifest(&["h1"], &[("web", port, "")], &[("web", version)])
        .replace(
            "  test:\n",
            "  test:\n    trust: {signed: true, signers: [ops@acme.example]}\n",
        )
}

#[test]
fn a_signed_environment_deploys_only_what_an_allowed_signer_of_it_signed() {
    let (_, s) = fleet_scenario!("trsign");
    let port = 19401;
    let keys = tempfile::tempdir().unwrap();
    let ops = ssh_key(keys.path(), "ops");
    let dev = ssh_key(keys.path(), "dev");
    let stranger = ssh_key(keys.path(), "stranger");
    // The trust root: the operator's git configuration, outside the repository verified.
    let allowed = keys.path().join("allowed_signers");
    std::fs::write(
        &allowed,
        format!(
            "ops@acme.example {}\ndev@acme.example {}\n",
            public(&ops),
            public(&dev)
        ),
    )
    .unwrap();
    let set = |k: &str, v: &str| assert!(git(&s, &[], &["config", k, v]).status.success());
    set("gpg.ssh.allowedSignersFile", allowed.to_str().unwrap());
    set("user.email", "ops@acme.example");
    set("user.name", "ops");

    commit(
        &s,
        &signed_manifest(&s, port, "1.0.0"),
        Some(&ops),
        "signed by ops",
    );
    let o = s.run(&["apply", "test", "--yes"]);
    assert_eq!(o.code, 0, "{o:?}");
    let first = web_id(&s, "h1");

    let refused = |what: &str, key: Option<&Path>, manifest: String, expect: &str| {
        let c = commit(&s, &manifest, key, what);
        let o = s.run(&["apply", "test", "--yes"]);
        assert_eq!(o.code, 1, "{what}: {o:?}");
        assert!(o.stderr.contains(expect), "{what}: {o:?}");
        assert!(
            o.stderr.contains(&c[..12]),
            "{what} names the commit: {o:?}"
        );
        assert_eq!(web_id(&s, "h1"), first, "{what}: nothing was touched");
    };
    refused(
        "unsigned",
        None,
        signed_manifest(&s, port, "1.1.0"),
        "refused: unsigned",
    );
    refused(
        "signed by a key not allowed",
        Some(&stranger),
        signed_manifest(&s, port, "1.1.0"),
        "a key your git configuration does not allow",
    );
    refused(
        "signed by an allowed key outside the environment's signers",
        Some(&dev),
        signed_manifest(&s, port, "1.1.0"),
        "who may not sign for `test`",
    );
    // dev signs a commit that adds itself to the signers: the commit the hosts run names only
    // ops, so the list cannot be widened by the commit it would let through.
    refused(
        "signed by dev, adding dev to the signers",
        Some(&dev),
        signed_manifest(&s, port, "1.1.0").replace(
            "signers: [ops@acme.example]",
            "signers: [ops@acme.example, dev@acme.example]",
        ),
        "who may not sign for `test`",
    );
    // An unsigned commit that deletes the line: the hosts run a commit that says signed.
    refused(
        "unsigned, removing signed: true",
        None,
        s.manifest(&["h1"], &[("web", port, "")], &[("web", "1.1.0")]),
        "refused: unsigned",
    );

    // Signed by ops: deploys.
    commit(&s, &signed_manifest(&s, port, "1.1.0"), Some(&ops), "1.1.0");
    let o = s.run(&["apply", "test", "--yes"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(s.version("h1", port).as_deref(), Some("1.1.0"));

    // What is deployed is what was signed: an uncommitted change is refused.
    std::fs::write(s.path(), signed_manifest(&s, port, "1.0.0")).unwrap();
    let o = s.run(&["apply", "test", "--yes"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("uncommitted changes"), "{o:?}");
    assert!(
        git(&s, &[], &["checkout", "platform.yaml"])
            .status
            .success()
    );

    // The rollback commit fleetpin writes is signed with the operator's signing configuration.
    set("gpg.format", "ssh");
    set("user.signingkey", ops.to_str().unwrap());
    let o = s.run(&["rollback", "test", "--yes"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(s.version("h1", port).as_deref(), Some("1.0.0"));
    let v = git(&s, &[], &["verify-commit", "HEAD"]);
    assert!(
        v.status.success(),
        "the rollback commit verifies: {}",
        String::from_utf8_lossy(&v.stderr)
    );
    assert!(String::from_utf8_lossy(&v.stderr).contains("ops@acme.example"));
    // And history says who signed each change.
    let h = s.run(&["history", "--format", "json"]).json();
    assert_eq!(h[0]["signed_by"], "ops@acme.example", "{h}");

    // An operator without a usable key hears it before any host changes.
    set("user.signingkey", "/nonexistent/key");
    let before = web_id(&s, "h1");
    let o = s.run(&["rollback", "test", "--to", "1.1.0", "--yes"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("cannot sign"), "{o:?}");
    assert_eq!(web_id(&s, "h1"), before);
    // Nor may an operator whose key is allowed but not one of `test`'s signers roll back there:
    // the commit it would write could not be deployed.
    set("user.signingkey", dev.to_str().unwrap());
    let o = s.run(&["rollback", "test", "--to", "1.1.0", "--yes"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr
            .contains("refused: the commit fleetpin would write is signed by dev@acme.example")
            && o.stderr.contains("who may not sign for `test`"),
        "{o:?}"
    );
    assert_eq!(web_id(&s, "h1"), before);
    let h = s.run(&["history", "--format", "json"]).json();
    assert_eq!(
        h[0]["signed_by"], "ops@acme.example",
        "no commit written: {h}"
    );

    // ops' key revoked in the operator's git configuration (gpg.ssh.revocationFile): a commit
    // it signed is refused by apply.
    let revoked = keys.path().join("revoked");
    std::fs::write(&revoked, format!("{}\n", public(&ops))).unwrap();
    set("gpg.ssh.revocationFile", revoked.to_str().unwrap());
    let c = commit(
        &s,
        &signed_manifest(&s, port, "1.2.0"),
        Some(&ops),
        "revoked",
    );
    let o = s.run(&["apply", "test", "--yes"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr.contains(&format!(
            "refused: {} has a bad or revoked signature",
            &c[..12]
        )),
        "{o:?}"
    );
    assert_eq!(web_id(&s, "h1"), before);
}

#[test]
fn an_openpgp_signed_commit_from_a_dedicated_keyring_deploys() {
    let (_, s) = fleet_scenario!("trgpg");
    let port = 19411;
    let home = tempfile::tempdir().unwrap();
    let gpg = |args: &[&str]| {
        let out = Command::new("gpg")
            .arg("--homedir")
            .arg(home.path())
            .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "gpg {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    gpg(&[
        "--quick-gen-key",
        "Ops <ops@acme.example>",
        "ed25519",
        "sign",
        "never",
    ]);
    let listing = gpg(&["--with-colons", "--list-secret-keys"]);
    let fingerprint = listing
        .lines()
        .find(|l| l.starts_with("fpr:"))
        .and_then(|l| l.split(':').nth(9))
        .unwrap()
        .to_string();
    let set = |k: &str, v: &str| assert!(git(&s, &[], &["config", k, v]).status.success());
    set("fleetpin.gpgHome", home.path().to_str().unwrap());
    let manifest = s
        .manifest(&["h1"], &[("web", port, "")], &[("web", "1.0.0")])
        .replace(
            "  test:\n",
            &format!("  test:\n    trust: {{signed: true, signers: [\"{fingerprint}\"]}}\n"),
        );
    std::fs::write(s.path(), &manifest).unwrap();
    assert!(git(&s, &[], &["add", "platform.yaml"]).status.success());
    let mut c = Command::new("git");
    c.arg("-C")
        .arg(s.dir.path())
        .args(["-c", "user.name=Ops", "-c", "user.email=ops@acme.example"])
        .args(["-c", "gpg.format=openpgp"])
        .arg("-c")
        .arg(format!("user.signingkey={fingerprint}"))
        .args(["commit", "-q", "-S", "-m", "signed with gpg"])
        .env("GNUPGHOME", home.path());
    let out = c.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let o = s.run(&["apply", "test", "--yes"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(s.version("h1", port).as_deref(), Some("1.0.0"));
    let served = web_id(&s, "h1");
    // Signed by a real GnuPG key the dedicated keyring does not hold: refused.
    let stranger = tempfile::tempdir().unwrap();
    let out = Command::new("gpg")
        .arg("--homedir")
        .arg(stranger.path())
        .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
        .args([
            "--quick-gen-key",
            "Mallory <mallory@acme.example>",
            "ed25519",
            "sign",
            "never",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    std::fs::write(s.path(), manifest.replace("1.0.0", "1.1.0")).unwrap();
    assert!(git(&s, &[], &["add", "platform.yaml"]).status.success());
    let out = Command::new("git")
        .arg("-C")
        .arg(s.dir.path())
        .args([
            "-c",
            "user.name=Mallory",
            "-c",
            "user.email=mallory@acme.example",
        ])
        .args([
            "-c",
            "gpg.format=openpgp",
            "-c",
            "user.signingkey=mallory@acme.example",
        ])
        .args(["commit", "-q", "-S", "-m", "signed by a key not allowed"])
        .env("GNUPGHOME", stranger.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let c = s.head();
    let o = s.run(&["apply", "test", "--yes"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr.contains(&format!("refused: {}", &c[..12])),
        "{o:?}"
    );
    assert_eq!(web_id(&s, "h1"), served, "nothing was touched");
    // Unsigned on top: refused.
    commit(
        &s,
        &manifest.replace("1.0.0", "1.1.0"),
        None,
        "unsigned after gpg",
    );
    let o = s.run(&["apply", "test", "--yes"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("refused: unsigned"), "{o:?}");
    assert_eq!(web_id(&s, "h1"), served, "nothing was touched");
}

/// The agent's arguments for h1 following the bare repository `bare`.
fn agent_args(s: &Scenario, bare: &Path, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "agent",
        "--repo",
        bare.to_str().unwrap(),
        "--branch",
        "main",
        "--env",
        "test",
        "--host",
        "h1",
        "--endpoint",
        &s.host("h1").unix,
        "--health-timeout",
        "20",
        "--cache-dir",
        s.dir.path().join("cache").to_str().unwrap(),
        "--once",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    a.extend(extra.iter().map(|e| e.to_string()));
    a
}

fn agent(s: &Scenario, bare: &Path, extra: &[&str]) -> support::run::Out {
    let args = agent_args(s, bare, extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    s.run(&args)
}

fn push(s: &Scenario, bare: &Path, rev: &str) {
    let out = git(
        s,
        &[],
        &[
            "push",
            "-q",
            "-f",
            bare.to_str().unwrap(),
            &format!("{rev}:refs/heads/main"),
        ],
    );
    assert!(out.status.success(), "{out:?}");
}

fn status(s: &Scenario) -> std::collections::HashMap<String, String> {
    s.config("h1", &format!("{}-test.agent", s.platform))
        .labels
        .unwrap()
}

#[test]
fn an_agent_with_allowed_signers_refuses_unsigned_commits_and_replays() {
    let (_, s) = fleet_scenario!("tragent");
    let port = 19421;
    let keys = tempfile::tempdir().unwrap();
    let ops = ssh_key(keys.path(), "ops");
    let dev = ssh_key(keys.path(), "dev");
    let stranger = ssh_key(keys.path(), "stranger");
    // dev is an allowed signer, but not one of `test`'s signers (ops only).
    let allowed = keys.path().join("allowed_signers");
    std::fs::write(
        &allowed,
        format!(
            "ops@acme.example {}\ndev@acme.example {}\n",
            public(&ops),
            public(&dev)
        ),
    )
    .unwrap();
    let bare = s.dir.path().join("served.git");
    assert!(
        Command::new("git")
            .args(["init", "-q", "--bare"])
            .arg(&bare)
            .status()
            .unwrap()
            .success()
    );
    let pull =
        |v: &str| signed_manifest(&s, port, v).replace("  test:\n", "  test:\n    pull: true\n");
    let trust = ["--allowed-signers", allowed.to_str().unwrap()];

    let v1 = commit(&s, &pull("1.0.0"), Some(&ops), "1.0.0");
    push(&s, &bare, "HEAD");
    let o = agent(&s, &bare, &trust);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(s.version("h1", port).as_deref(), Some("1.0.0"));
    let served = web_id(&s, "h1");
    let v2 = commit(&s, &pull("1.1.0"), Some(&ops), "1.1.0");
    push(&s, &bare, "HEAD");
    assert_eq!(agent(&s, &bare, &trust).code, 0);
    assert_eq!(s.version("h1", port).as_deref(), Some("1.1.0"));
    let v2_id = web_id(&s, "h1");
    assert_ne!(v2_id, served);

    // Unsigned: refused, the status says why, audit shows it, nothing redeployed.
    let unsigned = commit(&s, &pull("1.2.0"), None, "unsigned");
    push(&s, &bare, "HEAD");
    let o = agent(&s, &bare, &trust);
    assert_eq!(o.code, 1, "{o:?}");
    let l = status(&s);
    assert_eq!(l["io.fleetpin.agent.result"], "refused", "{l:?}");
    assert!(
        l["io.fleetpin.agent.reason"].contains(&format!("refused: unsigned {}", &unsigned[..12])),
        "{l:?}"
    );
    assert_eq!(web_id(&s, "h1"), v2_id);
    let audit = s.run(&["audit", "test", "--format", "json"]).json();
    assert_eq!(audit["agents"][0]["state"], "refused", "{audit}");

    // Each refusal: exit 1, the status names the commit and why, audit shows it, the same
    // container serves 1.1.0.
    let refused = |what: &str, key: Option<&Path>, manifest: String, args: &[&str], why: &str| {
        let c = commit(&s, &manifest, key, what);
        push(&s, &bare, "HEAD");
        let o = agent(&s, &bare, args);
        assert_eq!(o.code, 1, "{what}: {o:?}");
        let l = status(&s);
        assert_eq!(l["io.fleetpin.agent.result"], "refused", "{what}: {l:?}");
        let reason = &l["io.fleetpin.agent.reason"];
        assert!(reason.contains(why), "{what}: {l:?}");
        assert!(reason.contains(&c[..12]), "{what} names the commit: {l:?}");
        let audit = s.run(&["audit", "test", "--format", "json"]).json();
        assert_eq!(audit["agents"][0]["state"], "refused", "{what}: {audit}");
        assert_eq!(web_id(&s, "h1"), v2_id, "{what}: nothing redeployed");
        assert_eq!(s.version("h1", port).as_deref(), Some("1.1.0"), "{what}");
    };
    refused(
        "signed by a key not allowed",
        Some(&stranger),
        pull("1.2.0"),
        &trust,
        "does not allow",
    );
    refused(
        "signed by an allowed key outside the environment's signers",
        Some(&dev),
        pull("1.2.0"),
        &trust,
        "who may not sign for `test`",
    );
    let unsigned_manifest = s
        .manifest(&["h1"], &[("web", port, "")], &[("web", "1.2.0")])
        .replace("  test:\n", "  test:\n    pull: true\n");
    refused(
        "unsigned, removing signed: true",
        None,
        unsigned_manifest.clone(),
        &trust,
        "refused: unsigned",
    );
    // Without --allowed-signers the commit the host runs still says signed: refused too.
    refused(
        "unsigned, removing signed: true, to an agent without a trust root",
        None,
        unsigned_manifest,
        &[],
        "must be signed for `test`",
    );

    // A force-push of the branch back to the older, validly signed v1: a replay, refused.
    push(&s, &bare, &v1);
    let o = agent(&s, &bare, &trust);
    assert_eq!(o.code, 1, "{o:?}");
    let l = status(&s);
    assert!(
        l["io.fleetpin.agent.reason"].contains("is not a descendant of"),
        "{l:?}"
    );
    assert_eq!(s.version("h1", port).as_deref(), Some("1.1.0"));
    assert_eq!(web_id(&s, "h1"), v2_id);
    // `--accept` rewinds deliberately.
    let mut accept = trust.to_vec();
    accept.extend(["--accept", v1.as_str()]);
    let o = agent(&s, &bare, &accept);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(s.version("h1", port).as_deref(), Some("1.0.0"));
    let _ = v2;

    // ops' key revoked (--revocation-file): its next commit is refused, nothing redeployed.
    let v1_id = web_id(&s, "h1");
    let revoked = keys.path().join("revoked");
    std::fs::write(&revoked, format!("{}\n", public(&ops))).unwrap();
    let c = commit(&s, &pull("1.1.0"), Some(&ops), "signed by a revoked key");
    push(&s, &bare, "HEAD");
    let mut with_revocations = trust.to_vec();
    with_revocations.extend(["--revocation-file", revoked.to_str().unwrap()]);
    let o = agent(&s, &bare, &with_revocations);
    assert_eq!(o.code, 1, "{o:?}");
    let l = status(&s);
    assert_eq!(l["io.fleetpin.agent.result"], "refused", "{l:?}");
    assert!(
        l["io.fleetpin.agent.reason"].contains(&format!(
            "refused: {} has a bad or revoked signature",
            &c[..12]
        )),
        "{l:?}"
    );
    assert_eq!(web_id(&s, "h1"), v1_id, "nothing redeployed");
    // Without the revocation the same commit deploys.
    let o = agent(&s, &bare, &trust);
    assert_eq!(o.code, 0, "{o:?} {:?}", status(&s));
    assert_eq!(s.version("h1", port).as_deref(), Some("1.1.0"));
}

/// A 5-field cron schedule that started a minute ago (UTC), for windows around the real time.
fn started_a_minute_ago() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 60;
    let minute = (now / 60) % 60;
    let hour = (now / 3600) % 24;
    format!("{minute} {hour} * * *")
}

#[test]
fn a_deny_window_holds_apply_unless_overridden_never_a_rollback() {
    let (_, s) = fleet_scenario!("trwin");
    let port = 19431;
    let (hook_port, rx) = receiver();
    let top = format!("notify:\n  - webhook: http://127.0.0.1:{hook_port}/in\n");
    let manifest = |v: &str, window: bool| {
        let mut m = s
            .manifest(&["h1"], &[("web", port, "")], &[("web", v)])
            .replace("retain: 2\n", &format!("retain: 2\n{top}"));
        if window {
            m = m.replace(
                "  test:\n",
                &format!(
                    "  test:\n    windows:\n      - {{deny: \"{}\", duration: 2h}}\n",
                    started_a_minute_ago()
                ),
            );
        }
        m
    };
    s.write(&manifest("1.0.0", false));
    assert_eq!(s.run(&["apply", "test", "--yes"]).code, 0);
    while rx.try_recv().is_ok() {}
    s.write(&manifest("1.1.0", true));
    let before = web_id(&s, "h1");
    let plan = s.run(&["plan", "test"]);
    assert!(plan.stdout.contains("held by window deny"), "{plan:?}");
    let o = s.run(&["apply", "test", "--yes"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("held by window deny"), "{o:?}");
    assert!(o.stderr.contains("--override-window"), "{o:?}");
    assert_eq!(web_id(&s, "h1"), before, "nothing changed");
    // Judged by the engine's clock: an operator whose clock says the window ended (3 h on,
    // past its 2 h) is held all the same.
    let o = s.run_prefixed(&["faketime", "-f", "+3h"], &["apply", "test", "--yes"], &[]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("held by window deny"), "{o:?}");
    assert_eq!(web_id(&s, "h1"), before, "nothing changed");

    let o = s.run(&[
        "apply",
        "test",
        "--yes",
        "--override-window",
        "hotfix INC-42",
    ]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(s.version("h1", port).as_deref(), Some("1.1.0"));
    let body = support::webhook::next(&rx).body;
    assert!(
        body["window_override"]
            .as_str()
            .is_some_and(|w| w.contains("hotfix INC-42")),
        "the reason is in the notification: {body}"
    );

    // Going back is never held.
    let o = s.run(&["rollback", "test", "--yes"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(s.version("h1", port).as_deref(), Some("1.0.0"));
    assert!(
        format!("{}{}", o.stdout, o.stderr).contains("going back is never held"),
        "{o:?}"
    );
}

#[test]
fn an_agent_holds_pushed_pins_while_a_window_lasts_then_applies_the_newest_once() {
    let (_, s) = fleet_scenario!("trwinag");
    let port = 19441;
    let bare = s.dir.path().join("served.git");
    assert!(
        Command::new("git")
            .args(["init", "-q", "--bare"])
            .arg(&bare)
            .status()
            .unwrap()
            .success()
    );
    let manifest = |v: &str, window: Option<&str>| {
        let mut m = s
            .manifest(&["h1"], &[("web", port, "")], &[("web", v)])
            .replace("  test:\n", "  test:\n    pull: true\n");
        if let Some(w) = window {
            m = m.replace(
                "    pull: true\n",
                &format!("    pull: true\n    windows:\n{w}"),
            );
        }
        m
    };
    let v1 = commit(&s, &manifest("1.0.0", None), None, "1.0.0");
    push(&s, &bare, "HEAD");
    assert_eq!(agent(&s, &bare, &[]).code, 0);
    let served = web_id(&s, "h1");
    // A deny window from the current minute for 100 s, begun at most 40 s ago: it holds for a
    // minute at least and ends within 100 s.
    let unix = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    if unix() % 60 > 40 {
        std::thread::sleep(std::time::Duration::from_secs(61 - unix() % 60));
    }
    let now = unix();
    let window = format!(
        "      - {{deny: \"{} {} * * *\", duration: 100s}}\n",
        (now / 60) % 60,
        (now / 3600) % 24
    );
    commit(&s, &manifest("1.1.0", Some(&window)), None, "1.1.0");
    push(&s, &bare, "HEAD");
    let o = agent(&s, &bare, &[]);
    assert_eq!(o.code, 1, "held: {o:?}");
    assert_eq!(status(&s)["io.fleetpin.agent.result"], "held");
    let audit = s.run(&["audit", "test", "--format", "json"]).json();
    assert_eq!(audit["agents"][0]["state"], "held", "{audit}");
    let v3 = commit(&s, &manifest("1.2.0", Some(&window)), None, "1.2.0");
    push(&s, &bare, "HEAD");
    assert_eq!(agent(&s, &bare, &[]).code, 1);
    assert_eq!(web_id(&s, "h1"), served, "held: nothing changed");
    // Held, the agent still repairs what the commit it runs pins: web stopped by hand serves
    // 1.0.0 again (the same container, started), and the status still says held.
    let docker = s.docker("h1");
    let name = format!("{}-test-web", s.platform);
    support::block_on(async move {
        docker
            .stop_container(
                &name,
                None::<bollard::query_parameters::StopContainerOptions>,
            )
            .await
            .unwrap();
    });
    assert_eq!(s.version("h1", port), None, "stopped by hand");
    let o = agent(&s, &bare, &[]);
    assert_eq!(o.code, 1, "still held: {o:?}");
    assert_eq!(s.version("h1", port).as_deref(), Some("1.0.0"), "{o:?}");
    let l = status(&s);
    assert_eq!(l["io.fleetpin.agent.result"], "held", "{l:?}");
    assert!(
        l["io.fleetpin.agent.reason"].contains("held by window deny"),
        "{l:?}"
    );
    assert_eq!(
        l["io.fleetpin.agent.commit"], v3,
        "the status names the held commit"
    );
    assert_eq!(
        l["io.fleetpin.agent.applied"], v1,
        "the host runs the commit it ran"
    );
    let versions: Vec<String> = s.containers("h1").into_iter().map(|(_, _, v)| v).collect();
    assert!(!versions.contains(&"1.2.0".to_string()), "{versions:?}");
    // The window ends: the newest pin, once.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(150);
    loop {
        let o = agent(&s, &bare, &[]);
        if o.code == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the window ended: {o:?}"
        );
        std::thread::sleep(std::time::Duration::from_secs(5));
    }
    assert_eq!(s.version("h1", port).as_deref(), Some("1.2.0"));
    let versions: Vec<String> = s
        .containers("h1")
        .into_iter()
        .map(|(_, _, v)| v)
        .filter(|v| !v.is_empty())
        .collect();
    assert!(
        !versions.contains(&"1.1.0".to_string()),
        "1.1.0 was never deployed: {versions:?}"
    );
}
