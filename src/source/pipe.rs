//! MJPEG byte streams as sources: standard input, and a file played in a loop. The
//! [`Pump`] here also reads the output of `exec:` commands (see [`super::exec`]).
//!
//! Bytes are cut into pictures by the [`MjpegSplitter`] and each picture is checked by
//! the sink before it is published; bad input is dropped and counted (in `/status`), with
//! a warning at most every ten seconds, and never stops the stream. When the input breaks, viewers get the no-signal picture, `/status` says
//! why, and the source tries again by itself:
//!
//! * standard input that ends is read again every second, so a FIFO that gets a new
//!   writer, or a file that grows, resumes; input that sends no good frame for
//!   `--source-timeout` shows no-signal until frames come back;
//! * a file that vanishes or cannot be read is opened again with growing pauses; one
//!   replaced by a new file is played from the new one at once.
//!
//! A file plays only while somebody wants frames (plus [`LINGER`]), from its start
//! again after a pause. Standard input is read whatever the demand: its producer sets
//! the pace, and a pipe left unread would only stall (or break) the producer.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::backoff::Backoff;
use super::nosignal::NoSignal;
use super::{FrameSink, LINGER};
use crate::picture::Settings;
use crate::ratelog::{self, RateLimit};
use crate::splitter::{DropReason, MjpegSplitter, Piece};

/// Longest single wait for input, so that a stopping server is noticed.
const POLL_SLICE: Duration = Duration::from_millis(250);

/// How often [`Pump::run`] asks its caller whether to give up on the input.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Why [`Pump::run`] returned.
#[derive(Debug)]
pub enum End {
    /// The input ended.
    Eof,
    /// No good frame for this long (at least the bound that was given).
    Stalled(Duration),
    /// The server is stopping.
    Stopping,
    /// Reading failed.
    Failed(io::Error),
    /// The caller's check asked to give up on this input, for the reason given.
    Abandoned(String),
}

/// What the splitter's pieces did, and the pacing between published frames.
struct Tally {
    pace: Option<Duration>,
    next: Instant,
    frames: u64,
    dropped: u64,
    garbage_bytes: u64,
    first_good: Option<Instant>,
    last_good: Option<Instant>,
    checked_at: Instant,
    abandoned: Option<String>,
}

impl Tally {
    fn handle(
        &mut self,
        piece: Piece<'_>,
        sink: &mut FrameSink,
        check: &mut dyn FnMut() -> Option<String>,
    ) {
        if self.abandoned.is_some() {
            return;
        }
        match piece {
            Piece::Frame(jpeg) => {
                if let Some(period) = self.pace {
                    let now = Instant::now();
                    if now >= self.checked_at + CHECK_EVERY {
                        self.checked_at = now;
                        if let Some(why) = check() {
                            self.abandoned = Some(why);
                            return;
                        }
                    }
                    if self.next > now {
                        std::thread::sleep(self.next - now);
                    }
                    self.next = self.next.max(now) + period;
                }
                if sink.offer_jpeg(jpeg) {
                    self.frames += 1;
                    let now = Instant::now();
                    self.first_good.get_or_insert(now);
                    self.last_good = Some(now);
                } else {
                    self.dropped += 1;
                }
            }
            Piece::Dropped(reason, bytes) => {
                // One limit per reason, so that each kind is named in the log.
                static DROPPED: [RateLimit; 3] = [
                    RateLimit::new(ratelog::DEFAULT_INTERVAL),
                    RateLimit::new(ratelog::DEFAULT_INTERVAL),
                    RateLimit::new(ratelog::DEFAULT_INTERVAL),
                ];
                let limit = &DROPPED[match reason {
                    DropReason::Truncated => 0,
                    DropReason::Corrupt => 1,
                    DropReason::TooLarge => 2,
                }];
                crate::warn_limited!(limit, "dropped a {} frame ({bytes} bytes)", reason.as_str());
                sink.stats().count_dropped();
                self.dropped += 1;
            }
            Piece::Garbage(bytes) => {
                log::debug!("skipped {bytes} bytes between frames");
                self.garbage_bytes += bytes as u64;
            }
        }
    }
}

/// Reads an MJPEG byte stream and publishes every good picture; see [`Pump::run`].
pub struct Pump {
    splitter: MjpegSplitter,
    tally: Tally,
}

impl Pump {
    /// `pace`, when set, is the time between published pictures (for files, which would
    /// otherwise play at once).
    pub fn new(pace: Option<Duration>) -> Pump {
        let now = Instant::now();
        Pump {
            splitter: MjpegSplitter::default(),
            tally: Tally {
                pace,
                next: now,
                frames: 0,
                dropped: 0,
                garbage_bytes: 0,
                first_good: None,
                last_good: None,
                checked_at: now,
                abandoned: None,
            },
        }
    }

    /// Good frames published so far.
    pub fn frames(&self) -> u64 {
        self.tally.frames
    }

    /// Frames dropped so far.
    pub fn dropped(&self) -> u64 {
        self.tally.dropped
    }

    /// Time from the first to the last good frame.
    pub fn healthy_for(&self) -> Duration {
        match (self.tally.first_good, self.tally.last_good) {
            (Some(a), Some(b)) => b - a,
            _ => Duration::ZERO,
        }
    }

    /// Reads `input` until it ends, fails, goes `bound` without a good frame (counted
    /// from the later of this call and the last good frame), the server stops, or
    /// `check` (asked about once a second) gives a reason to give up. Can be called
    /// again to go on reading.
    pub fn run<R: Read + AsFd>(
        &mut self,
        input: &mut R,
        sink: &mut FrameSink,
        bound: Option<Duration>,
        check: &mut dyn FnMut() -> Option<String>,
    ) -> End {
        let started = Instant::now();
        loop {
            if sink.stopping() {
                return End::Stopping;
            }
            if let Some(why) = self.tally.abandoned.take() {
                self.splitter.finish(|_| {});
                return End::Abandoned(why);
            }
            let now = Instant::now();
            let mut wait = POLL_SLICE;
            if let Some(bound) = bound {
                let since = self.tally.last_good.map_or(started, |t| t.max(started));
                let quiet = now - since;
                if quiet >= bound {
                    return End::Stalled(quiet);
                }
                wait = wait.min(bound - quiet);
            }
            if now >= self.tally.checked_at + CHECK_EVERY {
                self.tally.checked_at = now;
                if let Some(why) = check() {
                    return End::Abandoned(why);
                }
            }
            let timeout = PollTimeout::try_from(wait).unwrap_or(PollTimeout::MAX);
            let mut fds = [PollFd::new(input.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, timeout) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => return End::Failed(e.into()),
            }
            // Read straight into the splitter's buffer: the frames it reports are slices
            // of it, copied once, when published.
            let tally = &mut self.tally;
            match self
                .splitter
                .read_from(input, |p| tally.handle(p, sink, check))
            {
                Ok(0) => return End::Eof,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                    ) =>
                {
                    continue
                }
                Err(e) => return End::Failed(e),
            }
        }
    }

    /// Judges what is left at the end of the input (a frame cut short is dropped).
    pub fn finish(&mut self, sink: &mut FrameSink) {
        let tally = &mut self.tally;
        self.splitter
            .finish(|p| tally.handle(p, sink, &mut || None));
        tally.abandoned = None;
    }
}

/// `stdin`: reads standard input; when it ends, reads it again every second. It never
/// idles: pausing would not pause the producer, only fill the pipe until it blocks.
pub fn run_stdin(settings: Settings, mut sink: FrameSink) {
    let mut nosignal = NoSignal::new(settings.quality, (settings.width, settings.height));
    // An unbuffered handle of its own, so that waiting on the descriptor sees all input.
    let mut input = match io::stdin().as_fd().try_clone_to_owned() {
        Ok(fd) => File::from(fd),
        Err(e) => {
            let why = format!("cannot use standard input: {e}");
            nosignal.report(&mut sink, &why);
            return;
        }
    };
    let bound = settings.source_timeout;
    let mut pump = Pump::new(None);
    loop {
        let end = pump.run(&mut input, &mut sink, Some(bound), &mut || None);
        let (why, pause) = match end {
            End::Stopping => return,
            End::Eof => {
                pump.finish(&mut sink);
                (
                    format!(
                        "standard input ended after {} frames ({} dropped); waiting for more",
                        pump.frames(),
                        pump.dropped()
                    ),
                    Duration::from_secs(1),
                )
            }
            End::Stalled(quiet) => (
                format!(
                    "no frame on standard input for {:.0} s",
                    quiet.as_secs_f64()
                ),
                Duration::ZERO,
            ),
            End::Failed(e) => (
                format!("reading standard input failed: {e}"),
                Duration::from_secs(1),
            ),
            End::Abandoned(why) => (why, Duration::from_secs(1)),
        };
        nosignal.report(&mut sink, &why);
        nosignal.wait(&mut sink, &why, pause);
    }
}

/// Opens an MJPEG file for `file:PATH`, with an error message that names it.
pub fn open_file(path: &Path) -> Result<File, String> {
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    match file.metadata() {
        Ok(m) if m.is_dir() => Err(format!(
            "{} is a directory, not an MJPEG file",
            path.display()
        )),
        Ok(_) => Ok(file),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Which file a path names now: device and inode.
fn identity(path: &Path) -> io::Result<(u64, u64)> {
    std::fs::metadata(path).map(|m| (m.dev(), m.ino()))
}

/// `file:PATH`: plays the file at `--fps`, from the start again at its end, while
/// somebody wants frames. A file that vanishes, is replaced or cannot be read is
/// noticed within about a second.
pub fn run_file(file: File, path: PathBuf, settings: Settings, mut sink: FrameSink) {
    let period = Duration::from_secs(1) / settings.fps.max(1);
    let demand = sink.demand();
    sink.stats().set_capturing(false);
    let mut nosignal = NoSignal::new(settings.quality, (settings.width, settings.height));
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));
    let mut opened = Some(file);
    let mut loops: u64 = 0;
    // Since when the file has played without a problem, for the back-off.
    let mut good_since: Option<Instant> = None;
    let mut failing = false;
    while !sink.stopping() {
        if !sink.wanted(LINGER) {
            sink.note_running(false, || {
                format!("{} idle until the next viewer", path.display())
            });
            sink.wait_until_wanted(LINGER);
            continue;
        }
        sink.note_running(true, || {
            format!("playing {} from its start", path.display())
        });
        let problem = match opened.take().map_or_else(|| open_file(&path), Ok) {
            Err(e) => e,
            Ok(mut file) => {
                if failing {
                    sink.stats().count_restart();
                    failing = false;
                }
                let id = file.metadata().map(|m| (m.dev(), m.ino())).ok();
                let mut check = || match identity(&path) {
                    _ if !demand.wanted(LINGER) => Some(String::new()),
                    Err(e) => Some(format!("{} vanished: {e}", path.display())),
                    Ok(now) if Some(now) != id => Some(format!("{} was replaced", path.display())),
                    Ok(_) => None,
                };
                let mut pump = Pump::new(Some(period));
                let end = pump.run(&mut file, &mut sink, None, &mut check);
                if pump.frames() > 0 {
                    good_since.get_or_insert_with(Instant::now);
                }
                match end {
                    End::Stopping => return,
                    End::Eof => {
                        pump.finish(&mut sink);
                        if pump.frames() > 0 {
                            if loops == 0 {
                                log::info!("{}: {} frames per loop", path.display(), pump.frames());
                            }
                            loops += 1;
                            continue;
                        }
                        format!("{} holds no valid JPEG frame", path.display())
                    }
                    // Nobody watches: the loop idles.
                    End::Abandoned(why) if why.is_empty() => continue,
                    End::Abandoned(why) => {
                        // Open the path again at once: the new file, or the reason it is gone.
                        log::info!("{why}; opening it again");
                        continue;
                    }
                    End::Failed(e) => format!("reading {} failed: {e}", path.display()),
                    End::Stalled(quiet) => format!(
                        "no frame from {} for {:.0} s",
                        path.display(),
                        quiet.as_secs_f64()
                    ),
                }
            }
        };
        let healthy_for = good_since.take().map_or(Duration::ZERO, |t| t.elapsed());
        let pause = backoff.after_failure(healthy_for);
        let why = format!("{problem}; trying again in {} s", pause.as_secs());
        nosignal.report(&mut sink, &why);
        failing = true;
        nosignal.wait(&mut sink, &why, pause);
    }
}
