//! The loop camera sources run between capture sessions, seen through the V4L2 source
//! with a device path that is missing or is no device: the no-signal picture at the
//! asked size, each new problem logged once and shown in /status, attempts only while
//! somebody watches.

mod common;

use std::time::Duration;

use common::*;

/// The log lines that report a failed attempt on `device`.
fn attempts_logged(server: &Server, device: &str) -> Vec<String> {
    let log = server.log.lock().unwrap();
    log.iter()
        .filter(|l| l.contains(device) && l.contains("; trying again"))
        .cloned()
        .collect()
}

/// Waits until `n` failed attempts on `device` have been logged.
fn wait_attempts(server: &Server, device: &str, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15) * slow_factor();
    while attempts_logged(server, device).len() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "{n} attempts were never logged:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_missing_camera_shows_no_signal_logs_each_new_problem_once_and_waits_for_viewers() {
    let dir = Scratch::new("camera-retry");
    let device = dir.path("video");
    let device_name = device.display().to_string();
    let source = format!("v4l2:{device_name}");
    let server = Server::start(&["--source", &source, "--size", "160x120", "--fps", "5"]);

    // Nobody watches: the device is not even tried.
    std::thread::sleep(Duration::from_secs(1));
    assert!(attempts_logged(&server, &device_name).is_empty());

    let mut viewer = MjpegClient::open(server.addr, "/stream.mjpg");
    let (w, h, _) = decode(&viewer.next_jpeg());
    assert_eq!(
        (w, h),
        (160, 120),
        "the no-signal picture has the asked size"
    );
    wait_attempts(&server, &device_name, 1);
    let status = server.status();
    assert_eq!(status["capturing"], false);
    let error = status["source_error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        error.starts_with(&format!("cannot open {device_name}")),
        "{status}"
    );

    // Attempts at 1 s and 3 s fail the same way: nothing more is logged, the picture
    // keeps coming.
    for _ in 0..4 {
        let (w, h, _) = decode(&viewer.next_jpeg());
        assert_eq!((w, h), (160, 120));
    }
    assert_eq!(
        attempts_logged(&server, &device_name).len(),
        1,
        "a repeated problem is logged once:\n{}",
        server.log_text()
    );

    // A file that is no device: a new problem, logged and shown.
    std::fs::write(&device, b"").unwrap();
    wait_attempts(&server, &device_name, 2);
    let second = attempts_logged(&server, &device_name)[1].clone();
    assert!(!second.contains("No such file"), "{second}");
    server.wait_status(Duration::from_secs(10), "the new problem", |s| {
        s["source_error"].as_str().is_some_and(|e| e != error)
    });

    // The first problem again is news again.
    std::fs::remove_file(&device).unwrap();
    wait_attempts(&server, &device_name, 3);

    // Nobody watches: once the linger (3 s) and the last pause (4 s at most) are over,
    // no more attempts, whatever the device does.
    drop(viewer);
    std::thread::sleep(Duration::from_secs(9) * slow_factor());
    std::fs::write(&device, b"").unwrap();
    std::thread::sleep(Duration::from_secs(6) * slow_factor());
    assert_eq!(
        attempts_logged(&server, &device_name).len(),
        3,
        "no attempt while nobody watches:\n{}",
        server.log_text()
    );

    // A viewer again: the next attempt comes at once and meets the new problem.
    let mut viewer = MjpegClient::open(server.addr, "/stream.mjpg");
    decode(&viewer.next_jpeg());
    wait_attempts(&server, &device_name, 4);
}
