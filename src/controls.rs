//! Camera controls as the sources and the HTTP side both see them: what the running
//! camera lets a user set (each control's name, kind, range or choices, default and
//! current value), and [`ControlBoard`], the one place through which the HTTP side reads
//! and changes them without knowing which camera, or which kind of camera, runs.
//!
//! A source that has controls [attaches](ControlBoard::attach) a [`CameraControls`]
//! while its camera is open; the returned [`Attached`] takes them off the board when it
//! is dropped (the camera closed, unplugged or stopped). A change is checked against
//! the camera's own description first ([`check_changes`]): an unknown name, a value of
//! the wrong type, out of range or not one of the choices refuses the whole request,
//! and nothing is changed.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What values a control takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlKind {
    /// A whole number from `min` to `max` in steps of `step` (counted from `min`).
    Integer { min: i64, max: i64, step: i64 },
    /// On or off (kept as 1 or 0).
    Boolean,
    /// One of the named choices, each with the number the camera knows it by.
    Menu { choices: Vec<(i64, String)> },
    /// An action with no value (e.g. one autofocus run): setting it to `true` does it.
    Button,
}

/// One control of the running camera.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlInfo {
    /// The stable name clients use: lower case words joined by `_` (`brightness`,
    /// `white_balance_automatic`).
    pub name: String,
    /// The camera's own name for it, for people (`White Balance, Automatic`).
    pub label: String,
    pub kind: ControlKind,
    /// The camera's default (0 for a button).
    pub default: i64,
    /// The value now (0 for a button).
    pub value: i64,
    /// The camera reports it but refuses changes.
    pub read_only: bool,
    /// Has no effect now, because of another control's value (e.g. an exposure time
    /// while exposure is automatic); it can still be set.
    pub inactive: bool,
}

/// A value as a client asks for it.
#[derive(Debug, Clone, PartialEq)]
pub enum ControlValue {
    /// A number (a JSON number); must be whole for every kind of control.
    Number(f64),
    Boolean(bool),
    /// A menu choice by its name.
    Text(String),
}

impl fmt::Display for ControlValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlValue::Number(n) => write!(f, "{n}"),
            ControlValue::Boolean(b) => write!(f, "{b}"),
            ControlValue::Text(t) => write!(f, "{t:?}"),
        }
    }
}

/// Why a change was refused, as one line for the client (an HTTP 400, or 403 when
/// changes are switched off).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlError {
    /// The request itself is wrong (unknown name, wrong type, out of range): nothing was
    /// changed.
    Refused(String),
    /// Changes are switched off (`--controls off`).
    Forbidden,
    /// The camera failed to apply a checked change, or to describe its controls.
    Camera(String),
    /// The camera is not there to ask any more (its process ended): nothing was
    /// changed; it may be back in a moment.
    Gone(String),
    /// The camera did not answer in time: the change may or may not have been made.
    TimedOut(String),
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlError::Refused(why)
            | ControlError::Camera(why)
            | ControlError::Gone(why)
            | ControlError::TimedOut(why) => f.write_str(why),
            ControlError::Forbidden => {
                f.write_str("changing camera controls is switched off (--controls off)")
            }
        }
    }
}

/// The controls of one open camera.
pub trait CameraControls: Send + Sync {
    /// Every control with its current value.
    fn list(&self) -> Result<Vec<ControlInfo>, String>;
    /// Sets the controls to the values, as numbers the camera knows (already checked by
    /// [`check_changes`] against [`list`](Self::list)).
    fn apply(&self, changes: &[(String, i64)]) -> Result<(), String>;
    /// As [`apply`](Self::apply), saying what kind of failure it was; by default every
    /// failure is the camera's. Controls that reach their camera through something
    /// that can fail apart from it (another process) say more.
    fn try_apply(&self, changes: &[(String, i64)]) -> Result<(), ControlError> {
        self.apply(changes).map_err(ControlError::Camera)
    }
}

/// Checks the `changes` a client asks for against the camera's `controls` and turns each
/// value into the number the camera knows; the first wrong one refuses them all.
pub fn check_changes(
    controls: &[ControlInfo],
    changes: &[(String, ControlValue)],
) -> Result<Vec<(String, i64)>, ControlError> {
    let refused = |why: String| Err(ControlError::Refused(why));
    let mut checked: Vec<(String, i64)> = Vec::with_capacity(changes.len());
    for (name, value) in changes {
        let Some(control) = controls.iter().find(|c| &c.name == name) else {
            let known: Vec<&str> = controls.iter().map(|c| c.name.as_str()).collect();
            return refused(if known.is_empty() {
                format!("unknown control '{name}': this camera has no controls")
            } else {
                format!("unknown control '{name}' (known: {})", known.join(", "))
            });
        };
        if control.read_only {
            return refused(format!("control '{name}' cannot be changed (read-only)"));
        }
        let number = match (&control.kind, value) {
            (ControlKind::Integer { min, max, step }, ControlValue::Number(n)) => {
                let whole = whole_number(*n)
                    .ok_or_else(|| not_whole(name, value))
                    .map_err(ControlError::Refused)?;
                if whole < *min || whole > *max {
                    return refused(format!(
                        "control '{name}': {value} is out of range ({min} to {max})"
                    ));
                }
                // In 128 bits: a camera's range may span all of i64.
                if *step > 1 && (i128::from(whole) - i128::from(*min)) % i128::from(*step) != 0 {
                    return refused(format!(
                        "control '{name}': {value} is not a step of {step} from {min}"
                    ));
                }
                whole
            }
            (ControlKind::Boolean, ControlValue::Boolean(b)) => i64::from(*b),
            (ControlKind::Boolean, ControlValue::Number(n)) if *n == 0.0 || *n == 1.0 => *n as i64,
            (ControlKind::Menu { choices }, ControlValue::Text(t)) => {
                match choices.iter().find(|(_, label)| label == t) {
                    Some((n, _)) => *n,
                    None => return refused(unknown_choice(name, value, choices)),
                }
            }
            (ControlKind::Menu { choices }, ControlValue::Number(n)) => {
                match whole_number(*n).filter(|w| choices.iter().any(|(c, _)| c == w)) {
                    Some(w) => w,
                    None => return refused(unknown_choice(name, value, choices)),
                }
            }
            (ControlKind::Button, ControlValue::Boolean(true)) => 1,
            (kind, _) => {
                return refused(format!(
                    "control '{name}' takes {}, not {value}",
                    kind_words(kind)
                ))
            }
        };
        checked.retain(|(n, _)| n != name);
        checked.push((name.clone(), number));
    }
    Ok(checked)
}

fn whole_number(n: f64) -> Option<i64> {
    (n.fract() == 0.0 && n.abs() < 9.0e15).then_some(n as i64)
}

fn not_whole(name: &str, value: &ControlValue) -> String {
    format!("control '{name}' takes a whole number, not {value}")
}

fn unknown_choice(name: &str, value: &ControlValue, choices: &[(i64, String)]) -> String {
    let names: Vec<String> = choices.iter().map(|(_, c)| format!("{c:?}")).collect();
    format!(
        "control '{name}': {value} is not one of its choices ({})",
        names.join(", ")
    )
}

fn kind_words(kind: &ControlKind) -> &'static str {
    match kind {
        ControlKind::Integer { .. } => "a whole number",
        ControlKind::Boolean => "true or false",
        ControlKind::Menu { .. } => "one of its choices (by name)",
        ControlKind::Button => "true (to trigger it)",
    }
}

/// The controls of the camera that runs now, if it has any, for the HTTP side.
pub struct ControlBoard {
    current: Mutex<Option<(u64, Arc<dyn CameraControls>)>>,
    next_id: Mutex<u64>,
    /// Counts attachments and detachments (see [`ControlBoard::generation`]).
    generation: AtomicU64,
    changes_allowed: bool,
}

/// Keeps a camera's controls on the board; dropping it takes them off.
pub struct Attached {
    board: Arc<ControlBoard>,
    id: u64,
}

impl Drop for Attached {
    fn drop(&mut self) {
        let mut current = self.board.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.as_ref().is_some_and(|(id, _)| *id == self.id) {
            *current = None;
            self.board.generation.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl ControlBoard {
    /// An empty board; `changes_allowed: false` refuses every change (`--controls off`).
    pub fn new(changes_allowed: bool) -> Arc<ControlBoard> {
        Arc::new(ControlBoard {
            current: Mutex::new(None),
            next_id: Mutex::new(0),
            generation: AtomicU64::new(0),
            changes_allowed,
        })
    }

    /// Whether clients may change controls.
    pub fn changes_allowed(&self) -> bool {
        self.changes_allowed
    }

    /// Puts `controls` on the board (replacing any before) until the result is dropped.
    pub fn attach(self: &Arc<Self>, controls: Arc<dyn CameraControls>) -> Attached {
        let id = {
            let mut next = self.next_id.lock().unwrap_or_else(|e| e.into_inner());
            *next += 1;
            *next
        };
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some((id, controls));
        self.generation.fetch_add(1, Ordering::Relaxed);
        Attached {
            board: Arc::clone(self),
            id,
        }
    }

    /// A number that changes whenever controls are put on the board or taken off, for
    /// whoever passes them on elsewhere (a source's own process tells its server).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    fn camera(&self) -> Option<Arc<dyn CameraControls>> {
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        current.as_ref().map(|(_, c)| Arc::clone(c))
    }

    /// The running camera's controls; empty when no camera with controls runs.
    pub fn list(&self) -> Result<Vec<ControlInfo>, ControlError> {
        match self.camera() {
            Some(camera) => camera.list().map_err(ControlError::Camera),
            None => Ok(Vec::new()),
        }
    }

    /// Checks every change, then applies them all; a refused one changes nothing.
    /// Returns the controls as they are afterwards.
    pub fn set(
        &self,
        changes: &[(String, ControlValue)],
    ) -> Result<Vec<ControlInfo>, ControlError> {
        if !self.changes_allowed {
            return Err(ControlError::Forbidden);
        }
        let camera = self.camera();
        let controls = match &camera {
            Some(camera) => camera.list().map_err(ControlError::Camera)?,
            None => Vec::new(),
        };
        let checked = check_changes(&controls, changes)?;
        match camera {
            Some(camera) if !checked.is_empty() => {
                camera.try_apply(&checked)?;
                camera.list().map_err(ControlError::Camera)
            }
            _ => Ok(controls),
        }
    }
}

/// The client's name for a camera's control label: lower case ASCII words joined by
/// `_` (`White Balance, Automatic` → `white_balance_automatic`).
pub fn control_name(label: &str) -> String {
    let mut name = String::with_capacity(label.len());
    for word in label
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if !name.is_empty() {
            name.push('_');
        }
        name.push_str(&word.to_ascii_lowercase());
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn control(name: &str, kind: ControlKind) -> ControlInfo {
        ControlInfo {
            name: name.into(),
            label: name.into(),
            kind,
            default: 0,
            value: 0,
            read_only: false,
            inactive: false,
        }
    }

    fn sample() -> Vec<ControlInfo> {
        let mut locked = control(
            "exposure_absolute",
            ControlKind::Integer {
                min: 1,
                max: 5000,
                step: 1,
            },
        );
        locked.read_only = true;
        vec![
            control(
                "brightness",
                ControlKind::Integer {
                    min: 0,
                    max: 255,
                    step: 1,
                },
            ),
            control(
                "gain",
                ControlKind::Integer {
                    min: 0,
                    max: 100,
                    step: 10,
                },
            ),
            control("white_balance_automatic", ControlKind::Boolean),
            control(
                "power_line_frequency",
                ControlKind::Menu {
                    choices: vec![
                        (0, "Disabled".into()),
                        (1, "50 Hz".into()),
                        (2, "60 Hz".into()),
                    ],
                },
            ),
            control("autofocus_trigger", ControlKind::Button),
            locked,
        ]
    }

    fn change(name: &str, value: ControlValue) -> (String, ControlValue) {
        (name.to_string(), value)
    }

    #[test]
    fn good_changes_become_the_cameras_numbers() {
        let checked = check_changes(
            &sample(),
            &[
                change("brightness", ControlValue::Number(200.0)),
                change("gain", ControlValue::Number(30.0)),
                change("white_balance_automatic", ControlValue::Boolean(false)),
                change("power_line_frequency", ControlValue::Text("50 Hz".into())),
                change("autofocus_trigger", ControlValue::Boolean(true)),
                // The later of two values for one control wins.
                change("brightness", ControlValue::Number(201.0)),
            ],
        )
        .unwrap();
        assert_eq!(
            checked,
            vec![
                ("gain".to_string(), 30),
                ("white_balance_automatic".to_string(), 0),
                ("power_line_frequency".to_string(), 1),
                ("autofocus_trigger".to_string(), 1),
                ("brightness".to_string(), 201),
            ]
        );
    }

    #[test]
    fn one_wrong_change_refuses_them_all_with_a_reason() {
        let refusal = |changes: &[(String, ControlValue)]| match check_changes(&sample(), changes) {
            Err(ControlError::Refused(why)) => why,
            other => panic!("{changes:?} was not refused: {other:?}"),
        };
        let ok = change("brightness", ControlValue::Number(1.0));
        for (bad, says) in [
            (
                change("hue", ControlValue::Number(1.0)),
                "unknown control 'hue' (known: brightness, gain,",
            ),
            (
                change("brightness", ControlValue::Number(256.0)),
                "out of range (0 to 255)",
            ),
            (
                change("brightness", ControlValue::Number(-1.0)),
                "out of range",
            ),
            (
                change("brightness", ControlValue::Number(1.5)),
                "takes a whole number, not 1.5",
            ),
            (
                change("brightness", ControlValue::Text("max".into())),
                "takes a whole number, not \"max\"",
            ),
            (
                change("gain", ControlValue::Number(35.0)),
                "not a step of 10 from 0",
            ),
            (
                change("white_balance_automatic", ControlValue::Number(2.0)),
                "takes true or false",
            ),
            (
                change("power_line_frequency", ControlValue::Text("55 Hz".into())),
                "not one of its choices (\"Disabled\", \"50 Hz\", \"60 Hz\")",
            ),
            (
                change("power_line_frequency", ControlValue::Number(3.0)),
                "not one of its choices",
            ),
            (
                change("autofocus_trigger", ControlValue::Boolean(false)),
                "takes true (to trigger it)",
            ),
            (
                change("exposure_absolute", ControlValue::Number(10.0)),
                "cannot be changed (read-only)",
            ),
        ] {
            let why = refusal(&[ok.clone(), bad.clone()]);
            assert!(why.contains(says), "{bad:?}: {why}");
            assert!(!why.contains('\n'));
        }
        assert!(refusal_on_empty().contains("this camera has no controls"));
    }

    #[test]
    fn a_range_as_wide_as_i64_is_checked_without_overflow() {
        // As a camera in another process may describe one: from i64::MIN in steps of 3,
        // so that 1 is a step (2^63 + 1 is divisible by 3) and 0 is not.
        let wide = [control(
            "exposure",
            ControlKind::Integer {
                min: i64::MIN,
                max: i64::MAX,
                step: 3,
            },
        )];
        let one = check_changes(&wide, &[change("exposure", ControlValue::Number(1.0))]);
        assert_eq!(one, Ok(vec![("exposure".to_string(), 1)]));
        let zero = check_changes(&wide, &[change("exposure", ControlValue::Number(0.0))]);
        assert!(
            matches!(&zero, Err(ControlError::Refused(why)) if why.contains("not a step of 3")),
            "{zero:?}"
        );
    }

    fn refusal_on_empty() -> String {
        match check_changes(&[], &[change("brightness", ControlValue::Number(1.0))]) {
            Err(ControlError::Refused(why)) => why,
            other => panic!("{other:?}"),
        }
    }

    /// A camera kept in memory: what it was asked to apply.
    struct Recorder {
        controls: Mutex<Vec<ControlInfo>>,
        applied: Mutex<Vec<(String, i64)>>,
    }

    impl CameraControls for Recorder {
        fn list(&self) -> Result<Vec<ControlInfo>, String> {
            Ok(self.controls.lock().unwrap().clone())
        }
        fn apply(&self, changes: &[(String, i64)]) -> Result<(), String> {
            let mut controls = self.controls.lock().unwrap();
            for (name, value) in changes {
                controls.iter_mut().find(|c| &c.name == name).unwrap().value = *value;
            }
            self.applied.lock().unwrap().extend_from_slice(changes);
            Ok(())
        }
    }

    #[test]
    fn the_board_holds_the_running_cameras_controls_and_applies_only_checked_changes() {
        let board = ControlBoard::new(true);
        assert_eq!(board.list().unwrap(), Vec::new());
        let camera = Arc::new(Recorder {
            controls: Mutex::new(sample()),
            applied: Mutex::new(Vec::new()),
        });
        let attached = board.attach(camera.clone());
        assert_eq!(board.list().unwrap().len(), sample().len());

        let after = board
            .set(&[change("brightness", ControlValue::Number(7.0))])
            .unwrap();
        assert_eq!(
            after.iter().find(|c| c.name == "brightness").unwrap().value,
            7
        );
        // A refused request reaches the camera not at all.
        assert!(board
            .set(&[
                change("gain", ControlValue::Number(20.0)),
                change("brightness", ControlValue::Number(999.0)),
            ])
            .is_err());
        assert_eq!(
            *camera.applied.lock().unwrap(),
            vec![("brightness".to_string(), 7)]
        );

        // A newer camera replaces it; dropping the older one's guard leaves the newer.
        let second = board.attach(camera.clone());
        drop(attached);
        assert_eq!(board.list().unwrap().len(), sample().len());
        drop(second);
        assert_eq!(board.list().unwrap(), Vec::new());

        let locked = ControlBoard::new(false);
        let _kept = locked.attach(camera.clone());
        assert_eq!(
            locked.set(&[change("brightness", ControlValue::Number(1.0))]),
            Err(ControlError::Forbidden)
        );
        assert_eq!(locked.list().unwrap().len(), sample().len());
    }

    #[test]
    fn names_from_labels() {
        assert_eq!(
            control_name("White Balance, Automatic"),
            "white_balance_automatic"
        );
        assert_eq!(control_name("Brightness"), "brightness");
        assert_eq!(control_name("Power Line Frequency"), "power_line_frequency");
        assert_eq!(control_name("  Exposure (Absolute) "), "exposure_absolute");
        assert_eq!(control_name("Gain, Automatic"), "gain_automatic");
        assert_eq!(control_name(""), "");
    }
}
