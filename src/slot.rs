//! `FrameSlot`: the newest frame, handed from one producer to any number of readers.
//!
//! The slot keeps exactly one frame: the newest. Publishing swaps it in without taking a
//! lock and without waiting for any reader, then wakes the readers that sleep on the
//! slot. A reader asks for "the first frame newer than sequence number N" and gets the
//! newest one, so a reader that falls behind skips frames and never builds a backlog.
//! Frames are shared through `Arc`; their bytes are never copied per reader.
//!
//! Sleeping and waking use the Linux futex on a 32-bit publication counter, which has no
//! lost wake-ups: a reader only sleeps while the counter still holds the value it read.
//! A reader that also waits for other descriptors (the stream writer waits for sockets
//! to drain) polls the slot's [bell](FrameSlot::bell) instead, an eventfd that every
//! publication and the close make readable.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use nix::sys::eventfd::{EfdFlags, EventFd};

use crate::frame::Frame;
use crate::still::StillDesk;

/// What a reader gets from [`FrameSlot::next_after`].
#[derive(Debug)]
pub enum Next {
    /// A frame newer than the one asked about (the newest one).
    Frame(Arc<Frame>),
    /// Nothing newer arrived within the timeout.
    TimedOut,
    /// The slot was closed: the server is stopping.
    Closed,
}

/// Holds the newest frame; see the module documentation.
///
/// It also carries demand back to the source: how many streams are reading, when a
/// snapshot last asked for a frame, so a camera can stop capturing when nobody looks,
/// and requests for full-resolution stills.
pub struct FrameSlot {
    latest: ArcSwapOption<Frame>,
    /// Bumped on every publication and on close; readers sleep on it.
    wake_word: AtomicU32,
    /// Readers currently asleep (or about to be), so a publication with none skips the wake.
    sleepers: AtomicU32,
    last_seq: AtomicU64,
    closed: AtomicBool,
    /// Streams reading now.
    watchers: AtomicU64,
    /// Milliseconds after `epoch` of the last one-off request for a frame (0: never).
    wanted_ms: AtomicU64,
    /// Bumped when demand arrives (a stream, a request) and on close; idle sources
    /// sleep on it.
    demand_word: AtomicU32,
    epoch: Instant,
    /// Rung on every publication and on close, once somebody asked for it.
    bell: OnceLock<EventFd>,
    /// Requests for a full-resolution still, for the source to take.
    stills: Arc<StillDesk>,
}

impl Default for FrameSlot {
    fn default() -> Self {
        FrameSlot {
            latest: ArcSwapOption::empty(),
            wake_word: AtomicU32::new(0),
            sleepers: AtomicU32::new(0),
            last_seq: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            watchers: AtomicU64::new(0),
            wanted_ms: AtomicU64::new(0),
            demand_word: AtomicU32::new(0),
            epoch: Instant::now(),
            bell: OnceLock::new(),
            stills: Arc::new(StillDesk::new()),
        }
    }
}

/// A stream's standing interest in frames; dropping it ends the interest.
pub struct Watch<'a>(&'a FrameSlot);

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        self.0.watchers.fetch_sub(1, Ordering::AcqRel);
        self.0.want();
    }
}

impl FrameSlot {
    pub fn new() -> FrameSlot {
        FrameSlot::default()
    }

    /// Registers a stream that wants every new frame while the returned guard lives.
    pub fn watch(&self) -> Watch<'_> {
        self.watchers.fetch_add(1, Ordering::SeqCst);
        self.wake_idle();
        Watch(self)
    }

    /// Where requests for full-resolution stills wait for the source.
    pub fn stills(&self) -> &Arc<StillDesk> {
        &self.stills
    }

    /// Registers a one-off request for a fresh frame (a snapshot).
    pub fn want(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.wanted_ms.store(ms.max(1), Ordering::SeqCst);
        self.wake_idle();
    }

    /// Sleeps while nobody wants frames (see [`FrameSlot::wanted`]), at most `most`:
    /// a stream, a request or closing the slot ends the sleep at once.
    pub fn wait_for_demand(&self, linger: Duration, most: Duration) {
        let word = self.demand_word.load(Ordering::SeqCst);
        if self.wanted(linger) || self.closed.load(Ordering::SeqCst) {
            return;
        }
        futex::wait(&self.demand_word, word, most);
    }

    /// Wakes a source sleeping in [`FrameSlot::wait_for_demand`]. Demand arrives at
    /// the pace of viewers, not of frames, so the wake is not worth skipping.
    fn wake_idle(&self) {
        self.demand_word.fetch_add(1, Ordering::SeqCst);
        futex::wake_all(&self.demand_word);
    }

    /// True while a stream watches, or within `linger` of the last request or stream end.
    pub fn wanted(&self, linger: Duration) -> bool {
        if self.watchers.load(Ordering::SeqCst) > 0 {
            return true;
        }
        let at = self.wanted_ms.load(Ordering::SeqCst);
        at > 0 && self.epoch.elapsed() < Duration::from_millis(at) + linger
    }

    /// Makes `jpeg` the newest frame and wakes waiting readers. Never blocks.
    ///
    /// Only one thread may publish into a slot.
    pub fn publish(&self, jpeg: &[u8], width: u16, height: u16) -> Arc<Frame> {
        let seq = self.last_seq.load(Ordering::Relaxed) + 1;
        let frame = Arc::new(Frame::new(seq, jpeg, width, height));
        self.latest.store(Some(frame.clone()));
        self.last_seq.store(seq, Ordering::Release);
        self.wake_all();
        frame
    }

    /// The newest frame, if any was published.
    pub fn latest(&self) -> Option<Arc<Frame>> {
        self.latest.load_full()
    }

    /// Number of frames published so far.
    pub fn published(&self) -> u64 {
        self.last_seq.load(Ordering::Acquire)
    }

    /// Waits up to `timeout` for a frame with a sequence number above `seen` (0: any).
    pub fn next_after(&self, seen: u64, timeout: Duration) -> Next {
        let deadline = Instant::now() + timeout;
        loop {
            let word = self.wake_word.load(Ordering::SeqCst);
            if self.closed.load(Ordering::SeqCst) {
                return Next::Closed;
            }
            if let Some(frame) = self.latest.load_full() {
                if frame.seq() > seen {
                    return Next::Frame(frame);
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Next::TimedOut;
            }
            self.sleepers.fetch_add(1, Ordering::SeqCst);
            futex::wait(&self.wake_word, word, deadline - now);
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Wakes every reader for good: they all get [`Next::Closed`] from now on.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.wake_all();
        self.wake_idle();
    }

    /// True once the slot is closed (the server is stopping).
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// A non-blocking eventfd that becomes readable on every publication and on close,
    /// for a reader that waits for it together with other descriptors (with `poll`).
    /// Whoever waits on it reads it empty, then looks at the slot: several rings
    /// between two looks count once. Others may ring it too (write to it), to make the
    /// waiter look again. Made on first use; readers that never ask for it
    /// cost publications nothing.
    pub fn bell(&self) -> io::Result<&EventFd> {
        if let Some(bell) = self.bell.get() {
            return Ok(bell);
        }
        let made =
            EventFd::from_value_and_flags(0, EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)?;
        // Two first callers at once: one eventfd wins, the other is closed.
        let _ = self.bell.set(made);
        Ok(self.bell.get().expect("set just now"))
    }

    fn wake_all(&self) {
        if let Some(bell) = self.bell.get() {
            // Cannot fail short of the counter's 2^64 - 2 limit, which a reader empties.
            let _ = bell.write(1);
        }
        self.wake_word.fetch_add(1, Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            futex::wake_all(&self.wake_word);
        }
    }
}

/// The two futex operations the slot needs, on a process-private word.
mod futex {
    use std::sync::atomic::AtomicU32;
    use std::time::Duration;

    use nix::libc;

    /// The layout `SYS_futex` takes for its timeout on every Linux architecture: two
    /// `long`s (on 32-bit ARM the kernel reads the old 32-bit timespec through this call).
    #[repr(C)]
    struct KernelTimespec {
        tv_sec: libc::c_long,
        tv_nsec: libc::c_long,
    }

    /// Sleeps while `*word == expected`, at most `timeout`. Spurious returns are fine:
    /// the caller re-checks its condition.
    pub fn wait(word: &AtomicU32, expected: u32, timeout: Duration) {
        let secs = timeout.as_secs().min(libc::c_long::MAX as u64) as libc::c_long;
        let ts = KernelTimespec {
            tv_sec: secs,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: FUTEX_WAIT reads the aligned u32 behind `word`, which lives as long as
        // this call, and the timespec on our stack; the remaining arguments are unused.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                expected,
                &ts as *const KernelTimespec,
                std::ptr::null::<u32>(),
                0u32,
            );
        }
    }

    /// Wakes every thread sleeping on `word`.
    pub fn wake_all(word: &AtomicU32) {
        // SAFETY: FUTEX_WAKE only uses the address of `word` as a key; it reads nothing
        // else and writes nothing.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
                libc::c_int::MAX,
                std::ptr::null::<KernelTimespec>(),
                std::ptr::null::<u32>(),
                0u32,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    fn jpeg() -> Vec<u8> {
        vec![0xFF, 0xD8, 0xFF, 0xD9]
    }

    #[test]
    fn reader_gets_newest_and_skips_older() {
        let slot = FrameSlot::new();
        assert!(slot.latest().is_none());
        for _ in 0..5 {
            slot.publish(&jpeg(), 1, 1);
        }
        match slot.next_after(0, Duration::from_millis(10)) {
            Next::Frame(f) => assert_eq!(f.seq(), 5),
            other => panic!("expected a frame, got {other:?}"),
        }
        assert!(matches!(
            slot.next_after(5, Duration::from_millis(20)),
            Next::TimedOut
        ));
    }

    #[test]
    fn the_bell_rings_on_publish_and_close() {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        let slot = FrameSlot::new();
        let bell = slot.bell().unwrap();
        let rung = || {
            let mut fds = [PollFd::new(bell.as_fd(), PollFlags::POLLIN)];
            poll(&mut fds, PollTimeout::ZERO).unwrap() == 1
        };
        assert!(!rung());
        slot.publish(&jpeg(), 1, 1);
        slot.publish(&jpeg(), 1, 1);
        assert!(rung());
        assert_eq!(bell.read().unwrap(), 2, "one ring per publication");
        assert!(!rung());
        slot.close();
        assert!(rung());
        assert!(slot.is_closed());
    }

    #[test]
    fn demand_follows_watchers_and_requests() {
        let slot = FrameSlot::new();
        let linger = Duration::from_millis(50);
        assert!(!slot.wanted(linger));
        let w = slot.watch();
        assert!(slot.wanted(Duration::ZERO));
        drop(w);
        assert!(slot.wanted(linger), "lingers after the last stream");
        thread::sleep(Duration::from_millis(80));
        assert!(!slot.wanted(linger));
        slot.want();
        assert!(slot.wanted(linger));
    }

    #[test]
    fn an_idle_source_wakes_on_demand_and_close() {
        let slot = Arc::new(FrameSlot::new());
        let linger = Duration::from_millis(20);
        // Nobody wants frames: the wait lasts its whole bound.
        let t = Instant::now();
        slot.wait_for_demand(linger, Duration::from_millis(60));
        assert!(t.elapsed() >= Duration::from_millis(60));
        for wake in [
            Box::new(|s: &FrameSlot| s.want()) as Box<dyn Fn(&FrameSlot) + Send>,
            Box::new(|s: &FrameSlot| drop(s.watch())),
            Box::new(|s: &FrameSlot| s.close()),
        ] {
            thread::sleep(linger * 2);
            let sleeper = {
                let slot = slot.clone();
                thread::spawn(move || {
                    let t = Instant::now();
                    slot.wait_for_demand(linger, Duration::from_secs(30));
                    t.elapsed()
                })
            };
            thread::sleep(Duration::from_millis(50));
            wake(&slot);
            let slept = sleeper.join().unwrap();
            assert!(slept < Duration::from_secs(20), "not woken: {slept:?}");
        }
    }

    #[test]
    fn sleeping_readers_wake_on_publish_and_close() {
        let slot = Arc::new(FrameSlot::new());
        let readers: Vec<_> = (0..8)
            .map(|_| {
                let slot = slot.clone();
                thread::spawn(move || {
                    let mut seen = 0;
                    let mut got = 0;
                    loop {
                        match slot.next_after(seen, Duration::from_secs(10)) {
                            Next::Frame(f) => {
                                assert!(f.seq() > seen);
                                seen = f.seq();
                                got += 1;
                            }
                            Next::TimedOut => panic!("reader was not woken"),
                            Next::Closed => return (seen, got),
                        }
                    }
                })
            })
            .collect();
        for _ in 0..200 {
            slot.publish(&jpeg(), 1, 1);
            thread::sleep(Duration::from_micros(200));
        }
        // Let the readers catch up with the last frame before closing.
        thread::sleep(Duration::from_millis(100));
        slot.close();
        for r in readers {
            let (seen, got) = r.join().unwrap();
            assert_eq!(seen, 200);
            assert!(got > 0);
        }
        assert!(matches!(
            slot.next_after(0, Duration::from_secs(1)),
            Next::Closed
        ));
    }
}
