// WebRTC in Chromium against the real server (built with the h264 and webrtc features):
// a session through WHEP and one through camera-streamer's JSON dialect both decode
// frames (getStats' framesDecoded grows), DELETE ends a WHEP session, and the
// publish-to-paint latency of solid-colour frames written to the server's stdin is
// measured and printed (the page reads the colour back from the <video>).
//
// Runs the server named by PICAM_BIN_H264 (.ci/browser.sh builds it with the h264 and
// webrtc features and sets PICAM_BROWSER_REQUIRE_H264, which makes a missing WebRTC a
// failure); skipped, with a line saying so, when that binary is not given.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  BIN_H264, CHROMIUM, CHROMIUM_ARGS, sleep, solidJpegs, startServer, status, waitFor, wallNow,
  PALETTE, nearestColour as nearest,
} from './lib.mjs';
import { chromium } from 'playwright-core';

const FRAMES = 12;

let browser;
let pattern;
let skip = '';

const required = !!process.env.PICAM_BROWSER_REQUIRE_H264;

before(async () => {
  if (!BIN_H264) {
    skip = 'PICAM_BIN_H264 is not set (no server built with the h264 and webrtc features)';
    assert.ok(!required, skip);
    return;
  }
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Loopback candidates take part, as they do not by default.
    args: [...CHROMIUM_ARGS, '--allow-loopback-in-peer-connection'],
    timeout: 60000,
  });
  pattern = await startServer({
    args: ['--source', 'test', '--size', '640x480', '--fps', '30', '--webrtc-port', '0'],
    bin: BIN_H264,
  });
  const s = await status(pattern);
  if (!s.webrtc) {
    skip = 'this binary has no WebRTC (cargo build --release --features h264,webrtc)';
    assert.ok(!required, skip);
  }
});

after(async () => {
  await browser?.close();
  await pattern?.stop();
});

/** In the page: a recvonly video connection whose SDP exchange `signal` does; resolves
 * with nothing once the remote description is set. The <video id="v"> plays it. */
const CLIENT = `
window.__connect = async (dialect) => {
  const pc = new RTCPeerConnection();
  window.__pc = pc;
  const video = document.createElement('video');
  video.id = 'v'; video.muted = true; video.autoplay = true; video.playsInline = true;
  document.body.appendChild(video);
  pc.ontrack = (e) => { video.srcObject = e.streams[0] || new MediaStream([e.track]); };
  const gathered = () => new Promise((ok) => {
    if (pc.iceGatheringState === 'complete') return ok();
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') ok();
    });
    setTimeout(ok, 3000);
  });
  if (dialect === 'whep') {
    pc.addTransceiver('video', { direction: 'recvonly' });
    await pc.setLocalDescription(await pc.createOffer());
    await gathered();
    const r = await fetch('/whep', {
      method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp,
    });
    if (r.status !== 201) throw new Error('WHEP answered ' + r.status + ': ' + await r.text());
    window.__location = r.headers.get('Location');
    await pc.setRemoteDescription({ type: 'answer', sdp: await r.text() });
  } else {
    const post = async (body) => {
      const r = await fetch('/webrtc', {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
      });
      const j = await r.json();
      if (!r.ok) throw new Error('/webrtc answered ' + r.status + ': ' + JSON.stringify(j));
      return j;
    };
    const offer = await post({ type: 'request', res: null, iceServers: [] });
    pc.onicecandidate = (e) => {
      if (e.candidate) post({ type: 'remote_candidate', id: offer.id, candidates: [e.candidate] }).catch(() => {});
    };
    await pc.setRemoteDescription({ type: 'offer', sdp: offer.sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    await post({ type: 'answer', id: offer.id, sdp: pc.localDescription.sdp });
  }
};
window.__decoded = async () => {
  const stats = await window.__pc.getStats();
  let n = 0;
  stats.forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video') n = s.framesDecoded || 0; });
  return n;
};
`;

async function openClient(server, dialect) {
  const page = await browser.newPage();
  // Any page of the server's own origin: the requests are same-origin.
  await page.goto(server.url('/status'), { timeout: 15000 });
  await page.evaluate(CLIENT);
  await page.evaluate((d) => window.__connect(d), dialect);
  return page;
}

async function decodes(page, what) {
  const first = await waitFor(() => page.evaluate(() => window.__decoded()), {
    timeout: 30000, what: `the first decoded frame (${what})`,
  });
  const more = await waitFor(async () => {
    const n = await page.evaluate(() => window.__decoded());
    return n >= first + 30 ? n : 0;
  }, { timeout: 30000, what: `30 more decoded frames (${what})` });
  const size = await page.evaluate(() => {
    const v = document.getElementById('v');
    return `${v.videoWidth}x${v.videoHeight}`;
  });
  return { first, more, size };
}

test('a WHEP session decodes the stream, and DELETE ends it', { timeout: 120000 }, async (t) => {
  if (skip) return t.skip(skip);
  const page = await openClient(pattern, 'whep');
  try {
    const { more, size } = await decodes(page, 'WHEP');
    console.log(`WHEP: ${more} frames decoded, ${size}`);
    assert.equal(size, '640x480');
    const location = await page.evaluate(() => window.__location);
    assert.match(location, /^\/whep\/[0-9a-f]{32}$/);
    assert.equal((await status(pattern)).webrtc_sessions, 1);
    const r = await fetch(pattern.url(location), { method: 'DELETE' });
    assert.equal(r.status, 200);
    assert.equal((await status(pattern)).webrtc_sessions, 0);
    const again = await fetch(pattern.url(location), { method: 'DELETE' });
    assert.equal(again.status, 404);
  } finally {
    await page.close();
  }
});

test("camera-streamer's JSON dialect decodes the stream", { timeout: 120000 }, async (t) => {
  if (skip) return t.skip(skip);
  const page = await openClient(pattern, 'json');
  try {
    const { more, size } = await decodes(page, 'JSON dialect');
    console.log(`/webrtc JSON dialect: ${more} frames decoded, ${size}`);
    assert.equal(size, '640x480');
  } finally {
    await page.close();
  }
  // The browser's page closed: its session ends once its checks stop.
  await waitFor(async () => (await status(pattern)).webrtc_sessions === 0, {
    timeout: 60000, what: 'the session to end after the page closed',
  });
});

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

test('publish-to-paint latency over WebRTC (printed)', { timeout: 180000 }, async (t) => {
  if (skip) return t.skip(skip);
  const jpegs = await solidJpegs(browser, PALETTE, 640, 480);
  const server = await startServer({
    args: ['--source', 'stdin', '--fps', '30', '--webrtc-port', '0'],
    bin: BIN_H264,
    stdin: true,
  });
  const write = (k) => new Promise((ok, fail) => server.stdin.write(jpegs[k], (e) => (e ? fail(e) : ok())));
  // Frames keep coming while the session starts.
  let colour = PALETTE.length - 1;
  let feeding = true;
  const keepFeeding = (async () => {
    while (feeding) { await write(colour); await sleep(100); }
  })();
  const page = await openClient(server, 'whep');
  try {
    await decodes(page, 'latency stream');
    // On every video frame presented, the colour at the centre, with its wall-clock time.
    await page.evaluate(() => {
      const v = document.getElementById('v');
      const c = document.createElement('canvas');
      c.width = 1; c.height = 1;
      const g = c.getContext('2d', { willReadFrequently: true });
      window.__painted = [];
      const step = () => {
        g.drawImage(v, v.videoWidth / 2 - 4, v.videoHeight / 2 - 4, 8, 8, 0, 0, 1, 1);
        const d = g.getImageData(0, 0, 1, 1).data;
        window.__painted.push({ at: performance.timeOrigin + performance.now(), rgb: [d[0], d[1], d[2]] });
        v.requestVideoFrameCallback(step);
      };
      v.requestVideoFrameCallback(step);
    });
    const written = [];
    for (let k = 0; k < FRAMES; k++) {
      colour = k % (PALETTE.length - 1);
      const at = wallNow();
      await write(colour);
      written.push({ colour, at });
      // The same colour for 400 ms (the writer repeats it every 100 ms).
      await sleep(400);
    }
    feeding = false;
    await keepFeeding;
    await sleep(500);
    const painted = await page.evaluate(() => window.__painted);
    const ms = written.map(({ colour: c, at }) => {
      const hit = painted.find((p) => p.at >= at && nearest(p.rgb) === c);
      return hit ? hit.at - at : Infinity;
    });
    const shown = ms.map((x) => (Number.isFinite(x) ? Math.round(x) : 'never')).join(', ');
    console.log(`publish-to-paint over WebRTC (640x480, loopback), ms: ${shown}; median ${Math.round(median(ms))} (goal 100)`);
    assert.ok(ms.filter(Number.isFinite).length >= FRAMES - 2, `frames never painted: ${shown}`);
  } finally {
    feeding = false;
    await page.close();
    await server.stop();
  }
});

test('the viewer page picks WebRTC from this server and plays it', { timeout: 120000 }, async (t) => {
  if (skip) return t.skip(skip);
  const page = await browser.newPage();
  const messages = [];
  page.on('console', (m) => messages.push(m.text()));
  try {
    await page.goto(pattern.url('/index.html'), { timeout: 15000 });
    await waitFor(async () => (await page.locator('#kind').textContent()) === 'WebRTC', {
      timeout: 30000, what: `the WebRTC label (console: ${JSON.stringify(messages)})`,
    });
    const played = async () => page.evaluate(() => {
      const v = document.getElementById('video');
      return v.videoWidth > 0 && v.currentTime > 0 ? v.currentTime : 0;
    });
    const first = await waitFor(played, { timeout: 30000, what: 'the video to play' });
    await waitFor(async () => (await played()) > first + 1, { timeout: 30000, what: 'the video to go on' });
    assert.equal((await status(pattern)).webrtc_sessions, 1);
    assert.deepEqual(messages.filter((m) => /picam-stream/.test(m)), [], 'no player failed');
  } finally {
    await page.close();
  }
  // The page's DELETE on leaving, or the end of its checks, ends the session.
  await waitFor(async () => (await status(pattern)).webrtc_sessions === 0, {
    timeout: 60000, what: 'the session to end after the page closed',
  });
});
