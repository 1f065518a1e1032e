//! camera-streamer's WebRTC signalling (`POST /webrtc` bodies) against arbitrary bytes:
//! the JSON reader and the message reader behind it.
//!
//! Checked:
//!
//! * nothing panics;
//! * a refusal is one line;
//! * an accepted message keeps the bounds the reader promises: session ids as the
//!   server makes them, at most `MAX_CANDIDATES` candidates, none empty or longer than
//!   `MAX_CANDIDATE_LEN`;
//! * the replies the server would write with what was read (its offer, its answer,
//!   an error naming it) read back with the same reader as the same id and SDP.
#![no_main]

use libfuzzer_sys::fuzz_target;
use picam_stream::json::{read_document, Json};
use picam_stream::webrtc::dialect::{
    answer_reply, error_reply, offer_reply, read, Message, MAX_CANDIDATES, MAX_CANDIDATE_LEN,
};
use picam_stream::webrtc::{is_session_id, Opened};

const ID: &str = "00112233445566778899aabbccddeeff";

fuzz_target!(|data: &[u8]| {
    if let Err(why) = read_document(data) {
        assert!(!why.contains('\n') && !why.contains('\r'), "{why:?}");
    }
    let (id, sdp) = match read(data) {
        Ok(Message::Request) => (ID.to_string(), String::from_utf8_lossy(data).into_owned()),
        Ok(Message::Offer { sdp }) => (ID.to_string(), sdp),
        Ok(Message::Answer { id, sdp }) => {
            assert!(is_session_id(&id), "{id:?}");
            (id, sdp)
        }
        Ok(Message::Candidates { id, candidates }) => {
            assert!(is_session_id(&id), "{id:?}");
            assert!(candidates.len() <= MAX_CANDIDATES);
            for c in &candidates {
                assert!(!c.is_empty() && c.len() <= MAX_CANDIDATE_LEN, "{c:?}");
            }
            (id, candidates.join("\r\n"))
        }
        Err(why) => {
            assert!(!why.contains('\n') && !why.contains('\r'), "{why:?}");
            let back = read_document(error_reply(&why).as_bytes()).expect("the error reply");
            assert_eq!(back.get("error").and_then(Json::text), Some(why.as_str()));
            return;
        }
    };
    let opened = Opened { id, sdp };
    let answer = answer_reply(&opened);
    match read(answer.as_bytes()) {
        Ok(Message::Answer { id, sdp }) => {
            assert_eq!((id, sdp), (opened.id.clone(), opened.sdp.clone()))
        }
        other => panic!("{answer:?} read back as {other:?}"),
    }
    let offer = offer_reply(&opened);
    match read(offer.as_bytes()) {
        Ok(Message::Offer { sdp }) => assert_eq!(sdp, opened.sdp),
        other => panic!("{offer:?} read back as {other:?}"),
    }
    let doc = read_document(offer.as_bytes()).expect("the offer reply");
    assert_eq!(doc.get("id").and_then(Json::text), Some(opened.id.as_str()));
});
