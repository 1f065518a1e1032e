//! Counters shared between the source thread and the HTTP side, read by `/status`.
//!
//! Everything here is a plain atomic, written by one side and read by the other, except
//! the source's current problem (its text and since when) and its encoder's name, which
//! change rarely and sit behind mutexes.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the source reports about itself.
#[derive(Debug)]
pub struct SourceStats {
    description: String,
    /// Good frames the source published (stand-in pictures such as no-signal not counted).
    frames: AtomicU64,
    /// Frames the source dropped: corrupt, truncated or oversized input, failed encodes.
    dropped: AtomicU64,
    /// Frame rate over the last measuring window, in hundredths of a frame per second.
    fps_centi: AtomicU32,
    /// Milliseconds since `started` at the last publication (0: none yet).
    last_publish_ms: AtomicU64,
    started: Instant,
    /// The current problem and when it began (it keeps its start while the text changes).
    problem: Mutex<Option<(String, Instant)>>,
    /// Whether `problem` is set, so that the per-frame path needs no lock.
    has_problem: AtomicBool,
    /// Times the source was opened or started again after a failure.
    restarts: AtomicU64,
    /// Whether the source runs now: captures, draws, or has its command running. False
    /// while it idles because nobody watches (and while a camera is being opened again).
    capturing: AtomicBool,
    /// Which JPEG encoder runs ("none" for sources that deliver JPEG).
    encoder: Mutex<String>,
    /// The camera's sensor mode, for cameras that say (size, bit depth, rate, crop).
    sensor_mode: Mutex<Option<String>>,
    /// Threads encoding JPEG in software (0: none, or the hardware encodes).
    encode_workers: AtomicUsize,
    /// Pictures dropped because every encoding thread was busy (or a newer picture was
    /// published first).
    workers_busy: AtomicU64,
}

impl SourceStats {
    pub fn new(description: String) -> SourceStats {
        SourceStats {
            description,
            frames: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            fps_centi: AtomicU32::new(0),
            last_publish_ms: AtomicU64::new(0),
            started: Instant::now(),
            problem: Mutex::new(None),
            has_problem: AtomicBool::new(false),
            restarts: AtomicU64::new(0),
            capturing: AtomicBool::new(true),
            encoder: Mutex::new("none".to_string()),
            sensor_mode: Mutex::new(None),
            encode_workers: AtomicUsize::new(0),
            workers_busy: AtomicU64::new(0),
        }
    }

    /// Records which JPEG encoder runs (see `JpegEncoder::describe`).
    pub fn set_encoder(&self, name: &str) {
        let mut e = self.encoder.lock().unwrap_or_else(|e| e.into_inner());
        if *e != name {
            e.clear();
            e.push_str(name);
        }
    }

    pub fn encoder(&self) -> String {
        self.encoder
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Records how many threads encode in software.
    /// Records the camera's sensor mode, as one line of text.
    pub fn set_sensor_mode(&self, mode: Option<String>) {
        *self.sensor_mode.lock().unwrap_or_else(|e| e.into_inner()) = mode;
    }

    /// The camera's sensor mode, when the source knows it.
    pub fn sensor_mode(&self) -> Option<String> {
        self.sensor_mode
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set_encode_workers(&self, n: usize) {
        self.encode_workers.store(n, Ordering::Relaxed);
    }

    pub fn encode_workers(&self) -> usize {
        self.encode_workers.load(Ordering::Relaxed)
    }

    /// Counts a picture dropped because every encoding thread was busy.
    pub fn count_workers_busy(&self) {
        self.count_workers_busy_by(1);
    }

    /// Counts `n` such pictures at once (a source process reports its total).
    pub fn count_workers_busy_by(&self, n: u64) {
        self.workers_busy.fetch_add(n, Ordering::Relaxed);
    }

    pub fn workers_busy(&self) -> u64 {
        self.workers_busy.load(Ordering::Relaxed)
    }

    pub fn set_capturing(&self, on: bool) {
        self.capturing.store(on, Ordering::Relaxed);
    }

    /// Whether the source runs now (sources that never idle, such as stdin: always).
    pub fn capturing(&self) -> bool {
        self.capturing.load(Ordering::Relaxed)
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    pub fn count_dropped(&self) {
        self.count_dropped_by(1);
    }

    /// Counts `n` dropped frames at once (a source process reports its total).
    pub fn count_dropped_by(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub(crate) fn set_fps(&self, fps: f64) {
        self.fps_centi.store(
            (fps * 100.0).round().clamp(0.0, u32::MAX as f64) as u32,
            Ordering::Relaxed,
        );
    }

    /// Good frames published so far.
    pub fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }

    pub(crate) fn mark_published(&self, at: Instant) {
        self.frames.fetch_add(1, Ordering::Relaxed);
        let ms = at.saturating_duration_since(self.started).as_millis() as u64;
        self.last_publish_ms.store(ms.max(1), Ordering::Relaxed);
    }

    /// Measured frame rate; 0 once the source has been silent for two seconds.
    pub fn fps(&self) -> f64 {
        match self.since_last_frame() {
            Some(age) if age < Duration::from_secs(2) => {
                self.fps_centi.load(Ordering::Relaxed) as f64 / 100.0
            }
            _ => 0.0,
        }
    }

    /// Time since the last published frame, if there was one.
    pub fn since_last_frame(&self) -> Option<Duration> {
        let ms = self.last_publish_ms.load(Ordering::Relaxed);
        (ms > 0).then(|| {
            self.started
                .elapsed()
                .saturating_sub(Duration::from_millis(ms))
        })
    }

    /// Records (or clears, with `None`) the source's current problem. A problem that
    /// follows another keeps the first one's start time.
    pub fn set_error(&self, error: Option<String>) {
        let mut problem = self.problem.lock().unwrap_or_else(|e| e.into_inner());
        *problem = match (error, problem.take()) {
            (Some(text), Some((_, since))) => Some((text, since)),
            (Some(text), None) => Some((text, Instant::now())),
            (None, _) => None,
        };
        self.has_problem.store(problem.is_some(), Ordering::Release);
    }

    /// Clears the current problem, if any (a good frame arrived), and returns what it was
    /// and how long it lasted.
    pub(crate) fn clear_error(&self) -> Option<(String, Duration)> {
        if !self.has_problem.load(Ordering::Acquire) {
            return None;
        }
        let mut problem = self.problem.lock().unwrap_or_else(|e| e.into_inner());
        self.has_problem.store(false, Ordering::Release);
        problem.take().map(|(text, since)| (text, since.elapsed()))
    }

    pub fn error(&self) -> Option<String> {
        self.error_and_age().map(|(text, _)| text)
    }

    /// The current problem and how long it has lasted.
    pub fn error_and_age(&self) -> Option<(String, Duration)> {
        self.problem
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|(text, since)| (text.clone(), since.elapsed()))
    }

    /// Counts one restart of the source after a failure.
    pub fn count_restart(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }

    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }
}

/// Counts streaming clients against an optional limit.
#[derive(Debug)]
pub struct ClientCounter {
    current: AtomicUsize,
    total: AtomicU64,
    max: usize,
}

/// A place taken in the [`ClientCounter`]; dropping it frees the place.
#[derive(Debug)]
pub struct ClientPlace {
    counter: Arc<ClientCounter>,
}

impl ClientCounter {
    /// `max` = 0 means no limit.
    pub fn new(max: usize) -> ClientCounter {
        ClientCounter {
            current: AtomicUsize::new(0),
            total: AtomicU64::new(0),
            max: if max == 0 { usize::MAX } else { max },
        }
    }

    /// Takes a place, or `None` when the limit is reached.
    pub fn try_enter(self: &Arc<Self>) -> Option<ClientPlace> {
        self.current
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()?;
        self.total.fetch_add(1, Ordering::Relaxed);
        Some(ClientPlace {
            counter: self.clone(),
        })
    }

    pub fn current(&self) -> usize {
        self.current.load(Ordering::Acquire)
    }

    /// Streams served since start.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    pub fn max(&self) -> Option<usize> {
        (self.max != usize::MAX).then_some(self.max)
    }
}

impl Drop for ClientPlace {
    fn drop(&mut self) {
        self.counter.current.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Frame rate over windows of about one second, kept by the publishing thread.
#[derive(Debug)]
pub struct RateMeter {
    window_start: Instant,
    count: u32,
}

impl Default for RateMeter {
    fn default() -> Self {
        RateMeter {
            window_start: Instant::now(),
            count: 0,
        }
    }
}

impl RateMeter {
    /// Counts one event at `now`; returns the rate when a window closes.
    pub fn tick(&mut self, now: Instant) -> Option<f64> {
        self.count += 1;
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed < Duration::from_secs(1) {
            return None;
        }
        let rate = self.count as f64 / elapsed.as_secs_f64();
        self.count = 0;
        self.window_start = now;
        Some(rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_limit_and_release() {
        let c = Arc::new(ClientCounter::new(2));
        let a = c.try_enter().unwrap();
        let _b = c.try_enter().unwrap();
        assert!(c.try_enter().is_none());
        drop(a);
        assert_eq!(c.current(), 1);
        assert!(c.try_enter().is_some());
        assert_eq!(c.total(), 3);
        assert_eq!(ClientCounter::new(0).max(), None);
    }

    #[test]
    fn a_problem_keeps_its_start_until_cleared() {
        let s = SourceStats::new("x".into());
        assert_eq!(s.error(), None);
        s.set_error(Some("first".into()));
        std::thread::sleep(Duration::from_millis(30));
        s.set_error(Some("second".into()));
        let (text, age) = s.error_and_age().unwrap();
        assert_eq!(text, "second");
        assert!(age >= Duration::from_millis(30), "{age:?}");
        s.clear_error();
        assert_eq!(s.error_and_age(), None);
        s.set_error(Some("again".into()));
        assert!(s.error_and_age().unwrap().1 < Duration::from_millis(30));
        s.count_restart();
        assert_eq!(s.restarts(), 1);
    }

    #[test]
    fn rate_meter_measures_windows() {
        let mut m = RateMeter::default();
        let t0 = m.window_start;
        for i in 1..10 {
            assert!(m.tick(t0 + Duration::from_millis(i * 100)).is_none());
        }
        let r = m.tick(t0 + Duration::from_millis(1000)).unwrap();
        assert!((r - 10.0).abs() < 1e-9);
    }
}
