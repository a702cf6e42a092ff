//! The fleet as the console shows it: audit's windowed, pooled read of every host, done at most
//! once per `MAX_AGE` whatever the number of viewers (one refresh at a time; the others wait for
//! it and share it), again at once after an action. Each viewer gets the part its rights allow,
//! with the reading's age.

use crate::ops::audit::{Audit, AuditOutcome};
use crate::ops::swarm::SwarmAuditRow;
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// How old a reading may be before a request reads the fleet again.
pub const MAX_AGE: Duration = Duration::from_secs(15);

/// One reading of the fleet.
pub struct Reading {
    pub at: Instant,
    pub taken_at: SystemTime,
    pub commit: String,
    pub hosts: Option<Audit>,
    pub swarms: Vec<(String, Result<Vec<SwarmAuditRow>, String>)>,
}

/// The readings, and the one refresh under way.
#[derive(Default)]
pub struct FleetCache {
    last: Mutex<Option<Arc<Reading>>>,
    refresh: tokio::sync::Mutex<()>,
}

/// What a viewer gets: the environments it may see, and how old the reading is.
#[derive(Debug, Clone, Serialize)]
pub struct View {
    /// Seconds since the fleet was read.
    pub age_seconds: f64,
    pub read_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Audit>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub swarms: Vec<SwarmView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SwarmView {
    pub environment: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub services: Option<Vec<SwarmAuditRow>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl FleetCache {
    /// The last reading if it is fresh for `commit`, else a new one from `read`.
    pub async fn get<F, Fut>(
        &self,
        commit: &str,
        read: F,
    ) -> Result<Arc<Reading>, super::error::ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<AuditOutcome, super::error::ApiError>>,
    {
        let fresh = |r: &Option<Arc<Reading>>| {
            r.as_ref()
                .filter(|r| r.commit == commit && r.at.elapsed() < MAX_AGE)
                .cloned()
        };
        if let Some(r) = fresh(&self.last.lock().unwrap_or_else(|e| e.into_inner())) {
            return Ok(r);
        }
        let _one = self.refresh.lock().await;
        // Another request may have read the fleet while this one waited.
        if let Some(r) = fresh(&self.last.lock().unwrap_or_else(|e| e.into_inner())) {
            return Ok(r);
        }
        let outcome = read().await?;
        let reading = Arc::new(Reading {
            at: Instant::now(),
            taken_at: SystemTime::now(),
            commit: commit.to_string(),
            hosts: outcome.hosts,
            swarms: outcome
                .swarms
                .into_iter()
                .map(|(e, r)| (e, r.map_err(|x| x.to_string())))
                .collect(),
        });
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(reading.clone());
        Ok(reading)
    }

    /// After an action: the next request reads the fleet again.
    pub fn invalidate(&self) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

impl Reading {
    /// The part of this reading environments `envs` make.
    pub fn view(&self, envs: &[String]) -> View {
        let seen = |e: &String| envs.contains(e);
        let hosts = self.hosts.as_ref().map(|a| {
            let mut a = a.clone();
            a.environments.retain(seen);
            a.pins.retain(|e, _| seen(e));
            a.rows.retain(|r| seen(&r.environment));
            a.agents.retain(|r| seen(&r.environment));
            a.held.retain(|e, _| seen(e));
            a.summary.clear();
            for r in &a.rows {
                *a.summary.entry(r.status.as_str().to_string()).or_insert(0) += 1;
            }
            a
        });
        View {
            age_seconds: (self.at.elapsed().as_millis() as f64) / 1000.0,
            read_at: crate::clock::rfc3339(self.taken_at),
            hosts,
            swarms: self
                .swarms
                .iter()
                .filter(|(e, _)| seen(e))
                .map(|(e, r)| SwarmView {
                    environment: e.clone(),
                    services: r.as_ref().ok().cloned(),
                    error: r.as_ref().err().cloned(),
                })
                .collect(),
        }
    }
}
