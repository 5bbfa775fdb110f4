// A tiny web app that signs its users in through latchkey with a standard OpenID Connect
// client library (openid-client, certified), configured as its documentation says, and ends
// their sessions when latchkey posts a back-channel logout token (verified with jose).
//
// Settings (environment): APP_NAME, APP_PORT, LATCHKEY_URL (the issuer), CLIENT_ID,
// CLIENT_SECRET, CLIENT_AUTH (`basic` or `post`: how it authenticates at the token endpoint).
// Run two of them (see ./run) to see single sign-on and single logout.

import { randomBytes } from 'node:crypto';
import http from 'node:http';

import * as jose from 'jose';
import * as client from 'openid-client';

const name = process.env.APP_NAME ?? 'Notes';
const port = Number(process.env.APP_PORT ?? 3001);
const issuer = new URL(process.env.LATCHKEY_URL ?? 'http://127.0.0.1:8080');
const base = `http://127.0.0.1:${port}`;
const cookieName = `${name.toLowerCase()}_session`;

// latchkey here runs over plain HTTP on the loopback interface, for the example: openid-client
// refuses that unless told, as a production app (over https) never needs to.
const insecureForLocalDemo = issuer.protocol === 'http:' ? [client.allowInsecureRequests] : [];
const authentication =
  process.env.CLIENT_AUTH === 'post'
    ? client.ClientSecretPost(process.env.CLIENT_SECRET)
    : client.ClientSecretBasic(process.env.CLIENT_SECRET);
const config = await client.discovery(issuer, process.env.CLIENT_ID, undefined, authentication, {
  execute: insecureForLocalDemo,
});
const metadata = config.serverMetadata();
const jwks = jose.createRemoteJWKSet(new URL(metadata.jwks_uri));

/** Signed-in users of this app, by the app's own session cookie. */
const sessions = new Map();
/** Sign-ins under way, by `state`. */
const pending = new Map();
/** Logout tokens already acted on (a repeat carries the same `jti`). */
const seenLogoutTokens = new Set();

function cookies(request) {
  const found = new Map();
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=');
    if (key) found.set(key, value.join('='));
  }
  return found;
}

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(response, status, title, body) {
  response.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
  });
  response.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title>
<style>body{font:16px system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem}
h1{font-size:1.6rem}.who{background:#eef6ee;border:1px solid #9c9;padding:1rem;border-radius:.5rem}
.out{background:#f6eeee;border:1px solid #c99;padding:1rem;border-radius:.5rem}
a.button{display:inline-block;padding:.5rem 1rem;background:#1d4ed8;color:#fff;border-radius:.4rem;text-decoration:none}</style>
</head><body><h1>${escape(name)}</h1>${body}</body></html>`);
}

function redirect(response, location, headers = {}) {
  response.writeHead(302, { location, 'cache-control': 'no-store', ...headers });
  response.end();
}

async function home(request, response) {
  const session = sessions.get(cookies(request).get(cookieName));
  if (!session) {
    page(
      response,
      200,
      name,
      `<p class="out" id="status">You are signed out of ${escape(name)}.</p>
<p><a class="button" href="/login">Sign in with latchkey</a></p>`,
    );
    return;
  }
  page(
    response,
    200,
    name,
    `<p class="who" id="status">Signed in to ${escape(name)} as <strong id="username">${escape(session.username)}</strong>.</p>
<p>latchkey sign-in (<code>sid</code>): <code id="sid">${escape(session.sid)}</code></p>
<p><a class="button" href="/logout">Sign out everywhere</a></p>`,
  );
}

async function login(request, response) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  pending.set(state, { verifier, nonce });
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: `${base}/callback`,
    scope: 'openid profile',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  redirect(response, url.href, { 'set-cookie': `${cookieName}_state=${state}; HttpOnly; SameSite=Lax; Path=/` });
}

async function callback(request, response) {
  const state = cookies(request).get(`${cookieName}_state`);
  const expected = pending.get(state);
  if (!expected) {
    page(response, 400, 'Sign-in failed', '<p>This sign-in was not started here. <a href="/">Start again</a>.</p>');
    return;
  }
  pending.delete(state);
  try {
    const tokens = await client.authorizationCodeGrant(config, new URL(request.url, base), {
      pkceCodeVerifier: expected.verifier,
      expectedState: state,
      expectedNonce: expected.nonce,
      idTokenExpected: true,
    });
    const claims = tokens.claims();
    const id = randomBytes(24).toString('base64url');
    sessions.set(id, {
      username: claims.preferred_username ?? claims.sub,
      sub: claims.sub,
      sid: claims.sid,
      idToken: tokens.id_token,
      accessToken: tokens.access_token,
      refreshToken: tokens.refresh_token,
    });
    redirect(response, '/', {
      'set-cookie': [
        `${cookieName}=${id}; HttpOnly; SameSite=Lax; Path=/`,
        `${cookieName}_state=; Max-Age=0; Path=/`,
      ],
    });
  } catch (err) {
    page(response, 400, 'Sign-in failed', `<p id="error">${escape(err.error ?? err.message)}</p><p><a href="/">Back</a></p>`);
  }
}

async function logout(request, response) {
  const id = cookies(request).get(cookieName);
  const session = sessions.get(id);
  sessions.delete(id);
  if (!session) {
    redirect(response, '/');
    return;
  }
  const url = client.buildEndSessionUrl(config, {
    id_token_hint: session.idToken,
    post_logout_redirect_uri: `${base}/`,
  });
  redirect(response, url.href, { 'set-cookie': `${cookieName}=; Max-Age=0; Path=/` });
}

/** Back-Channel Logout 1.0 §2.6: validate the logout token, then end the sessions it names. */
async function backChannelLogout(request, response) {
  let body = '';
  for await (const chunk of request) body += chunk;
  const token = new URLSearchParams(body).get('logout_token');
  try {
    const { payload } = await jose.jwtVerify(token ?? '', jwks, {
      issuer: metadata.issuer,
      audience: process.env.CLIENT_ID,
      typ: 'logout+jwt',
      maxTokenAge: '2 minutes',
    });
    const events = payload.events?.['http://schemas.openid.net/event/backchannel-logout'];
    if (typeof events !== 'object' || 'nonce' in payload || !(payload.sid || payload.sub) || !payload.jti) {
      throw new Error('not a logout token');
    }
    if (!seenLogoutTokens.has(payload.jti)) {
      seenLogoutTokens.add(payload.jti);
      for (const [id, session] of sessions) {
        if (payload.sid ? session.sid === payload.sid : session.sub === payload.sub) sessions.delete(id);
      }
      console.log(`${name}: back-channel logout of sign-in ${payload.sid}`);
    }
    response.writeHead(200, { 'cache-control': 'no-store' });
    response.end();
  } catch (err) {
    response.writeHead(400, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    response.end(JSON.stringify({ error: 'invalid_request', error_description: err.message }));
  }
}

const routes = {
  'GET /': home,
  'GET /login': login,
  'GET /callback': callback,
  'GET /logout': logout,
  'POST /backchannel-logout': backChannelLogout,
};

http
  .createServer((request, response) => {
    const route = routes[`${request.method} ${new URL(request.url, base).pathname}`];
    if (!route) {
      page(response, 404, 'Not found', '<p>Not found.</p>');
      return;
    }
    route(request, response).catch((err) => {
      console.error(err);
      if (!response.headersSent) page(response, 500, 'Error', '<p>Something went wrong.</p>');
    });
  })
  .listen(port, '127.0.0.1', () => console.log(`${name} listening on ${base}`));
