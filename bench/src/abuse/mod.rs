//! The loads of the abuse generator (`soak-abuse`): slow request heads ([`slowloris`]),
//! malformed requests ([`garbage`]), password guessing ([`guess`]) and connect/close churn
//! ([`churn`]) against one camgate, each from its own loopback source addresses, with shared
//! counters ([`counters`]).

pub mod churn;
pub mod counters;
pub mod garbage;
pub mod guess;
pub mod net;
pub mod payloads;
pub mod slowloris;

use std::net::SocketAddr;

/// Where the loads go: one camgate's RTSP and HTTP ports and a stream it serves.
#[derive(Clone, Debug)]
pub struct Target {
    /// The RTSP server.
    pub rtsp: SocketAddr,
    /// The HTTP API.
    pub http: SocketAddr,
    /// The stream path the RTSP requests name (a configured camera).
    pub path: String,
}

impl Target {
    /// The stream's URL, `rtsp://HOST:PORT/PATH`.
    pub fn rtsp_url(&self) -> String {
        format!("rtsp://{}/{}", self.rtsp, self.path)
    }

    /// The address of the server speaking `proto`.
    pub fn addr(&self, proto: Proto) -> SocketAddr {
        match proto {
            Proto::Rtsp => self.rtsp,
            Proto::Http => self.http,
        }
    }
}

/// Which of camgate's servers a connection talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Proto {
    /// The RTSP server.
    Rtsp,
    /// The HTTP API.
    Http,
}

impl Proto {
    /// The protocol of the `n`-th connection of a load that alternates: RTSP, HTTP, RTSP...
    pub fn alternating(n: usize) -> Proto {
        if n.is_multiple_of(2) {
            Proto::Rtsp
        } else {
            Proto::Http
        }
    }

    /// `rtsp` or `http`.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Rtsp => "rtsp",
            Proto::Http => "http",
        }
    }
}

/// A small xorshift64* generator (no cryptographic quality needed for garbage).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// Seeded from the clock and `salt`.
    pub fn new(salt: u64) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Rng((nanos ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_stays_in_range() {
        let mut r = Rng::new(7);
        assert!((0..1000).all(|_| r.below(5) < 5));
        assert_eq!(r.below(0), 0);
        assert_eq!(r.bytes(33).len(), 33);
    }
}
