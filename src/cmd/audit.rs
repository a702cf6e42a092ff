//! `fleetpin audit [ENV]`: what runs where across the fleet against the pins, as a table, JSON,
//! Markdown or a self-contained HTML page.

use crate::cli::{AuditArgs, Format};
use crate::config::Config;
use crate::error::{Error, Exit, Result};
use crate::ops::audit::collect;

pub fn run(config: &Config, args: &AuditArgs) -> Result<Exit> {
    let loaded = super::load(config, None)?;
    let envs: Vec<String> = match &args.env {
        Some(e) if !loaded.manifest.environments.contains_key(e) => {
            return Err(Error::msg(format!(
                "there is no environment `{e}` (environments: {})",
                loaded
                    .manifest
                    .environments
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Some(e) => vec![e.clone()],
        None => loaded.manifest.environments.keys().cloned().collect(),
    };
    // Plain-host environments go through the host matrix; Swarm environments are audited
    // through their manager (services, tasks per node) and shown after it.
    let (swarm_envs, envs): (Vec<String>, Vec<String>) = envs
        .into_iter()
        .partition(|e| loaded.manifest.environments[e].is_swarm());
    let rt = super::runtime();
    // Markdown and HTML always have the report's header and matrix, even for Swarm alone.
    let page = matches!(config.format, Format::Markdown | Format::Html);
    let audit = if envs.is_empty() && !swarm_envs.is_empty() && !page {
        None
    } else {
        Some(rt.block_on(collect(&loaded, &envs, config.connect_timeout))?)
    };
    let mut swarms = Vec::new();
    for env in &swarm_envs {
        let rows = rt.block_on(async {
            let engine = crate::ops::swarm::connect(&loaded, env, config.connect_timeout).await?;
            crate::ops::swarm::audit(&loaded, env, &Default::default(), &engine).await
        });
        swarms.push((env.clone(), rows));
    }
    let swarm_pages: Vec<crate::render::audit::SwarmAudit> = swarms
        .iter()
        .map(|(env, rows)| {
            (
                env.clone(),
                match rows {
                    Ok(rows) => Ok(rows.clone()),
                    Err(e) => Err(e.to_string()),
                },
            )
        })
        .collect();
    let style = if args.out.is_some() {
        crate::render::Style { color: false }
    } else {
        config.out
    };
    let mut text = match (&audit, config.format) {
        (None, _) => String::new(),
        (Some(a), Format::Table) => crate::render::audit::table(a, style),
        (Some(a), Format::Json) if swarms.is_empty() => {
            serde_json::to_string_pretty(a).expect("serialises") + "\n"
        }
        (Some(_), Format::Json) => String::new(),
        (Some(a), Format::Markdown) => {
            crate::render::audit::markdown(a) + &crate::render::audit::swarm_markdown(&swarm_pages)
        }
        (Some(a), Format::Html) => {
            crate::render::audit::html_with(a, &crate::render::audit::swarm_html(&swarm_pages))
        }
    };
    let mut swarm_unreachable = false;
    let mut swarm_drift = false;
    let mut swarm_json = serde_json::Map::new();
    for (env, rows) in &swarms {
        match rows {
            Ok(rows) => {
                swarm_drift |= rows.iter().any(|r| r.status != "ok");
                if config.format == Format::Table {
                    text.push_str(&crate::render::audit::swarm_table(env, rows, style));
                }
                swarm_json.insert(env.clone(), serde_json::json!({"services": rows}));
            }
            Err(e) => {
                swarm_unreachable = true;
                if config.format == Format::Table {
                    text.push_str(&format!("\nswarm {env}: unreachable: {e}\n"));
                }
                swarm_json.insert(env.clone(), serde_json::json!({"error": e.to_string()}));
            }
        }
    }
    if config.format == Format::Json && !swarms.is_empty() {
        let mut doc = audit
            .as_ref()
            .map(|a| serde_json::to_value(a).expect("serialises"))
            .unwrap_or_else(|| serde_json::json!({}));
        if let Some(o) = doc.as_object_mut() {
            o.insert("swarm".into(), serde_json::Value::Object(swarm_json));
        }
        text = serde_json::to_string_pretty(&doc).expect("serialises") + "\n";
    }
    match &args.out {
        Some(path) => {
            std::fs::write(path, &text)
                .map_err(|e| Error::msg(format!("cannot write {}: {e}", path.display())))?;
            if !config.quiet {
                eprintln!("audit written to {}", path.display());
            }
        }
        None => print!("{text}"),
    }
    let unreachable = swarm_unreachable || audit.as_ref().is_some_and(|a| a.unreachable());
    let drift = swarm_drift || audit.as_ref().is_some_and(|a| a.drift());
    Ok(if unreachable {
        Exit::Failure
    } else if args.exit_code && drift {
        Exit::Pending
    } else {
        Exit::Success
    })
}
