#!/usr/bin/env bash
# The mDNS responder of the release binary against independent resolvers, across two
# network namespaces made for the test and joined by a veth pair:
#
#   server namespace: veth 198.51.100.1/24 (given only after the server started), and a
#                     second interface with 203.0.113.1/24 that must never be given
#                     out to the first one's network
#   client namespace: veth 198.51.100.2/24, route 224.0.0.0/4 via the veth
#
# Three independent resolvers, all legacy or full mDNS queriers (RFC 6762):
#   - Debian's dig, sending unicast queries from its own port to 198.51.100.1:5353
#     (dig 9.18 cannot take a reply to a query sent to the group: its UDP socket is
#     connected to the address it sent to);
#   - dnspython, sending queries from its own port to the group 224.0.0.251:5353 and
#     taking the unicast reply, as `dig @224.0.0.251` once did (.ci/mdns-legacy.py);
#   - python-zeroconf, a full querier and DNS-SD browser on port 5353 that gets
#     multicast replies (.ci/mdns-browse.py).
# Checks: A, SRV, TXT, PTR and service-type enumeration; the SRV port equals the listen
# port; the A answer is the server namespace's veth address, not the other interface's;
# the question is echoed; zeroconf browses, resolves, and sees the service removed by
# the goodbye at SIGTERM; --listen on one address advertises only it and stays silent
# when that address is on another interface; the page loads over HTTP.
#
# Needs root (namespaces); installs bind9-dnsutils with apt, and zeroconf and dnspython
# (pinned below) into a venv under $PICAM_CI_CACHE/mdns. Nothing leaves the namespaces.
set -euo pipefail

T0=$SECONDS
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=.ci/lib.sh
. "$HERE/lib.sh"
REPO=$PICAM_REPO
CACHE="$PICAM_CI_CACHE/mdns"
ZEROCONF_VERSION=0.154.0
DNSPYTHON_VERSION=2.9.2

# (with the time since the start)
log() { say "$* (at $((SECONDS - T0)) s)"; }

if [ "$(id -u)" != 0 ]; then
    die "needs root to create network namespaces"
fi

# --- tools ----------------------------------------------------------------------------
need dig bind9-dnsutils
need ip iproute2
mkdir -p "$CACHE"
VENV="$CACHE/venv"
wanted="zeroconf==$ZEROCONF_VERSION dnspython==$DNSPYTHON_VERSION"
if [ "$(cat "$VENV/.installed" 2>/dev/null)" != "$wanted" ]; then
    log "installing $wanted"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    # shellcheck disable=SC2086 # two requirement words
    timeout 600 "$VENV/bin/pip" install -q --disable-pip-version-check --cache-dir "$CACHE/pip" $wanted
    echo "$wanted" >"$VENV/.installed"
fi
dig -v 2>&1 | head -1
"$VENV/bin/python" -c "import zeroconf, dns.version
print('python-zeroconf', zeroconf.__version__, '/ dnspython', dns.version.version)"

log "cargo build --release"
(cd "$REPO" && cargo build --release --quiet)
BIN="${CARGO_TARGET_DIR:-$REPO/target}/release/picam-stream"

# --- namespaces -----------------------------------------------------------------------
SRV="picam-mdns-srv-$$"
CLI="picam-mdns-cli-$$"
WORK="$(mktemp -d)"
server_pid=""
holder=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
    if [ -n "$holder" ]; then kill "$holder" 2>/dev/null || true; fi
    ip netns del "$SRV" 2>/dev/null || true
    ip netns del "$CLI" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

ip netns add "$SRV"
ip netns add "$CLI"
ip link add vmdns-s netns "$SRV" type veth peer name vmdns-c netns "$CLI"
ip link add vmdns-x netns "$SRV" type veth peer name vmdns-y netns "$SRV"
ip -n "$SRV" addr add 203.0.113.1/24 dev vmdns-x
ip -n "$CLI" addr add 198.51.100.2/24 dev vmdns-c
for l in lo vmdns-s vmdns-x vmdns-y; do ip -n "$SRV" link set "$l" up; done
for l in lo vmdns-c; do ip -n "$CLI" link set "$l" up; done
ip -n "$CLI" route add 224.0.0.0/4 dev vmdns-c
in_cli() { ip netns exec "$CLI" "$@"; }

passed=0
failed=0
check() { # NAME EXPECTED ACTUAL
    if [ "$2" == "$3" ]; then
        passed=$((passed + 1))
        log "ok: $1: $3"
    else
        failed=$((failed + 1))
        log "FAIL: $1: expected '$2', got '$3'"
    fi
}

# Starts the server in the server namespace with the given options; waits for mDNS.
start_server() {
    : >"$WORK/server.log"
    # (not through a shell function: $! must be the server itself, for kill)
    ip netns exec "$SRV" env RUST_LOG=info "$BIN" --source test --size 160x120 --fps 5 "$@" \
        >/dev/null 2>"$WORK/server.log" &
    server_pid=$!
    echo "$server_pid" >"$WORK/server.pid"
    for _ in $(seq 100); do
        if grep -q "mDNS: answering for\|mDNS: not advertising" "$WORK/server.log"; then
            sleep 0.3
            return
        fi
        sleep 0.1
    done
    echo "the server did not start:" >&2
    cat "$WORK/server.log" >&2
    exit 1
}

# SIGTERM (unless it is gone already), then a bounded wait: SIGKILL after 5 s.
stop_server() {
    if [ -z "$server_pid" ]; then return; fi
    kill "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$server_pid" 2>/dev/null; then
        check "the server stops on SIGTERM" stopped running
        kill -9 "$server_pid" 2>/dev/null || true
    fi
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

# dig, asking the server's address from its own port; the answers' data on one line.
ask() { # NAME TYPE
    in_cli dig -p 5353 @198.51.100.1 "$1" "$2" +short +time=2 +tries=2 2>&1 |
        grep -v '^;' | sort | paste -sd' ' || true
}
# dnspython, asking the group from its own port.
mask() { # NAME TYPE
    in_cli timeout 20 "$VENV/bin/python" "$HERE/mdns-legacy.py" "$1" "$2" 198.51.100.2 2>&1 |
        paste -sd' ' || true
}

# --- default name, wildcard listen ----------------------------------------------------
# The veth gets its address only after the server started, as Wi-Fi does after boot.
log "server on 0.0.0.0:8080, default name; the veth has no address yet"
start_server --listen 0.0.0.0:8080
ip -n "$SRV" addr add 198.51.100.1/24 dev vmdns-s
for _ in $(seq 100); do
    grep -q "answering for picam.local on vmdns-s" "$WORK/server.log" && break
    sleep 0.1
done
check "the interface that came up later is answered on" "1" \
    "$(grep -c 'answering for picam.local on vmdns-s (198.51.100.1)' "$WORK/server.log" || true)"
check "A picam.local (dig)" "198.51.100.1" "$(ask picam.local A)"
check "A picam.local (dnspython, to the group)" "198.51.100.1" "$(mask picam.local A)"
check "SRV (dnspython, to the group)" "0 0 8080 picam.local." \
    "$(mask picam._http._tcp.local SRV)"
check "SRV picam._http._tcp.local" "0 0 8080 picam.local." "$(ask picam._http._tcp.local SRV)"
check "TXT picam._http._tcp.local" '"path=/"' "$(ask picam._http._tcp.local TXT)"
check "PTR _http._tcp.local" "picam._http._tcp.local." "$(ask _http._tcp.local PTR)"
check "PTR _services._dns-sd._udp.local" "_http._tcp.local." \
    "$(ask _services._dns-sd._udp.local PTR)"
check "A for another name" "" "$(ask other.local A)"
full="$(in_cli dig -p 5353 @198.51.100.1 picam.local A +time=2 +tries=2 2>&1 || true)"
check "the reply echoes the question" "1" \
    "$(grep -c '^;picam.local.[[:space:]]*IN[[:space:]]*A$' <<<"$full" || true)"
check "the page at the advertised address and port" "200" \
    "$(in_cli python3 -c 'import urllib.request as u; print(u.urlopen("http://198.51.100.1:8080/index.html", timeout=5).status)' 2>&1)"

log "python-zeroconf: browse, resolve, goodbye"
if in_cli timeout 60 "$VENV/bin/python" "$HERE/mdns-browse.py" \
    198.51.100.2 picam 8080 198.51.100.1 "$WORK/server.pid"; then
    check "zeroconf browse, resolve and goodbye" ok ok
else
    check "zeroconf browse, resolve and goodbye" ok failed
fi
stop_server
check "log has no warning" "" "$(grep -E 'WARN|ERROR' "$WORK/server.log" || true)"

# --- one address, another name --------------------------------------------------------
log "server on 198.51.100.1:8081 as garden-cam"
start_server --listen 198.51.100.1:8081 --mdns-name garden-cam
check "A garden-cam.local" "198.51.100.1" "$(ask garden-cam.local A)"
check "A garden-cam.local (dnspython)" "198.51.100.1" "$(mask garden-cam.local A)"
check "SRV garden-cam" "0 0 8081 garden-cam.local." "$(ask garden-cam._http._tcp.local SRV)"
check "old name gone" "" "$(ask picam.local A)"
stop_server

log "server on 203.0.113.1:8082, the other interface"
start_server --listen 203.0.113.1:8082
check "nothing said to the veth network" "" "$(ask picam.local A)"
check "nothing said to the veth network (dnspython)" "" "$(mask picam.local A)"
check "the log names the other interface" "1" \
    "$(grep -c 'answering for picam.local on vmdns-x (203.0.113.1)' "$WORK/server.log" || true)"
stop_server

# --- port 5353 held by a program that does not share it --------------------------------
log "port 5353 taken without reuse: the stream is served all the same"
ip netns exec "$SRV" python3 -c '
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 5353))
print("bound", flush=True)
time.sleep(30)' >"$WORK/holder.out" &
holder=$!
for _ in $(seq 100); do
    grep -q bound "$WORK/holder.out" && break
    sleep 0.1
done
start_server --listen 0.0.0.0:8083
check "a one-line warning" "1" \
    "$(grep -c 'WARN  mDNS: not advertising: cannot open UDP port 5353' "$WORK/server.log" || true)"
check "the page is served" "200" \
    "$(in_cli python3 -c 'import urllib.request as u; print(u.urlopen("http://198.51.100.1:8083/index.html", timeout=5).status)' 2>&1)"
stop_server
kill "$holder" 2>/dev/null || true
wait "$holder" 2>/dev/null || true

echo
echo "mdns: $passed passed, $failed failed"
log "done"
[ "$failed" -eq 0 ]
