# shellcheck shell=bash
# What the scripts that assemble a guest's root file system (rig.sh, card-build.sh,
# deb-boot.sh) and boot it (card-boot.sh) share: sourced, not run. They define say and
# die first.
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
#
#   private_apt DIR ARCH
#
# makes DIR an apt of its own for the Debian architecture ARCH: DIR/apt.conf (use it
# with APT_CONFIG=DIR/apt.conf) keeps lists, downloads and an empty package status
# under DIR, reads its sources from DIR/etc/sources.list and DIR/etc/sources.list.d/
# (the caller writes them), and never touches the host's apt.
#
#   stop_guest PID...
#
# stops each process of a non-empty PID (a VM, a helper) and waits for it.
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

private_apt() {
    local dir=$1 arch=$2
    mkdir -p "$dir"/{state/lists/partial,cache/archives/partial,etc/sources.list.d,etc/preferences.d}
    [ -e "$dir/status" ] || : > "$dir/status"
    cat > "$dir/apt.conf" <<EOF
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

stop_guest() {
    local pid
    for pid in "$@"; do
        [ -n "$pid" ] || continue
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
