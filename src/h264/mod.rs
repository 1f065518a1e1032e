//! H.264 beside MJPEG: the slot that hands encoded pictures to viewers, the pure
//! pieces that shape them for the wire, and the stages that encode them.
//!
//! ```text
//!  FrameSlot ──▶ demand (only while an H.264 viewer exists) ──▶ H264Slot ──▶ /stream.mp4
//!  (newest JPEG)  JPEG → I420 → hardware (V4L2 m2m) or         (parameter    (fmp4 muxer,
//!                              software (openh264)              sets + GOP)   one viewer a thread)
//! ```
//!
//! * [`slot`] holds the stream's parameter sets and every access unit since the last
//!   IDR picture, so a new viewer starts at once; a viewer that falls behind skips to
//!   an IDR picture and never sees a broken one.
//! * [`nal`] reads the encoder's Annex B byte stream (start codes) into NAL units and
//!   writes the length-prefixed samples MP4 wants; [`publish`] checks one picture's
//!   output and publishes it into the slot.
//! * [`fmp4`] is the fragmented MP4 muxer: bytes in, boxes out.
//! * [`demand`] runs a stage only while a viewer exists, on pictures from [`picture`];
//!   [`pacing`] holds the settings both stages share (rates, key frame spacing).
//! * [`hardware`] encodes on a V4L2 memory-to-memory H.264 encoder (the Pi's
//!   `bcm2835-codec`), in every build; `encode` (feature `h264`) encodes with OpenH264.
//!   [`choice`] picks one for `--h264-encoder`.

pub mod choice;
pub mod demand;
pub mod fmp4;
pub mod hardware;
pub mod nal;
pub mod pacing;
pub mod picture;
pub mod publish;
pub mod slot;

#[cfg(feature = "h264")]
pub mod encode;
