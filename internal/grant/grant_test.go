package grant

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/issuer-oauth/issuer/internal/keys"
	"github.com/issuer-oauth/issuer/internal/oauth"
	"github.com/issuer-oauth/issuer/internal/secret"
	"github.com/issuer-oauth/issuer/internal/store"
	"github.com/issuer-oauth/issuer/internal/store/bolt"
)

// The harness is deterministic apart from the ES256 signing key: fixed
// clock, master secret, clients and secrets, so that a fuzz input found by
// one worker process means the same in every other one.
const (
	testIssuer  = "https://issuer.example.com"
	apiAudience = "https://api.example.com"
	otherAud    = "https://other.example.com"
	// testMaxBody is small so that fuzzing reaches the 413 path.
	testMaxBody = 8 << 10
)

var (
	testNow    = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	testMaster = []byte("grant-test-master-secret-0123456789abcdef")
)

// testClient is a client the harness registers, with its secret in clear.
type testClient struct {
	id, secret, method string
	grants             []string
}

var (
	basicClient = testClient{"svc-basic", "b4s1c-s3cr3t-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", oauth.AuthClientSecretBasic, []string{oauth.GrantClientCredentials, oauth.GrantRefreshToken}}
	postClient  = testClient{"svc-post", "p0st-s3cr3t-BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB", oauth.AuthClientSecretPost, []string{oauth.GrantClientCredentials, oauth.GrantRefreshToken}}
	ccClient    = testClient{"svc-cc-only", "cc-s3cr3t-CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC", oauth.AuthClientSecretBasic, []string{oauth.GrantClientCredentials}}
	testClients = []testClient{basicClient, postClient, ccClient}
)

// harness is a real Handler over the embedded store, with real keys and hasher.
type harness struct {
	h      *Handler
	st     *bolt.Store
	hasher *secret.Hasher
	// seedRefresh is a refresh token of basicClient whose family the
	// harness created: identical in every process.
	seedRefresh string
}

func newHarness(tb testing.TB) *harness {
	tb.Helper()
	now := func() time.Time { return testNow }
	st, err := bolt.Open(filepath.Join(tb.TempDir(), "issuer.db"), bolt.WithNow(now))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	ctx := context.Background()
	k, err := keys.New(ctx, st, keys.Config{
		Issuer:        testIssuer,
		Alg:           "ES256",
		EncryptionKey: secret.Derive(testMaster, secret.PurposeKeyEncryption),
		RefreshKey:    secret.Derive(testMaster, secret.PurposeRefreshTokens),
		Now:           now,
	})
	if err != nil {
		tb.Fatal(err)
	}
	hasher := secret.NewHasher(secret.Derive(testMaster, secret.PurposeClientSecrets))
	for _, c := range testClients {
		err := st.CreateClient(ctx, store.Client{
			ID:         c.id,
			Name:       c.id,
			SecretHash: hasher.Hash(c.id, c.secret),
			GrantTypes: c.grants,
			Scopes:     []string{"read", "write"},
			Audiences:  []string{apiAudience, otherAud},
			AuthMethod: c.method,
			CreatedAt:  testNow,
			UpdatedAt:  testNow,
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	h := New(Config{
		Issuer:       testIssuer,
		AccessTTL:    5 * time.Minute,
		RefreshTTL:   24 * time.Hour,
		MaxBodyBytes: testMaxBody,
		FailureFloor: -1, // fuzzing wants speed; BenchmarkAuthenticate and TestFailureFloor set it
		Now:          now,
	}, st, k, hasher, slog.New(slog.DiscardHandler))
	hs := &harness{h: h, st: st, hasher: hasher}
	hs.seedRefresh = hs.mintRefresh(tb, basicClient.id, "seed-family", "seed-jti")
	return hs
}

// mintRefresh stores a new refresh-token family for clientID and returns its
// token, signed the way the handler signs them.
func (hs *harness) mintRefresh(tb testing.TB, clientID, familyID, jti string) string {
	tb.Helper()
	fam := store.Family{
		ID:        familyID,
		ClientID:  clientID,
		Scopes:    []string{"read", "write"},
		Audience:  []string{apiAudience},
		Current:   jti,
		ExpiresAt: testNow.Add(24 * time.Hour),
	}
	if err := hs.st.CreateFamily(context.Background(), fam); err != nil {
		tb.Fatal(err)
	}
	tok, err := hs.h.signRefresh(fam, store.Client{ID: clientID}, testNow, nil, testNow)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

func basicAuth(id, sec string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(sec)))
}

// formCT is the Content-Type of a token request.
const formCT = "application/x-www-form-urlencoded"

// Placeholders a fuzz input may contain; each is replaced by a fresh, unused
// refresh token of a new family, so that the success path of the refresh
// grant stays reachable however often the fuzzer runs it.
var refreshPlaceholders = map[string]string{
	"{RT}":  basicClient.id,
	"{RT2}": postClient.id,
	"{RT3}": ccClient.id,
}

// expand replaces the refresh-token placeholders in s.
func (hs *harness) expand(tb testing.TB, s string) string {
	for ph, clientID := range refreshPlaceholders {
		for strings.Contains(s, ph) {
			tok := hs.mintRefresh(tb, clientID, secret.Random(12), secret.Random(12))
			s = strings.Replace(s, ph, tok, 1)
		}
	}
	return s
}

// knownErrors are the error codes of RFC 6749 §5.2 and RFC 8707 §2.
var knownErrors = map[string]bool{
	"invalid_request":        true,
	"invalid_client":         true,
	"invalid_grant":          true,
	"unauthorized_client":    true,
	"unsupported_grant_type": true,
	"invalid_scope":          true,
	"invalid_target":         true,
}

// authenticatedClient is the fuzz oracle: the seeded client whose real
// secret the request presents with the method the client registered, or ""
// when none. It decodes the request on its own, without the handler's code.
func authenticatedClient(ct, auth, body string) string {
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != formCT {
		return ""
	}
	form, err := url.ParseQuery(body)
	if err != nil {
		return ""
	}
	if auth != "" {
		scheme, payload, ok := strings.Cut(auth, " ")
		if !ok || !strings.EqualFold(scheme, "Basic") {
			return ""
		}
		raw, err := base64.StdEncoding.DecodeString(payload)
		if err != nil {
			return ""
		}
		u, p, ok := strings.Cut(string(raw), ":")
		if !ok {
			return ""
		}
		id, err1 := url.QueryUnescape(u)
		sec, err2 := url.QueryUnescape(p)
		if err1 != nil || err2 != nil {
			return ""
		}
		for _, c := range testClients {
			if c.method == oauth.AuthClientSecretBasic && c.id == id && c.secret == sec {
				return c.id
			}
		}
		return ""
	}
	for _, c := range testClients {
		if c.method == oauth.AuthClientSecretPost && form.Get("client_id") == c.id && form.Get("client_secret") == c.secret {
			return c.id
		}
	}
	return ""
}

// tokenRequest is a token-endpoint request and, for the seeds, its outcome.
type tokenRequest struct {
	method, ct, auth, body string
	status                 int
	code                   string // error code; "" for success
}

// tokenSeeds are the seed corpus of FuzzTokenRequest. seedRefresh is the
// harness's fixed refresh token; its first use succeeds.
func tokenSeeds(seedRefresh string) []tokenRequest {
	const (
		ok   = http.StatusOK
		bad  = http.StatusBadRequest
		auth = http.StatusUnauthorized
	)
	b := basicAuth(basicClient.id, basicClient.secret)
	b64 := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	cc := basicAuth(ccClient.id, ccClient.secret)
	postCreds := "&client_id=" + postClient.id + "&client_secret=" + postClient.secret
	big := strings.Repeat("A", testMaxBody)
	manyScopes := strings.TrimSpace(strings.Repeat("read write ", 600))
	return []tokenRequest{
		// valid client_credentials, basic and post
		{"POST", formCT, b, "grant_type=client_credentials", ok, ""},
		{"POST", formCT, b, "grant_type=client_credentials&scope=read&resource=https%3A%2F%2Fapi.example.com", ok, ""},
		{"POST", formCT, b, "grant_type=client_credentials&scope=read+write&resource=https%3A%2F%2Fapi.example.com&resource=https%3A%2F%2Fother.example.com", ok, ""},
		{"POST", formCT, b, "grant_type=client_credentials&audience=https%3A%2F%2Fother.example.com&client_id=svc-basic", ok, ""},
		{"POST", formCT + "; charset=utf-8", "", "grant_type=client_credentials" + postCreds, ok, ""},
		{"POST", formCT, cc, "grant_type=client_credentials&scope=write", ok, ""},
		// refresh, with fresh tokens and with the fixed seed token
		{"POST", formCT, b, "grant_type=refresh_token&refresh_token={RT}", ok, ""},
		{"POST", formCT, b, "grant_type=refresh_token&refresh_token={RT}&scope=read", ok, ""},
		{"POST", formCT, b, "grant_type=refresh_token&refresh_token=" + seedRefresh, ok, ""},
		{"POST", formCT, b, "grant_type=refresh_token&refresh_token=" + seedRefresh, bad, "invalid_grant"}, // reuse
		{"POST", formCT, "", "grant_type=refresh_token&refresh_token={RT2}" + postCreds, ok, ""},
		{"POST", formCT, b, "grant_type=refresh_token&refresh_token={RT}&resource=https%3A%2F%2Fother.example.com", bad, "invalid_target"},
		{"POST", formCT, b, "grant_type=refresh_token&refresh_token={RT2}", bad, "invalid_grant"},
		{"POST", formCT, cc, "grant_type=refresh_token&refresh_token={RT3}", bad, "unauthorized_client"},
		{"POST", formCT, b, "grant_type=refresh_token&refresh_token={RT}&scope=admin", bad, "invalid_scope"},
		{"POST", formCT, b, "grant_type=refresh_token", bad, "invalid_request"},
		{"POST", formCT, b, "grant_type=refresh_token&refresh_token=eyJhbGciOiJub25lIn0.e30.", bad, "invalid_grant"},
		// wrong secret, unknown client, wrong method for the client
		{"POST", formCT, basicAuth(basicClient.id, "wrong"), "grant_type=client_credentials", auth, "invalid_client"},
		{"POST", formCT, basicAuth("nobody", basicClient.secret), "grant_type=client_credentials", auth, "invalid_client"},
		{"POST", formCT, basicAuth(postClient.id, postClient.secret), "grant_type=client_credentials", auth, "invalid_client"},
		{"POST", formCT, "", "grant_type=client_credentials&client_id=svc-basic&client_secret=" + basicClient.secret, auth, "invalid_client"},
		{"POST", formCT, "", "grant_type=client_credentials&client_id=" + strings.Repeat("x", 200) + "&client_secret=x", auth, "invalid_client"},
		{"POST", formCT, "", "grant_type=client_credentials", auth, "invalid_client"},
		// methods
		{"GET", formCT, b, "grant_type=client_credentials", http.StatusMethodNotAllowed, "invalid_request"},
		{"post", formCT, b, "grant_type=client_credentials", http.StatusMethodNotAllowed, "invalid_request"},
		{"", "", "", "", http.StatusMethodNotAllowed, "invalid_request"},
		// malformed forms, %-escapes, repeated parameters
		{"POST", formCT, b, "grant_type=%zz", bad, "invalid_request"},
		{"POST", formCT, b, "grant_type=client%5Fcredentials&scope=%72ead", ok, ""},
		{"POST", formCT, b, "grant_type=client_credentials;scope=read", bad, "invalid_request"},
		{"POST", formCT, b, "%", bad, "invalid_request"},
		{"POST", formCT, b, "grant_type=client_credentials&grant_type=client_credentials", bad, "invalid_request"},
		{"POST", formCT, b, "grant_type=client_credentials&scope=read&scope=write", bad, "invalid_request"},
		{"POST", formCT, b, "grant_type=client_credentials&resource=a&resource=a&audience=b", bad, "invalid_target"},
		{"POST", formCT, b, "grant_type=client_credentials&scope=%22read%5C", bad, "invalid_scope"},
		{"POST", formCT, b, "grant_type=client_credentials&scope=read%09write", bad, "invalid_scope"},
		{"POST", formCT, b, "grant_type=client_credentials&scope=%C3%A9", bad, "invalid_scope"},
		{"POST", formCT, b, "grant_type=password&username=a&password=b", bad, "unsupported_grant_type"},
		{"POST", formCT, b, "grant_type=\x00%00\xff", bad, "unsupported_grant_type"},
		{"POST", formCT, b, "", bad, "invalid_request"},
		{"POST", formCT, b, "=&&=&grant_type", bad, "invalid_request"},
		// huge values
		{"POST", formCT, b, "grant_type=client_credentials&scope=" + big, http.StatusRequestEntityTooLarge, "invalid_request"},
		{"POST", formCT, b, "grant_type=client_credentials&scope=" + manyScopes, ok, ""},
		{"POST", formCT, b, "grant_type=" + strings.Repeat("%41", 2000), bad, "unsupported_grant_type"},
		{"POST", formCT, b, "grant_type=refresh_token&refresh_token=" + strings.Repeat("e", 5000), bad, "invalid_grant"},
		// content types
		{"POST", "application/json", b, `{"grant_type":"client_credentials"}`, bad, "invalid_request"},
		{"POST", "", b, "grant_type=client_credentials", bad, "invalid_request"},
		{"POST", "APPLICATION/X-WWW-FORM-URLENCODED", b, "grant_type=client_credentials", ok, ""},
		{"POST", formCT + "; charset", b, "grant_type=client_credentials", bad, "invalid_request"},
		{"POST", "multipart/form-data; boundary=x", b, "--x--", bad, "invalid_request"},
		// Basic with odd encodings
		{"POST", formCT, b64(basicClient.id), "grant_type=client_credentials", auth, "invalid_client"},
		{"POST", formCT, "basic " + strings.TrimPrefix(b, "Basic "), "grant_type=client_credentials", ok, ""},
		{"POST", formCT, "Basic  " + strings.TrimPrefix(b, "Basic "), "grant_type=client_credentials", auth, "invalid_client"},
		{"POST", formCT, "Basic ====", "grant_type=client_credentials", auth, "invalid_client"},
		{"POST", formCT, "Basic " + base64.RawURLEncoding.EncodeToString([]byte(basicClient.id+":"+basicClient.secret)), "grant_type=client_credentials", ok, ""},
		{"POST", formCT, b64("svc%2Dbasic:" + basicClient.secret), "grant_type=client_credentials", ok, ""},
		{"POST", formCT, b64("svc%zz:x"), "grant_type=client_credentials", auth, "invalid_client"},
		{"POST", formCT, b64(":" + basicClient.secret), "grant_type=client_credentials", auth, "invalid_client"},
		{"POST", formCT, b64(basicClient.id + ":a+b%20c"), "grant_type=client_credentials", auth, "invalid_client"},
		{"POST", formCT, "Bearer abc", "grant_type=client_credentials", auth, "invalid_client"},
		{"POST", formCT, "\xff\xfe", "grant_type=client_credentials", auth, "invalid_client"},
		{"POST", formCT, b, "grant_type=client_credentials&client_secret=" + basicClient.secret, bad, "invalid_request"},
		{"POST", formCT, b, "grant_type=client_credentials&client_id=svc-post", bad, "invalid_request"},
	}
}

func FuzzTokenRequest(f *testing.F) {
	hs := newHarness(f)
	for _, s := range tokenSeeds(hs.seedRefresh) {
		f.Add(s.method, s.ct, s.auth, s.body)
	}
	f.Fuzz(func(t *testing.T, method, ct, auth, body string) {
		hs.check(t, method, ct, auth, body)
	})
}

// TestTokenRequestSeeds runs the seed corpus in order and checks that every
// seed gets the outcome it was written for, so that none is dead weight.
func TestTokenRequestSeeds(t *testing.T) {
	hs := newHarness(t)
	for i, s := range tokenSeeds(hs.seedRefresh) {
		status, code := hs.check(t, s.method, s.ct, s.auth, s.body)
		if status != s.status || code != s.code {
			t.Errorf("seed %d (%s %q %.40q): %d %q, want %d %q", i, s.method, s.ct, s.body, status, code, s.status, s.code)
		}
	}
}

// check sends one request to the handler and checks the invariants every
// response must keep. It returns the status and the error code ("" for
// success).
func (hs *harness) check(t *testing.T, method, ct, auth, body string) (int, string) {
	t.Helper()
	auth, body = hs.expand(t, auth), hs.expand(t, body)
	req := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(body))
	req.Method = method
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	hs.h.ServeHTTP(rec, req) // a panic fails the test

	res := rec.Result()
	status := res.StatusCode
	switch status {
	case http.StatusOK, http.StatusBadRequest, http.StatusUnauthorized,
		http.StatusMethodNotAllowed, http.StatusRequestEntityTooLarge:
	default:
		t.Fatalf("status %d: %s", status, rec.Body)
	}
	if got := res.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", got)
	}
	if got := res.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	var resp struct {
		AccessToken  *string `json:"access_token"`
		TokenType    string  `json:"token_type"`
		RefreshToken string  `json:"refresh_token"`
		Error        *string `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	if err := dec.Decode(&resp); err != nil {
		t.Fatalf("status %d: body is not JSON: %v: %q", status, err, rec.Body)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Errorf("status %d: more than one JSON value in the body: %q", status, rec.Body)
	}
	if (resp.AccessToken == nil) == (resp.Error == nil) {
		t.Fatalf("status %d: want exactly one of access_token and error: %s", status, rec.Body)
	}
	for _, c := range testClients {
		if strings.Contains(rec.Body.String(), c.secret) && !strings.Contains(auth+body, c.secret) {
			t.Errorf("the secret of %s leaked into the response: %s", c.id, rec.Body)
		}
	}

	if resp.Error != nil {
		code := *resp.Error
		if !knownErrors[code] {
			t.Errorf("error %q is not an RFC 6749/8707 code", code)
		}
		switch {
		case status == http.StatusOK:
			t.Errorf("status 200 with error %q", code)
		case status == http.StatusUnauthorized && res.Header.Get("WWW-Authenticate") == "":
			t.Errorf("401 without WWW-Authenticate")
		case (status == http.StatusUnauthorized) != (code == "invalid_client"):
			t.Errorf("status %d with error %q", status, code)
		case (status == http.StatusMethodNotAllowed) != (method != http.MethodPost):
			t.Errorf("status %d for method %q", status, method)
		case status == http.StatusRequestEntityTooLarge && len(body) <= testMaxBody:
			t.Errorf("413 for a body of %d bytes (limit %d)", len(body), testMaxBody)
		}
		return status, code
	}

	// Success: only for a seeded client presenting its real secret.
	if status != http.StatusOK {
		t.Fatalf("status %d with an access token", status)
	}
	if method != http.MethodPost {
		t.Fatalf("200 for method %q", method)
	}
	want := authenticatedClient(ct, auth, body)
	if want == "" {
		t.Fatalf("200 for a request that does not authenticate a client with its real secret: ct=%q auth=%q body=%q", ct, auth, body)
	}
	if resp.TokenType != "Bearer" {
		t.Errorf("token_type = %q, want Bearer", resp.TokenType)
	}
	var claims keys.AccessClaims
	if _, _, err := jwt.NewParser().ParseUnverified(*resp.AccessToken, &claims); err != nil {
		t.Fatalf("access token: %v", err)
	}
	if claims.Subject != want || claims.ClientID != want {
		t.Errorf("access token sub, client_id = %q, %q; the request authenticated %q", claims.Subject, claims.ClientID, want)
	}
	if resp.RefreshToken != "" {
		rc, err := hs.h.keys.ParseRefresh(resp.RefreshToken)
		if err != nil {
			t.Fatalf("refresh token does not parse: %v", err)
		}
		if rc.ClientID != want {
			t.Errorf("refresh token client_id = %q, want %q", rc.ClientID, want)
		}
	}
	return status, ""
}

// TestClientCredentials checks what the grant issues through go-oauth2: an
// access token with the decided scope and audience and the configured
// lifetime, and a refresh token whose family is stored (it refreshes) only
// for a client that may refresh.
func TestClientCredentials(t *testing.T) {
	hs := newHarness(t)
	for _, tc := range []struct {
		c           testClient
		wantRefresh bool
	}{
		{basicClient, true},
		{ccClient, false},
	} {
		t.Run(tc.c.id, func(t *testing.T) {
			auth := basicAuth(tc.c.id, tc.c.secret)
			m := hs.serve(t, auth, "grant_type=client_credentials&scope=write&resource="+url.QueryEscape(otherAud))
			if got, want := m["scope"], "write"; got != want {
				t.Errorf("scope = %v, want %v", got, want)
			}
			if got, want := m["expires_in"], 300.0; got != want {
				t.Errorf("expires_in = %v, want %v", got, want)
			}
			claims, err := hs.h.keys.ParseAccess(m["access_token"].(string))
			if err != nil {
				t.Fatal(err)
			}
			if claims.Subject != tc.c.id || claims.Scope != "write" || !slices.Equal(claims.Audience, []string{otherAud}) ||
				!claims.ExpiresAt.Equal(testNow.Add(5*time.Minute)) {
				t.Errorf("access token claims = %+v, want sub %s, scope write, aud %s, exp now+5m", claims, tc.c.id, otherAud)
			}
			rt, ok := m["refresh_token"].(string)
			if ok != tc.wantRefresh {
				t.Fatalf("refresh token issued: %v, want %v", ok, tc.wantRefresh)
			}
			if !ok {
				return
			}
			m = hs.serve(t, auth, "grant_type=refresh_token&refresh_token="+rt)
			if got, want := m["scope"], "write"; got != want {
				t.Errorf("refreshed scope = %v, want %v", got, want)
			}
		})
	}
}

// TestCredentials checks what a client is told about its credentials.
func TestCredentials(t *testing.T) {
	b64 := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct {
		name, auth, body  string
		wantID, wantSec   string
		wantMethod        string
		wantCode, wantMsg string
	}{
		{"basic", b64("a%3Ab:s%20+t"), "", "a:b", "s  t", oauth.AuthClientSecretBasic, "", ""},
		{"basic scheme in lower case", "basic " + base64.StdEncoding.EncodeToString([]byte("a:s")), "", "a", "s", oauth.AuthClientSecretBasic, "", ""},
		{"basic with matching client_id", b64("a:s"), "client_id=a", "a", "s", oauth.AuthClientSecretBasic, "", ""},
		{"post", "", "client_id=a&client_secret=s", "a", "s", oauth.AuthClientSecretPost, "", ""},
		{"nothing", "", "", "", "", "", "invalid_client", "client authentication is required"},
		{"post without secret", "", "client_id=a", "", "", "", "invalid_client", "client authentication is required"},
		{"both methods", b64("a:s"), "client_secret=s", "", "", "", "invalid_request", "use one client authentication method"},
		{"client_id differs", b64("a:s"), "client_id=b", "", "", "", "invalid_request", "differs from the Basic credentials"},
		{"basic without colon", b64("a"), "", "", "", "", "invalid_client", "malformed Basic credentials"},
		{"basic not base64", "Basic ====", "", "", "", "", "invalid_client", "malformed Basic credentials"},
		{"basic with nothing", "Basic", "", "", "", "", "invalid_client", "malformed Basic credentials"},
		{"basic with bad escape", b64("a%zz:s"), "", "", "", "", "invalid_client", "malformed Basic credentials"},
		{"basic with empty id", b64(":s"), "", "", "", "", "invalid_client", "malformed Basic credentials"},
		{"bearer", "Bearer abc", "", "", "", "", "invalid_client", `unsupported Authorization scheme "Bearer"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/oauth2/token", nil)
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			form, err := url.ParseQuery(tc.body)
			if err != nil {
				t.Fatal(err)
			}
			id, sec, method, oerr := credentials(r, form)
			if tc.wantCode != "" {
				if oerr == nil || oerr.Code != tc.wantCode || !strings.Contains(oerr.Description, tc.wantMsg) {
					t.Fatalf("credentials: %v, want %s containing %q", oerr, tc.wantCode, tc.wantMsg)
				}
				return
			}
			if oerr != nil {
				t.Fatalf("credentials: %v", oerr)
			}
			if id != tc.wantID || sec != tc.wantSec || method != tc.wantMethod {
				t.Errorf("credentials = %q, %q, %q; want %q, %q, %q", id, sec, method, tc.wantID, tc.wantSec, tc.wantMethod)
			}
		})
	}
}

func TestGrantScope(t *testing.T) {
	allowed := []string{"read", "write"}
	for _, tc := range []struct {
		name      string
		requested string
		allowed   []string
		want      []string
		wantCode  string
	}{
		{"none requested gets all allowed", "", allowed, allowed, ""},
		{"blank requested gets all allowed", "  ", allowed, allowed, ""},
		{"subset", "read", allowed, []string{"read"}, ""},
		{"all in request order", "write read", allowed, []string{"write", "read"}, ""},
		{"duplicates collapse", "read read", allowed, []string{"read"}, ""},
		{"not allowed", "read admin", allowed, nil, "invalid_scope"},
		{"malformed", "read\x01", allowed, nil, "invalid_scope"},
		{"client with no scopes, none requested", "", nil, nil, ""},
		{"client with no scopes, one requested", "read", nil, nil, "invalid_scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := grantScope(tc.requested, tc.allowed)
			checkErr(t, err, tc.wantCode, http.StatusBadRequest)
			if !slices.Equal(got, tc.want) {
				t.Errorf("grantScope(%q, %q) = %q, want %q", tc.requested, tc.allowed, got, tc.want)
			}
		})
	}
}

func TestGrantAudience(t *testing.T) {
	allowed := []string{apiAudience, otherAud}
	for _, tc := range []struct {
		name      string
		requested []string
		allowed   []string
		want      []string
		wantCode  string
	}{
		{"none requested gets the first allowed", nil, allowed, []string{apiAudience}, ""},
		{"none requested, none allowed", nil, nil, nil, "invalid_target"},
		{"one allowed", []string{otherAud}, allowed, []string{otherAud}, ""},
		{"several, duplicates collapse", []string{otherAud, apiAudience, otherAud}, allowed, []string{otherAud, apiAudience}, ""},
		{"not allowed", []string{apiAudience, "https://evil.example.com"}, allowed, nil, "invalid_target"},
		{"empty value", []string{""}, allowed, nil, "invalid_target"},
		{"prefix of an allowed one", []string{"https://api.example"}, allowed, nil, "invalid_target"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := grantAudience(tc.requested, tc.allowed)
			checkErr(t, err, tc.wantCode, http.StatusBadRequest)
			if !slices.Equal(got, tc.want) {
				t.Errorf("grantAudience(%q, %q) = %q, want %q", tc.requested, tc.allowed, got, tc.want)
			}
		})
	}
}

// checkErr checks a protocol error against the wanted code ("" for none).
func checkErr(t *testing.T, err *Error, code string, status int) {
	t.Helper()
	switch {
	case code == "" && err != nil:
		t.Errorf("error %v, want none", err)
	case code != "" && err == nil:
		t.Errorf("no error, want %s", code)
	case code != "" && (err.Code != code || err.Status != status):
		t.Errorf("error %s (status %d), want %s (status %d)", err.Code, err.Status, code, status)
	}
}

func TestQuote(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"", `""`},
		{"read", `"read"`},
		{`a"b\c`, `"a?b?c"`},
		{"a\r\nb\x00\x7f", `"a??b??"`},
		{"é", `"?"`},
		{"\xff", `"?"`},
		{strings.Repeat("a", 64), `"` + strings.Repeat("a", 64) + `"`},
		{strings.Repeat("a", 65), `"` + strings.Repeat("a", 64) + `..."`},
		// the cut may split a rune; its remains become one '?'
		{strings.Repeat("a", 63) + "éé", `"` + strings.Repeat("a", 63) + `?..."`},
	} {
		if got := quote(tc.in); got != tc.want {
			t.Errorf("quote(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// BenchmarkAuthenticate compares the cost of the three outcomes of client
// authentication, without the failure floor (the raw cost: an unknown client
// is cheaper, as the store finds nothing to decode) and with the default
// floor (what clients see: a wrong secret and an unknown client cost the same).
func BenchmarkAuthenticate(b *testing.B) {
	hs := newHarness(b)
	form := url.Values{"grant_type": {oauth.GrantClientCredentials}}
	for _, floor := range []time.Duration{-1, DefaultFailureFloor} {
		hs.h.cfg.FailureFloor = floor
		for _, bc := range []struct {
			name, id, secret string
			ok               bool
		}{
			{"known-client-right-secret", basicClient.id, basicClient.secret, true},
			{"known-client-wrong-secret", basicClient.id, strings.Repeat("x", len(basicClient.secret)), false},
			{"unknown-client", "svc-nobody", basicClient.secret, false},
		} {
			b.Run(fmt.Sprintf("floor=%v/%s", max(floor, 0), bc.name), func(b *testing.B) {
				req := httptest.NewRequest(http.MethodPost, "/oauth2/token", nil)
				req.Header.Set("Authorization", basicAuth(bc.id, bc.secret))
				b.ReportAllocs()
				for b.Loop() {
					_, oerr := hs.h.Authenticate(req, form)
					if (oerr == nil) != bc.ok {
						b.Fatalf("Authenticate: %v", oerr)
					}
				}
			})
		}
	}
}

// TestFailureFloor: every failed authentication, unknown client or wrong
// secret, takes at least the floor; a successful one does not wait for it.
func TestFailureFloor(t *testing.T) {
	hs := newHarness(t)
	hs.h.cfg.FailureFloor = 50 * time.Millisecond
	form := url.Values{"grant_type": {oauth.GrantClientCredentials}}
	for _, tc := range []struct {
		name, id, secret string
		ok               bool
	}{
		{"unknown client", "svc-nobody", basicClient.secret, false},
		{"wrong secret", basicClient.id, "wrong", false},
		{"right secret", basicClient.id, basicClient.secret, true},
	} {
		req := httptest.NewRequest(http.MethodPost, "/oauth2/token", nil)
		req.Header.Set("Authorization", basicAuth(tc.id, tc.secret))
		start := time.Now()
		_, oerr := hs.h.Authenticate(req, form)
		took := time.Since(start)
		if (oerr == nil) != tc.ok {
			t.Fatalf("%s: %v", tc.name, oerr)
		}
		if !tc.ok && took < hs.h.cfg.FailureFloor {
			t.Errorf("%s: answered after %v, before the %v floor", tc.name, took, hs.h.cfg.FailureFloor)
		}
	}
}

// serve runs one token request through ServeHTTP and decodes the response.
func (hs *harness) serve(tb testing.TB, auth, body string) map[string]any {
	req := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(body))
	req.Header.Set("Content-Type", formCT)
	req.Header.Set("Authorization", auth)
	rec := httptest.NewRecorder()
	hs.h.ServeHTTP(rec, req)
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || rec.Code != http.StatusOK {
		tb.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	return m
}

func BenchmarkClientCredentials(b *testing.B) {
	hs := newHarness(b)
	auth := basicAuth(basicClient.id, basicClient.secret)
	body := "grant_type=client_credentials&scope=read&resource=" + url.QueryEscape(apiAudience)
	b.ReportAllocs()
	for b.Loop() {
		hs.serve(b, auth, body)
	}
}

// BenchmarkRefresh refreshes a chain of tokens: each iteration presents the
// refresh token the previous one received.
func BenchmarkRefresh(b *testing.B) {
	hs := newHarness(b)
	auth := basicAuth(basicClient.id, basicClient.secret)
	rt := hs.mintRefresh(b, basicClient.id, "bench-family", "bench-jti")
	b.ReportAllocs()
	for b.Loop() {
		m := hs.serve(b, auth, "grant_type=refresh_token&scope=read&refresh_token="+rt)
		rt = m["refresh_token"].(string)
	}
}
