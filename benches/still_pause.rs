//! What a full-resolution still (`/snapshot.jpg?full=1`) costs the viewers: the longest
//! wait between two frames of the stream around each still, against the usual wait,
//! and how long the still's request took.
//!
//! The source is the test pattern, whose still is the current frame drawn and encoded
//! in software at twice the stream's width and height (on a camera, the time to switch
//! sizes is added: see docs/BENCHMARKS.md for vivid in the VM).
//!
//! ```text
//! cargo bench --bench still_pause                      # 640x480 at 30 fps, 5 stills
//! cargo bench --bench still_pause -- --size 1280x720 --stills 10
//! ```

mod support;

use std::net::SocketAddr;
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use support::viewers::{bench_args, text_flag};
use support::{get_patiently, start_server, MjpegClient};

fn still(addr: SocketAddr) -> (u16, usize) {
    let r = get_patiently(addr, "/snapshot.jpg?full=1", Duration::from_secs(60));
    (r.status, r.body.len())
}

fn main() {
    let args = bench_args();
    let value = |name: &str| text_flag(&args, name);
    let size = value("--size").unwrap_or_else(|| "640x480".to_string());
    let stills: usize = value("--stills").map_or(5, |s| s.parse().expect("--stills N"));
    let server = start_server(
        &["--source", "test", "--size", &size, "--fps", "30"],
        Stdio::null(),
    );
    let addr = server.addr;
    let mut viewer = MjpegClient::open(addr, "/stream.mjpg");
    // The usual wait, over 60 frames.
    for _ in 0..10 {
        viewer.next_jpeg();
    }
    let mut usual = Vec::new();
    let mut last = Instant::now();
    for _ in 0..60 {
        viewer.next_jpeg();
        usual.push(last.elapsed());
        last = Instant::now();
    }
    usual.sort();
    println!(
        "test pattern {size} at 30 fps; stills at twice its width and height\n\
         usual wait between frames: median {:.1} ms, longest {:.1} ms",
        ms(usual[usual.len() / 2]),
        ms(*usual.last().unwrap())
    );
    println!(
        "{:>6} {:>12} {:>10} {:>26}",
        "still", "request ms", "bytes", "longest frame wait ms"
    );
    for n in 1..=stills {
        let asked = Instant::now();
        let asker = thread::spawn(move || still(addr));
        let mut longest = Duration::ZERO;
        last = Instant::now();
        let mut after = 0;
        let mut answered = None;
        // Frames until the still is back and three more.
        while after < 3 {
            viewer.next_jpeg();
            longest = longest.max(last.elapsed());
            last = Instant::now();
            if asker.is_finished() {
                answered.get_or_insert(asked.elapsed());
                after += 1;
            }
        }
        let (status, bytes) = asker.join().unwrap();
        assert_eq!(status, 200, "the still was refused");
        println!(
            "{n:>6} {:>12.0} {bytes:>10} {:>26.1}",
            ms(answered.unwrap_or_default()),
            ms(longest)
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
