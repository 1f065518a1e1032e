//! camera-streamer's WebRTC signalling (`POST /webrtc`, JSON), which Mainsail, Fluidd and
//! Home Assistant's WebRTC cards speak: the messages read from clients and the answers
//! written back.
//!
//! The exchange, as camera-streamer's own page runs it:
//!
//! 1. `{"type":"request"}` → `{"type":"offer","id":ID,"sdp":OFFER,"iceServers":[]}`: this
//!    side offers a video stream;
//! 2. `{"type":"answer","id":ID,"sdp":ANSWER}` → `{}`;
//! 3. any number of `{"type":"remote_candidate","id":ID,"candidates":[{"candidate":...}]}`
//!    → `{}` (an ICE-lite server learns the client's address from its probes anyway).
//!
//! A client may instead send its own offer, `{"type":"offer","sdp":OFFER}`, and gets
//! `{"type":"answer","id":ID,"sdp":ANSWER}`, as with WHEP. Other keys (`res`,
//! `iceServers`) are read past. A message is outside input: it is read by
//! [`crate::json::read_document`] with its depth bound, and candidates are counted and
//! their lengths bounded here (fuzz target `webrtc_json`).

use crate::json::{read_document, string, Json};

use super::{is_session_id, Opened};

/// The most candidates one message may carry.
pub const MAX_CANDIDATES: usize = 64;

/// The longest candidate line taken.
pub const MAX_CANDIDATE_LEN: usize = 1024;

/// One message from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Asks this side for an offer.
    Request,
    /// The client's own offer.
    Offer { sdp: String },
    /// The client's answer to this side's offer of session `id`.
    Answer { id: String, sdp: String },
    /// The client's ICE candidates for session `id`, without the `a=` prefix; an empty
    /// candidate (the end of candidates) is left out.
    Candidates { id: String, candidates: Vec<String> },
}

/// Reads one message; the error is one line for the client.
pub fn read(body: &[u8]) -> Result<Message, String> {
    let doc = read_document(body)?;
    if !matches!(doc, Json::Object(_)) {
        return Err("expected a JSON object with a \"type\"".into());
    }
    let kind = doc
        .get("type")
        .and_then(Json::text)
        .ok_or("expected a \"type\": request, offer, answer or remote_candidate")?;
    let text = |key: &str| -> Result<String, String> {
        doc.get(key)
            .and_then(Json::text)
            .map(str::to_string)
            .ok_or_else(|| format!("a \"{kind}\" message needs a \"{key}\" string"))
    };
    let id = || -> Result<String, String> {
        let id = text("id")?;
        if is_session_id(&id) {
            Ok(id)
        } else {
            Err("\"id\" is not a session id this server gave".into())
        }
    };
    match kind {
        "request" => Ok(Message::Request),
        "offer" => Ok(Message::Offer { sdp: text("sdp")? }),
        "answer" => Ok(Message::Answer {
            id: id()?,
            sdp: text("sdp")?,
        }),
        "remote_candidate" => {
            let id = id()?;
            let Some(Json::Array(items)) = doc.get("candidates") else {
                return Err("a \"remote_candidate\" message needs a \"candidates\" array".into());
            };
            if items.len() > MAX_CANDIDATES {
                return Err(format!(
                    "at most {MAX_CANDIDATES} candidates in one message"
                ));
            }
            let mut candidates = Vec::new();
            for item in items {
                let line = match item {
                    Json::Text(t) => t.as_str(),
                    Json::Object(_) => item.get("candidate").and_then(Json::text).unwrap_or(""),
                    Json::Null => "",
                    _ => return Err("a candidate is an object with a \"candidate\" string".into()),
                };
                let line = line.trim().trim_start_matches("a=");
                if line.len() > MAX_CANDIDATE_LEN {
                    return Err(format!("a candidate longer than {MAX_CANDIDATE_LEN} bytes"));
                }
                if !line.is_empty() {
                    candidates.push(line.to_string());
                }
            }
            Ok(Message::Candidates { id, candidates })
        }
        other => Err(format!(
            "unknown \"type\" {}: expected request, offer, answer or remote_candidate",
            quoted(other)
        )),
    }
}

fn quoted(s: &str) -> String {
    let mut j = String::new();
    string(&mut j, &s.chars().take(40).collect::<String>());
    j
}

/// The reply to a `request`: this side's offer.
pub fn offer_reply(opened: &Opened) -> String {
    session_reply("offer", opened, ",\"iceServers\":[]")
}

/// The reply to a client's `offer`: this side's answer.
pub fn answer_reply(opened: &Opened) -> String {
    session_reply("answer", opened, "")
}

fn session_reply(kind: &str, opened: &Opened, extra: &str) -> String {
    let mut j = format!("{{\"type\":\"{kind}\",\"id\":");
    string(&mut j, &opened.id);
    j.push_str(",\"sdp\":");
    string(&mut j, &opened.sdp);
    j.push_str(extra);
    j.push('}');
    j
}

/// The reply to an error: `{"error":WHY}`.
pub fn error_reply(why: &str) -> String {
    let mut j = String::from("{\"error\":");
    string(&mut j, why);
    j.push('}');
    j
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn reads_the_messages_camera_streamers_page_sends() {
        let request = br#"{"type":"request","res":null,"iceServers":[[{"urls":["stun:x"]}]]}"#;
        assert_eq!(read(request), Ok(Message::Request));
        let answer = format!(r#"{{"type":"answer","id":"{ID}","sdp":"v=0\r\n"}}"#);
        assert_eq!(
            read(answer.as_bytes()),
            Ok(Message::Answer {
                id: ID.into(),
                sdp: "v=0\r\n".into()
            })
        );
        let candidates = format!(
            r#"{{"type":"remote_candidate","id":"{ID}","candidates":[
              {{"candidate":"candidate:1 1 udp 2122260223 192.168.1.5 51000 typ host",
                "sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"abcd"}},
              {{"candidate":""}}, "a=candidate:2 1 udp 1 10.0.0.2 9 typ host"]}}"#
        );
        assert_eq!(
            read(candidates.as_bytes()),
            Ok(Message::Candidates {
                id: ID.into(),
                candidates: vec![
                    "candidate:1 1 udp 2122260223 192.168.1.5 51000 typ host".into(),
                    "candidate:2 1 udp 1 10.0.0.2 9 typ host".into(),
                ]
            })
        );
        assert_eq!(
            read(br#"{"type":"offer","sdp":"v=0"}"#),
            Ok(Message::Offer { sdp: "v=0".into() })
        );
    }

    #[test]
    fn refuses_what_it_cannot_use_with_a_reason() {
        for (body, says) in [
            (&b"[1]"[..], "JSON object"),
            (b"{}", "\"type\""),
            (b"{\"type\":\"dance\"}", "unknown \"type\" \"dance\""),
            (b"{\"type\":\"answer\",\"sdp\":\"v=0\"}", "\"id\""),
            (
                b"{\"type\":\"answer\",\"id\":\"../x\",\"sdp\":\"v=0\"}",
                "session id",
            ),
            (b"{\"type\":\"offer\"}", "\"sdp\""),
            (b"{\"type\":", "bad JSON"),
        ] {
            let err = read(body).unwrap_err();
            assert!(err.contains(says), "{err}");
        }
        let many = format!(
            r#"{{"type":"remote_candidate","id":"{ID}","candidates":[{}]}}"#,
            vec!["\"candidate:1\""; MAX_CANDIDATES + 1].join(",")
        );
        assert!(read(many.as_bytes()).unwrap_err().contains("at most"));
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(read(deep.as_bytes()).unwrap_err().contains("nested"));
    }

    #[test]
    fn replies_are_json_the_reader_reads_back() {
        let opened = Opened {
            id: ID.into(),
            sdp: "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n".into(),
        };
        let reply = offer_reply(&opened);
        let doc = read_document(reply.as_bytes()).unwrap();
        assert_eq!(doc.get("type").and_then(Json::text), Some("offer"));
        assert_eq!(
            doc.get("sdp").and_then(Json::text),
            Some(opened.sdp.as_str())
        );
        assert_eq!(doc.get("iceServers"), Some(&Json::Array(vec![])));
        let doc = read_document(answer_reply(&opened).as_bytes()).unwrap();
        assert_eq!(doc.get("id").and_then(Json::text), Some(ID));
        let doc = read_document(error_reply("no \"x\"").as_bytes()).unwrap();
        assert_eq!(doc.get("error").and_then(Json::text), Some("no \"x\""));
    }
}
