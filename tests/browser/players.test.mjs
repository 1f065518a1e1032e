// The page's players in Chromium: with a server built with the h264 feature it plays the
// fragmented MP4 (/stream.mp4) in a <video>, stays near live by itself, lets the viewer
// switch to MJPEG (remembered), and falls back when a player cannot start; a server
// without H.264 gets MJPEG.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  BIN_H264, countChanges, launchChromium, samplePicture, sleep, startServer, startServerOnPort,
  stateText, status, waitFor, waitLive,
} from './lib.mjs';

const required = process.env.PICAM_BROWSER_REQUIRE_H264 === '1';
const skip = !BIN_H264 && !required ? 'PICAM_BIN_H264 is not set (no server built with the h264 feature)' : false;
// WebRTC off: these tests are about the MP4 and MJPEG players (webrtc.test.mjs has its own).
const ARGS = ['--source', 'test', '--size', '640x480', '--fps', '30', '--webrtc-port', 'off'];

let browser;
let server;
const others = [];

before(async () => {
  if (skip) return;
  assert.ok(BIN_H264, 'PICAM_BIN_H264 names the server built with the h264 feature');
  server = await startServer({ args: ARGS, bin: BIN_H264 });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  for (const s of others) await s.stop();
});

/** A fresh page on `url`, with its console messages collected in `page.messages`. */
async function open(url, context) {
  const page = await context.newPage();
  page.messages = [];
  page.on('console', (m) => page.messages.push(m.text()));
  await page.goto(url, { timeout: 15000 });
  return page;
}

/**
 * Runs `fn` with a fresh page on `url` in a 1280x800 context of its own (`prepare`
 * gets the context first), and closes it.
 */
async function onPage(url, fn, prepare) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  try {
    if (prepare) await prepare(context);
    return await fn(await open(url, context), context);
  } finally {
    await context.close();
  }
}

/** `count` of the video's lags behind live, `every` ms apart. */
async function lags(page, count = 10, every = 300) {
  const out = [];
  for (let i = 0; i < count; i++) {
    out.push((await playhead(page)).lag);
    await sleep(every);
  }
  return out;
}
const seconds = (list) => list.map((l) => l.toFixed(2)).join(', ');

const label = (page) => page.locator('#kind').textContent();
/**
 * The <video>'s playhead, how far it is behind the end of what it holds, and how many
 * seconds it holds (s).
 */
const playhead = (page) => page.evaluate(() => {
  const v = document.getElementById('video');
  const b = v.buffered;
  const end = b.length ? b.end(b.length - 1) : null;
  return { t: v.currentTime, lag: b.length ? end - v.currentTime : null, held: b.length ? end - b.start(0) : 0, paused: v.paused };
});
/** Pauses the page's video and holds off its play() until `resume` is called. */
const holdPaused = (page) => page.evaluate(() => {
  const v = document.getElementById('video');
  v.play = () => Promise.resolve();
  v.pause();
});
const resume = (page) => page.evaluate(() => { delete document.getElementById('video').play; });
const sampleVideo = (page) => samplePicture(page, '#video');

async function waitMp4Playing(page) {
  await waitFor(async () => (await label(page)) === 'MP4', { timeout: 15000, what: 'the MP4 player' });
  const first = await waitFor(async () => {
    const p = await playhead(page);
    return p.t > 0 && p;
  }, { timeout: 20000, what: 'the video to start playing' });
  await waitFor(async () => (await playhead(page)).t > first.t + 0.5, {
    timeout: 20000, what: 'the playhead to advance',
  });
}

test('with H.264 the page plays the MP4 stream in a <video>', { skip, timeout: 90000 }, async () => {
  assert.deepEqual((await status(server)).players, ['mp4', 'mjpeg']);
  await onPage(server.url('/'), async (page) => {
    await waitMp4Playing(page);
    await waitLive(page, { timeout: 20000 });
    assert.equal(await page.locator('#video').isVisible(), true, 'the video is shown');
    assert.equal(await page.locator('#stream').isVisible(), false, 'the <img> is not');
    assert.deepEqual(await page.evaluate(() => {
      const v = document.getElementById('video');
      return [v.videoWidth, v.videoHeight];
    }), [640, 480]);
    // The decoded picture is the test pattern: not one flat colour, and moving.
    const px = await sampleVideo(page);
    const mean = px.reduce((a, v) => a + v, 0) / px.length;
    const spread = px.reduce((a, v) => a + Math.abs(v - mean), 0) / px.length;
    assert.ok(spread > 10, `the picture is not blank (mean deviation ${spread.toFixed(1)})`);
    const changes = await countChanges(() => sampleVideo(page), 6, 400);
    console.log(`video picture changed in ${changes} of 5 intervals of 400 ms`);
    assert.ok(changes >= 4, `the video keeps changing (changed ${changes} of 5 times)`);
    const s = await status(server);
    assert.equal(s.h264_viewers, 1, 'the page reads /stream.mp4');
    assert.equal(s.clients, 1, 'and no MJPEG stream besides');
    console.log(`MP4 player: behind the newest fragment it holds by ${seconds(await lags(page, 10, 200))} s`);
    assert.deepEqual(page.messages.filter((m) => /picam-stream/.test(m)), [], 'no player failed');
  });
});

test('the viewer can switch to MJPEG and back; the choice is remembered', { skip, timeout: 120000 }, async () => {
  await onPage(server.url('/'), async (page) => {
    await waitMp4Playing(page);
    // The choice is a native <select>: from the keyboard, two steps down from Auto
    // (past MP4; WebRTC is not offered) is MJPEG.
    await page.focus('#player');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'player');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowDown');
    assert.equal(await page.locator('#player').inputValue(), 'mjpeg');
    await waitFor(async () => (await label(page)) === 'MJPEG', { what: 'the MJPEG label' });
    await waitFor(() => page.locator('#stream').evaluate((el) => el.naturalWidth === 640), {
      timeout: 15000, what: 'an MJPEG picture',
    });
    assert.equal(await page.locator('#video').isVisible(), false);
    await waitLive(page, { timeout: 15000 });
    const changes = await countChanges(() => samplePicture(page), 6, 400);
    assert.ok(changes >= 4, `the MJPEG picture keeps changing (changed ${changes} of 5 times)`);
    await waitFor(async () => (await status(server)).h264_viewers === 0, {
      timeout: 15000, what: 'the MP4 stream to be closed',
    });
    await page.reload();
    await waitLive(page, { timeout: 15000 });
    await sleep(2500);              // past the first /status answers, which could switch players
    assert.equal(await label(page), 'MJPEG', 'the choice outlives a reload');
    assert.equal(await page.locator('#player').inputValue(), 'mjpeg');
    await page.selectOption('#player', 'auto');
    await waitMp4Playing(page);
  });
});

test('a video that falls behind jumps back to live by itself', { skip, timeout: 120000 }, async () => {
  await onPage(server.url('/'), async (page) => {
    await waitMp4Playing(page);
    await waitLive(page, { timeout: 20000 });
    // Paused for 3 s, with play() held off so the page cannot resume it meanwhile.
    await holdPaused(page);
    await sleep(3000);
    const behind = await playhead(page);
    console.log(`after a 3 s pause the video is ${behind.lag.toFixed(2)} s behind the newest fragment`);
    assert.ok(behind.lag > 2, `the pause put the video behind (${behind.lag.toFixed(2)} s)`);
    const released = Date.now();
    await resume(page);
    const back = await waitFor(async () => {
      const p = await playhead(page);
      return !p.paused && p.lag < 1.5 && p;
    }, { timeout: 15000, what: 'the video to be within 1.5 s of live again' });
    console.log(`back to ${back.lag.toFixed(2)} s behind in ${Date.now() - released} ms`);
    await waitFor(async () => (await playhead(page)).t > back.t + 0.5, { timeout: 15000, what: 'playing on' });
    const later = await lags(page);
    console.log(`then ${seconds(later)} s behind`);
    // The page looks twice a second and jumps past 1 s behind: never 2 s behind.
    assert.ok(Math.max(...later) < 2, `it stays near live (${seconds(later)})`);
  });
});

test('in a background tab the paused video holds at most about 16 s, and goes on from live', { skip, timeout: 120000 }, async () => {
  await onPage(server.url('/'), async (page) => {
    await waitMp4Playing(page);
    // A tab in the background: the document says it is hidden (the page's checks rest)
    // and the browser pauses the video.
    const hide = (hidden) => page.evaluate((h) => {
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => h });
      document.dispatchEvent(new Event('visibilitychange'));
    }, hidden);
    await hide(true);
    await holdPaused(page);
    let most = 0;
    const end = Date.now() + 25000;
    while (Date.now() < end) {
      most = Math.max(most, (await playhead(page)).held);
      await sleep(500);
    }
    console.log(`paused for 25 s, the video held at most ${most.toFixed(1)} s of pictures`);
    assert.ok(most > 10, `the pictures piled up while paused (${most.toFixed(1)} s)`);
    assert.ok(most < 18, `what is held stays bounded (${most.toFixed(1)} s)`);
    await hide(false);
    await resume(page);
    const back = await waitFor(async () => {
      const p = await playhead(page);
      return !p.paused && p.lag < 1.5 && p;
    }, { timeout: 15000, what: 'the video to be near live again' });
    await waitFor(async () => (await playhead(page)).t > back.t + 0.5, { timeout: 15000, what: 'playing on' });
  });
});

test('the MP4 player comes back by itself after the server restarts', { skip, timeout: 120000 }, async () => {
  const first = await startServer({ args: ARGS, bin: BIN_H264 });
  others.push(first);
  await onPage(first.url('/'), async (page) => {
    await waitMp4Playing(page);
    await first.stop();
    await waitFor(async () => /Reconnecting/.test(await stateText(page)), {
      timeout: 15000, what: 'the page to say it reconnects',
    });
    const second = await startServerOnPort(first.port, { args: ARGS, bin: BIN_H264 });
    others.push(second);
    const restarted = Date.now();
    await waitLive(page, { timeout: 30000, what: 'the "Live" status after the restart' });
    const at = (await playhead(page)).t;
    await waitFor(async () => (await playhead(page)).t > at + 0.5, { timeout: 20000, what: 'the video to play again' });
    console.log(`MP4 playing again ${Date.now() - restarted} ms after the server restarted`);
    assert.equal(await label(page), 'MP4', 'still the MP4 player, not a fallback');
    assert.equal((await status(second)).h264_viewers, 1);
  });
});

test('a player that cannot start gives way to the next', { skip, timeout: 120000 }, async () => {
  // /status as a server with WebRTC would answer; this one answers POST /whep with an
  // error, so the page must go on to MP4.
  const offerWebrtc = (context) => context.route('**/status', async (route) => {
    const r = await route.fetch();
    const j = await r.json();
    j.players = ['webrtc', ...j.players];
    await route.fulfill({ response: r, json: j });
  });
  await onPage(server.url('/'), async (page, context) => {
    await waitMp4Playing(page);
    assert.ok(page.messages.some((m) => /no WebRTC here: POST \/whep answered 4\d\d/.test(m)),
      `the console says why WebRTC was skipped: ${JSON.stringify(page.messages)}`);
    // MP4 refused as by a server without it: on to MJPEG.
    await context.route('**/stream.mp4*', (route) => route.fulfill({ status: 404, body: 'no H.264\n' }));
    await page.reload();
    await waitFor(async () => (await label(page)) === 'MJPEG', { timeout: 20000, what: 'the fallback to MJPEG' });
    await waitLive(page, { timeout: 15000 });
    assert.ok(page.messages.some((m) => /no MP4 here: the server has no MP4 stream \(404\)/.test(m)),
      `the console says why MP4 was skipped: ${JSON.stringify(page.messages)}`);
  }, offerWebrtc);
});

test('without H.264 the page plays MJPEG and offers no choice', { skip, timeout: 60000 }, async () => {
  const plain = await startServer({ args: ARGS });
  others.push(plain);
  assert.deepEqual((await status(plain)).players, ['mjpeg']);
  await onPage(plain.url('/'), async (page) => {
    await waitLive(page, { timeout: 15000 });
    await sleep(2500);              // the first /status answers are in
    assert.equal(await label(page), 'MJPEG');
    assert.equal(await page.locator('#player').isVisible(), false);
    assert.equal(await page.locator('#stream').isVisible(), true);
    assert.deepEqual(page.messages.filter((m) => /picam-stream/.test(m)), []);
  });
});
