// The page's buttons: snapshot download, full screen, the information overlay; all of them
// reachable and usable from the keyboard.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import {
  launchChromium, startServer, stateText, status, waitFor,
  waitLive,
} from './lib.mjs';

let server;
let browser;
let context;
let page;

before(async () => {
  server = await startServer({ args: ['--source', 'test', '--size', '640x480', '--fps', '30'] });
  browser = await launchChromium();
  context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  page = await context.newPage();
  await page.goto(server.url('/index.html'), { timeout: 15000 });
  await waitLive(page);
});

after(async () => {
  await context?.close();
  await browser?.close();
  await server?.stop();
});

test('the buttons are real buttons, reachable with Tab, with a visible focus ring', { timeout: 30000 }, async () => {
  await page.locator('body').click({ position: { x: 5, y: 5 } });
  const order = [];
  for (let i = 0; i < 8; i++) {
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => {
      const el = document.activeElement;
      const css = getComputedStyle(el);
      return { tag: el.tagName, id: el.id, outline: css.outlineStyle, width: parseFloat(css.outlineWidth) };
    });
    order.push(focused);
  }
  for (const id of ['fs', 'snap', 'info']) {
    const hit = order.find((f) => f.id === id);
    assert.ok(hit, `#${id} is reached with Tab (focus went: ${order.map((f) => f.id || f.tag).join(' → ')})`);
    assert.equal(hit.tag, 'BUTTON');
    assert.ok(hit.outline !== 'none' && hit.width >= 2, `#${id} shows a focus ring (${hit.outline} ${hit.width}px)`);
  }
  // Enter on a focused button works like a click.
  await page.focus('#info');
  await page.keyboard.press('Enter');
  assert.equal(await page.locator('#panel').isVisible(), true, 'Enter opens the overlay');
  await page.keyboard.press('Enter');
  assert.equal(await page.locator('#panel').isVisible(), false, 'Enter closes it again');
});

test('keyboard shortcuts, live region and text contrast', { timeout: 30000 }, async () => {
  await page.locator('body').click({ position: { x: 5, y: 5 } });
  await page.keyboard.press('i');
  assert.equal(await page.locator('#panel').isVisible(), true, '"i" opens the overlay');
  await page.keyboard.press('i');
  assert.equal(await page.locator('#panel').isVisible(), false, '"i" closes it');
  assert.equal(await page.locator('#state').getAttribute('role'), 'status');
  assert.equal(await page.locator('#state').getAttribute('aria-live'), 'polite');
  // Contrast of every text, against its own background composed over the worst picture
  // behind it (white, or black), by the WCAG formula; 4.5:1 is the AA minimum.
  await page.click('#info');
  const worst = await page.evaluate(() => {
    const rgba = (c) => (c.match(/[\d.]+/g) || []).map(Number).concat([1]).slice(0, 4);
    const lum = ([r, g, b]) => {
      const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const over = (top, under) => top.slice(0, 3).map((v, i) => v * top[3] + under[i] * (1 - top[3]));
    const results = [];
    for (const el of document.querySelectorAll('#state, button, #panel dt, #panel dd, footer, footer a')) {
      if (!el.getClientRects().length) continue;
      const layers = [];
      for (let e = el; e; e = e.parentElement) layers.push(rgba(getComputedStyle(e).backgroundColor));
      for (const behind of [[255, 255, 255], [0, 0, 0]]) {
        let bg = behind;
        for (const l of layers.reverse()) bg = over(l, bg);
        layers.reverse();
        const fg = over(rgba(getComputedStyle(el).color), bg);
        const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
        results.push({ el: el.id || el.tagName.toLowerCase(), ratio: (a + 0.05) / (b + 0.05) });
      }
    }
    return results.sort((x, y) => x.ratio - y.ratio)[0];
  });
  await page.click('#info');
  console.log(`lowest text contrast: ${worst.ratio.toFixed(1)}:1 (${worst.el})`);
  assert.ok(worst.ratio >= 4.5, `text contrast at least 4.5:1, lowest ${worst.ratio.toFixed(2)}:1 (${worst.el})`);
});

test('snapshot downloads the current frame as picam-<timestamp>.jpg', { timeout: 30000 }, async () => {
  const before = new Date();
  const [download] = await Promise.all([
    page.waitForEvent('download', { timeout: 10000 }),
    page.click('#snap'),
  ]);
  const name = download.suggestedFilename();
  console.log(`snapshot downloaded as ${name}`);
  const m = /^picam-(\d{4})-(\d\d)-(\d\d)T(\d\d)-(\d\d)-(\d\d)\.jpg$/.exec(name);
  assert.ok(m, `timestamped name, got ${name}`);
  const stamp = new Date(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
  assert.ok(Math.abs(stamp - before) < 60000, `the name carries the local time of the click (${name} vs ${before})`);
  const bytes = await readFile(await download.path());
  assert.ok(bytes.length > 1000, `a whole picture (${bytes.length} bytes)`);
  assert.deepEqual([...bytes.subarray(0, 2)], [0xff, 0xd8], 'starts with the JPEG SOI marker');
  assert.deepEqual([...bytes.subarray(-2)], [0xff, 0xd9], 'ends with the JPEG EOI marker');
  await waitFor(async () => (await page.locator('#toast').textContent()).includes(name), {
    timeout: 5000, what: 'the page to say the snapshot was saved',
  });
});

test('full screen button toggles full screen', { timeout: 30000 }, async () => {
  const fs = page.locator('#fs');
  assert.equal(await fs.isVisible(), true);
  await fs.click();
  await waitFor(() => page.evaluate(() => document.fullscreenElement === document.documentElement), {
    timeout: 5000, what: 'document.fullscreenElement',
  });
  // The button follows the fullscreenchange event, which comes a frame later.
  await waitFor(async () => (await fs.getAttribute('aria-pressed')) === 'true', { timeout: 5000, what: 'aria-pressed=true' });
  await fs.click();
  await waitFor(() => page.evaluate(() => document.fullscreenElement === null), {
    timeout: 5000, what: 'full screen to end',
  });
  await waitFor(async () => (await fs.getAttribute('aria-pressed')) === 'false', { timeout: 5000, what: 'aria-pressed=false' });
});

test('the overlay shows resolution, fps, viewers and source from /status', { timeout: 30000 }, async () => {
  const panel = page.locator('#panel');
  assert.equal(await panel.isVisible(), false, 'hidden at first');
  await page.click('#info');
  assert.equal(await page.locator('#info').getAttribute('aria-expanded'), 'true');
  await waitFor(async () => (await page.locator('#p-src').textContent()) !== '', { timeout: 5000, what: 'the overlay to fill' });
  const text = async (id) => (await page.locator(id).textContent()).trim();
  // The measured rate moves from one poll to the next: compare a poll with the overlay
  // until the overlay shows that poll's numbers (bounded).
  let s;
  let shown;
  await waitFor(async () => {
    s = await status(server);
    shown = {
      res: await text('#p-res'), fps: await text('#p-fps'), cli: await text('#p-cli'), src: await text('#p-src'),
    };
    const fps = Number(/^([\d.]+) fps$/.exec(shown.fps)?.[1]);
    return shown.cli === `${s.clients} of ${s.max_clients}` && Math.abs(fps - s.fps_measured) < 2;
  }, { timeout: 15000, interval: 500, what: 'the overlay to match /status' }).catch(() => {});
  console.log(`overlay: ${JSON.stringify(shown)}; /status: ${s.width}x${s.height}, ${s.fps_measured} fps, ${s.clients} clients, ${s.source}`);
  assert.equal(shown.res, `${s.width} × ${s.height}`);
  assert.equal(shown.src, s.source);
  assert.equal(shown.cli, `${s.clients} of ${s.max_clients}`);
  assert.match(shown.fps, /^\d+\.\d fps$/);
  const fps = Number(shown.fps.split(' ')[0]);
  assert.ok(Math.abs(fps - s.fps_measured) < 2, `fps ${shown.fps} close to /status's ${s.fps_measured}`);
  assert.equal(s.clients, 1, 'the page is the one viewer');
  // The overlay follows /status while shown: a second viewer appears in it, then leaves.
  const viewer = new AbortController();
  const stream = await fetch(server.url('/stream.mjpg'), { signal: viewer.signal });
  assert.equal(stream.status, 200);
  await waitFor(async () => (await text('#p-cli')) === `2 of ${s.max_clients}`, { timeout: 10000, what: 'the overlay to count 2 viewers' });
  viewer.abort();
  await stream.body?.cancel().catch(() => {});
  await waitFor(async () => (await text('#p-cli')) === `1 of ${s.max_clients}`, { timeout: 15000, what: 'the overlay to count 1 viewer again' });
  await page.click('#info');
  assert.equal(await panel.isVisible(), false, 'hidden again');
  assert.equal(await page.locator('#info').getAttribute('aria-expanded'), 'false');
});
