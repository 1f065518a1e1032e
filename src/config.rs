//! Command line and environment: every option has a `--flag` and a `PICAM_*` variable.
//!
//! Variables are read first and flags override them, so an init script can set defaults
//! in the environment and a person can still override one on the command line. A bad
//! value is reported in one line naming the option, the value and what is accepted.

use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;

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
    /// 0: no limit.
    pub max_clients: usize,
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
            max_clients: 100,
        }
    }
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Run(Config),
    Help,
    Version,
    /// Print the V4L2 capture devices and what they offer.
    ListDevices,
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
    apply: fn(&mut Config, &str) -> Result<(), String>,
}

const OPTIONS: &[Opt] = &[
    Opt {
        flag: "--listen",
        var: "PICAM_LISTEN",
        apply: |c, v| {
            c.listen = parse_listen(v)?;
            Ok(())
        },
    },
    Opt {
        flag: "--source",
        var: "PICAM_SOURCE",
        apply: |c, v| {
            c.source = v.parse()?;
            Ok(())
        },
    },
    Opt {
        flag: "--size",
        var: "PICAM_SIZE",
        apply: |c, v| {
            (c.width, c.height) = parse_size(v)?;
            Ok(())
        },
    },
    Opt {
        flag: "--fps",
        var: "PICAM_FPS",
        apply: |c, v| {
            c.fps = parse_number(v, 1, 120)? as u32;
            Ok(())
        },
    },
    Opt {
        flag: "--quality",
        var: "PICAM_QUALITY",
        apply: |c, v| {
            c.quality = parse_number(v, 1, 100)? as u8;
            Ok(())
        },
    },
    Opt {
        flag: "--max-clients",
        var: "PICAM_MAX_CLIENTS",
        apply: |c, v| {
            c.max_clients = parse_number(v, 0, 10_000)? as usize;
            Ok(())
        },
    },
];

/// The `--help` text.
pub const HELP: &str = "\
picam-stream: a live MJPEG stream of a camera for every browser on the network

Usage: picam-stream [OPTIONS]

Open http://<this machine>:8000/ in a browser; the addresses are logged at start-up.

Options (each can also be set by the environment variable shown; the flag wins):
  --listen ADDR:PORT   Address to serve on [PICAM_LISTEN] (default 0.0.0.0:8000;
                       [::]:8000 serves IPv6 and IPv4; a bare PORT means 0.0.0.0:PORT)
  --source SPEC        Where pictures come from [PICAM_SOURCE] (default auto):
                         auto          the first camera found, else the test pattern
                         test          built-in animated test pattern
                         stdin         MJPEG (concatenated JPEGs) on standard input
                         file:PATH     an MJPEG file, looped, paced at --fps
                         exec:COMMAND  run COMMAND with sh, read MJPEG from its output,
                                       restart it (1 s to 30 s pauses) when it exits, e.g.
                                       exec:rpicam-vid -t 0 --codec mjpeg -o -
                         v4l2:/dev/videoN
                                       a V4L2 camera (USB webcam); MJPEG is passed
                                       through, YUYV/UYVY/NV12 encoded at --quality
                         libcamera[:INDEX|:ID]
                                       a Pi camera module, in binaries built with libcamera
  --size WxH           Picture size for sources that make pictures [PICAM_SIZE]
                       (default 640x480; 16 to 4096 each)
  --fps N              Frames per second for such sources and for file: [PICAM_FPS]
                       (default 30; 1 to 120)
  --quality N          JPEG quality for sources that encode [PICAM_QUALITY]
                       (default 80; 1 to 100)
  --max-clients N      Streams served at once; one more gets 503 [PICAM_MAX_CLIENTS]
                       (default 100; 0 means no limit)
  --list-devices       List V4L2 capture devices: formats, sizes, frame rates
  -h, --help           Print this help
  -V, --version        Print the version

Endpoints:
  /, /index.html                   viewer page (/ redirects to /index.html)
  /stream.mjpg                     MJPEG stream, classic parts with Content-Length
  /stream.mjpg?advance_headers=1   MJPEG stream that browsers show without a frame's delay
  /snapshot.jpg                    newest frame as a JPEG
  /status                          JSON: source, size, fps, frames, clients, uptime
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
                ConfigError(format!(
                    "invalid value '{}' for {} ({}): {why}",
                    printable(&value),
                    opt.var,
                    opt.flag
                ))
            })?;
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
            _ => {}
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
        let value = match inline {
            Some(v) => v,
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
            ConfigError(format!(
                "invalid value '{}' for {flag}: {why}",
                printable(&value)
            ))
        })?;
    }
    Ok(Action::Run(config))
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
            Ok(Action::Run(c)) => c,
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
            &[("PICAM_FPS", "5"), ("PICAM_QUALITY", "60")],
        );
        assert_eq!(c.fps, 15, "the flag wins over the variable");
        assert_eq!(c.quality, 60, "the variable applies when no flag is given");
        assert_eq!((c.width, c.height), (1280, 720));
        assert_eq!(c.listen, "[::]:9000".parse().unwrap());
        assert_eq!(c.source, SourceSpec::Stdin);
        assert_eq!(config(&["--listen", "8080"], &[]).listen.port(), 8080);
        assert_eq!(run(&["--help"], &[]), Ok(Action::Help));
        assert_eq!(run(&["-V"], &[]), Ok(Action::Version));
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
    }
}
