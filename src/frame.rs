//! One published JPEG picture, stored once with the multipart framing every client needs.
//!
//! A frame's bytes are laid out so that each wire format is a single contiguous slice of
//! one allocation, shared by all clients through an `Arc`:
//!
//! ```text
//! [--FRAME / Content-Type / Content-Length head][JPEG][CRLF --FRAME / Content-Type head]
//! |<------------------- classic part ------------------->|
//!                                            |<--------- advance part ---------------->|
//! ```
//!
//! * The *classic* part is what the Python picamera script sends: the boundary and a
//!   header block carrying `Content-Length`, the JPEG, then CRLF.
//! * The *advance* part is the JPEG followed at once by the next part's boundary and its
//!   whole header block. Browsers paint a multipart image only after the following part's
//!   headers arrive, so this format shows each frame as soon as it is sent, at the price of
//!   not announcing the next frame's length.

use std::ops::Range;
use std::time::Instant;

/// The multipart boundary, as in the classic script (`boundary=FRAME`).
pub const BOUNDARY: &str = "FRAME";

/// The header block that opens an advance-format part (no `Content-Length`).
pub const ADVANCE_PART_HEAD: &[u8] = b"--FRAME\r\nContent-Type: image/jpeg\r\n\r\n";

/// A complete JPEG picture with its sequence number and precomputed framing.
#[derive(Debug)]
pub struct Frame {
    seq: u64,
    /// The bytes, in blocks of aligned words (see [`Frame::new`]).
    blocks: Box<[Block]>,
    /// Where the classic part starts.
    head: usize,
    jpeg: Range<usize>,
    /// Where the advance part ends.
    end: usize,
    width: u16,
    height: u16,
    /// When the frame was made, which is when its picture reached the server.
    made: Instant,
}

/// Sixteen words: what the copy of a picture into its frame moves at a time.
type Block = [u32; 16];
const BLOCK: usize = std::mem::size_of::<Block>();

impl Frame {
    /// Builds a frame from a JPEG picture. `seq` must grow by publication order.
    ///
    /// The picture is copied once, sixteen aligned words at a time: it is placed in the
    /// frame at the same offset from a block boundary as it has in `jpeg`'s memory, so
    /// that its whole blocks are copied as they are. (A plain slice copy would go
    /// through the C library's `memcpy`, which on a target without unaligned stores,
    /// ARMv6, stores a byte at a time.) Before the picture come a few unused bytes and
    /// the classic part's head; behind it, the advance part's.
    pub fn new(seq: u64, jpeg: &[u8], width: u16, height: u16) -> Frame {
        let length = Decimal::of(jpeg.len());
        let head_len = CLASSIC_HEAD_START.len() + length.digits().len() + 4;
        let (lead, middle, rest) = bytemuck::pod_align_to::<u8, Block>(jpeg);
        // The blocks before the picture's first whole block: unused bytes, the head and
        // the picture's bytes up to that block.
        let first = (head_len + lead.len()).div_ceil(BLOCK) * BLOCK;
        let start = first - lead.len();
        // The blocks after: the picture's last bytes and the advance part's head.
        let after = rest.len() + 2 + ADVANCE_PART_HEAD.len();
        let mut blocks = Vec::with_capacity(first / BLOCK + middle.len() + after.div_ceil(BLOCK));
        // Each byte around the picture's whole blocks is copied once, straight to its
        // place in the frame: small copies go through `memcpy` too, a byte at a time.
        blocks.resize(first / BLOCK, [0; 16]);
        let before: &mut [u8] = bytemuck::cast_slice_mut(&mut blocks);
        let (head_start, digits_at) = (start - head_len, start - 4 - length.digits().len());
        before[head_start..digits_at].copy_from_slice(CLASSIC_HEAD_START);
        before[digits_at..start - 4].copy_from_slice(length.digits());
        before[start - 4..start].copy_from_slice(b"\r\n\r\n");
        before[start..].copy_from_slice(lead);
        // The empty `black_box` keeps the compiler from turning this loop back into a
        // call of `memcpy`; each block becomes loads and stores of several registers.
        blocks.extend(middle.iter().map(|block| {
            std::hint::black_box(());
            *block
        }));
        let tail_at = blocks.len();
        blocks.resize(tail_at + after.div_ceil(BLOCK), [0; 16]);
        let tail: &mut [u8] = bytemuck::cast_slice_mut(&mut blocks[tail_at..]);
        let (last, tail) = tail.split_at_mut(rest.len());
        last.copy_from_slice(rest);
        tail[..2].copy_from_slice(b"\r\n");
        tail[2..2 + ADVANCE_PART_HEAD.len()].copy_from_slice(ADVANCE_PART_HEAD);
        let jpeg_end = start + jpeg.len();
        Frame {
            seq,
            blocks: blocks.into_boxed_slice(),
            head: start - head_len,
            jpeg: start..jpeg_end,
            end: jpeg_end + 2 + ADVANCE_PART_HEAD.len(),
            width,
            height,
            made: Instant::now(),
        }
    }

    /// All the frame's bytes (and a few unused ones at either end).
    fn bytes(&self) -> &[u8] {
        bytemuck::cast_slice(&self.blocks)
    }

    /// Position of this frame in the stream; the first published frame is 1.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The JPEG picture alone.
    pub fn jpeg(&self) -> &[u8] {
        &self.bytes()[self.jpeg.clone()]
    }

    /// Boundary, headers with `Content-Length`, JPEG, CRLF.
    pub fn classic_part(&self) -> &[u8] {
        &self.bytes()[self.head..self.jpeg.end + 2]
    }

    /// JPEG, CRLF, then the next part's boundary and header block.
    pub fn advance_part(&self) -> &[u8] {
        &self.bytes()[self.jpeg.start..self.end]
    }

    pub fn width(&self) -> u16 {
        self.width
    }

    pub fn height(&self) -> u16 {
        self.height
    }

    /// When the frame was made: the time its picture reached the server, which stands
    /// for its capture time (H.264 timestamps follow it).
    pub fn made(&self) -> Instant {
        self.made
    }
}

/// The classic part's head up to its `Content-Length` value.
const CLASSIC_HEAD_START: &[u8] = b"--FRAME\r\nContent-Type: image/jpeg\r\nContent-Length: ";

/// A length written in decimal digits, made without `format!` (whose string and
/// formatting machinery cost a picture more than its digits do).
struct Decimal {
    buf: [u8; 20],
    /// Where the digits start in `buf`; they run to its end.
    from: usize,
}

impl Decimal {
    fn of(mut n: usize) -> Decimal {
        let mut buf = [0u8; 20];
        let mut from = buf.len();
        loop {
            from -= 1;
            buf[from] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                return Decimal { buf, from };
            }
        }
    }

    fn digits(&self) -> &[u8] {
        &self.buf[self.from..]
    }
}

/// A shared frame that reads as its JPEG bytes, for responses that send the picture alone.
pub struct JpegBytes(pub std::sync::Arc<Frame>);

impl AsRef<[u8]> for JpegBytes {
    fn as_ref(&self) -> &[u8] {
        self.0.jpeg()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_slices_of_one_buffer() {
        let jpeg = [0xFF, 0xD8, 1, 2, 3, 0xFF, 0xD9];
        let f = Frame::new(7, &jpeg, 4, 2);
        assert_eq!(f.jpeg(), &jpeg);
        let classic = f.classic_part();
        assert!(classic
            .starts_with(b"--FRAME\r\nContent-Type: image/jpeg\r\nContent-Length: 7\r\n\r\n"));
        assert!(classic.ends_with(&[0xFF, 0xD9, b'\r', b'\n']));
        let advance = f.advance_part();
        assert!(advance.starts_with(&jpeg));
        assert!(advance.ends_with(b"\r\n--FRAME\r\nContent-Type: image/jpeg\r\n\r\n"));
        assert_eq!(f.seq(), 7);
    }

    #[test]
    fn decimal_digits_are_those_of_the_number() {
        for n in [0, 1, 9, 10, 99, 100, 47_054, 1 << 31, usize::MAX] {
            assert_eq!(Decimal::of(n).digits(), n.to_string().as_bytes());
        }
    }

    #[test]
    fn parts_are_right_wherever_the_picture_lies_in_memory() {
        // Pictures of every length around a few blocks, at every offset from a block
        // boundary: the block copy must move each byte once, to its place.
        let memory: Vec<u8> = (0..400u32).map(|i| (i * 131 % 251) as u8).collect();
        for offset in 0..40 {
            for len in (0..100).chain([255, 256, 257, 300]) {
                let jpeg = &memory[offset..offset + len];
                let f = Frame::new(1, jpeg, 1, 1);
                assert_eq!(f.jpeg(), jpeg, "offset {offset}, length {len}");
                let head =
                    format!("--FRAME\r\nContent-Type: image/jpeg\r\nContent-Length: {len}\r\n\r\n");
                let mut classic = head.into_bytes();
                classic.extend_from_slice(jpeg);
                classic.extend_from_slice(b"\r\n");
                assert_eq!(f.classic_part(), classic, "offset {offset}, length {len}");
                let mut advance = jpeg.to_vec();
                advance.extend_from_slice(b"\r\n");
                advance.extend_from_slice(ADVANCE_PART_HEAD);
                assert_eq!(f.advance_part(), advance, "offset {offset}, length {len}");
            }
        }
    }
}
