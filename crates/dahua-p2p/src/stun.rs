//! The "inverted STUN" hole punch: RFC 5389-shaped Binding messages whose every byte is
//! inverted (`b ^ 0xFF`) on the wire.
//!
//! | message | decoded head | size | attributes |
//! |---|---|---|---|
//! | Binding Request (client → device) | `00 01 00 18` | 44 | ICE-CONTROLLING(AID), 0x0004 device public addr |
//! | Binding Success (answer to the device's request) | `01 01 00 18` | 44 | ICE-CONTROLLED(AID), 0x0004 device LAN addr |
//! | Binding Confirm | `01 01 00 0c` | 32 | ICE-CONTROLLED(AID) |
//! | dh-p2p's confirm (type-1 path) | `01 01 00 0c` | 44 | as Success, but the length field says 12 |
//!
//! [`StunMessage`] keeps the header's length field as read (it does not have to match the
//! attributes: dh-p2p's 44-byte confirm says 12) and keeps attributes as raw TLVs, so bad or
//! missing address attributes (devices don't check them) parse, and every parsed message writes
//! back byte for byte. Attributes are read up to the end of the datagram, not the length field;
//! a trailing fragment too short for a TLV header is ignored, and a TLV cut short keeps the bytes
//! that are there.
//!
//! The 2020 relay flow exchanged the same messages *un-inverted* through the agent:
//! [`StunMessage::parse_plain`] and [`relay_plain_reply`].

use std::net::{Ipv4Addr, SocketAddrV4};

use thiserror::Error;

use crate::addr::Aid;
use text::hex_excerpt;

/// Binding Request.
pub const BINDING_REQUEST: u16 = 0x0001;
/// Binding Success Response (also the type of the confirm messages).
pub const BINDING_SUCCESS: u16 = 0x0101;
/// ICE-CONTROLLING: the client's AID in its requests.
pub const ATTR_ICE_CONTROLLING: u16 = 0x802a;
/// ICE-CONTROLLED: the AID in responses and confirms.
pub const ATTR_ICE_CONTROLLED: u16 = 0x8029;
/// The address attribute (RFC 3489 numbering: SOURCE-ADDRESS; MAPPED-ADDRESS layout).
pub const ATTR_ADDRESS: u16 = 0x0004;
/// The RFC 5389 magic cookie, as in the captures (dh-p2p sends random bytes instead).
pub const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
/// STUN header size.
pub const HEADER_LEN: usize = 20;

/// One attribute, as a raw type-length-value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Attribute {
    /// Attribute type.
    pub typ: u16,
    /// Value bytes (without padding).
    pub value: Vec<u8>,
}

/// A (decoded, i.e. un-inverted) STUN message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StunMessage {
    /// Message type ([`BINDING_REQUEST`], [`BINDING_SUCCESS`]).
    pub msg_type: u16,
    /// The header's length field, as sent (not necessarily the attributes' size).
    pub length: u16,
    /// Magic cookie bytes.
    pub cookie: [u8; 4],
    /// Transaction ID.
    pub txid: [u8; 12],
    /// Attributes in order.
    pub attributes: Vec<Attribute>,
}

/// A datagram that is not a STUN message.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("{encoding} STUN: {why} ({len} bytes: {excerpt})")]
pub struct StunError {
    /// "inverted" or "plain".
    pub encoding: &'static str,
    /// What is wrong.
    pub why: &'static str,
    /// Datagram length.
    pub len: usize,
    /// Hex of the datagram as received.
    pub excerpt: String,
}

/// Whether the address attribute is the punch target (request) or the device's LAN address
/// (success) is only convention; both are written the same way.
fn address_value(addr: SocketAddrV4) -> Vec<u8> {
    let mut v = vec![0x00, 0x01];
    v.extend_from_slice(&addr.port().to_be_bytes());
    v.extend_from_slice(&addr.ip().octets());
    v
}

fn aid_attr(typ: u16, aid: Aid) -> Attribute {
    Attribute {
        typ,
        value: aid.0.to_vec(),
    }
}

impl StunMessage {
    /// A message whose length field matches its attributes.
    pub fn new(msg_type: u16, cookie: [u8; 4], txid: [u8; 12], attributes: Vec<Attribute>) -> Self {
        let mut m = StunMessage {
            msg_type,
            length: 0,
            cookie,
            txid,
            attributes,
        };
        m.length = m.attributes_len() as u16;
        m
    }

    /// The client's Binding Request toward the device (44 bytes): ICE-CONTROLLING(AID) and the
    /// device's public address.
    pub fn binding_request(
        cookie: [u8; 4],
        txid: [u8; 12],
        aid: Aid,
        device_public: SocketAddrV4,
    ) -> Self {
        Self::new(
            BINDING_REQUEST,
            cookie,
            txid,
            vec![
                aid_attr(ATTR_ICE_CONTROLLING, aid),
                Attribute {
                    typ: ATTR_ADDRESS,
                    value: address_value(device_public),
                },
            ],
        )
    }

    /// The answer to the device's Binding Request (44 bytes): the device's transaction ID,
    /// ICE-CONTROLLED(AID) and the device's LAN address.
    pub fn binding_success(
        cookie: [u8; 4],
        device_txid: [u8; 12],
        aid: Aid,
        device_lan: SocketAddrV4,
    ) -> Self {
        Self::new(
            BINDING_SUCCESS,
            cookie,
            device_txid,
            vec![
                aid_attr(ATTR_ICE_CONTROLLED, aid),
                Attribute {
                    typ: ATTR_ADDRESS,
                    value: address_value(device_lan),
                },
            ],
        )
    }

    /// The Binding Confirm (32 bytes, `fe fe ff f3` on the wire): own cookie and transaction
    /// ID, ICE-CONTROLLED(AID).
    pub fn binding_confirm(cookie: [u8; 4], txid: [u8; 12], aid: Aid) -> Self {
        Self::new(
            BINDING_SUCCESS,
            cookie,
            txid,
            vec![aid_attr(ATTR_ICE_CONTROLLED, aid)],
        )
    }

    /// dh-p2p's 44-byte confirm of its type-1 path: a Binding Success with an address
    /// attribute whose length field nevertheless says 12.
    pub fn binding_confirm_dhp2p(
        cookie: [u8; 4],
        txid: [u8; 12],
        aid: Aid,
        addr: SocketAddrV4,
    ) -> Self {
        let mut m = Self::binding_success(cookie, txid, aid, addr);
        m.length = 12;
        m
    }

    /// Size of the attributes when written (values padded to 4 bytes).
    pub fn attributes_len(&self) -> usize {
        self.attributes
            .iter()
            .map(|a| 4 + a.value.len().div_ceil(4) * 4)
            .sum()
    }

    /// The value of the first attribute of this type.
    pub fn attribute(&self, typ: u16) -> Option<&[u8]> {
        self.attributes
            .iter()
            .find(|a| a.typ == typ)
            .map(|a| a.value.as_slice())
    }

    /// The AID from ICE-CONTROLLING or ICE-CONTROLLED, whichever comes first and is 8 bytes.
    pub fn aid(&self) -> Option<Aid> {
        self.attributes
            .iter()
            .filter(|a| a.typ == ATTR_ICE_CONTROLLING || a.typ == ATTR_ICE_CONTROLLED)
            .find_map(|a| <[u8; 8]>::try_from(a.value.as_slice()).ok().map(Aid))
    }

    /// Whether the message carries ICE-CONTROLLING (the sender is the controlling agent).
    pub fn is_controlling(&self) -> bool {
        self.attribute(ATTR_ICE_CONTROLLING).is_some()
    }

    /// The IPv4 address in attribute 0x0004, if it is well formed (family 1, 8 bytes).
    pub fn address(&self) -> Option<SocketAddrV4> {
        match self.attribute(ATTR_ADDRESS)? {
            [_, 0x01, p0, p1, a, b, c, d] => Some(SocketAddrV4::new(
                Ipv4Addr::new(*a, *b, *c, *d),
                u16::from_be_bytes([*p0, *p1]),
            )),
            _ => None,
        }
    }

    /// The decoded (un-inverted) bytes.
    pub fn to_plain_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.attributes_len());
        out.extend_from_slice(&self.msg_type.to_be_bytes());
        out.extend_from_slice(&self.length.to_be_bytes());
        out.extend_from_slice(&self.cookie);
        out.extend_from_slice(&self.txid);
        for a in &self.attributes {
            out.extend_from_slice(&a.typ.to_be_bytes());
            out.extend_from_slice(&(a.value.len() as u16).to_be_bytes());
            out.extend_from_slice(&a.value);
            out.resize(out.len() + (4 - a.value.len() % 4) % 4, 0);
        }
        out
    }

    /// The wire bytes: every byte inverted.
    pub fn to_inverted_bytes(&self) -> Vec<u8> {
        let mut b = self.to_plain_bytes();
        invert(&mut b);
        b
    }

    /// Parses an inverted datagram (as received).
    pub fn parse_inverted(datagram: &[u8]) -> Result<Self, StunError> {
        Self::parse_decoded(&inverted(datagram), datagram, "inverted")
    }

    /// Parses a plain (non-inverted) datagram.
    pub fn parse_plain(datagram: &[u8]) -> Result<Self, StunError> {
        Self::parse_decoded(datagram, datagram, "plain")
    }

    fn parse_decoded(b: &[u8], wire: &[u8], encoding: &'static str) -> Result<Self, StunError> {
        let err = |why| StunError {
            encoding,
            why,
            len: wire.len(),
            excerpt: hex_excerpt(wire),
        };
        if b.len() < HEADER_LEN {
            return Err(err("shorter than the 20-byte header"));
        }
        if b[0] & 0xc0 != 0 {
            return Err(err("the two top bits of the message type are not zero"));
        }
        let mut attributes = Vec::new();
        let mut rest = &b[HEADER_LEN..];
        while rest.len() >= 4 {
            let typ = u16::from_be_bytes([rest[0], rest[1]]);
            let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
            let value = &rest[4..];
            let take = len.min(value.len());
            attributes.push(Attribute {
                typ,
                value: value[..take].to_vec(),
            });
            let padded = (len.div_ceil(4) * 4).min(value.len());
            rest = &value[padded..];
        }
        Ok(StunMessage {
            msg_type: u16::from_be_bytes([b[0], b[1]]),
            length: u16::from_be_bytes([b[2], b[3]]),
            cookie: b[4..8].try_into().expect("4 bytes"),
            txid: b[8..20].try_into().expect("12 bytes"),
            attributes,
        })
    }
}

/// Inverts every byte in place (the transform is its own inverse).
pub fn invert(bytes: &mut [u8]) {
    for b in bytes {
        *b = !*b;
    }
}

/// A copy with every byte inverted.
pub fn inverted(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().map(|b| !b).collect()
}

/// The 2020 relay flow's answer to a plain Binding Request: the request with its type set to
/// `01 01` and the 8 bytes at offset 24 (the AID value) zeroed. `None` if shorter than 32 bytes.
pub fn relay_plain_reply(request: &[u8]) -> Option<Vec<u8>> {
    if request.len() < 32 {
        return None;
    }
    let mut out = request.to_vec();
    out[..2].copy_from_slice(&BINDING_SUCCESS.to_be_bytes());
    out[24..32].fill(0);
    Some(out)
}
