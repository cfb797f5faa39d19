//! Motion JPEG over RTP (RFC 2435): the packetizer strips a baseline JPEG to its scan data
//! and sends its quantization tables in-band (Q = 255); the depacketizer rebuilds a complete
//! JFIF file with `codec::jpeg::build_header`.

use bytes::{BufMut, Bytes, BytesMut};

use super::assembly::AccessUnitBuilder;
use super::error::{DepacketizeErrorKind, PacketizeErrorKind};
use super::{RtpChunk, RtpPacket};
use crate::codec::jpeg::{self, JpegError, QuantTables, Rfc2435Params};

/// Length of the main JPEG header.
const MAIN_HEADER_LEN: usize = 8;
/// Length of the restart marker header (types 64..=127).
const RESTART_HEADER_LEN: usize = 4;
/// Length of the quantization table header with two 8-bit tables.
const QUANT_HEADER_LEN: usize = 4 + 128;
/// The Q value meaning "tables in-band, may change every frame".
const Q_DYNAMIC: u8 = 255;

/// Packetizes a baseline JPEG file.
pub(crate) fn packetize(
    data: &Bytes,
    max_payload: usize,
) -> Result<Vec<RtpChunk>, PacketizeErrorKind> {
    let info = jpeg::parse(data)?;
    let w8 = usize::from(info.width).div_ceil(8);
    let h8 = usize::from(info.height).div_ceil(8);
    if w8 > 255 || h8 > 255 {
        return Err(JpegError::Unsupported(format!(
            "image size {}x{} exceeds RFC 2435's 2040x2040 limit",
            info.width, info.height
        ))
        .into());
    }
    let scan = data.slice(info.scan_start..info.scan_end);
    if scan.len() > 0xff_ffff {
        return Err(PacketizeErrorKind::Malformed(format!(
            "scan data of {} bytes exceeds the 24-bit fragment offset",
            scan.len()
        )));
    }
    let restart = info.restart_interval > 0;
    let rtp_type = info.rtp_type + if restart { 64 } else { 0 };
    let fixed = MAIN_HEADER_LEN + if restart { RESTART_HEADER_LEN } else { 0 };
    let min = fixed + QUANT_HEADER_LEN + 1;
    if max_payload < min {
        return Err(PacketizeErrorKind::MaxPayloadTooSmall { max_payload, min });
    }
    let mut chunks = Vec::new();
    let mut off = 0;
    loop {
        let mut head = BytesMut::with_capacity(fixed + QUANT_HEADER_LEN);
        head.put_u8(0); // type-specific
        head.put_uint(off as u64, 3);
        head.put_u8(rtp_type);
        head.put_u8(Q_DYNAMIC);
        head.put_u8(w8 as u8);
        head.put_u8(h8 as u8);
        if restart {
            head.put_u16(info.restart_interval);
            // F = L = 1, count 0x3FFF: packets are not aligned to restart intervals.
            head.put_u16(0xffff);
        }
        if off == 0 {
            head.put_u8(0); // MBZ
            head.put_u8(0); // precision: both tables 8-bit
            head.put_u16(128);
            head.put_slice(&info.quant_tables[0]);
            head.put_slice(&info.quant_tables[1]);
        }
        let end = (off + max_payload - head.len()).min(scan.len());
        chunks.push(RtpChunk {
            head: head.freeze(),
            body: scan.slice(off..end),
            marker: end == scan.len(),
        });
        off = end;
        if off >= scan.len() {
            break;
        }
    }
    Ok(chunks)
}

/// The frame being reassembled.
struct Current {
    params: Rfc2435Params,
    data: BytesMut,
}

/// Builds JPEG files from RFC 2435 payloads.
#[derive(Default)]
pub(crate) struct JpegBuilder {
    current: Option<Current>,
    /// Tables received with Q 128..=254, which later frames may omit.
    cached_tables: Vec<(u8, QuantTables)>,
}

fn malformed(s: impl Into<String>) -> DepacketizeErrorKind {
    DepacketizeErrorKind::Malformed(s.into())
}

impl JpegBuilder {
    /// Parses the quantization table header of a first packet; returns the tables (if any)
    /// and the header's length.
    fn tables(
        &mut self,
        q: u8,
        p: &[u8],
    ) -> Result<(Option<QuantTables>, usize), DepacketizeErrorKind> {
        if q < 128 {
            return Ok((None, 0));
        }
        let [_mbz, precision, hi, lo, rest @ ..] = p else {
            return Err(malformed("quantization table header truncated"));
        };
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        if len == 0 {
            if q == Q_DYNAMIC {
                return Err(malformed("Q=255 without quantization tables"));
            }
            let cached = self.cached_tables.iter().find(|(cq, _)| *cq == q);
            return cached
                .map(|(_, t)| (Some(*t), 4))
                .ok_or_else(|| malformed(format!("Q={q} tables omitted and never received")));
        }
        if *precision != 0 {
            return Err(DepacketizeErrorKind::Unsupported(
                "16-bit quantization tables".into(),
            ));
        }
        if len < 64 {
            return Err(malformed(format!(
                "{len} bytes of quantization tables (at least one 64-byte table needed)"
            )));
        }
        let t = rest.get(..len).ok_or_else(|| {
            malformed(format!(
                "{len} bytes of tables announced, {} present",
                rest.len()
            ))
        })?;
        // Senders such as ffmpeg send a single table when luma and chroma share it.
        let chroma = if len >= 128 { &t[64..128] } else { &t[..64] };
        let mut tables = [[0u8; 64]; 2];
        tables[0].copy_from_slice(&t[..64]);
        tables[1].copy_from_slice(chroma);
        if q != Q_DYNAMIC {
            self.cached_tables.retain(|(cq, _)| *cq != q);
            self.cached_tables.push((q, tables));
        }
        Ok((Some(tables), 4 + len))
    }
}

impl AccessUnitBuilder for JpegBuilder {
    fn codec(&self) -> &'static str {
        "jpeg"
    }

    fn add(&mut self, pkt: &RtpPacket) -> Result<(), DepacketizeErrorKind> {
        let p = &pkt.payload[..];
        let Some(h) = p.get(..MAIN_HEADER_LEN) else {
            return Err(malformed("shorter than the 8-byte main JPEG header"));
        };
        let off = (usize::from(h[1]) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3]);
        let (rtp_type, q) = (h[4], h[5]);
        let (width, height) = (u16::from(h[6]) * 8, u16::from(h[7]) * 8);
        let mut pos = MAIN_HEADER_LEN;
        let mut restart_interval = 0;
        if (64..128).contains(&rtp_type) {
            let r = p
                .get(pos..pos + RESTART_HEADER_LEN)
                .ok_or_else(|| malformed("restart marker header truncated"))?;
            restart_interval = u16::from_be_bytes([r[0], r[1]]);
            pos += RESTART_HEADER_LEN;
        }
        let base_type = rtp_type & !64;
        if base_type > 1 || rtp_type >= 128 {
            return Err(DepacketizeErrorKind::Unsupported(format!(
                "RTP/JPEG type {rtp_type} (only 0, 1, 64, 65)"
            )));
        }
        if q == 0 {
            return Err(malformed("Q value 0 is reserved"));
        }
        if off == 0 {
            if self.current.is_some() {
                return Err(malformed("second first fragment (offset 0) in one frame"));
            }
            if width == 0 || height == 0 {
                return Err(DepacketizeErrorKind::Unsupported(format!(
                    "image size {width}x{height}"
                )));
            }
            let (quant_tables, len) = self.tables(q, &p[pos..])?;
            pos += len;
            self.current = Some(Current {
                params: Rfc2435Params {
                    rtp_type: base_type,
                    q,
                    width,
                    height,
                    restart_interval,
                    quant_tables,
                },
                data: BytesMut::new(),
            });
        }
        let Some(cur) = self.current.as_mut() else {
            return Err(DepacketizeErrorKind::Incomplete(format!(
                "fragment at offset {off} without the first fragment"
            )));
        };
        if off != cur.data.len() {
            return Err(DepacketizeErrorKind::Incomplete(format!(
                "fragment offset {off}, expected {}",
                cur.data.len()
            )));
        }
        cur.data.put_slice(&p[pos..]);
        Ok(())
    }

    fn finish(&mut self) -> Result<Option<(Bytes, bool)>, DepacketizeErrorKind> {
        let Some(cur) = self.current.take() else {
            return Ok(None);
        };
        let header = jpeg::build_header(&cur.params)
            .map_err(|e| DepacketizeErrorKind::Unsupported(e.to_string()))?;
        let mut out = BytesMut::with_capacity(header.len() + cur.data.len() + 2);
        out.put_slice(&header);
        out.put_slice(&cur.data);
        if !cur.data.ends_with(&[0xff, 0xd9]) {
            out.put_slice(&[0xff, 0xd9]);
        }
        Ok(Some((out.freeze(), true)))
    }

    fn discard(&mut self) {
        self.current = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::Depacketizer;
    use crate::rtp::assembly::AuDepacketizer;

    fn pkt(seq: u16, ts: u32, marker: bool, payload: &[u8]) -> RtpPacket {
        RtpPacket {
            payload_type: 26,
            sequence: seq,
            timestamp: ts,
            ssrc: 1,
            marker,
            payload: Bytes::copy_from_slice(payload),
        }
    }

    fn test_jpeg(restart_interval: u16, scan: &[u8]) -> Bytes {
        let mut v = jpeg::build_header(&Rfc2435Params {
            rtp_type: 1,
            q: 255,
            width: 320,
            height: 240,
            restart_interval,
            quant_tables: Some([[3; 64], [5; 64]]),
        })
        .unwrap();
        v.extend_from_slice(scan);
        v.extend_from_slice(&[0xff, 0xd9]);
        Bytes::from(v)
    }

    #[test]
    fn first_packet_carries_tables_and_offsets_advance() {
        let scan: Vec<u8> = (0..1000u32).map(|i| (i % 200) as u8).collect();
        let chunks = packetize(&test_jpeg(0, &scan), 400).unwrap();
        let h = &chunks[0].head;
        assert_eq!(&h[..8], &[0, 0, 0, 0, 1, 255, 40, 30]);
        assert_eq!(&h[8..12], &[0, 0, 0, 128]);
        assert_eq!(&h[12..76], &[3; 64]);
        assert_eq!(chunks[0].len(), 400);
        let mut off = 0;
        for c in &chunks {
            let o = (usize::from(c.head[1]) << 16)
                | (usize::from(c.head[2]) << 8)
                | usize::from(c.head[3]);
            assert_eq!(o, off);
            off += c.body.len();
        }
        assert_eq!(off, 1000);
        assert!(chunks.last().unwrap().marker);
        assert!(chunks[1].head.len() == 8);
    }

    #[test]
    fn restart_interval_sets_type_64_and_restart_header() {
        let chunks = packetize(&test_jpeg(8, &[1, 2, 3]), 1400).unwrap();
        let h = &chunks[0].head;
        assert_eq!(h[4], 65);
        assert_eq!(&h[8..12], &[0, 8, 0xff, 0xff]);
    }

    #[test]
    fn depacketized_frame_equals_the_original_file() {
        let scan: Vec<u8> = (0..3000u32).map(|i| (i % 200) as u8).collect();
        for restart in [0, 8] {
            let file = test_jpeg(restart, &scan);
            let mut d = AuDepacketizer::new(JpegBuilder::default(), 0);
            for (i, c) in packetize(&file, 500).unwrap().iter().enumerate() {
                let payload = [&c.head[..], &c.body[..]].concat();
                d.push(&pkt(i as u16, 9000, c.marker, &payload)).unwrap();
            }
            let f = d.pull().unwrap();
            assert!(f.keyframe);
            assert_eq!(f.data, file);
        }
    }

    #[test]
    fn standard_q_rebuilds_scaled_tables() {
        let mut d = AuDepacketizer::new(JpegBuilder::default(), 0);
        d.push(&pkt(1, 0, true, &[0, 0, 0, 0, 0, 50, 2, 2, 0xaa]))
            .unwrap();
        let f = d.pull().unwrap();
        let info = jpeg::parse(&f.data).unwrap();
        assert_eq!(info.quant_tables, jpeg::rfc2435_tables(50));
        assert_eq!((info.width, info.height, info.rtp_type), (16, 16, 0));
        assert_eq!(&f.data[info.scan_start..info.scan_end], &[0xaa]);
    }

    #[test]
    fn cached_tables_serve_later_frames_with_the_same_q() {
        let mut d = AuDepacketizer::new(JpegBuilder::default(), 0);
        let mut first = vec![0, 0, 0, 0, 1, 200, 2, 2, 0, 0, 0, 128];
        first.extend_from_slice(&[7; 128]);
        first.push(0x11);
        d.push(&pkt(1, 0, true, &first)).unwrap();
        d.push(&pkt(
            2,
            3000,
            true,
            &[0, 0, 0, 0, 1, 200, 2, 2, 0, 0, 0, 0, 0x22],
        ))
        .unwrap();
        d.pull().unwrap();
        let info = jpeg::parse(&d.pull().unwrap().data).unwrap();
        assert_eq!(info.quant_tables, [[7; 64]; 2]);
    }

    #[test]
    fn a_single_in_band_table_serves_luma_and_chroma() {
        let mut d = AuDepacketizer::new(JpegBuilder::default(), 0);
        let mut p = vec![0, 0, 0, 0, 1, 255, 2, 2, 0, 0, 0, 64];
        p.extend_from_slice(&[6; 64]);
        p.push(0x33);
        d.push(&pkt(1, 0, true, &p)).unwrap();
        let info = jpeg::parse(&d.pull().unwrap().data).unwrap();
        assert_eq!(info.quant_tables, [[6; 64]; 2]);
    }

    #[test]
    fn missing_middle_fragment_drops_the_frame() {
        let scan = vec![0x42; 2000];
        let file = test_jpeg(0, &scan);
        let chunks = packetize(&file, 500).unwrap();
        let mut d = AuDepacketizer::new(JpegBuilder::default(), 0);
        for (i, c) in chunks.iter().enumerate() {
            if i == 2 {
                continue;
            }
            let payload = [&c.head[..], &c.body[..]].concat();
            let _ = d.push(&pkt(i as u16, 0, c.marker, &payload));
        }
        assert!(d.pull().is_none());
    }

    #[test]
    fn unsupported_jpegs_are_packetize_errors() {
        let mut file = test_jpeg(0, &[1]).to_vec();
        let sof = file.windows(2).position(|w| w == [0xff, 0xc0]).unwrap();
        file[sof + 1] = 0xc2;
        assert_eq!(
            packetize(&Bytes::from(file), 1400),
            Err(PacketizeErrorKind::Jpeg(JpegError::Progressive))
        );
    }
}
