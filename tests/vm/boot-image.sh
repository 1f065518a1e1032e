#!/usr/bin/env bash
# Boot test of the picam image: the files the Buildroot package installs,
# booted as a whole system under qemu, must serve the camera from power-on.
#
#   tests/vm/boot-image.sh
#
# It assembles an aarch64 root file system (an initramfs) from:
#   - the aarch64 release binary of the cross build (ci/cross.sh),
#   - buildroot-package/package/picam-stream/{S30picam-config,S99picam-stream,
#     picam-config}, installed where picam-stream.mk installs them, and the
#     user that PICAM_STREAM_USERS in picam-stream.mk declares,
#   - the board overlay's /etc/mdev.conf (video group rules, driver loading),
#   - the start of a BusyBox init system (tests/vm/image/: inittab, rcS,
#     syslog to the console, mdev, the network), on the VM rig's Debian
#     userland (BusyBox, glibc, kmod) with Debian's arm64 kernel and vivid
#     as the camera;
# and an SD card image whose first partition is FAT and holds the package's
# default picam.txt. qemu (-M virt, TCG) attaches the card to an SDHCI
# controller, so the system finds it as /dev/mmcblk0p1, as on a Pi.
#
# Boot 1: picam.txt as shipped -> frames of the default size (640x480).
# Then picam.txt is edited on the card image with mtools (PICAM_SIZE and
# PICAM_QUALITY; 320x180 is a size vivid offers), and boot 2 must stream
# frames of the new size.
# Each boot prints the time from the VM's launch to the first frame.
#
# Environment: PICAM_CI_CACHE (default /var/cache/picam-stream-ci),
# PICAM_BOOT_TIMEOUT (seconds per boot, default 150).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/vm/guest-root.sh
. "$HERE/guest-root.sh"
REPO=$(cd "$HERE/../.." && pwd)
PKG=$REPO/buildroot-package/package/picam-stream
OVERLAY=$REPO/buildroot-package/board/picam/rootfs-overlay
FIXTURES=$HERE/image
CACHE=${PICAM_CI_CACHE:-/var/cache/picam-stream-ci}
TARGET=aarch64-unknown-linux-gnu
BIN=$CACHE/dist/$TARGET/picam-stream
BOOT_TIMEOUT=${PICAM_BOOT_TIMEOUT:-150}
# The guest's modules: network, the SD card's controller, FAT, the camera.
MODULES=(virtio_pci virtio_net sdhci-pci vfat nls_ascii nls_cp437 nls_iso8859-1 vivid)

say() { printf 'boot-test: %s\n' "$*"; }
die() { printf 'boot-test: FAIL: %s\n' "$*" >&2; exit 1; }

export PATH="$PATH:/usr/sbin:/sbin"
need mkfs.vfat dosfstools
need mcopy mtools
need sfdisk fdisk
need cpio cpio
need depmod kmod
if ! python3 -c 'import PIL' 2>/dev/null; then
    say "installing Pillow (JPEG decoding)"
    python3 -m pip install -q pillow || die "could not install Pillow"
fi

# ---------------------------------------------------------------- inputs
T0=$SECONDS
bash "$HERE/rig.sh" prepare --arch aarch64
info=$(bash "$HERE/rig.sh" info --arch aarch64)
KVER=$(sed -n 's/^kernel=//p' <<<"$info")
KIMAGE=$(sed -n 's/^image=//p' <<<"$info")
AC=$(sed -n 's/^cache=//p' <<<"$info")
if [ -z "$KVER" ] || [ ! -s "$KIMAGE" ] || [ ! -d "$AC/kimage" ]; then die "rig.sh info gave no aarch64 kernel"; fi

if [ "${PICAM_BOOT_REBUILD:-1}" = 1 ]; then
    # Warm, this is a quick no-op check; cold, it builds the binary.
    PICAM_CROSS_SKIP_TESTS=1 bash "$REPO/ci/cross.sh" "$TARGET" > "$CACHE/logs/boot-image-cross.log" 2>&1 ||
        { tail -n 30 "$CACHE/logs/boot-image-cross.log"; die "the cross build failed"; }
fi
[ -x "$BIN" ] || die "no $BIN (run ci/cross.sh $TARGET)"
say "binary: $BIN ($(stat -c %s "$BIN") bytes, built $(date -u -r "$BIN" +%FT%TZ))"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/picam-boot.XXXXXX")
QPID=''
cleanup() {
    if [ -n "$QPID" ] && kill -0 "$QPID" 2>/dev/null; then
        kill "$QPID" 2>/dev/null || true
        wait "$QPID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'cleanup; trap - EXIT; exit 130' INT TERM

# ---------------------------------------------------------------- root file system
# The user and group that picam-stream.mk declares:
#   PICAM_STREAM_USERS = USER UID GROUP GID PASSWORD HOME SHELL GROUPS COMMENT
users_line=$(sed -n 's/^PICAM_STREAM_USERS = //p' "$PKG/picam-stream.mk")
read -r u_name u_uid u_group u_gid _ _ _ u_groups _ <<<"$users_line"
if [ -z "$u_name" ] || [ -z "$u_groups" ]; then die "no PICAM_STREAM_USERS in picam-stream.mk"; fi
[ "$u_uid" = -1 ] && u_uid=1000
[ "$u_gid" = -1 ] && u_gid=1000

ROOT=$WORK/root
mkdir -p "$ROOT"/{etc/init.d,usr/bin,usr/sbin,var}
ln -s ../run "$ROOT/var/run"
ln -s ../bin/busybox "$ROOT/usr/sbin/init"
install -m 0644 "$FIXTURES/inittab" "$ROOT/etc/inittab"
install -m 0644 "$FIXTURES/hostname" "$ROOT/etc/hostname"
install -m 0755 "$FIXTURES/rcS" "$ROOT/etc/init.d/rcS"
for f in S01syslogd S10mdev S40network S99zz-report; do install -m 0755 "$FIXTURES/$f" "$ROOT/etc/init.d/$f"; done
# As picam-stream.mk installs them (the binary: cargo install to /usr/bin).
install -m 0755 "$BIN" "$ROOT/usr/bin/picam-stream"
install -m 0755 "$PKG/S99picam-stream" "$ROOT/etc/init.d/S99picam-stream"
install -m 0755 "$PKG/S30picam-config" "$ROOT/etc/init.d/S30picam-config"
install -m 0755 "$PKG/picam-config" "$ROOT/usr/sbin/picam-config"
install -m 0644 "$OVERLAY/etc/mdev.conf" "$ROOT/etc/mdev.conf"
# Buildroot's skeleton has video as group 28, and makeusers adds the user.
printf 'root:x:0:0:root:/root:/bin/sh\n%s:x:%s:%s::/nonexistent:/bin/false\n' \
    "$u_name" "$u_uid" "$u_gid" > "$ROOT/etc/passwd"
printf 'root:x:0:\ntty:x:5:\ndisk:x:6:\ndialout:x:18:\nvideo:x:28:%s\n%s:x:%s:\n' \
    "$u_name" "$u_group" "$u_gid" > "$ROOT/etc/group"
[ "$u_groups" = video ] || die "picam-stream.mk puts the user in '$u_groups'; this test expects video"

# Modules: the closure of MODULES from the rig's unpacked kernel.
copy_module_closure "$AC/kimage" "$KVER" "$ROOT" "${MODULES[@]}" || die "kernel modules missing"

(cd "$ROOT" && find . -mindepth 1 | sort | cpio --quiet -o -H newc -R 0:0) > "$WORK/layer.cpio"
# The rig's Debian userland first; this layer's files replace its files.
cat "$AC/base.cpio" "$WORK/layer.cpio" > "$WORK/initrd.cpio"
say "root file system: $(( $(stat -c %s "$WORK/initrd.cpio") / 1048576 )) MB initramfs, kernel $KVER"

# ---------------------------------------------------------------- SD card
# Partition 1: FAT32 (LBA) from 1 MiB, 32 MiB, like a Pi card's boot partition.
SD=$WORK/sdcard.img
BOOT_OFFSET=$((1024 * 1024))
truncate -s 64M "$SD"   # qemu wants a power of 2
printf 'label: dos\nstart=2048, size=65536, type=c, bootable\n' | sfdisk --quiet "$SD"
mkfs.vfat -n BOOT -C "$WORK/boot.vfat" 32768 >/dev/null
export MTOOLS_SKIP_CHECK=1
mcopy -i "$WORK/boot.vfat" "$PKG/picam.txt" ::picam.txt
dd if="$WORK/boot.vfat" of="$SD" bs=1M seek=1 conv=notrunc status=none
MT="$SD@@$BOOT_OFFSET"
say "SD card: $(sfdisk -d "$SD" | grep -c '^/') partition; boot partition holds: $(mdir -b -i "$MT" :: | tr '\n' ' ')"

# ---------------------------------------------------------------- boot
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

FIRST_FRAME=()
boot() {
    local name=$1 size=$2
    local port console=$WORK/console-$name.log t0 rc=0
    port=$(free_port)
    # shellcheck disable=SC2054 # commas belong to qemu's option syntax
    local -a q=(qemu-system-aarch64 -nodefaults -no-user-config -display none -no-reboot
        -M virt -cpu cortex-a57 -accel tcg -m 512 -smp 1
        -kernel "$KIMAGE" -initrd "$WORK/initrd.cpio"
        -append "console=ttyAMA0 rdinit=/sbin/init panic=-1 mitigations=off"
        -serial "file:$console"
        -device sdhci-pci -drive "if=none,id=sd,format=raw,file=$SD" -device sd-card,drive=sd
        -netdev "user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:$port-:8000"
        -device virtio-net-pci,netdev=net0,romfile=)
    say "boot '$name': launching the VM (guest port 8000 at 127.0.0.1:$port)"
    t0=$EPOCHREALTIME
    "${q[@]}" > "$WORK/qemu-$name.log" 2>&1 &
    QPID=$!
    timeout "$((BOOT_TIMEOUT + 10))" python3 "$HERE/stream_client.py" --port "$port" --started "$t0" \
        --frames 5 --size "$size" --deadline "$BOOT_TIMEOUT" --source-contains /dev/video --vm-pid "$QPID" \
        > "$WORK/client-$name.log" 2>&1 || rc=$?
    cat "$WORK/client-$name.log"
    # The last boot script reports on the console; it may still be running.
    local n=0
    while [ "$rc" = 0 ] && ! grep -aq '^boot-report: end' "$console" && [ "$n" -lt 100 ]; do
        sleep 0.2
        n=$((n + 1))
    done
    kill "$QPID" 2>/dev/null || true
    wait "$QPID" 2>/dev/null || true
    QPID=''
    # What the system said about picam.txt and picam-stream (syslog is on the console).
    grep -aE 'picam-config|picam-stream|Starting|Applying' "$console" | sed 's/^/  console| /' | head -n 40 || true
    if [ "${PICAM_BOOT_SHOW_CONSOLE:-0}" = 1 ]; then sed 's/^/  console| /' "$console"; fi
    # Not root: the user picam-stream.mk declares, reaching the camera
    # through the video group that the board's mdev.conf gives the node.
    grep -a '^boot-report:' "$console" | sed 's/^/  /' || true
    if [ "$rc" = 0 ]; then
        if ! grep -aqE "^boot-report: process: +[0-9]+ +$u_name +$u_group +/usr/bin/picam-stream" "$console"; then
            say "picam-stream does not run as $u_name:$u_group"; rc=1
        fi
        if ! grep -aqE "^boot-report: node: crw-rw---- +1 +0 +28 " "$console"; then
            say "/dev/video0 is not root:video (0:28) with mode 660"; rc=1
        fi
    fi
    if [ "$rc" != 0 ]; then
        printf -- '---- guest console (%s) ----\n' "$name" >&2
        cat "$console" >&2
        printf -- '---- qemu ----\n' >&2
        cat "$WORK/qemu-$name.log" >&2
        die "boot '$name' did not stream $size frames"
    fi
    FIRST_FRAME+=("$name: $(sed -n 's/^FIRST_FRAME_SECONDS=//p' "$WORK/client-$name.log") s")
}

boot shipped 640x480

# Edit picam.txt on the card as a user would on a PC: here with mtools.
mtype -i "$MT" ::picam.txt | tr -d '\r' |
    sed -e 's/^#PICAM_SIZE=.*/PICAM_SIZE=320x180/' -e 's/^#PICAM_QUALITY=.*/PICAM_QUALITY=50/' \
    > "$WORK/picam.txt"
grep -qx 'PICAM_SIZE=320x180' "$WORK/picam.txt" || die "could not edit PICAM_SIZE in picam.txt"
# Windows line ends, as Notepad would write them.
sed 's/$/\r/' "$WORK/picam.txt" > "$WORK/picam-crlf.txt"
mcopy -o -i "$MT" "$WORK/picam-crlf.txt" ::picam.txt
say "picam.txt on the card now sets: $(mtype -i "$MT" ::picam.txt | tr -d '\r' | grep -E '^PICAM_' | tr '\n' ' ')"

boot edited 320x180

say "time from VM launch to first frame: ${FIRST_FRAME[*]}"
say "whole test: $((SECONDS - T0)) s"
echo "boot-test: 2 passed, 0 failed"
