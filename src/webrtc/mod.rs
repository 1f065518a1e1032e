//! WebRTC for the H.264 stream: the signalling the HTTP side answers, and (cargo
//! feature `webrtc`) the one thread that runs every peer on one UDP port.
//!
//! ```text
//!  H264Slot ──▶ peers thread (str0m: ICE-lite, DTLS, SRTP, RTP packets) ──▶ UDP ──▶ browsers
//!                  ▲ commands (offer, answer, candidates, end) through the Desk
//!  HTTP: POST /whep (WHEP), DELETE /whep/ID, POST /webrtc (camera-streamer's JSON)
//! ```
//!
//! * [`Desk`] is what the HTTP side holds: it hands a request to the peers thread and
//!   waits for its answer. It knows nothing of HTTP, and the HTTP side nothing of str0m.
//! * [`dialect`] reads and writes camera-streamer's JSON messages (`POST /webrtc`),
//!   which Mainsail, Fluidd and Home Assistant's WebRTC cards send.
//! * [`hosts`] lists this machine's addresses: the host candidates a browser tries.
//! * `peers` (feature `webrtc`) is the thread: one socket per local address, all on the
//!   same port; str0m as an ICE-lite agent (the browser probes, this side answers), so
//!   no STUN server is needed on a local network; the H.264 slot's access units
//!   written to every connected peer, each starting at a fresh IDR picture.

pub mod dialect;
pub mod hosts;
#[cfg(feature = "webrtc")]
pub mod peers;

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The most peers at once; one more is refused (503).
pub const MAX_PEERS: usize = 16;

/// How long an HTTP request waits for the peers thread.
pub const ANSWER_WAIT: Duration = Duration::from_secs(5);

/// A new session's identity and the SDP to send back: the answer to the client's
/// offer, or this side's offer (camera-streamer's dialect).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub id: String,
    pub sdp: String,
}

/// Why a signalling request was not done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The SDP or candidate could not be used (400); says why.
    Bad(String),
    /// No session has that id (404).
    NoSuchSession,
    /// [`MAX_PEERS`] sessions run already (503).
    Full,
    /// The peers thread did not answer in time or has ended (503).
    Unavailable,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Bad(why) => write!(f, "{why}"),
            Refusal::NoSuchSession => write!(f, "no WebRTC session has that id (it ended)"),
            Refusal::Full => write!(
                f,
                "{MAX_PEERS} WebRTC sessions already run; try again when one ends"
            ),
            Refusal::Unavailable => write!(f, "WebRTC is not running"),
        }
    }
}

/// One request to the peers thread.
#[derive(Debug)]
pub enum Ask {
    /// The client's offer (WHEP, or camera-streamer's `offer`): answer it.
    AnswerOffer(String),
    /// camera-streamer's `request`: make an offer for a new session.
    MakeOffer,
    /// The client's answer to the offer of session `id`.
    AcceptAnswer { id: String, sdp: String },
    /// The client's ICE candidates (`a=candidate` lines' values) for session `id`.
    Candidates { id: String, candidates: Vec<String> },
    /// End session `id`.
    End(String),
}

/// What the peers thread answers.
#[derive(Debug)]
pub enum Done {
    Opened(Opened),
    Fine,
}

/// A request and where its answer goes.
pub struct Command {
    pub ask: Ask,
    pub reply: SyncSender<Result<Done, Refusal>>,
}

/// The HTTP side's handle on WebRTC: hands requests to the peers thread.
pub struct Desk {
    commands: Mutex<Sender<Command>>,
    peers: Arc<AtomicUsize>,
    port: u16,
}

impl Desk {
    /// A desk that sends to `commands`; `peers` counts the running sessions, `port` is
    /// the UDP port the peers thread listens on.
    pub fn new(commands: Sender<Command>, peers: Arc<AtomicUsize>, port: u16) -> Desk {
        Desk {
            commands: Mutex::new(commands),
            peers,
            port,
        }
    }

    /// Sessions running now.
    pub fn peers(&self) -> usize {
        self.peers.load(Ordering::SeqCst)
    }

    /// The UDP port of the media.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Hands `ask` to the peers thread and waits up to [`ANSWER_WAIT`] for its answer.
    pub fn ask(&self, ask: Ask) -> Result<Done, Refusal> {
        let (reply, answer) = mpsc::sync_channel(1);
        let sent = self
            .commands
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(Command { ask, reply });
        if sent.is_err() {
            return Err(Refusal::Unavailable);
        }
        answer
            .recv_timeout(ANSWER_WAIT)
            .unwrap_or(Err(Refusal::Unavailable))
    }

    /// Answers the client's SDP offer: a new session.
    pub fn answer_offer(&self, sdp: String) -> Result<Opened, Refusal> {
        self.open(Ask::AnswerOffer(sdp))
    }

    /// Makes an offer for a new session (the client answers later).
    pub fn make_offer(&self) -> Result<Opened, Refusal> {
        self.open(Ask::MakeOffer)
    }

    /// Asks for a new session.
    fn open(&self, ask: Ask) -> Result<Opened, Refusal> {
        match self.ask(ask)? {
            Done::Opened(o) => Ok(o),
            Done::Fine => Err(Refusal::Unavailable),
        }
    }
}

/// A session id: 32 hex digits from the kernel's random numbers.
pub fn new_session_id() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if read.is_err() {
        // No /dev/urandom: the time and a counter still make ids that do not repeat.
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        bytes[..8].copy_from_slice(&(now as u64).to_le_bytes());
        bytes[8..].copy_from_slice(&(COUNT.fetch_add(1, Ordering::SeqCst) as u64).to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `id` looks like one [`new_session_id`] makes (so that anything else is
/// refused before it reaches a log or a lookup).
pub fn is_session_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_32_hex_digits_and_differ() {
        let a = new_session_id();
        let b = new_session_id();
        assert!(is_session_id(&a), "{a}");
        assert_ne!(a, b);
        assert!(!is_session_id("../etc"));
        assert!(!is_session_id(&a[..31]));
    }

    #[test]
    fn a_desk_whose_thread_ended_refuses_at_once() {
        let (tx, rx) = mpsc::channel();
        drop(rx);
        let desk = Desk::new(tx, Arc::new(AtomicUsize::new(0)), 8000);
        assert_eq!(desk.make_offer(), Err(Refusal::Unavailable));
    }
}
