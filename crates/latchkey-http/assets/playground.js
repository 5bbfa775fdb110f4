// The playground: the token mode and the cookie mode of latchkey, driven from the browser's
// side. Plain script, no build step; it only ever writes text into the page (textContent),
// so it runs under the pages' Content-Security-Policy with Trusted Types enforced.
(() => {
  'use strict';

  const byId = (id) => document.getElementById(id);
  const FORM = { 'Content-Type': 'application/x-www-form-urlencoded' };
  // Refresh when this share of the access token's lifetime has passed: early enough that a
  // slow network still beats the expiry, late enough not to refresh needlessly.
  const REFRESH_AT = 0.7;
  // How often the token side calls /v1/me, as an app calls its API.
  const CALL_EVERY_MS = 2000;

  function note(listId, text) {
    const list = byId(listId);
    const item = document.createElement('li');
    const when = document.createElement('time');
    when.textContent = new Date().toLocaleTimeString();
    item.append(when, ' ', text);
    list.prepend(item);
    while (list.children.length > 40) list.lastElementChild.remove();
  }

  async function readJson(response) {
    try {
      return await response.json();
    } catch {
      return {};
    }
  }

  // A JWT's header or claims: base64url JSON.
  function decodeSegment(segment) {
    const base64 = segment.replace(/-/g, '+').replace(/_/g, '/');
    const padded = base64 + '='.repeat((4 - (base64.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  }

  // ---- Token mode -------------------------------------------------------------------------

  const tokens = {
    access: null, // the JWT, in memory only
    refresh: null, // the opaque refresh token, in memory only
    expiresAt: 0, // local clock, from expires_in (the server's clock may differ from ours)
    lifetimeMs: 0,
    refreshes: 0,
    refreshTimer: null,
    callTimer: null,
  };

  function setTokenButtons(enabled) {
    for (const id of ['token-call', 'token-refresh', 'token-revoke']) byId(id).disabled = !enabled;
  }

  function keepTokens(body, why) {
    tokens.access = body.access_token;
    tokens.refresh = body.refresh_token;
    tokens.lifetimeMs = body.expires_in * 1000;
    tokens.expiresAt = Date.now() + tokens.lifetimeMs;
    const [header, claims] = body.access_token.split('.');
    byId('token-claims').textContent =
      '// header\n' + JSON.stringify(decodeSegment(header), null, 2) +
      '\n// claims\n' + JSON.stringify(decodeSegment(claims), null, 2);
    byId('token-session').textContent = body.session_id;
    byId('token-refreshes').textContent = String(tokens.refreshes);
    byId('token-status').textContent = 'Holding an access token and a refresh token (' + why + ')';
    const refreshInMs = Math.max(500, tokens.lifetimeMs * REFRESH_AT);
    byId('token-refresh-plan').textContent =
      '(refreshing automatically after ' + (refreshInMs / 1000).toFixed(1) + ' s of ' + body.expires_in + ' s)';
    clearTimeout(tokens.refreshTimer);
    tokens.refreshTimer = setTimeout(() => refreshTokens('automatic, before expiry'), refreshInMs);
    // The app keeps calling its API on its own rhythm, whatever the refreshes do.
    if (!tokens.callTimer) tokens.callTimer = setInterval(callApiWithToken, CALL_EVERY_MS);
    setTokenButtons(true);
    if (carts.token.version === null) loadCart('token');
    tick();
  }

  function forgetTokens(why) {
    clearTimeout(tokens.refreshTimer);
    clearInterval(tokens.callTimer);
    tokens.callTimer = null;
    tokens.access = null;
    tokens.refresh = null;
    tokens.expiresAt = 0;
    byId('token-status').textContent = 'No token: ' + why;
    byId('token-countdown').textContent = '–';
    byId('token-refresh-plan').textContent = '';
    setTokenButtons(false);
    forgetCart('token');
  }

  async function tokenEndpoint(params) {
    const response = await fetch('/v1/token', {
      method: 'POST',
      headers: FORM,
      body: new URLSearchParams(params),
      credentials: 'omit',
    });
    return { response, body: await readJson(response) };
  }

  async function signInWithTokens(event) {
    event.preventDefault();
    const form = event.target;
    const { response, body } = await tokenEndpoint({
      grant_type: 'password',
      username: form.elements.username.value,
      password: form.elements.password.value,
    });
    form.elements.password.value = '';
    if (!response.ok) {
      note('token-log', 'POST /v1/token → ' + response.status + ' ' + body.error + ': ' + body.error_description);
      return;
    }
    tokens.refreshes = 0;
    note('token-log', 'POST /v1/token (password grant) → 200: a new token session');
    forgetCart('token');
    keepTokens(body, 'signed in');
  }

  async function refreshTokens(why) {
    if (!tokens.refresh) return;
    const { response, body } = await tokenEndpoint({ grant_type: 'refresh_token', refresh_token: tokens.refresh });
    if (!response.ok) {
      note('token-log', 'Refresh refused → ' + response.status + ' ' + body.error + ': the session has ended');
      const access = tokens.access;
      forgetTokens('the refresh token was refused (' + body.error + ')');
      if (why !== 'after a refused call' && access) {
        // What the API now says to the access token still in hand, as an app would find out.
        const check = await fetch('/v1/me', { headers: { Authorization: 'Bearer ' + access }, credentials: 'omit' });
        note('token-log', 'GET /v1/me → ' + check.status + ' with the last access token: ' +
          (check.ok ? 'it works until it expires' : 'refused too, its session has ended'));
        byId('token-me').textContent = check.status + (check.ok ? ': still accepted' : ': the access token was refused');
      }
      return;
    }
    tokens.refreshes += 1;
    note('token-log', 'Refreshed (' + why + '): a new access token and a new refresh token; the old refresh token is retired');
    keepTokens(body, 'refreshed ' + tokens.refreshes + '×');
  }

  async function callApiWithToken() {
    if (!tokens.access) return;
    const response = await fetch('/v1/me', {
      headers: { Authorization: 'Bearer ' + tokens.access },
      credentials: 'omit',
    });
    if (response.ok) {
      const body = await readJson(response);
      byId('token-me').textContent = '200: ' + body.user.username + ' (auth: ' + body.auth + ')';
      return;
    }
    byId('token-me').textContent = response.status + ': the access token was refused';
    note('token-log', 'GET /v1/me → ' + response.status + ': the access token was refused; trying the refresh token');
    await refreshTokens('after a refused call');
  }

  async function revokeTokens() {
    const access = tokens.access;
    const response = await fetch('/v1/token/revoke', {
      method: 'POST',
      headers: FORM,
      body: new URLSearchParams({ token: tokens.refresh }),
      credentials: 'omit',
    });
    note('token-log', 'POST /v1/token/revoke → ' + response.status + ': revoking either token ends the whole session');
    const check = await fetch('/v1/me', { headers: { Authorization: 'Bearer ' + access }, credentials: 'omit' });
    note('token-log', 'The old access token, still unexpired, now gets ' + check.status + ' from /v1/me');
    byId('token-me').textContent = check.status + ': the access token was refused';
    forgetTokens('revoked');
  }

  function tick() {
    if (!tokens.access) return;
    const left = Math.max(0, tokens.expiresAt - Date.now());
    byId('token-countdown').textContent = (left / 1000).toFixed(1) + ' s';
  }

  // ---- Cookie mode ------------------------------------------------------------------------

  const cookieSection = byId('cookie-mode');
  const cookieName = cookieSection.dataset.cookieName;
  let csrfToken = null;

  function showWhatScriptSees() {
    const visible = document.cookie;
    byId('cookie-visible').textContent = visible === '' ? '"" (an empty string)' : JSON.stringify(visible);
    const sees = visible.split(';').some((pair) => pair.trim().startsWith(cookieName + '='));
    byId('cookie-verdict').textContent = sees
      ? 'Yes (this would be a bug)'
      : 'No. The browser holds it and sends it, but HttpOnly keeps it out of every script, so an injected one cannot steal it.';
  }

  function cookieSignedIn(session, csrf, why) {
    csrfToken = csrf;
    byId('cookie-status').textContent = 'Signed in with ' + why;
    byId('cookie-session').textContent = session;
    byId('cookie-csrf').textContent = csrf;
    byId('cookie-forged').disabled = false;
    byId('cookie-logout').disabled = false;
    if (carts.cookie.version === null) loadCart('cookie');
    showWhatScriptSees();
  }

  function cookieSignedOut(why) {
    csrfToken = null;
    byId('cookie-status').textContent = 'Not signed in: ' + why;
    byId('cookie-session').textContent = '–';
    byId('cookie-csrf').textContent = '–';
    byId('cookie-forged').disabled = true;
    byId('cookie-logout').disabled = true;
    forgetCart('cookie');
    showWhatScriptSees();
  }

  async function signInWithCookie(event) {
    event.preventDefault();
    const form = event.target;
    const response = await fetch('/v1/session', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: form.elements.username.value, password: form.elements.password.value }),
      credentials: 'same-origin',
    });
    form.elements.password.value = '';
    const body = await readJson(response);
    if (!response.ok) {
      note('cookie-log', 'POST /v1/session → ' + response.status + ' ' + body.code + ': ' + body.detail);
      return;
    }
    note('cookie-log', 'POST /v1/session → 200: the browser stored the session cookie (Set-Cookie, HttpOnly)');
    forgetCart('cookie');
    cookieSignedIn(body.session.id, body.csrf_token, 'a new cookie session');
  }

  async function callApiWithCookie(quiet) {
    const response = await fetch('/v1/me', { credentials: 'same-origin' });
    const body = await readJson(response);
    if (response.ok) {
      if (!quiet) note('cookie-log', 'GET /v1/me → 200 as ' + body.user.username + ': the browser attached the cookie by itself');
      cookieSignedIn(body.session.id, body.csrf_token, body.session.kind === 'cookie' ? 'a cookie session' : 'a hybrid token cookie');
    } else {
      if (!quiet) note('cookie-log', 'GET /v1/me → ' + response.status + ': no working session cookie');
      cookieSignedOut('no working session cookie');
    }
  }

  async function logOutWithoutCsrf() {
    const response = await fetch('/v1/logout', { method: 'POST', credentials: 'same-origin' });
    const body = await readJson(response);
    note('cookie-log', 'POST /v1/logout without X-CSRF-Token → ' + response.status + ' ' + (body.code || '') +
      ': the cookie alone cannot change anything, so a forged cross-site request cannot either');
  }

  async function logOutWithCookie() {
    const response = await fetch('/v1/logout', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrfToken },
      body: JSON.stringify({ scope: 'current' }),
      credentials: 'same-origin',
    });
    note('cookie-log', 'POST /v1/logout with X-CSRF-Token → ' + response.status + ': the session is revoked and the cookie cleared');
    await callApiWithCookie(false);
  }

  // ---- The cart, kept in each mode's session ------------------------------------------------

  // How each mode reaches its session's data: the token side with its access token, the
  // cookie side with the cookie the browser sends (and the CSRF token on changes).
  const carts = {
    token: {
      log: 'token-log',
      send: (method, headers, body) => fetch('/v1/session/data', {
        method,
        headers: { ...headers, Authorization: 'Bearer ' + tokens.access },
        body,
        credentials: 'omit',
      }),
    },
    cookie: {
      log: 'cookie-log',
      send: (method, headers, body) => fetch('/v1/session/data', {
        method,
        headers: method === 'GET' ? headers : { ...headers, 'X-CSRF-Token': csrfToken },
        body,
        credentials: 'same-origin',
      }),
    },
  };
  for (const cart of Object.values(carts)) {
    cart.items = {};
    cart.version = null;
  }

  function setCartButtons(mode, enabled) {
    for (const button of byId(mode + '-cart-buttons').querySelectorAll('button')) button.disabled = !enabled;
  }

  function showCart(mode) {
    const cart = carts[mode];
    const entries = Object.entries(cart.items);
    byId(mode + '-cart').textContent = cart.version === null
      ? '–'
      : entries.length === 0 ? 'Empty' : entries.map(([item, count]) => item + ' × ' + count).join(', ');
    byId(mode + '-cart-version').textContent = cart.version || '–';
  }

  function forgetCart(mode) {
    carts[mode].items = {};
    carts[mode].version = null;
    setCartButtons(mode, false);
    showCart(mode);
  }

  // Takes a 200 answer's data and version; anything else is told in the mode's log.
  async function takeCart(mode, response, what) {
    const cart = carts[mode];
    const body = await readJson(response);
    if (response.ok) {
      cart.items = body.cart || {};
      cart.version = response.headers.get('ETag');
      setCartButtons(mode, true);
      showCart(mode);
      return true;
    }
    note(cart.log, what + ' → ' + response.status + ' ' + (body.code || '') + ': ' + (body.detail || ''));
    if (response.status === 401) forgetCart(mode);
    return false;
  }

  async function loadCart(mode) {
    await takeCart(mode, await carts[mode].send('GET', {}), 'GET /v1/session/data');
  }

  // A change to the cart as a merge patch, only if the cart is still the version shown.
  async function changeCart(mode, patch, what) {
    const cart = carts[mode];
    const headers = { 'Content-Type': 'application/merge-patch+json' };
    if (cart.version) headers['If-Match'] = cart.version;
    const response = await cart.send('PATCH', headers, JSON.stringify({ cart: patch }));
    if (await takeCart(mode, response, 'PATCH /v1/session/data (' + what + ')')) {
      note(cart.log, 'PATCH /v1/session/data → 200: ' + what + ', a new version of the session\'s data');
    } else if (response.status === 412) {
      note(cart.log, 'The cart changed elsewhere since this page read it; reading it again');
      await loadCart(mode);
    }
  }

  function wireCart(mode) {
    for (const button of byId(mode + '-cart-buttons').querySelectorAll('button[data-item]')) {
      const item = button.dataset.item;
      button.addEventListener('click', () =>
        changeCart(mode, { [item]: (carts[mode].items[item] || 0) + 1 }, 'one more ' + item));
    }
    byId(mode + '-cart-buttons').querySelector('button[data-empty]')
      .addEventListener('click', () => changeCart(mode, null, 'emptied'));
  }

  // ---- Wiring -----------------------------------------------------------------------------

  document.addEventListener('DOMContentLoaded', () => {
    byId('token-login').addEventListener('submit', signInWithTokens);
    byId('token-call').addEventListener('click', callApiWithToken);
    byId('token-refresh').addEventListener('click', () => refreshTokens('on request'));
    byId('token-revoke').addEventListener('click', revokeTokens);
    byId('cookie-login').addEventListener('submit', signInWithCookie);
    byId('cookie-call').addEventListener('click', () => callApiWithCookie(false));
    byId('cookie-forged').addEventListener('click', logOutWithoutCsrf);
    byId('cookie-logout').addEventListener('click', logOutWithCookie);
    wireCart('token');
    wireCart('cookie');
    setInterval(tick, 200);
    callApiWithCookie(true);
  });
})();
