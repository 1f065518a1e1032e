#!/usr/bin/env bash
# Installs what the Raspberry Pi cross builds need, on a Debian 12 host or in a
# cross/ image.  Shared by ci/cross.sh and the cross/*.Dockerfile images.
#
#   install-deps.sh apt FAMILY...   Debian packages: native gcc (build scripts),
#                                   qemu-user-static, python3-venv and, per
#                                   FAMILY (aarch64 | armv7 | armv6), the cross
#                                   gcc, libc and binutils.
#   install-deps.sh pkgs PKG...     the named Debian packages, if missing.
#   install-deps.sh zig PREFIX      zig from PyPI (package "ziglang") in a venv at
#                                   PREFIX, with PREFIX/bin/zig on its path.
#   install-deps.sh zigbuild ROOT   cargo-zigbuild from the crate registry into ROOT/bin
#                                   (needs a Rust toolchain with cargo).
#   install-deps.sh zig-linker TARGET DIR
#                                   DIR/zigcc-TARGET: rustc linker running zig
#                                   through cargo-zigbuild (for cross/ images).
#   install-deps.sh debian-rust     Debian's rustc-web/cargo-web/rust-web-src
#                                   (fallback toolchain when rustup cannot
#                                   provide rust-src).
#
# Every step checks first and skips what is already there; apt sources are the
# machine's own configuration.  Versions can be overridden from the environment.
set -euo pipefail

ZIG_VERSION="${ZIG_VERSION:-0.15.1}"
ZIGBUILD_VERSION="${ZIGBUILD_VERSION:-0.24.1}"
APT_TIMEOUT="${APT_TIMEOUT:-600}"

log() { printf '[install-deps] %s\n' "$*" >&2; }
die() { printf '[install-deps] ERROR: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}

pkg_installed() {
    [ "$(dpkg-query -W -f '${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

packages_for() {
    case "$1" in
        base) echo gcc libc6-dev ca-certificates qemu-user-static python3 python3-venv binutils xz-utils ;;
        aarch64) echo gcc-aarch64-linux-gnu libc6-dev-arm64-cross binutils-aarch64-linux-gnu ;;
        armv7|armv6) echo gcc-arm-linux-gnueabihf libc6-dev-armhf-cross binutils-arm-linux-gnueabihf ;;
        *) die "unknown package family '$1' (aarch64, armv7, armv6)" ;;
    esac
}

apt_update_done=0
apt_update() {
    [ "$apt_update_done" = 1 ] && return 0
    local i
    for i in 1 2 3; do
        if as_root env DEBIAN_FRONTEND=noninteractive timeout "$APT_TIMEOUT" apt-get -q update >&2; then
            apt_update_done=1
            return 0
        fi
        log "apt-get update failed (try $i/3)"
        sleep $((i * 5))
    done
    die "apt-get update failed 3 times; check the machine's apt sources"
}

apt_install() {
    local missing=() p
    for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
    if [ "${#missing[@]}" -eq 0 ]; then
        log "apt: all present ($*)"
        return 0
    fi
    log "apt: installing ${missing[*]}"
    apt_update
    local i
    for i in 1 2 3; do
        if as_root env DEBIAN_FRONTEND=noninteractive timeout "$APT_TIMEOUT" \
            apt-get -q install -y --no-install-recommends "${missing[@]}" >&2; then
            return 0
        fi
        log "apt-get install failed (try $i/3); refreshing the package lists"
        apt_update_done=0
        apt_update
    done
    die "apt-get install ${missing[*]} failed"
}

cmd_apt() {
    local pkgs fam
    pkgs=$(packages_for base)
    for fam in "$@"; do pkgs="$pkgs $(packages_for "$fam")"; done
    # shellcheck disable=SC2086
    apt_install $(printf '%s\n' $pkgs | sort -u)
}

cmd_zig() {
    local prefix="${1:?usage: install-deps.sh zig PREFIX}"
    local have=""
    if [ -x "$prefix/bin/zig" ]; then
        have=$("$prefix/bin/zig" version 2>/dev/null || true)
    fi
    if [ "$have" = "$ZIG_VERSION" ]; then
        log "zig $ZIG_VERSION present in $prefix"
        return 0
    fi
    log "zig: installing ziglang==$ZIG_VERSION into $prefix"
    if [ ! -x "$prefix/bin/python" ]; then
        python3 -m venv "$prefix" || die "python3 -m venv failed (is python3-venv installed?)"
    fi
    timeout 600 "$prefix/bin/python" -m pip install -q --disable-pip-version-check \
        "ziglang==$ZIG_VERSION" || die "pip install ziglang==$ZIG_VERSION failed"
    local zbin
    zbin=$("$prefix/bin/python" -c 'import os, ziglang; print(os.path.join(os.path.dirname(ziglang.__file__), "zig"))')
    [ -x "$zbin" ] || die "ziglang wheel has no zig executable at $zbin"
    ln -sfn "$zbin" "$prefix/bin/zig"
    have=$("$prefix/bin/zig" version) || die "zig does not run"
    [ "$have" = "$ZIG_VERSION" ] || die "zig reports $have, expected $ZIG_VERSION"
}

cmd_zigbuild() {
    local root="${1:?usage: install-deps.sh zigbuild ROOT}"
    if [ -x "$root/bin/cargo-zigbuild" ] &&
        [ "$("$root/bin/cargo-zigbuild" --version 2>/dev/null | awk '{print $2}')" = "$ZIGBUILD_VERSION" ]; then
        log "cargo-zigbuild $ZIGBUILD_VERSION present in $root"
        return 0
    fi
    command -v cargo >/dev/null || die "cargo not found; cannot build cargo-zigbuild"
    log "cargo-zigbuild: building $ZIGBUILD_VERSION into $root (about 80 s on 2 cores)"
    timeout 1200 cargo install --locked --quiet --root "$root" "cargo-zigbuild@$ZIGBUILD_VERSION" >&2 ||
        die "cargo install cargo-zigbuild@$ZIGBUILD_VERSION failed"
}

# zig-linker TARGET DIR: write DIR/zigcc-TARGET, a linker for rustc that runs
# zig's clang through cargo-zigbuild (which smooths over rustc's linker flags),
# with the CPU baseline of the Rust target.
cmd_zig_linker() {
    local target="${1:?usage: install-deps.sh zig-linker TARGET DIR}" dir="${2:?}"
    local zt mcpu=""
    case "$target" in
        aarch64-unknown-linux-musl) zt=aarch64-linux-musl ;;
        aarch64-unknown-linux-gnu) zt=aarch64-linux-gnu.2.31 ;;
        armv7-unknown-linux-musleabihf) zt=arm-linux-musleabihf; mcpu=generic+v7a+vfp3d16+thumb2-neon ;;
        armv7-unknown-linux-gnueabihf) zt=arm-linux-gnueabihf.2.31; mcpu=generic+v7a+vfp3d16+thumb2-neon ;;
        arm-unknown-linux-musleabihf) zt=arm-linux-musleabihf; mcpu=generic+v6+strict_align+vfp2-d32 ;;
        arm-unknown-linux-gnueabihf) zt="arm-linux-gnueabihf.${ARMV6_GLIBC:-2.31}"; mcpu=generic+v6+strict_align+vfp2-d32 ;;
        *) die "zig-linker: unknown target $target" ;;
    esac
    mkdir -p "$dir"
    {
        echo '#!/bin/sh'
        echo "# rustc linker for $target: zig cc via cargo-zigbuild"
        printf 'exec cargo-zigbuild zig cc -- -g -fno-sanitize=all %s-target %s "$@"\n' \
            "${mcpu:+-mcpu=$mcpu }" "$zt"
    } >"$dir/zigcc-$target"
    chmod 755 "$dir/zigcc-$target"
    log "wrote $dir/zigcc-$target"
}

cmd_debian_rust() {
    apt_install ca-certificates rustc-web cargo-web rust-web-src
    [ -d /usr/lib/rustlib/src/rust/library ] || die "rust-web-src did not provide /usr/lib/rustlib/src/rust/library"
}

main() {
    local cmd="${1:-}"
    [ $# -gt 0 ] && shift
    case "$cmd" in
        apt) cmd_apt "$@" ;;
        pkgs) apt_install "$@" ;;
        zig) cmd_zig "$@" ;;
        zigbuild) cmd_zigbuild "$@" ;;
        zig-linker) cmd_zig_linker "$@" ;;
        debian-rust) cmd_debian_rust ;;
        *) die "usage: install-deps.sh {apt FAMILY...|pkgs PKG...|zig PREFIX|zigbuild ROOT|zig-linker TARGET DIR|debian-rust}" ;;
    esac
}

main "$@"
