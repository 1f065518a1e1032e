"""A DNS-SD browser built on python-zeroconf, for .ci/mdns.sh.

Usage: mdns-browse.py INTERFACE_ADDRESS INSTANCE PORT HOST_ADDRESS PIDFILE

Browses _http._tcp.local. on the interface with INTERFACE_ADDRESS (port 5353, multicast
queries, as a desktop's service browser does), waits for INSTANCE, resolves it and
checks port, address and TXT; then sends SIGTERM to the server whose pid is in PIDFILE
and waits for the goodbye that removes the service. Prints what it saw; exits 1 on any
mismatch or timeout.
"""

import os
import signal
import sys
import threading
import time

from zeroconf import IPVersion, ServiceBrowser, ServiceStateChange, Zeroconf

SERVICE = "_http._tcp.local."


def main():
    iface, instance, port, host_addr, pidfile = sys.argv[1:6]
    full = f"{instance}.{SERVICE}"
    added = threading.Event()
    removed = threading.Event()

    def on_change(zeroconf, service_type, name, state_change):
        print(f"browse: {state_change.name} {name}", flush=True)
        if name.lower() != full.lower():
            return
        if state_change is ServiceStateChange.Added:
            added.set()
        elif state_change is ServiceStateChange.Removed:
            removed.set()

    zc = Zeroconf(interfaces=[iface], ip_version=IPVersion.V4Only)
    failures = []
    try:
        ServiceBrowser(zc, SERVICE, handlers=[on_change])
        if not added.wait(15):
            sys.exit(f"FAIL: {full} never appeared")
        info = zc.get_service_info(SERVICE, full, timeout=5000)
        if info is None:
            sys.exit(f"FAIL: {full} could not be resolved")
        addresses = info.parsed_addresses()
        print(
            f"resolved: {info.server} port {info.port} addresses {addresses} "
            f"txt {info.properties}",
            flush=True,
        )
        if info.port != int(port):
            failures.append(f"port {info.port}, expected {port}")
        if addresses != [host_addr]:
            failures.append(f"addresses {addresses}, expected [{host_addr}]")
        if info.properties != {b"path": b"/"}:
            failures.append(f"TXT {info.properties}, expected path=/")
        if info.server.lower() != f"{instance}.local.".lower():
            failures.append(f"target {info.server}, expected {instance}.local.")
        with open(pidfile) as f:
            pid = int(f.read().strip())
        sent = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        # Without goodbye packets the entry would stay until its TTL ran out (75 min).
        if not removed.wait(5):
            failures.append("no goodbye: the service was not removed within 5 s")
        else:
            print(f"removed {time.monotonic() - sent:.2f} s after SIGTERM", flush=True)
    finally:
        zc.close()
    if failures:
        sys.exit("FAIL: " + "; ".join(failures))
    print("zeroconf: browse, resolve and goodbye OK", flush=True)


if __name__ == "__main__":
    main()
