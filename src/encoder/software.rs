//! Software JPEG encoding of raw pictures, for sources that do not deliver JPEG.
//!
//! Two back ends produce the same baseline 4:2:0 JPEG that every browser shows:
//!
//! * `jpeg-encoder`: pure Rust, always built (no C library to cross-compile for each Pi),
//!   with AVX2 code paths on x86_64;
//! * libjpeg-turbo (`encoder/turbo.rs`, cargo feature `turbojpeg`): three to four
//!   times faster, with NEON on the Pi 2 and later, at the price of CMake and a C
//!   compiler for the target when building.
//!
//! [`SoftwareEncoder::new`] takes libjpeg-turbo when it is built in. Each encoder reuses
//! its buffers between frames.

use jpeg_encoder::{ColorType, Encoder, ImageBuffer, JpegColorType, SamplingFactor};

use super::raw::{range_tables, EncodeError, RangeTables, RawLayout};

/// Which library does the encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The pure Rust `jpeg-encoder` crate.
    JpegEncoder,
    /// libjpeg-turbo, linked statically (cargo feature `turbojpeg`).
    LibjpegTurbo,
}

impl Backend {
    /// The fastest back end in this binary.
    pub fn best() -> Backend {
        if cfg!(feature = "turbojpeg") {
            Backend::LibjpegTurbo
        } else {
            Backend::JpegEncoder
        }
    }

    /// The name `/status` and the logs use.
    pub fn name(self) -> &'static str {
        match self {
            Backend::JpegEncoder => "jpeg-encoder",
            Backend::LibjpegTurbo => "libjpeg-turbo",
        }
    }
}

/// Encodes RGB and raw camera pictures to baseline JPEG on the CPU.
pub struct SoftwareEncoder {
    quality: u8,
    out: Vec<u8>,
    #[cfg(feature = "turbojpeg")]
    turbo: Option<super::turbo::TurboEncoder>,
}

impl SoftwareEncoder {
    /// `quality` from 1 (smallest) to 100 (best), with the fastest back end built in.
    pub fn new(quality: u8) -> SoftwareEncoder {
        SoftwareEncoder::with_backend(quality, Backend::best())
    }

    /// An encoder using `backend`; falls back to `jpeg-encoder` when libjpeg-turbo is
    /// not built in or cannot start.
    pub fn with_backend(quality: u8, backend: Backend) -> SoftwareEncoder {
        let quality = quality.clamp(1, 100);
        #[cfg(feature = "turbojpeg")]
        let turbo = match backend {
            Backend::LibjpegTurbo => match super::turbo::TurboEncoder::new(quality) {
                Ok(t) => Some(t),
                Err(e) => {
                    log::warn!("{e}; encoding with jpeg-encoder instead");
                    None
                }
            },
            Backend::JpegEncoder => None,
        };
        #[cfg(not(feature = "turbojpeg"))]
        let _ = backend;
        SoftwareEncoder {
            quality,
            out: Vec::with_capacity(128 * 1024),
            #[cfg(feature = "turbojpeg")]
            turbo,
        }
    }

    /// The back end this encoder runs.
    pub fn backend(&self) -> Backend {
        #[cfg(feature = "turbojpeg")]
        if self.turbo.is_some() {
            return Backend::LibjpegTurbo;
        }
        Backend::JpegEncoder
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
        #[cfg(feature = "turbojpeg")]
        if let Some(turbo) = &mut self.turbo {
            return turbo.encode_rgb(rgb, width as usize, height as usize);
        }
        start(&mut self.out, self.quality)
            .encode(rgb, width, height, ColorType::Rgb)
            .map_err(|e| EncodeError(e.to_string()))?;
        Ok(&self.out)
    }
}

/// A baseline 4:2:0 `jpeg-encoder` writing into the emptied `out`.
fn start(out: &mut Vec<u8>, quality: u8) -> Encoder<&mut Vec<u8>> {
    out.clear();
    let mut encoder = Encoder::new(out, quality);
    encoder.set_sampling_factor(SamplingFactor::F_2_2);
    encoder
}

/// A camera picture in one of the [`RawLayout`]s, read row by row by the encoder.
struct RawPicture<'a> {
    frame: RawFrame<'a>,
    tables: &'static RangeTables,
}

impl ImageBuffer for RawPicture<'_> {
    fn get_jpeg_color_type(&self) -> JpegColorType {
        JpegColorType::Ycbcr
    }

    fn width(&self) -> u16 {
        self.frame.width
    }

    fn height(&self) -> u16 {
        self.frame.height
    }

    fn fill_buffers(&self, y: u16, buffers: &mut [Vec<u8>; 4]) {
        let (t, w, y) = (self.tables, self.frame.width as usize, y as usize);
        let [luma, cb, cr, _] = buffers;
        match self.frame.layout {
            RawLayout::Yuyv | RawLayout::Uyvy => {
                let (yo, uo, vo) = if self.frame.layout == RawLayout::Yuyv {
                    (0, 1, 3)
                } else {
                    (1, 0, 2)
                };
                let row = &self.frame.planes[0][y * self.frame.stride..][..w.div_ceil(2) * 4];
                for (x, quad) in row.chunks_exact(4).enumerate() {
                    let (u, v) = (t.chroma[quad[uo] as usize], t.chroma[quad[vo] as usize]);
                    for half in 0..2 {
                        if x * 2 + half < w {
                            luma.push(t.luma[quad[yo + 2 * half] as usize]);
                            cb.push(u);
                            cr.push(v);
                        }
                    }
                }
            }
            RawLayout::Nv12 => {
                let row = &self.frame.planes[0][y * self.frame.stride..][..w];
                let uv = &self.frame.planes[1][(y / 2) * self.frame.stride..][..w.div_ceil(2) * 2];
                for (x, &l) in row.iter().enumerate() {
                    luma.push(t.luma[l as usize]);
                    cb.push(t.chroma[uv[(x / 2) * 2] as usize]);
                    cr.push(t.chroma[uv[(x / 2) * 2 + 1] as usize]);
                }
            }
            RawLayout::Yuv420 => {
                let row = &self.frame.planes[0][y * self.frame.stride..][..w];
                let cstride = self.frame.stride / 2;
                let u = &self.frame.planes[1][(y / 2) * cstride..][..w.div_ceil(2)];
                let v = &self.frame.planes[2][(y / 2) * cstride..][..w.div_ceil(2)];
                for (x, &l) in row.iter().enumerate() {
                    luma.push(t.luma[l as usize]);
                    cb.push(t.chroma[u[x / 2] as usize]);
                    cr.push(t.chroma[v[x / 2] as usize]);
                }
            }
            RawLayout::Rgb24 | RawLayout::Bgr24 => {
                let (ri, bi) = if self.frame.layout == RawLayout::Rgb24 {
                    (0, 2)
                } else {
                    (2, 0)
                };
                let row = &self.frame.planes[0][y * self.frame.stride..][..w * 3];
                for px in row.chunks_exact(3) {
                    let [l, b, r] = rgb_to_ycbcr(px[ri], px[1], px[bi]);
                    luma.push(l);
                    cb.push(b);
                    cr.push(r);
                }
            }
        }
    }
}

/// The planes of a raw picture that follow each other in `data`, and the stride they
/// have (at least the layout's smallest for `width`). A plane cut short by the end of
/// `data` comes out short, for the encoder to refuse.
pub(crate) fn split_planes(
    data: &[u8],
    layout: RawLayout,
    width: u16,
    height: u16,
    stride: usize,
) -> ([&[u8]; 3], usize) {
    let stride = stride.max(layout.min_stride(width as usize));
    let lens = layout.plane_lens(stride, height as usize);
    let mut planes: [&[u8]; 3] = [&[]; 3];
    let mut rest = data;
    for (plane, &len) in planes.iter_mut().zip(&lens) {
        let (this, more) = rest.split_at(len.min(rest.len()));
        *plane = this;
        rest = more;
    }
    (planes, stride)
}

/// Checks that `planes` hold a `width` x `height` picture of `layout` with rows
/// `stride` bytes apart (at least the layout's smallest); returns that stride and the
/// bytes of each plane the picture uses.
pub(crate) fn check_planes(
    planes: &[&[u8]; 3],
    layout: RawLayout,
    width: u16,
    height: u16,
    stride: usize,
) -> Result<(usize, [usize; 3]), EncodeError> {
    let stride = stride.max(layout.min_stride(width as usize));
    let needed = layout.plane_lens(stride, height as usize);
    let short = planes.iter().zip(&needed).any(|(p, &n)| p.len() < n);
    if short || width == 0 || height == 0 {
        return Err(EncodeError(format!(
            "{width}x{height} {layout:?} needs planes of {needed:?} bytes, got {:?}",
            planes.map(<[u8]>::len)
        )));
    }
    Ok((stride, needed))
}

/// Full-range RGB to full-range YCbCr (JFIF), in 16-bit fixed point.
fn rgb_to_ycbcr(r: u8, g: u8, b: u8) -> [u8; 3] {
    let (r, g, b) = (r as i32, g as i32, b as i32);
    let y = (19595 * r + 38470 * g + 7471 * b + 32768) >> 16;
    let cb = ((-11059 * r - 21709 * g + 32768 * b + 32768) >> 16) + 128;
    let cr = ((32768 * r - 27439 * g - 5329 * b + 32768) >> 16) + 128;
    [
        y.clamp(0, 255) as u8,
        cb.clamp(0, 255) as u8,
        cr.clamp(0, 255) as u8,
    ]
}

/// A raw picture as the encoders take it: its planes (those its layout lacks empty),
/// its size, and the bytes per row of its first plane (see
/// [`SoftwareEncoder::encode_planes`]).
#[derive(Debug, Clone, Copy)]
pub struct RawFrame<'a> {
    pub planes: [&'a [u8]; 3],
    pub layout: RawLayout,
    pub width: u16,
    pub height: u16,
    pub stride: usize,
}

impl<'a> RawFrame<'a> {
    /// A frame whose planes follow each other in `data` (see
    /// [`SoftwareEncoder::encode_raw`]).
    pub fn packed(data: &'a [u8], layout: RawLayout, size: (u16, u16), stride: usize) -> Self {
        let (planes, stride) = split_planes(data, layout, size.0, size.1, stride);
        RawFrame {
            planes,
            layout,
            width: size.0,
            height: size.1,
            stride,
        }
    }

    /// The frame with its stride raised to its layout's smallest, once its planes are
    /// found to hold it.
    pub(crate) fn checked(self) -> Result<Self, EncodeError> {
        let (stride, _) = check_planes(
            &self.planes,
            self.layout,
            self.width,
            self.height,
            self.stride,
        )?;
        Ok(RawFrame { stride, ..self })
    }
}

impl SoftwareEncoder {
    /// Encodes a raw camera picture (YCbCr layouts in video range, as V4L2 devices and
    /// libcamera deliver them; RGB layouts in full range) whose planes follow each other
    /// in `data`, and returns the JPEG bytes, valid until the next call.
    pub fn encode_raw(
        &mut self,
        data: &[u8],
        layout: RawLayout,
        width: u16,
        height: u16,
        stride: usize,
    ) -> Result<&[u8], EncodeError> {
        self.encode_planes(RawFrame::packed(data, layout, (width, height), stride))
    }

    /// Like [`SoftwareEncoder::encode_raw`], for a picture whose planes lie apart (as
    /// libcamera hands them out): `planes[1]` and `planes[2]` are ignored by the layouts
    /// that do not have them.
    pub fn encode_planes(&mut self, frame: RawFrame<'_>) -> Result<&[u8], EncodeError> {
        let frame = frame.checked()?;
        #[cfg(feature = "turbojpeg")]
        if let Some(turbo) = &mut self.turbo {
            let f = frame;
            let (w, h) = (f.width as usize, f.height as usize);
            return turbo.encode_planes(f.planes, f.layout, w, h, f.stride, range_tables());
        }
        let picture = RawPicture {
            frame,
            tables: range_tables(),
        };
        start(&mut self.out, self.quality)
            .encode_image(picture)
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
        for backend in backends() {
            let mut enc = SoftwareEncoder::with_backend(90, backend);
            assert_eq!(enc.backend(), backend);
            let jpeg = enc.encode_rgb(&rgb, w, h).unwrap().to_vec();
            let dims = crate::jpeg::inspect(&jpeg).unwrap();
            assert_eq!((dims.width, dims.height), (w, h));
            let pixels = zune_jpeg::JpegDecoder::new(&jpeg).decode().unwrap();
            assert_eq!(pixels.len(), rgb.len());
            // Green channel survives encoding closely.
            let g: u64 = pixels.chunks(3).map(|p| p[1] as u64).sum();
            let mean = g / (w as u64 * h as u64);
            assert!(
                (190..=210).contains(&mean),
                "{backend:?}: mean green {mean}"
            );
            assert!(enc.encode_rgb(&rgb[1..], w, h).is_err());
        }
    }

    /// Every back end built into this test binary.
    fn backends() -> Vec<Backend> {
        let mut all = vec![Backend::JpegEncoder];
        if Backend::best() != Backend::JpegEncoder {
            all.push(Backend::best());
        }
        all
    }

    /// Mean of each decoded RGB channel.
    fn means(jpeg: &[u8]) -> [u64; 3] {
        let px = zune_jpeg::JpegDecoder::new(jpeg).decode().unwrap();
        let n = (px.len() / 3) as u64;
        let mut m = [0u64; 3];
        for p in px.chunks(3) {
            for c in 0..3 {
                m[c] += p[c] as u64;
            }
        }
        m.map(|v| v / n)
    }

    #[test]
    fn raw_layouts_encode_to_the_same_colour() {
        // Video-range YCbCr for a strong red: Y 81, Cb 90, Cr 240.
        let (w, h) = (32usize, 16usize);
        let yuyv: Vec<u8> = (0..w * h / 2).flat_map(|_| [81, 90, 81, 240]).collect();
        let uyvy: Vec<u8> = (0..w * h / 2).flat_map(|_| [90, 81, 240, 81]).collect();
        let mut nv12 = vec![81u8; w * h];
        nv12.extend((0..w * h / 4).flat_map(|_| [90u8, 240]));
        let mut i420 = vec![81u8; w * h];
        i420.extend(std::iter::repeat_n(90u8, w * h / 4));
        i420.extend(std::iter::repeat_n(240u8, w * h / 4));
        let rgb: Vec<u8> = (0..w * h).flat_map(|_| [255u8, 0, 0]).collect();
        let bgr: Vec<u8> = (0..w * h).flat_map(|_| [0u8, 0, 255]).collect();
        for backend in backends() {
            let mut enc = SoftwareEncoder::with_backend(95, backend);
            for (data, layout, stride) in [
                (&yuyv, RawLayout::Yuyv, w * 2),
                (&uyvy, RawLayout::Uyvy, w * 2),
                (&nv12, RawLayout::Nv12, w),
                (&i420, RawLayout::Yuv420, w),
                (&rgb, RawLayout::Rgb24, w * 3),
                (&bgr, RawLayout::Bgr24, w * 3),
            ] {
                let jpeg = enc
                    .encode_raw(data, layout, w as u16, h as u16, stride)
                    .unwrap()
                    .to_vec();
                let [r, g, b] = means(&jpeg);
                assert!(
                    r > 230 && g < 30 && b < 30,
                    "{backend:?} {layout:?}: {r} {g} {b}"
                );
            }
            assert!(enc
                .encode_raw(&yuyv[..10], RawLayout::Yuyv, 32, 16, 64)
                .is_err());
            assert!(enc
                .encode_raw(&i420[..w * h + 10], RawLayout::Yuv420, 32, 16, 32)
                .is_err());
        }
    }

    /// Both back ends turn the same odd-sized picture with a padded stride into the
    /// same image (within JPEG's error), so the plane conversions agree with the
    /// row-by-row path.
    #[test]
    fn back_ends_agree_on_odd_sizes_and_padded_strides() {
        let (w, h) = (37usize, 23usize);
        let stride = 80; // 74 bytes of YUYV per row, padded
        let mut yuyv = vec![0u8; stride * h];
        for y in 0..h {
            for x in 0..w.div_ceil(2) {
                let q = &mut yuyv[y * stride + 4 * x..][..4];
                q.copy_from_slice(&[
                    (16 + 5 * x) as u8,
                    (60 + 7 * y) as u8,
                    (30 + 5 * x) as u8,
                    200,
                ]);
            }
        }
        let decoded: Vec<Vec<u8>> = backends()
            .into_iter()
            .map(|b| {
                let mut enc = SoftwareEncoder::with_backend(95, b);
                let jpeg = enc
                    .encode_raw(&yuyv, RawLayout::Yuyv, w as u16, h as u16, stride)
                    .unwrap()
                    .to_vec();
                let d = crate::jpeg::inspect(&jpeg).unwrap();
                assert_eq!((d.width as usize, d.height as usize), (w, h));
                zune_jpeg::JpegDecoder::new(&jpeg).decode().unwrap()
            })
            .collect();
        for other in &decoded[1..] {
            let worst = decoded[0]
                .iter()
                .zip(other)
                .map(|(a, b)| a.abs_diff(*b))
                .max()
                .unwrap();
            assert!(worst <= 24, "back ends differ by up to {worst}");
        }
    }

    #[test]
    fn separate_planes_encode_like_contiguous_ones() {
        // Left half dark, right half bright, in planar 4:2:0 with padded rows.
        let (w, h, stride) = (32usize, 16usize, 40usize);
        let mut y = vec![0u8; stride * h];
        for row in y.chunks_mut(stride) {
            row[..w / 2].fill(30);
            row[w / 2..w].fill(220);
        }
        let u = vec![128u8; stride / 2 * h / 2];
        let v = vec![128u8; stride / 2 * h / 2];
        let mut enc = SoftwareEncoder::new(95);
        let apart = enc
            .encode_planes(RawFrame {
                planes: [&y, &u, &v],
                layout: RawLayout::Yuv420,
                width: w as u16,
                height: h as u16,
                stride,
            })
            .unwrap()
            .to_vec();
        let joined = [y.clone(), u.clone(), v.clone()].concat();
        let together = enc
            .encode_raw(&joined, RawLayout::Yuv420, w as u16, h as u16, stride)
            .unwrap()
            .to_vec();
        assert_eq!(apart, together);
        let px = zune_jpeg::JpegDecoder::new(&apart).decode().unwrap();
        let (left, right) = (px[3 * w], px[3 * w + 3 * (w - 1)]);
        assert!(left < 40 && right > 220, "left {left} right {right}");
    }
}
