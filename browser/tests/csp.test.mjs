// Every page loads under its Content-Security-Policy without a single violation reported in
// the console; and the check itself notices a violation when one happens.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { PASSWORD, uniqueName, useLatchkeyAndBrowser, watchPage } from '../harness.mjs';

const running = useLatchkeyAndBrowser();

test('no page reports a CSP violation, in any of its states', async () => {
  const username = uniqueName('csp');
  const context = await running.browser.newContext();
  const page = await context.newPage();
  const problems = watchPage(page);
  const visited = [];
  const visit = async (path, expectedStatus) => {
    const response = await page.goto(`${running.server.origin}${path}`);
    await page.waitForLoadState('networkidle');
    visited.push(path);
    assert.equal(response.status(), expectedStatus, path);
    const csp = response.headers()['content-security-policy'] ?? '';
    assert.match(csp, /script-src 'self'/, path);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, path);
  };

  await visit('/signup', 200);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByLabel('Password again').fill('something else');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForLoadState('networkidle');
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByLabel('Password again').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForURL(/notice=created/);
  await visit(`/login?return_to=${encodeURIComponent('https://elsewhere.example/')}`, 400);
  await visit('/login', 200);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill('wrong password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForLoadState('networkidle');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${running.server.origin}/account`);
  await page.waitForLoadState('networkidle');
  await visit('/account?done=revoked', 200);
  await visit('/playground', 200);
  await page.locator('#token-username').fill(username);
  await page.locator('#token-password').fill(PASSWORD);
  await page.locator('#token-login button[type=submit]').click();
  await page.waitForFunction(() => document.querySelector('#token-status').textContent.startsWith('Holding'));
  await page.locator('#cookie-call').click();
  await page.locator('#token-revoke').click();
  await page.waitForFunction(() => document.querySelector('#token-status').textContent.startsWith('No token'));
  await visit('/assets/no-such-file', 404);
  await visit('/logout', 200);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(/notice=signed_out/);
  await page.waitForLoadState('networkidle');

  assert.ok(visited.length >= 7);
  assert.deepEqual(problems, []);
  await context.close();
});

test('the check is live: an inline style injected into a page is reported', async () => {
  const context = await running.browser.newContext();
  const page = await context.newPage();
  const problems = watchPage(page);
  await page.goto(`${running.server.origin}/login`);
  await page.evaluate(() => {
    const style = document.createElement('style');
    style.append('body { background: red }');
    document.head.append(style);
  });
  await page.waitForTimeout(200);
  assert.ok(problems.some((problem) => problem.startsWith('CSP: ')), `expected a CSP violation, saw ${problems}`);
  await context.close();
});
