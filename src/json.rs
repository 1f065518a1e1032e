//! The little JSON the server reads and writes by hand (no serde in the binary): string
//! escapes, and the one object it reads, a flat object of control names and values
//! (numbers, `true`, `false`, strings) and nothing else. That object is both a
//! `POST /controls` body and the content of a saved settings file
//! (`saved_controls.rs`); [`read_changes`] refuses anything more with one line saying
//! at which byte. It is fuzzed (`fuzz/fuzz_targets/controls_json.rs`): whatever it
//! accepts, written back by [`write_changes`], reads back the same.
//!
//! [`read_document`] reads any JSON document into a [`Json`] tree, nested at most
//! [`MAX_DEPTH`] deep, for the WebRTC signalling messages (`POST /webrtc`), which carry
//! arrays and objects; it shares the reader, and its fuzz target is `webrtc_json`.

use std::fmt::Write as _;

use crate::controls::ControlValue;

/// Appends `s` as the inside of a JSON string.
pub fn escape_into(j: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => j.push_str("\\\""),
            '\\' => j.push_str("\\\\"),
            '\n' => j.push_str("\\n"),
            '\r' => j.push_str("\\r"),
            '\t' => j.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(j, "\\u{:04x}", c as u32);
            }
            c => j.push(c),
        }
    }
}

/// Appends `s` as a JSON string, in double quotes.
pub fn string(j: &mut String, s: &str) {
    j.push('"');
    escape_into(j, s);
    j.push('"');
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

/// How deep arrays and objects may nest in [`read_document`]; deeper is refused.
pub const MAX_DEPTH: usize = 16;

/// A JSON value, as [`read_document`] reads it; an object keeps its pairs in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Boolean(bool),
    Number(f64),
    Text(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// The value of `key` in an object (the first pair of that name); `None` for a
    /// missing key or a value that is not an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(pairs) => pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The text of a string value.
    pub fn text(&self) -> Option<&str> {
        match self {
            Json::Text(t) => Some(t),
            _ => None,
        }
    }
}

/// Reads one JSON document (any value, nested at most [`MAX_DEPTH`] deep). Errors are
/// one line with the byte offset.
pub fn read_document(body: &[u8]) -> Result<Json, String> {
    let mut r = Reader { s: body, at: 0 };
    r.blanks();
    let value = r.any(0)?;
    r.blanks();
    if r.at < r.s.len() {
        return Err(r.fail("unexpected text after the value"));
    }
    Ok(value)
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

    /// Any value, at `depth` arrays and objects deep.
    fn any(&mut self, depth: usize) -> Result<Json, String> {
        let open = matches!(self.peek(), Some(b'[' | b'{'));
        if open && depth >= MAX_DEPTH {
            return Err(self.fail(&format!("values nested more than {MAX_DEPTH} deep")));
        }
        match self.peek() {
            Some(b'[') => {
                self.at += 1;
                let mut items = Vec::new();
                self.blanks();
                if self.peek() == Some(b']') {
                    self.at += 1;
                    return Ok(Json::Array(items));
                }
                loop {
                    self.blanks();
                    items.push(self.any(depth + 1)?);
                    self.blanks();
                    match self.peek() {
                        Some(b',') => self.at += 1,
                        Some(b']') => {
                            self.at += 1;
                            return Ok(Json::Array(items));
                        }
                        _ => return Err(self.fail("expected ',' or ']'")),
                    }
                }
            }
            Some(b'{') => {
                self.at += 1;
                let mut pairs = Vec::new();
                self.blanks();
                if self.peek() == Some(b'}') {
                    self.at += 1;
                    return Ok(Json::Object(pairs));
                }
                loop {
                    self.blanks();
                    if self.peek() != Some(b'"') {
                        return Err(self.fail("expected a name in double quotes"));
                    }
                    let name = self.string()?;
                    self.blanks();
                    self.expect(b':', "':' after the name")?;
                    self.blanks();
                    pairs.push((name, self.any(depth + 1)?));
                    self.blanks();
                    match self.peek() {
                        Some(b',') => self.at += 1,
                        Some(b'}') => {
                            self.at += 1;
                            return Ok(Json::Object(pairs));
                        }
                        _ => return Err(self.fail("expected ',' or '}'")),
                    }
                }
            }
            Some(b'n') if self.literal(b"null") => Ok(Json::Null),
            _ => Ok(match self.value()? {
                ControlValue::Text(t) => Json::Text(t),
                ControlValue::Boolean(b) => Json::Boolean(b),
                ControlValue::Number(n) => Json::Number(n),
            }),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn n(x: f64) -> ControlValue {
        ControlValue::Number(x)
    }

    #[test]
    fn escapes_json_strings() {
        let mut j = String::new();
        escape_into(&mut j, "a\"b\\c\nd\u{1}é");
        assert_eq!(j, "a\\\"b\\\\c\\nd\\u0001é");
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
}
