//! Who may watch, against the real binary over TCP: HTTP Basic on every endpoint, users
//! from an auth file with bcrypt and SHA-crypt hashes, wrong passwords held off, a first
//! login getting in while many addresses guess, CORS only when asked for, and no URL
//! reaching the file system.

mod common;

use std::io::{BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::*;

const SMALL: &[&str] = &["--source", "test", "--size", "160x120", "--fps", "10"];
const CHALLENGE: &str = "Basic realm=\"picam-stream\", charset=\"UTF-8\"";

/// Every URL the server answers, and some it does not.
const PATHS: &[&str] = &[
    "/",
    "/index.html",
    "/stream.mjpg",
    "/stream.mjpg?advance_headers=1",
    "/stream",
    "/?action=stream",
    "/snapshot.jpg",
    "/snapshot",
    "/?action=snapshot",
    "/status",
    "/status.json",
    "/favicon.ico",
    "/no-such-page",
];

fn basic(pair: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

fn start(extra: &[&str]) -> Server {
    let args: Vec<&str> = SMALL.iter().chain(extra).copied().collect();
    Server::start(&args)
}

fn get_as(server: &Server, path: &str, pair: &str) -> Response {
    request_with(server.addr, "GET", path, &[("Authorization", &basic(pair))])
}

/// A fresh directory for one test's files.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("picam-auth-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn without_credentials_every_endpoint_answers_401_with_the_challenge() {
    let server = start(&["--auth", "ann:s3cret-pw"]);
    for path in PATHS {
        for method in ["GET", "HEAD"] {
            let r = request(server.addr, method, path);
            assert_eq!(r.status, 401, "{method} {path}");
            assert_eq!(r.header("www-authenticate"), Some(CHALLENGE), "{path}");
        }
    }
    // Not Basic, not base64, no colon: all the same as nothing.
    for value in ["Bearer abc", "Basic !!!", &basic("no-colon")] {
        let r = request_with(server.addr, "GET", "/status", &[("Authorization", value)]);
        assert_eq!(r.status, 401, "{value}");
    }
    assert_eq!(server.status_as("ann:s3cret-pw")["clients"], 0);
}

trait AsUser {
    fn status_as(&self, pair: &str) -> serde_json::Value;
}

impl AsUser for Server {
    fn status_as(&self, pair: &str) -> serde_json::Value {
        let r = get_as(self, "/status", pair);
        assert_eq!(r.status, 200, "{}", r.text());
        serde_json::from_slice(&r.body).unwrap()
    }
}

#[test]
fn wrong_credentials_401_right_ones_get_page_snapshot_and_stream() {
    let server = start(&["--auth", "ann:s3cret-pw"]);
    for pair in ["ann:wrong", "bob:s3cret-pw", "ann:", "ann:s3cret-pw "] {
        let r = get_as(&server, "/status", pair);
        assert_eq!(r.status, 401, "{pair}");
        assert_eq!(r.header("www-authenticate"), Some(CHALLENGE));
    }
    let right = basic("ann:s3cret-pw");
    let auth = [("Authorization", right.as_str())];
    let status = server.status_as("ann:s3cret-pw");
    assert_eq!(status["auth"], true);
    assert_eq!(status["https"], false);
    let page = request_with(server.addr, "GET", "/index.html", &auth);
    assert_eq!(page.status, 200);
    assert!(page.text().contains("stream.mjpg"));
    let snap = request_with(server.addr, "GET", "/snapshot.jpg", &auth);
    assert_eq!(snap.status, 200);
    assert_eq!(decode(&snap.body).0, 160);
    for path in ["/stream.mjpg", "/stream.mjpg?advance_headers=1"] {
        let mut c = MjpegClient::open_with(server.addr, path, &auth);
        let (w, h, _) = decode(&c.next_jpeg());
        assert_eq!((w, h), (160, 120), "{path}");
    }
}

/// `openssl passwd` output for `password`, if that tool is here.
fn openssl_passwd(flag: &str, password: &str) -> Option<String> {
    let out = Command::new("openssl")
        .args(["passwd", flag, password])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8(out.stdout).unwrap().trim().to_string())
}

/// A SHA-crypt hash as `openssl passwd -6` / `-5` makes it, or made by the library when
/// openssl is not installed.
fn sha_crypt_hash(flag: &str, password: &str) -> String {
    if let Some(h) = openssl_passwd(flag, password) {
        return h;
    }
    eprintln!("openssl not found: making the {flag} hash with the sha-crypt crate");
    use sha_crypt::{Algorithm, PasswordHasher, ShaCrypt};
    let alg = if flag == "-5" {
        Algorithm::Sha256Crypt
    } else {
        Algorithm::Sha512Crypt
    };
    ShaCrypt::from(alg)
        .hash_password_with_salt(password.as_bytes(), b"saltsalt")
        .unwrap()
        .to_string()
}

fn write_auth_file(dir: &Path) -> PathBuf {
    let sha512 = sha_crypt_hash("-6", "pw-for-ann");
    let sha256 = sha_crypt_hash("-5", "pw-for-bob");
    assert!(sha512.starts_with("$6$") && sha256.starts_with("$5$"));
    // htpasswd -nB makes $2y$ at cost 5; the crate makes $2b$: both are accepted.
    let bcrypt_y = bcrypt::hash_with_result("pw-for-cid", 5)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoY);
    let bcrypt_b = bcrypt::hash("pw-for-dee", 4).unwrap();
    let path = dir.join("users");
    let text =
        format!("# who may watch\nann:{sha512}\nbob:{sha256}\n\ncid:{bcrypt_y}\ndee:{bcrypt_b}\n");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn auth_file_with_bcrypt_and_sha_crypt_users() {
    let dir = temp_dir("file");
    let file = write_auth_file(&dir);
    let server = start(&[
        "--auth-file",
        file.to_str().unwrap(),
        "--auth",
        "eve:pw-for-eve",
    ]);
    server.wait_log("access: HTTP Basic, 5 user(s)", Duration::from_secs(5));
    for user in ["ann", "bob", "cid", "dee", "eve"] {
        let pair = format!("{user}:pw-for-{user}");
        // The first frame may still be on its way on a busy machine ("no frame yet").
        let deadline = Instant::now() + Duration::from_secs(10) * slow_factor();
        let r = loop {
            let r = get_as(&server, "/snapshot.jpg", &pair);
            if r.status != 503 || Instant::now() > deadline {
                break r;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(r.status, 200, "{user}: {}", r.text());
        decode(&r.body);
        // Remembered now: a second request needs no new verification and still works.
        assert_eq!(get_as(&server, "/status", &pair).status, 200, "{user}");
        assert_eq!(
            get_as(&server, "/status", &format!("{user}:nope")).status,
            401
        );
    }
    let mut c = MjpegClient::open_with(
        server.addr,
        "/stream.mjpg",
        &[("Authorization", &basic("cid:pw-for-cid"))],
    );
    decode(&c.next_jpeg());
    let _ = std::fs::remove_dir_all(dir);
}

/// Runs the binary expecting it to refuse to start; returns its standard error.
fn refused(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = server_command()
        .args(["--listen", "127.0.0.1:0", "--source", "test"])
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    err
}

#[test]
fn bad_auth_files_and_pairs_stop_with_status_2_naming_file_and_line() {
    let dir = temp_dir("bad");
    let file = dir.join("users");
    let good = bcrypt::hash("x", 4).unwrap();
    std::fs::write(
        &file,
        format!("ann:{good}\n# fine\nbob:$1$md5$notsupported\n"),
    )
    .unwrap();
    let err = refused(&["--auth-file", file.to_str().unwrap()], &[]);
    assert!(
        err.contains(&format!("{} line 3:", file.display())),
        "names file and line: {err}"
    );
    assert!(
        !err.contains("notsupported"),
        "never repeats the hash: {err}"
    );

    std::fs::write(&file, "just-a-name\n").unwrap();
    let err = refused(&["--auth-file", file.to_str().unwrap()], &[]);
    assert!(err.contains("line 1: expected USER:HASH"), "{err}");

    std::fs::write(&file, "# nobody\n").unwrap();
    assert!(refused(&["--auth-file", file.to_str().unwrap()], &[]).contains("no USER:HASH"));
    let missing = dir.join("missing");
    let err = refused(&["--auth-file", missing.to_str().unwrap()], &[]);
    assert!(
        err.contains("cannot read the auth file") && err.contains("missing"),
        "{err}"
    );

    let err = refused(&["--auth", "hunter2"], &[]);
    assert!(err.contains("--auth") && !err.contains("hunter2"), "{err}");
    let err = refused(&[], &[("PICAM_AUTH", "hunter2")]);
    assert!(
        err.contains("PICAM_AUTH") && !err.contains("hunter2"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn credentials_never_reach_the_log_or_status() {
    let password = "Zq7-very-secret";
    // At the debug level, the most the log ever says (start_custom would log at info).
    let mut cmd = server_command();
    cmd.args(["--listen", "127.0.0.1:0"])
        .args(SMALL)
        .stdin(std::process::Stdio::null())
        .env("PICAM_AUTH", format!("watcher:{password}"))
        .env("RUST_LOG", "debug");
    let server = Server::spawn(cmd);
    let good = format!("watcher:{password}");
    let bad = "intruder:Wrong-Guess-42";
    assert_eq!(get_as(&server, "/status", bad).status, 401);
    let status = get_as(&server, "/status", &good);
    assert_eq!(status.status, 200);
    let mut c = MjpegClient::open_with(
        server.addr,
        "/stream.mjpg",
        &[("Authorization", &basic(&good))],
    );
    decode(&c.next_jpeg());
    drop(c);
    server.wait_log("sent a wrong user name or password", Duration::from_secs(5));
    server.wait_log("stopped watching", Duration::from_secs(5));
    let log = server.log_text();
    assert!(
        log.contains("DEBUG"),
        "nothing logged at the debug level:\n{log}"
    );
    let status = status.text();
    for secret in [
        password,
        "watcher",
        "intruder",
        "Wrong-Guess-42",
        &basic(&good)[6..],
        &basic(bad)[6..],
    ] {
        assert!(!log.contains(secret), "{secret:?} in the log:\n{log}");
        assert!(!status.contains(secret), "{secret:?} in /status: {status}");
    }
}

#[test]
fn repeated_wrong_passwords_are_held_off_without_holding_up_others() {
    let server = start(&["--auth", "ann:right-pw"]);
    // Verified once, so remembered: this user is never held off by a guesser.
    assert_eq!(get_as(&server, "/status", "ann:right-pw").status, 200);
    let addr = server.addr;
    let mut statuses = Vec::new();
    // Wrong answers come after a pause, on threads of their own: while four are
    // pending, a known user is answered at once.
    for round in 0..3 {
        let guesses: Vec<_> = (0..4)
            .map(|i| {
                std::thread::spawn(move || {
                    let pair = format!("ann:guess-{round}-{i}");
                    request_with(addr, "GET", "/status", &[("Authorization", &basic(&pair))]).status
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(200));
        let r = get_as(&server, "/status", "ann:right-pw");
        assert_eq!(r.status, 200);
        let pending = guesses.iter().filter(|g| !g.is_finished()).count();
        assert!(
            pending > 0,
            "round {round}: the known user was answered only after the guesses"
        );
        statuses.extend(guesses.into_iter().map(|g| g.join().unwrap()));
    }
    assert!(
        statuses.iter().all(|s| [401, 429, 503].contains(s)),
        "{statuses:?}"
    );
    let r = get_as(&server, "/status", "ann:another-guess");
    assert_eq!(r.status, 429, "after 10 failures in a minute: {}", r.text());
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=61).contains(&retry), "{retry}");
    assert_eq!(get_as(&server, "/status", "ann:right-pw").status, 200);
}

/// `GET path` with `Authorization: Basic pair` over a connection from the loopback
/// address `from` (any of 127.0.0.0/8 reaches the server); the status, or `None` when
/// the connection failed.
fn status_from(from: Ipv4Addr, server: SocketAddr, path: &str, pair: &str) -> Option<u16> {
    use nix::sys::socket::{bind, connect, socket, AddressFamily, SockFlag, SockType, SockaddrIn};
    use std::os::fd::AsRawFd;
    let SocketAddr::V4(server) = server else {
        panic!("the tests listen on IPv4")
    };
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .ok()?;
    bind(
        fd.as_raw_fd(),
        &SockaddrIn::from(SocketAddrV4::new(from, 0)),
    )
    .ok()?;
    connect(fd.as_raw_fd(), &SockaddrIn::from(server)).ok()?;
    let mut s = TcpStream::from(fd);
    s.set_read_timeout(Some(Duration::from_secs(30) * slow_factor()))
        .ok()?;
    let auth = basic(pair);
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut line = String::new();
    std::io::BufRead::read_line(&mut BufReader::new(s), &mut line).ok()?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Finding F3: guessers from many addresses must not keep a person's first login out:
/// checks from addresses with fewer failures go first (`Guard::check`).
#[test]
fn a_first_login_gets_in_while_many_addresses_guess() {
    let dir = temp_dir("guessers");
    let file = dir.join("users");
    // Slow enough that the guessers keep every verification slot busy.
    let hash = bcrypt::hash("right-pw", 8).unwrap();
    std::fs::write(&file, format!("ann:{hash}\n")).unwrap();
    let server = start(&["--auth-file", file.to_str().unwrap()]);
    let addr = server.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    const GUESSERS: u8 = 32;
    let guessers: Vec<_> = (0..GUESSERS)
        .map(|i| {
            let stop = stop.clone();
            let refused = refused.clone();
            std::thread::spawn(move || {
                // Each guesser moves through its share of 127.0.0.2-254, to the next
                // address when held off; bounded by `stop` and a request count.
                let mut host = 2 + i;
                let mut statuses = Vec::new();
                for n in 0..5000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let from = Ipv4Addr::new(127, 0, 0, host);
                    let status = status_from(from, addr, "/status", &format!("ann:guess-{n}"));
                    if status == Some(401) {
                        refused.fetch_add(1, Ordering::SeqCst);
                    }
                    if status == Some(429) {
                        host = host
                            .checked_add(GUESSERS)
                            .filter(|h| *h < 255)
                            .unwrap_or(2 + i);
                    }
                    statuses.push(status);
                }
                statuses
            })
        })
        .collect();
    // The guessers are at it: about every guesser's address has a failure counted (a
    // guess from an address that has not failed yet is as good as the login's).
    let warmup = Instant::now();
    while refused.load(Ordering::SeqCst) < usize::from(GUESSERS) + 8 {
        assert!(
            warmup.elapsed() < Duration::from_secs(60) * slow_factor(),
            "the guesses are not being answered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let start = Instant::now();
    let bound = Duration::from_secs(15) * slow_factor();
    let mut tries = Vec::new();
    // Bounded by `bound`: a real client retries a 503 after a moment.
    while start.elapsed() < bound {
        let status = status_from(Ipv4Addr::LOCALHOST, addr, "/status", "ann:right-pw");
        tries.push(status);
        if status == Some(200) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    let guessed: Vec<_> = guessers
        .into_iter()
        .flat_map(|g| g.join().unwrap())
        .collect();
    assert_eq!(
        tries.last(),
        Some(&Some(200)),
        "the first login did not get in within {bound:?}: {tries:?}"
    );
    assert!(
        tries.iter().all(|t| [Some(200), Some(503)].contains(t)),
        "{tries:?}"
    );
    assert!(guessed.iter().all(|s| s != &Some(200)), "a guess got in");
    eprintln!(
        "first login: {} tries, {:?}; guesses: {} ({} refused, {} busy, {} held off)",
        tries.len(),
        start.elapsed(),
        guessed.len(),
        guessed.iter().filter(|s| **s == Some(401)).count(),
        guessed.iter().filter(|s| **s == Some(503)).count(),
        guessed.iter().filter(|s| **s == Some(429)).count(),
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn cors_headers_only_when_asked_for() {
    let server = start(&[]);
    let r = get(server.addr, "/status");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), None);
    assert_eq!(request(server.addr, "OPTIONS", "/status").status, 405);
    let c = MjpegClient::open(server.addr, "/stream.mjpg");
    assert!(!c.headers.contains_key("access-control-allow-origin"));
    drop(c);

    let origin = "https://viewer.example";
    let server = start(&["--allow-origin", origin, "--auth", "ann:pw-1"]);
    let auth = basic("ann:pw-1");
    let r = request_with(server.addr, "GET", "/status", &[("Authorization", &auth)]);
    assert_eq!(r.header("access-control-allow-origin"), Some(origin));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    let denied = get(server.addr, "/status");
    assert_eq!(denied.status, 401);
    assert_eq!(denied.header("access-control-allow-origin"), Some(origin));
    // The preflight carries no credentials and gets only headers.
    let pre = request_with(
        server.addr,
        "OPTIONS",
        "/status",
        &[
            ("Origin", origin),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "authorization"),
        ],
    );
    assert_eq!(pre.status, 204);
    assert_eq!(pre.header("access-control-allow-origin"), Some(origin));
    assert_eq!(
        pre.header("access-control-allow-methods"),
        // DELETE: a page of another site ends its WHEP session.
        Some("GET, HEAD, POST, DELETE")
    );
    assert_eq!(
        pre.header("access-control-allow-headers"),
        Some("Authorization, Content-Type")
    );
    assert!(pre.body.is_empty());
    assert_eq!(request(server.addr, "POST", "/status").status, 405);
    let mut c = MjpegClient::open_with(server.addr, "/stream.mjpg", &[("Authorization", &auth)]);
    assert_eq!(
        c.headers
            .get("access-control-allow-origin")
            .map(String::as_str),
        Some(origin)
    );
    decode(&c.next_jpeg());

    let server = start(&["--allow-origin", "*"]);
    let r = get(server.addr, "/snapshot.jpg");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("access-control-allow-credentials"), None);
}

#[test]
fn no_url_reaches_the_file_system() {
    // Files the server could serve if any path reached the disk: in its working
    // directory, under the names it uses, and elsewhere by absolute and dotted paths.
    let dir = temp_dir("fs");
    let marker = "FILE-CONTENTS-MUST-NOT-BE-SERVED";
    for name in ["probe.txt", "status", "snapshot.jpg.txt"] {
        std::fs::write(dir.join(name), marker).unwrap();
    }
    let cwd = dir.clone();
    let server = Server::start_custom(SMALL, false, move |cmd| {
        cmd.current_dir(&cwd);
    });
    let abs = format!("{}", dir.join("probe.txt").display());
    let paths = [
        "/probe.txt".to_string(),
        "/./probe.txt".into(),
        "//probe.txt".into(),
        "/%2e/probe.txt".into(),
        "/../probe.txt".into(),
        "/..%2fprobe.txt".into(),
        "/snapshot.jpg.txt".into(),
        "/index.html/../probe.txt".into(),
        abs.clone(),
        format!("/..{abs}"),
        "/../../../../etc/passwd".into(),
        "/etc/hostname".into(),
    ];
    for path in &paths {
        let r = get(server.addr, path);
        assert_eq!(r.status, 404, "{path}");
        assert!(!r.text().contains(marker), "{path} served a file");
        assert!(!r.text().contains("root:"), "{path} served /etc/passwd");
    }
    // /status is the server's own document, not the file named status.
    assert!(!get(server.addr, "/status").text().contains(marker));
    let _ = std::fs::remove_dir_all(dir);
}

#[cfg(not(feature = "tls"))]
#[test]
fn tls_options_in_a_binary_without_tls_say_how_to_get_it() {
    let err = refused(&["--tls-cert", "cert.pem", "--tls-key", "key.pem"], &[]);
    assert!(
        err.contains("--tls-cert")
            && err.contains("built without HTTPS")
            && err.contains("--features tls"),
        "{err}"
    );
    assert!(refused(&["--tls-cert", "cert.pem"], &[]).contains("needs --tls-key"));
}

/// Finding F11: a burst of requests with known credentials is answered, every one,
/// with no error and no sign of a stuck server in the log.
#[test]
fn a_burst_of_authorized_requests_is_answered_without_errors() {
    let server = Server::start(&["--source", "test", "--size", "160x120", "--auth", "ann:pw"]);
    let addr = server.addr;
    assert_eq!(get_as(&server, "/status", "ann:pw").status, 200);
    let per_thread = 300 / slow_factor() as usize;
    let clients: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                let auth = basic("ann:pw");
                (0..per_thread)
                    .map(|_| {
                        request_with(addr, "GET", "/status", &[("Authorization", &auth)]).status
                    })
                    .filter(|&s| s != 200)
                    .collect::<Vec<u16>>()
            })
        })
        .collect();
    let other: Vec<u16> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    assert!(other.is_empty(), "answers other than 200: {other:?}");
    let log = server.log_text();
    assert!(!log.contains("ERROR") && !log.contains("panicked"), "{log}");
}
