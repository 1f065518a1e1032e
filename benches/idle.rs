//! What the release server spends with nobody watching: CPU time as a share of one
//! core, from /proc (user + system time of the server, of its children that ended, and
//! of every process still under it, such as an `exec:` command and its guardian).
//!
//! Each run starts the server, lets one viewer watch for 2 s (so the source has run
//! once), waits until the source has gone idle (the 3 s linger and the stop), then
//! measures for `--seconds` with no client at all:
//!
//! * the test pattern, idle;
//! * an `exec:` command (a shell loop sending a JPEG 30 times a second), idle;
//! * the `rpicam` source with the test stand-in for `rpicam-vid`
//!   (`tests/fixtures/fake-rpicam-vid`, raw I420 pictures), idle;
//! * all three again with `--always-on`, for comparison: what idling saves, and what a
//!   frame costs the server itself (its own CPU time per frame, without the programs it
//!   runs; with the software encoder, as this machine has no hardware one).
//!
//! ```text
//! cargo bench --bench idle                    # 30 s a run
//! cargo bench --bench idle -- --seconds 5     # a quick look (or PICAM_IDLE_SECONDS=5)
//! ```
//!
//! The goal: below 1 % of a core when idle.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use support::{children_of, open_stream, proc_usage, start_server};

/// The server's linger after the last viewer, plus time for a command to be stopped.
const SETTLE: Duration = Duration::from_secs(6);

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let seconds: u64 = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .or_else(|| std::env::var("PICAM_IDLE_SECONDS").ok())
        .map_or(30, |s| s.parse().expect("--seconds N"));
    let length = Duration::from_secs(seconds.max(1));

    let dir = std::env::temp_dir().join(format!("picam-idle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let command = write_command(&dir);
    let exec = format!("exec:{command}");
    // The bench runs one thread here; the servers it starts inherit the variable.
    std::env::set_var(
        "PICAM_RPICAM_VID",
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake-rpicam-vid"),
    );

    println!("release binary, 640x480 at 30 fps, {seconds} s measured a run, no client");
    println!(
        "{:<34} {:>8} {:>10} {:>12} {:>10} {:>16}",
        "run", "frames", "CPU ms", "% of a core", "processes", "server ms/frame"
    );
    let runs: [(&str, Vec<&str>); 6] = [
        ("test pattern, idle", vec!["--source", "test"]),
        ("exec: command, idle", vec!["--source", &exec]),
        ("rpicam (stand-in), idle", vec!["--source", "rpicam"]),
        (
            "test pattern, --always-on",
            vec!["--source", "test", "--always-on"],
        ),
        (
            "exec: command, --always-on",
            vec!["--source", &exec, "--always-on"],
        ),
        (
            "rpicam (stand-in), --always-on",
            vec!["--source", "rpicam", "--always-on"],
        ),
    ];
    for (name, source_args) in runs {
        let r = run(&source_args, length);
        let per_frame = if r.frames > 0 {
            format!("{:.2}", r.server_cpu_us as f64 / r.frames as f64 / 1000.0)
        } else {
            "-".to_string()
        };
        println!(
            "{:<34} {:>8} {:>10} {:>12.2} {:>10} {:>16}",
            name,
            r.frames,
            r.cpu_us / 1000,
            r.cpu_us as f64 / r.wall.as_micros() as f64 * 100.0,
            r.processes,
            per_frame
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A JPEG in `dir` and the shell command that sends it 30 times a second.
fn write_command(dir: &Path) -> String {
    let (w, h) = (640u16, 480u16);
    let mut rgb = Vec::with_capacity(w as usize * h as usize * 3);
    for y in 0..h as usize {
        for x in 0..w as usize {
            rgb.extend_from_slice(&[x as u8, y as u8, (x ^ y) as u8]);
        }
    }
    let mut jpeg = Vec::new();
    jpeg_encoder::Encoder::new(&mut jpeg, 80)
        .encode(&rgb, w, h, jpeg_encoder::ColorType::Rgb)
        .expect("encode the frame");
    let frame = dir.join("frame.jpg");
    std::fs::write(&frame, jpeg).unwrap();
    format!("while :; do cat '{}'; sleep 0.033; done", frame.display())
}

struct Figures {
    frames: u64,
    wall: Duration,
    cpu_us: u64,
    /// The server's own CPU time, without the processes under it.
    server_cpu_us: u64,
    processes: usize,
}

fn run(source_args: &[&str], length: Duration) -> Figures {
    let mut args = vec!["--size", "640x480", "--fps", "30"];
    args.extend_from_slice(source_args);
    let server = start_server(&args, Stdio::null());
    let pid = server.child.id();
    watch(server.addr, Duration::from_secs(2));
    thread::sleep(SETTLE);
    let frames_before = frames(server.addr);
    let cpu_before = tree_cpu_us(pid);
    let server_before = proc_usage(pid).cpu_us;
    let started = Instant::now();
    thread::sleep(length);
    let cpu_after = tree_cpu_us(pid);
    let server_after = proc_usage(pid).cpu_us;
    let wall = started.elapsed();
    let frames_after = frames(server.addr);
    Figures {
        frames: frames_after.saturating_sub(frames_before),
        wall,
        cpu_us: cpu_after.saturating_sub(cpu_before),
        server_cpu_us: server_after.saturating_sub(server_before),
        processes: 1 + descendants(pid).len(),
    }
}

/// Reads `/stream.mjpg` for `how_long`.
fn watch(addr: SocketAddr, how_long: Duration) {
    let mut stream = open_stream(addr);
    let mut buf = vec![0u8; 256 * 1024];
    let until = Instant::now() + how_long;
    while Instant::now() < until {
        let n = stream.read(&mut buf).expect("stream");
        assert!(n > 0, "the stream ended");
    }
}

/// `frames_captured` from `/status`.
fn frames(addr: SocketAddr) -> u64 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /status HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(body).expect("/status is JSON");
    v["frames_captured"].as_u64().unwrap_or(0)
}

/// Every process under `pid` (children, their children, ...).
fn descendants(pid: u32) -> Vec<u32> {
    let mut found = children_of(pid);
    let mut next = 0;
    while next < found.len() {
        let more = children_of(found[next]);
        found.extend(more);
        next += 1;
    }
    found
}

/// CPU time (user + system, microseconds) of `pid` and its children that ended and
/// were waited for (`utime stime cutime cstime`).
fn cpu_us(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = (11..=14)
        .map(|i| {
            fields
                .get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum();
    // /proc counts in USER_HZ, which Linux fixes at 100 for user space.
    ticks * 10_000
}

/// CPU time of `pid` and of every process under it, living or ended.
fn tree_cpu_us(pid: u32) -> u64 {
    cpu_us(pid) + descendants(pid).into_iter().map(cpu_us).sum::<u64>()
}
