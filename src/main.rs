//! The `picam-stream` program: reads the configuration, starts the source and the HTTP
//! server, and stops both cleanly on SIGINT or SIGTERM.

use std::process::exit;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use picam_stream::config::{self, Action};
use picam_stream::http::server::HttpServer;
use picam_stream::http::AppState;
use picam_stream::shutdown::StopSignals;
use picam_stream::slot::FrameSlot;
use picam_stream::source::{self, Settings};
use picam_stream::stats::ClientCounter;
use picam_stream::{logging, net};

/// How long stopping waits for streams to end before exiting anyway.
const STOP_GRACE: Duration = Duration::from_millis(500);

fn main() {
    // Before any thread exists, so that every thread inherits the blocked mask.
    let signals =
        StopSignals::block().unwrap_or_else(|e| fail(1, &format!("cannot block signals: {e}")));
    let config = match config::parse(std::env::args_os().skip(1), |k| std::env::var_os(k)) {
        Ok(Action::Run(c)) => c,
        Ok(Action::Help) => {
            print!("{}", config::HELP);
            return;
        }
        Ok(Action::ListDevices) => {
            print!("{}", source::v4l2::device::describe_all());
            return;
        }
        Ok(Action::ListCameras) => {
            print!("{}", source::list_cameras());
            return;
        }
        Ok(Action::Version) => {
            println!("picam-stream {}", env!("CARGO_PKG_VERSION"));
            return;
        }
        Err(e) => fail(2, &e.0),
    };
    logging::init();
    match net::raise_open_file_limit() {
        Ok(limit) => log::debug!("open file limit: {limit}"),
        Err(e) => log::warn!("cannot raise the open file limit: {e}"),
    }

    let listener = net::listen(config.listen)
        .unwrap_or_else(|e| fail(1, &format!("cannot listen on {}: {e}", config.listen)));
    let settings = Settings {
        width: config.width,
        height: config.height,
        fps: config.fps,
        quality: config.quality,
        transform: config.transform,
    };
    let slot = Arc::new(FrameSlot::new());
    let stopping = Arc::new(AtomicBool::new(false));
    let source = source::start(&config.source, settings, slot.clone(), stopping.clone())
        .unwrap_or_else(|e| fail(2, &e.0));
    log::info!("source: {}", source.stats.description());

    let state = Arc::new(AppState {
        slot: slot.clone(),
        source: source.stats.clone(),
        clients: Arc::new(ClientCounter::new(config.max_clients)),
        settings,
        started: Instant::now(),
        stopping: stopping.clone(),
        local_addr: listener
            .local_addr()
            .unwrap_or_else(|e| fail(1, &format!("cannot read the listening address: {e}"))),
    });
    let server = HttpServer::start(listener, state.clone())
        .unwrap_or_else(|e| fail(1, &format!("cannot start the HTTP server: {e}")));
    log::info!("listening on {}", server.local_addr());
    for url in net::urls(server.local_addr()) {
        log::info!("open {url} in a browser");
    }

    let signal = signals.wait();
    log::info!("{signal} received: stopping");
    stopping.store(true, Ordering::SeqCst);
    slot.close();
    source::pipe::terminate_child();
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

/// Prints `message` as the program's one line of complaint and exits with `code`.
fn fail(code: i32, message: &str) -> ! {
    eprintln!("picam-stream: {message}");
    exit(code)
}
