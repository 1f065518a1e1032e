#!/usr/bin/env python3
"""Host side of the boot test: waits for a booted image's picam-stream, then
reads frames of /stream.mjpg and decodes each one.

  stream_client.py --port P --started EPOCH --frames N --size WxH --deadline SEC

Prints the time from EPOCH (when the VM was launched) to the first page and
to the first frame, each frame's size, and the server's /status. Exits 0
only when N frames arrived, all decode, and all have the expected size.
"""

import argparse
import http.client
import io
import json
import os
import sys
import time

from PIL import Image


def log(msg):
    print(f"boot-test: {msg}", flush=True)


def vm_alive(pid):
    return pid is None or os.path.exists(f"/proc/{pid}")


def wait_for_page(port, deadline, vm_pid):
    """Polls / until the server answers; returns the time it did."""
    last = "no answer"
    while time.time() < deadline:
        if not vm_alive(vm_pid):
            raise SystemExit("boot-test: FAIL: the VM stopped before the server answered")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
            conn.request("GET", "/")
            resp = conn.getresponse()
            body = resp.read()
            conn.close()
            if resp.status in (200, 301, 302, 303, 307, 308):
                return time.time(), resp.status, resp.getheader("Location"), len(body)
            last = f"status {resp.status}"
        except (OSError, http.client.HTTPException) as e:
            last = str(e) or type(e).__name__
        time.sleep(0.25)
    raise SystemExit(f"boot-test: FAIL: no answer on / before the deadline (last: {last})")


def get(port, path, timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request("GET", path)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, resp.getheader("Content-Type"), body


def read_line(f):
    line = f.readline(1024)
    if not line:
        raise EOFError("stream closed")
    return line.rstrip(b"\r\n")


def read_frames(port, count, deadline):
    """Reads `count` parts of the classic stream; yields (arrival time, jpeg)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=max(1, deadline - time.time()))
    conn.request("GET", "/stream.mjpg")
    resp = conn.getresponse()
    if resp.status != 200:
        raise SystemExit(f"boot-test: FAIL: /stream.mjpg answered {resp.status}")
    ctype = resp.getheader("Content-Type", "")
    if "multipart/x-mixed-replace" not in ctype:
        raise SystemExit(f"boot-test: FAIL: /stream.mjpg has Content-Type {ctype!r}")
    got = 0
    while got < count:
        if time.time() > deadline:
            raise SystemExit(f"boot-test: FAIL: only {got} of {count} frames before the deadline")
        line = read_line(resp)
        if line != b"--FRAME":
            continue
        headers = {}
        while True:
            line = read_line(resp)
            if not line:
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers["content-length"])
        data = resp.read(length)
        if len(data) != length:
            raise SystemExit("boot-test: FAIL: a frame was cut short")
        got += 1
        yield time.time(), data
    conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--started", type=float, required=True, help="epoch seconds of the VM launch")
    ap.add_argument("--frames", type=int, default=5)
    ap.add_argument("--size", required=True, help="expected WxH of every frame")
    ap.add_argument("--source-contains", default="", help="text /status must show in 'source'")
    ap.add_argument("--vm-pid", type=int, help="give up when this process (qemu) is gone")
    ap.add_argument("--deadline", type=float, default=120, help="seconds after --started")
    args = ap.parse_args()
    want = tuple(int(v) for v in args.size.split("x"))
    deadline = args.started + args.deadline

    t_page, status, location, _ = wait_for_page(args.port, deadline, args.vm_pid)
    log(f"/ answered {status} (to {location}) {t_page - args.started:.1f} s after the VM was launched")
    status, ctype, body = get(args.port, "/index.html")
    if status != 200 or b"<html" not in body.lower():
        raise SystemExit(f"boot-test: FAIL: /index.html answered {status} {ctype}")

    first = None
    sizes = []
    for n, (t, jpeg) in enumerate(read_frames(args.port, args.frames, deadline)):
        try:
            img = Image.open(io.BytesIO(jpeg))
            img.load()
        except Exception as e:  # noqa: BLE001 - any decoding error fails the test
            raise SystemExit(f"boot-test: FAIL: frame {n} does not decode: {e}")
        if first is None:
            first = t
            log(f"first frame {t - args.started:.1f} s after the VM was launched "
                f"({len(jpeg)} bytes, {img.size[0]}x{img.size[1]})")
        sizes.append(img.size)
        if img.size != want:
            raise SystemExit(f"boot-test: FAIL: frame {n} is {img.size[0]}x{img.size[1]}, "
                             f"expected {want[0]}x{want[1]}")
    log(f"{len(sizes)} frames decoded, all {want[0]}x{want[1]}, "
        f"{time.time() - first:.1f} s for the stream after the first frame")

    status, _, body = get(args.port, "/status")
    st = json.loads(body)
    keys = ("source", "width", "height", "fps_measured", "frames_captured", "source_error")
    log("/status: " + ", ".join(f"{k}={st.get(k)!r}" for k in keys if k in st))
    if args.source_contains and args.source_contains not in str(st.get("source")):
        raise SystemExit(f"boot-test: FAIL: the source is {st.get('source')!r}, "
                         f"not one with {args.source_contains!r}")
    print(f"FIRST_FRAME_SECONDS={first - args.started:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
