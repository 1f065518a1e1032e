//! Which network interfaces mDNS runs on, and which addresses it gives out on each.
//!
//! The HTTP listening address decides: on `0.0.0.0` every up, multicast-capable,
//! non-loopback interface with an IPv4 address, advertising its IPv4 addresses; on `[::]`
//! the same plus its IPv6 addresses (link-local ones excepted: a browser cannot use them
//! without a zone); on one specific address only the interface holding it, advertising
//! only that address (loopback included, which is how tests reach it).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use nix::net::if_::InterfaceFlags;

use super::answer::Addresses;

/// One interface mDNS runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// The kernel's interface index (what `IP_PKTINFO` reports).
    pub index: u32,
    pub name: String,
    /// The IPv4 address used to join the multicast group and to send from.
    pub local: Ipv4Addr,
    /// What is given out in answers for queries arriving here.
    pub advertise: Addresses,
}

/// An interface address as `getifaddrs` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfAddr {
    pub name: String,
    pub index: u32,
    pub up: bool,
    pub loopback: bool,
    pub multicast: bool,
    pub ip: IpAddr,
}

/// The interfaces to run on for an HTTP server listening on `listen`.
pub fn scan(listen: SocketAddr) -> Vec<Interface> {
    select(&system_addresses(), listen.ip())
}

/// Every address of every interface, from `getifaddrs`.
pub fn system_addresses() -> Vec<IfAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for ifa in addrs {
        let Some(addr) = ifa.address else { continue };
        let ip = match (addr.as_sockaddr_in(), addr.as_sockaddr_in6()) {
            (Some(v4), _) => IpAddr::V4(v4.ip()),
            (_, Some(v6)) => IpAddr::V6(v6.ip()),
            _ => continue,
        };
        let Ok(index) = nix::net::if_::if_nametoindex(ifa.interface_name.as_str()) else {
            continue;
        };
        out.push(IfAddr {
            index,
            up: ifa.flags.contains(InterfaceFlags::IFF_UP),
            loopback: ifa.flags.contains(InterfaceFlags::IFF_LOOPBACK),
            multicast: ifa.flags.contains(InterfaceFlags::IFF_MULTICAST),
            name: ifa.interface_name,
            ip,
        });
    }
    out
}

fn is_link_local_v6(ip: &Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}

/// The selection described in the module docs, from a list of addresses.
pub fn select(all: &[IfAddr], listen: IpAddr) -> Vec<Interface> {
    let mut out: Vec<Interface> = Vec::new();
    for a in all.iter().filter(|a| a.up) {
        let wanted = if listen.is_unspecified() {
            !a.loopback && a.multicast
        } else {
            all.iter().any(|b| b.index == a.index && b.ip == listen)
        };
        if !wanted || out.iter().any(|i| i.index == a.index) {
            continue;
        }
        let mine = all.iter().filter(|b| b.index == a.index);
        let v4: Vec<Ipv4Addr> = mine
            .clone()
            .filter_map(|b| match b.ip {
                IpAddr::V4(ip) => Some(ip),
                _ => None,
            })
            .collect();
        let v6: Vec<Ipv6Addr> = mine
            .filter_map(|b| match b.ip {
                IpAddr::V6(ip) if !is_link_local_v6(&ip) => Some(ip),
                _ => None,
            })
            .collect();
        // mDNS travels over IPv4 here, so an interface without IPv4 is out of reach.
        let Some(&local) = v4.first() else { continue };
        let advertise = match listen {
            IpAddr::V4(ip) if ip.is_unspecified() => Addresses { v4, v6: Vec::new() },
            IpAddr::V6(ip) if ip.is_unspecified() => Addresses { v4, v6 },
            IpAddr::V4(ip) => Addresses {
                v4: vec![ip],
                v6: Vec::new(),
            },
            IpAddr::V6(ip) => Addresses {
                v4: Vec::new(),
                v6: vec![ip],
            },
        };
        let local = match listen {
            IpAddr::V4(ip) if !ip.is_unspecified() => ip,
            _ => local,
        };
        out.push(Interface {
            index: a.index,
            name: a.name.clone(),
            local,
            advertise,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(name: &str, index: u32, ip: &str) -> IfAddr {
        IfAddr {
            name: name.into(),
            index,
            up: true,
            loopback: name == "lo",
            multicast: name != "lo",
            ip: ip.parse().unwrap(),
        }
    }

    fn machine() -> Vec<IfAddr> {
        vec![
            addr("lo", 1, "127.0.0.1"),
            addr("lo", 1, "::1"),
            addr("eth0", 2, "192.168.1.23"),
            addr("eth0", 2, "fe80::1"),
            addr("eth0", 2, "2001:db8::23"),
            addr("wlan0", 3, "10.0.0.5"),
            addr("wlan0", 3, "10.0.0.6"),
            addr("ipv6only", 4, "2001:db8:1::1"),
            IfAddr {
                up: false,
                ..addr("down0", 5, "172.16.0.1")
            },
        ]
    }

    fn v4(list: &[&str]) -> Vec<Ipv4Addr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn wildcard_ipv4_uses_every_lan_interface_and_only_ipv4() {
        let got = select(&machine(), "0.0.0.0".parse().unwrap());
        let names: Vec<&str> = got.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["eth0", "wlan0"]);
        assert_eq!(got[0].advertise.v4, v4(&["192.168.1.23"]));
        assert!(got[0].advertise.v6.is_empty());
        assert_eq!(got[1].advertise.v4, v4(&["10.0.0.5", "10.0.0.6"]));
        assert_eq!(got[1].local, "10.0.0.5".parse::<Ipv4Addr>().unwrap());
    }

    #[test]
    fn wildcard_ipv6_adds_routable_ipv6_addresses() {
        let got = select(&machine(), "::".parse().unwrap());
        assert_eq!(got[0].name, "eth0");
        assert_eq!(
            got[0].advertise.v6,
            ["2001:db8::23".parse::<Ipv6Addr>().unwrap()]
        );
        assert_eq!(got[0].advertise.v4, v4(&["192.168.1.23"]));
    }

    #[test]
    fn a_specific_address_is_the_only_one_given_out() {
        let got = select(&machine(), "10.0.0.6".parse().unwrap());
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].name, "wlan0");
        assert_eq!(got[0].advertise.v4, v4(&["10.0.0.6"]));
        assert_eq!(got[0].local, "10.0.0.6".parse::<Ipv4Addr>().unwrap());
        let got = select(&machine(), "127.0.0.1".parse().unwrap());
        assert_eq!(got[0].name, "lo");
        assert_eq!(got[0].advertise.v4, v4(&["127.0.0.1"]));
        let got = select(&machine(), "2001:db8::23".parse().unwrap());
        assert_eq!(got[0].name, "eth0");
        assert!(got[0].advertise.v4.is_empty());
        assert_eq!(got[0].advertise.v6.len(), 1);
        assert!(select(&machine(), "192.0.2.1".parse().unwrap()).is_empty());
        assert!(select(&machine(), "172.16.0.1".parse().unwrap()).is_empty());
        // Reachable only by IPv6, which this responder does not speak.
        assert!(select(&machine(), "2001:db8:1::1".parse().unwrap()).is_empty());
    }

    #[test]
    fn this_machine_has_loopback() {
        let all = system_addresses();
        assert!(
            all.iter()
                .any(|a| a.loopback && a.ip == IpAddr::V4(Ipv4Addr::LOCALHOST)),
            "{all:?}"
        );
        let lo = scan("127.0.0.1:8000".parse().unwrap());
        assert_eq!(lo.len(), 1);
        assert_eq!(lo[0].advertise.v4, [Ipv4Addr::LOCALHOST]);
    }
}
