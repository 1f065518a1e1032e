//! The V4L2 source against a real kernel: the release binary runs inside the VM rig
//! (`tests/vm/rig.sh`) with the `vivid` virtual camera, and this test talks to it from the
//! host through a forwarded loopback port.
//!
//! It boots a VM, so it runs only when asked: `PICAM_VM_TESTS=1 cargo test --release
//! --test vm_v4l2` (`.ci/run` does). Without the variable it says so and passes.
//! `PICAM_VM_ARCH=aarch64 PICAM_VM_BINARY=path/to/aarch64/picam-stream` runs an ARM
//! build in the rig's aarch64 VM instead (`-M virt`, Debian's arm64 kernel).

mod common;

use std::time::{Duration, Instant};

use common::vm::*;
use common::*;

/// The guest's side: list the devices with a control set away from its default (by
/// v4l2-ctl, then back), start the server with no option at all, as the package's unit
/// does on a fresh install (`auto` finds vivid), then unplug and replug the camera and list the
/// server's open files when the host drops a file into the share, until the host says it
/// is done.
const GUEST_SCRIPT: &str = r#"#!/bin/sh
v4l2-ctl -d /dev/video0 --set-ctrl brightness=201,test_pattern=3
/host/picam-stream --list-devices > /host/devices.txt 2>&1
v4l2-ctl -d /dev/video0 --set-ctrl brightness=128,test_pattern=0
RUST_LOG=info /host/picam-stream > /host/server.log 2>&1 &
server=$!
while [ ! -e /host/done ]; do
    if [ -e /host/fds ]; then
        rm /host/fds
        ls -l /proc/$server/fd > /host/fds.tmp 2>&1; mv /host/fds.tmp /host/fds.txt
    fi
    if [ -e /host/unplug ]; then
        rm /host/unplug
        # Unbinding the driver removes the device as a USB unplug does; the module
        # itself stays in use by the open file and cannot be unloaded.
        echo vivid.0 > /sys/bus/platform/drivers/vivid/unbind && touch /host/unplugged
    fi
    if [ -e /host/replug ]; then
        rm /host/replug
        echo vivid.0 > /sys/bus/platform/drivers/vivid/bind && rig-devlinks && touch /host/replugged
    fi
    sleep 0.2
done
kill -TERM $server
wait $server
echo "server exit $?" >> /host/server.log
"#;

#[test]
fn v4l2_source_in_a_vm_with_vivid() {
    let Some((vm, share, addr)) = boot("v4l2", "vivid n_devs=1", GUEST_SCRIPT) else {
        return;
    };
    let arch = std::env::var("PICAM_VM_ARCH").unwrap_or_else(|_| "x86_64".into());
    let minute = Duration::from_secs(60);

    // Up, idle: nobody watches, so the camera is not capturing.
    let s = wait_status(addr, 3 * minute, "the server in the VM", |s| {
        s["capturing"] == false
    });
    assert!(s["source"].as_str().unwrap().contains("/dev/video0"), "{s}");
    let devices = std::fs::read_to_string(share.join("devices.txt")).unwrap();
    assert!(
        devices.contains("/dev/video0") && devices.contains("YUYV"),
        "{devices}"
    );
    // vivid's controls as the kernel describes them, with the values they have now:
    // the two set in the guest, and flags, menus and buttons of its own.
    for line in [
        "  controls:\n",
        "    brightness: integer 0 to 255, default 128, value 201\n",
        "    hue: integer -128 to 128, default 0, value 0\n",
        "    gain_automatic: boolean, default true, value true\n",
        "    integer_64_bits: integer -9223372036854775808 to 9223372036854775807, default 0, value 0\n",
        "    menu: menu of \"Menu Item 1\", \"Menu Item 3\", \"Menu Item 4\", default \"Menu Item 3\", value \"Menu Item 3\"\n",
        "    integer_menu: menu of \"2\", \"3\", \"5\", \"8\", \"13\", \"21\", \"42\", default \"5\", value \"5\"\n",
        "    read_only_integer_32_bits: integer 0 to 255, default 0, value 0 (read-only)\n",
        "    disconnect: button\n",
    ] {
        assert!(devices.contains(line), "no {line:?} in:\n{devices}");
    }
    assert!(
        devices.contains("    test_pattern: menu of \"75% Colorbar\", \"100% Colorbar\", ")
            && devices.contains("default \"75% Colorbar\", value \"Horizontal 100% Colorbar\"\n"),
        "{devices}"
    );
    assert!(
        devices.contains("    gain: integer 0 to 255, default 100, value "),
        "{devices}"
    );
    assert!(
        devices
            .lines()
            .any(|l| l.starts_with("    gain: ") && l.ends_with(" (inactive)")),
        "{devices}"
    );
    // Compound controls (strings, arrays, bitmasks) and class headers are left out.
    for absent in [
        "string:",
        "bitmask:",
        "u8_pixel_array:",
        "user_controls",
        "area:",
    ] {
        assert!(!devices.contains(absent), "{absent} in:\n{devices}");
    }

    // A viewer starts capture; frames are real 640x480 JPEGs of vivid's test picture.
    let mut client = MjpegClient::open(addr, "/stream.mjpg");
    let mut live = Vec::new();
    for _ in 0..3 {
        let jpeg = client.next_jpeg();
        assert_eq!(decode(&jpeg).0, 640);
        live.push(brightness(&jpeg));
    }
    let s = wait_status(addr, minute, "capturing", |s| s["capturing"] == true);
    assert_eq!(
        (s["width"].as_u64(), s["height"].as_u64()),
        (Some(640), Some(480))
    );
    let log = std::fs::read_to_string(share.join("server.log")).unwrap_or_default();
    assert!(log.contains("YUYV 640x480"), "{log}");
    // vivid's YUYV is encoded; with no hardware JPEG encoder in the VM, in software.
    assert_eq!(s["encoder"], "software", "{s}");

    // The page, and ten seconds of stream in which every frame decodes at 640x480.
    assert_eq!(get(addr, "/").status, 301, "/ redirects to the page");
    let page = get(addr, "/index.html");
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("stream.mjpg"));
    let start = Instant::now();
    let mut frames = 0;
    while start.elapsed() < Duration::from_secs(10) {
        let (w, h, _) = decode(&client.next_jpeg());
        assert_eq!((w, h), (640, 480));
        frames += 1;
    }
    eprintln!(
        "{arch} VM: {frames} frames in {:.1} s ({:.1} fps, asked 30), all decoded at 640x480",
        start.elapsed().as_secs_f64(),
        frames as f64 / start.elapsed().as_secs_f64()
    );
    assert!(frames > 0);

    // Unplug: the stream goes on with a dark "no signal" picture and /status says why.
    std::fs::write(share.join("unplug"), b"").unwrap();
    wait_file(&share.join("unplugged"), minute);
    let s = wait_status(addr, minute, "the camera to be missed", |s| {
        !s["source_error"].is_null()
    });
    assert!(
        s["source_error"].as_str().unwrap().contains("/dev/video0"),
        "{s}"
    );
    let deadline = Instant::now() + minute;
    loop {
        let jpeg = client.next_jpeg();
        let (w, h, _) = decode(&jpeg);
        assert_eq!((w, h), (640, 480));
        if brightness(&jpeg) < 40 {
            break; // the no-signal picture
        }
        assert!(Instant::now() < deadline, "no 'no signal' picture arrived");
    }

    // Replug: capture resumes by itself, same client, same connection.
    std::fs::write(share.join("replug"), b"").unwrap();
    wait_file(&share.join("replugged"), minute);
    wait_status(addr, minute, "recovery", |s| {
        s["source_error"].is_null() && s["capturing"] == true
    });
    let deadline = Instant::now() + minute;
    loop {
        let jpeg = client.next_jpeg();
        if brightness(&jpeg) > 60 {
            break;
        }
        assert!(Instant::now() < deadline, "live pictures did not come back");
    }

    // While a viewer watches, the server holds the camera's node open.
    let camera_nodes = |fds: &str| {
        fds.lines()
            .filter(|l| l.contains("/dev/video") || l.contains("/dev/media"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let open_files = || {
        let _ = std::fs::remove_file(share.join("fds.txt"));
        std::fs::write(share.join("fds"), b"").unwrap();
        wait_file(&share.join("fds.txt"), minute);
        std::fs::read_to_string(share.join("fds.txt")).unwrap()
    };
    let fds = open_files();
    assert!(
        !camera_nodes(&fds).is_empty(),
        "capturing, yet no camera node open: {fds}"
    );

    // The last viewer leaves: after the linger the device idles and is closed; a
    // snapshot wakes it.
    drop(client);
    wait_status(addr, minute, "idle after the viewer left", |s| {
        s["capturing"] == false
    });
    let fds = open_files();
    assert!(
        camera_nodes(&fds).is_empty(),
        "idle, yet the camera's nodes are open: {fds}"
    );
    let snap = get(addr, "/snapshot.jpg");
    assert_eq!(snap.status, 200);
    assert_eq!(decode(&snap.body).0, 640);
    assert!(
        brightness(&snap.body) > 60,
        "the snapshot is a live picture"
    );

    drop(vm);
    let log = std::fs::read_to_string(share.join("server.log")).unwrap_or_default();
    assert!(log.contains("is back"), "{log}");
    assert!(log.contains("server exit 0"), "{log}");
    let _ = std::fs::remove_dir_all(&share);
}

/// The guest's side of a test that runs the shell lines `first`, then serves with
/// `options`, logging at `level`, until the host is done.
fn serving_until_done(first: &str, level: &str, options: &str) -> String {
    format!(
        r#"#!/bin/sh
{first}
RUST_LOG={level} /host/picam-stream --listen 0.0.0.0:8000 {options} > /host/server.log 2>&1 &
server=$!
while [ ! -e /host/done ]; do sleep 0.2; done
kill -TERM $server
wait $server
"#
    )
}

/// The guest's side of the `auto` test: list the nodes, then serve `--source auto` with
/// debug logging until the host is done.
fn auto_guest_script() -> String {
    let list = r#"for d in /sys/class/video4linux/video*; do
    echo "/dev/$(basename $d) $(cat $d/name)"
done > /host/nodes.txt"#;
    let options = "--source auto --size 640x480 --fps 10 --quality 70";
    serving_until_done(list, "debug", options)
}

/// `--source auto` against real kernel drivers: memory-to-memory nodes (vim2m, vicodec)
/// registered before the vivid camera are skipped with a reason, and vivid's capture
/// node is streamed.
#[test]
fn auto_skips_m2m_nodes_and_streams_vivid_in_a_vm() {
    let Some((vm, share, addr)) =
        boot("auto", "vim2m vicodec vivid n_devs=1", &auto_guest_script())
    else {
        return;
    };
    let arch = std::env::var("PICAM_VM_ARCH").unwrap_or_else(|_| "x86_64".into());
    let minute = Duration::from_secs(60);

    let s = wait_status(addr, 3 * minute, "the server in the VM", |s| {
        s["source"].is_string()
    });
    let nodes = std::fs::read_to_string(share.join("nodes.txt")).unwrap();
    let node_named = |part: &str| -> String {
        let line = nodes
            .lines()
            .find(|l| l.contains(part))
            .unwrap_or_else(|| panic!("no node named *{part}*: {nodes}"));
        line.split_whitespace().next().unwrap().to_string()
    };
    let vivid = node_named("vid-cap");
    let vim2m = node_named("vim2m");
    assert_eq!(
        s["source"].as_str().unwrap(),
        format!("V4L2 device {vivid}"),
        "{s}\n{nodes}"
    );

    // It streams: real JPEGs of vivid's picture.
    let mut client = MjpegClient::open(addr, "/stream.mjpg");
    assert_eq!(decode(&client.next_jpeg()).0, 640);

    let log = std::fs::read_to_string(share.join("server.log")).unwrap_or_default();
    assert!(
        log.contains(&format!(
            "auto: V4L2 device {vivid} (vivid, driver vivid: the first capture device"
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "auto: {vim2m}: vim2m, a codec or decoder (memory to memory): skipped"
        )),
        "{log}"
    );
    assert!(!log.contains("camera module"), "{log}");
    let decision: Vec<&str> = log.lines().filter(|l| l.contains("auto:")).collect();
    eprintln!("{arch} VM: nodes:\n{nodes}{}", decision.join("\n"));
    drop(client);
    drop(vm);
    let _ = std::fs::remove_dir_all(&share);
}

/// `--rotation 90` on a real YUYV camera: vivid's colour bars (white on the left to
/// black on the right) come out 480x640 with the white bar at the top and the black
/// one at the bottom.
#[test]
fn vivid_turned_by_90_in_a_vm() {
    let options = "--source v4l2:/dev/video0 --size 640x480 --fps 10 --rotation 90";
    let script = serving_until_done("", "info", options);
    let Some((vm, share, addr)) = boot("turned", "vivid n_devs=1", &script) else {
        return;
    };
    let minute = Duration::from_secs(60);
    wait_status(addr, 3 * minute, "the server in the VM", |s| {
        s["source"].is_string()
    });
    let mut client = MjpegClient::open(addr, "/stream.mjpg");
    let (w, h, pixels) = decode(&client.next_jpeg());
    assert_eq!((w, h), (480, 640), "the JPEG is the turned size");
    // Mean brightness of rows `from` to `to`: each bar is 80 rows once turned.
    let rows = |from: usize, to: usize| {
        let band = &pixels[from * w * 3..to * w * 3];
        band.iter().map(|&c| c as u64).sum::<u64>() / band.len() as u64
    };
    let (top, bottom) = (rows(20, 60), rows(580, 620));
    assert!(top > bottom + 100, "white bar {top}, black bar {bottom}");
    let s = wait_status(addr, minute, "capturing", |s| s["capturing"] == true);
    assert_eq!(
        (s["width"].as_u64(), s["height"].as_u64()),
        (Some(480), Some(640)),
        "{s}"
    );
    let log = std::fs::read_to_string(share.join("server.log")).unwrap_or_default();
    assert!(log.contains("YUYV 640x480"), "{log}");
    assert!(
        log.contains("--rotation 90: pictures are turned on the CPU before encoding (480x640 out)"),
        "{log}"
    );
    drop(client);
    drop(vm);
    let _ = std::fs::remove_dir_all(&share);
}
