//! The harness of the tests and the benchmarks that run the real server binary over
//! real TCP: starting it, HTTP and MJPEG clients, JPEG decoding. The benchmarks include
//! this module through `benches/support`.
#![allow(dead_code)]

pub mod hostile;
pub mod proc;
pub mod scratch;
pub mod vm;

#[allow(unused_imports)]
pub use proc::*;
#[allow(unused_imports)]
pub use scratch::Scratch;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// True when the tests run for another CPU, the server behind the emulator named in
/// PICAM_TEST_EXEC_WRAPPER.
pub fn under_emulator() -> bool {
    std::env::var("PICAM_TEST_EXEC_WRAPPER").is_ok_and(|w| !w.trim().is_empty())
}

/// Slack for slow machines: emulated CPUs are slow.
pub fn slow_factor() -> u32 {
    if under_emulator() {
        4
    } else {
        1
    }
}

/// Whether the server can start itself again (a source process, the `exec:` guardian):
/// qemu-user without a binfmt handler cannot. Says `what` is skipped when it cannot.
pub fn server_can_start_itself(what: &str) -> bool {
    if under_emulator() {
        println!("skipped: {what} cannot be started under the emulator's wrapper");
        return false;
    }
    true
}

/// The server binary cargo built with these tests or benchmarks.
pub fn built_binary() -> &'static str {
    env!("CARGO_BIN_EXE_picam-stream")
}

/// The server binary: the one cargo built with the tests, or PICAM_TEST_BINARY (CI tests
/// the shipped release binary with test executables built in a quicker profile).
pub fn server_binary() -> String {
    std::env::var("PICAM_TEST_BINARY")
        .ok()
        .filter(|b| !b.trim().is_empty())
        .unwrap_or_else(|| built_binary().to_string())
}

/// `program` as a path: itself when it names a directory, else where this process's PATH
/// finds it (itself when nowhere).
fn on_path(program: &str) -> std::path::PathBuf {
    if program.contains('/') {
        return program.into();
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| program.into())
}

/// The server binary as a command, behind the emulator given in PICAM_TEST_EXEC_WRAPPER
/// (e.g. "qemu-arm-static -cpu arm1176") when the tests run for another CPU.
pub fn server_command() -> Command {
    let bin = server_binary();
    let mut cmd = match std::env::var("PICAM_TEST_EXEC_WRAPPER") {
        Ok(w) if !w.trim().is_empty() => {
            let mut words = w.split_whitespace();
            // Found on this process's PATH now: a test may give the server another PATH.
            let mut cmd = Command::new(on_path(words.next().unwrap()));
            cmd.args(words).arg(&bin);
            cmd
        }
        _ => Command::new(&bin),
    };
    // A binary with WebRTC opens UDP port 8000 by default, which servers started side
    // by side would race for. Tests of WebRTC pass --webrtc-port, which wins.
    cmd.env("PICAM_WEBRTC_PORT", "off");
    cmd
}

/// A running server on an ephemeral loopback port; killed when dropped.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<Vec<String>>>,
    pub stdin: Option<ChildStdin>,
}

impl Server {
    pub fn start(args: &[&str]) -> Server {
        Server::start_with(args, false)
    }

    /// Starts the server; `pipe_stdin` gives the test the server's standard input.
    pub fn start_with(args: &[&str], pipe_stdin: bool) -> Server {
        Server::start_stdio(
            args,
            if pipe_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            },
        )
    }

    /// Starts the server after `adjust` has changed the command (directory, environment).
    pub fn start_custom(
        args: &[&str],
        pipe_stdin: bool,
        adjust: impl FnOnce(&mut Command),
    ) -> Server {
        let mut cmd = server_command();
        adjust(&mut cmd);
        cmd.args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(if pipe_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        Server::start_command(cmd)
    }

    /// Starts the server with `stdin` as its standard input.
    pub fn start_stdio(args: &[&str], stdin: Stdio) -> Server {
        let mut cmd = server_command();
        cmd.args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(stdin);
        Server::start_command(cmd)
    }

    /// Starts the server through `cmd`, which holds the program and all its arguments,
    /// logging at the info level.
    pub fn start_command(mut cmd: Command) -> Server {
        cmd.env("RUST_LOG", "info");
        Server::spawn(cmd)
    }

    /// Starts `cmd` as it is (its environment decides the log level), its log collected,
    /// and waits until it says where it listens.
    pub fn spawn(mut cmd: Command) -> Server {
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start the server binary");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let log_w = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let _ = tx.send(rest.trim().to_string());
                }
                log_w.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a.parse().expect("listening address"),
            Err(_) => {
                let _ = child.kill();
                panic!("server did not start; log: {:?}", log.lock().unwrap());
            }
        };
        let stdin = child.stdin.take();
        Server {
            child,
            addr,
            log,
            stdin,
        }
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits until the log has a line containing `needle` (log lines arrive through a
    /// pipe, a little after what they describe).
    pub fn wait_log(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout * slow_factor();
        while !self.log_text().contains(needle) {
            if Instant::now() > deadline {
                panic!("the log never said {needle:?}:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn status(&self) -> serde_json::Value {
        let r = get(self.addr, "/status");
        assert_eq!(r.status, 200, "status: {}", r.text());
        serde_json::from_slice(&r.body).expect("status is JSON")
    }

    /// Polls /status until `pred` holds, or panics after `timeout`.
    pub fn wait_status(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + timeout * slow_factor();
        loop {
            let s = self.status();
            if pred(&s) {
                return s;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; last status {s}; log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    /// Stops the server as a service manager would (SIGTERM, so that it stops what it
    /// started: an `exec:` command's process group, a source process), and kills it if
    /// it is still there after a few seconds.
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).is_ok() {
            let deadline = Instant::now() + Duration::from_secs(3) * slow_factor();
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cmd` (the program and all its arguments, `--listen` on a port 0 among them)
/// with its standard error going to the file `log_path` (a long run's log on disk, not in
/// memory) and waits until it says where it listens; kills it and panics with its log if
/// it exits or takes 30 s. The caller stops the child.
#[allow(clippy::zombie_processes)]
/// The options of a server drawing a small test pattern in a source process of its own.
pub const ISOLATED_PATTERN: &[&str] = &[
    "--source",
    "test",
    "--size",
    "160x120",
    "--fps",
    "15",
    "--isolate",
    "on",
];

/// Waits at most `patience` for the one source process of `server` (`--isolate`) and
/// returns its pid.
pub fn source_process(server: &Server, patience: Duration) -> u32 {
    let deadline = Instant::now() + patience;
    loop {
        if let [pid] = children_of(server.child.id())[..] {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "no source process; log:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn spawn_logging_to_file(mut cmd: Command, log_path: &std::path::Path) -> (Child, SocketAddr) {
    let log = std::fs::File::create(log_path).expect("create the server's log");
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start the server");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(log_path).unwrap_or_default();
        if let Some(addr) = text
            .lines()
            .find_map(|l| l.split("listening on ").nth(1))
            .and_then(|a| a.trim().parse().ok())
        {
            return (child, addr);
        }
        if Instant::now() > deadline || matches!(child.try_wait(), Ok(Some(_))) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server did not start:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10) * slow_factor()))
        .unwrap();
    s
}

/// Reads a response head from `r`: status code and lower-cased headers.
pub fn read_head(r: &mut impl BufRead) -> (u16, HashMap<String, String>) {
    let mut line = String::new();
    r.read_line(&mut line).expect("status line");
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    (status, read_headers(r))
}

pub fn read_headers(r: &mut impl BufRead) -> HashMap<String, String> {
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).expect("header line");
        let line = line.trim_end();
        if line.is_empty() {
            return headers;
        }
        let (k, v) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("bad header {line:?}"));
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
    }
}

/// One request with `Connection: close`, the whole response read.
pub fn request(addr: SocketAddr, method: &str, path: &str) -> Response {
    request_with(addr, method, path, &[])
}

/// Like [`request`], with more header lines (`("Name", "value")`).
pub fn request_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Response {
    request_with_body(addr, method, path, headers, None)
}

/// Like [`request_with`], with a body sent after its `Content-Length`.
pub fn request_with_body(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Response {
    let mut s = connect(addr);
    let mut extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    if let Some(body) = body {
        extra.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: test\r\n{extra}Connection: close\r\n\r\n{}",
        body.unwrap_or("")
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let (status, headers) = read_head(&mut r);
    let mut body = Vec::new();
    if method != "HEAD" {
        match headers.get("content-length") {
            Some(n) => {
                body.resize(n.parse().unwrap(), 0);
                r.read_exact(&mut body).unwrap();
            }
            None => {
                r.read_to_end(&mut body).unwrap();
            }
        }
    }
    Response {
        status,
        headers,
        body,
    }
}

/// `GET path` that reports failure instead of panicking (for servers still starting).
pub fn try_get(addr: SocketAddr, path: &str) -> Option<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut all = Vec::new();
    s.read_to_end(&mut all).ok()?;
    let split = all.windows(4).position(|w| w == b"\r\n\r\n")?;
    let status = std::str::from_utf8(&all[..split])
        .ok()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((status, all[split + 4..].to_vec()))
}

pub fn get(addr: SocketAddr, path: &str) -> Response {
    request(addr, "GET", path)
}

/// `GET path`, waiting up to `wait` for the answer (a full-resolution still takes
/// seconds in a debug build on a busy machine, more in an emulated VM); the body is
/// what comes until the server closes.
pub fn get_patiently(addr: SocketAddr, path: &str, wait: Duration) -> Response {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(wait)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let (status, headers) = read_head(&mut r);
    let mut body = Vec::new();
    r.read_to_end(&mut body).unwrap();
    Response {
        status,
        headers,
        body,
    }
}

/// Reads parts of a `multipart/x-mixed-replace; boundary=FRAME` stream.
pub struct MjpegClient {
    pub reader: BufReader<TcpStream>,
    pub headers: HashMap<String, String>,
    advance: bool,
}

impl MjpegClient {
    pub fn open(addr: SocketAddr, path: &str) -> MjpegClient {
        MjpegClient::open_with(addr, path, &[])
    }

    /// Opens a stream sending more header lines (`("Name", "value")`).
    pub fn open_with(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> MjpegClient {
        let mut s = connect(addr);
        let extra: String = headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}\r\n"))
            .collect();
        write!(s, "GET {path} HTTP/1.1\r\nHost: test\r\n{extra}\r\n").unwrap();
        let mut reader = BufReader::new(s);
        let (status, headers) = read_head(&mut reader);
        assert_eq!(status, 200, "stream answered {status}");
        let advance = path.contains("advance_headers=1");
        let mut c = MjpegClient {
            reader,
            headers,
            advance,
        };
        if advance {
            c.expect_boundary();
        }
        c
    }

    fn expect_boundary(&mut self) {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        assert_eq!(line, "--FRAME\r\n", "expected a boundary line");
    }

    /// The next JPEG and its part headers.
    pub fn next_part(&mut self) -> (HashMap<String, String>, Vec<u8>) {
        if self.advance {
            let headers = read_headers(&mut self.reader);
            assert_eq!(
                headers.get("content-type").map(String::as_str),
                Some("image/jpeg")
            );
            assert!(!headers.contains_key("content-length"));
            // The JPEG runs up to CRLF followed by the next boundary.
            let mut body = Vec::new();
            let end = b"\r\n--FRAME\r\n";
            loop {
                let mut byte = [0u8; 1];
                self.reader.read_exact(&mut byte).expect("stream byte");
                body.push(byte[0]);
                if body.ends_with(end) {
                    body.truncate(body.len() - end.len());
                    return (headers, body);
                }
            }
        }
        self.expect_boundary();
        let headers = read_headers(&mut self.reader);
        let len: usize = headers["content-length"].parse().unwrap();
        let mut body = vec![0u8; len];
        self.reader.read_exact(&mut body).unwrap();
        let mut crlf = [0u8; 2];
        self.reader.read_exact(&mut crlf).unwrap();
        assert_eq!(&crlf, b"\r\n", "each part ends with CRLF");
        (headers, body)
    }

    pub fn next_jpeg(&mut self) -> Vec<u8> {
        self.next_part().1
    }
}

/// The mean luma (0 to 255) of a JPEG.
pub fn mean_luma(jpeg: &[u8]) -> f64 {
    let (_, _, rgb) = decode(jpeg);
    let sum: f64 = rgb
        .chunks_exact(3)
        .map(|p| 0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64)
        .sum();
    sum / (rgb.len() / 3) as f64
}

/// `POST path` with a JSON body: the status and the JSON body of the answer, however
/// long the server takes to give it, up to a minute (an answer that takes longer is a
/// hang).
pub fn post_json(addr: SocketAddr, path: &str, body: &str) -> (u16, serde_json::Value) {
    let mut s = connect(addr);
    s.set_read_timeout(Some(Duration::from_secs(60) * slow_factor()))
        .unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let (status, _) = read_head(&mut r);
    let mut answer = Vec::new();
    r.read_to_end(&mut answer).unwrap();
    let json = serde_json::from_slice(&answer)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&answer)));
    (status, json)
}

/// Each control's value, by name, in a `GET /controls` document.
pub fn values_of(doc: &serde_json::Value) -> Vec<(String, serde_json::Value)> {
    doc["controls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_string(), c["value"].clone()))
        .collect()
}

/// The test pattern's controls at their defaults, as [`values_of`] gives them.
pub fn pattern_defaults() -> Vec<(String, serde_json::Value)> {
    vec![
        ("brightness".into(), 0.into()),
        ("contrast".into(), 100.into()),
        ("pattern".into(), "Colour bars".into()),
    ]
}

/// Decodes a JPEG fully and returns (width, height, pixels).
pub fn decode(jpeg: &[u8]) -> (usize, usize, Vec<u8>) {
    let mut d = zune_jpeg::JpegDecoder::new(jpeg);
    let pixels = d.decode().expect("frame decodes as JPEG");
    let info = d.info().unwrap();
    (info.width as usize, info.height as usize, pixels)
}

/// A real JPEG of `w`x`h` filled with a gradient seeded by `seed`.
pub fn make_jpeg(w: u16, h: u16, seed: u8) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(w as usize * h as usize * 3);
    for y in 0..h as usize {
        for x in 0..w as usize {
            rgb.extend_from_slice(&[
                (x as u8).wrapping_add(seed),
                (y as u8).wrapping_mul(3),
                seed,
            ]);
        }
    }
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 85)
        .encode(&rgb, w, h, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    out
}
