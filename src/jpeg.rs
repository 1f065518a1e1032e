//! Checks that a byte string is a JPEG picture a browser can show, and reads its size.
//!
//! The splitter guarantees marker structure; this module asks `zune-jpeg` to parse the
//! headers (frame header, tables) so that pictures a decoder would reject never reach
//! clients.

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
