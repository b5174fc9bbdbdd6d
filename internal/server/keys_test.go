package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/issuer-oauth/issuer/internal/adminapi"
	"github.com/issuer-oauth/issuer/internal/config"
	"github.com/issuer-oauth/issuer/internal/redistest"
	"github.com/issuer-oauth/issuer/internal/secret"
	"github.com/issuer-oauth/issuer/internal/testutil"
	"github.com/issuer-oauth/issuer/verify"
)

// apiError returns err as an error answer of the admin API, failing the
// test when it is not one with this status and code.
func apiError(t *testing.T, err error, status int, code string) *adminapi.Error {
	t.Helper()
	var e *adminapi.Error
	if !errors.As(err, &e) || e.Status != status || e.Code != code {
		t.Errorf("err = %v, want the admin API's %d %s", err, status, code)
		return &adminapi.Error{}
	}
	return e
}

// jwksRaw fetches the JWK Set document and its response headers.
func (ti *testIssuer) jwksRaw(t *testing.T) ([]byte, http.Header) {
	t.Helper()
	resp, err := http.Get(ti.metadata(t)["jwks_uri"].(string))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("JWKS: %d %v", resp.StatusCode, err)
	}
	return body, resp.Header
}

// keyList lists the keys through the admin API.
func (ti *testIssuer) keyList(t *testing.T) []adminapi.Key {
	t.Helper()
	keys, err := ti.api().ListKeys(t.Context())
	if err != nil {
		t.Fatalf("list keys: %v", err)
	}
	return keys
}

func kidOf(t *testing.T, token string) string {
	t.Helper()
	h, _ := decodeJWT(t, token)
	kid, _ := h["kid"].(string)
	return kid
}

// TestKeyScheduleEndToEnd runs scheduled rotation on a real issuer over
// three rotation periods, a minute at a time, with the clock injected: each
// minute the key maintenance runs (as the Watch ticker does), a client gets
// a token from the token endpoint, and a resource API fetches the JWK Set
// from jwks_uri. Every unexpired token must verify, with the public verify
// package, against every JWK Set fetched within the last max-age (the
// Cache-Control the issuer served), using only that set's keys.
func TestKeyScheduleEndToEnd(t *testing.T) {
	for _, alg := range []string{"ES256", "EdDSA", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			ti := startIssuer(t, func(c *config.Config) {
				c.SigningAlg = alg
				c.KeyRotationPeriod = 2 * time.Hour
				c.JWKSMaxAge = 5 * time.Minute
				c.AccessTokenTTL = 5 * time.Minute
			})
			testSchedule(t, ti)
		})
	}
}

func testSchedule(t *testing.T, ti *testIssuer) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	// No refresh tokens: nothing is written to the store per token.
	id, sec := ti.createClient(t, map[string]any{"scope": "read", "grant_types": []string{"client_credentials"}})
	type cached struct {
		at   time.Time
		body string
		v    *verify.Verifier
	}
	type issued struct {
		token string
		exp   time.Time
	}
	var (
		caches    []cached
		tokens    []issued
		signers   []string
		published = map[string]time.Time{}
		start     = ti.clock.Now()
		period    = ti.cfg.KeyRotationPeriod
		verified  = map[verifiedKey]bool{}
	)
	for ti.clock.Now().Before(start.Add(3*period + 20*time.Minute)) {
		if err := ti.app.keys.Maintain(ctx, log); err != nil {
			t.Fatal(err)
		}
		now := ti.clock.Now()
		body, hdr := ti.jwksRaw(t)
		if got, want := hdr.Get("Cache-Control"), "public, max-age=300, s-maxage=150"; got != want {
			t.Fatalf("JWKS Cache-Control = %q, want %q (jwks_max_age)", got, want)
		}
		keys, err := verify.ParseJWKS(body)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if _, ok := published[k.ID()]; !ok {
				published[k.ID()] = now
			}
		}
		v, err := verify.New(ti.URL, e2eAudience, verify.WithKeys(keys...), verify.WithClock(ti.clock.Now), verify.WithLeeway(0))
		if err != nil {
			t.Fatal(err)
		}
		caches = append(caches, cached{now, string(body), v})

		tok := ti.issue(t, id, sec)["access_token"].(string)
		tokens = append(tokens, issued{tok, now.Add(ti.cfg.AccessTokenTTL)})
		if kid := kidOf(t, tok); len(signers) == 0 || signers[len(signers)-1] != kid {
			signers = append(signers, kid)
			if len(signers) > 1 && now.Sub(published[kid]) < ti.cfg.JWKSMaxAge {
				t.Errorf("%v: key %s signs %v after it was published, want at least the max-age", now, kid, now.Sub(published[kid]))
			}
		}

		for i, tk := range tokens {
			if !now.Before(tk.exp) {
				continue
			}
			for _, c := range caches {
				if now.Sub(c.at) >= ti.cfg.JWKSMaxAge {
					continue
				}
				// Once per token and distinct JWK Set.
				if verified[verifiedKey{i, c.body}] {
					continue
				}
				verified[verifiedKey{i, c.body}] = true
				if _, err := c.v.Verify(ctx, tk.token); err != nil {
					t.Fatalf("%v: a token (kid %s, exp %v) fails against the JWK Set cached at %v: %v", now, kidOf(t, tk.token), tk.exp, c.at, err)
				}
			}
		}
		ti.clock.Advance(time.Minute)
	}
	if len(signers) != 4 {
		t.Errorf("signing keys over three periods: %v, want 4", signers)
	}
	// The keys of the first rotations are gone again.
	body, _ := ti.jwksRaw(t)
	for _, kid := range signers[:2] {
		if bytes.Contains(body, []byte(kid)) {
			t.Errorf("retired key %s still published long after its tokens expired", kid)
		}
	}
}

// TestKeysAdminAndCLI manages keys through the admin API and the CLI of a
// real issuer: scheduling, emergency rotation and revocation, and what
// introspection says of the tokens of a revoked key.
func TestKeysAdminAndCLI(t *testing.T) {
	ti := startIssuer(t)
	id, sec := ti.createClient(t, map[string]any{})
	first := ti.keyList(t)
	if len(first) != 1 || first[0].State != "current" || first[0].RetiresAt.IsZero() {
		t.Fatalf("keys = %+v, want one current key with its scheduled retires_at", first)
	}
	oldTok := ti.issue(t, id, sec)["access_token"].(string)

	// A key scheduled by hand.
	soon := ti.clock.Now().Add(time.Minute).Format(time.RFC3339)
	if resp, m := ti.admin(t, "POST", "/admin/keys/rotate", map[string]any{"not_before": soon}); resp.StatusCode != 400 {
		t.Errorf("rotate with not_before in a minute: %d %v, want 400", resp.StatusCode, m)
	}
	later := ti.clock.Now().Add(time.Hour).UTC().Truncate(time.Second)
	resp, next := ti.admin(t, "POST", "/admin/keys/rotate", map[string]any{"not_before": later})
	if resp.StatusCode != 201 || next["state"] != "next" || next["not_before"] != later.Format(time.RFC3339) {
		t.Fatalf("rotate with not_before: %d %v", resp.StatusCode, next)
	}
	if resp, m := ti.admin(t, "POST", "/admin/keys/rotate", map[string]any{"not_before": later.Add(time.Hour)}); resp.StatusCode != 409 || m["error"] != "next_key_pending" {
		t.Errorf("second scheduled key: %d %v, want 409 next_key_pending", resp.StatusCode, m)
	}
	if body, _ := ti.jwksRaw(t); !bytes.Contains(body, []byte(next["kid"].(string))) {
		t.Errorf("the next key is not published")
	}
	_, err := ti.api().KeySecret(t.Context(), first[0].KID)
	apiError(t, err, 409, "not_symmetric")
	if keys := ti.keyList(t); len(keys) != 2 || keys[1].State != "next" {
		t.Errorf("keys = %+v, want the current key and the next one", keys)
	}
	if rk, err := ti.api().RevokeKey(t.Context(), next["kid"].(string)); err != nil || rk.Current.KID != first[0].KID {
		t.Errorf("revoke the next key = %+v, %v; want %s current", rk, err, first[0].KID)
	}

	// Emergency rotation: the new key signs at once, old tokens still verify.
	ti.clock.Advance(time.Second)
	if _, err := ti.api().RotateKey(t.Context(), adminapi.RotateKeyRequest{}); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	keys := ti.keyList(t)
	if len(keys) != 2 || keys[0].State != "retired" || keys[1].State != "current" || keys[0].RemovedAt.IsZero() {
		t.Fatalf("keys after rotate = %+v, want the old key retired (with removed_at) and a new current one", keys)
	}
	newTok := ti.issue(t, id, sec)["access_token"].(string)
	if kidOf(t, newTok) != keys[1].KID {
		t.Errorf("new tokens are signed by %s, want %s", kidOf(t, newTok), keys[1].KID)
	}
	ti.verifyAccess(t, oldTok, e2eAudience)
	ti.verifyAccess(t, newTok, e2eAudience)

	// Compromise of the old key: revoked at once.
	if rk, err := ti.api().RevokeKey(t.Context(), keys[0].KID); err != nil || rk.Revoked.KID != keys[0].KID {
		t.Fatalf("revoke: %+v, %v", rk, err)
	}
	if got := ti.introspect(t, id, sec, oldTok); got["active"] != false {
		t.Errorf("introspection of a token of the revoked key = %v, want inactive", got)
	}
	if _, err := ti.checkAccess(t, oldTok, e2eAudience); err == nil {
		t.Errorf("a token of the revoked key still verifies against the JWKS")
	}
	if got := ti.introspect(t, id, sec, newTok); got["active"] != true {
		t.Errorf("introspection of a token of the current key = %v, want active", got)
	}

	// Compromise of the current key: a new key signs at once.
	resp, m := ti.admin(t, "DELETE", "/admin/keys/"+keys[1].KID, nil)
	cur, _ := m["current"].(map[string]any)
	if resp.StatusCode != 200 || cur["kid"] == keys[1].KID || cur["state"] != "current" {
		t.Fatalf("DELETE current key: %d %v", resp.StatusCode, m)
	}
	if got := ti.introspect(t, id, sec, newTok); got["active"] != false {
		t.Errorf("introspection of a token of the revoked current key = %v, want inactive", got)
	}
	tok := ti.issue(t, id, sec)["access_token"].(string)
	if kidOf(t, tok) != cur["kid"] {
		t.Errorf("tokens after revoking the current key are signed by %s, want %v", kidOf(t, tok), cur["kid"])
	}
	ti.verifyAccess(t, tok, e2eAudience)
	if resp, m := ti.admin(t, "DELETE", "/admin/keys/no-such-kid", nil); resp.StatusCode != 404 {
		t.Errorf("DELETE unknown key: %d %v, want 404", resp.StatusCode, m)
	}
	if resp, m := ti.admin(t, "GET", "/admin/keys/no-such-kid/secret", nil); resp.StatusCode != 404 {
		t.Errorf("GET secret of unknown key: %d %v, want 404", resp.StatusCode, m)
	}
}

// TestHS256EndToEnd: an HS256 issuer publishes no key; a resource API gets
// the secret with `issuer keys secret` and verifies tokens with
// verify.NewHMACKey.
func TestHS256EndToEnd(t *testing.T) {
	ti := startIssuer(t, func(c *config.Config) { c.SigningAlg = "HS256" })
	ctx := context.Background()
	id, sec := ti.createClient(t, map[string]any{"scope": "read"})
	tok := e2eToken(t, ti, id, sec, "read").AccessToken
	if h, _ := decodeJWT(t, tok); h["alg"] != "HS256" || h["typ"] != "at+jwt" {
		t.Errorf("header = %v, want HS256 at+jwt", h)
	}

	body, _ := ti.jwksRaw(t)
	if string(body) != `{"keys":[]}` {
		t.Errorf("JWKS = %s, want no key", body)
	}
	if md := ti.metadata(t); md["access_token_shared_secret_required"] != true ||
		!slices.Equal(toStrings(md["access_token_signing_alg_values_supported"]), []string{"HS256"}) {
		t.Errorf("metadata does not say verification needs the shared secret: %v", md)
	}
	if v, err := verify.New(ti.URL, e2eAudience); err != nil {
		t.Fatal(err)
	} else if _, err := v.Verify(ctx, tok); !errors.Is(err, verify.ErrAlgorithm) {
		t.Errorf("Verify with discovered keys = %v, want ErrAlgorithm (no public key to discover; HS256 only with WithKeys)", err)
	}

	kid := ti.keyList(t)[0].KID
	jwk, err := ti.api().KeySecret(ctx, kid)
	if err != nil || jwk.Kty != "oct" || jwk.Alg != "HS256" || jwk.Kid != kid {
		t.Fatalf("key secret: %+v, %v", jwk, err)
	}
	secret, err := base64.RawURLEncoding.DecodeString(jwk.K)
	if err != nil || len(secret) != 32 {
		t.Fatalf("k = %q: %v", jwk.K, err)
	}
	if strings.Contains(ti.logs.String(), jwk.K) {
		t.Errorf("the secret is in the log")
	}
	key, err := verify.NewHMACKey(jwk.Kid, secret)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(ti.URL, e2eAudience, verify.WithKeys(key), verify.WithClock(ti.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(ctx, tok)
	if err != nil || c.ClientID != id || !c.HasScope("read") {
		t.Fatalf("Verify = %+v, %v", c, err)
	}
	if got := ti.introspect(t, id, sec, tok); got["active"] != true {
		t.Errorf("introspection = %v, want active", got)
	}

	// A token signed with any other secret is refused by both.
	_, claims := decodeJWT(t, tok)
	forged := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(claims))
	forged.Header["kid"], forged.Header["typ"] = kid, "at+jwt"
	raw, _ := forged.SignedString(bytes.Repeat([]byte("x"), 32))
	if _, err := v.Verify(ctx, raw); !errors.Is(err, verify.ErrSignature) {
		t.Errorf("Verify(forged) = %v, want ErrSignature", err)
	}
	if got := ti.introspect(t, id, sec, raw); got["active"] != false {
		t.Errorf("introspection of a forged token = %v, want inactive", got)
	}
}

// TestJWKSMaxAge: the JWKS Cache-Control max-age is jwks_max_age.
func TestJWKSMaxAge(t *testing.T) {
	ti := startIssuer(t, func(c *config.Config) { c.JWKSMaxAge = 7 * time.Minute })
	if _, hdr := ti.jwksRaw(t); hdr.Get("Cache-Control") != "public, max-age=420, s-maxage=210" {
		t.Errorf("Cache-Control = %q, want public, max-age=420, s-maxage=210", hdr.Get("Cache-Control"))
	}
}

// writeECKey writes a new P-256 key as a PKCS #8 PEM file and returns its
// RFC 7638 thumbprint.
func writeECKey(t *testing.T, path string, mtime time.Time) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	raw, _ := k.PublicKey.Bytes()
	tp := sha256.Sum256([]byte(`{"crv":"P-256","kty":"EC","x":"` + base64.RawURLEncoding.EncodeToString(raw[1:33]) +
		`","y":"` + base64.RawURLEncoding.EncodeToString(raw[33:]) + `"}`))
	return base64.RawURLEncoding.EncodeToString(tp[:])
}

// TestKeysDirEndToEnd runs an issuer on keys from PEM files: a file added
// and picked up by SIGHUP is published at once and signs after the publish
// lead; a broken file changes nothing; a removed file is gone; the key
// commands that would change keys answer 409.
func TestKeysDirEndToEnd(t *testing.T) {
	dir := t.TempDir()
	kidA := writeECKey(t, filepath.Join(dir, "a.pem"), time.Now().Add(-time.Hour))
	ti := startIssuer(t, func(c *config.Config) { c.KeysDir = dir })
	id, sec := ti.createClient(t, map[string]any{})
	tokA := ti.issue(t, id, sec)["access_token"].(string)
	if kidOf(t, tokA) != kidA {
		t.Fatalf("token kid = %s, want a.pem's %s", kidOf(t, tokA), kidA)
	}
	ti.verifyAccess(t, tokA, e2eAudience)

	if resp, m := ti.admin(t, "POST", "/admin/keys/rotate", nil); resp.StatusCode != 409 || m["error"] != "keys_in_files" {
		t.Errorf("rotate with keys_dir: %d %v, want 409 keys_in_files", resp.StatusCode, m)
	}
	_, err := ti.api().RevokeKey(t.Context(), kidA)
	if e := apiError(t, err, 409, "keys_in_files"); !strings.Contains(e.Description, "SIGHUP") {
		t.Errorf("revoke with keys_dir: %q, want it to say how to reload (SIGHUP)", e.Description)
	}

	// The operator adds b.pem and asks for a reload (cmd/issuer does on
	// SIGHUP).
	kidB := writeECKey(t, filepath.Join(dir, "b.pem"), time.Now())
	ti.reload <- struct{}{}
	deadline := time.Now().Add(5 * time.Second)
	for body, _ := ti.jwksRaw(t); !bytes.Contains(body, []byte(kidB)); body, _ = ti.jwksRaw(t) {
		if time.Now().After(deadline) {
			t.Fatalf("b.pem not published 5s after SIGHUP: %s", body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	keys := ti.keyList(t)
	if len(keys) != 2 || keys[0].State != "current" || keys[1].State != "next" || keys[1].File != "b.pem" {
		t.Fatalf("keys = %+v, want a.pem current and b.pem next", keys)
	}
	if tok := ti.issue(t, id, sec)["access_token"].(string); kidOf(t, tok) != kidA {
		t.Errorf("right after publication, tokens are signed by %s, want a.pem's key", kidOf(t, tok))
	}
	ti.clock.Advance(2*ti.cfg.JWKSMaxAge - time.Second)
	tokA = ti.issue(t, id, sec)["access_token"].(string)
	if kidOf(t, tokA) != kidA {
		t.Errorf("a second before the lead, tokens are signed by %s, want a.pem's key", kidOf(t, tokA))
	}
	ti.clock.Advance(time.Second)
	tokB := ti.issue(t, id, sec)["access_token"].(string)
	if kidOf(t, tokB) != kidB {
		t.Errorf("after the lead, tokens are signed by %s, want b.pem's %s", kidOf(t, tokB), kidB)
	}
	ti.verifyAccess(t, tokA, e2eAudience)
	ti.verifyAccess(t, tokB, e2eAudience)

	// A broken file: the reload fails, names it, and changes nothing.
	if err := os.WriteFile(filepath.Join(dir, "c.pem"), []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	before, _ := ti.jwksRaw(t)
	if err := ti.app.keys.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), "c.pem") {
		t.Errorf("Reload with a broken file = %v, want an error naming c.pem", err)
	}
	if after, _ := ti.jwksRaw(t); !bytes.Equal(before, after) {
		t.Errorf("JWKS changed after a failed reload")
	}
	os.Remove(filepath.Join(dir, "c.pem"))

	// The operator removes a.pem once its tokens have expired.
	os.Remove(filepath.Join(dir, "a.pem"))
	if err := ti.app.keys.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if body, _ := ti.jwksRaw(t); bytes.Contains(body, []byte(kidA)) || !bytes.Contains(body, []byte(kidB)) {
		t.Errorf("JWKS after removing a.pem = %s", body)
	}
	if got := ti.introspect(t, id, sec, tokA); got["active"] != false {
		t.Errorf("introspection of a token of the removed file's key = %v, want inactive", got)
	}
}

func TestKeysDirMissing(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.KeysDir = filepath.Join(t.TempDir(), "nope")
	_, err := New(context.Background(), cfg, Options{Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "ISSUER_KEYS_DIR (keys_dir)") {
		t.Errorf("New with a missing keys_dir = %v, want an error naming ISSUER_KEYS_DIR", err)
	}
}

// TestWrongSecret: an issuer restarted on its data with another secret stops
// with a line naming ISSUER_SECRET.
func TestWrongSecret(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Secret = strings.Repeat("a1", 16)
	opts := Options{Logger: slog.New(slog.DiscardHandler)}
	a, err := New(context.Background(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	cfg.Secret = strings.Repeat("b2", 16)
	_, err = New(context.Background(), cfg, opts)
	if err == nil || !strings.HasPrefix(err.Error(), "ISSUER_SECRET (secret): ") {
		t.Errorf("New with another secret = %v, want an error naming ISSUER_SECRET", err)
	}
}

// verifiedKey is a token (its index) and the JWK Set it verified against.
type verifiedKey struct {
	token int
	set   string
}

// TestScheduledRotationOnRedis: two instances on one Redis both run the
// rotation schedule at the moment the next key is due, many times at once;
// exactly one next key is added, both publish it, and a key revoked on one
// instance stops at the other at once.
func TestScheduledRotationOnRedis(t *testing.T) {
	srv := redistest.Start(t)
	master := secret.Random(32)
	schedule := func(c *config.Config) { c.KeyRotationPeriod = 2 * time.Hour }
	a := startIssuer(t, onRedis(srv.URL(), master), schedule)
	b := startIssuer(t, onRedis(srv.URL(), master), schedule, sameURL(a.URL))
	id, sec := a.createClient(t, map[string]any{})
	for _, ti := range []*testIssuer{a, b} {
		ti.clock.Advance(2*time.Hour - 2*ti.cfg.JWKSMaxAge)
	}
	log := slog.New(slog.DiscardHandler)
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			ti := []*testIssuer{a, b}[i%2]
			if err := ti.app.keys.Maintain(context.Background(), log); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	keys := a.keyList(t)
	if len(keys) != 2 || keys[1].State != "next" {
		t.Fatalf("keys = %+v, want the current and one next key", keys)
	}
	testutil.Eventually(t, 2*time.Second, func() bool { return a.jwksBytes(t) == b.jwksBytes(t) })

	tok := b.issue(t, id, sec)["access_token"].(string)
	if resp, m := a.admin(t, "DELETE", "/admin/keys/"+kidOf(t, tok), nil); resp.StatusCode != 200 {
		t.Fatalf("revoke: %d %v", resp.StatusCode, m)
	}
	testutil.Eventually(t, 2*time.Second, func() bool {
		return b.introspect(t, id, sec, tok)["active"] == false
	})
	if got := kidOf(t, b.issue(t, id, sec)["access_token"].(string)); got == kidOf(t, tok) {
		t.Errorf("B still signs with the revoked key")
	}
}
