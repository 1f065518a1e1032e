//! The software H.264 stage: while an H.264 viewer exists ([`super::demand`]), takes the
//! newest frames from the [`FrameSlot`], decodes their JPEG to I420
//! ([`super::picture`]) and encodes them with OpenH264 into the [`H264Slot`].
//!
//! * Settings ([`super::pacing`], shared with the hardware stage): constrained baseline profile (what every browser and phone decodes);
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

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Instant;

use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, IntraFramePeriod, Profile,
    RateControlMode, SpsPpsStrategy, UsageType,
};
use openh264::formats::YUVSlices;
use openh264::{OpenH264API, Timestamp};

use super::demand::{self, PictureEncoder};
use super::pacing::{self, Pacer};
use super::picture::Picture;
use super::publish::AnnexBPublisher;
use super::slot::H264Slot;
use crate::slot::FrameSlot;

/// What the stage is set to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EncodeSettings {
    /// Bits per second; `None`: [`pacing::default_bitrate`] of the picture size.
    pub bitrate: Option<u32>,
    /// The frame rate asked for (`--fps`), before [`pacing::fps_cap`].
    pub fps: u32,
    /// Cisco's prebuilt OpenH264 library to load instead of the built-in one.
    pub library: Option<PathBuf>,
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
        .spawn(move || demand::run(&frames, &h264, |w, h| Stage::new(w, h, &settings)))
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
    pacer: Pacer,
    publisher: AnnexBPublisher,
}

impl Stage {
    /// An encoder for `width` × `height` (even numbers) with `settings`.
    pub fn new(width: u16, height: u16, settings: &EncodeSettings) -> Result<Stage, String> {
        let (fps, bitrate) = pacing::rates(width, height, settings.fps, settings.bitrate);
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
            pacer: Pacer::new(fps),
            publisher: AnnexBPublisher::new(width, height, fps),
        })
    }

    /// Encodes `picture`, made at `made`, and publishes it into `h264`; a viewer's
    /// request for a key frame is granted here, at most one per [`pacing::KEY_SPACING`].
    pub fn encode(
        &mut self,
        picture: &Picture,
        made: Instant,
        h264: &H264Slot,
    ) -> Result<(), String> {
        if self.pacer.key_wanted(h264) {
            self.encoder.force_intra_frame();
        }
        let stream = self.encode_annex_b(picture, made)?;
        self.publisher.publish(&stream, made, h264)?;
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
        self.pacer.encoding(made);
        let stream = self
            .encoder
            .encode_at(&slices, Timestamp::from_millis(ms))
            .map_err(|e| e.to_string())?;
        Ok(stream.to_vec())
    }
}

impl PictureEncoder for Stage {
    fn size(&self) -> (u16, u16) {
        (self.width, self.height)
    }

    fn describe(&self) -> String {
        let how = "in software (OpenH264)";
        pacing::describe(self.width, self.height, self.fps, self.bitrate, how)
    }

    fn due(&self, made: Instant) -> bool {
        self.pacer.due(made)
    }

    fn encode(&mut self, picture: &Picture, made: Instant, h264: &H264Slot) -> Result<(), String> {
        Stage::encode(self, picture, made, h264)
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
    use std::time::Duration;

    use super::*;
    use crate::h264::nal;
    use crate::h264::picture::test_pictures::moving_jpeg;

    fn at_30_fps() -> EncodeSettings {
        EncodeSettings {
            fps: 30,
            ..EncodeSettings::default()
        }
    }

    #[test]
    fn openh264_makes_constrained_baseline_with_parameter_sets_before_every_idr() {
        let settings = at_30_fps();
        let mut stage = Stage::new(320, 240, &settings).unwrap();
        let start = Instant::now();
        let mut keys = Vec::new();
        for n in 0..130u64 {
            let picture = Picture::from_jpeg(&moving_jpeg(320, 240, n)).unwrap();
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
        let picture = Picture::from_jpeg(&moving_jpeg(160, 120, 0)).unwrap();
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
