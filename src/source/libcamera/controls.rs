//! The run-time controls of a capturing libcamera camera ([`LibcameraControls`], on the
//! [`ControlBoard`](crate::controls::ControlBoard) while a session runs): what the
//! camera's `ControlInfoMap` offers, mapped by
//! [`libcamera_controls`](crate::source::libcamera_controls).
//!
//! libcamera takes controls with each request, not on the camera: a change waits here
//! and goes on the next request queued, and the camera keeps it from that frame on.
//! The values listed are the last ones set, replaced by what completed requests report
//! in their metadata (exposure time, gains, lens position) where they do.

use std::sync::Mutex;

use libcamera::control::{ControlInfoMap, ControlList};
use libcamera::control_value::ControlValue;
use libcamera::controls::{self, ControlId};

use crate::controls::{CameraControls, ControlInfo};
use crate::source::libcamera_controls::{
    request_values, user_controls, Current, LibcameraId, Limits, RequestValue,
};

/// libcamera's numeric id of a mapped control.
fn id_of(id: LibcameraId) -> u32 {
    (match id {
        LibcameraId::AeEnable => ControlId::AeEnable,
        LibcameraId::ExposureTime => ControlId::ExposureTime,
        LibcameraId::ExposureValue => ControlId::ExposureValue,
        LibcameraId::AnalogueGain => ControlId::AnalogueGain,
        LibcameraId::AwbEnable => ControlId::AwbEnable,
        LibcameraId::AwbMode => ControlId::AwbMode,
        LibcameraId::ColourGains => ControlId::ColourGains,
        LibcameraId::Brightness => ControlId::Brightness,
        LibcameraId::Contrast => ControlId::Contrast,
        LibcameraId::Saturation => ControlId::Saturation,
        LibcameraId::Sharpness => ControlId::Sharpness,
        LibcameraId::NoiseReductionMode => ControlId::NoiseReductionMode,
        LibcameraId::AfMode => ControlId::AfMode,
        LibcameraId::AfTrigger => ControlId::AfTrigger,
        LibcameraId::LensPosition => ControlId::LensPosition,
        LibcameraId::HdrMode => ControlId::HdrMode,
    }) as u32
}

/// The numbers of a control value (booleans as 0 and 1); empty for other types.
fn numbers(value: ControlValue) -> Vec<f64> {
    match value {
        ControlValue::Bool(v) => v.iter().map(|&b| f64::from(u8::from(b))).collect(),
        ControlValue::Byte(v) => v.iter().map(|&n| f64::from(n)).collect(),
        ControlValue::Int32(v) => v.iter().map(|&n| f64::from(n)).collect(),
        ControlValue::Int64(v) => v.iter().map(|&n| n as f64).collect(),
        ControlValue::Float(v) => v.iter().map(|&n| f64::from(n)).collect(),
        _ => Vec::new(),
    }
}

/// The mapped controls the camera offers, with their limits.
pub fn limits_of(infos: &ControlInfoMap) -> Vec<(LibcameraId, Limits)> {
    LibcameraId::ALL
        .into_iter()
        .filter_map(|id| {
            let info = infos.find(id_of(id)).ok()?;
            let first = |v: ControlValue| numbers(v).first().copied();
            let values: Vec<i64> = info
                .values()
                .into_iter()
                .filter_map(|v| first(v).map(|n| n as i64))
                .collect();
            let (min, max) = match (first(info.min()), first(info.max())) {
                (Some(min), Some(max)) => (min, max),
                // An enumeration described only by its values.
                _ if !values.is_empty() => {
                    (*values.iter().min()? as f64, *values.iter().max()? as f64)
                }
                _ => return None,
            };
            Some((
                id,
                Limits {
                    min,
                    max,
                    default: first(info.def()),
                    values,
                },
            ))
        })
        .collect()
}

/// A value as libcamera takes it.
fn control_value(value: &RequestValue) -> ControlValue {
    match value {
        RequestValue::Bool(b) => ControlValue::from(*b),
        RequestValue::Int32(n) => ControlValue::from(*n),
        RequestValue::Float(f) => ControlValue::from(*f),
        RequestValue::FloatPair(pair) => ControlValue::from(pair.to_vec()),
    }
}

struct State {
    camera: Vec<(LibcameraId, Limits)>,
    current: Current,
    /// Changes for the next request queued.
    pending: Vec<(LibcameraId, RequestValue)>,
    /// The newest value of every control set so far (the session's start values
    /// included, actions such as a focus trigger left out): what a camera started
    /// again is given, so that it goes on as it was.
    kept: Vec<(LibcameraId, RequestValue)>,
}

/// Notes `set` in `kept`, each control's newest value once; actions are not kept.
fn keep(kept: &mut Vec<(LibcameraId, RequestValue)>, set: &[(LibcameraId, RequestValue)]) {
    for (id, value) in set {
        if *id == LibcameraId::AfTrigger {
            continue;
        }
        kept.retain(|(i, _)| i != id);
        kept.push((*id, value.clone()));
    }
}

/// The controls of the camera a session captures with.
pub struct LibcameraControls {
    /// `libcamera MODEL (ID)`: the camera's model and libcamera's id of it (which
    /// names where it is connected), the same each time it opens.
    identity: String,
    state: Mutex<State>,
}

impl LibcameraControls {
    /// The controls of a configured camera `name`d as the log names it (`imx708
    /// (/base/...)`), offering `infos`, with `started` the values the session starts it
    /// with (continuous autofocus).
    pub fn new(
        name: &str,
        infos: &ControlInfoMap,
        started: &[(LibcameraId, RequestValue)],
    ) -> Self {
        let camera = limits_of(infos);
        let mut current = Current::from_limits(&camera);
        current.note_request(started);
        let mut kept = Vec::new();
        keep(&mut kept, started);
        LibcameraControls {
            identity: format!("libcamera {name}"),
            state: Mutex::new(State {
                camera,
                current,
                pending: Vec::new(),
                kept,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts the waiting changes on `list`, the controls of a request about to be
    /// queued; returns how many.
    pub fn put_pending(&self, list: &mut ControlList) -> usize {
        let pending = std::mem::take(&mut self.state().pending);
        for (id, value) in &pending {
            if let Err(e) = list.set_raw(id_of(*id), control_value(value)) {
                log::warn!("libcamera: cannot set {}: {e:?}", id.name());
            }
        }
        pending.len()
    }

    /// Puts every value set so far on `list`: the controls of a start, or of the
    /// first request after one, when the camera is started again (around a still).
    /// Returns how many.
    pub fn put_kept(&self, list: &mut ControlList) -> usize {
        let kept = self.state().kept.clone();
        for (id, value) in &kept {
            if let Err(e) = list.set_raw(id_of(*id), control_value(value)) {
                log::warn!("libcamera: cannot set {} again: {e:?}", id.name());
            }
        }
        kept.len()
    }

    /// Takes the values a completed request's `metadata` reports.
    pub fn note_metadata(&self, metadata: &ControlList) {
        let mut reported: Vec<(LibcameraId, Vec<f64>)> = Vec::with_capacity(4);
        if let Ok(v) = metadata.get::<controls::ExposureTime>() {
            reported.push((LibcameraId::ExposureTime, vec![f64::from(v.0)]));
        }
        if let Ok(v) = metadata.get::<controls::AnalogueGain>() {
            reported.push((LibcameraId::AnalogueGain, vec![f64::from(v.0)]));
        }
        if let Ok(v) = metadata.get::<controls::ColourGains>() {
            reported.push((
                LibcameraId::ColourGains,
                v.0.iter().map(|&g| f64::from(g)).collect(),
            ));
        }
        if let Ok(v) = metadata.get::<controls::LensPosition>() {
            reported.push((LibcameraId::LensPosition, vec![f64::from(v.0)]));
        }
        if reported.is_empty() {
            return;
        }
        let mut state = self.state();
        for (id, value) in reported {
            state.current.note(id, &value);
        }
    }
}

impl CameraControls for LibcameraControls {
    fn identity(&self) -> String {
        self.identity.clone()
    }

    fn list(&self) -> Result<Vec<ControlInfo>, String> {
        let state = self.state();
        Ok(user_controls(&state.camera, &state.current))
    }

    fn apply(&self, changes: &[(String, i64)]) -> Result<(), String> {
        let mut state = self.state();
        let values = request_values(changes, &state.current)?;
        state.current.note_request(&values);
        keep(&mut state.kept, &values);
        for (id, value) in values {
            state.pending.retain(|(i, _)| *i != id);
            state.pending.push((id, value));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_value_of_each_control_is_kept_and_actions_are_not() {
        let mut kept = Vec::new();
        keep(&mut kept, &[(LibcameraId::AfMode, RequestValue::Int32(2))]);
        keep(
            &mut kept,
            &[
                (LibcameraId::Brightness, RequestValue::Float(0.5)),
                (LibcameraId::AfTrigger, RequestValue::Int32(0)),
            ],
        );
        keep(
            &mut kept,
            &[(LibcameraId::Brightness, RequestValue::Float(0.8))],
        );
        assert_eq!(
            kept,
            vec![
                (LibcameraId::AfMode, RequestValue::Int32(2)),
                (LibcameraId::Brightness, RequestValue::Float(0.8)),
            ]
        );
    }
}
