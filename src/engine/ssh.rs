//! How requests reach an `ssh://` engine: through the operator's own OpenSSH client, as the
//! docker CLI does — `ssh -o BatchMode=yes [-l USER] [-p PORT] -- HOST docker system dial-stdio` —
//! with HTTP spoken over that process's stdin and stdout.
//!
//! Why not bollard's ssh transport: it hands `host:port` to ssh as a host name (so a port could
//! not be written), starts a new ssh master connection for every connection it opens, and may
//! prompt for a password. Owning the command line means ssh reads the operator's ~/.ssh/config,
//! agent and known_hosts as usual, never prompts (BatchMode), and fleetpin decides how many ssh
//! processes a host gets: each one carries one kept-alive HTTP connection; a host's short
//! requests (lists, inspects, creates, renames: all of an audit) share at most
//! [`SESSIONS_PER_HOST`] of them, while requests that last (pulls, stops, waits, followed logs)
//! get sessions of their own, so that they never hold back a short request such as the lock's
//! heartbeat. Every new session is checked with `HEAD /_ping` before it carries a request, which
//! turns a failed ssh (refused key, unknown host, no `docker` on the remote) into an error that
//! says so, with ssh's own words.

use crate::engine::EngineError;
use bollard::{BollardRequest, Docker};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// ssh sessions a host's short requests share (each session is one ssh process on this machine
/// and one `docker system dial-stdio` on the host).
pub const SESSIONS_PER_HOST: usize = 4;

/// The environment variable that replaces `ssh` (run with `sh -c`, arguments appended), like
/// git's `GIT_SSH_COMMAND`: `FLEETPIN_SSH_COMMAND="ssh -F ./ci/ssh_config"`.
pub const SSH_COMMAND_ENV: &str = "FLEETPIN_SSH_COMMAND";

/// Bytes of a session's stderr kept for the error message.
const STDERR_KEPT: usize = 4096;

/// Where an ssh endpoint points.
#[derive(Debug, Clone)]
pub struct Destination {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

/// Why an ssh session could not carry requests. Its text is what the operator reads.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SshError {
    #[error(
        "cannot run {program}: {reason} (ssh:// endpoints need the OpenSSH client on this machine)"
    )]
    Spawn { program: String, reason: String },
    #[error(
        "{dest} has no `docker` command for this ssh user: fleetpin talks to the engine through `docker system dial-stdio` on the remote host, so the docker CLI must be installed there, on the PATH of a non-interactive ssh session (ssh said: {stderr})"
    )]
    NoDockerCli { dest: String, stderr: String },
    #[error(
        "ssh {dest} failed: {stderr} (ssh runs with BatchMode=yes, so it never asks for a password or a passphrase: the key must be offered by your ssh agent or ~/.ssh/config, and the host key already be in known_hosts)"
    )]
    Ssh { dest: String, stderr: String },
    #[error(
        "`docker system dial-stdio` on {dest} failed{status}: {stderr} (the ssh user must be allowed to use the engine there, e.g. be in the `docker` group)"
    )]
    DialStdio {
        dest: String,
        status: String,
        stderr: String,
    },
    #[error("no answer from the engine through ssh {dest} within {seconds}s")]
    Timeout { dest: String, seconds: u64 },
    #[error(
        "the ssh session to {dest} printed `{start}` before the engine answered: something in that user's login (a shell startup file writing to stdout) corrupts the connection; make it print nothing for non-interactive sessions"
    )]
    Garbled { dest: String, start: String },
}

/// The arguments fleetpin gives ssh, after the program: the destination's parts as separate
/// arguments (never `host:port` as a host name), `--` before the host, and BatchMode.
pub fn ssh_args(dest: &Destination, connect_timeout: Duration) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "-o".into(),
        "BatchMode=yes".into(),
        "-o".into(),
        format!("ConnectTimeout={}", connect_timeout.as_secs().max(1)),
        "-T".into(),
    ];
    if let Some(u) = &dest.user {
        args.extend(["-l".into(), u.clone()]);
    }
    if let Some(p) = dest.port {
        args.extend(["-p".into(), p.to_string()]);
    }
    args.extend(
        ["--", &dest.host, "docker", "system", "dial-stdio"]
            .iter()
            .map(|s| s.to_string()),
    );
    args
}

/// `ssh ARGS…`, or `sh -c "$FLEETPIN_SSH_COMMAND \"$@\"" ARGS…` when that variable is set (what
/// git does with GIT_SSH_COMMAND); returns the command and the name shown in errors.
fn command(args: &[String]) -> (tokio::process::Command, String) {
    match std::env::var(SSH_COMMAND_ENV)
        .ok()
        .filter(|c| !c.trim().is_empty())
    {
        Some(custom) => {
            let mut c = tokio::process::Command::new("sh");
            c.arg("-c")
                .arg(format!("{custom} \"$@\""))
                .arg("fleetpin-ssh")
                .args(args);
            (c, format!("{SSH_COMMAND_ENV} (`{custom}`)"))
        }
        None => {
            let mut c = tokio::process::Command::new("ssh");
            c.args(args);
            (c, "`ssh`".into())
        }
    }
}

/// Opens sessions to one destination; with `limit`, at most that many at once (a new one waits
/// until a session of the host ends; an idle one is reused first, by the client's pool).
#[derive(Clone)]
struct Connector {
    dest: Arc<Destination>,
    connect_timeout: Duration,
    limit: Option<Arc<Semaphore>>,
}

/// One ssh process: its stdin and stdout are the connection.
pub struct Session {
    stdin: TokioIo<ChildStdin>,
    stdout: TokioIo<ChildStdout>,
    // Killed (and reaped by tokio) when the pool drops the connection.
    _child: Child,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Connector {
    async fn open(self) -> Result<Session, SshError> {
        let permit = match &self.limit {
            Some(s) => Some(s.clone().acquire_owned().await.expect("never closed")),
            None => None,
        };
        let dest = self.dest.to_string();
        let (mut cmd, program) = command(&ssh_args(&self.dest, self.connect_timeout));
        let mut child = cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| SshError::Spawn {
                program,
                reason: e.to_string(),
            })?;
        let (Some(mut stdin), Some(mut stdout), Some(mut stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            unreachable!("all three are piped");
        };
        // stderr is read for the session's whole life (a full pipe would block ssh); the tail is
        // kept for an error message.
        let tail = Arc::new(Mutex::new(Vec::<u8>::new()));
        let reader = {
            let tail = tail.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n) = stderr.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    let mut t = tail.lock().unwrap();
                    t.extend_from_slice(&buf[..n]);
                    if t.len() > STDERR_KEPT {
                        let cut = t.len() - STDERR_KEPT;
                        t.drain(..cut);
                    }
                }
            })
        };
        let bound = self.connect_timeout.max(Duration::from_secs(15));
        let probe = async {
            stdin
                .write_all(b"HEAD /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
                .await?;
            stdin.flush().await?;
            read_head(&mut stdout).await
        };
        match tokio::time::timeout(bound, probe).await {
            Ok(Ok(Head::Http)) => Ok(Session {
                stdin: TokioIo::new(stdin),
                stdout: TokioIo::new(stdout),
                _child: child,
                _permit: permit,
            }),
            Ok(Ok(Head::Other(start))) => Err(SshError::Garbled { dest, start }),
            outcome => {
                drop(stdin);
                let status = match tokio::time::timeout(Duration::from_secs(5), child.wait()).await
                {
                    Ok(Ok(s)) => Some(s),
                    _ => {
                        let _ = child.kill().await;
                        None
                    }
                };
                let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
                let stderr = String::from_utf8_lossy(&tail.lock().unwrap()).to_string();
                if outcome.is_err() && status.is_none() {
                    return Err(SshError::Timeout {
                        dest,
                        seconds: bound.as_secs(),
                    });
                }
                Err(classify(dest, status.and_then(|s| s.code()), &stderr))
            }
        }
    }
}

/// What came back on a new session before anything else.
enum Head {
    /// An HTTP response head: the engine answered.
    Http,
    /// The session ended first (ssh or the remote command failed).
    Ended,
    /// Something else: the first bytes, as text.
    Other(String),
}

/// Reads an HTTP response head (through the blank line) byte by byte, so that nothing after it
/// is consumed.
async fn read_head(stdout: &mut ChildStdout) -> std::io::Result<Head> {
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stdout.read(&mut byte).await? == 0 {
            return Ok(Head::Ended);
        }
        head.push(byte[0]);
        // Not the start of a response, or a head that never ends: not the engine speaking.
        if (head.len() <= 7 && !b"HTTP/1.".starts_with(&head)) || head.len() > 16 * 1024 {
            let mut more = [0u8; 64];
            let n = tokio::time::timeout(Duration::from_millis(100), stdout.read(&mut more))
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or(0);
            head.extend_from_slice(&more[..n]);
            let text = String::from_utf8_lossy(&head[..head.len().min(64)]);
            return Ok(Head::Other(text.escape_debug().to_string()));
        }
    }
    Ok(Head::Http)
}

/// What a session that ended before answering means, from ssh's exit status and stderr.
fn classify(dest: String, code: Option<i32>, stderr: &str) -> SshError {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Warning: Permanently added"))
        .collect();
    let text = if lines.is_empty() {
        "(nothing on stderr)".to_string()
    } else {
        lines[lines.len().saturating_sub(3)..].join(" / ")
    };
    let no_docker = code == Some(127)
        || lines
            .iter()
            .any(|l| l.contains("docker: command not found") || l.ends_with("docker: not found"));
    if no_docker {
        SshError::NoDockerCli { dest, stderr: text }
    } else if code == Some(255) {
        SshError::Ssh { dest, stderr: text }
    } else {
        SshError::DialStdio {
            dest,
            status: code.map(|c| format!(" (exit {c})")).unwrap_or_default(),
            stderr: text,
        }
    }
}

impl tower_service::Service<hyper::Uri> for Connector {
    type Response = Session;
    type Error = SshError;
    type Future = Pin<Box<dyn Future<Output = Result<Session, SshError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), SshError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: hyper::Uri) -> Self::Future {
        Box::pin(self.clone().open())
    }
}

impl hyper::rt::Read for Session {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stdout).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Session {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stdin).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stdin).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stdin).poll_shutdown(cx)
    }
}

impl Connection for Session {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

/// The body type of bollard's requests (bollard does not name it).
trait BodyOf {
    type Body;
}
impl<B> BodyOf for hyper::Request<B> {
    type Body = B;
}
type Body = <BollardRequest as BodyOf>::Body;

/// Requests that may last: they get sessions outside the host's bound.
fn lasts(req: &BollardRequest) -> bool {
    let path = req.uri().path();
    let query = req.uri().query().unwrap_or("");
    [
        "/images/create",
        "/stop",
        "/restart",
        "/wait",
        "/attach",
        "/events",
    ]
    .iter()
    .any(|end| path.ends_with(end))
        || (path.ends_with("/logs")
            && (query.contains("follow=true") || query.contains("follow=1")))
}

/// The ssh error behind a client error, if that is what failed.
fn ssh_cause(e: &(dyn std::error::Error + 'static)) -> Option<SshError> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(s) = err.downcast_ref::<SshError>() {
            return Some(s.clone());
        }
        cur = err.source();
    }
    None
}

/// One client per destination in this process, so that the bound holds per host even when a
/// command reaches it from several environments (an audit of two environments sharing a host).
type Clients = std::collections::HashMap<(String, String), Docker>;
static CLIENTS: std::sync::LazyLock<Mutex<Clients>> = std::sync::LazyLock::new(Default::default);

/// The client for `dest`: short requests over at most [`SESSIONS_PER_HOST`] pooled sessions,
/// lasting ones over sessions of their own (pooled too, once they are done).
pub fn docker(
    dest: Destination,
    connect_timeout: Duration,
    request_timeout_secs: u64,
) -> Result<Docker, EngineError> {
    // The same host written two ways (`h`, `H:22`) is one host, as for the manifest's checks.
    let key = format!(
        "{}@{}:{}",
        dest.user.as_deref().unwrap_or(""),
        dest.host.to_ascii_lowercase(),
        dest.port.unwrap_or(22)
    );
    // A client's sessions belong to the runtime that opened them: clients of another (ended)
    // runtime are dropped rather than reused.
    let runtime = tokio::runtime::Handle::try_current()
        .map(|h| h.id().to_string())
        .unwrap_or_default();
    let mut clients = CLIENTS.lock().unwrap();
    clients.retain(|(r, _), _| *r == runtime);
    let key = (runtime, key);
    if let Some(d) = clients.get(&key) {
        return Ok(d.clone());
    }
    let d = new_client(dest, connect_timeout, request_timeout_secs)?;
    clients.insert(key, d.clone());
    Ok(d)
}

fn new_client(
    dest: Destination,
    connect_timeout: Duration,
    request_timeout_secs: u64,
) -> Result<Docker, EngineError> {
    let dest = Arc::new(dest);
    let client = |limit: Option<usize>, idle: usize| -> Arc<Client<Connector, Body>> {
        Arc::new(
            Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(idle)
                .pool_idle_timeout(Duration::from_secs(30))
                .build(Connector {
                    dest: dest.clone(),
                    connect_timeout,
                    limit: limit.map(|n| Arc::new(Semaphore::new(n))),
                }),
        )
    };
    let short = client(Some(SESSIONS_PER_HOST), SESSIONS_PER_HOST);
    let long = client(None, 2);
    crate::engine::transport::custom("http://docker", request_timeout_secs, move |req| {
        let client = if lasts(&req) {
            long.clone()
        } else {
            short.clone()
        };
        Box::pin(async move {
            client.request(req).await.map_err(|e| match ssh_cause(&e) {
                Some(s) => bollard::errors::Error::IOError {
                    err: std::io::Error::other(s),
                },
                None => bollard::errors::Error::from(e),
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(user: Option<&str>, port: Option<u16>) -> Destination {
        Destination {
            user: user.map(String::from),
            host: "prod-1".into(),
            port,
        }
    }

    #[test]
    fn the_port_is_an_option_never_part_of_the_host() {
        let args = ssh_args(&dest(Some("deploy"), Some(2222)), Duration::from_secs(5));
        assert_eq!(
            args,
            [
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=5",
                "-T",
                "-l",
                "deploy",
                "-p",
                "2222",
                "--",
                "prod-1",
                "docker",
                "system",
                "dial-stdio"
            ]
        );
        let args = ssh_args(&dest(None, None), Duration::from_secs(5));
        assert!(!args.contains(&"-p".to_string()) && !args.contains(&"-l".to_string()));
        assert_eq!(args[args.len() - 4], "prod-1");
    }

    #[test]
    fn a_missing_docker_cli_is_named_as_such() {
        let e = classify(
            "deploy@prod-1".into(),
            Some(127),
            "bash: line 1: docker: command not found\n",
        );
        assert!(matches!(e, SshError::NoDockerCli { .. }), "{e}");
        assert!(
            e.to_string().contains("docker CLI must be installed there"),
            "{e}"
        );
        let e = classify(
            "deploy@prod-1".into(),
            Some(255),
            "Warning: Permanently added 'x'\ndeploy@prod-1: Permission denied (publickey).\n",
        );
        assert!(matches!(e, SshError::Ssh { .. }), "{e}");
        assert!(
            e.to_string().contains("Permission denied (publickey)."),
            "{e}"
        );
        assert!(!e.to_string().contains("Permanently added"), "{e}");
        let e = classify("h".into(), Some(1), "Cannot connect to the Docker daemon\n");
        assert!(matches!(e, SshError::DialStdio { .. }), "{e}");
    }

    async fn head_of(script: &str) -> Head {
        let mut child = tokio::process::Command::new("sh")
            .args(["-c", script])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = child.stdout.take().unwrap();
        let head = read_head(&mut out).await.unwrap();
        let _ = child.wait().await;
        head
    }

    #[tokio::test]
    async fn a_session_that_prints_a_banner_is_not_taken_for_the_engine() {
        assert!(matches!(
            head_of("printf 'HTTP/1.1 200 OK\\r\\nApi-Version: 1.41\\r\\n\\r\\n'").await,
            Head::Http
        ));
        assert!(matches!(head_of("exit 255").await, Head::Ended));
        match head_of("printf 'Welcome to prod-1\\n'; sleep 1").await {
            Head::Other(start) => assert!(start.starts_with("Welcome to prod-1"), "{start}"),
            _ => panic!("a banner must be reported"),
        }
    }

    #[test]
    fn a_client_is_not_reused_from_a_runtime_that_ended() {
        // Clients are made without contacting anything; only a request would run ssh.
        let d = || Destination {
            user: Some("deploy".into()),
            host: "runtime-keyed.invalid".into(),
            port: None,
        };
        let ours = |rt: &tokio::runtime::Runtime| {
            let id = rt.handle().id().to_string();
            rt.block_on(async { docker(d(), Duration::from_secs(1), 5).unwrap() });
            let clients = CLIENTS.lock().unwrap();
            let keys: Vec<_> = clients
                .keys()
                .filter(|(_, k)| k.contains("runtime-keyed.invalid"))
                .cloned()
                .collect();
            (id, keys)
        };
        let first = tokio::runtime::Runtime::new().unwrap();
        let (id1, keys) = ours(&first);
        assert_eq!(
            keys,
            [(id1.clone(), "deploy@runtime-keyed.invalid:22".into())]
        );
        // The same host again in the same runtime: the one client, not a second.
        let (_, keys) = ours(&first);
        assert_eq!(keys.len(), 1);
        drop(first);
        let second = tokio::runtime::Runtime::new().unwrap();
        let (id2, keys) = ours(&second);
        assert_ne!(id1, id2);
        assert_eq!(keys, [(id2, "deploy@runtime-keyed.invalid:22".into())]);
    }

    fn req(method: &str, uri: &str) -> BollardRequest {
        hyper::Request::builder()
            .method(method)
            .uri(uri)
            .body(bollard::body_full(bytes::Bytes::new()))
            .unwrap()
    }

    #[test]
    fn pulls_stops_and_followed_logs_last_inspects_do_not() {
        assert!(lasts(&req(
            "POST",
            "http://docker/images/create?fromImage=x"
        )));
        assert!(lasts(&req(
            "POST",
            "http://docker/containers/abc/stop?t=10"
        )));
        assert!(lasts(&req(
            "GET",
            "http://docker/containers/abc/logs?follow=true&stdout=true"
        )));
        assert!(!lasts(&req(
            "GET",
            "http://docker/containers/abc/logs?tail=20"
        )));
        assert!(!lasts(&req("GET", "http://docker/containers/abc/json")));
        assert!(!lasts(&req(
            "GET",
            "http://docker/containers/json?all=true"
        )));
        assert!(!lasts(&req(
            "POST",
            "http://docker/containers/create?name=stop"
        )));
    }
}
