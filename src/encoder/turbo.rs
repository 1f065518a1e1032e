//! The libjpeg-turbo back end of the software encoder (cargo feature `turbojpeg`).
//!
//! libjpeg-turbo is the reference for fast baseline JPEG: hand-written SIMD for x86
//! (SSE2/AVX2) and Arm NEON (every Pi from the Pi 2 on), plain C elsewhere (the Pi Zero
//! and Pi 1). The `turbojpeg` crate builds it from its bundled source with CMake and links
//! it statically, so the binary needs no library on the Pi.
//!
//! This module owns the conversion of camera layouts into the three 4:2:0 planes
//! TurboJPEG compresses directly (skipping its colour conversion and chroma
//! downsampling), including the video-range to full-range mapping, and the reusable
//! planes and output buffers.

use turbojpeg::{Compressor, Image, PixelFormat, Subsamp, YuvPlanesImage};

use super::raw::{EncodeError, RangeTables, RawLayout};

/// A TurboJPEG compressor with its picture and output buffers, reused between frames.
pub(crate) struct TurboEncoder {
    compressor: Compressor,
    y: Vec<u8>,
    u: Vec<u8>,
    v: Vec<u8>,
    out: Vec<u8>,
}

fn failed(e: turbojpeg::Error) -> EncodeError {
    EncodeError(format!("libjpeg-turbo: {e}"))
}

impl TurboEncoder {
    /// A compressor producing baseline 4:2:0 JPEG at `quality` (1-100).
    pub(crate) fn new(quality: u8) -> Result<TurboEncoder, EncodeError> {
        let mut compressor = Compressor::new().map_err(failed)?;
        compressor.set_quality(quality as i32).map_err(failed)?;
        compressor.set_subsamp(Subsamp::Sub2x2).map_err(failed)?;
        Ok(TurboEncoder {
            compressor,
            y: Vec::new(),
            u: Vec::new(),
            v: Vec::new(),
            out: Vec::new(),
        })
    }

    /// Makes the output buffer large enough for the worst case at this size, once.
    fn reserve_output(&mut self, width: usize, height: usize) -> Result<(), EncodeError> {
        let worst = self.compressor.buf_len(width, height).map_err(failed)?;
        if self.out.len() < worst {
            self.out.resize(worst, 0);
        }
        Ok(())
    }

    /// Encodes packed RGB (already checked to be `width * height * 3` bytes).
    pub(crate) fn encode_rgb(
        &mut self,
        rgb: &[u8],
        width: usize,
        height: usize,
    ) -> Result<&[u8], EncodeError> {
        self.reserve_output(width, height)?;
        let image = Image {
            pixels: rgb,
            width,
            pitch: width * 3,
            height,
            format: PixelFormat::RGB,
        };
        let len = self
            .compressor
            .compress_to_slice(image, &mut self.out)
            .map_err(failed)?;
        Ok(&self.out[..len])
    }

    /// Encodes a raw picture whose planes the caller has checked against the layout's
    /// plane sizes for `stride` (the first plane's bytes per row).
    pub(crate) fn encode_planes(
        &mut self,
        planes: [&[u8]; 3],
        layout: RawLayout,
        width: usize,
        height: usize,
        stride: usize,
        tables: &RangeTables,
    ) -> Result<&[u8], EncodeError> {
        let format = match layout {
            RawLayout::Rgb24 => Some(PixelFormat::RGB),
            RawLayout::Bgr24 => Some(PixelFormat::BGR),
            _ => None,
        };
        if let Some(format) = format {
            // Packed RGB is full range already: TurboJPEG converts and subsamples it.
            self.reserve_output(width, height)?;
            let image = Image {
                pixels: planes[0],
                width,
                pitch: stride,
                height,
                format,
            };
            let len = self
                .compressor
                .compress_to_slice(image, &mut self.out)
                .map_err(failed)?;
            return Ok(&self.out[..len]);
        }
        // TurboJPEG reads whole 2x2 blocks: the luma plane is padded to even sizes, the
        // padding filled by repeating the last column and row.
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        let ys = 2 * cw;
        self.y.resize(ys * 2 * ch, 0);
        self.u.resize(cw * ch, 0);
        self.v.resize(cw * ch, 0);
        match layout {
            RawLayout::Yuyv => {
                self.split_packed(planes[0], (0, 1, 3), width, height, stride, tables)
            }
            RawLayout::Uyvy => {
                self.split_packed(planes[0], (1, 0, 2), width, height, stride, tables)
            }
            RawLayout::Nv12 => self.split_nv12(planes, width, height, stride, tables),
            RawLayout::Yuv420 => self.split_i420(planes, width, height, stride, tables),
            RawLayout::Rgb24 | RawLayout::Bgr24 => unreachable!("packed RGB handled above"),
        }
        if width % 2 == 1 {
            for row in self.y.chunks_exact_mut(ys).take(height) {
                row[width] = row[width - 1];
            }
        }
        if height % 2 == 1 {
            let (done, pad) = self.y.split_at_mut(ys * height);
            pad[..ys].copy_from_slice(&done[ys * (height - 1)..]);
        }
        self.reserve_output(width, height)?;
        let yuv = YuvPlanesImage {
            y_plane: &self.y[..],
            u_plane: &self.u[..],
            v_plane: &self.v[..],
            width,
            height,
            y_stride: ys,
            u_stride: cw,
            v_stride: cw,
            subsamp: Subsamp::Sub2x2,
        };
        let len = self
            .compressor
            .compress_yuv_planes_to_slice(&yuv, &mut self.out)
            .map_err(failed)?;
        Ok(&self.out[..len])
    }

    /// Copies a luma plane row by row through the range table.
    fn copy_luma(
        &mut self,
        src: &[u8],
        width: usize,
        height: usize,
        stride: usize,
        t: &RangeTables,
    ) {
        let ys = 2 * width.div_ceil(2);
        for row in 0..height {
            let from = &src[row * stride..][..width];
            for (d, &s) in self.y[row * ys..][..width].iter_mut().zip(from) {
                *d = t.luma[s as usize];
            }
        }
    }

    /// Planar 4:2:0 (Y, then U and V at half size, rows of `stride / 2` bytes).
    fn split_i420(
        &mut self,
        planes: [&[u8]; 3],
        width: usize,
        height: usize,
        stride: usize,
        t: &RangeTables,
    ) {
        self.copy_luma(planes[0], width, height, stride, t);
        let (cw, cs) = (width.div_ceil(2), stride / 2);
        for crow in 0..height.div_ceil(2) {
            for (dst, src) in [(&mut self.u, planes[1]), (&mut self.v, planes[2])] {
                let from = &src[crow * cs..][..cw];
                for (d, &s) in dst[crow * cw..][..cw].iter_mut().zip(from) {
                    *d = t.chroma[s as usize];
                }
            }
        }
    }

    /// 4:2:2 packed rows to 4:2:0 planes: every luma sample, chroma averaged over each
    /// pair of rows.
    fn split_packed(
        &mut self,
        data: &[u8],
        (yo, uo, vo): (usize, usize, usize),
        width: usize,
        height: usize,
        stride: usize,
        t: &RangeTables,
    ) {
        let cw = width.div_ceil(2);
        for row in 0..height {
            let src = &data[row * stride..][..cw * 4];
            let luma = &mut self.y[row * 2 * cw..][..width];
            for (x, quad) in src.chunks_exact(4).enumerate() {
                luma[2 * x] = t.luma[quad[yo] as usize];
                if 2 * x + 1 < width {
                    luma[2 * x + 1] = t.luma[quad[yo + 2] as usize];
                }
            }
        }
        for crow in 0..height.div_ceil(2) {
            let top = &data[2 * crow * stride..][..cw * 4];
            let below = (2 * crow + 1).min(height - 1);
            let bottom = &data[below * stride..][..cw * 4];
            let u = &mut self.u[crow * cw..][..cw];
            let v = &mut self.v[crow * cw..][..cw];
            for (x, (a, b)) in top.chunks_exact(4).zip(bottom.chunks_exact(4)).enumerate() {
                u[x] = t.chroma[(a[uo] as usize + b[uo] as usize).div_ceil(2)];
                v[x] = t.chroma[(a[vo] as usize + b[vo] as usize).div_ceil(2)];
            }
        }
    }

    /// NV12 (a luma plane, then interleaved U V at half size) to three planes.
    fn split_nv12(
        &mut self,
        planes: [&[u8]; 3],
        width: usize,
        height: usize,
        stride: usize,
        t: &RangeTables,
    ) {
        self.copy_luma(planes[0], width, height, stride, t);
        let cw = width.div_ceil(2);
        for crow in 0..height.div_ceil(2) {
            let src = &planes[1][crow * stride..][..cw * 2];
            let u = &mut self.u[crow * cw..][..cw];
            let v = &mut self.v[crow * cw..][..cw];
            for (x, pair) in src.chunks_exact(2).enumerate() {
                u[x] = t.chroma[pair[0] as usize];
                v[x] = t.chroma[pair[1] as usize];
            }
        }
    }
}
