# shellcheck shell=bash
# What the scripts that assemble a guest's root file system (card-build.sh,
# deb-boot.sh) and card-boot.sh share: sourced, not run. They define say and die first.
#
#   need TOOL PACKAGE
#
# installs Debian's PACKAGE with apt when TOOL is not on PATH (updating the lists
# once if the first try fails); dies when TOOL is still missing.
#
#   copy_module_closure KIMAGE KVER ROOT MODULE...
#
# copies each MODULE and every module it depends on from the unpacked kernel package
# KIMAGE (its lib/modules/KVER) into ROOT/usr/lib/modules/KVER, with the kernel's
# module lists, and runs depmod there; fails naming a module the kernel lacks.
need() {
    local tool=$1 pkg=$2
    command -v "$tool" >/dev/null 2>&1 && return 0
    say "installing $pkg"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$pkg" >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null 2>&1 || true
          DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$pkg" >/dev/null; }
    command -v "$tool" >/dev/null 2>&1 || die "could not install $pkg"
}

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
