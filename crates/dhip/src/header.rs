//! The 32-byte DHIP packet header (all little-endian) and recognition of what a peer speaks
//! from its first bytes (DHIP, the legacy 37777 "DVRIP" binary protocol, or HTTP).

use bytes::{BufMut, BytesMut};

use crate::FrameError;

/// Header length in bytes.
pub const HEADER_LEN: usize = 32;
/// The first eight bytes of every DHIP packet: the header size (32) and the magic `DHIP`,
/// written as raw bytes (packing the magic as a little-endian number gives `PIHD`).
pub const PREFIX: [u8; 8] = [0x20, 0, 0, 0, b'D', b'H', b'I', b'P'];

/// One packet header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// Session number (0 before login).
    pub session: u32,
    /// Request id; equals the JSON `id` (for pushes, the id of the subscribing request).
    pub request_id: u32,
    /// Body bytes that follow this header (`[16]`).
    pub package_length: u32,
    /// Fragment index (`[20]`), 0 for single packets.
    pub package_index: u32,
    /// `[24]`: the JSON length of this packet (python-dhip), or the total message length
    /// across fragments (DahuaConsole).
    pub message_length: u32,
    /// `[28]`: binary bytes after the JSON in this packet.
    pub data_length: u32,
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

impl Header {
    /// Parses the first 32 bytes of `b`.
    pub fn parse(b: &[u8]) -> Result<Header, FrameError> {
        if b.len() < HEADER_LEN {
            return Err(FrameError::Truncated { have: b.len() });
        }
        if b[..8] != PREFIX {
            return Err(FrameError::BadPrefix {
                protocol: Protocol::recognise(b),
                hex: hex::encode(&b[..8]),
            });
        }
        Ok(Header {
            session: u32_at(b, 8),
            request_id: u32_at(b, 12),
            package_length: u32_at(b, 16),
            package_index: u32_at(b, 20),
            message_length: u32_at(b, 24),
            data_length: u32_at(b, 28),
        })
    }

    /// Appends the 32 header bytes to `out`.
    pub fn write(&self, out: &mut BytesMut) {
        out.put_slice(&PREFIX);
        for v in [
            self.session,
            self.request_id,
            self.package_length,
            self.package_index,
            self.message_length,
            self.data_length,
        ] {
            out.put_u32_le(v);
        }
    }

    /// The header as bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = BytesMut::with_capacity(HEADER_LEN);
        self.write(&mut out);
        let mut a = [0u8; HEADER_LEN];
        a.copy_from_slice(&out);
        a
    }
}

/// What a peer's first bytes look like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// `20 00 00 00 "DHIP"`.
    Dhip,
    /// The legacy 37777 binary protocol: a known command byte, header version `0x60` at
    /// byte 3.
    Dvrip,
    /// An HTTP request or response (RPC2/CGI on the web port).
    Http,
    /// Anything else.
    Unknown,
}

/// First bytes of DVRIP commands (login, replies, keep-alive, JSON, media, logout, discovery).
const DVRIP_COMMANDS: [u8; 13] = [
    0xa0, 0xa1, 0xa3, 0xb0, 0xb1, 0xb3, 0xbc, 0xf1, 0xf4, 0xf6, 0x11, 0x0a, 0x0b,
];

impl Protocol {
    /// Recognises the protocol from the first bytes (8 are enough).
    pub fn recognise(b: &[u8]) -> Protocol {
        if b.len() >= 8 && b[..8] == PREFIX {
            return Protocol::Dhip;
        }
        for m in [
            &b"HTTP/"[..],
            b"GET ",
            b"POST ",
            b"PUT ",
            b"HEAD ",
            b"OPTIONS ",
        ] {
            if b.starts_with(m) {
                return Protocol::Http;
            }
        }
        if b.len() >= 4 && b[3] == 0x60 && DVRIP_COMMANDS.contains(&b[0]) {
            return Protocol::Dvrip;
        }
        Protocol::Unknown
    }

    /// A short description for error messages.
    pub fn describe(self) -> &'static str {
        match self {
            Protocol::Dhip => "DHIP",
            Protocol::Dvrip => {
                "the legacy 37777 binary protocol (DVRIP), not DHIP; try port 5000 or 35000"
            }
            Protocol::Http => "HTTP, not DHIP (the web port; use RPC2 over HTTP instead)",
            Protocol::Unknown => "neither DHIP, DVRIP nor HTTP",
        }
    }
}
