#!/usr/bin/env bash
# HTTPS build and tests: builds with the tls feature, runs tests/tls.rs (curl verifying
# an openssl-made certificate against the real binary) and the whole suite with the
# feature on, so that nothing else changes when it is built in.
#
#   .ci/tls.sh
#
# Installs curl and openssl with apt when missing. Builds in CARGO_TARGET_DIR when it
# is set (.ci/run shares one among its steps: cargo keeps each feature set's build
# apart), else in $PICAM_CI_CACHE/auth/tls-target.
set -euo pipefail
# shellcheck source=.ci/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$PICAM_REPO"
CACHE="$PICAM_CI_CACHE/auth"
mkdir -p "$CACHE"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/tls-target}"

need curl curl
need openssl openssl
apt_install ca-certificates
say "$(openssl version); $(curl --version | head -n1)"

timeout 1200 cargo clippy --all-targets --features tls -- -D warnings
timeout 1200 cargo test --features tls
