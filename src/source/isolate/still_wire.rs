//! Full-resolution stills of a source in a process of its own, as bytes: the server's
//! request for one and the source process's answer. The answer comes from the other
//! process, which may be a crashing camera library: its size is bounded (by the
//! reader, at [`MAX_ANSWER`]), its JPEG must read as a JPEG of the size it claims, its
//! reason must be UTF-8 of at most [`MAX_REASON`] bytes, and nothing may be left over.
//! Whatever is accepted, written again, gives the same bytes.
//!
//! Numbers are little-endian.
//!
//! | part | bytes |
//! |------|-------|
//! | request | `u64` id |
//! | answer | `u64` id, then `0`, the width and height (`u16` each) and the JPEG to the end; or `1` and the reason it failed (UTF-8 to the end) |

use crate::still::Still;

use super::messages::MAX_MESSAGE;

/// Longest reason in an answer, in bytes.
pub const MAX_REASON: usize = 1024;
/// Longest answer: the longest message the server reads from its source process,
/// which is also the limit on a frame.
pub const MAX_ANSWER: usize = MAX_MESSAGE;
/// Bytes before the JPEG in an answer with a still.
const HEAD: usize = 8 + 1 + 2 + 2;
/// Longest request.
pub const MAX_REQUEST: usize = 8;

const TAKEN: u8 = 0;
const FAILED: u8 = 1;

/// The source process's answer to the request `id`: the still, or why none came.
#[derive(Debug)]
pub struct StillAnswer {
    pub id: u64,
    pub outcome: Result<Still, String>,
}

/// The request `id` as bytes.
pub fn request_bytes(id: u64) -> [u8; 8] {
    id.to_le_bytes()
}

/// Reads a request (on the source process's side).
pub fn read_request(bytes: &[u8]) -> Result<u64, String> {
    <[u8; 8]>::try_from(bytes)
        .map(u64::from_le_bytes)
        .map_err(|_| format!("a still request of {} bytes (expected 8)", bytes.len()))
}

/// The answer to request `id` as bytes. A still too large for the wire (over
/// [`MAX_ANSWER`] bytes, or wider or taller than a JPEG can be) goes as a failure
/// saying so; a reason is cut at [`MAX_REASON`] bytes.
pub fn answer_bytes(id: u64, outcome: Result<&Still, &str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEAD + outcome.map_or(0, |s| s.jpeg.len()));
    out.extend_from_slice(&id.to_le_bytes());
    let still = outcome.and_then(|still| {
        let (Ok(w), Ok(h)) = (u16::try_from(still.width), u16::try_from(still.height)) else {
            return Err("a still wider or taller than 65535 pixels");
        };
        if HEAD + still.jpeg.len() > MAX_ANSWER {
            return Err("a still larger than the 64 MiB a source process may send");
        }
        Ok((still, w, h))
    });
    match still {
        Ok((still, w, h)) => {
            out.push(TAKEN);
            out.extend_from_slice(&w.to_le_bytes());
            out.extend_from_slice(&h.to_le_bytes());
            out.extend_from_slice(&still.jpeg);
        }
        Err(why) => {
            out.push(FAILED);
            out.extend_from_slice(cut(why, MAX_REASON).as_bytes());
        }
    }
    out
}

impl StillAnswer {
    /// The answer as bytes, as [`answer_bytes`] writes it.
    pub fn to_bytes(&self) -> Vec<u8> {
        answer_bytes(self.id, self.outcome.as_ref().map_err(String::as_str))
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

/// Reads an answer (on the server's side).
pub fn read_answer(bytes: &[u8]) -> Result<StillAnswer, String> {
    if bytes.len() < 9 {
        return Err("a still answer cut short".into());
    }
    if bytes.len() > MAX_ANSWER {
        return Err(format!(
            "a still answer of {} bytes (at most {MAX_ANSWER})",
            bytes.len()
        ));
    }
    let id = u64::from_le_bytes(bytes[..8].try_into().unwrap_or([0; 8]));
    let rest = &bytes[9..];
    let outcome = match bytes[8] {
        TAKEN => {
            let [w0, w1, h0, h1, jpeg @ ..] = rest else {
                return Err("a still answer cut short".into());
            };
            let (width, height) = (
                u16::from_le_bytes([*w0, *w1]),
                u16::from_le_bytes([*h0, *h1]),
            );
            let dims = crate::jpeg::inspect(jpeg)
                .map_err(|e| format!("a still that is not a JPEG: {e}"))?;
            if (dims.width, dims.height) != (width, height) {
                return Err(format!(
                    "a still said to be {width}x{height} whose JPEG is {}x{}",
                    dims.width, dims.height
                ));
            }
            Ok(Still {
                jpeg: jpeg.to_vec(),
                width: width.into(),
                height: height.into(),
            })
        }
        FAILED => {
            if rest.len() > MAX_REASON {
                return Err(format!(
                    "a still answer with a reason of {} bytes (at most {MAX_REASON})",
                    rest.len()
                ));
            }
            let why = std::str::from_utf8(rest)
                .map_err(|_| "a still answer whose reason is not UTF-8".to_string())?;
            Err(why.to_string())
        }
        other => return Err(format!("a still answer of unknown kind {other}")),
    };
    Ok(StillAnswer { id, outcome })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoder::SoftwareEncoder;

    fn jpeg(w: u16, h: u16) -> Vec<u8> {
        let rgb = vec![90u8; usize::from(w) * usize::from(h) * 3];
        SoftwareEncoder::new(80)
            .encode_rgb(&rgb, w, h)
            .unwrap()
            .to_vec()
    }

    #[test]
    fn answers_read_back_as_written() {
        let still = Still {
            jpeg: jpeg(64, 48),
            width: 64,
            height: 48,
        };
        let bytes = answer_bytes(7, Ok(&still));
        let back = read_answer(&bytes).unwrap();
        assert_eq!(back.id, 7);
        let got = back.outcome.as_ref().unwrap();
        assert_eq!((got.width, got.height, &got.jpeg), (64, 48, &still.jpeg));
        assert_eq!(back.to_bytes(), bytes);

        let failed = answer_bytes(u64::MAX, Err("cannot set 4000x3000"));
        let back = read_answer(&failed).unwrap();
        assert_eq!(back.id, u64::MAX);
        assert_eq!(back.outcome.unwrap_err(), "cannot set 4000x3000");
        assert_eq!(read_request(&request_bytes(42)), Ok(42));

        // Too long a reason is cut at a character's end.
        let long = "é".repeat(MAX_REASON);
        let back = read_answer(&answer_bytes(1, Err(&long))).unwrap();
        assert_eq!(back.outcome.unwrap_err(), "é".repeat(MAX_REASON / 2));
        // A still that cannot go over the wire goes as a failure.
        let huge = Still {
            jpeg: Vec::new(),
            width: 70_000,
            height: 1,
        };
        let back = read_answer(&answer_bytes(2, Ok(&huge))).unwrap();
        assert!(back.outcome.unwrap_err().contains("wider or taller"));
    }

    #[test]
    fn bad_answers_are_refused_with_a_reason() {
        let good = answer_bytes(
            3,
            Ok(&Still {
                jpeg: jpeg(32, 16),
                width: 32,
                height: 16,
            }),
        );
        for n in 0..HEAD {
            let why = read_answer(&good[..n]).unwrap_err();
            assert!(why.contains("cut short"), "{n}: {why}");
        }
        // A JPEG cut short, or longer than it ends.
        let why = read_answer(&good[..good.len() - 1]).unwrap_err();
        assert!(why.contains("not a JPEG"), "{why}");
        let mut longer = good.clone();
        longer.push(0);
        assert!(read_answer(&longer).unwrap_err().contains("not a JPEG"));
        let mut wrong_size = good.clone();
        wrong_size[9] = 33;
        assert_eq!(
            read_answer(&wrong_size).unwrap_err(),
            "a still said to be 33x16 whose JPEG is 32x16"
        );
        let mut kind = good.clone();
        kind[8] = 2;
        assert!(read_answer(&kind).unwrap_err().contains("unknown kind 2"));

        let mut odd = answer_bytes(1, Err(""));
        odd.push(0xc3);
        assert!(read_answer(&odd).unwrap_err().contains("not UTF-8"));
        let mut long = answer_bytes(1, Err(""));
        long.extend_from_slice(&[b'x'; MAX_REASON + 1]);
        assert!(read_answer(&long).unwrap_err().contains("at most 1024"));
        assert!(read_request(&[0; 9]).unwrap_err().contains("9 bytes"));

        // Any byte changed: refused in one line, or read as written.
        for at in 0..good.len() {
            for bits in [0x01, 0x80, 0xff] {
                let mut changed = good.clone();
                changed[at] ^= bits;
                match read_answer(&changed) {
                    Ok(answer) => assert_eq!(answer.to_bytes(), changed, "{at}"),
                    Err(why) => assert!(!why.contains('\n'), "{at}: {why}"),
                }
            }
        }
    }
}
