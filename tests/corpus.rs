//! The bad-manifest corpus: every file under tests/bad/ is a manifest with deliberate mistakes,
//! headed by `# expect: LINE:COLUMN: SUBSTRING` lines. The real binary must exit 1, contact no host,
//! and report a problem at exactly each expected place with a message containing the substring.

mod support;

use assert_cmd::Command;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

struct Expect {
    line: u64,
    column: u64,
    text: String,
}

fn expectations(path: &Path) -> Vec<Expect> {
    let text = String::from_utf8_lossy(&std::fs::read(path).unwrap()).to_string();
    text.lines()
        .filter_map(|l| l.strip_prefix("# expect: "))
        .map(|e| {
            let mut parts = e.splitn(3, ':');
            let line = parts.next().unwrap().trim().parse().expect("line number");
            let column = parts.next().unwrap().trim().parse().expect("column number");
            let text = parts.next().expect("a substring").trim().to_string();
            Expect { line, column, text }
        })
        .collect()
}

fn corpus() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bad"))
            .expect("tests/bad exists")
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
    files.sort();
    files
}

#[test]
fn corpus_is_large_enough() {
    assert!(
        corpus().len() >= 30,
        "the corpus has {} files",
        corpus().len()
    );
}

#[test]
fn every_bad_manifest_is_rejected_at_the_expected_place() {
    let mut failures = Vec::new();
    for file in corpus() {
        let expects = expectations(&file);
        assert!(
            !expects.is_empty(),
            "{} has no `# expect:` line",
            file.display()
        );
        // Each file gets 10 seconds of CPU (`ulimit -t`: a blow-up is killed by SIGXCPU and
        // fails here; a busy machine, which stretches the wall clock, does not) and a generous
        // wall-clock hang guard.
        let sh = ["sh", "-c", "ulimit -t 10 && exec \"$0\" \"$@\""];
        let out = Command::from_std(support::run::wrapped(&sh))
            .arg("-f")
            .arg(&file)
            .args(["validate", "--format", "json"])
            .timeout(Duration::from_secs(120))
            .output()
            .unwrap();
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        if out.status.code() != Some(1) {
            failures.push(format!(
                "{name}: exit {:?}, expected 1{}",
                out.status.code(),
                match out.status.signal() {
                    Some(libc::SIGXCPU) => " (killed: more than 10 s of CPU)".to_string(),
                    Some(sig) => format!(" (killed by signal {sig})"),
                    None => String::new(),
                }
            ));
            continue;
        }
        let doc: serde_json::Value = match serde_json::from_slice(&out.stdout) {
            Ok(d) => d,
            Err(e) => {
                failures.push(format!("{name}: stdout is not JSON ({e})"));
                continue;
            }
        };
        let problems = doc["problems"].as_array().cloned().unwrap_or_default();
        for e in expects {
            let found = problems.iter().any(|p| {
                p["line"].as_u64() == Some(e.line)
                    && p["column"].as_u64() == Some(e.column)
                    && p["message"].as_str().is_some_and(|m| m.contains(&e.text))
            });
            if !found {
                let got: Vec<String> = problems
                    .iter()
                    .map(|p| {
                        format!(
                            "{}:{}: {}",
                            p["line"],
                            p["column"],
                            p["message"].as_str().unwrap_or("")
                        )
                    })
                    .collect();
                failures.push(format!(
                    "{name}: expected {}:{}: …{}…, got:\n    {}",
                    e.line,
                    e.column,
                    e.text,
                    got.join("\n    ")
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} corpus failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn human_output_names_file_line_and_column() {
    for file in corpus() {
        let expects = expectations(&file);
        let out = support::run::fleetpin()
            .arg("-f")
            .arg(&file)
            .arg("validate")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first = &expects[0];
        let loc = format!("{}:{}:{}", file.display(), first.line, first.column);
        assert!(
            stderr.contains(&loc),
            "{} does not name {loc}:\n{stderr}",
            file.display()
        );
        assert!(
            stdout_is_empty(&out.stdout),
            "{}: stdout must stay empty",
            file.display()
        );
    }
}

fn stdout_is_empty(b: &[u8]) -> bool {
    b.iter().all(|c| c.is_ascii_whitespace())
}
