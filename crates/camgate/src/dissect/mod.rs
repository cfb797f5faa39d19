//! `camgate dissect`: decodes protocol bytes, given as hex or read from a pcap/pcapng capture,
//! into one JSON object per line per message or packet, so that a user can compare what a
//! camera sends with what camgate understood, and find the packet in Wireshark (pcap objects
//! carry the frame number, time and addresses).
//!
//! Kinds: `rtsp` (an RTSP byte stream with interleaved `$` frames), `rtp` (one RTP or compound
//! RTCP packet per datagram), `sdp` (a session description; from a capture, the SDP bodies of
//! RTSP messages), Dahua P2P's `dh-http` (DH-HTTP over UDP), `stun` (its inverted STUN)
//! and `ptcp` (PTCP frames), one datagram each, and Dahua's `dhip` (DHIP messages from a TCP
//! stream, or one per UDP discovery datagram) and `dhav` (DHAV packets of a `.dav` file or an
//! RPC_Loadfile stream). `--file` reads raw bytes (a `.dav` file, a saved TCP stream).
//!
//! With `--hex`, bad input is an error ([`DissectError`]) naming the offset and showing the
//! offending bytes. With `--pcap`, a packet that does not decode becomes an
//! `{"type":"error",...}` line and the capture goes on; without `--port`, traffic that does
//! not look like the chosen protocol (DNS, HTTP...) is skipped silently.

mod dahua;
mod dhip;
mod json;
mod pcap;
mod rtp;
mod rtsp;
mod sdp;

use std::io::Write;
use std::path::PathBuf;

pub use json::{Node, Obj};

/// What the bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DissectKind {
    /// RTSP requests and responses, with interleaved `$` frames (TCP).
    Rtsp,
    /// RTP and RTCP packets (UDP, or one packet as hex).
    Rtp,
    /// An SDP session description.
    Sdp,
    /// Dahua P2P DH-HTTP requests and responses (UDP, one message per datagram).
    DhHttp,
    /// Dahua P2P inverted STUN (UDP).
    Stun,
    /// Dahua P2P PTCP frames (UDP).
    Ptcp,
    /// Dahua DHIP messages (a TCP stream; UDP discovery datagrams).
    Dhip,
    /// Dahua DHAV media packets (a .dav file or an RPC_Loadfile body).
    Dhav,
}

impl DissectKind {
    /// Whether the kind is one message per UDP datagram.
    pub(crate) fn is_datagram(self) -> bool {
        !matches!(
            self,
            DissectKind::Rtsp | DissectKind::Sdp | DissectKind::Dhip | DissectKind::Dhav
        )
    }

    /// Decodes one datagram of a datagram kind.
    pub(crate) fn datagram(self, data: &[u8]) -> Result<Obj, Fault> {
        match self {
            DissectKind::Rtp => rtp::dissect_packet(data),
            DissectKind::DhHttp => dahua::dissect_dh_http(data),
            DissectKind::Stun => dahua::dissect_stun(data),
            DissectKind::Ptcp => dahua::dissect_ptcp(data),
            DissectKind::Rtsp | DissectKind::Sdp | DissectKind::Dhip | DissectKind::Dhav => {
                Err(Fault::new(0, "not a datagram kind"))
            }
        }
    }

    /// The protocol's name in errors.
    pub(crate) fn what(self) -> &'static str {
        match self {
            DissectKind::Rtsp => "RTSP",
            DissectKind::Rtp => "RTP",
            DissectKind::Sdp => "SDP",
            DissectKind::DhHttp => "DH-HTTP",
            DissectKind::Stun => "STUN",
            DissectKind::Ptcp => "PTCP",
            DissectKind::Dhip => "DHIP",
            DissectKind::Dhav => "DHAV",
        }
    }

    /// Whether a datagram could be of this kind (captures skip the rest without `--port`).
    pub(crate) fn looks_like(self, data: &[u8]) -> bool {
        match self {
            DissectKind::Rtp => true,
            k => dahua::looks_like(k, data),
        }
    }
}

/// `camgate dissect KIND (--hex HEX | --pcap FILE | --file FILE) [--port N]`.
#[derive(Clone, Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["hex", "pcap", "file"])))]
pub struct DissectArgs {
    /// The protocol to decode.
    #[arg(value_enum)]
    pub kind: DissectKind,
    /// The bytes as hex; whitespace and ':' between digits are ignored.
    #[arg(long, value_name = "HEX")]
    pub hex: Option<String>,
    /// A capture file (pcap or pcapng) to read TCP (rtsp, sdp, dhip, dhav) or UDP (rtp,
    /// dh-http, stun, ptcp, dhip discovery) payloads from.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// Raw bytes from a file (a .dav file, a saved TCP stream, one datagram).
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Only packets from or to this port (capture only).
    #[arg(long, value_name = "N")]
    pub port: Option<u16>,
}

/// Why dissecting failed.
#[derive(Debug, thiserror::Error)]
pub enum DissectError {
    /// `--hex` is not hex.
    #[error("bad hex at character {position}: {reason} (near {near:?})")]
    BadHex {
        /// 0-based character position.
        position: usize,
        /// What is wrong.
        reason: String,
        /// The text around the position.
        near: String,
    },
    /// Not exactly one of `--hex`, `--pcap`, `--file` was given.
    #[error("give exactly one of --hex, --pcap or --file")]
    NoInput,
    /// The capture file cannot be read or is not pcap/pcapng.
    #[error("{path}: {message}")]
    Capture {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The bytes are not a valid message of the kind.
    #[error("{what} at byte {offset}: {message}; bytes: {excerpt}")]
    Malformed {
        /// The protocol ("RTSP", "RTP", "SDP"...).
        what: &'static str,
        /// Offset of the offending bytes in the input.
        offset: usize,
        /// What is wrong.
        message: String,
        /// Hex of the offending bytes.
        excerpt: String,
    },
    /// Writing the output failed.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

impl DissectError {
    /// A malformed-input error at `offset` of `input`, with a hex excerpt from there.
    pub fn malformed(
        what: &'static str,
        input: &[u8],
        offset: usize,
        message: impl Into<String>,
    ) -> Self {
        DissectError::Malformed {
            what,
            offset,
            message: message.into(),
            excerpt: text::hex_excerpt(input.get(offset..).unwrap_or_default()),
        }
    }
}

/// Decodes the input named by `args`, writing one JSON object per line to `out`.
/// Output that stops being read (`camgate dissect ... | head`) ends the run quietly.
pub fn run(args: &DissectArgs, out: &mut dyn Write) -> Result<(), DissectError> {
    let mut buffered = std::io::BufWriter::with_capacity(64 << 10, out);
    let result = run_inner(args, &mut buffered).and_then(|()| Ok(buffered.flush()?));
    match result {
        Err(DissectError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

fn run_inner(args: &DissectArgs, out: &mut dyn Write) -> Result<(), DissectError> {
    let bytes = match (&args.hex, &args.pcap, &args.file) {
        (Some(hex), None, None) => parse_hex(hex)?,
        (None, None, Some(path)) => std::fs::read(path).map_err(|e| DissectError::Capture {
            path: path.display().to_string(),
            message: format!("cannot read: {e}"),
        })?,
        (None, Some(path), None) => {
            return pcap::dissect_file(path, args.kind, args.port, &mut |o| write_line(out, &o));
        }
        _ => return Err(DissectError::NoInput),
    };
    let mut emit = |o: Obj| write_line(out, &o);
    match args.kind {
        DissectKind::Rtsp => rtsp::dissect_all(&bytes, &mut emit),
        k @ (DissectKind::Rtp | DissectKind::DhHttp | DissectKind::Stun | DissectKind::Ptcp) => {
            emit(
                k.datagram(&bytes)
                    .map_err(|m| DissectError::malformed(k.what(), &bytes, m.offset, m.message))?,
            )
        }
        DissectKind::Sdp => emit(
            sdp::dissect(&bytes)
                .map_err(|m| DissectError::malformed("SDP", &bytes, m.offset, m.message))?,
        ),
        DissectKind::Dhip if !bytes.starts_with(&::dhip::header::PREFIX) => {
            // Not a DHIP stream: a bare discovery reply, or an error naming what it is.
            match dhip::dissect_datagram(&bytes) {
                Ok(o) => emit(o),
                Err(_) => Err(DissectError::malformed(
                    "DHIP",
                    &bytes,
                    0,
                    format!(
                        "not DHIP: the bytes look like {}",
                        ::dhip::header::Protocol::recognise(&bytes).describe()
                    ),
                )),
            }
        }
        DissectKind::Dhip => dhip::dissect_stream(&bytes, &mut emit),
        DissectKind::Dhav => dhip::dissect_dhav(bytes::Bytes::from(bytes), &mut emit),
    }
}

/// Writes `o` as one line of JSON.
fn write_line(out: &mut dyn Write, o: &Obj) -> Result<(), DissectError> {
    serde_json::to_writer(&mut *out, o).map_err(std::io::Error::from)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// A decoding failure inside a message: where and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Fault {
    /// Offset of the offending bytes in the message.
    pub(crate) offset: usize,
    /// What is wrong.
    pub(crate) message: String,
}

impl Fault {
    pub(crate) fn new(offset: usize, message: impl Into<String>) -> Self {
        Fault {
            offset,
            message: message.into(),
        }
    }
}

/// Parses hex digits, ignoring whitespace and ':' (as Wireshark's "copy as hex" gives them).
pub fn parse_hex(text: &str) -> Result<Vec<u8>, DissectError> {
    let near = |pos: usize| {
        let start = text
            .char_indices()
            .map(|(i, _)| i)
            .filter(|&i| i <= pos)
            .nth_back(8)
            .unwrap_or(0);
        text[start..].chars().take(20).collect::<String>()
    };
    let mut out = Vec::with_capacity(text.len() / 2);
    let mut high: Option<(usize, u8)> = None;
    for (pos, c) in text.char_indices() {
        if c.is_whitespace() || c == ':' {
            if let Some((p, _)) = high {
                return Err(DissectError::BadHex {
                    position: p,
                    reason: "a byte is split by a separator (odd number of digits)".into(),
                    near: near(p),
                });
            }
            continue;
        }
        let Some(v) = c.to_digit(16) else {
            return Err(DissectError::BadHex {
                position: pos,
                reason: format!("{c:?} is not a hex digit"),
                near: near(pos),
            });
        };
        match high.take() {
            None => high = Some((pos, v as u8)),
            Some((_, h)) => out.push(h << 4 | v as u8),
        }
    }
    if let Some((p, _)) = high {
        return Err(DissectError::BadHex {
            position: p,
            reason: "odd number of hex digits".into(),
            near: near(p),
        });
    }
    if out.is_empty() {
        return Err(DissectError::BadHex {
            position: 0,
            reason: "no bytes given".into(),
            near: String::new(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_accepts_whitespace_and_colons() {
        assert_eq!(
            parse_hex("80 60:00\n01\tAb").unwrap(),
            vec![0x80, 0x60, 0, 1, 0xab]
        );
    }

    #[test]
    fn hex_errors_name_the_position() {
        let e = parse_hex("8060zz").unwrap_err();
        assert!(e.to_string().contains("character 4"), "{e}");
        assert!(e.to_string().contains("'z'"), "{e}");
        let e = parse_hex("806").unwrap_err();
        assert!(e.to_string().contains("odd number"), "{e}");
        let e = parse_hex("80 6 0").unwrap_err();
        assert!(e.to_string().contains("split"), "{e}");
        assert!(parse_hex("  ").is_err());
    }
}
