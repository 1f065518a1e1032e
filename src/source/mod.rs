//! Sources of pictures: what `--source` names, and the thread that feeds the frame slot.
//!
//! A source runs on its own thread and hands finished JPEG pictures to a [`FrameSink`],
//! which checks them, measures the frame rate and publishes them into the
//! [`FrameSlot`]. Sources know nothing about HTTP.
//!
//! * `test`: the built-in animated test pattern ([`pattern`]).
//! * `stdin`, `file:PATH`: MJPEG byte streams ([`pipe`]).
//! * `exec:COMMAND`: MJPEG from a supervised child process ([`exec`]).
//! * `v4l2:/dev/videoN`: a V4L2 capture device such as a USB webcam ([`v4l2`]).
//! * `rpicam[:INDEX]`: Pi camera modules through the system's `rpicam-vid` ([`rpicam`]).
//! * `libcamera[:INDEX|:ID]`: Pi camera modules, in binaries built with libcamera.
//! * `auto`: a camera when one is found, otherwise the test pattern ([`v4l2::scan`]).
//!
//! A source that captures or draws can run in a process of its own ([`isolate`]), so
//! that a camera library that crashes cannot take the server with it.
//!
//! Sources run only while somebody wants frames: a stream watches, or a snapshot asked
//! within the last [`LINGER`]. Otherwise cameras are closed, the test pattern and a
//! looped file sleep, and an `exec:` command is stopped, until the next viewer.
//! `--always-on` keeps them running regardless ([`Settings::always_on`]). Standard
//! input is read at the producer's pace whatever the demand.

pub mod backoff;
pub mod exec;
pub mod font;
pub mod isolate;
#[cfg(feature = "libcamera")]
pub mod libcamera;
pub mod libcamera_controls;
pub mod noir;
pub mod nosignal;
pub mod pattern;
pub mod pipe;
pub mod rpicam;
pub mod rpicam_controls;
pub mod sensor_modes;
pub mod still_jpeg;
pub mod supervise;
pub mod v4l2;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::controls::ControlBoard;
use crate::encoder::{EncodeError, JpegEncoder, JpegOut};
use crate::picture::Settings;
use crate::ratelog::{self, RateLimit};
use crate::slot::FrameSlot;
use crate::stats::{RateMeter, SourceStats};
pub use isolate::Isolation;

/// Stack of the source thread, which decodes and encodes pictures: the usual size, set
/// explicitly since the program makes smaller stacks the default.
const SOURCE_STACK: usize = 2 * 1024 * 1024;

/// How long a source goes on after the last viewer leaves or the last snapshot asks.
pub const LINGER: Duration = Duration::from_secs(3);

/// Shortest time between two log lines about a source going idle (or back to work), so
/// that a client polling snapshots every few seconds does not fill the log.
pub const IDLE_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Longest sleep of an idle source before it looks again whether it is wanted (demand
/// wakes it at once; this only bounds a wake-up that went missing).
const IDLE_WAKE: Duration = Duration::from_secs(1);

/// A source as named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    Auto,
    Test,
    Stdin,
    File(PathBuf),
    Exec(String),
    Rpicam(Option<u32>),
    Libcamera(Option<String>),
    V4l2(PathBuf),
}

/// The accepted forms of `--source`, for error messages and help.
pub const SOURCE_FORMS: &str = "auto, test, stdin, file:PATH, exec:COMMAND, rpicam[:INDEX], \
     libcamera[:INDEX|:ID] or v4l2:/dev/videoN";

impl FromStr for SourceSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<SourceSpec, String> {
        let (kind, arg) = match s.split_once(':') {
            Some((k, a)) => (k, Some(a)),
            None => (s, None),
        };
        let need_arg = |what: &str| match arg {
            Some(a) if !a.trim().is_empty() => Ok(a.to_string()),
            _ => Err(format!("'{kind}:' needs {what} after the colon")),
        };
        match (kind, arg) {
            ("auto", None) => Ok(SourceSpec::Auto),
            ("test", None) => Ok(SourceSpec::Test),
            ("stdin" | "-", None) => Ok(SourceSpec::Stdin),
            ("file", _) => Ok(SourceSpec::File(PathBuf::from(need_arg("a path")?))),
            ("exec", _) => Ok(SourceSpec::Exec(need_arg("a command")?)),
            ("rpicam", None) => Ok(SourceSpec::Rpicam(None)),
            ("rpicam", Some(index)) => index.trim().parse().map(|i| SourceSpec::Rpicam(Some(i))).map_err(
                |_| "'rpicam:' needs a camera index (0, 1, ... as --list-cameras numbers them) after the colon".to_string(),
            ),
            ("libcamera", None) => Ok(SourceSpec::Libcamera(None)),
            ("libcamera", Some(_)) => Ok(SourceSpec::Libcamera(Some(need_arg("an index or id")?))),
            ("v4l2", _) => Ok(SourceSpec::V4l2(PathBuf::from(need_arg("a device path")?))),
            _ => Err(format!("expected {SOURCE_FORMS}")),
        }
    }
}

impl fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceSpec::Auto => f.write_str("auto"),
            SourceSpec::Test => f.write_str("test"),
            SourceSpec::Stdin => f.write_str("stdin"),
            SourceSpec::File(p) => write!(f, "file:{}", p.display()),
            SourceSpec::Exec(c) => write!(f, "exec:{c}"),
            SourceSpec::Rpicam(None) => f.write_str("rpicam"),
            SourceSpec::Rpicam(Some(index)) => write!(f, "rpicam:{index}"),
            SourceSpec::Libcamera(None) => f.write_str("libcamera"),
            SourceSpec::Libcamera(Some(id)) => write!(f, "libcamera:{id}"),
            SourceSpec::V4l2(p) => write!(f, "v4l2:{}", p.display()),
        }
    }
}

/// Where good frames go instead of the slot, in a source's own process ([`isolate`]).
pub type FrameTap = Box<dyn FnMut(&[u8]) + Send>;

/// Where a source delivers its pictures.
pub struct FrameSink {
    slot: Arc<FrameSlot>,
    /// Where good pictures go, shared with the encoding threads that publish too.
    outlet: Arc<Outlet>,
    stats: Arc<SourceStats>,
    stop: Arc<AtomicBool>,
    /// `--always-on`: frames are wanted whether or not somebody watches.
    always_on: bool,
    /// Checks offered pictures, parsing headers only when they change.
    inspector: crate::jpeg::Inspector,
}

/// The publishing end of a [`FrameSink`]: the source thread and the JPEG encoding
/// threads ([`crate::encoder::EncodePool`]) publish through it, one at a time.
struct Outlet {
    slot: Arc<FrameSlot>,
    stats: Arc<SourceStats>,
    published: std::sync::Mutex<Published>,
}

/// What publishing changes, behind the outlet's lock.
struct Published {
    tap: Option<FrameTap>,
    rate: RateMeter,
    /// Size of the last good frame, for the no-signal picture.
    last_size: Option<(u16, u16)>,
}

impl Outlet {
    fn published(&self) -> std::sync::MutexGuard<'_, Published> {
        self.published.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// See [`FrameSink::publish_checked`].
    fn publish_checked(&self, jpeg: &[u8], width: u16, height: u16) {
        let now = Instant::now();
        let mut p = self.published();
        // Counted first, so that `/status` never shows fewer frames than a viewer got.
        self.stats.mark_published(now);
        match &mut p.tap {
            Some(tap) => tap(jpeg),
            None => {
                self.slot.publish(jpeg, width, height);
            }
        }
        if let Some(fps) = p.rate.tick(now) {
            self.stats.set_fps(fps);
        }
        p.last_size = Some((width, height));
        drop(p);
        if let Some((why, age)) = self.stats.clear_error() {
            log::info!(
                "the source is back after {:.1} s without a good frame ({why})",
                age.as_secs_f64()
            );
        }
    }
}

impl JpegOut for Outlet {
    fn publish(&self, jpeg: &[u8], width: u16, height: u16) {
        self.publish_checked(jpeg, width, height);
    }

    fn encode_failed(&self, error: &EncodeError) {
        static FAILED: RateLimit = RateLimit::new(ratelog::DEFAULT_INTERVAL);
        crate::warn_limited!(FAILED, "dropped a picture: {error}");
        self.stats.count_dropped();
    }

    fn skipped(&self) {
        self.stats.count_workers_busy();
    }
}

/// Whether somebody wants frames, apart from the sink: for code that cannot borrow the
/// sink while it asks (a check run in the middle of reading a command's output).
#[derive(Clone)]
pub struct Demand {
    slot: Arc<FrameSlot>,
    always_on: bool,
}

impl Demand {
    /// True while somebody wants frames (see [`FrameSink::wanted`]).
    pub fn wanted(&self, linger: Duration) -> bool {
        self.always_on || self.slot.wanted(linger)
    }
}

impl FrameSink {
    pub fn new(slot: Arc<FrameSlot>, stats: Arc<SourceStats>, stop: Arc<AtomicBool>) -> FrameSink {
        FrameSink::with_tap(slot, stats, stop, None)
    }

    /// A sink whose good frames go to `tap` (when given) instead of the slot.
    fn with_tap(
        slot: Arc<FrameSlot>,
        stats: Arc<SourceStats>,
        stop: Arc<AtomicBool>,
        tap: Option<FrameTap>,
    ) -> FrameSink {
        let outlet = Arc::new(Outlet {
            slot: slot.clone(),
            stats: stats.clone(),
            published: std::sync::Mutex::new(Published {
                tap,
                rate: RateMeter::default(),
                last_size: None,
            }),
        });
        FrameSink {
            slot,
            outlet,
            stats,
            stop,
            always_on: false,
            inspector: crate::jpeg::Inspector::default(),
        }
    }

    /// Where an encoder hands its finished pictures (see [`JpegEncoder::deliver_rgb`]):
    /// they are published as [`publish_checked`](Self::publish_checked) does, from
    /// whichever thread encoded them, and encoding failures are logged and counted.
    pub fn jpeg_out(&self) -> Arc<dyn JpegOut> {
        self.outlet.clone()
    }

    /// Checks `jpeg` and publishes it; a picture that is not a valid JPEG is dropped,
    /// counted and logged (at most one line every ten seconds).
    pub fn offer_jpeg(&mut self, jpeg: &[u8]) -> bool {
        match self.inspector.inspect(jpeg) {
            Ok(dims) => {
                self.publish_checked(jpeg, dims.width, dims.height);
                true
            }
            Err(e) => {
                static BAD: RateLimit = RateLimit::new(ratelog::DEFAULT_INTERVAL);
                crate::warn_limited!(BAD, "dropped a {} byte frame: {e}", jpeg.len());
                self.stats.count_dropped();
                false
            }
        }
    }

    /// Publishes a JPEG the caller made itself and knows to be valid. A good frame ends
    /// the source's current problem, if it had one.
    pub fn publish_checked(&mut self, jpeg: &[u8], width: u16, height: u16) {
        self.outlet.publish_checked(jpeg, width, height);
    }

    /// Publishes a stand-in picture (the no-signal frame): viewers see it, but it does
    /// not count as a frame from the source in the frame rate or the last frame's age.
    /// In a source's own process it goes nowhere: the server draws its own from the
    /// problem it is told.
    pub fn publish_placeholder(&mut self, jpeg: &[u8], width: u16, height: u16) {
        if self.outlet.published().tap.is_none() {
            self.slot.publish(jpeg, width, height);
        }
    }

    /// Size of the last good frame, if there was one.
    pub fn last_size(&self) -> Option<(u16, u16)> {
        self.outlet.published().last_size
    }

    pub fn stats(&self) -> &SourceStats {
        &self.stats
    }

    /// Tells `/status` which encoder runs, when that changed since the last call, and
    /// on how many threads.
    pub fn note_encoder(&self, encoder: &mut JpegEncoder) {
        if encoder.take_changed() {
            self.stats.set_encoder(encoder.describe());
        }
        self.stats.set_encode_workers(encoder.workers());
    }

    /// Records in `/status` whether the source runs or idles for lack of viewers, and
    /// when that changes logs `somebody watches: {doing}` or `nobody watches: {doing}`
    /// (each at most once every [`IDLE_LOG_INTERVAL`]). True when it changed.
    pub fn note_running(&self, running: bool, doing: impl FnOnce() -> String) -> bool {
        if self.stats.capturing() == running {
            return false;
        }
        self.stats.set_capturing(running);
        static BUSY: RateLimit = RateLimit::new(IDLE_LOG_INTERVAL);
        static IDLE: RateLimit = RateLimit::new(IDLE_LOG_INTERVAL);
        let (limit, who) = if running {
            (&BUSY, "somebody")
        } else {
            (&IDLE, "nobody")
        };
        if let Some(held) = limit.admit() {
            log::info!("{who} watches: {}{held}", doing());
        }
        true
    }

    /// True while somebody wants frames (see [`FrameSlot::wanted`]), and always with
    /// `--always-on`.
    pub fn wanted(&self, linger: Duration) -> bool {
        self.always_on || self.slot.wanted(linger)
    }

    /// A handle that answers [`FrameSink::wanted`] without borrowing the sink.
    pub fn demand(&self) -> Demand {
        Demand {
            slot: self.slot.clone(),
            always_on: self.always_on,
        }
    }

    /// Sleeps while nobody wants frames (at most about a second; a viewer, a snapshot
    /// or the server stopping wakes it at once). For the idle loop of a source:
    /// `while !wanted { wait_until_wanted }`.
    pub fn wait_until_wanted(&self, linger: Duration) {
        if !self.always_on && !self.stopping() {
            self.slot.wait_for_demand(linger, IDLE_WAKE);
        }
    }

    /// True once the server is stopping: the source should return.
    /// Where requests for full-resolution stills wait (see [`crate::still`]).
    pub fn stills(&self) -> &Arc<crate::still::StillDesk> {
        self.slot.stills()
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// A running source thread.
pub struct RunningSource {
    pub stats: Arc<SourceStats>,
    pub thread: JoinHandle<()>,
}

/// Why a source could not be started.
#[derive(Debug)]
pub struct SourceError(pub String);

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// True when this binary has the libcamera source and libcamera sees a camera.
fn libcamera_camera_found() -> bool {
    #[cfg(feature = "libcamera")]
    return libcamera::find_camera();
    #[cfg(not(feature = "libcamera"))]
    false
}

/// The text of `--list-cameras`: libcamera's cameras in binaries with libcamera, else
/// what `rpicam-vid --list-cameras` prints; the error says what is missing.
pub fn list_cameras() -> Result<String, String> {
    #[cfg(feature = "libcamera")]
    return Ok(libcamera::describe_all());
    #[cfg(not(feature = "libcamera"))]
    rpicam::list_cameras()
}

/// The source `auto` stands for on this machine; other specs stand for themselves.
fn resolve(spec: &SourceSpec) -> SourceSpec {
    if *spec != SourceSpec::Auto {
        return spec.clone();
    }
    let libcamera = libcamera_camera_found();
    // With a libcamera camera there is nothing to look for among the V4L2 nodes.
    let scan = if libcamera {
        v4l2::scan::Scan::default()
    } else {
        v4l2::scan::scan()
    };
    let decision = v4l2::scan::choose(&scan, libcamera);
    for line in &decision.skipped {
        log::debug!("auto: {line}");
    }
    if let Some(line) = libcamera_missed(&decision, cfg!(feature = "libcamera")) {
        log::info!("auto: {line}");
    }
    source_for(decision, rpicam::helper_found())
}

/// Why a binary built with libcamera reads a camera module some other way: its
/// libcamera saw no camera although the V4L2 scan found one's receiver. On a Raspberry
/// Pi 5 (receiver `rp1-cfe`) that is a libcamera without the `rpi/pisp` pipeline
/// handler, which upstream libcamera has from 0.5 on (Debian trixie's 0.4 lacks it).
fn libcamera_missed(decision: &v4l2::scan::AutoDecision, libcamera_built: bool) -> Option<String> {
    let v4l2::scan::AutoChoice::CameraModule { module, .. } = &decision.choice else {
        return None;
    };
    if !libcamera_built {
        return None;
    }
    let why = if module.driver == "rp1-cfe" {
        ": this libcamera has no Raspberry Pi 5 support (the rpi/pisp pipeline handler, \
         libcamera 0.5 or newer built with it)"
    } else {
        ""
    };
    Some(format!(
        "libcamera sees no camera although {module} is attached{why}; reading it through \
         rpicam-vid instead"
    ))
}

/// The source an `auto` decision maps to, with its one start-up line; `helper` says
/// whether rpicam-vid is there (or what to install).
fn source_for(decision: v4l2::scan::AutoDecision, helper: Result<(), String>) -> SourceSpec {
    use v4l2::scan::AutoChoice;
    let reason = decision.reason;
    match decision.choice {
        AutoChoice::Libcamera => {
            log::info!("auto: the libcamera source ({reason})");
            SourceSpec::Libcamera(None)
        }
        // The module is read through the system's rpicam-vid. Without it, a webcam
        // meanwhile if there is one; else the rpicam source all the same: its no-signal
        // picture and /status say what to install, and it starts once that is done.
        AutoChoice::CameraModule { module, webcam } => match (helper, webcam) {
            (Ok(()), _) => {
                log::info!("auto: the camera module ({module}) through rpicam-vid ({reason})");
                SourceSpec::Rpicam(None)
            }
            (Err(missing), Some(path)) => {
                log::warn!("{}", camera_module_advice(&module, &missing));
                log::info!(
                    "auto: V4L2 device {} instead of the camera module ({reason})",
                    path.display()
                );
                SourceSpec::V4l2(path)
            }
            (Err(missing), None) => {
                log::warn!("{}", camera_module_advice(&module, &missing));
                SourceSpec::Rpicam(None)
            }
        },
        AutoChoice::Webcam(path) => {
            log::info!("auto: V4L2 device {} ({reason})", path.display());
            SourceSpec::V4l2(path)
        }
        AutoChoice::Pattern => {
            log::info!("auto: the test pattern ({reason})");
            SourceSpec::Test
        }
    }
}

/// What to do about a camera module while the helper that reads it is `missing`.
fn camera_module_advice(module: &v4l2::scan::CameraModule, missing: &str) -> String {
    format!("a camera module ({module}) is attached, but {missing}")
}

/// What a source thread runs.
type Body = Box<dyn FnOnce(FrameSink) + Send>;

/// Resolves `auto`, opens the source and starts its thread; with `isolation`, the
/// thread runs the source in a process of its own (see [`isolate`]). A camera with
/// controls puts them on `controls` while it is open (from a process of its own, the
/// thread that runs it does).
pub fn start(
    spec: &SourceSpec,
    settings: Settings,
    isolation: Isolation,
    slot: Arc<FrameSlot>,
    stop: Arc<AtomicBool>,
    controls: Arc<ControlBoard>,
) -> Result<RunningSource, SourceError> {
    let spec = resolve(spec);
    if sends_jpeg(&spec) && !settings.transform.is_identity() {
        if settings.transform.quarter_turn() {
            return Err(SourceError(jpeg_cannot_turn(
                &spec,
                settings.transform.degrees(),
            )));
        }
        log::warn!(
            "--rotation, --hflip and --vflip do not apply to JPEG from {spec}, which is \
             passed on as it comes; ignored"
        );
    }
    let camera_module = matches!(spec, SourceSpec::Libcamera(_) | SourceSpec::Rpicam(_));
    if settings.hdr && !camera_module {
        return Err(SourceError(format!(
            "--hdr is the Camera Module 3's sensor HDR, and the source is {spec}: leave \
             --hdr off"
        )));
    }
    if settings.fps > crate::picture::FPS_MAX_ANY_SOURCE && !camera_module {
        return Err(SourceError(format!(
            "--fps {}: above {} only for camera modules, and the source is {spec}",
            settings.fps,
            crate::picture::FPS_MAX_ANY_SOURCE
        )));
    }
    if isolation == Isolation::On && !isolation.applies_to(&spec) {
        log::warn!("--isolate applies only to the test, v4l2 and libcamera sources; ignored");
    }
    // The checks happen here in either case, so that a mistake stops the program at
    // start with its message.
    let (description, body, sensor_mode) = plan(&spec, settings, true, controls.clone())?;
    let runs_at_start = never_idles(&spec);
    if isolation.applies_to(&spec) {
        let description = format!("{description} (in a process of its own)");
        let body: Body = Box::new(move |sink| isolate::supervise(spec, settings, sink, controls));
        let launched = launch(description, body, runs_at_start, settings, slot, stop, None)?;
        launched.stats.set_sensor_mode(sensor_mode);
        return Ok(launched);
    }
    let launched = launch(description, body, runs_at_start, settings, slot, stop, None)?;
    launched.stats.set_sensor_mode(sensor_mode);
    Ok(launched)
}

/// Starts `spec` (already resolved) in this process with frames going to `tap` and its
/// camera's controls to `controls`, without the start-up checks: for a source's own
/// process, whose parent made them.
pub(crate) fn start_here(
    spec: &SourceSpec,
    settings: Settings,
    slot: Arc<FrameSlot>,
    stop: Arc<AtomicBool>,
    tap: Option<FrameTap>,
    controls: Arc<ControlBoard>,
) -> Result<RunningSource, SourceError> {
    let (description, body, _) = plan(spec, settings, false, controls)?;
    launch(
        description,
        body,
        never_idles(spec),
        settings,
        slot,
        stop,
        tap,
    )
}

/// What a source will run: its description, its thread's body, and the camera's
/// sensor mode when it was chosen at start.
type Planned = (String, Body, Option<String>);

/// The description and thread body of `spec` (already resolved); `check` makes the
/// sources that can check their device at start do so (and choose a camera module's
/// sensor mode); a camera with controls puts them on `controls` while it is open.
fn plan(
    spec: &SourceSpec,
    settings: Settings,
    check: bool,
    controls: Arc<ControlBoard>,
) -> Result<Planned, SourceError> {
    // Sources that encode get their encoder now, so that `--encoder hardware` without
    // a hardware encoder stops the program at start. It turns what the camera does not:
    // with `camera_flips` the camera mirrors and turns by 180, and the encoder does
    // only quarter turns (all of them).
    let encoder = |camera_flips: bool| {
        let t = settings.transform;
        let orientation = if camera_flips {
            t.after_camera()
        } else {
            t.orientation()
        };
        if !orientation.is_identity() {
            let (w, h) = settings.output_size();
            log::info!(
                "--rotation {}{}{}: pictures are turned on the CPU before encoding \
                 ({w}x{h} out)",
                t.degrees(),
                if t.hflip { " --hflip" } else { "" },
                if t.vflip { " --vflip" } else { "" },
            );
        }
        JpegEncoder::new(settings.encoder, settings.quality)
            .map(|e| e.with_workers(settings.encode_workers))
            .map(|e| e.with_orientation(orientation))
            .map_err(SourceError)
    };
    let mut sensor_mode = None;
    let planned: (String, Body) = match spec {
        SourceSpec::Test => {
            let encoder = encoder(false)?;
            (
                format!(
                    "test pattern {}x{} at {} fps",
                    settings.width, settings.height, settings.fps
                ),
                Box::new(move |sink| pattern::run(settings, encoder, sink, &controls)),
            )
        }
        SourceSpec::Stdin => (
            "MJPEG from standard input".to_string(),
            Box::new(move |sink| pipe::run_stdin(settings, sink)),
        ),
        SourceSpec::File(path) => {
            let file = pipe::open_file(path).map_err(SourceError)?;
            let path = path.clone();
            (
                format!(
                    "MJPEG file {} looped at {} fps",
                    path.display(),
                    settings.fps
                ),
                Box::new(move |sink| pipe::run_file(file, path, settings, sink)),
            )
        }
        SourceSpec::Exec(command) => {
            let command = command.clone();
            (
                format!("MJPEG from command `{command}`"),
                Box::new(move |sink| exec::run(&command, settings, sink)),
            )
        }
        SourceSpec::Rpicam(camera) => {
            let camera = *camera;
            let encoder = encoder(true)?;
            // Without the helper's listing (the helper missing now) it chooses itself.
            let (choice, model) = match check.then(rpicam::list_cameras) {
                Some(Ok(listing)) => (
                    rpicam::choose_mode(&listing, camera, &settings).map_err(SourceError)?,
                    rpicam::listed_model(&listing, camera),
                ),
                _ => (None, None),
            };
            if let Some(choice) = &choice {
                log::info!("rpicam: sensor mode {choice}");
                sensor_mode = Some(choice.to_string());
            }
            let tuning_file = if settings.noir {
                noir::tuning_file(model.as_deref())
            } else {
                None
            };
            let setup = rpicam::CameraSetup {
                index: camera,
                model,
                mode: choice.map(|c| c.mode),
                tuning_file,
            };
            (
                rpicam::describe(camera, &settings, &encoder),
                Box::new(move |sink| rpicam::run(setup, settings, encoder, sink, &controls)),
            )
        }
        SourceSpec::V4l2(path) => {
            let path = path.clone();
            let encoder = encoder(false)?;
            (
                format!("V4L2 device {}", path.display()),
                Box::new(move |sink| v4l2::run(path, settings, encoder, sink, controls)),
            )
        }
        #[cfg(feature = "libcamera")]
        SourceSpec::Libcamera(selector) => {
            let selector = selector.clone();
            if check && settings.noir {
                noir::tune_libcamera();
            }
            let description = if check {
                let (description, mode) =
                    libcamera::check(selector.as_deref(), settings).map_err(SourceError)?;
                sensor_mode = mode;
                description
            } else {
                spec.to_string()
            };
            let encoder = encoder(true)?;
            (
                format!("libcamera camera {description}"),
                Box::new(move |sink| libcamera::run(selector, settings, encoder, sink, controls)),
            )
        }
        #[cfg(not(feature = "libcamera"))]
        SourceSpec::Libcamera(_) => {
            let _ = check;
            return Err(SourceError(format!(
                "source '{spec}' is not built into this binary: it needs a build with the \
                 libcamera feature; this one takes test, stdin, file:PATH, exec:COMMAND, \
                 rpicam[:INDEX] (the camera module through rpicam-vid) and v4l2:/dev/videoN"
            )));
        }
        SourceSpec::Auto => unreachable!("auto is resolved before a source is planned"),
    };
    Ok((planned.0, planned.1, sensor_mode))
}

/// Whether `spec` delivers JPEG that is passed on untouched, whatever the settings.
fn sends_jpeg(spec: &SourceSpec) -> bool {
    matches!(
        spec,
        SourceSpec::Stdin | SourceSpec::File(_) | SourceSpec::Exec(_)
    )
}

/// Why `--rotation` by `degrees` (90 or 270) cannot be had from `spec`, and what to do.
fn jpeg_cannot_turn(spec: &SourceSpec, degrees: u16) -> String {
    format!(
        "--rotation {degrees} cannot be done on the JPEG pictures of {spec}: they are \
         passed on as they come, and only raw pictures are turned (decoding and encoding \
         every picture again would cost more than encoding it once); use a source of raw \
         pictures (test, rpicam, libcamera, or a v4l2 camera offering YUYV, UYVY or \
         NV12), or turn the picture where the JPEG is made"
    )
}

/// Whether `spec` runs whatever the demand: standard input, read at its producer's pace.
fn never_idles(spec: &SourceSpec) -> bool {
    *spec == SourceSpec::Stdin
}

/// Starts the source thread running `body`. `/status` says the source runs from the
/// start when `runs_at_start`; others start idle, and say so before their thread runs,
/// so that a snapshot arriving first waits for the frame it asks for instead of finding
/// none.
fn launch(
    description: String,
    body: Body,
    runs_at_start: bool,
    settings: Settings,
    slot: Arc<FrameSlot>,
    stop: Arc<AtomicBool>,
    tap: Option<FrameTap>,
) -> Result<RunningSource, SourceError> {
    let stats = Arc::new(SourceStats::new(description));
    stats.set_capturing(runs_at_start);
    let mut sink = FrameSink::with_tap(slot, stats.clone(), stop, tap);
    sink.always_on = settings.always_on;
    let thread = std::thread::Builder::new()
        .name("source".into())
        .stack_size(SOURCE_STACK)
        .spawn(move || body(sink))
        .map_err(|e| SourceError(format!("cannot start the source thread: {e}")))?;
    Ok(RunningSource { stats, thread })
}

#[cfg(test)]
mod tests {
    use super::*;
    use v4l2::scan::{AutoChoice, AutoDecision, CameraModule};

    fn decided(choice: AutoChoice) -> AutoDecision {
        AutoDecision {
            choice,
            reason: "a reason".to_string(),
            skipped: Vec::new(),
        }
    }

    #[test]
    fn auto_decisions_map_to_sources() {
        let module = CameraModule {
            receiver: "/dev/video0".into(),
            driver: "unicam".to_string(),
            sensor: Some("imx219 10-0010".to_string()),
        };
        let missing = "rpicam-vid not found: install it with `sudo apt install rpicam-apps-lite`";
        let advice = camera_module_advice(&module, missing);
        assert_eq!(
            advice,
            format!("a camera module (imx219 on unicam /dev/video0) is attached, but {missing}")
        );
        let found = || Ok(());
        let gone = || Err(missing.to_string());
        let with_webcam = || AutoChoice::CameraModule {
            module: module.clone(),
            webcam: Some("/dev/video2".into()),
        };
        let alone = || AutoChoice::CameraModule {
            module: module.clone(),
            webcam: None,
        };
        // With rpicam-vid: the module, even when a webcam is there too.
        assert_eq!(
            source_for(decided(with_webcam()), found()),
            SourceSpec::Rpicam(None)
        );
        assert_eq!(
            source_for(decided(alone()), found()),
            SourceSpec::Rpicam(None)
        );
        // Without: a webcam meanwhile; else the module's source all the same, whose
        // no-signal picture says what to install.
        assert_eq!(
            source_for(decided(with_webcam()), gone()),
            SourceSpec::V4l2("/dev/video2".into())
        );
        assert_eq!(
            source_for(decided(alone()), gone()),
            SourceSpec::Rpicam(None)
        );
        assert_eq!(
            source_for(decided(AutoChoice::Libcamera), Ok(())),
            SourceSpec::Libcamera(None)
        );
        assert_eq!(
            source_for(decided(AutoChoice::Webcam("/dev/video0".into())), Ok(())),
            SourceSpec::V4l2("/dev/video0".into())
        );
        assert_eq!(
            source_for(decided(AutoChoice::Pattern), Ok(())),
            SourceSpec::Test
        );
    }

    #[test]
    fn a_pi_5_camera_module_without_pisp_in_libcamera_goes_to_rpicam_vid() {
        for name in ["pi5-camera-modules.txt", "pi5-camera-module-imx296.txt"] {
            let scan = v4l2::scan::tests::fixture(name);
            // A libcamera without rpi/pisp sees no camera: the scan finds the module.
            let decision = v4l2::scan::choose(&scan, false);
            let note = libcamera_missed(&decision, true).unwrap();
            assert!(
                note.contains("on rp1-cfe /dev/video0 is attached"),
                "{note}"
            );
            assert!(
                note.contains("no Raspberry Pi 5 support (the rpi/pisp"),
                "{note}"
            );
            assert!(
                note.ends_with("reading it through rpicam-vid instead"),
                "{note}"
            );
            // Without libcamera in the binary there is nothing to explain.
            assert_eq!(libcamera_missed(&decision, false), None);
            assert_eq!(
                source_for(decision.clone(), Ok(())),
                SourceSpec::Rpicam(None),
                "{name}"
            );
            // Without rpicam-vid the rpicam source all the same: its no-signal picture
            // says what to install.
            let missing = Err("rpicam-vid not found".to_string());
            assert_eq!(source_for(decision, missing), SourceSpec::Rpicam(None));
            // A libcamera with rpi/pisp sees the camera: the libcamera source.
            let decision = v4l2::scan::choose(&scan, true);
            assert_eq!(libcamera_missed(&decision, true), None);
            assert_eq!(source_for(decision, Ok(())), SourceSpec::Libcamera(None));
        }
        // On a Pi 4 the receiver is unicam: no word of the Pi 5.
        let decision =
            v4l2::scan::choose(&v4l2::scan::tests::fixture("pi4-camera-module.txt"), false);
        let note = libcamera_missed(&decision, true).unwrap();
        assert_eq!(
            note,
            "libcamera sees no camera although imx219 on unicam /dev/video0 is attached; \
             reading it through rpicam-vid instead"
        );
    }

    #[test]
    fn parses_every_form() {
        let p = |s: &str| s.parse::<SourceSpec>();
        assert_eq!(p("auto"), Ok(SourceSpec::Auto));
        assert_eq!(p("test"), Ok(SourceSpec::Test));
        assert_eq!(p("stdin"), Ok(SourceSpec::Stdin));
        assert_eq!(
            p("file:/a/b.mjpg"),
            Ok(SourceSpec::File("/a/b.mjpg".into()))
        );
        assert_eq!(
            p("exec:rpicam-vid -t 0 --codec mjpeg -o -"),
            Ok(SourceSpec::Exec(
                "rpicam-vid -t 0 --codec mjpeg -o -".into()
            ))
        );
        assert_eq!(p("libcamera"), Ok(SourceSpec::Libcamera(None)));
        assert_eq!(p("rpicam"), Ok(SourceSpec::Rpicam(None)));
        assert_eq!(p("rpicam:1"), Ok(SourceSpec::Rpicam(Some(1))));
        assert!(p("rpicam:").is_err());
        let e = p("rpicam:front").unwrap_err();
        assert!(e.contains("needs a camera index"), "{e}");
        assert_eq!(
            p("libcamera:1"),
            Ok(SourceSpec::Libcamera(Some("1".into())))
        );
        assert_eq!(
            p("v4l2:/dev/video0"),
            Ok(SourceSpec::V4l2("/dev/video0".into()))
        );
        assert!(p("file:").is_err());
        assert!(p("exec:  ").is_err());
        assert!(p("camera").is_err());
        assert!(p("test:1").is_err());
        for s in [
            "test",
            "file:/x",
            "exec:cat",
            "libcamera:0",
            "rpicam",
            "rpicam:2",
            "v4l2:/dev/video2",
        ] {
            assert_eq!(p(s).unwrap().to_string(), s);
        }
    }
}
