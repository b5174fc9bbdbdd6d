package server

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/issuer-oauth/issuer/internal/config"
	"github.com/issuer-oauth/issuer/internal/metrics/metricstest"
)

// trustProxies makes an issuer trust the proxies in the comma-separated
// list nets.
func trustProxies(nets string) func(*config.Config) {
	return func(c *config.Config) { c.TrustedProxies = nets }
}

// scrape fetches /metrics (from the admin listener when there is one), checks it is the Prometheus text format, and
// parses it with the Prometheus parser.
func (ti *testIssuer) scrape(t *testing.T) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	resp, err := http.Get(ti.adminAt() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var raw strings.Builder
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(teeReader{resp.Body, &raw})
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams, raw.String()
}

type teeReader struct {
	r interface{ Read([]byte) (int, error) }
	w *strings.Builder
}

func (t teeReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.w.Write(p[:n])
	return n, err
}

// metricSum adds every series of family name whose labels include want.
func metricSum(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	var sum float64
	f := fams[name]
	if f == nil {
		return 0
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

var ccForm = url.Values{"grant_type": {"client_credentials"}}

func TestMetrics(t *testing.T) {
	ti := startIssuer(t)
	id, sec := ti.createClient(t, map[string]any{"scope": "read"})
	m := ti.issue(t, id, sec)
	if status, _ := ti.refresh(t, id, sec, m["refresh_token"].(string)); status != 200 {
		t.Fatalf("refresh: %d", status)
	}
	ti.token(t, id, "wrong-secret", true, ccForm)
	ti.token(t, id, sec, true, url.Values{"grant_type": {"authorization_code"}})
	ti.token(t, id, sec, true, url.Values{"grant_type": {"client_credentials"}, "scope": {"admin"}})
	ti.jwks(t)

	fams, raw := ti.scrape(t)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"issuer_token_requests_total", map[string]string{"grant_type": "client_credentials", "outcome": "success"}, 1},
		{"issuer_token_requests_total", map[string]string{"grant_type": "refresh_token", "outcome": "success"}, 1},
		{"issuer_token_requests_total", map[string]string{"grant_type": "client_credentials", "outcome": "invalid_client"}, 1},
		{"issuer_token_requests_total", map[string]string{"grant_type": "other", "outcome": "unsupported_grant_type"}, 1},
		{"issuer_token_requests_total", map[string]string{"grant_type": "client_credentials", "outcome": "invalid_scope"}, 1},
		{"issuer_http_request_duration_seconds", map[string]string{"endpoint": "/oauth2/token", "method": "POST", "code": "200"}, 2},
		{"issuer_http_request_duration_seconds", map[string]string{"endpoint": "/oauth2/token", "method": "POST", "code": "401"}, 1},
		{"issuer_http_request_duration_seconds", map[string]string{"endpoint": "/.well-known/jwks.json", "method": "GET", "code": "200"}, 1},
		{"issuer_store_errors_total", map[string]string{"operation": "get_client", "kind": "unavailable"}, 0},
	} {
		if got, ok := metricstest.Value(fams, c.name, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (present: %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
	}{
		{"issuer_store_operation_duration_seconds", map[string]string{"operation": "get_client"}},
		{"issuer_store_operation_duration_seconds", map[string]string{"operation": "create_family"}},
		{"issuer_store_operation_duration_seconds", map[string]string{"operation": "rotate_refresh"}},
		{"issuer_store_operation_duration_seconds", map[string]string{"operation": "create_client"}},
	} {
		if got, _ := metricstest.Value(fams, c.name, c.labels); got < 1 {
			t.Errorf("%s%v = %v, want at least 1", c.name, c.labels, got)
		}
	}
	if metricSum(fams, "issuer_http_request_duration_seconds", map[string]string{"endpoint": "/admin/clients", "method": "POST", "code": "201"}) < 1 {
		t.Errorf("no latency observed for the admin API")
	}
	if got, ok := metricstest.Value(fams, "issuer_signing_key_current_age_seconds", map[string]string{}); !ok || got < 0 {
		t.Errorf("issuer_signing_key_current_age_seconds = %v (present: %v)", got, ok)
	}
	if metricSum(fams, "issuer_signing_key_age_seconds", map[string]string{"state": "current"}) < 0 ||
		len(fams["issuer_signing_key_age_seconds"].GetMetric()) == 0 {
		t.Errorf("issuer_signing_key_age_seconds missing")
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total",
		"process_resident_memory_bytes", "issuer_build_info"} {
		if fams[name] == nil {
			t.Errorf("metric %s missing", name)
		}
	}
	// No client id, secret or token becomes a label or a value.
	for what, s := range map[string]string{"client id": id, "client secret": sec,
		"access token": m["access_token"].(string), "refresh token": m["refresh_token"].(string)} {
		if strings.Contains(raw, s) {
			t.Errorf("/metrics contains the %s", what)
		}
	}

	t.Run("store errors", func(t *testing.T) {
		ti.app.store.Close()
		if resp, _ := ti.token(t, id, sec, true, ccForm); resp.StatusCode < 500 {
			t.Fatalf("token request with the store closed: %d, want 5xx", resp.StatusCode)
		}
		fams, _ := ti.scrape(t)
		if got := metricSum(fams, "issuer_store_errors_total", map[string]string{"operation": "get_client"}); got < 1 {
			t.Errorf("issuer_store_errors_total{operation=get_client} = %v after a failed lookup, want at least 1", got)
		}
	})
}

// logLines returns the JSON log lines of ti whose attribute key equals value.
func logLines(t *testing.T, ti *testIssuer, key, value string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.SplitSeq(ti.logs.String(), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, line)
		}
		if v, _ := m[key].(string); v == value {
			out = append(out, m)
		}
	}
	return out
}

// send sends a request to ti with extra headers and returns the response
// and its JSON body.
func (ti *testIssuer) send(t *testing.T, method, path string, form url.Values, header map[string]string) (*http.Response, map[string]any) {
	t.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req, _ := http.NewRequest(method, ti.base+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	return ti.do(t, req)
}

// tokenFrom asks for a client_credentials token as a request forwarded for
// the client address xff (by the test, which plays the proxy).
func (ti *testIssuer) tokenFrom(t *testing.T, xff, id, sec string) (*http.Response, map[string]any) {
	t.Helper()
	return ti.send(t, "POST", "/oauth2/token",
		url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {sec}},
		map[string]string{"X-Forwarded-For": xff})
}

var generatedID = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestRequestID(t *testing.T) {
	t.Run("generated, echoed and on every log line of the request", func(t *testing.T) {
		ti := startIssuer(t)
		id, sec := ti.createClient(t, map[string]any{"token_endpoint_auth_method": "client_secret_post"})
		resp, _ := ti.send(t, "POST", "/oauth2/token",
			url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {"wrong"}},
			map[string]string{"X-Request-Id": "chosen-by-the-client"})
		rid := resp.Header.Get("X-Request-Id")
		if !generatedID.MatchString(rid) {
			t.Fatalf("X-Request-Id = %q from an untrusted peer, want a new random id", rid)
		}
		lines := logLines(t, ti, "request_id", rid)
		msgs := map[string]bool{}
		for _, l := range lines {
			msgs[l["msg"].(string)] = true
		}
		if !msgs["request"] || !msgs["token request refused"] {
			t.Errorf("log lines with request_id %s: %v; want the request line and the handler's line", rid, lines)
		}
		if strings.Contains(ti.logs.String(), "chosen-by-the-client") {
			t.Errorf("an untrusted peer's X-Request-Id reached the log")
		}
		if strings.Contains(ti.logs.String(), sec) {
			t.Errorf("the client secret reached the log")
		}
		resp2, _ := ti.send(t, "GET", "/healthz", nil, nil)
		if rid2 := resp2.Header.Get("X-Request-Id"); rid2 == rid || !generatedID.MatchString(rid2) {
			t.Errorf("second request id %q (first %q)", rid2, rid)
		}
	})
	t.Run("from a trusted proxy", func(t *testing.T) {
		ti := startIssuer(t, trustProxies("127.0.0.0/8,::1"))
		for _, tc := range []struct{ sent, want string }{
			{"edge-4f2a:9b/1", "edge-4f2a:9b/1"},
			{"has spaces in it", ""},
			{strings.Repeat("x", 129), ""},
			{"", ""},
		} {
			resp, _ := ti.send(t, "GET", "/.well-known/oauth-authorization-server", nil, map[string]string{"X-Request-Id": tc.sent})
			got := resp.Header.Get("X-Request-Id")
			if tc.want != "" && got != tc.want || tc.want == "" && !generatedID.MatchString(got) {
				t.Errorf("sent %q: X-Request-Id = %q, want %q or a new id", tc.sent, got, tc.want)
			}
			if tc.want != "" && len(logLines(t, ti, "request_id", tc.want)) == 0 {
				t.Errorf("the proxy's request id %q is not in the log", tc.want)
			}
		}
	})
}

func TestTrustedProxies(t *testing.T) {
	t.Run("trusted peer", func(t *testing.T) {
		ti := startIssuer(t, trustProxies("127.0.0.0/8,::1"), func(c *config.Config) {
			c.AuthFailuresPerAddress, c.AuthFailuresPerClient = 2, 0
		})
		resp, _ := ti.send(t, "GET", "/.well-known/jwks.json", nil,
			map[string]string{"X-Forwarded-For": "192.0.2.1, 198.51.100.7, 127.0.0.5"})
		lines := logLines(t, ti, "request_id", resp.Header.Get("X-Request-Id"))
		if len(lines) != 1 || lines[0]["client_addr"] != "198.51.100.7" {
			t.Errorf("request log = %v, want client_addr 198.51.100.7 (the rightmost untrusted hop)", lines)
		}

		// The abuse limits count the forwarded address.
		id, sec := ti.createClient(t, map[string]any{"token_endpoint_auth_method": "client_secret_post"})
		for range 2 {
			if resp, _ := ti.tokenFrom(t, "203.0.113.1", id, "wrong"); resp.StatusCode != 401 {
				t.Fatalf("wrong secret: %d, want 401", resp.StatusCode)
			}
		}
		if resp, _ := ti.tokenFrom(t, "203.0.113.1", id, sec); resp.StatusCode != 429 {
			t.Errorf("from the address over its limit: %d, want 429", resp.StatusCode)
		}
		if resp, _ := ti.tokenFrom(t, "203.0.113.2", id, sec); resp.StatusCode != 200 {
			t.Errorf("from another address behind the same proxy: %d, want 200", resp.StatusCode)
		}
	})
	t.Run("untrusted peer", func(t *testing.T) {
		ti := startIssuer(t, trustProxies("10.0.0.0/8"), func(c *config.Config) {
			c.AuthFailuresPerAddress, c.AuthFailuresPerClient = 2, 0
		})
		resp, _ := ti.send(t, "GET", "/.well-known/jwks.json", nil, map[string]string{"X-Forwarded-For": "198.51.100.7"})
		lines := logLines(t, ti, "request_id", resp.Header.Get("X-Request-Id"))
		if len(lines) != 1 || lines[0]["client_addr"] != "127.0.0.1" {
			t.Errorf("request log = %v, want client_addr 127.0.0.1 (the peer; the header is ignored)", lines)
		}
		// Spoofing X-Forwarded-For does not escape the address limit.
		id, sec := ti.createClient(t, map[string]any{"token_endpoint_auth_method": "client_secret_post"})
		ti.tokenFrom(t, "203.0.113.1", id, "wrong")
		ti.tokenFrom(t, "203.0.113.2", id, "wrong")
		if resp, _ := ti.tokenFrom(t, "203.0.113.3", id, sec); resp.StatusCode != 429 {
			t.Errorf("with a spoofed X-Forwarded-For: %d, want 429", resp.StatusCode)
		}
	})
	t.Run("one hop of unknown address (Heroku's router)", func(t *testing.T) {
		ti := startIssuer(t, func(c *config.Config) {
			c.TrustedProxyHops = 1
			c.AuthFailuresPerAddress, c.AuthFailuresPerClient = 2, 0
		})
		// The router appends the address it got the request from; what the
		// client put before it is never the client address.
		resp, _ := ti.send(t, "GET", "/.well-known/jwks.json", nil,
			map[string]string{"X-Forwarded-For": "192.0.2.1, 198.51.100.7"})
		lines := logLines(t, ti, "request_id", resp.Header.Get("X-Request-Id"))
		if len(lines) != 1 || lines[0]["client_addr"] != "198.51.100.7" {
			t.Errorf("request log = %v, want client_addr 198.51.100.7 (the rightmost entry)", lines)
		}
		id, sec := ti.createClient(t, map[string]any{"token_endpoint_auth_method": "client_secret_post"})
		for _, spoofed := range []string{"192.0.2.1, 203.0.113.1", "192.0.2.2, 203.0.113.1"} {
			ti.tokenFrom(t, spoofed, id, "wrong")
		}
		if resp, _ := ti.tokenFrom(t, "192.0.2.3, 203.0.113.1", id, sec); resp.StatusCode != 429 {
			t.Errorf("the failing client, whatever it puts in front: %d, want 429", resp.StatusCode)
		}
		if resp, _ := ti.tokenFrom(t, "203.0.113.1, 203.0.113.2", id, sec); resp.StatusCode != 200 {
			t.Errorf("another client behind the same router, naming the blocked address: %d, want 200", resp.StatusCode)
		}
	})
	t.Run("ISSUER_URL is authoritative", func(t *testing.T) {
		ti := startIssuer(t, trustProxies("127.0.0.0/8,::1"))
		_, md := ti.send(t, "GET", "/.well-known/oauth-authorization-server", nil, map[string]string{
			"Host": "evil.example", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https",
			"Forwarded": "host=evil.example;proto=https", "X-Forwarded-Prefix": "/evil",
		})
		if md["issuer"] != ti.URL {
			t.Errorf("issuer = %v, want %s", md["issuer"], ti.URL)
		}
		for k, v := range md {
			if s, ok := v.(string); ok && strings.Contains(s, "evil") {
				t.Errorf("metadata %s = %s follows the request's headers", k, s)
			}
		}
		_, body := ti.send(t, "GET", "/nowhere", nil, map[string]string{"Host": "evil.example", "X-Forwarded-Host": "evil.example"})
		if d, _ := body["error_description"].(string); strings.Contains(d, "evil") || !strings.Contains(d, ti.URL) {
			t.Errorf("404 description = %q", d)
		}
	})
}

// TestRequestLogLevels: probes, scrapes and successful fetches of the public
// documents are request lines at debug level; everything else, and every
// failure, at info.
func TestRequestLogLevels(t *testing.T) {
	ti := startIssuer(t)
	resp, _ := ti.send(t, "GET", "/.well-known/jwks.json", nil, nil)
	etag := resp.Header.Get("ETag")
	for _, tc := range []struct {
		method, path string
		header       map[string]string
		status       int
		level        string
	}{
		{"GET", "/healthz", nil, 200, "DEBUG"},
		{"GET", "/readyz", nil, 200, "DEBUG"},
		{"GET", "/metrics", nil, 200, "DEBUG"},
		{"GET", "/.well-known/jwks.json", nil, 200, "DEBUG"},
		{"GET", "/.well-known/jwks.json", map[string]string{"If-None-Match": etag}, 304, "DEBUG"},
		{"GET", "/.well-known/oauth-authorization-server", nil, 200, "DEBUG"},
		{"POST", "/.well-known/jwks.json", nil, 405, "INFO"},
		{"GET", "/.well-known/nothing-here", nil, 404, "INFO"},
		{"POST", "/oauth2/token", nil, 400, "INFO"},
	} {
		resp, _ := ti.send(t, tc.method, tc.path, nil, tc.header)
		if resp.StatusCode != tc.status {
			t.Fatalf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.status)
		}
		lines := logLines(t, ti, "request_id", resp.Header.Get("X-Request-Id"))
		if len(lines) == 0 {
			t.Fatalf("%s %s: no log line with its request id", tc.method, tc.path)
		}
		var found bool
		for _, l := range lines {
			if l["msg"] == "request" {
				found = true
				if l["level"] != tc.level {
					t.Errorf("%s %s (%d): request line at %v, want %s", tc.method, tc.path, tc.status, l["level"], tc.level)
				}
			}
		}
		if !found {
			t.Errorf("%s %s: no request line in %v", tc.method, tc.path, lines)
		}
	}
}
