//! The garbage the `garbage` load sends: random bytes and malformed RTSP and HTTP requests
//! (bad request lines, oversized and too many headers, control characters in header values,
//! multibyte UTF-8 in Digest parameters, bad `Content-Length`s, stray interleaved frames),
//! and the endless request heads of the `slowloris` load.

use super::{Proto, Rng, Target};

/// The kinds of garbage, in the order [`garbage`] takes them.
pub const KINDS: &[&str] = &[
    "random-bytes",
    "bad-request-line",
    "huge-header",
    "many-headers",
    "control-chars",
    "utf8-digest",
    "bad-content-length",
    "bad-interleaved",
];

/// One piece of garbage: its kind (an entry of [`KINDS`]) and bytes.
#[derive(Clone, Debug)]
pub struct Garbage {
    /// The entry of [`KINDS`].
    pub kind: &'static str,
    /// What to send.
    pub bytes: Vec<u8>,
}

/// Garbage of kind `KINDS[kind % KINDS.len()]` for the server speaking `proto` (a variant
/// chosen by `rng`).
pub fn garbage(kind: usize, proto: Proto, t: &Target, rng: &mut Rng) -> Garbage {
    let kind = KINDS[kind % KINDS.len()];
    let url = t.rtsp_url();
    let http_host = t.http.to_string();
    // A request line and the first header, to which each kind adds its part.
    let start = match proto {
        Proto::Rtsp => format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 7\r\n"),
        Proto::Http => format!("GET /api/streams HTTP/1.1\r\nHost: {http_host}\r\n"),
    };
    let mut b: Vec<u8> = Vec::new();
    match kind {
        "random-bytes" => {
            let n = 1 + rng.below(4096);
            b = rng.bytes(n);
        }
        "bad-request-line" => {
            let lines: &[&[u8]] = match proto {
                Proto::Rtsp => &[
                    b"DESCRIBE\r\n\r\n",
                    b"DESCRIBE rtsp://x/y\r\nCSeq: 1\r\n\r\n",
                    b"DESCRIBE  RTSP/1.0\r\nCSeq: 1\r\n\r\n",
                    b"FROB rtsp://127.0.0.1/cam RTSP/1.0\r\nCSeq: 1\r\n\r\n",
                    b"DESCRIBE rtsp://127.0.0.1/cam RTSP/2.7\r\nCSeq: 1\r\n\r\n",
                    b"DESCRIBE rtsp://127.0.0.1/%zz%ff%00 RTSP/1.0\r\nCSeq: 1\r\n\r\n",
                    b"DESCRIBE rtsp://127.0.0.1/\xff\xfe\xc3 RTSP/1.0\r\nCSeq: 1\r\n\r\n",
                    b"DESCRIBE rtsp://127.0.0.1/cam RTSP/1.0 and more\r\nCSeq: x\r\n\r\n",
                    b"\r\n\r\n\r\n\r\n",
                    b"SETUP rtsp://127.0.0.1/cam/trackID=99999999999999999999 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP/TCP;interleaved=300-301\r\n\r\n",
                    b"PLAY * RTSP/1.0\r\nCSeq: 1\r\nSession: ../../../etc\r\n\r\n",
                ],
                Proto::Http => &[
                    b"GET\r\n\r\n",
                    b"GET /api/streams\r\n\r\n",
                    b"GET /api/streams HTTP/9.9\r\nHost: x\r\n\r\n",
                    b"G\x00T / HTTP/1.1\r\nHost: x\r\n\r\n",
                    b"GET http://[::1/ HTTP/1.1\r\nHost: x\r\n\r\n",
                    b"GET /api/frame.jpeg?src=%ff%fe%zz HTTP/1.1\r\nHost: x\r\n\r\n",
                    b"GET /\xff\xfe\xc3 HTTP/1.1\r\nHost: x\r\n\r\n",
                    b"\r\n\r\n\r\n\r\n",
                    b"DESCRIBE rtsp://127.0.0.1/cam RTSP/1.0\r\nCSeq: 1\r\n\r\n",
                ],
            };
            b.extend_from_slice(lines[rng.below(lines.len())]);
        }
        "huge-header" => {
            // Past the 16 KiB head cap.
            b.extend_from_slice(start.as_bytes());
            b.extend_from_slice(b"X-Huge: ");
            b.extend(std::iter::repeat_n(b'a', 20_000 + rng.below(20_000)));
            b.extend_from_slice(b"\r\n\r\n");
        }
        "many-headers" => {
            b.extend_from_slice(start.as_bytes());
            for i in 0..(100 + rng.below(1500)) {
                b.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
            }
            b.extend_from_slice(b"\r\n");
        }
        "control-chars" => {
            let values: &[&[u8]] = &[
                b"a\x01b",
                b"\x1b[31mred\x1b[0m",
                b"nul\x00here",
                b"bare\rCR",
                b"del\x7f",
                b"tab\tok\x0bvt",
            ];
            b.extend_from_slice(start.as_bytes());
            b.extend_from_slice(b"User-Agent: ");
            b.extend_from_slice(values[rng.below(values.len())]);
            b.extend_from_slice(b"\r\n\r\n");
        }
        "utf8-digest" => {
            let auths: &[&str] = &[
                "Digest username=\"viewer\", realm=\"camgate\", nonce=\"€€€€€€€€\", uri=\"URL\", response=\"00000000000000000000000000000000\"",
                "Digest username=\"€\", realm=\"€€\", nonce=\"€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€\", uri=\"URL\", response=\"€€€€€€€€€€€\", qop=auth, nc=€€, cnonce=\"€\"",
                "Digest username=\"viewer\", realm=\"camgate\", nonce=\"ä\", uri=\"rtsp://€/ü\", response=\"0123456789abcdef0123456789abcdeé\", qop=auth, nc=0000000€, cnonce=\"x\"",
                "Digest nonce=\"\u{1F600}\u{1F600}\u{1F600}\u{1F600}\", username=\"\u{1F600}\"",
                "Digest username=\"viewer\", realm=\"camgate\", nonce=\"€€€€€€€€\", uri=\"URL\", response=\"00000000000000000000000000000000\", qop=auth, nc=ffffffff, cnonce=\"€\"",
                "Basic €€€€€€€€",
                "Basic //79/w==",
                "Digest \"\\",
            ];
            let a = auths[rng.below(auths.len())].replace("URL", &url);
            b.extend_from_slice(start.as_bytes());
            b.extend_from_slice(format!("Authorization: {a}\r\n\r\n").as_bytes());
        }
        "bad-content-length" => {
            let variants: &[&str] = &[
                "Content-Length: -1\r\n\r\n",
                "Content-Length: 18446744073709551616\r\n\r\n",
                "Content-Length: 1e3\r\n\r\nabc",
                "Content-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef",
                "Content-Length: 999999999\r\n\r\nabc",
                "Content-Length: abc\r\n\r\n",
                "Content-Length: \u{0663}\r\n\r\nabc",
                "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nzz\r\nabc\r\n",
                // An honest-looking short body: the server waits for the rest.
                "Content-Length: 10\r\n\r\nabc",
            ];
            b.extend_from_slice(start.as_bytes());
            b.extend_from_slice(variants[rng.below(variants.len())].as_bytes());
        }
        _ => {
            // "bad-interleaved": interleaved frames before any session, some cut short, then
            // a request.
            for _ in 0..(1 + rng.below(4)) {
                let len = rng.below(2000) as u16;
                b.push(b'$');
                b.push(rng.next_u64() as u8);
                b.extend_from_slice(&len.to_be_bytes());
                let n = if rng.below(4) == 0 {
                    len as usize / 2
                } else {
                    len as usize
                };
                b.extend(rng.bytes(n));
            }
            b.extend_from_slice(start.as_bytes());
            b.extend_from_slice(b"\r\n");
        }
    }
    Garbage { kind, bytes: b }
}

/// The bytes of an endless request head for `proto`: a request line, then headers
/// `X-Slow-N: ...` forever, never the blank line that would end it.
#[derive(Clone, Debug)]
pub struct SlowHead {
    line: Vec<u8>,
    pos: usize,
    header: u64,
}

impl SlowHead {
    /// The head of a DESCRIBE (RTSP) or GET /api/streams (HTTP) for `t`.
    pub fn new(proto: Proto, t: &Target) -> Self {
        let line = match proto {
            Proto::Rtsp => format!("DESCRIBE {} RTSP/1.0\r\nCSeq: 1\r\n", t.rtsp_url()),
            Proto::Http => format!("GET /api/streams HTTP/1.1\r\nHost: {}\r\n", t.http),
        };
        SlowHead {
            line: line.into_bytes(),
            pos: 0,
            header: 0,
        }
    }
}

impl Iterator for SlowHead {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        if self.pos == self.line.len() {
            self.header += 1;
            self.line = format!("X-Slow-{}: {}\r\n", self.header, self.header).into_bytes();
            self.pos = 0;
        }
        let b = self.line[self.pos];
        self.pos += 1;
        Some(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            rtsp: "127.0.0.1:8554".parse().unwrap(),
            http: "127.0.0.1:1984".parse().unwrap(),
            path: "cam".into(),
        }
    }

    #[test]
    fn every_kind_makes_bytes_for_both_servers() {
        let mut rng = Rng::new(1);
        for i in 0..KINDS.len() * 20 {
            for p in [Proto::Rtsp, Proto::Http] {
                let g = garbage(i, p, &target(), &mut rng);
                assert_eq!(g.kind, KINDS[i % KINDS.len()]);
                assert!(!g.bytes.is_empty(), "{}", g.kind);
            }
        }
    }

    #[test]
    fn slow_heads_never_end() {
        let head: Vec<u8> = SlowHead::new(Proto::Rtsp, &target()).take(5000).collect();
        assert!(head.starts_with(b"DESCRIBE rtsp://127.0.0.1:8554/cam RTSP/1.0\r\n"));
        assert!(!head.windows(4).any(|w| w == b"\r\n\r\n"));
        let head: Vec<u8> = SlowHead::new(Proto::Http, &target()).take(5000).collect();
        assert!(!head.windows(4).any(|w| w == b"\r\n\r\n"));
    }
}
