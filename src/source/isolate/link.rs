//! Requests and answers over a socket between the server and its source process, in
//! the framing of [`super::messages`]: [`Link`] is the server's end (one request at a
//! time, an answer awaited until a deadline, late answers to earlier requests set aside
//! by their id), [`answer_requests`] the source process's loop that answers each
//! request in turn. Camera controls and full-resolution stills each use a socket of
//! their own through these.

use std::io::{self, Read};
use std::os::unix::net::UnixStream;
use std::time::Instant;

use super::messages::{write_message, MessageReader};

/// The server's end of a request socket.
pub(super) struct Link {
    socket: UnixStream,
    /// Answers cut from what was read, kept across requests: a late answer to one
    /// that timed out may still be on its way.
    reader: MessageReader,
    next_id: u64,
    /// Why the socket cannot be used any more, once that is so.
    pub(super) broken: Option<String>,
}

/// Why the socket cannot be used any more.
#[derive(Debug)]
pub(super) enum End {
    /// The child closed it or the connection failed.
    Gone(String),
    /// The child sent bytes that are not an answer.
    Garbled(String),
}

/// How much is read from the socket at a time.
const READ_SIZE: usize = 64 * 1024;

impl Link {
    /// The server's end `socket`, whose answers have one of `tags` and at most `max`
    /// bytes each.
    pub(super) fn new(socket: UnixStream, tags: &'static [u8], max: usize) -> Link {
        Link {
            socket,
            reader: MessageReader::for_tags(tags, max),
            next_id: 0,
            broken: None,
        }
    }

    /// The id of the next request: each request's own, repeated in its answer.
    pub(super) fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Sends `payload` as a `tag` message, then hands each answer that arrives to
    /// `answer` until it says the answer was the one awaited (`Some`) or `deadline`
    /// passes (`None`). `answer` says why when the bytes are not an answer.
    pub(super) fn exchange<T>(
        &mut self,
        tag: u8,
        payload: &[u8],
        deadline: Instant,
        mut answer: impl FnMut(&[u8]) -> Result<Option<T>, String>,
    ) -> Result<Option<T>, End> {
        let mut frame = Vec::with_capacity(5 + payload.len());
        // Writing to memory does not fail.
        let _ = write_message(&mut frame, tag, payload);
        let left = || {
            deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
        };
        let Some(wait) = left() else {
            return Ok(None);
        };
        let failed = |e: io::Error| match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => None,
            _ => Some(End::Gone(e.to_string())),
        };
        if let Err(e) = self
            .socket
            .set_write_timeout(Some(wait))
            .and_then(|()| io::Write::write_all(&mut &self.socket, &frame))
        {
            return failed(e).map_or(Ok(None), Err);
        }
        let mut buf = vec![0u8; READ_SIZE];
        loop {
            while let Some((_, payload)) = self.reader.next_message().map_err(End::Garbled)? {
                if let Some(ours) = answer(payload).map_err(End::Garbled)? {
                    self.reader.release();
                    return Ok(Some(ours));
                }
            }
            let Some(wait) = left() else {
                return Ok(None);
            };
            let read = self
                .socket
                .set_read_timeout(Some(wait))
                .and_then(|()| (&self.socket).read(&mut buf));
            match read {
                Ok(0) => return Err(End::Gone("it closed its socket".into())),
                Ok(n) => self.reader.extend(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return failed(e).map_or(Ok(None), Err),
            }
        }
    }
}

/// The source process's side: reads requests (tagged one of `request_tags`, at most
/// `max` bytes) from `socket` and sends back what `answer` makes of each (an
/// `answer_tag` message),
/// until the socket closes or fails. A request that `answer` cannot read ends the
/// loop, with the reason in the log; `what` names the requests there.
pub(super) fn answer_requests(
    socket: &UnixStream,
    request_tags: &'static [u8],
    answer_tag: u8,
    max: usize,
    what: &str,
    mut answer: impl FnMut(&[u8]) -> Result<Vec<u8>, String>,
) {
    let mut reader = MessageReader::for_tags(request_tags, max);
    let mut buf = vec![0u8; 4096];
    loop {
        loop {
            let answered = match reader.next_message() {
                Ok(Some((_, payload))) => answer(payload),
                Ok(None) => break,
                Err(why) => Err(why),
            };
            let bytes = match answered {
                Ok(bytes) => bytes,
                Err(why) => {
                    log::error!("the server sent {why}; {what} end here");
                    return;
                }
            };
            if let Err(e) = write_message(&mut &*socket, answer_tag, &bytes) {
                log::warn!("cannot answer the server's {what}: {e}");
                return;
            }
        }
        match (&*socket).read(&mut buf) {
            Ok(0) => return,
            Ok(n) => reader.extend(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                log::warn!("cannot read the server's {what}: {e}");
                return;
            }
        }
    }
}
