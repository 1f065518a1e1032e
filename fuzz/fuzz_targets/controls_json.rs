//! The reader of `POST /controls` bodies, and of saved settings files (the same reader,
//! with the camera's name as the first entry), against arbitrary bytes.
//!
//! Checked:
//!
//! * nothing panics;
//! * a refusal is one line that says at which byte;
//! * whatever is accepted, written back as JSON by the server's writer, reads back as
//!   the same changes, and that JSON is a fixed point (written again, it is the same);
//! * a settings file is taken only when it names the camera first, and what is taken,
//!   written as a settings file, reads back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use picam_stream::json::{read_changes, write_changes};
use picam_stream::saved_controls;

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
    match saved_controls::parse(data, "test pattern") {
        Ok(values) => {
            let file = saved_controls::render("test pattern", &values);
            let back = saved_controls::parse(file.as_bytes(), "test pattern")
                .unwrap_or_else(|e| panic!("{file:?} written back does not read: {e}"));
            assert_eq!(back, values, "{file:?}");
            assert!(saved_controls::parse(file.as_bytes(), "another camera").is_err());
        }
        Err(why) => assert!(!why.contains('\n') && !why.contains('\r'), "{why:?}"),
    }
});
