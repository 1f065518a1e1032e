#!/usr/bin/env bash
# The firmware image and the Raspberry Pi OS packages, in one CI step:
#   1. .ci/buildroot-check.sh   Buildroot package style, shellcheck, picam.txt parsing
#   2. .ci/deb.sh               .deb for arm64 and armhf, installed into an arm64 root
#   3. tests/vm/card-boot.sh   SD card images built from Debian packages with the package's
#                              files (tests/vm/card-build.sh), each booted as the SD card of
#                              qemu's raspi3b (arm64 card) and raspi0 (32-bit card): frames
#                              from power-on, then again after picam.txt is edited on the card
#   4. tests/vm/deb-boot.sh    the arm64 .deb installed with dpkg, booted with systemd: frames
# The ARM binaries come from .ci/cross.sh (checked once here; a no-op when warm): the gnu
# ones for the .debs, the static musl ones for the cards.
set -euo pipefail
# shellcheck source=.ci/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
REPO=$PICAM_REPO
CACHE=$PICAM_CI_CACHE
t0=$SECONDS
mkdir -p "$CACHE/logs"
bash "$REPO/.ci/buildroot-check.sh"
echo "image: ARM binaries (.ci/cross.sh, tests skipped)"
PICAM_CROSS_SKIP_TESTS=1 bash "$REPO/.ci/cross.sh" aarch64-unknown-linux-gnu arm-unknown-linux-gnueabihf \
    aarch64-unknown-linux-musl arm-unknown-linux-musleabihf \
    > "$CACHE/logs/image-cross.log" 2>&1 || { tail -n 40 "$CACHE/logs/image-cross.log"; exit 1; }
echo "image: cross build checked in $((SECONDS - t0)) s"
PICAM_DEB_REBUILD=0 bash "$REPO/.ci/deb.sh"
t1=$SECONDS
bash "$REPO/tests/vm/card-boot.sh"
echo "image: card boot test done in $((SECONDS - t1)) s"
bash "$REPO/tests/vm/deb-boot.sh"
echo "image: all done in $((SECONDS - t0)) s"
