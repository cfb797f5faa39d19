//! PTCP ("PhonyTCP"): Dahua's reliable, multiplexed byte stream over UDP, as a sans-IO
//! state machine.
//!
//! * [`frame`] — the wire format ([`Frame`], [`Header`], [`Body`]), total over arbitrary
//!   bytes.
//! * [`Session`] — one PTCP peer: SYN exchange, the agent sign / device auth dialogue,
//!   realms (one TCP connection each), cumulative acks, retransmission, heartbeats and the
//!   idle timeout. Time enters only as `Instant` arguments; a driver owns the socket.
//!
//! # Driving a session
//!
//! Call [`Session::handle_input`] for each datagram from the peer and
//! [`Session::handle_timeout`] once [`Session::poll_timeout`] has passed. After either, and
//! after any API call (`connect`, `open_realm`, `send`, `close_realm`, ...), send every
//! datagram [`Session::poll_transmit`] yields and handle every [`Session::poll_event`];
//! then wait for the next datagram or the new `poll_timeout`. API calls without a `now`
//! argument use the latest instant the session was given.
//!
//! # Bounds
//!
//! Memory is bounded whatever the peer or the application does: per-realm send buffers
//! (`Config::realm_send_buffer`; `send` takes what fits and [`Event::Writable`] says when to
//! retry), bytes in flight (`Config::send_window`, plus 64 KiB for control frames), the
//! reorder buffer (`Config::reorder_buffer`), at most `Config::max_realms` realms and 1024
//! queued control frames. Undelivered events are bounded by `Config::event_buffer`: when
//! the application stops polling events, in-order frames stay unacknowledged and the peer
//! retransmits them (and, if that lasts, gives up), so poll events promptly.
//!
//! # Protocol decisions
//!
//! * The stream is the body bytes of all non-empty frames; the receiver takes its starting
//!   point from the peer's SYN and delivers by the peer's `sent`, whatever `lmid` and `pid`
//!   say. Empty frames are never acknowledged.
//! * A responder ignores the `recv` field of SYN frames (an initiator that has not seen the
//!   answer yet fills it with 0).
//! * A device treats a valid `0x19` sign as authentication for BINDs; `0x1B` completes the
//!   dialogue and is acknowledged with an empty frame. A wrong sign gets no `0x1A`.
//! * A relay agent accepts BINDs without any sign (relay mode: the client opens realms on
//!   its agent session) and leaves forwarding them to the application; a client refuses
//!   BINDs.
//! * Closing a realm sends its buffered data first, then DISC; the realm is gone when the
//!   peer answers DISC or acknowledges ours. A peer's DISC on an open realm is answered
//!   with DISC; DISC for an unknown realm is ignored (no DISC ping-pong).

pub mod frame;

mod config;
mod realm;
mod recv;
mod rto;
mod send;
mod seq;
mod session;

pub use config::{AckPolicy, Config, PidPolicy, Role};
pub use frame::{Body, Frame, FrameError, FrameErrorKind, Header, Status};
pub use realm::{RealmError, RealmState};
pub use session::{CloseReason, Event, Session, Stats};
