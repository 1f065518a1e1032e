// The Settings panel: built from GET /controls (the test pattern's brightness, contrast
// and pattern), every change sent at once with POST /controls and seen in the picture
// itself; Reset to defaults; a change kept across a restart (--state-dir) and forgotten
// by Reset; a server that refuses changes; a server without /controls; a server with
// users.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  artifact, launchChromium, samplePicture, startServer, waitFor, waitLive,
} from './lib.mjs';

const ARGS = ['--source', 'test', '--size', '320x240', '--fps', '15'];

let server;
let browser;
let context;
let page;
const problems = [];                // uncaught errors and console errors of the page

/** Logs what goes wrong in `p`; a refused request's own line is the browser's, not ours. */
function watch(p) {
  p.on('pageerror', (e) => problems.push('uncaught: ' + e.message));
  p.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) problems.push(m.text());
  });
}

async function controls(srv = server) {
  const r = await fetch(srv.url('/controls'), { signal: AbortSignal.timeout(5000) });
  assert.equal(r.status, 200);
  return r.json();
}

/** Mean luma and mean colourfulness (spread of R, G, B) of the picture on the page. */
async function measure(p = page) {
  const px = await samplePicture(p);
  if (!px) return null;
  let luma = 0;
  let chroma = 0;
  const n = px.length / 4;
  for (let i = 0; i < px.length; i += 4) {
    const [r, g, b] = [px[i], px[i + 1], px[i + 2]];
    luma += 0.299 * r + 0.587 * g + 0.114 * b;
    chroma += Math.max(r, g, b) - Math.min(r, g, b);
  }
  return { luma: luma / n, chroma: chroma / n };
}

/** The page of `srv` in a fresh browser context, live, its problems watched. */
async function openLive(srv, { noControls = false, ...options } = {}) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
  const p = await ctx.newPage();
  watch(p);
  if (noControls) await p.route('**/controls', (r) => r.fulfill({ status: 404, body: 'not found\n' }));
  await p.goto(srv.url('/index.html'), { timeout: 15000 });
  await waitLive(p);
  return { ctx, p };
}

/** Opens the Settings panel of `p` once it has its controls. */
async function openPanel(p) {
  await waitFor(() => p.locator('#set').isVisible(), { what: 'the Settings button' });
  if (!(await p.locator('#settings').isVisible())) await p.click('#set');
  await waitFor(() => p.locator('#c-brightness').count(), { what: 'the brightness slider' });
}

before(async () => {
  server = await startServer({ args: ARGS });
  browser = await launchChromium();
  ({ ctx: context, p: page } = await openLive(server));
});

after(async () => {
  await context?.close();
  await browser?.close();
  await server?.stop();
});

test('the panel lists the controls with their ranges, and opens and closes from the keyboard', { timeout: 30000 }, async () => {
  const btn = page.locator('#set');
  await waitFor(() => btn.isVisible(), { what: 'the Settings button' });
  assert.equal(await btn.getAttribute('aria-expanded'), 'false');
  await btn.focus();
  await page.keyboard.press('Enter');
  const panel = page.locator('#settings');
  assert.equal(await panel.isVisible(), true, 'Enter opens the panel');
  assert.equal(await btn.getAttribute('aria-expanded'), 'true');
  assert.equal(await panel.getAttribute('role'), 'dialog');
  assert.ok(await page.evaluate(() => document.getElementById('settings').contains(document.activeElement)),
    'focus moves into the panel');
  await waitFor(() => page.locator('#c-brightness').count(), { what: 'the brightness slider' });
  const listed = await page.evaluate(() => {
    const r = (id) => { const e = document.getElementById(id); return [e.type, e.min, e.max, e.step, e.value, e.disabled]; };
    return {
      brightness: r('c-brightness'),
      contrast: r('c-contrast'),
      pattern: Array.from(document.getElementById('c-pattern').options, (o) => o.value),
      patternValue: document.getElementById('c-pattern').value,
      labels: Array.from(document.querySelectorAll('#settings label'), (l) => l.textContent),
      shown: document.querySelector('#c-brightness').parentNode.querySelector('output').textContent,
    };
  });
  assert.deepEqual(listed.brightness, ['range', '-100', '100', '1', '0', false]);
  assert.deepEqual(listed.contrast, ['range', '0', '200', '1', '100', false]);
  assert.deepEqual(listed.pattern, ['Colour bars', 'Grey']);
  assert.equal(listed.patternValue, 'Colour bars');
  assert.deepEqual(listed.labels, ['Brightness', 'Contrast', 'Pattern']);
  assert.equal(listed.shown, '0', 'the slider shows its number');
  // Keys typed in the panel are not the page's shortcuts; Escape closes it.
  await page.focus('#c-pattern');
  await page.keyboard.press('i');
  assert.equal(await page.locator('#panel').isVisible(), false, '"i" in the panel opens no overlay');
  await page.keyboard.press('Escape');
  assert.equal(await panel.isVisible(), false, 'Escape closes the panel');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'set', 'focus goes back to the button');
  await btn.click();
  await page.click('#set-close');
  assert.equal(await panel.isVisible(), false, 'the close button closes it');
  assert.deepEqual(problems, []);
});

test('brightness, the pattern and Reset change the picture, through POST /controls', { timeout: 60000 }, async () => {
  await openPanel(page);
  const start = await waitFor(() => measure(), { what: 'a picture' });
  console.log(`picture at the defaults: ${JSON.stringify(start)}`);

  await page.locator('#c-brightness').fill('80');
  await waitFor(async () => (await controls()).controls[0].value === 80, { what: 'brightness 80 on the server' });
  const bright = await waitFor(async () => {
    const m = await measure();
    return m.luma > start.luma + 40 && m;
  }, { what: 'a brighter picture' });
  console.log(`brightness 80: ${JSON.stringify(bright)}`);

  await page.selectOption('#c-pattern', 'Grey');
  await waitFor(async () => (await controls()).controls[2].value === 'Grey', { what: 'the grey pattern on the server' });
  const grey = await waitFor(async () => {
    const m = await measure();
    return m.chroma < start.chroma / 3 && m;
  }, { what: 'a grey picture' });
  console.log(`grey: ${JSON.stringify(grey)}`);
  await page.screenshot({ path: artifact('settings-changed.png') });

  await page.click('#set-reset');
  await waitFor(async () => (await controls()).controls.every((c) => c.value === c.default),
    { what: 'every control back at its default' });
  const back = await waitFor(async () => {
    const m = await measure();
    return Math.abs(m.luma - start.luma) < 15 && m.chroma > start.chroma * 0.7 && m;
  }, { what: 'the picture as at the start' });
  console.log(`after Reset: ${JSON.stringify(back)}`);
  await waitFor(async () => (await page.inputValue('#c-brightness')) === '0' &&
    (await page.inputValue('#c-pattern')) === 'Colour bars', { what: 'the panel showing the defaults' });
  assert.equal(await page.locator('#set-msg').textContent(), '', 'no error shown');
  await page.keyboard.press('Escape');
  assert.deepEqual(problems, []);
});

test('a change made on the page is there after a restart, and Reset forgets it', { timeout: 90000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'picam-browser-state-'));
  const file = join(dir, 'controls-test-pattern.json');
  const args = [...ARGS, '--state-dir', dir];
  let srv = await startServer({ args });
  let opened = await openLive(srv);
  try {
    await openPanel(opened.p);
    const colourful = await waitFor(() => measure(opened.p), { what: 'a picture' });
    await opened.p.selectOption('#c-pattern', 'Grey');
    await waitFor(async () => (await controls(srv)).controls[2].value === 'Grey', { what: 'the grey pattern on the server' });
    await waitFor(() => existsSync(file), { what: 'the saved settings file' });
    await opened.ctx.close();
    await srv.stop();

    srv = await startServer({ args });
    opened = await openLive(srv);
    await openPanel(opened.p);
    await waitFor(async () => (await opened.p.inputValue('#c-pattern')) === 'Grey', { what: 'the panel showing Grey after the restart' });
    const grey = await waitFor(async () => {
      const m = await measure(opened.p);
      return m && m.chroma < colourful.chroma / 3 && m;
    }, { what: 'a grey picture after the restart' });
    console.log(`after the restart: ${JSON.stringify(grey)} (colour bars: ${JSON.stringify(colourful)})`);

    await opened.p.click('#set-reset');
    await waitFor(async () => (await opened.p.inputValue('#c-pattern')) === 'Colour bars', { what: 'the panel at the defaults' });
    assert.equal((await controls(srv)).controls[2].value, 'Colour bars');
    assert.equal(existsSync(file), false, 'Reset forgets the saved settings');
    assert.equal(await opened.p.locator('#set-msg').textContent(), '', 'no error shown');
  } finally {
    await opened.ctx.close();
    await srv.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual(problems, []);
});

test('on a narrow screen the panel takes the full width, with big touch targets', { timeout: 30000 }, async () => {
  await page.setViewportSize({ width: 390, height: 800 });
  try {
    await openPanel(page);
    const sizes = await page.evaluate(() => {
      const h = (sel) => document.querySelector(sel).getBoundingClientRect().height;
      const bar = document.getElementById('bar').getBoundingClientRect();
      const st = document.getElementById('state').getBoundingClientRect();
      return {
        apart: st.right <= bar.left || st.bottom <= bar.top,
        width: document.getElementById('settings').getBoundingClientRect().width,
        slider: h('#c-brightness'), select: h('#c-pattern'), close: h('#set-close'), reset: h('#set-reset'),
      };
    });
    await page.screenshot({ path: artifact('settings-narrow.png') });
    assert.equal(sizes.width, 390, JSON.stringify(sizes));
    assert.ok(sizes.apart, 'the four buttons leave the status line readable');
    for (const k of ['slider', 'select', 'close', 'reset']) assert.ok(sizes[k] >= 44, `${k}: ${JSON.stringify(sizes)}`);
    await page.keyboard.press('Escape');
  } finally {
    await page.setViewportSize({ width: 1280, height: 800 });
  }
});

test('with --controls off the inputs are disabled, and a refused change is shown', { timeout: 60000 }, async () => {
  const locked = await startServer({ args: [...ARGS, '--controls', 'off'] });
  const { ctx, p } = await openLive(locked);
  try {
    await openPanel(p);
    await waitFor(async () => /switched off/.test(await p.locator('#set-info').textContent()), { what: 'the note' });
    for (const id of ['#c-brightness', '#c-contrast', '#c-pattern', '#set-reset']) {
      assert.equal(await p.locator(id).isDisabled(), true, `${id} is disabled`);
    }
    // Were an input usable after all, the server's refusal is shown and nothing breaks.
    await p.evaluate(() => {
      const s = document.getElementById('c-pattern');
      s.disabled = false;
      s.value = 'Grey';
      s.dispatchEvent(new Event('change'));
    });
    const said = await waitFor(async () => (await p.locator('#set-msg').textContent()).trim(), { what: 'the refusal' });
    console.log(`refusal shown: "${said}"`);
    assert.match(said, /switched off/, 'the server\'s own reason');
    assert.equal(await p.locator('#set-msg').getAttribute('role'), 'status');
    assert.ok(!said.includes('\n'));
    await waitFor(() => p.locator('#c-pattern').isDisabled(), { what: 'the select disabled again' });
    assert.equal(await p.inputValue('#c-pattern'), 'Colour bars', 'the panel shows what holds');
    assert.equal((await controls(locked)).controls[2].value, 'Colour bars');
  } finally {
    await ctx.close();
    await locked.stop();
  }
  assert.deepEqual(problems, []);
});

test('a server without /controls shows no Settings button', { timeout: 30000 }, async () => {
  const { ctx, p } = await openLive(server, { noControls: true });
  try {
    await p.waitForTimeout(500);
    assert.equal(await p.locator('#set').isVisible(), false);
    assert.equal(await p.locator('#fs').isVisible(), true, 'the other buttons are there');
  } finally {
    await ctx.close();
  }
  assert.deepEqual(problems, []);
});

test('with --auth the panel reads and changes the controls with the browser\'s credentials', { timeout: 60000 }, async () => {
  const guarded = await startServer({ args: [...ARGS, '--auth', 'ann:panel-pw'] });
  const { ctx, p } = await openLive(guarded, { httpCredentials: { username: 'ann', password: 'panel-pw' } });
  const authorization = 'Basic ' + Buffer.from('ann:panel-pw').toString('base64');
  const read = async () => (await (await fetch(guarded.url('/controls'), {
    headers: { authorization }, signal: AbortSignal.timeout(5000),
  })).json()).controls;
  try {
    await openPanel(p);
    await p.locator('#c-contrast').fill('150');
    await waitFor(async () => (await read())[1].value === 150, { what: 'contrast 150 on the server' });
    assert.equal(await p.locator('#set-msg').textContent(), '');
  } finally {
    await ctx.close();
    await guarded.stop();
  }
  assert.deepEqual(problems, []);
});
