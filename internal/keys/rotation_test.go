package keys

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/issuer-oauth/issuer/internal/testutil"
)

var discard = slog.New(slog.DiscardHandler)

// scheduleConfig is a short rotation schedule: a key signs for two hours,
// the JWK Set may be cached five minutes, tokens live five minutes.
func scheduleConfig(alg string, c *testutil.Clock) Config {
	cfg := testConfig(alg, c)
	cfg.RotationPeriod = 2 * time.Hour
	cfg.JWKSMaxAge = 5 * time.Minute
	cfg.AccessTTL = 5 * time.Minute
	return cfg
}

// snapshot is a JWK Set as a resource API fetched and cached it.
type snapshot struct {
	at   time.Time
	body string
	set  jose.JSONWebKeySet
}

// verifiedKey is a token (its index) and the JWK Set it verified against.
type verifiedKey struct {
	token int
	set   string
}

// minted is an access token and what the schedule test knows of it.
type minted struct {
	raw string
	kid string
	exp time.Time
}

// verifySnapshot verifies raw the way an independent resource API holding
// the cached set would: go-jose, the key found by kid in the set only, the
// algorithm pinned to that key's alg.
func verifySnapshot(raw string, set jose.JSONWebKeySet) error {
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.RS256, jose.PS256})
	if err != nil {
		return err
	}
	kid := jws.Signatures[0].Header.KeyID
	found := set.Key(kid)
	if len(found) != 1 {
		return fmt.Errorf("kid %s is not in the cached JWK Set", kid)
	}
	if got := jws.Signatures[0].Header.Algorithm; got != found[0].Algorithm {
		return fmt.Errorf("alg %s, but the cached key is %s", got, found[0].Algorithm)
	}
	_, err = jws.Verify(found[0])
	return err
}

// TestRotationSchedule runs scheduled rotation over three rotation periods
// with an injected clock, on two instances sharing one store that both run
// the maintenance every minute and take turns minting tokens. At every
// minute, every unexpired token minted so far must verify against every JWK
// Set a resource API could hold at that instant: each snapshot taken within
// the last max-age. It also checks that a next key is published at least a
// max-age (in fact two) before it signs, that a retired key leaves the JWK
// Set soon after the last token it signed expired, and that the store never
// holds more than a retired, a current and a next key.
func TestRotationSchedule(t *testing.T) {
	for _, alg := range []string{"ES256", "EdDSA", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			runSchedule(t, alg)
		})
	}
}

func runSchedule(t *testing.T, alg string) {
	const step = time.Minute
	ctx := context.Background()
	c := testutil.NewClock(t0)
	st := &memStore{}
	cfg := scheduleConfig(alg, c)
	maxAge, ttl, period := cfg.JWKSMaxAge, cfg.AccessTTL, cfg.RotationPeriod
	instances := []*Keys{mustNew(t, st, cfg), mustNew(t, st, cfg)}

	var (
		snaps      []snapshot
		tokens     []minted
		published  = map[string]time.Time{} // first snapshot holding the kid
		removed    = map[string]time.Time{} // first snapshot without it again
		firstToken = map[string]time.Time{}
		lastExp    = map[string]time.Time{}
		signers    []string
		verified   = map[verifiedKey]bool{}
	)
	end := t0.Add(3*period + time.Hour)
	for i := 0; c.Now().Before(end); i++ {
		for _, k := range instances {
			if err := k.Maintain(ctx, discard); err != nil {
				t.Fatalf("%v: Maintain: %v", c.Now(), err)
			}
		}
		now := c.Now()

		// A resource API fetches the JWK Set from either instance.
		body, _, gotMaxAge := instances[i%2].JWKS()
		if gotMaxAge != maxAge {
			t.Fatalf("JWKS max-age = %v, want jwks_max_age %v", gotMaxAge, maxAge)
		}
		if other, _, _ := instances[(i+1)%2].JWKS(); !bytes.Equal(other, body) {
			t.Fatalf("%v: the instances publish different JWK Sets:\n%s\n%s", now, body, other)
		}
		set, _ := parseJWKS(t, body)
		snaps = append(snaps, snapshot{now, string(body), set})
		inSet := map[string]bool{}
		for _, j := range set.Keys {
			inSet[j.KeyID] = true
			if _, ok := published[j.KeyID]; !ok {
				published[j.KeyID] = now
			}
		}
		for kid := range published {
			if _, ok := removed[kid]; !ok && !inSet[kid] {
				removed[kid] = now
			}
		}

		// The other instance mints a token.
		claims := accessClaims(now)
		claims.ID = fmt.Sprintf("jti-%d", i)
		raw, err := instances[(i+1)%2].SignAccess(claims)
		if err != nil {
			t.Fatalf("SignAccess: %v", err)
		}
		kid := decodeSegment(t, raw, 0)["kid"].(string)
		tokens = append(tokens, minted{raw, kid, now.Add(ttl)})
		lastExp[kid] = now.Add(ttl)
		if _, ok := firstToken[kid]; !ok {
			firstToken[kid] = now
			signers = append(signers, kid)
			if len(signers) > 1 && now.Sub(published[kid]) < maxAge {
				t.Errorf("%v: key %s signs after being published only %v, want at least the max-age %v", now, kid, now.Sub(published[kid]), maxAge)
			}
		}

		// The invariant: every unexpired token verifies against every JWK
		// Set a resource API may still hold. (A token is verified once
		// per distinct set.)
		for ti, tok := range tokens {
			if !now.Before(tok.exp) {
				continue
			}
			for _, s := range snaps {
				if now.Sub(s.at) >= maxAge {
					continue
				}
				if verified[verifiedKey{ti, s.body}] {
					continue
				}
				verified[verifiedKey{ti, s.body}] = true
				if err := verifySnapshot(tok.raw, s.set); err != nil {
					t.Fatalf("%v: token signed by %s (exp %v) does not verify against the JWK Set cached at %v: %v",
						now, tok.kid, tok.exp, s.at, err)
				}
			}
		}
		if n := len(st.sortedLocked()); n > 3 {
			t.Fatalf("%v: the store holds %d keys, want at most 3 (retired, current, next)", now, n)
		}
		c.Advance(step)
	}

	if got, want := len(signers), 4; got != want {
		t.Fatalf("%d keys signed over three periods (%v), want %d", got, signers, want)
	}
	for _, kid := range signers[:len(signers)-1] {
		gone, ok := removed[kid]
		if !ok {
			t.Errorf("retired key %s was never removed from the JWK Set", kid)
			continue
		}
		if late := gone.Sub(lastExp[kid]); late > RetentionMargin+2*step {
			t.Errorf("retired key %s left the JWK Set %v after its last token expired, want within %v", kid, late, RetentionMargin+2*step)
		}
	}
	// Keys follow each other one period apart.
	for i := 1; i < len(signers); i++ {
		if got := firstToken[signers[i]].Sub(firstToken[signers[i-1]]); got != period {
			t.Errorf("key %d signed %v after key %d, want the rotation period %v", i, got, i-1, period)
		}
	}
}

// TestMaintainStates follows one rotation through List: the next key, its
// dates, and the retired key's removal.
func TestMaintainStates(t *testing.T) {
	ctx := context.Background()
	c := testutil.NewClock(t0)
	st := &memStore{}
	k := mustNew(t, st, scheduleConfig("ES256", c))
	first := k.List()[0]
	wantRetire := t0.Add(2 * time.Hour)
	if first.State != StateCurrent || !first.RetiresAt.Equal(wantRetire) || !first.RemovedAt.IsZero() {
		t.Errorf("List()[0] = %+v, want current, retires_at %v (as scheduled), no removed_at", first, wantRetire)
	}

	// Until the lead before the period's end, nothing happens.
	c.Set(t0.Add(2*time.Hour - k.PublishLead() - time.Second))
	if err := k.Maintain(ctx, discard); err != nil {
		t.Fatal(err)
	}
	if n := len(k.List()); n != 1 {
		t.Fatalf("%d keys a second before the lead, want 1", n)
	}

	c.Advance(time.Second)
	if err := k.Maintain(ctx, discard); err != nil {
		t.Fatal(err)
	}
	infos := k.List()
	if len(infos) != 2 {
		t.Fatalf("List() = %+v, want a current and a next key", infos)
	}
	next := infos[1]
	if next.State != StateNext || !next.NotBefore.Equal(wantRetire) {
		t.Errorf("next key = %+v, want state next, not_before %v", next, wantRetire)
	}
	if cur := infos[0]; cur.State != StateCurrent || !cur.RetiresAt.Equal(wantRetire) || !cur.RemovedAt.Equal(wantRetire.Add(5*time.Minute+RetentionMargin)) {
		t.Errorf("current key = %+v, want retires_at %v, removed_at %v", cur, wantRetire, wantRetire.Add(5*time.Minute+RetentionMargin))
	}
	if body, _, _ := k.JWKS(); !bytes.Contains(body, []byte(next.ID)) {
		t.Errorf("next key %s not in the JWK Set", next.ID)
	}
	tok, _ := k.SignAccess(accessClaims(c.Now()))
	if got := decodeSegment(t, tok, 0)["kid"]; got != first.ID {
		t.Errorf("before its NotBefore, tokens are signed by %v, want the current key %s", got, first.ID)
	}
	// Maintenance is idempotent.
	if err := k.Maintain(ctx, discard); err != nil {
		t.Fatal(err)
	}
	if n := len(k.List()); n != 2 {
		t.Errorf("%d keys after a second maintenance, want 2", n)
	}

	// At its NotBefore the next key signs, without a reload.
	c.Set(wantRetire)
	tok, _ = k.SignAccess(accessClaims(c.Now()))
	if got := decodeSegment(t, tok, 0)["kid"]; got != next.ID {
		t.Errorf("at NotBefore, tokens are signed by %v, want %s", got, next.ID)
	}
	if got := k.List()[0].State; got != StateRetired {
		t.Errorf("old key state = %s, want retired", got)
	}

	// The retired key is removed once its tokens have all expired.
	c.Set(wantRetire.Add(5*time.Minute + RetentionMargin - time.Millisecond))
	if err := k.Maintain(ctx, discard); err != nil {
		t.Fatal(err)
	}
	if n := len(k.List()); n != 2 {
		t.Fatalf("%d keys just before removal, want 2", n)
	}
	c.Advance(time.Millisecond)
	if err := k.Maintain(ctx, discard); err != nil {
		t.Fatal(err)
	}
	infos = k.List()
	if len(infos) != 1 || infos[0].ID != next.ID {
		t.Fatalf("List() = %+v, want only %s", infos, next.ID)
	}
	if body, _, _ := k.JWKS(); bytes.Contains(body, []byte(first.ID)) {
		t.Errorf("retired key %s still in the JWK Set", first.ID)
	}
	tok, _ = k.SignAccess(accessClaims(c.Now()))
	if _, err := k.ParseAccess(tok); err != nil {
		t.Errorf("ParseAccess(token of the new key) = %v", err)
	}
}

// TestMaintainLate: an issuer that did not run for longer than a period
// still publishes the next key a full lead before it signs.
func TestMaintainLate(t *testing.T) {
	c := testutil.NewClock(t0)
	k := mustNew(t, &memStore{}, scheduleConfig("EdDSA", c))
	c.Set(t0.Add(10 * time.Hour))
	if err := k.Maintain(context.Background(), discard); err != nil {
		t.Fatal(err)
	}
	infos := k.List()
	if len(infos) != 2 || infos[0].State != StateCurrent || !infos[1].NotBefore.Equal(c.Now().Add(k.PublishLead())) {
		t.Errorf("List() = %+v, want the old key current and a next key at now + the lead", infos)
	}
}

// TestMaintainOff: with a period of 0 no key is added, and retired keys are
// still removed once their tokens have expired.
func TestMaintainOff(t *testing.T) {
	ctx := context.Background()
	c := testutil.NewClock(t0)
	cfg := scheduleConfig("ES256", c)
	cfg.RotationPeriod = 0
	k := mustNew(t, &memStore{}, cfg)
	c.Advance(1000 * time.Hour)
	if err := k.Maintain(ctx, discard); err != nil {
		t.Fatal(err)
	}
	if infos := k.List(); len(infos) != 1 || !infos[0].RetiresAt.IsZero() {
		t.Fatalf("List() = %+v, want one key with no retires_at", infos)
	}
	old := k.List()[0].ID
	if _, err := k.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	c.Advance(cfg.AccessTTL + RetentionMargin)
	if err := k.Maintain(ctx, discard); err != nil {
		t.Fatal(err)
	}
	if infos := k.List(); len(infos) != 1 || infos[0].ID == old {
		t.Errorf("List() = %+v, want only the rotated key", infos)
	}
}

// TestMaintainConcurrent: ten instances due to add the next key at once add
// exactly one.
func TestMaintainConcurrent(t *testing.T) {
	c := testutil.NewClock(t0)
	st := &memStore{}
	cfg := scheduleConfig("ES256", c)
	var ks []*Keys
	for range 10 {
		ks = append(ks, mustNew(t, st, cfg))
	}
	c.Set(t0.Add(2 * time.Hour))
	var wg sync.WaitGroup
	for _, k := range ks {
		wg.Go(func() {
			if err := k.Maintain(context.Background(), discard); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := len(st.keys); n != 2 {
		t.Fatalf("store holds %d keys, want the current and one next", n)
	}
	for i, k := range ks {
		if infos := k.List(); len(infos) != 2 || infos[1].ID != st.sortedLocked()[1].ID {
			t.Errorf("instance %d: List() = %+v", i, infos)
		}
	}
}

// TestRotateKeepsNext: an emergency rotation signs at once; a pending next
// key stays next and takes over at its NotBefore.
func TestRotateKeepsNext(t *testing.T) {
	ctx := context.Background()
	c := testutil.NewClock(t0)
	k := mustNew(t, &memStore{}, scheduleConfig("ES256", c))
	c.Set(t0.Add(2*time.Hour - time.Minute))
	if err := k.Maintain(ctx, discard); err != nil {
		t.Fatal(err)
	}
	next := k.List()[1]
	emergency, err := k.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	states := func() []string {
		var s []string
		for _, in := range k.List() {
			s = append(s, in.State)
		}
		return s
	}
	if got, want := states(), []string{StateRetired, StateCurrent, StateNext}; !slices.Equal(got, want) {
		t.Errorf("states after emergency rotation = %v, want %v", got, want)
	}
	if in := k.List()[2]; in.ID != next.ID {
		t.Errorf("next key = %s, want %s", in.ID, next.ID)
	}
	tok, _ := k.SignAccess(accessClaims(c.Now()))
	if got := decodeSegment(t, tok, 0)["kid"]; got != emergency.ID {
		t.Errorf("signing kid = %v, want the emergency key %s", got, emergency.ID)
	}
	c.Set(next.NotBefore)
	tok, _ = k.SignAccess(accessClaims(c.Now()))
	if got := decodeSegment(t, tok, 0)["kid"]; got != next.ID {
		t.Errorf("signing kid at the next key's NotBefore = %v, want %s", got, next.ID)
	}
}

// TestRevoke removes keys at once: their tokens stop parsing, they leave
// the JWK Set, and revoking the current key puts a new one in its place.
func TestRevoke(t *testing.T) {
	ctx := context.Background()
	c := testutil.NewClock(t0)
	st := &memStore{}
	k := mustNew(t, st, scheduleConfig("ES256", c))
	other := mustNew(t, st, scheduleConfig("ES256", c)) // a second instance
	oldKid := k.List()[0].ID
	oldTok, _ := k.SignAccess(accessClaims(c.Now()))
	c.Advance(time.Second)
	rotated, err := k.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	newTok, _ := k.SignAccess(accessClaims(c.Now()))

	// A retired key.
	revoked, current, err := k.Revoke(ctx, oldKid)
	if err != nil {
		t.Fatalf("Revoke(retired): %v", err)
	}
	if revoked.ID != oldKid || revoked.State != StateRetired || current.ID != rotated.ID {
		t.Errorf("Revoke(retired) = %+v, %+v; want %s retired, %s current", revoked, current, oldKid, rotated.ID)
	}
	if _, err := k.ParseAccess(oldTok); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("ParseAccess(token of the revoked key) = %v, want ErrInvalidToken", err)
	}
	if body, _, _ := k.JWKS(); bytes.Contains(body, []byte(oldKid)) {
		t.Errorf("revoked key still in the JWK Set: %s", body)
	}
	if _, _, err := k.Revoke(ctx, oldKid); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Revoke(revoked again) = %v, want ErrUnknownKey", err)
	}
	// The other instance learns of it on reload.
	if err := other.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := other.ParseAccess(oldTok); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("other instance: ParseAccess(token of the revoked key) = %v, want ErrInvalidToken", err)
	}

	// The current key: a new key signs at once.
	revoked, current, err = k.Revoke(ctx, rotated.ID)
	if err != nil {
		t.Fatalf("Revoke(current): %v", err)
	}
	if revoked.State != StateCurrent || current.ID == rotated.ID || current.State != StateCurrent {
		t.Errorf("Revoke(current) = %+v, %+v; want a new current key", revoked, current)
	}
	if infos := k.List(); len(infos) != 1 || infos[0].ID != current.ID {
		t.Errorf("List() = %+v, want only %s", infos, current.ID)
	}
	if _, err := k.ParseAccess(newTok); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("ParseAccess(token of the revoked current key) = %v, want ErrInvalidToken", err)
	}
	tok, _ := k.SignAccess(accessClaims(c.Now()))
	if got := decodeSegment(t, tok, 0)["kid"]; got != current.ID {
		t.Errorf("signing kid = %v, want %s", got, current.ID)
	}

	// A next key.
	c.Set(t0.Add(2 * time.Hour))
	if err := k.Maintain(ctx, discard); err != nil {
		t.Fatal(err)
	}
	next := k.List()[1]
	if _, _, err := k.Revoke(ctx, next.ID); err != nil {
		t.Fatalf("Revoke(next): %v", err)
	}
	if infos := k.List(); len(infos) != 1 {
		t.Errorf("List() after revoking the next key = %+v", infos)
	}
	if _, _, err := k.Revoke(ctx, "no-such-kid"); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Revoke(unknown) = %v, want ErrUnknownKey", err)
	}
}

// TestHS256 covers HMAC-signed access tokens: a generated 32-byte secret,
// encrypted at rest, never in the JWK Set, handed out by Secret, and never
// confused with an asymmetric key.
func TestHS256(t *testing.T) {
	ctx := context.Background()
	c := testutil.NewClock(t0)
	st := &memStore{}
	// An ES256 issuer switches to HS256: the ES256 key stays published.
	es := mustNew(t, st, testConfig("ES256", c))
	esKid := es.List()[0].ID
	esTok, _ := es.SignAccess(accessClaims(c.Now()))
	c.Advance(time.Second)
	k := mustNew(t, st, testConfig("HS256", c))
	infos := k.List()
	if len(infos) != 2 || infos[1].Alg != "HS256" || infos[1].State != StateCurrent {
		t.Fatalf("List() = %+v, want a current HS256 key after the ES256 one", infos)
	}
	hsKid := infos[1].ID
	if k.Alg() != "HS256" {
		t.Errorf("Alg() = %s, want HS256", k.Alg())
	}

	body, _, _ := k.JWKS()
	set, raw := parseJWKS(t, body)
	if len(set.Keys) != 1 || set.Keys[0].KeyID != esKid {
		t.Errorf("JWKS = %s, want only the ES256 key", body)
	}
	for _, m := range raw {
		if m["kty"] == "oct" || m["k"] != nil {
			t.Errorf("JWKS holds a symmetric key: %v", m)
		}
	}

	sec, err := k.Secret(hsKid)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := base64.RawURLEncoding.DecodeString(sec.K)
	if sec.Kty != "oct" || sec.Alg != "HS256" || sec.Kid != hsKid || err != nil || len(secret) != 32 {
		t.Fatalf("Secret() = %+v (%v), want an oct HS256 JWK of 32 bytes", sec, err)
	}
	var jk jose.JSONWebKey
	if err := jk.UnmarshalJSON(mustJSONBytes(t, sec)); err != nil {
		t.Fatalf("go-jose does not read the secret as a JWK: %v", err)
	}
	// RFC 7638 §3.2: the required members of an oct key are k and kty.
	tp := sha256.Sum256([]byte(`{"k":"` + sec.K + `","kty":"oct"}`))
	if base64.RawURLEncoding.EncodeToString(tp[:]) != hsKid {
		t.Errorf("kid %s is not the RFC 7638 thumbprint of the oct JWK", hsKid)
	}
	if bytes.Contains([]byte(hsKid), secret) || bytes.Contains([]byte(hsKid), []byte(sec.K)) {
		t.Errorf("kid reveals the secret")
	}
	if _, err := k.Secret(esKid); !errors.Is(err, ErrNotSymmetric) {
		t.Errorf("Secret(ES256 key) = %v, want ErrNotSymmetric", err)
	}
	if _, err := k.Secret("nope"); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Secret(unknown) = %v, want ErrUnknownKey", err)
	}

	// The secret is encrypted at rest.
	for _, sk := range st.sortedLocked() {
		if sk.ID == hsKid && bytes.Contains(sk.Private, secret) {
			t.Errorf("stored HS256 key holds the secret in the clear")
		}
	}

	// A token verifies with the shared secret, and here.
	tok, err := k.SignAccess(accessClaims(c.Now()))
	if err != nil {
		t.Fatal(err)
	}
	hdr := decodeSegment(t, tok, 0)
	if hdr["alg"] != "HS256" || hdr["kid"] != hsKid || hdr["typ"] != TypeAccess {
		t.Errorf("header = %v", hdr)
	}
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.HS256})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jws.Verify(secret); err != nil {
		t.Errorf("go-jose: the token does not verify with the secret: %v", err)
	}
	if _, err := k.ParseAccess(tok); err != nil {
		t.Errorf("ParseAccess(HS256 token) = %v", err)
	}
	if _, err := k.ParseAccess(esTok); err != nil {
		t.Errorf("ParseAccess(token of the retired ES256 key) = %v", err)
	}

	// Confusion attacks.
	esPub := es.loaded().byKid[esKid].pub.(*ecdsa.PublicKey)
	der, _ := x509.MarshalPKIXPublicKey(esPub)
	point, _ := esPub.Bytes()
	claims := map[string]any{"iss": testIssuer, "sub": "c", "client_id": "c", "jti": "x", "aud": "https://api.example",
		"iat": c.Now().Unix(), "exp": c.Now().Add(time.Minute).Unix()}
	for name, tok := range map[string]string{
		"HS256 under the ES256 kid keyed with its DER public key":  signWith(t, jwt.SigningMethodHS256, der, map[string]any{"typ": TypeAccess, "kid": esKid}, claims),
		"HS256 under the ES256 kid keyed with its raw point":       signWith(t, jwt.SigningMethodHS256, point, map[string]any{"typ": TypeAccess, "kid": esKid}, claims),
		"HS256 under the ES256 kid keyed with the JWK Set":         signWith(t, jwt.SigningMethodHS256, body, map[string]any{"typ": TypeAccess, "kid": esKid}, claims),
		"HS256 under the HS256 kid keyed with the refresh key":     signWith(t, jwt.SigningMethodHS256, testRefreshKy, map[string]any{"typ": TypeAccess, "kid": hsKid}, claims),
		"HS256 under the HS256 kid keyed with the kid":             signWith(t, jwt.SigningMethodHS256, []byte(hsKid), map[string]any{"typ": TypeAccess, "kid": hsKid}, claims),
		"HS384 under the HS256 kid keyed with the secret":          signWith(t, jwt.SigningMethodHS384, secret, map[string]any{"typ": TypeAccess, "kid": hsKid}, claims),
		"refresh token (typ rt+jwt) signed with the access secret": signWith(t, jwt.SigningMethodHS256, secret, map[string]any{"typ": TypeRefresh, "kid": hsKid}, claims),
	} {
		if _, err := k.ParseAccess(tok); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s: ParseAccess = %v, want ErrInvalidToken", name, err)
		}
	}
	// An access token is no refresh token.
	if _, err := k.ParseRefresh(tok); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("ParseRefresh(HS256 access token) = %v, want ErrInvalidToken", err)
	}

	// HS256 keys are not rotated on schedule.
	cfg := scheduleConfig("HS256", c)
	hs := mustNew(t, &memStore{}, cfg)
	c.Advance(100 * time.Hour)
	if err := hs.Maintain(ctx, discard); err != nil {
		t.Fatal(err)
	}
	if n := len(hs.List()); n != 1 {
		t.Errorf("%d HS256 keys after 100h of scheduled rotation, want 1 (not rotated on schedule)", n)
	}
}

// TestSchedule adds a next key by hand, the routine rotation for HS256.
func TestSchedule(t *testing.T) {
	ctx := context.Background()
	c := testutil.NewClock(t0)
	cfg := testConfig("HS256", c)
	k := mustNew(t, &memStore{}, cfg)
	if _, err := k.Schedule(ctx, c.Now().Add(k.PublishLead()-time.Second)); !errors.Is(err, ErrTooSoon) {
		t.Errorf("Schedule(within the lead) = %v, want ErrTooSoon", err)
	}
	at := c.Now().Add(24 * time.Hour)
	in, err := k.Schedule(ctx, at)
	if err != nil {
		t.Fatal(err)
	}
	if in.State != StateNext || !in.NotBefore.Equal(at) || in.Alg != "HS256" {
		t.Errorf("Schedule() = %+v, want a next HS256 key at %v", in, at)
	}
	if _, err := k.Secret(in.ID); err != nil {
		t.Errorf("Secret(next key) = %v: resource APIs need it before it signs", err)
	}
	if _, err := k.Schedule(ctx, at.Add(time.Hour)); !errors.Is(err, ErrNextPending) {
		t.Errorf("Schedule(second) = %v, want ErrNextPending", err)
	}
	c.Set(at)
	if k.current().kid != in.ID {
		t.Errorf("at its NotBefore the scheduled key does not sign")
	}
}

func TestRSAKeyBits(t *testing.T) {
	c := testutil.NewClock(t0)
	cfg := testConfig("PS256", c)
	cfg.RSAKeyBits = 3072
	k := mustNew(t, &memStore{}, cfg)
	if got := k.current().pub.(*rsa.PublicKey).N.BitLen(); got != 3072 {
		t.Errorf("RSA key of %d bits, want 3072", got)
	}
	cfg.RSAKeyBits = 1024
	if _, err := New(context.Background(), &memStore{}, cfg); !errors.Is(err, ErrRSAKeyBits) {
		t.Errorf("New with 1024-bit RSA keys = %v, want ErrRSAKeyBits", err)
	}
}

func mustJSONBytes(t testing.TB, v any) []byte {
	t.Helper()
	return []byte(mustJSON(t, v))
}

// TestAlgChangeDropsNextKey: when the algorithm changes, a next key of the
// old one (which has signed nothing) is removed, so that it cannot take
// over later.
func TestAlgChangeDropsNextKey(t *testing.T) {
	ctx := context.Background()
	c := testutil.NewClock(t0)
	st := &memStore{}
	old := mustNew(t, st, scheduleConfig("ES256", c))
	c.Set(t0.Add(2 * time.Hour))
	if err := old.Maintain(ctx, discard); err != nil {
		t.Fatal(err)
	}
	k := mustNew(t, st, scheduleConfig("EdDSA", c))
	var algs []string
	for _, in := range k.List() {
		algs = append(algs, in.Alg+" "+in.State)
	}
	if want := []string{"ES256 retired", "EdDSA current"}; !slices.Equal(algs, want) {
		t.Errorf("keys = %v, want %v", algs, want)
	}
}
