//! picam-stream: a live MJPEG stream of a camera for every browser on the network.
//!
//! Data flows one way through small modules, each owning one job:
//!
//! ```text
//!  source ──▶ encoder ──▶ FrameSlot ──▶ http clients
//! (pattern,    (hardware or (newest      (one thread per
//!  pipe, exec,   software)   frame only)   connection)
//!  V4L2, libcamera)
//! ```
//!
//! * [`source`] produces JPEG frames: the built-in test pattern, an MJPEG byte stream
//!   from standard input, a file or a child process (cut into frames by [`splitter`]),
//!   V4L2 cameras, and Pi cameras through libcamera (cargo feature `libcamera`). A
//!   camera source can run in a process of its own, so that a crash in a camera library
//!   ends only that process ([`source::isolate`]).
//! * [`v4l2`] is the kernel's video interface (devices, formats, buffer queues), shared
//!   by the V4L2 capture source and the memory-to-memory encoder.
//! * [`encoder`] turns raw pictures into JPEG: on a V4L2 memory-to-memory hardware
//!   encoder when there is one (the Pi's VideoCore), in software otherwise.
//! * [`slot`] holds the newest frame. Publishing never locks or waits; each client asks
//!   for "the first frame newer than the one I sent", so a slow client skips frames
//!   instead of queueing them.
//! * [`h264`] holds the H.264 stream beside the frame slot ([`h264::slot`]), the
//!   fragmented MP4 muxer, and the encoder stages that turn the slot's frames into
//!   H.264 while somebody watches `/stream.mp4`: on a V4L2 memory-to-memory encoder (the
//!   Pi's) in every build, or with OpenH264 (cargo feature `h264`).
//! * [`webrtc`] sends that H.264 stream over WebRTC: the signalling the HTTP side
//!   answers (WHEP, camera-streamer's JSON) and (cargo feature `webrtc`) the thread
//!   that runs every peer on one UDP port.
//! * [`http`] serves the page, the stream, snapshots and status, and bounds the
//!   connections that have not made a request yet. It knows frames, not cameras.
//! * [`auth`] decides who may watch (HTTP Basic users from `--auth`/`--auth-file`).
//! * [`mdns`] advertises the stream as `<name>.local` and an `_http._tcp` service.
//! * [`config`] reads the command line and the environment.
//! * [`controls`] describes the running camera's controls and holds the one handle
//!   through which the HTTP side reads and changes them; [`saved_controls`] keeps the
//!   values clients set in a file per camera (`--state-dir`), applied when the camera
//!   opens again, after a restart too; [`json`] reads and writes both forms of them.
//! * [`picture`] holds the picture settings (size, rate, orientation, encoder) that the
//!   configuration fills in and sources, encoders and `/status` read.
//! * [`still`] is where a request for a full-resolution still waits for the camera
//!   that takes it between two frames.
//! * [`board`] names the board (the device tree's model), for messages only.
//! * [`ratelog`] bounds the log lines that input can cause (bad frames, packets).

pub mod auth;
pub mod board;
pub mod clock;
pub mod config;
pub mod controls;
pub mod encoder;
pub mod frame;
pub mod h264;
pub mod http;
pub mod jpeg;
pub mod json;
pub mod logging;
pub mod mdns;
pub mod net;
pub mod picture;
pub mod ratelog;
pub mod saved_controls;
pub mod shutdown;
pub mod slot;
pub mod source;
pub mod splitter;
pub mod stats;
pub mod still;
pub mod v4l2;
pub mod webrtc;
