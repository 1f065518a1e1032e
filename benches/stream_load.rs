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

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use support::{proc_usage, start_server, ProcUsage};

/// Marks our comment segment: "PCS" + u64 sequence + u64 nanoseconds since `epoch`.
const TAG: &[u8; 3] = b"PCS";

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
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
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

fn flag(args: &[String], name: &str) -> Option<u64> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
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

/// A test-card picture with moving bars and per-pixel noise, like a real camera's
/// sensor noise, so that frames compress to a camera-like size.
fn make_frames(count: usize) -> Vec<Vec<u8>> {
    let (w, h) = (640usize, 480usize);
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut noise = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let render = |i: usize, amp: u64, noise: &mut dyn FnMut() -> u64| {
        let mut rgb = vec![0u8; w * h * 3];
        for y in 0..h {
            for x in 0..w {
                let band = (x + i * 8) / 80 % 8;
                let base = [
                    [235, 235, 235],
                    [235, 235, 16],
                    [16, 235, 235],
                    [16, 235, 16],
                    [235, 16, 235],
                    [235, 16, 16],
                    [16, 16, 235],
                    [16, 16, 16],
                ][band];
                let shade = (y * 160 / h) as i32 - 80;
                let n = noise();
                for c in 0..3 {
                    let jitter = ((n >> (c * 8)) % (2 * amp + 1)) as i32 - amp as i32;
                    let v = base[c] + shade / 2 + jitter;
                    rgb[(y * w + x) * 3 + c] = v.clamp(0, 255) as u8;
                }
            }
        }
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, 75)
            .encode(&rgb, w as u16, h as u16, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        out
    };
    // Pick the noise level that gives frames of about 45-50 KB.
    let mut amp = 12;
    for _ in 0..12 {
        let size = render(0, amp, &mut noise).len();
        if size < 45_000 {
            amp += 2;
        } else if size > 50_000 {
            amp = amp.saturating_sub(1).max(1);
        } else {
            break;
        }
    }
    (0..count).map(|i| render(i, amp, &mut noise)).collect()
}

/// `jpeg` with our comment segment right after the start-of-image marker.
fn stamp(jpeg: &[u8], seq: u64, nanos: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(jpeg.len() + 24);
    out.extend_from_slice(&jpeg[..2]);
    out.extend_from_slice(&[0xFF, 0xFE, 0, 2 + 3 + 16]);
    out.extend_from_slice(TAG);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&nanos.to_be_bytes());
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn read_stamp(jpeg: &[u8]) -> Option<(u64, u64)> {
    if jpeg.len() < 25 || jpeg[2..4] != [0xFF, 0xFE] || &jpeg[6..9] != TAG {
        return None;
    }
    let seq = u64::from_be_bytes(jpeg[9..17].try_into().ok()?);
    let nanos = u64::from_be_bytes(jpeg[17..25].try_into().ok()?);
    Some((seq, nanos))
}

#[derive(Default)]
struct ClientResult {
    slow: bool,
    error: Option<String>,
    frames: u64,
    skipped: u64,
    latencies_us: Vec<u32>,
}

fn client(
    addr: SocketAddr,
    slow_rate: Option<usize>,
    epoch: Instant,
    measuring: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
    ready: Arc<Barrier>,
) -> ClientResult {
    let mut result = ClientResult {
        slow: slow_rate.is_some(),
        ..Default::default()
    };
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(b"GET /stream.mjpg HTTP/1.1\r\nHost: bench\r\n\r\n")
        .unwrap();
    ready.wait();
    let mut reader = BufReader::with_capacity(64 * 1024, Throttle::new(stream, slow_rate));
    let mut line = String::new();
    // Response head.
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => {
                result.error = Some("closed before the response head".into());
                return result;
            }
            Err(e) => {
                result.error = Some(format!("reading the response head: {e}"));
                return result;
            }
            Ok(_) => {}
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut last_seq = None;
    let mut body = Vec::new();
    while !done.load(Ordering::Relaxed) {
        let mut len = 0usize;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) => return result,
                Err(e) => {
                    if !done.load(Ordering::Relaxed) {
                        result.error = Some(format!("reading a part: {e}"));
                    }
                    return result;
                }
                Ok(_) => {}
            }
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.strip_prefix("Content-Length: ") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        body.resize(len + 2, 0);
        if reader.read_exact(&mut body).is_err() {
            return result;
        }
        let now = epoch.elapsed().as_nanos() as u64;
        let Some((seq, sent)) = read_stamp(&body[..len]) else {
            continue;
        };
        if measuring.load(Ordering::Relaxed) {
            result.frames += 1;
            if let Some(prev) = last_seq {
                if seq > prev + 1 {
                    result.skipped += seq - prev - 1;
                }
            }
            result
                .latencies_us
                .push(((now.saturating_sub(sent)) / 1000).min(u32::MAX as u64) as u32);
        }
        last_seq = Some(seq);
    }
    result
}

/// A reader limited to `rate` bytes per second (a client on a slow link).
struct Throttle {
    inner: TcpStream,
    rate: Option<usize>,
    start: Instant,
    taken: usize,
}

impl Throttle {
    fn new(inner: TcpStream, rate: Option<usize>) -> Throttle {
        Throttle {
            inner,
            rate,
            start: Instant::now(),
            taken: 0,
        }
    }
}

impl Read for Throttle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(rate) = self.rate else {
            return self.inner.read(buf);
        };
        let allowed_at = Duration::from_secs_f64(self.taken as f64 / rate as f64);
        let elapsed = self.start.elapsed();
        if allowed_at > elapsed {
            thread::sleep(allowed_at - elapsed);
        }
        let chunk = buf.len().min(rate / 50).max(1);
        let n = self.inner.read(&mut buf[..chunk])?;
        self.taken += n;
        Ok(n)
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn run(s: &Scenario, frames: &[Vec<u8>], epoch: Instant) {
    println!(
        "== {}: {} clients ({} slow), {} fps, {} s ==",
        s.name, s.clients, s.slow, s.fps, s.seconds
    );
    // Every client comes from one address here.
    let mut server = start_server(
        &[
            "--source",
            "stdin",
            "--max-clients",
            "0",
            "--max-clients-per-address",
            "0",
        ],
        Stdio::piped(),
    );
    let pid = server.child.id();
    let mut stdin = server.child.stdin.take().unwrap();
    let stop_feed = Arc::new(AtomicBool::new(false));
    let published = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let feeder = {
        let frames = frames.to_vec();
        let stop = stop_feed.clone();
        let published = published.clone();
        let fps = s.fps;
        thread::spawn(move || {
            let period = Duration::from_secs(1) / fps;
            let mut next = Instant::now();
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                seq += 1;
                let f = &frames[seq as usize % frames.len()];
                let data = stamp(f, seq, epoch.elapsed().as_nanos() as u64);
                if stdin.write_all(&data).is_err() {
                    return;
                }
                published.store(seq, Ordering::Relaxed);
                next += period;
                let now = Instant::now();
                if next > now {
                    thread::sleep(next - now);
                } else {
                    next = now;
                }
            }
        })
    };
    let measuring = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let ready = Arc::new(Barrier::new(s.clients + 1));
    let handles: Vec<_> = (0..s.clients)
        .map(|i| {
            let slow = (i < s.slow).then_some(s.slow_rate);
            let (m, d, r) = (measuring.clone(), done.clone(), ready.clone());
            let addr = server.addr;
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
    stop_feed.store(true, Ordering::SeqCst);
    let _ = server.child.kill();
    let results: Vec<ClientResult> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let _ = feeder.join();
    drop(server);

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
