//! Starts `tiny_http` on a prepared listener, answers requests and spawns stream threads.

use std::io::{self, Cursor};
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Instant;

use tiny_http::{Header, Request, Response, Server, StatusCode};

use super::routes::{self, Method, Route};
use super::{socket, status, stream, AppState, PAGE};
use crate::frame::{JpegBytes, BOUNDARY};

/// Threads that take requests from `tiny_http` and answer the short ones.
const WORKERS: usize = 4;

/// Stack of a stream thread: the loop needs little, and there may be hundreds.
const STREAM_STACK: usize = 256 * 1024;

/// The running HTTP side.
pub struct HttpServer {
    server: Arc<Server>,
    workers: Vec<JoinHandle<()>>,
    local_addr: SocketAddr,
}

impl HttpServer {
    /// Serves on `listener` (already bound and configured) until [`HttpServer::stop`].
    pub fn start(listener: TcpListener, state: Arc<AppState>) -> io::Result<HttpServer> {
        let local_addr = listener.local_addr()?;
        let server = Server::from_listener(listener, None).map_err(io::Error::other)?;
        let server = Arc::new(server);
        let workers = (0..WORKERS)
            .map(|i| {
                let server = server.clone();
                let state = state.clone();
                thread::Builder::new()
                    .name(format!("http-{i}"))
                    .spawn(move || worker(&server, &state))
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(HttpServer {
            server,
            workers,
            local_addr,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops taking requests; streams end when the frame slot closes.
    pub fn stop(self) {
        for _ in &self.workers {
            self.server.unblock();
        }
        for w in self.workers {
            let _ = w.join();
        }
    }
}

fn worker(server: &Server, state: &Arc<AppState>) {
    loop {
        match server.recv() {
            Ok(request) => handle(request, state),
            Err(e) => {
                if !state.stopping.load(Ordering::SeqCst) {
                    log::error!("the HTTP server stopped taking connections: {e}");
                }
                return;
            }
        }
    }
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes())
        .expect("header names and values are ASCII")
}

fn text(code: u16, body: String) -> Response<Cursor<Vec<u8>>> {
    Response::from_string(body)
        .with_status_code(StatusCode(code))
        .with_header(header("Content-Type", "text/plain; charset=utf-8"))
        .with_header(header("Cache-Control", "no-cache"))
}

/// Sends `response`; a client that left meanwhile is not an error worth more than debug.
fn send<R: io::Read>(request: Request, response: Response<R>) {
    let url = request.url().to_string();
    if let Err(e) = request.respond(response) {
        log::debug!("answering {url} failed: {e}");
    }
}

fn handle(request: Request, state: &Arc<AppState>) {
    let method = routes::method(request.method().as_str());
    if method == Method::Other {
        let response = text(
            405,
            format!(
                "method {} is not allowed: use GET or HEAD\n",
                request.method()
            ),
        )
        .with_header(header("Allow", "GET, HEAD"));
        return send(request, response);
    }
    match routes::route(request.url()) {
        Route::RedirectToPage => {
            let response = Response::empty(StatusCode(301))
                .with_header(header("Location", "/index.html"))
                .with_header(header("Content-Length", "0"));
            send(request, response)
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
            send(request, response)
        }
        Route::Snapshot => match state.slot.latest() {
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
                send(request, response)
            }
            None => send(
                request,
                text(
                    503,
                    "no frame yet: the source has not delivered a picture; try again shortly\n"
                        .into(),
                )
                .with_header(header("Retry-After", "1")),
            ),
        },
        Route::Status => {
            let response = Response::from_string(status::render(state))
                .with_header(header("Content-Type", "application/json"))
                .with_header(header("Cache-Control", "no-cache"));
            send(request, response)
        }
        Route::Favicon => send(request, Response::empty(StatusCode(204))),
        Route::UnknownAction => send(
            request,
            text(
                404,
                "unknown action: use /?action=stream or /?action=snapshot\n".into(),
            ),
        ),
        Route::NotFound => {
            let body = format!(
                "not found: {}\nthis server has /index.html, /stream.mjpg, /snapshot.jpg and /status\n",
                request.url()
            );
            send(request, text(404, body))
        }
        Route::Stream { advance } => start_stream(request, state, advance, method),
    }
}

fn start_stream(request: Request, state: &Arc<AppState>, advance: bool, method: Method) {
    if method == Method::Head {
        let content_type = format!("multipart/x-mixed-replace; boundary={BOUNDARY}");
        let response = Response::empty(StatusCode(200))
            .with_header(header("Content-Type", &content_type))
            .with_header(header("Cache-Control", "no-cache, private"))
            .with_header(header("Pragma", "no-cache"));
        return send(request, response);
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
        );
    };
    let state = state.clone();
    let peer = peer_name(&request);
    let spawned = thread::Builder::new()
        .name("stream".into())
        .stack_size(STREAM_STACK)
        .spawn(move || {
            serve_stream(request, &state, advance);
            drop(place);
        });
    if let Err(e) = spawned {
        // The request was dropped with the closure; tiny_http answers it with a 500.
        log::error!("cannot start a stream thread for {peer}: {e}");
    }
}

fn peer_name(request: &Request) -> String {
    request
        .remote_addr()
        .map_or_else(|| "a client".to_string(), |a| a.to_string())
}

fn serve_stream(request: Request, state: &AppState, advance: bool) {
    let peer = peer_name(&request);
    let url = request.url().to_string();
    let started = Instant::now();
    log::info!(
        "{peer} started watching {url} ({} watching)",
        state.clients.current()
    );
    let peer_addr = request.remote_addr().copied();
    // The head goes through tiny_http's writer, which keeps responses on one connection
    // in order; frames then go straight to the socket when it can be found.
    let mut writer = request.into_writer();
    let head = stream::response_head(advance);
    let outcome = match writer.write_all(&head).and_then(|()| writer.flush()) {
        Err(e) => stream::StreamOutcome {
            sent: 0,
            skipped: 0,
            end: stream::EndReason::Client(e),
        },
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
