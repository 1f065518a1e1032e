//! What goes back to a client: a status, header fields and a body with its length,
//! written as one HTTP/1.1 answer; and the CORS header fields every answer carries when
//! `--allow-origin` is set.

use std::io::{self, Write};
use std::sync::Arc;

use super::AppState;
use crate::clock::Utc;
use crate::frame::Frame;

/// The body of an answer.
pub enum Body {
    Empty,
    Static(&'static [u8]),
    Owned(Vec<u8>),
    /// A JPEG frame, sent from the frame itself (no copy).
    Jpeg(Arc<Frame>),
}

impl Body {
    fn bytes(&self) -> &[u8] {
        match self {
            Body::Empty => &[],
            Body::Static(b) => b,
            Body::Owned(b) => b,
            Body::Jpeg(f) => f.jpeg(),
        }
    }
}

/// An answer to one request.
pub struct Response {
    pub status: u16,
    headers: Vec<(&'static str, String)>,
    body: Body,
    /// The connection closes after this answer (the server's choice).
    close: bool,
    /// No `Content-Length`: the answer to `HEAD` of a stream, whose `GET` has none.
    no_length: bool,
}

impl Response {
    pub fn new(status: u16, body: Body) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body,
            close: false,
            no_length: false,
        }
    }

    /// A plain-text answer with `status`.
    pub fn text(status: u16, body: String) -> Response {
        Response::new(status, Body::Owned(body.into_bytes()))
            .with_header("Content-Type", "text/plain; charset=utf-8")
            .with_header("Cache-Control", "no-cache")
    }

    pub fn with_header(mut self, name: &'static str, value: &str) -> Response {
        self.headers.push((name, value.to_string()));
        self
    }

    /// The connection is closed after this answer.
    pub fn closing(mut self) -> Response {
        self.close = true;
        self
    }

    /// Sent without `Content-Length` (and the connection closed after it).
    pub fn without_length(mut self) -> Response {
        self.no_length = true;
        self.close = true;
        self
    }

    /// True when the connection must close after this answer.
    pub fn closes(&self) -> bool {
        self.close
    }

    /// Writes the answer to `out`; `head_only` for `HEAD`; `keep_alive`: the connection
    /// stays open after it (said in the header for HTTP/1.0 clients, who ask for it).
    pub fn write_to(
        &self,
        out: &mut dyn Write,
        head_only: bool,
        keep_alive: bool,
        state: &AppState,
    ) -> io::Result<()> {
        let body = self.body.bytes();
        let mut head = Vec::with_capacity(256);
        write!(
            head,
            "HTTP/1.1 {} {}\r\nServer: picam-stream/{}\r\nDate: {}\r\n",
            self.status,
            reason(self.status),
            env!("CARGO_PKG_VERSION"),
            Utc::now().http_date()
        )?;
        for (name, value) in self.headers.iter().chain(cors_headers(state).iter()) {
            write!(head, "{name}: {value}\r\n")?;
        }
        if !self.no_length {
            write!(head, "Content-Length: {}\r\n", body.len())?;
        }
        let connection = if keep_alive && !self.close {
            "keep-alive"
        } else {
            "close"
        };
        write!(head, "Connection: {connection}\r\n\r\n")?;
        if head_only || body.is_empty() {
            out.write_all(&head)?;
        } else if body.len() <= 16 * 1024 {
            // Small answers in one write: one packet for the page, status and errors.
            head.extend_from_slice(body);
            out.write_all(&head)?;
        } else {
            out.write_all(&head)?;
            out.write_all(body)?;
        }
        out.flush()
    }
}

/// The reason phrase of the status codes this server sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// The CORS header fields every answer carries when `--allow-origin` is set.
pub fn cors_headers(state: &AppState) -> Vec<(&'static str, String)> {
    let Some(origin) = &state.allow_origin else {
        return Vec::new();
    };
    let mut headers = vec![("Access-Control-Allow-Origin", origin.clone())];
    if origin != "*" {
        // The value does not depend on the request's Origin, but caches should still
        // keep answers apart per origin, and credentials may be sent to one origin.
        headers.push(("Vary", "Origin".into()));
        if state.guard.is_some() {
            headers.push(("Access-Control-Allow-Credentials", "true".into()));
        }
    }
    headers
}
