//! Pull agents on the fleet, as the agent tests run them: one `fleetpin agent` per host in that
//! host's network namespace (`ip netns exec`), its output in a file, killed on drop.

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A running agent, killed on drop; its output goes to a file.
pub struct Agent {
    pub child: Child,
    pub log: PathBuf,
}

impl Agent {
    /// Starts `fleetpin ARGS` in network namespace `netns`, its output in `log`.
    pub fn start(netns: &str, args: &[String], envs: &[(&str, &str)], log: PathBuf) -> Agent {
        let file = std::fs::File::create(&log).unwrap();
        let child = crate::support::run::wrapped(&["ip", "netns", "exec", netns])
            .args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        Agent { child, log }
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Waits up to `limit` for the agent to exit; its code, or None.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(st) = self.child.try_wait().unwrap() {
                return Some(st.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The fleet bridge's address, as a host's namespace routes to it (its default gateway): where
/// an agent in that namespace reaches a server run on this machine (a git daemon, a relay).
pub fn bridge_address(netns: &str) -> String {
    let out = std::process::Command::new("ip")
        .args([
            "netns", "exec", netns, "ip", "-4", "route", "show", "default",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .skip_while(|w| *w != "via")
        .nth(1)
        .unwrap_or_else(|| panic!("no default route in {netns}: {text}"))
        .to_string()
}

/// Waits until `cond` holds, up to `limit`; panics with `what` (and the agents' output) if not.
pub fn wait_for(limit: Duration, what: &str, agents: &[&Agent], mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = agents.iter().map(|a| a.output()).collect();
            panic!("{what}: not within {limit:?}\n{}", logs.join("\n----\n"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The agent's image (packaging/agent) running as a container on one fleet host, as
/// docs/agent.md runs it: the host's network and its engine's socket. Removed on drop.
pub struct AgentBox {
    docker_host: String,
    pub name: String,
}

impl AgentBox {
    /// Builds the image as `tag` on the engine at `docker_host` (`unix://…`) from the release
    /// binary CI built (`FLEETPIN_AGENT_BINARY`), else this test's; the binary and build.sh's
    /// output.
    pub fn build_image(docker_host: &str, tag: &str) -> (String, String) {
        let binary = std::env::var("FLEETPIN_AGENT_BINARY")
            .unwrap_or_else(|_| crate::support::run::BIN.to_string());
        let mut build = std::process::Command::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/packaging/agent/build.sh"
        ));
        build
            .args(["--binary", &binary, "--tag", tag])
            .env("DOCKER_HOST", docker_host);
        let out = crate::support::run::stdout_ok(&mut build, "packaging/agent/build.sh");
        (binary, out)
    }

    /// `docker run -d --name NAME --network host -v SOCKET:/var/run/docker.sock RUN_ARGS… TAG
    /// AGENT_ARGS…` on the engine at `docker_host`, a container left by an earlier run removed
    /// first.
    pub fn run(
        docker_host: &str,
        name: &str,
        run_args: &[&str],
        tag: &str,
        agent_args: &[&str],
    ) -> AgentBox {
        let b = AgentBox {
            docker_host: docker_host.to_string(),
            name: name.to_string(),
        };
        b.remove();
        let socket = docker_host.trim_start_matches("unix://");
        let mount = format!("{socket}:/var/run/docker.sock");
        let mut cmd = std::process::Command::new("docker");
        cmd.args([
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "host",
            "-v",
            &mount,
        ])
        .args(run_args)
        .arg(tag)
        .args(agent_args)
        .env("DOCKER_HOST", docker_host);
        crate::support::run::stdout_ok(&mut cmd, &format!("docker run {tag}"));
        b
    }

    /// The container's output so far (stdout and stderr).
    pub fn logs(&self) -> String {
        std::process::Command::new("docker")
            .args(["logs", &self.name])
            .env("DOCKER_HOST", &self.docker_host)
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr)
            })
            .unwrap_or_default()
    }

    /// Waits until `cond` holds, up to `limit`; panics with `what` and the container's output.
    pub fn until(&self, limit: Duration, what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + limit;
        while !cond() {
            assert!(
                Instant::now() < deadline,
                "{what}: not within {limit:?}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn remove(&self) {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f", &self.name])
            .env("DOCKER_HOST", &self.docker_host)
            .output();
    }
}

impl Drop for AgentBox {
    fn drop(&mut self) {
        self.remove();
    }
}
