//! The server's side of the camera controls of a source in a process of its own:
//! [`ChildControls`], the controls the server's [`ControlBoard`](crate::controls::ControlBoard)
//! holds while the child runs and has described some. They list what the child last
//! described, and pass changes to it over the control socket, waiting at most
//! [`ANSWER_WITHIN`] for its answer, so that a hung child cannot hang a request.

use std::os::unix::net::UnixStream;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::control_wire::{read_answer, Description, Outcome, Request, MAX_ENCODED};
use super::link::{End, Link};
use super::messages::{ANSWER, REQUEST};
use crate::controls::{CameraControls, ControlError, ControlInfo};

/// Longest wait for the child to take a change and answer.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(2);

/// The controls of the camera in a source process, as its server sees them.
pub struct ChildControls {
    /// The newest description received, by its number.
    known: Mutex<Description>,
    /// True while a request is on its way (one at a time on the socket).
    busy: Mutex<bool>,
    /// Signalled when a request is done.
    done: Condvar,
    link: Mutex<Link>,
}

/// Holds the turn to use the socket; gives it to the next caller when dropped.
struct Turn<'a>(&'a ChildControls);

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        *lock(&self.0.busy) = false;
        self.0.done.notify_one();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ChildControls {
    /// Controls reached through `socket`, with nothing described yet.
    pub fn new(socket: UnixStream) -> ChildControls {
        ChildControls {
            known: Mutex::new(Description {
                number: 0,
                identity: String::new(),
                controls: None,
            }),
            busy: Mutex::new(false),
            done: Condvar::new(),
            link: Mutex::new(Link::new(socket, &[ANSWER], MAX_ENCODED)),
        }
    }

    /// Takes `description` if it is newer than the one known.
    pub fn learn(&self, description: Description) {
        let mut known = lock(&self.known);
        if description.number > known.number {
            *known = description;
        }
    }

    /// How many controls the newest description has; `None` when it says the child
    /// has none.
    pub fn count(&self) -> Option<usize> {
        lock(&self.known)
            .controls
            .as_ref()
            .map(Vec::len)
            .filter(|&n| n > 0)
    }

    /// Waits until no other request is on its way, at most until `deadline`.
    fn turn(&self, deadline: Instant) -> Option<Turn<'_>> {
        let mut busy = lock(&self.busy);
        while *busy {
            let left = deadline.checked_duration_since(Instant::now())?;
            busy = self
                .done
                .wait_timeout(busy, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *busy = true;
        Some(Turn(self))
    }

    /// Sends `changes` to the child and waits for its answer, at most [`ANSWER_WITHIN`].
    fn ask(&self, changes: &[(String, i64)]) -> Result<Outcome, ControlError> {
        let deadline = Instant::now() + ANSWER_WITHIN;
        let within = ANSWER_WITHIN.as_secs();
        let Some(_turn) = self.turn(deadline) else {
            return Err(ControlError::TimedOut(format!(
                "the source process was still busy with an earlier change after {within} s; \
                 try again"
            )));
        };
        let mut link = lock(&self.link);
        if let Some(why) = &link.broken {
            return Err(ControlError::Gone(why.clone()));
        }
        let request = Request {
            id: link.next_id(),
            changes: changes.to_vec(),
        };
        let exchanged = exchange(&mut link, &request, deadline);
        match exchanged {
            Ok(Exchange::Answered(outcome)) => Ok(outcome),
            Ok(Exchange::Late(description)) => {
                // Not ours, but news of the controls all the same.
                drop(link);
                self.learn(description);
                Err(late(within))
            }
            Ok(Exchange::NoAnswer) => Err(late(within)),
            Err(End::Gone(why)) => {
                let why = format!(
                    "the source process is gone ({why}); its controls come back when it runs \
                     again"
                );
                link.broken = Some(why.clone());
                Err(ControlError::Gone(why))
            }
            Err(End::Garbled(why)) => {
                let why = format!("the source process sent {why}");
                link.broken = Some(why.clone());
                Err(ControlError::Camera(why))
            }
        }
    }
}

fn late(within: u64) -> ControlError {
    ControlError::TimedOut(format!(
        "the source process did not answer within {within} s: the change may or may not \
         have been made (GET /controls shows what it last reported)"
    ))
}

/// How a request went, short of the socket failing.
enum Exchange {
    Answered(Outcome),
    /// No answer of ours in time; the newest description in late answers to earlier
    /// requests, if any came.
    Late(Description),
    NoAnswer,
}

/// Sends `request` and waits for its answer until `deadline`, keeping the newest
/// description in late answers to earlier requests.
fn exchange(link: &mut Link, request: &Request, deadline: Instant) -> Result<Exchange, End> {
    let mut late: Option<Description> = None;
    let answered = link.exchange(REQUEST, &request.to_bytes(), deadline, |payload| {
        let answer = read_answer(payload)?;
        if answer.id == request.id {
            return Ok(Some(answer.outcome));
        }
        if let Outcome::Applied(d) = answer.outcome {
            if late.as_ref().is_none_or(|l| d.number > l.number) {
                late = Some(d);
            }
        }
        Ok(None)
    })?;
    Ok(match (answered, late) {
        (Some(outcome), _) => Exchange::Answered(outcome),
        (None, Some(description)) => Exchange::Late(description),
        (None, None) => Exchange::NoAnswer,
    })
}

impl CameraControls for ChildControls {
    /// The identity of the camera in the child: values clients set are remembered for
    /// it, and applied again when a new child describes the same camera.
    fn identity(&self) -> String {
        lock(&self.known).identity.clone()
    }

    fn list(&self) -> Result<Vec<ControlInfo>, String> {
        Ok(lock(&self.known).controls.clone().unwrap_or_default())
    }

    fn apply(&self, changes: &[(String, i64)]) -> Result<(), String> {
        self.try_apply(changes).map_err(|e| e.to_string())
    }

    fn try_apply(&self, changes: &[(String, i64)]) -> Result<(), ControlError> {
        match self.ask(changes)? {
            Outcome::Applied(description) => {
                self.learn(description);
                Ok(())
            }
            Outcome::Refused(why) => Err(ControlError::Refused(why)),
            Outcome::Failed(why) => Err(ControlError::Camera(why)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::control_server::{serve_requests, Reporter};
    use super::*;
    use crate::controls::{Attached, ControlBoard};
    use crate::source::pattern::PatternControls;
    use std::io;
    use std::sync::Arc;
    use std::thread::{self, JoinHandle};

    /// The child's side, in a thread: the test pattern's controls on a board of their
    /// own, served on `socket`.
    fn child(socket: UnixStream) -> (Arc<ControlBoard>, Attached, JoinHandle<()>) {
        let board = ControlBoard::new(true);
        let attached = board.attach(Arc::new(PatternControls::new()));
        let reporter = Arc::new(Reporter::new(board.clone()));
        let server = thread::spawn(move || serve_requests(socket, reporter));
        (board, attached, server)
    }

    fn value(controls: &[ControlInfo], name: &str) -> i64 {
        controls.iter().find(|c| c.name == name).unwrap().value
    }

    fn refusal(result: Result<(), ControlError>) -> ControlError {
        result.expect_err("refused")
    }

    #[test]
    fn changes_reach_the_childs_camera_and_come_back_described() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let proxy = ChildControls::new(ours);
        let (board, _attached, server) = child(theirs);
        assert_eq!(proxy.list().unwrap(), Vec::new());
        assert_eq!(proxy.count(), None);

        proxy
            .try_apply(&[("brightness".into(), 40), ("pattern".into(), 1)])
            .unwrap();
        let listed = proxy.list().unwrap();
        assert_eq!(proxy.count(), Some(3));
        assert_eq!(
            (value(&listed, "brightness"), value(&listed, "pattern")),
            (40, 1)
        );
        assert_eq!(board.list().unwrap(), listed, "the child's camera has them");

        // The child checks again against its camera: what it refuses changes nothing.
        for (change, says) in [
            (("hue".to_string(), 1), "unknown control 'hue'"),
            (("contrast".to_string(), 999), "out of range (0 to 200)"),
            (("pattern".to_string(), 7), "not one of its choices"),
        ] {
            match refusal(proxy.try_apply(&[("brightness".into(), 0), change.clone()])) {
                ControlError::Refused(why) => assert!(why.contains(says), "{change:?}: {why}"),
                other => panic!("{change:?}: {other:?}"),
            }
        }
        assert_eq!(board.list().unwrap(), listed);

        // An older description does not replace a newer one.
        proxy.learn(Description {
            number: 1,
            identity: String::new(),
            controls: None,
        });
        assert_eq!(proxy.list().unwrap(), listed);

        drop(proxy);
        server.join().unwrap(); // the child's side ends with the socket
    }

    #[test]
    fn a_late_answer_times_out_and_is_not_taken_for_the_next() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let proxy = ChildControls::new(ours);
        // Nobody answers yet.
        match refusal(proxy.try_apply(&[("brightness".into(), 1)])) {
            ControlError::TimedOut(why) => {
                assert!(why.contains("did not answer within 2 s"), "{why}")
            }
            other => panic!("{other:?}"),
        }
        // The child wakes up: it answers the first request, then the second; the
        // first answer is not taken for the second's.
        let (board, _attached, _server) = child(theirs);
        proxy.try_apply(&[("brightness".into(), 5)]).unwrap();
        assert_eq!(value(&proxy.list().unwrap(), "brightness"), 5);
        assert_eq!(value(&board.list().unwrap(), "brightness"), 5);
    }

    #[test]
    fn a_child_that_is_gone_or_garbled_says_so() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let proxy = ChildControls::new(ours);
        drop(theirs);
        for _ in 0..2 {
            match refusal(proxy.try_apply(&[("brightness".into(), 1)])) {
                ControlError::Gone(why) => {
                    assert!(why.contains("the source process is gone"), "{why}");
                    assert!(why.contains("come back when it runs again"), "{why}");
                }
                other => panic!("{other:?}"),
            }
        }

        let (ours, theirs) = UnixStream::pair().unwrap();
        let proxy = ChildControls::new(ours);
        io::Write::write_all(&mut &theirs, b"hello, world").unwrap();
        match refusal(proxy.try_apply(&[("brightness".into(), 1)])) {
            ControlError::Camera(why) => {
                assert_eq!(why, "the source process sent unknown message type 0x68")
            }
            other => panic!("{other:?}"),
        }
        match refusal(proxy.try_apply(&[("brightness".into(), 1)])) {
            ControlError::Gone(why) => assert!(why.contains("unknown message type")),
            other => panic!("{other:?}"),
        }
    }
}
