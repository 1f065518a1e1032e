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

/// The multipart boundary, as in the classic script (`boundary=FRAME`).
pub const BOUNDARY: &str = "FRAME";

/// The header block that opens an advance-format part (no `Content-Length`).
pub const ADVANCE_PART_HEAD: &[u8] = b"--FRAME\r\nContent-Type: image/jpeg\r\n\r\n";

/// A complete JPEG picture with its sequence number and precomputed framing.
#[derive(Debug)]
pub struct Frame {
    seq: u64,
    bytes: Box<[u8]>,
    jpeg: Range<usize>,
    width: u16,
    height: u16,
}

impl Frame {
    /// Builds a frame from a JPEG picture. `seq` must grow by publication order.
    pub fn new(seq: u64, jpeg: &[u8], width: u16, height: u16) -> Frame {
        let head = format!(
            "--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
            jpeg.len()
        );
        let mut bytes = Vec::with_capacity(head.len() + jpeg.len() + 2 + ADVANCE_PART_HEAD.len());
        bytes.extend_from_slice(head.as_bytes());
        bytes.extend_from_slice(jpeg);
        bytes.extend_from_slice(b"\r\n");
        bytes.extend_from_slice(ADVANCE_PART_HEAD);
        let start = head.len();
        Frame {
            seq,
            bytes: bytes.into_boxed_slice(),
            jpeg: start..start + jpeg.len(),
            width,
            height,
        }
    }

    /// Position of this frame in the stream; the first published frame is 1.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The JPEG picture alone.
    pub fn jpeg(&self) -> &[u8] {
        &self.bytes[self.jpeg.clone()]
    }

    /// Boundary, headers with `Content-Length`, JPEG, CRLF.
    pub fn classic_part(&self) -> &[u8] {
        &self.bytes[..self.jpeg.end + 2]
    }

    /// JPEG, CRLF, then the next part's boundary and header block.
    pub fn advance_part(&self) -> &[u8] {
        &self.bytes[self.jpeg.start..]
    }

    pub fn width(&self) -> u16 {
        self.width
    }

    pub fn height(&self) -> u16 {
        self.height
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
}
