#!/usr/bin/env bash
# Per-frame latency and CPU of the JPEG paths: the software encoder on this machine, then
# the software encoder and the memory-to-memory path (vim2m standing in for the Pi's
# codec) inside the VM rig. Prints figures and the CPU budget per frame that the Pi goals
# imply; asserts nothing about speed.
#
#   tests/vm/m2m-bench.sh [FRAMES]     (default 60 per 640x480 row; a third of that at 1080p)
#
# Read the VM figures with care: the guest runs under qemu's TCG emulation (several times
# slower than the host), and vim2m is a software driver whose conversion runs on the CPU
# inside the kernel, followed by an artificial delay (its "transtime" control, in jiffies
# of 4 ms at the kernel's 250 Hz). Only the user-space part of the M2M rows (copying the
# picture into the device's buffer, or for the DMABUF rows importing it without a copy)
# carries over to a real hardware encoder, and the guest's user/kernel split is sampled
# at ticks: compare sums, over several runs.
set -euo pipefail
# shellcheck source=.ci/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../.ci/lib.sh"
cd "$PICAM_REPO"
frames=${1:-60}
export CARGO_TERM_COLOR=never

echo "== this machine ($(nproc) CPUs, shared with whatever else runs): software encoder"
PICAM_M2M_FRAMES=$frames nice -n 5 cargo test --release --test vm_m2m -- \
    --ignored --exact guest_measure --nocapture 2>&1 | sed -n '/^per-frame/,/Pi 4 core/p'

echo
echo "== inside the VM rig (x86_64 guest under TCG, 1 vCPU): software encoder and vim2m"
out=$(PICAM_VM_TESTS=1 PICAM_M2M_MEASURE=1 PICAM_M2M_FRAMES=$frames nice -n 5 \
    cargo test --release --test vm_m2m -- --exact m2m_drivers_in_a_vm --nocapture 2>/dev/null)
sed -n '/^per-frame/,/Pi 4 core/p' <<<"$out"
