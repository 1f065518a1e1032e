//! The source process's side of its camera's controls. The source attaches them to a
//! [`ControlBoard`] of the process's own, as it would to the server's; [`Reporter`]
//! describes that board to the server (on standard output, whenever controls come,
//! go or change), and [`serve_requests`] applies the changes the server sends over the
//! control socket, answering each with the controls as they are afterwards.

use std::io;
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::control_wire::{read_request, Answer, Description, Outcome, Request, MAX_ENCODED};
use super::link::answer_requests;
use super::messages::{Outlet, ANSWER, CONTROLS, REQUEST};
use crate::controls::{ControlBoard, ControlError, ControlInfo, ControlKind, ControlValue};
use crate::ratelog::{self, RateLimit};

/// The variable that gives the source process the number of its control socket.
pub const SOCKET_VAR: &str = "PICAM_SOURCE_CONTROLS";

/// The descriptor the server puts the control socket on in the source process.
pub const SOCKET_FD: RawFd = 3;

/// How often the controls are described again even when nothing was attached or
/// changed through the server, for changes the camera makes itself.
const REFRESH: Duration = Duration::from_secs(2);

/// The control socket the server passed, if it did. Called once, at the start of the
/// process.
pub fn take_socket() -> Option<UnixStream> {
    take_passed_socket(SOCKET_VAR, "no camera controls")
}

/// A socket the server passed: the descriptor `var` names, if it is a socket; `without`
/// says in the log what goes without it. Called once per socket, at the start of the
/// process.
pub(super) fn take_passed_socket(var: &str, without: &str) -> Option<UnixStream> {
    let fd: RawFd = std::env::var(var).ok()?.parse().ok()?;
    let stat = nix::sys::stat::fstat(fd).ok()?;
    if stat.st_mode & nix::libc::S_IFMT != nix::libc::S_IFSOCK {
        log::warn!("{var} names descriptor {fd}, which is not a socket: {without}");
        return None;
    }
    // Not to be inherited by anything this process starts.
    let _ = nix::fcntl::fcntl(
        fd,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
    // SAFETY: the server opened this descriptor for this purpose before starting the
    // process; it was checked to be a socket, and nothing else in the process uses or
    // closes it (this runs once per variable, before the source starts).
    Some(unsafe { UnixStream::from_raw_fd(fd) })
}

/// Describes the process's board to the server, numbering each description.
pub struct Reporter {
    board: Arc<ControlBoard>,
    /// The number of the last description made; held while a change is applied, so
    /// that numbers follow the order of what they describe.
    numbered: Mutex<u64>,
    /// Set when the server's changes were applied: the next report goes out whatever
    /// it says.
    applied: AtomicBool,
}

/// What a [`Reporter`] last sent, kept by the loop that sends.
pub struct Reported {
    generation: Option<u64>,
    at: Instant,
    sent: Option<Option<Vec<ControlInfo>>>,
}

impl Reporter {
    pub fn new(board: Arc<ControlBoard>) -> Reporter {
        Reporter {
            board,
            numbered: Mutex::new(0),
            applied: AtomicBool::new(false),
        }
    }

    /// The board's controls now, `None` when there are none.
    fn controls(&self) -> Result<Option<Vec<ControlInfo>>, ControlError> {
        let controls = self.board.list()?;
        Ok((!controls.is_empty()).then_some(controls))
    }

    /// The next number, given the lock on it.
    fn number(numbered: &mut u64) -> u64 {
        *numbered += 1;
        *numbered
    }

    /// Sends the board's controls on `outlet` when they were attached, taken off or
    /// changed through the server since the last call, or else every [`REFRESH`] if
    /// they differ from what was sent.
    pub fn send_changes(&self, last: &mut Reported, outlet: &Outlet) -> io::Result<()> {
        let generation = self.board.generation();
        let applied = self.applied.swap(false, Ordering::Relaxed);
        if !applied && last.generation == Some(generation) && last.at.elapsed() < REFRESH {
            return Ok(());
        }
        last.generation = Some(generation);
        last.at = Instant::now();
        let description = {
            let mut numbered = self.numbered.lock().unwrap_or_else(|e| e.into_inner());
            match self.controls() {
                Ok(controls) => Description {
                    number: Self::number(&mut numbered),
                    identity: self.board.identity().unwrap_or_default(),
                    controls,
                },
                Err(e) => {
                    static FAILED: RateLimit = RateLimit::new(ratelog::DEFAULT_INTERVAL);
                    crate::warn_limited!(FAILED, "cannot list the camera's controls: {e}");
                    return Ok(());
                }
            }
        };
        if !applied && last.sent.as_ref() == Some(&description.controls) {
            return Ok(());
        }
        outlet.send(CONTROLS, &description.to_bytes())?;
        last.sent = Some(description.controls);
        Ok(())
    }

    /// Applies the server's `request` to the board and says how it went.
    fn apply(&self, request: Request) -> Answer {
        let mut numbered = self.numbered.lock().unwrap_or_else(|e| e.into_inner());
        let outcome = match self.set(&request.changes) {
            Ok(after) => Outcome::Applied(Description {
                number: Self::number(&mut numbered),
                identity: self.board.identity().unwrap_or_default(),
                controls: (!after.is_empty()).then_some(after),
            }),
            Err(ControlError::Refused(why)) => Outcome::Refused(why),
            Err(e) => Outcome::Failed(e.to_string()),
        };
        self.applied.store(true, Ordering::Relaxed);
        Answer {
            id: request.id,
            outcome,
        }
    }

    /// Sets the board's controls to the server's numbers, checked again against the
    /// camera as it is now (it may have changed since the server's check).
    fn set(&self, changes: &[(String, i64)]) -> Result<Vec<ControlInfo>, ControlError> {
        let controls = self.board.list()?;
        let values: Vec<(String, ControlValue)> = changes
            .iter()
            .map(|(name, n)| {
                let kind = controls.iter().find(|c| &c.name == name).map(|c| &c.kind);
                (name.clone(), value_for(kind, *n))
            })
            .collect();
        self.board.set(&values)
    }
}

impl Default for Reported {
    fn default() -> Reported {
        Reported {
            generation: None,
            at: Instant::now(),
            sent: None,
        }
    }
}

/// The value a client would have sent for the camera's number `n`, for a control of
/// `kind`: [`crate::controls::check_changes`] then turns it back into `n`, or refuses it.
fn value_for(kind: Option<&ControlKind>, n: i64) -> ControlValue {
    match kind {
        Some(ControlKind::Button) => ControlValue::Boolean(n == 1),
        // Exact for every number a client can send (whole numbers below 2^53).
        _ => ControlValue::Number(n as f64),
    }
}

/// Answers the server's requests on `socket` until it closes.
pub fn serve_requests(socket: UnixStream, reporter: Arc<Reporter>) {
    let what = "camera control requests";
    answer_requests(&socket, &[REQUEST], ANSWER, MAX_ENCODED, what, |payload| {
        Ok(reporter.apply(read_request(payload)?).to_bytes())
    });
}

#[cfg(test)]
mod tests {
    use super::super::messages::{decode, Message, MessageReader};
    use super::*;
    use crate::source::pattern::PatternControls;
    use std::fs::File;
    use std::io::Read;
    use std::os::fd::AsRawFd;

    /// What was sent on the pipe since the last call, as descriptions.
    fn sent(reader: &mut File, messages: &mut MessageReader) -> Vec<Description> {
        let mut buf = [0u8; 65536];
        match reader.read(&mut buf) {
            Ok(n) => messages.extend(&buf[..n]),
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::WouldBlock),
        }
        let mut got = Vec::new();
        while let Some((tag, payload)) = messages.next_message().unwrap() {
            match decode(tag, payload).unwrap() {
                Message::Controls(d) => got.push(d),
                other => panic!("{other:?}"),
            }
        }
        got
    }

    #[test]
    fn the_board_is_described_when_controls_come_change_and_go() {
        let (read_end, write_end) = nix::unistd::pipe().unwrap();
        nix::fcntl::fcntl(
            read_end.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .unwrap();
        let mut reader = File::from(read_end);
        let mut messages = MessageReader::default();
        let outlet = Outlet(Mutex::new(File::from(write_end)));
        let board = ControlBoard::new(true);
        let reporter = Reporter::new(board.clone());
        let mut last = Reported::default();

        reporter.send_changes(&mut last, &outlet).unwrap();
        let first = sent(&mut reader, &mut messages);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].controls, None);
        // Nothing new: nothing sent.
        reporter.send_changes(&mut last, &outlet).unwrap();
        assert!(sent(&mut reader, &mut messages).is_empty());

        let controls = Arc::new(PatternControls::new());
        let attached = board.attach(controls.clone());
        reporter.send_changes(&mut last, &outlet).unwrap();
        let attached_now = sent(&mut reader, &mut messages);
        assert_eq!(attached_now.len(), 1);
        assert_eq!(attached_now[0].controls, Some(board.list().unwrap()));
        assert!(attached_now[0].number > first[0].number);

        // A change through the server is answered with the new values, and described
        // again after it, numbered later.
        let answer = reporter.apply(Request {
            id: 4,
            changes: vec![("contrast".into(), 150)],
        });
        let Outcome::Applied(applied) = answer.outcome else {
            panic!("{answer:?}");
        };
        assert_eq!(answer.id, 4);
        assert_eq!(applied.controls, Some(board.list().unwrap()));
        reporter.send_changes(&mut last, &outlet).unwrap();
        let after = sent(&mut reader, &mut messages);
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].controls, applied.controls);
        assert!(after[0].number > applied.number);

        let refused = reporter.apply(Request {
            id: 5,
            changes: vec![("contrast".into(), -1)],
        });
        assert!(
            matches!(&refused.outcome, Outcome::Refused(why) if why.contains("out of range")),
            "{refused:?}"
        );

        drop(attached);
        reporter.send_changes(&mut last, &outlet).unwrap();
        let gone = sent(&mut reader, &mut messages);
        assert_eq!(gone.last().map(|d| &d.controls), Some(&None));
    }
}
