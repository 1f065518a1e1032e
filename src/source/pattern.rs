//! The built-in test pattern: colour bars, a grey ramp, a bouncing box and a sweeping
//! line, with the frame number and the UTC clock drawn in, so a viewer sees at a glance
//! that the stream is live and how far behind it is.
//!
//! The static background is drawn once; each frame copies it, draws the moving parts and
//! the text, and goes through the JPEG encoder (`--encoder`).
//!
//! It draws only while somebody wants frames (plus [`LINGER`]); otherwise the thread
//! sleeps until a viewer or a snapshot wakes it, and spends nothing.

use std::time::{Duration, Instant};

use super::font::{text_width, Canvas};
use super::{FrameSink, LINGER};
use crate::clock::Utc;
use crate::encoder::JpegEncoder;
use crate::picture::Settings;
use crate::ratelog::{self, RateLimit};

/// 75 % colour bars, left to right.
const BARS: [[u8; 3]; 7] = [
    [191, 191, 191],
    [191, 191, 0],
    [0, 191, 191],
    [0, 191, 0],
    [191, 0, 191],
    [191, 0, 0],
    [0, 0, 191],
];

/// Draws the parts of the pattern that never move.
pub fn background(width: usize, height: usize) -> Vec<u8> {
    let mut rgb = vec![0u8; width * height * 3];
    let bars_h = height * 2 / 3;
    for y in 0..height {
        for x in 0..width {
            let px = &mut rgb[(y * width + x) * 3..][..3];
            if y < bars_h {
                px.copy_from_slice(&BARS[x * BARS.len() / width.max(1)]);
            } else {
                let v = (x * 255 / width.max(2).saturating_sub(1)) as u8;
                px.copy_from_slice(&[v, v, v]);
            }
        }
    }
    rgb
}

/// Position of a point bouncing between 0 and `span` at `step` pixels per frame.
fn bounce(frame: u64, step: u64, span: usize) -> usize {
    if span == 0 {
        return 0;
    }
    let span = span as u64;
    let p = frame.wrapping_mul(step) % (2 * span);
    (if p < span { p } else { 2 * span - p }) as usize
}

/// Draws frame number `frame` of the pattern into `rgb` (which holds the background).
pub fn draw(rgb: &mut [u8], width: usize, height: usize, frame: u64, clock: &Utc, fps: u32) {
    let mut c = Canvas { rgb, width, height };
    let scale = if width >= 1280 {
        4
    } else if width >= 480 {
        3
    } else {
        2
    };
    let side = (height / 6).max(4);
    let bars_h = height * 2 / 3;
    let x = bounce(
        frame,
        (width as u64 / 80).max(1),
        width.saturating_sub(side),
    );
    let y = bounce(
        frame,
        (height as u64 / 90).max(1),
        bars_h.saturating_sub(side),
    );
    c.fill(x, y, side, side, [255, 255, 255]);
    c.fill(x + side / 4, y + side / 4, side / 2, side / 2, [0, 0, 0]);
    let sweep = bounce(frame, 3, width.saturating_sub(2));
    c.fill(sweep, bars_h, 2, height - bars_h, [255, 64, 0]);

    let line = 10 * scale;
    let margin = 2 * scale;
    c.text(margin, margin, scale, "PICAM-STREAM TEST", [255, 255, 255]);
    c.text(
        margin,
        margin + line,
        scale,
        &format!("FRAME #{frame:06}"),
        [255, 255, 0],
    );
    let time = format!("{} UTC", clock.time_of_day());
    c.text(margin, margin + 2 * line, scale, &time, [0, 255, 255]);
    let info = format!("{width}X{height} {fps} FPS");
    let info_x = width.saturating_sub(text_width(&info, scale) + margin);
    c.text(
        info_x,
        height.saturating_sub(margin + 7 * scale),
        scale,
        &info,
        [255, 255, 255],
    );
}

/// Runs the test pattern at `settings.fps`, while somebody wants frames, until the
/// server stops.
pub fn run(settings: Settings, mut encoder: JpegEncoder, mut sink: FrameSink) {
    let (w, h) = (settings.width as usize, settings.height as usize);
    let background = background(w, h);
    let mut picture = background.clone();
    let period = Duration::from_secs(1) / settings.fps.max(1);
    let mut next = Instant::now();
    let mut frame: u64 = 0;
    let mut behind_logged = false;
    sink.stats().set_capturing(false);
    while !sink.stopping() {
        if !sink.wanted(LINGER) {
            sink.note_running(false, || "test pattern idle until the next viewer".into());
            sink.wait_until_wanted(LINGER);
            continue;
        }
        if sink.note_running(true, || "drawing the test pattern".into()) {
            // No catching up on the time spent idle.
            next = Instant::now();
        }
        frame += 1;
        picture.copy_from_slice(&background);
        draw(&mut picture, w, h, frame, &Utc::now(), settings.fps);
        match encoder.encode_rgb(&picture, settings.width, settings.height) {
            Ok(jpeg) => sink.publish_checked(jpeg, settings.width, settings.height),
            Err(e) => {
                static FAILED: RateLimit = RateLimit::new(ratelog::DEFAULT_INTERVAL);
                if let Some(held) = FAILED.admit() {
                    log::error!("test pattern: {e}{held}");
                }
                sink.stats().count_dropped();
            }
        }
        sink.note_encoder(&mut encoder);
        next += period;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            // Slower than the asked rate: run as fast as encoding allows, no catching up.
            if !behind_logged && now - next > Duration::from_secs(1) {
                log::warn!(
                    "test pattern cannot keep up with {} fps at {}x{} on this machine",
                    settings.fps,
                    w,
                    h
                );
                behind_logged = true;
            }
            next = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_differ_and_encode() {
        use crate::encoder::SoftwareEncoder;
        let (w, h) = (160, 120);
        let bg = background(w, h);
        let clock = Utc::now();
        let mut a = bg.clone();
        draw(&mut a, w, h, 1, &clock, 30);
        let mut b = bg.clone();
        draw(&mut b, w, h, 2, &clock, 30);
        assert_ne!(a, b, "the moving parts must move");
        let mut enc = SoftwareEncoder::new(80);
        let jpeg = enc.encode_rgb(&a, w as u16, h as u16).unwrap();
        let d = crate::jpeg::inspect(jpeg).unwrap();
        assert_eq!((d.width, d.height), (160, 120));
    }

    #[test]
    fn bounce_stays_in_range() {
        for f in 0..1000 {
            assert!(bounce(f, 7, 100) <= 100);
        }
        assert_eq!(bounce(5, 3, 0), 0);
    }
}
