//! The Linux V4L2 kernel interface, for capture sources and memory-to-memory encoders
//! alike. It knows devices and buffers, not pictures or frames.
//!
//! * [`sys`]: the structures, constants and ioctl calls of `linux/videodev2.h`.
//! * [`device`]: one ioctl helper, what a node can do, and a capture device node with
//!   its formats, sizes, rates and streaming.
//! * [`controls`]: a device's controls (brightness, white balance, ...) as
//!   [`crate::controls`] describes them, read and set.
//! * [`listing`]: what `--list-devices` prints.
//! * [`buffers`]: one queue of buffers, memory-mapped or imported as DMABUF, in the
//!   single-planar or the multi-planar API.

pub mod buffers;
pub mod controls;
pub mod device;
pub mod listing;
pub mod sys;
