//! Hostile clients, shared by the tests and the `hostile` benchmark: connections that
//! never send a byte, slowloris clients trickling a request head, floods of header
//! bytes, and a watch on the server process's threads and memory.
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Raises this process's soft limit on open files towards `want` (never past the hard
/// limit); returns the limit now in force.
#[allow(clippy::unnecessary_cast)] // rlim_t is 32 bits wide on 32-bit ARM
pub fn raise_fd_limit(want: u64) -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 0;
    };
    let target = (want as nix::libc::rlim_t).min(hard);
    if soft < target && setrlimit(Resource::RLIMIT_NOFILE, target, hard).is_ok() {
        return target as u64;
    }
    soft as u64
}

/// Opens up to `n` connections that never send anything (stops early if connecting
/// fails, e.g. for lack of descriptors).
pub fn open_idle(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut idle = Vec::with_capacity(n);
    for _ in 0..n {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
            Ok(s) => idle.push(s),
            Err(e) => {
                eprintln!("stopped opening idle connections at {}: {e}", idle.len());
                break;
            }
        }
    }
    idle
}

/// What a peek at a client connection shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    Open,
    /// The server sent something (its first bytes' status code, if any).
    Answered(Option<u16>),
    Closed,
}

/// Looks at `s` without waiting.
pub fn peek(s: &TcpStream) -> Seen {
    let _ = s.set_nonblocking(true);
    let mut buf = [0u8; 64];
    let seen = match s.peek(&mut buf) {
        Ok(0) => Seen::Closed,
        Ok(n) => Seen::Answered(status_of(&buf[..n])),
        Err(e) if e.kind() == ErrorKind::WouldBlock => Seen::Open,
        Err(_) => Seen::Closed,
    };
    let _ = s.set_nonblocking(false);
    seen
}

fn status_of(bytes: &[u8]) -> Option<u16> {
    std::str::from_utf8(bytes)
        .ok()?
        .strip_prefix("HTTP/1.1 ")?
        .get(..3)?
        .parse()
        .ok()
}

/// Connections among `conns` that the server has closed or answered.
pub fn count_ended(conns: &[TcpStream]) -> usize {
    conns.iter().filter(|c| peek(c) != Seen::Open).count()
}

/// When a slowloris client saw its connection end, and what it saw.
pub type Ended = Option<(Duration, Seen)>;

/// Slowloris clients: each starts a request head and adds a short header line every
/// `interval`, never finishing it, until the server ends the connection.
pub struct Slowloris {
    stop: Arc<AtomicBool>,
    /// When each client saw its connection end, and what it saw, measured from `started`.
    pub ended: Arc<Mutex<Vec<Ended>>>,
    pub started: Instant,
    thread: Option<JoinHandle<()>>,
}

impl Slowloris {
    pub fn start(addr: SocketAddr, n: usize, interval: Duration) -> Slowloris {
        let started = Instant::now();
        let mut conns = Vec::new();
        for _ in 0..n {
            let mut s = TcpStream::connect(addr).expect("slowloris connects");
            s.write_all(b"GET /index.html HTTP/1.1\r\nHost: slow\r\n")
                .expect("slowloris starts its request");
            conns.push(Some(s));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let ended = Arc::new(Mutex::new(vec![None; n]));
        let thread = {
            let stop = stop.clone();
            let ended = ended.clone();
            thread::spawn(move || {
                let mut line = 0u64;
                // Bounded: the clients stop with the test, or after ten minutes anyway.
                while !stop.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(600) {
                    thread::sleep(interval);
                    line += 1;
                    for (i, slot) in conns.iter_mut().enumerate() {
                        let Some(s) = slot else { continue };
                        let seen = match peek(s) {
                            Seen::Open => {
                                match s.write_all(format!("X-{line}: a\r\n").as_bytes()) {
                                    Ok(()) => continue,
                                    Err(_) => Seen::Closed,
                                }
                            }
                            other => other,
                        };
                        ended.lock().unwrap()[i] = Some((started.elapsed(), seen));
                        *slot = None;
                    }
                    if conns.iter().all(Option::is_none) {
                        return;
                    }
                }
            })
        };
        Slowloris {
            stop,
            ended,
            started,
            thread: Some(thread),
        }
    }

    /// How many have seen their connection end.
    pub fn ended_count(&self) -> usize {
        self.ended.lock().unwrap().iter().flatten().count()
    }
}

impl Drop for Slowloris {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Samples a process's thread count and resident memory every 10 ms, keeping the peaks.
pub struct ProcWatch {
    pid: u32,
    stop: Arc<AtomicBool>,
    peak_threads: Arc<AtomicU64>,
    peak_rss_kib: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

/// Threads and resident memory (KiB) of `pid`, from /proc.
pub fn threads_and_rss(pid: u32) -> (u64, u64) {
    let usage = super::proc::proc_usage(pid);
    (usage.threads, usage.rss_kib)
}

impl ProcWatch {
    pub fn start(pid: u32) -> ProcWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let peak_threads = Arc::new(AtomicU64::new(0));
        let peak_rss_kib = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, pt, pr) = (stop.clone(), peak_threads.clone(), peak_rss_kib.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let (t, r) = threads_and_rss(pid);
                    pt.fetch_max(t, Ordering::SeqCst);
                    pr.fetch_max(r, Ordering::SeqCst);
                    thread::sleep(Duration::from_millis(10));
                }
            })
        };
        ProcWatch {
            pid,
            stop,
            peak_threads,
            peak_rss_kib,
            thread: Some(thread),
        }
    }

    /// (threads, RSS in KiB) now.
    pub fn now(&self) -> (u64, u64) {
        threads_and_rss(self.pid)
    }

    /// (threads, RSS in KiB) at their highest so far.
    pub fn peak(&self) -> (u64, u64) {
        (
            self.peak_threads.load(Ordering::SeqCst),
            self.peak_rss_kib.load(Ordering::SeqCst),
        )
    }
}

impl Drop for ProcWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Time from connecting to having the whole viewer page, or `None` if it failed.
pub fn time_page(addr: SocketAddr) -> Option<Duration> {
    let t = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(b"GET /index.html HTTP/1.1\r\nHost: real\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut all = Vec::new();
    s.read_to_end(&mut all).ok()?;
    let text = String::from_utf8_lossy(&all);
    (text.starts_with("HTTP/1.1 200") && text.contains("</html>")).then(|| t.elapsed())
}

/// Time from connecting to having the first whole JPEG of `/stream.mjpg`.
pub fn time_first_frame(addr: SocketAddr) -> Option<Duration> {
    let t = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(b"GET /stream.mjpg HTTP/1.1\r\nHost: real\r\n\r\n")
        .ok()?;
    let mut all = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    // Bounded: a frame of a test picture is far smaller than this.
    while all.len() < 8 << 20 {
        let n = s.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        all.extend_from_slice(&buf[..n]);
        let Some(soi) = all.windows(2).position(|w| w == [0xff, 0xd8]) else {
            continue;
        };
        if all[soi..].windows(2).any(|w| w == [0xff, 0xd9]) {
            return all.starts_with(b"HTTP/1.1 200").then(|| t.elapsed());
        }
    }
    None
}

/// Sends a request head that never ends (`kind` picks a long request line, one long
/// header, or endless short headers) until the server stops taking it or `limit` bytes
/// are sent. Returns the bytes sent and what the server said, if anything.
pub fn flood_head(addr: SocketAddr, kind: usize, limit: usize) -> (usize, Seen) {
    let mut s = TcpStream::connect(addr).expect("flood connects");
    // A small send buffer, so that what was sent is close to what the server took.
    let _ = nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::SndBuf, &8192);
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let start: &[u8] = match kind % 3 {
        0 => b"GET /",
        1 => b"GET / HTTP/1.1\r\nX-Long: ",
        _ => b"GET / HTTP/1.1\r\n",
    };
    let mut sent = 0;
    let mut chunk = start.to_vec();
    while sent < limit {
        if chunk.is_empty() {
            chunk = match kind % 3 {
                2 => b"X-Many: aaaaaaaaaaaaaaaaaaaaaaaa\r\n".repeat(128),
                _ => vec![b'a'; 4096],
            };
        }
        match s.write(&chunk) {
            Ok(n) => {
                sent += n;
                chunk.drain(..n);
            }
            Err(_) => break,
        }
    }
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 64];
    let seen = match s.read(&mut buf) {
        Ok(0) => Seen::Closed,
        Ok(n) => Seen::Answered(status_of(&buf[..n])),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Seen::Open,
        Err(_) => Seen::Closed,
    };
    (sent, seen)
}

/// Open descriptors of `pid`.
pub fn open_fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64)
}

/// A server's threads and descriptors at rest, after a page has been loaded.
pub struct AtRest {
    pub pid: u32,
    pub threads: u64,
    pub fds: u64,
}

impl AtRest {
    /// Rest is when the counts have stayed the same for a second: a server still
    /// starting (its mDNS socket opens on a thread of its own, late under an emulated
    /// CPU) is not at rest yet.
    pub fn take(pid: u32, addr: SocketAddr) -> AtRest {
        assert!(time_page(addr).is_some(), "the page at rest");
        let give_up = Instant::now() + Duration::from_secs(40);
        let mut last = (threads_and_rss(pid).0, open_fds(pid));
        let mut same_since = Instant::now();
        while same_since.elapsed() < Duration::from_secs(1) && Instant::now() < give_up {
            thread::sleep(Duration::from_millis(100));
            let now = (threads_and_rss(pid).0, open_fds(pid));
            if now != last {
                last = now;
                same_since = Instant::now();
            }
        }
        AtRest {
            pid,
            threads: last.0,
            fds: last.1,
        }
    }

    /// Waits up to `within` for the threads and descriptors to come back down to rest,
    /// and fails the test if they do not; `after` says after what.
    pub fn assert_back(&self, after: &str, within: Duration) {
        let deadline = Instant::now() + within;
        let (threads, fds) = loop {
            let now = (threads_and_rss(self.pid).0, open_fds(self.pid));
            if (now.0 <= self.threads && now.1 <= self.fds) || Instant::now() > deadline {
                break now;
            }
            thread::sleep(Duration::from_millis(100));
        };
        eprintln!(
            "after {after}: threads {} -> {threads}, fds {} -> {fds}",
            self.threads, self.fds
        );
        assert!(
            threads <= self.threads && fds <= self.fds,
            "after {after}: threads {} -> {threads}, fds {} -> {fds}",
            self.threads,
            self.fds
        );
    }
}

/// A TCP connection to `addr` from the local address `from` (another loopback address,
/// so that the server sees another client).
pub fn connect_from(from: std::net::IpAddr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    use nix::sys::socket::{
        bind, connect, socket, AddressFamily, SockFlag, SockType, SockaddrStorage,
    };
    let family = if from.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrStorage::from(SocketAddr::new(from, 0)),
    )?;
    connect(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrStorage::from(addr),
    )?;
    Ok(TcpStream::from(fd))
}

/// Connects, sends the first byte of a request, and closes at once with a reset
/// (`SO_LINGER` 0).
pub fn connect_and_reset(addr: SocketAddr) {
    if let Ok(mut s) = TcpStream::connect(addr) {
        let _ = s.write_all(b"G");
        let _ = nix::sys::socket::setsockopt(
            &s,
            nix::sys::socket::sockopt::Linger,
            &nix::libc::linger {
                l_onoff: 1,
                l_linger: 0,
            },
        );
    }
}
