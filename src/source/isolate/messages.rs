//! The messages between the server and a source in a process of its own, and their
//! framing: a tag byte, a little-endian `u32` length and that many bytes (the tags are
//! in [`super`]'s tables). [`MessageReader`] cuts them out of the bytes read so far and
//! [`decode`] reads the ones on the child's standard output; [`Outlet`] writes them
//! whole from the child's threads.

use std::fs::File;
use std::io::{self, Write};
use std::sync::Mutex;

use super::control_wire;

pub(super) const FRAME: u8 = b'F';
pub(super) const PROBLEM: u8 = b'E';
pub(super) const ENCODER: u8 = b'C';
pub(super) const DROPPED: u8 = b'D';
pub(super) const WORKERS: u8 = b'W';
pub(super) const CONTROLS: u8 = b'K';
pub(super) const ALIVE: u8 = b'H';
pub(super) const STILLS: u8 = b'T';
/// The tags of the child's standard output.
pub(super) const PIPE_TAGS: &[u8] = &[
    FRAME, PROBLEM, ENCODER, DROPPED, WORKERS, CONTROLS, ALIVE, STILLS,
];
/// A request for changes to the camera's controls, on the control socket.
pub(super) const REQUEST: u8 = b'S';
/// The child's answer to one, on the control socket.
pub(super) const ANSWER: u8 = b'A';
/// A request for a full-resolution still, on the still socket.
pub(super) const STILL_REQUEST: u8 = b'G';
/// The child's answer to one: the still or why not.
pub(super) const STILL_ANSWER: u8 = b'J';

/// Largest message the parent accepts: more than any JPEG of a 4096x4096 picture.
pub(super) const MAX_MESSAGE: usize = 64 << 20;

/// One message from the child, decoded from its tag and payload by [`decode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'a> {
    /// A JPEG frame (not checked yet).
    Frame(&'a [u8]),
    /// The source's current problem; empty when it has none.
    Problem(std::borrow::Cow<'a, str>),
    /// The encoder's description.
    Encoder(std::borrow::Cow<'a, str>),
    /// Frames dropped so far.
    Dropped(u64),
    /// Threads encoding in software, and pictures dropped so far because all were busy.
    Workers(u64, u64),
    /// The camera's controls (or none), as the child now describes them.
    Controls(control_wire::Description),
    /// The heartbeat.
    Alive,
    /// Whether the source takes full-resolution stills now (its still desk is open).
    Stills(bool),
}

impl Message<'_> {
    /// Writes the message as the child sends it.
    pub fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        match self {
            Message::Frame(jpeg) => write_message(out, FRAME, jpeg),
            Message::Problem(text) => write_message(out, PROBLEM, text.as_bytes()),
            Message::Encoder(text) => write_message(out, ENCODER, text.as_bytes()),
            Message::Dropped(n) => write_message(out, DROPPED, &n.to_le_bytes()),
            Message::Workers(n, busy) => write_message(out, WORKERS, &workers_payload(*n, *busy)),
            Message::Controls(description) => write_message(out, CONTROLS, &description.to_bytes()),
            Message::Alive => write_message(out, ALIVE, &[]),
            Message::Stills(open) => write_message(out, STILLS, &[u8::from(*open)]),
        }
    }
}

/// The payload of a [`Message::Workers`].
pub(super) fn workers_payload(n: u64, busy: u64) -> [u8; 16] {
    let mut payload = [0u8; 16];
    payload[..8].copy_from_slice(&n.to_le_bytes());
    payload[8..].copy_from_slice(&busy.to_le_bytes());
    payload
}

/// Decodes a message that [`MessageReader::next_message`] cut out: text is read as
/// UTF-8 (bad sequences replaced), a count must be exactly eight bytes, controls as
/// [`control_wire::read_description`] reads them, a heartbeat empty, and whether stills
/// are taken one byte, 0 or 1.
pub fn decode(tag: u8, payload: &[u8]) -> Result<Message<'_>, String> {
    Ok(match tag {
        FRAME => Message::Frame(payload),
        PROBLEM => Message::Problem(String::from_utf8_lossy(payload)),
        ENCODER => Message::Encoder(String::from_utf8_lossy(payload)),
        DROPPED => <[u8; 8]>::try_from(payload)
            .map(|b| Message::Dropped(u64::from_le_bytes(b)))
            .map_err(|_| "a dropped-frame count of the wrong size".to_string())?,
        WORKERS if payload.len() == 16 => {
            let word = |i: usize| u64::from_le_bytes(payload[i..i + 8].try_into().unwrap());
            Message::Workers(word(0), word(8))
        }
        WORKERS => return Err("encoding thread counts of the wrong size".to_string()),
        CONTROLS => Message::Controls(control_wire::read_description(payload)?),
        ALIVE if payload.is_empty() => Message::Alive,
        ALIVE => return Err(format!("a heartbeat carrying {} bytes", payload.len())),
        STILLS => match payload {
            [0] => Message::Stills(false),
            [1] => Message::Stills(true),
            _ => return Err("a word on stills that is not one byte, 0 or 1".to_string()),
        },
        _ => return Err(format!("unknown message type 0x{tag:02x}")),
    })
}

/// Writes one message.
pub(super) fn write_message(out: &mut impl Write, tag: u8, payload: &[u8]) -> io::Result<()> {
    let len = u32::try_from(payload.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "message too long"))?;
    let mut head = [0u8; 5];
    head[0] = tag;
    head[1..].copy_from_slice(&len.to_le_bytes());
    out.write_all(&head)?;
    out.write_all(payload)
}

/// Cuts the bytes received from the other process so far into messages. The reader
/// is fed whatever each read returns; bytes that cannot be a message are an error.
/// The default reads the child's standard output.
pub struct MessageReader {
    buf: Vec<u8>,
    /// Bytes at the front of `buf` already handed out.
    used: usize,
    /// The tags expected.
    tags: &'static [u8],
    /// The longest payload accepted.
    max: usize,
}

impl Default for MessageReader {
    fn default() -> MessageReader {
        MessageReader::for_tags(PIPE_TAGS, MAX_MESSAGE)
    }
}

impl MessageReader {
    /// A reader of messages with one of `tags` and at most `max` bytes of payload.
    pub fn for_tags(tags: &'static [u8], max: usize) -> MessageReader {
        MessageReader {
            buf: Vec::new(),
            used: 0,
            tags,
            max,
        }
    }

    /// Adds bytes read from the child.
    pub fn extend(&mut self, bytes: &[u8]) {
        if self.used > 0 {
            self.buf.drain(..self.used);
            self.used = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole message as its tag and payload, if one has arrived; an error for
    /// bytes that cannot be one (an unknown tag, a length over the limit).
    pub fn next_message(&mut self) -> Result<Option<(u8, &[u8])>, String> {
        let rest = &self.buf[self.used..];
        if rest.len() < 5 {
            return Ok(None);
        }
        let tag = rest[0];
        if !self.tags.contains(&tag) {
            return Err(format!("unknown message type 0x{tag:02x}"));
        }
        let len = u32::from_le_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        if len > self.max {
            return Err(format!("a message of {len} bytes is too long"));
        }
        if rest.len() < 5 + len {
            return Ok(None);
        }
        let start = self.used + 5;
        self.used = start + len;
        Ok(Some((tag, &self.buf[start..start + len])))
    }

    /// Lets go of the room taken by the messages handed out, unless an unfinished one
    /// waits: one large message need not keep its room for the rest of the run.
    pub fn release(&mut self) {
        if !self.partial() {
            self.buf = Vec::new();
            self.used = 0;
        }
    }

    /// True when bytes of an unfinished message are waiting.
    pub fn partial(&self) -> bool {
        self.used < self.buf.len()
    }
}

/// The child's standard output, shared by the source thread (frames) and the thread
/// that reports state; a message is written whole under the lock.
pub(super) struct Outlet(pub(super) Mutex<File>);

impl Outlet {
    pub(super) fn send(&self, tag: u8, payload: &[u8]) -> io::Result<()> {
        let mut out = self.0.lock().unwrap_or_else(|e| e.into_inner());
        write_message(&mut *out, tag, payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(reader: &mut MessageReader) -> Vec<(u8, Vec<u8>)> {
        let mut got = Vec::new();
        while let Some((tag, payload)) = reader.next_message().unwrap() {
            got.push((tag, payload.to_vec()));
        }
        got
    }

    #[test]
    fn messages_arrive_whole_however_the_bytes_are_cut() {
        let mut wire = Vec::new();
        let sent: Vec<(u8, Vec<u8>)> = vec![
            (FRAME, (0..=255u8).cycle().take(70_000).collect()),
            (PROBLEM, b"camera gone".to_vec()),
            (ALIVE, Vec::new()),
            (DROPPED, 7u64.to_le_bytes().to_vec()),
            (ENCODER, b"software".to_vec()),
        ];
        for (tag, payload) in &sent {
            write_message(&mut wire, *tag, payload).unwrap();
        }
        for cut in [1, 3, 5, 4096, wire.len()] {
            let mut reader = MessageReader::default();
            let mut got = Vec::new();
            for piece in wire.chunks(cut) {
                reader.extend(piece);
                got.extend(messages(&mut reader));
            }
            assert_eq!(got, sent, "pieces of {cut} bytes");
            assert!(!reader.partial());
        }
    }

    #[test]
    fn a_cut_message_is_partial_and_bad_bytes_are_refused() {
        let mut wire = Vec::new();
        write_message(&mut wire, FRAME, b"abcdef").unwrap();
        let mut reader = MessageReader::default();
        reader.extend(&wire[..8]);
        assert!(reader.next_message().unwrap().is_none());
        assert!(reader.partial());

        let mut reader = MessageReader::default();
        reader.extend(b"hello world");
        assert_eq!(
            reader.next_message().unwrap_err(),
            "unknown message type 0x68"
        );

        let mut reader = MessageReader::default();
        reader.extend(&[FRAME, 0xff, 0xff, 0xff, 0xff]);
        assert!(reader.next_message().unwrap_err().contains("too long"));
    }

    #[test]
    fn messages_decode_to_what_was_written() {
        let sent = [
            Message::Frame(b"\xff\xd8 not checked here"),
            Message::Problem("camera gone".into()),
            Message::Problem("".into()),
            Message::Encoder("software".into()),
            Message::Dropped(u64::MAX - 3),
            Message::Workers(4, u64::MAX - 5),
            Message::Controls(control_wire::Description {
                number: 2,
                identity: String::new(),
                controls: None,
            }),
            Message::Controls(control_wire::Description {
                number: 3,
                identity: "test pattern".into(),
                controls: Some(vec![crate::controls::ControlInfo {
                    name: "brightness".into(),
                    label: "Brightness".into(),
                    kind: crate::controls::ControlKind::Boolean,
                    default: 0,
                    value: 1,
                    read_only: false,
                    inactive: false,
                }]),
            }),
            Message::Alive,
            Message::Stills(true),
            Message::Stills(false),
        ];
        let mut wire = Vec::new();
        for m in &sent {
            m.write_to(&mut wire).unwrap();
        }
        let mut reader = MessageReader::default();
        reader.extend(&wire);
        let mut got = Vec::new();
        while let Some((tag, payload)) = reader.next_message().unwrap() {
            // As text: each message borrows the reader, which the next one needs.
            got.push(format!("{:?}", decode(tag, payload).unwrap()));
        }
        let sent: Vec<_> = sent.iter().map(|m| format!("{m:?}")).collect();
        assert_eq!(got, sent);

        assert!(decode(DROPPED, &[1, 2, 3])
            .unwrap_err()
            .contains("wrong size"));
        assert_eq!(decode(b'x', b"").unwrap_err(), "unknown message type 0x78");
        assert!(decode(CONTROLS, &[0, 0, 0, 0, 0, 0, 0, 0, 5])
            .unwrap_err()
            .contains("a controls description marked 5 (expected 0 or 1)"));
        // Found by fuzzing: a heartbeat with a payload was taken for a heartbeat.
        assert_eq!(
            decode(ALIVE, b"xyz").unwrap_err(),
            "a heartbeat carrying 3 bytes"
        );
        for bad in [&b""[..], b"\x02", b"\x01\x00"] {
            assert!(decode(STILLS, bad)
                .unwrap_err()
                .contains("not one byte, 0 or 1"));
        }
        assert_eq!(
            decode(PROBLEM, b"bad \xff byte").unwrap(),
            Message::Problem("bad \u{fffd} byte".into())
        );
    }
}
