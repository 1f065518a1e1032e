//! Waiting for SIGINT or SIGTERM without a signal handler.
//!
//! The signals are blocked in the main thread before any other thread starts (threads
//! inherit the mask), and the main thread later takes them synchronously with `sigwait`.
//! Nothing runs in signal-handler context.

use nix::sys::signal::{SigSet, Signal};

/// The blocked stop signals; see the module docs.
pub struct StopSignals {
    set: SigSet,
}

impl StopSignals {
    /// Blocks SIGINT and SIGTERM in the calling thread. Call before spawning threads.
    pub fn block() -> nix::Result<StopSignals> {
        let mut set = SigSet::empty();
        set.add(Signal::SIGINT);
        set.add(Signal::SIGTERM);
        set.thread_block()?;
        Ok(StopSignals { set })
    }

    /// Waits for one of the signals and returns its name.
    pub fn wait(&self) -> &'static str {
        loop {
            if let Ok(signal) = self.set.wait() {
                return signal.as_str();
            }
        }
    }
}
