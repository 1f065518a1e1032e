//! The parent's reader of the `--isolate` pipe: the messages a source process sends
//! (frames, its problem, its encoder, its dropped-frame count, its camera's controls,
//! heartbeats).
//!
//! Input: one byte seeding how the bytes are cut into reads, then the bytes. Checked:
//!
//! * any bytes, however cut, give messages or an error and never a panic, and the same
//!   messages and the same verdict whichever way they are cut;
//! * every message cut out is exactly the bytes at its place (a five-byte head and its
//!   payload), and written again gives those bytes back when its text was valid UTF-8;
//! * what is left at the end is reported as a partial message exactly when bytes of
//!   one are waiting;
//! * the JPEG check the parent applies to frames never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use picam_stream::source::isolate::{decode, Message, MessageReader};

/// What the reader made of the bytes: each message's tag and payload, then the error
/// that stopped it, if any, or else whether an unfinished message was waiting.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    messages: Vec<(u8, Vec<u8>)>,
    error: Option<String>,
    partial: bool,
}

fn read<'a>(reads: impl Iterator<Item = &'a [u8]>) -> Outcome {
    let mut reader = MessageReader::default();
    let mut messages = Vec::new();
    for bytes in reads {
        reader.extend(bytes);
        loop {
            match reader.next_message() {
                Ok(Some((tag, payload))) => {
                    let owned = (tag, payload.to_vec());
                    if let Err(e) = decode(tag, payload) {
                        // The parent stops at a message it cannot decode, as at one it
                        // cannot cut out.
                        messages.push(owned);
                        return Outcome {
                            messages,
                            error: Some(e),
                            partial: false,
                        };
                    }
                    messages.push(owned);
                }
                Ok(None) => break,
                Err(e) => {
                    return Outcome {
                        messages,
                        error: Some(e),
                        partial: false,
                    }
                }
            }
        }
    }
    Outcome {
        messages,
        error: None,
        partial: reader.partial(),
    }
}

/// Read sizes from a small deterministic generator seeded by `seed`.
fn reads(bytes: &[u8], seed: u8) -> Vec<&[u8]> {
    let largest = match seed & 3 {
        0 => 1,
        1 => 6,
        2 => 300,
        _ => 70_000,
    };
    let mut state = 0x2545_F491_4F6C_DD1Du64 ^ u64::from(seed);
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let n = (1 + (state % largest) as usize).min(rest.len());
        let (head, tail) = rest.split_at(n);
        out.push(head);
        rest = tail;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let [seed, bytes @ ..] = data else {
        return;
    };
    let whole = read(std::iter::once(bytes));

    let mut at = 0;
    for (tag, payload) in &whole.messages {
        let len = u32::try_from(payload.len()).expect("a payload within u32");
        assert_eq!(bytes[at], *tag, "tag not at its place");
        assert_eq!(
            &bytes[at + 1..at + 5],
            &len.to_le_bytes(),
            "length not at its place"
        );
        assert_eq!(&bytes[at + 5..at + 5 + payload.len()], &payload[..]);
        at += 5 + payload.len();

        let Ok(message) = decode(*tag, payload) else {
            continue;
        };
        let mut again = Vec::new();
        message.write_to(&mut again).expect("writing to memory");
        let text_ok = match &message {
            Message::Problem(t) | Message::Encoder(t) => t.as_bytes() == &payload[..],
            _ => true,
        };
        if text_ok {
            assert_eq!(
                &again[..],
                &bytes[at - 5 - payload.len()..at],
                "{message:?}"
            );
        }
        if let Message::Frame(jpeg) = message {
            let _ = picam_stream::jpeg::inspect(jpeg);
        }
    }
    if whole.error.is_none() {
        assert_eq!(whole.partial, at < bytes.len(), "partial() is wrong");
        assert!(bytes.len() - at < 5 + (64 << 20), "too much left over");
    }

    let chunked = read(reads(bytes, *seed).into_iter());
    assert_eq!(whole, chunked, "the reads' sizes changed the result");
});
