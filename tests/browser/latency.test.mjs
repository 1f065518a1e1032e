// With a 1 fps source, every frame the server publishes is painted by the page within
// 300 ms: the browser format sends the next part's headers right after each picture, so
// the browser does not wait for the next frame to show this one. The classic format is
// measured too, as a control (printed, not asserted): there each picture shows one frame late.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  launchChromium, sleep, solidJpegs, startServer, stateText, waitFor, wallNow,
  PALETTE, nearestColour as nearest,
} from './lib.mjs';

const FRAMES = 8;          // measured frames per format
const LIMIT_MS = 300;

let server;
let browser;
let jpegs;

before(async () => {
  browser = await launchChromium();
  jpegs = await solidJpegs(browser, PALETTE, 320, 240);
  server = await startServer({ args: ['--source', 'stdin', '--fps', '1'], stdin: true });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Feeds one frame a second, starting with `first`; returns each frame's write time. */
async function feed(first, count) {
  const written = [];
  let next = wallNow();
  for (let k = 0; k < count; k++) {
    const colour = (first + k) % PALETTE.length;
    const at = wallNow();
    await new Promise((ok, fail) => server.stdin.write(jpegs[colour], (e) => (e ? fail(e) : ok())));
    written.push({ colour, at });
    next += 1000;
    await sleep(Math.max(0, next - wallNow()));
  }
  return written;
}

/** In the page: on every animation frame, the colour at the picture's centre, recorded
 * with its wall-clock time whenever it changes. */
function startRecorder(page) {
  return page.evaluate(() => {
    const img = document.getElementById('stream');
    const c = document.createElement('canvas');
    c.width = 1; c.height = 1;
    const g = c.getContext('2d', { willReadFrequently: true });
    const seen = [];
    window.__painted = seen;
    let last = '';
    const step = () => {
      if (img.naturalWidth) {
        const w = img.naturalWidth; const h = img.naturalHeight;
        g.drawImage(img, w / 2 - 4, h / 2 - 4, 8, 8, 0, 0, 1, 1);
        const d = g.getImageData(0, 0, 1, 1).data;
        const key = `${d[0]},${d[1]},${d[2]}`;
        if (key !== last) {
          last = key;
          seen.push({ at: performance.timeOrigin + performance.now(), rgb: [d[0], d[1], d[2]] });
        }
      }
      if (window.__painted === seen) requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
  });
}

/** Publish-to-paint time of each written frame: the first time its colour is seen. */
function latencies(written, painted) {
  return written.map(({ colour, at }) => {
    const hit = painted.find((p) => p.at >= at && nearest(p.rgb) === colour);
    return hit ? hit.at - at : Infinity;
  });
}

async function measure(page, streamUrl, first) {
  await page.evaluate((u) => { document.getElementById('stream').src = u; }, streamUrl);
  // Settle on the new stream, then record.
  await sleep(1500);
  await startRecorder(page);
  const written = await feed(first, FRAMES);
  await sleep(1500);
  const painted = await page.evaluate(() => { const p = window.__painted; window.__painted = null; return p; });
  return latencies(written, painted);
}

const fmt = (xs) => xs.map((x) => (Number.isFinite(x) ? `${Math.round(x)}` : 'never')).join(', ');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

test('a frame published at 1 fps is painted within 300 ms', { timeout: 120000 }, async () => {
  // A first frame, so that the page has a picture to start from.
  await feed(PALETTE.length - 1, 1);
  const page = await browser.newPage({ viewport: { width: 800, height: 600 } });
  try {
    await page.goto(server.url('/index.html'), { timeout: 15000 });
    await waitFor(async () => (await stateText(page)) !== '', { timeout: 10000, what: 'the status line' });
    // Frames keep coming while the page settles; the measurement starts from a known colour.
    const browserFormat = await measure(page, 'stream.mjpg?advance_headers=1&measure=1', 0);
    console.log(`publish-to-paint, browser format (/stream.mjpg?advance_headers=1), ms: ${fmt(browserFormat)}; median ${Math.round(median(browserFormat))}`);
    const classic = await measure(page, 'stream.mjpg?measure=2', 0);
    console.log(`publish-to-paint, classic format (/stream.mjpg), control, ms: ${fmt(classic)}; median ${Math.round(median(classic))}`);
    for (const [i, ms] of browserFormat.entries()) {
      assert.ok(ms < LIMIT_MS, `frame ${i + 1} painted after ${Math.round(ms)} ms (limit ${LIMIT_MS} ms); all: ${fmt(browserFormat)}`);
    }
  } finally {
    await page.close();
  }
});
