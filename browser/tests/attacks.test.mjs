// Pages on another origin (a second port of the same host: same-site, so the browser sends
// the SameSite=Lax session cookie along) that post forms to latchkey are refused by the CSRF
// rule, and the victim's session survives.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, test } from 'node:test';

import { PASSWORD, createAccount, freePort, screenshot, signIn, useLatchkeyAndBrowser, watchPage } from '../harness.mjs';

const running = useLatchkeyAndBrowser();
let attacker;
let attackerOrigin;

/** An auto-submitting form posting `fields` to latchkey's `path`. */
function attackPage(path, fields) {
  const inputs = Object.entries(fields)
    .map(([name, value]) => `<input type="hidden" name="${name}" value="${value}">`)
    .join('');
  return `<!doctype html><title>Win a prize</title><form id="f" method="post" action="${running.server.origin}${path}">${inputs}</form>` +
    '<script>document.getElementById("f").submit()</script>';
}

before(async () => {
  const pages = {
    '/log-out-everywhere': () => attackPage('/account/logout', { scope: 'all', csrf_token: 'guessed' }),
    '/log-out-everywhere-no-token': () => attackPage('/account/logout', { scope: 'all' }),
    '/change-password': () =>
      attackPage('/account/password', {
        current_password: PASSWORD,
        new_password: 'attacker chosen words',
        new_password_confirm: 'attacker chosen words',
      }),
    '/login-as-attacker': () => attackPage('/login', { username: 'attacker', password: PASSWORD }),
  };
  attacker = createServer((request, response) => {
    const page = pages[request.url];
    response.writeHead(page ? 200 : 404, { 'Content-Type': 'text/html' });
    response.end(page ? page() : 'not found');
  });
  const port = await freePort();
  await new Promise((resolve) => attacker.listen(port, '127.0.0.1', resolve));
  attackerOrigin = `http://127.0.0.1:${port}`;
});

after(async () => {
  await new Promise((resolve) => (attacker ? attacker.close(resolve) : resolve()));
});

test('forms posted from another origin are refused with 403 and change nothing', async () => {
  const username = await createAccount(running.server.origin, 'victim');
  const context = await running.browser.newContext();
  const page = await context.newPage();
  const problems = watchPage(page);
  await signIn(page, running.server.origin, username);
  await page.waitForURL(`${running.server.origin}/account`);

  for (const [attack, target] of [
    ['/log-out-everywhere', '/account/logout'],
    ['/log-out-everywhere-no-token', '/account/logout'],
    ['/change-password', '/account/password'],
    ['/login-as-attacker', '/login'],
  ]) {
    const answer = page.waitForResponse((response) => response.url() === `${running.server.origin}${target}`);
    await page.goto(`${attackerOrigin}${attack}`);
    const response = await answer;
    await page.waitForLoadState();
    assert.equal(response.status(), 403, attack);
    assert.equal(await page.locator('h1').textContent(), 'CSRF check failed', attack);
    assert.match(await page.getByRole('alert').textContent(), /Cross-site requests are refused/, attack);
    if (attack === '/log-out-everywhere') await screenshot(page, 'csrf-refused');
  }

  // The victim is still signed in, with the same password and one device.
  await page.goto(`${running.server.origin}/account`);
  assert.equal(page.url(), `${running.server.origin}/account`);
  assert.equal(await page.locator('.username').textContent(), username);
  assert.equal(await page.locator('tr.device').count(), 1);
  const login = await fetch(`${running.server.origin}/v1/session`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username, password: PASSWORD }),
  });
  assert.equal(login.status, 200, 'the password did not change');
  assert.deepEqual(problems, []);
  await context.close();
});

test('the pages cannot be framed by another origin', async () => {
  const context = await running.browser.newContext();
  const page = await context.newPage();
  const blocked = [];
  page.on('console', (message) => blocked.push(message.text()));
  await page.setContent(`<iframe src="${running.server.origin}/login"></iframe>`);
  await page.waitForTimeout(500);
  const frame = page.frames().find((f) => f.url().startsWith(running.server.origin));
  const framed = frame ? await frame.locator('form').count().catch(() => 0) : 0;
  assert.equal(framed, 0, 'the sign-in form did not render inside a frame');
  assert.ok(blocked.some((text) => /frame-ancestors|X-Frame-Options/.test(text)), blocked.join('\n'));
  await context.close();
});
