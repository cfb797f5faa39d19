//! The address-like values carried in p2p-channel bodies: the 8-byte `Identify` (the AID that
//! the inverted-STUN punch repeats), `LocalAddr` lists (`ip[,ip…]:port`) and the `IpEncrpt`
//! octet inversion.
//!
//! `LocalAddr` as sent by clients is one or more IPv4 candidates followed by one port
//! (`192.168.112.1,192.168.1.82:40000`). Devices answer with the same shape, and some put a
//! port on every entry (`a:1,b:2`); [`LocalAddrList::parse`] accepts both and keeps the port of
//! the last entry, which is also the address a client should use ([`LocalAddrList::last`]).

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};

use rand::Rng;
use thiserror::Error;

/// How an [`Aid`] is written in the `Identify` element.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum IdentifyStyle {
    /// Lowercase hex without zero padding, space-separated (`0 1 a 10`): SmartPSS / dh-p2p.
    #[default]
    Unpadded,
    /// Two lowercase hex digits per byte, space-separated (`00 01 0a 10`): DMSS.
    Padded,
}

/// The 8-byte association id ("AID") sent as `Identify` and echoed in the STUN ICE attributes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Aid(pub [u8; 8]);

/// A value that is not an `Identify` or `LocalAddr` string.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum AddrError {
    /// `Identify` must be exactly 8 space-separated hex bytes.
    #[error("Identify {text:?}: {why}")]
    BadIdentify { text: String, why: &'static str },
    /// `LocalAddr` must be `ip[,ip…]:port` with IPv4 addresses.
    #[error("LocalAddr {text:?}: {why}")]
    BadLocalAddr { text: String, why: &'static str },
}

impl Aid {
    /// A fresh random AID.
    pub fn random(rng: &mut impl Rng) -> Self {
        Aid(rng.r#gen())
    }

    /// Formats the AID for the `Identify` element in the given style.
    pub fn format(&self, style: IdentifyStyle) -> String {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|b| match style {
                IdentifyStyle::Unpadded => format!("{b:x}"),
                IdentifyStyle::Padded => format!("{b:02x}"),
            })
            .collect();
        parts.join(" ")
    }

    /// Parses an `Identify` value in either style (1 or 2 hex digits per byte, any case,
    /// separated by whitespace).
    pub fn parse(text: &str) -> Result<Self, AddrError> {
        let bad = |why| AddrError::BadIdentify {
            text: text.to_owned(),
            why,
        };
        let mut out = [0u8; 8];
        let mut n = 0;
        for tok in text.split_ascii_whitespace() {
            if n == 8 {
                return Err(bad("more than 8 bytes"));
            }
            if tok.is_empty() || tok.len() > 2 || !tok.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(bad("each byte must be 1 or 2 hex digits"));
            }
            out[n] = u8::from_str_radix(tok, 16).map_err(|_| bad("not hex"))?;
            n += 1;
        }
        if n != 8 {
            return Err(bad("fewer than 8 bytes"));
        }
        Ok(Aid(out))
    }
}

impl fmt::Display for Aid {
    /// The unpadded form (`d4 9e 67 a8 2b d4 7e 1e`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.format(IdentifyStyle::Unpadded))
    }
}

/// `IpEncrpt`: every octet `x` becomes `255 - x`. The transform is its own inverse.
pub fn ip_encrypt(ip: Ipv4Addr) -> Ipv4Addr {
    let o = ip.octets();
    Ipv4Addr::new(!o[0], !o[1], !o[2], !o[3])
}

/// A `LocalAddr` value: IPv4 candidates sharing one UDP port.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LocalAddrList {
    /// The candidate addresses, in the order written.
    pub ips: Vec<Ipv4Addr>,
    /// The UDP port (written once, after the last address).
    pub port: u16,
}

impl LocalAddrList {
    /// A list of one address.
    pub fn single(addr: SocketAddrV4) -> Self {
        LocalAddrList {
            ips: vec![*addr.ip()],
            port: addr.port(),
        }
    }

    /// Parses `ip[,ip…]:port`. Entries may also carry their own `:port` (`a:1,b:2`); the port
    /// of the last entry wins. Whitespace around entries is ignored.
    pub fn parse(text: &str) -> Result<Self, AddrError> {
        let bad = |why| AddrError::BadLocalAddr {
            text: text.to_owned(),
            why,
        };
        let mut ips = Vec::new();
        let mut port = None;
        for entry in text.split(',') {
            let entry = entry.trim();
            let (ip, p) = match entry.rsplit_once(':') {
                Some((ip, p)) => (ip.trim(), Some(p.trim())),
                None => (entry, None),
            };
            let ip: Ipv4Addr = ip.parse().map_err(|_| bad("not an IPv4 address"))?;
            ips.push(ip);
            port = match p {
                Some(p) => Some(p.parse::<u16>().map_err(|_| bad("bad port"))?),
                None => None,
            };
        }
        let port = port.ok_or_else(|| bad("no :port after the last address"))?;
        Ok(LocalAddrList { ips, port })
    }

    /// The last candidate with the port: the address a client should try.
    pub fn last(&self) -> Option<SocketAddrV4> {
        self.ips.last().map(|ip| SocketAddrV4::new(*ip, self.port))
    }

    /// Every candidate with the port.
    pub fn all(&self) -> Vec<SocketAddrV4> {
        self.ips
            .iter()
            .map(|ip| SocketAddrV4::new(*ip, self.port))
            .collect()
    }

    /// The same list with every address passed through [`ip_encrypt`] (the port is kept:
    /// whether `IpEncrpt` also transforms it is unknown, and devices seem not to rely on it).
    pub fn ip_encrypted(&self) -> Self {
        LocalAddrList {
            ips: self.ips.iter().map(|ip| ip_encrypt(*ip)).collect(),
            port: self.port,
        }
    }
}

impl fmt::Display for LocalAddrList {
    /// `ip[,ip…]:port`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, ip) in self.ips.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{ip}")?;
        }
        write!(f, ":{}", self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identify_unpadded_drops_leading_zeros() {
        let aid = Aid([0x00, 0x01, 0x0a, 0x10, 0xab, 0xcd, 0xef, 0xff]);
        assert_eq!(aid.format(IdentifyStyle::Unpadded), "0 1 a 10 ab cd ef ff");
        assert_eq!(aid.to_string(), "0 1 a 10 ab cd ef ff");
    }

    #[test]
    fn identify_padded_has_two_digits() {
        let aid = Aid([0x00, 0x01, 0x0a, 0x10, 0xab, 0xcd, 0xef, 0xff]);
        assert_eq!(aid.format(IdentifyStyle::Padded), "00 01 0a 10 ab cd ef ff");
    }

    #[test]
    fn identify_parses_both_styles() {
        let want = Aid([0x00, 0x01, 0x0a, 0x10, 0xab, 0xcd, 0xef, 0xff]);
        assert_eq!(Aid::parse("0 1 a 10 ab cd ef ff").unwrap(), want);
        assert_eq!(Aid::parse("00 01 0A 10 AB cd ef ff").unwrap(), want);
        assert_eq!(
            Aid::parse("d4 9e 67 a8 2b d4 7e 1e").unwrap(),
            Aid([0xd4, 0x9e, 0x67, 0xa8, 0x2b, 0xd4, 0x7e, 0x1e])
        );
    }

    #[test]
    fn identify_rejects_wrong_count_and_digits() {
        assert!(Aid::parse("0 1 2 3 4 5 6").is_err());
        assert!(Aid::parse("0 1 2 3 4 5 6 7 8").is_err());
        assert!(Aid::parse("0 1 2 3 4 5 6 100").is_err());
        assert!(Aid::parse("0 1 2 3 4 5 6 zz").is_err());
        assert!(Aid::parse("").is_err());
    }

    #[test]
    fn ip_encrypt_inverts_octets_of_the_kbivms_capture() {
        let l = LocalAddrList::parse("63.87.143.254,63.87.254.173:40000").unwrap();
        assert_eq!(
            l.ip_encrypted().to_string(),
            "192.168.112.1,192.168.1.82:40000"
        );
        assert_eq!(
            ip_encrypt(ip_encrypt("10.1.2.3".parse().unwrap())).to_string(),
            "10.1.2.3"
        );
    }

    #[test]
    fn local_addr_takes_the_last_entry() {
        let l = LocalAddrList::parse("192.168.57.20,192.168.0.108:51980").unwrap();
        assert_eq!(l.last().unwrap().to_string(), "192.168.0.108:51980");
        assert_eq!(l.all().len(), 2);
        let l = LocalAddrList::parse("10.0.0.1:1, 10.0.0.2:2").unwrap();
        assert_eq!(l.last().unwrap().to_string(), "10.0.0.2:2");
    }

    #[test]
    fn local_addr_round_trips() {
        let s = "192.168.1.10,10.8.0.2,127.0.0.1:50000";
        assert_eq!(LocalAddrList::parse(s).unwrap().to_string(), s);
    }

    #[test]
    fn local_addr_rejects_missing_port_and_bad_ip() {
        assert!(LocalAddrList::parse("192.168.1.1").is_err());
        assert!(LocalAddrList::parse("192.168.1.1:x").is_err());
        assert!(LocalAddrList::parse("300.1.1.1:5").is_err());
        assert!(LocalAddrList::parse(":0").is_err());
    }
}
