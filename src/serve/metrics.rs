//! `/metrics` in the Prometheus text format, built with the official Rust client
//! (`prometheus-client`) from the console's reading of the fleet (`cache`), so a scrape costs
//! the engines nothing a viewer did not already pay. Each caller sees only the environments it
//! may view. Families (docs/console.md):
//!
//! - `fleetpin_service_info{environment,host,service,version,pinned,digest} 1`
//! - `fleetpin_service_drift{environment,host,service}`: 1 when the row is not `ok`
//! - `fleetpin_host_reachable{environment,host}`
//! - `fleetpin_agent_sync_age_seconds{environment,host}` and `fleetpin_agent_ok{environment,host}`
//! - `fleetpin_fleet_read_age_seconds`: how old the reading is
//! - `fleetpin_operations_total{command,outcome}` and `fleetpin_operation_duration_seconds{command}`

use crate::ops::audit::{AgentRow, Row};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::{encode, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceInfo {
    environment: String,
    host: String,
    service: String,
    version: String,
    pinned: String,
    digest: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    environment: String,
    host: String,
    service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HostLabels {
    environment: String,
    host: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabels {
    pub command: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CommandLabels {
    pub command: String,
}

/// The console's own counters: actions by outcome, and how long they took.
pub struct Operations {
    pub total: Family<OpLabels, Counter>,
    pub duration: Family<CommandLabels, Histogram>,
}

impl Default for Operations {
    fn default() -> Self {
        Operations {
            total: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new([1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0])
            }),
        }
    }
}

impl Operations {
    pub fn record(&self, command: &str, outcome: &str, seconds: f64) {
        self.total
            .get_or_create(&OpLabels {
                command: command.into(),
                outcome: outcome.into(),
            })
            .inc();
        self.duration
            .get_or_create(&CommandLabels {
                command: command.into(),
            })
            .observe(seconds);
    }
}

/// The fleet's families, one series per row or host (`fleetpin_service_info`,
/// `fleetpin_service_drift`, `fleetpin_host_reachable`): the bulk of a scrape, the same for
/// every scrape of a reading, so the console writes them once per reading (`cache::Written`).
/// No `# EOF`: `render_live` follows.
pub fn render_fleet<'a>(rows: impl Iterator<Item = &'a Row>) -> String {
    let mut r = Registry::default();
    let info = Family::<ServiceInfo, Gauge>::default();
    let drift = Family::<ServiceLabels, Gauge>::default();
    let reachable = Family::<HostLabels, Gauge>::default();
    for row in rows {
        let unreachable = row.status == crate::ops::audit::Status::Unreachable;
        reachable
            .get_or_create(&HostLabels {
                environment: row.environment.clone(),
                host: row.host.clone(),
            })
            .set(i64::from(!unreachable));
        if unreachable {
            continue;
        }
        info.get_or_create(&ServiceInfo {
            environment: row.environment.clone(),
            host: row.host.clone(),
            service: row.service.clone(),
            version: row.running.clone().unwrap_or_default(),
            pinned: row.pinned.clone().unwrap_or_default(),
            digest: row.digest.clone().unwrap_or_default(),
        })
        .set(1);
        drift
            .get_or_create(&ServiceLabels {
                environment: row.environment.clone(),
                host: row.host.clone(),
                service: row.service.clone(),
            })
            .set(i64::from(row.status != crate::ops::audit::Status::Ok));
    }
    r.register(
        "fleetpin_service_info",
        "One series per (environment, host, service): the version running, the pin, the digest",
        info,
    );
    r.register(
        "fleetpin_service_drift",
        "1 when the service on this host differs from its pin or is not serving",
        drift,
    );
    r.register(
        "fleetpin_host_reachable",
        "1 when fleetpin reached the host's engine at the last reading",
        reachable,
    );
    let mut out = String::new();
    encode_registry(&mut out, &r).expect("writing to a String");
    out
}

/// The families that change between scrapes of one reading — the agents' sync age (counted to
/// now), the reading's age, the console's counters — then `# EOF`.
pub fn render_live<'a>(
    agents: impl Iterator<Item = &'a AgentRow>,
    age_seconds: f64,
    ops: &Operations,
) -> String {
    let mut r = Registry::default();
    let sync_age = Family::<HostLabels, Gauge<f64, AtomicU64>>::default();
    let agent_ok = Family::<HostLabels, Gauge>::default();
    let age = Gauge::<f64, AtomicU64>::default();
    age.set(age_seconds);
    let now = std::time::SystemTime::now();
    for ag in agents {
        let l = HostLabels {
            environment: ag.environment.clone(),
            host: ag.host.clone(),
        };
        agent_ok.get_or_create(&l).set(i64::from(ag.state == "ok"));
        if let Some(t) = ag
            .synced_at
            .as_deref()
            .and_then(crate::clock::parse_rfc3339)
            && let Ok(d) = now.duration_since(t)
        {
            sync_age.get_or_create(&l).set(d.as_secs_f64());
        }
    }
    r.register(
        "fleetpin_agent_sync_age_seconds",
        "Seconds since the host's pull agent last synced",
        sync_age,
    );
    r.register(
        "fleetpin_agent_ok",
        "1 when the host's pull agent is in sync with the reference",
        agent_ok,
    );
    r.register(
        "fleetpin_fleet_read_age_seconds",
        "How old the console's reading of the fleet is",
        age,
    );
    r.register(
        "fleetpin_operations",
        "Actions run through the console, by command and outcome",
        ops.total.clone(),
    );
    r.register(
        "fleetpin_operation_duration_seconds",
        "How long the console's actions took",
        ops.duration.clone(),
    );
    let mut out = String::new();
    encode(&mut out, &r).expect("writing to a String");
    out
}
