//! Secrets that travel with the reference, on the private fleet: SOPS files encrypted by the real
//! `sops` CLI for real age keys (`age-keygen`), committed beside the manifest. The container gets
//! the values; no output at any verbosity or log level, no label, saved plan, hook environment or
//! webhook body holds one; a changed value redeploys and re-encrypting the same values does not; a
//! wrong identity or a tampered file stops before any host is touched; an agent decrypts with its
//! own identity, and without one refuses the sync and says why in its status. Each test owns its
//! platform name (`sops…`) and ports (193xx).

mod support;

use std::path::{Path, PathBuf};
use support::Scenario;
use support::sops::{AgeKey, Sops};
use support::webhook::receiver;

const ENV_FILE_VALUE: &str = "envfile-S3cr3t-7781";
const DB_URL: &str = "postgres://billing:db-S3cr3t-9912@db/billing";
const API_KEY: &str = "key-S3cr3t-4410";
const FIRST: &str = "first-S3cr3t-5520";
const NEW_DB_URL: &str = "postgres://billing:db-N3w-S3cr3t-1203@db/billing";
const VALUES: [&str; 5] = [ENV_FILE_VALUE, DB_URL, API_KEY, FIRST, NEW_DB_URL];

/// Encrypts `plain` into `secrets/NAME` of the scenario for `recipients`.
fn encrypt(sops: &Sops, s: &Scenario, name: &str, plain: &str, recipients: &[&AgeKey]) {
    let dir = s.dir.path().join("secrets");
    std::fs::create_dir_all(&dir).unwrap();
    sops.encrypt(&dir, name, plain, recipients);
}

fn secret_file(s: &Scenario, name: &str) -> PathBuf {
    s.dir.path().join("secrets").join(name)
}

fn prod_yaml(db_url: &str) -> String {
    format!(
        "billing:\n  db_url: \"{db_url}\"\n  api.key: \"{API_KEY}\"\nreplicas:\n  - password: \"{FIRST}\"\n"
    )
}

/// The secret files, encrypted for `key`, and a manifest that reads them: an env_file (dotenv),
/// and three values of a YAML file (a dotted path, a key holding a dot, a list index).
fn setup(sops: &Sops, s: &Scenario, key: &AgeKey, top: &str, port: u16) -> String {
    encrypt(
        sops,
        s,
        "app.env",
        &format!("APP_SECRET={ENV_FILE_VALUE}\n"),
        &[key],
    );
    encrypt(sops, s, "prod.yaml", &prod_yaml(DB_URL), &[key]);
    let extra = "env_file: secrets/app.env\nenv:\n  MODE: plain\n  DB_URL: {sops: secrets/prod.yaml, key: billing.db_url}\n  API_KEY: {sops: secrets/prod.yaml, key: [billing, \"api.key\"]}\n  FIRST: {sops: secrets/prod.yaml, key: [replicas, 0, password]}";
    let m = s
        .manifest(&["h1"], &[("web", port, extra)], &[("web", "1.0.0")])
        .replace("retain: 2\n", &format!("retain: 2\n{top}"));
    commit_all(s, &m, "manifest and secrets");
    m
}

/// Writes the manifest and commits it with every secret file.
fn commit_all(s: &Scenario, manifest: &str, message: &str) {
    std::fs::write(s.path(), manifest).unwrap();
    support::git::cli_as("ops", s.dir.path(), &["add", "-A"], &[]);
    support::git::cli_as("ops", s.dir.path(), &["commit", "-q", "-m", message], &[]);
}

fn web(s: &Scenario) -> String {
    format!("{}-test-web", s.platform)
}

fn id(s: &Scenario) -> String {
    s.inspect("h1", &web(s)).id.unwrap()
}

/// The container's environment, NAME=value lines.
fn container_env(s: &Scenario) -> Vec<String> {
    s.config("h1", &web(s)).env.unwrap_or_default()
}

fn assert_clean(what: &str, text: &str) {
    for v in VALUES {
        assert!(
            !text.contains(v),
            "a secret value leaked into {what}:\n{text}"
        );
    }
}

#[test]
fn sops_values_reach_the_container_and_nothing_else_and_a_new_value_redeploys() {
    let (_, s) = fleet_scenario!("sops1");
    let sops = require_sops!();
    let port = 19301;
    let dir = s.dir.path();
    let ops = sops.key(dir, "ops");
    let other = sops.key(dir, "other");
    let (hook_port, rx) = receiver();
    let top = format!(
        "hooks:\n  pre_apply: 'env > pre-apply.env'\n  post_apply: 'env > post-apply.env'\nnotify:\n  - webhook: http://127.0.0.1:{hook_port}/in\n"
    );
    let manifest = setup(&sops, &s, &ops, &top, port);
    let key_file = ops.file.to_str().unwrap();
    // The identity reaches fleetpin both ways sops reads it: a file and the key inline.
    let inline = std::fs::read_to_string(&ops.file).unwrap();
    let with_key = [("SOPS_AGE_KEY_FILE", key_file)];
    let with_both = [
        ("SOPS_AGE_KEY_FILE", key_file),
        ("SOPS_AGE_KEY", inline.as_str()),
    ];
    let mut outputs = Vec::new();
    let mut run = |args: &[&str], envs: &[(&str, &str)]| {
        let o = s.run_with(args, envs);
        outputs.push(format!("{args:?}\n{}\n{}", o.stdout, o.stderr));
        o
    };

    let o = run(&["apply", "test", "--yes", "-vv"], &with_both);
    assert_eq!(o.code, 0, "{o:?}");
    let env = container_env(&s);
    for want in [
        format!("APP_SECRET={ENV_FILE_VALUE}"),
        format!("DB_URL={DB_URL}"),
        format!("API_KEY={API_KEY}"),
        format!("FIRST={FIRST}"),
        "MODE=plain".to_string(),
    ] {
        assert!(env.contains(&want), "the container has {want}: {env:?}");
    }
    let first = id(&s);
    // The hooks ran with the key in fleetpin's environment (file and inline): they never see it.
    for f in ["pre-apply.env", "post-apply.env"] {
        let text = std::fs::read_to_string(dir.join(f)).unwrap();
        assert!(
            !text.contains("SOPS_AGE_KEY") && !text.contains("AGE-SECRET-KEY"),
            "the hook does not inherit the identity ({f}):\n{text}"
        );
    }

    // Everything a user can ask, at every verbosity.
    run(&["validate"], &with_key);
    run(&["validate", "--format", "json"], &with_key);
    let o = run(&["plan", "test", "-vv"], &with_key);
    assert_eq!(o.code, 0, "{o:?}");
    let plan = run(&["plan", "test", "--format", "json"], &with_key).json();
    assert_eq!(
        plan["hosts"][0]["changes"][0]["kind"], "unchanged",
        "{plan}"
    );
    let plan_file = dir.join("p.json");
    run(
        &["plan", "test", "-o", plan_file.to_str().unwrap()],
        &with_key,
    );
    for f in ["table", "json", "markdown", "html"] {
        run(&["audit", "--format", f, "-vv"], &with_key);
    }
    run(&["history", "-vv"], &with_key);
    run(&["history", "--format", "json"], &with_key);

    // sops updatekeys (a recipient added) and sops rotate (a new data key): the values are the
    // same, so nothing is redeployed.
    for f in ["prod.yaml", "app.env"] {
        sops.updatekeys(&secret_file(&s, f), &ops, &[&ops, &other]);
    }
    commit_all(&s, &manifest, "a recipient added");
    let plan = run(&["plan", "test", "--format", "json"], &with_key).json();
    assert_eq!(
        plan["hosts"][0]["changes"][0]["kind"], "unchanged",
        "{plan}"
    );
    sops.rotate(&secret_file(&s, "prod.yaml"), &ops);
    commit_all(&s, &manifest, "data key rotated");
    let other_key = [("SOPS_AGE_KEY_FILE", other.file.to_str().unwrap())];
    let plan = run(&["plan", "test", "--format", "json"], &other_key).json();
    assert_eq!(
        plan["hosts"][0]["changes"][0]["kind"], "unchanged",
        "the new recipient opens the files, and nothing changed: {plan}"
    );

    // A changed value redeploys, found by comparing with the container's environment.
    encrypt(&sops, &s, "prod.yaml", &prod_yaml(NEW_DB_URL), &[&ops]);
    commit_all(&s, &manifest, "new database password");
    let plan = run(&["plan", "test", "--format", "json"], &with_key).json();
    let change = &plan["hosts"][0]["changes"][0];
    assert_eq!(change["kind"], "reconfigure", "{plan}");
    assert_eq!(change["reason"], fleetpin::plan::STALE_SECRETS, "{plan}");
    // Audit sees it too (it compares the decrypted values with the containers' environments).
    let audit = run(&["audit", "test", "--format", "json"], &with_key).json();
    assert!(
        audit.to_string().contains(fleetpin::plan::STALE_SECRETS),
        "audit shows the stale secret as drift: {audit}"
    );
    // Every reading command at trace, every crate, with the key at hand.
    let trace = [("SOPS_AGE_KEY_FILE", key_file), ("FLEETPIN_LOG", "trace")];
    for args in [
        &["plan", "test", "-vv"][..],
        &["audit", "-vv"],
        &["audit", "--format", "json"],
        &["history", "-vv"],
        &["validate"],
    ] {
        run(args, &trace);
    }
    // At trace, every crate: the engine client logs request bodies there.
    let o = run(
        &["apply", "test", "--yes", "-vv"],
        &[("SOPS_AGE_KEY_FILE", key_file), ("FLEETPIN_LOG", "trace")],
    );
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        container_env(&s).contains(&format!("DB_URL={NEW_DB_URL}")),
        "the new value is deployed: {:?}\n{o:?}",
        container_env(&s)
    );
    let second = id(&s);
    assert_ne!(second, first, "a new container");
    let plan = run(&["plan", "test", "--format", "json"], &with_key).json();
    assert_eq!(
        plan["hosts"][0]["changes"][0]["kind"], "unchanged",
        "{plan}"
    );

    // A wrong identity: exit 1 before any host is touched, naming the file and its recipients.
    let elsewhere = tempfile::tempdir().unwrap();
    let stranger = sops.key(elsewhere.path(), "stranger");
    encrypt(&sops, &s, "prod.yaml", &prod_yaml(DB_URL), &[&ops]);
    commit_all(&s, &manifest, "the old password again");
    let o = run(
        &["apply", "test", "--yes", "-vv"],
        &[("SOPS_AGE_KEY_FILE", stranger.file.to_str().unwrap())],
    );
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr.contains("secrets/prod.yaml") && o.stderr.contains(&ops.public),
        "the file and its recipients are named: {o:?}"
    );
    assert!(o.stderr.contains("no age identity"), "{o:?}");
    assert_eq!(id(&s), second, "nothing was touched");

    // A tampered file: one character of a value's ciphertext changed, committed.
    let path = dir.join("secrets/prod.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let at = text.find("db_url: ENC[AES256_GCM,data:").unwrap() + 30;
    let mut bytes = text.into_bytes();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    std::fs::write(&path, bytes).unwrap();
    commit_all(&s, &manifest, "tampered");
    let o = run(&["apply", "test", "--yes"], &with_key);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("secrets/prod.yaml"), "{o:?}");
    assert_eq!(id(&s), second, "nothing was touched");
    let o = run(&["validate"], &with_key);
    assert_eq!(o.code, 1, "validate reports the tampered file: {o:?}");
    assert!(o.stderr.contains("platform.yaml:"), "located: {o:?}");

    // Nothing anywhere: outputs, the saved plan, labels, hooks' environments, webhook bodies.
    outputs.push(std::fs::read_to_string(&plan_file).unwrap());
    for o in &outputs {
        assert_clean("an output", o);
    }
    let labels = serde_json::to_string(&s.config("h1", &web(&s)).labels).unwrap();
    assert_clean("the labels", &labels);
    for f in ["pre-apply.env", "post-apply.env"] {
        let text = std::fs::read_to_string(dir.join(f)).unwrap();
        assert_clean(f, &text);
        assert!(
            !text.contains("SOPS_AGE_KEY") && !text.contains("AGE-SECRET-KEY"),
            "the hook does not inherit the identity ({f}):\n{text}"
        );
    }
    let mut bodies = 0;
    while let Ok(r) = rx.try_recv() {
        assert_clean("a webhook body", &r.body.to_string());
        bodies += 1;
    }
    assert!(bodies >= 2, "the webhooks were sent ({bodies})");
}

/// `test` on h1, followed by agents.
fn pull_manifest(s: &Scenario, port: u16) -> String {
    let extra =
        "env_file: secrets/app.env\nenv:\n  DB_URL: {sops: secrets/prod.yaml, key: billing.db_url}";
    s.manifest(&["h1"], &[("web", port, extra)], &[("web", "1.0.0")])
        .replace("  test:\n", "  test:\n    pull: true\n")
}

#[test]
fn an_agent_decrypts_with_its_own_identity_and_without_one_refuses_and_says_why() {
    let (_, s) = fleet_scenario!("sopsag");
    let sops = require_sops!();
    let port = 19311;
    let dir = s.dir.path();
    let prod = sops.key(dir, "prod");
    encrypt(
        &sops,
        &s,
        "app.env",
        &format!("APP_SECRET={ENV_FILE_VALUE}\n"),
        &[&prod],
    );
    encrypt(&sops, &s, "prod.yaml", &prod_yaml(DB_URL), &[&prod]);
    let manifest = pull_manifest(&s, port);
    commit_all(&s, &manifest, "prod secrets in the reference");
    let bare = dir.join("served.git");
    support::git::cli_as(
        "ops",
        Path::new("/"),
        &["init", "-q", "--bare", bare.to_str().unwrap()],
        &[],
    );
    let push = || {
        support::git::cli_as(
            "ops",
            dir,
            &[
                "push",
                "-q",
                "-f",
                bare.to_str().unwrap(),
                "HEAD:refs/heads/main",
            ],
            &[],
        )
    };
    push();
    let empty_home = tempfile::tempdir().unwrap();
    let home = empty_home.path().to_str().unwrap();
    let agent = |identity: Option<&Path>| {
        let mut args = vec![
            "agent".to_string(),
            "--repo".into(),
            bare.to_str().unwrap().into(),
            "--branch".into(),
            "main".into(),
            "--env".into(),
            "test".into(),
            "--host".into(),
            "h1".into(),
            "--endpoint".into(),
            s.host("h1").unix.clone(),
            "--health-timeout".into(),
            "20".into(),
            "--cache-dir".into(),
            dir.join("cache").to_str().unwrap().into(),
            "--once".into(),
        ];
        if let Some(f) = identity {
            args.push("--age-identity".into());
            args.push(f.to_str().unwrap().into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        // No identity from anywhere else: sops's variables unset, an empty config home.
        s.run_with(&args, &[("HOME", home), ("XDG_CONFIG_HOME", home)])
    };

    let o = agent(Some(&prod.file));
    assert_eq!(o.code, 0, "{o:?}");
    let env = container_env(&s);
    assert!(env.contains(&format!("DB_URL={DB_URL}")), "{env:?}");
    assert!(
        env.contains(&format!("APP_SECRET={ENV_FILE_VALUE}")),
        "{env:?}"
    );
    let served = id(&s);
    assert_clean("the agent's output", &format!("{}{}", o.stdout, o.stderr));

    // A new value, and an agent with no identity: the sync is refused, the container stays.
    encrypt(&sops, &s, "prod.yaml", &prod_yaml(NEW_DB_URL), &[&prod]);
    commit_all(&s, &manifest, "new database password");
    push();
    let o = agent(None);
    assert_eq!(o.code, 1, "{o:?}");
    assert_eq!(id(&s), served, "the running container is kept: {o:?}");
    let status = s
        .config("h1", &format!("{}-test.agent", s.platform))
        .labels
        .unwrap();
    assert_eq!(
        status["io.fleetpin.agent.result"], "error",
        "{status:?}\n{o:?}"
    );
    let reason = &status["io.fleetpin.agent.reason"];
    assert!(
        reason.contains("secrets/prod.yaml") && reason.contains("no age identity"),
        "the status says why: {reason}"
    );
    assert_clean("the agent's status", &format!("{status:?}"));
    let audit = s.run_with(
        &["audit", "--format", "json"],
        &[("SOPS_AGE_KEY_FILE", prod.file.to_str().unwrap())],
    );
    assert!(
        audit.stdout.contains("no age identity"),
        "audit shows the agent's reason: {audit:?}"
    );
    assert_clean("audit", &audit.stdout);

    // With its identity again, it follows: the new value is served.
    let o = agent(Some(&prod.file));
    assert_eq!(o.code, 0, "{o:?}");
    assert!(container_env(&s).contains(&format!("DB_URL={NEW_DB_URL}")));

    // A wrong secret fails the gate: the release is refused and not tried again; the secret
    // corrected (the spec hash, which holds no value, is the same) is tried again and serves.
    let gated = manifest.replace(
        "    env:\n",
        "    healthcheck: {test: [\"CMD-SHELL\", \"test \\\"$DB_URL\\\" != broken\"], interval: 1s, timeout: 1s, retries: 1}\n    env:\n",
    );
    assert_ne!(gated, manifest);
    commit_all(&s, &gated, "a gate on the database URL");
    push();
    let o = agent(Some(&prod.file));
    assert_eq!(o.code, 0, "{o:?}");
    let good = id(&s);
    encrypt(&sops, &s, "prod.yaml", &prod_yaml("broken"), &[&prod]);
    commit_all(&s, &gated, "a broken database URL");
    push();
    for attempt in ["first", "second"] {
        let o = agent(Some(&prod.file));
        assert_eq!(o.code, 1, "{attempt}: {o:?}");
        let status = s
            .config("h1", &format!("{}-test.agent", s.platform))
            .labels
            .unwrap();
        assert_eq!(
            status["io.fleetpin.agent.result"], "refused",
            "{attempt}: {status:?}"
        );
        assert_eq!(id(&s), good, "{attempt}: the good container serves on");
    }
    encrypt(&sops, &s, "prod.yaml", &prod_yaml(DB_URL), &[&prod]);
    commit_all(&s, &gated, "the database URL corrected");
    push();
    let o = agent(Some(&prod.file));
    assert_eq!(o.code, 0, "the corrected secret is tried again: {o:?}");
    assert!(container_env(&s).contains(&format!("DB_URL={DB_URL}")));
    assert_ne!(id(&s), good);

    // A plain env_file committed to git is refused where agents follow.
    std::fs::write(dir.join("secrets/app.env"), "APP_SECRET=plain\n").unwrap();
    commit_all(&s, &manifest, "a plain env_file in git");
    push();
    let o = agent(Some(&prod.file));
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        format!("{}{}", o.stdout, o.stderr).contains("plain text"),
        "{o:?}"
    );
}
