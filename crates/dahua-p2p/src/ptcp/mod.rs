//! PTCP ("PhonyTCP"): Dahua's reliable, multiplexed byte stream over UDP, as a sans-IO
//! state machine.
//!
//! * [`frame`] — the wire format ([`Frame`], [`Header`], [`Body`]), total over arbitrary
//!   bytes.
//! * [`Session`] — one PTCP peer: SYN exchange, the agent sign / device auth dialogue,
//!   realms (one TCP connection each), cumulative acks, retransmission, heartbeats and the
//!   idle timeout. Time enters only as `Instant` arguments; a driver owns the socket.
//!
//! Driving a session: call [`Session::handle_input`] for each datagram from the peer and
//! [`Session::handle_timeout`] when [`Session::poll_timeout`] passes; after either (and after
//! any API call) send every datagram [`Session::poll_transmit`] yields and handle every
//! [`Session::poll_event`].

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
