//! The auth-file parser, against arbitrary file contents.
//!
//! Input: the text of an auth file (when it is UTF-8). Checked:
//!
//! * nothing panics, and no hash is verified (a bcrypt cost of 31 would take days);
//! * an error is one line naming the file and a line that exists;
//! * accepted, the file gives one user for each line that is not blank or a comment,
//!   reading it again into the same users fails (every name would be there twice), and
//!   the user an unknown name is checked against is one of them.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use picam_stream::auth::Credentials;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/etc/picam-users");
    let mut users = Credentials::default();
    match users.add_file_text(path, text) {
        Err(message) => {
            assert!(
                !message.contains(['\n', '\r']),
                "error message of more than one line: {message:?}"
            );
            let line = message
                .strip_prefix("/etc/picam-users line ")
                .and_then(|rest| rest.split_once(": "))
                .and_then(|(n, _)| n.parse::<usize>().ok())
                .unwrap_or_else(|| panic!("no file and line in {message:?}"));
            assert!((1..=text.lines().count()).contains(&line), "{message:?}");
        }
        Ok(()) => {
            let entries = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .count();
            assert_eq!(users.len(), entries);
            assert_eq!(users.kinds().len(), entries);
            if entries > 0 {
                let again = users.clone().add_file_text(path, text);
                assert!(again.is_err_and(|e| e.contains("twice")));
                assert!(users.costliest().is_some_and(|i| i < entries));
                assert!(users.cost_classes().iter().all(|&i| i < entries));
            } else {
                assert_eq!(users.costliest(), None);
            }
        }
    }
});
