//! The WebRTC peers thread: every session's str0m state, the UDP sockets they share, and
//! the H.264 pictures written to them.
//!
//! One thread, no async runtime. While no session exists it sleeps on the command
//! channel and holds no interest in the H.264 stream, so nothing is encoded for WebRTC.
//! While sessions exist it registers as one H.264 viewer and loops: wait (at most
//! [`TICK`]) for a datagram on any socket, feed datagrams to the session that accepts
//! them, take commands, write new access units to every connected session, and let each
//! session's timers run. Every change to a session is followed by draining its output
//! (datagrams to send, events, its next deadline), as str0m requires.
//!
//! * One UDP socket per local address, all on one port (`--webrtc-port`), so that each
//!   datagram arrives on the socket of the address it was sent to, which is what ICE
//!   needs to know. Addresses that appear later get sockets when the next session opens.
//! * ICE-lite: this side only answers the browser's probes; it needs no STUN server.
//! * A new session waits for a fresh IDR picture (and asks for one), then gets every
//!   access unit in order; one that falls behind skips to the next IDR picture (the
//!   slot's rule). A picture-loss report from the browser asks the encoder for an IDR
//!   picture (the encoder makes at most one per 500 ms).
//! * A session ends when the client sends DELETE, when ICE reports it disconnected
//!   (the browser's consent checks stopped), or when it never connects within
//!   [`CONNECT_WAIT`]. At most [`MAX_PEERS`] run at once.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};

use super::hosts::local_addresses;
use super::{new_session_id, Ask, Command, Desk, Done, Opened, Refusal, MAX_PEERS};
use crate::h264::nal::sample_to_annex_b;
use crate::h264::slot::{AccessUnit, H264Slot, Next};
use crate::ratelog::{RateLimit, DEFAULT_INTERVAL};

/// The longest the loop waits for a datagram while sessions exist: the most an access
/// unit waits before it is sent.
pub const TICK: Duration = Duration::from_millis(5);

/// How long a session may take to connect after its SDP exchange.
pub const CONNECT_WAIT: Duration = Duration::from_secs(20);

/// The largest datagram read.
const DATAGRAM: usize = 2048;

static SEND_FAILED: RateLimit = RateLimit::new(DEFAULT_INTERVAL);
static WRITE_FAILED: RateLimit = RateLimit::new(DEFAULT_INTERVAL);
static BROKE: RateLimit = RateLimit::new(DEFAULT_INTERVAL);
/// A session's opening, connection and end: at most a line a second of each, as for
/// MJPEG and MP4 viewers, however fast a client opens and ends sessions.
static OPENED: RateLimit = RateLimit::new(Duration::from_secs(1));
static CONNECTED: RateLimit = RateLimit::new(Duration::from_secs(1));
static ENDED: RateLimit = RateLimit::new(Duration::from_secs(1));

/// Why the peers thread could not start.
#[derive(Debug)]
pub struct StartError(pub String);

/// Starts the peers thread on UDP `port` (0: any free port) for the pictures of `h264`;
/// returns the desk for the HTTP side and the thread, which ends when the desk is dropped
/// and the slot closes.
pub fn start(h264: Arc<H264Slot>, port: u16) -> Result<(Arc<Desk>, JoinHandle<()>), StartError> {
    str0m::crypto::from_feature_flags().install_process_default();
    let mut sockets = Sockets::default();
    let port = sockets.bind_new(port)?;
    let (tx, rx) = mpsc::channel();
    let count = Arc::new(AtomicUsize::new(0));
    let desk = Arc::new(Desk::new(tx, count.clone(), port));
    let thread = thread::Builder::new()
        .name("webrtc".into())
        .spawn(move || {
            let mut hall = Hall {
                sockets,
                port,
                peers: HashMap::new(),
                count,
                h264,
            };
            // A panic on a viewer's input (in str0m or here) must not end WebRTC for
            // good: the sessions are dropped, and the thread goes on for new ones.
            while panic::catch_unwind(AssertUnwindSafe(|| hall.run(&rx))).is_err() {
                let lost = hall.peers.len();
                hall.peers.clear();
                hall.count.store(0, Ordering::SeqCst);
                if let Some(held) = BROKE.admit() {
                    log::error!(
                        "WebRTC: a session broke the WebRTC thread (a bug: please report \
                         the panic above); {lost} session(s) ended, new ones are taken{held}"
                    );
                }
            }
        })
        .map_err(|e| StartError(format!("cannot start the WebRTC thread: {e}")))?;
    Ok((desk, thread))
}

/// The sockets, one per local address, all on one port, each with the address it is
/// bound to (read once, not per datagram).
#[derive(Default)]
struct Sockets {
    list: Vec<(UdpSocket, SocketAddr)>,
}

impl Sockets {
    /// Binds a socket for each local address that has none yet, on `port` (0: a free
    /// port, the same for all); returns the port. At least one socket must exist.
    fn bind_new(&mut self, port: u16) -> Result<u16, StartError> {
        let mut port = port;
        let mut failures = Vec::new();
        for ip in local_addresses() {
            if self.list.iter().any(|(_, a)| a.ip() == ip) {
                continue;
            }
            let bound = UdpSocket::bind(SocketAddr::new(ip, port))
                .and_then(|socket| socket.local_addr().map(|address| (socket, address)));
            match bound {
                Ok((socket, address)) => {
                    port = address.port();
                    if socket.set_nonblocking(true).is_ok() {
                        log::debug!("WebRTC: listening on {ip} port {port}/udp");
                        self.list.push((socket, address));
                    }
                }
                Err(e) => failures.push(format!("{ip}: {e}")),
            }
        }
        if self.list.is_empty() {
            return Err(StartError(format!(
                "WebRTC cannot listen on UDP port {port} on any address ({}); choose \
                 another with --webrtc-port, or turn WebRTC off with --webrtc-port off",
                failures.join("; ")
            )));
        }
        if !failures.is_empty() {
            log::warn!(
                "WebRTC: UDP port {port} is not open on every address: {}",
                failures.join("; ")
            );
        }
        Ok(port)
    }

    fn local_candidates(&self) -> Vec<SocketAddr> {
        self.list.iter().map(|(_, a)| *a).collect()
    }

    /// Sends `data` from the socket of `source`.
    fn send(&self, source: SocketAddr, destination: SocketAddr, data: &[u8]) {
        let socket = self.list.iter().find(|(_, a)| *a == source).or_else(|| {
            self.list
                .iter()
                .find(|(_, a)| a.is_ipv4() == destination.is_ipv4())
        });
        if let Some((socket, _)) = socket {
            if let Err(e) = socket.send_to(data, destination) {
                if e.kind() != ErrorKind::WouldBlock {
                    crate::warn_limited!(
                        SEND_FAILED,
                        "WebRTC: sending to {destination} failed: {e}"
                    );
                }
            }
        }
    }
}

/// One session.
struct Peer {
    rtc: Rtc,
    /// This side's offer and its video media, until the client's answer comes
    /// (camera-streamer's dialect).
    pending: Option<(SdpPendingOffer, Mid)>,
    /// The video media and the H.264 payload type to write with, once known.
    video: Option<(Mid, Pt)>,
    opened: Instant,
    connected: bool,
    /// The last access unit written (or passed by, waiting for an IDR picture).
    seen: u64,
    /// Whether the first IDR picture was written.
    started: bool,
    /// The capture time that is media time 0.
    base: Option<Instant>,
    /// When str0m wants to be called next.
    due: Instant,
    /// Where the client is, once it probed.
    remote: Option<SocketAddr>,
}

struct Hall {
    sockets: Sockets,
    port: u16,
    peers: HashMap<String, Peer>,
    count: Arc<AtomicUsize>,
    h264: Arc<H264Slot>,
}

impl Hall {
    fn run(&mut self, commands: &Receiver<Command>) {
        loop {
            // No session: sleep until a command comes, interested in nothing.
            match commands.recv_timeout(Duration::from_secs(1)) {
                Ok(command) => self.obey(command),
                Err(RecvTimeoutError::Timeout) if self.h264.is_closed() => return,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if self.peers.is_empty() {
                continue;
            }
            let h264 = self.h264.clone();
            let _watch = h264.watch();
            while !self.peers.is_empty() {
                if h264.is_closed() {
                    self.end_all("the server stops");
                    return;
                }
                self.wait_and_receive();
                loop {
                    match commands.try_recv() {
                        Ok(command) => self.obey(command),
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => {
                            self.end_all("the server stops");
                            return;
                        }
                    }
                }
                self.write_pictures();
                self.run_timers();
            }
        }
    }

    /// Waits up to [`TICK`] (less when a session is due) for datagrams, and feeds each
    /// to the session that takes it.
    fn wait_and_receive(&mut self) {
        let now = Instant::now();
        let soonest = self
            .peers
            .values()
            .map(|p| p.due)
            .min()
            .unwrap_or(now + TICK);
        let wait = soonest.saturating_duration_since(now).min(TICK);
        let mut fds: Vec<PollFd> = self
            .sockets
            .list
            .iter()
            .map(|(s, _)| PollFd::new(s.as_fd(), PollFlags::POLLIN))
            .collect();
        let millis = u16::try_from(wait.as_millis()).unwrap_or(u16::MAX);
        if poll(&mut fds, PollTimeout::from(millis)).unwrap_or(0) <= 0 {
            return;
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|fd| fd.revents().is_some_and(|r| r.contains(PollFlags::POLLIN)))
            .collect();
        drop(fds);
        let mut buf = [0u8; DATAGRAM];
        for (i, ready) in ready.into_iter().enumerate() {
            if !ready {
                continue;
            }
            // A bounded number per socket, so one flood cannot hold the loop.
            for _ in 0..64 {
                let (socket, local) = &self.sockets.list[i];
                let local = *local;
                let (n, source) = match socket.recv_from(&mut buf) {
                    Ok(got) => got,
                    Err(_) => break,
                };
                self.receive(source, local, &buf[..n]);
            }
        }
    }

    fn receive(&mut self, source: SocketAddr, destination: SocketAddr, data: &[u8]) {
        let Ok(contents) = data.try_into() else {
            return;
        };
        let input = Input::Receive(
            Instant::now(),
            Receive {
                proto: Protocol::Udp,
                source,
                destination,
                contents,
            },
        );
        let Some(id) = self
            .peers
            .iter()
            .find(|(_, p)| p.rtc.accepts(&input))
            .map(|(id, _)| id.clone())
        else {
            return;
        };
        let peer = self.peers.get_mut(&id).expect("found above");
        peer.remote = Some(source);
        if let Err(e) = peer.rtc.handle_input(input) {
            log::debug!(
                "WebRTC session {}: a datagram from {source} was refused: {e}",
                short(&id)
            );
        }
        self.drain(&id);
    }

    /// Drains session `id`'s output: sends its datagrams, handles its events, notes its
    /// next deadline. A session that died is removed.
    fn drain(&mut self, id: &str) {
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        let mut ended = None;
        loop {
            match peer.rtc.poll_output() {
                Ok(Output::Timeout(due)) => {
                    peer.due = due;
                    break;
                }
                Ok(Output::Transmit(t)) => self.sockets.send(t.source, t.destination, &t.contents),
                Ok(Output::Event(event)) => match event {
                    Event::Connected => {
                        peer.connected = true;
                        // The next IDR picture starts this viewer's stream.
                        peer.seen = self.h264.last_seq();
                        self.h264.request_key();
                        if let Some(held) = CONNECTED.admit() {
                            log::info!(
                                "WebRTC session {} connected{}{held}",
                                short(id),
                                peer.remote.map_or(String::new(), |r| format!(" with {r}"))
                            );
                        }
                    }
                    Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                        ended = Some("the viewer left (its connection checks stopped)");
                    }
                    Event::MediaAdded(added) if added.kind == MediaKind::Video => {
                        peer.video =
                            h264_payload(&mut peer.rtc, added.mid).map(|pt| (added.mid, pt));
                    }
                    Event::KeyframeRequest(_) => self.h264.request_key(),
                    _ => {}
                },
                Err(e) => {
                    log::debug!("WebRTC session {}: {e}", short(id));
                    ended = Some("its WebRTC state failed");
                    break;
                }
            }
        }
        if ended.is_none() && !peer.rtc.is_alive() {
            ended = Some("its connection closed");
        }
        if let Some(why) = ended {
            self.end(id, why);
        }
    }

    fn end(&mut self, id: &str, why: &str) {
        if let Some(mut peer) = self.peers.remove(id) {
            peer.rtc.disconnect();
            self.count.store(self.peers.len(), Ordering::SeqCst);
            if let Some(held) = ENDED.admit() {
                log::info!(
                    "WebRTC session {} ended: {why} ({} left){held}",
                    short(id),
                    self.peers.len()
                );
            }
        }
    }

    fn end_all(&mut self, why: &str) {
        let ids: Vec<String> = self.peers.keys().cloned().collect();
        for id in ids {
            self.end(&id, why);
        }
    }

    /// Writes every access unit a connected session has not seen yet.
    fn write_pictures(&mut self) {
        let ids: Vec<String> = self
            .peers
            .iter()
            .filter(|(_, p)| p.connected && p.video.is_some())
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            // A bounded number per round: a session far behind gets the rest next round.
            for _ in 0..8 {
                let Some(peer) = self.peers.get_mut(&id) else {
                    break;
                };
                let next = if peer.started {
                    self.h264.next_after(peer.seen, Duration::ZERO)
                } else {
                    self.h264.next_key_after(peer.seen, Duration::ZERO)
                };
                let Next::Unit(unit) = next else {
                    break;
                };
                write_unit(&id, peer, &unit);
                self.drain(&id);
            }
        }
    }

    /// Lets every due session's timers run; ends those that never connected.
    fn run_timers(&mut self) {
        let now = Instant::now();
        let due: Vec<String> = self
            .peers
            .iter()
            .filter(|(_, p)| p.due <= now || (!p.connected && now - p.opened > CONNECT_WAIT))
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            let Some(peer) = self.peers.get_mut(&id) else {
                continue;
            };
            if !peer.connected && now - peer.opened > CONNECT_WAIT {
                self.end(
                    &id,
                    "it did not connect in time (UDP blocked between the two?)",
                );
                continue;
            }
            if peer.rtc.handle_input(Input::Timeout(now)).is_err() {
                self.end(&id, "its WebRTC state failed");
                continue;
            }
            self.drain(&id);
        }
    }

    fn obey(&mut self, command: Command) {
        let done = match command.ask {
            Ask::AnswerOffer(sdp) => self.answer_offer(&sdp),
            Ask::MakeOffer => self.make_offer(),
            Ask::AcceptAnswer { id, sdp } => self.accept_answer(&id, &sdp),
            Ask::Candidates { id, candidates } => self.add_candidates(&id, &candidates),
            Ask::End(id) => {
                if self.peers.contains_key(&id) {
                    self.end(&id, "the viewer ended it");
                    Ok(Done::Fine)
                } else {
                    Err(Refusal::NoSuchSession)
                }
            }
        };
        let _ = command.reply.send(done);
    }

    /// A new session's str0m state with this machine's addresses as its candidates.
    fn new_rtc(&mut self) -> Result<Rtc, Refusal> {
        if self.peers.len() >= MAX_PEERS {
            return Err(Refusal::Full);
        }
        if let Err(e) = self.sockets.bind_new(self.port) {
            log::warn!("{}", e.0);
        }
        let mut rtc = session_config().build(Instant::now());
        for address in self.sockets.local_candidates() {
            if let Ok(candidate) = Candidate::host(address, "udp") {
                rtc.add_local_candidate(candidate);
            }
        }
        Ok(rtc)
    }

    fn add(&mut self, rtc: Rtc, pending: Option<(SdpPendingOffer, Mid)>) -> String {
        let id = new_session_id();
        let now = Instant::now();
        self.peers.insert(
            id.clone(),
            Peer {
                rtc,
                pending,
                video: None,
                opened: now,
                connected: false,
                seen: 0,
                started: false,
                base: None,
                due: now,
                remote: None,
            },
        );
        self.count.store(self.peers.len(), Ordering::SeqCst);
        id
    }

    fn answer_offer(&mut self, sdp: &str) -> Result<Done, Refusal> {
        let offer = read_offer(sdp)?;
        let mut rtc = self.new_rtc()?;
        let (answer, video) = accept_offer(&mut rtc, offer, sdp)?;
        let id = self.add(rtc, None);
        if let Some(peer) = self.peers.get_mut(&id) {
            peer.video = video;
        }
        self.drain(&id);
        let Some(peer) = self.peers.get(&id) else {
            return Err(Refusal::Unavailable);
        };
        if peer.video.is_none() {
            self.end(&id, "its offer takes no H.264 video");
            return Err(Refusal::Bad(
                "the offer has no video this server can send: it sends H.264 \
                 (packetization-mode 1) only"
                    .into(),
            ));
        }
        if let Some(held) = OPENED.admit() {
            log::info!(
                "WebRTC session {} opened (an answer to the viewer's offer){held}",
                short(&id)
            );
        }
        Ok(Done::Opened(Opened {
            id,
            sdp: answer.to_sdp_string(),
        }))
    }

    fn make_offer(&mut self) -> Result<Done, Refusal> {
        let mut rtc = self.new_rtc()?;
        let mut change = rtc.sdp_api();
        let mid = change.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
        let (offer, pending) = change
            .apply()
            .ok_or_else(|| Refusal::Bad("no offer could be made".into()))?;
        let id = self.add(rtc, Some((pending, mid)));
        self.drain(&id);
        if let Some(held) = OPENED.admit() {
            log::info!(
                "WebRTC session {} opened (this side's offer){held}",
                short(&id)
            );
        }
        Ok(Done::Opened(Opened {
            id,
            sdp: offer.to_sdp_string(),
        }))
    }

    fn accept_answer(&mut self, id: &str, sdp: &str) -> Result<Done, Refusal> {
        let peer = self.peers.get_mut(id).ok_or(Refusal::NoSuchSession)?;
        let Some((pending, mid)) = peer.pending.take() else {
            return Err(Refusal::Bad("that session has its answer already".into()));
        };
        let answer = read_answer(sdp)?;
        if let Err(e) = peer.rtc.sdp_api().accept_answer(pending, answer) {
            self.end(id, "its answer was refused");
            return Err(Refusal::Bad(format!("the answer cannot be used: {e}")));
        }
        peer.video = h264_payload(&mut peer.rtc, mid).map(|pt| (mid, pt));
        if peer.video.is_none() {
            self.end(id, "its answer takes no H.264 video");
            return Err(Refusal::Bad(
                "the answer takes no H.264 video (packetization-mode 1), the only kind \
                 this server sends"
                    .into(),
            ));
        }
        self.drain(id);
        Ok(Done::Fine)
    }

    fn add_candidates(&mut self, id: &str, candidates: &[String]) -> Result<Done, Refusal> {
        if !self.peers.contains_key(id) {
            return Err(Refusal::NoSuchSession);
        }
        for line in candidates {
            let Some(peer) = self.peers.get_mut(id) else {
                break;
            };
            // A candidate this side cannot read is no loss: the client's probes show
            // where it is anyway.
            if let Ok(candidate) = Candidate::from_sdp_string(line) {
                peer.rtc.add_remote_candidate(candidate);
                self.drain(id);
            }
        }
        Ok(Done::Fine)
    }
}

/// A session's str0m settings: ICE-lite, H.264 only.
fn session_config() -> RtcConfig {
    RtcConfig::new()
        .set_ice_lite(true)
        .clear_codecs()
        .enable_h264(true)
}

/// A viewer's offer, read; refused when it is not SDP or has no video.
fn read_offer(sdp: &str) -> Result<SdpOffer, Refusal> {
    let offer = SdpOffer::from_sdp_string(sdp)
        .map_err(|e| Refusal::Bad(format!("the offer is not SDP this server reads: {e}")))?;
    if !sdp.contains("m=video") {
        return Err(Refusal::Bad(
            "the offer has no video (add a recvonly video transceiver)".into(),
        ));
    }
    Ok(offer)
}

/// `offer` (read from `sdp`) accepted by `rtc`: the answer, and the video section and
/// payload type H.264 goes out with, if the offer takes H.264.
fn accept_offer(
    rtc: &mut Rtc,
    offer: SdpOffer,
    sdp: &str,
) -> Result<(SdpAnswer, Option<(Mid, Pt)>), Refusal> {
    let answer = rtc
        .sdp_api()
        .accept_offer(offer)
        .map_err(|e| Refusal::Bad(format!("the offer cannot be answered: {e}")))?;
    // str0m tells of the media only once connected: find it in the offer now.
    let video = video_mid(sdp).and_then(|mid| h264_payload(rtc, mid).map(|pt| (mid, pt)));
    Ok((answer, video))
}

/// A viewer's answer to this side's offer, read.
fn read_answer(sdp: &str) -> Result<SdpAnswer, Refusal> {
    SdpAnswer::from_sdp_string(sdp)
        .map_err(|e| Refusal::Bad(format!("the answer is not SDP this server reads: {e}")))
}

/// What a viewer's offer goes through (`POST /whep`, camera-streamer's `offer`), on a
/// session of its own with no socket: read, accepted, and the session's output drained
/// as the peers thread drains it. Returns the answer's SDP. The fuzz target
/// `webrtc_sdp` drives it with arbitrary text.
pub fn answer_alone(sdp: &str) -> Result<String, Refusal> {
    let offer = read_offer(sdp)?;
    let mut rtc = alone();
    let (answer, video) = accept_offer(&mut rtc, offer, sdp)?;
    drain_alone(&mut rtc);
    if video.is_none() {
        return Err(Refusal::Bad("the offer takes no H.264 video".into()));
    }
    Ok(answer.to_sdp_string())
}

/// What a viewer's answer to this side's offer goes through (camera-streamer's
/// `answer`), then its `candidates` (`remote_candidate`), on a session of its own with
/// no socket. The fuzz target `webrtc_sdp` drives it with arbitrary text.
pub fn accept_answer_alone(sdp: &str, candidates: &[&str]) -> Result<(), Refusal> {
    let mut rtc = alone();
    let mut change = rtc.sdp_api();
    let mid = change.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
    let (_offer, pending) = change
        .apply()
        .ok_or_else(|| Refusal::Bad("no offer could be made".into()))?;
    let answer = read_answer(sdp)?;
    rtc.sdp_api()
        .accept_answer(pending, answer)
        .map_err(|e| Refusal::Bad(format!("the answer cannot be used: {e}")))?;
    let video = h264_payload(&mut rtc, mid);
    for line in candidates {
        if let Ok(candidate) = Candidate::from_sdp_string(line) {
            rtc.add_remote_candidate(candidate);
        }
    }
    drain_alone(&mut rtc);
    video
        .map(|_| ())
        .ok_or_else(|| Refusal::Bad("the answer takes no H.264 video".into()))
}

/// A session with no socket, as the peers thread makes them (its candidate a fixed
/// loopback address).
fn alone() -> Rtc {
    let mut rtc = session_config().build(Instant::now());
    if let Ok(candidate) = Candidate::host(SocketAddr::from((Ipv4Addr::LOCALHOST, 9)), "udp") {
        rtc.add_local_candidate(candidate);
    }
    rtc
}

/// Takes a lone session's output until it has none but its next deadline (bounded).
fn drain_alone(rtc: &mut Rtc) {
    for _ in 0..256 {
        match rtc.poll_output() {
            Ok(Output::Timeout(_)) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Writes `unit` to `peer`: Annex B, with the parameter sets before an IDR picture.
fn write_unit(id: &str, peer: &mut Peer, unit: &AccessUnit) {
    peer.seen = unit.seq();
    if !peer.started && !unit.is_key() {
        return;
    }
    peer.started = true;
    let Some((mid, pt)) = peer.video else {
        return;
    };
    let base = *peer.base.get_or_insert(unit.captured());
    let since = unit.captured().saturating_duration_since(base);
    let media_time = MediaTime::from_90khz((since.as_micros() * 9 / 100) as u64);
    let config = unit.config();
    let sets = unit
        .is_key()
        .then(|| (config.sps.as_slice(), config.pps.as_slice()));
    let data = sample_to_annex_b(unit.sample(), sets);
    let Some(writer) = peer.rtc.writer(mid) else {
        return;
    };
    if let Err(e) = writer.write(pt, unit.captured(), media_time, data) {
        crate::warn_limited!(
            WRITE_FAILED,
            "WebRTC session {}: a picture could not be sent: {e}",
            short(id)
        );
    }
}

/// The payload type to send H.264 with on `mid`: packetization mode 1, constrained
/// baseline preferred.
fn h264_payload(rtc: &mut Rtc, mid: Mid) -> Option<Pt> {
    let writer = rtc.writer(mid)?;
    let mut best: Option<(u8, Pt)> = None;
    for params in writer.payload_params() {
        let spec = params.spec();
        if spec.codec != Codec::H264 || spec.format.packetization_mode != Some(1) {
            continue;
        }
        let profile = spec.format.profile_level_id.map_or(0, |p| p >> 8);
        // 42e0: constrained baseline; 4200 (baseline) decodes it too.
        let rank = match profile {
            0x42e0 => 3,
            0x4200 => 2,
            _ => 1,
        };
        if best.is_none_or(|(r, _)| rank > r) {
            best = Some((rank, params.pt()));
        }
    }
    best.map(|(_, pt)| pt)
}

/// The `a=mid` of the first video section of `sdp`.
fn video_mid(sdp: &str) -> Option<Mid> {
    let mut in_video = false;
    for line in sdp.lines().map(str::trim) {
        if let Some(media) = line.strip_prefix("m=") {
            in_video = media.starts_with("video ");
        } else if in_video {
            if let Some(mid) = line.strip_prefix("a=mid:") {
                return (!mid.is_empty() && mid.len() <= 16).then(|| Mid::from(mid));
            }
        }
    }
    None
}

/// The start of a session id, for logs.
fn short(id: &str) -> &str {
    &id[..id.len().min(8)]
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROMIUM_OFFER: &str =
        include_str!("../../tests/fixtures/webrtc/chromium-156-whep-offer.sdp");

    #[test]
    fn an_offer_alone_is_answered_and_bad_sdp_refused_as_bad() {
        let answer = answer_alone(CHROMIUM_OFFER).expect("Chromium's offer answered");
        assert!(answer.starts_with("v=0"), "{answer}");
        assert!(answer.contains(" H264/90000"), "{answer}");
        for bad in [
            "",
            "not sdp at all",
            "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n",
            // Chromium's offer without its video: nothing to send.
            CHROMIUM_OFFER.split("m=video").next().unwrap(),
        ] {
            assert!(
                matches!(answer_alone(bad), Err(Refusal::Bad(_))),
                "{bad:?}: {:?}",
                answer_alone(bad)
            );
        }
    }

    #[test]
    fn an_answer_alone_that_is_no_answer_is_refused_as_bad() {
        for bad in ["", "v=0\r\n", CHROMIUM_OFFER] {
            let got = accept_answer_alone(bad, &["candidate:1 1 udp 1 127.0.0.1 9 typ host"]);
            assert!(matches!(got, Err(Refusal::Bad(_))), "{bad:?}: {got:?}");
        }
    }

    #[test]
    fn a_chromium_offer_is_answered_with_constrained_baseline_h264() {
        str0m::crypto::from_feature_flags().install_process_default();
        let mut rtc = RtcConfig::new()
            .set_ice_lite(true)
            .clear_codecs()
            .enable_h264(true)
            .build(Instant::now());
        rtc.add_local_candidate(Candidate::host("127.0.0.1:9".parse().unwrap(), "udp").unwrap());
        let offer = SdpOffer::from_sdp_string(CHROMIUM_OFFER).unwrap();
        let answer = rtc.sdp_api().accept_offer(offer).unwrap().to_sdp_string();
        let mid = video_mid(CHROMIUM_OFFER).expect("the offer's video section");
        assert_eq!(mid.to_string(), "0");
        let pt = h264_payload(&mut rtc, mid).expect("an H.264 payload");
        // Chromium's constrained baseline with packetization mode 1.
        assert!(answer.contains(&format!("a=fmtp:{pt} level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f")), "{answer}");
        assert!(answer.contains("a=ice-lite") && answer.contains("a=sendonly"));
        assert!(answer.contains("127.0.0.1 9 typ host"));
        assert_eq!(video_mid("v=0\r\nm=audio 9 x 0\r\na=mid:a\r\n"), None);
    }
}
