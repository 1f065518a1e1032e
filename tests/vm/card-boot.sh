#!/usr/bin/env bash
# Boot test of the SD card images (tests/vm/card-build.sh): each card image
# file is the SD card of one of qemu's Raspberry Pi machines, and from power-on
# its picam-stream must serve the camera.
#
#   tests/vm/card-boot.sh
#
#   card-arm64.img  qemu-system-aarch64 -M raspi3b (a Pi 3 B)
#   card-armv6.img  qemu-system-arm -M raspi0 (a Pi Zero: ARMv6)
#
# qemu runs no GPU firmware: bootcode.bin, start.elf and config.txt are on the
# card but not executed. So the kernel, its device tree, its initramfs and the
# command line (cmdline.txt) are read from the card's FAT partition with mtools
# and handed to qemu, as the firmware would hand them to the kernel.
#
# Per machine:
#   boot 1: picam.txt as shipped -> frames of its default size (640x480), from
#           vivid when the kernel has it (else the test pattern: the output says
#           which); picam-stream runs as the picam user with video among its
#           groups; the camera node is root:video 660;
#   then picam.txt is edited ON THE CARD IMAGE with mtools (PICAM_SIZE=320x180,
#   PICAM_QUALITY=50, Windows line ends), and
#   boot 2: frames of 320x180.
# Each boot prints the time from power-on (qemu's launch) to the first frame.
# The cached cards stay as built: each machine boots a copy.
#
# Environment: PICAM_CI_CACHE (see .ci/lib.sh),
# PICAM_BOOT_TIMEOUT (seconds per boot, default 150), PICAM_BOOT_SHOW_CONSOLE=1
# (print each guest console), PICAM_CARD_MACHINES (default "raspi3b raspi0").
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CI_NAME=card
# shellcheck source=.ci/lib.sh
. "$HERE/../../.ci/lib.sh"
# shellcheck source=tests/vm/guest-root.sh
. "$HERE/guest-root.sh"
REPO=$PICAM_REPO
PKG=$REPO/buildroot-package/package/picam-stream
BOOT_TIMEOUT=${PICAM_BOOT_TIMEOUT:-150}
MACHINES=${PICAM_CARD_MACHINES:-raspi3b raspi0}
export MTOOLS_SKIP_CHECK=1 PATH="$PATH:/usr/sbin:/sbin"

need qemu-system-aarch64 qemu-system-arm
need qemu-system-arm qemu-system-arm
need mcopy mtools
if ! python3 -c 'import PIL' 2>/dev/null; then
    say "installing Pillow (JPEG decoding)"
    python3 -m pip install -q pillow || die "could not install Pillow"
fi

T0=$SECONDS
cards=$(bash "$HERE/card-build.sh") || die "the cards could not be built"
CARD_ARM64=$(sed -n 's/^card-arm64=//p' <<<"$cards")
CARD_ARMV6=$(sed -n 's/^card-armv6=//p' <<<"$cards")
say "cards ready in $((SECONDS - T0)) s: $(basename "$CARD_ARM64") $(( $(stat -c %s "$CARD_ARM64") / 1048576 )) MiB," \
    "$(basename "$CARD_ARMV6") $(( $(stat -c %s "$CARD_ARMV6") / 1048576 )) MiB"

# The size picam.txt leaves as it is: the "#PICAM_SIZE=" line shows the default.
DEFAULT_SIZE=$(sed -n 's/^#PICAM_SIZE=//p' "$PKG/picam.txt" | tr -d '\r')
[[ $DEFAULT_SIZE =~ ^[0-9]+x[0-9]+$ ]] || die "no default PICAM_SIZE in picam.txt"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/picam-card-boot.XXXXXX")
QPID=''
cleanup() {
    stop_guest "$QPID"
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'cleanup; trap - EXIT; exit 130' INT TERM

PASS=0 FAIL=0
ok() { PASS=$((PASS + 1)); say "ok: $*"; }
nok() { FAIL=$((FAIL + 1)); say "NOT OK: $*"; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The boot partition starts at the first partition's first sector.
boot_offset() {
    local start
    start=$(sfdisk -d "$1" | sed -n 's/^[^ ]*1 : start= *\([0-9]*\),.*/\1/p')
    [ -n "$start" ] || return 1
    echo $((start * 512))
}

# boot MACHINE NAME SIZE: boots the machine's card copy; checks the stream
# (frames of SIZE), the server's user and groups and the camera node.
FIRST_FRAME=()
boot() {
    local machine=$1 name=$2 size=$3
    local card=$WORK/$machine.img dir=$WORK/$machine-$name port t0 rc=0 qemu kernel dtb initrd console
    local -a extra=()
    case $machine in
        raspi3b)
            qemu=qemu-system-aarch64 kernel=kernel8.img initrd=initrd8.img dtb=bcm2837-rpi-3-b.dtb
            # The console of this card is ttyS1, the mini UART: qemu's second serial port.
            console=2 ;;
        raspi0)
            qemu=qemu-system-arm kernel=kernel.img initrd=initrd.img dtb=bcm2835-rpi-zero.dtb console=1
            # qemu does not emulate the Pi's power domain block, whose driver
            # stops the boot there; a real Pi needs no such line, so it is not
            # in cmdline.txt.
            extra=(initcall_blacklist=bcm2835_power_driver_init) ;;
        *) die "unknown machine $machine" ;;
    esac
    mkdir -p "$dir"
    local mt off
    off=$(boot_offset "$card") || die "$card has no first partition"
    mt="$card@@$off"
    # What the firmware would load, taken from the card.
    mcopy -n -i "$mt" "::$kernel" "::$initrd" "::$dtb" ::cmdline.txt "$dir/" ||
        die "$machine: $kernel, $initrd, $dtb or cmdline.txt missing on the card"
    local cmdline
    cmdline="$(tr -d '\r\n' < "$dir/cmdline.txt") ${extra[*]}"
    port=$(free_port)
    # shellcheck disable=SC2054 # commas belong to qemu's option syntax
    local -a q=("$qemu" -nodefaults -no-user-config -display none -no-reboot -M "$machine"
        -kernel "$dir/$kernel" -dtb "$dir/$dtb" -initrd "$dir/$initrd" -append "$cmdline"
        -drive "if=sd,format=raw,file=$card"
        -device usb-net,netdev=n -netdev "user,id=n,hostfwd=tcp:127.0.0.1:$port-:8000"
        -serial "file:$dir/serial1.log" -serial "file:$dir/serial2.log")
    say "$machine '$name': power-on (guest port 8000 at 127.0.0.1:$port)"
    t0=$EPOCHREALTIME
    "${q[@]}" > "$dir/qemu.log" 2>&1 &
    QPID=$!
    timeout "$((BOOT_TIMEOUT + 10))" python3 "$HERE/stream_client.py" --port "$port" --started "$t0" \
        --frames 5 --size "$size" --deadline "$BOOT_TIMEOUT" --vm-pid "$QPID" \
        > "$dir/client.log" 2>&1 || rc=$?
    console=$dir/serial$console.log
    sed -e '/^FIRST_FRAME_SECONDS=/d' -e 's/^boot-test: /  /' "$dir/client.log"
    # The last boot script reports on the console; it may still be running.
    local n=0
    while [ "$rc" = 0 ] && ! grep -aq '^boot-report: end' "$console" && [ "$n" -lt 100 ]; do
        sleep 0.2
        n=$((n + 1))
    done
    stop_guest "$QPID"
    QPID=''
    grep -aE 'picam-config|picam-stream|^network:' "$console" | grep -av '^boot-report:' |
        sed 's/^/  console| /' | head -n 30 || true
    grep -a '^boot-report:' "$console" | sed 's/^/  /' || true
    if [ "${PICAM_BOOT_SHOW_CONSOLE:-0}" = 1 ]; then sed 's/^/  console| /' "$console"; fi
    local what="$machine '$name'"
    if [ "$rc" = 0 ]; then
        local secs source
        secs=$(sed -n 's/^FIRST_FRAME_SECONDS=//p' "$dir/client.log")
        source=$(sed -n "s/.*source='\([^']*\)'.*/\1/p" "$dir/client.log")
        case $source in
            *"/dev/video"*) source="vivid ($source)" ;;
            *) source="the test pattern, not vivid ($source)" ;;
        esac
        ok "$what streams $size frames that decode, from $source"
        say "$what: power-on to first frame: $secs s"
        FIRST_FRAME+=("$machine $name: $secs s")
    else
        nok "$what streams $size frames that decode"
    fi
    # Not root: the user picam-stream.mk declares, with the video group that
    # the board's mdev.conf gives the camera node.
    # The ids are the card's own: "id picam" on the guest says them.
    local uid gid_video
    uid=$(grep -a '^boot-report: user: ' "$console" | grep -oE "uid=[0-9]+\($U_NAME\)" | grep -oE '[0-9]+' || true)
    gid_video=$(grep -a '^boot-report: user: ' "$console" | grep -oE '[0-9]+\(video\)' | grep -oE '[0-9]+' || true)
    uid=${uid:-none} gid_video=${gid_video:-none}
    if grep -aqE "^boot-report: status: Uid:[[:space:]]+${uid}[[:space:]]" "$console" &&
        grep -aqE "^boot-report: status: Groups:.*(^|[[:space:]])$gid_video([[:space:]]|$)" "$console"; then
        ok "$what: picam-stream runs as $U_NAME (uid $uid) with video (gid $gid_video) among its groups"
    else
        nok "$what: picam-stream runs as $U_NAME (uid $uid) with video (gid $gid_video) among its groups"
    fi
    if grep -aqE "^boot-report: node: crw-rw---- +1 +0 +$gid_video " "$console"; then
        ok "$what: /dev/video0 is root:video, mode 660"
    else
        nok "$what: /dev/video0 is root:video, mode 660"
    fi
    if [ "$rc" != 0 ]; then
        printf -- '---- guest console (%s) ----\n' "$what" >&2
        tr -d '\000' < "$console" | tail -n 80 >&2
        printf -- '---- qemu ----\n' >&2
        tail -n 20 "$dir/qemu.log" >&2
    fi
}

# The user that picam-stream.mk declares (its name; its ids come from the card).
U_NAME=$(sed -n 's/^PICAM_STREAM_USERS = //p' "$PKG/picam-stream.mk" | awk '{ print $1 }')
[ -n "$U_NAME" ] || die "no PICAM_STREAM_USERS in picam-stream.mk"

for machine in $MACHINES; do
    case $machine in
        raspi3b) src=$CARD_ARM64 ;;
        raspi0) src=$CARD_ARMV6 ;;
        *) die "unknown machine $machine (raspi3b or raspi0)" ;;
    esac
    card=$WORK/$machine.img
    cp --sparse=always "$src" "$card"
    boot "$machine" shipped "$DEFAULT_SIZE"

    # Edit picam.txt on the card as a user would on a PC: here with mtools.
    mt="$card@@$(boot_offset "$card")"
    mtype -i "$mt" ::picam.txt | tr -d '\r' |
        sed -e 's/^#PICAM_SIZE=.*/PICAM_SIZE=320x180/' -e 's/^#PICAM_QUALITY=.*/PICAM_QUALITY=50/' \
        > "$WORK/picam.txt"
    grep -qx 'PICAM_SIZE=320x180' "$WORK/picam.txt" || die "could not edit PICAM_SIZE in picam.txt"
    # Windows line ends, as Notepad would write them.
    sed 's/$/\r/' "$WORK/picam.txt" > "$WORK/picam-crlf.txt"
    mcopy -o -i "$mt" "$WORK/picam-crlf.txt" ::picam.txt
    say "$machine: picam.txt on the card now sets: $(mtype -i "$mt" ::picam.txt | tr -d '\r' | grep -E '^PICAM_' | tr '\n' ' ')"
    boot "$machine" edited 320x180
    rm -f "$card"
done

summary=$(printf '%s; ' "${FIRST_FRAME[@]}")
say "power-on to first frame: ${summary%; }"
say "whole step: $((SECONDS - T0)) s"
say "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
