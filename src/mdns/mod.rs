//! Advertising the stream on the local network by multicast DNS and DNS-SD, so that
//! `http://picam.local:8000/` works and service browsers list it, with no avahi needed.
//!
//! One thread owns one UDP socket on port 5353 (shared with any other responder on the
//! machine) and answers queries for `<name>.local` and the `_http._tcp` service; see
//! [`answer`] for the records and [`iface`] for which interfaces and addresses. It
//! announces the records twice, a second apart, when it starts and whenever an interface
//! appears or changes (a Wi-Fi link coming up after boot), checks the interfaces every few
//! seconds, and withdraws everything (TTL 0) when stopped.
//!
//! Deliberately left out, as a single-purpose device on a home network allows: probing
//! for the name before using it (RFC 6762 section 8) and renaming on conflict. When
//! another device answers for the same host name with other addresses, a warning says
//! so once per address, naming `--mdns-name` as the cure. mDNS over IPv6 (ff02::fb) is
//! not spoken; AAAA records are given out over IPv4 when the server listens on IPv6.
//! Replies are sent at once, without the random delay RFC 6762 suggests for shared
//! records, and an identical multicast reply is not repeated within a second.

pub mod answer;
pub mod iface;
pub mod socket;
pub mod wire;

use std::collections::HashSet;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use answer::{Addresses, Identity};
use iface::Interface;
use socket::{MdnsSocket, MAX_PACKET};

use crate::ratelog::{self, RateLimit};

/// The host name used when none is configured.
pub const DEFAULT_NAME: &str = "picam";

/// How often the interfaces are looked at again.
const SCAN_EVERY: Duration = Duration::from_secs(5);

/// Announcements after start or a change: now, and once more after this.
const ANNOUNCE_AGAIN: Duration = Duration::from_secs(1);

/// Most conflicting addresses remembered (each is warned about once).
const MAX_CONFLICTS: usize = 64;

/// Checks a host name label for `--mdns-name`: 1 to 63 letters, digits and hyphens, not
/// starting or ending with a hyphen. A trailing `.local` is accepted and removed.
pub fn parse_name(v: &str) -> Result<String, String> {
    const WANT: &str = "expected a host name such as picam: 1 to 63 letters, digits and \
                        hyphens, not starting or ending with a hyphen";
    let name = v
        .strip_suffix(".local")
        .or_else(|| v.strip_suffix(".local."))
        .unwrap_or(v);
    let ok = (1..=63).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(name.to_string())
    } else {
        Err(WANT.to_string())
    }
}

/// The running responder; [`Mdns::stop`] withdraws the records and ends the thread.
pub struct Mdns {
    stop: OwnedFd,
    thread: JoinHandle<()>,
}

impl Mdns {
    /// Opens the socket and starts answering for `name` (already checked by
    /// [`parse_name`]) about the HTTP server listening on `listen`.
    pub fn start(name: &str, listen: SocketAddr) -> io::Result<Mdns> {
        let sock = MdnsSocket::open(answer::MDNS_PORT)?;
        let (stop_rx, stop_tx) = nix::unistd::pipe()?;
        let responder = Responder {
            sock,
            id: Identity::new(name, listen.port()),
            listen,
            joined: Vec::new(),
            next_scan: Instant::now(),
            conflicts: HashSet::new(),
        };
        let thread = std::thread::Builder::new()
            .name("mdns".into())
            .stack_size(128 * 1024)
            .spawn(move || responder.run(stop_rx))?;
        log::info!(
            "mDNS: advertising http://{name}.local:{}/ (DNS-SD _http._tcp)",
            listen.port()
        );
        Ok(Mdns {
            stop: stop_tx,
            thread,
        })
    }

    /// Sends the goodbye packets and waits for the thread to end.
    pub fn stop(self) {
        let _ = nix::unistd::write(&self.stop, b"x");
        let _ = self.thread.join();
    }
}

/// An interface being answered on, and its announcements still due.
struct Joined {
    iface: Interface,
    announce_at: Vec<Instant>,
    /// The last multicast reply and when it went out.
    last_reply: Option<(Vec<u8>, Instant)>,
}

struct Responder {
    sock: MdnsSocket,
    id: Identity,
    listen: SocketAddr,
    joined: Vec<Joined>,
    next_scan: Instant,
    /// Other hosts' addresses already warned about (at most [`MAX_CONFLICTS`]).
    conflicts: HashSet<Ipv4Addr>,
}

impl Responder {
    fn run(mut self, stop: OwnedFd) {
        let mut buf = vec![0u8; MAX_PACKET];
        loop {
            let now = Instant::now();
            if now >= self.next_scan {
                self.rescan(now);
                self.next_scan = now + SCAN_EVERY;
            }
            self.send_due_announcements(now);
            let next = self
                .joined
                .iter()
                .flat_map(|j| j.announce_at.iter().copied())
                .chain([self.next_scan])
                .min()
                .unwrap_or(self.next_scan);
            let wait = next.saturating_duration_since(Instant::now());
            let timeout = PollTimeout::try_from(wait.as_millis().min(60_000) as i32 + 1)
                .unwrap_or(PollTimeout::MAX);
            let mut fds = [
                PollFd::new(self.sock.as_fd(), PollFlags::POLLIN),
                PollFd::new(stop.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    log::warn!("mDNS: poll failed, stopping: {e}");
                    return;
                }
            }
            let stop_now = fds[1].any().unwrap_or(true);
            let readable = fds[0].any().unwrap_or(false);
            if stop_now {
                self.goodbye();
                return;
            }
            if readable {
                // Drain what is there, but a flood must not starve the timers.
                for _ in 0..64 {
                    match self.sock.recv(&mut buf) {
                        Ok((len, origin)) => self.handle(&buf[..len], origin),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => log::debug!("mDNS: receive: {e}"),
                    }
                }
            }
        }
    }

    /// Joins new interfaces, forgets vanished ones, re-announces changed ones.
    fn rescan(&mut self, now: Instant) {
        let current = iface::scan(self.listen);
        self.joined
            .retain(|j| current.iter().any(|c| c.index == j.iface.index));
        for c in current {
            if let Some(j) = self.joined.iter_mut().find(|j| j.iface.index == c.index) {
                if j.iface == c {
                    continue;
                }
                // New addresses: make sure of the membership and tell the network.
                if let Err(e) = self.sock.join(c.local) {
                    log::warn!("mDNS: cannot join the group on {}: {e}", c.name);
                }
                log::info!("mDNS: {} now has {}", c.name, describe(&c.advertise));
                j.iface = c;
                j.announce_at = vec![now, now + ANNOUNCE_AGAIN];
                continue;
            }
            match self.sock.join(c.local) {
                Ok(()) => {
                    log::info!(
                        "mDNS: answering for {} on {} ({})",
                        self.id.host,
                        c.name,
                        describe(&c.advertise)
                    );
                    self.joined.push(Joined {
                        iface: c,
                        announce_at: vec![now, now + ANNOUNCE_AGAIN],
                        last_reply: None,
                    });
                }
                Err(e) => log::warn!("mDNS: cannot join the group on {}: {e}", c.name),
            }
        }
    }

    fn send_due_announcements(&mut self, now: Instant) {
        for j in &mut self.joined {
            if j.announce_at.first().is_some_and(|t| *t <= now) {
                j.announce_at.remove(0);
                let packet = answer::announcement(&self.id, &j.iface.advertise, false);
                if let Err(e) = self
                    .sock
                    .send_multicast(&packet, j.iface.index, j.iface.local)
                {
                    log::debug!("mDNS: announcing on {}: {e}", j.iface.name);
                }
            }
        }
    }

    fn goodbye(&self) {
        for j in &self.joined {
            let packet = answer::announcement(&self.id, &j.iface.advertise, true);
            if let Err(e) = self
                .sock
                .send_multicast(&packet, j.iface.index, j.iface.local)
            {
                log::debug!("mDNS: goodbye on {}: {e}", j.iface.name);
            }
        }
    }

    fn handle(&mut self, packet: &[u8], origin: socket::Origin) {
        let msg = match wire::parse(packet) {
            Ok(m) => m,
            Err(e) => {
                log::debug!("mDNS: ignored a malformed packet from {}: {e}", origin.from);
                return;
            }
        };
        if msg.is_response() {
            self.check_conflict(&msg, origin);
            return;
        }
        // Only packets that arrived on an interface we serve are answered, and with
        // that interface's addresses. Without the arrival interface (a kernel or
        // emulator that does not report it), the sole interface, if only one.
        let j = match origin.index {
            Some(index) => self.joined.iter_mut().find(|j| j.iface.index == index),
            None if self.joined.len() == 1 => self.joined.first_mut(),
            None => None,
        };
        let Some(j) = j else { return };
        let Some(reply) = answer::reply_to(&self.id, &j.iface.advertise, &msg, origin.from.port())
        else {
            return;
        };
        let result = if reply.unicast {
            self.sock
                .send(&reply.packet, origin.from, j.iface.index, j.iface.local)
        } else {
            let now = Instant::now();
            if let Some((last, at)) = &j.last_reply {
                if *last == reply.packet && now.duration_since(*at) < Duration::from_secs(1) {
                    return;
                }
            }
            j.last_reply = Some((reply.packet.clone(), now));
            self.sock
                .send_multicast(&reply.packet, j.iface.index, j.iface.local)
        };
        if let Err(e) = result {
            log::debug!("mDNS: reply to {}: {e}", origin.from);
        }
    }

    fn check_conflict(&mut self, msg: &wire::Message, origin: socket::Origin) {
        let ours: Vec<Ipv4Addr> = self
            .joined
            .iter()
            .flat_map(|j| j.iface.advertise.v4.iter().copied())
            .chain(self.joined.iter().map(|j| j.iface.local))
            .collect();
        if let Some(ip) = answer::conflicting_address(&self.id, &ours, msg) {
            // Each address is told once; packets can carry any number of made-up ones,
            // so the set stops growing and the lines are limited as well.
            if self.conflicts.contains(&ip) {
                return;
            }
            if self.conflicts.len() < MAX_CONFLICTS {
                self.conflicts.insert(ip);
            }
            static CONFLICT: RateLimit = RateLimit::new(ratelog::DEFAULT_INTERVAL);
            crate::warn_limited!(
                CONFLICT,
                "mDNS: {} ({}) also claims the name {}; give this one another with \
                 --mdns-name",
                origin.from.ip(),
                ip,
                self.id.host
            );
        }
    }
}

fn describe(a: &Addresses) -> String {
    let v4 = a.v4.iter().map(|ip| ip.to_string());
    let v6 = a.v6.iter().map(|ip| ip.to_string());
    v4.chain(v6).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert_eq!(parse_name("picam"), Ok("picam".into()));
        assert_eq!(parse_name("Garden-Cam2.local"), Ok("Garden-Cam2".into()));
        assert_eq!(parse_name(&"a".repeat(63)), Ok("a".repeat(63)));
        for bad in [
            "",
            "-cam",
            "cam-",
            "my cam",
            "cam.example",
            "caméra",
            &"a".repeat(64),
        ] {
            let e = parse_name(bad).unwrap_err();
            assert!(
                e.starts_with("expected a host name such as picam"),
                "{bad}: {e}"
            );
        }
    }
}
