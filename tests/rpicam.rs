//! The `rpicam` source against the real binary, with `tests/fixtures/fake-rpicam-vid`
//! standing in for Raspberry Pi OS's `rpicam-vid` (named by `PICAM_RPICAM_VID`): the
//! pictures it sends reach a stream client as JPEGs of the rounded size with the
//! expected colours; it runs only while somebody watches; a missing program, a missing
//! camera, a busy camera and a stall each show the no-signal picture and log one line
//! saying what to do; `--list-cameras` prints its listing; the camera controls are
//! listed, a change starts the helper again with it (a refused one does not), saved
//! values are on its first command line; `--noir` gives it the sensor's NoIR tuning
//! file. Run with `--nocapture` to see how long the helper took to go after the last
//! viewer left.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// The stand-in for `rpicam-vid`.
fn fake() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake-rpicam-vid")
}

/// Upper bound on every wait for something the server should do by itself.
fn patience() -> Duration {
    Duration::from_secs(20) * slow_factor()
}

/// How long the source keeps the helper after the last viewer (the source's LINGER).
const LINGER: Duration = Duration::from_secs(3);

/// A server on `--source SOURCE` with the stand-in as its helper, writing its pid and
/// arguments into `dir`, in `mode` (see the stand-in's header).
fn start(dir: &Scratch, args: &[&str], mode: &str) -> Server {
    start_with_env(dir, args, mode, &[])
}

/// As [`start`], with more variables in the server's environment.
fn start_with_env(dir: &Scratch, args: &[&str], mode: &str, env: &[(&str, &Path)]) -> Server {
    let pid_file = dir.path("pid");
    let args_file = dir.path("args");
    let term_file = dir.path("term");
    Server::start_custom(args, false, |cmd| {
        cmd.env("PICAM_RPICAM_VID", fake())
            .env("FAKE_RPICAM_PID_FILE", &pid_file)
            .env("FAKE_RPICAM_ARGS_FILE", &args_file)
            .env("FAKE_RPICAM_TERM_FILE", &term_file)
            .env("FAKE_RPICAM_MODE", mode);
        for (name, value) in env {
            cmd.env(name, value);
        }
    })
}

/// The pid the helper wrote, once it has (a file removed before the helper may start
/// again tells a new start from the last).
fn wait_pid(dir: &Scratch, server: &Server) -> i32 {
    let deadline = Instant::now() + patience();
    loop {
        if let Some(pid) = read_pid(&dir.path("pid")) {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "the helper never started; log:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The colour the stand-in's picture decodes to at column `x` of `width`: its Y ramp in
/// video range with U = 90 and V = 170, through BT.601 as JPEG decoders convert.
fn expected_colour(x: usize, width: usize, mirrored: bool) -> [f64; 3] {
    let x = if mirrored { width - 1 - x } else { x };
    let y_video = 16 + (219 * x) / (width - 1);
    let y = (y_video as f64 - 16.0) * 255.0 / 219.0;
    let chroma = |c: f64| (c - 128.0) * 255.0 / 224.0;
    let (cb, cr) = (chroma(90.0), chroma(170.0));
    [
        y + 1.402 * cr,
        y - 0.344_136 * cb - 0.714_136 * cr,
        y + 1.772 * cb,
    ]
    .map(|v| v.clamp(0.0, 255.0))
}

/// Checks a decoded picture against the stand-in's ramp on a few columns of its middle
/// row.
fn assert_ramp(jpeg: &[u8], size: (usize, usize), mirrored: bool) {
    let (w, h, px) = decode(jpeg);
    assert_eq!((w, h), size, "the picture has the rounded size");
    for x in [w / 8, w / 4, w / 2, 3 * w / 4, 7 * w / 8] {
        let at = ((h / 2) * w + x) * 3;
        let got = &px[at..at + 3];
        let want = expected_colour(x, w, mirrored);
        for c in 0..3 {
            assert!(
                (got[c] as f64 - want[c]).abs() <= 16.0,
                "pixel ({x}, {}) is {got:?}, expected about {want:?}",
                h / 2
            );
        }
    }
}

/// True for the no-signal picture: a dark frame with bright red "NO SIGNAL" lettering.
fn is_no_signal(jpeg: &[u8]) -> bool {
    let (_, _, px) = decode(jpeg);
    let mean = px.iter().map(|&v| v as u64).sum::<u64>() / px.len() as u64;
    let red = px
        .chunks(3)
        .filter(|p| p[0] > 200 && p[1] < 140 && p[2] < 140)
        .count();
    mean < 60 && red > 20
}

#[test]
fn pictures_arrive_at_the_rounded_size_and_the_helper_runs_only_while_watched() {
    let dir = Scratch::new("stream");
    let server = start(
        &dir,
        &[
            "--source",
            "rpicam",
            "--size",
            "300x201",
            "--fps",
            "15",
            "--encoder",
            "software",
        ],
        "ok",
    );
    server.wait_log("asking for 320x202 instead of --size 300x201", patience());
    // Nobody watches yet: the helper is not started.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        !dir.path("pid").exists(),
        "the helper ran before anybody watched"
    );
    let s = server.status();
    assert_eq!(
        s["source"],
        "camera module through rpicam-vid 320x202 at 15 fps, software JPEG encoder"
    );

    let mut client = MjpegClient::open(server.addr, "/stream.mjpg");
    let pid = wait_pid(&dir, &server);
    for _ in 0..3 {
        assert_ramp(&client.next_jpeg(), (320, 202), false);
    }
    let args = std::fs::read_to_string(dir.path("args")).unwrap();
    assert_eq!(
        args.split_whitespace().collect::<Vec<_>>().join(" "),
        "-n -t 0 --codec yuv420 --width 320 --height 202 --framerate 15 \
         --mode 2304:1296:10:P --flush -o -"
    );
    let s = server.status();
    assert_eq!(s["capturing"], true, "{s}");
    // Chosen from the helper's listing: the full field of view at 15 fps.
    assert_eq!(
        s["sensor_mode"], "2304x1296 10-bit up to 56.03 fps, crop (0, 0)/4608x2592",
        "{s}"
    );
    assert!(s["source_error"].is_null(), "{s}");
    assert!(process_alive(pid));

    // The last viewer leaves: the helper goes after the linger.
    std::fs::remove_file(dir.path("pid")).unwrap();
    drop(client);
    let left = Instant::now();
    while process_alive(pid) {
        assert!(
            left.elapsed() < LINGER + Duration::from_secs(5) * slow_factor(),
            "the helper (pid {pid}) still runs {:.1} s after the last viewer left; log:\n{}",
            left.elapsed().as_secs_f64(),
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    println!(
        "the helper was gone {:.2} s after the last viewer left (linger {} s)",
        left.elapsed().as_secs_f64(),
        LINGER.as_secs()
    );
    server.wait_log("nobody watching: stopped fake-rpicam-vid", patience());
    assert!(!dir.path("pid").exists(), "it was not started again");
    // Asked to stop with SIGTERM, which it can act on (rpicam-vid then lets go of the
    // camera in order), rather than killed.
    assert_eq!(
        std::fs::read_to_string(dir.path("term")).unwrap_or_default(),
        "SIGTERM\n",
        "the helper saw SIGTERM"
    );

    // A snapshot starts it again.
    let snap = get(server.addr, "/snapshot.jpg");
    assert_eq!(snap.status, 200);
    assert_ramp(&snap.body, (320, 202), false);
    let again = wait_pid(&dir, &server);
    assert_ne!(again, pid);
    let s = server.status();
    assert_eq!(s["source_restarts"], 0, "an idle stop is no restart: {s}");
}

#[test]
fn the_camera_index_and_mirroring_reach_the_helper() {
    let dir = Scratch::new("mirror");
    let server = start(
        &dir,
        &["--source", "rpicam:1", "--size", "256x144", "--hflip"],
        "ok",
    );
    let mut client = MjpegClient::open(server.addr, "/stream.mjpg");
    wait_pid(&dir, &server);
    assert_ramp(&client.next_jpeg(), (256, 144), true);
    let args = std::fs::read_to_string(dir.path("args")).unwrap();
    let args = args.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(args.contains("--camera 1 --hflip --flush"), "{args}");
    let s = server.status();
    assert!(
        s["source"]
            .as_str()
            .unwrap()
            .starts_with("camera module 1 through rpicam-vid 256x144"),
        "{s}"
    );
}

/// Starts a server whose helper fails as `mode` says (or is missing, with `adjust`),
/// and checks that a viewer sees the no-signal picture and that the log says `line`
/// once although the helper was tried again.
fn failure(name: &str, mode: &str, adjust: impl FnOnce(&mut Command), line: &str) {
    let dir = Scratch::new(name);
    let pid_file = dir.path("pid");
    let server = Server::start_custom(&["--source", "rpicam", "--size", "320x240"], false, |cmd| {
        cmd.env("PICAM_RPICAM_VID", fake())
            .env("FAKE_RPICAM_PID_FILE", &pid_file)
            .env("FAKE_RPICAM_MODE", mode);
        adjust(cmd);
    });
    let mut client = MjpegClient::open(server.addr, "/stream.mjpg");
    let first = client.next_jpeg();
    assert!(is_no_signal(&first), "{name}: the viewer sees no signal");
    assert_eq!(decode(&first).0, 320, "at the asked size");
    server.wait_log(line, patience());
    // Tried again after 1 s and 2 s: still one line.
    server.wait_status(patience(), "two restarts", |s| {
        s["source_restarts"].as_u64() >= Some(2)
    });
    let s = server.status();
    let error = s["source_error"].as_str().unwrap_or_default();
    assert!(error.starts_with(line), "{name}: source_error {error:?}");
    let log = server.log_text();
    assert_eq!(
        log.lines().filter(|l| l.contains(line)).count(),
        1,
        "{name}: one line saying what to do; log:\n{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains(" WARN ") && l.ends_with(line)),
        "{name}: the line is a warning of its own; log:\n{log}"
    );
}

#[test]
fn a_missing_helper_says_how_to_install_it() {
    let empty = Scratch::new("no-path");
    failure(
        "missing",
        "ok",
        |cmd| {
            cmd.env_remove("PICAM_RPICAM_VID").env("PATH", empty.dir());
        },
        "rpicam-vid not found: install it with `sudo apt install rpicam-apps-lite` \
         (Raspberry Pi OS), or choose another --source",
    );
}

#[test]
fn no_camera_says_to_check_the_cable_and_the_config() {
    failure(
        "no-camera",
        "no-camera",
        |_| {},
        "fake-rpicam-vid sees no camera: check the ribbon cable and that the camera is \
         enabled (camera_auto_detect=1 in /boot/firmware/config.txt), then reboot",
    );
}

#[test]
fn a_busy_camera_says_to_close_the_other_program() {
    failure(
        "busy",
        "busy",
        |_| {},
        "the camera is in use by another program (close it: e.g. `sudo fuser -v /dev/media*`)",
    );
}

#[test]
fn a_helper_that_stalls_is_stopped_and_started_again() {
    let dir = Scratch::new("stall");
    let server = start(
        &dir,
        &[
            "--source",
            "rpicam",
            "--size",
            "320x240",
            "--source-timeout",
            "1",
        ],
        "stall-after=3",
    );
    let mut client = MjpegClient::open(server.addr, "/stream.mjpg");
    // On a loaded machine the stand-in (a Python program) can take longer than the 1 s
    // timeout to start, and is then stopped and started again as a stalled one would be:
    // the test follows the start whose pictures arrive.
    let deadline = Instant::now() + patience();
    let picture = loop {
        let jpeg = client.next_jpeg();
        if !is_no_signal(&jpeg) {
            break jpeg;
        }
        assert!(Instant::now() < deadline, "no picture from the helper");
    };
    assert_ramp(&picture, (320, 240), false);
    let first = wait_pid(&dir, &server);
    std::fs::remove_file(dir.path("pid")).unwrap();
    server.wait_log(
        "fake-rpicam-vid sent no full picture for 1 s since its last one: stopped it",
        patience(),
    );
    let deadline = Instant::now() + patience();
    loop {
        let jpeg = client.next_jpeg();
        if is_no_signal(&jpeg) {
            break;
        }
        assert!(Instant::now() < deadline, "no no-signal picture");
    }
    let second = wait_pid(&dir, &server);
    assert_ne!(first, second, "started again");
    let gone = Instant::now();
    while process_alive(first) {
        assert!(gone.elapsed() < patience(), "the stalled helper still runs");
        std::thread::sleep(Duration::from_millis(20));
    }
    server.wait_status(patience(), "the restart counted", |s| {
        s["source_restarts"].as_u64() >= Some(1)
    });
}

#[test]
fn sensor_modes_above_120_fps_and_hdr_reach_the_helper() {
    // 1536x864 is the stand-in's (the Camera Module 3's) mode up to 120.13 fps.
    let dir = Scratch::new("fast");
    let server = start(
        &dir,
        &["--source", "rpicam", "--size", "256x144", "--fps", "120"],
        "ok",
    );
    server.wait_log(
        "rpicam: sensor mode 1536x864 10-bit up to 120.13 fps",
        patience(),
    );
    let args = watched_args(&dir, &server);
    assert!(
        args.contains("--framerate 120 --mode 1536:864:10:P --flush"),
        "{args}"
    );
    drop(server);

    let dir = Scratch::new("hdr");
    let server = start(
        &dir,
        &["--source", "rpicam", "--hdr", "--size", "256x144"],
        "ok",
    );
    let s = server.status();
    assert_eq!(
        s["sensor_mode"], "2304x1296 10-bit up to 30.00 fps, crop (0, 0)/4608x2592",
        "{s}"
    );
    let args = watched_args(&dir, &server);
    assert!(
        args.contains("--mode 2304:1296:10:P --hdr --flush"),
        "{args}"
    );
}

/// Watches `server` until a 256x144 picture from the helper arrives; the helper's
/// arguments, on one line.
fn watched_args(dir: &Scratch, server: &Server) -> String {
    let mut client = MjpegClient::open(server.addr, "/stream.mjpg");
    wait_pid(dir, server);
    assert_ramp(&client.next_jpeg(), (256, 144), false);
    let args = std::fs::read_to_string(dir.path("args")).unwrap();
    args.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn a_rate_or_hdr_the_camera_cannot_give_stops_the_start_with_the_reason() {
    for (args, says) in [
        (
            &["--source", "rpicam", "--fps", "200"][..],
            "the imx708 gives at most 120.13 fps (its 1536x864 sensor mode), not 200: \
             ask for a lower --fps (see --list-cameras)",
        ),
        (
            &["--source", "rpicam", "--hdr", "--fps", "50"][..],
            "the imx708 with --hdr gives at most 30.00 fps (its 2304x1296 sensor mode), \
             not 50",
        ),
        (
            &["--source", "test", "--fps", "200"][..],
            "--fps 200: above 120 only for camera modules",
        ),
    ] {
        let out = server_command()
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .env("PICAM_RPICAM_VID", fake())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} started: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn list_cameras_prints_the_helpers_listing() {
    if cfg!(feature = "libcamera") {
        // Binaries with libcamera list its cameras themselves.
        return;
    }
    let out = server_command()
        .arg("--list-cameras")
        .env("PICAM_RPICAM_VID", fake())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.starts_with("Available cameras\n"), "{text}");
    assert!(text.contains("0 : imx708 [4608x2592"), "{text}");

    let empty = Scratch::new("list-no-path");
    let out = server_command()
        .arg("--list-cameras")
        .env_remove("PICAM_RPICAM_VID")
        .env("PATH", empty.dir())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(
        err.trim_end(),
        "picam-stream: cannot list cameras: rpicam-vid not found: install it with \
         `sudo apt install rpicam-apps-lite` (Raspberry Pi OS), or choose another --source"
    );
}

/// The names of the controls `GET /controls` lists, once it lists some (the source
/// puts them on when its thread starts, which may be after the server answers).
fn control_names(server: &Server) -> Vec<String> {
    let deadline = Instant::now() + patience();
    loop {
        let r = get(server.addr, "/controls");
        assert_eq!(r.status, 200, "{}", r.text());
        let doc: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let names: Vec<String> = values_of(&doc).into_iter().map(|(name, _)| name).collect();
        if !names.is_empty() {
            return names;
        }
        assert!(Instant::now() < deadline, "no controls listed");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The helper's arguments of its last start, on one line.
fn last_args(dir: &Scratch) -> String {
    let args = std::fs::read_to_string(dir.path("args")).unwrap();
    args.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// How many times the log says the helper was started.
fn starts(server: &Server) -> usize {
    server
        .log_text()
        .lines()
        .filter(|l| l.contains("started fake-rpicam-vid (pid"))
        .count()
}

/// Waits until the helper has been started `n` times; the pid it wrote (remove the
/// file before the start awaited, which writes its arguments before its pid).
fn wait_start(dir: &Scratch, server: &Server, n: usize) -> i32 {
    let deadline = Instant::now() + patience();
    while starts(server) < n {
        assert!(
            Instant::now() < deadline,
            "the helper was not started {n} times; log:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    wait_pid(dir, server)
}

#[test]
fn a_control_change_starts_the_helper_again_with_it_and_saved_values_come_back() {
    let dir = Scratch::new("controls");
    let state = dir.path("state");
    let state_arg = state.to_str().unwrap();
    let args = [
        "--source",
        "rpicam",
        "--size",
        "256x144",
        "--state-dir",
        state_arg,
    ];
    let server = start(&dir, &args, "ok");
    let names = control_names(&server);
    for name in [
        "brightness",
        "contrast",
        "saturation",
        "sharpness",
        "ev",
        "exposure_time_us",
        "analogue_gain",
        "awb_mode",
        "noise_reduction",
        // The stand-in lists an imx708, which has a focus motor.
        "focus_mode",
        "lens_position",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }

    let mut client = MjpegClient::open(server.addr, "/stream.mjpg");
    let first = wait_start(&dir, &server, 1);
    assert_ramp(&client.next_jpeg(), (256, 144), false);
    assert!(
        !last_args(&dir).contains("--brightness"),
        "{}",
        last_args(&dir)
    );

    std::fs::remove_file(dir.path("pid")).unwrap();
    let asked = Instant::now();
    let (status, answer) = post_json(server.addr, "/controls", r#"{"brightness": 30}"#);
    assert_eq!(status, 200, "{answer}");
    assert!(values_of(&answer).contains(&("brightness".into(), 30.into())));
    let second = wait_start(&dir, &server, 2);
    assert_ne!(first, second);
    let restarted = asked.elapsed();
    assert_ramp(&client.next_jpeg(), (256, 144), false);
    println!(
        "the stand-in was running again {:.2} s after the change, the next picture reached \
         the viewer after {:.2} s (0.4 s of it waiting for the controls to settle)",
        restarted.as_secs_f64(),
        asked.elapsed().as_secs_f64()
    );
    assert!(
        last_args(&dir).contains(" --brightness=0.3 --flush"),
        "{}",
        last_args(&dir)
    );
    server.wait_log(
        "camera controls changed (brightness = 30): restarting fake-rpicam-vid",
        patience(),
    );
    // Pictures keep coming, from the new start.
    let frames = |s: &serde_json::Value| s["frames_captured"].as_u64().unwrap_or(0);
    let before = frames(&server.status());
    for _ in 0..3 {
        assert_ramp(&client.next_jpeg(), (256, 144), false);
    }
    server.wait_status(patience(), "more pictures", |s| frames(s) > before + 2);
    let gone = Instant::now();
    while process_alive(first) {
        assert!(gone.elapsed() < patience(), "the first helper still runs");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(server.status()["source_restarts"], 0, "no failure");

    // Refused values: a 400 each, and no new start.
    for body in [
        r#"{"brightness": 101}"#,
        r#"{"awb_mode": "sunset"}"#,
        r#"{"brightness": 0.5}"#,
        r#"{"hue": 1}"#,
        r#"{"brightness": 10, "contrast": -1}"#,
    ] {
        let (status, answer) = post_json(server.addr, "/controls", body);
        assert_eq!(status, 400, "{body}: {answer}");
    }
    // The next start is the next good change's, with both values.
    std::fs::remove_file(dir.path("pid")).unwrap();
    let (status, answer) = post_json(
        server.addr,
        "/controls",
        r#"{"contrast": 150, "awb_mode": "daylight", "ev": -50}"#,
    );
    assert_eq!(status, 200, "{answer}");
    wait_start(&dir, &server, 3);
    let all_set = " --ev=-0.5 --awb=daylight --brightness=0.3 --contrast=1.5 --flush";
    assert!(last_args(&dir).contains(all_set), "{}", last_args(&dir));
    assert_eq!(starts(&server), 3, "refused changes started nothing");
    assert_ramp(&client.next_jpeg(), (256, 144), false);
    drop(client);
    drop(server);

    // A new server: the saved values are on the helper's first command line.
    let dir2 = Scratch::new("controls-again");
    let server = start(&dir2, &args, "ok");
    let _client = MjpegClient::open(server.addr, "/stream.mjpg");
    wait_start(&dir2, &server, 1);
    assert!(last_args(&dir2).contains(all_set), "{}", last_args(&dir2));
    assert_eq!(starts(&server), 1, "{}", server.log_text());
}

#[test]
fn noir_gives_the_helper_the_sensors_noir_tuning_file() {
    let dir = Scratch::new("noir");
    let tuning = dir.path("tuning");
    std::fs::create_dir_all(&tuning).unwrap();
    let file = tuning.join("imx219_noir.json");
    std::fs::write(&file, "{}").unwrap();
    let sensor = Path::new("imx219");
    let env = [
        ("PICAM_TUNING_DIR", tuning.as_path()),
        ("FAKE_RPICAM_SENSOR", sensor),
    ];
    let noir_server = |dir: &Scratch| {
        start_with_env(
            dir,
            &["--source", "rpicam", "--size", "256x144", "--noir"],
            "ok",
            &env,
        )
    };
    let server = noir_server(&dir);
    server.wait_log(
        &format!("--noir: the imx219 runs with {}", file.display()),
        patience(),
    );
    // Without a focus motor there are no focus controls.
    let names = control_names(&server);
    assert!(names.iter().any(|n| n == "brightness"), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("focus")), "{names:?}");
    let args = watched_args(&dir, &server);
    assert!(
        args.contains(&format!(" --tuning-file {} --flush", file.display())),
        "{args}"
    );
    drop(server);

    // Without the file: one line saying so, and the camera runs all the same.
    std::fs::remove_file(&file).unwrap();
    let dir = Scratch::new("noir-missing");
    let server = noir_server(&dir);
    server.wait_log(
        &format!(
            "--noir: no NoIR tuning file for the imx219 (looked for {}): install \
             libcamera's Raspberry Pi tuning files",
            file.display()
        ),
        patience(),
    );
    let args = watched_args(&dir, &server);
    assert!(!args.contains("--tuning-file"), "{args}");
}
