#!/usr/bin/env bash
# The libjpeg-turbo back end (cargo feature `turbojpeg`) on this machine: its unit
# tests, every one decoding what was encoded. The same encoder tests run on the Pi
# CPUs in .ci/cross.sh (built for the 64- and 32-bit gnu targets with Debian's cross
# compilers, CMake building libjpeg-turbo for the target with NEON, run under
# qemu-user as a Cortex-A72 and a Cortex-A7), beside each target's suite.
#
# Builds in CARGO_TARGET_DIR when it is set (.ci/run shares one among its steps),
# else in $PICAM_CI_CACHE/turbojpeg/target.
set -euo pipefail
# shellcheck source=.ci/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$PICAM_REPO"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PICAM_CI_CACHE/turbojpeg/target}"
export CARGO_TERM_COLOR=never

need cmake cmake
need nasm nasm

say "unit tests on $(uname -m)"
out=$(cargo test --release --features turbojpeg --lib 2>&1) || { printf '%s\n' "$out"; exit 1; }
grep -E "^test result|FAILED|panicked" <<<"$out"
