//! What the load benchmarks share: camera-like test frames stamped with their sequence
//! number and send time, and MJPEG viewers that read every byte of `/stream.mjpg`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use super::cards::test_card;

/// Marks our comment segment: "PCS" + u64 sequence + u64 nanoseconds since `epoch`.
pub const TAG: &[u8; 3] = b"PCS";

/// The benchmark's own arguments: those after the program name, without cargo's `--bench`.
pub fn bench_args() -> Vec<String> {
    std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect()
}

/// The word after `name` in `args`.
pub fn text_flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// The number after `name` in `args`.
pub fn flag(args: &[String], name: &str) -> Option<u64> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

/// `count` 640x480 test cards (see [`test_card`]) of about 45-50 KB each, a camera's
/// size for such pictures.
pub fn make_frames(count: usize) -> Vec<Vec<u8>> {
    let (w, h) = (640usize, 480usize);
    // Pick the noise level that gives frames of about 45-50 KB.
    let mut noise = 12;
    for _ in 0..12 {
        let size = test_card(w, h, 0, noise).len();
        if size < 45_000 {
            noise += 2;
        } else if size > 50_000 {
            noise = noise.saturating_sub(1).max(1);
        } else {
            break;
        }
    }
    (0..count).map(|i| test_card(w, h, i, noise)).collect()
}

/// `jpeg` with our comment segment right after the start-of-image marker.
pub fn stamp(jpeg: &[u8], seq: u64, nanos: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(jpeg.len() + 24);
    out.extend_from_slice(&jpeg[..2]);
    out.extend_from_slice(&[0xFF, 0xFE, 0, 2 + 3 + 16]);
    out.extend_from_slice(TAG);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&nanos.to_be_bytes());
    out.extend_from_slice(&jpeg[2..]);
    out
}

pub fn read_stamp(jpeg: &[u8]) -> Option<(u64, u64)> {
    if jpeg.len() < 25 || jpeg[2..4] != [0xFF, 0xFE] || &jpeg[6..9] != TAG {
        return None;
    }
    let seq = u64::from_be_bytes(jpeg[9..17].try_into().ok()?);
    let nanos = u64::from_be_bytes(jpeg[17..25].try_into().ok()?);
    Some((seq, nanos))
}

#[derive(Default)]
pub struct ClientResult {
    pub slow: bool,
    pub error: Option<String>,
    /// Frames, and bytes of parts (headers and JPEG), received while measuring.
    pub frames: u64,
    pub bytes: u64,
    pub skipped: u64,
    pub latencies_us: Vec<u32>,
}

/// One viewer: asks `addr` for `/stream.mjpg`, waits at `ready`, then reads every part
/// (at `slow_rate` bytes a second if given) until `done`, counting while `measuring`.
pub fn client(
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
        let mut part_bytes = 0;
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
            part_bytes += line.len() as u64;
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
            result.bytes += part_bytes + body.len() as u64;
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
pub struct Throttle {
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

pub fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// Hands `deliver` the frames of `frames` in turn, stamped with sequence numbers from 1
/// and `epoch`'s clock, `fps` a second, until `stop` is set or `deliver` returns false.
/// `published` follows the last sequence number delivered.
pub fn pace(
    frames: &[Vec<u8>],
    fps: u32,
    epoch: Instant,
    stop: &AtomicBool,
    published: &AtomicU64,
    mut deliver: impl FnMut(&[u8]) -> bool,
) {
    let period = Duration::from_secs(1) / fps;
    let mut next = Instant::now();
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        seq += 1;
        let f = &frames[seq as usize % frames.len()];
        let data = stamp(f, seq, epoch.elapsed().as_nanos() as u64);
        if !deliver(&data) {
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
}

/// The release binary with `--source stdin` (no limit on clients, all of which come from
/// one address here), fed paced frames by a thread of this process.
pub struct FedServer {
    pub server: super::Server,
    pub pid: u32,
    /// The last sequence number written to the server.
    pub published: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    feeder: Option<thread::JoinHandle<()>>,
}

impl FedServer {
    /// Starts the server and writes `frames` to it, `fps` a second, stamped with `epoch`'s
    /// clock.
    pub fn start(frames: &[Vec<u8>], fps: u32, epoch: Instant) -> FedServer {
        let mut server = super::start_server(
            &[
                "--source",
                "stdin",
                "--max-clients",
                "0",
                "--max-clients-per-address",
                "0",
            ],
            std::process::Stdio::piped(),
        );
        let pid = server.child.id();
        let mut stdin = server.child.stdin.take().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let published = Arc::new(AtomicU64::new(0));
        let feeder = {
            let (frames, stop, published) = (frames.to_vec(), stop.clone(), published.clone());
            thread::spawn(move || {
                pace(&frames, fps, epoch, &stop, &published, |data| {
                    stdin.write_all(data).is_ok()
                })
            })
        };
        FedServer {
            server,
            pid,
            published,
            stop,
            feeder: Some(feeder),
        }
    }

    /// Stops feeding and kills the server: its streams end, viewers see the end.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.server.child.kill();
        if let Some(feeder) = self.feeder.take() {
            let _ = feeder.join();
        }
    }
}
