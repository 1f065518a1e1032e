//! Every attack at once: what one real viewer sees while the release binary is attacked
//! from all sides for a bounded time, and whether the server's threads, open
//! descriptors and resident memory come back to where they were afterwards.
//!
//! ```text
//! cargo bench --bench attack                           # 20 s of attack, both runs
//! cargo bench --bench attack -- --seconds 60 --run auth
//! PICAM_ATTACK_SECONDS=60 cargo bench --bench attack   # the same length
//! cargo bench --bench attack -- --log-dir /tmp/attack  # keep the server's logs
//! cargo bench --bench attack -- --attacks f1,idle      # only some of the attacks
//! ```
//!
//! The server serves the test pattern (320x240, 30 fps) on a loopback port, once as it
//! is (`--run plain`) and once with `--auth` (`--run auth`); `--run both` is the
//! default. While it runs, one viewer loads `/index.html` every 200 ms (timing each
//! load) and watches `/stream.mjpg` (counting frames). After 5 s at rest these start
//! together and keep on for the attack's length:
//!
//! * F1: 200 connections a second that send a request for HTTP/2.0 (also the HTTP/2
//!   preface and a request for HTTP/3.0) and close at once;
//! * F2: 4 connections that pipeline `GET /stream.mjpg` and `GET /status` in one write
//!   and then read at about 16 KB/s;
//! * F3 (the `--auth` run only): 16 guessers sending wrong passwords from the addresses
//!   127.0.0.2 to 127.0.0.40, at most 20 guesses a second each;
//! * F5: 40 clients each sending a 1 MiB request head (a 1 MiB URI) in one burst, again
//!   and again;
//! * F6: 10,000 connections (spread over the attack) reset right after connecting, every
//!   second one after the first line of a request;
//! * 500 idle connections that never send a byte (closed ones are opened again every
//!   second), and 8 slowloris clients adding a header line every 0.5 s (reconnecting
//!   when cut off).
//!
//! It prints the viewer's page times (median, p95, max) and frame rate before, during
//! and after the attack, the server's threads, open descriptors and resident memory at
//! rest, at their peak during the attack, 5, 10, 20 and 30 s after it and at their peak
//! in those 30 s, whether each came back within a small margin of its value at rest
//! within them (threads and descriptors +2, memory +2 MiB or +10 %), what the attackers
//! saw, and how much the server wrote to its standard error (kept in a file). The goals: the page in under 50 ms and
//! the stream at its full rate during the attack, everything back at rest within 30 s.
//! It only prints; it never fails on the figures.
//!
//! All load stays on loopback, every loop ends with the attack (or at a deadline), and
//! the benchmark itself uses fewer than 100 threads.

mod support;

use support::hostile;

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use base64::Engine as _;
use hostile::{peek, raise_fd_limit, threads_and_rss, Seen};

/// How long the viewer runs before the attack; its last sample is the figure at rest.
const AT_REST: Duration = Duration::from_secs(5);
/// How long the recovery is followed after the attack.
const RECOVERY_SECS: u64 = 30;
/// Recovery figures printed (seconds after the attack stopped).
const RECOVERY_REPORT: [u64; 4] = [5, 10, 20, 30];

const PAGE_EVERY: Duration = Duration::from_millis(200);
const F1_PER_SECOND: u64 = 200;
const F2_CLIENTS: usize = 4;
const F2_BYTES_PER_SECOND: usize = 16 * 1024;
const F3_GUESSERS: usize = 16;
const F3_PER_SECOND_EACH: u64 = 20;
/// Source addresses of the guessers: 127.0.0.FIRST to 127.0.0.LAST.
const F3_FIRST: u8 = 2;
const F3_LAST: u8 = 40;
const F5_CLIENTS: usize = 40;
const F5_URI_BYTES: usize = 1 << 20;
const F6_TOTAL: u64 = 10_000;
const IDLE: usize = 500;
const SLOWLORIS: usize = 8;

/// The attacks `--attacks` may choose from (all by default; f3 runs with `--auth` only).
const ATTACKS: [&str; 7] = ["f1", "f2", "f3", "f5", "f6", "idle", "slowloris"];

const USER: &str = "viewer";
const PASSWORD: &str = "correct-horse-battery";

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let seconds = value(&args, "--seconds")
        .or_else(|| std::env::var("PICAM_ATTACK_SECONDS").ok())
        .map(|v| {
            v.parse::<u64>()
                .ok()
                .filter(|s| (1..=3600).contains(s))
                .unwrap_or_else(|| panic!("the attack's seconds must be 1 to 3600, not {v}"))
        })
        .unwrap_or(20);
    let runs: &[bool] = match value(&args, "--run").as_deref() {
        None | Some("both") => &[false, true],
        Some("plain") => &[false],
        Some("auth") => &[true],
        Some(other) => panic!("--run takes plain, auth or both, not {other}"),
    };
    let kinds_arg = value(&args, "--attacks");
    let kinds: Vec<&str> = match kinds_arg.as_deref() {
        None | Some("all") => ATTACKS.to_vec(),
        Some(list) => list.split(',').map(str::trim).collect(),
    };
    if let Some(bad) = kinds.iter().find(|k| !ATTACKS.contains(k)) {
        panic!(
            "--attacks takes all or some of {}, not {bad}",
            ATTACKS.join(",")
        );
    }
    let fds = raise_fd_limit(4096);
    if fds < (IDLE + F5_CLIENTS + 200) as u64 {
        eprintln!("only {fds} open files allowed: fewer idle connections will be held");
    }
    // The server's logs: kept in --log-dir, else in a temporary directory removed at the end.
    let keep = value(&args, "--log-dir").map(PathBuf::from);
    let dir = keep.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("picam-attack-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir).expect("a directory for the server's log");
    for &auth in runs {
        run(auth, &kinds, Duration::from_secs(seconds), &dir);
    }
    match keep {
        Some(dir) => println!("the server's logs are in {}", dir.display()),
        None => {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

fn value(args: &[String], name: &str) -> Option<String> {
    let i = args.iter().position(|a| a == name)?;
    Some(
        args.get(i + 1)
            .unwrap_or_else(|| panic!("{name} wants a value"))
            .clone(),
    )
}

/// One run: the server at rest, under attack, and recovering.
fn run(auth: bool, kinds: &[&str], attack_for: Duration, dir: &Path) {
    let log_path = dir.join(if auth { "auth.log" } else { "plain.log" });
    let mut server_args = vec!["--source", "test", "--size", "320x240", "--fps", "30"];
    let auth_arg = format!("{USER}:{PASSWORD}");
    if auth {
        server_args.extend(["--auth", &auth_arg]);
    }
    let kinds_run: Vec<&str> = kinds
        .iter()
        .copied()
        .filter(|&k| auth || k != "f3")
        .collect();
    println!(
        "=== {}: release binary, {}; attack for {} s: {} ===",
        if auth { "with --auth" } else { "without auth" },
        server_args.join(" ").replace(&auth_arg, "USER:PASSWORD"),
        attack_for.as_secs(),
        kinds_run.join(", ")
    );
    let mut server = Server::start(&server_args, &log_path);
    let addr = server.addr;
    let pid = server.child.id();
    let started = Instant::now();
    let watch = Watch::start(pid, started);
    let credentials = auth.then(|| basic(USER, PASSWORD));

    // The viewer, from start to end of the run (bounded by a deadline of its own).
    let viewer_stop = Arc::new(AtomicBool::new(false));
    let viewer_deadline = Instant::now() + AT_REST + attack_for * 2 + Duration::from_secs(120);
    let viewer = Viewer::start(
        addr,
        credentials,
        started,
        viewer_stop.clone(),
        viewer_deadline,
    );
    let first_frame = Instant::now() + Duration::from_secs(15);
    while viewer.frames() == 0 && Instant::now() < first_frame {
        thread::sleep(Duration::from_millis(20));
    }
    if viewer.frames() == 0 {
        println!("the viewer got no frame within 15 s; the figures below say why");
    }
    let rest_from = started.elapsed();
    thread::sleep(AT_REST);
    let rest = watch.now();
    let log_at_rest = file_size(&log_path);

    // The attack.
    let attack_from = started.elapsed();
    let attack = Attack::start(addr, auth, kinds, attack_for);
    thread::sleep(attack_for);
    let attack_to = started.elapsed();
    let (own_threads, _) = threads_and_rss(std::process::id());
    let tally = attack.stop();
    let stopped = started.elapsed();
    let log_after_attack = file_size(&log_path);

    // Recovery: a sample every second for 30 s.
    let mut recovery = Vec::new();
    for s in 1..=RECOVERY_SECS {
        let at = started + stopped + Duration::from_secs(s);
        thread::sleep(at.saturating_duration_since(Instant::now()));
        recovery.push((s, watch.now()));
    }
    let recovery_to = started.elapsed();
    viewer_stop.store(true, Ordering::SeqCst);
    let (pages, frames, stream_breaks) = viewer.stop();
    let peak = watch.peak_between(attack_from, stopped);
    let peak_after = watch.peak_between(stopped, recovery_to);
    drop(watch);
    let exit = server.stop();
    let log_size = file_size(&log_path);
    let log_lines = std::fs::read(&log_path)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0);

    // The viewer.
    println!(
        "attackers ({own_threads} threads in this benchmark) stopped {:.1} s after the attack's end",
        (stopped - attack_to).as_secs_f64()
    );
    println!("viewer, page every 200 ms (goal during the attack: under 50 ms):");
    for (name, from, to) in [
        ("at rest", rest_from, attack_from),
        ("during the attack", attack_from, stopped),
        ("after it", stopped, recovery_to),
    ] {
        println!("  {name:<18} {}", page_summary(&pages, from, to));
    }
    println!(
        "viewer, /stream.mjpg (goal: the full 30 fps during the attack); the stream broke off {stream_breaks} times:"
    );
    for (name, from, to) in [
        ("at rest", rest_from, attack_from),
        ("during the attack", attack_from, stopped),
        ("after it", stopped, recovery_to),
    ] {
        println!("  {name:<18} {}", fps_summary(&frames, from, to));
    }

    // The server.
    println!("server (goal: back within the margin of its value at rest within 30 s):");
    println!(
        "  {:<10} {:>8} {:>11} {:>8} {:>8} {:>8} {:>8} {:>11}  back within 30 s",
        "", "at rest", "attack peak", "+5 s", "+10 s", "+20 s", "+30 s", "peak after"
    );
    // Name, the figure, the margin allowed above its value at rest, the margin in words.
    type Figure = (
        &'static str,
        fn(&Sample) -> u64,
        fn(u64) -> u64,
        &'static str,
    );
    let figures: [Figure; 3] = [
        ("threads", |s| s.threads, |_| 2, "+2"),
        ("open fds", |s| s.fds, |_| 2, "+2"),
        (
            "RSS (KiB)",
            |s| s.rss_kib,
            |rest| (rest / 10).max(2048),
            "+2 MiB or +10 %",
        ),
    ];
    for (name, get, margin, margin_text) in figures {
        let base = get(&rest);
        let within = |s: &Sample| get(s) <= base + margin(base);
        let at = |sec: u64| {
            recovery
                .iter()
                .find(|(s, _)| *s == sec)
                .map_or("-".to_string(), |(_, x)| get(x).to_string())
        };
        // From which second on every sample was within the margin.
        let back_from = recovery
            .iter()
            .rposition(|(_, x)| !within(x))
            .map_or(recovery.first().map(|(s, _)| *s), |last_out| {
                recovery.get(last_out + 1).map(|(s, _)| *s)
            });
        let back = match back_from {
            Some(s) => format!("yes (from {s} s on; margin {margin_text})"),
            None => format!("NO (margin {margin_text})"),
        };
        println!(
            "  {name:<10} {:>8} {:>11} {:>8} {:>8} {:>8} {:>8} {:>11}  {back}",
            base,
            get(&peak),
            at(RECOVERY_REPORT[0]),
            at(RECOVERY_REPORT[1]),
            at(RECOVERY_REPORT[2]),
            at(RECOVERY_REPORT[3]),
            get(&peak_after),
        );
    }
    println!(
        "  standard error log: {} bytes in {log_lines} lines ({} at rest, {} more during the attack, {} more after it); exit after SIGTERM: {exit}",
        log_size,
        log_at_rest,
        log_after_attack.saturating_sub(log_at_rest),
        log_size.saturating_sub(log_after_attack),
    );

    // The attackers.
    println!("what the attackers saw:");
    let mut last_group = String::new();
    let mut line = String::new();
    for (key, n) in &tally {
        let (group, what) = key.split_once(' ').unwrap_or((key, ""));
        if group != last_group {
            if !line.is_empty() {
                println!("{line}");
            }
            line = format!("  {group}:");
            last_group = group.to_string();
        } else {
            line.push(',');
        }
        line.push_str(&format!(" {what} {n}"));
    }
    if !line.is_empty() {
        println!("{line}");
    }
    println!();
}

// ---------------------------------------------------------------------------------------
// The server and the watch on it.

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    /// Starts the release binary on a loopback port, its standard error going to
    /// `log_path` (a file: a pipe nobody reads could block it), and waits until it
    /// listens. Logs at the binary's default level.
    fn start(args: &[&str], log_path: &Path) -> Server {
        let mut command = Command::new(support::built_binary());
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("PICAM_") || name == "RUST_LOG" {
                command.env_remove(name);
            }
        }
        // As the packaged service runs it: glibc gives the stacks of ended connection
        // threads back instead of keeping them for reuse.
        command.env("GLIBC_TUNABLES", "glibc.pthread.stack_cache_size=0");
        command
            .args(["--listen", "127.0.0.1:0", "--no-mdns"])
            .args(args)
            .stdin(Stdio::null());
        let (child, addr) = support::spawn_logging_to_file(command, log_path);
        Server { child, addr }
    }

    /// SIGTERM, then up to 10 s for it to exit (killed after that); says how it ended.
    fn stop(&mut self) -> String {
        use nix::sys::signal::{kill, Signal};
        use nix::unistd::Pid;
        let t = Instant::now();
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        while t.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(status)) = self.child.try_wait() {
                return format!("{status} in {:.2} s", t.elapsed().as_secs_f64());
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        "still running after 10 s, killed".into()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

#[derive(Clone, Copy, Default)]
struct Sample {
    threads: u64,
    fds: u64,
    rss_kib: u64,
}

fn sample(pid: u32) -> Sample {
    let (threads, rss_kib) = threads_and_rss(pid);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64);
    Sample {
        threads,
        fds,
        rss_kib,
    }
}

/// Samples the server every 50 ms, keeping every sample with its time.
struct Watch {
    pid: u32,
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<(Duration, Sample)>>>,
    thread: Option<JoinHandle<()>>,
}

impl Watch {
    fn start(pid: u32, started: Instant) -> Watch {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, samples) = (stop.clone(), samples.clone());
            // Bounded: stops with the run, or after an hour anyway.
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(3600)
                {
                    let s = sample(pid);
                    if let Ok(mut v) = samples.lock() {
                        v.push((started.elapsed(), s));
                    }
                    thread::sleep(Duration::from_millis(50));
                }
            })
        };
        Watch {
            pid,
            stop,
            samples,
            thread: Some(thread),
        }
    }

    fn now(&self) -> Sample {
        sample(self.pid)
    }

    /// The highest of each figure among the samples from `from` to `to`.
    fn peak_between(&self, from: Duration, to: Duration) -> Sample {
        let samples = self.samples.lock().map(|v| v.clone()).unwrap_or_default();
        samples
            .iter()
            .filter(|(at, _)| *at >= from && *at <= to)
            .fold(Sample::default(), |p, (_, s)| Sample {
                threads: p.threads.max(s.threads),
                fds: p.fds.max(s.fds),
                rss_kib: p.rss_kib.max(s.rss_kib),
            })
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------------------
// The real viewer.

fn basic(user: &str, password: &str) -> String {
    format!(
        "Authorization: Basic {}\r\n",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// A page load: when it started (from the run's start) and how long it took, or why it
/// failed.
type PageLoad = (Duration, Result<Duration, (String, Duration)>);

struct Viewer {
    pages: Arc<Mutex<Vec<PageLoad>>>,
    /// When each frame arrived, from the run's start.
    frames: Arc<Mutex<Vec<Duration>>>,
    breaks: Arc<AtomicU64>,
    threads: Vec<JoinHandle<()>>,
}

impl Viewer {
    fn start(
        addr: SocketAddr,
        credentials: Option<String>,
        started: Instant,
        stop: Arc<AtomicBool>,
        deadline: Instant,
    ) -> Viewer {
        let pages = Arc::new(Mutex::new(Vec::new()));
        let frames = Arc::new(Mutex::new(Vec::new()));
        let breaks = Arc::new(AtomicU64::new(0));
        let auth = credentials.unwrap_or_default();
        let go = {
            let stop = stop.clone();
            move || !stop.load(Ordering::SeqCst) && Instant::now() < deadline
        };
        let page_thread = {
            let (pages, auth, go) = (pages.clone(), auth.clone(), go.clone());
            thread::spawn(move || {
                let mut next = Instant::now();
                while go() {
                    let at = started.elapsed();
                    let result = load_page(addr, &auth);
                    if let Ok(mut p) = pages.lock() {
                        p.push((at, result));
                    }
                    next += PAGE_EVERY;
                    let now = Instant::now();
                    if next > now {
                        thread::sleep(next - now);
                    } else {
                        next = now;
                    }
                }
            })
        };
        let stream_thread = {
            let (frames, breaks) = (frames.clone(), breaks.clone());
            thread::spawn(move || {
                while go() {
                    let _ = watch_stream(addr, &auth, started, &frames, &go);
                    if go() {
                        breaks.fetch_add(1, Ordering::SeqCst);
                        thread::sleep(Duration::from_millis(100));
                    }
                }
            })
        };
        Viewer {
            pages,
            frames,
            breaks,
            threads: vec![page_thread, stream_thread],
        }
    }

    fn frames(&self) -> usize {
        self.frames.lock().map_or(0, |f| f.len())
    }

    fn stop(self) -> (Vec<PageLoad>, Vec<Duration>, u64) {
        for t in self.threads {
            let _ = t.join();
        }
        let pages = self.pages.lock().map(|p| p.clone()).unwrap_or_default();
        let frames = self.frames.lock().map(|f| f.clone()).unwrap_or_default();
        (pages, frames, self.breaks.load(Ordering::SeqCst))
    }
}

fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    Ok(s)
}

/// An error in words; a timeout says so, whatever the platform calls it.
fn failure(e: &io::Error) -> String {
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => "timed out (5 s)".into(),
        kind => kind.to_string(),
    }
}

/// Loads the viewer page; the time from connecting to having all of it.
fn load_page(addr: SocketAddr, auth: &str) -> Result<Duration, (String, Duration)> {
    let t = Instant::now();
    fetch_page(addr, auth).map_err(|why| (why, t.elapsed()))?;
    Ok(t.elapsed())
}

fn fetch_page(addr: SocketAddr, auth: &str) -> Result<(), String> {
    let mut s = connect(addr).map_err(|e| format!("connect: {}", failure(&e)))?;
    s.write_all(
        format!("GET /index.html HTTP/1.1\r\nHost: viewer\r\n{auth}Connection: close\r\n\r\n")
            .as_bytes(),
    )
    .map_err(|e| format!("send: {}", failure(&e)))?;
    let mut all = Vec::new();
    s.read_to_end(&mut all)
        .map_err(|e| format!("read: {}", failure(&e)))?;
    let text = String::from_utf8_lossy(&all);
    if all.is_empty() {
        return Err("closed without an answer".into());
    }
    if !text.starts_with("HTTP/1.1 200") {
        return Err(format!("answered {}", text.get(9..12).unwrap_or("garbage")));
    }
    if !text.contains("</html>") {
        return Err("page cut short".into());
    }
    Ok(())
}

/// Reads `/stream.mjpg` (classic parts with Content-Length), noting when each frame
/// arrived, until it breaks off or `go` says to stop.
fn watch_stream(
    addr: SocketAddr,
    auth: &str,
    started: Instant,
    frames: &Mutex<Vec<Duration>>,
    go: &dyn Fn() -> bool,
) -> io::Result<()> {
    let mut s = connect(addr)?;
    s.write_all(format!("GET /stream.mjpg HTTP/1.1\r\nHost: viewer\r\n{auth}\r\n").as_bytes())?;
    let mut r = BufReader::new(s);
    let mut line = Vec::new();
    fn read_line(r: &mut BufReader<TcpStream>, line: &mut Vec<u8>) -> io::Result<()> {
        line.clear();
        // Bounded: a line of the server's heads is short.
        r.take(4096).read_until(b'\n', line)?;
        if line.is_empty() {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }
    read_line(&mut r, &mut line)?;
    if !line.starts_with(b"HTTP/1.1 200") {
        return Err(io::Error::other("the stream was refused"));
    }
    loop {
        read_line(&mut r, &mut line)?;
        if line == b"\r\n" {
            break;
        }
    }
    let mut jpeg = Vec::new();
    while go() {
        let mut length = None;
        loop {
            read_line(&mut r, &mut line)?;
            let text = String::from_utf8_lossy(&line);
            if let Some(v) = text.strip_prefix("Content-Length:") {
                length = v.trim().parse::<usize>().ok();
            }
            if line == b"\r\n" && length.is_some() {
                break;
            }
        }
        let n = length.unwrap_or(0).min(64 << 20);
        jpeg.resize(n, 0);
        r.read_exact(&mut jpeg)?;
        if let Ok(mut f) = frames.lock() {
            f.push(started.elapsed());
        }
    }
    Ok(())
}

fn page_summary(pages: &[PageLoad], from: Duration, to: Duration) -> String {
    let mut ms = Vec::new();
    // How many failed for each reason, and the longest they took to fail.
    let mut failed: BTreeMap<&str, (usize, Duration)> = BTreeMap::new();
    for (_, result) in pages.iter().filter(|(at, _)| *at >= from && *at < to) {
        match result {
            Ok(t) => ms.push(t.as_secs_f64() * 1e3),
            Err((why, after)) => {
                let f = failed.entry(why.as_str()).or_default();
                f.0 += 1;
                f.1 = f.1.max(*after);
            }
        }
    }
    let mut text = if ms.is_empty() {
        "no page loaded".to_string()
    } else {
        ms.sort_by(f64::total_cmp);
        let rank = |p: f64| ms[((p * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1];
        let over = ms.iter().filter(|&&t| t >= 50.0).count();
        format!(
            "median {:.1} ms, p95 {:.1} ms, max {:.1} ms over {} loads ({over} took 50 ms or more)",
            rank(0.5),
            rank(0.95),
            ms[ms.len() - 1],
            ms.len()
        )
    };
    for (why, (n, longest)) in failed {
        text.push_str(&format!(
            "; {n} FAILED ({why}, within {:.0} ms)",
            longest.as_secs_f64() * 1e3
        ));
    }
    text
}

fn fps_summary(frames: &[Duration], from: Duration, to: Duration) -> String {
    let secs = (to - from).as_secs_f64();
    let n = frames.iter().filter(|&&t| t >= from && t < to).count();
    // The worst and best whole seconds.
    let whole = (to - from).as_secs();
    let per_second: Vec<usize> = (0..whole)
        .map(|i| {
            let a = from + Duration::from_secs(i);
            let b = a + Duration::from_secs(1);
            frames.iter().filter(|&&t| t >= a && t < b).count()
        })
        .collect();
    let longest_gap = frames
        .iter()
        .filter(|&&t| t >= from && t < to)
        .collect::<Vec<_>>()
        .windows(2)
        .map(|w| *w[1] - *w[0])
        .max()
        .unwrap_or_default();
    format!(
        "{:.1} fps ({n} frames in {secs:.1} s; worst second {}, best {}; longest gap {:.0} ms)",
        n as f64 / secs.max(1e-9),
        per_second.iter().min().copied().unwrap_or(0),
        per_second.iter().max().copied().unwrap_or(0),
        longest_gap.as_secs_f64() * 1e3
    )
}

// ---------------------------------------------------------------------------------------
// The attackers.

/// What the attackers saw, by "GROUP what".
#[derive(Default)]
struct Tally(Mutex<BTreeMap<String, u64>>);

impl Tally {
    fn add(&self, key: impl Into<String>) {
        self.add_n(key, 1);
    }

    fn add_n(&self, key: impl Into<String>, n: u64) {
        if let Ok(mut m) = self.0.lock() {
            *m.entry(key.into()).or_default() += n;
        }
    }
}

/// When an attacker should stop: at the attack's end, or a little after at the latest.
#[derive(Clone)]
struct Until {
    stop: Arc<AtomicBool>,
    deadline: Instant,
}

impl Until {
    fn go(&self) -> bool {
        !self.stop.load(Ordering::SeqCst) && Instant::now() < self.deadline
    }

    /// Sleeps up to `d`, waking early when the attack ends.
    fn sleep(&self, d: Duration) {
        let end = Instant::now() + d;
        while self.go() {
            let now = Instant::now();
            if now >= end {
                return;
            }
            thread::sleep((end - now).min(Duration::from_millis(50)));
        }
    }

    /// Sleeps until `at`, waking early when the attack ends.
    fn sleep_until(&self, at: Instant) {
        self.sleep(at.saturating_duration_since(Instant::now()));
    }
}

struct Attack {
    until: Until,
    tally: Arc<Tally>,
    threads: Vec<JoinHandle<()>>,
}

impl Attack {
    /// Starts the attacks named in `kinds` (F3 only when `auth`).
    fn start(addr: SocketAddr, auth: bool, kinds: &[&str], length: Duration) -> Attack {
        let until = Until {
            stop: Arc::new(AtomicBool::new(false)),
            deadline: Instant::now() + length + Duration::from_secs(5),
        };
        let tally = Arc::new(Tally::default());
        let mut threads = Vec::new();
        let mut spawn = |f: Box<dyn FnOnce(SocketAddr, Until, Arc<Tally>) + Send>| {
            let (until, tally) = (until.clone(), tally.clone());
            threads.push(thread::spawn(move || f(addr, until, tally)));
        };
        let on = |name: &str| kinds.contains(&name);
        if on("idle") {
            spawn(Box::new(idle));
        }
        if on("slowloris") {
            spawn(Box::new(slowloris));
        }
        if on("f1") {
            spawn(Box::new(f1_other_versions));
        }
        if on("f2") {
            for _ in 0..F2_CLIENTS {
                spawn(Box::new(f2_pipelined_slow_reader));
            }
        }
        if auth && on("f3") {
            for i in 0..F3_GUESSERS {
                spawn(Box::new(move |a, u, t| f3_guesser(i, a, u, t)));
            }
        }
        if on("f5") {
            let head = Arc::new(huge_head());
            for _ in 0..F5_CLIENTS {
                let head = head.clone();
                spawn(Box::new(move |a, u, t| f5_huge_head(&head, a, u, t)));
            }
        }
        if on("f6") {
            let per_second = F6_TOTAL as f64 / length.as_secs_f64();
            spawn(Box::new(move |a, u, t| f6_resets(per_second, a, u, t)));
        }
        Attack {
            until,
            tally,
            threads,
        }
    }

    /// Ends the attack; waits for every attacker to close its connections.
    fn stop(self) -> BTreeMap<String, u64> {
        self.until.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            let _ = t.join();
        }
        self.tally.0.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

/// "closed", "reset", "timeout" or the status code of what the server answered.
fn answer(s: &mut TcpStream) -> String {
    let mut buf = [0u8; 12];
    let mut got = 0;
    while got < buf.len() {
        match s.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return "timeout".into()
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return "reset".into(),
        }
    }
    match std::str::from_utf8(&buf[..got])
        .ok()
        .and_then(|t| t.strip_prefix("HTTP/1.1 "))
    {
        Some(code) if code.len() >= 3 => format!("answered {}", &code[..3]),
        _ if got == 0 => "closed".into(),
        _ => "answered garbage".into(),
    }
}

fn error_kind(e: &io::Error) -> String {
    format!("{:?}", e.kind())
}

/// 500 connections that never send a byte; those the server closed are opened again
/// every second.
fn idle(addr: SocketAddr, until: Until, tally: Arc<Tally>) {
    let mut conns: Vec<TcpStream> = Vec::with_capacity(IDLE);
    while until.go() {
        let before = conns.len();
        conns.retain(|c| peek(c) == Seen::Open);
        for _ in conns.len()..before {
            tally.add("idle ended by the server");
        }
        while conns.len() < IDLE && until.go() {
            match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
                Ok(s) => {
                    conns.push(s);
                    tally.add("idle opened");
                }
                Err(e) => {
                    tally.add(format!("idle connect-failed-{}", error_kind(&e)));
                    break;
                }
            }
        }
        until.sleep(Duration::from_secs(1));
    }
}

/// 8 slowloris clients: a header line each every 0.5 s, never ending the head;
/// reconnecting when cut off.
fn slowloris(addr: SocketAddr, until: Until, tally: Arc<Tally>) {
    let mut conns: Vec<Option<TcpStream>> = (0..SLOWLORIS).map(|_| None).collect();
    let mut line = 0u64;
    while until.go() {
        line += 1;
        for slot in conns.iter_mut() {
            if let Some(s) = slot {
                let seen = peek(s);
                let alive = seen == Seen::Open
                    && s.write_all(format!("X-{line}: a\r\n").as_bytes()).is_ok();
                if !alive {
                    tally.add(match seen {
                        Seen::Answered(Some(code)) => format!("slowloris answered-{code}"),
                        _ => "slowloris cut-off".into(),
                    });
                    *slot = None;
                }
            }
            if slot.is_none() {
                let opened =
                    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).and_then(|mut s| {
                        s.set_write_timeout(Some(Duration::from_secs(1)))?;
                        s.write_all(b"GET /index.html HTTP/1.1\r\nHost: slow\r\n")?;
                        Ok(s)
                    });
                match opened {
                    Ok(s) => {
                        tally.add("slowloris connected");
                        *slot = Some(s);
                    }
                    Err(e) => tally.add(format!("slowloris connect-failed-{}", error_kind(&e))),
                }
            }
        }
        until.sleep(Duration::from_millis(500));
    }
}

/// F1: requests for other HTTP versions, each on a connection closed right after it.
fn f1_other_versions(addr: SocketAddr, until: Until, tally: Arc<Tally>) {
    const HEADS: [&[u8]; 3] = [
        b"GET / HTTP/2.0\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"GET / HTTP/3.0\r\n\r\n",
    ];
    let period = Duration::from_micros(1_000_000 / F1_PER_SECOND);
    let mut due = Instant::now();
    let mut i = 0usize;
    while until.go() {
        // Paced; after a stall it goes on at the same rate instead of catching up.
        let now = Instant::now();
        if due > now {
            until.sleep_until(due);
        } else if now - due > Duration::from_secs(1) {
            due = now;
        }
        due += period;
        let head = HEADS[i % HEADS.len()];
        i += 1;
        match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(mut s) => match s.write_all(head) {
                Ok(()) => tally.add("F1 sent-and-closed"),
                Err(e) => tally.add(format!("F1 send-failed-{}", error_kind(&e))),
            },
            Err(e) => tally.add(format!("F1 connect-failed-{}", error_kind(&e))),
        }
    }
}

/// F2: a stream request and a status request in one write, then reading at about
/// 16 KB/s; again when the server ends the connection.
fn f2_pipelined_slow_reader(addr: SocketAddr, until: Until, tally: Arc<Tally>) {
    let tick = Duration::from_millis(100);
    let mut buf = vec![0u8; F2_BYTES_PER_SECOND / 10];
    while until.go() {
        let mut s = match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(s) => s,
            Err(e) => {
                tally.add(format!("F2 connect-failed-{}", error_kind(&e)));
                until.sleep(tick);
                continue;
            }
        };
        let _ = nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::RcvBuf, &32768);
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if let Err(e) =
            s.write_all(b"GET /stream.mjpg HTTP/1.1\r\n\r\nGET /status HTTP/1.1\r\n\r\n")
        {
            tally.add(format!("F2 send-failed-{}", error_kind(&e)));
            continue;
        }
        tally.add("F2 connections");
        let mut first = true;
        let ended = loop {
            if !until.go() {
                break None;
            }
            match s.read(&mut buf) {
                Ok(0) => break Some("closed by the server"),
                Ok(n) => {
                    if first {
                        first = false;
                        let code = std::str::from_utf8(&buf[..n.min(12)])
                            .ok()
                            .and_then(|t| t.strip_prefix("HTTP/1.1 "))
                            .map_or("?".to_string(), |c| c.chars().take(3).collect());
                        tally.add(format!("F2 first-answer-{code}"));
                    }
                    tally.add_n("F2 bytes-read", n as u64);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => break Some("reset by the server"),
            }
            until.sleep(tick);
        };
        if let Some(why) = ended {
            tally.add(format!("F2 {}", why.replace(' ', "-")));
        }
    }
}

/// A connection from `from`, with `timeout` for connecting.
fn connect_from(from: Ipv4Addr, to: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    use nix::sys::socket::{bind, connect, setsockopt, socket, sockopt};
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn};
    use nix::sys::time::{TimeVal, TimeValLike};
    let SocketAddr::V4(to) = to else {
        return Err(io::Error::other("the server listens on IPv4"));
    };
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // A blocking connect gives up after the send timeout.
    setsockopt(
        &fd,
        sockopt::SendTimeout,
        &TimeVal::milliseconds(timeout.as_millis() as i64),
    )?;
    bind(
        fd.as_raw_fd(),
        &SockaddrIn::from(SocketAddrV4::new(from, 0)),
    )?;
    connect(fd.as_raw_fd(), &SockaddrIn::from(to))?;
    Ok(TcpStream::from(fd))
}

/// F3: wrong passwords for the real user, from 127.0.0.2 to 127.0.0.40 in turn.
fn f3_guesser(index: usize, addr: SocketAddr, until: Until, tally: Arc<Tally>) {
    let addresses = (F3_LAST - F3_FIRST + 1) as usize;
    let every = Duration::from_micros(1_000_000 / F3_PER_SECOND_EACH);
    let mut n = 0usize;
    while until.go() {
        let began = Instant::now();
        let from = Ipv4Addr::new(
            127,
            0,
            0,
            F3_FIRST + ((index + n * F3_GUESSERS) % addresses) as u8,
        );
        n += 1;
        let result = connect_from(from, addr, Duration::from_secs(2)).and_then(|mut s| {
            s.set_write_timeout(Some(Duration::from_secs(2)))?;
            s.set_read_timeout(Some(Duration::from_secs(3)))?;
            let wrong = basic(USER, &format!("guess-{index}-{n}"));
            s.write_all(
                format!(
                    "GET /index.html HTTP/1.1\r\nHost: guess\r\n{wrong}Connection: close\r\n\r\n"
                )
                .as_bytes(),
            )?;
            Ok(answer(&mut s))
        });
        match result {
            Ok(seen) => tally.add(format!("F3 {}", seen.replace(' ', "-"))),
            Err(e) => tally.add(format!("F3 failed-{}", error_kind(&e))),
        }
        until.sleep(every.saturating_sub(began.elapsed()));
    }
}

/// A request head with a 1 MiB URI.
fn huge_head() -> Vec<u8> {
    let mut head = b"GET /".to_vec();
    head.resize(5 + F5_URI_BYTES, b'a');
    head.extend_from_slice(b" HTTP/1.1\r\nHost: huge\r\n\r\n");
    head
}

/// F5: the 1 MiB head in one write, then what the server answers; again.
fn f5_huge_head(head: &[u8], addr: SocketAddr, until: Until, tally: Arc<Tally>) {
    while until.go() {
        let began = Instant::now();
        let mut s = match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(s) => s,
            Err(e) => {
                tally.add(format!("F5 connect-failed-{}", error_kind(&e)));
                until.sleep(Duration::from_millis(100));
                continue;
            }
        };
        let _ = s.set_write_timeout(Some(Duration::from_secs(3)));
        let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
        match s.write_all(head) {
            Ok(()) => tally.add("F5 head-sent-whole"),
            Err(e) => tally.add(format!("F5 head-cut-off-{}", error_kind(&e))),
        }
        tally.add(format!("F5 {}", answer(&mut s).replace(' ', "-")));
        drop(s);
        // At most ten a second each.
        until.sleep(Duration::from_millis(100).saturating_sub(began.elapsed()));
    }
}

/// F6: connections reset (SO_LINGER 0, then closed) right after connecting; every
/// second one first sends the first line of a request.
fn f6_resets(per_second: f64, addr: SocketAddr, until: Until, tally: Arc<Tally>) {
    use nix::sys::socket::{setsockopt, sockopt};
    let start = Instant::now();
    let mut i: u64 = 0;
    while until.go() && i < F6_TOTAL {
        let due = start + Duration::from_secs_f64(i as f64 / per_second);
        if due > Instant::now() {
            until.sleep_until(due);
        }
        i += 1;
        let mut s = match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(s) => s,
            Err(e) => {
                tally.add(format!("F6 connect-failed-{}", error_kind(&e)));
                continue;
            }
        };
        let reset = nix::libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        if setsockopt(&s, sockopt::Linger, &reset).is_err() {
            tally.add("F6 SO_LINGER-failed");
        }
        if i % 2 == 0 {
            let _ = s.write_all(b"GET / HTTP/1.1\r\n");
            tally.add("F6 reset-after-a-line");
        } else {
            tally.add("F6 reset-at-once");
        }
        drop(s);
    }
}
