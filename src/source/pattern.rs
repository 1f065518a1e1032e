//! The built-in test pattern: colour bars, a grey ramp, a bouncing box and a sweeping
//! line, with the frame number and the UTC clock drawn in, so a viewer sees at a glance
//! that the stream is live and how far behind it is. The frame number is also drawn
//! as a strip of black and white blocks in the bottom left corner ([`COUNTER_BITS`]
//! bits, lowest first), which survives JPEG and is read back by [`read_counter`]: tests
//! and tools check with it that frames arrive in order.
//!
//! The static background is drawn once; each frame copies it, draws the moving parts and
//! the text, and goes through the JPEG encoder (`--encoder`).
//!
//! It draws only while somebody wants frames (plus [`LINGER`]); otherwise the thread
//! sleeps until a viewer or a snapshot wakes it, and spends nothing.
//!
//! It has controls of its own, like a camera ([`PatternControls`], on the
//! [`ControlBoard`] while it runs): `brightness` and `contrast` change every pixel of
//! every frame drawn after them, and `pattern` chooses the background.
//!
//! A full-resolution still ([`crate::still`]) is the current frame drawn anew at twice
//! the stream's width and height (the pattern's "sensor"), between two frames.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::font::{text_width, Canvas};
use super::still_jpeg::encode_still;
use super::{FrameSink, LINGER};
use crate::clock::Utc;
use crate::controls::{CameraControls, ControlBoard, ControlInfo, ControlKind};
use crate::encoder::{JpegEncoder, RawFrame, RawLayout};
use crate::picture::{Orientation, Settings};
use crate::ratelog::{self, RateLimit};
use crate::still::Still;

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

/// The backgrounds the `pattern` control chooses from, by number.
const PATTERNS: [&str; 2] = ["Colour bars", "Grey"];

/// The test pattern's controls, read by its thread before each frame.
pub struct PatternControls {
    /// Added to every colour component, -100 to 100.
    brightness: AtomicI64,
    /// Percent: components are moved away from (above 100) or toward mid-grey.
    contrast: AtomicI64,
    /// An index into [`PATTERNS`].
    pattern: AtomicI64,
}

impl PatternControls {
    pub fn new() -> PatternControls {
        PatternControls {
            brightness: AtomicI64::new(0),
            contrast: AtomicI64::new(100),
            pattern: AtomicI64::new(0),
        }
    }

    /// What each colour component becomes with the brightness and contrast now; `None`
    /// when nothing changes.
    pub fn tone_table(&self) -> Option<[u8; 256]> {
        let brightness = self.brightness.load(Ordering::Relaxed);
        let contrast = self.contrast.load(Ordering::Relaxed);
        if brightness == 0 && contrast == 100 {
            return None;
        }
        let mut table = [0u8; 256];
        for (v, out) in table.iter_mut().enumerate() {
            let v = (v as i64 - 128) * contrast / 100 + 128 + brightness;
            *out = v.clamp(0, 255) as u8;
        }
        Some(table)
    }
}

impl Default for PatternControls {
    fn default() -> PatternControls {
        PatternControls::new()
    }
}

/// The test pattern's camera identity, under which its saved settings are kept.
pub const IDENTITY: &str = "test pattern";

impl CameraControls for PatternControls {
    fn identity(&self) -> String {
        IDENTITY.to_string()
    }

    fn list(&self) -> Result<Vec<ControlInfo>, String> {
        let integer = |name: &str, label: &str, min, max, default, value: &AtomicI64| ControlInfo {
            name: name.into(),
            label: label.into(),
            kind: ControlKind::Integer { min, max, step: 1 },
            default,
            value: value.load(Ordering::Relaxed),
            read_only: false,
            inactive: false,
        };
        Ok(vec![
            integer("brightness", "Brightness", -100, 100, 0, &self.brightness),
            integer("contrast", "Contrast", 0, 200, 100, &self.contrast),
            ControlInfo {
                name: "pattern".into(),
                label: "Pattern".into(),
                kind: ControlKind::Menu {
                    choices: (0..)
                        .zip(PATTERNS)
                        .map(|(n, name)| (n, name.to_string()))
                        .collect(),
                },
                default: 0,
                value: self.pattern.load(Ordering::Relaxed),
                read_only: false,
                inactive: false,
            },
        ])
    }

    fn apply(&self, changes: &[(String, i64)]) -> Result<(), String> {
        for (name, value) in changes {
            let field = match name.as_str() {
                "brightness" => &self.brightness,
                "contrast" => &self.contrast,
                "pattern" => &self.pattern,
                other => return Err(format!("the test pattern has no control '{other}'")),
            };
            field.store(*value, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// The background numbered `pattern` (see [`PATTERNS`]).
pub fn background_of(pattern: i64, width: usize, height: usize) -> Vec<u8> {
    match pattern {
        1 => vec![128u8; width * height * 3],
        _ => background(width, height),
    }
}

/// Bits of the frame number in the counter strip (it counts modulo 2^16).
pub const COUNTER_BITS: usize = 16;

/// Side of one block of the counter strip, in pixels: a JPEG block, so that each bit
/// is coded on its own.
const COUNTER_CELL: usize = 8;

/// Bits of the counter that fit a picture `width` pixels wide.
fn counter_bits(width: usize) -> usize {
    (width / COUNTER_CELL).min(COUNTER_BITS)
}

/// Draws the low bits of `frame` as the counter strip along the bottom left edge.
fn draw_counter(rgb: &mut [u8], width: usize, height: usize, frame: u64) {
    if height < COUNTER_CELL {
        return;
    }
    for bit in 0..counter_bits(width) {
        let v = if frame >> bit & 1 == 1 { 255 } else { 0 };
        for y in height - COUNTER_CELL..height {
            let row = (y * width + bit * COUNTER_CELL) * 3;
            rgb[row..row + COUNTER_CELL * 3].fill(v);
        }
    }
}

/// Reads the counter strip of a decoded picture (packed RGB): the frame number modulo
/// 2^[`COUNTER_BITS`] (fewer bits on pictures narrower than 128 pixels); `None` when
/// the picture is too small or a block is neither clearly black nor clearly white.
pub fn read_counter(rgb: &[u8], width: usize, height: usize) -> Option<u64> {
    let bits = counter_bits(width);
    if bits == 0 || height < COUNTER_CELL || rgb.len() < width * height * 3 {
        return None;
    }
    let mut n = 0;
    for bit in 0..bits {
        // The middle of the block, away from the ringing at its edges.
        let (x0, y0) = (bit * COUNTER_CELL + 2, height - COUNTER_CELL + 2);
        let mut sum = 0u32;
        for y in y0..y0 + 4 {
            for x in x0..x0 + 4 {
                let px = &rgb[(y * width + x) * 3..][..3];
                sum += px.iter().map(|&c| c as u32).sum::<u32>();
            }
        }
        let mean = sum / 48;
        match mean {
            0..=60 => {}
            196..=255 => n |= 1 << bit,
            _ => return None,
        }
    }
    Some(n)
}

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
    draw_counter(rgb, width, height, frame);
}

/// Runs the test pattern at `settings.fps`, while somebody wants frames, until the
/// server stops; its controls are on `board` meanwhile.
pub fn run(
    settings: Settings,
    mut encoder: JpegEncoder,
    sink: FrameSink,
    board: &Arc<ControlBoard>,
) {
    let (w, h) = (settings.width as usize, settings.height as usize);
    let controls = Arc::new(PatternControls::new());
    let _attached = board.attach(controls.clone());
    let mut shown = controls.pattern.load(Ordering::Relaxed);
    let mut background = background_of(shown, w, h);
    let mut picture = background.clone();
    let period = Duration::from_secs(1) / settings.fps.max(1);
    let mut next = Instant::now();
    let mut frame: u64 = 0;
    let mut behind_logged = false;
    let out = sink.jpeg_out();
    sink.stats().set_capturing(false);
    // The pattern's "sensor": twice the stream's width and height.
    let full = (w * 2, h * 2);
    let _stills = sink.stills().open();
    let mut took_still = false;
    while !sink.stopping() {
        if !sink.wanted(LINGER) {
            // The encoding threads end while nobody watches.
            encoder.rest();
            sink.note_running(false, || "test pattern idle until the next viewer".into());
            sink.wait_until_wanted(LINGER);
            continue;
        }
        if sink.note_running(true, || "drawing the test pattern".into()) {
            // No catching up on the time spent idle.
            next = Instant::now();
        }
        frame += 1;
        let pattern = controls.pattern.load(Ordering::Relaxed);
        if pattern != shown {
            shown = pattern;
            background = background_of(shown, w, h);
        }
        picture.copy_from_slice(&background);
        draw(&mut picture, w, h, frame, &Utc::now(), settings.fps);
        if let Some(table) = controls.tone_table() {
            for v in picture.iter_mut() {
                *v = table[*v as usize];
            }
        }
        match encoder.deliver_rgb(&picture, settings.width, settings.height, &out) {
            Ok(()) => {}
            Err(e) => {
                static FAILED: RateLimit = RateLimit::new(ratelog::DEFAULT_INTERVAL);
                if let Some(held) = FAILED.admit() {
                    log::error!("test pattern: {e}{held}");
                }
                sink.stats().count_dropped();
            }
        }
        sink.note_encoder(&mut encoder);
        sink.stills().serve(|| {
            // The still's time is not the stream's: no catching up afterwards.
            took_still = true;
            let started = Instant::now();
            let still = still_of(
                shown,
                full,
                frame,
                settings.fps,
                &controls,
                settings.quality,
                settings.transform.orientation(),
            );
            log::info!(
                "test pattern: took a {}x{} still in {} ms",
                full.0,
                full.1,
                started.elapsed().as_millis()
            );
            still
        });
        if std::mem::take(&mut took_still) {
            next = Instant::now();
        }
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

/// A still of the pattern at `size`: the frame `frame` as the stream shows it, drawn
/// and encoded anew at that size.
fn still_of(
    pattern: i64,
    size: (usize, usize),
    frame: u64,
    fps: u32,
    controls: &PatternControls,
    quality: u8,
    orientation: Orientation,
) -> Result<Still, String> {
    let (w, h) = size;
    let mut picture = background_of(pattern, w, h);
    draw(&mut picture, w, h, frame, &Utc::now(), fps);
    if let Some(table) = controls.tone_table() {
        for v in picture.iter_mut() {
            *v = table[*v as usize];
        }
    }
    let (Ok(w16), Ok(h16)) = (u16::try_from(w), u16::try_from(h)) else {
        return Err(format!("{w}x{h} is too large to encode"));
    };
    // Turned as the stream is; the still's size is then turned too.
    let raw = RawFrame::packed(&picture, RawLayout::Rgb24, (w16, h16), w * 3);
    encode_still(raw, orientation, quality)
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
    fn controls_change_the_tones_and_the_background() {
        let controls = PatternControls::new();
        assert_eq!(controls.tone_table(), None);
        controls
            .apply(&[("brightness".into(), 50), ("contrast".into(), 200)])
            .unwrap();
        let table = controls.tone_table().unwrap();
        assert_eq!(
            (table[0], table[128], table[150], table[255]),
            (0, 178, 222, 255)
        );
        controls.apply(&[("contrast".into(), 0)]).unwrap();
        assert!(controls.tone_table().unwrap().iter().all(|&v| v == 178));
        let listed = controls.list().unwrap();
        let value = |n: &str| listed.iter().find(|c| c.name == n).unwrap().value;
        assert_eq!((value("brightness"), value("contrast")), (50, 0));
        assert!(controls.apply(&[("hue".into(), 1)]).is_err());
        assert!(background_of(1, 4, 2).iter().all(|&v| v == 128));
        assert_eq!(background_of(0, 16, 8), background(16, 8));
    }

    #[test]
    fn the_counter_survives_jpeg() {
        use crate::encoder::SoftwareEncoder;
        let clock = Utc::now();
        let mut enc = SoftwareEncoder::new(50);
        for (w, h) in [(160, 120), (320, 240), (64, 48)] {
            let bg = background(w, h);
            for frame in [1u64, 2, 0x5a5a, 65535, 65537] {
                let mut rgb = bg.clone();
                draw(&mut rgb, w, h, frame, &clock, 30);
                let jpeg = enc.encode_rgb(&rgb, w as u16, h as u16).unwrap();
                let pixels = zune_jpeg::JpegDecoder::new(jpeg).decode().unwrap();
                let mask = (1u64 << counter_bits(w)) - 1;
                assert_eq!(
                    read_counter(&pixels, w, h),
                    Some(frame & mask),
                    "{w}x{h} frame {frame}"
                );
            }
        }
        assert_eq!(read_counter(&[0; 12], 2, 2), None);
    }

    #[test]
    fn bounce_stays_in_range() {
        for f in 0..1000 {
            assert!(bounce(f, 7, 100) <= 100);
        }
        assert_eq!(bounce(5, 3, 0), 0);
    }
}
