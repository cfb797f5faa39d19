//! Fuzzes the mapping of an SDP's media sections (m=, a=rtpmap, a=fmtp) to codecs, as
//! `dissect sdp` and the RTSP source do with a camera's DESCRIBE answer. (The lines are split
//! here rather than by sdp-types 0.1.8, whose parser asserts on some malformed input; camgate
//! calls that parser only behind `catch_unwind`.)

#![no_main]

use libfuzzer_sys::fuzz_target;
use media::sdp::codec_from_rtpmap;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut pt: Option<u8> = None;
    let mut rtpmap: Option<&str> = None;
    let mut fmtp: Option<&str> = None;
    let flush = |pt: Option<u8>, rtpmap: Option<&str>, fmtp: Option<&str>| {
        if let Some(pt) = pt {
            let _ = codec_from_rtpmap(pt, rtpmap, fmtp);
        }
    };
    for line in text.lines() {
        if let Some(m) = line.strip_prefix("m=") {
            flush(pt, rtpmap, fmtp);
            pt = m.split_whitespace().nth(3).and_then(|p| p.parse().ok());
            rtpmap = None;
            fmtp = None;
        } else if let Some(v) = line.strip_prefix("a=rtpmap:") {
            rtpmap = v.split_once(' ').map(|(_, r)| r);
        } else if let Some(v) = line.strip_prefix("a=fmtp:") {
            fmtp = Some(v.split_once(' ').map_or("", |(_, f)| f));
        }
    }
    flush(pt, rtpmap, fmtp);
});
