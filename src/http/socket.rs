//! Finds the TCP socket behind a request that `tiny_http` parsed.
//!
//! `tiny_http` owns its connections and does not hand out their sockets. A stream needs
//! its socket for two things the library cannot do: shutting the read side, which frees
//! the library's connection thread at once instead of leaving it blocked on a read for
//! as long as the stream lasts, and writing frames without the library's buffering
//! layers. Every socket of this process is reachable through `/proc/self/fd`, and only
//! one of them is connected from the request's peer address to our listening address:
//! that is the one, checked again on our own duplicate so that a descriptor closed and
//! reused meanwhile can never be mistaken for it.

use std::net::{SocketAddr, TcpStream};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use nix::fcntl::{fcntl, FcntlArg};
use nix::sys::socket::{getpeername, getsockname, SockaddrStorage};

/// A descriptor of our own for the connection from `peer` to `local`, if one exists.
pub fn claim(peer: SocketAddr, local: SocketAddr) -> Option<TcpStream> {
    let entries = std::fs::read_dir("/proc/self/fd").ok()?;
    for entry in entries.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<RawFd>().ok())
        else {
            continue;
        };
        if !connects(fd, peer, local) {
            continue;
        }
        let Ok(copy) = fcntl(fd, FcntlArg::F_DUPFD_CLOEXEC(0)) else {
            continue;
        };
        // SAFETY: F_DUPFD_CLOEXEC just returned this new descriptor; nothing else owns it.
        let owned = unsafe { OwnedFd::from_raw_fd(copy) };
        if connects(copy, peer, local) {
            return Some(TcpStream::from(owned));
        }
    }
    None
}

/// True when `fd` is a socket connected from `peer` to an address matching `local`
/// (a wildcard `local` matches any address with its port).
fn connects(fd: RawFd, peer: SocketAddr, local: SocketAddr) -> bool {
    let remote = getpeername::<SockaddrStorage>(fd)
        .ok()
        .and_then(|a| to_std(&a));
    if remote != Some(peer) {
        return false;
    }
    match getsockname::<SockaddrStorage>(fd)
        .ok()
        .and_then(|a| to_std(&a))
    {
        Some(ours) => {
            ours.port() == local.port() && (local.ip().is_unspecified() || ours.ip() == local.ip())
        }
        None => false,
    }
}

pub(super) fn to_std(addr: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = addr.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    addr.as_sockaddr_in6()
        .map(|v6| SocketAddr::V6((*v6).into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    #[test]
    fn claims_exactly_the_accepted_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let local = listener.local_addr().unwrap();
        let mut a = TcpStream::connect(local).unwrap();
        let b = TcpStream::connect(local).unwrap();
        let (_conn_a, peer_a) = listener.accept().unwrap();
        let (_conn_b, _) = listener.accept().unwrap();
        assert_eq!(peer_a, a.local_addr().unwrap());

        let mut claimed = claim(peer_a, local).expect("found");
        assert_eq!(claimed.peer_addr().unwrap(), peer_a);
        claimed.write_all(b"hi").unwrap();
        let mut got = [0u8; 2];
        a.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hi");
        // The wildcard form of our address matches too; an unknown peer matches nothing.
        assert!(claim(peer_a, SocketAddr::from(([0, 0, 0, 0], local.port()))).is_some());
        let stranger = SocketAddr::from(([127, 0, 0, 1], 1));
        assert!(claim(stranger, local).is_none());
        drop(b);
    }
}
