//! `fleetpin import -o PATH` where PATH is not a new regular file: a device or a pipe is written
//! to (`-o /dev/null` checks that a compose file imports, and writes nothing anywhere), only an
//! existing regular file wants --force; and the compose file is checked before the output path,
//! so a bad compose file is reported even when -o names a file that exists.

mod support;

use std::path::{Path, PathBuf};
use support::run::{Out, run_in};

const GOOD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/import/good/wordpress");
const BAD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/import/bad");

/// The bad fixture's `build` file imported for prod, with `extra` after it.
fn import_build(extra: &[&str]) -> Out {
    let args = [
        &["import", "001-build.yml", "--env", "prod"][..],
        &["--host", "h1=unix:///var/run/docker.sock"],
        extra,
    ]
    .concat();
    run_in(Path::new(BAD), &args)
}

/// The wordpress fixture's command line, with `-o out` and `extra` after it.
fn good_args(out: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["import".to_string()];
    args.extend(
        std::fs::read_to_string(Path::new(GOOD).join("args"))
            .unwrap()
            .split_whitespace()
            .map(String::from),
    );
    args.extend(["-o".into(), out.into()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn run_good(out: &str, extra: &[&str]) -> Out {
    let args = good_args(out, extra);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    run_in(Path::new(GOOD), &argv)
}

#[test]
fn out_dev_null_is_written_not_refused() {
    let out = run_good("/dev/null", &[]);
    let (stdout, stderr) = (out.stdout.clone(), out.stderr.clone());
    assert_eq!(
        Some(out.code),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(!stderr.contains("exists"), "{stderr}");
    assert!(stdout.contains("wrote /dev/null"), "{stdout}");
}

#[cfg(unix)]
#[test]
fn out_a_named_pipe_receives_the_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo: PathBuf = tmp.path().join("manifest.pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    // The reader must be open before the writer's open returns: read in a thread.
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let out = run_good(&fifo.display().to_string(), &[]);
    let (stdout, stderr) = (out.stdout.clone(), out.stderr.clone());
    if Some(out.code) != Some(0) {
        // Unblock the reader so that the failure is reported, not a hang.
        let _ = std::fs::OpenOptions::new().write(true).open(&fifo);
    }
    let read = reader.join().unwrap();
    assert_eq!(
        Some(out.code),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(read.starts_with("# Written by `fleetpin import`"), "{read}");
}

#[test]
fn a_bad_compose_file_is_reported_before_an_existing_output_file() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("platform.yaml");
    std::fs::write(&target, "# hand-edited\n").unwrap();
    let t = target.display().to_string();
    let out = import_build(&["-o", &t]);
    let (stdout, stderr) = (out.stdout.clone(), out.stderr.clone());
    assert_eq!(
        Some(out.code),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stderr.contains(
            "001-build.yml:7:5: `build` of service `web` cannot be carried into a fleetpin manifest"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("pass --force"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "# hand-edited\n");
}

#[test]
fn a_good_compose_file_still_does_not_overwrite_a_regular_file_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("platform.yaml");
    std::fs::write(&target, "# hand-edited\n").unwrap();
    let t = target.display().to_string();
    let out = run_good(&t, &[]);
    let stderr = out.stderr.clone();
    assert_eq!(Some(out.code), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{t} exists; pass --force to overwrite it")),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "# hand-edited\n");
}
