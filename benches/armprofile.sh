#!/usr/bin/env bash
# Builds benches/armprofile.c, the qemu TCG plugin benches/armcount.sh counts with, into
# libarmprofile.so (in DIR, default $PICAM_CI_CACHE/armprofile):
#
#   benches/armprofile.sh [DIR]
#   PICAM_ARMCOUNT_PLUGIN=DIR/libarmprofile.so benches/armcount.sh 20 -- ...
#   PICAM_ARMCOUNT_PROFILE=15 PICAM_ARMCOUNT_PLUGIN=... benches/armcount.sh 20 -- ...
#
# The plugin writes the total (out=FILE) and, with blocks=FILE, the instructions per
# translation block; with PICAM_ARMCOUNT_PROFILE=N, armcount.sh maps those to the
# binary's functions and prints the N costliest per frame.
#
# The plugin must be built against the qemu-plugin.h of the qemu-user it runs in:
# Debian's, taken from Debian's qemu source package through an apt state of its own
# (the machine's package lists are not touched). Needs apt, gcc and glib's headers
# (libglib2.0-dev), and qemu-user to run.
set -euo pipefail
# shellcheck source=.ci/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../.ci/lib.sh"
out=${1:-$PICAM_CI_CACHE/armprofile}
mkdir -p "$out"
need qemu-arm qemu-user
need pkg-config pkg-config
apt_install libglib2.0-dev gcc
header=$(find "$out/qemu-src" -name qemu-plugin.h 2>/dev/null | head -n1 || true)
if [ -z "$header" ]; then
    src=$out/qemu-src
    rm -rf "$src"
    mkdir -p "$src/lists/partial"
    mirror=$(bash "$PICAM_REPO/cross/install-deps.sh" debian-mirror)
    codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
    printf 'Types: deb-src\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$mirror" "$codename" >"$src/src.sources"
    apt_src=(-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$src" -o Dir::State::Lists="$src/lists")
    apt-get "${apt_src[@]}" update -qq
    (cd "$src" && apt-get "${apt_src[@]}" source --download-only -qq qemu >/dev/null)
    tar -xJf "$src"/qemu_*.orig.tar.xz -C "$src" --wildcards '*/include/qemu/qemu-plugin.h'
    header=$(find "$src" -name qemu-plugin.h | head -n1)
    [ -n "$header" ] || die "no qemu-plugin.h in Debian's qemu source package"
fi
# shellcheck disable=SC2046 # pkg-config prints several flags
gcc -shared -fPIC -O2 -Wall -I"$(dirname "$header")" $(pkg-config --cflags glib-2.0) \
    -o "$out/libarmprofile.so" "$PICAM_REPO/benches/armprofile.c"
say "built $out/libarmprofile.so"
echo "$out/libarmprofile.so"
