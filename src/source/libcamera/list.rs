//! `--list-cameras`: every camera libcamera sees, with its id, model, sensor modes
//! (size, bit depth, the highest frame rate and the part of the sensor each reads)
//! and the picture sizes it streams.

use std::fmt::Write;

use libcamera::camera::Camera;
use libcamera::camera_manager::CameraManager;
use libcamera::geometry::Size;
use libcamera::properties;
use libcamera::stream::StreamRole;

use super::setup::{layout_of, sensor_modes, stream_formats};

/// "Model" and the id, as the log and errors name a camera.
pub fn name(camera: &Camera<'_>) -> String {
    match camera.properties().get::<properties::Model>() {
        Ok(model) => format!("{} ({})", model.0, camera.id()),
        Err(_) => camera.id().to_string(),
    }
}

/// The camera's model (`imx708`), or `camera` when it gives none.
pub fn model(camera: &Camera<'_>) -> String {
    camera
        .properties()
        .get::<properties::Model>()
        .map_or_else(|_| "camera".to_string(), |m| m.0)
}

fn size_text(s: Size) -> String {
    format!("{}x{}", s.width, s.height)
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
    let modes = match camera.acquire() {
        Ok(mut active) => sensor_modes(&mut active),
        Err(e) => {
            let _ = writeln!(
                out,
                "   sensor modes: cannot be read (the camera is busy: {e})"
            );
            Vec::new()
        }
    };
    if modes.is_empty() {
        let _ = writeln!(out, "   sensor modes: none reported");
    } else {
        let _ = writeln!(
            out,
            "   sensor modes (--size and --fps choose among them; up to the fastest):"
        );
        for m in &modes {
            let _ = writeln!(
                out,
                "     {:>11}  {:>2}-bit  up to {:>6.2} fps  crop ({}, {})/{}x{}  {}",
                format!("{}x{}", m.width, m.height),
                m.bit_depth,
                m.max_fps,
                m.crop.x,
                m.crop.y,
                m.crop.width,
                m.crop.height,
                m.format
            );
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
