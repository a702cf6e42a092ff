//! The real binary, run in a temp dir: exit codes of the contract, output snapshots (insta, with
//! the temp path filtered out), JSON on stdout only, colours off without a terminal.

mod support;

use support::run::fleetpin_in as fleetpin;

const GOOD: &str = r#"# a small platform
platform: acme
services:
  billing:
    image: registry.acme.internal:5000/acme/billing
    ports: ["8081:8080"]
    volumes: ["billing-logs:/var/log/tomcat"]
  db:
    image: postgres
environments:
  recette:
    hosts:
      rec-1: {endpoint: "unix:///var/run/docker.sock"}
    versions: {billing: "2.4.1", db: "15.4"}
  prod:
    max_parallel: 1
    hosts:
      prod-1: {endpoint: "tcp://10.0.2.11:2376", insecure: true}
      prod-2: {endpoint: "ssh://deploy@prod-2", services: [db]}
    versions: {billing: "2.4.0", db: "15.4"}
"#;

const BAD: &str = r#"platform: acme
services:
  billing:
    image: registry.acme.internal:5000/acme/billing
    depends_on: [db]
  db:
    image: postgres
    depends_on: [billing]
environments:
  prod:
    hosts:
      prod-1: {endpoint: "tcp://10.0.2.11:2376"}
    verisons:
      billing: latest
"#;

fn dir_with(manifest: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("platform.yaml"), manifest).unwrap();
    d
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

#[test]
fn validate_accepts_a_good_manifest() {
    let d = dir_with(GOOD);
    let out = fleetpin(d.path()).arg("validate").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    insta::assert_snapshot!(text(&out.stdout), @r"
    ✓ platform.yaml is valid: platform acme, 2 services
      path: recette (1 host, 2 pins) -> prod (2 hosts, 2 pins)
    ");
}

#[test]
fn validate_reports_every_problem_located_and_exits_1() {
    let d = dir_with(BAD);
    let out = fleetpin(d.path()).arg("validate").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    insta::assert_snapshot!(text(&out.stderr));
}

#[test]
fn validate_json_is_one_document_on_stdout() {
    let d = dir_with(BAD);
    let out = fleetpin(d.path())
        .args(["validate", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["valid"], false);
    insta::assert_json_snapshot!(doc["problems"]);

    let d = dir_with(GOOD);
    let out = fleetpin(d.path())
        .args(["validate", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["valid"], true);
    assert_eq!(doc["environments"][1]["pins"]["billing"], "2.4.0");
}

#[test]
fn file_flag_and_env_variable_choose_the_manifest() {
    let d = dir_with(BAD);
    std::fs::write(d.path().join("other.yaml"), GOOD).unwrap();
    let out = fleetpin(d.path())
        .args(["-f", "other.yaml", "validate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let out = fleetpin(d.path())
        .env("FLEETPIN_FILE", "other.yaml")
        .arg("validate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn a_missing_manifest_says_what_to_do() {
    let d = tempfile::tempdir().unwrap();
    let out = fleetpin(d.path()).arg("validate").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("cannot read the manifest"), "{err}");
    assert!(err.contains("-f/--file"), "{err}");
}

#[test]
fn usage_errors_exit_1_and_help_exits_0() {
    let d = tempfile::tempdir().unwrap();
    let out = fleetpin(d.path()).arg("frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = fleetpin(d.path()).args(["plan"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "a missing ENV is a usage error");
    let out = fleetpin(d.path()).arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    insta::assert_snapshot!(text(&out.stdout));
}

#[test]
fn schema_is_draft07_json() {
    let d = tempfile::tempdir().unwrap();
    let out = fleetpin(d.path()).arg("schema").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["$schema"], "http://json-schema.org/draft-07/schema#");
    assert_eq!(s["properties"]["services"]["type"], "object");
}

#[test]
fn completions_and_man_page_come_from_the_same_definition() {
    let d = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let out = fleetpin(d.path())
            .args(["completions", shell])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        let s = text(&out.stdout);
        assert!(
            s.contains("promote") && s.contains("detailed-exitcode"),
            "{shell}"
        );
    }
    let out = fleetpin(d.path()).arg("man").output().unwrap();
    assert!(text(&out.stdout).contains(".TH fleetpin"));
}

#[test]
fn no_colour_when_output_is_not_a_terminal() {
    let d = dir_with(BAD);
    let out = fleetpin(d.path())
        .env_remove("NO_COLOR")
        .arg("validate")
        .output()
        .unwrap();
    assert!(
        !text(&out.stderr).contains('\x1b'),
        "escape codes in piped output"
    );
}

/// An ssh session whose input closes before fleetpin writes a request is an error for that host,
/// never a silent death by SIGPIPE: fleetpin once ran with SIGPIPE's default disposition, and
/// `plan` over a refused ssh port (ssh exits before fleetpin writes) died with no word now and
/// then (CI, fleet_ssh). The race is made certain here: the stand-in `ssh` answers the
/// session's ping, closes its stdin, and only then lets fleetpin write its first API request.
#[test]
fn an_ssh_session_whose_input_closes_is_an_error_not_a_silent_death() {
    use std::os::unix::fs::PermissionsExt;
    let d = dir_with(
        "platform: acme\nservices:\n  billing:\n    image: registry.acme.internal:5000/acme/billing\nenvironments:\n  recette:\n    hosts:\n      rec-1: {endpoint: \"ssh://deploy@rec-1:2223\"}\n    versions: {billing: \"2.4.1\"}\n",
    );
    let fake = d.path().join("ssh-closing");
    std::fs::write(
        &fake,
        "#!/bin/sh\n\
         while IFS= read -r line; do case \"$line\" in \"$(printf '\\r')\"|'') break;; esac; done\n\
         exec 0<&-\n\
         printf 'HTTP/1.1 200 OK\\r\\nApi-Version: 1.41\\r\\nContent-Length: 0\\r\\n\\r\\n'\n\
         echo 'ssh: the connection to rec-1 closed' >&2\n\
         sleep 1\n\
         exit 255\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = fleetpin(d.path())
        .args(["--connect-timeout", "2", "plan", "recette"])
        .env("FLEETPIN_SSH_COMMAND", format!("exec {}", fake.display()))
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert!(
        format!("{stdout}{stderr}").contains("rec-1"),
        "the host is named: stdout:\n{stdout}\nstderr:\n{stderr}"
    );
}

/// `fleetpin man | head`: a reader that went away ends the output quietly with success, as for
/// ripgrep — no panic about a broken pipe, no death by signal. The read end is closed before
/// fleetpin starts, so its first write fails every time.
#[test]
fn a_closed_stdout_ends_the_output_quietly() {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let d = tempfile::tempdir().unwrap();
    for args in [&["man"][..], &["completions", "bash"][..]] {
        let out = fleetpin(d.path())
            .args(args)
            .stdout(writer.try_clone().unwrap())
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {:?}\nstderr:\n{}",
            out.status,
            text(&out.stderr)
        );
        assert_eq!(text(&out.stderr), "", "{args:?}");
    }
}
