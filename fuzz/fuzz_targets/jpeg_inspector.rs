//! The header cache of the frame path (`jpeg::Inspector`) against a sequence of pictures.
//!
//! The server inspects every published picture through one `Inspector`, which skips
//! reading the headers when they are the bytes of the previous picture's. Whatever the
//! sequence, it must answer exactly as reading each picture afresh does.
//!
//! Input: the first byte chooses a separator; the rest, split at it, is a list of items.
//! The first item is a run of headers. Every later item whose first byte is even is a
//! picture on its own; one whose first byte is odd is a body that follows those headers
//! (so that runs of pictures share headers, the case the cache serves, and differ in
//! their bodies: missing or early end-of-image markers, another scan, trailing bytes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use picam_stream::jpeg::{inspect, Inspector};

fuzz_target!(|data: &[u8]| {
    let Some((&separator, rest)) = data.split_first() else {
        return;
    };
    let mut items = rest.split(|&b| b == separator);
    let headers = items.next().unwrap_or_default();
    let mut inspector = Inspector::default();
    let mut picture = Vec::new();
    for item in items.take(64) {
        picture.clear();
        match item.split_first() {
            Some((&kind, body)) if kind % 2 == 1 => {
                picture.extend_from_slice(headers);
                picture.extend_from_slice(body);
            }
            _ => picture.extend_from_slice(item),
        }
        assert_eq!(
            inspector.inspect(&picture),
            inspect(&picture),
            "the cache answered otherwise than a fresh read of {picture:02x?}"
        );
    }
});
