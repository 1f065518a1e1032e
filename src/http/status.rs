//! The `/status` document: what the server is streaming and how it is going, as JSON.

use std::fmt::Write as _;

use super::AppState;
use crate::json::escape_into;

/// Renders the status document.
pub fn render(state: &AppState) -> String {
    let source = &state.source;
    let latest = state.slot.latest();
    let (width, height) = match &latest {
        Some(f) => (f.width(), f.height()),
        None => state.settings.output_size(),
    };
    let mut j = String::with_capacity(512);
    j.push('{');
    field_str(&mut j, "version", env!("CARGO_PKG_VERSION"));
    field_str(&mut j, "source", source.description());
    field_str(&mut j, "encoder", &source.encoder());
    match source.sensor_mode() {
        Some(mode) => field_str(&mut j, "sensor_mode", &mode),
        None => field_raw(&mut j, "sensor_mode", "null"),
    }
    field_raw(&mut j, "encode_workers", source.encode_workers());
    field_raw(&mut j, "frames_dropped_workers_busy", source.workers_busy());
    field_raw(&mut j, "width", width);
    field_raw(&mut j, "height", height);
    field_raw(&mut j, "fps_configured", state.settings.fps);
    field_raw(&mut j, "fps_measured", format!("{:.2}", source.fps()));
    // "running" says it for every source; "capturing", its older name, stays for
    // the clients that read it.
    field_raw(&mut j, "running", source.capturing());
    field_raw(&mut j, "capturing", source.capturing());
    field_raw(&mut j, "frames_captured", source.frames());
    field_raw(&mut j, "frames_dropped", source.dropped());
    match source.since_last_frame() {
        Some(age) => field_raw(&mut j, "last_frame_age_ms", age.as_millis()),
        None => field_raw(&mut j, "last_frame_age_ms", "null"),
    }
    match latest {
        Some(f) => field_raw(&mut j, "last_frame_bytes", f.jpeg().len()),
        None => field_raw(&mut j, "last_frame_bytes", "null"),
    }
    match source.error_and_age() {
        Some((e, age)) => {
            field_str(&mut j, "source_error", &e);
            field_raw(&mut j, "source_error_seconds", age.as_secs());
        }
        None => {
            field_raw(&mut j, "source_error", "null");
            field_raw(&mut j, "source_error_seconds", "null");
        }
    }
    field_raw(&mut j, "source_restarts", source.restarts());
    field_raw(&mut j, "clients", state.clients.current());
    match state.clients.max() {
        Some(m) => field_raw(&mut j, "max_clients", m),
        None => field_raw(&mut j, "max_clients", "null"),
    }
    field_raw(&mut j, "streams_served", state.clients.total());
    // H.264 (/stream.mp4): null throughout in builds without it.
    field_raw(&mut j, "h264", state.h264.is_some());
    let h264 = state.h264.as_deref();
    let count = |f: fn(&crate::h264::slot::H264Slot) -> u64| {
        h264.map_or("null".to_string(), |s| f(s).to_string())
    };
    match h264 {
        Some(s) => field_str(&mut j, "h264_encoder", s.encoder()),
        None => field_raw(&mut j, "h264_encoder", "null"),
    }
    field_raw(&mut j, "h264_viewers", count(|s| s.viewers()));
    field_raw(&mut j, "h264_frames_encoded", count(|s| s.encoded()));
    field_raw(&mut j, "h264_frames_skipped", count(|s| s.skipped()));
    // WebRTC: null when off.
    let webrtc = state.webrtc.as_deref();
    field_raw(&mut j, "webrtc", webrtc.is_some());
    field_raw(
        &mut j,
        "webrtc_sessions",
        webrtc.map_or("null".into(), |d| d.peers().to_string()),
    );
    field_raw(
        &mut j,
        "webrtc_port",
        webrtc.map_or("null".into(), |d| d.port().to_string()),
    );
    field_raw(&mut j, "players", players_json(state));
    field_raw(&mut j, "auth", state.guard.is_some());
    field_raw(&mut j, "https", state.tls);
    field_raw(&mut j, "uptime_seconds", state.started.elapsed().as_secs());
    j.pop(); // the last comma
    j.push_str("}\n");
    j
}

/// The players this server feeds, best first: what the viewer page tries in order.
pub fn players(state: &AppState) -> Vec<&'static str> {
    let mut list = Vec::with_capacity(3);
    if state.webrtc.is_some() {
        list.push("webrtc");
    }
    if state.h264.is_some() {
        list.push("mp4");
    }
    list.push("mjpeg");
    list
}

fn players_json(state: &AppState) -> String {
    let quoted: Vec<String> = players(state).iter().map(|p| format!("\"{p}\"")).collect();
    format!("[{}]", quoted.join(","))
}

fn field_raw(j: &mut String, key: &str, value: impl std::fmt::Display) {
    let _ = write!(j, "\"{key}\":{value},");
}

fn field_str(j: &mut String, key: &str, value: &str) {
    let _ = write!(j, "\"{key}\":\"");
    escape_into(j, value);
    j.push_str("\",");
}
