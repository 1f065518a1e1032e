//! What this host says about itself over mDNS, and which of it answers a question.
//!
//! Pure functions of the configured [`Identity`], the [`Addresses`] of the interface a
//! packet arrived on, and the packet: no sockets, no clock. The records:
//!
//! * `<name>.local` A (and AAAA when IPv6 is served): the interface's addresses; an NSEC
//!   says which of the two exist, so a resolver asking for the missing one need not wait;
//! * `_http._tcp.local` PTR `<name>._http._tcp.local` (DNS-SD, RFC 6763);
//! * `<name>._http._tcp.local` SRV (port: the HTTP port, target `<name>.local`) and TXT
//!   `path=/`;
//! * `_services._dns-sd._udp.local` PTR `_http._tcp.local` (service type enumeration).
//!
//! A query from port 5353 is answered by multicast with no questions; any other source
//! port is a "legacy" resolver (RFC 6762 section 6.7) and gets a unicast reply with its
//! id and questions echoed, TTLs of at most 10 s and no cache-flush bits.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::wire::{
    self, Message, Name, Question, RData, Record, WireError, Writer, CLASS_ANY, CLASS_IN,
    FLAG_AUTHORITATIVE, FLAG_RESPONSE, TYPE_A, TYPE_AAAA, TYPE_ANY, TYPE_NSEC, TYPE_PTR, TYPE_SRV,
    TYPE_TXT,
};

/// The mDNS port; queries from any other port come from legacy resolvers.
pub const MDNS_PORT: u16 = 5353;

/// TTL of records about the host itself: addresses, SRV (RFC 6762 section 10).
pub const HOST_TTL: u32 = 120;
/// TTL of the other records: PTR, TXT.
pub const OTHER_TTL: u32 = 4500;
/// Most a legacy resolver may cache our answers.
pub const LEGACY_TTL: u32 = 10;

/// Names and port this host advertises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `<name>.local`
    pub host: Name,
    /// `_http._tcp.local`
    pub service: Name,
    /// `<name>._http._tcp.local`
    pub instance: Name,
    /// The HTTP port.
    pub port: u16,
}

impl Identity {
    /// The identity for host label `name` (a valid DNS label) serving HTTP on `port`.
    pub fn new(name: &str, port: u16) -> Identity {
        let service = Name::new("_http._tcp.local");
        Identity {
            host: Name::new("local").prepend(name),
            instance: service.prepend(name),
            service,
            port,
        }
    }
}

/// The addresses given out on one interface.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Addresses {
    pub v4: Vec<Ipv4Addr>,
    pub v6: Vec<Ipv6Addr>,
}

impl Addresses {
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }
}

/// A packet to send in reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub packet: Vec<u8>,
    /// True: to the querier's own address and port. False: to the multicast group.
    pub unicast: bool,
}

fn record(name: &Name, rtype: u16, flush: bool, ttl: u32, data: RData) -> Record {
    Record {
        name: name.clone(),
        rtype,
        class: CLASS_IN,
        cache_flush: flush,
        ttl,
        data,
    }
}

fn services_name() -> Name {
    Name::new("_services._dns-sd._udp.local")
}

/// The host's address records.
fn address_records(id: &Identity, addrs: &Addresses) -> Vec<Record> {
    let a = addrs
        .v4
        .iter()
        .map(|ip| record(&id.host, TYPE_A, true, HOST_TTL, RData::A(*ip)));
    let aaaa = addrs
        .v6
        .iter()
        .map(|ip| record(&id.host, TYPE_AAAA, true, HOST_TTL, RData::Aaaa(*ip)));
    a.chain(aaaa).collect()
}

/// The NSEC record listing the address types the host has.
fn nsec(id: &Identity, addrs: &Addresses) -> Record {
    let mut types = Vec::new();
    if !addrs.v4.is_empty() {
        types.push(TYPE_A);
    }
    if !addrs.v6.is_empty() {
        types.push(TYPE_AAAA);
    }
    let next = id.host.clone();
    record(
        &id.host,
        TYPE_NSEC,
        true,
        HOST_TTL,
        RData::Nsec { next, types },
    )
}

fn ptr(id: &Identity) -> Record {
    record(
        &id.service,
        TYPE_PTR,
        false,
        OTHER_TTL,
        RData::Ptr(id.instance.clone()),
    )
}

fn srv(id: &Identity) -> Record {
    let data = RData::Srv {
        priority: 0,
        weight: 0,
        port: id.port,
        target: id.host.clone(),
    };
    record(&id.instance, TYPE_SRV, true, HOST_TTL, data)
}

fn txt(id: &Identity) -> Record {
    let data = RData::Txt(vec![b"path=/".to_vec()]);
    record(&id.instance, TYPE_TXT, true, OTHER_TTL, data)
}

fn services_ptr(id: &Identity) -> Record {
    let data = RData::Ptr(id.service.clone());
    record(&services_name(), TYPE_PTR, false, OTHER_TTL, data)
}

/// Every record, as announced at start-up and, with `ttl_zero`, withdrawn at exit.
pub fn announcement(id: &Identity, addrs: &Addresses, ttl_zero: bool) -> Vec<u8> {
    let mut records = vec![ptr(id), srv(id), txt(id), services_ptr(id)];
    records.extend(address_records(id, addrs));
    let mut w = Writer::new(0, FLAG_RESPONSE | FLAG_AUTHORITATIVE);
    for mut r in records {
        if ttl_zero {
            r.ttl = 0;
        }
        w.answer(&r);
    }
    w.finish()
}

/// Whether `q` asks for type `rtype` (or for any type) in class IN (or any class).
fn asks(q: &Question, rtype: u16) -> bool {
    (q.qtype == rtype || q.qtype == TYPE_ANY) && (q.class == CLASS_IN || q.class == CLASS_ANY)
}

/// The answers and additional records for one question.
fn answer_question(
    id: &Identity,
    addrs: &Addresses,
    q: &Question,
    answers: &mut Vec<Record>,
    extra: &mut Vec<Record>,
) {
    if q.name == id.host {
        let before = answers.len();
        let mut own = address_records(id, addrs);
        own.retain(|r| asks(q, r.rtype));
        answers.extend(own);
        let missing_v4 = addrs.v4.is_empty() && asks(q, TYPE_A);
        let missing_v6 = addrs.v6.is_empty() && asks(q, TYPE_AAAA);
        if answers.len() == before && (missing_v4 || missing_v6) {
            answers.push(nsec(id, addrs));
        } else if answers.len() > before {
            // The other family's addresses, or the proof there are none.
            let mut rest = address_records(id, addrs);
            rest.retain(|r| !asks(q, r.rtype));
            extra.extend(rest);
            if addrs.v4.is_empty() || addrs.v6.is_empty() {
                extra.push(nsec(id, addrs));
            }
        }
    } else if q.name == id.service && asks(q, TYPE_PTR) {
        answers.push(ptr(id));
        extra.extend([srv(id), txt(id)]);
        extra.extend(address_records(id, addrs));
    } else if q.name == id.instance {
        if asks(q, TYPE_SRV) {
            answers.push(srv(id));
            extra.extend(address_records(id, addrs));
        }
        if asks(q, TYPE_TXT) {
            answers.push(txt(id));
        }
    } else if q.name == services_name() && asks(q, TYPE_PTR) {
        answers.push(services_ptr(id));
    }
}

/// Whether the querier said it already holds `r` with at least half its TTL left
/// (known-answer suppression, RFC 6762 section 7.1).
fn already_known(msg: &Message, r: &Record) -> bool {
    msg.answers
        .iter()
        .any(|k| k.name == r.name && k.rtype == r.rtype && k.data == r.data && k.ttl >= r.ttl / 2)
}

/// The reply to `packet`, received from source port `src_port` on an interface with
/// addresses `addrs`, or `None` when it is not a query for any of our records. Pure and
/// panic-free for any bytes, so it can be fuzzed directly.
pub fn reply(
    id: &Identity,
    addrs: &Addresses,
    packet: &[u8],
    src_port: u16,
) -> Result<Option<Reply>, WireError> {
    let msg = wire::parse(packet)?;
    Ok(reply_to(id, addrs, &msg, src_port))
}

/// [`reply`] for a message already read.
pub fn reply_to(id: &Identity, addrs: &Addresses, msg: &Message, src_port: u16) -> Option<Reply> {
    // Only standard queries are answered; responses are other hosts' business.
    if msg.is_response() || msg.opcode() != 0 || addrs.is_empty() {
        return None;
    }
    let legacy = src_port != MDNS_PORT;
    let mut answers = Vec::new();
    let mut extra = Vec::new();
    for q in &msg.questions {
        answer_question(id, addrs, q, &mut answers, &mut extra);
    }
    // Duplicates go first, so that the known-answer check below looks at a handful of
    // records however many questions repeat them.
    let mut unique = Vec::<Record>::new();
    for r in answers {
        if !unique.contains(&r) {
            unique.push(r);
        }
    }
    let mut answers = unique;
    answers.retain(|r| !already_known(msg, r));
    if answers.is_empty() {
        return None;
    }
    let mut additionals = Vec::<Record>::new();
    for r in extra {
        if !answers.contains(&r) && !additionals.contains(&r) {
            additionals.push(r);
        }
    }
    let adjust = |r: &Record| {
        let mut r = r.clone();
        if legacy {
            r.ttl = r.ttl.min(LEGACY_TTL);
            r.cache_flush = false;
        }
        r
    };
    let mut w = Writer::new(
        if legacy { msg.id } else { 0 },
        FLAG_RESPONSE | FLAG_AUTHORITATIVE,
    );
    if legacy {
        for q in &msg.questions {
            w.question(q);
        }
    }
    for r in &answers {
        w.answer(&adjust(r));
    }
    for r in &additionals {
        w.additional(&adjust(r));
    }
    Some(Reply {
        packet: w.finish(),
        unicast: legacy,
    })
}

/// Whether `msg`, a response from another host, claims our host name with addresses we
/// do not have (two devices with one name on the network).
pub fn conflicting_address(id: &Identity, ours: &[Ipv4Addr], msg: &Message) -> Option<Ipv4Addr> {
    if !msg.is_response() {
        return None;
    }
    msg.answers
        .iter()
        .chain(&msg.additionals)
        .find_map(|r| match r.data {
            RData::A(ip) if r.name == id.host && r.ttl > 0 && !ours.contains(&ip) => Some(ip),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mdns::wire::query;

    fn id() -> Identity {
        Identity::new("picam", 8000)
    }

    fn v4_only() -> Addresses {
        Addresses {
            v4: vec![Ipv4Addr::new(192, 0, 2, 10)],
            v6: vec![],
        }
    }

    fn ask(addrs: &Addresses, questions: &[(&str, u16)], port: u16) -> Option<(Message, bool)> {
        let r = reply(&id(), addrs, &query(77, questions), port).unwrap()?;
        Some((wire::parse(&r.packet).unwrap(), r.unicast))
    }

    #[test]
    fn a_query_by_multicast_gets_the_address_with_cache_flush() {
        let (msg, unicast) = ask(&v4_only(), &[("PiCam.local", TYPE_A)], 5353).unwrap();
        assert!(!unicast);
        assert_eq!(msg.id, 0);
        assert!(msg.is_response());
        assert!(
            msg.questions.is_empty(),
            "multicast replies carry no question"
        );
        assert_eq!(msg.answers.len(), 1);
        let a = &msg.answers[0];
        assert_eq!(a.data, RData::A(Ipv4Addr::new(192, 0, 2, 10)));
        assert_eq!((a.ttl, a.cache_flush), (HOST_TTL, true));
        // No IPv6: an NSEC tells the resolver so.
        assert_eq!(msg.additionals.len(), 1);
        assert_eq!(
            msg.additionals[0].data,
            RData::Nsec {
                next: Name::new("picam.local"),
                types: vec![TYPE_A]
            }
        );
    }

    #[test]
    fn legacy_unicast_echoes_id_and_question_and_caps_ttl() {
        let (msg, unicast) = ask(&v4_only(), &[("picam.local", TYPE_A)], 40000).unwrap();
        assert!(unicast);
        assert_eq!(msg.id, 77);
        assert_eq!(msg.questions.len(), 1);
        assert_eq!(msg.questions[0].name, Name::new("picam.local"));
        for r in msg.answers.iter().chain(&msg.additionals) {
            assert!(r.ttl <= LEGACY_TTL && !r.cache_flush, "{r:?}");
        }
    }

    #[test]
    fn aaaa_without_ipv6_gets_nsec_and_with_ipv6_gets_addresses() {
        let (msg, _) = ask(&v4_only(), &[("picam.local", TYPE_AAAA)], 5353).unwrap();
        assert_eq!(msg.answers.len(), 1);
        assert_eq!(msg.answers[0].rtype, TYPE_NSEC);
        let both = Addresses {
            v4: vec![Ipv4Addr::new(192, 0, 2, 10)],
            v6: vec!["2001:db8::10".parse().unwrap()],
        };
        let (msg, _) = ask(&both, &[("picam.local", TYPE_AAAA)], 5353).unwrap();
        assert_eq!(
            msg.answers[0].data,
            RData::Aaaa("2001:db8::10".parse().unwrap())
        );
        assert_eq!(msg.additionals[0].rtype, TYPE_A, "the other family added");
        assert!(msg.additionals.iter().all(|r| r.rtype != TYPE_NSEC));
        let (msg, _) = ask(&both, &[("picam.local", TYPE_ANY)], 5353).unwrap();
        assert_eq!(msg.answers.len(), 2);
    }

    #[test]
    fn service_browse_and_resolve() {
        let (msg, _) = ask(&v4_only(), &[("_http._tcp.local", TYPE_PTR)], 5353).unwrap();
        assert_eq!(
            msg.answers[0].data,
            RData::Ptr(Name::new("picam._http._tcp.local"))
        );
        assert!(!msg.answers[0].cache_flush, "PTR is a shared record");
        let types: Vec<u16> = msg.additionals.iter().map(|r| r.rtype).collect();
        assert_eq!(types, [TYPE_SRV, TYPE_TXT, TYPE_A]);
        let (msg, _) = ask(
            &v4_only(),
            &[
                ("picam._http._tcp.local", TYPE_SRV),
                ("picam._http._tcp.local", TYPE_TXT),
            ],
            5353,
        )
        .unwrap();
        assert_eq!(
            msg.answers[0].data,
            RData::Srv {
                priority: 0,
                weight: 0,
                port: 8000,
                target: Name::new("picam.local")
            }
        );
        assert_eq!(msg.answers[1].data, RData::Txt(vec![b"path=/".to_vec()]));
        let (msg, _) = ask(
            &v4_only(),
            &[("_services._dns-sd._udp.local", TYPE_PTR)],
            5353,
        )
        .unwrap();
        assert_eq!(
            msg.answers[0].data,
            RData::Ptr(Name::new("_http._tcp.local"))
        );
    }

    #[test]
    fn other_names_and_types_and_responses_get_nothing() {
        assert!(ask(&v4_only(), &[("other.local", TYPE_A)], 5353).is_none());
        assert!(ask(&v4_only(), &[("_ipp._tcp.local", TYPE_PTR)], 5353).is_none());
        assert!(ask(&v4_only(), &[("picam._http._tcp.local", TYPE_A)], 5353).is_none());
        assert!(ask(&Addresses::default(), &[("picam.local", TYPE_A)], 5353).is_none());
        let mut response = query(1, &[("picam.local", TYPE_A)]);
        response[2] |= 0x80;
        assert_eq!(reply(&id(), &v4_only(), &response, 5353), Ok(None));
    }

    #[test]
    fn known_answers_are_not_repeated() {
        let mut w = Writer::new(0, 0);
        w.question(&Question {
            name: Name::new("_http._tcp.local"),
            qtype: TYPE_PTR,
            class: CLASS_IN,
            unicast_response: false,
        });
        let mut known = ptr(&id());
        known.ttl = OTHER_TTL / 2 + 1;
        w.answer(&known);
        let packet = w.finish();
        assert_eq!(reply(&id(), &v4_only(), &packet, 5353), Ok(None));
        // With little TTL left, the querier gets a fresh copy.
        let mut w = Writer::new(0, 0);
        w.question(&Question {
            name: Name::new("_http._tcp.local"),
            qtype: TYPE_PTR,
            class: CLASS_IN,
            unicast_response: false,
        });
        known.ttl = 10;
        w.answer(&known);
        assert!(reply(&id(), &v4_only(), &w.finish(), 5353)
            .unwrap()
            .is_some());
    }

    #[test]
    fn announcements_hold_every_record_and_goodbyes_have_ttl_zero() {
        let hello = wire::parse(&announcement(&id(), &v4_only(), false)).unwrap();
        let types: Vec<u16> = hello.answers.iter().map(|r| r.rtype).collect();
        assert_eq!(types, [TYPE_PTR, TYPE_SRV, TYPE_TXT, TYPE_PTR, TYPE_A]);
        assert!(hello.answers.iter().all(|r| r.ttl > 0));
        let bye = wire::parse(&announcement(&id(), &v4_only(), true)).unwrap();
        assert_eq!(bye.answers.len(), hello.answers.len());
        assert!(bye.answers.iter().all(|r| r.ttl == 0));
    }

    #[test]
    fn conflicts_are_other_addresses_for_our_name() {
        let ours = [Ipv4Addr::new(192, 0, 2, 10)];
        let theirs = announcement(
            &id(),
            &Addresses {
                v4: vec![Ipv4Addr::new(192, 0, 2, 99)],
                v6: vec![],
            },
            false,
        );
        let msg = wire::parse(&theirs).unwrap();
        assert_eq!(
            conflicting_address(&id(), &ours, &msg),
            Some(Ipv4Addr::new(192, 0, 2, 99))
        );
        let echo = wire::parse(&announcement(&id(), &v4_only(), false)).unwrap();
        assert_eq!(conflicting_address(&id(), &ours, &echo), None);
        let other = Identity::new("other", 8000);
        assert_eq!(conflicting_address(&other, &ours, &msg), None);
    }

    #[test]
    fn mutated_queries_never_panic_and_every_reply_reads_back() {
        // A fixed-seed xorshift: the same 20,000 packets every run.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let seeds = [
            query(1, &[("picam.local", TYPE_A), ("picam.local", TYPE_AAAA)]),
            query(2, &[("_http._tcp.local", TYPE_PTR)]),
            query(3, &[("picam._http._tcp.local", TYPE_ANY)]),
            announcement(&id(), &v4_only(), false),
        ];
        let both = Addresses {
            v4: vec![Ipv4Addr::new(192, 0, 2, 10)],
            v6: vec!["2001:db8::10".parse().unwrap()],
        };
        let mut replies = 0;
        for i in 0..20_000 {
            let mut p = seeds[i % seeds.len()].clone();
            for _ in 0..1 + next() % 4 {
                let r = next();
                let at = (r >> 8) as usize % p.len();
                match r % 3 {
                    0 => p[at] = (r >> 32) as u8,
                    1 => p.truncate(at),
                    _ => p.insert(at, (r >> 32) as u8),
                }
                if p.is_empty() {
                    break;
                }
            }
            let port = if i % 2 == 0 { MDNS_PORT } else { 40000 };
            let addrs = if i % 3 == 0 { &both } else { &v4_only() };
            if let Ok(Some(reply)) = reply(&id(), addrs, &p, port) {
                replies += 1;
                let back = wire::parse(&reply.packet).expect("our reply reads back");
                assert!(back.is_response() && !back.answers.is_empty());
            }
        }
        assert!(
            replies > 100,
            "only {replies} mutated queries were answered"
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_reply() {
        assert!(reply(&id(), &v4_only(), &[1, 2, 3], 5353).is_err());
        let mut q = query(1, &[("picam.local", TYPE_A)]);
        q.truncate(q.len() - 1);
        assert!(reply(&id(), &v4_only(), &q, 5353).is_err());
    }
}
