# shellcheck shell=bash
# What the CI and VM scripts share (.ci/run, .ci/*.sh, tests/vm/*.sh,
# benches/armcount.sh): sourced, never run, so that each script still runs on its
# own:
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"            # from .ci/
#   . "$(dirname "${BASH_SOURCE[0]}")/../../.ci/lib.sh"  # from tests/vm/
#
# It sets
#
#   PICAM_REPO      the checkout's root
#   PICAM_CI_CACHE  (exported) where everything the scripts download or build lives,
#                   outside the checkout so that a second run is warm; the one place
#                   its default, /var/cache/picam-stream-ci, is written
#   CI_NAME         the name messages start with: the sourcing script's file name
#                   without .sh, unless the script set it before
#
# and defines
#
#   say MESSAGE...      "NAME: MESSAGE" on stderr (stdout stays the script's answer)
#   warn MESSAGE...     "NAME: WARNING: MESSAGE" on stderr
#   die MESSAGE...      "NAME: ERROR: MESSAGE" on stderr, then exit with
#                       $CI_DIE_STATUS (default 1)
#   apt_install PKG...  the Debian packages among PKG that are not installed, in one
#                       apt run as root (or through sudo -n), the lists updated first
#                       and the run retried: cross/install-deps.sh's `pkgs`, the one
#                       host apt the scripts and the cross/ images share
#   need TOOL PACKAGE   apt_install PACKAGE when TOOL is not on PATH; dies when TOOL
#                       is still missing
#   private_apt DIR ARCH
#                       makes DIR an apt of its own for the Debian architecture ARCH
#                       (the guests' and SD cards' roots): DIR/apt.conf, to use with
#                       APT_CONFIG=DIR/apt.conf, keeps lists, downloads and package
#                       status under DIR and reads only DIR's sources;
#                       cross/install-deps.sh's `private-apt`, which its libcamera
#                       roots use too
#
# A script may define its own say/warn/die after sourcing this (e.g. with the time
# since it started).

PICAM_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PICAM_CI_CACHE="${PICAM_CI_CACHE:-/var/cache/picam-stream-ci}"
CI_NAME=${CI_NAME:-$(basename "${BASH_SOURCE[1]:-$0}" .sh)}

say() { printf '%s: %s\n' "$CI_NAME" "$*" >&2; }
warn() { printf '%s: WARNING: %s\n' "$CI_NAME" "$*" >&2; }
die() {
    printf '%s: ERROR: %s\n' "$CI_NAME" "$*" >&2
    exit "${CI_DIE_STATUS:-1}"
}

apt_install() {
    bash "$PICAM_REPO/cross/install-deps.sh" pkgs "$@"
}

need() {
    local tool=$1 pkg=$2
    command -v "$tool" >/dev/null 2>&1 && return 0
    say "installing $pkg (for $tool)"
    apt_install "$pkg" || die "could not install $pkg"
    command -v "$tool" >/dev/null 2>&1 || die "$pkg is installed but $tool is still not on PATH"
}

private_apt() {
    bash "$PICAM_REPO/cross/install-deps.sh" private-apt "$@"
}

# test_totals LOG: "PASSED FAILED" summed over a cargo test log's "test result:" lines
# (.ci/cross.sh writes a retry's as "retry result:", which are left out).
test_totals() {
    grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed; [0-9]+ failed' "$1" |
        awk '{p+=$4; f+=$6} END{printf "%d %d\n", p, f}'
}
