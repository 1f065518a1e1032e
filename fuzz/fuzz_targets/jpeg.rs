//! The JPEG checks, the trimming of driver padding and the insertion of the standard
//! Huffman tables, against arbitrary bytes.
//!
//! Checked:
//!
//! * `inspect` accepts only bytes framed by SOI and EOI, with a non-zero size;
//! * `trim_after_eoi` keeps exactly the bytes up to the last EOI;
//! * `with_huffman_tables` either returns its input untouched or inserts the tables as
//!   one block right before the start of scan, and never inserts twice;
//! * a frame with tables inserted decodes exactly as the decoder decodes the frame on
//!   its own when told to use the standard tables (the Motion-JPEG `AVI1` marker): both
//!   fail, or both give the same pixels;
//! * adding tables never makes readable headers unreadable nor changes the size read.
//!
//! The server itself only reads headers; full decoding serves here as the reference. A
//! panic inside that reference decode (zune-jpeg 0.4 has a few on broken pictures) is an
//! outcome to compare like any other, not a failure; a panic anywhere else still is.
#![no_main]

use std::borrow::Cow;
use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use libfuzzer_sys::fuzz_target;
use picam_stream::jpeg::{inspect, trim_after_eoi, with_huffman_tables};
use zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

/// Largest side decoded, so that a few header bytes cannot ask for gigabytes.
const MAX_SIDE: usize = 512;

#[derive(Debug, PartialEq)]
enum Decoded {
    Pixels(Vec<u8>),
    Error,
    DecoderPanicked,
}

thread_local! {
    static IN_REFERENCE_DECODE: Cell<bool> = const { Cell::new(false) };
}

/// Lets panics of the reference decode unwind quietly; every other panic still goes to
/// libFuzzer's hook, which reports the crash.
fn hook_reference_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let fuzzer_hook = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !IN_REFERENCE_DECODE.with(Cell::get) {
                fuzzer_hook(info);
            }
        }));
    });
}

fn decode(data: &[u8]) -> Decoded {
    hook_reference_panics();
    let options = DecoderOptions::default()
        .set_max_width(MAX_SIDE)
        .set_max_height(MAX_SIDE);
    IN_REFERENCE_DECODE.with(|c| c.set(true));
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        JpegDecoder::new_with_options(data, options).decode()
    }));
    IN_REFERENCE_DECODE.with(|c| c.set(false));
    match result {
        Ok(Ok(pixels)) => Decoded::Pixels(pixels),
        Ok(Err(_)) => Decoded::Error,
        Err(_) => Decoded::DecoderPanicked,
    }
}

/// `data` with an APP0 `AVI1` segment after its SOI: the decoder then fills in the
/// standard tables wherever the frame has none, as Motion-JPEG allows.
fn marked_motion_jpeg(data: &[u8]) -> Vec<u8> {
    let mut out = data[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE0, 0x00, 0x07, b'A', b'V', b'I', b'1', 0x00]);
    out.extend_from_slice(&data[2..]);
    out
}

fn summary(d: &Decoded) -> String {
    match d {
        Decoded::Pixels(p) => format!("{} bytes of pixels", p.len()),
        other => format!("{other:?}"),
    }
}

fn is_eoi(w: &[u8]) -> bool {
    w == [0xFF, 0xD9]
}

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = inspect(data) {
        assert!(d.width > 0 && d.height > 0);
        assert!(data.starts_with(&[0xFF, 0xD8]) && data.ends_with(&[0xFF, 0xD9]));
    }

    let trimmed = trim_after_eoi(data);
    assert!(data.starts_with(trimmed));
    if data.windows(2).any(is_eoi) {
        assert!(trimmed.ends_with(&[0xFF, 0xD9]));
        let last_start = trimmed.len() - 2;
        assert!(
            !data[last_start + 1..].windows(2).any(is_eoi),
            "an EOI after the one trimmed to"
        );
    } else {
        assert_eq!(trimmed.len(), data.len());
    }

    let fixed = with_huffman_tables(trimmed);
    let Cow::Owned(fixed) = fixed else {
        assert!(
            std::ptr::eq(&fixed[..], trimmed),
            "borrowed, yet not the input"
        );
        return;
    };
    assert!(fixed.len() > trimmed.len());
    // The block went in at some `at` with everything before and after it unchanged.
    let same_head = trimmed
        .iter()
        .zip(&fixed)
        .take_while(|(a, b)| a == b)
        .count();
    let same_tail = trimmed
        .iter()
        .rev()
        .zip(fixed.iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    assert!(
        same_head + same_tail >= trimmed.len(),
        "not one inserted block"
    );
    let at = (trimmed.len() - same_tail..=same_head)
        .find(|&at| {
            fixed[at..].starts_with(&[0xFF, 0xC4]) && trimmed[at..].starts_with(&[0xFF, 0xDA])
        })
        .expect("no DHT inserted right before a start of scan");
    assert!(
        at >= 2 && trimmed[..2] == [0xFF, 0xD8],
        "tables put before the SOI"
    );
    assert!(
        matches!(with_huffman_tables(&fixed), Cow::Borrowed(_)),
        "tables added twice"
    );

    if let Ok(d) = inspect(trimmed) {
        assert_eq!(
            inspect(&fixed),
            Ok(d),
            "the tables changed what the headers say"
        );
    }

    let ours = decode(&fixed);
    let standard = decode(&marked_motion_jpeg(trimmed));
    assert!(
        ours == standard,
        "with the inserted tables: {}, with the decoder's standard tables: {}",
        summary(&ours),
        summary(&standard)
    );
    if let own @ Decoded::Pixels(_) = decode(trimmed) {
        assert!(ours == own, "a decodable frame decodes otherwise");
    }
});
