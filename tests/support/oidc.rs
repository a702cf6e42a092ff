//! The real OpenID Connect provider the console's sign-in tests run (npm's `oidc-provider`,
//! tests/oidc/provider.mjs, on this machine's node, on loopback), and the child processes those
//! tests keep alive. Under CI a missing node or npm fails the test; elsewhere it skips loudly.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

pub fn oidc_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc")
}

/// node, and the provider's packages installed; `false` (after a loud note) when they cannot
/// be had outside CI.
pub fn provider_ready() -> bool {
    static READY: Mutex<Option<bool>> = Mutex::new(None);
    let mut ready = READY.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(r) = *ready {
        return r;
    }
    let missing = |what: &str| {
        if std::env::var_os("CI").is_some() {
            panic!("{what}: the OpenID provider tests need node and npm (.ci/run installs them)");
        }
        eprintln!(
            "\n*** SKIPPED: {what}; the OpenID Connect tests need node and npm \
             (apt-get install nodejs npm) ***\n"
        );
        false
    };
    let r = (|| {
        let has = |cmd: &str| {
            Command::new(cmd)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !has("node") {
            return missing("node is not installed");
        }
        if oidc_dir().join("node_modules/oidc-provider").is_dir() {
            return true;
        }
        if !has("npm") {
            return missing("npm is not installed");
        }
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(oidc_dir())
            .output()
            .expect("npm runs");
        if !out.status.success() {
            return missing(&format!(
                "npm ci in tests/oidc failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        true
    })();
    *ready = Some(r);
    r
}

/// A child process ended with the test.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The provider, started with the redirect URI and client secret of its clients; its issuer URL.
pub fn start_provider(redirect: &str, secret: &str) -> (String, Running) {
    let mut provider = Command::new("node")
        .arg("provider.mjs")
        .current_dir(oidc_dir())
        .env("REDIRECT_URI", redirect)
        .env("CLIENT_SECRET", secret)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node starts");
    let mut line = String::new();
    BufReader::new(provider.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let provider = Running(provider);
    let issuer = serde_json::from_str::<serde_json::Value>(&line)
        .unwrap_or_else(|e| panic!("the provider's first line {line:?}: {e}"))["issuer"]
        .as_str()
        .unwrap()
        .to_string();
    (issuer, provider)
}
