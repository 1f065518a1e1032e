//! The server's signals, taken without a signal handler.
//!
//! The signals are blocked in the main thread before any other thread starts (threads
//! inherit the mask), and the main thread later takes them synchronously with `sigwait`.
//! Nothing runs in signal-handler context. Child processes started through
//! `std::process::Command` begin with an empty mask, so they see these signals as usual.
//!
//! | signal | what the server does |
//! |--------|----------------------|
//! | SIGINT, SIGTERM, SIGHUP, SIGQUIT | stops cleanly (mDNS goodbye, `exec:` command stopped) and exits with status 0 |
//! | SIGUSR1 | writes a one-line status summary to the log and goes on |
//! | SIGUSR2, SIGALRM | ignored, with a debug log line |
//! | SIGPIPE | ignored (as by every Rust program): a closed socket is an error on write |

use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal};

use crate::stats::{ClientCounter, SourceStats};

/// Signals that stop the server.
const STOP: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

/// Signals that would end the server by default but mean nothing to it.
const IGNORED: [Signal; 2] = [Signal::SIGUSR2, Signal::SIGALRM];

/// One signal taken by [`StopSignals::next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Stop the server; the signal's name.
    Stop(&'static str),
    /// Log a status summary (SIGUSR1).
    Status,
    /// Nothing to do; the signal's name.
    Ignored(&'static str),
}

/// What a signal means to the server.
fn meaning(signal: Signal) -> Received {
    if STOP.contains(&signal) {
        Received::Stop(signal.as_str())
    } else if signal == Signal::SIGUSR1 {
        Received::Status
    } else {
        Received::Ignored(signal.as_str())
    }
}

/// The blocked signals; see the module docs.
pub struct StopSignals {
    set: SigSet,
}

impl StopSignals {
    /// Blocks the signals of the module docs in the calling thread. Call before spawning
    /// threads.
    pub fn block() -> nix::Result<StopSignals> {
        let mut set = SigSet::empty();
        for signal in STOP.into_iter().chain(IGNORED) {
            set.add(signal);
        }
        set.add(Signal::SIGUSR1);
        set.thread_block()?;
        Ok(StopSignals { set })
    }

    /// Waits for the next signal.
    pub fn next(&self) -> Received {
        loop {
            if let Ok(signal) = self.set.wait() {
                return meaning(signal);
            }
        }
    }

    /// Waits for a signal that stops the server and returns its name. On the way, logs
    /// `status()` for each SIGUSR1 and a debug line for each ignored signal.
    pub fn wait(&self, status: impl Fn() -> String) -> &'static str {
        loop {
            match self.next() {
                Received::Stop(name) => return name,
                Received::Status => log::info!("SIGUSR1 received: {}", status()),
                Received::Ignored(name) => log::debug!("{name} received: ignored"),
            }
        }
    }
}

/// The one-line summary that SIGUSR1 logs.
pub fn status_line(source: &SourceStats, clients: &ClientCounter, started: Instant) -> String {
    let problem = match source.error_and_age() {
        Some((text, age)) => format!("for {} s: {text}", age.as_secs()),
        None => "none".to_string(),
    };
    let last = match source.since_last_frame() {
        Some(age) => format!("{:.1} s ago", age.as_secs_f64()),
        None => "never".to_string(),
    };
    format!(
        "up {}; source {}: {} frames ({:.1} fps, last {last}), {} dropped, {} restarts, \
         problem {problem}; {} viewers now, {} since start",
        uptime(started.elapsed()),
        source.description(),
        source.frames(),
        source.fps(),
        source.dropped(),
        source.restarts(),
        clients.current(),
        clients.total(),
    )
}

/// `d` as hours, minutes and seconds: "2h03m07s", "4m10s", "12s".
fn uptime(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, min, sec) => format!("{min}m{sec:02}s"),
        (h, min, sec) => format!("{h}h{min:02}m{sec:02}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_signal_has_its_meaning() {
        assert_eq!(meaning(Signal::SIGHUP), Received::Stop("SIGHUP"));
        assert_eq!(meaning(Signal::SIGQUIT), Received::Stop("SIGQUIT"));
        assert_eq!(meaning(Signal::SIGTERM), Received::Stop("SIGTERM"));
        assert_eq!(meaning(Signal::SIGUSR1), Received::Status);
        assert_eq!(meaning(Signal::SIGALRM), Received::Ignored("SIGALRM"));
        assert_eq!(meaning(Signal::SIGUSR2), Received::Ignored("SIGUSR2"));
    }

    #[test]
    fn uptime_reads_as_hours_minutes_seconds() {
        assert_eq!(uptime(Duration::from_secs(12)), "12s");
        assert_eq!(uptime(Duration::from_secs(250)), "4m10s");
        assert_eq!(uptime(Duration::from_secs(7387)), "2h03m07s");
    }

    #[test]
    fn the_status_line_names_the_source_and_its_problem() {
        let source = SourceStats::new("exec: cat".to_string());
        source.set_error(Some("camera gone".to_string()));
        let line = status_line(&source, &ClientCounter::new(0), Instant::now());
        assert!(line.contains("source exec: cat: 0 frames"), "{line}");
        assert!(line.contains("last never"), "{line}");
        assert!(line.contains(": camera gone"), "{line}");
        assert!(line.contains("0 viewers now"), "{line}");
    }
}
