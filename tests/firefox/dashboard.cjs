// The dashboard's main end-to-end flow in Firefox ESR, driven by puppeteer-core over WebDriver BiDi.
// Started by tests/dashboard_firefox_e2e.rs against a real server it started; exits non-zero
// (with the reason on stderr) when a step fails. Every wait is on a condition with a deadline.
//
// Usage: node dashboard.cjs <scenario>, the scenario being `main` (live events, search, resume,
// snapshots and their diff, metrics) or `token` (the token dialog; the server wants `s3cret`).
// Environment: CODA_URL (the server, e.g. http://127.0.0.1:1234), CODA_FIREFOX (the firefox-esr
// binary), CODA_PROFILE (an empty temp dir for the profile), CODA_SCREENSHOT (where the PNG goes);
// NODE_PATH finds puppeteer-core.
'use strict';

const puppeteer = require('puppeteer-core');

const BASE = must('CODA_URL');
const PAGE_DEADLINE_MS = 20000;

function must(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

function assert(ok, message) {
  if (!ok) throw new Error(`assertion failed: ${message}`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function post(path, body, headers = {}) {
  const r = await fetch(`${BASE}/api/v1${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  assert(r.status < 300, `${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** Runs `fn` in the page until it returns something truthy; returns that value. */
async function waitFor(page, what, fn, ...args) {
  const deadline = Date.now() + PAGE_DEADLINE_MS;
  for (;;) {
    const value = await page.evaluate(fn, ...args);
    if (value) return value;
    if (Date.now() > deadline) {
      const state = await page
        .evaluate(() => document.getElementById('conn').textContent + ' | ' +
          document.getElementById('banner').textContent)
        .catch((e) => String(e));
      throw new Error(`the page did not show ${what} in time (status: ${state})`);
    }
    await sleep(50);
  }
}

function waitText(page, selector, text) {
  return waitFor(page, `\`${text}\` in ${selector}`, (s, t) => {
    const el = document.querySelector(s);
    return !!el && el.textContent.includes(t);
  }, selector, text);
}

function text(page, selector) {
  return page.evaluate((s) => {
    const el = document.querySelector(s);
    return el ? el.textContent : '';
  }, selector);
}

function count(page, selector) {
  return page.evaluate((s) => document.querySelectorAll(s).length, selector);
}

/** Clicks `selector` as a user would, finding it again if the page re-rendered it meanwhile. */
async function click(page, selector) {
  const deadline = Date.now() + PAGE_DEADLINE_MS;
  for (;;) {
    try {
      const el = await page.waitForSelector(selector, { visible: true, timeout: PAGE_DEADLINE_MS });
      await el.click();
      return;
    } catch (e) {
      if (Date.now() > deadline || !/detached|stale|not (attached|connected)|no such node/i.test(String(e))) {
        throw new Error(`clicking ${selector} failed: ${e}`);
      }
    }
  }
}

/**
 * Clicks `selector` until `fn` holds in the page. A click can land beside its button when the
 * layout moves between Puppeteer reading the button's position and pressing (a diff has just
 * rendered): the user would click again, and so does this, two seconds after each miss.
 */
async function clickUntil(page, selector, what, fn) {
  const deadline = Date.now() + PAGE_DEADLINE_MS;
  for (;;) {
    await click(page, selector);
    const retry = Math.min(Date.now() + 2000, deadline);
    while (Date.now() < retry) {
      if (await page.evaluate(fn)) return;
      await sleep(50);
    }
    if (Date.now() >= deadline) throw new Error(`clicking ${selector} did not show ${what} in time`);
  }
}

function live(page) {
  return waitFor(page, 'a live connection',
    () => document.getElementById('conn').dataset.state === 'live');
}

async function scenario(page) {
  // Something to show on load: a turn and a memory from before the page opened.
  await post('/turns', { role: 'system', content: 'You are Coda, a helpful voice assistant.' });
  await post('/memories', { content: "The user's name is Alice.", memory_type: 'fact', importance: 0.9, metadata: { topics: ['name'] } });

  await page.goto(`${BASE}/`);
  await live(page);
  await waitText(page, '#memory-list', "The user's name is Alice.");
  await waitText(page, '#turns', 'You are Coda');

  // Live: a turn and a memory added through the API appear without reloading the page.
  await post('/turns', { role: 'user', content: 'Hi! I live in Lyon and I love green tea.' });
  await post('/turns', { role: 'assistant', content: 'Nice to meet you, Alice. Green tea it is.' });
  await waitText(page, '#turns', 'I love green tea');
  await post('/memories', { content: 'The user likes green tea.', memory_type: 'preference', importance: 0.8, metadata: { topics: ['tea', 'drinks'] } });
  await waitText(page, '#memory-list', 'The user likes green tea.');
  assert((await count(page, '#memory-list li')) === 2, 'each memory shown once');

  // Search through the page: results carry their similarity; retrievals show up live.
  await page.type('#search-q', 'what does the user drink');
  await click(page, '#search-go');
  await waitText(page, '#search-results', 'The user likes green tea.');
  assert((await text(page, '#search-results')).includes('similarity'), 'search results show similarity');
  await waitText(page, '#retrievals', 'what does the user drink');
  await post('/memories/search', { query: 'where does the user live', limit: 2 });
  await waitText(page, '#retrievals', 'where does the user live');

  // Resume: drop the socket; the page reconnects, shows what happened meanwhile, nothing twice.
  await page.evaluate(() => { window.coda.ws.close(); return true; });
  await post('/turns', { role: 'user', content: 'I prefer short answers.' });
  await waitText(page, '#system-rows', 'resumed after seq');
  await waitText(page, '#turns', 'I prefer short answers.');
  await live(page);
  assert((await count(page, '#turns li')) === 4, 'every turn exactly once after resuming');

  // Snapshots: create one from the page, change memory, diff it against now side by side.
  await click(page, '#tab-btn-snapshots');
  await click(page, '#snap-create');
  await waitFor(page, 'the new snapshot in the list',
    () => document.querySelectorAll('#snap-rows tr').length === 1);
  await waitText(page, '#system-rows', 'create snapshot_');
  await post('/memories', { content: 'The user lives in Lyon, France.', memory_type: 'fact', importance: 0.7, metadata: { topics: ['location'] } });
  await waitText(page, '#memory-list', 'Lyon, France');
  await click(page, '#snap-rows tr [data-action=diff]');
  await waitText(page, '#diff [data-side=to]', 'The user lives in Lyon, France.');
  const fromSide = await text(page, '#diff [data-side=from]');
  assert(!fromSide.includes('Lyon, France'), `the old side lacks the new memory: ${fromSide}`);
  assert((await text(page, '#diff .diff-summary')).includes('memories +1'), 'diff summary counts +1');

  // Apply asks first; cancelling changes nothing, confirming restores the snapshot.
  const confirmOpen = () => document.getElementById('confirm-dialog').open;
  await clickUntil(page, '#snap-rows tr [data-action=apply]', 'the confirmation', confirmOpen);
  await click(page, '#confirm-cancel');
  assert((await text(page, '#memory-list')).includes('Lyon, France'), 'cancel changes nothing');
  await clickUntil(page, '#snap-rows tr [data-action=apply]', 'the confirmation', confirmOpen);
  await click(page, '#confirm-ok');
  await waitFor(page, 'the restored memories',
    () => !document.getElementById('memory-list').textContent.includes('Lyon, France'));
  await waitText(page, '#system-rows', 'apply snapshot_');

  // A snapshot kept in memory only, then saved from the list; then two snapshots compared.
  await click(page, '#snap-save');
  await click(page, '#snap-create');
  await waitFor(page, 'an unsaved snapshot in the list',
    () => document.querySelectorAll('#snap-rows tr').length === 2 &&
      !!document.querySelector('#snap-rows [data-action=save]'));
  await click(page, '#snap-rows [data-action=save]');
  await waitFor(page, 'the snapshot saved',
    () => !document.querySelector('#snap-rows [data-action=save]') &&
      !document.getElementById('snap-rows').textContent.includes('in memory'));
  await waitText(page, '#system-rows', 'save snapshot_');
  const [newer, older] = await page.evaluate(
    () => [...document.querySelectorAll('#snap-rows tr')].map((r) => r.dataset.id));
  await page.evaluate((a, b) => {
    document.getElementById('diff-a').value = a;
    document.getElementById('diff-b').value = b;
    return true;
  }, older, newer);
  await click(page, '#diff-go');
  await waitText(page, '#diff .diff-title', `${older} → ${newer}`);
  await waitText(page, '#diff', 'No differences.');

  // Metrics: this page is a connected client; latency was measured; the canvas drew.
  await click(page, '#tab-btn-metrics');
  await waitText(page, '#m-clients', '1');
  await waitText(page, '#legend-latency', 'add:');

  await click(page, '#tab-btn-memory');
  await waitText(page, '#memory-list', "The user's name is Alice.");
  await page.setViewport({ width: 1440, height: 960 });
  const png = await page.screenshot({ path: must('CODA_SCREENSHOT') });
  assert(png.subarray(0, 4).toString('latin1') === '\x89PNG', 'a PNG screenshot');
}

async function tokenScenario(page) {
  await page.goto(`${BASE}/`);
  await waitFor(page, 'the token dialog', () => document.getElementById('token-dialog').open);
  await page.type('#token-input', 'wrong');
  await click(page, '#token-submit');
  await waitText(page, '#token-error', 'refused');
  assert((await text(page, '#conn')).includes('Token needed'), 'the status asks for a token');

  await page.evaluate(() => { document.getElementById('token-input').value = ''; return true; });
  await page.type('#token-input', 's3cret');
  await click(page, '#token-submit');
  await live(page);
  await post('/memories', { content: 'Only for token holders.' }, { authorization: 'Bearer s3cret' });
  await waitText(page, '#memory-list', 'Only for token holders.');
}

const SCENARIOS = { main: scenario, token: tokenScenario };

async function main() {
  const name = process.argv[2] || 'main';
  const run = SCENARIOS[name];
  if (!run) throw new Error(`unknown scenario \`${name}\` (known: ${Object.keys(SCENARIOS).join(', ')})`);
  const started = Date.now();
  const browser = await puppeteer.launch({
    browser: 'firefox',
    protocol: 'webDriverBiDi',
    executablePath: must('CODA_FIREFOX'),
    userDataDir: must('CODA_PROFILE'),
    headless: true,
    defaultViewport: { width: 1440, height: 960 },
    extraPrefsFirefox: {
      'browser.shell.checkDefaultBrowser': false,
      'datareporting.policy.dataSubmissionEnabled': false,
      'toolkit.telemetry.reportingpolicy.firstRun': false,
    },
  });
  try {
    const version = await browser.version();
    const launched = Date.now();
    const [page] = await browser.pages();
    page.on('pageerror', (e) => console.error(`page error: ${e}`));
    await run(page);
    console.log(`ok ${name}: ${version}, puppeteer-core ${require('puppeteer-core/package.json').version}; ` +
      `launch ${launched - started} ms, scenario ${Date.now() - launched} ms`);
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
