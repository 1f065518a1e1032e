//! The WebRTC signalling answers: WHEP (`POST /whep` with an SDP offer, `201` with the
//! answer and the session's `Location`, `DELETE` on it to end) and camera-streamer's
//! JSON (`POST /webrtc`). The work is the [`Desk`]'s; this module turns requests into
//! its calls and its results into HTTP answers. Auth and limits on the body apply
//! before this, as for every route.

use super::reply::{Body, Response};
use super::AppState;
use crate::webrtc::dialect::{self, Message};
use crate::webrtc::{is_session_id, Ask, Desk, Refusal};

/// The answer when WebRTC is off.
fn off(state: &AppState) -> Response {
    Response::text(404, format!("{}\n", off_reason(state)))
}

/// Why WebRTC is off.
fn off_reason(state: &AppState) -> String {
    let why = if state.h264.is_none() {
        "no WebRTC here: this server has no H.264 encoder (a binary built with the h264 \
         and webrtc features, or a Pi's hardware encoder)"
    } else {
        "no WebRTC here: this binary was built without the webrtc feature, or \
         --webrtc-port is off"
    };
    format!("{why}; /stream.mjpg serves the same pictures")
}

/// `POST /whep`: answers the client's SDP offer.
pub fn whep_offer(state: &AppState, content_type: Option<&str>, body: &[u8]) -> Response {
    let Some(desk) = &state.webrtc else {
        return off(state);
    };
    let is_sdp = content_type.is_some_and(|t| {
        t.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/sdp"))
    });
    if !is_sdp {
        return Response::text(
            415,
            "a WHEP offer is SDP: send it with Content-Type: application/sdp\n".into(),
        );
    }
    let Ok(sdp) = std::str::from_utf8(body) else {
        return Response::text(400, "the offer is not UTF-8 text\n".into());
    };
    match desk.answer_offer(sdp.to_string()) {
        Ok(opened) => {
            let response = Response::new(201, Body::Owned(opened.sdp.into_bytes()))
                .with_header("Content-Type", "application/sdp")
                .with_header("Location", &format!("/whep/{}", opened.id))
                .with_header("Cache-Control", "no-cache");
            if state.allow_origin.is_some() {
                response.with_header("Access-Control-Expose-Headers", "Location")
            } else {
                response
            }
        }
        Err(refusal) => refused_text(&refusal),
    }
}

/// `DELETE /whep/ID`: ends the session.
pub fn whep_end(state: &AppState, target: &str) -> Response {
    let Some(desk) = &state.webrtc else {
        return off(state);
    };
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    let id = path.trim_start_matches("/whep/");
    if !is_session_id(id) {
        return refused_text(&Refusal::NoSuchSession);
    }
    match desk.ask(Ask::End(id.to_string())) {
        Ok(_) => Response::new(200, Body::Empty),
        Err(refusal) => refused_text(&refusal),
    }
}

/// `POST /webrtc`: one message of camera-streamer's dialect.
pub fn json(state: &AppState, body: &[u8]) -> Response {
    let Some(desk) = &state.webrtc else {
        return json_answer(404, dialect::error_reply(&off_reason(state)));
    };
    let message = match dialect::read(body) {
        Ok(m) => m,
        Err(why) => return json_answer(400, dialect::error_reply(&why)),
    };
    match answer_message(desk, message) {
        Ok(json) => json_answer(200, json),
        Err(refusal) => json_answer(status(&refusal), dialect::error_reply(&refusal.to_string())),
    }
}

fn answer_message(desk: &Desk, message: Message) -> Result<String, Refusal> {
    Ok(match message {
        Message::Request => dialect::offer_reply(&desk.make_offer()?),
        Message::Offer { sdp } => dialect::answer_reply(&desk.answer_offer(sdp)?),
        Message::Answer { id, sdp } => {
            desk.ask(Ask::AcceptAnswer { id, sdp })?;
            "{}".into()
        }
        Message::Candidates { id, candidates } => {
            desk.ask(Ask::Candidates { id, candidates })?;
            "{}".into()
        }
    })
}

fn json_answer(status: u16, json: String) -> Response {
    Response::new(status, Body::Owned(json.into_bytes()))
        .with_header("Content-Type", "application/json")
        .with_header("Cache-Control", "no-cache")
}

fn status(refusal: &Refusal) -> u16 {
    match refusal {
        Refusal::Bad(_) => 400,
        Refusal::NoSuchSession => 404,
        Refusal::Full | Refusal::Unavailable => 503,
    }
}

fn refused_text(refusal: &Refusal) -> Response {
    let response = Response::text(status(refusal), format!("{refusal}\n"));
    if status(refusal) == 503 {
        response.with_header("Retry-After", "5")
    } else {
        response
    }
}
