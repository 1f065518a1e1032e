#!/usr/bin/env bash
# Builds the two SD card images of the card boot test (tests/vm/card-boot.sh)
# from Debian packages only, as real card image files:
#
#   tests/vm/card-build.sh        prints the cards' paths (card-arm64=, card-armv6=)
#
#   card-arm64.img  Zero 2 W, 3, 4, 400: Debian's arm64 kernel as kernel8.img,
#                   its Pi device trees, arm64 busybox-static and the static
#                   aarch64-unknown-linux-musl picam-stream.
#   card-armv6.img  Zero, Zero W, 1, 2: Debian's ARMv6 kernel (linux-image-rpi,
#                   armel) as kernel.img and its ARMv7 kernel (linux-image-armmp,
#                   armhf) as kernel7.img, their device trees, armel (ARMv5)
#                   busybox-static, which runs on every one of these CPUs, and
#                   the static arm-unknown-linux-musleabihf (ARMv6) picam-stream.
#
# Each card: an MBR with a FAT boot partition (the Pi firmware from
# raspi-firmware, config.txt, cmdline.txt, the kernels, their initramfs, the
# device trees and the package's default picam.txt) and an ext4 root (BusyBox
# init with the fixtures of tests/vm/image/, the files that picam-stream.mk
# installs, the board overlay's mdev.conf, the picam user of
# PICAM_STREAM_USERS and the kernel modules the system needs).
# Debian's kernels build ext4 and the SD controllers as modules, so a tiny
# initramfs (busybox and those modules) mounts the root and switches to it.
#
# Made without loop devices, mounts or binfmt: mkfs.ext4 -d, mkfs.vfat -C and
# mcopy, sfdisk on the image file, dd conv=notrunc of each partition.
# Everything lives under $PICAM_CI_CACHE/card/:
# the package versions chosen once are pinned in packages.env (a warm run does
# not touch the network), and a card is rebuilt only when an input changed.
#
# Environment: PICAM_CI_CACHE; PICAM_CARD_SUITES (Debian suites to take the
# packages from, first choice first; default "trixie bookworm-backports
# bookworm"); PICAM_CARD_REFRESH=1 picks the packages again.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=.ci/lib.sh
. "$HERE/../../.ci/lib.sh"
# shellcheck source=tests/vm/guest-root.sh
. "$HERE/guest-root.sh"
REPO=$PICAM_REPO
PKG=$REPO/buildroot-package/package/picam-stream
OVERLAY=$REPO/buildroot-package/board/picam/rootfs-overlay
FIXTURES=$HERE/image
CI_CACHE=$PICAM_CI_CACHE
CACHE=$CI_CACHE/card
SUITES=${PICAM_CARD_SUITES:-trixie bookworm-backports bookworm}
export LC_ALL=C PATH="$PATH:/usr/sbin:/sbin"
export MTOOLS_SKIP_CHECK=1

# Modules of the initramfs (SD controllers: sdhost and the Arasan SDHCI; the
# root's file system) and of the root (those, the boot partition's FAT, the USB
# host and USB Ethernet adapters, vivid as the camera).
INITRD_MODULES=(sdhci-iproc bcm2835 ext4)
ROOT_MODULES=("${INITRD_MODULES[@]}" vfat nls_cp437 nls_iso8859-1 nls_ascii nls_utf8
    phy-generic dwc2 usbnet cdc_ether vivid)

need mkfs.vfat dosfstools
need mcopy mtools
need sfdisk fdisk
need mkfs.ext4 e2fsprogs
need cpio cpio
need depmod kmod
need xz xz-utils
# Only to list the applets of the cards' BusyBox (run directly, no binfmt).
need qemu-arm-static qemu-user-static
need qemu-aarch64-static qemu-user-static

mkdir -p "$CACHE/debs"

# ---------------------------------------------------------------- packages
# A private apt set-up per architecture: the host's Debian mirror, the suites
# above with non-free-firmware (raspi-firmware lives there), its own lists and
# an empty dpkg status, so nothing on the host changes.
mirror() {
    local m
    m=$(grep -rhoE 'https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
        head -n1 | tr -d ' ')
    [ -n "$m" ] || die "no Debian mirror in /etc/apt/sources.list*"
    printf '%s' "$m"
}
apt_dir() { printf '%s/apt/%s' "$CACHE" "$1"; }
apt_for() {
    local arch=$1 dir suite m
    dir=$(apt_dir "$arch")
    if [ ! -e "$dir/updated" ]; then
        private_apt "$dir" "$arch"
        m=$(mirror)
        : > "$dir/etc/sources.list"
        for suite in $SUITES; do
            printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main non-free-firmware\n' \
                "$m" "$suite" >> "$dir/etc/sources.list"
        done
        say "apt-get update ($arch: $SUITES)"
        APT_CONFIG=$dir/apt.conf apt-get -q update > "$dir/update.log" 2>&1 ||
            { tail -n 20 "$dir/update.log" >&2; die "apt-get update failed for $arch"; }
        touch "$dir/updated"
    fi
}
papt() { local arch=$1; shift; APT_CONFIG=$(apt_dir "$arch")/apt.conf "$@"; }

# Downloads NAME=VERSION of ARCH into debs/; prints the file name, or fails.
download() {
    local arch=$1 spec=$2 uri file
    uri=$(papt "$arch" apt-get -qq --print-uris download "$spec" 2>/dev/null | head -n1) || return 1
    read -r _ file _ <<<"$uri"
    [ -n "$file" ] || return 1
    if [ ! -s "$CACHE/debs/$file" ]; then
        (cd "$CACHE/debs" && papt "$arch" apt-get -qq download "$spec" >> "$CACHE/download.log" 2>&1) || return 1
    fi
    printf '%s' "$file"
}

# Picks the newest kernel of META (linux-image-arm64, ...) whose .deb the
# mirror really has (a suite's newest build has been missing for some
# architectures); prints its .deb's file name.
pick_kernel() {
    local arch=$1 meta=$2 ver dep file
    while read -r _ _ ver _; do
        dep=$(papt "$arch" apt-cache show "$meta=$ver" | sed -n 's/^Depends: //p' | head -n1 |
            grep -oE 'linux-image-[^ ,]+' | head -n1)
        [ -n "$dep" ] || continue
        if file=$(download "$arch" "$dep=$ver"); then
            printf '%s' "$file"
            return 0
        fi
        say "no $dep=$ver ($arch) on the mirror; trying an older one"
    done < <(papt "$arch" apt-cache madison "$meta")
    die "no downloadable $meta for $arch"
}

pick_plain() {
    local arch=$1 name=$2 ver
    ver=$(papt "$arch" apt-cache policy "$name" | sed -n 's/^ *Candidate: //p')
    if [ -z "$ver" ] || [ "$ver" = '(none)' ]; then die "apt knows no $name for $arch"; fi
    download "$arch" "$name=$ver" || die "could not download $name=$ver ($arch)"
}

ENV=$CACHE/packages.env
if [ "${PICAM_CARD_REFRESH:-0}" = 1 ] || [ ! -s "$ENV" ]; then
    rm -f "$CACHE"/apt/*/updated
    for a in arm64 armel armhf; do apt_for "$a"; done
    {
        printf 'DEB_KERNEL_ARM64=%s\n' "$(pick_kernel arm64 linux-image-arm64)"
        printf 'DEB_KERNEL_RPI=%s\n' "$(pick_kernel armel linux-image-rpi)"
        printf 'DEB_KERNEL_ARMMP=%s\n' "$(pick_kernel armhf linux-image-armmp)"
        printf 'DEB_FIRMWARE=%s\n' "$(pick_plain arm64 raspi-firmware)"
        printf 'DEB_BUSYBOX_ARM64=%s\n' "$(pick_plain arm64 busybox-static)"
        printf 'DEB_BUSYBOX_ARMEL=%s\n' "$(pick_plain armel busybox-static)"
    } > "$ENV.new"
    mv "$ENV.new" "$ENV"
    say "pinned: $(tr '\n' ' ' < "$ENV")"
fi
# shellcheck source=/dev/null
. "$ENV"
for f in "$DEB_KERNEL_ARM64" "$DEB_KERNEL_RPI" "$DEB_KERNEL_ARMMP" "$DEB_FIRMWARE" "$DEB_BUSYBOX_ARM64" \
    "$DEB_BUSYBOX_ARMEL"; do
    [ -s "$CACHE/debs/$f" ] || die "$f is missing from $CACHE/debs (PICAM_CARD_REFRESH=1 picks again)"
done

# Unpacks a .deb once into unpacked/NAME; prints that directory.
unpacked() {
    local deb=$1 dir=$CACHE/unpacked/${1%.deb}
    if [ ! -e "$dir/.done" ]; then
        rm -rf "$dir"
        mkdir -p "$dir"
        dpkg-deb -x "$CACHE/debs/$deb" "$dir"
        touch "$dir/.done"
    fi
    printf '%s' "$dir"
}

# The kernel release of an unpacked linux-image package (its modules' directory).
kernel_release() {
    local d
    for d in "$1"/usr/lib/modules/* "$1"/lib/modules/*; do
        [ -d "$d" ] && { basename "$d"; return 0; }
    done
    return 1
}

# copy_module_closure wants KIMAGE/lib/modules (Debian 13 ships /usr/lib/modules)
# with the module lists that the package's postinst would make.
module_tree() {
    local k=$1 kver
    [ -d "$k/lib/modules" ] || ln -sfn usr/lib "$k/lib"
    kver=$(kernel_release "$k")
    [ -s "$k/lib/modules/$kver/modules.dep" ] || depmod -b "$k" "$kver"
    printf '%s' "$k"
}

# Modules as plain .ko: BusyBox's modprobe reads no .ko.xz.
copy_modules() {
    local kimage=$1 kver=$2 root=$3 md
    shift 3
    copy_module_closure "$kimage" "$kver" "$root" "$@" >/dev/null || die "kernel modules missing in $kver"
    md=$root/usr/lib/modules/$kver
    find "$md" -name '*.ko.xz' -exec xz -d {} +
    depmod -b "$root/usr" "$kver"
}

# ---------------------------------------------------------------- what goes in
BB_ARM64=$(unpacked "$DEB_BUSYBOX_ARM64")/usr/bin/busybox
BB_ARMEL=$(unpacked "$DEB_BUSYBOX_ARMEL")/usr/bin/busybox
FW=$(unpacked "$DEB_FIRMWARE")/usr/lib/raspi-firmware
K_ARM64=$(module_tree "$(unpacked "$DEB_KERNEL_ARM64")")
K_RPI=$(module_tree "$(unpacked "$DEB_KERNEL_RPI")")
K_ARMMP=$(module_tree "$(unpacked "$DEB_KERNEL_ARMMP")")
BIN_ARM64=$CI_CACHE/dist/aarch64-unknown-linux-musl/picam-stream
BIN_ARMV6=$CI_CACHE/dist/arm-unknown-linux-musleabihf/picam-stream
for f in "$BB_ARM64" "$BB_ARMEL" "$FW/bootcode.bin" "$BIN_ARM64" "$BIN_ARMV6"; do
    [ -s "$f" ] || die "missing $f"
done

# The user and group that picam-stream.mk declares:
#   PICAM_STREAM_USERS = USER UID GROUP GID PASSWORD HOME SHELL GROUPS COMMENT
users_line=$(sed -n 's/^PICAM_STREAM_USERS = //p' "$PKG/picam-stream.mk")
read -r U_NAME U_UID U_GROUP U_GID _ _ _ U_GROUPS _ <<<"$users_line"
if [ -z "$U_NAME" ] || [ -z "$U_GROUPS" ]; then die "no PICAM_STREAM_USERS in picam-stream.mk"; fi
[ "$U_UID" = -1 ] && U_UID=1000
[ "$U_GID" = -1 ] && U_GID=1000

# Inputs of the cards; a card is rebuilt when their digest changes.
fingerprint() {
    {
        cat "$ENV"
        sha256sum "${BASH_SOURCE[0]}" "$HERE/guest-root.sh" "$PICAM_REPO/.ci/lib.sh" "$FIXTURES"/* "$PKG"/{S30picam-config,S99picam-stream,picam-config,picam.txt,picam-stream.mk} \
            "$OVERLAY/etc/mdev.conf" "$1" | sed 's/ .*//'
    } | sha256sum | cut -c1-16
}

# ---------------------------------------------------------------- pieces
# make_root DIR BUSYBOX PICAM_STREAM KIMAGE...: a card's root file system, with
# the modules of each unpacked kernel package KIMAGE.
make_root() {
    local root=$1 busybox=$2 bin=$3
    shift 3
    mkdir -p "$root"/{usr/bin,usr/sbin,usr/lib,etc/init.d,dev,proc,sys,run,tmp,boot,root,var}
    ln -s usr/bin "$root/bin"
    ln -s usr/sbin "$root/sbin"
    ln -s usr/lib "$root/lib"
    ln -s ../run "$root/var/run"
    install -m 0755 "$busybox" "$root/usr/bin/busybox"
    # The applets' links, as "busybox --install -s" would make them at boot
    # if the root were writable (the card's root is mounted read-only).
    local emu=qemu-arm-static applet
    [ "$(od -An -tx1 -j18 -N1 "$busybox" | tr -d ' ')" = b7 ] && emu=qemu-aarch64-static
    "$emu" "$busybox" --list-full > "$WORK/applets" || die "cannot list the applets of $busybox"
    while read -r applet; do
        case $applet in
            usr/bin/busybox | bin/busybox | '') ;;
            bin/* | sbin/*) ln -sf ../bin/busybox "$root/usr/$applet" ;;
            usr/*) ln -sf ../bin/busybox "$root/$applet" ;;
        esac
    done < "$WORK/applets"
    # The nodes the kernel and init need before devtmpfs is mounted.
    mknod -m 600 "$root/dev/console" c 5 1
    mknod -m 666 "$root/dev/null" c 1 3
    chmod 1777 "$root/tmp"
    install -m 0644 "$FIXTURES/inittab" "$root/etc/inittab"
    install -m 0644 "$FIXTURES/hostname" "$root/etc/hostname"
    install -m 0755 "$FIXTURES/rcS" "$root/etc/init.d/rcS"
    for f in S01syslogd S10mdev S40network S99zz-report; do install -m 0755 "$FIXTURES/$f" "$root/etc/init.d/$f"; done
    # As picam-stream.mk installs them (the binary: cargo install to /usr/bin).
    install -m 0755 "$bin" "$root/usr/bin/picam-stream"
    install -m 0755 "$PKG/S99picam-stream" "$root/etc/init.d/S99picam-stream"
    install -m 0755 "$PKG/S30picam-config" "$root/etc/init.d/S30picam-config"
    install -m 0755 "$PKG/picam-config" "$root/usr/sbin/picam-config"
    install -m 0644 "$OVERLAY/etc/mdev.conf" "$root/etc/mdev.conf"
    # Buildroot's skeleton has video as group 28, and makeusers adds the user.
    printf 'root:x:0:0:root:/root:/bin/sh\n%s:x:%s:%s::/nonexistent:/bin/false\n' \
        "$U_NAME" "$U_UID" "$U_GID" > "$root/etc/passwd"
    printf 'root:x:0:\ntty:x:5:\ndisk:x:6:\ndialout:x:18:\n%s:x:28:%s\n%s:x:%s:\n' \
        "$U_GROUPS" "$U_NAME" "$U_GROUP" "$U_GID" > "$root/etc/group"
    printf 'root::1::::::\n%s:*:1::::::\n' "$U_NAME" > "$root/etc/shadow"
    chmod 600 "$root/etc/shadow"
    local k
    for k in "$@"; do
        copy_modules "$k" "$(kernel_release "$k")" "$root" "${ROOT_MODULES[@]}"
    done
    chown -R 0:0 "$root"
}

# The initramfs of one kernel: busybox, the modules that reach the root, /init.
make_initrd() {
    local out=$1 busybox=$2 kimage=$3 dir a
    dir=$(mktemp -d "$WORK/initrd.XXXXXX")
    mkdir -p "$dir"/{bin,dev,proc,sys,newroot}
    install -m 0755 "$busybox" "$dir/bin/busybox"
    for a in sh mount umount modprobe switch_root sleep mkdir cat echo; do ln -s busybox "$dir/bin/$a"; done
    ln -s bin "$dir/sbin"
    mknod -m 600 "$dir/dev/console" c 5 1
    copy_modules "$kimage" "$(kernel_release "$kimage")" "$dir" "${INITRD_MODULES[@]}"
    ln -s usr/lib "$dir/lib"
    cat > "$dir/init" <<'EOF'
#!/bin/sh
# initramfs of the picam test cards: Debian's kernels have the SD card's
# controllers and ext4 as modules. Loads them, mounts the card's second
# partition (read-only, as the kernel would) and starts its /sbin/init.
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
modprobe -a -q sdhci-iproc bcm2835 ext4
n=0
while [ ! -b /dev/mmcblk0p2 ] && [ "$n" -lt 300 ]; do
	sleep 0.1
	n=$((n + 1))
done
if mount -t ext4 -o ro /dev/mmcblk0p2 /newroot; then
	umount /proc /sys /dev
	exec switch_root /newroot /sbin/init
fi
echo "initramfs: cannot mount /dev/mmcblk0p2 (the card's root)"
exec sh
EOF
    chmod 0755 "$dir/init"
    chown -R 0:0 "$dir"
    (cd "$dir" && find . -mindepth 1 | sort | cpio --quiet -o -H newc -R 0:0) | gzip -9n > "$out"
}

# make_card IMAGE TOTAL_MIB BOOT_MIB BOOTDIR ROOTDIR: the card, MBR with
# p1 FAT32 (LBA) from 1 MiB and p2 ext4 to the end. qemu wants an SD card's
# size to be a power of two, so TOTAL_MIB is one.
make_card() {
    local img=$1 total=$2 bootm=$3 bootdir=$4 rootdir=$5 rootm
    rootm=$((total - 1 - bootm))
    rm -f "$img.tmp" "$WORK/boot.vfat" "$WORK/root.ext4"
    truncate -s "${total}M" "$img.tmp"
    printf 'label: dos\nstart=2048, size=%d, type=c, bootable\nstart=%d, type=83\n' \
        $((bootm * 2048)) $(((1 + bootm) * 2048)) | sfdisk --quiet "$img.tmp"
    mkfs.vfat -n BOOT -F 32 -C "$WORK/boot.vfat" $((bootm * 1024)) >/dev/null
    mcopy -s -i "$WORK/boot.vfat" "$bootdir"/* ::
    mkfs.ext4 -q -L rootfs -d "$rootdir" "$WORK/root.ext4" "${rootm}M" >/dev/null
    dd if="$WORK/boot.vfat" of="$img.tmp" bs=1M seek=1 conv=notrunc,sparse status=none
    dd if="$WORK/root.ext4" of="$img.tmp" bs=1M seek=$((1 + bootm)) conv=notrunc,sparse status=none
    mv "$img.tmp" "$img"
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/picam-card.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# ---------------------------------------------------------------- arm64 card
build_arm64() {
    local img=$CACHE/card-arm64.img fp boot=$WORK/arm64/boot root=$WORK/arm64/root kver
    fp=$(fingerprint "$BIN_ARM64")
    if [ -s "$img" ] && [ "$(cat "$img.fp" 2>/dev/null)" = "$fp" ]; then return 0; fi
    say "building card-arm64.img"
    kver=$(kernel_release "$K_ARM64")
    mkdir -p "$boot" "$root"
    cp "$FW"/bootcode.bin "$FW"/start*.elf "$FW"/fixup*.dat "$boot/"
    cp "$K_ARM64/boot/vmlinuz-$kver" "$boot/kernel8.img"
    cp "$K_ARM64"/usr/lib/linux-image-"$kver"/broadcom/bcm27*-rpi-*.dtb \
        "$K_ARM64"/usr/lib/linux-image-"$kver"/broadcom/bcm283*-rpi-*.dtb "$boot/"
    make_initrd "$boot/initrd8.img" "$BB_ARM64" "$K_ARM64"
    cat > "$boot/config.txt" <<'EOF'
# config.txt: read by the Raspberry Pi's firmware (start*.elf) at power-on.
# This card is for the 64-bit Pis: Zero 2 W, 3, 3+, 4 and 400.
arm_64bit=1
kernel=kernel8.img
# Debian's kernel needs its initramfs for the card's controller and ext4.
initramfs initrd8.img followkernel
# Debian's kernel uses the mainline device trees (bcm2837-rpi-3-b.dtb, ...);
# the firmware picks the one of the board it runs on by these names.
upstream_kernel=1
enable_uart=1
camera_auto_detect=1
EOF
    # The GPIO header's UART is the mini UART (ttyS1) where Bluetooth has the PL011.
    printf 'console=ttyAMA0,115200 console=ttyS1,115200 root=/dev/mmcblk0p2 rootfstype=ext4 rootwait\n' \
        > "$boot/cmdline.txt"
    install -m 0644 "$PKG/picam.txt" "$boot/picam.txt"
    make_root "$root" "$BB_ARM64" "$BIN_ARM64" "$K_ARM64"
    make_card "$img" 256 128 "$boot" "$root"
    printf '%s\n' "$fp" > "$img.fp"
}

# ---------------------------------------------------------------- 32-bit card
build_armv6() {
    local img=$CACHE/card-armv6.img fp boot=$WORK/armv6/boot root=$WORK/armv6/root k6 k7
    fp=$(fingerprint "$BIN_ARMV6")
    if [ -s "$img" ] && [ "$(cat "$img.fp" 2>/dev/null)" = "$fp" ]; then return 0; fi
    say "building card-armv6.img"
    k6=$(kernel_release "$K_RPI")
    k7=$(kernel_release "$K_ARMMP")
    mkdir -p "$boot" "$root"
    cp "$FW"/bootcode.bin "$FW"/start.elf "$FW"/start_*.elf "$FW"/fixup.dat "$FW"/fixup_*.dat "$boot/"
    cp "$K_RPI/boot/vmlinuz-$k6" "$boot/kernel.img"
    cp "$K_ARMMP/boot/vmlinuz-$k7" "$boot/kernel7.img"
    cp "$K_ARMMP"/usr/lib/linux-image-"$k7"/bcm2836-rpi-*.dtb "$boot/"
    cp "$K_RPI"/usr/lib/linux-image-"$k6"/bcm2835-rpi-*.dtb "$boot/"
    make_initrd "$boot/initrd.img" "$BB_ARMEL" "$K_RPI"
    make_initrd "$boot/initrd7.img" "$BB_ARMEL" "$K_ARMMP"
    cat > "$boot/config.txt" <<'EOF'
# config.txt: read by the Raspberry Pi's firmware (start*.elf) at power-on.
# This card is for the 32-bit Pis: Zero, Zero W, 1 (ARMv6: kernel.img) and
# 2 (ARMv7: kernel7.img). Debian's kernels need their initramfs for the
# card's controller and ext4. A later line wins, so the Pi 2's come last.
kernel=kernel.img
initramfs initrd.img followkernel
[pi2]
kernel=kernel7.img
initramfs initrd7.img followkernel
[all]
# Debian's kernels use the mainline device trees (bcm2835-rpi-zero.dtb, ...);
# the firmware picks the one of the board it runs on by these names.
upstream_kernel=1
enable_uart=1
camera_auto_detect=1
EOF
    # The GPIO header's UART is the PL011 (ttyAMA0) on these boards (the mini
    # UART, ttyS1, on a Zero W, whose PL011 serves Bluetooth).
    printf 'console=ttyS1,115200 console=ttyAMA0,115200 root=/dev/mmcblk0p2 rootfstype=ext4 rootwait\n' \
        > "$boot/cmdline.txt"
    install -m 0644 "$PKG/picam.txt" "$boot/picam.txt"
    make_root "$root" "$BB_ARMEL" "$BIN_ARMV6" "$K_RPI" "$K_ARMMP"
    make_card "$img" 128 64 "$boot" "$root"
    printf '%s\n' "$fp" > "$img.fp"
}

build_arm64
build_armv6
printf 'card-arm64=%s\ncard-armv6=%s\n' "$CACHE/card-arm64.img" "$CACHE/card-armv6.img"
