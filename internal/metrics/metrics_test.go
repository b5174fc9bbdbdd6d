package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/issuer-oauth/issuer/internal/metrics"
	"github.com/issuer-oauth/issuer/internal/metrics/metricstest"
	"github.com/issuer-oauth/issuer/internal/store"
	"github.com/issuer-oauth/issuer/internal/store/bolt"
	"github.com/issuer-oauth/issuer/internal/store/storetest"
)

// scrape fetches and parses the metrics of m.
func scrape(t *testing.T, m *metrics.Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d", rec.Code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse metrics: %v", err)
	}
	return fams
}

// TestStoreConformance: the instrumented store passes the store suite, so
// the decorator changes no behaviour.
func TestStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
		s, err := bolt.Open(filepath.Join(t.TempDir(), "issuer.db"), bolt.WithNow(now))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return metrics.New("test").Store(s)
	})
}

// faultyStore answers GetClient with the error it holds.
type faultyStore struct {
	store.Store
	err error
}

func (f *faultyStore) GetClient(context.Context, string) (store.Client, error) {
	return store.Client{}, f.err
}

func TestStoreMetrics(t *testing.T) {
	m := metrics.New("test")
	fs := &faultyStore{}
	st := m.Store(fs)
	ctx := context.Background()
	for _, err := range []error{
		nil,
		store.ErrNotFound,
		fmt.Errorf("wrapped: %w", store.ErrNotFound),
		fmt.Errorf("wrapped: %w", store.ErrConflict),
		context.Canceled,
		fmt.Errorf("redis: %w", store.ErrUnavailable),
		context.DeadlineExceeded,
		errors.New("disk full"),
	} {
		fs.err = err
		if _, got := st.GetClient(ctx, "x"); got != err {
			t.Errorf("GetClient returned %v, want the store's %v unchanged", got, err)
		}
	}
	fams := scrape(t, m)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"issuer_store_operation_duration_seconds", map[string]string{"operation": "get_client"}, 8},
		{"issuer_store_errors_total", map[string]string{"operation": "get_client", "kind": "unavailable"}, 2},
		{"issuer_store_errors_total", map[string]string{"operation": "get_client", "kind": "other"}, 1},
		{"issuer_store_errors_total", map[string]string{"operation": "rotate_refresh", "kind": "unavailable"}, 0},
		{"issuer_store_operation_duration_seconds", map[string]string{"operation": "ping"}, 0},
		{"issuer_store_errors_total", map[string]string{"operation": "upgrade_user_password", "kind": "other"}, 0},
	} {
		if got, ok := metricstest.Value(fams, c.name, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
}

func TestRequestAndTokenMetrics(t *testing.T) {
	m := metrics.New("v1.2.3")
	m.ObserveRequest("/oauth2/token", "POST", 200, 3*time.Millisecond)
	m.ObserveRequest("/oauth2/token", "BREW", 405, time.Millisecond)
	m.TokenRequest("client_credentials", "success")
	m.TokenRequest("authorization_code", "unsupported_grant_type")
	m.TokenRequest("password", "invalid_grant")
	m.TokenRequest("", "invalid_request")
	m.Limited("quota")
	fams := scrape(t, m)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"issuer_http_request_duration_seconds", map[string]string{"endpoint": "/oauth2/token", "method": "POST", "code": "200"}, 1},
		{"issuer_http_request_duration_seconds", map[string]string{"endpoint": "/oauth2/token", "method": "other", "code": "405"}, 1},
		{"issuer_token_requests_total", map[string]string{"grant_type": "client_credentials", "outcome": "success"}, 1},
		{"issuer_token_requests_total", map[string]string{"grant_type": "other", "outcome": "unsupported_grant_type"}, 1},
		{"issuer_token_requests_total", map[string]string{"grant_type": "password", "outcome": "invalid_grant"}, 1},
		{"issuer_token_requests_total", map[string]string{"grant_type": "other", "outcome": "invalid_request"}, 1},
		{"issuer_rate_limited_total", map[string]string{"limit": "quota"}, 1},
		{"issuer_build_info", map[string]string{"version": "v1.2.3"}, 1},
	} {
		if got, ok := metricstest.Value(fams, c.name, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_cpu_seconds_total", "process_open_fds"} {
		if fams[name] == nil {
			t.Errorf("standard metric %s missing", name)
		}
	}
}

func TestKeyAges(t *testing.T) {
	now := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	m := metrics.New("test")
	m.WatchKeys(func() []metrics.Key {
		return []metrics.Key{
			{ID: "old", Alg: "ES256", State: "retired", CreatedAt: now.Add(-48 * time.Hour), NotBefore: now.Add(-48 * time.Hour)},
			{ID: "cur", Alg: "ES256", State: "current", CreatedAt: now.Add(-3 * time.Hour), NotBefore: now.Add(-2 * time.Hour)},
			{ID: "nxt", Alg: "ES256", State: "next", CreatedAt: now.Add(-time.Hour), NotBefore: now.Add(time.Hour)},
		}
	}, func() time.Time { return now })
	fams := scrape(t, m)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"issuer_signing_key_age_seconds", map[string]string{"kid": "old", "alg": "ES256", "state": "retired"}, 48 * 3600},
		{"issuer_signing_key_age_seconds", map[string]string{"kid": "cur", "alg": "ES256", "state": "current"}, 3 * 3600},
		{"issuer_signing_key_age_seconds", map[string]string{"kid": "nxt", "alg": "ES256", "state": "next"}, 3600},
		{"issuer_signing_key_current_age_seconds", map[string]string{}, 2 * 3600},
	} {
		if got, ok := metricstest.Value(fams, c.name, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
}

// BenchmarkObserveRequest is the cost every HTTP request pays for its
// latency histogram.
func BenchmarkObserveRequest(b *testing.B) {
	m := metrics.New("bench")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveRequest("/oauth2/token", "POST", 200, time.Millisecond)
		}
	})
}
