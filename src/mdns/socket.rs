//! The mDNS UDP socket: port 5353 shared with any other responder on the machine,
//! group 224.0.0.251 joined per interface, and the arrival interface of every packet.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    bind, recvmsg, sendmsg, setsockopt, socket, sockopt, AddressFamily, ControlMessage,
    ControlMessageOwned, IpMembershipRequest, MsgFlags, SockFlag, SockType, SockaddrIn,
};

use super::answer::MDNS_PORT;

/// The mDNS IPv4 multicast group.
pub const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);

/// The largest packet read; mDNS allows up to 9000 bytes (RFC 6762 section 17).
pub const MAX_PACKET: usize = 9000;

/// A received packet's origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub from: SocketAddrV4,
    /// The interface it arrived on, when the kernel said.
    pub index: Option<u32>,
}

/// The bound socket.
pub struct MdnsSocket {
    sock: UdpSocket,
}

impl MdnsSocket {
    /// Binds 0.0.0.0:`port` (5353 but for tests) with address and port reuse, so a
    /// system responder such as avahi can hold the port too, and asks for arrival
    /// interfaces. Packets go out with IP TTL 255, as RFC 6762 section 11 asks.
    pub fn open(port: u16) -> io::Result<MdnsSocket> {
        let fd = socket(
            AddressFamily::Inet,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        setsockopt(&fd, sockopt::ReuseAddr, &true)?;
        setsockopt(&fd, sockopt::ReusePort, &true)?;
        setsockopt(&fd, sockopt::Ipv4PacketInfo, &true)?;
        setsockopt(&fd, sockopt::IpMulticastTtl, &255)?;
        setsockopt(&fd, sockopt::Ipv4Ttl, &255)?;
        setsockopt(&fd, sockopt::IpMulticastLoop, &true)?;
        bind(fd.as_raw_fd(), &SockaddrIn::new(0, 0, 0, 0, port))?;
        Ok(MdnsSocket {
            sock: UdpSocket::from(fd),
        })
    }

    /// Joins the group on the interface that has address `local`. Joining twice is fine.
    pub fn join(&self, local: Ipv4Addr) -> io::Result<()> {
        let req = IpMembershipRequest::new(GROUP, Some(local));
        match setsockopt(&self.sock, sockopt::IpAddMembership, &req) {
            Ok(()) | Err(Errno::EADDRINUSE) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads one packet into `buf`; waits only if the socket has nothing (use poll first).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, Origin)> {
        let mut iov = [IoSliceMut::new(buf)];
        let mut space = nix::cmsg_space!(nix::libc::in_pktinfo);
        let msg = recvmsg::<SockaddrIn>(
            self.sock.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_DONTWAIT,
        )?;
        if msg.flags.contains(MsgFlags::MSG_TRUNC) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "packet larger than 9000 bytes",
            ));
        }
        let mut index = None;
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                if let ControlMessageOwned::Ipv4PacketInfo(info) = c {
                    index = u32::try_from(info.ipi_ifindex).ok();
                }
            }
        }
        let from = msg
            .address
            .map(|a| SocketAddrV4::new(a.ip(), a.port()))
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no source address"))?;
        Ok((msg.bytes, Origin { from, index }))
    }

    /// Sends `packet` to `to` out of interface `index`, from address `local`.
    pub fn send(
        &self,
        packet: &[u8],
        to: SocketAddrV4,
        index: u32,
        local: Ipv4Addr,
    ) -> io::Result<()> {
        let info = nix::libc::in_pktinfo {
            ipi_ifindex: index as _,
            ipi_spec_dst: nix::libc::in_addr {
                s_addr: u32::from(local).to_be(),
            },
            ipi_addr: nix::libc::in_addr { s_addr: 0 },
        };
        let dest = SockaddrIn::from(to);
        sendmsg(
            self.sock.as_raw_fd(),
            &[IoSlice::new(packet)],
            &[ControlMessage::Ipv4PacketInfo(&info)],
            MsgFlags::empty(),
            Some(&dest),
        )?;
        Ok(())
    }

    /// Sends `packet` to the multicast group out of interface `index`.
    pub fn send_multicast(&self, packet: &[u8], index: u32, local: Ipv4Addr) -> io::Result<()> {
        self.send(packet, SocketAddrV4::new(GROUP, MDNS_PORT), index, local)
    }
}

impl AsFd for MdnsSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}
