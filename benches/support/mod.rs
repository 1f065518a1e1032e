//! What the benchmarks share: the tests' harness (`tests/common`: the server started on
//! a loopback port, /proc readings, hostile clients), and the server started as the
//! benchmarks run it.
#![allow(dead_code)]

pub mod cards;
#[path = "../../tests/common/mod.rs"]
mod common;
pub mod viewers;

#[allow(unused_imports)]
pub use common::*;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Starts the binary cargo built for the benchmarks on an ephemeral loopback port with
/// `args` and `stdin`, without mDNS, logging warnings and its own start-up lines, and
/// waits until it listens. Its standard input, when piped, is left on `child`.
pub fn start_server(args: &[&str], stdin: Stdio) -> Server {
    let mut command = Command::new(built_binary());
    command
        .args(["--listen", "127.0.0.1:0", "--no-mdns"])
        .args(args)
        .env("RUST_LOG", "warn,picam_stream=info")
        .stdin(stdin);
    let mut server = Server::spawn(command);
    server.child.stdin = server.stdin.take();
    server
}

/// Opens `/stream.mjpg` on `addr`: the request sent, reads time out after 10 s.
pub fn open_stream(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connect to the server");
    stream
        .write_all(b"GET /stream.mjpg HTTP/1.1\r\nHost: bench\r\n\r\n")
        .expect("send the request");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("set a read timeout");
    stream
}
