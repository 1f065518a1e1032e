#!/usr/bin/env bash
# The firmware image and the Raspberry Pi OS packages, in one CI step:
#   1. ci/buildroot-check.sh   Buildroot package style, shellcheck, picam.txt parsing
#   2. ci/deb.sh               .deb for arm64 and armhf, installed into an arm64 root
#   3. tests/vm/boot-image.sh  the package's files booted under qemu: frames from power-on
#   4. tests/vm/deb-boot.sh    the arm64 .deb installed with dpkg, booted with systemd: frames
# The ARM binaries come from ci/cross.sh (checked once here; a no-op when warm).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${PICAM_CI_CACHE:-/var/cache/picam-stream-ci}
t0=$SECONDS
mkdir -p "$CACHE/logs"
bash "$REPO/ci/buildroot-check.sh"
echo "image: ARM binaries (ci/cross.sh, tests skipped)"
PICAM_CROSS_SKIP_TESTS=1 bash "$REPO/ci/cross.sh" aarch64-unknown-linux-gnu arm-unknown-linux-gnueabihf \
    > "$CACHE/logs/image-cross.log" 2>&1 || { tail -n 40 "$CACHE/logs/image-cross.log"; exit 1; }
echo "image: cross build checked in $((SECONDS - t0)) s"
PICAM_DEB_REBUILD=0 bash "$REPO/ci/deb.sh"
PICAM_BOOT_REBUILD=0 bash "$REPO/tests/vm/boot-image.sh"
bash "$REPO/tests/vm/deb-boot.sh"
echo "image: all done in $((SECONDS - t0)) s"
