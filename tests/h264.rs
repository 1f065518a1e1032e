//! The live H.264 stream, `/stream.mp4`, against the real binary (built with the `h264`
//! feature) serving the test pattern over real TCP: `ffprobe` and `ffmpeg` read and
//! decode it, a viewer joining mid-stream starts with a key frame, a viewer that never
//! reads neither holds memory without bound nor slows another, and nothing is encoded
//! while no `/stream.mp4` viewer exists.
//!
//! `ffprobe` and `ffmpeg` come from Debian's ffmpeg package (.ci/host-packages); where
//! they are missing outside CI, the tests that need them say so and pass.

mod common;

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

const SIZE: &str = "320x240";
const FPS: &str = "15";

/// Upper bound on every wait for something the server should do by itself.
fn patience() -> Duration {
    Duration::from_secs(120) * slow_factor()
}

fn start() -> Server {
    Server::start(&["--source", "test", "--size", SIZE, "--fps", FPS])
}

/// Whether `tool` runs here; outside CI a missing tool skips the test, in CI it fails.
fn have(tool: &str) -> bool {
    let found = Command::new(tool)
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is missing: CI installs it (ffmpeg in .ci/host-packages)"
        );
        println!("skipped: {tool} is not installed (apt-get install ffmpeg)");
    }
    found
}

/// Runs `cmd` to its end, killing it after [`patience`]; its exit success and stdout,
/// stderr.
fn run(mut cmd: Command) -> (bool, String, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the tool");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + patience();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (
        status.success(),
        reader.join().unwrap(),
        err_reader.join().unwrap(),
    )
}

/// A `/stream.mp4` client reading box by box.
struct Mp4Client {
    reader: BufReader<TcpStream>,
}

impl Mp4Client {
    fn open(server: &Server) -> Mp4Client {
        let mut stream = connect(server.addr);
        stream
            .set_read_timeout(Some(patience()))
            .expect("read timeout");
        write!(stream, "GET /stream.mp4 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let mut reader = BufReader::new(stream);
        let (status, headers) = read_head(&mut reader);
        assert_eq!(status, 200, "{headers:?}");
        let kind = &headers["content-type"];
        assert!(kind.starts_with("video/mp4; codecs=\"avc1.42"), "{kind}");
        Mp4Client { reader }
    }

    /// The next top-level box: its type and body.
    fn next_box(&mut self) -> ([u8; 4], Vec<u8>) {
        let mut head = [0u8; 8];
        self.reader.read_exact(&mut head).expect("a box header");
        let size = u32::from_be_bytes(head[..4].try_into().unwrap()) as usize;
        assert!((8..64 << 20).contains(&size), "box size {size}");
        let mut body = vec![0u8; size - 8];
        self.reader.read_exact(&mut body).expect("a box body");
        (head[4..].try_into().unwrap(), body)
    }

    /// Reads the initialisation segment.
    fn init(&mut self) {
        assert_eq!(&self.next_box().0, b"ftyp");
        assert_eq!(&self.next_box().0, b"moov");
    }

    /// The next fragment: whether `trun` calls it a sync sample, and the NAL unit types
    /// of its sample.
    fn next_fragment(&mut self) -> (bool, Vec<u8>) {
        let (kind, moof) = self.next_box();
        assert_eq!(&kind, b"moof");
        let (kind, mdat) = self.next_box();
        assert_eq!(&kind, b"mdat");
        // The one sample's flags are trun's last four bytes, the last of the moof.
        let flags = u32::from_be_bytes(moof[moof.len() - 4..].try_into().unwrap());
        let sync = flags & 0x0001_0000 == 0;
        let mut types = Vec::new();
        let mut rest = &mdat[..];
        while rest.len() > 4 {
            let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            types.push(rest[4] & 0x1F);
            rest = &rest[4 + len..];
        }
        (sync, types)
    }
}

/// A server and its `/stream.mp4` URL, when `tool` is here to read it.
fn serve_for(tool: &str) -> Option<(Server, String)> {
    if !have(tool) {
        return None;
    }
    let server = start();
    let url = format!("http://{}/stream.mp4", server.addr);
    Some((server, url))
}

fn count(server: &Server, field: &str) -> u64 {
    let s = server.status();
    s[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} in {s}"))
}

#[test]
fn ffprobe_reads_codec_size_and_rate() {
    let Some((server, url)) = serve_for("ffprobe") else {
        return;
    };
    let mut cmd = Command::new("ffprobe");
    cmd.args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args([
            "stream=codec_name,profile,width,height,avg_frame_rate",
            "-of",
            "json",
        ])
        .arg(&url);
    let (ok, out, err) = run(cmd);
    assert!(ok, "ffprobe failed: {err}\nlog:\n{}", server.log_text());
    let probe: serde_json::Value = serde_json::from_str(&out).expect("ffprobe's JSON");
    let stream = &probe["streams"][0];
    assert_eq!(stream["codec_name"], "h264", "{probe}");
    assert_eq!(stream["profile"], "Constrained Baseline", "{probe}");
    assert_eq!(
        (stream["width"].as_u64(), stream["height"].as_u64()),
        (Some(320), Some(240))
    );
    // The average: decode times follow the frames' arrival, whose jitter makes
    // ffprobe's r_frame_rate the timescale itself. Where ffprobe gives no average
    // (too few pictures probed), the rate of 46 packets' decode times.
    let rate = |r: &str| {
        let (n, d) = r.split_once('/')?;
        let (n, d) = (n.parse::<f64>().ok()?, d.parse::<f64>().ok()?);
        (n > 0.0 && d > 0.0).then(|| n / d)
    };
    let fps = match stream["avg_frame_rate"].as_str().and_then(rate) {
        Some(fps) => fps,
        None => packet_rate(&url),
    };
    // At most the configured rate; fewer when a loaded machine's encoder skips frames.
    assert!((1.0..=15.5).contains(&fps), "frame rate {fps}: {probe}");
}

/// Pictures per second from the decode times ffprobe reads of 46 packets.
fn packet_rate(url: &str) -> f64 {
    let mut cmd = Command::new("ffprobe");
    cmd.args([
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-read_intervals",
        "%+#46",
    ])
    .args(["-show_entries", "packet=dts_time", "-of", "csv=p=0"])
    .arg(url);
    let (ok, out, err) = run(cmd);
    assert!(ok, "ffprobe failed: {err}");
    let times: Vec<f64> = out.lines().filter_map(|l| l.trim().parse().ok()).collect();
    assert!(times.len() >= 2, "packet times: {out}");
    (times.len() - 1) as f64 / (times[times.len() - 1] - times[0])
}

#[test]
fn ffmpeg_decodes_30_frames_without_error() {
    let Some((server, url)) = serve_for("ffmpeg") else {
        return;
    };
    // The stream's decode times follow the capture times, so two pictures can be
    // closer than a frame (a busy encoder catching up, as under qemu). By default ffmpeg
    // puts them on a grid of whole frames, and two on one point of it make its own
    // muxer complain ("non monotonically increasing dts"), which says nothing of the
    // stream; passthrough in the stream's own time base keeps them apart.
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-nostdin", "-v", "error", "-i"]).arg(&url).args([
        "-frames:v",
        "30",
        "-fps_mode",
        "passthrough",
        "-enc_time_base",
        "-1",
        "-f",
        "null",
        "-",
    ]);
    let (ok, _, err) = run(cmd);
    assert!(ok, "ffmpeg failed: {err}\nlog:\n{}", server.log_text());
    assert!(err.trim().is_empty(), "ffmpeg reported errors:\n{err}");
    assert!(count(&server, "h264_frames_encoded") >= 30);
}

#[test]
fn a_viewer_joining_mid_stream_starts_with_a_key_frame() {
    let server = start();
    let mut first = Mp4Client::open(&server);
    first.init();
    let (sync, types) = first.next_fragment();
    assert!(sync && types.contains(&5), "first fragment: {types:?}");
    // Past the first IDR picture: the second viewer joins inside a group.
    let mut p_seen = 0;
    for _ in 0..20 {
        let (sync, types) = first.next_fragment();
        if !sync {
            assert!(types.contains(&1) && !types.contains(&5), "{types:?}");
            p_seen += 1;
        }
    }
    assert!(p_seen > 0, "no picture but IDR pictures");
    let mut second = Mp4Client::open(&server);
    second.init();
    let (sync, types) = second.next_fragment();
    assert!(sync, "the second viewer's first fragment is a sync sample");
    assert!(types.contains(&5), "and an IDR picture: {types:?}");
    for _ in 0..10 {
        first.next_fragment();
        second.next_fragment();
    }
    assert_eq!(count(&server, "h264_viewers"), 2);
}

#[test]
fn a_viewer_that_never_reads_holds_no_memory_and_slows_nobody() {
    let server = start();
    let mut stuck = connect(server.addr);
    write!(stuck, "GET /stream.mp4 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let mut reader = Mp4Client::open(&server);
    reader.init();
    for _ in 0..30 {
        reader.next_fragment();
    }
    let pid = server.child.id();
    let early = proc_usage(pid).rss_kib;
    // 20 s of pictures at 15 fps, read by one viewer while the other reads nothing.
    for _ in 0..300 {
        reader.next_fragment();
    }
    let late = proc_usage(pid).rss_kib;
    assert!(
        late < early + 16 * 1024,
        "memory grew from {early} KiB to {late} KiB with a viewer that never reads"
    );
    let s = server.status();
    assert!(s["h264_frames_encoded"].as_u64().unwrap() >= 330, "{s}");
    drop(stuck);
}

#[test]
fn nothing_is_encoded_without_an_h264_viewer() {
    let server = start();
    let s = server.status();
    assert_eq!(s["h264"], true);
    assert_eq!(s["players"], serde_json::json!(["mp4", "mjpeg"]), "{s}");
    // An MJPEG viewer, read all along on a thread of its own, makes the source run,
    // but no H.264 viewer exists.
    let mjpeg_frames = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (frames, done, addr) = (mjpeg_frames.clone(), done.clone(), server.addr);
        std::thread::spawn(move || {
            let mut mjpeg = MjpegClient::open(addr, "/stream.mjpg");
            while !done.load(Ordering::SeqCst) {
                mjpeg.next_jpeg();
                frames.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let wait_mjpeg = |n: u64| {
        let until = mjpeg_frames.load(Ordering::SeqCst) + n;
        let deadline = Instant::now() + patience();
        while mjpeg_frames.load(Ordering::SeqCst) < until {
            assert!(Instant::now() < deadline, "MJPEG frames stopped");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_mjpeg(30);
    assert_eq!(count(&server, "h264_frames_encoded"), 0);
    {
        let mut viewer = Mp4Client::open(&server);
        viewer.init();
        for _ in 0..15 {
            viewer.next_fragment();
        }
        assert!(count(&server, "h264_frames_encoded") >= 15);
    }
    server.wait_status(patience(), "no H.264 viewer", |s| s["h264_viewers"] == 0);
    // The encoder may finish the picture it was on when the viewer left.
    wait_mjpeg(15);
    let stopped = count(&server, "h264_frames_encoded");
    wait_mjpeg(30);
    assert_eq!(
        count(&server, "h264_frames_encoded"),
        stopped,
        "pictures were encoded with no H.264 viewer"
    );
    done.store(true, Ordering::SeqCst);
    reader.join().unwrap();
}
