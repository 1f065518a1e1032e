//! `Backoff`: how long a broken source waits before trying again.
//!
//! The pause doubles after each failure up to a ceiling, and falls back to the first
//! pause once the source has delivered good frames for a healthy stretch, so a command
//! that crashes once a day restarts at once, while one that crashes at every start
//! is tried at most twice a minute.

use std::time::Duration;

/// Good frames for this long make a run healthy: the next failure waits the first pause.
pub const HEALTHY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max,
            next: first,
        }
    }

    /// The pause after a failure that ended a run which delivered good frames for
    /// `healthy_for`.
    pub fn after_failure(&mut self, healthy_for: Duration) -> Duration {
        if healthy_for >= HEALTHY {
            self.next = self.first;
        }
        let pause = self.next;
        self.next = (self.next * 2).min(self.max);
        pause
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_ceiling_and_resets_after_a_healthy_run() {
        let s = Duration::from_secs;
        let mut b = Backoff::new(s(1), s(30));
        let pauses: Vec<u64> = (0..7).map(|_| b.after_failure(s(2)).as_secs()).collect();
        assert_eq!(pauses, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(b.after_failure(HEALTHY), s(1));
        assert_eq!(b.after_failure(Duration::ZERO), s(2));
    }
}
