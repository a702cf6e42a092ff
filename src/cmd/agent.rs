//! `fleetpin agent`: the pull agent's command line. Checks what can be checked before the first
//! sync (the endpoint, `--secrets`), then runs `ops::agent` until SIGTERM, printing one line per
//! sync whose outcome changed (every sync with -v; JSON Lines with `--format json`).

use crate::cli::{AgentArgs, Format};
use crate::config::Config;
use crate::error::{Error, Exit, Result};
use crate::manifest::values::Endpoint;
use crate::ops::agent::{self, AgentSettings};
use crate::ops::context::{Actor, Ctx};
use std::path::PathBuf;
use std::sync::Arc;

/// `$XDG_CACHE_HOME/fleetpin/agent/<repo and branch hashed>`, else under `$HOME/.cache`.
fn default_cache(repo: &str, branch: Option<&str>) -> PathBuf {
    use sha2::Digest;
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })
        .unwrap_or_else(|| PathBuf::from("/var/cache"));
    let digest = sha2::Sha256::digest(format!("{repo}\n{}", branch.unwrap_or("")).as_bytes());
    base.join("fleetpin/agent").join(&hex::encode(digest)[..16])
}

pub fn run(config: &Config, args: &AgentArgs) -> Result<Exit> {
    super::table_or_json(config)?;
    let endpoint = Endpoint::parse(&args.endpoint)
        .map_err(|e| Error::msg(format!("--endpoint {}: {e}", args.endpoint)))?;
    if let Some(dir) = &args.secrets {
        agent::check_secrets_dir(dir).map_err(|e| Error::msg(e.to_string()))?;
    }
    let keys = match &args.age_identity {
        Some(file) => {
            agent::check_identity_file(file).map_err(|e| Error::msg(e.to_string()))?;
            let keys = crate::secrets::process_keys().with_file(file.clone());
            keys.get()
                .map_err(|e| Error::msg(format!("--age-identity: {e}")))?;
            Arc::new(keys)
        }
        None => crate::secrets::process_keys(),
    };
    if args.interval.is_zero() {
        return Err(Error::msg("--interval must be more than 0s"));
    }
    let identity = std::env::var("FLEETPIN_USER")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("fleetpin-agent@{}", crate::identity::hostname()));
    let oci = match &args.reference {
        Some(r) => Some(agent::OciSource {
            reference: crate::oci::OciRef::parse(r)
                .map_err(|e| Error::msg(format!("--ref {r}: {e}")))?,
            insecure: args.insecure_registry,
        }),
        None => None,
    };
    let repo = args
        .repo
        .clone()
        .or_else(|| args.reference.clone())
        .unwrap_or_default();
    let settings = AgentSettings {
        repo: repo.clone(),
        oci,
        branch: args.branch.clone(),
        file: config.file.clone(),
        environment: args.env.clone(),
        host: args.host.clone(),
        endpoint,
        secrets: args.secrets.clone(),
        interval: args.interval,
        once: args.once,
        cache: args
            .cache_dir
            .clone()
            .unwrap_or_else(|| default_cache(&repo, args.branch.as_deref())),
        connect_timeout: config.connect_timeout,
        health_timeout: crate::ops::run::RunOptions {
            health_timeout: args.health_timeout.map(std::time::Duration::from_secs),
            ..Default::default()
        }
        .health_timeout(),
        identity: identity.clone(),
        lock_ttl: super::lock_ttl(),
        trust: (args.allowed_signers.is_some() || args.gpg_home.is_some()).then(|| {
            crate::trust::TrustRoot {
                allowed_signers: args.allowed_signers.clone(),
                revocations: args.revocation_file.clone(),
                gpg_home: args.gpg_home.clone(),
                source: "the agent's --allowed-signers / --gpg-home".into(),
                ..Default::default()
            }
        }),
        accept: args.accept.clone(),
    };
    let rt = super::runtime();
    let cancel = crate::interrupt::token();
    let sink = crate::render::agent::SyncLines {
        json: config.format == Format::Json,
        quiet: config.quiet,
        verbose: config.verbose,
        out: config.out,
        err: config.err,
    };
    let mut sink: Arc<dyn crate::ops::context::Sink> = Arc::new(sink);
    if let Some(addr) = &args.metrics_listen {
        use crate::serve::agent_metrics::{AgentMetrics, Tee, serve};
        let metrics = AgentMetrics::new();
        rt.block_on(serve(addr, metrics.clone()))
            .map_err(|e| Error::msg(format!("--metrics-listen {addr}: {e}")))?;
        sink = Arc::new(Tee(sink, metrics));
    }
    let ctx = Ctx::new(
        Actor::new(identity),
        cancel.clone(),
        sink,
        config.connect_timeout,
    )
    .with_vars(Arc::new(|name: &str| std::env::var(name).ok()))
    .with_keys(keys);
    let ok = rt.block_on(async {
        crate::interrupt::install_terminate();
        crate::render::progress::say_when_cancelled(&rt, cancel);
        agent::run(&ctx, &settings).await
    });
    Ok(if ok { Exit::Success } else { Exit::Failure })
}
