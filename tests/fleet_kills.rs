//! fleetpin itself killed or interrupted on the private fleet: SIGKILL at each step of a swap and
//! of a rollback, during a bad release's health wait, and Ctrl-C with one or two swaps in flight.
//! Each case checks that nothing is lost: the previous version answers, named-volume data is
//! intact, and a re-run converges. Only the fleetpin process is killed, never an engine, a link
//! or the registry, so these run beside the other fleet suites (tests/suites.sh), unlike
//! tests/fleet_faults.rs; they run one at a time among themselves, as they did there.

mod support;

use std::sync::Mutex;
use std::time::Duration;
use support::{
    Scenario, VOL, assert_converged, names, spawn_paused, spawn_paused_times, volume_file,
};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn fleetpin_killed_at_each_step_of_a_swap_then_a_rerun_converges() {
    let fleet = require_fleet!();
    let _one = serial();
    for (i, step) in [
        "created",
        "stopped",
        "renamed-old",
        "renamed-new",
        "started",
    ]
    .iter()
    .enumerate()
    {
        let s = Scenario::new(&fleet, &format!("kill{i}"));
        let port = 18401 + i as u16;
        s.write(&s.manifest(&["h1"], &[("web", port, VOL)], &[("web", "1.0.0")]));
        s.apply_ok("test");
        let data = volume_file(&s, "h1", "data");
        std::fs::write(&data, "written before the fault\n").unwrap();

        s.write(&s.manifest(&["h1"], &[("web", port, VOL)], &[("web", "1.1.0")]));
        let (mut child, _err) = spawn_paused(&s, &["apply", "test", "--yes"], step, 600);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let rerun = s.run(&["apply", "test", "--yes"]);
        assert_eq!(rerun.code, 0, "killed at {step}: {rerun:?}");
        assert_converged(&s, "h1", "web", "1.1.0", port);
        assert_eq!(
            std::fs::read_to_string(&data).unwrap(),
            "written before the fault\n",
            "{step}"
        );
        let prev: Vec<_> = s.containers_with("h1", ".prev-");
        assert_eq!(
            prev.len(),
            1,
            "killed at {step}: the old version is retained: {prev:?}"
        );
        assert_eq!(prev[0].2, "1.0.0");
        assert!(
            !names(&s, "h1").iter().any(|n| n.contains(".failed-")),
            "killed at {step}: interrupted is not failed"
        );
        let policy = s.restart_policy("h1", &prev[0].0);
        assert_eq!(
            policy.to_string(),
            "no",
            "killed at {step}: a retained container must not restart"
        );
    }
}

#[test]
fn fleetpin_killed_during_the_health_wait_of_a_bad_release_restores_the_old_one_on_rerun() {
    let fleet = require_fleet!();
    let _one = serial();
    let s = Scenario::new(&fleet, "killbad");
    s.deploy(&["h2"], 18411, "1.0.0");
    s.write_web(&["h2"], 18411, "broken");
    let (mut child, _err) = spawn_paused(&s, &["apply", "test", "--yes"], "started", 600);
    child.kill().unwrap();
    child.wait().unwrap();
    // The broken release now holds the name; give its health check time to fail.
    std::thread::sleep(Duration::from_secs(3));
    let rerun = s.run(&["apply", "test", "--yes"]);
    assert_eq!(rerun.code, 1, "the bad release fails again: {rerun:?}");
    assert!(rerun.stdout.contains("repaired"), "{rerun:?}");
    assert_converged(&s, "h2", "web", "1.0.0", 18411);
}

#[test]
fn ctrl_c_finishes_the_step_in_flight_restores_service_and_exits_130() {
    let fleet = require_fleet!();
    let _one = serial();
    let s = Scenario::new(&fleet, "sigint");
    // api waits for web (a second wave): Ctrl-C during web's swap leaves api unstarted.
    let services = [("web", 18421, ""), ("api", 18422, "depends_on: [web]")];
    s.write(&s.manifest(&["h3"], &services, &[("web", "1.0.0"), ("api", "1.0.0")]));
    s.apply_ok("test");
    s.write(&s.manifest(&["h3"], &services, &[("web", "1.1.0"), ("api", "1.1.0")]));
    let (child, err) = spawn_paused(&s, &["apply", "test", "--yes"], "started", 2);
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    let stderr = err.join().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{stderr}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("interrupted"), "{stdout}");
    // web finished its swap; api was not started; both answer.
    assert_eq!(s.version("h3", 18421).as_deref(), Some("1.1.0"));
    assert_eq!(s.version("h3", 18422).as_deref(), Some("1.0.0"));
    // The lock was released: the next run proceeds at once and converges.
    s.apply_ok("test");
    assert_eq!(s.version("h3", 18422).as_deref(), Some("1.1.0"));
}

#[test]
fn ctrl_c_while_independent_services_swap_together_lets_both_finish_and_says_so() {
    let fleet = require_fleet!();
    let _one = serial();
    let s = Scenario::new(&fleet, "sigboth");
    let services = [("web", 18423, ""), ("api", 18424, "")];
    s.write(&s.manifest(&["h3"], &services, &[("web", "1.0.0"), ("api", "1.0.0")]));
    s.apply_ok("test");
    s.write(&s.manifest(&["h3"], &services, &[("web", "1.1.0"), ("api", "1.1.0")]));
    // Ctrl-C once both swaps have started their new containers.
    let (child, err) = spawn_paused_times(&s, &["apply", "test", "--yes"], "started", 2, &[], 2);
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    let stderr = err.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{stderr}\n{stdout}");
    // Both swaps were in flight (one wave): each finished, and the report says the run was
    // interrupted, though every line of it is `done`.
    assert_eq!(s.version("h3", 18423).as_deref(), Some("1.1.0"));
    assert_eq!(s.version("h3", 18424).as_deref(), Some("1.1.0"));
    assert!(
        stdout.contains("interrupted: the steps in flight finished"),
        "{stdout}"
    );
    assert_eq!(s.run(&["plan", "test", "--detailed-exitcode"]).code, 0);
}

#[test]
fn fleetpin_killed_at_each_step_of_a_rollback_then_a_rerun_finishes_it() {
    let fleet = require_fleet!();
    let _one = serial();
    for (i, step) in ["stopped", "renamed-old", "renamed-new", "started"]
        .iter()
        .enumerate()
    {
        let s = Scenario::new(&fleet, &format!("rbkill{i}"));
        let port = 18481 + i as u16;
        let stable = format!("{}-test-web", s.platform);
        s.write(&s.manifest(&["h2"], &[("web", port, VOL)], &[("web", "1.0.0")]));
        s.apply_ok("test");
        let first = s.inspect("h2", &stable).id.unwrap();
        s.write(&s.manifest(&["h2"], &[("web", port, VOL)], &[("web", "1.1.0")]));
        s.apply_ok("test");

        let (mut child, _err) = spawn_paused(&s, &["rollback", "test", "--yes"], step, 600);
        child.kill().unwrap();
        child.wait().unwrap();
        let rerun = s.run(&["rollback", "test", "--yes"]);
        assert_eq!(rerun.code, 0, "killed at {step}: {rerun:?}");
        // One step back in all: the very 1.0.0 container serves, 1.1.0 is kept as rolled back.
        assert_converged(&s, "h2", "web", "1.0.0", port);
        assert_eq!(
            s.inspect("h2", &stable).id.unwrap(),
            first,
            "killed at {step}"
        );
        let list = names(&s, "h2");
        assert!(
            list.iter().any(|n| n.contains(".rolled-back-")),
            "killed at {step}: {list:?}"
        );
        assert!(
            !list
                .iter()
                .any(|n| n.contains(".failed-") || n.contains(".old-")),
            "killed at {step}: {list:?}"
        );
        assert_eq!(
            s.head_subject(),
            "rollback test: web 1.1.0 -> 1.0.0",
            "killed at {step}"
        );
    }
}
