//! Picture settings: the size, rate, quality, orientation and encoder that the
//! configuration asks of a source. The configuration fills them in; sources, the JPEG
//! encoder and `/status` read them. Plain values that import nothing of the program, so
//! that every layer above may use them.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The highest `--fps` every source takes; camera modules go up to the option's
/// maximum where a sensor mode allows.
pub const FPS_MAX_ANY_SOURCE: u32 = 120;

/// Picture settings for sources that produce or encode pictures themselves, and how
/// long a byte-stream source may go without a good frame before it counts as broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub width: u16,
    pub height: u16,
    pub fps: u32,
    pub quality: u8,
    pub source_timeout: Duration,
    /// Which JPEG encoder sources that encode use.
    pub encoder: EncoderChoice,
    /// How many threads encode in software (`--encode-workers`).
    pub encode_workers: EncodeWorkers,
    /// Turning and mirroring (`--rotation`, `--hflip`, `--vflip`).
    pub transform: Transform,
    /// Run with nobody watching too (`--always-on`): the source is never idle.
    pub always_on: bool,
    /// The Camera Module 3's sensor HDR (`--hdr`; libcamera, rpicam).
    pub hdr: bool,
    /// The camera module has no infrared filter: libcamera's NoIR tuning for its sensor
    /// (`--noir`; libcamera, rpicam).
    pub noir: bool,
}

/// How the picture should be turned and mirrored: `--rotation`, `--hflip`, `--vflip`.
///
/// The order is fixed: the picture is first turned clockwise by the rotation, then the
/// turned picture is mirrored left to right (`hflip`) and top to bottom (`vflip`), so
/// the flips act on the picture as it is seen. `--rotation 270` sets both turns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Transform {
    /// Turned by 90 degrees clockwise (on top of `rotate180`).
    pub rotate90: bool,
    /// Turned by 180 degrees.
    pub rotate180: bool,
    pub hflip: bool,
    pub vflip: bool,
}

impl Transform {
    /// The rotation in degrees clockwise: 0, 90, 180 or 270.
    pub fn degrees(self) -> u16 {
        90 * self.rotate90 as u16 + 180 * self.rotate180 as u16
    }

    /// Whether the picture is turned by a quarter: its width and height swap.
    pub fn quarter_turn(self) -> bool {
        self.rotate90
    }

    /// The mirroring a camera is asked for, in its own picture's terms: a 180 degree
    /// turn is both flips, so flips cancel it out. A quarter turn asks the camera for
    /// nothing: the encoder moves every pixel anyway, mirrored or not, at the same cost
    /// ([`Transform::after_camera`]), and cameras that cannot mirror still turn.
    pub fn flips(self) -> (bool, bool) {
        if self.quarter_turn() {
            return (false, false);
        }
        let o = self.orientation();
        (o.hflip, o.vflip)
    }

    /// Whether the picture stays as it is.
    pub fn is_identity(self) -> bool {
        self.orientation() == Orientation::default()
    }

    /// Everything as moves of pixels, for pictures whose camera turns nothing.
    pub fn orientation(self) -> Orientation {
        // Clockwise 90 is a transpose, then a left-right mirror; 180 is both mirrors;
        // 270 is a transpose, then a top-bottom mirror. The user's flips come after.
        let (turn_h, turn_v) = match self.degrees() {
            90 => (true, false),
            180 => (true, true),
            270 => (false, true),
            _ => (false, false),
        };
        Orientation {
            transpose: self.rotate90,
            hflip: turn_h ^ self.hflip,
            vflip: turn_v ^ self.vflip,
        }
    }

    /// What is left to do on the picture once the camera has done
    /// [`flips`](Self::flips): everything for a quarter turn, else nothing.
    pub fn after_camera(self) -> Orientation {
        if self.quarter_turn() {
            self.orientation()
        } else {
            Orientation::default()
        }
    }
}

/// A turn and mirroring as moves of pixels: first rows become columns (`transpose`,
/// the pixel at column x of row y goes to column y of row x), then the result is
/// mirrored left to right (`hflip`) and top to bottom (`vflip`). The eight values
/// cover every quarter turn with or without a mirror.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Orientation {
    pub transpose: bool,
    pub hflip: bool,
    pub vflip: bool,
}

impl Orientation {
    pub fn is_identity(self) -> bool {
        self == Orientation::default()
    }

    /// The size of a `width` x `height` picture once moved.
    pub fn size_of<T>(self, width: T, height: T) -> (T, T) {
        if self.transpose {
            (height, width)
        } else {
            (width, height)
        }
    }
}

impl Settings {
    /// The size of the pictures served: the asked size, turned when a quarter turn is
    /// asked for.
    pub fn output_size(&self) -> (u16, u16) {
        self.transform
            .orientation()
            .size_of(self.width, self.height)
    }
}

/// What `--encoder` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EncoderChoice {
    /// The hardware encoder when one is found, else software.
    #[default]
    Auto,
    /// The hardware encoder; starting fails without one.
    Hardware,
    /// Always software.
    Software,
}

/// The accepted values of `--encoder`.
pub const ENCODER_FORMS: &str = "auto, hardware or software";

impl FromStr for EncoderChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<EncoderChoice, String> {
        match s {
            "auto" => Ok(EncoderChoice::Auto),
            "hardware" => Ok(EncoderChoice::Hardware),
            "software" => Ok(EncoderChoice::Software),
            _ => Err(format!("expected {ENCODER_FORMS}")),
        }
    }
}

impl fmt::Display for EncoderChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EncoderChoice::Auto => "auto",
            EncoderChoice::Hardware => "hardware",
            EncoderChoice::Software => "software",
        })
    }
}

/// What `--encode-workers` asks for: how many threads encode JPEG in software.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EncodeWorkers {
    /// One per core, at most [`EncodeWorkers::AUTO_MAX`].
    #[default]
    Auto,
    /// This many (1 to [`EncodeWorkers::MAX`]); 1 encodes on the source's own thread.
    Fixed(u8),
}

impl EncodeWorkers {
    /// The most `auto` takes: beyond four cores a Pi has none, and the source, the
    /// server and the kernel need some time too.
    pub const AUTO_MAX: usize = 4;
    /// The most that may be asked for.
    pub const MAX: u8 = 8;

    /// How many workers, and why, for the start-up log: `(4, "4 cores")`.
    pub fn resolve(self) -> (usize, String) {
        match self {
            EncodeWorkers::Fixed(n) => (n as usize, format!("--encode-workers {n}")),
            EncodeWorkers::Auto => {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                let n = cores.min(Self::AUTO_MAX);
                let why = if cores > n {
                    format!("{cores} cores, at most {} by default", Self::AUTO_MAX)
                } else {
                    format!("{cores} core{}", if cores == 1 { "" } else { "s" })
                };
                (n, why)
            }
        }
    }
}

/// The accepted values of `--encode-workers`.
pub const ENCODE_WORKERS_FORMS: &str = "auto or a number from 1 to 8";

impl FromStr for EncodeWorkers {
    type Err = String;

    fn from_str(s: &str) -> Result<EncodeWorkers, String> {
        match s {
            "auto" => Ok(EncodeWorkers::Auto),
            _ => match s.parse::<u8>() {
                Ok(n) if (1..=Self::MAX).contains(&n) => Ok(EncodeWorkers::Fixed(n)),
                _ => Err(format!("expected {ENCODE_WORKERS_FORMS}")),
            },
        }
    }
}

impl fmt::Display for EncodeWorkers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeWorkers::Auto => f.write_str("auto"),
            EncodeWorkers::Fixed(n) => write!(f, "{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_worker_counts() {
        assert_eq!("auto".parse(), Ok(EncodeWorkers::Auto));
        assert_eq!("1".parse(), Ok(EncodeWorkers::Fixed(1)));
        assert_eq!("8".parse(), Ok(EncodeWorkers::Fixed(8)));
        for bad in ["0", "9", "abc", "", "-1", "2.5"] {
            let e = bad.parse::<EncodeWorkers>().unwrap_err();
            assert!(e.contains(ENCODE_WORKERS_FORMS), "{bad}: {e}");
        }
        assert_eq!(EncodeWorkers::Fixed(3).resolve().0, 3);
        let (n, why) = EncodeWorkers::Auto.resolve();
        assert!((1..=EncodeWorkers::AUTO_MAX).contains(&n), "{n}");
        assert!(why.contains("core"), "{why}");
    }

    #[test]
    fn quarter_turns_swap_the_size_and_leave_cameras_alone() {
        let settings = |rotate90, rotate180, hflip| Settings {
            width: 640,
            height: 480,
            fps: 30,
            quality: 80,
            source_timeout: Duration::from_secs(5),
            encoder: EncoderChoice::Auto,
            encode_workers: EncodeWorkers::Auto,
            transform: Transform {
                rotate90,
                rotate180,
                hflip,
                vflip: false,
            },
            hdr: false,
            noir: false,
            always_on: false,
        };
        for (r90, r180, size) in [
            (false, false, (640, 480)),
            (true, false, (480, 640)),
            (false, true, (640, 480)),
            (true, true, (480, 640)),
        ] {
            for hflip in [false, true] {
                let s = settings(r90, r180, hflip);
                assert_eq!(s.output_size(), size, "{:?}", s.transform);
                let t = s.transform;
                if t.quarter_turn() {
                    // The camera does nothing; the encoder all of it.
                    assert_eq!(t.flips(), (false, false));
                    assert_eq!(t.after_camera(), t.orientation());
                } else {
                    assert_eq!(t.flips(), (hflip ^ r180, r180));
                    assert!(t.after_camera().is_identity());
                }
            }
        }
        // 180 with both flips is the picture as it is; 90 with both is 270.
        let t = |rotate90, rotate180, hflip, vflip| Transform {
            rotate90,
            rotate180,
            hflip,
            vflip,
        };
        assert!(t(false, true, true, true).is_identity());
        assert_eq!(
            t(true, false, true, true).orientation(),
            t(true, true, false, false).orientation()
        );
    }

    #[test]
    fn parses_choices() {
        assert_eq!("auto".parse(), Ok(EncoderChoice::Auto));
        assert_eq!("hardware".parse(), Ok(EncoderChoice::Hardware));
        assert_eq!("software".parse(), Ok(EncoderChoice::Software));
        assert!("gpu"
            .parse::<EncoderChoice>()
            .unwrap_err()
            .contains(ENCODER_FORMS));
        for c in [
            EncoderChoice::Auto,
            EncoderChoice::Hardware,
            EncoderChoice::Software,
        ] {
            assert_eq!(c.to_string().parse(), Ok(c));
        }
    }
}
