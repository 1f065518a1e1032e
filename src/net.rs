//! The listening socket and the addresses people can open.
//!
//! Per-connection limits are set once on the listening socket: Linux copies these options
//! to every connection it accepts:
//!
//! * `TCP_NODELAY`: a frame goes out as soon as it is written.
//! * `TCP_NOTSENT_LOWAT`: a write blocks while more than a small amount is still unsent,
//!   so at most about one frame waits in the kernel for a slow client, whose latency
//!   therefore stays near one frame's transfer time instead of growing.
//! * `SO_SNDTIMEO`: a client that stops reading is dropped after [`WRITE_TIMEOUT`].
//! * `TCP_USER_TIMEOUT` and keep-alive probes: a vanished peer is noticed.
//! * `SO_RCVBUF`: small, because clients only send short requests; it bounds what the
//!   kernel holds for each connection.
//!
//! And on the listening socket itself:
//!
//! * `TCP_DEFER_ACCEPT`: a connection reaches `accept` only once its first bytes have
//!   arrived (or after [`Patience::head`] without any), so connections opened and left
//!   silent cost the process nothing while they wait in the kernel.
//! * a listen backlog of [`BACKLOG`]: room for that many such connections; beyond it the
//!   kernel answers with SYN cookies and the connections are accepted at once.
//!
//! Not `SO_RCVTIMEO`: on a listening socket it would also limit how long `accept` waits.
//! Each connection's thread sets its own read timeouts (see [`crate::http::conn`]).

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::time::Duration;

use nix::sys::socket::{setsockopt, sockopt, SockaddrLike};
use nix::sys::time::TimeVal;

/// A write to a client may block this long before the client is dropped.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Unsent bytes above which a write to a client waits (`TCP_NOTSENT_LOWAT`).
pub const UNSENT_LIMIT: u32 = 16 * 1024;

/// Connections the kernel may hold for us before `accept` (capped by `net.core.somaxconn`).
pub const BACKLOG: i32 = 1024;

/// How long clients may take, and how much they may send, before making a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patience {
    /// From connecting (or from the first byte of a later request) to a complete request
    /// head.
    pub head: Duration,
    /// Silence allowed on a connection waiting for its next request, and between two
    /// reads of a request.
    pub idle: Duration,
    /// Largest request head (request line and headers) in bytes.
    pub head_bytes: u32,
    /// Connections that may wait at once for a complete request head.
    pub pending: usize,
}

impl Default for Patience {
    fn default() -> Patience {
        Patience {
            head: Duration::from_secs(10),
            idle: Duration::from_secs(15),
            head_bytes: 16 * 1024,
            pending: 64,
        }
    }
}

/// Binds `addr` and sets the options described in the module docs.
pub fn listen(addr: SocketAddr, patience: &Patience) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(addr)?;
    // nix checks the backlog against the libc's SOMAXCONN, which musl sets at 128;
    // the kernel takes more (up to net.core.somaxconn), so ask it directly.
    // SAFETY: listen(2) on the descriptor `listener` owns, borrowed for the call.
    if unsafe { nix::libc::listen(listener.as_raw_fd(), BACKLOG) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let defer = patience.head.as_secs().clamp(1, i32::MAX as u64) as i32;
    // The limits below are also enforced by each connection's thread; a system that refuses
    // one of these options (seen with 32-bit musl builds under qemu-user) still serves.
    optional(
        "TCP_DEFER_ACCEPT",
        set_int(
            &listener,
            nix::libc::IPPROTO_TCP,
            nix::libc::TCP_DEFER_ACCEPT,
            defer,
        ),
    );
    let rcvbuf = (patience.head_bytes as usize).clamp(4096, 256 * 1024);
    optional(
        "SO_RCVBUF",
        setsockopt(&listener, sockopt::RcvBuf, &rcvbuf).map_err(io::Error::from),
    );
    setsockopt(&listener, sockopt::TcpNoDelay, &true)?;
    let timeout = TimeVal::new(WRITE_TIMEOUT.as_secs() as _, 0);
    optional(
        "SO_SNDTIMEO",
        setsockopt(&listener, sockopt::SendTimeout, &timeout).map_err(io::Error::from),
    );
    setsockopt(&listener, sockopt::KeepAlive, &true)?;
    setsockopt(&listener, sockopt::TcpKeepIdle, &30)?;
    setsockopt(&listener, sockopt::TcpKeepInterval, &10)?;
    setsockopt(&listener, sockopt::TcpKeepCount, &3)?;
    setsockopt(&listener, sockopt::TcpUserTimeout, &30_000)?;
    set_int(
        &listener,
        nix::libc::IPPROTO_TCP,
        nix::libc::TCP_NOTSENT_LOWAT,
        UNSENT_LIMIT as i32,
    )?;
    Ok(listener)
}

/// Logs a socket option the system refused; the server goes on without it.
fn optional(name: &str, result: io::Result<()>) {
    if let Err(e) = result {
        log::warn!("the listening socket refused {name}: {e}; going on without it");
    }
}

/// Sets an integer socket option that `nix` has no wrapper for.
fn set_int(listener: &TcpListener, level: i32, name: i32, value: i32) -> io::Result<()> {
    let value = value as nix::libc::c_int;
    // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from `value`, which lives on
    // our stack for the call; the descriptor belongs to `listener`, borrowed for the call.
    let rc = unsafe {
        nix::libc::setsockopt(
            listener.as_raw_fd(),
            level,
            name,
            &value as *const nix::libc::c_int as *const nix::libc::c_void,
            std::mem::size_of::<nix::libc::c_int>() as nix::libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The address one client stands for, when clients are counted (failed logins, streams
/// per address): an IPv4 address as it is (also when mapped into IPv6), an IPv6 address
/// as its /64 network, the block one host can take addresses from at will.
pub fn client_host(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(
                u128::from(v6) & !((1u128 << 64) - 1),
            )),
        },
    }
}

/// Raises the soft limit on open files to the hard limit: every viewer holds a few
/// descriptors, and the common default of 1024 would cap the server near 300 viewers.
/// Returns the limit now in force.
#[allow(clippy::unnecessary_cast)] // rlim_t is 32 bits wide on 32-bit ARM
pub fn raise_open_file_limit() -> nix::Result<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    let want = hard.min(65_536);
    if soft < want {
        setrlimit(Resource::RLIMIT_NOFILE, want, hard)?;
        return Ok(want as u64);
    }
    Ok(soft as u64)
}

/// The URLs at which this machine serves `bound`: one per address of an interface that
/// is up when bound to all addresses, otherwise the bound address itself.
pub fn urls(bound: SocketAddr) -> Vec<String> {
    let port = bound.port();
    if !bound.ip().is_unspecified() {
        return vec![url(bound.ip(), port)];
    }
    let want_v6 = bound.is_ipv6();
    let mut ips: Vec<IpAddr> = Vec::new();
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for ifa in addrs {
            if !ifa.flags.contains(nix::net::if_::InterfaceFlags::IFF_UP) {
                continue;
            }
            let Some(addr) = ifa.address else { continue };
            let ip = match (addr.as_sockaddr_in(), addr.as_sockaddr_in6()) {
                (Some(v4), _) => IpAddr::V4(v4.ip()),
                (_, Some(v6)) if want_v6 => IpAddr::V6(v6.ip()),
                _ => continue,
            };
            if let IpAddr::V6(v6) = ip {
                // Link-local addresses need a zone id no browser bar takes.
                if v6.segments()[0] & 0xffc0 == 0xfe80 {
                    continue;
                }
            }
            if !ips.contains(&ip) && addr.family().is_some() {
                ips.push(ip);
            }
        }
    }
    // Addresses people type first: private LAN ones, then others, loopback last.
    ips.sort_by_key(|ip| (ip.is_loopback(), ip.is_ipv6()));
    ips.into_iter().map(|ip| url(ip, port)).collect()
}

fn url(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => format!("http://{v4}:{port}/"),
        IpAddr::V6(v6) => format!("http://[{v6}]:{port}/"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn urls_for_specific_and_wildcard_addresses() {
        assert_eq!(
            urls("127.0.0.1:8000".parse().unwrap()),
            vec!["http://127.0.0.1:8000/"]
        );
        assert_eq!(urls("[::1]:81".parse().unwrap()), vec!["http://[::1]:81/"]);
        let all = urls("0.0.0.0:8000".parse().unwrap());
        assert!(
            all.contains(&"http://127.0.0.1:8000/".to_string()),
            "{all:?}"
        );
        assert!(all.iter().all(|u| !u.contains('[')), "{all:?}");
    }

    #[test]
    fn accepted_connections_inherit_the_options() {
        let listener = listen("127.0.0.1:0".parse().unwrap(), &Patience::default()).unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client.write_all(b"G").unwrap();
        let (conn, _) = listener.accept().unwrap();
        assert!(conn.nodelay().unwrap());
        assert_eq!(conn.write_timeout().unwrap(), Some(WRITE_TIMEOUT));
        // No read timeout: on the listener it would limit accept too (module docs).
        assert_eq!(conn.read_timeout().unwrap(), None);
        drop(client);
    }
}
