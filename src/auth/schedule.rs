//! Whose password is checked next: a few verification slots, and a bounded, ordered
//! queue of the checks waiting for one.
//!
//! This module owns only the turn-taking; what a check is, and how many failures an
//! address has, is the guard's business. Waiting checks are served by the number of
//! failures their address has recorded (fewest first, so a person who has not failed
//! goes ahead of every guesser), then in the order they arrived. A check waits at most
//! a given time. The queue is bounded: when it is full, whichever of the newcomer and
//! the waiter with most failures (the latest of equals) is worse gives up its place.
//! A check that gets no slot is told so and runs nothing.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Verification slots and the checks waiting for one. Shared by every request thread.
pub struct Schedule {
    slots: usize,
    max_waiting: usize,
    state: Mutex<State>,
    changed: Condvar,
}

struct State {
    running: usize,
    /// Waiting checks, in no particular order (few: at most `max_waiting`).
    waiting: Vec<Waiter>,
    next_ticket: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Waiter {
    /// Failures of the address first, then arrival: the smallest is served first.
    failures: u32,
    ticket: u64,
}

/// A verification slot, held until dropped.
pub struct Turn<'a> {
    schedule: &'a Schedule,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut state = self.schedule.lock();
        state.running = state.running.saturating_sub(1);
        drop(state);
        self.schedule.changed.notify_all();
    }
}

impl Schedule {
    /// `slots` checks run at once; at most `max_waiting` more wait for a slot.
    pub fn new(slots: usize, max_waiting: usize) -> Schedule {
        Schedule {
            slots: slots.max(1),
            max_waiting,
            state: Mutex::new(State {
                running: 0,
                waiting: Vec::with_capacity(max_waiting),
                next_ticket: 0,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits at most `patience` for a slot, served before every waiter with more
    /// `failures` and after the earlier ones with as many. `None` when the time ran out,
    /// or when the queue was full of waiters with no more failures than this one, or
    /// when a waiter with fewer failures later took this one's place.
    pub fn wait_turn(&self, failures: u32, patience: Duration) -> Option<Turn<'_>> {
        let deadline = Instant::now() + patience;
        let mut state = self.lock();
        if state.waiting.is_empty() && state.running < self.slots {
            state.running += 1;
            return Some(Turn { schedule: self });
        }
        let me = Waiter {
            failures,
            ticket: state.next_ticket,
        };
        state.next_ticket += 1;
        if state.waiting.len() >= self.max_waiting {
            // Full: the newcomer may only push out a waiter with more failures.
            let worst = state
                .waiting
                .iter()
                .enumerate()
                .max_by_key(|(_, w)| **w)
                .map(|(i, w)| (i, *w));
            match worst {
                Some((i, w)) if w.failures > failures => {
                    state.waiting.swap_remove(i);
                    self.changed.notify_all();
                }
                _ => return None,
            }
        }
        state.waiting.push(me);
        // Bounded by the deadline: every pass waits at most until then.
        loop {
            let Some(at) = state.waiting.iter().position(|w| *w == me) else {
                // Pushed out by a waiter with fewer failures.
                return None;
            };
            let first = state.waiting.iter().min().is_some_and(|w| *w == me);
            if first && state.running < self.slots {
                state.waiting.swap_remove(at);
                state.running += 1;
                drop(state);
                // Another slot may be free for the next in line.
                self.changed.notify_all();
                return Some(Turn { schedule: self });
            }
            let now = Instant::now();
            if now >= deadline {
                state.waiting.swap_remove(at);
                drop(state);
                self.changed.notify_all();
                return None;
            }
            state = match self.changed.wait_timeout(state, deadline - now) {
                Ok((s, _)) => s,
                Err(e) => e.into_inner().0,
            };
        }
    }

    /// Checks running and waiting now.
    pub fn load(&self) -> (usize, usize) {
        let state = self.lock();
        (state.running, state.waiting.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::sync::Arc;
    use std::thread;

    const LONG: Duration = Duration::from_secs(10);

    /// Waits (bounded) until `n` checks are waiting.
    fn until_waiting(s: &Schedule, n: usize) {
        for _ in 0..1000 {
            if s.load().1 == n {
                return;
            }
            thread::sleep(Duration::from_millis(5));
        }
        panic!("never {n} waiting: {:?}", s.load());
    }

    #[test]
    fn fewer_failures_first_then_first_come() {
        let s = Arc::new(Schedule::new(1, 8));
        let held = s.wait_turn(0, LONG).expect("a free slot");
        let (tx, rx) = mpsc::channel();
        let mut threads = Vec::new();
        for (n, failures) in [(0, 5u32), (1, 9), (2, 5), (3, 0), (4, 1)] {
            let (s2, tx) = (s.clone(), tx.clone());
            threads.push(thread::spawn(move || {
                let turn = s2.wait_turn(failures, LONG);
                tx.send(n).unwrap();
                drop(turn);
            }));
            until_waiting(&s, n + 1);
        }
        drop(held);
        let order: Vec<usize> = (0..5).map(|_| rx.recv_timeout(LONG).unwrap()).collect();
        assert_eq!(order, [3, 4, 0, 2, 1]);
        for t in threads {
            t.join().unwrap();
        }
    }

    #[test]
    fn waiting_is_bounded_and_the_worst_gives_way() {
        let s = Arc::new(Schedule::new(1, 2));
        let held = s.wait_turn(0, LONG).expect("a free slot");
        let spawn = |failures: u32| {
            let s = s.clone();
            thread::spawn(move || s.wait_turn(failures, LONG).is_some())
        };
        let a = spawn(3);
        until_waiting(&s, 1);
        let b = spawn(7);
        until_waiting(&s, 2);
        // Full: as many failures as the worst waiter gets nothing at once.
        assert!(s.wait_turn(7, LONG).is_none());
        // Fewer failures push out the worst.
        let c = spawn(0);
        assert!(!b.join().unwrap(), "the waiter with most failures gave way");
        until_waiting(&s, 2);
        drop(held);
        assert!(a.join().unwrap());
        assert!(c.join().unwrap());
        assert_eq!(s.load(), (0, 0));
    }

    #[test]
    fn the_wait_is_bounded() {
        let s = Schedule::new(2, 4);
        let _a = s.wait_turn(0, LONG).expect("a free slot");
        let _b = s.wait_turn(0, LONG).expect("a free slot");
        let start = Instant::now();
        assert!(s.wait_turn(0, Duration::from_millis(50)).is_none());
        assert!(start.elapsed() >= Duration::from_millis(50));
        assert_eq!(s.load(), (2, 0));
    }
}
