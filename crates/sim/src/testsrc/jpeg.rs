//! `JpegPatternEncoder`: turns a [`Yuv420`] test picture into a baseline, 8-bit, 4:2:0 JFIF
//! JPEG (2x2 luma sampling, RFC 2435 type 1), the frames of MJPEG and snapshot cameras.

use bytes::Bytes;
use jpeg_encoder::{Encoder, ImageBuffer, JpegColorType, SamplingFactor};

use super::picture::Yuv420;

/// Default JPEG quality.
pub const DEFAULT_QUALITY: u8 = 80;

/// Encodes the top-left `width` x `height` pixels of pictures as baseline JPEGs.
#[derive(Clone, Debug)]
pub struct JpegPatternEncoder {
    width: usize,
    height: usize,
    quality: u8,
    restart_interval: Option<u16>,
    /// BT.601 limited range to JFIF full range, luma.
    y_lut: [u8; 256],
    /// BT.601 limited range to JFIF full range, chroma.
    c_lut: [u8; 256],
}

impl JpegPatternEncoder {
    /// An encoder for `width` x `height` images (1..=65535 each; RTP/JPEG carries at most
    /// 2040x2040) at quality 80 without restart markers.
    pub fn new(width: usize, height: usize) -> Self {
        assert!(
            (1..=65535).contains(&width) && (1..=65535).contains(&height),
            "JPEG size {width}x{height}"
        );
        let mut y_lut = [0u8; 256];
        let mut c_lut = [0u8; 256];
        for i in 0..256 {
            let y = ((i as i32 - 16) * 255 * 2 + 219) / (219 * 2);
            y_lut[i] = y.clamp(0, 255) as u8;
            let d = (i as i32 - 128) * 255;
            let c = 128 + (d + d.signum() * 112) / 224;
            c_lut[i] = c.clamp(0, 255) as u8;
        }
        JpegPatternEncoder {
            width,
            height,
            quality: DEFAULT_QUALITY,
            restart_interval: None,
            y_lut,
            c_lut,
        }
    }

    /// The same encoder with `quality` (1..=100).
    pub fn with_quality(mut self, quality: u8) -> Self {
        assert!((1..=100).contains(&quality), "JPEG quality {quality}");
        self.quality = quality;
        self
    }

    /// The same encoder writing a restart marker every `interval` MCUs (0: none).
    pub fn with_restart_interval(mut self, interval: u16) -> Self {
        self.restart_interval = (interval > 0).then_some(interval);
        self
    }

    /// Image size (width, height) in pixels.
    pub fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    /// The JPEG quality.
    pub fn quality(&self) -> u8 {
        self.quality
    }

    /// Encodes the top-left `width` x `height` pixels of `pic` (which must be at least that
    /// large) as a complete JPEG file, SOI to EOI.
    pub fn encode(&self, pic: &Yuv420) -> Bytes {
        assert!(
            pic.width >= self.width && pic.height >= self.height,
            "JPEG encoder for {}x{} given a {}x{} picture",
            self.width,
            self.height,
            pic.width,
            pic.height
        );
        let mut out = Vec::with_capacity(self.width * self.height / 4 + 1024);
        let mut enc = Encoder::new(&mut out, self.quality);
        enc.set_sampling_factor(SamplingFactor::F_2_2);
        enc.set_progressive(false);
        if let Some(interval) = self.restart_interval {
            enc.set_restart_interval(interval);
        }
        enc.encode_image(Source { enc: self, pic })
            .expect("encoding into a Vec cannot fail for a valid size");
        Bytes::from(out)
    }
}

/// Feeds a limited-range `Yuv420` to the encoder as full-range YCbCr rows.
struct Source<'a> {
    enc: &'a JpegPatternEncoder,
    pic: &'a Yuv420,
}

impl ImageBuffer for Source<'_> {
    fn get_jpeg_color_type(&self) -> JpegColorType {
        JpegColorType::Ycbcr
    }

    fn width(&self) -> u16 {
        self.enc.width as u16
    }

    fn height(&self) -> u16 {
        self.enc.height as u16
    }

    fn fill_buffers(&self, row: u16, buffers: &mut [Vec<u8>; 4]) {
        let row = usize::from(row);
        let w = self.enc.width;
        let luma = &self.pic.y[row * self.pic.width..row * self.pic.width + w];
        buffers[0].extend(luma.iter().map(|&s| self.enc.y_lut[usize::from(s)]));
        let cw = self.pic.width / 2;
        let start = (row / 2) * cw;
        let (_, chroma) = buffers.split_at_mut(1);
        for (buf, src) in chroma.iter_mut().zip([&self.pic.u, &self.pic.v]) {
            let line = &src[start..start + w.div_ceil(2)];
            for x in 0..w {
                buf.push(self.enc.c_lut[usize::from(line[x / 2])]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The segments of a JPEG up to SOS: (marker, payload).
    fn segments(jpeg: &[u8]) -> Vec<(u8, &[u8])> {
        assert_eq!(&jpeg[..2], &[0xff, 0xd8]);
        let mut out = Vec::new();
        let mut i = 2;
        loop {
            assert_eq!(jpeg[i], 0xff);
            let marker = jpeg[i + 1];
            let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
            out.push((marker, &jpeg[i + 4..i + 2 + len]));
            if marker == 0xda {
                return out;
            }
            i += 2 + len;
        }
    }

    #[test]
    fn baseline_420_without_restart_markers() {
        let pic = Yuv420::new(64, 48, 120, 90, 160);
        let jpeg = JpegPatternEncoder::new(60, 40).encode(&pic);
        assert_eq!(&jpeg[jpeg.len() - 2..], &[0xff, 0xd9]);
        let segs = segments(&jpeg);
        let sof = segs.iter().find(|s| s.0 == 0xc0).expect("SOF0").1;
        // precision 8, height 40, width 60, 3 components: Y 2x2, Cb 1x1, Cr 1x1.
        assert_eq!(&sof[..6], &[8, 0, 40, 0, 60, 3]);
        assert_eq!((sof[7], sof[10], sof[13]), (0x22, 0x11, 0x11));
        assert!(segs.iter().all(|s| s.0 != 0xc2 && s.0 != 0xdd));
    }

    #[test]
    fn restart_interval_is_written_when_configured() {
        let pic = Yuv420::new(64, 48, 120, 90, 160);
        let jpeg = JpegPatternEncoder::new(64, 48)
            .with_restart_interval(2)
            .encode(&pic);
        let dri = segments(&jpeg)
            .into_iter()
            .find(|s| s.0 == 0xdd)
            .expect("DRI");
        assert_eq!(dri.1, &[0, 2]);
    }

    #[test]
    fn limited_range_maps_to_full_range() {
        let e = JpegPatternEncoder::new(16, 16);
        assert_eq!((e.y_lut[16], e.y_lut[235], e.y_lut[126]), (0, 255, 128));
        assert_eq!((e.c_lut[16], e.c_lut[128], e.c_lut[240]), (0, 128, 255));
    }
}
