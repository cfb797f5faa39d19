//! Dahua DHIP: the binary JSON-RPC that Dahua and OEM cameras, NVRs and intercoms speak on
//! TCP 5000 (also 37777, 35000 or the web port), its HTTP twin RPC2, RPC_Loadfile downloads,
//! the DHAV media container, and DHDiscover.
//!
//! The wire layers are sans-IO and total over arbitrary input: [`header`] and [`frame`]
//! (packets, fragments), [`envelope`] (requests, responses, pushes and their quirks),
//! [`auth`] (login schemes), [`dhav`], [`discovery`], [`digest`] (HTTP Digest). The async
//! [`client`] (tokio) logs in, keeps the session alive, logs in again when it expires,
//! multiplexes calls over one connection and streams events; [`http`] does the same over
//! HTTP RPC2 and downloads files and DHAV streams.

pub mod auth;
pub mod client;

pub mod codes;
pub mod dhav;
pub mod digest;
pub mod discovery;
pub mod envelope;
pub mod frame;
pub mod header;
pub mod http;
pub mod methods;

pub mod rtsp_url;

use thiserror::Error;

/// A DHIP byte stream that cannot be read.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    /// Fewer than 32 header bytes.
    #[error("DHIP header truncated: {have} of 32 bytes")]
    Truncated {
        /// Bytes present.
        have: usize,
    },
    /// The first bytes are not `20 00 00 00 DHIP`.
    #[error("not a DHIP packet (first bytes {hex}): the peer speaks {}", protocol.describe())]
    BadPrefix {
        /// What the bytes look like.
        protocol: header::Protocol,
        /// Hex of the first bytes.
        hex: String,
    },
    /// A length field beyond the limit.
    #[error("DHIP message of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// The announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A packet of another request arrived in the middle of a fragmented message.
    #[error("DHIP fragment of request {got} inside fragmented message {expected}")]
    InterleavedFragment {
        /// The request being reassembled.
        expected: u32,
        /// The request id that arrived.
        got: u32,
    },
}

/// JSON that is not a usable envelope.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum EnvelopeError {
    /// Not JSON.
    #[error("invalid JSON ({reason}): {excerpt}")]
    Json {
        /// The parser's message.
        reason: String,
        /// The text.
        excerpt: String,
    },
    /// JSON, but not an object.
    #[error("JSON is not an object: {excerpt}")]
    NotAnObject {
        /// The text.
        excerpt: String,
    },
    /// A required member is missing.
    #[error("JSON has no `{field}`: {excerpt}")]
    Missing {
        /// The member.
        field: &'static str,
        /// The text.
        excerpt: String,
    },
}
