//! Fuzzes SDP session parsing and the mapping of every media's rtpmap/fmtp to a codec, as
//! `dissect sdp` and the RTSP source do with a camera's DESCRIBE answer.

#![no_main]

use libfuzzer_sys::fuzz_target;
use media::sdp::codec_from_rtpmap;

fuzz_target!(|data: &[u8]| {
    let Ok(session) = sdp_types::Session::parse(data) else {
        return;
    };
    for m in &session.medias {
        let Ok(pt) = m.fmt.split_whitespace().next().unwrap_or("").parse::<u8>() else {
            continue;
        };
        let rtpmap = m.get_first_attribute_value("rtpmap").ok().flatten();
        let fmtp = m.get_first_attribute_value("fmtp").ok().flatten();
        let _ = codec_from_rtpmap(pt, rtpmap, fmtp);
    }
});
