#!/usr/bin/env python3
"""Receives the server's WebRTC stream with aiortc, a WebRTC stack written apart from
this project, through WHEP: POST /whep with a recvonly video offer, 201 with the answer,
decode frames with aiortc's own H.264 decoder (FFmpeg through PyAV), DELETE to end.

    whep_aiortc.py http://127.0.0.1:8000 [frames] [WIDTHxHEIGHT]

Prints what it received; exits 0 when `frames` pictures of the expected size decoded
and they were not all alike, 1 otherwise.
"""
import asyncio
import sys
import time
import urllib.request

from aiortc import RTCPeerConnection, RTCSessionDescription


def http(method, url, body=None, content_type=None):
    req = urllib.request.Request(url, data=body, method=method)
    if content_type:
        req.add_header("Content-Type", content_type)
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, dict(r.headers), r.read()


async def main(base, want, size):
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    got = asyncio.get_running_loop().create_future()

    @pc.on("track")
    def on_track(track):
        if not got.done():
            got.set_result(track)

    # aiortc gathers its candidates before setLocalDescription returns.
    await pc.setLocalDescription(await pc.createOffer())
    status, headers, answer = http(
        "POST", base + "/whep", pc.localDescription.sdp.encode(), "application/sdp"
    )
    location = headers.get("Location")
    print(f"POST /whep: {status}, Location {location}")
    if status != 201 or not location:
        return 1
    await pc.setRemoteDescription(RTCSessionDescription(answer.decode(), "answer"))
    track = await asyncio.wait_for(got, 30)
    started = time.monotonic()
    sizes, sums = set(), []
    for _ in range(want):
        frame = await asyncio.wait_for(track.recv(), 30)
        sizes.add(f"{frame.width}x{frame.height}")
        luma = bytes(frame.planes[0])
        sums.append(sum(luma[::997]))
    took = time.monotonic() - started
    received = 0
    for stat in (await pc.getStats()).values():
        if stat.type == "inbound-rtp":
            received = stat.packetsReceived
    print(f"decoded {want} frames in {took:.1f} s ({want / took:.1f} fps), sizes {sorted(sizes)}, "
          f"{len(set(sums))} distinct pictures, {received} RTP packets")
    status, _, _ = http("DELETE", base + location)
    print(f"DELETE {location}: {status}")
    await pc.close()
    ok = sizes == {size} and len(set(sums)) > 1 and status == 200
    return 0 if ok else 1


if __name__ == "__main__":
    base = sys.argv[1].rstrip("/")
    want = int(sys.argv[2]) if len(sys.argv) > 2 else 60
    size = sys.argv[3] if len(sys.argv) > 3 else "640x480"
    sys.exit(asyncio.run(main(base, want, size)))
