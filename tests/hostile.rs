//! Hostile and broken input (docs/reliability.md, "Hostile input"): whatever a manifest holds —
//! alias bombs, absurd nesting, binary junk, other encodings, huge files, shell metacharacters —
//! fleetpin answers with exit 1 and located problems, never panics, finishes in bounded time and
//! memory, and contacts no host. Where a field legitimately takes any text (environment and label
//! values, command arguments), the manifest validates and nothing it holds is ever executed.
//!
//! The bad-manifest corpus (tests/bad/, checked by tests/corpus.rs through the binary) is also
//! loaded here through the library, under a time bound. Property tests feed random bytes and
//! random YAML-ish text to `fleetpin::manifest::parse_str` and `fleetpin::manifest::yaml::parse`.
//!
//! Timing figures are printed to stderr: `cargo test --test hostile -- --nocapture` shows them.

mod support;

use fleetpin::manifest::diagnostics::{ManifestError, Problem};
use fleetpin::render::{Style, manifest_error};
use proptest::prelude::*;
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

const MIB: usize = 1024 * 1024;

/// Tests that measure time, and the CPU-heavy property tests, take turns: a timing bound must not
/// fail because another test of this file was using the CPU at the same moment.
static HEAVY: Mutex<()> = Mutex::new(());

fn heavy() -> MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

// ------------------------------------------------------------------------------------ helpers

struct Run {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    elapsed: Duration,
    timed_out: bool,
}

impl Run {
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}):\n{}",
                String::from_utf8_lossy(&self.stdout[..self.stdout.len().min(2000)])
            )
        })
    }
}

/// How many times `limit` of wall-clock time a command may take before it is taken for hung.
const WALL_FACTOR: u32 = 6;

/// Runs a command to its end, or kills it once it used `limit` of CPU time (RLIMIT_CPU: a
/// blow-up fails the test, and a busy machine, which stretches the wall clock, does not) or,
/// a hang guard, `WALL_FACTOR` times `limit` of wall-clock time.
fn run(cmd: &mut Command, limit: Duration) -> Run {
    let started = Instant::now();
    let cpu_secs = limit.as_secs().max(1) as libc::rlim_t;
    // SAFETY: between fork and exec the closure only calls setrlimit, which is async-signal-safe,
    // on a valid struct.
    unsafe {
        cmd.pre_exec(move || {
            let l = libc::rlimit {
                rlim_cur: cpu_secs,
                rlim_max: cpu_secs + 1,
            };
            if libc::setrlimit(libc::RLIMIT_CPU, &l) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out.read_to_end(&mut b);
        b
    });
    let err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = err.read_to_end(&mut b);
        b
    });
    let (status, timed_out) = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            // SIGXCPU at the soft CPU limit, SIGKILL at the hard one.
            let cpu = matches!(s.signal(), Some(libc::SIGXCPU) | Some(libc::SIGKILL));
            break (Some(s), cpu);
        }
        if started.elapsed() > limit * WALL_FACTOR {
            let _ = child.kill();
            break (child.wait().ok(), true);
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = started.elapsed();
    Run {
        code: status.and_then(|s| s.code()),
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
        elapsed,
        timed_out,
    }
}

/// `fleetpin -f FILE ARGS…`, without colours and without the caller's FLEETPIN_FILE.
fn fleetpin(file: &Path, args: &[&str]) -> Command {
    let mut c = support::run::fleetpin();
    c.arg("-f").arg(file).args(args);
    c
}

/// The same command under `/usr/bin/time -v` when it is installed (Debian package `time`), to read
/// the peak resident set size; `None` when it is not.
fn with_time_v(cmd: &Command, stats: &Path) -> Option<Command> {
    if !Path::new("/usr/bin/time").is_file() {
        return None;
    }
    let mut c = Command::new("/usr/bin/time");
    c.arg("-v").arg("-o").arg(stats).arg(cmd.get_program());
    c.args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    Some(c)
}

fn peak_rss_kib(stats: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(stats).ok()?;
    text.lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|v| v.trim().parse().ok())
}

/// Runs `cmd`, measuring its peak RSS when /usr/bin/time is available; prints the figures.
fn measured(what: &str, cmd: &mut Command, limit: Duration, dir: &Path) -> Run {
    let stats = dir.join("time-v.txt");
    let (r, rss) = match with_time_v(cmd, &stats) {
        Some(mut timed) => {
            let r = run(&mut timed, limit);
            (r, peak_rss_kib(&stats))
        }
        None => (run(cmd, limit), None),
    };
    match rss {
        Some(kib) => eprintln!(
            "hostile figures: {what}: exit {:?} in {:.2?}, peak RSS {:.1} MiB",
            r.code,
            r.elapsed,
            kib as f64 / 1024.0
        ),
        None => eprintln!(
            "hostile figures: {what}: exit {:?} in {:.2?} (peak RSS not measured: /usr/bin/time is not installed; Debian package `time`)",
            r.code, r.elapsed
        ),
    }
    r
}

fn problems(doc: &serde_json::Value) -> Vec<(u64, u64, String)> {
    doc["problems"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|p| {
            (
                p["line"].as_u64().unwrap_or(0),
                p["column"].as_u64().unwrap_or(0),
                p["message"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The repository's bad-manifest corpus.
fn corpus() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bad"))
            .expect("tests/bad exists")
            .map(|e| e.expect("a directory entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
    files.sort();
    files
}

/// Every problem is located inside `text` (1-based, on one of its lines), and the human rendering
/// of them does not panic.
fn assert_located(text: &str, problems: &[Problem]) -> Result<(), String> {
    if problems.is_empty() {
        return Err("an error without a single problem".into());
    }
    // YAML counts `\r\n`, a lone `\r` and `\n` as line breaks.
    let lines = text.replace("\r\n", "\n").matches(['\n', '\r']).count() as u32 + 1;
    for p in problems {
        if p.span.line == 0 || p.span.column == 0 {
            return Err(format!(
                "unlocated problem {}:{}: {}",
                p.span.line, p.span.column, p.message
            ));
        }
        if p.span.line > lines {
            return Err(format!(
                "problem at line {} of a {lines}-line text: {}",
                p.span.line, p.message
            ));
        }
    }
    let err = ManifestError::new("hostile.yaml", text.to_string(), problems.to_vec());
    let _ = manifest_error(&err, Style { color: false });
    let _ = err.to_json();
    Ok(())
}

const SERVICE: &str = "registry.acme.internal:5000/acme/billing";

/// A small valid manifest whose one environment, `recette`, holds the given host lines.
fn manifest_with_hosts(hosts: &str) -> String {
    format!(
        "platform: acme\nservices:\n  billing:\n    image: {SERVICE}\nenvironments:\n  recette:\n    hosts:\n{hosts}    versions:\n      billing: \"2.4.1\"\n"
    )
}

// ----------------------------------------------------------------------------- size and scale

#[test]
fn a_50_mb_manifest_is_refused_before_parsing() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("platform.yaml");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        writeln!(f, "platform: acme\nservices:").unwrap();
        let mut written = 0;
        let mut i = 0;
        while written < 50 * MIB {
            let line = format!("  s{i}:\n    image: {SERVICE}-{i}\n");
            f.write_all(line.as_bytes()).unwrap();
            written += line.len();
            i += 1;
        }
    }
    let size = std::fs::metadata(&path).unwrap().len();
    let r = measured(
        &format!("{size}-byte manifest, validate --format json"),
        &mut fleetpin(&path, &["validate", "--format", "json"]),
        Duration::from_secs(20),
        dir.path(),
    );
    assert!(!r.timed_out, "still running after {:?}", r.elapsed);
    assert_eq!(r.code, Some(1), "{}", r.stderr());
    let found = problems(&r.json());
    assert_eq!(found.len(), 1, "{found:?}");
    let (line, _, message) = &found[0];
    assert_eq!(*line, 0, "a file-level problem: {message}");
    assert!(
        message.contains(&size.to_string()) && message.contains("refused above 16777216 bytes"),
        "the message says why: {message}"
    );

    // The human form names the file and says the same.
    let r = run(&mut fleetpin(&path, &["validate"]), Duration::from_secs(20));
    assert_eq!(r.code, Some(1));
    let stderr = r.stderr();
    assert!(
        stderr.contains(&path.display().to_string()) && stderr.contains("refused above"),
        "{stderr}"
    );

    // And the library refuses it without reading it.
    let started = Instant::now();
    let e = fleetpin::manifest::load(&path).expect_err("refused");
    assert!(e.problems[0].message.contains("refused above"));
    eprintln!(
        "hostile figures: {size}-byte manifest refused by manifest::load in {:.2?}",
        started.elapsed()
    );
}

/// About 5 MB and 4,000 services, each with a port, env, labels, memory and a healthcheck, in three
/// environments of ten hosts: a manifest far larger than any real one, still well-formed.
fn huge_valid_manifest(services: usize) -> String {
    let opts: Vec<String> = (0..36)
        .map(|i| format!("-Dcom.acme.property{i}=value{i}"))
        .collect();
    let opts = opts.join(" ");
    let mut s = String::from("platform: acme\nretain: 3\nservices:\n");
    for i in 0..services {
        s.push_str(&format!(
            "  svc-{i}:\n    image: {SERVICE}-{i}\n    ports: [\"{}:8080\"]\n    env: {{JAVA_OPTS: \"-Xmx512m {opts}\", MODE: prod}}\n    labels: {{com.acme.team: team-{}}}\n    memory: 512m\n    restart: unless-stopped\n    healthcheck: {{test: [CMD, wget, -q, -O-, \"http://127.0.0.1:8080/health\"], interval: 2s, retries: 3}}\n",
            10_000 + i,
            i % 50
        ));
    }
    s.push_str("environments:\n");
    for env in ["recette", "preprod", "prod"] {
        s.push_str(&format!("  {env}:\n    hosts:\n"));
        for h in 0..10 {
            s.push_str(&format!(
                "      {env}-{h}: {{endpoint: \"ssh://deploy@{env}-{h}.acme.internal\"}}\n"
            ));
        }
        s.push_str("    versions:\n");
        for i in 0..services {
            s.push_str(&format!("      svc-{i}: \"2.4.{}\"\n", i % 10));
        }
    }
    s
}

#[test]
fn a_5_mb_valid_manifest_with_thousands_of_services_validates() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("platform.yaml");
    let text = huge_valid_manifest(4_000);
    std::fs::write(&path, &text).unwrap();
    let r = measured(
        &format!(
            "{}-byte valid manifest (4,000 services, 3 environments of 10 hosts), validate --format json",
            text.len()
        ),
        &mut fleetpin(&path, &["validate", "--format", "json"]),
        Duration::from_secs(60),
        dir.path(),
    );
    assert!(!r.timed_out, "still running after {:?}", r.elapsed);
    assert_eq!(
        r.code,
        Some(0),
        "{}\n{}",
        r.stderr(),
        String::from_utf8_lossy(&r.stdout)
    );
    let doc = r.json();
    assert_eq!(doc["valid"], true);
    assert_eq!(doc["services"].as_array().map(|a| a.len()), Some(4_000));
}

#[test]
fn a_large_honest_manifest_is_not_called_an_alias_bomb() {
    let _g = heavy();
    // 20,000 services and no alias at all: about 400,000 YAML nodes in 5 MB, under the 16 MiB
    // file limit. fleetpin may accept it or refuse it as too large, but must not accuse it of
    // being a "billion laughs" document.
    let mut s = String::from("platform: acme\nservices:\n");
    for i in 0..20_000 {
        s.push_str(&format!(
            "  svc{i}:\n    image: {SERVICE}-{i}\n    env: {{JAVA_OPTS: \"-Xmx512m\", MODE: prod}}\n    labels: {{com.acme.team: team-{}}}\n    memory: 512m\n    restart: unless-stopped\n",
            i % 50
        ));
    }
    s.push_str("environments:\n  prod:\n    hosts:\n      prod-1: {endpoint: \"ssh://deploy@prod-1\"}\n    versions:\n");
    for i in 0..20_000 {
        s.push_str(&format!("      svc{i}: \"2.4.1\"\n"));
    }
    assert!(!s.contains('&') && !s.contains('*'));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("platform.yaml");
    std::fs::write(&path, &s).unwrap();
    let r = measured(
        &format!("{}-byte manifest of 20,000 services, no alias", s.len()),
        &mut fleetpin(&path, &["validate", "--format", "json"]),
        Duration::from_secs(60),
        dir.path(),
    );
    assert!(!r.timed_out, "still running after {:?}", r.elapsed);
    if r.code == Some(0) {
        return;
    }
    assert_eq!(r.code, Some(1));
    for (line, column, message) in problems(&r.json()) {
        assert!(
            !message.contains("alias") && !message.contains("billion laughs"),
            "a document without a single alias is refused at {line}:{column} as: {message}"
        );
    }
}

/// Inputs of a few hundred KB whose handling must stay about linear: each is run concurrently with
/// a 10-second CPU limit (a linear implementation takes well under a second even in a debug build).
#[test]
fn scale_inputs_finish_in_bounded_time_and_memory() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    let limit = Duration::from_secs(10);

    // 20,000 unknown fields in one service (750 KB).
    let mut unknown = format!("platform: acme\nservices:\n  billing:\n    image: {SERVICE}\n");
    for i in 0..20_000 {
        unknown.push_str(&format!("    unknown_field_number_{i}: value\n"));
    }
    unknown.push_str(
        &manifest_with_hosts("      rec-1: {endpoint: \"unix:///var/run/docker.sock\"}\n")
            .split_once("environments:")
            .map(|(_, e)| format!("environments:{e}"))
            .unwrap(),
    );
    let unknown_path = dir.path().join("unknown-fields.yaml");
    std::fs::write(&unknown_path, &unknown).unwrap();

    // 1,000 services, and 1,000 pins that each misspell one (100 KB).
    let mut misspelled = String::from("platform: acme\nservices:\n");
    for i in 0..1_000 {
        misspelled.push_str(&format!("  service-number-{i}: {{image: {SERVICE}-{i}}}\n"));
    }
    misspelled.push_str("environments:\n  recette:\n    hosts:\n      rec-1: {endpoint: \"unix:///var/run/docker.sock\"}\n    versions:\n");
    for i in 0..1_000 {
        misspelled.push_str(&format!("      servcie-number-{i}: \"1\"\n"));
    }
    let misspelled_path = dir.path().join("misspelled.yaml");
    std::fs::write(&misspelled_path, &misspelled).unwrap();

    // A valid manifest publishing 100,000 ports, each on its own address (2.4 MB).
    let ports: Vec<String> = (0..100_000u32)
        .map(|i| {
            format!(
                "\"10.{}.{}.{}:{}:80\"",
                (i >> 16) & 255,
                (i >> 8) & 255,
                i & 255,
                1000 + i % 60_000
            )
        })
        .collect();
    let many_ports =
        manifest_with_hosts("      rec-1: {endpoint: \"unix:///var/run/docker.sock\"}\n").replace(
            &format!("    image: {SERVICE}\n"),
            &format!("    image: {SERVICE}\n    ports: [{}]\n", ports.join(", ")),
        );
    let ports_path = dir.path().join("many-ports.yaml");
    std::fs::write(&ports_path, &many_ports).unwrap();

    // The human rendering runs under a 2 GiB address-space limit, so a blow-up fails the test
    // instead of the machine.
    let mut human = support::run::wrapped(&["sh", "-c", "ulimit -v 2097152 && exec \"$0\" \"$@\""]);
    human.arg("-f").arg(&unknown_path).arg("validate");

    let cases: Vec<(&str, Command, Option<i32>)> = vec![
        (
            "20,000 unknown fields (750 KB), --format json",
            fleetpin(&unknown_path, &["validate", "--format", "json"]),
            Some(1),
        ),
        (
            "20,000 unknown fields (750 KB), human output under a 2 GiB limit",
            human,
            Some(1),
        ),
        (
            "1,000 pins misspelling 1,000 services (100 KB), --format json",
            fleetpin(&misspelled_path, &["validate", "--format", "json"]),
            Some(1),
        ),
        (
            "100,000 published ports on one host (2.4 MB, valid), --format json",
            fleetpin(&ports_path, &["validate", "--format", "json"]),
            Some(0),
        ),
    ];
    let handles: Vec<_> = cases
        .into_iter()
        .map(|(what, mut cmd, want)| {
            std::thread::spawn(move || {
                let r = run(&mut cmd, limit);
                (what, want, r)
            })
        })
        .collect();
    let mut failures = Vec::new();
    for h in handles {
        let (what, want, r) = h.join().unwrap();
        eprintln!(
            "hostile figures: {what}: exit {:?} in {:.2?}{}, {} bytes on stdout, {} on stderr",
            r.code,
            r.elapsed,
            if r.timed_out { " (killed)" } else { "" },
            r.stdout.len(),
            r.stderr.len()
        );
        if r.timed_out {
            failures.push(format!(
                "{what}: killed after {:.2?} (CPU limit {limit:?})",
                r.elapsed
            ));
        } else if r.code != want {
            let tail: String = r
                .stderr()
                .chars()
                .rev()
                .take(300)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            failures.push(format!(
                "{what}: exit {:?}, expected {want:?}: …{tail}",
                r.code
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// --------------------------------------------------------------------------- encodings, junk

#[test]
fn other_encodings_and_junk_are_refused_at_the_first_bad_byte() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    let text = manifest_with_hosts("      rec-1: {endpoint: \"unix:///var/run/docker.sock\"}\n");
    let utf16le: Vec<u8> = [0xff, 0xfe]
        .into_iter()
        .chain(text.encode_utf16().flat_map(|u| u.to_le_bytes()))
        .collect();
    let utf16be: Vec<u8> = [0xfe, 0xff]
        .into_iter()
        .chain(text.encode_utf16().flat_map(|u| u.to_be_bytes()))
        .collect();
    let mut latin1 = b"platform: acme\n# caf".to_vec();
    latin1.push(0xe9); // `é` in ISO-8859-1
    latin1.extend_from_slice(b"\n");
    let mut junk = vec![0u8; 4096];
    let mut x: u32 = 0x2545_f491;
    for b in junk.iter_mut() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = (x >> 24) as u8;
    }
    junk[0] = 0; // a NUL first, then random bytes
    let cases: Vec<(&str, Vec<u8>, (u64, u64))> = vec![
        ("UTF-16LE with BOM", utf16le, (1, 1)),
        ("UTF-16BE with BOM", utf16be, (1, 1)),
        ("ISO-8859-1", latin1, (2, 6)),
    ];
    for (what, bytes, (line, column)) in cases {
        let path = dir.path().join("platform.yaml");
        std::fs::write(&path, &bytes).unwrap();
        let r = run(
            &mut fleetpin(&path, &["validate", "--format", "json"]),
            Duration::from_secs(20),
        );
        assert_eq!(r.code, Some(1), "{what}");
        let found = problems(&r.json());
        assert_eq!(found.len(), 1, "{what}: {found:?}");
        assert_eq!(
            (found[0].0, found[0].1),
            (line, column),
            "{what}: {found:?}"
        );
        assert!(found[0].2.contains("not valid UTF-8"), "{what}: {found:?}");
    }
    // Random bytes: wherever the first invalid byte falls, that is where the problem is.
    let path = dir.path().join("platform.yaml");
    std::fs::write(&path, &junk).unwrap();
    let valid = std::str::from_utf8(&junk)
        .map_err(|e| e.valid_up_to())
        .unwrap_err();
    let before = std::str::from_utf8(&junk[..valid]).unwrap();
    let line = before.matches('\n').count() as u64 + 1;
    let column = before.rsplit('\n').next().unwrap().chars().count() as u64 + 1;
    let r = run(
        &mut fleetpin(&path, &["validate", "--format", "json"]),
        Duration::from_secs(20),
    );
    assert_eq!(r.code, Some(1));
    let found = problems(&r.json());
    assert_eq!((found[0].0, found[0].1), (line, column), "{found:?}");

    // A UTF-8 byte-order mark is fine.
    let mut bom = vec![0xef, 0xbb, 0xbf];
    bom.extend_from_slice(text.as_bytes());
    std::fs::write(&path, &bom).unwrap();
    let r = run(
        &mut fleetpin(&path, &["validate", "--format", "json"]),
        Duration::from_secs(20),
    );
    assert_eq!(r.code, Some(0), "{}", String::from_utf8_lossy(&r.stdout));
}

#[test]
fn generated_extremes_are_refused_quickly_and_located() {
    let _g = heavy();
    let comment_line = format!("# {}\n", "c".repeat(77));
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "1,000,000 nested flow sequences (1 MB)",
            format!("platform: acme\nservices: {}\n", "[".repeat(1_000_000)),
            "recursion limit",
        ),
        (
            "500,000 nested flow mappings, closed (2.5 MB)",
            format!(
                "platform: acme\nservices: {}1{}\n",
                "{a: ".repeat(500_000),
                "}".repeat(500_000)
            ),
            "nests deeper",
        ),
        (
            "100,000 block sequences on one line",
            format!("platform: acme\nservices:\n  {}1\n", "- ".repeat(100_000)),
            "nests deeper",
        ),
        (
            "100,000 documents",
            format!("platform: acme\n{}", "---\na: 1\n".repeat(100_000)),
            "one YAML document",
        ),
        (
            "a comment-only file just under 16 MiB",
            comment_line.repeat((16 * MIB - 1) / comment_line.len()),
            "no YAML document",
        ),
        (
            "a 1 MiB mapping key",
            format!("{}: 1\n", "k".repeat(MIB)),
            "invalid YAML",
        ),
        (
            "a 15 MiB platform name",
            format!("platform: \"{}\"\n", "a".repeat(15 * MIB)),
            "is not a valid platform name",
        ),
    ];
    for (what, text, expected) in cases {
        let started = Instant::now();
        let problems = fleetpin::manifest::parse_str(&text).expect_err(what);
        let elapsed = started.elapsed();
        eprintln!("hostile figures: {what}: refused by parse_str in {elapsed:.2?}");
        assert!(elapsed < Duration::from_secs(5), "{what}: took {elapsed:?}");
        assert!(
            problems.iter().any(|p| p.message.contains(expected)),
            "{what}: {:?}",
            problems
                .iter()
                .map(|p| &p.message[..p.message.len().min(200)])
                .collect::<Vec<_>>()
        );
        assert_located(&text, &problems).unwrap_or_else(|e| panic!("{what}: {e}"));
    }
}

// -------------------------------------------------------------------- the corpus, via the library

/// CPU time consumed by the calling thread.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant libc knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[test]
fn every_corpus_file_loads_through_the_library_in_bounded_time() {
    let _g = heavy();
    let mut timings = Vec::new();
    let mut failures = Vec::new();
    for file in corpus() {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let started = Instant::now();
        let cpu = thread_cpu_time();
        let loaded = fleetpin::manifest::load(&file);
        let cpu = thread_cpu_time() - cpu;
        let elapsed = started.elapsed();
        timings.push((elapsed, cpu, name.clone()));
        // A guard against a hang (a budget that no longer stops a bomb), not a measure of speed:
        // the CPU time this thread spent, which other processes cannot inflate as they inflate
        // the wall clock. That each alias bomb is stopped by the alias budget is asserted by
        // tests/corpus.rs (its `# expect:` message); what it costs is in docs/benchmarks.md.
        if cpu > Duration::from_secs(5) {
            failures.push(format!("{name}: took {cpu:?} of CPU (bound 5s)"));
        }
        if let Err(e) = loaded
            && let Err(msg) = assert_located(&e.text, &e.problems)
        {
            failures.push(format!("{name}: {msg}"));
        }
    }
    timings.sort();
    let total: Duration = timings.iter().map(|(d, _, _)| *d).sum();
    eprintln!(
        "hostile figures: {} corpus files loaded through manifest::load in {total:.2?}; slowest (wall / CPU): {}",
        timings.len(),
        timings
            .iter()
            .rev()
            .take(6)
            .map(|(d, c, n)| format!("{n} {d:.2?} / {c:.2?}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ------------------------------------------------------------------------- no host is contacted

/// A TCP and a unix listener nobody should ever reach; `contacts()` says how many connections
/// were made to them since the last call.
struct Canary {
    tcp: std::net::TcpListener,
    unix: std::os::unix::net::UnixListener,
    tcp_port: u16,
    unix_path: PathBuf,
}

impl Canary {
    fn new(dir: &Path) -> Canary {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        tcp.set_nonblocking(true).unwrap();
        let unix_path = dir.join("fleetpin-canary.sock");
        let unix = std::os::unix::net::UnixListener::bind(&unix_path).unwrap();
        unix.set_nonblocking(true).unwrap();
        Canary {
            tcp_port: tcp.local_addr().unwrap().port(),
            tcp,
            unix,
            unix_path,
        }
    }

    /// The host lines of `recette`: the brief's dead port, and both listeners.
    fn hosts(&self) -> String {
        format!(
            "      rec-1: {{endpoint: \"tcp://127.0.0.1:1\", insecure: true}}\n      rec-2: {{endpoint: \"tcp://127.0.0.1:{}\", insecure: true}}\n      rec-3: {{endpoint: \"unix://{}\"}}\n",
            self.tcp_port,
            self.unix_path.display()
        )
    }

    fn contacts(&self) -> usize {
        let mut n = 0;
        while self.tcp.accept().is_ok() {
            n += 1;
        }
        while self.unix.accept().is_ok() {
            n += 1;
        }
        n
    }
}

#[test]
fn an_invalid_manifest_contacts_no_host() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    let canary = Canary::new(dir.path());
    let valid = manifest_with_hosts(&canary.hosts());
    let bomb = (b'b'..=b'i').fold(
        String::from("x:\n  a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"),
        |mut s, c| {
            let (n, p) = (c as char, (c - 1) as char);
            s.push_str(&format!(
                "  {n}: &{n} [{}]\n",
                vec![format!("*{p}"); 9].join(", ")
            ));
            s
        },
    );
    let mut bad_utf8 = valid.clone().into_bytes();
    bad_utf8.extend_from_slice(b"# \xff\n");
    let mut oversized = valid.clone().into_bytes();
    let pad = format!("# {}\n", "p".repeat(1021));
    while oversized.len() <= 16 * MIB {
        oversized.extend_from_slice(pad.as_bytes());
    }
    let invalid: Vec<(&str, Vec<u8>)> = vec![
        ("an unknown field", valid.replace("    versions:", "    verisons:").into_bytes()),
        ("a wrong type", valid.replace("platform: acme", "platform: acme\nretain: lots").into_bytes()),
        (
            "a depends_on cycle",
            valid
                .replace(
                    &format!("    image: {SERVICE}\n"),
                    &format!("    image: {SERVICE}\n    depends_on: [crm]\n  crm:\n    image: {SERVICE}-crm\n    depends_on: [billing]\n"),
                )
                .into_bytes(),
        ),
        ("a duplicate key", format!("{valid}platform: acme\n").into_bytes()),
        ("a YAML syntax error", format!("{valid}  broken: [1, 2\n").into_bytes()),
        ("an alias bomb", format!("{valid}{bomb}").into_bytes()),
        ("a shell metacharacter in the image", valid.replace(SERVICE, "registry.acme.internal:5000/acme/billing;reboot").into_bytes()),
        ("an invalid UTF-8 byte", bad_utf8),
        ("a file over 16 MiB", oversized),
    ];
    let commands: [&[&str]; 6] = [
        &["validate"],
        &["validate", "--format", "json"],
        &["plan", "recette"],
        &["apply", "recette", "--yes"],
        &["rollback", "recette", "--yes", "--no-commit"],
        &["unlock", "recette"],
    ];
    let path = dir.path().join("platform.yaml");
    let mut failures = Vec::new();
    for (what, bytes) in &invalid {
        std::fs::write(&path, bytes).unwrap();
        for args in commands {
            let mut all = vec!["--connect-timeout", "1"];
            all.extend_from_slice(args);
            let r = run(&mut fleetpin(&path, &all), Duration::from_secs(20));
            let contacts = canary.contacts();
            if r.code != Some(1) || contacts > 0 {
                failures.push(format!(
                    "{what}: `{}` exited {:?} and made {contacts} connection(s)",
                    args.join(" "),
                    r.code
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The control: the same hosts in a valid manifest are reached, so the canary works.
    std::fs::write(&path, &valid).unwrap();
    let r = run(
        &mut fleetpin(&path, &["--connect-timeout", "1", "plan", "recette"]),
        Duration::from_secs(30),
    );
    assert!(!r.timed_out);
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        canary.contacts() >= 2,
        "a valid manifest should reach both listeners (exit {:?}): {}",
        r.code,
        r.stderr()
    );
}

// ----------------------------------------------------------------------- shell metacharacters

#[test]
fn free_text_fields_take_shell_metacharacters_and_nothing_runs() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    let canary = Canary::new(dir.path());
    let pwned = dir.path().join("fleetpin-pwned");
    let p = pwned.display().to_string();
    // Every field that takes free text: environment and label values, command and entrypoint
    // arguments (argv, never a shell), a CMD-SHELL healthcheck (run by the container's shell, in
    // the container), logging options, the user, and file paths (read, never run).
    let services = format!(
        r#"platform: acme
services:
  billing:
    image: {SERVICE}
    env:
      A: "$(touch {p})"
      B: "`touch {p}`"
      C: "; touch {p}"
      D: "| nc 127.0.0.1 1"
      E: "line one\nline two; touch {p}"
    labels:
      com.acme.note: "$(touch {p})"
      com.acme.tick: "`touch {p}`; reboot | nc 127.0.0.1 1\n"
    command: ["sh", "-c", "$(touch {p})", "`touch {p}`", "; touch {p}", "| nc 127.0.0.1 1", "a\nb"]
    entrypoint: ["/bin/sh", "-c", "touch {p}"]
    user: "$(touch {p})"
    logging: {{driver: json-file, options: {{tag: "$(touch {p})`touch {p}`;|\n"}}}}
    healthcheck: {{test: ["CMD-SHELL", "$(touch {p}); `touch {p}` | nc 127.0.0.1 1\nexit 0"]}}
environments:
  recette:
    hosts:
{hosts}    versions: {{billing: "2.4.1"}}
    overrides:
      billing: {{env: {{A: "$(touch {p})"}}, command: ["`touch {p}`", "; reboot"]}}
"#,
        hosts = canary.hosts()
    );
    let path = dir.path().join("platform.yaml");
    std::fs::write(&path, &services).unwrap();
    for args in [&["validate"][..], &["validate", "--format", "json"]] {
        let r = run(&mut fleetpin(&path, args), Duration::from_secs(20));
        assert_eq!(r.code, Some(0), "`{}`: {}", args.join(" "), r.stderr());
        assert!(
            !pwned.exists(),
            "`{}` ran a command from the manifest",
            args.join(" ")
        );
    }
    // plan reads these values and reaches the (canary) hosts; it still runs nothing from them.
    let r = run(
        &mut fleetpin(&path, &["--connect-timeout", "1", "plan", "recette"]),
        Duration::from_secs(30),
    );
    assert!(!r.timed_out);
    assert!(!pwned.exists(), "`plan` ran a command from the manifest");

    // File paths take any character too: they are opened, never run.
    let paths = format!(
        r#"platform: acme
services:
  billing:
    image: {SERVICE}
    env_file: "secrets/$(touch {p}).env"
environments:
  recette:
    hosts:
      rec-1:
        endpoint: "tcp://127.0.0.1:2376"
        tls: {{ca: "certs/$(touch {p})", cert: "certs/`touch {p}`", key: "certs/; touch {p}"}}
    versions: {{billing: "2.4.1"}}
"#
    );
    std::fs::write(&path, &paths).unwrap();
    let r = run(&mut fleetpin(&path, &["validate"]), Duration::from_secs(20));
    assert_eq!(r.code, Some(0), "{}", r.stderr());
    assert!(!pwned.exists(), "`validate` ran a command from a path");
}

#[test]
fn an_ssh_endpoint_cannot_smuggle_an_option_to_ssh() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    // A stand-in `ssh` first in PATH records its arguments (nothing is contacted).
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let log = dir.path().join("ssh-argv.log");
    let fake = bin.join("ssh");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done >> '{}'\necho --- >> '{}'\nexit 255\n",
            log.display(),
            log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.path().join("platform.yaml");
    std::fs::write(
        &path,
        manifest_with_hosts(
            "      rec-1: {endpoint: \"ssh://-oProxyCommand=touch$IFS.fleetpin-pwned@rec-1\"}\n",
        ),
    )
    .unwrap();
    let env_path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let r = run(
        fleetpin(&path, &["validate"]).env("PATH", &env_path),
        Duration::from_secs(20),
    );
    let validated = r.code;
    let r = run(
        fleetpin(&path, &["--connect-timeout", "2", "plan", "recette"])
            .env("PATH", &env_path)
            .current_dir(dir.path()),
        Duration::from_secs(30),
    );
    assert!(!r.timed_out);
    // The destination is the argument after `--` in each ssh invocation.
    let argv = std::fs::read_to_string(&log).unwrap_or_default();
    let destinations: Vec<&str> = argv
        .split("---\n")
        .filter_map(|call| call.lines().skip_while(|a| *a != "--").nth(1))
        .collect();
    assert!(
        validated == Some(1) && destinations.iter().all(|d| !d.starts_with('-')),
        "an ssh user of `-oProxyCommand=…` must be refused by validate (exit {validated:?}); plan passed ssh these destinations: {destinations:?}"
    );
}

#[test]
fn terminal_escapes_from_the_manifest_never_reach_the_terminal_raw() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("platform.yaml");
    // YAML escapes: set the window title (OSC 0, ended by BEL), then clear the screen.
    std::fs::write(
        &path,
        manifest_with_hosts("      rec-1: {endpoint: \"unix:///var/run/docker.sock\"}\n")
            .replace("platform: acme", "platform: \"acme\\e]0;pwned\\a\\e[2J\""),
    )
    .unwrap();
    let r = run(&mut fleetpin(&path, &["validate"]), Duration::from_secs(20));
    assert_eq!(r.code, Some(1));
    let raw: Vec<String> = r
        .stderr
        .iter()
        .filter(|b| matches!(**b, 0x1b | 0x07))
        .map(|b| format!("{b:#04x}"))
        .collect();
    assert!(
        raw.is_empty(),
        "with NO_COLOR, the human output carries raw control bytes {raw:?} copied from the manifest:\n{}",
        r.stderr().escape_debug()
    );
}

// ---------------------------------------------------------------------------------- properties

fn cases() -> u32 {
    std::env::var("HOSTILE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        // Failures are shown with their minimal input; nothing is written into tests/.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Feeds one text to both entry points; every error must be located, quickly.
fn check_text(text: &str) -> Result<(), TestCaseError> {
    let _g = heavy();
    let started = Instant::now();
    if let Err(e) = fleetpin::manifest::yaml::parse(text) {
        prop_assert!(e.span.line >= 1, "unlocated YAML error: {}", e.message);
    }
    match fleetpin::manifest::parse_str(text) {
        Ok(m) => prop_assert!(!m.services.is_empty() && !m.environments.is_empty()),
        Err(problems) => {
            if let Err(msg) = assert_located(text, &problems) {
                return Err(TestCaseError::fail(msg));
            }
        }
    }
    let elapsed = started.elapsed();
    prop_assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    Ok(())
}

/// Manifest-like fragments: real field names, every kind of scalar, anchors, aliases, merge keys,
/// brackets, tabs, control characters and unicode.
fn fragment() -> impl Strategy<Value = String> {
    const KEYS: &[&str] = &[
        "platform",
        "retain",
        "services",
        "environments",
        "image",
        "ports",
        "volumes",
        "env",
        "env_file",
        "command",
        "entrypoint",
        "user",
        "labels",
        "memory",
        "cpus",
        "logging",
        "driver",
        "options",
        "healthcheck",
        "test",
        "interval",
        "timeout",
        "retries",
        "start_period",
        "depends_on",
        "restart",
        "stop_timeout",
        "networks",
        "hosts",
        "versions",
        "overrides",
        "max_parallel",
        "endpoint",
        "tls",
        "ca",
        "cert",
        "key",
        "insecure",
        "billing",
        "crm",
        "db",
        "recette",
        "prod",
        "rec-1",
        "<<",
        "? x",
        "\"q\"",
        "'s'",
        "1",
        "~",
        "null",
        "true",
        "JAVA_OPTS",
        "io.fleetpin.x",
        "verisons",
        "&k a",
        "*k",
    ];
    const VALUES: &[&str] = &[
        "acme",
        "2.4.1",
        "\"2.4.1\"",
        "latest",
        "1.10",
        "0",
        "-1",
        "3",
        "1e308",
        "-1e308",
        "1e400",
        ".inf",
        ".nan",
        "0x1f",
        "0o777",
        "99999999999999999999999",
        "18446744073709551616",
        "true",
        "no",
        "~",
        "null",
        "\"\"",
        "''",
        "\"a\\0b\"",
        "\"\\e[2J\"",
        "\"\\u202e\"",
        "\"8081:8080\"",
        "8081:8080",
        "\"[::1]:80:80/udp\"",
        "\"logs:/var/log:ro\"",
        "\"unix:///var/run/docker.sock\"",
        "\"tcp://10.0.0.1:2376\"",
        "\"ssh://deploy@h\"",
        "\"ssh://-oProxyCommand=x@h\"",
        "registry.acme.internal:5000/acme/billing",
        "512m",
        "2g",
        "10s",
        "1m30s",
        "[CMD, \"true\"]",
        "[\"CMD-SHELL\", \"exit 0\"]",
        "[NONE]",
        "[]",
        "{}",
        "[billing, crm]",
        "{billing: \"1.0\"}",
        "{endpoint: \"unix:///s\"}",
        "&a [x, y]",
        "*a",
        "&b {k: v}",
        "*b",
        "&c 1.20",
        "*c",
        "[*a, *a, *a]",
        "{<<: *b}",
        "!!str 1",
        "!!binary aGk=",
        "!custom x",
        "|\n  literal",
        ">-\n  folded",
        "\"$(rm -rf /)\"",
        "`reboot`",
        "a; reboot",
        "\"| nc evil 1\"",
        "../../etc/passwd",
        "é",
        "中文",
        "🚀",
        "\t",
        "x\ty",
        "# comment",
        "[",
        "]",
        "{",
        "}",
        ",",
        ":",
        "- ",
        "? ",
        "%",
        "@",
        "`",
        "'unterminated",
        "\"unterminated",
    ];
    let key = prop::sample::select(KEYS).prop_map(str::to_string);
    let value = prop::sample::select(VALUES).prop_map(str::to_string);
    let indent =
        prop::sample::select(&["", "  ", "    ", "      ", "        ", "\t", " ", "   "][..]);
    prop_oneof![
        4 => (indent.clone(), key.clone(), value.clone()).prop_map(|(i, k, v)| format!("{i}{k}: {v}")),
        2 => (indent.clone(), key.clone()).prop_map(|(i, k)| format!("{i}{k}:")),
        2 => (indent.clone(), value.clone()).prop_map(|(i, v)| format!("{i}- {v}")),
        1 => (indent.clone(), prop::collection::vec((key.clone(), value.clone()), 0..4))
            .prop_map(|(i, kv)| format!("{i}{{{}}}", kv.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", "))),
        1 => (indent, value.clone()).prop_map(|(i, v)| format!("{i}{v}")),
        1 => prop::sample::select(&["---", "...", "%YAML 1.2", "", "#", "- - - x", "&a", "*a"][..]).prop_map(str::to_string),
        1 => "\\PC{0,12}",
    ]
}

/// A valid manifest, then fragments inserted, replacing lines, or on their own.
fn yamlish() -> impl Strategy<Value = String> {
    const BASE: &str = "platform: acme\nretain: 3\nservices:\n  billing:\n    image: registry.acme.internal:5000/acme/billing\n    ports: [\"8081:8080\"]\n    volumes: [\"billing-logs:/var/log/tomcat\"]\n    env: {JAVA_OPTS: \"-Xmx512m\"}\n    healthcheck:\n      test: [CMD, \"true\"]\n      interval: 2s\n    depends_on: [db]\n  db:\n    image: registry.acme.internal:5000/acme/db\nenvironments:\n  recette:\n    hosts:\n      rec-1: {endpoint: \"unix:///var/run/docker.sock\"}\n      rec-2: {endpoint: \"tcp://10.0.0.2:2376\", insecure: true}\n    versions:\n      billing: \"2.4.1\"\n      db: \"15.2\"\n    overrides:\n      billing: {memory: 512m}\n  prod:\n    max_parallel: 1\n    hosts:\n      prod-1: {endpoint: \"ssh://deploy@prod-1\"}\n    versions: {billing: \"2.4.0\", db: \"15.2\"}\n";
    let edits = prop::collection::vec(
        (any::<prop::sample::Index>(), any::<bool>(), fragment()),
        0..6,
    );
    prop_oneof![
        3 => edits.prop_map(|edits| {
            let mut lines: Vec<String> = BASE.lines().map(str::to_string).collect();
            for (at, replace, f) in edits {
                let i = at.index(lines.len());
                if replace {
                    lines[i] = f;
                } else {
                    lines.insert(i, f);
                }
            }
            lines.join("\n") + "\n"
        }),
        2 => prop::collection::vec(fragment(), 0..40).prop_map(|l| l.join("\n")),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_bytes_never_panic_and_every_error_is_located(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        check_text(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn yamlish_text_never_panics_and_every_error_is_located(text in yamlish()) {
        check_text(&text)?;
    }
}

/// Raw bytes through `manifest::load`, the path the binary takes (UTF-8 check included).
#[test]
fn random_files_load_without_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("platform.yaml");
    let mut runner = proptest::test_runner::TestRunner::new(config());
    runner
        .run(&prop::collection::vec(any::<u8>(), 0..2048), |bytes| {
            let _g = heavy();
            std::fs::write(&path, &bytes).unwrap();
            if let Err(e) = fleetpin::manifest::load(&path) {
                let file_level = e.problems.iter().all(|p| p.span.line == 0);
                prop_assert!(
                    !file_level,
                    "a file-level problem for {} bytes: {:?}",
                    bytes.len(),
                    e.problems
                );
                if let Err(msg) = assert_located(&e.text, &e.problems) {
                    return Err(TestCaseError::fail(msg));
                }
            }
            Ok(())
        })
        .unwrap();
}
