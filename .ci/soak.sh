#!/usr/bin/env bash
# Broken sources and long runs, against the release binary:
#  1. the fault tests (tests/faults.rs), printing each recovery time;
#  2. the soak test (benches/soak.rs): clients joining and leaving for --seconds N
#     (default 600), snapshots, status polls, an exec: source restarting every 20 s;
#     fails when threads, descriptors or memory grew, or a client went unserved.
# Usage: bash .ci/soak.sh [--seconds N]   (CI: --seconds 180)
# Needs only the Rust toolchain (and sh, head, sleep from coreutils for the test scripts).
set -euo pipefail
# shellcheck source=.ci/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$PICAM_REPO"
seconds=600
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="${2:?--seconds needs a number}"; shift 2 ;;
    --seconds=*) seconds="${1#*=}"; shift ;;
    *) CI_DIE_STATUS=2 die "unknown argument '$1' (takes --seconds N)" ;;
  esac
done
case "$seconds" in
  ''|*[!0-9]*) CI_DIE_STATUS=2 die "--seconds takes a whole number, not '$seconds'" ;;
esac

echo "== fault recovery (release build)"
nice -n 5 cargo test --release --test faults -- --nocapture --test-threads 4

echo "== soak, $seconds s"
# Bounded by itself: the load stops at --seconds, every read has a 10 s timeout and
# waiting for the server to settle gives up after 60 s.
nice -n 5 cargo bench --bench soak -- --seconds "$seconds"
