// The page's WebRTC player (WHEP) against a real WebRTC peer: a second Chromium page
// sends an animated canvas and answers the viewer's offer, standing in for the server's
// POST /whep until the server has WebRTC; /status is rewritten to offer "webrtc". The
// offer, the answer, the picture and the DELETE of the session are all real.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, test } from 'node:test';
import { launchChromium, pictureDiff, samplePicture, sleep, startServer, waitFor, waitLive } from './lib.mjs';

let server;
let browser;
let sender;
// Where the sessions live (the answers' Location): a loopback HTTP server of the test's
// own, which records each DELETE. It is another origin than the page's, so it allows
// one with CORS headers, as a WHEP server on another host would.
let sessionsAt;
const deletes = [];
const sessionServer = createServer((req, res) => {
  res.setHeader('Access-Control-Allow-Origin', '*');
  res.setHeader('Access-Control-Allow-Methods', 'DELETE');
  if (req.method === 'DELETE') deletes.push(`DELETE ${req.url}`);
  res.end();
});

before(async () => {
  await new Promise((ok) => sessionServer.listen(0, '127.0.0.1', ok));
  sessionsAt = `http://127.0.0.1:${sessionServer.address().port}`;
  server = await startServer({ args: ['--source', 'test', '--size', '320x240', '--fps', '15'] });
  browser = await launchChromium();
  sender = await browser.newPage();
  await sender.goto(server.url('/status'));
  // The sending peer: a 320x240 canvas whose colour turns every 40 ms.
  await sender.evaluate(() => {
    const c = document.createElement('canvas');
    c.width = 320; c.height = 240;
    const g = c.getContext('2d');
    let hue = 0;
    setInterval(() => {
      g.fillStyle = `hsl(${(hue += 7) % 360}, 80%, 50%)`;
      g.fillRect(0, 0, 320, 240);
    }, 40);
    const stream = c.captureStream(25);
    window.answer = async (offer) => {
      const pc = new RTCPeerConnection();
      for (const t of stream.getTracks()) pc.addTrack(t, stream);
      await pc.setRemoteDescription({ type: 'offer', sdp: offer });
      await pc.setLocalDescription(await pc.createAnswer());
      await new Promise((ok) => {
        const timer = setTimeout(ok, 3000);
        pc.onicegatheringstatechange = () => {
          if (pc.iceGatheringState === 'complete') { clearTimeout(timer); ok(); }
        };
      });
      return pc.localDescription.sdp;
    };
  });
});

after(async () => {
  await browser?.close();
  await server?.stop();
  sessionServer.close();
});

test('the page plays WebRTC from a WHEP answer and ends the session when it switches', { timeout: 120000 }, async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const offers = [];
  let sessions = 0;
  try {
    await context.route('**/status', async (route) => {
      const r = await route.fetch();
      const j = await r.json();
      j.players = ['webrtc', ...j.players];
      await route.fulfill({ response: r, json: j });
    });
    await context.route('**/whep', async (route) => {
      const req = route.request();
      offers.push({ method: req.method(), type: req.headers()['content-type'], sdp: req.postData() });
      const sdp = await sender.evaluate((offer) => window.answer(offer), req.postData());
      await route.fulfill({
        status: 201,
        headers: { 'Content-Type': 'application/sdp', Location: `${sessionsAt}/session-${++sessions}` },
        body: sdp,
      });
    });
    const page = await context.newPage();
    const messages = [];
    page.on('console', (m) => messages.push(m.text()));
    await page.goto(server.url('/'), { timeout: 15000 });
    const label = () => page.locator('#kind').textContent();
    await waitFor(async () => (await label()) === 'WebRTC', { timeout: 15000, what: 'the WebRTC player' });
    await waitLive(page, { timeout: 20000 });
    const t0 = await page.evaluate(() => document.getElementById('video').currentTime);
    await waitFor(() => page.evaluate((t) => document.getElementById('video').currentTime > t + 1, t0), {
      timeout: 15000, what: 'the WebRTC video to play',
    });
    assert.equal(await page.evaluate(() => document.getElementById('video').videoWidth), 320);
    const a = await samplePicture(page, '#video');
    await waitFor(async () => pictureDiff(a, await samplePicture(page, '#video')) > 5, {
      timeout: 10000, what: 'the sent colours to change the picture',
    });

    assert.equal(offers.length, 1);
    assert.equal(offers[0].method, 'POST');
    assert.equal(offers[0].type, 'application/sdp');
    assert.match(offers[0].sdp, /^v=0\r\n/);
    assert.match(offers[0].sdp, /m=video [\s\S]*a=recvonly/, 'one receive-only video section');
    assert.doesNotMatch(offers[0].sdp, /m=audio/);

    await page.selectOption('#player', 'mjpeg');
    await waitFor(() => deletes.length === 1, { timeout: 10000, what: 'the DELETE of the session' });
    assert.deepEqual(deletes, ['DELETE /session-1']);
    await waitLive(page, { timeout: 15000 });
    assert.equal(await label(), 'MJPEG');

    await page.selectOption('#player', 'auto');
    await waitFor(async () => (await label()) === 'WebRTC' && offers.length === 2, { timeout: 15000, what: 'WebRTC again' });
    await waitLive(page, { timeout: 20000 });
    assert.deepEqual(messages.filter((m) => /picam-stream/.test(m)), [], 'no player failed');
  } finally {
    await context.close();
  }
});
