//! Accepts connections and gives each a thread of its own, which reads its requests,
//! answers them, and runs its stream if it asks for one.
//!
//! A thread per connection keeps every answer independent of every other client: a
//! stream, a slow reader, a pipelined request or a password check holds up only its own
//! connection. What bounds the threads: [`super::waiting`] for connections still
//! sending a head, `--max-clients` (and its share per address) for streams, the auth
//! module's limits for password checks, and [`Live`] for all of them together, past which
//! a new connection waits in the kernel's queue for up to [`FULL_WAIT`], then is answered
//! 503 and closed.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::socket::{send, MsgFlags};

use super::answer::body_length;
use super::answer::{answer, Reply, StreamKind};
use super::conn::{BodyFailure, Conn, Next, Transport};
use super::tls::{Acceptor, TlsFiles};
use super::waiting::{has_unread_bytes, Closed};
use super::{mp4, stream, AppState};
use crate::ratelog::{RateLimit, DEFAULT_INTERVAL};

/// Stack of a connection's thread: a request head's parse, a password hash or a
/// stream's loop each need little, and there may be hundreds of connections.
const CONN_STACK: usize = 256 * 1024;

/// Connections being answered at once (besides those waiting for a head and streams).
const ANSWERING: usize = 64;

/// The longest pause after `accept` fails (a full descriptor table), doubling from
/// [`ACCEPT_PAUSE_MIN`].
const ACCEPT_PAUSE_MAX: Duration = Duration::from_secs(1);
const ACCEPT_PAUSE_MIN: Duration = Duration::from_millis(50);

/// One line per interval for each problem of the accepting thread.
static ACCEPT_FAILED: RateLimit = RateLimit::new(DEFAULT_INTERVAL);
static TOO_MANY: RateLimit = RateLimit::new(DEFAULT_INTERVAL);
static NO_THREAD: RateLimit = RateLimit::new(DEFAULT_INTERVAL);

/// How long the accepting thread waits for a place before it answers 503.
const FULL_WAIT: Duration = Duration::from_secs(1);

/// The answer to a connection past the server's connection limit.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// The running HTTP side.
pub struct HttpServer {
    listener: Arc<TcpListener>,
    local_addr: SocketAddr,
}

/// Connections at once above which their end counts as the end of a burst.
const BURST: usize = 32;

/// Counts connection threads; see the module docs.
struct Live {
    now: AtomicUsize,
    max: usize,
    /// The most at once since memory was last given back.
    peak: AtomicUsize,
}

/// A connection thread's place in [`Live`].
struct LivePlace(Arc<Live>);

impl Drop for LivePlace {
    fn drop(&mut self) {
        let now = self.0.now.fetch_sub(1, Ordering::SeqCst) - 1;
        // A burst of connections is over when fewer than a quarter of its peak remain:
        // the C library keeps what their threads freed for later unless told otherwise.
        let peak = self.0.peak.load(Ordering::SeqCst);
        if peak >= BURST
            && now <= peak / 4
            && self
                .0
                .peak
                .compare_exchange(peak, now, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            give_back_freed_memory();
        }
    }
}

/// Returns the memory freed in the C library's heaps to the system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn give_back_freed_memory() {
    // SAFETY: malloc_trim only walks glibc's own heaps under their locks; it takes and
    // returns plain integers.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}

/// musl's allocator gives freed memory back by itself.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn give_back_freed_memory() {}

impl HttpServer {
    /// Serves on `listener` (bound and configured by [`crate::net::listen`]) until the
    /// state's `stopping` is set and [`HttpServer::stop`] called. With `tls`, serves
    /// HTTPS (and `state.tls` must say so).
    pub fn start(
        listener: TcpListener,
        state: Arc<AppState>,
        tls: Option<TlsFiles>,
    ) -> io::Result<HttpServer> {
        let local_addr = listener.local_addr()?;
        let acceptor = match &tls {
            Some(files) => Some(Arc::new(Acceptor::new(files).map_err(io::Error::other)?)),
            None => None,
        };
        let listener = Arc::new(listener);
        let streams = state.clients.max().unwrap_or(1000);
        let live = Arc::new(Live {
            now: AtomicUsize::new(0),
            max: state.patience.pending + streams + ANSWERING,
            peak: AtomicUsize::new(0),
        });
        {
            let listener = listener.clone();
            thread::Builder::new()
                .name("http-accept".into())
                .stack_size(128 * 1024)
                .spawn(move || accept_loop(&listener, &state, acceptor, &live))?;
        }
        Ok(HttpServer {
            listener,
            local_addr,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting (the caller has set `stopping`). Answers being written finish on
    /// their own; streams end when the frame slot closes.
    pub fn stop(&self) {
        // On Linux, shutting a listening socket down wakes a thread blocked in accept.
        // SAFETY: shutdown(2) on the descriptor `self.listener` owns, borrowed for the call.
        unsafe {
            nix::libc::shutdown(self.listener.as_raw_fd(), nix::libc::SHUT_RDWR);
        }
    }
}

fn accept_loop(
    listener: &TcpListener,
    state: &Arc<AppState>,
    acceptor: Option<Arc<Acceptor>>,
    live: &Arc<Live>,
) {
    let mut pause = ACCEPT_PAUSE_MIN;
    while !state.stopping.load(Ordering::SeqCst) {
        // At the limit, the next connection waits in the kernel's queue a moment: in a
        // burst (idle connections all arriving when the kernel stops holding them) the
        // places come free as fast as the waiting connections are shut out.
        let full_since = Instant::now();
        while live.now.load(Ordering::SeqCst) >= live.max
            && full_since.elapsed() < FULL_WAIT
            && !state.stopping.load(Ordering::SeqCst)
        {
            thread::sleep(Duration::from_millis(5));
        }
        let (socket, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) => {
                if state.stopping.load(Ordering::SeqCst) {
                    return;
                }
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                ) {
                    continue;
                }
                // A full descriptor table, or memory: the connection waits in the queue
                // until something is freed.
                crate::warn_limited!(
                    ACCEPT_FAILED,
                    "cannot accept connections: {e}; the server tries again, up to every {} ms",
                    ACCEPT_PAUSE_MAX.as_millis()
                );
                thread::sleep(pause);
                pause = (pause * 2).min(ACCEPT_PAUSE_MAX);
                continue;
            }
        };
        if pause > ACCEPT_PAUSE_MIN {
            log::warn!("accepting connections again");
            pause = ACCEPT_PAUSE_MIN;
        }
        let accepted = Instant::now();
        // A connection that has sent nothing (it waited out the kernel's hold for its
        // first byte) while the waiting connections are at their limit would only take
        // the place of another silent one: close it here, without a thread.
        if state.waiting.len() >= state.patience.pending && !has_unread_bytes(&socket) {
            state.waiting.count(Closed::Excess);
            continue;
        }
        if live.now.fetch_add(1, Ordering::SeqCst) >= live.max {
            live.now.fetch_sub(1, Ordering::SeqCst);
            let _ = send(
                socket.as_raw_fd(),
                BUSY,
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
            );
            crate::warn_limited!(
                TOO_MANY,
                "refused a connection: {} already open (--max-pending, --max-clients and {ANSWERING} being answered)",
                live.max
            );
            continue;
        }
        live.peak
            .fetch_max(live.now.load(Ordering::SeqCst), Ordering::SeqCst);
        let place = LivePlace(live.clone());
        let state2 = state.clone();
        let acceptor = acceptor.clone();
        let spawned = thread::Builder::new()
            .name("http-conn".into())
            .stack_size(CONN_STACK)
            .spawn(move || {
                serve(socket, peer, accepted, &state2, acceptor.as_deref());
                drop(place);
            });
        if let Err(e) = spawned {
            // The closure, with the connection and its place, is dropped.
            crate::warn_limited!(NO_THREAD, "cannot start a thread for a connection: {e}");
        }
    }
}

/// Serves one connection until it closes.
fn serve(
    socket: TcpStream,
    peer: SocketAddr,
    accepted: Instant,
    state: &Arc<AppState>,
    acceptor: Option<&Acceptor>,
) {
    let socket = Arc::new(socket);
    let io = match acceptor {
        None => Transport::Plain(socket.clone()),
        Some(acceptor) => match acceptor.wrap(socket.clone()) {
            Ok(tls) => Transport::Tls(Box::new(tls)),
            Err(e) => {
                log::debug!("cannot start TLS with {peer}: {e}");
                return;
            }
        },
    };
    let mut conn = Conn::new(io, socket, peer, accepted);
    loop {
        let head = match conn.next_request(&state.patience, &state.waiting) {
            Next::Request(head) => head,
            Next::Gone => return,
            Next::Refused(refusal) => {
                let (status, _) = refusal.status();
                log::debug!("refused a request from {peer}: {status}");
                let response =
                    super::reply::Response::text(status, refusal.explanation().into()).closing();
                let _ = response.write_to(&mut conn.io, false, false, state);
                return conn.finish(true);
            }
        };
        let head_only = head.method == "HEAD";
        let body = match body_length(&head) {
            Ok(0) => Vec::new(),
            Ok(len) => {
                match conn.read_body(len, head.expect_continue, &state.patience, &state.waiting) {
                    Ok(body) => body,
                    Err(BodyFailure::Gone) => return,
                    Err(BodyFailure::Timeout) => {
                        log::debug!("refused a request from {peer}: its body came too slowly");
                        let body =
                            "request body not received in time (the server's --header-timeout)\n";
                        let response = super::reply::Response::text(408, body.into()).closing();
                        let _ = response.write_to(&mut conn.io, false, false, state);
                        return conn.finish(true);
                    }
                }
            }
            Err(refusal) => {
                let _ = refusal.write_to(&mut conn.io, false, false, state);
                return conn.finish(true);
            }
        };
        // A body read here leaves the connection ready for its next request.
        let unread_body = head.has_body && body.is_empty();
        match answer(&head, &body, peer, state) {
            Reply::Answer(response) => {
                let keep = head.keep_alive
                    && !unread_body
                    && !response.closes()
                    && !state.stopping.load(Ordering::SeqCst);
                if response
                    .write_to(&mut conn.io, head_only, keep, state)
                    .is_err()
                {
                    return;
                }
                if !keep {
                    return conn.finish(unread_body);
                }
            }
            Reply::Stream { kind, place, share } => {
                let target = super::access::printable(&head.target);
                conn.stop_reading();
                match kind {
                    StreamKind::Mjpeg { advance } => {
                        let plain = matches!(conn.io, Transport::Plain(_)).then_some(&conn.socket);
                        stream::serve(&mut conn.io, plain, peer, &target, state, advance);
                    }
                    StreamKind::Mp4 => mp4::serve(&mut conn.io, peer, &target, state),
                }
                drop(place);
                drop(share);
                return conn.finish(false);
            }
        }
    }
}
