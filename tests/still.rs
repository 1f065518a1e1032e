//! Full-resolution stills (`/snapshot.jpg?full=1`) against the real server: the test
//! pattern's still is decoded back at its full size and shows the frame the stream was
//! at; the stream goes on around it; requests at once share the camera; sources that
//! take no stills say so; and a HEAD takes none. The same through a source process of
//! its own: `isolated_stills.rs`.

mod common;

use std::net::SocketAddr;
use std::thread;
use std::time::Duration;

use common::*;
use picam_stream::source::pattern::read_counter;

/// `GET path` with room for a still's time.
fn get_still(addr: SocketAddr, path: &str) -> Response {
    get_patiently(addr, path, Duration::from_secs(120))
}

fn pattern_server(extra: &[&str]) -> Server {
    let mut args = vec!["--source", "test", "--size", "320x240", "--fps", "10"];
    args.extend_from_slice(extra);
    Server::start(&args)
}

#[test]
fn a_still_is_the_patterns_current_frame_at_full_size() {
    let server = pattern_server(&[]);
    let addr = server.addr;
    let mut stream = MjpegClient::open(addr, "/stream.mjpg");
    let mut frame_number = || {
        let (w, h, rgb) = decode(&stream.next_jpeg());
        assert_eq!((w, h), (320, 240), "the stream keeps its size");
        read_counter(&rgb, w, h).expect("the stream's frame number reads back")
    };
    let before = frame_number();
    // The viewer goes on reading while the still is taken, as a browser does.
    let asker = thread::spawn(move || get_still(addr, "/snapshot.jpg?full=1"));
    let mut read = 0;
    while !asker.is_finished() {
        frame_number();
        read += 1;
        assert!(read < 3000, "the still never came");
    }
    let r = asker.join().unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("image/jpeg"));
    assert_eq!(r.header("x-picture-size"), Some("640x480"));
    let (w, h, rgb) = decode(&r.body);
    assert_eq!((w, h), (640, 480));
    let still = read_counter(&rgb, w, h).expect("the still's frame number reads back");
    // Drawn between two frames of the stream, after the one seen before it was asked.
    // (The counter wraps only after thousands of frames.)
    assert!(
        still >= before,
        "still at frame {still}, stream was at {before}"
    );
    // The stream goes on with frames newer than the still.
    let later = (0..100).map(|_| frame_number()).find(|&n| n > still);
    assert!(later.is_some(), "the stream did not go on after the still");
    // A plain snapshot is still the stream's size.
    let (w, h, _) = decode(&get(addr, "/snapshot.jpg").body);
    assert_eq!((w, h), (320, 240));
}

#[test]
fn a_sleeping_pattern_wakes_for_a_still_and_requests_at_once_all_get_one() {
    // Nobody watches: the pattern sleeps until the request wakes it.
    let server = pattern_server(&[]);
    let addr = server.addr;
    let askers: Vec<_> = (0..4)
        .map(|_| thread::spawn(move || get_still(addr, "/snapshot.jpg?full")))
        .collect();
    for asker in askers {
        let r = asker.join().unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        let (w, h, _) = decode(&r.body);
        assert_eq!((w, h), (640, 480));
    }
    let status = get(addr, "/status");
    assert_eq!(status.status, 200);
}

#[test]
fn sources_without_stills_say_so_and_head_takes_none() {
    let mut server = Server::start_with(&["--source", "stdin"], true);
    let _stdin = server.stdin.take();
    let r = get_still(server.addr, "/snapshot.jpg?full=1");
    assert_eq!(r.status, 501, "{}", r.text());
    assert!(
        r.text().contains("no full-resolution stills"),
        "{}",
        r.text()
    );
    let server = pattern_server(&[]);
    let r = request(server.addr, "HEAD", "/snapshot.jpg?full=1");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("image/jpeg"));
    assert!(r.body.is_empty());
}
