//! The reader of `POST /controls` bodies against arbitrary bytes.
//!
//! Checked:
//!
//! * nothing panics;
//! * a refusal is one line that says at which byte;
//! * whatever is accepted, written back as JSON by the server's writer, reads back as
//!   the same changes, and that JSON is a fixed point (written again, it is the same).
#![no_main]

use libfuzzer_sys::fuzz_target;
use picam_stream::http::controls::{read_changes, write_changes};

fuzz_target!(|data: &[u8]| {
    match read_changes(data) {
        Ok(changes) => {
            let written = write_changes(&changes);
            let back = read_changes(written.as_bytes())
                .unwrap_or_else(|e| panic!("{written:?} written back does not read: {e}"));
            assert_eq!(back, changes, "{written:?}");
            assert_eq!(write_changes(&back), written);
        }
        Err(why) => {
            assert!(!why.contains('\n') && !why.contains('\r'), "{why:?}");
            assert!(why.contains("byte "), "{why:?}");
        }
    }
});
