//! The request log tests assert on: every request the device received, with its method,
//! params, header fields and binary length, in arrival order.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::sessions::Transport;

/// One received request.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RequestRecord {
    /// Arrival order, from 0.
    pub seq: u64,
    /// Index of the connection it came on (DHIP and HTTP share the numbering).
    pub conn: u64,
    /// DHIP or HTTP (`system.multicall` members are recorded with the multicall's).
    pub transport: Transport,
    /// The method (empty if there was none).
    pub method: String,
    /// `params` as sent (`Null` if absent).
    pub params: Value,
    /// `id` as sent.
    pub id: Value,
    /// JSON `session`, if present.
    pub session: Option<Value>,
    /// JSON `object`, if present.
    pub object: Option<Value>,
    /// DHIP header session ([8..12)).
    pub header_session: Option<u32>,
    /// DHIP header request id ([12..16)).
    pub header_id: Option<u32>,
    /// Whether the header session and id equal the JSON `session` (absent = 0) and `id`.
    pub header_matched: Option<bool>,
    /// Bytes of binary trailer.
    pub binary_len: usize,
    /// Simulator clock at arrival.
    pub at: Duration,
    /// Part of a `system.multicall`.
    pub in_multicall: bool,
}

impl RequestRecord {
    /// Whether this request is `method`.
    pub fn is(&self, method: &str) -> bool {
        self.method == method
    }
}
