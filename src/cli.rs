//! The command line, defined once: `--help`, shell completions and the man page all come from
//! these clap derive types, and the `///` comments are the help text.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

const EXAMPLES: &str = "\
Examples:
  fleetpin validate                         check ./platform.yaml
  fleetpin plan prod                        what would change on every prod host
  fleetpin apply recette --yes              converge recette, no questions
  fleetpin rollback prod -s billing         put the previous billing back
  fleetpin promote recette preprod          pin preprod to the digests recette runs
  fleetpin audit --format html -o fleet.html
  fleetpin logs prod -s billing --since 10m -f
  fleetpin import docker-compose.yml --env prod --host web-1=ssh://deploy@web-1 -o platform.yaml
  fleetpin -f manifests/platform.yaml schema > platform.schema.json";

/// Keep a fleet of plain Docker hosts at the image versions pinned in one manifest.
///
/// fleetpin reads a versioned manifest (platform.yaml) that pins the image version of every service
/// in every environment (recette -> preprod -> prod), diffs it against what each host runs, applies
/// upgrades host by host with health gates, rolls back by restarting the previous container,
/// promotes tested releases by digest, and audits the fleet.
#[derive(Debug, Parser)]
#[command(name = "fleetpin", version, after_help = EXAMPLES, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// The manifest to read.
    #[arg(
        short = 'f',
        long = "file",
        env = "FLEETPIN_FILE",
        default_value = "platform.yaml",
        global = true,
        value_name = "PATH"
    )]
    pub file: PathBuf,
    /// Output format of reports; with json, stdout holds exactly one JSON document.
    #[arg(long, value_enum, default_value_t = Format::Table, global = true)]
    pub format: Format,
    /// No colours (also when NO_COLOR is set or the output is not a terminal).
    #[arg(long, global = true)]
    pub no_color: bool,
    /// More detail; repeat for debug logs (-vv).
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Only errors and the report.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Seconds to wait for a host's engine to answer before calling it unreachable.
    #[arg(long, default_value_t = 5, global = true, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=600))]
    pub connect_timeout: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    /// audit only
    Markdown,
    /// audit only
    Html,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse and check the manifest; exit 0 if valid, 1 with every problem located.
    #[command(after_help = VALIDATE_EXAMPLES)]
    Validate,
    /// Show what would change on every selected host, without changing anything.
    #[command(after_help = PLAN_EXAMPLES)]
    Plan(PlanArgs),
    /// Converge the selected hosts to the manifest, host by host, with health gates.
    #[command(after_help = APPLY_EXAMPLES)]
    Apply(ApplyArgs),
    /// Go one release back: start the previous container of each service again, pin what runs.
    #[command(after_help = ROLLBACK_EXAMPLES)]
    Rollback(RollbackArgs),
    /// Copy FROM's pins to TO as the digests FROM actually runs, and commit.
    #[command(after_help = PROMOTE_EXAMPLES)]
    Promote(PromoteArgs),
    /// What runs where across the fleet, against the pins.
    #[command(after_help = AUDIT_EXAMPLES)]
    Audit(AuditArgs),
    /// The containers' logs from every selected host at once, each line prefixed by host and
    /// service.
    #[command(after_help = LOGS_HELP)]
    Logs(LogsArgs),
    /// Who changed which pin when, from the manifest's git history.
    #[command(after_help = HISTORY_EXAMPLES)]
    History(HistoryArgs),
    /// Remove a lock left on a host by a killed run.
    Unlock(UnlockArgs),
    /// Push the reference at a commit to the registry, for agents that follow it there.
    ///
    /// The manifest's `reference: {repository: REGISTRY/PATH}` names where. The artifact holds
    /// the commit object with its signature, the trees and blobs on the paths to the manifest and
    /// its SOPS files (still encrypted) and first-parent commits back to --history; it is tagged
    /// with the commit id, the branch HEAD is on (`feature/x` -> `feature-x`) and each --tag.
    /// Credentials as for pulls: the docker config and its credential helpers.
    #[command(after_help = PUBLISH_EXAMPLES)]
    Publish(PublishArgs),
    /// Run on a server: follow the manifest in git and converge this one host to it.
    ///
    /// Every --interval (plus a random splay) the agent fetches the branch with the git CLI (your
    /// ssh config, agent, known_hosts and credential helpers apply), reads the manifest (--file,
    /// a path inside the repository) at that commit, and converges HOST of ENV through the same
    /// lock, repair, swap, gate and retention as `apply`. A release that failed its gate here is
    /// not tried again until its pin, spec or SOPS files change. SOPS files come with the commit
    /// (opened with --age-identity); plain env_files are read from --secrets, never from git. No hooks, no
    /// commit, no push, no prune. SIGTERM: an idle agent exits at once; mid
    /// swap it finishes the swap and exits 0. Each sync is recorded on the host for `audit`.
    #[command(after_help = AGENT_EXAMPLES)]
    Agent(AgentArgs),
    /// The fleet over HTTP: an API, metrics, sign-in and rights per environment
    ///
    /// For those who won't use a CLI: a JSON API under `/api/v1/` (described at
    /// `/api/v1/openapi.json`), Prometheus metrics, sign-in by OpenID Connect or API tokens, and
    /// rights per environment (docs/console.md). `serve token …` manages the API tokens.
    Serve(ServeArgs),
    /// Write a manifest from the docker compose files a team already has.
    ///
    /// Carries services, image tags (as the pins of --env), ports, volumes, environment,
    /// env_file, command, entrypoint, healthcheck, depends_on, restart, networks, labels,
    /// logging, user, stop_grace_period, mem_limit and cpus. What a manifest cannot say (build,
    /// deploy, extends, profiles, secrets, network_mode…), an untagged or `latest` image, and a
    /// ${VAR} with no value in the .env beside the compose file are errors located in the
    /// compose file. Named volumes get fleetpin's names, so their data does not follow by itself:
    /// see docs/import.md.
    #[command(after_help = IMPORT_EXAMPLES)]
    Import(ImportArgs),
    /// Print the JSON Schema (draft-07) of the manifest.
    #[command(after_help = SCHEMA_HELP)]
    Schema,
    /// Print shell completions.
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    #[command(hide = true)]
    Man,
}

// The subcommands' texts after --help, written as they print.

const VALIDATE_EXAMPLES: &str = "\
Examples:
  fleetpin validate
  fleetpin -f manifests/platform.yaml validate --format json";

const PLAN_EXAMPLES: &str = "\
Examples:
  fleetpin plan prod
  fleetpin plan prod -s billing --host prod-1
  fleetpin plan prod --detailed-exitcode -o prod.plan.json";

const APPLY_EXAMPLES: &str = "\
Examples:
  fleetpin apply recette
  fleetpin apply prod --yes --max-parallel 1
  fleetpin apply prod --plan prod.plan.json --yes
  fleetpin apply prod --yes --lock-wait 10m      (CI: queue behind a running deploy)";

const ROLLBACK_EXAMPLES: &str = "\
Examples:
  fleetpin rollback prod -s billing
  fleetpin rollback prod -s billing --to 2.3.9 --yes
  fleetpin rollback prod --host prod-2 --yes     (that host only; the pin is left alone)
  fleetpin rollback prod --yes --push            (and push the pin commit to the branch's upstream)";

const PROMOTE_EXAMPLES: &str = "\
Examples:
  fleetpin promote recette preprod
  fleetpin promote preprod prod -s billing --dry-run
  fleetpin promote recette preprod --push        (commit and push to the branch's upstream)";

const AUDIT_EXAMPLES: &str = "\
Examples:
  fleetpin audit
  fleetpin audit prod --exit-code
  fleetpin audit --format html -o fleet.html";

const LOGS_HELP: &str = "\
Without --tail or --since, the last 100 lines of each container. Lines of several \
containers are shown in the order they were written; with -f, as they arrive, until Ctrl-C (exit 0). \
The manifest is --file here (-f is --follow). With --format json, one JSON object per line (JSON \
Lines: host, service, container, stream, time, line).

Examples:
  fleetpin logs prod                              the last 100 lines of every service on every host
  fleetpin logs prod -s billing --since 10m -f    billing, from 10 minutes ago, then follow
  fleetpin logs prod --host prod-2 --tail 20
  fleetpin logs prod --since 2026-03-01T12:00:00Z --tail all --format json | jq -r .line";

const HISTORY_EXAMPLES: &str = "\
Examples:
  fleetpin history prod -s billing -n 20";

const PUBLISH_EXAMPLES: &str = "\
Examples:
  fleetpin publish                         (HEAD, tagged with its id and its branch)
  fleetpin publish --rev v2.3 --tag v2.3   (a tagged release, not the branch's tag)";

const SCHEMA_HELP: &str = "\
Use it in an editor with a first line in platform.yaml:
  # yaml-language-server: $schema=./platform.schema.json";

const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  fleetpin completions bash > /etc/bash_completion.d/fleetpin
  fleetpin completions zsh > ~/.zfunc/_fleetpin";

const AGENT_EXAMPLES: &str = "\
Examples:
  fleetpin agent --repo ssh://git@git.example.com/ops/platform.git --env prod --host web-1 \\
      --secrets /etc/fleetpin/secrets
  fleetpin agent --repo https://git.example.com/ops/platform.git --branch main --env prod \\
      --host web-1 --interval 1m --file deploy/platform.yaml
  fleetpin agent --repo git://10.0.0.5/platform.git --env recette --host rec-1 --once

See docs/agent.md for a systemd unit and the container image.";

const IMPORT_EXAMPLES: &str = "\
Examples:
  fleetpin import docker-compose.yml --env prod --host web-1=ssh://deploy@web-1 -o platform.yaml
  fleetpin import front.yml@web-1,web-2 db.yml@db-1 --env prod \\
      --host web-1=ssh://deploy@web-1 --host web-2=ssh://deploy@web-2 \\
      --host db-1=ssh://deploy@db-1 -o platform.yaml
  fleetpin import compose.yml --env recette --host rec-1=tcp://10.0.0.11:2376 --tls-dir certs \\
      --project-dir /srv/shop --platform shop

A file without @HOST runs on every host; FILE@HOST[,HOST…] runs on those hosts only.";

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The compose files; `FILE@HOST[,HOST…]` runs that file's services on those hosts only
    /// (default: every host).
    #[arg(required = true, value_name = "COMPOSE_FILE[@HOST,…]")]
    pub files: Vec<String>,
    /// The environment the image tags become the pins of.
    #[arg(long = "env", value_name = "ENV")]
    pub env: String,
    /// A host of the environment (repeatable).
    #[arg(long = "host", value_name = "NAME=ENDPOINT", required = true)]
    pub hosts: Vec<String>,
    /// The platform name (default: compose's project name, from `name:` or the directory).
    #[arg(long, value_name = "NAME")]
    pub platform: Option<String>,
    /// Write the manifest to this file instead of stdout.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Overwrite the file named by -o if it exists.
    #[arg(long, requires = "out")]
    pub force: bool,
    /// The directory of the compose project on the hosts: relative bind mounts (./data) are
    /// carried as DIR/data.
    #[arg(long, value_name = "DIR")]
    pub project_dir: Option<String>,
    /// tcp:// hosts use the client certificates DIR/ca.pem, DIR/cert.pem, DIR/key.pem (relative
    /// to the manifest).
    #[arg(long, value_name = "DIR", conflicts_with = "insecure")]
    pub tls_dir: Option<String>,
    /// tcp:// hosts are reached without TLS (whoever reaches the port is root on the host).
    #[arg(long)]
    pub insecure: bool,
}

#[derive(Debug, Args)]
pub struct Selection {
    /// Only this service (repeatable).
    #[arg(short = 's', long = "service", value_name = "SERVICE")]
    pub services: Vec<String>,
    /// Only this host (repeatable).
    #[arg(long = "host", value_name = "HOST")]
    pub hosts: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The environment to plan.
    pub env: String,
    #[command(flatten)]
    pub select: Selection,
    /// Use the manifest as it is at this git revision (commit, tag or branch).
    #[arg(long, value_name = "REV")]
    pub rev: Option<String>,
    /// Exit 2 when changes are pending, 0 when there is nothing to do, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Save the plan, with a fingerprint of each host's state, for `apply --plan`.
    #[arg(short = 'o', long = "out", value_name = "PLAN.json")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The environment to converge.
    pub env: String,
    #[command(flatten)]
    pub select: Selection,
    /// Deploy the manifest as it is at this git revision (commit, tag or branch).
    #[arg(long, value_name = "REV")]
    pub rev: Option<String>,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Apply exactly this saved plan; hosts whose state changed since are refused.
    #[arg(long, value_name = "PLAN.json")]
    pub plan: Option<PathBuf>,
    /// Hosts changed at once (default: the environment's max_parallel, else all).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_parallel: Option<u32>,
    /// Also remove fleetpin containers no longer in the manifest (never volumes).
    #[arg(long)]
    pub prune: bool,
    /// Seconds to wait for a new container to pass its gate (default 120).
    #[arg(long, value_name = "SECONDS")]
    pub health_timeout: Option<u64>,
    /// Wait up to this long for a host's lock held by another run (e.g. `10m`), instead of
    /// failing at once.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub lock_wait: Option<std::time::Duration>,
    /// Deploy although a deploy window holds changes; REASON is recorded in the event and the
    /// notification (an emergency door that leaves a trace).
    #[arg(long, value_name = "REASON")]
    pub override_window: Option<String>,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    crate::manifest::values::parse_duration(s)
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The environment to roll back.
    pub env: String,
    #[command(flatten)]
    pub select: Selection,
    /// Roll back to this kept version (any, even one rolled back from) instead of one step back.
    #[arg(long, value_name = "VERSION")]
    pub to: Option<String>,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Do not rewrite and commit the pins afterwards.
    #[arg(long)]
    pub no_commit: bool,
    /// Push the pin commit to the current branch's upstream (as `git: {push: true}` in the
    /// manifest does); never forced: a rejected push keeps the commit and exits 1.
    #[arg(long, conflicts_with_all = ["no_commit", "no_push"])]
    pub push: bool,
    /// Do not push the pin commit, even with `git: {push: true}` in the manifest.
    #[arg(long)]
    pub no_push: bool,
    /// Seconds to wait for a restarted container to pass its gate (default 120).
    #[arg(long, value_name = "SECONDS")]
    pub health_timeout: Option<u64>,
    /// Wait up to this long for a host's lock held by another run (e.g. `10m`).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub lock_wait: Option<std::time::Duration>,
    /// `--to` a newer version although a deploy window holds changes; REASON is recorded in
    /// the event, the notification and the commit. (Going back is never held.)
    #[arg(long, value_name = "REASON")]
    pub override_window: Option<String>,
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The environment whose running digests are promoted.
    pub from: String,
    /// The next environment in the path.
    pub to: String,
    /// Only this service (repeatable).
    #[arg(short = 's', long = "service", value_name = "SERVICE")]
    pub services: Vec<String>,
    /// Print the pin changes and gate results; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Allow a pin to go down in semver order.
    #[arg(long)]
    pub allow_downgrade: bool,
    /// Skip the path and convergence gates (the hotfix path).
    #[arg(long)]
    pub force: bool,
    /// Edit the file, do not commit.
    #[arg(long)]
    pub no_commit: bool,
    /// Push the pin commit to the current branch's upstream (as `git: {push: true}` in the
    /// manifest does); never forced: a rejected push keeps the commit and exits 1.
    #[arg(long, conflicts_with_all = ["no_commit", "no_push"])]
    pub push: bool,
    /// Do not push the pin commit, even with `git: {push: true}` in the manifest.
    #[arg(long)]
    pub no_push: bool,
    /// Promote although a deploy window of TO holds changes; REASON is recorded in the event,
    /// the notification and the commit.
    #[arg(long, value_name = "REASON")]
    pub override_window: Option<String>,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only this environment (default: all).
    pub env: Option<String>,
    /// Exit 2 when drift is found.
    #[arg(long)]
    pub exit_code: bool,
    /// Write the report to this file instead of stdout.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The environment whose containers to read.
    pub env: String,
    #[command(flatten)]
    pub select: Selection,
    /// Only lines since this long ago (10m, 2h; by each host's clock) or this time (RFC 3339).
    #[arg(long, value_name = "DURATION|TIME", value_parser = parse_since)]
    pub since: Option<crate::ops::logs::Since>,
    /// The last N lines of each container (`all`: every line; default 100 unless --since).
    #[arg(long, value_name = "N", value_parser = crate::ops::logs::parse_tail)]
    pub tail: Option<crate::ops::logs::Tail>,
    /// Keep following new lines until Ctrl-C (exit 0).
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// The manifest to read (here `--file` only: `-f` is `--follow`).
    #[arg(long = "file", env = "FLEETPIN_FILE", value_name = "PATH")]
    pub file: Option<PathBuf>,
}

fn parse_since(s: &str) -> Result<crate::ops::logs::Since, String> {
    crate::ops::logs::Since::parse(s).map_err(|e| e.to_string())
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only this environment.
    pub env: Option<String>,
    /// Only this service.
    #[arg(short = 's', long = "service", value_name = "SERVICE")]
    pub service: Option<String>,
    /// At most this many rows.
    #[arg(short = 'n', value_name = "N")]
    pub limit: Option<usize>,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The commit to publish (default HEAD; only HEAD tags its branch).
    #[arg(long, value_name = "REV")]
    pub rev: Option<String>,
    /// Another tag for it (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// First-parent commits carried before it, for the agents' ancestry check.
    #[arg(long, value_name = "N", default_value_t = crate::oci::DEFAULT_HISTORY)]
    pub history: usize,
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The git repository holding the manifest (ssh://, https://, git://, file:// or a path).
    #[arg(long, value_name = "URL", required_unless_present = "reference")]
    pub repo: Option<String>,
    /// The branch to follow (default: the remote's HEAD).
    #[arg(long, value_name = "BRANCH", conflicts_with = "reference")]
    pub branch: Option<String>,
    /// Follow the reference published to a registry instead of git (`fleetpin publish`):
    /// oci://REGISTRY/PATH:TAG, e.g. oci://registry.acme.internal:5000/acme/platform:main.
    #[arg(
        long = "ref",
        id = "reference",
        value_name = "OCI",
        conflicts_with = "repo"
    )]
    pub reference: Option<String>,
    /// The registry of --ref speaks plain HTTP.
    #[arg(long, requires = "reference")]
    pub insecure_registry: bool,
    /// The environment this host belongs to.
    #[arg(long, value_name = "ENV")]
    pub env: String,
    /// This host's name in the manifest.
    #[arg(long, value_name = "HOST")]
    pub host: String,
    /// Time between syncs (a random splay of up to a fifth is added).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub interval: std::time::Duration,
    /// This host's Docker engine (replaces the manifest's endpoint for the host).
    #[arg(
        long,
        value_name = "URL",
        default_value = "unix:///var/run/docker.sock"
    )]
    pub endpoint: String,
    /// The directory plain env_files are read from (not readable by other users).
    #[arg(long, value_name = "DIR")]
    pub secrets: Option<PathBuf>,
    /// An age identity file (`age-keygen`'s output, not readable by other users) that opens
    /// this environment's SOPS files; SOPS_AGE_KEY_FILE and SOPS_AGE_KEY are read as well.
    #[arg(long, value_name = "FILE")]
    pub age_identity: Option<PathBuf>,
    /// SSH allowed signers (`principal key` lines): every commit followed must be signed by one
    /// of them (and by the environment's `trust.signers`, if any).
    #[arg(long, value_name = "FILE")]
    pub allowed_signers: Option<PathBuf>,
    /// SSH keys revoked (git's `gpg.ssh.revocationFile`: a public key per line, or an OpenSSH
    /// KRL): a commit signed by one of them is refused.
    #[arg(long, value_name = "FILE", requires = "allowed_signers")]
    pub revocation_file: Option<PathBuf>,
    /// A dedicated GnuPG home whose keys may sign the commits followed (never a personal one).
    #[arg(long, value_name = "DIR")]
    pub gpg_home: Option<PathBuf>,
    /// Accept this commit even though it does not descend from the one the host runs (a
    /// deliberate rewind of the followed branch).
    #[arg(long, value_name = "COMMIT")]
    pub accept: Option<String>,
    /// Serve the agent's own metrics (Prometheus text format) at http://ADDR/metrics.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// Sync once and exit: 0 when the host is in sync, 1 otherwise.
    #[arg(long)]
    pub once: bool,
    /// Where the fetched repository is kept (default: $XDG_CACHE_HOME/fleetpin/agent/…).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Seconds to wait for a new container to pass its gate (default 120).
    #[arg(long, value_name = "SECONDS")]
    pub health_timeout: Option<u64>,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ServeArgs {
    #[command(subcommand)]
    pub command: Option<ServeCommand>,
    /// Where to listen.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8420")]
    pub listen: String,
    /// The reference to follow (a clone is kept fetched); default: the manifest's repository.
    #[arg(long, value_name = "URL")]
    pub repo: Option<String>,
    /// The console's configuration: identities, roles, OpenID settings (docs/console.md).
    #[arg(long, value_name = "FILE", default_value = "serve.yaml")]
    pub config: PathBuf,
    /// TLS certificate (PEM); with --tls-key, serve HTTPS.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ServeCommand {
    /// API tokens for scripts: stored hashed, shown once, accepted only in the Authorization
    /// header.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
        /// The console's configuration (where the token store is).
        #[arg(long, value_name = "FILE", default_value = "serve.yaml", global = true)]
        config: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; its secret is printed once.
    Create {
        #[arg(long)]
        name: String,
        /// `view`, `deploy` or `admin` (deploy and override deploy windows).
        #[arg(long)]
        role: String,
        /// Only these environments (repeatable; default: all).
        #[arg(long = "env", value_name = "ENV")]
        envs: Vec<String>,
        /// How long it is valid, e.g. `90d` (default: until revoked).
        #[arg(long, value_name = "DURATION", value_parser = parse_expiry)]
        expires: Option<std::time::Duration>,
    },
    /// The tokens: name, role, environments, created, expires (never a secret).
    List,
    /// Revoke a token by name.
    Revoke { name: String },
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// The environment whose hosts to unlock.
    pub env: String,
    /// Only this host (repeatable).
    #[arg(long = "host", value_name = "HOST")]
    pub hosts: Vec<String>,
}

/// `--expires`: how long a token lives, `90d`, `12h`, `1y` (more than a second; a bare number
/// has no unit and is refused).
pub fn parse_expiry(s: &str) -> std::result::Result<std::time::Duration, String> {
    let t = s.trim();
    let msg = || format!("`{s}` is not a duration; expected a number with a unit, e.g. 90d, 12h");
    if t.is_empty() || t.chars().all(|c| c.is_ascii_digit()) {
        return Err(msg());
    }
    match humantime::parse_duration(t) {
        Ok(d) if d.as_secs() == 0 => Err(format!("`{s}`: a token must live longer than that")),
        Ok(d) => Ok(d),
        Err(_) => Err(msg()),
    }
}
