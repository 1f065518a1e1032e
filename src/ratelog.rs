//! Log lines with a bound: at most one line per kind of event per interval, however
//! often the event happens.
//!
//! Events that depend on input (a bad frame from a pipe, a packet from the network)
//! can come thousands of times a second. Logging each one fills the disk and spends
//! the CPU on formatting. A [`RateLimit`] lets the first occurrence through at once,
//! then at most one line per interval; the next line that gets through says how many
//! were held back since the previous one, so nothing goes unmentioned for long while
//! the events go on. The counts themselves belong in `/status`, not in the log.
//!
//! ```text
//! use std::time::Duration;
//! use picam_stream::ratelog::RateLimit;
//!
//! static BAD_FRAME: RateLimit = RateLimit::new(Duration::from_secs(10));
//!
//! fn on_bad_frame(len: usize) {
//!     if let Some(held) = BAD_FRAME.admit() {
//!         // `held` prints nothing when no line was held back, and otherwise
//!         // " (and 1234 more like it in the last 10 s)".
//!         log::warn!("dropped a bad frame of {len} bytes{held}");
//!     }
//! }
//! ```
//!
//! The limit is a few atomics: no lock, no allocation, and for a held-back event one
//! clock read and two atomic operations. The [`warn_limited!`](crate::warn_limited)
//! macro wraps the pattern above.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The interval most per-event warnings use.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// Milliseconds since the first use of any limit in this process (a monotonic clock
/// that fits an atomic).
fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Lets through at most one log line per interval; see the module documentation.
/// Usually a `static` beside the line it limits.
#[derive(Debug)]
pub struct RateLimit {
    interval_ms: u64,
    /// When the next line may go, in [`now_ms`] time plus one; 0 before the first.
    next_ms: AtomicU64,
    /// Events held back since the last line that went.
    held: AtomicU64,
}

impl RateLimit {
    /// A limit of one line per `interval` (at least a millisecond).
    pub const fn new(interval: Duration) -> RateLimit {
        let ms = interval.as_millis();
        let interval_ms = if ms == 0 {
            1
        } else if ms > u64::MAX as u128 {
            u64::MAX
        } else {
            ms as u64
        };
        RateLimit {
            interval_ms,
            next_ms: AtomicU64::new(0),
            held: AtomicU64::new(0),
        }
    }

    /// Counts one event. `Some` when its line should be logged now, with what was held
    /// back since the previous line; `None` when it is held back (and counted).
    pub fn admit(&self) -> Option<Held> {
        let now = now_ms().saturating_add(1);
        let next = self.next_ms.load(Ordering::Relaxed);
        if now >= next {
            let following = now.saturating_add(self.interval_ms);
            // One thread wins the slot; any other racing for it counts as held back.
            if self
                .next_ms
                .compare_exchange(next, following, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                let count = self.held.swap(0, Ordering::Relaxed);
                // The previous line went at `next - interval` (unless this is the first).
                let since_ms = if next == 0 {
                    0
                } else {
                    now - next.saturating_sub(self.interval_ms)
                };
                return Some(Held {
                    count,
                    since: Duration::from_millis(since_ms),
                });
            }
        }
        self.held.fetch_add(1, Ordering::Relaxed);
        None
    }

    /// Events held back since the last line that went, taken (the count restarts from
    /// zero): for a closing summary when the events stop, e.g. at the end of an input.
    pub fn take_held(&self) -> u64 {
        self.held.swap(0, Ordering::Relaxed)
    }
}

/// How many events were held back before the one being logged, and over how long.
/// Its `Display` is empty when there were none, and otherwise
/// ` (and N more like it in the last T s)`, to append to the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// Events not logged since the previous line.
    pub count: u64,
    /// Time since the previous line.
    pub since: Duration,
}

impl fmt::Display for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.count == 0 {
            return Ok(());
        }
        write!(
            f,
            " (and {} more like it in the last {} s)",
            self.count,
            self.since.as_secs().max(1)
        )
    }
}

/// `log::warn!` through a [`RateLimit`]: `warn_limited!(LIMIT, "format", args...)`
/// logs the line with the held-back count appended, or counts it as held back.
#[macro_export]
macro_rules! warn_limited {
    ($limit:expr, $($arg:tt)+) => {
        if let Some(held) = $limit.admit() {
            log::warn!("{}{}", format_args!($($arg)+), held);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_event_goes_then_one_per_interval_with_the_count() {
        let limit = RateLimit::new(Duration::from_millis(200));
        let first = limit.admit().expect("the first event is logged");
        assert_eq!(first.count, 0);
        assert_eq!(first.to_string(), "");
        for _ in 0..1000 {
            assert!(limit.admit().is_none(), "held back within the interval");
        }
        std::thread::sleep(Duration::from_millis(250));
        let next = limit.admit().expect("a line once the interval is over");
        assert_eq!(next.count, 1000);
        assert!(next.since >= Duration::from_millis(200), "{next:?}");
        assert!(
            next.to_string()
                .starts_with(" (and 1000 more like it in the last "),
            "{next}"
        );
        assert!(limit.admit().is_none());
        assert_eq!(limit.take_held(), 1);
        assert_eq!(limit.take_held(), 0);
    }

    #[test]
    fn racing_threads_log_one_line_and_count_the_rest() {
        static LIMIT: RateLimit = RateLimit::new(Duration::from_secs(3600));
        // Each worker: lines logged, and the held-back counts those lines carried (an
        // event held back while the winner takes the count is reported in its line).
        let (logged, reported) = std::thread::scope(|s| {
            let workers: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        (0..10_000)
                            .filter_map(|_| LIMIT.admit())
                            .fold((0u64, 0u64), |(n, c), held| (n + 1, c + held.count))
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or((0, 0)))
                .fold((0, 0), |(n, c), (wn, wc)| (n + wn, c + wc))
        });
        assert_eq!(logged, 1);
        assert_eq!(reported + LIMIT.take_held(), 39_999);
    }

    #[test]
    fn a_zero_interval_still_limits_to_one_a_millisecond() {
        let limit = RateLimit::new(Duration::ZERO);
        assert!(limit.admit().is_some());
        let started = Instant::now();
        let mut logged = 1u64;
        while started.elapsed() < Duration::from_millis(20) {
            logged += u64::from(limit.admit().is_some());
        }
        assert!(logged <= 25, "{logged} lines in 20 ms");
    }
}
