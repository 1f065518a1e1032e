//! Software JPEG on several threads (`--encode-workers`), against the real binary: the
//! test pattern's frames reach a stream in capture order and decode, the encoding
//! threads end when the last viewer has gone, and bad counts are refused at start.
//!
//! The order is read from the pictures themselves: the test pattern draws its frame
//! number as a strip of blocks (`source::pattern::read_counter`).

mod common;

use std::time::{Duration, Instant};

use common::*;
use picam_stream::source::pattern::read_counter;

/// Upper bound on every wait for something the server should do by itself.
fn patience() -> Duration {
    Duration::from_secs(15) * slow_factor()
}

/// The server with the test pattern at `size` and `fps`, encoding on `workers`.
fn pattern_server(size: &str, fps: &str, workers: &str) -> Server {
    let args = ["--source", "test", "--size", size, "--fps", fps];
    Server::start(&[&args[..], &["--encode-workers", workers]].concat())
}

/// Threads of `pid` that encode JPEG.
fn encoding_threads(pid: u32) -> usize {
    thread_names(pid)
        .iter()
        .filter(|n| n.starts_with("encode-"))
        .count()
}

/// Reads `n` distinct frames of a stream and returns the frame number each carries;
/// each one must decode at the asked size. The stream's keep-alive repeats of the
/// frame before (the same bytes again, sent when no new frame came for a second, as
/// happens while an unoptimised build starts) are left out.
fn frame_numbers(client: &mut MjpegClient, n: usize, (w, h): (usize, usize)) -> Vec<u64> {
    let mut numbers = Vec::with_capacity(n);
    let mut last = Vec::new();
    while numbers.len() < n {
        let jpeg = client.next_jpeg();
        if jpeg == last {
            continue;
        }
        let (dw, dh, pixels) = decode(&jpeg);
        assert_eq!((dw, dh), (w, h));
        numbers.push(read_counter(&pixels, w, h).expect("the frame number reads back"));
        last = jpeg;
    }
    numbers
}

#[test]
fn frames_arrive_in_capture_order_with_2_and_4_workers() {
    for workers in ["2", "4"] {
        // As fast as the pattern goes, so that the workers overlap all the time.
        let server = pattern_server("320x240", "120", workers);
        server.wait_log(
            &format!("on {workers} workers (--encode-workers {workers})"),
            patience(),
        );
        let mut client = MjpegClient::open(server.addr, "/stream.mjpg");
        let numbers = frame_numbers(&mut client, 100, (320, 240));
        let backwards: Vec<_> = numbers.windows(2).filter(|w| w[0] >= w[1]).collect();
        assert!(
            backwards.is_empty(),
            "{workers} workers: frames out of order {backwards:?} in {numbers:?}"
        );
        let status = server.status();
        assert_eq!(status["encode_workers"], workers.parse::<u64>().unwrap());
        assert!(status["frames_dropped_workers_busy"].is_u64(), "{status}");
        let pid = server.child.id();
        assert_eq!(
            encoding_threads(pid),
            workers.parse::<usize>().unwrap(),
            "{:?}",
            thread_names(pid)
        );
    }
}

#[test]
fn encoding_threads_end_after_the_last_viewer() {
    let server = pattern_server("320x240", "30", "4");
    let pid = server.child.id();
    // Nobody has watched yet: no encoding threads.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(encoding_threads(pid), 0, "{:?}", thread_names(pid));
    let at_rest = proc_usage(pid).threads;
    {
        let mut client = MjpegClient::open(server.addr, "/stream.mjpg");
        frame_numbers(&mut client, 10, (320, 240));
        assert_eq!(encoding_threads(pid), 4, "{:?}", thread_names(pid));
    }
    // The viewer is gone: after the linger the pattern rests and its workers are joined.
    let deadline = Instant::now() + patience();
    loop {
        let (encoding, all) = (encoding_threads(pid), proc_usage(pid).threads);
        if encoding == 0 && all <= at_rest {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{encoding} encoding threads, {all} in all (at rest {at_rest}): {:?}",
            thread_names(pid)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A new viewer starts them again.
    let mut client = MjpegClient::open(server.addr, "/stream.mjpg");
    frame_numbers(&mut client, 5, (320, 240));
    assert_eq!(encoding_threads(pid), 4);
}

#[test]
fn a_source_in_its_own_process_reports_its_workers() {
    if !server_can_start_itself("a source in its own process") {
        return;
    }
    let args = [
        "--source",
        "test",
        "--size",
        "320x240",
        "--encode-workers",
        "3",
    ];
    let server = Server::start(&[&args[..], &["--isolate", "on"]].concat());
    let mut client = MjpegClient::open(server.addr, "/stream.mjpg");
    let numbers = frame_numbers(&mut client, 20, (320, 240));
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    // The workers run in the source's process; /status hears of them from it.
    assert_eq!(encoding_threads(server.child.id()), 0);
    server.wait_status(patience(), "the workers of the source process", |s| {
        s["encode_workers"] == 3
    });
}

#[test]
fn one_worker_encodes_on_the_source_thread() {
    let server = pattern_server("640x480", "30", "1");
    server.wait_log(
        "on the source's own thread (--encode-workers 1)",
        patience(),
    );
    let mut client = MjpegClient::open(server.addr, "/stream.mjpg");
    let numbers = frame_numbers(&mut client, 5, (640, 480));
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    assert_eq!(encoding_threads(server.child.id()), 0);
    assert_eq!(server.status()["encode_workers"], 1);
}

#[test]
fn bad_worker_counts_are_refused_at_start() {
    let expected = "expected auto or a number from 1 to 8";
    for (args, env, named) in [
        (
            vec!["--encode-workers", "0"],
            vec![],
            "'0' for --encode-workers",
        ),
        (
            vec!["--encode-workers", "9"],
            vec![],
            "'9' for --encode-workers",
        ),
        (
            vec!["--encode-workers", "abc"],
            vec![],
            "'abc' for --encode-workers",
        ),
        (
            vec![],
            vec![("PICAM_ENCODE_WORKERS", "abc")],
            "'abc' for PICAM_ENCODE_WORKERS (--encode-workers)",
        ),
    ] {
        let out = server_command()
            .args(["--listen", "127.0.0.1:0", "--source", "test"])
            .args(&args)
            .envs(env.iter().copied())
            .output()
            .expect("run the binary");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
        let line = format!("invalid value {named}: {expected}");
        assert!(stderr.contains(&line), "{args:?} {env:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    }
}
