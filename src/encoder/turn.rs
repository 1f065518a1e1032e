//! Turning and mirroring raw pictures on the CPU before they are encoded: the quarter
//! turns of `--rotation 90` and `270`, which the Pi's ISP cannot do, and the whole of
//! `--rotation`, `--hflip` and `--vflip` for sources whose camera does none of it.
//!
//! [`turn_into`] moves every pixel as an [`Orientation`] says. Each plane is walked in
//! square tiles of [`TILE`] samples, so that the rows a transpose reads from and the
//! rows it writes to both stay in the cache while a tile is done.
//!
//! Layouts: a turned YUV picture comes out as planar 4:2:0 (I420, [`RawLayout::Yuv420`])
//! whatever it came in as. 4:2:0 chroma turns with the picture. 4:2:2 chroma (YUYV,
//! UYVY: one sample per two pixels of every row) turned by a quarter would have one
//! sample per two pixels of every column, which no JPEG layout the encoders take has:
//! each pair of chroma samples of neighbouring rows is averaged instead, giving 4:2:0,
//! which is what the encoders produce from 4:2:2 anyway. Packed RGB stays packed RGB.
//!
//! [`Turner`] keeps one buffer for the turned picture and reuses it for every frame.

use super::raw::{EncodeError, RawLayout};
use super::software::{RawFrame, SoftwareEncoder};
use crate::picture::Orientation;

/// Side of the square tiles, in samples: a 64 x 64 tile of one-byte samples reads 64
/// rows of 64 bytes and writes as many, 8 KiB in all, well inside any Pi's L1 cache.
const TILE: usize = 64;

/// Where the samples of one plane are, as moved: sample (x, y) of the moved plane
/// starts at byte `base + x * ix + y * iy` of the source plane.
#[derive(Debug, Clone, Copy)]
struct Walk {
    base: isize,
    ix: isize,
    iy: isize,
}

impl Walk {
    /// A plane of `width` x `height` samples, `step` bytes apart along a row, rows
    /// `stride` bytes apart, the first at byte `offset`, moved by `o`.
    fn new(
        o: Orientation,
        (width, height): (usize, usize),
        offset: usize,
        step: usize,
        stride: usize,
    ) -> Walk {
        let (step, stride) = (step as isize, stride as isize);
        // A transpose makes a step along a moved row a step down the source's column.
        let (mut ix, mut iy) = if o.transpose {
            (stride, step)
        } else {
            (step, stride)
        };
        let (moved_w, moved_h) = o.size_of(width as isize, height as isize);
        let mut base = offset as isize;
        if o.hflip {
            base += (moved_w - 1) * ix;
            ix = -ix;
        }
        if o.vflip {
            base += (moved_h - 1) * iy;
            iy = -iy;
        }
        Walk { base, ix, iy }
    }

    fn at(&self, x: usize, y: usize) -> usize {
        (self.base + x as isize * self.ix + y as isize * self.iy) as usize
    }
}

/// One plane to write: `width` x `height` samples of `N` bytes, rows `stride` apart.
struct Target<'a> {
    data: &'a mut [u8],
    width: usize,
    height: usize,
    stride: usize,
}

impl Target<'_> {
    /// Whether `N`-byte samples fit.
    fn fits(&self, n: usize) -> bool {
        self.height == 0
            || self.stride >= self.width * n
                && self.data.len() >= (self.height - 1) * self.stride + self.width * n
    }
}

/// Copies the moved plane `walk` of `src` into `to`, tile by tile.
fn copy_plane<const N: usize>(src: &[u8], walk: Walk, to: &mut Target<'_>) {
    for ty in (0..to.height).step_by(TILE) {
        for tx in (0..to.width).step_by(TILE) {
            let x_end = (tx + TILE).min(to.width);
            for y in ty..(ty + TILE).min(to.height) {
                let row = &mut to.data[y * to.stride + tx * N..y * to.stride + x_end * N];
                let mut s = walk.at(tx, y) as isize;
                if N == 1 {
                    for out in row.iter_mut() {
                        *out = src[s as usize];
                        s += walk.ix;
                    }
                } else {
                    for out in row.chunks_exact_mut(N) {
                        let at = s as usize;
                        out.copy_from_slice(&src[at..at + N]);
                        s += walk.ix;
                    }
                }
            }
        }
    }
}

/// Writes the moved plane `walk` of `src` (`moved` samples across and down) into `to`
/// at half its size along x (`along_x`) or y: each sample the mean of two neighbours.
fn halve_plane(src: &[u8], walk: Walk, moved: (usize, usize), along_x: bool, to: &mut Target<'_>) {
    // Each output sample reads two moved samples `pair` bytes apart; the next one is
    // `step` bytes on.
    let (pair, step) = if along_x {
        (walk.ix, 2 * walk.ix)
    } else {
        (walk.iy, walk.ix)
    };
    for ty in (0..to.height).step_by(TILE) {
        for tx in (0..to.width).step_by(TILE) {
            let x_end = (tx + TILE).min(to.width);
            for y in ty..(ty + TILE).min(to.height) {
                let (mut s, mut pair) = if along_x {
                    (walk.at(2 * tx, y) as isize, pair)
                } else {
                    // The second of the pair is the first again past an odd edge.
                    let last = 2 * y + 1 >= moved.1;
                    (walk.at(tx, 2 * y) as isize, if last { 0 } else { pair })
                };
                let row = &mut to.data[y * to.stride + tx..y * to.stride + x_end];
                for (x, out) in (tx..).zip(row.iter_mut()) {
                    if along_x && 2 * x + 1 >= moved.0 {
                        pair = 0;
                    }
                    let (a, b) = (src[s as usize] as u16, src[(s + pair) as usize] as u16);
                    *out = (a + b).div_ceil(2) as u8;
                    s += step;
                }
            }
        }
    }
}

/// The layout a picture of `layout` has once turned.
pub fn turned_layout(layout: RawLayout) -> RawLayout {
    match layout {
        RawLayout::Yuyv | RawLayout::Uyvy | RawLayout::Nv12 | RawLayout::Yuv420 => {
            RawLayout::Yuv420
        }
        RawLayout::Rgb24 | RawLayout::Bgr24 => layout,
    }
}

/// Writes the `width` x `height` picture `planes` of `layout` (first plane rows
/// `stride` bytes apart; checked by the caller with [`check_planes`]) moved by `o`
/// into `dst`, the planes of [`turned_layout`] with first plane rows `dst_stride` bytes
/// apart (4:2:0 chroma rows half that). Errs, without writing, when `dst` is too small.
pub(crate) fn turn_into(
    planes: [&[u8]; 3],
    layout: RawLayout,
    (width, height): (usize, usize),
    stride: usize,
    o: Orientation,
    dst: [&mut [u8]; 3],
    dst_stride: usize,
) -> Result<(), String> {
    let (out_w, out_h) = o.size_of(width, height);
    let [d0, d1, d2] = dst;
    let target = |data, w: usize, h: usize, stride| Target {
        data,
        width: w,
        height: h,
        stride,
    };
    let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
    let mut luma = target(d0, out_w, out_h, dst_stride);
    let (ocw, och) = (out_w.div_ceil(2), out_h.div_ceil(2));
    let mut u = target(d1, ocw, och, dst_stride / 2);
    let mut v = target(d2, ocw, och, dst_stride / 2);
    let too_small = || format!("the buffer for a turned {out_w}x{out_h} picture is too small");
    if let RawLayout::Rgb24 | RawLayout::Bgr24 = layout {
        if !luma.fits(3) {
            return Err(too_small());
        }
        let walk = Walk::new(o, (width, height), 0, 3, stride);
        copy_plane::<3>(planes[0], walk, &mut luma);
        return Ok(());
    }
    if !(luma.fits(1) && u.fits(1) && v.fits(1)) {
        return Err(too_small());
    }
    match layout {
        RawLayout::Yuyv | RawLayout::Uyvy => {
            let (yo, uo, vo) = if layout == RawLayout::Yuyv {
                (0, 1, 3)
            } else {
                (1, 0, 2)
            };
            let src = planes[0];
            copy_plane::<1>(src, Walk::new(o, (width, height), yo, 2, stride), &mut luma);
            let moved = o.size_of(cw, height);
            for (offset, to) in [(uo, &mut u), (vo, &mut v)] {
                let walk = Walk::new(o, (cw, height), offset, 4, stride);
                halve_plane(src, walk, moved, o.transpose, to);
            }
        }
        RawLayout::Nv12 => {
            copy_plane::<1>(
                planes[0],
                Walk::new(o, (width, height), 0, 1, stride),
                &mut luma,
            );
            for (offset, to) in [(0, &mut u), (1, &mut v)] {
                copy_plane::<1>(planes[1], Walk::new(o, (cw, ch), offset, 2, stride), to);
            }
        }
        RawLayout::Yuv420 => {
            copy_plane::<1>(
                planes[0],
                Walk::new(o, (width, height), 0, 1, stride),
                &mut luma,
            );
            for (plane, to) in [(planes[1], &mut u), (planes[2], &mut v)] {
                copy_plane::<1>(plane, Walk::new(o, (cw, ch), 0, 1, stride / 2), to);
            }
        }
        RawLayout::Rgb24 | RawLayout::Bgr24 => unreachable!("handled above"),
    }
    Ok(())
}

/// A picture turned by a [`Turner`]: its planes one after the other in `data`.
#[derive(Debug, Clone, Copy)]
pub struct Turned<'a> {
    pub data: &'a [u8],
    pub layout: RawLayout,
    pub width: u16,
    pub height: u16,
    /// Bytes per row of the first plane.
    pub stride: usize,
}

/// Turns raw pictures as an [`Orientation`] says into a buffer of its own, reused from
/// one picture to the next.
#[derive(Debug, Default)]
pub struct Turner {
    orientation: Orientation,
    buf: Vec<u8>,
}

impl Turner {
    pub fn new(orientation: Orientation) -> Turner {
        Turner {
            orientation,
            buf: Vec::new(),
        }
    }

    pub fn orientation(&self) -> Orientation {
        self.orientation
    }

    /// Turns a picture; the result is valid until the next call.
    pub fn turn(&mut self, frame: RawFrame<'_>) -> Result<Turned<'_>, EncodeError> {
        let RawFrame {
            planes,
            layout,
            width,
            height,
            stride,
        } = frame.checked()?;
        let (out_w, out_h) = self.orientation.size_of(width, height);
        let out_layout = turned_layout(layout);
        let out_stride = out_layout.min_stride(out_w as usize);
        let lens = out_layout.plane_lens(out_stride, out_h as usize);
        // Nothing needs clearing, as every sample is written below: only a change of
        // size touches the allocation.
        self.buf.resize(lens.iter().sum(), 0);
        let (y, rest) = self.buf.split_at_mut(lens[0]);
        let (u, v) = rest.split_at_mut(lens[1]);
        let size = (width as usize, height as usize);
        turn_into(
            planes,
            layout,
            size,
            stride,
            self.orientation,
            [y, u, v],
            out_stride,
        )
        .map_err(EncodeError)?;
        Ok(Turned {
            data: &self.buf,
            layout: out_layout,
            width: out_w,
            height: out_h,
            stride: out_stride,
        })
    }

    /// Encodes a picture with `encoder`, turned first unless there is nothing to do;
    /// returns the JPEG and its width and height.
    pub fn encode<'e>(
        &mut self,
        encoder: &'e mut SoftwareEncoder,
        frame: RawFrame<'_>,
    ) -> Result<(&'e [u8], u16, u16), EncodeError> {
        if self.orientation.is_identity() {
            let f = frame;
            let packed = f.width as usize * f.height as usize * 3;
            let jpeg = if f.layout == RawLayout::Rgb24 && f.stride == f.width as usize * 3 {
                let rgb = f.planes[0].get(..packed).unwrap_or(f.planes[0]);
                encoder.encode_rgb(rgb, f.width, f.height)?
            } else {
                encoder.encode_planes(f)?
            };
            return Ok((jpeg, f.width, f.height));
        }
        let t = self.turn(frame)?;
        let jpeg = if t.layout == RawLayout::Rgb24 {
            encoder.encode_rgb(t.data, t.width, t.height)?
        } else {
            encoder.encode_raw(t.data, t.layout, t.width, t.height, t.stride)?
        };
        Ok((jpeg, t.width, t.height))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoder::software::split_planes;
    use crate::picture::Transform;

    fn raw<'a>(
        planes: [&'a [u8]; 3],
        layout: RawLayout,
        (width, height): (u16, u16),
        stride: usize,
    ) -> RawFrame<'a> {
        RawFrame {
            planes,
            layout,
            width,
            height,
            stride,
        }
    }

    /// A picture as rows of samples.
    type Grid = Vec<Vec<u8>>;

    fn grid(w: usize, h: usize, f: impl Fn(usize, usize) -> u8) -> Grid {
        (0..h).map(|y| (0..w).map(|x| f(x, y)).collect()).collect()
    }

    /// The grid turned clockwise by a quarter: its bottom left corner goes to the top
    /// left.
    fn clockwise(g: &Grid) -> Grid {
        let h = g.len();
        grid(h, g[0].len(), |x, y| g[h - 1 - x][y])
    }

    fn mirrored(g: &Grid, hflip: bool, vflip: bool) -> Grid {
        let mut g = g.clone();
        if hflip {
            g.iter_mut().for_each(|row| row.reverse());
        }
        if vflip {
            g.reverse();
        }
        g
    }

    /// What `t` should make of `g`: turned, then mirrored (the documented order).
    fn expected(g: &Grid, t: Transform) -> Grid {
        let mut g = g.clone();
        for _ in 0..t.degrees() / 90 {
            g = clockwise(&g);
        }
        mirrored(&g, t.hflip, t.vflip)
    }

    /// All sixteen settings of `--rotation`, `--hflip` and `--vflip`.
    fn transforms() -> Vec<Transform> {
        (0..16u8)
            .map(|bits| Transform {
                rotate90: bits & 1 != 0,
                rotate180: bits & 2 != 0,
                hflip: bits & 4 != 0,
                vflip: bits & 8 != 0,
            })
            .collect()
    }

    #[test]
    fn the_reference_turns_as_written_out_by_hand() {
        let g = vec![vec![1, 2, 3], vec![4, 5, 6]];
        let t = |degrees: u16, hflip, vflip| Transform {
            rotate90: degrees % 180 == 90,
            rotate180: degrees >= 180,
            hflip,
            vflip,
        };
        assert_eq!(expected(&g, t(90, false, false)), [[4, 1], [5, 2], [6, 3]]);
        assert_eq!(expected(&g, t(180, false, false)), [[6, 5, 4], [3, 2, 1]]);
        assert_eq!(expected(&g, t(270, false, false)), [[3, 6], [2, 5], [1, 4]]);
        // The flips act on the turned picture.
        assert_eq!(expected(&g, t(90, true, false)), [[1, 4], [2, 5], [3, 6]]);
        assert_eq!(expected(&g, t(90, false, true)), [[6, 3], [5, 2], [4, 1]]);
        assert_eq!(expected(&g, t(0, true, false)), [[3, 2, 1], [6, 5, 4]]);
    }

    /// A test picture: luma, and 4:2:0 chroma (one sample per 2 x 2 pixels).
    struct Picture {
        luma: Grid,
        u: Grid,
        v: Grid,
    }

    fn picture(w: usize, h: usize) -> Picture {
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        Picture {
            luma: grid(w, h, |x, y| (1 + x + w * y) as u8),
            u: grid(cw, ch, |x, y| (100 + x + 10 * y) as u8),
            v: grid(cw, ch, |x, y| (200 + x + 10 * y) as u8),
        }
    }

    /// The picture in `layout`, its planes one after the other, rows `pad` bytes longer
    /// than they need; and its stride. 4:2:2 chroma is 4 below the 4:2:0 value on
    /// even rows and 4 above on odd ones, so that a pair of rows averages to it.
    fn laid_out(p: &Picture, layout: RawLayout, pad: usize) -> (Vec<u8>, usize) {
        let (w, h) = (p.luma[0].len(), p.luma.len());
        let stride = layout.min_stride(w) + pad;
        let mut data = vec![0u8; layout.frame_len(stride, h)];
        let chroma = |g: &Grid, x: usize, y: usize| {
            let c = g[y / 2][x];
            if y % 2 == 0 {
                c.wrapping_sub(4)
            } else {
                c.wrapping_add(4)
            }
        };
        let luma = |x: usize, y: usize| *p.luma[y].get(x).unwrap_or(&0);
        let rgb = |l: u8| [l, l.wrapping_add(50), l.wrapping_add(100)];
        for y in 0..h {
            let row = y * stride;
            match layout {
                RawLayout::Yuyv | RawLayout::Uyvy => {
                    for x in 0..w.div_ceil(2) {
                        let (y0, y1) = (luma(2 * x, y), luma(2 * x + 1, y));
                        let (u, v) = (chroma(&p.u, x, y), chroma(&p.v, x, y));
                        let quad = if layout == RawLayout::Yuyv {
                            [y0, u, y1, v]
                        } else {
                            [u, y0, v, y1]
                        };
                        data[row + 4 * x..][..4].copy_from_slice(&quad);
                    }
                }
                RawLayout::Rgb24 | RawLayout::Bgr24 => {
                    for x in 0..w {
                        let mut px = rgb(luma(x, y));
                        if layout == RawLayout::Bgr24 {
                            px.reverse();
                        }
                        data[row + 3 * x..][..3].copy_from_slice(&px);
                    }
                }
                RawLayout::Nv12 | RawLayout::Yuv420 => {
                    data[row..row + w].copy_from_slice(&p.luma[y]);
                }
            }
        }
        let base = stride * h;
        for (cy, (us, vs)) in p.u.iter().zip(&p.v).enumerate() {
            for (cx, (&u, &v)) in us.iter().zip(vs).enumerate() {
                match layout {
                    RawLayout::Nv12 => {
                        data[base + cy * stride + 2 * cx] = u;
                        data[base + cy * stride + 2 * cx + 1] = v;
                    }
                    RawLayout::Yuv420 => {
                        let quarter = stride / 2 * h.div_ceil(2);
                        data[base + cy * stride / 2 + cx] = u;
                        data[base + quarter + cy * stride / 2 + cx] = v;
                    }
                    _ => {}
                }
            }
        }
        (data, stride)
    }

    /// The planes of a turned picture as grids: luma (or, for RGB, each pixel's first
    /// byte as laid out by [`laid_out`]) and 4:2:0 chroma (empty for RGB).
    fn read_back(t: &Turned<'_>) -> (Grid, Grid, Grid) {
        let (w, h, s) = (t.width as usize, t.height as usize, t.stride);
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        match t.layout {
            RawLayout::Yuv420 => {
                let u0 = s * h;
                let v0 = u0 + s / 2 * ch;
                (
                    grid(w, h, |x, y| t.data[y * s + x]),
                    grid(cw, ch, |x, y| t.data[u0 + y * s / 2 + x]),
                    grid(cw, ch, |x, y| t.data[v0 + y * s / 2 + x]),
                )
            }
            RawLayout::Rgb24 | RawLayout::Bgr24 => {
                let at = |x: usize, y: usize| &t.data[y * s + 3 * x..][..3];
                // Each pixel must still be whole: all three bytes moved together.
                for y in 0..h {
                    for x in 0..w {
                        let px = at(x, y);
                        let l = if t.layout == RawLayout::Rgb24 {
                            px[0]
                        } else {
                            px[2]
                        };
                        let mut want = [l, l.wrapping_add(50), l.wrapping_add(100)];
                        if t.layout == RawLayout::Bgr24 {
                            want.reverse();
                        }
                        assert_eq!(px, want, "pixel {x},{y}");
                    }
                }
                let first = |x, y| {
                    let px = at(x, y);
                    if t.layout == RawLayout::Rgb24 {
                        px[0]
                    } else {
                        px[2]
                    }
                };
                (grid(w, h, first), Vec::new(), Vec::new())
            }
            other => panic!("turned into {other:?}"),
        }
    }

    const LAYOUTS: [RawLayout; 6] = [
        RawLayout::Yuyv,
        RawLayout::Uyvy,
        RawLayout::Nv12,
        RawLayout::Yuv420,
        RawLayout::Rgb24,
        RawLayout::Bgr24,
    ];

    #[test]
    fn every_layout_lands_where_each_turn_and_flip_puts_it() {
        // 6x4: every turn and mirror of it differs; chroma 3x2 likewise.
        let p = picture(6, 4);
        for layout in LAYOUTS {
            for pad in [0, 6] {
                let (data, stride) = laid_out(&p, layout, pad);
                let (planes, stride) = split_planes(&data, layout, 6, 4, stride);
                for t in transforms() {
                    let mut turner = Turner::new(t.orientation());
                    let turned = turner.turn(raw(planes, layout, (6, 4), stride)).unwrap();
                    assert_eq!(turned.layout, turned_layout(layout));
                    let want = expected(&p.luma, t);
                    assert_eq!(
                        (turned.width as usize, turned.height as usize),
                        (want[0].len(), want.len())
                    );
                    let (luma, u, v) = read_back(&turned);
                    assert_eq!(luma, want, "{layout:?} {t:?} pad {pad}");
                    if turned.layout == RawLayout::Yuv420 {
                        assert_eq!(u, expected(&p.u, t), "{layout:?} {t:?} U");
                        assert_eq!(v, expected(&p.v, t), "{layout:?} {t:?} V");
                    }
                }
            }
        }
    }

    #[test]
    fn odd_sizes_turn_whole() {
        // 5x3: the last chroma column and row cover one pixel.
        let p = picture(5, 3);
        for layout in LAYOUTS {
            let (data, stride) = laid_out(&p, layout, 2);
            let (planes, stride) = split_planes(&data, layout, 5, 3, stride);
            for t in transforms() {
                let mut turner = Turner::new(t.orientation());
                let turned = turner.turn(raw(planes, layout, (5, 3), stride)).unwrap();
                let (luma, u, _) = read_back(&turned);
                assert_eq!(luma, expected(&p.luma, t), "{layout:?} {t:?}");
                if turned.layout == RawLayout::Yuv420 {
                    let (w, h) = (turned.width as usize, turned.height as usize);
                    assert_eq!((u[0].len(), u.len()), (w.div_ceil(2), h.div_ceil(2)));
                    // Chroma comes from the picture's own samples (or their means).
                    assert!(
                        u.iter().flatten().all(|&c| (96..=125).contains(&c)),
                        "{u:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_camera_doing_the_flips_and_the_encoder_the_transpose_make_the_same_picture() {
        let p = picture(6, 4);
        let (data, stride) = laid_out(&p, RawLayout::Yuv420, 0);
        let (planes, stride) = split_planes(&data, RawLayout::Yuv420, 6, 4, stride);
        for t in transforms() {
            let (hflip, vflip) = t.flips();
            let camera = Orientation {
                transpose: false,
                hflip,
                vflip,
            };
            let mut first = Turner::new(camera);
            let flipped = first
                .turn(raw(planes, RawLayout::Yuv420, (6, 4), stride))
                .unwrap();
            let (fdata, fstride) = (flipped.data.to_vec(), flipped.stride);
            let (fplanes, _) = split_planes(&fdata, RawLayout::Yuv420, 6, 4, fstride);
            let mut then = Turner::new(t.after_camera());
            let both = then
                .turn(raw(fplanes, RawLayout::Yuv420, (6, 4), fstride))
                .unwrap();
            assert_eq!(read_back(&both).0, expected(&p.luma, t), "{t:?}");
            assert_eq!(t.is_identity(), t.orientation().is_identity());
        }
    }

    #[test]
    fn the_buffer_is_reused_and_bad_input_refused() {
        let p = picture(64, 48);
        let (data, stride) = laid_out(&p, RawLayout::Yuyv, 0);
        let t = Transform {
            rotate90: true,
            ..Transform::default()
        };
        let mut turner = Turner::new(t.orientation());
        let first = turner
            .turn(raw([&data, &[], &[]], RawLayout::Yuyv, (64, 48), stride))
            .unwrap();
        assert_eq!((first.width, first.height, first.stride), (48, 64, 48));
        let at = first.data.as_ptr();
        let again = turner
            .turn(raw([&data, &[], &[]], RawLayout::Yuyv, (64, 48), stride))
            .unwrap();
        assert_eq!(
            again.data.as_ptr(),
            at,
            "the same buffer for the next picture"
        );
        let e = turner
            .turn(raw(
                [&data[..100], &[], &[]],
                RawLayout::Yuyv,
                (64, 48),
                stride,
            ))
            .unwrap_err();
        assert!(e.to_string().contains("needs planes"), "{e}");
        // A destination too small is an error, not a panic.
        let (mut a, mut b, mut c) = (vec![0u8; 10], vec![0u8; 10], vec![0u8; 10]);
        let planes = [&data[..], &[][..], &[][..]];
        let o = t.orientation();
        let dst = [&mut a[..], &mut b[..], &mut c[..]];
        assert!(turn_into(planes, RawLayout::Yuyv, (64, 48), stride, o, dst, 48).is_err());
    }

    #[test]
    fn turned_pictures_encode_at_the_turned_size() {
        let p = picture(64, 32);
        let t = Transform {
            rotate90: true,
            rotate180: true,
            ..Transform::default()
        };
        let mut encoder = SoftwareEncoder::new(90);
        for layout in LAYOUTS {
            let (data, stride) = laid_out(&p, layout, 0);
            let (planes, stride) = split_planes(&data, layout, 64, 32, stride);
            let mut turner = Turner::new(t.orientation());
            let (jpeg, w, h) = turner
                .encode(&mut encoder, raw(planes, layout, (64, 32), stride))
                .unwrap();
            assert_eq!((w, h), (32, 64));
            let d = crate::jpeg::inspect(jpeg).unwrap();
            assert_eq!((d.width, d.height), (32, 64), "{layout:?}");
        }
    }
}
