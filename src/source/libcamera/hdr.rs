//! `--hdr` for the libcamera source: the Camera Module 3's sensor HDR. The imx708
//! sensor has it as a V4L2 control of its sub-device, `Wide Dynamic Range`, which
//! must be set before libcamera reads the sensor's modes (with it on, the sensor has
//! one mode: 2304x1296 at up to 30 fps). rpicam-vid's `--hdr` sets the same control
//! (raspberrypi/rpicam-apps#704). Without `--hdr` it is set off, so that a run of
//! another program that left it on does not change this one's modes.

use std::path::PathBuf;

use crate::controls::CameraControls;
use crate::source::v4l2::scan::subdevices;
use crate::v4l2::controls::V4l2Controls;

/// The sensor whose sub-device has the HDR switch (every Camera Module 3 variant:
/// `imx708`, `imx708_wide`, `imx708_noir`, ...).
const HDR_SENSOR: &str = "imx708";

/// The control's name as [`crate::controls::control_name`] makes it.
const HDR_CONTROL: &str = "wide_dynamic_range";

/// The sub-devices whose name starts with [`HDR_SENSOR`] (`imx708 10-001a`).
fn hdr_sensors() -> Vec<(PathBuf, String)> {
    subdevices()
        .into_iter()
        .filter(|(_, name)| name.starts_with(HDR_SENSOR))
        .map(|(n, name)| (PathBuf::from(format!("/dev/v4l-subdev{n}")), name))
        .collect()
}

/// Switches the sensor HDR of every Camera Module 3 on (`on`) or off. `--hdr` on a
/// machine without one is an error that says so; failing to switch it off is only
/// logged (the camera then shows its HDR mode).
pub fn set_sensor_hdr(on: bool) -> Result<(), String> {
    let sensors = hdr_sensors();
    if on && sensors.is_empty() {
        return Err(
            "--hdr: no Camera Module 3 (imx708) found, and only its sensor has HDR here; \
             leave --hdr off (libcamera's own HDR modes are the hdr_mode control)"
                .to_string(),
        );
    }
    for (path, name) in sensors {
        let set = V4l2Controls::open(&path)
            .map_err(|e| e.to_string())
            .and_then(|c| c.apply(&[(HDR_CONTROL.to_string(), i64::from(on))]));
        match set {
            Ok(()) => log::info!(
                "{name} ({}): sensor HDR {}",
                path.display(),
                if on { "on" } else { "off" }
            ),
            Err(e) if on => {
                return Err(format!(
                    "--hdr: cannot switch on the sensor HDR of {name} ({}): {e}",
                    path.display()
                ))
            }
            Err(e) => log::warn!(
                "{name} ({}): cannot switch its sensor HDR off: {e}",
                path.display()
            ),
        }
    }
    Ok(())
}
