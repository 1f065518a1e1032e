// Helpers shared by the browser tests: the server under test, Chromium, waiting, pixels.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = process.env.PICAM_BIN || join(REPO, 'target', 'release', 'picam-stream');
/** The server built with the h264 feature (/stream.mp4); unset: the MP4 tests are skipped. */
export const BIN_H264 = process.env.PICAM_BIN_H264 || '';
export const ARTIFACTS = process.env.PICAM_BROWSER_ARTIFACTS || join(REPO, 'target', 'browser-artifacts');
export const CHROMIUM = process.env.PICAM_CHROMIUM || '/usr/bin/chromium';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** Wall-clock milliseconds with sub-millisecond resolution, comparable with a page's
 * `performance.timeOrigin + performance.now()` on the same machine. */
export const wallNow = () => performance.timeOrigin + performance.now();

export function artifact(name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  return join(ARTIFACTS, name);
}

/** Polls `fn` until it returns something truthy; fails after `timeout` ms. */
export async function waitFor(fn, { timeout = 10000, interval = 100, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${last})`);
    }
    await sleep(interval);
  }
}

// Everything started here is ended when the test process exits, whatever happened.
const children = new Set();
process.on('exit', () => {
  for (const c of children) {
    try { c.kill('SIGKILL'); } catch { /* gone */ }
  }
});

/** Starts a child process and remembers it for clean-up. */
export function startProcess(cmd, args, opts) {
  const child = spawn(cmd, args, opts);
  children.add(child);
  child.on('exit', () => children.delete(child));
  child.on('error', () => children.delete(child));
  return child;
}

/** Ends `child` with `signal`, then SIGKILL after `grace` ms; resolves when it has exited. */
export async function stopProcess(child, signal = 'SIGTERM', grace = 5000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), grace);
  await exited;
  clearTimeout(timer);
}

/**
 * Starts the server binary on 127.0.0.1:`port` (0: an ephemeral port) and resolves once
 * it logs `listening on 127.0.0.1:PORT`. `stdin: true` gives the caller its input; `bin`
 * is the binary (default: PICAM_BIN).
 */
export async function startServer({ args = [], port = 0, stdin = false, timeout = 15000, bin = BIN } = {}) {
  const proc = startProcess(bin, ['--listen', `127.0.0.1:${port}`, ...args], {
    stdio: [stdin ? 'pipe' : 'ignore', 'ignore', 'pipe'],
    env: { ...process.env, RUST_LOG: 'info' },
  });
  let text = '';
  const listening = new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`server did not start in ${timeout} ms:\n${text}`)), timeout);
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (chunk) => {
      text += chunk;
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(text);
      if (m) { clearTimeout(timer); ok(Number(m[1])); }
    });
    proc.on('exit', (code, sig) => {
      clearTimeout(timer);
      fail(new Error(`server exited (${code ?? sig}) before listening:\n${text}`));
    });
    proc.on('error', (e) => { clearTimeout(timer); fail(e); });
  });
  if (stdin) proc.stdin.on('error', () => { /* the server went away; the test says what failed */ });
  const actualPort = await listening;
  const base = `http://127.0.0.1:${actualPort}`;
  return {
    proc,
    port: actualPort,
    base,
    url: (path = '/index.html') => base + path,
    stdin: proc.stdin,
    log: () => text,
    stop: (signal) => stopProcess(proc, signal),
  };
}

/** Starts a server on `port`, retrying while the port is still taken (after a restart). */
export async function startServerOnPort(port, opts = {}, timeout = 15000) {
  const end = Date.now() + timeout;
  for (;;) {
    try {
      return await startServer({ ...opts, port });
    } catch (e) {
      if (Date.now() > end) throw e;
      await sleep(250);
    }
  }
}

export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/** Debian's Chromium, headless; Playwright gives it a fresh temporary profile. */
export function launchChromium() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 60000,
  });
}

/**
 * A 32x24 RGBA sample of what the page's <img id="stream"> (or the <video> `selector`
 * names) shows, drawn into a canvas.
 */
export function samplePicture(page, selector = '#stream') {
  return page.evaluate((sel) => {
    const img = document.querySelector(sel);
    if (!img || !(img.naturalWidth || (img.readyState >= 2 && img.videoWidth))) return null;
    const c = document.createElement('canvas');
    c.width = 32; c.height = 24;
    const g = c.getContext('2d');
    g.drawImage(img, 0, 0, 32, 24);
    return Array.from(g.getImageData(0, 0, 32, 24).data);
  }, selector);
}

/** Mean absolute difference per channel of two samples. */
export function pictureDiff(a, b) {
  let d = 0;
  for (let i = 0; i < a.length; i++) d += Math.abs(a[i] - b[i]);
  return d / a.length;
}

/**
 * Samples the picture `count` times, `every` ms apart, and returns how many samples differ
 * from the one before (a live stream: nearly all of them).
 */
export async function countChanges(sample, count = 6, every = 400) {
  let prev = await sample();
  let changes = 0;
  for (let i = 1; i < count; i++) {
    await sleep(every);
    const cur = await sample();
    if (prev && cur && pictureDiff(prev, cur) > 0) changes++;
    prev = cur;
  }
  return changes;
}

/** The page's status line (the `role=status` element) if it is visible, else ''. */
export async function stateText(page) {
  const el = page.locator('#state');
  return (await el.isVisible()) ? (await el.textContent()).trim() : '';
}

/** Waits until the page's status line says "Live". */
export async function waitLive(page, { timeout = 10000, what = 'the "Live" status' } = {}) {
  await waitFor(async () => (await stateText(page)) === 'Live', { timeout, what });
}

/** Solid-colour JPEGs of `width`x`height`, encoded by the browser's own canvas. */
export async function solidJpegs(browser, colours, width, height) {
  const page = await browser.newPage();
  try {
    const urls = await page.evaluate(({ colours, width, height }) => colours.map(([r, g, b]) => {
      const c = document.createElement('canvas');
      c.width = width; c.height = height;
      const x = c.getContext('2d');
      x.fillStyle = `rgb(${r},${g},${b})`;
      x.fillRect(0, 0, width, height);
      return c.toDataURL('image/jpeg', 0.9);
    }), { colours, width, height });
    return urls.map((u) => Buffer.from(u.slice(u.indexOf(',') + 1), 'base64'));
  } finally {
    await page.close();
  }
}

/** Fetches the server's /status as an object. */
export async function status(server) {
  const r = await fetch(server.url('/status'), { signal: AbortSignal.timeout(5000) });
  return r.json();
}

/** Solid colours far apart, for telling frames apart by the colour a page shows. */
export const PALETTE = [
  [220, 40, 40], [40, 190, 60], [40, 80, 230], [230, 200, 40],
  [190, 50, 200], [40, 200, 210], [245, 245, 245], [120, 70, 20],
];

/** The index in PALETTE of the colour nearest `rgb`, or -1 when none is near. */
export function nearestColour(rgb) {
  let best = -1;
  let bestD = Infinity;
  PALETTE.forEach((p, i) => {
    const d = Math.abs(p[0] - rgb[0]) + Math.abs(p[1] - rgb[1]) + Math.abs(p[2] - rgb[2]);
    if (d < bestD) { bestD = d; best = i; }
  });
  return bestD < 60 ? best : -1;
}
