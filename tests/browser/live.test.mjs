// The page loads from the running server and its picture is live, with and without
// JavaScript; the page talks to nobody but the server it came from.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  countChanges, launchChromium, samplePicture, startServer, stateText, waitFor,
  waitLive,
} from './lib.mjs';

let server;
let browser;

before(async () => {
  server = await startServer({ args: ['--source', 'test', '--size', '640x480', '--fps', '30'] });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('the page shows live frames from the server', { timeout: 60000 }, async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  try {
    const response = await page.goto(server.url('/index.html'), { timeout: 15000 });
    assert.equal(response.status(), 200);
    assert.equal(await page.title(), 'picam-stream');

    const img = page.locator('#stream');
    assert.match(await img.getAttribute('alt'), /\w/, 'the picture has alt text');
    await waitFor(() => img.evaluate((el) => el.naturalWidth), { timeout: 10000, what: 'the first frame' });
    assert.deepEqual(await img.evaluate((el) => [el.naturalWidth, el.naturalHeight]), [640, 480]);
    assert.match(await img.evaluate((el) => el.currentSrc), /\/stream\.mjpg\?advance_headers=1/);

    await waitLive(page);
    const changes = await countChanges(() => samplePicture(page), 6, 400);
    console.log(`picture changed in ${changes} of 5 intervals of 400 ms`);
    assert.ok(changes >= 4, `the picture must keep changing (changed ${changes} of 5 times)`);

    const foreign = requests.filter((u) => !u.startsWith(server.base + '/'));
    assert.deepEqual(foreign, [], 'the page requests nothing but its own server');
  } finally {
    await context.close();
  }
});

test('without JavaScript the plain <img> streams', { timeout: 60000 }, async () => {
  const context = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 800, height: 600 } });
  const page = await context.newPage();
  try {
    await page.goto(server.url('/index.html'), { timeout: 15000 });
    const img = page.locator('#stream');
    assert.equal(await img.getAttribute('src'), 'stream.mjpg?advance_headers=1');
    // Controls that need JavaScript stay hidden; the footer links are there.
    for (const id of ['#bar', '#state', '#panel']) {
      assert.equal(await page.locator(id).isVisible(), false, `${id} is hidden without JavaScript`);
    }
    for (const href of ['snapshot.jpg', 'stream.mjpg', 'status']) {
      assert.equal(await page.locator(`footer a[href="${href}"]`).count(), 1, `footer links to ${href}`);
    }
    // No script runs in the page, so compare screenshots of the element.
    const shots = [];
    for (let i = 0; i < 4; i++) {
      shots.push(await img.screenshot({ timeout: 10000 }));
      await new Promise((r) => setTimeout(r, 400));
    }
    const distinct = new Set(shots.map((b) => b.toString('base64'))).size;
    console.log(`${distinct} distinct screenshots of 4 without JavaScript`);
    assert.ok(distinct >= 3, `the picture must change without JavaScript (${distinct} distinct of 4)`);
  } finally {
    await context.close();
  }
});
