# shellcheck shell=bash
# Kernel modules for a guest's root file system, shared by the scripts that assemble
# one (boot-image.sh, deb-boot.sh): sourced, not run.
#
#   copy_module_closure KIMAGE KVER ROOT MODULE...
#
# copies each MODULE and every module it depends on from the unpacked kernel package
# KIMAGE (its lib/modules/KVER) into ROOT/usr/lib/modules/KVER, with the kernel's
# module lists, and runs depmod there; fails naming a module the kernel lacks.
copy_module_closure() {
    local kimage=$1 kver=$2 root=$3 empty ko rel
    shift 3
    local from=$kimage/lib/modules/$kver md=$root/usr/lib/modules/$kver
    empty=$(mktemp -d)
    mkdir -p "$md"
    for m in "$@"; do
        modprobe -d "$kimage" -S "$kver" -C "$empty" --show-depends "$m" ||
            { rmdir "$empty"; printf 'no module %s in %s\n' "$m" "$kver" >&2; return 1; }
    done | awk '$1 == "insmod" { print $2 }' | sort -u | while read -r ko; do
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
