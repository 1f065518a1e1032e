//! H.264 beside MJPEG: the slot that hands encoded pictures to viewers, the pure
//! pieces that shape them for the wire, and (cargo feature `h264`) the stage that
//! encodes them.
//!
//! ```text
//!  FrameSlot ──▶ encode (only while an H.264 viewer exists) ──▶ H264Slot ──▶ /stream.mp4
//!  (newest JPEG)  JPEG → I420 → openh264                      (parameter    (fmp4 muxer,
//!                                                              sets + GOP)   one viewer a thread)
//! ```
//!
//! * [`slot`] holds the stream's parameter sets and every access unit since the last
//!   IDR picture, so a new viewer starts at once; a viewer that falls behind skips to
//!   an IDR picture and never sees a broken one.
//! * [`nal`] reads the encoder's Annex B byte stream (start codes) into NAL units and
//!   writes the length-prefixed samples MP4 wants.
//! * [`fmp4`] is the fragmented MP4 muxer: bytes in, boxes out.
//! * `encode` (feature `h264`) is the software encoder stage. It is the one place that
//!   knows where pictures come from; a hardware encoder fed by the camera's raw buffers
//!   will publish into the same slot through [`slot::H264Slot::publish`].

pub mod fmp4;
pub mod nal;
pub mod slot;

#[cfg(feature = "h264")]
pub mod encode;
