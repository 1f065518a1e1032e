//! HTTPS against the real binary (built with `--features tls`): a certificate made with
//! openssl as the README says, curl as the client verifying it, the page and a stream
//! whose frames decode, HTTP Basic over TLS, and bad certificate files refused.
#![cfg(feature = "tls")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

const SMALL: &[&str] = &["--source", "test", "--size", "160x120", "--fps", "10"];

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("picam-tls-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A self-signed certificate for 127.0.0.1 with the README's openssl command.
fn make_cert(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "3650"])
        .args(["-subj", "/CN=picam-stream"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is needed for the TLS tests (apt-get install openssl)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

fn start_tls(dir: &Path, extra: &[&str]) -> Server {
    let (cert, key) = make_cert(dir);
    let mut args: Vec<&str> = SMALL.to_vec();
    args.extend_from_slice(&["--tls-cert", cert.to_str().unwrap()]);
    args.extend_from_slice(&["--tls-key", key.to_str().unwrap()]);
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// curl, verifying the server against `dir/cert.pem`; `-D -` puts the head in stdout.
fn curl(dir: &Path, args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "-D", "-", "--cacert"])
        .arg(dir.join("cert.pem"))
        .args(args)
        .output()
        .expect("curl is needed for the TLS tests (apt-get install curl)")
}

fn status_of(out: &Output) -> u16 {
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no HTTP answer: {text:?} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

/// The complete classic-format parts in `bytes` (after the response head).
fn parts(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Some(at) = find(rest, b"--FRAME\r\n") {
        rest = &rest[at + 9..];
        let Some(end) = find(rest, b"\r\n\r\n") else {
            break;
        };
        let head = String::from_utf8_lossy(&rest[..end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .expect("classic parts have Content-Length")
            .trim()
            .parse()
            .unwrap();
        let body = &rest[end + 4..];
        if body.len() < len {
            break;
        }
        out.push(body[..len].to_vec());
        rest = &body[len..];
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn page_status_and_stream_over_https() {
    let dir = temp_dir("serve");
    let server = start_tls(&dir, &[]);
    server.wait_log("serving HTTPS", std::time::Duration::from_secs(5));
    let base = format!("https://127.0.0.1:{}", server.addr.port());

    let page = curl(&dir, &[&format!("{base}/index.html")]);
    assert_eq!(status_of(&page), 200);
    assert!(String::from_utf8_lossy(&page.stdout).contains("stream.mjpg?advance_headers=1"));

    let status = curl(&dir, &[&format!("{base}/status")]);
    assert_eq!(status_of(&status), 200);
    assert!(String::from_utf8_lossy(&status.stdout).contains("\"https\":true"));

    let snap = curl(&dir, &["-o", "-", &format!("{base}/snapshot.jpg")]);
    let body = &snap.stdout[find(&snap.stdout, b"\r\n\r\n").unwrap() + 4..];
    assert_eq!(decode(body).0, 160);

    // curl stops after two seconds; ~20 frames at 10 fps have come by then.
    let stream = curl(&dir, &["--max-time", "2", &format!("{base}/stream.mjpg")]);
    assert_eq!(status_of(&stream), 200);
    let got = parts(&stream.stdout);
    assert!(got.len() >= 3, "only {} parts over TLS", got.len());
    for jpeg in [&got[0], got.last().unwrap()] {
        assert_eq!(decode(jpeg).0, 160);
    }
    server.wait_log("stopped watching", std::time::Duration::from_secs(5));

    // Plain HTTP on the HTTPS port gets no HTTP answer.
    assert!(try_get(server.addr, "/status").is_none());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn basic_auth_over_https() {
    let dir = temp_dir("auth");
    let server = start_tls(&dir, &["--auth", "ann:tls-pw"]);
    let url = format!("https://127.0.0.1:{}/stream.mjpg", server.addr.port());
    let denied = curl(&dir, &[&url]);
    assert_eq!(status_of(&denied), 401);
    assert!(String::from_utf8_lossy(&denied.stdout)
        .contains("WWW-Authenticate: Basic realm=\"picam-stream\", charset=\"UTF-8\""));
    let stream = curl(&dir, &["-u", "ann:tls-pw", "--max-time", "2", &url]);
    assert_eq!(status_of(&stream), 200);
    let got = parts(&stream.stdout);
    assert!(!got.is_empty());
    decode(&got[0]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_certificate_files_stop_with_status_2() {
    let dir = temp_dir("bad");
    let (cert, key) = make_cert(&dir);
    let junk = dir.join("junk.pem");
    std::fs::write(&junk, "not a PEM file\n").unwrap();
    let run = |cert: &Path, key: &Path| {
        let out = server_command()
            .args(["--listen", "127.0.0.1:0", "--source", "test"])
            .arg("--tls-cert")
            .arg(cert)
            .arg("--tls-key")
            .arg(key)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        err
    };
    let e = run(&junk, &key);
    assert!(
        e.contains("junk.pem") && e.contains("no PEM CERTIFICATE"),
        "{e}"
    );
    let e = run(&cert, &junk);
    assert!(e.contains("junk.pem") && e.contains("PRIVATE KEY"), "{e}");
    let e = run(&cert, &dir.join("missing.pem"));
    assert!(
        e.contains("cannot read the TLS key") && e.contains("missing.pem"),
        "{e}"
    );
    // The certificate given as its own key: a PEM file, but no key in it.
    let e = run(&cert, &cert);
    assert!(e.contains("PRIVATE KEY"), "{e}");
    let _ = std::fs::remove_dir_all(dir);
}
