//! MJPEG byte streams as sources: standard input, a file played in a loop, or the
//! standard output of a command that is restarted when it exits.
//!
//! All three read raw bytes, cut them into pictures with the [`MjpegSplitter`] and hand
//! each picture to the sink, which checks it before publishing. Bad input is dropped
//! with a warning and never stops the stream.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use super::FrameSink;
use crate::splitter::{MjpegSplitter, Piece};

/// Read size for pipes and files.
const CHUNK: usize = 64 * 1024;

/// Process id of the running `exec:` child (0: none), so that shutdown can stop it.
static CHILD_PID: AtomicI32 = AtomicI32::new(0);

/// Counters for one run of [`pump`].
#[derive(Debug, Default, Clone, Copy)]
pub struct PumpReport {
    pub frames: u64,
    pub dropped: u64,
    pub garbage_bytes: u64,
}

/// Reads `input` to its end, publishing every good picture. `pace`, when set, is the
/// time between published pictures (for files, which would otherwise play instantly).
pub fn pump(
    input: &mut dyn Read,
    sink: &mut FrameSink,
    pace: Option<Duration>,
) -> io::Result<PumpReport> {
    let mut splitter = MjpegSplitter::default();
    let mut buf = vec![0u8; CHUNK];
    let mut report = PumpReport::default();
    let mut next = Instant::now();
    let mut handle = |piece: Piece<'_>, sink: &mut FrameSink, report: &mut PumpReport| match piece {
        Piece::Frame(jpeg) => {
            if let Some(period) = pace {
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                }
                next = next.max(now) + period;
            }
            if sink.offer_jpeg(jpeg) {
                report.frames += 1;
            } else {
                report.dropped += 1;
            }
        }
        Piece::Dropped(reason, bytes) => {
            log::warn!("dropped a {} frame ({bytes} bytes)", reason.as_str());
            sink.stats().count_dropped();
            report.dropped += 1;
        }
        Piece::Garbage(bytes) => {
            log::debug!("skipped {bytes} bytes between frames");
            report.garbage_bytes += bytes as u64;
        }
    };
    loop {
        if sink.stopping() {
            return Ok(report);
        }
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        splitter.feed(&buf[..n], |p| handle(p, sink, &mut report));
    }
    splitter.finish(|p| handle(p, sink, &mut report));
    Ok(report)
}

/// `stdin`: reads standard input until it ends; the last picture stays on show.
pub fn run_stdin(mut sink: FrameSink) {
    let stdin = io::stdin();
    let mut input = stdin.lock();
    match pump(&mut input, &mut sink, None) {
        Ok(r) => {
            let msg = format!(
                "standard input ended after {} frames ({} dropped); the last frame stays on show",
                r.frames, r.dropped
            );
            log::warn!("{msg}");
            sink.stats().set_error(Some("standard input ended".into()));
        }
        Err(e) => {
            log::error!("reading standard input failed: {e}");
            sink.stats()
                .set_error(Some(format!("reading standard input failed: {e}")));
        }
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

/// `file:PATH`: plays the file at `fps`, from the start again at its end.
pub fn run_file(mut file: File, path: PathBuf, fps: u32, mut sink: FrameSink) {
    let period = Duration::from_secs(1) / fps.max(1);
    let mut rounds: u64 = 0;
    while !sink.stopping() {
        let result = pump(&mut file, &mut sink, Some(period));
        rounds += 1;
        let retry = match result {
            Ok(r) if r.frames > 0 => {
                if rounds == 1 {
                    log::info!("{}: {} frames per loop", path.display(), r.frames);
                }
                sink.stats().set_error(None);
                false
            }
            Ok(_) => {
                let msg = format!("{} holds no valid JPEG frame", path.display());
                log::error!("{msg}; trying again in 5 s");
                sink.stats().set_error(Some(msg));
                true
            }
            Err(e) => {
                let msg = format!("reading {} failed: {e}", path.display());
                log::error!("{msg}; trying again in 5 s");
                sink.stats().set_error(Some(msg));
                true
            }
        };
        if retry {
            sleep_unless_stopping(&sink, Duration::from_secs(5));
        }
        file = match open_file(&path) {
            Ok(f) => f,
            Err(e) => {
                log::error!("{e}; trying again in 5 s");
                sink.stats().set_error(Some(e));
                sleep_unless_stopping(&sink, Duration::from_secs(5));
                continue;
            }
        };
    }
}

/// `exec:COMMAND`: runs `sh -c COMMAND`, reads MJPEG from its standard output, and
/// starts it again with growing pauses (1 s doubling to 30 s) whenever it exits.
pub fn run_exec(command: &str, mut sink: FrameSink) {
    let mut backoff = Duration::from_secs(1);
    while !sink.stopping() {
        let started = Instant::now();
        let outcome = match spawn(command) {
            Ok(mut child) => {
                log::info!("started `{command}` (pid {})", child.id());
                let result = match child.stdout.take() {
                    Some(mut out) => pump(&mut out, &mut sink, None),
                    None => Err(io::Error::other("child has no standard output")),
                };
                let status = stop_child(&mut child);
                match (result, status) {
                    (Ok(r), status) => {
                        if r.frames > 0 {
                            backoff = Duration::from_secs(1);
                        }
                        format!("`{command}` exited ({status}) after {} frames", r.frames)
                    }
                    (Err(e), status) => format!("reading from `{command}` failed: {e} ({status})"),
                }
            }
            Err(e) => format!("cannot start `{command}`: {e}"),
        };
        if sink.stopping() {
            return;
        }
        if started.elapsed() > Duration::from_secs(60) {
            backoff = Duration::from_secs(1);
        }
        log::warn!("{outcome}; restarting in {} s", backoff.as_secs());
        sink.stats().set_error(Some(outcome));
        sleep_unless_stopping(&sink, backoff);
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

fn spawn(command: &str) -> io::Result<Child> {
    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    CHILD_PID.store(child.id() as i32, Ordering::SeqCst);
    Ok(child)
}

/// Ends the child (it may still run if only its output was closed) and describes how.
fn stop_child(child: &mut Child) -> String {
    // A child whose output ended is usually exiting: give it a moment before killing it.
    let deadline = Instant::now() + Duration::from_secs(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                break child.wait();
            }
        }
    };
    CHILD_PID.store(0, Ordering::SeqCst);
    match status {
        Ok(s) => s.to_string(),
        Err(e) => format!("status unknown: {e}"),
    }
}

/// Asks a running `exec:` child to stop; used when the server shuts down.
pub fn terminate_child() {
    let pid = CHILD_PID.swap(0, Ordering::SeqCst);
    if pid > 0 {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
}

fn sleep_unless_stopping(sink: &FrameSink, total: Duration) {
    let end = Instant::now() + total;
    while !sink.stopping() {
        let now = Instant::now();
        if now >= end {
            return;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(100)));
    }
}
