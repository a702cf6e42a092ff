//! ssh:// endpoints against the fleet's real sshd (tests/fleet/fleet.sh: in h2's namespace, key
//! authentication only, ports 22 and 2222, its sessions reaching h2's dockerd): plan and apply
//! with and without a port, an audit that keeps to a few ssh sessions per host, and the errors
//! an operator gets when ssh or the remote docker CLI fails. fleetpin finds the fleet's key and
//! known_hosts through FLEETPIN_SSH_COMMAND (`ssh -F <fleet config>`), as an operator's CI would.
//! Each test owns its platform name and ports (189xx).

mod support;

use support::{FleetSsh, Scenario};

/// An ssh command that logs its arguments to `log` (one line per ssh process), then runs the
/// fleet's ssh.
fn logged_ssh(ssh: &FleetSsh, log: &std::path::Path) -> String {
    format!("echo \"$*\" >> '{}'; {}", log.display(), ssh.command())
}

fn lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn plan_and_apply_over_ssh_with_and_without_a_port() {
    let (fleet, ssh) = require_ssh!();
    let s = Scenario::new(&fleet, "ps-ssh-ports");
    let addr = &ssh.addr;
    let user = &ssh.user;
    s.write(&format!(
        "platform: {p}\nservices:\n  web:\n    image: {img}\n    ports: [\"18901:8080\"]\n  api:\n    image: {img}\n    ports: [\"18902:8080\"]\nenvironments:\n  plain:\n    hosts:\n      s1: {{endpoint: \"ssh://{user}@{addr}\"}}\n    versions: {{web: \"1.0.0\"}}\n  port:\n    hosts:\n      s1: {{endpoint: \"ssh://{user}@{addr}:2222\"}}\n    versions: {{api: \"1.1.0\"}}\n  closed:\n    hosts:\n      s1: {{endpoint: \"ssh://{user}@{addr}:2223\"}}\n    versions: {{api: \"1.1.0\"}}\n",
        p = s.platform,
        img = fleet.image,
    ));
    let log = s.dir.path().join("ssh-argv.log");
    let env = [("FLEETPIN_SSH_COMMAND", logged_ssh(&ssh, &log))];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    // Without a port: ssh's own (22); fleetpin passes none.
    let plan = s.run_with(&["plan", "plain"], &env);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert!(plan.stdout.contains("+ web  -> 1.0.0  create"), "{plan:?}");
    let apply = s.run_with(&["apply", "plain", "--yes"], &env);
    assert_eq!(apply.code, 0, "{apply:?}");
    assert_eq!(s.version(&ssh.host, 18901).as_deref(), Some("1.0.0"));
    let calls = lines(&log);
    assert!(!calls.is_empty(), "fleetpin ran no ssh at all");
    for c in &calls {
        assert!(
            c.starts_with("-o BatchMode=yes ")
                && c.contains(&format!(" -l {user} "))
                && !c.contains(" -p ")
                && c.ends_with(&format!("-- {addr} docker system dial-stdio")),
            "ssh argv: {c}"
        );
    }

    // With a port: `-p 2222`, never `host:2222` as a host name.
    std::fs::remove_file(&log).unwrap();
    let plan = s.run_with(&["plan", "port"], &env);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert!(
        plan.stdout.contains(&format!("ssh://{user}@{addr}:2222")),
        "{plan:?}"
    );
    let apply = s.run_with(&["apply", "port", "--yes"], &env);
    assert_eq!(apply.code, 0, "{apply:?}");
    assert_eq!(s.version(&ssh.host, 18902).as_deref(), Some("1.1.0"));
    let calls = lines(&log);
    assert!(!calls.is_empty());
    for c in &calls {
        assert!(
            c.contains(" -p 2222 -- ")
                && c.ends_with(&format!("-- {addr} docker system dial-stdio")),
            "ssh argv: {c}"
        );
    }
    // The containers are the fleet's h2's, with the labels of any deploy.
    let names: Vec<(String, String, String)> = s.containers(&ssh.host);
    assert_eq!(
        names,
        vec![
            (
                format!("{}-plain-web", s.platform),
                "running".into(),
                "1.0.0".into()
            ),
            (
                format!("{}-port-api", s.platform),
                "running".into(),
                "1.1.0".into()
            ),
        ]
    );

    // Converged: nothing left to do, over either port.
    for env_name in ["plain", "port"] {
        let again = s.run_with(&["plan", env_name, "--detailed-exitcode"], &env);
        assert_eq!(again.code, 0, "{env_name}: {again:?}");
    }

    // A port where nothing listens: the port really is the one ssh dials.
    let closed = s.run_with(&["plan", "closed"], &env);
    assert_eq!(closed.code, 1, "{closed:?}");
    assert!(
        closed.stdout.contains("port 2223: Connection refused"),
        "{closed:?}"
    );
}

#[test]
fn an_audit_over_ssh_keeps_to_four_sessions_per_host() {
    let (fleet, ssh) = require_ssh!();
    let s = Scenario::new(&fleet, "ps-ssh-audit");
    let (addr, user) = (&ssh.addr, &ssh.user);
    // Eight services, in two environments that reach the same host written two ways: sixteen
    // containers, so an audit has sixteen inspects to make at once.
    let mut m = format!("platform: {}\nservices:\n", s.platform);
    let mut pins = String::new();
    for i in 0..8 {
        m.push_str(&format!("  s{i}:\n    image: {}\n", fleet.image));
        pins.push_str(&format!("      s{i}: \"1.0.0\"\n"));
    }
    m.push_str(&format!(
        "environments:\n  a:\n    hosts:\n      s1: {{endpoint: \"ssh://{user}@{addr}\"}}\n    versions:\n{pins}  b:\n    hosts:\n      s1: {{endpoint: \"ssh://{user}@{addr}:22\"}}\n    versions:\n{pins}"
    ));
    s.write(&m);
    let log = s.dir.path().join("ssh-argv.log");
    let cmd = logged_ssh(&ssh, &log);
    let env = [("FLEETPIN_SSH_COMMAND", cmd.as_str())];
    for e in ["a", "b"] {
        let out = s.run_with(&["apply", e, "--yes"], &env);
        assert_eq!(out.code, 0, "{out:?}");
    }
    assert_eq!(s.containers(&ssh.host).len(), 16);

    std::fs::remove_file(&log).unwrap();
    let audit = s.run_with(&["audit", "--format", "json"], &env);
    assert_eq!(audit.code, 0, "{audit:?}");
    let doc = audit.json();
    let rows = doc["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 16, "{doc}");
    assert!(
        rows.iter()
            .all(|r| r["status"] == "ok" && r["running"] == "1.0.0" && r["digest"].is_string()),
        "{doc}"
    );
    let sessions = lines(&log).len();
    assert!(
        (1..=4).contains(&sessions),
        "an audit of 16 containers on one host opened {sessions} ssh sessions (at most 4 expected)"
    );
}

#[test]
fn ssh_failures_say_what_went_wrong_and_never_prompt() {
    let (fleet, ssh) = require_ssh!();
    let s = Scenario::new(&fleet, "ps-ssh-fail");
    s.write(&format!(
        "platform: {}\nservices:\n  web:\n    image: {}\nenvironments:\n  test:\n    hosts:\n      s1: {{endpoint: \"ssh://{}@{}:2222\"}}\n    versions: {{web: \"1.0.0\"}}\n",
        s.platform, fleet.image, ssh.user, ssh.addr
    ));

    // A remote without the docker CLI: a wrapper runs the remote command with an empty PATH.
    let wrapper = s.dir.path().join("no-docker.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/bash\na=(\"$@\"); for i in \"${{!a[@]}}\"; do [ \"${{a[$i]}}\" = docker ] && a[$i]='PATH=/nonexistent docker'; done\nexec {} \"${{a[@]}}\"\n",
            ssh.command()
        ),
    )
    .unwrap();
    let cmd = format!("bash {}", wrapper.display());
    let out = s.run_with(&["plan", "test"], &[("FLEETPIN_SSH_COMMAND", &cmd)]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout.contains(&format!(
            "{}@{}:2222 has no `docker` command for this ssh user",
            ssh.user, ssh.addr
        )) && out.stdout.contains("docker CLI must be installed there")
            && out.stdout.contains("docker: command not found"),
        "{out:?}"
    );

    // A login that prints a banner (a shell startup file writing to stdout) before the engine
    // speaks: named as such, and the remote's bytes shown escaped, never raw on the terminal.
    let banner = s.dir.path().join("banner.sh");
    std::fs::write(
        &banner,
        format!(
            "#!/bin/bash\na=(\"$@\"); for i in \"${{!a[@]}}\"; do [ \"${{a[$i]}}\" = docker ] && a[$i]=\"printf 'Welcome to h2\\\\033[2J\\\\n'; docker\"; done\nexec {} \"${{a[@]}}\"\n",
            ssh.command()
        ),
    )
    .unwrap();
    let cmd = format!("bash {}", banner.display());
    let out = s.run_with(&["plan", "test"], &[("FLEETPIN_SSH_COMMAND", &cmd)]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout.contains(&format!(
            "the ssh session to {}@{}:2222 printed `Welcome to h2\\u{{1b}}[2J\\n",
            ssh.user, ssh.addr
        )) && out
            .stdout
            .contains("a shell startup file writing to stdout"),
        "{out:?}"
    );
    assert!(
        !out.stdout.contains('\u{1b}') && !out.stderr.contains('\u{1b}'),
        "{out:?}"
    );

    // A host key ssh does not know: refused at once (BatchMode), and said so.
    let cmd = format!("{} -o UserKnownHostsFile=/dev/null", ssh.command());
    let out = s.run_with(&["plan", "test"], &[("FLEETPIN_SSH_COMMAND", &cmd)]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout.contains("Host key verification failed.")
            && out.stdout.contains("BatchMode=yes"),
        "{out:?}"
    );
    assert!(s.containers(&ssh.host).is_empty());
}
