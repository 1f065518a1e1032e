//! Writes the MJPEG stream to one client, on that client's own thread.
//!
//! The loop asks the frame slot for the first frame newer than the last one sent and
//! writes it with a single write call (the frame's bytes already hold the part headers).
//! On plain TCP, the first frame only: then the socket goes to the writer that serves
//! every plain stream with one wake-up per frame ([`super::fanout`]) and this thread
//! waits for the stream's end. TLS streams, encrypted per connection, keep the loop.
//! Nothing is queued per client: while a slow client's socket drains, newer frames replace
//! older ones in the slot and the client simply gets the newest when it is ready.
//! How much may wait in the kernel, and how long a write may block, are socket options
//! set on the listening socket (see [`crate::net`]).

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::fanout::{Fanout, KEEPALIVE};
use super::reply::cors_headers;
use super::AppState;
use crate::frame::{ADVANCE_PART_HEAD, BOUNDARY};
use crate::ratelog::RateLimit;
use crate::slot::{FrameSlot, Next};

/// How a stream ended.
#[derive(Debug)]
pub enum EndReason {
    /// Writing failed: the client left, or stopped reading past the write timeout.
    Client(io::Error),
    /// The server is stopping.
    ServerStopping,
}

/// Counts for one client's stream.
#[derive(Debug)]
pub struct StreamOutcome {
    /// Frames written (repeats of a stalled source's newest frame included).
    pub sent: u64,
    /// Newer frames the client never got because it was still busy with an older one.
    pub skipped: u64,
    pub end: EndReason,
}

/// Response head of a stream; the advance format opens the first part right away.
/// `extra`: more header lines, each ending in CRLF.
pub fn response_head(advance: bool, extra: &str) -> Vec<u8> {
    let content_type = format!("multipart/x-mixed-replace; boundary={BOUNDARY}");
    let mut head = stream_head(&content_type, extra);
    if advance {
        head.extend_from_slice(ADVANCE_PART_HEAD);
    }
    head
}

/// Response head of any endless stream of `content_type`, uncached, closed at its end.
pub fn stream_head(content_type: &str, extra: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\n\
         Server: picam-stream/{}\r\n\
         Content-Type: {content_type}\r\n\
         Cache-Control: no-cache, private\r\n\
         Pragma: no-cache\r\n\
         Age: 0\r\n\
         {extra}\
         Connection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    )
    .into_bytes()
}

/// A line for a stream's start and one for its end, at most one of each a second: a
/// client that opens and closes streams in a loop cannot fill the log.
static STARTED: RateLimit = RateLimit::new(Duration::from_secs(1));
static STOPPED: RateLimit = RateLimit::new(Duration::from_secs(1));

/// Runs a stream to `peer` on `out` until it ends, and logs how it went. With `plain`
/// (`out` is that TCP socket itself), the stream's frames after the first are written by
/// the shared [writer](super::fanout).
pub fn serve(
    out: &mut dyn Write,
    plain: Option<&Arc<TcpStream>>,
    peer: SocketAddr,
    target: &str,
    state: &AppState,
    advance: bool,
) {
    let started = Instant::now();
    let _watch = state.slot.watch();
    log_start(peer, target, state);
    let head = response_head(advance, &extra_headers(state));
    let outcome = match out.write_all(&head).and_then(|()| out.flush()) {
        Err(e) => StreamOutcome {
            sent: 0,
            skipped: 0,
            end: EndReason::Client(e),
        },
        Ok(()) => run(out, plain.map(|s| (&state.fanout, s)), &state.slot, advance),
    };
    let why = describe_end(&outcome.end);
    if let Some(held) = STOPPED.admit() {
        log::info!(
            "{peer} stopped watching after {:.1} s: {} frames sent, {} skipped ({why}){held}",
            started.elapsed().as_secs_f64(),
            outcome.sent,
            outcome.skipped
        );
    }
}

/// Logs a stream's start (at most a line a second, for MJPEG and MP4 streams alike).
pub fn log_start(peer: SocketAddr, target: &str, state: &AppState) {
    if let Some(held) = STARTED.admit() {
        log::info!(
            "{peer} started watching {target} ({} watching){held}",
            state.clients.current()
        );
    }
}

/// The CORS header lines a stream's response head carries, each ending in CRLF.
pub fn extra_headers(state: &AppState) -> String {
    cors_headers(state)
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect()
}

/// How a stream ended, in words for the log.
pub fn describe_end(end: &EndReason) -> String {
    match end {
        EndReason::ServerStopping => "server stopping".to_string(),
        EndReason::Client(e) => match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                "client stopped reading (write timed out)".to_string()
            }
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => "client left".to_string(),
            _ => format!("write failed: {e}"),
        },
    }
}

/// Writes frames from `slot` to `out` (after the response head) until the client goes or
/// the slot closes. With `carrier`, this thread writes the first frame and the writer
/// the rest (see [`super::fanout`]).
pub fn run(
    out: &mut dyn Write,
    carrier: Option<(&Fanout, &Arc<TcpStream>)>,
    slot: &FrameSlot,
    advance: bool,
) -> StreamOutcome {
    let mut sent = 0;
    let mut skipped = 0;
    let end = match write_frames(out, carrier, slot, advance, &mut sent, &mut skipped) {
        Ok(()) => EndReason::ServerStopping,
        Err(e) => EndReason::Client(e),
    };
    StreamOutcome { sent, skipped, end }
}

fn write_frames(
    out: &mut dyn Write,
    mut carrier: Option<(&Fanout, &Arc<TcpStream>)>,
    slot: &FrameSlot,
    advance: bool,
    sent: &mut u64,
    skipped: &mut u64,
) -> io::Result<()> {
    let mut last = None;
    let mut seen = 0;
    loop {
        let frame = match slot.next_after(seen, KEEPALIVE) {
            Next::Frame(frame) => {
                if seen > 0 {
                    *skipped += frame.seq() - seen - 1;
                }
                seen = frame.seq();
                last = Some(frame.clone());
                frame
            }
            Next::TimedOut => match &last {
                Some(frame) => frame.clone(),
                None => continue,
            },
            Next::Closed => return Ok(()),
        };
        let part = if advance {
            frame.advance_part()
        } else {
            frame.classic_part()
        };
        out.write_all(part)?;
        // Nothing on a raw socket; pushes the part out of a buffering writer (TLS).
        out.flush()?;
        *sent += 1;
        if let Some((fanout, socket)) = carrier {
            if let Some(ended) = fanout.carry(socket, advance, seen) {
                *sent += ended.sent;
                *skipped += ended.skipped;
                return ended.end;
            }
            // The writer cannot run: this thread writes the stream itself.
            carrier = None;
        }
    }
}
