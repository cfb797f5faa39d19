//! `camgate dissect`: known RTSP, SDP, RTP, Dahua P2P, DHIP and DHAV bytes, hand-written pcap
//! and pcapng captures, and bad input, through the same `run` the command line calls.

use std::path::{Path, PathBuf};

use camgate::dissect::{DissectArgs, DissectError, DissectKind, run};
use clap::Parser;
use serde_json::Value;

fn hex_args(kind: DissectKind, hex: &str) -> DissectArgs {
    DissectArgs {
        kind,
        hex: Some(hex.into()),
        pcap: None,
        file: None,
        port: None,
    }
}

fn pcap_args(kind: DissectKind, path: &Path, port: Option<u16>) -> DissectArgs {
    DissectArgs {
        kind,
        hex: None,
        pcap: Some(path.to_path_buf()),
        file: None,
        port,
    }
}

/// Runs the dissector and parses each output line as JSON.
fn lines(args: &DissectArgs) -> Result<Vec<Value>, DissectError> {
    let mut out = Vec::new();
    run(args, &mut out)?;
    let text = String::from_utf8(out).unwrap();
    Ok(text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("line is not JSON ({e}): {l}")))
        .collect())
}

fn hex_of(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

const DESCRIBE: &str = "DESCRIBE rtsp://192.168.1.10:554/cam/realmonitor?channel=1&subtype=0 RTSP/1.0\r\n\
CSeq: 2\r\nUser-Agent: LibVLC/3.0.18\r\nAccept: application/sdp\r\n\r\n";

const SDP: &str = "v=0\r\no=- 2251938202 2251938202 IN IP4 0.0.0.0\r\ns=Media Server\r\n\
c=IN IP4 0.0.0.0\r\nt=0 0\r\na=control:*\r\na=range:npt=now-\r\n\
m=video 0 RTP/AVP 96\r\na=control:trackID=0\r\na=framerate:25.000000\r\na=rtpmap:96 H264/90000\r\n\
a=fmtp:96 packetization-mode=1;profile-level-id=4D002A;sprop-parameter-sets=Z00AKp2oHgCJ+WbgICAoAAADAAgAAAMAyEA=,aO48gA==\r\n\
m=audio 0 RTP/AVP 8\r\na=control:trackID=1\r\na=rtpmap:8 PCMA/8000\r\n";

fn describe_response() -> String {
    format!(
        "RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Base: rtsp://192.168.1.10:554/cam/realmonitor/\r\n\
Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
        SDP.len()
    )
}

/// An RTP packet: V=2, M, PT 96, seq, timestamp, SSRC, payload.
fn rtp(seq: u16, ts: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, if marker { 0xe0 } else { 0x60 }];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

#[test]
fn rtsp_request_and_response_are_decoded() {
    let mut stream = DESCRIBE.as_bytes().to_vec();
    stream.extend_from_slice(b"RTSP/1.0 401 Unauthorized\r\nCSeq: 2\r\nWWW-Authenticate: Digest realm=\"Login to 4K05\", nonce=\"abc\"\r\nWWW-Authenticate: Basic realm=\"Login to 4K05\"\r\n\r\n");
    let v = lines(&hex_args(DissectKind::Rtsp, &hex_of(&stream))).unwrap();
    assert_eq!(v.len(), 2);
    assert_eq!(v[0]["type"], "request");
    assert_eq!(v[0]["method"], "DESCRIBE");
    assert_eq!(
        v[0]["uri"],
        "rtsp://192.168.1.10:554/cam/realmonitor?channel=1&subtype=0"
    );
    assert_eq!(v[0]["version"], "RTSP/1.0");
    assert_eq!(v[0]["headers"]["CSeq"], "2");
    assert_eq!(v[0]["headers"]["Accept"], "application/sdp");
    assert_eq!(v[0]["body_len"], 0);
    assert_eq!(v[1]["type"], "response");
    assert_eq!(v[1]["status"], 401);
    assert_eq!(v[1]["reason"], "Unauthorized");
    assert_eq!(v[1]["offset"], DESCRIBE.len());
    let auth = v[1]["headers"]["WWW-Authenticate"]
        .as_array()
        .expect("both challenges kept");
    assert!(auth[0].as_str().unwrap().starts_with("Digest"));
    assert!(auth[1].as_str().unwrap().starts_with("Basic"));
}

#[test]
fn output_keys_are_in_wire_order_with_type_first() {
    let mut out = Vec::new();
    run(
        &hex_args(DissectKind::Rtsp, &hex_of(DESCRIBE.as_bytes())),
        &mut out,
    )
    .unwrap();
    let line = String::from_utf8(out).unwrap();
    assert!(
        line.starts_with(r#"{"type":"request","offset":0,"method":"DESCRIBE","uri":"#),
        "{line}"
    );
    assert!(line.find("\"CSeq\"").unwrap() < line.find("\"User-Agent\"").unwrap());
    assert!(line.ends_with("}\n"));
}

#[test]
fn describe_response_carries_the_decoded_sdp() {
    let v = lines(&hex_args(
        DissectKind::Rtsp,
        &hex_of(describe_response().as_bytes()),
    ))
    .unwrap();
    assert_eq!(v.len(), 1);
    let r = &v[0];
    assert_eq!(r["status"], 200);
    assert_eq!(r["body_len"], SDP.len());
    let sdp = &r["sdp"];
    assert_eq!(sdp["session_name"], "Media Server");
    assert_eq!(sdp["media"][0]["media"], "video");
    assert_eq!(sdp["media"][0]["control"], "trackID=0");
    assert_eq!(sdp["media"][0]["rtpmap"][0]["payload_type"], 96);
    assert_eq!(sdp["media"][0]["rtpmap"][0]["encoding"], "H264");
    assert_eq!(
        sdp["media"][0]["fmtp"][0]["params"]["profile-level-id"],
        "4D002A"
    );
    assert_eq!(sdp["media"][1]["rtpmap"][0]["encoding"], "PCMA");
    assert_eq!(sdp["media"][1]["rtpmap"][0]["clock_rate"], 8000);
    // What camgate makes of each payload type.
    assert_eq!(sdp["media"][0]["codecs"][0]["codec"], "h264");
    assert!(
        sdp["media"][0]["codecs"][0]["sps"]
            .as_str()
            .unwrap()
            .starts_with("674d002a")
    );
    assert_eq!(sdp["media"][1]["codecs"][0]["codec"], "pcma");

    // H.264 without parameter sets is reported, not guessed.
    let bare = SDP.replace(
        ";sprop-parameter-sets=Z00AKp2oHgCJ+WbgICAoAAADAAgAAAMAyEA=,aO48gA==",
        "",
    );
    let v = lines(&hex_args(DissectKind::Sdp, &hex_of(bare.as_bytes()))).unwrap();
    let err = v[0]["media"][0]["codecs"][0]["error"].as_str().unwrap();
    assert!(err.contains("sprop-parameter-sets"), "{err}");

    // The same SDP on its own.
    let v = lines(&hex_args(DissectKind::Sdp, &hex_of(SDP.as_bytes()))).unwrap();
    assert_eq!(v[0]["type"], "sdp");
    assert_eq!(v[0]["media"].as_array().unwrap().len(), 2);
}

#[test]
fn rtp_packet_header_fields() {
    // V=2 P=0 X=1 CC=1, M=1 PT=96, with one CSRC and a one-word extension, 4 payload bytes.
    let pkt =
        "91 e0 00 2a 00 01 5f 90 de ad be ef  00 00 00 07  be de 00 01 10 aa 00 00  65 88 84 00";
    let v = lines(&hex_args(DissectKind::Rtp, pkt)).unwrap();
    assert_eq!(v.len(), 1);
    let r = &v[0];
    assert_eq!(r["type"], "rtp");
    assert_eq!(r["version"], 2);
    assert_eq!(r["padding"], false);
    assert_eq!(r["extension"], true);
    assert_eq!(r["csrc_count"], 1);
    assert_eq!(r["csrcs"], serde_json::json!([7]));
    assert_eq!(r["marker"], true);
    assert_eq!(r["payload_type"], 96);
    assert_eq!(r["sequence"], 42);
    assert_eq!(r["timestamp"], 90000);
    assert_eq!(r["ssrc"], 0xdead_beefu32);
    assert_eq!(r["extension_header"]["profile"], 0xbede);
    assert_eq!(r["payload_len"], 4);
}

#[test]
fn rtcp_receiver_report_is_recognised() {
    // RR with one report block.
    let rr = "81 c9 00 07 11 11 11 11  22 22 22 22 05 00 00 03 00 00 10 00 00 00 00 20 00 00 00 00 00 00 00 00";
    let v = lines(&hex_args(DissectKind::Rtp, rr)).unwrap();
    assert_eq!(v[0]["type"], "rtcp");
    let p = &v[0]["packets"][0];
    assert_eq!(p["name"], "RR");
    assert_eq!(p["ssrc"], 0x1111_1111u32);
    assert_eq!(p["reports"][0]["ssrc"], 0x2222_2222u32);
    assert_eq!(p["reports"][0]["fraction_lost"], 5);
    assert_eq!(p["reports"][0]["cumulative_lost"], 3);
    assert_eq!(p["reports"][0]["highest_sequence"], 0x1000);
    assert_eq!(p["reports"][0]["jitter"], 0x20);
}

#[test]
fn interleaved_frames_between_messages_are_decoded_as_rtp_and_rtcp() {
    let mut stream = b"RTSP/1.0 200 OK\r\nCSeq: 5\r\nSession: 1234;timeout=60\r\n\r\n".to_vec();
    let p = rtp(7, 3600, true, &[0x65, 1, 2]);
    stream.extend_from_slice(&[b'$', 0, 0, p.len() as u8]);
    stream.extend_from_slice(&p);
    let sr = [
        0x80, 200, 0, 6, 0x12, 0x34, 0x56, 0x78, 0xe9, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0x0e, 0x10, 0,
        0, 0, 1, 0, 0, 0, 3,
    ];
    stream.extend_from_slice(&[b'$', 1, 0, sr.len() as u8]);
    stream.extend_from_slice(&sr);
    let v = lines(&hex_args(DissectKind::Rtsp, &hex_of(&stream))).unwrap();
    assert_eq!(v.len(), 3);
    assert_eq!(v[0]["headers"]["Session"], "1234;timeout=60");
    assert_eq!(v[1]["type"], "interleaved");
    assert_eq!(v[1]["channel"], 0);
    assert_eq!(v[1]["len"], p.len());
    assert_eq!(v[1]["rtp"]["sequence"], 7);
    assert_eq!(v[1]["rtp"]["marker"], true);
    assert_eq!(v[1]["rtp"]["payload_len"], 3);
    assert_eq!(v[2]["channel"], 1);
    assert_eq!(v[2]["rtcp"][0]["name"], "SR");
    assert_eq!(v[2]["rtcp"][0]["rtp_timestamp"], 3600);
}

// ---------------------------------------------------------------------------------------------
// Captures written by hand

fn checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Ethernet + IPv4 around a transport segment.
fn ether_ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, transport: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
    let total = 20 + transport.len();
    let mut ip = vec![
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        1,
        0x40,
        0,
        64,
        proto,
        0,
        0,
    ];
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(transport);
    f
}

fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]); // no checksum (allowed over IPv4)
    u.extend_from_slice(payload);
    u
}

fn tcp(sport: u16, dport: u16, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&0u32.to_be_bytes());
    t.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    t.extend_from_slice(payload);
    t
}

const CAM: [u8; 4] = [192, 168, 1, 10];
const PC: [u8; 4] = [192, 168, 1, 20];

/// Classic pcap, microsecond timestamps, Ethernet.
fn write_pcap(path: &Path, frames: &[(u32, u32, Vec<u8>)]) {
    let mut f = Vec::new();
    f.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    f.extend_from_slice(&2u16.to_le_bytes());
    f.extend_from_slice(&4u16.to_le_bytes());
    f.extend_from_slice(&0i32.to_le_bytes());
    f.extend_from_slice(&0u32.to_le_bytes());
    f.extend_from_slice(&65535u32.to_le_bytes());
    f.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
    for (sec, usec, data) in frames {
        f.extend_from_slice(&sec.to_le_bytes());
        f.extend_from_slice(&usec.to_le_bytes());
        f.extend_from_slice(&(data.len() as u32).to_le_bytes());
        f.extend_from_slice(&(data.len() as u32).to_le_bytes());
        f.extend_from_slice(data);
    }
    std::fs::write(path, f).unwrap();
}

/// pcapng: a section, one Ethernet interface with default (microsecond) resolution, EPBs.
fn write_pcapng(path: &Path, frames: &[(u64, Vec<u8>)]) {
    fn block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
        let len = 12 + body.len().div_ceil(4) * 4;
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&(len as u32).to_le_bytes());
        out.extend_from_slice(body);
        out.resize(out.len() + (body.len().div_ceil(4) * 4 - body.len()), 0);
        out.extend_from_slice(&(len as u32).to_le_bytes());
    }
    let mut f = Vec::new();
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    block(&mut f, 0x0a0d_0d0a, &shb);
    let mut idb = Vec::new();
    idb.extend_from_slice(&1u16.to_le_bytes()); // Ethernet
    idb.extend_from_slice(&0u16.to_le_bytes());
    idb.extend_from_slice(&65535u32.to_le_bytes());
    block(&mut f, 1, &idb);
    for (micros, data) in frames {
        let mut epb = Vec::new();
        epb.extend_from_slice(&0u32.to_le_bytes());
        epb.extend_from_slice(&((micros >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(*micros as u32).to_le_bytes());
        epb.extend_from_slice(&(data.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(data.len() as u32).to_le_bytes());
        epb.extend_from_slice(data);
        epb.resize(epb.len().div_ceil(4) * 4, 0);
        block(&mut f, 6, &epb);
    }
    std::fs::write(path, f).unwrap();
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("camgate-dissect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn pcap_udp_rtp_packets_with_time_and_addresses() {
    let path = temp("rtp.pcap");
    let dns = udp(5353, 5353, b"\x00\x00\x84\x00 not rtp");
    write_pcap(
        &path,
        &[
            (
                1_700_000_000,
                250_000,
                ether_ipv4(
                    CAM,
                    PC,
                    17,
                    &udp(8000, 50000, &rtp(100, 9000, false, &[0x7c, 0x85, 1])),
                ),
            ),
            (1_700_000_000, 290_000, ether_ipv4(CAM, PC, 17, &dns)),
            (
                1_700_000_000,
                290_001,
                ether_ipv4(
                    CAM,
                    PC,
                    17,
                    &udp(8000, 50000, &rtp(101, 9000, true, &[0x7c, 0x45, 2, 3])),
                ),
            ),
            (
                1_700_000_001,
                0,
                ether_ipv4(
                    CAM,
                    PC,
                    17,
                    &udp(
                        8001,
                        50001,
                        &[
                            0x80, 200, 0, 6, 0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                            0x23, 0x28, 0, 0, 0, 2, 0, 0, 0, 7,
                        ],
                    ),
                ),
            ),
        ],
    );
    let v = lines(&pcap_args(DissectKind::Rtp, &path, None)).unwrap();
    assert_eq!(v.len(), 3, "{v:?}");
    assert_eq!(v[0]["frame"], 1);
    assert_eq!(v[0]["ts"], "1700000000.250000");
    assert_eq!(v[0]["src"], "192.168.1.10:8000");
    assert_eq!(v[0]["dst"], "192.168.1.20:50000");
    assert_eq!(v[0]["type"], "rtp");
    assert_eq!(v[0]["sequence"], 100);
    assert_eq!(v[0]["payload_len"], 3);
    assert_eq!(v[1]["frame"], 3);
    assert_eq!(v[1]["marker"], true);
    assert_eq!(v[2]["type"], "rtcp");
    assert_eq!(v[2]["packets"][0]["name"], "SR");
    assert_eq!(v[2]["packets"][0]["rtp_timestamp"], 9000);

    // --port keeps one flow, and reports what on it is not RTP.
    let v = lines(&pcap_args(DissectKind::Rtp, &path, Some(8001))).unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["type"], "rtcp");
    let v = lines(&pcap_args(DissectKind::Rtp, &path, Some(5353))).unwrap();
    assert_eq!(v[0]["type"], "error");
    assert_eq!(v[0]["frame"], 2);
}

#[test]
fn pcap_tcp_rtsp_is_reassembled_per_direction() {
    let path = temp("rtsp.pcap");
    let req = DESCRIBE.as_bytes();
    let resp = describe_response().into_bytes();
    let (a, b) = resp.split_at(40);
    let (b, c) = b.split_at(100);
    let mut frames = vec![
        (
            10,
            0,
            ether_ipv4(PC, CAM, 6, &tcp(50000, 554, 999, 0x02, &[])),
        ), // SYN
        (
            10,
            1,
            ether_ipv4(CAM, PC, 6, &tcp(554, 50000, 4999, 0x12, &[])),
        ), // SYN-ACK
        (
            10,
            2,
            ether_ipv4(PC, CAM, 6, &tcp(50000, 554, 1000, 0x18, req)),
        ),
        (
            10,
            3,
            ether_ipv4(CAM, PC, 6, &tcp(554, 50000, 5000, 0x18, a)),
        ),
        (
            10,
            4,
            ether_ipv4(CAM, PC, 6, &tcp(554, 50000, 5000, 0x18, a)),
        ), // retransmission
        (
            10,
            5,
            ether_ipv4(CAM, PC, 6, &tcp(554, 50000, 5040, 0x18, b)),
        ),
    ];
    let seq_c = 5040 + b.len() as u32;
    frames.push((
        10,
        6,
        ether_ipv4(CAM, PC, 6, &tcp(554, 50000, seq_c, 0x18, c)),
    ));
    // HTTP on another port is not RTSP and is skipped without --port.
    frames.push((
        10,
        7,
        ether_ipv4(
            PC,
            CAM,
            6,
            &tcp(50001, 80, 1, 0x18, b"GET / HTTP/1.1\r\nHost: cam\r\n\r\n"),
        ),
    ));
    write_pcap(&path, &frames);

    let v = lines(&pcap_args(DissectKind::Rtsp, &path, None)).unwrap();
    assert_eq!(v.len(), 2, "{v:#?}");
    assert_eq!(v[0]["type"], "request");
    assert_eq!(v[0]["frame"], 3);
    assert_eq!(v[0]["src"], "192.168.1.20:50000");
    assert_eq!(v[0]["dst"], "192.168.1.10:554");
    assert_eq!(v[0]["method"], "DESCRIBE");
    assert_eq!(v[1]["type"], "response");
    assert_eq!(
        v[1]["frame"], 7,
        "a reassembled message is reported at its last segment"
    );
    assert_eq!(v[1]["ts"], "10.000006");
    assert_eq!(v[1]["sdp"]["media"][0]["rtpmap"][0]["encoding"], "H264");

    // kind sdp takes the SDP bodies out of the RTSP flows.
    let v = lines(&pcap_args(DissectKind::Sdp, &path, Some(554))).unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["type"], "sdp");
    assert_eq!(v[0]["frame"], 7);

    // Asking for port 80 shows why it is not RTSP.
    let v = lines(&pcap_args(DissectKind::Rtsp, &path, Some(80))).unwrap();
    assert_eq!(v[0]["type"], "error");
    assert!(v[0]["error"].as_str().unwrap().contains("not RTSP"));
}

#[test]
fn pcapng_is_read_too() {
    let path = temp("rtp.pcapng");
    write_pcapng(
        &path,
        &[(
            1_700_000_000_123_456,
            ether_ipv4(CAM, PC, 17, &udp(8000, 50000, &rtp(5, 1, true, &[1]))),
        )],
    );
    let v = lines(&pcap_args(DissectKind::Rtp, &path, None)).unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["ts"], "1700000000.123456");
    assert_eq!(v[0]["sequence"], 5);
}

#[test]
fn capture_ending_inside_a_message_is_reported() {
    let path = temp("cut.pcap");
    let resp = describe_response().into_bytes();
    write_pcap(
        &path,
        &[(
            1,
            0,
            ether_ipv4(CAM, PC, 6, &tcp(554, 50000, 1, 0x18, &resp[..60])),
        )],
    );
    let v = lines(&pcap_args(DissectKind::Rtsp, &path, None)).unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["type"], "error");
    assert!(
        v[0]["error"]
            .as_str()
            .unwrap()
            .contains("capture ends inside a message")
    );
    assert!(
        v[0]["bytes"].as_str().unwrap().starts_with("52 54 53 50"),
        "{}",
        v[0]
    );
}

// ---------------------------------------------------------------------------------------------
// Bad input

#[test]
fn bad_hex_is_a_clear_error() {
    let e = lines(&hex_args(DissectKind::Rtp, "80 60 0g"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("bad hex at character 7") && e.contains("'g'"),
        "{e}"
    );
    let e = lines(&hex_args(DissectKind::Rtp, "80 6"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad hex"), "{e}");
}

#[test]
fn truncated_and_invalid_messages_show_the_offending_bytes() {
    let e = lines(&hex_args(DissectKind::Rtp, "80 60 00 01 00 00"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("RTP at byte 0") && e.contains("80 60 00 01 00 00"),
        "{e}"
    );
    let e = lines(&hex_args(
        DissectKind::Rtp,
        "40 60 00 01 00 00 00 00 00 00 00 00",
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("version"), "{e}");

    let resp = describe_response();
    let cut = &resp.as_bytes()[..resp.len() - 10];
    let e = lines(&hex_args(DissectKind::Rtsp, &hex_of(cut)))
        .unwrap_err()
        .to_string();
    assert!(e.contains("body shorter than Content-Length"), "{e}");
    assert!(
        e.contains("at byte 0") && e.contains("52 54 53 50 2f 31 2e 30"),
        "{e}"
    );

    // A good message, then garbage: the error points at the garbage.
    let mut s = DESCRIBE.as_bytes().to_vec();
    s.extend_from_slice(b"\x00\x01garbage");
    let e = lines(&hex_args(DissectKind::Rtsp, &hex_of(&s)))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("at byte {}", DESCRIBE.len())) && e.contains("00 01 67 61"),
        "{e}"
    );

    let e = lines(&hex_args(DissectKind::Sdp, &hex_of(b"v=0\r\nm=video\r\n")))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("SDP at byte 5"), "{e}");
}

#[test]
fn unreadable_captures_are_clear_errors() {
    let missing = temp("does-not-exist.pcap");
    let e = lines(&pcap_args(DissectKind::Rtp, &missing, None))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("does-not-exist.pcap") && e.contains("cannot open"),
        "{e}"
    );

    let junk = temp("junk.pcap");
    std::fs::write(&junk, b"PK\x03\x04 this is a zip").unwrap();
    let e = lines(&pcap_args(DissectKind::Rtp, &junk, None))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("not a pcap or pcapng file") && e.contains("50 4b 03 04"),
        "{e}"
    );

    let cut = temp("cut-record.pcap");
    write_pcap(
        &cut,
        &[(
            1,
            0,
            ether_ipv4(CAM, PC, 17, &udp(1, 2, &rtp(1, 1, false, &[1]))),
        )],
    );
    let mut data = std::fs::read(&cut).unwrap();
    data.truncate(data.len() - 5);
    std::fs::write(&cut, data).unwrap();
    let e = lines(&pcap_args(DissectKind::Rtp, &cut, None))
        .unwrap_err()
        .to_string();
    assert!(e.contains("cut-record.pcap"), "{e}");
}

#[test]
fn command_line_needs_exactly_one_input() {
    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        args: DissectArgs,
    }
    let ok = Cli::try_parse_from(["dissect", "rtp", "--hex", "80 60", "--port", "554"]).unwrap();
    assert_eq!(ok.args.kind, DissectKind::Rtp);
    assert_eq!(ok.args.port, Some(554));
    assert!(Cli::try_parse_from(["dissect", "rtsp"]).is_err());
    assert!(Cli::try_parse_from(["dissect", "rtsp", "--hex", "00", "--pcap", "x.pcap"]).is_err());
    assert!(Cli::try_parse_from(["dissect", "http", "--hex", "00"]).is_err());
}

// ---------------------------------------------------------------------------------------------
// Totality: arbitrary bytes give a result or an error, never a panic.

mod total {
    use super::*;
    use proptest::prelude::*;

    fn any_kind() -> impl Strategy<Value = DissectKind> {
        prop_oneof![
            Just(DissectKind::Rtsp),
            Just(DissectKind::Rtp),
            Just(DissectKind::Sdp),
            Just(DissectKind::Dhip),
            Just(DissectKind::Dhav)
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_hex_input_never_panics(kind in any_kind(), bytes in proptest::collection::vec(any::<u8>(), 1..300)) {
            let mut out = Vec::new();
            let _ = run(&hex_args(kind, &hex_of(&bytes)), &mut out);
        }

        #[test]
        fn rtsp_like_input_never_panics(
            head in "(RTSP/1.0 [0-9]{3} OK|OPTIONS \\* RTSP/1.0|\\$)",
            rest in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let mut bytes = head.into_bytes();
            bytes.extend_from_slice(&rest);
            let mut out = Vec::new();
            let _ = run(&hex_args(DissectKind::Rtsp, &hex_of(&bytes)), &mut out);
        }

        #[test]
        fn corrupted_captures_never_panic(
            kind in any_kind(),
            cut in 0usize..400,
            flips in proptest::collection::vec((0usize..400, any::<u8>()), 0..8),
            ng in any::<bool>(),
        ) {
            let frame = ether_ipv4(CAM, PC, 17, &udp(8000, 50000, &rtp(1, 2, true, &[1, 2, 3])));
            let tcp_frame = ether_ipv4(CAM, PC, 6, &tcp(554, 50000, 1, 0x18, describe_response().as_bytes()));
            let path = temp(&format!("fuzz-{}-{}.cap", cut, flips.len()));
            if ng {
                write_pcapng(&path, &[(1, frame), (2, tcp_frame)]);
            } else {
                write_pcap(&path, &[(1, 0, frame), (1, 1, tcp_frame)]);
            }
            let mut data = std::fs::read(&path).unwrap();
            for (at, v) in flips {
                if let Some(b) = data.get_mut(at) {
                    *b = v;
                }
            }
            data.truncate(data.len().saturating_sub(cut % 64));
            std::fs::write(&path, &data).unwrap();
            let mut out = Vec::new();
            let _ = run(&pcap_args(kind, &path, None), &mut out);
        }
    }
}

#[test]
fn sdp_that_trips_the_sdp_parser_is_an_error_not_a_panic() {
    // Found by the fuzzer: sdp-types 0.1.8 asserts on this input.
    let err = lines(&hex_args(DissectKind::Sdp, "763d300ae40a763d300ae40ae9e9")).unwrap_err();
    assert!(err.to_string().contains("malformed SDP"), "{err}");
}

#[test]
fn ptcp_decodes_the_captured_data_frame() {
    let v = lines(&hex_args(
        DissectKind::Ptcp,
        "50544350 00000018 00000014 0000ffeb 0000001c 0533fe32 10000020 36ef034a 00000000 \
         a0010000 00000000 c4a3af48 9956b6b4 54abaeb6 0121d671 05020001 0000a1aa",
    ))
    .unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["sent"], 24);
    assert_eq!(v[0]["recv"], 20);
    assert_eq!(v[0]["pid"], "0x0000ffeb");
    assert_eq!(v[0]["lmid"], 28);
    assert_eq!(v[0]["rmid"], 0x0533fe32);
    assert_eq!(v[0]["body"]["kind"], "data");
    assert_eq!(v[0]["body"]["realm"], "0x36ef034a");
    assert_eq!(v[0]["body"]["length"], 32);
}

#[test]
fn ptcp_bind_shows_its_target() {
    let v = lines(&hex_args(
        DissectKind::Ptcp,
        "50544350 00000000 00000000 0000ffff 00000000 00000000 11000000 12345678 00000000 0000022a 7f000001",
    ))
    .unwrap();
    assert_eq!(v[0]["body"]["kind"], "bind");
    assert_eq!(v[0]["body"]["target"], "127.0.0.1:554");
}

#[test]
fn stun_decodes_the_inverted_binding_request_capture() {
    let v = lines(&hex_args(
        DissectKind::Stun,
        "fffeffe7 deed5bbd b303ef13 412b12ae f9bab266 7fd5fff7 2b619857 d42b81e1 fffbfff7 fffea813 2102d265",
    ))
    .unwrap();
    assert_eq!(v[0]["message"], "binding-request");
    assert_eq!(v[0]["cookie"], "2112a442");
    assert_eq!(v[0]["transaction_id"], "4cfc10ecbed4ed5106454d99");
    assert_eq!(v[0]["aid"], "d4 9e 67 a8 2b d4 7e 1e");
    assert_eq!(v[0]["address"], "222.253.45.154:22508");
}

#[test]
fn dh_http_decodes_a_cloud_answer_and_its_xml_body() {
    let msg = "HTTP/1.1 200 OK\r\nDate: 2023-12-18T19:19:43Z\r\nCSeq: 2\r\nContent-Type: \r\n\
               Content-Length: 65\r\n\r\n<body><DS>45.43.62.214:8802</DS><US>45.43.62.214:8803</US></body>";
    let v = lines(&hex_args(DissectKind::DhHttp, &hex_of(msg.as_bytes()))).unwrap();
    assert_eq!(v[0]["type"], "dh-http-response");
    assert_eq!(v[0]["code"], 200);
    assert_eq!(v[0]["headers"]["CSeq"], "2");
    assert_eq!(v[0]["body"]["US"], "45.43.62.214:8803");
}

#[test]
fn dh_http_request_with_a_truncated_body_is_an_error_with_the_offset() {
    let msg =
        "DHPOST /device/SN1/p2p-channel HTTP/1.1\r\nCSeq: 5\r\nContent-Length: 500\r\n\r\n<body/>";
    match lines(&hex_args(DissectKind::DhHttp, &hex_of(msg.as_bytes()))) {
        Err(DissectError::Malformed { what, .. }) => assert_eq!(what, "DH-HTTP"),
        other => panic!("expected a malformed-input error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// DHIP and DHAV.

fn dhip_frame(session: u32, id: u32, json: &str) -> Vec<u8> {
    let mut out = bytes::BytesMut::new();
    dhip::frame::encode(session, id, json.as_bytes(), &[], &mut out);
    out.to_vec()
}

#[test]
fn dhip_login_exchange_is_decoded_with_the_error_meaning() {
    let mut bytes = dhip_frame(
        0,
        1,
        r#"{"method":"global.login","id":1,"params":{"userName":"admin","password":"","clientType":"Web3.0","loginType":"Direct"}}"#,
    );
    assert_eq!(bytes.len(), 151);
    bytes.extend(dhip_frame(
        195_948_557,
        1,
        r#"{"id":1,"session":195948557,"result":false,"error":{"code":268632079,"message":"login challenge!"},"params":{"realm":"Login to FAKE","random":"987654321","encryption":"Default"}}"#,
    ));
    let v = lines(&hex_args(DissectKind::Dhip, &hex_of(&bytes))).unwrap();
    assert_eq!(v.len(), 2);
    assert_eq!(v[0]["type"], "dhip-request");
    assert_eq!(v[0]["method"], "global.login");
    assert_eq!(v[0]["header"]["package_length"], 119);
    assert_eq!(v[1]["type"], "dhip-response");
    assert_eq!(v[1]["session"], 195_948_557u64);
    assert_eq!(v[1]["error"]["code"], 268_632_079u64);
    assert_eq!(v[1]["error"]["meaning"], "login challenge");
    assert_eq!(v[1]["json"]["params"]["realm"], "Login to FAKE");
}

#[test]
fn dhip_event_pushes_are_shown_as_pushes() {
    let push = r#"{"id":8,"method":"client.notifyEventStream","params":{"SID":513,"eventList":[{"Action":"Pulse","Code":"SIPRegisterResult","Data":{"UTC":1739830027.0},"Index":0}]},"session":427917332}"#;
    let v = lines(&hex_args(
        DissectKind::Dhip,
        &hex_of(&dhip_frame(427_917_332, 8, push)),
    ))
    .unwrap();
    assert_eq!(v[0]["type"], "dhip-push");
    assert_eq!(v[0]["method"], "client.notifyEventStream");
    assert_eq!(
        v[0]["json"]["params"]["eventList"][0]["Code"],
        "SIPRegisterResult"
    );
}

#[test]
fn dhip_says_what_other_protocols_are() {
    let e = lines(&hex_args(
        DissectKind::Dhip,
        "a0 01 00 60 00 00 00 00 00 00",
    ))
    .unwrap_err();
    assert!(e.to_string().contains("DVRIP"), "{e}");
    let e = lines(&hex_args(
        DissectKind::Dhip,
        &hex_of(b"GET / HTTP/1.1\r\n\r\n"),
    ))
    .unwrap_err();
    assert!(e.to_string().contains("HTTP"), "{e}");
    let mut bad = dhip_frame(1, 2, "{\"id\":2,");
    let e = lines(&hex_args(DissectKind::Dhip, &hex_of(&bad))).unwrap_err();
    assert!(e.to_string().contains("invalid JSON"), "{e}");
    bad.truncate(36);
    let e = lines(&hex_args(DissectKind::Dhip, &hex_of(&bad))).unwrap_err();
    assert!(e.to_string().contains("ends inside"), "{e}");
}

const DHAV_VECTOR: &str = "44 48 41 56 fd 00 00 00 01 00 00 00 30 00 00 00 09 72 4c 61 f4 01 08 00 \
    80 00 f0 87 81 00 02 19 00 00 00 01 67 42 00 1f 64 68 61 76 30 00 00 00";

#[test]
fn dhav_vector_shows_codec_size_date_and_nal_types() {
    let v = lines(&hex_args(DissectKind::Dhav, DHAV_VECTOR)).unwrap();
    assert_eq!(v.len(), 1);
    let p = &v[0];
    assert_eq!(p["kind"], "video-key");
    assert_eq!(p["type_byte"], "0xfd");
    assert_eq!(
        p["frame_number"], 1,
        "not \"frame\": captures use that for theirs"
    );
    assert_eq!(p["date"], "2024-05-06 07:08:09");
    assert_eq!(p["ms"], 500);
    assert_eq!(p["video"]["codec"], "h264");
    assert_eq!(
        (p["video"]["width"].as_u64(), p["video"]["height"].as_u64()),
        (Some(1920), Some(1080))
    );
    assert_eq!(p["video"]["fps"], 25);
    assert_eq!(p["nal_types"], serde_json::json!([7]));
}

#[test]
fn dhav_file_with_damage_reports_the_resync() {
    let one = hex::decode(
        DHAV_VECTOR
            .split_whitespace()
            .collect::<String>()
            .replace('\\', ""),
    )
    .unwrap();
    let mut file = one.clone();
    file.extend_from_slice(b"garbage!");
    file.extend_from_slice(&one);
    let path = temp("damaged.dav");
    std::fs::write(&path, &file).unwrap();
    let args = DissectArgs {
        kind: DissectKind::Dhav,
        hex: None,
        pcap: None,
        file: Some(path),
        port: None,
    };
    let v = lines(&args).unwrap();
    assert_eq!(v.len(), 3, "{v:?}");
    assert_eq!(v[2]["type"], "dhav-resync");
    assert_eq!(v[2]["skipped_bytes"], 8);
}

#[test]
fn pcap_dhip_tcp_stream_and_discovery_datagrams() {
    let path = temp("dhip.pcap");
    let req = dhip_frame(
        0,
        1,
        r#"{"method":"magicBox.getDeviceType","params":{},"id":1,"session":5}"#,
    );
    let resp = dhip_frame(
        5,
        1,
        r#"{"id":1,"params":{"type":"SD-2N-4G"},"result":true,"session":5}"#,
    );
    let (r1, r2) = resp.split_at(20);
    let probe = dhip::discovery::probe(0).to_vec();
    let reply = dhip::discovery::reply(
        &serde_json::json!({"SerialNo": "ABC123", "Port": 5000, "IPv4Address": {"IPAddress": "192.168.1.10"}}),
        "3c:ef:8c:00:00:01",
        dhip::frame::Terminator::Nul,
    )
    .to_vec();
    let frames = vec![
        (
            1,
            0,
            ether_ipv4(PC, CAM, 6, &tcp(50000, 5000, 99, 0x02, &[])),
        ),
        (
            1,
            1,
            ether_ipv4(PC, CAM, 6, &tcp(50000, 5000, 100, 0x18, &req)),
        ),
        (
            1,
            2,
            ether_ipv4(CAM, PC, 6, &tcp(5000, 50000, 700, 0x18, r1)),
        ),
        (
            1,
            3,
            ether_ipv4(CAM, PC, 6, &tcp(5000, 50000, 720, 0x18, r2)),
        ),
        (1, 4, ether_ipv4(PC, CAM, 17, &udp(40000, 37810, &probe))),
        (1, 5, ether_ipv4(CAM, PC, 17, &udp(37810, 40000, &reply))),
    ];
    write_pcap(&path, &frames);
    let v = lines(&pcap_args(DissectKind::Dhip, &path, None)).unwrap();
    let types: Vec<&str> = v.iter().map(|o| o["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["dhip-request", "dhip-response", "dhip-request", "dhip-push"],
        "{v:?}"
    );
    assert_eq!(v[1]["json"]["params"]["type"], "SD-2N-4G");
    assert_eq!(v[1]["frame"], 4, "the response completes in frame 4");
    assert_eq!(v[2]["method"], "DHDiscover.search");
    assert_eq!(v[3]["device"]["serial"], "ABC123");
}
