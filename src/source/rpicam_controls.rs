//! The camera controls of the `rpicam` source: the image settings `rpicam-vid` takes on
//! its command line, as the same controls the `libcamera` source offers (the names,
//! labels, units and rules of [`libcamera_controls`], whose table this reuses), and the
//! `rpicam-vid` arguments they become.
//!
//! `rpicam-vid` reads its settings only when it starts, so a change that alters its
//! arguments restarts it ([`RpicamControls::generation`] tells the source when; it
//! waits for the values to settle): a short pause in the pictures. Values set before it starts (saved ones, or changes
//! while nobody watches) are simply part of its next command line.
//!
//! Option names and what they take, from rpicam-apps' option table (`core/options.cpp`
//! of raspberrypi/rpicam-apps) and the Raspberry Pi camera software documentation
//! ("rpicam-apps options"): `--brightness` -1.0 to 1.0 (0 unchanged); `--contrast`,
//! `--saturation` and `--sharpness` 1.0 normal; `--ev` in stops; `--shutter` in
//! microseconds and `--gain` (analogue gain), both 0 for automatic; `--awb` auto,
//! incandescent, tungsten, fluorescent, indoor, daylight, cloudy or custom; `--denoise`
//! auto, off, cdn_off, cdn_fast or cdn_hq; `--autofocus-mode` manual, auto (one scan at
//! start) or continuous; `--lens-position` in dioptres (0 is infinity). The ranges are
//! those libcamera's Raspberry Pi image processor reports for these controls (the
//! tables of `tests/fixtures/pi/controls-*.txt`); rpicam-vid passes values on as they
//! are. Control values go as `--name=value`, the one form in which rpicam-vid's option
//! parser takes a negative number.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::libcamera_controls::{request_values, user_controls, Current, LibcameraId, Limits};
use crate::controls::{CameraControls, ControlInfo, ControlKind};

/// How a control's value is written on rpicam-vid's command line.
#[derive(Debug, Clone, Copy)]
enum Spelled {
    /// Hundredths as a decimal fraction (`30` is `0.3`).
    Hundredths,
    /// The whole number.
    Whole,
    /// A menu choice, as rpicam-vid names it: (the control's choice, rpicam-vid's word).
    Choice(&'static [(&'static str, &'static str)]),
}

/// The rpicam-vid option of each control (by the control's name).
const OPTIONS: &[(&str, &str, Spelled)] = &[
    ("exposure_time_us", "--shutter", Spelled::Whole),
    ("ev", "--ev", Spelled::Hundredths),
    ("analogue_gain", "--gain", Spelled::Hundredths),
    ("awb_mode", "--awb", Spelled::Choice(SAME_WORDS)),
    ("brightness", "--brightness", Spelled::Hundredths),
    ("contrast", "--contrast", Spelled::Hundredths),
    ("saturation", "--saturation", Spelled::Hundredths),
    ("sharpness", "--sharpness", Spelled::Hundredths),
    (
        "noise_reduction",
        "--denoise",
        Spelled::Choice(DENOISE_WORDS),
    ),
    (
        "focus_mode",
        "--autofocus-mode",
        Spelled::Choice(FOCUS_WORDS),
    ),
    ("lens_position", "--lens-position", Spelled::Hundredths),
];

/// White balance modes: rpicam-vid's words are libcamera's names.
const SAME_WORDS: &[(&str, &str)] = &[];

/// rpicam-apps maps `cdn_off` to libcamera's minimal noise reduction, `cdn_fast` to
/// fast and `cdn_hq` to high quality; `off` is none at all.
const DENOISE_WORDS: &[(&str, &str)] = &[
    ("off", "off"),
    ("minimal", "cdn_off"),
    ("fast", "cdn_fast"),
    ("high_quality", "cdn_hq"),
];

/// `auto` is libcamera's single-scan mode: rpicam-vid scans once when it starts.
const FOCUS_WORDS: &[(&str, &str)] = &[
    ("manual", "manual"),
    ("single", "auto"),
    ("continuous", "continuous"),
];

/// The longest exposure (microseconds) and highest analogue gain of a sensor, as
/// libcamera reports them (`tests/fixtures/pi/controls-*.txt`).
fn sensor_limits(model: &str) -> (f64, f64) {
    match model {
        m if m.starts_with("imx708") => (220_416_802.0, 16.0),
        m if m.starts_with("imx477") => (694_422_939.0, 22.26),
        m if m.starts_with("imx219") => (11_766_829.0, 10.66),
        // (Its listed exposure range was empty: the longest of the others.)
        m if m.starts_with("imx296") => (694_422_939.0, 251.18),
        // Unknown sensors: the longest of those above, and the usual gain.
        _ => (694_422_939.0, 16.0),
    }
}

/// Whether the sensor `model` has a focus motor (the Camera Module 3 in every variant).
pub fn has_focus_motor(model: &str) -> bool {
    model.starts_with("imx708")
}

/// The controls rpicam-vid takes for the sensor `model` (`None`: not known), with
/// their limits in libcamera's units. Exposure time and gain start at 0, rpicam-vid's
/// "automatic".
fn camera_table(model: Option<&str>) -> Vec<(LibcameraId, Limits)> {
    let (longest, gain) = sensor_limits(model.unwrap_or_default());
    let range = |min: f64, max: f64, default: f64| Limits {
        min,
        max,
        default: Some(default),
        values: Vec::new(),
    };
    let menu = |values: &[i64], default: f64| Limits {
        min: 0.0,
        max: values.iter().copied().max().unwrap_or(0) as f64,
        default: Some(default),
        values: values.to_vec(),
    };
    let mut table = vec![
        (LibcameraId::ExposureTime, range(0.0, longest, 0.0)),
        (LibcameraId::ExposureValue, range(-8.0, 8.0, 0.0)),
        (LibcameraId::AnalogueGain, range(0.0, gain, 0.0)),
        // auto .. custom.
        (LibcameraId::AwbMode, menu(&[0, 1, 2, 3, 4, 5, 6, 7], 0.0)),
        (LibcameraId::Brightness, range(-1.0, 1.0, 0.0)),
        (LibcameraId::Contrast, range(0.0, 32.0, 1.0)),
        (LibcameraId::Saturation, range(0.0, 32.0, 1.0)),
        (LibcameraId::Sharpness, range(0.0, 16.0, 1.0)),
        // off, fast, high quality, minimal: what --denoise names.
        (LibcameraId::NoiseReductionMode, menu(&[0, 1, 2, 3], 1.0)),
    ];
    if model.is_some_and(has_focus_motor) {
        table.extend([
            (LibcameraId::AfMode, menu(&[0, 1, 2], 2.0)),
            (LibcameraId::AfTrigger, menu(&[0], 0.0)),
            (LibcameraId::LensPosition, range(0.0, 15.0, 1.0)),
        ]);
    }
    table
}

/// `hundredths` as a decimal number without trailing zeros (`30` is `0.3`, `-150` is
/// `-1.5`, `200` is `2`).
fn decimal(hundredths: i64) -> String {
    let sign = if hundredths < 0 { "-" } else { "" };
    let abs = hundredths.unsigned_abs();
    let fraction = format!("{:02}", abs % 100);
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() {
        format!("{sign}{}", abs / 100)
    } else {
        format!("{sign}{}.{fraction}", abs / 100)
    }
}

/// The rpicam-vid arguments for the `controls` listed: one for each control away from
/// its default, and the lens position whenever focus is manual.
pub fn control_arguments(controls: &[ControlInfo]) -> Vec<String> {
    let mut args = Vec::new();
    for control in controls {
        let Some((_, option, spelled)) = OPTIONS.iter().find(|(n, _, _)| *n == control.name) else {
            continue;
        };
        let wanted = if control.name == "lens_position" {
            !control.inactive
        } else {
            control.value != control.default
        };
        if !wanted {
            continue;
        }
        let value = match spelled {
            Spelled::Hundredths => decimal(control.value),
            Spelled::Whole => control.value.to_string(),
            Spelled::Choice(words) => {
                let ControlKind::Menu { choices } = &control.kind else {
                    continue;
                };
                let Some((_, choice)) = choices.iter().find(|(n, _)| *n == control.value) else {
                    continue;
                };
                match words.iter().find(|(c, _)| c == choice) {
                    Some((_, word)) => word.to_string(),
                    None if words.is_empty() => choice.clone(),
                    None => continue,
                }
            }
        };
        args.push(format!("{option}={value}"));
    }
    args
}

/// The controls of one camera run through rpicam-vid.
pub struct RpicamControls {
    identity: String,
    table: Vec<(LibcameraId, Limits)>,
    current: Mutex<Current>,
    /// Counts the changes that need rpicam-vid started again.
    generation: AtomicU64,
    /// The last such change, for the log.
    last_change: Mutex<String>,
}

impl RpicamControls {
    /// The controls for the sensor `model` (`None` when rpicam-vid did not list it) of
    /// camera `camera`.
    pub fn new(model: Option<&str>, camera: Option<u32>) -> RpicamControls {
        let table = camera_table(model);
        let which = match (model, camera) {
            (Some(model), _) => model.to_string(),
            (None, Some(index)) => format!("camera {index}"),
            (None, None) => "camera".to_string(),
        };
        RpicamControls {
            identity: format!("rpicam {which}"),
            current: Mutex::new(Current::from_limits(&table)),
            table,
            generation: AtomicU64::new(0),
            last_change: Mutex::new(String::new()),
        }
    }

    fn current(&self) -> std::sync::MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn listed(&self, current: &Current) -> Vec<ControlInfo> {
        user_controls(&self.table, current)
    }

    /// The rpicam-vid arguments for the values now.
    pub fn arguments(&self) -> Vec<String> {
        control_arguments(&self.listed(&self.current()))
    }

    /// A number that changes with every change that needs rpicam-vid started again.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// What the last such change was (`brightness = 30`), for the log.
    pub fn last_change(&self) -> String {
        self.last_change
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl CameraControls for RpicamControls {
    fn identity(&self) -> String {
        self.identity.clone()
    }

    fn list(&self) -> Result<Vec<ControlInfo>, String> {
        Ok(self.listed(&self.current()))
    }

    fn apply(&self, changes: &[(String, i64)]) -> Result<(), String> {
        let mut current = self.current();
        let values = request_values(changes, &current)?;
        let before = control_arguments(&self.listed(&current));
        current.note_request(&values);
        let after = control_arguments(&self.listed(&current));
        // A focus trigger is a scan at start: it restarts even when nothing else changes.
        let triggered = changes.iter().any(|(name, _)| name == "focus_trigger");
        if before != after || triggered {
            let said: Vec<String> = changes.iter().map(|(n, v)| format!("{n} = {v}")).collect();
            *self.last_change.lock().unwrap_or_else(|e| e.into_inner()) = said.join(", ");
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controls::{check_changes, ControlValue};

    fn names(controls: &[ControlInfo]) -> Vec<&str> {
        controls.iter().map(|c| c.name.as_str()).collect()
    }

    /// Sets `changes` as a client would (checked first); the arguments afterwards.
    fn set(camera: &RpicamControls, changes: &[(&str, ControlValue)]) -> Vec<String> {
        let asked: Vec<(String, ControlValue)> = changes
            .iter()
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect();
        let checked = check_changes(&camera.list().unwrap(), &asked).unwrap();
        camera.apply(&checked).unwrap();
        camera.arguments()
    }

    #[test]
    fn the_controls_are_the_libcamera_sources_with_focus_only_for_a_focus_motor() {
        let v3 = RpicamControls::new(Some("imx708_wide"), None);
        // The libcamera source's controls, in its order, but for those rpicam-vid has no
        // option for here.
        let every: Vec<(LibcameraId, Limits)> = LibcameraId::ALL
            .iter()
            .map(|&id| {
                let limits = Limits {
                    min: 0.0,
                    max: 10.0,
                    default: None,
                    values: Vec::new(),
                };
                (id, limits)
            })
            .collect();
        let libcamera = user_controls(&every, &Current::from_limits(&every));
        let not_here = [
            "exposure_auto",
            "white_balance_auto",
            "red_gain",
            "blue_gain",
            "hdr_mode",
        ];
        let expected: Vec<&str> = names(&libcamera)
            .into_iter()
            .filter(|n| !not_here.contains(n))
            .collect();
        assert_eq!(expected.len(), 12);
        assert_eq!(names(&v3.list().unwrap()), expected);
        for control in v3.list().unwrap() {
            let same = libcamera.iter().find(|c| c.name == control.name).unwrap();
            assert_eq!(control.label, same.label);
        }
        assert_eq!(v3.identity(), "rpicam imx708_wide");
        let v2 = RpicamControls::new(Some("imx219"), None);
        let listed = v2.list().unwrap();
        assert!(!names(&listed)
            .iter()
            .any(|n| n.contains("focus") || n.contains("lens")));
        let find = |name: &str| listed.iter().find(|c| c.name == name).unwrap().clone();
        assert_eq!(
            find("brightness").kind,
            ControlKind::Integer {
                min: -100,
                max: 100,
                step: 1
            }
        );
        assert_eq!(find("contrast").default, 100);
        assert_eq!(
            find("analogue_gain").kind,
            ControlKind::Integer {
                min: 0,
                max: 1066,
                step: 1
            }
        );
        let ControlKind::Menu { choices } = find("noise_reduction").kind else {
            panic!()
        };
        let choices: Vec<&str> = choices.iter().map(|(_, c)| c.as_str()).collect();
        assert_eq!(choices, ["off", "fast", "high_quality", "minimal"]);
        // At the defaults rpicam-vid gets no control argument at all.
        assert!(v2.arguments().is_empty());
        assert_eq!(
            RpicamControls::new(None, Some(1)).identity(),
            "rpicam camera 1"
        );
    }

    #[test]
    fn changes_become_rpicam_vid_arguments() {
        let camera = RpicamControls::new(Some("imx708"), None);
        let n = ControlValue::Number;
        let text = |s: &str| ControlValue::Text(s.to_string());
        let args = set(
            &camera,
            &[
                ("brightness", n(30.0)),
                ("ev", n(-150.0)),
                ("exposure_time_us", n(20_000.0)),
                ("analogue_gain", n(250.0)),
                ("awb_mode", text("daylight")),
                ("noise_reduction", text("high_quality")),
                ("contrast", n(100.0)),
                ("sharpness", n(200.0)),
            ],
        );
        assert_eq!(
            args,
            [
                "--shutter=20000",
                "--ev=-1.5",
                "--gain=2.5",
                "--awb=daylight",
                "--brightness=0.3",
                "--sharpness=2",
                "--denoise=cdn_hq",
            ]
        );
        // A lens position switches focus to manual; both go.
        let args = set(&camera, &[("lens_position", n(205.0))]);
        assert!(
            args.ends_with(&[
                "--autofocus-mode=manual".to_string(),
                "--lens-position=2.05".to_string()
            ]),
            "{args:?}"
        );
        let args = set(&camera, &[("focus_trigger", ControlValue::Boolean(true))]);
        assert_eq!(args.last().unwrap(), "--autofocus-mode=auto");
        let args = set(&camera, &[("noise_reduction", text("minimal"))]);
        assert!(args.contains(&"--denoise=cdn_off".to_string()), "{args:?}");
    }

    #[test]
    fn only_a_change_of_arguments_restarts() {
        let camera = RpicamControls::new(Some("imx219"), None);
        let n = ControlValue::Number;
        let start = camera.generation();
        set(&camera, &[("brightness", n(0.0))]);
        assert_eq!(camera.generation(), start, "already at 0");
        set(&camera, &[("brightness", n(-40.0))]);
        assert_eq!(camera.generation(), start + 1);
        assert_eq!(camera.last_change(), "brightness = -40");
        assert_eq!(camera.arguments(), ["--brightness=-0.4"]);
        set(&camera, &[("brightness", n(-40.0))]);
        assert_eq!(camera.generation(), start + 1);
        // Out of range: refused before it reaches the camera.
        let refused = check_changes(
            &camera.list().unwrap(),
            &[("brightness".to_string(), n(101.0))],
        );
        assert!(refused.is_err());
        assert_eq!(camera.generation(), start + 1);
    }

    #[test]
    fn decimals_of_hundredths() {
        for (n, text) in [
            (0, "0"),
            (30, "0.3"),
            (5, "0.05"),
            (-5, "-0.05"),
            (-150, "-1.5"),
            (200, "2"),
            (1066, "10.66"),
        ] {
            assert_eq!(decimal(n), text);
        }
    }
}
