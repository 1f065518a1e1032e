//! Running a source in a process of its own (`--isolate`), so that a camera library
//! that aborts, crashes or hangs takes only that process down: the server shows the
//! no-signal picture, says why in `/status` and starts the process again.
//!
//! The child is this same program, started again with the same arguments and
//! environment plus [`WORKER_VAR`] naming the source to run. In the child the source
//! runs as it always does, except that its [`FrameSink`] writes every good frame to
//! standard output instead of a frame slot. Beside the frames go the source's problem,
//! its encoder and its dropped-frame count whenever they change, its camera's controls
//! whenever they come, go or change, and a heartbeat every second. Standard input
//! closing is the child's signal to stop.
//!
//! Each message is a tag byte, a little-endian `u32` length and that many bytes:
//!
//! | tag | payload |
//! |-----|---------|
//! | `F` | a JPEG frame |
//! | `E` | the source's current problem, UTF-8 (empty: none) |
//! | `C` | the encoder's description, UTF-8 |
//! | `D` | frames dropped so far, `u64` little-endian |
//! | `W` | encoding threads, then pictures dropped so far because all were busy: two `u64` little-endian |
//! | `K` | the camera's controls, numbered, or none ([`control_wire`]'s description) |
//! | `H` | nothing: the child is alive |
//! | `T` | one byte: `1` while the source takes full-resolution stills (its still desk is open), `0` when it stops |
//!
//! Camera controls go both ways. The source in the child attaches them to a
//! [`ControlBoard`] of the child's own; the child describes that board with `K`
//! messages ([`control_server`]). While a description lists controls, the parent
//! keeps a [`ChildControls`] on the server's board, which lists the newest
//! description and sends changes to the child over a socket of their own, passed as
//! descriptor 3 ([`control_server::SOCKET_FD`]), in the same framing:
//!
//! | tag | way | payload |
//! |-----|-----|---------|
//! | `S` | to the child | a request: an id and the changes ([`control_wire`]) |
//! | `A` | to the parent | the answer to that id: applied with the controls as they are now, or refused or failed with the reason |
//!
//! The parent waits [`ANSWER_WITHIN`] for an answer; a child that ends, or says none,
//! takes its controls off the server's board.
//!
//! Full-resolution stills go the same way over a socket of their own, descriptor 4
//! ([`still_server::SOCKET_FD`]), so that a still that takes seconds holds up no
//! control change. While the child says (`T`) that its source takes stills, the parent
//! keeps the server's [`StillDesk`](crate::still::StillDesk) open and passes its
//! requests on ([`still_proxy`]); the child asks its own desk, where the source takes
//! the still between two frames ([`still_server`]; bytes in [`still_wire`]):
//!
//! | tag | way | payload |
//! |-----|-----|---------|
//! | `G` | to the child | a request for a still: an id |
//! | `J` | to the parent | the answer to that id: the still's size and JPEG, or why none came |
//!
//! The parent runs the child only while somebody wants frames (plus a linger, so the
//! camera is released when nobody watches), checks every frame as it checks a
//! byte-stream source's, and counts as a failure the child's exit, a message it cannot
//! read, and a child that says nothing at all for [`SILENCE`].

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

mod control_proxy;
mod control_server;
pub mod control_wire;
mod link;
mod messages;
mod still_proxy;
mod still_server;
pub mod still_wire;

pub use control_proxy::{ChildControls, ANSWER_WITHIN};
pub use messages::{decode, Message, MessageReader};
use messages::{workers_payload, Outlet, ALIVE, DROPPED, ENCODER, FRAME, PROBLEM, WORKERS};
use still_proxy::StillRelay;
use still_server::StillsReport;

use super::backoff::Backoff;
use super::nosignal::NoSignal;
use super::{FrameSink, SourceSpec, LINGER};
use crate::controls::{Attached, ControlBoard};
use crate::picture::Settings;
use crate::slot::FrameSlot;
use crate::stats::SourceStats;

/// The variable that makes the program the child: its value is the source to run.
pub const WORKER_VAR: &str = "PICAM_SOURCE_PROCESS";

/// What `--isolate` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// A process of its own for the libcamera source only.
    #[default]
    Auto,
    /// A process of its own for every source that captures or draws (test, v4l2,
    /// libcamera).
    On,
    /// Every source runs inside the server.
    Off,
}

impl std::str::FromStr for Isolation {
    type Err = String;

    fn from_str(s: &str) -> Result<Isolation, String> {
        match s {
            "auto" => Ok(Isolation::Auto),
            "on" => Ok(Isolation::On),
            "off" => Ok(Isolation::Off),
            _ => Err("expected auto, on or off".to_string()),
        }
    }
}

impl Isolation {
    /// Whether `spec` (already resolved from `auto`) runs in a process of its own.
    /// Byte-stream sources never do: `exec:` already runs its command apart, and
    /// `stdin` and `file:` have nothing that could crash.
    pub fn applies_to(self, spec: &SourceSpec) -> bool {
        match (self, spec) {
            (Isolation::Off, _) => false,
            (Isolation::Auto, SourceSpec::Libcamera(_)) => true,
            (Isolation::Auto, _) => false,
            (Isolation::On, s) => matches!(
                s,
                SourceSpec::Test | SourceSpec::V4l2(_) | SourceSpec::Libcamera(_)
            ),
        }
    }
}

/// A child that sends nothing at all (not even its heartbeat) for this long is hung.
pub const SILENCE: Duration = Duration::from_secs(10);

/// How often the child sends its heartbeat (its state goes as soon as it changes).
const ALIVE_EVERY: Duration = Duration::from_secs(1);

/// How long a child told to stop has before it is killed. Short enough to fit in the
/// server's own grace at shutdown.
const STOP_GRACE: Duration = Duration::from_millis(400);

/// Longest wait for the child's output before demand and stopping are checked again.
const POLL_SLICE: Duration = Duration::from_millis(100);

// ------------------------------------------------------------------ the child

/// Takes the standard output for messages and points file descriptor 1 at standard
/// error, so that nothing else printed by mistake can break a message.
fn private_stdout() -> io::Result<File> {
    let out: OwnedFd = io::stdout().as_fd().try_clone_to_owned()?;
    nix::unistd::dup2(io::stderr().as_raw_fd(), io::stdout().as_raw_fd())?;
    Ok(File::from(out))
}

/// The child's side: runs `spec` and sends what it makes to standard output until
/// standard input closes, and applies the changes to its camera's controls the
/// parent sends on the control socket. Returns the process's exit code.
pub fn serve(spec: &SourceSpec, settings: Settings) -> i32 {
    let outlet = match private_stdout() {
        Ok(out) => Arc::new(Outlet(Mutex::new(out))),
        Err(e) => {
            log::error!("source process: cannot take standard output: {e}");
            return 1;
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let slot = Arc::new(FrameSlot::new());
    // The parent only runs this process while somebody watches.
    let _watch = slot.watch();
    {
        let stop = stop.clone();
        let watcher = std::thread::Builder::new()
            .name("stdin".into())
            .spawn(move || {
                let mut sink = [0u8; 64];
                while matches!(io::stdin().read(&mut sink), Ok(n) if n > 0) {}
                stop.store(true, Ordering::SeqCst);
            });
        if let Err(e) = watcher {
            log::error!("source process: cannot watch standard input: {e}");
            return 1;
        }
    }
    // The source's controls go on a board of this process's own, which the parent
    // hears of; the parent has checked already whether changes are allowed.
    let board = ControlBoard::new(true);
    let reporter = Arc::new(control_server::Reporter::new(board.clone()));
    if let Some(socket) = control_server::take_socket() {
        let reporter = reporter.clone();
        let server = std::thread::Builder::new()
            .name("controls".into())
            .spawn(move || control_server::serve_requests(socket, reporter));
        if let Err(e) = server {
            log::warn!("cannot serve camera control changes: {e}");
        }
    }
    // Requests for stills wait at this process's own desk, where the source serves them.
    if let Some(socket) = still_server::take_socket() {
        let desk = slot.stills().clone();
        let server = std::thread::Builder::new()
            .name("stills".into())
            .spawn(move || still_server::serve_stills(socket, desk));
        if let Err(e) = server {
            log::warn!("cannot serve full-resolution stills: {e}");
        }
    }
    let stills = Arc::new(StillsReport::new(slot.stills().clone()));
    let tap = {
        let outlet = outlet.clone();
        let stop = stop.clone();
        let stills = stills.clone();
        Box::new(move |jpeg: &[u8]| {
            // The parent hears that stills are taken before the first frame.
            let sent = stills
                .send_changes(&outlet)
                .and_then(|()| outlet.send(FRAME, jpeg));
            if sent.is_err() {
                stop.store(true, Ordering::SeqCst);
            }
        })
    };
    let running =
        match super::start_here(spec, settings, slot.clone(), stop.clone(), Some(tap), board) {
            Ok(r) => r,
            Err(e) => {
                let _ = outlet.send(PROBLEM, e.0.as_bytes());
                log::error!("source process: {e}");
                return 1;
            }
        };
    let mut reported = Reported::default();
    let mut controls_reported = control_server::Reported::default();
    let mut alive_at = Instant::now();
    while !stop.load(Ordering::SeqCst) && !running.thread.is_finished() {
        let mut sent = reported
            .send_changes(&running.stats, &outlet)
            .and_then(|()| reporter.send_changes(&mut controls_reported, &outlet))
            .and_then(|()| stills.send_changes(&outlet));
        if sent.is_ok() && alive_at.elapsed() >= ALIVE_EVERY {
            alive_at = Instant::now();
            sent = outlet.send(ALIVE, &[]);
        }
        if sent.is_err() {
            break;
        }
        std::thread::sleep(POLL_SLICE);
    }
    stop.store(true, Ordering::SeqCst);
    // The source lets go of its device; one that hangs is left to the process's exit.
    let deadline = Instant::now() + STOP_GRACE;
    while !running.thread.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    0
}

/// What the child last told the parent about its source.
#[derive(Default)]
struct Reported {
    problem: Option<String>,
    encoder: String,
    dropped: u64,
    workers: (u64, u64),
}

impl Reported {
    fn send_changes(&mut self, stats: &SourceStats, outlet: &Outlet) -> io::Result<()> {
        let problem = stats.error();
        if problem != self.problem {
            outlet.send(PROBLEM, problem.as_deref().unwrap_or("").as_bytes())?;
            self.problem = problem;
        }
        let encoder = stats.encoder();
        if encoder != self.encoder {
            outlet.send(ENCODER, encoder.as_bytes())?;
            self.encoder = encoder;
        }
        let dropped = stats.dropped();
        if dropped != self.dropped {
            outlet.send(DROPPED, &dropped.to_le_bytes())?;
            self.dropped = dropped;
        }
        let workers = (stats.encode_workers() as u64, stats.workers_busy());
        if workers != self.workers {
            outlet.send(WORKERS, &workers_payload(workers.0, workers.1))?;
            self.workers = workers;
        }
        Ok(())
    }
}

// ------------------------------------------------------------------ the parent

/// How a run of the child ended.
enum End {
    /// The server is stopping.
    Stopping,
    /// Nobody wants frames: the child was told to stop.
    Idle,
    /// Something went wrong, as said.
    Failed(String),
    /// The child's output ended, with what else there is to say (a message cut short,
    /// the child's last problem).
    Ended(String),
}

/// The parent's side: keeps a child running `spec` while somebody wants frames, and
/// publishes what it sends; its camera's controls are on `board` while it describes
/// some. Runs until the server stops.
pub fn supervise(
    spec: SourceSpec,
    settings: Settings,
    mut sink: FrameSink,
    board: Arc<ControlBoard>,
) {
    let mut nosignal = NoSignal::new(settings.quality, settings.output_size());
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
    let mut runs = 0u64;
    sink.stats().set_capturing(false);
    while !sink.stopping() {
        if !sink.wanted(LINGER) {
            sink.wait_until_wanted(LINGER);
            continue;
        }
        if runs > 0 && sink.stats().error().is_some() {
            sink.stats().count_restart();
        }
        runs += 1;
        let (mut child, sockets) = match spawn(&spec) {
            Ok(c) => c,
            Err(e) => {
                let why = format!("cannot start the source process: {e}");
                fail(&mut sink, &mut nosignal, &mut backoff, why, Duration::ZERO);
                continue;
            }
        };
        let pid = child.id();
        log::info!("source process {pid} started for {spec}");
        let stills = StillRelay::start(sockets.stills, sink.stills().clone(), pid)
            .map_err(|e| log::warn!("source process {pid}: no full-resolution stills: {e}"))
            .ok();
        let mut run = Run {
            reader: MessageReader::default(),
            dropped: 0,
            workers_busy: 0,
            first_good: None,
            pid,
            board: board.clone(),
            controls: Arc::new(ChildControls::new(sockets.controls)),
            attached: None,
            stills,
        };
        let end = run.pump(&mut child, &mut sink, &mut nosignal);
        // Its controls and stills go with it; the relay's thread ends once the child
        // has (its socket closes).
        run.attached = None;
        if let Some(stills) = &mut run.stills {
            stills.close_desk(&match &end {
                End::Stopping => "the server is stopping".to_string(),
                End::Idle => "the camera stopped".to_string(),
                End::Ended(_) => "the camera's process ended".to_string(),
                End::Failed(why) => format!("the camera's process failed ({why})"),
            });
        }
        sink.stats().set_capturing(false);
        let status = stop_child(&mut child);
        drop(run.stills.take());
        let why = match end {
            End::Stopping => return,
            End::Idle => {
                log::info!("nobody watching: source process {pid} {status}");
                sink.stats().set_error(None);
                continue;
            }
            End::Ended(more) => format!("the source process {pid} {status}{more}"),
            End::Failed(why) => format!("{why}; the source process {pid} {status}"),
        };
        let healthy = run.first_good.map_or(Duration::ZERO, |t| t.elapsed());
        fail(&mut sink, &mut nosignal, &mut backoff, why, healthy);
    }
}

/// Reports a failed run and waits the back-off pause, showing the no-signal picture.
fn fail(
    sink: &mut FrameSink,
    nosignal: &mut NoSignal,
    backoff: &mut Backoff,
    why: String,
    healthy_for: Duration,
) {
    if sink.stopping() {
        return;
    }
    let pause = backoff.after_failure(healthy_for);
    let why = format!("{why}; starting it again in {} s", pause.as_secs());
    nosignal.report(sink, &why);
    nosignal.wait(sink, &why, pause);
}

/// The parent's ends of the sockets to a child.
struct Sockets {
    controls: UnixStream,
    stills: UnixStream,
}

/// Starts the child, with the other ends of the sockets on
/// [`control_server::SOCKET_FD`] and [`still_server::SOCKET_FD`].
fn spawn(spec: &SourceSpec) -> io::Result<(Child, Sockets)> {
    let (controls, controls_theirs) = UnixStream::pair()?;
    let (stills, stills_theirs) = UnixStream::pair()?;
    let places = [
        (controls_theirs.as_raw_fd(), control_server::SOCKET_FD),
        (stills_theirs.as_raw_fd(), still_server::SOCKET_FD),
    ];
    // The running program itself, even when its file was replaced or removed since it
    // started (an upgrade): the child's /proc/self/exe is, until exec, the parent's.
    let mut command = Command::new("/proc/self/exe");
    let mut args = std::env::args_os();
    if let Some(name) = args.next() {
        command.arg0(name);
    }
    command
        .args(args)
        .env(WORKER_VAR, spec.to_string())
        .env(
            control_server::SOCKET_VAR,
            control_server::SOCKET_FD.to_string(),
        )
        .env(
            still_server::SOCKET_VAR,
            still_server::SOCKET_FD.to_string(),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // SAFETY: the closure runs in the child between fork and exec and makes only
    // async-signal-safe system calls (prctl, fcntl, dup2); it allocates nothing and
    // takes no lock.
    unsafe {
        command.pre_exec(move || {
            // A child whose parent died without closing its input (SIGKILL) must not
            // keep the camera.
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from)?;
            // The sockets where the child looks for them, kept across exec. Each is
            // first copied above the places (closed at exec), so that putting one in
            // its place cannot close another; dup2 then clears close-on-exec.
            let mut above = [0; 2];
            for (copy, (fd, _)) in above.iter_mut().zip(places) {
                *copy = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(10))?;
            }
            for (copy, (_, place)) in above.into_iter().zip(places) {
                nix::unistd::dup2(copy, place)?;
            }
            Ok(())
        });
    }
    let child = command.spawn()?;
    drop((controls_theirs, stills_theirs));
    Ok((child, Sockets { controls, stills }))
}

/// Tells the child to stop (its input closes), waits [`STOP_GRACE`], kills it if it
/// is still there, and says how it ended.
fn stop_child(child: &mut Child) -> String {
    drop(child.stdin.take());
    let deadline = Instant::now() + STOP_GRACE;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return describe(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => break,
        }
    }
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
    match child.wait() {
        Ok(status) => format!("was killed ({})", describe(status)),
        Err(e) => format!("ended (status unknown: {e})"),
    }
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => match Signal::try_from(signal) {
            Ok(s) => format!("was ended by {s}"),
            Err(_) => format!("was ended by signal {signal}"),
        },
        _ => format!("ended ({status})"),
    }
}

/// One run of the child, as the parent sees it.
struct Run {
    reader: MessageReader,
    /// The child's dropped-frame count last reported.
    dropped: u64,
    /// The child's count of pictures dropped with every encoding thread busy, last
    /// reported.
    workers_busy: u64,
    /// When the first good frame of this run arrived.
    first_good: Option<Instant>,
    pid: u32,
    /// The server's board, where the child's controls go while it has some.
    board: Arc<ControlBoard>,
    controls: Arc<ChildControls>,
    /// Keeps `controls` on the board.
    attached: Option<Attached>,
    /// Passes the server's still requests to the child.
    stills: Option<StillRelay>,
}

impl Run {
    fn pump(&mut self, child: &mut Child, sink: &mut FrameSink, nosignal: &mut NoSignal) -> End {
        let Some(mut out) = child.stdout.take() else {
            return End::Failed("the source process has no output".to_string());
        };
        let mut buf = vec![0u8; 64 * 1024];
        let mut heard = Instant::now();
        let mut problem: Option<String> = None;
        loop {
            if sink.stopping() {
                break End::Stopping;
            }
            if !sink.wanted(LINGER) {
                break End::Idle;
            }
            if heard.elapsed() >= SILENCE {
                break End::Failed(format!(
                    "the source process said nothing for {} s: hung",
                    SILENCE.as_secs()
                ));
            }
            // While the child reports a problem, its picture says so, kept fresh.
            if let Some(why) = &problem {
                nosignal.refresh(sink, why);
            }
            let mut fds = [PollFd::new(out.as_fd(), PollFlags::POLLIN)];
            let timeout = PollTimeout::try_from(POLL_SLICE).unwrap_or(PollTimeout::MAX);
            match poll(&mut fds, timeout) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => break End::Failed(format!("cannot wait for the source process: {e}")),
            }
            let n = match out.read(&mut buf) {
                Ok(0) => {
                    let cut = if self.reader.partial() {
                        " in the middle of a message"
                    } else {
                        ""
                    };
                    let why = problem
                        .as_deref()
                        .map_or(String::new(), |p| format!(" (its last problem: {p})"));
                    break End::Ended(format!("{cut}{why}"));
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break End::Failed(format!("cannot read from the source process: {e}")),
            };
            heard = Instant::now();
            self.reader.extend(&buf[..n]);
            if let Err(why) = self.handle_messages(sink, nosignal, &mut problem) {
                break End::Failed(format!("the source process sent {why}"));
            }
        }
    }

    /// Handles every whole message received so far.
    fn handle_messages(
        &mut self,
        sink: &mut FrameSink,
        nosignal: &mut NoSignal,
        problem: &mut Option<String>,
    ) -> Result<(), String> {
        while let Some((tag, payload)) = self.reader.next_message()? {
            match decode(tag, payload)? {
                Message::Frame(jpeg) if sink.offer_jpeg(jpeg) => {
                    if self.first_good.is_none() {
                        self.first_good = Some(Instant::now());
                        sink.stats().set_capturing(true);
                    }
                    *problem = None;
                }
                Message::Frame(_) => {} // checked, counted and logged by the sink
                Message::Problem(text) => {
                    let text = text.into_owned();
                    if text.is_empty() {
                        *problem = None;
                    } else {
                        sink.stats().set_capturing(false);
                        nosignal.report(sink, &text);
                        self.first_good = None;
                        *problem = Some(text);
                    }
                }
                Message::Encoder(text) => sink.stats().set_encoder(&text),
                Message::Dropped(total) => {
                    sink.stats()
                        .count_dropped_by(total.saturating_sub(self.dropped));
                    self.dropped = total;
                }
                Message::Workers(n, busy) => {
                    let stats = sink.stats();
                    stats.set_encode_workers(n as usize);
                    stats.count_workers_busy_by(busy.saturating_sub(self.workers_busy));
                    self.workers_busy = busy;
                }
                Message::Controls(description) => self.controls_described(description),
                Message::Stills(open) => {
                    let opened = self.stills.as_mut().is_some_and(|s| s.desk_open(open));
                    if opened {
                        let now = if open { "takes" } else { "takes no" };
                        log::info!("source process {}: {now} full-resolution stills", self.pid);
                    }
                }
                Message::Alive => {} // hearing it was the point
            }
        }
        Ok(())
    }
}

impl Run {
    /// Takes the child's newest description of its controls, and puts them on the
    /// board or takes them off as it lists some or none.
    fn controls_described(&mut self, description: control_wire::Description) {
        self.controls.learn(description);
        match (self.controls.count(), &self.attached) {
            (Some(n), None) => {
                log::info!("source process {}: {n} camera controls", self.pid);
                let controls: Arc<dyn crate::controls::CameraControls> = self.controls.clone();
                self.attached = Some(self.board.attach(controls));
            }
            (None, Some(_)) => {
                log::info!("source process {}: no camera controls now", self.pid);
                self.attached = None;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isolation_covers_the_sources_that_capture() {
        let lc = SourceSpec::Libcamera(None);
        let v4l2 = SourceSpec::V4l2("/dev/video0".into());
        let exec = SourceSpec::Exec("cat".into());
        assert!(Isolation::Auto.applies_to(&lc));
        assert!(!Isolation::Auto.applies_to(&v4l2));
        assert!(Isolation::On.applies_to(&v4l2));
        assert!(Isolation::On.applies_to(&SourceSpec::Test));
        assert!(!Isolation::On.applies_to(&exec));
        assert!(!Isolation::On.applies_to(&SourceSpec::Stdin));
        assert!(!Isolation::Off.applies_to(&lc));
        assert_eq!("on".parse(), Ok(Isolation::On));
        assert!("yes".parse::<Isolation>().is_err());
    }
}
