//! The `rpicam[:INDEX]` source: a Pi camera module through the system's `rpicam-vid`,
//! used as a helper that sends raw pictures, which this source encodes itself.
//!
//! A binary linked against one libcamera breaks at the next Raspberry Pi OS upgrade,
//! since libcamera changes its soname with every release. `rpicam-vid` (Raspberry Pi
//! OS's rpicam-apps) always matches the system's libcamera, and its command line stays
//! the same across libcamera versions, so this source needs no libcamera of its own:
//!
//! * It runs `rpicam-vid -n -t 0 --codec yuv420 --width W --height H --framerate F
//!   [--camera N] [--rotation 180 | --hflip | --vflip] --flush -o -` under the `exec:`
//!   source's guardian ([`exec`](super::exec)), in a process group of its own, only
//!   while somebody watches or a snapshot asks, plus a linger of [`LINGER`].
//! * Its output is I420 pictures back to back. The width asked for is a multiple of 64
//!   and the height even ([`geometry`]), so that rows carry no padding and every
//!   picture is exactly W×H×3/2 bytes. Pictures are read into two buffers kept for the
//!   whole run; when more than one is waiting, the newest is encoded and the older
//!   ones are skipped, so a slow encoder shows the present rather than a backlog.
//! * Pictures go to the [`JpegEncoder`]: the Pi's hardware JPEG encoder when there is
//!   one (`--encoder`), else software.
//! * When `rpicam-vid` is missing, exits or sends no full picture for
//!   `--source-timeout`, viewers see the no-signal picture, one log line says what to
//!   do (install it, connect the camera, close the program holding it), and it is
//!   started again after the usual growing pause ([`Backoff`](super::backoff::Backoff)).
//!
//! The program is `rpicam-vid`, or `libcamera-vid` (its name on older Raspberry Pi
//! OS) when there is no `rpicam-vid`; [`PROGRAM_VAR`] names another.

use std::ffi::OsString;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::exec;
use super::rpicam_controls::RpicamControls;
use super::sensor_modes::{self, ModeChoice, SensorMode};
use super::supervise::{supervise, Ended, Restart};
use super::{FrameSink, LINGER};
use crate::controls::ControlBoard;
use crate::encoder::{JpegEncoder, RawLayout};
use crate::picture::Settings;
use crate::ratelog::{self, RateLimit};

/// The variable that names the program to run instead of `rpicam-vid`.
pub const PROGRAM_VAR: &str = "PICAM_RPICAM_VID";

/// The programs looked for on `PATH`, in order, when [`PROGRAM_VAR`] is not set.
const PROGRAMS: [&str; 2] = ["rpicam-vid", "libcamera-vid"];

/// How long a helper whose output ended may take to exit before it is stopped.
const EXIT_GRACE: Duration = Duration::from_secs(1);

/// How long to wait for the last of the helper's error output once it has ended.
const STDERR_GRACE: Duration = Duration::from_millis(500);

/// Lines of the helper's error output kept to explain a failure.
const STDERR_LINES: usize = 12;

/// Longest line of error output kept (the rest of a longer one is dropped).
const STDERR_LINE_MAX: usize = 400;

/// How often the reading loop looks at the viewers and the clock while no byte comes.
const TICK: Duration = Duration::from_millis(100);

/// How long camera controls must stay unchanged before the helper is started again
/// with them, so that a slider being dragged restarts it once rather than at every step.
const CONTROLS_SETTLE: Duration = Duration::from_millis(400);

/// What to do when the program is missing.
const INSTALL_HINT: &str =
    "install it with `sudo apt install rpicam-apps-lite` (Raspberry Pi OS), or choose another --source";

/// The picture size asked of `rpicam-vid` for `--size width`x`height`: the width the
/// nearest multiple of 64 (ties going down), the height the nearest even number
/// (odd ones going up), so that its rows have no padding.
pub fn geometry(width: u16, height: u16) -> (u16, u16) {
    let w = ((u32::from(width) + 31) / 64 * 64).clamp(64, 4096);
    let h = (u32::from(height).div_ceil(2) * 2).clamp(2, 4096);
    (w as u16, h as u16)
}

/// The arguments (without the program) that make `rpicam-vid` send raw pictures at
/// `size` to its standard output, from the sensor `mode` when one was chosen, with
/// `extra` ones (the tuning file, the camera controls) before the output's.
pub fn arguments(
    settings: &Settings,
    size: (u16, u16),
    camera: Option<u32>,
    mode: Option<&SensorMode>,
    extra: &[String],
) -> Vec<String> {
    let mut args: Vec<String> = ["-n", "-t", "0", "--codec", "yuv420"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for (flag, value) in [
        ("--width", size.0.to_string()),
        ("--height", size.1.to_string()),
        ("--framerate", settings.fps.to_string()),
    ] {
        args.push(flag.to_string());
        args.push(value);
    }
    if let Some(mode) = mode {
        args.push("--mode".to_string());
        args.push(mode.rpicam_mode());
    }
    if settings.hdr {
        args.push("--hdr".to_string());
    }
    if let Some(index) = camera {
        args.push("--camera".to_string());
        args.push(index.to_string());
    }
    // A half turn is both flips: the net mirroring needs at most one option.
    match settings.transform.flips() {
        (true, true) => args.extend(["--rotation".to_string(), "180".to_string()]),
        (true, false) => args.push("--hflip".to_string()),
        (false, true) => args.push("--vflip".to_string()),
        (false, false) => {}
    }
    args.extend_from_slice(extra);
    args.extend(["--flush", "-o", "-"].iter().map(|s| s.to_string()));
    args
}

/// The source's description for `/status`.
pub fn describe(camera: Option<u32>, settings: &Settings, encoder: &JpegEncoder) -> String {
    let (w, h) = geometry(settings.width, settings.height);
    let which = camera.map_or(String::new(), |i| format!(" {i}"));
    let kind = if encoder.is_hardware() {
        "hardware"
    } else {
        "software"
    };
    format!(
        "camera module{which} through rpicam-vid {w}x{h} at {} fps, {kind} JPEG encoder",
        settings.fps
    )
}

/// The helper to run: its path and the name log lines give it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Program {
    path: PathBuf,
    name: String,
}

/// Finds the program: `named` ([`PROGRAM_VAR`]) when set, else the first of
/// [`PROGRAMS`] on `search` (`PATH`). The error says what to do.
fn find_program(named: Option<OsString>, search: Option<OsString>) -> Result<Program, String> {
    let found = |path: PathBuf| {
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        Program { path, name }
    };
    let named = named.filter(|n| !n.is_empty());
    let wanted: Vec<OsString> = match &named {
        Some(n) => vec![n.clone()],
        None => PROGRAMS.iter().map(OsString::from).collect(),
    };
    for want in &wanted {
        let want = Path::new(want);
        if want.components().count() > 1 {
            if is_executable(want) {
                return Ok(found(want.to_path_buf()));
            }
            continue;
        }
        let dirs = search.as_deref().map(std::env::split_paths);
        for dir in dirs.into_iter().flatten() {
            let candidate = dir.join(want);
            if is_executable(&candidate) {
                return Ok(found(candidate));
            }
        }
    }
    Err(match named {
        Some(n) => format!(
            "{} (named by {PROGRAM_VAR}) not found: {INSTALL_HINT}",
            n.to_string_lossy()
        ),
        None => format!("rpicam-vid not found: {INSTALL_HINT}"),
    })
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The program this machine would run.
fn this_program() -> Result<Program, String> {
    find_program(std::env::var_os(PROGRAM_VAR), std::env::var_os("PATH"))
}

/// Whether this machine has the helper; the error says how to install it.
pub fn helper_found() -> Result<(), String> {
    this_program().map(|_| ())
}

/// The text of `--list-cameras` in a binary without libcamera: what the helper's own
/// `--list-cameras` prints.
pub fn list_cameras() -> Result<String, String> {
    let program = this_program().map_err(|e| format!("cannot list cameras: {e}"))?;
    let out = Command::new(&program.path)
        .arg("--list-cameras")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", program.path.display()))?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    if text.trim().is_empty() {
        return Err(format!(
            "{} --list-cameras printed nothing ({})",
            program.name, out.status
        ));
    }
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

/// The sensor mode for `settings` on `camera` (the first when `None`) among the modes
/// of the helper's `listing` (its `--list-cameras`); `None` when the listing does not
/// show that camera, and the helper chooses. Refuses a frame rate no mode gives and
/// `--hdr` on a camera without sensor HDR.
pub fn choose_mode(
    listing: &str,
    camera: Option<u32>,
    settings: &Settings,
) -> Result<Option<ModeChoice>, String> {
    let index = camera.unwrap_or(0);
    let cameras = sensor_modes::parse_rpicam_list(listing);
    let Some(found) = cameras.iter().find(|c| c.index == index) else {
        return Ok(None);
    };
    let want = (u32::from(settings.width), u32::from(settings.height));
    let choice = if settings.hdr {
        if !found.has_sensor_hdr() {
            return Err(format!(
                "--hdr: camera {index} is an {}, which has no sensor HDR; --hdr is for the \
                 Camera Module 3 (imx708): leave it off",
                found.model
            ));
        }
        sensor_modes::choose(
            &[sensor_modes::imx708_hdr_mode()],
            want,
            settings.fps,
            &format!("the {} with --hdr", found.model),
        )?
    } else {
        sensor_modes::choose(
            &found.modes,
            want,
            settings.fps,
            &format!("the {}", found.model),
        )?
    };
    Ok(Some(choice))
}

/// `args` as one `sh` command line that runs the program in the shell's place.
fn shell_command(program: &Path, args: &[String]) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let mut line = format!("exec {}", quote(&program.to_string_lossy()));
    for arg in args {
        line.push(' ');
        line.push_str(&quote(arg));
    }
    line
}

// ------------------------------------------------------------------ error output

/// The last lines of the helper's error output, read by a thread of their own.
struct StderrTail {
    lines: Arc<Mutex<Vec<String>>>,
    done: mpsc::Receiver<()>,
}

impl StderrTail {
    fn start(stderr: ChildStderr, name: String) -> StderrTail {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tell_done, done) = mpsc::channel();
        let kept = lines.clone();
        let started = std::thread::Builder::new()
            .name("rpicam-stderr".into())
            .spawn(move || {
                read_lines(stderr, |line| {
                    log::debug!("{name}: {line}");
                    let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
                    if kept.len() == STDERR_LINES {
                        kept.remove(0);
                    }
                    kept.push(line);
                });
                let _ = tell_done.send(());
            });
        if let Err(e) = started {
            log::warn!("cannot read the camera helper's error output: {e}");
        }
        StderrTail { lines, done }
    }

    /// The kept lines, once the output has ended or `within` has passed.
    fn finish(&self, within: Duration) -> Vec<String> {
        let _ = self.done.recv_timeout(within);
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Calls `each` with every line of `from` (lossy UTF-8, trimmed, at most
/// [`STDERR_LINE_MAX`] bytes of each) until it ends.
fn read_lines(mut from: impl Read, mut each: impl FnMut(String)) {
    let mut chunk = [0u8; 4096];
    let mut line: Vec<u8> = Vec::with_capacity(STDERR_LINE_MAX);
    let mut emit = |line: &mut Vec<u8>| {
        let text = String::from_utf8_lossy(line).trim().to_string();
        line.clear();
        if !text.is_empty() {
            each(text);
        }
    };
    loop {
        let n = match from.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        for &b in &chunk[..n] {
            if b == b'\n' {
                emit(&mut line);
            } else if line.len() < STDERR_LINE_MAX {
                line.push(b);
            }
        }
    }
    emit(&mut line);
}

/// A line of libcamera's log without its time stamp and process id
/// (`[0:00:01.234] [1234]  ERROR ...` becomes `ERROR ...`), so that the same failure
/// reads the same each time.
fn without_stamps(line: &str) -> &str {
    let mut rest = line.trim();
    for _ in 0..2 {
        match rest.strip_prefix('[').and_then(|r| r.split_once(']')) {
            Some((_, after)) => rest = after.trim_start(),
            None => break,
        }
    }
    rest
}

/// One line saying why the helper `name` failed and what to do, from how it ended
/// (`how`, e.g. "exited (exit status: 255)") and the last lines of its error output.
fn diagnose(name: &str, how: &str, stderr: &[String]) -> String {
    if let Some(known) = known_problem(name, stderr) {
        return known;
    }
    match last_said(stderr) {
        Some(last) => format!("{name} {how}: {last}"),
        None => format!("{name} {how}"),
    }
}

/// The problems the helper's error output names that have a known remedy, as one line
/// saying what to do.
fn known_problem(name: &str, stderr: &[String]) -> Option<String> {
    let said = |needle: &str| {
        stderr
            .iter()
            .any(|l| l.to_ascii_lowercase().contains(needle))
    };
    if said("no cameras available") {
        return Some(format!(
            "{name} sees no camera: check the ribbon cable and that the camera is enabled \
             (camera_auto_detect=1 in /boot/firmware/config.txt), then reboot"
        ));
    }
    if said("device or resource busy") || said("failed to acquire camera") {
        return Some(
            "the camera is in use by another program (close it: e.g. \
             `sudo fuser -v /dev/media*`)"
                .to_string(),
        );
    }
    None
}

/// The last line of error output that says something.
fn last_said(stderr: &[String]) -> Option<&str> {
    stderr
        .iter()
        .rev()
        .map(|l| without_stamps(l))
        .find(|l| !l.is_empty())
}

// ------------------------------------------------------------------ pictures

/// Two picture buffers, kept for the whole source: one being filled from the pipe,
/// one holding the newest complete picture until it is encoded.
struct Pictures {
    buffers: [Vec<u8>; 2],
    /// Index of the buffer being filled, and how much of it is.
    filling: usize,
    filled: usize,
    /// A complete picture waits in the other buffer.
    ready: bool,
}

impl Pictures {
    fn new(len: usize) -> Pictures {
        Pictures {
            buffers: [vec![0; len], vec![0; len]],
            filling: 0,
            filled: 0,
            ready: false,
        }
    }

    fn reset(&mut self) {
        self.filled = 0;
        self.ready = false;
    }

    /// Reads what `from` has into the buffer being filled: `Ok(None)` at the end of the
    /// output, else whether the read completed a picture.
    fn read_from(&mut self, from: &mut impl Read) -> io::Result<Option<Completed>> {
        let buffer = &mut self.buffers[self.filling];
        let n = match from.read(&mut buffer[self.filled..]) {
            Ok(0) => return Ok(None),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(Some(Completed::No)),
            Err(e) => return Err(e),
        };
        self.filled += n;
        if self.filled < buffer.len() {
            return Ok(Some(Completed::No));
        }
        let replaced = self.ready;
        self.filling = 1 - self.filling;
        self.filled = 0;
        self.ready = true;
        Ok(Some(if replaced {
            Completed::Replacing
        } else {
            Completed::Yes
        }))
    }

    /// The newest complete picture, taken (it will not be returned again).
    fn take(&mut self) -> Option<&[u8]> {
        if !std::mem::take(&mut self.ready) {
            return None;
        }
        Some(&self.buffers[1 - self.filling])
    }
}

/// What one read did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Completed {
    No,
    Yes,
    /// A picture was completed in place of one not yet encoded, which is skipped.
    Replacing,
}

// ------------------------------------------------------------------ running it

/// How one run of the helper ended.
enum End {
    Stopping,
    Idle,
    /// The camera controls changed: it is started again with them.
    ControlsChanged,
    Failed(String),
}

/// One run: how it ended and how long it delivered pictures.
struct Run {
    end: End,
    healthy_for: Duration,
}

/// Everything a run needs that lasts longer than a run.
struct Capture {
    settings: Settings,
    size: (u16, u16),
    camera: CameraSetup,
    encoder: JpegEncoder,
    pictures: Pictures,
    controls: Arc<RpicamControls>,
}

/// The camera as chosen at start.
#[derive(Debug, Clone, Default)]
pub struct CameraSetup {
    /// `rpicam:INDEX`.
    pub index: Option<u32>,
    /// The sensor, if the helper listed the camera (`imx708`).
    pub model: Option<String>,
    /// The sensor mode chosen from the helper's listing.
    pub mode: Option<SensorMode>,
    /// The tuning file rpicam-vid is to use (`--noir`).
    pub tuning_file: Option<PathBuf>,
}

/// The sensor of camera `camera` (the first when `None`) in the helper's `listing`.
pub fn listed_model(listing: &str, camera: Option<u32>) -> Option<String> {
    let index = camera.unwrap_or(0);
    sensor_modes::parse_rpicam_list(listing)
        .into_iter()
        .find(|c| c.index == index)
        .map(|c| c.model)
}

/// Runs the source until the server stops, with the camera's controls on `board`.
pub fn run(
    camera: CameraSetup,
    settings: Settings,
    encoder: JpegEncoder,
    mut sink: FrameSink,
    board: &Arc<ControlBoard>,
) {
    let controls = Arc::new(RpicamControls::new(camera.model.as_deref(), camera.index));
    // Saved values are applied now, before the helper first starts.
    let _attached = board.attach(controls.clone());
    let size = geometry(settings.width, settings.height);
    if size != (settings.width, settings.height) {
        log::info!(
            "rpicam: asking for {}x{} instead of --size {}x{}: rpicam-vid's raw pictures \
             carry no row padding only when the width is a multiple of 64 and the height even",
            size.0,
            size.1,
            settings.width,
            settings.height
        );
    }
    let len = RawLayout::Yuv420.frame_len(size.0 as usize, size.1 as usize);
    let mut capture = Capture {
        settings,
        size,
        camera,
        encoder,
        pictures: Pictures::new(len),
        controls,
    };
    let shown = capture.encoder.output_size(size.0, size.1);
    let mut restart = Restart::new(settings.quality, shown);
    supervise(&mut sink, &mut restart, |sink, restart| {
        let run = match this_program() {
            Ok(program) => capture.run(&program, sink, &mut restart.last_logged),
            Err(missing) => Run {
                end: End::Failed(missing),
                healthy_for: Duration::ZERO,
            },
        };
        match run.end {
            End::Stopping => Ended::Stopping,
            // Started again at once while somebody watches, as after an idle stop.
            End::Idle | End::ControlsChanged => Ended::Idle,
            End::Failed(problem) => Ended::Failed {
                problem,
                healthy_for: run.healthy_for,
            },
        }
    });
}

impl Capture {
    /// Starts `program`, publishes its pictures until nobody watches, the server stops
    /// or the program fails, and stops it.
    fn run(&mut self, program: &Program, sink: &mut FrameSink, last_logged: &mut String) -> Run {
        let name = &program.name;
        // Read before the arguments: a change in between restarts once more.
        let generation = self.controls.generation();
        let args = self.with_controls();
        let command = shell_command(&program.path, &args);
        let mut child = match exec::spawn_with_stderr(&command, true) {
            Ok(child) => child,
            Err(e) => {
                return Run {
                    end: End::Failed(format!("cannot start {name}: {e}")),
                    healthy_for: Duration::ZERO,
                }
            }
        };
        // Restarts while a problem lasts are not news: its one line was logged.
        let level = if last_logged.is_empty() {
            log::Level::Info
        } else {
            log::Level::Debug
        };
        log::log!(
            level,
            "started {name} (pid {}): {}",
            child.id(),
            args.join(" ")
        );
        let tail = child
            .stderr
            .take()
            .map(|stderr| StderrTail::start(stderr, name.clone()));
        sink.stats().set_capturing(true);
        sink.stats().set_encoder(self.encoder.describe());
        self.pictures.reset();
        let mut first_picture: Option<Instant> = None;
        let mut pictures = 0u64;
        let mut skipped = 0u64;
        let outcome = self.pump(&mut child, sink, generation, &mut |picture_at, replaced| {
            first_picture.get_or_insert(picture_at);
            pictures += 1;
            if replaced {
                skipped += 1;
            }
        });
        sink.stats().set_capturing(false);
        // A server that stops ends the helper, whose output then ends too: that is no
        // failure to explain.
        let outcome = if sink.stopping() {
            Pump::Stopping
        } else {
            outcome
        };
        let healthy_for = first_picture.map_or(Duration::ZERO, |t| t.elapsed());
        if first_picture.is_some() {
            last_logged.clear();
        }
        let stderr = |tail: &Option<StderrTail>| {
            tail.as_ref()
                .map_or_else(Vec::new, |t| t.finish(STDERR_GRACE))
        };
        let end = match outcome {
            Pump::Stopping => {
                exec::stop(&mut child, Duration::ZERO);
                End::Stopping
            }
            Pump::Idle => {
                exec::stop(&mut child, Duration::ZERO);
                log::info!(
                    "nobody watching: stopped {name} after {pictures} pictures \
                     ({skipped} skipped while the encoder was busy)"
                );
                End::Idle
            }
            Pump::ControlsChanged => {
                exec::stop(&mut child, Duration::ZERO);
                log::info!(
                    "camera controls changed ({}): restarting {name}, which takes them \
                     only when it starts",
                    self.controls.last_change()
                );
                End::ControlsChanged
            }
            Pump::Ended => {
                let how = exec::stop(&mut child, EXIT_GRACE);
                End::Failed(diagnose(name, &how, &stderr(&tail)))
            }
            Pump::Stalled => {
                exec::stop(&mut child, Duration::ZERO);
                let stderr = stderr(&tail);
                let since = if pictures == 0 {
                    "after it started"
                } else {
                    "since its last one"
                };
                let mut why = format!(
                    "{name} sent no full picture for {} s {since}: stopped it",
                    self.settings.source_timeout.as_secs()
                );
                if let Some(known) = known_problem(name, &stderr) {
                    why = format!("{why}; {known}");
                } else if let Some(last) = last_said(&stderr) {
                    why = format!("{why}; it last said: {last}");
                }
                End::Failed(why)
            }
            Pump::Failed(e) => {
                let how = exec::stop(&mut child, Duration::ZERO);
                End::Failed(format!("reading from {name} failed: {e}; it {how}"))
            }
        };
        Run { end, healthy_for }
    }

    /// Reads pictures from the child's output and publishes the newest of them until
    /// something ends the run; `counted` hears of each picture completed. The encoding
    /// threads end with the run.
    fn pump(
        &mut self,
        child: &mut Child,
        sink: &mut FrameSink,
        generation: u64,
        counted: &mut dyn FnMut(Instant, bool),
    ) -> Pump {
        let pumped = self.pump_pictures(child, sink, generation, counted);
        self.encoder.rest();
        pumped
    }

    /// The helper's arguments, with the camera controls' values now.
    fn with_controls(&self) -> Vec<String> {
        let mut extra = Vec::new();
        if let Some(file) = &self.camera.tuning_file {
            extra.push("--tuning-file".to_string());
            extra.push(file.display().to_string());
        }
        extra.extend(self.controls.arguments());
        let camera = &self.camera;
        arguments(
            &self.settings,
            self.size,
            camera.index,
            camera.mode.as_ref(),
            &extra,
        )
    }

    /// As [`pump`](Self::pump); the run ends too when the controls' `generation` moves.
    fn pump_pictures(
        &mut self,
        child: &mut Child,
        sink: &mut FrameSink,
        generation: u64,
        counted: &mut dyn FnMut(Instant, bool),
    ) -> Pump {
        let jpeg_out = sink.jpeg_out();
        let Some(out) = child.stdout.as_mut() else {
            return Pump::Failed(io::Error::other("it has no standard output"));
        };
        let (w, h) = self.size;
        let mut last_progress = Instant::now();
        // The controls' last generation seen, and since when.
        let mut controls_seen = (generation, Instant::now());
        loop {
            if sink.stopping() {
                return Pump::Stopping;
            }
            if !sink.wanted(LINGER) {
                return Pump::Idle;
            }
            let now = self.controls.generation();
            if now != controls_seen.0 {
                controls_seen = (now, Instant::now());
            }
            if now != generation && controls_seen.1.elapsed() >= CONTROLS_SETTLE {
                return Pump::ControlsChanged;
            }
            let quiet = last_progress.elapsed();
            if quiet >= self.settings.source_timeout {
                return Pump::Stalled;
            }
            // With a picture waiting, only look whether a newer one is already coming.
            let wait = if self.pictures.ready {
                Duration::ZERO
            } else {
                TICK.min(self.settings.source_timeout - quiet)
            };
            let mut fds = [PollFd::new(out.as_fd(), PollFlags::POLLIN)];
            let timeout = PollTimeout::try_from(wait).unwrap_or(PollTimeout::MAX);
            let readable = match poll(&mut fds, timeout) {
                Ok(0) | Err(Errno::EINTR) => false,
                Ok(_) => true,
                Err(e) => return Pump::Failed(e.into()),
            };
            if readable {
                match self.pictures.read_from(out) {
                    Ok(None) => return Pump::Ended,
                    Ok(Some(Completed::No)) => {}
                    Ok(Some(done)) => {
                        last_progress = Instant::now();
                        counted(last_progress, done == Completed::Replacing);
                    }
                    Err(e) => return Pump::Failed(e),
                }
                continue;
            }
            let Some(picture) = self.pictures.take() else {
                continue;
            };
            match self
                .encoder
                .deliver_raw(picture, RawLayout::Yuv420, w, h, w as usize, &jpeg_out)
            {
                Ok(()) => {}
                Err(e) => {
                    static FAILED: RateLimit = RateLimit::new(ratelog::DEFAULT_INTERVAL);
                    crate::warn_limited!(FAILED, "dropped a camera picture: {e}");
                    sink.stats().count_dropped();
                }
            }
            sink.note_encoder(&mut self.encoder);
        }
    }
}

/// Why reading pictures stopped.
enum Pump {
    Stopping,
    Idle,
    /// The camera controls changed.
    ControlsChanged,
    /// The output ended: the program exited (or closed it).
    Ended,
    /// No full picture for `--source-timeout`.
    Stalled,
    Failed(io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::picture::{EncoderChoice, Transform};

    fn settings(transform: Transform) -> Settings {
        Settings {
            width: 640,
            height: 480,
            fps: 25,
            quality: 80,
            source_timeout: Duration::from_secs(5),
            encoder: EncoderChoice::Software,
            encode_workers: crate::picture::EncodeWorkers::Fixed(1),
            transform,
            always_on: false,
            hdr: false,
            noir: false,
        }
    }

    #[test]
    fn sizes_round_to_rows_without_padding() {
        assert_eq!(geometry(640, 480), (640, 480));
        assert_eq!(geometry(1280, 720), (1280, 720));
        assert_eq!(geometry(1920, 1080), (1920, 1080));
        assert_eq!(geometry(300, 201), (320, 202));
        assert_eq!(geometry(800, 600), (768, 600));
        assert_eq!(geometry(801, 600), (832, 600));
        assert_eq!(geometry(16, 16), (64, 16));
        assert_eq!(geometry(4096, 4095), (4096, 4096));
        for (w, h) in [(16, 17), (100, 99), (1000, 1001), (4000, 3000)] {
            let (rw, rh) = geometry(w, h);
            assert_eq!(rw % 64, 0);
            assert_eq!(rh % 2, 0);
            assert!(rw.abs_diff(w) <= 48 && rh.abs_diff(h) <= 1, "{w}x{h}");
        }
    }

    #[test]
    fn options_map_to_rpicam_vid_arguments() {
        let t = |rotate180, hflip, vflip| Transform {
            rotate180,
            hflip,
            vflip,
            ..Transform::default()
        };
        let line = |transform, camera| {
            arguments(&settings(transform), (640, 480), camera, None, &[]).join(" ")
        };
        assert_eq!(
            line(t(false, false, false), None),
            "-n -t 0 --codec yuv420 --width 640 --height 480 --framerate 25 --flush -o -"
        );
        assert_eq!(
            line(t(true, false, false), Some(1)),
            "-n -t 0 --codec yuv420 --width 640 --height 480 --framerate 25 --camera 1 \
             --rotation 180 --flush -o -"
        );
        assert!(line(t(false, true, false), None).contains(" --hflip --flush"));
        assert!(line(t(false, false, true), None).contains(" --vflip --flush"));
        assert!(line(t(false, true, true), None).contains(" --rotation 180 --flush"));
        // A half turn and a mirror make the other mirror.
        assert!(line(t(true, true, false), None).contains(" --vflip --flush"));
        assert!(line(t(true, true, true), None).ends_with("--framerate 25 --flush -o -"));
        // A quarter turn is done on the pictures, mirrors and all: rpicam-vid is asked
        // for nothing but the size.
        let sideways = Transform {
            rotate90: true,
            hflip: true,
            ..Transform::default()
        };
        assert_eq!(
            line(sideways, None),
            "-n -t 0 --codec yuv420 --width 640 --height 480 --framerate 25 --flush -o -"
        );
    }

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/pi");

    fn listing(file: &str) -> String {
        std::fs::read_to_string(format!("{FIXTURES}/{file}")).unwrap()
    }

    #[test]
    fn the_sensor_mode_and_hdr_go_to_rpicam_vid() {
        let v3 = listing("list-cameras-imx708.txt");
        let at = |width, height, fps, hdr| Settings {
            width,
            height,
            fps,
            hdr,
            ..settings(Transform::default())
        };
        let s = at(1280, 720, 100, false);
        let mode = choose_mode(&v3, None, &s).unwrap().unwrap().mode;
        assert_eq!(
            arguments(&s, (1280, 720), None, Some(&mode), &[]).join(" "),
            "-n -t 0 --codec yuv420 --width 1280 --height 720 --framerate 100 \
             --mode 1536:864:10:P --flush -o -"
        );
        let s = at(1920, 1080, 30, true);
        let choice = choose_mode(&v3, Some(0), &s).unwrap().unwrap();
        assert_eq!(
            arguments(
                &s,
                (1920, 1080),
                Some(0),
                Some(&choice.mode),
                &["--tuning-file".into(), "/x/imx708_noir.json".into()]
            )
            .join(" "),
            "-n -t 0 --codec yuv420 --width 1920 --height 1080 --framerate 30 \
             --mode 2304:1296:10:P --hdr --camera 0 --tuning-file /x/imx708_noir.json \
             --flush -o -"
        );
        let e = choose_mode(&v3, None, &at(1920, 1080, 56, true)).unwrap_err();
        assert!(
            e.starts_with("the imx708 with --hdr gives at most 30.00 fps"),
            "{e}"
        );
        let e = choose_mode(&v3, None, &at(640, 480, 200, false)).unwrap_err();
        assert!(e.contains("the imx708 gives at most 120.13 fps"), "{e}");
        // A camera the listing does not show: the helper chooses.
        assert_eq!(
            choose_mode(&v3, Some(3), &at(640, 480, 30, false)),
            Ok(None)
        );
        let e = choose_mode(
            &listing("list-cameras-imx477.txt"),
            None,
            &at(640, 480, 30, true),
        )
        .unwrap_err();
        assert_eq!(
            e,
            "--hdr: camera 0 is an imx477, which has no sensor HDR; --hdr is for the \
             Camera Module 3 (imx708): leave it off"
        );
        let v2 = listing("list-cameras-imx219.txt");
        let choice = choose_mode(&v2, None, &at(640, 480, 200, false))
            .unwrap()
            .unwrap();
        assert_eq!(choice.mode.rpicam_mode(), "640:480:10:P");
    }

    #[test]
    fn the_shell_line_quotes_every_word() {
        let line = shell_command(
            Path::new("/opt/my cams/it's-vid"),
            &["-o".into(), "-".into()],
        );
        assert_eq!(line, r"exec '/opt/my cams/it'\''s-vid' '-o' '-'");
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(shell_command(
                Path::new("printf"),
                &["%s|".into(), "a b".into(), "c'd".into()],
            ))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "a b|c'd|");
    }

    /// A scratch directory with executables (and one plain file) named as given.
    fn bin_dir(name: &str, executables: &[&str], plain: &[&str]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("picam-rpicam-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (names, mode) in [(executables, 0o755), (plain, 0o644)] {
            for n in names {
                let p = dir.join(n);
                std::fs::write(&p, "#!/bin/sh\n").unwrap();
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            }
        }
        dir
    }

    #[test]
    fn finds_rpicam_vid_then_libcamera_vid_or_the_named_program() {
        let old = bin_dir("old", &["libcamera-vid"], &["rpicam-vid"]);
        let new = bin_dir("new", &["rpicam-vid", "libcamera-vid"], &[]);
        let empty = bin_dir("empty", &[], &[]);
        let path = |dirs: &[&PathBuf]| Some(std::env::join_paths(dirs).unwrap());
        let found = find_program(None, path(&[&empty, &old, &new])).unwrap();
        // rpicam-vid first, wherever it is; a file that is not executable does not count.
        assert_eq!(found.path, new.join("rpicam-vid"));
        assert_eq!(found.name, "rpicam-vid");
        let found = find_program(None, path(&[&empty, &old])).unwrap();
        assert_eq!(found.path, old.join("libcamera-vid"));
        let e = find_program(None, path(&[&empty])).unwrap_err();
        assert_eq!(
            e,
            "rpicam-vid not found: install it with `sudo apt install rpicam-apps-lite` \
             (Raspberry Pi OS), or choose another --source"
        );
        assert!(find_program(None, None).is_err());
        let named = new.join("rpicam-vid").into_os_string();
        let found = find_program(Some(named.clone()), None).unwrap();
        assert_eq!(found.path, new.join("rpicam-vid"));
        let found = find_program(Some("libcamera-vid".into()), path(&[&old])).unwrap();
        assert_eq!(found.path, old.join("libcamera-vid"));
        let e = find_program(Some(old.join("rpicam-vid").into()), None).unwrap_err();
        assert!(
            e.contains("(named by PICAM_RPICAM_VID) not found: install it"),
            "{e}"
        );
        // Empty means not set.
        let found = find_program(Some("".into()), path(&[&new])).unwrap();
        assert_eq!(found.name, "rpicam-vid");
        for dir in [old, new, empty] {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    #[test]
    fn failures_become_one_line_saying_what_to_do() {
        let lines = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let how = "exited (exit status: 255)";
        let none = lines(&[
            "[0:00:00.512345678] [812]  INFO Camera camera_manager.cpp:327 libcamera v0.3.2",
            "ERROR: *** no cameras available ***",
        ]);
        let e = diagnose("rpicam-vid", how, &none);
        assert!(
            e.starts_with("rpicam-vid sees no camera: check the ribbon cable"),
            "{e}"
        );
        assert!(
            e.contains("camera_auto_detect=1 in /boot/firmware/config.txt"),
            "{e}"
        );
        for busy in [
            "[0:00:01.1] [9] ERROR V4L2 v4l2_device.cpp:390 Failed to open: Device or resource busy",
            "ERROR: *** failed to acquire camera /base/axi/pcie@120000/rp1/i2c@88000/imx708@1a ***",
        ] {
            let e = diagnose("rpicam-vid", how, &lines(&[busy]));
            assert!(e.starts_with("the camera is in use by another program"), "{e}");
        }
        let other = lines(&[
            "[0:00:00.5] [812]  INFO Camera camera_manager.cpp:327 libcamera v0.3.2",
            "[0:00:00.6] [812] ERROR RPI pipeline_base.cpp:10 something odd",
            "",
        ]);
        assert_eq!(
            diagnose("libcamera-vid", how, &other),
            "libcamera-vid exited (exit status: 255): ERROR RPI pipeline_base.cpp:10 something odd"
        );
        assert_eq!(
            diagnose("rpicam-vid", how, &[]),
            "rpicam-vid exited (exit status: 255)"
        );
    }

    #[test]
    fn error_output_is_cut_into_bounded_lines() {
        let mut text = b"first\r\n\nsecond".to_vec();
        text.push(b'\n');
        text.extend(std::iter::repeat_n(b'x', 10_000));
        text.extend_from_slice(b"\n\xffend");
        let mut got = Vec::new();
        read_lines(&text[..], |l| got.push(l));
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got[..2], ["first", "second"]);
        assert_eq!(got[2].len(), STDERR_LINE_MAX);
        assert_eq!(got[3], "\u{fffd}end");
    }

    #[test]
    fn the_newest_complete_picture_wins() {
        let mut pictures = Pictures::new(4);
        // One picture and a half, in pieces.
        let mut input: &[u8] = &[1, 1, 1];
        assert_eq!(pictures.read_from(&mut input).unwrap(), Some(Completed::No));
        let mut input: &[u8] = &[1, 2, 2];
        assert_eq!(
            pictures.read_from(&mut input).unwrap(),
            Some(Completed::Yes)
        );
        assert_eq!(pictures.read_from(&mut input).unwrap(), Some(Completed::No));
        // The second completes before the first was taken: it replaces it.
        let mut input: &[u8] = &[2, 2, 3];
        assert_eq!(
            pictures.read_from(&mut input).unwrap(),
            Some(Completed::Replacing)
        );
        assert_eq!(pictures.take(), Some(&[2u8, 2, 2, 2][..]));
        assert_eq!(pictures.take(), None);
        // The rest of the input is the start of the next picture.
        assert_eq!(input, [3]);
        assert_eq!(pictures.read_from(&mut input).unwrap(), Some(Completed::No));
        let mut input: &[u8] = &[3, 3, 3];
        assert_eq!(
            pictures.read_from(&mut input).unwrap(),
            Some(Completed::Yes)
        );
        assert_eq!(pictures.take(), Some(&[3u8, 3, 3, 3][..]));
        let mut input: &[u8] = &[];
        assert_eq!(pictures.read_from(&mut input).unwrap(), None);
    }

    #[test]
    fn the_description_names_size_rate_and_encoder() {
        let s = Settings {
            width: 1280,
            height: 720,
            fps: 30,
            ..settings(Transform::default())
        };
        let encoder = JpegEncoder::with_node(None, 80);
        assert_eq!(
            describe(None, &s, &encoder),
            "camera module through rpicam-vid 1280x720 at 30 fps, software JPEG encoder"
        );
        assert!(describe(Some(1), &s, &encoder).starts_with("camera module 1 through"));
    }
}
