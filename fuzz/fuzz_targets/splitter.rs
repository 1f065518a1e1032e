//! The MJPEG splitter against arbitrary byte streams.
//!
//! Input: one byte choosing the frame size cap, one byte seeding how the stream is cut
//! into reads, then the stream itself. Checked:
//!
//! * every byte of the stream belongs to exactly one reported piece, in order, and a
//!   frame is exactly the bytes at its place in the stream;
//! * every frame starts with SOI, ends with EOI and fits the cap;
//! * between reads the splitter holds at most the cap and an unfinished marker;
//! * a frame split on its own comes out whole again;
//! * cutting the stream into other reads changes nothing but how garbage runs are split,
//!   nor does reading it straight into the splitter's buffer (`read_from`);
//! * the buffer's memory stays within twice the cap and a read, or its first size;
//! * the JPEG checks the pipeline applies to frames never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use picam_stream::splitter::{DropReason, MjpegSplitter, Piece, DEFAULT_MAX_FRAME, READ_SIZE};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Got {
    Frame(Vec<u8>),
    Dropped(DropReason, usize),
    Garbage(usize),
}

/// Hands out the given reads one by one to `read`.
struct Reads<'a>(std::vec::IntoIter<&'a [u8]>, &'a [u8]);

impl std::io::Read for Reads<'_> {
    fn read(&mut self, into: &mut [u8]) -> std::io::Result<usize> {
        if self.1.is_empty() {
            self.1 = self.0.next().unwrap_or_default();
        }
        let n = self.1.len().min(into.len());
        into[..n].copy_from_slice(&self.1[..n]);
        self.1 = &self.1[n..];
        Ok(n)
    }
}

/// Splits `stream` fed as the given reads (or read with `read_from` when `read`), and
/// merges neighbouring garbage runs.
fn split<'a>(reads: impl Iterator<Item = &'a [u8]>, max: usize, read: bool) -> Vec<Got> {
    let mut splitter = MjpegSplitter::new(max);
    let mut out: Vec<Got> = Vec::new();
    let mut push = |piece: Piece<'_>| {
        let got = match piece {
            Piece::Frame(f) => Got::Frame(f.to_vec()),
            Piece::Dropped(reason, n) => Got::Dropped(reason, n),
            Piece::Garbage(n) => {
                assert!(n > 0, "an empty garbage run was reported");
                if let Some(Got::Garbage(m)) = out.last_mut() {
                    *m += n;
                    return;
                }
                Got::Garbage(n)
            }
        };
        out.push(got);
    };
    let held = |splitter: &MjpegSplitter, largest: usize| {
        assert!(
            splitter.buffered() <= max + 3,
            "{} bytes held with a cap of {max}",
            splitter.buffered()
        );
        assert!(
            splitter.memory() <= (2 * (max + 3 + largest)).max(4 * READ_SIZE),
            "{} bytes of buffer with a cap of {max}",
            splitter.memory()
        );
    };
    if read {
        let mut input = Reads(reads.collect::<Vec<_>>().into_iter(), &[]);
        while splitter
            .read_from(&mut input, &mut push)
            .expect("reading from memory")
            > 0
        {
            held(&splitter, READ_SIZE);
        }
    } else {
        let mut largest = 0;
        for read in reads {
            splitter.feed(read, &mut push);
            largest = largest.max(read.len());
            held(&splitter, largest);
        }
    }
    splitter.finish(&mut push);
    out
}

/// Read sizes from a small deterministic generator seeded by `seed`.
fn reads(stream: &[u8], seed: u8) -> Vec<&[u8]> {
    let largest = match seed & 3 {
        0 => 1,
        1 => 7,
        2 => 300,
        _ => 5000,
    };
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ u64::from(seed);
    let mut out = Vec::new();
    let mut rest = stream;
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
    let [cap, seed, stream @ ..] = data else {
        return;
    };
    let max = match *cap {
        0 => DEFAULT_MAX_FRAME,
        c => usize::from(c) * 16,
    };
    let whole = split(std::iter::once(stream), max, false);

    let mut at = 0;
    for got in &whole {
        match got {
            Got::Frame(f) => {
                assert!(f.len() >= 4, "frame of {} bytes", f.len());
                assert_eq!(&f[..2], &[0xFF, 0xD8], "frame without SOI");
                assert_eq!(&f[f.len() - 2..], &[0xFF, 0xD9], "frame without EOI");
                assert!(
                    f.len() <= max,
                    "frame of {} bytes over the cap {max}",
                    f.len()
                );
                assert_eq!(
                    stream.get(at..at + f.len()),
                    Some(&f[..]),
                    "frame is not the stream's bytes at {at}"
                );
                assert_eq!(
                    split(std::iter::once(&f[..]), max, false),
                    vec![got.clone()],
                    "a frame split alone does not come out whole"
                );
                let _ = picam_stream::jpeg::inspect(f);
                at += f.len();
            }
            Got::Dropped(_, n) => {
                assert!(*n > 0, "an empty drop was reported");
                at += n;
            }
            Got::Garbage(n) => at += n,
        }
    }
    assert_eq!(
        at,
        stream.len(),
        "pieces do not add up to the stream: {whole:?}"
    );

    let chunked = split(reads(stream, *seed).into_iter(), max, false);
    assert_eq!(whole, chunked, "the reads' sizes changed the result");
    let read = split(reads(stream, *seed).into_iter(), max, true);
    assert_eq!(whole, read, "reading into the splitter changed the result");
});
