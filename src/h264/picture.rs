//! The pictures both H.264 stages encode: the newest JPEG from the frame slot decoded
//! to I420 (planar Y, then U and V at half size each way), limited range, cropped to
//! even width and height.

use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

use crate::frame::Frame;
use crate::ratelog::{RateLimit, DEFAULT_INTERVAL};

static BAD_PICTURE: RateLimit = RateLimit::new(DEFAULT_INTERVAL);

/// One picture in I420 (planar Y, then U and V at half size each way), limited range.
pub struct Picture {
    pub width: u16,
    pub height: u16,
    pub yuv: Vec<u8>,
}

/// Full-range JPEG luma (0..=255) to the 16..=235 range H.264 players expect.
fn limited_luma(v: u8) -> u8 {
    (16 + (u32::from(v) * 219 + 127) / 255) as u8
}

/// Full-range JPEG chroma to 16..=240.
fn limited_chroma(v: u32) -> u8 {
    (16 + (v * 224 + 127) / 255) as u8
}

impl Picture {
    /// Decodes `frame`'s JPEG; `None` (and a bounded warning) when it cannot.
    pub fn decode(frame: &Frame) -> Option<Picture> {
        match Picture::from_jpeg(frame.jpeg()) {
            Ok(p) => Some(p),
            Err(e) => {
                crate::warn_limited!(BAD_PICTURE, "H.264: cannot decode a frame: {e}");
                None
            }
        }
    }

    /// Decodes a JPEG picture to I420, cropped to even width and height.
    pub fn from_jpeg(jpeg: &[u8]) -> Result<Picture, String> {
        let options = DecoderOptions::default().jpeg_set_out_colorspace(ColorSpace::YCbCr);
        let mut decoder = JpegDecoder::new_with_options(jpeg, options);
        let (pixels, step) = match decoder.decode() {
            Ok(p) => (p, 3),
            // A grey picture has no chroma to keep.
            Err(_) => {
                let options = DecoderOptions::default().jpeg_set_out_colorspace(ColorSpace::Luma);
                let p = JpegDecoder::new_with_options(jpeg, options)
                    .decode()
                    .map_err(|e| format!("{e:?}"))?;
                (p, 1)
            }
        };
        let info = decoder
            .info()
            .or_else(|| {
                let mut d = JpegDecoder::new(jpeg);
                d.decode_headers().ok()?;
                d.info()
            })
            .ok_or("no frame header")?;
        let (w, h) = (usize::from(info.width), usize::from(info.height));
        if pixels.len() < w * h * step || w < 2 || h < 2 {
            return Err(format!("decoded {} bytes for {w}x{h}", pixels.len()));
        }
        let (ew, eh) = (w & !1, h & !1);
        let mut yuv = vec![0u8; ew * eh * 3 / 2];
        let (y_plane, chroma) = yuv.split_at_mut(ew * eh);
        let (u_plane, v_plane) = chroma.split_at_mut(ew * eh / 4);
        for row in 0..eh {
            let src = &pixels[row * w * step..];
            for (col, y) in y_plane[row * ew..(row + 1) * ew].iter_mut().enumerate() {
                *y = limited_luma(src[col * step]);
            }
        }
        if step == 1 {
            u_plane.fill(128);
            v_plane.fill(128);
        } else {
            for row in 0..eh / 2 {
                let top = &pixels[2 * row * w * 3..];
                let bottom = &pixels[(2 * row + 1) * w * 3..];
                for col in 0..ew / 2 {
                    let at = 2 * col * 3;
                    let sum = |c: usize| {
                        u32::from(top[at + c])
                            + u32::from(top[at + 3 + c])
                            + u32::from(bottom[at + c])
                            + u32::from(bottom[at + 3 + c])
                    };
                    u_plane[row * ew / 2 + col] = limited_chroma((sum(1) + 2) / 4);
                    v_plane[row * ew / 2 + col] = limited_chroma((sum(2) + 2) / 4);
                }
            }
        }
        Ok(Picture {
            width: ew as u16,
            height: eh as u16,
            yuv,
        })
    }
}

/// Pictures for the tests of both stages.
#[cfg(test)]
pub(crate) mod test_pictures {
    /// A moving picture as JPEG: a gradient with a bright square that moves a few
    /// pixels each frame.
    pub(crate) fn moving_jpeg(width: u16, height: u16, frame: u64) -> Vec<u8> {
        let (w, h) = (usize::from(width), usize::from(height));
        let mut rgb = vec![0u8; w * h * 3];
        let at = (frame as usize * 3) % w.max(1);
        for y in 0..h {
            for x in 0..w {
                let square = (at..at + 16).contains(&x) && (8..24).contains(&y);
                let v = if square {
                    250
                } else {
                    ((x + y) * 255 / (w + h)) as u8
                };
                rgb[(y * w + x) * 3..][..3].copy_from_slice(&[v, v / 2, 255 - v]);
            }
        }
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, 80)
            .encode(&rgb, width, height, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::test_pictures::moving_jpeg;
    use super::*;

    #[test]
    fn a_jpeg_becomes_an_even_sized_limited_range_i420_picture() {
        let p = Picture::from_jpeg(&moving_jpeg(65, 49, 1)).unwrap();
        assert_eq!((p.width, p.height), (64, 48));
        assert_eq!(p.yuv.len(), 64 * 48 * 3 / 2);
        assert!(p.yuv.iter().all(|&v| (16..=240).contains(&v)));
        assert_eq!(limited_luma(0), 16);
        assert_eq!(limited_luma(255), 235);
        assert_eq!(limited_chroma(128), 128);
        assert!(Picture::from_jpeg(b"not a jpeg").is_err());
    }
}
