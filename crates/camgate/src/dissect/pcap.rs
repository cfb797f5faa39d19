//! Captures: classic pcap and pcapng files (pcap-file) down to TCP and UDP payloads
//! (etherparse). TCP is reassembled per direction (4-tuple) in capture order, using sequence
//! numbers only to drop retransmitted bytes and to notice gaps. Every JSON object gets the
//! frame number (as Wireshark counts it), the capture time and the addresses in front.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use pcap_file::DataLink;
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgReader};

use super::rtsp::{Cut, RtspCutter, looks_like_start};
use super::{DissectError, DissectKind, Obj};
use text::hex_excerpt;

/// One captured frame.
struct Captured<'a> {
    /// 1-based frame number.
    frame: u64,
    /// Time since the Unix epoch.
    time: Duration,
    link: DataLink,
    data: &'a [u8],
}

/// Reads every frame of a pcap or pcapng file.
fn read_capture(
    path: &Path,
    each: &mut dyn FnMut(Captured<'_>) -> Result<(), DissectError>,
) -> Result<(), DissectError> {
    let name = path.display().to_string();
    let err = |message: String| DissectError::Capture {
        path: name.clone(),
        message,
    };
    let mut file = BufReader::new(File::open(path).map_err(|e| err(format!("cannot open: {e}")))?);
    let mut magic = [0u8; 4];
    file.read_exact(&mut magic)
        .map_err(|e| err(format!("cannot read the file header: {e}")))?;
    let file = std::io::Cursor::new(magic).chain(file);
    let mut frame = 0u64;
    match magic {
        [0x0a, 0x0d, 0x0d, 0x0a] => {
            let mut r = PcapNgReader::new(file)
                .map_err(|e| err(format!("bad pcapng section header: {e}")))?;
            // (link type, units per second, offset seconds) per interface of the section.
            let mut ifaces: Vec<(DataLink, TsUnit, u64)> = Vec::new();
            while let Some(block) = r.next_block() {
                let block =
                    block.map_err(|e| err(format!("bad pcapng block after frame {frame}: {e}")))?;
                match block {
                    Block::SectionHeader(_) => ifaces.clear(),
                    Block::InterfaceDescription(idb) => {
                        let mut unit = TsUnit::Pow10(6);
                        let mut offset = 0;
                        for opt in &idb.options {
                            match opt {
                                InterfaceDescriptionOption::IfTsResol(r) => {
                                    unit = TsUnit::from_tsresol(*r)
                                }
                                InterfaceDescriptionOption::IfTsOffset(o) => offset = *o,
                                _ => {}
                            }
                        }
                        ifaces.push((idb.linktype, unit, offset));
                    }
                    Block::EnhancedPacket(epb) => {
                        frame += 1;
                        let &(link, unit, offset) =
                            ifaces.get(epb.interface_id as usize).ok_or_else(|| {
                                err(format!(
                                    "frame {frame} names interface {} that was not described",
                                    epb.interface_id
                                ))
                            })?;
                        // pcap-file reads the raw count as nanoseconds; rescale by if_tsresol.
                        let raw = epb.timestamp.as_nanos() as u64;
                        let time = unit.to_duration(raw) + Duration::from_secs(offset);
                        each(Captured {
                            frame,
                            time,
                            link,
                            data: &epb.data,
                        })?;
                    }
                    Block::SimplePacket(spb) => {
                        frame += 1;
                        let link = ifaces.first().map_or(DataLink::ETHERNET, |i| i.0);
                        each(Captured {
                            frame,
                            time: Duration::ZERO,
                            link,
                            data: &spb.data,
                        })?;
                    }
                    Block::Packet(pb) => {
                        frame += 1;
                        let (link, unit, offset) = ifaces
                            .get(usize::from(pb.interface_id))
                            .copied()
                            .unwrap_or((DataLink::ETHERNET, TsUnit::Pow10(6), 0));
                        each(Captured {
                            frame,
                            time: unit.to_duration(pb.timestamp) + Duration::from_secs(offset),
                            link,
                            data: &pb.data,
                        })?;
                    }
                    _ => {}
                }
            }
        }
        [0xa1, 0xb2, 0xc3, 0xd4]
        | [0xd4, 0xc3, 0xb2, 0xa1]
        | [0xa1, 0xb2, 0x3c, 0x4d]
        | [0x4d, 0x3c, 0xb2, 0xa1] => {
            let mut r = PcapReader::new(file).map_err(|e| err(format!("bad pcap header: {e}")))?;
            let link = r.header().datalink;
            while let Some(pkt) = r.next_packet() {
                let pkt =
                    pkt.map_err(|e| err(format!("bad pcap record after frame {frame}: {e}")))?;
                frame += 1;
                each(Captured {
                    frame,
                    time: pkt.timestamp,
                    link,
                    data: &pkt.data,
                })?;
            }
        }
        _ => {
            return Err(err(format!(
                "not a pcap or pcapng file (starts with {})",
                hex_excerpt(&magic)
            )));
        }
    }
    Ok(())
}

/// pcapng timestamp units (`if_tsresol`).
#[derive(Clone, Copy, Debug)]
enum TsUnit {
    Pow10(u32),
    Pow2(u32),
}

impl TsUnit {
    fn from_tsresol(r: u8) -> TsUnit {
        if r & 0x80 == 0 {
            TsUnit::Pow10(u32::from(r).min(18))
        } else {
            TsUnit::Pow2(u32::from(r & 0x7f).min(63))
        }
    }

    fn to_duration(self, raw: u64) -> Duration {
        let per_sec: u128 = match self {
            TsUnit::Pow10(e) => 10u128.pow(e),
            TsUnit::Pow2(e) => 1u128 << e,
        };
        let raw = u128::from(raw);
        let secs = (raw / per_sec) as u64;
        let nanos = ((raw % per_sec) * 1_000_000_000 / per_sec) as u32;
        Duration::new(secs, nanos)
    }
}

/// A TCP segment or UDP datagram with its addresses.
struct Segment<'a> {
    src: SocketAddr,
    dst: SocketAddr,
    tcp: Option<TcpInfo>,
    payload: &'a [u8],
}

#[derive(Clone, Copy)]
struct TcpInfo {
    seq: u32,
    syn: bool,
    fin: bool,
}

/// The transport segment of a frame; `Ok(None)` for frames without TCP/UDP (ARP, ICMP,
/// fragments after the first).
fn segment<'a>(link: DataLink, data: &'a [u8]) -> Result<Option<Segment<'a>>, String> {
    let sliced = match link {
        DataLink::ETHERNET => SlicedPacket::from_ethernet(data),
        DataLink::LINUX_SLL => SlicedPacket::from_linux_sll(data),
        DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => SlicedPacket::from_ip(data),
        DataLink::NULL | DataLink::LOOP => match data.get(4..) {
            Some(rest) => SlicedPacket::from_ip(rest),
            None => return Err("loopback header cut short".into()),
        },
        other => {
            return Err(format!(
                "link type {other:?} is not supported (Ethernet, Linux SLL, raw IP, loopback are)"
            ));
        }
    }
    .map_err(|e| e.to_string())?;
    let (src_ip, dst_ip): (IpAddr, IpAddr) = match &sliced.net {
        Some(NetSlice::Ipv4(ip)) => {
            if ip.is_payload_fragmented() {
                return Ok(None);
            }
            (
                ip.header().source_addr().into(),
                ip.header().destination_addr().into(),
            )
        }
        Some(NetSlice::Ipv6(ip)) => {
            if ip.is_payload_fragmented() {
                return Ok(None);
            }
            (
                ip.header().source_addr().into(),
                ip.header().destination_addr().into(),
            )
        }
        _ => return Ok(None),
    };
    Ok(match sliced.transport {
        Some(TransportSlice::Udp(u)) => Some(Segment {
            src: SocketAddr::new(src_ip, u.source_port()),
            dst: SocketAddr::new(dst_ip, u.destination_port()),
            tcp: None,
            payload: u.payload(),
        }),
        Some(TransportSlice::Tcp(t)) => Some(Segment {
            src: SocketAddr::new(src_ip, t.source_port()),
            dst: SocketAddr::new(dst_ip, t.destination_port()),
            tcp: Some(TcpInfo {
                seq: t.sequence_number(),
                syn: t.syn(),
                fin: t.fin(),
            }),
            payload: t.payload(),
        }),
        _ => None,
    })
}

/// Sequence tracking of one TCP direction: drops retransmitted bytes, notices gaps.
#[derive(Default)]
struct SeqTrack {
    next: Option<u32>,
}

/// What a segment brings, in stream order.
enum InOrder<'a> {
    /// A SYN (no data).
    Syn,
    /// New bytes, after `gap` bytes the capture missed.
    Data { gap: u32, bytes: &'a [u8] },
}

impl SeqTrack {
    fn accept<'a>(&mut self, tcp: TcpInfo, payload: &'a [u8]) -> InOrder<'a> {
        if tcp.syn {
            self.next = Some(tcp.seq.wrapping_add(1));
            return InOrder::Syn;
        }
        let (gap, bytes) = match self.next {
            None => (0, payload),
            Some(next) => {
                let ahead = tcp.seq.wrapping_sub(next) as i32;
                if ahead < 0 {
                    // Retransmitted bytes: keep only what is new.
                    let dup = (-(ahead as i64)) as usize;
                    (0, payload.get(dup..).unwrap_or_default())
                } else {
                    (ahead as u32, payload)
                }
            }
        };
        // FIN takes one sequence number after the data.
        let end = tcp
            .seq
            .wrapping_add(payload.len() as u32)
            .wrapping_add(u32::from(tcp.fin));
        if self.next.is_none_or(|n| (end.wrapping_sub(n) as i32) > 0) {
            self.next = Some(end);
        }
        InOrder::Data { gap, bytes }
    }
}

/// One direction of a DHIP or DHAV TCP stream.
#[derive(Default)]
struct BinFlow {
    seq: SeqTrack,
    dhip: super::dhip::DhipStream,
    dhav: super::dhip::DhavStream,
    /// Lost sync (a gap or a bad message): the rest of the flow is skipped.
    lost: bool,
}

/// One direction of a TCP connection.
#[derive(Default)]
struct Flow {
    cutter: RtspCutter,
    seq: SeqTrack,
    /// Not RTSP (or lost sync): ignored until a segment starts a message again.
    ignored: bool,
    /// Decided whether the flow is RTSP at all.
    judged: bool,
}

/// Dissects the capture at `path`: TCP for `rtsp`/`sdp`, UDP for `rtp`.
pub(crate) fn dissect_file(
    path: &Path,
    kind: DissectKind,
    port: Option<u16>,
    emit: &mut dyn FnMut(Obj) -> Result<(), DissectError>,
) -> Result<(), DissectError> {
    let mut flows: HashMap<(SocketAddr, SocketAddr), Flow> = HashMap::new();
    let mut bin_flows: HashMap<(SocketAddr, SocketAddr), BinFlow> = HashMap::new();
    // The context of each flow's last segment, for errors at the end of the capture.
    let mut last_ctx: HashMap<(SocketAddr, SocketAddr), (u64, Obj)> = HashMap::new();
    read_capture(path, &mut |pkt| {
        let ctx = |src: Option<(SocketAddr, SocketAddr)>| {
            let o = Obj::new().with("frame", pkt.frame).with(
                "ts",
                format!("{}.{:06}", pkt.time.as_secs(), pkt.time.subsec_micros()),
            );
            match src {
                Some((s, d)) => o.with("src", s.to_string()).with("dst", d.to_string()),
                None => o,
            }
        };
        let seg = match segment(pkt.link, pkt.data) {
            Ok(Some(s)) => s,
            Ok(None) => return Ok(()),
            Err(e) => {
                // Undecodable frames only matter when the user asked for a port.
                if port.is_some() {
                    emit(error_obj(&ctx(None), &e, pkt.data))?;
                }
                return Ok(());
            }
        };
        if port.is_some_and(|p| seg.src.port() != p && seg.dst.port() != p) {
            return Ok(());
        }
        let ctx = ctx(Some((seg.src, seg.dst)));
        match (kind, seg.tcp) {
            (k, None) if k.is_datagram() => {
                if seg.payload.is_empty() || (port.is_none() && !k.looks_like(seg.payload)) {
                    return Ok(());
                }
                match k.datagram(seg.payload) {
                    Ok(o) => emit(o.prefixed(&ctx))?,
                    Err(f) if port.is_some() || k != DissectKind::Rtp => emit(error_obj(
                        &ctx,
                        &format!("{}: {}", k.what(), f.message),
                        seg.payload,
                    ))?,
                    Err(_) => {} // not RTP: DNS, mDNS, discovery...
                }
            }
            (DissectKind::Rtsp | DissectKind::Sdp, Some(tcp)) => {
                let key = (seg.src, seg.dst);
                let flow = flows.entry(key).or_default();
                let payload = match flow.seq.accept(tcp, seg.payload) {
                    InOrder::Syn => return Ok(()),
                    InOrder::Data { gap, bytes } => {
                        if gap > 0 {
                            if !flow.ignored && flow.judged {
                                emit(error_obj(
                                    &ctx,
                                    &format!(
                                        "{gap} bytes missing from the capture; resynchronising"
                                    ),
                                    &[],
                                ))?;
                            }
                            flow.cutter.clear();
                            flow.ignored = true;
                        }
                        bytes
                    }
                };
                if payload.is_empty() {
                    return Ok(());
                }
                if !flow.judged || flow.ignored {
                    flow.ignored = !(flow.cutter.pending().is_empty() && looks_like_start(payload));
                    if !flow.judged && flow.ignored && port.is_some() {
                        emit(error_obj(&ctx, "TCP payload is not RTSP", payload))?;
                    }
                    flow.judged = true;
                    if flow.ignored {
                        return Ok(());
                    }
                }
                flow.cutter.push(payload);
                last_ctx.insert(key, (pkt.frame, ctx.clone()));
                loop {
                    match flow.cutter.next() {
                        Cut::Message(o) => {
                            if kind == DissectKind::Sdp {
                                if let Some(super::Node::Obj(sdp)) = o.get("sdp") {
                                    emit(sdp.clone().prefixed(&ctx))?;
                                }
                            } else {
                                emit(o.prefixed(&ctx))?;
                            }
                        }
                        Cut::Incomplete => break,
                        Cut::Bad(f) => {
                            let at = f.offset - flow.cutter.offset();
                            let bytes =
                                flow.cutter.pending().get(at..).unwrap_or_default().to_vec();
                            emit(error_obj(
                                &ctx,
                                &format!("RTSP at stream byte {}: {}", f.offset, f.message),
                                &bytes,
                            ))?;
                            flow.cutter.clear();
                            flow.ignored = true;
                            break;
                        }
                    }
                }
            }
            (DissectKind::Dhip, None) => {
                if seg.payload.is_empty()
                    || (port.is_none() && !super::dhip::looks_like(seg.payload))
                {
                    return Ok(());
                }
                match super::dhip::dissect_datagram(seg.payload) {
                    Ok(o) => emit(o.prefixed(&ctx))?,
                    Err(f) if port.is_some() => emit(error_obj(
                        &ctx,
                        &format!("DHIP: {}", f.message),
                        seg.payload,
                    ))?,
                    Err(_) => {}
                }
            }
            (DissectKind::Dhip | DissectKind::Dhav, Some(tcp)) => {
                let flow = bin_flows.entry((seg.src, seg.dst)).or_default();
                let payload = match flow.seq.accept(tcp, seg.payload) {
                    InOrder::Syn => return Ok(()),
                    InOrder::Data { gap, bytes } => {
                        if gap > 0 && !flow.lost {
                            emit(error_obj(
                                &ctx,
                                &format!(
                                    "{gap} bytes missing from the capture; the rest of this stream is skipped"
                                ),
                                &[],
                            ))?;
                            flow.lost = true;
                        }
                        bytes
                    }
                };
                if payload.is_empty() || flow.lost {
                    return Ok(());
                }
                if kind == DissectKind::Dhav {
                    flow.dhav.push(payload);
                    while let Some(o) = flow.dhav.next() {
                        emit(o.prefixed(&ctx))?;
                    }
                    return Ok(());
                }
                // A flow that does not start with a DHIP header is someone else's traffic.
                if flow.dhip.pending() == 0
                    && !payload.starts_with(&dhip::header::PREFIX)
                    && port.is_none()
                {
                    return Ok(());
                }
                flow.dhip.push(payload);
                loop {
                    match flow.dhip.next() {
                        Ok(Some(o)) => emit(o.prefixed(&ctx))?,
                        Ok(None) => break,
                        Err(f) => {
                            emit(error_obj(&ctx, &format!("DHIP: {}", f.message), payload))?;
                            flow.lost = true;
                            break;
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(())
    })?;
    // Flows that ended inside a message.
    let mut open: Vec<_> = flows
        .into_iter()
        .filter(|(_, f)| !f.ignored && !f.cutter.pending().is_empty())
        .collect();
    open.sort_by_key(|(k, _)| last_ctx.get(k).map(|c| c.0));
    for (key, flow) in open {
        let ctx = last_ctx.remove(&key).map(|c| c.1).unwrap_or_default();
        emit(error_obj(
            &ctx,
            &format!(
                "capture ends inside a message: {}",
                flow.cutter.truncation()
            ),
            flow.cutter.pending(),
        ))?;
    }
    Ok(())
}

/// `{"type":"error","error":...,"bytes":...}` with the capture context in front.
fn error_obj(ctx: &Obj, message: &str, bytes: &[u8]) -> Obj {
    let mut o = Obj::new().with("type", "error").with("error", message);
    if !bytes.is_empty() {
        o.set("bytes", hex_excerpt(bytes));
    }
    o.prefixed(ctx)
}
