//! The loop every camera source runs around its capture sessions ([`supervise`]): wait
//! while nobody watches (plus [`LINGER`]), run one session, and after a failed one show
//! the no-signal picture, say why in `/status` and pause before the next attempt.
//!
//! A source gives only what is its own: the session (open the camera, capture until
//! the server stops, nobody watches or it fails, with its own log lines) and how it
//! pauses after a failure:
//!
//! * [`Reopen`]: a camera device opened again after 1 s, 2 s, then every 4 s (the V4L2
//!   and libcamera sources);
//! * [`Restart`]: a helper program started again after the growing pause of
//!   [`Backoff`], each start after a failure counted as a restart (the `rpicam` source).

use std::time::Duration;

use super::backoff::Backoff;
use super::nosignal::NoSignal;
use super::{FrameSink, LINGER};
use crate::ratelog::{self, RateLimit};

/// How a capture session ended.
pub enum Ended {
    /// The server stops.
    Stopping,
    /// Nobody watches any more.
    Idle,
    /// The camera could not be opened or stopped delivering: `problem` says why; it had
    /// delivered good pictures for `healthy_for`.
    Failed {
        problem: String,
        healthy_for: Duration,
    },
}

impl Ended {
    /// A failure before or without good pictures.
    pub fn failed(problem: String) -> Ended {
        Ended::Failed {
            problem,
            healthy_for: Duration::ZERO,
        }
    }
}

/// What a source does between its sessions.
pub trait Retry {
    /// A session is about to start (somebody watches).
    fn starting(&mut self, _sink: &mut FrameSink) {}

    /// A session ended because nobody watches.
    fn idle(&mut self) {}

    /// A session failed: report `problem` and wait before the next attempt.
    fn failed(&mut self, sink: &mut FrameSink, problem: &str, healthy_for: Duration);
}

/// Runs `session` whenever somebody watches, until the server stops; `retry` handles
/// the time between sessions, and each session may consult it.
pub fn supervise<R: Retry>(
    sink: &mut FrameSink,
    retry: &mut R,
    mut session: impl FnMut(&mut FrameSink, &mut R) -> Ended,
) {
    sink.stats().set_capturing(false);
    while !sink.stopping() {
        if !sink.wanted(LINGER) {
            sink.wait_until_wanted(LINGER);
            continue;
        }
        retry.starting(sink);
        match session(sink, retry) {
            Ended::Stopping => return,
            Ended::Idle => retry.idle(),
            Ended::Failed {
                problem,
                healthy_for,
            } => retry.failed(sink, &problem, healthy_for),
        }
    }
}

/// The first pause of [`Reopen`].
const REOPEN_FIRST: Duration = Duration::from_secs(1);

/// The longest pause of [`Reopen`].
const REOPEN_MAX: Duration = Duration::from_secs(4);

/// A camera device opened again after a failure: each new problem logged once ("…;
/// trying again"), the pause doubling from 1 s to 4 s until the source calls
/// [`Reopen::reset`].
pub struct Reopen {
    nosignal: NoSignal,
    pause: Duration,
}

impl Reopen {
    /// Draws the no-signal picture at `fallback` until a good frame gave the size.
    pub fn new(quality: u8, fallback: (u16, u16)) -> Reopen {
        Reopen {
            nosignal: NoSignal::new(quality, fallback),
            pause: REOPEN_FIRST,
        }
    }

    /// The camera works again: true if a problem had been logged since it last did.
    pub fn recovered(&mut self) -> bool {
        self.nosignal.recovered()
    }

    /// The next failure waits the first pause again.
    pub fn reset(&mut self) {
        self.pause = REOPEN_FIRST;
    }
}

impl Retry for Reopen {
    fn failed(&mut self, sink: &mut FrameSink, problem: &str, _healthy_for: Duration) {
        self.nosignal.retry(sink, problem, self.pause);
        self.pause = (self.pause * 2).min(REOPEN_MAX);
    }
}

/// A helper program started again after a failure: the problem logged once (rate
/// limited) until pictures come again, `/status` and the no-signal picture saying when
/// the next start is, the pause that of [`Backoff`] from 1 s to 30 s.
pub struct Restart {
    nosignal: NoSignal,
    backoff: Backoff,
    /// The problem last logged; the session clears it once pictures come again.
    pub last_logged: String,
    /// The next start follows a failure (and counts as a restart), not idleness.
    after_failure: bool,
}

impl Restart {
    /// Draws the no-signal picture at `fallback` until a good frame gave the size.
    pub fn new(quality: u8, fallback: (u16, u16)) -> Restart {
        Restart {
            nosignal: NoSignal::new(quality, fallback),
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(30)),
            last_logged: String::new(),
            after_failure: false,
        }
    }
}

impl Retry for Restart {
    fn starting(&mut self, sink: &mut FrameSink) {
        if self.after_failure {
            sink.stats().count_restart();
        }
    }

    fn idle(&mut self) {
        self.after_failure = false;
    }

    fn failed(&mut self, sink: &mut FrameSink, problem: &str, healthy_for: Duration) {
        self.after_failure = true;
        if sink.stopping() {
            return;
        }
        let pause = self.backoff.after_failure(healthy_for);
        if problem != self.last_logged {
            static FAILED: RateLimit = RateLimit::new(ratelog::DEFAULT_INTERVAL);
            crate::warn_limited!(FAILED, "{problem}");
            self.last_logged = problem.to_string();
        }
        let why = format!("{problem}; trying again in {} s", pause.as_secs());
        self.nosignal.show(sink, &why);
        sink.stats().set_error(Some(why.clone()));
        self.nosignal.wait(sink, &why, pause);
    }
}
