//! How fast the MJPEG splitter cuts a camera-like stream into pictures, and the stream
//! itself for `benches/armcount.sh --stdin`.
//!
//!   cargo bench --bench splitter                       MB/s over 640x480 frames
//!   cargo bench --bench splitter -- --write FILE [--frames N] [--size WxH]
//!
//! The frames are 640x480 (or `--size`) test cards with per-pixel noise
//! (`support::cards`), about 47 KB each at 640x480, as a camera's MJPEG would be; their
//! entropy-coded data holds about as many 0xFF bytes (stuffed) as a real picture's. The stream is read into the
//! splitter as the stdin source reads it (`MjpegSplitter::read_from`, 64 KiB reads).

mod support;

use std::time::{Duration, Instant};

use picam_stream::splitter::{MjpegSplitter, Piece, READ_SIZE};
use support::cards::test_card;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let frames: usize = value("--frames").and_then(|v| v.parse().ok()).unwrap_or(30);
    let (width, height) = value("--size")
        .and_then(|v| {
            let (w, h) = v.split_once('x')?;
            Some((w.parse().ok()?, h.parse().ok()?))
        })
        .unwrap_or((640, 480));
    let stream = make_stream(frames, width, height);
    if let Some(path) = value("--write") {
        std::fs::write(&path, &stream).expect("writing the stream");
        println!(
            "wrote {path}: {frames} frames of {width}x{height}, {} bytes ({:.0} bytes a frame)",
            stream.len(),
            stream.len() as f64 / frames as f64
        );
        return;
    }
    println!(
        "splitter over {frames} frames of {width}x{height} ({:.1} KB a frame), {} KiB reads",
        stream.len() as f64 / frames as f64 / 1000.0,
        READ_SIZE / 1024
    );
    // Warm up, then run for about two seconds.
    split(&stream);
    let started = Instant::now();
    let mut passes = 0u64;
    while started.elapsed() < Duration::from_secs(2) {
        let found = split(&stream);
        assert_eq!(found, frames, "every frame is found");
        passes += 1;
    }
    let took = started.elapsed().as_secs_f64();
    let bytes = passes as f64 * stream.len() as f64;
    println!(
        "  {:.0} MB/s, {:.1} µs a frame ({passes} passes in {took:.1} s)",
        bytes / took / 1e6,
        took / (passes as f64 * frames as f64) * 1e6
    );
}

/// Splits `stream` as the stdin source does and returns the number of frames found.
fn split(stream: &[u8]) -> usize {
    let mut splitter = MjpegSplitter::default();
    let mut found = 0;
    let mut count = |piece: Piece<'_>| {
        if let Piece::Frame(jpeg) = piece {
            std::hint::black_box(jpeg);
            found += 1;
        }
    };
    let mut input = stream;
    while splitter
        .read_from(&mut input, &mut count)
        .expect("reading a slice")
        > 0
    {}
    splitter.finish(&mut count);
    found
}

/// `count` test cards (see `support::cards`), one after another, as an MJPEG stream.
fn make_stream(count: usize, width: usize, height: usize) -> Vec<u8> {
    (0..count)
        .flat_map(|i| test_card(width, height, i, 22))
        .collect()
}
