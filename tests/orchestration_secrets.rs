//! Secrets in the planner and the operations, over in-memory hosts (no Docker, no sops: the
//! secrets here come from a plain env_file, which reaches containers the same way a SOPS value
//! does). What issue 20 promised beyond reading files: a container an older fleetpin labelled
//! with the scheme-1 hash (secret digests mixed in) plans `unchanged`, so upgrading fleetpin
//! redeploys nothing; a kept container whose secrets are no longer the reference's is never
//! started again in place of a new one; a rollback to such a container says so.

mod support;

use fleetpin::host::report::ActionStatus;
use fleetpin::ops::apply::{ApplyOutcome, ApplyPlan};
use fleetpin::ops::rollback::{self, RollbackInput, RollbackOutcome};
use fleetpin::plan::{ChangeKind, STALE_SECRETS, labels};
use support::mem::{self, Hosts, Repo};

const WEB: &str = "acme-prod-web";

/// `web` pinned at `version` in `prod` on h1, its secrets in the env_file `app.env` (plain, not
/// committed: read from the working tree beside the manifest).
fn manifest(version: &str) -> String {
    format!(
        "platform: acme\nretain: 2\nservices:\n  web:\n    image: r/web\n    update: {{drain: 0s}}\n    env_file: app.env\n    env: {{MODE: plain}}\nenvironments:\n  prod:\n    hosts:\n      h1: {{endpoint: \"unix:///x.sock\"}}\n    versions: {{web: \"{version}\"}}\n"
    )
}

/// A repository whose env_file holds `TOKEN=token`, `web` pinned at `version` and committed.
fn pin(repo: &Repo, version: &str, token: &str) -> fleetpin::manifest::Loaded {
    repo.write("app.env", &format!("TOKEN={token}\n"));
    repo.write("platform.yaml", &manifest(version));
    repo.commit(&["platform.yaml"], &format!("pin {version}"));
    repo.load()
}

/// (service, kind, reason) of each change.
fn rows(changes: &[fleetpin::plan::Change]) -> Vec<(String, ChangeKind, Option<String>)> {
    changes
        .iter()
        .map(|c| (c.service.clone(), c.kind, c.reason.clone()))
        .collect()
}

/// (service, kind, status, relaunched) of each action an apply took on its one host.
fn actions(out: &ApplyOutcome) -> Vec<(String, ChangeKind, ActionStatus, bool)> {
    let ApplyOutcome::Hosts(h) = out else {
        panic!("a plain-host environment");
    };
    h.hosts[0]
        .actions
        .iter()
        .map(|a| (a.service.clone(), a.kind, a.status, a.relaunched))
        .collect()
}

fn version_of(hosts: &Hosts) -> String {
    hosts.container("h1", WEB).expect("web serves").labels[labels::VERSION].clone()
}

#[test]
fn a_container_labelled_with_the_scheme_1_hash_plans_unchanged() {
    let (repo, hosts) = (Repo::new(), Hosts::one("h1"));
    let (ctx, _) = mem::ctx(mem::keys(None));
    let loaded = pin(&repo, "1.0.0", "t-1");
    mem::apply(&ctx, &hosts, &loaded, "prod");
    let id = hosts.container("h1", WEB).unwrap().id;

    // What an older fleetpin wrote on this very container: the scheme-1 hash.
    let Ok(ApplyPlan::Hosts(plan)) = mem::prepare(&ctx, &hosts, &loaded, "prod") else {
        panic!("a plain-host plan");
    };
    let r = plan.prepared[0].desired[0].clone();
    let legacy = r.legacy_hash.as_str().to_string();
    assert!(!legacy.is_empty());
    assert_ne!(legacy, r.spec_hash, "scheme 1 and scheme 2 differ");
    let relabel = |hash: &str| {
        let mut s = hosts.engine("h1").state.lock().unwrap();
        let c = s.containers.iter_mut().find(|c| c.name == WEB).unwrap();
        c.labels.insert(labels::SPEC_HASH.into(), hash.to_string());
    };
    relabel(&legacy);

    let changes = mem::changes(&ctx, &hosts, &loaded, "prod");
    assert_eq!(
        rows(&changes),
        [("web".into(), ChangeKind::Unchanged, None)]
    );
    assert_eq!(changes[0].container.as_deref(), Some(id.as_str()));
    assert_eq!(changes[0].spec_hash.as_deref(), Some(r.spec_hash.as_str()));

    // The scheme-1 hash holds the values: once the value changed, it no longer matches.
    repo.write("app.env", "TOKEN=t-2\n");
    let changes = mem::changes(&ctx, &hosts, &repo.load(), "prod");
    assert_eq!(
        rows(&changes),
        [(
            "web".into(),
            ChangeKind::Reconfigure,
            Some("the settings changed (spec hash differs)".into())
        )]
    );
}

#[test]
fn a_kept_container_with_stale_secrets_is_not_relaunched() {
    let (repo, hosts) = (Repo::new(), Hosts::one("h1"));
    let (ctx, _) = mem::ctx(mem::keys(None));
    mem::apply(&ctx, &hosts, &pin(&repo, "1.0.0", "t-1"), "prod");
    let kept = hosts.container("h1", WEB).unwrap().id;
    mem::apply(&ctx, &hosts, &pin(&repo, "1.1.0", "t-1"), "prod");
    assert_eq!(version_of(&hosts), "1.1.0");

    // Same secrets: going back to 1.0.0 starts the kept container again.
    let changes = mem::changes(&ctx, &hosts, &pin(&repo, "1.0.0", "t-1"), "prod");
    assert_eq!(
        rows(&changes),
        [("web".into(), ChangeKind::Downgrade, None)]
    );
    assert_eq!(changes[0].relaunch.as_deref(), Some(kept.as_str()));

    // The token changed since: the kept container holds the old one, so a new one is created.
    let loaded = pin(&repo, "1.0.0", "t-2");
    let changes = mem::changes(&ctx, &hosts, &loaded, "prod");
    assert_eq!(
        rows(&changes),
        [("web".into(), ChangeKind::Downgrade, None)]
    );
    assert_eq!(changes[0].relaunch, None);

    hosts.engine("h1").state.lock().unwrap().calls.clear();
    let out = mem::apply(&ctx, &hosts, &loaded, "prod");
    assert_eq!(
        actions(&out),
        [(
            "web".into(),
            ChangeKind::Downgrade,
            ActionStatus::Done,
            false
        )]
    );
    let now = hosts.container("h1", WEB).unwrap();
    assert_ne!(now.id, kept, "a new container, not the kept one");
    assert_eq!(now.labels[labels::VERSION], "1.0.0");
    assert_eq!(hosts.env_of("h1", WEB)["TOKEN"], "t-2");
    let calls = hosts.engine("h1").state.lock().unwrap().calls.clone();
    assert!(calls.iter().any(|c| c.starts_with("create ")), "{calls:?}");
    assert!(!calls.iter().any(|c| c.contains(&kept)), "{calls:?}");
}

#[test]
fn a_rollback_to_older_secret_values_says_so_and_plan_then_reconfigures() {
    let (repo, hosts) = (Repo::new(), Hosts::one("h1"));
    let (ctx, _) = mem::ctx(mem::keys(None));
    mem::apply(&ctx, &hosts, &pin(&repo, "1.0.0", "t-1"), "prod");
    let old = hosts.container("h1", WEB).unwrap().id;
    let loaded = pin(&repo, "1.1.0", "t-2");
    mem::apply(&ctx, &hosts, &loaded, "prod");

    let input = RollbackInput {
        env: "prod".into(),
        run: mem::run_options(),
        ..Default::default()
    };
    let plan = mem::block(rollback::prepare_on(&ctx, &hosts, &loaded, input)).unwrap();
    let RollbackOutcome::Hosts(out) = mem::block(rollback::run(&ctx, &loaded, plan)).unwrap()
    else {
        panic!("a plain-host environment");
    };
    assert!(out.ok, "{:?}", out.notes);
    assert_eq!(
        out.notes,
        [
            "web on h1 runs again with secret values that differ from the reference's current ones: `fleetpin plan prod` shows it as reconfigure, `fleetpin apply prod` gives it the current values"
        ]
    );
    // The very container of 1.0.0 serves again, with its old token.
    let now = hosts.container("h1", WEB).unwrap();
    assert_eq!(
        (now.id.as_str(), version_of(&hosts).as_str()),
        (old.as_str(), "1.0.0")
    );
    assert_eq!(hosts.env_of("h1", WEB)["TOKEN"], "t-1");

    // The rollback pinned 1.0.0; plan sees the stale token, apply gives the current one.
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
    assert_eq!(changes[0].from.as_deref(), Some("1.0.0"));
    assert_eq!(changes[0].to.as_deref(), Some("1.0.0"));
    let out = mem::apply(&ctx, &hosts, &loaded, "prod");
    assert_eq!(
        actions(&out),
        [(
            "web".into(),
            ChangeKind::Reconfigure,
            ActionStatus::Done,
            false
        )]
    );
    assert_eq!(hosts.env_of("h1", WEB)["TOKEN"], "t-2");
    let changes = mem::changes(&ctx, &hosts, &loaded, "prod");
    assert_eq!(
        rows(&changes),
        [("web".into(), ChangeKind::Unchanged, None)]
    );
}

#[test]
fn a_rollback_to_the_same_secret_values_has_no_such_note() {
    let (repo, hosts) = (Repo::new(), Hosts::one("h1"));
    let (ctx, _) = mem::ctx(mem::keys(None));
    mem::apply(&ctx, &hosts, &pin(&repo, "1.0.0", "t-1"), "prod");
    let loaded = pin(&repo, "1.1.0", "t-1");
    mem::apply(&ctx, &hosts, &loaded, "prod");
    let input = RollbackInput {
        env: "prod".into(),
        run: mem::run_options(),
        ..Default::default()
    };
    let plan = mem::block(rollback::prepare_on(&ctx, &hosts, &loaded, input)).unwrap();
    let RollbackOutcome::Hosts(out) = mem::block(rollback::run(&ctx, &loaded, plan)).unwrap()
    else {
        panic!("a plain-host environment");
    };
    assert!(out.ok);
    assert_eq!(out.notes, Vec::<String>::new());
    assert_eq!(version_of(&hosts), "1.0.0");
    let changes = mem::changes(&ctx, &hosts, &repo.load(), "prod");
    assert_eq!(
        rows(&changes),
        [("web".into(), ChangeKind::Unchanged, None)]
    );
}
