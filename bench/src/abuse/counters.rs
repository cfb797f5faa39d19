//! What a load saw, counted by its tasks and printed as JSON at the end: connections made and
//! failed, what was sent, the status of every answer, how connections ended, and how long the
//! server held them.

use std::collections::BTreeMap;
use std::io;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use super::Proto;

/// Distinct error messages kept per load (for the report, not a log).
const MAX_ERRORS: usize = 8;

/// The counters of one load against one server.
#[derive(Debug, Default)]
pub struct Counters {
    /// TCP connections made.
    pub connects: AtomicU64,
    /// Connects that failed or timed out.
    pub connect_errors: AtomicU64,
    /// Requests, payloads or heads sent (begun, for slow heads).
    pub sent: AtomicU64,
    /// Connections the server ended with a FIN.
    pub closed_by_server: AtomicU64,
    /// Connections the server reset (ECONNRESET, EPIPE).
    pub resets: AtomicU64,
    /// Other I/O errors.
    pub io_errors: AtomicU64,
    /// Waits for an answer that ran out (our own timeout).
    pub no_answer: AtomicU64,
    /// Connections not attempted because the in-flight cap was reached.
    pub skipped: AtomicU64,
    statuses: Mutex<BTreeMap<u16, u64>>,
    held: Mutex<Held>,
    errors: Mutex<Vec<String>>,
}

/// How long the server held connections before answering or closing them.
#[derive(Debug, Default)]
struct Held {
    count: u64,
    sum: Duration,
    min: Option<Duration>,
    max: Duration,
}

/// Adds one to `c`.
pub fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Counters {
    /// Counts an answer with status `code`.
    pub fn status(&self, code: u16) {
        *lock(&self.statuses).entry(code).or_default() += 1;
    }

    /// How many answers had status `code`.
    pub fn status_count(&self, code: u16) -> u64 {
        lock(&self.statuses).get(&code).copied().unwrap_or(0)
    }

    /// Records that the server held a connection for `d` before ending it.
    pub fn held(&self, d: Duration) {
        let mut h = lock(&self.held);
        h.count += 1;
        h.sum += d;
        h.min = Some(h.min.map_or(d, |m| m.min(d)));
        h.max = h.max.max(d);
    }

    /// Counts an I/O error: a reset, or another error (whose message is kept, a few kinds).
    pub fn io_error(&self, e: &io::Error) {
        use io::ErrorKind::*;
        match e.kind() {
            ConnectionReset | BrokenPipe | ConnectionAborted => inc(&self.resets),
            _ => {
                inc(&self.io_errors);
                self.note(e.to_string());
            }
        }
    }

    /// Counts a failed connect and keeps its message.
    pub fn connect_error(&self, e: &io::Error) {
        inc(&self.connect_errors);
        self.note(format!("connect: {e}"));
    }

    /// Keeps `msg` among the first distinct error messages.
    pub fn note(&self, msg: String) {
        let mut errs = lock(&self.errors);
        if errs.len() < MAX_ERRORS && !errs.contains(&msg) {
            errs.push(msg);
        }
    }

    /// The counters as a JSON object.
    pub fn to_json(&self) -> Value {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let statuses: BTreeMap<String, u64> = lock(&self.statuses)
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        let h = lock(&self.held);
        let ms = |d: Duration| (d.as_secs_f64() * 10_000.0).round() / 10.0;
        json!({
            "connections": get(&self.connects),
            "connect_errors": get(&self.connect_errors),
            "sent": get(&self.sent),
            "answers": statuses,
            "refused_503": self.status_count(503),
            "refused_429": self.status_count(429),
            "timeouts_408": self.status_count(408),
            "unauthorized_401": self.status_count(401),
            "bad_request_400": self.status_count(400),
            "closed_by_server": get(&self.closed_by_server),
            "resets": get(&self.resets),
            "io_errors": get(&self.io_errors),
            "errors": get(&self.connect_errors) + get(&self.io_errors),
            "no_answer": get(&self.no_answer),
            "skipped": get(&self.skipped),
            "held_ms": {
                "count": h.count,
                "min": h.min.map(ms),
                "mean": if h.count > 0 {
                    Some(ms(h.sum.div_f64(h.count as f64)))
                } else {
                    None
                },
                "max": ms(h.max),
            },
            "error_messages": *lock(&self.errors),
        })
    }
}

/// A load's counters against each server.
#[derive(Debug, Default)]
pub struct PerProto {
    /// Against the RTSP server.
    pub rtsp: Counters,
    /// Against the HTTP API.
    pub http: Counters,
}

impl PerProto {
    /// The counters against the server speaking `proto`.
    pub fn get(&self, proto: Proto) -> &Counters {
        match proto {
            Proto::Rtsp => &self.rtsp,
            Proto::Http => &self.http,
        }
    }

    /// `{"rtsp": {...}, "http": {...}}`.
    pub fn to_json(&self) -> Value {
        json!({"rtsp": self.rtsp.to_json(), "http": self.http.to_json()})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_statuses_resets_and_holds() {
        let c = Counters::default();
        c.status(408);
        c.status(408);
        c.status(503);
        c.io_error(&io::Error::from(io::ErrorKind::ConnectionReset));
        c.io_error(&io::Error::other("odd"));
        c.io_error(&io::Error::other("odd"));
        c.held(Duration::from_secs(10));
        c.held(Duration::from_secs(12));
        let j = c.to_json();
        assert_eq!(j["timeouts_408"], 2);
        assert_eq!(j["refused_503"], 1);
        assert_eq!(j["answers"]["408"], 2);
        assert_eq!(
            (j["resets"].as_u64(), j["io_errors"].as_u64()),
            (Some(1), Some(2))
        );
        assert_eq!(j["error_messages"].as_array().map(Vec::len), Some(1));
        assert_eq!(j["held_ms"]["mean"], 11000.0);
    }
}
