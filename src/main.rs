//! The `picam-stream` program: reads the configuration, starts the source, the HTTP
//! server and the mDNS responder, and stops them cleanly on SIGINT, SIGTERM, SIGHUP or
//! SIGQUIT (see `shutdown.rs` for every signal).

use std::process::exit;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use picam_stream::auth::{Credentials, Guard};
use picam_stream::config::{self, Action, Config};
use picam_stream::controls::{ControlBoard, ControlMemory};
use picam_stream::h264::choice::{self as h264_choice, H264Encoder};
use picam_stream::h264::hardware::{self, HardwareSettings};
use picam_stream::h264::slot::H264Slot;
use picam_stream::http::fanout::Fanout;
use picam_stream::http::server::HttpServer;
use picam_stream::http::shares::Shares;
use picam_stream::http::waiting::Waiting;
use picam_stream::http::{tls, AppState};
use picam_stream::picture::{EncoderChoice, Settings};
use picam_stream::saved_controls::SavedControls;
use picam_stream::shutdown::{self, StopSignals};
use picam_stream::slot::FrameSlot;
use picam_stream::source::{self, isolate};
use picam_stream::stats::ClientCounter;
use picam_stream::webrtc::Desk;
use picam_stream::{logging, mdns, net};

/// How long stopping waits for streams to end before exiting anyway.
const STOP_GRACE: Duration = Duration::from_millis(500);

/// Stack of threads started without a size. With the usual 2 MiB, a few hundred threads
/// would take much of a 32-bit address space.
const DEFAULT_STACK: usize = 256 * 1024;

fn main() {
    small_default_stacks();
    // Before any thread exists, so that every thread inherits the blocked mask.
    let signals =
        StopSignals::block().unwrap_or_else(|e| fail(1, &format!("cannot block signals: {e}")));
    // Started again by the `exec:` source to watch over its command.
    if let Some(code) = source::exec::guardian_from_env() {
        exit(code);
    }
    let config = match config::parse(std::env::args_os().skip(1), |k| std::env::var_os(k)) {
        Ok(Action::Run(c)) => *c,
        Ok(Action::Help) => {
            print!("{}", *config::HELP);
            return;
        }
        Ok(Action::ListDevices) => {
            print!("{}", picam_stream::v4l2::listing::describe_all());
            return;
        }
        Ok(Action::ListCameras) => match source::list_cameras() {
            Ok(text) => {
                print!("{text}");
                return;
            }
            Err(e) => fail(1, &e),
        },
        Ok(Action::Version) => {
            println!("picam-stream {}", env!("CARGO_PKG_VERSION"));
            return;
        }
        Err(e) => fail(2, &e.0),
    };
    let settings = Settings {
        width: config.width,
        height: config.height,
        fps: config.fps,
        quality: config.quality,
        source_timeout: Duration::from_secs(config.source_timeout.into()),
        encoder: config.encoder,
        encode_workers: config.encode_workers,
        transform: config.transform,
        always_on: config.always_on,
        hdr: config.hdr,
        noir: config.noir,
    };
    // Started again by the server to run its source in a process of its own.
    if let Some(spec) = std::env::var_os(isolate::WORKER_VAR) {
        logging::init_with_prefix("source process: ");
        let spec = spec
            .to_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| fail(2, &format!("{} names no source", isolate::WORKER_VAR)));
        exit(isolate::serve(&spec, settings));
    }
    // Files named by options are read before anything starts, so that a bad one stops
    // the program with its one line and nothing else.
    let guard = credentials(&config).map(|c| Arc::new(Guard::new(c)));
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(tls::load(cert, key).unwrap_or_else(|e| fail(2, &e))),
        _ => None,
    };
    logging::init();
    if let Some(guard) = &guard {
        log::info!("access: HTTP Basic, {} user(s)", guard.users());
    }
    match net::raise_open_file_limit() {
        Ok(limit) => log::debug!("open file limit: {limit}"),
        Err(e) => log::warn!("cannot raise the open file limit: {e}"),
    }

    let listener = net::listen(config.listen, &config.patience)
        .unwrap_or_else(|e| fail(1, &format!("cannot listen on {}: {e}", config.listen)));
    let slot = Arc::new(FrameSlot::new());
    let stopping = Arc::new(AtomicBool::new(false));
    let controls = ControlBoard::remembering(config.controls_allowed, control_memory(&config));
    // Before the source: an H.264 encoder asked for but missing stops the start here.
    let h264_plan = choose_h264(&config);
    let source = source::start(
        &config.source,
        settings,
        config.isolate,
        slot.clone(),
        stopping.clone(),
        controls.clone(),
    )
    .unwrap_or_else(|e| fail(2, &e.0));
    log::info!("source: {}", source.stats.description());
    let h264 = start_h264(&config, &slot, h264_plan);
    let webrtc = start_webrtc(&config, h264.as_ref());

    let state = Arc::new(AppState {
        slot: slot.clone(),
        source: source.stats.clone(),
        clients: Arc::new(ClientCounter::new(config.max_clients)),
        shares: Arc::new(Shares::new(config.max_clients_per_address)),
        settings,
        started: Instant::now(),
        stopping: stopping.clone(),
        patience: config.patience,
        waiting: Waiting::new(config.patience.pending),
        guard,
        allow_origin: config.allow_origin.clone(),
        tls: tls.is_some(),
        fanout: Fanout::new(slot.clone()),
        controls,
        h264: h264.clone(),
        webrtc,
    });
    let with_tls = tls.is_some();
    let server = HttpServer::start(listener, state.clone(), tls).unwrap_or_else(|e| {
        if with_tls {
            fail(
                2,
                &format!("cannot serve HTTPS with --tls-cert and --tls-key: {e}"),
            )
        } else {
            fail(1, &format!("cannot start the HTTP server: {e}"))
        }
    });
    log::info!("listening on {}", server.local_addr());
    if with_tls {
        log::info!("serving HTTPS");
    }
    for url in net::urls(server.local_addr()) {
        let url = if with_tls {
            url.replacen("http://", "https://", 1)
        } else {
            url
        };
        log::info!("open {url} in a browser");
    }
    // Advertising is a convenience: without it the server still serves.
    let mdns = config.mdns_name.as_deref().and_then(|name| {
        mdns::Mdns::start(name, server.local_addr())
            .map_err(|e| log::warn!("mDNS: not advertising: cannot open UDP port 5353: {e}"))
            .ok()
    });

    let signal =
        signals.wait(|| shutdown::status_line(&source.stats, &state.clients, state.started));
    log::info!("{signal} received: stopping");
    if let Some(mdns) = mdns {
        mdns.stop();
    }
    stopping.store(true, Ordering::SeqCst);
    slot.close();
    if let Some(h264) = &h264 {
        h264.close();
    }
    source::exec::terminate_child();
    server.stop();
    // The source thread is given the same grace to let go of its device: libcamera
    // must stop its camera before the process exits, or its threads crash the exit.
    let deadline = Instant::now() + STOP_GRACE;
    while (state.clients.current() > 0 || !source.thread.is_finished()) && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    log::info!("stopped");
    exit(0);
}

/// Where the camera settings clients set are kept (`--state-dir`); `None`, with a
/// warning when the directory cannot be used, keeps nothing.
fn control_memory(config: &Config) -> Option<Box<dyn ControlMemory>> {
    let dir = config.state_dir.as_ref()?;
    match SavedControls::open(dir) {
        Ok(saved) => {
            log::info!("camera settings are kept in {}", dir.display());
            Some(Box::new(saved))
        }
        Err(e) => {
            log::warn!("{e}");
            None
        }
    }
}

/// The H.264 encoder `--h264-encoder` asks for, and why; stops the start when it is
/// missing.
fn choose_h264(config: &Config) -> (H264Encoder, String) {
    let found = match config.h264_encoder {
        EncoderChoice::Software => None,
        _ => hardware::find_h264_node(),
    };
    h264_choice::choose(config.h264_encoder, found, cfg!(feature = "h264"))
        .unwrap_or_else(|e| fail(2, &e))
}

/// Starts the chosen H.264 stage for `/stream.mp4` (it encodes only while a viewer
/// watches); `None` when there is none, and `/stream.mp4` answers 404.
fn start_h264(
    config: &Config,
    frames: &Arc<FrameSlot>,
    (chosen, why): (H264Encoder, String),
) -> Option<Arc<H264Slot>> {
    log::info!("H.264 encoder: {why}");
    if config.openh264_library.is_some() && chosen != H264Encoder::Software {
        log::warn!("--openh264-library does nothing: the software H.264 encoder does not run");
    }
    if config.h264_bitrate.is_some() && chosen == H264Encoder::Nothing {
        log::warn!("--h264-bitrate does nothing: no H.264 encoder runs");
    }
    let name = chosen.name()?;
    let h264 = Arc::new(H264Slot::filled_by(name));
    let started = match chosen {
        H264Encoder::Hardware(node, input) => {
            let settings = HardwareSettings {
                node,
                input,
                bitrate: config.h264_bitrate,
                fps: config.fps,
            };
            hardware::start(frames.clone(), h264.clone(), settings)
        }
        H264Encoder::Software => start_software_h264(config, frames, &h264),
        H264Encoder::Nothing => return None,
    };
    started.unwrap_or_else(|e| fail(1, &format!("cannot start the H.264 encoder thread: {e}")));
    Some(h264)
}

/// Starts the software H.264 stage (OpenH264).
#[cfg(feature = "h264")]
fn start_software_h264(
    config: &Config,
    frames: &Arc<FrameSlot>,
    h264: &Arc<H264Slot>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    use picam_stream::h264::encode::{self, EncodeSettings};
    if config.openh264_library.is_some() && !encode::CAN_LOAD_LIBRARY {
        fail(
            2,
            "--openh264-library needs a binary built with the openh264-library feature \
             (cargo build --release --features openh264-library)",
        );
    }
    let settings = EncodeSettings {
        bitrate: config.h264_bitrate,
        fps: config.fps,
        library: config.openh264_library.clone(),
    };
    encode::start(frames.clone(), h264.clone(), settings)
}

/// This build has no software H.264 encoder: [`picam_stream::h264::choice`] never
/// chooses it.
#[cfg(not(feature = "h264"))]
fn start_software_h264(
    _: &Config,
    _: &Arc<FrameSlot>,
    _: &Arc<H264Slot>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    Err(std::io::Error::other(
        "this binary has no software H.264 encoder",
    ))
}

/// Starts WebRTC for the H.264 stream on `--webrtc-port`. A port that cannot be opened
/// leaves WebRTC off with a warning: MJPEG and `/stream.mp4` still serve.
#[cfg(feature = "webrtc")]
fn start_webrtc(config: &Config, h264: Option<&Arc<H264Slot>>) -> Option<Arc<Desk>> {
    let port = config.webrtc_port?;
    let Some(h264) = h264 else {
        log::warn!(
            "WebRTC is off: this binary has no H.264 encoder (build with --features h264) \
             and no hardware one was found"
        );
        return None;
    };
    match picam_stream::webrtc::peers::start(h264.clone(), port) {
        Ok((desk, _thread)) => {
            log::info!(
                "WebRTC: POST /whep or /webrtc; media on UDP port {}",
                desk.port()
            );
            Some(desk)
        }
        Err(e) => {
            log::warn!("WebRTC is off: {}", e.0);
            None
        }
    }
}

/// This build has no WebRTC: `/whep` and `/webrtc` answer 404 saying so.
#[cfg(not(feature = "webrtc"))]
fn start_webrtc(_: &Config, _: Option<&Arc<H264Slot>>) -> Option<Arc<Desk>> {
    None
}

/// The users from `--auth` and `--auth-file`; `None` when neither is given.
fn credentials(config: &Config) -> Option<Credentials> {
    if config.auth.is_none() && config.auth_file.is_none() {
        return None;
    }
    let mut credentials = Credentials::default();
    if let Some(file) = &config.auth_file {
        credentials.add_file(file).unwrap_or_else(|e| fail(2, &e));
    }
    if let Some(pair) = &config.auth {
        credentials
            .add_plain(&pair.0)
            .unwrap_or_else(|e| fail(2, &format!("--auth: {e}")));
    }
    Some(credentials)
}

/// Makes [`DEFAULT_STACK`] the default for new threads, unless `RUST_MIN_STACK` says
/// otherwise. The standard library reads that variable once, when the first thread
/// without a stack size starts; this runs while the process has no other thread, and
/// takes the variable away again so that child processes do not inherit it.
fn small_default_stacks() {
    if std::env::var_os("RUST_MIN_STACK").is_some() {
        return;
    }
    std::env::set_var("RUST_MIN_STACK", DEFAULT_STACK.to_string());
    let _ = std::thread::spawn(|| {}).join();
    std::env::remove_var("RUST_MIN_STACK");
}

/// Prints `message` as the program's one line of complaint and exits with `code`.
fn fail(code: i32, message: &str) -> ! {
    eprintln!("picam-stream: {message}");
    exit(code)
}
