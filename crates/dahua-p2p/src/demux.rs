//! Sorting the datagrams that arrive on one UDP socket: PTCP frames, inverted-STUN punches
//! and DH-HTTP messages share the sockets S_dev and S_rly, so a reader looks at the first
//! bytes to decide which core gets each datagram. Also the hex excerpt used in error messages.

/// What a datagram is, judged by its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Starts with the ASCII magic `PTCP`.
    Ptcp,
    /// First byte `0xFF` or `0xFE`: a bit-inverted STUN message (`00 01` / `01 01` inverted).
    InvertedStun,
    /// An HTTP-like text message: `HTTP` (a response) or a request verb (`DH…`, `NF…`,
    /// `GET`, `POST`).
    Http,
    /// A non-inverted STUN Binding Request/Response whose length field matches the datagram
    /// (the 2020 relay flow, where STUN arrived through the agent un-inverted).
    PlainStun,
    /// Anything else (including empty datagrams).
    Unknown,
}

/// Classifies a datagram by its first bytes.
pub fn classify(datagram: &[u8]) -> Kind {
    match datagram {
        [b'P', b'T', b'C', b'P', ..] => Kind::Ptcp,
        [0xff | 0xfe, ..] => Kind::InvertedStun,
        [0x00 | 0x01, 0x01, hi, lo, ..]
            if datagram.len() >= 20
                && usize::from(u16::from_be_bytes([*hi, *lo])) == datagram.len() - 20 =>
        {
            Kind::PlainStun
        }
        d if d.starts_with(b"HTTP")
            || d.starts_with(b"DH")
            || d.starts_with(b"NF")
            || d.starts_with(b"GET")
            || d.starts_with(b"POST") =>
        {
            Kind::Http
        }
        _ => Kind::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ptcp_magic_is_ptcp() {
        assert_eq!(classify(b"PTCP\0\0\0\0"), Kind::Ptcp);
    }

    #[test]
    fn inverted_stun_request_and_response() {
        assert_eq!(classify(&[0xff, 0xfe, 0xff, 0xe7]), Kind::InvertedStun);
        assert_eq!(classify(&[0xfe, 0xfe, 0xff, 0xf3]), Kind::InvertedStun);
    }

    #[test]
    fn http_requests_and_responses() {
        for d in [
            &b"HTTP/1.1 200 OK\r\n"[..],
            b"DHGET /probe/p2psrv HTTP/1.1\r\n",
            b"DHPOST /x HTTP/1.1\r\n",
            b"NFGET /online/stun HTTP/1.1\r\n",
            b"NFPOST /x HTTP/1.1\r\n",
            b"GET / HTTP/1.1\r\n",
            b"POST / HTTP/1.1\r\n",
        ] {
            assert_eq!(classify(d), Kind::Http, "{:?}", String::from_utf8_lossy(d));
        }
    }

    #[test]
    fn plain_stun_needs_a_matching_length() {
        let mut d = vec![0u8; 44];
        d[..4].copy_from_slice(&[0x00, 0x01, 0x00, 0x18]);
        assert_eq!(classify(&d), Kind::PlainStun);
        d[0] = 0x01;
        assert_eq!(classify(&d), Kind::PlainStun);
        assert_eq!(classify(&d[..40]), Kind::Unknown);
    }

    #[test]
    fn others_are_unknown() {
        assert_eq!(classify(b""), Kind::Unknown);
        assert_eq!(classify(&[0x00, 0x01, 0x00, 0x18]), Kind::Unknown);
        assert_eq!(classify(b"PTC"), Kind::Unknown);
        assert_eq!(classify(b"hello"), Kind::Unknown);
    }
}
