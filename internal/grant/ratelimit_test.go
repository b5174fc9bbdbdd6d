package grant

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/oauth"
	"github.com/issuer-oauth/issuer/internal/ratelimit"
	"github.com/issuer-oauth/issuer/internal/request"
)

// fakeLimiter records what the handler tells it and answers as told.
type fakeLimiter struct {
	mu       sync.Mutex
	failures []string // "clientID@addr"
	auth     ratelimit.Decision
	token    ratelimit.Decision
	tokens   []string
}

func (f *fakeLimiter) AllowAuth(context.Context, string, netip.Addr) ratelimit.Decision {
	return f.auth
}

func (f *fakeLimiter) AuthFailed(_ context.Context, clientID string, addr netip.Addr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures = append(f.failures, clientID+"@"+addr.String())
}

func (f *fakeLimiter) AllowToken(_ context.Context, clientID string, _ int64) ratelimit.Decision {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens = append(f.tokens, clientID)
	return f.token
}

// fakeMetrics records token request outcomes.
type fakeMetrics struct{ outcomes []string }

func (f *fakeMetrics) ClientAuth(string, string) {}

func (f *fakeMetrics) TokenRequest(grantType, outcome string) {
	f.outcomes = append(f.outcomes, grantType+":"+outcome)
}

// TestAuthFailuresCounted: only a wrong secret or an unknown client id
// counts as a failure, against the client address of the request.
func TestAuthFailuresCounted(t *testing.T) {
	hs := newHarness(t)
	lim := &fakeLimiter{}
	hs.h.cfg.Limiter = lim
	form := url.Values{"grant_type": {oauth.GrantClientCredentials}}
	long := strings.Repeat("x", maxClientIDLen+1)
	for _, tc := range []struct {
		name, auth string
		ctxAddr    string // client address the server put in the context
		want       string // recorded failure, "" for none
	}{
		{"wrong secret", basicAuth(basicClient.id, "wrong"), "", basicClient.id + "@192.0.2.5"},
		{"unknown client", basicAuth("svc-nobody", "x"), "", "svc-nobody@192.0.2.5"},
		{"over-long client id", basicAuth(long, "x"), "", "@192.0.2.5"},
		{"address from the context", basicAuth(basicClient.id, "wrong"), "198.51.100.7", basicClient.id + "@198.51.100.7"},
		{"right secret", basicAuth(basicClient.id, basicClient.secret), "", ""},
		{"right secret, wrong method", basicAuth(postClient.id, postClient.secret), "", ""},
		{"no credentials", "", "", ""},
		{"malformed Basic", "Basic !!!", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lim.failures = nil
			req := httptest.NewRequest(http.MethodPost, "/oauth2/token", nil)
			req.RemoteAddr = "192.0.2.5:4711"
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			if tc.ctxAddr != "" {
				req = req.WithContext(request.WithClientAddr(req.Context(), netip.MustParseAddr(tc.ctxAddr)))
			}
			hs.h.Authenticate(req, form)
			got := strings.Join(lim.failures, ",")
			if got != tc.want {
				t.Errorf("failures recorded = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRateLimitedAnswers(t *testing.T) {
	hs := newHarness(t)
	lim := &fakeLimiter{}
	m := &fakeMetrics{}
	hs.h.cfg.Limiter, hs.h.cfg.Metrics = lim, m
	body := url.Values{"grant_type": {oauth.GrantClientCredentials}}.Encode()

	post := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(body))
		req.Header.Set("Content-Type", formCT)
		req.Header.Set("Authorization", basicAuth(basicClient.id, basicClient.secret))
		rec := httptest.NewRecorder()
		hs.h.ServeHTTP(rec, req)
		return rec
	}

	lim.auth = ratelimit.Decision{Limit: ratelimit.LimitAddress, RetryAfter: 1500 * time.Millisecond}
	rec := post()
	if rec.Code != 429 || rec.Header().Get("Retry-After") != "2" || rec.Header().Get("WWW-Authenticate") != "" ||
		!strings.Contains(rec.Body.String(), `"error":"temporarily_unavailable"`) ||
		!strings.Contains(rec.Body.String(), "from this address; retry after 2 seconds") {
		t.Errorf("address limit: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	if len(lim.failures) != 0 {
		t.Errorf("a refused request counted as a failure: %v", lim.failures)
	}

	lim.auth = ratelimit.Decision{Limit: ratelimit.LimitClient, RetryAfter: 30 * time.Second}
	if rec := post(); rec.Code != 429 || !strings.Contains(rec.Body.String(), "of this client") {
		t.Errorf("client limit: %d %s", rec.Code, rec.Body)
	}

	lim.auth = ratelimit.Decision{}
	lim.token = ratelimit.Decision{Limit: ratelimit.LimitQuota, RetryAfter: 59 * time.Second}
	if rec := post(); rec.Code != 429 || rec.Header().Get("Retry-After") != "59" || !strings.Contains(rec.Body.String(), "quota") {
		t.Errorf("quota: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	if len(lim.tokens) != 1 || lim.tokens[0] != basicClient.id {
		t.Errorf("quota asked for %v, want the authenticated client", lim.tokens)
	}

	lim.token = ratelimit.Decision{}
	if rec := post(); rec.Code != 200 {
		t.Errorf("no limit: %d %s", rec.Code, rec.Body)
	}
	want := "client_credentials:temporarily_unavailable,client_credentials:temporarily_unavailable," +
		"client_credentials:temporarily_unavailable,client_credentials:success"
	if got := strings.Join(m.outcomes, ","); got != want {
		t.Errorf("outcomes = %s\nwant %s", got, want)
	}
}
