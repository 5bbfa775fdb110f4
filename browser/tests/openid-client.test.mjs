// latchkey as an OpenID Provider, driven by an independent, certified relying-party library:
// openid-client (npm), configured as its documentation says. It checks what our own reading of
// the specifications shares with our code: discovery, the authorization response (state, RFC
// 9207 iss), the code grant with PKCE under both client authentication methods, the ID token's
// claims, userinfo, introspection, refresh, revocation and the end-session URL. No browser: the
// sign-in at latchkey is a cookie from the API.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import * as client from 'openid-client';

import { PASSWORD, createAccount, startLatchkey } from '../harness.mjs';

let server;

before(async () => {
  server = await startLatchkey();
});

after(async () => {
  await server?.stop();
});

const REDIRECT = 'https://rp.example/callback';

/** Registers an app; its id and secret. */
function register(name, ...flags) {
  const out = server.cli([
    'client',
    'add',
    name,
    '--redirect-uri',
    REDIRECT,
    '--post-logout-redirect-uri',
    'https://rp.example/bye',
    '--skip-consent',
    '--json',
    ...flags,
  ]);
  return JSON.parse(out);
}

/** A browser's sign-in at latchkey: its session cookie. */
async function signIn(username) {
  const response = await fetch(`${server.origin}/v1/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: PASSWORD }),
  });
  assert.equal(response.status, 200);
  return response.headers.getSetCookie().find((line) => line.startsWith('latchkey_session=')).split(';')[0];
}

/** openid-client's configuration for an app, over plain HTTP as the library allows on request. */
function configure(app, authentication) {
  return client.discovery(new URL(server.origin), app.client_id, undefined, authentication, {
    execute: [client.allowInsecureRequests],
  });
}

/** Follows the authorization request as the browser would; the URL latchkey sent it back to. */
async function authorize(config, cookie, extra = {}) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT,
    scope: 'openid profile',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...extra,
  });
  const headers = cookie ? { cookie } : {};
  const response = await fetch(url, { redirect: 'manual', headers });
  assert.equal(response.status, 303, `authorize answered ${response.status}`);
  return { callback: new URL(response.headers.get('location')), checks: { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce } };
}

test('discovery, the code flow with both client authentications, and every endpoint an app uses', async () => {
  const username = await createAccount(server.origin, 'rp');
  const cookie = await signIn(username);
  const basicApp = register('Basic app');
  const postApp = register('Post app', '--id-token-alg', 'ES256');

  for (const [app, authentication, alg] of [
    [basicApp, client.ClientSecretBasic(basicApp.client_secret), 'RS256'],
    [postApp, client.ClientSecretPost(postApp.client_secret), 'ES256'],
  ]) {
    const config = await configure(app, authentication);
    const metadata = config.serverMetadata();
    assert.equal(metadata.issuer, server.origin);
    assert.ok(metadata.end_session_endpoint && metadata.introspection_endpoint && metadata.userinfo_endpoint);

    const { callback, checks } = await authorize(config, cookie);
    const tokens = await client.authorizationCodeGrant(config, callback, { ...checks, idTokenExpected: true });
    const claims = tokens.claims();
    assert.equal(claims.preferred_username, username);
    assert.equal(claims.aud, app.client_id);
    assert.ok(claims.sid && claims.auth_time && claims.at_hash);
    assert.equal(JSON.parse(Buffer.from(tokens.id_token.split('.')[0], 'base64url')).alg, alg);
    assert.equal(tokens.scope, 'openid profile');

    const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
    assert.equal(info.preferred_username, username);

    const active = await client.tokenIntrospection(config, tokens.access_token);
    assert.equal(active.active, true);
    assert.equal(active.client_id, app.client_id);
    assert.equal(active.sub, claims.sub);

    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
    assert.ok(refreshed.access_token && refreshed.refresh_token);
    assert.notEqual(refreshed.refresh_token, tokens.refresh_token);

    await client.tokenRevocation(config, refreshed.refresh_token);
    const revoked = await client.tokenIntrospection(config, refreshed.access_token);
    assert.equal(revoked.active, false, 'revoking the refresh token ended the app session');
  }
});

test('the library sees prompt=none answered with login_required, from latchkey (iss checked)', async () => {
  const app = register('Silent app');
  const config = await configure(app, client.ClientSecretBasic(app.client_secret));
  const { callback, checks } = await authorize(config, undefined, { prompt: 'none' });
  await assert.rejects(
    client.authorizationCodeGrant(config, callback, checks),
    (err) => err.error === 'login_required',
  );
  // A response that claims to come from another issuer is refused by the library (RFC 9207).
  callback.searchParams.set('iss', 'https://evil.example');
  await assert.rejects(client.authorizationCodeGrant(config, callback, checks));
});

test('the end-session URL the library builds signs the user out at once', async () => {
  const username = await createAccount(server.origin, 'rpout');
  const cookie = await signIn(username);
  const app = register('Leaving app');
  const config = await configure(app, client.ClientSecretBasic(app.client_secret));
  const { callback, checks } = await authorize(config, cookie);
  const tokens = await client.authorizationCodeGrant(config, callback, checks);
  const url = client.buildEndSessionUrl(config, {
    id_token_hint: tokens.id_token,
    post_logout_redirect_uri: 'https://rp.example/bye',
    state: 'bye-1',
  });
  const response = await fetch(url, { redirect: 'manual' });
  assert.equal(response.status, 303);
  assert.equal(response.headers.get('location'), 'https://rp.example/bye?state=bye-1');
  const me = await fetch(`${server.origin}/v1/me`, { headers: { cookie } });
  assert.equal(me.status, 401, 'the sign-in at latchkey ended');
  const after = await client.tokenIntrospection(config, tokens.access_token);
  assert.equal(after.active, false, "and with it the app's session");
});
