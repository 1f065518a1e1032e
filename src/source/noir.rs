//! `--noir`: which of libcamera's per-sensor tuning files suits a camera module without
//! an infrared filter, and where it is on this machine.
//!
//! Raspberry Pi's libcamera tunes each sensor with a JSON file named after it
//! (`imx219.json`), and ships `_noir` variants for the NoIR modules
//! (`imx219_noir.json`), whose colour handling suits infrared light. libcamera cannot
//! tell a NoIR module from the normal one by its sensor, except the Camera Module 3,
//! whose driver names its NoIR variants (`imx708_noir`, `imx708_wide_noir`); for those
//! libcamera picks the NoIR file itself and `--noir` changes nothing.
//!
//! The files live in one directory per image processor: `vc4/` (Pi 4 and earlier) and
//! `pisp/` (Pi 5), under `/usr/share/libcamera/ipa/rpi` (or `/usr/local/share/...` for a
//! libcamera built by hand). Which processor this Pi has is read from its video nodes'
//! drivers, as rpicam-apps decides it (`bcm2835-isp` or `pispbe`); [`TUNING_DIR_VAR`]
//! names the directory to look in instead (a libcamera installed elsewhere; the tests'
//! made-up tuning files). A file that is not there is said in the log, with what to
//! install, and the camera runs with its normal tuning.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::v4l2::scan;

/// The variable naming the directory of tuning files to look in, in place of the
/// platform's directories under [`TUNING_ROOTS`].
pub const TUNING_DIR_VAR: &str = "PICAM_TUNING_DIR";

/// Where libcamera's Raspberry Pi tuning files are installed, in the order looked at.
const TUNING_ROOTS: [&str; 2] = [
    "/usr/share/libcamera/ipa/rpi",
    "/usr/local/share/libcamera/ipa/rpi",
];

/// The variable through which libcamera's Raspberry Pi pipeline takes a tuning file
/// (what `rpicam-vid --tuning-file` sets).
pub const LIBCAMERA_TUNING_VAR: &str = "LIBCAMERA_RPI_TUNING_FILE";

/// What to install when the file is missing.
const INSTALL_HINT: &str = "install libcamera's Raspberry Pi tuning files with \
                            `sudo apt install libcamera-ipa` (Raspberry Pi OS)";

/// The image processor of the Pi, which has its own tuning files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// The VideoCore ISP of the Pi 4 and earlier.
    Vc4,
    /// The Pi 5's PiSP.
    Pisp,
}

impl Platform {
    /// Its directory of tuning files.
    fn dir(self) -> &'static str {
        match self {
            Platform::Vc4 => "vc4",
            Platform::Pisp => "pisp",
        }
    }
}

/// The platform of a Pi whose video nodes have these drivers: the ISP's (or the camera
/// receiver's) names it.
pub fn platform_of<'a>(drivers: impl IntoIterator<Item = &'a str>) -> Option<Platform> {
    drivers.into_iter().find_map(|driver| match driver {
        "pispbe" | "rp1-cfe" => Some(Platform::Pisp),
        "bcm2835-isp" | "unicam" => Some(Platform::Vc4),
        _ => None,
    })
}

/// The platform of this machine, from its video nodes.
fn this_platform() -> Option<Platform> {
    platform_of(scan::scan().nodes.iter().map(|n| n.driver.as_str()))
}

/// The directories to look for tuning files in: the one `named` ([`TUNING_DIR_VAR`]),
/// else `platform`'s under each of [`TUNING_ROOTS`] (found by `platform`, called only
/// then). The error says why there are none.
fn tuning_dirs(
    named: Option<OsString>,
    platform: impl FnOnce() -> Option<Platform>,
) -> Result<Vec<PathBuf>, String> {
    if let Some(dir) = named.filter(|v| !v.is_empty()) {
        return Ok(vec![PathBuf::from(dir)]);
    }
    let Some(platform) = platform() else {
        return Err(
            "cannot tell whether this is a Pi 5 (pisp) or an earlier Pi (vc4): no \
                    video node of either image processor was found"
                .to_string(),
        );
    };
    Ok(TUNING_ROOTS
        .iter()
        .map(|root| Path::new(root).join(platform.dir()))
        .collect())
}

/// What `--noir` means for one sensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoirTuning {
    /// Use this tuning file.
    File(PathBuf),
    /// The sensor's name says NoIR already: libcamera chooses its NoIR file itself.
    Recognised,
}

/// The NoIR tuning file's name for the sensor `model` (`imx219` or `imx219 10-0010`, as
/// a sub-device names it).
pub fn file_name(model: &str) -> String {
    let sensor = model.split_whitespace().next().unwrap_or_default();
    format!("{}_noir.json", sensor.to_ascii_lowercase())
}

/// The NoIR tuning for the sensor `model`, looked for in `dirs` (or why there are
/// none); the error says what is missing and what to do.
pub fn choose(model: &str, dirs: Result<Vec<PathBuf>, String>) -> Result<NoirTuning, String> {
    if model.to_ascii_lowercase().contains("noir") {
        return Ok(NoirTuning::Recognised);
    }
    let name = file_name(model);
    let dirs = dirs.map_err(|why| format!("--noir: {why}, so {name} is not used"))?;
    let candidates: Vec<PathBuf> = dirs.iter().map(|dir| dir.join(&name)).collect();
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Ok(NoirTuning::File(found.clone()));
    }
    let looked: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    Err(format!(
        "--noir: no NoIR tuning file for the {model} (looked for {}): {INSTALL_HINT}, or \
         check that the camera is a NoIR module; going on with its normal tuning",
        looked.join(" and ")
    ))
}

/// The tuning file `rpicam-vid --tuning-file` gets for `--noir` on the sensor `model`
/// (`None` when the camera is unknown: the helper was missing at start), saying in the
/// log what was chosen or why nothing was.
pub fn tuning_file(model: Option<&str>) -> Option<PathBuf> {
    let Some(model) = model else {
        log::warn!(
            "--noir: the camera's sensor is not known (rpicam-vid did not list it at \
             start), so no NoIR tuning file is chosen"
        );
        return None;
    };
    let dirs = tuning_dirs(std::env::var_os(TUNING_DIR_VAR), this_platform);
    decided(model, choose(model, dirs))
}

/// Logs what `choice` means for the sensor `model`; the file to use, if any.
fn decided(model: &str, choice: Result<NoirTuning, String>) -> Option<PathBuf> {
    match choice {
        Ok(NoirTuning::File(path)) => {
            log::info!("--noir: the {model} runs with {}", path.display());
            Some(path)
        }
        Ok(NoirTuning::Recognised) => {
            log::info!(
                "--noir: the {model} is a NoIR module by its name; libcamera uses its \
                 NoIR tuning by itself"
            );
            None
        }
        Err(why) => {
            log::warn!("{why}");
            None
        }
    }
}

/// Before libcamera starts in this process: points [`LIBCAMERA_TUNING_VAR`] at the NoIR
/// tuning of the sensor the sub-devices name, unless it names a file already.
#[cfg_attr(not(feature = "libcamera"), allow(dead_code))]
pub fn tune_libcamera() {
    if let Some(set) = std::env::var_os(LIBCAMERA_TUNING_VAR).filter(|v| !v.is_empty()) {
        log::info!(
            "--noir: {LIBCAMERA_TUNING_VAR} already names {}: kept",
            Path::new(&set).display()
        );
        return;
    }
    let scanned = scan::scan();
    let Some(sensor) = scan::sensor_name(&scanned.subdevs) else {
        log::warn!(
            "--noir: no camera module sensor found among the V4L2 sub-devices, so no NoIR \
             tuning file is chosen"
        );
        return;
    };
    let model = sensor.split_whitespace().next().unwrap_or_default();
    let dirs = tuning_dirs(std::env::var_os(TUNING_DIR_VAR), || {
        platform_of(scanned.nodes.iter().map(|n| n.driver.as_str()))
    });
    if let Some(path) = decided(model, choose(model, dirs)) {
        // At start, before libcamera or any thread that reads the environment runs.
        std::env::set_var(LIBCAMERA_TUNING_VAR, path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/pi");

    /// The NoIR tuning files libcamera ships, by platform (the fixture's table).
    fn shipped() -> Vec<(Platform, String)> {
        let text = std::fs::read_to_string(format!("{FIXTURES}/noir-tuning-files.txt")).unwrap();
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let (platform, file) = l.split_once(' ').unwrap();
                let platform = match platform {
                    "vc4" => Platform::Vc4,
                    "pisp" => Platform::Pisp,
                    other => panic!("{other}"),
                };
                (platform, file.trim().to_string())
            })
            .collect()
    }

    /// A scratch root with the shipped files of the fixture (empty JSON).
    fn root_with_shipped(name: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("picam-noir-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for (platform, file) in shipped() {
            let dir = root.join(platform.dir());
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(file), "{}").unwrap();
        }
        root
    }

    #[test]
    fn each_noir_module_gets_a_file_libcamera_ships() {
        let table = shipped();
        for (sensor, platforms) in [
            ("ov5647", &[Platform::Vc4, Platform::Pisp][..]),
            ("imx219 10-0010", &[Platform::Vc4, Platform::Pisp]),
            ("imx477", &[Platform::Vc4, Platform::Pisp]),
            ("imx708", &[Platform::Vc4, Platform::Pisp]),
            ("imx708_wide", &[Platform::Vc4, Platform::Pisp]),
            ("imx296", &[Platform::Pisp]),
        ] {
            for platform in platforms {
                let name = file_name(sensor);
                assert!(
                    table.contains(&(*platform, name.clone())),
                    "{sensor} on {platform:?}: {name} is not shipped"
                );
            }
        }
        let root = root_with_shipped("choose");
        let dirs = |platform: Platform| {
            Ok(vec![
                PathBuf::from("/nonexistent"),
                root.join(platform.dir()),
            ])
        };
        assert_eq!(
            choose("imx219", dirs(Platform::Pisp)),
            Ok(NoirTuning::File(root.join("pisp/imx219_noir.json")))
        );
        assert_eq!(
            choose("ov5647 10-0036", dirs(Platform::Vc4)),
            Ok(NoirTuning::File(root.join("vc4/ov5647_noir.json")))
        );
        // The Camera Module 3 NoIR names itself: nothing to choose.
        for model in ["imx708_noir", "imx708_wide_noir"] {
            assert_eq!(
                choose(model, dirs(Platform::Vc4)),
                Ok(NoirTuning::Recognised)
            );
        }
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn a_missing_file_or_platform_says_what_to_do() {
        let root = root_with_shipped("missing");
        // libcamera has no imx296 NoIR tuning for the Pi 4.
        let e = choose("imx296", Ok(vec![root.join("vc4")])).unwrap_err();
        assert_eq!(
            e,
            format!(
                "--noir: no NoIR tuning file for the imx296 (looked for {}): install \
                 libcamera's Raspberry Pi tuning files with `sudo apt install libcamera-ipa` \
                 (Raspberry Pi OS), or check that the camera is a NoIR module; going on with \
                 its normal tuning",
                root.join("vc4/imx296_noir.json").display()
            )
        );
        let e = choose("imx219", tuning_dirs(None, || None)).unwrap_err();
        assert!(
            e.contains("cannot tell whether this is a Pi 5 (pisp)"),
            "{e}"
        );
        assert!(e.contains("imx219_noir.json is not used"), "{e}");
        // The platform's directories, or the one named instead.
        assert_eq!(
            tuning_dirs(None, || Some(Platform::Pisp)),
            Ok(vec![
                PathBuf::from("/usr/share/libcamera/ipa/rpi/pisp"),
                PathBuf::from("/usr/local/share/libcamera/ipa/rpi/pisp")
            ])
        );
        let named = tuning_dirs(Some("/opt/tuning".into()), || panic!("not asked"));
        assert_eq!(named, Ok(vec![PathBuf::from("/opt/tuning")]));
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn the_platform_comes_from_the_video_nodes_drivers() {
        let of = |fixture: &str| {
            let scanned = scan::tests::fixture(fixture);
            platform_of(scanned.nodes.iter().map(|n| n.driver.as_str()))
        };
        assert_eq!(of("pi4-camera-module.txt"), Some(Platform::Vc4));
        assert_eq!(of("zero2w-camera-module.txt"), Some(Platform::Vc4));
        assert_eq!(of("pi5-camera-modules.txt"), Some(Platform::Pisp));
        assert_eq!(platform_of(["uvcvideo"]), None);
    }
}
