//! Sources run only while somebody watches, against the real binary: the test pattern,
//! a looped file and an `exec:` command idle with no viewer (no frames, `"running":
//! false` in `/status`, the command's process gone), run for a stream or a snapshot,
//! stop again [`LINGER`] after the last viewer, and `--always-on` keeps them running.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

/// The server's linger after the last viewer (`source::LINGER`).
const LINGER: Duration = Duration::from_secs(3);

/// Upper bound on every wait for something the server should do by itself.
fn patience() -> Duration {
    Duration::from_secs(15) * slow_factor()
}

fn frames(server: &Server) -> u64 {
    let s = server.status();
    s["frames_captured"]
        .as_u64()
        .unwrap_or_else(|| panic!("frames_captured in {s}"))
}

/// Waits until `/status` says the source is idle, then checks that no frame is made
/// for two seconds.
fn assert_idle(server: &Server, what: &str) {
    server.wait_status(
        LINGER + patience(),
        &format!("{what}: running false"),
        |s| s["running"] == false,
    );
    let before = frames(server);
    std::thread::sleep(Duration::from_secs(2));
    let after = frames(server);
    assert_eq!(
        after,
        before,
        "{what}: frames were made with nobody watching; log:\n{}",
        server.log_text()
    );
    assert_eq!(server.status()["running"], false, "{what}");
}

/// Reads `n` frames from a new stream, checks they decode, and returns the stream.
fn watch(server: &Server, n: usize) -> MjpegClient {
    watch_counting(server, n).0
}

/// [`watch`], also counting the parts that differ from the part before them. A source
/// slower than a picture a second (the test pattern under a busy qemu) has its newest
/// frame sent again as a keep-alive: the same bytes, no new frame captured.
fn watch_counting(server: &Server, n: usize) -> (MjpegClient, u64) {
    let mut client = MjpegClient::open(server.addr, "/stream.mjpg");
    let mut previous = Vec::new();
    let mut different = 0;
    for _ in 0..n {
        let jpeg = client.next_jpeg();
        let (w, h, _) = decode(&jpeg);
        assert_eq!((w, h), (160, 120));
        if jpeg != previous {
            different += 1;
            previous = jpeg;
        }
    }
    (client, different)
}

/// Idle at start, running for a viewer, idle again after the linger.
fn idles_and_runs_for_a_viewer(server: &Server, what: &str) {
    assert_idle(server, what);
    let before = frames(server);
    // The pattern and the looped file make no two frames in a row alike.
    let (client, different) = watch_counting(server, 5);
    let s = server.status();
    assert_eq!(s["running"], true, "{what}: {s}");
    assert!(
        s["frames_captured"].as_u64().unwrap() >= before + different,
        "{what}: {different} different frames came: {s}"
    );
    drop(client);
    assert_idle(server, &format!("{what}, after its viewer left"));
    let s = server.status();
    assert_eq!(s["source_restarts"], 0, "{what}: {s}");
    assert!(s["source_error"].is_null(), "{what}: {s}");
}

#[test]
fn the_test_pattern_draws_only_while_somebody_watches() {
    let server = Server::start(&["--source", "test", "--size", "160x120", "--fps", "20"]);
    idles_and_runs_for_a_viewer(&server, "test pattern");
    server.wait_log("nobody watches: test pattern idle", patience());
}

#[test]
fn the_isolated_test_pattern_runs_only_while_somebody_watches() {
    if !server_can_start_itself("a source process") {
        return;
    }
    let server = Server::start(&["--source", "test", "--size", "160x120", "--isolate", "on"]);
    idles_and_runs_for_a_viewer(&server, "isolated test pattern");
    // While it ran, the source process passed its controls on to the server.
    server.wait_log(": 3 camera controls", patience());
}

#[test]
fn a_looped_file_plays_only_while_somebody_watches() {
    let dir = Scratch::new("file");
    let mut mjpeg = Vec::new();
    for seed in 0..4 {
        mjpeg.extend(make_jpeg(160, 120, seed * 40));
    }
    std::fs::write(dir.path("loop.mjpg"), &mjpeg).unwrap();
    let source = format!("file:{}", dir.path("loop.mjpg").display());
    let server = Server::start(&["--source", &source, "--fps", "20"]);
    idles_and_runs_for_a_viewer(&server, "file");
}

#[test]
fn a_snapshot_from_an_idle_pattern_is_a_fresh_picture() {
    let server = Server::start(&["--source", "test", "--size", "160x120"]);
    assert_idle(&server, "test pattern");
    let before = frames(&server);
    let r = get(server.addr, "/snapshot.jpg");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(decode(&r.body).0, 160);
    assert!(frames(&server) > before, "the snapshot made a new frame");
    // The snapshot's demand lingers too, then the pattern idles again.
    assert_idle(&server, "test pattern after a snapshot");
}

#[test]
fn a_snapshot_right_after_start_waits_for_the_first_frame() {
    // Before the source thread has run, /status must not say it runs: the snapshot
    // would then find no frame (503) instead of waiting for one.
    for _ in 0..5 {
        let server = Server::start(&["--source", "test", "--size", "160x120"]);
        let r = get(server.addr, "/snapshot.jpg");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(decode(&r.body).0, 160);
    }
}

#[test]
fn always_on_runs_with_nobody_watching() {
    let server = Server::start(&[
        "--source",
        "test",
        "--size",
        "160x120",
        "--fps",
        "20",
        "--always-on",
    ]);
    let start = frames(&server);
    server.wait_status(patience(), "frames with nobody watching", |s| {
        s["frames_captured"].as_u64().unwrap() >= start + 10
    });
    std::thread::sleep(LINGER + Duration::from_secs(1));
    let before = frames(&server);
    server.wait_status(patience(), "frames after the linger", |s| {
        s["frames_captured"].as_u64().unwrap() >= before + 10
    });
    assert_eq!(server.status()["running"], true);
}

// ------------------------------------------------------------------ exec

/// True while `pid` is a living process (not gone, not a zombie).
/// Waits for the command to write a pid other than `old` into `file`.
fn new_pid(file: &Path, old: Option<i32>) -> i32 {
    let deadline = Instant::now() + patience();
    loop {
        if let Some(pid) = read_pid(file).filter(|&p| Some(p) != old) {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "no command started after the one with pid {old:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_gone(pid: i32, server: &Server) {
    let deadline = Instant::now() + LINGER + patience();
    while process_alive(pid) {
        assert!(
            Instant::now() < deadline,
            "the command {pid} still runs with nobody watching; log:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A script that writes its pid, then streams `good.jpg` at about 20 fps.
fn exec_source(dir: &Scratch) -> String {
    std::fs::write(dir.path("good.jpg"), make_jpeg(160, 120, 7)).unwrap();
    let script = dir.path("camera.sh");
    std::fs::write(
        &script,
        format!(
            "cd '{}'\n\
             echo $$ > pid\n\
             while :; do cat good.jpg; sleep 0.05; done\n",
            dir.dir().display()
        ),
    )
    .unwrap();
    format!("exec:sh '{}'", script.display())
}

#[test]
fn an_exec_command_runs_only_while_somebody_watches() {
    let dir = Scratch::new("exec");
    let pid_file = dir.path("pid");
    let server = Server::start(&["--source", &exec_source(&dir)]);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !pid_file.exists(),
        "the command started with nobody watching"
    );
    assert_idle(&server, "exec");

    let client = watch(&server, 3);
    let first = new_pid(&pid_file, None);
    assert!(process_alive(first), "the command runs while watched");
    assert_eq!(server.status()["running"], true);
    drop(client);
    wait_gone(first, &server);
    assert_idle(&server, "exec after its viewer left");
    server.wait_log("nobody watches: stopped `sh", patience());

    // A second viewer starts it again.
    let client = watch(&server, 3);
    let second = new_pid(&pid_file, Some(first));
    assert!(process_alive(second));
    drop(client);
    wait_gone(second, &server);
    // The command's end reaches `/status` a moment after the process is gone; until
    // then a snapshot is the newest frame of a source still counted as running.
    server.wait_status(patience(), "exec: running false", |s| s["running"] == false);

    // A snapshot starts it too.
    let r = get(server.addr, "/snapshot.jpg");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(decode(&r.body).0, 160);
    let third = new_pid(&pid_file, Some(second));
    wait_gone(third, &server);

    // Stopping for idleness is no failure.
    let s = server.status();
    assert_eq!(s["source_restarts"], 0, "{s}");
    assert!(s["source_error"].is_null(), "{s}");
    // (Under an emulator the guardian cannot start, which is said once: not about
    // stopping.)
    let log = server.log_text();
    assert!(
        !log.lines()
            .any(|l| (l.contains(" WARN ") || l.contains(" ERROR "))
                && (l.contains("camera.sh") || l.contains("restarting"))
                && !l.contains("under a guardian process")),
        "an idle stop is no problem:\n{log}"
    );
}

#[test]
fn an_always_on_exec_command_runs_with_nobody_watching() {
    let dir = Scratch::new("exec-always");
    let server = Server::start(&["--source", &exec_source(&dir), "--always-on"]);
    let pid = new_pid(&dir.path("pid"), None);
    std::thread::sleep(LINGER + Duration::from_secs(2));
    assert!(process_alive(pid), "the command was stopped");
    let s = server.status();
    assert_eq!(s["running"], true, "{s}");
    assert!(s["frames_captured"].as_u64().unwrap() > 0, "{s}");
}
