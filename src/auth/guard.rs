//! The door every request passes: reads an HTTP Basic `Authorization` header, remembers
//! credentials that were verified, slows down addresses that keep guessing, and makes
//! every refusal cost the same time.
//!
//! Verifying a bcrypt hash is deliberately slow (tens of milliseconds at `htpasswd -B`'s
//! cost on a Pi Zero, seconds at cost 12), so a successful check is remembered: the
//! SHA-256 of the presented `user:password` goes into a small list, and later requests
//! with the same header are let in after a constant-time comparison against that list
//! instead of another hash verification. Failures are counted per client address (an
//! IPv6 address per /64 prefix, the block one subscriber usually gets); an address with
//! too many in a minute is answered `429` without verifying anything until the minute is
//! over.
//!
//! Verifications wait for one of a few slots ([`super::schedule`]), addresses with fewer
//! failures first, so that guessers from many addresses cannot keep out a person logging
//! in. A wrong password is answered no sooner than the slowest verification seen (timed
//! once for every kind and cost of stored hash, in the background, at start), and an
//! unknown user name is checked against the slowest hash, so the time of a refusal does
//! not tell which user names exist. Nothing here logs or returns a presented user name
//! or password.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::schedule::Schedule;
use super::Credentials;
use crate::net::client_host;

/// Verified credentials remembered (their digests).
const CACHE_SIZE: usize = 64;
/// Failed attempts from one address allowed within [`FAILURE_WINDOW`].
pub const MAX_FAILURES: u32 = 10;
/// How long failures are counted, and how long an address is then held off.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Addresses (IPv6: /64 prefixes) whose failures are tracked at once.
pub const TRACKED: usize = 4096;
/// Verifications running at once.
pub const VERIFYING_AT_ONCE: usize = 4;
/// Checks waiting for a verification slot at once (each is a waiting request thread).
pub const MAX_WAITING: usize = 64;
/// How long a check waits for a verification slot before it is answered busy.
pub const MAX_WAIT: Duration = Duration::from_secs(10);
/// A refusal is held back to the slowest verification seen, but never beyond this.
const MAX_PAD: Duration = Duration::from_secs(10);
/// What timing a stored hash at start checks it against.
const PROBE_PASSWORD: &str = "picam-stream timing probe";

/// What a request's `Authorization` header is worth before any hash is verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precheck {
    /// No credentials, or not HTTP Basic: ask for them.
    Missing,
    /// These credentials were verified before.
    Known,
    /// This address failed too often; try again after this long.
    Throttled(Duration),
    /// Needs a verification: call [`Guard::check`] with this.
    Verify(Presented),
}

/// The outcome of [`Guard::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The credentials are right (and now remembered): let the request in.
    Accepted,
    /// Wrong user name or password (the failure is counted): answer `401`.
    Refused,
    /// The address failed too often (perhaps while this check waited); nothing was
    /// verified: answer `429`, trying again after this long.
    Throttled(Duration),
    /// No verification slot came free in time, or too many checks were waiting already;
    /// nothing was verified or counted: answer `503`, trying again in a moment.
    Busy,
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

impl Failures {
    fn age(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.since)
    }

    fn locked(&self, now: Instant) -> bool {
        self.count >= MAX_FAILURES && self.age(now) < FAILURE_WINDOW
    }
}

/// Failures per source address, bounded in size without forgetting a lockout.
///
/// When the table is full and a new address fails, entries whose minute is over go
/// first, then the oldest entry that is not locked out. When every entry is a running
/// lockout, the table fails closed: an address not in it is held off as if locked out,
/// until the first lockout ends (people whose credentials were verified before still get
/// in), and a warning is logged, at most once a minute.
struct FailureTable {
    entries: HashMap<IpAddr, Failures>,
    capacity: usize,
    /// Set while full of running lockouts: when the first of them ends.
    closed_until: Option<Instant>,
    last_warning: Option<Instant>,
}

impl FailureTable {
    fn new(capacity: usize) -> FailureTable {
        FailureTable {
            entries: HashMap::new(),
            capacity: capacity.max(1),
            closed_until: None,
            last_warning: None,
        }
    }

    /// Failures of `source` in its current minute.
    fn failures(&self, source: IpAddr, now: Instant) -> u32 {
        self.entries
            .get(&source)
            .filter(|f| f.age(now) < FAILURE_WINDOW)
            .map_or(0, |f| f.count)
    }

    /// How long `source` is still held off, if it is.
    fn held_off(&self, source: IpAddr, now: Instant) -> Option<Duration> {
        match self.entries.get(&source) {
            Some(f) => f.locked(now).then(|| FAILURE_WINDOW - f.age(now)),
            None => self
                .closed_until
                .filter(|until| *until > now && self.entries.len() >= self.capacity)
                .map(|until| until - now),
        }
    }

    /// Counts a failure of `source`; false when the table is full of lockouts and
    /// `source` is not in it (it is then held off by [`FailureTable::held_off`]).
    fn record(&mut self, source: IpAddr, now: Instant) -> bool {
        if !self.entries.contains_key(&source) && self.entries.len() >= self.capacity {
            self.entries.retain(|_, f| f.age(now) < FAILURE_WINDOW);
        }
        if !self.entries.contains_key(&source) && self.entries.len() >= self.capacity {
            let unlocked = self
                .entries
                .iter()
                .filter(|(_, f)| !f.locked(now))
                .min_by_key(|(_, f)| f.since)
                .map(|(ip, _)| *ip);
            match unlocked {
                Some(ip) => {
                    self.entries.remove(&ip);
                }
                None => {
                    self.closed_until = self
                        .entries
                        .values()
                        .map(|f| f.since + FAILURE_WINDOW)
                        .min();
                    if self
                        .last_warning
                        .is_none_or(|at| now.saturating_duration_since(at) >= FAILURE_WINDOW)
                    {
                        self.last_warning = Some(now);
                        log::warn!(
                            "{} addresses are locked out after wrong passwords, as many as \
                             are tracked: until the first lockout ends, every other address \
                             is held off too (remembered credentials still get in)",
                            self.entries.len()
                        );
                    }
                    return false;
                }
            }
        }
        self.closed_until = None;
        let f = self.entries.entry(source).or_insert(Failures {
            count: 0,
            since: now,
        });
        if f.age(now) >= FAILURE_WINDOW {
            *f = Failures {
                count: 0,
                since: now,
            };
        }
        f.count = f.count.saturating_add(1);
        true
    }
}

/// What the background timing at start found (shared with its thread).
struct Timing {
    /// The slowest verification seen so far, in nanoseconds.
    slowest_nanos: AtomicU64,
    /// The user whose secret an unknown name is checked against.
    decoy: AtomicUsize,
    /// True once every kind and cost of stored secret was timed.
    measured: AtomicBool,
}

impl Timing {
    fn saw(&self, took: Duration) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.slowest_nanos.fetch_max(nanos, Ordering::Relaxed);
    }

    fn slowest(&self) -> Duration {
        Duration::from_nanos(self.slowest_nanos.load(Ordering::Relaxed))
    }
}

/// Times one check of every kind and cost of stored secret; makes the slowest the one
/// unknown names are checked against.
fn measure(credentials: &Credentials, timing: &Timing) {
    let mut slowest: Option<(usize, Duration)> = None;
    for user in credentials.cost_classes() {
        let start = Instant::now();
        let _ = credentials.check_secret(user, PROBE_PASSWORD);
        let took = start.elapsed();
        timing.saw(took);
        if slowest.is_none_or(|(_, t)| took > t) {
            slowest = Some((user, took));
        }
    }
    if let Some((user, _)) = slowest {
        timing.decoy.store(user, Ordering::Relaxed);
    }
    timing.measured.store(true, Ordering::Release);
}

/// Shared by all request threads.
pub struct Guard {
    credentials: Credentials,
    verified: Mutex<VecDeque<[u8; 32]>>,
    failures: Mutex<FailureTable>,
    schedule: Schedule,
    timing: Arc<Timing>,
}

impl Guard {
    /// A guard for `credentials`. Starts timing their hashes on a thread of its own,
    /// which does not delay the caller.
    pub fn new(credentials: Credentials) -> Guard {
        Guard::with_table_size(credentials, TRACKED)
    }

    fn with_table_size(credentials: Credentials, tracked: usize) -> Guard {
        let timing = Arc::new(Timing {
            slowest_nanos: AtomicU64::new(0),
            decoy: AtomicUsize::new(credentials.costliest().unwrap_or(0)),
            measured: AtomicBool::new(false),
        });
        let (copy, timing2) = (credentials.clone(), timing.clone());
        let spawned = std::thread::Builder::new()
            .name("auth-timing".into())
            .stack_size(256 * 1024)
            .spawn(move || measure(&copy, &timing2));
        if let Err(e) = spawned {
            // Refusals are then held back to the slowest verification seen in use.
            log::warn!("cannot start a thread to time password checks: {e}");
        }
        Guard {
            credentials,
            verified: Mutex::new(VecDeque::with_capacity(CACHE_SIZE)),
            failures: Mutex::new(FailureTable::new(tracked)),
            schedule: Schedule::new(VERIFYING_AT_ONCE, MAX_WAITING),
            timing,
        }
    }

    /// How many users may watch.
    pub fn users(&self) -> usize {
        self.credentials.len()
    }

    /// The slowest verification seen, once the timing at start has finished (`None`
    /// before): how long every refusal takes at least (up to 10 s).
    pub fn slowest_check(&self) -> Option<Duration> {
        self.timing
            .measured
            .load(Ordering::Acquire)
            .then(|| self.timing.slowest())
    }

    /// The cheap part of the check, done on the thread that got the request.
    pub fn precheck(&self, authorization: Option<&str>, peer: Option<IpAddr>) -> Precheck {
        let Some(presented) = authorization.and_then(decode_authorization) else {
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

    /// Verifies `presented` from `peer`, on the calling thread (the connection's own),
    /// after [`Guard::precheck`] answered [`Precheck::Verify`].
    ///
    /// Waits up to [`MAX_WAIT`] for one of [`VERIFYING_AT_ONCE`] slots, served before
    /// checks from addresses with more failures (see [`super::schedule`]); answers
    /// [`Verdict::Busy`] when none came free or [`MAX_WAITING`] checks were waiting
    /// already. A success is remembered; a failure is counted against the address and
    /// answered no sooner than the slowest verification seen (the slot is free by then).
    /// Takes at most about `MAX_WAIT` plus one verification plus 10 s.
    pub fn check(&self, presented: &Presented, peer: Option<IpAddr>) -> Verdict {
        let source = peer.map(client_host);
        if let Some(wait) = peer.and_then(|ip| self.held_off(ip)) {
            return Verdict::Throttled(wait);
        }
        let failures = source.map_or(0, |s| self.lock_failures().failures(s, Instant::now()));
        let Some(turn) = self.schedule.wait_turn(failures, MAX_WAIT) else {
            return Verdict::Busy;
        };
        // Locked out by its other guesses while this one waited: verify nothing.
        if let Some(wait) = peer.and_then(|ip| self.held_off(ip)) {
            return Verdict::Throttled(wait);
        }
        let start = Instant::now();
        let right = self.verify_now(presented);
        let took = start.elapsed();
        drop(turn);
        self.timing.saw(took);
        if right {
            return Verdict::Accepted;
        }
        if let Some(source) = source {
            self.lock_failures().record(source, Instant::now());
        }
        self.hold_back(took);
        Verdict::Refused
    }

    /// Verifies `presented` at once, without waiting for a slot: for callers that
    /// schedule verifications themselves (new callers use [`Guard::check`]). Remembers a
    /// success; counts a failure and answers it no sooner than the slowest verification
    /// seen, like `check`.
    pub fn verify(&self, presented: &Presented, peer: Option<IpAddr>) -> bool {
        let start = Instant::now();
        let right = self.verify_now(presented);
        let took = start.elapsed();
        self.timing.saw(took);
        if right {
            return true;
        }
        if let Some(ip) = peer {
            self.lock_failures().record(client_host(ip), Instant::now());
        }
        self.hold_back(took);
        false
    }

    /// Checks against the stored secret (an unknown name against the slowest one);
    /// remembers a success.
    fn verify_now(&self, presented: &Presented) -> bool {
        let decoy = self.timing.decoy.load(Ordering::Relaxed);
        let (right, _) =
            self.credentials
                .verify_with_decoy(&presented.user, &presented.password, decoy);
        if right {
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
        }
        right
    }

    /// Sleeps so that a refusal that took `took` to verify takes as long as the slowest
    /// verification seen (at most [`MAX_PAD`]).
    fn hold_back(&self, took: Duration) {
        let target = self.timing.slowest().min(MAX_PAD);
        if let Some(rest) = target.checked_sub(took).filter(|d| !d.is_zero()) {
            std::thread::sleep(rest);
        }
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

    fn lock_failures(&self) -> std::sync::MutexGuard<'_, FailureTable> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn held_off(&self, ip: IpAddr) -> Option<Duration> {
        self.lock_failures()
            .held_off(client_host(ip), Instant::now())
    }
}

/// Decodes an `Authorization` header value of the form `Basic BASE64(user:password)`
/// (scheme case-insensitive); `None` for anything else, including a decoded text that
/// is not UTF-8 or has no `:`.
pub fn decode_authorization(header: &str) -> Option<Presented> {
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

    fn at(ip: &str) -> Option<IpAddr> {
        Some(ip.parse().unwrap())
    }

    #[test]
    fn check_accepts_refuses_and_throttles() {
        let g = guard();
        let header = basic("ann:secret");
        let Precheck::Verify(right) = g.precheck(Some(&header), at("192.0.2.7")) else {
            panic!("first use needs a verification")
        };
        assert_eq!(g.check(&right, at("192.0.2.7")), Verdict::Accepted);
        assert_eq!(g.precheck(Some(&header), at("192.0.2.8")), Precheck::Known);
        let wrong = decode_authorization(&basic("ann:guess")).unwrap();
        for _ in 0..MAX_FAILURES {
            assert_eq!(g.check(&wrong, at("192.0.2.9")), Verdict::Refused);
        }
        assert!(matches!(
            g.check(&wrong, at("192.0.2.9")),
            Verdict::Throttled(d) if d <= FAILURE_WINDOW
        ));
        assert!(matches!(
            g.precheck(Some(&basic("ann:guess")), at("192.0.2.9")),
            Precheck::Throttled(_)
        ));
        assert_eq!(g.check(&wrong, None), Verdict::Refused);
    }

    #[test]
    fn ipv6_counts_per_64_prefix_and_mapped_ipv4_as_ipv4() {
        assert_eq!(
            client_host("2001:db8:1:2:aaaa::1".parse().unwrap()),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_host("::ffff:192.0.2.1".parse().unwrap()),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
        let g = guard();
        let wrong = decode_authorization(&basic("ann:guess")).unwrap();
        for i in 0..MAX_FAILURES {
            let ip = format!("2001:db8:0:7::{:x}", i + 1);
            assert_eq!(g.check(&wrong, at(&ip)), Verdict::Refused);
        }
        // Another address in the same /64 is held off; the next /64 is not.
        assert!(g
            .held_off("2001:db8:0:7:ffff::1".parse().unwrap())
            .is_some());
        assert!(g.held_off("2001:db8:0:8::1".parse().unwrap()).is_none());
        for _ in 0..MAX_FAILURES {
            assert_eq!(g.check(&wrong, at("::ffff:198.51.100.1")), Verdict::Refused);
        }
        assert!(g.held_off("198.51.100.1".parse().unwrap()).is_some());
    }

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(0xc000_0200 + n))
    }

    #[test]
    fn a_full_table_forgets_no_lockout() {
        let now = Instant::now();
        let mut t = FailureTable::new(3);
        let lock = |t: &mut FailureTable, n: u32, at: Instant| {
            for _ in 0..MAX_FAILURES {
                assert!(t.record(ip(n), at));
            }
        };
        lock(&mut t, 1, now);
        assert!(t.record(ip(2), now));
        lock(&mut t, 3, now);
        // Full: the one address that is not locked out makes room.
        assert!(t.record(ip(4), now));
        assert_eq!(t.failures(ip(2), now), 0);
        for n in [1, 3] {
            assert!(t.held_off(ip(n), now).is_some(), "{n} still locked");
        }
        assert_eq!(t.held_off(ip(4), now), None);
        lock(&mut t, 4, now);
        // Every entry locked: the new address is not recorded, and is held off itself;
        // the locked ones stay locked however many others fail.
        for n in 5..100 {
            assert!(!t.record(ip(n), now), "{n}");
            assert!(t.held_off(ip(n), now).is_some(), "{n}");
        }
        assert_eq!(t.entries.len(), 3);
        for n in [1, 3, 4] {
            assert!(t.held_off(ip(n), now).is_some(), "{n} forgotten");
            assert!(t.failures(ip(n), now) >= MAX_FAILURES);
        }
        // Once the lockouts are over, new addresses are counted again.
        let later = now + FAILURE_WINDOW + Duration::from_secs(1);
        assert_eq!(t.held_off(ip(5), later), None);
        assert!(t.record(ip(5), later));
        assert_eq!(t.held_off(ip(1), later), None);
        assert_eq!(t.failures(ip(5), later), 1);
    }

    #[test]
    fn a_full_table_in_the_guard_keeps_a_locked_address_locked() {
        let g = Guard::with_table_size(guard().credentials, 8);
        let wrong = decode_authorization(&basic("ann:guess")).unwrap();
        for _ in 0..MAX_FAILURES {
            assert_eq!(g.check(&wrong, Some(ip(1))), Verdict::Refused);
        }
        for n in 2..200 {
            let _ = g.check(&wrong, Some(ip(n)));
        }
        assert!(matches!(
            g.check(&wrong, Some(ip(1))),
            Verdict::Throttled(_)
        ));
        assert!(g.lock_failures().entries.len() <= 8);
    }

    /// Waits (bounded) for the timing at start to finish.
    fn measured(g: &Guard) {
        for _ in 0..2000 {
            if g.timing.measured.load(Ordering::Acquire) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("the hashes were never timed");
    }

    #[test]
    fn unknown_names_meet_the_slowest_hash_and_refusals_wait_for_it() {
        let bc = bcrypt::hash("secret", 6).unwrap();
        let mut c = Credentials::default();
        c.add_plain("ann:secret").unwrap();
        c.add_file_text(std::path::Path::new("users"), &format!("bob:{bc}\n"))
            .unwrap();
        let g = Guard::new(c);
        measured(&g);
        assert_eq!(g.timing.decoy.load(Ordering::Relaxed), 1);
        let slowest = g.timing.slowest();
        assert!(slowest > Duration::ZERO);
        // A wrong password for the plain user (a digest, microseconds) is held back to
        // the bcrypt user's time.
        let wrong = decode_authorization(&basic("ann:guess")).unwrap();
        let start = Instant::now();
        assert_eq!(g.check(&wrong, at("192.0.2.1")), Verdict::Refused);
        assert!(start.elapsed() >= slowest.min(MAX_PAD));
        let start = Instant::now();
        assert!(!g.verify(&wrong, at("192.0.2.1")));
        assert!(start.elapsed() >= slowest.min(MAX_PAD));
        let right = decode_authorization(&basic("bob:secret")).unwrap();
        assert_eq!(g.check(&right, at("192.0.2.1")), Verdict::Accepted);
    }

    #[test]
    fn a_first_login_gets_a_slot_while_many_addresses_guess() {
        let bc = bcrypt::hash("secret", 7).unwrap();
        let mut c = Credentials::default();
        c.add_file_text(std::path::Path::new("users"), &format!("ann:{bc}\n"))
            .unwrap();
        let g = Arc::new(Guard::new(c));
        measured(&g);
        let stop = Arc::new(AtomicBool::new(false));
        let guessers: Vec<_> = (0..24u32)
            .map(|n| {
                let (g, stop) = (g.clone(), stop.clone());
                std::thread::spawn(move || {
                    let wrong = decode_authorization(&basic("ann:guess")).unwrap();
                    let mut busy = 0;
                    // Bounded: a lockout ends the loop, and so does `stop`.
                    for _ in 0..MAX_FAILURES {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        match g.check(&wrong, Some(ip(10 + n))) {
                            Verdict::Refused => {}
                            Verdict::Busy => busy += 1,
                            other => panic!("{other:?}"),
                        }
                    }
                    busy
                })
            })
            .collect();
        // Every slot taken and guessers waiting, each of them with failures.
        for _ in 0..2000 {
            let (running, waiting) = g.schedule.load();
            if running == VERIFYING_AT_ONCE && waiting >= 8 {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let right = decode_authorization(&basic("ann:secret")).unwrap();
        assert_eq!(g.check(&right, Some(ip(1))), Verdict::Accepted);
        stop.store(true, Ordering::Relaxed);
        for t in guessers {
            t.join().unwrap();
        }
    }
}
