//! What `--source auto` finds among the V4L2 nodes, and which source it takes.
//!
//! A Raspberry Pi has many video nodes that are no camera: the ISP's queues, the
//! codec's and the HEVC decoder's memory-to-memory nodes, and, with a camera module,
//! the CSI-2 receiver's raw path that only libcamera can drive. This module describes
//! each node as plain data ([`NodeInfo`]), read from the real device by [`scan`] or
//! written by hand in tests, sorts it into a [`NodeKind`] by driver name and by what
//! the node can do ([`classify`]), and makes the decision ([`choose`]): a libcamera
//! camera, else a camera module (this binary cannot read one without libcamera, so
//! the caller says what to do), else a webcam, else the test pattern.

use std::fmt;
use std::path::{Path, PathBuf};

use super::handling;
use crate::v4l2::device::{self, Device};
use crate::v4l2::sys::{self, fourcc};

/// A video node as `auto` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub path: PathBuf,
    pub driver: String,
    pub card: String,
    pub bus_info: String,
    /// Capabilities of this node (`device_caps` of `VIDIOC_QUERYCAP`).
    pub device_caps: u32,
    /// Pixel formats of the single-planar capture queue.
    pub formats: Vec<u32>,
}

/// Everything `auto` looks at: the video nodes in name order and the names of the
/// V4L2 sub-devices (`/sys/class/video4linux/v4l-subdev*/name`), which name the
/// sensor of a camera module ("imx219 10-0010").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    pub nodes: Vec<NodeInfo>,
    pub subdevs: Vec<String>,
}

/// What a video node is, for `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// A capture node with a format the V4L2 source takes: a USB webcam, an HDMI
    /// grabber, the legacy Pi camera driver, a virtual camera.
    Webcam,
    /// The CSI-2 receiver of a camera module (`unicam`, `rp1-cfe`): raw Bayer from the
    /// sensor, usable only through libcamera.
    CameraReceiver,
    /// An image signal processor's queue (`bcm2835-isp`, `pispbe`): delivers nothing
    /// unless something feeds it.
    Isp,
    /// A memory-to-memory codec, decoder or converter.
    Codec,
    /// Anything else; the reason says why it is no camera for this source.
    Other(&'static str),
}

/// Drivers of camera module receivers.
const RECEIVER_DRIVERS: &[&str] = &["unicam", "rp1-cfe"];

/// Drivers of image signal processors whose nodes are not marked memory-to-memory.
const ISP_DRIVERS: &[&str] = &["bcm2835-isp", "pispbe"];

/// Drivers of codecs and decoders, whatever capabilities a kernel version reports.
const CODEC_DRIVERS: &[&str] = &["bcm2835-codec", "rpivid", "rpi-hevc-dec"];

/// Sub-devices that are no sensor: the Pi 5's CSI-2 and front-end blocks, and lens
/// focus motors (by the start of their name).
const NOT_SENSORS: &[&str] = &["csi2", "pisp-fe", "dw9", "ak73", "ad5820", "lc898"];

impl NodeKind {
    /// What the kind is, for the log.
    fn describe(self) -> &'static str {
        match self {
            NodeKind::Webcam => "a camera",
            NodeKind::CameraReceiver => {
                "the camera module's receiver (raw sensor data, for libcamera)"
            }
            NodeKind::Isp => "the ISP's node",
            NodeKind::Codec => "a codec or decoder (memory to memory)",
            NodeKind::Other(why) => why,
        }
    }
}

/// Raw Bayer formats: what a sensor gives before an ISP has made a picture of it.
fn is_bayer(code: u32) -> bool {
    const BAYER: &[&[u8; 4]] = &[
        b"BA81", b"GBRG", b"GRBG", b"RGGB", // 8 bits
        b"BG10", b"GB10", b"BA10", b"RG10", b"pBAA", b"pGAA", b"pgAA", b"pRAA", // 10
        b"BG12", b"GB12", b"BA12", b"RG12", b"pBCC", b"pGCC", b"pgCC", b"pRCC", // 12
        b"BG14", b"GB14", b"GR14", b"RG14", b"pBEE", b"pGEE", b"pgEE", b"pREE", // 14
        b"BYR2", b"GB16", b"GR16", b"RG16", // 16
    ];
    BAYER.iter().any(|f| fourcc(f) == code)
}

/// What `node` is, by its driver first and then by what it can do.
pub fn classify(node: &NodeInfo) -> NodeKind {
    let driver = node.driver.as_str();
    let m2m = sys::V4L2_CAP_VIDEO_M2M | sys::V4L2_CAP_VIDEO_M2M_MPLANE;
    if ISP_DRIVERS.contains(&driver) {
        return NodeKind::Isp;
    }
    if RECEIVER_DRIVERS.contains(&driver) {
        return NodeKind::CameraReceiver;
    }
    if CODEC_DRIVERS.contains(&driver) || node.device_caps & m2m != 0 {
        return NodeKind::Codec;
    }
    if node.device_caps & sys::V4L2_CAP_VIDEO_CAPTURE == 0 {
        return NodeKind::Other("no video capture queue (metadata, output or multi-planar only)");
    }
    if node.device_caps & sys::V4L2_CAP_STREAMING == 0 {
        return NodeKind::Other("no streaming I/O");
    }
    if node.formats.iter().any(|&f| handling(f).is_some()) {
        return NodeKind::Webcam;
    }
    if !node.formats.is_empty() && node.formats.iter().all(|&f| is_bayer(f)) {
        return NodeKind::Other("only raw Bayer formats, which need an ISP");
    }
    NodeKind::Other("none of the formats this source takes (MJPEG, YUYV, UYVY, NV12)")
}

/// The sensor named by the sub-devices, if one is: the first that is not a known
/// receiver block or lens motor.
pub fn sensor_name(subdevs: &[String]) -> Option<String> {
    subdevs
        .iter()
        .map(|s| s.trim())
        .find(|s| !s.is_empty() && !NOT_SENSORS.iter().any(|n| s.starts_with(n)))
        .map(str::to_string)
}

/// A camera module found through its receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraModule {
    /// The receiver's first picture node (`/dev/video0` on most Pis).
    pub receiver: PathBuf,
    /// The receiver's driver (`unicam`, `rp1-cfe`).
    pub driver: String,
    /// The sensor, when a sub-device names it ("imx219 10-0010").
    pub sensor: Option<String>,
}

impl fmt::Display for CameraModule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sensor = self
            .sensor
            .as_deref()
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or("sensor not named");
        write!(f, "{sensor} on {} {}", self.driver, self.receiver.display())
    }
}

/// Which source `auto` stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AutoChoice {
    /// The libcamera source: this binary has it and it sees a camera.
    Libcamera,
    /// A camera module is attached but this binary has no way to read it; `webcam`
    /// is the camera to use meanwhile, if there is one.
    CameraModule {
        module: CameraModule,
        webcam: Option<PathBuf>,
    },
    /// A capture node the V4L2 source reads.
    Webcam(PathBuf),
    /// No camera: the test pattern.
    Pattern,
}

/// The decision, why it was made, and the nodes passed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoDecision {
    pub choice: AutoChoice,
    pub reason: String,
    /// One line per node not taken: "/dev/video13: bcm2835-isp, the ISP's node: skipped".
    pub skipped: Vec<String>,
}

/// Decides what `auto` stands for: a libcamera camera, else a camera module, else
/// the first webcam, else the test pattern. Never an ISP, codec or decoder node.
pub fn choose(scan: &Scan, libcamera_sees_camera: bool) -> AutoDecision {
    if libcamera_sees_camera {
        return AutoDecision {
            choice: AutoChoice::Libcamera,
            reason: "libcamera sees a camera".to_string(),
            skipped: Vec::new(),
        };
    }
    let mut webcam: Option<&NodeInfo> = None;
    let mut receiver: Option<&NodeInfo> = None;
    let mut skipped = Vec::new();
    for node in &scan.nodes {
        let kind = classify(node);
        let taken = match kind {
            NodeKind::Webcam if webcam.is_none() => {
                webcam = Some(node);
                true
            }
            // The receiver's picture node, not its metadata node.
            NodeKind::CameraReceiver
                if receiver.is_none() && node.device_caps & sys::V4L2_CAP_VIDEO_CAPTURE != 0 =>
            {
                receiver = Some(node);
                true
            }
            _ => false,
        };
        if !taken {
            let what = match kind {
                NodeKind::Webcam => "another camera",
                other => other.describe(),
            };
            skipped.push(format!(
                "{}: {}, {what}: skipped",
                node.path.display(),
                node.driver
            ));
        }
    }
    let webcam_path = webcam.map(|n| n.path.clone());
    let (choice, reason) = match (receiver, webcam) {
        (Some(r), _) => {
            let module = CameraModule {
                receiver: r.path.clone(),
                driver: r.driver.clone(),
                sensor: sensor_name(&scan.subdevs),
            };
            let reason = format!("{module} is attached");
            (
                AutoChoice::CameraModule {
                    module,
                    webcam: webcam_path,
                },
                reason,
            )
        }
        (None, Some(w)) => (
            AutoChoice::Webcam(w.path.clone()),
            format!(
                "{}, driver {}: the first capture device with a usable format",
                w.card, w.driver
            ),
        ),
        (None, None) => (
            AutoChoice::Pattern,
            match scan.nodes.len() {
                0 => "no video nodes".to_string(),
                n => format!("no camera among {n} video nodes"),
            },
        ),
    };
    AutoDecision {
        choice,
        reason,
        skipped,
    }
}

/// What one node says of itself.
fn read_node(path: &Path) -> std::io::Result<NodeInfo> {
    let device = Device::open(path)?;
    let cap = device.capability();
    let formats = if cap.caps & sys::V4L2_CAP_VIDEO_CAPTURE != 0 {
        device.formats().iter().map(|f| f.fourcc).collect()
    } else {
        Vec::new()
    };
    Ok(NodeInfo {
        path: path.to_path_buf(),
        driver: cap.driver.clone(),
        card: cap.card.clone(),
        bus_info: cap.bus_info.clone(),
        device_caps: cap.caps,
        formats,
    })
}

/// The names of the V4L2 sub-devices, in name order.
fn subdev_names() -> Vec<String> {
    subdevices().into_iter().map(|(_, name)| name).collect()
}

/// The V4L2 sub-devices: the number N of each `/dev/v4l-subdevN` and its name
/// (`imx708 10-001a`), in number order.
pub fn subdevices() -> Vec<(u32, String)> {
    let Ok(dir) = std::fs::read_dir("/sys/class/video4linux") else {
        return Vec::new();
    };
    let mut found: Vec<(u32, String)> = dir
        .flatten()
        .filter_map(|e| {
            let entry = e.file_name().into_string().ok()?;
            let n = entry.strip_prefix("v4l-subdev")?.parse().ok()?;
            let name = std::fs::read_to_string(e.path().join("name")).ok()?;
            Some((n, name.trim().to_string()))
        })
        .collect();
    found.sort();
    found
}

/// Reads every video node and sub-device name of this machine. Nodes that cannot be
/// opened (busy, no permission) are logged at debug level and left out.
pub fn scan() -> Scan {
    let mut nodes = Vec::new();
    for path in device::nodes() {
        match read_node(&path) {
            Ok(node) => nodes.push(node),
            Err(e) => log::debug!("{}: cannot be opened ({e}): skipped", path.display()),
        }
    }
    Scan {
        nodes,
        subdevs: subdev_names(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Reads a fixture of `tests/fixtures/pi` (format in its README.md).
    fn parse_fixture(text: &str) -> Result<Scan, String> {
        let mut listed: Vec<(PathBuf, String, String)> = Vec::new();
        let mut described: Vec<(PathBuf, String, u32, Vec<u32>)> = Vec::new();
        let mut subdevs = Vec::new();
        let mut group: Option<(String, String)> = None;
        for (n, line) in text.lines().enumerate() {
            let at = |what: &str| format!("line {}: {what}: {line:?}", n + 1);
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if let Some(rest) = trimmed.strip_prefix("node ") {
                let fields: Vec<&str> = rest.split_whitespace().collect();
                let [path, driver, caps, formats] = fields[..] else {
                    return Err(at("a node line needs PATH DRIVER CAPS FORMATS"));
                };
                let caps = u32::from_str_radix(caps.trim_start_matches("0x"), 16)
                    .map_err(|_| at("bad device caps"))?;
                let formats = match formats {
                    "-" => Vec::new(),
                    list => list
                        .split(',')
                        .map(|f| match f.as_bytes() {
                            &[a, b, c, d] => Ok(fourcc(&[a, b, c, d])),
                            _ => Err(at("a format has four characters")),
                        })
                        .collect::<Result<_, _>>()?,
                };
                described.push((PathBuf::from(path), driver.to_string(), caps, formats));
            } else if let Some(name) = trimmed.strip_prefix("subdev ") {
                subdevs.push(name.trim().to_string());
            } else if line.starts_with(char::is_whitespace) {
                let (card, bus) = group.clone().ok_or_else(|| at("a node outside a group"))?;
                if trimmed.starts_with("/dev/video") {
                    listed.push((PathBuf::from(trimmed), card, bus));
                } else if !trimmed.starts_with("/dev/media") {
                    return Err(at("expected /dev/videoN or /dev/mediaN"));
                }
            } else if let Some(head) = trimmed.strip_suffix("):") {
                let (card, bus) = head.rsplit_once(" (").ok_or_else(|| at("no bus"))?;
                group = Some((card.to_string(), bus.to_string()));
            } else {
                return Err(at("not a listing, node or subdev line"));
            }
        }
        let number = |p: &Path| -> u32 {
            let name = p.to_string_lossy();
            name.trim_start_matches("/dev/video")
                .parse()
                .unwrap_or(u32::MAX)
        };
        let mut nodes = Vec::new();
        for (path, card, bus_info) in listed {
            let Some(i) = described.iter().position(|d| d.0 == path) else {
                return Err(format!("{} is listed but has no node line", path.display()));
            };
            let (path, driver, device_caps, formats) = described.remove(i);
            nodes.push(NodeInfo {
                path,
                driver,
                card,
                bus_info,
                device_caps,
                formats,
            });
        }
        if let Some(extra) = described.first() {
            return Err(format!(
                "{} has a node line but is not listed",
                extra.0.display()
            ));
        }
        nodes.sort_by_key(|n| number(&n.path));
        Ok(Scan { nodes, subdevs })
    }

    /// The scan a fixture of `tests/fixtures/pi` describes.
    pub(crate) fn fixture(name: &str) -> Scan {
        let path = format!("{}/tests/fixtures/pi/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        parse_fixture(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    const FIXTURES: &[&str] = &[
        "pi4-camera-module.txt",
        "pi4-usb-webcam.txt",
        "pi4-camera-module-and-webcam.txt",
        "zero2w-camera-module.txt",
        "pi5-camera-modules.txt",
        "pi5-usb-webcam.txt",
        "pi5-camera-module-imx296.txt",
    ];

    /// The node a decision streams from, if any.
    fn chosen_node(choice: &AutoChoice) -> Option<&Path> {
        match choice {
            AutoChoice::Webcam(p) => Some(p),
            AutoChoice::CameraModule { webcam, .. } => webcam.as_deref(),
            AutoChoice::Libcamera | AutoChoice::Pattern => None,
        }
    }

    fn node(driver: &str, caps: u32, formats: &[&[u8; 4]]) -> NodeInfo {
        NodeInfo {
            path: PathBuf::from("/dev/video0"),
            driver: driver.to_string(),
            card: driver.to_string(),
            bus_info: format!("platform:{driver}"),
            device_caps: caps,
            formats: formats.iter().map(|f| fourcc(f)).collect(),
        }
    }

    #[test]
    fn fixtures_parse_into_every_listed_node() {
        let scan = fixture("pi4-camera-module.txt");
        assert_eq!(scan.nodes.len(), 16);
        assert_eq!(scan.nodes[0].path, Path::new("/dev/video0"));
        assert_eq!(scan.nodes[0].card, "unicam");
        assert_eq!(scan.nodes[0].bus_info, "platform:fe801000.csi");
        assert_eq!(scan.nodes[15].path, Path::new("/dev/video31"));
        assert_eq!(scan.subdevs, vec!["imx219 10-0010".to_string()]);
        assert_eq!(fixture("pi5-camera-modules.txt").nodes.len(), 16 + 1 + 18);
        // A listed node without its line, and a line for a node not listed, are errors.
        let listing = "unicam (platform:fe801000.csi):\n\t/dev/video0\n";
        assert!(parse_fixture(listing).is_err());
        assert!(parse_fixture(&format!("{listing}node /dev/video0 unicam 0x1 -\n")).is_ok());
        assert!(parse_fixture(&format!(
            "{listing}node /dev/video0 unicam 0x1 -\nnode /dev/video9 x 0x1 -\n"
        ))
        .is_err());
    }

    #[test]
    fn never_an_isp_codec_or_decoder_node() {
        for name in FIXTURES {
            let scan = fixture(name);
            for libcamera in [false, true] {
                let decision = choose(&scan, libcamera);
                if let Some(path) = chosen_node(&decision.choice) {
                    let node = scan.nodes.iter().find(|n| n.path == path).unwrap();
                    assert_eq!(classify(node), NodeKind::Webcam, "{name}: {decision:?}");
                    assert_eq!(node.driver, "uvcvideo", "{name}: {decision:?}");
                }
            }
            // Every ISP, codec and decoder node is classified as such.
            for node in &scan.nodes {
                let kind = classify(node);
                match node.driver.as_str() {
                    "bcm2835-isp" | "pispbe" => assert_eq!(kind, NodeKind::Isp, "{node:?}"),
                    "bcm2835-codec" | "rpivid" => assert_eq!(kind, NodeKind::Codec, "{node:?}"),
                    "unicam" | "rp1-cfe" => {
                        assert_eq!(kind, NodeKind::CameraReceiver, "{node:?}")
                    }
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn pi4_with_a_camera_module() {
        let decision = choose(&fixture("pi4-camera-module.txt"), false);
        let AutoChoice::CameraModule { module, webcam } = &decision.choice else {
            panic!("{decision:?}");
        };
        assert_eq!(module.receiver, Path::new("/dev/video0"));
        assert_eq!(module.driver, "unicam");
        assert_eq!(module.sensor.as_deref(), Some("imx219 10-0010"));
        assert_eq!(module.to_string(), "imx219 on unicam /dev/video0");
        assert_eq!(*webcam, None);
        assert!(decision.reason.contains("imx219"), "{}", decision.reason);
        // Every other node is skipped with its reason.
        assert_eq!(decision.skipped.len(), 15);
        assert!(decision
            .skipped
            .contains(&"/dev/video13: bcm2835-isp, the ISP's node: skipped".to_string()));
        assert!(decision
            .skipped
            .iter()
            .any(|l| l.starts_with("/dev/video19: rpivid, a codec")));
        assert!(decision
            .skipped
            .iter()
            .any(|l| l.starts_with("/dev/video1: unicam,")));
    }

    #[test]
    fn pi4_with_a_usb_webcam() {
        let decision = choose(&fixture("pi4-usb-webcam.txt"), false);
        assert_eq!(
            decision.choice,
            AutoChoice::Webcam(PathBuf::from("/dev/video0"))
        );
        assert_eq!(
            decision.reason,
            "USB 2.0 Camera: USB Camera, driver uvcvideo: the first capture device with a \
             usable format"
        );
        assert!(decision
            .skipped
            .iter()
            .any(|l| l.starts_with("/dev/video1: uvcvideo, no video capture")));
    }

    #[test]
    fn pi4_with_both_names_the_module_and_streams_the_webcam() {
        let decision = choose(&fixture("pi4-camera-module-and-webcam.txt"), false);
        let AutoChoice::CameraModule { module, webcam } = &decision.choice else {
            panic!("{decision:?}");
        };
        assert_eq!(module.receiver, Path::new("/dev/video0"));
        assert_eq!(webcam.as_deref(), Some(Path::new("/dev/video2")));
    }

    #[test]
    fn zero_2_w_with_a_camera_module() {
        let decision = choose(&fixture("zero2w-camera-module.txt"), false);
        let AutoChoice::CameraModule { module, webcam } = &decision.choice else {
            panic!("{decision:?}");
        };
        assert_eq!(module.to_string(), "ov5647 on unicam /dev/video0");
        assert_eq!(*webcam, None);
    }

    #[test]
    fn pi5_with_camera_modules() {
        let decision = choose(&fixture("pi5-camera-modules.txt"), false);
        let AutoChoice::CameraModule { module, webcam } = &decision.choice else {
            panic!("{decision:?}");
        };
        assert_eq!(module.receiver, Path::new("/dev/video0"));
        assert_eq!(module.driver, "rp1-cfe");
        // The csi2 and pisp-fe blocks are not sensors.
        assert_eq!(module.sensor, None);
        assert_eq!(
            module.to_string(),
            "sensor not named on rp1-cfe /dev/video0"
        );
        assert_eq!(*webcam, None);
        assert!(decision
            .skipped
            .iter()
            .any(|l| l.starts_with("/dev/video24: pispbe, the ISP's node")));
    }

    #[test]
    fn pi5_on_raspberry_pi_os_names_its_sensor() {
        let scan = fixture("pi5-camera-module-imx296.txt");
        assert_eq!(scan.nodes.len(), 8 + 1 + 16);
        let decision = choose(&scan, false);
        let AutoChoice::CameraModule { module, webcam } = &decision.choice else {
            panic!("{decision:?}");
        };
        assert_eq!(module.to_string(), "imx296 on rp1-cfe /dev/video0");
        assert_eq!(*webcam, None);
        assert_eq!(decision.reason, "imx296 on rp1-cfe /dev/video0 is attached");
        // Every other node is passed over, each for what it is: none is a webcam.
        assert_eq!(decision.skipped.len(), scan.nodes.len() - 1);
        for node in &scan.nodes[1..] {
            assert_ne!(classify(node), NodeKind::Webcam, "{node:?}");
        }
        let said = |prefix: &str| decision.skipped.iter().any(|l| l.starts_with(prefix));
        assert!(said("/dev/video4: rp1-cfe, the camera module's receiver"));
        assert!(said("/dev/video19: rpivid, a codec or decoder"));
        assert!(said("/dev/video27: pispbe, the ISP's node"));
        assert!(said("/dev/video35: pispbe, the ISP's node"));
        // The same nodes with the HEVC decoder under its newer driver name.
        let mut renamed = scan.clone();
        renamed.nodes[8].driver = "rpi-hevc-dec".to_string();
        assert_eq!(classify(&renamed.nodes[8]), NodeKind::Codec);
        assert_eq!(choose(&renamed, false).choice, decision.choice);
    }

    #[test]
    fn pi5_with_a_usb_webcam() {
        let decision = choose(&fixture("pi5-usb-webcam.txt"), false);
        assert_eq!(
            decision.choice,
            AutoChoice::Webcam(PathBuf::from("/dev/video0"))
        );
    }

    #[test]
    fn libcamera_comes_first() {
        for name in FIXTURES {
            let decision = choose(&fixture(name), true);
            assert_eq!(decision.choice, AutoChoice::Libcamera, "{name}");
        }
        assert_eq!(choose(&Scan::default(), true).choice, AutoChoice::Libcamera);
    }

    #[test]
    fn a_webcam_comes_before_the_pattern() {
        assert_eq!(choose(&Scan::default(), false).choice, AutoChoice::Pattern);
        // A Pi 4 with neither module nor webcam: only ISP, codec and decoder nodes,
        // some of which offer YUYV and NV12, and still the pattern.
        let mut scan = fixture("pi4-usb-webcam.txt");
        scan.nodes.retain(|n| n.driver != "uvcvideo");
        let decision = choose(&scan, false);
        assert_eq!(decision.choice, AutoChoice::Pattern, "{decision:?}");
        assert_eq!(decision.skipped.len(), scan.nodes.len());
        assert!(decision.reason.contains("no camera"), "{}", decision.reason);
        // The first of two webcams.
        let mut second = node("uvcvideo", 0x0420_0001, &[b"MJPG"]);
        second.path = PathBuf::from("/dev/video4");
        let scan = Scan {
            nodes: vec![node("uvcvideo", 0x0420_0001, &[b"YUYV"]), second],
            subdevs: Vec::new(),
        };
        let decision = choose(&scan, false);
        assert_eq!(
            decision.choice,
            AutoChoice::Webcam(PathBuf::from("/dev/video0"))
        );
        assert_eq!(
            decision.skipped,
            vec!["/dev/video4: uvcvideo, another camera: skipped".to_string()]
        );
    }

    #[test]
    fn classifies_by_driver_and_by_capabilities() {
        let capture = 0x0420_0001;
        // Virtual drivers of the VM tests: vivid is a camera, vim2m and vicodec are
        // memory-to-memory (M2M and M2M_MPLANE).
        assert_eq!(
            classify(&node("vivid", capture, &[b"YUYV", b"RGGB"])),
            NodeKind::Webcam
        );
        assert_eq!(classify(&node("vim2m", 0x0420_8000, &[])), NodeKind::Codec);
        assert_eq!(
            classify(&node("vicodec", 0x0420_4000, &[])),
            NodeKind::Codec
        );
        // The Pi 5's HEVC decoder under its newer driver name, whatever its caps say.
        assert_eq!(
            classify(&node("rpi-hevc-dec", capture, &[b"NV12"])),
            NodeKind::Codec
        );
        // An ISP or receiver that offers YUYV is still what its driver says.
        assert_eq!(
            classify(&node("pispbe", capture, &[b"YUYV"])),
            NodeKind::Isp
        );
        assert_eq!(
            classify(&node("unicam", capture, &[b"YUYV"])),
            NodeKind::CameraReceiver
        );
        // The legacy Pi camera driver is a plain capture device.
        assert_eq!(
            classify(&node("bm2835 mmal", 0x0520_0005, &[b"YU12", b"JPEG"])),
            NodeKind::Webcam
        );
        // Unknown drivers by what they can do.
        assert!(matches!(
            classify(&node("x", 0x04a0_0000, &[])),
            NodeKind::Other(_)
        ));
        assert!(matches!(
            classify(&node("x", 0x0000_0001, &[b"YUYV"])),
            NodeKind::Other(_)
        ));
        assert_eq!(
            classify(&node("vimc", capture, &[b"RGGB", b"pRAA"])),
            NodeKind::Other("only raw Bayer formats, which need an ISP")
        );
        assert!(matches!(
            classify(&node("x", capture, &[b"RGB3"])),
            NodeKind::Other(_)
        ));
    }

    #[test]
    fn sensor_names() {
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(sensor_name(&[]), None);
        assert_eq!(
            sensor_name(&names(&["imx219 10-0010"])).as_deref(),
            Some("imx219 10-0010")
        );
        assert_eq!(
            sensor_name(&names(&["csi2", "pisp-fe", "dw9807 10-000c", "imx708"])).as_deref(),
            Some("imx708")
        );
        assert_eq!(sensor_name(&names(&["csi2", "pisp-fe"])), None);
    }
}
