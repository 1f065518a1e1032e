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
    /// A frame that was dropped, with the number of its bytes seen.
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
    /// Discarding an oversized frame until the next start-of-image.
    Skip,
}

/// Incremental MJPEG stream splitter; see the module documentation.
pub struct MjpegSplitter {
    buf: Vec<u8>,
    state: State,
    start: usize,
    pos: usize,
    max_frame: usize,
    skipped: usize,
    /// Set after a drop: bytes up to the next SOI are part of it, not garbage.
    quiet: bool,
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
            quiet: false,
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
            State::Skip => each(Piece::Dropped(
                DropReason::TooLarge,
                self.skipped + self.buf.len() - self.start,
            )),
            State::Seek => {
                let rest = self.buf.len() - self.start;
                if rest > 0 && !self.quiet {
                    each(Piece::Garbage(rest));
                }
            }
        }
        self.buf.clear();
        self.quiet = false;
        self.skipped = 0;
        self.state = State::Seek;
        self.start = 0;
        self.pos = 0;
    }

    fn scan(&mut self, each: &mut impl FnMut(Piece<'_>)) {
        loop {
            let progressed = match self.state {
                State::Seek => self.seek(each),
                State::Skip => self.skip(each),
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
                if soi > self.start && !self.quiet {
                    each(Piece::Garbage(soi - self.start));
                }
                self.quiet = false;
                self.begin_frame(soi);
                true
            }
            None => {
                // Keep a trailing 0xFF: it may be the first half of the next SOI.
                let keep_from = self.buf.len().saturating_sub(1).max(self.start);
                if keep_from > self.start && !self.quiet {
                    each(Piece::Garbage(keep_from - self.start));
                }
                self.start = keep_from;
                self.pos = keep_from;
                false
            }
        }
    }

    fn skip(&mut self, each: &mut impl FnMut(Piece<'_>)) -> bool {
        match self.find_soi(self.pos) {
            Some(soi) => {
                each(Piece::Dropped(
                    DropReason::TooLarge,
                    self.skipped + (soi - self.start),
                ));
                self.skipped = 0;
                self.begin_frame(soi);
                true
            }
            None => {
                let keep_from = self.buf.len().saturating_sub(1).max(self.start);
                self.skipped += keep_from - self.start;
                self.start = keep_from;
                self.pos = keep_from;
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
    /// drop, not to garbage.
    fn drop_frame(&mut self, reason: DropReason, each: &mut impl FnMut(Piece<'_>)) {
        each(Piece::Dropped(
            reason,
            self.pos.min(self.buf.len()) - self.start,
        ));
        let resume = (self.start + 2).min(self.buf.len());
        self.start = resume;
        self.pos = resume;
        self.state = State::Seek;
        self.quiet = true;
    }

    /// Switches to skipping when the frame would grow past the cap at `upto`.
    fn too_large(&mut self, upto: usize) -> bool {
        if upto - self.start <= self.max_frame {
            return false;
        }
        let end = self.buf.len().min(upto);
        self.skipped = end - self.start;
        self.start = end;
        self.pos = end;
        self.state = State::Skip;
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
            self.drop_frame(DropReason::Corrupt, each);
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
                each(Piece::Frame(&self.buf[self.start..end]));
                self.start = end;
                self.pos = end;
                self.state = State::Seek;
            }
            0x01 | 0xD0..=0xD7 => self.pos = at + 2,
            0x00 => {
                self.pos = at;
                self.drop_frame(DropReason::Corrupt, each);
            }
            _ => {
                let (Some(&hi), Some(&lo)) = (self.buf.get(at + 2), self.buf.get(at + 3)) else {
                    return false;
                };
                let len = u16::from_be_bytes([hi, lo]) as usize;
                if len < 2 {
                    self.pos = at;
                    self.drop_frame(DropReason::Corrupt, each);
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

    #[derive(Debug, PartialEq)]
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
