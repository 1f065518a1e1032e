#!/usr/bin/env bash
# WebRTC received by a client nobody here wrote: Python's aiortc (from PyPI, pinned,
# in a venv under $PICAM_CI_CACHE) connects through WHEP to the server named by
# PICAM_BIN_H264 (built with the h264 and webrtc features), decodes 90 pictures of the
# moving test pattern with its own H.264 decoder and ends the session with DELETE
# (tests/webrtc/whep_aiortc.py).
#
#   PICAM_BIN_H264=target/release/picam-stream .ci/whep-aiortc.sh
set -euo pipefail
# shellcheck source=.ci/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$PICAM_REPO"
: "${PICAM_BIN_H264:?PICAM_BIN_H264 names a server built with the h264 and webrtc features}"
AIORTC_VERSION=1.16.0
venv="$PICAM_CI_CACHE/aiortc-$AIORTC_VERSION"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import aiortc' 2>/dev/null; then
    need python3 python3
    python3 -m venv "$venv" || { apt_install python3-venv && python3 -m venv "$venv"; }
    PIP_CACHE_DIR="$PICAM_CI_CACHE/pip" timeout 600 "$venv/bin/pip" install --quiet "aiortc==$AIORTC_VERSION"
fi
log=$(mktemp)
"$PICAM_BIN_H264" --source test --size 640x480 --fps 30 --listen 127.0.0.1:0 --webrtc-port 0 \
    --no-mdns 2>"$log" &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -f "$log"' EXIT
port=""
for _ in $(seq 100); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -n1)
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { cat "$log"; exit 1; }
status=0
timeout 120 "$venv/bin/python" tests/webrtc/whep_aiortc.py "http://127.0.0.1:$port" 90 640x480 || status=$?
grep 'WebRTC' "$log" || true
exit $status
