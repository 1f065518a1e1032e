//! The `exec:COMMAND` source: runs `sh -c COMMAND`, reads MJPEG from its standard output,
//! and keeps it running.
//!
//! The command runs in a process group of its own, so that it and everything it started
//! can be stopped together. It counts as broken when it exits (crash or not), when its
//! output ends, or when it sends no good frame for `--source-timeout` (hung, or printing
//! only garbage, which the splitter skips). Then the whole group is stopped (SIGTERM,
//! SIGKILL a second later), viewers see the no-signal picture, `/status` says why and
//! counts the restart, and the command is started again after a pause that grows from
//! 1 s to 30 s and falls back to 1 s after a healthy run (see [`Backoff`]).

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::backoff::Backoff;
use super::nosignal::NoSignal;
use super::pipe::{End, Pump};
use super::{FrameSink, Settings};

/// Process group of the running child (0: none), so that shutdown can stop it.
static CHILD_GROUP: AtomicI32 = AtomicI32::new(0);

/// How long a command whose output ended may take to exit before it is stopped.
const EXIT_GRACE: Duration = Duration::from_secs(1);

/// How long a command has to end after SIGTERM before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(1);

/// Runs the source until the server stops.
pub fn run(command: &str, settings: Settings, mut sink: FrameSink) {
    let mut nosignal = NoSignal::new(settings.quality, (settings.width, settings.height));
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
    let bound = settings.source_timeout;
    let mut first = true;
    while !sink.stopping() {
        if !first {
            sink.stats().count_restart();
        }
        first = false;
        let (problem, healthy_for) = match spawn(command) {
            Err(e) => (format!("cannot start `{command}`: {e}"), Duration::ZERO),
            Ok(mut child) => {
                let pid = child.id();
                log::info!("started `{command}` (pid {pid})");
                let mut pump = Pump::new(None);
                let end = match child.stdout.as_mut() {
                    Some(out) => pump.run(out, &mut sink, Some(bound), &mut || None),
                    None => End::Failed(io::Error::other("the command has no standard output")),
                };
                let problem = match end {
                    End::Stopping => {
                        stop(&mut child, Duration::ZERO);
                        return;
                    }
                    End::Eof => {
                        pump.finish(&mut sink);
                        let status = stop(&mut child, EXIT_GRACE);
                        format!("`{command}` {status} after {} frames", pump.frames())
                    }
                    End::Stalled(quiet) => {
                        stop(&mut child, Duration::ZERO);
                        let what = if pump.frames() == 0 {
                            "sent no good frame"
                        } else {
                            "sent no good frame since the last one"
                        };
                        format!(
                            "`{command}` (pid {pid}) {what} for {:.1} s: hung or sending garbage; stopped it",
                            quiet.as_secs_f64()
                        )
                    }
                    End::Failed(e) => {
                        let status = stop(&mut child, Duration::ZERO);
                        format!("reading from `{command}` failed: {e}; it {status}")
                    }
                    End::Abandoned(why) => {
                        stop(&mut child, Duration::ZERO);
                        why
                    }
                };
                (problem, pump.healthy_for())
            }
        };
        if sink.stopping() {
            return;
        }
        let pause = backoff.after_failure(healthy_for);
        let why = format!("{problem}; restarting in {} s", pause.as_secs());
        nosignal.report(&mut sink, &why);
        nosignal.wait(&mut sink, &why, pause);
    }
}

fn spawn(command: &str) -> io::Result<Child> {
    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()?;
    CHILD_GROUP.store(child.id() as i32, Ordering::SeqCst);
    Ok(child)
}

/// True once `pid` has exited. It is not reaped, so its process group id stays ours.
fn exited(pid: Pid) -> bool {
    !matches!(
        waitid(
            Id::Pid(pid),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT
        ),
        Ok(WaitStatus::StillAlive)
    )
}

fn wait_exit(pid: Pid, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if exited(pid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Stops the child and everything in its process group, after giving it `grace` to
/// exit by itself, and says how it ended ("exited (exit status: 0)", "was stopped
/// (signal: 15 (SIGTERM))").
fn stop(child: &mut Child, grace: Duration) -> String {
    let pid = Pid::from_raw(child.id() as i32);
    let by_itself = wait_exit(pid, grace);
    // The leader is not reaped yet, so the group id cannot have been reused: whatever
    // the command started is stopped with it.
    let _ = killpg(pid, Signal::SIGTERM);
    if !wait_exit(pid, TERM_GRACE) {
        log::warn!("pid {pid} ignored SIGTERM; killing its process group");
    }
    let _ = killpg(pid, Signal::SIGKILL);
    let status = child.wait();
    CHILD_GROUP.store(0, Ordering::SeqCst);
    match status {
        Ok(s) if by_itself => format!("exited ({s})"),
        Ok(s) => format!("was stopped ({s})"),
        Err(e) => format!("ended (status unknown: {e})"),
    }
}

/// Asks a running child and its process group to stop; used when the server shuts down.
pub fn terminate_child() {
    let group = CHILD_GROUP.swap(0, Ordering::SeqCst);
    if group > 0 {
        let _ = killpg(Pid::from_raw(group), Signal::SIGTERM);
    }
}
