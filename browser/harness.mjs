// The browser tests' harness: the real `latchkey` binary on a free port with a fresh SQLite
// file, Debian's Chromium driven by playwright-core, and the helpers the tests share.

import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before } from 'node:test';
import { chromium } from 'playwright-core';

export const PASSWORD = 'correct horse battery';
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const SCREENSHOTS = path.join(ROOT, 'test-artifacts', 'screenshots');

const BINARY =
  process.env.LATCHKEY_BIN ??
  path.join(process.env.CARGO_TARGET_DIR ?? path.join(homedir(), '.cache', 'latchkey', 'target'), 'debug', 'latchkey');

// The flags this machine's closed network needs (background fetches would be refused), and
// root's lack of a sandbox.
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** A free TCP port on the loopback interface. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.unref();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/**
 * Starts latchkey with `env` on top of the test defaults (cheap Argon2, a private data dir,
 * the public URL equal to the address the browser uses). Resolves once it listens.
 */
export async function startLatchkey(env = {}) {
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const dataDir = mkdtempSync(path.join(tmpdir(), 'latchkey-browser-'));
  const childEnv = { PATH: process.env.PATH, HOME: process.env.HOME ?? '/root' };
  Object.assign(childEnv, {
    LATCHKEY_LISTEN: `127.0.0.1:${port}`,
    LATCHKEY_PUBLIC_URL: origin,
    LATCHKEY_DATA_DIR: dataDir,
    LATCHKEY_ARGON2_MEMORY_KIB: '256',
    LATCHKEY_ARGON2_ITERATIONS: '1',
    LATCHKEY_LOG: 'info,sqlx=warn',
    ...env,
  });
  const child = spawn(BINARY, ['serve'], { env: childEnv, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`latchkey did not start:\n${log}`)), 30_000);
    child.on('error', (err) => reject(new Error(`cannot run ${BINARY}: ${err.message}`)));
    child.on('exit', (code) => reject(new Error(`latchkey exited with ${code}:\n${log}`)));
    child.stderr.on('data', (chunk) => {
      log += chunk;
      if (log.includes('listening on')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return {
    origin,
    port,
    log: () => log,
    /** Runs a `latchkey` admin command against this server's store; its standard output. */
    cli(args) {
      const run = spawnSync(BINARY, args, { env: childEnv, encoding: 'utf8' });
      if (run.status !== 0) throw new Error(`latchkey ${args.join(' ')}: ${run.stderr}`);
      return run.stdout;
    },
    async stop() {
      child.removeAllListeners('exit');
      child.kill('SIGTERM');
      await new Promise((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', resolve)));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Debian's Chromium, headless. */
export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
  });
}

/**
 * Records what a page reports that a test must not ignore: Content-Security-Policy and
 * Trusted Types violations in the console, and uncaught script errors.
 */
export function watchPage(page) {
  const problems = [];
  page.on('console', (message) => {
    const text = message.text();
    if (/Content Security Policy|Trusted Type/i.test(text)) problems.push(`CSP: ${text}`);
  });
  page.on('pageerror', (err) => problems.push(`script error: ${err.message}`));
  return problems;
}

/** Saves a full-page screenshot as a test artifact. */
export async function screenshot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

let userCounter = 0;

/** A username no other test uses. */
export function uniqueName(stem) {
  userCounter += 1;
  return `${stem}${process.pid}x${userCounter}`;
}

/** Creates an account through the sign-up page. */
export async function signUp(page, origin, username) {
  await page.goto(`${origin}/signup`);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByLabel('Password again').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForURL(/\/login\?notice=created/);
}

/** Signs in through the sign-in page, from wherever the page is. */
export async function signIn(page, origin, username, { path: start = '/login' } = {}) {
  if (!page.url().includes('/login')) await page.goto(`${origin}${start}`);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/**
 * The test file's latchkey (with `env`) and browser, started before its tests and stopped
 * after them; the returned object's `server` and `browser` are set once they run.
 */
export function useLatchkeyAndBrowser(env = {}) {
  const shared = { server: null, browser: null };
  before(async () => {
    shared.server = await startLatchkey(env);
    shared.browser = await launchChromium();
  });
  after(async () => {
    await shared.browser?.close();
    await shared.server?.stop();
  });
  return shared;
}

/** Creates an account through the API (`POST /v1/accounts`); returns its username. */
export async function createAccount(origin, stem) {
  const username = uniqueName(stem);
  const response = await fetch(`${origin}/v1/accounts`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username, password: PASSWORD }),
  });
  if (response.status !== 201) throw new Error(`sign-up of ${username}: ${response.status}`);
  return username;
}

const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** axe-core's violations on the page as it is now, one line each. */
export async function violations(page) {
  // Evaluated through the DevTools protocol, which the page's CSP does not govern.
  await page.evaluate(AXE);
  const found = await page.evaluate(async () => {
    const result = await globalThis.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
    });
    return result.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`);
  });
  return found;
}

/** Audits the page in light and dark colour schemes, adding each violation to `results`. */
export async function audit(page, label, results) {
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    for (const violation of await violations(page)) results.push(`${label} [${scheme}] ${violation}`);
  }
}
