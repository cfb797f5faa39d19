//! Property tests: arbitrary bytes fed as RTP payloads (with random markers, sequence jumps
//! and timestamps) into every depacketizer never panic, and whatever frames come out are
//! well-formed for their codec.

use bytes::Bytes;
use media::codec::aac::AudioSpecificConfig;
use media::codec::nal::AvcIter;
use media::rtp::{self, RtpPacket};
use media::{Codec, G711Law};
use proptest::prelude::*;

fn codecs() -> Vec<Codec> {
    vec![
        Codec::H264 {
            sps: Bytes::from_static(&[0x67, 0x42, 0xc0, 0x1e]),
            pps: Bytes::from_static(&[0x68, 0xce]),
        },
        Codec::H265 {
            vps: Bytes::from_static(&[0x40, 0x01]),
            sps: Bytes::from_static(&[0x42, 0x01]),
            pps: Bytes::from_static(&[0x44, 0x01]),
        },
        Codec::Jpeg,
        Codec::G711 {
            law: G711Law::A,
            rate: 8000,
            channels: 1,
        },
        Codec::Aac {
            config: AudioSpecificConfig::aac_lc(16000, 1).to_bytes(),
            rate: 16000,
            channels: 1,
        },
    ]
}

/// A payload whose first bytes are often a meaningful payload header for some codec.
fn payload() -> impl Strategy<Value = Vec<u8>> {
    let interesting = prop::sample::select(vec![
        0x7cu8, 0x78, 0x65, 0x41, 0x67, 0x00, 0x79, 0x7d, // H.264 FU-A, STAP-A, ...
        0x62, 0x60, 0x26, 0x64, // H.265 FU, AP, IDR, PACI
    ]);
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        (interesting, prop::collection::vec(any::<u8>(), 0..300)).prop_map(|(b, mut v)| {
            v.insert(0, b);
            v
        }),
        // RFC 2435 main header with small offsets, then anything.
        (0u8..4, 0u8..130, prop::collection::vec(any::<u8>(), 0..300)).prop_map(
            |(off, t, mut v)| {
                let mut p = vec![0, 0, 0, off, t, 255, 4, 4, 0, 0, 0, 128];
                p.append(&mut v);
                p
            }
        ),
        // RFC 3640 AU-headers-length 16, then anything.
        prop::collection::vec(any::<u8>(), 0..300).prop_map(|mut v| {
            v.splice(0..0, [0, 16]);
            v
        }),
    ]
}

fn packets() -> impl Strategy<Value = Vec<(Vec<u8>, bool, u16, u32)>> {
    prop::collection::vec(
        (
            payload(),
            any::<bool>(),
            prop_oneof![8 => Just(1u16), 1 => Just(0u16), 1 => any::<u16>()],
            prop_oneof![3 => Just(0u32), 1 => Just(3000u32), 1 => any::<u32>()],
        ),
        1..40,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_payloads_never_panic_and_frames_are_well_formed(pkts in packets()) {
        for codec in codecs() {
            let mut d = rtp::depacketizer(&codec, 3);
            let (mut seq, mut ts) = (0u16, 0u32);
            for (payload, marker, dseq, dts) in &pkts {
                seq = seq.wrapping_add(*dseq);
                ts = ts.wrapping_add(*dts);
                let _ = d.push(&RtpPacket {
                    payload_type: 96,
                    sequence: seq,
                    timestamp: ts,
                    ssrc: 9,
                    marker: *marker,
                    payload: Bytes::copy_from_slice(payload),
                });
                while let Some(f) = d.pull() {
                    prop_assert_eq!(f.track, 3);
                    match &codec {
                        Codec::H264 { .. } | Codec::H265 { .. } => {
                            let mut it = AvcIter::new(&f.data);
                            prop_assert!(it.by_ref().all(|u| !u.is_empty()));
                            prop_assert!(!it.truncated());
                        }
                        Codec::Jpeg => {
                            prop_assert!(f.data.starts_with(&[0xff, 0xd8]));
                            prop_assert!(f.data.ends_with(&[0xff, 0xd9]));
                        }
                        Codec::G711 { .. } => prop_assert!(!f.data.is_empty()),
                        Codec::Aac { .. } => prop_assert!(f.data.len() <= 8191),
                    }
                }
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_rtp_parser(data in prop::collection::vec(any::<u8>(), 0..100)) {
        if let Ok(p) = RtpPacket::parse(Bytes::from(data.clone())) {
            prop_assert!(p.payload.len() + 12 <= data.len());
            prop_assert_eq!(p.payload_type, data[1] & 0x7f);
        }
        let _ = rtp::rtcp::parse_compound(&data);
    }

    #[test]
    fn rtp_header_round_trips(
        payload_type in 0u8..128,
        sequence in any::<u16>(),
        timestamp in any::<u32>(),
        ssrc in any::<u32>(),
        marker in any::<bool>(),
        payload in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        // Payload types 72..=76 with the marker look like RTCP and are refused on purpose.
        prop_assume!(!(marker && (72..=76).contains(&payload_type)));
        let p = RtpPacket { payload_type, sequence, timestamp, ssrc, marker, payload: Bytes::from(payload) };
        prop_assert_eq!(RtpPacket::parse(p.to_bytes()).unwrap(), p);
    }
}
