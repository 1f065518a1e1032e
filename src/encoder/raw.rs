//! The raw pictures the encoders take, and what every encoder back end shares about them:
//! the layouts cameras deliver ([`RawLayout`]) with their plane sizes, the conversion of
//! video-range YUV to the full range JPEG uses, and [`EncodeError`].

use std::fmt;

/// Why a picture could not be encoded.
#[derive(Debug)]
pub struct EncodeError(pub(crate) String);

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JPEG encoding failed: {}", self.0)
    }
}

impl std::error::Error for EncodeError {}

/// Raw picture layouts that cameras deliver and the encoder takes directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawLayout {
    /// Packed 4:2:2, bytes Y0 U Y1 V.
    Yuyv,
    /// Packed 4:2:2, bytes U Y0 V Y1.
    Uyvy,
    /// Planar 4:2:0: a Y plane, then one plane of interleaved U V at half size.
    Nv12,
    /// Planar 4:2:0 (I420, libcamera's YUV420): a Y plane, then a U and a V plane,
    /// each at half width and half height with half the Y plane's stride.
    Yuv420,
    /// Packed full-range RGB, bytes R G B (libcamera's BGR888).
    Rgb24,
    /// Packed full-range RGB, bytes B G R (libcamera's RGB888).
    Bgr24,
}

impl RawLayout {
    /// Bytes a picture needs with `stride` bytes per row of the first plane.
    pub fn frame_len(self, stride: usize, height: usize) -> usize {
        self.plane_lens(stride, height).iter().sum()
    }

    /// Bytes of each plane with `stride` bytes per row of the first plane.
    pub(crate) fn plane_lens(self, stride: usize, height: usize) -> [usize; 3] {
        let half = height.div_ceil(2);
        match self {
            RawLayout::Yuyv | RawLayout::Uyvy | RawLayout::Rgb24 | RawLayout::Bgr24 => {
                [stride * height, 0, 0]
            }
            RawLayout::Nv12 => [stride * height, stride * half, 0],
            RawLayout::Yuv420 => [stride * height, stride / 2 * half, stride / 2 * half],
        }
    }

    /// The smallest stride of the first plane that holds `width` pixels.
    pub(crate) fn min_stride(self, width: usize) -> usize {
        match self {
            RawLayout::Yuyv | RawLayout::Uyvy => width.div_ceil(2) * 4,
            RawLayout::Nv12 | RawLayout::Yuv420 => width.div_ceil(2) * 2,
            RawLayout::Rgb24 | RawLayout::Bgr24 => width * 3,
        }
    }
}

/// Video-range luma (16-235) to the full range JPEG uses (0-255).
fn full_range_luma(y: u8) -> u8 {
    ((y.saturating_sub(16) as u32 * 255 + 109) / 219).min(255) as u8
}

/// Video-range chroma (16-240, centred on 128) to full range.
fn full_range_chroma(c: u8) -> u8 {
    ((c as f32 - 128.0) * 255.0 / 224.0 + 128.0)
        .round()
        .clamp(0.0, 255.0) as u8
}

/// Lookup tables for the range conversions, built once.
pub(crate) struct RangeTables {
    pub(crate) luma: [u8; 256],
    pub(crate) chroma: [u8; 256],
}

pub(crate) fn range_tables() -> &'static RangeTables {
    static TABLES: std::sync::OnceLock<RangeTables> = std::sync::OnceLock::new();
    TABLES.get_or_init(|| {
        let mut t = RangeTables {
            luma: [0; 256],
            chroma: [0; 256],
        };
        for v in 0..=255u8 {
            t.luma[v as usize] = full_range_luma(v);
            t.chroma[v as usize] = full_range_chroma(v);
        }
        t
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_conversion_endpoints() {
        assert_eq!(full_range_luma(16), 0);
        assert_eq!(full_range_luma(235), 255);
        assert_eq!(full_range_luma(0), 0);
        assert_eq!(full_range_chroma(128), 128);
        assert!(full_range_chroma(16) <= 1);
        assert_eq!(full_range_chroma(240), 255);
        assert_eq!(full_range_chroma(0), 0);
    }
}
