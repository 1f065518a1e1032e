//! `MjpegSplitter`: cuts an MJPEG byte stream (concatenated JPEGs) into whole pictures.
//!
//! Bytes arrive in arbitrary pieces from a pipe, a file or a child process. The splitter
//! follows the JPEG marker structure rather than searching for an end-of-image pattern,
//! so an embedded thumbnail (whose own end marker sits inside an APP segment) does not
//! end a frame early. It tells apart:
//!
//! * bytes between frames (garbage), skipped and counted;
//! * frames cut short by the start of the next frame (truncated), dropped;
//! * frames whose structure breaks (corrupt), dropped, then the splitter resynchronises
//!   on the next start-of-image marker;
//! * frames over the size cap, dropped without buffering them whole.
//!
//! Scanning is incremental: each byte is examined about once however the input is cut.

/// Why the splitter dropped bytes that looked like a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// A new start-of-image (or the end of input) came before the end-of-image marker.
    Truncated,
    /// The marker structure is broken.
    Corrupt,
    /// The frame grew past the size cap.
    TooLarge,
}

impl DropReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::Corrupt => "corrupt",
            DropReason::TooLarge => "over the size cap",
        }
    }
}

/// What the splitter found, reported through the callback of [`MjpegSplitter::feed`].
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// A structurally complete JPEG, from SOI through EOI.
    Frame(&'a [u8]),
    /// A frame that was dropped, with its length in the stream: from its start-of-image
    /// marker up to the next one (or the end of input). Bytes skipped while looking for
    /// the next frame belong to the drop, so every byte of the stream is in exactly one
    /// piece.
    Dropped(DropReason, usize),
    /// Bytes outside any frame.
    Garbage(usize),
}

/// Default cap on one frame: larger ones are dropped.
pub const DEFAULT_MAX_FRAME: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone, Copy)]
enum State {
    /// Looking for a start-of-image marker from `buf[pos]` on.
    Seek,
    /// Inside a frame starting at `start`, expecting a marker at `pos`.
    Marker,
    /// Inside entropy-coded data of a frame starting at `start`, scanning from `pos`.
    Entropy,
    /// Discarding the dropped frame starting at `start` until the next start-of-image,
    /// searched for from `pos` on (which may lie beyond the bytes read so far).
    Skip(DropReason),
}

/// Incremental MJPEG stream splitter; see the module documentation.
pub struct MjpegSplitter {
    buf: Vec<u8>,
    state: State,
    start: usize,
    pos: usize,
    max_frame: usize,
    /// Bytes of the frame being skipped that are already gone from `buf`.
    skipped: usize,
}

impl Default for MjpegSplitter {
    fn default() -> Self {
        MjpegSplitter::new(DEFAULT_MAX_FRAME)
    }
}

impl MjpegSplitter {
    /// A splitter that drops frames longer than `max_frame` bytes.
    pub fn new(max_frame: usize) -> MjpegSplitter {
        MjpegSplitter {
            buf: Vec::with_capacity(64 * 1024),
            state: State::Seek,
            start: 0,
            pos: 0,
            max_frame: max_frame.max(4),
            skipped: 0,
        }
    }

    /// Adds `data` and reports every frame, drop and garbage run it completes, in order.
    pub fn feed(&mut self, data: &[u8], mut each: impl FnMut(Piece<'_>)) {
        self.buf.extend_from_slice(data);
        self.scan(&mut each);
        self.compact();
    }

    /// Ends the input: a frame still open is reported as truncated.
    pub fn finish(&mut self, mut each: impl FnMut(Piece<'_>)) {
        match self.state {
            State::Marker | State::Entropy => each(Piece::Dropped(
                DropReason::Truncated,
                self.buf.len() - self.start,
            )),
            State::Skip(reason) => each(Piece::Dropped(
                reason,
                self.skipped + self.buf.len() - self.start,
            )),
            State::Seek => {
                let rest = self.buf.len() - self.start;
                if rest > 0 {
                    each(Piece::Garbage(rest));
                }
            }
        }
        self.buf.clear();
        self.skipped = 0;
        self.state = State::Seek;
        self.start = 0;
        self.pos = 0;
    }

    fn scan(&mut self, each: &mut impl FnMut(Piece<'_>)) {
        loop {
            let progressed = match self.state {
                State::Seek => self.seek(each),
                State::Skip(reason) => self.skip(reason, each),
                State::Marker => self.marker(each),
                State::Entropy => self.entropy(),
            };
            if !progressed {
                return;
            }
        }
    }

    /// Position of the next `FF D8` at or after `from`, if the buffer has it.
    fn find_soi(&self, from: usize) -> Option<usize> {
        let hay = self.buf.get(from..)?;
        hay.windows(2)
            .position(|w| w == [0xFF, 0xD8])
            .map(|i| from + i)
    }

    fn seek(&mut self, each: &mut impl FnMut(Piece<'_>)) -> bool {
        match self.find_soi(self.pos) {
            Some(soi) => {
                if soi > self.start {
                    each(Piece::Garbage(soi - self.start));
                }
                self.begin_frame(soi);
                true
            }
            None => {
                // Keep a trailing 0xFF: it may be the first half of the next SOI.
                let keep_from = self.buf.len().saturating_sub(1).max(self.start);
                if keep_from > self.start {
                    each(Piece::Garbage(keep_from - self.start));
                }
                self.start = keep_from;
                self.pos = keep_from;
                false
            }
        }
    }

    fn skip(&mut self, reason: DropReason, each: &mut impl FnMut(Piece<'_>)) -> bool {
        if self.pos > self.buf.len() {
            // Still inside a segment of the dropped frame: forget what was read of it.
            self.skipped += self.buf.len() - self.start;
            self.start = self.buf.len();
            return false;
        }
        match self.find_soi(self.pos) {
            Some(soi) => {
                each(Piece::Dropped(reason, self.skipped + (soi - self.start)));
                self.skipped = 0;
                self.begin_frame(soi);
                true
            }
            None => {
                let keep_from = self.buf.len().saturating_sub(1).max(self.start);
                self.skipped += keep_from - self.start;
                self.start = keep_from;
                self.pos = self.pos.max(keep_from);
                false
            }
        }
    }

    fn begin_frame(&mut self, soi: usize) {
        self.start = soi;
        self.pos = soi + 2;
        self.state = State::Marker;
    }

    /// Drops the frame begun at `start`. The search for the next SOI starts right after
    /// this one's: a frame cut short inside a header segment has its successor's start
    /// somewhere in what looked like that segment. Bytes skipped on the way belong to the
    /// drop, not to garbage; it is reported when the next frame starts.
    fn drop_frame(&mut self, reason: DropReason) {
        self.pos = self.start + 2;
        self.state = State::Skip(reason);
    }

    /// Drops the frame when it would grow past the cap at `upto`. The next SOI is searched
    /// for from `upto` on, however the input was cut into reads.
    fn too_large(&mut self, upto: usize) -> bool {
        if upto - self.start <= self.max_frame {
            return false;
        }
        self.pos = upto;
        self.state = State::Skip(DropReason::TooLarge);
        true
    }

    fn marker(&mut self, each: &mut impl FnMut(Piece<'_>)) -> bool {
        if self.too_large(self.pos) {
            return true;
        }
        let Some(&first) = self.buf.get(self.pos) else {
            return false;
        };
        if first != 0xFF {
            self.drop_frame(DropReason::Corrupt);
            return true;
        }
        // Fill bytes: any number of 0xFF may precede a marker code.
        let mut at = self.pos;
        while self.buf.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        let Some(&code) = self.buf.get(at + 1) else {
            return false;
        };
        match code {
            0xD8 => {
                self.pos = at;
                each(Piece::Dropped(DropReason::Truncated, at - self.start));
                self.begin_frame(at);
            }
            0xD9 => {
                let end = at + 2;
                if self.too_large(end) {
                    return true;
                }
                each(Piece::Frame(&self.buf[self.start..end]));
                self.start = end;
                self.pos = end;
                self.state = State::Seek;
            }
            0x01 | 0xD0..=0xD7 => self.pos = at + 2,
            0x00 => self.drop_frame(DropReason::Corrupt),
            _ => {
                let (Some(&hi), Some(&lo)) = (self.buf.get(at + 2), self.buf.get(at + 3)) else {
                    return false;
                };
                let len = u16::from_be_bytes([hi, lo]) as usize;
                if len < 2 {
                    self.drop_frame(DropReason::Corrupt);
                    return true;
                }
                self.pos = at + 2 + len;
                if code == 0xDA {
                    self.state = State::Entropy;
                }
            }
        }
        true
    }

    fn entropy(&mut self) -> bool {
        loop {
            if self.too_large(self.pos) {
                return true;
            }
            let Some(rest) = self.buf.get(self.pos..) else {
                return false;
            };
            let Some(ff) = rest.iter().position(|&b| b == 0xFF) else {
                self.pos = self.buf.len();
                return false;
            };
            let at = self.pos + ff;
            let Some(&code) = self.buf.get(at + 1) else {
                self.pos = at;
                return false;
            };
            match code {
                // Stuffed zero, restart markers and fill bytes stay in the scan data.
                0x00 | 0xD0..=0xD7 => self.pos = at + 2,
                0xFF => self.pos = at + 1,
                _ => {
                    self.pos = at;
                    self.state = State::Marker;
                    return true;
                }
            }
        }
    }

    /// Forgets bytes before the current frame so the buffer stays small.
    fn compact(&mut self) {
        if self.start == 0 {
            return;
        }
        self.buf.drain(..self.start);
        self.pos -= self.start;
        self.start = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small but structurally real JPEG: SOI, APP0-like segment, SOS, scan data, EOI.
    fn jpeg(fill: u8, scan_len: usize) -> Vec<u8> {
        let mut v = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x06, b'J', b'F', b'I', b'F'];
        v.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x04, 0x01, 0x02]);
        for i in 0..scan_len {
            v.push(fill.wrapping_add(i as u8) & 0x7F);
            if i % 50 == 0 {
                v.extend_from_slice(&[0xFF, 0x00]); // stuffed byte
            }
        }
        v.extend_from_slice(&[0xFF, 0xD9]);
        v
    }

    #[derive(Debug, Clone, PartialEq)]
    enum Got {
        F(Vec<u8>),
        D(DropReason),
        G(usize),
    }

    fn run(chunks: &[&[u8]], max: usize) -> Vec<Got> {
        let mut s = MjpegSplitter::new(max);
        let mut out = Vec::new();
        let mut push = |p: Piece<'_>| {
            out.push(match p {
                Piece::Frame(f) => Got::F(f.to_vec()),
                Piece::Dropped(r, _) => Got::D(r),
                Piece::Garbage(n) => Got::G(n),
            })
        };
        for c in chunks {
            s.feed(c, &mut push);
        }
        s.finish(&mut push);
        out
    }

    #[test]
    fn splits_whole_and_byte_by_byte() {
        let a = jpeg(1, 300);
        let b = jpeg(2, 10);
        let mut all = a.clone();
        all.extend_from_slice(&b);
        assert_eq!(
            run(&[&all], 1 << 20),
            vec![Got::F(a.clone()), Got::F(b.clone())]
        );
        let bytes: Vec<&[u8]> = all.chunks(1).collect();
        assert_eq!(run(&bytes, 1 << 20), vec![Got::F(a), Got::F(b)]);
    }

    #[test]
    fn garbage_truncation_and_corruption() {
        let a = jpeg(1, 100);
        let mut input = b"hello garbage".to_vec();
        input.extend_from_slice(&a[..60]); // truncated by the next SOI
        input.extend_from_slice(&a);
        let mut corrupt = a.clone();
        corrupt[10] = 0x12; // where the SOS marker should be
        input.extend_from_slice(&corrupt);
        input.extend_from_slice(&a);
        input.extend_from_slice(&a[..30]); // truncated by end of input
        let got = run(&[&input], 1 << 20);
        assert_eq!(
            got,
            vec![
                Got::G(13),
                Got::D(DropReason::Truncated),
                Got::F(a.clone()),
                Got::D(DropReason::Corrupt),
                Got::F(a.clone()),
                Got::D(DropReason::Truncated),
            ]
        );
    }

    #[test]
    fn frame_cut_inside_a_header_segment_does_not_hide_the_next() {
        let a = jpeg(1, 100);
        // Cut inside the APP0 segment: its length swallows the start of the next frame.
        let mut input = a[..7].to_vec();
        input.extend_from_slice(&a);
        input.extend_from_slice(&a);
        let got = run(&[&input], 1 << 20);
        assert_eq!(got.first(), Some(&Got::D(DropReason::Corrupt)), "{got:?}");
        assert_eq!(got[1..], [Got::F(a.clone()), Got::F(a)]);
    }

    #[test]
    fn thumbnail_inside_app_segment_does_not_end_frame() {
        let thumb = jpeg(9, 5);
        let mut v = vec![0xFF, 0xD8, 0xFF, 0xE1];
        v.extend_from_slice(&((thumb.len() + 2) as u16).to_be_bytes());
        v.extend_from_slice(&thumb);
        v.extend_from_slice(&jpeg(3, 40)[2..]);
        assert_eq!(run(&[&v], 1 << 20), vec![Got::F(v.clone())]);
    }

    /// The pieces of `input` read in `chunk`-byte reads, neighbouring garbage runs merged,
    /// and the number of stream bytes they cover.
    fn pieces(input: &[u8], chunk: usize, max: usize) -> (Vec<Got>, usize) {
        let mut s = MjpegSplitter::new(max);
        let mut out = Vec::new();
        let mut covered = 0;
        let mut push = |p: Piece<'_>| match p {
            Piece::Frame(f) => {
                covered += f.len();
                out.push(Got::F(f.to_vec()));
            }
            Piece::Dropped(r, n) => {
                covered += n;
                out.push(Got::D(r));
            }
            Piece::Garbage(n) => {
                covered += n;
                match out.last_mut() {
                    Some(Got::G(m)) => *m += n,
                    _ => out.push(Got::G(n)),
                }
            }
        };
        for c in input.chunks(chunk) {
            s.feed(c, &mut push);
        }
        s.finish(&mut push);
        (out, covered)
    }

    #[test]
    fn every_byte_is_in_exactly_one_piece_however_reads_are_cut() {
        let a = jpeg(1, 100);
        let mut corrupt = a.clone();
        corrupt[10] = 0x12;
        let mut input = b"junk".to_vec();
        for part in [
            &a[..7],  // cut inside a header segment that swallows the next SOI
            &a,       //
            &a[..60], // cut by the next SOI
            &corrupt, //
            b"\xFF\xFF between",
            &jpeg(2, 3000), // over the cap
            &a,
            &a[..30], // cut by the end of input
        ] {
            input.extend_from_slice(part);
        }
        let (whole, covered) = pieces(&input, input.len(), 1000);
        assert_eq!(covered, input.len(), "{whole:?}");
        assert_eq!(whole.iter().filter(|g| matches!(g, Got::F(_))).count(), 2);
        for chunk in [1, 2, 3, 7, 64, 999] {
            assert_eq!(
                pieces(&input, chunk, 1000),
                (whole.clone(), covered),
                "{chunk}"
            );
        }
    }

    #[test]
    fn a_frame_over_the_cap_hides_what_its_segments_hold_however_reads_are_cut() {
        // An embedded thumbnail that fits the cap, in a segment that does not: the
        // thumbnail is part of the dropped frame, not a frame of its own.
        let thumb = jpeg(9, 5);
        let mut big = vec![0xFF, 0xD8, 0xFF, 0xE1];
        big.extend_from_slice(&((thumb.len() + 2 + 200) as u16).to_be_bytes());
        big.extend_from_slice(&thumb);
        big.extend_from_slice(&[0; 200]);
        big.extend_from_slice(&jpeg(3, 40)[2..]);
        let next = jpeg(4, 10);
        let mut input = big.clone();
        input.extend_from_slice(&next);
        let want = vec![Got::D(DropReason::TooLarge), Got::F(next)];
        for chunk in [1, 5, 10, input.len()] {
            assert_eq!(
                pieces(&input, chunk, 100),
                (want.clone(), input.len()),
                "{chunk}"
            );
        }
    }

    #[test]
    fn no_frame_is_longer_than_the_cap() {
        let a = jpeg(1, 100);
        assert_eq!(run(&[&a], a.len()), vec![Got::F(a.clone())]);
        for max in [a.len() - 1, a.len() - 2] {
            assert_eq!(run(&[&a], max), vec![Got::D(DropReason::TooLarge)], "{max}");
        }
    }

    #[test]
    fn oversized_frames_are_dropped_in_pieces() {
        let big = jpeg(1, 5000);
        let small = jpeg(2, 20);
        let mut input = big.clone();
        input.extend_from_slice(&small);
        let chunks: Vec<&[u8]> = input.chunks(333).collect();
        assert_eq!(
            run(&chunks, 1000),
            vec![Got::D(DropReason::TooLarge), Got::F(small)]
        );
    }
}
