//! Software H.264 (the `/stream.mp4` encoder stage) at 720p: CPU per frame of the JPEG
//! decode to I420 and of the OpenH264 encode, and the bytes per second of the moving
//! test pattern at 1280x720, 30 fps, with the default bit rate (goal: at most 2.5 Mb/s).
//!
//! ```text
//! cargo bench --bench h264 --features h264
//! cargo bench --bench h264 --features h264 -- --frames 300
//! ```
//!
//! The frames are the server's own test pattern, encoded to JPEG at quality 80 as the
//! server does, then fed through the stage's own code (`Picture::from_jpeg`,
//! `Stage::encode_annex_b`) with capture times 1/30 s apart. CPU time is the thread's
//! own (`CLOCK_THREAD_CPUTIME_ID`), so other work on a shared machine does not count.
//!
//! The hardware stage's share of the CPU is printed too: the same decode, and the copy
//! of each picture into a YU12 buffer shaped as the Pi's encoder negotiates it
//! (`hardware::lay_out`); the encoding itself is the VideoCore's.

use std::time::{Duration, Instant};

use nix::time::{clock_gettime, ClockId};
use picam_stream::clock::Utc;
use picam_stream::encoder::m2m::QueueFormat;
use picam_stream::h264::encode::{EncodeSettings, Stage};
use picam_stream::h264::hardware::{self, YU12};
use picam_stream::h264::nal;
use picam_stream::h264::pacing::default_bitrate;
use picam_stream::h264::picture::Picture;
use picam_stream::source::pattern;

const WIDTH: u16 = 1280;
const HEIGHT: u16 = 720;
const FPS: u32 = 30;

fn thread_cpu() -> Duration {
    let t = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).expect("thread CPU clock");
    Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let frames: u64 = args
        .iter()
        .position(|a| a == "--frames")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(150);
    let (w, h) = (usize::from(WIDTH), usize::from(HEIGHT));
    println!(
        "software H.264 at {WIDTH}x{HEIGHT}, {FPS} fps, {} kb/s (the default), {frames} frames of the moving test pattern",
        default_bitrate(WIDTH, HEIGHT) / 1000
    );
    let clock = Utc::now();
    let jpegs: Vec<Vec<u8>> = (0..frames)
        .map(|n| {
            let mut rgb = pattern::background(w, h);
            pattern::draw(&mut rgb, w, h, n, &clock, FPS);
            let mut out = Vec::new();
            jpeg_encoder::Encoder::new(&mut out, 80)
                .encode(&rgb, WIDTH, HEIGHT, jpeg_encoder::ColorType::Rgb)
                .expect("JPEG");
            out
        })
        .collect();
    let settings = EncodeSettings {
        bitrate: None,
        fps: FPS,
        library: None,
    };
    let mut stage = Stage::new(WIDTH, HEIGHT, &settings).expect("OpenH264");
    let start = Instant::now();
    let (mut decode, mut encode, mut lay_out) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    // The Pi's encoder: rows aligned to 64 bytes, the height to 16 lines.
    let (stride, rows) = (
        u32::from(WIDTH).next_multiple_of(64),
        u32::from(HEIGHT).next_multiple_of(16),
    );
    let format = QueueFormat {
        fourcc: YU12,
        width: u32::from(WIDTH),
        height: rows,
        bytes_per_line: stride,
        size_image: stride * rows * 3 / 2,
    };
    let mut device_buffer = vec![0u8; format.size_image as usize];
    let (mut bytes, mut keys) = (0usize, 0u64);
    for (n, jpeg) in jpegs.iter().enumerate() {
        let t0 = thread_cpu();
        let picture = Picture::from_jpeg(jpeg).expect("decode");
        let t1 = thread_cpu();
        let made = start + Duration::from_secs(n as u64) / FPS;
        let coded = nal::picture(&stage.encode_annex_b(&picture, made).expect("encode"));
        let t2 = thread_cpu();
        hardware::lay_out(&picture, YU12, &format, &mut device_buffer).expect("lay out");
        let t3 = thread_cpu();
        decode += t1 - t0;
        encode += t2 - t1;
        lay_out += t3 - t2;
        // What /stream.mp4 sends of it: the sample, and the parameter sets of IDR
        // pictures (in the initialisation segment or, for WebRTC, before the picture).
        bytes += coded.sample.len()
            + coded.sps.map_or(0, |s| s.len())
            + coded.pps.map_or(0, |p| p.len());
        keys += u64::from(coded.key);
    }
    let per = |d: Duration| d.as_secs_f64() * 1000.0 / frames as f64;
    println!(
        "CPU per frame: JPEG decode to I420 {:.2} ms, OpenH264 encode {:.2} ms, together {:.2} ms \
         ({:.0} fps on one core)",
        per(decode),
        per(encode),
        per(decode + encode),
        1000.0 / per(decode + encode)
    );
    println!(
        "hardware stage CPU per frame: JPEG decode {:.2} ms + lay out in the Pi's YU12 buffer {:.2} ms",
        per(decode),
        per(lay_out)
    );
    let seconds = frames as f64 / f64::from(FPS);
    let rate = bytes as f64 / seconds;
    println!(
        "stream: {:.0} bytes/s = {:.2} Mb/s over {seconds:.1} s ({keys} IDR pictures); goal <= 2.5 Mb/s: {}",
        rate,
        rate * 8.0 / 1e6,
        if rate * 8.0 <= 2.5e6 { "met" } else { "NOT met" }
    );
}
