//! The mDNS responder's handling of a received UDP packet: reading it, and the reply
//! this host would send.
//!
//! Input: one byte choosing the querier's source port and the interface's addresses,
//! then the packet. Checked:
//!
//! * reading any bytes (up to the largest packet the responder reads) ends without a
//!   panic, and the reply to bytes that do not read is an error;
//! * a reply, when there is one, is a response (never a query) that reads back, holds
//!   only records about this host, answers a legacy querier by unicast with its id and
//!   short TTLs and the questions echoed, and fits in one UDP datagram;
//! * the conflict check (another host claiming this name) never panics.
#![no_main]

use std::net::{Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use picam_stream::mdns::answer::{self, Addresses, Identity, LEGACY_TTL, MDNS_PORT};
use picam_stream::mdns::socket::MAX_PACKET;
use picam_stream::mdns::wire;

fuzz_target!(|data: &[u8]| {
    let [choice, packet @ ..] = data else {
        return;
    };
    // The responder reads at most this much of a datagram.
    let packet = &packet[..packet.len().min(MAX_PACKET)];
    let id = Identity::new("picam", 8000);
    let v4 = vec![Ipv4Addr::new(192, 0, 2, 10)];
    let v6 = vec![Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x10)];
    let addrs = match choice & 3 {
        0 => Addresses { v4, v6: vec![] },
        1 => Addresses { v4: vec![], v6 },
        2 => Addresses { v4, v6 },
        _ => Addresses::default(),
    };
    let src_port = if choice & 4 == 0 { MDNS_PORT } else { 40000 };

    let Ok(msg) = wire::parse(packet) else {
        assert!(
            answer::reply(&id, &addrs, packet, src_port).is_err(),
            "a packet that does not read got a reply"
        );
        return;
    };

    let ours = [Ipv4Addr::new(192, 0, 2, 10)];
    let _ = answer::conflicting_address(&id, &ours, &msg);

    let reply = answer::reply_to(&id, &addrs, &msg, src_port);
    assert_eq!(
        answer::reply(&id, &addrs, packet, src_port).expect("the packet reads"),
        reply,
        "reply and reply_to differ"
    );
    let Some(reply) = reply else {
        return;
    };
    assert!(!msg.is_response(), "a response was answered");
    let legacy = src_port != MDNS_PORT;
    assert_eq!(reply.unicast, legacy);
    let sent = wire::parse(&reply.packet).expect("the reply reads back");
    assert!(sent.is_response());
    assert!(!sent.answers.is_empty(), "a reply without answers");
    assert!(
        reply.packet.len() <= 65_507,
        "a reply of {} bytes does not fit a UDP datagram",
        reply.packet.len()
    );
    let names = [
        id.host.clone(),
        id.service.clone(),
        id.instance.clone(),
        wire::Name::new("_services._dns-sd._udp.local"),
    ];
    for r in sent.answers.iter().chain(&sent.additionals) {
        assert!(names.contains(&r.name), "a record about {}", r.name);
        if legacy {
            assert!(r.ttl <= LEGACY_TTL, "TTL {} for a legacy querier", r.ttl);
            assert!(!r.cache_flush);
        }
    }
    if legacy {
        assert_eq!(sent.id, msg.id);
        assert_eq!(sent.questions, msg.questions);
    } else {
        assert_eq!(sent.id, 0);
        assert!(sent.questions.is_empty());
    }
});
