//! Sensor modes of a camera module: what each raw readout of the sensor gives (size,
//! bit depth, highest frame rate, the part of the sensor it reads), which one suits
//! `--size` and `--fps` ([`choose`]), and the listing `rpicam-vid --list-cameras`
//! prints, read back into modes ([`parse_rpicam_list`]).
//!
//! Plain values, no camera library: the libcamera source fills a [`SensorMode`] from
//! what libcamera reports, the rpicam source from its helper's listing, and the unit
//! tests from the listings of real modules in `tests/fixtures/pi/`.

use std::fmt;

/// A rectangle of the sensor's pixel array, in sensor pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crop {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// One raw readout mode of a sensor.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorMode {
    /// The raw format's name (`SRGGB10_CSI2P`).
    pub format: String,
    pub width: u32,
    pub height: u32,
    /// Bits per pixel of the readout (10 for `SRGGB10_CSI2P`).
    pub bit_depth: u8,
    /// The highest frame rate the mode gives.
    pub max_fps: f64,
    /// The part of the sensor the mode reads (binned or scaled down to its size).
    pub crop: Crop,
}

impl SensorMode {
    /// `2304x1296 10-bit up to 56.03 fps, crop (0, 0)/4608x2592`.
    pub fn summary(&self) -> String {
        format!(
            "{}x{} {}-bit up to {:.2} fps, crop ({}, {})/{}x{}",
            self.width,
            self.height,
            self.bit_depth,
            self.max_fps,
            self.crop.x,
            self.crop.y,
            self.crop.width,
            self.crop.height
        )
    }

    /// `rpicam-vid --mode`'s value for this mode: `W:H:BITS:P` (packed).
    pub fn rpicam_mode(&self) -> String {
        let packing = if self.format.ends_with("_CSI2P") {
            "P"
        } else {
            "U"
        };
        format!(
            "{}:{}:{}:{packing}",
            self.width, self.height, self.bit_depth
        )
    }

    /// How much of the sensor a picture of aspect `want` (width, height) shows from
    /// this mode: its crop cut to that aspect, in sensor pixels.
    fn field_of_view(&self, want: (u32, u32)) -> u64 {
        let (cw, ch) = (u64::from(self.crop.width), u64::from(self.crop.height));
        let (ww, wh) = (u64::from(want.0.max(1)), u64::from(want.1.max(1)));
        if cw * wh > ch * ww {
            // The crop is wider than the picture: its full height shows.
            (ch * ww / wh) * ch
        } else {
            cw * (cw * wh / ww)
        }
    }

    fn covers(&self, want: (u32, u32)) -> bool {
        self.width >= want.0 && self.height >= want.1
    }

    fn area(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }
}

/// A camera of `rpicam-vid --list-cameras`.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedCamera {
    /// Its place in the listing (`--camera N`).
    pub index: u32,
    /// The sensor's name (`imx708`, `imx708_wide_noir`).
    pub model: String,
    /// The size of its pixel array, when listed.
    pub pixel_array: Option<(u32, u32)>,
    pub modes: Vec<SensorMode>,
}

impl ListedCamera {
    /// The Camera Module 3 (imx708 in every variant): the one with sensor HDR.
    pub fn has_sensor_hdr(&self) -> bool {
        self.model.starts_with("imx708")
    }

    /// A module without an infrared filter (`_noir` in the name).
    pub fn is_noir(&self) -> bool {
        self.model.contains("noir")
    }
}

/// The one mode of the Camera Module 3 (imx708) with its sensor HDR on: 2304x1296,
/// 10-bit, up to 30 fps, the whole sensor (raspberrypi/rpicam-apps#570; rpicam-vid's
/// listing shows the modes without HDR, so this one is known here).
pub fn imx708_hdr_mode() -> SensorMode {
    SensorMode {
        format: "SRGGB10_CSI2P".to_string(),
        width: 2304,
        height: 1296,
        bit_depth: 10,
        max_fps: 30.0,
        crop: Crop {
            x: 0,
            y: 0,
            width: 4608,
            height: 2592,
        },
    }
}

/// The frame rate slack for rounding (a rate listed as 29.99 counts as 30), the same
/// the libcamera source allows against the configured camera's frame durations.
const FPS_SLACK: f64 = 0.05;

/// Which mode the sensor runs in, and why, for the log and `/status`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModeChoice {
    pub mode: SensorMode,
    /// The picture asked for is larger than the mode: it is scaled up.
    pub scaled_up: bool,
}

impl fmt::Display for ModeChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.mode.summary())?;
        if self.scaled_up {
            f.write_str(" (scaled up: no mode this fast is as large as the picture)")?;
        }
        Ok(())
    }
}

/// The mode for a picture of `want` (width, height) at `fps`: among the modes fast
/// enough, the ones at least as large as the picture; of those the one that shows the
/// most of the sensor at the picture's aspect, then the smallest (least to read and
/// scale), then the one with more bits, then the fastest. When no mode fast enough is
/// as large, the largest fast one (scaled up). `what` names the camera in the error
/// (`the imx708`, `the imx708 with --hdr`).
pub fn choose(
    modes: &[SensorMode],
    want: (u32, u32),
    fps: u32,
    what: &str,
) -> Result<ModeChoice, String> {
    let fast: Vec<&SensorMode> = modes
        .iter()
        .filter(|m| m.max_fps + FPS_SLACK >= f64::from(fps))
        .collect();
    if fast.is_empty() {
        let fastest = modes
            .iter()
            .max_by(|a, b| a.max_fps.total_cmp(&b.max_fps))
            .ok_or_else(|| format!("{what} reports no sensor modes"))?;
        return Err(format!(
            "{what} gives at most {:.2} fps (its {}x{} sensor mode), not {fps}: ask for a \
             lower --fps (see --list-cameras)",
            fastest.max_fps, fastest.width, fastest.height
        ));
    }
    let covering: Vec<&SensorMode> = fast.iter().copied().filter(|m| m.covers(want)).collect();
    if covering.is_empty() {
        let largest = fast
            .iter()
            .copied()
            .min_by(|a, b| b.area().cmp(&a.area()).then(better_readout(a, b)))
            .expect("fast is not empty");
        return Ok(ModeChoice {
            mode: largest.clone(),
            scaled_up: true,
        });
    }
    let widest = covering
        .iter()
        .map(|m| m.field_of_view(want))
        .max()
        .unwrap_or(0);
    // Within 2 % of the widest view counts as the same view (crops are rounded).
    let best = covering
        .iter()
        .copied()
        .filter(|m| m.field_of_view(want) * 100 >= widest * 98)
        .min_by(|a, b| a.area().cmp(&b.area()).then(better_readout(a, b)))
        .expect("the widest mode passes its own filter");
    Ok(ModeChoice {
        mode: best.clone(),
        scaled_up: false,
    })
}

/// Of two modes of one size, the one with more bits first, then the faster.
fn better_readout(a: &SensorMode, b: &SensorMode) -> std::cmp::Ordering {
    b.bit_depth
        .cmp(&a.bit_depth)
        .then(b.max_fps.total_cmp(&a.max_fps))
}

/// The bit depth in a raw format's name: the first number in it (`SRGGB10_CSI2P` →
/// 10, `SGBRG8` → 8, `R12_CSI2P` → 12); `None` when it has none.
pub fn bit_depth_of(format: &str) -> Option<u8> {
    let start = format.find(|c: char| c.is_ascii_digit())?;
    let digits: String = format[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// Reads the cameras and their modes out of `rpicam-vid --list-cameras` output (or
/// `rpicam-hello`'s, the same). Lines it does not understand are skipped, so that a
/// changed or garbled listing gives fewer modes, never an error; the numbers taken are
/// bounded (sizes to 65535, rates to 10000 fps).
///
/// ```text
/// 0 : imx708 [4608x2592 10-bit RGGB] (/base/soc/i2c0mux/i2c@1/imx708@1a)
///     Modes: 'SRGGB10_CSI2P' : 1536x864 [120.13 fps - (768, 432)/3072x1728 crop]
///                              2304x1296 [56.03 fps - (0, 0)/4608x2592 crop]
/// ```
pub fn parse_rpicam_list(text: &str) -> Vec<ListedCamera> {
    let mut cameras: Vec<ListedCamera> = Vec::new();
    let mut format: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(camera) = camera_line(trimmed) {
            cameras.push(camera);
            format = None;
            continue;
        }
        let Some(camera) = cameras.last_mut() else {
            continue;
        };
        let mut rest = trimmed.strip_prefix("Modes:").unwrap_or(trimmed).trim();
        if let Some(quoted) = rest.strip_prefix('\'') {
            let Some(end) = quoted.find('\'') else {
                continue;
            };
            format = Some(quoted[..end].to_string());
            rest = quoted[end + 1..].trim_start();
            rest = rest.strip_prefix(':').unwrap_or(rest).trim();
        }
        let Some(format) = &format else { continue };
        // Older listings put several modes on one line, separated by commas.
        for entry in mode_entries(rest) {
            if let Some(mode) = mode_entry(entry, format) {
                camera.modes.push(mode);
            }
        }
    }
    cameras
}

/// The modes on one line: one, or (older listings) several separated by `], ` or
/// `), ` (a crop's `(768, 432)` is followed by `/`, so it is never cut).
fn mode_entries(line: &str) -> Vec<&str> {
    let mut cuts: Vec<usize> = line
        .match_indices("], ")
        .chain(line.match_indices("), "))
        .map(|(i, _)| i + 1)
        .collect();
    cuts.sort_unstable();
    let mut entries = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for cut in cuts {
        entries.push(&line[start..cut]);
        start = cut + 1;
    }
    entries.push(&line[start..]);
    entries
}

/// `0 : imx708 [4608x2592 10-bit RGGB] (/base/...)`.
fn camera_line(line: &str) -> Option<ListedCamera> {
    let (index, rest) = line.split_once(" : ")?;
    let index: u32 = index.trim().parse().ok()?;
    let rest = rest.trim();
    let model: String = rest
        .split(|c: char| c.is_whitespace() || c == '[')
        .next()?
        .to_string();
    if model.is_empty() || model.len() > 64 {
        return None;
    }
    let pixel_array = rest
        .split_once('[')
        .and_then(|(_, r)| r.split([' ', ']']).next())
        .and_then(size_of);
    Some(ListedCamera {
        index,
        model,
        pixel_array,
        modes: Vec::new(),
    })
}

/// `1536x864 [120.13 fps - (768, 432)/3072x1728 crop]`; the crop is the whole mode
/// when the listing (an older rpicam) gives none.
fn mode_entry(entry: &str, format: &str) -> Option<SensorMode> {
    let entry = entry.trim();
    let (size, rest) = entry.split_once(' ')?;
    let (width, height) = size_of(size)?;
    let rest = rest.trim_start();
    let inner = rest.strip_prefix('[').or_else(|| rest.strip_prefix('('))?;
    let (fps_text, after) = inner.split_once(" fps")?;
    let max_fps: f64 = fps_text.trim().parse().ok()?;
    if !(max_fps > 0.0 && max_fps <= 10_000.0) {
        return None;
    }
    let crop = crop_of(after).unwrap_or(Crop {
        x: 0,
        y: 0,
        width,
        height,
    });
    // A name longer than any real format's is not one: keeping a cut of it would lose
    // the bit depth it carries.
    if format.chars().count() > 32 {
        return None;
    }
    Some(SensorMode {
        format: format.to_string(),
        width,
        height,
        bit_depth: bit_depth_of(format)?,
        max_fps,
        crop,
    })
}

/// ` - (768, 432)/3072x1728 crop]`.
fn crop_of(text: &str) -> Option<Crop> {
    let open = text.find('(')?;
    let (origin, rest) = text[open + 1..].split_once(')')?;
    let (x, y) = origin.split_once(',')?;
    let size = rest.strip_prefix('/')?.split(' ').next()?;
    let (width, height) = size_of(size)?;
    Some(Crop {
        x: small_number(x.trim())?,
        y: small_number(y.trim())?,
        width,
        height,
    })
}

/// `4608x2592` → (4608, 2592), each from 1 to 65535.
fn size_of(text: &str) -> Option<(u32, u32)> {
    let (w, h) = text.split_once('x')?;
    let (w, h) = (small_number(w)?, small_number(h)?);
    (w > 0 && h > 0).then_some((w, h))
}

fn small_number(text: &str) -> Option<u32> {
    text.parse::<u32>().ok().filter(|&n| n <= 65_535)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_format_name_too_long_to_be_one_gives_no_mode() {
        // Found by the rpicam_listing fuzz target: a 32-character cut of a long name
        // lost the bit depth its end carried.
        let long = format!("S{}RGGB10_CSI2P", "?".repeat(40));
        let text = format!(
            "0 : imx708 [4608x2592 10-bit RGGB] (/base/soc/i2c0mux/i2c@1/imx708@1a)\n    \
             Modes: '{long}' : 1536x864 [120.13 fps - (768, 432)/3072x1728 crop]\n    \
             Modes: 'SRGGB10_CSI2P' : 2304x1296 [56.03 fps - (0, 0)/4608x2592 crop]\n"
        );
        let cameras = parse_rpicam_list(&text);
        assert_eq!(cameras.len(), 1);
        let modes = &cameras[0].modes;
        assert_eq!(modes.len(), 1, "{modes:?}");
        assert_eq!((modes[0].width, modes[0].bit_depth), (2304, 10));
    }

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/pi");

    fn listed(file: &str) -> ListedCamera {
        let text = std::fs::read_to_string(format!("{FIXTURES}/{file}")).unwrap();
        let mut cameras = parse_rpicam_list(&text);
        assert_eq!(cameras.len(), 1, "{file}: {cameras:?}");
        cameras.remove(0)
    }

    /// The chosen mode for `want` at `fps`: its size, and whether it is scaled up.
    fn pick(camera: &ListedCamera, want: (u32, u32), fps: u32) -> ((u32, u32), bool) {
        let c = choose(&camera.modes, want, fps, "the camera").unwrap();
        ((c.mode.width, c.mode.height), c.scaled_up)
    }

    /// A size asked, a frame rate asked, and the size of the mode they should choose.
    type Case = ((u32, u32), u32, (u32, u32));

    /// Each case chooses a mode of its size, not scaled up.
    fn expect_modes(camera: &ListedCamera, cases: &[Case]) {
        for &(want, fps, mode) in cases {
            assert_eq!(
                pick(camera, want, fps),
                (mode, false),
                "{want:?} at {fps} fps"
            );
        }
    }

    fn refused(camera: &ListedCamera, want: (u32, u32), fps: u32) -> String {
        choose(&camera.modes, want, fps, "the camera").unwrap_err()
    }

    #[test]
    fn reads_every_mode_of_the_listings() {
        let v2 = listed("list-cameras-imx219.txt");
        assert_eq!(v2.model, "imx219");
        assert_eq!(v2.pixel_array, Some((3280, 2464)));
        // Four 10-bit modes and the same four as 8-bit.
        assert_eq!(v2.modes.len(), 8);
        assert_eq!(
            v2.modes[0],
            SensorMode {
                format: "SRGGB10_CSI2P".into(),
                width: 640,
                height: 480,
                bit_depth: 10,
                max_fps: 206.65,
                crop: Crop {
                    x: 1000,
                    y: 752,
                    width: 1280,
                    height: 960
                },
            }
        );
        assert_eq!(v2.modes[4].bit_depth, 8);
        assert_eq!(v2.modes[0].rpicam_mode(), "640:480:10:P");
        assert_eq!(v2.modes[4].rpicam_mode(), "640:480:8:U");

        let v3 = listed("list-cameras-imx708.txt");
        assert!(v3.has_sensor_hdr() && !v3.is_noir());
        assert_eq!(v3.modes.len(), 3);
        let hq = listed("list-cameras-imx477.txt");
        assert!(!hq.has_sensor_hdr());
        let depths: Vec<u8> = hq.modes.iter().map(|m| m.bit_depth).collect();
        assert_eq!(depths, [10, 12, 12, 12]);
        assert_eq!(listed("list-cameras-imx296.txt").modes.len(), 1);
        assert_eq!(listed("list-cameras-ov5647.txt").modes.len(), 4);
        assert_eq!(listed("list-cameras-imx708-hdr.txt").modes.len(), 1);
    }

    #[test]
    fn v1_ov5647_modes() {
        let v1 = listed("list-cameras-ov5647.txt");
        assert_eq!(pick(&v1, (1920, 1080), 30), ((1920, 1080), false));
        // 720p: the binned full-sensor mode, not the cropped 1080p one.
        expect_modes(
            &v1,
            &[((1280, 720), 30, (1296, 972)), ((640, 480), 58, (640, 480))],
        );
        assert!(refused(&v1, (640, 480), 90).contains("at most 58.92 fps"));
    }

    #[test]
    fn v2_imx219_modes() {
        let v2 = listed("list-cameras-imx219.txt");
        // 1080p up to 47 fps comes from the cropped 1920x1080 mode.
        expect_modes(
            &v2,
            &[
                ((1920, 1080), 47, (1920, 1080)),
                ((1640, 1232), 41, (1640, 1232)),
            ],
        );
        // VGA at 30 fps: the binned full field of view is preferred to the small crop.
        assert_eq!(pick(&v2, (640, 480), 30), ((1640, 1232), false));
        // Above 120 fps, where only the 640x480 mode goes.
        assert_eq!(pick(&v2, (640, 480), 206), ((640, 480), false));
        let depth = |want, fps| choose(&v2.modes, want, fps, "").unwrap().mode.bit_depth;
        // Of equal modes the 10-bit one; the 8-bit one where only it is fast enough.
        assert_eq!(depth((640, 480), 30), 10);
        assert_eq!(depth((640, 480), 206), 10);
        assert_eq!(depth((1640, 1232), 80), 8);
        assert_eq!(pick(&v2, (1280, 720), 90), ((640, 480), true));
        let e = refused(&v2, (640, 480), 240);
        assert!(
            e.contains("at most 206.65 fps (its 640x480 sensor mode), not 240"),
            "{e}"
        );
    }

    #[test]
    fn v3_imx708_modes_with_and_without_hdr() {
        let v3 = listed("list-cameras-imx708.txt");
        expect_modes(
            &v3,
            &[
                ((2304, 1296), 56, (2304, 1296)),
                ((1920, 1080), 30, (2304, 1296)),
                ((1280, 720), 100, (1536, 864)),
                ((1536, 864), 120, (1536, 864)),
                ((640, 480), 30, (2304, 1296)),
                ((4608, 2592), 14, (4608, 2592)),
            ],
        );

        let hdr = listed("list-cameras-imx708-hdr.txt");
        assert_eq!(hdr.modes, [imx708_hdr_mode()]);
        assert_eq!(pick(&hdr, (1920, 1080), 30), ((2304, 1296), false));
        let e = choose(&hdr.modes, (1920, 1080), 56, "the camera with --hdr").unwrap_err();
        assert!(
            e.starts_with("the camera with --hdr gives at most 30.0"),
            "{e}"
        );
    }

    #[test]
    fn hq_imx477_modes() {
        let hq = listed("list-cameras-imx477.txt");
        expect_modes(
            &hq,
            &[
                ((2028, 1080), 50, (2028, 1080)),
                ((1920, 1080), 30, (2028, 1520)),
                ((2028, 1520), 40, (2028, 1520)),
                ((1280, 720), 120, (1332, 990)),
                ((1332, 990), 100, (1332, 990)),
            ],
        );
        assert!(refused(&hq, (640, 480), 121).contains("at most 120.05 fps"));
    }

    #[test]
    fn gs_imx296_mode() {
        let gs = listed("list-cameras-imx296.txt");
        expect_modes(
            &gs,
            &[
                ((1456, 1088), 60, (1456, 1088)),
                ((640, 480), 30, (1456, 1088)),
            ],
        );
        assert!(refused(&gs, (640, 480), 61).contains("at most 60.38 fps"));
    }

    #[test]
    fn a_camera_without_modes_is_refused_by_name() {
        assert_eq!(
            choose(&[], (640, 480), 30, "the camera"),
            Err("the camera reports no sensor modes".to_string())
        );
    }

    #[test]
    fn garbled_listings_give_fewer_modes_never_a_panic() {
        let older = "0 : imx477 [4056x3040] (/base/soc/i2c0mux/i2c@1/imx477@1a)\n    \
                     Modes: 'SRGGB10_CSI2P' : 1332x990 (120.00 fps)\n           \
                     'SRGGB12_CSI2P' : 2028x1080 (50.00 fps), 2028x1520 (40.00 fps)\n";
        let cameras = parse_rpicam_list(older);
        assert_eq!(cameras[0].modes.len(), 3);
        assert_eq!(cameras[0].modes[2].crop.width, 2028);
        for bad in [
            "",
            "No cameras available!",
            "0 : [",
            "0 : imx219 [99999999x1]\n Modes: 'X' : 0x0 [1 fps - (1, 2)/3x4 crop]",
            "0 : imx219\n Modes: 'SRGGB10' : 640x480 [nan fps]",
            "0 : imx219\n Modes: 'SRGGB10' : 640x480 [1e300 fps]",
            "0 : imx219\n Modes: 'SRGGB' : 640x480 [30 fps]",
            "Modes: 'SRGGB10' : 640x480 [30 fps]",
            "0 : imx219\n Modes: 'SRGGB10 : 640x480 [30 fps]",
            "0 : imx219\n Modes: 'SRGGB10' : 640x480 [30 fps - (1, 2)/ crop]",
        ] {
            let cameras = parse_rpicam_list(bad);
            assert!(
                cameras.iter().all(|c| c.modes.is_empty()
                    || c.modes.iter().all(|m| m.width > 0 && m.max_fps > 0.0)),
                "{bad:?}: {cameras:?}"
            );
        }
        assert_eq!(bit_depth_of("SGBRG8"), Some(8));
        assert_eq!(bit_depth_of("R12_CSI2P"), Some(12));
        assert_eq!(bit_depth_of("MJPEG"), None);
    }
}
