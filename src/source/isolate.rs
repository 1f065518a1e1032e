//! Running a source in a process of its own (`--isolate`), so that a camera library
//! that aborts, crashes or hangs takes only that process down: the server shows the
//! no-signal picture, says why in `/status` and starts the process again.
//!
//! The child is this same program, started again with the same arguments and
//! environment plus [`WORKER_VAR`] naming the source to run. In the child the source
//! runs as it always does, except that its [`FrameSink`] writes every good frame to
//! standard output instead of a frame slot. Beside the frames go the source's problem,
//! its encoder and its dropped-frame count whenever they change, and a heartbeat every
//! second. Standard input closing is the child's signal to stop.
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
//! | `H` | nothing: the child is alive |
//!
//! The parent runs the child only while somebody wants frames (plus a linger, so the
//! camera is released when nobody watches), checks every frame as it checks a
//! byte-stream source's, and counts as a failure the child's exit, a message it cannot
//! read, and a child that says nothing at all for [`SILENCE`].

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::backoff::Backoff;
use super::nosignal::NoSignal;
use super::{FrameSink, SourceSpec, LINGER};
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

const FRAME: u8 = b'F';
const PROBLEM: u8 = b'E';
const ENCODER: u8 = b'C';
const DROPPED: u8 = b'D';
const WORKERS: u8 = b'W';
const ALIVE: u8 = b'H';

/// Largest message the parent accepts: more than any JPEG of a 4096x4096 picture.
const MAX_MESSAGE: usize = 64 << 20;

/// A child that sends nothing at all (not even its heartbeat) for this long is hung.
pub const SILENCE: Duration = Duration::from_secs(10);

/// How often the child sends its heartbeat (its state goes as soon as it changes).
const ALIVE_EVERY: Duration = Duration::from_secs(1);

/// How long a child told to stop has before it is killed. Short enough to fit in the
/// server's own grace at shutdown.
const STOP_GRACE: Duration = Duration::from_millis(400);

/// Longest wait for the child's output before demand and stopping are checked again.
const POLL_SLICE: Duration = Duration::from_millis(100);

// ------------------------------------------------------------------ messages

/// One message from the child, decoded from its tag and payload by [`decode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'a> {
    /// A JPEG frame (not checked yet).
    Frame(&'a [u8]),
    /// The source's current problem; empty when it has none.
    Problem(std::borrow::Cow<'a, str>),
    /// The encoder's description.
    Encoder(std::borrow::Cow<'a, str>),
    /// Frames dropped so far.
    Dropped(u64),
    /// Threads encoding in software, and pictures dropped so far because all were busy.
    Workers(u64, u64),
    /// The heartbeat.
    Alive,
}

impl Message<'_> {
    /// Writes the message as the child sends it.
    pub fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        match self {
            Message::Frame(jpeg) => write_message(out, FRAME, jpeg),
            Message::Problem(text) => write_message(out, PROBLEM, text.as_bytes()),
            Message::Encoder(text) => write_message(out, ENCODER, text.as_bytes()),
            Message::Dropped(n) => write_message(out, DROPPED, &n.to_le_bytes()),
            Message::Workers(n, busy) => write_message(out, WORKERS, &workers_payload(*n, *busy)),
            Message::Alive => write_message(out, ALIVE, &[]),
        }
    }
}

/// The payload of a [`Message::Workers`].
fn workers_payload(n: u64, busy: u64) -> [u8; 16] {
    let mut payload = [0u8; 16];
    payload[..8].copy_from_slice(&n.to_le_bytes());
    payload[8..].copy_from_slice(&busy.to_le_bytes());
    payload
}

/// Decodes a message that [`MessageReader::next_message`] cut out: text is read as
/// UTF-8 (bad sequences replaced), a count must be exactly eight bytes and a heartbeat
/// empty.
pub fn decode(tag: u8, payload: &[u8]) -> Result<Message<'_>, String> {
    Ok(match tag {
        FRAME => Message::Frame(payload),
        PROBLEM => Message::Problem(String::from_utf8_lossy(payload)),
        ENCODER => Message::Encoder(String::from_utf8_lossy(payload)),
        DROPPED => <[u8; 8]>::try_from(payload)
            .map(|b| Message::Dropped(u64::from_le_bytes(b)))
            .map_err(|_| "a dropped-frame count of the wrong size".to_string())?,
        WORKERS if payload.len() == 16 => {
            let word = |i: usize| u64::from_le_bytes(payload[i..i + 8].try_into().unwrap());
            Message::Workers(word(0), word(8))
        }
        WORKERS => return Err("encoding thread counts of the wrong size".to_string()),
        ALIVE if payload.is_empty() => Message::Alive,
        ALIVE => return Err(format!("a heartbeat carrying {} bytes", payload.len())),
        _ => return Err(format!("unknown message type 0x{tag:02x}")),
    })
}

/// Writes one message.
fn write_message(out: &mut impl Write, tag: u8, payload: &[u8]) -> io::Result<()> {
    let len = u32::try_from(payload.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "message too long"))?;
    let mut head = [0u8; 5];
    head[0] = tag;
    head[1..].copy_from_slice(&len.to_le_bytes());
    out.write_all(&head)?;
    out.write_all(payload)
}

/// Cuts the bytes received from the child so far into messages. The parent feeds it
/// whatever each read returns; bytes that cannot be a message are an error.
#[derive(Default)]
pub struct MessageReader {
    buf: Vec<u8>,
    /// Bytes at the front of `buf` already handed out.
    used: usize,
}

impl MessageReader {
    /// Adds bytes read from the child.
    pub fn extend(&mut self, bytes: &[u8]) {
        if self.used > 0 {
            self.buf.drain(..self.used);
            self.used = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole message as its tag and payload, if one has arrived; an error for
    /// bytes that cannot be one (an unknown tag, a length over the limit).
    pub fn next_message(&mut self) -> Result<Option<(u8, &[u8])>, String> {
        let rest = &self.buf[self.used..];
        if rest.len() < 5 {
            return Ok(None);
        }
        let tag = rest[0];
        if ![FRAME, PROBLEM, ENCODER, DROPPED, WORKERS, ALIVE].contains(&tag) {
            return Err(format!("unknown message type 0x{tag:02x}"));
        }
        let len = u32::from_le_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        if len > MAX_MESSAGE {
            return Err(format!("a message of {len} bytes is too long"));
        }
        if rest.len() < 5 + len {
            return Ok(None);
        }
        let start = self.used + 5;
        self.used = start + len;
        Ok(Some((tag, &self.buf[start..start + len])))
    }

    /// True when bytes of an unfinished message are waiting.
    pub fn partial(&self) -> bool {
        self.used < self.buf.len()
    }
}

// ------------------------------------------------------------------ the child

/// The child's standard output, shared by the source thread (frames) and the thread
/// that reports state; a message is written whole under the lock.
struct Outlet(Mutex<File>);

impl Outlet {
    fn send(&self, tag: u8, payload: &[u8]) -> io::Result<()> {
        let mut out = self.0.lock().unwrap_or_else(|e| e.into_inner());
        write_message(&mut *out, tag, payload)
    }
}

/// Takes the standard output for messages and points file descriptor 1 at standard
/// error, so that nothing else printed by mistake can break a message.
fn private_stdout() -> io::Result<File> {
    let out: OwnedFd = io::stdout().as_fd().try_clone_to_owned()?;
    nix::unistd::dup2(io::stderr().as_raw_fd(), io::stdout().as_raw_fd())?;
    Ok(File::from(out))
}

/// The child's side: runs `spec` and sends what it makes to standard output until
/// standard input closes. Returns the process's exit code.
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
    let tap = {
        let outlet = outlet.clone();
        let stop = stop.clone();
        Box::new(move |jpeg: &[u8]| {
            if outlet.send(FRAME, jpeg).is_err() {
                stop.store(true, Ordering::SeqCst);
            }
        })
    };
    let running = match super::start_here(spec, settings, slot.clone(), stop.clone(), Some(tap)) {
        Ok(r) => r,
        Err(e) => {
            let _ = outlet.send(PROBLEM, e.0.as_bytes());
            log::error!("source process: {e}");
            return 1;
        }
    };
    let mut reported = Reported::default();
    let mut alive_at = Instant::now();
    while !stop.load(Ordering::SeqCst) && !running.thread.is_finished() {
        let mut sent = reported.send_changes(&running.stats, &outlet);
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
/// publishes what it sends. Runs until the server stops.
pub fn supervise(spec: SourceSpec, settings: Settings, mut sink: FrameSink) {
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
        let mut child = match spawn(&spec) {
            Ok(c) => c,
            Err(e) => {
                let why = format!("cannot start the source process: {e}");
                fail(&mut sink, &mut nosignal, &mut backoff, why, Duration::ZERO);
                continue;
            }
        };
        let pid = child.id();
        log::info!("source process {pid} started for {spec}");
        let mut run = Run {
            reader: MessageReader::default(),
            dropped: 0,
            workers_busy: 0,
            first_good: None,
        };
        let end = run.pump(&mut child, &mut sink, &mut nosignal);
        sink.stats().set_capturing(false);
        let status = stop_child(&mut child);
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

fn spawn(spec: &SourceSpec) -> io::Result<Child> {
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
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // SAFETY: the closure runs in the child between fork and exec and makes one
    // async-signal-safe system call (prctl); it allocates nothing and takes no lock.
    unsafe {
        command.pre_exec(|| {
            // A child whose parent died without closing its input (SIGKILL) must not
            // keep the camera.
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from)
        });
    }
    command.spawn()
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
                Message::Alive => {} // hearing it was the point
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(reader: &mut MessageReader) -> Vec<(u8, Vec<u8>)> {
        let mut got = Vec::new();
        while let Some((tag, payload)) = reader.next_message().unwrap() {
            got.push((tag, payload.to_vec()));
        }
        got
    }

    #[test]
    fn messages_arrive_whole_however_the_bytes_are_cut() {
        let mut wire = Vec::new();
        let sent: Vec<(u8, Vec<u8>)> = vec![
            (FRAME, (0..=255u8).cycle().take(70_000).collect()),
            (PROBLEM, b"camera gone".to_vec()),
            (ALIVE, Vec::new()),
            (DROPPED, 7u64.to_le_bytes().to_vec()),
            (ENCODER, b"software".to_vec()),
        ];
        for (tag, payload) in &sent {
            write_message(&mut wire, *tag, payload).unwrap();
        }
        for cut in [1, 3, 5, 4096, wire.len()] {
            let mut reader = MessageReader::default();
            let mut got = Vec::new();
            for piece in wire.chunks(cut) {
                reader.extend(piece);
                got.extend(messages(&mut reader));
            }
            assert_eq!(got, sent, "pieces of {cut} bytes");
            assert!(!reader.partial());
        }
    }

    #[test]
    fn a_cut_message_is_partial_and_bad_bytes_are_refused() {
        let mut wire = Vec::new();
        write_message(&mut wire, FRAME, b"abcdef").unwrap();
        let mut reader = MessageReader::default();
        reader.extend(&wire[..8]);
        assert!(reader.next_message().unwrap().is_none());
        assert!(reader.partial());

        let mut reader = MessageReader::default();
        reader.extend(b"hello world");
        assert_eq!(
            reader.next_message().unwrap_err(),
            "unknown message type 0x68"
        );

        let mut reader = MessageReader::default();
        reader.extend(&[FRAME, 0xff, 0xff, 0xff, 0xff]);
        assert!(reader.next_message().unwrap_err().contains("too long"));
    }

    #[test]
    fn messages_decode_to_what_was_written() {
        let sent = [
            Message::Frame(b"\xff\xd8 not checked here"),
            Message::Problem("camera gone".into()),
            Message::Problem("".into()),
            Message::Encoder("software".into()),
            Message::Dropped(u64::MAX - 3),
            Message::Workers(4, u64::MAX - 5),
            Message::Alive,
        ];
        let mut wire = Vec::new();
        for m in &sent {
            m.write_to(&mut wire).unwrap();
        }
        let mut reader = MessageReader::default();
        reader.extend(&wire);
        let mut got = Vec::new();
        while let Some((tag, payload)) = reader.next_message().unwrap() {
            // As text: each message borrows the reader, which the next one needs.
            got.push(format!("{:?}", decode(tag, payload).unwrap()));
        }
        let sent: Vec<_> = sent.iter().map(|m| format!("{m:?}")).collect();
        assert_eq!(got, sent);

        assert!(decode(DROPPED, &[1, 2, 3])
            .unwrap_err()
            .contains("wrong size"));
        assert_eq!(decode(b'x', b"").unwrap_err(), "unknown message type 0x78");
        // Found by fuzzing: a heartbeat with a payload was taken for a heartbeat.
        assert_eq!(
            decode(ALIVE, b"xyz").unwrap_err(),
            "a heartbeat carrying 3 bytes"
        );
        assert_eq!(
            decode(PROBLEM, b"bad \xff byte").unwrap(),
            Message::Problem("bad \u{fffd} byte".into())
        );
    }

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
