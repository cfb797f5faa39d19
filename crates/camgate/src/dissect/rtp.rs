//! RTP (RFC 3550 §5.1) and RTCP (§6) packets as JSON. The header is parsed by
//! `media::rtp::RtpPacket::parse` and compound RTCP by `media::rtp::rtcp::parse_compound`, so
//! that `dissect` reports what the depacketizers see; the flag bits and the RTCP report
//! fields are read here.

use bytes::Bytes;
use media::rtp::RtpPacket;
use media::rtp::rtcp::{self, parse_compound};

use super::{Fault, Obj};

/// True if the second byte marks an RTCP packet type (RFC 5761 §4: 192..=223).
pub(crate) fn is_rtcp(data: &[u8]) -> bool {
    data.len() >= 2 && (192..=223).contains(&data[1])
}

/// One datagram or interleaved frame: `{"type":"rtp",...}` or `{"type":"rtcp",...}`.
pub(crate) fn dissect_packet(data: &[u8]) -> Result<Obj, Fault> {
    if is_rtcp(data) {
        Ok(Obj::new()
            .with("type", "rtcp")
            .with("packets", rtcp_packets(data)?))
    } else {
        Ok(Obj::new().with("type", "rtp").extended(rtp_fields(data)?))
    }
}

/// The RTP header fields and payload length.
pub(crate) fn rtp_fields(data: &[u8]) -> Result<Obj, Fault> {
    let pkt = RtpPacket::parse(Bytes::copy_from_slice(data))
        .map_err(|e| Fault::new(0, e.kind.to_string()))?;
    let b0 = data[0];
    let csrc_count = b0 & 0x0f;
    let csrcs: Vec<u32> = data[12..12 + 4 * usize::from(csrc_count)]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let mut o = Obj::new()
        .with("version", b0 >> 6)
        .with("padding", b0 & 0x20 != 0)
        .with("extension", b0 & 0x10 != 0)
        .with("csrc_count", csrc_count)
        .with("marker", pkt.marker)
        .with("payload_type", pkt.payload_type)
        .with("sequence", pkt.sequence)
        .with("timestamp", pkt.timestamp)
        .with("ssrc", pkt.ssrc);
    if !csrcs.is_empty() {
        o.set("csrcs", csrcs);
    }
    if b0 & 0x10 != 0 {
        let at = 12 + 4 * usize::from(csrc_count);
        let ext = &data[at..at + 4]; // checked by the parser
        o.set(
            "extension_header",
            Obj::new()
                .with("profile", u16::from_be_bytes([ext[0], ext[1]]))
                .with("words", u16::from_be_bytes([ext[2], ext[3]])),
        );
    }
    o.set("payload_len", pkt.payload.len());
    if b0 & 0x20 != 0 {
        o.set("padding_len", data[data.len() - 1]);
    }
    Ok(o)
}

/// The packets of a compound RTCP packet, with the fields of SR, RR, SDES and BYE.
pub(crate) fn rtcp_packets(data: &[u8]) -> Result<Vec<Obj>, Fault> {
    let infos = parse_compound(data).map_err(|e| Fault::new(e.offset, e.reason))?;
    let mut out = Vec::with_capacity(infos.len());
    let mut pos = 0;
    for info in infos {
        let p = &data[pos..pos + info.length];
        let mut o = Obj::new()
            .with("packet_type", info.packet_type)
            .with("name", type_name(info.packet_type))
            .with("count", info.count)
            .with("len", info.length)
            .with_opt("ssrc", info.ssrc);
        let body = &p[4..];
        match info.packet_type {
            rtcp::SR if body.len() >= 24 => {
                let ntp = u64::from_be_bytes(body[4..12].try_into().expect("8 bytes"));
                o.set("ntp_timestamp", ntp);
                o.set("ntp_unix_time", ntp_to_unix(ntp));
                o.set("rtp_timestamp", be32(&body[12..]));
                o.set("packet_count", be32(&body[16..]));
                o.set("octet_count", be32(&body[20..]));
                o.set("reports", report_blocks(&body[24..], info.count));
            }
            rtcp::RR if body.len() >= 4 => {
                o.set("reports", report_blocks(&body[4..], info.count));
            }
            rtcp::SDES => o.set("chunks", sdes_chunks(body, info.count)),
            rtcp::BYE => {
                let n = usize::from(info.count);
                let ssrcs: Vec<u32> = body.chunks_exact(4).take(n).map(be32).collect();
                o.set("ssrcs", ssrcs);
                if let Some(&len) = body.get(4 * n)
                    && let Some(r) = body.get(4 * n + 1..4 * n + 1 + usize::from(len))
                {
                    o.set("reason", String::from_utf8_lossy(r).into_owned());
                }
            }
            rtcp::APP if body.len() >= 8 => {
                o.set(
                    "app_name",
                    String::from_utf8_lossy(&body[4..8]).into_owned(),
                );
            }
            205 | 206 if body.len() >= 8 => {
                o.set("media_ssrc", be32(&body[4..]));
            }
            _ => {}
        }
        out.push(o);
        pos += info.length;
    }
    Ok(out)
}

fn type_name(pt: u8) -> &'static str {
    match pt {
        200 => "SR",
        201 => "RR",
        202 => "SDES",
        203 => "BYE",
        204 => "APP",
        205 => "RTPFB",
        206 => "PSFB",
        207 => "XR",
        _ => "unknown",
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// An NTP timestamp as Unix seconds with a fraction.
fn ntp_to_unix(ntp: u64) -> f64 {
    let secs = (ntp >> 32) as f64 - 2_208_988_800.0;
    secs + (ntp & 0xffff_ffff) as f64 / 4_294_967_296.0
}

/// Up to `count` 24-byte reception report blocks.
fn report_blocks(data: &[u8], count: u8) -> Vec<Obj> {
    data.chunks_exact(24)
        .take(usize::from(count))
        .map(|b| {
            let lost = i32::from_be_bytes([b[5], b[6], b[7], 0]) >> 8; // 24-bit signed
            Obj::new()
                .with("ssrc", be32(b))
                .with("fraction_lost", b[4])
                .with("cumulative_lost", lost)
                .with("highest_sequence", be32(&b[8..]))
                .with("jitter", be32(&b[12..]))
                .with("last_sr", be32(&b[16..]))
                .with("delay_since_last_sr", be32(&b[20..]))
        })
        .collect()
}

/// Up to `count` SDES chunks: SSRC and items (CNAME, NAME...).
fn sdes_chunks(data: &[u8], count: u8) -> Vec<Obj> {
    const NAMES: [&str; 9] = [
        "END", "CNAME", "NAME", "EMAIL", "PHONE", "LOC", "TOOL", "NOTE", "PRIV",
    ];
    let mut out = Vec::new();
    let mut pos = 0;
    for _ in 0..count {
        let Some(ssrc) = data.get(pos..pos + 4) else {
            break;
        };
        let mut chunk = Obj::new().with("ssrc", be32(ssrc));
        pos += 4;
        let mut items = Obj::new();
        while let Some(&t) = data.get(pos) {
            if t == 0 {
                pos += 1;
                break;
            }
            let Some(&len) = data.get(pos + 1) else { break };
            let Some(text) = data.get(pos + 2..pos + 2 + usize::from(len)) else {
                break;
            };
            let name = NAMES.get(usize::from(t)).copied().unwrap_or("unknown");
            items.set(name, String::from_utf8_lossy(text).into_owned());
            pos += 2 + usize::from(len);
        }
        pos = pos.div_ceil(4) * 4; // chunks are 32-bit aligned
        chunk.set("items", items);
        out.push(chunk);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_header_fields() {
        // V=2 P=0 X=0 CC=0, M=1 PT=96, seq 0x1234, ts 0x11223344, ssrc 0xdeadbeef, 3 bytes.
        let pkt = [
            0x80, 0xe0, 0x12, 0x34, 0x11, 0x22, 0x33, 0x44, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3,
        ];
        let o = dissect_packet(&pkt).unwrap();
        let v = o.to_value();
        assert_eq!(v["type"], "rtp");
        assert_eq!(v["marker"], true);
        assert_eq!(v["payload_type"], 96);
        assert_eq!(v["sequence"], 0x1234);
        assert_eq!(v["timestamp"], 0x1122_3344u32);
        assert_eq!(v["ssrc"], 0xdead_beefu32);
        assert_eq!(v["payload_len"], 3);
    }

    #[test]
    fn rtcp_sender_report_and_sdes() {
        let mut pkt =
            rtcp::sender_report(7, (3_900_000_000u64 << 32) | (1 << 31), 90000, 10, 1000).to_vec();
        pkt.extend_from_slice(&rtcp::sdes_cname(7, "cam@host"));
        let v = dissect_packet(&pkt).unwrap().to_value();
        assert_eq!(v["type"], "rtcp");
        assert_eq!(v["packets"][0]["name"], "SR");
        assert_eq!(v["packets"][0]["rtp_timestamp"], 90000);
        assert_eq!(v["packets"][0]["packet_count"], 10);
        assert_eq!(
            v["packets"][0]["ntp_unix_time"],
            3_900_000_000.0 - 2_208_988_800.0 + 0.5
        );
        assert_eq!(v["packets"][1]["chunks"][0]["items"]["CNAME"], "cam@host");
    }

    #[test]
    fn short_and_wrong_version_packets_are_faults() {
        assert!(dissect_packet(&[0x80, 0x60, 0]).is_err());
        assert!(
            dissect_packet(&[0x40; 12])
                .unwrap_err()
                .message
                .contains("version")
        );
        assert!(
            dissect_packet(&[0x80, 200, 0, 9])
                .unwrap_err()
                .message
                .contains("past the end")
        );
    }
}
