//! Fuzzes the fragmented MP4 muxer (`camgate dump`) with what a camera controls: its codec
//! parameters (SPS/PPS/VPS, AAC config, audio clock rate and channels) and its frames
//! (timestamps that stall, jump or go back, keyframe flags, payloads, parameter changes).
//! Checks that nothing panics and that the output is whole top-level boxes, init segment
//! first.

#![no_main]

use std::time::Duration;

use bytes::Bytes;
use camgate_fuzz::Input;
use libfuzzer_sys::fuzz_target;
use media::mux::{Fmp4Muxer, Mp4Options};
use media::{Codec, Frame, G711Law, TrackInfo};

fn bytes(inp: &mut Input<'_>, max: usize) -> Bytes {
    Bytes::copy_from_slice(inp.sized(max))
}

fn video(inp: &mut Input<'_>) -> Codec {
    match inp.u8() % 3 {
        0 => Codec::H264 {
            sps: bytes(inp, 64),
            pps: bytes(inp, 16),
        },
        1 => Codec::H265 {
            vps: bytes(inp, 32),
            sps: bytes(inp, 64),
            pps: bytes(inp, 16),
        },
        _ => Codec::Jpeg,
    }
}

fn audio(inp: &mut Input<'_>) -> Option<Codec> {
    match inp.u8() % 3 {
        0 => None,
        1 => Some(Codec::Aac {
            config: Some(bytes(inp, 8))
                .filter(|c| !c.is_empty())
                .unwrap_or(Bytes::from_static(&[0x12, 0x10])),
            rate: inp.u32_le(),
            channels: inp.u8(),
        }),
        _ => Some(Codec::G711 {
            law: if inp.u8() & 1 == 0 {
                G711Law::A
            } else {
                G711Law::U
            },
            rate: inp.u32_le(),
            channels: inp.u8(),
        }),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    let mut tracks = vec![(0, TrackInfo::new(video(&mut inp)))];
    if let Some(a) = audio(&mut inp) {
        tracks.push((1, TrackInfo::new(a)));
    }
    let options = Mp4Options {
        fragment_duration: Duration::from_millis(u64::from(inp.u16_le())),
    };
    let Ok(mut m) = Fmp4Muxer::new(&tracks, options) else {
        return;
    };
    let mut out = Vec::new();
    // Sources give timestamps that move by at most 2^31 per frame (extended RTP time).
    let mut ts = [0i64; 3];
    while !inp.is_empty() {
        let ctl = inp.u8();
        let track = usize::from(ctl & 3) % 3;
        if ctl & 0x80 != 0 {
            let codec = if track == 0 {
                Some(video(&mut inp))
            } else {
                audio(&mut inp)
            };
            if let Some(c) = codec {
                m.update_track(track, &TrackInfo::new(c));
            }
            continue;
        }
        ts[track] += i64::from(inp.u32_le() as i32);
        let frame = Frame::new(track, ts[track], ctl & 4 != 0, bytes(&mut inp, 255));
        m.push(&frame, &mut out);
    }
    m.finish(&mut out);

    let mut rest = &out[..];
    let mut first = true;
    while !rest.is_empty() {
        assert!(rest.len() >= 8, "a box header cut short");
        let size = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        assert!(
            (8..=rest.len()).contains(&size),
            "box size {size} of {}",
            rest.len()
        );
        if first {
            assert_eq!(&rest[4..8], b"ftyp");
            first = false;
        }
        rest = &rest[size..];
    }
});
