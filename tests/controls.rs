//! Camera controls over HTTP against the real server: `GET /controls` lists the test
//! pattern's controls, `POST /controls` and `/option` change them and the pictures
//! (decoded back) change with them; refused changes change nothing; request bodies
//! are read within the server's limits of size and time; and, with a state directory,
//! changed settings survive a restart of the server, `POST /controls/reset` brings back
//! the defaults, and saved files that cannot be used are set aside with a warning.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn pattern_server(extra: &[&str]) -> Server {
    let mut args = vec!["--source", "test", "--size", "160x120", "--fps", "15"];
    args.extend_from_slice(extra);
    // Without --state-dir nothing is kept, whatever the environment of the tests.
    let server = Server::start_custom(&args, false, |cmd| {
        cmd.env_remove("STATE_DIRECTORY");
    });
    wait_for_controls(&server);
    server
}

/// Waits until the test pattern has put its controls on the board.
fn wait_for_controls(server: &Server) {
    // The pattern's thread puts its controls on the board a moment after the server
    // listens (longer under an emulator): wait for them. (The credentials are those
    // of the test that sets --auth; a server without it does not look at them.)
    let credentials = [("Authorization", "Basic YW5uOnB3")];
    let until = Instant::now() + Duration::from_secs(30);
    while values_of(&listed_with(server.addr, &credentials)).is_empty() {
        assert!(
            Instant::now() < until,
            "the test pattern never listed its controls"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Reads one whole answer (status, headers, body by its length) from `r`.
fn read_answer(r: &mut BufReader<TcpStream>) -> Response {
    let (status, headers) = read_head(r);
    let mut body = vec![0u8; headers["content-length"].parse().unwrap()];
    r.read_exact(&mut body).unwrap();
    Response {
        status,
        headers,
        body,
    }
}

/// `POST path` with `body` and its `Content-Length`, and more header lines.
fn post_with(addr: SocketAddr, path: &str, body: &str, headers: &[(&str, &str)]) -> Response {
    let mut headers = headers.to_vec();
    headers.push(("Content-Type", "application/json"));
    request_with_body(addr, "POST", path, &headers, Some(body))
}

fn post(addr: SocketAddr, path: &str, body: &str) -> Response {
    post_with(addr, path, body, &[])
}

fn json(r: &Response) -> Value {
    assert_eq!(r.header("content-type"), Some("application/json"));
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

/// The controls listed by `GET /controls`, with `headers`.
fn listed_with(addr: SocketAddr, headers: &[(&str, &str)]) -> Value {
    let r = request_with(addr, "GET", "/controls", headers);
    assert_eq!(r.status, 200, "{}", r.text());
    json(&r)
}

/// Each control's value, by name.
fn values(addr: SocketAddr) -> Vec<(String, Value)> {
    values_of(&listed_with(addr, &[]))
}

fn values_of(doc: &Value) -> Vec<(String, Value)> {
    doc["controls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_string(), c["value"].clone()))
        .collect()
}

fn at_defaults() -> Vec<(String, Value)> {
    vec![
        ("brightness".into(), 0.into()),
        ("contrast".into(), 100.into()),
        ("pattern".into(), "Colour bars".into()),
    ]
}

/// The mean luma (0 to 255) of a JPEG.
fn mean_luma(jpeg: &[u8]) -> f64 {
    let (_, _, rgb) = decode(jpeg);
    let sum: f64 = rgb
        .chunks_exact(3)
        .map(|p| 0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64)
        .sum();
    sum / (rgb.len() / 3) as f64
}

/// The share of a JPEG's pixels whose components all lie within 6 of `level`.
fn share_near(jpeg: &[u8], level: u8) -> f64 {
    let (_, _, rgb) = decode(jpeg);
    let near = rgb
        .chunks_exact(3)
        .filter(|p| p.iter().all(|&v| v.abs_diff(level) <= 6))
        .count();
    near as f64 / (rgb.len() / 3) as f64
}

#[test]
fn lists_the_test_patterns_controls_with_every_field() {
    let server = pattern_server(&[]);
    let doc = listed_with(server.addr, &[]);
    assert_eq!(doc["changes_allowed"], true);
    let controls = doc["controls"].as_array().unwrap();
    let brightness = &controls[0];
    for (field, want) in [
        ("name", Value::from("brightness")),
        ("label", "Brightness".into()),
        ("type", "integer".into()),
        ("min", (-100).into()),
        ("max", 100.into()),
        ("step", 1.into()),
        ("default", 0.into()),
        ("value", 0.into()),
        ("read_only", false.into()),
        ("inactive", false.into()),
    ] {
        assert_eq!(brightness[field], want, "brightness.{field} in {doc}");
    }
    assert_eq!(controls[1]["name"], "contrast");
    assert_eq!(
        (controls[1]["min"].clone(), controls[1]["max"].clone()),
        (0.into(), 200.into())
    );
    let pattern = &controls[2];
    assert_eq!(pattern["type"], "menu");
    assert_eq!(
        pattern["choices"],
        serde_json::json!(["Colour bars", "Grey"])
    );
    assert_eq!(pattern["default"], "Colour bars");
    assert_eq!(values_of(&doc), at_defaults());

    // HEAD: the same head, no body.
    let head = request(server.addr, "HEAD", "/controls");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    let length: usize = head.header("content-length").unwrap().parse().unwrap();
    assert_eq!(length, request(server.addr, "GET", "/controls").body.len());
}

#[test]
fn brightness_makes_the_pictures_brighter() {
    let server = pattern_server(&[]);
    let mut stream = MjpegClient::open(server.addr, "/stream.mjpg");
    let before = mean_luma(&stream.next_jpeg());

    let r = post(server.addr, "/controls", r#"{"brightness": 80}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    // The answer is the list as it is now.
    assert_eq!(values_of(&json(&r))[0], ("brightness".into(), 80.into()));

    // Frames drawn before the change may still be on their way: a bounded number.
    let after = (0..30)
        .map(|_| mean_luma(&stream.next_jpeg()))
        .find(|&m| m > before + 30.0)
        .unwrap_or_else(|| panic!("no frame brighter than {before:.1} + 30 after brightness 80"));
    eprintln!("mean luma {before:.1} before, {after:.1} after brightness 80");

    // And back, with contrast 0: every pixel mid-grey, whatever was drawn.
    let r = post(server.addr, "/controls", r#"{"brightness":0,"contrast":0}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    let flat = (0..30)
        .map(|_| decode(&stream.next_jpeg()).2)
        .find(|rgb| rgb.iter().all(|&v| v.abs_diff(128) <= 4))
        .is_some();
    assert!(flat, "contrast 0 did not make the picture flat grey");
}

#[test]
fn refused_changes_say_why_and_change_nothing() {
    let server = pattern_server(&[]);
    let addr = server.addr;
    for (body, says) in [
        (
            r#"{"hue": 1}"#,
            "unknown control 'hue' (known: brightness, contrast, pattern)",
        ),
        (r#"{"brightness": "high"}"#, "takes a whole number"),
        (r#"{"brightness": true}"#, "takes a whole number"),
        (r#"{"brightness": 101}"#, "out of range (-100 to 100)"),
        (r#"{"brightness": 2.5}"#, "takes a whole number"),
        (
            r#"{"pattern": "Plaid"}"#,
            "not one of its choices (\"Colour bars\", \"Grey\")",
        ),
        // One wrong change refuses the good ones with it.
        (
            r#"{"brightness": 10, "contrast": 500}"#,
            "out of range (0 to 200)",
        ),
        (r#"{"brightness": }"#, "bad JSON at byte 15"),
        (r#"{"brightness": {"value": 1}}"#, "nested values"),
        ("", "bad JSON at byte 0"),
    ] {
        let r = post(addr, "/controls", body);
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        let error = json(&r)["error"].as_str().unwrap().to_string();
        assert!(error.contains(says), "{body}: {error}");
        assert!(
            !r.text().trim_end().contains('\n'),
            "{body}: more than one line"
        );
        assert_eq!(values(addr), at_defaults(), "after {body}");
    }
    for (query, says) in [
        ("brightness=abc", "takes a whole number"),
        ("pattern=Plaid", "not one of its choices"),
        ("brightness=1000", "out of range"),
        ("nothing=1", "unknown control 'nothing'"),
    ] {
        let r = get(addr, &format!("/option?{query}"));
        assert_eq!(r.status, 400, "{query}: {}", r.text());
        assert!(r.text().contains(says), "{query}: {}", r.text());
        assert_eq!(values(addr), at_defaults(), "after {query}");
    }
}

#[test]
fn option_sets_one_control_by_name_or_label() {
    let server = pattern_server(&[]);
    let addr = server.addr;
    let r = get(addr, "/option?brightness=10");
    assert_eq!((r.status, r.text().as_str()), (200, "ok\n"));
    let r = request(addr, "POST", "/option?Contrast=150");
    assert_eq!((r.status, r.text().as_str()), (200, "ok\n"));
    let r = get(addr, "/option?pattern=Grey");
    assert_eq!((r.status, r.text().as_str()), (200, "ok\n"));
    assert_eq!(
        values(addr),
        vec![
            ("brightness".into(), 10.into()),
            ("contrast".into(), 150.into()),
            ("pattern".into(), "Grey".into()),
        ]
    );
    // The grey background (128, brightened by 10) behind the moving parts and the text:
    // a third of the pixels decode near 138, where colour bars have next to none.
    let mut stream = MjpegClient::open(addr, "/stream.mjpg");
    let grey = (0..30)
        .map(|_| share_near(&stream.next_jpeg(), 138))
        .inspect(|s| eprintln!("{:.0} % of the pixels near 138", s * 100.0))
        .any(|s| s > 0.2);
    assert!(grey, "the Grey pattern did not show");
}

#[test]
fn switched_off_lists_but_refuses_changes() {
    let server = pattern_server(&["--controls", "off"]);
    let addr = server.addr;
    let doc = listed_with(addr, &[]);
    assert_eq!(doc["changes_allowed"], false);
    assert_eq!(values_of(&doc), at_defaults());
    let r = post(addr, "/controls", r#"{"brightness": 50}"#);
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(json(&r)["error"]
        .as_str()
        .unwrap()
        .contains("--controls off"));
    let r = get(addr, "/option?brightness=50");
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(values(addr), at_defaults());
}

#[test]
fn pages_of_other_sites_may_not_change_the_camera() {
    let server = pattern_server(&[]);
    let addr = server.addr;
    // The test client sends `Host: test`.
    let foreign = [("Origin", "http://evil.example")];
    let r = post_with(addr, "/controls", r#"{"brightness": 50}"#, &foreign);
    assert_eq!(r.status, 403, "{}", r.text());
    let error = json(&r)["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("http://evil.example") && error.contains("--allow-origin"),
        "{error}"
    );
    for headers in [
        // What a browser sends for an <img> or a link on another site's page.
        [("Sec-Fetch-Site", "cross-site"), ("Accept", "image/*")],
        [("Sec-Fetch-Site", "same-site"), ("Accept", "*/*")],
        [("Origin", "null"), ("Accept", "*/*")],
        [("Origin", "http://test.evil.example"), ("Accept", "*/*")],
    ] {
        let r = request_with(addr, "GET", "/option?brightness=50", &headers);
        assert_eq!(r.status, 403, "{headers:?}: {}", r.text());
        let r = request_with(addr, "POST", "/option?brightness=50", &headers);
        assert_eq!(r.status, 403, "{headers:?}: {}", r.text());
    }
    assert_eq!(values(addr), at_defaults());
    // Looking is not changing; the server's own page may change; so may a program.
    assert_eq!(values_of(&listed_with(addr, &foreign)), at_defaults());
    let own = [("Origin", "http://test"), ("Sec-Fetch-Site", "same-origin")];
    let r = post_with(addr, "/controls", r#"{"brightness": 20}"#, &own);
    assert_eq!(r.status, 200, "{}", r.text());
    let r = request_with(addr, "GET", "/option?contrast=120", &own[1..]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(get(addr, "/option?pattern=Grey").status, 200);
    assert_eq!(
        values(addr),
        vec![
            ("brightness".into(), 20.into()),
            ("contrast".into(), 120.into()),
            ("pattern".into(), "Grey".into()),
        ]
    );
    // Nor may another site's page reset them.
    let r = post_with(addr, "/controls/reset", "", &foreign);
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(json(&r)["error"]
        .as_str()
        .unwrap()
        .contains("--allow-origin"));
    assert_eq!(values(addr)[0].1, 20);
}

#[test]
fn allow_origin_lets_the_named_site_change_the_camera() {
    let server = pattern_server(&["--allow-origin", "https://dash.example"]);
    let addr = server.addr;
    let r = post_with(
        addr,
        "/controls",
        r#"{"brightness": 30}"#,
        &[("Origin", "https://dash.example")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = post_with(
        addr,
        "/controls",
        r#"{"brightness": 60}"#,
        &[("Origin", "https://other.example")],
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(values(addr)[0].1, 30);
}

#[test]
fn controls_ask_for_credentials_like_status() {
    let server = pattern_server(&["--auth", "ann:pw"]);
    let addr = server.addr;
    let good = [("Authorization", "Basic YW5uOnB3")];
    assert_eq!(request(addr, "GET", "/controls").status, 401);
    assert_eq!(post(addr, "/controls", r#"{"brightness": 50}"#).status, 401);
    assert_eq!(get(addr, "/option?brightness=50").status, 401);
    assert_eq!(values_of(&listed_with(addr, &good)), at_defaults());
    let r = post_with(addr, "/controls", r#"{"brightness": 50}"#, &good);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(values_of(&listed_with(addr, &good))[0].1, 50);
}

#[test]
fn bodies_must_say_their_length_and_stay_small() {
    let server = pattern_server(&["--allow-origin", "*"]);
    let addr = server.addr;
    let answer_to = |request: &str| {
        let mut s = connect(addr);
        s.write_all(request.as_bytes()).unwrap();
        let mut r = BufReader::new(s);
        let answer = read_answer(&mut r);
        // The server closes the connection after these refusals.
        let mut rest = Vec::new();
        let closed = r.read_to_end(&mut rest).is_ok();
        (answer, closed)
    };
    let big = format!(
        "POST /controls HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{}",
        16 * 1024 + 1,
        " ".repeat(1000)
    );
    let (r, closed) = answer_to(&big);
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(closed && r.header("connection") == Some("close"));

    let (r, closed) = answer_to("POST /controls HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 411, "{}", r.text());
    assert!(closed && r.text().contains("Content-Length"));

    let chunked = "POST /controls HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n0\r\n\r\n";
    let (r, closed) = answer_to(chunked);
    assert_eq!(r.status, 411, "{}", r.text());
    assert!(closed && r.text().contains("chunked"));

    // POST elsewhere is not allowed; the preflight for POST /controls says it is.
    let r = post(addr, "/status", "{}");
    assert_eq!(r.status, 405);
    let r = request_with(
        addr,
        "OPTIONS",
        "/controls",
        &[
            ("Origin", "http://example.test"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type"),
        ],
    );
    assert_eq!(r.status, 204);
    assert!(r
        .header("access-control-allow-methods")
        .unwrap()
        .contains("POST"));
    assert!(r
        .header("access-control-allow-headers")
        .unwrap()
        .contains("Content-Type"));
    assert_eq!(values(addr), at_defaults());
}

#[test]
fn a_trickled_body_is_cut_off_and_others_are_served() {
    let server = pattern_server(&["--header-timeout", "2"]);
    let addr = server.addr;
    let mut slow = connect(addr);
    let started = Instant::now();
    slow.write_all(b"POST /controls HTTP/1.1\r\nHost: t\r\nContent-Length: 40\r\n\r\n{")
        .unwrap();
    let trickle = {
        let mut slow = slow.try_clone().unwrap();
        thread::spawn(move || {
            // One byte every 300 ms: 40 bytes would take 12 s. Bounded either way.
            for _ in 0..40 {
                thread::sleep(Duration::from_millis(300));
                if slow.write_all(b" ").is_err() {
                    break;
                }
            }
        })
    };
    // Meanwhile the server answers others.
    thread::sleep(Duration::from_millis(500));
    assert_eq!(get(addr, "/status").status, 200);
    assert_eq!(values(addr), at_defaults());

    let mut r = BufReader::new(slow);
    let (status, _) = read_head(&mut r);
    let waited = started.elapsed();
    assert_eq!(status, 408);
    eprintln!("the trickled body was cut off after {waited:?}");
    assert!(waited < Duration::from_secs(8), "{waited:?}");
    trickle.join().unwrap();
    assert_eq!(values(addr), at_defaults());
    assert_eq!(get(addr, "/status").status, 200);
}

#[test]
fn a_request_after_a_body_on_one_connection_is_answered() {
    let server = pattern_server(&[]);
    let body = r#"{"brightness":-20,"pattern":"Grey"}"#;
    let mut s = connect(server.addr);
    // Both requests in one write: the second starts right after the body's last byte.
    write!(
        s,
        "POST /controls HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}GET /controls HTTP/1.1\r\nHost: t\r\n\r\n",
        body.len()
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let first = read_answer(&mut r);
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.header("connection"), Some("keep-alive"));
    let second = read_answer(&mut r);
    assert_eq!(second.status, 200, "{}", second.text());
    assert_eq!(
        values_of(&json(&second)),
        vec![
            ("brightness".into(), (-20).into()),
            ("contrast".into(), 100.into()),
            ("pattern".into(), "Grey".into()),
        ]
    );
    // And the connection is still open for a third.
    r.get_mut()
        .write_all(b"GET /status HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(read_answer(&mut r).status, 200);
    let mut line = String::new();
    r.get_mut()
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    assert!(r.read_line(&mut line).is_err() || line.is_empty());
}

#[test]
fn a_source_without_controls_lists_none() {
    let server = Server::start_with(&["--source", "stdin"], true);
    let r = request(server.addr, "GET", "/controls");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "{\"changes_allowed\":true,\"controls\":[]}\n");
    let r = post(server.addr, "/controls", r#"{"brightness": 1}"#);
    assert_eq!(r.status, 400);
    assert!(json(&r)["error"]
        .as_str()
        .unwrap()
        .contains("this camera has no controls"));
}

#[test]
fn a_client_that_expects_100_continue_gets_it_before_sending_its_body() {
    let server = pattern_server(&[]);
    let body = format!(r#"{{"contrast": 120{}}}"#, " ".repeat(2000));
    let mut s = connect(server.addr);
    write!(
        s,
        "POST /controls HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let (status, _) = read_head(&mut r);
    assert_eq!(status, 100);
    r.get_mut().write_all(body.as_bytes()).unwrap();
    let answer = read_answer(&mut r);
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        values_of(&json(&answer))[1],
        ("contrast".into(), 120.into())
    );
}

// Settings kept in a state directory.

/// The test pattern's file in a state directory.
const PATTERN_FILE: &str = "controls-test-pattern.json";

/// A test pattern server keeping its settings in `dir`.
fn keeping_server(dir: &std::path::Path, extra: &[&str]) -> Server {
    let mut args = vec!["--state-dir", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    pattern_server(&args)
}

/// The share of pixels near `level` in the first of the next frames for which `pred`
/// holds; panics with the shares seen when none of 60 does.
fn frame_where(server: &Server, level: u8, pred: impl Fn(f64) -> bool) -> f64 {
    let mut stream = MjpegClient::open(server.addr, "/stream.mjpg");
    let mut seen = Vec::new();
    for _ in 0..60 {
        let share = share_near(&stream.next_jpeg(), level);
        if pred(share) {
            return share;
        }
        seen.push(format!("{:.2}", share));
    }
    panic!("no frame as expected: shares of pixels near {level}: {seen:?}");
}

/// brightness 60, contrast 150 and the grey background: (128 - 128) * 1.5 + 128 + 60.
const SET_GREY: u8 = 188;

fn the_settings() -> Vec<(String, Value)> {
    vec![
        ("brightness".into(), 60.into()),
        ("contrast".into(), 150.into()),
        ("pattern".into(), "Grey".into()),
    ]
}

#[test]
fn settings_survive_a_restart_and_show_in_the_picture() {
    let dir = Scratch::new("kept");
    let file = dir.path(PATTERN_FILE);
    let first = keeping_server(dir.dir(), &[]);
    first.wait_log("camera settings are kept in", Duration::from_secs(30));
    // Nothing is written before a change.
    assert!(!file.exists());
    let r = post(
        first.addr,
        "/controls",
        r#"{"brightness":60,"pattern":"Grey"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = get(first.addr, "/option?contrast=150");
    assert_eq!(r.status, 200, "{}", r.text());
    // A button or a refused change is not kept; the file holds what was set, by name.
    let r = post(first.addr, "/controls", r#"{"brightness":500}"#);
    assert_eq!(r.status, 400);
    let saved = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        saved,
        "{\"@camera\":\"test pattern\",\"brightness\":60,\"pattern\":\"Grey\",\"contrast\":150}\n"
    );
    drop(first);

    let second = keeping_server(dir.dir(), &[]);
    assert_eq!(values(second.addr), the_settings());
    second.wait_log(
        &format!("camera settings: applied 3 saved in {}", file.display()),
        Duration::from_secs(30),
    );
    let share = frame_where(&second, SET_GREY, |s| s > 0.2);
    eprintln!(
        "after the restart {:.0} % of the pixels are near {SET_GREY}",
        share * 100.0
    );
    // No temporary file left beside it.
    let names: Vec<String> = std::fs::read_dir(dir.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec![PATTERN_FILE.to_string()]);
}

#[test]
fn reset_brings_back_the_defaults_and_forgets_the_file() {
    let dir = Scratch::new("reset");
    let file = dir.path(PATTERN_FILE);
    let server = keeping_server(dir.dir(), &[]);
    let r = post(
        server.addr,
        "/controls",
        r#"{"brightness":60,"contrast":150,"pattern":"Grey"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(file.exists());
    frame_where(&server, SET_GREY, |s| s > 0.2);

    // Only POST resets.
    let r = get(server.addr, "/controls/reset");
    assert_eq!(r.status, 405, "{}", r.text());
    assert_eq!(r.header("allow"), Some("POST"));
    assert_eq!(values(server.addr), the_settings());

    let r = request(server.addr, "POST", "/controls/reset");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(values_of(&json(&r)), at_defaults());
    assert!(!file.exists(), "the saved settings are forgotten");
    let share = frame_where(&server, SET_GREY, |s| s < 0.05);
    eprintln!(
        "after the reset {:.0} % of the pixels are near {SET_GREY}",
        share * 100.0
    );
    drop(server);

    let again = keeping_server(dir.dir(), &[]);
    assert_eq!(values(again.addr), at_defaults());
    assert!(!again.log_text().contains("camera settings: applied"));
}

#[test]
fn switched_off_applies_saved_settings_but_refuses_a_reset() {
    let dir = Scratch::new("locked");
    let file = dir.path(PATTERN_FILE);
    let kept = "{\"@camera\":\"test pattern\",\"brightness\":-40}\n";
    std::fs::write(&file, kept).unwrap();
    let server = keeping_server(dir.dir(), &["--controls", "off"]);
    assert_eq!(values(server.addr)[0], ("brightness".into(), (-40).into()));
    let r = request(server.addr, "POST", "/controls/reset");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(json(&r)["error"]
        .as_str()
        .unwrap()
        .contains("--controls off"));
    assert_eq!(values(server.addr)[0], ("brightness".into(), (-40).into()));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), kept);
}

#[test]
fn a_corrupt_file_is_set_aside_with_a_warning_and_the_defaults_hold() {
    let dir = Scratch::new("corrupt");
    let file = dir.path(PATTERN_FILE);
    for garbage in [
        &b"{\"@camera\":\"test pattern\",\"brightness\":6"[..],
        &[0xff, 0x00, 0x12, 0x80][..],
        &vec![b' '; 70 * 1024][..],
    ] {
        std::fs::write(&file, garbage).unwrap();
        let server = keeping_server(dir.dir(), &[]);
        assert_eq!(values(server.addr), at_defaults());
        server.wait_log(
            &format!("the saved camera settings {} are not used", file.display()),
            Duration::from_secs(30),
        );
        let log = server.log_text();
        let line = log.lines().find(|l| l.contains("are not used")).unwrap();
        eprintln!("{line}");
        assert!(line.contains("WARN"), "{line}");
        assert!(
            line.contains(&format!("moved aside to {}.bad", file.display())),
            "{line}"
        );
        assert_eq!(
            std::fs::read(dir.path(&format!("{PATTERN_FILE}.bad"))).unwrap(),
            garbage
        );
        assert!(!file.exists());
        // The next change is saved anew.
        let r = post(server.addr, "/controls", r#"{"contrast":90}"#);
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(std::fs::read_to_string(&file)
            .unwrap()
            .contains("\"contrast\":90"));
        drop(server);
        std::fs::remove_file(&file).unwrap();
    }
}

#[test]
fn another_cameras_settings_are_not_applied() {
    let dir = Scratch::new("other");
    // A webcam's file beside the pattern's: never read for the pattern.
    std::fs::write(
        dir.path("controls-v4l2-uvcvideo-hd-pro-webcam-c920.json"),
        "{\"@camera\":\"v4l2 uvcvideo HD Pro Webcam C920\",\"brightness\":50}\n",
    )
    .unwrap();
    // And a webcam's settings under the pattern's name (copied, or a name alike).
    std::fs::write(
        dir.path(PATTERN_FILE),
        "{\"@camera\":\"v4l2 uvcvideo HD Pro Webcam C920\",\"contrast\":20}\n",
    )
    .unwrap();
    let server = keeping_server(dir.dir(), &[]);
    assert_eq!(values(server.addr), at_defaults());
    server.wait_log(
        "it holds the settings of camera \"v4l2 uvcvideo HD Pro Webcam C920\", not of \"test pattern\"",
        Duration::from_secs(30),
    );
    assert!(dir
        .path("controls-v4l2-uvcvideo-hd-pro-webcam-c920.json")
        .exists());
}

#[test]
fn values_this_camera_does_not_take_are_skipped_with_one_warning() {
    let dir = Scratch::new("skipped");
    std::fs::write(
        dir.path(PATTERN_FILE),
        "{\"@camera\":\"test pattern\",\"brightness\":300,\"hue\":4,\"contrast\":150,\"pattern\":\"Plaid\"}\n",
    )
    .unwrap();
    let server = keeping_server(dir.dir(), &[]);
    assert_eq!(
        values(server.addr),
        vec![
            ("brightness".into(), 0.into()),
            ("contrast".into(), 150.into()),
            ("pattern".into(), "Colour bars".into()),
        ]
    );
    server.wait_log(
        "skipped 3 that this camera does not take",
        Duration::from_secs(30),
    );
    let log = server.log_text();
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("skipped 3")).collect();
    assert_eq!(warnings.len(), 1, "{log}");
    for says in [
        "'brightness': 300 is out of range",
        "unknown control 'hue'",
        "\"Plaid\" is not one of its choices",
    ] {
        assert!(warnings[0].contains(says), "{says}: {}", warnings[0]);
    }
    assert!(log.contains("camera settings: applied 1 saved in"), "{log}");
}

#[test]
fn systemds_state_directory_is_the_default_and_a_bad_one_keeps_nothing() {
    let dir = Scratch::new("systemd");
    let args = ["--source", "test", "--size", "160x120", "--fps", "15"];
    let server = Server::start_custom(&args, false, |cmd| {
        cmd.env("STATE_DIRECTORY", dir.dir());
    });
    wait_for_controls(&server);
    let r = post(server.addr, "/controls", r#"{"brightness":7}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(std::fs::read_to_string(dir.path(PATTERN_FILE))
        .unwrap()
        .contains("\"brightness\":7"));
    drop(server);

    // A state directory that cannot be made: one warning saying what to do; the
    // server streams and takes changes all the same, keeping none.
    std::fs::write(dir.path("a-file"), b"").unwrap();
    let blocked = dir.path("a-file/state");
    let server = keeping_server(&blocked, &[]);
    server.wait_log("cannot make the state directory", Duration::from_secs(30));
    assert!(server
        .log_text()
        .contains("give --state-dir (PICAM_STATE_DIR) a directory"));
    let r = post(server.addr, "/controls", r#"{"brightness":9}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!blocked.exists());
}
