//! One thread writes the stream to every plain-TCP viewer.
//!
//! A viewer's connection thread sends the response head and the first frame itself,
//! then hands its socket to the writer and sleeps until its stream ends. The writer
//! wakes once per frame (on the slot's [bell](crate::slot::FrameSlot::bell)) and gives
//! each viewer the newest frame's part with one non-blocking `send`, so a frame costs
//! one wake-up for all viewers instead of one per viewer.
//!
//! Nothing blocks the writer: a send that does not take the whole part leaves the rest
//! pending, and the writer polls that socket until it drains. Meanwhile newer frames
//! pass that viewer by; when its part is out, it gets the newest frame, so a slow viewer
//! skips frames, never queues them, and never holds up the others. A pending part that
//! makes no progress for the socket's write timeout (`SO_SNDTIMEO`, set on every
//! accepted connection) ends that viewer's stream, as a blocking write would have.
//!
//! The writer runs while it has viewers and starts again with the next one.

use std::io;
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{send, MsgFlags};

use crate::frame::Frame;
use crate::slot::FrameSlot;

/// How long the stream may go without a new frame before the newest one is sent again,
/// so that proxies and browsers keep the connection open.
pub const KEEPALIVE: Duration = Duration::from_secs(1);

/// How a stream written by the writer ended, with its counts.
#[derive(Debug)]
pub struct Ended {
    /// Parts written completely.
    pub sent: u64,
    /// Newer frames that passed the viewer by while its socket drained.
    pub skipped: u64,
    /// `Ok`: the server is stopping; `Err`: the client left or stopped reading.
    pub end: io::Result<()>,
}

/// The writer of the plain-TCP streams of one frame slot.
pub struct Fanout {
    slot: Arc<FrameSlot>,
    roster: Arc<Mutex<Roster>>,
}

/// Viewers handed over since the writer last looked, and whether it runs.
#[derive(Default)]
struct Roster {
    joining: Vec<Viewer>,
    running: bool,
}

/// Where a viewer's thread waits for its stream's end.
#[derive(Default)]
struct Finish {
    ended: Mutex<Option<Ended>>,
    told: Condvar,
}

/// One viewer, owned by the writer.
struct Viewer {
    socket: Arc<TcpStream>,
    advance: bool,
    /// Sequence number of the newest frame started for this viewer.
    seen: u64,
    sent: u64,
    skipped: u64,
    /// The part being written and how much of it is out.
    pending: Option<(Arc<Frame>, usize)>,
    /// When the pending part last made progress.
    progress: Instant,
    timeout: Option<Duration>,
    /// Taken when the viewer's thread is told how the stream ended.
    finish: Option<Arc<Finish>>,
}

/// What one attempt to write a pending part gave.
enum Push {
    Done,
    Blocked,
    Failed(io::Error),
}

impl Viewer {
    /// Begins writing `frame`'s part.
    fn start(&mut self, frame: Arc<Frame>, now: Instant) -> Push {
        if self.seen > 0 && frame.seq() > self.seen + 1 {
            self.skipped += frame.seq() - self.seen - 1;
        }
        self.seen = self.seen.max(frame.seq());
        self.pending = Some((frame, 0));
        self.progress = now;
        self.push(now)
    }

    /// Writes what the socket takes of the pending part, without blocking.
    fn push(&mut self, now: Instant) -> Push {
        let Some((frame, at)) = &mut self.pending else {
            return Push::Done;
        };
        let part = if self.advance {
            frame.advance_part()
        } else {
            frame.classic_part()
        };
        while *at < part.len() {
            match send(
                self.socket.as_raw_fd(),
                &part[*at..],
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
            ) {
                Ok(n) => {
                    *at += n;
                    self.progress = now;
                }
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => return Push::Blocked,
                Err(e) => return Push::Failed(e.into()),
            }
        }
        self.pending = None;
        self.sent += 1;
        Push::Done
    }

    /// When the pending part has gone too long without progress.
    fn deadline(&self) -> Option<Instant> {
        self.pending.as_ref()?;
        self.timeout.map(|t| self.progress + t)
    }

    /// Tells the viewer's thread that its stream ended.
    fn end(mut self, end: io::Result<()>) {
        self.tell(end);
    }

    fn tell(&mut self, end: io::Result<()>) {
        if let Some(finish) = self.finish.take() {
            let ended = Ended {
                sent: self.sent,
                skipped: self.skipped,
                end,
            };
            *finish.ended.lock().unwrap_or_else(|p| p.into_inner()) = Some(ended);
            finish.told.notify_one();
        }
    }
}

impl Drop for Viewer {
    /// A viewer the writer lets go of without a reason (the server stopping, or the
    /// writer unwinding) ends as if the server stopped: its thread never waits forever.
    fn drop(&mut self) {
        self.tell(Ok(()));
    }
}

impl Fanout {
    pub fn new(slot: Arc<FrameSlot>) -> Fanout {
        Fanout {
            slot,
            roster: Arc::default(),
        }
    }

    /// Hands `socket` (its response head and frames up to `seen` written) to the writer
    /// and waits until its stream ends. `None`: the writer cannot run (no eventfd or no
    /// thread), and the caller writes the stream itself.
    pub fn carry(&self, socket: &Arc<TcpStream>, advance: bool, seen: u64) -> Option<Ended> {
        let bell = self.slot.bell().ok()?;
        let finish = Arc::new(Finish::default());
        let viewer = Viewer {
            socket: socket.clone(),
            advance,
            seen,
            sent: 0,
            skipped: 0,
            pending: None,
            progress: Instant::now(),
            timeout: socket.write_timeout().ok().flatten(),
            finish: Some(finish.clone()),
        };
        {
            let mut roster = self.roster.lock().unwrap_or_else(|p| p.into_inner());
            roster.joining.push(viewer);
            if !roster.running {
                let (slot, roster_ref) = (self.slot.clone(), self.roster.clone());
                let started = thread::Builder::new()
                    .name("http-stream".into())
                    .stack_size(128 * 1024)
                    .spawn(move || write_streams(&slot, &roster_ref));
                if started.is_err() {
                    let mut viewer = roster.joining.pop().expect("pushed just now");
                    viewer.finish = None;
                    return None;
                }
                roster.running = true;
            }
        }
        // A frame may have come since this viewer's last one: the writer looks now, not
        // at the next frame.
        let _ = bell.write(1);
        let mut ended = finish.ended.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(ended) = ended.take() {
                return Some(ended);
            }
            ended = finish.told.wait(ended).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// The writer's loop; see the module documentation.
fn write_streams(slot: &FrameSlot, roster: &Mutex<Roster>) {
    let Ok(bell) = slot.bell() else {
        // `carry` made the bell before starting this thread, so this does not happen;
        // if it did, the viewers would end as if the server stopped.
        let mut roster = roster.lock().unwrap_or_else(|p| p.into_inner());
        roster.running = false;
        roster.joining.clear();
        return;
    };
    let mut viewers: Vec<Viewer> = Vec::new();
    let mut newest = 0;
    // When the newest frame was last given to the viewers (published or repeated).
    let mut given = Instant::now();
    loop {
        {
            let mut roster = roster.lock().unwrap_or_else(|p| p.into_inner());
            viewers.append(&mut roster.joining);
            if slot.is_closed() {
                // Every viewer ends as the server stops (see `Viewer`'s drop).
                viewers.clear();
            }
            if viewers.is_empty() {
                roster.running = false;
                return;
            }
        }
        let now = Instant::now();
        let latest = slot.latest();
        let mut repeat = false;
        match &latest {
            Some(frame) if frame.seq() != newest => {
                newest = frame.seq();
                given = now;
            }
            _ if now >= given + KEEPALIVE => {
                // No new frame for a while: the newest goes out again, so that proxies
                // and browsers keep the connection.
                repeat = true;
                given = now;
            }
            _ => {}
        }
        let mut i = 0;
        while i < viewers.len() {
            let v = &mut viewers[i];
            let pushed = match (&v.pending, &latest) {
                (Some(_), _) => match v.push(now) {
                    // The newest frame, if it passed this viewer by, goes next.
                    Push::Done => match &latest {
                        Some(frame) if frame.seq() > v.seen => v.start(frame.clone(), now),
                        _ => Push::Done,
                    },
                    other => other,
                },
                (None, Some(frame)) if frame.seq() > v.seen || repeat => {
                    v.start(frame.clone(), now)
                }
                _ => Push::Done,
            };
            let expired = v.deadline().is_some_and(|d| now >= d);
            match pushed {
                Push::Failed(e) => viewers.swap_remove(i).end(Err(e)),
                _ if expired => viewers.swap_remove(i).end(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no progress within the write timeout",
                ))),
                _ => i += 1,
            }
        }
        // Sleep until the next frame, a pending socket drains, a pending part times
        // out, or the newest frame is due again.
        let wake = viewers
            .iter()
            .filter_map(Viewer::deadline)
            .fold(given + KEEPALIVE, Instant::min);
        let left = wake.saturating_duration_since(Instant::now());
        let mut fds = Vec::with_capacity(1 + viewers.len());
        fds.push(PollFd::new(bell.as_fd(), PollFlags::POLLIN));
        for v in viewers.iter().filter(|v| v.pending.is_some()) {
            fds.push(PollFd::new(v.socket.as_fd(), PollFlags::POLLOUT));
        }
        // Rounded up, so that a deadline is past when the poll returns.
        let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            // Cannot happen with valid descriptors; do not spin.
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
        let rung = fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLIN));
        if rung {
            let _ = bell.read();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{setsockopt, sockopt};
    use std::io::Read;
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicU8, Ordering};
    use std::sync::mpsc::{self, Receiver};

    /// A loopback connection: the server's end (shared, as the HTTP side holds it) and
    /// the viewer's.
    fn pair() -> (Arc<TcpStream>, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let viewer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (Arc::new(server), viewer)
    }

    /// Reads classic parts from `r` until the stream ends, and sends on `to` the sequence
    /// number each JPEG carries in its first byte after the start-of-image marker, then
    /// calls `after` with it (which may hold the reader back); stops after `n` parts if
    /// given.
    fn read_parts(r: &mut TcpStream, n: Option<usize>, after: impl Fn(u8), to: &mpsc::Sender<u8>) {
        let mut got = 0;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        while n.is_none_or(|n| got < n) {
            let k = r.read(&mut chunk).unwrap();
            if k == 0 {
                assert!(n.is_none(), "stream ended after {got} parts");
                break;
            }
            buf.extend_from_slice(&chunk[..k]);
            while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_string();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .expect("a part head with its length")
                    .parse()
                    .unwrap();
                let start = end + 4;
                if buf.len() < start + len + 2 {
                    break;
                }
                assert_eq!(&buf[start..start + 2], &[0xFF, 0xD8]);
                let seq = buf[start + 2];
                let _ = to.send(seq);
                got += 1;
                buf.drain(..start + len + 2);
                after(seq);
            }
        }
    }

    fn jpeg(seq: u8, len: usize) -> Vec<u8> {
        let mut j = vec![0u8; len];
        j[..3].copy_from_slice(&[0xFF, 0xD8, seq]);
        j[len - 2..].copy_from_slice(&[0xFF, 0xD9]);
        j
    }

    /// Hands `socket` to `fanout` on a thread of its own, as a viewer's thread does; the
    /// stream's end arrives on the channel.
    fn carried(fanout: &Arc<Fanout>, socket: Arc<TcpStream>, advance: bool) -> Receiver<Ended> {
        let (tx, rx) = mpsc::channel();
        let fanout = fanout.clone();
        thread::spawn(move || {
            let _ = tx.send(fanout.carry(&socket, advance, 0).expect("writer runs"));
        });
        rx
    }

    /// Waits until `done` says yes; fails the test after 30 seconds.
    fn until(done: impl Fn() -> bool) {
        let limit = Instant::now() + Duration::from_secs(30);
        while !done() {
            assert!(Instant::now() < limit, "waited 30 s in vain");
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// The end of a carried stream, which must come within `within`.
    fn ended(rx: &Receiver<Ended>, within: Duration, what: &str) -> Ended {
        rx.recv_timeout(within)
            .unwrap_or_else(|_| panic!("{what}: the stream did not end"))
    }

    #[test]
    fn one_writer_serves_a_fast_viewer_while_a_stalled_one_times_out() {
        let slot = Arc::new(FrameSlot::new());
        let fanout = Arc::new(Fanout::new(slot.clone()));
        let (fast, mut fast_end) = pair();
        let (slow, mut slow_end) = pair();
        let (stalled, _stalled_end) = pair();
        stalled
            .set_write_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        setsockopt(slow.as_ref(), sockopt::SndBuf, &(64 * 1024)).unwrap();
        setsockopt(&slow_end, sockopt::RcvBuf, &(64 * 1024)).unwrap();
        let fast_rx = carried(&fanout, fast, false);
        let slow_rx = carried(&fanout, slow, false);
        let stalled_rx = carried(&fanout, stalled, false);
        // Counted in frames, not in time, so that a busy machine changes nothing: the
        // slow viewer reads nothing more after its first part until every frame is out
        // (with small socket buffers, so that the kernel holds about one frame for it),
        // and the next frame comes only once the fast viewer has the last one.
        let published = Arc::new(AtomicU8::new(0));
        let fast_seen = Arc::new(AtomicU8::new(0));
        let (slow_tx, slow_parts) = mpsc::channel();
        let out = published.clone();
        thread::spawn(move || {
            let held_back = |_| until(|| out.load(Ordering::SeqCst) >= 40);
            read_parts(&mut slow_end, None, held_back, &slow_tx)
        });
        let (fast_tx, fast_parts) = mpsc::channel();
        let seen = fast_seen.clone();
        thread::spawn(move || {
            read_parts(
                &mut fast_end,
                None,
                |seq| seen.store(seq, Ordering::SeqCst),
                &fast_tx,
            )
        });
        // Big frames fill the stalled viewer's socket within a few.
        for seq in 1..=40u8 {
            slot.publish(&jpeg(seq, 256 * 1024), 1, 1);
            until(|| fast_seen.load(Ordering::SeqCst) >= seq);
            published.store(seq, Ordering::SeqCst);
            thread::sleep(Duration::from_millis(20));
        }
        let stalled = ended(&stalled_rx, Duration::from_secs(10), "stalled viewer");
        let e = stalled.end.expect_err("the stalled viewer was not dropped");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(stalled.sent < 40);
        // The slow viewer ends up with the newest frame, having skipped older ones.
        let mut slow_got = Vec::new();
        while slow_got.last() != Some(&40) {
            let seq = slow_parts
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("the slow viewer stopped at {slow_got:?}"));
            slow_got.push(seq);
        }
        slot.close();
        let fast = ended(&fast_rx, Duration::from_secs(10), "fast viewer");
        assert!(fast.end.is_ok(), "closing the slot ends the stream quietly");
        // Every frame, in order; the newest again when a second passed without a new
        // one (the keep-alive repeat).
        let mut fast_got: Vec<u8> = fast_parts.iter().collect();
        fast_got.dedup();
        assert_eq!(
            fast_got,
            (1..=40).collect::<Vec<u8>>(),
            "fast viewer lost frames"
        );
        // 40 frames, and the newest again if the slow viewer took over a second.
        assert!(fast.sent >= 40 && fast.skipped == 0, "{fast:?}");
        let slow = ended(&slow_rx, Duration::from_secs(10), "slow viewer");
        // (A keep-alive repeat counts as sent, not as a frame of its own.)
        slow_got.dedup();
        assert!(slow_got.windows(2).all(|w| w[0] < w[1]), "{slow_got:?}");
        assert!(slow_got.len() < 40, "the slow viewer queued: {slow_got:?}");
        // Each frame it did not get counts as skipped (repeats of the newest as sent).
        assert_eq!(slow.skipped, 40 - slow_got.len() as u64, "{slow:?}");
        assert!(slow.sent >= slow_got.len() as u64, "{slow:?}");
    }

    #[test]
    fn a_viewer_that_leaves_is_told_why() {
        let slot = Arc::new(FrameSlot::new());
        let fanout = Arc::new(Fanout::new(slot.clone()));
        let (socket, viewer_end) = pair();
        drop(viewer_end);
        let rx = carried(&fanout, socket, true);
        for seq in 1..=50u8 {
            slot.publish(&jpeg(seq, 1024), 1, 1);
            thread::sleep(Duration::from_millis(10));
        }
        let ended = ended(&rx, Duration::from_secs(10), "viewer that left");
        let e = ended
            .end
            .expect_err("a closed peer ends the stream with an error");
        assert!(
            matches!(
                e.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            ),
            "{e}"
        );
    }
}
