//! fleetpin against SOPS files the real `sops` CLI makes now (tests/sops.rs reads fixtures made
//! once): what an operator does with sops — encrypt for one or two recipients, `updatekeys`,
//! `rotate`, change a value — and what fleetpin then plans, applies, refuses and validates.
//! Hosts are in memory (tests/support/mem.rs), the manifest and its SOPS files in a temp git
//! repository; no Docker. Needs `sops` and `age-keygen` (tests/support/sops.rs says where they
//! are found); the tests that need neither run everywhere.

mod support;

use fleetpin::host::report::ActionStatus;
use fleetpin::manifest::resolve;
use fleetpin::ops::apply::ApplyOutcome;
use fleetpin::ops::context::Recorder;
use fleetpin::ops::secrets::{PlainInGit, SecretFiles};
use fleetpin::plan::{Change, ChangeKind, STALE_SECRETS};
use fleetpin::secrets::{Identities, KeyPath, KeyStep, SopsError, SopsFile};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use support::mem::{self, Hosts, Repo};
use support::sops::{AgeKey, Sops};

const WEB: &str = "acme-prod-web";

/// The made-up secrets of these tests: none may ever reach an error, a plan or an event.
const VALUES: [&str; 6] = ["pw-1", "pw-2", "tok-1", "tok-2", "dotted-1", "listed-1"];

const SECRETS_YAML: &str =
    "db:\n  password: pw-1\na:\n  b.c: dotted-1\nlist:\n  - v: listed-1\n    w: other\n";
const APP_ENV: &str = "API_TOKEN=tok-1\nLOG_LEVEL=debug\n";

/// `web` in `prod` on h1, pinned at 1.0.0: its env_file `app.env` and one value of
/// `secrets.yaml`, both SOPS files.
const MANIFEST: &str = "platform: acme
retain: 2
services:
  web:
    image: r/web
    update: {drain: 0s}
    env_file: app.env
    env:
      MODE: plain
      DB_PASSWORD: {sops: secrets.yaml, key: db.password}
environments:
  prod:
    hosts:
      h1: {endpoint: \"unix:///x.sock\"}
    versions: {web: \"1.0.0\"}
";

fn ids(key: &AgeKey) -> Identities {
    Identities::from_file(&key.file).unwrap()
}

fn open(path: &Path, key: &AgeKey) -> fleetpin::secrets::Decrypted {
    let text = std::fs::read_to_string(path).unwrap();
    let name = path.file_name().unwrap().to_str().unwrap();
    SopsFile::parse(name, &text)
        .unwrap()
        .decrypt(&ids(key))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn pairs(doc: &fleetpin::secrets::Decrypted) -> Vec<(String, String)> {
    doc.env_pairs()
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, v.expose().to_string()))
        .collect()
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn key(steps: &[&str]) -> KeyPath {
    KeyPath(
        steps
            .iter()
            .map(|s| match s.parse::<usize>() {
                Ok(i) => KeyStep::Index(i),
                Err(_) => KeyStep::Key(s.to_string()),
            })
            .collect(),
    )
}

/// (service, kind, reason) of each change.
fn rows(changes: &[Change]) -> Vec<(String, ChangeKind, Option<String>)> {
    changes
        .iter()
        .map(|c| (c.service.clone(), c.kind, c.reason.clone()))
        .collect()
}

fn unchanged() -> Vec<(String, ChangeKind, Option<String>)> {
    vec![("web".into(), ChangeKind::Unchanged, None)]
}

/// `text` with none of the made-up secret values in it.
fn assert_no_value(text: &str) {
    for v in VALUES {
        assert!(!text.contains(v), "a secret value ({v}) shown: {text}");
    }
}

/// `line` with the first base64 character after `marker` changed (still valid base64).
fn flip_after(line: &str, marker: &str) -> String {
    let at = line.find(marker).unwrap() + marker.len();
    let mut bytes = line.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

/// The repository of `MANIFEST`, its two SOPS files encrypted now for `recipients`, all
/// committed.
fn platform(sops: &Sops, recipients: &[&AgeKey]) -> Repo {
    let repo = Repo::new();
    repo.write("platform.yaml", MANIFEST);
    sops.encrypt(repo.root(), "app.env", APP_ENV, recipients);
    sops.encrypt(repo.root(), "secrets.yaml", SECRETS_YAML, recipients);
    repo.commit(&["platform.yaml", "app.env", "secrets.yaml"], "web 1.0.0");
    repo
}

#[test]
fn dotenv_yaml_and_json_files_made_now_decrypt_in_fleetpin() {
    let sops = require_sops!();
    let dir = tempfile::tempdir().unwrap();
    let alice = sops.key(dir.path(), "alice");
    let env = sops.encrypt(dir.path(), "app.env", APP_ENV, &[&alice]);
    let yaml = sops.encrypt(dir.path(), "secrets.yaml", SECRETS_YAML, &[&alice]);
    let json = sops.encrypt(
        dir.path(),
        "app.json",
        r#"{"api_key": "json-1", "nested": {"inner": "inner-1", "list": ["x", "y"]}, "count": 7}"#,
        &[&alice],
    );
    for f in [&env, &yaml, &json] {
        assert!(
            fleetpin::secrets::is_sops(&std::fs::read_to_string(f).unwrap()),
            "{f:?}"
        );
    }

    let doc = open(&env, &alice);
    assert_eq!(
        pairs(&doc),
        owned(&[("API_TOKEN", "tok-1"), ("LOG_LEVEL", "debug")])
    );

    let doc = open(&yaml, &alice);
    let get = |p: &KeyPath| doc.get(p).unwrap().expose().to_string();
    assert_eq!(get(&KeyPath::dotted("db.password")), "pw-1");
    assert_eq!(get(&key(&["a", "b.c"])), "dotted-1");
    assert_eq!(get(&key(&["list", "0", "v"])), "listed-1");

    let doc = open(&json, &alice);
    assert_eq!(pairs(&doc), owned(&[("api_key", "json-1"), ("count", "7")]));
    let get = |p: &KeyPath| doc.get(p).unwrap().expose().to_string();
    assert_eq!(get(&KeyPath::dotted("nested.inner")), "inner-1");
    assert_eq!(get(&key(&["nested", "list", "1"])), "y");
}

#[test]
fn a_file_for_two_recipients_opens_with_either_identity_and_names_both_to_a_third() {
    let sops = require_sops!();
    let dir = tempfile::tempdir().unwrap();
    let [alice, bob, carol] = ["alice", "bob", "carol"].map(|n| sops.key(dir.path(), n));
    let yaml = sops.encrypt(dir.path(), "secrets.yaml", SECRETS_YAML, &[&alice, &bob]);
    let file = SopsFile::parse("secrets.yaml", &std::fs::read_to_string(&yaml).unwrap()).unwrap();
    assert_eq!(
        file.recipients(),
        [alice.public.clone(), bob.public.clone()]
    );
    for who in [&alice, &bob] {
        let doc = file.decrypt(&ids(who)).unwrap();
        assert_eq!(
            doc.get(&KeyPath::dotted("db.password")).unwrap().expose(),
            "pw-1"
        );
    }
    let err = file.decrypt(&ids(&carol)).unwrap_err();
    assert!(matches!(err, SopsError::NoIdentity { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "secrets.yaml: no age identity at hand opens it; it is encrypted for {}, {}",
            alice.public, bob.public
        )
    );
}

#[test]
fn a_dotted_key_and_a_list_index_resolve_through_the_manifest() {
    let sops = require_sops!();
    let keys = tempfile::tempdir().unwrap();
    let alice = sops.key(keys.path(), "alice");
    let repo = Repo::new();
    let text = MANIFEST.replace(
        "      DB_PASSWORD: {sops: secrets.yaml, key: db.password}\n",
        "      DB_PASSWORD: {sops: secrets.yaml, key: db.password}\n      DOTTED: {sops: secrets.yaml, key: [a, \"b.c\"]}\n      LISTED: {sops: secrets.yaml, key: [list, 0, v]}\n",
    ).replace("    env_file: app.env\n", "");
    repo.write("platform.yaml", &text);
    sops.encrypt(repo.root(), "secrets.yaml", SECRETS_YAML, &[&alice]);
    repo.commit(&["platform.yaml", "secrets.yaml"], "web 1.0.0");

    // The manifest reads the key paths as written.
    let m = fleetpin::manifest::parse_str(&text).unwrap();
    let refs = &m.services["web"].secret_env;
    assert_eq!(refs["DOTTED"].value.key, key(&["a", "b.c"]));
    assert_eq!(refs["LISTED"].value.key, key(&["list", "0", "v"]));
    assert_eq!(refs["LISTED"].value.file, "secrets.yaml");

    // Resolution reads them from the commit deployed.
    let loaded = repo.load();
    let ks = mem::keys(Some(&alice.file));
    let files = SecretFiles::new(&loaded, &ks, PlainInGit::Allow);
    let r = resolve::resolve_host(&loaded.manifest, "prod", "h1", &files).unwrap();
    let values: BTreeMap<&str, &str> = r[0]
        .secret_env
        .iter()
        .map(|(k, v)| (k.as_str(), v.expose()))
        .collect();
    assert_eq!(
        values,
        BTreeMap::from([
            ("DB_PASSWORD", "pw-1"),
            ("DOTTED", "dotted-1"),
            ("LISTED", "listed-1")
        ])
    );

    // And they reach the container.
    let hosts = Hosts::one("h1");
    let (ctx, _) = mem::ctx(mem::keys(Some(&alice.file)));
    mem::apply(&ctx, &hosts, &loaded, "prod");
    let env = hosts.env_of("h1", WEB);
    assert_eq!(env["DOTTED"], "dotted-1");
    assert_eq!(env["LISTED"], "listed-1");
    assert_eq!(env["DB_PASSWORD"], "pw-1");
    assert_eq!(env["MODE"], "plain");
}

#[test]
fn updatekeys_and_rotate_plan_unchanged() {
    let sops = require_sops!();
    let keys = tempfile::tempdir().unwrap();
    let [alice, bob] = ["alice", "bob"].map(|n| sops.key(keys.path(), n));
    let repo = platform(&sops, &[&alice]);
    let hosts = Hosts::one("h1");
    let (ctx, _) = mem::ctx(mem::keys(Some(&alice.file)));
    mem::apply(&ctx, &hosts, &repo.load(), "prod");
    let env = hosts.env_of("h1", WEB);
    assert_eq!(
        (env["DB_PASSWORD"].as_str(), env["API_TOKEN"].as_str()),
        ("pw-1", "tok-1")
    );
    let id = hosts.container("h1", WEB).unwrap().id;

    // Bob joins: both files re-encrypted for alice and bob, committed. Bob's key alone plans.
    let before = (repo.read("app.env"), repo.read("secrets.yaml"));
    for f in ["app.env", "secrets.yaml"] {
        sops.updatekeys(&repo.path(f), &alice, &[&alice, &bob]);
    }
    assert!(repo.read("secrets.yaml").contains(&bob.public));
    assert!(repo.read("app.env").contains(&bob.public));
    repo.commit(&["app.env", "secrets.yaml"], "secrets: bob joins");
    let (bobs, _) = mem::ctx(mem::keys(Some(&bob.file)));
    assert_eq!(
        rows(&mem::changes(&bobs, &hosts, &repo.load(), "prod")),
        unchanged()
    );

    // A new data key: every ciphertext changes, no value does.
    let updated = repo.read("secrets.yaml");
    for f in ["app.env", "secrets.yaml"] {
        sops.rotate(&repo.path(f), &alice);
    }
    let db = |t: &str| {
        t.lines()
            .find(|l| l.trim_start().starts_with("password:"))
            .unwrap()
            .to_string()
    };
    assert_ne!(db(&repo.read("secrets.yaml")), db(&updated));
    assert_ne!(db(&repo.read("secrets.yaml")), db(&before.1));
    assert_ne!(repo.read("app.env"), before.0);
    repo.commit(&["app.env", "secrets.yaml"], "secrets: rotate the data key");
    let loaded = repo.load();
    for ctx in [&ctx, &bobs] {
        assert_eq!(
            rows(&mem::changes(ctx, &hosts, &loaded, "prod")),
            unchanged()
        );
    }
    assert_eq!(hosts.container("h1", WEB).unwrap().id, id, "never replaced");
}

#[test]
fn a_changed_value_plans_reconfigure_and_apply_gives_the_container_the_new_value() {
    let sops = require_sops!();
    let keys = tempfile::tempdir().unwrap();
    let alice = sops.key(keys.path(), "alice");
    let repo = platform(&sops, &[&alice]);
    let hosts = Hosts::one("h1");
    let (ctx, recorder) = mem::ctx(mem::keys(Some(&alice.file)));
    mem::apply(&ctx, &hosts, &repo.load(), "prod");
    let id = hosts.container("h1", WEB).unwrap().id;

    sops.set(
        &repo.path("secrets.yaml"),
        &alice,
        &["db", "password"],
        "pw-2",
    );
    repo.commit(&["secrets.yaml"], "secrets: a new database password");
    let loaded = repo.load();
    let changes = mem::changes(&ctx, &hosts, &loaded, "prod");
    assert_eq!(
        rows(&changes),
        [(
            "web".into(),
            ChangeKind::Reconfigure,
            Some(STALE_SECRETS.into())
        )]
    );
    assert_eq!(changes[0].container.as_deref(), Some(id.as_str()));
    assert_eq!(
        (changes[0].from.as_deref(), changes[0].to.as_deref()),
        (Some("1.0.0"), Some("1.0.0"))
    );
    assert_eq!(changes[0].relaunch, None);

    // The env_file's value too: still the one reconfigure.
    sops.set(&repo.path("app.env"), &alice, &["API_TOKEN"], "tok-2");
    repo.commit(&["app.env"], "secrets: a new token");
    let loaded = repo.load();
    let changes = mem::changes(&ctx, &hosts, &loaded, "prod");
    assert_eq!(
        rows(&changes),
        [(
            "web".into(),
            ChangeKind::Reconfigure,
            Some(STALE_SECRETS.into())
        )]
    );
    assert_no_value(&serde_json::to_string(&changes).unwrap());

    let ApplyOutcome::Hosts(out) = mem::apply(&ctx, &hosts, &loaded, "prod") else {
        panic!("a plain-host environment");
    };
    let done: Vec<(&str, ChangeKind, ActionStatus)> = out.hosts[0]
        .actions
        .iter()
        .map(|a| (a.service.as_str(), a.kind, a.status))
        .collect();
    assert_eq!(
        done,
        [("web", ChangeKind::Reconfigure, ActionStatus::Done)],
        "apply does what plan showed"
    );
    let env = hosts.env_of("h1", WEB);
    assert_eq!(
        (env["DB_PASSWORD"].as_str(), env["API_TOKEN"].as_str()),
        ("pw-2", "tok-2"),
        "the container has the new values"
    );
    assert_ne!(hosts.container("h1", WEB).unwrap().id, id);
    assert_eq!(
        rows(&mem::changes(&ctx, &hosts, &loaded, "prod")),
        unchanged()
    );
    // What the operations said names no value.
    for e in recorder.events() {
        assert_no_value(&serde_json::to_string(&e).unwrap());
    }
}

/// `prepare` of `apply prod` failed before any host was contacted: its error text.
fn refused_before_any_host(ctx: &fleetpin::ops::context::Ctx, repo: &Repo) -> String {
    let hosts = Hosts::one("h1");
    let err = match mem::prepare(ctx, &hosts, &repo.load(), "prod") {
        Ok(_) => panic!("apply was not refused"),
        Err(e) => e.to_string(),
    };
    assert_eq!(hosts.connects(), 0, "no host contacted: {err}");
    let s = hosts.engine("h1").state.lock().unwrap();
    assert!(
        s.containers.is_empty() && s.calls.is_empty(),
        "{:?}",
        s.calls
    );
    assert_no_value(&err);
    err
}

#[test]
fn a_wrong_identity_stops_before_any_host_naming_the_file_and_its_recipients() {
    let sops = require_sops!();
    let keys = tempfile::tempdir().unwrap();
    let [alice, bob, carol] = ["alice", "bob", "carol"].map(|n| sops.key(keys.path(), n));
    let repo = platform(&sops, &[&alice, &bob]);
    let (ctx, _) = mem::ctx(mem::keys(Some(&carol.file)));
    let err = refused_before_any_host(&ctx, &repo);
    assert_eq!(
        err,
        format!(
            "cannot read the secret `DB_PASSWORD` of service `web`: secrets.yaml (commit {}): no age identity at hand opens it; it is encrypted for {}, {}",
            repo.head_short(),
            alice.public,
            bob.public
        )
    );
    // No identity at all: the same refusal.
    let (none, _) = mem::ctx(mem::keys(None));
    let err = refused_before_any_host(&none, &repo);
    assert!(
        err.contains("secrets.yaml (commit ") && err.contains(&alice.public),
        "{err}"
    );
}

#[test]
fn a_sops_env_file_the_deployed_commit_does_not_hold_is_refused() {
    let sops = require_sops!();
    let keys = tempfile::tempdir().unwrap();
    let alice = sops.key(keys.path(), "alice");
    // The manifest and secrets.yaml are committed; app.env, encrypted, only in the working tree.
    let repo = Repo::new();
    repo.write("platform.yaml", MANIFEST);
    sops.encrypt(repo.root(), "app.env", APP_ENV, &[&alice]);
    sops.encrypt(repo.root(), "secrets.yaml", SECRETS_YAML, &[&alice]);
    repo.commit(&["platform.yaml", "secrets.yaml"], "web 1.0.0");
    let (ctx, _) = mem::ctx(mem::keys(Some(&alice.file)));
    let err = refused_before_any_host(&ctx, &repo);
    assert!(
        err.contains("app.env") && err.contains("not committed") && err.contains("commit it"),
        "{err}"
    );
    // Committed, it deploys.
    repo.commit(&["app.env"], "app.env");
    let hosts = Hosts::one("h1");
    assert!(mem::prepare(&ctx, &hosts, &repo.load(), "prod").is_ok());
}

#[test]
fn a_tampered_file_is_a_mac_error_and_nothing_is_created() {
    let sops = require_sops!();
    let keys = tempfile::tempdir().unwrap();
    let alice = sops.key(keys.path(), "alice");
    let repo = platform(&sops, &[&alice]);
    let text = repo.read("secrets.yaml");
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("password:"))
        .unwrap();
    repo.write(
        "secrets.yaml",
        &text.replace(line, &flip_after(line, "data:")),
    );
    repo.commit(&["secrets.yaml"], "secrets: one character changed");
    let (ctx, _) = mem::ctx(mem::keys(Some(&alice.file)));
    let err = refused_before_any_host(&ctx, &repo);
    assert_eq!(
        err,
        format!(
            "cannot read the secret `DB_PASSWORD` of service `web`: secrets.yaml (commit {}): MAC mismatch: the file was changed after sops encrypted it",
            repo.head_short()
        )
    );
}

#[test]
fn a_file_with_key_groups_is_refused_clearly() {
    // sops made it once with two key groups and a Shamir threshold (tests/secrets/make.sh).
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/secrets");
    let repo = Repo::new();
    std::fs::copy(fixtures.join("groups.yaml"), repo.path("groups.yaml")).unwrap();
    repo.write(
        "platform.yaml",
        &MANIFEST
            .replace(
                "secrets.yaml, key: db.password",
                "groups.yaml, key: billing.db_url",
            )
            .replace("    env_file: app.env\n", ""),
    );
    repo.commit(&["platform.yaml", "groups.yaml"], "web 1.0.0");
    let (ctx, _) = mem::ctx(mem::keys(Some(&fixtures.join("alice.agekey"))));
    let err = refused_before_any_host(&ctx, &repo);
    assert_eq!(
        err,
        format!(
            "cannot read the secret `DB_PASSWORD` of service `web`: groups.yaml (commit {}): key groups (`sops.key_groups`) is not supported; re-encrypt it for plain age recipients",
            repo.head_short()
        )
    );
    assert!(!err.contains("postgres://billing"), "{err}");
}

#[test]
fn a_plain_env_file_in_git_is_an_error_where_agents_follow_and_a_warning_elsewhere() {
    let repo = Repo::new();
    let text = "platform: acme
services:
  web: {image: r/web, update: {drain: 0s}, env_file: app.env}
environments:
  prod:
    pull: true
    hosts:
      h1: {endpoint: \"unix:///x.sock\"}
    versions: {web: \"1.0.0\"}
  staging:
    hosts:
      h1: {endpoint: \"unix:///y.sock\"}
    versions: {web: \"1.0.0\"}
";
    repo.write("platform.yaml", text);
    repo.write("app.env", "API_TOKEN=tok-1\n");
    repo.commit(
        &["platform.yaml", "app.env"],
        "web, its env_file in plain text",
    );
    let loaded = repo.load();
    let keys = mem::keys(None);

    // prod is followed by agents: resolving it (what plan and the agent do) is refused.
    let hosts = Hosts::one("h1");
    let err = match mem::block(fleetpin::ops::deploy::prepare_on(
        &hosts,
        &loaded,
        "prod",
        &Default::default(),
        std::time::Duration::from_secs(1),
        false,
        &keys,
    )) {
        Ok(_) => panic!("a plain env_file in git was read for an environment agents follow"),
        Err(e) => e.to_string(),
    };
    assert_eq!(
        err,
        format!(
            "cannot read env_file `app.env` of service `web`: app.env (commit {}) is a plain env_file committed to git, and this environment is followed by agents: encrypt it with sops (docs/secrets.md) or keep it out of git",
            repo.head_short()
        )
    );
    assert_no_value(&err);
    assert_eq!(hosts.connects(), 0);

    // staging: read as before, with a warning.
    let (ctx, recorder) = mem::ctx(keys);
    mem::apply(&ctx, &hosts, &loaded, "staging");
    assert_eq!(hosts.env_of("h1", "acme-staging-web")["API_TOKEN"], "tok-1");
    let warnings = warnings(&recorder);
    assert_eq!(
        warnings,
        [(
            "apply".to_string(),
            "staging".to_string(),
            "app.env committed to git in plain text: anyone who can read the repository reads these secrets; encrypt them with sops (docs/secrets.md)".to_string()
        )]
    );
}

/// (command, environment, message) of each warning an operation emitted.
fn warnings(recorder: &Recorder) -> Vec<(String, String, String)> {
    recorder
        .events()
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .filter(|d| d["kind"] == "warning")
        .map(|d| {
            let s = |v: &Value| v.as_str().unwrap().to_string();
            (
                s(&d["operation"]["command"]),
                s(&d["operation"]["environment"]),
                s(&d["message"]),
            )
        })
        .collect()
}

/// `fleetpin validate ARGS…` in the repository, with no identity but `key`'s: no HOME key file,
/// no inherited SOPS variable.
fn validate(repo: &Repo, key: Option<&AgeKey>, args: &[&str]) -> support::Out {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = support::run::fleetpin_in(repo.root());
    cmd.arg("validate")
        .args(args)
        .env("HOME", home.path())
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("SOPS_AGE_KEY")
        .env_remove("SOPS_AGE_KEY_FILE");
    if let Some(k) = key {
        cmd.env("SOPS_AGE_KEY_FILE", &k.file);
    }
    support::run::output(&mut cmd)
}

#[test]
fn validate_reads_the_sops_files_as_a_deploy_would() {
    let sops = require_sops!();
    let keys = tempfile::tempdir().unwrap();
    let alice = sops.key(keys.path(), "alice");
    let repo = platform(&sops, &[&alice]);

    // With the identity: clean.
    let out = validate(&repo, Some(&alice), &["--format", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["warnings"], serde_json::json!([]), "{out:?}");
    let out = validate(&repo, Some(&alice), &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!out.stderr.contains("warning"), "{out:?}");

    // Without: valid, with a warning naming each file it cannot open.
    let out = validate(&repo, None, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    for file in ["app.env", "secrets.yaml"] {
        assert!(
            out.stderr.lines().any(|l| l.starts_with("warning: ")
                && l.contains(&format!("{file} (commit "))
                && l.contains("no age identity at hand opens it")),
            "{file}: {out:?}"
        );
    }
    assert_no_value(&format!("{out:?}"));

    // Tampered: an error located at the manifest's reference to the file.
    let text = repo.read("secrets.yaml");
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("password:"))
        .unwrap();
    repo.write(
        "secrets.yaml",
        &text.replace(line, &flip_after(line, "data:")),
    );
    repo.commit(&["secrets.yaml"], "secrets: one character changed");
    let (row, col) = MANIFEST
        .lines()
        .enumerate()
        .find_map(|(i, l)| l.find("{sops: secrets.yaml").map(|c| (i + 1, c + 1)))
        .unwrap();
    let out = validate(&repo, Some(&alice), &[]);
    assert_eq!(out.code, 1, "{out:?}");
    let located = format!("platform.yaml:{row}:{col}: ");
    assert!(
        out.stderr.lines().any(|l| l.contains(&located)
            && l.contains("secrets.yaml (commit ")
            && l.contains("MAC mismatch")),
        "{located}: {out:?}"
    );
    assert_no_value(&format!("{out:?}"));
}
