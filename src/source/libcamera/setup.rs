//! Configuring a libcamera camera for streaming: the picture format, size, orientation,
//! frame rate and focus asked for, checked against what the camera says it can do.
//!
//! libcamera answers a configuration with "valid", "adjusted" (and what it changed) or
//! "invalid". Format and size changes are taken with a log line, as the V4L2 source
//! does; an orientation or a frame rate the camera cannot give is an error that names
//! what it can give.

use libcamera::camera::{
    ActiveCamera, Camera, CameraConfiguration, CameraConfigurationStatus, Orientation,
};
use libcamera::control::{ControlInfoMap, ControlList};
use libcamera::control_value::ControlValue;
use libcamera::controls::{self, ControlId};
use libcamera::geometry::Size;
use libcamera::pixel_format::PixelFormat;
use libcamera::properties;
use libcamera::stream::StreamRole;
use libcamera::utils::UniquePtr;

use crate::encoder::RawLayout;
use crate::picture::{Settings, Transform};
use crate::source::libcamera_controls::{LibcameraId, RequestValue};
use crate::source::sensor_modes::{self, Crop, SensorMode};

/// The picture formats this source takes, best first: the 4:2:0 ones cost the encoder
/// least and are what the Pi's ISP produces natively.
const FORMATS: [(&[u8; 4], RawLayout); 6] = [
    (b"YU12", RawLayout::Yuv420),
    (b"NV12", RawLayout::Nv12),
    (b"YUYV", RawLayout::Yuyv),
    (b"UYVY", RawLayout::Uyvy),
    // DRM's BGR888 is R, G, B in memory; RGB888 is B, G, R.
    (b"BG24", RawLayout::Rgb24),
    (b"RG24", RawLayout::Bgr24),
];

fn fourcc(code: &[u8; 4]) -> u32 {
    u32::from_le_bytes(*code)
}

/// The layout of a libcamera pixel format, when this source takes it.
pub fn layout_of(format: PixelFormat) -> Option<RawLayout> {
    if format.has_modifier() {
        return None;
    }
    FORMATS
        .iter()
        .find(|(code, _)| fourcc(code) == format.fourcc())
        .map(|&(_, layout)| layout)
}

/// Where `format` stands in this source's order of preference (0 best); `None` when
/// the source does not take it.
pub fn preference(format: PixelFormat) -> Option<usize> {
    layout_of(format)?;
    FORMATS
        .iter()
        .position(|(code, _)| fourcc(code) == format.fourcc())
}

/// The orientation libcamera is asked for.
pub fn orientation_of(transform: Transform) -> Orientation {
    match transform.flips() {
        (false, false) => Orientation::Rotate0,
        (true, false) => Orientation::Rotate0Mirror,
        (true, true) => Orientation::Rotate180,
        (false, true) => Orientation::Rotate180Mirror,
    }
}

fn describe_orientation(o: Orientation) -> &'static str {
    match o {
        Orientation::Rotate0 => "as it is",
        Orientation::Rotate0Mirror => "--hflip",
        Orientation::Rotate180 => "--rotation 180",
        Orientation::Rotate180Mirror => "--vflip",
        _ => "turned by 90 degrees",
    }
}

/// What streaming will use, once configured.
pub struct Plan {
    pub config: CameraConfiguration,
    pub layout: RawLayout,
    pub width: u16,
    pub height: u16,
    /// Bytes per row of the first plane.
    pub stride: usize,
    pub buffers: u32,
    /// Controls to start with: frame duration, autofocus.
    pub controls: UniquePtr<ControlList>,
    /// Of those, the ones a client may change later (continuous autofocus).
    pub started: Vec<(LibcameraId, RequestValue)>,
    /// A line for the log: format, size, rate, focus, sensor mode.
    pub summary: String,
    /// The sensor mode chosen for `--size` and `--fps`, for `/status`; `None` when
    /// the camera reports no raw modes (then libcamera chooses).
    pub sensor_mode: Option<String>,
}

/// The raw formats and sizes of the first stream of a configuration for `role`.
pub fn stream_formats(camera: &Camera<'_>, role: StreamRole) -> Vec<(PixelFormat, Vec<Size>)> {
    let Some(config) = camera.generate_configuration(&[role]) else {
        return Vec::new();
    };
    let Some(stream) = config.get(0) else {
        return Vec::new();
    };
    let formats = stream.formats();
    let pixel_formats = formats.pixel_formats();
    (0..pixel_formats.len())
        .filter_map(|i| pixel_formats.get(i))
        .map(|f| {
            let mut sizes = formats.sizes(f);
            if sizes.is_empty() {
                let range = formats.range(f);
                sizes = vec![range.min, range.max];
            }
            (f, sizes)
        })
        .collect()
}

/// One raw sensor mode, learnt by configuring it: libcamera reports the frame
/// duration limits of the configured mode, and the Raspberry Pi pipeline the part of
/// the sensor it reads (`ScalerCropMaximum`).
fn probe_mode(
    camera: &mut ActiveCamera<'_>,
    format: PixelFormat,
    size: Size,
) -> Option<SensorMode> {
    let mut config = camera.generate_configuration(&[StreamRole::Raw])?;
    {
        let mut stream = config.get_mut(0)?;
        stream.set_pixel_format(format);
        stream.set_size(size);
    }
    if config.validate().is_invalid() {
        return None;
    }
    camera.configure(&mut config).ok()?;
    let max_fps = frame_durations(camera.controls()).map(|(min_us, _)| fps_of(min_us))?;
    let crop = match camera.properties().get::<properties::ScalerCropMaximum>() {
        Ok(r) if r.0.width > 0 && r.0.height > 0 => Crop {
            x: r.0.x.max(0) as u32,
            y: r.0.y.max(0) as u32,
            width: r.0.width,
            height: r.0.height,
        },
        _ => Crop {
            x: 0,
            y: 0,
            width: size.width,
            height: size.height,
        },
    };
    let name = format!("{format:?}");
    Some(SensorMode {
        bit_depth: sensor_modes::bit_depth_of(&name).unwrap_or(0),
        format: name,
        width: size.width,
        height: size.height,
        max_fps,
        crop,
    })
}

/// The raw sensor modes of the acquired `camera` (none for a camera without raw
/// formats, such as a UVC webcam), each configured once.
pub fn sensor_modes(camera: &mut ActiveCamera<'_>) -> Vec<SensorMode> {
    let raw: Vec<_> = stream_formats(camera, StreamRole::Raw)
        .into_iter()
        .filter(|(f, _)| layout_of(*f).is_none())
        .collect();
    let mut modes = Vec::new();
    for (format, sizes) in raw {
        for size in sizes {
            if let Some(mode) = probe_mode(camera, format, size) {
                modes.push(mode);
            }
        }
    }
    modes
}

fn size_text(s: Size) -> String {
    format!("{}x{}", s.width, s.height)
}

/// A configuration for one stream of `format` at the asked size and orientation (and
/// a raw stream of the sensor `mode`, if given), as the camera validated it; `None`
/// when the camera turns it into a format this source does not take, or cannot add
/// the raw stream.
fn try_format(
    camera: &ActiveCamera<'_>,
    format: PixelFormat,
    settings: Settings,
    mode: Option<&SensorMode>,
) -> Result<Option<CameraConfiguration>, String> {
    // A second, raw stream of the chosen mode makes the pipeline run the sensor in it;
    // its buffers are never asked for.
    let roles: &[StreamRole] = if mode.is_some() {
        &[StreamRole::VideoRecording, StreamRole::Raw]
    } else {
        &[StreamRole::VideoRecording]
    };
    let mut config = match camera.generate_configuration(roles) {
        Some(c) => c,
        None if mode.is_some() => return Ok(None),
        None => return Err("the camera cannot make a video configuration".into()),
    };
    {
        let mut stream = config.get_mut(0).ok_or("the camera offers no stream")?;
        stream.set_pixel_format(format);
        stream.set_size(Size::new(settings.width.into(), settings.height.into()));
        // Enough to keep the sensor busy while one is being encoded and one waits.
        stream.set_buffer_count(stream.get_buffer_count().max(4));
    }
    if let Some(mode) = mode {
        let Some(mut raw) = config.get_mut(1) else {
            return Ok(None);
        };
        let raw_format = {
            let formats = raw.formats();
            let offered = formats.pixel_formats();
            (0..offered.len())
                .filter_map(|i| offered.get(i))
                .find(|f| format!("{f:?}") == mode.format)
        };
        if let Some(raw_format) = raw_format {
            raw.set_pixel_format(raw_format);
        }
        raw.set_size(Size::new(mode.width, mode.height));
    }
    config.set_orientation(orientation_of(settings.transform));
    match config.validate() {
        CameraConfigurationStatus::Invalid => Ok(None),
        _ => {
            let got = config.get(0).ok_or("the camera dropped the stream")?;
            Ok(layout_of(got.get_pixel_format()).map(|_| config))
        }
    }
}

/// The orientations the camera accepts, for the error message.
fn orientations_offered(
    camera: &ActiveCamera<'_>,
    format: PixelFormat,
    settings: Settings,
) -> String {
    let mut offered = Vec::new();
    for (rotate180, hflip) in [(false, false), (false, true), (true, false), (true, true)] {
        let transform = Transform {
            rotate180,
            hflip,
            vflip: false,
            ..Transform::default()
        };
        let s = Settings {
            transform,
            ..settings
        };
        if let Ok(Some(config)) = try_format(camera, format, s, None) {
            if config.orientation() == orientation_of(transform) {
                offered.push(describe_orientation(orientation_of(transform)));
            }
        }
    }
    if offered.is_empty() {
        "none".into()
    } else {
        offered.join(", ")
    }
}

/// The frame duration limits of the configured camera, in microseconds.
fn frame_durations(controls: &ControlInfoMap) -> Option<(i64, i64)> {
    let info = controls.find(ControlId::FrameDurationLimits as u32).ok()?;
    let first = |v: ControlValue| match v {
        ControlValue::Int64(v) => v.first().copied(),
        _ => None,
    };
    Some((first(info.min())?, first(info.max())?))
}

/// Frames per second from a frame duration in microseconds.
pub fn fps_of(duration_us: i64) -> f64 {
    if duration_us > 0 {
        1e6 / duration_us as f64
    } else {
        0.0
    }
}

/// Chooses and applies the configuration for `settings`; `model` names the camera
/// in errors about its sensor modes.
pub fn configure(
    camera: &mut ActiveCamera<'_>,
    settings: Settings,
    model: &str,
) -> Result<Plan, String> {
    let modes = sensor_modes(camera);
    let what = if settings.hdr {
        format!("the {model} with --hdr")
    } else {
        format!("the {model}")
    };
    let choice = if modes.is_empty() {
        None
    } else {
        Some(sensor_modes::choose(
            &modes,
            (settings.width.into(), settings.height.into()),
            settings.fps,
            &what,
        )?)
    };
    let mut chosen = None;
    for (code, _) in FORMATS {
        let format = PixelFormat::new(fourcc(code), 0);
        let mode = choice.as_ref().map(|c| &c.mode);
        let mut config = try_format(camera, format, settings, mode)?;
        if config.is_none() && mode.is_some() {
            // A pipeline that takes no raw stream beside the picture chooses itself.
            config = try_format(camera, format, settings, None)?;
        }
        if let Some(config) = config {
            chosen = Some(config);
            break;
        }
    }
    let Some(mut config) = chosen else {
        let offered = camera
            .generate_configuration(&[StreamRole::VideoRecording])
            .and_then(|c| {
                c.get(0).map(|s| {
                    let formats = s.formats();
                    let pf = formats.pixel_formats();
                    let list: Vec<String> = (0..pf.len())
                        .filter_map(|i| pf.get(i))
                        .map(|f| format!("{f:?}"))
                        .collect();
                    list.join(", ")
                })
            })
            .unwrap_or_default();
        return Err(format!(
            "the camera offers no picture format this source takes (it offers {}; \
             YUV420, NV12, YUYV, UYVY, RGB888 and BGR888 are taken)",
            if offered.is_empty() { "none" } else { &offered }
        ));
    };
    let wanted = orientation_of(settings.transform);
    if config.orientation() != wanted {
        let (format, got) = {
            let s = config.get(0).ok_or("the camera dropped the stream")?;
            (s.get_pixel_format(), config.orientation())
        };
        return Err(format!(
            "the camera cannot give the picture {} (it would give it {}); it can give it: {}",
            describe_orientation(wanted),
            describe_orientation(got),
            orientations_offered(camera, format, settings)
        ));
    }
    camera
        .configure(&mut config)
        .map_err(|e| format!("cannot configure the camera: {e}"))?;

    let (format, size, stride, buffers) = {
        let s = config.get(0).ok_or("the camera dropped the stream")?;
        (
            s.get_pixel_format(),
            s.get_size(),
            s.get_stride(),
            s.get_buffer_count(),
        )
    };
    let layout =
        layout_of(format).ok_or("the camera switched to a format this source does not take")?;
    let (Ok(width), Ok(height)) = (u16::try_from(size.width), u16::try_from(size.height)) else {
        return Err(format!("the picture size {} is too large", size_text(size)));
    };
    let asked = Size::new(settings.width.into(), settings.height.into());
    let mut summary = format!("{format:?} {}", size_text(size));
    if (size.width, size.height) != (asked.width, asked.height) {
        summary += &format!(
            " (asked for {}; nearest the camera gives)",
            size_text(asked)
        );
    }

    let mut controls = ControlList::new();
    let infos = camera.controls();
    match frame_durations(infos) {
        Some((min_us, max_us)) => {
            let max_fps = fps_of(min_us);
            let min_fps = fps_of(max_us);
            let want = settings.fps as f64;
            if want > max_fps + 0.05 {
                return Err(format!(
                    "the camera gives at most {max_fps:.1} fps at {} (asked for {}); \
                     ask for a lower --fps or a smaller --size (see --list-cameras)",
                    size_text(size),
                    settings.fps
                ));
            }
            if want < min_fps - 0.05 {
                return Err(format!(
                    "the camera gives at least {min_fps:.2} fps (asked for {})",
                    settings.fps
                ));
            }
            let duration = (1e6 / want).round() as i64;
            controls
                .set(controls::FrameDurationLimits([duration, duration]))
                .map_err(|e| format!("cannot ask for {} fps: {e}", settings.fps))?;
            summary += &format!(
                " at {} fps (the camera gives {min_fps:.1} to {max_fps:.1})",
                settings.fps
            );
        }
        None => summary += " at the camera's own frame rate (it takes no frame rate)",
    }
    let mut started = Vec::new();
    if infos.find(ControlId::AfMode as u32).is_ok() {
        controls
            .set(controls::AfMode::Continuous)
            .map_err(|e| format!("cannot turn on continuous autofocus: {e}"))?;
        started.push((
            LibcameraId::AfMode,
            RequestValue::Int32(controls::AfMode::Continuous as i32),
        ));
        summary += ", continuous autofocus";
    }
    if settings.transform.flips() != (false, false) {
        summary += &format!(", {}", describe_orientation(wanted));
    }
    if let Some(choice) = &choice {
        summary += &format!("; sensor mode {choice}");
    }
    Ok(Plan {
        config,
        layout,
        width,
        height,
        stride: stride as usize,
        buffers,
        controls,
        started,
        summary,
        sensor_mode: choice.map(|c| c.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_map_to_layouts() {
        let pf = |c: &[u8; 4]| PixelFormat::new(fourcc(c), 0);
        assert_eq!(layout_of(pf(b"YU12")), Some(RawLayout::Yuv420));
        assert_eq!(layout_of(pf(b"NV12")), Some(RawLayout::Nv12));
        assert_eq!(layout_of(pf(b"BG24")), Some(RawLayout::Rgb24));
        assert_eq!(layout_of(pf(b"pRAA")), None);
        assert_eq!(layout_of(PixelFormat::new(fourcc(b"NV12"), 1)), None);
        assert_eq!(preference(pf(b"YU12")), Some(0));
        assert!(preference(pf(b"NV12")) < preference(pf(b"BG24")));
        assert_eq!(preference(pf(b"pRAA")), None);
    }

    #[test]
    fn orientations() {
        let t = |rotate180, hflip, vflip| {
            orientation_of(Transform {
                rotate180,
                hflip,
                vflip,
                ..Transform::default()
            })
        };
        assert_eq!(t(false, false, false), Orientation::Rotate0);
        assert_eq!(t(true, false, false), Orientation::Rotate180);
        assert_eq!(t(false, true, true), Orientation::Rotate180);
        assert_eq!(t(false, true, false), Orientation::Rotate0Mirror);
        assert_eq!(t(false, false, true), Orientation::Rotate180Mirror);
        assert_eq!(t(true, true, false), Orientation::Rotate180Mirror);
        assert!((fps_of(33_333) - 30.0).abs() < 0.01);
        assert_eq!(fps_of(0), 0.0);
    }
}
