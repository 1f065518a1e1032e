//! What goes back to a client: a status, header fields and a body with its length,
//! written as one HTTP/1.1 answer; and the CORS header fields every answer carries when
//! `--allow-origin` is set.

use std::io::{self, Write};
use std::sync::Arc;
use std::time::SystemTime;

use super::AppState;
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
            http_date(SystemTime::now())
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
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
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

/// `time` as an HTTP date (RFC 9110, 5.6.7): `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(time: SystemTime) -> String {
    let secs = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rest = secs % 86_400;
    // 1970-01-01 was a Thursday.
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let (year, month, day) = civil_from_days(days as i64);
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(month - 1) as usize];
    format!(
        "{weekday}, {day:02} {month} {year} {:02}:{:02}:{:02} GMT",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// Year, month (1-12) and day (1-31) of a count of days since 1970-01-01, in the
/// proleptic Gregorian calendar (counted in 400-year eras from 0000-03-01).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn http_dates() {
        let at = |s: u64| http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(at(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(at(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(at(1_796_324_399), "Thu, 03 Dec 2026 18:59:59 GMT");
    }
}
