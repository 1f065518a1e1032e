#!/usr/bin/env python3
"""picam-stream beside µStreamer, in the same VM, against the same V4L2 device.

    python3 benches/vm-vs-ustreamer.py [--binary PATH] [--seconds S] [--size WxH]

Boots the VM rig (tests/vm/rig.sh: Debian's kernel under qemu TCG, one guest CPU) with
vivid and Debian's `ustreamer` package. Inside, each server in turn captures 640x480
YUYV at 30 fps from /dev/video0 and encodes JPEG at quality 80 on the CPU; the host reads
its stream for S seconds through a forwarded port. Printed per server: frames per second
received by the host, the size of the frames, and the guest CPU the server used (user +
system time of all its threads, from /proc/PID/stat, over the same window) per second
and per frame. Run as root (the rig installs qemu and fetches packages on first use).

The binary defaults to target/release/picam-stream (build it with `cargo build
--release`, optionally `--features turbojpeg`).
"""

import argparse
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PORT = 18391

GUEST = r"""
set -u
cd /host
# measure NAME COMMAND...: runs the server, samples its CPU time between the host's
# NAME.start and NAME.stop markers, then stops it.
measure() {
    name=$1; shift
    "$@" > "$name.log" 2>&1 &
    pid=$!
    while [ ! -e "$name.start" ]; do
        kill -0 "$pid" 2>/dev/null || { echo "$name exited early"; cat "$name.log"; return 1; }
        sleep 0.1
    done
    a=$(cut -d' ' -f14,15 "/proc/$pid/stat"); t0=$(cut -d' ' -f1 /proc/uptime)
    while [ ! -e "$name.stop" ]; do sleep 0.1; done
    b=$(cut -d' ' -f14,15 "/proc/$pid/stat"); t1=$(cut -d' ' -f1 /proc/uptime)
    echo "$a $b $t0 $t1 $(getconf CLK_TCK 2>/dev/null || echo 100)" > "$name.cpu"
    kill "$pid"; wait "$pid" 2>/dev/null
    touch "$name.done"
}
measure picam ./picam-stream --source v4l2:/dev/video0 --size "$SIZE" --fps 30 \
    --quality 80 --listen 0.0.0.0:8000 || exit 1
measure ustreamer ustreamer --device=/dev/video0 --resolution="$SIZE" --format=YUYV \
    --desired-fps=30 --quality=80 --encoder=CPU --host=0.0.0.0 --port=8000 || exit 1
"""


def jpeg_size(frame):
    """(width, height) from a JPEG's SOF segment, or None."""
    i = 2
    while i + 4 <= len(frame):
        if frame[i] != 0xFF:
            return None
        marker = frame[i + 1]
        length = struct.unpack(">H", frame[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            h, w = struct.unpack(">HH", frame[i + 5:i + 9])
            return w, h
        i += 2 + length
    return None


def read_stream(path, seconds, deadline):
    """Frames (count, sizes seen, bytes) read from the forwarded port for `seconds`."""
    while True:
        try:
            s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
            s.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
            first = s.recv(65536)
            if first.startswith(b"HTTP/1.") and b" 200 " in first.split(b"\r\n")[0]:
                break
            s.close()
        except OSError:
            pass
        if time.monotonic() > deadline:
            sys.exit(f"no stream at {path} before the deadline")
        time.sleep(0.5)
    buf = bytearray(first)
    # Skip what arrived before the measurement window starts: wait for one whole frame.
    frames, sizes, total = 0, set(), 0
    start = None
    while True:
        soi = buf.find(b"\xff\xd8\xff")
        eoi = buf.find(b"\xff\xd9", soi + 2) if soi >= 0 else -1
        if soi >= 0 and eoi >= 0:
            frame = bytes(buf[soi:eoi + 2])
            del buf[:eoi + 2]
            if start is None:
                start = time.monotonic()
                yield "started"
                continue
            frames += 1
            total += len(frame)
            sizes.add(jpeg_size(frame))
            if time.monotonic() - start >= seconds:
                break
            continue
        chunk = s.recv(262144)
        if not chunk:
            sys.exit(f"{path}: stream ended after {frames} frames")
        buf += chunk
    elapsed = time.monotonic() - start
    s.close()
    yield frames, elapsed, sizes, total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default=os.path.join(REPO, "target/release/picam-stream"))
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--size", default="640x480")
    args = ap.parse_args()
    if not os.path.exists(args.binary):
        sys.exit(f"{args.binary} missing: cargo build --release")
    share = tempfile.mkdtemp(prefix="picam-vs-ustreamer-")
    shutil.copy(args.binary, os.path.join(share, "picam-stream"))
    with open(os.path.join(share, "guest.sh"), "w") as f:
        f.write(GUEST)
    vm = subprocess.Popen(
        [os.path.join(REPO, "tests/vm/rig.sh"), "run", "--share", share,
         "--forward", f"{PORT}:8000", "--modules", "vivid", "--packages", "ustreamer",
         "--env", f"SIZE={args.size}", "--timeout", str(int(120 + 6 * args.seconds)),
         "--", "sh /host/guest.sh"])
    results = {}
    deadline = time.monotonic() + 300
    try:
        for name, path in (("picam", "/stream.mjpg"), ("ustreamer", "/stream")):
            reader = read_stream(path, args.seconds, deadline)
            next(reader)  # first whole frame arrived: the window starts
            open(os.path.join(share, name + ".start"), "w").close()
            frames, elapsed, sizes, total = next(reader)
            open(os.path.join(share, name + ".stop"), "w").close()
            while not os.path.exists(os.path.join(share, name + ".done")):
                if vm.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"VM ended before {name} stopped")
                time.sleep(0.2)
            a_u, a_s, b_u, b_s, t0, t1, tck = open(os.path.join(share, name + ".cpu")).read().split()
            ticks = int(b_u) + int(b_s) - int(a_u) - int(a_s)
            window = float(t1) - float(t0)
            results[name] = (frames / elapsed, sizes, total / max(frames, 1),
                             ticks / int(tck) / window, frames)
        rc = vm.wait(timeout=120)
        if rc != 0:
            sys.exit(f"VM exited with {rc}")
    finally:
        if vm.poll() is None:
            vm.kill()
        shutil.rmtree(share, ignore_errors=True)
    print(f"\nvivid {args.size} YUYV @30, JPEG quality 80 in software, one guest CPU under TCG, "
          f"{args.seconds:.0f} s each:")
    print(f"  {'server':<12} {'fps at host':>11} {'frame size':>10} {'KB/frame':>9} "
          f"{'guest CPU':>10} {'CPU ms/frame':>13}")
    for name, (fps, sizes, avg, cpu, frames) in results.items():
        dims = ",".join(f"{w}x{h}" for w, h in (s for s in sizes if s)) or "?"
        per_frame = cpu * 1000 / fps if fps else float("nan")
        print(f"  {name:<12} {fps:>11.1f} {dims:>10} {avg / 1024:>9.1f} {cpu * 100:>9.0f}% "
              f"{per_frame:>13.1f}")


if __name__ == "__main__":
    main()
