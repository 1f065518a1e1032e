//! Request heads as a connection reads them: arbitrary bytes arriving in pieces,
//! pipelined requests one after another.
//!
//! Input: the first byte chooses the head-size limit (256 bytes to 16 KiB) and how the
//! rest is cut into arriving pieces; the rest is what a client sends. Checked:
//!
//! * nothing panics;
//! * a complete head is never longer than the limit nor than the bytes given, and
//!   parsing only its own bytes gives the same head (nothing after it is looked at);
//! * more bytes never change a decision already made: once a prefix gives a complete
//!   head or a refusal, every longer prefix gives the same;
//! * a refusal has one of the status codes the server sends (400, 408, 431, 505);
//! * pipelined heads are read one after another until the bytes run out or one is
//!   refused, each starting where the previous one ended.
#![no_main]

use libfuzzer_sys::fuzz_target;
use picam_stream::http::head::{parse, Parsed};

fuzz_target!(|data: &[u8]| {
    let Some((&control, mut rest)) = data.split_first() else {
        return;
    };
    let limit = 256usize << (control % 7);
    let step = 1 + (control as usize >> 3);
    for _ in 0..16 {
        if rest.is_empty() {
            return;
        }
        // Arrival in pieces: the decision at each prefix, and that it never changes.
        let mut decided: Option<Parsed> = None;
        let mut end = 0;
        while end < rest.len() {
            end = (end + step).min(rest.len());
            let now = parse(&rest[..end], limit);
            match (&decided, &now) {
                (None, Parsed::Partial) => {}
                (None, _) => decided = Some(now),
                (Some(d), _) => assert_eq!(d, &now, "more bytes changed the decision"),
            }
        }
        match decided {
            None | Some(Parsed::Partial) => return,
            Some(Parsed::Refused(r)) => {
                assert!(matches!(r.status().0, 400 | 408 | 431 | 505));
                assert!(r.explanation().ends_with('\n'));
                return;
            }
            Some(Parsed::Complete(head, len)) => {
                assert!(len <= limit && len <= rest.len() && len > 0);
                assert_eq!(
                    parse(&rest[..len], limit),
                    Parsed::Complete(head.clone(), len)
                );
                assert!(head.minor <= 1);
                assert!(!head.method.is_empty());
                rest = &rest[len..];
            }
        }
    }
});
