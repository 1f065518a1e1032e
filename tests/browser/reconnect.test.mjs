// When the stream drops the page says so, and it comes back by itself, without a reload,
// when the server is there again. A camera that stops sending is reported too: the page
// never shows an old picture as if it were live.
import assert from 'node:assert/strict';
import { connect, createServer } from 'node:net';
import { after, before, test } from 'node:test';
import {
  artifact, countChanges, launchChromium, samplePicture, sleep, solidJpegs, startServer,
  startServerOnPort, stateText, waitFor,
  waitLive,
} from './lib.mjs';

const TEST_SOURCE = ['--source', 'test', '--size', '320x240', '--fps', '10'];
let browser;
const servers = [];

before(async () => {
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  for (const s of servers) await s.stop();
});

async function openPage(server) {
  const page = await browser.newPage({ viewport: { width: 800, height: 600 } });
  let navigations = 0;
  page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations++; });
  await page.goto(server.url('/index.html'), { timeout: 15000 });
  await waitLive(page);
  await page.evaluate(() => {
    window.__sameDocument = true;
    // Every change of the status line, with its wall-clock time.
    const el = document.getElementById('state');
    window.__states = [];
    new MutationObserver(() => window.__states.push([Date.now(), el.textContent]))
      .observe(el, { childList: true, characterData: true, subtree: true });
  });
  return { page, navigations: () => navigations };
}

/** The status line's changes since `since` (a Date.now() value), for the log. */
async function timeline(page, since) {
  const states = await page.evaluate(() => window.__states);
  return states.filter(([t]) => t >= since).map(([t, text]) => `+${t - since} ms "${text}"`).join('; ');
}

async function assertLive(page, what) {
  const changes = await countChanges(() => samplePicture(page), 5, 400);
  assert.ok(changes >= 3, `${what}: the picture must change again (changed ${changes} of 4 times)`);
}

test('server stopped: the page says so; restarted on the same port: the stream resumes', { timeout: 90000 }, async () => {
  const first = await startServer({ args: TEST_SOURCE });
  servers.push(first);
  const { page, navigations } = await openPage(first);
  try {
    await assertLive(page, 'before the stop');

    const stoppedAt = Date.now();
    await first.stop();
    const down = await waitFor(async () => {
      const t = await stateText(page);
      return /disconnected/i.test(t) && t;
    }, { timeout: 10000, what: 'the page to say it is disconnected' });
    console.log(`disconnection shown after ${Date.now() - stoppedAt} ms: "${down}"`);
    assert.equal(await page.evaluate(() => document.body.className), 'bad', 'the picture is marked as not live');
    await page.screenshot({ path: artifact('reconnect-disconnected.png') });

    await sleep(2000);
    const second = await startServerOnPort(first.port, { args: TEST_SOURCE });
    servers.push(second);
    const restartedAt = Date.now();
    await waitLive(page, { timeout: 30000, what: 'the "Live" status after the restart' });
    console.log(`stream live again ${Date.now() - restartedAt} ms after the server restarted`);
    console.log(`status line after the stop: ${await timeline(page, stoppedAt)}`);
    await assertLive(page, 'after the restart');
    assert.equal(await page.evaluate(() => window.__sameDocument), true, 'the page was not reloaded');
    assert.equal(navigations(), 1, 'the page was not navigated again');
    await page.screenshot({ path: artifact('reconnect-resumed.png') });
  } finally {
    await page.close();
  }
});

test('a server restarted between two status polls: the stream resumes', { timeout: 90000 }, async () => {
  const first = await startServer({ args: TEST_SOURCE });
  servers.push(first);
  const { page } = await openPage(first);
  try {
    await assertLive(page, 'before the restart');
    const stoppedAt = Date.now();
    await first.stop();
    const second = await startServerOnPort(first.port, { args: TEST_SOURCE });
    servers.push(second);
    console.log(`server down for ${Date.now() - stoppedAt} ms`);
    // Whatever the page noticed, it must open a stream on the new server by itself …
    await waitFor(() => /started watching \/stream\.mjpg/.test(second.log()), {
      timeout: 20000, what: 'the page to open a stream on the restarted server',
    });
    const reopened = Date.now() - stoppedAt;
    // … and show its pictures.
    await waitLive(page);
    await assertLive(page, 'after the restart');
    console.log(`stream reopened on the new server ${reopened} ms after the stop`);
    console.log(`status line after the stop: ${await timeline(page, stoppedAt)}`);
    assert.equal(await page.evaluate(() => window.__sameDocument), true, 'the page was not reloaded');
  } finally {
    await page.close();
  }
});

test('a camera that stops sending is reported, and live again when it resumes', { timeout: 90000 }, async () => {
  const frames = await solidJpegs(browser, [[200, 60, 60], [60, 60, 200]], 320, 240);
  const server = await startServer({ args: ['--source', 'stdin', '--fps', '5'], stdin: true });
  servers.push(server);
  let n = 0;
  let feeding = setInterval(() => server.stdin.write(frames[n++ % 2]), 200);
  try {
    const { page } = await openPage(server);
    try {
      clearInterval(feeding);
      const stalledAt = Date.now();
      const text = await waitFor(async () => {
        const t = await stateText(page);
        return /no new picture/i.test(t) && t;
      }, { timeout: 15000, what: 'the page to say the camera stopped sending' });
      console.log(`stalled source shown after ${Date.now() - stalledAt} ms: "${text}"`);
      assert.equal(await page.evaluate(() => document.body.className), 'warn');
      await page.screenshot({ path: artifact('reconnect-camera-stalled.png') });

      feeding = setInterval(() => server.stdin.write(frames[n++ % 2]), 200);
      await waitLive(page, { timeout: 15000, what: 'the "Live" status after the camera resumed' });
    } finally {
      await page.close();
    }
  } finally {
    clearInterval(feeding);
  }
});

/**
 * A TCP relay in front of the server that can stall every connection without closing it,
 * like a Wi-Fi link that drops out: nothing arrives, nobody is told. When the link comes
 * back, the connections that lived through the outage are reset (the server has long
 * given up on them) and new ones work again.
 */
async function flakyLink(targetPort) {
  let down = false;
  const open = new Set();
  const relay = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    const pair = [client, upstream];
    open.add(pair);
    const end = () => { open.delete(pair); client.destroy(); upstream.destroy(); };
    for (const [from, to] of [[client, upstream], [upstream, client]]) {
      from.on('data', (chunk) => { if (!down) to.write(chunk); });
      from.on('error', end);
      from.on('close', end);
    }
  });
  await new Promise((ok) => relay.listen(0, '127.0.0.1', ok));
  return {
    port: relay.address().port,
    drop() { down = true; },
    restore() {
      down = false;
      for (const pair of open) for (const s of pair) s.resetAndDestroy();
    },
    close() {
      for (const pair of open) for (const s of pair) s.destroy();
      return new Promise((ok) => relay.close(ok));
    },
  };
}

test('a network drop-out that stalls the connections: the page says so and recovers', { timeout: 90000 }, async () => {
  const server = await startServer({ args: TEST_SOURCE });
  servers.push(server);
  const link = await flakyLink(server.port);
  const viaLink = { url: (path) => `http://127.0.0.1:${link.port}${path}` };
  const { page } = await openPage(viaLink);
  try {
    await assertLive(page, 'before the drop-out');
    const droppedAt = Date.now();
    link.drop();
    const down = await waitFor(async () => {
      const t = await stateText(page);
      return /disconnected/i.test(t) && t;
    }, { timeout: 15000, what: 'the page to say it is disconnected' });
    console.log(`drop-out shown after ${Date.now() - droppedAt} ms: "${down}"`);
    await sleep(3000);
    link.restore();
    const restoredAt = Date.now();
    await waitLive(page, { timeout: 30000, what: 'the "Live" status after the drop-out' });
    await assertLive(page, 'after the drop-out');
    console.log(`live again ${Date.now() - restoredAt} ms after the link came back`);
    console.log(`status line after the drop-out: ${await timeline(page, droppedAt)}`);
    assert.equal(await page.evaluate(() => window.__sameDocument), true, 'the page was not reloaded');
  } finally {
    await page.close();
    await link.close();
  }
});
