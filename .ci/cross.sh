#!/usr/bin/env bash
# Cross-build picam-stream for every Raspberry Pi target, run the whole test
# suite on every Pi CPU under qemu-user (one target per CPU: see SUITE_TARGETS below),
# run the libjpeg-turbo encoder tests on the 64- and 32-bit gnu targets, scan
# the ARMv6 binaries for ARMv7+ instructions and print the stripped size (and
# glibc need) per target.
#
#   .ci/cross.sh [TARGET...]      default: all six targets in cross/targets
#
# Each target's release binary is built once and is what its suite tests. The
# suites run in the background while the next target builds (a suite under
# qemu-user leaves most of a core idle), so targets with a suite are built first.
#
# Installs what it needs on a Debian 12 machine that has rustup's toolchain,
# gcc, python3 and apt (see cross/install-deps.sh); everything it downloads or
# builds lives under $PICAM_CI_CACHE (see .ci/lib.sh), so a second run is warm.
# The linker of the gcc-linked targets and their C compilers come from
# .cargo/config.toml (read from PICAM_SRC); the zig-linked ones are cargo-zigbuild's.
#
# Environment:
#   PICAM_CI_CACHE        cache directory (tools, cargo home, target dir, logs, dist)
#   PICAM_SRC             crate to build (default: the checkout this script is in)
#   PICAM_RUST_TOOLCHAIN  rustup toolchain (default: the active one)
#   PICAM_CROSS_STD       auto | build-std | debian  (how each target gets its std;
#                         auto = rustup's prebuilt std when rustup has it, else
#                         std built from rust-src; debian = Debian's rustc-web +
#                         rust-web-src for every target)
#   PICAM_ARMV6_GLIBC     glibc version the ARMv6 gnu build links against (2.31)
#   PICAM_CROSS_SKIP_TESTS=1  build, scan and size only
#   PICAM_CROSS_SUITE_TARGETS targets whose test suite runs (default: one per Pi
#                         CPU, see cpus_for); the others are built, scanned
#                         and sized
#   PICAM_CROSS_TURBOJPEG_TARGETS  targets whose libjpeg-turbo encoder tests run
#                         (default: the aarch64 and armv7 gnu targets)
#   PICAM_CROSS_FEATURES  cargo features to build with (e.g. tls)
#   PICAM_CROSS_TURBOJPEG_SHIP  targets whose binary (and suite) is built with the
#                         libjpeg-turbo encoder, feature `turbojpeg` (default: the
#                         aarch64 and armv7 gnu targets, which Debian's cross g++
#                         and CMake build it for; the ARMv6 and musl builds keep the
#                         pure Rust encoder, see docs/PACKAGING.md)
#   PICAM_CROSS_WEBRTC_SHIP  targets built with WebRTC and OpenSSL built from source,
#                         feature `webrtc-static` (default: the aarch64 gnu target,
#                         the arm64 .deb; perl and make build OpenSSL)
#   PICAM_CROSS_H264_SHIP targets also built with the software H.264 encoder and the
#                         loader of Cisco's OpenH264 library, features `h264` and
#                         `openh264-library` (default: the aarch64 gnu target, the
#                         arm64 .deb, for the Pi 5, which has no H.264 hardware)
#   PICAM_CROSS_TARGET_DIR  cargo target directory (default $PICAM_CI_CACHE/cross-target)
#   PICAM_TEST_TIMEOUT    seconds allowed for one test executable (default 1200)
#
# qemu-user runs each test executable directly (cargo lists them when it builds
# them); the integration tests start the server binary through the same
# command, which they read from PICAM_TEST_EXEC_WRAPPER.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=.ci/lib.sh
. "$HERE/lib.sh"
REPO=$PICAM_REPO
mapfile -t ALL_TARGETS < <(grep -v '^#' "$REPO/cross/targets")
SRC="${PICAM_SRC:-$REPO}"
CACHE=$PICAM_CI_CACHE
STD_MODE="${PICAM_CROSS_STD:-auto}"
ARMV6_GLIBC="${PICAM_ARMV6_GLIBC:-2.31}"
TEST_TIMEOUT="${PICAM_TEST_TIMEOUT:-1200}"
BUILD_TIMEOUT="${PICAM_BUILD_TIMEOUT:-1500}"
BIN_NAME=picam-stream

T0=$SECONDS

# ---------------------------------------------------------------- arguments
if [ $# -gt 0 ]; then
    case "$1" in -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;p}' "${BASH_SOURCE[0]}"; exit 0 ;; esac
    TARGETS=("$@")
else
    TARGETS=("${ALL_TARGETS[@]}")
fi
for t in "${TARGETS[@]}"; do
    case " ${ALL_TARGETS[*]} " in *" $t "*) ;; *) die "unknown target '$t' (known: ${ALL_TARGETS[*]})" ;; esac
done
case "$STD_MODE" in auto|build-std|debian) ;; *) die "PICAM_CROSS_STD must be auto, build-std or debian" ;; esac
[ -f "$SRC/Cargo.toml" ] || die "no Cargo.toml in $SRC"
[ -f "$SRC/.cargo/config.toml" ] || die "no .cargo/config.toml in $SRC (the gcc targets' linkers)"

# ------------------------------------------------------------ per-target facts
family() {
    case "$1" in
        aarch64-*) echo aarch64 ;;
        armv7-*) echo armv7 ;;
        arm-*) echo armv6 ;;
    esac
}
# gcc: Debian's cross gcc links against the cross libc; zig: cargo-zigbuild
# (ARMv6 start files and musl libc come from zig).
linker_kind() {
    case "$1" in
        aarch64-unknown-linux-gnu|armv7-unknown-linux-gnueabihf) echo gcc ;;
        *) echo zig ;;
    esac
}
qemu_for() { case "$(family "$1")" in aarch64) echo qemu-aarch64-static ;; *) echo qemu-arm-static ;; esac; }
# The CPU each target's suite runs on. Every Pi CPU gets the whole suite once:
# Cortex-A53 (Pi 3, Zero 2 W) and Cortex-A72 (Pi 4, 400) with the aarch64 gnu
# build, Cortex-A7 (Pi 2) with the armv7 gnu build, ARM1176 (Pi Zero, Pi 1)
# with the static ARMv6 musl build. The other three targets share their CPU's
# code generation with one of these and are built, scanned and sized. (The
# ARMv6 glibc build could only run as a Cortex-A7 here: the only armhf glibc
# on a Debian host is ARMv7/Thumb-2; the scanner proves its own code ARMv6.)
SUITE_TARGETS="${PICAM_CROSS_SUITE_TARGETS-aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf arm-unknown-linux-musleabihf}"
TURBOJPEG_TARGETS="${PICAM_CROSS_TURBOJPEG_TARGETS-aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf}"
TURBOJPEG_SHIP="${PICAM_CROSS_TURBOJPEG_SHIP-aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf}"
cpus_for() {
    case "$1" in
        aarch64-*) echo "cortex-a53 cortex-a72" ;;
        armv7-*) echo "cortex-a7" ;;
        arm-unknown-linux-gnueabihf) echo "cortex-a7" ;;
        arm-unknown-linux-musleabihf) echo "arm1176" ;;
    esac
}
has_suite() { case " $SUITE_TARGETS " in *" $1 "*) return 0 ;; esac; return 1; }
has_turbojpeg() { case " $TURBOJPEG_TARGETS " in *" $1 "*) return 0 ;; esac; return 1; }
ships_turbojpeg() { case " $TURBOJPEG_SHIP " in *" $1 "*) return 0 ;; esac; return 1; }
WEBRTC_SHIP="${PICAM_CROSS_WEBRTC_SHIP-aarch64-unknown-linux-gnu}"
H264_SHIP="${PICAM_CROSS_H264_SHIP-aarch64-unknown-linux-gnu}"
ships_webrtc() { case " $WEBRTC_SHIP " in *" $1 "*) return 0 ;; esac; return 1; }
ships_h264() { case " $H264_SHIP " in *" $1 "*) return 0 ;; esac; return 1; }
# the cargo features a target is built with: PICAM_CROSS_FEATURES, and turbojpeg,
# webrtc-static, h264 and openh264-library where they ship
features_for() {
    local f="${PICAM_CROSS_FEATURES:-}" add
    add_feature() { case ",${f// /,}," in *,"$1",*) ;; *) f="${f:+$f,}$1" ;; esac; }
    if ships_turbojpeg "$1"; then add_feature turbojpeg; fi
    if ships_webrtc "$1"; then add_feature webrtc-static; fi
    if ships_h264 "$1"; then
        for add in h264 openh264-library; do add_feature "$add"; done
    fi
    echo "$f"
}
sysroot_for() {
    case "$1" in
        aarch64-unknown-linux-gnu) echo /usr/aarch64-linux-gnu ;;
        *-gnueabihf) echo /usr/arm-linux-gnueabihf ;;
        *) echo "" ;;
    esac
}
gcc_for() { case "$(family "$1")" in aarch64) echo aarch64-linux-gnu ;; *) echo arm-linux-gnueabihf ;; esac; }
# what is passed to --target (cargo-zigbuild takes a glibc version suffix)
cargo_target_arg() {
    if [ "$1" = arm-unknown-linux-gnueabihf ]; then echo "$1.$ARMV6_GLIBC"; else echo "$1"; fi
}
upper() { echo "$1" | tr 'a-z.-' 'A-Z__'; }

# ---------------------------------------------------------------- install
mkdir -p "$CACHE"/{logs,dist,tools,cargo-home,xdg-cache}
export CARGO_HOME="$CACHE/cargo-home"
export CARGO_TARGET_DIR="${PICAM_CROSS_TARGET_DIR:-$CACHE/cross-target}"
export XDG_CACHE_HOME="$CACHE/xdg-cache"
export PIP_CACHE_DIR="$CACHE/pip-cache"
export ZIG_GLOBAL_CACHE_DIR="$CACHE/zig-cache"
export CARGO_TERM_COLOR=never
export CARGO_NET_RETRY=5
# keep the symbol table in release builds: the ARMv6 scan needs the ARM/Thumb
# mapping symbols, and zig's linker drops the whole symbol table when rustc asks
# for --strip-debug; the binaries shipped are stripped copies (dist/).
export CARGO_PROFILE_RELEASE_STRIP=none
# rustup's proxies live next to the original CARGO_HOME
export PATH="$CACHE/tools/bin:$CACHE/zig/bin:${HOME}/.cargo/bin:$PATH"

need_zig=0
families=()
for t in "${TARGETS[@]}"; do
    [ "$(linker_kind "$t")" = zig ] && need_zig=1
    f=$(family "$t")
    case " ${families[*]:-} " in *" $f "*) ;; *) families+=("$f") ;; esac
done
# the scanner self-test needs the armhf cross gcc
case " ${families[*]} " in *" armv6 "*) case " ${families[*]} " in *" armv7 "*) ;; *) families+=(armv7) ;; esac ;; esac
# the libjpeg-turbo encoder (its tests, and binaries that ship it) needs CMake
# and the target's g++
for t in "${TARGETS[@]}"; do
    if ships_turbojpeg "$t" ||
        { [ "${PICAM_CROSS_SKIP_TESTS:-0}" != 1 ] && has_suite "$t" && has_turbojpeg "$t"; }; then
        case " ${families[*]} " in *" turbojpeg-$(family "$t") "*) ;; *) families+=("turbojpeg-$(family "$t")") ;; esac
    fi
done
# OpenSSL built from source (webrtc-static) needs perl and make; OpenH264 (h264)
# the target's g++
for t in "${TARGETS[@]}"; do
    add_family() { case " ${families[*]} " in *" $1 "*) ;; *) families+=("$1") ;; esac; }
    if ships_webrtc "$t"; then add_family openssl; fi
    if ships_h264 "$t"; then add_family "cxx-$(family "$t")"; fi
done

t_install=$SECONDS
say "installing host packages for: ${families[*]}"
bash "$REPO/cross/install-deps.sh" apt "${families[@]}"
command -v rustup >/dev/null || die "rustup not found on PATH; install Rust with rustup first"
TOOLCHAIN="${PICAM_RUST_TOOLCHAIN:-$(cd "$SRC" && rustup show active-toolchain 2>/dev/null | awk 'NR==1{print $1}')}"
[ -n "$TOOLCHAIN" ] || die "cannot tell the active rustup toolchain; set PICAM_RUST_TOOLCHAIN"
export RUSTUP_TOOLCHAIN="$TOOLCHAIN"
say "rust toolchain: $TOOLCHAIN ($(rustc --version))"

# Decide where each target's std comes from.
declare -A STD_OF
rust_src_ok=""
have_rust_src() {
    if [ -z "$rust_src_ok" ]; then
        if timeout 600 rustup component add --toolchain "$TOOLCHAIN" rust-src >"$CACHE/logs/rustup-rust-src.log" 2>&1; then
            rust_src_ok=yes
        else
            rust_src_ok=no
            warn "rustup cannot provide rust-src for $TOOLCHAIN (see $CACHE/logs/rustup-rust-src.log)"
        fi
    fi
    [ "$rust_src_ok" = yes ]
}
need_debian=0
for t in "${TARGETS[@]}"; do
    if [ "$STD_MODE" = debian ]; then
        STD_OF[$t]=debian
        need_debian=1
        continue
    fi
    if [ "$STD_MODE" = auto ] &&
        timeout 600 rustup target add --toolchain "$TOOLCHAIN" "$t" >"$CACHE/logs/rustup-$t.log" 2>&1; then
        STD_OF[$t]=rustup
    elif have_rust_src; then
        STD_OF[$t]=build-std
    else
        STD_OF[$t]=debian
        need_debian=1
    fi
done
if [ "$need_debian" = 1 ]; then
    bash "$REPO/cross/install-deps.sh" debian-rust
fi
if [ "$need_zig" = 1 ]; then
    bash "$REPO/cross/install-deps.sh" zig "$CACHE/zig"
    bash "$REPO/cross/install-deps.sh" zigbuild "$CACHE/tools"
fi
t_install=$((SECONDS - t_install))
say "install step: ${t_install}s"

# ---------------------------------------------------------------- scanner self-test
SCAN=(python3 "$REPO/.ci/armv6-scan.py" --objdump arm-linux-gnueabihf-objdump)

expect_scan() { # expect_scan WANT(0|1) FILE LABEL
    local want=$1 file=$2 label=$3 rc=0
    "${SCAN[@]}" --max-print 3 "$file" >"$CACHE/logs/selftest-$label.log" 2>&1 || rc=$?
    if [ "$rc" != "$want" ]; then
        cat "$CACHE/logs/selftest-$label.log"
        warn "scanner self-test '$label': exit $rc, expected $want -- the ARMv6 scanner cannot be trusted"
        return 1
    fi
    say "scanner self-test '$label': $([ "$want" = 1 ] && echo flagged as expected || echo clean as expected)"
}

scanner_selftest() {
    local d="$CACHE/selftest" c="$REPO/.ci/armv6-selftest.c"
    rm -rf "$d"; mkdir -p "$d"
    arm-linux-gnueabihf-gcc -O2 -c -march=armv7-a -marm -mfpu=vfpv3-d16 "$c" -o "$d/v7-arm.o"
    arm-linux-gnueabihf-gcc -O2 -c -march=armv7-a -mthumb -mfpu=vfpv3-d16 "$c" -o "$d/v7-thumb2.o"
    arm-linux-gnueabihf-gcc -O2 -c -march=armv6 -marm -mfpu=vfp "$c" -o "$d/v6.o"
    # ARMv6 code linked with Debian's (ARMv7/Thumb-2) start files: the classic
    # "Illegal instruction" binary for a Pi Zero.
    arm-linux-gnueabihf-gcc -march=armv6 -marm -mfpu=vfp "$d/v6.o" -o "$d/v6-linked-with-v7-crt"
    arm-linux-gnueabihf-gcc -O2 -march=armv7-a -marm -mfpu=vfpv3-d16 "$c" -o "$d/v7-exe"
    local bad=0
    expect_scan 0 "$d/v6.o" armv6-object || bad=1
    expect_scan 1 "$d/v7-arm.o" armv7-arm-object || bad=1
    expect_scan 1 "$d/v7-thumb2.o" armv7-thumb2-object || bad=1
    expect_scan 1 "$d/v7-exe" armv7-linked-exe || bad=1
    expect_scan 1 "$d/v6-linked-with-v7-crt" armv6-code-armv7-crt || bad=1
    # a Rust binary built for ARMv7, when this run built one
    local r="$CARGO_TARGET_DIR/armv7-unknown-linux-gnueabihf/release/$BIN_NAME"
    if [ -f "$r" ]; then
        expect_scan 1 "$r" armv7-rust-binary || bad=1
    fi
    SELFTEST=$([ "$bad" = 0 ] && echo passed || echo FAILED)
    [ "$bad" = 0 ]
}

# ---------------------------------------------------------------- per target
declare -A RESULT SIZE GLIBC TIME TESTS
FAILED=0

# The gcc targets' linker and C/C++ compilers are in .cargo/config.toml.
cargo_env_for() { # prints nothing; exports target-specific variables
    local t=$1 T
    T=$(upper "$t")
    # std built from source has no self-contained musl start files: let zig
    # supply crt1.o and libc instead.
    case "$t" in
        *-musl*) [ "${STD_OF[$t]}" != rustup ] && export "CARGO_TARGET_${T}_RUSTFLAGS=-Clink-self-contained=no" ;;
    esac
    return 0
}

# run_cargo TARGET LOG SUBCOMMAND ARGS...  (SUBCOMMAND: build | test)
run_cargo() {
    local t=$1 logf=$2 sub=$3; shift 3
    local std=${STD_OF[$t]} cargo_cmd=() extra=() envs=()
    case "$std" in
        rustup) ;;
        build-std) extra+=(-Zbuild-std); envs+=(RUSTC_BOOTSTRAP=1) ;;
        debian)
            extra+=(-Zbuild-std)
            envs+=(RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc CARGO=/usr/bin/cargo)
            ;;
    esac
    if [ "$(linker_kind "$t")" = zig ]; then
        [ "$sub" = build ] && sub=zigbuild
        cargo_cmd=(cargo-zigbuild "$sub")
    elif [ "$std" = debian ]; then
        cargo_cmd=(/usr/bin/cargo "$sub")
    else
        cargo_cmd=(cargo "$sub")
    fi
    # The binary is built as it ships (--release); test executables in the ci-test
    # profile (release without LTO), and they test that shipped binary.
    local profile=(--release) features
    [ "$sub" = build ] || [ "$sub" = zigbuild ] || profile=(--profile ci-test)
    features=$(features_for "$t")
    env "${envs[@]}" timeout "$BUILD_TIMEOUT" "${cargo_cmd[@]}" "${profile[@]}" \
        --target "$(cargo_target_arg "$t")" ${features:+--features "$features"} \
        "${extra[@]}" "$@" 2>>"$logf"
}

test_executables() { # JSON messages on stdin -> test executables, one a line
    python3 -c '
import json, sys
for line in sys.stdin:
    line = line.strip()
    if not line.startswith("{"):
        continue
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("profile", {}).get("test") and m.get("executable"):
        print(m["executable"])
'
}

glibc_need() { # highest GLIBC_x.y symbol version a dynamic binary asks for
    local objdump=$1 bin=$2
    "$objdump" -T "$bin" 2>/dev/null | grep -o 'GLIBC_[0-9][0-9.]*' | sort -u -V | tail -n1
}

# run_suite TARGET BIN TESTS_FILE [FEATURE_TESTS_FILE]: the test executables under
# qemu-user on each of the target's CPUs, then (for the libjpeg-turbo targets) the
# encoder tests with that feature on the Pi 4's or Pi 2's CPU. Runs in the
# background: it writes its verdict to $SUITE_DIR/TARGET, and runs the executables
# itself (no cargo, so the next target's build is not held up by cargo's lock). One
# suite at a time: they take turns on a lock.
run_suite() {
    local t=$1 bin=$2 tests=$3 feature_tests=${4:-} qemu sysroot cpu wrapper ran="" status=ok first_log=""
    qemu=$(qemu_for "$t"); sysroot=$(sysroot_for "$t")
    exec 8>"$SUITE_DIR/.lock"
    flock 8
    local t0=$SECONDS
    for cpu in $(cpus_for "$t"); do
        wrapper="$qemu -cpu $cpu"
        [ -n "$sysroot" ] && wrapper="$wrapper -L $sysroot"
        local tl="$CACHE/logs/$t-test-$cpu.log.out" rc=0
        run_executables "$wrapper" "$bin" "$tests" >"$tl" 2>&1 || rc=$?
        [ -n "$first_log" ] || first_log=$tl
        local passed failed
        read -r passed failed < <(test_totals "$tl")
        if [ "$rc" != 0 ]; then
            [ "$rc" = 124 ] && echo "$t: a test executable on $cpu ran past ${TEST_TIMEOUT}s" >>"$tl"
            status="tests FAILED on $cpu (log: $tl)"
        fi
        local retried
        retried=$(grep -c '^retried ok: ' "$tl" || true)
        ran="$ran $cpu:${passed}p/${failed}f"
        [ "$retried" = 0 ] || ran="$ran(${retried}-passed-on-retry)"
    done
    if [ -n "$feature_tests" ]; then
        local fcpu=cortex-a7 fl="$CACHE/logs/$t-test-turbojpeg.log.out" rc=0
        [ "$(family "$t")" = aarch64 ] && fcpu=cortex-a72
        wrapper="$qemu -cpu $fcpu"
        [ -n "$sysroot" ] && wrapper="$wrapper -L $sysroot"
        run_executables "$wrapper" "$bin" "$feature_tests" encoder >"$fl" 2>&1 || rc=$?
        local fp
        fp=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed' "$fl" | awk '{s+=$4} END{print s+0}')
        [ "$rc" = 0 ] && [ "$fp" -gt 0 ] || status="turbojpeg encoder tests FAILED on $fcpu (log: $fl)"
        ran="$ran turbojpeg@$fcpu:${fp}p"
    fi
    # verdict, what ran, seconds, the first CPU's log (.ci/cross-podman.sh compares with it)
    printf '%s\t%s\t%s\t%s\n' "$status" "${ran# }" "$((SECONDS - t0))" "$first_log" >"$SUITE_DIR/$t.tmp"
    mv "$SUITE_DIR/$t.tmp" "$SUITE_DIR/$t"
}

# run_executables WRAPPER BIN TESTS_FILE [FILTER]: each test executable under the
# wrapper, from the crate's folder as cargo runs them; the integration tests start
# the shipped binary BIN through the same wrapper. Every executable runs, even
# after a failure; the exit status says whether all passed.
#
# Debian 12's qemu-user (7.2) now and then wedges a child that a threaded guest forks:
# it hangs on a futex before it reaches exec, so a server's `exec:` command never
# starts (seen in two runs out of several, on the A72 and the A7, each time in a
# different test). So the tests that failed are run once more, alone, and a line
# "retried ok: EXE TEST" says so when they pass then; a test that fails twice fails
# the suite. A time-out is not retried. Whatever a test leaves behind under this
# wrapper and binary (such a wedged child) is killed after each executable.
run_executables() {
    local wrapper=$1 bin=$2 list=$3 filter=${4:-} exe rc=0 erc out failed
    out=$(mktemp)
    # run_exe ARGS...: the executable with ARGS, its output in $out. The suites' lock
    # (fd 8) is not passed on: a process a test leaves behind must not hold it.
    run_exe() {
        # shellcheck disable=SC2086 # the wrapper is a command line
        (cd "$SRC" && PICAM_TEST_EXEC_WRAPPER="$wrapper" PICAM_TEST_BINARY="$bin" \
            timeout -k 10 "$TEST_TIMEOUT" $wrapper "$exe" "$@" 8>&-) >"$out" 2>&1
    }
    while IFS= read -r exe; do
        [ -n "$exe" ] || continue
        echo "     Running $exe under '$wrapper'"
        erc=0
        run_exe ${filter:+"$filter"} || erc=$?
        cat "$out"
        if [ "$erc" != 0 ] && [ "$erc" != 124 ]; then
            mapfile -t failed < <(sed -n 's/^test \(.*\) \.\.\. FAILED$/\1/p' "$out")
            if [ "${#failed[@]}" -gt 0 ] && [ "${#failed[@]}" -le 3 ]; then
                echo "     Running the ${#failed[@]} failed test(s) of $exe once more"
                erc=0
                run_exe --exact "${failed[@]}" || erc=$?
                sed 's/^test result: /retry result: /' "$out"
                if [ "$erc" = 0 ]; then
                    for f in "${failed[@]}"; do echo "retried ok: ${exe##*/} $f"; done
                fi
            fi
        fi
        [ "$erc" = 0 ] || rc=$erc
        pkill -KILL -f -- "$wrapper $bin " 2>/dev/null || true
    done <"$list"
    rm -f "$out"
    return "$rc"
}

do_target() {
    local t=$1 t_start=$SECONDS logf="$CACHE/logs/$1.log"
    : >"$logf"
    local std=${STD_OF[$t]} gccp strip objdump
    gccp=$(gcc_for "$t"); strip="$gccp-strip"; objdump="$gccp-objdump"
    say "=== $t (std: $std, linker: $(linker_kind "$t"), log: $logf)"
    cargo_env_for "$t"

    if ! (cd "$SRC" && run_cargo "$t" "$logf" build --bins >/dev/null); then
        tail -n 40 "$logf"; RESULT[$t]="build FAILED"; return 1
    fi
    local bin="$CARGO_TARGET_DIR/$t/release/$BIN_NAME"
    [ -f "$bin" ] || { RESULT[$t]="no binary at $bin"; return 1; }
    local suite=0 tests="$SUITE_DIR/$t.tests" feature_tests=""
    : >"$tests"
    if [ "${PICAM_CROSS_SKIP_TESTS:-0}" != 1 ] && has_suite "$t"; then
        suite=1
        if ! (cd "$SRC" && run_cargo "$t" "$logf" test --no-run --message-format=json | test_executables) >"$tests"; then
            tail -n 40 "$logf"; RESULT[$t]="test build FAILED"; return 1
        fi
        if has_turbojpeg "$t"; then
            feature_tests="$SUITE_DIR/$t.turbojpeg-tests"
            if ! (cd "$SRC" && run_cargo "$t" "$logf" test --no-run --features turbojpeg --lib \
                --message-format=json | test_executables) >"$feature_tests"; then
                tail -n 40 "$logf"; RESULT[$t]="turbojpeg test build FAILED"; return 1
            fi
        fi
        say "$t: built the binary and $(grep -c . "$tests" || true) test executable(s) in $((SECONDS - t_start))s"
    else
        say "$t: built the binary in $((SECONDS - t_start))s"
    fi

    local status=ok
    if [ "$(family "$t")" = armv6 ]; then
        local -a scan_files=("$bin")
        local f
        while IFS= read -r f; do [ -n "$f" ] && scan_files+=("$f"); done <"$tests"
        if ! "${SCAN[@]}" "${scan_files[@]}"; then
            status="ARMv6 scan FAILED"
        fi
    fi

    mkdir -p "$CACHE/dist/$t"
    "$strip" -o "$CACHE/dist/$t/$BIN_NAME" "$bin"
    SIZE[$t]=$(stat -c %s "$CACHE/dist/$t/$BIN_NAME")
    case "$t" in
        *-gnu|*-gnueabihf) GLIBC[$t]=$(glibc_need "$objdump" "$bin") ;;
        *) if "$objdump" -p "$bin" | grep -q NEEDED; then GLIBC[$t]="dynamic?!"; status="musl build is not static"; else GLIBC[$t]="static"; fi ;;
    esac
    RESULT[$t]=$status
    TIME[$t]=$((SECONDS - t_start))
    if [ "$suite" = 1 ]; then
        say "$t: suite started in the background ($(cpus_for "$t")${feature_tests:+; turbojpeg encoder tests})"
        run_suite "$t" "$bin" "$tests" "$feature_tests" &
        SUITE_PIDS+=("$!")
        TESTS[$t]="running"
    else
        TESTS[$t]=$([ "${PICAM_CROSS_SKIP_TESTS:-0}" = 1 ] && echo skipped || echo "built only")
    fi
    say "$t: $status; stripped size ${SIZE[$t]} bytes; glibc: ${GLIBC[$t]}; ${TIME[$t]}s"
    [ "$status" = ok ]
}

# Targets with a suite first, so that their suites run while the rest build.
ORDERED=()
for t in "${TARGETS[@]}"; do has_suite "$t" && ORDERED+=("$t"); done
for t in "${TARGETS[@]}"; do has_suite "$t" || ORDERED+=("$t"); done
SUITE_DIR="$CACHE/logs/suites"
rm -rf "$SUITE_DIR"; mkdir -p "$SUITE_DIR"
SUITE_PIDS=()
t_builds=$SECONDS
for t in "${ORDERED[@]}"; do
    do_target "$t" || FAILED=1
done
say "all builds done in $((SECONDS - t_builds))s; waiting for the suites"
for pid in "${SUITE_PIDS[@]}"; do wait "$pid" || true; done
for t in "${ORDERED[@]}"; do
    [ "${TESTS[$t]:-}" = running ] || continue
    if [ ! -s "$SUITE_DIR/$t" ]; then
        TESTS[$t]="no verdict"; RESULT[$t]="suite ended without a verdict"; FAILED=1; continue
    fi
    IFS=$'\t' read -r verdict ran took _ <"$SUITE_DIR/$t"
    TESTS[$t]="$ran (${took}s)"
    for f in "$CACHE/logs/$t-test-"*.log.out; do
        printf '\n--- %s\n' "$f"
        grep -E '^     Running|^test result:|FAILED|panicked|ran past' "$f" || true
    done
    if [ "$verdict" != ok ]; then
        RESULT[$t]=$verdict; FAILED=1
        for f in "$CACHE/logs/$t-test-"*.log.out; do tail -n 40 "$f"; done
    fi
done

SELFTEST="not run (no ARMv6 target)"
if [ "$(printf '%s\n' "${TARGETS[@]}" | grep -c '^arm-')" -gt 0 ]; then
    scanner_selftest || FAILED=1
fi

# ---------------------------------------------------------------- summary
echo
printf '%-32s %-10s %-10s %-12s %-14s %-6s %s\n' TARGET STD SIZE_B SIZE_MIB GLIBC TIME RESULT
for t in "${TARGETS[@]}"; do
    sz=${SIZE[$t]:-0}
    printf '%-32s %-10s %-10s %-12s %-14s %-6s %s [%s]\n' "$t" "${STD_OF[$t]}" "$sz" \
        "$(awk -v s="$sz" 'BEGIN{printf "%.2f", s/1048576}')" "${GLIBC[$t]:--}" "${TIME[$t]:--}s" \
        "${RESULT[$t]:-not run}" "${TESTS[$t]:-}"
    if [ "$sz" -gt $((2 * 1024 * 1024)) ]; then
        warn "$t: stripped binary is over 2 MiB"
    fi
done
say "ARMv6 scanner self-test: $SELFTEST"
say "stripped binaries: $CACHE/dist/<target>/$BIN_NAME"
say "total wall time: $((SECONDS - T0))s (install ${t_install}s)"
if [ "$FAILED" != 0 ]; then
    die "one or more targets failed (logs in $CACHE/logs)"
fi
say "all targets OK"
