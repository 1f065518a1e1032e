#!/usr/bin/env bash
# Test VM with real Linux virtual camera drivers (vivid, vim2m, vicodec, vimc).
#
#   tests/vm/rig.sh prepare  [--arch x86_64|aarch64] [--refresh]
#   tests/vm/rig.sh run      [--arch ...] [--modules "vivid n_devs=1 vim2m"] [--extra-modules "..."]
#                            [--share DIR] [--forward HOSTPORT:GUESTPORT]... [--timeout SEC]
#                            [--packages "pkg ..."] [--env NAME=VALUE]... [--mem MB] [--smp N]
#                            [--append ARGS] [--qemu-arg ARG]... [--keep] [--quiet] [--dmesg]
#                            -- COMMAND [ARG...]
#   tests/vm/rig.sh selftest [--skip-aarch64]
#   tests/vm/rig.sh info     [--arch ...]
#
# See README.md beside this file. Everything downloaded or built goes to
# $PICAM_CI_CACHE/vm.
set -euo pipefail
shopt -s inherit_errexit

export PATH="$PATH:/usr/sbin:/sbin"
export LC_ALL=C

RIG_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# die: 125, which tells a failing rig from a failing guest command
CI_DIE_STATUS=125
# shellcheck source=.ci/lib.sh
. "$RIG_DIR/../../.ci/lib.sh"
CACHE=$PICAM_CI_CACHE/vm
GUEST_PACKAGES=(busybox-static kmod v4l-utils libc6 libgcc-s1 libstdc++6)
# Loaded by the guest's /init before anything else (virtio PCI, console ports, 9p, net).
BASE_MODULES=(virtio_pci virtio_console virtio_net 9pnet_virtio 9p)
# Test drivers that Debian does not build; compiled here from linux-source.
OOT_MODULES=(v4l2-mem2mem vim2m vicodec vimc)
DEFAULT_MODULES="vivid"
DEFAULT_TIMEOUT=120

now() { printf '%s' "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
# shellcheck source=tests/vm/guest-root.sh
. "$RIG_DIR/guest-root.sh"

# ---------------------------------------------------------------- architecture
ARCH=x86_64
set_arch() {
    ARCH=$1
    case "$ARCH" in
        x86_64 | amd64)
            ARCH=x86_64 DEBARCH=amd64 FLAVOUR=amd64 QEMU=qemu-system-x86_64
            QEMU_PKG=qemu-system-x86 CONSOLE=ttyS0 ;;
        aarch64 | arm64)
            ARCH=aarch64 DEBARCH=arm64 FLAVOUR=arm64 QEMU=qemu-system-aarch64
            QEMU_PKG=qemu-system-arm CONSOLE=ttyAMA0 ;;
        *) die "unknown architecture '$1' (x86_64 or aarch64)" ;;
    esac
    AC=$CACHE/$ARCH
}

# ---------------------------------------------------------------- host tools
ensure_host_tools() {
    local -a want=("$@") pkgs=()
    local tool pkg
    for tool in "${want[@]}"; do
        pkg=${tool#*=} tool=${tool%%=*}
        command -v "$tool" >/dev/null 2>&1 || pkgs+=("$pkg")
    done
    [ "${#pkgs[@]}" -eq 0 ] && return 0
    say "installing host packages: ${pkgs[*]}"
    apt_install "${pkgs[@]}" || die "could not install ${pkgs[*]}"
}

# ---------------------------------------------------------------- private apt
# A private apt configuration per guest architecture: the machine's own Debian
# sources, its own lists and archive cache, and an empty dpkg status, so that
# nothing on the host is installed or changed.
codename() { (. /etc/os-release && printf '%s' "${VERSION_CODENAME:?}"); }

write_sources() {
    local code out=$1 f
    code=$(codename)
    : > "$out"
    # deb822 files: keep the stanzas whose suites are this release's, binary only.
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -e "$f" ] || continue
        awk -v code="$code" '
            BEGIN { RS = ""; ORS = "\n\n" }
            {
                keep = 0; enabled = 1; types = ""
                n = split($0, lines, "\n")
                for (i = 1; i <= n; i++) {
                    if (lines[i] ~ /^Suites:/) {
                        m = split(substr(lines[i], 8), s, /[ \t]+/)
                        for (j = 1; j <= m; j++) if (s[j] ~ ("^" code "(-[a-z]+)?$")) keep = 1
                    }
                    if (lines[i] ~ /^Enabled:[ \t]*no/) enabled = 0
                    if (lines[i] ~ /^Types:/) types = lines[i]
                }
                if (!keep || !enabled || types !~ /[ \t]deb([ \t]|$)/) next
                out = ""
                for (i = 1; i <= n; i++) {
                    if (lines[i] ~ /^Types:/) lines[i] = "Types: deb"
                    if (lines[i] ~ /^Architectures:/) continue
                    out = out lines[i] "\n"
                }
                print out
            }' "$f" >> "$out.sources"
    done
    # One-line files.
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -e "$f" ] || continue
        awk -v code="$code" '
            $1 != "deb" { next }
            {
                line = $0; opts = ""
                sub(/^deb[ \t]+/, "", line)
                if (line ~ /^\[/) { opts = substr(line, 1, index(line, "]")); line = substr(line, index(line, "]") + 1) }
                gsub(/arch=[^ \]]*/, "", opts)
                split(line, w, /[ \t]+/); k = (w[1] == "") ? 2 : 1
                if (w[k + 1] ~ ("^" code "(-[a-z]+)?$")) print "deb " opts " " line
            }' "$f" >> "$out"
    done
    if [ ! -s "$out" ] && [ ! -s "$out.sources" ]; then
        die "no Debian '$code' apt sources found in /etc/apt"
    fi
}

APT_DIR=
apt_setup() {
    APT_DIR=$CACHE/apt/$DEBARCH
    private_apt "$APT_DIR" "$DEBARCH"
    write_sources "$APT_DIR/etc/sources.list"
    if [ -s "$APT_DIR/etc/sources.list.sources" ]; then
        mv "$APT_DIR/etc/sources.list.sources" "$APT_DIR/etc/sources.list.d/host.sources"
    else
        rm -f "$APT_DIR/etc/sources.list.sources" "$APT_DIR/etc/sources.list.d/host.sources"
    fi
}
papt() { APT_CONFIG=$APT_DIR/apt.conf "$@"; }
# Runs a noisy command with its output in a log, shown only when it fails.
logged() {
    local log=$1
    shift
    if ! "$@" > "$log" 2>&1; then
        tail -n 40 "$log" >&2
        return 1
    fi
}
apt_update() {
    if [ "${REFRESH:-0}" = 1 ] || [ ! -e "$APT_DIR/updated" ]; then
        say "apt-get update ($DEBARCH, private lists)"
        logged "$APT_DIR/update.log" papt apt-get -q update || die "apt-get update failed for $DEBARCH"
        touch "$APT_DIR/updated"
    fi
}

# Downloads packages into $2 (the archive dir of this architecture) and prints
# the .deb paths. $1: "deps" to take the dependencies too (resolved against an
# empty system), "nodeps" for exactly the named packages. Rest: package specs.
apt_fetch() {
    local mode=$1 dest=$2 line file size uris
    shift 2
    mkdir -p "$dest/partial"
    local -a list=() todo=()
    if [ "$mode" = deps ]; then
        # Against an empty archive dir, so that files already here are listed too.
        mkdir -p "$APT_DIR/listing/partial"
        uris=$(papt apt-get -qq -o Dir::Cache::archives="$APT_DIR/listing" --print-uris install "$@") ||
            die "apt cannot install $* for $DEBARCH"
    else
        uris=$(papt apt-get -qq --print-uris download "$@") || die "apt cannot download $* for $DEBARCH"
    fi
    mapfile -t list <<<"$(tr -d "'" <<<"$uris")"
    [ -n "$uris" ] || die "apt could not resolve: $*"
    for line in "${list[@]}"; do
        read -r _ file size _ <<<"$line"
        [ -s "$dest/$file" ] && [ "$(stat -c %s "$dest/$file")" = "$size" ] || todo+=("$file")
    done
    if [ "${#todo[@]}" -gt 0 ]; then
        say "downloading ${#todo[@]} package(s) for $DEBARCH"
        if [ "$mode" = deps ]; then
            logged "$APT_DIR/download.log" papt apt-get -q -y -o Dir::Cache::archives="$dest" \
                install --download-only "$@" || die "download failed: $* (stale lists? try: $0 prepare --refresh)"
        else
            (cd "$dest" && logged "$APT_DIR/download.log" papt apt-get -q download "$@") ||
                die "download failed: $* (stale lists? try: $0 prepare --refresh)"
        fi
    fi
    for line in "${list[@]}"; do
        read -r _ file size _ <<<"$line"
        [ -s "$dest/$file" ] || die "missing after download: $dest/$file"
        printf '%s\n' "$dest/$file"
    done
}

# ---------------------------------------------------------------- kernel
# Picks the kernel once (the release's current linux-headers-FLAVOUR) and pins
# it in kernel.env, so that later runs use the same files without the network.
load_kernel() {
    [ -s "$AC/kernel.env" ] || return 1
    # shellcheck disable=SC1091
    . "$AC/kernel.env"
    [ -n "${KVER:-}" ] && [ -n "${KPKGVER:-}" ]
}

resolve_kernel() {
    if [ "${REFRESH:-0}" != 1 ] && load_kernel; then return 0; fi
    local show
    show=$(papt apt-cache show --no-all-versions "linux-headers-$FLAVOUR") ||
        die "apt knows no linux-headers-$FLAVOUR for $DEBARCH"
    KPKGVER=$(sed -n 's/^Version: //p' <<<"$show" | head -n1)
    KVER=$(grep -m1 '^Depends:' <<<"$show" | grep -oE "linux-headers-[0-9][^ ,]*-$FLAVOUR" | head -n1 || true)
    KVER=${KVER#linux-headers-}
    if [ -z "$KVER" ] || [ -z "$KPKGVER" ]; then
        die "could not work out the kernel version from linux-headers-$FLAVOUR"
    fi
    KABI=${KVER%-"$FLAVOUR"}
    KSERIES=$(grep -oE '^[0-9]+\.[0-9]+' <<<"$KVER")
    mkdir -p "$AC"
    printf 'KVER=%s\nKPKGVER=%s\nKABI=%s\nKSERIES=%s\n' "$KVER" "$KPKGVER" "$KABI" "$KSERIES" > "$AC/kernel.env"
    load_kernel
}

moddir() { printf '%s/kimage/lib/modules/%s' "$AC" "$KVER"; }

# Unpacks the kernel image package; makes the boot image qemu loads fastest.
unpack_kernel() {
    local stamp=$AC/kimage/.unpacked-$KVER-$KPKGVER deb
    if [ ! -e "$stamp" ]; then
        deb=$(apt_fetch nodeps "$AC/debs" "linux-image-$KVER-unsigned=$KPKGVER")
        say "unpacking $(basename "$deb")"
        rm -rf "$AC/kimage" "$AC/kimage.tmp"
        mkdir -p "$AC/kimage.tmp"
        dpkg-deb -x "$deb" "$AC/kimage.tmp"
        # Newer releases ship the modules under /usr/lib.
        if [ ! -d "$AC/kimage.tmp/lib/modules" ] && [ -d "$AC/kimage.tmp/usr/lib/modules" ]; then
            ln -s usr/lib "$AC/kimage.tmp/lib"
        fi
        [ -d "$AC/kimage.tmp/lib/modules/$KVER" ] || die "no modules for $KVER in $(basename "$deb")"
        mv "$AC/kimage.tmp" "$AC/kimage"
        touch "$stamp"
        rm -f "$AC/kernel.img"
    fi
    [ -s "$AC/kernel.img" ] && return 0
    local src=$AC/kimage/boot/vmlinuz-$KVER
    [ -s "$src" ] || die "no /boot/vmlinuz-$KVER in the kernel package"
    if [ "$ARCH" = x86_64 ]; then
        # The bzImage's payload is the ELF vmlinux, whose PVH entry qemu boots
        # directly: no decompression inside the (slow, emulated) guest.
        extract_vmlinux "$src" "$AC/kernel.img.tmp" || die "could not extract vmlinux from $src"
    elif [ "$(head -c2 "$src" | od -An -tx1 | tr -d ' \n')" = 1f8b ]; then
        gzip -dc "$src" > "$AC/kernel.img.tmp"
    else
        cp "$src" "$AC/kernel.img.tmp"
    fi
    mv "$AC/kernel.img.tmp" "$AC/kernel.img"
}

extract_vmlinux() {
    local in=$1 out=$2 magic tool off
    for magic in 'xz:\xfd7zXZ\x00' 'gzip:\x1f\x8b\x08' 'zstd:\x28\xb5\x2f\xfd' 'lz4:\x02\x21\x4c\x18'; do
        tool=${magic%%:*} magic=${magic#*:}
        while read -r off; do
            [ -n "$off" ] || continue
            case "$tool" in
                xz) tail -c +"$((off + 1))" "$in" | xz -dc --single-stream > "$out" 2>/dev/null || true ;;
                gzip) tail -c +"$((off + 1))" "$in" | gzip -dc > "$out" 2>/dev/null || true ;;
                zstd) tail -c +"$((off + 1))" "$in" | zstd -dcq > "$out" 2>/dev/null || true ;;
                lz4) tail -c +"$((off + 1))" "$in" | lz4 -dcq > "$out" 2>/dev/null || true ;;
            esac
            if [ "$(head -c4 "$out" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; then
                return 0
            fi
        done < <(grep -obUaP "$magic" "$in" | cut -d: -f1 | head -n3)
    done
    rm -f "$out"
    return 1
}

# ---------------------------------------------------------------- extra modules
# vim2m, vicodec (+ v4l2-mem2mem, which Debian does not enable either) and vimc,
# built out of tree from Debian's linux-source against the matching headers.
cross_prefix() {
    if [ "$(uname -m)" = "$ARCH" ]; then printf ''; else printf '%s-linux-gnu-' "$ARCH"; fi
}

build_oot_modules() {
    local stamp=$AC/oot/.built-$KVER-$KPKGVER
    if [ -e "$stamp" ]; then return 0; fi
    local cc cross
    cross=$(cross_prefix)
    cc=$(grep -oE 'gcc-[0-9]+' "$AC/kheaders/usr/src/linux-headers-$KVER/.kernelvariables" 2>/dev/null | head -n1 || true)
    cc=${cc:-gcc-12}
    if ! command -v "$cross$cc" >/dev/null 2>&1; then
        if [ -n "$cross" ]; then
            ensure_host_tools "$cross$cc=${cc}-${ARCH//_/-}-linux-gnu" make=make
        else
            ensure_host_tools "$cc=$cc" make=make
        fi
    fi
    ensure_host_tools make=make
    # The source tree: only the few directories needed, unpacked once per version.
    local src=$CACHE/src/linux-$KPKGVER
    if [ ! -e "$src/.unpacked" ]; then
        local sdeb
        sdeb=$(apt_fetch nodeps "$AC/debs" "linux-source-$KSERIES=$KPKGVER")
        say "unpacking the media test drivers from $(basename "$sdeb")"
        rm -rf "$src" && mkdir -p "$src"
        dpkg-deb --fsys-tarfile "$sdeb" | tar -xO --wildcards './usr/src/linux-source-*.tar.xz' |
            xz -dc -T1 | tar -x -C "$src" --strip-components=1 --wildcards \
                '*/drivers/media/test-drivers/vim2m.c' '*/drivers/media/test-drivers/vicodec/*' \
                '*/drivers/media/test-drivers/vimc/*' '*/drivers/media/v4l2-core/v4l2-mem2mem.c'
        touch "$src/.unpacked"
        rm -f "$sdeb"   # 140 MB, and only these few files of it are needed
    fi
    # Headers and kbuild; the kbuild tools run on the host, so they are the host's.
    if [ ! -e "$AC/kheaders/.unpacked-$KVER-$KPKGVER" ]; then
        local -a hdebs=()
        local got
        got=$(apt_fetch nodeps "$AC/debs" "linux-headers-$KVER=$KPKGVER" "linux-headers-$KABI-common=$KPKGVER")
        mapfile -t hdebs <<<"$got"
        local kbuild
        kbuild=$(apt_setup_host_and_fetch "linux-kbuild-$KSERIES=$KPKGVER")
        rm -rf "$AC/kheaders" && mkdir -p "$AC/kheaders"
        local d
        for d in "${hdebs[@]}" "$kbuild"; do dpkg-deb -x "$d" "$AC/kheaders"; done
        # The flavour's Makefile includes the common one by absolute path.
        sed -i "s#^include /usr/src/#include $AC/kheaders/usr/src/#" \
            "$AC/kheaders/usr/src/linux-headers-$KVER/Makefile"
        touch "$AC/kheaders/.unpacked-$KVER-$KPKGVER"
    fi
    local kdir=$AC/kheaders/usr/src/linux-headers-$KVER
    local b=$AC/oot/build
    rm -rf "$AC/oot" && mkdir -p "$b"
    cp -r "$src/drivers/media/test-drivers/vim2m.c" "$src/drivers/media/test-drivers/vicodec" \
        "$src/drivers/media/test-drivers/vimc" "$src/drivers/media/v4l2-core/v4l2-mem2mem.c" "$b/"
    printf 'obj-m += v4l2-mem2mem.o vim2m.o vicodec/ vimc/\n' > "$b/Kbuild"
    local -a mk=(make -C "$kdir" M="$b" CONFIG_VIDEO_VIMC=m CONFIG_VIDEO_VICODEC=m)
    if [ -n "$cross" ]; then
        mk+=(DEB_BUILD_ARCH="$(dpkg --print-architecture)" DEB_HOST_ARCH="$DEBARCH"
            DEB_HOST_GNU_TYPE="${ARCH}-linux-gnu" CROSS_COMPILE="$cross")
    fi
    say "building ${OOT_MODULES[*]} for $KVER"
    local t0 ok=1
    t0=$(now)
    if ! nice -n 10 "${mk[@]}" -j2 modules > "$AC/oot/build.log" 2>&1; then
        ok=0
        say "the combined build failed (log: $AC/oot/build.log); building each driver alone"
        # Each driver alone, so that one that does not compile costs only itself.
        local unit
        for unit in "v4l2-mem2mem.o vim2m.o" "v4l2-mem2mem.o vicodec/" "vimc/"; do
            printf 'obj-m += %s\n' "$unit" > "$b/Kbuild"
            nice -n 10 "${mk[@]}" -j2 modules >> "$AC/oot/build.log" 2>&1 || say "failed: $unit"
        done
    fi
    local extra
    extra=$(moddir)/extra
    rm -rf "$extra" && mkdir -p "$extra"
    local ko built=()
    for ko in "$b"/*.ko "$b"/*/*.ko; do
        [ -e "$ko" ] || continue
        "${cross}strip" --strip-debug -o "$extra/$(basename "$ko")" "$ko" 2>/dev/null || cp "$ko" "$extra/"
        built+=("$(basename "$ko" .ko)")
    done
    : > "$AC/oot/built.txt"
    [ "${#built[@]}" -eq 0 ] || printf '%s\n' "${built[@]}" > "$AC/oot/built.txt"
    say "built out of tree in $(elapsed "$t0" "$(now)") s: ${built[*]:-nothing}$([ "$ok" = 1 ] || echo ' (see build.log)')"
    rm -f "$AC/kimage/.depmod"
    touch "$stamp"
}

# linux-kbuild for the host's own architecture (its tools run on the host).
apt_setup_host_and_fetch() {
    local keep_arch=$ARCH keep_dir=$APT_DIR
    set_arch "$(uname -m)"
    apt_setup
    apt_update
    apt_fetch nodeps "$CACHE/$(uname -m)/debs" "$@"
    set_arch "$keep_arch"
    APT_DIR=$keep_dir
}

run_depmod() {
    if [ ! -e "$AC/kimage/.depmod" ]; then
        depmod -b "$AC/kimage" "$KVER" || die "depmod failed for $KVER"
        touch "$AC/kimage/.depmod"
    fi
}

# ---------------------------------------------------------------- guest userland
# Moves /bin, /sbin, /lib* of an unpacked tree under /usr (merged /usr), and with
# "links" leaves the compatibility symlinks.
usr_merge() {
    local root=$1 links=${2:-} d
    for d in bin sbin lib lib32 lib64 libx32; do
        if [ -d "$root/$d" ] && [ ! -L "$root/$d" ]; then
            mkdir -p "$root/usr/$d"
            cp -a "$root/$d/." "$root/usr/$d/"
            rm -rf "${root:?}/$d"
        fi
        if [ "$links" = links ] && [ -d "$root/usr/$d" ] && [ ! -e "$root/$d" ]; then
            ln -s "usr/$d" "$root/$d"
        fi
    done
}

trim_tree() {
    local root=$1
    rm -rf "$root"/usr/share/{doc,man,info,locale,lintian,bug,bash-completion,menu,zsh,gdb}
    rm -rf "$root"/usr/lib/udev "$root"/usr/lib/*-linux-gnu/gconv
}

# Writes a newc cpio of directory $1 to $2 (atomically).
make_cpio() {
    (cd "$1" && find . -mindepth 1 | sort | cpio --quiet -o -H newc -R 0:0) > "$2.tmp.$$"
    mv "$2.tmp.$$" "$2"
}

build_base() {
    local -a debs=()
    local got
    got=$(apt_fetch deps "$AC/debs" "${GUEST_PACKAGES[@]}")
    mapfile -t debs <<<"$got"
    local fp
    fp=$( (printf '%s\n' base-layout-1; printf '%s\n' "${debs[@]##*/}" | sort) | sha256sum | cut -c1-16)
    if [ -s "$AC/base.cpio" ] && [ "$(cat "$AC/base.fp" 2>/dev/null)" = "$fp" ]; then return 0; fi
    say "building the guest userland from ${#debs[@]} packages"
    local root=$AC/root d
    rm -rf "$root" && mkdir -p "$root"
    for d in "${debs[@]}"; do dpkg-deb -x "$d" "$root"; done
    usr_merge "$root" links
    trim_tree "$root"
    mkdir -p "$root"/{proc,sys,dev,tmp,run,root,host,rig,etc,var/tmp,mnt}
    chmod 1777 "$root/tmp" "$root/var/tmp"
    mknod -m 600 "$root/dev/console" c 5 1
    mknod -m 666 "$root/dev/null" c 1 3
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$root/etc/passwd"
    printf 'root:x:0:\nvideo:x:44:\nnogroup:x:65534:\n' > "$root/etc/group"
    printf '127.0.0.1 localhost\n10.0.2.15 rig\n' > "$root/etc/hosts"
    [ -x "$root/usr/bin/busybox" ] || die "busybox missing from the guest root"
    printf '%s\n' "${debs[@]##*/}" | sed 's/_.*//' | sort -u > "$AC/base.pkgs"
    make_cpio "$root" "$AC/base.cpio"
    printf '%s\n' "$fp" > "$AC/base.fp"
}

# Optional layer with more Debian packages (and their dependencies that the base
# lacks). Prints its cpio path.
build_packages_layer() {
    local -a debs=() mine=()
    local got
    got=$(apt_fetch deps "$AC/debs" "$@")
    mapfile -t debs <<<"$got"
    local d
    for d in "${debs[@]}"; do
        grep -qxF "$(basename "$d" | sed 's/_.*//')" "$AC/base.pkgs" || mine+=("$d")
    done
    local key out
    key=$(printf '%s\n' layout-1 "${mine[@]##*/}" | sha256sum | cut -c1-16)
    out=$AC/initrd/pkgs-$key.cpio
    if [ ! -s "$out" ]; then
        say "building a layer with ${#mine[@]} more package(s): $*"
        local root=$AC/initrd/pkgs-$key.$$.d
        rm -rf "$root" && mkdir -p "$root"
        for d in "${mine[@]}"; do dpkg-deb -x "$d" "$root"; done
        usr_merge "$root"
        trim_tree "$root"
        make_cpio "$root" "$out"
        rm -rf "$root"
    fi
    printf '%s\n' "$out"
}

# Prints the module files (relative to the modules dir) that loading $@ needs.
module_closure() {
    local m line
    mkdir -p "$AC/empty.d"
    for m in "$@"; do
        [ -n "$m" ] || continue
        local deps
        deps=$(modprobe -d "$AC/kimage" -S "$KVER" -C "$AC/empty.d" --show-depends "$m" 2>&1) ||
            die "no module '$m' for $KVER${deps:+: $deps}"
        while read -r line; do
            case "$line" in
                insmod\ *) line=${line#insmod }; line=${line%% *}; printf '%s\n' "${line#"$(moddir)"/}" ;;
            esac
        done <<<"$deps"
    done | sort -u
}

# The small layer made per module set: /init and the modules with their modules.dep.
build_run_layer() {
    local -a kos=()
    local got
    got=$(module_closure "$@")
    mapfile -t kos <<<"$got"
    local key out
    key=$( (cat "$RIG_DIR/guest-init.sh"; printf '%s\n' "$KVER" "${kos[@]}") | sha256sum | cut -c1-16)
    out=$AC/initrd/run-$key.cpio
    if [ ! -s "$out" ]; then
        local root=$AC/initrd/run-$key.$$.d ko md
        rm -rf "$root"
        md=$root/usr/lib/modules/$KVER
        mkdir -p "$md"
        install -m 755 "$RIG_DIR/guest-init.sh" "$root/init"
        for ko in "${kos[@]}"; do
            mkdir -p "$md/$(dirname "$ko")"
            cp "$(moddir)/$ko" "$md/$ko"
        done
        for ko in modules.order modules.builtin modules.builtin.modinfo; do
            [ -e "$(moddir)/$ko" ] && cp "$(moddir)/$ko" "$md/"
        done
        depmod -b "$root/usr" "$KVER" || die "depmod failed"
        make_cpio "$root" "$out"
        rm -rf "$root"
    fi
    printf '%s\n' "$out"
}

# Layers not used for a month are dropped, so that the cache does not grow
# without bound while /init or the module sets change.
prune_layers() {
    find "$AC/initrd" -maxdepth 1 \( -name 'run-*.cpio' -o -name 'pkgs-*.cpio' -o -name 'full-*.cpio' \) \
        -mtime +30 -delete 2>/dev/null || true
}

# ---------------------------------------------------------------- prepare
prepare_arch() {
    local t0
    t0=$(now)
    mkdir -p "$AC/initrd" "$AC/debs"
    exec 9>"$AC/.lock"
    flock -w 1800 9 || die "another prepare holds $AC/.lock"
    ensure_host_tools "$QEMU=$QEMU_PKG" cpio=cpio depmod=kmod modprobe=kmod dpkg-deb=dpkg xz=xz-utils \
        flock=util-linux
    apt_setup
    if ! load_kernel || [ "${REFRESH:-0}" = 1 ]; then apt_update; fi
    resolve_kernel
    unpack_kernel
    local need_apt=0
    [ -e "$AC/oot/.built-$KVER-$KPKGVER" ] || need_apt=1
    [ -s "$AC/base.cpio" ] || need_apt=1
    [ "$need_apt" = 0 ] || apt_update
    build_oot_modules
    run_depmod
    build_base
    # The default module set's layer and image, so that the first run is warm.
    local -a built=()
    mapfile -t built < "$AC/oot/built.txt"
    # shellcheck disable=SC2086 # a list of names
    build_run_layer "${BASE_MODULES[@]}" $DEFAULT_MODULES "${built[@]}" > /dev/null
    prune_layers
    flock -u 9
    printf 'rig: %s ready in %s s: kernel %s (Debian %s), image %s\n' "$ARCH" "$(elapsed "$t0" "$(now)")" \
        "$KVER" "$KPKGVER" "$AC/kernel.img" >&2
    printf 'rig:   built out of tree: %s\n' "$(tr '\n' ' ' < "$AC/oot/built.txt")" >&2
    printf 'rig:   guest userland: %s (%s MB initramfs)\n' "${GUEST_PACKAGES[*]}" \
        "$(( $(stat -c %s "$AC/base.cpio") / 1048576 ))" >&2
}

# Cheap check used by run: everything prepare makes is there.
prepared() {
    load_kernel && [ -s "$AC/kernel.img" ] && [ -s "$AC/base.cpio" ] && [ -e "$AC/kimage/.depmod" ] &&
        [ -e "$AC/oot/.built-$KVER-$KPKGVER" ] && [ -s "$AC/base.fp" ]
}

# ---------------------------------------------------------------- run
shell_quote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

QPID='' CATPIDS=() RUNDIR='' KEEP=0
stop_vm() {
    local p
    if [ -n "$QPID" ] && kill -0 "$QPID" 2>/dev/null; then
        kill -TERM "$QPID" 2>/dev/null || true
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$QPID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$QPID" 2>/dev/null || true
        wait "$QPID" 2>/dev/null || true
    fi
    QPID=
    for p in "${CATPIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    CATPIDS=()
}
# shellcheck disable=SC2317 # called from traps
cleanup_run() {
    stop_vm
    if [ -n "$RUNDIR" ]; then
        if [ "$KEEP" = 1 ]; then say "kept the run directory $RUNDIR"; else rm -rf "$RUNDIR"; fi
        RUNDIR=''
    fi
}

print_guest_log() {
    {
        if [ -s "$RUNDIR/ctl/error" ]; then printf 'rig: guest: %s\n' "$(cat "$RUNDIR/ctl/error")"; fi
        if [ -s "$RUNDIR/ctl/dmesg" ]; then
            printf -- '---- guest kernel log (dmesg) ----\n'
            cat "$RUNDIR/ctl/dmesg"
        elif [ -s "$RUNDIR/console.log" ]; then
            printf -- '---- guest console (kernel log, up to the end) ----\n'
            cat "$RUNDIR/console.log"
        fi
        if [ -s "$RUNDIR/qemu.log" ]; then
            printf -- '---- qemu ----\n'
            cat "$RUNDIR/qemu.log"
        fi
        printf -- '---- end of guest log ----\n'
    } >&2
}

cmd_run() {
    local modules=$DEFAULT_MODULES extra_modules="" share="" timeout=$DEFAULT_TIMEOUT mem=1024 smp=1
    local append="" quiet=0 show_dmesg=0 packages=""
    local -a forwards=() envs=() qemu_extra=()
    while [ $# -gt 0 ]; do
        case "$1" in
            --arch) set_arch "${2:?--arch needs a value}"; shift 2 ;;
            --modules) modules=${2?}; shift 2 ;;
            --extra-modules) extra_modules=${2?}; shift 2 ;;
            --share) share=${2:?}; shift 2 ;;
            --forward) forwards+=("${2:?}"); shift 2 ;;
            --timeout) timeout=${2:?}; shift 2 ;;
            --packages) packages=${2?}; shift 2 ;;
            --env) envs+=("${2:?}"); shift 2 ;;
            --mem) mem=${2:?}; shift 2 ;;
            --smp) smp=${2:?}; shift 2 ;;
            --append) append=${2?}; shift 2 ;;
            --qemu-arg) qemu_extra+=("${2?}"); shift 2 ;;
            --keep) KEEP=1; shift ;;
            --quiet | -q) quiet=1; shift ;;
            --dmesg) show_dmesg=1; shift ;;
            --) shift; break ;;
            -*) die "unknown run option $1" ;;
            *) break ;;
        esac
    done
    [ $# -gt 0 ] || die "run: no guest command (rig.sh run [options] -- COMMAND...)"
    if ! [[ "$timeout" =~ ^[0-9]+$ ]] || [ "$timeout" -eq 0 ]; then die "--timeout wants whole seconds"; fi
    if [ -n "$share" ]; then
        [ -d "$share" ] || die "--share $share is not a directory"
        share=$(cd "$share" && pwd)
    fi
    local f
    for f in "${forwards[@]}"; do
        [[ "$f" =~ ^[0-9]+:[0-9]+$ ]] || die "--forward wants HOSTPORT:GUESTPORT, not '$f'"
    done
    for f in "${envs[@]}"; do
        [[ "$f" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "--env wants NAME=VALUE, not '$f'"
    done

    if ! prepared; then
        say "$ARCH is not prepared yet; preparing"
        prepare_arch
    fi
    load_kernel
    command -v "$QEMU" >/dev/null || die "$QEMU is missing; run: $0 prepare --arch $ARCH"

    # "vivid n_devs=1 vim2m": a word with '=' is a parameter of the module before it.
    local -a mod_lines=() mod_names=()
    local w
    local -a words=()
    read -ra words <<<"$modules"
    for w in "${words[@]}"; do
        if [[ "$w" == *=* ]]; then
            [ "${#mod_lines[@]}" -gt 0 ] || die "module parameter '$w' before any module name"
            mod_lines[-1]+=" $w"
        else
            mod_lines+=("$w") mod_names+=("$w")
        fi
    done
    local -a layers=()
    local -a extra=()
    read -ra extra <<<"$extra_modules"
    local layer
    layer=$(build_run_layer "${BASE_MODULES[@]}" "${mod_names[@]}" "${extra[@]}")
    layers+=("$layer")
    if [ -n "$packages" ]; then
        apt_setup
        # shellcheck disable=SC2086
        layer=$(build_packages_layer $packages)
        layers+=("$layer")
    fi
    RUNDIR=$(mktemp -d "${TMPDIR:-/tmp}/picam-vm.XXXXXX")
    trap cleanup_run EXIT
    trap 'say "interrupted; stopping the VM"; cleanup_run; trap - EXIT; exit 130' INT TERM HUP
    # The kernel unpacks concatenated cpio archives one after the other.
    local initrd=$RUNDIR/initrd.cpio
    touch "${layers[@]}"
    cat "$AC/base.cpio" "${layers[@]}" > "$initrd"
    local ctl=$RUNDIR/ctl
    mkdir -p "$ctl"
    printf '%s\n' "${mod_lines[@]}" > "$ctl/modules"
    [ -n "$share" ] && : > "$ctl/share"
    {
        printf 'export RIG_ARCH=%s RIG_KERNEL=%s\n' "$ARCH" "$KVER"
        for f in "${envs[@]}"; do printf 'export %s=%s\n' "${f%%=*}" "$(shell_quote "${f#*=}")"; done
        if [ $# -eq 1 ]; then
            printf '%s\n' "$1"
        else
            printf 'exec'
            for w in "$@"; do printf ' %s' "$(shell_quote "$w")"; done
            printf '\n'
        fi
    } > "$ctl/cmd"

    mkfifo "$RUNDIR/out" "$RUNDIR/err"
    cat "$RUNDIR/out" &
    CATPIDS+=($!)
    cat "$RUNDIR/err" >&2 &
    CATPIDS+=($!)

    # shellcheck disable=SC2054 # commas belong to qemu's option syntax
    local -a q=("$QEMU" -nodefaults -no-user-config -display none -no-reboot -accel tcg
        -m "$mem" -smp "$smp" -kernel "$AC/kernel.img" -initrd "$initrd"
        -serial "file:$RUNDIR/console.log")
    local cmdline="console=$CONSOLE panic=-1 rdinit=/init mitigations=off"
    if [ "$ARCH" = x86_64 ]; then
        q+=(-M q35 -cpu max)
        cmdline+=" 8250.nr_uarts=1 i8042.noaux i8042.nokbd i8042.nomux i8042.nopnp"
    else
        q+=(-M virt -cpu cortex-a57)
    fi
    q+=(-append "$cmdline${append:+ $append}")
    # shellcheck disable=SC2054
    q+=(-device virtio-serial-pci,id=vser
        -chardev "file,id=out,path=$RUNDIR/out" -device virtserialport,bus=vser.0,chardev=out,name=rig.out
        -chardev "file,id=err,path=$RUNDIR/err" -device virtserialport,bus=vser.0,chardev=err,name=rig.err
        -fsdev "local,id=ctl,path=$ctl,security_model=none" -device virtio-9p-pci,fsdev=ctl,mount_tag=rig)
    if [ -n "$share" ]; then
        # shellcheck disable=SC2054
        q+=(-fsdev "local,id=host,path=$share,security_model=none" -device virtio-9p-pci,fsdev=host,mount_tag=host)
    fi
    local net="user,id=net0,restrict=on"
    for f in "${forwards[@]}"; do net+=",hostfwd=tcp:127.0.0.1:${f%%:*}-:${f#*:}"; done
    # shellcheck disable=SC2054
    q+=(-netdev "$net" -device virtio-net-pci,netdev=net0,romfile=)
    q+=("${qemu_extra[@]}")

    local t0 deadline rc=0 qrc=0 timed_out=0
    t0=$(now)
    deadline=$(awk -v a="$t0" -v b="$timeout" 'BEGIN { printf "%d", a + b }')
    "${q[@]}" < /dev/null > "$RUNDIR/qemu.log" 2>&1 &
    QPID=$!
    while kill -0 "$QPID" 2>/dev/null; do
        if [ "${EPOCHSECONDS}" -ge "$deadline" ]; then timed_out=1; break; fi
        sleep 0.2
    done
    local t_end
    t_end=$(now)
    if [ "$timed_out" = 1 ]; then
        stop_vm
    else
        wait "$QPID" 2>/dev/null || qrc=$?
        QPID=''
        # The copies end when qemu closes the pipes; if qemu never opened them, stop them.
        local p n=0
        for p in "${CATPIDS[@]}"; do
            while kill -0 "$p" 2>/dev/null && [ "$n" -lt 20 ]; do sleep 0.1; n=$((n + 1)); done
        done
        stop_vm
    fi

    local started=""
    if [ -e "$ctl/started" ]; then
        started=$(awk -v a="$t0" -v b="$(stat -c %.3Y "$ctl/started")" 'BEGIN { printf "%.1f", b - a }')
    fi
    if [ "$timed_out" = 1 ]; then
        say "timed out after $timeout s; the VM was killed"
        rc=124
    elif [ -s "$ctl/exit" ]; then
        rc=$(cat "$ctl/exit")
    elif [ ! -s "$RUNDIR/console.log" ]; then
        say "qemu failed (exit $qrc) before the guest started"
        rc=125
    else
        say "the guest stopped without reporting an exit status (boot failure or kernel panic?)"
        rc=125
    fi
    if [ "$rc" != 0 ] || [ "$show_dmesg" = 1 ]; then print_guest_log; fi
    if [ -n "${RIG_REPORT:-}" ]; then
        printf 'rc=%s started=%s total=%s\n' "$rc" "${started:-}" "$(elapsed "$t0" "$t_end")" > "$RIG_REPORT"
    fi
    if [ "$quiet" = 0 ]; then
        say "$ARCH $KVER: exit $rc; command $([ -n "$started" ] && echo "started $started s after launch" || echo "never started"); VM ran $(elapsed "$t0" "$t_end") s"
    fi
    return "$rc"
}

# ---------------------------------------------------------------- selftest
free_port() {
    local p
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 20000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then printf '%s\n' "$p"; return 0; fi
    done
    die "no free local port found"
}

ST_PASS=0 ST_FAIL=0
st_ok() { ST_PASS=$((ST_PASS + 1)); printf 'selftest: ok: %s\n' "$*"; }
st_nok() { ST_FAIL=$((ST_FAIL + 1)); printf 'selftest: NOT OK: %s\n' "$*"; }
st_report() { sed -n "s/.*$2=\([^ ]*\).*/\1/p" "$1" 2>/dev/null; }

# Counts the guest's "ok:" / "not ok:" lines of a run's output.
st_count_guest() {
    local n_ok n_nok
    n_ok=$(grep -c '^ok: ' "$1" || true)
    n_nok=$(grep -c '^not ok: ' "$1" || true)
    ST_PASS=$((ST_PASS + n_ok)) ST_FAIL=$((ST_FAIL + n_nok))
    grep '^not ok: ' "$1" | sed 's/^/selftest: guest: /' || true
}

# Small test programs for the share: a dynamically linked Rust program and a
# static musl one, when the host has the compilers.
st_build_bins() {
    local arch=$1 dir=$2 src=$3
    mkdir -p "$dir"
    local rtarget linker=()
    if command -v rustc >/dev/null 2>&1; then
        if [ "$arch" = "$(uname -m)" ]; then rtarget=$arch-unknown-linux-gnu; else
            rtarget=$arch-unknown-linux-gnu linker=(-C "linker=$arch-linux-gnu-gcc"); fi
        printf 'fn main() { println!("hello from {}", std::env::args().next().unwrap().rsplit(%s).next().unwrap()); }\n' "'/'" > "$src/hello.rs"
        rustc -O --target "$rtarget" "${linker[@]}" -o "$dir/rust-gnu-dynamic" "$src/hello.rs" 2>/dev/null ||
            say "selftest: no Rust $rtarget build (target not installed?)"
        if [ "$arch" != "$(uname -m)" ] && rustup target list --installed 2>/dev/null | grep -qx "$arch-unknown-linux-musl"; then
            rustc -O --target "$arch-unknown-linux-musl" -C "linker=$arch-linux-gnu-gcc" \
                -o "$dir/rust-musl-static" "$src/hello.rs" 2>/dev/null || say "selftest: no Rust musl build"
        fi
    fi
    if [ "$arch" = "$(uname -m)" ]; then
        ensure_host_tools musl-gcc=musl-tools
        printf '#include <stdio.h>\n#include <string.h>\nint main(int c, char **v) { const char *n = strrchr(v[0], 0x2f); printf("hello from %%s\\n", n ? n + 1 : v[0]); return 0; }\n' > "$src/hello.c"
        musl-gcc -static -O2 -o "$dir/c-musl-static" "$src/hello.c" || say "selftest: musl-gcc failed"
    fi
    file "$dir"/* 2>/dev/null | sed 's/^/selftest: /' || true
}

st_arch() {
    local arch=$1 modules=$2 tests=$3 oot=$4 work=$5
    local share=$work/share-$arch t
    mkdir -p "$share/www"
    cp "$RIG_DIR/selftest-guest.sh" "$share/"

    t=$(now)
    if "$0" prepare --arch "$arch"; then st_ok "prepare $arch"; else st_nok "prepare $arch"; return 0; fi
    TIMES+=("prepare $arch (first call): $(elapsed "$t" "$(now)") s")
    t=$(now)
    "$0" prepare --arch "$arch" 2>/dev/null
    TIMES+=("prepare $arch (again, warm): $(elapsed "$t" "$(now)") s")
    if [ "$oot" = with-oot ]; then
        local built
        built=$(cat "$CACHE/$arch/oot/built.txt" 2>/dev/null || true)
        if grep -qx vim2m <<<"$built" && grep -qx vicodec <<<"$built"; then
            modules+=" vim2m vicodec" tests+=" m2m"
        else
            st_nok "$arch: vim2m/vicodec were not built (see $CACHE/$arch/oot/build.log)"
        fi
        if grep -qx vimc <<<"$built"; then modules+=" vimc" tests+=" vimc"; else
            st_nok "$arch: vimc was not built (see $CACHE/$arch/oot/build.log)"
        fi
    fi

    # Boot and a trivial command, no drivers: the fixed cost of a test.
    if RIG_REPORT=$work/boot-$arch "$0" run --arch "$arch" --modules "" --quiet -- true; then
        st_ok "$arch: boot and run 'true'"
    else
        st_nok "$arch: boot and run 'true'"
    fi
    TIMES+=("$arch boot to command: $(st_report "$work/boot-$arch" started) s, whole 'run -- true': $(st_report "$work/boot-$arch" total) s")

    st_build_bins "$arch" "$share/bin" "$work"
    local port=0 token
    token="picam-vm-selftest-$RANDOM$RANDOM"
    printf '%s\n' "$token" > "$share/www/index.html"
    local -a fwd=()
    if [[ " $tests " == *" http "* ]]; then port=$(free_port); fwd=(--forward "$port:8080"); fi

    say "selftest: $arch run with modules: $modules"
    t=$(now)
    RIG_REPORT=$work/run-$arch "$0" run --arch "$arch" --share "$share" "${fwd[@]}" --modules "$modules" \
        --timeout 240 --env "RIG_TESTS=$tests" -- sh /host/selftest-guest.sh \
        > "$work/run-$arch.out" 2> "$work/run-$arch.err" &
    local rpid=$!
    if [ "$port" != 0 ]; then
        local got="" deadline=$((EPOCHSECONDS + 200))
        while kill -0 "$rpid" 2>/dev/null && [ "$EPOCHSECONDS" -lt "$deadline" ]; do
            got=$(curl -fsS -m 3 "http://127.0.0.1:$port/index.html" 2>/dev/null || true)
            [ -n "$got" ] && break
            sleep 0.5
        done
        if [ "$got" = "$token" ]; then
            st_ok "$arch: fetched the guest's page through 127.0.0.1:$port after $(elapsed "$t" "$(now)") s"
        else
            st_nok "$arch: could not fetch the guest's page through 127.0.0.1:$port"
        fi
        : > "$share/fetched"
    fi
    local rc=0
    wait "$rpid" || rc=$?
    TIMES+=("$arch test run ($modules): $(elapsed "$t" "$(now)") s, command started after $(st_report "$work/run-$arch" started) s")
    sed 's/^/  | /' "$work/run-$arch.out"
    if [ "$rc" = 0 ]; then st_ok "$arch: guest test script exited 0"; else
        st_nok "$arch: guest test run exited $rc"
        sed 's/^/  ! /' "$work/run-$arch.err"
    fi
    st_count_guest "$work/run-$arch.out"
    if [[ " $tests " == *" v4l2 "* ]]; then
        local size got_size
        size=$(cat "$share/frame-size" 2>/dev/null || echo 0)
        got_size=$(stat -c %s "$share/frames.yuv" 2>/dev/null || echo 0)
        if [ "$size" -gt 0 ] && [ "$got_size" = $((3 * size)) ]; then
            st_ok "$arch: frames.yuv on the host is 3 x $size bytes"
        else
            st_nok "$arch: frames.yuv is $got_size bytes, expected 3 x $size"
        fi
    fi
}

cmd_selftest() {
    local do_arm=1 t0 work
    while [ $# -gt 0 ]; do
        case "$1" in
            --skip-aarch64) do_arm=0; shift ;;
            *) die "unknown selftest option $1" ;;
        esac
    done
    t0=$(now)
    ensure_host_tools curl=curl file=file
    work=$(mktemp -d "${TMPDIR:-/tmp}/picam-vm-selftest.XXXXXX")
    # shellcheck disable=SC2064
    trap "rm -rf '$work'" EXIT
    TIMES=()
    st_arch x86_64 "vivid n_devs=1" "v4l2 bins http hotplug" with-oot "$work"
    if [ "$do_arm" = 1 ]; then
        st_arch aarch64 "vivid n_devs=1" "v4l2 bins http hotplug" with-oot "$work"
    fi
    printf '\nselftest times:\n'
    printf '  %s\n' "${TIMES[@]}"
    printf '  whole selftest: %s s\n' "$(elapsed "$t0" "$(now)")"
    printf 'selftest: %d passed, %d failed\n' "$ST_PASS" "$ST_FAIL"
    [ "$ST_FAIL" = 0 ]
}

# ---------------------------------------------------------------- main
usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }

main() {
    local cmd=${1:-}
    [ $# -gt 0 ] && shift
    set_arch x86_64
    case "$cmd" in
        prepare)
            while [ $# -gt 0 ]; do
                case "$1" in
                    --arch) set_arch "${2:?}"; shift 2 ;;
                    --refresh) REFRESH=1; shift ;;
                    *) die "unknown prepare option $1" ;;
                esac
            done
            prepare_arch ;;
        run) cmd_run "$@" ;;
        selftest) cmd_selftest "$@" ;;
        info)
            [ "${1:-}" = --arch ] && set_arch "${2:?}"
            load_kernel || die "$ARCH is not prepared"
            printf 'arch=%s\nkernel=%s\ndebian_version=%s\nimage=%s\nout_of_tree=%s\ncache=%s\n' "$ARCH" "$KVER" \
                "$KPKGVER" "$AC/kernel.img" "$(tr '\n' ' ' < "$AC/oot/built.txt" 2>/dev/null)" "$AC" ;;
        -h | --help | help) usage ;;
        *) usage >&2; exit 2 ;;
    esac
}

# On one line, so that bash has read all of it before running (edits during a run are harmless).
main "$@"; exit
