// check.mjs drives the issuer with two strict third-party libraries that
// nobody here wrote: oauth4webapi (RFC 8414 discovery, the client-credentials
// and refresh-token grants, strict token-response processing) and jose (JWKS
// fetched from the advertised jwks_uri, RFC 9068 access-token verification).
//
// Environment: ISSUER_URL, CLIENT_ID, CLIENT_SECRET, AUDIENCE. The client must
// be registered for client_secret_basic with scope "read write" and AUDIENCE
// among its audiences.
//
// It prints "interop ok" and exits 0, or prints the error and exits 1.
// TestNodeInterop in cmd/issuer runs it.

import * as oauth from 'oauth4webapi';
import * as jose from 'jose';
import { env, check, run } from './lib.mjs';


async function main() {
  const issuer = new URL(env('ISSUER_URL'));
  const clientId = env('CLIENT_ID');
  const clientSecret = env('CLIENT_SECRET');
  const audience = env('AUDIENCE');

  // The test issuer listens on plain http on loopback; oauth4webapi refuses
  // that unless told.
  const insecure = { [oauth.allowInsecureRequests]: issuer.protocol === 'http:' };

  // RFC 8414 discovery; processDiscoveryResponse checks that the document's
  // issuer is the one asked for.
  const as = await oauth.processDiscoveryResponse(
    issuer,
    await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
  );
  check(typeof as.token_endpoint === 'string', 'metadata has no token_endpoint');
  check(typeof as.jwks_uri === 'string', 'metadata has no jwks_uri');

  const client = { client_id: clientId };
  const auth = oauth.ClientSecretBasic(clientSecret);
  const jwks = jose.createRemoteJWKSet(new URL(as.jwks_uri));

  async function verifyAccess(token, wantScope) {
    const { payload, protectedHeader } = await jose.jwtVerify(token, jwks, {
      issuer: as.issuer,
      audience,
      typ: 'at+jwt',
      algorithms: ['ES256'],
      requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat', 'jti', 'client_id'],
    });
    check(typeof protectedHeader.kid === 'string' && protectedHeader.kid !== '', 'access token has no kid');
    check(payload.sub === clientId, `sub = ${JSON.stringify(payload.sub)}, want ${JSON.stringify(clientId)}`);
    check(payload.client_id === clientId, `client_id = ${JSON.stringify(payload.client_id)}, want ${JSON.stringify(clientId)}`);
    check(payload.scope === wantScope, `scope = ${JSON.stringify(payload.scope)}, want ${JSON.stringify(wantScope)}`);
    return payload;
  }

  // Client-credentials grant (RFC 6749 §4.4) with an RFC 8707 resource.
  const cc = await oauth.processClientCredentialsResponse(
    as,
    client,
    await oauth.clientCredentialsGrantRequest(
      as,
      client,
      auth,
      new URLSearchParams({ scope: 'read write', resource: audience }),
      insecure,
    ),
  );
  check(cc.token_type === 'bearer', `token_type = ${JSON.stringify(cc.token_type)}, want Bearer`);
  check(typeof cc.expires_in === 'number' && cc.expires_in > 0, `expires_in = ${JSON.stringify(cc.expires_in)}`);
  check(cc.scope === 'read write', `response scope = ${JSON.stringify(cc.scope)}, want "read write"`);
  check(typeof cc.refresh_token === 'string' && cc.refresh_token !== '', 'no refresh_token in the response');
  const first = await verifyAccess(cc.access_token, 'read write');

  // No resource API may accept the refresh token as an access token.
  let accepted = false;
  try {
    await jose.jwtVerify(cc.refresh_token, jwks, {
      issuer: as.issuer,
      audience,
      typ: 'at+jwt',
      algorithms: ['ES256'],
    });
    accepted = true;
  } catch {
    // expected
  }
  check(!accepted, 'jwtVerify accepted the refresh token as an access token');

  // Refresh-token grant (RFC 6749 §6), narrowing the scope.
  const rt = await oauth.processRefreshTokenResponse(
    as,
    client,
    await oauth.refreshTokenGrantRequest(as, client, auth, cc.refresh_token, {
      additionalParameters: { scope: 'read' },
      ...insecure,
    }),
  );
  check(typeof rt.refresh_token === 'string' && rt.refresh_token !== '', 'no refresh_token in the refresh response');
  check(rt.refresh_token !== cc.refresh_token, 'the refresh token was not rotated');
  check(rt.scope === 'read', `refresh response scope = ${JSON.stringify(rt.scope)}, want "read"`);
  const second = await verifyAccess(rt.access_token, 'read');
  check(second.jti !== first.jti, 'the refreshed access token reuses the jti of the first');

  console.log('interop ok');
}

run('interop', main);
