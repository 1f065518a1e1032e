//! Which H.264 encoder `/stream.mp4` gets (`--h264-encoder`): the hardware one when a
//! V4L2 memory-to-memory node encodes H.264, the software one (OpenH264) in builds with
//! the `h264` feature, or none. Pure: what was found and what was built go in, the
//! decision and the reason for the log come out.

use crate::encoder::m2m::M2mNode;
use crate::picture::EncoderChoice;

/// The encoder chosen for `/stream.mp4`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum H264Encoder {
    /// The node, and the input format it takes.
    Hardware(M2mNode, u32),
    Software,
    /// No `/stream.mp4`.
    Nothing,
}

impl H264Encoder {
    /// What `/status` calls it (`h264_encoder`); `None` without one.
    pub fn name(&self) -> Option<&'static str> {
        match self {
            H264Encoder::Hardware(..) => Some("hardware"),
            H264Encoder::Software => Some("software"),
            H264Encoder::Nothing => None,
        }
    }
}

/// Decides for `choice`, given the hardware node `found` (see
/// [`super::hardware::find_h264_node`]) and whether this build has the software encoder.
/// Returns the encoder and why, or why the choice cannot be had.
pub fn choose(
    choice: EncoderChoice,
    found: Option<(M2mNode, u32)>,
    software_built: bool,
) -> Result<(H264Encoder, String), String> {
    const NO_NODE: &str = "no V4L2 memory-to-memory node encodes H.264 (the Pi Zero to \
                           Pi 4 have one, /dev/video11, from the bcm2835-codec driver; \
                           the Pi 5 has none)";
    const NO_SOFTWARE: &str = "this binary was built without the h264 feature \
                               (cargo build --release --features h264)";
    match (choice, found) {
        (EncoderChoice::Auto | EncoderChoice::Hardware, Some((node, input))) => {
            let why = format!("hardware, on {}", node.describe());
            Ok((H264Encoder::Hardware(node, input), why))
        }
        (EncoderChoice::Hardware, None) => Err(format!("--h264-encoder hardware: {NO_NODE}")),
        (EncoderChoice::Software, _) | (EncoderChoice::Auto, None) if software_built => {
            let why = if choice == EncoderChoice::Software {
                "software (OpenH264), as --h264-encoder asks".to_string()
            } else {
                format!("software (OpenH264): {NO_NODE}")
            };
            Ok((H264Encoder::Software, why))
        }
        (EncoderChoice::Software, _) => Err(format!("--h264-encoder software: {NO_SOFTWARE}")),
        (EncoderChoice::Auto, None) => Ok((
            H264Encoder::Nothing,
            format!("none, so no /stream.mp4: {NO_NODE}, and {NO_SOFTWARE}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::h264::hardware::{H264, YU12};

    fn node() -> (M2mNode, u32) {
        let node = M2mNode {
            path: PathBuf::from("/dev/video11"),
            driver: "bcm2835-codec".into(),
            card: "bcm2835-codec-encode".into(),
            mplane: true,
            output_formats: vec![YU12],
            capture_formats: vec![H264],
        };
        (node, YU12)
    }

    #[test]
    fn auto_prefers_hardware_then_software_then_nothing() {
        let (chosen, why) = choose(EncoderChoice::Auto, Some(node()), true).unwrap();
        assert_eq!(chosen, H264Encoder::Hardware(node().0, YU12));
        assert!(why.contains("/dev/video11"), "{why}");
        let (chosen, why) = choose(EncoderChoice::Auto, None, true).unwrap();
        assert_eq!(chosen, H264Encoder::Software);
        assert!(why.contains("no V4L2 memory-to-memory node"), "{why}");
        let (chosen, why) = choose(EncoderChoice::Auto, None, false).unwrap();
        assert_eq!(chosen, H264Encoder::Nothing);
        assert!(
            why.contains("no /stream.mp4") && why.contains("h264 feature"),
            "{why}"
        );
        assert_eq!(chosen.name(), None);
    }

    #[test]
    fn asked_for_encoders_must_exist() {
        let e = choose(EncoderChoice::Hardware, None, true).unwrap_err();
        assert!(e.starts_with("--h264-encoder hardware: no V4L2"), "{e}");
        let e = choose(EncoderChoice::Software, Some(node()), false).unwrap_err();
        assert!(e.contains("without the h264 feature"), "{e}");
        let (chosen, _) = choose(EncoderChoice::Software, Some(node()), true).unwrap();
        assert_eq!(chosen.name(), Some("software"));
        let (chosen, _) = choose(EncoderChoice::Hardware, Some(node()), false).unwrap();
        assert_eq!(chosen.name(), Some("hardware"));
    }
}
