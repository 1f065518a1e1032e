//! The door every request passes: reads an HTTP Basic `Authorization` header, remembers
//! credentials that were verified, and slows down addresses that keep guessing.
//!
//! Verifying a bcrypt hash is deliberately slow (tens of milliseconds at `htpasswd -B`'s
//! cost on a Pi Zero, seconds at cost 12), so a successful check is remembered: the
//! SHA-256 of the presented `user:password` goes into a small list, and later requests
//! with the same header are let in after a constant-time comparison against that list
//! instead of another hash verification. Failures are counted per client address; an
//! address with too many in a minute is answered `429` without verifying anything until
//! the minute is over. Nothing here logs or returns a presented user name or password.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Credentials;

/// Verified credentials remembered (their digests).
const CACHE_SIZE: usize = 64;
/// Failed attempts from one address allowed within [`FAILURE_WINDOW`].
pub const MAX_FAILURES: u32 = 10;
/// How long failures are counted, and how long an address is then held off.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Addresses whose failures are tracked at once; beyond this the oldest are forgotten.
const TRACKED: usize = 4096;

/// What a request's `Authorization` header is worth before any hash is verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precheck {
    /// No credentials, or not HTTP Basic: ask for them.
    Missing,
    /// These credentials were verified before.
    Known,
    /// This address failed too often; try again after this long.
    Throttled(Duration),
    /// Needs a verification: call [`Guard::verify`] with this (off the request threads).
    Verify(Presented),
}

/// Credentials as presented, decoded from the header. Its `Debug` hides them.
#[derive(Clone, PartialEq, Eq)]
pub struct Presented {
    user: String,
    password: String,
    digest: [u8; 32],
}

impl std::fmt::Debug for Presented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Presented(..)")
    }
}

struct Failures {
    count: u32,
    since: Instant,
}

/// Shared by all request threads.
pub struct Guard {
    credentials: Credentials,
    verified: Mutex<VecDeque<[u8; 32]>>,
    failures: Mutex<HashMap<IpAddr, Failures>>,
}

impl Guard {
    pub fn new(credentials: Credentials) -> Guard {
        Guard {
            credentials,
            verified: Mutex::new(VecDeque::with_capacity(CACHE_SIZE)),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// How many users may watch.
    pub fn users(&self) -> usize {
        self.credentials.len()
    }

    /// The cheap part of the check, done on the thread that got the request.
    pub fn precheck(&self, authorization: Option<&str>, peer: Option<IpAddr>) -> Precheck {
        let Some(presented) = authorization.and_then(decode_basic) else {
            return Precheck::Missing;
        };
        if self.is_known(&presented.digest) {
            return Precheck::Known;
        }
        if let Some(wait) = peer.and_then(|ip| self.held_off(ip)) {
            return Precheck::Throttled(wait);
        }
        Precheck::Verify(presented)
    }

    /// Verifies `presented` (slow for bcrypt); remembers a success, counts a failure.
    pub fn verify(&self, presented: &Presented, peer: Option<IpAddr>) -> bool {
        if self
            .credentials
            .verify(&presented.user, &presented.password)
        {
            let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
            if !verified
                .iter()
                .any(|d| bool::from(d.ct_eq(&presented.digest)))
            {
                if verified.len() == CACHE_SIZE {
                    verified.pop_front();
                }
                verified.push_back(presented.digest);
            }
            return true;
        }
        if let Some(ip) = peer {
            self.count_failure(ip);
        }
        false
    }

    /// Compares against every remembered digest, always all of them.
    fn is_known(&self, digest: &[u8; 32]) -> bool {
        let verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        let mut found = subtle::Choice::from(0);
        for known in verified.iter() {
            found |= known.ct_eq(digest);
        }
        found.into()
    }

    fn held_off(&self, ip: IpAddr) -> Option<Duration> {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let f = failures.get(&ip)?;
        let age = f.since.elapsed();
        (f.count >= MAX_FAILURES && age < FAILURE_WINDOW).then(|| FAILURE_WINDOW - age)
    }

    fn count_failure(&self, ip: IpAddr) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() >= TRACKED && !failures.contains_key(&ip) {
            failures.retain(|_, f| f.since.elapsed() < FAILURE_WINDOW);
            if failures.len() >= TRACKED {
                failures.clear();
            }
        }
        let f = failures.entry(ip).or_insert(Failures {
            count: 0,
            since: Instant::now(),
        });
        if f.since.elapsed() >= FAILURE_WINDOW {
            *f = Failures {
                count: 0,
                since: Instant::now(),
            };
        }
        f.count += 1;
    }
}

/// `Basic BASE64(user:password)` (scheme case-insensitive), decoded.
fn decode_basic(header: &str) -> Option<Presented> {
    let (scheme, blob) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(blob.trim())
        .ok()?;
    let digest = Sha256::digest(&bytes).into();
    let text = String::from_utf8(bytes).ok()?;
    let (user, password) = text.split_once(':')?;
    Some(Presented {
        user: user.to_string(),
        password: password.to_string(),
        digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(pair: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }

    fn guard() -> Guard {
        let mut c = Credentials::default();
        c.add_plain("ann:secret").unwrap();
        Guard::new(c)
    }

    #[test]
    fn missing_known_and_verified() {
        let g = guard();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(g.precheck(None, Some(ip)), Precheck::Missing);
        assert_eq!(g.precheck(Some("Bearer x"), Some(ip)), Precheck::Missing);
        assert_eq!(g.precheck(Some("Basic !!!"), Some(ip)), Precheck::Missing);
        let header = basic("ann:secret");
        let Precheck::Verify(p) = g.precheck(Some(&header), Some(ip)) else {
            panic!("first use needs a verification")
        };
        assert!(g.verify(&p, Some(ip)));
        assert_eq!(g.precheck(Some(&header), Some(ip)), Precheck::Known);
        assert_eq!(
            g.precheck(Some(&header.replace("Basic", "basic")), Some(ip)),
            Precheck::Known
        );
        assert_eq!(format!("{p:?}"), "Presented(..)");
    }

    #[test]
    fn too_many_failures_hold_off_that_address_only() {
        let g = guard();
        let bad: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let wrong = basic("ann:guess");
        for _ in 0..MAX_FAILURES {
            let Precheck::Verify(p) = g.precheck(Some(&wrong), Some(bad)) else {
                panic!("not yet throttled")
            };
            assert!(!g.verify(&p, Some(bad)));
        }
        assert!(matches!(
            g.precheck(Some(&wrong), Some(bad)),
            Precheck::Throttled(d) if d <= FAILURE_WINDOW && d > Duration::from_secs(50)
        ));
        assert!(matches!(
            g.precheck(Some(&wrong), Some(other)),
            Precheck::Verify(_)
        ));
        // A user whose credentials were verified before is not locked out by a guesser
        // behind the same address.
        let right = basic("ann:secret");
        let Precheck::Verify(p) = g.precheck(Some(&right), Some(other)) else {
            panic!()
        };
        assert!(g.verify(&p, Some(other)));
        assert_eq!(g.precheck(Some(&right), Some(bad)), Precheck::Known);
    }
}
