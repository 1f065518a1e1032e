//! Decides the answer to one request: refusals of method and credentials, then the
//! route's page, picture, status, controls or stream; and, before that, whether the
//! request has a body to read ([`body_length`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::access::{self, printable};
use super::head::RequestHead;
use super::reply::{Body, Response};
use super::routes::{self, Method, Route};
use super::shares::Share;
use super::{controls, status, webrtc, AppState, PAGE};
use crate::frame::{Frame, BOUNDARY};
use crate::ratelog::{RateLimit, DEFAULT_INTERVAL};
use crate::stats::ClientPlace;
use crate::still::{StillError, STILL_TIMEOUT};

/// One line about refused streams per interval.
static REFUSED_STREAM: RateLimit = RateLimit::new(DEFAULT_INTERVAL);

/// What to do with a request.
pub enum Reply {
    /// Send this answer.
    Answer(Response),
    /// Run a stream on the connection, in the given places.
    Stream {
        kind: StreamKind,
        place: ClientPlace,
        share: Share,
    },
}

/// Which stream a connection runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// `/stream.mjpg`; `advance`: the browser-friendly wire format.
    Mjpeg { advance: bool },
    /// `/stream.mp4`: the live fragmented MP4.
    Mp4,
}

/// How many bytes of body to read before answering `head`: those of a `POST` to a
/// route that takes one, at most [`routes::body_limit`]; 0 for every other request
/// (whose body, if any, is never read: its connection closes after the answer). The
/// refusal, to send before closing, when the body cannot be read.
pub fn body_length(head: &RequestHead) -> Result<usize, Response> {
    let route = routes::route(&head.target);
    if routes::method(&head.method) != Method::Post || !routes::takes_post(route) {
        return Ok(0);
    }
    if head.chunked {
        let body = "chunked request bodies are not accepted: send the body with a Content-Length\n";
        return Err(Response::text(411, body.into()).closing());
    }
    match head.content_length {
        // The value is in the query, or there is none.
        None if matches!(route, Route::SetOption | Route::ResetControls) => Ok(0),
        None => Err(Response::text(
            411,
            "POST needs a Content-Length header (the length of its body)\n".into(),
        )
        .closing()),
        Some(n) if n > routes::body_limit(route) as u64 => Err(Response::text(
            413,
            format!(
                "request body too large: at most {} bytes\n",
                routes::body_limit(route)
            ),
        )
        .closing()),
        Some(n) => Ok(n as usize),
    }
}

/// The reply to `head`, with its `body` (see [`body_length`]), from `peer`.
pub fn answer(head: &RequestHead, body: &[u8], peer: SocketAddr, state: &Arc<AppState>) -> Reply {
    let response = |r| Reply::Answer(r);
    if access::is_preflight(head, state) {
        return response(access::preflight());
    }
    let method = routes::method(&head.method);
    let route = routes::route(&head.target);
    if !routes::takes(route, method) {
        return response(not_allowed(route, &head.method, state));
    }
    if let Err(refusal) = access::admit(head, &peer.to_string(), peer.ip(), state) {
        return response(refusal);
    }
    if routes::changes_camera(route, method) {
        if let Some(why) = access::foreign_page(head, &peer.to_string(), state) {
            return response(if matches!(route, Route::Controls | Route::ResetControls) {
                Response::new(403, Body::Owned(controls::error_body(&why).into_bytes()))
                    .with_header("Content-Type", "application/json")
            } else {
                Response::text(403, format!("{why}\n"))
            });
        }
    }
    match route {
        Route::Controls => {
            let (status, json) = if method == Method::Post {
                controls::post(&state.controls, body)
            } else {
                controls::get(&state.controls)
            };
            response(
                Response::new(status, Body::Owned(json.into_bytes()))
                    .with_header("Content-Type", "application/json")
                    .with_header("Cache-Control", "no-cache"),
            )
        }
        Route::ResetControls => {
            let (status, json) = controls::reset(&state.controls);
            response(
                Response::new(status, Body::Owned(json.into_bytes()))
                    .with_header("Content-Type", "application/json")
                    .with_header("Cache-Control", "no-cache"),
            )
        }
        Route::SetOption => {
            let query = head.target.split_once('?').map_or("", |(_, q)| q);
            let (status, text) = controls::option(&state.controls, query);
            response(Response::text(status, text))
        }
        Route::RedirectToPage => response(
            Response::new(301, Body::Empty).with_header("Location", "/index.html"),
        ),
        Route::Page => response(
            Response::new(200, Body::Static(PAGE.as_bytes()))
                .with_header("Content-Type", "text/html; charset=utf-8")
                .with_header("Cache-Control", "no-cache"),
        ),
        Route::Snapshot if routes::wants_full(head.target.split_once('?').map_or("", |q| q.1)) => {
            response(full_snapshot(state, method))
        }
        Route::Snapshot => match fresh_frame(state) {
            Some(frame) => response(
                Response::new(200, Body::Jpeg(frame))
                    .with_header("Content-Type", "image/jpeg")
                    .with_header("Cache-Control", "no-cache, private")
                    .with_header("Pragma", "no-cache"),
            ),
            None => response(
                Response::text(
                    503,
                    "no frame yet: the source has not delivered a picture; try again shortly\n"
                        .into(),
                )
                .with_header("Retry-After", "1"),
            ),
        },
        Route::Status => response(
            Response::new(200, Body::Owned(status::render(state).into_bytes()))
                .with_header("Content-Type", "application/json")
                .with_header("Cache-Control", "no-cache"),
        ),
        Route::Favicon => response(Response::new(204, Body::Empty)),
        Route::UnknownAction => response(Response::text(
            404,
            "unknown action: use /?action=stream or /?action=snapshot\n".into(),
        )),
        Route::NotFound => response(Response::text(
            404,
            format!(
                "not found: {}\nthis server has /index.html, /stream.mjpg, /snapshot.jpg, /status and /controls\n",
                printable(&head.target)
            ),
        )),
        Route::Stream { advance } => stream(peer, state, StreamKind::Mjpeg { advance }, method),
        Route::Mp4Stream if state.h264.is_none() => response(Response::text(
            404,
            "no H.264 here: this binary was built without the h264 feature; \
             /stream.mjpg serves the same pictures as MJPEG\n"
                .into(),
        )),
        Route::Mp4Stream => stream(peer, state, StreamKind::Mp4, method),
        Route::Whep => response(webrtc::whep_offer(state, head.content_type.as_deref(), body)),
        Route::WhepSession => response(webrtc::whep_end(state, &head.target)),
        Route::WebrtcJson if method == Method::Post => response(webrtc::json(state, body)),
        // A browser opening camera-streamer's WebRTC address gets the page, which
        // plays WebRTC where it can.
        Route::WebrtcJson => response(
            Response::new(302, Body::Empty).with_header("Location", "/index.html"),
        ),
    }
}

/// `/snapshot.jpg?full=1`: a still at the camera's full resolution, taken between two
/// frames of the stream (see [`crate::still`]).
/// The `405` for `method` (as sent, `name`) on `route`, its `Allow` header listing what
/// the route takes (and `OPTIONS` where pages of other sites may ask).
fn not_allowed(route: Route, name: &str, state: &AppState) -> Response {
    let allowed = routes::allowed_methods(route);
    let body = match route {
        Route::ResetControls => "a reset changes the controls: use POST /controls/reset\n".into(),
        Route::SetOption if name == "HEAD" => {
            "HEAD does not change controls: use GET or POST /option?name=value\n".into()
        }
        _ => format!(
            "method {} is not allowed here: use {}\n",
            printable(name),
            allowed.replace(", ", " or ")
        ),
    };
    let options = if state.allow_origin.is_some() {
        ", OPTIONS"
    } else {
        ""
    };
    Response::text(405, body).with_header("Allow", &format!("{allowed}{options}"))
}

fn full_snapshot(state: &AppState, method: Method) -> Response {
    let jpeg_headers = |r: Response| {
        r.with_header("Content-Type", "image/jpeg")
            .with_header("Cache-Control", "no-cache, private")
            .with_header("Pragma", "no-cache")
    };
    if method == Method::Head {
        // Taking a still for its length alone would stop the stream for nothing.
        return jpeg_headers(Response::new(200, Body::Empty).without_length());
    }
    // A camera that sleeps for lack of viewers opens its still desk when it wakes.
    let _ = fresh_frame(state);
    match state.slot.stills().take(STILL_TIMEOUT) {
        Ok(still) => jpeg_headers(Response::new(200, Body::Owned(still.jpeg.clone()))).with_header(
            "X-Picture-Size",
            &format!("{}x{}", still.width, still.height),
        ),
        Err(e @ StillError::Unavailable) => Response::text(501, format!("{e}\n")),
        Err(e) => {
            Response::text(503, format!("{e}; try again shortly\n")).with_header("Retry-After", "2")
        }
    }
}

/// The newest frame for a snapshot. A source idle for lack of viewers is asked for a
/// frame, and the answer waits for it (up to a few seconds) rather than sending an old one.
fn fresh_frame(state: &AppState) -> Option<Arc<Frame>> {
    // Read before asking: the request may wake the source at once, before its first frame.
    let running = state.source.capturing();
    state.slot.want();
    let latest = state.slot.latest();
    // A source that is running but has no frame (it is just going to sleep, or just
    // starting) is waited for too, rather than answered 503 at once.
    if running && latest.is_some() {
        return latest;
    }
    let seen = latest.as_ref().map_or(0, |f| f.seq());
    match state.slot.next_after(seen, Duration::from_secs(5)) {
        crate::slot::Next::Frame(f) => Some(f),
        _ => latest,
    }
}

/// A stream's places, or the answer refusing it.
fn stream(peer: SocketAddr, state: &Arc<AppState>, kind: StreamKind, method: Method) -> Reply {
    if method == Method::Head {
        let content_type = match kind {
            StreamKind::Mjpeg { .. } => format!("multipart/x-mixed-replace; boundary={BOUNDARY}"),
            StreamKind::Mp4 => "video/mp4".to_string(),
        };
        return Reply::Answer(
            Response::new(200, Body::Empty)
                .with_header("Content-Type", &content_type)
                .with_header("Cache-Control", "no-cache, private")
                .with_header("Pragma", "no-cache")
                .without_length(),
        );
    }
    let Some(share) = state.shares.try_take(peer.ip()) else {
        let max = state.shares.max().unwrap_or(0);
        return refused_stream(
            peer,
            format!("it already watches {max} streams (--max-clients-per-address)"),
            format!("too many streams from this address: {max} already run (the server's --max-clients-per-address)\n"),
        );
    };
    let Some(place) = state.clients.try_enter() else {
        let max = state.clients.max().unwrap_or(0);
        return refused_stream(
            peer,
            format!("{max} clients already watching (--max-clients)"),
            format!("too many clients: {max} streams are already running (the server's --max-clients)\n"),
        );
    };
    Reply::Stream { kind, place, share }
}

/// A stream refused for a limit: `why` for the log, `body` for the client.
fn refused_stream(peer: SocketAddr, why: String, body: String) -> Reply {
    crate::warn_limited!(REFUSED_STREAM, "refused a stream to {peer}: {why}");
    Reply::Answer(Response::text(503, body).with_header("Retry-After", "5"))
}
