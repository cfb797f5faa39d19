//! Property tests: every codec's frames survive packetize → RTP wire → depacketize
//! byte-identical, for random unit sizes (1 byte to 100 KB) and max_payload values.

mod common;

use bytes::Bytes;
use media::codec::aac::AudioSpecificConfig;
use media::codec::jpeg::{self, Rfc2435Params};
use media::codec::{h264, h265};
use media::{Codec, Frame, G711Law};
use proptest::prelude::*;

/// Deterministic filler bytes without zeros, so no Annex B start code appears by accident.
fn filler(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 255) as u8 + 1
        })
        .collect()
}

fn unit_len() -> impl Strategy<Value = usize> {
    prop_oneof![4 => 1..64usize, 4 => 64..4000usize, 1 => 4000..100_000usize]
}

const SPS: &[u8] = &[0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x3d];
const PPS: &[u8] = &[0x68, 0xcb, 0x83, 0xcb, 0x20];

fn h264_unit() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(vec![1u8, 5, 6, 7, 8, 9]),
        unit_len(),
        any::<u64>(),
    )
        .prop_map(|(t, len, seed)| {
            let mut v = vec![0x60 | t];
            v.extend(filler(seed, len - 1));
            v
        })
}

fn h265_unit() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(vec![1u8, 19, 21, 32, 33, 34, 35, 39]),
        unit_len(),
        any::<u64>(),
    )
        .prop_map(|(t, len, seed)| {
            let mut v = vec![t << 1, 0x01];
            v.extend(filler(seed, len.saturating_sub(1)));
            v
        })
}

/// AVC-format access units; keyframes get in-band parameter sets, as frames must carry them.
fn access_units(units: Vec<Vec<Vec<u8>>>, is_key: fn(&[u8]) -> bool, sets: &[&[u8]]) -> Vec<Frame> {
    units
        .into_iter()
        .enumerate()
        .map(|(i, mut au)| {
            if au.iter().any(|u| is_key(u)) {
                for s in sets.iter().rev() {
                    au.insert(0, s.to_vec());
                }
            }
            let data = media::codec::nal::avc_from_units(au.iter().map(Vec::as_slice));
            let key = au.iter().any(|u| is_key(u));
            Frame::new(0, 1_000 + 3_000 * i as i64, key, data)
        })
        .collect()
}

fn assert_same(out: &[Frame], frames: &[Frame]) {
    assert_eq!(out.len(), frames.len(), "frame count");
    for (o, f) in out.iter().zip(frames) {
        assert_eq!(o.ts, f.ts, "timestamp");
        assert_eq!(o.keyframe, f.keyframe, "keyframe flag at ts {}", f.ts);
        assert!(o.data == f.data, "payload differs at ts {}", f.ts);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn h264_access_units_round_trip(
        units in prop::collection::vec(prop::collection::vec(h264_unit(), 1..6), 1..4),
        max_payload in 100usize..1500,
    ) {
        let frames = access_units(
            units,
            |u| h264::nal_type(u) == Some(h264::NAL_IDR),
            &[SPS, PPS],
        );
        let codec = Codec::H264 { sps: Bytes::from_static(SPS), pps: Bytes::from_static(PPS) };
        assert_same(&common::round_trip(&codec, &frames, max_payload), &frames);
    }

    #[test]
    fn h265_access_units_round_trip(
        units in prop::collection::vec(prop::collection::vec(h265_unit(), 1..6), 1..4),
        max_payload in 100usize..1500,
    ) {
        let (vps, sps, pps): (&[u8], &[u8], &[u8]) =
            (&[0x40, 0x01, 0x0c], &[0x42, 0x01, 0x01], &[0x44, 0x01, 0xc1]);
        let frames = access_units(
            units,
            |u| h265::nal_type(u).is_some_and(h265::is_irap),
            &[vps, sps, pps],
        );
        let codec = Codec::H265 {
            vps: Bytes::copy_from_slice(vps),
            sps: Bytes::copy_from_slice(sps),
            pps: Bytes::copy_from_slice(pps),
        };
        assert_same(&common::round_trip(&codec, &frames, max_payload), &frames);
    }

    #[test]
    fn jpeg_frames_round_trip(
        rtp_type in 0u8..2,
        restart_interval in prop_oneof![Just(0u16), 1u16..500],
        w8 in 1u16..=255,
        h8 in 1u16..=255,
        seed in any::<u64>(),
        scan_len in prop_oneof![Just(0usize), 1..2000usize, 2000..200_000usize],
        max_payload in 200usize..1500,
    ) {
        let t = filler(seed, 128);
        let mut tables = [[0u8; 64]; 2];
        tables[0].copy_from_slice(&t[..64]);
        tables[1].copy_from_slice(&t[64..]);
        let mut file = jpeg::build_header(&Rfc2435Params {
            rtp_type,
            q: 255,
            width: w8 * 8,
            height: h8 * 8,
            restart_interval,
            quant_tables: Some(tables),
        })
        .unwrap();
        // Entropy-coded data: 0xFF is always stuffed with 0x00.
        for b in filler(seed.rotate_left(7), scan_len) {
            file.push(b);
            if b == 0xff {
                file.push(0);
            }
        }
        file.extend_from_slice(&[0xff, 0xd9]);
        let frames = vec![Frame::new(0, 0, true, Bytes::from(file))];
        assert_same(&common::round_trip(&Codec::Jpeg, &frames, max_payload), &frames);
    }

    #[test]
    fn g711_frames_round_trip(
        lens in prop::collection::vec(1usize..=100, 1..10),
        seed in any::<u64>(),
        max_payload in 100usize..1500,
    ) {
        let mut ts = 0;
        let frames: Vec<Frame> = lens
            .iter()
            .map(|&n| {
                let len = n * max_payload / 100;
                let f = Frame::new(2, ts, true, Bytes::from(filler(seed ^ ts as u64, len)));
                ts += len as i64;
                f
            })
            .collect();
        let codec = Codec::G711 { law: G711Law::U, rate: 8000, channels: 1 };
        let out = common::round_trip(&codec, &frames, max_payload);
        assert_same(&out, &frames);
        assert!(out.iter().all(|f| f.track == 2));
    }

    #[test]
    fn aac_access_units_round_trip(
        lens in prop::collection::vec(1usize..=8191, 1..6),
        seed in any::<u64>(),
        max_payload in 100usize..1500,
    ) {
        let frames: Vec<Frame> = lens
            .iter()
            .enumerate()
            .map(|(i, &len)| Frame::new(1, 1024 * i as i64, true, Bytes::from(filler(seed + i as u64, len))))
            .collect();
        let codec = Codec::Aac {
            config: AudioSpecificConfig::aac_lc(48000, 2).to_bytes(),
            rate: 48000,
            channels: 2,
        };
        assert_same(&common::round_trip(&codec, &frames, max_payload), &frames);
    }
}

/// Test payload types: 96 + track, like the RTSP server's dynamic ones.
fn test_pts(tracks: &[media::TrackInfo]) -> Vec<u8> {
    (0..tracks.len()).map(|i| 96 + i as u8).collect()
}

#[test]
fn shared_rtp_numbers_a_streams_frames_in_order_and_they_depacketize() {
    use media::rtp::RtpPacket;
    use media::rtp::interleaved::SharedRtp;
    let codec = Codec::H264 {
        sps: Bytes::from_static(SPS),
        pps: Bytes::from_static(PPS),
    };
    let tracks = [
        media::TrackInfo::new(codec.clone()),
        media::TrackInfo::new(Codec::G711 {
            law: G711Law::A,
            rate: 8000,
            channels: 1,
        }),
    ];
    let shared = SharedRtp::new(1000, test_pts);
    shared.set_tracks(&tracks);
    let mut depack = media::rtp::depacketizer(&codec, 0);
    let mut next_seq = [None::<u16>; 2];
    for i in 0..20u64 {
        let unit = {
            let mut v = vec![0x65];
            v.extend(filler(i, 500 + 700 * i as usize));
            v
        };
        let mut data = (unit.len() as u32).to_be_bytes().to_vec();
        data.extend(&unit);
        let video = Frame::new(0, 3000 * i as i64, true, Bytes::from(data.clone()));
        let audio = Frame::new(1, 320 * i as i64, true, Bytes::from(vec![0xd5; 320]));
        for f in [&video, &audio] {
            shared.prepare(f, &tracks[f.track]);
            let w = f.wire().expect("prepared");
            assert_eq!(w.channel as usize, 2 * f.track);
            assert_eq!(w.ssrc, shared.ssrc(f.track));
            if let Some(s) = next_seq[f.track] {
                assert_eq!(w.first_seq, s, "track {} numbering", f.track);
            }
            next_seq[f.track] = Some(w.first_seq.wrapping_add(w.packets as u16));
            // Walk the interleaved packets.
            let mut rest = w.bytes.clone();
            let mut n = 0;
            while !rest.is_empty() {
                assert_eq!(rest[0], b'$');
                assert_eq!(rest[1] as usize, 2 * f.track);
                let len = u16::from_be_bytes([rest[2], rest[3]]) as usize;
                let pkt = RtpPacket::parse(rest.slice(4..4 + len)).unwrap();
                assert_eq!(pkt.sequence, w.first_seq.wrapping_add(n));
                assert_eq!(pkt.timestamp, w.rtp_ts);
                assert_eq!(pkt.payload_type, 96 + f.track as u8);
                if f.track == 0 {
                    depack.push(&pkt).unwrap();
                }
                rest = rest.slice(4 + len..);
                n += 1;
            }
            assert_eq!(u32::from(n), w.packets);
        }
        let out = depack.pull().expect("frame completed");
        // The depacketizer puts the parameter sets in front of a keyframe.
        assert!(out.data.ends_with(&data), "frame {i} survives");
    }
}
