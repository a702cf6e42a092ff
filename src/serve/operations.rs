//! The actions started through the console, while they run and for a while after: each one's
//! events (the very `OpEvent` documents the CLI prints with `--format json` and the webhooks
//! send), its outcome, and a channel that streams new events to whoever follows it (server-sent
//! events). An operation runs on the server's runtime, not inside the request that started it:
//! closing the browser does not interrupt a deploy half-way.

use crate::ops::context::{OpEvent, Sink};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// How many finished operations are kept for their events to be read back.
const KEEP: usize = 200;

/// One action started through the console.
pub struct Operation {
    pub id: String,
    pub command: String,
    pub environment: String,
    pub actor: String,
    state: Mutex<State>,
    tx: broadcast::Sender<Streamed>,
}

#[derive(Default)]
struct State {
    events: Vec<serde_json::Value>,
    outcome: Option<serde_json::Value>,
    error: Option<serde_json::Value>,
}

/// What a follower receives: an event, then the end.
#[derive(Debug, Clone)]
pub enum Streamed {
    Event(serde_json::Value),
    Done(serde_json::Value),
}

/// What `GET /api/v1/operations/{id}` answers.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub id: String,
    pub command: String,
    pub environment: String,
    pub actor: String,
    pub running: bool,
    pub events: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<serde_json::Value>,
}

impl Operation {
    pub fn snapshot(&self) -> Snapshot {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        Snapshot {
            id: self.id.clone(),
            command: self.command.clone(),
            environment: self.environment.clone(),
            actor: self.actor.clone(),
            running: s.outcome.is_none() && s.error.is_none(),
            events: s.events.clone(),
            outcome: s.outcome.clone(),
            error: s.error.clone(),
        }
    }

    /// The events so far and a receiver for the next ones (taken under one lock: none is lost
    /// or repeated between the two).
    pub fn follow(
        &self,
    ) -> (
        Vec<serde_json::Value>,
        Option<serde_json::Value>,
        broadcast::Receiver<Streamed>,
    ) {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let end = s.outcome.clone().or_else(|| s.error.clone());
        (s.events.clone(), end, self.tx.subscribe())
    }

    /// The operation ended: its outcome (`Ok`) or its error document.
    pub fn finish(&self, result: Result<serde_json::Value, serde_json::Value>) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let end = match result {
            Ok(v) => {
                s.outcome = Some(v.clone());
                v
            }
            Err(e) => {
                s.error = Some(e.clone());
                e
            }
        };
        let _ = self.tx.send(Streamed::Done(end));
    }
}

impl Sink for Operation {
    fn emit(&self, event: &OpEvent) {
        let v = serde_json::to_value(event).unwrap_or_default();
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.events.push(v.clone());
        let _ = self.tx.send(Streamed::Event(v));
    }
}

/// Every operation of this server, by id.
#[derive(Default)]
pub struct Operations {
    all: Mutex<BTreeMap<String, Arc<Operation>>>,
    order: Mutex<Vec<String>>,
}

impl Operations {
    pub fn start(&self, command: &str, environment: &str, actor: &str) -> Arc<Operation> {
        let id = format!("{command}-{}", super::random_id());
        let (tx, _) = broadcast::channel(1024);
        let op = Arc::new(Operation {
            id: id.clone(),
            command: command.into(),
            environment: environment.into(),
            actor: actor.into(),
            state: Mutex::new(State::default()),
            tx,
        });
        let mut all = self.all.lock().unwrap_or_else(|e| e.into_inner());
        let mut order = self.order.lock().unwrap_or_else(|e| e.into_inner());
        all.insert(id.clone(), op.clone());
        order.push(id);
        while order.len() > KEEP {
            let old = order.remove(0);
            all.remove(&old);
        }
        op
    }

    pub fn get(&self, id: &str) -> Option<Arc<Operation>> {
        self.all
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }
}
