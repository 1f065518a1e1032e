//! `/controls` and `/option`: the running camera's controls as JSON, and changes to
//! them, through the [`ControlBoard`] (the HTTP side never sees which camera runs).
//!
//! The JSON is written here by hand, like `/status`; a `POST /controls` body is read by
//! [`crate::json::read_changes`]. `POST /controls/reset` puts every control back to its
//! default and forgets the saved settings.

use std::fmt::Write as _;

use crate::controls::{
    control_name, ControlBoard, ControlError, ControlInfo, ControlKind, ControlValue,
};
use crate::json::{read_changes, string};

/// The largest request body read (`POST /controls`); larger is answered 413.
pub const MAX_BODY: usize = 16 * 1024;

/// The `GET /controls` document for `controls`.
pub fn render(changes_allowed: bool, controls: &[ControlInfo]) -> String {
    let mut j = String::with_capacity(128 + controls.len() * 160);
    let _ = write!(j, "{{\"changes_allowed\":{changes_allowed},\"controls\":[");
    for (i, c) in controls.iter().enumerate() {
        if i > 0 {
            j.push(',');
        }
        j.push_str("{\"name\":");
        string(&mut j, &c.name);
        j.push_str(",\"label\":");
        string(&mut j, &c.label);
        match &c.kind {
            ControlKind::Integer { min, max, step } => {
                let _ = write!(
                    j,
                    ",\"type\":\"integer\",\"min\":{min},\"max\":{max},\"step\":{step},\"default\":{},\"value\":{}",
                    c.default, c.value
                );
            }
            ControlKind::Boolean => {
                let _ = write!(
                    j,
                    ",\"type\":\"boolean\",\"default\":{},\"value\":{}",
                    c.default != 0,
                    c.value != 0
                );
            }
            ControlKind::Menu { choices } => {
                j.push_str(",\"type\":\"menu\",\"choices\":[");
                for (k, (_, label)) in choices.iter().enumerate() {
                    if k > 0 {
                        j.push(',');
                    }
                    string(&mut j, label);
                }
                j.push_str("],\"default\":");
                choice(&mut j, choices, c.default);
                j.push_str(",\"value\":");
                choice(&mut j, choices, c.value);
            }
            ControlKind::Button => j.push_str(",\"type\":\"button\""),
        }
        let _ = write!(
            j,
            ",\"read_only\":{},\"inactive\":{}}}",
            c.read_only, c.inactive
        );
    }
    j.push_str("]}\n");
    j
}

/// A menu value by its choice's name; a number no choice has (a camera may report one)
/// as the number.
fn choice(j: &mut String, choices: &[(i64, String)], value: i64) {
    match choices.iter().find(|(n, _)| *n == value) {
        Some((_, label)) => string(j, label),
        None => {
            let _ = write!(j, "{value}");
        }
    }
}

/// `{"error":"..."}` for a refused request.
pub fn error_body(why: &str) -> String {
    let mut j = String::from("{\"error\":");
    string(&mut j, why);
    j.push_str("}\n");
    j
}

/// `POST /controls`: the changes in `body`, applied all or none. The status and body of
/// the answer (JSON either way).
pub fn post(board: &ControlBoard, body: &[u8]) -> (u16, String) {
    if !board.changes_allowed() {
        return (403, error_body(&ControlError::Forbidden.to_string()));
    }
    let changes = match read_changes(body) {
        Ok(changes) => changes,
        Err(why) => return (400, error_body(&why)),
    };
    match board.set(&changes) {
        Ok(after) => (200, render(true, &after)),
        Err(e) => (refusal_status(&e), error_body(&one_line(&e.to_string()))),
    }
}

/// `POST /controls/reset`: every control back to its default, and the saved settings
/// forgotten. The status and body of the answer (JSON either way).
pub fn reset(board: &ControlBoard) -> (u16, String) {
    match board.reset() {
        Ok(after) => (200, render(true, &after)),
        Err(e) => (refusal_status(&e), error_body(&one_line(&e.to_string()))),
    }
}

/// `GET /controls`.
pub fn get(board: &ControlBoard) -> (u16, String) {
    match board.list() {
        Ok(controls) => (200, render(board.changes_allowed(), &controls)),
        Err(e) => (500, error_body(&one_line(&e.to_string()))),
    }
}

fn refusal_status(e: &ControlError) -> u16 {
    match e {
        ControlError::Refused(_) => 400,
        ControlError::Forbidden => 403,
        ControlError::Camera(_) => 500,
    }
}

/// `why` with control characters (a name a client sent with `\n` in it) replaced.
fn one_line(why: &str) -> String {
    why.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// `/option?name=value`: one control, by its name or its label's words, set to a
/// number, `true`/`false` or a choice's name. The status and a one-line text answer.
pub fn option(board: &ControlBoard, query: &str) -> (u16, String) {
    let pair = query.split('&').find(|p| !p.is_empty()).unwrap_or("");
    let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
    let (name, value) = (percent_decoded(raw_name), percent_decoded(raw_value));
    if name.is_empty() {
        return (400, "expected /option?name=value\n".into());
    }
    if !board.changes_allowed() {
        return (403, format!("{}\n", ControlError::Forbidden));
    }
    let controls = match board.list() {
        Ok(controls) => controls,
        Err(e) => return (500, format!("{}\n", one_line(&e.to_string()))),
    };
    let wanted = control_name(&name);
    let found = controls
        .iter()
        .find(|c| c.name == name)
        .or_else(|| controls.iter().find(|c| c.name == wanted))
        .or_else(|| controls.iter().find(|c| control_name(&c.label) == wanted));
    let target = found.map_or(name.clone(), |c| c.name.clone());
    let value = match found.map(|c| &c.kind) {
        Some(ControlKind::Menu { choices }) if choices.iter().any(|(_, l)| *l == value) => {
            ControlValue::Text(value)
        }
        _ => match value.as_str() {
            "true" => ControlValue::Boolean(true),
            "false" => ControlValue::Boolean(false),
            v => match v.parse::<f64>() {
                Ok(n) if n.is_finite() && v.bytes().all(|b| b"+-.eE0123456789".contains(&b)) => {
                    ControlValue::Number(n)
                }
                _ => ControlValue::Text(value),
            },
        },
    };
    match board.set(&[(target, value)]) {
        Ok(_) => (200, "ok\n".into()),
        Err(e) => (
            refusal_status(&e),
            format!("{}\n", one_line(&e.to_string())),
        ),
    }
}

/// `%XX` and `+` of a query part decoded; bytes that are not UTF-8 replaced.
fn percent_decoded(part: &str) -> String {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_controls_as_the_spec_shows() {
        let controls = vec![
            ControlInfo {
                name: "brightness".into(),
                label: "Brightness".into(),
                kind: ControlKind::Integer {
                    min: 0,
                    max: 255,
                    step: 1,
                },
                default: 128,
                value: 128,
                read_only: false,
                inactive: false,
            },
            ControlInfo {
                name: "white_balance_automatic".into(),
                label: "White Balance, Automatic".into(),
                kind: ControlKind::Boolean,
                default: 1,
                value: 1,
                read_only: false,
                inactive: false,
            },
            ControlInfo {
                name: "power_line_frequency".into(),
                label: "Power Line Frequency".into(),
                kind: ControlKind::Menu {
                    choices: vec![
                        (0, "Disabled".into()),
                        (1, "50 Hz".into()),
                        (2, "60 Hz".into()),
                    ],
                },
                default: 1,
                value: 1,
                read_only: false,
                inactive: false,
            },
            ControlInfo {
                name: "focus_trigger".into(),
                label: "Focus \"Trigger\"".into(),
                kind: ControlKind::Button,
                default: 0,
                value: 0,
                read_only: true,
                inactive: true,
            },
        ];
        assert_eq!(
            render(true, &controls),
            concat!(
                r#"{"changes_allowed":true,"controls":["#,
                r#"{"name":"brightness","label":"Brightness","type":"integer","min":0,"max":255,"step":1,"default":128,"value":128,"read_only":false,"inactive":false},"#,
                r#"{"name":"white_balance_automatic","label":"White Balance, Automatic","type":"boolean","default":true,"value":true,"read_only":false,"inactive":false},"#,
                r#"{"name":"power_line_frequency","label":"Power Line Frequency","type":"menu","choices":["Disabled","50 Hz","60 Hz"],"default":"50 Hz","value":"50 Hz","read_only":false,"inactive":false},"#,
                r#"{"name":"focus_trigger","label":"Focus \"Trigger\"","type":"button","read_only":true,"inactive":true}]}"#,
                "\n"
            )
        );
        assert_eq!(
            render(false, &[]),
            "{\"changes_allowed\":false,\"controls\":[]}\n"
        );
    }

    #[test]
    fn query_parts_are_percent_decoded() {
        assert_eq!(percent_decoded("White%20Balance+x%2"), "White Balance x%2");
        assert_eq!(percent_decoded("%4"), "%4");
        assert_eq!(percent_decoded("%41"), "A");
    }
}
