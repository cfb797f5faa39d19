//! Fuzzes `codec_from_rtpmap` with arbitrary payload types, rtpmap and fmtp values, and
//! checks that any codec it accepts survives `media_description` and back.

#![no_main]

use libfuzzer_sys::fuzz_target;
use media::TrackInfo;
use media::sdp::{codec_from_rtpmap, media_description};

fuzz_target!(|data: &[u8]| {
    let Some((&pt, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let mut parts = text.splitn(2, '\n');
    let rtpmap = parts.next().filter(|s| !s.is_empty());
    let fmtp = parts.next();
    if let Ok(codec) = codec_from_rtpmap(pt & 0x7f, rtpmap, fmtp) {
        let md = media_description(&TrackInfo::new(codec.clone()), 96);
        let back = codec_from_rtpmap(md.payload_type, Some(&md.rtpmap), md.fmtp.as_deref());
        assert_eq!(back, Ok(codec));
    }
});
