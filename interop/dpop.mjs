// dpop.mjs drives the issuer's DPoP support (RFC 9449) with oauth4webapi,
// a client library nobody here wrote: DPoP() proofs on the
// client-credentials and refresh-token grants, including the retry that a
// use_dpop_nonce error asks for, and protectedResourceRequest against
// examples/resource-api. jose checks the tokens' cnf.jkt.
//
// Environment: ISSUER_URL (an issuer with dpop_nonce on), CLIENT_ID,
// CLIENT_SECRET (client_secret_basic, scope "read", AUDIENCE among its
// audiences), AUDIENCE, API_URL (the example resource API, for AUDIENCE).
//
// It prints "dpop interop ok" and exits 0, or prints the error and exits
// 1. TestNodeDPoPInterop in internal/server runs it.

import * as oauth from 'oauth4webapi';
import * as jose from 'jose';
import { env, check, run } from './lib.mjs';


// retryOnNonce runs request once, and once more when the server asks for
// a DPoP nonce (the DPoP handle has cached it from the DPoP-Nonce header).
async function retryOnNonce(request, counter) {
  try {
    return await request();
  } catch (err) {
    if (!oauth.isDPoPNonceError(err)) {
      throw err;
    }
    counter.retries++;
    return request();
  }
}

async function main() {
  const issuer = new URL(env('ISSUER_URL'));
  const clientId = env('CLIENT_ID');
  const clientSecret = env('CLIENT_SECRET');
  const audience = env('AUDIENCE');
  const api = new URL(env('API_URL'));
  const insecure = { [oauth.allowInsecureRequests]: true };

  const as = await oauth.processDiscoveryResponse(
    issuer,
    await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
  );
  check(
    Array.isArray(as.dpop_signing_alg_values_supported) && as.dpop_signing_alg_values_supported.includes('ES256'),
    `dpop_signing_alg_values_supported = ${JSON.stringify(as.dpop_signing_alg_values_supported)}`,
  );
  const client = { client_id: clientId };
  const auth = oauth.ClientSecretBasic(clientSecret);
  const jwks = jose.createRemoteJWKSet(new URL(as.jwks_uri));

  const keyPair = await oauth.generateKeyPair('ES256');
  const DPoP = oauth.DPoP(client, keyPair);
  const jkt = await DPoP.calculateThumbprint();

  async function checkBound(token) {
    const { payload } = await jose.jwtVerify(token, jwks, {
      issuer: as.issuer,
      audience,
      typ: 'at+jwt',
      algorithms: ['ES256'],
    });
    check(payload.cnf && payload.cnf.jkt === jkt, `cnf = ${JSON.stringify(payload.cnf)}, want jkt ${jkt}`);
  }

  // Client credentials with a proof; the first request has no nonce, so
  // the issuer answers use_dpop_nonce and the retry carries it.
  const counter = { retries: 0 };
  const cc = await retryOnNonce(async () => oauth.processClientCredentialsResponse(
    as,
    client,
    await oauth.clientCredentialsGrantRequest(as, client, auth, new URLSearchParams({ scope: 'read', resource: audience }), {
      DPoP,
      ...insecure,
    }),
  ), counter);
  check(counter.retries === 1, `nonce retries = ${counter.retries}, want 1`);
  check(cc.token_type === 'dpop', `token_type = ${JSON.stringify(cc.token_type)}, want DPoP`);
  await checkBound(cc.access_token);

  // Refresh with a proof: the nonce is cached, no retry needed.
  const rt = await retryOnNonce(async () => oauth.processRefreshTokenResponse(
    as,
    client,
    await oauth.refreshTokenGrantRequest(as, client, auth, cc.refresh_token, { DPoP, ...insecure }),
  ), counter);
  check(counter.retries === 1, `nonce retries after the refresh = ${counter.retries}, want 1`);
  check(rt.token_type === 'dpop', `refresh token_type = ${JSON.stringify(rt.token_type)}, want DPoP`);
  await checkBound(rt.access_token);

  // The example resource API accepts the bound token with a proof.
  const items = new URL('/v1/items', api);
  const resp = await oauth.protectedResourceRequest(rt.access_token, 'GET', items, undefined, undefined, { DPoP, ...insecure });
  const text = await resp.text();
  check(resp.status === 200, `GET /v1/items with DPoP: ${resp.status} ${text}`);
  const body = JSON.parse(text);
  check(Array.isArray(body.items), `GET /v1/items body = ${JSON.stringify(body)}`);

  // Presented as a bearer token (no DPoP handle), it is refused with a
  // Bearer challenge first and a DPoP challenge after it.
  let challenges;
  try {
    await oauth.protectedResourceRequest(rt.access_token, 'GET', items, undefined, undefined, insecure);
  } catch (err) {
    check(err instanceof oauth.WWWAuthenticateChallengeError, `bearer use: ${err}`);
    challenges = err.cause;
  }
  check(Array.isArray(challenges) && challenges.length === 2, `challenges = ${JSON.stringify(challenges)}`);
  check(challenges[0].scheme === 'bearer' && challenges[0].parameters.error === 'invalid_token', `first challenge = ${JSON.stringify(challenges[0])}`);
  check(challenges[1].scheme === 'dpop' && /\bES256\b/.test(challenges[1].parameters.algs), `second challenge = ${JSON.stringify(challenges[1])}`);

  console.log('dpop interop ok');
}

run('dpop interop', main);
