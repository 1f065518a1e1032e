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
    /// Turning and mirroring, for cameras that can (libcamera, rpicam).
    pub transform: Transform,
    /// Run with nobody watching too (`--always-on`): the source is never idle.
    pub always_on: bool,
    /// The Camera Module 3's sensor HDR (`--hdr`; libcamera, rpicam).
    pub hdr: bool,
}

/// How a camera should turn its picture: `--rotation`, `--hflip`, `--vflip`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Transform {
    /// Turned by 180 degrees.
    pub rotate180: bool,
    pub hflip: bool,
    pub vflip: bool,
}

impl Transform {
    /// The net mirroring: a 180 degree turn is both flips, so flips cancel it out.
    pub fn flips(self) -> (bool, bool) {
        (self.hflip ^ self.rotate180, self.vflip ^ self.rotate180)
    }

    pub fn is_identity(self) -> bool {
        self.flips() == (false, false)
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
