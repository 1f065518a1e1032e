#!/usr/bin/env bash
# The libjpeg-turbo back end (cargo feature `turbojpeg`): its unit tests on this machine,
# then built for the 64- and 32-bit Pi targets with Debian's cross compilers (CMake
# builds libjpeg-turbo for the target, with NEON) and the encoder tests run under
# qemu-user as a Cortex-A72 and a Cortex-A7. Every test decodes what was encoded.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${PICAM_CI_CACHE:-/var/cache/picam-stream-ci}/turbojpeg"
mkdir -p "$CACHE"
export CARGO_TARGET_DIR="$CACHE/target" CARGO_TERM_COLOR=never

need=()
for p in cmake:cmake nasm:nasm qemu-aarch64-static:qemu-user-static \
         aarch64-linux-gnu-gcc:gcc-aarch64-linux-gnu arm-linux-gnueabihf-gcc:gcc-arm-linux-gnueabihf \
         aarch64-linux-gnu-g++:g++-aarch64-linux-gnu arm-linux-gnueabihf-g++:g++-arm-linux-gnueabihf; do
    command -v "${p%%:*}" >/dev/null || need+=("${p#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "turbojpeg: installing ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 install -y \
        --no-install-recommends "${need[@]}" >/dev/null
fi

echo "turbojpeg: unit tests on $(uname -m)"
cargo test --release --features turbojpeg --lib 2>&1 | grep -E "^test result|FAILED|panicked" 

for spec in aarch64-unknown-linux-gnu:aarch64-linux-gnu:qemu-aarch64-static:cortex-a72 \
            armv7-unknown-linux-gnueabihf:arm-linux-gnueabihf:qemu-arm-static:cortex-a7; do
    IFS=: read -r target gnu qemu cpu <<< "$spec"
    rustup target list --installed | grep -qx "$target" || rustup target add "$target"
    T=$(echo "$target" | tr 'a-z-' 'A-Z_')
    t=$(echo "$target" | tr '-' '_')
    export "CC_$t=$gnu-gcc" "CXX_$t=$gnu-g++" "CARGO_TARGET_${T}_LINKER=$gnu-gcc"
    export "CARGO_TARGET_${T}_RUNNER=$qemu -cpu $cpu -L /usr/$gnu"
    echo "turbojpeg: $target, encoder tests under $qemu -cpu $cpu"
    cargo test --release --features turbojpeg --target "$target" --lib encoder 2>&1 |
        grep -E "^test |^test result|FAILED|panicked"
done
