//! Fuzzes the parsers of what a camera describes its media with: H.264 and H.265 sequence
//! parameter sets (from `sprop-*` in the SDP or in-band), the AAC AudioSpecificConfig
//! (`config=`), ADTS headers, and JPEG files (MJPEG frames before RTP/JPEG packetization).
//! Checks that none panics, that a parsed SPS has a picture, that an ADTS header writes back
//! to the same fields, and that a parsed JPEG's scan lies in the input and its RFC 2435
//! header can be rebuilt.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use media::Codec;
use media::codec::aac::{AdtsHeader, AudioSpecificConfig};
use media::codec::jpeg::{self, Rfc2435Params};
use media::codec::nal::avc_from_units;
use media::codec::{ensure_parameter_sets, h264, h265};

fuzz_target!(|data: &[u8]| {
    // As given, and behind the NAL header the parser expects, so the type check passes.
    for sps in [data, &[&[0x67][..], data].concat()] {
        if let Ok(s) = h264::Sps::parse(&sps) {
            assert!(s.width > 0 && s.height > 0, "{s:?}");
            assert_eq!(s.profile_level_id().len(), 6);
        }
        let _ = h264::profile_level_id(&sps);
    }
    for sps in [data, &[&[0x42, 0x01][..], data].concat()] {
        if let Ok(s) = h265::Sps::parse(&sps) {
            assert!(s.width > 0 && s.height > 0, "{s:?}");
        }
    }
    // A keyframe with parameter sets taken from the input gets them put in front.
    let idr = avc_from_units([&[0x65u8, 0x88][..]]);
    let codec = Codec::H264 {
        sps: Bytes::copy_from_slice(data),
        pps: Bytes::from_static(&[0x68, 0xce]),
    };
    let _ = ensure_parameter_sets(&codec, &idr);

    if let Ok(c) = AudioSpecificConfig::parse(data) {
        assert!(c.sample_rate > 0);
        let _ = (c.to_bytes(), c.channels());
    }
    if let Ok(h) = AdtsHeader::parse(data) {
        let back = AdtsHeader::parse(&h.to_bytes()).expect("a written ADTS header parses");
        assert_eq!(
            (back.object_type, back.frequency_index, back.channel_config),
            (h.object_type, h.frequency_index, h.channel_config)
        );
        assert_eq!(
            (back.frame_length, back.raw_blocks),
            (h.frame_length, h.raw_blocks)
        );
        let _ = h.config();
    }

    for file in [data, &[&[0xff, 0xd8][..], data].concat()] {
        if let Ok(info) = jpeg::parse(&file) {
            assert!(info.scan_start <= info.scan_end && info.scan_end <= file.len());
            assert!(info.width > 0 && info.height > 0);
            jpeg::build_header(&Rfc2435Params {
                rtp_type: info.rtp_type,
                q: 255,
                width: info.width,
                height: info.height,
                restart_interval: info.restart_interval,
                quant_tables: Some(info.quant_tables),
            })
            .expect("a parsed JPEG's header can be rebuilt");
        }
    }
});
