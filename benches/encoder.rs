//! Software JPEG encoder speed on one core (640x480, 720p, 1080p), beside libjpeg-turbo
//! on the same picture, then through the encoding threads (`EncodePool`,
//! `--encode-workers`) with 1, 2 and 4 workers, and how much faster 2 and 4 are than 1.
//!
//! ```text
//! cargo bench --bench encoder                         # jpeg-encoder back end
//! cargo bench --bench encoder --features turbojpeg    # and the libjpeg-turbo one
//! cargo bench --bench encoder -- --seconds 5
//! cargo bench --bench encoder -- --pool-only         # the encoding threads alone
//! ```
//!
//! The pictures are a gradient with sensor-like noise. When Debian's `tjbench` (package
//! `libjpeg-turbo-progs`) is installed, the same RGB picture is written as a PPM and
//! libjpeg-turbo's own benchmark encodes it at the same quality with 4:2:0 subsampling,
//! from RGB and (`-yuv`) from planar YUV, for comparison.
//!
//! The pool is fed I420 (what the rpicam source reads from `rpicam-vid`) by a source
//! that hands in a new picture whenever a worker is free, as a camera faster than the
//! encoders would; each picture is copied into the pool as in the server. The load
//! average is printed before and after: on a shared machine other work takes cores
//! the workers would use.

use std::process::Command;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use picam_stream::encoder::{
    Backend, EncodeError, EncodePool, JpegOut, RawFrame, RawLayout, SoftwareEncoder,
};

const QUALITY: u8 = 80;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(2.0);
    let budget = Duration::from_secs_f64(seconds);
    let mut backends = vec![Backend::JpegEncoder];
    if Backend::best() != Backend::JpegEncoder {
        backends.push(Backend::best());
    }
    println!("software JPEG encoder, quality {QUALITY}, 4:2:0, one thread, {seconds} s per case");
    if backends.len() == 1 {
        println!("  (build with --features turbojpeg to measure the libjpeg-turbo back end too)");
    }
    println!("load average before: {}", load_average());
    let pool_only = args.iter().any(|a| a == "--pool-only");
    for (w, h) in SIZES.into_iter().filter(|_| !pool_only) {
        let rgb = picture(w, h);
        let (yuyv, nv12) = to_yuv(&rgb, w, h);
        let mut best = (0.0f64, 0.0f64, 0.0f64);
        for &backend in &backends {
            let mut enc = SoftwareEncoder::with_backend(QUALITY, backend);
            let name = backend.name();
            let mut run = |input: &str, f: &mut dyn FnMut(&mut SoftwareEncoder) -> usize| {
                let mut frames = 0u64;
                let mut bytes = 0usize;
                let start = Instant::now();
                while start.elapsed() < budget || frames < 3 {
                    bytes = f(&mut enc);
                    frames += 1;
                }
                let fps = frames as f64 / start.elapsed().as_secs_f64();
                println!(
                    "  {w}x{h} {name:<13} {input:<5} {fps:>7.1} fps  {:>6.1} Mpixel/s  ({bytes} bytes per frame)",
                    fps * (w * h) as f64 / 1e6
                );
                fps
            };
            let yuyv_fps = run("YUYV", &mut |e| {
                e.encode_raw(&yuyv, RawLayout::Yuyv, w as u16, h as u16, w * 2)
                    .unwrap()
                    .len()
            });
            let nv12_fps = run("NV12", &mut |e| {
                e.encode_raw(&nv12, RawLayout::Nv12, w as u16, h as u16, w)
                    .unwrap()
                    .len()
            });
            let rgb_fps = run("RGB", &mut |e| {
                e.encode_rgb(&rgb, w as u16, h as u16).unwrap().len()
            });
            best = (yuyv_fps, nv12_fps, rgb_fps);
        }
        let (yuyv_fps, nv12_fps, rgb_fps) = best;
        match turbo(&rgb, w, h, seconds) {
            Some((from_rgb, from_yuv)) => {
                let px = (w * h) as f64;
                println!(
                    "  {w}x{h} tjbench (Debian's libjpeg-turbo): {:.1} fps from RGB, {:.1} fps from planar YUV",
                    from_rgb / px,
                    from_yuv / px
                );
                println!(
                    "  {w}x{h} tjbench is {:.2}x faster than {} from RGB; from YUV {:.2}x its YUYV, {:.2}x its NV12",
                    from_rgb / px / rgb_fps,
                    backends.last().unwrap().name(),
                    from_yuv / px / yuyv_fps,
                    from_yuv / px / nv12_fps,
                );
            }
            None => println!("  (install libjpeg-turbo-progs for a comparison with tjbench)"),
        }
    }
    println!(
        "encoding threads (EncodePool), I420 in, {} cores here, {seconds} s per case",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    for (w, h) in SIZES {
        let rgb = picture(w, h);
        let i420 = to_i420(&rgb, w, h);
        for &backend in &backends {
            let mut one = 0.0;
            for workers in [1, 2, 4] {
                let (fps, skipped) = pool_fps(&i420, w, h, backend, workers, budget);
                if workers == 1 {
                    one = fps;
                }
                println!(
                    "  {w}x{h} {:<13} {workers} worker{} {fps:>7.1} fps  {:.2}x one worker  ({skipped} skipped)",
                    backend.name(),
                    if workers == 1 { " " } else { "s" },
                    fps / one
                );
            }
        }
    }
    println!("load average after: {}", load_average());
}

/// The picture sizes measured.
const SIZES: [(usize, usize); 3] = [(640, 480), (1280, 720), (1920, 1080)];

/// The first three fields of /proc/loadavg.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Counts what the pool finishes, and lets the feeding loop wait for a free worker.
#[derive(Default)]
struct Counted {
    /// (pictures published, pictures finished in any way)
    done: Mutex<(u64, u64)>,
    finished: Condvar,
}

impl Counted {
    fn finish(&self, published: bool) {
        let mut d = self.done.lock().unwrap();
        d.0 += published as u64;
        d.1 += 1;
        self.finished.notify_one();
    }
}

impl JpegOut for Counted {
    fn publish(&self, jpeg: &[u8], _width: u16, _height: u16) {
        assert!(jpeg.starts_with(&[0xFF, 0xD8]), "a JPEG");
        self.finish(true);
    }
    fn encode_failed(&self, error: &EncodeError) {
        panic!("{error}");
    }
    fn skipped(&self) {
        self.finish(false);
    }
}

/// Pictures per second the pool publishes with `workers` threads, fed whenever one
/// is free, and how many it skipped (finished after a newer one).
fn pool_fps(
    i420: &[u8],
    w: usize,
    h: usize,
    backend: Backend,
    workers: usize,
    budget: Duration,
) -> (f64, u64) {
    let counted = Arc::new(Counted::default());
    let mut pool = EncodePool::with_backend(workers, QUALITY, backend, counted.clone()).unwrap();
    let mut submitted = 0u64;
    let mut submit = |pool: &mut EncodePool| {
        let (y, chroma) = i420.split_at(w * h);
        let (u, v) = chroma.split_at(w * h / 4);
        pool.submit_planes(RawFrame {
            planes: [y, u, v],
            layout: RawLayout::Yuv420,
            width: w as u16,
            height: h as u16,
            stride: w,
        })
        .unwrap();
        submitted += 1;
        let mut d = counted.done.lock().unwrap();
        while submitted - d.1 >= workers as u64 {
            d = counted.finished.wait(d).unwrap();
        }
        d.0
    };
    // One picture per worker to warm up, then the measured run.
    for _ in 0..workers {
        submit(&mut pool);
    }
    let start = Instant::now();
    let first = counted.done.lock().unwrap().0;
    let mut published = first;
    while start.elapsed() < budget || published < first + 3 {
        published = submit(&mut pool);
    }
    let fps = (published - first) as f64 / start.elapsed().as_secs_f64();
    let skipped = pool.skipped();
    drop(pool);
    (fps, skipped)
}

/// The picture as video-range I420: the luma plane, then U and V at half size.
fn to_i420(rgb: &[u8], w: usize, h: usize) -> Vec<u8> {
    let (_, nv12) = to_yuv(rgb, w, h);
    let (luma, uv) = nv12.split_at(w * h);
    let mut i420 = luma.to_vec();
    i420.extend(uv.iter().step_by(2));
    i420.extend(uv.iter().skip(1).step_by(2));
    i420
}

/// A gradient with per-pixel noise, packed RGB.
fn picture(w: usize, h: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut rgb = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let n = (state % 25) as i32 - 12;
            for base in [x * 255 / w, y * 255 / h, 128] {
                rgb.push((base as i32 + n).clamp(0, 255) as u8);
            }
        }
    }
    rgb
}

/// The picture as video-range YUYV and NV12, as a camera would deliver it.
fn to_yuv(rgb: &[u8], w: usize, h: usize) -> (Vec<u8>, Vec<u8>) {
    let ycc = |p: &[u8]| {
        let (r, g, b) = (p[0] as f32, p[1] as f32, p[2] as f32);
        let y = 16.0 + 0.257 * r + 0.504 * g + 0.098 * b;
        let u = 128.0 - 0.148 * r - 0.291 * g + 0.439 * b;
        let v = 128.0 + 0.439 * r - 0.368 * g - 0.071 * b;
        [y as u8, u as u8, v as u8]
    };
    let mut yuyv = Vec::with_capacity(w * h * 2);
    let mut luma = Vec::with_capacity(w * h);
    let mut chroma = Vec::with_capacity(w * h / 2);
    for y in 0..h {
        for x in (0..w).step_by(2) {
            let a = ycc(&rgb[(y * w + x) * 3..]);
            let b = ycc(&rgb[(y * w + x + 1) * 3..]);
            yuyv.extend_from_slice(&[a[0], a[1], b[0], a[2]]);
            luma.extend_from_slice(&[a[0], b[0]]);
            if y % 2 == 0 {
                chroma.extend_from_slice(&[a[1], a[2]]);
            }
        }
    }
    luma.extend_from_slice(&chroma);
    (yuyv, luma)
}

/// libjpeg-turbo's compression speed on the same picture, in pixels per second:
/// (from RGB, from planar YUV), or `None` without `tjbench`.
fn turbo(rgb: &[u8], w: usize, h: usize, seconds: f64) -> Option<(f64, f64)> {
    let dir = std::env::temp_dir().join(format!("picam-encoder-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let ppm = dir.join("picture.ppm");
    let mut data = format!("P6\n{w} {h}\n255\n").into_bytes();
    data.extend_from_slice(rgb);
    std::fs::write(&ppm, data).ok()?;
    let perf = |extra: &[&str], column: usize| -> Option<f64> {
        let out = Command::new("tjbench")
            .arg(&ppm)
            .arg(QUALITY.to_string())
            .args([
                "-subsamp",
                "420",
                "-quiet",
                "-nowrite",
                "-warmup",
                "1",
                "-benchtime",
            ])
            .arg(seconds.to_string())
            .args(extra)
            .current_dir(&dir)
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().rev().find(|l| l.contains("4:2:0"))?;
        // Columns after the picture height: performance figures in Mpixel/s.
        let fields: Vec<&str> = line.split_whitespace().collect();
        let height_at = fields.iter().position(|f| *f == h.to_string())?;
        fields
            .get(height_at + column)?
            .parse::<f64>()
            .ok()
            .map(|m| m * 1e6)
    };
    let from_rgb = perf(&[], 1)?;
    // With -yuv the first figure is RGB to YUV, the second YUV to JPEG.
    let from_yuv = perf(&["-yuv"], 2)?;
    let _ = std::fs::remove_dir_all(&dir);
    Some((from_rgb, from_yuv))
}
