//! `--rotation 90` and `270` against the real binary: the test pattern's stream carries
//! JPEGs of the turned size, `/status` says that size, and the pattern's asymmetric
//! parts land where the turn puts them. The frames are decoded, turned back here, and
//! then read as the pattern draws them: the frame counter strip runs along the bottom
//! edge from the left (`source::pattern::read_counter`), and the grey ramp under the
//! colour bars goes from black on the left to white on the right. A picture turned the
//! wrong way, or mirrored, reads neither.
//!
//! Refusals of quarter turns on sources that send JPEG are in `tests/server.rs`.

mod common;

use std::time::Duration;

use common::*;
use picam_stream::source::pattern::read_counter;

/// The pattern's size as asked with `--size`.
const W: usize = 320;
const H: usize = 240;

/// Packed RGB turned clockwise by a quarter: its bottom left corner goes to the top
/// left. Returns the pixels and their new width and height.
fn clockwise(rgb: &[u8], w: usize, h: usize) -> (Vec<u8>, usize, usize) {
    let mut out = vec![0u8; rgb.len()];
    // The new picture is h wide and w high; its pixel (x, y) was (y, h - 1 - x).
    for y in 0..w {
        for x in 0..h {
            let from = ((h - 1 - x) * w + y) * 3;
            out[(y * h + x) * 3..][..3].copy_from_slice(&rgb[from..from + 3]);
        }
    }
    (out, h, w)
}

/// Packed RGB mirrored left to right.
fn mirrored(rgb: &[u8], w: usize) -> Vec<u8> {
    rgb.chunks(w * 3)
        .flat_map(|row| row.chunks(3).rev().flatten().copied().collect::<Vec<u8>>())
        .collect()
}

/// A decoded frame of the server turned by `degrees` (then mirrored left to right
/// with `hflip`) turned back to the pattern as drawn, `w` x `h` once turned (it is
/// drawn `h` x `w`).
fn turned_back(rgb: &[u8], w: usize, h: usize, degrees: u16, hflip: bool) -> Vec<u8> {
    let drawn = (h, w);
    let (mut rgb, mut w, mut h) = if hflip {
        (mirrored(rgb, w), w, h)
    } else {
        (rgb.to_vec(), w, h)
    };
    // Undoing a clockwise turn is turning on to a full circle.
    for _ in 0..(360 - degrees) / 90 % 4 {
        (rgb, w, h) = clockwise(&rgb, w, h);
    }
    assert_eq!((w, h), drawn);
    rgb
}

/// Mean brightness of the pixels of row `y` from column `x0` to `x1`.
fn brightness(rgb: &[u8], y: usize, (x0, x1): (usize, usize)) -> u32 {
    let row = &rgb[(y * W + x0) * 3..(y * W + x1) * 3];
    row.iter().map(|&c| c as u32).sum::<u32>() / row.len() as u32
}

/// Runs the pattern with `extra` arguments and checks `frames` distinct frames of its
/// stream, turned back by `degrees` (and `hflip`).
fn check_turned(extra: &[&str], degrees: u16, hflip: bool) {
    let mut args = vec!["--source", "test", "--size", "320x240", "--fps", "15"];
    args.extend(extra);
    let server = Server::start(&args);
    let mut client = MjpegClient::open(server.addr, "/stream.mjpg");
    let mut numbers = Vec::new();
    let mut last = Vec::new();
    while numbers.len() < 5 {
        let jpeg = client.next_jpeg();
        if jpeg == last {
            continue;
        }
        let (w, h, pixels) = decode(&jpeg);
        assert_eq!((w, h), (H, W), "{extra:?}: the JPEG is the turned size");
        let drawn = turned_back(&pixels, w, h, degrees, hflip);
        let n = read_counter(&drawn, W, H).unwrap_or_else(|| {
            panic!("{extra:?}: no frame counter along the bottom edge once turned back")
        });
        numbers.push(n);
        // The ramp, a few rows under the bars, away from the counter strip.
        let y = H * 2 / 3 + 8;
        let (dark, light) = (
            brightness(&drawn, y, (4, 60)),
            brightness(&drawn, y, (260, 316)),
        );
        assert!(
            dark + 100 < light,
            "{extra:?}: the ramp runs from {dark} to {light}, not dark to light"
        );
        last = jpeg;
    }
    assert!(
        numbers.windows(2).all(|p| p[0] < p[1]),
        "{extra:?}: frame numbers {numbers:?}"
    );
    let status = server.status();
    assert_eq!(
        (status["width"].as_u64(), status["height"].as_u64()),
        (Some(H as u64), Some(W as u64)),
        "{status}"
    );
    let r = get(server.addr, "/snapshot.jpg");
    assert_eq!(r.status, 200);
    let (w, h, _) = decode(&r.body);
    assert_eq!((w, h), (H, W), "the snapshot is the turned size too");
    // A full-resolution still (the pattern draws it at twice the size) is turned too.
    let r = get(server.addr, "/snapshot.jpg?full=1");
    assert_eq!(r.status, 200, "{}", r.text());
    let (w, h, pixels) = decode(&r.body);
    assert_eq!((w, h), (2 * H, 2 * W), "the still is turned");
    let drawn = turned_back(&pixels, w, h, degrees, hflip);
    assert!(
        read_counter(&drawn, 2 * W, 2 * H).is_some(),
        "{extra:?}: no frame counter on the still turned back"
    );
}

#[test]
fn a_quarter_turn_clockwise_on_the_encoding_threads() {
    check_turned(&["--rotation", "90", "--encode-workers", "2"], 90, false);
}

#[test]
fn three_quarters_on_the_source_thread() {
    check_turned(&["--rotation", "270", "--encode-workers", "1"], 270, false);
}

#[test]
fn a_flip_mirrors_the_turned_picture() {
    check_turned(&["--rotation", "90", "--hflip"], 90, true);
}

#[test]
fn the_log_says_the_picture_is_turned() {
    let server = Server::start(&["--source", "test", "--size", "320x240", "--rotation", "270"]);
    server.wait_log(
        "--rotation 270: pictures are turned on the CPU before encoding (240x320 out)",
        Duration::from_secs(60),
    );
    // Before the first frame too, /status gives the turned size.
    let status = server.status();
    assert_eq!(status["width"], 240, "{status}");
    assert_eq!(status["height"], 320, "{status}");
}
