//! What one password check costs: prints the time of one verification for each kind of
//! stored secret (bcrypt at htpasswd's cost 5 and at the bcrypt library's default cost
//! 12, SHA-512-crypt and SHA-256-crypt at their default 5000 rounds, a plain password),
//! and of a request whose credentials were verified before (the gate's cache). Then,
//! with users of all those kinds in one file, the median time of a wrong password for
//! each user against that of an unknown user name: as the stored hashes check it
//! (`Credentials::verify`) and as the server answers it (`Guard::check`, which holds
//! every refusal back to the slowest check).
//!
//!   cargo bench --bench auth_cost

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use picam_stream::auth::{decode_authorization, Credentials, Guard, Precheck, Verdict};

/// CPU time this thread has used (unlike wall time, not inflated by other processes
/// sharing the cores).
fn thread_cpu() -> Duration {
    use nix::sys::resource::{getrusage, UsageWho};
    let u = getrusage(UsageWho::RUSAGE_THREAD).expect("getrusage");
    let t = |tv: nix::sys::time::TimeVal| {
        Duration::from_secs(tv.tv_sec() as u64) + Duration::from_micros(tv.tv_usec() as u64)
    };
    t(u.user_time()) + t(u.system_time())
}

/// Runs `f` until `budget` of CPU time is spent (at least twice); returns the CPU time
/// and the wall time of one run.
fn time_one(budget: Duration, mut f: impl FnMut() -> bool) -> (Duration, Duration) {
    assert!(f(), "the right password must verify");
    let wall = Instant::now();
    let cpu = thread_cpu();
    let mut runs = 0u32;
    while runs < 2 || thread_cpu() - cpu < budget {
        black_box(f());
        runs += 1;
    }
    ((thread_cpu() - cpu) / runs, wall.elapsed() / runs)
}

fn row(name: &str, (cpu, wall): (Duration, Duration)) {
    println!(
        "  {name:<48} {:>12.1} µs CPU {:>12.1} µs wall",
        cpu.as_secs_f64() * 1e6,
        wall.as_secs_f64() * 1e6
    );
}

fn main() {
    const SHA512: &str = "$6$abcdefgh$ltjgWl6579NluT/Vi1nwEvcil.G5Nbc4NiXZaNGStk8PSwGfQv72N2CKPPrVACtLtip/cZ/1GM/O6IND4WQhG.";
    const SHA256: &str = "$5$abcdefgh$gruCpC7VkOTspMQTTSAR8mtlO9Upms.fwqE5y16JVM.";
    let budget = Duration::from_millis(1500);
    let cases = [
        (
            "bcrypt cost 5 (htpasswd -nB)",
            bcrypt::hash("secret", 5).unwrap(),
        ),
        ("bcrypt cost 10", bcrypt::hash("secret", 10).unwrap()),
        (
            "bcrypt cost 12 (bcrypt default)",
            bcrypt::hash("secret", bcrypt::DEFAULT_COST).unwrap(),
        ),
        (
            "SHA-512-crypt 5000 rounds (openssl passwd -6)",
            SHA512.to_string(),
        ),
        (
            "SHA-256-crypt 5000 rounds (openssl passwd -5)",
            SHA256.to_string(),
        ),
    ];
    println!("auth_cost: one verification of the right password on this machine");
    for (name, hash) in cases {
        let mut c = Credentials::default();
        c.add_file_text(Path::new("bench"), &format!("ann:{hash}\n"))
            .unwrap();
        row(name, time_one(budget, || c.verify("ann", "secret")));
    }
    let mut plain = Credentials::default();
    plain.add_plain("ann:secret").unwrap();
    row(
        "plain (--auth USER:PASSWORD)",
        time_one(budget, || plain.verify("ann", "secret")),
    );

    // A request with credentials verified before: decode, digest, compare with the cache.
    let mut c = Credentials::default();
    c.add_file_text(
        Path::new("bench"),
        &format!(
            "ann:{}\n",
            bcrypt::hash("secret", bcrypt::DEFAULT_COST).unwrap()
        ),
    )
    .unwrap();
    let guard = Guard::new(c);
    let header = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("ann:secret")
    );
    let Precheck::Verify(p) = guard.precheck(Some(&header), None) else {
        panic!("first use needs a verification")
    };
    assert!(guard.verify(&p, None));
    row(
        "remembered credentials (any kind, per request)",
        time_one(budget, || {
            guard.precheck(Some(&header), None) == Precheck::Known
        }),
    );
    println!("  (CPU time of the measuring thread; wall time also counts waiting for a core)");
    refusals();
}

/// Median wall time of `runs` calls of `f`.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

/// A wrong password for each kind of user, and an unknown name, side by side.
fn refusals() {
    const SHA512: &str = "$6$abcdefgh$ltjgWl6579NluT/Vi1nwEvcil.G5Nbc4NiXZaNGStk8PSwGfQv72N2CKPPrVACtLtip/cZ/1GM/O6IND4WQhG.";
    const SHA256: &str = "$5$abcdefgh$gruCpC7VkOTspMQTTSAR8mtlO9Upms.fwqE5y16JVM.";
    const RUNS: usize = 7;
    // The cheap kinds first: an unknown name once met the first user's hash.
    let users = [
        ("sha512", "SHA-512-crypt 5000 rounds", SHA512.to_string()),
        ("sha256", "SHA-256-crypt 5000 rounds", SHA256.to_string()),
        ("bc5", "bcrypt cost 5", bcrypt::hash("secret", 5).unwrap()),
        (
            "bc12",
            "bcrypt cost 12",
            bcrypt::hash("secret", 12).unwrap(),
        ),
    ];
    let mut c = Credentials::default();
    let text: String = users
        .iter()
        .map(|(name, _, hash)| format!("{name}:{hash}\n"))
        .collect();
    c.add_file_text(Path::new("bench"), &text).unwrap();
    c.add_plain("plain:secret").unwrap();
    let mut cases: Vec<(String, &str)> = users
        .iter()
        .map(|(name, what, _)| (format!("wrong password, {what}"), *name))
        .collect();
    cases.push(("wrong password, plain (--auth)".into(), "plain"));
    cases.push(("unknown user name".into(), "nobody"));

    let guard = Guard::new(c.clone());
    println!("auth_cost: median wall time of a refused check, {RUNS} runs each");
    println!("  {:<48} {:>12} {:>12}", "", "hash only", "as answered");
    // Bounded: the timing at start takes about one check of each kind.
    for _ in 0..600 {
        if guard.slowest_check().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for (what, name) in cases {
        let hash_only = median(RUNS, || {
            black_box(c.verify(name, "wrong"));
        });
        let presented = decode_authorization(&format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{name}:wrong"))
        ))
        .unwrap();
        let answered = median(RUNS, || {
            assert_eq!(guard.check(&presented, None), Verdict::Refused);
        });
        println!(
            "  {what:<48} {:>9.1} ms {:>9.1} ms",
            hash_only.as_secs_f64() * 1e3,
            answered.as_secs_f64() * 1e3
        );
    }
    if let Some(slowest) = guard.slowest_check() {
        println!(
            "  (slowest check seen: {:.1} ms; every refusal is held back to it)",
            slowest.as_secs_f64() * 1e3
        );
    }
}
