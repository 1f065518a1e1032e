#!/usr/bin/env bash
# What a frame costs a Pi Zero's CPU: the instructions the static ARMv6 build executes
# under qemu-user with `-cpu arm1176`, per frame published.
#
#   benches/armcount.sh [SECONDS] -- SERVER OPTIONS...
#   benches/armcount.sh 30 -- --source test --size 640x480 --fps 5
#   PICAM_RPICAM_VID=tests/fixtures/fake-rpicam-vid \
#       benches/armcount.sh 30 -- --source rpicam --size 640x480 --fps 5 --encoder software
#   cargo bench --bench splitter -- --write /tmp/640x480.mjpg --frames 150
#   PICAM_ARMCOUNT_STDIN=/tmp/640x480.mjpg \
#       benches/armcount.sh 20 -- --source stdin --size 640x480 --source-timeout 300
#
# The server runs twice for SECONDS (default 30): once with nobody watching, once with
# one viewer on /stream.mjpg. The difference between the two totals, divided by the
# frames published in the second run (less those of the first), is what a frame costs:
# the idle run takes out start-up, shutdown and the idle loop. Only user-space instructions count: copies the
# kernel makes (pipe reads, socket writes, ioctls) are not in the figure, nor is the
# work of other programs the server runs (a camera helper). As a rough guide, an
# ARM1176 at 1 GHz retires 0.5-0.8 instructions a cycle on this kind of code, so 1 M
# instructions is about 1.3-2 ms of a Pi Zero.
#
# With PICAM_ARMCOUNT_STDIN=FILE (an MJPEG stream, for `--source stdin`), the server's
# standard input is a pipe that stays open: nothing comes through it in the idle run,
# FILE does in the watched run (the input never ends: an ended one would have the server
# draw its no-signal picture). The figure is also given per byte of the frames
# published (their average size is FILE's size over the pictures in it): the
# pass-through path's cost. A long --source-timeout keeps the idle run from drawing
# the no-signal picture, a software encoding that would swamp the figure.
#
# Environment:
#   PICAM_ARM_BINARY        the ARMv6 binary (default: .ci/cross.sh's static musl build
#                           in $PICAM_CI_CACHE/dist/arm-unknown-linux-musleabihf/)
#   PICAM_ARMCOUNT_PLUGIN   a qemu TCG plugin that counts the guest instructions of all
#                           threads and, when the process exits, writes the total to
#                           the file named by its `out=FILE` argument (required)
#   PICAM_ARMCOUNT_STDIN    an MJPEG file fed on standard input in the watched run
#   PICAM_ARMCOUNT_PROFILE  N: also print the N functions that cost the most per frame
#                           (watched run less idle run); needs the plugin
#                           benches/armprofile.sh builds, and a binary with symbols
#   PICAM_ARMCOUNT_SYMBOLS  the binary whose symbols name the functions (default: the
#                           unstripped build in $PICAM_CI_CACHE/cross-target/...)
#   PICAM_CI_CACHE          see .ci/lib.sh
set -euo pipefail
# shellcheck source=.ci/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../.ci/lib.sh"

seconds=30
if [ "${1:-}" != "--" ] && [ -n "${1:-}" ]; then
    seconds=$1
    shift
fi
[ "${1:-}" = "--" ] && shift
cache=$PICAM_CI_CACHE
binary=${PICAM_ARM_BINARY:-$cache/dist/arm-unknown-linux-musleabihf/picam-stream}
plugin=${PICAM_ARMCOUNT_PLUGIN:-}
stdin_file=${PICAM_ARMCOUNT_STDIN:-}
profile=${PICAM_ARMCOUNT_PROFILE:-}
symbols=${PICAM_ARMCOUNT_SYMBOLS:-$cache/cross-target/arm-unknown-linux-musleabihf/release/picam-stream}

[ -x "$binary" ] || die "no ARMv6 binary at $binary (build it with .ci/cross.sh or set PICAM_ARM_BINARY)"
[ -n "$plugin" ] && [ -r "$plugin" ] || die "set PICAM_ARMCOUNT_PLUGIN to an instruction-counting qemu plugin"
command -v qemu-arm >/dev/null || die "qemu-arm is missing (Debian: apt install qemu-user)"
command -v curl >/dev/null || die "curl is missing"
[ -z "$stdin_file" ] || [ -r "$stdin_file" ] || die "cannot read PICAM_ARMCOUNT_STDIN=$stdin_file"
if [ -n "$profile" ]; then
    [ -r "$symbols" ] || die "no binary with symbols at $symbols (set PICAM_ARMCOUNT_SYMBOLS)"
    command -v arm-linux-gnueabihf-nm >/dev/null || die "arm-linux-gnueabihf-nm is missing (Debian: binutils-arm-linux-gnueabihf)"
fi

work=$(mktemp -d)
server=""
feeder=""
trap '[ -n "$server" ] && kill -TERM "$server" 2>/dev/null; [ -n "$feeder" ] && kill "$feeder" 2>/dev/null; rm -rf "$work"' EXIT
# The server's standard input with PICAM_ARMCOUNT_STDIN: a pipe this script holds open.
mkfifo "$work/input"
exec 3<>"$work/input"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# run NAME WATCH: one run; prints "TOTAL FRAMES"
run() {
    local name=$1 watch=$2 port viewer="" status frames
    shift 2
    port=$(free_port)
    local input=/dev/null
    [ -n "$stdin_file" ] && input=$work/input
    local blocks=""
    [ -n "$profile" ] && blocks=",blocks=$work/$name.blocks"
    qemu-arm -cpu arm1176 -plugin "$plugin,out=$work/$name.count$blocks" "$binary" \
        --listen "127.0.0.1:$port" --no-mdns "$@" <"$input" 3>&- 2>"$work/$name.log" &
    server=$!
    if [ -n "$stdin_file" ] && [ "$watch" = yes ]; then
        cat "$stdin_file" >"$work/input" &
        feeder=$!
    fi
    for _ in $(seq 100); do
        curl -s -o /dev/null "http://127.0.0.1:$port/status" && break
        sleep 0.2
    done
    if [ "$watch" = yes ]; then
        curl -s -o /dev/null --max-time "$seconds" "http://127.0.0.1:$port/stream.mjpg" &
        viewer=$!
    fi
    sleep "$seconds"
    status=$(curl -s "http://127.0.0.1:$port/status")
    kill -TERM "$server"
    wait "$server" || true
    server=""
    if [ -n "$feeder" ]; then
        kill "$feeder" 2>/dev/null || true
        wait "$feeder" || true
        feeder=""
    fi
    [ -n "$viewer" ] && { wait "$viewer" || true; }
    frames=$(printf '%s' "$status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["frames_captured"])')
    [ -s "$work/$name.count" ] || { cat "$work/$name.log" >&2; die "the $name run wrote no count"; }
    printf '%s %s\n' "$(tr -dc 0-9 <"$work/$name.count")" "$frames"
}

shift_args=("$@")
read -r idle idle_frames < <(run idle no "${shift_args[@]}")
read -r watched frames < <(run watched yes "${shift_args[@]}")
[ "$frames" -gt 0 ] || die "no frame was published while watched"
[ -n "$profile" ] && arm-linux-gnueabihf-nm -n -C --defined-only "$symbols" >"$work/symbols"
python3 - "$idle" "$idle_frames" "$watched" "$frames" "$seconds" "${shift_args[*]}" "$stdin_file" "$profile" "$work" <<'EOF'
import bisect, os, sys
idle, idle_frames, watched, frames, seconds, options, stdin_file, profile, work = sys.argv[1:]
idle, idle_frames, watched, frames = int(idle), int(idle_frames), int(watched), int(frames)
print(f"ARM1176 user-space instructions, {seconds} s runs, options: {options}")
print(f"  idle run:    {idle / 1e6:10.1f} M ({idle_frames} frames)")
print(f"  watched run: {watched / 1e6:10.1f} M ({frames} frames)")
if frames > idle_frames + frames // 10:
    per_frame = (watched - idle) / (frames - idle_frames)
    print(f"  per frame:   {per_frame / 1e6:10.2f} M")
    if stdin_file:
        data = open(stdin_file, "rb").read()
        pictures = data.count(b"\xff\xd8\xff")
        size = len(data) / max(pictures, 1)
        print(f"  per byte:    {per_frame / size:10.2f} ({pictures} pictures in {stdin_file}, {size:.0f} bytes each)")
else:
    # The source ran as much with nobody watching (--always-on, stdin): the idle run
    # cannot take out start-up; the figure includes it.
    print(f"  per frame:   {watched / frames / 1e6:10.2f} M (start-up included: the source ran in the idle run too)")
if profile:
    # Functions by start address (code symbols only, not ARM mapping symbols such as $a).
    starts, names = [], []
    for line in open(os.path.join(work, "symbols")):
        parts = line.rstrip("\n").split(" ", 2)
        if len(parts) == 3 and parts[1] in "tTwW" and not parts[2].startswith("$"):
            starts.append(int(parts[0], 16))
            names.append(parts[2])
    def by_function(name):
        cost = {}
        for line in open(os.path.join(work, name + ".blocks")):
            address, insns = line.split()
            i = bisect.bisect_right(starts, int(address, 16)) - 1
            function = names[i] if i >= 0 else "?"
            cost[function] = cost.get(function, 0) + int(insns)
        return cost
    quiet, busy = by_function("idle"), by_function("watched")
    counted = max(frames - idle_frames, 1)
    rows = sorted(((busy.get(f, 0) - quiet.get(f, 0)) / counted, f) for f in set(busy) | set(quiet))
    rows.reverse()
    size = None
    if stdin_file:
        data = open(stdin_file, "rb").read()
        size = len(data) / max(data.count(b"\xff\xd8\xff"), 1)
    print(f"  costliest functions per frame (watched run less idle run, over {counted} frames):")
    for cost, function in rows[: int(profile)]:
        per_byte = f" {cost / size:6.3f}/byte" if size else ""
        print(f"    {cost:10.0f}{per_byte}  {function[:110]}")
EOF
