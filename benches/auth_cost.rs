//! What one password check costs: prints the time of one verification for each kind of
//! stored secret (bcrypt at htpasswd's cost 5 and at the bcrypt library's default cost
//! 12, SHA-512-crypt and SHA-256-crypt at their default 5000 rounds, a plain password),
//! and of a request whose credentials were verified before (the gate's cache).
//!
//!   cargo bench --bench auth_cost

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use picam_stream::auth::{Credentials, Gate, Precheck};

/// Runs `f` until `budget` is spent (at least twice); returns the time of one run.
fn time_one(budget: Duration, mut f: impl FnMut() -> bool) -> Duration {
    assert!(f(), "the right password must verify");
    let start = Instant::now();
    let mut runs = 0u32;
    while runs < 2 || start.elapsed() < budget {
        black_box(f());
        runs += 1;
    }
    start.elapsed() / runs
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
        let t = time_one(budget, || c.verify("ann", "secret"));
        println!("  {name:<48} {:>10.3} ms", t.as_secs_f64() * 1e3);
    }
    let mut plain = Credentials::default();
    plain.add_plain("ann:secret").unwrap();
    let t = time_one(budget, || plain.verify("ann", "secret"));
    println!(
        "  {:<48} {:>10.3} ms",
        "plain (--auth USER:PASSWORD)",
        t.as_secs_f64() * 1e3
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
    let gate = Gate::new(c);
    let header = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("ann:secret")
    );
    let Precheck::Verify(p) = gate.precheck(Some(&header), None) else {
        panic!("first use needs a verification")
    };
    assert!(gate.verify(&p, None));
    let t = time_one(budget, || {
        gate.precheck(Some(&header), None) == Precheck::Known
    });
    println!(
        "  {:<48} {:>10.3} ms",
        "remembered credentials (any kind, per request)",
        t.as_secs_f64() * 1e3
    );
}
