#!/bin/sh
# Runs inside the VM for `rig.sh selftest`. Prints "ok: ..." / "not ok: ..." lines,
# which the host counts. RIG_TESTS selects the parts: v4l2 m2m vimc http hotplug bins.
# Files exchanged with the host live in /host (the shared directory).

ok() { echo "ok: $*"; }
nok() { echo "not ok: $*"; }
want() { case " $RIG_TESTS " in *" $1 "*) return 0 ;; esac; return 1; }
node_named() {
    for d in /sys/class/video4linux/*; do
        [ -r "$d/name" ] && [ "$(cat "$d/name")" = "$1" ] && { echo "/dev/${d##*/}"; return 0; }
    done
    return 1
}

echo "guest: $(uname -r) $(uname -m), up $(cut -d' ' -f1 /proc/uptime) s"

if want v4l2; then
    if cap=$(node_named vivid-000-vid-cap); then ok "vivid capture node is $cap"; else nok "no vivid capture node"; fi
    echo "== v4l2-ctl --list-devices"
    if v4l2-ctl --list-devices; then ok "v4l2-ctl --list-devices"; else nok "v4l2-ctl --list-devices"; fi
    echo "== v4l2-ctl -d $cap --list-formats-ext (first 25 lines)"
    v4l2-ctl -d "$cap" --list-formats-ext > /tmp/formats 2>&1
    head -n 25 /tmp/formats
    if grep -q "'YUYV'" /tmp/formats; then ok "vivid lists YUYV"; else nok "vivid does not list YUYV"; fi
    if v4l2-ctl -d "$cap" --set-fmt-video=width=640,height=480,pixelformat=YUYV; then
        ok "set 640x480 YUYV"
    else
        nok "set 640x480 YUYV"
    fi
    size=$(v4l2-ctl -d "$cap" --get-fmt-video | sed -n 's/.*Size Image *: *//p')
    echo "$size" > /host/frame-size
    rm -f /host/frames.yuv
    if v4l2-ctl -d "$cap" --stream-mmap --stream-count=3 --stream-to=/host/frames.yuv; then
        ok "captured 3 frames of $size bytes into /host/frames.yuv"
    else
        nok "capture from $cap"
    fi
fi

if want m2m; then
    if m2m=$(node_named vim2m); then
        v4l2-ctl -d "$m2m" --stream-out-mmap --stream-mmap --stream-count=2 --stream-to=/tmp/m2m.raw > /dev/null 2>&1
        if [ -s /tmp/m2m.raw ]; then ok "vim2m ($m2m) converted 2 frames"; else nok "vim2m ($m2m) gave no frames"; fi
    else
        nok "no vim2m node"
    fi
    if enc=$(node_named stateful-encoder); then
        v4l2-ctl -d "$enc" --stream-out-mmap --stream-mmap --stream-count=2 --stream-to=/tmp/enc.fwht > /dev/null 2>&1
        if [ -s /tmp/enc.fwht ]; then ok "vicodec encoder ($enc) produced $(wc -c < /tmp/enc.fwht) bytes"; else nok "vicodec encoder ($enc) produced nothing"; fi
    else
        nok "no vicodec node"
    fi
fi

if want vimc; then
    # vimc's default pipeline formats do not match; set them like its documentation does.
    media-ctl -d platform:vimc -V '"Sensor A":0[fmt:SBGGR8_1X8/640x480]' &&
        media-ctl -d platform:vimc -V '"Debayer A":0[fmt:SBGGR8_1X8/640x480]' &&
        v4l2-ctl -z platform:vimc -d "Raw Capture 0" -v pixelformat=BA81 &&
        v4l2-ctl -z platform:vimc -d "Raw Capture 0" --stream-mmap --stream-count=2 --stream-to=/tmp/vimc.raw > /dev/null 2>&1
    if [ "$(wc -c < /tmp/vimc.raw 2>/dev/null)" = 614400 ]; then
        ok "vimc Raw Capture 0 gave 2 frames of 640x480 BA81"
    else
        nok "vimc capture"
    fi
fi

if want bins; then
    for b in /host/bin/*; do
        [ -x "$b" ] || continue
        if out=$("$b" 2>&1) && [ "$out" = "hello from ${b##*/}" ]; then ok "ran ${b##*/}"; else nok "${b##*/}: $out"; fi
    done
fi

if want http; then
    httpd -f -p 8080 -h /host/www &
    hpid=$!
    ok "httpd serving /host/www on port 8080"
    # The host fetches through its forwarded port and then leaves /host/fetched.
    i=0
    while [ ! -e /host/fetched ] && [ "$i" -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
    if [ -e /host/fetched ]; then ok "host fetched the page"; else nok "host did not fetch the page within 60 s"; fi
    kill "$hpid"
fi

if want hotplug; then
    rmmod vivid
    if node_named vivid-000-vid-cap > /dev/null; then nok "vivid node still there after rmmod"; else ok "vivid removed"; fi
    modprobe vivid n_devs=1
    if new=$(node_named vivid-000-vid-cap) && [ -c "$new" ]; then
        ok "vivid back as $new"
        if v4l2-ctl -d "$new" --stream-mmap --stream-count=1 --stream-to=/dev/null > /dev/null 2>&1; then
            ok "captured from the reloaded vivid"
        else
            nok "capture from the reloaded vivid"
        fi
    else
        nok "vivid did not come back"
    fi
fi
exit 0
