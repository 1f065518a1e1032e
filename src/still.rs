//! Full-resolution stills (`/snapshot.jpg?full=1`): where a request for one meets the
//! camera that can take it.
//!
//! The stream runs at `--size`; a still is taken at the camera's largest size. Only the
//! source's own thread may change the camera's size, so the request waits at the
//! [`StillDesk`] until the source, between two frames, sees it ([`StillDesk::asked`],
//! one atomic load per frame), takes the picture, answers, and goes back to the stream.
//! Requests that arrive while one is being taken share its answer; the camera takes at
//! most one still at a time.
//!
//! A source that can take stills opens the desk while it captures ([`StillDesk::open`]);
//! a request when none is open, or whose camera stops before answering, is told so at
//! once instead of waiting out its time. A source in a process of its own has the desk
//! opened for it by the server while the process says its own desk is open; the server
//! then serves the requests by passing them on ([`crate::source::isolate`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a request waits for its still: switching a camera's size and letting it
/// settle takes a second or two on a Pi; encoding a large picture in software, more.
pub const STILL_TIMEOUT: Duration = Duration::from_secs(20);

/// A still: a JPEG and its size.
#[derive(Debug)]
pub struct Still {
    pub jpeg: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// Why no still came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StillError {
    /// No running camera here takes stills (a byte-stream source, or none running).
    Unavailable,
    /// The camera did not answer in time.
    TimedOut,
    /// The camera tried and failed, or stopped before it could; its reason.
    Failed(String),
}

impl std::fmt::Display for StillError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StillError::Unavailable => f.write_str(
                "this source takes no full-resolution stills (the test pattern, V4L2 \
                 cameras and libcamera cameras do, also with --isolate on); /snapshot.jpg \
                 gives the stream's size",
            ),
            StillError::TimedOut => f.write_str("the camera did not take the still in time"),
            StillError::Failed(why) => write!(f, "the camera could not take the still: {why}"),
        }
    }
}

/// The meeting point of still requests and the camera; see the module documentation.
#[derive(Default)]
pub struct StillDesk {
    /// A request waits for the camera: the source's cheap per-frame check.
    asked: AtomicBool,
    state: Mutex<DeskState>,
    changed: Condvar,
}

#[derive(Default)]
struct DeskState {
    /// Cameras open at the desk now (0 or 1).
    cameras: usize,
    /// Requests started, and the newest answered: request `n` is answered once
    /// `answered >= n`.
    started: u64,
    answered: u64,
    answer: Option<Result<Arc<Still>, String>>,
}

/// A camera's place at the desk, held while it can take stills; dropping it tells the
/// waiting requests that it stopped.
pub struct StillCamera {
    desk: Arc<StillDesk>,
    /// What the waiting requests are told when it goes.
    why: String,
}

impl StillCamera {
    /// Leaves the desk, telling the waiting requests `why` rather than that the camera
    /// stopped.
    pub fn close(mut self, why: &str) {
        self.why = why.to_string();
    }
}

impl Drop for StillCamera {
    fn drop(&mut self) {
        let mut s = self.desk.state();
        s.cameras = s.cameras.saturating_sub(1);
        if s.cameras == 0 && s.started > s.answered {
            s.answered = s.started;
            s.answer = Some(Err(std::mem::take(&mut self.why)));
            self.desk.asked.store(false, Ordering::SeqCst);
        }
        self.desk.changed.notify_all();
    }
}

impl StillDesk {
    pub fn new() -> StillDesk {
        StillDesk::default()
    }

    fn state(&self) -> MutexGuard<'_, DeskState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks the camera for a still and waits for it, at most `timeout`.
    pub fn take(&self, timeout: Duration) -> Result<Arc<Still>, StillError> {
        let deadline = Instant::now() + timeout;
        let mut s = self.state();
        if s.cameras == 0 {
            return Err(StillError::Unavailable);
        }
        // Join the request being taken, if one is; else start one.
        let mine = if s.started > s.answered {
            s.started
        } else {
            s.started += 1;
            s.started
        };
        self.asked.store(true, Ordering::SeqCst);
        self.changed.notify_all();
        loop {
            if s.answered >= mine {
                return match &s.answer {
                    Some(Ok(still)) => Ok(still.clone()),
                    Some(Err(why)) => Err(StillError::Failed(why.clone())),
                    None => Err(StillError::Failed("no answer".into())),
                };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(StillError::TimedOut);
            }
            s = self
                .changed
                .wait_timeout(s, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// For a source that can take stills: its place at the desk while it captures.
    pub fn open(self: &Arc<Self>) -> StillCamera {
        self.state().cameras += 1;
        StillCamera {
            desk: self.clone(),
            why: "the camera stopped".into(),
        }
    }

    /// True while a camera is open at the desk.
    pub fn has_camera(&self) -> bool {
        self.state().cameras > 0
    }

    /// Waits at most `timeout` for a request: true when one waits. For a server that
    /// passes requests on to a camera elsewhere, in a thread of its own.
    pub fn wait_until_asked(&self, timeout: Duration) -> bool {
        let s = self.state();
        let (_s, _) = self
            .changed
            .wait_timeout_while(s, timeout, |_| !self.asked())
            .unwrap_or_else(|p| p.into_inner());
        self.asked()
    }

    /// True when a request waits: a source checks this between frames.
    pub fn asked(&self) -> bool {
        self.asked.load(Ordering::Relaxed)
    }

    /// Takes up the waiting request, if there is one: the number to answer.
    pub fn begin(&self) -> Option<u64> {
        let s = self.state();
        self.asked.store(false, Ordering::SeqCst);
        (s.started > s.answered).then_some(s.started)
    }

    /// Answers request `number` (from [`begin`](Self::begin)) and every one before it.
    pub fn answer(&self, number: u64, result: Result<Still, String>) {
        let mut s = self.state();
        if number > s.answered {
            s.answered = number;
            s.answer = Some(result.map(Arc::new));
        }
        self.changed.notify_all();
    }

    /// Serves a waiting request, if any, with `take` (run by the source's thread).
    pub fn serve(&self, take: impl FnOnce() -> Result<Still, String>) {
        if !self.asked() {
            return;
        }
        if let Some(number) = self.begin() {
            self.answer(number, take());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    fn still(width: u32) -> Result<Still, String> {
        Ok(Still {
            jpeg: vec![0xFF, 0xD8],
            width,
            height: 1,
        })
    }

    #[test]
    fn without_a_camera_a_request_is_refused_at_once() {
        let desk = Arc::new(StillDesk::new());
        assert_eq!(
            desk.take(Duration::from_secs(60)).unwrap_err(),
            StillError::Unavailable
        );
        let camera = desk.open();
        drop(camera);
        assert_eq!(
            desk.take(Duration::from_secs(60)).unwrap_err(),
            StillError::Unavailable
        );
    }

    #[test]
    fn the_camera_answers_between_frames_and_waiters_share_the_answer() {
        let desk = Arc::new(StillDesk::new());
        let camera = desk.open();
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let desk = desk.clone();
                thread::spawn(move || desk.take(Duration::from_secs(60)))
            })
            .collect();
        // The source's loop: serve once every waiter has asked.
        let until = Instant::now() + Duration::from_secs(60);
        while desk.state().started == 0 || !desk.asked() {
            assert!(Instant::now() < until);
            thread::sleep(Duration::from_millis(1));
        }
        let mut taken = 0;
        while waiters.iter().any(|w| !w.is_finished()) {
            assert!(Instant::now() < until);
            desk.serve(|| {
                taken += 1;
                still(taken)
            });
            thread::sleep(Duration::from_millis(1));
        }
        let widths: Vec<u32> = waiters
            .into_iter()
            .map(|w| w.join().unwrap().unwrap().width)
            .collect();
        // Each waiter got an answer taken after it asked; no more stills than requests.
        assert!((1..=3).contains(&taken), "{taken}");
        assert!(widths.iter().all(|w| (1..=taken).contains(w)), "{widths:?}");
        // Nothing waits now: serving takes nothing.
        desk.serve(|| panic!("a still for nobody"));
        drop(camera);
    }

    #[test]
    fn a_camera_that_stops_or_fails_or_never_answers_is_reported() {
        let desk = Arc::new(StillDesk::new());
        let camera = desk.open();
        assert_eq!(
            desk.take(Duration::from_millis(50)).unwrap_err(),
            StillError::TimedOut
        );
        // That request is still open; the failure answers it and the next joins none.
        desk.serve(|| Err("cannot set 4000x3000".into()));
        assert!(!desk.asked());
        let waiter = {
            let desk = desk.clone();
            thread::spawn(move || desk.take(Duration::from_secs(60)))
        };
        while !desk.asked() {
            thread::sleep(Duration::from_millis(1));
        }
        drop(camera);
        assert_eq!(
            waiter.join().unwrap().unwrap_err(),
            StillError::Failed("the camera stopped".into())
        );
        assert!(!desk.asked(), "a stopped camera leaves no request behind");
    }

    #[test]
    fn a_server_passing_requests_on_wakes_for_each() {
        let desk = Arc::new(StillDesk::new());
        assert!(!desk.has_camera());
        let camera = desk.open();
        assert!(desk.has_camera());
        assert!(!desk.wait_until_asked(Duration::from_millis(20)));
        let waiter = {
            let desk = desk.clone();
            thread::spawn(move || desk.take(Duration::from_secs(60)))
        };
        let until = Instant::now() + Duration::from_secs(60);
        while !desk.wait_until_asked(Duration::from_secs(1)) {
            assert!(Instant::now() < until, "never woken");
        }
        desk.serve(|| still(9));
        assert_eq!(waiter.join().unwrap().unwrap().width, 9);
        assert!(!desk.wait_until_asked(Duration::ZERO));
        let waiter = {
            let desk = desk.clone();
            thread::spawn(move || desk.take(Duration::from_secs(60)))
        };
        while !desk.wait_until_asked(Duration::from_secs(1)) {
            assert!(Instant::now() < until, "never woken");
        }
        camera.close("its process ended");
        assert_eq!(
            waiter.join().unwrap().unwrap_err(),
            StillError::Failed("its process ended".into())
        );
        assert!(!desk.has_camera());
    }
}
