//! The event stream: a connection of its own (pushes never share a connection with calls),
//! logged in and kept alive, `eventManager.attach` for the chosen codes, then every
//! `client.notifyEventStream` entry as an [`Event`]. When the connection drops the stream
//! says so and connects again with bounded, jittered backoff; a login the device refuses
//! ends it (retrying would lock the account).

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::debug;

use super::{Client, ClientConfig, Connector, Error, keepalive_period};
use crate::envelope::{Notification, as_f64_lenient, as_u64_lenient};

/// One event from the device.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    /// `Code`, e.g. `VideoMotion`, or the push's method for other pushes.
    pub code: String,
    /// `Action`: `Start`, `Stop`, `Pulse` or `State`.
    pub action: String,
    /// `Index` (the channel, for most events).
    pub index: Option<u64>,
    /// `Data.UTC` in seconds, when given.
    pub utc: Option<f64>,
    /// `Data`.
    pub data: Value,
}

impl Event {
    /// The events of one push.
    pub fn from_push(n: &Notification) -> Vec<Event> {
        match n.params.get("eventList").and_then(Value::as_array) {
            Some(list) => list.iter().map(Event::from_entry).collect(),
            None if n.method == "client.notifyEventStream" => vec![Event::from_entry(&n.params)],
            None => vec![Event {
                code: n.method.clone(),
                action: "Pulse".into(),
                index: None,
                utc: None,
                data: n.params.clone(),
            }],
        }
    }

    fn from_entry(e: &Value) -> Event {
        let data = e.get("Data").cloned().unwrap_or(Value::Null);
        Event {
            code: e
                .get("Code")
                .and_then(Value::as_str)
                .unwrap_or("Unknown")
                .to_string(),
            action: e
                .get("Action")
                .and_then(Value::as_str)
                .unwrap_or("Pulse")
                .to_string(),
            index: e.get("Index").and_then(as_u64_lenient),
            utc: data.get("UTC").and_then(as_f64_lenient),
            data,
        }
    }
}

/// What the stream yields.
#[derive(Clone, Debug)]
pub enum EventItem {
    /// Attached (again, after a reconnect): events follow.
    Attached {
        /// The subscription id the device gave (`SID`).
        sid: Option<u64>,
    },
    /// An event.
    Event(Event),
    /// The connection dropped; the stream connects again after `retry_in`.
    Disconnected {
        /// Why.
        reason: String,
        /// The wait before the next attempt.
        retry_in: Duration,
    },
    /// The stream ended for good (the device refused the login or the attach).
    Failed(Error),
}

/// Events from one device, until dropped.
pub struct EventStream {
    rx: mpsc::Receiver<EventItem>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl EventStream {
    /// The next item; `None` after [`EventItem::Failed`] or [`EventStream::close`].
    pub async fn next(&mut self) -> Option<EventItem> {
        self.rx.recv().await
    }

    /// Detaches, logs out and ends the stream.
    pub async fn close(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        } else {
            self.task.abort();
        }
    }
}

/// Backoff between reconnects: 0.5 s doubling to 30 s, ±25 % jitter.
fn backoff(attempt: u32) -> Duration {
    let base = 0.5 * 2f64.powi(attempt.min(6) as i32);
    let base = base.min(30.0);
    let j = rand::thread_rng().gen_range(0.75..1.25);
    Duration::from_secs_f64(base * j)
}

impl Client {
    /// Subscribes to events with `codes` (`["All"]` for everything) on a connection of their
    /// own.
    pub fn events(&self, codes: Vec<String>) -> EventStream {
        let (tx, rx) = mpsc::channel(256);
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = tokio::spawn(run(
            self.connector(),
            self.config().clone(),
            codes,
            tx,
            stop_rx,
        ));
        EventStream {
            rx,
            stop: Some(stop_tx),
            task,
        }
    }
}

async fn run(
    connector: Arc<dyn Connector>,
    cfg: ClientConfig,
    codes: Vec<String>,
    tx: mpsc::Sender<EventItem>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut attempt = 0u32;
    loop {
        let reason = match session(connector.as_ref(), &cfg, &codes, &tx, &mut stop).await {
            Ended::Stopped | Ended::ReceiverGone => return,
            Ended::Fatal(e) => {
                let _ = tx.send(EventItem::Failed(e)).await;
                return;
            }
            Ended::Dropped {
                reason,
                was_attached,
            } => {
                if was_attached {
                    attempt = 0;
                }
                reason
            }
        };
        let wait = backoff(attempt);
        attempt = attempt.saturating_add(1);
        if tx
            .send(EventItem::Disconnected {
                reason,
                retry_in: wait,
            })
            .await
            .is_err()
        {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = &mut stop => return,
        }
    }
}

enum Ended {
    Stopped,
    ReceiverGone,
    Fatal(Error),
    Dropped { reason: String, was_attached: bool },
}

async fn session(
    connector: &dyn Connector,
    cfg: &ClientConfig,
    codes: &[String],
    tx: &mpsc::Sender<EventItem>,
    stop: &mut oneshot::Receiver<()>,
) -> Ended {
    let (conn, mut pushes, keepalive) = match Client::open(connector, cfg).await {
        Ok(x) => x,
        Err(e @ Error::Login { .. }) => return Ended::Fatal(e),
        Err(e) => {
            return Ended::Dropped {
                reason: e.to_string(),
                was_attached: false,
            };
        }
    };
    let attach = conn
        .request(
            "eventManager.attach",
            json!({"codes": codes}),
            None,
            &[],
            cfg.call_timeout,
        )
        .await;
    let sid = match attach {
        Ok((r, _, _)) if r.is_success() => r.params.get("SID").and_then(as_u64_lenient),
        Ok((r, _, _)) => {
            return Ended::Fatal(Error::Rpc {
                peer: conn.peer.clone(),
                method: "eventManager.attach".into(),
                code: r.error.as_ref().map_or(0, |e| e.code),
                message: r.error.as_ref().and_then(|e| e.message.clone()),
            });
        }
        Err(e) => {
            return Ended::Dropped {
                reason: e.to_string(),
                was_attached: false,
            };
        }
    };
    if tx.send(EventItem::Attached { sid }).await.is_err() {
        return Ended::ReceiverGone;
    }
    let mut tick = tokio::time::interval(keepalive_period(keepalive));
    tick.tick().await;
    loop {
        tokio::select! {
            p = pushes.recv() => match p {
                Some(n) => {
                    for e in Event::from_push(&n) {
                        if tx.send(EventItem::Event(e)).await.is_err() {
                            return Ended::ReceiverGone;
                        }
                    }
                }
                None => return Ended::Dropped { reason: conn.close_reason(), was_attached: true },
            },
            _ = tick.tick() => {
                let params = json!({"timeout": keepalive.as_secs().max(1), "active": true});
                match conn.request("global.keepAlive", params, None, &[], cfg.call_timeout).await {
                    Ok((r, _, _)) if r.is_success() => {}
                    Ok((r, _, _)) => {
                        debug!(peer = %conn.peer, "event connection keep-alive refused: {:?}", r.error);
                        conn.shutdown().await;
                        return Ended::Dropped { reason: "the device dropped the session".into(), was_attached: true };
                    }
                    Err(e) => return Ended::Dropped { reason: e.to_string(), was_attached: true },
                }
            }
            _ = &mut *stop => {
                let t = Duration::from_secs(2).min(cfg.call_timeout);
                let _ = conn.request("eventManager.detach", json!({"codes": codes}), None, &[], t).await;
                let _ = conn.request("global.logout", json!({}), None, &[], t).await;
                conn.shutdown().await;
                return Ended::Stopped;
            }
        }
    }
}
