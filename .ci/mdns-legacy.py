"""A legacy mDNS query with dnspython, for .ci/mdns.sh.

Usage: mdns-legacy.py NAME TYPE SOURCE_ADDRESS

Sends one query from an ephemeral port to the group 224.0.0.251:5353 (RFC 6762
section 6.7), accepts the unicast reply dnspython matches to it (same id and question,
from port 5353), and prints the answer records' data, one per line, sorted. Prints
nothing when no reply comes within 3 s.
"""

import sys

import dns.exception
import dns.message
import dns.query


def main():
    name, rdtype, source = sys.argv[1:4]
    query = dns.message.make_query(name, rdtype)
    try:
        reply = dns.query.udp(query, "224.0.0.251", port=5353, source=source, timeout=3)
    except dns.exception.Timeout:
        return
    lines = sorted(rd.to_text() for rrset in reply.answer for rd in rrset)
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
