//! Which JPEG encoder runs: `--encoder auto|hardware|software`.
//!
//! [`JpegEncoder`] owns the decision. `hardware` and `auto` (when one is found) use a V4L2
//! memory-to-memory node whose CAPTURE queue produces JPEG (or MJPEG), found by
//! capability and formats rather than by a fixed node: on a Pi Zero to Pi 4 that is the
//! `bcm2835-codec` image encoder, usually `/dev/video31`. The device is set up once per
//! picture format and size and kept streaming. When it fails — at set-up or mid-stream —
//! the failure is logged once and every later picture is encoded in software; the
//! description that `/status` shows says so.
//!
//! Camera pictures that come with their DMABUF buffers
//! ([`JpegEncoder::encode_camera_buffer`]) are imported into the hardware encoder
//! without a copy when the buffer holds the picture exactly as the device reads it and
//! the driver takes DMABUF; otherwise they are copied, and the log says once why.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::Arc;
use std::time::Duration;

use super::feed::Feed;
use super::m2m::{self, DmabufPlane, InputMemory, M2mNode, M2mSetup, QueueFormat};
use super::pool::{EncodePool, JpegOut};
use super::turn::{turn_into, turned_layout, Turner};
use super::{Backend, EncodeError, RawFrame, RawLayout, SoftwareEncoder};
use crate::picture::{EncodeWorkers, EncoderChoice, Orientation};
use crate::v4l2::sys::{fourcc, fourcc_name, V4L2_CID_JPEG_COMPRESSION_QUALITY};

/// Result formats of a hardware JPEG encoder, best first.
pub const JPEG_FORMATS: [u32; 2] = [fourcc(b"JPEG"), fourcc(b"MJPG")];

/// The first memory-to-memory node that produces JPEG.
pub fn find_hardware() -> Option<M2mNode> {
    m2m::find(None, &JPEG_FORMATS)
}

/// How long one picture may take in the hardware before it counts as failed.
const HARDWARE_TIMEOUT: Duration = Duration::from_secs(2);

/// Buffers per queue: one being filled while one is encoded.
const HARDWARE_BUFFERS: u32 = 2;

/// Input slots when importing camera buffers: a buffer keeps its slot, and with it the
/// driver's attachment, when there are at least as many slots as camera buffers.
const IMPORT_SLOTS: u32 = 8;

/// One plane of a camera buffer: the DMABUF it lies in, and where.
#[derive(Debug, Clone, Copy)]
pub struct CameraPlane<'a> {
    pub fd: BorrowedFd<'a>,
    pub offset: usize,
    pub length: usize,
}

/// A picture handed to the encoder.
#[derive(Clone, Copy)]
enum Picture<'a> {
    Raw {
        data: &'a [u8],
        layout: RawLayout,
        stride: usize,
    },
    Rgb(&'a [u8]),
    /// A picture whose planes lie apart (as libcamera hands them out); `stride` is the
    /// first plane's bytes per row, the chroma planes of 4:2:0 have half of it.
    Planes {
        planes: [&'a [u8]; 3],
        layout: RawLayout,
        stride: usize,
    },
    /// A picture turned on its way into the device: its planes as for `Planes`, and
    /// how it is moved (see `turn`).
    Turned {
        planes: [&'a [u8]; 3],
        layout: RawLayout,
        stride: usize,
        orientation: Orientation,
    },
}

impl Picture<'_> {
    /// The V4L2 format the hardware is asked to take; `None` for layouts this path does
    /// not know, which are encoded in software without giving up on the hardware.
    fn fourcc(&self) -> Option<u32> {
        #[allow(unreachable_patterns)] // layouts added later fall to software
        match self {
            Picture::Raw { layout, .. } => match layout {
                RawLayout::Yuyv => Some(fourcc(b"YUYV")),
                RawLayout::Uyvy => Some(fourcc(b"UYVY")),
                RawLayout::Nv12 => Some(fourcc(b"NV12")),
                _ => None,
            },
            Picture::Rgb(_) => Some(fourcc(b"RGB3")),
            Picture::Planes { layout, .. } => match layout {
                RawLayout::Yuyv => Some(fourcc(b"YUYV")),
                RawLayout::Uyvy => Some(fourcc(b"UYVY")),
                RawLayout::Nv12 => Some(fourcc(b"NV12")),
                RawLayout::Yuv420 => Some(fourcc(b"YU12")),
                RawLayout::Rgb24 => Some(fourcc(b"RGB3")),
                RawLayout::Bgr24 => Some(fourcc(b"BGR3")),
            },
            Picture::Turned { layout, .. } => match turned_layout(*layout) {
                RawLayout::Yuv420 => Some(fourcc(b"YU12")),
                RawLayout::Rgb24 => Some(fourcc(b"RGB3")),
                RawLayout::Bgr24 => Some(fourcc(b"BGR3")),
                _ => None,
            },
        }
    }

    /// Copies the picture into `dst` with `dst_stride` bytes per row (the driver's), and
    /// returns the bytes used.
    fn copy_to(
        &self,
        dst: &mut [u8],
        width: usize,
        height: usize,
        dst_stride: usize,
    ) -> Result<usize, String> {
        if let Picture::Planes {
            planes,
            layout,
            stride,
        } = *self
        {
            return copy_planes(planes, layout, stride, dst, width, height, dst_stride);
        }
        if let Picture::Turned {
            planes,
            layout,
            stride,
            orientation,
        } = *self
        {
            let into = (dst, width, height, dst_stride);
            return turn_to_device(planes, layout, stride, orientation, into);
        }
        let (src, src_stride, row, planes): (&[u8], usize, usize, &[(usize, usize)]) = match *self {
            Picture::Raw {
                data,
                layout: RawLayout::Yuyv | RawLayout::Uyvy,
                stride,
            } => (
                data,
                stride.max(width.div_ceil(2) * 4),
                width.div_ceil(2) * 4,
                &[(0, 1)],
            ),
            Picture::Raw {
                data,
                layout: RawLayout::Nv12,
                stride,
            } => (
                data,
                stride.max(width),
                width.div_ceil(2) * 2,
                &[(0, 1), (1, 2)],
            ),
            Picture::Rgb(data) => (data, width * 3, width * 3, &[(0, 1)]),
            #[allow(unreachable_patterns)]
            Picture::Raw { layout, .. }
            | Picture::Planes { layout, .. }
            | Picture::Turned { layout, .. } => {
                return Err(format!("{layout:?} pictures are not handled here"))
            }
        };
        let dst_stride = dst_stride.max(row);
        let mut used = 0;
        for &(plane, divisor) in planes {
            let rows = height.div_ceil(divisor);
            // The chroma plane follows the luma plane in both buffers.
            let (src_base, dst_base) = (plane * src_stride * height, plane * dst_stride * height);
            for y in 0..rows {
                let s = src_base + y * src_stride;
                let d = dst_base + y * dst_stride;
                let (Some(from), Some(to)) = (src.get(s..s + row), dst.get_mut(d..d + row)) else {
                    return Err(format!(
                        "a {width}x{height} picture does not fit ({} bytes in, {} byte buffer)",
                        src.len(),
                        dst.len()
                    ));
                };
                to.copy_from_slice(from);
                used = d + dst_stride;
            }
        }
        Ok(used.min(dst.len()))
    }
}

/// Copies the planes of a picture into one buffer laid out as single-planar V4L2 wants
/// it: each plane after the other, luma rows `dst_stride` bytes apart (chroma rows of
/// 4:2:0 half that). Returns the bytes used.
fn copy_planes(
    planes: [&[u8]; 3],
    layout: RawLayout,
    stride: usize,
    dst: &mut [u8],
    width: usize,
    height: usize,
    dst_stride: usize,
) -> Result<usize, String> {
    let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
    // (plane, its bytes per row in the source, bytes to copy per row, rows,
    //  where it starts in the buffer, its bytes per row in the buffer)
    let first_row = match layout {
        RawLayout::Yuyv | RawLayout::Uyvy => cw * 4,
        RawLayout::Rgb24 | RawLayout::Bgr24 => width * 3,
        RawLayout::Nv12 | RawLayout::Yuv420 => width,
    };
    let (ss, ds) = (stride.max(first_row), dst_stride.max(first_row));
    let starts = plane_starts(layout, ds, height);
    let jobs = [
        (0, ss, first_row, height, starts[0], ds),
        (1, ss, cw * 2, ch, starts[1], ds),
        (1, ss / 2, cw, ch, starts[1], ds / 2),
        (2, ss / 2, cw, ch, starts[2], ds / 2),
    ];
    let jobs = match layout {
        RawLayout::Nv12 => &jobs[..2],
        RawLayout::Yuv420 => &[jobs[0], jobs[2], jobs[3]],
        _ => &jobs[..1],
    };
    let mut used = 0;
    for &(plane, src_stride, row, rows, base, step) in jobs {
        for y in 0..rows {
            let (s, d) = (y * src_stride, base + y * step);
            let (Some(from), Some(to)) = (planes[plane].get(s..s + row), dst.get_mut(d..d + row))
            else {
                return Err(format!(
                    "a {width}x{height} {layout:?} picture does not fit (plane {plane} of {} \
                     bytes, {} byte buffer)",
                    planes[plane].len(),
                    dst.len()
                ));
            };
            to.copy_from_slice(from);
            used = used.max(d + step);
        }
    }
    Ok(used.min(dst.len()))
}

/// Turns a picture (checked with `check_planes`) into one buffer laid out as
/// single-planar V4L2 wants the turned layout, `width` x `height` once turned, luma
/// rows `dst_stride` bytes apart: the transpose writes straight into the buffer the
/// device reads. Returns the bytes used.
fn turn_to_device(
    planes: [&[u8]; 3],
    layout: RawLayout,
    stride: usize,
    orientation: Orientation,
    (dst, width, height, dst_stride): (&mut [u8], usize, usize, usize),
) -> Result<usize, String> {
    let out = turned_layout(layout);
    let ds = dst_stride.max(out.min_stride(width));
    let starts = plane_starts(out, ds, height);
    let used = out.frame_len(ds, height);
    if used > dst.len() {
        return Err(format!(
            "a turned {width}x{height} picture needs {used} bytes, the buffer holds {}",
            dst.len()
        ));
    }
    let (luma, u, v): (&mut [u8], &mut [u8], &mut [u8]) = match out {
        RawLayout::Yuv420 => {
            let (luma, rest) = dst.split_at_mut(starts[1]);
            let (u, v) = rest.split_at_mut(starts[2] - starts[1]);
            (luma, u, v)
        }
        _ => (dst, Default::default(), Default::default()),
    };
    let size = orientation.size_of(width, height);
    turn_into(planes, layout, size, stride, orientation, [luma, u, v], ds)?;
    Ok(used)
}

/// Planes a picture of `layout` has.
fn plane_count(layout: RawLayout) -> usize {
    match layout {
        RawLayout::Nv12 => 2,
        RawLayout::Yuv420 => 3,
        _ => 1,
    }
}

/// Where each plane starts in one buffer laid out as single-planar V4L2 wants it, with
/// luma rows `stride` bytes apart (see [`copy_planes`]); unused planes start at 0.
fn plane_starts(layout: RawLayout, stride: usize, height: usize) -> [usize; 3] {
    let luma = stride * height;
    match layout {
        RawLayout::Nv12 => [0, luma, 0],
        RawLayout::Yuv420 => [0, luma, luma + stride / 2 * height.div_ceil(2)],
        _ => [0, 0, 0],
    }
}

/// The one DMABUF buffer a camera picture can be imported as: all its planes in one
/// buffer, starting at its start, where the device's layout (`format`) puts them. `Err`
/// says why not. (A picture further into its buffer is not imported: drivers differ in
/// whether they honour an offset on their input queue.)
fn importable<'a>(
    camera: &[Option<CameraPlane<'a>>; 3],
    layout: RawLayout,
    height: usize,
    stride: usize,
    format: &QueueFormat,
) -> Result<DmabufPlane<'a>, String> {
    let planes = plane_count(layout);
    let Some(first) = camera[0] else {
        return Err("the camera gave no buffer description".into());
    };
    if camera[..planes].iter().any(|p| p.is_none()) {
        return Err(format!("the camera describes fewer than {planes} planes"));
    }
    let fd = first.fd.as_raw_fd();
    if camera.iter().flatten().any(|p| p.fd.as_raw_fd() != fd) {
        return Err("the camera's planes lie in separate buffers".into());
    }
    if stride != format.bytes_per_line as usize {
        return Err(format!(
            "the camera's rows are {stride} bytes apart, the device's {}",
            format.bytes_per_line
        ));
    }
    let starts = plane_starts(layout, stride, height);
    for (i, p) in camera[..planes].iter().flatten().enumerate() {
        if p.offset != starts[i] {
            return Err(format!(
                "plane {i} starts at byte {} of the camera's buffer, the device reads it \
                 from byte {}",
                p.offset, starts[i]
            ));
        }
    }
    let length = camera
        .iter()
        .flatten()
        .map(|p| p.offset + p.length)
        .max()
        .unwrap_or(0);
    if length < format.size_image as usize {
        return Err(format!(
            "the camera's buffer holds {length} bytes, the device reads {}",
            format.size_image
        ));
    }
    let length = u32::try_from(length).map_err(|_| "the camera's buffer is too large")?;
    Ok(DmabufPlane {
        fd: first.fd,
        offset: 0,
        length,
        bytesused: format.size_image,
    })
}

/// What `--encoder` comes to with the hardware encoder `found` (if any) on the board
/// named `model`: the node to use and the log line that says so, or why `hardware`
/// cannot be had.
fn decide(
    choice: EncoderChoice,
    found: Option<M2mNode>,
    model: Option<&str>,
) -> Result<(Option<M2mNode>, String), String> {
    // A board known to have no JPEG encoder is named as such: the search did not fail.
    let board_has_none = model.filter(|m| crate::board::is_pi5(m)).map(|m| {
        format!(
            "a {} has no hardware JPEG encoder",
            crate::board::short_name(m)
        )
    });
    match (choice, found) {
        (EncoderChoice::Software, _) => Ok((
            None,
            "JPEG encoding in software (--encoder software)".into(),
        )),
        (_, Some(node)) => {
            let line = format!("hardware JPEG encoder: {}", node.describe());
            Ok((Some(node), line))
        }
        (EncoderChoice::Auto, None) => {
            let why = board_has_none.unwrap_or_else(|| {
                "no hardware JPEG encoder (a V4L2 memory-to-memory node producing JPEG) found"
                    .into()
            });
            Ok((None, format!("JPEG encoding in software: {why}")))
        }
        (EncoderChoice::Hardware, None) => Err(match board_has_none {
            Some(why) => format!(
                "--encoder hardware: no V4L2 memory-to-memory JPEG encoder found: {why} \
                 (its pictures are encoded in software on its cores; use --encoder auto \
                 or software)"
            ),
            None => "--encoder hardware: no V4L2 memory-to-memory JPEG encoder found \
                     (use --encoder auto or software)"
                .to_string(),
        }),
    }
}

/// A picture handed to [`JpegEncoder::deliver`]: packed RGB, a raw picture with its
/// planes one after the other (and its stride), or a camera picture.
enum Handed<'a> {
    Rgb(&'a [u8]),
    Raw(&'a [u8], RawLayout, usize),
    Camera(RawFrame<'a>, [Option<CameraPlane<'a>>; 3]),
}

/// The hardware encoder set up for one format and size.
struct Session {
    key: (u32, u16, u16),
    feed: Feed,
}

/// Encodes pictures to JPEG in hardware when it can, in software otherwise.
pub struct JpegEncoder {
    software: SoftwareEncoder,
    quality: u8,
    /// The hardware node while it is in use.
    node: Option<M2mNode>,
    session: Option<Session>,
    /// Why camera buffers are no longer imported (set once, at the first refusal).
    import_refused: Option<String>,
    description: String,
    changed: bool,
    /// Threads that encode in software (`--encode-workers`); 1: this thread.
    workers: usize,
    /// The software workers while pictures go to them (see [`JpegEncoder::rest`]).
    pool: Option<EncodePool>,
    /// How pictures are turned before they are encoded (nothing, unless asked).
    turner: Turner,
}

impl JpegEncoder {
    /// An encoder as `choice` asks; `hardware` without a hardware encoder is an error.
    /// Logs one line saying which encoder runs and, for software, why.
    pub fn new(choice: EncoderChoice, quality: u8) -> Result<JpegEncoder, String> {
        let found = match choice {
            EncoderChoice::Software => None,
            EncoderChoice::Auto | EncoderChoice::Hardware => find_hardware(),
        };
        let (node, line) = decide(choice, found, crate::board::model().as_deref())?;
        log::info!("{line}");
        Ok(JpegEncoder::with_node(node, quality))
    }

    /// An encoder using `node` as its hardware (none: software only).
    pub fn with_node(node: Option<M2mNode>, quality: u8) -> JpegEncoder {
        let description = match &node {
            Some(n) => format!("v4l2-m2m:{}", n.path.display()),
            None => "software".to_string(),
        };
        JpegEncoder {
            software: SoftwareEncoder::new(quality),
            quality: quality.clamp(1, 100),
            node,
            session: None,
            import_refused: None,
            description,
            changed: true,
            workers: 1,
            pool: None,
            turner: Turner::default(),
        }
    }

    /// Turns every picture as `orientation` says before encoding it: in software, into
    /// the buffer the hardware encoder reads when it runs. The JPEG is then the turned
    /// size (see [`output_size`](Self::output_size)).
    pub fn with_orientation(mut self, orientation: Orientation) -> JpegEncoder {
        self.pool = None;
        self.turner = Turner::new(orientation);
        self
    }

    /// The size of the JPEG made of a `width` x `height` picture.
    pub fn output_size(&self, width: u16, height: u16) -> (u16, u16) {
        self.turner.orientation().size_of(width, height)
    }

    /// Encodes in software on as many threads as `workers` asks, and says so in the log
    /// (with why that many).
    pub fn with_workers(mut self, workers: EncodeWorkers) -> JpegEncoder {
        let (n, why) = workers.resolve();
        self.workers = n.max(1);
        let on = if self.workers == 1 {
            "on the source's own thread".to_string()
        } else {
            format!("on {} workers", self.workers)
        };
        let when = if self.is_hardware() {
            " when the hardware fails"
        } else {
            ""
        };
        log::info!(
            "software JPEG ({}){when} {on} ({why})",
            self.software.backend().name()
        );
        self
    }

    /// Threads that encode in software now: 0 while the hardware encodes.
    pub fn workers(&self) -> usize {
        if self.is_hardware() {
            0
        } else {
            self.workers
        }
    }

    /// Stops the software workers, if they run, and waits for them to end: for a
    /// source going idle or closing its camera. The next picture starts them again.
    pub fn rest(&mut self) {
        self.pool = None;
    }

    /// The worker pool when pictures go to it: software with more than one worker.
    /// `None` (after logging why) when its threads cannot start.
    fn pool(&mut self, out: &Arc<dyn JpegOut>) -> Option<&mut EncodePool> {
        if self.workers <= 1 || self.is_hardware() {
            return None;
        }
        if self.pool.is_none() {
            let (backend, turn) = (Backend::best(), self.turner.orientation());
            let (workers, quality) = (self.workers, self.quality);
            match EncodePool::with_options(workers, quality, backend, turn, out.clone()) {
                Ok(pool) => self.pool = Some(pool),
                Err(e) => {
                    log::warn!("cannot start the JPEG encoding threads ({e}); encoding on one");
                    self.workers = 1;
                    return None;
                }
            }
        }
        self.pool.as_mut()
    }

    /// Encodes packed RGB and hands the JPEG to `out`: on the worker threads when
    /// there are several (`out` is then called from them, in capture order), else
    /// here. An error is a picture refused or, on this thread, failed.
    pub fn deliver_rgb(
        &mut self,
        rgb: &[u8],
        width: u16,
        height: u16,
        out: &Arc<dyn JpegOut>,
    ) -> Result<(), EncodeError> {
        self.deliver(Handed::Rgb(rgb), width, height, out)
    }

    /// [`deliver_rgb`](Self::deliver_rgb) for a raw picture; see
    /// [`encode_raw`](Self::encode_raw).
    pub fn deliver_raw(
        &mut self,
        data: &[u8],
        layout: RawLayout,
        width: u16,
        height: u16,
        stride: usize,
        out: &Arc<dyn JpegOut>,
    ) -> Result<(), EncodeError> {
        self.deliver(Handed::Raw(data, layout, stride), width, height, out)
    }

    /// [`deliver_rgb`](Self::deliver_rgb) for a camera picture; see
    /// [`encode_camera_buffer`](Self::encode_camera_buffer).
    pub fn deliver_camera_buffer(
        &mut self,
        frame: RawFrame<'_>,
        camera: [Option<CameraPlane<'_>>; 3],
        out: &Arc<dyn JpegOut>,
    ) -> Result<(), EncodeError> {
        self.deliver(
            Handed::Camera(frame, camera),
            frame.width,
            frame.height,
            out,
        )
    }

    /// To the pool when it runs, else encoded here and published.
    fn deliver(
        &mut self,
        picture: Handed<'_>,
        width: u16,
        height: u16,
        out: &Arc<dyn JpegOut>,
    ) -> Result<(), EncodeError> {
        if let Some(pool) = self.pool(out) {
            return match picture {
                Handed::Rgb(rgb) => pool.submit_rgb(rgb, width, height),
                Handed::Raw(data, layout, stride) => {
                    pool.submit_planes(RawFrame::packed(data, layout, (width, height), stride))
                }
                Handed::Camera(frame, _) => pool.submit_planes(frame),
            };
        }
        let turned = self.output_size(width, height);
        let jpeg = match picture {
            Handed::Rgb(rgb) => self.encode_rgb(rgb, width, height)?,
            Handed::Raw(data, layout, stride) => {
                self.encode_raw(data, layout, width, height, stride)?
            }
            Handed::Camera(frame, camera) => self.encode_camera_buffer(frame, camera)?,
        };
        out.publish(jpeg, turned.0, turned.1);
        Ok(())
    }

    /// Which encoder runs, for `/status`: `software`, `v4l2-m2m:/dev/videoN`, or
    /// `software (v4l2-m2m:/dev/videoN failed: why)`.
    pub fn describe(&self) -> &str {
        &self.description
    }

    /// True once after each change of [`describe`](Self::describe) (and at first).
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// Whether pictures go to the hardware now.
    pub fn is_hardware(&self) -> bool {
        self.node.is_some()
    }

    /// Encodes a raw camera picture; see [`SoftwareEncoder::encode_raw`].
    pub fn encode_raw(
        &mut self,
        data: &[u8],
        layout: RawLayout,
        width: u16,
        height: u16,
        stride: usize,
    ) -> Result<&[u8], EncodeError> {
        if !self.turner.orientation().is_identity() {
            return self.encode_planes(RawFrame::packed(data, layout, (width, height), stride));
        }
        let picture = Picture::Raw {
            data,
            layout,
            stride,
        };
        if self.try_hardware(picture, None, width, height) {
            return Ok(self.hardware_result());
        }
        self.software
            .encode_raw(data, layout, width, height, stride)
    }

    /// Encodes a raw picture whose planes lie apart; see
    /// [`SoftwareEncoder::encode_planes`].
    pub fn encode_planes(&mut self, frame: RawFrame<'_>) -> Result<&[u8], EncodeError> {
        self.encode_planes_from(frame, None)
    }

    /// Encodes a camera picture given both ways: its planes mapped into memory (as for
    /// [`encode_planes`](Self::encode_planes)) and the DMABUF buffers they lie in
    /// (`camera`, in the same order; `None` past the last plane). The hardware encoder
    /// imports the buffer without a copy where it can; otherwise the mapped planes are
    /// copied, or encoded in software.
    pub fn encode_camera_buffer(
        &mut self,
        frame: RawFrame<'_>,
        camera: [Option<CameraPlane<'_>>; 3],
    ) -> Result<&[u8], EncodeError> {
        self.encode_planes_from(frame, Some(&camera))
    }

    /// [`encode_planes`](Self::encode_planes), with the camera's buffers to import
    /// when there are any.
    fn encode_planes_from(
        &mut self,
        frame: RawFrame<'_>,
        camera: Option<&[Option<CameraPlane<'_>>; 3]>,
    ) -> Result<&[u8], EncodeError> {
        if !self.turner.orientation().is_identity() {
            // A turned picture cannot be imported: it is turned into the device's buffer.
            return self.encode_turned(frame);
        }
        let picture = Picture::Planes {
            planes: frame.planes,
            layout: frame.layout,
            stride: frame.stride,
        };
        if self.try_hardware(picture, camera, frame.width, frame.height) {
            return Ok(self.hardware_result());
        }
        self.software.encode_planes(frame)
    }

    /// Whether camera buffers are imported into the hardware now (rather than copied).
    pub fn imports_camera_buffers(&self) -> bool {
        self.session.as_ref().is_some_and(|s| s.feed.imports())
    }

    /// Encodes packed RGB; see [`SoftwareEncoder::encode_rgb`].
    pub fn encode_rgb(
        &mut self,
        rgb: &[u8],
        width: u16,
        height: u16,
    ) -> Result<&[u8], EncodeError> {
        if !self.turner.orientation().is_identity() {
            return self.encode_turned(RawFrame {
                planes: [rgb, &[], &[]],
                layout: RawLayout::Rgb24,
                width,
                height,
                stride: width as usize * 3,
            });
        }
        if self.try_hardware(Picture::Rgb(rgb), None, width, height) {
            return Ok(self.hardware_result());
        }
        self.software.encode_rgb(rgb, width, height)
    }

    /// Encodes a picture turned first: in hardware, turned straight into the device's
    /// buffer; in software, into the turner's.
    fn encode_turned(&mut self, frame: RawFrame<'_>) -> Result<&[u8], EncodeError> {
        let frame = frame.checked()?;
        let orientation = self.turner.orientation();
        let (turned_w, turned_h) = orientation.size_of(frame.width, frame.height);
        let picture = Picture::Turned {
            planes: frame.planes,
            layout: frame.layout,
            stride: frame.stride,
            orientation,
        };
        if self.try_hardware(picture, None, turned_w, turned_h) {
            return Ok(self.hardware_result());
        }
        let (jpeg, _, _) = self.turner.encode(&mut self.software, frame)?;
        Ok(jpeg)
    }

    fn hardware_result(&self) -> &[u8] {
        self.session
            .as_ref()
            .and_then(|s| s.feed.device().result())
            .map_or(&[], |r| r.data)
    }

    /// Runs `picture` through the hardware; false (after falling back) when it failed
    /// or there is none.
    fn try_hardware(
        &mut self,
        picture: Picture<'_>,
        camera: Option<&[Option<CameraPlane<'_>>; 3]>,
        width: u16,
        height: u16,
    ) -> bool {
        if self.node.is_none() || picture.fourcc().is_none() {
            return false;
        }
        match self.hardware(picture, camera, width, height) {
            Ok(()) => true,
            Err(why) => {
                self.fall_back(&why);
                false
            }
        }
    }

    fn hardware(
        &mut self,
        picture: Picture<'_>,
        camera: Option<&[Option<CameraPlane<'_>>; 3]>,
        width: u16,
        height: u16,
    ) -> Result<(), String> {
        let node = self.node.as_ref().expect("hardware in use");
        let input = picture.fourcc().ok_or("an unknown picture layout")?;
        let key = (input, width, height);
        if self.session.as_ref().is_none_or(|s| s.key != key) {
            self.session = None;
            if !node.output_formats.contains(&input) {
                return Err(format!("it does not take {} pictures", fourcc_name(input)));
            }
            let output = JPEG_FORMATS
                .into_iter()
                .find(|f| node.capture_formats.contains(f))
                .ok_or("it produces no JPEG")?;
            let import = camera.is_some() && self.import_refused.is_none();
            let setup = M2mSetup {
                input,
                output,
                width: width as u32,
                height: height as u32,
                input_buffers: if import {
                    IMPORT_SLOTS
                } else {
                    HARDWARE_BUFFERS
                },
                output_buffers: HARDWARE_BUFFERS,
                input_memory: if import {
                    InputMemory::Dmabuf
                } else {
                    InputMemory::Mmap
                },
                controls: vec![(V4L2_CID_JPEG_COMPRESSION_QUALITY, self.quality as i32)],
            };
            let feed = Feed::open(&node.path, &setup).map_err(|e| e.to_string())?;
            let got = feed.device().input_format();
            if (got.width, got.height) != (width as u32, height as u32) {
                return Err(format!(
                    "it encodes {}x{}, not {width}x{height}",
                    got.width, got.height
                ));
            }
            log::info!(
                "{}: encoding {} {width}x{height} to {} at quality {}{}",
                node.describe(),
                fourcc_name(input),
                fourcc_name(output),
                self.quality,
                if feed.imports() {
                    ", importing the camera's buffers"
                } else {
                    ""
                }
            );
            self.session = Some(Session { key, feed });
        }
        let session = self.session.as_mut().expect("set up above");
        let format = session.feed.device().input_format();
        let stride = format.bytes_per_line as usize;
        let (w, h) = (width as usize, height as usize);
        let import = match (camera, picture) {
            // Copying: the feed does not look at this.
            _ if !session.feed.imports() => Err(String::new()),
            (Some(camera), Picture::Planes { layout, stride, .. }) => {
                importable(camera, layout, h, stride, &format)
            }
            _ => Err("a picture came without its camera buffer".into()),
        };
        let result = session
            .feed
            .process(
                import,
                |buf| picture.copy_to(buf, w, h, stride),
                HARDWARE_TIMEOUT,
            )
            .map_err(|e| e.to_string())?;
        let dims = crate::jpeg::inspect(result.data);
        if let (Some(why), None) = (session.feed.copy_reason(), &self.import_refused) {
            log::info!(
                "{}: copying camera pictures into the encoder: {why}",
                node.path.display()
            );
            self.import_refused = Some(why.to_string());
        }
        let dims = dims.map_err(|e| format!("it produced a bad JPEG: {e}"))?;
        if (dims.width, dims.height) != (width, height) {
            return Err(format!(
                "it produced a {}x{} JPEG for a {width}x{height} picture",
                dims.width, dims.height
            ));
        }
        Ok(())
    }

    /// Gives up on the hardware for good: says so once, in the log and in `/status`.
    fn fall_back(&mut self, why: &str) {
        let Some(node) = self.node.take() else {
            return;
        };
        self.session = None;
        log::warn!(
            "hardware JPEG encoder {} failed: {why}; encoding in software from now on",
            node.path.display()
        );
        self.description = format!("software (v4l2-m2m:{} failed: {why})", node.path.display());
        self.changed = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn planes_apart_land_where_single_planar_v4l2_wants_them() {
        // 4x2 I420 with padded source rows (stride 6, chroma 3) into rows of 8 bytes.
        let y = [1, 2, 3, 4, 0, 0, 5, 6, 7, 8, 0, 0];
        let (u, v) = ([9, 10, 0], [11, 12, 0]);
        let mut buf = vec![0xEEu8; 32];
        let used = copy_planes([&y, &u, &v], RawLayout::Yuv420, 6, &mut buf, 4, 2, 8).unwrap();
        assert_eq!(&buf[0..4], &[1, 2, 3, 4]);
        assert_eq!(&buf[8..12], &[5, 6, 7, 8]);
        assert_eq!(&buf[16..18], &[9, 10], "U after the luma plane, rows of 4");
        assert_eq!(&buf[20..22], &[11, 12], "V after one U row of 4");
        assert_eq!(used, 24);
        // NV12: the interleaved chroma plane keeps the luma stride.
        let uv = [9, 11, 0, 0, 0, 0];
        let mut buf = vec![0u8; 24];
        copy_planes([&y, &uv, &[]], RawLayout::Nv12, 6, &mut buf, 4, 2, 8).unwrap();
        assert_eq!(&buf[16..20], &[9, 11, 0, 0]);
        // A plane too short is an error, not a panic.
        assert!(copy_planes([&y[..5], &u, &v], RawLayout::Yuv420, 6, &mut buf, 4, 2, 8).is_err());
        // Without hardware the planes go to software and decode at their size.
        let frame = RawFrame {
            planes: [&y, &u, &v],
            layout: RawLayout::Yuv420,
            width: 4,
            height: 2,
            stride: 6,
        };
        let mut enc = JpegEncoder::with_node(None, 80);
        let jpeg = enc.encode_planes(frame).unwrap().to_vec();
        let d = crate::jpeg::inspect(&jpeg).unwrap();
        assert_eq!((d.width, d.height), (4, 2));
        // Given with their buffers too, they still go to software without hardware.
        let file = std::fs::File::open("/dev/null").unwrap();
        let camera = Some(CameraPlane {
            fd: file.as_fd(),
            offset: 0,
            length: 12,
        });
        let again = enc
            .encode_camera_buffer(frame, [camera, None, None])
            .unwrap();
        assert_eq!(again, &jpeg[..]);
        assert!(!enc.imports_camera_buffers());
    }

    #[test]
    fn turned_pictures_land_where_single_planar_v4l2_wants_them() {
        // 4x2 I420 turned clockwise into 2x4, luma rows of 8 bytes, chroma rows of 4.
        let (y, u, v) = ([1, 2, 3, 4, 5, 6, 7, 8], [9, 10], [11, 12]);
        let orientation = crate::picture::Transform {
            rotate90: true,
            ..Default::default()
        }
        .orientation();
        let picture = Picture::Turned {
            planes: [&y, &u, &v],
            layout: RawLayout::Yuv420,
            stride: 4,
            orientation,
        };
        assert_eq!(picture.fourcc(), Some(fourcc(b"YU12")));
        let mut buf = vec![0xEEu8; 64];
        assert_eq!(picture.copy_to(&mut buf, 2, 4, 8), Ok(48));
        let rows: Vec<&[u8]> = (0..4).map(|r| &buf[r * 8..r * 8 + 2]).collect();
        assert_eq!(rows, [[5, 1], [6, 2], [7, 3], [8, 4]]);
        assert_eq!((buf[32], buf[36]), (9, 10), "U down the turned picture");
        assert_eq!((buf[40], buf[44]), (11, 12), "V after two U rows of 4");
        // A buffer too small is an error, not a panic.
        assert!(picture.copy_to(&mut buf[..40], 2, 4, 8).is_err());
        // Turned YUYV goes in as I420 too; RGB stays RGB.
        let turned = |layout| Picture::Turned {
            planes: [&y, &u, &v],
            layout,
            stride: 4,
            orientation,
        };
        assert_eq!(turned(RawLayout::Yuyv).fourcc(), Some(fourcc(b"YU12")));
        assert_eq!(turned(RawLayout::Rgb24).fourcc(), Some(fourcc(b"RGB3")));
    }

    #[test]
    fn camera_buffers_import_only_as_the_device_reads_them() {
        let a = std::fs::File::open("/dev/null").unwrap();
        let b = std::fs::File::open("/dev/null").unwrap();
        let (fa, fb) = (a.as_fd(), b.as_fd());
        let plane = |fd, offset, length| Some(CameraPlane { fd, offset, length });
        // 64x32 I420, rows of 64: Y at 0, U at 2048, V at 2048 + 32 * 16.
        let format = QueueFormat {
            fourcc: fourcc(b"YU12"),
            width: 64,
            height: 32,
            bytes_per_line: 64,
            size_image: 3072,
        };
        let good = [
            plane(fa, 0, 2048),
            plane(fa, 2048, 512),
            plane(fa, 2560, 512),
        ];
        let one = importable(&good, RawLayout::Yuv420, 32, 64, &format).unwrap();
        assert_eq!(one.fd.as_raw_fd(), fa.as_raw_fd());
        assert_eq!((one.offset, one.length, one.bytesused), (0, 3072, 3072));
        let why = |camera, stride, format: &QueueFormat| {
            importable(&camera, RawLayout::Yuv420, 32, stride, format).unwrap_err()
        };
        let mut apart = good;
        apart[2] = plane(fb, 2560, 512);
        assert!(why(apart, 64, &format).contains("separate buffers"));
        let mut gap = good;
        gap[1] = plane(fa, 4096, 512);
        assert!(why(gap, 64, &format).contains("plane 1 starts at byte 4096"));
        assert!(why(good, 80, &format).contains("80 bytes apart, the device's 64"));
        let bigger = QueueFormat {
            size_image: 4096,
            ..format
        };
        assert!(why(good, 64, &bigger).contains("holds 3072 bytes, the device reads 4096"));
        assert!(why([good[0], good[1], None], 64, &format).contains("fewer than 3 planes"));
        // NV12: the chroma plane right after the luma plane; packed: one plane.
        let nv12 = [plane(fa, 0, 2048), plane(fa, 2048, 1024), None];
        assert!(importable(&nv12, RawLayout::Nv12, 32, 64, &format).is_ok());
        let packed = QueueFormat {
            bytes_per_line: 128,
            size_image: 4096,
            ..format
        };
        let yuyv = [plane(fa, 0, 4096), None, None];
        assert!(importable(&yuyv, RawLayout::Yuyv, 32, 128, &packed).is_ok());
        let late = [plane(fa, 64, 4096), None, None];
        assert!(importable(&late, RawLayout::Yuyv, 32, 128, &packed)
            .unwrap_err()
            .contains("plane 0 starts at byte 64"));
    }

    #[test]
    fn copies_rows_at_the_drivers_stride() {
        // 4x2 YUYV with a 10-byte source stride into a 16-byte driver stride.
        let src: Vec<u8> = (0..20).collect();
        let pic = Picture::Raw {
            data: &src,
            layout: RawLayout::Yuyv,
            stride: 10,
        };
        let mut dst = vec![0xAAu8; 32];
        assert_eq!(pic.copy_to(&mut dst, 4, 2, 16), Ok(32));
        assert_eq!(&dst[..8], &src[..8]);
        assert_eq!(&dst[8..16], &[0xAA; 8]);
        assert_eq!(&dst[16..24], &src[10..18]);
        // NV12 4x2: luma rows, then one chroma row after `stride * height`.
        let nv12: Vec<u8> = (0..12).collect();
        let pic = Picture::Raw {
            data: &nv12,
            layout: RawLayout::Nv12,
            stride: 4,
        };
        let mut dst = vec![0u8; 24];
        assert_eq!(pic.copy_to(&mut dst, 4, 2, 8), Ok(24));
        assert_eq!(&dst[0..4], &nv12[0..4]);
        assert_eq!(&dst[8..12], &nv12[4..8]);
        assert_eq!(&dst[16..20], &nv12[8..12]);
        // Too little input is an error, not a panic.
        assert!(pic.copy_to(&mut dst, 8, 8, 8).is_err());
    }

    fn model_of(name: &str) -> String {
        let path = format!("{}/tests/fixtures/pi/{name}", env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        crate::board::parse_model(&bytes).unwrap()
    }

    fn jpeg_node() -> M2mNode {
        M2mNode {
            path: "/dev/video31".into(),
            driver: "bcm2835-codec".into(),
            card: "bcm2835-codec-encode_image".into(),
            mplane: true,
            output_formats: vec![fourcc(b"YU12")],
            capture_formats: vec![fourcc(b"JPEG")],
        }
    }

    #[test]
    fn a_pi_5_encodes_in_software_and_says_why() {
        let pi5 = model_of("pi5-device-tree-model");
        let (node, line) = decide(EncoderChoice::Auto, None, Some(&pi5)).unwrap();
        assert_eq!(node, None);
        assert_eq!(
            line,
            "JPEG encoding in software: a Raspberry Pi 5 Model B has no hardware JPEG encoder"
        );
        // `hardware` is refused at start, naming the board and what to use instead.
        let e = decide(EncoderChoice::Hardware, None, Some(&pi5)).unwrap_err();
        assert!(
            e.starts_with("--encoder hardware: no V4L2 memory-to-memory JPEG encoder found"),
            "{e}"
        );
        assert!(
            e.contains("a Raspberry Pi 5 Model B has no hardware JPEG encoder"),
            "{e}"
        );
        assert!(e.contains("use --encoder auto or software"), "{e}");
        // Software asked for: software, whatever the board.
        let (node, line) = decide(EncoderChoice::Software, None, Some(&pi5)).unwrap();
        assert_eq!(node, None);
        assert_eq!(line, "JPEG encoding in software (--encoder software)");
        // Should a JPEG node be there after all, it is used: devices decide, the model
        // string only words the message.
        let (node, line) = decide(EncoderChoice::Auto, Some(jpeg_node()), Some(&pi5)).unwrap();
        assert_eq!(node, Some(jpeg_node()));
        assert!(
            line.starts_with("hardware JPEG encoder: /dev/video31"),
            "{line}"
        );
    }

    #[test]
    fn other_boards_name_the_missing_device() {
        let pi4 = model_of("pi4-device-tree-model");
        for model in [Some(pi4.as_str()), None] {
            let (node, line) = decide(EncoderChoice::Auto, None, model).unwrap();
            assert_eq!(node, None);
            assert_eq!(
                line,
                "JPEG encoding in software: no hardware JPEG encoder (a V4L2 memory-to-memory \
                 node producing JPEG) found"
            );
            let e = decide(EncoderChoice::Hardware, None, model).unwrap_err();
            assert_eq!(
                e,
                "--encoder hardware: no V4L2 memory-to-memory JPEG encoder found (use \
                 --encoder auto or software)"
            );
            let (node, _) = decide(EncoderChoice::Hardware, Some(jpeg_node()), model).unwrap();
            assert_eq!(node, Some(jpeg_node()));
        }
    }

    #[test]
    fn software_only_without_a_node() {
        let mut enc = JpegEncoder::with_node(None, 80);
        assert_eq!(enc.describe(), "software");
        assert!(enc.take_changed());
        assert!(!enc.take_changed());
        let rgb = vec![100u8; 32 * 16 * 3];
        let jpeg = enc.encode_rgb(&rgb, 32, 16).unwrap().to_vec();
        assert_eq!(crate::jpeg::inspect(&jpeg).unwrap().width, 32);
        assert!(!enc.is_hardware());
    }

    #[test]
    fn a_failing_device_falls_back_to_software_once() {
        // A node that is not there: setting it up fails at the first picture.
        let node = M2mNode {
            path: "/nonexistent/video31".into(),
            output_formats: vec![fourcc(b"RGB3")],
            ..jpeg_node()
        };
        let mut enc = JpegEncoder::with_node(Some(node), 80);
        assert_eq!(enc.describe(), "v4l2-m2m:/nonexistent/video31");
        assert!(enc.take_changed());
        let rgb = vec![100u8; 32 * 16 * 3];
        let jpeg = enc.encode_rgb(&rgb, 32, 16).unwrap().to_vec();
        assert_eq!(crate::jpeg::inspect(&jpeg).unwrap().height, 16);
        assert!(!enc.is_hardware());
        assert!(enc.take_changed());
        let d = enc.describe().to_string();
        assert!(
            d.starts_with("software (v4l2-m2m:/nonexistent/video31 failed: "),
            "{d}"
        );
        enc.encode_rgb(&rgb, 32, 16).unwrap();
        assert!(!enc.take_changed(), "the fall-back happens once");
    }
}
