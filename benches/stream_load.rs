//! Load benchmark: many real TCP clients on `/stream.mjpg` against the release binary,
//! fed paced 640x480 frames through `--source stdin`.
//!
//! Every frame carries, in a JPEG comment segment, its sequence number and the moment
//! it was written to the server, so each client measures publish-to-receive latency and
//! the frames it never got. The server's CPU time and memory come from /proc.
//!
//! ```text
//! cargo bench --bench stream_load                      # the three standard scenarios
//! cargo bench --bench stream_load -- --clients 200 --seconds 20
//! cargo bench --bench stream_load -- --clients 50 --slow 10 --slow-rate 200000
//! ```

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use support::viewers::{
    bench_args, client, flag, make_frames, percentile, ClientResult, FedServer,
};
use support::{proc_usage, ProcUsage};

#[derive(Clone, Debug)]
struct Scenario {
    name: String,
    clients: usize,
    slow: usize,
    slow_rate: usize,
    fps: u32,
    seconds: u64,
}

fn main() {
    let args = bench_args();
    let scenarios = if args.iter().any(|a| a.starts_with("--clients")) {
        vec![custom(&args)]
    } else {
        let seconds = flag(&args, "--seconds").unwrap_or(10);
        vec![
            scenario("100 clients", 100, 0, seconds),
            scenario("500 clients", 500, 0, seconds),
            scenario("50 clients, 10 slow (200 KB/s)", 50, 10, seconds),
        ]
    };
    let epoch = Instant::now();
    println!("generating frames ...");
    let frames = make_frames(60);
    let mean = frames.iter().map(Vec::len).sum::<usize>() / frames.len();
    println!(
        "{} distinct 640x480 frames, mean {} bytes",
        frames.len(),
        mean
    );
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    println!("machine: {cores} cores; load tool and server share them\n");
    for s in scenarios {
        run(&s, &frames, epoch);
    }
}

fn scenario(name: &str, clients: usize, slow: usize, seconds: u64) -> Scenario {
    Scenario {
        name: name.into(),
        clients,
        slow,
        slow_rate: 200_000,
        fps: 30,
        seconds,
    }
}

fn custom(args: &[String]) -> Scenario {
    Scenario {
        name: "custom".into(),
        clients: flag(args, "--clients").unwrap_or(100) as usize,
        slow: flag(args, "--slow").unwrap_or(0) as usize,
        slow_rate: flag(args, "--slow-rate").unwrap_or(200_000) as usize,
        fps: flag(args, "--fps").unwrap_or(30) as u32,
        seconds: flag(args, "--seconds").unwrap_or(10),
    }
}

fn run(s: &Scenario, frames: &[Vec<u8>], epoch: Instant) {
    println!(
        "== {}: {} clients ({} slow), {} fps, {} s ==",
        s.name, s.clients, s.slow, s.fps, s.seconds
    );
    let mut fed = FedServer::start(frames, s.fps, epoch);
    let (pid, published) = (fed.pid, fed.published.clone());
    let measuring = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let ready = Arc::new(Barrier::new(s.clients + 1));
    let handles: Vec<_> = (0..s.clients)
        .map(|i| {
            let slow = (i < s.slow).then_some(s.slow_rate);
            let (m, d, r) = (measuring.clone(), done.clone(), ready.clone());
            let addr = fed.server.addr;
            thread::Builder::new()
                .stack_size(128 * 1024)
                .spawn(move || client(addr, slow, epoch, m, d, r))
                .unwrap()
        })
        .collect();
    ready.wait();
    thread::sleep(Duration::from_secs(2));
    let cpu0 = proc_usage(pid).cpu_us;
    let seq0 = published.load(Ordering::Relaxed);
    measuring.store(true, Ordering::SeqCst);
    thread::sleep(Duration::from_secs(s.seconds));
    measuring.store(false, Ordering::SeqCst);
    let ProcUsage {
        cpu_us: cpu1,
        rss_kib,
        threads,
    } = proc_usage(pid);
    let seq1 = published.load(Ordering::Relaxed);
    done.store(true, Ordering::SeqCst);
    // Clients blocked in a read wake up with the next frame, or with the kill below.
    thread::sleep(Duration::from_millis(300));
    fed.stop();
    let results: Vec<ClientResult> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    drop(fed);

    let frames_published = (seq1 - seq0).max(1);
    let report = |label: &str, group: Vec<&ClientResult>| {
        if group.is_empty() {
            return;
        }
        let mut fps: Vec<f64> = group
            .iter()
            .map(|r| r.frames as f64 / s.seconds as f64)
            .collect();
        fps.sort_by(f64::total_cmp);
        let mut share: Vec<f64> = group
            .iter()
            .map(|r| r.frames as f64 / frames_published as f64 * 100.0)
            .collect();
        share.sort_by(f64::total_cmp);
        let mut lat: Vec<u32> = group
            .iter()
            .flat_map(|r| r.latencies_us.iter().copied())
            .collect();
        lat.sort_unstable();
        let skipped: u64 = group.iter().map(|r| r.skipped).sum();
        println!(
            "  {label:<6} {:>4} clients | fps min {:>5.1} median {:>5.1} | frames received: min {:>5.1} % median {:>5.1} % | skipped {:>6} | latency p50 {:>7.2} ms p99 {:>8.2} ms",
            group.len(),
            fps[0],
            fps[fps.len() / 2],
            share[0],
            share[share.len() / 2],
            skipped,
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
        );
    };
    report("fast", results.iter().filter(|r| !r.slow).collect());
    report("slow", results.iter().filter(|r| r.slow).collect());
    let failed: Vec<&String> = results.iter().filter_map(|r| r.error.as_ref()).collect();
    if let Some(first) = failed.first() {
        println!("  {} clients failed, e.g.: {first}", failed.len());
    }
    let delivered: u64 = results.iter().map(|r| r.frames).sum();
    println!(
        "  server: {:.1} us CPU per delivered frame ({} frames published, {} delivered) | RSS {:.1} MB | {} threads",
        (cpu1 - cpu0) as f64 / delivered.max(1) as f64,
        frames_published,
        delivered,
        rss_kib as f64 / 1024.0,
        threads
    );
    println!();
}
