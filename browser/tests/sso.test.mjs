// Single sign-on in Chromium, through the example a newcomer runs (examples/sso/run): two web
// apps that sign in through latchkey with openid-client. Signing in to one signs the user in to
// the other without typing; the consent page asks once; signing out of one (RP-initiated
// logout) ends the other's session over the back channel. No page breaks its CSP on the way
// (a form's redirect to an app must be allowed by the page's form-action), and the new pages
// pass axe's WCAG 2.1 AA rules.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';

import {
  ROOT,
  audit,
  freePort,
  launchChromium,
  screenshot,
  signIn,
  signUp,
  uniqueName,
  watchPage,
} from '../harness.mjs';

const BINARY =
  process.env.LATCHKEY_BIN ??
  path.join(process.env.CARGO_TARGET_DIR ?? path.join(process.env.HOME ?? '/root', '.cache', 'latchkey', 'target'), 'debug', 'latchkey');

let example;
let browser;
const urls = {};

/** Starts examples/sso/run on free ports; resolves when it says it is ready. */
async function startExample() {
  const [latchkey, notes, board] = [await freePort(), await freePort(), await freePort()];
  const child = spawn(path.join(ROOT, 'examples', 'sso', 'run'), [], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME ?? '/root',
      LATCHKEY_BIN: BINARY,
      LATCHKEY_PORT: String(latchkey),
      NOTES_PORT: String(notes),
      BOARD_PORT: String(board),
      LATCHKEY_ARGON2_MEMORY_KIB: '256',
      LATCHKEY_ARGON2_ITERATIONS: '1',
      LATCHKEY_LOG: 'info,sqlx=warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let log = '';
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the example did not start:\n${log}`)), 60_000);
    const collect = (chunk) => {
      log += chunk;
      if (log.includes('sso-example: ready')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('exit', (code) => reject(new Error(`the example exited with ${code}:\n${log}`)));
  });
  Object.assign(urls, {
    latchkey: `http://127.0.0.1:${latchkey}`,
    notes: `http://127.0.0.1:${notes}`,
    board: `http://127.0.0.1:${board}`,
  });
  return {
    log: () => log,
    stop() {
      child.removeAllListeners('exit');
      // The whole group: the script, latchkey and both apps.
      process.kill(-child.pid, 'SIGTERM');
    },
  };
}

before(async () => {
  example = await startExample();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  example?.stop();
});

/** Waits for an app's status line to read `pattern`, reloading its page meanwhile. */
async function waitForStatus(page, url, pattern, seconds) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    await page.goto(url);
    const status = await page.locator('#status').innerText();
    if (pattern.test(status)) return status;
    if (Date.now() > deadline) throw new Error(`${url} still says: ${status}`);
    await page.waitForTimeout(200);
  }
}

test('signing in to one app signs in to the other, and signing out of one signs out of both', async () => {
  const username = uniqueName('sso');
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems = watchPage(page);
  const accessibility = [];

  await signUp(page, urls.latchkey, username);

  // Notes: to latchkey's sign-in page, then its consent page (the first time only).
  await page.goto(urls.notes);
  await screenshot(page, 'sso-notes-signed-out');
  await page.getByRole('link', { name: 'Sign in with latchkey' }).click();
  await page.waitForURL(/\/login\?/);
  await signIn(page, urls.latchkey, username);
  await page.getByRole('heading', { name: 'Allow Notes to sign you in?' }).waitFor();
  assert.match(await page.locator('main').innerText(), /Your username/);
  await audit(page, 'consent page', accessibility);
  await screenshot(page, 'sso-consent');
  await page.getByRole('button', { name: 'Allow' }).click();
  await page.waitForURL(`${urls.notes}/`);
  assert.match(await page.locator('#status').innerText(), new RegExp(`Signed in to Notes as ${username}`));
  await screenshot(page, 'sso-notes-signed-in');
  const sid = await page.locator('#sid').innerText();

  // Board: signed in without typing anything (a first-party app: no consent page either).
  await page.goto(urls.board);
  await page.getByRole('link', { name: 'Sign in with latchkey' }).click();
  await page.waitForURL(`${urls.board}/`);
  assert.match(await page.locator('#status').innerText(), new RegExp(`Signed in to Board as ${username}`));
  assert.equal(await page.locator('#sid').innerText(), sid, 'the same sign-in at latchkey');
  await screenshot(page, 'sso-board-signed-in');

  // The account page shows both apps' sessions and the app the user allowed.
  await page.goto(`${urls.latchkey}/account`);
  const devices = await page.locator('#devices').innerText();
  assert.match(devices, /Notes/);
  assert.match(devices, /Board/);
  const apps = await page.locator('#apps').innerText();
  assert.match(apps, /Notes/);
  assert.doesNotMatch(apps, /Board/, 'a first-party app was never asked about');
  await audit(page, 'account page with apps', accessibility);
  await screenshot(page, 'sso-account-apps');

  // Signing out of Notes ends the sign-in at latchkey, and Board hears of it.
  await page.goto(urls.notes);
  await page.getByRole('link', { name: 'Sign out everywhere' }).click();
  await page.waitForURL(`${urls.notes}/`);
  assert.match(await page.locator('#status').innerText(), /signed out of Notes/);
  await waitForStatus(page, urls.board, /signed out of Board/, 15);
  await screenshot(page, 'sso-board-signed-out');
  await page.goto(`${urls.latchkey}/account`);
  await page.waitForURL(/\/login/);

  // Next time Notes needs no consent; a sign-out link from elsewhere asks first.
  await page.goto(urls.notes);
  await page.getByRole('link', { name: 'Sign in with latchkey' }).click();
  await signIn(page, urls.latchkey, username);
  await page.waitForURL(`${urls.notes}/`);
  assert.match(await page.locator('#status').innerText(), /Signed in to Notes/);
  await page.goto(`${urls.latchkey}/oauth2/logout`);
  await page.getByRole('heading', { name: 'Sign out of latchkey?' }).waitFor();
  await audit(page, 'sign-out confirmation', accessibility);
  await screenshot(page, 'sso-confirm-sign-out');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(/\/login\?notice=signed_out/);
  await waitForStatus(page, urls.notes, /signed out of Notes/, 15);

  assert.deepEqual(problems, [], 'no CSP violation or script error');
  assert.deepEqual(accessibility, []);
  await context.close();
});

test('a second user in another browser is not signed in by the first one\'s sign-in', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(urls.board);
  assert.match(await page.locator('#status').innerText(), /signed out of Board/);
  await page.getByRole('link', { name: 'Sign in with latchkey' }).click();
  await page.waitForURL(/\/login\?/);
  await context.close();
});
