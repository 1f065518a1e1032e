//! From an encoder's Annex B output to the [`H264Slot`]: one picture's bytes sorted into
//! parameter sets and sample, checked, and published. Both stages publish through here.
//!
//! The encoder's bytes are not trusted: output without a slice (empty, garbage, or
//! parameter sets alone) publishes nothing; parameter sets are remembered, so an IDR
//! picture that comes without them is published with the last ones; an IDR picture
//! with no parameter sets ever seen is refused, and so is anything before the first
//! IDR picture (the slot's rule). A viewer never gets a unit it cannot decode.

use std::time::Instant;

use super::nal;
use super::slot::{H264Slot, StreamConfig};

/// What became of one picture's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// Published; `true` for an IDR picture.
    Unit { key: bool },
    /// No slice in the output: nothing to publish.
    NoPicture,
}

/// Publishes one stream's pictures; remembers its parameter sets.
#[derive(Debug)]
pub struct AnnexBPublisher {
    pub width: u16,
    pub height: u16,
    pub fps: u32,
    /// The last sequence and picture parameter sets seen.
    sets: (Option<Vec<u8>>, Option<Vec<u8>>),
}

impl AnnexBPublisher {
    pub fn new(width: u16, height: u16, fps: u32) -> AnnexBPublisher {
        AnnexBPublisher {
            width,
            height,
            fps,
            sets: (None, None),
        }
    }

    /// Sorts `stream` (one picture, Annex B) and publishes it into `h264` as made at
    /// `made`.
    pub fn publish(
        &mut self,
        stream: &[u8],
        made: Instant,
        h264: &H264Slot,
    ) -> Result<Published, String> {
        let coded = nal::picture(stream);
        if coded.sps.is_some() {
            self.sets.0 = coded.sps;
        }
        if coded.pps.is_some() {
            self.sets.1 = coded.pps;
        }
        if !coded.has_slice {
            return Ok(Published::NoPicture);
        }
        let config = if coded.key {
            let (Some(sps), Some(pps)) = self.sets.clone() else {
                return Err("an IDR picture came without parameter sets".into());
            };
            Some(StreamConfig {
                width: self.width,
                height: self.height,
                fps: self.fps,
                sps,
                pps,
            })
        } else {
            None
        };
        h264.publish(coded.key, made, coded.sample, config)
            .map_err(|e| format!("{e:?}"))?;
        Ok(Published::Unit { key: coded.key })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPS: &[u8] = &[0x67, 66, 0xC0, 30, 0xDA];
    const PPS: &[u8] = &[0x68, 0xCE, 0x3C, 0x80];
    const IDR: &[u8] = &[0x65, 0x88, 0x84, 0x21];
    const SLICE: &[u8] = &[0x41, 0x9A, 0x02];

    fn annex_b(units: &[&[u8]]) -> Vec<u8> {
        units
            .iter()
            .flat_map(|u| [&[0, 0, 0, 1][..], u].concat())
            .collect()
    }

    #[test]
    fn garbage_empty_and_headless_output_publishes_nothing_broken() {
        let slot = H264Slot::new();
        let mut p = AnnexBPublisher::new(64, 48, 30);
        let now = Instant::now();
        assert_eq!(p.publish(&[], now, &slot), Ok(Published::NoPicture));
        assert_eq!(
            p.publish(&[0xFF; 100], now, &slot),
            Ok(Published::NoPicture)
        );
        // A picture before any IDR picture: the slot refuses it.
        assert!(p.publish(&annex_b(&[SLICE]), now, &slot).is_err());
        // An IDR picture with no parameter sets ever seen.
        assert!(p.publish(&annex_b(&[IDR]), now, &slot).is_err());
        assert_eq!(slot.encoded(), 0);
        // Parameter sets alone are kept for the IDR picture that follows.
        assert_eq!(
            p.publish(&annex_b(&[SPS, PPS]), now, &slot),
            Ok(Published::NoPicture)
        );
        assert_eq!(
            p.publish(&annex_b(&[IDR]), now, &slot),
            Ok(Published::Unit { key: true })
        );
        assert_eq!(
            p.publish(&annex_b(&[SLICE]), now, &slot),
            Ok(Published::Unit { key: false })
        );
        let config = slot.config().unwrap();
        assert_eq!((config.sps.as_slice(), config.pps.as_slice()), (SPS, PPS));
        assert_eq!(slot.encoded(), 2);
    }
}
