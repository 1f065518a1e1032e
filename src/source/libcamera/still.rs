//! Full-resolution stills from a libcamera camera ([`crate::still`]): with the video
//! stream stopped, the camera is configured for one still-capture stream at the largest
//! size it offers (turned as the stream is), started with the controls the stream
//! runs with, and the third good frame is encoded in software; then the camera is
//! configured for the video stream again, for the source to start it.
//!
//! Two frames are let pass first: a sensor takes a new exposure time and gain a frame
//! or two after they are written (libcamera's Raspberry Pi sensor helpers count two
//! frames of delay for the exposure), so the first frames after a mode switch may
//! still carry the settings of the stream's mode.

use std::time::Duration;

use libcamera::camera::{ActiveCamera, CameraConfiguration};
use libcamera::control::ControlList;
use libcamera::framebuffer::{AsFrameBuffer, FrameMetadataStatus};
use libcamera::geometry::Size;
use libcamera::pixel_format::PixelFormat;
use libcamera::request::{Request, RequestStatus, ReuseFlag};
use libcamera::stream::{Stream, StreamRole};

use super::controls::LibcameraControls;
use super::setup::{layout_of, orientation_of, preference};
use super::{make_requests, Mapped};
use crate::encoder::{RawFrame, RawLayout};
use crate::picture::Settings;
use crate::source::still_jpeg::encode_still;
use crate::still::Still;

/// Good frames let pass before the one kept (see the module's text).
pub const SETTLE_FRAMES: usize = 2;

/// Frames that may come damaged or cancelled before the still is given up.
const SPARE_FRAMES: usize = 3;

/// Buffers for the still stream at most: each is a whole full-resolution picture, so
/// two (one filling while one is looked at) and no more, for the memory's sake.
const MOST_BUFFERS: u32 = 2;

/// A wait this long for one full-resolution frame means none is coming: the first
/// frames after a mode switch take longer than the stream's.
const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest of `sizes` by area (ties: the first); sizes with a zero side are no
/// sizes.
pub fn largest(sizes: &[(u32, u32)]) -> Option<(u32, u32)> {
    sizes.iter().copied().filter(|&(w, h)| w > 0 && h > 0).fold(
        None,
        |best: Option<(u32, u32)>, s| match best {
            Some(b) if u64::from(b.0) * u64::from(b.1) >= u64::from(s.0) * u64::from(s.1) => {
                Some(b)
            }
            _ => Some(s),
        },
    )
}

/// The format of the still among those `offered`: the stream's own when offered (its
/// colours then match the stream's), otherwise the one this source prefers.
pub fn still_format(offered: &[PixelFormat], streaming: PixelFormat) -> Option<PixelFormat> {
    if offered.contains(&streaming) && preference(streaming).is_some() {
        return Some(streaming);
    }
    offered
        .iter()
        .copied()
        .filter_map(|f| preference(f).map(|p| (p, f)))
        .min_by_key(|&(p, _)| p)
        .map(|(_, f)| f)
}

fn size_of(s: Size) -> (u32, u32) {
    (s.width, s.height)
}

/// A still-capture configuration at the largest size the camera offers, in the
/// stream's format where it can, turned as the stream is; validated.
fn configuration(
    camera: &ActiveCamera<'_>,
    streaming: PixelFormat,
    settings: Settings,
) -> Result<CameraConfiguration, String> {
    let mut config = camera
        .generate_configuration(&[StreamRole::StillCapture])
        .ok_or("the camera makes no still configuration")?;
    let asked = {
        let mut stream = config
            .get_mut(0)
            .ok_or("the camera offers no still stream")?;
        let (format, size) = {
            let formats = stream.formats();
            let pixel_formats = formats.pixel_formats();
            let offered: Vec<PixelFormat> = (0..pixel_formats.len())
                .filter_map(|i| pixel_formats.get(i))
                .collect();
            let format = still_format(&offered, streaming)
                .ok_or("the camera offers no still format this source takes")?;
            // Discrete sizes, the top of a range (a sensor's full size on the
            // Raspberry Pi), and the camera's own choice for a still.
            let mut sizes: Vec<(u32, u32)> =
                formats.sizes(format).into_iter().map(size_of).collect();
            sizes.push(size_of(formats.range(format).max));
            sizes.push(size_of(stream.get_size()));
            (
                format,
                largest(&sizes).ok_or("the camera offers no still size")?,
            )
        };
        stream.set_pixel_format(format);
        stream.set_size(Size::new(size.0, size.1));
        stream.set_buffer_count(stream.get_buffer_count().clamp(1, MOST_BUFFERS));
        size
    };
    let orientation = orientation_of(settings.transform);
    config.set_orientation(orientation);
    if config.validate().is_invalid() {
        return Err(format!(
            "the camera cannot take a {}x{} still",
            asked.0, asked.1
        ));
    }
    if config.orientation() != orientation {
        return Err("the camera cannot turn the still as it turns the stream".into());
    }
    let format = config
        .get(0)
        .ok_or("the camera dropped the still stream")?
        .get_pixel_format();
    if layout_of(format).is_none() {
        return Err(format!(
            "the camera would give the still as {format:?}, which this source does not take"
        ));
    }
    Ok(config)
}

/// What the still stream was configured as.
struct Shape {
    stream: Stream,
    layout: RawLayout,
    width: u16,
    height: u16,
    stride: usize,
}

fn shape_of(config: &CameraConfiguration) -> Result<Shape, String> {
    let s = config.get(0).ok_or("the camera dropped the still stream")?;
    let size = s.get_size();
    let (Ok(width), Ok(height)) = (u16::try_from(size.width), u16::try_from(size.height)) else {
        return Err(format!(
            "{}x{} is too large to encode",
            size.width, size.height
        ));
    };
    Ok(Shape {
        stream: s.stream().ok_or("the configured still stream is missing")?,
        layout: layout_of(s.get_pixel_format()).ok_or("the still's format is not taken")?,
        width,
        height,
        stride: s.get_stride() as usize,
    })
}

/// The buffer of a completed request when its frame came whole, else `None`.
fn good_frame<'r>(request: &'r Request, shape: &Shape) -> Option<&'r Mapped> {
    if request.status() != RequestStatus::Complete {
        return None;
    }
    let buffer = request.buffer::<Mapped>(&shape.stream)?;
    buffer
        .metadata()
        .is_some_and(|m| m.status() == FrameMetadataStatus::Success)
        .then_some(buffer)
}

/// The still of a good frame's `buffer`.
fn encoded(buffer: &Mapped, shape: &Shape, settings: Settings) -> Result<Still, String> {
    let planes = buffer.data();
    let plane = |i: usize| planes.get(i).copied().unwrap_or(&[]);
    let frame = RawFrame {
        planes: [plane(0), plane(1), plane(2)],
        layout: shape.layout,
        width: shape.width,
        height: shape.height,
        stride: shape.stride,
    };
    // The camera did the flips; a quarter turn is left, as in the stream.
    encode_still(frame, settings.transform.after_camera(), settings.quality)
}

/// Takes the still with the configured, stopped `camera`: buffers, start, frames, stop.
fn capture(
    camera: &mut ActiveCamera<'_>,
    config: &CameraConfiguration,
    settings: Settings,
    controls: &LibcameraControls,
) -> Result<Still, String> {
    let shape = shape_of(config)?;
    let (allocator, requests, done_rx) = make_requests(camera, &shape.stream, controls)
        .map_err(|e| format!("for the still: {e}"))?;
    let mut start = ControlList::new();
    controls.put_kept(&mut start);
    camera
        .start(Some(&start))
        .map_err(|e| format!("cannot start the camera for a still: {e}"))?;
    let taken = (|| {
        for request in requests {
            camera
                .queue_request(request)
                .map_err(|(_, e)| format!("cannot queue a still request: {e}"))?;
        }
        let mut good = 0;
        for _ in 0..SETTLE_FRAMES + 1 + SPARE_FRAMES {
            let mut request = done_rx.recv_timeout(FRAME_TIMEOUT).map_err(|_| {
                format!(
                    "no frame at {}x{} within {} s",
                    shape.width,
                    shape.height,
                    FRAME_TIMEOUT.as_secs()
                )
            })?;
            if request.status() == RequestStatus::Complete {
                controls.note_metadata(request.metadata());
            }
            if let Some(buffer) = good_frame(&request, &shape) {
                good += 1;
                // Only the kept frame is encoded: the ones before are let pass.
                if good > SETTLE_FRAMES {
                    return encoded(buffer, &shape, settings);
                }
            }
            request.reuse(ReuseFlag::REUSE_BUFFERS);
            camera
                .queue_request(request)
                .map_err(|(_, e)| format!("cannot queue a still request again: {e}"))?;
        }
        Err(format!(
            "only damaged frames at {}x{}",
            shape.width, shape.height
        ))
    })();
    // Stopping hands back every request still queued, cancelled, into the channel;
    // they and their buffers go with it, before the camera is configured again.
    let _ = camera.stop();
    drop(done_rx);
    drop(allocator);
    taken
}

/// Takes one still with the `camera`, whose video stream the caller has stopped, with
/// `controls` (the stream's) and the stream's `settings`; then configures the camera
/// for the `video` stream again. The still (or why not), and whether the camera is
/// ready for the video stream (if not, it is lost).
pub fn take(
    camera: &mut ActiveCamera<'_>,
    video: &mut CameraConfiguration,
    settings: Settings,
    controls: &LibcameraControls,
) -> (Result<Still, String>, Result<(), String>) {
    let still = video
        .get(0)
        .map(|s| s.get_pixel_format())
        .ok_or_else(|| "the video stream is missing".to_string())
        .and_then(|streaming| configuration(camera, streaming, settings))
        .and_then(|mut config| {
            camera
                .configure(&mut config)
                .map_err(|e| format!("cannot configure the camera for a still: {e}"))?;
            capture(camera, &config, settings, controls)
        });
    let restored = camera
        .configure(video)
        .map_err(|e| format!("cannot configure the video stream again after a still: {e}"));
    (still, restored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_size_is_chosen_by_area() {
        assert_eq!(largest(&[]), None);
        assert_eq!(largest(&[(0, 0), (4056, 0)]), None);
        // vimc: standard sizes in its range, the range's top, its default.
        let vimc = [(640, 480), (1920, 1080), (4096, 2160), (1920, 1080)];
        assert_eq!(largest(&vimc), Some((4096, 2160)));
        // A Pi HQ camera: the standard sizes stop short of the sensor's 4056x3040.
        let hq = [(3840, 2160), (4056, 3040), (4056, 3040)];
        assert_eq!(largest(&hq), Some((4056, 3040)));
        // Wider is not larger: 4:3 beats 16:9 of the same width.
        assert_eq!(largest(&[(2304, 1296), (2028, 1520)]), Some((2028, 1520)));
        assert_eq!(largest(&[(9152, 6944), (0, 0)]), Some((9152, 6944)));
    }

    #[test]
    fn the_still_keeps_the_streams_format_where_offered() {
        let pf = |c: &[u8; 4]| PixelFormat::new(u32::from_le_bytes(*c), 0);
        let (yu12, nv12, bg24, raw) = (pf(b"YU12"), pf(b"NV12"), pf(b"BG24"), pf(b"pRAA"));
        assert_eq!(still_format(&[yu12, nv12], nv12), Some(nv12));
        assert_eq!(still_format(&[bg24, nv12, raw], yu12), Some(nv12));
        assert_eq!(still_format(&[raw, bg24], nv12), Some(bg24));
        assert_eq!(still_format(&[raw], nv12), None);
        assert_eq!(still_format(&[], nv12), None);
        // A stream in a format this source does not take is not followed.
        assert_eq!(still_format(&[raw, yu12], raw), Some(yu12));
    }
}
