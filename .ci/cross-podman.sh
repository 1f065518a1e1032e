#!/usr/bin/env bash
# Run the real `cross` (0.2.5) against this crate with podman as the container
# engine, on a Debian 12 machine without a Docker engine or a container
# registry:
#   - installs podman (+ runc, uidmap, fuse-overlayfs, slirp4netns, netavark,
#     iptables) and debootstrap from the machine's apt sources;
#   - writes a containers.conf for podman (lower rlimits, runc) and uses it
#     through CONTAINERS_CONF, leaving /etc alone;
#   - makes the Dockerfiles' base image (debian:bookworm-slim) from debootstrap
#     + `podman import`, so the very cross/*.Dockerfile users build are built;
#   - installs cross with cargo, then runs `cross build --release` for each
#     target and `cross test --profile ci-test` (release without LTO, as
#     .ci/cross.sh builds its test executables) for the targets in
#     PICAM_CROSS_TEST_TARGETS;
#   - for the targets in PICAM_CROSS_LIBCAMERA_TARGETS, also `cross build --release
#     --features libcamera` (in the same target directory: only the crates the
#     feature changes are built again, and cargo keeps both binaries apart in deps/),
#     checks that the binary links libcamera.so and runs its `--list-cameras` under
#     qemu-user on Debian trixie's libraries.
#
#   .ci/cross-podman.sh [TARGET...]   default: all six Pi targets
#
# Environment: PICAM_CI_CACHE (see .ci/lib.sh), PICAM_SRC,
# PICAM_RUST_TOOLCHAIN, PICAM_CROSS_TEST_TARGETS (default: the aarch64 and
# armv7 gnu targets), PICAM_CROSS_LIBCAMERA_TARGETS (default: the aarch64 gnu
# target; the armv7 gnu target can be added).
set -euo pipefail

CROSS_VERSION=0.2.5
BASE_IMAGE=debian:bookworm-slim

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=.ci/lib.sh
. "$HERE/lib.sh"
REPO=$PICAM_REPO
mapfile -t ALL_TARGETS < <(grep -v '^#' "$REPO/cross/targets")
SRC="${PICAM_SRC:-$REPO}"
CACHE="$PICAM_CI_CACHE"
TEST_TARGETS="${PICAM_CROSS_TEST_TARGETS:-aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf}"
LIBCAMERA_TARGETS="${PICAM_CROSS_LIBCAMERA_TARGETS-aarch64-unknown-linux-gnu}"
T0=$SECONDS

# "N passed, M failed" summed over a cargo test log's result lines
passed_failed() {
    local p f
    read -r p f < <(test_totals "$1")
    printf '%d passed, %d failed' "$p" "$f"
}

# test_results LOG: "BINARY/TEST RESULT" for each test of a cargo test log, sorted;
# BINARY is the test binary's name without its hash, RESULT ok, ignored or FAILED (the
# last one, where .ci/cross.sh ran a failed test once more).
test_results() {
    awk '
        /^ *Running / {
            bin = "?"
            if (match($0, /deps\/[A-Za-z0-9_]+-[0-9a-f]+/)) {
                bin = substr($0, RSTART + 5, RLENGTH - 5); sub(/-[0-9a-f]+$/, "", bin)
            }
        }
        /^test .* \.\.\. (ok|ignored|FAILED)/ {
            r = $0; sub(/^.* \.\.\. /, "", r); sub(/[ ,].*$/, "", r)
            name = $0; sub(/^test /, "", name); sub(/ \.\.\. .*$/, "", name)
            last[bin "/" name] = r
        }
        END { for (k in last) print k, last[k] }' "$1" | LC_ALL=C sort
}

# compare_suites OURS DIRECT: the tests that both runs ran must have the same result;
# tests behind features that only one build has are counted. Prints a summary and
# fails on a difference.
compare_suites() {
    local a b both only_a only_b differ
    a=$(mktemp) b=$(mktemp)
    test_results "$1" > "$a"
    test_results "$2" > "$b"
    both=$(LC_ALL=C join "$a" "$b")
    differ=$(awk '$2 != $3' <<<"$both")
    only_a=$(LC_ALL=C join -v1 "$a" "$b" | wc -l)
    only_b=$(LC_ALL=C join -v2 "$a" "$b" | wc -l)
    rm -f "$a" "$b"
    if [ -z "$both" ]; then
        echo "no test in common"; return 1
    elif [ -n "$differ" ]; then
        echo "results differ: $(tr '\n' ';' <<<"$differ")"; return 1
    fi
    echo "$(wc -l <<<"$both") tests alike; $only_a only here, $only_b only there (features the builds do not share)"
}

if [ $# -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL_TARGETS[@]}"); fi
for t in "${TARGETS[@]}"; do
    case " ${ALL_TARGETS[*]} " in *" $t "*) ;; *) die "unknown target '$t'" ;; esac
done
for t in $LIBCAMERA_TARGETS; do
    case "$t" in
        aarch64-unknown-linux-gnu | armv7-unknown-linux-gnueabihf) ;;
        *) die "PICAM_CROSS_LIBCAMERA_TARGETS: '$t' has no libcamera in the cross images (the feature needs a glibc target with a libcamera built for it: aarch64-unknown-linux-gnu or armv7-unknown-linux-gnueabihf)" ;;
    esac
done
[ -f "$SRC/Cross.toml" ] || die "no Cross.toml in $SRC"

mkdir -p "$CACHE"/{podman,logs,tools,cargo-home}
export CARGO_HOME="$CACHE/cargo-home"
export PATH="$CACHE/tools/bin:${HOME}/.cargo/bin:$PATH"
export CARGO_TERM_COLOR=never

# ---------------------------------------------------------------- podman
t_setup=$SECONDS
bash "$REPO/cross/install-deps.sh" pkgs podman runc uidmap fuse-overlayfs slirp4netns \
    netavark iptables debootstrap ca-certificates
conf="$CACHE/podman/containers.conf"
cat >"$conf" <<'EOF'
# podman's default rlimits need CAP_SYS_RESOURCE and crun fails on hybrid
# cgroups on this kind of machine: lower limits, runc.
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF="$conf"
export CROSS_CONTAINER_ENGINE=podman
timeout 120 podman info >"$CACHE/logs/podman-info.log" 2>&1 || {
    tail -n 20 "$CACHE/logs/podman-info.log"; die "podman does not work here"; }

# ---------------------------------------------------------------- base image
if timeout 60 podman image exists "$BASE_IMAGE"; then
    say "base image $BASE_IMAGE present"
else
    mirror=$(bash "$REPO/cross/install-deps.sh" debian-mirror) || die "no Debian archive in the machine's apt sources"
    rootfs="$CACHE/podman/rootfs-bookworm"
    tarball="$CACHE/podman/bookworm-minbase.tar"
    if [ ! -s "$tarball" ]; then
        say "debootstrap bookworm (minbase) from the machine's mirror"
        rm -rf "$rootfs"
        timeout 900 debootstrap --variant=minbase bookworm "$rootfs" "$mirror" \
            >"$CACHE/logs/debootstrap.log" 2>&1 || { tail -n 20 "$CACHE/logs/debootstrap.log"; die "debootstrap failed"; }
        # the image gets the machine's Debian sources (bookworm, -updates,
        # -security), as the published debian image has them
        rm -f "$rootfs/etc/apt/sources.list"
        for f in /etc/apt/sources.list.d/*.sources; do
            [ -f "$f" ] && grep -qi 'debian' "$f" && grep -qi 'bookworm' "$f" && cp "$f" "$rootfs/etc/apt/sources.list.d/"
        done
        if ! ls "$rootfs"/etc/apt/sources.list.d/*.sources >/dev/null 2>&1; then
            grep -E '^deb .*bookworm' /etc/apt/sources.list >"$rootfs/etc/apt/sources.list" || true
        fi
        # and the machine's local trust anchors (a TLS-inspecting proxy's CA, say):
        # update-ca-certificates adds them when an image installs ca-certificates
        if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
            mkdir -p "$rootfs/usr/local/share/ca-certificates"
            cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
        fi
        rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
        tar -C "$rootfs" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
        rm -rf "$rootfs"
    fi
    say "importing $BASE_IMAGE"
    timeout 300 podman import "$tarball" "docker.io/library/$BASE_IMAGE" >/dev/null
    podman tag "docker.io/library/$BASE_IMAGE" "$BASE_IMAGE" 2>/dev/null || true
fi

# ---------------------------------------------------------------- cross + rust
if ! { command -v cross >/dev/null && [ "$(cross --version 2>/dev/null | awk 'NR==1{print $2}')" = "$CROSS_VERSION" ]; }; then
    say "installing cross $CROSS_VERSION"
    timeout 1200 cargo install --locked --quiet --root "$CACHE/tools" "cross@$CROSS_VERSION" ||
        die "cargo install cross@$CROSS_VERSION failed"
fi
TOOLCHAIN="${PICAM_RUST_TOOLCHAIN:-$(cd "$SRC" && rustup show active-toolchain | awk 'NR==1{print $1}')}"
# cross 0.2.5 misreads rustup 1.29's toolchain list unless the toolchain is pinned
RUST_VERSION=$(RUSTUP_TOOLCHAIN="$TOOLCHAIN" rustc --version | awk '{print $2}')
if rustup toolchain list | grep -q "^$RUST_VERSION-"; then
    export RUSTUP_TOOLCHAIN="$RUST_VERSION"
else
    export RUSTUP_TOOLCHAIN="$TOOLCHAIN"
fi
say "cross $(cross --version 2>/dev/null | awk 'NR==1{print $2}'), toolchain $RUSTUP_TOOLCHAIN"
t_setup=$((SECONDS - t_setup))

# ---------------------------------------------------------------- libcamera
# libcamera_build TARGET [ENV...]: `cross build --features libcamera`, then the
# binary must need libcamera.so and run `--list-cameras` under qemu-user on
# trixie's libcamera, its IPA modules and udev (the run-time root comes from
# cross/install-deps.sh, as the image's build root does).
libcamera_build() {
    local t=$1 arch qemu loader triple ts=$SECONDS
    shift
    case "$t" in
        aarch64-unknown-linux-gnu) arch=arm64 qemu=qemu-aarch64-static loader=ld-linux-aarch64.so.1 triple=aarch64-linux-gnu ;;
        armv7-unknown-linux-gnueabihf) arch=armhf qemu=qemu-arm-static loader=ld-linux-armhf.so.3 triple=arm-linux-gnueabihf ;;
    esac
    local log="$CACHE/logs/podman-$t-libcamera.log" dir="$CARGO_TARGET_DIR"
    say "$t: cross build --release --features libcamera"
    if ! (cd "$SRC" && env "$@" timeout 2400 cross build --release --features libcamera --target "$t") \
        >"$log" 2>&1; then
        tail -n 30 "$log"
        RES[$t]="${RES[$t]}, libcamera build FAILED"
        return 1
    fi
    local bin="$dir/$t/release/picam-stream" needed
    needed=$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
    say "$t: NEEDED $needed"
    case " $needed " in
        *" libcamera.so."*) ;;
        *) RES[$t]="${RES[$t]}, libcamera build does NOT link libcamera.so"; return 1 ;;
    esac
    local root="$CACHE/cross-libcamera/run-$arch" out
    LIBCAMERA_APT_DIR="$CACHE/libcamera/suites" bash "$REPO/cross/install-deps.sh" libcamera-run "$arch" "$root" ||
        { RES[$t]="${RES[$t]}, no trixie $arch run-time root"; return 1; }
    if ! out=$(LIBCAMERA_LOG_NO_COLOR=1 timeout 300 "$qemu" -L "$root" "$root/usr/lib/$loader" --library-path "$root/usr/lib/$triple" \
        "$bin" --list-cameras 2>&1); then
        printf '%s\n' "$out" | tail -n 20
        RES[$t]="${RES[$t]}, libcamera build does NOT run on trixie"
        return 1
    fi
    printf '%s\n' "$out" | sed 's/^/  | /'
    RES[$t]="${RES[$t]}, libcamera build ok ($(grep -o 'libcamera\.so\.[0-9.]*' <<<"$needed"), --list-cameras runs on trixie, $((SECONDS - ts))s)"
}

# ---------------------------------------------------------------- builds
export CARGO_TARGET_DIR="$CACHE/podman-target"
declare -A RES
FAILED=0
for t in "${TARGETS[@]}"; do
    ts=$SECONDS
    envs=()
    if timeout 600 rustup target add --toolchain "$RUSTUP_TOOLCHAIN" "$t" >"$CACHE/logs/podman-rustup-$t.log" 2>&1; then
        how="rustup std"
    else
        # rustup has no std for this target here: build it from rust-src.  cross
        # 0.2.5 only allows that on nightly, unless told the toolchain is custom.
        timeout 600 rustup component add --toolchain "$RUSTUP_TOOLCHAIN" rust-src >/dev/null 2>&1 ||
            die "$t: neither rust-std nor rust-src available from rustup"
        envs=(CROSS_BUILD_STD=1 CROSS_CUSTOM_TOOLCHAIN=1 RUSTC_BOOTSTRAP=1)
        how="std from source"
    fi
    say "=== $t ($how): cross build --release"
    if (cd "$SRC" && env "${envs[@]}" timeout 2400 cross build --release --target "$t") \
        >"$CACHE/logs/podman-$t-build.log" 2>&1; then
        RES[$t]="build ok"
    else
        tail -n 30 "$CACHE/logs/podman-$t-build.log"
        RES[$t]="build FAILED"; FAILED=1
        continue
    fi
    case " $TEST_TARGETS " in
        *" $t "*)
            say "$t: cross test --profile ci-test"
            if (cd "$SRC" && env "${envs[@]}" timeout 2400 cross test --profile ci-test --target "$t") \
                >"$CACHE/logs/podman-$t-test.log" 2>&1; then
                RES[$t]="${RES[$t]}, tests ok"
            else
                RES[$t]="${RES[$t]}, tests FAILED"; FAILED=1
            fi
            grep -E '^test result:|FAILED|panicked' "$CACHE/logs/podman-$t-test.log" || true
            ours=$(passed_failed "$CACHE/logs/podman-$t-test.log")
            RES[$t]="${RES[$t]} ($ours)"
            # The tests both ran must have the same results as in .ci/cross.sh's direct
            # build of this target (which may have more features), once that suite has
            # finished (its verdict in logs/suites/ names the log of its first CPU's run).
            direct=$(cut -f4 "$CACHE/logs/suites/$t" 2>/dev/null || true)
            if [ -z "$direct" ]; then
                say "$t: no finished .ci/cross.sh suite of this target to compare with"
            elif [ -s "$direct" ]; then
                theirs=$(passed_failed "$direct")
                if alike=$(compare_suites "$CACHE/logs/podman-$t-test.log" "$direct"); then
                    RES[$t]="${RES[$t]}, as in the direct build ($theirs): $alike"
                else
                    RES[$t]="${RES[$t]}, DIFFERS from the direct build ($theirs): $alike"; FAILED=1
                fi
            fi
            ;;
    esac
    case " $LIBCAMERA_TARGETS " in
        *" $t "*) libcamera_build "$t" "${envs[@]}" || FAILED=1 ;;
    esac
    RES[$t]="${RES[$t]} [$((SECONDS - ts))s]"
done

echo
for t in "${TARGETS[@]}"; do printf '%-32s %s\n' "$t" "${RES[$t]:-not run}"; done
say "setup ${t_setup}s, total $((SECONDS - T0))s; logs in $CACHE/logs/podman-*"
[ "$FAILED" = 0 ] || die "cross failed for some targets"
say "all cross builds OK"
