//! Broken sources against the real binary: an `exec:` command that crashes, hangs or
//! prints garbage, standard input that ends, a file that vanishes. In each case a real
//! client on `/stream.mjpg` must see the no-signal picture, `/status` must say why, and
//! the stream must come back by itself. Each test prints the measured times, from the
//! fault to the first good frame at the client:
//!
//! ```text
//! cargo test --test faults -- --nocapture
//! ```

mod common;

use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

/// Size of the good frames; the no-signal picture must have it too.
const W: u16 = 160;
const H: u16 = 120;

/// Upper bound on every wait for something the server should do by itself.
fn patience() -> Duration {
    Duration::from_secs(20) * slow_factor()
}

/// Distinct good frames, each a real JPEG; the stream must carry them byte for byte.
fn good_frames(n: u8) -> Vec<Vec<u8>> {
    (0..n).map(|i| make_jpeg(W, H, 100 + i * 25)).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Good,
    NoSignal,
}

/// Tells a good frame (one of `goods`, byte for byte) from the no-signal picture: a
/// dark frame of the same size with bright red "NO SIGNAL" lettering.
fn classify(jpeg: &[u8], goods: &[Vec<u8>]) -> Seen {
    if goods.iter().any(|g| g == jpeg) {
        return Seen::Good;
    }
    assert!(
        is_no_signal(jpeg),
        "a frame that is neither a good one nor the no-signal picture"
    );
    Seen::NoSignal
}

/// True for the no-signal picture at the test's size: a dark frame with bright red
/// "NO SIGNAL" lettering.
fn is_no_signal(jpeg: &[u8]) -> bool {
    let (w, h, px) = decode(jpeg);
    assert_eq!(
        (w, h),
        (W as usize, H as usize),
        "the no-signal picture has the size of the last good frame"
    );
    let mean = px.iter().map(|&v| v as u64).sum::<u64>() / px.len() as u64;
    let red = px
        .chunks(3)
        .filter(|p| p[0] > 200 && p[1] < 140 && p[2] < 140)
        .count();
    mean < 60 && red > 20
}

/// The next JPEG of a classic stream, `None` once it ends or breaks off.
fn next_classic_part(r: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    if line != "--FRAME\r\n" {
        return None;
    }
    let mut len = None;
    loop {
        line.clear();
        r.read_line(&mut line).ok()?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some(v) = l.strip_prefix("Content-Length:") {
            len = v.trim().parse::<usize>().ok();
        }
    }
    let mut body = vec![0u8; len?];
    r.read_exact(&mut body).ok()?;
    let mut crlf = [0u8; 2];
    r.read_exact(&mut crlf).ok()?;
    Some(body)
}

/// A client on `/stream.mjpg` that reports what each frame was and when it arrived.
struct Watcher {
    events: mpsc::Receiver<(Instant, Seen)>,
}

impl Watcher {
    fn start(server: &Server, goods: Vec<Vec<u8>>) -> Watcher {
        let client = MjpegClient::open(server.addr, "/stream.mjpg");
        let mut reader = client.reader;
        let (tx, events) = mpsc::channel();
        // Reads classic parts until the stream ends (the server is stopped with the test).
        std::thread::spawn(move || {
            while let Some(jpeg) = next_classic_part(&mut reader) {
                if tx.send((Instant::now(), classify(&jpeg, &goods))).is_err() {
                    return;
                }
            }
        });
        Watcher { events }
    }

    /// Time at which the first frame of `kind` arrived at or after `after`.
    fn wait_for(&self, kind: Seen, after: Instant, what: &str) -> Instant {
        let deadline = Instant::now() + patience();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok((t, seen)) if seen == kind && t >= after => return t,
                Ok(_) => {}
                Err(e) => panic!("no {kind:?} frame ({what}): {e}"),
            }
        }
    }
}

fn alive(server: &mut Server) -> bool {
    server.child.try_wait().unwrap().is_none()
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// The part common to the three `exec:` faults: a script that streams `good.jpg` at
/// about 20 fps, and does `on_fault` once the file `fault` appears (removing it, so the
/// restarted script streams again). Returns the recovery time.
fn exec_fault(name: &str, on_fault: &str, between_frames: &str, expect_error: &str) {
    let dir = Scratch::new(name);
    let goods = good_frames(1);
    std::fs::write(dir.path("good.jpg"), &goods[0]).unwrap();
    let script = dir.script(
        "child.sh",
        &format!(
            "cd '{}'\n\
             echo $$ > child.pid\n\
             while :; do\n\
               if [ -e fault ]; then rm -f fault; {on_fault}; fi\n\
               {between_frames}\n\
               cat good.jpg\n\
               sleep 0.05\n\
             done\n",
            dir.dir().display()
        ),
    );
    let source = format!("exec:sh '{}'", script.display());
    let mut server = Server::start(&["--source", &source, "--source-timeout", "2"]);
    let watcher = Watcher::start(&server, goods);
    watcher.wait_for(Seen::Good, Instant::now(), "before the fault");
    // Healthy for longer than the timeout: garbage between frames is no fault.
    std::thread::sleep(Duration::from_secs(3));
    let s = server.status();
    assert_eq!(
        s["source_restarts"], 0,
        "a healthy command was restarted: {s}"
    );
    assert!(s["source_error"].is_null(), "{s}");

    let first_pid = std::fs::read_to_string(dir.path("child.pid")).unwrap();
    let fault_at = Instant::now();
    std::fs::write(dir.path("fault"), b"").unwrap();
    let no_signal_at = watcher.wait_for(Seen::NoSignal, fault_at, "after the fault");
    let s = server.wait_status(patience(), "the reason", |s| {
        s["source_error"].as_str().is_some()
    });
    let why = s["source_error"].as_str().unwrap();
    assert!(why.contains(expect_error), "source_error {why:?}");
    assert!(why.contains("restarting in"), "source_error {why:?}");
    let good_at = watcher.wait_for(Seen::Good, no_signal_at, "after the restart");
    let s = server.wait_status(patience(), "the error to clear", |s| {
        s["source_error"].is_null()
    });
    assert_eq!(s["source_restarts"], 1, "{s}");
    assert!(alive(&mut server));
    let pid = std::fs::read_to_string(dir.path("child.pid")).unwrap();
    assert_ne!(pid, first_pid, "the command runs again, as a new process");
    println!(
        "exec {name}: no-signal after {}, first good frame after {} (status said: {why})",
        secs(no_signal_at - fault_at),
        secs(good_at - fault_at)
    );
}

#[test]
fn exec_command_that_crashes() {
    exec_fault("crash", "kill -SEGV $$", ":", "exited");
}

#[test]
fn exec_command_that_hangs_is_stopped_with_what_it_started() {
    // The hung script waits on a child of its own, which must be stopped too.
    exec_fault(
        "hang",
        "sleep 600 & echo $! > grandchild.pid; wait",
        ":",
        "hung or sending garbage; stopped it",
    );
}

#[test]
fn exec_command_that_prints_garbage() {
    // Noise between good frames is skipped; noise alone is a fault.
    exec_fault(
        "garbage",
        "while :; do head -c 32768 /dev/urandom; sleep 0.05; done",
        "printf 'noise between frames'",
        "hung or sending garbage; stopped it",
    );
}

#[test]
fn a_hung_commands_children_are_stopped_too() {
    let dir = Scratch::new("group");
    let script = dir.script(
        "child.sh",
        &format!(
            "cd '{}'\nsleep 600 & echo $! > grandchild.pid\nwait\n",
            dir.dir().display()
        ),
    );
    let source = format!("exec:sh '{}'", script.display());
    // --always-on: the command is started (and restarted) with nobody watching.
    let server = Server::start(&["--source", &source, "--source-timeout", "1", "--always-on"]);
    let deadline = Instant::now() + patience();
    let grandchild = loop {
        if let Ok(pid) = std::fs::read_to_string(dir.path("grandchild.pid")) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                break pid;
            }
        }
        assert!(Instant::now() < deadline, "the script never started");
        std::thread::sleep(Duration::from_millis(50));
    };
    server.wait_log(
        "hung or sending garbage; stopped it",
        Duration::from_secs(10),
    );
    // A zombie waiting for its new parent is stopped too.
    let gone = |pid: i32| !process_alive(pid);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !gone(grandchild) {
        assert!(
            Instant::now() < deadline,
            "the hung command's child {grandchild} still runs"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // With no good frame ever, the pauses grow.
    server.wait_log("restarting in 2 s", Duration::from_secs(15));
    let s = server.status();
    assert!(s["source_restarts"].as_u64().unwrap() >= 1, "{s}");
    assert!(s["source_error_seconds"].as_u64().is_some(), "{s}");
}

#[test]
fn a_command_that_cannot_start_is_retried_with_growing_pauses() {
    // --always-on: retried with nobody watching.
    let server = Server::start(&[
        "--source",
        "exec:/nonexistent/camera-tool -o -",
        "--always-on",
    ]);
    server.wait_log("restarting in 1 s", Duration::from_secs(10));
    server.wait_log("restarting in 2 s", Duration::from_secs(10));
    let s = server.status();
    assert!(
        s["source_error"]
            .as_str()
            .unwrap()
            .contains("exited (exit status: 127)"),
        "{s}"
    );
    // The no-signal picture at the configured size, since no good frame ever came.
    let r = get(server.addr, "/snapshot.jpg");
    assert_eq!(r.status, 200);
    let (w, h, _) = decode(&r.body);
    assert_eq!((w, h), (640, 480));
}

/// Opens a FIFO's two ends; each open waits for the other, so one runs on a thread.
fn open_fifo(path: &Path) -> (std::fs::File, std::fs::File) {
    let p = path.to_path_buf();
    let writer =
        std::thread::spawn(move || std::fs::OpenOptions::new().write(true).open(p).unwrap());
    let reader = std::fs::File::open(path).unwrap();
    (reader, writer.join().unwrap())
}

/// Writes `frames` in turn at about 20 fps until `stop` says so.
fn feed(mut out: std::fs::File, frames: Vec<Vec<u8>>, stop: mpsc::Receiver<()>) {
    for jpeg in frames.iter().cycle() {
        if out.write_all(jpeg).is_err() || stop.recv_timeout(Duration::from_millis(50)).is_ok() {
            return;
        }
    }
}

#[test]
fn stdin_that_ends_shows_no_signal_and_resumes_from_a_new_writer() {
    let dir = Scratch::new("stdin");
    let fifo = dir.path("input");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let (reader, writer) = open_fifo(&fifo);
    let goods = good_frames(3);
    let mut server = Server::start_stdio(&["--source", "stdin"], reader.into());
    let (stop_tx, stop_rx) = mpsc::channel();
    let feeder = {
        let goods = goods.clone();
        std::thread::spawn(move || feed(writer, goods, stop_rx))
    };
    let watcher = Watcher::start(&server, goods.clone());
    watcher.wait_for(Seen::Good, Instant::now(), "from the first writer");

    let end_at = Instant::now();
    stop_tx.send(()).unwrap();
    feeder.join().unwrap(); // closes the only writer: the server reads the end of input
    let no_signal_at = watcher.wait_for(Seen::NoSignal, end_at, "after the input ended");
    let s = server.wait_status(patience(), "the reason", |s| {
        s["source_error"].as_str().is_some()
    });
    let why = s["source_error"].as_str().unwrap().to_string();
    assert!(why.contains("standard input ended"), "{why}");
    // The server stays up and keeps serving the no-signal picture.
    std::thread::sleep(Duration::from_secs(3));
    assert!(alive(&mut server));
    let snap = get(server.addr, "/snapshot.jpg");
    assert_eq!(snap.status, 200);
    assert_eq!(classify(&snap.body, &goods), Seen::NoSignal);
    let s = server.status();
    assert!(s["source_error_seconds"].as_u64().unwrap() >= 2, "{s}");
    assert_eq!(s["fps_measured"].as_f64(), Some(0.0), "{s}");

    // Somebody opens the FIFO again and writes.
    let resume_at = Instant::now();
    let writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    let (stop_tx, stop_rx) = mpsc::channel();
    let feeder = {
        let goods = goods.clone();
        std::thread::spawn(move || feed(writer, goods, stop_rx))
    };
    let good_at = watcher.wait_for(Seen::Good, resume_at, "from the second writer");
    server.wait_status(patience(), "the error to clear", |s| {
        s["source_error"].is_null()
    });
    stop_tx.send(()).unwrap();
    feeder.join().unwrap();
    println!(
        "stdin end: no-signal after {}; new writer's first good frame after {} (status said: {why})",
        secs(no_signal_at - end_at),
        secs(good_at - resume_at)
    );
}

#[test]
fn stdin_that_goes_quiet_shows_no_signal_until_frames_come_back() {
    let mut server = Server::start_with(&["--source", "stdin", "--source-timeout", "1"], true);
    let mut stdin = server.stdin.take().unwrap();
    let goods = good_frames(1);
    // The viewer first: a frame written before it connects may already have given way
    // to no-signal (after the 1 s timeout) on a slow machine, and it would never see it.
    let watcher = Watcher::start(&server, goods.clone());
    let first_at = Instant::now();
    stdin.write_all(&goods[0]).unwrap();
    stdin.flush().unwrap();
    let good_at = watcher.wait_for(Seen::Good, first_at, "the first frame");
    let no_signal_at = watcher.wait_for(Seen::NoSignal, good_at, "after a quiet second");
    // The no-signal picture is published before /status reports the problem (so that a
    // snapshot never finds the error without a picture): wait for the report.
    server.wait_status(Duration::from_secs(10), "the quiet source's error", |s| {
        s["source_error"]
            .as_str()
            .is_some_and(|e| e.contains("no frame on standard input"))
    });
    let resume_at = Instant::now();
    stdin.write_all(&goods[0]).unwrap();
    stdin.flush().unwrap();
    let back_at = watcher.wait_for(Seen::Good, resume_at, "the next frame");
    server.wait_status(patience(), "the error to clear", |s| {
        s["source_error"].is_null()
    });
    println!(
        "stdin quiet: no-signal {} after the last frame; next frame shown after {}",
        secs(no_signal_at - good_at),
        secs(back_at - resume_at)
    );
}

fn write_atomically(path: &Path, frames: &[Vec<u8>]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, frames.concat()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn a_file_that_vanishes_shows_no_signal_and_plays_again_when_back() {
    let dir = Scratch::new("file");
    let clip = dir.path("clip.mjpg");
    let goods = good_frames(6);
    write_atomically(&clip, &goods[..3]);
    let source = format!("file:{}", clip.display());
    let mut server = Server::start(&["--source", &source, "--fps", "20"]);
    let watcher = Watcher::start(&server, goods.clone());
    watcher.wait_for(Seen::Good, Instant::now(), "from the file");

    let gone_at = Instant::now();
    std::fs::remove_file(&clip).unwrap();
    let no_signal_at = watcher.wait_for(Seen::NoSignal, gone_at, "after the file vanished");
    let s = server.wait_status(patience(), "the reason", |s| {
        s["source_error"].as_str().is_some()
    });
    let why = s["source_error"].as_str().unwrap().to_string();
    assert!(
        why.contains("cannot open") && why.contains("clip.mjpg"),
        "{why}"
    );
    std::thread::sleep(Duration::from_millis(2500));
    assert!(alive(&mut server));

    let back_at = Instant::now();
    write_atomically(&clip, &goods[..3]);
    let good_at = watcher.wait_for(Seen::Good, back_at, "after the file came back");
    let s = server.wait_status(patience(), "the error to clear", |s| {
        s["source_error"].is_null()
    });
    assert!(s["source_restarts"].as_u64().unwrap() >= 1, "{s}");

    // A file replaced by another plays the new one, without a fault.
    write_atomically(&clip, &goods[3..]);
    let new_goods = goods[3..].to_vec();
    let deadline = Instant::now() + patience();
    loop {
        let snap = get(server.addr, "/snapshot.jpg");
        if new_goods.contains(&snap.body) {
            break;
        }
        assert!(Instant::now() < deadline, "the replaced file never played");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(server.status()["source_error"].is_null());
    println!(
        "file vanished: no-signal after {}; back {} after the file returned (status said: {why})",
        secs(no_signal_at - gone_at),
        secs(good_at - back_at)
    );
}

// ------------------------------------------------------------------ --isolate

/// A client that reads a stream and reports each frame: no-signal or not.
fn watch_pattern(server: &Server) -> mpsc::Receiver<(Instant, Seen)> {
    let mut reader = MjpegClient::open(server.addr, "/stream.mjpg").reader;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        while let Some(jpeg) = next_classic_part(&mut reader) {
            let seen = if is_no_signal(&jpeg) {
                Seen::NoSignal
            } else {
                Seen::Good
            };
            if tx.send((Instant::now(), seen)).is_err() {
                return;
            }
        }
    });
    rx
}

fn wait_seen(rx: &mpsc::Receiver<(Instant, Seen)>, kind: Seen, what: &str) -> Instant {
    let deadline = Instant::now() + patience();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((t, seen)) if seen == kind => return t,
            Ok(_) => {}
            Err(e) => panic!("no {kind:?} frame ({what}): {e}"),
        }
    }
}

/// The source process is this binary started again, which qemu-user without a
/// binfmt handler cannot do.
fn can_start_source_processes() -> bool {
    server_can_start_itself("a source process")
}

/// Sends `signal` to the source process of a server streaming the test pattern, and
/// checks that viewers see no signal, that /status gives a reason with each of
/// `expect` (`{pid}` stands for the process's pid), and that frames come back from a
/// new process. Prints the recovery times.
fn source_process_fault(signal: nix::sys::signal::Signal, expect: &[&str]) {
    if !can_start_source_processes() {
        return;
    }
    let server = Server::start(ISOLATED_PATTERN);
    let frames = watch_pattern(&server);
    wait_seen(&frames, Seen::Good, "before the fault");
    let first = source_process(&server, patience());
    let fault_at = Instant::now();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(first as i32), signal).unwrap();
    let no_signal_at = wait_seen(&frames, Seen::NoSignal, "after the fault");
    let s = server.wait_status(patience(), "the reason", |s| {
        s["source_error"].as_str().is_some()
    });
    let why = s["source_error"].as_str().unwrap().to_string();
    for e in expect {
        let e = e.replace("{pid}", &first.to_string());
        assert!(why.contains(&e), "{why:?} lacks {e:?}");
    }
    let good_at = wait_seen(&frames, Seen::Good, "after the restart");
    let s = server.wait_status(patience(), "the error to clear", |s| {
        s["source_error"].is_null()
    });
    assert_eq!(s["source_restarts"], 1, "{s}");
    assert!(
        s["source"].as_str().unwrap().contains("process of its own"),
        "{s}"
    );
    assert_ne!(
        source_process(&server, patience()),
        first,
        "a new source process runs"
    );
    println!(
        "source process sent {signal}: no-signal after {}, first good frame after {} (status said: {why})",
        secs(no_signal_at - fault_at),
        secs(good_at - fault_at)
    );
}

#[test]
fn a_source_process_that_is_killed_is_started_again() {
    source_process_fault(
        nix::sys::signal::Signal::SIGKILL,
        &["{pid} was ended by SIGKILL", "starting it again in 1 s"],
    );
}

#[test]
fn a_hung_source_process_is_killed_and_started_again() {
    source_process_fault(
        nix::sys::signal::Signal::SIGSTOP,
        &["said nothing for 10 s: hung", "{pid} was killed"],
    );
}

#[test]
fn the_source_process_runs_only_while_somebody_watches() {
    if !can_start_source_processes() {
        return;
    }
    let mut server = Server::start(ISOLATED_PATTERN);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        children_of(server.child.id()).is_empty(),
        "started with nobody watching"
    );
    let frames = watch_pattern(&server);
    wait_seen(&frames, Seen::Good, "while watched");
    let pid = source_process(&server, patience());
    assert_eq!(server.status()["capturing"], true);
    drop(frames); // the client goes away with its next frame
    let left_at = Instant::now();
    let deadline = left_at + patience();
    while !children_of(server.child.id()).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the source process {pid} still runs"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let s = server.status();
    assert_eq!(s["capturing"], false, "{s}");
    assert!(s["source_error"].is_null(), "{s}");
    server.wait_log("nobody watching: source process", Duration::from_secs(5));
    println!(
        "source process {pid} ended {} after the last viewer left",
        secs(left_at.elapsed())
    );
    // A snapshot starts it again, and the server stops it when it stops.
    let r = get(server.addr, "/snapshot.jpg");
    assert_eq!(r.status, 200);
    assert!(!is_no_signal(&r.body));
    let pid = source_process(&server, patience());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while process_alive(pid as i32) {
        assert!(
            Instant::now() < deadline,
            "the source process {pid} outlived the server"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_source_process_starts_after_the_binary_was_removed() {
    // As after an upgrade that replaced the file: the running program starts itself.
    if !can_start_source_processes() {
        return;
    }
    let dir = Scratch::new("removed");
    let bin = dir.path("picam-stream");
    std::fs::copy(server_binary(), &bin).unwrap();
    let mut cmd = std::process::Command::new(&bin);
    cmd.args(["--listen", "127.0.0.1:0"]).args(ISOLATED_PATTERN);
    let server = Server::start_command(cmd);
    std::fs::remove_file(&bin).unwrap();
    let frames = watch_pattern(&server);
    wait_seen(&frames, Seen::Good, "from a removed binary");
    source_process(&server, patience());
}

// ------------------------------------------------------------------ signals, and the
// `exec:` command's life tied to the server's

/// The `exec:` command's guardian is this binary started again, which qemu-user without
/// a binfmt handler cannot do (the server then runs the command directly).
fn can_guard_commands() -> bool {
    server_can_start_itself("the exec guardian")
}

/// Waits until every one of `pids` has ended.
fn wait_gone(pids: &[i32], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5) * slow_factor();
    loop {
        let left: Vec<i32> = pids.iter().copied().filter(|&p| process_alive(p)).collect();
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {left:?} still run");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the file `path` holds at least `n` pids, one a line, and returns them.
fn wait_pids(path: &Path, n: usize, server: &Server) -> Vec<i32> {
    let deadline = Instant::now() + patience();
    loop {
        let pids: Vec<i32> = std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        if pids.len() >= n {
            return pids;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {n} pids written; log:\n{}",
            pids.len(),
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts a server whose `exec:` command writes three pids to `pids` (the shell, a
/// background child in its process group, and a child that left for a session of its
/// own with `setsid`) and then streams good frames. Returns the server and the pids.
fn server_with_family(dir: &Scratch) -> (Server, Vec<i32>) {
    std::fs::write(dir.path("good.jpg"), make_jpeg(W, H, 60)).unwrap();
    let script = dir.script(
        "family.sh",
        &format!(
            "cd '{}'\n\
             echo $$ >> pids\n\
             sleep 1000 & echo $! >> pids\n\
             setsid sh -c 'echo $$ >> pids; exec sleep 1000' </dev/null >/dev/null 2>&1 &\n\
             while :; do cat good.jpg; sleep 0.05; done\n",
            dir.dir().display()
        ),
    );
    let source = format!("exec:sh '{}'", script.display());
    // --always-on: the command runs with nobody watching.
    let server = Server::start(&["--source", &source, "--always-on"]);
    let pids = wait_pids(&dir.path("pids"), 3, &server);
    server.wait_status(patience(), "a good frame", |s| {
        s["frames_captured"].as_u64().is_some_and(|n| n > 0)
    });
    (server, pids)
}

/// Waits for the server to exit by itself and returns its exit code.
fn wait_exit(server: &mut Server, what: &str) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(5) * slow_factor();
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            return status.code();
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the server still runs; log:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_exec_command_ends_with_a_server_killed_by_sigkill() {
    if !can_guard_commands() {
        return;
    }
    let dir = Scratch::new("sigkill");
    let (mut server, pids) = server_with_family(&dir);
    let killed_at = Instant::now();
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    wait_gone(&pids, "after the server was killed with SIGKILL");
    println!(
        "the command's three processes ended {} after SIGKILL",
        secs(killed_at.elapsed())
    );
}

#[test]
fn sighup_and_sigquit_stop_the_server_and_its_command() {
    use nix::sys::signal::{kill, Signal};
    for signal in [Signal::SIGHUP, Signal::SIGQUIT] {
        let dir = Scratch::new(&format!("stop-{signal}"));
        let (mut server, pids) = server_with_family(&dir);
        kill(nix::unistd::Pid::from_raw(server.child.id() as i32), signal).unwrap();
        let code = wait_exit(&mut server, signal.as_str());
        assert_eq!(code, Some(0), "{signal}; log:\n{}", server.log_text());
        server.wait_log(
            &format!("{signal} received: stopping"),
            Duration::from_secs(2),
        );
        server.wait_log("stopped", Duration::from_secs(2));
        if can_guard_commands() {
            wait_gone(&pids, &format!("after {signal}"));
        } else {
            // Without the guardian, the process group at least is stopped; the child
            // in a session of its own is left to the test.
            wait_gone(&pids[..2], &format!("after {signal}"));
            let _ = kill(nix::unistd::Pid::from_raw(pids[2]), Signal::SIGKILL);
        }
    }
}

#[test]
fn sigusr1_logs_a_status_line_and_other_signals_are_ignored() {
    use nix::sys::signal::{kill, Signal};
    let mut server = Server::start(&["--source", "test", "--size", "160x120"]);
    let pid = nix::unistd::Pid::from_raw(server.child.id() as i32);
    for signal in [Signal::SIGALRM, Signal::SIGUSR2, Signal::SIGPIPE] {
        kill(pid, signal).unwrap();
    }
    kill(pid, Signal::SIGUSR1).unwrap();
    server.wait_log("SIGUSR1 received: up ", Duration::from_secs(5));
    let log = server.log_text();
    let line = log.lines().find(|l| l.contains("SIGUSR1")).unwrap();
    assert!(line.contains("source test pattern"), "{line}");
    assert!(line.contains("viewers now"), "{line}");
    // Still serving, after every one of them.
    let r = get(server.addr, "/status");
    assert_eq!(r.status, 200);
    assert!(alive(&mut server));
    assert!(!log.contains("stopping"), "{log}");
}

#[test]
fn setsid_children_of_a_restarted_command_do_not_pile_up() {
    if !can_guard_commands() {
        return;
    }
    let dir = Scratch::new("setsid");
    std::fs::write(dir.path("good.jpg"), make_jpeg(W, H, 90)).unwrap();
    // Each run leaves a child in a session of its own, sends one frame and exits.
    let script = dir.script(
        "leaver.sh",
        &format!(
            "cd '{}'\n\
             setsid sh -c 'echo $$ >> pids; exec sleep 1000' </dev/null >/dev/null 2>&1 &\n\
             cat good.jpg\n",
            dir.dir().display()
        ),
    );
    let source = format!("exec:sh '{}'", script.display());
    // --always-on: the command is restarted with nobody watching.
    let mut server = Server::start(&["--source", &source, "--always-on"]);
    // Three runs: the first and two restarts.
    let pids = wait_pids(&dir.path("pids"), 3, &server);
    wait_gone(&pids[..2], "children of the runs before the restarts");
    let s = server.status();
    assert!(s["source_restarts"].as_u64().unwrap() >= 2, "{s}");
    kill_politely(&mut server);
    let pids = wait_pids(&dir.path("pids"), 3, &server);
    wait_gone(&pids, "after the server stopped");
}

/// SIGTERM, and the server exits 0 by itself.
fn kill_politely(server: &mut Server) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(wait_exit(server, "SIGTERM"), Some(0));
}
