//! The libcamera source (`--source libcamera[:INDEX|:ID]`): the Raspberry Pi camera
//! modules, and any other camera libcamera drives. Built only with the `libcamera`
//! cargo feature.
//!
//! * Asks for one YUV 4:2:0 stream (or the nearest format the camera validates) at
//!   `--size`, `--fps` (as frame duration limits) and the orientation of `--rotation`,
//!   `--hflip` and `--vflip`; cameras with autofocus focus continuously.
//! * Every buffer stays queued in the camera; a completed request is encoded and queued
//!   again at once. The requests and their mapped buffers are made once per capture
//!   session and reused for every frame. When the encoder falls behind, older completed
//!   frames are handed straight back, so the newest one is encoded and latency stays
//!   at one frame.
//! * Its controls (exposure, gains, white balance, focus, ...; [`controls`]) are on the
//!   [`ControlBoard`] while it captures; a change goes on the next request queued.
//! * A full-resolution still ([`crate::still`], [`still`]) is taken between two
//!   frames: the video stream stops, the camera takes one still at its largest size,
//!   and the video stream starts again as it was.
//! * Captures only while somebody watches or a snapshot asks, plus a short linger, as
//!   the V4L2 source does; the camera is released otherwise.
//! * A camera that fails or disappears mid-stream is shown as a "no signal" picture,
//!   reported in `/status`, and opened again with a growing pause. Where libcamera
//!   itself aborts (0.4, stopping a camera whose device vanished unnoticed), the
//!   source's own process ([`super::isolate`], the default for this source) ends
//!   instead of the server, and is started again.

mod controls;
mod hdr;
mod list;
mod setup;
mod still;

pub use list::describe_all;

use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use controls::LibcameraControls;

use libcamera::camera::{ActiveCamera, Camera};
use libcamera::camera_manager::CameraManager;
use libcamera::framebuffer::{AsFrameBuffer, FrameMetadataStatus};
use libcamera::framebuffer_allocator::{FrameBuffer, FrameBufferAllocator};
use libcamera::framebuffer_map::MemoryMappedFrameBuffer;
use libcamera::request::{Request, RequestStatus, ReuseFlag};
use libcamera::stream::Stream;

use super::supervise::{supervise, Ended, Reopen};
use super::{FrameSink, LINGER};
use crate::controls::ControlBoard;
use crate::encoder::{CameraPlane, JpegEncoder, RawFrame};
use crate::picture::Settings;
use crate::ratelog::{self, RateLimit};

/// A wait this long without a frame means the camera has stopped delivering.
const FRAME_TIMEOUT: Duration = Duration::from_secs(6);

/// How long one wait for a frame lasts before stopping and demand are checked again.
const POLL: Duration = Duration::from_millis(100);

/// How long a silent camera is given to report that it was disconnected.
const DISCONNECT_GRACE: Duration = Duration::from_secs(5);

/// How often timing figures go to the debug log.
const REPORT_EVERY: Duration = Duration::from_secs(10);

type Mapped = MemoryMappedFrameBuffer<FrameBuffer>;

/// The camera `selector` names among `cameras`: none means the first, a number its
/// place in `--list-cameras`, anything else its id.
fn pick<'a>(manager: &'a CameraManager, selector: Option<&str>) -> Result<Camera<'a>, String> {
    let cameras = manager.cameras();
    let ids: Vec<String> = cameras.iter().map(|c| c.id().to_string()).collect();
    let found = match selector {
        None => cameras.get(0),
        Some(s) => match s.parse::<usize>() {
            Ok(i) => cameras.get(i),
            Err(_) => manager.get(s),
        },
    };
    found.ok_or_else(|| {
        let which = selector.map_or("camera".to_string(), |s| format!("camera '{s}'"));
        if ids.is_empty() {
            format!("libcamera finds no {which}: it sees no camera at all")
        } else {
            let list: Vec<String> = ids
                .iter()
                .enumerate()
                .map(|(i, id)| format!("{i}: {id}"))
                .collect();
            format!("libcamera finds no {which}; it sees {}", list.join(", "))
        }
    })
}

/// True when libcamera sees a camera, for `--source auto`.
pub fn find_camera() -> bool {
    CameraManager::new().is_ok_and(|m| !m.cameras().is_empty())
}

/// Checks before the source thread starts that the camera takes the settings, so that
/// a mistake is reported at once; returns the camera's name and what it will do, and
/// its sensor mode. A camera that is missing, busy or failing is not a mistake: the
/// source waits for it (`Ok` with a note), as it does when one fails later.
pub fn check(
    selector: Option<&str>,
    settings: Settings,
) -> Result<(String, Option<String>), String> {
    // Before libcamera reads the sensor's modes, which the HDR switch changes.
    hdr::set_sensor_hdr(settings.hdr)?;
    let manager = match CameraManager::new() {
        Ok(m) => m,
        Err(e) => {
            let why = format!("cannot start libcamera: {e}");
            return Ok((waiting(selector, &why), None));
        }
    };
    let camera = match pick(&manager, selector) {
        Ok(c) => c,
        Err(e) => return Ok((waiting(selector, &e), None)),
    };
    let model = list::model(&camera);
    if settings.hdr && !model.starts_with("imx708") {
        return Err(format!(
            "--hdr: this camera is an {model}, which has no sensor HDR; --hdr is for the \
             Camera Module 3 (imx708): leave it off"
        ));
    }
    let name = list::name(&camera);
    let mut active = match camera.acquire() {
        Ok(a) => a,
        Err(e) => {
            let why = format!("{name}: cannot acquire the camera: {e}");
            return Ok((waiting(selector, &why), None));
        }
    };
    let plan =
        setup::configure(&mut active, settings, &model).map_err(|e| format!("{name}: {e}"))?;
    Ok((format!("{name}: {}", plan.summary), plan.sensor_mode))
}

fn waiting(selector: Option<&str>, why: &str) -> String {
    log::warn!("{why}; waiting for the camera");
    selector.map_or("(the first one found)".to_string(), |s| format!("'{s}'"))
}

/// Why capturing stopped.
enum Stop {
    Stopping,
    Idle,
}

/// Capture-to-publish figures, reported now and then.
#[derive(Default)]
struct Timing {
    frames: u32,
    skipped: u32,
    latency_sum: Duration,
    latency_max: Duration,
    encode_sum: Duration,
    since: Option<Instant>,
}

impl Timing {
    fn add(&mut self, latency: Option<Duration>, encode: Duration) {
        self.frames += 1;
        self.encode_sum += encode;
        if let Some(l) = latency {
            self.latency_sum += l;
            self.latency_max = self.latency_max.max(l);
        }
    }

    fn maybe_report(&mut self, now: Instant) {
        let since = *self.since.get_or_insert(now);
        if now - since < REPORT_EVERY || self.frames == 0 {
            return;
        }
        let n = self.frames;
        log::debug!(
            "libcamera: {n} frames in {:.1} s ({} older ones handed back unencoded); \
             capture to publish mean {:.1} ms, max {:.1} ms; encoding mean {:.1} ms",
            (now - since).as_secs_f64(),
            self.skipped,
            self.latency_sum.as_secs_f64() * 1e3 / n as f64,
            self.latency_max.as_secs_f64() * 1e3,
            self.encode_sum.as_secs_f64() * 1e3 / n as f64,
        );
        *self = Timing {
            since: Some(now),
            ..Timing::default()
        };
    }
}

/// CLOCK_MONOTONIC now, in nanoseconds: the clock of libcamera's frame timestamps.
fn monotonic_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

/// One capture session: acquire, configure, stream until idle, stopping or failure.
fn session(
    manager: &CameraManager,
    selector: Option<&str>,
    settings: Settings,
    encoder: &mut JpegEncoder,
    sink: &mut FrameSink,
    board: Option<&Arc<ControlBoard>>,
) -> Result<Stop, String> {
    let camera = pick(manager, selector)?;
    let name = list::name(&camera);
    let model = list::model(&camera);
    let mut active = camera
        .acquire()
        .map_err(|e| format!("{name}: cannot acquire the camera: {e}"))?;
    let mut plan =
        setup::configure(&mut active, settings, &model).map_err(|e| format!("{name}: {e}"))?;
    log::info!("{name}: {}", plan.summary);
    sink.stats().set_sensor_mode(plan.sensor_mode.clone());
    // The controls of the configured mode (its exposure and gain limits); off the
    // board again when the session ends.
    let camera_controls = Arc::new(LibcameraControls::new(
        &name,
        active.controls(),
        &plan.started,
    ));
    let _attached = board.map(|b| b.attach(camera_controls.clone()));
    let gone = Arc::new(AtomicBool::new(false));
    let gone_flag = gone.clone();
    active.on_disconnected(move || gone_flag.store(true, Ordering::SeqCst));
    let mut video = start_video(&mut active, &mut plan, &camera_controls)
        .map_err(|e| format!("{name}: {e}"))?;
    log::debug!("{name}: {} buffers in flight", plan.buffers);
    // Stills are taken between two frames while the camera streams.
    let _stills = sink.stills().open();

    let (w, h) = (plan.width, plan.height);
    let mut last_frame = Instant::now();
    let mut first_frame = true;
    let mut timing = Timing::default();
    let out = sink.jpeg_out();
    let requeue = |active: &ActiveCamera<'_>, mut request: Request| {
        request.reuse(ReuseFlag::REUSE_BUFFERS);
        camera_controls.put_pending(request.controls_mut());
        active
            .queue_request(request)
            .map_err(|(_, e)| format!("{name}: cannot queue a request again: {e}"))
    };
    loop {
        if sink.stopping() {
            return Ok(Stop::Stopping);
        }
        if !sink.wanted(LINGER) {
            return Ok(Stop::Idle);
        }
        if gone.load(Ordering::SeqCst) {
            return Err(format!("{name}: the camera was disconnected"));
        }
        if sink.stills().asked() {
            video = still_between_frames(
                &mut active,
                video,
                &mut plan,
                settings,
                &camera_controls,
                sink,
                &name,
            )
            .map_err(|e| format!("{name}: {e}"))?;
            last_frame = Instant::now();
        }
        let mut request = match video.done.recv_timeout(POLL) {
            Ok(r) => r,
            Err(RecvTimeoutError::Timeout) => {
                if last_frame.elapsed() >= FRAME_TIMEOUT {
                    // libcamera 0.4 aborts the process when a camera whose device has
                    // vanished is stopped before it has noticed the removal; stopping
                    // after the disconnection is safe, so give the notice time to come.
                    let deadline = Instant::now() + DISCONNECT_GRACE;
                    while !gone.load(Ordering::SeqCst) && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    if gone.load(Ordering::SeqCst) {
                        return Err(format!("{name}: the camera was disconnected"));
                    }
                    return Err(format!(
                        "{name}: no frame for {} s",
                        FRAME_TIMEOUT.as_secs()
                    ));
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(format!("{name}: libcamera stopped"))
            }
        };
        last_frame = Instant::now();
        // Only the newest frame is worth encoding; older ones go straight back.
        while let Ok(newer) = video.done.try_recv() {
            timing.skipped += 1;
            sink.stats().count_dropped();
            requeue(&active, request)?;
            request = newer;
        }
        if request.status() == RequestStatus::Complete {
            camera_controls.note_metadata(request.metadata());
        }
        if request.status() != RequestStatus::Complete {
            if request.status() == RequestStatus::Cancelled && gone.load(Ordering::SeqCst) {
                return Err(format!("{name}: the camera was disconnected"));
            }
            sink.stats().count_dropped();
            requeue(&active, request)?;
            continue;
        }
        let encoded = {
            let Some(buffer) = request.buffer::<Mapped>(&video.stream) else {
                return Err(format!("{name}: a completed request lost its buffer"));
            };
            let metadata = buffer.metadata();
            let ok = metadata
                .as_ref()
                .is_some_and(|m| m.status() == FrameMetadataStatus::Success);
            let captured = metadata.as_ref().map(|m| m.timestamp()).unwrap_or(0);
            if ok {
                let planes = buffer.data();
                let plane = |i: usize| planes.get(i).copied().unwrap_or(&[]);
                // The DMABUF each plane lies in, for the hardware encoder to import.
                let described = buffer.planes();
                let camera = |i: usize| {
                    let p = described.get(i)?;
                    let fd = (p.fd() >= 0).then_some(p.fd())?;
                    Some(CameraPlane {
                        // SAFETY: the descriptor belongs to the frame buffer, which this
                        // request holds until it is queued again after encoding, so it
                        // stays open for as long as the borrow is used.
                        fd: unsafe { BorrowedFd::borrow_raw(fd) },
                        offset: p.offset()?,
                        length: p.len(),
                    })
                };
                let t0 = Instant::now();
                // With several encoding threads the picture is copied and handed over
                // here; the latency and encoding time below then end at the hand-over.
                let frame = RawFrame {
                    planes: [plane(0), plane(1), plane(2)],
                    layout: plan.layout,
                    width: w,
                    height: h,
                    stride: plan.stride,
                };
                let cameras = [camera(0), camera(1), camera(2)];
                match encoder.deliver_camera_buffer(frame, cameras, &out) {
                    Ok(()) => {
                        if first_frame {
                            first_frame = false;
                            if sink.stats().error().is_some() {
                                log::info!("{name}: capturing again");
                            }
                            sink.stats().set_error(None);
                        }
                        let published = monotonic_ns();
                        let latency = (captured > 0 && published > captured)
                            .then(|| Duration::from_nanos(published - captured));
                        Some((latency, t0.elapsed()))
                    }
                    Err(e) => {
                        static FAILED: RateLimit = RateLimit::new(ratelog::DEFAULT_INTERVAL);
                        crate::warn_limited!(
                            FAILED,
                            "{name}: dropped frame {}: {e}",
                            request.sequence()
                        );
                        None
                    }
                }
            } else {
                None
            }
        };
        match encoded {
            Some((latency, encode)) => timing.add(latency, encode),
            None => sink.stats().count_dropped(),
        }
        sink.note_encoder(encoder);
        requeue(&active, request)?;
        timing.maybe_report(Instant::now());
    }
}

/// The video stream while it runs: its buffers, in the requests, and where completed
/// requests come back. Dropped only after the camera stopped.
struct Video {
    stream: Stream,
    done: Receiver<Request>,
    _allocator: FrameBufferAllocator,
}

/// Buffers for `stream`, each in a request ready to queue (the first one carrying every
/// control value set so far), the allocator they come from, and where the camera hands
/// completed requests back (it is told so here).
fn make_requests(
    active: &mut ActiveCamera<'_>,
    stream: &Stream,
    controls: &LibcameraControls,
) -> Result<(FrameBufferAllocator, Vec<Request>, Receiver<Request>), String> {
    let mut allocator = FrameBufferAllocator::new(active);
    let buffers = allocator
        .alloc(stream)
        .map_err(|e| format!("cannot allocate buffers: {e}"))?;
    let mut requests = Vec::with_capacity(buffers.len());
    for (i, buffer) in buffers.into_iter().enumerate() {
        let mapped = Mapped::new(buffer).map_err(|e| format!("cannot map a buffer: {e}"))?;
        let mut request = active
            .create_request(Some(i as u64))
            .ok_or("cannot create a request")?;
        request
            .add_buffer(stream, mapped)
            .map_err(|e| format!("cannot attach a buffer: {e}"))?;
        if i == 0 {
            controls.put_kept(request.controls_mut());
        }
        requests.push(request);
    }
    // Completed requests come back on libcamera's thread; the channel holds them all
    // without allocating, so sending never blocks that thread.
    let (done_tx, done) = mpsc::sync_channel::<Request>(requests.len());
    active.on_request_completed(move |request| {
        let _ = done_tx.send(request);
    });
    Ok((allocator, requests, done))
}

/// Allocates the buffers of the configured video stream, starts the camera with the
/// stream's controls and every request queued.
fn start_video(
    active: &mut ActiveCamera<'_>,
    plan: &mut setup::Plan,
    controls: &LibcameraControls,
) -> Result<Video, String> {
    let stream = plan
        .config
        .get(0)
        .and_then(|s| s.stream())
        .ok_or("the configured stream is missing")?;
    let (allocator, requests, done) = make_requests(active, &stream, controls)?;
    // Started again after a still, the camera goes on with what was set since.
    controls.put_kept(&mut plan.controls);
    active
        .start(Some(&plan.controls))
        .map_err(|e| format!("cannot start the camera: {e}"))?;
    for request in requests {
        active
            .queue_request(request)
            .map_err(|(_, e)| format!("cannot queue a request: {e}"))?;
    }
    Ok(Video {
        stream,
        done,
        _allocator: allocator,
    })
}

/// Serves the waiting still request: stops the video stream, takes the still, and
/// starts the video stream again. An error means the stream could not come back.
fn still_between_frames(
    active: &mut ActiveCamera<'_>,
    video: Video,
    plan: &mut setup::Plan,
    settings: Settings,
    controls: &LibcameraControls,
    sink: &FrameSink,
    name: &str,
) -> Result<Video, String> {
    let paused = Instant::now();
    // Stopping hands every queued request back, cancelled; they and the buffers go
    // before the camera is configured for the still.
    let stopped = active.stop();
    drop(video);
    let mut taken = None;
    let mut restored = Ok(());
    sink.stills().serve(|| {
        let still = match stopped {
            Ok(()) => {
                let (still, back) = still::take(active, &mut plan.config, settings, controls);
                restored = back;
                still
            }
            Err(e) => Err(format!("cannot stop the stream for a still: {e}")),
        };
        taken = Some(
            still
                .as_ref()
                .map(|s| (s.width, s.height))
                .map_err(Clone::clone),
        );
        still
    });
    restored?;
    let video = start_video(active, plan, controls)
        .map_err(|e| format!("cannot stream again after a still: {e}"))?;
    match taken {
        Some(Ok((w, h))) => log::info!(
            "{name}: took a {w}x{h} still; the stream paused {} ms",
            paused.elapsed().as_millis()
        ),
        Some(Err(why)) => log::warn!("{name}: no still: {why}"),
        None => {}
    }
    Ok(video)
}

/// Runs the source until the server stops.
pub fn run(
    selector: Option<String>,
    settings: Settings,
    mut encoder: JpegEncoder,
    mut sink: FrameSink,
    board: Arc<ControlBoard>,
) {
    let mut reopen = Reopen::new(settings.quality, settings.output_size());
    let mut manager: Option<CameraManager> = None;
    supervise(&mut sink, &mut reopen, |sink, reopen| {
        if manager.is_none() {
            // Before libcamera reads the sensor's modes (checked at start; logged here).
            if let Err(e) = hdr::set_sensor_hdr(settings.hdr) {
                log::warn!("{e}");
            }
            manager = CameraManager::new()
                .map_err(|e| log::warn!("cannot start libcamera: {e}"))
                .ok();
        }
        let result = match &manager {
            Some(m) => {
                sink.stats().set_capturing(true);
                let r = session(
                    m,
                    selector.as_deref(),
                    settings,
                    &mut encoder,
                    sink,
                    Some(&board),
                );
                // The encoding threads end with the session.
                encoder.rest();
                sink.stats().set_capturing(false);
                r
            }
            None => Err("cannot start libcamera".to_string()),
        };
        match result {
            Ok(Stop::Stopping) => Ended::Stopping,
            Ok(Stop::Idle) => {
                if reopen.recovered() {
                    log::info!("the camera is back");
                }
                sink.stats().set_error(None);
                reopen.reset();
                log::info!("nobody watching: camera idle");
                Ended::Idle
            }
            Err(problem) => {
                // A fresh manager sees cameras that came back or were replaced.
                manager = None;
                Ended::failed(problem)
            }
        }
    });
}
