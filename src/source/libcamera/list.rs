//! `--list-cameras`: every camera libcamera sees, with its id, model, sensor modes
//! (size, bit depth and the highest frame rate of each) and the picture sizes it
//! streams.

use std::fmt::Write;

use libcamera::camera::Camera;
use libcamera::camera_manager::CameraManager;
use libcamera::geometry::Size;
use libcamera::pixel_format::PixelFormat;
use libcamera::properties;
use libcamera::stream::StreamRole;

use super::setup::{fps_of, layout_of};

/// "Model" and the id, as the log and errors name a camera.
pub fn name(camera: &Camera<'_>) -> String {
    match camera.properties().get::<properties::Model>() {
        Ok(model) => format!("{} ({})", model.0, camera.id()),
        Err(_) => camera.id().to_string(),
    }
}

fn size_text(s: Size) -> String {
    format!("{}x{}", s.width, s.height)
}

/// The formats and sizes of the first stream of a configuration for `role`.
fn stream_formats(camera: &Camera<'_>, role: StreamRole) -> Vec<(PixelFormat, Vec<Size>)> {
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

/// The highest frame rate of a raw sensor mode, found by configuring it: libcamera
/// reports frame duration limits for the configured mode.
fn mode_max_fps(camera: &Camera<'_>, format: PixelFormat, size: Size) -> Option<f64> {
    let mut active = camera.acquire().ok()?;
    let mut config = active.generate_configuration(&[StreamRole::Raw])?;
    {
        let mut stream = config.get_mut(0)?;
        stream.set_pixel_format(format);
        stream.set_size(size);
    }
    if config.validate().is_invalid() {
        return None;
    }
    active.configure(&mut config).ok()?;
    let info = active
        .controls()
        .find(libcamera::controls::ControlId::FrameDurationLimits as u32)
        .ok()?;
    match info.min() {
        libcamera::control_value::ControlValue::Int64(v) => v.first().map(|&d| fps_of(d)),
        _ => None,
    }
}

fn describe(out: &mut String, index: usize, camera: &Camera<'_>) {
    let props = camera.properties();
    let model = props
        .get::<properties::Model>()
        .map(|m| m.0)
        .unwrap_or_else(|_| "unknown model".into());
    let _ = writeln!(out, "{index}: {model}");
    let _ = writeln!(out, "   id: {}", camera.id());
    if let Ok(size) = props.get::<properties::PixelArraySize>() {
        let _ = writeln!(out, "   sensor: {} pixels", size_text(size.0));
    }
    if let Ok(rotation) = props.get::<properties::Rotation>() {
        if rotation.0 != 0 {
            let _ = writeln!(out, "   mounted turned by {} degrees", rotation.0);
        }
    }
    let has_af = camera
        .controls()
        .find(libcamera::controls::ControlId::AfMode as u32)
        .is_ok();
    let raw: Vec<_> = stream_formats(camera, StreamRole::Raw)
        .into_iter()
        .filter(|(f, _)| layout_of(*f).is_none())
        .collect();
    if raw.is_empty() {
        let _ = writeln!(out, "   sensor modes: none reported");
    } else {
        let _ = writeln!(out, "   sensor modes:");
        for (format, sizes) in &raw {
            for &size in sizes {
                let fps = mode_max_fps(camera, *format, size)
                    .map_or("max fps unknown".to_string(), |f| {
                        format!("up to {f:.1} fps")
                    });
                let _ = writeln!(out, "     {:>11}  {format:?}  {fps}", size_text(size));
            }
        }
    }
    let streams: Vec<_> = stream_formats(camera, StreamRole::VideoRecording)
        .into_iter()
        .filter(|(f, _)| layout_of(*f).is_some())
        .collect();
    if streams.is_empty() {
        let _ = writeln!(out, "   picture formats this source takes: none");
    } else {
        let _ = writeln!(
            out,
            "   picture formats this source takes (--size picks within them):"
        );
        for (format, sizes) in &streams {
            let (min, max) = sizes.iter().fold((sizes[0], sizes[0]), |(lo, hi), &s| {
                let area = |s: Size| s.width as u64 * s.height as u64;
                (
                    if area(s) < area(lo) { s } else { lo },
                    if area(s) > area(hi) { s } else { hi },
                )
            });
            let _ = writeln!(
                out,
                "     {format:?}: {} to {}",
                size_text(min),
                size_text(max)
            );
        }
    }
    let _ = writeln!(
        out,
        "   autofocus: {}",
        if has_af {
            "yes (continuous by default)"
        } else {
            "no"
        }
    );
}

/// The text of `--list-cameras`.
pub fn describe_all() -> String {
    let manager = match CameraManager::new() {
        Ok(m) => m,
        Err(e) => return format!("cannot start libcamera: {e}\n"),
    };
    let cameras = manager.cameras();
    let mut out = format!("libcamera {}: ", manager.version());
    if cameras.is_empty() {
        out += "no cameras found\n";
        return out;
    }
    let _ = writeln!(
        out,
        "{} camera(s); pick one with --source libcamera:INDEX or libcamera:ID",
        cameras.len()
    );
    for (i, camera) in cameras.iter().enumerate() {
        describe(&mut out, i, &camera);
    }
    out
}
