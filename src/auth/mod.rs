//! Who may watch: the users and their passwords ([`credentials`]) and the check of each
//! request's HTTP Basic credentials ([`guard`]), whose password verifications take
//! turns ([`schedule`]). Knows nothing of HTTP beyond the header.

pub mod credentials;
pub mod guard;
pub mod schedule;

pub use credentials::Credentials;
pub use guard::{decode_authorization, Guard, Precheck, Presented, Verdict};
