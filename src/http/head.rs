//! Reads one HTTP/1.x request head from the bytes a client has sent so far.
//!
//! A pure function of a byte buffer, so that every way a head can be wrong is decided in
//! one place, tested here and fuzzed (`fuzz/fuzz_targets/http_head.rs`). The parsing of
//! the request line and header fields is `httparse`'s; this module adds what the server
//! needs on top: the size limit, the HTTP version (1.0 and 1.1 only), the few headers the
//! server reads, and the refusals that keep requests unambiguous (a body whose length is
//! given twice, or both by length and by chunks).

/// Header fields a request may carry; more is refused as too large.
pub const MAX_HEADERS: usize = 64;

/// A request head, with only what the server uses of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The method as sent (case matters: `get` is not `GET`).
    pub method: String,
    /// The request target as sent: path and query.
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    /// The `Authorization` value, if any.
    pub authorization: Option<String>,
    /// The client asked to keep the connection open after the answer (HTTP/1.1 unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`).
    pub keep_alive: bool,
    /// The request announces a body (`Content-Length` above 0, or `Transfer-Encoding`).
    /// The server reads bodies only where a route takes one (`POST /controls`); any
    /// other connection with a body is closed after the answer.
    pub has_body: bool,
    /// The `Content-Length` value, if given.
    pub content_length: Option<u64>,
    /// The body comes in chunks (`Transfer-Encoding`), which the server does not read.
    pub chunked: bool,
    /// `Expect: 100-continue`: the client waits for a `100 Continue` before its body.
    pub expect_continue: bool,
    /// The `Host` value, if any: the name the client reached the server by.
    pub host: Option<String>,
    /// The `Origin` value, if any: the site of the page that made a browser's request.
    pub origin: Option<String>,
    /// The `Sec-Fetch-Site` value, if any: a browser's word on whether the page that made
    /// the request is this server's own (`same-origin`), or another site's.
    pub fetch_site: Option<String>,
    /// The `Content-Type` value, if any (the form of a body: `application/sdp` for WHEP).
    pub content_type: Option<String>,
}

/// What the bytes so far amount to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A complete head, and how many bytes of the buffer it took.
    Complete(RequestHead, usize),
    /// The head is not complete yet, and may still grow.
    Partial,
    /// The head can never be answered normally: say why, then close.
    Refused(Refusal),
}

/// Why a request head is refused; each has its status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not a request line and header fields as HTTP/1.x writes them.
    Malformed,
    /// An HTTP version other than 1.0 and 1.1 (HTTP/2's preface among them).
    Version,
    /// Larger than the limit, or more than [`MAX_HEADERS`] header fields.
    TooLarge,
    /// `Content-Length` twice with different values, not a number, or beside
    /// `Transfer-Encoding`: the end of the request would be ambiguous.
    AmbiguousLength,
    /// The head took longer than the server waits for one.
    Timeout,
}

impl Refusal {
    /// The status code and reason phrase of the answer.
    pub fn status(self) -> (u16, &'static str) {
        match self {
            Refusal::Malformed | Refusal::AmbiguousLength => (400, "Bad Request"),
            Refusal::Version => (505, "HTTP Version Not Supported"),
            Refusal::TooLarge => (431, "Request Header Fields Too Large"),
            Refusal::Timeout => (408, "Request Timeout"),
        }
    }

    /// The one-line explanation sent as the answer's body.
    pub fn explanation(self) -> &'static str {
        match self {
            Refusal::Malformed => "bad request: not an HTTP/1.1 request head\n",
            Refusal::Version => "this server speaks HTTP/1.0 and HTTP/1.1 only\n",
            Refusal::TooLarge => "request head too large (the server's --max-header-bytes)\n",
            Refusal::AmbiguousLength => {
                "bad request: the body's length is given twice or in two ways\n"
            }
            Refusal::Timeout => {
                "request head not received in time (the server's --header-timeout)\n"
            }
        }
    }
}

/// Reads the head at the start of `buf`, which may hold at most `limit` bytes of head.
///
/// Only the first `limit` bytes are looked at, and a decision once made is never changed
/// by more bytes (the fuzz target checks both): what a connection decides does not
/// depend on how the client's bytes were cut into packets.
pub fn parse(buf: &[u8], limit: usize) -> Parsed {
    let buf = &buf[..buf.len().min(limit)];
    // Blank lines before a request line are allowed (RFC 9112, 2.2); httparse skips them.
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut fields);
    let status = match request.parse(buf) {
        Ok(status) => status,
        Err(httparse::Error::TooManyHeaders) => return Parsed::Refused(Refusal::TooLarge),
        Err(_) => return unparsed(buf, limit),
    };
    let len = match status {
        httparse::Status::Partial => {
            return if buf.len() >= limit {
                Parsed::Refused(Refusal::TooLarge)
            } else {
                Parsed::Partial
            }
        }
        httparse::Status::Complete(len) => len,
    };
    if len > limit {
        return Parsed::Refused(Refusal::TooLarge);
    }
    let (Some(method), Some(target), Some(minor)) = (request.method, request.path, request.version)
    else {
        return Parsed::Refused(Refusal::Malformed);
    };
    let mut authorization = None;
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut close = false;
    let mut keep = false;
    let mut expect_continue = false;
    let (mut host, mut origin, mut fetch_site, mut content_type) = (None, None, None, None);
    for field in request.headers.iter() {
        let name = field.name;
        if name.eq_ignore_ascii_case("content-length") {
            let Some(n) = std::str::from_utf8(field.value)
                .ok()
                .map(str::trim)
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
            else {
                return Parsed::Refused(Refusal::AmbiguousLength);
            };
            if length.is_some_and(|l| l != n) {
                return Parsed::Refused(Refusal::AmbiguousLength);
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = true;
        } else if name.eq_ignore_ascii_case("authorization") {
            // Only one: two could be read differently by a proxy in front.
            if authorization.is_some() {
                return Parsed::Refused(Refusal::Malformed);
            }
            authorization = Some(String::from_utf8_lossy(field.value).into_owned());
        } else if let Some(slot) = [
            ("host", &mut host),
            ("origin", &mut origin),
            ("sec-fetch-site", &mut fetch_site),
            ("content-type", &mut content_type),
        ]
        .into_iter()
        .find_map(|(n, slot)| name.eq_ignore_ascii_case(n).then_some(slot))
        {
            // Only one of each: with two, which site asked would be a guess.
            if slot.is_some() {
                return Parsed::Refused(Refusal::Malformed);
            }
            *slot = Some(String::from_utf8_lossy(field.value.trim_ascii()).into_owned());
        } else if name.eq_ignore_ascii_case("expect") {
            expect_continue |= field
                .value
                .trim_ascii()
                .eq_ignore_ascii_case(b"100-continue");
        } else if name.eq_ignore_ascii_case("connection") {
            for token in field.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                close |= token.eq_ignore_ascii_case(b"close");
                keep |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    if chunked && length.is_some() {
        return Parsed::Refused(Refusal::AmbiguousLength);
    }
    let keep_alive = !close && (minor == 1 || keep);
    Parsed::Complete(
        RequestHead {
            method: method.to_string(),
            target: target.to_string(),
            minor,
            authorization,
            keep_alive,
            has_body: chunked || length.is_some_and(|n| n > 0),
            content_length: length,
            chunked,
            expect_continue,
            host,
            origin,
            fetch_site,
            content_type,
        },
        len,
    )
}

/// What a head httparse refused deserves. A well-formed request line of another HTTP
/// version (`GET / HTTP/2.0`, `PRI * HTTP/2.0`) gets 505 rather than 400, which can be
/// told only once the line is complete; until then a line of printable characters may
/// still be one.
fn unparsed(buf: &[u8], limit: usize) -> Parsed {
    let end = buf.iter().position(|&b| b == b'\n');
    let line = &buf[..end.unwrap_or(buf.len())];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().any(|&b| b != b' ' && !b.is_ascii_graphic()) {
        return Parsed::Refused(Refusal::Malformed);
    }
    if end.is_none() {
        return if buf.len() >= limit {
            Parsed::Refused(Refusal::TooLarge)
        } else {
            Parsed::Partial
        };
    }
    let mut words = line.split(|&b| b == b' ');
    let (Some(_), Some(_), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Parsed::Refused(Refusal::Malformed);
    };
    let other_version = match version.strip_prefix(b"HTTP/") {
        Some(v) => {
            !v.is_empty()
                && v[0].is_ascii_digit()
                && v.iter().all(|b| b.is_ascii_digit() || *b == b'.')
                && v != b"1.0"
                && v != b"1.1"
        }
        None => false,
    };
    Parsed::Refused(if other_version {
        Refusal::Version
    } else {
        Refusal::Malformed
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(text: &str) -> (RequestHead, usize) {
        match parse(text.as_bytes(), 16 * 1024) {
            Parsed::Complete(head, len) => (head, len),
            other => panic!("{text:?}: {other:?}"),
        }
    }

    fn refused(text: &[u8]) -> Refusal {
        match parse(text, 1024) {
            Parsed::Refused(r) => r,
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(text)),
        }
    }

    #[test]
    fn reads_a_request_and_what_follows_it() {
        let text = "GET /status?x=1 HTTP/1.1\r\nHost: a\r\nAuthorization: Basic YTpi\r\n\r\nGET /";
        let (head, len) = complete(text);
        assert_eq!(head.method, "GET");
        assert_eq!(head.target, "/status?x=1");
        assert_eq!(head.minor, 1);
        assert_eq!(head.authorization.as_deref(), Some("Basic YTpi"));
        assert!(head.keep_alive);
        assert!(!head.has_body);
        assert!(!head.expect_continue);
        assert_eq!(&text[len..], "GET /");
        let (post, _) = complete(
            "POST /controls HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 9\r\n\r\n",
        );
        assert!(post.expect_continue && post.has_body);
        assert_eq!(post.content_length, Some(9));
    }

    #[test]
    fn reads_where_a_browser_request_comes_from_once() {
        let (head, _) = complete(
            "POST /controls HTTP/1.1\r\nhost: pi.local:8000\r\nOrigin:  http://pi.local:8000 \r\n\
             Sec-Fetch-Site: same-origin\r\n\r\n",
        );
        assert_eq!(head.host.as_deref(), Some("pi.local:8000"));
        assert_eq!(head.origin.as_deref(), Some("http://pi.local:8000"));
        assert_eq!(head.fetch_site.as_deref(), Some("same-origin"));
        let (plain, _) = complete("GET / HTTP/1.0\r\n\r\n");
        assert_eq!(
            (plain.host, plain.origin, plain.fetch_site),
            (None, None, None)
        );
        for twice in ["Host: a\r\nHost: b", "Origin: null\r\norigin: null"] {
            let text = format!("GET / HTTP/1.1\r\n{twice}\r\n\r\n");
            assert_eq!(refused(text.as_bytes()), Refusal::Malformed, "{twice}");
        }
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection() {
        assert!(!complete("GET / HTTP/1.0\r\n\r\n").0.keep_alive);
        assert!(
            complete("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
                .0
                .keep_alive
        );
        assert!(
            !complete("GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n")
                .0
                .keep_alive
        );
    }

    #[test]
    fn bare_line_feeds_end_a_head() {
        let (head, len) = complete("GET /status HTTP/1.1\nHost: a\n\n");
        assert_eq!(head.target, "/status");
        assert_eq!(len, 30);
    }

    #[test]
    fn partial_heads_wait_until_the_limit() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\nHost:", 1024), Parsed::Partial);
        assert_eq!(parse(b"", 1024), Parsed::Partial);
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(2000));
        assert_eq!(
            parse(long.as_bytes(), 1024),
            Parsed::Refused(Refusal::TooLarge)
        );
        let done = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(2000));
        assert_eq!(
            parse(done.as_bytes(), 1024),
            Parsed::Refused(Refusal::TooLarge)
        );
    }

    #[test]
    fn other_versions_get_505() {
        assert_eq!(refused(b"GET / HTTP/2.0\r\n\r\n"), Refusal::Version);
        assert_eq!(refused(b"GET / HTTP/3.0\r\n\r\n"), Refusal::Version);
        assert_eq!(
            refused(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
            Refusal::Version
        );
        assert_eq!(refused(b"GET / HTTP/1.2\r\n\r\n"), Refusal::Version);
        assert_eq!(refused(b"GET / HTTP/2\r\n"), Refusal::Version);
        assert_eq!(refused(b"GET / FTP/1.0\r\n\r\n"), Refusal::Malformed);
        assert_eq!(refused(b"\x16\x03\x01\x02\x00\x01"), Refusal::Malformed);
    }

    #[test]
    fn a_decision_waits_for_the_whole_request_line() {
        // Found by the fuzz target: cut before the line ends, this looked like HTTP/2.
        let mut text = b"PRI * HTTP/2".to_vec();
        assert_eq!(parse(&text, 1024), Parsed::Partial);
        text.extend_from_slice(b"\xfe.0\r\n\r\n");
        for end in 13..text.len() {
            assert_eq!(
                parse(&text[..end], 1024),
                Parsed::Refused(Refusal::Malformed)
            );
        }
        // A bad header field after a good request line is not a version problem.
        assert_eq!(
            refused(b"GET / HTTP/1.1\r\nBad Field: x\r\n\r\n"),
            Refusal::Malformed
        );
        // Bytes past the limit are never looked at.
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(100));
        assert_eq!(
            parse(long.as_bytes(), 50),
            Parsed::Refused(Refusal::TooLarge)
        );
    }

    #[test]
    fn ambiguous_lengths_are_refused() {
        assert_eq!(
            refused(b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Refusal::AmbiguousLength
        );
        assert_eq!(
            refused(b"GET / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Refusal::AmbiguousLength
        );
        assert_eq!(
            refused(b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"),
            Refusal::AmbiguousLength
        );
        assert_eq!(
            refused(b"GET / HTTP/1.1\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n"),
            Refusal::Malformed
        );
        let (same, _) =
            complete("POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n");
        assert!(same.has_body);
        assert!(
            complete("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
                .0
                .has_body
        );
        assert!(
            !complete("GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
                .0
                .has_body
        );
    }

    #[test]
    fn too_many_fields_are_too_large() {
        let mut text = String::from("GET / HTTP/1.1\r\n");
        for i in 0..=MAX_HEADERS {
            text.push_str(&format!("X-{i}: y\r\n"));
        }
        text.push_str("\r\n");
        assert_eq!(
            parse(text.as_bytes(), 1 << 20),
            Parsed::Refused(Refusal::TooLarge)
        );
    }
}
