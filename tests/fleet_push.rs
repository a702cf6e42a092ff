//! Pushing pin commits (`--push`, `git: {push: true}`) on the private fleet: rollback and promote
//! push their commit to the branch's upstream — a bare repository on disk, and one behind the
//! fleet's sshd over ssh:// —; a remote that moved rejects the push, which exits 1 and keeps the
//! local commit; a branch without an upstream says how to set one. Each test owns its platform
//! name and ports (189xx).

mod support;

use std::path::Path;
use support::Scenario;

/// Runs the git CLI in `dir` (as a teammate or the operator would); panics on failure.
fn git(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> String {
    support::git::cli_as("teammate", dir, args, envs)
}

/// A bare repository at `path`, made the upstream of the scenario's current branch.
fn upstream(s: &Scenario, url: &str, path: &Path, envs: &[(&str, &str)]) -> String {
    git(
        Path::new("/"),
        &["init", "-q", "--bare", path.to_str().unwrap()],
        &[],
    );
    git(s.dir.path(), &["remote", "add", "origin", url], &[]);
    git(s.dir.path(), &["push", "-q", "-u", "origin", "HEAD"], envs);
    git(s.dir.path(), &["rev-parse", "--abbrev-ref", "HEAD"], &[])
}

/// The commit a branch of the bare repository at `path` points to.
fn remote_head(path: &Path, branch: &str) -> String {
    git(path, &["rev-parse", &format!("refs/heads/{branch}")], &[])
}

/// Writes `web`'s pin of `test` and commits it, then applies it.
fn deploy(s: &Scenario, port: u16, version: &str) {
    s.write(&s.manifest(&["h1"], &[("web", port, "")], &[("web", version)]));
    s.apply_ok("test");
}

#[test]
fn rollback_and_promote_push_their_commit_to_the_upstream() {
    let (_, s) = fleet_scenario!("ps-push-local");
    for v in ["1.0.0", "1.1.0", "1.2.0"] {
        s.write_path(18911, [v, "1.0.0", "1.0.0"]);
        s.apply_ok("recette");
    }
    let remote = tempfile::tempdir().unwrap();
    let bare = remote.path().join("platform.git");
    let branch = upstream(&s, bare.to_str().unwrap(), &bare, &[]);

    // rollback --push: the remote's branch is the pin commit.
    let out = s.run(&["rollback", "recette", "--yes", "--push"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(s.head_subject(), "rollback recette: web 1.2.0 -> 1.1.0");
    assert_eq!(remote_head(&bare, &branch), s.head());
    assert!(
        out.stdout
            .contains(&format!("pushed {} to origin/{branch}", &s.head()[..12])),
        "{out:?}"
    );

    // `git: {push: true}` in the manifest: promote pushes without the flag.
    let text = std::fs::read_to_string(s.path()).unwrap();
    std::fs::write(s.path(), format!("{text}git: {{push: true}}\n")).unwrap();
    s.commit("push pin commits");
    git(s.dir.path(), &["push", "-q"], &[]);
    let out = s.run(&["promote", "recette", "preprod", "--format", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        s.head_subject(),
        "promote recette -> preprod: web 1.0.0 -> 1.1.0"
    );
    assert_eq!(remote_head(&bare, &branch), s.head());
    let doc = out.json();
    assert_eq!(doc["commit"], s.head().as_str());
    assert_eq!(doc["push"]["ok"], true, "{doc}");
    assert_eq!(doc["push"]["to"], format!("origin/{branch}"), "{doc}");

    // --no-push: committed here only.
    s.apply_ok("preprod");
    let pushed = s.head();
    let out = s.run(&["promote", "preprod", "prod", "--no-push"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        s.head_subject(),
        "promote preprod -> prod: web 1.0.0 -> 1.1.0"
    );
    assert_eq!(remote_head(&bare, &branch), pushed);
    assert!(!out.stdout.contains("pushed"), "{out:?}");
}

#[test]
fn a_rejected_push_exits_1_and_keeps_the_local_commit() {
    let (_, s) = fleet_scenario!("ps-push-reject");
    deploy(&s, 18921, "1.0.0");
    deploy(&s, 18921, "1.1.0");
    let remote = tempfile::tempdir().unwrap();
    let bare = remote.path().join("platform.git");
    let branch = upstream(&s, bare.to_str().unwrap(), &bare, &[]);

    // A teammate pushes first.
    let other = remote.path().join("teammate");
    git(
        Path::new("/"),
        &[
            "clone",
            "-q",
            bare.to_str().unwrap(),
            other.to_str().unwrap(),
        ],
        &[],
    );
    std::fs::write(other.join("NOTES"), "deploy freeze on Friday\n").unwrap();
    git(&other, &["add", "NOTES"], &[]);
    git(&other, &["commit", "-q", "-m", "notes"], &[]);
    git(&other, &["push", "-q"], &[]);
    let theirs = remote_head(&bare, &branch);

    let out = s.run(&["rollback", "test", "--yes", "--push", "--format", "json"]);
    assert_eq!(out.code, 1, "{out:?}");
    // The hosts went back and the pin commit is kept here; the remote keeps the teammate's.
    assert_eq!(s.version("h1", 18921).as_deref(), Some("1.0.0"));
    assert_eq!(s.head_subject(), "rollback test: web 1.1.0 -> 1.0.0");
    assert_eq!(remote_head(&bare, &branch), theirs);
    let doc = out.json();
    assert_eq!(doc["ok"], false, "{doc}");
    assert_eq!(doc["commit"], s.head().as_str(), "{doc}");
    assert_eq!(doc["push"]["ok"], false, "{doc}");
    let error = doc["push"]["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("the push to origin/{branch} was rejected"))
            && error.contains(&format!("commit {} is kept here", &s.head()[..12]))
            && error.contains("`git pull --rebase`")
            && error.contains("then `git push`"),
        "{error}"
    );
    assert!(out.stderr.contains(error), "{out:?}");

    // What the message says works: pull --rebase, push; the remote has both.
    git(s.dir.path(), &["pull", "-q", "--rebase"], &[]);
    git(s.dir.path(), &["push", "-q"], &[]);
    assert_eq!(remote_head(&bare, &branch), s.head());
    assert_eq!(s.head_subject(), "rollback test: web 1.1.0 -> 1.0.0");
}

#[test]
fn a_branch_without_upstream_is_told_how_to_set_one() {
    let (_, s) = fleet_scenario!("ps-push-noup");
    s.write_path(18941, ["1.1.0", "1.0.0", "1.0.0"]);
    s.apply_ok("recette");
    let branch = git(s.dir.path(), &["rev-parse", "--abbrev-ref", "HEAD"], &[]);
    let out = s.run(&["promote", "recette", "preprod", "--push"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(
        s.head_subject(),
        "promote recette -> preprod: web 1.0.0 -> 1.1.0"
    );
    assert!(
        out.stderr
            .contains(&format!("branch `{branch}` has no upstream"))
            && out
                .stderr
                .contains(&format!("`git branch --set-upstream-to=origin/{branch}`"))
            && out.stderr.contains("is kept here"),
        "{out:?}"
    );
    // --push and --no-commit contradict each other.
    let out = s.run(&["promote", "recette", "preprod", "--push", "--no-commit"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("cannot be used with"), "{out:?}");
}

#[test]
fn a_push_over_ssh_reaches_the_repository_behind_the_fleets_sshd() {
    let (fleet, ssh) = require_ssh!();
    let s = Scenario::new(&fleet, "ps-push-ssh");
    deploy(&s, 18931, "1.0.0");
    deploy(&s, 18931, "1.1.0");
    deploy(&s, 18931, "1.2.0");
    // The sshd shares this machine's filesystem: the bare repository's absolute path is its path
    // on the ssh host too.
    let remote = tempfile::tempdir().unwrap();
    let bare = remote.path().join("platform.git");
    let url = format!("ssh://{}@{}:2222{}", ssh.user, ssh.addr, bare.display());
    let with_key = [("GIT_SSH_COMMAND", ssh.command())];
    let with_key: Vec<(&str, &str)> = with_key.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let branch = upstream(&s, &url, &bare, &with_key);
    let before = remote_head(&bare, &branch);

    // Without the fleet's key and known_hosts: git's ssh runs in BatchMode, fails at once, exit 1.
    let out = s.run(&["rollback", "test", "--yes", "--push"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("git push to origin/{branch} failed"))
            && out.stderr.contains("is kept here"),
        "{out:?}"
    );
    assert_eq!(s.head_subject(), "rollback test: web 1.2.0 -> 1.1.0");
    assert_eq!(remote_head(&bare, &branch), before);

    // With them (the operator's ssh command for git): pushed over ssh://, both commits.
    let out = s.run_with(&["rollback", "test", "--yes", "--push"], &with_key);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(s.head_subject(), "rollback test: web 1.1.0 -> 1.0.0");
    assert_eq!(remote_head(&bare, &branch), s.head());
    assert_eq!(s.version("h1", 18931).as_deref(), Some("1.0.0"));
}
