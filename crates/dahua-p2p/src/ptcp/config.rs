//! Session configuration: the role a session plays and the quirk policies (how `pid` is
//! filled, how often acks are sent) plus every buffer bound and timer.

use std::time::Duration;

use bytes::Bytes;

/// Which end of a PTCP session this is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Our tunnel: sends SYN, may fetch a sign from the agent and authenticate to the device,
    /// opens realms.
    Client,
    /// A camera/NVR: answers SYN with SYN, checks the sign, accepts or refuses realms.
    Device {
        /// The sign a client must present in `0x19` before realms are allowed; `None`
        /// accepts any sign and allows realms without authentication.
        required_sign: Option<Bytes>,
    },
    /// A relay agent: answers SYN with SYN and `0x17` with `0x18` + this sign; in relay mode
    /// it also takes BINDs ([`Event::BindRequest`](super::Event::BindRequest)) to forward.
    Agent {
        /// The sign handed to clients.
        sign: Bytes,
    },
}

/// When empty acknowledgement frames are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckPolicy {
    /// One empty frame per received non-empty frame (what devices and dh-p2p do).
    EveryFrame,
    /// One empty frame per `frames` received frames or after `delay`, whichever comes
    /// first (dh-fwd: 4 frames / 10 ms); an outgoing non-empty frame carries the ack
    /// instead. Out-of-order and duplicate frames are acked at once.
    Coalesce {
        /// Ack after this many unacknowledged frames (at least 1).
        frames: u32,
        /// Ack at the latest this long after the first unacknowledged frame.
        delay: Duration,
    },
}

/// How the `pid` header field of non-SYN frames is filled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PidPolicy {
    /// `0xFFFF - (count & 0xFFFF)`, count = non-empty non-SYN frames sent before (dh-p2p,
    /// 16-bit wrap as pabloromeo). A retransmission repeats the original `pid`.
    FrameCount,
    /// `0xFFFF - (recv & 0xFFFF)`, as in the mcw0 capture of an official client.
    RecvWindow,
}

/// Everything a [`Session`](super::Session) needs to know up front.
#[derive(Clone, Debug)]
pub struct Config {
    /// The role this session plays.
    pub role: Role,
    /// `lmid` of the first frame sent (devices start at a random value).
    pub initial_lmid: u32,
    /// `sent` of the first frame (0 on real peers; set near 2^32 to test wrapping).
    pub initial_sent: u32,
    /// Frame count the `FrameCount` pid starts from (set near 0xFFFF to test pid wrapping).
    pub initial_pid_count: u32,
    /// When acks are sent.
    pub ack_policy: AckPolicy,
    /// How `pid` is filled.
    pub pid_policy: PidPolicy,
    /// Largest DATA payload per frame (devices use 1280; clamped to 1..=65535).
    pub max_payload: usize,
    /// Most unacknowledged body bytes in flight for DATA (control frames get a small extra
    /// allowance so that CONN/DISC/heartbeats are not starved).
    pub send_window: u32,
    /// Bytes each realm buffers between `send()` and the wire.
    pub realm_send_buffer: usize,
    /// Most realms open at once; further BINDs are refused.
    pub max_realms: usize,
    /// Bytes of out-of-order frames kept for reordering; frames beyond are dropped.
    pub reorder_buffer: usize,
    /// Bytes of undelivered events (mostly `Data`) before the session stops accepting
    /// in-order frames (they stay unacked and the peer retransmits them).
    pub event_buffer: usize,
    /// Send a heartbeat after this long without sending a non-empty frame (zero: never).
    pub heartbeat_interval: Duration,
    /// Close the session after this long without receiving a frame.
    pub idle_timeout: Duration,
    /// Retransmission timeout before any RTT sample.
    pub rto_initial: Duration,
    /// Lower bound of the retransmission timeout.
    pub rto_min: Duration,
    /// Upper bound of the retransmission timeout (also bounds the exponential backoff).
    pub rto_max: Duration,
    /// Consecutive retransmission timeouts before the session closes.
    pub max_retransmits: u32,
    /// How long the client waits for the sign after `0x17`, and for `0x1A` after `0x19`.
    pub auth_timeout: Duration,
    /// Append a NUL to the CONN/DISC bodies this session sends (some devices do).
    pub status_nul: bool,
}

impl Config {
    /// Defaults for `role`: ack every frame, frame-count pids, 1280-byte payloads, 256 KiB
    /// window, 5 s heartbeats, 30 s idle timeout; devices and agents get a random
    /// initial `lmid`.
    pub fn new(role: Role) -> Self {
        let initial_lmid = match role {
            Role::Client => 0,
            Role::Device { .. } | Role::Agent { .. } => rand::random(),
        };
        Config {
            role,
            initial_lmid,
            initial_sent: 0,
            initial_pid_count: 0,
            ack_policy: AckPolicy::EveryFrame,
            pid_policy: PidPolicy::FrameCount,
            max_payload: 1280,
            send_window: 256 * 1024,
            realm_send_buffer: 64 * 1024,
            max_realms: 256,
            reorder_buffer: 512 * 1024,
            event_buffer: 1024 * 1024,
            heartbeat_interval: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            rto_initial: Duration::from_secs(1),
            // Peers ack at once (or coalesce for about 10 ms); the RTT estimate raises the
            // timeout on slower paths. 200 ms (TCP's floor) cost loopback and LAN tunnels
            // most of their throughput at a few percent loss.
            rto_min: Duration::from_millis(50),
            rto_max: Duration::from_secs(10),
            max_retransmits: 10,
            auth_timeout: Duration::from_secs(10),
            status_nul: false,
        }
    }

    /// Defaults for a client.
    pub fn client() -> Self {
        Config::new(Role::Client)
    }

    /// Defaults for a device that requires `required_sign` (if any).
    pub fn device(required_sign: Option<Bytes>) -> Self {
        Config::new(Role::Device { required_sign })
    }

    /// Defaults for a relay agent handing out `sign`.
    pub fn agent(sign: Bytes) -> Self {
        Config::new(Role::Agent { sign })
    }
}
