//! The V4L2 source (`--source v4l2:/dev/videoN`): USB webcams and other capture nodes.
//!
//! * Picks the offered format and size nearest to what was asked: MJPEG is passed
//!   through untouched (with the standard Huffman tables added to frames that lack
//!   them); YUYV, UYVY and NV12 go through the JPEG encoder (hardware or software, as
//!   `--encoder` says). Only raw pictures are turned: with `--rotation`, `--hflip` or
//!   `--vflip` a raw format is preferred, and `--rotation 90` and `270` take no other.
//! * Captures only while somebody watches or a snapshot asks, plus a short linger; the
//!   device is closed otherwise.
//! * While the device is open, its controls (brightness, white balance, ...) are on the
//!   [`ControlBoard`], through a file of their own on the same node.
//! * A full-resolution still ([`crate::still`]) is taken between two frames: streaming
//!   stops, the camera switches to its largest size in the same format, one frame is
//!   taken (after two it may still be settling on), and the stream resumes.
//! * When the device vanishes or stops delivering, shows a "no signal" picture, says
//!   why in `/status`, and opens the device again by itself when it is back.

pub mod scan;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::still_jpeg::encode_still;
use super::supervise::{supervise, Ended, Reopen};
use super::{FrameSink, LINGER};
use crate::controls::{Attached, ControlBoard};
use crate::encoder::{JpegEncoder, RawFrame, RawLayout};
use crate::picture::{Settings, Transform};
use crate::ratelog::{self, RateLimit};
use crate::still::Still;
use crate::v4l2::controls::V4l2Controls;
use crate::v4l2::device::{Device, PixFormat, Sizes};
use crate::v4l2::sys::{fourcc, fourcc_name};

/// A wait this long without a frame means the device has stopped delivering.
const FRAME_TIMEOUT: Duration = Duration::from_secs(2);
const TIMEOUTS_BEFORE_LOST: u32 = 3;

/// Buffers kept in flight so the driver never waits for us.
const BUFFERS: u32 = 4;

/// How a captured format is turned into JPEG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handling {
    PassJpeg,
    Encode(RawLayout),
}

/// Formats this source takes, best first.
fn handling(code: u32) -> Option<Handling> {
    match code {
        c if c == fourcc(b"MJPG") || c == fourcc(b"JPEG") => Some(Handling::PassJpeg),
        c if c == fourcc(b"YUYV") => Some(Handling::Encode(RawLayout::Yuyv)),
        c if c == fourcc(b"UYVY") => Some(Handling::Encode(RawLayout::Uyvy)),
        c if c == fourcc(b"NV12") => Some(Handling::Encode(RawLayout::Nv12)),
        _ => None,
    }
}

fn preference(code: u32) -> usize {
    [b"MJPG", b"JPEG", b"YUYV", b"UYVY", b"NV12"]
        .iter()
        .position(|f| fourcc(f) == code)
        .unwrap_or(usize::MAX)
}

/// The size of `sizes` nearest to `want` (by the sum of width and height differences).
fn nearest_size(sizes: &[Sizes], want: (u32, u32)) -> Option<(u32, u32)> {
    let fit = |v: u32, min: u32, max: u32, step: u32| {
        let v = v.clamp(min, max);
        min + (v - min) / step * step
    };
    sizes
        .iter()
        .map(|s| match *s {
            Sizes::Discrete(w, h) => (w, h),
            Sizes::Range { min, max, step } => (
                fit(want.0, min.0, max.0, step.0),
                fit(want.1, min.1, max.1, step.1),
            ),
        })
        .min_by_key(|&(w, h)| w.abs_diff(want.0) + h.abs_diff(want.1))
}

/// The format and size to ask for: nearest size first, then the preferred format;
/// raw formats first when the picture is to be turned (`transform`), and only raw ones
/// for a quarter turn.
fn choose(
    device: &Device,
    want: (u32, u32),
    transform: Transform,
) -> Result<(u32, (u32, u32)), String> {
    let formats = device.formats();
    let mut best: Option<(u32, usize, u32, (u32, u32))> = None;
    for f in &formats {
        let Some(handled) = handling(f.fourcc) else {
            continue;
        };
        let passed = handled == Handling::PassJpeg;
        if passed && transform.quarter_turn() {
            continue;
        }
        let Some(size) = nearest_size(&device.sizes(f.fourcc), want) else {
            continue;
        };
        let distance = size.0.abs_diff(want.0) + size.1.abs_diff(want.1);
        let turned_last = if passed && !transform.is_identity() {
            10
        } else {
            0
        };
        let key = (distance, preference(f.fourcc) + turned_last);
        if best.is_none_or(|b| key < (b.0, b.1)) {
            best = Some((key.0, key.1, f.fourcc, size));
        }
    }
    match best {
        Some((_, _, code, size)) => Ok((code, size)),
        None => {
            let offered: Vec<String> = formats.iter().map(|f| fourcc_name(f.fourcc)).collect();
            if transform.quarter_turn() && formats.iter().any(|f| handling(f.fourcc).is_some()) {
                return Err(format!(
                    "{} offers only JPEG ({}), which is passed on as it comes and cannot be \
                     turned: --rotation {} needs a camera offering YUYV, UYVY or NV12",
                    device.describe(),
                    offered.join(", "),
                    transform.degrees()
                ));
            }
            Err(format!(
                "{} offers no format this source takes (it offers {}; MJPEG, YUYV, UYVY and NV12 are taken)",
                device.describe(),
                if offered.is_empty() { "none".to_string() } else { offered.join(", ") }
            ))
        }
    }
}

/// An opened and configured camera.
struct Camera {
    device: Device,
    format: PixFormat,
    handling: Handling,
}

fn open(path: &Path, settings: Settings) -> Result<Camera, String> {
    let device = Device::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    if !device.capability().is_capture() {
        return Err(format!(
            "{} is not a video capture device",
            device.describe()
        ));
    }
    let want = (settings.width as u32, settings.height as u32);
    let (code, size) = choose(&device, want, settings.transform)?;
    let format = device.set_format(code, size.0, size.1).map_err(|e| {
        format!(
            "{}: cannot set {}: {e}",
            device.describe(),
            fourcc_name(code)
        )
    })?;
    let handling = handling(format.fourcc).ok_or_else(|| {
        format!(
            "{} switched to {}, which this source does not take",
            device.describe(),
            fourcc_name(format.fourcc)
        )
    })?;
    let fps = device.set_frame_rate(settings.fps).ok().flatten();
    let asked = if (format.width, format.height) == want {
        String::new()
    } else {
        format!(" (asked for {}x{}; nearest offered)", want.0, want.1)
    };
    if handling == Handling::PassJpeg && !settings.transform.is_identity() {
        log::warn!(
            "{}: --rotation, --hflip and --vflip do not apply to the JPEG it sends, which \
             is passed on as it comes; ignored",
            device.describe()
        );
    }
    log::info!(
        "{}: {} {}x{}{asked} at {}",
        device.describe(),
        fourcc_name(format.fourcc),
        format.width,
        format.height,
        fps.map_or("the driver's frame rate".to_string(), |f| format!(
            "{f:.1} fps (asked for {})",
            settings.fps
        ))
    );
    Ok(Camera {
        device,
        format,
        handling,
    })
}

/// Why capturing stopped.
enum Stop {
    Stopping,
    Idle,
    Lost(String),
}

/// Captures until a reason to stop; the encoding threads end with it.
fn capture(
    camera: &Camera,
    encoder: &mut JpegEncoder,
    sink: &mut FrameSink,
    settings: Settings,
) -> Stop {
    let stop = capture_frames(camera, encoder, sink, settings);
    encoder.rest();
    stop
}

fn capture_frames(
    camera: &Camera,
    encoder: &mut JpegEncoder,
    sink: &mut FrameSink,
    settings: Settings,
) -> Stop {
    let out = sink.jpeg_out();
    let mut stream = match camera.device.stream(BUFFERS) {
        Ok(s) => s,
        Err(e) => return Stop::Lost(format!("cannot start streaming: {e}")),
    };
    let (w, h) = (camera.format.width, camera.format.height);
    let (Ok(w16), Ok(h16)) = (u16::try_from(w), u16::try_from(h)) else {
        return Stop::Lost(format!("frame size {w}x{h} is too large"));
    };
    match camera.handling {
        Handling::PassJpeg => sink.stats().set_encoder("none (the camera sends JPEG)"),
        Handling::Encode(_) => sink.stats().set_encoder(encoder.describe()),
    }
    let mut silent = 0;
    loop {
        if sink.stopping() {
            return Stop::Stopping;
        }
        if !sink.wanted(LINGER) {
            return Stop::Idle;
        }
        if sink.stills().asked() {
            // The camera changes size only while it does not stream.
            drop(stream);
            let mut lost = None;
            sink.stills().serve(|| {
                let (still, restored) = take_still(camera, settings);
                lost = restored.err();
                still
            });
            if let Some(why) = lost {
                return Stop::Lost(why);
            }
            stream = match camera.device.stream(BUFFERS) {
                Ok(s) => s,
                Err(e) => return Stop::Lost(format!("cannot stream again after a still: {e}")),
            };
        }
        let got = stream.next(FRAME_TIMEOUT, |frame| {
            if frame.damaged || frame.data.is_empty() {
                sink.stats().count_dropped();
                return;
            }
            match camera.handling {
                Handling::PassJpeg => {
                    let jpeg = crate::jpeg::trim_after_eoi(frame.data);
                    let jpeg = crate::jpeg::with_huffman_tables(jpeg);
                    sink.offer_jpeg(&jpeg);
                }
                Handling::Encode(layout) => {
                    let stride = camera.format.bytes_per_line as usize;
                    match encoder.deliver_raw(frame.data, layout, w16, h16, stride, &out) {
                        Ok(()) => {}
                        Err(e) => {
                            static FAILED: RateLimit = RateLimit::new(ratelog::DEFAULT_INTERVAL);
                            crate::warn_limited!(FAILED, "dropped frame {}: {e}", frame.sequence);
                            sink.stats().count_dropped();
                        }
                    }
                    sink.note_encoder(encoder);
                }
            }
        });
        match got {
            Ok(true) => silent = 0,
            Ok(false) => {
                silent += 1;
                if silent >= TIMEOUTS_BEFORE_LOST {
                    return Stop::Lost(format!(
                        "no frame for {} s",
                        (FRAME_TIMEOUT * TIMEOUTS_BEFORE_LOST).as_secs()
                    ));
                }
            }
            Err(e) => return Stop::Lost(e.to_string()),
        }
    }
}

/// Frames skipped after switching to the still's size: a webcam's first frames at a new
/// size are often dark or torn while it settles.
const STILL_SKIPPED_FRAMES: usize = 2;

/// The largest size `sizes` offer.
fn largest_size(sizes: &[Sizes]) -> Option<(u32, u32)> {
    sizes
        .iter()
        .map(|s| match *s {
            Sizes::Discrete(w, h) => (w, h),
            Sizes::Range { max, .. } => max,
        })
        .max_by_key(|&(w, h)| u64::from(w) * u64::from(h))
}

/// Takes one still at the camera's largest size in its streaming format, then sets the
/// streaming format back. The still (or why not), and whether the camera is back at its
/// streaming format (if not, it is lost).
fn take_still(camera: &Camera, settings: Settings) -> (Result<Still, String>, Result<(), String>) {
    let quality = settings.quality;
    let device = &camera.device;
    let streaming = camera.format;
    let started = std::time::Instant::now();
    let still = (|| {
        let (w, h) = largest_size(&device.sizes(streaming.fourcc))
            .unwrap_or((streaming.width, streaming.height));
        let format = device
            .set_format(streaming.fourcc, w, h)
            .map_err(|e| format!("cannot set {w}x{h}: {e}"))?;
        let (Ok(w16), Ok(h16)) = (u16::try_from(format.width), u16::try_from(format.height)) else {
            return Err(format!("{}x{} is too large", format.width, format.height));
        };
        let mut stream = device
            .stream(2)
            .map_err(|e| format!("cannot stream at {w}x{h}: {e}"))?;
        let mut seen = 0;
        let mut jpeg: Option<Result<Still, String>> = None;
        for _ in 0..STILL_SKIPPED_FRAMES + 3 {
            let got = stream
                .next(FRAME_TIMEOUT, |frame| {
                    if frame.damaged || frame.data.is_empty() {
                        return;
                    }
                    seen += 1;
                    if seen <= STILL_SKIPPED_FRAMES {
                        return;
                    }
                    jpeg = Some(match camera.handling {
                        Handling::PassJpeg => {
                            let data = crate::jpeg::trim_after_eoi(frame.data);
                            let jpeg = crate::jpeg::with_huffman_tables(data).into_owned();
                            Ok(Still {
                                jpeg,
                                width: format.width,
                                height: format.height,
                            })
                        }
                        Handling::Encode(layout) => {
                            // Turned as the stream is; the still's size is then turned too.
                            let stride = format.bytes_per_line as usize;
                            let raw = RawFrame::packed(frame.data, layout, (w16, h16), stride);
                            encode_still(raw, settings.transform.orientation(), quality)
                        }
                    });
                })
                .map_err(|e| format!("no frame at {w}x{h}: {e}"))?;
            if !got {
                return Err(format!("no frame at {w}x{h} within {FRAME_TIMEOUT:?}"));
            }
            if let Some(jpeg) = jpeg.take() {
                return jpeg;
            }
        }
        Err(format!("only damaged frames at {w}x{h}"))
    })();
    let restored = device
        .set_format(streaming.fourcc, streaming.width, streaming.height)
        .map_err(|e| format!("cannot go back to the stream's format after a still: {e}"))
        .and_then(|f| {
            if (f.fourcc, f.width, f.height)
                == (streaming.fourcc, streaming.width, streaming.height)
            {
                // Some drivers reset the frame rate with the size.
                let _ = device.set_frame_rate(settings.fps);
                Ok(())
            } else {
                Err(format!(
                    "the stream's format came back as {}x{} after a still",
                    f.width, f.height
                ))
            }
        });
    match &still {
        Ok(s) => log::info!(
            "{}: took a {}x{} still; the stream paused {} ms",
            device.describe(),
            s.width,
            s.height,
            started.elapsed().as_millis()
        ),
        Err(e) => log::warn!("{}: no still: {e}", device.describe()),
    }
    (still, restored)
}

/// Puts the controls of the camera on `path` on `board` until the result is dropped;
/// a camera whose controls cannot be opened streams all the same, without them.
fn attach_controls(path: &Path, board: &Arc<ControlBoard>) -> Option<Attached> {
    match V4l2Controls::open(path) {
        Ok(controls) => Some(board.attach(Arc::new(controls))),
        Err(e) => {
            static FAILED: RateLimit = RateLimit::new(ratelog::DEFAULT_INTERVAL);
            crate::warn_limited!(FAILED, "{}: no camera controls: {e}", path.display());
            None
        }
    }
}

/// Runs the source on `path` until the server stops; while the camera is open, its
/// controls are on `controls`.
pub fn run(
    path: PathBuf,
    settings: Settings,
    mut encoder: JpegEncoder,
    mut sink: FrameSink,
    controls: Arc<ControlBoard>,
) {
    let mut reopen = Reopen::new(settings.quality, settings.output_size());
    supervise(&mut sink, &mut reopen, |sink, reopen| {
        let camera = match open(&path, settings) {
            Ok(camera) => camera,
            Err(e) => return Ended::failed(e),
        };
        if reopen.recovered() {
            log::info!("{} is back", camera.device.describe());
            sink.stats().count_restart();
        }
        // Off the board again when this session ends: idle, stopped or unplugged.
        let attached = attach_controls(&path, &controls);
        sink.stats().set_error(None);
        sink.stats().set_capturing(true);
        reopen.reset();
        let stills = sink.stills().open();
        let stop = capture(&camera, &mut encoder, sink, settings);
        drop(stills);
        drop(attached);
        sink.stats().set_capturing(false);
        match stop {
            Stop::Stopping => Ended::Stopping,
            Stop::Idle => {
                log::info!("nobody watching: {} idle", path.display());
                Ended::Idle
            }
            Stop::Lost(why) => Ended::failed(format!("{}: {why}", path.display())),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_sizes() {
        let discrete = [
            Sizes::Discrete(320, 240),
            Sizes::Discrete(640, 480),
            Sizes::Discrete(1280, 720),
        ];
        assert_eq!(nearest_size(&discrete, (640, 480)), Some((640, 480)));
        assert_eq!(nearest_size(&discrete, (800, 600)), Some((640, 480)));
        assert_eq!(nearest_size(&discrete, (1920, 1080)), Some((1280, 720)));
        let range = [Sizes::Range {
            min: (16, 16),
            max: (1920, 1080),
            step: (8, 2),
        }];
        assert_eq!(nearest_size(&range, (643, 481)), Some((640, 480)));
        assert_eq!(nearest_size(&range, (4000, 4000)), Some((1920, 1080)));
        assert_eq!(nearest_size(&[], (640, 480)), None);
    }

    #[test]
    fn format_preferences() {
        assert_eq!(handling(fourcc(b"MJPG")), Some(Handling::PassJpeg));
        assert_eq!(
            handling(fourcc(b"NV12")),
            Some(Handling::Encode(RawLayout::Nv12))
        );
        assert_eq!(handling(fourcc(b"RGGB")), None);
        assert!(preference(fourcc(b"MJPG")) < preference(fourcc(b"YUYV")));
    }
}
