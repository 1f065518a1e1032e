//! The hardware H.264 stage: pictures from [`super::demand`] encoded on a V4L2
//! memory-to-memory encoder (the Pi Zero to Pi 4's `bcm2835-codec`, normally
//! `/dev/video11`: raw pictures in, H.264 out) and published into the [`H264Slot`].
//!
//! This module owns what is particular to encoding video on such a node; the queues,
//! formats, buffers and controls are the generic plumbing of [`crate::encoder::m2m`].
//!
//! * The node: one whose CAPTURE queue produces the coded format and whose OUTPUT
//!   queue takes YU12 or NV12 (an I420 picture is laid out in either, with the row
//!   length and plane height the driver chose; a driver that enlarged the size gets
//!   the picture padded with black).
//! * Settings, as the software stage's ([`super::pacing`]): constrained baseline,
//!   parameter sets before every IDR picture (`REPEAT_SEQ_HEADER`), an IDR picture
//!   every 2 × fps frames (`H264_I_PERIOD`), the bit rate (`VIDEO_BITRATE`), level 4.0,
//!   or 4.2 above 30 fps at 1280×720 and up; `FORCE_KEY_FRAME` when a viewer joins, at
//!   most once per [`pacing::KEY_SPACING`]. Controls a driver lacks are skipped.
//! * Each picture has [`FRAME_DEADLINE`] to come back coded; a device that misses it,
//!   goes away or fails otherwise is closed, and opened again for a later picture (not
//!   sooner than [`REOPEN_GAP`] after the last attempt).
//! * Output is not trusted: it goes through [`AnnexBPublisher`], which publishes
//!   nothing for empty or garbage buffers.
//!
//! [`VideoEncoder`] is generic over the coded format, so the same queue handling runs
//! against the kernel's `vicodec` (FWHT) in the VM tests.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::demand::{self, PictureEncoder};
use super::pacing::{self, Pacer};
use super::picture::Picture;
use super::publish::AnnexBPublisher;
use super::slot::H264Slot;
use crate::encoder::m2m::{self, InputMemory, M2mDevice, M2mError, M2mNode, M2mSetup, QueueFormat};
use crate::slot::FrameSlot;
use crate::v4l2::sys::{self, fourcc, fourcc_name};

/// H.264, as the CAPTURE queue's format.
pub const H264: u32 = fourcc(b"H264");
/// Planar Y, U, V 4:2:0 in one buffer (I420).
pub const YU12: u32 = fourcc(b"YU12");
/// Planar Y, then interleaved U and V, 4:2:0.
pub const NV12: u32 = fourcc(b"NV12");
/// The input formats an I420 picture is laid out in, preferred first.
pub const INPUT_FORMATS: [u32; 2] = [YU12, NV12];

/// How long one picture may take to come back coded.
pub const FRAME_DEADLINE: Duration = Duration::from_secs(1);

/// The least time between two attempts to open the device.
pub const REOPEN_GAP: Duration = Duration::from_secs(1);

/// Buffers on each queue: one picture in flight, one coming back, one spare.
const BUFFERS: u32 = 3;

/// The node among `nodes` that encodes to `coded`, with the input format to use.
pub fn choose_node(nodes: &[M2mNode], coded: u32) -> Option<(M2mNode, u32)> {
    INPUT_FORMATS.iter().find_map(|&input| {
        nodes
            .iter()
            .find(|n| n.converts(input, coded))
            .map(|n| (n.clone(), input))
    })
}

/// The H.264 encoder node on this system, if any, with its input format.
pub fn find_h264_node() -> Option<(M2mNode, u32)> {
    choose_node(&m2m::all_nodes(), H264)
}

/// The H.264 level for a picture size and frame rate: 4.2 above 30 fps at 1280×720 and
/// up, else 4.0.
pub fn h264_level(width: u16, height: u16, fps: u32) -> i32 {
    if u64::from(width) * u64::from(height) >= pacing::PIXELS_720P && fps > 30 {
        sys::V4L2_MPEG_VIDEO_H264_LEVEL_4_2
    } else {
        sys::V4L2_MPEG_VIDEO_H264_LEVEL_4_0
    }
}

/// The controls set before streaming, as (id, value), for `fps` and `bitrate` (already
/// decided by [`pacing::rates`]).
pub fn h264_controls(width: u16, height: u16, fps: u32, bitrate: u32) -> Vec<(u32, i32)> {
    vec![
        (
            sys::V4L2_CID_MPEG_VIDEO_H264_PROFILE,
            sys::V4L2_MPEG_VIDEO_H264_PROFILE_CONSTRAINED_BASELINE,
        ),
        (
            sys::V4L2_CID_MPEG_VIDEO_H264_LEVEL,
            h264_level(width, height, fps),
        ),
        (sys::V4L2_CID_MPEG_VIDEO_REPEAT_SEQ_HEADER, 1),
        (
            sys::V4L2_CID_MPEG_VIDEO_H264_I_PERIOD,
            (2 * fps).min(i32::MAX as u32) as i32,
        ),
        (
            sys::V4L2_CID_MPEG_VIDEO_BITRATE,
            bitrate.min(i32::MAX as u32) as i32,
        ),
    ]
}

/// Writes `picture` into `buf` as `input` (YU12 or NV12) laid out as `format` says: rows
/// `bytes_per_line` apart, the chroma after as many luma rows as the buffer's size
/// implies (drivers align the height), and black where the format is larger than the
/// picture. Returns the bytes written.
pub fn lay_out(
    picture: &Picture,
    input: u32,
    format: &QueueFormat,
    buf: &mut [u8],
) -> Result<usize, String> {
    let (w, h) = (usize::from(picture.width), usize::from(picture.height));
    let (fw, fh) = (format.width as usize, format.height as usize);
    if w > fw || h > fh {
        return Err(format!("a {w}x{h} picture does not fit a {fw}x{fh} input"));
    }
    if picture.yuv.len() < w * h * 3 / 2 {
        return Err(format!("a {w}x{h} picture of {} bytes", picture.yuv.len()));
    }
    let stride = (format.bytes_per_line as usize).max(fw).next_multiple_of(2);
    let implied = format.size_image as usize * 2 / (stride * 3);
    let rows = implied.max(fh).next_multiple_of(2);
    let luma = stride * rows;
    let total = luma + luma / 2;
    if buf.len() < total {
        return Err(format!(
            "a {total} byte picture does not fit the {} byte input buffer",
            buf.len()
        ));
    }
    let (y_in, chroma_in) = picture.yuv.split_at(w * h);
    let (u_in, v_in) = chroma_in.split_at(w * h / 4);
    for (row, dst) in buf[..luma].chunks_exact_mut(stride).enumerate() {
        let src = y_in.chunks_exact(w).nth(row).unwrap_or_default();
        dst[..src.len()].copy_from_slice(src);
        dst[src.len()..].fill(16);
    }
    let cw = w / 2;
    match input {
        NV12 => {
            for (row, dst) in buf[luma..total].chunks_exact_mut(stride).enumerate() {
                let u = u_in.chunks_exact(cw).nth(row).unwrap_or_default();
                let v = v_in.chunks_exact(cw).nth(row).unwrap_or_default();
                for (pair, (&u, &v)) in dst.chunks_exact_mut(2).zip(u.iter().zip(v)) {
                    pair[0] = u;
                    pair[1] = v;
                }
                dst[2 * u.len()..].fill(128);
            }
        }
        YU12 => {
            let (u_out, v_out) = buf[luma..total].split_at_mut(luma / 4);
            for (plane_in, plane_out) in [(u_in, u_out), (v_in, v_out)] {
                for (row, dst) in plane_out.chunks_exact_mut(stride / 2).enumerate() {
                    let src = plane_in.chunks_exact(cw).nth(row).unwrap_or_default();
                    dst[..src.len()].copy_from_slice(src);
                    dst[src.len()..].fill(128);
                }
            }
        }
        other => {
            return Err(format!(
                "cannot lay out a picture as {}",
                fourcc_name(other)
            ))
        }
    }
    Ok(total)
}

/// A memory-to-memory video encoder that survives its device failing: one picture in,
/// its coded bytes out, whatever the coded format. A failed device is closed, and
/// opened again for a later picture.
pub struct VideoEncoder {
    path: PathBuf,
    setup: M2mSetup,
    deadline: Duration,
    device: Option<M2mDevice>,
    last_open: Instant,
    opens: u64,
}

impl VideoEncoder {
    /// Opens the node at `path` with `setup` (its `input` YU12 or NV12).
    pub fn open(path: &Path, setup: M2mSetup) -> Result<VideoEncoder, M2mError> {
        let device = M2mDevice::open(path, &setup)?;
        Ok(VideoEncoder {
            path: path.to_path_buf(),
            setup,
            deadline: FRAME_DEADLINE,
            device: Some(device),
            last_open: Instant::now(),
            opens: 1,
        })
    }

    /// Sets how long one picture may take (normally [`FRAME_DEADLINE`]).
    pub fn set_deadline(&mut self, deadline: Duration) {
        self.deadline = deadline;
    }

    /// How many times the device was opened, the first time included.
    pub fn opens(&self) -> u64 {
        self.opens
    }

    /// The device's input format while it is open.
    pub fn input_format(&self) -> Option<QueueFormat> {
        self.device.as_ref().map(M2mDevice::input_format)
    }

    /// The controls the driver took, while it is open.
    pub fn controls_set(&self) -> Vec<(u32, i32)> {
        self.device
            .as_ref()
            .map_or_else(Vec::new, |d| d.controls_set().to_vec())
    }

    /// Encodes `picture` (a key frame if `key`) and returns its coded bytes. On a device
    /// failure the device is closed; the next call opens it again.
    pub fn encode(&mut self, picture: &Picture, key: bool) -> Result<Vec<u8>, String> {
        let device = match &mut self.device {
            Some(device) => device,
            None => {
                if self.last_open.elapsed() < REOPEN_GAP {
                    return Err(format!(
                        "{}: waiting to open the encoder again",
                        self.path.display()
                    ));
                }
                self.last_open = Instant::now();
                self.opens += 1;
                let device = M2mDevice::open(&self.path, &self.setup)
                    .map_err(|e| format!("{e}; trying again in a second"))?;
                self.device.insert(device)
            }
        };
        if key {
            // A button control: the driver has it or not; without it the periodic IDR
            // pictures serve the viewer a little later.
            let _ = device.set_control(sys::V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME, 1);
        }
        let (input, format) = (self.setup.input, device.input_format());
        match device.process_with(|buf| lay_out(picture, input, &format, buf), self.deadline) {
            Ok(coded) => Ok(coded.data.to_vec()),
            Err(e @ M2mError::Input { .. }) => Err(e.to_string()),
            Err(e) => {
                self.device = None;
                Err(format!("{e}; the encoder is opened again"))
            }
        }
    }
}

/// What the hardware stage is set to.
#[derive(Debug, Clone)]
pub struct HardwareSettings {
    /// The encoder node and the input format it takes ([`find_h264_node`]).
    pub node: M2mNode,
    pub input: u32,
    /// Bits per second; `None`: [`pacing::default_bitrate`] of the picture size.
    pub bitrate: Option<u32>,
    /// The frame rate asked for (`--fps`), before [`pacing::fps_cap`].
    pub fps: u32,
}

/// The stage for one picture size: the device, what was decided for it, and the
/// stream's parameter sets.
pub struct HardwareStage {
    encoder: VideoEncoder,
    node: String,
    width: u16,
    height: u16,
    fps: u32,
    bitrate: u32,
    pacer: Pacer,
    publisher: AnnexBPublisher,
}

impl HardwareStage {
    /// Opens the encoder for `width` × `height` with `settings`.
    pub fn new(
        width: u16,
        height: u16,
        settings: &HardwareSettings,
    ) -> Result<HardwareStage, String> {
        let (fps, bitrate) = pacing::rates(width, height, settings.fps, settings.bitrate);
        let setup = M2mSetup {
            input: settings.input,
            output: H264,
            width: u32::from(width),
            height: u32::from(height),
            input_buffers: BUFFERS,
            output_buffers: BUFFERS,
            input_memory: InputMemory::Mmap,
            controls: h264_controls(width, height, fps, bitrate),
        };
        let encoder = VideoEncoder::open(&settings.node.path, setup).map_err(|e| e.to_string())?;
        if let Some(f) = encoder.input_format() {
            if f.width < u32::from(width) || f.height < u32::from(height) {
                return Err(format!(
                    "{} encodes at most {}x{}, not {width}x{height}: a smaller --size \
                     gets /stream.mp4 in hardware, or --h264-encoder software",
                    settings.node.path.display(),
                    f.width,
                    f.height
                ));
            }
        }
        Ok(HardwareStage {
            encoder,
            node: settings.node.describe(),
            width,
            height,
            fps,
            bitrate,
            pacer: Pacer::new(fps),
            publisher: AnnexBPublisher::new(width, height, fps),
        })
    }
}

impl PictureEncoder for HardwareStage {
    fn size(&self) -> (u16, u16) {
        (self.width, self.height)
    }

    fn describe(&self) -> String {
        let how = format!("in hardware on {}", self.node);
        pacing::describe(self.width, self.height, self.fps, self.bitrate, &how)
    }

    fn due(&self, made: Instant) -> bool {
        self.pacer.due(made)
    }

    fn encode(&mut self, picture: &Picture, made: Instant, h264: &H264Slot) -> Result<(), String> {
        let key = self.pacer.key_wanted(h264);
        self.pacer.encoding(made);
        let coded = self.encoder.encode(picture, key).inspect_err(|_| {
            if key {
                // Not granted after all: asked again with a later picture.
                h264.request_key();
            }
        })?;
        self.publisher.publish(&coded, made, h264)?;
        Ok(())
    }
}

/// Starts the stage's thread. It ends when `h264` closes.
pub fn start(
    frames: Arc<FrameSlot>,
    h264: Arc<H264Slot>,
    settings: HardwareSettings,
) -> io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("h264-hardware".into())
        .spawn(move || demand::run(&frames, &h264, |w, h| HardwareStage::new(w, h, &settings)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h264::picture::test_pictures::moving_jpeg;

    const LISTING: &str = include_str!("../../tests/fixtures/pi/bcm2835-codec-encode.txt");

    /// The nodes of the listing, as [`M2mNode::probe`] would find them.
    fn nodes() -> Vec<M2mNode> {
        let mut nodes: Vec<M2mNode> = Vec::new();
        let formats = |rest: &str| -> Vec<u32> {
            rest.split_whitespace()
                .map(|f| fourcc(f.as_bytes().try_into().expect("a four-character code")))
                .collect()
        };
        for line in LISTING.lines() {
            if let Some(rest) = line.strip_prefix("== ") {
                let (path, card) = rest.split_once(' ').unwrap();
                nodes.push(M2mNode {
                    path: PathBuf::from(path),
                    driver: "bcm2835-codec".into(),
                    card: card.into(),
                    mplane: true,
                    output_formats: Vec::new(),
                    capture_formats: Vec::new(),
                });
            } else if let Some(rest) = line.strip_prefix("output: ") {
                nodes.last_mut().unwrap().output_formats = formats(rest);
            } else if let Some(rest) = line.strip_prefix("capture: ") {
                nodes.last_mut().unwrap().capture_formats = formats(rest);
            }
        }
        nodes
    }

    /// One control of the listing: id, range, and its menu's item numbers.
    struct Control {
        id: u32,
        min: i64,
        max: i64,
        menu: Vec<i64>,
    }

    fn controls() -> Vec<Control> {
        let mut out: Vec<Control> = Vec::new();
        for line in LISTING.split("\ncontrols:\n").nth(1).unwrap().lines() {
            let line = line.trim();
            if line.starts_with("==") {
                break;
            }
            if let Some((n, _)) = line
                .split_once(": ")
                .filter(|(n, _)| n.parse::<i64>().is_ok())
            {
                out.last_mut().unwrap().menu.push(n.parse().unwrap());
                continue;
            }
            let Some(id) = line.split_whitespace().nth(1) else {
                continue;
            };
            let id = u32::from_str_radix(id.trim_start_matches("0x"), 16).unwrap();
            let field = |key: &str| {
                line.split_whitespace()
                    .find_map(|w| w.strip_prefix(key))
                    .map(|v| v.parse::<i64>().unwrap())
            };
            out.push(Control {
                id,
                min: field("min=").unwrap_or(0),
                max: field("max=").unwrap_or(1),
                menu: Vec::new(),
            });
        }
        out
    }

    #[test]
    fn the_pi_encoder_node_is_chosen_by_its_formats() {
        let nodes = nodes();
        assert_eq!(nodes.len(), 4);
        let (node, input) = choose_node(&nodes, H264).expect("an H.264 encoder");
        assert_eq!(node.path, PathBuf::from("/dev/video11"));
        assert_eq!(node.card, "bcm2835-codec-encode");
        assert_eq!(input, YU12, "I420 as it is, no interleaving");
        // The decoder takes H.264 in, and the JPEG encoder makes JPEG: neither.
        let others: Vec<M2mNode> = nodes
            .into_iter()
            .filter(|n| n.path != Path::new("/dev/video11"))
            .collect();
        assert!(choose_node(&others, H264).is_none());
        // A node taking NV12 only gets NV12.
        let mut nv12_only = node.clone();
        nv12_only.output_formats = vec![NV12];
        assert_eq!(choose_node(&[nv12_only], H264).unwrap().1, NV12);
    }

    #[test]
    fn controls_follow_size_and_frame_rate_and_fit_the_pi_encoder() {
        let listed = controls();
        assert_eq!(listed.len(), 10);
        let cases = [
            // (width, height, --fps, --h264-bitrate) -> (level, I period, bit rate)
            (
                (1280, 720, 60, None),
                (sys::V4L2_MPEG_VIDEO_H264_LEVEL_4_2, 120, 2_000_000),
            ),
            (
                (1280, 720, 30, None),
                (sys::V4L2_MPEG_VIDEO_H264_LEVEL_4_0, 60, 2_000_000),
            ),
            (
                (1920, 1080, 60, None),
                (sys::V4L2_MPEG_VIDEO_H264_LEVEL_4_0, 60, 4_500_000),
            ),
            (
                (640, 480, 60, None),
                (sys::V4L2_MPEG_VIDEO_H264_LEVEL_4_0, 120, 666_666),
            ),
            (
                (160, 120, 15, Some(1_000)),
                (sys::V4L2_MPEG_VIDEO_H264_LEVEL_4_0, 30, 200_000),
            ),
        ];
        for ((w, h, fps, bitrate), (level, period, bps)) in cases {
            let (fps, bitrate) = pacing::rates(w, h, fps, bitrate);
            let set = h264_controls(w, h, fps, bitrate);
            let value = |id| set.iter().find(|c| c.0 == id).map(|c| c.1);
            let at = format!("{w}x{h} at {fps} fps");
            assert_eq!(
                value(sys::V4L2_CID_MPEG_VIDEO_H264_LEVEL),
                Some(level),
                "{at}"
            );
            assert_eq!(
                value(sys::V4L2_CID_MPEG_VIDEO_H264_I_PERIOD),
                Some(period),
                "{at}"
            );
            assert_eq!(value(sys::V4L2_CID_MPEG_VIDEO_BITRATE), Some(bps), "{at}");
            assert_eq!(
                value(sys::V4L2_CID_MPEG_VIDEO_H264_PROFILE),
                Some(sys::V4L2_MPEG_VIDEO_H264_PROFILE_CONSTRAINED_BASELINE)
            );
            assert_eq!(value(sys::V4L2_CID_MPEG_VIDEO_REPEAT_SEQ_HEADER), Some(1));
            // Every control is one the Pi's encoder has, with a value it takes.
            for (id, v) in set {
                let c = listed.iter().find(|c| c.id == id).unwrap_or_else(|| {
                    panic!("control {id:#x} is not in the Pi encoder's listing")
                });
                assert!((c.min..=c.max).contains(&i64::from(v)), "{id:#x} = {v}");
                assert!(
                    c.menu.is_empty() || c.menu.contains(&i64::from(v)),
                    "{id:#x} = {v}"
                );
            }
        }
        assert!(listed
            .iter()
            .any(|c| c.id == sys::V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME));
    }

    fn picture(w: u16, h: u16) -> Picture {
        Picture::from_jpeg(&moving_jpeg(w, h, 3)).unwrap()
    }

    /// The format the Pi's encoder sets for `w` × `h` YU12: rows aligned to 64 bytes,
    /// the height to 16 lines, the size from both (the driver's get_bytesperline and
    /// get_sizeimage).
    fn pi_format(w: u32, h: u32) -> QueueFormat {
        let bpl = w.next_multiple_of(64);
        let rows = h.next_multiple_of(16);
        QueueFormat {
            fourcc: YU12,
            width: w,
            height: rows,
            bytes_per_line: bpl,
            size_image: bpl * rows * 3 / 2,
        }
    }

    #[test]
    fn pictures_are_laid_out_as_the_driver_negotiated() {
        let p = picture(200, 90);
        let (w, h) = (200usize, 90usize);
        let f = pi_format(200, 90);
        let (bpl, rows) = (256usize, 96usize);
        let mut buf = vec![0xAAu8; f.size_image as usize];
        assert_eq!(lay_out(&p, YU12, &f, &mut buf), Ok(buf.len()));
        let (y, u, v) = (
            &p.yuv[..w * h],
            &p.yuv[w * h..w * h * 5 / 4],
            &p.yuv[w * h * 5 / 4..],
        );
        for row in [0, 45, 89] {
            assert_eq!(&buf[row * bpl..][..w], &y[row * w..][..w], "luma row {row}");
            assert!(buf[row * bpl + w..(row + 1) * bpl].iter().all(|&b| b == 16));
        }
        assert!(
            buf[90 * bpl..96 * bpl].iter().all(|&b| b == 16),
            "black below"
        );
        let (u_at, v_at) = (bpl * rows, bpl * rows * 5 / 4);
        for row in [0, 44] {
            assert_eq!(
                &buf[u_at + row * bpl / 2..][..w / 2],
                &u[row * w / 2..][..w / 2]
            );
            assert_eq!(
                &buf[v_at + row * bpl / 2..][..w / 2],
                &v[row * w / 2..][..w / 2]
            );
        }
        assert!(buf[u_at + 45 * bpl / 2..v_at].iter().all(|&b| b == 128));

        // NV12: U and V interleaved after the luma.
        let f = QueueFormat { fourcc: NV12, ..f };
        assert_eq!(lay_out(&p, NV12, &f, &mut buf), Ok(buf.len()));
        let uv = &buf[bpl * rows..];
        assert_eq!((uv[0], uv[1]), (u[0], v[0]));
        assert_eq!((uv[bpl + 2], uv[bpl + 3]), (u[w / 2 + 1], v[w / 2 + 1]));

        // What cannot be: a larger picture, a short buffer, an unknown layout.
        assert!(lay_out(&picture(320, 90), YU12, &f, &mut buf).is_err());
        assert!(lay_out(&p, YU12, &f, &mut buf[..1000]).is_err());
        assert!(lay_out(&p, fourcc(b"RGB3"), &f, &mut buf).is_err());
        // A driver that reports nonsense sizes gets an error, not a panic.
        let silly = QueueFormat {
            bytes_per_line: 0,
            size_image: u32::MAX,
            ..f
        };
        assert!(lay_out(&p, YU12, &silly, &mut buf).is_err());
    }
}
