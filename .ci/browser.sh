#!/usr/bin/env bash
# Tests of the viewer page in real browsers, against the release binary:
#   - Debian's Chromium, driven headless by playwright-core (from npm, pinned in
#     tests/browser/package-lock.json; it never downloads a browser of its own);
#   - Debian's WebKitGTK (Safari's engine), driven by WebKitWebDriver under Xvfb, with
#     GStreamer's libav plugin to decode H.264.
#
#   .ci/browser.sh [TEST_FILE...]     default: every tests/browser/*.test.mjs
#
# Installs what it needs on a Debian 12 machine that has the Rust toolchain, node 20+,
# npm and apt (as root, or with sudo); a second run installs nothing. npm's cache and
# the release build live under $PICAM_CI_CACHE, outside the checkout; playwright-core
# is installed in tests/browser/node_modules (git-ignored).
#
# Environment:
#   PICAM_CI_CACHE            cache directory (see .ci/lib.sh)
#   PICAM_BROWSER_TARGET      cargo target dir of the release build (default: CARGO_TARGET_DIR
#                             when set, as .ci/run sets it, else $PICAM_CI_CACHE/browser-target)
#   PICAM_BROWSER_ARTIFACTS   where screenshots go (default: target/browser-artifacts in the checkout)
#   PICAM_BROWSER_NO_WEBKIT=1 neither install nor run WebKitGTK
#   PICAM_BROWSER_NO_H264=1   no build with the h264 feature: the MP4 player's tests skip
set -euo pipefail

T0=$SECONDS
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=.ci/lib.sh
. "$HERE/lib.sh"
REPO=$PICAM_REPO
CACHE="$PICAM_CI_CACHE"
TARGET_DIR="${PICAM_BROWSER_TARGET:-${CARGO_TARGET_DIR:-$CACHE/browser-target}}"
ARTIFACTS="${PICAM_BROWSER_ARTIFACTS:-$REPO/target/browser-artifacts}"
TESTS="$REPO/tests/browser"

# (with the time since the start)
log() { say "$* (at $((SECONDS - T0)) s)"; }

# --- Debian packages ------------------------------------------------------------------
packages=(chromium fonts-dejavu-core)
if [ "${PICAM_BROWSER_NO_WEBKIT:-0}" != 1 ]; then
    # gstreamer1.0-libav: WebKitGTK's H.264 decoder, for the MP4 player
    packages+=(webkit2gtk-driver xvfb xauth gstreamer1.0-libav)
fi
apt_install "${packages[@]}"
/usr/bin/chromium --version
if [ "${PICAM_BROWSER_NO_WEBKIT:-0}" != 1 ]; then
    dpkg-query -W -f='WebKitGTK ${Version}\n' webkit2gtk-driver
fi

# --- node and playwright-core ---------------------------------------------------------
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
    echo "node 20 or later is needed (found $(node --version))" >&2
    exit 1
fi
export npm_config_cache="${npm_config_cache:-$CACHE/npm}"
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
lock_sum="$(sha256sum "$TESTS/package-lock.json" | cut -d' ' -f1)"
stamp="$TESTS/node_modules/.installed-from-lock"
if [ "$(cat "$stamp" 2>/dev/null)" != "$lock_sum" ]; then
    log "npm ci (playwright-core)"
    (cd "$TESTS" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error)
    echo "$lock_sum" > "$stamp"
fi

# --- the servers ----------------------------------------------------------------------
# One built with the h264 and webrtc features for the MP4 and WebRTC players (OpenH264
# from source: nasm on x86; str0m on the system's OpenSSL: libssl-dev), kept as
# picam-stream-h264, which aiortc also receives from (.ci/whep-aiortc.sh); then the default build, which stays release/picam-stream
# for the later steps. Each is built again only when the code changed.
if [ "${PICAM_BROWSER_NO_H264:-0}" != 1 ]; then
    need nasm nasm
    need pkg-config pkg-config
    [ -e /usr/include/openssl/ssl.h ] || apt_install libssl-dev
    log "cargo build --release --features h264,webrtc"
    (cd "$REPO" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release --quiet --features h264,webrtc)
    cp "$TARGET_DIR/release/picam-stream" "$TARGET_DIR/release/picam-stream-h264"
    export PICAM_BIN_H264="$TARGET_DIR/release/picam-stream-h264"
    export PICAM_BROWSER_REQUIRE_H264=1     # built above: a missing piece is a failure
fi
log "cargo build --release"
(cd "$REPO" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release --quiet)
export PICAM_BIN="$TARGET_DIR/release/picam-stream"
export PICAM_BROWSER_ARTIFACTS="$ARTIFACTS"
if [ "${PICAM_BROWSER_NO_WEBKIT:-0}" != 1 ]; then
    export PICAM_BROWSER_REQUIRE_WEBKIT=1   # installed above: a missing piece is a failure
fi
mkdir -p "$ARTIFACTS"

# --- the tests ------------------------------------------------------------------------
if [ $# -gt 0 ]; then
    files=("$@")
else
    files=("$TESTS"/*.test.mjs)
fi
log "running ${#files[@]} test files"
status=0
node --test --test-concurrency=1 "${files[@]}" || status=$?
if [ -n "${PICAM_BIN_H264:-}" ] && [ $# -eq 0 ]; then
    log "WebRTC received by aiortc (.ci/whep-aiortc.sh)"
    bash "$REPO/.ci/whep-aiortc.sh" || status=$?
fi
log "screenshots in $ARTIFACTS"
log "browser tests finished with status $status in $((SECONDS - T0)) s"
exit $status
