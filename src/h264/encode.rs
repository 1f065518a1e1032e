//! The software H.264 stage: while an H.264 viewer exists, takes the newest frames from
//! the [`FrameSlot`], decodes their JPEG to I420 and encodes them with OpenH264 into the
//! [`H264Slot`].
//!
//! * Only while a viewer exists: with none, the stage sleeps and holds no encoder, and
//!   its interest in frames ends, so an idle camera can stop too.
//! * Newest wins: the stage asks the frame slot for the newest frame each time; frames
//!   that arrive while it encodes are passed by (counted as skipped), never queued.
//! * Settings: constrained baseline profile (what every browser and phone decodes);
//!   parameter sets before every IDR picture (OpenH264 writes them with each one, and
//!   the stage falls back to the last ones if not); an IDR picture every 2 × fps frames,
//!   and one more when a viewer joins, at most one per [`KEY_SPACING`]; the frame rate
//!   capped at 60 up to 1280×720 and 30 above; the bit rate from `--h264-bitrate`, by
//!   default 2 Mb/s at 1280×720 scaled by picture area, never below 200 kb/s.
//! * Timestamps are the frames' [`made`](crate::frame::Frame::made) times.
//!
//! OpenH264 is built from source by the `openh264` crate (BSD-2-Clause, as is OpenH264).
//! Cisco's patent licence for H.264 covers only the binary library that Cisco itself
//! builds and distributes; a build from source carries no such licence. For users who
//! want that coverage, builds with the cargo feature `openh264-library` can load
//! Cisco's prebuilt library at run time instead (`--openh264-library PATH`).
//!
//! The seam for the Pi's hardware encoder: it will take the camera's raw buffers, not
//! JPEG, and publish into the same [`H264Slot`] through [`H264Slot::publish`]; nothing
//! past the slot changes.

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, IntraFramePeriod, Profile,
    RateControlMode, SpsPpsStrategy, UsageType,
};
use openh264::formats::YUVSlices;
use openh264::{OpenH264API, Timestamp};
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

use super::nal;
use super::slot::{H264Slot, StreamConfig};
use crate::frame::Frame;
use crate::ratelog::{RateLimit, DEFAULT_INTERVAL};
use crate::slot::{FrameSlot, Next};

/// The least time between two key frames asked for by joining viewers.
pub const KEY_SPACING: Duration = Duration::from_millis(500);

/// The bit rate at 1280×720 when none is set.
pub const DEFAULT_BITRATE_720P: u32 = 2_000_000;

/// The least bit rate, set or scaled.
pub const MIN_BITRATE: u32 = 200_000;

/// Pixels of 1280×720: up to this, up to 60 frames per second.
const PIXELS_720P: u64 = 1280 * 720;

static ENCODER_FAILED: RateLimit = RateLimit::new(DEFAULT_INTERVAL);
static BAD_PICTURE: RateLimit = RateLimit::new(DEFAULT_INTERVAL);

/// What the stage is set to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EncodeSettings {
    /// Bits per second; `None`: [`default_bitrate`] of the picture size.
    pub bitrate: Option<u32>,
    /// The frame rate asked for (`--fps`), before [`fps_cap`].
    pub fps: u32,
    /// Cisco's prebuilt OpenH264 library to load instead of the built-in one.
    pub library: Option<PathBuf>,
}

/// The bit rate for a picture of `width` × `height` when none is set: 2 Mb/s at
/// 1280×720, in proportion to the area, at least [`MIN_BITRATE`].
pub fn default_bitrate(width: u16, height: u16) -> u32 {
    let pixels = u64::from(width) * u64::from(height);
    let scaled = u64::from(DEFAULT_BITRATE_720P) * pixels / PIXELS_720P;
    (scaled.min(u64::from(u32::MAX)) as u32).max(MIN_BITRATE)
}

/// The most frames per second encoded at this size: 60 up to 1280×720, 30 above.
pub fn fps_cap(width: u16, height: u16) -> u32 {
    if u64::from(width) * u64::from(height) <= PIXELS_720P {
        60
    } else {
        30
    }
}

/// Whether this build can load OpenH264 from a file (cargo feature `openh264-library`).
pub const CAN_LOAD_LIBRARY: bool = cfg!(feature = "openh264-library");

/// Starts the stage's thread. It ends when `h264` closes.
pub fn start(
    frames: Arc<FrameSlot>,
    h264: Arc<H264Slot>,
    settings: EncodeSettings,
) -> std::io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("h264-encode".into())
        .spawn(move || run(&frames, &h264, &settings))
}

fn run(frames: &FrameSlot, h264: &H264Slot, settings: &EncodeSettings) {
    while !h264.is_closed() {
        if !h264.wait_for_viewers(Duration::from_secs(1)) {
            continue;
        }
        let _watch = frames.watch();
        serve_viewers(frames, h264, settings);
        // Nobody watches: what the slot holds is stale for the next viewer.
        h264.clear();
    }
}

/// Encodes while viewers exist.
fn serve_viewers(frames: &FrameSlot, h264: &H264Slot, settings: &EncodeSettings) {
    let mut stage: Option<Stage> = None;
    let mut seen = 0;
    while h264.viewers() > 0 && !h264.is_closed() {
        let frame = match frames.next_after(seen, Duration::from_secs(1)) {
            Next::Frame(frame) => frame,
            Next::TimedOut => continue,
            Next::Closed => return,
        };
        if seen > 0 && frame.seq() > seen + 1 {
            h264.count_skipped(frame.seq() - seen - 1);
        }
        seen = frame.seq();
        let Some(picture) = Picture::decode(&frame) else {
            continue;
        };
        if stage
            .as_ref()
            .is_none_or(|s| (s.width, s.height) != (picture.width, picture.height))
        {
            match Stage::new(picture.width, picture.height, settings) {
                Ok(s) => {
                    log::info!(
                        "H.264: encoding {}x{} at up to {} fps, {} kb/s",
                        s.width,
                        s.height,
                        s.fps,
                        s.bitrate / 1000
                    );
                    stage = Some(s);
                }
                Err(e) => {
                    crate::warn_limited!(ENCODER_FAILED, "H.264: cannot start OpenH264: {e}");
                    thread::sleep(Duration::from_secs(1));
                    continue;
                }
            }
        }
        let stage = stage.as_mut().expect("made just now");
        if !stage.due(frame.made()) {
            h264.count_skipped(1);
            continue;
        }
        if let Err(e) = stage.encode(&picture, frame.made(), h264) {
            crate::warn_limited!(ENCODER_FAILED, "H.264: encoding failed: {e}");
        }
    }
}

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
    fn decode(frame: &Frame) -> Option<Picture> {
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

/// An OpenH264 encoder for one picture size, with what the stage decided for it.
pub struct Stage {
    encoder: Encoder,
    pub width: u16,
    pub height: u16,
    pub fps: u32,
    pub bitrate: u32,
    /// When the first picture was encoded: timestamps count from here.
    epoch: Option<Instant>,
    last: Option<Instant>,
    last_forced_key: Option<Instant>,
    /// The parameter sets of the last IDR picture.
    sets: Option<(Vec<u8>, Vec<u8>)>,
}

impl Stage {
    /// An encoder for `width` × `height` (even numbers) with `settings`.
    pub fn new(width: u16, height: u16, settings: &EncodeSettings) -> Result<Stage, String> {
        let fps = settings.fps.clamp(1, fps_cap(width, height));
        let bitrate = settings
            .bitrate
            .unwrap_or_else(|| default_bitrate(width, height))
            .max(MIN_BITRATE);
        let config = EncoderConfig::new()
            .profile(Profile::Baseline)
            .usage_type(UsageType::CameraVideoRealTime)
            .rate_control_mode(RateControlMode::Bitrate)
            .bitrate(BitRate::from_bps(bitrate))
            .max_frame_rate(FrameRate::from_hz(fps as f32))
            .intra_frame_period(IntraFramePeriod::from_num_frames(2 * fps))
            .sps_pps_strategy(SpsPpsStrategy::ConstantId)
            .skip_frames(true)
            .complexity(Complexity::Low)
            .num_threads(1);
        let encoder =
            Encoder::with_api_config(api(settings)?, config).map_err(|e| e.to_string())?;
        Ok(Stage {
            encoder,
            width,
            height,
            fps,
            bitrate,
            epoch: None,
            last: None,
            last_forced_key: None,
            sets: None,
        })
    }

    /// Whether a picture made at `made` keeps to the frame rate cap (a little early
    /// is fine: frames do not arrive to the microsecond).
    pub fn due(&self, made: Instant) -> bool {
        let interval = Duration::from_secs(1) / self.fps;
        self.last
            .is_none_or(|last| made.saturating_duration_since(last) >= interval * 9 / 10)
    }

    /// Encodes `picture`, made at `made`, and publishes it into `h264`; a viewer's
    /// request for a key frame is granted here, at most one per [`KEY_SPACING`].
    pub fn encode(
        &mut self,
        picture: &Picture,
        made: Instant,
        h264: &H264Slot,
    ) -> Result<(), String> {
        if h264.take_key_request() {
            if self
                .last_forced_key
                .is_none_or(|at| at.elapsed() >= KEY_SPACING)
            {
                self.encoder.force_intra_frame();
                self.last_forced_key = Some(Instant::now());
            } else {
                // Too soon after the last one: asked again with a later picture.
                h264.request_key();
            }
        }
        let stream = self.encode_annex_b(picture, made)?;
        let coded = nal::picture(&stream);
        if !coded.has_slice {
            return Ok(());
        }
        let config = if coded.key {
            if let (Some(sps), Some(pps)) = (&coded.sps, &coded.pps) {
                self.sets = Some((sps.clone(), pps.clone()));
            }
            let (sps, pps) = self
                .sets
                .clone()
                .ok_or("an IDR picture came without parameter sets")?;
            Some(StreamConfig {
                width: self.width,
                height: self.height,
                fps: self.fps,
                sps,
                pps,
            })
        } else {
            None
        };
        h264.publish(coded.key, made, coded.sample, config)
            .map_err(|e| format!("{e:?}"))?;
        Ok(())
    }

    /// Encodes `picture` to Annex B bytes (every NAL unit behind a start code).
    pub fn encode_annex_b(&mut self, picture: &Picture, made: Instant) -> Result<Vec<u8>, String> {
        let (w, h) = (usize::from(picture.width), usize::from(picture.height));
        if (picture.width, picture.height) != (self.width, self.height) {
            return Err(format!(
                "a {w}x{h} picture for a {}x{} encoder",
                self.width, self.height
            ));
        }
        let (y, chroma) = picture.yuv.split_at(w * h);
        let (u, v) = chroma.split_at(w * h / 4);
        let slices = YUVSlices::new((y, u, v), (w, h), (w, w / 2, w / 2));
        let epoch = *self.epoch.get_or_insert(made);
        let ms = made.saturating_duration_since(epoch).as_millis() as u64;
        self.last = Some(made);
        let stream = self
            .encoder
            .encode_at(&slices, Timestamp::from_millis(ms))
            .map_err(|e| e.to_string())?;
        Ok(stream.to_vec())
    }
}

/// The OpenH264 to use: the built-in one, or the library `settings` names.
fn api(settings: &EncodeSettings) -> Result<OpenH264API, String> {
    match &settings.library {
        None => Ok(OpenH264API::from_source()),
        #[cfg(feature = "openh264-library")]
        Some(path) => OpenH264API::from_blob_path(path)
            .map_err(|e| format!("cannot load {}: {e}", path.display())),
        #[cfg(not(feature = "openh264-library"))]
        Some(path) => Err(format!(
            "cannot load {}: this build has no run-time loading (cargo feature openh264-library)",
            path.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A moving picture as JPEG: a gradient with a bright square that moves a few
    /// pixels each frame.
    fn jpeg(width: u16, height: u16, frame: u64) -> Vec<u8> {
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

    fn at_30_fps() -> EncodeSettings {
        EncodeSettings {
            fps: 30,
            ..EncodeSettings::default()
        }
    }

    #[test]
    fn bit_rate_and_frame_rate_follow_the_picture_size() {
        assert_eq!(default_bitrate(1280, 720), 2_000_000);
        assert_eq!(default_bitrate(1920, 1080), 4_500_000);
        assert_eq!(default_bitrate(160, 120), MIN_BITRATE);
        assert_eq!(fps_cap(1280, 720), 60);
        assert_eq!(fps_cap(1920, 1080), 30);
    }

    #[test]
    fn a_jpeg_becomes_an_even_sized_limited_range_i420_picture() {
        let p = Picture::from_jpeg(&jpeg(65, 49, 1)).unwrap();
        assert_eq!((p.width, p.height), (64, 48));
        assert_eq!(p.yuv.len(), 64 * 48 * 3 / 2);
        assert!(p.yuv.iter().all(|&v| (16..=240).contains(&v)));
        assert_eq!(limited_luma(0), 16);
        assert_eq!(limited_luma(255), 235);
        assert_eq!(limited_chroma(128), 128);
        assert!(Picture::from_jpeg(b"not a jpeg").is_err());
    }

    #[test]
    fn openh264_makes_constrained_baseline_with_parameter_sets_before_every_idr() {
        let settings = at_30_fps();
        let mut stage = Stage::new(320, 240, &settings).unwrap();
        let start = Instant::now();
        let mut keys = Vec::new();
        for n in 0..130u64 {
            let picture = Picture::from_jpeg(&jpeg(320, 240, n)).unwrap();
            let made = start + Duration::from_millis(n * 1000 / 30);
            let coded = nal::picture(&stage.encode_annex_b(&picture, made).unwrap());
            assert!(coded.has_slice, "picture {n} was coded");
            if coded.key {
                keys.push(n);
                let sps = coded.sps.expect("SPS before the IDR picture");
                assert!(coded.pps.is_some(), "PPS before the IDR picture");
                assert_eq!(sps[1], 66, "baseline profile");
                assert_eq!(sps[2] & 0x40, 0x40, "constraint_set1: constrained baseline");
            } else {
                assert!(coded.sps.is_none() && coded.pps.is_none());
            }
        }
        assert_eq!(keys, [0, 60, 120], "an IDR picture every 2 x fps frames");
    }

    #[test]
    fn a_joining_viewer_gets_a_key_frame_at_most_every_half_second() {
        let settings = at_30_fps();
        let mut stage = Stage::new(160, 120, &settings).unwrap();
        let slot = H264Slot::new();
        let picture = Picture::from_jpeg(&jpeg(160, 120, 0)).unwrap();
        let start = Instant::now();
        let at = |n: u64| start + Duration::from_millis(n * 33);
        stage.encode(&picture, at(0), &slot).unwrap();
        stage.encode(&picture, at(1), &slot).unwrap();
        let key_of_last =
            |slot: &H264Slot| match slot.next_after(slot.encoded() - 1, Duration::ZERO) {
                crate::h264::slot::Next::Unit(u) => u.is_key(),
                other => panic!("{other:?}"),
            };
        assert!(!key_of_last(&slot));
        let _viewer = slot.watch();
        stage.encode(&picture, at(2), &slot).unwrap();
        assert!(key_of_last(&slot), "a key frame for the new viewer");
        let _second = slot.watch();
        stage.encode(&picture, at(3), &slot).unwrap();
        assert!(!key_of_last(&slot), "not again within half a second");
        assert!(slot.take_key_request(), "the request waits for later");
    }
}
