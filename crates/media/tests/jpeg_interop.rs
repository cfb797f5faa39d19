//! JPEGs made by an independent encoder (the `jpeg-encoder` crate) go through RFC 2435
//! packetization and come back as files whose scan data is byte-identical and which decode
//! (with `zune-jpeg`) to exactly the original's pixels.

mod common;

use bytes::Bytes;
use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
use media::codec::jpeg::{self, JpegError};
use media::rtp::{self, PacketizeErrorKind};
use media::{Codec, Frame};

fn image(width: u16, height: u16) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(usize::from(width) * usize::from(height) * 3);
    let (w, h) = (u32::from(width), u32::from(height));
    for y in 0..h {
        for x in 0..w {
            rgb.extend_from_slice(&[
                (x * 255 / w) as u8,
                (y * 255 / h) as u8,
                ((x / 16 + y / 16) % 2 * 200) as u8,
            ]);
        }
    }
    rgb
}

fn encode(width: u16, height: u16, configure: impl FnOnce(&mut Encoder<&mut Vec<u8>>)) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = Encoder::new(&mut out, 80);
    configure(&mut enc);
    enc.encode(&image(width, height), width, height, ColorType::Rgb)
        .expect("encode");
    out
}

fn decode(data: &[u8]) -> (Vec<u8>, u16, u16) {
    let mut d = zune_jpeg::JpegDecoder::new(zune_jpeg::zune_core::bytestream::ZCursor::new(data));
    let pixels = d.decode().expect("decodes");
    let info = d.info().expect("info");
    (pixels, info.width, info.height)
}

/// Sends `file` through packetize/depacketize and checks the result against the original.
fn assert_survives_rtp(file: Vec<u8>, expected_type: u8) {
    let original = jpeg::parse(&file).expect("encoder output parses");
    assert_eq!(original.rtp_type, expected_type);
    let frame = Frame::new(0, 0, true, Bytes::from(file.clone()));
    let out = common::round_trip(&Codec::Jpeg, &[frame], 1400);
    assert_eq!(out.len(), 1);
    let rebuilt = &out[0].data;
    let info = jpeg::parse(rebuilt).expect("rebuilt file parses");
    assert_eq!(
        &rebuilt[info.scan_start..info.scan_end],
        &file[original.scan_start..original.scan_end],
        "scan data"
    );
    assert_eq!(info.quant_tables, original.quant_tables);
    assert_eq!(info.restart_interval, original.restart_interval);
    let (a, aw, ah) = decode(&file);
    let (b, bw, bh) = decode(rebuilt);
    assert_eq!((bw, bh), (aw, ah));
    assert!(a == b, "decoded pixels differ");
}

#[test]
fn encoder_420_jpeg_survives_rtp_and_decodes_identically() {
    let file = encode(320, 240, |e| e.set_sampling_factor(SamplingFactor::F_2_2));
    assert_survives_rtp(file, 1);
}

#[test]
fn encoder_422_jpeg_survives_rtp_and_decodes_identically() {
    let file = encode(320, 240, |e| e.set_sampling_factor(SamplingFactor::F_2_1));
    assert_survives_rtp(file, 0);
}

#[test]
fn encoder_jpeg_with_restart_markers_survives_rtp() {
    let file = encode(640, 480, |e| {
        e.set_sampling_factor(SamplingFactor::F_2_2);
        e.set_restart_interval(4);
    });
    assert_eq!(jpeg::parse(&file).unwrap().restart_interval, 4);
    assert_survives_rtp(file, 1);
}

#[test]
fn progressive_encoder_output_is_a_packetize_error() {
    let file = encode(64, 64, |e| e.set_progressive(true));
    let err = rtp::packetize(
        &Codec::Jpeg,
        &Frame::new(0, 0, true, Bytes::from(file)),
        1400,
    )
    .unwrap_err();
    assert_eq!(err.kind, PacketizeErrorKind::Jpeg(JpegError::Progressive));
    assert!(err.to_string().contains("progressive"), "{err}");
}

#[test]
fn non_interleaved_encoder_output_is_a_packetize_error() {
    // jpeg-encoder writes one scan per component when it optimizes Huffman tables.
    let file = encode(64, 64, |e| e.set_optimized_huffman_tables(true));
    assert_eq!(jpeg::parse(&file), Err(JpegError::MultipleScans));
}

#[test]
fn grayscale_jpeg_is_a_packetize_error() {
    let mut out = Vec::new();
    Encoder::new(&mut out, 80)
        .encode(&[128u8; 64 * 64], 64, 64, ColorType::Luma)
        .unwrap();
    assert_eq!(jpeg::parse(&out), Err(JpegError::Components(1)));
}

#[test]
fn jpeg_wider_than_2040_pixels_is_a_packetize_error() {
    let file = encode(2048, 16, |_| {});
    let err = rtp::packetize(
        &Codec::Jpeg,
        &Frame::new(0, 0, true, Bytes::from(file)),
        1400,
    )
    .unwrap_err();
    assert!(matches!(
        err.kind,
        PacketizeErrorKind::Jpeg(JpegError::Unsupported(_))
    ));
}
