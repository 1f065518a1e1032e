#!/usr/bin/env bash
# Cross-build picam-stream for every Raspberry Pi target, run the whole test
# suite of each under qemu-user, scan the ARMv6 binaries for ARMv7+
# instructions and print the stripped size (and glibc need) per target.
#
#   ci/cross.sh [TARGET...]      default: all six targets in cross/targets
#
# Installs what it needs on a Debian 12 machine that has rustup's toolchain,
# gcc, python3 and apt (see cross/install-deps.sh); everything it downloads or
# builds lives under $PICAM_CI_CACHE (default /var/cache/picam-stream-ci), so a
# second run is warm.
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
#   PICAM_CROSS_FEATURES  cargo features to build with (e.g. tls)
#   PICAM_CROSS_TARGET_DIR  cargo target directory (default $PICAM_CI_CACHE/cross-target)
#   PICAM_TEST_TIMEOUT    seconds allowed for one test-suite run (default 1200)
#
# qemu runs the test binaries through cargo's runner variable
# (CARGO_TARGET_<TRIPLE>_RUNNER); the integration tests start the server
# binary through the same command, which they read from PICAM_TEST_EXEC_WRAPPER.
set -euo pipefail


HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
mapfile -t ALL_TARGETS < <(grep -v '^#' "$REPO/cross/targets")
SRC="${PICAM_SRC:-$REPO}"
CACHE="${PICAM_CI_CACHE:-/var/cache/picam-stream-ci}"
STD_MODE="${PICAM_CROSS_STD:-auto}"
ARMV6_GLIBC="${PICAM_ARMV6_GLIBC:-2.31}"
TEST_TIMEOUT="${PICAM_TEST_TIMEOUT:-1200}"
BUILD_TIMEOUT="${PICAM_BUILD_TIMEOUT:-1500}"
BIN_NAME=picam-stream

T0=$SECONDS
log() { printf '[cross] %s\n' "$*"; }
warn() { printf '[cross] WARNING: %s\n' "$*" >&2; }
die() { printf '[cross] ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- arguments
if [ $# -gt 0 ]; then
    case "$1" in -h|--help) sed -n '2,30p' "${BASH_SOURCE[0]}"; exit 0 ;; esac
    TARGETS=("$@")
else
    TARGETS=("${ALL_TARGETS[@]}")
fi
for t in "${TARGETS[@]}"; do
    case " ${ALL_TARGETS[*]} " in *" $t "*) ;; *) die "unknown target '$t' (known: ${ALL_TARGETS[*]})" ;; esac
done
case "$STD_MODE" in auto|build-std|debian) ;; *) die "PICAM_CROSS_STD must be auto, build-std or debian" ;; esac
[ -f "$SRC/Cargo.toml" ] || die "no Cargo.toml in $SRC"

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
# CPUs the suite runs on.  The ARMv6 glibc build runs on cortex-a7: the only
# armhf glibc (loader and libc.so) on a Debian host is built for ARMv7/Thumb-2;
# its own code is proven ARMv6-clean by the scanner, and the same code runs as
# arm1176 in the static musl build.
cpus_for() {
    case "$1" in
        aarch64-*) echo "cortex-a53 cortex-a72" ;;
        armv7-*) echo "cortex-a7" ;;
        arm-unknown-linux-gnueabihf) echo "cortex-a7" ;;
        arm-unknown-linux-musleabihf) echo "arm1176" ;;
    esac
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

t_install=$SECONDS
log "installing host packages for: ${families[*]}"
bash "$REPO/cross/install-deps.sh" apt "${families[@]}"
command -v rustup >/dev/null || die "rustup not found on PATH; install Rust with rustup first"
TOOLCHAIN="${PICAM_RUST_TOOLCHAIN:-$(cd "$SRC" && rustup show active-toolchain 2>/dev/null | awk 'NR==1{print $1}')}"
[ -n "$TOOLCHAIN" ] || die "cannot tell the active rustup toolchain; set PICAM_RUST_TOOLCHAIN"
export RUSTUP_TOOLCHAIN="$TOOLCHAIN"
log "rust toolchain: $TOOLCHAIN ($(rustc --version))"

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
log "install step: ${t_install}s"

# ---------------------------------------------------------------- scanner self-test
SCAN=(python3 "$REPO/ci/armv6-scan.py" --objdump arm-linux-gnueabihf-objdump)

expect_scan() { # expect_scan WANT(0|1) FILE LABEL
    local want=$1 file=$2 label=$3 rc=0
    "${SCAN[@]}" --max-print 3 "$file" >"$CACHE/logs/selftest-$label.log" 2>&1 || rc=$?
    if [ "$rc" != "$want" ]; then
        cat "$CACHE/logs/selftest-$label.log"
        warn "scanner self-test '$label': exit $rc, expected $want -- the ARMv6 scanner cannot be trusted"
        return 1
    fi
    log "scanner self-test '$label': $([ "$want" = 1 ] && echo flagged as expected || echo clean as expected)"
}

scanner_selftest() {
    local d="$CACHE/selftest" c="$REPO/ci/armv6-selftest.c"
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

cargo_env_for() { # prints nothing; exports target-specific variables
    local t=$1 T
    T=$(upper "$t")
    local tu=${t//-/_}
    if [ "$(linker_kind "$t")" = gcc ]; then
        export "CARGO_TARGET_${T}_LINKER=$(gcc_for "$t")-gcc"
        export "CC_${tu}=$(gcc_for "$t")-gcc"
        export "AR_${tu}=$(gcc_for "$t")-ar"
    fi
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
    local profile=(--release)
    [ "$sub" = build ] || [ "$sub" = zigbuild ] || profile=(--profile ci-test)
    env "${envs[@]}" timeout "$BUILD_TIMEOUT" "${cargo_cmd[@]}" "${profile[@]}" \
        --target "$(cargo_target_arg "$t")" ${PICAM_CROSS_FEATURES:+--features "$PICAM_CROSS_FEATURES"} \
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

do_target() {
    local t=$1 t_start=$SECONDS logf="$CACHE/logs/$1.log"
    : >"$logf"
    local std=${STD_OF[$t]} gccp strip objdump qemu sysroot T
    gccp=$(gcc_for "$t"); strip="$gccp-strip"; objdump="$gccp-objdump"
    qemu=$(qemu_for "$t"); sysroot=$(sysroot_for "$t"); T=$(upper "$t")
    log "=== $t (std: $std, linker: $(linker_kind "$t"), log: $logf)"
    cargo_env_for "$t"

    if ! (cd "$SRC" && run_cargo "$t" "$logf" build --bins >/dev/null); then
        tail -n 40 "$logf"; RESULT[$t]="build FAILED"; return 1
    fi
    local bin="$CARGO_TARGET_DIR/$t/release/$BIN_NAME"
    [ -f "$bin" ] || { RESULT[$t]="no binary at $bin"; return 1; }
    local tests
    if ! tests=$(cd "$SRC" && run_cargo "$t" "$logf" test --no-run --message-format=json | test_executables); then
        tail -n 40 "$logf"; RESULT[$t]="test build FAILED"; return 1
    fi
    log "$t: built $(echo "$tests" | grep -c . || true) test executable(s) in $((SECONDS - t_start))s"

    local status=ok
    if [ "$(family "$t")" = armv6 ]; then
        local -a scan_files=("$bin")
        local f
        while IFS= read -r f; do [ -n "$f" ] && scan_files+=("$f"); done <<<"$tests"
        if ! "${SCAN[@]}" "${scan_files[@]}"; then
            status="ARMv6 scan FAILED"
        fi
    fi

    if [ "${PICAM_CROSS_SKIP_TESTS:-0}" != 1 ]; then
        local cpu wrapper ran=""
        for cpu in $(cpus_for "$t"); do
            wrapper="$qemu -cpu $cpu"
            [ -n "$sysroot" ] && wrapper="$wrapper -L $sysroot"
            log "$t: cargo test (ci-test profile, testing the release binary) under '$wrapper'"
            local tl="$CACHE/logs/$t-test-$cpu.log" trc=0
            : >"$tl"
            (
                cd "$SRC"
                export "CARGO_TARGET_${T}_RUNNER=$wrapper"
                export PICAM_TEST_EXEC_WRAPPER="$wrapper"
                export PICAM_TEST_BINARY="$bin"
                BUILD_TIMEOUT=$TEST_TIMEOUT run_cargo "$t" "$tl" test --no-fail-fast
            ) >"$tl.out" 2>&1 || trc=$?
            cat "$tl.out" "$tl" >"$tl.all" 2>/dev/null || true
            # show the suite's own output (results, failures)
            cat "$tl.out"
            grep -E '^(error|warning: unused)|test result:|FAILED|panicked' "$tl" || true
            local passed failed
            passed=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed' "$tl.out" | awk '{s+=$4} END{print s+0}')
            failed=$(grep -Eo '[0-9]+ failed' "$tl.out" | awk '{s+=$1} END{print s+0}')
            if [ "$trc" != 0 ]; then
                [ "$trc" = 124 ] && warn "$t: test run on $cpu timed out after ${TEST_TIMEOUT}s"
                tail -n 30 "$tl"
                status="tests FAILED on $cpu"
            fi
            ran="$ran $cpu:${passed}p/${failed}f"
        done
        TESTS[$t]="${ran# }"
    else
        TESTS[$t]="skipped"
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
    log "$t: $status; stripped size ${SIZE[$t]} bytes; glibc: ${GLIBC[$t]}; ${TIME[$t]}s"
    [ "$status" = ok ]
}

for t in "${TARGETS[@]}"; do
    do_target "$t" || FAILED=1
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
log "ARMv6 scanner self-test: $SELFTEST"
log "stripped binaries: $CACHE/dist/<target>/$BIN_NAME"
log "total wall time: $((SECONDS - T0))s (install ${t_install}s)"
if [ "$FAILED" != 0 ]; then
    die "one or more targets failed (logs in $CACHE/logs)"
fi
log "all targets OK"
