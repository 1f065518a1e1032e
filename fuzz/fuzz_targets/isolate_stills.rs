//! The readers of the full-resolution still messages between the server and a source
//! in a process of its own (`--isolate`): the answer the server reads from the source
//! process (a still's size and JPEG, or why none came), and the request the source
//! process reads.
//!
//! Input: one byte choosing the reader (request, answer), then the bytes. Checked:
//!
//! * nothing panics, and a refusal is one line;
//! * whatever is accepted, written again, gives the same bytes;
//! * an accepted still's JPEG reads as a JPEG of the size the answer gives.
#![no_main]

use libfuzzer_sys::fuzz_target;
use picam_stream::source::isolate::still_wire::{read_answer, read_request, request_bytes};

fuzz_target!(|data: &[u8]| {
    let [which, bytes @ ..] = data else {
        return;
    };
    let written = if which % 2 == 0 {
        read_request(bytes).map(|id| request_bytes(id).to_vec())
    } else {
        read_answer(bytes).map(|answer| {
            if let Ok(still) = &answer.outcome {
                let dims = picam_stream::jpeg::inspect(&still.jpeg).expect("checked as a JPEG");
                assert_eq!(
                    (u32::from(dims.width), u32::from(dims.height)),
                    (still.width, still.height)
                );
            }
            answer.to_bytes()
        })
    };
    match written {
        Ok(written) => assert_eq!(written, bytes, "written again, the bytes differ"),
        Err(why) => assert!(!why.contains('\n'), "{why:?}"),
    }
});
