//! Writes the live fragmented MP4 (`/stream.mp4`) to one viewer, on that viewer's own
//! thread.
//!
//! The viewer registers with the [`H264Slot`] (which asks the encoder for a key frame),
//! waits for an IDR picture, and gets the initialisation segment and that picture at
//! once, then one fragment per access unit, in order. Writes block only this thread
//! (up to the socket's write timeout), so a slow viewer never slows another; it holds
//! no queue, only its place in the slot's current group of pictures.
//!
//! Jump to live: when the unit just written was captured more than [`LIVE_LAG`] before
//! the newest one, the viewer's socket is behind; the viewer skips to the next IDR
//! picture. Its decode times go on from where they were (one frame's duration after the
//! last fragment, not the skipped time), so the player's buffer has no gap to stall on
//! and it simply shows the newer picture next. A new parameter set (the picture size
//! changed) needs a new initialisation segment: the stream ends, and players reconnect.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::stream::{describe_end, extra_headers, log_start, stream_head, EndReason};
use super::AppState;
use crate::h264::fmp4::{self, SampleTiming, TIMESCALE};
use crate::h264::slot::{AccessUnit, H264Slot, Next};
use crate::ratelog::RateLimit;

/// How far behind the newest picture a viewer may fall before it skips to the next
/// IDR picture.
pub const LIVE_LAG: Duration = Duration::from_secs(1);

/// How long a new viewer waits for the first picture before it is answered 503.
pub const FIRST_PICTURE_WAIT: Duration = Duration::from_secs(10);

/// How long the stream may go without a picture before it ends (the source stalled
/// for good; MP4 has no way to repeat a picture the way MJPEG does).
pub const STALL: Duration = Duration::from_secs(30);

static STOPPED: RateLimit = RateLimit::new(Duration::from_secs(1));

/// The response head of the stream.
pub fn response_head(extra: &str, codec: &str) -> Vec<u8> {
    stream_head(&format!("video/mp4; codecs=\"{codec}\""), extra)
}

/// The answer when no picture came in time.
const NO_PICTURE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
    Content-Type: text/plain; charset=utf-8\r\n\
    Retry-After: 5\r\n\
    Connection: close\r\n\
    Content-Length: 80\r\n\r\n\
    no H.264 picture yet: the source or the encoder is not running; try again shortly\n";

/// Counts of one viewer's stream.
#[derive(Debug, Default)]
pub struct Mp4Outcome {
    /// Fragments written.
    pub sent: u64,
    /// Access units passed by (jumps to live, and units gone before they were sent).
    pub skipped: u64,
    /// Jumps to live.
    pub jumps: u64,
}

/// Runs the stream for `peer` on `out` until it ends, and logs how it went.
pub fn serve(out: &mut dyn Write, peer: SocketAddr, target: &str, state: &AppState) {
    let Some(h264) = &state.h264 else {
        return;
    };
    let started = Instant::now();
    let _watch = h264.watch();
    let first = match h264.next_after(0, FIRST_PICTURE_WAIT) {
        Next::Unit(unit) => unit,
        Next::TimedOut => {
            let _ = out.write_all(NO_PICTURE);
            return;
        }
        Next::Closed => return,
    };
    log_start(peer, target, state);
    let head = response_head(&extra_headers(state), &fmp4::codec_string(first.config()));
    let mut outcome = Mp4Outcome::default();
    let end = match out.write_all(&head) {
        Err(e) => EndReason::Client(e),
        Ok(()) => match write_fragments(out, h264, first, &mut outcome) {
            Ok(end) => end,
            Err(e) => EndReason::Client(e),
        },
    };
    if let Some(held) = STOPPED.admit() {
        log::info!(
            "{peer} stopped watching {target} after {:.1} s: {} pictures sent, {} skipped \
             ({} jumps to live) ({}){held}",
            started.elapsed().as_secs_f64(),
            outcome.sent,
            outcome.skipped,
            outcome.jumps,
            describe_end(&end),
        );
    }
}

/// The longest step between two decode times, in halves of a frame's duration: one and
/// a half frames, well under the two at which players see a discontinuity (exactly two
/// can round to just over two in a player's microseconds).
const MAX_STEP_HALF_FRAMES: u64 = 3;

/// A viewer's decode timeline.
struct Timeline {
    sequence: u32,
    decode_time: u64,
    last: Option<(u64, Instant)>,
    frame_ticks: u32,
}

impl Timeline {
    fn new(fps: u32) -> Timeline {
        Timeline {
            sequence: 0,
            decode_time: 0,
            last: None,
            frame_ticks: TIMESCALE / fps.max(1),
        }
    }

    /// The timing of `unit`: its capture time's distance from the previous unit when
    /// that was the one just before it, else one frame's duration (after a skip).
    ///
    /// A step is at most [`MAX_STEP_HALF_FRAMES`] half frames: Media Source Extensions
    /// take a decode time more than twice the last sample's duration after the last one
    /// for a discontinuity and drop every picture up to the next IDR picture (W3C Media
    /// Source Extensions, the coded frame processing algorithm), which a busy encoder's
    /// skipped frames would otherwise cause. The picture after a longer gap just comes
    /// sooner on the player's timeline.
    fn next(&mut self, unit: &AccessUnit) -> SampleTiming {
        if let Some((seq, at)) = self.last {
            let step = if unit.seq() == seq + 1 {
                let gap = unit.captured().saturating_duration_since(at);
                let ticks = gap.as_micros() as u64 * u64::from(TIMESCALE) / 1_000_000;
                ticks.clamp(1, MAX_STEP_HALF_FRAMES * u64::from(self.frame_ticks) / 2)
            } else {
                u64::from(self.frame_ticks)
            };
            self.decode_time += step;
        }
        self.sequence = self.sequence.wrapping_add(1);
        self.last = Some((unit.seq(), unit.captured()));
        SampleTiming {
            sequence: self.sequence,
            decode_time: self.decode_time,
            duration: self.frame_ticks,
        }
    }
}

/// Writes the initialisation segment and `first`, then the fragments that follow.
fn write_fragments(
    out: &mut dyn Write,
    h264: &H264Slot,
    first: Arc<AccessUnit>,
    outcome: &mut Mp4Outcome,
) -> io::Result<EndReason> {
    let config = first.config().clone();
    out.write_all(&fmp4::init_segment(&config))?;
    let mut timeline = Timeline::new(config.fps);
    let mut unit = first;
    loop {
        let timing = timeline.next(&unit);
        out.write_all(&fmp4::fragment_head(
            timing,
            unit.is_key(),
            unit.sample().len(),
        ))?;
        out.write_all(unit.sample())?;
        out.flush()?;
        outcome.sent += 1;
        let seen = unit.seq();
        let behind = h264
            .newest_captured()
            .is_some_and(|newest| newest.saturating_duration_since(unit.captured()) > LIVE_LAG);
        let next = if behind {
            outcome.jumps += 1;
            h264.next_key_after(seen, STALL)
        } else {
            h264.next_after(seen, STALL)
        };
        unit = match next {
            Next::Unit(next) => next,
            Next::TimedOut => {
                return Ok(EndReason::Client(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no picture for 30 s",
                )))
            }
            Next::Closed => return Ok(EndReason::ServerStopping),
        };
        outcome.skipped += unit.seq() - seen - 1;
        if !Arc::ptr_eq(unit.config(), &config) {
            return Ok(EndReason::Client(io::Error::other(
                "the picture size changed: the player must start again",
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h264::slot::StreamConfig;

    fn slot_with(units: &[(bool, u64)]) -> (H264Slot, Instant) {
        let slot = H264Slot::new();
        let start = Instant::now();
        for &(key, ms) in units {
            let config = key.then(|| StreamConfig {
                width: 16,
                height: 16,
                fps: 25,
                sps: vec![0x67, 0x42, 0xC0, 0x0A],
                pps: vec![0x68, 0xCE],
            });
            slot.publish(
                key,
                start + Duration::from_millis(ms),
                vec![0, 0, 0, 1, 0x41],
                config,
            )
            .unwrap();
        }
        (slot, start)
    }

    fn unit(next: Next) -> Arc<AccessUnit> {
        match next {
            Next::Unit(u) => u,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn decode_times_follow_capture_times() {
        let (slot, _) = slot_with(&[(true, 0), (false, 40), (false, 100)]);
        let mut t = Timeline::new(25);
        let times: Vec<SampleTiming> = (0..3)
            .map(|seen| t.next(&unit(slot.next_after(seen, Duration::ZERO))))
            .collect();
        // 40 ms is 3600 ticks, 60 ms 5400.
        let decode: Vec<u64> = times.iter().map(|t| t.decode_time).collect();
        assert_eq!(decode, [0, 3600, 9000]);
        assert_eq!(
            times.iter().map(|t| t.sequence).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert!(
            times.iter().all(|t| t.duration == 3600),
            "one frame at 25 fps"
        );
    }

    #[test]
    fn a_long_gap_is_at_most_one_and_a_half_frames_on_the_timeline() {
        // 40 ms frames; 200 ms pass before the third unit (the encoder was busy).
        let (slot, _) = slot_with(&[(true, 0), (false, 40), (false, 240), (false, 280)]);
        let mut t = Timeline::new(25);
        let decode: Vec<u64> = (0..4)
            .map(|seen| {
                t.next(&unit(slot.next_after(seen, Duration::ZERO)))
                    .decode_time
            })
            .collect();
        assert_eq!(decode, [0, 3600, 3600 + 5400, 3600 + 5400 + 3600]);
    }

    #[test]
    fn a_skip_does_not_carry_the_skipped_time_into_the_timeline() {
        let (slot, _) = slot_with(&[(true, 0), (false, 40), (false, 80), (true, 9000)]);
        let mut t = Timeline::new(25);
        let first = unit(slot.next_key_after(0, Duration::ZERO));
        // The slot holds only the group of the IDR picture at 9 s.
        assert_eq!(first.seq(), 4);
        let (old, _) = slot_with(&[(true, 0)]);
        let before = unit(old.next_after(0, Duration::ZERO));
        assert_eq!(t.next(&before).decode_time, 0);
        let after = t.next(&first);
        assert_eq!(after.decode_time, 3600, "one frame later, not 9 s");
    }
}
