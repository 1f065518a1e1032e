//! What `--rotation 90` costs per frame on one core: turning alone, and turning then
//! encoding in software, beside encoding the upright picture, at 640x480, 1280x720 and
//! 1920x1080, for the layouts the sources deliver (I420 from rpicam and libcamera, YUYV
//! from webcams, RGB from the test pattern). `--rotation 180` (no transpose, only
//! mirrors) is measured beside it for comparison.
//!
//! ```text
//! cargo bench --bench turn
//! cargo bench --bench turn --features turbojpeg     # encoding with libjpeg-turbo
//! cargo bench --bench turn -- --seconds 3
//! ```
//!
//! The pictures are a gradient with per-byte noise. Figures are milliseconds per frame
//! (best of three runs of `--seconds` each, so that other work on a shared machine
//! counts as little as it can); the load average is printed before and after.

use std::time::{Duration, Instant};

use picam_stream::encoder::{RawFrame, RawLayout, SoftwareEncoder, Turner};
use picam_stream::picture::{Orientation, Transform};

const QUALITY: u8 = 80;
const SIZES: [(u16, u16); 3] = [(640, 480), (1280, 720), (1920, 1080)];
const LAYOUTS: [RawLayout; 3] = [RawLayout::Yuv420, RawLayout::Yuyv, RawLayout::Rgb24];

fn main() {
    let seconds: f64 = std::env::args()
        .skip_while(|a| a != "--seconds")
        .nth(1)
        .map_or(1.0, |v| v.parse().expect("--seconds takes a number"));
    let budget = Duration::from_secs_f64(seconds);
    // The first three fields of /proc/loadavg.
    let load_average = || {
        let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        text.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let backend = SoftwareEncoder::new(QUALITY).backend();
    println!(
        "turning and encoding on one thread, {} at quality {QUALITY}, best of 3 x {seconds} s; \
         ms per frame",
        backend.name()
    );
    println!("load average before: {}", load_average());
    let turn = |degrees: u16| {
        Transform {
            rotate90: degrees % 180 == 90,
            rotate180: degrees >= 180,
            ..Transform::default()
        }
        .orientation()
    };
    println!(
        "{:>9}  {:>6}  {:>9}  {:>9}  {:>11}  {:>12}  {:>7}",
        "size", "layout", "turn 90", "turn 180", "encode only", "turn90+enc", "added"
    );
    for (w, h) in SIZES {
        for layout in LAYOUTS {
            let (data, stride) = picture(layout, w as usize, h as usize);
            let frame = RawFrame {
                planes: split(&data, layout, h as usize, stride),
                layout,
                width: w,
                height: h,
                stride,
            };
            let mut encoder = SoftwareEncoder::new(QUALITY);
            let turn_only = |o: Orientation| {
                let mut turner = Turner::new(o);
                best_ms(budget, || {
                    let t = turner.turn(frame).unwrap();
                    std::hint::black_box(t.data.len());
                })
            };
            let quarter = turn_only(turn(90));
            let half = turn_only(turn(180));
            let mut upright = Turner::new(Orientation::default());
            let encode = best_ms(budget, || {
                let done = upright.encode(&mut encoder, frame);
                std::hint::black_box(done.unwrap().0.len());
            });
            let mut turner = Turner::new(turn(90));
            let both = best_ms(budget, || {
                let done = turner.encode(&mut encoder, frame);
                std::hint::black_box(done.unwrap().0.len());
            });
            println!(
                "{:>9}  {:>6}  {quarter:>9.2}  {half:>9.2}  {encode:>11.2}  {both:>12.2}  {:>6.0}%",
                format!("{w}x{h}"),
                name(layout),
                (both / encode - 1.0) * 100.0
            );
        }
    }
    println!("load average after: {}", load_average());
}

fn name(layout: RawLayout) -> &'static str {
    match layout {
        RawLayout::Yuv420 => "I420",
        RawLayout::Yuyv => "YUYV",
        RawLayout::Rgb24 => "RGB",
        _ => "other",
    }
}

/// The fewest milliseconds `run` took per call in three runs of `budget` each.
fn best_ms(budget: Duration, mut run: impl FnMut()) -> f64 {
    run();
    (0..3)
        .map(|_| {
            let start = Instant::now();
            let mut calls = 0u32;
            while calls < 3 || start.elapsed() < budget {
                run();
                calls += 1;
            }
            start.elapsed().as_secs_f64() * 1000.0 / calls as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// A `w` x `h` picture in `layout` with its planes one after the other, and its stride:
/// a gradient with noise in every byte.
fn picture(layout: RawLayout, w: usize, h: usize) -> (Vec<u8>, usize) {
    // Rows with no padding (the sizes are even).
    let stride = match layout {
        RawLayout::Yuyv => w * 2,
        RawLayout::Rgb24 => w * 3,
        _ => w,
    };
    let len = layout.frame_len(stride, h);
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let data = (0..len)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let along = (i % stride) * 160 / stride + (i / stride % h) * 60 / h;
            (16 + along + (state % 20) as usize) as u8
        })
        .collect();
    (data, stride)
}

/// The planes of `data`, a picture `h` rows high in `layout`.
fn split(data: &[u8], layout: RawLayout, h: usize, stride: usize) -> [&[u8]; 3] {
    match layout {
        RawLayout::Yuv420 => {
            let (luma, chroma) = data.split_at(stride * h);
            let (u, v) = chroma.split_at(chroma.len() / 2);
            [luma, u, v]
        }
        _ => [data, &[], &[]],
    }
}
