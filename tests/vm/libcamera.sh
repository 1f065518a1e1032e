#!/usr/bin/env bash
# The libcamera source end to end in the VM rig: Debian's kernel with the vimc virtual
# camera, a Debian trixie userland (libcamera 0.4, its IPA modules and systemd-udevd,
# from .ci/libcamera.sh) that the guest chroots into over the shared directory, and the
# x86_64 binary built with the libcamera feature.
#
#   PICAM_LIBCAMERA_BIN=path/to/picam-stream tests/vm/libcamera.sh
#
# The host checks, through the forwarded port:
#   * the server starts before the camera exists (vimc not loaded yet): a viewer gets
#     the "no signal" picture at the asked size and /status has source_error;
#   * once vimc is loaded the server finds the camera by itself (retrying with
#     back-off) and streams `--source libcamera`: snapshots and stream parts decode
#     (djpeg) to exactly the asked size;
#   * the camera vanishes mid-stream (vimc's driver unbound): the server lives on,
#     shows the no-signal picture with source_error, and capture resumes by itself
#     once the driver is bound again. (libcamera 0.4 does not mark the running camera
#     disconnected and aborts its process when the camera is stopped; the source runs
#     in a process of its own, so only that process ends and is started again);
#   * after the server stops, --list-cameras names vimc's sensor, and --rotation 180,
#     which vimc's sensor cannot do, is refused naming what it can do;
#   * a server with the source in its own process (--isolate off) lists the camera's
#     controls (vimc's brightness, contrast, saturation through libcamera), takes a
#     brightness change, and the pictures after it are brighter;
#   * that server takes a full-resolution still mid-stream (/snapshot.jpg?full=1): it
#     decodes at vimc's largest size, keeps the brightness set before it, and the
#     stream goes on afterwards; the pause the server logged is printed;
# and prints capture-to-publish latency (from the server's debug log), encoding time
# and CPU time per frame with the software encoder.
# Ends with "libcamera-vm: N passed, N failed".
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CI_NAME=libcamera-vm
# shellcheck source=.ci/lib.sh
. "$HERE/../../.ci/lib.sh"
REPO=$PICAM_REPO
CACHE="$PICAM_CI_CACHE/libcamera"
BIN="${PICAM_LIBCAMERA_BIN:-$CACHE/target/x86_64-unknown-linux-gnu/release/picam-stream}"
WIDTH=${PICAM_VM_WIDTH:-640}
HEIGHT=${PICAM_VM_HEIGHT:-480}
FPS=${PICAM_VM_FPS:-10}
MEASURE_SECONDS=${PICAM_VM_MEASURE_SECONDS:-20}

# the report (ok / NOT OK lines) on stdout
report() { printf '%s: %s\n' "$CI_NAME" "$*"; }
PASS=0 FAIL=0
ok() { PASS=$((PASS + 1)); report "ok: $*"; }
nok() { FAIL=$((FAIL + 1)); report "NOT OK: $*"; }

[ -x "$BIN" ] || die "no binary at $BIN (build it with .ci/libcamera.sh or set PICAM_LIBCAMERA_BIN)"
need djpeg libjpeg-turbo-progs
need curl curl

ROOT=${PICAM_LIBCAMERA_ROOT:-$(bash "$REPO/.ci/libcamera.sh" root | tail -n 1)}
[ -x "$ROOT/usr/lib/systemd/systemd-udevd" ] || { say "the trixie root $ROOT is incomplete"; exit 1; }

# The share: a hard-linked copy of the root (same file system, so it is instant and
# takes no space), the binary inside it, and the guest script beside it.
mkdir -p "$CACHE/runs"
SHARE=$(mktemp -d "$CACHE/runs/run.XXXXXX")
VM=''
cleanup() {
    : >"$SHARE/done" 2>/dev/null || true
    mkdir -p "$CACHE/logs"
    cp "$SHARE/server.log" "$CACHE/logs/vm-server.log" 2>/dev/null || true
    cp "$SHARE/controls.log" "$CACHE/logs/vm-controls.log" 2>/dev/null || true
    cp "$SHARE/rig.err" "$CACHE/logs/vm-rig.err" 2>/dev/null || true
    if [ -n "$VM" ]; then
        for _ in $(seq 100); do kill -0 "$VM" 2>/dev/null || break; sleep 0.2; done
        kill "$VM" 2>/dev/null || true
        wait "$VM" 2>/dev/null || true
    fi
    rm -rf "$SHARE"
}
trap cleanup EXIT
cp -al "$ROOT" "$SHARE/root"
install -D -m 755 "$BIN" "$SHARE/root/usr/local/bin/picam-stream"

cat >"$SHARE/guest.sh" <<EOF
#!/bin/sh
# Runs in the rig's initramfs; the trixie root is /host/root.
R=/host/root
mkdir -p \$R/proc \$R/sys \$R/dev \$R/run \$R/tmp \$R/etc
mount -t proc proc \$R/proc
mount -t sysfs sysfs \$R/sys
mount -o bind /dev \$R/dev
mount -t tmpfs tmpfs \$R/run
mount -t tmpfs tmpfs \$R/tmp
[ -e \$R/etc/passwd ] || cp /etc/passwd /etc/group \$R/etc/
# udevadm refuses to work in a chroot unless told the chroot is the system.
export SYSTEMD_IGNORE_CHROOT=1
in_root() { chroot \$R "\$@"; }
in_root /usr/lib/systemd/systemd-udevd --daemon > /host/udevd.log 2>&1
in_root udevadm trigger --action=add > /dev/null 2>&1
in_root udevadm settle --timeout=60
RUST_LOG=debug chroot \$R picam-stream --listen 0.0.0.0:8000 --source libcamera \
    --size ${WIDTH}x${HEIGHT} --fps $FPS --quality 80 > /host/server.log 2>&1 &
server=\$!
echo \$server > /host/server.pid
# CPU ticks of the server, its source process and any that ended (reaped).
cpu() {
    awk -v p=\$server '\$1 == p { t += \$14 + \$15 + \$16 + \$17 } \$4 == p { t += \$14 + \$15 } END { print t + 0 }' \\
        /proc/[0-9]*/stat 2>/dev/null
}
while [ ! -e /host/done ]; do
    for m in start end; do
        if [ -e /host/measure-\$m ] && [ ! -e /host/cpu-\$m ]; then
            echo "\$(cpu) \$(cut -d' ' -f1 /proc/uptime)" > /host/cpu-\$m
        fi
    done
    if [ -e /host/unplug ]; then
        rm /host/unplug
        echo vimc.0 > /sys/bus/platform/drivers/vimc/unbind && touch /host/unplugged
    fi
    if [ -e /host/replug ]; then
        rm /host/replug
        echo vimc.0 > /sys/bus/platform/drivers/vimc/bind && in_root udevadm settle --timeout=60
        touch /host/replugged
    fi
    if [ -e /host/plug ]; then
        rm /host/plug
        modprobe vimc && in_root udevadm settle --timeout=60
        touch /host/plugged
    fi
    sleep 0.2
done
kill -TERM \$server
wait \$server
echo "server exit \$?" >> /host/server.log
# With the camera free again (libcamera lets one process at a time use it): the list,
# and an orientation vimc cannot give.
in_root picam-stream --list-cameras > /host/cameras.txt 2> /host/cameras.err
echo \$? > /host/cameras.rc
timeout 120 chroot \$R picam-stream --listen 127.0.0.1:8001 --source libcamera \
    --size ${WIDTH}x${HEIGHT} --rotation 180 > /host/rotation.out 2>&1
echo \$? > /host/rotation.rc
# The camera's controls, with the source in the server's own process.
chroot \$R picam-stream --listen 0.0.0.0:8000 --source libcamera --isolate off \
    --always-on --size ${WIDTH}x${HEIGHT} --fps $FPS > /host/controls.log 2>&1 &
controls=\$!
while [ ! -e /host/controls-done ]; do sleep 0.2; done
kill -TERM \$controls
wait \$controls
echo "server exit \$?" >> /host/controls.log
EOF

port=$((20000 + RANDOM % 20000))
base=http://127.0.0.1:$port
t0=$SECONDS
say "booting the VM (vimc, trixie userland from $ROOT)"
"$REPO/tests/vm/rig.sh" run --modules "" --extra-modules "vimc" --share "$SHARE" --forward "$port:8000" --timeout 900 \
    --mem 1536 -- "sh /host/guest.sh" >"$SHARE/rig.out" 2>"$SHARE/rig.err" &
VM=$!

status() { curl -fsS -m 5 "$base/status" 2>/dev/null || true; }
field() { sed -n "s/.*\"$1\":\\(\"[^\"]*\"\\|[^,}]*\\).*/\\1/p" <<<"$2" | tr -d '"'; }
# Waits up to $1 s for /status to satisfy the grep pattern $2; prints the last status.
wait_status() {
    local deadline=$((SECONDS + $1)) s=''
    while [ "$SECONDS" -lt "$deadline" ] && kill -0 "$VM" 2>/dev/null; do
        s=$(status)
        if [ -n "$s" ] && grep -qE "$2" <<<"$s"; then printf '%s' "$s"; return 0; fi
        sleep 0.5
    done
    printf '%s' "$s"
    return 1
}
wait_file() {
    local deadline=$((SECONDS + $2))
    while [ ! -e "$1" ] && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
    [ -e "$1" ]
}
# True once /status has no problem (within $1 s) and then counts two more frames.
capture_resumes() {
    local s f2 f3 deadline
    s=$(wait_status "$1" '"source_error":null') || return 1
    f2=$(field frames_captured "$s")
    deadline=$((SECONDS + 90))
    while [ "$SECONDS" -lt "$deadline" ]; do
        f3=$(field frames_captured "$(status)")
        if [ -n "$f3" ] && [ "$f3" -ge $((f2 + 2)) ]; then return 0; fi
        sleep 0.5
    done
    return 1
}
# Decodes a JPEG fully and prints its size as WxH.
jpeg_size() { { djpeg -pnm "$1" 2>/dev/null || true; } | head -c 64 | tr '\n' ' ' | awk '{ print $2 "x" $3 }'; }

if s=$(wait_status 400 '"capturing":(true|false)'); then
    ok "the server in the VM answers after $((SECONDS - t0)) s"
else
    nok "the server in the VM never answered"
    cat "$SHARE/rig.err" >&2 || true
    exit 1
fi
src=$(field source "$s")
say "source: $src"

# No camera yet: a viewer gets "no signal" and /status says why.
curl -sS -N -m 900 "$base/stream.mjpg" -o "$SHARE/stream.mjpg" 2>/dev/null &
viewer=$!
if s=$(wait_status 120 '"source_error":"'); then
    ok "no camera yet: source_error: $(field source_error "$s")"
    curl -fsS -m 10 -o "$SHARE/nosignal.jpg" "$base/snapshot.jpg" || true
    size=$(jpeg_size "$SHARE/nosignal.jpg")
    if [ "$size" = "${WIDTH}x${HEIGHT}" ]; then ok "the no-signal picture decodes at $size"; else nok "no-signal picture size '$size'"; fi
else
    nok "no source_error without a camera (status: $s)"
fi

# The camera appears; the server finds it by itself.
: >"$SHARE/plug"
wait_file "$SHARE/plugged" 120 || nok "the guest did not load vimc"
t=$SECONDS
if capture_resumes 120; then
    ok "capture began $((SECONDS - t)) s after the camera appeared"
else
    nok "capture did not begin after the camera appeared (status: $(status))"
fi
s=$(status)
# (The server answers 503 when no frame comes within its wait; starting libcamera in
# the emulated VM can take longer, so ask again for a while.)
t=$SECONDS
rm -f "$SHARE/snap.jpg"
while [ $((SECONDS - t)) -lt 180 ]; do
    curl -fsS -m 60 -o "$SHARE/snap.jpg" "$base/snapshot.jpg" 2>/dev/null && break
    rm -f "$SHARE/snap.jpg"
    sleep 1
done
size=$(jpeg_size "$SHARE/snap.jpg")
if [ "$size" = "${WIDTH}x${HEIGHT}" ]; then
    ok "snapshot decodes at ${size} ($(stat -c %s "$SHARE/snap.jpg") bytes, first one after $((SECONDS - t)) s)"
else
    nok "snapshot size '$size', expected ${WIDTH}x${HEIGHT}"
fi

wait_status 60 '"capturing":true' >/dev/null || nok "not capturing with a viewer"
sleep 3
f0=$(field frames_captured "$(status)")
: >"$SHARE/measure-start"
wait_file "$SHARE/cpu-start" 10 || true
sleep "$MEASURE_SECONDS"
f1=$(field frames_captured "$(status)")
: >"$SHARE/measure-end"
wait_file "$SHARE/cpu-end" 10 || true
read -r c0 u0 <"$SHARE/cpu-start" || true
read -r c1 u1 <"$SHARE/cpu-end" || true
frames=$((f1 - f0))
if [ "$frames" -gt 0 ]; then
    ok "$frames frames published in ${MEASURE_SECONDS} s with a viewer"
    awk -v f="$frames" -v c0="$c0" -v c1="$c1" -v u0="$u0" -v u1="$u1" 'BEGIN {
        cpu = (c1 - c0) / 100; wall = u1 - u0
        printf "libcamera-vm: measured: %.2f fps; server CPU %.2f s in %.1f s (%.0f %% of the one vCPU); %.1f ms CPU per frame\n",
            f / wall, cpu, wall, 100 * cpu / wall, 1000 * cpu / f }'
else
    nok "no frames published while a viewer watched"
fi
grep 'capture to publish' "$SHARE/server.log" | tail -n 3 | sed 's/.*libcamera: /libcamera-vm: measured: /' || true

# The camera vanishes mid-stream, and comes back.
t=$SECONDS
: >"$SHARE/unplug"
wait_file "$SHARE/unplugged" 60 || nok "the guest did not unbind vimc"
if s=$(wait_status 180 '"source_error":"'); then
    ok "camera unbound mid-stream: no signal after $((SECONDS - t)) s, source_error: $(field source_error "$s")"
else
    nok "no source_error after the camera vanished (status: $s)"
fi
: >"$SHARE/replug"
wait_file "$SHARE/replugged" 120 || nok "the guest did not bind vimc again"
t=$SECONDS
if capture_resumes 240; then
    ok "capture resumed $((SECONDS - t)) s after the camera came back (restarts: $(field source_restarts "$(status)"))"
else
    nok "capture did not resume after the camera came back (status: $(status))"
fi
grep -E 'source process [0-9]+ (was|exited)|the camera was disconnected|no frame for' "$SHARE/server.log" |
    sed 's/^/libcamera-vm:   log: /' | head -n 6 || true

kill "$viewer" 2>/dev/null || true
wait "$viewer" 2>/dev/null || true
# The stream's parts: each one decodes at the asked size (no-signal ones included).
python3 - "$SHARE/stream.mjpg" "$SHARE/part" <<'PY' >"$SHARE/parts.txt"
import sys
data = open(sys.argv[1], 'rb').read()
n = 0
pos = 0
while n < 400:
    h = data.find(b'Content-Length: ', pos)
    if h < 0:
        break
    e = data.find(b'\r\n', h)
    length = int(data[h + 16:e])
    start = data.find(b'\r\n\r\n', e) + 4
    if start + length > len(data):
        break
    open(f'{sys.argv[2]}{n:04d}.jpg', 'wb').write(data[start:start + length])
    n += 1
    pos = start + length
print(n)
PY
parts=$(cat "$SHARE/parts.txt")
bad=0
for p in "$SHARE"/part*.jpg; do
    [ -e "$p" ] || continue
    [ "$(jpeg_size "$p")" = "${WIDTH}x${HEIGHT}" ] || bad=$((bad + 1))
done
if [ "$parts" -gt 5 ] && [ "$bad" = 0 ]; then
    ok "all $parts stream parts decode at ${WIDTH}x${HEIGHT}"
else
    nok "$bad of $parts stream parts do not decode at ${WIDTH}x${HEIGHT}"
fi

: >"$SHARE/done"
# The camera's controls through libcamera (vimc's sensor offers brightness, contrast
# and saturation), with the source in the server's own process (--isolate off): the
# list, a change, and a picture that follows it.
luma() { djpeg -grayscale -pnm "$1" 2>/dev/null | python3 -c 'import sys; d = sys.stdin.buffer.read(); p = d.split(b"\n", 3)[3]; print(sum(p) // max(len(p), 1))'; }
wait_file "$SHARE/rotation.rc" 240 || nok "the guest did not finish the refusal checks"
# A full-resolution still while the stream runs (--isolate off): /snapshot.jpg?full=1
# decodes at the largest size --list-cameras gives for vimc (bigger than the stream's),
# keeps the brightness set before it ($1: the stream's mean luma since), and the stream
# goes on afterwards. Prints the pause the server logged.
full_resolution_still() {
    local largest code size t f0 f luma_full deadline pause tries
    largest=$(sed -n 's/.* to \([0-9]*\)x\([0-9]*\)$/\1 \2/p' "$SHARE/cameras.txt" |
        awk '$1 * $2 > best { best = $1 * $2; s = $1 "x" $2 } END { print s }')
    f0=$(field frames_captured "$(status)")
    t=$SECONDS
    # The server answers 503 when the still takes longer than its wait (vimc's frames
    # are slow in the emulated VM); asking again joins the still being taken.
    tries=0
    code=''
    while [ "$tries" -lt 5 ] && [ "$code" != 200 ]; do
        tries=$((tries + 1))
        code=$(curl -sS -m 120 -o "$SHARE/full.jpg" -w '%{http_code}' "$base/snapshot.jpg?full=1" || true)
        [ "$code" = 503 ] || break
    done
    size=$(jpeg_size "$SHARE/full.jpg")
    if [ "$code" = 200 ] && [ -n "$largest" ] && [ "$size" = "$largest" ] &&
        [ "${size%x*}" -gt "$WIDTH" ] && [ "${size#*x}" -gt "$HEIGHT" ]; then
        ok "full-resolution still decodes at $size, vimc's largest ($(stat -c %s "$SHARE/full.jpg") bytes, answered in $((SECONDS - t)) s, $tries request(s))"
    else
        nok "full-resolution still: HTTP $code, decodes at '$size', vimc's largest '$largest': $(head -c 300 "$SHARE/full.jpg" 2>/dev/null | tr -cd '[:print:]')"
    fi
    luma_full=$(luma "$SHARE/full.jpg")
    if [ -n "$luma_full" ] && [ -n "$1" ] && [ "$luma_full" -gt $((before + 20)) ]; then
        ok "the still keeps the brightness set before it: mean luma $luma_full (stream $1, $before before the change)"
    else
        nok "the still lost the brightness set before it: mean luma '$luma_full' (stream '$1', '$before' before the change)"
    fi
    deadline=$((SECONDS + 120))
    f=''
    while [ "$SECONDS" -lt "$deadline" ]; do
        f=$(field frames_captured "$(status)")
        if [ -n "$f" ] && [ -n "$f0" ] && [ "$f" -ge $((f0 + 5)) ]; then break; fi
        sleep 0.5
    done
    curl -fsS -m 30 -o "$SHARE/after-still.jpg" "$base/snapshot.jpg" || true
    size=$(jpeg_size "$SHARE/after-still.jpg")
    if [ -n "$f" ] && [ -n "$f0" ] && [ "$f" -ge $((f0 + 5)) ] && [ "$size" = "${WIDTH}x${HEIGHT}" ]; then
        ok "the stream goes on after the still: $((f - f0)) frames since, snapshot at $size"
    else
        nok "the stream did not go on after the still: frames $f0 then '$f', snapshot '$size' (status: $(status))"
    fi
    pause=$(grep -o 'took a [0-9x]* still; the stream paused [0-9]* ms' "$SHARE/controls.log" | tail -n 1)
    if [ -n "$pause" ]; then
        report "measured: $pause (${WIDTH}x${HEIGHT} stream at $FPS fps, emulated CPU)"
    else
        nok "the server logged no pause for the still"
        grep -i still "$SHARE/controls.log" | tail -n 5 | sed 's/^/  ! /'
    fi
}
if s=$(wait_status 300 '"frames_captured":[1-9]'); then
    listed=$(curl -fsS -m 10 "$base/controls" || true)
    if grep -q '"name":"brightness"' <<<"$listed" && grep -q '"name":"contrast"' <<<"$listed" &&
        grep -q '"name":"saturation"' <<<"$listed"; then
        ok "/controls lists vimc's brightness, contrast and saturation"
    else
        nok "/controls lists: $listed"
    fi
    curl -fsS -m 10 -o "$SHARE/before.jpg" "$base/snapshot.jpg" || true
    before=$(luma "$SHARE/before.jpg")
    answer=$(curl -fsS -m 10 -d '{"brightness": 80}' "$base/controls" || true)
    if grep -qE '"name":"brightness"[^}]*"value":80' <<<"$answer"; then
        ok "brightness set to 80 (libcamera's 0.8)"
    else
        nok "setting brightness answered: $answer"
    fi
    # The change goes on the next request queued; several are in flight.
    f0=$(field frames_captured "$(status)")
    deadline=$((SECONDS + 180))
    after=''
    while [ "$SECONDS" -lt "$deadline" ]; do
        f=$(field frames_captured "$(status)")
        if [ -n "$f" ] && [ "$f" -ge $((f0 + 6)) ]; then
            curl -fsS -m 10 -o "$SHARE/after.jpg" "$base/snapshot.jpg" || true
            after=$(luma "$SHARE/after.jpg")
            [ -n "$after" ] && [ "$after" -gt $((before + 20)) ] && break
        fi
        sleep 1
    done
    if [ -n "$after" ] && [ -n "$before" ] && [ "$after" -gt $((before + 20)) ]; then
        ok "the picture got brighter: mean luma $before before, $after after"
    else
        nok "the picture did not get brighter: mean luma '$before' before, '$after' after"
    fi
    full_resolution_still "$after"
else
    nok "the server with --isolate off did not capture: $s"
    tail -n 20 "$SHARE/controls.log" 2>/dev/null | sed 's/^/  ! /'
fi
: >"$SHARE/controls-done"
rc=0
wait "$VM" || rc=$?
VM=''
if [ "$rc" = 0 ] && grep -q 'server exit 0' "$SHARE/server.log"; then
    ok "the server stopped cleanly on SIGTERM"
else
    nok "VM exit $rc; $(grep 'server exit' "$SHARE/server.log" || echo 'no server exit line')"
fi
say "--list-cameras in the VM (exit $(cat "$SHARE/cameras.rc" 2>/dev/null)):"
sed 's/^/  | /' "$SHARE/cameras.txt" 2>/dev/null || true
if grep -q 'Sensor' "$SHARE/cameras.txt" && grep -q 'id: ' "$SHARE/cameras.txt"; then
    ok "--list-cameras lists vimc's sensor"
else
    nok "--list-cameras does not list vimc's sensor"; sed 's/^/  ! /' "$SHARE/cameras.err" || true
fi
# vimc's sensor cannot flip, so libcamera cannot turn its picture.
if [ "$(cat "$SHARE/rotation.rc" 2>/dev/null)" = 2 ] &&
    grep -q "cannot give the picture --rotation 180.*it can give it: as it is" "$SHARE/rotation.out"; then
    ok "--rotation 180 is refused: $(grep 'picam-stream:' "$SHARE/rotation.out")"
else
    nok "--rotation 180: exit $(cat "$SHARE/rotation.rc" 2>/dev/null): $(cat "$SHARE/rotation.out" 2>/dev/null)"
fi
if [ "$FAIL" != 0 ]; then
    say "server log (last 40 lines):"
    tail -n 40 "$SHARE/server.log" | sed 's/^/  ! /'
    tail -n 20 "$SHARE/rig.err" | sed 's/^/  ! /'
fi
say "took $((SECONDS - t0)) s"
printf 'libcamera-vm: %d passed, %d failed\n' "$PASS" "$FAIL"
[ "$FAIL" = 0 ]
