// private_key_jwt.mjs authenticates a private_key_jwt client (RFC 7523
// §2.2) against the issuer with libraries nobody here wrote: oauth4webapi's
// PrivateKeyJwt (ES256 assertions with aud = the issuer identifier, as the
// RFC 7523 update wants) for the client-credentials grant and
// introspection, and an EdDSA assertion made with jose's SignJWT (typ
// client-authentication+jwt), sent with fetch.
//
// Environment: ISSUER_URL, CLIENT_ID, AUDIENCE, ES256_KEY and EDDSA_KEY
// (PKCS #8 PEM private keys whose public JWKs, kids "es" and "ed", the
// client registered).
//
// It prints "interop ok" and exits 0, or prints the error and exits 1.
// TestNodeInteropPrivateKeyJWT in internal/server runs it.

import * as oauth from 'oauth4webapi';
import * as jose from 'jose';
import { env, check, run } from './lib.mjs';


async function main() {
  const issuer = new URL(env('ISSUER_URL'));
  const clientId = env('CLIENT_ID');
  const audience = env('AUDIENCE');
  const es = await jose.importPKCS8(env('ES256_KEY'), 'ES256');
  const ed = await jose.importPKCS8(env('EDDSA_KEY'), 'EdDSA');
  const insecure = { [oauth.allowInsecureRequests]: issuer.protocol === 'http:' };

  const as = await oauth.processDiscoveryResponse(
    issuer,
    await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
  );
  check(as.token_endpoint_auth_methods_supported.includes('private_key_jwt'), 'metadata does not list private_key_jwt');
  check(as.token_endpoint_auth_signing_alg_values_supported.includes('ES256'), 'metadata does not list ES256 for assertions');

  const client = { client_id: clientId };
  const auth = oauth.PrivateKeyJwt({ key: es, kid: 'es' });
  const jwks = jose.createRemoteJWKSet(new URL(as.jwks_uri));

  const cc = await oauth.processClientCredentialsResponse(
    as,
    client,
    await oauth.clientCredentialsGrantRequest(as, client, auth, new URLSearchParams({ scope: 'read' }), insecure),
  );
  const { payload } = await jose.jwtVerify(cc.access_token, jwks, {
    issuer: as.issuer, audience, typ: 'at+jwt', algorithms: ['ES256'],
  });
  check(payload.client_id === clientId, `client_id = ${JSON.stringify(payload.client_id)}`);

  // Introspection with a fresh assertion (a new jti).
  const intro = await oauth.processIntrospectionResponse(
    as,
    client,
    await oauth.introspectionRequest(as, client, auth, cc.access_token, insecure),
  );
  check(intro.active === true, `introspection: ${JSON.stringify(intro)}`);

  // An EdDSA assertion made with jose, sent by hand.
  const now = Math.floor(Date.now() / 1000);
  const assertion = await new jose.SignJWT({ jti: crypto.randomUUID() })
    .setProtectedHeader({ alg: 'EdDSA', kid: 'ed', typ: 'client-authentication+jwt' })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(as.issuer)
    .setIssuedAt(now)
    .setExpirationTime(now + 60)
    .sign(ed);
  const body = new URLSearchParams({
    grant_type: 'client_credentials',
    client_id: clientId,
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: assertion,
  });
  let res = await fetch(as.token_endpoint, { method: 'POST', body });
  check(res.status === 200, `EdDSA assertion: ${res.status} ${await res.text()}`);
  // The same assertion again is a replay.
  res = await fetch(as.token_endpoint, { method: 'POST', body });
  const err = await res.json();
  check(res.status === 401 && err.error === 'invalid_client', `replayed assertion: ${res.status} ${JSON.stringify(err)}`);

  console.log('interop ok');
}

run('interop', main);
