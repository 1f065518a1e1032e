//! Fan-out cost against its floor: what serving one MJPEG stream to many viewers costs
//! the release server, next to the simplest program that writes the same bytes to the
//! same number of sockets.
//!
//! Two runs, one after the other, with the same paced 640x480 frames (about 47 KB, each
//! stamped with its sequence number) and the same viewers (real TCP clients on loopback
//! that read and count every byte):
//!
//! * **server**: the release binary with `--source stdin`, frames written to its standard
//!   input; its CPU time (user + system) comes from `/proc/PID/stat`.
//! * **floor**: one thread in this process that accepts the viewers on a loopback
//!   listener, answers each request with the same response head, and for every frame
//!   sends each viewer the part head, the JPEG and CRLF with one `writev` (blocking, in
//!   turn); its CPU time is its own thread's clock.
//!
//! Each prints its CPU time per delivered frame in microseconds; the ratio of the two is
//! what the server's threads, wake-ups and bookkeeping cost above the bare writes.
//!
//! ```text
//! cargo bench --bench fanout
//! cargo bench --bench fanout -- --viewers 200 --fps 30 --seconds 20
//! cargo bench --bench fanout -- --rounds 5     # alternate the two five times
//! cargo bench --bench fanout -- --sendfile     # also a floor that sends from a sealed memfd
//! ```

mod support;

use std::io::{IoSlice, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use nix::time::{clock_gettime, ClockId};
use support::proc_usage;
use support::viewers::{bench_args, client, flag, make_frames, pace, ClientResult, FedServer};

/// What a run measured.
struct Figures {
    cpu_us: u64,
    published: u64,
    delivered: u64,
    bytes: u64,
    failed: usize,
}

impl Figures {
    fn per_frame(&self) -> f64 {
        self.cpu_us as f64 / self.delivered.max(1) as f64
    }
}

struct Options {
    viewers: usize,
    fps: u32,
    seconds: u64,
}

fn main() {
    let args = bench_args();
    let o = Options {
        viewers: flag(&args, "--viewers").unwrap_or(100) as usize,
        fps: flag(&args, "--fps").unwrap_or(30) as u32,
        seconds: flag(&args, "--seconds").unwrap_or(10),
    };
    println!("generating frames ...");
    let frames = make_frames(60);
    let mean = frames.iter().map(Vec::len).sum::<usize>() / frames.len();
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "{} viewers, {} fps, {} s each; {} distinct 640x480 frames, mean {mean} bytes; \
         {cores} cores shared by the viewers and the writer\n",
        o.viewers,
        o.fps,
        o.seconds,
        frames.len()
    );
    let epoch = Instant::now();
    let sendfile = args.iter().any(|a| a == "--sendfile");
    let rounds = flag(&args, "--rounds").unwrap_or(1).max(1);
    let (mut ratios, mut sendfile_ratios) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        if rounds > 1 {
            println!("-- round {round} of {rounds}");
        }
        let server = run_server(&o, &frames, epoch);
        report("server", &server, o.viewers);
        let floor = run_floor(&o, &frames, epoch, Way::Writev);
        report("writev floor", &floor, o.viewers);
        ratios.push(server.per_frame() / floor.per_frame());
        println!(
            "ratio server / writev floor: {:.2}x CPU per delivered frame",
            ratios[ratios.len() - 1]
        );
        if sendfile {
            let sealed = run_floor(&o, &frames, epoch, Way::Sendfile);
            report("memfd+sendfile floor", &sealed, o.viewers);
            sendfile_ratios.push(sealed.per_frame() / floor.per_frame());
            println!(
                "ratio memfd+sendfile floor / writev floor: {:.2}x",
                sendfile_ratios[sendfile_ratios.len() - 1]
            );
        }
    }
    if rounds > 1 {
        println!(
            "\nratio server / writev floor over {rounds} rounds: {}",
            spread(&mut ratios)
        );
        if sendfile {
            println!(
                "ratio memfd+sendfile floor / writev floor: {}",
                spread(&mut sendfile_ratios)
            );
        }
    }
}

/// Lowest, median and highest of `ratios`.
fn spread(ratios: &mut [f64]) -> String {
    ratios.sort_by(f64::total_cmp);
    format!(
        "min {:.2}x median {:.2}x max {:.2}x",
        ratios[0],
        ratios[ratios.len() / 2],
        ratios[ratios.len() - 1]
    )
}

fn report(label: &str, f: &Figures, viewers: usize) {
    println!(
        "{label}: {:>6.1} us CPU per delivered frame | {} frames published, {} delivered ({:.1} % of published x viewers), {:.1} MB read{}",
        f.per_frame(),
        f.published,
        f.delivered,
        f.delivered as f64 * 100.0 / f.published.max(1) as f64 / viewers.max(1) as f64,
        f.bytes as f64 / 1e6,
        if f.failed > 0 {
            format!(", {} viewers failed", f.failed)
        } else {
            String::new()
        }
    );
}

/// Opens `o.viewers` viewers on `addr`, lets the stream settle, and measures `cpu_us`
/// (a clock of the writer's CPU time) and `published` over `o.seconds`. `stop` ends
/// the writer once the viewers have been told to finish.
fn measure(
    o: &Options,
    addr: SocketAddr,
    epoch: Instant,
    cpu_us: &dyn Fn() -> u64,
    published: &AtomicU64,
    stop: &dyn Fn(),
) -> Figures {
    let measuring = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let ready = Arc::new(Barrier::new(o.viewers + 1));
    let handles: Vec<_> = (0..o.viewers)
        .map(|_| {
            let (m, d, r) = (measuring.clone(), done.clone(), ready.clone());
            thread::Builder::new()
                .stack_size(128 * 1024)
                .spawn(move || client(addr, None, epoch, m, d, r))
                .unwrap()
        })
        .collect();
    ready.wait();
    thread::sleep(Duration::from_secs(2));
    let cpu0 = cpu_us();
    let seq0 = published.load(Ordering::Relaxed);
    measuring.store(true, Ordering::SeqCst);
    thread::sleep(Duration::from_secs(o.seconds));
    measuring.store(false, Ordering::SeqCst);
    let cpu1 = cpu_us();
    let seq1 = published.load(Ordering::Relaxed);
    done.store(true, Ordering::SeqCst);
    // Viewers blocked in a read wake up with the next frame, or when the writer stops.
    thread::sleep(Duration::from_millis(300));
    stop();
    let results: Vec<ClientResult> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    Figures {
        cpu_us: cpu1 - cpu0,
        published: seq1 - seq0,
        delivered: results.iter().map(|r| r.frames).sum(),
        bytes: results.iter().map(|r| r.bytes).sum(),
        failed: results.iter().filter(|r| r.error.is_some()).count(),
    }
}

fn run_server(o: &Options, frames: &[Vec<u8>], epoch: Instant) -> Figures {
    let fed = std::cell::RefCell::new(FedServer::start(frames, o.fps, epoch));
    let (addr, pid, published) = {
        let f = fed.borrow();
        (f.server.addr, f.pid, f.published.clone())
    };
    measure(
        o,
        addr,
        epoch,
        &|| proc_usage(pid).cpu_us,
        &published,
        &|| fed.borrow_mut().stop(),
    )
}

/// The response head the server sends a stream (with `--cors` unset).
const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nServer: picam-stream/0.1.0\r\nContent-Type: multipart/x-mixed-replace; boundary=FRAME\r\nCache-Control: no-cache, private\r\nPragma: no-cache\r\nAge: 0\r\nConnection: close\r\n\r\n";

/// How the floor hands a frame to the sockets.
#[derive(Clone, Copy)]
enum Way {
    /// One `writev` of part head, JPEG and CRLF per viewer: the kernel copies the frame
    /// once per viewer.
    Writev,
    /// The part written once into a sealed memfd, then one `sendfile` from it per viewer:
    /// one copy per frame, the sockets take references to its pages.
    Sendfile,
}

fn run_floor(o: &Options, frames: &[Vec<u8>], epoch: Instant, way: Way) -> Figures {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let published = Arc::new(AtomicU64::new(0));
    let cpu_ns = Arc::new(AtomicU64::new(0));
    let writer = {
        let (frames, stop, published, cpu_ns) = (
            frames.to_vec(),
            stop.clone(),
            published.clone(),
            cpu_ns.clone(),
        );
        let (viewers, fps) = (o.viewers, o.fps);
        thread::spawn(move || {
            floor(
                &listener, viewers, &frames, fps, epoch, &stop, &published, &cpu_ns, way,
            )
        })
    };
    let figures = measure(
        o,
        addr,
        epoch,
        &|| cpu_ns.load(Ordering::SeqCst) / 1000,
        &published,
        &|| stop.store(true, Ordering::SeqCst),
    );
    let _ = writer.join();
    figures
}

/// The floor: one thread, blocking sockets, one `writev` (or `sendfile`) per frame and
/// viewer.
#[allow(clippy::too_many_arguments)]
fn floor(
    listener: &TcpListener,
    viewers: usize,
    frames: &[Vec<u8>],
    fps: u32,
    epoch: Instant,
    stop: &AtomicBool,
    published: &AtomicU64,
    cpu_ns: &AtomicU64,
    way: Way,
) {
    let mut socks: Vec<TcpStream> = Vec::with_capacity(viewers);
    while socks.len() < viewers {
        let (mut s, _) = listener.accept().unwrap();
        // The request head: read until its blank line.
        let mut got = Vec::new();
        let mut chunk = [0u8; 512];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut chunk).unwrap();
            assert!(n > 0, "viewer closed before its request");
            got.extend_from_slice(&chunk[..n]);
        }
        s.write_all(HEAD).unwrap();
        socks.push(s);
    }
    let thread_cpu = || {
        let t = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).unwrap();
        t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
    };
    pace(frames, fps, epoch, stop, published, |jpeg| {
        let head = format!(
            "--FRAME\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
            jpeg.len()
        );
        if let Way::Sendfile = way {
            let sent = send_sealed(&socks, &[head.as_bytes(), jpeg, b"\r\n"]);
            cpu_ns.store(thread_cpu(), Ordering::SeqCst);
            return sent;
        }
        for s in &mut socks {
            let mut parts = [
                IoSlice::new(head.as_bytes()),
                IoSlice::new(jpeg),
                IoSlice::new(b"\r\n"),
            ];
            let mut left = &mut parts[..];
            while !left.is_empty() {
                match s.write_vectored(left) {
                    Ok(n) => IoSlice::advance_slices(&mut left, n),
                    Err(_) => return false,
                }
            }
        }
        cpu_ns.store(thread_cpu(), Ordering::SeqCst);
        true
    });
}

/// Writes `parts` once into a new memfd, seals it, and sends it whole to every socket
/// with `sendfile`. False when a socket fails.
fn send_sealed(socks: &[TcpStream], parts: &[&[u8]]) -> bool {
    use nix::libc;
    use std::fs::File;
    use std::os::fd::{AsRawFd, FromRawFd};
    // SAFETY: memfd_create reads the NUL-terminated name and returns a new descriptor
    // (or -1), which the File below owns from here on.
    let fd = unsafe {
        libc::memfd_create(
            c"frame".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` is a fresh descriptor nothing else owns.
    let mut file = unsafe { File::from_raw_fd(fd) };
    let len: usize = parts.iter().map(|p| p.len()).sum();
    for p in parts {
        file.write_all(p).unwrap();
    }
    let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;
    // SAFETY: fcntl on a descriptor we own, with an integer argument.
    let sealed = unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, seals) };
    assert_eq!(sealed, 0, "sealing: {}", std::io::Error::last_os_error());
    for s in socks {
        let mut offset: libc::off_t = 0;
        while (offset as usize) < len {
            let left = len - offset as usize;
            // SAFETY: sendfile between two descriptors we own, advancing `offset`, a
            // local the kernel writes through the pointer for the call's duration.
            let n = unsafe { libc::sendfile(s.as_raw_fd(), fd, &mut offset, left) };
            if n <= 0 {
                return false;
            }
        }
    }
    true
}
