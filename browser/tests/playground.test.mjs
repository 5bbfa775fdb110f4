// The playground in a real browser, with access tokens that live three seconds: it obtains a
// token pair, refreshes it by itself before expiry, loses it on revoke (its own, or one made
// from the account page), and shows that the page's script cannot read the HttpOnly cookie.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { PASSWORD, createAccount, screenshot, signIn, useLatchkeyAndBrowser, watchPage } from '../harness.mjs';

const ACCESS_TOKEN_SECONDS = 3;

const running = useLatchkeyAndBrowser({ LATCHKEY_ACCESS_TOKEN_TTL: `${ACCESS_TOKEN_SECONDS}s` });

/** A new user and a fresh browser context on the playground, its console watched. */
async function openPlayground() {
  const username = await createAccount(running.server.origin, 'player');
  const context = await running.browser.newContext();
  const page = await context.newPage();
  const problems = watchPage(page);
  await page.goto(`${running.server.origin}/playground`);
  return { username, context, page, problems };
}

async function textOf(page, selector) {
  return (await page.locator(selector).textContent()).trim();
}

/** Waits until the element's text matches `pattern`. */
async function waitForText(page, selector, pattern, timeout = 20_000) {
  await page.waitForFunction(
    ([sel, source]) => new RegExp(source).test(document.querySelector(sel)?.textContent ?? ''),
    [selector, pattern.source],
    { timeout },
  );
}

async function signInWithTokens(page, username) {
  await page.locator('#token-username').fill(username);
  await page.locator('#token-password').fill(PASSWORD);
  await page.locator('#token-login button[type=submit]').click();
  await waitForText(page, '#token-status', /Holding an access token/);
}

async function signInWithCookie(page, username) {
  await page.locator('#cookie-username').fill(username);
  await page.locator('#cookie-password').fill(PASSWORD);
  await page.locator('#cookie-login button[type=submit]').click();
  await waitForText(page, '#cookie-status', /^Signed in/);
}

function claimsOf(text) {
  return JSON.parse(text.split('// claims\n')[1]);
}

test('token mode: obtains a pair, refreshes before expiry, and loses it on revoke', async () => {
  const { username, context, page, problems } = await openPlayground();

  await signInWithTokens(page, username);
  const sessionId = await textOf(page, '#token-session');
  const first = claimsOf(await textOf(page, '#token-claims'));
  assert.equal(first.sid, sessionId);
  assert.equal(first.exp - first.iat, ACCESS_TOKEN_SECONDS);
  await waitForText(page, '#token-countdown', /^\d\.\d s$/);

  // Two automatic refreshes, each before the token expired: /v1/me never failed meanwhile.
  await waitForText(page, '#token-refreshes', /^[2-9]/, 15_000);
  const later = claimsOf(await textOf(page, '#token-claims'));
  assert.equal(later.sid, sessionId, 'a refresh keeps the session');
  assert.notEqual(later.jti, first.jti, 'a refresh mints a new access token');
  assert.doesNotMatch(await textOf(page, '#token-log'), /refused/);
  await waitForText(page, '#token-me', /^200: /);

  // A cart in each session: the two sessions keep their own, and survive the refreshes.
  await page.locator('#token-cart-buttons button[data-item=apple]').click();
  await waitForText(page, '#token-cart', /^apple × 1$/);
  await page.locator('#token-cart-buttons button[data-item=apple]').click();
  await waitForText(page, '#token-cart', /^apple × 2$/);
  await signInWithCookie(page, username);
  await waitForText(page, '#cookie-cart', /^Empty$/);
  await page.locator('#cookie-cart-buttons button[data-item=fig]').click();
  await waitForText(page, '#cookie-cart', /^fig × 1$/);
  assert.match(await textOf(page, '#cookie-cart-version'), /^"[A-Za-z0-9_-]+"$/);
  await waitForText(page, '#token-refreshes', /^[3-9]/, 15_000);
  await page.locator('#token-cart-buttons button[data-item=pear]').click();
  await waitForText(page, '#token-cart', /^apple × 2, pear × 1$/);
  await screenshot(page, 'playground');

  await page.locator('#token-revoke').click();
  await waitForText(page, '#token-status', /^No token: revoked/);
  assert.equal(await textOf(page, '#token-cart'), '–', 'the cart ended with its session');
  assert.match(await textOf(page, '#token-log'), /now gets 401 from \/v1\/me/);
  assert.equal(await page.locator('#token-call').isDisabled(), true);
  assert.deepEqual(problems, []);
  await context.close();
});

test('token mode: a revocation from the account page reaches the playground', async () => {
  const { username, context, page: playground, problems } = await openPlayground();
  await signInWithTokens(playground, username);
  const tokenSession = await textOf(playground, '#token-session');

  // The same person, signed in with a cookie in another tab, signs the token session out.
  const account = await context.newPage();
  const accountProblems = watchPage(account);
  await signIn(account, running.server.origin, username);
  await account.waitForURL(`${running.server.origin}/account`);
  await account.locator(`tr[data-session-id="${tokenSession}"] button`).click();
  await account.waitForURL(`${running.server.origin}/account?done=revoked`);

  await waitForText(playground, '#token-status', /^No token: the refresh token was refused \(invalid_grant\)/, 10_000);
  assert.match(await textOf(playground, '#token-log'), /GET \/v1\/me → 401/);
  assert.deepEqual([...problems, ...accountProblems], []);
  await context.close();
});

test('cookie mode: the script cannot read the HttpOnly cookie, and needs the CSRF token to log out', async () => {
  const { username, context, page, problems } = await openPlayground();
  await waitForText(page, '#cookie-status', /^Not signed in/);

  await signInWithCookie(page, username);

  const jar = await context.cookies();
  const session = jar.find((cookie) => cookie.name === 'latchkey_session');
  assert.ok(session, 'the browser holds the session cookie');
  assert.equal(session.httpOnly, true);
  assert.equal(await page.evaluate(() => document.cookie.includes('latchkey_session')), false);
  assert.equal(await textOf(page, '#cookie-visible'), '"" (an empty string)');
  assert.match(await textOf(page, '#cookie-verdict'), /^No\./);

  // The cart's changes are cookie-carried writes: the page sends the CSRF token with each, and
  // a change made elsewhere in between is refused (412) and the cart read again.
  await page.locator('#cookie-cart-buttons button[data-item=pear]').click();
  await waitForText(page, '#cookie-cart', /^pear × 1$/);
  const shown = await textOf(page, '#cookie-cart-version');
  const elsewhere = await page.evaluate(async (csrf) => {
    const response = await fetch('/v1/session/data', {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/merge-patch+json', 'X-CSRF-Token': csrf },
      body: JSON.stringify({ cart: { fig: 5 } }),
    });
    return response.status;
  }, await textOf(page, '#cookie-csrf'));
  assert.equal(elsewhere, 200);
  await page.locator('#cookie-cart-buttons button[data-item=pear]').click();
  await waitForText(page, '#cookie-log', /changed elsewhere/);
  await waitForText(page, '#cookie-cart', /^fig × 5, pear × 1$/);
  assert.notEqual(await textOf(page, '#cookie-cart-version'), shown);

  await page.locator('#cookie-call').click();
  await waitForText(page, '#cookie-log', /GET \/v1\/me → 200/);
  await page.locator('#cookie-forged').click();
  await waitForText(page, '#cookie-log', /without X-CSRF-Token → 403 csrf_rejected/);
  assert.match(await textOf(page, '#cookie-status'), /^Signed in/, 'the forged logout changed nothing');

  await page.locator('#cookie-logout').click();
  await waitForText(page, '#cookie-status', /^Not signed in/);
  assert.equal((await context.cookies()).some((cookie) => cookie.name === 'latchkey_session'), false);
  assert.deepEqual(problems, []);
  await context.close();
});
