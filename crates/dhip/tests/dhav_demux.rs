//! DHAV: the §4.3 vector, every extension record and codec id, timestamps, resync on damage,
//! the exported-file prefix, and writer → demuxer round trips under arbitrary chunking.

use bytes::BytesMut;
use dhip::dhav::{
    AudioCodec, Demuxer, PackedDate, PacketSpec, PacketType, VideoCodec, audio_ext, video_ext,
    write_packet,
};
use proptest::prelude::*;

const VECTOR: &str = "44484156fd00000001000000300000000972 4c61f4010800 80 00 f0 87 81 00 02 19 00 00 00 01 67 42 00 1f 64 68 61 76 30 00 00 00";

fn vector() -> Vec<u8> {
    hex::decode(VECTOR.split_whitespace().collect::<String>()).unwrap()
}

#[test]
fn the_section_4_3_vector_demuxes_and_is_what_the_writer_makes() {
    let v = vector();
    assert_eq!(v.len(), 48);
    let mut d = Demuxer::new();
    d.push(&v);
    let p = d.next_packet().expect("one packet");
    assert_eq!(p.kind, PacketType::VideoKey);
    assert_eq!(p.frame_number, 1);
    assert_eq!(
        p.date,
        PackedDate {
            year: 2024,
            month: 5,
            day: 6,
            hour: 7,
            minute: 8,
            second: 9
        }
    );
    assert_eq!(p.date.pack(), 0x614C_7209);
    assert_eq!(p.ms, 500);
    let vi = p.video.unwrap();
    assert_eq!(vi.codec, Some(VideoCodec::H264(2)));
    assert_eq!((vi.width, vi.height, vi.fps), (1920, 1080, 25));
    assert_eq!(&p.payload[..], &[0, 0, 0, 1, 0x67, 0x42, 0, 0x1f]);
    let mut out = BytesMut::new();
    write_packet(
        &PacketSpec {
            kind: PacketType::VideoKey,
            channel: 0,
            frame_number: 1,
            date: p.date,
            ms: 500,
            ext: &[0x80, 0x00, 0xf0, 0x87, 0x81, 0x00, 0x02, 0x19],
            payload: &p.payload,
        },
        &mut out,
    );
    assert_eq!(&out[..], &v[..]);
}

#[test]
fn every_codec_id_has_a_name() {
    for (id, want) in [
        (0x01, VideoCodec::Mpeg4),
        (0x02, VideoCodec::H264(2)),
        (0x03, VideoCodec::Mjpeg),
        (0x04, VideoCodec::H264(4)),
        (0x08, VideoCodec::H264(8)),
        (0x0C, VideoCodec::H265),
    ] {
        assert_eq!(VideoCodec::from_id(id), want);
        assert_eq!(want.id(), id);
        assert_ne!(want.name(), "unknown");
    }
    for (id, want) in [
        (0x07, AudioCodec::PcmS8),
        (0x0C, AudioCodec::PcmS16Le(0x0C)),
        (0x10, AudioCodec::PcmS16Le(0x10)),
        (0x0A, AudioCodec::Mulaw(0x0A)),
        (0x16, AudioCodec::Mulaw(0x16)),
        (0x0E, AudioCodec::Alaw),
        (0x1A, AudioCodec::Aac),
        (0x1F, AudioCodec::Mp2),
        (0x21, AudioCodec::Mp3),
        (0x0D, AudioCodec::MsAdpcm),
    ] {
        assert_eq!(AudioCodec::from_id(id), want);
        assert_eq!(want.id(), id);
        assert_ne!(want.name(), "unknown");
    }
    for (b, t) in [
        (0xFD, PacketType::VideoKey),
        (0xFC, PacketType::VideoP),
        (0xFE, PacketType::VideoB),
        (0xFB, PacketType::Jpeg),
        (0xF0, PacketType::Audio),
        (0xF1, PacketType::Aux),
        (0xFA, PacketType::OldMpeg4),
    ] {
        assert_eq!(PacketType::from_byte(b), t);
        assert_eq!(t.to_byte(), b);
    }
}

fn packet(kind: PacketType, frame: u32, secs: i64, ms: u16, ext: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    write_packet(
        &PacketSpec {
            kind,
            channel: 1,
            frame_number: frame,
            date: PackedDate::from_unix(secs),
            ms,
            ext,
            payload,
        },
        &mut out,
    );
    out.to_vec()
}

#[test]
fn extension_records_set_codec_size_and_audio_and_unknown_ones_are_skipped() {
    let t0 = 1_715_000_000;
    let mut ext = vec![0x9B, 0, 0, 0, 0, 0, 0, 0, 0x84, 0, 0, 0];
    ext.extend(video_ext(VideoCodec::H265, 3840, 2160, 30));
    ext.extend([0x77, 1, 2, 3]); // unknown: the rest is skipped
    let mut s = packet(PacketType::VideoKey, 1, t0, 0, &ext, b"\0\0\0\x01\x40\x01");
    s.extend(packet(
        PacketType::Audio,
        2,
        t0,
        10,
        &[0x8C, 0, 2, 0x1A, 9, 0, 0, 0],
        b"aac",
    ));
    s.extend(packet(
        PacketType::Audio,
        3,
        t0,
        30,
        &audio_ext(AudioCodec::Alaw, 1, 8000),
        b"g711",
    ));
    s.extend(packet(PacketType::Aux, 4, t0, 40, &[], b"ivs"));
    let mut d = Demuxer::new();
    d.push(&s);
    let v = d.next_packet().unwrap();
    let vi = v.video.unwrap();
    assert_eq!(vi.codec, Some(VideoCodec::H265));
    assert_eq!((vi.width, vi.height, vi.fps), (3840, 2160, 30));
    let a = d.next_packet().unwrap();
    let ai = a.audio.unwrap();
    assert_eq!(
        (ai.codec, ai.channels, ai.rate),
        (AudioCodec::Aac, 2, 48000)
    );
    let a = d.next_packet().unwrap();
    assert_eq!(a.audio.unwrap().codec, AudioCodec::Alaw);
    assert_eq!(&a.payload[..], b"g711");
    let x = d.next_packet().unwrap();
    assert_eq!(x.kind, PacketType::Aux);
    assert!(d.next_packet().is_none());
    assert_eq!(d.stats().skipped_bytes, 0);
}

#[test]
fn timestamps_follow_the_millisecond_counter_across_seconds_and_wraps() {
    let t0 = 1_715_000_000i64;
    let ext = video_ext(VideoCodec::H264(2), 640, 360, 25);
    let mut s = Vec::new();
    // 40 ms apart, the counter wrapping at 65536, the date ticking each second.
    for i in 0..100u32 {
        let ms_total = 65_000 + i * 40;
        let secs = t0 + i64::from(i * 40) / 1000;
        s.extend(packet(
            PacketType::VideoP,
            i,
            secs,
            ms_total as u16,
            &ext,
            b"x",
        ));
    }
    let mut d = Demuxer::new();
    d.push(&s);
    let mut last = None;
    while let Some(p) = d.next_packet() {
        if let Some(l) = last {
            assert_eq!(p.pts_ms - l, 40, "frame {}", p.frame_number);
        }
        last = Some(p.pts_ms);
    }
    assert_eq!(last.unwrap(), t0 * 1000 + 99 * 40);
}

#[test]
fn damage_is_skipped_and_counted_and_the_next_packet_is_found() {
    let a = packet(PacketType::VideoP, 1, 1_715_000_000, 0, &[], b"first");
    let b = packet(PacketType::VideoP, 2, 1_715_000_000, 40, &[], b"second");
    let c = packet(PacketType::VideoP, 3, 1_715_000_000, 80, &[], b"third");
    let mut bad_trailer = b.clone();
    let n = bad_trailer.len();
    bad_trailer[n - 1] ^= 0xff;
    let mut s = b"garbage".to_vec();
    s.extend(&a);
    s.extend(b"DHA");
    s.extend(&bad_trailer);
    s.extend(&c);
    let mut d = Demuxer::new();
    d.push(&s);
    let got: Vec<_> = std::iter::from_fn(|| d.next_packet())
        .map(|p| p.payload.to_vec())
        .collect();
    assert_eq!(got, vec![b"first".to_vec(), b"third".to_vec()]);
    let st = d.stats();
    assert_eq!(st.skipped_bytes, (7 + 3 + bad_trailer.len()) as u64);
    assert_eq!(st.resyncs, 2);
    // The same from a whole buffer, zero-copy; trailing garbage is skipped too.
    s.extend(b"DHAV\xfd");
    let data = bytes::Bytes::from(s);
    let mut all = Demuxer::demux_all(data.clone());
    let got: Vec<_> = all.by_ref().map(|p| p.payload).collect();
    assert_eq!(got, vec![&b"first"[..], &b"third"[..]]);
    assert!(
        got.iter()
            .all(|p| data.as_ptr_range().contains(&p.as_ptr()))
    );
    assert_eq!(
        all.stats().skipped_bytes,
        (7 + 3 + bad_trailer.len() + 5) as u64
    );
}

#[test]
fn an_exported_file_header_is_skipped() {
    let mut s = b"DAHUA".to_vec();
    s.resize(0x400, 0xAA);
    s.extend(vector());
    let mut d = Demuxer::new();
    for c in s.chunks(7) {
        d.push(c);
    }
    assert_eq!(d.next_packet().unwrap().frame_number, 1);
    assert_eq!(d.stats().skipped_bytes, 0);
}

#[test]
fn a_huge_length_field_is_damage_not_a_wait() {
    let mut s = vector();
    s[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    s.extend(vector());
    let mut d = Demuxer::new();
    d.push(&s);
    assert_eq!(d.next_packet().unwrap().frame_number, 1);
    assert!(d.next_packet().is_none());
}

proptest! {
    #[test]
    fn written_packets_demux_identically_under_any_chunking(
        packets in prop::collection::vec((0u8..4, prop::collection::vec(any::<u8>(), 0..2000)), 1..20),
        chunk in 1usize..500,
    ) {
        let kinds = [PacketType::VideoKey, PacketType::VideoP, PacketType::Audio, PacketType::Aux];
        let mut s = Vec::new();
        for (i, (k, payload)) in packets.iter().enumerate() {
            s.extend(packet(kinds[*k as usize], i as u32, 1_715_000_000, (i * 40) as u16, &[], payload));
        }
        let mut d = Demuxer::new();
        let mut got = Vec::new();
        for c in s.chunks(chunk) {
            d.push(c);
            while let Some(p) = d.next_packet() {
                got.push((p.kind, p.payload.to_vec()));
            }
        }
        let want: Vec<_> = packets.iter().map(|(k, p)| (kinds[*k as usize], p.clone())).collect();
        prop_assert_eq!(&got, &want);
        prop_assert_eq!(d.stats().skipped_bytes, 0);
        let whole: Vec<_> = Demuxer::demux_all(bytes::Bytes::from(s))
            .map(|p| (p.kind, p.payload.to_vec()))
            .collect();
        prop_assert_eq!(whole, want);
    }

    #[test]
    fn dates_round_trip(secs in 946_684_800i64..2_900_000_000) {
        let d = PackedDate::from_unix(secs);
        prop_assert_eq!(PackedDate::unpack(d.pack()), d);
        prop_assert_eq!(d.to_unix(), secs);
    }
}
