//! The WebRTC signalling attacked through the real binary over real TCP and UDP on
//! loopback: WHEP (`POST /whep`, `DELETE /whep/ID`) and camera-streamer's JSON
//! (`POST /webrtc`) refuse bad content types, bodies that are not SDP or JSON, huge and
//! chunked bodies, wrong methods and unknown or malformed session ids, each with a
//! reason; 16 sessions from a real Chromium offer are taken and a 17th refused with
//! `Retry-After`; ending them all leaves the threads and descriptors where they were at
//! rest; the media port answers nothing to garbage datagrams; a session never connected
//! ends by itself; `--auth` covers the signalling.
//!
//! A binary built without WebRTC (plain `cargo test`) says `"webrtc":false` in
//! `/status`; there only its 404 answers are checked. The full run needs
//! `cargo test --features h264,webrtc --test webrtc`.

mod common;

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::hostile::AtRest;
use common::*;

/// A real offer, as Chromium 156's WHEP client sends it (CRLF line ends).
const OFFER: &str = include_str!("fixtures/webrtc/chromium-156-whep-offer.sdp");

/// The most sessions the server runs at once (`MAX_PEERS`).
const MAX_PEERS: usize = 16;

/// The largest signalling body the server reads.
const BODY_LIMIT: usize = 64 * 1024;

/// A session id the server never gave (it could, but not here).
const UNKNOWN_ID: &str = "0123456789abcdef0123456789abcdef";

fn patience() -> Duration {
    Duration::from_secs(60) * slow_factor()
}

fn start(extra: &[&str]) -> Server {
    let mut args: Vec<&str> = "--source test --size 320x240 --fps 15 --webrtc-port 0"
        .split(' ')
        .collect();
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// Whether `server` runs WebRTC; when it does not, checks that the signalling answers
/// 404 with a reason, and says the rest is skipped.
fn runs_webrtc(server: &Server, auth: &[(&str, &str)]) -> bool {
    let status = request_with(server.addr, "GET", "/status", auth);
    assert_eq!(status.status, 200, "{}", status.text());
    let status: serde_json::Value = serde_json::from_slice(&status.body).unwrap();
    if status["webrtc"] == true {
        assert!(
            status["webrtc_port"].as_u64().is_some_and(|p| p > 0),
            "{status}"
        );
        return true;
    }
    assert_eq!(
        status["webrtc_sessions"],
        serde_json::Value::Null,
        "{status}"
    );
    let [whep, json, end] = signal(server.addr, auth);
    for r in [&whep, &end] {
        assert_eq!(r.status, 404, "{}", r.text());
    }
    assert!(whep.text().contains("no WebRTC here"), "{}", whep.text());
    assert_eq!(json.status, 404, "{}", json.text());
    assert!(
        error_of(&json).contains("no WebRTC here"),
        "{}",
        json.text()
    );
    println!("skipped: this binary has no WebRTC (build with --features h264,webrtc)");
    false
}

/// The three signalling requests that open or end a session, as `auth` sends them: a
/// WHEP offer, camera-streamer's `request`, and the end of a session nobody opened.
fn signal(addr: SocketAddr, auth: &[(&str, &str)]) -> [Response; 3] {
    [
        post(addr, "/whep", "application/sdp", OFFER, auth),
        ask_offer(addr, auth),
        request_with(addr, "DELETE", &format!("/whep/{UNKNOWN_ID}"), auth),
    ]
}

/// camera-streamer's `request`: asks for an offer of this side's.
fn ask_offer(addr: SocketAddr, auth: &[(&str, &str)]) -> Response {
    post(
        addr,
        "/webrtc",
        "application/json",
        r#"{"type":"request"}"#,
        auth,
    )
}

fn post(
    addr: SocketAddr,
    path: &str,
    content_type: &str,
    body: &str,
    auth: &[(&str, &str)],
) -> Response {
    let mut headers = vec![("Content-Type", content_type)];
    headers.extend_from_slice(auth);
    request_with_body(addr, "POST", path, &headers, Some(body))
}

/// Sends `head` (a request head without its body) and reads the answer.
fn send_head(addr: SocketAddr, head: &str) -> Response {
    let mut s = connect(addr);
    s.write_all(head.as_bytes()).unwrap();
    let mut r = BufReader::new(s);
    let (status, headers) = read_head(&mut r);
    let mut body = Vec::new();
    let n: usize = headers["content-length"].parse().unwrap();
    body.resize(n, 0);
    r.read_exact(&mut body).unwrap();
    Response {
        status,
        headers,
        body,
    }
}

/// The `"error"` of a JSON answer, which must be JSON.
fn error_of(r: &Response) -> String {
    assert_eq!(r.header("content-type"), Some("application/json"));
    let doc: serde_json::Value =
        serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: not JSON: {}", r.text()));
    doc["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no \"error\" in {doc}"))
        .to_string()
}

/// Opens a WHEP session from the Chromium offer; its `Location` path.
fn open_session(addr: SocketAddr) -> String {
    let r = post(addr, "/whep", "application/sdp", OFFER, &[]);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/sdp"));
    assert!(r.text().starts_with("v=0\r\n"), "{}", r.text());
    assert!(r.text().contains("m=video"), "{}", r.text());
    let location = r.header("location").expect("Location").to_string();
    let id = location.strip_prefix("/whep/").expect("/whep/ID");
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{location}"
    );
    location
}

fn sessions(server: &Server) -> u64 {
    server.status()["webrtc_sessions"].as_u64().unwrap()
}

#[test]
fn whep_refuses_what_it_cannot_use_with_a_reason() {
    let server = start(&[]);
    if !runs_webrtc(&server, &[]) {
        return;
    }
    let addr = server.addr;

    for content_type in ["text/plain", "application/json", "application/sdpx"] {
        let r = post(addr, "/whep", content_type, OFFER, &[]);
        assert_eq!(r.status, 415, "{content_type}: {}", r.text());
        assert!(r.text().contains("application/sdp"), "{}", r.text());
    }
    let r = request_with_body(addr, "POST", "/whep", &[], Some(OFFER));
    assert_eq!(r.status, 415, "no Content-Type: {}", r.text());

    let r = post(addr, "/whep", "application/sdp", "hello, camera", &[]);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("not SDP"), "{}", r.text());

    // The same offer with its video section made an audio one.
    let audio_only = OFFER.replace("m=video", "m=audio");
    let r = post(addr, "/whep", "application/sdp", &audio_only, &[]);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("video"), "{}", r.text());

    let r = send_head(
        addr,
        &format!(
            "POST /whep HTTP/1.1\r\nHost: test\r\nContent-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n",
            BODY_LIMIT + 1
        ),
    );
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.text().contains(&BODY_LIMIT.to_string()), "{}", r.text());
    let r = send_head(
        addr,
        "POST /whep HTTP/1.1\r\nHost: test\r\nContent-Type: application/sdp\r\n\
         Transfer-Encoding: chunked\r\n\r\n",
    );
    assert_eq!(r.status, 411, "{}", r.text());
    let r = send_head(
        addr,
        "POST /whep HTTP/1.1\r\nHost: test\r\nContent-Type: application/sdp\r\n\r\n",
    );
    assert_eq!(r.status, 411, "no Content-Length: {}", r.text());

    let r = get(addr, "/whep");
    assert_eq!(r.status, 405, "{}", r.text());
    assert_eq!(r.header("allow"), Some("POST"));
    let r = request(addr, "DELETE", "/whep");
    assert_eq!(r.status, 405, "{}", r.text());
    assert_eq!(r.header("allow"), Some("POST"));
    let r = request(addr, "POST", &format!("/whep/{UNKNOWN_ID}"));
    assert_eq!(r.status, 405, "{}", r.text());
    assert_eq!(r.header("allow"), Some("DELETE"));

    for path in [
        format!("/whep/{UNKNOWN_ID}"),
        format!("/whep/{}", &UNKNOWN_ID[..31]),
        format!("/whep/{UNKNOWN_ID}0"),
        "/whep/../x".to_string(),
        "/whep/..%2fstatus".to_string(),
        "/whep/%00".to_string(),
    ] {
        let r = request(addr, "DELETE", &path);
        assert_eq!(r.status, 404, "DELETE {path}: {}", r.text());
    }

    // Nothing refused opened a session, and the server still serves.
    assert_eq!(sessions(&server), 0);
    assert_eq!(get(addr, "/snapshot.jpg").status, 200);
}

#[test]
fn camera_streamer_json_refuses_with_a_json_error() {
    let server = start(&[]);
    if !runs_webrtc(&server, &[]) {
        return;
    }
    let addr = server.addr;
    let refused = |body: &str, status: u16, says: &str| {
        let r = post(addr, "/webrtc", "application/json", body, &[]);
        assert_eq!(r.status, status, "{body}: {}", r.text());
        let why = error_of(&r);
        assert!(why.contains(says), "{body}: {why}");
    };
    refused("{\"type\":", 400, "bad JSON");
    refused("not json at all", 400, "bad JSON");
    refused("\u{0}\u{ff}", 400, "bad JSON");
    refused(&"[".repeat(5000), 400, "nested");
    refused("[1,2]", 400, "JSON object");
    refused("{}", 400, "\"type\"");
    refused(r#"{"type":"dance"}"#, 400, "unknown \"type\"");
    refused(r#"{"type":7}"#, 400, "\"type\"");
    refused(r#"{"type":"answer","sdp":"v=0"}"#, 400, "\"id\"");
    refused(
        r#"{"type":"answer","id":"../../etc/passwd","sdp":"v=0"}"#,
        400,
        "session id",
    );
    refused(
        r#"{"type":"remote_candidate","id":"x y","candidates":[]}"#,
        400,
        "session id",
    );
    refused(
        &format!(r#"{{"type":"remote_candidate","id":"{UNKNOWN_ID}","candidates":5}}"#),
        400,
        "\"candidates\" array",
    );
    refused(r#"{"type":"offer"}"#, 400, "\"sdp\"");
    refused(r#"{"type":"offer","sdp":"hello"}"#, 400, "not SDP");
    refused(
        &format!(r#"{{"type":"answer","id":"{UNKNOWN_ID}","sdp":"v=0\r\n"}}"#),
        404,
        "no WebRTC session",
    );
    refused(
        &format!(
            r#"{{"type":"remote_candidate","id":"{UNKNOWN_ID}","candidates":[{{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host"}}]}}"#
        ),
        404,
        "no WebRTC session",
    );

    // Huge and chunked bodies are refused before any is read.
    let r = send_head(
        addr,
        "POST /webrtc HTTP/1.1\r\nHost: test\r\nContent-Length: 1000000000\r\n\r\n",
    );
    assert_eq!(r.status, 413, "{}", r.text());
    let r = send_head(
        addr,
        "POST /webrtc HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    assert_eq!(r.status, 411, "{}", r.text());

    // The exchange camera-streamer's page runs: an offer of this side's, with an id the
    // client's answer can name.
    let r = ask_offer(addr, &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    let offer: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(offer["type"], "offer", "{offer}");
    assert!(
        offer["sdp"].as_str().unwrap().contains("m=video"),
        "{offer}"
    );
    let id = offer["id"].as_str().unwrap();
    // Not SDP for that session: refused, with the reason.
    let answer = serde_json::json!({"type": "answer", "id": id, "sdp": "hello"});
    refused(&answer.to_string(), 400, "SDP");
    assert!(sessions(&server) <= 1);
    let r = request(addr, "DELETE", &format!("/whep/{id}"));
    assert!(matches!(r.status, 200 | 404), "{}", r.text());
    assert_eq!(sessions(&server), 0);
}

#[test]
fn sixteen_sessions_then_503_and_nothing_left_after_they_end() {
    let server = start(&[]);
    if !runs_webrtc(&server, &[]) {
        return;
    }
    let addr = server.addr;
    let pid = server.child.id();
    let rest = AtRest::take(pid, addr);

    let began = Instant::now();
    let locations: Vec<String> = (0..MAX_PEERS).map(|_| open_session(addr)).collect();
    let mut distinct = locations.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        MAX_PEERS,
        "session ids repeat: {locations:?}"
    );
    assert_eq!(sessions(&server), MAX_PEERS as u64);

    let r = post(addr, "/whep", "application/sdp", OFFER, &[]);
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.header("retry-after").is_some(), "{:?}", r.headers);
    assert!(r.text().contains("16 WebRTC sessions"), "{}", r.text());
    let r = ask_offer(addr, &[]);
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(error_of(&r).contains("16 WebRTC sessions"));

    for location in &locations {
        let r = request(addr, "DELETE", location);
        assert_eq!(r.status, 200, "DELETE {location}: {}", r.text());
    }
    assert_eq!(sessions(&server), 0);
    // Sessions opened and ended in a burst are logged at most a line a second of each
    // kind: a client opening and ending sessions in a loop cannot grow the log.
    let most = began.elapsed().as_secs() as usize + 1;
    for kind in [" opened (", " ended: "] {
        server.wait_log(kind, patience());
        let lines = server
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("WebRTC session") && l.contains(kind))
            .count();
        assert!(
            (1..=most).contains(&lines),
            "{lines} lines with {kind:?} in {most} s or less"
        );
    }
    // Ended means gone: a second DELETE finds nothing.
    let r = request(addr, "DELETE", &locations[0]);
    assert_eq!(r.status, 404, "{}", r.text());
    rest.assert_back("16 WebRTC sessions opened and ended", patience());

    // A new session is taken again.
    let location = open_session(addr);
    assert_eq!(request(addr, "DELETE", &location).status, 200);
    rest.assert_back("a 17th session opened and ended", patience());
}

/// A small generator of test bytes (xorshift), so that a failing run repeats.
struct Bytes(u64);

impl Bytes {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.next() as u8;
        }
    }
}

#[test]
fn the_media_port_answers_nothing_to_garbage() {
    let server = start(&[]);
    if !runs_webrtc(&server, &[]) {
        return;
    }
    let addr = server.addr;
    let port = server.status()["webrtc_port"].as_u64().unwrap() as u16;
    let rest = AtRest::take(server.child.id(), addr);
    // A session waiting for its browser: garbage must not disturb it either.
    let location = open_session(addr);

    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(("127.0.0.1", port)).unwrap();
    let mut bytes = Bytes(0x9e37_79b9_7f4a_7c15);
    let mut buf = [0u8; 1500];
    let mut sent = 0;
    for i in 0..1000 {
        let len = 1 + (bytes.next() % 1400) as usize;
        bytes.fill(&mut buf[..len]);
        match i % 4 {
            // The first byte of a STUN message (0-3), with STUN's magic cookie.
            0 if len >= 20 => {
                buf[0] &= 0x03;
                buf[4..8].copy_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
            }
            // The first byte of a DTLS record (20-63) and of an RTP packet (128-191).
            1 => buf[0] = 20 + buf[0] % 44,
            2 => buf[0] = 128 + buf[0] % 64,
            _ => {}
        }
        if socket.send(&buf[..len]).is_ok() {
            sent += 1;
        }
    }
    assert!(sent > 900, "only {sent} of 1000 datagrams could be sent");
    // Whatever came back would be waiting by the time the server has answered /status;
    // had nothing listened, loopback's "port unreachable" would be waiting instead.
    assert_eq!(get(addr, "/status").status, 200);
    socket.set_nonblocking(true).unwrap();
    let mut answer = [0u8; 2048];
    match socket.recv(&mut answer) {
        Ok(n) => panic!("the media port answered garbage with {n} bytes"),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Err(e) => panic!("the media port is not there: {e}"),
    }

    assert_eq!(sessions(&server), 1);
    assert_eq!(request(addr, "DELETE", &location).status, 200);
    assert_eq!(get(addr, "/snapshot.jpg").status, 200);
    rest.assert_back("1000 garbage datagrams", patience());
    // Still open: a real offer is answered.
    let location = open_session(addr);
    assert_eq!(request(addr, "DELETE", &location).status, 200);
}

#[test]
fn sessions_never_connected_end_by_themselves() {
    let server = start(&[]);
    if !runs_webrtc(&server, &[]) {
        return;
    }
    let addr = server.addr;
    let location = open_session(addr);
    let r = ask_offer(addr, &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(sessions(&server), 2);
    let opened = Instant::now();
    server.wait_status(patience(), "the unconnected sessions to end", |s| {
        s["webrtc_sessions"] == 0
    });
    println!(
        "two sessions never connected ended after {:.1} s",
        opened.elapsed().as_secs_f64()
    );
    assert_eq!(request(addr, "DELETE", &location).status, 404);
    assert!(
        server.log_text().contains("WebRTC"),
        "{}",
        server.log_text()
    );
}

#[test]
fn auth_covers_the_signalling() {
    let server = start(&["--auth", "ann:s3cret-pw"]);
    use base64::Engine;
    let right = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("ann:s3cret-pw")
    );
    let wrong = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("ann:guess")
    );
    let auth = [("Authorization", right.as_str())];
    for headers in [&[][..], &[("Authorization", wrong.as_str())][..]] {
        for r in signal(server.addr, headers) {
            assert_eq!(r.status, 401, "{}", r.text());
        }
    }
    if !runs_webrtc(&server, &auth) {
        return;
    }
    let r = post(server.addr, "/whep", "application/sdp", OFFER, &auth);
    assert_eq!(r.status, 201, "{}", r.text());
    let location = r.header("location").unwrap();
    // The session is not ended without credentials.
    assert_eq!(request(server.addr, "DELETE", location).status, 401);
    let r = request_with(server.addr, "DELETE", location, &auth);
    assert_eq!(r.status, 200, "{}", r.text());
}
