//! The source process's side of full-resolution stills. The source opens the still
//! desk of the process's own frame slot, as it would the server's; [`StillsReport`]
//! tells the server whether that desk is open (on standard output, before the next
//! frame after a change), and [`serve_stills`] answers the server's requests on the
//! still socket by asking that desk, where the source takes the still between two
//! frames.

use std::io;
use std::os::fd::RawFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};

use super::control_server::take_passed_socket;
use super::link::answer_requests;
use super::messages::{Outlet, STILLS, STILL_ANSWER, STILL_REQUEST};
use super::still_wire::{answer_bytes, read_request, MAX_REQUEST};
use crate::still::{StillDesk, StillError, STILL_TIMEOUT};

/// The variable that gives the source process the number of its still socket.
pub const SOCKET_VAR: &str = "PICAM_SOURCE_STILLS";

/// The descriptor the server puts the still socket on in the source process.
pub const SOCKET_FD: RawFd = 4;

/// The still socket the server passed, if it did. Called once, at the start of the
/// process.
pub fn take_socket() -> Option<UnixStream> {
    take_passed_socket(SOCKET_VAR, "no full-resolution stills")
}

/// Tells the server whether the process's still desk is open, when that changes.
pub struct StillsReport {
    desk: Arc<StillDesk>,
    /// What was last sent; held while sending, so that the frame's thread and the
    /// reporting thread send each change once and in order.
    sent: Mutex<Option<bool>>,
}

impl StillsReport {
    pub fn new(desk: Arc<StillDesk>) -> StillsReport {
        StillsReport {
            desk,
            sent: Mutex::new(None),
        }
    }

    /// Sends whether the desk is open, if that changed since the last call.
    pub fn send_changes(&self, outlet: &Outlet) -> io::Result<()> {
        let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        let open = self.desk.has_camera();
        if *sent != Some(open) {
            outlet.send(STILLS, &[u8::from(open)])?;
            *sent = Some(open);
        }
        Ok(())
    }
}

/// Why the process's desk gave no still, in words for the server to pass on.
fn reason(e: &StillError) -> String {
    match e {
        StillError::Unavailable => "the camera's process takes no stills now".into(),
        StillError::TimedOut => StillError::TimedOut.to_string(),
        StillError::Failed(why) => why.clone(),
    }
}

/// Answers the server's still requests on `socket` until it closes: each waits at
/// the process's `desk` (at most [`STILL_TIMEOUT`]) for the source to take it.
pub fn serve_stills(socket: UnixStream, desk: Arc<StillDesk>) {
    answer_requests(
        &socket,
        &[STILL_REQUEST],
        STILL_ANSWER,
        MAX_REQUEST,
        "still requests",
        |payload| {
            let id = read_request(payload)?;
            Ok(match desk.take(STILL_TIMEOUT) {
                Ok(still) => answer_bytes(id, Ok(&still)),
                Err(e) => answer_bytes(id, Err(&reason(&e))),
            })
        },
    );
}
