#!/usr/bin/env bash
# H.264 build and tests: builds with the h264 feature (OpenH264 from source: a C++
# compiler, nasm on x86), checks it with clippy (also with openh264-library, the
# run-time loading of Cisco's library), and runs the H.264 unit tests and
# tests/h264.rs, where ffprobe and ffmpeg read and decode /stream.mp4 from the real
# binary.
#
#   .ci/h264.sh
#
# Installs ffmpeg and nasm with apt when missing. Builds in CARGO_TARGET_DIR when it
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

timeout 1500 cargo clippy --all-targets --features h264 -- -D warnings
timeout 900 cargo clippy --lib --features openh264-library -- -D warnings
timeout 1200 cargo test --features h264 --lib h264::
timeout 1200 cargo test --features h264 --lib http::
timeout 1200 cargo test --features h264 --test h264
