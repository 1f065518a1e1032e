//! Picture settings: the size, rate, quality, orientation and encoder that the
//! configuration asks of a source. The configuration fills them in; sources, the JPEG
//! encoder and `/status` read them. Plain values that import nothing of the program, so
//! that every layer above may use them.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

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
    /// Turning and mirroring, for cameras that can (libcamera, rpicam).
    pub transform: Transform,
    /// Run with nobody watching too (`--always-on`): the source is never idle.
    pub always_on: bool,
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

#[cfg(test)]
mod tests {
    use super::*;

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
