package server

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/issuer-oauth/issuer/internal/config"
	"github.com/issuer-oauth/issuer/internal/redistest"
	"github.com/issuer-oauth/issuer/internal/secret"
	"github.com/issuer-oauth/issuer/verify"
)

func withStatusList(c *config.Config) { c.StatusList = true }

// tokenStatus is the status claim of an access token.
type tokenStatus struct {
	StatusList struct {
		Idx *int64 `json:"idx"`
		URI string `json:"uri"`
	} `json:"status_list"`
}

// statusOf reads the status claim of an access token (verified first).
func (ti *testIssuer) statusOf(t *testing.T, raw string) (uri string, idx int64) {
	t.Helper()
	ti.verifyAccess(t, raw, "https://api.example.com")
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[1])
	var c struct {
		Status *tokenStatus `json:"status"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	if c.Status == nil || c.Status.StatusList.Idx == nil || c.Status.StatusList.URI == "" {
		t.Fatalf("access token claims %s: no status.status_list {idx, uri}", payload)
	}
	return c.Status.StatusList.URI, *c.Status.StatusList.Idx
}

// listClaims are the claims of a status list JWT.
type listClaims struct {
	josejwt.Claims
	TTL        *int64 `json:"ttl"`
	StatusList struct {
		Bits int    `json:"bits"`
		Lst  string `json:"lst"`
	} `json:"status_list"`
}

// fetchedList is a status list fetched and checked the way an independent
// resource API would: go-jose with the served JWKS, typ statuslist+jwt,
// sub the URI, ZLIB-inflated bits.
type fetchedList struct {
	resp   *http.Response
	claims listClaims
	bits   []byte
}

func (l fetchedList) status(idx int64) int {
	if int(idx/8) >= len(l.bits) {
		return -1
	}
	return int(l.bits[idx/8]>>(idx%8)) & 1
}

// fetchList GETs the list at uri from the instance ti (whatever host the
// URI names) and checks it.
func (ti *testIssuer) fetchList(t *testing.T, uri string) fetchedList {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(ti.base + u.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u.Path, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/statuslist+jwt" {
		t.Errorf("Content-Type %q, want application/statuslist+jwt", ct)
	}
	tok, err := josejwt.ParseSigned(string(body), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("list is not a JWS: %v", err)
	}
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "statuslist+jwt" {
		t.Errorf("list typ %q, want statuslist+jwt", typ)
	}
	set := ti.jwks(t)
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		t.Fatalf("list kid %q: %d keys in the JWKS", h.KeyID, len(keys))
	}
	var c listClaims
	if err := tok.Claims(keys[0].Key, &c); err != nil {
		t.Fatalf("list signature: %v", err)
	}
	if c.Subject != uri || c.IssuedAt == nil || c.Expiry == nil || c.TTL == nil || c.StatusList.Bits != 1 {
		t.Errorf("list claims sub %q iat %v exp %v ttl %v bits %d, want sub %q and all set, bits 1",
			c.Subject, c.IssuedAt, c.Expiry, c.TTL, c.StatusList.Bits, uri)
	}
	z, err := base64.RawURLEncoding.DecodeString(c.StatusList.Lst)
	if err != nil {
		t.Fatalf("lst is not base64url: %v", err)
	}
	zr, err := zlib.NewReader(bytes.NewReader(z))
	if err != nil {
		t.Fatalf("lst is not ZLIB: %v", err)
	}
	bits, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("lst does not inflate: %v", err)
	}
	return fetchedList{resp: resp, claims: c, bits: bits}
}

// ccToken gets an access (and refresh) token of the client.
func (ti *testIssuer) ccToken(t *testing.T, id, sec string) (access, refresh string) {
	t.Helper()
	resp, m := ti.token(t, id, sec, true, url.Values{"grant_type": {"client_credentials"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token: %d %v", resp.StatusCode, m)
	}
	r, _ := m["refresh_token"].(string)
	return m["access_token"].(string), r
}

// revoked revokes a token (RFC 7009) and fails the test unless it is 200.
func (ti *testIssuer) revoked(t *testing.T, id, sec, token string) {
	t.Helper()
	if code, m := ti.revoke(t, id, sec, token); code != http.StatusOK {
		t.Fatalf("revoke: %d %v", code, m)
	}
}

// TestStatusListOff: by default tokens carry no status and nothing is
// served.
func TestStatusListOff(t *testing.T) {
	ti := startIssuer(t)
	if _, ok := ti.metadata(t)["status_list_aggregation_endpoint"]; ok {
		t.Error("status_list_aggregation_endpoint advertised with status_list off")
	}
	id, sec := ti.createClient(t, map[string]any{})
	access, _ := ti.ccToken(t, id, sec)
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(access, ".")[1])
	if strings.Contains(string(payload), `"status"`) {
		t.Errorf("token has a status claim with status_list off: %s", payload)
	}
	if resp, err := http.Get(ti.base + "/statuslists"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /statuslists with status_list off: %v %v, want 404", resp.StatusCode, err)
	}
}

// TestStatusList: every revocation event of the SPEC sets the bit of the
// tokens it ends, and only theirs; the list is served as the draft says.
func TestStatusList(t *testing.T) {
	ti := startIssuer(t, withStatusList, withPasswordGrant)
	agg, _ := ti.metadata(t)["status_list_aggregation_endpoint"].(string)
	if agg != ti.URL+"/statuslists" {
		t.Fatalf("status_list_aggregation_endpoint = %q, want %q", agg, ti.URL+"/statuslists")
	}
	id, sec := ti.createClient(t, map[string]any{})
	other, otherSec := ti.createClient(t, map[string]any{})
	bystander, _ := ti.ccToken(t, other, otherSec)

	// settle lets the served list catch up: it reads the store at most
	// once a second, well within the ttl.
	settle := func() { ti.clock.Advance(time.Second) }
	check := func(t *testing.T, what string, tokens []string, want int) {
		t.Helper()
		for _, tok := range tokens {
			uri, idx := ti.statusOf(t, tok)
			if got := ti.fetchList(t, uri).status(idx); got != want {
				t.Errorf("%s: status of index %d = %d, want %d", what, idx, got, want)
			}
		}
	}

	t.Run("served list", func(t *testing.T) {
		access, _ := ti.ccToken(t, id, sec)
		uri, idx := ti.statusOf(t, access)
		if !strings.HasPrefix(uri, ti.URL+"/statuslists/") {
			t.Errorf("status uri %q is not under %s/statuslists/", uri, ti.URL)
		}
		l := ti.fetchList(t, uri)
		if l.status(idx) != 0 {
			t.Errorf("fresh token's status = %d, want 0", l.status(idx))
		}
		if cc := l.resp.Header.Get("Cache-Control"); cc != "public, max-age=30" {
			t.Errorf("Cache-Control %q, want public, max-age=30 (the ttl)", cc)
		}
		if *l.claims.TTL != 30 {
			t.Errorf("ttl %d, want 30", *l.claims.TTL)
		}
		tag := l.resp.Header.Get("ETag")
		req, _ := http.NewRequest("GET", uri, nil)
		req.Header.Set("If-None-Match", tag)
		if resp, _ := ti.do(t, req); tag == "" || resp.StatusCode != http.StatusNotModified {
			t.Errorf("conditional GET with ETag %q: %d, want 304", tag, resp.StatusCode)
		}
		settle()
		if again := ti.fetchList(t, uri); again.resp.Header.Get("ETag") != tag {
			t.Errorf("unchanged list: ETag %q → %q, want the same (not re-signed)", tag, again.resp.Header.Get("ETag"))
		}
		var got struct {
			StatusLists []string `json:"status_lists"`
		}
		resp, err := http.Get(agg)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || len(got.StatusLists) != 1 || got.StatusLists[0] != uri {
			t.Errorf("aggregation = %v (%v), want [%s]", got.StatusLists, err, uri)
		}
	})

	t.Run("access token revoked", func(t *testing.T) {
		access, _ := ti.ccToken(t, id, sec)
		keep, _ := ti.ccToken(t, id, sec)
		uri, _ := ti.statusOf(t, access)
		tag := ti.fetchList(t, uri).resp.Header.Get("ETag")
		ti.revoked(t, id, sec, access)
		settle()
		check(t, "revoked", []string{access}, 1)
		check(t, "same client, not revoked", []string{keep, bystander}, 0)
		if now := ti.fetchList(t, uri).resp.Header.Get("ETag"); now == tag {
			t.Errorf("ETag %q unchanged after a bit changed", tag)
		}
	})

	t.Run("family revoked", func(t *testing.T) {
		first, refresh := ti.ccToken(t, id, sec)
		resp, m := ti.token(t, id, sec, true, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("refresh: %d %v", resp.StatusCode, m)
		}
		second := m["access_token"].(string)
		ti.revoked(t, id, sec, m["refresh_token"].(string))
		settle()
		check(t, "family's access tokens", []string{first, second}, 1)
		check(t, "another client's", []string{bystander}, 0)
	})

	t.Run("reuse detected", func(t *testing.T) {
		first, refresh := ti.ccToken(t, id, sec)
		resp, m := ti.token(t, id, sec, true, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("refresh: %d %v", resp.StatusCode, m)
		}
		second := m["access_token"].(string)
		if resp, _ := ti.token(t, id, sec, true, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("reuse: %d, want 400", resp.StatusCode)
		}
		settle()
		check(t, "reused family's access tokens", []string{first, second}, 1)
	})

	t.Run("user password changed, disabled, deleted", func(t *testing.T) {
		pc, pcSec := ti.createClient(t, map[string]any{"grant_types": []string{"password", "refresh_token"}})
		login := func(name string) string {
			resp, m := ti.login(t, pc, pcSec, name, "pw-"+name)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("login %s: %d %v", name, resp.StatusCode, m)
			}
			return m["access_token"].(string)
		}
		for _, name := range []string{"ann", "bob", "cid", "dan"} {
			ti.createUser(t, name, "pw-"+name)
		}
		ann, bob, cid, dan := login("ann"), login("bob"), login("cid"), login("dan")
		if resp, m := ti.admin(t, "POST", "/admin/users/ann/password", map[string]any{"password": "another-password-1"}); resp.StatusCode != http.StatusOK {
			t.Fatalf("set password: %d %v", resp.StatusCode, m)
		}
		if resp, m := ti.admin(t, "PUT", "/admin/users/bob", map[string]any{"disabled": true}); resp.StatusCode != http.StatusOK {
			t.Fatalf("disable: %d %v", resp.StatusCode, m)
		}
		if resp, m := ti.admin(t, "DELETE", "/admin/users/cid", nil); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("delete: %d %v", resp.StatusCode, m)
		}
		settle()
		check(t, "ended users' tokens", []string{ann, bob, cid}, 1)
		check(t, "another user's", []string{dan}, 0)
		// A new password: new tokens are valid (their block is not the
		// one whose bits were set).
		if resp, m := ti.login(t, pc, pcSec, "ann", "another-password-1"); resp.StatusCode != http.StatusOK {
			t.Fatalf("login with the new password: %d %v", resp.StatusCode, m)
		} else {
			settle()
			check(t, "token after the password change", []string{m["access_token"].(string)}, 0)
		}
	})

	t.Run("client deleted", func(t *testing.T) {
		doomed, doomedSec := ti.createClient(t, map[string]any{})
		a1, _ := ti.ccToken(t, doomed, doomedSec)
		a2, _ := ti.ccToken(t, doomed, doomedSec)
		if resp, m := ti.admin(t, "DELETE", "/admin/clients/"+doomed, nil); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("delete client: %d %v", resp.StatusCode, m)
		}
		settle()
		check(t, "deleted client's tokens", []string{a1, a2}, 1)
		check(t, "another client's", []string{bystander}, 0)
	})

	t.Run("retired", func(t *testing.T) {
		access, _ := ti.ccToken(t, id, sec)
		uri, _ := ti.statusOf(t, access)
		// The window (the access-token lifetime, 5m) closes, then its last
		// token expires.
		ti.clock.Advance(10*time.Minute + time.Second)
		resp, err := http.Get(uri)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("retired list: %d, want 404", resp.StatusCode)
		}
		var got struct {
			StatusLists []string `json:"status_lists"`
		}
		resp, err = http.Get(agg)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || len(got.StatusLists) != 0 {
			t.Errorf("aggregation after retirement = %v (%v), want []", got.StatusLists, err)
		}
	})
}

// TestStatusListTwoInstancesOnRedis: two issuers on one real redis-server
// issue concurrently without handing one index to two tokens, and a
// revocation at one is in the list the other serves within the ttl.
func TestStatusListTwoInstancesOnRedis(t *testing.T) {
	srv := redistest.Start(t)
	master := secret.Random(32)
	a := startIssuer(t, onRedis(srv.URL(), master), withStatusList)
	b := startIssuer(t, onRedis(srv.URL(), master), withStatusList, sameURL(a.URL))
	var clients [3][2]string
	for i := range clients {
		clients[i][0], clients[i][1] = a.createClient(t, map[string]any{})
	}

	const perWorker = 40
	type entry struct {
		uri string
		idx int64
	}
	var (
		mu     sync.Mutex
		seen   = map[entry]string{}
		tokens []string
		wg     sync.WaitGroup
	)
	for w := range 6 {
		ti := []*testIssuer{a, b}[w%2]
		c := clients[w%3]
		wg.Go(func() {
			for range perWorker {
				resp, m := ti.token(t, c[0], c[1], true, url.Values{"grant_type": {"client_credentials"}})
				if resp.StatusCode != http.StatusOK {
					t.Errorf("token: %d %v", resp.StatusCode, m)
					return
				}
				tok := m["access_token"].(string)
				payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
				var cl struct{ Status tokenStatus }
				_ = json.Unmarshal(payload, &cl)
				e := entry{cl.Status.StatusList.URI, *cl.Status.StatusList.Idx}
				mu.Lock()
				if prev, dup := seen[e]; dup {
					t.Errorf("index %d of %s handed out twice (tokens %.20s… and %.20s…)", e.idx, e.uri, prev, tok)
				}
				seen[e] = tok
				tokens = append(tokens, tok)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != 6*perWorker {
		t.Fatalf("%d distinct entries for %d tokens", len(seen), 6*perWorker)
	}

	victim := tokens[len(tokens)/2]
	var victimClient [2]string
	for _, c := range clients {
		payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(victim, ".")[1])
		if strings.Contains(string(payload), `"client_id":"`+c[0]+`"`) {
			victimClient = c
		}
	}
	uri, idx := b.statusOf(t, victim)
	if got := b.fetchList(t, uri).status(idx); got != 0 {
		t.Fatalf("status before revocation at b = %d", got)
	}
	a.revoked(t, victimClient[0], victimClient[1], victim)
	// b serves what it read less than a second ago: within the ttl (30s),
	// the next read shows the revocation.
	b.clock.Advance(time.Second)
	if got := b.fetchList(t, uri).status(idx); got != 1 {
		t.Errorf("status at b a second after the revocation at a = %d, want 1", got)
	}
	for _, tok := range tokens {
		if tok == victim {
			continue
		}
		u, i := b.statusOf(t, tok)
		if u == uri && b.fetchList(t, u).status(i) != 0 {
			t.Errorf("index %d set, but only %d was revoked", i, idx)
			break
		}
	}
}

// TestStatusListVerify: a resource API using verify.WithStatusLists
// accepts the issuer's tokens and refuses a revoked one once its cached
// list has reached its ttl: the revocation reaches it within the ttl.
func TestStatusListVerify(t *testing.T) {
	ti := startIssuer(t, withStatusList)
	id, sec := ti.createClient(t, map[string]any{})
	v, err := verify.New(ti.URL, "https://api.example.com",
		verify.WithClock(ti.clock.Now), verify.WithStatusLists(verify.StatusListConfig{Required: true}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	victim, _ := ti.ccToken(t, id, sec)
	other, _ := ti.ccToken(t, id, sec)
	for _, tok := range []string{victim, other} {
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatalf("Verify of a fresh token: %v", err)
		}
	}
	ti.revoked(t, id, sec, victim)
	if _, err := v.Verify(ctx, victim); err != nil {
		t.Errorf("revoked token within the ttl of the cached list: %v (the list is cached, so nil is expected)", err)
	}
	ti.clock.Advance(30 * time.Second) // the ttl
	if _, err := v.Verify(ctx, victim); !errors.Is(err, verify.ErrRevoked) {
		t.Errorf("revoked token once the ttl has passed: %v, want ErrRevoked", err)
	}
	if _, err := v.Verify(ctx, other); err != nil {
		t.Errorf("other token: %v, want nil", err)
	}
}
