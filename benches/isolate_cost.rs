//! What a source in a process of its own (`--isolate on`) costs against the same
//! source inside the server (`--isolate off`): CPU time per frame delivered to a real
//! client, and resident memory, summed over the server and its source process.
//!
//! The source is the test pattern, drawn and encoded in software at the asked size and
//! rate, so both runs do the same work apart from the pipe between the processes.
//!
//! ```text
//! cargo bench --bench isolate_cost                           # 640x480 at 30 fps, 15 s each
//! cargo bench --bench isolate_cost -- --size 1280x720 --seconds 20
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let size = value("--size").unwrap_or_else(|| "640x480".to_string());
    let fps = value("--fps").unwrap_or_else(|| "30".to_string());
    let seconds: u64 = value("--seconds").map_or(15, |s| s.parse().expect("--seconds N"));
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    println!("test pattern {size} at {fps} fps, software encoder, one client, {seconds} s a run");
    println!("machine: {cores} cores, shared by the client and the server\n");
    println!(
        "{:<14} {:>8} {:>10} {:>14} {:>16} {:>10}",
        "--isolate", "frames", "fps", "CPU ms/frame", "RSS KiB (total)", "processes"
    );
    for isolate in ["off", "on"] {
        let r = run(isolate, &size, &fps, Duration::from_secs(seconds));
        println!(
            "{:<14} {:>8} {:>10.1} {:>14.2} {:>16} {:>10}",
            isolate,
            r.frames,
            r.frames as f64 / r.wall.as_secs_f64(),
            r.cpu_us as f64 / 1000.0 / r.frames.max(1) as f64,
            r.rss_kib,
            r.processes
        );
    }
}

struct Figures {
    frames: u64,
    wall: Duration,
    cpu_us: u64,
    rss_kib: u64,
    processes: usize,
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(isolate: &str, size: &str, fps: &str, length: Duration) -> Figures {
    let mut child = Command::new(env!("CARGO_BIN_EXE_picam-stream"))
        .args(["--listen", "127.0.0.1:0", "--no-mdns", "--source", "test"])
        .args(["--encoder", "software", "--size", size, "--fps", fps])
        .args(["--isolate", isolate])
        .env("RUST_LOG", "warn,picam_stream=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the server");
    let stderr = child.stderr.take().unwrap();
    let server = Server(child);
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(a) = line.split("listening on ").nth(1) {
                let _ = tx.send(a.trim().to_string());
            }
        }
    });
    let addr: SocketAddr = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("server start")
        .parse()
        .unwrap();
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET /stream.mjpg HTTP/1.1\r\nHost: bench\r\n\r\n")
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // Warm up: the source (process) starts with the first viewer.
    let mut buf = vec![0u8; 256 * 1024];
    let warm_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < warm_until {
        let n = stream.read(&mut buf).expect("stream");
        assert!(n > 0, "the stream ended");
    }
    let pids = || {
        let mut pids = vec![server.0.id()];
        pids.extend(children_of(server.0.id()));
        pids
    };
    let cpu0: u64 = pids().into_iter().map(|p| usage(p).0).sum();
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
    let cpu1: u64 = now.iter().map(|&p| usage(p).0).sum();
    let rss_kib = now.iter().map(|&p| usage(p).1).sum();
    Figures {
        frames: boundaries,
        wall,
        cpu_us: cpu1.saturating_sub(cpu0),
        rss_kib,
        processes: now.len(),
    }
}

/// Processes whose parent is `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(child) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
        let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
        if after.split_whitespace().nth(1) == Some(&pid.to_string()) {
            found.push(child);
        }
    }
    found
}

/// utime + stime of `pid` in microseconds, and its resident set in KiB.
fn usage(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // /proc counts in USER_HZ, which Linux fixes at 100 for user space.
    (ticks * 10_000, rss)
}
