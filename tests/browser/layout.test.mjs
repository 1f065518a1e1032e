// The layout holds on a phone (portrait and landscape) and on a desktop: the picture
// fills the space it has, keeps the stream's aspect ratio and stays inside the viewport;
// the controls and the footer stay on screen. Screenshots are saved for people to look at.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import {
  artifact, launchChromium, solidJpegs, startServer, stateText, waitFor,
  waitLive,
} from './lib.mjs';

const PHONE = { deviceScaleFactor: 3, isMobile: true, hasTouch: true };
const VIEWPORTS = [
  { name: 'phone-portrait', viewport: { width: 390, height: 844 }, ...PHONE },
  { name: 'phone-landscape', viewport: { width: 844, height: 390 }, ...PHONE },
  { name: 'desktop', viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 },
];
const ORANGE = [255, 140, 0];

let browser;
const servers = [];
const feeders = [];

before(async () => {
  browser = await launchChromium();
});

after(async () => {
  for (const f of feeders) clearInterval(f);
  await browser?.close();
  for (const s of servers) await s.stop();
});

/** A server streaming a solid orange picture of `w`x`h`, 5 frames a second. */
async function solidServer(w, h) {
  const [jpeg] = await solidJpegs(browser, [ORANGE], w, h);
  const server = await startServer({ args: ['--source', 'stdin', '--fps', '5'], stdin: true });
  servers.push(server);
  server.stdin.write(jpeg);
  feeders.push(setInterval(() => server.stdin.write(jpeg), 200));
  return server;
}

/** Bounding box, in CSS pixels, of the orange pixels of a PNG screenshot. */
async function orangeBox(png, scale) {
  const page = await browser.newPage();
  try {
    return await page.evaluate(async ({ src, scale, orange }) => {
      const img = new Image();
      img.src = src;
      await img.decode();
      const c = document.createElement('canvas');
      c.width = img.naturalWidth; c.height = img.naturalHeight;
      const g = c.getContext('2d');
      g.drawImage(img, 0, 0);
      const d = g.getImageData(0, 0, c.width, c.height).data;
      let x0 = Infinity; let y0 = Infinity; let x1 = -1; let y1 = -1;
      for (let y = 0; y < c.height; y++) {
        for (let x = 0; x < c.width; x++) {
          const i = (y * c.width + x) * 4;
          if (Math.abs(d[i] - orange[0]) + Math.abs(d[i + 1] - orange[1]) + Math.abs(d[i + 2] - orange[2]) < 40) {
            if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y;
          }
        }
      }
      if (x1 < 0) return null;
      return { x: x0 / scale, y: y0 / scale, width: (x1 + 1 - x0) / scale, height: (y1 + 1 - y0) / scale };
    }, { src: `data:image/png;base64,${png.toString('base64')}`, scale, orange: ORANGE });
  } finally {
    await page.close();
  }
}

for (const [w, h] of [[640, 480], [1280, 720]]) {
  test(`a ${w}x${h} stream fits phone and desktop viewports`, { timeout: 120000 }, async () => {
    const server = await solidServer(w, h);
    for (const v of VIEWPORTS) {
      const context = await browser.newContext(v);
      const page = await context.newPage();
      try {
        await page.goto(server.url('/index.html'), { timeout: 15000 });
        await waitLive(page);
        const path = artifact(`layout-${v.name}-${w}x${h}.png`);
        const png = await page.screenshot({ path });
        const box = await orangeBox(png, v.deviceScaleFactor);
        const view = await page.locator('#view').boundingBox();
        const { width: vw, height: vh } = v.viewport;
        console.log(`${v.name} ${vw}x${vh}, ${w}x${h} stream: picture at ${JSON.stringify(box)} in an area of ${view.width}x${view.height}`);
        assert.ok(box, 'the picture is on screen');
        const tol = 1.5;
        assert.ok(box.x >= 0 && box.y >= 0 && box.x + box.width <= vw + 0.01 && box.y + box.height <= vh + 0.01,
          'the picture stays inside the viewport');
        // What object-fit: contain must give: the largest rectangle of the stream's ratio.
        const s = Math.min(view.width / w, view.height / h);
        const expect = { width: w * s, height: h * s };
        assert.ok(Math.abs(box.width - expect.width) <= tol && Math.abs(box.height - expect.height) <= tol,
          `the picture fills its area: ${box.width}x${box.height}, expected ${expect.width.toFixed(1)}x${expect.height.toFixed(1)}`);
        const ratio = box.width / box.height;
        assert.ok(Math.abs(ratio / (w / h) - 1) < 0.01, `aspect ratio kept: ${ratio.toFixed(3)} vs ${(w / h).toFixed(3)}`);
        assert.ok(Math.abs(box.x + box.width / 2 - (view.x + view.width / 2)) <= tol, 'centred horizontally');
        assert.ok(Math.abs(box.y + box.height / 2 - (view.y + view.height / 2)) <= tol, 'centred vertically');
        for (const sel of ['#bar', 'footer']) {
          const b = await page.locator(sel).boundingBox();
          assert.ok(b && b.x >= 0 && b.y >= 0 && b.x + b.width <= vw && b.y + b.height <= vh, `${sel} is inside the viewport`);
        }
        assert.ok(view.height >= vh * 0.85, `the picture's area takes most of the height (${view.height} of ${vh})`);
      } finally {
        await context.close();
      }
    }
  });
}

test('screenshots of the live page with the overlay open', { timeout: 120000 }, async () => {
  const server = await startServer({ args: ['--source', 'test', '--size', '1280x720', '--fps', '15'] });
  servers.push(server);
  for (const v of VIEWPORTS) {
    const context = await browser.newContext(v);
    const page = await context.newPage();
    try {
      await page.goto(server.url('/index.html'), { timeout: 15000 });
      await waitLive(page);
      await page.click('#info');
      // The first answer may predate the page's own stream; wait for one that counts it.
      await waitFor(async () => (await page.locator('#p-cli').textContent()).startsWith('1 ') &&
        !(await page.locator('#p-fps').textContent()).startsWith('0.0'), {
        timeout: 10000, what: 'the overlay to count this viewer and a frame rate',
      });
      await page.screenshot({ path: artifact(`page-${v.name}.png`) });
      const panel = await page.locator('#panel').boundingBox();
      const { width: vw, height: vh } = v.viewport;
      assert.ok(panel.x >= 0 && panel.y >= 0 && panel.x + panel.width <= vw && panel.y + panel.height <= vh,
        'the overlay is inside the viewport');
    } finally {
      await context.close();
    }
  }
  assert.ok((await readFile(artifact('page-desktop.png'))).length > 1000);
});
