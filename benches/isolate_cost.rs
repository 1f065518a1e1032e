//! What a source in a process of its own (`--isolate on`) costs against the same
//! source inside the server (`--isolate off`): CPU time per frame delivered to a real
//! client, and resident memory, summed over the server and its source process; and how
//! long a change of a camera control takes to be answered (`POST /controls`, which
//! with `--isolate on` goes to the source process and back).
//!
//! The source is the test pattern, drawn and encoded in software at the asked size and
//! rate, so both runs do the same work apart from the pipe between the processes.
//!
//! ```text
//! cargo bench --bench isolate_cost                           # 640x480 at 30 fps, 15 s each
//! cargo bench --bench isolate_cost -- --size 1280x720 --seconds 20
//! ```

mod support;

use std::io::Read;
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use support::viewers::{bench_args, text_flag};
use support::{children_of, open_stream, post_json, proc_usage, start_server};

/// Changes timed in each run.
const CHANGES: usize = 40;

fn main() {
    let args = bench_args();
    let value = |name: &str| text_flag(&args, name);
    let size = value("--size").unwrap_or_else(|| "640x480".to_string());
    let fps = value("--fps").unwrap_or_else(|| "30".to_string());
    let seconds: u64 = value("--seconds").map_or(15, |s| s.parse().expect("--seconds N"));
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    println!("test pattern {size} at {fps} fps, software encoder, one client, {seconds} s a run");
    println!("machine: {cores} cores, shared by the client and the server\n");
    println!(
        "{:<14} {:>8} {:>10} {:>14} {:>16} {:>10} {:>22}",
        "--isolate",
        "frames",
        "fps",
        "CPU ms/frame",
        "RSS KiB (total)",
        "processes",
        "change ms (median/max)"
    );
    for isolate in ["off", "on"] {
        let r = run(isolate, &size, &fps, Duration::from_secs(seconds));
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let change = format!(
            "{:.2} / {:.2}",
            ms(r.changes[CHANGES / 2]),
            ms(r.changes[CHANGES - 1])
        );
        println!(
            "{:<14} {:>8} {:>10.1} {:>14.2} {:>16} {:>10} {:>22}",
            isolate,
            r.frames,
            r.frames as f64 / r.wall.as_secs_f64(),
            r.cpu_us as f64 / 1000.0 / r.frames.max(1) as f64,
            r.rss_kib,
            r.processes,
            change
        );
    }
}

struct Figures {
    frames: u64,
    wall: Duration,
    cpu_us: u64,
    rss_kib: u64,
    processes: usize,
    /// How long each of [`CHANGES`] changes of brightness took to be answered, sorted.
    changes: Vec<Duration>,
}

fn run(isolate: &str, size: &str, fps: &str, length: Duration) -> Figures {
    let server = start_server(
        &[
            "--source",
            "test",
            "--encoder",
            "software",
            "--size",
            size,
            "--fps",
            fps,
            "--isolate",
            isolate,
        ],
        Stdio::null(),
    );
    let addr = server.addr;
    let mut stream = open_stream(addr);
    // Warm up: the source (process) starts with the first viewer.
    let mut buf = vec![0u8; 256 * 1024];
    let warm_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < warm_until {
        let n = stream.read(&mut buf).expect("stream");
        assert!(n > 0, "the stream ended");
    }
    let pids = || {
        let mut pids = vec![server.child.id()];
        pids.extend(children_of(server.child.id()));
        pids
    };
    let cpu0: u64 = pids().into_iter().map(|p| proc_usage(p).cpu_us).sum();
    let start = Instant::now();
    let mut boundaries = 0u64;
    let mut tail = Vec::new();
    while start.elapsed() < length {
        let n = stream.read(&mut buf).expect("stream");
        assert!(n > 0, "the stream ended");
        // Count part boundaries, across read edges too.
        tail.extend_from_slice(&buf[..n]);
        boundaries += tail.windows(9).filter(|w| w == b"--FRAME\r\n").count() as u64;
        let keep = tail.len().saturating_sub(8);
        tail.drain(..keep);
    }
    let wall = start.elapsed();
    let now = pids();
    let cpu1: u64 = now.iter().map(|&p| proc_usage(p).cpu_us).sum();
    let rss_kib = now.iter().map(|&p| proc_usage(p).rss_kib).sum();
    // The stream keeps the source (process) running meanwhile.
    let mut changes: Vec<Duration> = (0..CHANGES)
        .map(|i| {
            let body = format!("{{\"brightness\": {}}}", i % 2 * 10);
            let asked = Instant::now();
            let (status, answer) = post_json(addr, "/controls", &body);
            let took = asked.elapsed();
            assert_eq!(status, 200, "{answer}");
            took
        })
        .collect();
    changes.sort();
    Figures {
        frames: boundaries,
        wall,
        cpu_us: cpu1.saturating_sub(cpu0),
        rss_kib,
        processes: now.len(),
        changes,
    }
}
