//! Services of one host changed together, in `depends_on` waves: a service starts as soon as the
//! services it depends on (among those changing) passed their gates, independent ones run at the
//! same time, their gates too. A failure stops the services that depend on it, directly or not,
//! never its independent neighbours. After Ctrl-C nothing new starts; what runs finishes.
//!
//! Converging twenty services from empty thus costs about one health wait, not twenty, while a
//! dependent still never starts before what it needs is healthy.

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use std::collections::BTreeSet;
use std::future::Future;

/// One service's change, what it waits for, and the work to do.
pub struct Step<T> {
    pub service: String,
    /// Services (changing on this host) that must pass their gates first.
    pub after: Vec<String>,
    pub job: T,
}

/// What became of a step.
#[derive(Debug)]
pub enum Outcome<R> {
    /// It ran; its result.
    Ran(R),
    /// Not started: a service it depends on failed (or was not started).
    Blocked { by: String },
    /// Not started: interrupted (Ctrl-C).
    Interrupted,
}

/// Runs the steps, each as soon as what it waits for succeeded (`ok` says whether a result is a
/// success). Returns the outcomes in the steps' order.
/// Once `cancel` is cancelled no new step starts (those in flight finish).
pub async fn run<T, R, F, Fut>(
    steps: Vec<Step<T>>,
    cancel: &crate::cancel::Cancel,
    ok: impl Fn(&R) -> bool,
    mut work: F,
) -> Vec<(String, Outcome<R>)>
where
    F: FnMut(T) -> Fut,
    Fut: Future<Output = R>,
{
    let n = steps.len();
    let changing: BTreeSet<String> = steps.iter().map(|s| s.service.clone()).collect();
    let mut waiting: Vec<Option<Step<T>>> = steps.into_iter().map(Some).collect();
    let names: Vec<String> = waiting
        .iter()
        .map(|s| s.as_ref().map(|s| s.service.clone()).unwrap_or_default())
        .collect();
    let mut outcomes: Vec<Option<Outcome<R>>> = (0..n).map(|_| None).collect();
    let mut passed: BTreeSet<String> = BTreeSet::new();
    let mut stopped: BTreeSet<String> = BTreeSet::new();
    let mut running = FuturesUnordered::new();
    loop {
        // Blocked by a failure upstream, transitively (a blocked step blocks its dependents).
        loop {
            let mut more = false;
            for (i, slot) in waiting.iter_mut().enumerate() {
                let Some(step) = slot else { continue };
                if let Some(by) = step.after.iter().find(|d| stopped.contains(*d)) {
                    outcomes[i] = Some(Outcome::Blocked { by: by.clone() });
                    stopped.insert(step.service.clone());
                    *slot = None;
                    more = true;
                }
            }
            if !more {
                break;
            }
        }
        if !cancel.is_cancelled() {
            for (i, slot) in waiting.iter_mut().enumerate() {
                let ready = slot.as_ref().is_some_and(|s| {
                    s.after
                        .iter()
                        .all(|d| !changing.contains(d) || passed.contains(d))
                });
                if ready {
                    let step = slot.take().expect("checked");
                    let fut = work(step.job);
                    running.push(async move { (i, fut.await) });
                }
            }
        }
        let Some((i, result)) = running.next().await else {
            break;
        };
        if ok(&result) {
            passed.insert(names[i].clone());
        } else {
            stopped.insert(names[i].clone());
        }
        outcomes[i] = Some(Outcome::Ran(result));
    }
    // What never started: interrupted.
    names
        .into_iter()
        .zip(outcomes)
        .map(|(s, o)| (s, o.unwrap_or(Outcome::Interrupted)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn step(s: &str, after: &[&str]) -> Step<String> {
        Step {
            service: s.into(),
            after: after.iter().map(|a| a.to_string()).collect(),
            job: s.into(),
        }
    }

    #[tokio::test]
    async fn dependents_wait_independents_run_together_and_failures_block_only_dependents() {
        let log = Mutex::new(Vec::new());
        let steps = vec![
            step("db", &[]),
            step("api", &["db"]),
            step("web", &["api"]),
            step("cache", &[]),
            step("bad", &[]),
            step("needs-bad", &["bad", "cache"]),
            step("unrelated-dep", &["not-changing"]),
        ];
        let out = run(
            steps,
            &crate::cancel::Cancel::new(),
            |r: &bool| *r,
            |s: String| {
                log.lock().unwrap().push(format!("start {s}"));
                let log = &log;
                async move {
                    tokio::task::yield_now().await;
                    log.lock().unwrap().push(format!("end {s}"));
                    s != "bad"
                }
            },
        )
        .await;
        let log = log.into_inner().unwrap();
        let at = |e: &str| log.iter().position(|x| x == e).unwrap();
        // Independent ones start before any ends; a dependent starts after its dependency ended.
        assert!(at("start cache") < at("end db"), "{log:?}");
        assert!(at("start unrelated-dep") < at("end db"), "{log:?}");
        assert!(
            at("end db") < at("start api") && at("end api") < at("start web"),
            "{log:?}"
        );
        let by_name: std::collections::BTreeMap<_, _> = out.into_iter().collect();
        assert!(matches!(by_name["web"], Outcome::Ran(true)));
        assert!(matches!(by_name["cache"], Outcome::Ran(true)));
        assert!(matches!(by_name["bad"], Outcome::Ran(false)));
        assert!(matches!(&by_name["needs-bad"], Outcome::Blocked { by } if by == "bad"));
        assert!(!log.contains(&"start needs-bad".to_string()));
    }
}
