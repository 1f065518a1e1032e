//! Soak test: the release binary under a bounded run of clients that come and go, with a
//! source that restarts, checking at the end that nothing grew and every client was served.
//!
//! The source is `exec:` running this very program in its frame-writer mode, which
//! writes 320x240 frames at `--fps` and exits after `--restart-every` seconds, so the
//! server keeps restarting it (and shows the no-signal picture in between).
//!
//! Load: `--concurrency` client loops, each starting one client after another until the
//! time is up: short and long streams in both formats, slow readers (about 100 KB/s),
//! clients that leave in the middle of a frame, snapshots and `/status` polls.
//!
//! Phases: warm-up under load; all clients leave and the server settles; baseline
//! (threads, open descriptors, resident memory); the main run; all clients leave and the
//! server settles again; final figures. It fails (exit status 1) when threads or
//! descriptors grew by more than [`FD_THREAD_MARGIN`], memory by more than
//! [`RSS_MARGIN_BYTES`] and [`RSS_MARGIN_PERCENT`] both, a stream client got no frame, any
//! request failed, the server logged an error, or the source did not restart.
//!
//! ```text
//! cargo bench --bench soak                   # 10 minutes
//! cargo bench --bench soak -- --seconds 180  # what CI runs (.ci/soak.sh)
//! ```

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Growth allowed in threads and in open descriptors between baseline and end.
const FD_THREAD_MARGIN: i64 = 2;
/// Growth allowed in resident memory: failing needs more than both of these.
const RSS_MARGIN_BYTES: i64 = 2 * 1024 * 1024;
const RSS_MARGIN_PERCENT: i64 = 10;

/// Options, with their defaults.
#[derive(Debug, Clone)]
struct Options {
    seconds: u64,
    concurrency: usize,
    restart_every: u64,
    fps: u64,
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().map(String::as_str) == Some("--write-frames") {
        write_frames(&args[1..]);
        return;
    }
    let opts = Options {
        seconds: flag(&args, "--seconds").unwrap_or(600).max(30),
        concurrency: flag(&args, "--concurrency").unwrap_or(32).max(1) as usize,
        restart_every: flag(&args, "--restart-every").unwrap_or(20).max(2),
        fps: flag(&args, "--fps").unwrap_or(15).clamp(1, 60),
    };
    std::process::exit(if soak(&opts) { 0 } else { 1 });
}

fn flag(args: &[String], name: &str) -> Option<u64> {
    let i = args.iter().position(|a| a == name)?;
    match args.get(i + 1).and_then(|v| v.parse().ok()) {
        Some(v) => Some(v),
        None => {
            eprintln!("soak: {name} needs a whole number");
            std::process::exit(2)
        }
    }
}

/// Frame-writer mode: `--write-frames DIR FPS SECONDS` writes DIR/frame-*.jpg in turn
/// to standard output at FPS, then exits.
fn write_frames(args: &[String]) {
    let dir = PathBuf::from(&args[0]);
    let fps: u64 = args[1].parse().unwrap();
    let seconds: u64 = args[2].parse().unwrap();
    let mut frames = Vec::new();
    for i in 0.. {
        match std::fs::read(dir.join(format!("frame-{i}.jpg"))) {
            Ok(f) => frames.push(f),
            Err(_) => break,
        }
    }
    let period = Duration::from_secs(1) / fps as u32;
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut out = std::io::stdout().lock();
    let mut next = Instant::now();
    for frame in frames.iter().cycle() {
        if Instant::now() >= end || out.write_all(frame).and_then(|_| out.flush()).is_err() {
            return;
        }
        next += period;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
    }
}

/// 320x240 test cards (see `support::cards`), camera-like in size.
fn make_frames(dir: &Path, count: usize) {
    for i in 0..count {
        let jpeg = support::cards::test_card(320, 240, i, 12);
        std::fs::write(dir.join(format!("frame-{i}.jpg")), jpeg).unwrap();
    }
}

/// A small xorshift generator: the load is varied but the same from run to run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `lo..hi` milliseconds.
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo).max(1))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Short,
    Long,
    Advance,
    Slow,
    Abrupt,
    Snapshot,
    Status,
}

const KINDS: [Kind; 7] = [
    Kind::Short,
    Kind::Long,
    Kind::Advance,
    Kind::Slow,
    Kind::Abrupt,
    Kind::Snapshot,
    Kind::Status,
];

fn pick(rng: &mut Rng) -> Kind {
    match rng.next() % 100 {
        0..=39 => Kind::Short,
        40..=47 => Kind::Long,
        48..=62 => Kind::Advance,
        63..=72 => Kind::Slow,
        73..=82 => Kind::Abrupt,
        83..=94 => Kind::Snapshot,
        _ => Kind::Status,
    }
}

/// What the clients did, across all loops.
#[derive(Default)]
struct Tally {
    /// Per kind: clients, frames (or answers) received.
    per_kind: Mutex<Vec<(Kind, u64, u64)>>,
    unserved: AtomicU64,
    errors: Mutex<Vec<String>>,
    error_count: AtomicU64,
}

impl Tally {
    fn record(&self, kind: Kind, result: Result<u64, String>) {
        let frames = match result {
            Ok(n) => n,
            Err(e) => {
                self.error_count.fetch_add(1, Ordering::Relaxed);
                let mut errors = self.errors.lock().unwrap();
                if errors.len() < 10 {
                    errors.push(format!("{kind:?}: {e}"));
                }
                0
            }
        };
        let streams = !matches!(kind, Kind::Snapshot | Kind::Status);
        if streams && frames == 0 {
            self.unserved.fetch_add(1, Ordering::Relaxed);
        }
        let mut per = self.per_kind.lock().unwrap();
        match per.iter_mut().find(|(k, _, _)| *k == kind) {
            Some(e) => {
                e.1 += 1;
                e.2 += frames;
            }
            None => per.push((kind, 1, frames)),
        }
    }

    fn clients(&self) -> u64 {
        self.per_kind.lock().unwrap().iter().map(|e| e.1).sum()
    }
}

fn connect(addr: SocketAddr, path: &str) -> Result<TcpStream, String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("send request: {e}"))?;
    Ok(s)
}

/// Reads the response head; returns the status and the Content-Length, if any.
fn head(r: &mut impl BufRead) -> Result<(u16, Option<usize>), String> {
    let mut line = String::new();
    r.read_line(&mut line)
        .map_err(|e| format!("status line: {e}"))?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line {line:?}"))?;
    let mut len = None;
    loop {
        line.clear();
        r.read_line(&mut line).map_err(|e| format!("header: {e}"))?;
        let l = line.trim_end();
        if l.is_empty() {
            return Ok((status, len));
        }
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().ok();
            }
        }
    }
}

/// Reads at most `chunk` bytes per `pause`: a viewer on a slow link.
struct Throttled {
    inner: TcpStream,
    chunk: usize,
    pause: Duration,
}

impl Read for Throttled {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        thread::sleep(self.pause);
        let n = buf.len().min(self.chunk);
        self.inner.read(&mut buf[..n])
    }
}

/// Reads classic parts for `stay`, checking each; `abrupt` leaves inside a frame.
fn classic_stream(r: &mut impl BufRead, stay: Duration, abrupt: bool) -> Result<u64, String> {
    let (status, _) = head(r)?;
    if status != 200 {
        return Err(format!("stream answered {status}"));
    }
    let end = Instant::now() + stay;
    let mut frames = 0;
    let mut line = String::new();
    loop {
        line.clear();
        r.read_line(&mut line)
            .map_err(|e| format!("boundary: {e}"))?;
        if line != "--FRAME\r\n" {
            return Err(format!("expected a boundary, got {line:?}"));
        }
        let (_, len) = head_of_part(r)?;
        let len = len.ok_or("part without Content-Length")?;
        if abrupt && frames > 0 && Instant::now() >= end {
            let mut half = vec![0u8; len / 2];
            r.read_exact(&mut half).map_err(|e| format!("frame: {e}"))?;
            return Ok(frames); // and the socket closes mid-frame
        }
        let mut body = vec![0u8; len + 2];
        r.read_exact(&mut body).map_err(|e| format!("frame: {e}"))?;
        if !body.starts_with(&[0xFF, 0xD8]) || !body.ends_with(&[0xFF, 0xD9, b'\r', b'\n']) {
            return Err("a part that is not a whole JPEG".into());
        }
        frames += 1;
        if Instant::now() >= end {
            return Ok(frames);
        }
    }
}

fn head_of_part(r: &mut impl BufRead) -> Result<(String, Option<usize>), String> {
    let mut kind = String::new();
    let mut len = None;
    let mut line = String::new();
    loop {
        line.clear();
        r.read_line(&mut line)
            .map_err(|e| format!("part header: {e}"))?;
        let l = line.trim_end();
        if l.is_empty() {
            return Ok((kind, len));
        }
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().ok();
            } else if k.eq_ignore_ascii_case("content-type") {
                kind = v.trim().to_string();
            }
        }
    }
}

/// Counts whole frames of the advance-headers format: each is closed by the next boundary.
fn advance_stream(r: &mut impl BufRead, stay: Duration) -> Result<u64, String> {
    let (status, _) = head(r)?;
    if status != 200 {
        return Err(format!("stream answered {status}"));
    }
    let end = Instant::now() + stay;
    let marker = b"\r\n--FRAME\r\n";
    let mut matched = 0;
    let mut frames = 0;
    let mut buf = [0u8; 8192];
    while Instant::now() < end || frames == 0 {
        let n = r.read(&mut buf).map_err(|e| format!("stream: {e}"))?;
        if n == 0 {
            return Err("the stream ended".into());
        }
        for &b in &buf[..n] {
            matched = if b == marker[matched] {
                matched + 1
            } else if b == marker[0] {
                1
            } else {
                0
            };
            if matched == marker.len() {
                frames += 1;
                matched = 0;
            }
        }
    }
    Ok(frames)
}

/// One client of `kind`; streams stay at most `left` (at least a frame's worth).
fn one_client(
    addr: SocketAddr,
    kind: Kind,
    rng: &mut Rng,
    left: Duration,
    restarts: &AtomicU64,
) -> Result<u64, String> {
    let mut stay = |lo, hi| rng.millis(lo, hi).min(left).max(Duration::from_millis(100));
    match kind {
        Kind::Short | Kind::Long | Kind::Abrupt => {
            let stay = match kind {
                Kind::Long => stay(5_000, 30_000),
                _ => stay(100, 3_000),
            };
            let s = connect(addr, "/stream.mjpg")?;
            classic_stream(&mut BufReader::new(s), stay, kind == Kind::Abrupt)
        }
        Kind::Advance => {
            let s = connect(addr, "/stream.mjpg?advance_headers=1")?;
            advance_stream(&mut BufReader::new(s), stay(200, 5_000))
        }
        Kind::Slow => {
            let s = connect(addr, "/stream.mjpg")?;
            let slow = Throttled {
                inner: s,
                chunk: 2048,
                pause: Duration::from_millis(20),
            };
            classic_stream(
                &mut BufReader::with_capacity(2048, slow),
                stay(3_000, 15_000),
                false,
            )
        }
        Kind::Snapshot | Kind::Status => {
            let path = if kind == Kind::Status {
                "/status"
            } else {
                "/snapshot.jpg"
            };
            let mut r = BufReader::new(connect(addr, path)?);
            let (status, len) = head(&mut r)?;
            if status != 200 {
                return Err(format!("{path} answered {status}"));
            }
            let mut body = Vec::new();
            r.read_to_end(&mut body)
                .map_err(|e| format!("{path}: {e}"))?;
            if len.is_some_and(|l| l != body.len()) {
                return Err(format!("{path}: short body"));
            }
            if kind == Kind::Snapshot {
                if !body.starts_with(&[0xFF, 0xD8]) || !body.ends_with(&[0xFF, 0xD9]) {
                    return Err("a snapshot that is not a whole JPEG".into());
                }
            } else {
                let v: serde_json::Value =
                    serde_json::from_slice(&body).map_err(|e| format!("/status: {e}"))?;
                if let Some(n) = v["source_restarts"].as_u64() {
                    restarts.fetch_max(n, Ordering::Relaxed);
                }
            }
            Ok(1)
        }
    }
}

/// Runs `loops` client loops until `until`.
fn load(
    addr: SocketAddr,
    loops: usize,
    until: Instant,
    tally: &Arc<Tally>,
    restarts: &Arc<AtomicU64>,
    seed: u64,
) {
    let handles: Vec<_> = (0..loops)
        .map(|i| {
            let tally = tally.clone();
            let restarts = restarts.clone();
            thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    let mut rng = Rng(seed ^ (0x1000_0000_0000 + i as u64 * 0x9E37_79B9));
                    while Instant::now() < until {
                        let kind = pick(&mut rng);
                        let left = until.saturating_duration_since(Instant::now());
                        let result = one_client(addr, kind, &mut rng, left, &restarts);
                        tally.record(kind, result);
                    }
                })
                .unwrap()
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

/// Threads, open descriptors and resident bytes of a process.
#[derive(Debug, Clone, Copy)]
struct Usage {
    threads: i64,
    fds: i64,
    rss: i64,
}

fn usage(pid: u32) -> Usage {
    let p = support::proc_usage(pid);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(-1, |d| d.count() as i64);
    Usage {
        threads: p.threads as i64,
        fds,
        rss: p.rss_kib as i64 * 1024,
    }
}

fn status_json(addr: SocketAddr) -> Option<serde_json::Value> {
    let mut r = BufReader::new(connect(addr, "/status").ok()?);
    let (code, _) = head(&mut r).ok()?;
    let mut body = Vec::new();
    r.read_to_end(&mut body).ok()?;
    (code == 200).then(|| serde_json::from_slice(&body).ok())?
}

/// Waits for a quiet server: no client, the source delivering, threads settled (idle
/// connection threads end after 5 s), then measures.
fn settle_and_measure(addr: SocketAddr, pid: u32) -> Usage {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last: Option<Usage> = None;
    loop {
        thread::sleep(Duration::from_secs(2));
        let s = status_json(addr);
        let quiet = s.as_ref().is_some_and(|s| {
            s["clients"] == 0
                && s["source_error"].is_null()
                && s["last_frame_age_ms"].as_u64().is_some_and(|a| a < 1000)
        });
        let u = usage(pid);
        if quiet {
            if let Some(prev) = last {
                if prev.threads == u.threads && prev.fds == u.fds {
                    return u;
                }
            }
            last = Some(u);
        } else {
            last = None;
        }
        if Instant::now() > deadline {
            println!("the server did not settle within 60 s; measuring anyway");
            return u;
        }
    }
}

fn mb(bytes: i64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn soak(opts: &Options) -> bool {
    let dir = std::env::temp_dir().join(format!("picam-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    make_frames(&dir, 30);
    let me = std::env::current_exe().unwrap();
    let source = format!(
        "exec:exec '{}' --write-frames '{}' {} {}",
        me.display(),
        dir.display(),
        opts.fps,
        opts.restart_every
    );
    let log_path = dir.join("server.log");
    let mut server = start_server(&source, &log_path);
    let addr = server.1;
    let pid = server.0.id();
    let warmup = Duration::from_secs((opts.seconds / 6).clamp(10, 60));
    let main_run = Duration::from_secs(opts.seconds).saturating_sub(warmup);
    println!(
        "soak: {} s ({} s warm-up, {} s measured), {} client loops, source restarting every {} s at {} fps",
        opts.seconds,
        warmup.as_secs(),
        main_run.as_secs(),
        opts.concurrency,
        opts.restart_every,
        opts.fps
    );
    let started = Instant::now();
    let tally = Arc::new(Tally::default());
    let restarts = Arc::new(AtomicU64::new(0));
    load(
        addr,
        opts.concurrency,
        Instant::now() + warmup,
        &tally,
        &restarts,
        1,
    );
    let base = settle_and_measure(addr, pid);
    println!(
        "baseline after warm-up ({} clients): threads {}, fds {}, RSS {}",
        tally.clients(),
        base.threads,
        base.fds,
        mb(base.rss)
    );

    // The measured run, with a sampler printing the figures under load.
    let main_tally = Arc::new(Tally::default());
    let until = Instant::now() + main_run;
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        thread::spawn(move || {
            let mut peak = usage(pid);
            let mut next_print = Instant::now() + Duration::from_secs(30);
            while !done.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_millis(500));
                let u = usage(pid);
                peak.threads = peak.threads.max(u.threads);
                peak.fds = peak.fds.max(u.fds);
                peak.rss = peak.rss.max(u.rss);
                if Instant::now() >= next_print {
                    next_print += Duration::from_secs(30);
                    println!(
                        "  at {:>4} s under load: threads {}, fds {}, RSS {}",
                        started.elapsed().as_secs(),
                        u.threads,
                        u.fds,
                        mb(u.rss)
                    );
                }
            }
            peak
        })
    };
    load(addr, opts.concurrency, until, &main_tally, &restarts, 2);
    done.store(true, Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    let end = settle_and_measure(addr, pid);
    let final_status = status_json(addr);

    // Stop the server the way an init system does, and read its log.
    let alive = server.0.try_wait().unwrap().is_none();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let exit = wait_exit(&mut server.0, Duration::from_secs(5));
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let log_errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" ERROR ") || l.contains("panicked"))
        .collect();
    let restarts_logged = log
        .lines()
        .filter(|l| l.contains(" WARN ") && l.contains("restarting in"))
        .count();
    let back_logged = log.matches("the source is back").count();

    println!("\nclients over the measured run:");
    let per = main_tally.per_kind.lock().unwrap().clone();
    for kind in KINDS {
        if let Some((_, n, frames)) = per.iter().find(|(k, _, _)| *k == kind) {
            let what = match kind {
                Kind::Snapshot | Kind::Status => "answers",
                _ => "frames",
            };
            let name = format!("{kind:?}");
            println!("  {name:<9} {n:>6} clients, {frames:>8} {what}");
        }
    }
    let clients = main_tally.clients() + tally.clients();
    let unserved =
        main_tally.unserved.load(Ordering::Relaxed) + tally.unserved.load(Ordering::Relaxed);
    let errors =
        main_tally.error_count.load(Ordering::Relaxed) + tally.error_count.load(Ordering::Relaxed);
    println!(
        "  total {clients} clients in {} s ({:.1} a second), {unserved} unserved, {errors} failed requests",
        started.elapsed().as_secs(),
        clients as f64 / started.elapsed().as_secs_f64()
    );
    for e in main_tally
        .errors
        .lock()
        .unwrap()
        .iter()
        .chain(tally.errors.lock().unwrap().iter())
    {
        println!("    {e}");
    }
    let source_restarts = final_status
        .as_ref()
        .and_then(|s| s["source_restarts"].as_u64())
        .unwrap_or(0);
    println!(
        "source: {source_restarts} restarts (status; {} seen by the clients' polls), {restarts_logged} logged, {back_logged} recoveries logged; streams served (status): {}",
        restarts.load(Ordering::Relaxed),
        final_status.as_ref().map_or("?".into(), |s| s["streams_served"].to_string())
    );
    println!(
        "peak under load: threads {}, fds {}, RSS {}",
        peak.threads,
        peak.fds,
        mb(peak.rss)
    );
    let rss_growth = end.rss - base.rss;
    let rss_allowed = RSS_MARGIN_BYTES.max(base.rss * RSS_MARGIN_PERCENT / 100);
    println!(
        "baseline -> end: threads {} -> {}, fds {} -> {}, RSS {} -> {} ({:+.1} %, allowed +{})",
        base.threads,
        end.threads,
        base.fds,
        end.fds,
        mb(base.rss),
        mb(end.rss),
        rss_growth as f64 * 100.0 / base.rss.max(1) as f64,
        mb(rss_allowed)
    );
    println!(
        "server log: {} lines, {} errors",
        log.lines().count(),
        log_errors.len()
    );
    for l in log_errors.iter().take(10) {
        println!("    {l}");
    }

    let expected_restarts = (opts.seconds / (opts.restart_every + 2))
        .saturating_sub(1)
        .max(1);
    let checks = [
        ("server alive to the end", alive),
        ("clean exit on SIGTERM", exit == Some(0)),
        (
            "threads flat",
            end.threads - base.threads <= FD_THREAD_MARGIN,
        ),
        ("descriptors flat", end.fds - base.fds <= FD_THREAD_MARGIN),
        ("memory flat", rss_growth <= rss_allowed),
        ("every stream client got frames", unserved == 0),
        ("no failed request", errors == 0),
        ("no error in the server log", log_errors.is_empty()),
        (
            "over a thousand clients",
            clients >= 1000 || opts.seconds < 120,
        ),
        ("the source restarted", source_restarts >= expected_restarts),
    ];
    let mut ok = true;
    for (what, passed) in checks {
        println!("{} {what}", if passed { "PASS" } else { "FAIL" });
        ok &= passed;
    }
    if ok {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        println!("server log kept in {}", log_path.display());
    }
    ok
}

/// Starts the server; the caller stops it and waits for it (see [`wait_exit`]).
fn start_server(source: &str, log_path: &Path) -> (Child, SocketAddr) {
    let mut command = Command::new(support::built_binary());
    command
        .args([
            "--listen",
            "127.0.0.1:0",
            "--source",
            source,
            "--max-clients",
            "0",
            // Every client comes from one address here.
            "--max-clients-per-address",
            "0",
            // The command restarts on its own schedule, watched or not, so that gaps
            // between the clients' loops and the settling at the end see it too.
            "--always-on",
        ])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null());
    support::spawn_logging_to_file(command, log_path)
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<i32> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(Some(s)) = child.try_wait() {
            return s.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}
