//! The `Authorization` header decoder, against arbitrary header values and credentials.
//!
//! Input: read twice. As a header value (when it is UTF-8): decoding must not panic, and
//! what it decodes never shows in `Debug`. As the bytes of `user:password`, encoded the
//! way browsers send them: decoding must succeed exactly when they are UTF-8 holding a
//! `:`, whatever the case of the scheme and the blanks around the parts, and decode to
//! the same credentials every way.
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use picam_stream::auth::decode_authorization;

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = std::str::from_utf8(data) {
        if let Some(presented) = decode_authorization(header) {
            assert_eq!(format!("{presented:?}"), "Presented(..)");
        }
    }

    let blob = base64::engine::general_purpose::STANDARD.encode(data);
    let valid = std::str::from_utf8(data).is_ok_and(|text| text.contains(':'));
    let plain = decode_authorization(&format!("Basic {blob}"));
    assert_eq!(plain.is_some(), valid, "Basic {blob}");
    for header in [
        format!("basic {blob}"),
        format!("BASIC {blob}"),
        format!("  Basic {blob}\t"),
        format!("Basic   {blob} "),
    ] {
        assert_eq!(decode_authorization(&header), plain, "{header:?}");
    }
    // Another scheme is never read as Basic.
    assert_eq!(decode_authorization(&format!("Bearer {blob}")), None);
});
