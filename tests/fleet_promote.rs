//! Promotion on the private fleet: recette -> preprod -> prod by digest, the gates refused and
//! forced, one changed line per promoted pin, `--rev`, and a tag moved in the registry after
//! promotion that never reaches the next environment.

mod support;

fn changed_lines(a: &str, b: &str) -> Vec<(String, String)> {
    assert_eq!(
        a.lines().count(),
        b.lines().count(),
        "lines were added or removed:\n{b}"
    );
    a.lines()
        .zip(b.lines())
        .filter(|(x, y)| x != y)
        .map(|(x, y)| (x.to_string(), y.to_string()))
        .collect()
}

#[test]
fn recette_to_preprod_to_prod_by_digest() {
    let (fleet, s) = fleet_scenario!("path");
    s.write_path(18201, ["1.1.0", "1.0.0", "1.0.0"]);
    s.apply_ok("recette");
    let tested = s.running_digest("h1", &format!("{}-recette-web", s.platform), &fleet.image);
    assert!(tested.starts_with("sha256:"), "{tested}");

    let before = std::fs::read_to_string(s.path()).unwrap();
    let dry = s.run(&["promote", "recette", "preprod", "--dry-run"]);
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(dry.stdout.contains(&format!("1.1.0@{tested}")), "{dry:?}");
    assert_eq!(
        std::fs::read_to_string(s.path()).unwrap(),
        before,
        "--dry-run writes nothing"
    );

    let out = s.run(&["promote", "recette", "preprod"]);
    assert_eq!(out.code, 0, "{out:?}");
    let after = std::fs::read_to_string(s.path()).unwrap();
    assert_eq!(
        changed_lines(&before, &after),
        vec![(
            "      web: '1.0.0'".to_string(),
            format!("      web: '1.1.0@{tested}'")
        )],
        "one line per promoted pin, quoting kept, comments untouched"
    );
    assert_eq!(
        s.head_subject(),
        "promote recette -> preprod: web 1.0.0 -> 1.1.0"
    );

    s.apply_ok("preprod");
    assert_eq!(
        s.running_digest("h2", &format!("{}-preprod-web", s.platform), &fleet.image),
        tested
    );

    // Nothing left to promote: exit 0, no commit.
    let head = s.head();
    let again = s.run(&["promote", "recette", "preprod"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stdout.contains("Nothing to promote"), "{again:?}");
    assert_eq!(s.head(), head);

    let out = s.run(&["promote", "preprod", "prod"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        s.head_subject(),
        "promote preprod -> prod: web 1.0.0 -> 1.1.0"
    );
    s.apply_ok("prod");
    assert_eq!(
        s.running_digest("h3", &format!("{}-prod-web", s.platform), &fleet.image),
        tested,
        "prod runs byte for byte what recette tested"
    );
    assert_eq!(s.version("h3", 18201).as_deref(), Some("1.1.0"));

    // history shows who moved which pin.
    let h = s.run(&["history", "prod", "--format", "json"]);
    assert_eq!(h.code, 0, "{h:?}");
    let rows = h.json();
    assert_eq!(rows[0]["service"], "web");
    assert_eq!(rows[0]["from"], "1.0.0");
    assert_eq!(rows[0]["to"], format!("1.1.0@{tested}"));
    assert_eq!(
        rows[0]["subject"],
        "promote preprod -> prod: web 1.0.0 -> 1.1.0"
    );
}

#[test]
fn each_gate_refuses_and_can_be_overridden() {
    let (_, s) = fleet_scenario!("gates");
    s.write_path(18211, ["1.1.0", "2.0.0", "1.0.0"]);

    // Not converged: recette never deployed.
    let out = s.run(&["promote", "recette", "preprod"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout.contains("converged") && out.stdout.contains("create"),
        "{out:?}"
    );
    assert!(out.stdout.contains("Refused"), "{out:?}");
    s.apply_ok("recette");

    // Skipping a stage.
    let out = s.run(&["promote", "recette", "prod", "--dry-run"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("does not come right after"), "{out:?}");
    let out = s.run(&["promote", "recette", "prod", "--dry-run", "--force"]);
    assert_eq!(out.code, 0, "the hotfix path: {out:?}");
    assert!(out.stdout.contains("(overridden)"), "{out:?}");

    // Going down in semver order: preprod pins 2.0.0, recette runs 1.1.0.
    let out = s.run(&["promote", "recette", "preprod", "--dry-run"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("2.0.0 -> 1.1.0 goes down"), "{out:?}");
    let out = s.run(&[
        "promote",
        "recette",
        "preprod",
        "--dry-run",
        "--allow-downgrade",
    ]);
    assert_eq!(out.code, 0, "{out:?}");

    // Not converged any more: the recette pin moved but was not applied.
    let text = std::fs::read_to_string(s.path())
        .unwrap()
        .replace("web: \"1.1.0\"", "web: \"1.2.0\"");
    s.write(&text);
    let out = s.run(&["promote", "recette", "preprod", "--allow-downgrade"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout.contains("runs 1.1.0, pinned 1.2.0"),
        "what is off is listed: {out:?}"
    );
    let out = s.run(&[
        "promote",
        "recette",
        "preprod",
        "--allow-downgrade",
        "--force",
        "--no-commit",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        std::fs::read_to_string(s.path())
            .unwrap()
            .contains("web: '1.1.0@sha256:"),
        "forced: the digest recette actually runs is written, not its unapplied pin"
    );

    // A manifest with uncommitted changes is refused (unless --no-commit).
    let out = s.run(&[
        "promote",
        "recette",
        "preprod",
        "--allow-downgrade",
        "--force",
    ]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("uncommitted changes"), "{out:?}");
}

#[test]
fn hosts_running_different_images_under_one_pin_are_refused() {
    let (fleet, s) = fleet_scenario!("split");
    let repo = format!("{}/fleetpin/split", fleet.registry);
    s.push_as("h1", &format!("{}:1.0.0", fleet.image), &repo, "3.0.0");
    let manifest = format!(
        "platform: {p}\nservices:\n  web: {{image: {repo}, ports: [\"18221:8080\"]}}\nenvironments:\n  recette:\n    hosts:\n      a: {{endpoint: \"{a}\", insecure: true}}\n      b: {{endpoint: \"{b}\", insecure: true}}\n    versions: {{web: \"3.0.0\"}}\n  preprod:\n    hosts:\n      c: {{endpoint: \"{c}\", insecure: true}}\n    versions: {{web: \"2.0.0\"}}\n",
        p = s.platform,
        a = s.host("h1").tcp,
        b = s.host("h2").tcp,
        c = s.host("h3").tcp,
    );
    s.write(&manifest);
    assert_eq!(s.run(&["apply", "recette", "--yes", "--host", "a"]).code, 0);
    // The tag is moved in the registry, then host b pulls it.
    s.push_as("h3", &format!("{}:2.0.0", fleet.image), &repo, "3.0.0");
    assert_eq!(s.run(&["apply", "recette", "--yes", "--host", "b"]).code, 0);
    let out = s.run(&["promote", "recette", "preprod"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout.contains("different images under one pin"),
        "{out:?}"
    );
    let forced = s.run(&["promote", "recette", "preprod", "--force"]);
    assert_eq!(
        forced.code, 1,
        "--force never skips the digest gate: {forced:?}"
    );
}

#[test]
fn a_tag_moved_after_promotion_never_reaches_the_next_environment() {
    let (fleet, s) = fleet_scenario!("moved");
    let repo = format!("{}/fleetpin/moved", fleet.registry);
    let tested = s.push_as("h1", &format!("{}:1.1.0", fleet.image), &repo, "4.0.0");
    let manifest = format!(
        "platform: {p}\nservices:\n  web: {{image: {repo}, ports: [\"18231:8080\"]}}\nenvironments:\n  recette:\n    hosts: {{a: {{endpoint: \"{a}\", insecure: true}}}}\n    versions: {{web: \"4.0.0\"}}\n  prod:\n    hosts: {{b: {{endpoint: \"{b}\", insecure: true}}}}\n    versions: {{web: \"3.0.0\"}}\n",
        p = s.platform,
        a = s.host("h1").tcp,
        b = s.host("h2").tcp,
    );
    s.write(&manifest);
    s.apply_ok("recette");
    assert_eq!(s.run(&["promote", "recette", "prod"]).code, 0);
    assert!(
        std::fs::read_to_string(s.path())
            .unwrap()
            .contains(&format!("4.0.0@{tested}"))
    );

    // After testing, someone re-pushes 4.0.0 with other content.
    let moved = s.push_as("h3", &format!("{}:2.0.0", fleet.image), &repo, "4.0.0");
    assert_ne!(moved, tested);
    s.apply_ok("prod");
    assert_eq!(
        s.running_digest("h2", &format!("{}-prod-web", s.platform), &repo),
        tested
    );
    assert_eq!(
        s.version("h2", 18231).as_deref(),
        Some("1.1.0"),
        "the tested content runs"
    );
}

#[test]
fn rev_deploys_an_older_revision_with_its_commit_label() {
    let (_, s) = fleet_scenario!("rev");
    s.write_web(&["h3"], 18241, "1.0.0");
    let old = s.head();
    s.write_web(&["h3"], 18241, "1.2.0");
    let plan = s.run(&["plan", "test", "--rev", "HEAD~1"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert!(
        plan.stdout.contains(&old[..12]),
        "the plan names the revision's commit: {plan:?}"
    );
    let out = s.run(&["apply", "test", "--rev", "HEAD~1", "--yes"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(s.version("h3", 18241).as_deref(), Some("1.0.0"));
    let labels = s
        .config("h3", &format!("{}-test-web", s.platform))
        .labels
        .unwrap();
    assert_eq!(labels["io.fleetpin.commit"], old);
    let bad = s.run(&["plan", "test", "--rev", "no-such-branch"]);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("not a revision"), "{bad:?}");

    // Uncommitted changes deploy as `uncommitted`, with a warning.
    let text = std::fs::read_to_string(s.path())
        .unwrap()
        .replace("1.2.0", "1.1.0");
    std::fs::write(s.path(), text).unwrap();
    let out = s.apply_ok("test");
    assert!(out.stderr.contains("uncommitted"), "{out:?}");
    let labels = s
        .config("h3", &format!("{}-test-web", s.platform))
        .labels
        .unwrap();
    assert_eq!(labels["io.fleetpin.commit"], "uncommitted");
}

#[test]
fn promote_commits_the_manifest_alone_and_refuses_a_detached_head() {
    let (_, s) = fleet_scenario!("staged");
    s.write_path(18251, ["1.1.0", "1.0.0", "1.0.0"]);
    s.apply_ok("recette");
    // An operator has a secrets file staged, not meant for this commit.
    let repo = git2::Repository::open(s.dir.path()).unwrap();
    std::fs::write(s.dir.path().join("prod.env"), "DB_PASSWORD=hunter2\n").unwrap();
    let mut index = repo.index().unwrap();
    index.add_path(std::path::Path::new("prod.env")).unwrap();
    index.write().unwrap();

    let out = s.run(&["promote", "recette", "preprod"]);
    assert_eq!(out.code, 0, "{out:?}");
    let head = repo.head().unwrap().peel_to_commit().unwrap();
    let parent = head.parent(0).unwrap();
    let diff = repo
        .diff_tree_to_tree(
            Some(&parent.tree().unwrap()),
            Some(&head.tree().unwrap()),
            None,
        )
        .unwrap();
    let files: Vec<String> = diff
        .deltas()
        .map(|d| d.new_file().path().unwrap().display().to_string())
        .collect();
    assert_eq!(
        files,
        vec!["platform.yaml"],
        "the commit holds the manifest alone"
    );
    // The staged file is still staged, and the manifest's index entry is the committed blob.
    let mut index = repo.index().unwrap();
    index.read(true).unwrap();
    assert!(
        index
            .get_path(std::path::Path::new("prod.env"), 0)
            .is_some()
    );
    let status = repo.status_file(std::path::Path::new("prod.env")).unwrap();
    assert!(status.contains(git2::Status::INDEX_NEW), "{status:?}");
    assert!(
        repo.status_file(std::path::Path::new("platform.yaml"))
            .unwrap()
            .is_empty()
    );

    // A detached HEAD (a CI checkout): refused before anything is done, saying what to do.
    let commit = repo.head().unwrap().peel_to_commit().unwrap().id();
    repo.set_head_detached(commit).unwrap();
    let before = std::fs::read_to_string(s.path()).unwrap();
    let detached = s.run(&["promote", "preprod", "prod", "--force"]);
    assert_eq!(detached.code, 1, "{detached:?}");
    assert!(detached.stderr.contains("HEAD is detached"), "{detached:?}");
    assert!(detached.stderr.contains("--no-commit"), "{detached:?}");
    assert_eq!(std::fs::read_to_string(s.path()).unwrap(), before);
    let rollback = s.run(&["rollback", "recette", "--yes"]);
    assert_eq!(rollback.code, 1, "{rollback:?}");
    assert!(rollback.stderr.contains("HEAD is detached"), "{rollback:?}");
}
