//! `/controls` and `/option`: the running camera's controls as JSON, and changes to
//! them, through the [`ControlBoard`] (the HTTP side never sees which camera runs).
//!
//! The JSON is read and written here by hand, like `/status`: a `POST /controls` body is
//! one flat object of control names and values (numbers, `true`, `false`, strings), and
//! nothing else; [`read_changes`] refuses anything more with one line saying at which
//! byte. It is fuzzed (`fuzz/fuzz_targets/controls_json.rs`): whatever it accepts,
//! written back by [`write_changes`], reads back the same.

use std::fmt::Write as _;

use super::status::escape_into;
use crate::controls::{
    control_name, ControlBoard, ControlError, ControlInfo, ControlKind, ControlValue,
};

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

fn string(j: &mut String, s: &str) {
    j.push('"');
    escape_into(j, s);
    j.push('"');
}

/// `{"error":"..."}` for a refused request.
pub fn error_body(why: &str) -> String {
    let mut j = String::from("{\"error\":");
    string(&mut j, why);
    j.push_str("}\n");
    j
}

/// Changes as a JSON object, the form [`read_changes`] reads (every pair kept, in order).
pub fn write_changes(changes: &[(String, ControlValue)]) -> String {
    let mut j = String::from("{");
    for (i, (name, value)) in changes.iter().enumerate() {
        if i > 0 {
            j.push(',');
        }
        string(&mut j, name);
        j.push(':');
        match value {
            // Rust writes the shortest digits that read back as the same number.
            ControlValue::Number(n) => {
                let _ = write!(j, "{n}");
            }
            ControlValue::Boolean(b) => {
                let _ = write!(j, "{b}");
            }
            ControlValue::Text(t) => string(&mut j, t),
        }
    }
    j.push('}');
    j
}

/// Reads a `POST /controls` body: one JSON object of control names and values. A name
/// given twice stays twice (the later wins when they are applied). Errors are one line
/// with the byte offset.
pub fn read_changes(body: &[u8]) -> Result<Vec<(String, ControlValue)>, String> {
    let mut r = Reader { s: body, at: 0 };
    r.blanks();
    r.expect(b'{', "a JSON object ({\"name\": value, ...})")?;
    let mut changes = Vec::new();
    r.blanks();
    if r.peek() == Some(b'}') {
        r.at += 1;
    } else {
        loop {
            r.blanks();
            if r.peek() != Some(b'"') {
                return Err(r.fail("expected a control name in double quotes"));
            }
            let name = r.string()?;
            r.blanks();
            r.expect(b':', "':' after the control name")?;
            r.blanks();
            let value = r.value()?;
            changes.push((name, value));
            r.blanks();
            match r.peek() {
                Some(b',') => r.at += 1,
                Some(b'}') => {
                    r.at += 1;
                    break;
                }
                _ => return Err(r.fail("expected ',' or '}'")),
            }
        }
    }
    r.blanks();
    if r.at < r.s.len() {
        return Err(r.fail("unexpected text after the object"));
    }
    Ok(changes)
}

struct Reader<'a> {
    s: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn fail(&self, what: &str) -> String {
        match self.peek() {
            Some(b) if b.is_ascii_graphic() => {
                format!(
                    "bad JSON at byte {}: {what}, found '{}'",
                    self.at, b as char
                )
            }
            Some(b) => format!("bad JSON at byte {}: {what}, found byte 0x{b:02x}", self.at),
            None => format!("bad JSON at byte {}: {what}, found the end", self.at),
        }
    }

    fn blanks(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8, what: &str) -> Result<(), String> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.fail(&format!("expected {what}")))
        }
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        if self.s[self.at..].starts_with(word) {
            self.at += word.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Result<ControlValue, String> {
        match self.peek() {
            Some(b'"') => self.string().map(ControlValue::Text),
            Some(b't') if self.literal(b"true") => Ok(ControlValue::Boolean(true)),
            Some(b'f') if self.literal(b"false") => Ok(ControlValue::Boolean(false)),
            Some(b'-' | b'0'..=b'9') => self.number().map(ControlValue::Number),
            Some(b'{' | b'[') => Err(self.fail(
                "nested values are not accepted: expected a number, true, false or a string",
            )),
            _ => Err(self.fail("expected a number, true, false or a string")),
        }
    }

    fn digits(&mut self) -> usize {
        let from = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        self.at - from
    }

    fn number(&mut self) -> Result<f64, String> {
        let from = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.fail("expected a digit")),
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return Err(self.fail("expected a digit after '.'"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if self.digits() == 0 {
                return Err(self.fail("expected a digit in the exponent"));
            }
        }
        // Only ASCII digits, signs, '.' and 'e' were taken: valid UTF-8 and a valid
        // Rust float.
        let text = std::str::from_utf8(&self.s[from..self.at]).unwrap_or("x");
        match text.parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(n),
            _ => Err(format!(
                "bad JSON at byte {from}: number {text} is out of range"
            )),
        }
    }

    /// A string, at its opening quote.
    fn string(&mut self) -> Result<String, String> {
        self.at += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(self.fail("unterminated string"));
            };
            match b {
                b'"' => {
                    self.at += 1;
                    break;
                }
                b'\\' => {
                    self.at += 1;
                    let c = match self.peek() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => self.unicode_escape()?,
                        _ => return Err(self.fail("unknown escape after '\\'")),
                    };
                    self.at += 1;
                    let mut utf8 = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                }
                0..=0x1f => return Err(self.fail("control character in a string")),
                _ => {
                    out.push(b);
                    self.at += 1;
                }
            }
        }
        String::from_utf8(out).map_err(|e| {
            format!(
                "bad JSON before byte {}: a string is not valid UTF-8 ({e})",
                self.at
            )
        })
    }

    /// Four hex digits after `\u` (at the `u`), and a second escape for a surrogate
    /// pair; leaves `at` on the last hex digit.
    fn unicode_escape(&mut self) -> Result<char, String> {
        let first = self.hex4()?;
        let code = match first {
            0xd800..=0xdbff => {
                if !self.s[self.at + 1..].starts_with(b"\\u") {
                    return Err(self.fail("a high surrogate must be followed by \\u and a low one"));
                }
                self.at += 2;
                let second = self.hex4()?;
                if !(0xdc00..=0xdfff).contains(&second) {
                    return Err(self.fail("expected a low surrogate"));
                }
                0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00)
            }
            0xdc00..=0xdfff => return Err(self.fail("a low surrogate without a high one")),
            c => c,
        };
        char::from_u32(code).ok_or_else(|| self.fail("not a character"))
    }

    /// The four hex digits after the `u` at `at`; leaves `at` on the last.
    fn hex4(&mut self) -> Result<u32, String> {
        let mut code = 0u32;
        for _ in 0..4 {
            self.at += 1;
            let digit = self
                .peek()
                .and_then(|b| (b as char).to_digit(16))
                .ok_or_else(|| self.fail("expected four hex digits after \\u"))?;
            code = code * 16 + digit;
        }
        Ok(code)
    }
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
        ControlError::Gone(_) => 503,
        ControlError::TimedOut(_) => 504,
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

    fn n(x: f64) -> ControlValue {
        ControlValue::Number(x)
    }

    #[test]
    fn reads_a_flat_object_of_values() {
        let got = read_changes(
            br#" { "brightness" : -12.5e1 , "a\"b\u00e9\ud83d\ude00\n": true,
                "x":false, "menu":"60 Hz", "brightness": 0 } "#,
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                ("brightness".into(), n(-125.0)),
                ("a\"bé😀\n".into(), ControlValue::Boolean(true)),
                ("x".into(), ControlValue::Boolean(false)),
                ("menu".into(), ControlValue::Text("60 Hz".into())),
                ("brightness".into(), n(0.0)),
            ]
        );
        assert_eq!(read_changes(b"{}").unwrap(), vec![]);
        let back = read_changes(write_changes(&got).as_bytes()).unwrap();
        assert_eq!(back, got);
    }

    #[test]
    fn refuses_anything_else_with_the_byte() {
        for (body, says) in [
            (&b""[..], "at byte 0: expected a JSON object"),
            (b"[1]", "at byte 0: expected a JSON object"),
            (b"{\"a\":{\"b\":1}}", "at byte 5: nested values"),
            (b"{\"a\":[1]}", "nested values"),
            (
                b"{\"a\":null}",
                "at byte 5: expected a number, true, false or a string",
            ),
            (b"{\"a\":01}", "at byte 6: expected ',' or '}'"),
            (b"{\"a\":1.}", "expected a digit after '.'"),
            (b"{\"a\":1e999}", "number 1e999 is out of range"),
            (b"{\"a\":1,}", "at byte 7: expected a control name"),
            (b"{a:1}", "at byte 1: expected a control name"),
            (b"{\"a\" 1}", "expected ':'"),
            (
                b"{\"a\":1} x",
                "at byte 8: unexpected text after the object",
            ),
            (b"{\"a\":\"\\x\"}", "unknown escape"),
            (b"{\"a\":\"\\ud800\"}", "high surrogate"),
            (b"{\"a\":\"\\udc00\"}", "low surrogate without"),
            (b"{\"a\":\"\\u12\"}", "four hex digits"),
            (b"{\"a\":\"x\ny\"}", "control character"),
            (b"{\"a\":\"\xff\"}", "not valid UTF-8"),
            (b"{\"a\":tru}", "expected a number"),
            (b"{\"a\":1", "expected ',' or '}', found the end"),
            (b"{\"a", "unterminated string"),
        ] {
            let why = read_changes(body).unwrap_err();
            assert!(
                why.contains(says),
                "{:?}: {why}",
                String::from_utf8_lossy(body)
            );
            assert!(!why.contains('\n'));
        }
    }

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
