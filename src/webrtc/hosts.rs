//! This machine's addresses that a browser may reach: the WebRTC host candidates.
//!
//! Every address of an interface that is up, IPv4 and IPv6, loopback included (a browser
//! on this machine uses it). IPv6 link-local addresses are left out: a candidate cannot
//! carry the interface a link-local address belongs to. The list is read again for every
//! new session, so an address that came after the server started (a Pi whose Wi-Fi
//! joined late) is offered too.

use std::net::IpAddr;

use nix::ifaddrs::getifaddrs;
use nix::net::if_::InterfaceFlags;

/// Whether `ip` can be a host candidate.
pub fn usable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !v4.is_unspecified() && !v4.is_multicast() && !v4.is_broadcast(),
        IpAddr::V6(v6) => {
            let link_local = (v6.segments()[0] & 0xffc0) == 0xfe80;
            !v6.is_unspecified() && !v6.is_multicast() && !link_local
        }
    }
}

/// The usable addresses of the interfaces that are up, each once, IPv4 first.
pub fn local_addresses() -> Vec<IpAddr> {
    let Ok(interfaces) = getifaddrs() else {
        return Vec::new();
    };
    let mut found: Vec<IpAddr> = Vec::new();
    for interface in interfaces {
        if !interface.flags.contains(InterfaceFlags::IFF_UP) {
            continue;
        }
        let Some(address) = interface.address else {
            continue;
        };
        let ip = if let Some(v4) = address.as_sockaddr_in() {
            IpAddr::V4(v4.ip())
        } else if let Some(v6) = address.as_sockaddr_in6() {
            IpAddr::V6(v6.ip())
        } else {
            continue;
        };
        if usable(ip) && !found.contains(&ip) {
            found.push(ip);
        }
    }
    found.sort_by_key(|ip| ip.is_ipv6());
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_local_multicast_and_unspecified_addresses_are_left_out() {
        for bad in [
            "fe80::1",
            "ff02::fb",
            "::",
            "0.0.0.0",
            "224.0.0.251",
            "255.255.255.255",
        ] {
            assert!(!usable(bad.parse().unwrap()), "{bad}");
        }
        for good in ["127.0.0.1", "192.168.1.20", "::1", "2001:db8::5", "fd00::2"] {
            assert!(usable(good.parse().unwrap()), "{good}");
        }
    }

    #[test]
    fn this_machine_has_its_loopback_address() {
        let found = local_addresses();
        assert!(found.contains(&"127.0.0.1".parse().unwrap()), "{found:?}");
        assert!(found.iter().all(|ip| usable(*ip)));
    }
}
