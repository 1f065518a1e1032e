// The live-frames, publish-to-paint, Settings panel and MP4 player checks in WebKit
// (Safari's engine, where MJPEG breaks most often): Debian's WebKitGTK MiniBrowser, driven
// by WebKitWebDriver under Xvfb.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { after, before, test } from 'node:test';
import {
  BIN_H264, artifact, pictureDiff, sleep, solidJpegs, startProcess, startServer, stopProcess, waitFor,
  wallNow, launchChromium,
} from './lib.mjs';

const DRIVER = '/usr/bin/WebKitWebDriver';
const XVFB = '/usr/bin/Xvfb';
const MINIBROWSER = (() => {
  for (const dir of ['/usr/lib', ...readdirSync('/usr/lib').map((d) => `/usr/lib/${d}`)]) {
    const p = `${dir}/webkit2gtk-4.1/MiniBrowser`;
    if (existsSync(p)) return p;
  }
  return null;
})();
const missing = [DRIVER, XVFB].filter((p) => !existsSync(p)).concat(MINIBROWSER ? [] : ['MiniBrowser']);
const required = process.env.PICAM_BROWSER_REQUIRE_WEBKIT === '1';
const skip = process.env.PICAM_BROWSER_NO_WEBKIT === '1' ? 'PICAM_BROWSER_NO_WEBKIT=1'
  : missing.length && !required ? `WebKitGTK is not installed (${missing.join(', ')} missing)` : false;

let xvfb;
let driver;
let driverUrl;
let session;
const servers = [];

/** One WebDriver command; the answer's `value`. */
async function wd(method, path, body, timeout = 30000) {
  const r = await fetch(driverUrl + path, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeout),
  });
  const j = await r.json();
  if (!r.ok) throw new Error(`WebDriver ${method} ${path}: ${JSON.stringify(j.value ?? j)}`);
  return j.value;
}
const run = (script, ...args) => wd('POST', `/session/${session}/execute/sync`, { script, args });

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => ok(port)); });
  });
}

before(async () => {
  if (skip) return;
  assert.deepEqual(missing, [], 'WebKitGTK, its WebDriver and Xvfb are installed');
  // Xvfb picks a free display and writes its number to fd 3.
  xvfb = startProcess(XVFB, ['-displayfd', '3', '-screen', '0', '1280x800x24', '-nolisten', 'tcp'], {
    stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
  });
  let xlog = '';
  xvfb.stderr.on('data', (c) => { xlog += c; });
  const display = await new Promise((ok, fail) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error(`Xvfb did not start: ${xlog}`)), 15000);
    xvfb.stdio[3].on('data', (c) => {
      out += c;
      if (out.includes('\n')) { clearTimeout(timer); ok(`:${out.trim()}`); }
    });
    xvfb.on('exit', () => { clearTimeout(timer); fail(new Error(`Xvfb exited: ${xlog}`)); });
  });
  const port = await freePort();
  driverUrl = `http://127.0.0.1:${port}`;
  driver = startProcess(DRIVER, [`--port=${port}`], {
    stdio: ['ignore', 'ignore', 'ignore'],
    env: { ...process.env, DISPLAY: display },
  });
  await waitFor(async () => (await wd('GET', '/status', undefined, 2000)).ready, {
    timeout: 15000, what: 'WebKitWebDriver to be ready',
  });
  const s = await wd('POST', '/session', {
    capabilities: {
      alwaysMatch: { 'webkitgtk:browserOptions': { binary: MINIBROWSER, args: ['--automation'] } },
    },
  }, 60000);
  session = s.sessionId;
  console.log(`WebKit: ${s.capabilities.browserName} ${s.capabilities.browserVersion} on Xvfb ${display}`);
  await wd('POST', `/session/${session}/window/rect`, { width: 1024, height: 768 }).catch(() => {});
});

after(async () => {
  if (session) await wd('DELETE', `/session/${session}`).catch(() => {});
  if (driver) await stopProcess(driver);
  if (xvfb) await stopProcess(xvfb);
  for (const s of servers) await s.stop();
});

const SAMPLE = `const img = document.getElementById('stream');
  if (!img || !img.naturalWidth) return null;
  const c = document.createElement('canvas'); c.width = 32; c.height = 24;
  const g = c.getContext('2d'); g.drawImage(img, 0, 0, 32, 24);
  return Array.from(g.getImageData(0, 0, 32, 24).data);`;
const STATE = `const s = document.getElementById('state'); return s && !s.hidden ? s.textContent : '';`;
const KIND = `return [document.getElementById('kind').textContent, document.getElementById('player').hidden];`;
const VIDEO = `const v = document.getElementById('video'), b = v.buffered;
  return [v.currentTime, v.videoWidth, b.length ? b.end(b.length - 1) - v.currentTime : null];`;

test('WebKit shows live frames', { skip, timeout: 120000 }, async () => {
  const server = await startServer({ args: ['--source', 'test', '--size', '640x480', '--fps', '30'] });
  servers.push(server);
  await wd('POST', `/session/${session}/url`, { url: server.url('/index.html') }, 30000);
  await waitFor(async () => (await run(STATE)) === 'Live', { timeout: 20000, what: 'the "Live" status in WebKit' });
  assert.deepEqual(await run('const i = document.getElementById("stream"); return [i.naturalWidth, i.naturalHeight];'), [640, 480]);
  let prev = await run(SAMPLE);
  let changes = 0;
  for (let i = 0; i < 5; i++) {
    await sleep(400);
    const cur = await run(SAMPLE);
    if (prev && cur && pictureDiff(prev, cur) > 0) changes++;
    prev = cur;
  }
  console.log(`WebKit: the picture changed in ${changes} of 5 intervals of 400 ms`);
  assert.ok(changes >= 4, `the picture must keep changing in WebKit (changed ${changes} of 5 times)`);
  const png = await wd('GET', `/session/${session}/screenshot`);
  writeFileSync(artifact('webkit-page.png'), Buffer.from(png, 'base64'));
});

test('WebKit: a frame published at 1 fps is painted within 300 ms (classic format printed)', { skip, timeout: 120000 }, async () => {
  const colours = [[220, 40, 40], [40, 190, 60], [40, 80, 230], [230, 200, 40], [190, 50, 200], [40, 200, 210]];
  const chromium = await launchChromium();
  let jpegs;
  try {
    jpegs = await solidJpegs(chromium, colours, 320, 240);
  } finally {
    await chromium.close();
  }
  const server = await startServer({ args: ['--source', 'stdin', '--fps', '1'], stdin: true });
  servers.push(server);
  server.stdin.write(jpegs[0]);
  await wd('POST', `/session/${session}/url`, { url: server.url('/index.html') }, 30000);
  const near = (a, b) => Math.abs(a[0] - b[0]) + Math.abs(a[1] - b[1]) + Math.abs(a[2] - b[2]) < 60;
  const results = {};
  for (const [label, url] of [['browser format', 'stream.mjpg?advance_headers=1&wk=1'], ['classic format', 'stream.mjpg?wk=2']]) {
    await run(`document.getElementById('stream').src = arguments[0];`, url);
    await sleep(1500);
    await run(`const img = document.getElementById('stream');
      const c = document.createElement('canvas'); c.width = 1; c.height = 1;
      const g = c.getContext('2d', { willReadFrequently: true });
      const seen = []; window.__painted = seen; let last = '';
      const step = () => {
        if (img.naturalWidth) {
          g.drawImage(img, img.naturalWidth / 2 - 4, img.naturalHeight / 2 - 4, 8, 8, 0, 0, 1, 1);
          const d = g.getImageData(0, 0, 1, 1).data; const k = d[0] + ',' + d[1] + ',' + d[2];
          if (k !== last) { last = k; seen.push({ at: performance.timeOrigin + performance.now(), rgb: [d[0], d[1], d[2]] }); }
        }
        if (window.__painted === seen) requestAnimationFrame(step);
      };
      requestAnimationFrame(step);`);
    const written = [];
    let next = wallNow();
    for (let k = 1; k <= 5; k++) {
      written.push({ rgb: colours[k], at: wallNow() });
      server.stdin.write(jpegs[k]);
      next += 1000;
      await sleep(Math.max(0, next - wallNow()));
    }
    await sleep(1500);
    const painted = await run('const p = window.__painted; window.__painted = null; return p;');
    results[label] = written.map(({ rgb, at }) => {
      const hit = painted.find((p) => p.at >= at && near(p.rgb, rgb));
      return hit ? Math.round(hit.at - at) : 'never';
    });
    server.stdin.write(jpegs[0]);
  }
  for (const [label, ms] of Object.entries(results)) {
    console.log(`WebKit publish-to-paint, ${label}, ms: ${ms.join(', ')}`);
  }
  for (const [i, ms] of results['browser format'].entries()) {
    assert.ok(ms !== 'never' && ms < 300, `frame ${i + 1} painted after ${ms} ms in WebKit (limit 300 ms)`);
  }
});

/** The id of the element `css` finds, for WebDriver's element commands. */
async function element(css) {
  const e = await wd('POST', `/session/${session}/element`, { using: 'css selector', value: css });
  return Object.values(e)[0];
}
const click = async (css) => wd('POST', `/session/${session}/element/${await element(css)}/click`, {});
/** Presses and lets go of each key in turn (WebDriver's key codes: \uE014 is the right arrow). */
const press = (...keys) => wd('POST', `/session/${session}/actions`, {
  actions: [{ type: 'key', id: 'keyboard', actions: keys.flatMap((k) => [{ type: 'keyDown', value: k }, { type: 'keyUp', value: k }]) }],
});
const LUMA = `const img = document.getElementById('stream');
  if (!img || !img.naturalWidth) return null;
  const c = document.createElement('canvas'); c.width = 32; c.height = 24;
  const g = c.getContext('2d'); g.drawImage(img, 0, 0, 32, 24);
  const d = g.getImageData(0, 0, 32, 24).data; let s = 0;
  for (let i = 0; i < d.length; i += 4) s += 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
  return s / (d.length / 4);`;

test('WebKit: the Settings panel opens, a slider moved with the keyboard changes the picture, Reset undoes it', { skip, timeout: 120000 }, async () => {
  const server = await startServer({ args: ['--source', 'test', '--size', '320x240', '--fps', '15'] });
  servers.push(server);
  const brightness = async () => {
    const r = await fetch(server.url('/controls'), { signal: AbortSignal.timeout(5000) });
    return (await r.json()).controls.find((c) => c.name === 'brightness').value;
  };
  await wd('POST', `/session/${session}/url`, { url: server.url('/index.html') }, 30000);
  await waitFor(async () => (await run(STATE)) === 'Live', { timeout: 20000, what: 'the "Live" status in WebKit' });
  await waitFor(() => run(`const b = document.getElementById('set'); return b && !b.hidden;`), { timeout: 20000, what: 'the Settings button in WebKit' });
  await click('#set');
  await waitFor(() => run(`return !!document.getElementById('c-brightness');`), { timeout: 20000, what: 'the brightness slider in WebKit' });
  assert.deepEqual(await run(`return Array.from(document.querySelectorAll('#settings label'), (l) => l.textContent);`),
    ['Brightness', 'Contrast', 'Pattern']);
  const before = await waitFor(() => run(LUMA), { timeout: 20000, what: 'a picture in WebKit' });
  await run(`document.getElementById('c-brightness').focus();`);
  assert.equal(await brightness(), 0);
  // Key presses from the keyboard, not values set by a script: 20 steps to the right,
  // sent as the page sends a slider's moves (after a short pause).
  await press(...Array(20).fill('\uE014'));
  await waitFor(async () => (await brightness()) === 20, { timeout: 20000, what: 'brightness 20 on the server after 20 key presses' });
  assert.equal(await run(`return document.querySelector('#c-brightness').parentNode.querySelector('output').textContent;`), '20',
    'the slider shows its number');
  const brighter = await waitFor(async () => { const l = await run(LUMA); return l > before + 10 && l; },
    { timeout: 20000, what: 'a brighter picture in WebKit' });
  await click('#set-reset');
  await waitFor(async () => (await brightness()) === 0, { timeout: 20000, what: 'brightness back to 0 after Reset' });
  await waitFor(() => run(`return document.getElementById('c-brightness').value === '0';`), { what: 'the slider back at 0' });
  const after = await waitFor(async () => { const l = await run(LUMA); return l < brighter - 10 && l; },
    { timeout: 20000, what: 'the picture back to its brightness after Reset' });
  console.log(`WebKit settings: mean luma ${before.toFixed(1)} -> ${brighter.toFixed(1)} (brightness 20) -> ${after.toFixed(1)} (reset)`);
  const png = await wd('GET', `/session/${session}/screenshot`);
  writeFileSync(artifact('webkit-settings.png'), Buffer.from(png, 'base64'));
});

test('WebKit: the MP4 player where it can play H.264, else MJPEG', {
  skip: skip || (!BIN_H264 && 'PICAM_BIN_H264 is not set (no server built with the h264 feature)'),
  timeout: 120000,
}, async () => {
  const server = await startServer({
    args: ['--source', 'test', '--size', '640x480', '--fps', '30', '--webrtc-port', 'off'], bin: BIN_H264,
  });
  servers.push(server);
  await wd('POST', `/session/${session}/url`, { url: server.url('/index.html') }, 30000);
  // The choice shows once /status is in (two players offered).
  await waitFor(async () => (await run(KIND))[1] === false, { timeout: 20000, what: 'the player choice in WebKit' });
  // MP4 playing, or MJPEG live after the page tried /stream.mp4 (the server logged it).
  const tried = () => /stream\.mp4\?n=/.test(server.log());
  const settled = await waitFor(async () => {
    const [kind] = await run(KIND);
    if (kind === 'MP4') return (await run(VIDEO))[0] > 1 && kind;
    return kind === 'MJPEG' && tried() && (await run(STATE)) === 'Live' && kind;
  }, { timeout: 30000, what: 'the MP4 player playing, or MJPEG live after a try of MP4, in WebKit' });
  const probe = await fetch(server.url('/stream.mp4'), { signal: AbortSignal.timeout(15000) });
  const type = probe.headers.get('content-type');
  await probe.body.cancel();
  const can = await run(`const M = window.MediaSource || window.ManagedMediaSource;
    return !!M && M.isTypeSupported(arguments[0]);`, type);
  console.log(`WebKit: Media Source Extensions ${can ? 'can' : 'cannot'} play ${type}; the page uses ${settled}`);
  assert.equal(settled, can ? 'MP4' : 'MJPEG');
  // .ci/browser.sh installs GStreamer's H.264 decoder (gstreamer1.0-libav) with WebKitGTK.
  if (required) assert.ok(can, 'WebKitGTK with gstreamer1.0-libav plays H.264 through Media Source Extensions');
  if (can) {
    const [, width, lag] = await run(VIDEO);
    assert.equal(width, 640);
    console.log(`WebKit: the video is ${lag.toFixed(2)} s behind the newest fragment it holds`);
    assert.ok(lag < 1.5, `WebKit keeps the video near live (${lag.toFixed(2)} s behind)`);
  } else {
    const a = await run(SAMPLE);
    await waitFor(async () => pictureDiff(a, await run(SAMPLE)) > 0, { timeout: 10000, what: 'the MJPEG picture to change' });
  }
  assert.equal((await run(KIND))[0], settled, 'it stays with that player');
});
