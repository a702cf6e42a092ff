//! The fleet as the console shows it: audit's windowed, pooled read of every host, done at most
//! once per `MAX_AGE` whatever the number of viewers (one refresh at a time; the others wait for
//! it and share it), again at once after an action. Each viewer gets the part its rights allow,
//! with the reading's age. What a set of environments sees of a reading is written once
//! (`Written`) and shared by every answer from that reading: at 1,000 hosts the audit document
//! is ~10 MB, and cloning and serialising it per request made a cached answer 40–110 ms and
//! 50 pollers cost ~8 MB each at once (556 MB peak) on the simulated fleet (benches/sim/serve.sh).

use crate::ops::audit::{AgentRow, Audit, AuditOutcome};
use crate::ops::swarm::SwarmAuditRow;
use axum::body::Bytes;
use serde::Serialize;
use std::collections::HashMap;
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
    /// What each set of environments sees of it, written at the first request that needs it.
    written: Mutex<HashMap<Vec<String>, Arc<Written>>>,
}

/// One set of environments' part of a reading, as answers carry it: written by the first
/// request (on a blocking thread; the others wait for it), then shared, never copied.
#[derive(Default)]
struct Written {
    /// The audit answer (`json()`'s pretty JSON of a `View`) after its `age_seconds` value:
    /// `audit_head(age)` and this make the whole answer.
    audit_tail: tokio::sync::OnceCell<Bytes>,
    /// The fleet's series of /metrics (`metrics::render_fleet`).
    metrics_fleet: tokio::sync::OnceCell<Bytes>,
}

/// The start of an audit answer, up to its `age_seconds` value; `Reading::audit_tail` is the
/// rest. The age is the first field of `View`, so only these few bytes differ between answers.
pub fn audit_head(age_seconds: f64) -> Bytes {
    let age = serde_json::to_string(&age_seconds).unwrap_or_else(|_| "0.0".into());
    Bytes::from(format!("{AUDIT_HEAD}{age}"))
}

/// What `serde_json::to_string_pretty` writes of a `View` before the age's value.
const AUDIT_HEAD: &str = "{\n  \"age_seconds\": ";

/// The environment sets a reading keeps written answers for (one per distinct set of grants
/// polling; past this, the oldest are written again if asked).
const WRITTEN_SETS: usize = 16;

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
    /// The last reading of `commit` whatever its age, for an answer that must not wait for a
    /// fleet read (a Prometheus scrape); `None` when there is none yet.
    pub fn last(&self, commit: &str) -> Option<Arc<Reading>> {
        self.last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .filter(|r| r.commit == commit)
            .cloned()
    }

    /// Whether a reading is being made now.
    pub fn refreshing(&self) -> bool {
        self.refresh.try_lock().is_err()
    }

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
        {
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            // Another request may have read the fleet while this one waited.
            if let Some(r) = fresh(&last) {
                return Ok(r);
            }
            // The stale reading serves no one any more: let it go before the new one is read
            // (at 1,000 hosts, ~35 MB with its written answers, on top of the read's own peak).
            *last = None;
        }
        let outcome = read().await?;
        let reading = Arc::new(Reading {
            written: Default::default(),
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
    /// Seconds since the fleet was read, as answers say it.
    pub fn age_seconds(&self) -> f64 {
        (self.at.elapsed().as_millis() as f64) / 1000.0
    }

    /// The pull agents of environments `envs` (what /metrics reads at each scrape).
    pub fn agents<'a>(&'a self, envs: &'a [String]) -> impl Iterator<Item = &'a AgentRow> + 'a {
        self.hosts
            .iter()
            .flat_map(|a| a.agents.iter())
            .filter(|r| envs.contains(&r.environment))
    }

    fn written(&self, envs: &[String]) -> Arc<Written> {
        let mut w = self.written.lock().unwrap_or_else(|e| e.into_inner());
        if !w.contains_key(envs) && w.len() >= WRITTEN_SETS {
            w.clear();
        }
        w.entry(envs.to_vec()).or_default().clone()
    }

    /// The audit answer for `envs` after its age (see `audit_head`), written once.
    pub async fn audit_tail(
        self: &Arc<Self>,
        envs: &[String],
    ) -> Result<Bytes, super::error::ApiError> {
        let (me, set) = (self.clone(), envs.to_vec());
        self.written(envs)
            .audit_tail
            .get_or_try_init(|| write_once(move || me.write_audit(&set)))
            .await
            .cloned()
    }

    /// /metrics' fleet series for `envs`, written once.
    pub async fn metrics_fleet(
        self: &Arc<Self>,
        envs: &[String],
    ) -> Result<Bytes, super::error::ApiError> {
        let (me, set) = (self.clone(), envs.to_vec());
        self.written(envs)
            .metrics_fleet
            .get_or_try_init(|| {
                write_once(move || {
                    let rows = me.hosts.iter().flat_map(|a| a.rows.iter());
                    let rows = rows.filter(|r| set.contains(&r.environment));
                    Bytes::from(super::metrics::render_fleet(rows))
                })
            })
            .await
            .cloned()
    }

    fn write_audit(&self, envs: &[String]) -> Bytes {
        let mut view = self.view(envs);
        view.age_seconds = 0.0;
        let text = serde_json::to_string_pretty(&view).unwrap_or_default() + "\n";
        drop(view);
        let head = format!("{AUDIT_HEAD}0.0");
        assert!(
            text.starts_with(&head),
            "age_seconds is the first field of View"
        );
        // The tail in place: no copy of 10 MB.
        Bytes::from(text).slice(head.len()..)
    }

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
            age_seconds: self.age_seconds(),
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

/// Runs `write` on a blocking thread: a 10 MB document takes tens of milliseconds to write,
/// which must not hold one of the runtime's workers (two on two cores).
async fn write_once<W>(write: W) -> Result<Bytes, super::error::ApiError>
where
    W: FnOnce() -> Bytes + Send + 'static,
{
    tokio::task::spawn_blocking(write).await.map_err(|e| {
        super::error::ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::audit::{Row, Status};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Two environments, a few rows and an agent each.
    pub(crate) fn outcome() -> AuditOutcome {
        let row = |env: &str, host: &str, service: &str, status| Row {
            environment: env.into(),
            host: host.into(),
            service: service.into(),
            status,
            pinned: Some("1.1.0".into()),
            running: Some("1.0.0".into()),
            digest: Some("sha256:3b8d168f00aa".into()),
            state: Some("running".into()),
            health: Some("healthy".into()),
            since: Some("2026-12-07T04:00:00Z".into()),
            deployed_by: Some("ops@acme.example".into()),
            commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
            detail: Some("runs \"1.0.0\", pinned 1.1.0".into()),
        };
        let agent = |env: &str, host: &str| AgentRow {
            environment: env.into(),
            host: host.into(),
            state: "ok".into(),
            commit: None,
            synced_at: Some("2026-12-07T04:00:00Z".into()),
            result: Some("ok".into()),
            reason: None,
            interval_secs: Some(30),
            follows: None,
            digest: None,
        };
        AuditOutcome {
            hosts: Some(Audit {
                platform: "shop".into(),
                commit: "0123456789abcdef0123456789abcdef01234567".into(),
                generated_at: "2026-12-07T04:01:00Z".into(),
                environments: vec!["prod".into(), "test".into()],
                services: vec!["web".into(), "api".into()],
                pins: Default::default(),
                rows: vec![
                    row("prod", "web-1", "web", Status::Ok),
                    row("prod", "web-1", "api", Status::Drift),
                    row("test", "t-1", "web", Status::Unreachable),
                ],
                agents: vec![agent("prod", "web-1"), agent("test", "t-1")],
                summary: Default::default(),
                held: Default::default(),
            }),
            swarms: vec![],
        }
    }

    async fn reading(cache: &FleetCache) -> Arc<Reading> {
        cache
            .get("c1", || async { Ok(outcome()) })
            .await
            .expect("a reading")
    }

    #[tokio::test]
    async fn viewers_at_once_read_the_fleet_once() {
        let cache = FleetCache::default();
        let reads = AtomicUsize::new(0);
        let read = || async {
            reads.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(outcome())
        };
        let all = futures::future::join_all((0..50).map(|_| cache.get("c1", read))).await;
        assert!(all.iter().all(|r| r.is_ok()));
        assert_eq!(reads.load(Ordering::SeqCst), 1, "one read for 50 viewers");
        // Another commit is another reading.
        cache.get("c2", read).await.expect("a reading");
        assert_eq!(reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn the_last_reading_is_there_for_a_scrape_whatever_its_age_while_one_is_made() {
        let cache = FleetCache::default();
        assert!(cache.last("c1").is_none(), "nothing read yet");
        let first = reading(&cache).await;
        assert!(Arc::ptr_eq(&cache.last("c1").unwrap(), &first));
        assert!(cache.last("c2").is_none(), "a reading of another commit");
        assert!(!cache.refreshing());
        // While a read runs, a scrape can tell (and does not start another).
        let seen = std::sync::atomic::AtomicBool::new(false);
        cache.invalidate();
        cache
            .get("c1", || async {
                seen.store(cache.refreshing(), Ordering::SeqCst);
                Ok(outcome())
            })
            .await
            .expect("a reading");
        assert!(seen.load(Ordering::SeqCst));
        assert!(!cache.refreshing());
    }

    #[tokio::test]
    async fn a_stale_reading_is_let_go_before_the_fleet_is_read_again() {
        let cache = FleetCache::default();
        let old = Arc::downgrade(&reading(&cache).await);
        let alive_during_read = std::sync::atomic::AtomicBool::new(true);
        // Another commit: the reading is stale for it.
        cache
            .get("c2", || async {
                alive_during_read.store(old.upgrade().is_some(), Ordering::SeqCst);
                Ok(outcome())
            })
            .await
            .expect("a reading");
        assert!(!alive_during_read.load(Ordering::SeqCst));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_audit_answer_written_once_is_the_view_as_json_writes_it() {
        let cache = FleetCache::default();
        let r = reading(&cache).await;
        for envs in [
            vec!["prod".to_string()],
            vec!["prod".into(), "test".into()],
            vec![],
        ] {
            let tail = r.audit_tail(&envs).await.expect("written");
            for age in [0.0, 0.025, 1.0, 14.999, 123456.5] {
                let mut want = r.view(&envs);
                want.age_seconds = age;
                let want = serde_json::to_string_pretty(&want).unwrap() + "\n";
                let got = [audit_head(age), tail.clone()].concat();
                assert_eq!(String::from_utf8(got).unwrap(), want, "{envs:?} at {age}");
            }
            // Written once: the same bytes, not a copy.
            let again = r.audit_tail(&envs).await.expect("written");
            assert_eq!(again.as_ptr(), tail.as_ptr());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_metrics_written_once_are_those_of_a_whole_scrape() {
        let cache = FleetCache::default();
        let r = reading(&cache).await;
        let ops = super::super::metrics::Operations::default();
        ops.record("apply", "done", 3.0);
        let envs = vec!["prod".to_string()];
        let fleet = r.metrics_fleet(&envs).await.expect("written");
        let live = super::super::metrics::render_live(r.agents(&envs), 2.5, &ops);
        let mut view = r.view(&envs);
        view.age_seconds = 2.5;
        // A whole scrape written at once from the caller's view: what the parts written once
        // must add up to.
        let agents = view.hosts.iter().flat_map(|a| a.agents.iter());
        let rows = view.hosts.iter().flat_map(|a| a.rows.iter());
        let whole = super::super::metrics::render_fleet(rows)
            + &super::super::metrics::render_live(agents, view.age_seconds, &ops);
        let got = String::from_utf8([fleet.to_vec(), live.into_bytes()].concat()).unwrap();
        // The same lines (a family's series come in hash order), the families in the same order.
        // (The agents' sync age is counted to now: its value differs.)
        let sorted = |t: &str| {
            let mut l: Vec<_> = t
                .lines()
                .map(
                    |l| match l.strip_prefix("fleetpin_agent_sync_age_seconds{") {
                        Some(rest) => rest.split(' ').next().unwrap_or_default().to_string(),
                        None => l.to_string(),
                    },
                )
                .collect();
            l.sort();
            l
        };
        let helps = |t: &str| -> Vec<String> {
            t.lines()
                .filter(|l| l.starts_with("# HELP"))
                .map(str::to_string)
                .collect()
        };
        assert_eq!(sorted(&got), sorted(&whole));
        assert_eq!(helps(&got), helps(&whole));
        let families: Vec<&str> = got
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        assert_eq!(
            families,
            [
                "fleetpin_service_info",
                "fleetpin_service_drift",
                "fleetpin_host_reachable",
                "fleetpin_agent_sync_age_seconds",
                "fleetpin_agent_ok",
                "fleetpin_fleet_read_age_seconds",
                "fleetpin_operations",
                "fleetpin_operation_duration_seconds",
            ],
            "the families in the order they always came"
        );
        assert!(got.ends_with("# EOF\n") && got.matches("# EOF").count() == 1);
        assert!(got.contains("environment=\"prod\"") && !got.contains("environment=\"test\""));
    }
}
