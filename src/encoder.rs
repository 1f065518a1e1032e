//! Software JPEG encoding of raw pictures, for sources that do not deliver JPEG.
//!
//! Built on the `jpeg-encoder` crate: pure Rust (no C library to cross-compile for each
//! Pi), maintained, baseline JPEG with 4:2:0 chroma subsampling as every browser expects,
//! and AVX2 code paths on x86_64. The encoder reuses its output buffer between frames.

use std::fmt;

use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

/// Why a picture could not be encoded.
#[derive(Debug)]
pub struct EncodeError(String);

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JPEG encoding failed: {}", self.0)
    }
}

impl std::error::Error for EncodeError {}

/// Encodes packed RGB pictures to baseline JPEG.
pub struct SoftwareEncoder {
    quality: u8,
    out: Vec<u8>,
}

impl SoftwareEncoder {
    /// `quality` from 1 (smallest) to 100 (best).
    pub fn new(quality: u8) -> SoftwareEncoder {
        SoftwareEncoder {
            quality: quality.clamp(1, 100),
            out: Vec::with_capacity(128 * 1024),
        }
    }

    /// Encodes `rgb` (3 bytes per pixel, rows top to bottom) and returns the JPEG bytes,
    /// valid until the next call.
    pub fn encode_rgb(
        &mut self,
        rgb: &[u8],
        width: u16,
        height: u16,
    ) -> Result<&[u8], EncodeError> {
        let expected = width as usize * height as usize * 3;
        if rgb.len() != expected {
            return Err(EncodeError(format!(
                "{width}x{height} RGB needs {expected} bytes, got {}",
                rgb.len()
            )));
        }
        self.out.clear();
        let mut encoder = Encoder::new(&mut self.out, self.quality);
        encoder.set_sampling_factor(SamplingFactor::F_2_2);
        encoder
            .encode(rgb, width, height, ColorType::Rgb)
            .map_err(|e| EncodeError(e.to_string()))?;
        Ok(&self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_a_decodable_picture() {
        let (w, h) = (64u16, 48u16);
        let mut rgb = vec![0u8; w as usize * h as usize * 3];
        for (i, px) in rgb.chunks_mut(3).enumerate() {
            px[0] = (i % 256) as u8;
            px[1] = 200;
            px[2] = 30;
        }
        let mut enc = SoftwareEncoder::new(90);
        let jpeg = enc.encode_rgb(&rgb, w, h).unwrap().to_vec();
        let dims = crate::jpeg::inspect(&jpeg).unwrap();
        assert_eq!((dims.width, dims.height), (w, h));
        let pixels = zune_jpeg::JpegDecoder::new(&jpeg).decode().unwrap();
        assert_eq!(pixels.len(), rgb.len());
        // Green channel survives encoding closely.
        let g: u64 = pixels.chunks(3).map(|p| p[1] as u64).sum();
        let mean = g / (w as u64 * h as u64);
        assert!((190..=210).contains(&mean), "mean green {mean}");
        assert!(enc.encode_rgb(&rgb[1..], w, h).is_err());
    }
}
