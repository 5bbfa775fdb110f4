// Every page passes axe-core's WCAG 2.1 A and AA rules (labels, names, contrast, landmarks,
// ARIA) in its normal and its error states, and signing in works from the keyboard alone.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  PASSWORD,
  audit,
  createAccount,
  uniqueName,
  useLatchkeyAndBrowser,
  violations,
  watchPage,
} from '../harness.mjs';

const running = useLatchkeyAndBrowser();

test('every page, in its normal and error states, has no WCAG 2.1 AA violation', async () => {
  const username = uniqueName('a11y');
  const context = await running.browser.newContext();
  const page = await context.newPage();
  const results = [];

  await page.goto(`${running.server.origin}/signup`);
  await audit(page, '/signup', results);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password', { exact: true }).fill('password');
  await page.getByLabel('Password again').fill('password');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForLoadState();
  await audit(page, '/signup with errors', results);
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByLabel('Password again').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForURL(/notice=created/);
  await audit(page, '/login with a notice', results);

  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill('wrong password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForLoadState();
  await audit(page, '/login with an error', results);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${running.server.origin}/account`);
  await audit(page, '/account', results);

  await page.getByLabel('Current password').fill('not my password');
  await page.getByLabel('New password', { exact: true }).fill('password');
  await page.getByLabel('New password again').fill('password');
  await page.getByRole('button', { name: 'Change password' }).click();
  await page.waitForLoadState();
  await audit(page, '/account with an error', results);

  await page.goto(`${running.server.origin}/playground`);
  await page.locator('#token-username').fill(username);
  await page.locator('#token-password').fill(PASSWORD);
  await page.locator('#token-login button[type=submit]').click();
  await page.waitForFunction(() => document.querySelector('#token-status').textContent.startsWith('Holding'));
  await audit(page, '/playground', results);

  await page.goto(`${running.server.origin}/logout`);
  await audit(page, '/logout', results);
  await page.goto(`${running.server.origin}/assets/missing`);
  await audit(page, 'error page', results);

  assert.deepEqual(results, []);
  await context.close();
});

test('the audit is live: a field stripped of its label is reported', async () => {
  const context = await running.browser.newContext();
  const page = await context.newPage();
  await page.goto(`${running.server.origin}/login`);
  await page.evaluate(() => document.querySelector('label[for=username]').remove());
  const found = await violations(page);
  assert.ok(found.some((line) => line.startsWith('label: ')), found.join('\n'));
  await context.close();
});

test('signing in works from the keyboard alone, in a sensible focus order', async () => {
  const username = await createAccount(running.server.origin, 'keys');
  const context = await running.browser.newContext();
  const page = await context.newPage();
  const problems = watchPage(page);
  await page.goto(`${running.server.origin}/login`);

  const focused = () => page.evaluate(() => document.activeElement?.id || document.activeElement?.textContent.trim());
  await page.keyboard.press('Tab');
  assert.equal(await focused(), 'Skip to content', 'the skip link comes first');
  const order = [];
  for (let i = 0; i < 12 && order.at(-1) !== 'username'; i += 1) {
    await page.keyboard.press('Tab');
    order.push(await focused());
  }
  assert.equal(order.at(-1), 'username', `focus order: ${order.join(' → ')}`);
  await page.keyboard.type(username);
  await page.keyboard.press('Tab');
  assert.equal(await focused(), 'password');
  await page.keyboard.type(PASSWORD);
  await page.keyboard.press('Enter');
  await page.waitForURL(`${running.server.origin}/account`);
  assert.deepEqual(problems, []);
  await context.close();
});
