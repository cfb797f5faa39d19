//! The server's RTP/RTCP UDP socket pair, and the activity clock that keeps UDP sessions alive
//! when their clients send RTCP receiver reports.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use tokio::net::UdpSocket;

/// Milliseconds since the process's first call, a cheap monotonic clock for activity stamps.
pub(crate) fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// When a session last showed it is alive (ms of `now_ms`).
pub(crate) type Activity = Arc<AtomicU64>;

/// The RTP socket (even port) and the RTCP socket (next port).
pub(crate) struct UdpPair {
    pub(crate) rtp: UdpSocket,
    pub(crate) rtcp: UdpSocket,
    peers: Mutex<HashMap<SocketAddr, Activity>>,
}

impl UdpPair {
    pub(crate) async fn bind(ip: IpAddr, port: u16) -> std::io::Result<UdpPair> {
        if port != 0 {
            let rtp = UdpSocket::bind((ip, port)).await?;
            let rtcp = UdpSocket::bind((ip, port.wrapping_add(1))).await?;
            return Ok(Self::from_sockets(rtp, rtcp));
        }
        for _ in 0..100 {
            let rtp = UdpSocket::bind((ip, 0)).await?;
            let p = rtp.local_addr()?.port();
            if p % 2 != 0 || p == u16::MAX {
                continue;
            }
            if let Ok(rtcp) = UdpSocket::bind((ip, p + 1)).await {
                return Ok(Self::from_sockets(rtp, rtcp));
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "no free even/odd UDP port pair for RTP/RTCP",
        ))
    }

    fn from_sockets(rtp: UdpSocket, rtcp: UdpSocket) -> UdpPair {
        let buf = 4 << 20;
        let _ = socket2::SockRef::from(&rtp).set_send_buffer_size(buf);
        UdpPair {
            rtp,
            rtcp,
            peers: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn ports(&self) -> (u16, u16) {
        let p = |s: &UdpSocket| s.local_addr().map(|a| a.port()).unwrap_or(0);
        (p(&self.rtp), p(&self.rtcp))
    }

    /// Registers a client's RTCP (and RTP) address so its packets refresh `activity`.
    pub(crate) fn register(&self, addrs: &[SocketAddr], activity: &Activity) {
        let mut peers = self.peers.lock().expect("udp peers");
        for a in addrs {
            peers.insert(*a, activity.clone());
        }
    }

    pub(crate) fn unregister(&self, addrs: &[SocketAddr]) {
        let mut peers = self.peers.lock().expect("udp peers");
        for a in addrs {
            peers.remove(a);
        }
    }

    fn touch(&self, from: SocketAddr) {
        if let Some(a) = self.peers.lock().expect("udp peers").get(&from) {
            a.store(now_ms(), Ordering::Relaxed);
        }
    }

    /// Reads whatever clients send (receiver reports, NAT pokes) and refreshes their sessions.
    pub(crate) async fn receive_loop(self: Arc<Self>) {
        let mut a = vec![0u8; 2048];
        let mut b = vec![0u8; 2048];
        loop {
            tokio::select! {
                r = self.rtp.recv_from(&mut a) => if let Ok((_, from)) = r { self.touch(from) },
                r = self.rtcp.recv_from(&mut b) => if let Ok((_, from)) = r { self.touch(from) },
            }
        }
    }
}
