//! Dahua P2P remote access: reach a camera by serial number through Easy4IPCloud.
//!
//! The protocol cores are sans-IO state machines (no sockets, no clocks of their own):
//! the DH-HTTP/UDP request exchange with the cloud ([`dhhttp`]), the inverted-STUN punch
//! ([`stun`]) and PTCP, the reliable multiplexed byte stream that carries TCP connections
//! ("realms") to device ports ([`ptcp`]). Thin tokio drivers own the sockets.

pub mod addr;
pub mod client;
pub mod demux;
pub mod devauth;
pub mod dhhttp;
pub mod ptcp;
pub mod stun;
pub mod wsse;
pub mod xmlbody;
