//! The server binary, started on an ephemeral loopback port and spoken to over real TCP.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::*;

const SMALL: &[&str] = &["--source", "test", "--size", "320x240", "--fps", "20"];

#[test]
fn page_redirect_and_head() {
    let server = Server::start(SMALL);
    let r = get(server.addr, "/");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/index.html"));

    let page = get(server.addr, "/index.html");
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let html = page.text();
    assert!(
        html.contains("stream.mjpg?advance_headers=1"),
        "page uses the browser format"
    );
    assert!(html.contains("alt="), "the picture has alt text");

    let head = request(server.addr, "HEAD", "/index.html");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), page.header("content-length"));
    assert!(head.body.is_empty());
}

#[test]
fn not_found_and_method_not_allowed() {
    let server = Server::start(SMALL);
    let r = get(server.addr, "/../../etc/passwd");
    assert_eq!(r.status, 404);
    assert!(r.text().contains("not found"), "{}", r.text());
    assert_eq!(get(server.addr, "/?action=reboot").status, 404);
    for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
        let r = request(server.addr, method, "/stream.mjpg");
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.header("allow"), Some("GET, HEAD"));
    }
    // Where POST is answered, Allow says so.
    let r = request(server.addr, "PUT", "/controls");
    assert_eq!(
        (r.status, r.header("allow")),
        (405, Some("GET, HEAD, POST"))
    );
    // Allow lists exactly what the path takes: every method it names is answered (not
    // 405), and every one it leaves out is refused with the same list.
    for (path, allow) in [
        ("/controls/reset", "POST"),
        ("/option", "GET, POST"),
        ("/status", "GET, HEAD"),
    ] {
        for method in ["GET", "HEAD", "POST", "PUT"] {
            let r = request(server.addr, method, path);
            if allow.split(", ").any(|m| m == method) {
                assert_ne!(r.status, 405, "{method} {path}");
            } else {
                assert_eq!(
                    (r.status, r.header("allow")),
                    (405, Some(allow)),
                    "{method} {path}"
                );
            }
        }
    }
    let head = request(server.addr, "HEAD", "/stream.mjpg");
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-type"),
        Some("multipart/x-mixed-replace; boundary=FRAME")
    );
    assert!(head.body.is_empty());
    assert_eq!(
        server.status()["clients"],
        0,
        "HEAD does not count as a viewer"
    );
}

#[test]
fn classic_stream_parts_decode_with_the_right_size() {
    let server = Server::start(SMALL);
    let mut c = MjpegClient::open(server.addr, "/stream.mjpg");
    assert_eq!(
        c.headers.get("content-type").map(String::as_str),
        Some("multipart/x-mixed-replace; boundary=FRAME")
    );
    assert_eq!(
        c.headers.get("cache-control").map(String::as_str),
        Some("no-cache, private")
    );
    assert_eq!(
        c.headers.get("pragma").map(String::as_str),
        Some("no-cache")
    );
    assert_eq!(c.headers.get("age").map(String::as_str), Some("0"));
    let mut pictures = Vec::new();
    for _ in 0..5 {
        let (headers, jpeg) = c.next_part();
        assert_eq!(headers["content-type"], "image/jpeg");
        assert_eq!(headers["content-length"], jpeg.len().to_string());
        let (w, h, pixels) = decode(&jpeg);
        assert_eq!((w, h), (320, 240));
        pictures.push(pixels);
    }
    assert!(
        pictures.windows(2).all(|p| p[0] != p[1]),
        "the test pattern moves"
    );
}

#[test]
fn advance_header_stream_and_aliases() {
    let server = Server::start(SMALL);
    let mut c = MjpegClient::open(server.addr, "/stream.mjpg?advance_headers=1");
    for _ in 0..3 {
        let (w, h, _) = decode(&c.next_jpeg());
        assert_eq!((w, h), (320, 240));
    }
    for path in ["/?action=stream", "/stream"] {
        let mut c = MjpegClient::open(server.addr, path);
        assert_eq!(decode(&c.next_jpeg()).0, 320, "{path}");
    }
    for path in ["/snapshot.jpg", "/?action=snapshot", "/snapshot"] {
        let r = get(server.addr, path);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some("image/jpeg"));
        assert_eq!(
            r.header("content-length"),
            Some(r.body.len().to_string().as_str())
        );
        assert_eq!(decode(&r.body).0, 320);
    }
}

#[test]
fn status_reports_source_size_rates_and_clients() {
    let server = Server::start(SMALL);
    // The pattern runs only while somebody watches.
    let mut c = MjpegClient::open(server.addr, "/stream.mjpg");
    c.next_jpeg();
    // A few frames, with time to spare: the debug build on a busy machine may encode
    // far below the configured rate.
    let s = server.wait_status(Duration::from_secs(20), "frames and a rate", |s| {
        s["frames_captured"].as_u64().unwrap() >= 5 && s["fps_measured"].as_f64().unwrap() > 0.0
    });
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert!(s["source"].as_str().unwrap().contains("test pattern"));
    // `auto`: software here unless this machine has a hardware JPEG encoder.
    let encoder = s["encoder"].as_str().unwrap();
    assert!(
        encoder == "software" || encoder.starts_with("v4l2-m2m:/dev/video"),
        "{s}"
    );
    // Only camera modules have a sensor mode; the field is there, null.
    assert_eq!(s.get("sensor_mode"), Some(&serde_json::Value::Null), "{s}");
    assert_eq!(s["width"], 320);
    assert_eq!(s["height"], 240);
    assert_eq!(s["fps_configured"], 20);
    let fps = s["fps_measured"].as_f64().unwrap();
    assert!(fps <= 25.0, "measured fps {fps} above the configured 20");
    assert_eq!(s["frames_dropped"], 0);
    assert_eq!(s["clients"], 1);
    assert_eq!(s["running"], true);
    assert!(s["uptime_seconds"].is_u64());
    // The players the page may pick, best first: MP4 only where H.264 is built in.
    let players = if cfg!(feature = "h264") {
        serde_json::json!(["mp4", "mjpeg"])
    } else {
        serde_json::json!(["mjpeg"])
    };
    assert_eq!(s["players"], players, "{s}");

    drop(c);
    server.wait_status(Duration::from_secs(10), "the viewer to leave", |s| {
        s["clients"] == 0
    });
}

#[test]
fn snapshot_without_a_frame_is_503() {
    // A snapshot of a running source without a frame waits up to 5 s for one; the
    // no-signal picture, which would come after --source-timeout, is kept out of that wait.
    let server = Server::start_with(&["--source", "stdin", "--source-timeout", "60"], true);
    let r = get(server.addr, "/snapshot.jpg");
    assert_eq!(r.status, 503);
    assert!(r.text().contains("no frame yet"), "{}", r.text());
}

#[test]
fn max_clients_refuses_one_more_with_503() {
    let server = Server::start(&[
        "--source",
        "test",
        "--size",
        "160x120",
        "--fps",
        "20",
        "--max-clients",
        "2",
    ]);
    let mut a = MjpegClient::open(server.addr, "/stream.mjpg");
    let mut b = MjpegClient::open(server.addr, "/stream.mjpg");
    a.next_jpeg();
    b.next_jpeg();
    let r = get(server.addr, "/stream.mjpg");
    assert_eq!(r.status, 503);
    assert!(r.text().contains("too many clients"), "{}", r.text());
    drop(a);
    server.wait_status(Duration::from_secs(5), "a freed place", |s| {
        s["clients"] == 1
    });
    let mut c = MjpegClient::open(server.addr, "/stream.mjpg");
    c.next_jpeg();
}

#[test]
fn a_client_that_never_reads_does_not_delay_a_fast_one() {
    let server = Server::start(&["--source", "test", "--size", "320x240", "--fps", "25"]);
    // The stalled client asks for the stream and never reads a byte.
    let mut stalled = connect(server.addr);
    stalled
        .write_all(b"GET /stream.mjpg HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    let mut fast = MjpegClient::open(server.addr, "/stream.mjpg");
    fast.next_jpeg();
    let before = server.status()["frames_captured"].as_u64().unwrap();
    let mut received = 0u64;
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        fast.next_jpeg();
        received += 1;
    }
    let published = server.status()["frames_captured"].as_u64().unwrap() - before;
    assert!(
        received * 10 >= published * 9,
        "fast client got {received} of {published} frames"
    );
    // The stalled client is dropped after the write timeout; its place comes back.
    server.wait_status(
        Duration::from_secs(15),
        "the stalled client to be dropped",
        |s| s["clients"] == 1,
    );
    drop(stalled);
}

#[test]
fn disconnects_free_every_client_thread() {
    let server = Server::start(SMALL);
    let mut clients: Vec<_> = (0..8)
        .map(|i| {
            let path = if i % 2 == 0 {
                "/stream.mjpg"
            } else {
                "/stream.mjpg?advance_headers=1"
            };
            MjpegClient::open(server.addr, path)
        })
        .collect();
    for c in &mut clients {
        c.next_jpeg();
    }
    assert_eq!(server.status()["clients"], 8);
    drop(clients);
    server.wait_status(Duration::from_secs(5), "no clients", |s| s["clients"] == 0);
    server.wait_log("stopped watching", Duration::from_secs(5));
}

/// A frame with a valid marker structure and a scan of `len` bytes, too broken to decode
/// headers (no frame header).
fn structurally_valid_nonsense(len: usize) -> Vec<u8> {
    let mut v = vec![0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02];
    v.resize(6 + len, 0x11);
    v.extend_from_slice(&[0xFF, 0xD9]);
    v
}

#[test]
fn stdin_source_drops_bad_frames_and_streams_the_good_ones() {
    let mut server = Server::start_with(&["--source", "stdin"], true);
    let mut stdin = server.stdin.take().unwrap();
    let mut client = None;
    const DIMS: [(usize, usize); 3] = [(64, 48), (96, 64), (128, 96)];
    let good = DIMS.map(|(w, h)| make_jpeg(w as u16, h as u16, w as u8));
    let bad: [Vec<u8>; 4] = [
        {
            let mut truncated = make_jpeg(80, 60, 4);
            // Cut inside the scan data: the next frame's start shows it is incomplete.
            truncated.truncate(truncated.len() - 40);
            truncated
        },
        structurally_valid_nonsense(9 * 1024 * 1024), // over the 8 MiB cap
        structurally_valid_nonsense(100),             // not a decodable JPEG
        {
            let mut corrupt = make_jpeg(80, 60, 5);
            corrupt[2] = 0x00; // where a marker must be
            corrupt
        },
    ];
    let mut seen_dims = Vec::new();
    for (i, jpeg) in good.iter().enumerate() {
        stdin.write_all(b"some garbage between frames\n").unwrap();
        stdin.write_all(jpeg).unwrap();
        if let Some(b) = bad.get(i) {
            stdin.write_all(b).unwrap();
        }
        if i == 2 {
            stdin.write_all(&bad[3]).unwrap();
        }
        stdin.flush().unwrap();
        server.wait_status(Duration::from_secs(10), "the good frame", |s| {
            s["frames_captured"] == i as u64 + 1
        });
        let c = client.get_or_insert_with(|| MjpegClient::open(server.addr, "/stream.mjpg"));
        loop {
            let (w, h, _) = decode(&c.next_jpeg());
            if seen_dims.last() != Some(&(w, h)) {
                seen_dims.push((w, h));
            }
            if (w, h) == DIMS[i] {
                break;
            }
        }
    }
    // The truncated frame can only be known once the next frame starts; close the input
    // so the last one is judged too.
    drop(stdin);
    let s = server.wait_status(Duration::from_secs(10), "all drops counted", |s| {
        s["frames_dropped"] == 4
    });
    assert_eq!(s["frames_captured"], 3);
    assert_eq!(seen_dims, DIMS.to_vec());
    for needle in ["truncated", "over the size cap", "corrupt"] {
        server.wait_log(needle, Duration::from_secs(5));
    }
}

#[test]
fn file_source_loops_and_exec_source_restarts() {
    let dir = std::env::temp_dir().join(format!("picam-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("three.mjpg");
    let mut data = Vec::new();
    for seed in 0..3 {
        data.extend_from_slice(&make_jpeg(48, 32, seed));
    }
    std::fs::write(&path, &data).unwrap();

    let file_source = format!("file:{}", path.display());
    let server = Server::start(&["--source", &file_source, "--fps", "30"]);
    // Sources run only while somebody watches.
    let viewer = MjpegClient::open(server.addr, "/stream.mjpg");
    server.wait_status(Duration::from_secs(10), "the file to loop", |s| {
        s["frames_captured"].as_u64().unwrap() > 6
    });
    assert_eq!(decode(&get(server.addr, "/snapshot.jpg").body).0, 48);
    drop(viewer);
    drop(server);

    // A command that prints the file once and exits: the source runs it again.
    let exec_source = format!("exec:cat '{}'", path.display());
    let server = Server::start(&["--source", &exec_source]);
    let _viewer = MjpegClient::open(server.addr, "/stream.mjpg");
    let s = server.wait_status(Duration::from_secs(10), "a restart", |s| {
        s["frames_captured"].as_u64().unwrap() >= 6
    });
    assert!(s["source_restarts"].as_u64().unwrap() >= 1, "{s}");
    server.wait_log(
        "exited (exit status: 0) after 3 frames; restarting in",
        Duration::from_secs(5),
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Runs the binary with `args` and `env`, expecting it to refuse to start.
fn refused(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = server_command();
    cmd.args(args).envs(env.iter().copied());
    let out = cmd.output().expect("run the binary");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), stderr)
}

#[test]
fn bad_option_values_exit_2_with_one_clear_line() {
    for (args, env, needle) in [
        (
            vec!["--fps", "fast"],
            vec![],
            "invalid value 'fast' for --fps: expected a whole number from 1 to 240",
        ),
        (
            vec!["--size", "640"],
            vec![],
            "invalid value '640' for --size",
        ),
        (
            vec!["--listen", "somewhere"],
            vec![],
            "invalid value 'somewhere' for --listen",
        ),
        (
            vec![],
            vec![("PICAM_QUALITY", "0")],
            "invalid value '0' for PICAM_QUALITY (--quality)",
        ),
        (
            vec!["--source", "webcam"],
            vec![],
            "invalid value 'webcam' for --source",
        ),
        (
            vec!["--source", "libcamera"],
            vec![],
            "not built into this binary",
        ),
        (
            vec!["--source", "rpicam:front"],
            vec![],
            "invalid value 'rpicam:front' for --source: 'rpicam:' needs a camera index",
        ),
        (
            vec!["--rotation", "45"],
            vec![],
            "invalid value '45' for --rotation: expected 0, 90, 180 or 270",
        ),
        (
            vec!["--source", "stdin", "--rotation", "270"],
            vec![],
            "--rotation 270 cannot be done on the JPEG pictures of stdin",
        ),
        (
            vec!["--source", "file:/nonexistent/clip.mjpg"],
            vec![],
            "cannot open /nonexistent/clip.mjpg",
        ),
        (
            vec!["--encoder", "gpu"],
            vec![],
            "invalid value 'gpu' for --encoder: expected auto, hardware or software",
        ),
        (
            vec!["--source", "test"],
            vec![("PICAM_ENCODER", "hardware")],
            "--encoder hardware: no V4L2 memory-to-memory JPEG encoder found",
        ),
        (
            vec!["--frobnicate"],
            vec![],
            "unknown option '--frobnicate'",
        ),
    ] {
        // Refusals of libcamera options apply only to binaries without libcamera.
        if cfg!(feature = "libcamera")
            && (needle.contains("libcamera") || needle.contains("not built"))
        {
            continue;
        }
        let mut all = vec!["--listen", "127.0.0.1:0"];
        all.extend(args.iter());
        let (code, stderr) = refused(&all, &env);
        assert_eq!(code, 2, "{args:?} {env:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.starts_with("picam-stream: "), "{stderr}");
    }
}

#[test]
fn help_and_version() {
    let out = server_command().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for word in [
        "--listen",
        "--source",
        "--size",
        "--fps",
        "--quality",
        "--max-clients",
        "--encoder",
        "PICAM_ENCODER",
        "--rotation",
        "--hflip",
        "--vflip",
        "--list-cameras",
        "PICAM_SOURCE",
        "PICAM_ROTATION",
        "PICAM_HFLIP",
        "PICAM_VFLIP",
        "advance_headers",
    ] {
        assert!(help.contains(word), "help mentions {word}");
    }
    let out = server_command().arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        format!("picam-stream {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn sigterm_and_sigint_stop_within_a_second_with_clients_watching() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        let mut server = Server::start(SMALL);
        let mut a = MjpegClient::open(server.addr, "/stream.mjpg");
        let mut b = MjpegClient::open(server.addr, "/stream.mjpg?advance_headers=1");
        a.next_jpeg();
        b.next_jpeg();
        let sent = Instant::now();
        kill(Pid::from_raw(server.child.id() as i32), signal).unwrap();
        let limit = Duration::from_secs(1) * slow_factor();
        let status = loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                sent.elapsed() < limit,
                "still running {limit:?} after {signal}"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(status.code(), Some(0), "{signal}: {}", server.log_text());
        // The streams were ended, not cut off mid-part: reading reaches the end.
        let mut rest = Vec::new();
        let _ = a.reader.read_to_end(&mut rest);
    }
}

#[test]
fn serves_ipv6_loopback() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback here; skipping");
        return;
    }
    let mut cmd = server_command();
    cmd.args([
        "--listen", "[::1]:0", "--source", "test", "--size", "160x120",
    ])
    .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let addr = loop {
        let line = lines.next().expect("log line").unwrap();
        if let Some(a) = line.split("listening on ").nth(1) {
            break a.trim().parse().unwrap();
        }
    };
    let r = get(addr, "/snapshot.jpg");
    let _ = child.kill();
    let _ = child.wait();
    // The first frame may not be ready yet; both answers prove the server is there.
    assert!(r.status == 200 || r.status == 503, "{}", r.status);
}

#[test]
fn recovers_when_the_descriptor_table_fills_up() {
    // A hard limit of 64 open files: unfinished requests fill the table, accept fails,
    // and the server must take connections again once they are gone.
    let bin = server_command();
    let mut words: Vec<String> = vec![bin.get_program().to_string_lossy().into_owned()];
    words.extend(bin.get_args().map(|a| a.to_string_lossy().into_owned()));
    let script = format!(
        "ulimit -n 64 && exec {} --listen 127.0.0.1:0 --source test --size 160x120 --fps 5",
        words.join(" ")
    );
    let mut child = std::process::Command::new("/bin/sh")
        .args(["-c", &script])
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let child = KillOnDrop(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log = Vec::new();
    let addr: std::net::SocketAddr = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("server starts");
        log.push(line.clone());
        if let Some(a) = line.split("listening on ").nth(1) {
            break a.trim().parse().unwrap();
        }
    };
    assert_eq!(get(addr, "/status").status, 200);
    std::thread::sleep(Duration::from_millis(500));
    while let Ok(line) = rx.try_recv() {
        log.push(line);
    }
    // Each has begun a request: a connection that sends nothing is not even accepted
    // for a while (TCP_DEFER_ACCEPT).
    let idle: Vec<_> = (0..60)
        .map(|_| {
            let mut c = connect(addr);
            c.write_all(b"G").unwrap();
            c
        })
        .collect();
    // Wait until the server says accepting failed.
    let deadline = Instant::now() + Duration::from_secs(10) * slow_factor();
    // EMFILE: "Too many open files" with glibc, "No file descriptors available" with musl.
    while !log.iter().any(|l| l.contains("(os error 24)")) {
        assert!(
            Instant::now() < deadline,
            "no accept failure seen; log: {log:?}"
        );
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            log.push(line);
        }
    }
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(10) * slow_factor();
    loop {
        if matches!(try_get(addr, "/status"), Some((200, _))) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "server did not recover; log: {log:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The line may still be on its way from the server's standard error.
    let deadline = Instant::now() + Duration::from_secs(5) * slow_factor();
    while !log
        .iter()
        .any(|l| l.contains("accepting connections again"))
    {
        assert!(Instant::now() < deadline, "{log:?}");
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            log.push(line);
        }
    }
    drop(child);
}

/// Ends a child process however the test ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_stalled_source_has_its_newest_frame_sent_again() {
    let mut server = Server::start_with(&["--source", "stdin"], true);
    let mut stdin = server.stdin.take().unwrap();
    let jpeg = make_jpeg(64, 48, 7);
    stdin.write_all(&jpeg).unwrap();
    stdin.flush().unwrap();
    server.wait_status(Duration::from_secs(10), "the frame", |s| {
        s["frames_captured"] == 1
    });
    for path in ["/stream.mjpg", "/stream.mjpg?advance_headers=1"] {
        let mut c = MjpegClient::open(server.addr, path);
        let started = Instant::now();
        for _ in 0..3 {
            assert_eq!(c.next_jpeg(), jpeg, "{path}: whole frames, the same one");
        }
        // Two repeats at about one a second.
        assert!(started.elapsed() >= Duration::from_millis(1500), "{path}");
    }
    drop(stdin);
}

#[test]
fn runs_as_an_unprivileged_user() {
    let me = std::fs::read_to_string("/proc/self/status").unwrap();
    let root = me
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    if !root {
        println!("skipped: switching to an unprivileged user needs root");
        return;
    }
    if under_emulator() {
        println!("skipped under an emulator");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    // A copy that the unprivileged user can reach whatever the checkout's permissions.
    let dir = std::env::temp_dir().join(format!("picam-unprivileged-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.join("picam-stream");
    std::fs::copy(server_binary(), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&bin)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--source",
            "test",
            "--size",
            "160x120",
        ]);
    let server = Server::start_command(cmd);
    let proc_status =
        std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    let field = |name: &str| {
        proc_status
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| {
                l[name.len()..]
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap()
    };
    assert_eq!(field("Uid:"), "65534 65534 65534 65534");
    assert_eq!(field("Groups:"), "");
    assert_eq!(field("CapEff:"), "0000000000000000");
    // The snapshot wakes the idle pattern and waits for its frame.
    let snap = get(server.addr, "/snapshot.jpg");
    assert_eq!(snap.status, 200);
    assert_eq!(decode(&snap.body).0, 160);
    server.wait_status(Duration::from_secs(10), "a frame", |s| {
        s["frames_captured"].as_u64().unwrap() > 0
    });
    let mut stream = MjpegClient::open(server.addr, "/stream.mjpg");
    assert_eq!(decode(&stream.next_jpeg()).1, 120);
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The device tree's model string of a Raspberry Pi 5 (tests/fixtures/pi).
fn pi5_model() -> String {
    format!(
        "{}/tests/fixtures/pi/pi5-device-tree-model",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn a_pi_5_encodes_in_software_and_refuses_hardware_clearly() {
    let model = pi5_model();
    let env = [(picam_stream::board::MODEL_VAR, model.as_str())];
    if picam_stream::encoder::choice::find_hardware().is_some() {
        eprintln!("this machine has a hardware JPEG encoder: nothing to check");
        return;
    }
    // `--encoder hardware`: refused at start, in one line that names the board.
    let args = ["--listen", "127.0.0.1:0", "--source", "test"];
    let (code, stderr) = refused(&[&args[..], &["--encoder", "hardware"]].concat(), &env);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("a Raspberry Pi 5 Model B has no hardware JPEG encoder"),
        "{stderr}"
    );
    assert!(
        stderr.contains("use --encoder auto or software"),
        "{stderr}"
    );

    // `auto`: one log line saying software and why, and real pictures.
    let server = Server::start_custom(SMALL, false, |cmd| {
        cmd.env(picam_stream::board::MODEL_VAR, &model);
    });
    let mut client = MjpegClient::open(server.addr, "/stream.mjpg");
    let (w, h, _) = decode(&client.next_jpeg());
    assert_eq!((w, h), (320, 240));
    let line = "JPEG encoding in software: a Raspberry Pi 5 Model B has no hardware JPEG encoder";
    server.wait_log(line, Duration::from_secs(10));
    assert_eq!(
        server.log_text().matches(line).count(),
        1,
        "{}",
        server.log_text()
    );
    assert_eq!(server.status()["encoder"], "software");
}

/// `--h264-encoder`: the server says which encoder makes `/stream.mp4` (`h264_encoder` in
/// `/status`), and refuses at start an encoder it does not have, in one clear line.
#[test]
fn h264_encoder_choice_is_reported_or_refused() {
    let hardware_here = picam_stream::h264::hardware::find_h264_node().is_some();
    let refused = |choice: &str| {
        let out = server_command()
            .args(["--listen", "127.0.0.1:0", "--source", "test"])
            .args(["--h264-encoder", choice])
            .output()
            .expect("run the binary");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code() == Some(2)).then_some(stderr)
    };
    // auto: hardware when this machine has an H.264 node, else software if built in.
    let server = Server::start(SMALL);
    let s = server.status();
    let built_in = if s["h264"] == true {
        let expected = if hardware_here {
            "hardware"
        } else {
            "software"
        };
        assert_eq!(s["h264_encoder"], expected, "{s}");
        expected == "software"
    } else {
        assert!(!hardware_here);
        assert!(s["h264_encoder"].is_null(), "{s}");
        assert_eq!(get(server.addr, "/stream.mp4").status, 404);
        false
    };
    drop(server);
    if !hardware_here {
        let stderr = refused("hardware").expect("--h264-encoder hardware stops at start");
        assert!(
            stderr.contains("--h264-encoder hardware: no V4L2 memory-to-memory node encodes H.264"),
            "{stderr}"
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    }
    if s["h264"] == false {
        let stderr = refused("software").expect("--h264-encoder software stops at start");
        assert!(stderr.contains("without the h264 feature"), "{stderr}");
    } else if built_in {
        let server = Server::start(&[SMALL, &["--h264-encoder", "software"]].concat());
        assert_eq!(server.status()["h264_encoder"], "software");
    }
}
