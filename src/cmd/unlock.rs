//! `fleetpin unlock ENV`: remove a lock a killed run left on the hosts.

use crate::cli::{Format, UnlockArgs};
use crate::config::Config;
use crate::engine::docker::DockerEngine;
use crate::error::{Error, Exit, Result};
use crate::host::{fleet, lock};
use serde_json::json;

pub fn run(config: &Config, args: &UnlockArgs) -> Result<Exit> {
    super::table_or_json(config)?;
    let loaded = super::load(config, None)?;
    if super::environment(&loaded, &args.env)?.is_swarm() {
        return swarm(config, args, &loaded);
    }
    let hosts = fleet::hosts(&loaded, &args.env, &args.hosts)?;
    let platform = loaded.manifest.platform.clone();
    let env = args.env.as_str();
    let results = super::runtime().block_on(async {
        let futures = hosts.into_iter().map(|h| {
            let platform = platform.clone();
            async move {
                let r = async {
                    let engine = DockerEngine::connect(&h.target, config.connect_timeout).await?;
                    lock::force_release(&engine, &platform, env).await
                }
                .await;
                (h.name, r)
            }
        });
        futures::future::join_all(futures).await
    });
    let failed = results.iter().any(|(_, r)| r.is_err());
    if config.format == Format::Json {
        let rows: Vec<_> = results
            .iter()
            .map(|(host, r)| match r {
                Ok(owner) => json!({"host": host, "removed": owner.is_some(), "owner": owner}),
                Err(e) => json!({"host": host, "removed": false, "error": e.to_string()}),
            })
            .collect();
        super::print_json(&json!({"environment": env, "ok": !failed, "hosts": rows}));
    } else {
        for (host, r) in &results {
            match r {
                Ok(Some(owner)) => println!("{host}: removed the lock held by {owner}"),
                Ok(None) => println!("{host}: not locked"),
                Err(e) => eprintln!("{host}: {e}"),
            }
        }
    }
    Ok(if failed { Exit::Failure } else { Exit::Success })
}

/// A Swarm environment's lock is one config object on the cluster.
fn swarm(config: &Config, args: &UnlockArgs, loaded: &crate::manifest::Loaded) -> Result<Exit> {
    use crate::engine::swarm::SwarmEngine;
    if !args.hosts.is_empty() {
        return Err(Error::msg(format!(
            "--host does not apply to environment `{}`: its lock is one object on the Swarm cluster",
            args.env
        )));
    }
    let name = lock::name(&loaded.manifest.platform, &args.env);
    let owner = super::runtime().block_on(async {
        let engine = crate::ops::swarm::connect(loaded, &args.env, config.connect_timeout).await?;
        let held = engine
            .lock_get(&name)
            .await
            .map_err(|e| Error::msg(e.to_string()))?;
        if let Some(l) = &held {
            engine
                .lock_remove(&l.id)
                .await
                .map_err(|e| Error::msg(e.to_string()))?;
        }
        Ok::<_, Error>(held.map(|l| {
            l.labels
                .get(crate::plan::labels::LOCK_OWNER)
                .cloned()
                .unwrap_or_default()
        }))
    })?;
    if config.format == Format::Json {
        super::print_json(
            &json!({"environment": args.env, "ok": true, "removed": owner.is_some(), "owner": owner}),
        );
    } else if !config.quiet {
        match &owner {
            Some(o) => println!("removed the lock of {} (held by {o})", args.env),
            None => println!("{} was not locked", args.env),
        }
    }
    Ok(Exit::Success)
}
