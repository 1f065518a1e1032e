//! The readers of the camera-control messages between the server and a source in a
//! process of its own (`--isolate`): descriptions of the camera's controls (which the
//! server reads from the source process), change requests and the answers to them.
//!
//! Input: one byte choosing the reader (description, request, answer), then the bytes.
//! Checked:
//!
//! * nothing panics, and a refusal is one line;
//! * whatever is accepted, written again, gives the same bytes;
//! * the controls of an accepted description go through what the server does with
//!   them without panicking: checking clients' values against them (whole numbers up to
//!   the largest a client can send, at and around each control's limits) and writing
//!   them as the `GET /controls` document.
#![no_main]

use libfuzzer_sys::fuzz_target;
use picam_stream::controls::{check_changes, ControlInfo, ControlKind, ControlValue};
use picam_stream::http::controls::render;
use picam_stream::source::isolate::control_wire::{
    read_answer, read_description, read_request, Outcome,
};

/// Values a client might send for `control`.
fn tries(control: &ControlInfo) -> Vec<ControlValue> {
    let mut numbers = vec![control.value, control.default, 0, 1, -1, 9e15 as i64 - 1];
    if let ControlKind::Integer { min, max, step } = control.kind {
        for n in [min, max, step] {
            numbers.extend([n, n.saturating_add(1), n.saturating_sub(1)]);
        }
    }
    let mut values: Vec<ControlValue> = numbers
        .into_iter()
        .map(|n| ControlValue::Number(n as f64))
        .collect();
    values.extend([ControlValue::Boolean(true), ControlValue::Boolean(false)]);
    if let ControlKind::Menu { choices } = &control.kind {
        values.extend(choices.iter().map(|(_, c)| ControlValue::Text(c.clone())));
    }
    values
}

fuzz_target!(|data: &[u8]| {
    let [which, bytes @ ..] = data else {
        return;
    };
    let read: Result<(Vec<u8>, Option<Vec<ControlInfo>>), String> = match which % 3 {
        0 => read_description(bytes).map(|d| (d.to_bytes(), d.controls)),
        1 => read_request(bytes).map(|r| (r.to_bytes(), None)),
        _ => read_answer(bytes).map(|a| {
            let controls = match &a.outcome {
                Outcome::Applied(d) => d.controls.clone(),
                _ => None,
            };
            (a.to_bytes(), controls)
        }),
    };
    let (written, controls) = match read {
        Ok(read) => read,
        Err(why) => {
            assert!(!why.contains('\n'), "{why:?}");
            return;
        }
    };
    assert_eq!(written, bytes, "written again, the bytes differ");
    let controls = controls.unwrap_or_default();
    for control in &controls {
        for value in tries(control) {
            let _ = check_changes(&controls, &[(control.name.clone(), value)]);
        }
    }
    let _ = render(true, &controls);
});
