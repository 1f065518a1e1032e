//! When an H.264 stage works: only while a viewer of `/stream.mp4` exists. This module
//! owns that loop for both stages (software and hardware): it waits for a viewer, holds
//! the frame slot's interest while one watches, takes the newest frame each time (frames
//! that arrive while a picture is encoded are passed by and counted as skipped), decodes
//! it, and hands it to an encoder opened for its size. With no viewer left the encoder
//! is dropped and the slot cleared, so the next viewer starts fresh.

use std::time::{Duration, Instant};

use super::picture::Picture;
use super::slot::H264Slot;
use crate::ratelog::{RateLimit, DEFAULT_INTERVAL};
use crate::slot::{FrameSlot, Next};

static ENCODER_FAILED: RateLimit = RateLimit::new(DEFAULT_INTERVAL);

/// How long after an encoder failed to open before it is tried again.
const OPEN_RETRY: Duration = Duration::from_secs(1);

/// An encoder for one picture size that publishes into an [`H264Slot`].
pub trait PictureEncoder {
    /// The picture size it encodes.
    fn size(&self) -> (u16, u16);
    /// One line for the log: size, frame rate, bit rate, what encodes.
    fn describe(&self) -> String;
    /// Whether a picture made at `made` keeps to its frame rate.
    fn due(&self, made: Instant) -> bool;
    /// Encodes `picture` and publishes it.
    fn encode(&mut self, picture: &Picture, made: Instant, h264: &H264Slot) -> Result<(), String>;
}

/// Serves `h264`'s viewers from `frames` until `h264` closes, with encoders that
/// `open` makes for a picture size.
pub fn run<E: PictureEncoder>(
    frames: &FrameSlot,
    h264: &H264Slot,
    mut open: impl FnMut(u16, u16) -> Result<E, String>,
) {
    while !h264.is_closed() {
        if !h264.wait_for_viewers(Duration::from_secs(1)) {
            continue;
        }
        let _watch = frames.watch();
        serve_viewers(frames, h264, &mut open);
        // Nobody watches: what the slot holds is stale for the next viewer.
        h264.clear();
    }
}

/// Encodes while viewers exist.
fn serve_viewers<E: PictureEncoder>(
    frames: &FrameSlot,
    h264: &H264Slot,
    open: &mut impl FnMut(u16, u16) -> Result<E, String>,
) {
    let mut encoder: Option<E> = None;
    let mut failed_open: Option<Instant> = None;
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
        let size = (picture.width, picture.height);
        if encoder.as_ref().is_none_or(|e| e.size() != size) {
            encoder = None;
            if failed_open.is_some_and(|at| at.elapsed() < OPEN_RETRY) {
                h264.count_skipped(1);
                continue;
            }
            match open(size.0, size.1) {
                Ok(e) => {
                    log::info!("H.264: encoding {}", e.describe());
                    encoder = Some(e);
                    failed_open = None;
                }
                Err(e) => {
                    crate::warn_limited!(ENCODER_FAILED, "H.264: cannot start the encoder: {e}");
                    failed_open = Some(Instant::now());
                    continue;
                }
            }
        }
        let encoder = encoder.as_mut().expect("opened just now");
        if !encoder.due(frame.made()) {
            h264.count_skipped(1);
            continue;
        }
        if let Err(e) = encoder.encode(&picture, frame.made(), h264) {
            crate::warn_limited!(ENCODER_FAILED, "H.264: encoding failed: {e}");
        }
    }
}
