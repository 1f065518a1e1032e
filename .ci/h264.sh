#!/usr/bin/env bash
# H.264 and WebRTC build and tests: builds with the h264 feature (OpenH264 from source:
# a C++ compiler, nasm on x86) and the webrtc feature (str0m on OpenSSL), checks them
# with clippy (also with openh264-library, the run-time loading of Cisco's library),
# and runs the H.264 and WebRTC unit tests and tests/h264.rs, where ffprobe and ffmpeg
# read and decode /stream.mp4 from the real binary. Browsers and aiortc receive the
# WebRTC stream in .ci/browser.sh.
#
#   .ci/h264.sh
#
# Installs ffmpeg, nasm and libssl-dev with apt when missing. Builds in CARGO_TARGET_DIR when it
# is set (.ci/run shares one among its steps), else in $PICAM_CI_CACHE/h264-target.
set -euo pipefail
# shellcheck source=.ci/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$PICAM_REPO"
mkdir -p "$PICAM_CI_CACHE"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PICAM_CI_CACHE/h264-target}"

need ffprobe ffmpeg
need nasm nasm
say "$(ffprobe -version | head -n1)"

need pkg-config pkg-config
[ -e /usr/include/openssl/ssl.h ] || apt_install libssl-dev
timeout 1500 cargo clippy --all-targets --features h264,webrtc -- -D warnings
timeout 900 cargo clippy --lib --features openh264-library -- -D warnings
timeout 1200 cargo test --features h264 --lib h264::
timeout 1200 cargo test --features h264,webrtc --lib http::
timeout 1200 cargo test --features h264,webrtc --lib webrtc::
timeout 1200 cargo test --features h264 --test h264
# The WebRTC signalling attacked through the real binary (debug build here).
timeout 1200 cargo test --features h264,webrtc --test webrtc
