//! Who may watch: the users and their passwords ([`credentials`]) and the check of each
//! request's HTTP Basic credentials ([`guard`]). Knows nothing of HTTP beyond the header.

pub mod credentials;
pub mod guard;

pub use credentials::Credentials;
pub use guard::{Guard, Precheck, Presented};
