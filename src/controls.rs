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
//!
//! With a [`ControlMemory`] (`--state-dir`), the board remembers, per camera identity,
//! the values clients set, in the order they set them: it hands them to the memory after
//! every change, applies them when that camera attaches again (each value checked on its
//! own: what this camera does not take is skipped with one warning, the rest applied),
//! and [resets](ControlBoard::reset) every control to its default, forgetting them.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::ratelog::{self, RateLimit};

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
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlError::Refused(why) | ControlError::Camera(why) => f.write_str(why),
            ControlError::Forbidden => {
                f.write_str("changing camera controls is switched off (--controls off)")
            }
        }
    }
}

/// The controls of one open camera.
pub trait CameraControls: Send + Sync {
    /// Which camera this is, the same each time it opens (for a V4L2 camera its driver
    /// and model, not the node it is on): saved values are kept per identity, so that one
    /// camera's are never applied to another.
    fn identity(&self) -> String;
    /// Every control with its current value.
    fn list(&self) -> Result<Vec<ControlInfo>, String>;
    /// Sets the controls to the values, as numbers the camera knows (already checked by
    /// [`check_changes`] against [`list`](Self::list)).
    fn apply(&self, changes: &[(String, i64)]) -> Result<(), String>;
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
                if *step > 1 && (whole - min) % step != 0 {
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

/// Where the values clients set are kept between runs, per camera identity (the file
/// of `saved_controls.rs`); it says what went wrong itself, in the log.
pub trait ControlMemory: Send + Sync {
    /// Where the values of camera `identity` are kept, for messages.
    fn place(&self, identity: &str) -> String;
    /// The values kept for camera `identity`, in the order they were set; none when
    /// nothing is kept or what is kept cannot be used (logged).
    fn recall(&self, identity: &str) -> Vec<(String, ControlValue)>;
    /// Keeps `values` for camera `identity`, in place of what was kept.
    fn keep(&self, identity: &str, values: &[(String, ControlValue)]) -> Result<(), String>;
    /// Forgets what was kept for camera `identity`.
    fn forget(&self, identity: &str) -> Result<(), String>;
}

/// The controls of the camera that runs now, if it has any, for the HTTP side.
pub struct ControlBoard {
    current: Mutex<Option<OnBoard>>,
    next_id: Mutex<u64>,
    changes_allowed: bool,
    memory: Option<Box<dyn ControlMemory>>,
    /// Held while controls change, so that changes reach the camera and the memory in
    /// one order.
    remembered: Mutex<Remembered>,
}

/// The camera on the board.
struct OnBoard {
    id: u64,
    camera: Arc<dyn CameraControls>,
    identity: String,
}

/// The values set for the last camera that attached, as its memory keeps them.
#[derive(Default)]
struct Remembered {
    /// `None` until a camera attaches.
    identity: Option<String>,
    values: Vec<(String, ControlValue)>,
    /// A reset came while the camera was closed: its defaults are set when it attaches.
    defaults_due: bool,
}

/// Keeps a camera's controls on the board; dropping it takes them off.
pub struct Attached {
    board: Arc<ControlBoard>,
    id: u64,
}

impl Drop for Attached {
    fn drop(&mut self) {
        let mut current = self.board.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.as_ref().is_some_and(|c| c.id == self.id) {
            *current = None;
        }
    }
}

/// One line per interval about settings that could not be saved.
static NOT_KEPT: RateLimit = RateLimit::new(ratelog::DEFAULT_INTERVAL);

impl ControlBoard {
    /// An empty board; `changes_allowed: false` refuses every change (`--controls off`).
    /// Nothing is kept between runs.
    pub fn new(changes_allowed: bool) -> Arc<ControlBoard> {
        ControlBoard::remembering(changes_allowed, None)
    }

    /// An empty board that keeps the values clients set in `memory`, if given, and
    /// applies them when their camera attaches (with `--controls off` too: they were
    /// set while changes were allowed).
    pub fn remembering(
        changes_allowed: bool,
        memory: Option<Box<dyn ControlMemory>>,
    ) -> Arc<ControlBoard> {
        Arc::new(ControlBoard {
            current: Mutex::new(None),
            next_id: Mutex::new(0),
            changes_allowed,
            memory,
            remembered: Mutex::new(Remembered::default()),
        })
    }

    /// Whether clients may change controls.
    pub fn changes_allowed(&self) -> bool {
        self.changes_allowed
    }

    /// Puts `controls` on the board (replacing any before) until the result is dropped,
    /// after applying the values kept for this camera.
    pub fn attach(self: &Arc<Self>, controls: Arc<dyn CameraControls>) -> Attached {
        let id = {
            let mut next = self.next_id.lock().unwrap_or_else(|e| e.into_inner());
            *next += 1;
            *next
        };
        let identity = controls.identity();
        {
            let mut remembered = self.remembered();
            self.restore(&mut remembered, controls.as_ref(), &identity);
            *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(OnBoard {
                id,
                camera: controls,
                identity,
            });
        }
        Attached {
            board: Arc::clone(self),
            id,
        }
    }

    fn remembered(&self) -> MutexGuard<'_, Remembered> {
        self.remembered.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies to `camera` what is remembered for it: read from the memory the first
    /// time it attaches (saying so in the log), from what this run remembers after that
    /// (each time it opens again, quietly).
    fn restore(&self, remembered: &mut Remembered, camera: &dyn CameraControls, identity: &str) {
        let first = remembered.identity.as_deref() != Some(identity);
        if first {
            *remembered = Remembered {
                identity: Some(identity.to_string()),
                values: self
                    .memory
                    .as_ref()
                    .map(|m| m.recall(identity))
                    .unwrap_or_default(),
                defaults_due: false,
            };
        }
        let due = std::mem::take(&mut remembered.defaults_due);
        if !due && remembered.values.is_empty() {
            return;
        }
        let place = match &self.memory {
            Some(memory) => memory.place(identity),
            None => "this run".to_string(),
        };
        let listed = match camera.list() {
            Ok(listed) => listed,
            Err(e) => {
                log::warn!("the camera settings saved in {place} are not applied: {e}");
                return;
            }
        };
        if due {
            if let Err(e) = apply_each(camera, &defaults_of(&listed)) {
                log::warn!("camera settings reset: {e}");
            }
            return;
        }
        let mut good: Vec<(String, i64)> = Vec::new();
        let mut skipped: Vec<String> = Vec::new();
        for value in &remembered.values {
            match check_changes(&listed, std::slice::from_ref(value)) {
                Ok(checked) => good.extend(checked),
                Err(why) => skipped.push(why.to_string()),
            }
        }
        if first && !skipped.is_empty() {
            log::warn!(
                "camera settings saved in {place}: skipped {} that this camera does not \
                 take ({}); the others are applied",
                skipped.len(),
                skipped.join("; ")
            );
        }
        match apply_each(camera, &good) {
            Ok(()) if first => {
                log::info!("camera settings: applied {} saved in {place}", good.len())
            }
            Ok(()) => log::debug!("camera settings: applied {} saved in {place}", good.len()),
            Err(e) => log::warn!("camera settings saved in {place}: {e}"),
        }
    }

    fn camera(&self) -> Option<(Arc<dyn CameraControls>, String)> {
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        current
            .as_ref()
            .map(|c| (Arc::clone(&c.camera), c.identity.clone()))
    }

    /// The running camera's controls; empty when no camera with controls runs.
    pub fn list(&self) -> Result<Vec<ControlInfo>, ControlError> {
        match self.camera() {
            Some((camera, _)) => camera.list().map_err(ControlError::Camera),
            None => Ok(Vec::new()),
        }
    }

    /// Checks every change, then applies them all; a refused one changes nothing.
    /// Returns the controls as they are afterwards. Applied changes are kept in the
    /// memory, if there is one; a memory that fails is logged, the change stays.
    pub fn set(
        &self,
        changes: &[(String, ControlValue)],
    ) -> Result<Vec<ControlInfo>, ControlError> {
        if !self.changes_allowed {
            return Err(ControlError::Forbidden);
        }
        let mut remembered = self.remembered();
        let camera = self.camera();
        let controls = match &camera {
            Some((camera, _)) => camera.list().map_err(ControlError::Camera)?,
            None => Vec::new(),
        };
        let checked = check_changes(&controls, changes)?;
        match camera {
            Some((camera, identity)) if !checked.is_empty() => {
                camera.apply(&checked).map_err(ControlError::Camera)?;
                self.keep(&mut remembered, &identity, &controls, &checked);
                camera.list().map_err(ControlError::Camera)
            }
            _ => Ok(controls),
        }
    }

    /// Adds the `checked` changes of camera `identity` (described by `controls`) to what
    /// is remembered, and hands the whole to the memory. Buttons are actions, not kept.
    fn keep(
        &self,
        remembered: &mut Remembered,
        identity: &str,
        controls: &[ControlInfo],
        checked: &[(String, i64)],
    ) {
        let Some(memory) = &self.memory else {
            return;
        };
        if remembered.identity.as_deref() != Some(identity) {
            *remembered = Remembered {
                identity: Some(identity.to_string()),
                ..Remembered::default()
            };
        }
        for (name, number) in checked {
            let Some(control) = controls.iter().find(|c| &c.name == name) else {
                continue;
            };
            let value = match &control.kind {
                ControlKind::Button => continue,
                ControlKind::Integer { .. } => ControlValue::Number(*number as f64),
                ControlKind::Boolean => ControlValue::Boolean(*number != 0),
                ControlKind::Menu { choices } => match choices.iter().find(|(n, _)| n == number) {
                    Some((_, label)) => ControlValue::Text(label.clone()),
                    None => ControlValue::Number(*number as f64),
                },
            };
            remembered.values.retain(|(n, _)| n != name);
            remembered.values.push((name.clone(), value));
        }
        if let Err(e) = memory.keep(identity, &remembered.values) {
            crate::warn_limited!(
                NOT_KEPT,
                "camera settings changed but not saved in {}: {e}",
                memory.place(identity)
            );
        }
    }

    /// Sets every control of the running camera that can change to its default, and
    /// forgets the values kept for it. With no camera open now, the last one that was
    /// gets its defaults when it opens again. Returns the controls as they are after.
    pub fn reset(&self) -> Result<Vec<ControlInfo>, ControlError> {
        if !self.changes_allowed {
            return Err(ControlError::Forbidden);
        }
        let mut remembered = self.remembered();
        let camera = self.camera();
        let identity = camera
            .as_ref()
            .map(|(_, identity)| identity.clone())
            .or_else(|| remembered.identity.clone());
        let mut forgotten = Ok(());
        if let Some(identity) = &identity {
            *remembered = Remembered {
                identity: Some(identity.clone()),
                values: Vec::new(),
                defaults_due: camera.is_none(),
            };
            if let Some(memory) = &self.memory {
                forgotten = memory.forget(identity).map_err(|e| {
                    format!(
                        "the saved settings in {} could not be removed: {e}",
                        memory.place(identity)
                    )
                });
            }
        }
        let Some((camera, _)) = camera else {
            return forgotten.map(|()| Vec::new()).map_err(ControlError::Camera);
        };
        let listed = camera.list().map_err(ControlError::Camera)?;
        let applied = apply_each(camera.as_ref(), &defaults_of(&listed));
        if let Err(e) = &forgotten {
            log::warn!("camera settings reset: {e}");
        }
        match (applied, forgotten) {
            (Ok(()), Ok(())) => camera.list().map_err(ControlError::Camera),
            (Err(e), _) | (Ok(()), Err(e)) => Err(ControlError::Camera(e)),
        }
    }
}

/// Each control that can change and is not at its default, with its default.
fn defaults_of(controls: &[ControlInfo]) -> Vec<(String, i64)> {
    controls
        .iter()
        .filter(|c| !c.read_only && c.kind != ControlKind::Button && c.value != c.default)
        .map(|c| (c.name.clone(), c.default))
        .collect()
}

/// Applies `changes` to `camera` in one go or, should the camera refuse them together,
/// one by one; the error names those it refused.
fn apply_each(camera: &dyn CameraControls, changes: &[(String, i64)]) -> Result<(), String> {
    if changes.is_empty() || camera.apply(changes).is_ok() {
        return Ok(());
    }
    let refused: Vec<String> = changes
        .iter()
        .filter_map(|change| {
            let why = camera.apply(std::slice::from_ref(change)).err()?;
            Some(format!("{} = {}: {why}", change.0, change.1))
        })
        .collect();
    if refused.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the camera refused {} ({}); the others are set",
            refused.len(),
            refused.join("; ")
        ))
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
        fn identity(&self) -> String {
            "recorder".into()
        }
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

    /// Values by control name.
    type Values = Vec<(String, ControlValue)>;

    /// A memory kept in RAM: each camera identity with its values.
    #[derive(Default)]
    struct Kept(Mutex<Vec<(String, Values)>>);

    impl Kept {
        fn of(&self, identity: &str) -> Option<Values> {
            let kept = self.0.lock().unwrap();
            kept.iter()
                .find(|(i, _)| i == identity)
                .map(|(_, v)| v.clone())
        }
    }

    impl ControlMemory for Arc<Kept> {
        fn place(&self, identity: &str) -> String {
            format!("the memory of {identity}")
        }
        fn recall(&self, identity: &str) -> Vec<(String, ControlValue)> {
            self.of(identity).unwrap_or_default()
        }
        fn keep(&self, identity: &str, values: &[(String, ControlValue)]) -> Result<(), String> {
            let mut kept = self.0.lock().unwrap();
            kept.retain(|(i, _)| i != identity);
            kept.push((identity.to_string(), values.to_vec()));
            Ok(())
        }
        fn forget(&self, identity: &str) -> Result<(), String> {
            self.0.lock().unwrap().retain(|(i, _)| i != identity);
            Ok(())
        }
    }

    #[test]
    fn the_board_applies_keeps_and_forgets_what_clients_set() {
        let kept = Arc::new(Kept::default());
        kept.keep(
            "recorder",
            &[
                change("brightness", ControlValue::Number(7.0)),
                change("hue", ControlValue::Number(3.0)),
                change("gain", ControlValue::Number(35.0)),
                change("power_line_frequency", ControlValue::Text("60 Hz".into())),
            ],
        )
        .unwrap();
        let board = ControlBoard::remembering(true, Some(Box::new(kept.clone())));
        let camera = Arc::new(Recorder {
            controls: Mutex::new(sample()),
            applied: Mutex::new(Vec::new()),
        });
        let value = |name: &str| {
            let controls = camera.controls.lock().unwrap();
            controls.iter().find(|c| c.name == name).unwrap().value
        };
        let attached = board.attach(camera.clone());
        // What this camera takes is applied; an unknown name and a value off its steps
        // are skipped.
        assert_eq!((value("brightness"), value("power_line_frequency")), (7, 2));
        assert_eq!(value("gain"), 0);

        board
            .set(&[
                change("gain", ControlValue::Number(20.0)),
                change("power_line_frequency", ControlValue::Number(1.0)),
                change("autofocus_trigger", ControlValue::Boolean(true)),
            ])
            .unwrap();
        // Kept by name in the order set, menus by their choice, buttons not at all;
        // what this camera skipped stays kept.
        assert_eq!(
            kept.of("recorder").unwrap(),
            vec![
                change("brightness", ControlValue::Number(7.0)),
                change("hue", ControlValue::Number(3.0)),
                change("gain", ControlValue::Number(20.0)),
                change("power_line_frequency", ControlValue::Text("50 Hz".into())),
            ]
        );

        // Reset: every control at its default, nothing kept.
        let after = board.reset().unwrap();
        // (The recorder keeps the 1 a button was set to; a camera reports 0.)
        let held = |c: &&ControlInfo| c.kind != ControlKind::Button;
        assert!(
            after.iter().filter(held).all(|c| c.value == c.default),
            "{after:?}"
        );
        assert_eq!(kept.of("recorder"), None);

        // A change, then a reset while the camera is closed: its defaults are set when
        // it opens again (a V4L2 driver keeps its values while nobody has it open).
        board
            .set(&[change("brightness", ControlValue::Number(9.0))])
            .unwrap();
        drop(attached);
        assert_eq!(board.reset().unwrap(), Vec::new());
        assert_eq!(kept.of("recorder"), None);
        assert_eq!(value("brightness"), 9);
        let _again = board.attach(camera.clone());
        assert_eq!(value("brightness"), 0);

        let locked = ControlBoard::remembering(false, Some(Box::new(kept.clone())));
        assert_eq!(locked.reset(), Err(ControlError::Forbidden));
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
