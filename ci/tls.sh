#!/usr/bin/env bash
# HTTPS build and tests: builds with the tls feature, runs tests/tls.rs (curl verifying
# an openssl-made certificate against the real binary) and the whole suite with the
# feature on, so that nothing else changes when it is built in.
#
#   ci/tls.sh
#
# Installs curl and openssl with apt when missing. Builds in CARGO_TARGET_DIR when it
# is set (.ci/run shares one among its steps: cargo keeps each feature set's build
# apart), else in $PICAM_CI_CACHE/auth/tls-target.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${PICAM_CI_CACHE:-/var/cache/picam-stream-ci}/auth"
mkdir -p "$CACHE"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/tls-target}"

missing=()
command -v curl >/dev/null || missing+=(curl)
command -v openssl >/dev/null || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
    echo "[tls] installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    timeout 300 apt-get update -qq
    timeout 300 apt-get install -y -qq "${missing[@]}" ca-certificates >/dev/null
fi
echo "[tls] $(openssl version); $(curl --version | head -n1)"

timeout 1200 cargo clippy --all-targets --features tls -- -D warnings
timeout 1200 cargo test --features tls
