//! Shared helpers for the fuzz targets: turning one fuzzer input into a sequence of RTP
//! packets, and running them through a depacketizer while checking what comes out; the tokio
//! runtime and the Hub of the targets that run a whole server.

use bytes::Bytes;
use media::Codec;
use media::codec::nal::AvcIter;
use media::rtp::{self, RtpPacket};

/// Splits `data` into RTP packets. Each record is a control byte (bit 0: marker; bits 1-2:
/// sequence step 1, 1, 0 or 2; bits 3-4: timestamp step 0, 0, 3000 or 90000), a big-endian
/// 16-bit length, and that many payload bytes (fewer at the end of the input).
pub fn split_packets(mut data: &[u8]) -> Vec<RtpPacket> {
    let mut out = Vec::new();
    let (mut seq, mut ts) = (65_500u16, u32::MAX - 100_000);
    while let [ctl, hi, lo, rest @ ..] = data {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(rest.len());
        seq = seq.wrapping_add([1, 1, 0, 2][usize::from((ctl >> 1) & 3)]);
        ts = ts.wrapping_add([0, 0, 3000, 90_000][usize::from((ctl >> 3) & 3)]);
        out.push(RtpPacket {
            payload_type: 96,
            sequence: seq,
            timestamp: ts,
            ssrc: 1,
            marker: ctl & 1 == 1,
            payload: Bytes::copy_from_slice(&rest[..len]),
        });
        data = &rest[len..];
    }
    out
}

/// Feeds the packets of `data` to a depacketizer for `codec` and checks every frame.
pub fn depacketize(codec: &Codec, data: &[u8]) {
    let mut d = rtp::depacketizer(codec, 0);
    for pkt in split_packets(data) {
        let _ = d.push(&pkt);
        while let Some(f) = d.pull() {
            assert_eq!(f.track, 0);
            match codec {
                Codec::H264 { .. } | Codec::H265 { .. } => {
                    let mut it = AvcIter::new(&f.data);
                    assert!(it.by_ref().all(|u| !u.is_empty()));
                    assert!(!it.truncated());
                }
                Codec::Jpeg => {
                    assert!(f.data.starts_with(&[0xff, 0xd8]));
                    assert!(f.data.ends_with(&[0xff, 0xd9]));
                }
                Codec::G711 { .. } => assert!(!f.data.is_empty()),
                Codec::Aac { .. } => assert!(f.data.len() < 8192),
            }
        }
    }
}

/// Reads a fuzzer input front to back; runs dry as zeros.
pub struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Input(data)
    }

    /// The next byte (0 once the input is used up).
    pub fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    /// A little-endian u16.
    pub fn u16_le(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    /// A little-endian u32.
    pub fn u32_le(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// A big-endian u32.
    pub fn u32_be(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// The next `n` bytes (fewer at the end).
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (b, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        b
    }

    /// A length byte (capped at `max`), then that many bytes.
    pub fn sized(&mut self, max: usize) -> &'a [u8] {
        let n = usize::from(self.u8()).min(max);
        self.take(n)
    }

    /// Everything not read yet (consumed).
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.0)
    }

    /// True once the input is used up.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The runtime of the targets that run a server: two workers, time and I/O, made once. Also
/// makes writes to a closed socket fail with EPIPE instead of killing the process, as they do
/// in camgate (a Rust program ignores SIGPIPE before `main`; libFuzzer's `main` does not).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        // SAFETY: setting a signal's disposition to "ignore" has no handler to run.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    })
}

/// A Hub with one preloaded stream `cam` of `source`, on [`runtime`].
pub fn hub_with(source: std::sync::Arc<dyn media::Source>) -> std::sync::Arc<media::hub::Hub> {
    let _guard = runtime().enter();
    let hub = media::hub::Hub::new();
    hub.add_stream(
        "cam",
        source,
        media::hub::StreamOptions {
            preload: true,
            ..media::hub::StreamOptions::default()
        },
    );
    hub
}
