//! The DNS message format (RFC 1035) as multicast DNS uses it (RFC 6762): reading any
//! message, writing the few record types the responder sends.
//!
//! [`parse`] is a pure function of the packet's bytes. It never panics and its work is
//! bounded by the packet's length: every read is checked against the end, compression
//! pointers must point strictly backwards (so they cannot loop), names are capped at
//! 255 bytes and 128 labels, and no section count is trusted beyond the bytes present.
//! Writing compresses names, so a reply repeats `_http._tcp.local` once.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Record and question types used here.
pub const TYPE_A: u16 = 1;
pub const TYPE_PTR: u16 = 12;
pub const TYPE_TXT: u16 = 16;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_SRV: u16 = 33;
pub const TYPE_NSEC: u16 = 47;
/// The question type that asks for every record of a name.
pub const TYPE_ANY: u16 = 255;
/// The Internet class.
pub const CLASS_IN: u16 = 1;
/// The question type "ANY" has a class counterpart too.
pub const CLASS_ANY: u16 = 255;

/// Header flag: this message is a response.
pub const FLAG_RESPONSE: u16 = 0x8000;
/// Header flag: the answer is authoritative (every mDNS response sets it).
pub const FLAG_AUTHORITATIVE: u16 = 0x0400;
/// Header bits 11-14: the opcode; mDNS uses only 0 (a standard query).
const OPCODE_MASK: u16 = 0x7800;

/// The top bit of a question's class: "a unicast response is preferred" (QU).
const UNICAST_RESPONSE_BIT: u16 = 0x8000;
/// The top bit of a record's class: "flush other records of this name and type".
const CACHE_FLUSH_BIT: u16 = 0x8000;

/// The longest name on the wire, in bytes (RFC 1035 section 3.1).
const MAX_NAME_BYTES: usize = 255;
/// The longest label.
const MAX_LABEL: usize = 63;

/// Why a packet could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// The packet ends inside the header, a name or a record.
    Truncated,
    /// A label length byte with the reserved top bits 01 or 10.
    BadLabelType(u8),
    /// A compression pointer that does not point to an earlier position.
    PointerNotBackwards,
    /// A name longer than 255 bytes once decompressed.
    NameTooLong,
    /// A record's data is shorter or longer than its type requires.
    BadRecordData(u16),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated => f.write_str("message truncated"),
            WireError::BadLabelType(b) => write!(f, "unknown label type {:#04x}", b & 0xC0),
            WireError::PointerNotBackwards => f.write_str("compression pointer not backwards"),
            WireError::NameTooLong => f.write_str("name longer than 255 bytes"),
            WireError::BadRecordData(t) => write!(f, "malformed data of a type {t} record"),
        }
    }
}

impl std::error::Error for WireError {}

/// A domain name as its labels, without the final empty label. Labels are bytes (DNS-SD
/// instance names may hold any UTF-8); comparisons ignore ASCII case, as DNS does.
#[derive(Clone, Default)]
pub struct Name {
    labels: Vec<Vec<u8>>,
}

impl Name {
    /// A name from dotted text such as `_http._tcp.local` (a trailing dot is allowed).
    /// Dots always separate labels here; names in this program never contain one.
    pub fn new(dotted: &str) -> Name {
        Name {
            labels: dotted
                .split('.')
                .filter(|l| !l.is_empty())
                .map(|l| l.as_bytes().to_vec())
                .collect(),
        }
    }

    /// This name with `label` in front of it.
    pub fn prepend(&self, label: &str) -> Name {
        let mut labels = vec![label.as_bytes().to_vec()];
        labels.extend(self.labels.iter().cloned());
        Name { labels }
    }

    pub fn labels(&self) -> &[Vec<u8>] {
        &self.labels
    }

    /// Bytes this name takes uncompressed on the wire, final zero included.
    fn wire_len(&self) -> usize {
        1 + self.labels.iter().map(|l| l.len() + 1).sum::<usize>()
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        self.labels.len() == other.labels.len()
            && self
                .labels
                .iter()
                .zip(&other.labels)
                .all(|(a, b)| a.eq_ignore_ascii_case(b))
    }
}

impl Eq for Name {}

impl fmt::Display for Name {
    /// Dotted, with dots and backslashes inside labels escaped, and bytes outside
    /// printable ASCII as `\DDD`, the usual presentation format.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.labels.is_empty() {
            return f.write_str(".");
        }
        for (i, label) in self.labels.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            for &b in label {
                match b {
                    b'.' | b'\\' => write!(f, "\\{}", b as char)?,
                    0x21..=0x7E => write!(f, "{}", b as char)?,
                    _ => write!(f, "\\{b:03}")?,
                }
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({self})")
    }
}

/// One question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub name: Name,
    pub qtype: u16,
    /// The class without the unicast-response bit.
    pub class: u16,
    /// The querier prefers a unicast reply (the QU bit).
    pub unicast_response: bool,
}

/// What a record says, for the types this program reads or writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Ptr(Name),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: Name,
    },
    /// The character strings, each at most 255 bytes.
    Txt(Vec<Vec<u8>>),
    /// NSEC as mDNS uses it: the next name (always the owner itself here) and the types
    /// that exist, from window block 0 only (types below 256).
    Nsec {
        next: Name,
        types: Vec<u16>,
    },
    /// Any other type, as raw bytes (names inside are left compressed, unread).
    Other(Vec<u8>),
}

/// One resource record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub name: Name,
    pub rtype: u16,
    /// The class without the cache-flush bit.
    pub class: u16,
    pub cache_flush: bool,
    pub ttl: u32,
    pub data: RData,
}

/// A whole message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    pub id: u16,
    pub flags: u16,
    pub questions: Vec<Question>,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    pub additionals: Vec<Record>,
}

impl Message {
    pub fn is_response(&self) -> bool {
        self.flags & FLAG_RESPONSE != 0
    }

    /// The opcode: 0 for a standard query, the only kind mDNS answers.
    pub fn opcode(&self) -> u16 {
        (self.flags & OPCODE_MASK) >> 11
    }
}

/// Reads a message. Pure, bounded and panic-free for any input; see the module docs.
pub fn parse(packet: &[u8]) -> Result<Message, WireError> {
    let mut r = Reader {
        buf: packet,
        pos: 0,
    };
    let id = r.u16()?;
    let flags = r.u16()?;
    let counts = [r.u16()?, r.u16()?, r.u16()?, r.u16()?];
    let mut msg = Message {
        id,
        flags,
        ..Message::default()
    };
    // Each question takes at least 5 bytes and each record 11, so a count larger than
    // the packet can hold fails at the end of the data instead of allocating for it.
    for _ in 0..counts[0] {
        let name = r.name()?;
        let qtype = r.u16()?;
        let class = r.u16()?;
        msg.questions.push(Question {
            name,
            qtype,
            class: class & !UNICAST_RESPONSE_BIT,
            unicast_response: class & UNICAST_RESPONSE_BIT != 0,
        });
    }
    for (count, section) in
        counts[1..]
            .iter()
            .zip([&mut msg.answers, &mut msg.authorities, &mut msg.additionals])
    {
        for _ in 0..*count {
            section.push(r.record()?);
        }
    }
    Ok(msg)
}

/// A cursor over the packet; every read checks the bounds.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn bytes(&mut self, n: usize) -> Result<&[u8], WireError> {
        let end = self.pos.checked_add(n).ok_or(WireError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(WireError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.bytes(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, WireError> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, WireError> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads a possibly compressed name at the cursor and moves past it (past the first
    /// pointer, if any). Each pointer must point before the position it was read at, so
    /// the positions visited strictly decrease at every jump and the walk ends.
    fn name(&mut self) -> Result<Name, WireError> {
        let mut labels = Vec::new();
        let mut wire_len = 1; // the final zero
        let mut pos = self.pos;
        let mut resume = None; // where the cursor continues after the first pointer
        loop {
            let len = *self.buf.get(pos).ok_or(WireError::Truncated)?;
            match len & 0xC0 {
                0x00 if len == 0 => {
                    pos += 1;
                    break;
                }
                0x00 => {
                    let len = len as usize;
                    let label = self
                        .buf
                        .get(pos + 1..pos + 1 + len)
                        .ok_or(WireError::Truncated)?;
                    wire_len += len + 1;
                    if wire_len > MAX_NAME_BYTES {
                        return Err(WireError::NameTooLong);
                    }
                    labels.push(label.to_vec());
                    pos += 1 + len;
                }
                0xC0 => {
                    let low = *self.buf.get(pos + 1).ok_or(WireError::Truncated)?;
                    let target = (((len & 0x3F) as usize) << 8) | low as usize;
                    if target >= pos {
                        return Err(WireError::PointerNotBackwards);
                    }
                    resume.get_or_insert(pos + 2);
                    pos = target;
                }
                _ => return Err(WireError::BadLabelType(len)),
            }
        }
        self.pos = resume.unwrap_or(pos);
        Ok(Name { labels })
    }

    fn record(&mut self) -> Result<Record, WireError> {
        let name = self.name()?;
        let rtype = self.u16()?;
        let class = self.u16()?;
        let ttl = self.u32()?;
        let len = self.u16()? as usize;
        let start = self.pos;
        let end = start + len;
        if end > self.buf.len() {
            return Err(WireError::Truncated);
        }
        let bad = WireError::BadRecordData(rtype);
        let data = match rtype {
            TYPE_A => {
                let b: [u8; 4] = self.bytes(len)?.try_into().map_err(|_| bad.clone())?;
                RData::A(Ipv4Addr::from(b))
            }
            TYPE_AAAA => {
                let b: [u8; 16] = self.bytes(len)?.try_into().map_err(|_| bad.clone())?;
                RData::Aaaa(Ipv6Addr::from(b))
            }
            TYPE_PTR => RData::Ptr(self.name()?),
            TYPE_SRV => RData::Srv {
                priority: self.u16()?,
                weight: self.u16()?,
                port: self.u16()?,
                target: self.name()?,
            },
            TYPE_TXT => {
                let mut strings = Vec::new();
                while self.pos < end {
                    let n = self.u8()? as usize;
                    strings.push(self.bytes(n)?.to_vec());
                }
                RData::Txt(strings)
            }
            TYPE_NSEC => {
                let next = self.name()?;
                let mut types = Vec::new();
                while self.pos < end {
                    let window = self.u8()?;
                    let n = self.u8()? as usize;
                    if n == 0 || n > 32 {
                        return Err(bad);
                    }
                    let bitmap = self.bytes(n)?;
                    if window == 0 {
                        for (i, byte) in bitmap.iter().enumerate() {
                            for bit in 0..8 {
                                if byte & (0x80 >> bit) != 0 {
                                    types.push((i * 8 + bit) as u16);
                                }
                            }
                        }
                    }
                }
                RData::Nsec { next, types }
            }
            _ => RData::Other(self.bytes(len)?.to_vec()),
        };
        // The data must fill exactly the length given, no more and no less.
        if self.pos != end {
            return Err(bad);
        }
        Ok(Record {
            name,
            rtype,
            class: class & !CACHE_FLUSH_BIT,
            cache_flush: class & CACHE_FLUSH_BIT != 0,
            ttl,
            data,
        })
    }
}

/// A query message (id `id`, no flags) asking each `(name, type)` in class IN with a
/// multicast answer: what a browser or a resolver sends, for tools and tests.
pub fn query(id: u16, questions: &[(&str, u16)]) -> Vec<u8> {
    let mut w = Writer::new(id, 0);
    for (name, qtype) in questions {
        w.question(&Question {
            name: Name::new(name),
            qtype: *qtype,
            class: CLASS_IN,
            unicast_response: false,
        });
    }
    w.finish()
}

/// Builds a message, compressing names against those already written.
pub struct Writer {
    buf: Vec<u8>,
    /// Every name suffix written so far, with its offset, for compression.
    suffixes: Vec<(Name, u16)>,
    counts: [u16; 4],
}

impl Writer {
    pub fn new(id: u16, flags: u16) -> Writer {
        let mut buf = Vec::with_capacity(512);
        buf.extend_from_slice(&id.to_be_bytes());
        buf.extend_from_slice(&flags.to_be_bytes());
        buf.extend_from_slice(&[0; 8]);
        Writer {
            buf,
            suffixes: Vec::new(),
            counts: [0; 4],
        }
    }

    /// Adds a question. Questions must come before any record.
    pub fn question(&mut self, q: &Question) {
        self.name(&q.name);
        self.u16(q.qtype);
        let unicast = if q.unicast_response {
            UNICAST_RESPONSE_BIT
        } else {
            0
        };
        self.u16(q.class | unicast);
        self.counts[0] += 1;
    }

    /// Adds an answer record.
    pub fn answer(&mut self, r: &Record) {
        self.record(r);
        self.counts[1] += 1;
    }

    /// Adds an additional record. All answers must come first.
    pub fn additional(&mut self, r: &Record) {
        self.record(r);
        self.counts[3] += 1;
    }

    /// The finished message.
    pub fn finish(mut self) -> Vec<u8> {
        for (i, c) in self.counts.iter().enumerate() {
            self.buf[4 + 2 * i..6 + 2 * i].copy_from_slice(&c.to_be_bytes());
        }
        self.buf
    }

    fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    fn name(&mut self, name: &Name) {
        debug_assert!(name.wire_len() <= MAX_NAME_BYTES);
        let labels = name.labels();
        for i in 0..labels.len() {
            let suffix = Name {
                labels: labels[i..].to_vec(),
            };
            if let Some(&(_, offset)) = self.suffixes.iter().find(|(s, _)| *s == suffix) {
                self.u16(0xC000 | offset);
                return;
            }
            // Offsets beyond 14 bits cannot be pointed to; our messages are far smaller.
            if self.buf.len() < 0x3FFF {
                self.suffixes.push((suffix, self.buf.len() as u16));
            }
            let label = &labels[i][..labels[i].len().min(MAX_LABEL)];
            self.buf.push(label.len() as u8);
            self.buf.extend_from_slice(label);
        }
        self.buf.push(0);
    }

    fn record(&mut self, r: &Record) {
        self.name(&r.name);
        self.u16(r.rtype);
        self.u16(r.class | if r.cache_flush { CACHE_FLUSH_BIT } else { 0 });
        self.buf.extend_from_slice(&r.ttl.to_be_bytes());
        let len_at = self.buf.len();
        self.u16(0);
        match &r.data {
            RData::A(ip) => self.buf.extend_from_slice(&ip.octets()),
            RData::Aaaa(ip) => self.buf.extend_from_slice(&ip.octets()),
            RData::Ptr(name) => self.name(name),
            RData::Srv {
                priority,
                weight,
                port,
                target,
            } => {
                self.u16(*priority);
                self.u16(*weight);
                self.u16(*port);
                self.name(target);
            }
            RData::Txt(strings) => {
                for s in strings {
                    let s = &s[..s.len().min(255)];
                    self.buf.push(s.len() as u8);
                    self.buf.extend_from_slice(s);
                }
                if strings.is_empty() {
                    // An empty TXT record still holds one empty string (RFC 6763 6.1).
                    self.buf.push(0);
                }
            }
            RData::Nsec { next, types } => {
                // RFC 6762 section 18.14: names in NSEC are not compressed in mDNS.
                for label in next.labels() {
                    self.buf.push(label.len() as u8);
                    self.buf.extend_from_slice(label);
                }
                self.buf.push(0);
                let mut bitmap = [0u8; 32];
                let mut used = 0;
                for &t in types.iter().filter(|&&t| t < 256) {
                    bitmap[t as usize / 8] |= 0x80 >> (t % 8);
                    used = used.max(t as usize / 8 + 1);
                }
                if used > 0 {
                    self.buf.push(0);
                    self.buf.push(used as u8);
                    self.buf.extend_from_slice(&bitmap[..used]);
                }
            }
            RData::Other(bytes) => self.buf.extend_from_slice(bytes),
        }
        let len = (self.buf.len() - len_at - 2) as u16;
        self.buf[len_at..len_at + 2].copy_from_slice(&len.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_records() -> Vec<Record> {
        let host = Name::new("picam.local");
        let service = Name::new("_http._tcp.local");
        let instance = service.prepend("picam");
        vec![
            Record {
                name: service.clone(),
                rtype: TYPE_PTR,
                class: CLASS_IN,
                cache_flush: false,
                ttl: 4500,
                data: RData::Ptr(instance.clone()),
            },
            Record {
                name: instance.clone(),
                rtype: TYPE_SRV,
                class: CLASS_IN,
                cache_flush: true,
                ttl: 120,
                data: RData::Srv {
                    priority: 0,
                    weight: 0,
                    port: 8000,
                    target: host.clone(),
                },
            },
            Record {
                name: instance.clone(),
                rtype: TYPE_TXT,
                class: CLASS_IN,
                cache_flush: true,
                ttl: 4500,
                data: RData::Txt(vec![b"path=/".to_vec()]),
            },
            Record {
                name: host.clone(),
                rtype: TYPE_A,
                class: CLASS_IN,
                cache_flush: true,
                ttl: 120,
                data: RData::A(Ipv4Addr::new(192, 0, 2, 7)),
            },
            Record {
                name: host.clone(),
                rtype: TYPE_AAAA,
                class: CLASS_IN,
                cache_flush: true,
                ttl: 120,
                data: RData::Aaaa("2001:db8::7".parse().unwrap()),
            },
            Record {
                name: host.clone(),
                rtype: TYPE_NSEC,
                class: CLASS_IN,
                cache_flush: true,
                ttl: 120,
                data: RData::Nsec {
                    next: host,
                    types: vec![TYPE_A, TYPE_AAAA],
                },
            },
        ]
    }

    fn sample_message() -> Vec<u8> {
        let mut w = Writer::new(0x1234, FLAG_RESPONSE | FLAG_AUTHORITATIVE);
        w.question(&Question {
            name: Name::new("_http._tcp.local"),
            qtype: TYPE_PTR,
            class: CLASS_IN,
            unicast_response: true,
        });
        let records = sample_records();
        for r in &records[..3] {
            w.answer(r);
        }
        for r in &records[3..] {
            w.additional(r);
        }
        w.finish()
    }

    #[test]
    fn written_messages_read_back_identically() {
        let bytes = sample_message();
        let msg = parse(&bytes).unwrap();
        assert_eq!(msg.id, 0x1234);
        assert!(msg.is_response());
        assert_eq!(msg.opcode(), 0);
        assert_eq!(msg.questions.len(), 1);
        assert!(msg.questions[0].unicast_response);
        assert_eq!(msg.questions[0].name, Name::new("_HTTP._tcp.LOCAL."));
        let records = sample_records();
        assert_eq!(msg.answers, records[..3]);
        assert_eq!(msg.additionals, records[3..]);
        assert!(msg.authorities.is_empty());
    }

    #[test]
    fn names_are_compressed_when_written() {
        let bytes = sample_message();
        // "_http" and "picam" appear once each as label text despite repeated names.
        let count = |needle: &[u8]| bytes.windows(needle.len()).filter(|w| *w == needle).count();
        assert_eq!(count(b"\x05_http"), 1);
        // The instance and the host, plus NSEC's next name, which is never compressed.
        assert_eq!(count(b"\x05picam"), 3);
        // NSEC's next name is written in full, as RFC 6762 asks.
        assert_eq!(count(b"\x05local"), 2);
    }

    #[test]
    fn a_hand_made_query_with_compression_is_read() {
        // Two questions; the second name is "picam" + pointer to "local" of the first.
        let mut p = vec![0, 7, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0];
        p.extend_from_slice(b"\x04host\x05local\x00\x00\x01\x00\x01");
        p.extend_from_slice(b"\x05picam\xc0\x11\x00\x1c\x80\x01");
        let msg = parse(&p).unwrap();
        assert_eq!(msg.questions[0].name, Name::new("host.local"));
        assert_eq!(msg.questions[1].name, Name::new("picam.local"));
        assert_eq!(msg.questions[1].qtype, TYPE_AAAA);
        assert!(msg.questions[1].unicast_response);
        assert!(!msg.is_response());
    }

    #[test]
    fn every_truncation_of_a_valid_message_is_an_error() {
        let bytes = sample_message();
        for len in 0..bytes.len() {
            assert!(
                parse(&bytes[..len]).is_err(),
                "prefix of {len} bytes parsed"
            );
        }
    }

    #[test]
    fn every_single_byte_corruption_is_survived() {
        // Not every change is an error (many still make a valid message), but none may
        // panic, and all must finish; this walks each byte through a few values.
        let bytes = sample_message();
        for i in 0..bytes.len() {
            for v in [
                0x00,
                0x01,
                0x3F,
                0x40,
                0x80,
                0xC0,
                0xC0 | (i as u8 & 0x3F),
                0xFF,
            ] {
                let mut p = bytes.clone();
                p[i] = v;
                let _ = parse(&p);
            }
        }
    }

    #[test]
    fn compression_loops_and_forward_pointers_are_rejected() {
        let header = [0u8, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        // A pointer to itself.
        let mut p = header.to_vec();
        p.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1]);
        assert_eq!(parse(&p), Err(WireError::PointerNotBackwards));
        // Two labels pointing at each other: "a" -> pointer to 12 (backwards, fine), and
        // the name at 12 is a pointer to 14 (forwards).
        let mut p = header.to_vec();
        p.extend_from_slice(&[0xC0, 14, 0x01, b'a', 0xC0, 12, 0, 1, 0, 1]);
        assert_eq!(parse(&p), Err(WireError::PointerNotBackwards));
        // A pointer into the header, where the id happens to be a pointer to itself.
        let mut p = header.to_vec();
        p[0] = 0xC0;
        p.extend_from_slice(&[0xC0, 0, 0, 1, 0, 1]);
        assert_eq!(parse(&p), Err(WireError::PointerNotBackwards));
    }

    /// A packet with a header, `body`, and nothing else; returns the body's offset.
    fn packet_with(body: &[u8]) -> (Vec<u8>, usize) {
        let mut p = vec![0u8; 12];
        p.extend_from_slice(body);
        (p, 12)
    }

    #[test]
    fn chains_of_backwards_pointers_end() {
        // "z" at 12, then 40 links, each the label "a" and a pointer to the link before.
        let (mut p, start) = packet_with(b"\x01z\x00");
        let mut prev = start;
        for _ in 0..40 {
            let here = p.len();
            p.extend_from_slice(&[0x01, b'a', 0xC0, prev as u8]);
            prev = here;
        }
        let mut r = Reader { buf: &p, pos: prev };
        let name = r.name().unwrap();
        assert_eq!(name.labels().len(), 41);
        assert_eq!(name.labels()[40], b"z");
        assert_eq!(
            r.pos,
            prev + 4,
            "the cursor continues after the first pointer"
        );
    }

    #[test]
    fn long_names_and_bad_label_types_are_rejected() {
        let mut body = Vec::new();
        for _ in 0..5 {
            body.push(63);
            body.extend_from_slice(&[b'x'; 63]);
        }
        body.extend_from_slice(&[0, 0, 1, 0, 1]);
        let (mut p, _) = packet_with(&body);
        p[5] = 1;
        assert_eq!(parse(&p), Err(WireError::NameTooLong));
        let (mut p, _) = packet_with(&[0x41, 0, 0, 1, 0, 1]);
        p[5] = 1;
        assert_eq!(parse(&p), Err(WireError::BadLabelType(0x41)));
        // Compression that would build a name over 255 bytes: each link adds a 63-byte
        // label and points back at the link before.
        let (mut p, start) = packet_with(&[0]);
        let mut prev = start;
        for _ in 0..5 {
            let here = p.len();
            p.push(63);
            p.extend_from_slice(&[b'y'; 63]);
            p.extend_from_slice(&[0xC0 | (prev >> 8) as u8, prev as u8]);
            prev = here;
        }
        let mut r = Reader { buf: &p, pos: prev };
        assert_eq!(r.name(), Err(WireError::NameTooLong));
    }

    #[test]
    fn huge_counts_with_little_data_fail_fast() {
        let p = [
            0u8, 0, 0x80, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        ];
        assert_eq!(parse(&p), Err(WireError::Truncated));
    }

    #[test]
    fn record_data_must_fill_its_length_exactly() {
        let mut w = Writer::new(0, FLAG_RESPONSE);
        w.answer(&sample_records()[3]); // A record, 4 bytes of data
        let good = w.finish();
        assert!(parse(&good).is_ok());
        // Claim 5 bytes of data and add one.
        let mut long = good.clone();
        let len_at = long.len() - 6;
        long[len_at + 1] = 5;
        long.push(0);
        assert_eq!(parse(&long), Err(WireError::BadRecordData(TYPE_A)));
        // SRV data declared 2 bytes shorter than its target name needs.
        let mut w = Writer::new(0, FLAG_RESPONSE);
        w.answer(&sample_records()[1]);
        let mut srv = w.finish();
        assert!(parse(&srv).is_ok());
        let data_len_at = 12 + Name::new("picam._http._tcp.local").wire_len() + 8;
        let declared = u16::from_be_bytes([srv[data_len_at], srv[data_len_at + 1]]);
        assert_eq!(declared as usize, srv.len() - data_len_at - 2);
        srv[data_len_at..data_len_at + 2].copy_from_slice(&(declared - 2).to_be_bytes());
        assert_eq!(parse(&srv), Err(WireError::BadRecordData(TYPE_SRV)));
        srv.extend_from_slice(&[0; 4]);
        assert!(parse(&srv).is_err());
    }

    #[test]
    fn names_display_escaped() {
        let n = Name::new("local").prepend("a\\b");
        assert_eq!(n.to_string(), "a\\\\b.local");
        let n = Name {
            labels: vec![b"x.y z".to_vec()],
        };
        assert_eq!(n.to_string(), "x\\.y\\032z");
    }
}
