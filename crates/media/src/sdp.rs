//! SDP media descriptions: the payload type, `a=rtpmap` and `a=fmtp` values that describe a
//! track (RFC 6184, RFC 7798, RFC 2435, RFC 3551, RFC 3640), and the lenient reverse that turns
//! a camera's rtpmap/fmtp back into a `Codec`.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use bytes::Bytes;
use thiserror::Error;

use crate::codec::aac::AudioSpecificConfig;
use crate::codec::{h264, h265};
use crate::track::{Codec, G711Law, MediaKind, TrackInfo};

/// Base64 that accepts parameter sets with or without padding (cameras send both).
const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The SDP lines that describe one track's RTP payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaDescription {
    /// "video" or "audio".
    pub media: &'static str,
    /// The RTP payload type.
    pub payload_type: u8,
    /// The `a=rtpmap` value after the payload type, e.g. "H264/90000".
    pub rtpmap: String,
    /// The `a=fmtp` value after "PT ", if the codec has parameters.
    pub fmtp: Option<String>,
}

/// Why an rtpmap/fmtp pair does not give a usable codec.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum SdpError {
    /// A dynamic payload type without an rtpmap.
    #[error("payload type {0} has no rtpmap and is not a known static payload type")]
    UnknownPayloadType(u8),
    /// An rtpmap that is not "encoding/clock-rate[/channels]".
    #[error("malformed rtpmap {0:?} (expected encoding/clock-rate[/channels])")]
    BadRtpmap(String),
    /// An encoding camgate cannot depacketize.
    #[error("unsupported encoding {0:?}")]
    UnsupportedEncoding(String),
    /// H.264/H.265 without out-of-band parameter sets.
    #[error(
        "{codec} fmtp has no usable {param}; the parameter sets are needed to describe the stream"
    )]
    MissingParameterSets {
        codec: &'static str,
        param: &'static str,
    },
    /// A parameter whose value cannot be used.
    #[error("fmtp parameter {name}: {reason}")]
    BadParameter { name: String, reason: String },
}

/// The SDP description of `track`; `dynamic_pt` is used when the codec has no static type.
pub fn media_description(track: &TrackInfo, dynamic_pt: u8) -> MediaDescription {
    let media = match track.kind() {
        MediaKind::Video => "video",
        MediaKind::Audio => "audio",
    };
    let (payload_type, rtpmap, fmtp) = match &track.codec {
        Codec::H264 { sps, pps } => {
            let mut f = String::from("packetization-mode=1");
            if let Some(plid) = h264::profile_level_id(sps) {
                f.push_str(";profile-level-id=");
                f.push_str(&plid);
            }
            if !sps.is_empty() && !pps.is_empty() {
                f.push_str(&format!(
                    ";sprop-parameter-sets={},{}",
                    B64.encode(sps),
                    B64.encode(pps)
                ));
            }
            (dynamic_pt, "H264/90000".to_string(), Some(f))
        }
        Codec::H265 { vps, sps, pps } => {
            let parts: Vec<String> = [("sprop-vps", vps), ("sprop-sps", sps), ("sprop-pps", pps)]
                .into_iter()
                .filter(|(_, set)| !set.is_empty())
                .map(|(name, set)| format!("{name}={}", B64.encode(set)))
                .collect();
            let fmtp = (!parts.is_empty()).then(|| parts.join(";"));
            (dynamic_pt, "H265/90000".to_string(), fmtp)
        }
        Codec::Jpeg => (26, "JPEG/90000".to_string(), None),
        Codec::G711 {
            law,
            rate,
            channels,
        } => {
            let (name, static_pt) = match law {
                G711Law::U => ("PCMU", 0),
                G711Law::A => ("PCMA", 8),
            };
            if *rate == 8000 && *channels == 1 {
                (static_pt, format!("{name}/8000"), None)
            } else if *channels == 1 {
                (dynamic_pt, format!("{name}/{rate}"), None)
            } else {
                (dynamic_pt, format!("{name}/{rate}/{channels}"), None)
            }
        }
        Codec::Aac {
            config,
            rate,
            channels,
        } => (
            dynamic_pt,
            format!("MPEG4-GENERIC/{rate}/{channels}"),
            Some(format!(
                "streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;\
                 indexdeltalength=3;config={}",
                hex::encode(config)
            )),
        ),
    };
    MediaDescription {
        media,
        payload_type,
        rtpmap,
        fmtp,
    }
}

/// Strips a leading payload type number ("96 H264/90000" -> "H264/90000") if present.
fn strip_pt(s: &str) -> &str {
    let s = s.trim();
    match s.split_once(char::is_whitespace) {
        Some((first, rest)) if first.bytes().all(|b| b.is_ascii_digit()) => rest.trim(),
        _ if s.bytes().all(|b| b.is_ascii_digit()) => "",
        _ => s,
    }
}

/// Parses "encoding/clock-rate[/channels]" leniently (spaces, case).
fn parse_rtpmap(rtpmap: &str) -> Result<(String, u32, Option<u8>), SdpError> {
    let bad = || SdpError::BadRtpmap(rtpmap.to_string());
    let mut parts = strip_pt(rtpmap).split('/').map(str::trim);
    let encoding = parts.next().filter(|e| !e.is_empty()).ok_or_else(bad)?;
    let rate = parts
        .next()
        .and_then(|r| r.parse::<u32>().ok())
        .filter(|r| *r > 0)
        .ok_or_else(bad)?;
    let channels = match parts.next() {
        Some(c) => Some(c.parse::<u8>().ok().filter(|c| *c > 0).ok_or_else(bad)?),
        None => None,
    };
    Ok((encoding.to_ascii_uppercase(), rate, channels))
}

/// The `key=value` parameters of an fmtp value, keys lowercased.
fn parse_fmtp(fmtp: Option<&str>) -> Vec<(String, String)> {
    let Some(f) = fmtp else {
        return Vec::new();
    };
    strip_pt(f)
        .split(';')
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((k.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Decodes a comma-separated list of base64 NAL units, skipping undecodable entries.
fn decode_sets(list: &str) -> Vec<Vec<u8>> {
    list.split(',')
        .filter_map(|s| B64.decode(s.trim()).ok())
        .filter(|u| !u.is_empty())
        .collect()
}

/// The codec described by a payload type and its (optional) rtpmap and fmtp values.
pub fn codec_from_rtpmap(
    payload_type: u8,
    rtpmap: Option<&str>,
    fmtp: Option<&str>,
) -> Result<Codec, SdpError> {
    let (encoding, rate, channels) = match rtpmap.map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) => parse_rtpmap(r)?,
        None => match payload_type {
            0 => ("PCMU".to_string(), 8000, Some(1)),
            8 => ("PCMA".to_string(), 8000, Some(1)),
            26 => ("JPEG".to_string(), 90000, None),
            pt => return Err(SdpError::UnknownPayloadType(pt)),
        },
    };
    let params = parse_fmtp(fmtp);
    match encoding.as_str() {
        "H264" => {
            let missing = SdpError::MissingParameterSets {
                codec: "H.264",
                param: "sprop-parameter-sets (SPS and PPS)",
            };
            let sets = decode_sets(param(&params, "sprop-parameter-sets").ok_or(missing.clone())?);
            h264::codec_from_units(sets.iter().map(Vec::as_slice)).ok_or(missing)
        }
        "H265" | "HEVC" => {
            let mut units = Vec::new();
            for name in ["sprop-vps", "sprop-sps", "sprop-pps"] {
                units.extend(decode_sets(param(&params, name).unwrap_or_default()));
            }
            h265::codec_from_units(units.iter().map(Vec::as_slice)).ok_or(
                SdpError::MissingParameterSets {
                    codec: "H.265",
                    param: "sprop-vps/sprop-sps/sprop-pps",
                },
            )
        }
        "JPEG" => Ok(Codec::Jpeg),
        "PCMA" | "PCMU" => Ok(Codec::G711 {
            law: if encoding == "PCMA" {
                G711Law::A
            } else {
                G711Law::U
            },
            rate,
            channels: channels.unwrap_or(1),
        }),
        "MPEG4-GENERIC" => aac_from_fmtp(&params, rate, channels),
        _ => Err(SdpError::UnsupportedEncoding(encoding)),
    }
}

/// An AAC codec from RFC 3640 fmtp parameters; only AAC-hbr framing is accepted.
fn aac_from_fmtp(
    params: &[(String, String)],
    rate: u32,
    channels: Option<u8>,
) -> Result<Codec, SdpError> {
    let bad = |name: &str, reason: String| SdpError::BadParameter {
        name: name.to_string(),
        reason,
    };
    if let Some(mode) = param(params, "mode")
        && !mode.eq_ignore_ascii_case("aac-hbr")
    {
        return Err(bad(
            "mode",
            format!("{mode:?} is not supported (only AAC-hbr)"),
        ));
    }
    for (name, expected) in [
        ("sizelength", 13),
        ("indexlength", 3),
        ("indexdeltalength", 3),
    ] {
        if let Some(v) = param(params, name)
            && v.parse::<u32>() != Ok(expected)
        {
            return Err(bad(
                name,
                format!("{v:?} is not supported (AAC-hbr needs {expected})"),
            ));
        }
    }
    let hex_config = param(params, "config").ok_or_else(|| bad("config", "missing".into()))?;
    let config = hex::decode(hex_config).map_err(|e| bad("config", format!("not hex: {e}")))?;
    let asc = AudioSpecificConfig::parse(&config)
        .map_err(|e| bad("config", format!("bad AudioSpecificConfig: {e}")))?;
    let channels = channels.unwrap_or_else(|| asc.channels().max(1));
    Ok(Codec::Aac {
        config: Bytes::from(config),
        rate,
        channels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPS: &[u8] = &[
        0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x3d, 0xa1, 0x00, 0x00, 0x03, 0x00, 0x01,
    ];
    const PPS: &[u8] = &[0x68, 0xcb, 0x83, 0xcb, 0x20];

    fn h264() -> Codec {
        Codec::H264 {
            sps: Bytes::from_static(SPS),
            pps: Bytes::from_static(PPS),
        }
    }

    fn all_codecs() -> Vec<Codec> {
        vec![
            h264(),
            Codec::H265 {
                vps: Bytes::from_static(&[0x40, 0x01, 0x0c, 0x01, 0xff]),
                sps: Bytes::from_static(&[0x42, 0x01, 0x01, 0x01, 0x60]),
                pps: Bytes::from_static(&[0x44, 0x01, 0xc1, 0x72]),
            },
            Codec::Jpeg,
            Codec::G711 {
                law: G711Law::A,
                rate: 8000,
                channels: 1,
            },
            Codec::G711 {
                law: G711Law::U,
                rate: 8000,
                channels: 1,
            },
            Codec::G711 {
                law: G711Law::A,
                rate: 16000,
                channels: 2,
            },
            Codec::G711 {
                law: G711Law::U,
                rate: 16000,
                channels: 1,
            },
            Codec::Aac {
                config: AudioSpecificConfig::aac_lc(48000, 2).to_bytes(),
                rate: 48000,
                channels: 2,
            },
            Codec::Aac {
                config: AudioSpecificConfig::aac_lc(8000, 1).to_bytes(),
                rate: 8000,
                channels: 1,
            },
        ]
    }

    #[test]
    fn h264_description_has_profile_level_id_and_sprop() {
        let md = media_description(&TrackInfo::new(h264()), 96);
        assert_eq!(md.media, "video");
        assert_eq!(md.payload_type, 96);
        assert_eq!(md.rtpmap, "H264/90000");
        assert_eq!(
            md.fmtp.as_deref(),
            Some(
                "packetization-mode=1;profile-level-id=42c01e;\
                 sprop-parameter-sets=Z0LAHtkAoD2hAAADAAE=,aMuDyyA="
            )
        );
    }

    #[test]
    fn h265_description_has_sprop_vps_sps_pps() {
        let md = media_description(&TrackInfo::new(all_codecs()[1].clone()), 97);
        assert_eq!(md.rtpmap, "H265/90000");
        assert_eq!(
            md.fmtp.as_deref(),
            Some("sprop-vps=QAEMAf8=;sprop-sps=QgEBAWA=;sprop-pps=RAHBcg==")
        );
    }

    #[test]
    fn jpeg_and_8khz_g711_use_static_payload_types() {
        let jpeg = media_description(&TrackInfo::new(Codec::Jpeg), 96);
        assert_eq!(
            (jpeg.payload_type, jpeg.rtpmap.as_str()),
            (26, "JPEG/90000")
        );
        let pcma = media_description(&TrackInfo::new(all_codecs()[3].clone()), 96);
        assert_eq!((pcma.payload_type, pcma.rtpmap.as_str()), (8, "PCMA/8000"));
        assert_eq!(pcma.media, "audio");
        let pcmu = media_description(&TrackInfo::new(all_codecs()[4].clone()), 96);
        assert_eq!((pcmu.payload_type, pcmu.rtpmap.as_str()), (0, "PCMU/8000"));
    }

    #[test]
    fn wideband_or_stereo_g711_uses_a_dynamic_payload_type() {
        let md = media_description(&TrackInfo::new(all_codecs()[5].clone()), 98);
        assert_eq!((md.payload_type, md.rtpmap.as_str()), (98, "PCMA/16000/2"));
    }

    #[test]
    fn aac_description_is_hbr_with_hex_config() {
        let md = media_description(&TrackInfo::new(all_codecs()[7].clone()), 97);
        assert_eq!(md.rtpmap, "MPEG4-GENERIC/48000/2");
        assert_eq!(
            md.fmtp.as_deref(),
            Some(
                "streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;\
                 indexdeltalength=3;config=1190"
            )
        );
    }

    #[test]
    fn codec_from_rtpmap_round_trips_media_description_for_every_codec() {
        for codec in all_codecs() {
            let md = media_description(&TrackInfo::new(codec.clone()), 96);
            let back = codec_from_rtpmap(md.payload_type, Some(&md.rtpmap), md.fmtp.as_deref());
            assert_eq!(back, Ok(codec));
        }
    }

    #[test]
    fn static_payload_types_need_no_rtpmap() {
        assert_eq!(
            codec_from_rtpmap(0, None, None),
            Ok(Codec::G711 {
                law: G711Law::U,
                rate: 8000,
                channels: 1
            })
        );
        assert_eq!(
            codec_from_rtpmap(8, None, Some("")).unwrap(),
            Codec::G711 {
                law: G711Law::A,
                rate: 8000,
                channels: 1
            }
        );
        assert_eq!(codec_from_rtpmap(26, None, None), Ok(Codec::Jpeg));
        assert_eq!(
            codec_from_rtpmap(96, None, None),
            Err(SdpError::UnknownPayloadType(96))
        );
    }

    #[test]
    fn rtpmap_is_case_insensitive_and_tolerates_spaces() {
        let fmtp = "profile-level-id=42c01e; sprop-parameter-sets=Z0LAHtkAoD2hAAADAAE,aMuDyyA";
        assert_eq!(
            codec_from_rtpmap(96, Some("h264/90000 "), Some(fmtp)),
            Ok(h264())
        );
        assert_eq!(
            codec_from_rtpmap(97, Some("pcma/8000 "), None).unwrap(),
            Codec::G711 {
                law: G711Law::A,
                rate: 8000,
                channels: 1
            }
        );
        assert_eq!(
            codec_from_rtpmap(96, Some("96 H264/90000"), Some(&format!("96 {fmtp}"))),
            Ok(h264())
        );
    }

    #[test]
    fn h264_without_sprop_is_an_error_that_says_so() {
        for fmtp in [None, Some(""), Some("96"), Some("packetization-mode=1")] {
            let err = codec_from_rtpmap(96, Some("H264/90000"), fmtp).unwrap_err();
            assert!(
                err.to_string().contains("sprop-parameter-sets"),
                "{fmtp:?}: {err}"
            );
        }
        // Only an SPS.
        let err = codec_from_rtpmap(
            96,
            Some("H264/90000"),
            Some("sprop-parameter-sets=Z0LAHtkAoD2hAAADAAE="),
        )
        .unwrap_err();
        assert!(matches!(err, SdpError::MissingParameterSets { .. }));
    }

    #[test]
    fn unsupported_encodings_and_aac_modes_are_errors() {
        assert_eq!(
            codec_from_rtpmap(96, Some("VP8/90000"), None),
            Err(SdpError::UnsupportedEncoding("VP8".into()))
        );
        assert!(matches!(
            codec_from_rtpmap(96, Some("H264"), None),
            Err(SdpError::BadRtpmap(_))
        ));
        assert!(matches!(
            codec_from_rtpmap(
                97,
                Some("mpeg4-generic/16000/1"),
                Some("mode=AAC-lbr;sizelength=6;config=1408")
            ),
            Err(SdpError::BadParameter { .. })
        ));
        assert!(matches!(
            codec_from_rtpmap(97, Some("MPEG4-GENERIC/16000/1"), Some("mode=AAC-hbr")),
            Err(SdpError::BadParameter { .. })
        ));
    }

    #[test]
    fn aac_channels_default_from_config() {
        let codec = codec_from_rtpmap(
            97,
            Some("MPEG4-GENERIC/48000"),
            Some("streamType=5; Mode=aac-hbr; SizeLength=13; IndexLength=3; config=1190"),
        )
        .unwrap();
        assert_eq!(
            codec,
            Codec::Aac {
                config: Bytes::from_static(&[0x11, 0x90]),
                rate: 48000,
                channels: 2
            }
        );
    }
}
