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
//! Scanning is incremental: each byte is examined about once however the input is cut,
//! and inside entropy-coded data and between frames the bytes are tested four words at
//! a time for a 0xFF (see [`Words::find_ff`] and [`marked_block`]). In entropy-coded
//! data even the 0xFF bytes of stuffed zeros are passed over a word at a time; only
//! words holding a restart marker, a fill byte or a marker are looked at byte by byte.
//! Input can be read straight into the splitter's buffer ([`MjpegSplitter::read_from`]),
//! and what is kept of an unfinished frame is moved to the buffer's start only when the
//! room behind it runs short, so a byte is copied in user space about once on its way
//! to a frame: when the frame is published.
//!
//! Looking for a frame inside a corrupt one examines its bytes again; how much of that is
//! done is bounded by the size of the corrupt stretch (see [`MjpegSplitter::drop_frame`]),
//! so input made of frames nested in frames costs time in proportion to its length.

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
    /// marker to its end-of-image marker or, when it broke off, to the next start-of-image
    /// marker (or the end of input). Bytes skipped while looking for the next frame belong
    /// to the drop, so every byte of the stream is in exactly one piece.
    Dropped(DropReason, usize),
    /// Bytes outside any frame.
    Garbage(usize),
}

/// Default cap on one frame: larger ones are dropped.
pub const DEFAULT_MAX_FRAME: usize = 8 * 1024 * 1024;

/// Bytes that frames starting inside a corrupt stretch may examine again, per byte of
/// the stretch, before the search for a frame skips to its end ...
const RESCAN_PER_BYTE: u64 = 2;
/// ... plus this many in any case.
const RESCAN_ALLOWANCE: u64 = 64 * 1024;

/// Room [`MjpegSplitter::read_from`] offers one read.
pub const READ_SIZE: usize = 64 * 1024;

/// The buffer's first size: a few reads, so that what is kept of an unfinished frame is
/// moved to its start only every few reads.
const FIRST_BUFFER: usize = 4 * READ_SIZE;

#[derive(Debug, Clone, Copy)]
enum State {
    /// Looking for a start-of-image marker from `buf[pos]` on.
    Seek,
    /// Inside a frame, expecting a marker at `pos`. The frame's bytes are kept from
    /// `start` on: all of them, unless it is over the size cap.
    Marker,
    /// Inside entropy-coded data of a frame, scanning from `pos`.
    Entropy,
    /// Discarding the rest of a dropped frame until the next start-of-image, searched for
    /// from `pos` on.
    Skip(DropReason),
}

/// Incremental MJPEG stream splitter; see the module documentation.
pub struct MjpegSplitter {
    /// The buffer, in aligned chunks of words (for [`scan_entropy`] and the copies of
    /// frames); all of it is initialised, the stream's bytes are its first `end` bytes.
    mem: Vec<Chunk>,
    /// End of the stream's bytes in `mem`.
    end: usize,
    state: State,
    start: usize,
    pos: usize,
    max_frame: usize,
    /// Bytes of the current frame (or drop) that are already gone from `buf`.
    skipped: usize,
    /// Position in the stream of `buf[0]`.
    offset: u64,
    /// Position in the stream up to which frames dropped as corrupt have been parsed.
    corrupt_end: u64,
    /// How many more bytes before `corrupt_end` frames dropped as corrupt may parse.
    rescan_budget: u64,
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
            mem: Vec::new(),
            end: 0,
            state: State::Seek,
            start: 0,
            pos: 0,
            max_frame: max_frame.max(4),
            skipped: 0,
            offset: 0,
            corrupt_end: 0,
            rescan_budget: 0,
        }
    }

    /// Adds `data` and reports every frame, drop and garbage run it completes, in order.
    pub fn feed(&mut self, data: &[u8], mut each: impl FnMut(Piece<'_>)) {
        self.make_room(data.len(), 0);
        let end = self.end;
        self.bytes_mut()[end..end + data.len()].copy_from_slice(data);
        self.end += data.len();
        self.scan(&mut each);
        self.compact();
    }

    /// Reads once from `input` into the splitter's buffer, at most [`READ_SIZE`] bytes,
    /// and reports what they complete as [`MjpegSplitter::feed`] does. Returns what
    /// `read` returned: `Ok(0)` at the end of the input.
    pub fn read_from<R: std::io::Read + ?Sized>(
        &mut self,
        input: &mut R,
        mut each: impl FnMut(Piece<'_>),
    ) -> std::io::Result<usize> {
        self.make_room(READ_SIZE, FIRST_BUFFER);
        let end = self.end;
        let n = input.read(&mut self.bytes_mut()[end..end + READ_SIZE])?;
        if n > 0 {
            self.end += n;
            self.scan(&mut each);
            self.compact();
        }
        Ok(n)
    }

    /// Bytes held between calls: at most the size cap and the three bytes of an
    /// unfinished marker, however the stream is made.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Bytes of memory the buffer takes: at most twice the size cap and the largest read
    /// (for [`MjpegSplitter::read_from`], [`READ_SIZE`]), or the buffer's first size when
    /// that is more, however the stream is made.
    pub fn memory(&self) -> usize {
        self.mem.len() * CHUNK
    }

    /// Ends the input: a frame still open is reported as truncated.
    pub fn finish(&mut self, mut each: impl FnMut(Piece<'_>)) {
        let end = self.end;
        match self.state {
            State::Marker | State::Entropy => {
                let len = self.frame_len(end);
                each(Piece::Dropped(self.cut_short(len), len));
            }
            State::Skip(reason) => each(Piece::Dropped(reason, self.frame_len(end))),
            State::Seek => {
                if end > self.start {
                    each(Piece::Garbage(end - self.start));
                }
            }
        }
        self.offset += end as u64;
        self.end = 0;
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

    /// Length of the current frame (or drop) up to `upto`, counting its bytes that are
    /// already gone from the buffer.
    fn frame_len(&self, upto: usize) -> usize {
        self.skipped + upto - self.start
    }

    /// Why a frame of `len` bytes that ended before its end-of-image marker is dropped.
    fn cut_short(&self, len: usize) -> DropReason {
        if len > self.max_frame {
            DropReason::TooLarge
        } else {
            DropReason::Truncated
        }
    }

    /// The stream's bytes in the buffer.
    fn data(&self) -> &[u8] {
        &self.bytes()[..self.end]
    }

    /// The whole buffer as bytes.
    fn bytes(&self) -> &[u8] {
        bytemuck::cast_slice(&self.mem)
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        bytemuck::cast_slice_mut(&mut self.mem)
    }

    /// Position of the next `FF D8` at or after `from`, if the buffer has it.
    fn find_soi(&self, from: usize) -> Option<usize> {
        let data = self.data();
        let words = Words::new(data);
        let mut at = from;
        loop {
            let ff = words.find_ff(data, at)?;
            if *data.get(ff + 1)? == 0xD8 {
                return Some(ff);
            }
            at = ff + 1;
        }
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
                let keep_from = self.end.saturating_sub(1).max(self.start);
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
        match self.find_soi(self.pos) {
            Some(soi) => {
                each(Piece::Dropped(reason, self.frame_len(soi)));
                self.begin_frame(soi);
                true
            }
            None => {
                let keep_from = self.end.saturating_sub(1).max(self.start);
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
        self.skipped = 0;
        self.state = State::Marker;
    }

    /// Drops the frame whose structure breaks at `at`, and looks for the next SOI. The
    /// search starts right after this frame's own SOI: a frame cut short inside a header
    /// segment has its successor's start somewhere in what looked like that segment. A
    /// frame already over the size cap is no longer buffered, so for it the search starts
    /// at `at`; whether it is over the cap depends only on the stream, never on how it was
    /// cut into reads. Bytes skipped on the way belong to the drop, not to garbage; it is
    /// reported when the next frame starts.
    ///
    /// Frames found that way can be corrupt too, and break where the first one did or
    /// further on: each search from right after an SOI then parses the same stretch again,
    /// which input made of frames nested in frames turns into time growing with the
    /// square of its length. So the bytes that frames starting inside a corrupt stretch
    /// parse again are counted, and once they are more than twice the stretch (and some
    /// allowance), a frame that breaks in it is dropped together with the rest of the
    /// stretch, and the search goes on from its end. That depends on the stream only.
    fn drop_frame(&mut self, at: usize) {
        if self.frame_len(at) > self.max_frame {
            self.pos = at;
            self.state = State::Skip(DropReason::TooLarge);
            return;
        }
        self.state = State::Skip(DropReason::Corrupt);
        self.pos = self.start + 2;
        let start = self.offset + self.start as u64;
        let end = self.offset + at as u64;
        if start >= self.corrupt_end {
            // A new corrupt stretch.
            self.rescan_budget = RESCAN_ALLOWANCE + RESCAN_PER_BYTE * (end - start);
            self.corrupt_end = end;
            return;
        }
        let again = end.min(self.corrupt_end) - start;
        if end > self.corrupt_end {
            let longer = end - self.corrupt_end;
            self.rescan_budget = self.rescan_budget.saturating_add(RESCAN_PER_BYTE * longer);
            self.corrupt_end = end;
        }
        if again <= self.rescan_budget {
            self.rescan_budget -= again;
        } else {
            self.rescan_budget = 0;
            // Within the buffer: the parse that reached `corrupt_end` had those bytes, and
            // the buffer keeps everything from this frame's start on.
            let resume = usize::try_from(self.corrupt_end - self.offset).unwrap_or(usize::MAX);
            self.pos = resume.clamp(self.start + 2, self.end);
        }
    }

    fn marker(&mut self, each: &mut impl FnMut(Piece<'_>)) -> bool {
        let Some(&first) = self.data().get(self.pos) else {
            return false;
        };
        if first != 0xFF {
            self.drop_frame(self.pos);
            return true;
        }
        // Fill bytes: any number of 0xFF may precede a marker code. They are consumed as
        // they come, so that a run of them cannot grow the buffer.
        while self.data().get(self.pos + 1) == Some(&0xFF) {
            self.pos += 1;
        }
        let at = self.pos;
        let Some(&code) = self.data().get(at + 1) else {
            return false;
        };
        match code {
            0xD8 => {
                let len = self.frame_len(at);
                each(Piece::Dropped(self.cut_short(len), len));
                self.begin_frame(at);
            }
            0xD9 => {
                let end = at + 2;
                let len = self.frame_len(end);
                if len > self.max_frame {
                    each(Piece::Dropped(DropReason::TooLarge, len));
                } else {
                    each(Piece::Frame(&self.bytes()[self.start..end]));
                }
                self.start = end;
                self.pos = end;
                self.skipped = 0;
                self.state = State::Seek;
            }
            0x01 | 0xD0..=0xD7 => self.pos = at + 2,
            0x00 => self.drop_frame(at),
            _ => {
                let (Some(&hi), Some(&lo)) = (self.data().get(at + 2), self.data().get(at + 3))
                else {
                    return false;
                };
                let len = u16::from_be_bytes([hi, lo]) as usize;
                if len < 2 {
                    self.drop_frame(at);
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
        match scan_entropy(self.data(), self.pos) {
            Ok(marker) => {
                self.pos = marker;
                self.state = State::Marker;
                true
            }
            Err(resume) => {
                self.pos = resume;
                false
            }
        }
    }

    /// Forgets the bytes that are no longer needed: those before the current frame, and
    /// in a frame over the size cap (which will be dropped), those already parsed. Their
    /// room is taken back by [`MjpegSplitter::make_room`].
    fn compact(&mut self) {
        if matches!(self.state, State::Marker | State::Entropy)
            && self.frame_len(self.pos) > self.max_frame
        {
            let parsed = self.pos.min(self.end);
            self.skipped += parsed - self.start;
            self.start = parsed;
        }
    }

    /// Makes room for `more` bytes after the stream's: when there is not enough, the
    /// bytes still needed move to the buffer's start. The buffer grows to four times what
    /// it must then hold (within twice the size cap and a read), so that what moves is at
    /// most about a third of what is read in between, and at least to `first`.
    fn make_room(&mut self, more: usize, first: usize) {
        if self.memory() - self.end >= more {
            return;
        }
        // The bytes move by whole chunks, so that they keep their place in a word (the
        // first kept byte ends up within the first chunk).
        let moved = self.start / CHUNK * CHUNK;
        if moved > 0 {
            move_down(&mut self.mem, moved / CHUNK..self.end.div_ceil(CHUNK));
            self.end -= moved;
            self.offset += moved as u64;
            self.pos -= moved;
            self.start -= moved;
        }
        let need = (self.end + more).div_ceil(CHUNK) * CHUNK;
        let size = ((4 * need).min(2 * (self.max_frame + 3 + more)) / CHUNK * CHUNK)
            .max(need)
            .max(first);
        if size > self.memory() {
            self.mem.resize(size / CHUNK, [0; CHUNK_WORDS]);
        }
    }
}

/// Words in a chunk of the splitter's buffer.
const CHUNK_WORDS: usize = 8;
/// What the splitter's buffer is made of: aligned words, moved eight at a time.
type Chunk = [u32; CHUNK_WORDS];
/// Bytes in a [`Chunk`].
const CHUNK: usize = 4 * CHUNK_WORDS;

/// Moves the chunks `from` of `mem` to its start, eight words at a time through
/// registers. (`copy_within` would call the C library's `memmove`, which on ARMv6 moves
/// a byte at a time.)
fn move_down(mem: &mut [Chunk], from: std::ops::Range<usize>) {
    let by = from.start;
    for at in from {
        // Keeps the compiler from making this loop a call of `memmove` again.
        std::hint::black_box(());
        let [a, b, c, d, e, f, g, h] = mem[at];
        mem[at - by] = [a, b, c, d, e, f, g, h];
    }
}

/// Where the search for a marker in entropy-coded data stopped: `Ok` with the position
/// of the 0xFF that starts a marker, `Err` with where to go on once more bytes are in.
///
/// Inside the entropy-coded data a 0xFF is followed by a stuffed zero, a restart marker
/// (which belongs to the scan data) or another 0xFF (a fill byte); anything else
/// starts a marker, which ends the scan. So the search is for the first 0xFF followed
/// by anything else, and every 0xFF can be judged on its own by the byte after it.
///
/// The bytes up to the first whole aligned word at or after `from` are looked at one
/// by one, then blocks of [`BLOCK_WORDS`] words (see [`marked_block`]): only a block
/// that holds more than stuffed zeros is looked at byte by byte; then the few bytes
/// left one by one.
fn scan_entropy(data: &[u8], from: usize) -> Result<usize, usize> {
    let Words { base, words } = Words::new(data);
    let first = from.saturating_sub(base).div_ceil(4).min(words.len());
    let words_from = base + 4 * first;
    if from < words_from {
        if let Some(end) = scan_bytes(data, from, words_from) {
            return end;
        }
    }
    let words = &words[first..];
    let whole = words.len() / BLOCK_WORDS * BLOCK_WORDS;
    let blocks: &[WordBlock] = bytemuck::cast_slice(&words[..whole]);
    let mut next = 0;
    while next < blocks.len() {
        let at = next + marked_block(&blocks[next..]);
        if at == blocks.len() {
            break;
        }
        let block_at = words_from + 4 * BLOCK_WORDS * at;
        if let Some(end) = scan_bytes(data, block_at, block_at + 4 * BLOCK_WORDS) {
            return end;
        }
        next = at + 1;
    }
    let rest = (words_from + 4 * whole).max(from);
    scan_bytes(data, rest, data.len()).unwrap_or(Err(data.len().max(from)))
}

/// The first of `blocks` that holds a 0xFF not followed by a stuffed zero (or, in the
/// last block, a 0xFF in its last byte), or `blocks.len()`.
///
/// A block with no 0xFF costs its test in [`quiet_blocks`]: three operations a word
/// (see [`ff_somewhere`]) and one branch for the block. In one that has some, each word
/// that has some is tested at once for holding only stuffed zeros ([`only_stuffed`]),
/// by far the most common case; a block that holds anything else (a restart marker, a
/// fill byte, a marker) is left to be looked at byte by byte.
#[inline(never)]
fn marked_block(blocks: &[WordBlock]) -> usize {
    let mut from = 0;
    loop {
        let at = from + quiet_blocks(&blocks[from..]);
        let Some(block) = blocks.get(at) else {
            return blocks.len();
        };
        let [a, b, c, d] = block.map(u32::from_le);
        // The next block's first word holds the byte after this block's last. After
        // the last block, a word that says nothing for sure.
        let next = blocks.get(at + 1).map_or(0xFF, |n| u32::from_le(n[0]));
        if !(only_stuffed(a, b)
            && only_stuffed(b, c)
            && only_stuffed(c, d)
            && only_stuffed(d, next))
        {
            return at;
        }
        from = at + 1;
    }
}

/// How many blocks at the start of `blocks` hold no 0xFF. A loop of its own, kept out
/// of line: on an ARM1176 each block costs a load-multiple, three operations a word,
/// one test and the loop's count and branch (17 instructions for 16 bytes), with
/// nothing else held in registers.
#[inline(never)]
fn quiet_blocks(blocks: &[WordBlock]) -> usize {
    let mut rest = blocks.iter();
    while let Some(block) = rest.next() {
        let [a, b, c, d] = block.map(u32::from_le);
        if (ff_somewhere(a) | ff_somewhere(b) | ff_somewhere(c) | ff_somewhere(d)) & HIGH_BITS != 0
        {
            return blocks.len() - rest.len() - 1;
        }
    }
    blocks.len()
}

/// Whether every 0xFF byte of `word` (none at all, too) is followed by a stuffed zero;
/// `next` is the word after it in memory. Both are read as little-endian, the first
/// byte in memory lowest.
///
/// Each byte's successor is moved into its place (the word shifted down a byte, the
/// next word's first byte on top), and the zero bytes of that are found as
/// `(x - 0x01..) & !x & 0x80..` finds them: exactly at every place where `word` holds
/// a 0xFF, as a borrow into that place would have to come from the byte below it, the
/// 0xFF itself. The 0xFF flags of `word` ([`ff_somewhere`]) are exact up to the first
/// 0xFF that is not followed by a zero; a flag above that one may be a carry's, but
/// then the answer is no anyway.
#[inline(always)]
fn only_stuffed(word: u32, next: u32) -> bool {
    let flags = ff_somewhere(word) & HIGH_BITS;
    if flags == 0 {
        return true;
    }
    let after = (word >> 8) | (next << 24);
    let zero = after.wrapping_sub(LOW_BITS) & !after;
    flags & !zero == 0
}

/// [`scan_entropy`] a byte at a time over `data[from..to]`: `None` when no marker
/// starts there.
#[cold]
#[inline(never)]
fn scan_bytes(data: &[u8], from: usize, to: usize) -> Option<Result<usize, usize>> {
    let to = to.min(data.len());
    for at in from..to {
        if data[at] == 0xFF {
            match data.get(at + 1) {
                None => return Some(Err(at)),
                Some(0x00 | 0xD0..=0xD7 | 0xFF) => {}
                Some(_) => return Some(Ok(at)),
            }
        }
    }
    None
}

/// The low bit of every byte of a word.
const LOW_BITS: u32 = 0x0101_0101;
/// The high bit of every byte of a word.
const HIGH_BITS: u32 = 0x8080_8080;
/// Words tested together for a 0xFF byte, with one branch for all of them. (Entropy-coded
/// data holds a 0xFF every hundred bytes or so: in longer blocks, finding it costs more
/// than the branches saved, and their words no longer fit an ARM1176's registers.)
const BLOCK_WORDS: usize = 4;
/// A block of [`BLOCK_WORDS`] words, loaded with one load-multiple on ARM.
type WordBlock = [u32; BLOCK_WORDS];

/// A byte buffer seen as the aligned words it holds, for searches a word at a time.
struct Words<'a> {
    /// Where the first whole aligned word starts.
    base: usize,
    words: &'a [u32],
}

impl<'a> Words<'a> {
    fn new(data: &'a [u8]) -> Words<'a> {
        let (head, words, _) = bytemuck::pod_align_to::<u8, u32>(data);
        Words {
            base: head.len(),
            words,
        }
    }

    /// Position of the first 0xFF of `data` (the buffer these words are of) at or after
    /// `from`. Whole words are tested four at a time; only a block of four that holds
    /// a 0xFF is looked at word by word.
    #[inline(always)]
    fn find_ff(&self, data: &[u8], from: usize) -> Option<usize> {
        let words = self.words;
        let base = self.base;
        let mut pos = from;
        loop {
            if pos < base || pos >= base + 4 * words.len() {
                return find_ff_bytewise(data, pos, base);
            }
            let mut at = (pos - base) / 4;
            // Flags in memory order, the first byte's lowest; in the first word, the
            // bytes before `pos` do not count.
            let mut found = u32::from_le(ff_somewhere(words[at]) & HIGH_BITS)
                & (u32::MAX << (8 * ((pos - base) % 4)));
            while found == 0 {
                at += 1;
                if at % BLOCK_WORDS == 0 {
                    at = skip_quiet_blocks(words, at);
                }
                let Some(&w) = words.get(at) else {
                    return find_ff_bytewise(data, base + 4 * words.len(), base);
                };
                found = u32::from_le(ff_somewhere(w) & HIGH_BITS);
            }
            // The first flagged byte is a 0xFF, unless a carry from a byte before it (on
            // a little-endian machine, one before `pos`) flagged it.
            let ff = base + 4 * at + (found.trailing_zeros() / 8) as usize;
            if data[ff] == 0xFF {
                return Some(ff);
            }
            pos = ff + 1;
        }
    }
}

/// [`Words::find_ff`] a byte at a time, for the bytes before the first whole word and
/// after the last; `base` is where the first whole word starts.
#[cold]
fn find_ff_bytewise(data: &[u8], from: usize, base: usize) -> Option<usize> {
    let end = if from < base { base } else { data.len() };
    match data.get(from..end)?.iter().position(|&b| b == 0xFF) {
        Some(i) => Some(from + i),
        None if end < data.len() => Words::new(data).find_ff(data, end),
        None => None,
    }
}

/// The first word of `words` from `at` on that holds a 0xFF byte, found a block of
/// [`BLOCK_WORDS`] words at a time, or the first of the last words, too few for a block.
#[inline(always)]
fn skip_quiet_blocks(words: &[u32], at: usize) -> usize {
    let rest = words.get(at..).unwrap_or_default();
    let whole = rest.len() / BLOCK_WORDS * BLOCK_WORDS;
    // Blocks as arrays, so that each is loaded with one load-multiple.
    let blocks: &[WordBlock] = bytemuck::cast_slice(&rest[..whole]);
    let flagged = blocks
        .iter()
        .position(|block| block.iter().fold(0, |any, &w| any | ff_somewhere(w)) & HIGH_BITS != 0);
    match flagged {
        // Some word of the block is flagged, since the block is.
        Some(i) => {
            let word = blocks[i].iter().position(|&w| ff_flags(w) != 0);
            at + i * BLOCK_WORDS + word.unwrap_or(0)
        }
        None => at + whole,
    }
}

/// The high bit of each byte of `word` (read as little-endian, so that the first byte in
/// memory is lowest) that is 0xFF, and perhaps of bytes after one that is: the first
/// flagged byte at or after a 0xFF is one, as far as the bytes before it are counted.
#[inline(always)]
fn ff_flags(word: u32) -> u32 {
    ff_somewhere(word) & HIGH_BITS
}

/// Nonzero high bits (under [`HIGH_BITS`]) when some byte of `w` is 0xFF: adding one to
/// every byte carries out of exactly those, leaving their high bit clear. A carry can
/// make a byte above a 0xFF look like one too, but never when there is none.
#[inline(always)]
fn ff_somewhere(w: u32) -> u32 {
    w & !w.wrapping_add(LOW_BITS)
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

    /// `count` frames nested in each other's segments, all broken at the end: each
    /// segment holds the next frame's SOI, and that frame's first segment is the next
    /// one. With `sos`, every frame also starts a scan whose data all of them share.
    fn nested(count: usize, sos: bool) -> Vec<u8> {
        let mut v = vec![0xFF, 0xD8];
        if sos {
            // Each frame's SOS header reaches over the frames after it to the scan data.
            for i in 0..count {
                let rest = (count - i) * 6 - 2;
                let len = u16::try_from(rest.min(0xFFFF)).unwrap();
                v.extend_from_slice(&[0xFF, 0xDA]);
                v.extend_from_slice(&len.to_be_bytes());
                v.extend_from_slice(&[0xFF, 0xD8]);
            }
            v.extend(std::iter::repeat_n(0x55, 200_000));
        } else {
            for _ in 0..count {
                v.extend_from_slice(&[0xFF, 0xE0, 0x00, 0x04, 0xFF, 0xD8]);
            }
        }
        v.extend_from_slice(&[0xFF, 0x01, 0x00]); // a marker, then no marker: corrupt
        v
    }

    #[test]
    fn frames_nested_in_corrupt_frames_cost_time_in_proportion_to_their_length() {
        // Unbounded, the first takes minutes (every frame parses the rest of the
        // stream again) and the second hours; bounded, well under a second.
        for (input, what) in [
            (nested(300_000, false), "segments"),
            (nested(10_000, true), "shared scan data"),
        ] {
            let started = std::time::Instant::now();
            let (pieces, total) = pieces(&input, 64 * 1024, DEFAULT_MAX_FRAME);
            let took = started.elapsed();
            assert_eq!(total, input.len(), "{what}: every byte in one piece");
            assert!(
                pieces
                    .iter()
                    .all(|p| matches!(p, Got::D(DropReason::Corrupt))),
                "{what}: {:?}",
                &pieces[..pieces.len().min(10)]
            );
            assert!(
                took < std::time::Duration::from_secs(30),
                "{what}: {} bytes took {took:?}",
                input.len()
            );
        }
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
    fn a_frame_over_the_cap_cut_by_the_end_of_input_is_too_large_however_reads_are_cut() {
        // Found by fuzzing: read whole it was reported as truncated, read in pieces as
        // too large.
        let mut cut = vec![0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02];
        cut.extend_from_slice(&[0x11; 1000]);
        for chunk in [1, 7, 400, cut.len()] {
            assert_eq!(
                pieces(&cut, chunk, 500),
                (vec![Got::D(DropReason::TooLarge)], cut.len()),
                "{chunk}"
            );
        }
        assert_eq!(run(&[&cut], 2000), vec![Got::D(DropReason::Truncated)]);
    }

    #[test]
    fn memory_stays_bounded_whatever_an_endless_frame_is_made_of() {
        const MAX: usize = 64 * 1024;
        const READ: usize = 16 * 1024;
        let heads: [&[u8]; 3] = [
            // Fill bytes before a marker code that never comes.
            &[0xFF, 0xD8, 0xFF],
            // Scan data that never ends.
            &[0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02],
            // Header segments one after another.
            &[0xFF, 0xD8],
        ];
        let bodies: [&dyn Fn(usize) -> u8; 3] = [&|_| 0xFF, &|i| (i % 200) as u8, &|i| {
            [0xFF, 0xE1, 0x00, 0x02][i % 4]
        }];
        for (head, body) in heads.iter().zip(bodies) {
            let mut s = MjpegSplitter::new(MAX);
            let mut got = Vec::new();
            s.feed(head, |_| {});
            let mut read = vec![0u8; READ];
            for n in 0..256 {
                for (i, b) in read.iter_mut().enumerate() {
                    *b = body(n * READ + i);
                }
                s.feed(&read, |p| got.push(format!("{p:?}")));
                assert!(
                    s.buffered() <= MAX + 3,
                    "{head:02x?}: {} bytes",
                    s.buffered()
                );
                assert!(
                    s.memory() <= 2 * (MAX + 3 + READ),
                    "{head:02x?}: {} bytes of buffer",
                    s.memory()
                );
            }
            s.finish(|p| got.push(format!("{p:?}")));
            assert_eq!(got.len(), 1, "{got:?}");
            assert!(got[0].starts_with("Dropped(TooLarge"), "{got:?}");
        }
    }

    /// Adds `piece` to `got`, neighbouring garbage runs merged.
    fn note(got: &mut Vec<Got>, piece: Piece<'_>) {
        match piece {
            Piece::Frame(f) => got.push(Got::F(f.to_vec())),
            Piece::Dropped(r, _) => got.push(Got::D(r)),
            Piece::Garbage(n) => match got.last_mut() {
                Some(Got::G(m)) => *m += n,
                _ => got.push(Got::G(n)),
            },
        }
    }

    /// Hands out `input` in reads of at most `most` bytes, then ends.
    struct Reads<'a> {
        rest: &'a [u8],
        most: usize,
    }

    impl std::io::Read for Reads<'_> {
        fn read(&mut self, into: &mut [u8]) -> std::io::Result<usize> {
            let n = self.rest.len().min(self.most).min(into.len());
            into[..n].copy_from_slice(&self.rest[..n]);
            self.rest = &self.rest[n..];
            Ok(n)
        }
    }

    #[test]
    fn reading_into_the_splitter_finds_what_feeding_it_finds() {
        let a = jpeg(1, 100);
        let mut corrupt = a.clone();
        corrupt[10] = 0x12;
        let mut input = b"junk".to_vec();
        for part in [
            &a[..7],
            &a,
            &a[..60],
            &corrupt,
            &jpeg(2, 3000),
            &a,
            &a[..30],
        ] {
            input.extend_from_slice(part);
        }
        let (fed, covered) = pieces(&input, input.len(), 1000);
        for most in [1, 3, 64, 999, READ_SIZE] {
            let mut s = MjpegSplitter::new(1000);
            let mut got = Vec::new();
            let mut push = |p: Piece<'_>| note(&mut got, p);
            let mut reads = Reads { rest: &input, most };
            while s.read_from(&mut reads, &mut push).expect("reading a slice") > 0 {}
            s.finish(&mut push);
            assert_eq!((got, covered), (fed.clone(), input.len()), "{most}");
        }
    }

    #[test]
    fn the_buffer_does_not_grow_over_a_long_stream() {
        // Frames of sizes that leave unfinished ones at every place in the buffer when a
        // read comes: what is kept of them moves back to the start instead of piling up.
        let frames: Vec<Vec<u8>> = (0..40)
            .map(|i| jpeg(i, 20_000 + i as usize * 997))
            .collect();
        let mut input = Vec::new();
        for _ in 0..20 {
            for f in &frames {
                input.extend_from_slice(f);
            }
        }
        let mut s = MjpegSplitter::default();
        let mut found = 0;
        let mut reads = Reads {
            rest: &input,
            most: READ_SIZE,
        };
        // The first pass over the frames sizes the buffer.
        let first_pass = frames.iter().map(Vec::len).sum::<usize>();
        while input.len() - reads.rest.len() < first_pass {
            s.read_from(&mut reads, |p| {
                found += usize::from(matches!(p, Piece::Frame(_)))
            })
            .expect("reading a slice");
        }
        let memory = s.memory();
        assert!(memory <= 4 * (60_000 + READ_SIZE), "{memory} bytes");
        while s
            .read_from(&mut reads, |p| {
                found += usize::from(matches!(p, Piece::Frame(_)))
            })
            .expect("reading a slice")
            > 0
        {
            assert_eq!(s.memory(), memory);
        }
        assert_eq!(found, 800);
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
    /// The first 0xFF at or after `from`, byte by byte.
    fn naive_ff(data: &[u8], from: usize) -> Option<usize> {
        data.get(from..)?
            .iter()
            .position(|&b| b == 0xFF)
            .map(|i| from + i)
    }

    #[test]
    fn the_word_search_finds_every_0xff_byte_at_every_alignment() {
        // 0xFF in every position of a word and of a block of words, next to 0xFE
        // (which a carry out of a 0xFF below makes look like one), alone, in runs, and
        // none at all; the buffer seen from every alignment.
        let mut data = vec![0x12u8; 200];
        for (i, b) in data.iter_mut().enumerate() {
            *b = match i % 37 {
                0 | 5 | 6 => 0xFF,
                1 | 7 => 0xFE,
                _ => (i * 7) as u8 & 0x7F,
            };
        }
        data.extend(std::iter::repeat_n(0xFE, 90));
        data.push(0xFF);
        data.extend(std::iter::repeat_n(0x00, 70));
        for shift in 0..8 {
            let data = &data[shift..];
            let words = Words::new(data);
            for from in 0..=data.len() + 1 {
                assert_eq!(
                    words.find_ff(data, from),
                    naive_ff(data, from),
                    "shift {shift}, from {from}"
                );
            }
            for end in 0..data.len() {
                let data = &data[..end];
                let words = Words::new(data);
                assert_eq!(words.find_ff(data, 0), naive_ff(data, 0), "end {end}");
            }
        }
    }

    /// `jpeg` encoded from a noisy picture, with restart markers every `restart` MCUs.
    fn real_jpeg(seed: u64, restart: u16) -> Vec<u8> {
        let (width, height) = (96u16, 64u16);
        let mut rng = seed | 1;
        let pixels: Vec<u8> = (0..usize::from(width) * usize::from(height) * 3)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng as u8
            })
            .collect();
        let mut out = Vec::new();
        let mut encoder = jpeg_encoder::Encoder::new(&mut out, 95);
        if restart > 0 {
            encoder.set_restart_interval(restart);
        }
        encoder
            .encode(&pixels, width, height, jpeg_encoder::ColorType::Rgb)
            .expect("encoding a test picture");
        out
    }

    #[test]
    fn real_pictures_with_stuffing_and_restart_markers_are_found_however_reads_are_cut() {
        let a = real_jpeg(1, 0);
        let b = real_jpeg(2, 2);
        let stuffed = a.windows(2).filter(|w| w == &[0xFF, 0x00]).count();
        let restarts = b
            .windows(2)
            .filter(|w| w[0] == 0xFF && (0xD0..=0xD7).contains(&w[1]))
            .count();
        assert!(stuffed > 20, "{stuffed} stuffed zeros");
        assert!(restarts > 5, "{restarts} restart markers");
        // Garbage between frames, with 0xFF bytes of its own; then a frame cut short by
        // the next one; a frame cut short by the end of the input.
        let mut input = b"\xFF\x00 garbage \xFF".to_vec();
        input.extend_from_slice(&a);
        input.extend_from_slice(b"\xFF\xD9\xFF\xFF\x00 between");
        input.extend_from_slice(&b);
        input.extend_from_slice(&a[..a.len() / 2]);
        input.extend_from_slice(&b);
        input.extend_from_slice(&a[..a.len() - 1]);
        let want = vec![
            Got::G(12),
            Got::F(a.clone()),
            Got::G(13),
            Got::F(b.clone()),
            Got::D(DropReason::Truncated),
            Got::F(b.clone()),
            Got::D(DropReason::Truncated),
        ];
        assert_eq!(
            pieces(&input, input.len(), 1 << 20),
            (want.clone(), input.len())
        );
        // Every place for the cut between two reads around each frame's end-of-image
        // marker, and reads of many sizes.
        let eoi = 12 + a.len();
        for cut in eoi - 9..eoi + 9 {
            let mut s = MjpegSplitter::new(1 << 20);
            let mut got = Vec::new();
            let mut push = |p: Piece<'_>| note(&mut got, p);
            s.feed(&input[..cut], &mut push);
            s.feed(&input[cut..], &mut push);
            s.finish(&mut push);
            assert_eq!(got, want, "cut at {cut}");
        }
        for chunk in [1, 2, 3, 5, 31, 32, 33, 1000] {
            assert_eq!(
                pieces(&input, chunk, 1 << 20),
                (want.clone(), input.len()),
                "{chunk}"
            );
        }
        // The frames found decode back into pictures.
        for jpeg in [&a, &b] {
            let mut decoder = zune_jpeg::JpegDecoder::new(jpeg.as_slice());
            let pixels = decoder.decode().expect("a found frame decodes");
            assert_eq!(pixels.len(), 96 * 64 * 3);
        }
    }
    /// [`scan_entropy`] a byte at a time.
    fn naive_scan(data: &[u8], from: usize) -> Result<usize, usize> {
        let mut pos = from;
        loop {
            let Some(ff) = naive_ff(data, pos) else {
                return Err(data.len().max(pos));
            };
            match data.get(ff + 1) {
                None => return Err(ff),
                Some(0x00 | 0xD0..=0xD7) => pos = ff + 2,
                Some(0xFF) => pos = ff + 1,
                Some(_) => return Ok(ff),
            }
        }
    }

    #[test]
    fn the_word_scan_of_entropy_coded_data_finds_what_a_byte_scan_finds() {
        // Stuffed zeros, restart markers, fill bytes, 0xFE after 0xFF, and markers, at
        // every place in a word and across word ends, seen from every alignment, cut
        // at every length.
        let pairs: [&[u8]; 8] = [
            &[0xFF, 0x00],
            &[0xFF, 0xD3],
            &[0xFF, 0xFF, 0x00],
            &[0xFF, 0xFE],
            &[0xFF, 0xD9],
            &[0xFF, 0xC4],
            &[0xFE, 0xFE],
            &[0xFF, 0xFF, 0xFF, 0xD7],
        ];
        let mut data = Vec::new();
        for i in 0..120usize {
            data.extend(std::iter::repeat_n(0x5A, i % 11));
            data.extend_from_slice(pairs[i % pairs.len()]);
        }
        data.extend(std::iter::repeat_n(0x00, 80));
        data.push(0xFF);
        for shift in 0..4 {
            let data = &data[shift..];
            for from in 0..=data.len() {
                assert_eq!(
                    scan_entropy(data, from),
                    naive_scan(data, from),
                    "shift {shift}, from {from}"
                );
            }
            for end in 0..200 {
                for from in 0..end.min(12) {
                    assert_eq!(
                        scan_entropy(&data[..end], from),
                        naive_scan(&data[..end], from),
                        "shift {shift}, end {end}, from {from}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_word_scan_finds_what_a_byte_scan_finds_in_random_mixes_of_marker_bytes() {
        // Pieces drawn from what the word tests tell apart: stuffed zeros (the most
        // common), restart markers, fill bytes, markers, a lone 0xFF before whatever
        // comes next, and bytes a borrow or a carry from a neighbour can make look like
        // 0x00 or 0xFF (0x01, 0xFE); runs of several blocks of words, from every place,
        // cut anywhere.
        let plain = [0x00, 0x01, 0x5A, 0x80, 0xFE, 0xD0, 0x7F];
        let ends: [&[u8]; 5] = [
            &[0xFF, 0xD9],
            &[0xFF, 0xC4],
            &[0xFF, 0x01],
            &[0xFF, 0xFE],
            &[0xFF],
        ];
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let (mut markers, mut unended) = (0, 0);
        for _ in 0..1500 {
            let pieces = next() % 70;
            let mut data = Vec::new();
            for _ in 0..pieces {
                match next() % 64 {
                    0..=19 => data.extend_from_slice(&[0xFF, 0x00]),
                    20..=22 => data.extend_from_slice(&[0xFF, 0xD0 + (next() % 8) as u8]),
                    23..=24 => data.extend_from_slice(&[0xFF, 0xFF]),
                    25..=26 => data.extend_from_slice(ends[next() as usize % ends.len()]),
                    r => data.push(plain[r as usize % plain.len()]),
                }
            }
            for from in 0..=data.len() + 1 {
                let want = naive_scan(&data, from);
                match want {
                    Ok(_) => markers += 1,
                    Err(_) => unended += 1,
                }
                assert_eq!(scan_entropy(&data, from), want, "{data:02x?} from {from}");
            }
        }
        assert!(markers > 10_000 && unended > 10_000, "{markers} {unended}");
    }
}
