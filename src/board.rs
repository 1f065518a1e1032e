//! Which board this is, as far as the program needs to know: the device tree's model
//! string (`/proc/device-tree/model`), which names the Raspberry Pi and its revision
//! ("Raspberry Pi 5 Model B Rev 1.0").
//!
//! Only messages depend on it: the encoder says that a Raspberry Pi 5 has no hardware
//! JPEG encoder, rather than only that none was found. What the program does is always
//! decided by what the devices can do.

use std::ffi::OsString;
use std::path::PathBuf;

/// Where the kernel shows the device tree's model string.
const MODEL_FILE: &str = "/proc/device-tree/model";

/// The variable naming another file to read the model string from (the fixtures of
/// real boards in the tests).
pub const MODEL_VAR: &str = "PICAM_DEVICE_TREE_MODEL";

/// The board's model string, if the device tree names one (not on a PC).
pub fn model() -> Option<String> {
    let path = model_path(std::env::var_os(MODEL_VAR));
    std::fs::read(path)
        .ok()
        .and_then(|bytes| parse_model(&bytes))
}

/// The file the model string is read from: the one `named`, else the kernel's.
fn model_path(named: Option<OsString>) -> PathBuf {
    named
        .filter(|n| !n.is_empty())
        .map_or_else(|| PathBuf::from(MODEL_FILE), PathBuf::from)
}

/// The model string of the file's bytes: the device tree ends it with a NUL, a file
/// written by hand with a newline; empty is none.
pub fn parse_model(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let model = text.trim_end_matches(['\0', '\n', '\r']).trim();
    (!model.is_empty()).then(|| model.to_string())
}

/// True for the boards built on the BCM2712 whose model string names them as a
/// Raspberry Pi 5 (and the Pi 500, whose string starts the same): no hardware JPEG or
/// H.264 encoder, camera modules on the RP1's CSI-2 receiver (`rp1-cfe`) and the PiSP.
pub fn is_pi5(model: &str) -> bool {
    model.starts_with("Raspberry Pi 5")
}

/// How the board is named in messages: the model without its revision.
pub fn short_name(model: &str) -> &str {
    model.split(" Rev ").next().unwrap_or(model).trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/pi/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn model_strings_of_real_boards() {
        let pi5 = parse_model(&fixture("pi5-device-tree-model")).unwrap();
        assert_eq!(pi5, "Raspberry Pi 5 Model B Rev 1.0");
        assert!(is_pi5(&pi5));
        assert_eq!(short_name(&pi5), "Raspberry Pi 5 Model B");
        let pi4 = parse_model(&fixture("pi4-device-tree-model")).unwrap();
        assert_eq!(pi4, "Raspberry Pi 4 Model B Rev 1.5");
        assert!(!is_pi5(&pi4));
        // The same string ends /proc/cpuinfo on both.
        for (cpuinfo, model) in [("pi5-cpuinfo.txt", &pi5), ("pi4-cpuinfo.txt", &pi4)] {
            let text = String::from_utf8(fixture(cpuinfo)).unwrap();
            let line = text.lines().find(|l| l.starts_with("Model")).unwrap();
            assert_eq!(line.split(':').nth(1).unwrap().trim(), model, "{cpuinfo}");
        }
    }

    #[test]
    fn reading_the_model() {
        assert_eq!(parse_model(b""), None);
        assert_eq!(parse_model(b"\0"), None);
        assert_eq!(
            parse_model(b"Raspberry Pi 5 Model B Rev 1.1\n").as_deref(),
            Some("Raspberry Pi 5 Model B Rev 1.1")
        );
        assert!(!is_pi5("Raspberry Pi Zero 2 W Rev 1.0"));
        assert!(!is_pi5("Raspberry Pi 3 Model B Plus Rev 1.3"));
        assert_eq!(model_path(None), PathBuf::from(MODEL_FILE));
        assert_eq!(model_path(Some("".into())), PathBuf::from(MODEL_FILE));
        assert_eq!(
            model_path(Some("/x/model".into())),
            PathBuf::from("/x/model")
        );
        // A file named by the variable is read as the kernel's would be.
        let dir = std::env::temp_dir().join(format!("picam-board-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("model");
        std::fs::write(&file, fixture("pi5-device-tree-model")).unwrap();
        let read = std::fs::read(model_path(Some(file.clone().into()))).unwrap();
        assert_eq!(
            parse_model(&read).as_deref(),
            Some("Raspberry Pi 5 Model B Rev 1.0")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
