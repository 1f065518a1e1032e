//! The HTTP side: the viewer page, the MJPEG stream, snapshots, status and camera
//! controls.
//!
//! A small HTTP/1.1 server on std threads and blocking sockets: [`server`] accepts and
//! gives every connection a thread, [`conn`] reads its request heads within bounded time
//! and size ([`head`] parses them, [`waiting`] bounds how many wait at once), [`answer`]
//! decides each answer after [`access`] has checked who asks, and [`reply`] writes it;
//! a stream starts on its connection's thread ([`stream`]) and, on plain TCP, goes on in
//! the one writer of all streams ([`fanout`]). The live MP4 (`/stream.mp4`) is written
//! by its viewer's thread from the [`H264Slot`] ([`mp4`]). The HTTP side reads frames from the
//! [`FrameSlot`] and the [`H264Slot`], counters from [`SourceStats`] and the camera's controls from the
//! [`ControlBoard`]; it knows nothing about cameras.
//!
//! [`FrameSlot`]: crate::slot::FrameSlot
//! [`H264Slot`]: crate::h264::slot::H264Slot
//! [`SourceStats`]: crate::stats::SourceStats
//! [`ControlBoard`]: crate::controls::ControlBoard

pub mod access;
pub mod answer;
pub mod conn;
pub mod controls;
pub mod fanout;
pub mod head;
pub mod mp4;
pub mod reply;
pub mod routes;
pub mod server;
pub mod shares;
pub mod status;
pub mod stream;
pub mod tls;
pub mod waiting;
pub mod webrtc;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use crate::auth::Guard;
use crate::controls::ControlBoard;
use crate::h264::slot::H264Slot;
use crate::net::Patience;
use crate::picture::Settings;
use crate::slot::FrameSlot;
use crate::stats::{ClientCounter, SourceStats};

/// What the HTTP side shares between its threads.
pub struct AppState {
    pub slot: Arc<FrameSlot>,
    pub source: Arc<SourceStats>,
    pub clients: Arc<ClientCounter>,
    /// Streams per client address (`--max-clients-per-address`).
    pub shares: Arc<shares::Shares>,
    pub settings: Settings,
    pub started: Instant,
    pub stopping: Arc<AtomicBool>,
    /// How long clients may take, and how much they may send, to make a request.
    pub patience: Patience,
    /// The connections waiting for a request head now.
    pub waiting: waiting::Waiting,
    /// Who may watch; `None`: everybody.
    pub guard: Option<Arc<Guard>>,
    /// `Access-Control-Allow-Origin` for every answer; `None`: no CORS headers, and
    /// `OPTIONS` is refused like any other method but GET and HEAD.
    pub allow_origin: Option<String>,
    /// Connections speak TLS.
    pub tls: bool,
    /// The writer of the plain-TCP streams.
    pub fanout: fanout::Fanout,
    /// The running camera's controls (`/controls`, `/option`).
    pub controls: Arc<ControlBoard>,
    /// The H.264 stream (`/stream.mp4`); `None` in builds without an H.264 encoder.
    pub h264: Option<Arc<H264Slot>>,
    /// WebRTC for the H.264 stream (`/whep`, `/webrtc`); `None` when off or not built.
    pub webrtc: Option<Arc<crate::webrtc::Desk>>,
}

/// The viewer page, embedded in the binary.
pub const PAGE: &str = include_str!("../../web/index.html");
