//! A V4L2 device's controls (brightness, white balance, power line frequency, ...) as
//! [`crate::controls`] describes them: enumerated with `VIDIOC_QUERY_EXT_CTRL`, menus
//! with `VIDIOC_QUERYMENU`, read with `VIDIOC_G_EXT_CTRLS` and changed, all in one
//! call, with `VIDIOC_S_EXT_CTRLS`.
//!
//! Controls belong to the device, not to one open file: [`V4l2Controls`] opens the
//! capture node a second time, which V4L2 allows while another file streams.
//!
//! Taken: integer, 64-bit integer, boolean, menu, integer menu and button controls.
//! Left out: class headers, disabled controls, and compound ones (strings, arrays,
//! bitmasks), which a client could not set with one number.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use nix::libc;

use super::device::{open_node, query_capability, text};
use super::sys::{self, call, zeroed};
use crate::controls::{control_name, CameraControls, ControlInfo, ControlKind};

/// More controls than any device has: bounds the enumeration should a driver loop.
const MAX_CONTROLS: usize = 1024;

/// More menu entries than any menu has.
const MAX_MENU_ENTRIES: i64 = 256;

/// A control as the driver describes it, before its value is read.
#[derive(Debug, Clone)]
struct Described {
    id: u32,
    type_: u32,
    name: String,
    label: String,
    kind: ControlKind,
    default: i64,
    flags: u32,
}

impl Described {
    /// Whether `VIDIOC_G_EXT_CTRLS` can read it (buttons and write-only ones have no
    /// value to read).
    fn readable(&self) -> bool {
        self.type_ != sys::V4L2_CTRL_TYPE_BUTTON && self.flags & sys::V4L2_CTRL_FLAG_WRITE_ONLY == 0
    }

    fn is_64bit(&self) -> bool {
        self.type_ == sys::V4L2_CTRL_TYPE_INTEGER64
    }

    fn info(&self, value: i64) -> ControlInfo {
        let button = self.kind == ControlKind::Button;
        ControlInfo {
            name: self.name.clone(),
            label: self.label.clone(),
            kind: self.kind.clone(),
            default: if button { 0 } else { self.default },
            value: if button { 0 } else { value },
            // A grabbed control is refused while the device streams; the driver says
            // so with the flag, for as long as that lasts.
            read_only: self.flags & (sys::V4L2_CTRL_FLAG_READ_ONLY | sys::V4L2_CTRL_FLAG_GRABBED)
                != 0,
            inactive: self.flags & sys::V4L2_CTRL_FLAG_INACTIVE != 0,
        }
    }
}

/// The controls of one V4L2 device, on a file of their own.
pub struct V4l2Controls {
    file: File,
    path: PathBuf,
    /// `v4l2 DRIVER CARD`: the same model on any port or node is the same camera.
    identity: String,
}

impl V4l2Controls {
    /// Opens `path` for its controls.
    pub fn open(path: &Path) -> io::Result<V4l2Controls> {
        let file = open_node(path)?;
        let (cap, _) = query_capability(file.as_raw_fd())?;
        Ok(V4l2Controls {
            file,
            path: path.to_path_buf(),
            identity: format!("v4l2 {} {}", text(&cap.driver), text(&cap.card)),
        })
    }
}

impl CameraControls for V4l2Controls {
    fn identity(&self) -> String {
        self.identity.clone()
    }

    fn list(&self) -> Result<Vec<ControlInfo>, String> {
        list(self.file.as_raw_fd()).map_err(|e| {
            format!(
                "{}: cannot read the camera's controls: {e}",
                self.path.display()
            )
        })
    }

    fn apply(&self, changes: &[(String, i64)]) -> Result<(), String> {
        apply(self.file.as_raw_fd(), changes).map_err(|e| format!("{}: {e}", self.path.display()))
    }
}

/// Every control of the device open on `fd`, with its current value.
pub(crate) fn list(fd: RawFd) -> io::Result<Vec<ControlInfo>> {
    let described = describe_controls(fd)?;
    let values = read_values(fd, &described);
    Ok(described
        .iter()
        .zip(values)
        .map(|(d, v)| d.info(v.unwrap_or(d.default)))
        .collect())
}

/// Enumerates the controls this module takes, named uniquely.
fn describe_controls(fd: RawFd) -> io::Result<Vec<Described>> {
    let mut found = Vec::new();
    let mut id = 0;
    for _ in 0..MAX_CONTROLS {
        let mut q: sys::v4l2_query_ext_ctrl = zeroed();
        q.id = id | sys::V4L2_CTRL_FLAG_NEXT_CTRL;
        // SAFETY: `fd` is an open descriptor; `q` is a v4l2_query_ext_ctrl with its id set.
        match call(|| unsafe { sys::vidioc_query_ext_ctrl(fd, &mut q) }) {
            Ok(()) => {}
            // EINVAL: no control after `id`. ENOTTY: a driver without controls.
            Err(e) if [Some(libc::EINVAL), Some(libc::ENOTTY)].contains(&e.raw_os_error()) => break,
            Err(e) => return Err(e),
        }
        if q.id <= id {
            break; // a driver that does not move on
        }
        id = q.id;
        if let Some(kind) = kind_of(fd, &q) {
            found.push((q, kind));
        }
    }
    let labels: Vec<String> = found.iter().map(|(q, _)| text(&q.name)).collect();
    let names = unique_names(&labels);
    Ok(found
        .into_iter()
        .zip(labels)
        .zip(names)
        .map(|(((q, kind), label), name)| Described {
            id: q.id,
            type_: q.type_,
            name,
            label,
            kind,
            default: q.default_value,
            flags: q.flags,
        })
        .collect())
}

/// The kind of a control this module takes; `None` for the others.
fn kind_of(fd: RawFd, q: &sys::v4l2_query_ext_ctrl) -> Option<ControlKind> {
    if q.flags & sys::V4L2_CTRL_FLAG_DISABLED != 0 || q.nr_of_dims != 0 {
        return None;
    }
    let step = i64::try_from(q.step).unwrap_or(i64::MAX).max(1);
    match q.type_ {
        sys::V4L2_CTRL_TYPE_INTEGER | sys::V4L2_CTRL_TYPE_INTEGER64 => Some(ControlKind::Integer {
            min: q.minimum,
            max: q.maximum,
            step,
        }),
        sys::V4L2_CTRL_TYPE_BOOLEAN => Some(ControlKind::Boolean),
        sys::V4L2_CTRL_TYPE_BUTTON => Some(ControlKind::Button),
        sys::V4L2_CTRL_TYPE_MENU | sys::V4L2_CTRL_TYPE_INTEGER_MENU => Some(ControlKind::Menu {
            choices: menu(fd, q),
        }),
        _ => None,
    }
}

/// The entries of a menu control; indices the driver refuses (gaps) are left out.
fn menu(fd: RawFd, q: &sys::v4l2_query_ext_ctrl) -> Vec<(i64, String)> {
    let last = q.maximum.min(q.minimum.saturating_add(MAX_MENU_ENTRIES));
    let mut choices = Vec::new();
    for index in q.minimum.max(0)..=last {
        let mut m: sys::v4l2_querymenu = zeroed();
        m.id = q.id;
        m.index = index as u32;
        // SAFETY: `fd` is an open descriptor; `m` is a v4l2_querymenu with id and index.
        if call(|| unsafe { sys::vidioc_querymenu(fd, &mut m) }).is_err() {
            continue;
        }
        let label = if q.type_ == sys::V4L2_CTRL_TYPE_INTEGER_MENU {
            m.value().to_string()
        } else {
            text(&m.name)
        };
        choices.push((index, label));
    }
    choices
}

/// The current values of `controls`, in one call; should the driver refuse it, one
/// control at a time, leaving out those it will not read.
fn read_values(fd: RawFd, controls: &[Described]) -> Vec<Option<i64>> {
    let readable: Vec<&Described> = controls.iter().filter(|d| d.readable()).collect();
    let mut values: Vec<Option<i64>> = vec![None; controls.len()];
    let mut place = |got: &[(u32, i64)]| {
        for (id, v) in got {
            if let Some(i) = controls.iter().position(|d| d.id == *id) {
                values[i] = Some(*v);
            }
        }
    };
    match get(fd, &readable) {
        Ok(got) => place(&got),
        Err(_) => {
            for d in &readable {
                if let Ok(got) = get(fd, std::slice::from_ref(d)) {
                    place(&got);
                }
            }
        }
    }
    values
}

/// `VIDIOC_G_EXT_CTRLS` for `controls`: each one's id and value.
fn get(fd: RawFd, controls: &[&Described]) -> io::Result<Vec<(u32, i64)>> {
    if controls.is_empty() {
        return Ok(Vec::new());
    }
    let mut array: Vec<sys::v4l2_ext_control> = controls
        .iter()
        .map(|d| {
            let mut c: sys::v4l2_ext_control = zeroed();
            c.id = d.id;
            c
        })
        .collect();
    ext_ctrls(fd, &mut array, false).map_err(|(e, _)| e)?;
    Ok(controls
        .iter()
        .zip(&array)
        .map(|(d, c)| {
            let v = if d.is_64bit() {
                c.value64()
            } else {
                i64::from(c.value32())
            };
            (d.id, v)
        })
        .collect())
}

/// `VIDIOC_G_EXT_CTRLS` or (`set`) `VIDIOC_S_EXT_CTRLS` on the current values; on
/// failure, the index the driver names (`count` when it refused before changing any).
fn ext_ctrls(
    fd: RawFd,
    array: &mut [sys::v4l2_ext_control],
    set: bool,
) -> Result<(), (io::Error, usize)> {
    let mut all: sys::v4l2_ext_controls = zeroed();
    all.which = sys::V4L2_CTRL_WHICH_CUR_VAL;
    all.count = array.len() as u32;
    all.controls = array.as_mut_ptr();
    let result = if set {
        // SAFETY: `fd` is an open descriptor; `all` points to `count` initialised
        // v4l2_ext_control entries of `array`, which outlives the call.
        call(|| unsafe { sys::vidioc_s_ext_ctrls(fd, &mut all) })
    } else {
        // SAFETY: as above; the kernel writes the values into `array`.
        call(|| unsafe { sys::vidioc_g_ext_ctrls(fd, &mut all) })
    };
    result.map_err(|e| (e, all.error_idx as usize))
}

/// Sets every control of `changes` (by name, to the camera's number) in one call.
pub(crate) fn apply(fd: RawFd, changes: &[(String, i64)]) -> Result<(), String> {
    if changes.is_empty() {
        return Ok(());
    }
    let described = describe_controls(fd).map_err(|e| format!("cannot read the controls: {e}"))?;
    let mut targets = Vec::with_capacity(changes.len());
    let mut array = Vec::with_capacity(changes.len());
    for (name, value) in changes {
        let d = described
            .iter()
            .find(|d| &d.name == name)
            .ok_or_else(|| format!("the camera has no control '{name}' any more"))?;
        let mut c: sys::v4l2_ext_control = zeroed();
        c.id = d.id;
        if d.is_64bit() {
            c.set_value64(*value);
        } else {
            let v = i32::try_from(*value)
                .map_err(|_| format!("control '{name}': {value} does not fit"))?;
            c.set_value32(v);
        }
        targets.push(name.as_str());
        array.push(c);
    }
    ext_ctrls(fd, &mut array, true).map_err(|(e, index)| match targets.get(index) {
        Some(name) => format!("the camera refused control '{name}': {e}"),
        None => format!("the camera refused the changes: {e}"),
    })
}

/// Client names for the controls labelled `labels`: [`control_name`] of each, a
/// later one whose name is taken already getting `_2`, `_3`, ...; a label without
/// letters or digits is called `control`.
fn unique_names(labels: &[String]) -> Vec<String> {
    let mut names: Vec<String> = Vec::with_capacity(labels.len());
    for label in labels {
        let mut base = control_name(label);
        if base.is_empty() {
            base = "control".to_string();
        }
        let mut name = base.clone();
        let mut n = 1;
        while names.contains(&name) {
            n += 1;
            name = format!("{base}_{n}");
        }
        names.push(name);
    }
    names
}

/// The controls as `--list-devices` shows them: one line each, indented by `indent`.
pub fn describe(controls: &[ControlInfo], indent: &str) -> String {
    let mut out = String::new();
    for c in controls {
        let choice = |v: i64, choices: &[(i64, String)]| {
            choices
                .iter()
                .find(|(n, _)| *n == v)
                .map_or(v.to_string(), |(_, l)| format!("{l:?}"))
        };
        let what = match &c.kind {
            ControlKind::Integer { min, max, step } => {
                let step = if *step > 1 {
                    format!(" in steps of {step}")
                } else {
                    String::new()
                };
                format!(
                    "integer {min} to {max}{step}, default {}, value {}",
                    c.default, c.value
                )
            }
            ControlKind::Boolean => format!(
                "boolean, default {}, value {}",
                c.default != 0,
                c.value != 0
            ),
            ControlKind::Menu { choices } => {
                let names: Vec<String> = choices.iter().map(|(_, l)| format!("{l:?}")).collect();
                format!(
                    "menu of {}, default {}, value {}",
                    names.join(", "),
                    choice(c.default, choices),
                    choice(c.value, choices)
                )
            }
            ControlKind::Button => "button".to_string(),
        };
        let mut notes = String::new();
        if c.read_only {
            notes.push_str(" (read-only)");
        }
        if c.inactive {
            notes.push_str(" (inactive)");
        }
        out.push_str(&format!("{indent}{}: {what}{notes}\n", c.name));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(labels: &[&str]) -> Vec<String> {
        unique_names(&labels.iter().map(|l| l.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn names_of_a_usb_webcams_controls() {
        // The labels uvcvideo gives a common webcam (Linux 6.1).
        let labels = [
            "Brightness",
            "Contrast",
            "Saturation",
            "Hue",
            "White Balance, Automatic",
            "Gamma",
            "Gain",
            "Power Line Frequency",
            "White Balance Temperature",
            "Sharpness",
            "Backlight Compensation",
            "Auto Exposure",
            "Exposure Time, Absolute",
            "Exposure, Dynamic Framerate",
            "Pan, Absolute",
            "Focus, Absolute",
            "Focus, Automatic Continuous",
        ];
        assert_eq!(
            names(&labels),
            [
                "brightness",
                "contrast",
                "saturation",
                "hue",
                "white_balance_automatic",
                "gamma",
                "gain",
                "power_line_frequency",
                "white_balance_temperature",
                "sharpness",
                "backlight_compensation",
                "auto_exposure",
                "exposure_time_absolute",
                "exposure_dynamic_framerate",
                "pan_absolute",
                "focus_absolute",
                "focus_automatic_continuous",
            ]
        );
    }

    #[test]
    fn names_of_vivids_controls() {
        // Labels of the kernel's virtual camera (Linux 6.1); the names are those
        // v4l2-ctl shows for them.
        let labels = [
            "Gain, Automatic",
            "Integer 32 Bits",
            "Read-Only Integer 32 Bits",
            "Rx RGB Quantization Range",
            "Insert SAV Code in Image",
            "Limited RGB Range (16-235)",
            "Y'CbCr Encoding",
            "Inject V4L2_BUF_FLAG_ERROR",
            "Percentage of Dropped Buffers",
        ];
        assert_eq!(
            names(&labels),
            [
                "gain_automatic",
                "integer_32_bits",
                "read_only_integer_32_bits",
                "rx_rgb_quantization_range",
                "insert_sav_code_in_image",
                "limited_rgb_range_16_235",
                "y_cbcr_encoding",
                "inject_v4l2_buf_flag_error",
                "percentage_of_dropped_buffers",
            ]
        );
    }

    #[test]
    fn names_clash_and_empty_labels_get_names_of_their_own() {
        assert_eq!(
            names(&["Gain", "gain", "Gain!", "", "--", "Gain 2"]),
            [
                "gain",
                "gain_2",
                "gain_3",
                "control",
                "control_2",
                "gain_2_2"
            ]
        );
    }

    #[test]
    fn list_devices_lines() {
        let control = |name: &str, kind: ControlKind, default: i64, value: i64| ControlInfo {
            name: name.into(),
            label: name.into(),
            kind,
            default,
            value,
            read_only: false,
            inactive: false,
        };
        let mut exposure = control(
            "exposure_time_absolute",
            ControlKind::Integer {
                min: 3,
                max: 2047,
                step: 1,
            },
            250,
            300,
        );
        exposure.inactive = true;
        let text = describe(
            &[
                control(
                    "zoom_absolute",
                    ControlKind::Integer {
                        min: 100,
                        max: 500,
                        step: 50,
                    },
                    100,
                    250,
                ),
                control("white_balance_automatic", ControlKind::Boolean, 1, 0),
                control(
                    "power_line_frequency",
                    ControlKind::Menu {
                        choices: vec![(0, "Disabled".into()), (2, "60 Hz".into())],
                    },
                    2,
                    0,
                ),
                control("focus_trigger", ControlKind::Button, 0, 0),
                exposure,
            ],
            "  ",
        );
        assert_eq!(
            text,
            "  zoom_absolute: integer 100 to 500 in steps of 50, default 100, value 250\n\
             \x20 white_balance_automatic: boolean, default true, value false\n\
             \x20 power_line_frequency: menu of \"Disabled\", \"60 Hz\", default \"60 Hz\", value \"Disabled\"\n\
             \x20 focus_trigger: button\n\
             \x20 exposure_time_absolute: integer 3 to 2047, default 250, value 300 (inactive)\n"
        );
    }
}
