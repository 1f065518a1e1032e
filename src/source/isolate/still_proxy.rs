//! The server's side of the full-resolution stills of a source in a process of its
//! own. While the process says its still desk is open, [`StillRelay`] keeps the
//! server's desk open for it, and a thread of the relay's own serves the requests
//! there as a source would: it passes each to the process over the still socket and
//! answers with what comes back (the process's source takes the still between two
//! frames). A process that has ended is reported at once; one that says nothing is
//! waited for [`STILL_TIMEOUT`] and a margin, as long as the process itself waits.

use std::io;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::link::{End, Link};
use super::messages::{STILL_ANSWER, STILL_REQUEST};
use super::still_wire::{read_answer, request_bytes, MAX_ANSWER};
use crate::still::{Still, StillCamera, StillDesk, STILL_TIMEOUT};

/// Beyond [`STILL_TIMEOUT`], how long the server waits for the process's answer: the
/// process gives up on its own camera first, and says so.
const MARGIN: Duration = Duration::from_secs(5);

/// How often the relay's thread looks whether it should stop.
const STOP_CHECK: Duration = Duration::from_millis(200);

/// Passes the server's still requests to the source process while it takes stills.
pub struct StillRelay {
    desk: Arc<StillDesk>,
    /// The server's desk held open while the process's is.
    camera: Option<StillCamera>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StillRelay {
    /// Starts the thread that serves `desk` through `socket`, the server's end of the
    /// still socket to the process `pid`. The desk stays closed until
    /// [`Self::desk_open`] says otherwise.
    pub fn start(socket: UnixStream, desk: Arc<StillDesk>, pid: u32) -> io::Result<StillRelay> {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (desk, stop) = (desk.clone(), stop.clone());
            let mut link = Link::new(socket, &[STILL_ANSWER], MAX_ANSWER);
            std::thread::Builder::new()
                .name("still relay".into())
                .spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        if desk.wait_until_asked(STOP_CHECK) {
                            desk.serve(|| {
                                log::info!("source process {pid}: asked for a still");
                                take(&mut link)
                            });
                        }
                    }
                })?
        };
        Ok(StillRelay {
            desk,
            camera: None,
            stop,
            thread: Some(thread),
        })
    }

    /// Closes the server's desk, telling the requests waiting there `why`.
    pub fn close_desk(&mut self, why: &str) {
        if let Some(camera) = self.camera.take() {
            camera.close(why);
        }
    }

    /// Opens or closes the server's desk as the process says its own is; true when
    /// that changed something.
    pub fn desk_open(&mut self, open: bool) -> bool {
        match (open, self.camera.is_some()) {
            (true, false) => self.camera = Some(self.desk.open()),
            (false, true) => self.camera = None,
            _ => return false,
        }
        true
    }
}

impl Drop for StillRelay {
    /// Closes the desk and waits for the thread, which a request to a process that
    /// has ended (its socket closed) keeps no longer.
    fn drop(&mut self) {
        self.camera = None;
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Asks the process behind `link` for a still and waits for its answer.
fn take(link: &mut Link) -> Result<Still, String> {
    if let Some(why) = &link.broken {
        return Err(why.clone());
    }
    let id = link.next_id();
    let deadline = Instant::now() + STILL_TIMEOUT + MARGIN;
    let answered = link.exchange(STILL_REQUEST, &request_bytes(id), deadline, |payload| {
        let answer = read_answer(payload)?;
        Ok((answer.id == id).then_some(answer.outcome))
    });
    let why = match answered {
        Ok(Some(outcome)) => return outcome,
        Ok(None) => {
            return Err(format!(
                "the camera's process did not answer within {} s",
                (STILL_TIMEOUT + MARGIN).as_secs()
            ))
        }
        Err(End::Gone(why)) => format!("the camera's process ended ({why})"),
        Err(End::Garbled(why)) => format!("the camera's process sent {why}"),
    };
    link.broken = Some(why.clone());
    Err(why)
}

#[cfg(test)]
mod tests {
    use super::super::still_server::serve_stills;
    use super::*;
    use crate::encoder::SoftwareEncoder;
    use crate::still::StillError;
    use std::thread;

    /// A source process's side in threads: its own desk, served by a "source" that
    /// takes 64x48 stills until `stop`, and answered on `socket`.
    fn child(socket: UnixStream, stop: Arc<AtomicBool>) -> thread::JoinHandle<u32> {
        let desk = Arc::new(StillDesk::new());
        {
            let desk = desk.clone();
            thread::spawn(move || serve_stills(socket, desk));
        }
        let open = desk.open();
        thread::spawn(move || {
            let _open = open;
            let mut taken = 0;
            while !stop.load(Ordering::SeqCst) {
                desk.serve(|| {
                    taken += 1;
                    let rgb = vec![200u8; 64 * 48 * 3];
                    let mut encoder = SoftwareEncoder::new(80);
                    Ok(Still {
                        jpeg: encoder.encode_rgb(&rgb, 64, 48).unwrap().to_vec(),
                        width: 64,
                        height: 48,
                    })
                });
                thread::sleep(Duration::from_millis(1));
            }
            taken
        })
    }

    fn failure(result: Result<Arc<Still>, StillError>) -> String {
        match result {
            Err(StillError::Failed(why)) => why,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_still_comes_from_the_other_side_while_its_desk_is_open() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let source = child(theirs, stop.clone());
        let desk = Arc::new(StillDesk::new());
        let mut relay = StillRelay::start(ours, desk.clone(), 1).unwrap();
        let wait = Duration::from_secs(120);
        assert_eq!(desk.take(wait).unwrap_err(), StillError::Unavailable);
        assert!(relay.desk_open(true));
        assert!(!relay.desk_open(true));
        for _ in 0..3 {
            let still = desk.take(wait).unwrap();
            assert_eq!((still.width, still.height), (64, 48));
            let dims = crate::jpeg::inspect(&still.jpeg).unwrap();
            assert_eq!((dims.width, dims.height), (64, 48));
        }
        assert!(relay.desk_open(false));
        assert_eq!(desk.take(wait).unwrap_err(), StillError::Unavailable);
        drop(relay);
        stop.store(true, Ordering::SeqCst);
        assert_eq!(source.join().unwrap(), 3, "one still taken a request");
    }

    #[test]
    fn a_process_that_ended_or_garbles_is_reported_at_once() {
        let wait = Duration::from_secs(120);
        let (ours, theirs) = UnixStream::pair().unwrap();
        let desk = Arc::new(StillDesk::new());
        let mut relay = StillRelay::start(ours, desk.clone(), 1).unwrap();
        relay.desk_open(true);
        drop(theirs);
        for _ in 0..2 {
            let why = failure(desk.take(wait));
            assert!(why.starts_with("the camera's process ended ("), "{why}");
        }
        drop(relay);

        let (ours, theirs) = UnixStream::pair().unwrap();
        let desk = Arc::new(StillDesk::new());
        let mut relay = StillRelay::start(ours, desk.clone(), 1).unwrap();
        relay.desk_open(true);
        io::Write::write_all(&mut &theirs, b"hello, world").unwrap();
        let why = failure(desk.take(wait));
        assert_eq!(why, "the camera's process sent unknown message type 0x68");
        // An answer that says it is a still but is not a JPEG.
        let (ours, theirs) = UnixStream::pair().unwrap();
        let desk = Arc::new(StillDesk::new());
        let mut relay = StillRelay::start(ours, desk.clone(), 1).unwrap();
        relay.desk_open(true);
        let mut lie = 1u64.to_le_bytes().to_vec();
        lie.extend_from_slice(&[0, 64, 0, 48, 0, b'n', b'o']);
        super::super::messages::write_message(&mut &theirs, STILL_ANSWER, &lie).unwrap();
        let why = failure(desk.take(wait));
        assert!(why.contains("a still that is not a JPEG"), "{why}");
    }
}
