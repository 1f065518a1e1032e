//! One client connection, on its own thread: reading request heads within the time and
//! size the server allows, and writing answers.
//!
//! A head is read into a buffer that never grows past `--max-header-bytes`, with each
//! read's timeout set to what is left of the wait, so that neither a slow sender nor a
//! fast one can hold more than a bounded buffer for a bounded time:
//!
//! * a new connection has `--header-timeout` from its arrival for a complete head, and
//!   only [`FIRST_BYTE_GRACE`] to send its first byte (with `TCP_DEFER_ACCEPT` it has
//!   waited in the kernel already; see [`crate::net`]);
//! * a kept-alive connection may stay silent for `--keepalive-timeout`, then has
//!   `--header-timeout` from its next request's first byte.
//!
//! Bytes after a complete head stay in the buffer: a pipelined request is read from
//! there after the answer to the first. The [`Waiting`] registry bounds how many
//! connections wait for a head at once.
//!
//! A request body (only routes that take one ask for it, with a length already checked
//! against their limit) is read under the same rules: it must be complete within
//! `--header-timeout` of its head's first byte, while the connection holds a place in
//! the [`Waiting`] registry, so a body that trickles in or stalls is cut off like a
//! slow head, and bytes after it stay for the next request.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::head::{self, Parsed, Refusal, RequestHead};
use super::tls::TlsStream;

use super::waiting::{Closed, Waiting};
use crate::net::Patience;

/// How long a new connection accepted without a byte may stay silent.
pub const FIRST_BYTE_GRACE: Duration = Duration::from_secs(2);

/// How long, and how much, a refused client's remaining bytes are read and thrown away
/// before the connection closes, so that its answer is not lost to a reset.
const DRAIN_TIME: Duration = Duration::from_millis(500);
const DRAIN_BYTES: usize = 64 * 1024;

/// The bytes of a connection: plain TCP or TLS over it.
pub enum Transport {
    Plain(Arc<TcpStream>),
    Tls(Box<TlsStream>),
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => (&**s).read(buf),
            Transport::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => (&**s).write(buf),
            Transport::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(_) => Ok(()),
            Transport::Tls(s) => s.flush(),
        }
    }
}

/// What waiting for the next request gave.
#[derive(Debug)]
pub enum Next {
    Request(RequestHead),
    /// Refuse with an answer, then close.
    Refused(Refusal),
    /// The client left, stayed silent too long, or was shut out: just close.
    Gone,
}

/// True when a read failed only for its timeout (or a signal): the caller checks its
/// deadline and reads again.
fn waited_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// One client connection.
pub struct Conn {
    pub io: Transport,
    pub socket: Arc<TcpStream>,
    pub peer: SocketAddr,
    accepted: Instant,
    /// Received bytes not yet taken as a request head.
    buf: Vec<u8>,
    requests: u64,
    /// When the last request head began to arrive: its body has until then plus
    /// `--header-timeout`.
    head_began: Instant,
}

/// Why a request body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFailure {
    /// Not complete within `--header-timeout` of its head's first byte (answered 408).
    Timeout,
    /// The client left, or was shut out past `--max-pending`.
    Gone,
}

impl Conn {
    pub fn new(io: Transport, socket: Arc<TcpStream>, peer: SocketAddr, accepted: Instant) -> Conn {
        Conn {
            io,
            socket,
            peer,
            accepted,
            buf: Vec::new(),
            requests: 0,
            head_began: accepted,
        }
    }

    /// Requests read on this connection so far.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// Waits for the next request head; see the module docs for the limits.
    pub fn next_request(&mut self, patience: &Patience, waiting: &Waiting) -> Next {
        let limit = patience.head_bytes as usize;
        let first = self.requests == 0;
        let plain = matches!(self.io, Transport::Plain(_));
        let ticket = waiting.enter(&self.socket, !self.buf.is_empty());
        let began = if first { self.accepted } else { Instant::now() };
        let mut head_from = (first || !self.buf.is_empty()).then_some(began);
        let mut chunk = [0u8; 4096];
        loop {
            if !self.buf.is_empty() {
                match head::parse(&self.buf, limit) {
                    Parsed::Complete(head, len) => {
                        self.head_began = head_from.unwrap_or(began);
                        self.buf.drain(..len);
                        self.requests += 1;
                        return Next::Request(head);
                    }
                    Parsed::Refused(refusal) => {
                        waiting.count(match refusal {
                            Refusal::TooLarge => Closed::Large,
                            Refusal::Timeout => Closed::Slow,
                            _ => Closed::Malformed,
                        });
                        return Next::Refused(refusal);
                    }
                    Parsed::Partial => {}
                }
            }
            if !ticket.still_waiting() {
                return Next::Gone;
            }
            let (deadline, expiry) = match head_from {
                // A new connection that has not said a word (TLS handshakes count as
                // words: their bytes never reach this buffer).
                Some(from) if first && self.buf.is_empty() && plain => {
                    (from + FIRST_BYTE_GRACE.min(patience.head), Closed::Idle)
                }
                Some(from) => (from + patience.head, Closed::Slow),
                None => (began + patience.idle, Closed::Idle),
            };
            let now = Instant::now();
            let left = deadline.saturating_duration_since(now);
            if left.is_zero() {
                waiting.count(expiry);
                return match expiry {
                    Closed::Slow => Next::Refused(Refusal::Timeout),
                    _ => Next::Gone,
                };
            }
            if self
                .socket
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .is_err()
            {
                return Next::Gone;
            }
            let room = (limit + 1).saturating_sub(self.buf.len()).min(chunk.len());
            match self.io.read(&mut chunk[..room.max(1)]) {
                Ok(0) => return Next::Gone,
                Ok(n) => {
                    if self.buf.is_empty() {
                        ticket.heard();
                        head_from.get_or_insert(now);
                    }
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                Err(e) if waited_out(&e) => {}
                Err(_) => return Next::Gone,
            }
        }
    }

    /// Reads the `len` bytes of body that follow the last request head, by the deadline
    /// of that head (see the module docs). The caller has checked `len` against its
    /// limit; bytes after the body stay for the next request.
    /// With `expect_continue` (the head's `Expect: 100-continue`), says `100 Continue`
    /// first unless the body is already here.
    pub fn read_body(
        &mut self,
        len: usize,
        expect_continue: bool,
        patience: &Patience,
        waiting: &Waiting,
    ) -> Result<Vec<u8>, BodyFailure> {
        let deadline = self.head_began + patience.head;
        if expect_continue && self.buf.is_empty() {
            let said = self.io.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
            if said.and_then(|()| self.io.flush()).is_err() {
                return Err(BodyFailure::Gone);
            }
        }
        let ticket = (self.buf.len() < len).then(|| waiting.enter(&self.socket, true));
        let mut chunk = [0u8; 4096];
        while self.buf.len() < len {
            if ticket.as_ref().is_some_and(|t| !t.still_waiting()) {
                return Err(BodyFailure::Gone);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                waiting.count(Closed::Slow);
                return Err(BodyFailure::Timeout);
            }
            if self
                .socket
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .is_err()
            {
                return Err(BodyFailure::Gone);
            }
            let room = (len - self.buf.len()).min(chunk.len());
            match self.io.read(&mut chunk[..room]) {
                Ok(0) => return Err(BodyFailure::Gone),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if waited_out(&e) => {}
                Err(_) => return Err(BodyFailure::Gone),
            }
        }
        Ok(self.buf.drain(..len).collect())
    }

    /// Ends the connection after a final answer: says so to a TLS peer, stops sending,
    /// and reads what the client may still be sending for a moment, so that the kernel
    /// does not answer those bytes with a reset that could destroy the answer.
    pub fn finish(mut self, drain: bool) {
        if let Transport::Tls(tls) = &mut self.io {
            super::tls::close_notify(tls);
        }
        let _ = self.socket.shutdown(Shutdown::Write);
        if !drain {
            return;
        }
        let until = Instant::now() + DRAIN_TIME;
        let mut thrown = 0;
        let mut chunk = [0u8; 4096];
        while thrown < DRAIN_BYTES {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || self.socket.set_read_timeout(Some(left)).is_err() {
                break;
            }
            match (&*self.socket).read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => thrown += n,
            }
        }
    }

    /// Throws away what the client sent after its last request, and anything it sends
    /// from now on (a stream's client has nothing more to say).
    pub fn stop_reading(&mut self) {
        self.buf = Vec::new();
        let _ = self.socket.shutdown(Shutdown::Read);
    }
}
