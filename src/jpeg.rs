//! Checks that a byte string is a JPEG picture a browser can show, and reads its size.
//!
//! The splitter guarantees marker structure; this module asks `zune-jpeg` to parse the
//! headers (frame header, tables) so that pictures a decoder would reject never reach
//! clients. An [`Inspector`] does that once for a stream whose pictures all carry the
//! same headers, as a camera's MJPEG does.

use std::fmt;

use zune_jpeg::JpegDecoder;

/// Why a byte string was not accepted as a JPEG picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JpegError(String);

impl fmt::Display for JpegError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for JpegError {}

/// Width and height of a JPEG picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dimensions {
    pub width: u16,
    pub height: u16,
}

/// Parses the headers of `data` and returns the picture's dimensions.
pub fn inspect(data: &[u8]) -> Result<Dimensions, JpegError> {
    if data.len() < 4 || data[..2] != [0xFF, 0xD8] {
        return Err(JpegError(
            "does not start with a JPEG start-of-image marker".into(),
        ));
    }
    if data[data.len() - 2..] != [0xFF, 0xD9] {
        return Err(JpegError(
            "does not end with a JPEG end-of-image marker".into(),
        ));
    }
    let mut decoder = JpegDecoder::new(data);
    decoder
        .decode_headers()
        .map_err(|e| JpegError(format!("unreadable JPEG headers: {e:?}")))?;
    let info = decoder
        .info()
        .ok_or_else(|| JpegError("JPEG has no frame header".into()))?;
    if info.width == 0 || info.height == 0 {
        return Err(JpegError("JPEG has a zero width or height".into()));
    }
    Ok(Dimensions {
        width: info.width,
        height: info.height,
    })
}

/// [`inspect`] for a stream of pictures: headers the same, byte for byte, as those of
/// the last picture it accepted are not parsed again.
///
/// A camera sends the same headers (tables, frame header, scan header) with every
/// frame, and parsing them, building the Huffman tables above all, costs more than all
/// the rest a picture's bytes go through on their way to the viewers. What `inspect`
/// decides depends only on the bytes up to the end of the start-of-scan segment and on
/// the end-of-image marker, and both are still checked.
#[derive(Debug, Default)]
pub struct Inspector {
    /// The headers of the last picture accepted, through its start-of-scan segment, in
    /// four copies: the one in `copies[k]` starts `k` bytes into its first word, so that
    /// headers anywhere in memory have a copy that lies in words as they do, to be
    /// compared a word at a time ([`same_bytes`]).
    copies: [Vec<u32>; 4],
    /// Length of the headers.
    len: usize,
    dims: Option<Dimensions>,
}

impl Inspector {
    /// What [`inspect`] says about `data`.
    pub fn inspect(&mut self, data: &[u8]) -> Result<Dimensions, JpegError> {
        let headers = headers_end(data).map(|end| &data[..end]);
        if let (Some(headers), Some(dims)) = (headers, self.dims) {
            if same_bytes(headers, self.headers_like(headers)) && data.ends_with(&[0xFF, 0xD9]) {
                return Ok(dims);
            }
        }
        self.dims = None;
        let dims = inspect(data)?;
        if let Some(headers) = headers {
            for (k, copy) in self.copies.iter_mut().enumerate() {
                copy.clear();
                copy.resize((k + headers.len()).div_ceil(4), 0);
                bytemuck::cast_slice_mut::<u32, u8>(copy)[k..k + headers.len()]
                    .copy_from_slice(headers);
            }
            self.len = headers.len();
            self.dims = Some(dims);
        }
        Ok(dims)
    }

    /// The copy of the last accepted headers that lies in words as `like` does.
    fn headers_like(&self, like: &[u8]) -> &[u8] {
        let k = like.as_ptr() as usize % 4;
        &bytemuck::cast_slice::<u32, u8>(&self.copies[k])[k..k + self.len]
    }
}

/// `a == b`, whole words compared as words when the two lie alike in words (the same
/// address modulo four). Slices compare through the C library's `memcmp`, which on
/// ARMv6 goes a byte at a time.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let (a_head, a_words, a_tail) = bytemuck::pod_align_to::<u8, u32>(a);
    let (b_head, b_words, b_tail) = bytemuck::pod_align_to::<u8, u32>(b);
    if a.len() != b.len() || a_head.len() != b_head.len() {
        return a == b;
    }
    a_head == b_head && a_words.iter().zip(b_words).all(|(x, y)| x == y) && a_tail == b_tail
}

/// Where the start-of-scan segment of `data` ends, when its headers lead to one.
fn headers_end(data: &[u8]) -> Option<usize> {
    let (sos, _) = scan_start(data)?;
    let len = u16::from_be_bytes([*data.get(sos + 2)?, *data.get(sos + 3)?]) as usize;
    let end = sos + 2 + len;
    (end <= data.len()).then_some(end)
}

/// `data` up to and including its last end-of-image marker: drivers often hand over
/// buffers with padding after the picture.
pub fn trim_after_eoi(data: &[u8]) -> &[u8] {
    match data.windows(2).rposition(|w| w == [0xFF, 0xD9]) {
        Some(i) => &data[..i + 2],
        None => data,
    }
}

/// Position of the start-of-scan marker, and whether a Huffman table segment comes before
/// it. `None` when `data` does not start with a start-of-image marker or its header
/// segments do not lead to a scan. A marker code that cannot appear among the headers
/// also gives `None`: decoders disagree on how to read past one, so where tables would
/// go is not certain.
fn scan_start(data: &[u8]) -> Option<(usize, bool)> {
    if !data.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut at = 2;
    let mut dht = false;
    while at + 4 <= data.len() {
        if data[at] != 0xFF {
            return None;
        }
        match data[at + 1] {
            0xFF => at += 1,
            0xDA => return Some((at, dht)),
            0xD0..=0xD7 | 0x01 => at += 2,
            0x00 | 0x02..=0xBF | 0xD8 | 0xD9 => return None,
            code => {
                dht |= code == 0xC4;
                at += 2 + u16::from_be_bytes([data[at + 2], data[at + 3]]) as usize;
            }
        }
    }
    None
}

/// The standard Huffman tables of the JPEG specification (Annex K.3), as DHT segments.
///
/// Many UVC webcams send MJPEG frames without tables, relying on these defaults (as the
/// Motion-JPEG convention allows); browsers, Safari above all, show nothing for such a
/// frame. They are taken once from the software encoder, which writes exactly these
/// tables unless asked to optimise them.
fn standard_huffman_segments() -> &'static [u8] {
    static SEGMENTS: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    SEGMENTS.get_or_init(|| {
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, 90)
            .encode(&[128; 16 * 16 * 3], 16, 16, jpeg_encoder::ColorType::Rgb)
            .expect("encoding a 16x16 picture cannot fail");
        let mut segments = Vec::new();
        let mut at = 2;
        while at + 4 <= out.len() && out[at + 1] != 0xDA {
            let len = u16::from_be_bytes([out[at + 2], out[at + 3]]) as usize;
            if out[at + 1] == 0xC4 {
                segments.extend_from_slice(&out[at..at + 2 + len]);
            }
            at += 2 + len;
        }
        segments
    })
}

/// `data` with the standard Huffman tables added when it is a JPEG picture that has none
/// of its own; anything else is returned as it is.
pub fn with_huffman_tables(data: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    match scan_start(data) {
        Some((sos, false)) => {
            let tables = standard_huffman_segments();
            let mut out = Vec::with_capacity(data.len() + tables.len());
            out.extend_from_slice(&data[..sos]);
            out.extend_from_slice(tables);
            out.extend_from_slice(&data[sos..]);
            std::borrow::Cow::Owned(out)
        }
        _ => std::borrow::Cow::Borrowed(data),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_compare_equal_only_when_every_byte_is_the_same_wherever_they_lie() {
        // Two buffers of the same bytes, seen from every pair of offsets, then with one
        // byte changed at every place: word-wise where the two lie alike in words.
        let bytes: Vec<u8> = (0..80u32).map(|i| (i * 37 % 251) as u8).collect();
        let copy = bytes.clone();
        for (a_at, b_at) in (0..4).flat_map(|a| (0..4).map(move |b| (a, b))) {
            for len in 0..40 {
                let a = &bytes[a_at..a_at + len];
                assert!(same_bytes(a, &copy[b_at..b_at + len]) == (a == &copy[b_at..b_at + len]));
                if a_at != b_at {
                    continue;
                }
                assert!(same_bytes(a, &copy[b_at..b_at + len]), "{a_at} {len}");
                for at in 0..len {
                    let mut other = copy.clone();
                    other[b_at + at] ^= 0x40;
                    assert!(
                        !same_bytes(a, &other[b_at..b_at + len]),
                        "{a_at} {len} {at}"
                    );
                }
                assert!(!same_bytes(a, &copy[b_at..b_at + len + 1]));
            }
        }
    }

    #[test]
    fn real_jpeg_dimensions_and_rejections() {
        let pixels = vec![128u8; 48 * 32 * 3];
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, 80)
            .encode(&pixels, 48, 32, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        assert_eq!(
            inspect(&out).unwrap(),
            Dimensions {
                width: 48,
                height: 32
            }
        );
        assert!(inspect(b"not a jpeg at all").is_err());
        let mut broken = out.clone();
        // Destroy the frame header's marker: headers no longer parse.
        let sof = broken.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        broken[sof + 1] = 0x01;
        assert!(inspect(&broken).is_err());
        assert!(inspect(&out[..out.len() - 2]).is_err());
    }

    fn encoded(width: u16, height: u16, gray: u8) -> Vec<u8> {
        let pixels = vec![gray; usize::from(width) * usize::from(height) * 3];
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, 80)
            .encode(&pixels, width, height, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        out
    }

    #[test]
    fn an_inspector_says_what_inspect_says_about_every_picture_of_a_stream() {
        let a = encoded(48, 32, 128);
        let a_again = encoded(48, 32, 40); // same headers, other scan data
        let b = encoded(64, 16, 128); // other headers
        let mut no_eoi = a.clone();
        no_eoi.truncate(a.len() - 2);
        let mut bad_frame_header = a.clone();
        let sof = a.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        bad_frame_header[sof + 1] = 0x01;
        let mut other_scan_header = a_again.clone();
        let (sos, _) = scan_start(&a).unwrap();
        other_scan_header[sos + 5] = 0x77; // the first component's selector
        let mut inspector = Inspector::default();
        for picture in [
            &a,
            &a_again,
            &b,
            &a,
            &no_eoi,
            &a_again,
            &bad_frame_header,
            &a,
            &other_scan_header,
            &a,
        ] {
            assert_eq!(
                inspector.inspect(picture),
                inspect(picture),
                "{} bytes",
                picture.len()
            );
        }
    }

    /// Removes every DHT segment, as table-less webcams send their frames.
    fn strip_tables(jpeg: &[u8]) -> Vec<u8> {
        let (sos, _) = scan_start(jpeg).unwrap();
        let mut out = jpeg[..2].to_vec();
        let mut at = 2;
        while at < sos {
            let len = u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]) as usize;
            if jpeg[at + 1] != 0xC4 {
                out.extend_from_slice(&jpeg[at..at + 2 + len]);
            }
            at += 2 + len;
        }
        out.extend_from_slice(&jpeg[sos..]);
        out
    }

    #[test]
    fn standard_tables_are_the_specification_ones() {
        let seg = standard_huffman_segments();
        // First table: DC luminance, class 0 id 0, code counts of Annex K.3 table K.3.
        let first = &seg[..4 + 1 + 16];
        assert_eq!(&first[..2], &[0xFF, 0xC4]);
        assert_eq!(first[4], 0x00);
        assert_eq!(
            &first[5..],
            &[0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
        );
        // All four tables: 2 DC (12 values each) and 2 AC (162 values each).
        let mut total_values = 0;
        let mut at = 0;
        while at < seg.len() {
            let len = u16::from_be_bytes([seg[at + 2], seg[at + 3]]) as usize;
            let mut t = at + 4;
            while t < at + 2 + len {
                let n: usize = seg[t + 1..t + 17].iter().map(|&c| c as usize).sum();
                total_values += n;
                t += 17 + n;
            }
            at += 2 + len;
        }
        assert_eq!(total_values, 12 + 12 + 162 + 162);
    }

    #[test]
    fn tables_are_added_only_where_missing_and_make_frames_decodable() {
        let pixels: Vec<u8> = (0..64 * 48 * 3).map(|i| (i * 7 % 251) as u8).collect();
        let mut full = Vec::new();
        jpeg_encoder::Encoder::new(&mut full, 80)
            .encode(&pixels, 64, 48, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        assert!(matches!(
            with_huffman_tables(&full),
            std::borrow::Cow::Borrowed(_)
        ));
        let bare = strip_tables(&full);
        assert!(bare.len() < full.len());
        let fixed = with_huffman_tables(&bare).into_owned();
        let a = zune_jpeg::JpegDecoder::new(&full).decode().unwrap();
        let b = zune_jpeg::JpegDecoder::new(&fixed).decode().unwrap();
        assert_eq!(a, b, "the added tables are the ones the encoder used");
        let mut padded = full.clone();
        padded.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(trim_after_eoi(&padded), &full[..]);
    }

    #[test]
    fn tables_are_only_added_to_jpeg_pictures() {
        // Found by fuzzing: a buffer without a start-of-image marker, but whose bytes
        // after the first two look like header segments, got tables inserted.
        let pixels = vec![90u8; 16 * 16 * 3];
        let mut full = Vec::new();
        jpeg_encoder::Encoder::new(&mut full, 80)
            .encode(&pixels, 16, 16, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        let bare = strip_tables(&full);
        assert!(matches!(
            with_huffman_tables(&bare),
            std::borrow::Cow::Owned(_)
        ));
        // Found by fuzzing: a marker code that has no place among the headers (here
        // 0x00) was read as a segment; the decoder reads past it otherwise, and the
        // tables put where this module thought the scan starts made readable headers
        // unreadable. Such buffers are left as they are.
        let mut bad = bare[..2].to_vec();
        bad.extend_from_slice(&[0xFF, 0x00, 0x00, 0x04, 0x00, 0x00]);
        bad.extend_from_slice(&bare[2..]);
        assert!(matches!(
            with_huffman_tables(&bad),
            std::borrow::Cow::Borrowed(_)
        ));
        for first in [[0xDF, 0xD8], [0xFF, 0xD9], [0x00, 0x00]] {
            let mut not_jpeg = bare.clone();
            not_jpeg[..2].copy_from_slice(&first);
            assert!(
                matches!(with_huffman_tables(&not_jpeg), std::borrow::Cow::Borrowed(b) if b == &not_jpeg[..]),
                "{first:02x?}"
            );
        }
    }
}
