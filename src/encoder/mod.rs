//! Turning raw pictures into JPEG, for sources that do not deliver JPEG.
//!
//! * `raw`: the raw picture layouts ([`RawLayout`]) and what every back end shares
//!   about them.
//! * `software`: encoding on the CPU ([`SoftwareEncoder`]): the pure Rust
//!   `jpeg-encoder`, or libjpeg-turbo (`turbo`, cargo feature `turbojpeg`).
//! * [`m2m`]: V4L2 memory-to-memory devices, such as the Pi's hardware JPEG encoder.
//! * [`feed`]: feeding a memory-to-memory device by importing the camera's buffers
//!   (DMABUF) or by copying.
//! * [`pool`]: software encoding on several threads at once ([`EncodePool`]), pictures
//!   published in capture order.
//! * [`turn`]: turning and mirroring raw pictures before they are encoded
//!   (`--rotation 90` and `270`; [`Turner`]).
//! * [`choice`]: [`JpegEncoder`], which uses the hardware when `--encoder` allows and one
//!   is found, and falls back to software when it fails.

pub mod choice;
pub mod feed;
pub mod m2m;
pub mod pool;
mod raw;
mod software;
#[cfg(feature = "turbojpeg")]
mod turbo;
pub mod turn;

pub use choice::{CameraPlane, JpegEncoder};
pub use pool::{EncodePool, JpegOut};
pub use turn::{Turned, Turner};
// Everything public in `software` and `raw` stays reachable as `encoder::*`, as before
// the split.
pub use raw::{EncodeError, RawLayout};
pub use software::*;
