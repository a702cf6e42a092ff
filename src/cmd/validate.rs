//! `fleetpin validate`: parse and check the manifest; every problem located, all at once (the
//! edge prints them); a missing env_file is a warning here, an error where its values are needed.

use crate::cli::Format;
use crate::config::Config;
use crate::error::{Exit, Result};
use serde_json::json;

pub fn run(config: &Config) -> Result<Exit> {
    super::table_or_json(config)?;
    let loaded = super::load(config, None)?;
    let m = &loaded.manifest;
    // Secrets are usually not committed: a missing env_file is worth a warning, not a failure,
    // until a command needs its values.
    let dir = loaded.dir();
    let mut warnings = Vec::new();
    for (name, s) in &m.services {
        if let Some(f) = &s.env_file
            && !dir.join(&f.value).is_file()
        {
            warnings.push(format!(
                "{}:{}:{}: env_file `{}` of service `{name}` is not in the working tree; plan and apply will need it",
                loaded.path.display(),
                f.span.line,
                f.span.column,
                f.value
            ));
        }
    }
    for w in crate::manifest::checks::warnings(m) {
        warnings.push(format!(
            "{}:{}:{}: {}",
            loaded.path.display(),
            w.span.line,
            w.span.column,
            w.message
        ));
    }
    if !config.quiet {
        for w in &warnings {
            eprintln!("{} {w}", config.err.yellow("warning:"));
        }
    }
    let file = loaded.path.display().to_string();
    if config.format == Format::Json {
        let envs: Vec<_> = m
            .environments
            .iter()
            .map(|(name, e)| {
                json!({
                    "name": name,
                    "hosts": e.hosts.keys().collect::<Vec<_>>(),
                    "pins": e.versions.iter().map(|(s, p)| (s.clone(), serde_json::Value::String(p.value.to_string()))).collect::<serde_json::Map<String, serde_json::Value>>(),
                })
            })
            .collect();
        let doc = json!({
            "valid": true,
            "file": file,
            "platform": m.platform,
            "services": m.services.keys().collect::<Vec<_>>(),
            "environments": envs,
            "warnings": warnings,
        });
        crate::render::term::json(&doc);
    } else if !config.quiet {
        let path: Vec<String> = m
            .environments
            .iter()
            .map(|(name, e)| {
                format!(
                    "{name} ({} host{}, {} pin{})",
                    e.hosts.len(),
                    if e.hosts.len() == 1 { "" } else { "s" },
                    e.versions.len(),
                    if e.versions.len() == 1 { "" } else { "s" }
                )
            })
            .collect();
        println!(
            "{} {file} is valid: platform {}, {} service{}",
            config.out.green("✓"),
            config.out.bold(&m.platform),
            m.services.len(),
            if m.services.len() == 1 { "" } else { "s" }
        );
        println!("  path: {}", path.join(" -> "));
    }
    Ok(Exit::Success)
}
