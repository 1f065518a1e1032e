//! libcamera's camera controls as clients see them ([`ControlInfo`]: names such as
//! `exposure_time_us`, `awb_mode`, `lens_position`), and the values a change puts on
//! the next requests, without libcamera's types: the libcamera source turns its
//! `ControlInfoMap`, request metadata and `ControlList`s into and out of the plain
//! values here ([`Limits`], [`RequestValue`]), and the unit tests feed it the control
//! tables real camera modules report (`tests/fixtures/pi/controls-*.txt`).
//!
//! Fractional libcamera controls (gains, EV, brightness, contrast, saturation,
//! sharpness, lens position) are given in **hundredths**, since a control's value is a
//! whole number: `analogue_gain` 250 is a gain of 2.5, `ev` -50 is half a stop darker,
//! `lens_position` 200 is 2 dioptres (focused at 50 cm; 0 is infinity). Exposure time is
//! whole microseconds, as libcamera has it.
//!
//! Changes that only make sense together go together: setting `red_gain` or
//! `blue_gain` sends both colour gains and turns automatic white balance off (as the
//! camera itself does), `lens_position` switches `focus_mode` to manual and
//! `focus_trigger` to single, unless the same change sets those too.

use std::collections::HashMap;

use crate::controls::{ControlInfo, ControlKind};

/// Fractional controls are whole numbers of hundredths.
pub const HUNDREDTHS: f64 = 100.0;

/// The libcamera controls mapped here, by libcamera's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LibcameraId {
    AeEnable,
    ExposureTime,
    ExposureValue,
    AnalogueGain,
    AwbEnable,
    AwbMode,
    ColourGains,
    Brightness,
    Contrast,
    Saturation,
    Sharpness,
    NoiseReductionMode,
    AfMode,
    AfTrigger,
    LensPosition,
    HdrMode,
}

impl LibcameraId {
    pub const ALL: [LibcameraId; 16] = [
        LibcameraId::AeEnable,
        LibcameraId::ExposureTime,
        LibcameraId::ExposureValue,
        LibcameraId::AnalogueGain,
        LibcameraId::AwbEnable,
        LibcameraId::AwbMode,
        LibcameraId::ColourGains,
        LibcameraId::Brightness,
        LibcameraId::Contrast,
        LibcameraId::Saturation,
        LibcameraId::Sharpness,
        LibcameraId::NoiseReductionMode,
        LibcameraId::AfMode,
        LibcameraId::AfTrigger,
        LibcameraId::LensPosition,
        LibcameraId::HdrMode,
    ];

    /// libcamera's name of the control.
    pub fn name(self) -> &'static str {
        match self {
            LibcameraId::AeEnable => "AeEnable",
            LibcameraId::ExposureTime => "ExposureTime",
            LibcameraId::ExposureValue => "ExposureValue",
            LibcameraId::AnalogueGain => "AnalogueGain",
            LibcameraId::AwbEnable => "AwbEnable",
            LibcameraId::AwbMode => "AwbMode",
            LibcameraId::ColourGains => "ColourGains",
            LibcameraId::Brightness => "Brightness",
            LibcameraId::Contrast => "Contrast",
            LibcameraId::Saturation => "Saturation",
            LibcameraId::Sharpness => "Sharpness",
            LibcameraId::NoiseReductionMode => "NoiseReductionMode",
            LibcameraId::AfMode => "AfMode",
            LibcameraId::AfTrigger => "AfTrigger",
            LibcameraId::LensPosition => "LensPosition",
            LibcameraId::HdrMode => "HdrMode",
        }
    }

    pub fn from_name(name: &str) -> Option<LibcameraId> {
        LibcameraId::ALL.into_iter().find(|id| id.name() == name)
    }
}

/// A control's limits as the camera reports them, as plain numbers: booleans 0 and 1,
/// enumerations their numbers, fractions as they are.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Limits {
    pub min: f64,
    pub max: f64,
    /// The camera's default, when it says.
    pub default: Option<f64>,
    /// The values an enumerated control takes, when the camera lists them (otherwise
    /// every number from `min` to `max`).
    pub values: Vec<i64>,
}

/// A value as it goes on a request, in the type libcamera has for the control.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestValue {
    Bool(bool),
    Int32(i32),
    Float(f32),
    /// Two floats (the red and blue colour gains).
    FloatPair([f32; 2]),
}

/// How a client's whole number becomes the control's value.
#[derive(Debug, Clone, Copy)]
enum How {
    /// On or off.
    Flag,
    /// The number as it is (microseconds).
    Whole,
    /// Hundredths of a fraction.
    Hundredths,
    /// One of the named choices (by libcamera's enumeration number).
    Menu(&'static [(i64, &'static str)]),
    /// An action: sets the control to 0 (libcamera's `AfTriggerStart`).
    Trigger,
    /// One of the two `ColourGains`, in hundredths.
    GainPart(usize),
}

/// One control as clients see it.
struct UserControl {
    name: &'static str,
    label: &'static str,
    id: LibcameraId,
    how: How,
    /// The value (in libcamera's units) when the camera gives no default.
    neutral: f64,
}

const AWB_MODES: &[(i64, &str)] = &[
    (0, "auto"),
    (1, "incandescent"),
    (2, "tungsten"),
    (3, "fluorescent"),
    (4, "indoor"),
    (5, "daylight"),
    (6, "cloudy"),
    (7, "custom"),
];

const NOISE_REDUCTION_MODES: &[(i64, &str)] = &[
    (0, "off"),
    (1, "fast"),
    (2, "high_quality"),
    (3, "minimal"),
    (4, "zsl"),
];

/// libcamera's `AfModeManual`, `AfModeAuto` (one scan per trigger), `AfModeContinuous`.
const FOCUS_MODES: &[(i64, &str)] = &[(0, "manual"), (1, "single"), (2, "continuous")];
const FOCUS_MANUAL: i64 = 0;
const FOCUS_SINGLE: i64 = 1;

const HDR_MODES: &[(i64, &str)] = &[
    (0, "off"),
    (1, "multi_exposure_unmerged"),
    (2, "multi_exposure"),
    (3, "single_exposure"),
    (4, "night"),
];

const CONTROLS: &[UserControl] = &[
    UserControl {
        name: "exposure_auto",
        label: "Exposure, automatic",
        id: LibcameraId::AeEnable,
        how: How::Flag,
        neutral: 1.0,
    },
    UserControl {
        name: "exposure_time_us",
        label: "Exposure time (microseconds; with automatic exposure, fixes the time \
                and leaves the gain automatic)",
        id: LibcameraId::ExposureTime,
        how: How::Whole,
        neutral: 0.0,
    },
    UserControl {
        name: "ev",
        label: "Exposure compensation (hundredths of a stop)",
        id: LibcameraId::ExposureValue,
        how: How::Hundredths,
        neutral: 0.0,
    },
    UserControl {
        name: "analogue_gain",
        label: "Analogue gain (hundredths: 100 is 1x)",
        id: LibcameraId::AnalogueGain,
        how: How::Hundredths,
        neutral: 1.0,
    },
    UserControl {
        name: "white_balance_auto",
        label: "White balance, automatic",
        id: LibcameraId::AwbEnable,
        how: How::Flag,
        neutral: 1.0,
    },
    UserControl {
        name: "awb_mode",
        label: "White balance mode (of automatic white balance)",
        id: LibcameraId::AwbMode,
        how: How::Menu(AWB_MODES),
        neutral: 0.0,
    },
    UserControl {
        name: "red_gain",
        label: "Red gain (hundredths; setting it turns automatic white balance off)",
        id: LibcameraId::ColourGains,
        how: How::GainPart(0),
        neutral: 1.0,
    },
    UserControl {
        name: "blue_gain",
        label: "Blue gain (hundredths; setting it turns automatic white balance off)",
        id: LibcameraId::ColourGains,
        how: How::GainPart(1),
        neutral: 1.0,
    },
    UserControl {
        name: "brightness",
        label: "Brightness (hundredths: -100 to 100, 0 unchanged)",
        id: LibcameraId::Brightness,
        how: How::Hundredths,
        neutral: 0.0,
    },
    UserControl {
        name: "contrast",
        label: "Contrast (hundredths: 100 unchanged)",
        id: LibcameraId::Contrast,
        how: How::Hundredths,
        neutral: 1.0,
    },
    UserControl {
        name: "saturation",
        label: "Saturation (hundredths: 100 unchanged, 0 greyscale)",
        id: LibcameraId::Saturation,
        how: How::Hundredths,
        neutral: 1.0,
    },
    UserControl {
        name: "sharpness",
        label: "Sharpness (hundredths: 100 normal)",
        id: LibcameraId::Sharpness,
        how: How::Hundredths,
        neutral: 1.0,
    },
    UserControl {
        name: "noise_reduction",
        label: "Noise reduction",
        id: LibcameraId::NoiseReductionMode,
        how: How::Menu(NOISE_REDUCTION_MODES),
        neutral: 1.0,
    },
    UserControl {
        name: "focus_mode",
        label: "Focus mode (single: one autofocus scan per focus_trigger)",
        id: LibcameraId::AfMode,
        how: How::Menu(FOCUS_MODES),
        neutral: 2.0,
    },
    UserControl {
        name: "focus_trigger",
        label: "Autofocus once (switches focus_mode to single)",
        id: LibcameraId::AfTrigger,
        how: How::Trigger,
        neutral: 0.0,
    },
    UserControl {
        name: "lens_position",
        label: "Lens position (hundredths of a dioptre: 0 infinity, 200 half a metre; \
                switches focus_mode to manual)",
        id: LibcameraId::LensPosition,
        how: How::Hundredths,
        neutral: 1.0,
    },
    UserControl {
        name: "hdr_mode",
        label: "libcamera HDR mode (the image processor's; --hdr is the sensor's)",
        id: LibcameraId::HdrMode,
        how: How::Menu(HDR_MODES),
        neutral: 0.0,
    },
];

/// The last known value of each control: the camera's default, then what was set,
/// then what the request metadata reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Current {
    values: HashMap<LibcameraId, Vec<f64>>,
}

impl Current {
    /// The defaults of the controls `camera` reports (the neutral value where it
    /// gives none).
    pub fn from_limits(camera: &[(LibcameraId, Limits)]) -> Current {
        let mut current = Current::default();
        for (id, limits) in camera {
            let neutral = CONTROLS
                .iter()
                .find(|c| c.id == *id)
                .map_or(0.0, |c| c.neutral);
            let value = limits
                .default
                .unwrap_or(neutral.clamp(limits.min, limits.max.max(limits.min)));
            let width = if *id == LibcameraId::ColourGains {
                2
            } else {
                1
            };
            current.values.insert(*id, vec![value; width]);
        }
        current
    }

    /// Takes a value the camera reports (metadata) or that was set.
    pub fn note(&mut self, id: LibcameraId, value: &[f64]) {
        if !value.is_empty() && value.iter().all(|v| v.is_finite()) {
            self.values.insert(id, value.to_vec());
        }
    }

    /// Takes the values put on a request.
    pub fn note_request(&mut self, set: &[(LibcameraId, RequestValue)]) {
        for (id, value) in set {
            // A trigger is an action, not a state.
            if *id == LibcameraId::AfTrigger {
                continue;
            }
            let numbers = match value {
                RequestValue::Bool(b) => vec![f64::from(u8::from(*b))],
                RequestValue::Int32(n) => vec![f64::from(*n)],
                RequestValue::Float(f) => vec![f64::from(*f)],
                RequestValue::FloatPair([a, b]) => vec![f64::from(*a), f64::from(*b)],
            };
            self.note(*id, &numbers);
        }
    }

    fn get(&self, id: LibcameraId, part: usize) -> Option<f64> {
        self.values.get(&id).and_then(|v| v.get(part)).copied()
    }
}

fn scaled(value: f64) -> i64 {
    (value * HUNDREDTHS).round() as i64
}

/// The controls clients see for a camera reporting `camera`, with `current` values.
/// Controls the camera does not report are left out, as are those whose reported
/// range is empty (libcamera 0.2 reported the imx296's exposure time as `[29..0]`).
pub fn user_controls(camera: &[(LibcameraId, Limits)], current: &Current) -> Vec<ControlInfo> {
    let mut out = Vec::new();
    let flag = |id: LibcameraId| current.get(id, 0).map(|v| v != 0.0);
    let number = |id: LibcameraId| current.get(id, 0).map(|v| v.round() as i64);
    for control in CONTROLS {
        let Some((_, limits)) = camera.iter().find(|(id, _)| *id == control.id) else {
            continue;
        };
        if !(limits.min.is_finite() && limits.max.is_finite()) || limits.max < limits.min {
            continue;
        }
        let now = |part: usize| current.get(control.id, part).unwrap_or(control.neutral);
        let default = limits.default.unwrap_or(control.neutral);
        let (kind, default, value) = match control.how {
            How::Flag => (
                ControlKind::Boolean,
                i64::from(default != 0.0),
                i64::from(now(0) != 0.0),
            ),
            How::Whole => (
                ControlKind::Integer {
                    min: limits.min.ceil() as i64,
                    max: limits.max.floor() as i64,
                    step: 1,
                },
                default.round() as i64,
                now(0).round() as i64,
            ),
            How::Hundredths | How::GainPart(_) => {
                let part = match control.how {
                    How::GainPart(p) => p,
                    _ => 0,
                };
                (
                    ControlKind::Integer {
                        min: (limits.min * HUNDREDTHS).ceil() as i64,
                        max: (limits.max * HUNDREDTHS).floor() as i64,
                        step: 1,
                    },
                    scaled(default),
                    scaled(now(part)),
                )
            }
            How::Menu(names) => {
                let offered = |n: i64| {
                    if limits.values.is_empty() {
                        n as f64 >= limits.min && n as f64 <= limits.max
                    } else {
                        limits.values.contains(&n)
                    }
                };
                let choices: Vec<(i64, String)> = names
                    .iter()
                    .filter(|(n, _)| offered(*n))
                    .map(|&(n, label)| (n, label.to_string()))
                    .collect();
                if choices.is_empty() {
                    continue;
                }
                (
                    ControlKind::Menu { choices },
                    default.round() as i64,
                    now(0).round() as i64,
                )
            }
            How::Trigger => (ControlKind::Button, 0, 0),
        };
        let inactive = match control.id {
            LibcameraId::AwbMode => flag(LibcameraId::AwbEnable) == Some(false),
            LibcameraId::LensPosition => number(LibcameraId::AfMode) != Some(FOCUS_MANUAL),
            LibcameraId::AfTrigger => number(LibcameraId::AfMode) != Some(FOCUS_SINGLE),
            _ => false,
        };
        out.push(ControlInfo {
            name: control.name.to_string(),
            label: control.label.to_string(),
            kind,
            default,
            value,
            read_only: false,
            inactive,
        });
    }
    out
}

/// The values to put on the next requests for `changes` (already checked against
/// [`user_controls`]), with what goes together added (see the module's text).
pub fn request_values(
    changes: &[(String, i64)],
    current: &Current,
) -> Result<Vec<(LibcameraId, RequestValue)>, String> {
    let mut out: Vec<(LibcameraId, RequestValue)> = Vec::new();
    let mut put = |id: LibcameraId, value: RequestValue| {
        out.retain(|(i, _)| *i != id);
        out.push((id, value));
    };
    let asked = |id: LibcameraId| {
        changes
            .iter()
            .any(|(name, _)| CONTROLS.iter().any(|c| c.name == name && c.id == id))
    };
    let mut gains: Option<[f64; 2]> = None;
    for (name, value) in changes {
        let control = CONTROLS
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| format!("unknown control '{name}'"))?;
        let id = control.id;
        match control.how {
            How::Flag => put(id, RequestValue::Bool(*value != 0)),
            How::Whole => put(
                id,
                RequestValue::Int32(i32::try_from(*value).map_err(|_| {
                    format!("control '{name}': {value} is too large for the camera")
                })?),
            ),
            How::Hundredths => {
                put(id, RequestValue::Float((*value as f64 / HUNDREDTHS) as f32));
                if id == LibcameraId::LensPosition && !asked(LibcameraId::AfMode) {
                    put(
                        LibcameraId::AfMode,
                        RequestValue::Int32(FOCUS_MANUAL as i32),
                    );
                }
            }
            How::Menu(_) => put(
                id,
                RequestValue::Int32(
                    i32::try_from(*value).map_err(|_| format!("control '{name}': {value}"))?,
                ),
            ),
            How::Trigger => {
                let single = current.get(LibcameraId::AfMode, 0) == Some(FOCUS_SINGLE as f64);
                if !single && !asked(LibcameraId::AfMode) {
                    put(
                        LibcameraId::AfMode,
                        RequestValue::Int32(FOCUS_SINGLE as i32),
                    );
                }
                // libcamera's AfTriggerStart.
                put(id, RequestValue::Int32(0));
            }
            How::GainPart(part) => {
                let pair = gains.get_or_insert([
                    current.get(LibcameraId::ColourGains, 0).unwrap_or(1.0),
                    current.get(LibcameraId::ColourGains, 1).unwrap_or(1.0),
                ]);
                pair[part] = *value as f64 / HUNDREDTHS;
            }
        }
    }
    if let Some([red, blue]) = gains {
        put(
            LibcameraId::ColourGains,
            RequestValue::FloatPair([red as f32, blue as f32]),
        );
        if !asked(LibcameraId::AwbEnable) {
            put(LibcameraId::AwbEnable, RequestValue::Bool(false));
        }
    }
    Ok(out)
}

/// Reads a control table as `rpicam-hello --list-cameras -v` prints it (`AnalogueGain :
/// [1.000000..16.000000]`, `AeEnable : [false..true]`), keeping the controls mapped
/// here; other lines are skipped. For the unit tests' fixtures.
#[cfg(test)]
pub fn parse_control_table(text: &str) -> Vec<(LibcameraId, Limits)> {
    let number = |t: &str| match t.trim() {
        "false" => Some(0.0),
        "true" => Some(1.0),
        t => t.parse::<f64>().ok(),
    };
    text.lines()
        .filter_map(|line| {
            let (name, range) = line.trim().split_once(" : ")?;
            let id = LibcameraId::from_name(name.trim())?;
            let range = range.trim().strip_prefix('[')?.strip_suffix(']')?;
            let (min, max) = range.split_once("..")?;
            Some((
                id,
                Limits {
                    min: number(min)?,
                    max: number(max)?,
                    default: None,
                    values: Vec::new(),
                },
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controls::{check_changes, ControlValue};

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/pi");

    fn table(file: &str) -> Vec<(LibcameraId, Limits)> {
        let text = std::fs::read_to_string(format!("{FIXTURES}/{file}")).unwrap();
        let table = parse_control_table(&text);
        assert!(!table.is_empty(), "{file}");
        table
    }

    fn controls_of(file: &str) -> Vec<ControlInfo> {
        let camera = table(file);
        user_controls(&camera, &Current::from_limits(&camera))
    }

    fn find<'a>(controls: &'a [ControlInfo], name: &str) -> &'a ControlInfo {
        controls
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no {name} in {controls:?}"))
    }

    fn range(controls: &[ControlInfo], name: &str) -> (i64, i64) {
        match find(controls, name).kind {
            ControlKind::Integer { min, max, step: 1 } => (min, max),
            ref other => panic!("{name}: {other:?}"),
        }
    }

    fn choices(controls: &[ControlInfo], name: &str) -> Vec<String> {
        match &find(controls, name).kind {
            ControlKind::Menu { choices } => choices.iter().map(|(_, c)| c.clone()).collect(),
            other => panic!("{name}: {other:?}"),
        }
    }

    fn names(controls: &[ControlInfo]) -> Vec<&str> {
        controls.iter().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn camera_module_3_has_every_control_autofocus_and_hdr() {
        let v3 = controls_of("controls-imx708.txt");
        assert_eq!(
            names(&v3),
            [
                "exposure_auto",
                "exposure_time_us",
                "ev",
                "analogue_gain",
                "white_balance_auto",
                "awb_mode",
                "red_gain",
                "blue_gain",
                "brightness",
                "contrast",
                "saturation",
                "sharpness",
                "noise_reduction",
                "focus_mode",
                "focus_trigger",
                "lens_position",
                "hdr_mode",
            ]
        );
        // Exposure up to 220 s on libcamera 0.5 (the module's longest, 112 s, doubled
        // by the long-exposure mode of this driver), in microseconds.
        assert_eq!(range(&v3, "exposure_time_us"), (26, 220_416_802));
        assert_eq!(range(&v3, "analogue_gain"), (113, 1600));
        assert_eq!(range(&v3, "ev"), (-800, 800));
        assert_eq!(range(&v3, "brightness"), (-100, 100));
        assert_eq!(range(&v3, "contrast"), (0, 3200));
        assert_eq!(range(&v3, "red_gain"), (0, 3200));
        assert_eq!(range(&v3, "lens_position"), (0, 1500));
        assert_eq!(
            choices(&v3, "focus_mode"),
            ["manual", "single", "continuous"]
        );
        assert_eq!(find(&v3, "focus_trigger").kind, ControlKind::Button);
        assert_eq!(
            choices(&v3, "hdr_mode"),
            [
                "off",
                "multi_exposure_unmerged",
                "multi_exposure",
                "single_exposure",
                "night"
            ]
        );
        assert_eq!(choices(&v3, "awb_mode").len(), 8);
        assert_eq!(find(&v3, "exposure_auto").kind, ControlKind::Boolean);
        // Neutral values where the listing gives no default.
        assert_eq!(find(&v3, "contrast").value, 100);
        assert_eq!(find(&v3, "ev").value, 0);
        assert_eq!(find(&v3, "focus_mode").value, 2);
        // Continuous focus: the lens position and the trigger do nothing now.
        assert!(find(&v3, "lens_position").inactive);
        assert!(find(&v3, "focus_trigger").inactive);
        assert!(!find(&v3, "awb_mode").inactive);
    }

    #[test]
    fn modules_without_a_focus_motor_have_no_focus_controls() {
        for file in ["controls-imx219.txt", "controls-imx477.txt"] {
            let controls = controls_of(file);
            let n = names(&controls);
            assert!(
                n.contains(&"analogue_gain") && n.contains(&"awb_mode"),
                "{file}"
            );
            assert!(
                !n.iter()
                    .any(|n| n.starts_with("focus") || *n == "lens_position"),
                "{file}: {n:?}"
            );
        }
        let v2 = controls_of("controls-imx219.txt");
        assert_eq!(range(&v2, "exposure_time_us"), (75, 11_766_829));
        assert_eq!(range(&v2, "analogue_gain"), (100, 1066));
        let hq = controls_of("controls-imx477.txt");
        assert_eq!(range(&hq, "exposure_time_us"), (114, 694_422_939));
        assert_eq!(range(&hq, "analogue_gain"), (100, 2226));
    }

    #[test]
    fn an_empty_range_leaves_the_control_out() {
        // libcamera 0.2 reported the imx296's exposure time as [29..0].
        let gs = controls_of("controls-imx296.txt");
        let n = names(&gs);
        assert!(!n.contains(&"exposure_time_us"), "{n:?}");
        assert_eq!(range(&gs, "analogue_gain"), (100, 25118));
        assert!(n.contains(&"hdr_mode"));
    }

    fn set(
        camera: &[(LibcameraId, Limits)],
        current: &Current,
        changes: &[(&str, ControlValue)],
    ) -> Vec<(LibcameraId, RequestValue)> {
        let controls = user_controls(camera, current);
        let asked: Vec<(String, ControlValue)> = changes
            .iter()
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect();
        let checked = check_changes(&controls, &asked).unwrap();
        request_values(&checked, current).unwrap()
    }

    #[test]
    fn changes_become_request_values_in_libcamera_units() {
        let camera = table("controls-imx708.txt");
        let mut current = Current::from_limits(&camera);
        let n = ControlValue::Number;
        let values = set(
            &camera,
            &current,
            &[
                ("exposure_auto", ControlValue::Boolean(false)),
                ("exposure_time_us", n(10_000.0)),
                ("analogue_gain", n(250.0)),
                ("ev", n(-50.0)),
                ("awb_mode", ControlValue::Text("daylight".into())),
                ("noise_reduction", ControlValue::Text("high_quality".into())),
                ("hdr_mode", ControlValue::Text("single_exposure".into())),
                ("sharpness", n(150.0)),
            ],
        );
        assert_eq!(
            values,
            [
                (LibcameraId::AeEnable, RequestValue::Bool(false)),
                (LibcameraId::ExposureTime, RequestValue::Int32(10_000)),
                (LibcameraId::AnalogueGain, RequestValue::Float(2.5)),
                (LibcameraId::ExposureValue, RequestValue::Float(-0.5)),
                (LibcameraId::AwbMode, RequestValue::Int32(5)),
                (LibcameraId::NoiseReductionMode, RequestValue::Int32(2)),
                (LibcameraId::HdrMode, RequestValue::Int32(3)),
                (LibcameraId::Sharpness, RequestValue::Float(1.5)),
            ]
        );
        current.note_request(&values);
        let after = user_controls(&camera, &current);
        assert_eq!(find(&after, "exposure_auto").value, 0);
        assert_eq!(find(&after, "analogue_gain").value, 250);
        assert_eq!(find(&after, "awb_mode").value, 5);

        // Out of the camera's range: refused before anything reaches the camera.
        let controls = user_controls(&camera, &current);
        for (name, bad) in [
            ("analogue_gain", 1601.0),
            ("analogue_gain", 100.0),
            ("exposure_time_us", 25.0),
            ("lens_position", 1501.0),
            ("ev", 801.0),
        ] {
            let asked = [(name.to_string(), n(bad))];
            assert!(check_changes(&controls, &asked).is_err(), "{name} {bad}");
        }
    }

    #[test]
    fn colour_gains_go_as_a_pair_and_turn_automatic_white_balance_off() {
        let camera = table("controls-imx219.txt");
        let mut current = Current::from_limits(&camera);
        current.note(LibcameraId::ColourGains, &[1.8, 1.4]);
        let values = set(
            &camera,
            &current,
            &[("red_gain", ControlValue::Number(210.0))],
        );
        assert_eq!(
            values,
            [
                (
                    LibcameraId::ColourGains,
                    RequestValue::FloatPair([2.1, 1.4])
                ),
                (LibcameraId::AwbEnable, RequestValue::Bool(false)),
            ]
        );
        current.note_request(&values);
        let listed = user_controls(&camera, &current);
        assert_eq!(find(&listed, "red_gain").value, 210);
        assert_eq!(find(&listed, "blue_gain").value, 140);
        assert!(find(&listed, "awb_mode").inactive);
        // Both gains, and automatic white balance kept as asked.
        let values = set(
            &camera,
            &current,
            &[
                ("blue_gain", ControlValue::Number(300.0)),
                ("white_balance_auto", ControlValue::Boolean(true)),
                ("red_gain", ControlValue::Number(100.0)),
            ],
        );
        assert_eq!(
            values,
            [
                (LibcameraId::AwbEnable, RequestValue::Bool(true)),
                (
                    LibcameraId::ColourGains,
                    RequestValue::FloatPair([1.0, 3.0])
                ),
            ]
        );
    }

    /// Makes one change, checks the values it puts on the request, and lists the
    /// controls afterwards.
    fn step(
        camera: &[(LibcameraId, Limits)],
        current: &mut Current,
        change: (&str, ControlValue),
        expected: &[(LibcameraId, RequestValue)],
    ) -> Vec<ControlInfo> {
        let values = set(camera, current, &[change]);
        assert_eq!(values, expected);
        current.note_request(&values);
        user_controls(camera, current)
    }

    #[test]
    fn autofocus_lens_position_and_trigger_switch_the_focus_mode() {
        let camera = table("controls-imx708.txt");
        let mut current = Current::from_limits(&camera);
        let listed = step(
            &camera,
            &mut current,
            ("lens_position", ControlValue::Number(200.0)),
            &[
                (LibcameraId::LensPosition, RequestValue::Float(2.0)),
                (LibcameraId::AfMode, RequestValue::Int32(0)),
            ],
        );
        assert_eq!(find(&listed, "focus_mode").value, 0);
        assert!(!find(&listed, "lens_position").inactive);
        assert_eq!(find(&listed, "lens_position").value, 200);

        let listed = step(
            &camera,
            &mut current,
            ("focus_trigger", ControlValue::Boolean(true)),
            &[
                (LibcameraId::AfMode, RequestValue::Int32(1)),
                (LibcameraId::AfTrigger, RequestValue::Int32(0)),
            ],
        );
        assert_eq!(find(&listed, "focus_mode").value, 1);
        assert!(!find(&listed, "focus_trigger").inactive);
        // Back to continuous, by name.
        let values = set(
            &camera,
            &current,
            &[("focus_mode", ControlValue::Text("continuous".into()))],
        );
        assert_eq!(values, [(LibcameraId::AfMode, RequestValue::Int32(2))]);
    }

    #[test]
    fn metadata_updates_the_listed_values_and_ignores_nonsense() {
        let camera = table("controls-imx477.txt");
        let mut current = Current::from_limits(&camera);
        current.note(LibcameraId::ExposureTime, &[33_000.0]);
        current.note(LibcameraId::AnalogueGain, &[f64::NAN]);
        current.note(LibcameraId::ColourGains, &[]);
        let listed = user_controls(&camera, &current);
        assert_eq!(find(&listed, "exposure_time_us").value, 33_000);
        assert_eq!(find(&listed, "analogue_gain").value, 100);
        assert_eq!(find(&listed, "red_gain").value, 100);
        assert!(request_values(&[("hue".into(), 1)], &current).is_err());
        assert!(request_values(
            &[("exposure_time_us".into(), i64::from(i32::MAX) + 1)],
            &current
        )
        .is_err());
    }

    #[test]
    fn every_libcamera_name_reads_back() {
        for id in LibcameraId::ALL {
            assert_eq!(LibcameraId::from_name(id.name()), Some(id));
        }
        assert_eq!(LibcameraId::from_name("AfWindows"), None);
    }
}
