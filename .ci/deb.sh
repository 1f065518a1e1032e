#!/usr/bin/env bash
# Debian packages for Raspberry Pi OS: builds picam-stream_*_arm64.deb and
# picam-stream_*_armhf.deb with cargo-deb from the binaries that .ci/cross.sh
# built, checks their metadata and contents, scores the systemd unit's
# sandbox, and installs the arm64 package into a Debian arm64 root (the VM
# rig's userland, with its own dpkg database) where the installed binary
# then serves a frame over loopback under qemu-user.
#
#   .ci/deb.sh            packages go to $PICAM_CI_CACHE/debs
#
# Environment: PICAM_CI_CACHE (see .ci/lib.sh),
# PICAM_DEB_REBUILD=0 to skip the (normally quick) cross build check,
# PICAM_DEB_ARCHS to build only some of the packages (default "arm64 armhf"),
# PICAM_DEB_INSTALL_TEST=0 to stop after the packages' own checks (no arm64
# root, no qemu: what the release workflow does, one package per job).
set -euo pipefail

# shellcheck source=.ci/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
REPO=$PICAM_REPO
CACHE=$PICAM_CI_CACHE
MINE=$CACHE/image
OUT=$CACHE/debs
CARGO_DEB_VERSION=3.8.0
export CARGO_TARGET_DIR=$CACHE/cross-target
export PATH="$MINE/tools/bin:$PATH:/usr/sbin:/sbin"
PASS=0 FAIL=0
ok() { PASS=$((PASS + 1)); printf 'deb: ok: %s\n' "$*"; }
nok() { FAIL=$((FAIL + 1)); printf 'deb: NOT OK: %s\n' "$*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else nok "$what"; fi; }

# target -> Debian architecture, and the cargo-deb variant it uses.
declare -A ARCH=([aarch64-unknown-linux-gnu]=arm64 [arm-unknown-linux-gnueabihf]=armhf)
declare -A VARIANT=([aarch64-unknown-linux-gnu]="" [arm-unknown-linux-gnueabihf]=armhf)
declare -A GLIBC=([arm64]=2.34 [armhf]=2.30)
# What each package depends on: glibc, and on arm64 the C++ run time of OpenH264
# (the software H.264 encoder it has for the Pi 5).
declare -A DEPENDS=([arm64]="libc6 (>= 2.34), libgcc-s1, libstdc++6, systemd" [armhf]="libc6 (>= 2.30), systemd")
# The libraries the binary may ask for, each with the package Depends names for it.
# (glibc before 2.34, which the armhf build links against, had libpthread, libdl and
# librt apart from libc.)
declare -A LIBRARY_PACKAGE=([libc.so.6]=libc6 [libm.so.6]=libc6 [ld-linux-aarch64.so.1]=libc6
    [ld-linux-armhf.so.3]=libc6 [libpthread.so.0]=libc6 [libdl.so.2]=libc6 [librt.so.1]=libc6
    [libgcc_s.so.1]=libgcc-s1 [libstdc++.so.6]=libstdc++6)
# Camera modules are reached through rpicam-vid; the package works without it.
RECOMMENDS='rpicam-apps-lite | rpicam-apps'
WANT_ARCHS=${PICAM_DEB_ARCHS:-arm64 armhf}
TARGETS=()
for t in "${!ARCH[@]}"; do
    case " $WANT_ARCHS " in *" ${ARCH[$t]} "*) TARGETS+=("$t") ;; esac
done
[ "${#TARGETS[@]}" -gt 0 ] || die "PICAM_DEB_ARCHS='$WANT_ARCHS' names none of: ${ARCH[*]}"

mkdir -p "$MINE" "$OUT" "$CACHE/logs"
if ! cargo-deb --version 2>/dev/null | grep -q "$CARGO_DEB_VERSION"; then
    echo "deb: installing cargo-deb $CARGO_DEB_VERSION"
    nice -n 5 cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked --root "$MINE/tools" \
        > "$MINE/cargo-deb-install.log" 2>&1 || { tail -n 20 "$MINE/cargo-deb-install.log"; die "cargo install cargo-deb failed"; }
fi

if [ "${PICAM_DEB_REBUILD:-1}" = 1 ]; then
    PICAM_CROSS_SKIP_TESTS=1 bash "$REPO/.ci/cross.sh" "${TARGETS[@]}" > "$CACHE/logs/deb-cross.log" 2>&1 ||
        { tail -n 30 "$CACHE/logs/deb-cross.log"; die "the cross build failed"; }
fi

version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO/Cargo.toml" | head -n1)
cd "$REPO"
for t in "${TARGETS[@]}"; do
    a=${ARCH[$t]}
    rm -f "$OUT"/picam-stream_*_"$a".deb
    args=(--no-build --target "$t" -o "$OUT/")
    [ -n "${VARIANT[$t]}" ] && args+=(--variant "${VARIANT[$t]}")
    deb=$(cargo-deb "${args[@]}" 2>"$OUT/cargo-deb-$a.log" | tail -n1) ||
        { cat "$OUT/cargo-deb-$a.log"; die "cargo-deb failed for $t"; }
    [ "$deb" = "$OUT/picam-stream_${version}-1_$a.deb" ] || die "unexpected package name $deb"
    printf 'deb: built %s (%s bytes)\n' "$deb" "$(stat -c %s "$deb")"

    # Metadata and contents.
    field() { dpkg-deb -f "$deb" "$1"; }
    check "$a: Package picam-stream" test "$(field Package)" = picam-stream
    check "$a: Architecture $a" test "$(field Architecture)" = "$a"
    check "$a: Version $version-1" test "$(field Version)" = "$version-1"
    check "$a: Depends: ${DEPENDS[$a]}" test "$(field Depends)" = "${DEPENDS[$a]}"
    check "$a: Recommends $RECOMMENDS" test "$(field Recommends)" = "$RECOMMENDS"
    list=$(dpkg-deb -c "$deb" | awk '{ print $6 }')
    for f in ./usr/bin/picam-stream ./usr/lib/systemd/system/picam-stream.service \
        ./usr/lib/sysusers.d/picam-stream.conf ./etc/default/picam-stream; do
        check "$a: contains $f" grep -qx "$f" <<<"$list"
    done
    check "$a: /etc/default/picam-stream is a conffile" \
        sh -c "dpkg-deb -I '$deb' conffiles | grep -qx /etc/default/picam-stream"
    x=$(mktemp -d)
    dpkg-deb -x "$deb" "$x"
    desc=$(file -b "$x/usr/bin/picam-stream")
    case $a in arm64) want='ARM aarch64' ;; armhf) want='ARM, EABI5' ;; esac
    # shellcheck disable=SC2016 # expanded by the inner bash
    check "$a: the binary is $want, stripped ($desc)" \
        bash -c '[[ "$1" == *"$2"* && "$1" == *", stripped"* ]]' _ "$desc" "$want"
    check "$a: the unit is the one in buildroot-package/" \
        cmp -s "$x/usr/lib/systemd/system/picam-stream.service" \
        "$REPO/buildroot-package/package/picam-stream/picam-stream.service"
    max_glibc=$(objdump -T "$x/usr/bin/picam-stream" 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -n1)
    check "$a: the binary needs glibc $max_glibc, within Depends (${GLIBC[$a]})" \
        dpkg --compare-versions "$max_glibc" le "${GLIBC[$a]}"
    for lib in $(objdump -p "$x/usr/bin/picam-stream" | awk '$1 == "NEEDED" { print $2 }'); do
        pkg=${LIBRARY_PACKAGE[$lib]:-}
        # shellcheck disable=SC2016 # expanded by the inner bash
        check "$a: the binary's $lib comes from a package in Depends (${pkg:-none known})" \
            bash -c '[ -n "$2" ] && [[ ", $1," == *", $2"[\ ,]* ]]' _ "${DEPENDS[$a]}" "$pkg"
    done
    rm -rf "$x"
    dpkg-deb -e "$deb" "$OUT/control-$a"
    check "$a: postinst creates the user with systemd-sysusers" grep -q 'systemd-sysusers' "$OUT/control-$a/postinst"
    check "$a: postinst enables and starts the unit" \
        sh -c "grep -q 'deb-systemd-helper enable picam-stream.service' '$OUT/control-$a/postinst' && grep -q 'deb-systemd-invoke \$_dh_action picam-stream.service' '$OUT/control-$a/postinst'"
    rm -rf "$OUT/control-$a"
done

# The unit's sandbox, as systemd scores it (0 = locked down, 10 = exposed).
unit=$REPO/buildroot-package/package/picam-stream/picam-stream.service
if systemd-analyze security --help 2>/dev/null | grep -q -- --offline; then
    score=$(systemd-analyze security --offline=true --no-pager "$unit" 2>/dev/null |
        sed -n 's/.*Overall exposure level for picam-stream.service: \([0-9.]*\).*/\1/p')
    echo "deb: systemd-analyze security: exposure $score (0 = best, 10 = worst)"
    check "unit exposure $score is below 2.5 (\"OK\")" awk -v s="$score" 'BEGIN { exit !(s != "" && s < 2.5) }'
    # The binary is not installed on this host; any other remark is a fault.
    remarks=$(systemd-analyze verify --man=no "$unit" 2>&1 |
        grep -v 'Command /usr/bin/picam-stream is not executable' || true)
    [ -z "$remarks" ] || printf '%s\n' "$remarks"
    check "systemd-analyze verify has no remark on the unit" test -z "$remarks"
else
    echo "deb: this systemd has no 'systemd-analyze security --offline'; sandbox score skipped"
fi

finish() {
    ls -l "$OUT"/*.deb
    echo "deb: $PASS passed, $FAIL failed"
    [ "$FAIL" = 0 ]
}
if [ "${PICAM_DEB_INSTALL_TEST:-1}" != 1 ] || [[ " ${TARGETS[*]} " != *" aarch64-unknown-linux-gnu "* ]]; then
    echo "deb: the arm64 package was not installed into an arm64 root (PICAM_DEB_INSTALL_TEST=0 or PICAM_DEB_ARCHS without arm64)"
    finish
    exit
fi

# Install into a Debian arm64 root: the rig's aarch64 userland (Debian's
# glibc, busybox, ...) with an empty dpkg database. Maintainer scripts run
# on the host against that root (dpkg's --force-script-chrootless, which
# sets DPKG_ROOT), so the user is made by systemd-sysusers --root.
bash "$REPO/tests/vm/rig.sh" prepare --arch aarch64 >/dev/null 2>&1 || die "rig.sh prepare --arch aarch64 failed"
ROOT=$(mktemp -d "${TMPDIR:-/tmp}/picam-debroot.XXXXXX")
SERVER=''
cleanup() {
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
    rm -rf "$ROOT"
}
trap cleanup EXIT
cp -a "$CACHE/vm/aarch64/root/." "$ROOT/"
mkdir -p "$ROOT"/var/lib/dpkg/{info,updates} "$ROOT/etc/systemd/system"
: > "$ROOT/var/lib/dpkg/status"
: > "$ROOT/var/lib/dpkg/available"
dpkg --root="$ROOT" --add-architecture arm64
deb=$OUT/picam-stream_${version}-1_arm64.deb
if dpkg --root="$ROOT" --force-architecture --force-depends --force-script-chrootless \
    -i "$deb" > "$OUT/install.log" 2>&1; then
    ok "dpkg -i into the arm64 root"
else
    cat "$OUT/install.log"; nok "dpkg -i into the arm64 root"
fi
check "dpkg lists picam-stream as installed" \
    sh -c "dpkg --root='$ROOT' -s picam-stream 2>/dev/null | grep -q '^Status: install ok installed'"
check "user picam exists" grep -q '^picam:' "$ROOT/etc/passwd"
check "picam is a member of video" grep -qE '^video:[^:]*:[^:]*:(.*,)?picam(,|$)' "$ROOT/etc/group"
check "picam has no login shell" sh -c "grep '^picam:' '$ROOT/etc/passwd' | grep -qE ':(/usr/sbin/nologin|/sbin/nologin|/bin/false)$'"
check "the unit is enabled (multi-user.target.wants)" \
    test -L "$ROOT/etc/systemd/system/multi-user.target.wants/picam-stream.service"

# The installed binary, under qemu-user against that root's glibc; its snapshot is
# decoded with Pillow (as tests/vm/card-boot.sh does).
if ! python3 -c 'import PIL' 2>/dev/null; then
    echo "deb: installing Pillow (JPEG decoding)"
    python3 -m pip install -q pillow || die "could not install Pillow"
fi
command -v ffprobe > /dev/null || bash "$REPO/cross/install-deps.sh" pkgs ffmpeg
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
qemu=$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)
if [ -n "$qemu" ]; then
    "$qemu" -L "$ROOT" "$ROOT/usr/bin/picam-stream" --source test --size 320x240 --fps 5 \
        --listen "127.0.0.1:$port" --webrtc-port 0 > "$OUT/server.log" 2>&1 &
    SERVER=$!
    got=0
    for _ in $(seq 100); do
        if curl -fsS -m 5 -o "$OUT/snapshot.jpg" "http://127.0.0.1:$port/snapshot.jpg" 2>/dev/null; then got=1; break; fi
        sleep 0.3
    done
    if [ "$got" = 1 ] && python3 -c '
import sys
from PIL import Image
im = Image.open(sys.argv[1]); im.load()
sys.exit(0 if im.size == (320, 240) else 1)' "$OUT/snapshot.jpg" 2>/dev/null; then
        ok "the installed binary serves a decodable 320x240 snapshot under qemu-aarch64"
    else
        cat "$OUT/server.log"; nok "the installed binary serves a decodable 320x240 snapshot under qemu-aarch64"
    fi
    # The arm64 package has WebRTC and, for the Pi 5, the software H.264 encoder
    # (.ci/cross.sh's PICAM_CROSS_WEBRTC_SHIP and PICAM_CROSS_H264_SHIP).
    players=$(curl -fsS -m 10 "http://127.0.0.1:$port/status" | python3 -c 'import json, sys; print(",".join(json.load(sys.stdin)["players"]))' || true)
    check "the installed binary offers WebRTC, MP4 and MJPEG (players: $players)" test "$players" = webrtc,mp4,mjpeg
    code=$(curl -sS -m 60 -o "$OUT/answer.sdp" -w '%{http_code}' -H 'Content-Type: application/sdp' \
        --data-binary @"$REPO/tests/fixtures/webrtc/chromium-156-whep-offer.sdp" \
        "http://127.0.0.1:$port/whep" || true)
    check "WHEP: Chromium's offer is answered 201 with H.264 in the SDP answer" \
        sh -c "[ '$code' = 201 ] && grep -q '^a=rtpmap:[0-9]* H264/90000' '$OUT/answer.sdp'"
    timeout 60 curl -sS -N -m 60 "http://127.0.0.1:$port/stream.mp4" 2>/dev/null | head -c 150000 > "$OUT/stream.mp4" || true
    codec=$(ffprobe -v error -select_streams v:0 -show_entries stream=codec_name,width,height -of csv=p=0 "$OUT/stream.mp4" 2>/dev/null || true)
    check "ffprobe reads the installed binary's /stream.mp4 as 320x240 H.264 ($codec)" test "$codec" = h264,320,240
    kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null || true; SERVER=''
else
    echo "deb: no qemu-aarch64 on this host; the installed binary was not run"
fi

if dpkg --root="$ROOT" --force-architecture --force-depends --force-script-chrootless \
    --purge picam-stream >> "$OUT/install.log" 2>&1; then
    ok "dpkg --purge"
else
    nok "dpkg --purge"
fi
check "purge removed the binary and the unit link" sh -c \
    "[ ! -e '$ROOT/usr/bin/picam-stream' ] && [ ! -L '$ROOT/etc/systemd/system/multi-user.target.wants/picam-stream.service' ]"

finish
