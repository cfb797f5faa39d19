//! Fuzzes the DHAV demuxer: the input (after a few bytes choosing the chunk sizes) is pushed
//! in input-sized chunks. Checks that nothing panics, that every payload lies within the
//! bytes pushed, that the byte accounting (packets, skipped, buffered) never exceeds the
//! input, that the packet counter matches, and that the demuxer stops returning packets.
//! The input is followed by packets written from input-derived fields (`write_packet`);
//! on their own, the demuxer must give back exactly those packets.

#![no_main]

use bytes::BytesMut;
use camgate_fuzz::Input;
use dhip::dhav::{
    Demuxer, FILE_HEADER_LEN, FILE_PREFIX, HEADER_LEN, PackedDate, PacketSpec, PacketType,
    TRAILER_LEN, write_packet,
};
use libfuzzer_sys::fuzz_target;

/// Pushes `stream` in chunks of `sizes` (cycled), draining packets after each push.
fn demux(stream: &[u8], sizes: &[usize]) -> (Demuxer, Vec<dhip::dhav::Packet>) {
    let mut d = Demuxer::new();
    let mut packets = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    let drain = |d: &mut Demuxer, packets: &mut Vec<_>, pushed: usize| {
        // Every packet takes at least 32 bytes, so this bounds a demuxer that terminates.
        for _ in 0..pushed / (HEADER_LEN + TRAILER_LEN) + 2 {
            match d.next_packet() {
                Some(p) => {
                    assert!(p.payload.len() < pushed.max(1), "payload beyond the input");
                    packets.push(p);
                }
                None => return,
            }
        }
        panic!("demuxer does not stop returning packets");
    };
    while pos < stream.len() {
        let n = sizes[i % sizes.len()].min(stream.len() - pos);
        i += 1;
        d.push(&stream[pos..pos + n]);
        pos += n;
        drain(&mut d, &mut packets, pos);
    }
    // Everything pushed: it stays at None.
    drain(&mut d, &mut packets, pos);
    assert!(d.next_packet().is_none());
    (d, packets)
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    let k = usize::from(inp.u8() % 8 + 1);
    let mut sizes: Vec<usize> = inp
        .take(k)
        .iter()
        .map(|b| usize::from(*b) * 16 + 1)
        .collect();
    if sizes.is_empty() {
        sizes.push(1);
    }
    let stream = inp.rest();

    // Write packets from input-derived fields; the demuxer must return exactly them.
    let mut inp = Input::new(data);
    let kind = PacketType::from_byte(inp.u8());
    let channel = inp.u8();
    let frame_number = inp.u32_le();
    let date = PackedDate::unpack(inp.u32_le());
    let ms = inp.u16_le();
    let ext_len = usize::from(inp.u8());
    let copies = usize::from(inp.u8() % 3) + 1;
    let ext = inp.take(ext_len).to_vec();
    let payload = inp.rest();
    let spec = PacketSpec {
        kind,
        channel,
        frame_number,
        date,
        ms,
        ext: &ext,
        payload,
    };
    let mut out = BytesMut::new();
    for _ in 0..copies {
        write_packet(&spec, &mut out);
    }

    // The input followed by the written packets: damage, then packets to resync on.
    let stream = [stream, &out[..]].concat();
    let stream = &stream[..];
    let (d, packets) = demux(stream, &sizes);
    let stats = d.stats();
    assert_eq!(stats.packets, packets.len() as u64);
    let file_header = if stream.starts_with(FILE_PREFIX) && stream.len() >= FILE_HEADER_LEN {
        FILE_HEADER_LEN
    } else {
        0
    };
    let in_packets: usize = packets
        .iter()
        .map(|p| HEADER_LEN + p.payload.len() + TRAILER_LEN)
        .sum();
    assert!(
        in_packets + stats.skipped_bytes as usize + d.buffered() + file_header <= stream.len(),
        "more bytes accounted for than pushed"
    );
    assert!(stats.resyncs <= stats.skipped_bytes);
    let _ = d.video_info();
    let _ = d.audio_info();

    let (d, got) = demux(&out, &sizes);
    assert_eq!(got.len(), copies, "written packets not all demuxed");
    assert_eq!(d.buffered(), 0);
    assert_eq!(d.stats().skipped_bytes, 0);
    for p in &got {
        assert_eq!(&p.payload[..], payload);
        assert_eq!(p.kind, kind);
        assert_eq!(p.kind.to_byte(), kind.to_byte());
        assert_eq!(p.channel, channel);
        assert_eq!(p.frame_number, frame_number);
        assert_eq!(p.date, date);
        assert_eq!(p.ms, ms);
    }
});
