//! The real binary's mDNS responder, queried over loopback: queries go to the multicast
//! group out of `lo` only (never another interface), as a legacy resolver such as
//! `dig -p 5353 @224.0.0.251` sends them, and announcements are read by a socket that
//! joins the group on `lo`. Several servers may answer on one machine at once (the
//! other tests' servers do), so each test uses a host name of its own.
//!
//! `.ci/mdns.sh` repeats this across two network namespaces with independent resolvers.

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use common::{slow_factor, Server};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use picam_stream::mdns::socket::{MdnsSocket, MAX_PACKET};
use picam_stream::mdns::wire::{
    self, query, Message, Name, RData, TYPE_A, TYPE_PTR, TYPE_SRV, TYPE_TXT,
};

const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

fn lo_index() -> u32 {
    nix::net::if_::if_nametoindex("lo").expect("the loopback interface")
}

/// A name no other server on this machine uses.
fn unique(tag: &str) -> String {
    format!("t{}-{tag}", std::process::id())
}

/// Receives packets on `sock` until `want` accepts one or `timeout` passes.
fn receive_until(
    sock: &MdnsSocket,
    timeout: Duration,
    mut want: impl FnMut(&Message, SocketAddrV4) -> bool,
) -> Option<Message> {
    let deadline = Instant::now() + timeout * slow_factor();
    let mut buf = vec![0u8; MAX_PACKET];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        let mut fds = [PollFd::new(sock.as_fd(), PollFlags::POLLIN)];
        let ms = PollTimeout::try_from(left.as_millis().min(10_000) as i32).unwrap();
        if poll(&mut fds, ms).unwrap() == 0 {
            continue;
        }
        let Ok((len, origin)) = sock.recv(&mut buf) else {
            continue;
        };
        if let Ok(msg) = wire::parse(&buf[..len]) {
            if want(&msg, origin.from) {
                return Some(msg);
            }
        }
    }
}

/// A legacy resolver: its own port, queries sent to the group on `lo`.
struct Resolver {
    sock: MdnsSocket,
}

impl Resolver {
    fn new() -> Resolver {
        Resolver {
            sock: MdnsSocket::open(0).expect("an ephemeral UDP port"),
        }
    }

    fn send(&self, packet: &[u8]) {
        self.sock
            .send_multicast(packet, lo_index(), LOOPBACK)
            .expect("send to the group on lo");
    }

    /// Sends the questions and returns the reply that echoes `id`.
    fn ask(&self, id: u16, questions: &[(&str, u16)]) -> Option<Message> {
        self.send(&query(id, questions));
        receive_until(&self.sock, Duration::from_secs(3), |m, _| {
            m.is_response() && m.id == id
        })
    }
}

#[test]
fn answers_address_service_and_enumeration_queries_from_a_legacy_resolver() {
    let name = unique("q");
    let server = Server::start(&["--source", "test", "--fps", "2", "--mdns-name", &name]);
    server.wait_log("mDNS: answering for", Duration::from_secs(10));
    let host = format!("{name}.local");
    let instance = format!("{name}._http._tcp.local");
    let r = Resolver::new();

    let a = r.ask(101, &[(&host, TYPE_A)]).expect("an answer to A");
    assert_eq!(a.questions.len(), 1, "the question is echoed");
    assert_eq!(a.questions[0].name, Name::new(&host));
    assert_eq!(a.answers.len(), 1, "{a:?}");
    assert_eq!(a.answers[0].data, RData::A(LOOPBACK));
    assert!(a.answers[0].ttl <= 10 && !a.answers[0].cache_flush);

    let srv = r
        .ask(102, &[(&instance, TYPE_SRV)])
        .expect("an answer to SRV");
    match &srv.answers[0].data {
        RData::Srv { port, target, .. } => {
            assert_eq!(*port, server.addr.port(), "the HTTP port");
            assert_eq!(*target, Name::new(&host));
        }
        other => panic!("not SRV: {other:?}"),
    }
    assert!(srv.additionals.iter().any(|r| r.data == RData::A(LOOPBACK)));

    let txt = r
        .ask(103, &[(&instance, TYPE_TXT)])
        .expect("an answer to TXT");
    assert_eq!(txt.answers[0].data, RData::Txt(vec![b"path=/".to_vec()]));

    // Every server on this machine offers _http._tcp; ours is among the replies.
    r.send(&query(104, &[("_http._tcp.local", TYPE_PTR)]));
    let ptr = receive_until(&r.sock, Duration::from_secs(3), |m, _| {
        m.id == 104
            && m.answers
                .iter()
                .any(|a| a.data == RData::Ptr(Name::new(&instance)))
    });
    assert!(ptr.is_some(), "no PTR to {instance}");

    r.send(&query(105, &[("_services._dns-sd._udp.local", TYPE_PTR)]));
    let services = receive_until(&r.sock, Duration::from_secs(3), |m, _| {
        m.id == 105
            && m.answers
                .iter()
                .any(|a| a.data == RData::Ptr(Name::new("_http._tcp.local")))
    });
    assert!(services.is_some(), "no service type enumeration");

    // The address is really the server's: the stream's page is there.
    let page = common::get(server.addr, "/index.html");
    assert_eq!(page.status, 200);
}

#[test]
fn announces_at_start_and_says_goodbye_at_exit() {
    let name = unique("announce");
    let instance = Name::new(&format!("{name}._http._tcp.local"));
    let listener = MdnsSocket::open(5353).expect("port 5353, shared");
    listener.join(LOOPBACK).expect("join the group on lo");
    let is_ours = |m: &Message, ttl_zero: bool| {
        m.is_response()
            && m.answers
                .iter()
                .any(|a| a.data == RData::Ptr(instance.clone()) && (a.ttl == 0) == ttl_zero)
    };
    let mut server = Server::start(&["--source", "test", "--fps", "2", "--mdns-name", &name]);
    let first = receive_until(&listener, Duration::from_secs(5), |m, _| is_ours(m, false))
        .expect("an announcement at start");
    let at = Instant::now();
    let srv_port = first.answers.iter().find_map(|a| match a.data {
        RData::Srv { port, .. } if a.name == instance => Some(port),
        _ => None,
    });
    assert_eq!(srv_port, Some(server.addr.port()));
    assert!(first.answers.iter().any(|a| a.data == RData::A(LOOPBACK)));
    receive_until(&listener, Duration::from_secs(3), |m, _| is_ours(m, false))
        .expect("a second announcement");
    assert!(
        at.elapsed() >= Duration::from_millis(500),
        "the announcements are spaced"
    );

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let bye = receive_until(&listener, Duration::from_secs(3), |m, _| is_ours(m, true))
        .expect("goodbye packets at exit");
    assert!(bye.answers.iter().all(|a| a.ttl == 0));
    assert_eq!(server.child.wait().unwrap().code(), Some(0));
}

#[test]
fn malformed_packets_neither_crash_nor_stall_it() {
    let name = unique("garbage");
    let mut server = Server::start(&["--source", "test", "--fps", "2", "--mdns-name", &name]);
    server.wait_log("mDNS: answering for", Duration::from_secs(10));
    let host = format!("{name}.local");
    let r = Resolver::new();
    let good = query(7, &[(&host, TYPE_A)]);
    let mut bad: Vec<Vec<u8>> = (0..good.len()).map(|n| good[..n].to_vec()).collect();
    // A question whose name points at itself, and one pointing forwards.
    bad.push(vec![
        0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1,
    ]);
    bad.push(vec![
        0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 14, 0xC0, 12, 0, 1,
    ]);
    // Counts far beyond the data, a reserved label type, an oversized packet.
    bad.push(vec![
        0, 1, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    ]);
    bad.push(vec![
        0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 1, 0, 1,
    ]);
    bad.push(vec![0x5A; 8000]);
    for p in &bad {
        r.send(p);
    }
    let a = r.ask(9, &[(&host, TYPE_A)]).expect("still answering");
    assert_eq!(a.answers[0].data, RData::A(LOOPBACK));
    assert!(server.child.try_wait().unwrap().is_none(), "still running");
    assert_eq!(common::get(server.addr, "/status").status, 200);
}

#[test]
fn no_mdns_means_no_answer() {
    let name = unique("off");
    let server = Server::start(&["--source", "test", "--mdns-name", &name, "--no-mdns"]);
    let r = Resolver::new();
    // The same query is answered when the responder runs (see the tests above); the
    // server has been up and listening since start returned.
    assert!(r.ask(11, &[(&format!("{name}.local"), TYPE_A)]).is_none());
    assert!(!server.log_text().contains("mDNS"), "{}", server.log_text());
}

#[test]
fn listening_on_ipv6_loopback_gives_out_only_that_address() {
    let name = unique("v6");
    let mut cmd = common::server_command();
    cmd.args([
        "--listen",
        "[::1]:0",
        "--source",
        "test",
        "--mdns-name",
        &name,
    ])
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let r = Resolver::new();
    let host = format!("{name}.local");
    let deadline = Instant::now() + Duration::from_secs(10) * slow_factor();
    let mut answer = None;
    for id in 20.. {
        answer = r.ask(id, &[(&host, wire::TYPE_ANY)]);
        if answer.is_some() || Instant::now() > deadline {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let answer = answer.expect("an answer for the host name");
    assert!(
        answer
            .answers
            .iter()
            .all(|a| !matches!(a.data, RData::A(_))),
        "{answer:?}"
    );
    assert!(answer
        .answers
        .iter()
        .any(|a| a.data == RData::Aaaa(std::net::Ipv6Addr::LOCALHOST)));
}
