//! The reader of `rpicam-vid --list-cameras` output (what the rpicam source reads from
//! its helper at start to choose a sensor mode) against arbitrary text, and the mode
//! choice on whatever it reads.
//!
//! Checked:
//!
//! * nothing panics;
//! * every mode read has a size from 1 to 65535, a rate from above 0 to 10000 fps and a
//!   bit depth that its format's name carries;
//! * a mode chosen is one of the camera's, fast enough unless the choice is refused,
//!   and a refusal is one line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use picam_stream::source::sensor_modes::{bit_depth_of, choose, parse_rpicam_list};

fuzz_target!(|data: &[u8]| {
    if data.len() < 5 {
        return;
    }
    let want = (
        u32::from(u16::from_le_bytes([data[0], data[1]])),
        u32::from(u16::from_le_bytes([data[2], data[3]])),
    );
    let fps = u32::from(data[4]);
    let text = String::from_utf8_lossy(&data[5..]);
    for camera in parse_rpicam_list(&text) {
        for mode in &camera.modes {
            assert!((1..=65_535).contains(&mode.width), "{mode:?}");
            assert!((1..=65_535).contains(&mode.height), "{mode:?}");
            assert!(mode.max_fps > 0.0 && mode.max_fps <= 10_000.0, "{mode:?}");
            assert_eq!(bit_depth_of(&mode.format), Some(mode.bit_depth), "{mode:?}");
        }
        match choose(&camera.modes, want, fps, "the camera") {
            Ok(choice) => {
                assert!(camera.modes.contains(&choice.mode));
                assert!(choice.mode.max_fps + 0.5 >= f64::from(fps), "{choice:?}");
            }
            Err(why) => assert!(!why.contains('\n'), "{why:?}"),
        }
    }
});
