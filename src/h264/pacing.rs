//! What both H.264 stages decide the same way: the bit rate and frame rate for a picture
//! size, which pictures keep to the frame rate, and when a viewer's request for a key
//! frame is granted.

use std::time::{Duration, Instant};

use super::slot::H264Slot;

/// The least time between two key frames asked for by joining viewers.
pub const KEY_SPACING: Duration = Duration::from_millis(500);

/// The bit rate at 1280×720 when none is set.
pub const DEFAULT_BITRATE_720P: u32 = 2_000_000;

/// The least bit rate, set or scaled.
pub const MIN_BITRATE: u32 = 200_000;

/// Pixels of 1280×720: up to this, up to 60 frames per second.
pub const PIXELS_720P: u64 = 1280 * 720;

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

/// The frame rate and bit rate a stage encodes `width` × `height` with, from the rate
/// asked for (`--fps`) and the bit rate set (`--h264-bitrate`, `None` for the default).
pub fn rates(width: u16, height: u16, fps: u32, bitrate: Option<u32>) -> (u32, u32) {
    let fps = fps.clamp(1, fps_cap(width, height));
    let bitrate = bitrate
        .unwrap_or_else(|| default_bitrate(width, height))
        .max(MIN_BITRATE);
    (fps, bitrate)
}

/// One line for the log about a stage: size, rates, and `how` it encodes.
pub fn describe(width: u16, height: u16, fps: u32, bitrate: u32, how: &str) -> String {
    format!(
        "{width}x{height} at up to {fps} fps, {} kb/s, {how}",
        bitrate / 1000
    )
}

/// Keeps a stage to its frame rate and to one granted key frame per [`KEY_SPACING`].
#[derive(Debug)]
pub struct Pacer {
    fps: u32,
    last: Option<Instant>,
    last_forced_key: Option<Instant>,
}

impl Pacer {
    pub fn new(fps: u32) -> Pacer {
        Pacer {
            fps: fps.max(1),
            last: None,
            last_forced_key: None,
        }
    }

    /// Whether a picture made at `made` keeps to the frame rate (a little early is
    /// fine: frames do not arrive to the microsecond).
    pub fn due(&self, made: Instant) -> bool {
        let interval = Duration::from_secs(1) / self.fps;
        self.last
            .is_none_or(|last| made.saturating_duration_since(last) >= interval * 9 / 10)
    }

    /// Notes that the picture made at `made` is being encoded.
    pub fn encoding(&mut self, made: Instant) {
        self.last = Some(made);
    }

    /// Whether the next picture should be a key frame: a viewer asked for one and the
    /// last granted one is at least [`KEY_SPACING`] old. A request that comes too soon
    /// is put back, to be granted with a later picture.
    pub fn key_wanted(&mut self, h264: &H264Slot) -> bool {
        if !h264.take_key_request() {
            return false;
        }
        if self
            .last_forced_key
            .is_none_or(|at| at.elapsed() >= KEY_SPACING)
        {
            self.last_forced_key = Some(Instant::now());
            true
        } else {
            h264.request_key();
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_rate_and_frame_rate_follow_the_picture_size() {
        assert_eq!(default_bitrate(1280, 720), 2_000_000);
        assert_eq!(default_bitrate(1920, 1080), 4_500_000);
        assert_eq!(default_bitrate(160, 120), MIN_BITRATE);
        assert_eq!(fps_cap(1280, 720), 60);
        assert_eq!(fps_cap(1920, 1080), 30);
        assert_eq!(rates(1920, 1080, 60, None), (30, 4_500_000));
        assert_eq!(rates(640, 480, 0, Some(1)), (1, MIN_BITRATE));
    }

    #[test]
    fn a_key_frame_at_most_every_half_second() {
        let slot = H264Slot::new();
        let mut pacer = Pacer::new(30);
        assert!(!pacer.key_wanted(&slot), "nobody asked");
        let _viewer = slot.watch();
        assert!(pacer.key_wanted(&slot));
        let _second = slot.watch();
        assert!(!pacer.key_wanted(&slot), "not again at once");
        assert!(slot.take_key_request(), "the request waits for later");
    }

    #[test]
    fn pictures_keep_to_the_frame_rate() {
        let mut pacer = Pacer::new(10);
        let start = Instant::now();
        assert!(pacer.due(start));
        pacer.encoding(start);
        assert!(!pacer.due(start + Duration::from_millis(50)));
        assert!(pacer.due(start + Duration::from_millis(95)));
    }
}
