//! Bounds the connections that have not (yet) made a request: how long they may take,
//! how much they may send, and how many may wait at once.
//!
//! `tiny_http` gives every accepted connection a thread of its own, which blocks reading
//! the request head with no limit on its size or on how long it takes, and keeps the whole
//! head in memory. It has no hook for limits, so the gate works from outside. One thread
//! looks every [`TICK`] at the process's sockets (through `/proc/self/fd`, as
//! [`super::socket`] does), picks out the connections to our port, reads from `TCP_INFO`
//! how many bytes each has received, and shuts down (`shutdown(2)`) those that
//!
//! * took longer than [`Patience::head`] to send a complete request head (answered 408),
//! * sent more than [`Patience::head_bytes`] without completing one (answered 431),
//! * waited idle longer than [`Patience::idle`] for their next request (closed),
//! * are the longest waiting while more than [`Patience::pending`] wait at once (closed;
//!   those that have sent nothing go first).
//!
//! Shutting a socket down wakes the `tiny_http` thread blocked on it, which then closes
//! the connection and goes back to its pool. Handlers tell the gate when a request is
//! being answered ([`Gate::answering`]) and when a connection became a stream
//! ([`Gate::streaming`]); a stream is left alone, as the write timeout already bounds a
//! client that stops reading. The listening socket holds connections that send nothing
//! outside the process to begin with (see [`crate::net`]).

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg};
use nix::sys::socket::{getpeername, getsockname, send, shutdown, MsgFlags, Shutdown};
use nix::sys::stat::{fstat, SFlag};

use super::socket::to_std;
use crate::net::Patience;

/// How often the gate looks at the connections.
pub const TICK: Duration = Duration::from_millis(100);

/// How soon the gate looks again after closing connections.
const SURGE_TICK: Duration = Duration::from_millis(10);

/// How long a connection accepted without a byte may stay silent: with
/// `TCP_DEFER_ACCEPT` it has already waited the head timeout in the kernel.
pub const FIRST_BYTE_GRACE: Duration = Duration::from_secs(2);

/// Why the gate closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    /// The request head took longer than [`Patience::head`].
    Slow,
    /// The request head grew past [`Patience::head_bytes`].
    Large,
    /// Nothing arrived for [`Patience::idle`] after an answer.
    Idle,
    /// More than [`Patience::pending`] connections were waiting; this one longest.
    Excess,
}

impl Reason {
    /// What the client is told before the connection closes, if anything.
    fn answer(self) -> &'static [u8] {
        match self {
            Reason::Slow => {
                b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
            }
            Reason::Large => {
                b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
            }
            Reason::Idle | Reason::Excess => b"",
        }
    }
}

/// What handlers report about a connection, keyed by the client's address.
#[derive(Debug, Clone, Copy)]
struct Mark {
    /// Requests on the connection whose answer has begun.
    requests: u64,
    /// Answers being written now.
    busy: u32,
    /// The connection carries a stream and is no longer the gate's business.
    streaming: bool,
    /// When the last answer began or ended.
    changed: Instant,
}

/// Counts of connections closed, by reason.
#[derive(Default)]
struct Closed {
    slow: AtomicU64,
    large: AtomicU64,
    idle: AtomicU64,
    excess: AtomicU64,
}

impl Closed {
    fn count(&self, reason: Reason) {
        let counter = match reason {
            Reason::Slow => &self.slow,
            Reason::Large => &self.large,
            Reason::Idle => &self.idle,
            Reason::Excess => &self.excess,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn total(&self) -> u64 {
        [&self.slow, &self.large, &self.idle, &self.excess]
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }
}

/// The gate: what handlers report, and what the watching thread did.
pub struct Gate {
    patience: Patience,
    marks: Mutex<HashMap<SocketAddr, Mark>>,
    closed: Closed,
}

/// Held while a request is being answered; the connection waits for its next request
/// from the moment it is dropped.
pub struct Answering<'g> {
    gate: &'g Gate,
    peer: Option<SocketAddr>,
}

/// Held by a stream's thread for as long as the stream runs.
pub struct Streaming {
    gate: Arc<Gate>,
    peer: Option<SocketAddr>,
}

impl Gate {
    /// Starts watching the connections to `local`, until `stopping` is set.
    pub fn start(
        local: SocketAddr,
        patience: Patience,
        stopping: Arc<AtomicBool>,
    ) -> io::Result<Arc<Gate>> {
        let gate = Arc::new(Gate {
            patience,
            marks: Mutex::new(HashMap::new()),
            closed: Closed::default(),
        });
        let watched = gate.clone();
        thread::Builder::new()
            .name("http-gate".into())
            .stack_size(128 * 1024)
            .spawn(move || {
                let mut watch = Watch::new(local);
                let mut pause = TICK;
                while !stopping.load(Ordering::SeqCst) {
                    thread::sleep(pause);
                    // Under a flood, look again soon: every connection closed frees a
                    // thread that the next one accepted can reuse, and a head that is
                    // growing large grows as fast as the client can send.
                    pause = if watch.tick(&watched) {
                        SURGE_TICK
                    } else {
                        TICK
                    };
                }
            })?;
        Ok(gate)
    }

    fn marks(&self) -> MutexGuard<'_, HashMap<SocketAddr, Mark>> {
        self.marks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A request from `peer` has been read and is being answered.
    pub fn answering(&self, peer: Option<SocketAddr>) -> Answering<'_> {
        if let Some(peer) = peer {
            let now = Instant::now();
            let mut marks = self.marks();
            let mark = marks.entry(peer).or_insert(Mark {
                requests: 0,
                busy: 0,
                streaming: false,
                changed: now,
            });
            mark.requests += 1;
            mark.busy += 1;
            mark.changed = now;
        }
        Answering { gate: self, peer }
    }

    /// The connection from `peer` now carries a stream, until the guard is dropped.
    pub fn streaming(self: &Arc<Self>, peer: Option<SocketAddr>) -> Streaming {
        if let Some(peer) = peer {
            let now = Instant::now();
            self.marks()
                .entry(peer)
                .and_modify(|m| m.streaming = true)
                .or_insert(Mark {
                    requests: 1,
                    busy: 0,
                    streaming: true,
                    changed: now,
                });
        }
        Streaming {
            gate: self.clone(),
            peer,
        }
    }
}

impl Drop for Answering<'_> {
    fn drop(&mut self) {
        let Some(peer) = self.peer else { return };
        if let Some(mark) = self.gate.marks().get_mut(&peer) {
            mark.busy = mark.busy.saturating_sub(1);
            mark.changed = Instant::now();
        }
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        if let Some(peer) = self.peer {
            self.gate.marks().remove(&peer);
        }
    }
}

/// One connection to our port, as the watching thread knows it.
struct Conn {
    /// A descriptor of it seen in the last look (`tiny_http` holds two).
    fd: RawFd,
    peer: SocketAddr,
    /// Requests it had made at the last look.
    requests: u64,
    /// Since when it has been waiting for its current request.
    since: Instant,
    /// Bytes it had received when that wait began.
    base: u64,
    /// When the first byte of a later request was seen.
    head_from: Option<Instant>,
}

/// The watching thread's state between looks.
struct Watch {
    local: SocketAddr,
    /// Connections to our port, by socket inode.
    conns: HashMap<u64, Conn>,
    /// Sockets that are something else (the listener, other connections), or that the
    /// gate has shut down already.
    others: HashSet<u64>,
    /// Whether `TCP_INFO` gives byte counts here; `None` until first tried.
    counts_bytes: Option<bool>,
    cannot_look: bool,
    reported: u64,
    reported_at: Option<Instant>,
}

impl Watch {
    fn new(local: SocketAddr) -> Watch {
        Watch {
            local,
            conns: HashMap::new(),
            others: HashSet::new(),
            counts_bytes: None,
            cannot_look: false,
            reported: 0,
            reported_at: None,
        }
    }

    /// One look at the connections; true if it closed any, or saw a large head growing
    /// (which the next look should not leave long to grow).
    fn tick(&mut self, gate: &Gate) -> bool {
        let started = Instant::now();
        if let Err(e) = self.refresh(started) {
            // A full descriptor table, for instance; the next look may succeed.
            if !self.cannot_look {
                log::warn!("cannot look at the open connections now: {e}");
                self.cannot_look = true;
            }
            return false;
        }
        self.cannot_look = false;
        let p = &gate.patience;
        let mut waiting: Vec<(bool, Instant, u64)> = Vec::new();
        let mut growing = false;
        let mut doomed: Vec<(u64, Reason)> = Vec::new();
        // A copy, so that handlers never wait for this look to finish.
        let marks = gate.marks().clone();
        for (&ino, conn) in self.conns.iter_mut() {
            let mark = marks.get(&conn.peer);
            if mark.is_some_and(|m| m.streaming) {
                continue;
            }
            let bytes = match received(conn.fd, ino) {
                Received::Gone => continue,
                Received::Bytes(b) => {
                    self.counts_bytes = Some(true);
                    Some(b)
                }
                Received::Unknown(why) => {
                    if self.counts_bytes.is_none() {
                        log::warn!(
                                "cannot count the bytes clients send here ({why}): request heads are limited in time but not in size"
                            );
                    }
                    self.counts_bytes = Some(false);
                    None
                }
            };
            if let Some(mark) = mark {
                if mark.requests > conn.requests {
                    conn.requests = mark.requests;
                    conn.base = bytes.unwrap_or(0);
                    conn.head_from = None;
                }
                if mark.busy > 0 {
                    if bytes.is_some_and(|b| b.saturating_sub(conn.base) > u64::from(p.head_bytes))
                    {
                        doomed.push((ino, Reason::Large));
                    }
                    continue;
                }
                conn.since = mark.changed;
            }
            let sent = bytes.map(|b| b.saturating_sub(conn.base));
            if sent.is_some_and(|n| n > u64::from(p.head_bytes)) {
                doomed.push((ino, Reason::Large));
                continue;
            }
            growing |= sent.is_some_and(|n| n > u64::from(p.head_bytes / 4));
            let waited = started.duration_since(conn.since);
            let reason = if conn.requests == 0 {
                // The first request: the clock runs from the connection's arrival. One
                // that arrives without a byte has already waited in the kernel (see
                // `crate::net`), and gets only a short grace more.
                if sent == Some(0) && waited > FIRST_BYTE_GRACE {
                    Some(Reason::Idle)
                } else {
                    (waited > p.head).then_some(Reason::Slow)
                }
            } else {
                match sent {
                    Some(0) => None,
                    Some(_) => {
                        let from = *conn.head_from.get_or_insert(started);
                        (started.duration_since(from) > p.head).then_some(Reason::Slow)
                    }
                    None => None,
                }
                .or_else(|| {
                    let limit = if sent.is_some_and(|n| n > 0) {
                        p.idle + p.head
                    } else {
                        p.idle
                    };
                    (waited > limit).then_some(Reason::Idle)
                })
            };
            match reason {
                Some(r) => doomed.push((ino, r)),
                None => waiting.push((sent.is_some_and(|n| n > 0), conn.since, ino)),
            }
        }
        // Forget the marks of connections that are gone (and not just made).
        let live: HashSet<SocketAddr> = self.conns.values().map(|c| c.peer).collect();
        gate.marks().retain(|peer, m| {
            live.contains(peer) || m.busy > 0 || started.duration_since(m.changed) < TICK * 2
        });
        if waiting.len() > p.pending {
            // Silent connections go first, then those that began their head longest ago.
            waiting.sort_unstable();
            let excess = waiting.len() - p.pending;
            doomed.extend(
                waiting
                    .iter()
                    .take(excess)
                    .map(|&(_, _, ino)| (ino, Reason::Excess)),
            );
        }
        let hurry = growing || !doomed.is_empty();
        for (ino, reason) in doomed {
            // Until `tiny_http` closes its descriptors, the socket is still in the table;
            // it must not come back as a new connection meanwhile.
            self.others.insert(ino);
            if let Some(conn) = self.conns.remove(&ino) {
                if close(conn.fd, ino, reason) {
                    gate.closed.count(reason);
                    log::debug!("closed the connection from {}: {reason:?}", conn.peer);
                }
            }
        }
        self.report(gate, started);
        hurry
    }

    /// Updates the known connections from the process's descriptor table.
    fn refresh(&mut self, now: Instant) -> io::Result<()> {
        let mut present = HashSet::new();
        for entry in std::fs::read_dir("/proc/self/fd")?.flatten() {
            let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<RawFd>().ok())
            else {
                continue;
            };
            let Some(ino) = socket_inode(fd) else {
                continue;
            };
            present.insert(ino);
            if self.others.contains(&ino) {
                continue;
            }
            if let Some(conn) = self.conns.get_mut(&ino) {
                conn.fd = fd;
                continue;
            }
            match ours(fd, self.local) {
                Some(peer) => {
                    self.conns.insert(
                        ino,
                        Conn {
                            fd,
                            peer,
                            requests: 0,
                            since: now,
                            base: 0,
                            head_from: None,
                        },
                    );
                }
                None => {
                    self.others.insert(ino);
                }
            }
        }
        self.conns.retain(|ino, _| present.contains(ino));
        self.others.retain(|ino| present.contains(ino));
        Ok(())
    }

    /// Logs what the gate closed: the first time at once, then at most every 10 s.
    fn report(&mut self, gate: &Gate, now: Instant) {
        let total = gate.closed.total();
        if total == self.reported {
            return;
        }
        if self
            .reported_at
            .is_some_and(|at| now.duration_since(at) < Duration::from_secs(10))
        {
            return;
        }
        let c = &gate.closed;
        log::warn!(
            "closed {} connections that made no request in time so far: {} too slow, {} too large, {} idle, {} beyond --max-pending",
            total,
            c.slow.load(Ordering::Relaxed),
            c.large.load(Ordering::Relaxed),
            c.idle.load(Ordering::Relaxed),
            c.excess.load(Ordering::Relaxed),
        );
        self.reported = total;
        self.reported_at = Some(now);
    }
}

/// The inode of `fd` if it is a socket.
fn socket_inode(fd: RawFd) -> Option<u64> {
    let st = fstat(fd).ok()?;
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    (kind == SFlag::S_IFSOCK).then_some(st.st_ino as u64)
}

/// The peer of `fd` if it is a connection to `local`'s port (and address, unless that is
/// a wildcard).
fn ours(fd: RawFd, local: SocketAddr) -> Option<SocketAddr> {
    let me = getsockname::<nix::sys::socket::SockaddrStorage>(fd)
        .ok()
        .and_then(|a| to_std(&a))?;
    if me.port() != local.port() || !(local.ip().is_unspecified() || me.ip() == local.ip()) {
        return None;
    }
    getpeername::<nix::sys::socket::SockaddrStorage>(fd)
        .ok()
        .and_then(|a| to_std(&a))
}

enum Received {
    Bytes(u64),
    Unknown(String),
    /// The descriptor no longer refers to this connection.
    Gone,
}

/// Offsets in the kernel's `struct tcp_info` (stable since Linux 4.1); the C library's
/// declaration of the structure stops short of the byte counters.
const TCPI_BYTES_RECEIVED: usize = 128;

/// Bytes received so far on the connection `ino`, through its descriptor `fd`.
fn received(fd: RawFd, ino: u64) -> Received {
    let mut info = [0u64; 32];
    let mut len = std::mem::size_of_val(&info) as nix::libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `info`, which is that large and
    // lives on our stack for the call, and stores the written length in `len`.
    let rc = unsafe {
        nix::libc::getsockopt(
            fd,
            nix::libc::IPPROTO_TCP,
            nix::libc::TCP_INFO,
            info.as_mut_ptr() as *mut nix::libc::c_void,
            &mut len,
        )
    };
    // The descriptor may have been closed, and even reused, meanwhile.
    if socket_inode(fd) != Some(ino) {
        return Received::Gone;
    }
    if rc != 0 {
        return Received::Unknown(io::Error::last_os_error().to_string());
    }
    if (len as usize) < TCPI_BYTES_RECEIVED + 8 {
        return Received::Unknown(format!("TCP_INFO returned only {len} bytes"));
    }
    Received::Bytes(info[TCPI_BYTES_RECEIVED / 8])
}

/// Tells the client why (if there is anything to say) and shuts the connection down, on
/// a duplicate of `fd` checked to be the connection `ino`. False if it was already gone.
fn close(fd: RawFd, ino: u64, reason: Reason) -> bool {
    let Ok(copy) = fcntl(fd, FcntlArg::F_DUPFD_CLOEXEC(0)) else {
        return false;
    };
    // SAFETY: F_DUPFD_CLOEXEC just returned this new descriptor; nothing else owns it.
    let copy = unsafe { OwnedFd::from_raw_fd(copy) };
    if socket_inode(copy.as_raw_fd()) != Some(ino) {
        return false;
    }
    let answer = reason.answer();
    if !answer.is_empty() {
        let _ = send(
            copy.as_raw_fd(),
            answer,
            MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
        );
    }
    let _ = shutdown(copy.as_raw_fd(), Shutdown::Both);
    true
}
