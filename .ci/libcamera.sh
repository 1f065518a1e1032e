#!/usr/bin/env bash
# Builds the `libcamera` feature where libcamera is not installed: Debian trixie's
# libcamera 0.4 packages are unpacked into a private root (nothing on this machine's
# package database changes), then
#   * x86_64: cargo clippy (all targets, -D warnings) and the unit tests with the feature,
#     and a release build,
#   * then the end-to-end test in the VM rig (tests/vm/libcamera.sh), unless
#     PICAM_LIBCAMERA_SKIP_VM=1.
# The aarch64 build of the feature is .ci/cross-podman.sh's: `cross build --features
# libcamera` with the image users build, linked against trixie's arm64 libcamera.so,
# then `--list-cameras` under qemu-user on trixie's arm64 libraries.
#
#   .ci/libcamera.sh [env|root]
#       env    only prepares the roots (amd64 and arm64) and prints the variables a
#              shell needs to build the feature itself, for x86_64 or for aarch64 with
#              Debian's cross g++ (eval "$(.ci/libcamera.sh env)")
#       root   only prepares the roots and prints the amd64 run-time root (libcamera,
#              its IPA modules, udev and their libraries: what the VM test chroots into)
#
# Everything downloaded goes to $PICAM_CI_CACHE/libcamera.
#
# Linking note: trixie's libcamera.so needs glibc 2.38 and libstdc++ 14, newer than
# this Debian 12 machine's (and its aarch64 cross sysroot's). The program itself is
# linked against the older glibc (so it asks for no more than it uses) with
# --allow-shlib-undefined, which lets the linker accept that libcamera.so's own
# references are satisfied by the newer libraries present wherever libcamera 0.4 is
# installed; -rpath-link lets it read libcamera-base.so from the private root. The
# qemu-user run and the VM test check the result really loads on trixie.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=.ci/lib.sh
. "$HERE/lib.sh"
REPO=$PICAM_REPO
CACHE="$PICAM_CI_CACHE/libcamera"

T0=$SECONDS
elapsed() { printf '%d s' $((SECONDS - $1)); }

# ---------------------------------------------------------------- host tools
# need_host [env]: the aarch64 cross g++ only for `env`, whose shell may build for aarch64
need_host() {
    need pkg-config pkg-config
    need dpkg-deb dpkg
    if [ "${1:-}" = env ]; then
        need aarch64-linux-gnu-g++ g++-aarch64-linux-gnu
    fi
    ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || apt_install libclang-dev
}

# ---------------------------------------------------------------- roots
# cross/install-deps.sh fetches and unpacks them, as it does in the cross images:
# trixie's lists, one private apt state per architecture under $CACHE/suites (the
# host's apt configuration, lists and dpkg status are neither read nor written).
# The build roots hold headers, pkg-config file and the .so links; the run-time
# roots (qemu-user, the unit tests, the VM) libcamera with everything it loads, its
# IPA modules, and udev, without which libcamera enumerates no camera.
prepare_roots() { # prepare_roots ARCH...
    local arch
    for arch in "$@"; do
        LIBCAMERA_APT_DIR=$CACHE/suites bash "$REPO/cross/install-deps.sh" libcamera "$arch" "$CACHE/root-$arch"
        LIBCAMERA_APT_DIR=$CACHE/suites bash "$REPO/cross/install-deps.sh" libcamera-run "$arch" "$CACHE/run-$arch"
    done
}

# Prints the environment that builds the feature for Rust target $1.
build_env() {
    local target=$1 arch triple upper
    case "$target" in
        x86_64-unknown-linux-gnu) arch=amd64 triple=x86_64-linux-gnu ;;
        aarch64-unknown-linux-gnu) arch=arm64 triple=aarch64-linux-gnu ;;
        *) die "no libcamera root for $target" ;;
    esac
    local root=$CACHE/root-$arch
    upper=$(tr 'a-z-' 'A-Z_' <<<"$target")
    local tl=${target//-/_}
    printf 'export PKG_CONFIG_SYSROOT_DIR_%s=%q\n' "$tl" "$root"
    printf 'export PKG_CONFIG_LIBDIR_%s=%q\n' "$tl" "$root/usr/lib/$triple/pkgconfig"
    printf 'export PKG_CONFIG_PATH_%s=\n' "$tl"
    local flags="-C link-arg=-Wl,--allow-shlib-undefined -C link-arg=-Wl,-rpath-link,$root/usr/lib/$triple"
    # (the cross linker and compilers come from .cargo/config.toml)
    if [ "$arch" = arm64 ]; then
        printf 'export BINDGEN_EXTRA_CLANG_ARGS_%s=%q\n' "$tl" "--sysroot=/usr/aarch64-linux-gnu"
    fi
    printf 'export CARGO_TARGET_%s_RUSTFLAGS=%q\n' "$upper" "$flags"
}

main() {
    mkdir -p "$CACHE"
    exec 9>"$CACHE/.lock"
    flock -w 1800 9 || die "another run holds $CACHE/.lock"
    need_host "${1:-}"
    local t=$SECONDS
    if [ "${1:-}" = env ]; then prepare_roots amd64 arm64; else prepare_roots amd64; fi
    say "roots ready in $(elapsed "$t"): $(sed -n 's/^Version: //p' "$CACHE/root-amd64/usr/lib/x86_64-linux-gnu/pkgconfig/libcamera.pc") headers"
    case "${1:-}" in
        env) build_env x86_64-unknown-linux-gnu; build_env aarch64-unknown-linux-gnu; return 0 ;;
        root) printf '%s\n' "$CACHE/run-amd64"; return 0 ;;
        '') ;;
        *) die "unknown argument '$1' (env or root)" ;;
    esac
    cd "$REPO"
    export CARGO_TERM_COLOR=never
    # .ci/run shares one target directory among its steps
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
    eval "$(build_env x86_64-unknown-linux-gnu)"

    t=$SECONDS
    say "x86_64: clippy with the feature"
    nice -n 5 cargo clippy --features libcamera --all-targets --target x86_64-unknown-linux-gnu -- -D warnings
    say "x86_64: unit tests with the feature, run on trixie's libraries"
    local run64=$CACHE/run-amd64
    CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="$run64/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 --library-path $run64/usr/lib/x86_64-linux-gnu" \
        nice -n 5 cargo test --features libcamera --target x86_64-unknown-linux-gnu --lib
    say "x86_64: release build"
    nice -n 5 cargo build --release --features libcamera --target x86_64-unknown-linux-gnu
    say "x86_64 done in $(elapsed "$t")"

    if [ "${PICAM_LIBCAMERA_SKIP_VM:-0}" != 1 ]; then
        flock -u 9
        PICAM_LIBCAMERA_ROOT=$run64 \
            PICAM_LIBCAMERA_BIN="$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/picam-stream" \
            bash "$REPO/tests/vm/libcamera.sh"
    fi
    say "all done in $(elapsed "$T0")"
}

main "$@"
