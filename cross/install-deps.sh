#!/usr/bin/env bash
# Installs what the Raspberry Pi cross builds need, on a Debian 12 host or in a
# cross/ image.  Shared by .ci/cross.sh, .ci/libcamera.sh, .ci/cross-podman.sh and
# the cross/*.Dockerfile images.
#
#   install-deps.sh apt FAMILY...   Debian packages: native gcc (build scripts),
#                                   qemu-user-static, python3-venv and, per
#                                   FAMILY (aarch64 | armv7 | armv6), the cross
#                                   gcc, libc and binutils; libcamera-aarch64 |
#                                   libcamera-armv7: the cross g++, libclang and
#                                   pkg-config the `libcamera` feature needs;
#                                   turbojpeg-aarch64 | turbojpeg-armv7: CMake and
#                                   the cross g++ for the `turbojpeg` feature;
#                                   openssl: perl and make, which build OpenSSL
#                                   for the `webrtc-static` feature;
#                                   cxx-aarch64 | cxx-armv7 | cxx-armv6: the cross
#                                   g++ that builds OpenH264 (`h264` feature).
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
#   install-deps.sh no-libcamera DIR
#                                   DIR/pkg-config-no-libcamera: the pkg-config of
#                                   targets without a libcamera (musl, ARMv6); it
#                                   says why the `libcamera` feature cannot be
#                                   built for them.
#   install-deps.sh debian-mirror   prints the Debian archive address of the
#                                   machine's apt sources.
#   install-deps.sh private-apt DIR ARCH
#                                   makes DIR an apt of its own for the Debian
#                                   architecture ARCH: DIR/apt.conf (use it with
#                                   APT_CONFIG=DIR/apt.conf) keeps lists, downloads
#                                   and an empty package status under DIR and reads
#                                   its sources from DIR/etc/sources.list and
#                                   DIR/etc/sources.list.d/ (the caller writes
#                                   them); the host's apt is not touched.
#   install-deps.sh libcamera ARCH ROOT
#                                   Debian's libcamera for ARCH (amd64 | arm64 |
#                                   armhf) unpacked into ROOT: libcamera-dev and
#                                   its library package (headers, pkg-config file,
#                                   .so), to build the `libcamera` feature against.
#                                   With LIBCAMERA_OPTIONAL=1 a failure only warns.
#   install-deps.sh libcamera-run ARCH ROOT
#                                   libcamera's library, its IPA modules and udev
#                                   for ARCH with everything they load, unpacked
#                                   into ROOT (a run-time root for qemu-user or a
#                                   chroot).
#
# The libcamera packages come from the suite LIBCAMERA_SUITE (default trixie,
# whose libcamera 0.4 is the first the crate builds against) of the machine's
# own Debian mirror, through a private apt state in LIBCAMERA_APT_DIR (default: a
# temporary directory): the machine's package database is neither read nor
# changed.  Binaries built against it need that libcamera's soname at run time
# (libcamera.so.0.4 for trixie).
#
# Every step checks first and skips what is already there; apt sources are the
# machine's own configuration.  Versions can be overridden from the environment.
set -euo pipefail

ZIG_VERSION="${ZIG_VERSION:-0.15.1}"
ZIGBUILD_VERSION="${ZIGBUILD_VERSION:-0.24.1}"
APT_TIMEOUT="${APT_TIMEOUT:-600}"
LIBCAMERA_SUITE="${LIBCAMERA_SUITE:-trixie}"

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
        # building the `libcamera` feature: the C++ shim's compiler, bindgen's
        # libclang, pkg-config
        libcamera-aarch64) echo g++-aarch64-linux-gnu libclang-dev pkg-config ;;
        libcamera-armv7) echo g++-arm-linux-gnueabihf libclang-dev pkg-config ;;
        # the `turbojpeg` feature: libjpeg-turbo built for the target by CMake
        turbojpeg-aarch64) echo cmake g++-aarch64-linux-gnu ;;
        turbojpeg-armv7) echo cmake g++-arm-linux-gnueabihf ;;
        # the `webrtc-static` feature: OpenSSL built from source for the target
        openssl) echo perl make ;;
        # the `h264` feature: OpenH264 built from its C++ source for the target
        cxx-aarch64) echo g++-aarch64-linux-gnu ;;
        cxx-armv7|cxx-armv6) echo g++-arm-linux-gnueabihf ;;
        *) die "unknown package family '$1' (aarch64, armv7, armv6, libcamera-aarch64, libcamera-armv7, turbojpeg-aarch64, turbojpeg-armv7, openssl, cxx-aarch64, cxx-armv7, cxx-armv6)" ;;
    esac
}

# wait for another apt (the CI's lanes install side by side) rather than fail
APT_OPTS=(-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
apt_update_done=0
apt_update() {
    [ "$apt_update_done" = 1 ] && return 0
    local i
    for i in 1 2 3; do
        if as_root env DEBIAN_FRONTEND=noninteractive timeout "$APT_TIMEOUT" apt-get "${APT_OPTS[@]}" -q update >&2; then
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
            apt-get "${APT_OPTS[@]}" -q install -y --no-install-recommends "${missing[@]}" >&2; then
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

# no-libcamera DIR: the images point PKG_CONFIG_<target> of the targets that
# have no libcamera at this script, so that `--features libcamera` stops with
# the reason (the libcamera crates find libcamera through pkg-config); any
# other library goes to the real pkg-config.
cmd_no_libcamera() {
    local dir="${1:?usage: install-deps.sh no-libcamera DIR}"
    mkdir -p "$dir"
    cat >"$dir/pkg-config-no-libcamera" <<'EOF'
#!/bin/sh
# pkg-config for targets with no libcamera to build against (see cross/install-deps.sh)
for a in "$@"; do
    case "$a" in
        libcamera | camera)
            echo "The libcamera feature cannot be built for ${TARGET:-this target}: it needs a glibc target with a libcamera built for it." >&2
            echo "This image has Debian's libcamera for aarch64-unknown-linux-gnu and armv7-unknown-linux-gnueabihf only." >&2
            echo "musl binaries cannot load the Pi's (glibc) libcamera, and Debian's armhf libcamera is ARMv7 code, so ARMv6 builds" >&2
            echo "(Pi Zero, Pi 1) cannot use it: build those with the Buildroot package, which builds libcamera for the Pi." >&2
            exit 1 ;;
    esac
done
command -v pkg-config >/dev/null 2>&1 || { echo "pkg-config is not installed in this image" >&2; exit 1; }
exec pkg-config "$@"
EOF
    chmod 755 "$dir/pkg-config-no-libcamera"
    log "wrote $dir/pkg-config-no-libcamera"
}

# The first Debian archive (not its security archive) named by the machine's apt
# sources, deb822 files first, then the one-line format.  DEBIAN_MIRROR wins.
cmd_debian_mirror() {
    if [ -n "${DEBIAN_MIRROR:-}" ]; then
        echo "$DEBIAN_MIRROR"
        return 0
    fi
    local releases='(oldstable|stable|testing|unstable|sid|bullseye|bookworm|trixie|forky)'
    local f uri=""
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        uri=$(awk -v rel="$releases" '
            BEGIN { RS = "" }
            {
                u = ""; s = ""
                n = split($0, line, "\n")
                for (i = 1; i <= n; i++) {
                    l = line[i]
                    if (l ~ /^#/) continue
                    k = tolower(l)
                    if (k ~ /^uris:/) { split(l, w, /[ \t]+/); u = w[2] }
                    if (k ~ /^suites:/) s = l " "
                }
                if (u != "" && u !~ /security/ && s ~ ("[ \t]" rel "[ \t-]")) { print u; exit }
            }' "$f")
        [ -n "$uri" ] && break
    done
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
        uri=$(awk -v rel="$releases" '
            $1 == "deb" && $0 !~ /security/ {
                for (i = 2; i < NF; i++)
                    if ($i ~ /^[a-z+]+:\/\//) {
                        if ($(i + 1) ~ ("^" rel)) { print $i; exit }
                        break
                    }
            }' /etc/apt/sources.list)
    fi
    [ -n "$uri" ] || die "no Debian archive in the machine's apt sources (set DEBIAN_MIRROR)"
    echo "${uri%/}"
}

cmd_private_apt() {
    local dir="${1:?usage: install-deps.sh private-apt DIR ARCH}" arch="${2:?usage: install-deps.sh private-apt DIR ARCH}"
    mkdir -p "$dir"/{state/lists/partial,cache/archives/partial,etc/sources.list.d,etc/preferences.d}
    [ -e "$dir/status" ] || : >"$dir/status"
    cat >"$dir/apt.conf" <<EOF
Dir::Etc::SourceList "$dir/etc/sources.list";
Dir::Etc::SourceParts "$dir/etc/sources.list.d";
Dir::Etc::Preferences "$dir/etc/preferences";
Dir::Etc::PreferencesParts "$dir/etc/preferences.d";
Dir::State "$dir/state";
Dir::State::status "$dir/status";
Dir::Cache "$dir/cache";
APT::Architecture "$arch";
APT::Architectures { "$arch"; };
APT::Install-Recommends "false";
APT::Sandbox::User "root";
Acquire::Languages "none";
Acquire::Retries "3";
EOF
}

# Private apt state for one architecture of LIBCAMERA_SUITE, in $lc_apt: its own
# sources, lists, status and download cache, with ARCH as the native
# architecture so packages resolve as on that machine.
lc_apt=""
lc_setup() {
    local arch=$1 base mirror suites
    base="${LIBCAMERA_APT_DIR:-}"
    if [ -z "$base" ]; then
        base=$(mktemp -d)
        # shellcheck disable=SC2064
        trap "rm -rf '$base'" EXIT
    fi
    lc_apt="$base/$LIBCAMERA_SUITE-$arch"
    mkdir -p "$lc_apt"/{etc/apt.conf.d,debs,listing/partial}
    exec 8>"$lc_apt/.lock"
    flock -w 1800 8 || die "another run holds $lc_apt/.lock"
    mirror=$(cmd_debian_mirror)
    case "$mirror" in
        https:*) if ! [ -s /etc/ssl/certs/ca-certificates.crt ]; then apt_install ca-certificates; fi ;;
    esac
    command -v dpkg-deb >/dev/null || die "dpkg-deb not found"
    cmd_private_apt "$lc_apt" "$arch"
    # and none of the host's apt.conf.d, and no indexes but the packages'
    cat >>"$lc_apt/apt.conf" <<EOF
Dir::Etc::Parts "$lc_apt/etc/apt.conf.d";
Acquire::IndexTargets::deb::DEP-11::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled "false";
Acquire::IndexTargets::deb::CNF::DefaultEnabled "false";
EOF
    : >"$lc_apt/etc/sources.list"
    suites=$LIBCAMERA_SUITE
    case "$LIBCAMERA_SUITE" in sid | unstable | experimental) ;; *) suites="$suites $LIBCAMERA_SUITE-updates" ;; esac
    local sources
    sources=$(printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$mirror" "$suites")
    # Lists older than a week (or from another mirror) are refreshed; otherwise
    # the state works offline.
    if [ "$(cat "$lc_apt/etc/sources.list.d/libcamera.sources" 2>/dev/null)" != "$sources" ] ||
        [ -z "$(find "$lc_apt/updated" -mtime -7 2>/dev/null)" ]; then
        printf '%s\n' "$sources" >"$lc_apt/etc/sources.list.d/libcamera.sources"
        log "apt-get update ($LIBCAMERA_SUITE $arch, private lists)"
        lc_papt apt-get -q update >"$lc_apt/update.log" 2>&1 ||
            { tail -n 20 "$lc_apt/update.log" >&2; die "apt-get update ($LIBCAMERA_SUITE $arch) failed"; }
        touch "$lc_apt/updated"
    fi
}
lc_papt() { APT_CONFIG="$lc_apt/apt.conf" timeout "$APT_TIMEOUT" "$@"; }

# The library package libcamera-dev belongs with (libcamera0.4 in trixie).
lc_library_package() {
    local p
    p=$(lc_papt apt-cache depends libcamera-dev | awk '$1 == "Depends:" && $2 ~ /^libcamera[0-9]/ { print $2; exit }')
    [ -n "$p" ] || die "no libcamera-dev with a libcamera library in $LIBCAMERA_SUITE"
    echo "$p"
}

# lc_fetch deps|nodeps PKG...: downloads the packages (with "deps", their
# dependency closure against an empty system) into $lc_apt/debs and prints the
# .deb paths.  The resolution is kept until the lists change.
lc_fetch() {
    local mode=$1 uris line file size key
    shift
    key="$lc_apt/resolved-$(printf '%s\n' "$mode" "$@" | sha256sum | cut -c1-16)"
    if [ "$key" -nt "$lc_apt/updated" ] && [ -s "$key" ]; then
        uris=$(cat "$key")
    elif [ "$mode" = deps ]; then
        uris=$(lc_papt apt-get -qq -o Dir::Cache::archives="$lc_apt/listing" --print-uris install "$@") ||
            die "apt cannot resolve $*"
    else
        uris=$(lc_papt apt-get -qq --print-uris download "$@") || die "apt cannot download $*"
    fi
    printf '%s\n' "$uris" >"$key"
    local -a todo=() files=()
    while read -r line; do
        [ -n "$line" ] || continue
        read -r _ file size _ <<<"$(tr -d "'" <<<"$line")"
        files+=("$file")
        { [ -s "$lc_apt/debs/$file" ] && [ "$(stat -c %s "$lc_apt/debs/$file")" = "$size" ]; } || todo+=("$file")
    done <<<"$uris"
    if [ "${#todo[@]}" -gt 0 ]; then
        log "downloading ${#todo[@]} package(s)"
        if [ "$mode" = deps ]; then
            lc_papt apt-get -q -y -o Dir::Cache::archives="$lc_apt/debs" install --download-only "$@" \
                >"$lc_apt/download.log" 2>&1 || { tail -n 20 "$lc_apt/download.log" >&2; die "download failed: $*"; }
        else
            (cd "$lc_apt/debs" && lc_papt apt-get -q download "$@" >"$lc_apt/download.log" 2>&1) ||
                { tail -n 20 "$lc_apt/download.log" >&2; die "download failed: $*"; }
        fi
    fi
    for file in "${files[@]}"; do
        [ -s "$lc_apt/debs/$file" ] || die "missing after download: $file"
        printf '%s\n' "$lc_apt/debs/$file"
    done
}

# lc_unpack ROOT: unpacks the .debs read from stdin into ROOT, once per set.
lc_unpack() {
    local root=$1 debs fp d
    debs=$(sort)
    fp=$(printf '%s\n' layout-1 "$debs" | xargs -n1 basename | sha256sum | cut -c1-16)
    if [ "$(cat "$root/.fp" 2>/dev/null)" = "$fp" ]; then
        log "$root is up to date"
        return 0
    fi
    log "unpacking $(wc -l <<<"$debs") package(s) into $root"
    rm -rf "$root" && mkdir -p "$root"
    while read -r d; do dpkg-deb -x "$d" "$root"; done <<<"$debs"
    # merged /usr: the loader path /lib/ld-linux-* must resolve inside the root
    for d in bin sbin lib lib64; do
        if [ -d "$root/usr/$d" ] && [ ! -e "$root/$d" ]; then ln -s "usr/$d" "$root/$d"; fi
    done
    printf '%s\n' "$fp" >"$root/.fp"
}

lc_arch() {
    case "$1" in
        amd64 | arm64 | armhf) ;;
        *) die "libcamera: unknown Debian architecture '$1' (amd64, arm64, armhf)" ;;
    esac
}

cmd_libcamera() {
    local arch="${1:?usage: install-deps.sh libcamera ARCH ROOT}" root="${2:?usage: install-deps.sh libcamera ARCH ROOT}"
    if [ "${LIBCAMERA_OPTIONAL:-0}" = 1 ]; then
        # the images: a mirror that cannot serve the suite costs the feature, not
        # the image (the feature's build then finds no libcamera.pc)
        if ! (LIBCAMERA_OPTIONAL=0 cmd_libcamera "$arch" "$root"); then
            mkdir -p "$root"
            echo "Debian's $LIBCAMERA_SUITE $arch libcamera could not be fetched when this image was built" >"$root/NOT-FETCHED"
            log "WARNING: no $LIBCAMERA_SUITE $arch libcamera: --features libcamera will not build in this image"
        fi
        return 0
    fi
    lc_arch "$arch"
    lc_setup "$arch"
    local lib
    lib=$(lc_library_package)
    lc_fetch nodeps libcamera-dev "$lib" | lc_unpack "$root"
    local pc
    pc=$(find "$root/usr/lib" -name libcamera.pc | head -n1)
    [ -n "$pc" ] || die "no libcamera.pc in $root"
    log "libcamera $(sed -n 's/^Version: //p' "$pc") ($LIBCAMERA_SUITE $arch, $lib) in $root"
}

cmd_libcamera_run() {
    local arch="${1:?usage: install-deps.sh libcamera-run ARCH ROOT}" root="${2:?usage: install-deps.sh libcamera-run ARCH ROOT}"
    lc_arch "$arch"
    lc_setup "$arch"
    local lib
    lib=$(lc_library_package)
    # udev: without it libcamera enumerates no camera
    lc_fetch deps "$lib" libcamera-ipa udev libc-bin | lc_unpack "$root"
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
        no-libcamera) cmd_no_libcamera "$@" ;;
        debian-mirror) cmd_debian_mirror ;;
        private-apt) cmd_private_apt "$@" ;;
        libcamera) cmd_libcamera "$@" ;;
        libcamera-run) cmd_libcamera_run "$@" ;;
        *) die "usage: install-deps.sh {apt FAMILY...|pkgs PKG...|zig PREFIX|zigbuild ROOT|zig-linker TARGET DIR|debian-rust|no-libcamera DIR|debian-mirror|private-apt DIR ARCH|libcamera ARCH ROOT|libcamera-run ARCH ROOT}" ;;
    esac
}

main "$@"
