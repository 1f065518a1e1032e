# shellcheck shell=bash
# What the scripts that assemble a guest's root file system (rig.sh, card-build.sh,
# deb-boot.sh) and boot it (card-boot.sh) share: sourced, not run, after .ci/lib.sh
# (say, die, need, private_apt: what every CI script shares).
#
#   copy_module_closure KIMAGE KVER ROOT MODULE...
#
# copies each MODULE and every module it depends on from the unpacked kernel package
# KIMAGE (its lib/modules/KVER) into ROOT/usr/lib/modules/KVER, with the kernel's
# module lists, and runs depmod there; fails naming a module the kernel lacks.
#
#   stop_guest PID...
#
# stops each process of a non-empty PID (a VM, a helper) and waits for it.
copy_module_closure() {
    local kimage=$1 kver=$2 root=$3 empty ko rel m deps=''
    shift 3
    local from=$kimage/lib/modules/$kver md=$root/usr/lib/modules/$kver
    empty=$(mktemp -d)
    mkdir -p "$md"
    for m in "$@"; do
        deps+=$(modprobe -d "$kimage" -S "$kver" -C "$empty" --show-depends "$m") ||
            { rmdir "$empty"; printf 'no module %s in %s\n' "$m" "$kver" >&2; return 1; }
        deps+=$'\n'
    done
    awk '$1 == "insmod" { print $2 }' <<<"$deps" | sort -u | while read -r ko; do
        rel=${ko#"$from/"}
        mkdir -p "$md/$(dirname "$rel")"
        cp "$ko" "$md/$rel"
    done
    rmdir "$empty"
    for f in modules.order modules.builtin modules.builtin.modinfo; do
        [ -e "$from/$f" ] && cp "$from/$f" "$md/"
    done
    depmod -b "$root/usr" "$kver"
}

stop_guest() {
    local pid
    for pid in "$@"; do
        [ -n "$pid" ] || continue
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
