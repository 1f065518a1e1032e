//! Camera controls against a real kernel driver: the release binary streams the `vivid`
//! virtual camera inside the VM rig (`tests/vm/rig.sh`), and this test reads and
//! changes its controls over HTTP from the host (`GET`/`POST /controls`, `/option`),
//! checks in the guest with `v4l2-ctl` that the driver took them, and in the decoded
//! pictures that the camera's output changed. It takes a full-resolution still
//! (`/snapshot.jpg?full=1`) from the streaming camera and prints the pause it causes.
//! Then it restarts the server, with the driver put back to its defaults meanwhile, and
//! checks that the saved settings come back when the camera opens, and that
//! `POST /controls/reset` puts the defaults back.
//! A second case reads and changes them with the capture in a source process of its own
//! (`--isolate on`), whose controls reach the server's list through it.
//!
//! It boots a VM, so it runs only when asked: `PICAM_VM_TESTS=1 cargo test --release
//! --test vm_controls`.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::vm::*;
use common::*;
use serde_json::Value;

/// The guest's side: serve vivid (with `ISOLATE` among the options), and when the host drops `getctrl` into the share,
/// write what `v4l2-ctl` reads of the controls to `ctrl.txt`, until the host is done.
/// When the host drops `restart`, stop the server, put the driver's controls back to
/// its defaults (vivid keeps them while nobody has it open) and start the server again
/// with the same state directory, then say `restarted`.
const GUEST_SCRIPT: &str = r#"#!/bin/sh
: > /host/server.log
start() {
    RUST_LOG=info /host/picam-stream --listen 0.0.0.0:8000 --source v4l2:/dev/video0 \
        --size 640x480 --fps 10 --state-dir /tmp/picam-state ISOLATE >> /host/server.log 2>&1 &
    server=$!
}
start
until [ -e /host/done ]; do
    if [ -e /host/getctrl ]; then
        rm /host/getctrl
        v4l2-ctl -d /dev/video0 --get-ctrl brightness,test_pattern > /host/ctrl.tmp 2>&1
        mv /host/ctrl.tmp /host/ctrl.txt
    elif [ -e /host/restart ]; then
        rm /host/restart
        kill -TERM "$server" && wait "$server"
        echo "server exit $?" >> /host/server.log
        v4l2-ctl -d /dev/video0 --set-ctrl brightness=128,test_pattern=0 >> /host/server.log 2>&1
        start
        touch /host/restarted
    else
        sleep 0.2
    fi
done
kill -TERM "$server" && wait "$server"
echo "server exit $?" >> /host/server.log
"#;

/// Boots the VM serving vivid with `isolate` among the options, and waits until the
/// server answers (idle, since nobody watches yet).
fn serve_vivid(name: &str, isolate: &str) -> Option<(Vm, PathBuf, SocketAddr)> {
    let script = GUEST_SCRIPT.replace("ISOLATE", isolate);
    let (vm, share, addr) = boot(name, "vivid n_devs=1", &script)?;
    wait_status(
        addr,
        Duration::from_secs(180),
        "the server in the VM",
        |s| s["capturing"] == false,
    );
    Some((vm, share, addr))
}

/// Shuts the VM down, checks that the server exited cleanly, and returns its log.
fn stop(vm: Vm, share: &Path) -> String {
    drop(vm);
    let log = std::fs::read_to_string(share.join("server.log")).unwrap_or_default();
    assert!(log.contains("server exit 0"), "{log}");
    let _ = std::fs::remove_dir_all(share);
    log
}

fn controls(addr: SocketAddr) -> Value {
    let r = get(addr, "/controls");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type")
            .map(|t| t.starts_with("application/json")),
        Some(true)
    );
    serde_json::from_slice(&r.body).unwrap()
}

fn control<'a>(all: &'a Value, name: &str) -> &'a Value {
    all["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no control {name} in {all}"))
}

/// What `v4l2-ctl --get-ctrl` says in the guest.
fn driver_says(share: &Path) -> String {
    let _ = std::fs::remove_file(share.join("ctrl.txt"));
    std::fs::write(share.join("getctrl"), b"").unwrap();
    wait_file(&share.join("ctrl.txt"), Duration::from_secs(60));
    std::fs::read_to_string(share.join("ctrl.txt")).unwrap()
}

/// Mean brightness of the next few pictures of the stream.
fn luma(client: &mut MjpegClient) -> u64 {
    (0..3).map(|_| brightness(&client.next_jpeg())).sum::<u64>() / 3
}

/// Reads pictures until one's mean brightness satisfies `pred`; returns it.
fn until_luma(client: &mut MjpegClient, what: &str, pred: impl Fn(u64) -> bool) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let l = brightness(&client.next_jpeg());
        if pred(l) {
            return l;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: last mean brightness {l}"
        );
    }
}

/// Sets vivid's brightness to 250 over HTTP, checks that the driver has it, and waits
/// for brighter pictures: the mean brightness before and after.
fn brighten(addr: SocketAddr, share: &Path, client: &mut MjpegClient) -> (u64, u64) {
    let before = luma(client);
    let (status, after) = post_json(addr, "/controls", r#"{"brightness":250}"#);
    assert_eq!(status, 200, "{after}");
    assert_eq!(control(&after, "brightness")["value"], 250);
    assert!(driver_says(share).contains("brightness: 250"));
    let bright = until_luma(client, "brighter pictures", |l| l > before + 30);
    (before, bright)
}

#[test]
fn vivid_controls_over_http_in_a_vm() {
    let Some((vm, share, addr)) = serve_vivid("controls", "--isolate off") else {
        return;
    };
    let minute = Duration::from_secs(60);
    // Nobody watches: the camera is closed, and so are its controls.
    let idle = controls(addr);
    assert_eq!(idle["changes_allowed"], true, "{idle}");
    assert_eq!(idle["controls"], serde_json::json!([]), "{idle}");

    // A viewer opens the camera: vivid's controls as the kernel describes them.
    let mut client = MjpegClient::open(addr, "/stream.mjpg");
    assert_eq!(decode(&client.next_jpeg()).0, 640);
    let all = controls(addr);
    let b = control(&all, "brightness");
    assert_eq!(
        (
            &b["type"],
            &b["min"],
            &b["max"],
            &b["step"],
            &b["default"],
            &b["value"]
        ),
        (
            &Value::from("integer"),
            &Value::from(0),
            &Value::from(255),
            &Value::from(1),
            &Value::from(128),
            &Value::from(128)
        ),
        "{b}"
    );
    assert_eq!(b["label"], "Brightness");
    let pattern = control(&all, "test_pattern");
    assert_eq!(pattern["type"], "menu");
    assert_eq!(pattern["value"], "75% Colorbar");
    assert!(pattern["choices"]
        .as_array()
        .unwrap()
        .contains(&Value::from("100% Black")));
    assert_eq!(
        control(&all, "read_only_integer_32_bits")["read_only"],
        true
    );
    assert_eq!(control(&all, "gain")["inactive"], true);
    assert_eq!(control(&all, "gain_automatic")["type"], "boolean");
    assert_eq!(control(&all, "disconnect")["type"], "button");

    // Brighter: the driver has the value, and the pictures show it.
    let (before, bright) = brighten(addr, &share, &mut client);
    eprintln!("mean brightness {before} at brightness 128, {bright} at 250");

    // A wrong change refuses the request, and changes nothing of it.
    let (status, refused) = post_json(
        addr,
        "/controls",
        r#"{"test_pattern":"100% Black","brightness":300}"#,
    );
    assert_eq!(status, 400, "{refused}");
    assert!(refused["error"].as_str().unwrap().contains("brightness"));
    let now = controls(addr);
    assert_eq!(control(&now, "brightness")["value"], 250);
    assert_eq!(control(&now, "test_pattern")["value"], "75% Colorbar");

    // Two changes in one request, a menu choice by its name: a black picture.
    let (status, after) = post_json(
        addr,
        "/controls",
        r#"{"test_pattern":"100% Black","brightness":128}"#,
    );
    assert_eq!(status, 200, "{after}");
    assert_eq!(control(&after, "test_pattern")["value"], "100% Black");
    let said = driver_says(&share);
    assert!(said.contains("brightness: 128"), "{said}");
    assert!(said.contains("test_pattern: 5"), "{said}");
    until_luma(&mut client, "black pictures", |l| l < 30);

    // camera-streamer's form.
    let r = get(addr, "/option?test_pattern=75%25%20Colorbar");
    assert_eq!((r.status, r.text().as_str()), (200, "ok\n"));
    let r = get(addr, "/option?brightness=999");
    assert_eq!(r.status, 400, "{}", r.text());
    until_luma(&mut client, "the colour bars again", |l| l > 60);

    // A full-resolution still: the camera switches to its largest size between two
    // frames and back, while the viewer goes on reading.
    let asker = std::thread::spawn(move || {
        get_patiently(addr, "/snapshot.jpg?full=1", Duration::from_secs(120))
    });
    let mut last = Instant::now();
    let mut gaps = Vec::new();
    while !asker.is_finished() || gaps.len() < 3 {
        let (w, h, _) = decode(&client.next_jpeg());
        assert_eq!((w, h), (640, 480), "the stream keeps its size");
        gaps.push(last.elapsed());
        last = Instant::now();
        assert!(gaps.len() < 5000, "the still never came");
    }
    let still = asker.join().unwrap();
    let (status, headers, jpeg) = (still.status, still.headers, still.body);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&jpeg));
    let (w, h, _) = decode(&jpeg);
    assert!(w > 640 && h > 480, "a still of {w}x{h}");
    assert_eq!(headers.get("x-picture-size"), Some(&format!("{w}x{h}")));
    let longest = gaps.iter().max().unwrap();
    eprintln!(
        "still {w}x{h} ({} bytes); the longest wait between two stream frames around it: {} ms",
        jpeg.len(),
        longest.as_millis()
    );
    until_luma(&mut client, "the stream after the still", |l| l > 60);

    // The viewer leaves: the camera closes and its controls go with it.
    drop(client);
    wait_status(addr, minute, "idle after the viewer left", |s| {
        s["capturing"] == false
    });
    assert_eq!(controls(addr)["controls"], serde_json::json!([]));

    // Settings survive a restart: darker, and the black pattern.
    let mut client = MjpegClient::open(addr, "/stream.mjpg");
    let (status, after) = post_json(
        addr,
        "/controls",
        r#"{"test_pattern":"100% Black","brightness":100}"#,
    );
    assert_eq!(status, 200, "{after}");
    until_luma(&mut client, "black pictures before the restart", |l| l < 30);
    drop(client);
    std::fs::write(share.join("restart"), b"").unwrap();
    wait_file(&share.join("restarted"), 3 * minute);
    let said = driver_says(&share);
    assert!(
        said.contains("brightness: 128") && said.contains("test_pattern: 0"),
        "the driver is at its defaults while the server restarts: {said}"
    );
    wait_status(addr, 3 * minute, "the restarted server", |s| {
        s["capturing"] == false
    });
    let mut client = MjpegClient::open(addr, "/stream.mjpg");
    until_luma(&mut client, "black pictures after the restart", |l| l < 30);
    let said = driver_says(&share);
    assert!(said.contains("brightness: 100"), "{said}");
    assert!(said.contains("test_pattern: 5"), "{said}");
    let now = controls(addr);
    assert_eq!(control(&now, "brightness")["value"], 100);
    assert_eq!(control(&now, "test_pattern")["value"], "100% Black");

    // Reset: the driver's defaults, and the colour bars again.
    let (status, after) = post_json(addr, "/controls/reset", "");
    assert_eq!(status, 200, "{after}");
    assert_eq!(control(&after, "brightness")["value"], 128);
    assert_eq!(control(&after, "test_pattern")["value"], "75% Colorbar");
    let said = driver_says(&share);
    assert!(
        said.contains("brightness: 128") && said.contains("test_pattern: 0"),
        "{said}"
    );
    until_luma(&mut client, "the colour bars after the reset", |l| l > 60);
    drop(client);

    stop(vm, &share);
}

#[test]
fn vivid_controls_through_a_source_process_in_a_vm() {
    let Some((vm, share, addr)) = serve_vivid("isolated-controls", "--isolate on") else {
        return;
    };
    let minute = Duration::from_secs(60);
    assert_eq!(controls(addr)["controls"], serde_json::json!([]));

    // A viewer starts the source process; its controls arrive a moment after.
    let mut client = MjpegClient::open(addr, "/stream.mjpg");
    assert_eq!(decode(&client.next_jpeg()).0, 640);
    let deadline = Instant::now() + minute;
    let all = loop {
        let all = controls(addr);
        if !all["controls"].as_array().unwrap().is_empty() {
            break all;
        }
        assert!(Instant::now() < deadline, "no controls listed: {all}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(control(&all, "brightness")["max"], 255);
    assert_eq!(control(&all, "test_pattern")["value"], "75% Colorbar");
    assert_eq!(control(&all, "disconnect")["type"], "button");

    brighten(addr, &share, &mut client);

    let (status, refused) = post_json(
        addr,
        "/controls",
        r#"{"test_pattern":"100% Black","brightness":300}"#,
    );
    assert_eq!(status, 400, "{refused}");
    assert_eq!(
        control(&controls(addr), "test_pattern")["value"],
        "75% Colorbar"
    );
    let (status, after) = post_json(
        addr,
        "/controls",
        r#"{"test_pattern":"100% Black","brightness":128}"#,
    );
    assert_eq!(status, 200, "{after}");
    assert!(driver_says(&share).contains("test_pattern: 5"));
    until_luma(&mut client, "black pictures", |l| l < 30);

    // The viewer leaves: the source process stops, and its controls go with it.
    drop(client);
    wait_status(addr, minute, "idle after the viewer left", |s| {
        s["capturing"] == false
    });
    let deadline = Instant::now() + minute;
    while controls(addr)["controls"] != serde_json::json!([]) {
        assert!(Instant::now() < deadline, "the controls stayed");
        std::thread::sleep(Duration::from_millis(100));
    }

    let log = stop(vm, &share);
    assert!(log.contains("camera controls"), "{log}");
}
