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
//!
//! The command runs only while somebody wants frames: it is started for the first
//! viewer (or snapshot) and stopped the same way, group and all, once nobody has
//! watched for [`LINGER`] (unless `--always-on`). That is no failure: no restart is
//! counted, no pause, no no-signal picture; the next viewer starts it again.
//!
//! The command does not run as the server's child but under a guardian: this same
//! program started again (as `--isolate` does) with [`GUARDIAN_VAR`] naming the command.
//! The guardian leads the process group, runs `sh -c COMMAND` in it with its standard
//! output going straight to the server, and ties the command's life to the server's,
//! which the server alone cannot do once it is killed (SIGKILL):
//!
//! - the kernel sends the guardian SIGTERM when the server dies (`PR_SET_PDEATHSIG`);
//! - the guardian is a child subreaper, so whatever the command started and left behind
//!   (a `setsid` or double-forked process, out of the process group) becomes its child;
//! - on SIGTERM (the server stopping it or dying) it sends SIGTERM to the command and
//!   every other process under it, SIGKILL after [`GUARD_GRACE`], and exits once they
//!   are gone; when the command exits by itself, it waits for what the command left
//!   running (it may still be sending frames) and exits once nothing is left;
//! - it exits as the command did (same code, or killed by the same signal), so the
//!   server's messages read as if it had run the command itself.
//!
//! The guardian first writes [`HELLO`] to its output. A server whose guardian cannot
//! start (under a CPU emulator without a binfmt handler, the program cannot start itself
//! again) or does not greet in time falls back, for good, to running `sh -c COMMAND`
//! directly, with only `PR_SET_PDEATHSIG` (SIGKILL) on the shell itself.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, killpg, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::backoff::Backoff;
use super::nosignal::NoSignal;
use super::pipe::{End, Pump};
use super::{FrameSink, LINGER};
use crate::picture::Settings;

/// Process group of the running child (0: none), so that shutdown can stop it.
static CHILD_GROUP: AtomicI32 = AtomicI32::new(0);

/// Whether commands run under a guardian; cleared when one could not be started.
static GUARDED: AtomicBool = AtomicBool::new(true);

/// The variable that makes the program a guardian: its value is the command to run.
pub const GUARDIAN_VAR: &str = "PICAM_EXEC_GUARDIAN";

/// The server's pid, given to the guardian to notice a server that died before the
/// guardian asked to hear of it.
const PARENT_VAR: &str = "PICAM_EXEC_PARENT";

/// What a guardian writes first, before its command's output.
const HELLO: &[u8] = b"picam-stream exec guardian\n";

/// Longest wait for a guardian's [`HELLO`].
const HELLO_WAIT: Duration = Duration::from_secs(5);

/// How long the command and what it started have between the guardian's SIGTERM and
/// its SIGKILL. Shorter than [`TERM_GRACE`], so that the guardian is done before the
/// server gives up on it.
const GUARD_GRACE: Duration = Duration::from_millis(500);

/// How long a command whose output ended may take to exit before it is stopped.
const EXIT_GRACE: Duration = Duration::from_secs(1);

/// How long a command has to end after SIGTERM before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(1);

/// Runs the source until the server stops, the command only while somebody wants frames.
pub fn run(command: &str, settings: Settings, mut sink: FrameSink) {
    let mut nosignal = NoSignal::new(settings.quality, (settings.width, settings.height));
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
    let bound = settings.source_timeout;
    let demand = sink.demand();
    // The next start follows a failure (and counts as a restart), not idleness.
    let mut after_failure = false;
    sink.stats().set_capturing(false);
    while !sink.stopping() {
        if !sink.wanted(LINGER) {
            sink.stats().set_capturing(false);
            sink.wait_until_wanted(LINGER);
            continue;
        }
        if after_failure {
            sink.stats().count_restart();
        }
        after_failure = true;
        let (problem, healthy_for) = match spawn(command) {
            Err(e) => (format!("cannot start `{command}`: {e}"), Duration::ZERO),
            Ok(mut child) => {
                let pid = child.id();
                log::info!("started `{command}` (pid {pid})");
                sink.stats().set_capturing(true);
                let mut pump = Pump::new(None);
                let idle = std::cell::Cell::new(false);
                // Asked about once a second while the command runs.
                let mut unwanted = || {
                    let gone = !demand.wanted(LINGER);
                    idle.set(gone);
                    gone.then(String::new)
                };
                let end = match child.stdout.as_mut() {
                    Some(out) => pump.run(out, &mut sink, Some(bound), &mut unwanted),
                    None => End::Failed(io::Error::other("the command has no standard output")),
                };
                let problem = match end {
                    End::Stopping => {
                        stop(&mut child, Duration::ZERO);
                        return;
                    }
                    End::Abandoned(_) if idle.get() => {
                        stop(&mut child, Duration::ZERO);
                        sink.note_running(false, || {
                            format!(
                                "stopped `{command}` (pid {pid}); it starts again with the \
                                 next viewer"
                            )
                        });
                        after_failure = false;
                        continue;
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
    spawn_with_stderr(command, false)
}

/// Like [`spawn`]; with `pipe_stderr`, the command's standard error (and the guardian's)
/// comes to the caller as `Child::stderr` instead of going to the server's own.
pub(super) fn spawn_with_stderr(command: &str, pipe_stderr: bool) -> io::Result<Child> {
    let stderr = || {
        if pipe_stderr {
            Stdio::piped()
        } else {
            Stdio::inherit()
        }
    };
    if GUARDED.load(Ordering::SeqCst) {
        match spawn_guarded(command, stderr()) {
            Ok(child) => return Ok(child),
            Err(e) => {
                GUARDED.store(false, Ordering::SeqCst);
                log::warn!(
                    "cannot run `{command}` under a guardian process ({e}); running commands \
                     directly from now on: one may outlive a server that is killed"
                );
            }
        }
    }
    spawn_direct(command, stderr())
}

/// Starts the guardian (see the module docs) for `command` and waits for its greeting.
fn spawn_guarded(command: &str, stderr: Stdio) -> io::Result<Child> {
    // The running program itself, as `--isolate` starts it.
    let mut guardian = Command::new("/proc/self/exe");
    if let Some(name) = std::env::args_os().next() {
        guardian.arg0(name);
    }
    guardian
        .env(GUARDIAN_VAR, command)
        .env(PARENT_VAR, std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .process_group(0);
    // SAFETY: the closure runs in the child between fork and exec and makes one
    // async-signal-safe system call (prctl); it allocates nothing and takes no lock.
    unsafe {
        guardian
            .pre_exec(|| nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(io::Error::from));
    }
    let mut child = guardian.spawn()?;
    CHILD_GROUP.store(child.id() as i32, Ordering::SeqCst);
    match greeting(&mut child) {
        Ok(()) => Ok(child),
        Err(e) => {
            let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
            CHILD_GROUP.store(0, Ordering::SeqCst);
            Err(e)
        }
    }
}

/// Reads the guardian's [`HELLO`], waiting at most [`HELLO_WAIT`].
fn greeting(child: &mut Child) -> io::Result<()> {
    let Some(out) = child.stdout.as_mut() else {
        return Err(io::Error::other("the guardian has no standard output"));
    };
    let deadline = Instant::now() + HELLO_WAIT;
    let mut got = Vec::with_capacity(HELLO.len());
    while got.len() < HELLO.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::other("the guardian did not greet in time"));
        }
        let mut fds = [PollFd::new(out.as_fd(), PollFlags::POLLIN)];
        let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, timeout) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
        let mut buf = vec![0u8; HELLO.len() - got.len()];
        match out.read(&mut buf) {
            Ok(0) => return Err(io::Error::other("the guardian ended before it greeted")),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        if !HELLO.starts_with(&got) {
            return Err(io::Error::other(
                "the guardian sent something else than its greeting",
            ));
        }
    }
    Ok(())
}

/// Runs `sh -c command` as the server's own child, when no guardian can.
fn spawn_direct(command: &str, stderr: Stdio) -> io::Result<Child> {
    let mut shell = Command::new("/bin/sh");
    shell
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .process_group(0);
    // SAFETY: as in `spawn_guarded`: async-signal-safe system calls, no allocation.
    unsafe {
        shell.pre_exec(|| {
            // The shell at least does not outlive the server (what it starts may).
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from)?;
            // The server's threads block the stop signals; the command must get them.
            SigSet::empty().thread_set_mask().map_err(io::Error::from)
        });
    }
    let child = shell.spawn()?;
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
pub(super) fn stop(child: &mut Child, grace: Duration) -> String {
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

// ------------------------------------------------------------------ the guardian

/// When this process was started as a guardian ([`GUARDIAN_VAR`] set), runs the command
/// as the module docs say and returns the exit code; `None` for any other start. Call it
/// while the process has a single thread.
pub fn guardian_from_env() -> Option<i32> {
    let command = std::env::var_os(GUARDIAN_VAR)?;
    let parent = std::env::var(PARENT_VAR)
        .ok()
        .and_then(|p| p.trim().parse::<i32>().ok());
    crate::logging::init_with_prefix("exec guardian: ");
    Some(match Guardian::start(&command, parent) {
        Ok(guardian) => guardian.run(),
        Err(e) => {
            log::error!("{e}");
            1
        }
    })
}

/// Signals that make the guardian end the command.
const GUARDIAN_STOP: [Signal; 4] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

/// The guardian's state.
struct Guardian {
    me: Pid,
    parent: Option<i32>,
    /// The shell running the command.
    shell: Pid,
    /// The stop signals, SIGCHLD and the signals it ignores, blocked and read here.
    signals: SignalFd,
    /// How the shell ended, once it has.
    status: Option<WaitStatus>,
}

impl Guardian {
    /// Sets the process up and starts `sh -c command`.
    fn start(command: &OsString, parent: Option<i32>) -> Result<Guardian, String> {
        use nix::sys::prctl;
        prctl::set_pdeathsig(Signal::SIGTERM)
            .map_err(|e| format!("cannot ask to be told of the server's end: {e}"))?;
        // The server may have died before that took effect.
        if parent.is_some_and(|p| nix::unistd::getppid().as_raw() != p) {
            return Err("the server is gone; not starting the command".to_string());
        }
        prctl::set_child_subreaper(true)
            .map_err(|e| format!("cannot become a child subreaper: {e}"))?;
        // A command that crashes makes the guardian end by the same signal: no core
        // file (nor crash report) for the guardian.
        let _ = prctl::set_dumpable(false);
        let mut set = SigSet::empty();
        for signal in GUARDIAN_STOP {
            set.add(signal);
        }
        // Read and dropped: a signal meant for the server (`pkill -USR1 picam-stream`)
        // must not end the guardian.
        for signal in [
            Signal::SIGCHLD,
            Signal::SIGUSR1,
            Signal::SIGUSR2,
            Signal::SIGALRM,
        ] {
            set.add(signal);
        }
        set.thread_block()
            .map_err(|e| format!("cannot block signals: {e}"))?;
        let signals = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(|e| format!("cannot read signals: {e}"))?;
        {
            let mut out = io::stdout().lock();
            out.write_all(HELLO)
                .and_then(|()| out.flush())
                .map_err(|e| format!("cannot greet the server: {e}"))?;
        }
        let mut shell = Command::new("/bin/sh");
        shell
            .arg("-c")
            .arg(command)
            .env_remove(GUARDIAN_VAR)
            .env_remove(PARENT_VAR)
            .stdin(Stdio::inherit())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit());
        // SAFETY: the closure runs in the child between fork and exec and makes two
        // async-signal-safe system calls (prctl, pthread_sigmask); it allocates nothing
        // and takes no lock.
        unsafe {
            shell.pre_exec(|| {
                // Should the guardian itself be killed, the shell goes with it.
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from)?;
                // The mask blocks the signals the guardian reads (and the server's stop
                // signals): the command starts with none blocked, so SIGTERM ends it.
                SigSet::empty().thread_set_mask().map_err(io::Error::from)
            });
        }
        let started = shell.spawn();
        // From now on only the command holds the server's pipe, so that the server sees
        // its output end when the command's processes close it.
        let _ = nix::unistd::dup2(2, 1);
        let shell = started.map_err(|e| format!("cannot start /bin/sh: {e}"))?;
        let pid = Pid::from_raw(shell.id() as i32);
        log::debug!("running the command as pid {pid}");
        Ok(Guardian {
            me: nix::unistd::getpid(),
            parent,
            shell: pid,
            signals,
            status: None,
        })
    }

    /// Watches until the command and everything it left behind have ended, or until a
    /// stop signal (or the server's end) makes it end them; returns the exit code.
    fn run(mut self) -> i32 {
        loop {
            let mut stopping = self.take_signals();
            self.reap();
            if let Some(parent) = self.parent {
                stopping |= nix::unistd::getppid().as_raw() != parent;
            }
            if stopping {
                self.end_all();
                break;
            }
            if self.status.is_some() && descendants(self.me).is_empty() {
                break;
            }
            // SIGCHLD wakes it: with a subreaper, the last process of the tree to exit
            // is always a child of the guardian.
            self.pause(Duration::from_millis(500));
        }
        self.reap();
        match self.status {
            Some(WaitStatus::Exited(_, code)) => code,
            Some(WaitStatus::Signaled(_, signal, _)) => die_by(signal),
            _ => 1,
        }
    }

    /// Reads the pending signals; true if one of them asks to stop.
    fn take_signals(&mut self) -> bool {
        let mut stop = false;
        while let Ok(Some(info)) = self.signals.read_signal() {
            let signal = Signal::try_from(info.ssi_signo as i32);
            if signal.is_ok_and(|s| GUARDIAN_STOP.contains(&s)) {
                stop = true;
            }
        }
        stop
    }

    /// Waits up to `most` for a signal.
    fn pause(&self, most: Duration) {
        let mut fds = [PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
        let timeout = PollTimeout::try_from(most).unwrap_or(PollTimeout::MAX);
        let _ = poll(&mut fds, timeout);
    }

    /// Collects every child that has exited, noting how the shell ended.
    fn reap(&mut self) {
        // Bounded: each round collects one child.
        for _ in 0..100_000 {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(status) => {
                    if status.pid() == Some(self.shell) {
                        self.status = Some(status);
                    }
                }
            }
        }
    }

    /// Ends every process under the guardian: SIGTERM (and SIGCONT, for a stopped
    /// one), SIGKILL after [`GUARD_GRACE`].
    fn end_all(&mut self) {
        // The process group first, in case /proc cannot be read (the guardian's own
        // SIGTERM waits, blocked, and is read as one more stop request).
        let _ = killpg(self.me, Signal::SIGTERM);
        let kill_at = Instant::now() + GUARD_GRACE;
        let give_up = kill_at + GUARD_GRACE;
        let mut warned: Vec<Pid> = Vec::new();
        loop {
            self.reap();
            let rest = descendants(self.me);
            if rest.is_empty() {
                return;
            }
            let now = Instant::now();
            if now >= give_up {
                log::warn!("{} process(es) would not end even on SIGKILL", rest.len());
                return;
            }
            for pid in rest {
                if now >= kill_at {
                    let _ = kill(pid, Signal::SIGKILL);
                } else if !warned.contains(&pid) {
                    let _ = kill(pid, Signal::SIGTERM);
                    let _ = kill(pid, Signal::SIGCONT);
                    warned.push(pid);
                }
            }
            self.pause(Duration::from_millis(20));
        }
    }
}

/// Every living process under `me` (children, their children, ...), from /proc.
fn descendants(me: Pid) -> Vec<Pid> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    // (pid, parent) of every process that is not a zombie.
    let mut living: Vec<(i32, i32)> = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // After the command name, which may hold anything: state, then the parent.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or("Z");
        let parent = fields.next().and_then(|p| p.parse::<i32>().ok());
        if let (false, Some(parent)) = (state == "Z" || state == "X", parent) {
            living.push((pid, parent));
        }
    }
    let mut found = vec![me.as_raw()];
    let mut next = 0;
    while next < found.len() {
        let parent = found[next];
        for &(pid, of) in &living {
            if of == parent && !found.contains(&pid) {
                found.push(pid);
            }
        }
        next += 1;
    }
    found.into_iter().skip(1).map(Pid::from_raw).collect()
}

/// Ends the guardian by `signal`, as the command ended; returns the exit code to use
/// should the signal not end it.
fn die_by(signal: Signal) -> i32 {
    if signal != Signal::SIGKILL && signal != Signal::SIGSTOP {
        // SAFETY: puts back the default action; no handler code is installed.
        let _ = unsafe { nix::sys::signal::signal(signal, nix::sys::signal::SigHandler::SigDfl) };
    }
    let mut set = SigSet::empty();
    set.add(signal);
    let _ = set.thread_unblock();
    let _ = nix::sys::signal::raise(signal);
    128 + signal as i32
}
