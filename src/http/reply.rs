//! How answers go out: header and text helpers, the CORS headers every answer carries
//! when `--allow-origin` is set, and sending with a client that left treated as normal.

use std::io::{self, Cursor};

use tiny_http::{Header, Request, Response, StatusCode};

use super::AppState;

/// A header from ASCII name and value (all of ours are).
pub fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes())
        .expect("header names and values are ASCII")
}

/// A plain-text answer with `code`.
pub fn text(code: u16, body: String) -> Response<Cursor<Vec<u8>>> {
    Response::from_string(body)
        .with_status_code(StatusCode(code))
        .with_header(header("Content-Type", "text/plain; charset=utf-8"))
        .with_header(header("Cache-Control", "no-cache"))
}

/// The CORS headers every answer carries when `--allow-origin` is set.
pub fn cors_headers(state: &AppState) -> Vec<Header> {
    let Some(origin) = &state.allow_origin else {
        return Vec::new();
    };
    let mut headers = vec![header("Access-Control-Allow-Origin", origin)];
    if origin != "*" {
        // The value does not depend on the request's Origin, but caches should still
        // keep answers apart per origin, and credentials may be sent to one origin.
        headers.push(header("Vary", "Origin"));
        if state.guard.is_some() {
            headers.push(header("Access-Control-Allow-Credentials", "true"));
        }
    }
    headers
}

/// Sends `response` with the CORS headers; a client that left meanwhile is not an error
/// worth more than debug.
pub fn send<R: io::Read>(request: Request, response: Response<R>, state: &AppState) {
    let mut response = response;
    for h in cors_headers(state) {
        response.add_header(h);
    }
    let url = request.url().to_string();
    if let Err(e) = request.respond(response) {
        log::debug!("answering {url} failed: {e}");
    }
}

/// The client's address for log lines (never anything it sent).
pub fn peer_name(request: &Request) -> String {
    request
        .remote_addr()
        .map_or_else(|| "a client".to_string(), |a| a.to_string())
}
