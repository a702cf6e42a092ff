//! `fleetpin import`, the real binary: every good fixture (tests/import/good/NAME/, with its
//! command line in `args`) imports and the manifest written validates as it is; a realistic
//! compose file's manifest is a snapshot; every bad compose file (tests/import/bad/NNN-*.yml,
//! headed by `# expect: [FILE:]LINE:COLUMN: SUBSTRING` lines and optional `# args:` lines) fails
//! with exit 1 and exactly the expected located problems; `-o` never overwrites without --force.

mod support;

use std::path::{Path, PathBuf};
use support::run::run_in as fleetpin;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/import");

fn dirs(under: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join(under))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// The command line of a good fixture.
fn fixture_args(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("args"))
        .unwrap()
        .split_whitespace()
        .map(String::from)
        .collect()
}

#[test]
fn every_good_fixture_imports_and_the_manifest_validates_as_written() {
    let fixtures: Vec<PathBuf> = dirs("good").into_iter().filter(|p| p.is_dir()).collect();
    assert!(fixtures.len() >= 3, "{fixtures:?}");
    for dir in fixtures {
        let tmp = tempfile::tempdir().unwrap();
        let manifest = tmp.path().join("platform.yaml");
        let mut args: Vec<String> = vec!["import".into()];
        args.extend(fixture_args(&dir));
        args.extend(["-o".into(), manifest.display().to_string()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = fleetpin(&dir, &args);
        assert_eq!(out.code, 0, "{}: {out:?}", dir.display());
        assert!(out.stdout.contains("wrote"), "{out:?}");
        let m = manifest.display().to_string();
        let v = fleetpin(tmp.path(), &["-f", &m, "validate"]);
        assert_eq!(
            v.code,
            0,
            "{}: the manifest does not validate: {v:?}\n{}",
            dir.display(),
            std::fs::read_to_string(&manifest).unwrap()
        );
        assert!(v.stdout.contains("is valid"), "{v:?}");
    }
}

#[test]
fn a_realistic_compose_file_becomes_this_manifest() {
    let dir = Path::new(ROOT).join("good/wordpress");
    let mut args = vec!["import".to_string()];
    args.extend(fixture_args(&dir));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = fleetpin(&dir, &args);
    assert_eq!(out.code, 0, "{out:?}");
    insta::assert_snapshot!("wordpress_manifest", out.stdout);
    insta::assert_snapshot!("wordpress_warnings", out.stderr);
}

#[test]
fn several_files_merge_into_hosts_with_services_lists() {
    let dir = Path::new(ROOT).join("good/per-host");
    let mut args = vec!["import".to_string()];
    args.extend(fixture_args(&dir));
    args.extend(["--format".into(), "json".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = fleetpin(&dir, &args);
    assert_eq!(out.code, 0, "{out:?}");
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("one JSON document");
    assert_eq!(doc["imported"], true);
    assert_eq!(
        doc["hosts"],
        serde_json::json!(["front-1", "front-2", "data-1"])
    );
    assert_eq!(
        doc["services"],
        serde_json::json!(["proxy", "shop", "cache", "db"])
    );
    let text = doc["manifest"].as_str().unwrap();
    // Written exactly so: the front hosts run what front.yml brings, the data host the rest.
    assert!(
        text.contains(
            "      front-1:\n        endpoint: \"ssh://deploy@front-1\"\n        services: [proxy, shop, cache]\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "      data-1:\n        endpoint: \"ssh://deploy@data-1:2222\"\n        services: [cache, db]\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("  # from front.yml:14, data.yml:3\n  cache:\n"),
        "{text}"
    );
}

struct Expect {
    file: Option<String>,
    line: u64,
    column: u64,
    text: String,
}

fn expectations(text: &str) -> Vec<Expect> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# expect: "))
        .map(|e| {
            let (file, rest) = match e.split_once(':') {
                Some((f, rest)) if f.parse::<u64>().is_err() => (Some(f.to_string()), rest),
                _ => (None, e),
            };
            let mut parts = rest.splitn(3, ':');
            let line = parts.next().unwrap().trim().parse().expect("line number");
            let column = parts.next().unwrap().trim().parse().expect("column number");
            let text = parts.next().expect("a substring").trim().to_string();
            Expect {
                file,
                line,
                column,
                text,
            }
        })
        .collect()
}

#[test]
fn every_bad_compose_file_fails_at_the_expected_places() {
    let dir = Path::new(ROOT).join("bad");
    let cases: Vec<PathBuf> = dirs("bad")
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    assert!(cases.len() >= 25, "{}", cases.len());
    let mut failures = vec![];
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&case).unwrap();
        let expects = expectations(&text);
        assert!(!expects.is_empty(), "{name} has no `# expect:` line");
        let mut args: Vec<String> = vec![
            "import".into(),
            name.clone(),
            "--env".into(),
            "prod".into(),
            "--host".into(),
            "h1=unix:///var/run/docker.sock".into(),
            "--format".into(),
            "json".into(),
        ];
        for extra in text.lines().filter_map(|l| l.strip_prefix("# args: ")) {
            args.extend(extra.split_whitespace().map(String::from));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = fleetpin(&dir, &args);
        if out.code != 1 {
            failures.push(format!("{name}: exit {}, expected 1: {out:?}", out.code));
            continue;
        }
        let doc: serde_json::Value = match serde_json::from_str(&out.stdout) {
            Ok(d) => d,
            Err(e) => {
                failures.push(format!("{name}: stdout is not JSON ({e}): {out:?}"));
                continue;
            }
        };
        let problems = doc["problems"].as_array().cloned().unwrap_or_default();
        for e in &expects {
            let file = e.file.clone().unwrap_or_else(|| name.clone());
            let found = problems.iter().any(|p| {
                p["file"] == file.as_str()
                    && p["line"] == e.line
                    && p["column"] == e.column
                    && p["message"].as_str().unwrap_or("").contains(&e.text)
            });
            if !found {
                failures.push(format!(
                    "{name}: no problem at {file}:{}:{} containing {:?}; got:\n{}",
                    e.line,
                    e.column,
                    e.text,
                    serde_json::to_string_pretty(&problems).unwrap()
                ));
            }
        }
        if problems.len() != expects.len() {
            failures.push(format!(
                "{name}: {} problems, {} expected:\n{}",
                problems.len(),
                expects.len(),
                serde_json::to_string_pretty(&problems).unwrap()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_build_file_fails_at_its_line_for_people_too() {
    let dir = Path::new(ROOT).join("bad");
    let out = fleetpin(
        &dir,
        &[
            "import",
            "001-build.yml",
            "--env",
            "prod",
            "--host",
            "h1=unix:///var/run/docker.sock",
        ],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(out.stdout, "", "{out:?}");
    assert!(
        out.stderr.contains(
            "001-build.yml:7:5: `build` of service `web` cannot be carried into a fleetpin manifest"
        ),
        "{out:?}"
    );
    assert!(out.stderr.contains("7 │     build: ."), "{out:?}");
    assert!(
        out.stderr.contains("build and push the image once"),
        "{out:?}"
    );
}

#[test]
fn out_refuses_to_overwrite_without_force() {
    let dir = Path::new(ROOT).join("good/wordpress");
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("platform.yaml");
    std::fs::write(&target, "# hand-edited\n").unwrap();
    let t = target.display().to_string();
    let mut args = vec!["import".to_string()];
    args.extend(fixture_args(&dir));
    args.extend(["-o".into(), t.clone()]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = fleetpin(&dir, &argv);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("{t} exists; pass --force to overwrite it")),
        "{out:?}"
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "# hand-edited\n");
    let mut argv = argv.clone();
    argv.push("--force");
    let out = fleetpin(&dir, &argv);
    assert_eq!(out.code, 0, "{out:?}");
    let written = std::fs::read_to_string(&target).unwrap();
    assert!(
        written.starts_with("# Written by `fleetpin import`"),
        "{written}"
    );
    // Without -o the manifest goes to stdout, and the same text.
    let mut stdout_args: Vec<&str> = vec!["import"];
    let fa = fixture_args(&dir);
    stdout_args.extend(fa.iter().map(String::as_str));
    let out = fleetpin(&dir, &stdout_args);
    assert_eq!(out.code, 0, "{out:?}");
    // env_file paths are relative to where the manifest lives: here, absolute.
    let abs = dir.join("secrets/wordpress.env").display().to_string();
    assert!(
        written.contains(&format!("env_file: \"{abs}\""))
            || written.contains(&format!("env_file: {abs}")),
        "{written}"
    );
    assert!(
        out.stdout.contains("env_file: secrets/wordpress.env"),
        "{out:?}"
    );
}

#[test]
fn usage_problems_exit_1_and_say_what_to_do() {
    let dir = Path::new(ROOT).join("good/per-host");
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "import",
                "front.yml@front-1",
                "--env",
                "prod",
                "--host",
                "front-1=ssh://a",
                "--host",
                "front-2=ssh://b",
            ],
            "host `front-2` runs no compose file",
        ),
        (
            &[
                "import",
                "front.yml@nowhere",
                "--env",
                "prod",
                "--host",
                "front-1=ssh://a",
            ],
            "no host named `nowhere`",
        ),
        (
            &[
                "import",
                "front.yml",
                "--env",
                "prod",
                "--host",
                "front-1=tcp://10.0.0.1:2375",
            ],
            "pass --tls-dir DIR",
        ),
        (
            &[
                "import",
                "front.yml",
                "--env",
                "pre-prod",
                "--host",
                "front-1=ssh://a",
            ],
            "not a valid environment name",
        ),
        (
            &["import", "front.yml", "--env", "prod", "--host", "front-1"],
            "expected NAME=ENDPOINT",
        ),
        (
            &[
                "import",
                "missing.yml",
                "--env",
                "prod",
                "--host",
                "front-1=ssh://a",
            ],
            "missing.yml: cannot read the file",
        ),
    ];
    for (args, want) in cases {
        let out = fleetpin(&dir, args);
        assert_eq!(out.code, 1, "{args:?}: {out:?}");
        assert!(out.stderr.contains(want), "{args:?}: {out:?}");
        assert_eq!(out.stdout, "", "{args:?}: {out:?}");
    }
}
