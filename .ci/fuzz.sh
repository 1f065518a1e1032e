#!/usr/bin/env bash
# Fuzz the code that reads untrusted bytes (the MJPEG splitter, the JPEG checks and
# Huffman-table insertion, the JPEG header cache, HTTP request heads as a connection
# reads them, request routing, the Authorization header, auth files, option parsing,
# received mDNS packets and the replies to them, the messages a source process sends
# over the --isolate pipe, the camera controls it describes and the answers it gives
# over its control socket, the stills it sends over its still socket, the camera listing rpicam-vid prints,
# camera-streamer's WebRTC signalling JSON, the SDP offers, answers and candidates a
# WebRTC viewer sends, through str0m as the WebRTC thread takes them) with cargo-fuzz and libFuzzer for a bounded time, and fail on
# any crash, printing the input that caused it and how to replay it.
#
#   .ci/fuzz.sh [TARGET...]            fuzz the targets (default: all of fuzz/fuzz_targets)
#   .ci/fuzz.sh reproduce TARGET FILE  run TARGET once on FILE (a crash input)
#
# The targets are in fuzz/ (a crate of its own, outside the main build); their seed
# corpora in fuzz/corpus/TARGET. Inputs libFuzzer finds are kept in the cache, so
# each run starts from what the previous ones reached.
#
# Environment:
#   PICAM_CI_CACHE         cache directory (see .ci/lib.sh);
#                          cargo-fuzz, the build and the grown corpora go in its fuzz/
#   PICAM_FUZZ_SECONDS     fuzzing time shared by all targets (default 180)
#   PICAM_FUZZ_SANITIZER   address (default) or none (about twice as fast)
#   PICAM_FUZZ_TOOLCHAIN   rustup toolchain to build with (default: the active one;
#                          a stable toolchain is used with RUSTC_BOOTSTRAP=1, since
#                          sanitizer coverage needs unstable compiler flags)
#   PICAM_FUZZ_RSS_MB      memory limit of one target, in MiB (default 2048)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=.ci/lib.sh
. "$HERE/lib.sh"
REPO=$PICAM_REPO
CACHE="$PICAM_CI_CACHE/fuzz"
SECONDS_TOTAL="${PICAM_FUZZ_SECONDS:-180}"
SANITIZER="${PICAM_FUZZ_SANITIZER:-address}"
RSS_MB="${PICAM_FUZZ_RSS_MB:-2048}"
CARGO_FUZZ_VERSION=0.13.2


case "${1:-}" in -h|--help) sed -n '2,26p' "${BASH_SOURCE[0]}"; exit 0 ;; esac
case "$SECONDS_TOTAL" in ''|*[!0-9]*) die "PICAM_FUZZ_SECONDS must be a whole number of seconds, not '$SECONDS_TOTAL'" ;; esac
case "$SANITIZER" in address|none) ;; *) die "PICAM_FUZZ_SANITIZER must be address or none, not '$SANITIZER'" ;; esac

mapfile -t ALL_TARGETS < <(cd "$REPO/fuzz/fuzz_targets" && ls -- *.rs | sed 's/\.rs$//')
known() { case " ${ALL_TARGETS[*]} " in *" $1 "*) return 0 ;; esac; die "unknown target '$1' (known: ${ALL_TARGETS[*]})"; }

# ------------------------------------------------------------------- toolchain
cargo=(cargo)
if [ -n "${PICAM_FUZZ_TOOLCHAIN:-}" ]; then
    cargo=(cargo "+$PICAM_FUZZ_TOOLCHAIN")
fi
rustc_version="$(cd "$REPO/fuzz" && "${cargo[@]}" --version >/dev/null && rustc ${PICAM_FUZZ_TOOLCHAIN:++$PICAM_FUZZ_TOOLCHAIN} --version)"
case "$rustc_version" in
    *nightly*) ;;
    *) export RUSTC_BOOTSTRAP=1 ;;
esac
host="$(rustc ${PICAM_FUZZ_TOOLCHAIN:++$PICAM_FUZZ_TOOLCHAIN} -vV | sed -n 's/^host: //p')"
say "$rustc_version on $host${RUSTC_BOOTSTRAP:+ (RUSTC_BOOTSTRAP=1)}, sanitizer: $SANITIZER"

# ------------------------------------------------------------------ cargo-fuzz
mkdir -p "$CACHE"
if ! "$CACHE/bin/cargo-fuzz" --version 2>/dev/null | grep -qF " $CARGO_FUZZ_VERSION"; then
    say "installing cargo-fuzz $CARGO_FUZZ_VERSION into $CACHE"
    timeout 1200 cargo install --locked --version "$CARGO_FUZZ_VERSION" --root "$CACHE" cargo-fuzz \
        > "$CACHE/install.log" 2>&1 || { tail -30 "$CACHE/install.log"; die "installing cargo-fuzz failed"; }
fi
export PATH="$CACHE/bin:$PATH"

# ----------------------------------------------------------------------- build
TARGET_DIR="$CACHE/target"
BIN_DIR="$TARGET_DIR/$host/release"
build() {
    say "building: $*"
    local started=$SECONDS
    # -O: the fuzz crate's release profile decides the checks (see fuzz/Cargo.toml).
    (cd "$REPO/fuzz" && timeout 1800 "${cargo[@]}" fuzz build -O -s "$SANITIZER" \
        --target-dir "$TARGET_DIR" "$@") > "$CACHE/build.log" 2>&1 \
        || { tail -40 "$CACHE/build.log"; die "building the fuzz targets failed"; }
    say "built in $((SECONDS - started)) s"
}

if [ "${1:-}" = reproduce ]; then
    [ $# -eq 3 ] || die "usage: .ci/fuzz.sh reproduce TARGET FILE"
    known "$2"
    [ -f "$3" ] || die "no such file: $3"
    build "$2"
    exec "$BIN_DIR/$2" -rss_limit_mb="$RSS_MB" "$3"
fi

if [ $# -gt 0 ]; then
    TARGETS=("$@")
else
    TARGETS=("${ALL_TARGETS[@]}")
fi
for t in "${TARGETS[@]}"; do known "$t"; done

(cd "$REPO/fuzz" && "${cargo[@]}" fmt --check) || die "fuzz/ is not formatted: run cargo fmt in fuzz/"
build

# ------------------------------------------------------------------------ runs
per_target=$(( SECONDS_TOTAL / ${#TARGETS[@]} ))
[ "$per_target" -ge 1 ] || per_target=1
say "fuzzing ${TARGETS[*]} for $per_target s each"
failed=()
summary=()
total_execs=0
for t in "${TARGETS[@]}"; do
    work="$CACHE/corpus/$t"
    artifacts="$CACHE/artifacts/$t"
    mkdir -p "$work" "$artifacts"
    # A corpus this large means something went wrong; start it again from the seeds.
    if [ "$(find "$work" -type f | wc -l)" -gt 20000 ]; then
        say "$t: resetting an oversized corpus"
        find "$work" -type f -delete
    fi
    find "$artifacts" -type f -delete
    out="$CACHE/$t.log"
    status=0
    # The first corpus directory receives new inputs; the seeds are only read.
    timeout $((per_target + 120)) "$BIN_DIR/$t" "$work" "$REPO/fuzz/corpus/$t" \
        -max_total_time="$per_target" -timeout=10 -rss_limit_mb="$RSS_MB" \
        -print_final_stats=1 -artifact_prefix="$artifacts/" > "$out" 2>&1 || status=$?
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out" | tail -1)"
    cov="$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$out" | tail -1)"
    total_execs=$((total_execs + ${execs:-0}))
    summary+=("$(printf '%-10s %12s execs %8s exec/s   %s' "$t" "${execs:-?}" "${rate:-?}" "${cov:-}")")
    crash="$(find "$artifacts" -type f | head -1)"
    if [ "$status" -ne 0 ] || [ -n "$crash" ]; then
        failed+=("$t")
        printf '\n[fuzz] %s FAILED (exit %s); full output in %s\n' "$t" "$status" "$out"
        if grep -q 'panicked at' "$out"; then
            grep -m1 -A4 'panicked at' "$out"
        else
            grep -m1 -A24 'ERROR: ' "$out" || tail -40 "$out"
        fi
        grep -m1 '^SUMMARY' "$out" || true
        if [ -n "$crash" ]; then
            mkdir -p "$REPO/fuzz/artifacts/$t"
            cp "$crash" "$REPO/fuzz/artifacts/$t/"
            saved="fuzz/artifacts/$t/$(basename "$crash")"
            printf '\n[fuzz] the input (%s bytes), copied to %s:\n' "$(stat -c %s "$crash")" "$saved"
            od -A d -t x1z -v "$crash" | head -64
            printf '\n[fuzz] base64: '
            base64 -w0 "$crash"
            printf '\n[fuzz] replay: bash .ci/fuzz.sh reproduce %s %s\n' "$t" "$saved"
            printf '[fuzz] then fix it, add a regression test to the module, and the input to fuzz/corpus/%s/\n' "$t"
        fi
    fi
done

printf '\n[fuzz] %-10s %12s        %8s\n' target executions rate
printf '[fuzz] %s\n' "${summary[@]}"
say "total: $total_execs executions in about $((per_target * ${#TARGETS[@]})) s"
[ ${#failed[@]} -eq 0 ] || die "crashes in: ${failed[*]}"
say "no crash"
