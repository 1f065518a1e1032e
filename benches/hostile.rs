//! Hostile-client benchmark: how fast a real client gets the page and the first frame of
//! the stream while idle connections and slowloris clients hold on, and what the attack
//! costs the server in threads and resident memory; then floods of header bytes.
//!
//! ```text
//! cargo bench --bench hostile                          # 1000 idle, 50 slowloris
//! cargo bench --bench hostile -- --idle 3000 --slow 200 --header-timeout 5
//! ```
//!
//! Idle connections wait in the kernel until the head timeout runs out (rounded up to
//! the kernel's SYN-ACK retransmission schedule: 3 s stays 3 s, 10 s becomes 15 s), then
//! reach the server all at once; the run measures both phases.

mod support;

use support::hostile;

use std::net::SocketAddr;
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use hostile::*;
use support::start_server;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let idle_n = flag(&args, "--idle").unwrap_or(1000);
    let slow_n = flag(&args, "--slow").unwrap_or(50);
    let head_timeout = flag(&args, "--header-timeout").unwrap_or(3);
    let limit = raise_fd_limit((idle_n + slow_n + 200) as u64);
    let idle_n = idle_n.min(limit.saturating_sub(slow_n as u64 + 100) as usize);

    let mut server = start_server(
        &[
            "--source",
            "test",
            "--size",
            "320x240",
            "--fps",
            "20",
            "--header-timeout",
            &head_timeout.to_string(),
        ],
        Stdio::null(),
    );
    let addr = server.addr;
    let watch = ProcWatch::start(server.child.id());
    time_first_frame(addr).expect("the server streams");
    thread::sleep(Duration::from_millis(500));
    let (rest_threads, rest_rss) = watch.now();
    println!("release binary, 320x240 test pattern at 20 fps, --header-timeout {head_timeout}");
    println!("at rest: {rest_threads} threads, {rest_rss} KiB resident\n");

    let opened = Instant::now();
    let idle = open_idle(addr, idle_n);
    let slow = Slowloris::start(addr, slow_n, Duration::from_millis(500));
    println!(
        "attack: {} idle connections and {slow_n} slowloris clients (a header line every 0.5 s) opened in {:.2} s",
        idle.len(),
        opened.elapsed().as_secs_f64()
    );
    thread::sleep(Duration::from_millis(300));
    let (pages, frames) = real_clients(addr, 5);
    let (threads, rss) = watch.now();
    println!("while the idle connections wait in the kernel:");
    println!("  page {pages}; first frame {frames}");
    println!("  server: {threads} threads, {rss} KiB resident");

    // Until every idle connection has been closed by the server (bounded).
    let deadline = Instant::now() + Duration::from_secs(head_timeout as u64 * 2 + 30);
    let mut first_closed = None;
    let mut surge_pages = Vec::new();
    while count_ended(&idle) < idle.len() && Instant::now() < deadline {
        if first_closed.is_none() && count_ended(&idle) > 0 {
            first_closed = Some(opened.elapsed());
        }
        if first_closed.is_some() && surge_pages.len() < 5 {
            if let Some(t) = time_page(addr) {
                surge_pages.push(t);
            }
        }
        thread::sleep(Duration::from_millis(50));
    }
    let all_closed = opened.elapsed();
    let ended = count_ended(&idle);
    let slow_ended: Vec<Duration> = slow
        .ended
        .lock()
        .unwrap()
        .iter()
        .flatten()
        .map(|(at, _)| *at)
        .collect();
    println!(
        "idle connections reached the server and were closed: first at {:.1} s, {ended} of {} by {:.1} s",
        first_closed.unwrap_or_default().as_secs_f64(),
        idle.len(),
        all_closed.as_secs_f64()
    );
    println!("  page meanwhile {}", summary(&surge_pages));
    println!(
        "slowloris clients cut off: {} of {slow_n}, at {}",
        slow_ended.len(),
        summary(&slow_ended)
    );
    let (frames_after, pages_after) = {
        let (p, f) = real_clients(addr, 5);
        (f, p)
    };
    println!("after: page {pages_after}; first frame {frames_after}");
    thread::sleep(Duration::from_secs(6));
    let (peak_threads, peak_rss) = watch.peak();
    let (threads, rss) = watch.now();
    println!(
        "server threads: peak {peak_threads}, 6 s later {threads}; resident: peak {peak_rss} KiB, 6 s later {rss} KiB\n"
    );
    drop(slow);
    drop(idle);

    // Floods of header bytes: a long request line, a long header, endless headers.
    let (_, rss_before) = watch.now();
    let floods: Vec<_> = (0..30)
        .map(|kind| thread::spawn(move || flood_head(addr, kind, 64 << 20)))
        .collect();
    let taken: Vec<usize> = floods.into_iter().map(|f| f.join().unwrap().0).collect();
    let (_, rss_peak) = watch.peak();
    let (_, rss_after) = watch.now();
    println!(
        "30 clients each sending an endless request head (up to 64 MiB): the server took at most {} bytes of one (mean {}); resident {rss_before} KiB before, {rss_after} KiB after, peak so far {rss_peak} KiB",
        taken.iter().max().unwrap(),
        taken.iter().sum::<usize>() / taken.len()
    );
    let _ = server.child.kill();
    let _ = server.child.wait();
}

/// Times `n` page loads and `n` first frames; returns both summaries.
fn real_clients(addr: SocketAddr, n: usize) -> (String, String) {
    let pages: Vec<Duration> = (0..n).filter_map(|_| time_page(addr)).collect();
    let frames: Vec<Duration> = (0..n).filter_map(|_| time_first_frame(addr)).collect();
    let failed = |got: usize| {
        if got < n {
            format!(" ({} of {n} FAILED)", n - got)
        } else {
            String::new()
        }
    };
    (
        format!("{}{}", summary(&pages), failed(pages.len())),
        format!("{}{}", summary(&frames), failed(frames.len())),
    )
}

fn summary(times: &[Duration]) -> String {
    if times.is_empty() {
        return "none".into();
    }
    let mut ms: Vec<f64> = times.iter().map(|t| t.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    format!(
        "median {:.1} ms, max {:.1} ms over {}",
        ms[ms.len() / 2],
        ms[ms.len() - 1],
        ms.len()
    )
}

fn flag(args: &[String], name: &str) -> Option<usize> {
    let i = args.iter().position(|a| a == name)?;
    let v = args.get(i + 1)?;
    Some(
        v.parse()
            .unwrap_or_else(|_| panic!("{name} wants a number, not {v}")),
    )
}
