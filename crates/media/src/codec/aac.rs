//! AAC (ISO 14496-3): the AudioSpecificConfig that describes a stream, and the ADTS header
//! that frames raw access units in `.aac` files.

use bytes::Bytes;
use thiserror::Error;

/// Why an AAC config or ADTS header could not be parsed or built.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum AacError {
    /// The input ended before the named field.
    #[error("AAC {0} truncated")]
    Truncated(&'static str),
    /// An ADTS header without the 0xFFF sync word.
    #[error("no ADTS sync word (found {0:#06x})")]
    NoSync(u16),
    /// A field value that the standard reserves or camgate cannot represent.
    #[error("AAC field {field} has unsupported value {value}")]
    Unsupported { field: &'static str, value: u32 },
}

/// The sampling frequencies indexed by samplingFrequencyIndex 0..=12.
pub const SAMPLE_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// The samplingFrequencyIndex of a standard rate.
pub fn frequency_index(rate: u32) -> Option<u8> {
    SAMPLE_RATES
        .iter()
        .position(|&r| r == rate)
        .map(|i| i as u8)
}

/// The parsed fields of an AudioSpecificConfig.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioSpecificConfig {
    /// audioObjectType (2 = AAC LC).
    pub object_type: u8,
    /// Sampling rate in Hz (of the core codec when SBR is signalled explicitly).
    pub sample_rate: u32,
    /// channelConfiguration (0 = defined in a program config element).
    pub channel_config: u8,
    /// Samples per access unit: 1024, or 960 when frameLengthFlag is set.
    pub frame_length: u16,
}

/// Object types whose config continues with a GASpecificConfig.
const GA_OBJECT_TYPES: [u8; 12] = [1, 2, 3, 4, 6, 7, 17, 19, 20, 21, 22, 23];

/// MSB-first reader over a short byte string.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn read(&mut self, n: usize, what: &'static str) -> Result<u32, AacError> {
        if self.pos + n > self.data.len() * 8 {
            return Err(AacError::Truncated(what));
        }
        let mut v = 0u32;
        for _ in 0..n {
            let bit = (self.data[self.pos / 8] >> (7 - self.pos % 8)) & 1;
            v = (v << 1) | u32::from(bit);
            self.pos += 1;
        }
        Ok(v)
    }

    fn object_type(&mut self) -> Result<u8, AacError> {
        let t = self.read(5, "audioObjectType")?;
        Ok(if t == 31 {
            32 + self.read(6, "audioObjectTypeExt")? as u8
        } else {
            t as u8
        })
    }

    fn rate(&mut self) -> Result<u32, AacError> {
        match self.read(4, "samplingFrequencyIndex")? {
            15 => self.read(24, "samplingFrequency"),
            i if (i as usize) < SAMPLE_RATES.len() => Ok(SAMPLE_RATES[i as usize]),
            i => Err(AacError::Unsupported {
                field: "samplingFrequencyIndex",
                value: i,
            }),
        }
    }
}

/// MSB-first writer.
#[derive(Default)]
struct BitsOut {
    bytes: Vec<u8>,
    nbits: usize,
}

impl BitsOut {
    fn write(&mut self, n: usize, v: u32) {
        for i in (0..n).rev() {
            if self.nbits.is_multiple_of(8) {
                self.bytes.push(0);
            }
            if (v >> i) & 1 == 1 {
                let last = self.bytes.len() - 1;
                self.bytes[last] |= 0x80 >> (self.nbits % 8);
            }
            self.nbits += 1;
        }
    }
}

impl AudioSpecificConfig {
    /// An AAC-LC config (1024 samples per frame).
    pub fn aac_lc(sample_rate: u32, channel_config: u8) -> Self {
        AudioSpecificConfig {
            object_type: 2,
            sample_rate,
            channel_config,
            frame_length: 1024,
        }
    }

    /// Parses an AudioSpecificConfig. Explicit SBR/PS signalling (object types 5 and 29) is
    /// followed to the underlying object type.
    pub fn parse(data: &[u8]) -> Result<Self, AacError> {
        let mut r = Bits { data, pos: 0 };
        let mut object_type = r.object_type()?;
        let sample_rate = r.rate()?;
        let channel_config = r.read(4, "channelConfiguration")? as u8;
        if object_type == 5 || object_type == 29 {
            r.rate()?; // extensionSamplingFrequency
            object_type = r.object_type()?;
        }
        let mut frame_length = 1024;
        if GA_OBJECT_TYPES.contains(&object_type) && r.read(1, "frameLengthFlag")? == 1 {
            frame_length = 960;
        }
        if sample_rate == 0 {
            return Err(AacError::Unsupported {
                field: "samplingFrequency",
                value: 0,
            });
        }
        Ok(AudioSpecificConfig {
            object_type,
            sample_rate,
            channel_config,
            frame_length,
        })
    }

    /// Serializes the config (with a GASpecificConfig for GA object types); rates outside the
    /// standard table use the explicit 24-bit form.
    pub fn to_bytes(&self) -> Bytes {
        let mut w = BitsOut::default();
        if self.object_type >= 31 {
            w.write(5, 31);
            w.write(6, u32::from(self.object_type - 32));
        } else {
            w.write(5, u32::from(self.object_type));
        }
        match frequency_index(self.sample_rate) {
            Some(i) => w.write(4, u32::from(i)),
            None => {
                w.write(4, 15);
                w.write(24, self.sample_rate & 0x00ff_ffff);
            }
        }
        w.write(4, u32::from(self.channel_config & 0x0f));
        if GA_OBJECT_TYPES.contains(&self.object_type) {
            w.write(1, u32::from(self.frame_length == 960));
            w.write(1, 0); // dependsOnCoreCoder
            w.write(1, 0); // extensionFlag
        }
        Bytes::from(w.bytes)
    }

    /// Number of output channels implied by channelConfiguration (0 when a PCE defines them).
    pub fn channels(&self) -> u8 {
        match self.channel_config {
            7 => 8,
            c @ 0..=6 => c,
            _ => 0,
        }
    }
}

/// An ADTS frame header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdtsHeader {
    /// audioObjectType (profile + 1).
    pub object_type: u8,
    /// samplingFrequencyIndex.
    pub frequency_index: u8,
    /// channelConfiguration.
    pub channel_config: u8,
    /// Length of the whole ADTS frame, header included.
    pub frame_length: u16,
    /// Header length: 7, or 9 with a CRC.
    pub header_length: u8,
    /// Number of raw data blocks in the frame (usually 1).
    pub raw_blocks: u8,
}

impl AdtsHeader {
    /// Parses the ADTS header at the start of `data`.
    pub fn parse(data: &[u8]) -> Result<Self, AacError> {
        let h = data.get(..7).ok_or(AacError::Truncated("ADTS header"))?;
        let sync = u16::from_be_bytes([h[0], h[1]]) >> 4;
        if sync != 0xfff {
            return Err(AacError::NoSync(u16::from_be_bytes([h[0], h[1]])));
        }
        let protection_absent = h[1] & 1 == 1;
        let profile = h[2] >> 6;
        let frequency_index = (h[2] >> 2) & 0x0f;
        if usize::from(frequency_index) >= SAMPLE_RATES.len() {
            return Err(AacError::Unsupported {
                field: "samplingFrequencyIndex",
                value: frequency_index.into(),
            });
        }
        let channel_config = ((h[2] & 1) << 2) | (h[3] >> 6);
        let frame_length =
            (u16::from(h[3] & 0x03) << 11) | (u16::from(h[4]) << 3) | u16::from(h[5] >> 5);
        let header_length = if protection_absent { 7 } else { 9 };
        if frame_length < u16::from(header_length) {
            return Err(AacError::Unsupported {
                field: "aac_frame_length",
                value: frame_length.into(),
            });
        }
        Ok(AdtsHeader {
            object_type: profile + 1,
            frequency_index,
            channel_config,
            frame_length,
            header_length,
            raw_blocks: (h[6] & 0x03) + 1,
        })
    }

    /// The header for one raw access unit of `payload_len` bytes under `config` (no CRC).
    pub fn for_payload(config: &AudioSpecificConfig, payload_len: usize) -> Result<Self, AacError> {
        let frequency_index = frequency_index(config.sample_rate).ok_or(AacError::Unsupported {
            field: "sample rate (ADTS needs a standard rate)",
            value: config.sample_rate,
        })?;
        if !(1..=4).contains(&config.object_type) {
            return Err(AacError::Unsupported {
                field: "audioObjectType (ADTS carries 1..=4)",
                value: config.object_type.into(),
            });
        }
        let frame_length = payload_len + 7;
        if frame_length > 0x1fff {
            return Err(AacError::Unsupported {
                field: "aac_frame_length",
                value: frame_length as u32,
            });
        }
        Ok(AdtsHeader {
            object_type: config.object_type,
            frequency_index,
            channel_config: config.channel_config & 0x07,
            frame_length: frame_length as u16,
            header_length: 7,
            raw_blocks: 1,
        })
    }

    /// The 7-byte header (protection absent; a parsed CRC is not reproduced).
    pub fn to_bytes(&self) -> [u8; 7] {
        let len = self.frame_length & 0x1fff;
        [
            0xff,
            0xf1,
            ((self.object_type.saturating_sub(1) & 0x03) << 6)
                | ((self.frequency_index & 0x0f) << 2)
                | ((self.channel_config >> 2) & 0x01),
            ((self.channel_config & 0x03) << 6) | (len >> 11) as u8,
            (len >> 3) as u8,
            ((len & 0x07) as u8) << 5 | 0x1f,
            0xfc | (self.raw_blocks.saturating_sub(1) & 0x03),
        ]
    }

    /// The AudioSpecificConfig this header implies.
    pub fn config(&self) -> AudioSpecificConfig {
        AudioSpecificConfig {
            object_type: self.object_type,
            sample_rate: SAMPLE_RATES[usize::from(self.frequency_index) % SAMPLE_RATES.len()],
            channel_config: self.channel_config,
            frame_length: 1024,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lc_48k_stereo_config_is_1190() {
        let c = AudioSpecificConfig::aac_lc(48000, 2);
        assert_eq!(&c.to_bytes()[..], &[0x11, 0x90]);
        assert_eq!(AudioSpecificConfig::parse(&[0x11, 0x90]).unwrap(), c);
        assert_eq!(c.channels(), 2);
    }

    #[test]
    fn lc_8k_mono_config_is_1588() {
        let c = AudioSpecificConfig::aac_lc(8000, 1);
        assert_eq!(&c.to_bytes()[..], &[0x15, 0x88]);
    }

    #[test]
    fn explicit_sample_rate_round_trips() {
        let c = AudioSpecificConfig::aac_lc(12345, 1);
        let b = c.to_bytes();
        assert_eq!(b[0] >> 3, 2);
        assert_eq!(AudioSpecificConfig::parse(&b).unwrap(), c);
    }

    #[test]
    fn escaped_object_type_and_960_frames_round_trip() {
        let c = AudioSpecificConfig {
            object_type: 42,
            sample_rate: 44100,
            channel_config: 1,
            frame_length: 1024,
        };
        assert_eq!(AudioSpecificConfig::parse(&c.to_bytes()).unwrap(), c);
        let c = AudioSpecificConfig {
            frame_length: 960,
            ..AudioSpecificConfig::aac_lc(16000, 1)
        };
        assert_eq!(AudioSpecificConfig::parse(&c.to_bytes()).unwrap(), c);
    }

    #[test]
    fn explicit_sbr_config_reports_core_object_type() {
        // HE-AAC: object type 5, 24 kHz core (index 6), stereo, extension 48 kHz (3), then AAC LC.
        // 00101 0110 0010 0011 00010 000 -> 0x2b 0x11 0x88 0x00
        let c = AudioSpecificConfig::parse(&[0x2b, 0x11, 0x88, 0x00]).unwrap();
        assert_eq!(c.object_type, 2);
        assert_eq!(c.sample_rate, 24000);
        assert_eq!(c.channel_config, 2);
    }

    #[test]
    fn truncated_or_reserved_configs_are_errors() {
        assert!(AudioSpecificConfig::parse(&[]).is_err());
        assert!(AudioSpecificConfig::parse(&[0x17]).is_err());
        // Index 13 is reserved.
        assert!(matches!(
            AudioSpecificConfig::parse(&[0x16, 0x90]),
            Err(AacError::Unsupported { .. })
        ));
    }

    #[test]
    fn adts_header_round_trips() {
        let c = AudioSpecificConfig::aac_lc(44100, 2);
        let h = AdtsHeader::for_payload(&c, 371).unwrap();
        let bytes = h.to_bytes();
        assert_eq!(&bytes[..2], &[0xff, 0xf1]);
        let parsed = AdtsHeader::parse(&bytes).unwrap();
        assert_eq!(parsed, h);
        assert_eq!(parsed.frame_length, 378);
        assert_eq!(parsed.config(), c);
    }

    #[test]
    fn adts_known_header_parses() {
        // ffmpeg ADTS header: LC, 48 kHz, stereo, 7+350 bytes.
        let h = AdtsHeader::parse(&[0xff, 0xf1, 0x4c, 0x80, 0x2c, 0xbf, 0xfc]).unwrap();
        assert_eq!(h.object_type, 2);
        assert_eq!(h.frequency_index, 3);
        assert_eq!(h.channel_config, 2);
        assert_eq!(h.frame_length, 357);
        assert_eq!(h.header_length, 7);
    }

    #[test]
    fn adts_without_sync_is_an_error() {
        assert_eq!(
            AdtsHeader::parse(&[0x12, 0x34, 0, 0, 0, 0, 0]),
            Err(AacError::NoSync(0x1234))
        );
        assert!(AdtsHeader::parse(&[0xff, 0xf1]).is_err());
    }
}
