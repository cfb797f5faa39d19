//! The SDP a DESCRIBE answers with, built from the stream's tracks.

use media::TrackInfo;
use media::sdp::media_description;
use sdp_types::{Attribute, Connection, Media, Origin, Session, Time};

/// First dynamic payload type; track N uses `DYNAMIC_PT_BASE + N` when it needs one.
pub const DYNAMIC_PT_BASE: u8 = 96;

/// The payload type of each track, in track order.
pub fn payload_types(tracks: &[TrackInfo]) -> Vec<u8> {
    tracks
        .iter()
        .enumerate()
        .map(|(i, t)| media_description(t, dynamic_pt(i)).payload_type)
        .collect()
}

/// The dynamic payload type of track `i` (a stream has at most `media::hub::MAX_TRACKS`).
fn dynamic_pt(i: usize) -> u8 {
    DYNAMIC_PT_BASE
        .saturating_add(u8::try_from(i).unwrap_or(u8::MAX))
        .min(127)
}

/// An SDP session description for `tracks`, with `trackID=N` controls.
pub fn describe(stream: &str, server_ip: &str, tracks: &[TrackInfo]) -> Vec<u8> {
    let (addrtype, ip) = if server_ip.contains(':') {
        ("IP6", server_ip)
    } else {
        ("IP4", server_ip)
    };
    let medias = tracks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let md = media_description(t, dynamic_pt(i));
            let mut attributes = vec![Attribute {
                attribute: "rtpmap".into(),
                value: Some(format!("{} {}", md.payload_type, md.rtpmap)),
            }];
            if let Some(fmtp) = md.fmtp {
                attributes.push(Attribute {
                    attribute: "fmtp".into(),
                    value: Some(format!("{} {}", md.payload_type, fmtp)),
                });
            }
            attributes.push(Attribute {
                attribute: "control".into(),
                value: Some(format!("trackID={i}")),
            });
            Media {
                media: md.media.into(),
                port: 0,
                num_ports: None,
                proto: "RTP/AVP".into(),
                fmt: md.payload_type.to_string(),
                media_title: None,
                connections: vec![],
                bandwidths: vec![],
                key: None,
                attributes,
            }
        })
        .collect();
    let session = Session {
        origin: Origin {
            username: Some("-".into()),
            sess_id: "1".into(),
            sess_version: 1,
            nettype: "IN".into(),
            addrtype: addrtype.into(),
            unicast_address: ip.into(),
        },
        session_name: format!("camgate {stream}"),
        session_description: None,
        uri: None,
        emails: vec![],
        phones: vec![],
        connection: Some(Connection {
            nettype: "IN".into(),
            addrtype: addrtype.into(),
            connection_address: if addrtype == "IP6" {
                "::".into()
            } else {
                "0.0.0.0".into()
            },
        }),
        bandwidths: vec![],
        times: vec![Time {
            start_time: 0,
            stop_time: 0,
            repeats: vec![],
        }],
        time_zones: vec![],
        key: None,
        attributes: vec![
            Attribute {
                attribute: "tool".into(),
                value: Some(concat!("camgate ", env!("CARGO_PKG_VERSION")).into()),
            },
            Attribute {
                attribute: "range".into(),
                value: Some("npt=now-".into()),
            },
            Attribute {
                attribute: "control".into(),
                value: Some("*".into()),
            },
        ],
        medias,
    };
    let mut out = Vec::new();
    session
        .write(&mut out)
        .expect("writing SDP to a Vec cannot fail");
    out
}
