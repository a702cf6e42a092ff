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
    let hosts = fleet::hosts(&loaded, &args.env, &args.hosts).map_err(Error::msg)?;
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
