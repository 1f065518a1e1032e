//! Full-resolution stills of a source in a process of its own (`--isolate on`), against
//! the real server: the test pattern's still comes through its process at twice the
//! stream's width and height, decoded back, while the stream goes on; requests at once
//! all get one; a source process killed while a still is on its way gives a clear
//! `503` (not a wait for the timeout), and stills come again from the next process;
//! and many stills leave no descriptors or threads behind, in the server or the
//! source process.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::hostile::{open_fds, threads_and_rss};
use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use picam_stream::source::pattern::read_counter;

/// Upper bound on every wait for something the server should do by itself.
fn patience() -> Duration {
    Duration::from_secs(90) * slow_factor()
}

/// `GET path` with room for a still's time.
fn get_still(addr: SocketAddr, path: &str) -> Response {
    get_patiently(addr, path, Duration::from_secs(120) * slow_factor())
}

fn isolated_pattern(extra: &[&str]) -> Server {
    let mut args = vec![
        "--source",
        "test",
        "--size",
        "320x240",
        "--fps",
        "10",
        "--isolate",
        "on",
    ];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// Threads and open descriptors of `pid`.
fn usage(pid: u32) -> (u64, u64) {
    (threads_and_rss(pid).0, open_fds(pid))
}

/// A viewer of `/stream.mjpg` in a thread of its own, reading every frame as a
/// browser does: the frames seen so far and the newest frame's number.
struct Viewer {
    frames: Arc<AtomicU64>,
    newest: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Viewer {
    fn start(addr: SocketAddr) -> Viewer {
        let mut stream = MjpegClient::open(addr, "/stream.mjpg");
        let (frames, newest, stop) = Default::default();
        let thread = {
            let (frames, newest, stop): (Arc<AtomicU64>, Arc<AtomicU64>, Arc<AtomicBool>) =
                (Arc::clone(&frames), Arc::clone(&newest), Arc::clone(&stop));
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let (w, h, rgb) = decode(&stream.next_jpeg());
                    assert_eq!((w, h), (320, 240), "the stream keeps its size");
                    let n = read_counter(&rgb, w, h).expect("the frame number reads back");
                    newest.store(n, Ordering::SeqCst);
                    frames.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        Viewer {
            frames,
            newest,
            stop,
            thread: Some(thread),
        }
    }

    /// Waits for a frame after the ones seen so far, and returns its number.
    fn next_frame(&self) -> u64 {
        let seen = self.frames.load(Ordering::SeqCst);
        let deadline = Instant::now() + patience();
        while self.frames.load(Ordering::SeqCst) <= seen {
            let thread = self.thread.as_ref().unwrap();
            assert!(!thread.is_finished(), "the stream ended");
            assert!(Instant::now() < deadline, "the stream stopped");
            thread::sleep(Duration::from_millis(10));
        }
        self.newest.load(Ordering::SeqCst)
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let ended = thread.join();
            if !thread::panicking() {
                ended.expect("the viewer failed");
            }
        }
    }
}

#[test]
fn an_isolated_pattern_takes_stills_at_full_size_while_the_stream_goes_on() {
    if !server_can_start_itself("the test pattern's own process") {
        return;
    }
    let server = isolated_pattern(&[]);
    let addr = server.addr;
    let viewer = Viewer::start(addr);
    let before = viewer.next_frame();
    server.wait_log("takes full-resolution stills", patience());
    let r = get_still(addr, "/snapshot.jpg?full=1");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("image/jpeg"));
    assert_eq!(r.header("x-picture-size"), Some("640x480"));
    let (w, h, rgb) = decode(&r.body);
    assert_eq!((w, h), (640, 480), "twice the stream's width and height");
    let still = read_counter(&rgb, w, h).expect("the still's frame number reads back");
    assert!(
        still >= before,
        "still at frame {still}, stream at {before}"
    );
    let later = (0..100).map(|_| viewer.next_frame()).find(|&n| n > still);
    assert!(later.is_some(), "the stream did not go on after the still");

    // Requests at once all get a still; they share, so no more are taken than asked.
    let taken_before = server.log_text().matches("took a 640x480 still").count();
    let askers: Vec<_> = (0..4)
        .map(|_| thread::spawn(move || get_still(addr, "/snapshot.jpg?full=1")))
        .collect();
    let answers: Vec<Response> = askers.into_iter().map(|a| a.join().unwrap()).collect();
    for r in &answers {
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(decode(&r.body).0, 640, "{:?}", r.header("x-picture-size"));
    }
    let taken = server.log_text().matches("took a 640x480 still").count() - taken_before;
    println!("4 requests at once: {taken} stills taken");
    assert!(taken <= 4, "{taken} stills for 4 requests");

    // Many stills leave nothing behind, in the server or its source process.
    let child = source_process(&server, patience());
    let (server_at_rest, child_at_rest) = (usage(server.child.id()), usage(child));
    for n in 0..20 {
        let r = get_still(addr, "/snapshot.jpg?full=1");
        assert_eq!(r.status, 200, "still {n}: {}", r.text());
    }
    viewer.next_frame();
    assert_eq!(
        source_process(&server, patience()),
        child,
        "the same process"
    );
    let deadline = Instant::now() + patience();
    loop {
        let now = (usage(server.child.id()), usage(child));
        let back = now.0 .0 <= server_at_rest.0
            && now.0 .1 <= server_at_rest.1
            && now.1 .0 <= child_at_rest.0
            && now.1 .1 <= child_at_rest.1;
        if back {
            println!(
                "(threads, fds) after 20 stills: server {:?} -> {:?}, source process {:?} -> {:?}",
                server_at_rest, now.0, child_at_rest, now.1
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after 20 stills (threads, fds): server {:?} -> {:?}, source process {:?} -> {:?}",
            server_at_rest,
            now.0,
            child_at_rest,
            now.1
        );
        viewer.next_frame();
    }
}

#[test]
fn a_source_process_killed_during_a_still_gives_a_clear_answer() {
    if !server_can_start_itself("the test pattern's own process") {
        return;
    }
    let server = isolated_pattern(&["--always-on"]);
    let addr = server.addr;
    server.wait_log("takes full-resolution stills", patience());
    let first = source_process(&server, patience());
    // Stopped, the process cannot answer: the request waits for it.
    kill(Pid::from_raw(first as i32), Signal::SIGSTOP).unwrap();
    let asker = thread::spawn(move || get_still(addr, "/snapshot.jpg?full=1"));
    server.wait_log(
        &format!("source process {first}: asked for a still"),
        patience(),
    );
    kill(Pid::from_raw(first as i32), Signal::SIGKILL).unwrap();
    let r = asker.join().unwrap();
    assert_eq!(r.status, 503, "{}", r.text());
    let why = r.text();
    assert!(why.contains("the camera's process ended"), "{why}");
    assert!(why.contains("try again shortly"), "{why}");
    println!("killed during a still: {why}");
    assert_eq!(r.header("retry-after"), Some("2"));

    // The next process takes stills again.
    let deadline = Instant::now() + patience();
    let second = loop {
        if let [pid] = children_of(server.child.id())[..] {
            if pid != first {
                break pid;
            }
        }
        assert!(Instant::now() < deadline, "no new source process");
        thread::sleep(Duration::from_millis(50));
    };
    server.wait_log(
        &format!("source process {second}: takes full-resolution stills"),
        patience(),
    );
    let r = get_still(addr, "/snapshot.jpg?full=1");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(decode(&r.body).0, 640);
}
