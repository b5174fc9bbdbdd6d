// statuslist.mjs reads the issuer's Token Status Lists with
// @sd-jwt/jwt-status-list (the draft-ietf-oauth-status-list implementation
// of the OpenWallet Foundation's sd-jwt-js) and verifies the list JWTs with
// jose against the advertised JWKS.
//
// Environment: ISSUER_URL, VALID and REVOKED (access tokens whose status
// must be 0 and 1), TTL (the expected ttl claim).
//
// It prints "status list interop ok" and exits 0, or prints the error and
// exits 1. TestNodeStatusListInterop in internal/server runs it.

import { getListFromStatusListJWT, getStatusListFromJWT } from '@sd-jwt/jwt-status-list';
import * as jose from 'jose';
import { inspect } from 'node:util';
import { env, check, run } from './lib.mjs';


async function main() {
  const issuer = env('ISSUER_URL');
  const md = await (await fetch(new URL('/.well-known/oauth-authorization-server', issuer))).json();
  check(typeof md.status_list_aggregation_endpoint === 'string', 'metadata has no status_list_aggregation_endpoint');
  const jwks = jose.createRemoteJWKSet(new URL(md.jwks_uri));
  const agg = await (await fetch(md.status_list_aggregation_endpoint)).json();
  check(Array.isArray(agg.status_lists) && agg.status_lists.length > 0, `aggregation: ${inspect(agg)}`);

  for (const [name, want] of [['VALID', 0], ['REVOKED', 1]]) {
    const token = env(name);
    // The library's reader of a token's status claim.
    const entry = getStatusListFromJWT(token);
    check(typeof entry.idx === 'number' && typeof entry.uri === 'string', `${name}: status entry ${inspect(entry)}`);
    check(agg.status_lists.includes(entry.uri), `${name}: ${entry.uri} is not in the aggregation ${inspect(agg)}`);
    const resp = await fetch(entry.uri);
    check(resp.ok, `${name}: GET ${entry.uri}: ${resp.status}`);
    check(resp.headers.get('content-type') === 'application/statuslist+jwt', `${name}: content-type ${resp.headers.get('content-type')}`);
    const listJWT = await resp.text();
    const { payload } = await jose.jwtVerify(listJWT, jwks, {
      typ: 'statuslist+jwt',
      subject: entry.uri,
      algorithms: ['ES256'],
      requiredClaims: ['sub', 'iat', 'exp'],
    });
    check(payload.ttl === Number(env('TTL')), `${name}: ttl ${payload.ttl}`);
    // The library's decoder of the list (ZLIB, base64url, bit order).
    const list = getListFromStatusListJWT(listJWT);
    const got = list.getStatus(entry.idx);
    check(got === want, `${name}: status of index ${entry.idx} is ${got}, want ${want}`);
  }
  console.log('status list interop ok');
}

run('status list interop', main);
