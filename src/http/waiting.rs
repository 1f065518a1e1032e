//! The connections waiting for a request head, and how many may wait at once.
//!
//! Each connection's own thread bounds its wait in time and size (see
//! [`super::conn`]); this registry bounds their number. A connection enters when it
//! starts waiting for a head (its first, or its next on a kept-alive connection) and
//! leaves when the head is complete. When more than [`Patience::pending`] wait, the
//! longest waiting are shut down at once, those that have sent nothing first, so a flood
//! of idle or slow connections costs a bounded number of threads and buffers while a
//! client that sends its request promptly is never the one closed.
//!
//! It also counts the connections closed without an answer, by reason, and says so in
//! the log at most every [`REPORT_EVERY`].
//!
//! [`Patience::pending`]: crate::net::Patience::pending

use std::collections::HashMap;
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::sys::socket::{recv, MsgFlags};

use crate::ratelog::RateLimit;

/// Shortest time between two log lines about closed connections.
pub const REPORT_EVERY: Duration = Duration::from_secs(10);

/// Why a connection was closed before it made a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// The head took longer than `--header-timeout` (answered 408).
    Slow,
    /// The head grew past `--max-header-bytes` (answered 431).
    Large,
    /// Nothing arrived in time: a silent new connection, or an idle kept-alive one.
    Idle,
    /// More than `--max-pending` were waiting, and this one longest.
    Excess,
    /// Not an HTTP/1.x request (answered 400 or 505).
    Malformed,
}

const KINDS: usize = 5;

impl Closed {
    fn index(self) -> usize {
        self as usize
    }
}

struct Entry {
    socket: Arc<TcpStream>,
    since: Instant,
    /// The client had sent bytes of its head when last seen.
    heard: bool,
}

/// The registry; shared by every connection thread.
pub struct Waiting {
    limit: usize,
    entries: Mutex<(u64, HashMap<u64, Entry>)>,
    closed: [AtomicU64; KINDS],
}

/// One line about closed connections per [`REPORT_EVERY`].
static REPORT: RateLimit = RateLimit::new(REPORT_EVERY);

/// A connection's place in the registry, for as long as it waits; leaves when dropped.
pub struct Ticket<'w> {
    waiting: &'w Waiting,
    id: u64,
}

impl Waiting {
    /// At most `limit` (at least one) connections may wait at once.
    pub fn new(limit: usize) -> Waiting {
        Waiting {
            limit: limit.max(1),
            entries: Mutex::new((0, HashMap::new())),
            closed: Default::default(),
        }
    }

    fn entries(&self) -> MutexGuard<'_, (u64, HashMap<u64, Entry>)> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `socket` starts waiting for a head; `heard`: some of it is already in hand.
    /// Shuts down the longest waiting connections past the limit, possibly this one.
    pub fn enter(&self, socket: &Arc<TcpStream>, heard: bool) -> Ticket<'_> {
        let heard = heard || has_unread_bytes(socket);
        let now = Instant::now();
        let mut excess = Vec::new();
        let id = {
            let mut guard = self.entries();
            let (next, entries) = &mut *guard;
            *next += 1;
            let id = *next;
            entries.insert(
                id,
                Entry {
                    socket: socket.clone(),
                    since: now,
                    heard,
                },
            );
            if entries.len() > self.limit {
                // Bring the others' `heard` up to date only when it decides something.
                for entry in entries.values_mut() {
                    entry.heard = entry.heard || has_unread_bytes(&entry.socket);
                }
                let mut order: Vec<(bool, Instant, u64)> = entries
                    .iter()
                    .map(|(&k, e)| (e.heard, e.since, k))
                    .collect();
                order.sort_unstable();
                let n = entries.len() - self.limit;
                for &(_, _, k) in &order[..n] {
                    if let Some(e) = entries.remove(&k) {
                        excess.push(e.socket);
                    }
                }
            }
            id
        };
        for socket in excess {
            let _ = socket.shutdown(Shutdown::Both);
            self.count(Closed::Excess);
        }
        Ticket { waiting: self, id }
    }

    /// Counts a connection closed before it made a request, and reports now and then.
    pub fn count(&self, why: Closed) {
        self.closed[why.index()].fetch_add(1, Ordering::Relaxed);
        if REPORT.admit().is_none() {
            return;
        }
        let total: u64 = self.closed.iter().map(|c| c.load(Ordering::Relaxed)).sum();
        let c = |k: Closed| self.closed[k.index()].load(Ordering::Relaxed);
        log::warn!(
            "closed {total} connections that made no proper request so far: {} too slow, {} too large, {} idle, {} beyond --max-pending, {} not HTTP/1.x",
            c(Closed::Slow),
            c(Closed::Large),
            c(Closed::Idle),
            c(Closed::Excess),
            c(Closed::Malformed),
        );
    }

    /// Connections waiting now.
    pub fn len(&self) -> usize {
        self.entries().1.len()
    }

    /// True when no connection waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Ticket<'_> {
    /// The client has begun sending its head.
    pub fn heard(&self) {
        if let Some(e) = self.waiting.entries().1.get_mut(&self.id) {
            e.heard = true;
        }
    }

    /// False once the registry shut this connection down for the limit.
    pub fn still_waiting(&self) -> bool {
        self.waiting.entries().1.contains_key(&self.id)
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        self.waiting.entries().1.remove(&self.id);
    }
}

/// True when the kernel holds bytes from the client that nobody has read yet.
pub fn has_unread_bytes(socket: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        recv(
            socket.as_raw_fd(),
            &mut byte,
            MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT
        ),
        Ok(n) if n > 0
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    fn pair(listener: &TcpListener) -> (TcpStream, Arc<TcpStream>) {
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (client, Arc::new(server))
    }

    fn closed(client: &mut TcpStream) -> bool {
        client
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        matches!(client.read(&mut [0u8; 8]), Ok(0) | Err(_))
            && client.read(&mut [0u8; 8]).map_or(true, |n| n == 0)
    }

    #[test]
    fn past_the_limit_silent_ones_go_first_then_the_oldest() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let waiting = Waiting::new(2);
        let (mut a, sa) = pair(&listener);
        let (mut b, sb) = pair(&listener);
        let (mut c, sc) = pair(&listener);
        let (mut d, sd) = pair(&listener);
        a.write_all(b"GET").unwrap();
        c.write_all(b"GET").unwrap();
        d.write_all(b"GET").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let ta = waiting.enter(&sa, false);
        let tb = waiting.enter(&sb, false);
        let tc = waiting.enter(&sc, false);
        // b sent nothing: it goes, though a is older.
        assert!(!tb.still_waiting());
        assert!(ta.still_waiting() && tc.still_waiting());
        let td = waiting.enter(&sd, false);
        // Now all have spoken: the oldest goes.
        assert!(!ta.still_waiting());
        assert!(tc.still_waiting() && td.still_waiting());
        assert_eq!(waiting.len(), 2);
        assert!(closed(&mut b) && closed(&mut a));
        drop((tc, td, ta, tb));
        assert!(waiting.is_empty());
        // Those that wait were left alone.
        c.write_all(b" /").unwrap();
        d.write_all(b" /").unwrap();
    }
}
