//! Command line and environment: every option has a `--flag` and a `PICAM_*` variable.
//!
//! Variables are read first and flags override them, so an init script can set defaults
//! in the environment and a person can still override one on the command line. A bad
//! value is reported in one line naming the option, the value and what is accepted.
//!
//! Each option is defined once, in the table `OPTIONS`: flag, value name, variable,
//! default, accepted values and help text. `Config::default`, the `--help` text and the
//! README's option table are all made from it, and every switch takes the same words.

use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::source::Isolation;
use std::time::Duration;

use crate::net::Patience;
use crate::picture::{EncodeWorkers, EncoderChoice, Transform, FPS_MAX_ANY_SOURCE};
use crate::source::SourceSpec;

/// Everything the server needs to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub listen: SocketAddr,
    pub source: SourceSpec,
    pub width: u16,
    pub height: u16,
    pub fps: u32,
    pub quality: u8,
    pub encoder: EncoderChoice,
    /// Threads that encode JPEG in software.
    pub encode_workers: EncodeWorkers,
    /// 0: no limit.
    pub max_clients: usize,
    /// Streams one client address (an IPv6 /64) may hold at once; 0: no limit.
    pub max_clients_per_address: usize,
    /// Seconds a byte-stream source may go without a good frame before it counts as broken.
    pub source_timeout: u32,
    /// The mDNS host name (`<name>.local`), or `None` for no mDNS at all.
    pub mdns_name: Option<String>,
    /// `--auth USER:PASSWORD`, checked and kept hidden from `Debug`.
    pub auth: Option<Hidden>,
    /// `--auth-file PATH`: one `USER:HASH` per line.
    pub auth_file: Option<PathBuf>,
    /// `--tls-cert` and `--tls-key`: PEM files; both or neither.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// `--allow-origin`: the `Access-Control-Allow-Origin` value.
    pub allow_origin: Option<String>,
    /// Limits on clients that have not yet made a request.
    pub patience: Patience,
    /// Picture orientation for cameras that can turn it (libcamera, rpicam).
    pub transform: Transform,
    /// Which sources run in a process of their own.
    pub isolate: Isolation,
    /// Keep the source running with nobody watching.
    pub always_on: bool,
    /// `--controls`: clients may change the camera's controls.
    pub controls_allowed: bool,
    /// `--state-dir`: where camera settings are kept between runs; `None`: nowhere.
    pub state_dir: Option<PathBuf>,
    /// `--h264-bitrate` in bits per second; `None`: chosen by picture size.
    pub h264_bitrate: Option<u32>,
    /// `--openh264-library`: Cisco's prebuilt OpenH264 to load at run time.
    pub openh264_library: Option<PathBuf>,
    /// `--h264-encoder`: which encoder makes `/stream.mp4`.
    pub h264_encoder: EncoderChoice,
    /// `--webrtc-port`: the UDP port of WebRTC's media (0: any free one); `None`: off.
    pub webrtc_port: Option<u16>,
    /// `--hdr`: the Camera Module 3's sensor HDR.
    pub hdr: bool,
    /// `--noir`: libcamera's tuning for a camera module without an infrared filter.
    pub noir: bool,
}

/// A value that must never be printed (a password): `Debug` shows only that it is there.
#[derive(Clone, PartialEq, Eq)]
pub struct Hidden(pub String);

impl fmt::Debug for Hidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hidden(..)")
    }
}

impl Default for Config {
    /// The defaults of the option table (`OPTIONS`), each read through its own option.
    fn default() -> Config {
        let mut config = Config {
            // Each of these is replaced by its option's default just below.
            listen: SocketAddr::from(([0, 0, 0, 0], 0)),
            source: SourceSpec::Auto,
            width: 0,
            height: 0,
            fps: 0,
            quality: 0,
            encoder: EncoderChoice::Auto,
            encode_workers: EncodeWorkers::Auto,
            max_clients: 0,
            max_clients_per_address: 0,
            source_timeout: 0,
            // `Some` so that --mdns-name's default fills it in (`None` is --no-mdns).
            mdns_name: Some(String::new()),
            auth: None,
            auth_file: None,
            tls_cert: None,
            tls_key: None,
            allow_origin: None,
            patience: Patience::default(),
            transform: Transform::default(),
            isolate: Isolation::Auto,
            always_on: false,
            controls_allowed: true,
            state_dir: None,
            h264_bitrate: None,
            openh264_library: None,
            h264_encoder: EncoderChoice::Auto,
            webrtc_port: Some(8000),
            hdr: false,
            noir: false,
        };
        for opt in OPTIONS {
            if let Some(default) = opt.default {
                // Every default reads through its own option: see the test
                // `every_default_reads_through_its_own_option`.
                let read = opt.read(&mut config, default);
                debug_assert!(read.is_ok(), "default of {}: {read:?}", opt.flag);
            }
        }
        config
    }
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Run(Box<Config>),
    Help,
    Version,
    /// Print the V4L2 capture devices and what they offer.
    ListDevices,
    /// Print the libcamera cameras and their sensor modes.
    ListCameras,
}

/// A command-line or environment mistake, as one line for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One option, defined once: `--help`, the README's option table, [`Config::default`]
/// and the parser all read it from here.
struct Opt {
    /// The heading it is listed under in `--help`.
    group: Group,
    flag: &'static str,
    /// What the value is called in `--help` (`N`, `WxH`); empty for switches.
    value: &'static str,
    var: &'static str,
    /// The value when neither the flag nor the variable is given, as a user would write
    /// it; `None`: off (nothing asked for).
    default: Option<&'static str>,
    /// What the default is, in words, when it is not a value of its own (read from
    /// elsewhere); empty: the default as above.
    default_from: &'static str,
    reader: Reader,
    /// What one line of help says the option does.
    help: &'static str,
    /// What values are accepted (beyond a number's range, which is shown anyway).
    accepts: &'static str,
    /// The words the value may be, each with what it means.
    choices: &'static [(&'static str, &'static str)],
    /// Sentences that follow the help (and the choices).
    more: &'static str,
    /// The value is a secret: error messages do not repeat it.
    secret: bool,
}

/// How an option reads its value into the config.
#[derive(Clone, Copy)]
enum Reader {
    /// A whole number from `min` to `max`.
    Number {
        min: u64,
        max: u64,
        set: fn(&mut Config, u64),
    },
    /// On or off: `--flag` alone is on; `--flag=WORD` and the variable take a
    /// [switch word](SWITCH_WORDS).
    Switch { set: fn(&mut Config, bool) },
    /// Only on: `--flag` takes no value; the variable takes a [switch word](SWITCH_WORDS),
    /// and off asks for nothing.
    OnlyOn { set: fn(&mut Config) },
    /// Any other value, checked by `read`.
    Text {
        read: fn(&mut Config, &str) -> Result<(), String>,
    },
}

/// The `--help` sections, in their order.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Group {
    Pictures,
    Camera,
    Serving,
    Access,
    H264,
    Patience,
}

impl Group {
    const ALL: [Group; 6] = [
        Group::Pictures,
        Group::Camera,
        Group::Serving,
        Group::Access,
        Group::H264,
        Group::Patience,
    ];

    fn heading(self) -> &'static str {
        match self {
            Group::Pictures => "Source and pictures",
            Group::Camera => "Camera modules",
            Group::Serving => "Serving",
            Group::Access => "Access",
            Group::H264 => "H.264 (/stream.mp4)",
            Group::Patience => "Clients that have not yet made a request",
        }
    }
}

/// Fields an entry of [`OPTIONS`] does not need to name.
/// The `hardware` value of `--encoder` and `--h264-encoder`.
const HARDWARE_ENCODER_CHOICE: (&str, &str) = (
    "hardware",
    "the hardware encoder; stop at start without one",
);

const NOTHING_MORE: Opt = Opt {
    group: Group::Serving,
    flag: "",
    value: "",
    var: "",
    default: None,
    default_from: "",
    reader: Reader::Text {
        read: |_, _| Ok(()),
    },
    help: "",
    accepts: "",
    choices: &[],
    more: "",
    secret: false,
};

/// Words a switch takes, for on and for off (any case; off also as an empty value).
const SWITCH_WORDS: [(&str, bool); 8] = [
    ("1", true),
    ("true", true),
    ("yes", true),
    ("on", true),
    ("0", false),
    ("false", false),
    ("no", false),
    ("off", false),
];

/// True when this binary was built with the libcamera source.
pub const HAS_LIBCAMERA: bool = cfg!(feature = "libcamera");

const OPTIONS: &[Opt] = &[
    Opt {
        group: Group::Pictures,
        flag: "--source",
        value: "SPEC",
        var: "PICAM_SOURCE",
        default: Some("auto"),
        reader: Reader::Text {
            read: |c, v| {
                c.source = v.parse()?;
                Ok(())
            },
        },
        help: "Where pictures come from",
        choices: &[
            (
                "auto",
                "the first camera found: libcamera's (in builds with it), a camera module \
                 (rpicam), a USB webcam (v4l2); else the test pattern",
            ),
            ("test", "built-in animated test pattern"),
            ("stdin", "MJPEG (concatenated JPEGs) on standard input"),
            ("file:PATH", "an MJPEG file, looped, paced at --fps"),
            (
                "exec:COMMAND",
                "run COMMAND with sh, read MJPEG from its output, restart it (1 s to 30 s \
                 pauses) when it exits or hangs (an example is below)",
            ),
            (
                "v4l2:/dev/videoN",
                "a V4L2 camera (USB webcam); MJPEG is passed through, YUYV/UYVY/NV12 \
                 encoded at --quality",
            ),
            (
                "rpicam[:INDEX]",
                "a Pi camera module through Raspberry Pi OS's rpicam-vid (or \
                 libcamera-vid; another program in PICAM_RPICAM_VID), run only while \
                 somebody watches: the first camera or the INDEXth of --list-cameras (from \
                 0); raw pictures at --size (width rounded to a multiple of 64, height to \
                 even) and --fps, encoded at --quality",
            ),
            (
                "libcamera[:INDEX|:ID]",
                "a Pi camera module (in binaries built with libcamera): the first, the \
                 INDEXth of --list-cameras (from 0) or the one with that ID; YUV 4:2:0 at \
                 --size and --fps, encoded at --quality; Camera Module 3 focuses \
                 continuously",
            ),
        ],
        ..NOTHING_MORE
    },
    Opt {
        group: Group::Pictures,
        flag: "--size",
        value: "WxH",
        var: "PICAM_SIZE",
        default: Some("640x480"),
        reader: Reader::Text {
            read: |c, v| {
                (c.width, c.height) = parse_size(v)?;
                Ok(())
            },
        },
        help: "Picture size for sources that make pictures",
        accepts: "16 to 4096 each",
        ..NOTHING_MORE
    },
    Opt {
        group: Group::Pictures,
        flag: "--fps",
        value: "N",
        var: "PICAM_FPS",
        default: Some("30"),
        reader: Reader::Number {
            min: 1,
            max: 240,
            set: |c, n| c.fps = n as u32,
        },
        help: "Frames per second for such sources and for file:",
        more: "Above 120 only for camera modules (rpicam and libcamera sources) with a \
               sensor mode that fast, such as the Camera Module v2's 640x480 at 206 fps; \
               the chosen sensor mode is logged and shown in /status.",
        ..NOTHING_MORE
    },
    Opt {
        group: Group::Pictures,
        flag: "--quality",
        value: "N",
        var: "PICAM_QUALITY",
        default: Some("80"),
        reader: Reader::Number {
            min: 1,
            max: 100,
            set: |c, n| c.quality = n as u8,
        },
        help: "JPEG quality for sources that encode",
        ..NOTHING_MORE
    },
    Opt {
        group: Group::Pictures,
        flag: "--encoder",
        value: "KIND",
        var: "PICAM_ENCODER",
        default: Some("auto"),
        reader: Reader::Text {
            read: |c, v| {
                c.encoder = v.parse()?;
                Ok(())
            },
        },
        help: "JPEG encoder for sources that encode",
        choices: &[
            (
                "auto",
                "the hardware encoder when one is found (a V4L2 memory-to-memory node \
                 producing JPEG, such as the Pi Zero to Pi 4's /dev/video31), else software",
            ),
            HARDWARE_ENCODER_CHOICE,
            ("software", "always encode on the CPU"),
        ],
        more: "When the hardware fails, encoding goes on in software; /status says which \
               encoder runs.",
        ..NOTHING_MORE
    },
    Opt {
        group: Group::Pictures,
        flag: "--encode-workers",
        value: "N",
        var: "PICAM_ENCODE_WORKERS",
        default: Some("auto"),
        reader: Reader::Text {
            read: |c, v| {
                c.encode_workers = v.parse()?;
                Ok(())
            },
        },
        help: "Threads that encode JPEG in software, each picture on one of them",
        accepts: "auto (one per core, at most 4) or 1 to 8; 1 encodes on the source's own \
                  thread, one picture at a time",
        more: "The hardware encoder, when it runs, does not use them.",
        ..NOTHING_MORE
    },
    Opt {
        group: Group::Pictures,
        flag: "--source-timeout",
        value: "S",
        var: "PICAM_SOURCE_TIMEOUT",
        default: Some("5"),
        reader: Reader::Number {
            min: 1,
            max: 3600,
            set: |c, n| c.source_timeout = n as u32,
        },
        help: "Seconds without a good frame after which stdin, exec: and rpicam sources \
               count as broken: viewers see a no-signal picture and a command is stopped \
               and started again",
        ..NOTHING_MORE
    },
    Opt {
        group: Group::Pictures,
        flag: "--isolate",
        value: "WHEN",
        var: "PICAM_ISOLATE",
        default: Some("auto"),
        reader: Reader::Text {
            read: |c, v| {
                c.isolate = v.parse()?;
                Ok(())
            },
        },
        help: "Run the source in a process of its own, so that a camera library that \
               crashes or hangs takes only that process down: viewers see the no-signal \
               picture and it is started again (1 s to 30 s pauses)",
        choices: &[
            ("auto", "for the libcamera source only"),
            ("on", "for test, v4l2 and libcamera sources"),
            ("off", "never"),
        ],
        ..NOTHING_MORE
    },
    Opt {
        group: Group::Pictures,
        flag: "--always-on",
        var: "PICAM_ALWAYS_ON",
        default: Some("off"),
        reader: Reader::Switch {
            set: |c, on| c.always_on = on,
        },
        help: "Keep the source running with nobody watching",
        more: "By default a camera is closed, the test pattern and a file: sleep, and an \
               exec: command is stopped once nobody has watched for 3 s; the next viewer \
               or snapshot starts it again. stdin is always read.",
        ..NOTHING_MORE
    },
    Opt {
        group: Group::Camera,
        flag: "--rotation",
        value: "0|90|180|270",
        var: "PICAM_ROTATION",
        default: Some("0"),
        reader: Reader::Text {
            read: |c, v| {
                (c.transform.rotate90, c.transform.rotate180) = match v {
                    "0" => (false, false),
                    "90" => (true, false),
                    "180" => (false, true),
                    "270" => (true, true),
                    _ => return Err("expected 0, 90, 180 or 270".into()),
                };
                Ok(())
            },
        },
        help: "Turn the picture clockwise, before --hflip and --vflip",
        more: "Camera modules (rpicam, libcamera) turn by 180 and mirror themselves; \
               otherwise, and for 90 and 270, which swap width and height, the raw \
               picture is turned on the CPU before JPEG encoding (its cost: \
               docs/BENCHMARKS.md). JPEG that arrives as such (stdin, file:, exec:, MJPEG \
               webcams) is passed on unturned, and 90 and 270 are refused there.",
        accepts: "0, 90, 180 or 270",
        ..NOTHING_MORE
    },
    Opt {
        group: Group::Camera,
        flag: "--hflip",
        var: "PICAM_HFLIP",
        default: Some("off"),
        reader: Reader::Switch {
            set: |c, on| c.transform.hflip = on,
        },
        help: "Mirror the picture left to right (after --rotation)",
        ..NOTHING_MORE
    },
    Opt {
        group: Group::Camera,
        flag: "--vflip",
        var: "PICAM_VFLIP",
        default: Some("off"),
        reader: Reader::Switch {
            set: |c, on| c.transform.vflip = on,
        },
        help: "Flip the picture upside down (after --rotation)",
        ..NOTHING_MORE
    },
    Opt {
        group: Group::Camera,
        flag: "--hdr",
        var: "PICAM_HDR",
        default: Some("off"),
        reader: Reader::Switch {
            set: |c, on| c.hdr = on,
        },
        help: "The sensor's own HDR, on the Camera Module 3 (imx708): a wider range of \
               light in one 2304x1296 mode at up to 30 fps (rpicam and libcamera \
               sources; refused on other cameras)",
        ..NOTHING_MORE
    },
    Opt {
        group: Group::Camera,
        flag: "--noir",
        var: "PICAM_NOIR",
        default: Some("off"),
        reader: Reader::Switch {
            set: |c, on| c.noir = on,
        },
        help: "The camera module has no infrared filter (a NoIR module): use libcamera's \
               NoIR tuning file for its sensor, whose colours suit infrared light \
               (rpicam and libcamera sources; the Camera Module 3 NoIR is recognised \
               without it)",
        ..NOTHING_MORE
    },
    Opt {
        group: Group::Serving,
        flag: "--listen",
        value: "ADDR:PORT",
        var: "PICAM_LISTEN",
        default: Some("0.0.0.0:8000"),
        reader: Reader::Text {
            read: |c, v| {
                c.listen = parse_listen(v)?;
                Ok(())
            },
        },
        help: "Address to serve on",
        accepts: "[::]:8000 serves IPv6 and IPv4; a bare PORT means 0.0.0.0:PORT",
        ..NOTHING_MORE
    },
    Opt {
        group: Group::Serving,
        flag: "--max-clients",
        value: "N",
        var: "PICAM_MAX_CLIENTS",
        default: Some("100"),
        reader: Reader::Number {
            min: 0,
            max: 10_000,
            set: |c, n| c.max_clients = n as usize,
        },
        help: "Streams served at once; one more gets 503",
        accepts: "0 means no limit",
        ..NOTHING_MORE
    },
    Opt {
        group: Group::Serving,
        flag: "--max-clients-per-address",
        value: "N",
        var: "PICAM_MAX_CLIENTS_PER_ADDRESS",
        default: Some("10"),
        reader: Reader::Number {
            min: 0,
            max: 10_000,
            set: |c, n| c.max_clients_per_address = n as usize,
        },
        help: "Streams one client address (IPv6: one /64 network) may hold at once, so \
               that one host cannot take every place; one more gets 503",
        accepts: "0 means no limit",
        ..NOTHING_MORE
    },
    Opt {
        group: Group::Serving,
        flag: "--mdns-name",
        value: "NAME",
        var: "PICAM_MDNS_NAME",
        default: Some(crate::mdns::DEFAULT_NAME),
        reader: Reader::Text {
            read: |c, v| {
                let name = crate::mdns::parse_name(v)?;
                // --no-mdns wins wherever it was given.
                if c.mdns_name.is_some() {
                    c.mdns_name = Some(name);
                }
                Ok(())
            },
        },
        help: "Advertise the stream on the local network as http://NAME.local:PORT/ \
               (mDNS, and DNS-SD service _http._tcp for service browsers)",
        accepts: "letters, digits and hyphens",
        more: "On every interface, or only the --listen address when it is not a \
               wildcard.",
        ..NOTHING_MORE
    },
    Opt {
        group: Group::Serving,
        flag: "--no-mdns",
        var: "PICAM_NO_MDNS",
        default: Some("off"),
        reader: Reader::OnlyOn {
            set: |c| c.mdns_name = None,
        },
        help: "Do not answer mDNS queries at all",
        more: "Wins over --mdns-name.",
        ..NOTHING_MORE
    },
    Opt {
        group: Group::Access,
        flag: "--auth",
        value: "USER:PASSWORD",
        var: "PICAM_AUTH",
        reader: Reader::Text {
            read: |c, v| {
                let mut check = crate::auth::Credentials::default();
                check.add_plain(v)?;
                c.auth = Some(Hidden(v.to_string()));
                Ok(())
            },
        },
        help: "Let in only this user (HTTP Basic); every URL then needs it",
        more: "Prefer the variable or --auth-file: command lines are visible to other \
               users of the machine.",
        secret: true,
        ..NOTHING_MORE
    },
    Opt {
        group: Group::Access,
        flag: "--auth-file",
        value: "PATH",
        var: "PICAM_AUTH_FILE",
        reader: Reader::Text {
            read: |c, v| {
                c.auth_file = Some(parse_path(v)?);
                Ok(())
            },
        },
        help: "Let in the users of PATH: one USER:HASH a line (# comments)",
        more: "HASH from htpasswd -nB (bcrypt, $2y$) or openssl passwd -6 / mkpasswd \
               (SHA-crypt, $6$ or $5$); may be combined with --auth. Too many wrong \
               passwords from one address (10 a minute) are answered 429 for the rest of \
               the minute.",
        ..NOTHING_MORE
    },
    Opt {
        group: Group::Access,
        flag: "--tls-cert",
        value: "PATH",
        var: "PICAM_TLS_CERT",
        reader: Reader::Text {
            read: |c, v| {
                c.tls_cert = Some(parse_path(v)?);
                Ok(())
            },
        },
        help: "Serve HTTPS instead of HTTP with this PEM certificate (chain)",
        more: "Needs --tls-key and a binary built with the tls feature.",
        ..NOTHING_MORE
    },
    Opt {
        group: Group::Access,
        flag: "--tls-key",
        value: "PATH",
        var: "PICAM_TLS_KEY",
        reader: Reader::Text {
            read: |c, v| {
                c.tls_key = Some(parse_path(v)?);
                Ok(())
            },
        },
        help: "The certificate's PEM private key (PKCS#8 or RSA, unencrypted)",
        ..NOTHING_MORE
    },
    Opt {
        group: Group::Access,
        flag: "--allow-origin",
        value: "ORIGIN",
        var: "PICAM_ALLOW_ORIGIN",
        reader: Reader::Text {
            read: |c, v| {
                c.allow_origin = Some(parse_origin(v)?);
                Ok(())
            },
        },
        help: "Let pages from ORIGIN (or * for any) read the answers with fetch/XHR \
               (CORS) and change the camera's controls: adds Access-Control-Allow-Origin \
               and answers OPTIONS preflights",
        ..NOTHING_MORE
    },
    Opt {
        group: Group::Access,
        flag: "--controls",
        value: "on|off",
        var: "PICAM_CONTROLS",
        default: Some("on"),
        reader: Reader::Text {
            read: |c, v| {
                c.controls_allowed = parse_switch(v)?;
                Ok(())
            },
        },
        help: "Let clients change the camera's controls (brightness, contrast, ...) with \
               POST /controls and /option; off: /controls still lists them, changes get 403",
        ..NOTHING_MORE
    },
    Opt {
        group: Group::Access,
        flag: "--state-dir",
        value: "DIR|off",
        var: "PICAM_STATE_DIR",
        default_from: "$STATE_DIRECTORY, else off",
        reader: Reader::Text {
            read: |c, v| {
                c.state_dir = match v {
                    "off" => None,
                    "" => return Err("expected a directory, or off".into()),
                    v => Some(PathBuf::from(v)),
                };
                Ok(())
            },
        },
        help: "Keep the camera settings clients change in DIR (a file per camera), and \
               apply them when that camera opens, after a restart too; POST \
               /controls/reset forgets them",
        accepts: "a directory (made if missing), or off to keep nothing",
        more: "The default is the directory systemd gives the service (StateDirectory=, \
               in $STATE_DIRECTORY): /var/lib/picam-stream for the packages and SD card \
               images.",
        ..NOTHING_MORE
    },
    Opt {
        group: Group::H264,
        flag: "--h264-encoder",
        value: "KIND",
        var: "PICAM_H264_ENCODER",
        default: Some("auto"),
        reader: Reader::Text {
            read: |c, v| {
                c.h264_encoder = v.parse()?;
                Ok(())
            },
        },
        help: "H.264 encoder for /stream.mp4",
        choices: &[
            (
                "auto",
                "the hardware encoder when one is found (a V4L2 memory-to-memory node \
                 producing H.264, such as the Pi Zero to Pi 4's /dev/video11), else \
                 software in binaries built with the h264 feature, else no /stream.mp4",
            ),
            HARDWARE_ENCODER_CHOICE,
            (
                "software",
                "OpenH264 on the CPU (binaries built with the h264 feature)",
            ),
        ],
        more: "The log says which encoder runs and why; /status has it as h264_encoder.",
        ..NOTHING_MORE
    },
    Opt {
        group: Group::H264,
        flag: "--h264-bitrate",
        value: "KBPS",
        var: "PICAM_H264_BITRATE",
        default: Some("auto"),
        reader: Reader::Text {
            read: |c, v| {
                c.h264_bitrate = parse_bitrate(v)?;
                Ok(())
            },
        },
        help: "Bit rate of the H.264 stream in kilobits per second",
        accepts: "auto (2000 at 1280x720, in proportion to the picture's area, at least \
                  200) or 200 to 50000",
        ..NOTHING_MORE
    },
    Opt {
        group: Group::H264,
        flag: "--openh264-library",
        value: "PATH",
        var: "PICAM_OPENH264_LIBRARY",
        reader: Reader::Text {
            read: |c, v| {
                c.openh264_library = Some(parse_path(v)?);
                Ok(())
            },
        },
        help: "Encode with Cisco's prebuilt OpenH264 library at PATH (libopenh264.so.7, \
               which Cisco's H.264 patent licence covers) instead of the built-in one",
        more: "Needs a binary built with the openh264-library feature.",
        ..NOTHING_MORE
    },
    Opt {
        group: Group::H264,
        flag: "--webrtc-port",
        value: "PORT",
        var: "PICAM_WEBRTC_PORT",
        default: Some("8000"),
        reader: Reader::Text {
            read: |c, v| {
                c.webrtc_port = parse_webrtc_port(v)?;
                Ok(())
            },
        },
        help: "UDP port of the WebRTC video (POST /whep, POST /webrtc); the browser \
               must reach it, so a firewall must let it through",
        accepts: "1 to 65535, 0 for any free port, or off to offer no WebRTC",
        more: "Needs a binary built with the webrtc feature. The port is opened on every \
               address of the machine, and addresses that appear later are added.",
        ..NOTHING_MORE
    },
    Opt {
        group: Group::Patience,
        flag: "--header-timeout",
        value: "SECS",
        var: "PICAM_HEADER_TIMEOUT",
        default: Some("10"),
        reader: Reader::Number {
            min: 1,
            max: 600,
            set: |c, n| c.patience.head = Duration::from_secs(n),
        },
        help: "Time a client has to send a complete request head (request line and \
               headers), from connecting or from the first byte of a later request; \
               slower ones get 408",
        ..NOTHING_MORE
    },
    Opt {
        group: Group::Patience,
        flag: "--keepalive-timeout",
        value: "SECS",
        var: "PICAM_KEEPALIVE_TIMEOUT",
        default: Some("15"),
        reader: Reader::Number {
            min: 1,
            max: 3600,
            set: |c, n| c.patience.idle = Duration::from_secs(n),
        },
        help: "An idle connection waiting for its next request, or a client silent in the \
               middle of one, is closed after this long",
        ..NOTHING_MORE
    },
    Opt {
        group: Group::Patience,
        flag: "--max-header-bytes",
        value: "N",
        var: "PICAM_MAX_HEADER_BYTES",
        default: Some("16384"),
        reader: Reader::Number {
            min: 1024,
            max: 1024 * 1024,
            set: |c, n| c.patience.head_bytes = n as u32,
        },
        help: "Largest request head; a larger one gets 431 and the connection is closed",
        ..NOTHING_MORE
    },
    Opt {
        group: Group::Patience,
        flag: "--max-pending",
        value: "N",
        var: "PICAM_MAX_PENDING",
        default: Some("64"),
        reader: Reader::Number {
            min: 1,
            max: 10_000,
            set: |c, n| c.patience.pending = n as usize,
        },
        help: "Connections that may wait at once for a complete request; past this the \
               longest waiting are closed",
        ..NOTHING_MORE
    },
];

/// Arguments that do something else than run the server.
const COMMANDS: &[(&[&str], &str, Action)] = &[
    (
        &["--list-devices"],
        "List V4L2 capture devices: formats, sizes, frame rates, controls",
        Action::ListDevices,
    ),
    (
        &["--list-cameras"],
        "List the camera modules: id, model, sensor modes (size, max fps), from \
         libcamera in binaries built with it, else from rpicam-vid --list-cameras",
        Action::ListCameras,
    ),
    (&["-h", "--help"], "Print this help", Action::Help),
    (&["-V", "--version"], "Print the version", Action::Version),
];

impl Opt {
    /// Reads `value` (from the flag or the variable) into `config`.
    fn read(&self, config: &mut Config, value: &str) -> Result<(), String> {
        match self.reader {
            Reader::Number { min, max, set } => set(config, parse_number(value, min, max)?),
            Reader::Switch { set } => set(config, parse_switch(value)?),
            Reader::OnlyOn { set } => {
                if parse_switch(value)? {
                    set(config);
                }
            }
            Reader::Text { read } => read(config, value)?,
        }
        Ok(())
    }

    fn is_switch(&self) -> bool {
        matches!(self.reader, Reader::Switch { .. } | Reader::OnlyOn { .. })
    }

    /// `--fps N`, or `--hflip` for a switch.
    fn usage(&self) -> String {
        if self.value.is_empty() {
            self.flag.to_string()
        } else {
            format!("{} {}", self.flag, self.value)
        }
    }

    /// `PICAM_FPS`, or `PICAM_HFLIP=1` for a switch.
    fn var_usage(&self) -> String {
        if self.is_switch() {
            format!("{}=1", self.var)
        } else {
            self.var.to_string()
        }
    }

    /// The default as shown to users.
    fn default_shown(&self) -> &'static str {
        match (self.default, self.default_from) {
            (_, "") => self.default.unwrap_or("off"),
            (_, from) => from,
        }
    }

    /// What values are accepted, in words: `1 to 120`, `16 to 4096 each`.
    fn accepted(&self) -> String {
        let range = match self.reader {
            Reader::Number { min, max, .. } => format!("{min} to {max}"),
            _ => String::new(),
        };
        [range.as_str(), self.accepts]
            .into_iter()
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The option's entry in `--help`.
    fn help_entry(&self) -> String {
        let mut notes = vec![format!("default {}", self.default_shown())];
        notes.push(self.accepted());
        if let Reader::Switch { .. } = self.reader {
            notes.push(format!("{}=no turns it off", self.flag));
        }
        notes.retain(|note| !note.is_empty());
        let said = format!(
            "{} [{}] ({})",
            self.help,
            self.var_usage(),
            notes.join("; ")
        );
        if self.choices.is_empty() {
            let said = if self.more.is_empty() {
                said
            } else {
                format!("{said}. {}", self.more)
            };
            return option_line(&self.usage(), &said);
        }
        let mut entry = option_line(&self.usage(), &format!("{said}:"));
        let width = self
            .choices
            .iter()
            .map(|(name, _)| name.len())
            .filter(|&len| len <= CHOICE_NAME_MAX)
            .max()
            .unwrap_or(0)
            + 2;
        let indent = " ".repeat(HELP_INDENT + 2);
        for (name, meaning) in self.choices {
            entry += &hanging(&indent, name, width, meaning);
        }
        if !self.more.is_empty() {
            entry += &wrap(&" ".repeat(HELP_INDENT), self.more);
        }
        entry
    }
}

/// Column where help texts start, and the width they are wrapped to.
const HELP_INDENT: usize = 23;
const HELP_WIDTH: usize = 88;
/// Longer choice names get a line of their own.
const CHOICE_NAME_MAX: usize = 12;

/// `  --flag VALUE   text...`, as `--help` lists an option.
fn option_line(usage: &str, text: &str) -> String {
    hanging("  ", usage, HELP_INDENT - 2, text)
}

/// `indent` + `name` padded to `width`, then `text` wrapped to [`HELP_WIDTH`] and indented
/// past the name; `name` on a line of its own when it does not fit.
fn hanging(indent: &str, name: &str, width: usize, text: &str) -> String {
    let pad = " ".repeat(indent.len() + width);
    let body = wrap(&pad, text);
    if name.len() < width {
        format!("{indent}{name}{}", &body[indent.len() + name.len()..])
    } else {
        format!("{indent}{name}\n{body}")
    }
}

/// `text` in lines of at most [`HELP_WIDTH`] characters (longer words stay whole), each
/// starting with `indent`, each ending with a line break.
fn wrap(indent: &str, text: &str) -> String {
    let mut out = String::new();
    let mut line = indent.to_string();
    for word in text.split_whitespace() {
        if line.len() > indent.len() && line.len() + 1 + word.len() > HELP_WIDTH {
            out += &line;
            out.push('\n');
            line = indent.to_string();
        }
        if line.len() > indent.len() {
            line.push(' ');
        }
        line += word;
    }
    out += &line;
    out.push('\n');
    out
}

fn parse_switch(v: &str) -> Result<bool, String> {
    let v = v.to_ascii_lowercase();
    if v.is_empty() {
        return Ok(false);
    }
    SWITCH_WORDS
        .iter()
        .find(|(word, _)| *word == v)
        .map(|&(_, on)| on)
        .ok_or_else(|| {
            "expected 1, true, yes or on to turn it on; 0, false, no, off or empty for off".into()
        })
}

/// True when this binary was built with HTTPS support (the `tls` feature).
pub const TLS_BUILT: bool = cfg!(feature = "tls");

/// The `--help` text, made from the option table.
pub static HELP: std::sync::LazyLock<String> = std::sync::LazyLock::new(help_text);

fn help_text() -> String {
    let mut text = String::from(
        "\
picam-stream: a live MJPEG stream of a camera for every browser on the network

Usage: picam-stream [OPTIONS]

Open http://<this machine>:8000/ in a browser; the addresses are logged at start-up.

Options (each can also be set by the environment variable shown; the flag wins;
a switch's variable takes 1, true, yes or on, and 0, false, no, off or empty):
",
    );
    for group in Group::ALL {
        text += &format!("\n {}:\n", group.heading());
        for opt in OPTIONS.iter().filter(|opt| opt.group == group) {
            text += &opt.help_entry();
        }
    }
    text += "\n Other:\n";
    for (flags, help, _) in COMMANDS {
        text += &option_line(&flags.join(", "), help);
    }
    text += "
Examples:
  picam-stream                                  the first camera, on port 8000
  picam-stream --source test --size 1280x720    the test pattern, larger
  PICAM_FPS=10 picam-stream --listen [::]:8080  10 frames a second, IPv6 and IPv4
  picam-stream --source 'exec:rpicam-vid -t 0 --codec mjpeg -o -'

Endpoints:
  /, /index.html                   viewer page (/ redirects to /index.html)
  /stream.mjpg                     MJPEG stream, classic parts with Content-Length
  /stream.mjpg?advance_headers=1   MJPEG stream that browsers show without a frame's delay
  /snapshot.jpg                    newest frame as a JPEG
  /status                          JSON: source, size, fps, frames, whether the source
                                   runs now, clients, uptime, the source's problem,
                                   since when, and its restarts
  /?action=stream, /?action=snapshot, /stream, /snapshot   aliases for other tools

Logging: RUST_LOG=debug (or warn, error) changes the level; logs go to standard error.
";
    text
}

/// The README's option table (between its `options-table` markers), in Markdown.
pub fn readme_option_table() -> String {
    let cell = |text: &str| text.replace('|', "\\|");
    let mut table = String::from(
        "| Flag | Variable | Default | Accepts | Meaning |\n| --- | --- | --- | --- | --- |\n",
    );
    for group in Group::ALL {
        for opt in OPTIONS.iter().filter(|opt| opt.group == group) {
            let accepts = if opt.is_switch() {
                "a switch (below)".to_string()
            } else if !opt.choices.is_empty() {
                let names: Vec<String> = opt
                    .choices
                    .iter()
                    .map(|(name, _)| format!("`{}`", cell(name)))
                    .collect();
                names.join(", ")
            } else {
                cell(&opt.accepted())
            };
            let default = match opt.default {
                _ if !opt.default_from.is_empty() => cell(opt.default_from),
                Some(value) if !opt.is_switch() => format!("`{}`", cell(value)),
                _ => "off".to_string(),
            };
            let meaning = [opt.help, opt.more]
                .iter()
                .filter(|part| !part.is_empty())
                .map(|part| cell(part.trim_end_matches('.')))
                .collect::<Vec<_>>()
                .join(". ");
            table += &format!(
                "| `{}` | `{}` | {default} | {accepts} | {meaning} |\n",
                cell(&opt.usage()),
                opt.var,
            );
        }
    }
    table += "\nA switch (`--flag`, `--flag=no`) is on when its variable is `1`, `true`, \
              `yes` or `on`, and off when it is `0`, `false`, `no`, `off` or empty.\n";
    table
}

/// How an option's variable is written as a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagForm {
    /// `--flag=VALUE` reads VALUE as the variable does.
    WithValue,
    /// `--flag` alone when the variable's value is a switch word for on; nothing for off.
    OnlyOn,
}

/// Every option's variable, its flag and how the one is written as the other: for
/// checks (the options fuzz target) that must cover options added later.
pub fn option_variables() -> impl Iterator<Item = (&'static str, &'static str, FlagForm)> {
    OPTIONS.iter().filter(|opt| !opt.var.is_empty()).map(|opt| {
        let form = match opt.reader {
            Reader::OnlyOn { .. } => FlagForm::OnlyOn,
            _ => FlagForm::WithValue,
        };
        (opt.var, opt.flag, form)
    })
}

/// Whether `value` is a switch word for on (`Some(true)`), for off, or none of them.
pub fn switch_word(value: &str) -> Option<bool> {
    parse_switch(value).ok()
}

/// Reads the environment (through `var`) and then the arguments (without the program name).
pub fn parse<I, V>(args: I, var: V) -> Result<Action, ConfigError>
where
    I: IntoIterator<Item = OsString>,
    V: Fn(&str) -> Option<OsString>,
{
    let mut config = Config::default();
    // systemd's StateDirectory= (the first, should the unit name several): the default
    // of --state-dir, below its own variable and flag.
    if let Some(dirs) = var("STATE_DIRECTORY") {
        let dirs = dirs.to_string_lossy().into_owned();
        if let Some(first) = dirs.split(':').find(|d| !d.is_empty()) {
            config.state_dir = Some(PathBuf::from(first));
        }
    }
    for opt in OPTIONS {
        if let Some(raw) = var(opt.var) {
            let value = raw.into_string().map_err(|raw| {
                ConfigError(format!(
                    "invalid value {raw:?} for {} ({}): not valid UTF-8",
                    opt.var, opt.flag
                ))
            })?;
            opt.read(&mut config, &value).map_err(|why| {
                let shown = shown(opt, &value);
                ConfigError(format!(
                    "invalid value {shown}for {} ({}): {why}",
                    opt.var, opt.flag
                ))
            })?;
        }
    }
    let mut args = args.into_iter();
    while let Some(raw) = args.next() {
        let arg = raw
            .into_string()
            .map_err(|raw| ConfigError(format!("argument {raw:?} is not valid UTF-8")))?;
        if let Some((_, _, action)) = COMMANDS
            .iter()
            .find(|(flags, _, _)| flags.contains(&arg.as_str()))
        {
            return Ok(action.clone());
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let Some(opt) = OPTIONS.iter().find(|o| o.flag == flag) else {
            return Err(ConfigError(if arg.starts_with('-') {
                format!("unknown option '{}' (see --help)", printable(&flag))
            } else {
                format!(
                    "unexpected argument '{}': options start with -- (see --help)",
                    printable(&arg)
                )
            }));
        };
        let value = match (inline, opt.reader) {
            (Some(_), Reader::OnlyOn { .. }) => {
                return Err(ConfigError(format!("option {flag} takes no value")))
            }
            (Some(v), _) => v,
            (None, Reader::Switch { .. } | Reader::OnlyOn { .. }) => "1".to_string(),
            (None, _) => match args.next() {
                Some(v) => v.into_string().map_err(|v| {
                    ConfigError(format!("invalid value {v:?} for {flag}: not valid UTF-8"))
                })?,
                None => {
                    return Err(ConfigError(format!(
                        "option {flag} needs a value (see --help)"
                    )))
                }
            },
        };
        opt.read(&mut config, &value).map_err(|why| {
            let shown = shown(opt, &value);
            ConfigError(format!("invalid value {shown}for {flag}: {why}"))
        })?;
    }
    check_together(&config)?;
    Ok(Action::Run(Box::new(config)))
}

/// The value as quoted in an error message, with its trailing space; nothing for secrets.
fn shown(opt: &Opt, value: &str) -> String {
    if opt.secret {
        String::new()
    } else {
        format!("'{}' ", printable(value))
    }
}

/// Whether `source` may be a camera module, whose sensor modes decide the highest
/// frame rate and which alone have sensor HDR.
fn may_be_camera_module(source: &SourceSpec) -> bool {
    matches!(
        source,
        SourceSpec::Auto | SourceSpec::Rpicam(_) | SourceSpec::Libcamera(_)
    )
}

/// Options that only make sense together, or in a binary built with their feature.
fn check_together(c: &Config) -> Result<(), ConfigError> {
    if c.fps > FPS_MAX_ANY_SOURCE && !may_be_camera_module(&c.source) {
        return Err(ConfigError(format!(
            "--fps {}: above {FPS_MAX_ANY_SOURCE} only for camera modules (the rpicam \
             and libcamera sources), whose sensor mode may allow it; source '{}' takes \
             at most {FPS_MAX_ANY_SOURCE}",
            c.fps, c.source
        )));
    }
    if c.hdr && !may_be_camera_module(&c.source) {
        return Err(ConfigError(format!(
            "--hdr is the Camera Module 3's sensor HDR (rpicam and libcamera sources); \
             source '{}' has none: leave --hdr off",
            c.source
        )));
    }
    if c.noir && !may_be_camera_module(&c.source) {
        return Err(ConfigError(format!(
            "--noir chooses libcamera's tuning of a camera module (rpicam and libcamera \
             sources); source '{}' is none: leave --noir off",
            c.source
        )));
    }
    match (&c.tls_cert, &c.tls_key) {
        (Some(_), None) => Err("--tls-cert needs --tls-key (the certificate's private key)"),
        (None, Some(_)) => Err("--tls-key needs --tls-cert (the certificate it belongs to)"),
        (Some(_), Some(_)) if !TLS_BUILT => {
            Err("--tls-cert: this binary was built without HTTPS support; \
             build it with `cargo build --release --features tls`")
        }
        _ => Ok(()),
    }
    .map_err(|e| ConfigError(e.into()))
}

/// `text` as shown in an error message: control characters (a line break, a terminal
/// escape) are written escaped, so that the message stays one line and prints as it reads.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn parse_listen(v: &str) -> Result<SocketAddr, String> {
    const WANT: &str = "expected ADDRESS:PORT such as 0.0.0.0:8000 or [::]:8000, or a PORT";
    if let Ok(port) = v.parse::<u16>() {
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    v.parse::<SocketAddr>().map_err(|_| WANT.to_string())
}

fn parse_size(v: &str) -> Result<(u16, u16), String> {
    const WANT: &str = "expected WIDTHxHEIGHT such as 640x480, each from 16 to 4096";
    let (w, h) = v.split_once(['x', 'X']).ok_or(WANT)?;
    let w = w.parse::<u16>().map_err(|_| WANT)?;
    let h = h.parse::<u16>().map_err(|_| WANT)?;
    if !(16..=4096).contains(&w) || !(16..=4096).contains(&h) {
        return Err(WANT.into());
    }
    Ok((w, h))
}

/// `auto` (`None`) or kilobits per second from 200 to 50000, as bits per second.
fn parse_bitrate(v: &str) -> Result<Option<u32>, String> {
    const WANT: &str = "expected auto or kilobits per second from 200 to 50000, such as 2000";
    if v.eq_ignore_ascii_case("auto") {
        return Ok(None);
    }
    match v.parse::<u32>() {
        Ok(k) if (200..=50_000).contains(&k) => Ok(Some(k * 1000)),
        _ => Err(WANT.into()),
    }
}

fn parse_webrtc_port(v: &str) -> Result<Option<u16>, String> {
    if v.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    v.parse::<u16>()
        .map(Some)
        .map_err(|_| "expected a UDP port from 1 to 65535, 0 for any free port, or off".into())
}

fn parse_path(v: &str) -> Result<PathBuf, String> {
    if v.is_empty() {
        return Err("expected a file path".into());
    }
    Ok(PathBuf::from(v))
}

/// `*`, or an origin as browsers send it: `http://host[:port]` or `https://host[:port]`.
fn parse_origin(v: &str) -> Result<String, String> {
    const WANT: &str =
        "expected * or an origin such as https://example.org or http://192.168.1.5:8080 \
                        (scheme, host and optional port; no path)";
    if v == "*" {
        return Ok(v.to_string());
    }
    let rest = v
        .strip_prefix("http://")
        .or_else(|| v.strip_prefix("https://"))
        .ok_or(WANT)?;
    let ok = !rest.is_empty()
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c));
    if ok {
        Ok(v.to_string())
    } else {
        Err(WANT.into())
    }
}

fn parse_number(v: &str, min: u64, max: u64) -> Result<u64, String> {
    match v.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("expected a whole number from {min} to {max}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Action, ConfigError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse(args.iter().map(OsString::from), |k| {
            env.get(k).map(OsString::from)
        })
    }

    fn config(args: &[&str], env: &[(&str, &str)]) -> Config {
        match run(args, env) {
            Ok(Action::Run(c)) => *c,
            other => panic!("expected a config, got {other:?}"),
        }
    }

    #[test]
    fn defaults_flags_env_and_precedence() {
        assert_eq!(config(&[], &[]), Config::default());
        let c = config(
            &[
                "--fps",
                "15",
                "--size=1280x720",
                "--listen",
                "[::]:9000",
                "--source",
                "stdin",
            ],
            &[
                ("PICAM_FPS", "5"),
                ("PICAM_QUALITY", "60"),
                ("PICAM_ENCODER", "hardware"),
            ],
        );
        assert_eq!(c.encoder, EncoderChoice::Hardware);
        assert_eq!(
            config(&["--encoder", "software"], &[("PICAM_ENCODER", "hardware")]).encoder,
            EncoderChoice::Software
        );
        assert_eq!(c.fps, 15, "the flag wins over the variable");
        assert_eq!(c.quality, 60, "the variable applies when no flag is given");
        assert_eq!((c.width, c.height), (1280, 720));
        assert_eq!(c.listen, "[::]:9000".parse().unwrap());
        assert_eq!(c.source, SourceSpec::Stdin);
        assert_eq!(config(&["--listen", "8080"], &[]).listen.port(), 8080);
        assert_eq!(
            config(&["--source-timeout", "2"], &[("PICAM_SOURCE_TIMEOUT", "9")]).source_timeout,
            2
        );
        assert_eq!(
            config(&[], &[("PICAM_SOURCE_TIMEOUT", "9")]).source_timeout,
            9
        );
        let c = config(
            &["--header-timeout", "3", "--max-header-bytes=4096"],
            &[
                ("PICAM_KEEPALIVE_TIMEOUT", "30"),
                ("PICAM_MAX_PENDING", "8"),
            ],
        );
        assert_eq!(c.patience.head, Duration::from_secs(3));
        assert_eq!(c.patience.idle, Duration::from_secs(30));
        assert_eq!(c.patience.head_bytes, 4096);
        assert_eq!(c.patience.pending, 8);
        assert_eq!(run(&["--help"], &[]), Ok(Action::Help));
        assert_eq!(run(&["-V"], &[]), Ok(Action::Version));
    }

    #[test]
    fn webrtc_port() {
        assert_eq!(config(&[], &[]).webrtc_port, Some(8000));
        assert_eq!(config(&["--webrtc-port", "0"], &[]).webrtc_port, Some(0));
        assert_eq!(
            config(&[], &[("PICAM_WEBRTC_PORT", "OFF")]).webrtc_port,
            None
        );
        let e = run(&["--webrtc-port", "65536"], &[]).unwrap_err();
        assert!(
            e.0.contains("--webrtc-port") && e.0.contains("65535"),
            "{e}"
        );
    }

    #[test]
    fn h264_bitrate_and_library() {
        assert_eq!(config(&[], &[]).h264_bitrate, None);
        assert_eq!(
            config(&["--h264-bitrate", "1500"], &[]).h264_bitrate,
            Some(1_500_000)
        );
        assert_eq!(
            config(&[], &[("PICAM_H264_BITRATE", "AUTO")]).h264_bitrate,
            None
        );
        for bad in ["199", "50001", "2M", ""] {
            let e = run(&["--h264-bitrate", bad], &[]).unwrap_err();
            assert!(e.0.contains("--h264-bitrate"), "{e}");
            assert!(e.0.contains("200 to 50000"), "{e}");
        }
        assert_eq!(
            config(&["--openh264-library", "/opt/libopenh264.so.7"], &[]).openh264_library,
            Some(PathBuf::from("/opt/libopenh264.so.7"))
        );
    }

    #[test]
    fn h264_encoder_choice() {
        assert_eq!(config(&[], &[]).h264_encoder, EncoderChoice::Auto);
        assert_eq!(
            config(&[], &[("PICAM_H264_ENCODER", "hardware")]).h264_encoder,
            EncoderChoice::Hardware
        );
        assert_eq!(
            config(&["--h264-encoder", "software"], &[]).h264_encoder,
            EncoderChoice::Software
        );
        assert_eq!(
            run(&["--h264-encoder", "gpu"], &[]).unwrap_err().0,
            "invalid value 'gpu' for --h264-encoder: expected auto, hardware or software"
        );
    }

    #[test]
    fn mdns_name_and_switch() {
        assert_eq!(config(&[], &[]).mdns_name.as_deref(), Some("picam"));
        let c = config(
            &["--mdns-name", "garden.local"],
            &[("PICAM_MDNS_NAME", "x")],
        );
        assert_eq!(c.mdns_name.as_deref(), Some("garden"));
        assert_eq!(
            config(&[], &[("PICAM_MDNS_NAME", "shed")])
                .mdns_name
                .as_deref(),
            Some("shed")
        );
        assert_eq!(config(&["--no-mdns"], &[]).mdns_name, None);
        assert_eq!(config(&[], &[("PICAM_NO_MDNS", "1")]).mdns_name, None);
        assert_eq!(config(&[], &[("PICAM_NO_MDNS", "yes")]).mdns_name, None);
        assert!(config(&[], &[("PICAM_NO_MDNS", "0")]).mdns_name.is_some());
        assert!(config(&[], &[("PICAM_NO_MDNS", "")]).mdns_name.is_some());
        // --no-mdns wins over a name, in either order and from either source.
        assert_eq!(
            config(&["--no-mdns", "--mdns-name", "a"], &[]).mdns_name,
            None
        );
        assert_eq!(
            config(&["--mdns-name", "a"], &[("PICAM_NO_MDNS", "true")]).mdns_name,
            None
        );
        let e = run(&["--mdns-name", "my cam"], &[]).unwrap_err().0;
        assert!(
            e.starts_with("invalid value 'my cam' for --mdns-name: expected a host name"),
            "{e}"
        );
        let e = run(&[], &[("PICAM_NO_MDNS", "maybe")]).unwrap_err().0;
        assert_eq!(
            e,
            "invalid value 'maybe' for PICAM_NO_MDNS (--no-mdns): expected 1, true, yes or \
             on to turn it on; 0, false, no, off or empty for off"
        );
        let e = run(&["--no-mdns=1"], &[]).unwrap_err().0;
        assert_eq!(e, "option --no-mdns takes no value");
        for opt in [
            "--mdns-name",
            "--no-mdns",
            "PICAM_MDNS_NAME",
            "PICAM_NO_MDNS",
        ] {
            assert!(HELP.contains(opt), "--help explains {opt}");
        }
    }

    #[test]
    fn camera_orientation_options() {
        for bad in ["45", "-90", "360", "ninety"] {
            let e = run(&["--rotation", bad], &[]).unwrap_err().0;
            assert_eq!(
                e,
                format!("invalid value '{bad}' for --rotation: expected 0, 90, 180 or 270")
            );
        }
        for (degrees, quarter) in [("90", true), ("180", false), ("270", true)] {
            let c = config(&["--rotation", degrees], &[]);
            assert_eq!(c.transform.degrees().to_string(), degrees);
            assert_eq!(c.transform.quarter_turn(), quarter);
        }
        let e = run(&["--vflip=maybe"], &[]).unwrap_err().0;
        assert!(
            e.starts_with("invalid value 'maybe' for --vflip: expected 1"),
            "{e}"
        );
        // Zero and "no" are accepted everywhere: they ask for nothing.
        let c = config(
            &["--rotation", "0", "--hflip=no"],
            &[("PICAM_VFLIP", "off")],
        );
        assert_eq!(c.transform, Transform::default());
        // Every binary takes them: the rpicam source turns the picture too.
        let asked = run(&["--rotation", "180", "--hflip"], &[("PICAM_VFLIP", "yes")]);
        let Ok(Action::Run(c)) = asked else {
            panic!("{asked:?}")
        };
        let want = Transform {
            rotate180: true,
            hflip: true,
            vflip: true,
            ..Transform::default()
        };
        assert_eq!(c.transform, want);
        // Turning and both flips cancel out.
        assert!(want.is_identity());
        assert_eq!(run(&["--list-cameras"], &[]), Ok(Action::ListCameras));
        let t = Transform {
            rotate180: true,
            ..Transform::default()
        };
        assert_eq!(t.flips(), (true, true));
    }

    #[test]
    fn bad_values_name_option_value_and_what_is_accepted() {
        let e = run(&["--fps", "0"], &[]).unwrap_err().0;
        assert_eq!(
            e,
            "invalid value '0' for --fps: expected a whole number from 1 to 240"
        );
        let e = run(&[], &[("PICAM_SIZE", "big")]).unwrap_err().0;
        assert!(
            e.starts_with("invalid value 'big' for PICAM_SIZE (--size): expected"),
            "{e}"
        );
        let e = run(&["--source", "webcam"], &[]).unwrap_err().0;
        assert!(e.contains("'webcam'") && e.contains("exec:COMMAND"), "{e}");
        assert!(run(&["--quality"], &[])
            .unwrap_err()
            .0
            .contains("needs a value"));
        assert!(run(&["--bogus"], &[])
            .unwrap_err()
            .0
            .contains("unknown option '--bogus'"));
        assert!(run(&["stray"], &[])
            .unwrap_err()
            .0
            .contains("unexpected argument"));
        assert!(run(&["--listen", "nowhere"], &[]).is_err());
        // Found by fuzzing: control characters in what the user typed made the message
        // span lines (or drive the terminal); they are shown escaped.
        let e = run(&["--fps", "1\n2"], &[]).unwrap_err().0;
        assert_eq!(
            e,
            "invalid value '1\\n2' for --fps: expected a whole number from 1 to 240"
        );
        let e = run(&[], &[("PICAM_SIZE", "\u{1b}[2J")]).unwrap_err().0;
        assert!(
            e.starts_with("invalid value '\\u{1b}[2J' for PICAM_SIZE"),
            "{e}"
        );
        let e = run(&["-\rv"], &[]).unwrap_err().0;
        assert_eq!(e, "unknown option '-\\rv' (see --help)");
        let e = run(&["stray\n"], &[]).unwrap_err().0;
        assert!(e.starts_with("unexpected argument 'stray\\n'"), "{e}");
        assert!(run(&["--size", "8x8"], &[]).is_err());
        assert_eq!(
            run(&["--source-timeout", "0"], &[]).unwrap_err().0,
            "invalid value '0' for --source-timeout: expected a whole number from 1 to 3600"
        );
        assert_eq!(
            run(&["--encoder", "gpu"], &[]).unwrap_err().0,
            "invalid value 'gpu' for --encoder: expected auto, hardware or software"
        );
        assert_eq!(
            run(&[], &[("PICAM_ISOLATE", "yes")]).unwrap_err().0,
            "invalid value 'yes' for PICAM_ISOLATE (--isolate): expected auto, on or off"
        );
        assert_eq!(
            config(&["--isolate", "off"], &[("PICAM_ISOLATE", "on")]).isolate,
            Isolation::Off
        );
        let e = run(&["--max-header-bytes", "100"], &[]).unwrap_err().0;
        assert_eq!(
            e,
            "invalid value '100' for --max-header-bytes: expected a whole number from 1024 to 1048576"
        );
        assert!(run(&["--header-timeout", "0"], &[]).is_err());
        assert!(run(&["--max-pending", "x"], &[]).is_err());
    }

    #[test]
    fn access_options() {
        let c = config(
            &[
                "--auth",
                "ann:pw",
                "--auth-file=/etc/users",
                "--allow-origin",
                "https://example.org",
            ],
            &[],
        );
        assert_eq!(c.auth, Some(Hidden("ann:pw".into())));
        assert!(!format!("{c:?}").contains("pw"), "Debug hides the password");
        assert_eq!(c.auth_file, Some(PathBuf::from("/etc/users")));
        assert_eq!(c.allow_origin.as_deref(), Some("https://example.org"));
        assert_eq!(
            config(&[], &[("PICAM_AUTH", "bob:x")]).auth.unwrap().0,
            "bob:x"
        );
        assert_eq!(
            config(&["--allow-origin", "*"], &[])
                .allow_origin
                .as_deref(),
            Some("*")
        );
        for bad in ["example.org", "https://a/b", "ftp://x", "https://a b"] {
            assert!(run(&["--allow-origin", bad], &[]).is_err(), "{bad}");
        }
        // A rejected secret is never repeated back.
        let e = run(&["--auth", "s3cr3tNoColon"], &[]).unwrap_err().0;
        assert!(
            e.starts_with("invalid value for --auth: expected USER:PASSWORD"),
            "{e}"
        );
        assert!(!e.contains("s3cr3t"), "{e}");
        let e = run(&[], &[("PICAM_AUTH", "s3cr3t")]).unwrap_err().0;
        assert!(
            e.starts_with("invalid value for PICAM_AUTH (--auth)"),
            "{e}"
        );
        assert!(!e.contains("s3cr3t"), "{e}");
    }

    #[test]
    fn tls_files_go_together() {
        let e = run(&["--tls-cert", "c.pem"], &[]).unwrap_err().0;
        assert!(e.contains("needs --tls-key"), "{e}");
        let e = run(&["--tls-key", "k.pem"], &[]).unwrap_err().0;
        assert!(e.contains("needs --tls-cert"), "{e}");
        let both = run(&["--tls-cert", "c.pem", "--tls-key", "k.pem"], &[]);
        if TLS_BUILT {
            assert!(matches!(both, Ok(Action::Run(c)) if c.tls_cert.is_some()));
        } else {
            assert!(both.unwrap_err().0.contains("built without HTTPS"));
        }
    }

    #[test]
    fn fps_above_120_and_hdr_are_for_camera_modules_only() {
        assert_eq!(config(&["--fps", "206"], &[]).fps, 206);
        assert_eq!(
            config(&["--source", "rpicam", "--fps", "240"], &[]).fps,
            240
        );
        assert!(config(&["--source", "libcamera", "--hdr"], &[]).hdr);
        assert!(config(&[], &[("PICAM_HDR", "on")]).hdr);
        assert!(!config(&[], &[]).hdr);
        let e = run(&["--source", "test", "--fps", "121"], &[])
            .unwrap_err()
            .0;
        assert_eq!(
            e,
            "--fps 121: above 120 only for camera modules (the rpicam and libcamera \
             sources), whose sensor mode may allow it; source 'test' takes at most 120"
        );
        assert!(config(&["--source", "test", "--fps", "120"], &[]).fps == 120);
        let e = run(&["--source", "v4l2:/dev/video0", "--hdr"], &[])
            .unwrap_err()
            .0;
        assert!(e.contains("source 'v4l2:/dev/video0' has none"), "{e}");
        assert!(config(&["--source", "rpicam", "--noir"], &[]).noir);
        let e = run(&["--source", "test", "--noir"], &[]).unwrap_err().0;
        assert!(e.starts_with("--noir chooses libcamera's tuning"), "{e}");
        assert!(run(&["--fps", "241"], &[])
            .unwrap_err()
            .0
            .contains("from 1 to 240"));
    }

    #[test]
    fn always_on_is_a_switch() {
        assert!(!config(&[], &[]).always_on);
        assert!(config(&["--always-on"], &[]).always_on);
        assert!(config(&[], &[("PICAM_ALWAYS_ON", "1")]).always_on);
        assert!(!config(&["--always-on=no"], &[("PICAM_ALWAYS_ON", "yes")]).always_on);
        let e = run(&["--always-on=sometimes"], &[]).unwrap_err().0;
        assert!(e.contains("--always-on"), "{e}");
    }

    #[test]
    fn state_dir_from_systemd_unless_given() {
        assert_eq!(config(&[], &[]).state_dir, None);
        let from_systemd = [("STATE_DIRECTORY", "/var/lib/picam-stream:/var/lib/other")];
        assert_eq!(
            config(&[], &from_systemd).state_dir,
            Some(PathBuf::from("/var/lib/picam-stream"))
        );
        let with_var = [
            ("STATE_DIRECTORY", "/var/lib/picam-stream"),
            ("PICAM_STATE_DIR", "/srv/cam"),
        ];
        assert_eq!(
            config(&[], &with_var).state_dir,
            Some(PathBuf::from("/srv/cam"))
        );
        assert_eq!(
            config(&["--state-dir", "/tmp/s"], &with_var).state_dir,
            Some(PathBuf::from("/tmp/s"))
        );
        assert_eq!(config(&["--state-dir=off"], &from_systemd).state_dir, None);
        assert_eq!(config(&[], &[("PICAM_STATE_DIR", "off")]).state_dir, None);
        let e = run(&["--state-dir", ""], &[]).unwrap_err().0;
        assert!(e.contains("--state-dir") && e.contains("expected a"), "{e}");
        let help = HELP.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            help.contains("default $STATE_DIRECTORY, else off"),
            "{help}"
        );
    }

    #[test]
    fn controls_are_on_unless_switched_off() {
        assert!(config(&[], &[]).controls_allowed);
        assert!(!config(&["--controls", "off"], &[]).controls_allowed);
        assert!(!config(&[], &[("PICAM_CONTROLS", "no")]).controls_allowed);
        assert!(config(&["--controls=on"], &[("PICAM_CONTROLS", "off")]).controls_allowed);
        let e = run(&["--controls", "maybe"], &[]).unwrap_err().0;
        assert!(e.contains("--controls"), "{e}");
    }

    /// The defaults as they were before the option table gave them: behaviour kept.
    #[test]
    fn every_default_reads_through_its_own_option() {
        for opt in OPTIONS {
            if let Some(default) = opt.default {
                let mut c = Config::default();
                assert_eq!(opt.read(&mut c, default), Ok(()), "{}", opt.flag);
                assert_eq!(c, Config::default(), "{} {default}", opt.flag);
            }
        }
        let want = Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 8000)),
            source: SourceSpec::Auto,
            width: 640,
            height: 480,
            fps: 30,
            quality: 80,
            encoder: EncoderChoice::Auto,
            encode_workers: EncodeWorkers::Auto,
            max_clients: 100,
            max_clients_per_address: 10,
            source_timeout: 5,
            mdns_name: Some("picam".to_string()),
            auth: None,
            auth_file: None,
            tls_cert: None,
            tls_key: None,
            allow_origin: None,
            patience: Patience {
                head: Duration::from_secs(10),
                idle: Duration::from_secs(15),
                head_bytes: 16384,
                pending: 64,
            },
            transform: Transform::default(),
            isolate: Isolation::Auto,
            always_on: false,
            controls_allowed: true,
            state_dir: None,
            h264_bitrate: None,
            openh264_library: None,
            h264_encoder: EncoderChoice::Auto,
            webrtc_port: Some(8000),
            hdr: false,
            noir: false,
        };
        assert_eq!(Config::default(), want);
        assert_eq!(Config::default().patience, Patience::default());
    }

    #[test]
    fn every_option_is_defined_once_and_shown_in_help() {
        for (i, opt) in OPTIONS.iter().enumerate() {
            for other in &OPTIONS[i + 1..] {
                assert_ne!(opt.flag, other.flag);
                assert_ne!(opt.var, other.var);
            }
            assert!(opt.var.starts_with("PICAM_"), "{}", opt.var);
            let entry = opt.help_entry();
            assert!(
                HELP.contains(&entry),
                "--help has the entry of {}",
                opt.flag
            );
            let flat = entry.split_whitespace().collect::<Vec<_>>().join(" ");
            for said in [
                opt.flag,
                opt.var,
                opt.default_shown(),
                &opt.accepted(),
                opt.help,
            ] {
                assert!(flat.contains(said), "--help on {} says {said}", opt.flag);
            }
            for (choice, meaning) in opt.choices {
                assert!(flat.contains(&format!("{choice} {meaning}")), "{choice}");
                // A placeholder (`file:PATH`) filled in, an optional part (`[:INDEX]`) left out.
                let example = choice.split('[').next().unwrap_or(choice);
                let example = match example.split_once(':') {
                    Some((kind, rest)) if rest.chars().all(|c| c.is_ascii_uppercase()) => {
                        format!("{kind}:0")
                    }
                    _ => example.to_string(),
                };
                let mut c = Config::default();
                assert_eq!(opt.read(&mut c, &example), Ok(()), "{} {example}", opt.flag);
            }
            if let Reader::Number { min, max, .. } = opt.reader {
                let mut c = Config::default();
                assert!(opt.read(&mut c, &min.to_string()).is_ok());
                assert!(opt.read(&mut c, &max.to_string()).is_ok());
                assert!(opt.read(&mut c, &(max + 1).to_string()).is_err());
                if min > 0 {
                    assert!(opt.read(&mut c, &(min - 1).to_string()).is_err());
                }
            }
        }
        for (flags, _, action) in COMMANDS {
            for flag in *flags {
                assert!(HELP.contains(flag), "--help lists {flag}");
                assert_eq!(run(&[flag], &[]).as_ref(), Ok(action));
            }
        }
        for line in HELP.lines().filter(|line| line.starts_with("  --")) {
            assert!(line.len() <= HELP_WIDTH, "{line}");
        }
    }

    /// Every switch takes the same words, on the command line and in its variable.
    #[test]
    fn one_set_of_switch_words() {
        let switches: Vec<&Opt> = OPTIONS.iter().filter(|opt| opt.is_switch()).collect();
        assert_eq!(switches.len(), 6);
        let no_mdns = |c: &Config| c.mdns_name.is_none();
        let always_on = |c: &Config| c.always_on;
        let hflip = |c: &Config| c.transform.hflip;
        let vflip = |c: &Config| c.transform.vflip;
        let hdr = |c: &Config| c.hdr;
        let noir = |c: &Config| c.noir;
        type IsOn = fn(&Config) -> bool;
        let cases: [(&str, &str, IsOn); 6] = [
            ("--no-mdns", "PICAM_NO_MDNS", no_mdns),
            ("--always-on", "PICAM_ALWAYS_ON", always_on),
            ("--hflip", "PICAM_HFLIP", hflip),
            ("--vflip", "PICAM_VFLIP", vflip),
            ("--hdr", "PICAM_HDR", hdr),
            ("--noir", "PICAM_NOIR", noir),
        ];
        for (flag, var, is_on) in cases {
            assert!(switches
                .iter()
                .any(|opt| opt.flag == flag && opt.var == var));
            assert!(is_on(&config(&[flag], &[])), "{flag}");
            assert!(!is_on(&config(&[], &[])), "{flag}");
            for word in ["1", "true", "yes", "on", "ON", "Yes"] {
                assert!(is_on(&config(&[], &[(var, word)])), "{var}={word}");
                if flag != "--no-mdns" {
                    let arg = format!("{flag}={word}");
                    assert!(is_on(&config(&[&arg], &[])), "{arg}");
                }
            }
            for word in ["0", "false", "no", "off", "OFF", ""] {
                assert!(!is_on(&config(&[], &[(var, word)])), "{var}={word}");
                if flag != "--no-mdns" {
                    let arg = format!("{flag}={word}");
                    assert!(!is_on(&config(&[&arg], &[(var, "1")])), "{arg}");
                }
            }
            let e = run(&[], &[(var, "maybe")]).unwrap_err().0;
            assert_eq!(
                e,
                format!(
                    "invalid value 'maybe' for {var} ({flag}): expected 1, true, yes or on \
                     to turn it on; 0, false, no, off or empty for off"
                )
            );
        }
    }

    /// The README's option table is made from [`OPTIONS`]; this fails when it is stale
    /// and rewrites it with `PICAM_WRITE_README=1`.
    #[test]
    fn readme_option_table_is_current() {
        const BEGIN: &str = "<!-- options-table:begin -->\n";
        const END: &str = "<!-- options-table:end -->";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
        let readme = std::fs::read_to_string(path).expect("README.md");
        let (Some(begin), Some(end)) = (readme.find(BEGIN), readme.find(END)) else {
            panic!("README.md has no {BEGIN:?} ... {END:?} markers around its option table");
        };
        let start = begin + BEGIN.len();
        assert!(start <= end, "README.md: {END:?} comes before {BEGIN:?}");
        let table = readme_option_table();
        if readme[start..end] == table {
            return;
        }
        if std::env::var_os("PICAM_WRITE_README").is_some() {
            let written = format!("{}{table}{}", &readme[..start], &readme[end..]);
            std::fs::write(path, written).expect("README.md written");
            return;
        }
        panic!(
            "README.md's option table (between its options-table markers) is not the one \
             made from OPTIONS in src/config.rs; rewrite it with:\n    \
             PICAM_WRITE_README=1 cargo test --lib readme_option_table"
        );
    }

    /// The packaged settings files (Debian's /etc/default file, the SD card's
    /// picam.txt) name only variables that exist and show the table's defaults.
    #[test]
    fn packaged_settings_files_agree_with_the_table() {
        let files = [
            "debian/picam-stream.default",
            "buildroot-package/package/picam-stream/picam.txt",
        ];
        for file in files {
            let path = format!("{}/{file}", env!("CARGO_MANIFEST_DIR"));
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let mut seen = 0;
            for line in text.lines() {
                let line = line.trim_start_matches('#').trim();
                let Some((var, value)) = line.split_once('=') else {
                    continue;
                };
                if !var.starts_with("PICAM_") || var.contains(' ') {
                    continue;
                }
                seen += 1;
                if var == crate::source::rpicam::PROGRAM_VAR {
                    continue;
                }
                let Some(opt) = OPTIONS.iter().find(|opt| opt.var == var) else {
                    panic!("{file}: {var} is no option's variable");
                };
                let value = value.trim_matches(['"', '\'']);
                if opt.is_switch() {
                    assert!(parse_switch(value).is_ok(), "{file}: {line}");
                } else {
                    assert_eq!(
                        Some(value),
                        opt.default,
                        "{file}: {line} is not the default"
                    );
                }
            }
            assert!(seen > 0, "{file} names no PICAM_ variable");
        }
    }
}
