//! The HTTP side: the viewer page, the MJPEG stream, snapshots and status.
//!
//! Every request passes the [`Guard`] first when users are configured (HTTP Basic).
//! It is built on `tiny_http`, which parses requests on its own connection threads; this
//! module answers them. Short answers are written by a few worker threads; every stream
//! gets a thread of its own. The [`gate`] bounds the connections that have not yet made
//! a request, which `tiny_http` would wait for without limit. The HTTP side reads frames from the [`FrameSlot`] and counters
//! from [`SourceStats`]; it knows nothing about cameras.
//!
//! [`FrameSlot`]: crate::slot::FrameSlot
//! [`SourceStats`]: crate::stats::SourceStats

pub mod access;
pub mod gate;
pub mod reply;
pub mod routes;
pub mod server;
pub mod socket;
pub mod status;
pub mod stream;
pub mod tls;

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use crate::auth::Guard;
use crate::slot::FrameSlot;
use crate::source::Settings;
use crate::stats::{ClientCounter, SourceStats};

/// What the HTTP side shares between its threads.
pub struct AppState {
    pub slot: Arc<FrameSlot>,
    pub source: Arc<SourceStats>,
    pub clients: Arc<ClientCounter>,
    pub settings: Settings,
    pub started: Instant,
    pub stopping: Arc<AtomicBool>,
    /// The address the server listens on (its port identifies our connections).
    pub local_addr: SocketAddr,
    /// Bounds the connections that have not yet made a request; requests being
    /// answered and streams are marked in it.
    pub gate: Arc<gate::Gate>,
    /// Who may watch; `None`: everybody.
    pub guard: Option<Arc<Guard>>,
    /// `Access-Control-Allow-Origin` for every answer; `None`: no CORS headers, and
    /// `OPTIONS` is refused like any other method but GET and HEAD.
    pub allow_origin: Option<String>,
    /// Connections speak TLS: streams must be written through `tiny_http`'s writer,
    /// never to the raw socket.
    pub tls: bool,
}

/// The viewer page, embedded in the binary.
pub const PAGE: &str = include_str!("../../web/index.html");
