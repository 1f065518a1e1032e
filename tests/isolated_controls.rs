//! Camera controls of a source in a process of its own (`--isolate on`), against the
//! real server: the test pattern runs in its source process, and its controls are
//! listed by the server's `GET /controls`; `POST /controls` and `/option` change the
//! pictures (decoded back); refused changes change nothing; a source process that is
//! killed has its controls listed again once it runs anew; one that stops answering
//! gets a clear `504` rather than a hung request; values set before a process ends are
//! set again in the next; and the controls go when the process
//! stops for want of viewers.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

/// Upper bound on every wait for something the server should do by itself.
fn patience() -> Duration {
    Duration::from_secs(90) * slow_factor()
}

/// A server whose test pattern runs in its own process whether or not anybody watches.
fn always_on_server() -> Server {
    Server::start(&[ISOLATED_PATTERN, &["--always-on"]].concat())
}

/// The source processes of `server` now.
fn source_processes(server: &Server) -> Vec<u32> {
    children_of(server.child.id())
}

fn listed(addr: SocketAddr) -> Value {
    let r = get(addr, "/controls");
    assert_eq!(r.status, 200, "{}", r.text());
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

fn value(addr: SocketAddr, name: &str) -> Value {
    values_of(&listed(addr))
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no control {name}"))
        .1
}

/// Waits until `GET /controls` lists what `ok` accepts, and returns that document.
fn wait_listed(server: &Server, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + patience();
    loop {
        let doc = listed(server.addr);
        if ok(&doc) {
            return doc;
        }
        assert!(
            Instant::now() < deadline,
            "GET /controls never listed {what}: last {doc}; log:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn has_controls(doc: &Value) -> bool {
    !doc["controls"].as_array().unwrap().is_empty()
}

fn error_of(answer: &Value) -> &str {
    answer["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"))
}

#[test]
fn the_source_processs_controls_are_listed_and_change_its_pictures() {
    if !server_can_start_itself("a source in its own process") {
        return;
    }
    let server = always_on_server();
    let doc = wait_listed(&server, "the pattern's controls", has_controls);
    let pid = source_process(&server, patience());
    let controls = doc["controls"].as_array().unwrap();
    assert_eq!(values_of(&doc), pattern_defaults());
    assert_eq!(
        (controls[0]["min"].clone(), controls[0]["max"].clone()),
        ((-100).into(), 100.into())
    );
    assert_eq!(
        controls[2]["choices"],
        serde_json::json!(["Colour bars", "Grey"])
    );
    server.wait_log(
        &format!("source process {pid}: 3 camera controls"),
        patience(),
    );

    let mut stream = MjpegClient::open(server.addr, "/stream.mjpg");
    let before = mean_luma(&stream.next_jpeg());
    let (status, answer) = post_json(server.addr, "/controls", r#"{"brightness": 80}"#);
    assert_eq!(status, 200, "{answer}");
    // The answer and the list are what the source process says it has now.
    assert_eq!(values_of(&answer)[0], ("brightness".into(), 80.into()));
    assert_eq!(value(server.addr, "brightness"), 80);
    // Frames drawn before the change may still be on their way: a bounded number.
    let bright = |stream: &mut MjpegClient| {
        (0..60)
            .map(|_| mean_luma(&stream.next_jpeg()))
            .find(|&m| m > before + 30.0)
    };
    let after = bright(&mut stream)
        .unwrap_or_else(|| panic!("no frame brighter than {before:.1} + 30 after brightness 80"));
    println!("mean luma {before:.1} before, {after:.1} after brightness 80");

    // Refused by the server's check: nothing reaches the process, nothing changes.
    for (body, says) in [
        (r#"{"brightness": 101}"#, "out of range (-100 to 100)"),
        (
            r#"{"contrast": 50, "pattern": "Plaid"}"#,
            "not one of its choices",
        ),
        (
            r#"{"hue": 1}"#,
            "unknown control 'hue' (known: brightness, contrast, pattern)",
        ),
    ] {
        let (status, answer) = post_json(server.addr, "/controls", body);
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(error_of(&answer).contains(says), "{body}: {answer}");
        assert_eq!(
            values_of(&listed(server.addr)),
            vec![
                ("brightness".into(), 80.into()),
                ("contrast".into(), 100.into()),
                ("pattern".into(), "Colour bars".into()),
            ],
            "after {body}"
        );
    }
    assert!(
        bright(&mut stream).is_some(),
        "the pictures changed after refused changes"
    );

    // /option goes the same way: contrast 0 makes every pixel one grey.
    let r = get(server.addr, "/option?contrast=0");
    assert_eq!((r.status, r.text().as_str()), (200, "ok\n"));
    let flat = (0..60)
        .map(|_| decode(&stream.next_jpeg()).2)
        .any(|rgb| rgb.iter().all(|&v| v.abs_diff(rgb[0]) <= 4));
    assert!(flat, "contrast 0 did not make the picture flat");
    assert_eq!(
        source_process(&server, patience()),
        pid,
        "the same process all along"
    );
}

#[test]
fn a_killed_source_process_lists_its_controls_again_once_started_anew() {
    if !server_can_start_itself("a source in its own process") {
        return;
    }
    // With a state directory the server remembers what is set, for this camera.
    let state = Scratch::new("isolated-state");
    let server = Server::start(
        &[
            ISOLATED_PATTERN,
            &["--always-on", "--state-dir", state.dir().to_str().unwrap()],
        ]
        .concat(),
    );
    wait_listed(&server, "the pattern's controls", has_controls);
    let first = source_process(&server, patience());
    let (status, answer) = post_json(server.addr, "/controls", r#"{"brightness": 50}"#);
    assert_eq!(status, 200, "{answer}");

    kill(Pid::from_raw(first as i32), Signal::SIGKILL).unwrap();
    // A change while no process runs is refused, with a reason; one that arrives
    // before the server noticed is told the process is gone.
    let deadline = Instant::now() + patience();
    let mut refusals = Vec::new();
    let second = loop {
        let now = source_processes(&server);
        if let [pid] = now[..] {
            if pid != first && has_controls(&listed(server.addr)) {
                break pid;
            }
        }
        let (status, answer) = post_json(server.addr, "/controls", r#"{"contrast": 120}"#);
        if status != 200 {
            refusals.push((status, error_of(&answer).to_string()));
        }
        assert!(
            Instant::now() < deadline,
            "no new source process with controls; log:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    for (status, why) in &refusals {
        match status {
            400 => assert!(why.contains("this camera has no controls"), "{why}"),
            503 => assert!(why.contains("the source process is gone"), "{why}"),
            _ => panic!("{status}: {why}"),
        }
    }
    refusals.dedup();
    println!("while the source process was down: {refusals:?}");
    server.wait_log(
        &format!("source process {second}: 3 camera controls"),
        patience(),
    );
    // What was set before is set again in the new process (the server keeps it for
    // this camera), and the new process takes changes.
    wait_listed(&server, "brightness 50 again", |doc| {
        values_of(doc)[0] == ("brightness".into(), 50.into())
    });
    let (status, answer) = post_json(server.addr, "/controls", r#"{"brightness": -30}"#);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(value(server.addr, "brightness"), -30);
}

#[test]
fn a_source_process_that_does_not_answer_gets_a_timely_refusal() {
    if !server_can_start_itself("a source in its own process") {
        return;
    }
    let server = always_on_server();
    wait_listed(&server, "the pattern's controls", has_controls);
    let pid = Pid::from_raw(source_process(&server, patience()) as i32);
    stop_process(pid.as_raw(), patience());
    let (status, answer) = post_json(server.addr, "/controls", r#"{"brightness": 10}"#);
    kill(pid, Signal::SIGCONT).unwrap();
    assert_eq!(status, 504, "{answer}");
    let why = error_of(&answer);
    assert!(
        why.contains("the source process did not answer within 2 s"),
        "{why}"
    );
    assert!(why.contains("may or may not have been made"), "{why}");

    // Woken up, the process makes the change after all and says so; the next change
    // is answered as its own, not with the late answer to the first.
    wait_listed(&server, "the late change", |doc| {
        values_of(doc)[0] == ("brightness".into(), 10.into())
    });
    let (status, answer) = post_json(server.addr, "/controls", r#"{"brightness": 20}"#);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(values_of(&answer)[0], ("brightness".into(), 20.into()));
    assert_eq!(value(server.addr, "brightness"), 20);
}

#[test]
fn the_controls_go_when_the_source_process_stops_for_want_of_viewers() {
    if !server_can_start_itself("a source in its own process") {
        return;
    }
    let server = Server::start(ISOLATED_PATTERN);
    assert_eq!(
        listed(server.addr)["controls"],
        serde_json::json!([]),
        "controls with no source process"
    );
    let mut stream = MjpegClient::open(server.addr, "/stream.mjpg");
    stream.next_jpeg();
    wait_listed(&server, "the pattern's controls", has_controls);
    drop(stream);
    let deadline = Instant::now() + patience();
    while !source_processes(&server).is_empty() {
        assert!(Instant::now() < deadline, "the source process still runs");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(listed(server.addr)["controls"], serde_json::json!([]));
    let (status, answer) = post_json(server.addr, "/controls", r#"{"brightness": 10}"#);
    assert_eq!(status, 400, "{answer}");
    assert!(error_of(&answer).contains("this camera has no controls"));
}
