//! A viewer's SDP against arbitrary text, through the steps the WebRTC thread takes
//! with it on a session of its own: an offer (`POST /whep`, camera-streamer's `offer`)
//! read, accepted by str0m and answered; or an answer to this side's offer
//! (camera-streamer's `answer`) read and accepted, then candidate lines added. The
//! first byte chooses which; the rest is the text.
//!
//! Checked:
//!
//! * nothing panics (a panic here would end every session of the WebRTC thread);
//! * a refusal is always "bad input" (400), never another kind;
//! * an answer this side writes is SDP with H.264 in it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use picam_stream::webrtc::peers::{accept_answer_alone, answer_alone};
use picam_stream::webrtc::Refusal;

fuzz_target!(|data: &[u8]| {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    if choice % 2 == 0 {
        match answer_alone(&text) {
            Ok(answer) => {
                assert!(answer.starts_with("v=0"), "{answer:?}");
                assert!(answer.contains(" H264/90000"), "{answer:?}");
            }
            Err(refusal) => assert!(matches!(refusal, Refusal::Bad(_)), "{refusal:?}"),
        }
    } else {
        let candidates: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("a="))
            .filter(|l| l.starts_with("candidate"))
            .collect();
        if let Err(refusal) = accept_answer_alone(&text, &candidates) {
            assert!(matches!(refusal, Refusal::Bad(_)), "{refusal:?}");
        }
    }
});
