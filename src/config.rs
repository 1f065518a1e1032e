//! Command line and environment: every option has a `--flag` and a `PICAM_*` variable.
//!
//! Variables are read first and flags override them, so an init script can set defaults
//! in the environment and a person can still override one on the command line. A bad
//! value is reported in one line naming the option, the value and what is accepted.

use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::source::Isolation;
use std::time::Duration;

use crate::net::Patience;
use crate::picture::{EncoderChoice, Transform};
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
    fn default() -> Config {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 8000)),
            source: SourceSpec::Auto,
            width: 640,
            height: 480,
            fps: 30,
            quality: 80,
            encoder: EncoderChoice::Auto,
            max_clients: 100,
            max_clients_per_address: 10,
            source_timeout: 5,
            mdns_name: Some(crate::mdns::DEFAULT_NAME.to_string()),
            auth: None,
            auth_file: None,
            tls_cert: None,
            tls_key: None,
            allow_origin: None,
            patience: Patience::default(),
            transform: Transform::default(),
            isolate: Isolation::Auto,
            always_on: false,
        }
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

/// One option: its flag, its variable, and how a value changes the config.
struct Opt {
    flag: &'static str,
    var: &'static str,
    /// A switch takes no value on the command line (`--hflip`, or `--hflip=no`); its
    /// variable takes 1/0, yes/no, true/false, on/off.
    switch: bool,
    apply: fn(&mut Config, &str) -> Result<(), String>,
    /// The value is a secret: error messages do not repeat it.
    secret: bool,
}

/// True when this binary was built with the libcamera source.
pub const HAS_LIBCAMERA: bool = cfg!(feature = "libcamera");

const OPTIONS: &[Opt] = &[
    Opt {
        flag: "--listen",
        var: "PICAM_LISTEN",
        switch: false,
        apply: |c, v| {
            c.listen = parse_listen(v)?;
            Ok(())
        },
        secret: false,
    },
    Opt {
        flag: "--source",
        var: "PICAM_SOURCE",
        switch: false,
        apply: |c, v| {
            c.source = v.parse()?;
            Ok(())
        },
        secret: false,
    },
    Opt {
        flag: "--size",
        var: "PICAM_SIZE",
        switch: false,
        apply: |c, v| {
            (c.width, c.height) = parse_size(v)?;
            Ok(())
        },
        secret: false,
    },
    Opt {
        flag: "--fps",
        var: "PICAM_FPS",
        switch: false,
        apply: |c, v| {
            c.fps = parse_number(v, 1, 120)? as u32;
            Ok(())
        },
        secret: false,
    },
    Opt {
        flag: "--quality",
        var: "PICAM_QUALITY",
        switch: false,
        apply: |c, v| {
            c.quality = parse_number(v, 1, 100)? as u8;
            Ok(())
        },
        secret: false,
    },
    Opt {
        flag: "--encoder",
        var: "PICAM_ENCODER",
        switch: false,
        apply: |c, v| {
            c.encoder = v.parse()?;
            Ok(())
        },
        secret: false,
    },
    Opt {
        flag: "--max-clients",
        var: "PICAM_MAX_CLIENTS",
        switch: false,
        apply: |c, v| {
            c.max_clients = parse_number(v, 0, 10_000)? as usize;
            Ok(())
        },
        secret: false,
    },
    Opt {
        flag: "--max-clients-per-address",
        var: "PICAM_MAX_CLIENTS_PER_ADDRESS",
        switch: false,
        apply: |c, v| {
            c.max_clients_per_address = parse_number(v, 0, 10_000)? as usize;
            Ok(())
        },
        secret: false,
    },
    Opt {
        flag: "--auth",
        var: "PICAM_AUTH",
        switch: false,
        apply: |c, v| {
            let mut check = crate::auth::Credentials::default();
            check.add_plain(v)?;
            c.auth = Some(Hidden(v.to_string()));
            Ok(())
        },
        secret: true,
    },
    Opt {
        flag: "--auth-file",
        var: "PICAM_AUTH_FILE",
        switch: false,
        apply: |c, v| {
            c.auth_file = Some(parse_path(v)?);
            Ok(())
        },
        secret: false,
    },
    Opt {
        flag: "--tls-cert",
        var: "PICAM_TLS_CERT",
        switch: false,
        apply: |c, v| {
            c.tls_cert = Some(parse_path(v)?);
            Ok(())
        },
        secret: false,
    },
    Opt {
        flag: "--tls-key",
        var: "PICAM_TLS_KEY",
        switch: false,
        apply: |c, v| {
            c.tls_key = Some(parse_path(v)?);
            Ok(())
        },
        secret: false,
    },
    Opt {
        flag: "--allow-origin",
        var: "PICAM_ALLOW_ORIGIN",
        switch: false,
        apply: |c, v| {
            c.allow_origin = Some(parse_origin(v)?);
            Ok(())
        },
        secret: false,
    },
    Opt {
        flag: "--source-timeout",
        var: "PICAM_SOURCE_TIMEOUT",
        switch: false,
        apply: |c, v| {
            c.source_timeout = parse_number(v, 1, 3600)? as u32;
            Ok(())
        },
        secret: false,
    },
    Opt {
        flag: "--mdns-name",
        var: "PICAM_MDNS_NAME",
        switch: false,
        apply: |c, v| {
            let name = crate::mdns::parse_name(v)?;
            // --no-mdns wins wherever it was given.
            if c.mdns_name.is_some() {
                c.mdns_name = Some(name);
            }
            Ok(())
        },
        secret: false,
    },
    Opt {
        flag: "--header-timeout",
        var: "PICAM_HEADER_TIMEOUT",
        switch: false,
        apply: |c, v| {
            c.patience.head = Duration::from_secs(parse_number(v, 1, 600)?);
            Ok(())
        },
        secret: false,
    },
    Opt {
        flag: "--keepalive-timeout",
        var: "PICAM_KEEPALIVE_TIMEOUT",
        switch: false,
        apply: |c, v| {
            c.patience.idle = Duration::from_secs(parse_number(v, 1, 3600)?);
            Ok(())
        },
        secret: false,
    },
    Opt {
        flag: "--max-header-bytes",
        var: "PICAM_MAX_HEADER_BYTES",
        switch: false,
        apply: |c, v| {
            c.patience.head_bytes = parse_number(v, 1024, 1024 * 1024)? as u32;
            Ok(())
        },
        secret: false,
    },
    Opt {
        flag: "--max-pending",
        var: "PICAM_MAX_PENDING",
        switch: false,
        apply: |c, v| {
            c.patience.pending = parse_number(v, 1, 10_000)? as usize;
            Ok(())
        },
        secret: false,
    },
    Opt {
        flag: "--rotation",
        var: "PICAM_ROTATION",
        switch: false,
        apply: |c, v| {
            c.transform.rotate180 = match v {
                "0" => false,
                "180" => true,
                _ => return Err("expected 0 or 180".into()),
            };
            Ok(())
        },
        secret: false,
    },
    Opt {
        flag: "--hflip",
        var: "PICAM_HFLIP",
        switch: true,
        apply: |c, v| {
            c.transform.hflip = parse_on_off(v)?;
            Ok(())
        },
        secret: false,
    },
    Opt {
        flag: "--vflip",
        var: "PICAM_VFLIP",
        switch: true,
        apply: |c, v| {
            c.transform.vflip = parse_on_off(v)?;
            Ok(())
        },
        secret: false,
    },
    Opt {
        flag: "--isolate",
        var: "PICAM_ISOLATE",
        switch: false,
        apply: |c, v| {
            c.isolate = v.parse()?;
            Ok(())
        },
        secret: false,
    },
    Opt {
        flag: "--always-on",
        var: "PICAM_ALWAYS_ON",
        switch: true,
        apply: |c, v| {
            c.always_on = parse_on_off(v)?;
            Ok(())
        },
        secret: false,
    },
];

/// Options that take no value: `--flag` on the command line, and a variable set to
/// `1`, `true` or `yes` (or `0`, `false`, `no`, empty: not set).
struct Switch {
    flag: &'static str,
    var: &'static str,
    apply: fn(&mut Config),
}

const SWITCHES: &[Switch] = &[Switch {
    flag: "--no-mdns",
    var: "PICAM_NO_MDNS",
    apply: |c| c.mdns_name = None,
}];

fn parse_switch(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" => Ok(true),
        "0" | "false" | "no" | "" => Ok(false),
        _ => Err("expected 1, true or yes to turn it on; 0, false, no or empty for off".into()),
    }
}
/// True when this binary was built with HTTPS support (the `tls` feature).
pub const TLS_BUILT: bool = cfg!(feature = "tls");

/// The `--help` text.
pub const HELP: &str = "\
picam-stream: a live MJPEG stream of a camera for every browser on the network

Usage: picam-stream [OPTIONS]

Open http://<this machine>:8000/ in a browser; the addresses are logged at start-up.

Options (each can also be set by the environment variable shown; the flag wins):
  --listen ADDR:PORT   Address to serve on [PICAM_LISTEN] (default 0.0.0.0:8000;
                       [::]:8000 serves IPv6 and IPv4; a bare PORT means 0.0.0.0:PORT)
  --source SPEC        Where pictures come from [PICAM_SOURCE] (default auto):
                         auto          the first camera found: libcamera's (in
                                       builds with it), a camera module (rpicam),
                                       a USB webcam (v4l2); else the test pattern
                         test          built-in animated test pattern
                         stdin         MJPEG (concatenated JPEGs) on standard input
                         file:PATH     an MJPEG file, looped, paced at --fps
                         exec:COMMAND  run COMMAND with sh, read MJPEG from its output,
                                       restart it (1 s to 30 s pauses) when it exits or
                                       hangs, e.g.
                                       exec:rpicam-vid -t 0 --codec mjpeg -o -
                         v4l2:/dev/videoN
                                       a V4L2 camera (USB webcam); MJPEG is passed
                                       through, YUYV/UYVY/NV12 encoded at --quality
                         rpicam[:INDEX]
                                       a Pi camera module through Raspberry Pi OS's
                                       rpicam-vid (or libcamera-vid; another program
                                       in PICAM_RPICAM_VID), run only while somebody
                                       watches: the first camera or the INDEXth of
                                       --list-cameras (from 0); raw pictures at
                                       --size (width rounded to a multiple of 64,
                                       height to even) and --fps, encoded at --quality
                         libcamera[:INDEX|:ID]
                                       a Pi camera module (in binaries built with
                                       libcamera): the first, the INDEXth of
                                       --list-cameras (from 0) or the one with that ID;
                                       YUV 4:2:0 at --size and --fps, encoded at
                                       --quality; Camera Module 3 focuses continuously
  --size WxH           Picture size for sources that make pictures [PICAM_SIZE]
                       (default 640x480; 16 to 4096 each)
  --fps N              Frames per second for such sources and for file: [PICAM_FPS]
                       (default 30; 1 to 120)
  --quality N          JPEG quality for sources that encode [PICAM_QUALITY]
                       (default 80; 1 to 100)
  --encoder KIND       JPEG encoder for sources that encode [PICAM_ENCODER]
                       (default auto):
                         auto      the hardware encoder when one is found (a V4L2
                                   memory-to-memory node producing JPEG, such as the
                                   Pi Zero to Pi 4's /dev/video31), else software
                         hardware  the hardware encoder; stop at start without one
                         software  always encode on the CPU
                       When the hardware fails, encoding goes on in software;
                       /status says which encoder runs.
  --max-clients N      Streams served at once; one more gets 503 [PICAM_MAX_CLIENTS]
                       (default 100; 0 means no limit)
  --max-clients-per-address N
                       Streams one client address (IPv6: one /64 network) may
                       hold at once, so that one host cannot take every place;
                       one more gets 503 [PICAM_MAX_CLIENTS_PER_ADDRESS]
                       (default 10; 0 means no limit)
  --source-timeout S   Seconds without a good frame after which stdin, exec: and
                       rpicam sources count as broken: viewers see a no-signal
                       picture and a command is stopped and started again
                       [PICAM_SOURCE_TIMEOUT] (default 5; 1 to 3600)
  --mdns-name NAME     Advertise the stream on the local network as
                       http://NAME.local:PORT/ (mDNS, and DNS-SD service _http._tcp
                       for service browsers) [PICAM_MDNS_NAME] (default picam;
                       letters, digits and hyphens); on every interface, or only the
                       --listen address when it is not a wildcard
  --no-mdns            Do not answer mDNS queries at all [PICAM_NO_MDNS=1]
                       (wins over --mdns-name)
  --auth USER:PASSWORD Let in only this user (HTTP Basic) [PICAM_AUTH]; every URL
                       then needs it. Prefer the variable or --auth-file: command
                       lines are visible to other users of the machine
  --auth-file PATH     Let in the users of PATH [PICAM_AUTH_FILE]: one USER:HASH a
                       line (# comments), HASH from htpasswd -nB (bcrypt, $2y$) or
                       openssl passwd -6 / mkpasswd (SHA-crypt, $6$ or $5$); may be
                       combined with --auth. Too many wrong passwords from one address
                       (10 a minute) are answered 429 for the rest of the minute
  --tls-cert PATH      Serve HTTPS instead of HTTP with this PEM certificate (chain)
                       [PICAM_TLS_CERT]; needs --tls-key and a binary built with the
                       tls feature
  --tls-key PATH       The certificate's PEM private key (PKCS#8 or RSA, unencrypted)
                       [PICAM_TLS_KEY]
  --allow-origin ORIGIN
                       Let pages from ORIGIN (or * for any) read the answers with
                       fetch/XHR (CORS): adds Access-Control-Allow-Origin and answers
                       OPTIONS preflights [PICAM_ALLOW_ORIGIN] (default: off)
  --header-timeout SECS
                       Time a client has to send a complete request head (request
                       line and headers), from connecting or from the first byte of
                       a later request; slower ones get 408 [PICAM_HEADER_TIMEOUT]
                       (default 10; 1 to 600)
  --keepalive-timeout SECS
                       An idle connection waiting for its next request, or a client
                       silent in the middle of one, is closed after this long
                       [PICAM_KEEPALIVE_TIMEOUT] (default 15; 1 to 3600)
  --max-header-bytes N Largest request head; a larger one gets 431 and the connection
                       is closed [PICAM_MAX_HEADER_BYTES] (default 16384; 1024 to 1048576)
  --max-pending N      Connections that may wait at once for a complete request; past
                       this the longest waiting are closed [PICAM_MAX_PENDING]
                       (default 64; 1 to 10000)
  --rotation 0|180     Turn a camera module's picture (rpicam and libcamera sources)
                       [PICAM_ROTATION] (default 0)
  --hflip              Mirror a camera module's picture left to right
                       [PICAM_HFLIP=1] (--hflip=no turns it off)
  --vflip              Flip a camera module's picture upside down [PICAM_VFLIP=1]
  --isolate WHEN       Run the source in a process of its own, so that a camera
                       library that crashes or hangs takes only that process down:
                       viewers see the no-signal picture and it is started again
                       (1 s to 30 s pauses) [PICAM_ISOLATE] (default auto):
                         auto  for the libcamera source only
                         on    for test, v4l2 and libcamera sources
                         off   never
  --always-on          Keep the source running with nobody watching [PICAM_ALWAYS_ON=1]
                       (--always-on=no turns it off). By default a camera is
                       closed, the test pattern and a file: sleep, and an exec:
                       command is stopped once nobody has watched for 3 s; the
                       next viewer or snapshot starts it again. stdin is always read
  --list-devices       List V4L2 capture devices: formats, sizes, frame rates
  --list-cameras       List the camera modules: id, model, sensor modes (size, max
                       fps), from libcamera in binaries built with it, else from
                       rpicam-vid --list-cameras
  -h, --help           Print this help
  -V, --version        Print the version

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

/// Reads the environment (through `var`) and then the arguments (without the program name).
pub fn parse<I, V>(args: I, var: V) -> Result<Action, ConfigError>
where
    I: IntoIterator<Item = OsString>,
    V: Fn(&str) -> Option<OsString>,
{
    let mut config = Config::default();
    for opt in OPTIONS {
        if let Some(raw) = var(opt.var) {
            let value = raw.into_string().map_err(|raw| {
                ConfigError(format!(
                    "invalid value {raw:?} for {} ({}): not valid UTF-8",
                    opt.var, opt.flag
                ))
            })?;
            (opt.apply)(&mut config, &value).map_err(|why| {
                let shown = shown(opt, &value);
                ConfigError(format!(
                    "invalid value {shown}for {} ({}): {why}",
                    opt.var, opt.flag
                ))
            })?;
        }
    }
    for switch in SWITCHES {
        if let Some(raw) = var(switch.var) {
            let value = raw.to_string_lossy().into_owned();
            let on = parse_switch(&value).map_err(|why| {
                ConfigError(format!(
                    "invalid value '{value}' for {} ({}): {why}",
                    switch.var, switch.flag
                ))
            })?;
            if on {
                (switch.apply)(&mut config);
            }
        }
    }
    let mut args = args.into_iter();
    while let Some(raw) = args.next() {
        let arg = raw
            .into_string()
            .map_err(|raw| ConfigError(format!("argument {raw:?} is not valid UTF-8")))?;
        match arg.as_str() {
            "-h" | "--help" => return Ok(Action::Help),
            "-V" | "--version" => return Ok(Action::Version),
            "--list-devices" => return Ok(Action::ListDevices),
            "--list-cameras" => return Ok(Action::ListCameras),
            _ => {}
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        if let Some(switch) = SWITCHES.iter().find(|s| s.flag == flag) {
            if inline.is_some() {
                return Err(ConfigError(format!("option {flag} takes no value")));
            }
            (switch.apply)(&mut config);
            continue;
        }
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
        let value = match inline {
            Some(v) => v,
            None if opt.switch => "1".to_string(),
            None => match args.next() {
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
        (opt.apply)(&mut config, &value).map_err(|why| {
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

/// Options that only make sense together, or in a binary built with their feature.
fn check_together(c: &Config) -> Result<(), ConfigError> {
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

/// On or off, for options such as `--hflip=no`.
fn parse_on_off(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Ok(true),
        "0" | "no" | "false" | "off" => Ok(false),
        _ => Err("expected 1, yes, true or on; or 0, no, false or off".into()),
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
            "invalid value 'maybe' for PICAM_NO_MDNS (--no-mdns): expected 1, true or yes \
             to turn it on; 0, false, no or empty for off"
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
        let e = run(&["--rotation", "90"], &[]).unwrap_err().0;
        assert_eq!(e, "invalid value '90' for --rotation: expected 0 or 180");
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
            "invalid value '0' for --fps: expected a whole number from 1 to 120"
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
            "invalid value '1\\n2' for --fps: expected a whole number from 1 to 120"
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
    fn always_on_is_a_switch() {
        assert!(!config(&[], &[]).always_on);
        assert!(config(&["--always-on"], &[]).always_on);
        assert!(config(&[], &[("PICAM_ALWAYS_ON", "1")]).always_on);
        assert!(!config(&["--always-on=no"], &[("PICAM_ALWAYS_ON", "yes")]).always_on);
        let e = run(&["--always-on=sometimes"], &[]).unwrap_err().0;
        assert!(e.contains("--always-on"), "{e}");
    }
}
