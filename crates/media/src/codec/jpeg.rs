//! Baseline JPEG as RFC 2435 needs it: parsing a JFIF file into the RTP/JPEG parameters
//! (type, size, quantization tables, restart interval, scan data), and building a decodable
//! header back from those parameters with the standard tables of ITU-T T.81 Annex K.

use thiserror::Error;

/// Why a JPEG cannot be carried as RFC 2435 RTP/JPEG.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum JpegError {
    /// The data does not start with an SOI marker.
    #[error("not a JPEG file (no SOI marker)")]
    NotJpeg,
    /// The file ended inside the named segment.
    #[error("JPEG truncated in {0}")]
    Truncated(&'static str),
    /// A byte where a marker was expected.
    #[error("JPEG marker expected at offset {offset}, found {found:#04x}")]
    BadMarker { offset: usize, found: u8 },
    /// A required segment is absent.
    #[error("JPEG has no {0} segment")]
    Missing(&'static str),
    /// Progressive (or other multi-scan) JPEGs are not carried by RFC 2435.
    #[error("progressive JPEG is not supported by RTP/JPEG (RFC 2435 needs baseline)")]
    Progressive,
    /// Several scans (e.g. one per component, non-interleaved); RFC 2435 carries one.
    #[error("JPEG with several scans is not supported (RFC 2435 needs one interleaved scan)")]
    MultipleScans,
    /// Only 8-bit samples are supported.
    #[error("{0}-bit JPEG is not supported (RFC 2435 needs 8-bit samples)")]
    Precision(u8),
    /// Only 8-bit quantization tables are supported.
    #[error("16-bit quantization table {0} is not supported")]
    Table16Bit(u8),
    /// A frame type other than baseline sequential Huffman (SOF0).
    #[error("JPEG process SOF{0} is not supported (only baseline SOF0)")]
    UnsupportedProcess(u8),
    /// Not a three-component image.
    #[error("JPEG with {0} components is not supported (RFC 2435 needs YCbCr)")]
    Components(u8),
    /// Chroma subsampling other than 4:2:2 (h2v1) or 4:2:0 (h2v2).
    #[error(
        "JPEG sampling factors Y {y:#04x} Cb {cb:#04x} Cr {cr:#04x} are not supported (need 4:2:0 or 4:2:2)"
    )]
    Sampling { y: u8, cb: u8, cr: u8 },
    /// The two chroma components use different quantization tables.
    #[error("Cb and Cr use different quantization tables, which RFC 2435 cannot carry")]
    ChromaTables,
    /// A component refers to a quantization table that was not defined.
    #[error("quantization table {0} is used but not defined")]
    UndefinedTable(u8),
    /// The file's Huffman tables differ from the standard ones RFC 2435 receivers assume.
    #[error("JPEG uses non-standard Huffman tables, which RFC 2435 cannot carry")]
    NonStandardHuffman,
    /// A parameter outside what an RFC 2435 header can express.
    #[error("unsupported RFC 2435 parameter: {0}")]
    Unsupported(String),
}

/// A luma and a chroma quantization table, each in zigzag order as in DQT.
pub type QuantTables = [[u8; 64]; 2];

/// The RFC 2435 view of a baseline JPEG file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JpegInfo {
    /// Image width in pixels.
    pub width: u16,
    /// Image height in pixels.
    pub height: u16,
    /// RFC 2435 type: 0 = 4:2:2 (Y h2v1), 1 = 4:2:0 (Y h2v2); restart markers not included.
    pub rtp_type: u8,
    /// Luma and chroma quantization tables, in zigzag order as in DQT.
    pub quant_tables: QuantTables,
    /// Restart interval in MCUs (0 = no restart markers).
    pub restart_interval: u16,
    /// Offset of the first byte of entropy-coded scan data.
    pub scan_start: usize,
    /// Offset just past the scan data (the EOI marker, or the end of the data).
    pub scan_end: usize,
}

/// The parameters of an RFC 2435 frame, from which a JFIF header is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rfc2435Params {
    /// Type 0 (4:2:2) or 1 (4:2:0), without the restart-marker flag (64).
    pub rtp_type: u8,
    /// The Q value: 1..=127 selects scaled standard tables, 128..=255 in-band tables.
    pub q: u8,
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
    /// Restart interval in MCUs (0 = none).
    pub restart_interval: u16,
    /// The in-band tables (luma, chroma, zigzag order), required when `q >= 128`.
    pub quant_tables: Option<QuantTables>,
}

/// The natural (row-major) index of each coefficient in zigzag order.
pub const ZIGZAG: [usize; 64] = zigzag();

const fn zigzag() -> [usize; 64] {
    let mut out = [0usize; 64];
    let mut i = 0;
    let mut s: usize = 0;
    while s < 15 {
        let lo = s.saturating_sub(7);
        let hi = if s < 7 { s } else { 7 };
        let mut k = 0;
        while k <= hi - lo {
            // Even diagonals run from bottom-left up; odd ones from top-right down.
            let row = if s.is_multiple_of(2) { hi - k } else { lo + k };
            out[i] = row * 8 + (s - row);
            i += 1;
            k += 1;
        }
        s += 1;
    }
    out
}

/// The luminance quantization table of T.81 Table K.1, natural order.
#[rustfmt::skip]
pub const STD_LUMA_QUANT: [u8; 64] = [
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
];

/// The chrominance quantization table of T.81 Table K.2, natural order.
#[rustfmt::skip]
pub const STD_CHROMA_QUANT: [u8; 64] = [
    17, 18, 24, 47, 99, 99, 99, 99,
    18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
];

/// A Huffman table as stored in DHT: code counts per length 1..=16, then the symbols.
#[derive(Clone, Copy, Debug)]
pub struct HuffmanTable {
    /// Number of codes of each length 1..=16.
    pub counts: [u8; 16],
    /// The symbols in code order.
    pub symbols: &'static [u8],
}

/// T.81 Table K.3: luminance DC.
pub const STD_DC_LUMA: HuffmanTable = HuffmanTable {
    counts: [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0],
    symbols: &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
};

/// T.81 Table K.4: chrominance DC.
pub const STD_DC_CHROMA: HuffmanTable = HuffmanTable {
    counts: [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0],
    symbols: &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
};

/// T.81 Table K.5: luminance AC.
#[rustfmt::skip]
pub const STD_AC_LUMA: HuffmanTable = HuffmanTable {
    counts: [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d],
    symbols: &[
        0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
        0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0,
        0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28,
        0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
        0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
        0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
        0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
        0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5,
        0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2,
        0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
        0xf9, 0xfa,
    ],
};

/// T.81 Table K.6: chrominance AC.
#[rustfmt::skip]
pub const STD_AC_CHROMA: HuffmanTable = HuffmanTable {
    counts: [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77],
    symbols: &[
        0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71,
        0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0,
        0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26,
        0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
        0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
        0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
        0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5,
        0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3,
        0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda,
        0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
        0xf9, 0xfa,
    ],
};

impl HuffmanTable {
    fn matches(&self, counts: &[u8], symbols: &[u8]) -> bool {
        self.counts[..] == *counts && self.symbols == symbols
    }
}

/// The luma and chroma tables (zigzag order) for an RFC 2435 Q value of 1..=99 (values
/// outside are clamped), scaled from the standard tables as RFC 2435 Appendix A specifies.
pub fn rfc2435_tables(q: u8) -> QuantTables {
    let factor = u32::from(q.clamp(1, 99));
    let scale = if factor < 50 {
        5000 / factor
    } else {
        200 - factor * 2
    };
    let mut out = [[0u8; 64]; 2];
    for (i, &nat) in ZIGZAG.iter().enumerate() {
        for (t, std) in [&STD_LUMA_QUANT, &STD_CHROMA_QUANT].iter().enumerate() {
            let v = (u32::from(std[nat]) * scale + 50) / 100;
            out[t][i] = v.clamp(1, 255) as u8;
        }
    }
    out
}

/// A frame component from SOF0.
#[derive(Clone, Copy)]
struct Component {
    id: u8,
    sampling: u8,
    table: u8,
}

const SOI: u8 = 0xd8;
const EOI: u8 = 0xd9;
const SOS: u8 = 0xda;
const DQT: u8 = 0xdb;
const DHT: u8 = 0xc4;
const DRI: u8 = 0xdd;

/// Parses a baseline JPEG file into its RFC 2435 parameters.
pub fn parse(data: &[u8]) -> Result<JpegInfo, JpegError> {
    if data.len() < 2 || data[0] != 0xff || data[1] != SOI {
        return Err(JpegError::NotJpeg);
    }
    let mut tables: [Option<[u8; 64]>; 4] = [None; 4];
    // DHT contents by (class, id): class 0 = DC, 1 = AC.
    let mut huffman: Vec<(u8, u8, Vec<u8>, Vec<u8>)> = Vec::new();
    let mut frame: Option<(u16, u16, Vec<Component>)> = None;
    let mut restart_interval = 0u16;
    let mut pos = 2;
    loop {
        if pos >= data.len() {
            return Err(JpegError::Missing("SOS"));
        }
        if data[pos] != 0xff {
            return Err(JpegError::BadMarker {
                offset: pos,
                found: data[pos],
            });
        }
        while pos < data.len() && data[pos] == 0xff {
            pos += 1;
        }
        let marker = *data.get(pos).ok_or(JpegError::Truncated("marker"))?;
        pos += 1;
        match marker {
            SOI => {
                return Err(JpegError::BadMarker {
                    offset: pos - 1,
                    found: marker,
                });
            }
            EOI => return Err(JpegError::Missing("SOS")),
            0x01 | 0xd0..=0xd7 => continue,
            _ => {}
        }
        let len = data
            .get(pos..pos + 2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
            .ok_or(JpegError::Truncated("segment length"))?;
        if len < 2 {
            return Err(JpegError::Truncated("segment length"));
        }
        let seg = data
            .get(pos + 2..pos + len)
            .ok_or(JpegError::Truncated(segment_name(marker)))?;
        pos += len;
        match marker {
            DQT => parse_dqt(seg, &mut tables)?,
            DHT => parse_dht(seg, &mut huffman)?,
            DRI => {
                let b = seg.get(..2).ok_or(JpegError::Truncated("DRI"))?;
                restart_interval = u16::from_be_bytes([b[0], b[1]]);
            }
            0xc0 => frame = Some(parse_sof(seg)?),
            0xc1 => {
                let precision = *seg.first().ok_or(JpegError::Truncated("SOF1"))?;
                if precision != 8 {
                    return Err(JpegError::Precision(precision));
                }
                return Err(JpegError::UnsupportedProcess(1));
            }
            0xc2 | 0xc6 | 0xca | 0xce => return Err(JpegError::Progressive),
            0xc3 | 0xc5 | 0xc7 | 0xc9 | 0xcb | 0xcd | 0xcf => {
                return Err(JpegError::UnsupportedProcess(marker - 0xc0));
            }
            SOS => {
                let (width, height, comps) = frame.ok_or(JpegError::Missing("SOF0"))?;
                let (rtp_type, quant_tables) = check_frame(&comps, &tables)?;
                check_scan(seg, &comps, &huffman)?;
                let scan_start = pos;
                let scan_end = find_scan_end(data, scan_start)?;
                return Ok(JpegInfo {
                    width,
                    height,
                    rtp_type,
                    quant_tables,
                    restart_interval,
                    scan_start,
                    scan_end,
                });
            }
            _ => {}
        }
    }
}

fn segment_name(marker: u8) -> &'static str {
    match marker {
        DQT => "DQT",
        DHT => "DHT",
        DRI => "DRI",
        SOS => "SOS",
        0xc0..=0xcf => "SOF",
        _ => "segment",
    }
}

fn parse_dqt(mut seg: &[u8], tables: &mut [Option<[u8; 64]>; 4]) -> Result<(), JpegError> {
    while let Some((&pq_tq, rest)) = seg.split_first() {
        let (pq, tq) = (pq_tq >> 4, pq_tq & 0x0f);
        if pq != 0 {
            return Err(JpegError::Table16Bit(tq));
        }
        if tq > 3 {
            return Err(JpegError::Unsupported(format!(
                "quantization table id {tq}"
            )));
        }
        let t = rest.get(..64).ok_or(JpegError::Truncated("DQT"))?;
        let mut table = [0u8; 64];
        table.copy_from_slice(t);
        tables[usize::from(tq)] = Some(table);
        seg = &rest[64..];
    }
    Ok(())
}

fn parse_dht(mut seg: &[u8], out: &mut Vec<(u8, u8, Vec<u8>, Vec<u8>)>) -> Result<(), JpegError> {
    while let Some((&tc_th, rest)) = seg.split_first() {
        let counts = rest.get(..16).ok_or(JpegError::Truncated("DHT"))?;
        let n: usize = counts.iter().map(|&c| usize::from(c)).sum();
        let symbols = rest.get(16..16 + n).ok_or(JpegError::Truncated("DHT"))?;
        let (tc, th) = (tc_th >> 4, tc_th & 0x0f);
        out.retain(|(c, h, _, _)| (*c, *h) != (tc, th));
        out.push((tc, th, counts.to_vec(), symbols.to_vec()));
        seg = &rest[16 + n..];
    }
    Ok(())
}

fn parse_sof(seg: &[u8]) -> Result<(u16, u16, Vec<Component>), JpegError> {
    let head = seg.get(..6).ok_or(JpegError::Truncated("SOF0"))?;
    if head[0] != 8 {
        return Err(JpegError::Precision(head[0]));
    }
    let height = u16::from_be_bytes([head[1], head[2]]);
    let width = u16::from_be_bytes([head[3], head[4]]);
    let n = head[5];
    let comps = seg
        .get(6..6 + 3 * usize::from(n))
        .ok_or(JpegError::Truncated("SOF0"))?
        .chunks_exact(3)
        .map(|c| Component {
            id: c[0],
            sampling: c[1],
            table: c[2],
        })
        .collect();
    if width == 0 || height == 0 {
        return Err(JpegError::Unsupported(format!(
            "image size {width}x{height} (DNL is not supported)"
        )));
    }
    Ok((width, height, comps))
}

/// Checks the frame's components and returns (RFC 2435 type, [luma, chroma] tables).
fn check_frame(
    comps: &[Component],
    tables: &[Option<[u8; 64]>; 4],
) -> Result<(u8, QuantTables), JpegError> {
    let [y, cb, cr] = comps else {
        return Err(JpegError::Components(comps.len() as u8));
    };
    let rtp_type = match (y.sampling, cb.sampling, cr.sampling) {
        (0x21, 0x11, 0x11) => 0,
        (0x22, 0x11, 0x11) => 1,
        _ => {
            return Err(JpegError::Sampling {
                y: y.sampling,
                cb: cb.sampling,
                cr: cr.sampling,
            });
        }
    };
    if cb.table != cr.table {
        return Err(JpegError::ChromaTables);
    }
    let get = |t: u8| {
        tables
            .get(usize::from(t))
            .copied()
            .flatten()
            .ok_or(JpegError::UndefinedTable(t))
    };
    Ok((rtp_type, [get(y.table)?, get(cb.table)?]))
}

/// Checks the scan header: one interleaved sequential scan with standard Huffman tables.
fn check_scan(
    seg: &[u8],
    comps: &[Component],
    huffman: &[(u8, u8, Vec<u8>, Vec<u8>)],
) -> Result<(), JpegError> {
    let ns = usize::from(*seg.first().ok_or(JpegError::Truncated("SOS"))?);
    let body = seg
        .get(1..1 + 2 * ns + 3)
        .ok_or(JpegError::Truncated("SOS"))?;
    if ns != comps.len() {
        return Err(JpegError::MultipleScans);
    }
    let (sel, spectral) = body.split_at(2 * ns);
    if spectral != [0, 63, 0] {
        return Err(JpegError::Progressive);
    }
    for (i, s) in sel.chunks_exact(2).enumerate() {
        if s[0] != comps[i].id {
            return Err(JpegError::Unsupported(format!(
                "scan component order (component {} where {} expected)",
                s[0], comps[i].id
            )));
        }
        let (dc_std, ac_std) = if i == 0 {
            (&STD_DC_LUMA, &STD_AC_LUMA)
        } else {
            (&STD_DC_CHROMA, &STD_AC_CHROMA)
        };
        for (class, id, std) in [(0u8, s[1] >> 4, dc_std), (1, s[1] & 0x0f, ac_std)] {
            // A file without DHT uses the standard tables implicitly (as MJPEG streams do).
            if huffman.is_empty() {
                continue;
            }
            let table = huffman
                .iter()
                .find(|(c, h, _, _)| (*c, *h) == (class, id))
                .ok_or(JpegError::Missing("DHT table"))?;
            if !std.matches(&table.2, &table.3) {
                return Err(JpegError::NonStandardHuffman);
            }
        }
    }
    Ok(())
}

/// The offset of the marker that ends the scan (EOI), or the data's end if it is missing.
fn find_scan_end(data: &[u8], start: usize) -> Result<usize, JpegError> {
    let mut i = start;
    while i + 1 < data.len() {
        if data[i] == 0xff {
            match data[i + 1] {
                0x00 | 0xd0..=0xd7 | 0xff => {}
                EOI => return Ok(i),
                _ => return Err(JpegError::MultipleScans),
            }
        }
        i += 1;
    }
    Ok(data.len())
}

/// Builds the JFIF header (SOI, DQT, SOF0, DHT, optional DRI, SOS) that precedes RFC 2435
/// scan data with these parameters.
pub fn build_header(p: &Rfc2435Params) -> Result<Vec<u8>, JpegError> {
    let y_sampling = match p.rtp_type {
        0 => 0x21,
        1 => 0x22,
        t => return Err(JpegError::Unsupported(format!("RTP/JPEG type {t}"))),
    };
    if p.width == 0 || p.height == 0 {
        return Err(JpegError::Unsupported(format!(
            "image size {}x{}",
            p.width, p.height
        )));
    }
    let tables = match (p.q, &p.quant_tables) {
        (0, _) => return Err(JpegError::Unsupported("Q value 0".into())),
        (1..=127, _) => rfc2435_tables(p.q),
        (_, Some(t)) => *t,
        (_, None) => {
            return Err(JpegError::Unsupported(format!(
                "Q value {} without quantization tables",
                p.q
            )));
        }
    };
    let mut h = Vec::with_capacity(700);
    h.extend_from_slice(&[0xff, SOI]);
    h.extend_from_slice(&[0xff, DQT, 0, 132]);
    for (id, t) in tables.iter().enumerate() {
        h.push(id as u8);
        h.extend_from_slice(t);
    }
    h.extend_from_slice(&[0xff, 0xc0, 0, 17, 8]);
    h.extend_from_slice(&p.height.to_be_bytes());
    h.extend_from_slice(&p.width.to_be_bytes());
    h.extend_from_slice(&[3, 1, y_sampling, 0, 2, 0x11, 1, 3, 0x11, 1]);
    let dht = [
        (0x00, &STD_DC_LUMA),
        (0x10, &STD_AC_LUMA),
        (0x01, &STD_DC_CHROMA),
        (0x11, &STD_AC_CHROMA),
    ];
    let dht_len = 2 + dht.iter().map(|(_, t)| 17 + t.symbols.len()).sum::<usize>();
    h.extend_from_slice(&[0xff, DHT]);
    h.extend_from_slice(&(dht_len as u16).to_be_bytes());
    for (class_id, t) in dht {
        h.push(class_id);
        h.extend_from_slice(&t.counts);
        h.extend_from_slice(t.symbols);
    }
    if p.restart_interval > 0 {
        h.extend_from_slice(&[0xff, DRI, 0, 4]);
        h.extend_from_slice(&p.restart_interval.to_be_bytes());
    }
    h.extend_from_slice(&[0xff, SOS, 0, 12, 3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0]);
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(rtp_type: u8, q: u8) -> Rfc2435Params {
        Rfc2435Params {
            rtp_type,
            q,
            width: 64,
            height: 48,
            restart_interval: 0,
            quant_tables: None,
        }
    }

    #[test]
    fn zigzag_order_matches_t81_figure_a6() {
        assert_eq!(&ZIGZAG[..10], &[0, 1, 8, 16, 9, 2, 3, 10, 17, 24]);
        assert_eq!(&ZIGZAG[60..], &[47, 55, 62, 63]);
        let mut seen = ZIGZAG;
        seen.sort_unstable();
        assert_eq!(seen.to_vec(), (0..64).collect::<Vec<_>>());
    }

    #[test]
    fn standard_huffman_tables_have_consistent_counts() {
        for t in [STD_DC_LUMA, STD_DC_CHROMA, STD_AC_LUMA, STD_AC_CHROMA] {
            let n: usize = t.counts.iter().map(|&c| usize::from(c)).sum();
            assert_eq!(n, t.symbols.len());
        }
    }

    #[test]
    fn q50_gives_the_standard_tables() {
        let [l, c] = rfc2435_tables(50);
        assert_eq!(l[0], 16);
        assert_eq!(l[1], 11);
        assert_eq!(l[2], 12); // zigzag index 2 is natural (1,0)
        assert_eq!(c[63], 99);
    }

    #[test]
    fn q_scaling_follows_rfc2435_appendix_a() {
        // Q=10: scale 500 -> 16*5 = 80; Q=90: scale 20 -> (16*20+50)/100 = 3.
        assert_eq!(rfc2435_tables(10)[0][0], 80);
        assert_eq!(rfc2435_tables(90)[0][0], 3);
        // Q=1: scale 5000 -> clamped to 255.
        assert_eq!(rfc2435_tables(1)[1][63], 255);
        // Q=99: scale 2 -> (16*2+50)/100 = 0 -> clamped to 1.
        assert_eq!(rfc2435_tables(99)[0][0], 1);
    }

    #[test]
    fn built_header_parses_back() {
        let mut p = params(1, 80);
        p.restart_interval = 4;
        let mut jpeg = build_header(&p).unwrap();
        let scan_start = jpeg.len();
        jpeg.extend_from_slice(&[0x12, 0xff, 0x00, 0x34, 0xff, 0xd0, 0x56]);
        let scan_end = jpeg.len();
        jpeg.extend_from_slice(&[0xff, EOI]);
        let info = parse(&jpeg).unwrap();
        assert_eq!(
            info,
            JpegInfo {
                width: 64,
                height: 48,
                rtp_type: 1,
                quant_tables: rfc2435_tables(80),
                restart_interval: 4,
                scan_start,
                scan_end,
            }
        );
    }

    #[test]
    fn type0_header_has_h2v1_luma() {
        let h = build_header(&params(0, 50)).unwrap();
        let info = parse(&[&h[..], &[0, 0xff, 0xd9]].concat()).unwrap();
        assert_eq!(info.rtp_type, 0);
    }

    #[test]
    fn header_needs_tables_for_q128_and_up() {
        assert!(matches!(
            build_header(&params(1, 200)),
            Err(JpegError::Unsupported(_))
        ));
        let mut p = params(1, 255);
        p.quant_tables = Some([[7; 64], [9; 64]]);
        let info = parse(&[&build_header(&p).unwrap()[..], &[0xff, 0xd9]].concat()).unwrap();
        assert_eq!(info.quant_tables, [[7; 64], [9; 64]]);
    }

    #[test]
    fn unsupported_types_are_errors() {
        assert!(build_header(&params(2, 50)).is_err());
    }

    fn with_segment(marker: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![0xff, SOI, 0xff, marker];
        v.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn progressive_jpeg_is_rejected() {
        let v = with_segment(
            0xc2,
            &[8, 0, 16, 0, 16, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1],
        );
        assert_eq!(parse(&v), Err(JpegError::Progressive));
    }

    #[test]
    fn twelve_bit_jpeg_is_rejected() {
        let v = with_segment(
            0xc0,
            &[12, 0, 16, 0, 16, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1],
        );
        assert_eq!(parse(&v), Err(JpegError::Precision(12)));
        let v = with_segment(
            0xc1,
            &[12, 0, 16, 0, 16, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1],
        );
        assert_eq!(parse(&v), Err(JpegError::Precision(12)));
    }

    #[test]
    fn sixteen_bit_tables_are_rejected() {
        let mut body = vec![0x10];
        body.extend_from_slice(&[0; 128]);
        assert_eq!(
            parse(&with_segment(DQT, &body)),
            Err(JpegError::Table16Bit(0))
        );
    }

    #[test]
    fn unsupported_sampling_is_rejected() {
        let h = build_header(&params(1, 50)).unwrap();
        // Patch Y sampling in SOF0 (after SOI(2) + DQT(4+130) + SOF0 header(2+2+1+4+1+1)).
        let sof = h.windows(2).position(|w| w == [0xff, 0xc0]).unwrap();
        let mut v = h.clone();
        v[sof + 11] = 0x11;
        v.extend_from_slice(&[0xff, EOI]);
        assert_eq!(
            parse(&v),
            Err(JpegError::Sampling {
                y: 0x11,
                cb: 0x11,
                cr: 0x11
            })
        );
    }

    #[test]
    fn non_standard_huffman_tables_are_rejected() {
        let h = build_header(&params(1, 50)).unwrap();
        let dht = h.windows(2).position(|w| w == [0xff, DHT]).unwrap();
        let mut v = h.clone();
        // Swap two DC luma symbols.
        v[dht + 4 + 17] = 1;
        v[dht + 4 + 18] = 0;
        v.extend_from_slice(&[0xff, EOI]);
        assert_eq!(parse(&v), Err(JpegError::NonStandardHuffman));
    }

    #[test]
    fn truncated_files_never_panic_and_are_errors() {
        let mut h = build_header(&params(1, 50)).unwrap();
        h.extend_from_slice(&[1, 2, 3, 0xff, EOI]);
        for n in 0..h.len() - 5 {
            assert!(parse(&h[..n]).is_err(), "prefix {n}");
        }
        assert_eq!(parse(b"GIF89a"), Err(JpegError::NotJpeg));
    }
}
