//! The memory-to-memory plumbing ([`picam_stream::encoder::m2m`]) against real kernel
//! drivers: this test binary copies itself into the VM rig (`tests/vm/rig.sh`), boots
//! Debian's kernel with `vim2m` (single-planar converter) and `vicodec` (loaded with
//! `multiplanar=1`, so it speaks the multi-planar API as the Pi's `bcm2835-codec` does),
//! and runs its `guest_*` tests there.
//!
//! Neither driver produces JPEG, so the plumbing is tested with the formats they have:
//! vim2m turns RGB24 into YUYV (pixels checked against BT.601), vicodec encodes NV12 to
//! FWHT, which `v4l2-ctl` decodes again on vicodec's decoder node for comparison.
//! Covered: finding nodes by capability and formats, both queues, streaming many frames,
//! the driver adjusting sizes, a refused format, controls, a time-out, teardown and
//! set-up again, the driver unbound mid-frame (a clear error, no hang), and the JPEG
//! encoder choice falling back to software.
//!
//! Importing: buffers exported with `VIDIOC_EXPBUF` from another context of the same
//! driver stand in for a camera's DMABUF buffers. The test writes pictures into them
//! through their own mapping and the device under test imports them: vim2m's results are
//! checked pixel by pixel, vicodec's coded frames must equal those of the copying path
//! byte for byte. Buffers the driver will not import (a plain file, a buffer too small)
//! give the typed refusal, and [`Feed`] goes on by copying.
//!
//! The hardware H.264 stage's queue handling ([`VideoEncoder`]) runs against vicodec
//! with FWHT as the coded format: pictures in, coded frames out, FWHT output refused by
//! the H.264 publisher (garbage to it), the driver unbound and bound again with the
//! device opened again, and no descriptor left behind.
//!
//! Runs only when asked: `PICAM_VM_TESTS=1 cargo test --release --test vm_m2m`. With
//! `PICAM_M2M_MEASURE=1` it also prints per-frame latency and CPU figures measured in the
//! VM (`tests/vm/m2m-bench.sh` does both).

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};

use picam_stream::encoder::feed::Feed;
use picam_stream::encoder::m2m::{
    self, DmabufPlane, InputMemory, M2mDevice, M2mError, M2mNode, M2mSetup,
};
use picam_stream::encoder::{JpegEncoder, RawLayout, SoftwareEncoder};
use picam_stream::h264::hardware::{self, VideoEncoder, REOPEN_GAP};
use picam_stream::h264::picture::Picture;
use picam_stream::h264::publish::{AnnexBPublisher, Published};
use picam_stream::h264::slot::H264Slot;
use picam_stream::picture::EncoderChoice;
use picam_stream::v4l2::sys::{self, fourcc, zeroed};

/// vim2m's private control for its simulated processing time (`V4L2_CID_USER_BASE + 0x1000`).
const VIM2M_TRANS_TIME_MSEC: u32 = 0x0098_0900 + 0x1000;

const GUEST_TESTS: &str = "guest_vim2m_streams_converts_and_negotiates \
     guest_vim2m_errors_timeout_and_re_setup \
     guest_vicodec_mplane_encodes_and_decodes_back \
     guest_vim2m_unbound_mid_frame \
     guest_encoder_choice_with_no_jpeg_device \
     guest_vim2m_imports_dmabuf_and_refuses_what_it_cannot \
     guest_vicodec_mplane_imports_dmabuf \
     guest_video_encoder_stage_on_vicodec";

#[test]
fn m2m_drivers_in_a_vm() {
    if std::env::var_os("PICAM_VM_TESTS").is_none() {
        eprintln!("skipped: set PICAM_VM_TESTS=1 to boot the VM rig");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let share = std::env::temp_dir().join(format!("picam-vm-m2m-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&share);
    std::fs::create_dir_all(&share).unwrap();
    let me = std::env::current_exe().unwrap();
    std::fs::copy(&me, share.join("vm_m2m")).unwrap();
    let measure = std::env::var_os("PICAM_M2M_MEASURE").is_some();
    let mut script = format!(
        "cd /host && ./vm_m2m --ignored --exact --test-threads=1 --nocapture {GUEST_TESTS}\n"
    );
    if measure {
        script = format!(
            "set -e\n{script}./vm_m2m --ignored --exact --nocapture guest_measure 2>&1 | tee /host/measure.txt\n"
        );
    }
    std::fs::write(share.join("guest.sh"), script).unwrap();
    let mut rig = Command::new(root.join("tests/vm/rig.sh"));
    rig.args([
        "run",
        "--modules",
        "vim2m vicodec multiplanar=1",
        "--timeout",
        "400",
        "--env",
        "PICAM_M2M_GUEST=1",
    ]);
    if let Ok(n) = std::env::var("PICAM_M2M_FRAMES") {
        rig.args(["--env", &format!("PICAM_M2M_FRAMES={n}")]);
    }
    let out = rig
        .arg("--share")
        .arg(&share)
        .args(["--", "sh /host/guest.sh"])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("start the VM rig");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(out.status.success(), "the guest tests failed: {stdout}");
    assert!(
        stdout.contains("test result: ok. 8 passed; 0 failed"),
        "every guest test ran and passed: {stdout}"
    );
    let _ = std::fs::remove_dir_all(&share);
}

/// Guest tests run only inside the VM (the host test sets this variable there).
fn in_guest() -> bool {
    let yes = std::env::var_os("PICAM_M2M_GUEST").is_some();
    if !yes {
        eprintln!("skipped: runs inside the VM rig (see m2m_drivers_in_a_vm)");
    }
    yes
}

/// BT.601 video-range Y, Cb, Cr of an RGB colour.
fn ycbcr(rgb: [u8; 3]) -> [f64; 3] {
    let [r, g, b] = rgb.map(f64::from);
    [
        16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0,
        128.0 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0,
        128.0 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0,
    ]
}

/// Eight vertical bars; the first one's colour changes with `frame`.
fn bars(frame: usize) -> [[u8; 3]; 8] {
    let f = (frame * 7 % 256) as u8;
    [
        [f, 255 - f, 128],
        [255, 255, 255],
        [255, 255, 0],
        [0, 255, 255],
        [0, 255, 0],
        [255, 0, 255],
        [255, 0, 0],
        [0, 0, 0],
    ]
}

fn rgb_picture(frame: usize, w: usize, h: usize, stride: usize) -> Vec<u8> {
    let colours = bars(frame);
    let mut out = vec![0u8; stride * h];
    for y in 0..h {
        for x in 0..w {
            out[y * stride + x * 3..][..3].copy_from_slice(&colours[x * 8 / w]);
        }
    }
    out
}

fn vim2m_node() -> M2mNode {
    let node = m2m::find(Some(fourcc(b"RGB3")), &[fourcc(b"YUYV")])
        .expect("a node taking RGB24 and producing YUYV");
    assert_eq!(node.driver, "vim2m", "{node:?}");
    assert!(!node.mplane, "vim2m is single-planar");
    node
}

fn vim2m_setup(w: u32, h: u32, trans_ms: i32) -> M2mSetup {
    M2mSetup {
        input: fourcc(b"RGB3"),
        output: fourcc(b"YUYV"),
        width: w,
        height: h,
        input_buffers: 2,
        output_buffers: 3,
        input_memory: InputMemory::Mmap,
        controls: vec![(VIM2M_TRANS_TIME_MSEC, trans_ms)],
    }
}

/// Checks the middle of each bar of a YUYV result against BT.601.
fn check_yuyv(data: &[u8], frame: usize, w: usize, h: usize, stride: usize) {
    let colours = bars(frame);
    for (i, &c) in colours.iter().enumerate() {
        let x = (i * w / 8 + w / 16) & !1;
        for y in [0, h / 2, h - 1] {
            let p = &data[y * stride + x * 2..][..4];
            let want = ycbcr(c);
            let got = [p[0], p[1], p[3]].map(f64::from);
            for k in 0..3 {
                assert!(
                    (got[k] - want[k]).abs() <= 2.0,
                    "frame {frame} bar {i} at ({x},{y}): got {got:?}, want {want:?}"
                );
            }
        }
    }
}

#[test]
#[ignore = "runs inside the VM rig"]
fn guest_vim2m_streams_converts_and_negotiates() {
    if !in_guest() {
        return;
    }
    let node = vim2m_node();
    // 1280x720 is more than vim2m's 640x480: the driver adjusts, and says so.
    let mut dev = M2mDevice::open(&node.path, &vim2m_setup(1280, 720, 1)).unwrap();
    let input = dev.input_format();
    let output = dev.output_format();
    assert_eq!((input.width, input.height), (640, 480));
    assert_eq!(input.bytes_per_line, 640 * 3);
    assert_eq!((output.width, output.height), (640, 480));
    assert_eq!(output.bytes_per_line, 640 * 2);
    assert_eq!(output.fourcc, fourcc(b"YUYV"));
    assert_eq!(dev.controls_set(), &[(VIM2M_TRANS_TIME_MSEC, 1)]);
    assert_eq!(dev.control(VIM2M_TRANS_TIME_MSEC), Some(1));
    assert_eq!(dev.buffer_counts(), (2, 3));
    let (w, h) = (640usize, 480usize);
    let mut last_seq = None;
    let started = Instant::now();
    let frames = 120;
    for frame in 0..frames {
        let picture = rgb_picture(frame, w, h, w * 3);
        let result = dev.process(&picture, Duration::from_secs(5)).unwrap();
        assert_eq!(result.data.len(), w * h * 2);
        check_yuyv(result.data, frame, w, h, w * 2);
        if let Some(prev) = last_seq {
            assert!(result.sequence > prev, "sequence numbers go up");
        }
        last_seq = Some(result.sequence);
    }
    println!(
        "vim2m: {frames} frames of 640x480 RGB24 -> YUYV in {:.1} s, every one checked",
        started.elapsed().as_secs_f64()
    );
}

#[test]
#[ignore = "runs inside the VM rig"]
fn guest_vim2m_errors_timeout_and_re_setup() {
    if !in_guest() {
        return;
    }
    let node = vim2m_node();
    // YUYV is only a result format for vim2m: the input queue refuses it.
    let mut setup = vim2m_setup(640, 480, 1);
    setup.input = fourcc(b"YUYV");
    match M2mDevice::open(&node.path, &setup) {
        Err(e @ M2mError::FormatRefused { queue: "input", .. }) => {
            let text = e.to_string();
            assert!(text.contains("YUYV 640x480"), "{text}");
            println!("refused as expected: {text}");
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("vim2m took YUYV input"),
    }

    // Slower than the time limit: a time-out, quickly, and teardown does not hang.
    let mut dev = M2mDevice::open(&node.path, &vim2m_setup(320, 240, 3000)).unwrap();
    let picture = rgb_picture(0, 320, 240, 320 * 3);
    let t = Instant::now();
    match dev.process(&picture, Duration::from_millis(300)) {
        Err(e @ M2mError::Timeout { .. }) => println!("timed out as expected: {e}"),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a 3 s job finished within 300 ms"),
    }
    // Bounds against hanging, generous for a loaded emulated machine.
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    let t = Instant::now();
    drop(dev);
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "teardown with a job in flight took {:?}",
        t.elapsed()
    );

    // A picture larger than the input buffer is the caller's mistake, said clearly.
    let mut dev = M2mDevice::open(&node.path, &vim2m_setup(64, 32, 1)).unwrap();
    let too_big = vec![0u8; 64 * 32 * 3 + 1];
    match dev.process(&too_big, Duration::from_secs(2)) {
        Err(e @ M2mError::Input { .. }) => println!("input refused as expected: {e}"),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("an oversized picture was taken"),
    }
    // The device still works after that, and after set-up again at other sizes.
    for (w, h) in [(64usize, 32usize), (320, 240), (640, 480), (96, 64)] {
        let mut dev = M2mDevice::open(&node.path, &vim2m_setup(w as u32, h as u32, 1)).unwrap();
        assert_eq!(
            (dev.input_format().width, dev.input_format().height),
            (w as u32, h as u32)
        );
        for frame in 0..5 {
            let result = dev
                .process(&rgb_picture(frame, w, h, w * 3), Duration::from_secs(5))
                .unwrap();
            check_yuyv(result.data, frame, w, h, w * 2);
        }
    }
}

/// The node named `name` in sysfs.
fn node_named(name: &str) -> PathBuf {
    for entry in std::fs::read_dir("/sys/class/video4linux")
        .unwrap()
        .flatten()
    {
        let n = std::fs::read_to_string(entry.path().join("name")).unwrap_or_default();
        if n.trim() == name {
            return Path::new("/dev").join(entry.file_name());
        }
    }
    panic!("no video node named {name}");
}

/// A moving NV12 picture: a diagonal gradient and a bright square.
fn nv12_picture(frame: usize, w: usize, h: usize) -> Vec<u8> {
    let mut out = vec![0u8; w * h * 3 / 2];
    for y in 0..h {
        for x in 0..w {
            out[y * w + x] = (16 + (x + y + frame * 4) % 200) as u8;
        }
    }
    let (bx, by) = ((frame * 13) % (w - 64), (frame * 7) % (h - 64));
    for y in by..by + 64 {
        out[y * w + bx..][..64].fill(230);
    }
    for y in 0..h / 2 {
        for x in 0..w / 2 {
            out[w * h + y * w + x * 2] = (64 + (x * 128 / (w / 2))) as u8;
            out[w * h + y * w + x * 2 + 1] = (192 - (y * 128 / (h / 2))) as u8;
        }
    }
    out
}

#[test]
#[ignore = "runs inside the VM rig"]
fn guest_vicodec_mplane_encodes_and_decodes_back() {
    if !in_guest() {
        return;
    }
    let (nv12, fwht) = (fourcc(b"NV12"), fourcc(b"FWHT"));
    let node = m2m::find(Some(nv12), &[fwht]).expect("a node encoding NV12 to FWHT");
    assert_eq!(node.driver, "vicodec", "{node:?}");
    assert!(node.mplane, "vicodec loaded with multiplanar=1");
    assert_eq!(node.path, node_named("stateful-encoder"));
    // 320x240 is below vicodec's 640x360 minimum: the driver adjusts, and says so.
    let setup = M2mSetup {
        input: nv12,
        output: fwht,
        width: 320,
        height: 240,
        input_buffers: 3,
        output_buffers: 3,
        input_memory: InputMemory::Mmap,
        controls: vec![],
    };
    let mut dev = M2mDevice::open(&node.path, &setup).unwrap();
    assert!(dev.is_mplane());
    let f = dev.input_format();
    // At least 640x360, rounded up to vicodec's macroblocks of 8.
    assert_eq!((f.width, f.height, f.bytes_per_line), (640, 368, 640));
    assert_eq!(dev.output_format().fourcc, fwht);
    let (w, h) = (f.width as usize, f.height as usize);
    let mut raw = Vec::new();
    let mut coded = Vec::new();
    let frames = 30;
    for frame in 0..frames {
        let picture = nv12_picture(frame, w, h);
        let result = dev.process(&picture, Duration::from_secs(5)).unwrap();
        assert!(
            result.data.len() > 16 && result.data.len() < picture.len(),
            "a compressed frame: {} bytes",
            result.data.len()
        );
        coded.extend_from_slice(result.data);
        raw.extend_from_slice(&picture);
    }
    drop(dev);
    println!(
        "vicodec: {frames} frames of {w}x{h} NV12 -> {} bytes of FWHT ({:.1} % of the raw size)",
        coded.len(),
        coded.len() as f64 * 100.0 / raw.len() as f64
    );
    std::fs::write("/tmp/enc.fwht", &coded).unwrap();

    // Decode with an independent program on vicodec's decoder node.
    let decoder = node_named("stateful-decoder");
    let _ = std::fs::remove_file("/tmp/dec.nv12");
    let out = Command::new("v4l2-ctl")
        .arg("-d")
        .arg(&decoder)
        .args([
            "--set-fmt-video=pixelformat=NV12",
            "--stream-out-mmap",
            "--stream-mmap",
            "--stream-from=/tmp/enc.fwht",
            "--stream-to=/tmp/dec.nv12",
        ])
        .output()
        .expect("run v4l2-ctl");
    let decoded = std::fs::read("/tmp/dec.nv12").unwrap_or_default();
    assert!(
        decoded.len() >= raw.len(),
        "v4l2-ctl decoded {} of {} bytes: {}{}",
        decoded.len(),
        raw.len(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let frame_len = w * h * 3 / 2;
    let mut worst = 0.0f64;
    for frame in 0..frames {
        let a = &raw[frame * frame_len..][..frame_len];
        let b = &decoded[frame * frame_len..][..frame_len];
        let mean = a
            .iter()
            .zip(b)
            .map(|(&x, &y)| (x as f64 - y as f64).abs())
            .sum::<f64>()
            / frame_len as f64;
        worst = worst.max(mean);
        // A neighbour frame differs far more: the decoded frame is this one.
        if frame + 1 < frames {
            let next = &raw[(frame + 1) * frame_len..][..frame_len];
            let other = next
                .iter()
                .zip(b)
                .map(|(&x, &y)| (x as f64 - y as f64).abs())
                .sum::<f64>()
                / frame_len as f64;
            assert!(other > mean * 2.0, "frame {frame}: {mean} vs next {other}");
        }
        assert!(mean < 4.0, "frame {frame}: mean difference {mean}");
    }
    println!("vicodec: decoded back, worst mean difference {worst:.2} per byte");
}

#[test]
#[ignore = "runs inside the VM rig"]
fn guest_vim2m_unbound_mid_frame() {
    if !in_guest() {
        return;
    }
    let node = vim2m_node();
    let mut dev = M2mDevice::open(&node.path, &vim2m_setup(320, 240, 1)).unwrap();
    for frame in 0..10 {
        dev.process(&rgb_picture(frame, 320, 240, 960), Duration::from_secs(5))
            .unwrap();
    }
    // A slow job, and the driver unbound while we wait for it.
    drop(dev);
    let (driver, device) = platform_device("vim2m");
    let mut dev = M2mDevice::open(&node.path, &vim2m_setup(320, 240, 1500)).unwrap();
    let (name, unbind_file) = (device.clone(), driver.join("unbind"));
    let unbind = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        std::fs::write(unbind_file, name).unwrap();
    });
    let t = Instant::now();
    let result = dev
        .process(&rgb_picture(0, 320, 240, 960), Duration::from_secs(10))
        .map(|r| r.data.len());
    unbind.join().unwrap();
    let waited = t.elapsed();
    match result {
        Err(e @ M2mError::Vanished { .. }) => println!("after {waited:?}: {e}"),
        Err(e) => panic!("after {waited:?}, not the 'went away' error: {e}"),
        Ok(n) => panic!("a result of {n} bytes from an unbound driver"),
    }
    // The 10 s limit was not what ended the wait: the error above says "went away".
    assert!(waited < Duration::from_secs(10), "{waited:?}");
    // Later calls fail the same clear way, at once.
    let t = Instant::now();
    let again = dev.process(&rgb_picture(1, 320, 240, 960), Duration::from_secs(10));
    assert!(matches!(again, Err(M2mError::Vanished { .. })));
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    let t = Instant::now();
    drop(dev);
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "teardown: {:?}",
        t.elapsed()
    );
    assert!(m2m::find(Some(fourcc(b"RGB3")), &[fourcc(b"YUYV")]).is_none());

    // Bound again: found again (perhaps under another node) and working.
    std::fs::write(driver.join("bind"), &device).unwrap();
    let node = vim2m_node();
    let mut dev = M2mDevice::open(&node.path, &vim2m_setup(320, 240, 1)).unwrap();
    for frame in 0..5 {
        let r = dev
            .process(&rgb_picture(frame, 320, 240, 960), Duration::from_secs(5))
            .unwrap();
        check_yuyv(r.data, frame, 320, 240, 640);
    }
    println!("vim2m bound again as {}", node.path.display());
}

#[test]
#[ignore = "runs inside the VM rig"]
fn guest_encoder_choice_with_no_jpeg_device() {
    if !in_guest() {
        return;
    }
    // Memory-to-memory nodes exist, but none makes JPEG: auto means software...
    assert!(!m2m::all_nodes().is_empty());
    let enc = JpegEncoder::new(EncoderChoice::Auto, 80).unwrap();
    assert_eq!(enc.describe(), "software");
    // ...and hardware is refused at start.
    let e = JpegEncoder::new(EncoderChoice::Hardware, 80)
        .err()
        .expect("no hardware JPEG encoder here");
    assert!(e.contains("no V4L2 memory-to-memory JPEG encoder"), "{e}");

    // A real device that refuses JPEG mid-way: the encoder falls back to software,
    // once, and says why.
    let mut node = vim2m_node();
    node.capture_formats.push(fourcc(b"JPEG"));
    let path = node.path.display().to_string();
    let mut enc = JpegEncoder::with_node(Some(node), 80);
    assert!(enc.is_hardware());
    let rgb = rgb_picture(0, 320, 240, 960);
    let jpeg = enc.encode_rgb(&rgb, 320, 240).unwrap().to_vec();
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
    assert!(!enc.is_hardware());
    let d = enc.describe().to_string();
    assert!(
        d.starts_with(&format!("software (v4l2-m2m:{path} failed: ")) && d.contains("refused"),
        "{d}"
    );
    println!("fell back: {d}");
}

/// CPU time used by this process so far, (user, system), from the kernel.
fn process_cpu() -> (Duration, Duration) {
    let u = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).unwrap();
    let us = |t: nix::sys::time::TimeVal| {
        Duration::from_micros(t.tv_sec() as u64 * 1_000_000 + t.tv_usec() as u64)
    };
    (us(u.user_time()), us(u.system_time()))
}

/// Busy CPU time of the whole machine (every process and kernel thread), from /proc/stat.
fn machine_busy() -> Duration {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap())
        .collect();
    // user nice system idle iowait irq softirq steal: busy = all but idle and iowait.
    let busy: u64 = fields.iter().take(8).sum::<u64>() - fields[3] - fields[4];
    let hz = 100; // USER_HZ, the unit of /proc/stat on Linux
    Duration::from_micros(busy * 1_000_000 / hz)
}

struct Figures {
    name: String,
    latency_p50: Duration,
    latency_p90: Duration,
    user: Duration,
    system: Duration,
    machine: Duration,
}

/// Runs `step` `n` times; per-frame wall-clock latency and CPU.
fn measure(name: &str, n: usize, mut step: impl FnMut(usize)) -> Figures {
    step(0); // warm-up
    let mut lat = Vec::with_capacity(n);
    let (cpu0, busy0) = (process_cpu(), machine_busy());
    for i in 0..n {
        let t = Instant::now();
        step(i + 1);
        lat.push(t.elapsed());
    }
    let (cpu1, busy1) = (process_cpu(), machine_busy());
    lat.sort();
    Figures {
        name: name.to_string(),
        latency_p50: lat[n / 2],
        latency_p90: lat[n * 9 / 10],
        user: (cpu1.0 - cpu0.0) / n as u32,
        system: (cpu1.1 - cpu0.1) / n as u32,
        machine: (busy1 - busy0) / n as u32,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// Per-frame figures: software encoder and the vim2m path (in the VM when run there).
/// Not a test of speed: it prints figures for people (see tests/vm/m2m-bench.sh).
#[test]
#[ignore = "prints figures; run by tests/vm/m2m-bench.sh"]
fn guest_measure() {
    let frames = std::env::var("PICAM_M2M_FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60usize);
    let mut rows = Vec::new();
    // Time spent copying pictures into the device's buffer: what importing saves.
    let mut copying = Vec::with_capacity(frames * 2 + 2);
    for (w, h, frames) in [
        (640usize, 480usize, frames),
        (1920, 1080, frames.div_ceil(3)),
    ] {
        let rgb = rgb_picture(0, w, h, w * 3);
        let yuyv: Vec<u8> = (0..w * h / 2)
            .flat_map(|i| [81, 90 + (i % 50) as u8, 145, 240])
            .collect();
        let mut enc = SoftwareEncoder::new(80);
        rows.push(measure(
            &format!("software JPEG, {w}x{h} YUYV"),
            frames,
            |_| {
                enc.encode_raw(&yuyv, RawLayout::Yuyv, w as u16, h as u16, w * 2)
                    .unwrap();
            },
        ));
        rows.push(measure(
            &format!("software JPEG, {w}x{h} RGB"),
            frames,
            |_| {
                enc.encode_rgb(&rgb, w as u16, h as u16).unwrap();
            },
        ));
    }
    if let Some(node) = m2m::find(Some(fourcc(b"RGB3")), &[fourcc(b"YUYV")]) {
        for trans in [1, 40] {
            let mut dev = M2mDevice::open(&node.path, &vim2m_setup(640, 480, trans)).unwrap();
            let pictures: Vec<Vec<u8>> = (0..2).map(|f| rgb_picture(f, 640, 480, 1920)).collect();
            rows.push(measure(
                &format!("vim2m M2M, 640x480 RGB24->YUYV copy, transtime {trans} ms"),
                frames,
                |i| {
                    let picture = &pictures[i % 2];
                    dev.process_with(
                        |dst| {
                            let t = Instant::now();
                            dst[..picture.len()].copy_from_slice(picture);
                            copying.push(t.elapsed());
                            Ok(picture.len())
                        },
                        Duration::from_secs(5),
                    )
                    .unwrap();
                },
            ));
            // The same pictures already in the camera's (exported) buffers, imported.
            let (_exporter, mut bufs) =
                export_buffers(&node.path, false, fourcc(b"RGB3"), (640, 480), 2);
            for (buf, picture) in bufs.iter_mut().zip(&pictures) {
                buf.bytes()[..picture.len()].copy_from_slice(picture);
            }
            let mut setup = vim2m_setup(640, 480, trans);
            setup.input_memory = InputMemory::Dmabuf;
            let mut dev = M2mDevice::open(&node.path, &setup).unwrap();
            rows.push(measure(
                &format!("vim2m M2M, 640x480 DMABUF import, transtime {trans} ms"),
                frames,
                |i| {
                    dev.process_dmabuf(bufs[i % 2].plane(640 * 480 * 3), Duration::from_secs(5))
                        .unwrap();
                },
            ));
        }
    } else {
        println!("(no vim2m here: M2M rows left out)");
    }
    println!();
    println!(
        "per-frame figures over {frames} frames on {} ({} CPU(s)):",
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("latency: from the raw picture in memory to the result in memory (ms);");
    println!("CPU per frame (ms): this process in user space and in the kernel, and the");
    println!("whole machine's busy time from /proc/stat (10 ms ticks: coarse).");
    println!(
        "{:<52} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "path", "p50", "p90", "user", "kernel", "machine"
    );
    for r in &rows {
        println!(
            "{:<52} {:>8} {:>8} {:>8} {:>8} {:>8}",
            r.name,
            ms(r.latency_p50),
            ms(r.latency_p90),
            ms(r.user),
            ms(r.system),
            ms(r.machine)
        );
    }
    if !copying.is_empty() {
        copying.sort();
        println!(
            "copying one 640x480 RGB24 picture (921600 bytes) into the device's buffer, the \
             work importing leaves out: p50 {} ms, p90 {} ms over {} copies",
            ms(copying[copying.len() / 2]),
            ms(copying[copying.len() * 9 / 10]),
            copying.len()
        );
    }
    let frame_ms = 1000.0 / 30.0;
    println!();
    println!("budgets the Pi goals imply (CPU per frame at 30 fps):");
    println!(
        "  640x480 at 30 fps within 20 % of a Pi Zero core:   {:.2} ms/frame",
        frame_ms * 0.20
    );
    println!(
        "  1920x1080 at 30 fps within 25 % of a Pi 4 core:    {:.2} ms/frame",
        frame_ms * 0.25
    );
}

/// `struct v4l2_exportbuffer`, for `VIDIOC_EXPBUF` (64 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
struct ExportBuffer {
    type_: u32,
    index: u32,
    plane: u32,
    flags: u32,
    fd: i32,
    reserved: [u32; 11],
}

nix::ioctl_readwrite!(vidioc_expbuf, b'V', 16, ExportBuffer);

/// One exported buffer, mapped for writing pictures into.
struct Exported {
    fd: OwnedFd,
    map: NonNull<nix::libc::c_void>,
    len: usize,
}

impl Exported {
    fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: `map` is a shared mapping of `len` bytes made in `export_buffers`,
        // unmapped only in Drop; the borrow of `self` keeps it alive.
        unsafe { std::slice::from_raw_parts_mut(self.map.as_ptr().cast(), self.len) }
    }

    fn plane(&self, bytesused: usize) -> DmabufPlane<'_> {
        DmabufPlane {
            fd: self.fd.as_fd(),
            offset: 0,
            length: self.len as u32,
            bytesused: bytesused as u32,
        }
    }
}

impl Drop for Exported {
    fn drop(&mut self) {
        // SAFETY: the mapping was made with this length and no slice into it outlives
        // the borrow that made it.
        let _ = unsafe { munmap(self.map, self.len) };
    }
}

/// DMABUF buffers as a camera would hand them out: `count` buffers of the input queue
/// of another context of the memory-to-memory node at `path`, set to `format` at
/// `w`x`h`, exported and mapped. The node stays open as long as the buffers are used.
fn export_buffers(
    path: &Path,
    mplane: bool,
    format: u32,
    (w, h): (u32, u32),
    count: u32,
) -> (File, Vec<Exported>) {
    let dev = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let fd = dev.as_raw_fd();
    let kind = if mplane {
        sys::V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE
    } else {
        sys::V4L2_BUF_TYPE_VIDEO_OUTPUT
    };
    let mut f: sys::v4l2_format = zeroed();
    f.type_ = kind;
    if mplane {
        // SAFETY: `pix_mp` is the member of the multi-planar types; plain data.
        let pix = unsafe { &mut f.fmt.pix_mp };
        (pix.width, pix.height, pix.pixelformat, pix.num_planes) = (w, h, format, 1);
    } else {
        // SAFETY: `pix` is the member of the single-planar types; plain data.
        let pix = unsafe { &mut f.fmt.pix };
        (pix.width, pix.height, pix.pixelformat) = (w, h, format);
    }
    // SAFETY: the descriptor is open; `f` is a v4l2_format for the input queue.
    unsafe { sys::vidioc_s_fmt(fd, &mut f) }.expect("set the exporter's format");
    let mut req: sys::v4l2_requestbuffers = zeroed();
    (req.count, req.type_, req.memory) = (count, kind, sys::V4L2_MEMORY_MMAP);
    // SAFETY: the descriptor is open; `req` is a v4l2_requestbuffers.
    unsafe { sys::vidioc_reqbufs(fd, &mut req) }.expect("the exporter's buffers");
    assert_eq!(req.count, count);
    let bufs = (0..count)
        .map(|index| {
            let mut e: ExportBuffer = zeroed();
            (e.type_, e.index, e.flags) = (kind, index, nix::libc::O_RDWR as u32);
            // SAFETY: the descriptor is open; `e` names buffer `index`; the kernel
            // returns a new descriptor in `e.fd`, which we then own.
            unsafe { vidioc_expbuf(fd, &mut e) }.expect("VIDIOC_EXPBUF");
            // SAFETY: `e.fd` is the new descriptor VIDIOC_EXPBUF just opened for us.
            let mut file =
                File::from(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(e.fd) });
            let len = file.seek(SeekFrom::End(0)).expect("a DMABUF's size") as usize;
            let fd = OwnedFd::from(file);
            // SAFETY: maps the whole buffer, shared, through its DMABUF descriptor;
            // unmapped in Exported's Drop.
            let map = unsafe {
                mmap(
                    None,
                    NonZeroUsize::new(len).unwrap(),
                    ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                    MapFlags::MAP_SHARED,
                    fd.as_fd(),
                    0,
                )
            }
            .expect("map a DMABUF");
            Exported { fd, map, len }
        })
        .collect();
    (dev, bufs)
}

#[test]
#[ignore = "runs inside the VM rig"]
fn guest_vim2m_imports_dmabuf_and_refuses_what_it_cannot() {
    if !in_guest() {
        return;
    }
    let node = vim2m_node();
    let (w, h) = (640usize, 480usize);
    let (_exporter, mut bufs) =
        export_buffers(&node.path, false, fourcc(b"RGB3"), (w as u32, h as u32), 3);
    assert!(bufs.iter().all(|b| b.len >= w * h * 3));
    let mut setup = vim2m_setup(w as u32, h as u32, 1);
    setup.input_memory = InputMemory::Dmabuf;
    setup.input_buffers = 4;
    let mut dev = M2mDevice::open(&node.path, &setup).unwrap();
    assert_eq!(dev.input_memory(), InputMemory::Dmabuf);
    assert_eq!(dev.buffer_counts(), (4, 3));
    // Each picture is written only into the exported buffer: the result can only come
    // from the device reading that buffer.
    let frames = 60;
    for frame in 0..frames {
        let buf = &mut bufs[frame % 3];
        buf.bytes()[..w * h * 3].copy_from_slice(&rgb_picture(frame, w, h, w * 3));
        let result = dev
            .process_dmabuf(buf.plane(w * h * 3), Duration::from_secs(5))
            .unwrap();
        assert_eq!(result.data.len(), w * h * 2);
        check_yuyv(result.data, frame, w, h, w * 2);
    }
    println!(
        "vim2m: {frames} frames imported as DMABUF from 3 exported buffers, every one checked"
    );

    // Copying into an importing device is the caller's mistake, said clearly.
    match dev.process(&rgb_picture(0, w, h, w * 3), Duration::from_secs(2)) {
        Err(e @ M2mError::Input { .. }) => println!("refused as expected: {e}"),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("copied into an importing device"),
    }
    // A single-planar device reads from the buffer's start.
    let mut shifted = bufs[0].plane(w * h * 3 - 4);
    shifted.offset = 4;
    assert!(matches!(
        dev.process_dmabuf(shifted, Duration::from_secs(2)),
        Err(M2mError::Input { .. })
    ));
    // A plain file is no DMABUF: the driver refuses it, with the typed error.
    let plain = tempfile_of(w * h * 3);
    let not_dmabuf = DmabufPlane {
        fd: plain.as_fd(),
        offset: 0,
        length: (w * h * 3) as u32,
        bytesused: (w * h * 3) as u32,
    };
    match dev.process_dmabuf(not_dmabuf, Duration::from_secs(2)) {
        Err(e @ M2mError::DmabufRefused { .. }) => println!("refused as expected: {e}"),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a plain file was imported"),
    }
    // A DMABUF smaller than the picture the device reads: refused the same way.
    let (_small_exporter, small) = export_buffers(&node.path, false, fourcc(b"RGB3"), (64, 32), 1);
    let too_small = DmabufPlane {
        bytesused: small[0].len as u32,
        ..small[0].plane(0)
    };
    match dev.process_dmabuf(too_small, Duration::from_secs(2)) {
        Err(e @ M2mError::DmabufRefused { .. }) => println!("refused as expected: {e}"),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!(
            "a {} byte buffer was taken for a {} byte picture",
            small[0].len,
            w * h * 3
        ),
    }
    // The device still imports after the refusals, in the slots it has left.
    for frame in [100, 101, 102, 103] {
        let buf = &mut bufs[frame % 3];
        buf.bytes()[..w * h * 3].copy_from_slice(&rgb_picture(frame, w, h, w * 3));
        let r = dev
            .process_dmabuf(buf.plane(w * h * 3), Duration::from_secs(5))
            .unwrap();
        check_yuyv(r.data, frame, w, h, w * 2);
    }
    // Refused until no slot is left: then every import is refused at once, no waiting.
    for _ in 0..2 {
        assert!(matches!(
            dev.process_dmabuf(not_dmabuf, Duration::from_secs(2)),
            Err(M2mError::DmabufRefused { .. })
        ));
    }
    let t = Instant::now();
    match dev.process_dmabuf(bufs[0].plane(w * h * 3), Duration::from_secs(5)) {
        Err(e @ M2mError::DmabufRefused { .. }) => println!("refused as expected: {e}"),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("imported with every slot refused"),
    }
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    drop(dev);

    // Feed: imports while the driver takes the buffers; at a refusal it sets the device
    // up again to copy, says why, and the picture still comes out right.
    let mut feed = Feed::open(&node.path, &setup).unwrap();
    assert!(feed.imports());
    for frame in 0..6 {
        let buf = &mut bufs[frame % 3];
        buf.bytes()[..w * h * 3].copy_from_slice(&rgb_picture(frame, w, h, w * 3));
        let r = feed
            .process(
                Ok(buf.plane(w * h * 3)),
                |_| panic!("copied"),
                Duration::from_secs(5),
            )
            .unwrap();
        check_yuyv(r.data, frame, w, h, w * 2);
    }
    assert!(feed.imports() && feed.copy_reason().is_none());
    let picture = rgb_picture(7, w, h, w * 3);
    let copy = |dst: &mut [u8]| {
        dst[..picture.len()].copy_from_slice(&picture);
        Ok(picture.len())
    };
    let r = feed
        .process(Ok(not_dmabuf), copy, Duration::from_secs(5))
        .unwrap();
    check_yuyv(r.data, 7, w, h, w * 2);
    assert!(!feed.imports());
    assert_eq!(feed.device().input_memory(), InputMemory::Mmap);
    let why = feed.copy_reason().unwrap().to_string();
    assert!(why.contains("would not take the buffer"), "{why}");
    println!("feed copies from now on: {why}");
    // From then on it copies, even when handed a good buffer.
    for frame in 8..12 {
        let picture = rgb_picture(frame, w, h, w * 3);
        let r = feed
            .process(
                Ok(bufs[0].plane(w * h * 3)),
                |dst| {
                    dst[..picture.len()].copy_from_slice(&picture);
                    Ok(picture.len())
                },
                Duration::from_secs(5),
            )
            .unwrap();
        check_yuyv(r.data, frame, w, h, w * 2);
    }
}

/// A plain file of `len` bytes (not a DMABUF).
fn tempfile_of(len: usize) -> File {
    let path = std::env::temp_dir().join(format!("picam-plain-{}", std::process::id()));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    file.set_len(len as u64).unwrap();
    let _ = std::fs::remove_file(&path);
    file
}

#[test]
#[ignore = "runs inside the VM rig"]
fn guest_vicodec_mplane_imports_dmabuf() {
    if !in_guest() {
        return;
    }
    let (nv12, fwht) = (fourcc(b"NV12"), fourcc(b"FWHT"));
    let node = m2m::find(Some(nv12), &[fwht]).expect("a node encoding NV12 to FWHT");
    assert!(node.mplane);
    let mut setup = M2mSetup {
        input: nv12,
        output: fwht,
        width: 640,
        height: 368,
        input_buffers: 3,
        output_buffers: 3,
        input_memory: InputMemory::Mmap,
        controls: vec![],
    };
    let frames = 12;
    let (w, h) = (640usize, 368usize);
    let size = w * h * 3 / 2;
    // The copying path's coded frames...
    let mut copied = Vec::new();
    let mut dev = M2mDevice::open(&node.path, &setup).unwrap();
    assert_eq!(dev.input_format().size_image as usize, size);
    for frame in 0..frames {
        let r = dev
            .process(&nv12_picture(frame, w, h), Duration::from_secs(5))
            .unwrap();
        copied.push(r.data.to_vec());
    }
    drop(dev);
    // ...and the importing path's, from a fresh device fed the same pictures.
    let (_exporter, mut bufs) = export_buffers(&node.path, true, nv12, (w as u32, h as u32), 2);
    setup.input_memory = InputMemory::Dmabuf;
    let mut dev = M2mDevice::open(&node.path, &setup).unwrap();
    assert_eq!(dev.input_memory(), InputMemory::Dmabuf);
    for (frame, want) in copied.iter().enumerate() {
        let buf = &mut bufs[frame % 2];
        buf.bytes()[..size].copy_from_slice(&nv12_picture(frame, w, h));
        let r = dev
            .process_dmabuf(buf.plane(size), Duration::from_secs(5))
            .unwrap();
        assert!(r.data.len() > 16 && r.data.len() < size, "{}", r.data.len());
        assert!(
            r.data == &want[..],
            "frame {frame}: the imported picture coded differently"
        );
    }
    println!(
        "vicodec: {frames} frames imported as DMABUF (multi-planar) coded byte for byte as \
         the copied ones ({} bytes)",
        copied.iter().map(Vec::len).sum::<usize>()
    );
}

/// The sysfs directory of the platform driver `name`, and the name of its device there
/// (what its `unbind` and `bind` files take).
fn platform_device(name: &str) -> (PathBuf, String) {
    let driver = Path::new("/sys/bus/platform/drivers").join(name);
    let device = std::fs::read_dir(&driver)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with(name))
        .unwrap_or_else(|| panic!("the {name} platform device in sysfs"));
    (driver, device)
}

/// Descriptors this process has open.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// A moving I420 picture, as the H.264 stages get them from a JPEG.
fn i420_picture(frame: usize, w: usize, h: usize) -> Picture {
    let nv12 = nv12_picture(frame, w, h);
    let mut yuv = nv12[..w * h].to_vec();
    let uv = &nv12[w * h..];
    yuv.extend(uv.iter().step_by(2));
    yuv.extend(uv.iter().skip(1).step_by(2));
    Picture {
        width: w as u16,
        height: h as u16,
        yuv,
    }
}

/// vicodec's coded frames begin with its header's two magic words (`FWHT_MAGIC1`,
/// `FWHT_MAGIC2` in the kernel's codec-fwht.h).
fn is_fwht_frame(data: &[u8]) -> bool {
    data.len() > 8 && data[..4] == [0x4f; 4] && data[4..8] == [0xff; 4]
}

#[test]
#[ignore = "runs inside the VM rig"]
fn guest_video_encoder_stage_on_vicodec() {
    if !in_guest() {
        return;
    }
    let fwht = fourcc(b"FWHT");
    let (node, input) = hardware::choose_node(&m2m::all_nodes(), fwht).expect("vicodec");
    assert_eq!(node.path, node_named("stateful-encoder"));
    assert_eq!(input, hardware::YU12);
    let fds = open_fds();
    let setup = M2mSetup {
        input,
        output: fwht,
        width: 640,
        height: 480,
        input_buffers: 3,
        output_buffers: 3,
        input_memory: InputMemory::Mmap,
        controls: vec![],
    };
    let mut encoder = VideoEncoder::open(&node.path, setup).unwrap();
    let f = encoder.input_format().unwrap();
    println!(
        "vicodec input: {}x{} stride {} size {}",
        f.width, f.height, f.bytes_per_line, f.size_image
    );
    let slot = H264Slot::new();
    let mut publisher = AnnexBPublisher::new(640, 480, 30);
    let mut coded_bytes = 0;
    for frame in 0..20 {
        let coded = encoder
            .encode(&i420_picture(frame, 640, 480), frame == 5)
            .unwrap();
        assert!(
            is_fwht_frame(&coded),
            "frame {frame}: {:02x?}",
            &coded[..coded.len().min(16)]
        );
        coded_bytes += coded.len();
        // Not H.264: the publisher must not pass it to viewers.
        let published = publisher.publish(&coded, Instant::now(), &slot);
        assert!(
            matches!(published, Ok(Published::NoPicture) | Err(_)),
            "{published:?}"
        );
    }
    assert_eq!(slot.encoded(), 0, "nothing broken published");
    println!("vicodec via the H.264 stage's queues: 20 frames, {coded_bytes} bytes of FWHT");

    // The driver goes away: the device is closed, not opened again while it is gone,
    // and opened again once it is back.
    let (driver, device) = platform_device("vicodec");
    std::fs::write(driver.join("unbind"), &device).unwrap();
    let gone = encoder.encode(&i420_picture(0, 640, 480), false);
    assert!(gone.is_err(), "a coded frame from an unbound driver");
    println!("unbound: {}", gone.unwrap_err());
    assert!(
        encoder.input_format().is_none(),
        "the failed device is closed"
    );
    std::thread::sleep(REOPEN_GAP);
    assert!(encoder.encode(&i420_picture(0, 640, 480), false).is_err());
    assert_eq!(encoder.opens(), 2, "one attempt to open it again");
    std::fs::write(driver.join("bind"), &device).unwrap();
    let mut back = None;
    for frame in 0..40 {
        std::thread::sleep(REOPEN_GAP / 2);
        match encoder.encode(&i420_picture(frame, 640, 480), false) {
            Ok(coded) => {
                back = Some(coded);
                break;
            }
            Err(e) => println!("not yet: {e}"),
        }
    }
    let coded = back.expect("the encoder opened again after the driver came back");
    assert!(is_fwht_frame(&coded));
    assert!(encoder.opens() >= 3, "{}", encoder.opens());
    println!("opened {} times in all", encoder.opens());
    drop(encoder);
    assert_eq!(open_fds(), fds, "every descriptor closed");
}
