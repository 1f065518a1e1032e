// A camera with users: Chromium without credentials gets 401 and no picture; with them
// (as a person types them into the browser's dialog) the page, its status overlay and
// the live stream all work, every request carrying the same Basic credentials.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  artifact, countChanges, launchChromium, samplePicture, startServer, waitFor, waitLive,
} from './lib.mjs';

let server;
let browser;

before(async () => {
  server = await startServer({
    args: ['--source', 'test', '--size', '640x480', '--fps', '30', '--auth', 'ann:browser-pw'],
  });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Opens the page in a fresh context; returns the first answer to it. Headless Chromium
 * cannot show the password dialog, so the navigation itself fails after the 401. */
async function firstAnswer(credentials) {
  const context = await browser.newContext(credentials ? { httpCredentials: credentials } : {});
  const page = await context.newPage();
  try {
    const answered = page.waitForResponse((r) => r.url().endsWith('/index.html'), { timeout: 15000 });
    const nav = page.goto(server.url('/index.html'), { timeout: 15000 }).catch((e) => e);
    const response = await answered;
    const result = { status: response.status(), challenge: response.headers()['www-authenticate'] };
    const navResult = await nav;
    result.navigated = !(navResult instanceof Error) && navResult?.status() === 200;
    return result;
  } finally {
    await context.close();
  }
}

test('without credentials, or with wrong ones, the page is refused', { timeout: 60000 }, async () => {
  for (const credentials of [null, { username: 'ann', password: 'nope' }, { username: 'bob', password: 'browser-pw' }]) {
    const r = await firstAnswer(credentials);
    assert.equal(r.status, 401, JSON.stringify(credentials));
    assert.equal(r.challenge, 'Basic realm="picam-stream", charset="UTF-8"');
    assert.equal(r.navigated, false);
  }
});

test('with credentials the page shows the live stream', { timeout: 60000 }, async () => {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 800 },
    httpCredentials: { username: 'ann', password: 'browser-pw' },
  });
  const page = await context.newPage();
  const answers = [];
  page.on('response', (r) => answers.push([new URL(r.url()).pathname, r.status()]));
  try {
    const response = await page.goto(server.url('/index.html'), { timeout: 15000 });
    assert.equal(response.status(), 200);
    const img = page.locator('#stream');
    await waitFor(() => img.evaluate((el) => el.naturalWidth), { timeout: 10000, what: 'the first frame' });
    await waitLive(page);
    const changes = await countChanges(() => samplePicture(page), 6, 400);
    assert.ok(changes >= 4, `the picture must keep changing (changed ${changes} of 5 times)`);
    await page.screenshot({ path: artifact('auth-live.png') });
    const stream = answers.find(([p]) => p === '/stream.mjpg');
    assert.deepEqual(stream?.[1], 200, `the stream was answered: ${JSON.stringify(answers)}`);
    const refused = answers.filter(([, s]) => s === 401);
    // A browser may first ask without credentials and repeat after the 401: what counts
    // is that no URL was left refused.
    const finals = new Map(answers.map(([p, s]) => [p, s]));
    assert.ok([...finals.values()].every((s) => s !== 401), `every URL got in at last: ${JSON.stringify(answers)}`);
    console.log(`answers: ${answers.length}, of which 401 before the credentials were sent: ${refused.length}`);
  } finally {
    await context.close();
  }
});
