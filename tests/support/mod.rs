//! What integration tests know about the private Docker fleet (tests/fleet/fleet.sh).
//!
//! The fleet script writes its addresses to a KEY=VALUE file; tests read it here. When the fleet
//! is not up, a test must not pass silently: under CI it fails with the command that starts the
//! fleet; on a developer machine it skips with a loud note.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

pub const DEFAULT_ENV_FILE: &str = "/run/fleetpin-fleet/fleet.env";

#[derive(Debug, Clone)]
pub struct FleetHost {
    pub name: String,
    pub addr: String,
    pub tcp: String,
    pub unix: String,
    pub netns: String,
}

#[derive(Debug, Clone)]
pub struct Fleet {
    pub registry: String,
    pub image: String,
    pub proxy_image: String,
    pub tags: Vec<String>,
    pub hosts: Vec<FleetHost>,
}

fn env_file() -> PathBuf {
    std::env::var_os("FLEETPIN_FLEET_ENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ENV_FILE))
}

fn parse(text: &str) -> Option<Fleet> {
    let vars: BTreeMap<&str, &str> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    let get = |k: &str| vars.get(k).map(|v| v.to_string());
    let hosts = get("FLEET_HOSTS")?
        .split_whitespace()
        .map(|h| {
            let up = h.to_ascii_uppercase();
            Some(FleetHost {
                name: h.to_string(),
                addr: get(&format!("FLEET_{up}_ADDR"))?,
                tcp: get(&format!("FLEET_{up}_TCP"))?,
                unix: get(&format!("FLEET_{up}_UNIX"))?,
                netns: get(&format!("FLEET_{up}_NETNS")).unwrap_or_default(),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Fleet {
        registry: get("FLEET_REGISTRY")?,
        image: get("FLEET_IMAGE")?,
        proxy_image: get("FLEET_PROXY_IMAGE").unwrap_or_default(),
        tags: get("FLEET_TAGS")?
            .split_whitespace()
            .map(String::from)
            .collect(),
        hosts,
    })
}

/// The fleet, or `None` (after a loud note) when it is not up outside CI. Under CI, panics.
pub fn fleet() -> Option<Fleet> {
    let path = env_file();
    let found = std::fs::read_to_string(&path).ok().and_then(|t| parse(&t));
    match found {
        Some(f) => Some(f),
        None => {
            let msg = format!(
                "the private Docker fleet is not up ({} missing or incomplete).\n\
                 Start it with `sudo tests/fleet/fleet.sh up`, or run the whole suite with \
                 `sudo tests/fleet/fleet.sh run cargo test`.",
                path.display()
            );
            if std::env::var_os("CI").is_some() {
                panic!("{msg}");
            }
            eprintln!("\n!!! SKIPPING fleet test: {msg}\n");
            None
        }
    }
}

/// Skip (outside CI) or fail (under CI) when the fleet is not up.
#[macro_export]
macro_rules! require_fleet {
    () => {
        match support::fleet() {
            Some(f) => f,
            None => return,
        }
    };
}
