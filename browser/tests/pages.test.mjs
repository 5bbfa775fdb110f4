// The pages in a real browser: sign-up, sign-in, the account page and its device list,
// revoking another device, "log out everywhere", changing the password, and `return_to`.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { PASSWORD, screenshot, signIn, signUp, uniqueName, useLatchkeyAndBrowser, watchPage } from '../harness.mjs';

const FIREFOX_WINDOWS = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0';
const SAFARI_IPHONE =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1';

const running = useLatchkeyAndBrowser();

/** A fresh browser context (its own cookie jar: one device) with a page that is watched. */
async function device(options = {}) {
  const context = await running.browser.newContext(options);
  const page = await context.newPage();
  const problems = watchPage(page);
  return { context, page, problems };
}

async function sessionIdOf(page) {
  return page.evaluate(async () => (await (await fetch('/v1/me')).json()).session.id);
}

/** One user signed in on two devices, both on the account page. */
async function twoDevicesOfOneUser() {
  const first = await device();
  const username = await signedUpUser(first.page);
  const second = await device();
  for (const { page } of [first, second]) {
    await signIn(page, running.server.origin, username);
    await page.waitForURL(`${running.server.origin}/account`);
  }
  return { first, second, username };
}

async function signedUpUser(page) {
  const username = uniqueName('user');
  await signUp(page, running.server.origin, username);
  return username;
}

test('sign up, sign in, and the account page names the user and marks this device', async () => {
  const { context, page, problems } = await device();
  await page.goto(`${running.server.origin}/login`);
  await screenshot(page, 'login');
  await page.goto(`${running.server.origin}/signup`);
  await screenshot(page, 'signup');
  const username = await signedUpUser(page);
  assert.match(await page.getByRole('status').textContent(), /Your account is ready/);

  await signIn(page, running.server.origin, username);
  await page.waitForURL(`${running.server.origin}/account`);
  assert.equal(await page.locator('.username').textContent(), username);
  const rows = page.locator('tr.device');
  assert.equal(await rows.count(), 1);
  assert.match(await rows.first().textContent(), /This device/);
  assert.match(await rows.first().textContent(), /Cookie session/);
  assert.match(await rows.first().textContent(), /127\.0\.0\.1/);
  assert.deepEqual(problems, []);
  await context.close();
});

test('a wrong password and an unknown user get the same message, tied to the form', async () => {
  const { context, page, problems } = await device();
  const username = await signedUpUser(page);
  const answers = [];
  for (const [name, password] of [[username, 'not the password'], [uniqueName('nobody'), PASSWORD]]) {
    await page.goto(`${running.server.origin}/login`);
    await page.getByLabel('Username').fill(name);
    await page.getByLabel('Password').fill(password);
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/login') && r.request().method() === 'POST'),
      page.getByRole('button', { name: 'Sign in' }).click(),
    ]);
    await page.waitForLoadState();
    answers.push([response.status(), await page.getByRole('alert').textContent()]);
  }
  assert.equal(answers[0][0], 401);
  assert.deepEqual(answers[0], answers[1]);
  assert.match(answers[0][1], /The username or password is wrong/);
  await screenshot(page, 'login-error');
  assert.deepEqual(problems, []);
  await context.close();
});

test('sign-up errors are tied to their fields and keep what was typed', async () => {
  const { context, page, problems } = await device();
  await page.goto(`${running.server.origin}/signup`);
  await page.getByLabel('Username').fill(uniqueName('weak'));
  await page.getByLabel('Password', { exact: true }).fill('password');
  await page.getByLabel('Password again').fill('password');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForLoadState();
  const password = page.getByLabel('Password', { exact: true });
  assert.equal(await password.getAttribute('aria-invalid'), 'true');
  const describedBy = await password.getAttribute('aria-describedby');
  assert.match(describedBy, /password-error/);
  assert.match(await page.locator('#password-error').textContent(), /password/i);
  assert.match(await page.getByLabel('Username').inputValue(), /^weak/);
  await screenshot(page, 'signup-error');
  assert.deepEqual(problems, []);
  await context.close();
});

test('the account page lists three devices of both kinds; one of them is revoked and sent to /login', async () => {
  const laptop = await device({ userAgent: FIREFOX_WINDOWS });
  const username = await signedUpUser(laptop.page);
  await signIn(laptop.page, running.server.origin, username);
  await laptop.page.waitForURL(`${running.server.origin}/account`);

  const phone = await device({ userAgent: SAFARI_IPHONE, viewport: { width: 390, height: 844 }, isMobile: true });
  await signIn(phone.page, running.server.origin, username);
  await phone.page.waitForURL(`${running.server.origin}/account`);
  const phoneSession = await sessionIdOf(phone.page);

  // The third device is an app holding tokens.
  const tokens = await fetch(`${running.server.origin}/v1/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'User-Agent': 'curl/8.11.1' },
    body: new URLSearchParams({ grant_type: 'password', username, password: PASSWORD }),
  });
  assert.equal(tokens.status, 200);

  await laptop.page.reload();
  const rows = laptop.page.locator('tr.device');
  assert.equal(await rows.count(), 3);
  const text = await laptop.page.locator('table.devices').textContent();
  assert.match(text, /Firefox 133 on Windows 10/);
  assert.match(text, /Safari 18 on iPhone/);
  assert.match(text, /curl \(HTTP library\)/);
  assert.match(text, /Tokens \(access \+ refresh\)/);
  assert.equal(await laptop.page.locator('tr.device.current').count(), 1);
  assert.match(await laptop.page.locator('tr.device.current').textContent(), /Firefox 133/);
  await screenshot(laptop.page, 'account');
  await phone.page.reload();
  await screenshot(phone.page, 'account-phone');

  await laptop.page.locator(`tr[data-session-id="${phoneSession}"] button`).click();
  await laptop.page.waitForURL(`${running.server.origin}/account?done=revoked`);
  assert.equal(await laptop.page.locator('tr.device').count(), 2);

  await phone.page.goto(`${running.server.origin}/account`);
  assert.match(phone.page.url(), /\/login\?return_to=%2Faccount&notice=session_ended$/);
  assert.match(await phone.page.getByRole('status').textContent(), /Your session on this device has ended/);

  assert.deepEqual([...laptop.problems, ...phone.problems], []);
  await laptop.context.close();
  await phone.context.close();
});

test('"log out everywhere" ends every session, this one included', async () => {
  const { first, second } = await twoDevicesOfOneUser();

  await first.page.reload();
  assert.equal(await first.page.locator('tr.device').count(), 2);
  await first.page.getByRole('button', { name: 'Log out everywhere' }).click();
  await first.page.waitForURL(/\/login\?notice=signed_out_everywhere$/);
  assert.match(await first.page.getByRole('status').textContent(), /signed out on every device/);

  for (const { page } of [first, second]) {
    await page.goto(`${running.server.origin}/account`);
    assert.match(page.url(), /\/login\?return_to=%2Faccount/);
  }
  assert.deepEqual([...first.problems, ...second.problems], []);
  await first.context.close();
  await second.context.close();
});

test('"log out other devices" keeps this one; changing the password does the same', async () => {
  const { first, second, username } = await twoDevicesOfOneUser();

  await first.page.reload();
  await first.page.getByRole('button', { name: 'Log out other devices' }).click();
  await first.page.waitForURL(`${running.server.origin}/account?done=others_signed_out`);
  assert.equal(await first.page.locator('tr.device').count(), 1);
  await second.page.goto(`${running.server.origin}/account`);
  assert.match(second.page.url(), /\/login/);

  // A wrong current password: the error is on that field, and nothing changes.
  await signIn(second.page, running.server.origin, username);
  await second.page.waitForURL(`${running.server.origin}/account`);
  await first.page.getByLabel('Current password').fill('not my password');
  await first.page.getByLabel('New password', { exact: true }).fill('a brand new passphrase');
  await first.page.getByLabel('New password again').fill('a brand new passphrase');
  await first.page.getByRole('button', { name: 'Change password' }).click();
  await first.page.waitForLoadState();
  assert.equal(await first.page.getByLabel('Current password').getAttribute('aria-invalid'), 'true');
  assert.match(await first.page.locator('#current_password-error').textContent(), /current password is wrong/);

  await first.page.getByLabel('Current password').fill(PASSWORD);
  await first.page.getByLabel('New password', { exact: true }).fill('a brand new passphrase');
  await first.page.getByLabel('New password again').fill('a brand new passphrase');
  await first.page.getByRole('button', { name: 'Change password' }).click();
  await first.page.waitForURL(`${running.server.origin}/account?done=password_changed`);
  assert.equal(await first.page.locator('tr.device').count(), 1);
  await second.page.goto(`${running.server.origin}/account`);
  assert.match(second.page.url(), /\/login/);
  assert.deepEqual([...first.problems, ...second.problems], []);
  await first.context.close();
  await second.context.close();
});

test('return_to goes back to a path here, and a foreign origin is refused', async () => {
  const { context, page, problems } = await device();
  const username = await signedUpUser(page);

  const refused = await page.goto(`${running.server.origin}/login?return_to=${encodeURIComponent('https://evil.example/steal')}`);
  assert.equal(refused.status(), 400);
  assert.match(await page.getByRole('alert').textContent(), /not on an allowed origin/);
  assert.equal(await page.locator('input[name=return_to]').count(), 0);
  await screenshot(page, 'login-foreign-return-to');
  // Signing in from that page lands on the account page, not on the foreign site.
  await signIn(page, running.server.origin, username);
  await page.waitForURL(`${running.server.origin}/account`);

  // A forged form field is refused too, before any password is checked.
  const forged = await page.request.post(`${running.server.origin}/login`, {
    form: { username, password: PASSWORD, return_to: '//evil.example/' },
    headers: { Origin: running.server.origin },
    maxRedirects: 0,
  });
  assert.equal(forged.status(), 400);

  await page.goto(`${running.server.origin}/logout`);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(/\/login\?notice=signed_out$/);
  await page.goto(`${running.server.origin}/login?return_to=${encodeURIComponent('/playground')}`);
  await signIn(page, running.server.origin, username);
  await page.waitForURL(`${running.server.origin}/playground`);
  assert.deepEqual(problems, []);
  await context.close();
});
