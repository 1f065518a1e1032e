//! The camera controls of a source in a process of its own, as bytes: the description
//! the child sends its server (numbered, so that the newest wins), the changes the
//! server asks for and the child's answers. Whatever is read here comes from the other
//! process, which may be a crashing camera library: counts and lengths are bounded,
//! text must be UTF-8, kinds and flags must be known, and nothing may be left over.
//! Whatever is accepted, written again, gives the same bytes.
//!
//! Numbers are little-endian. A text is a `u8` length and that many bytes of UTF-8.
//!
//! | part | bytes |
//! |------|-------|
//! | description | `u64` number, then `0` (no controls) or `1`, the camera's identity (text), a `u16` count and each control |
//! | control | name, label (texts), kind, default and value (`i64`), flags (`u8`: 1 read-only, 2 inactive) |
//! | kind | `0` integer with min, max, step (`i64`); `1` boolean; `2` menu with a `u16` count of (`i64`, text); `3` button |
//! | request | `u64` id, `u16` count, each a name (text) and a value (`i64`) |
//! | answer | `u64` id, then `0` and a description (applied), or `1` (refused) or `2` (the camera failed) and the reason (UTF-8 to the end) |

use crate::controls::{ControlInfo, ControlKind};

/// Most controls in one description or changes in one request.
pub const MAX_CONTROLS: usize = 256;
/// Most choices of one menu.
pub const MAX_CHOICES: usize = 64;
/// Longest text (a name, a label, a choice), in bytes.
pub const MAX_TEXT: usize = u8::MAX as usize;
/// Longest reason in an answer, in bytes.
pub const MAX_REASON: usize = 1024;
/// More than the longest description, request or answer within these limits.
pub const MAX_ENCODED: usize = 8 << 20;

/// The controls of the child's camera as it last described them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    /// Counts up with every description the child makes: a larger one is newer.
    pub number: u64,
    /// Which camera it is ([`crate::controls::CameraControls::identity`]); empty with
    /// no controls.
    pub identity: String,
    /// `None` when no camera with controls is open.
    pub controls: Option<Vec<ControlInfo>>,
}

/// Changes the server asks the child to make, already checked against its description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Repeated in the answer, so that a late answer is not taken for another's.
    pub id: u64,
    pub changes: Vec<(String, i64)>,
}

/// What the child made of a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Applied: the controls as they are now.
    Applied(Description),
    /// Refused by the child's own check (its camera changed meanwhile): nothing changed.
    Refused(String),
    /// The camera failed to apply them.
    Failed(String),
}

/// The child's answer to the request `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub id: u64,
    pub outcome: Outcome,
}

const KIND_INTEGER: u8 = 0;
const KIND_BOOLEAN: u8 = 1;
const KIND_MENU: u8 = 2;
const KIND_BUTTON: u8 = 3;
const READ_ONLY: u8 = 1;
const INACTIVE: u8 = 2;
const APPLIED: u8 = 0;
const REFUSED: u8 = 1;
const FAILED: u8 = 2;

// ------------------------------------------------------------------ writing

impl Description {
    /// The description as bytes. Beyond the limits, controls and choices are left out
    /// and texts cut short (at a character's end): no camera comes near them.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        self.write_into(&mut out);
        out
    }

    fn write_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.number.to_le_bytes());
        let Some(controls) = &self.controls else {
            out.push(0);
            return;
        };
        out.push(1);
        text(out, &self.identity);
        let controls = &controls[..controls.len().min(MAX_CONTROLS)];
        out.extend_from_slice(&(controls.len() as u16).to_le_bytes());
        for c in controls {
            text(out, &c.name);
            text(out, &c.label);
            match &c.kind {
                ControlKind::Integer { min, max, step } => {
                    out.push(KIND_INTEGER);
                    for n in [min, max, step] {
                        out.extend_from_slice(&n.to_le_bytes());
                    }
                }
                ControlKind::Boolean => out.push(KIND_BOOLEAN),
                ControlKind::Menu { choices } => {
                    out.push(KIND_MENU);
                    let choices = &choices[..choices.len().min(MAX_CHOICES)];
                    out.extend_from_slice(&(choices.len() as u16).to_le_bytes());
                    for (n, label) in choices {
                        out.extend_from_slice(&n.to_le_bytes());
                        text(out, label);
                    }
                }
                ControlKind::Button => out.push(KIND_BUTTON),
            }
            out.extend_from_slice(&c.default.to_le_bytes());
            out.extend_from_slice(&c.value.to_le_bytes());
            let mut flags = 0;
            if c.read_only {
                flags |= READ_ONLY;
            }
            if c.inactive {
                flags |= INACTIVE;
            }
            out.push(flags);
        }
    }
}

impl Request {
    /// The request as bytes (at most [`MAX_CONTROLS`] changes; names cut as in a
    /// description).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.changes.len() * 24);
        out.extend_from_slice(&self.id.to_le_bytes());
        let changes = &self.changes[..self.changes.len().min(MAX_CONTROLS)];
        out.extend_from_slice(&(changes.len() as u16).to_le_bytes());
        for (name, value) in changes {
            text(&mut out, name);
            out.extend_from_slice(&value.to_le_bytes());
        }
        out
    }
}

impl Answer {
    /// The answer as bytes (a reason cut at [`MAX_REASON`] bytes).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&self.id.to_le_bytes());
        match &self.outcome {
            Outcome::Applied(description) => {
                out.push(APPLIED);
                description.write_into(&mut out);
            }
            Outcome::Refused(why) | Outcome::Failed(why) => {
                let code = if matches!(self.outcome, Outcome::Refused(_)) {
                    REFUSED
                } else {
                    FAILED
                };
                out.push(code);
                out.extend_from_slice(cut(why, MAX_REASON).as_bytes());
            }
        }
        out
    }
}

/// `s` cut to at most `limit` bytes, at the end of a character.
fn cut(s: &str, limit: usize) -> &str {
    let mut end = s.len().min(limit);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn text(out: &mut Vec<u8>, s: &str) {
    let s = cut(s, MAX_TEXT);
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

// ------------------------------------------------------------------ reading

/// Reads a description (the payload of the child's controls message).
pub fn read_description(bytes: &[u8]) -> Result<Description, String> {
    let mut r = Bytes::new(bytes, "a controls description");
    let description = r.description()?;
    r.finish()?;
    Ok(description)
}

/// Reads a request (on the child's side).
pub fn read_request(bytes: &[u8]) -> Result<Request, String> {
    let mut r = Bytes::new(bytes, "a controls request");
    let id = r.u64()?;
    let count = r.count(MAX_CONTROLS, "changes")?;
    let mut changes = Vec::with_capacity(count);
    for _ in 0..count {
        let name = r.text("control name")?;
        changes.push((name, r.i64()?));
    }
    r.finish()?;
    Ok(Request { id, changes })
}

/// Reads an answer (on the server's side).
pub fn read_answer(bytes: &[u8]) -> Result<Answer, String> {
    let mut r = Bytes::new(bytes, "a controls answer");
    let id = r.u64()?;
    let outcome = match r.u8()? {
        APPLIED => Outcome::Applied(r.description()?),
        code @ (REFUSED | FAILED) => {
            let rest = r.rest();
            if rest.len() > MAX_REASON {
                return Err(format!(
                    "a controls answer with a reason of {} bytes (at most {MAX_REASON})",
                    rest.len()
                ));
            }
            let why = std::str::from_utf8(rest)
                .map_err(|_| "a controls answer whose reason is not UTF-8".to_string())?
                .to_string();
            if code == REFUSED {
                Outcome::Refused(why)
            } else {
                Outcome::Failed(why)
            }
        }
        other => return Err(format!("a controls answer of unknown kind {other}")),
    };
    r.finish()?;
    Ok(Answer { id, outcome })
}

/// A cursor over received bytes; every error names `what` is being read.
struct Bytes<'a> {
    s: &'a [u8],
    what: &'static str,
}

impl<'a> Bytes<'a> {
    fn new(s: &'a [u8], what: &'static str) -> Bytes<'a> {
        Bytes { s, what }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.s.len() < n {
            return Err(format!("{} cut short", self.what));
        }
        let (head, tail) = self.s.split_at(n);
        self.s = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    }

    fn i64(&mut self) -> Result<i64, String> {
        Ok(self.u64()? as i64)
    }

    fn count(&mut self, limit: usize, of: &str) -> Result<usize, String> {
        let b = self.take(2)?;
        let n = usize::from(u16::from_le_bytes([b[0], b[1]]));
        if n > limit {
            return Err(format!("{} with {n} {of} (at most {limit})", self.what));
        }
        Ok(n)
    }

    fn text(&mut self, of: &str) -> Result<String, String> {
        let len = usize::from(self.u8()?);
        let bytes = self.take(len)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_string()),
            Err(_) => Err(format!("{} with a {of} that is not UTF-8", self.what)),
        }
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.s)
    }

    fn finish(&self) -> Result<(), String> {
        match self.s.len() {
            0 => Ok(()),
            n => Err(format!("{} followed by {n} more bytes", self.what)),
        }
    }

    fn description(&mut self) -> Result<Description, String> {
        let number = self.u64()?;
        let mut identity = String::new();
        let controls = match self.u8()? {
            0 => None,
            1 => {
                identity = self.text("camera identity")?;
                let count = self.count(MAX_CONTROLS, "controls")?;
                let mut controls = Vec::with_capacity(count);
                for _ in 0..count {
                    controls.push(self.control()?);
                }
                Some(controls)
            }
            other => return Err(format!("{} marked {other} (expected 0 or 1)", self.what)),
        };
        Ok(Description {
            number,
            identity,
            controls,
        })
    }

    fn control(&mut self) -> Result<ControlInfo, String> {
        let name = self.text("control name")?;
        let label = self.text("control label")?;
        let kind = match self.u8()? {
            KIND_INTEGER => ControlKind::Integer {
                min: self.i64()?,
                max: self.i64()?,
                step: self.i64()?,
            },
            KIND_BOOLEAN => ControlKind::Boolean,
            KIND_MENU => {
                let count = self.count(MAX_CHOICES, "choices in a menu")?;
                let mut choices = Vec::with_capacity(count);
                for _ in 0..count {
                    let n = self.i64()?;
                    choices.push((n, self.text("choice")?));
                }
                ControlKind::Menu { choices }
            }
            KIND_BUTTON => ControlKind::Button,
            other => {
                return Err(format!(
                    "{} with a control of unknown kind {other}",
                    self.what
                ))
            }
        };
        let default = self.i64()?;
        let value = self.i64()?;
        let flags = self.u8()?;
        if flags & !(READ_ONLY | INACTIVE) != 0 {
            return Err(format!("{} with unknown flags 0x{flags:02x}", self.what));
        }
        Ok(ControlInfo {
            name,
            label,
            kind,
            default,
            value,
            read_only: flags & READ_ONLY != 0,
            inactive: flags & INACTIVE != 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<ControlInfo> {
        vec![
            ControlInfo {
                name: "brightness".into(),
                label: "Brightness".into(),
                kind: ControlKind::Integer {
                    min: i64::MIN,
                    max: i64::MAX,
                    step: 3,
                },
                default: -1,
                value: 7,
                read_only: false,
                inactive: true,
            },
            ControlInfo {
                name: "power_line_frequency".into(),
                label: "Power Line Frequency, Hz é".into(),
                kind: ControlKind::Menu {
                    choices: vec![(0, "Disabled".into()), (-5, "50 Hz".into())],
                },
                default: 0,
                value: -5,
                read_only: true,
                inactive: false,
            },
            ControlInfo {
                name: "auto".into(),
                label: "".into(),
                kind: ControlKind::Boolean,
                default: 1,
                value: 0,
                read_only: true,
                inactive: true,
            },
            ControlInfo {
                name: "focus".into(),
                label: "Focus".into(),
                kind: ControlKind::Button,
                default: 0,
                value: 0,
                read_only: false,
                inactive: false,
            },
        ]
    }

    #[test]
    fn descriptions_requests_and_answers_read_back_as_written() {
        for description in [
            Description {
                number: u64::MAX,
                identity: "vivid: Test Pattern é".into(),
                controls: Some(sample()),
            },
            Description {
                number: 0,
                identity: String::new(),
                controls: None,
            },
            Description {
                number: 3,
                identity: "test pattern".into(),
                controls: Some(Vec::new()),
            },
        ] {
            let bytes = description.to_bytes();
            assert_eq!(read_description(&bytes).unwrap(), description);
            let answer = Answer {
                id: 9,
                outcome: Outcome::Applied(description),
            };
            assert_eq!(read_answer(&answer.to_bytes()).unwrap(), answer);
        }
        for outcome in [
            Outcome::Refused("unknown control 'hue'".into()),
            Outcome::Failed("VIDIOC_S_EXT_CTRLS: Input/output error ü".into()),
            Outcome::Failed(String::new()),
        ] {
            let answer = Answer {
                id: 1 << 40,
                outcome,
            };
            assert_eq!(read_answer(&answer.to_bytes()).unwrap(), answer);
        }
        let request = Request {
            id: 77,
            changes: vec![("brightness".into(), -3), ("contrast".into(), i64::MAX)],
        };
        assert_eq!(read_request(&request.to_bytes()).unwrap(), request);
    }

    #[test]
    fn what_is_over_the_limits_is_left_out_or_cut() {
        let long = "é".repeat(200); // 400 bytes
        let mut control = sample().remove(0);
        control.label = long.clone();
        let many = vec![control; MAX_CONTROLS + 5];
        let bytes = Description {
            number: 1,
            identity: long.clone(),
            controls: Some(many),
        }
        .to_bytes();
        let back = read_description(&bytes).unwrap();
        assert_eq!(back.identity, "é".repeat(127));
        let back = back.controls.unwrap();
        assert_eq!(back.len(), MAX_CONTROLS);
        assert_eq!(back[0].label, "é".repeat(127));
        let reason = "x".repeat(MAX_REASON + 10);
        let answer = Answer {
            id: 1,
            outcome: Outcome::Refused(reason),
        };
        match read_answer(&answer.to_bytes()).unwrap().outcome {
            Outcome::Refused(why) => assert_eq!(why.len(), MAX_REASON),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_bytes_are_refused_with_a_reason() {
        // An empty identity: one byte at 9, the count at 10 and 11.
        let good = Description {
            number: 5,
            identity: String::new(),
            controls: Some(sample()),
        }
        .to_bytes();
        // Every shorter prefix is cut short; more bytes are left over.
        for n in 0..good.len() {
            let why = read_description(&good[..n]).unwrap_err();
            assert!(why.contains("cut short"), "{n}: {why}");
        }
        let mut longer = good.clone();
        longer.push(0);
        assert_eq!(
            read_description(&longer).unwrap_err(),
            "a controls description followed by 1 more bytes"
        );
        let mut marked = good.clone();
        marked[8] = 2;
        assert!(read_description(&marked)
            .unwrap_err()
            .contains("marked 2 (expected 0 or 1)"));
        let mut many = good.clone();
        many[10..12].copy_from_slice(&300u16.to_le_bytes());
        assert!(read_description(&many)
            .unwrap_err()
            .contains("with 300 controls (at most 256)"));
        // The first control's name: its length at 12, its first byte at 13.
        let mut not_utf8 = good.clone();
        not_utf8[13] = 0xff;
        assert!(read_description(&not_utf8)
            .unwrap_err()
            .contains("control name that is not UTF-8"));
        // Its kind after "brightness" and "Brightness".
        let kind_at = 12 + 1 + 10 + 1 + 10;
        let mut kind = good.clone();
        kind[kind_at] = 9;
        assert!(read_description(&kind)
            .unwrap_err()
            .contains("unknown kind 9"));
        let flags_at = kind_at + 1 + 24 + 16;
        let mut flags = good.clone();
        flags[flags_at] |= 0x80;
        assert!(read_description(&flags)
            .unwrap_err()
            .contains("unknown flags 0x82"));

        assert!(read_answer(&[0; 8]).unwrap_err().contains("cut short"));
        let mut odd = vec![0; 8];
        odd.push(7);
        assert!(read_answer(&odd).unwrap_err().contains("unknown kind 7"));
        odd[8] = REFUSED;
        odd.extend_from_slice(b"\xc3");
        assert!(read_answer(&odd).unwrap_err().contains("not UTF-8"));
        let mut long = vec![0; 8];
        long.push(FAILED);
        long.extend_from_slice(&[b'x'; MAX_REASON + 1]);
        assert!(read_answer(&long).unwrap_err().contains("at most 1024"));
        assert!(read_request(&[0; 9]).unwrap_err().contains("cut short"));
    }
}
