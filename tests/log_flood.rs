//! Bad input by the megabyte against the real binary: every dropped frame is counted in
//! `/status`, but the log gets a line now and then, not a line per frame.
//!
//! ```text
//! cargo test --test log_flood -- --nocapture
//! ```

mod common;

use std::io::Write;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

/// Start-of-image markers, each cut short by the next: every one is a dropped frame
/// (splitter: truncated).
const SOI_FLOOD: usize = 3_000_000;
/// Whole but empty JPEGs (start and end marker only): each passes the splitter and is
/// dropped by the JPEG check.
const EMPTY_FLOOD: usize = 500_000;

#[test]
fn a_flood_of_bad_frames_is_counted_but_logged_a_few_times() {
    let mut server = Server::start_with(&["--source", "stdin", "--no-mdns"], true);
    let mut stdin = server.stdin.take().expect("the server's standard input");
    let good = make_jpeg(160, 120, 7);

    let mut flood = [0xFF, 0xD8].repeat(SOI_FLOOD);
    flood.extend_from_slice(&[0xFF, 0xD8, 0xFF, 0xD9].repeat(EMPTY_FLOOD));
    flood.extend_from_slice(&good);
    let bytes = flood.len();
    let started = Instant::now();
    // Written from a thread, so that a server that stopped reading fails the test
    // instead of blocking it.
    let (done, written) = mpsc::channel();
    let writer = std::thread::spawn(move || {
        let result = stdin.write_all(&flood).and_then(|_| stdin.flush());
        let _ = done.send(result.map_err(|e| e.to_string()));
        stdin
    });
    let limit = Duration::from_secs(30) * slow_factor();
    match written.recv_timeout(limit) {
        Ok(result) => result.expect("writing the flood"),
        Err(_) => panic!(
            "the server took more than {limit:?} to read {bytes} bytes; log:\n{}",
            server.log_text()
        ),
    }
    let expected = (SOI_FLOOD + EMPTY_FLOOD) as u64;
    let status = server.wait_status(
        Duration::from_secs(20),
        "every bad frame counted and the good one published",
        |s| s["frames_dropped"] == expected && s["frames_captured"].as_u64() >= Some(1),
    );
    let took = started.elapsed();
    // Kept open until here: standard input that ends would be a problem of its own.
    let _stdin = writer.join().expect("the writer thread");

    let log = server.log_text();
    let dropped_lines = log.lines().filter(|l| l.contains("dropped a")).count();
    println!(
        "{bytes} bytes, {expected} bad frames in {:.1} s: {} log lines ({} bytes), \
         {dropped_lines} about dropped frames; status {status}",
        took.as_secs_f64(),
        log.lines().count(),
        log.len()
    );
    // At most two lines per kind (the first at once, one more per ten seconds) for as
    // long as the flood lasted.
    let per_kind = 1 + took.as_secs() as usize / 10;
    assert!(
        dropped_lines >= 2 && dropped_lines <= 2 * per_kind,
        "{dropped_lines} lines about dropped frames:\n{log}"
    );
    assert!(
        log.lines().count() < 100,
        "a log of {} lines",
        log.lines().count()
    );
    assert!(log.len() < 20_000, "a log of {} bytes", log.len());
    assert!(log.contains("dropped a truncated frame (2 bytes)"), "{log}");
    assert!(log.contains("dropped a 4 byte frame"), "{log}");

    // The server is still serving, and still streams what good frames come.
    let snapshot = get(server.addr, "/snapshot.jpg");
    assert_eq!(snapshot.status, 200);
    assert_eq!(
        snapshot.body, good,
        "the snapshot is the good frame after the flood"
    );
}
