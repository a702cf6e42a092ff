//! `fleetpin agent --metrics-listen ADDR`: the agent's own numbers in the Prometheus text format
//! — when it last synced, with what result, how long a sync took, how many releases it holds
//! back — read from its sync events (a sink beside the one that prints them), served on
//! `/metrics`. No secret, no reason text: results are a closed set of words.

use crate::ops::context::{OpEvent, Progress, Sink};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

/// What the agent's syncs said.
pub struct AgentMetrics {
    registry: Mutex<Registry>,
    last_sync: Gauge<f64, AtomicU64>,
    duration: Gauge<f64, AtomicU64>,
    refused: Gauge,
    ok: Gauge,
    syncs: Family<ResultLabels, Counter>,
}

impl AgentMetrics {
    pub fn new() -> Arc<AgentMetrics> {
        let m = AgentMetrics {
            registry: Mutex::new(Registry::default()),
            last_sync: Gauge::default(),
            duration: Gauge::default(),
            refused: Gauge::default(),
            ok: Gauge::default(),
            syncs: Family::default(),
        };
        {
            let mut r = m.registry.lock().unwrap_or_else(|e| e.into_inner());
            r.register(
                "fleetpin_agent_last_sync_timestamp_seconds",
                "When the agent last synced (unix seconds)",
                m.last_sync.clone(),
            );
            r.register(
                "fleetpin_agent_sync_duration_seconds",
                "How long the last sync took",
                m.duration.clone(),
            );
            r.register(
                "fleetpin_agent_refused_releases",
                "Releases held back after failing their gate on this host",
                m.refused.clone(),
            );
            r.register(
                "fleetpin_agent_in_sync",
                "1 when the last sync left the host on the reference",
                m.ok.clone(),
            );
            r.register(
                "fleetpin_agent_syncs",
                "Syncs by result (in-sync, converged, refused, held, failed, locked, error)",
                m.syncs.clone(),
            );
        }
        Arc::new(m)
    }

    /// The scrape's text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(
            &mut out,
            &self.registry.lock().unwrap_or_else(|e| e.into_inner()),
        )
        .expect("writing to a String");
        out
    }
}

impl Sink for AgentMetrics {
    fn emit(&self, event: &OpEvent) {
        let Progress::Sync(o) = &event.progress else {
            return;
        };
        // The sync's own duration, measured around it: not the time since the sync before
        // (which is the interval, and says nothing of a slow sync).
        self.duration.set(o.took.as_secs_f64());
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        self.last_sync.set(now);
        self.refused.set(o.sync.refused.len() as i64);
        self.ok.set(i64::from(o.ok()));
        self.syncs
            .get_or_create(&ResultLabels {
                result: o.sync.result.clone(),
            })
            .inc();
    }
}

/// Both sinks: what prints the syncs, and the metrics.
pub struct Tee(pub Arc<dyn Sink>, pub Arc<dyn Sink>);

impl Sink for Tee {
    fn emit(&self, event: &OpEvent) {
        self.0.emit(event);
        self.1.emit(event);
    }
}

/// Serves `/metrics` on `addr` until the process ends.
pub async fn serve(addr: &str, metrics: Arc<AgentMetrics>) -> std::io::Result<()> {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let m = metrics.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    m.render(),
                )
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(())
}
