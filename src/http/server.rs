//! Starts `tiny_http` on a prepared listener, answers requests and spawns stream threads.

use std::io::{self, Cursor};
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tiny_http::{Request, Response, Server, StatusCode};

use super::reply::{cors_headers, header, peer_name, send, text};
use super::routes::{self, Method, Route};
use super::tls::{self, TlsFiles};
use super::{access, socket, status, stream, AppState, PAGE};
use crate::frame::{JpegBytes, BOUNDARY};

/// Threads that take requests from `tiny_http` and answer the short ones.
const WORKERS: usize = 4;

/// Stack of a stream thread: the loop needs little, and there may be hundreds.
const STREAM_STACK: usize = 256 * 1024;

/// Longest wait for a request before a worker looks again at which server is current.
const RECV_SLICE: Duration = Duration::from_secs(1);

/// Connections waiting this long, without a break, in the accept queue mean that nothing
/// accepts them any more.
const STUCK_QUEUE: Duration = Duration::from_secs(2);

/// The running HTTP side.
pub struct HttpServer {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    local_addr: SocketAddr,
}

/// What the workers share: the listening socket and the `tiny_http` server on it.
///
/// `tiny_http` stops accepting for good after any error from `accept`, and its accept
/// thread dies outright when it cannot duplicate a new connection's descriptor (a full
/// descriptor table). Either way a new `tiny_http` server is started on another handle of
/// the same listening socket, so the port never stops answering: on the error, by the
/// worker that receives it; on the silent death, by a watchdog that sees connections
/// wait in the accept queue for [`STUCK_QUEUE`].
struct Shared {
    listener: TcpListener,
    /// Certificate and key when serving HTTPS, for every server started.
    tls: Option<TlsFiles>,
    current: Mutex<Arc<Server>>,
}

impl Shared {
    fn server(&self) -> Arc<Server> {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces `failed` by a new server unless another worker already did.
    fn replace(&self, failed: &Arc<Server>, stopping: &AtomicBool) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if !Arc::ptr_eq(&current, failed) {
            return;
        }
        // At most one restart a second: while the cause lasts (a full descriptor table),
        // a new server fails at once too.
        let mut pause = Duration::from_secs(1);
        while !stopping.load(Ordering::SeqCst) {
            std::thread::sleep(pause);
            match self
                .listener
                .try_clone()
                .map_err(|e| e.to_string())
                .and_then(|l| tls::server(l, self.tls.as_ref()).map_err(|e| e.to_string()))
            {
                Ok(server) => {
                    log::warn!("the HTTP server is taking connections again");
                    *current = Arc::new(server);
                    return;
                }
                Err(e) => {
                    log::error!("cannot restart the HTTP server yet: {e}");
                    pause = (pause * 2).min(Duration::from_secs(4));
                }
            }
        }
    }
}

impl HttpServer {
    /// Serves on `listener` (already bound and configured, its gate in `state`) until
    /// [`HttpServer::stop`]. With `tls`, it serves HTTPS (and `state.tls` must say so).
    pub fn start(
        listener: TcpListener,
        state: Arc<AppState>,
        tls: Option<TlsFiles>,
    ) -> io::Result<HttpServer> {
        let local_addr = listener.local_addr()?;
        let server = tls::server(listener.try_clone()?, tls.as_ref()).map_err(io::Error::other)?;
        let shared = Arc::new(Shared {
            listener,
            tls,
            current: Mutex::new(Arc::new(server)),
        });
        {
            let shared = shared.clone();
            let stopping = state.stopping.clone();
            thread::Builder::new()
                .name("http-watchdog".into())
                .stack_size(64 * 1024)
                .spawn(move || watchdog(&shared, &stopping))?;
        }
        let workers = (0..WORKERS)
            .map(|i| {
                let shared = shared.clone();
                let state = state.clone();
                thread::Builder::new()
                    .name(format!("http-{i}"))
                    .spawn(move || worker(&shared, &state))
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(HttpServer {
            shared,
            workers,
            local_addr,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops taking requests (the caller has set `stopping`). Workers finish the answer
    /// they are writing, if any, on their own; streams end when the frame slot closes.
    pub fn stop(&self) {
        let server = self.shared.server();
        for _ in &self.workers {
            server.unblock();
        }
    }
}

/// Restarts the server when connections stop being accepted; see [`Shared`].
fn watchdog(shared: &Shared, stopping: &AtomicBool) {
    let tick = Duration::from_millis(250);
    let mut waiting_since: Option<Instant> = None;
    while !stopping.load(Ordering::SeqCst) {
        thread::sleep(tick);
        match crate::net::accept_queue_len(&shared.listener) {
            Err(e) => {
                log::warn!(
                    "cannot watch the accept queue here ({e}): a stuck accept loop will not be restarted"
                );
                return;
            }
            Ok(0) => waiting_since = None,
            Ok(n) => {
                let since = *waiting_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= STUCK_QUEUE {
                    log::error!(
                        "the HTTP server stopped accepting connections ({n} waiting); restarting it"
                    );
                    let stuck = shared.server();
                    shared.replace(&stuck, stopping);
                    waiting_since = None;
                }
            }
        }
    }
}

fn worker(shared: &Shared, state: &Arc<AppState>) {
    while !state.stopping.load(Ordering::SeqCst) {
        let server = shared.server();
        match server.recv_timeout(RECV_SLICE) {
            Ok(Some(request)) => handle(request, state),
            Ok(None) => {}
            Err(e) => {
                if state.stopping.load(Ordering::SeqCst) {
                    return;
                }
                log::error!("the HTTP server stopped taking connections: {e}; restarting it");
                shared.replace(&server, &state.stopping);
            }
        }
    }
}

fn handle(request: Request, state: &Arc<AppState>) {
    let _answering = state.gate.answering(request.remote_addr().copied());
    if access::is_preflight(&request, state) {
        return access::preflight(request, state);
    }
    let method = routes::method(request.method().as_str());
    if method == Method::Other {
        let allow = if state.allow_origin.is_some() {
            "GET, HEAD, OPTIONS"
        } else {
            "GET, HEAD"
        };
        let response = text(
            405,
            format!(
                "method {} is not allowed: use GET or HEAD\n",
                request.method()
            ),
        )
        .with_header(header("Allow", allow));
        return send(request, response, state);
    }
    access::admit(request, state, method, answer);
}

/// Answers a request that may be answered: routes it.
fn answer(request: Request, state: &Arc<AppState>, method: Method) {
    // Checking a password may have moved the answer to another thread: mark it again.
    let _answering = state.gate.answering(request.remote_addr().copied());
    match routes::route(request.url()) {
        Route::RedirectToPage => {
            let response = Response::empty(StatusCode(301))
                .with_header(header("Location", "/index.html"))
                .with_header(header("Content-Length", "0"));
            send(request, response, state)
        }
        Route::Page => {
            let body = PAGE.as_bytes();
            let response = Response::new(
                StatusCode(200),
                vec![
                    header("Content-Type", "text/html; charset=utf-8"),
                    header("Cache-Control", "no-cache"),
                ],
                body,
                Some(body.len()),
                None,
            );
            send(request, response, state)
        }
        Route::Snapshot => match fresh_frame(state) {
            Some(frame) => {
                let len = frame.jpeg().len();
                let response = Response::new(
                    StatusCode(200),
                    vec![
                        header("Content-Type", "image/jpeg"),
                        header("Cache-Control", "no-cache, private"),
                        header("Pragma", "no-cache"),
                    ],
                    Cursor::new(JpegBytes(frame)),
                    Some(len),
                    None,
                );
                send(request, response, state)
            }
            None => send(
                request,
                text(
                    503,
                    "no frame yet: the source has not delivered a picture; try again shortly\n"
                        .into(),
                )
                .with_header(header("Retry-After", "1")),
                state,
            ),
        },
        Route::Status => {
            let response = Response::from_string(status::render(state))
                .with_header(header("Content-Type", "application/json"))
                .with_header(header("Cache-Control", "no-cache"));
            send(request, response, state)
        }
        Route::Favicon => send(request, Response::empty(StatusCode(204)), state),
        Route::UnknownAction => send(
            request,
            text(
                404,
                "unknown action: use /?action=stream or /?action=snapshot\n".into(),
            ),
            state,
        ),
        Route::NotFound => {
            let body = format!(
                "not found: {}\nthis server has /index.html, /stream.mjpg, /snapshot.jpg and /status\n",
                request.url()
            );
            send(request, text(404, body), state)
        }
        Route::Stream { advance } => start_stream(request, state, advance, method),
    }
}

/// The newest frame for a snapshot. A source idle for lack of viewers is asked for a
/// frame, and the answer waits for it (up to a few seconds) rather than sending an old one.
fn fresh_frame(state: &AppState) -> Option<Arc<crate::frame::Frame>> {
    state.slot.want();
    let latest = state.slot.latest();
    if state.source.capturing() {
        return latest;
    }
    let seen = latest.as_ref().map_or(0, |f| f.seq());
    match state.slot.next_after(seen, Duration::from_secs(5)) {
        crate::slot::Next::Frame(f) => Some(f),
        _ => latest,
    }
}

fn start_stream(request: Request, state: &Arc<AppState>, advance: bool, method: Method) {
    if method == Method::Head {
        let content_type = format!("multipart/x-mixed-replace; boundary={BOUNDARY}");
        let response = Response::empty(StatusCode(200))
            .with_header(header("Content-Type", &content_type))
            .with_header(header("Cache-Control", "no-cache, private"))
            .with_header(header("Pragma", "no-cache"));
        return send(request, response, state);
    }
    let Some(place) = state.clients.try_enter() else {
        let max = state.clients.max().unwrap_or(0);
        log::warn!(
            "refused a stream to {}: {max} clients already watching (--max-clients)",
            peer_name(&request)
        );
        let body = format!(
            "too many clients: {max} streams are already running (the server's --max-clients)\n"
        );
        return send(
            request,
            text(503, body).with_header(header("Retry-After", "5")),
            state,
        );
    };
    let state = state.clone();
    let peer = peer_name(&request);
    // Marked before this answer ends, so that the gate never takes the stream's silent
    // client for an idle keep-alive connection.
    let streaming = state.gate.streaming(request.remote_addr().copied());
    let spawned = thread::Builder::new()
        .name("stream".into())
        .stack_size(STREAM_STACK)
        .spawn(move || {
            serve_stream(request, &state, advance);
            drop(place);
            drop(streaming);
        });
    if let Err(e) = spawned {
        // The request was dropped with the closure; tiny_http answers it with a 500.
        log::error!("cannot start a stream thread for {peer}: {e}");
    }
}

fn serve_stream(request: Request, state: &AppState, advance: bool) {
    let peer = peer_name(&request);
    let url = request.url().to_string();
    let started = Instant::now();
    let _watch = state.slot.watch();
    log::info!(
        "{peer} started watching {url} ({} watching)",
        state.clients.current()
    );
    let peer_addr = request.remote_addr().copied();
    // The head goes through tiny_http's writer, which keeps responses on one connection
    // in order; frames then go straight to the socket when it can be found.
    let mut writer = request.into_writer();
    let extra: String = cors_headers(state)
        .iter()
        .map(|h| format!("{}: {}\r\n", h.field, h.value))
        .collect();
    let head = stream::response_head(advance, &extra);
    let outcome = match writer.write_all(&head).and_then(|()| writer.flush()) {
        Err(e) => stream::StreamOutcome {
            sent: 0,
            skipped: 0,
            end: stream::EndReason::Client(e),
        },
        // Under TLS the bytes on the socket are encrypted: only the writer can send.
        Ok(()) if state.tls => stream::run(&mut *writer, &state.slot, advance),
        Ok(()) => match peer_addr.and_then(|p| socket::claim(p, state.local_addr)) {
            Some(sock) => {
                // A stream's client sends nothing more; shutting the read side also
                // releases tiny_http's connection thread, which was waiting on it.
                let _ = sock.shutdown(Shutdown::Read);
                let outcome = stream::run(&mut &sock, &state.slot, advance);
                let _ = sock.shutdown(Shutdown::Both);
                outcome
            }
            None => stream::run(&mut *writer, &state.slot, advance),
        },
    };
    drop(writer);
    let why = match &outcome.end {
        stream::EndReason::ServerStopping => "server stopping".to_string(),
        stream::EndReason::Client(e) => match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                "client stopped reading (write timed out)".to_string()
            }
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => "client left".to_string(),
            _ => format!("write failed: {e}"),
        },
    };
    log::info!(
        "{peer} stopped watching after {:.1} s: {} frames sent, {} skipped ({why})",
        started.elapsed().as_secs_f64(),
        outcome.sent,
        outcome.skipped
    );
}
