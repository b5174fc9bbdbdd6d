// Package metrics exposes the issuer's Prometheus metrics: token requests by
// grant and outcome, HTTP latency per endpoint, store operation latency and
// errors (through a decorator around any store.Store), requests refused by
// the abuse limits, signing-key ages, and the standard Go runtime and process
// collectors. Every label has a small, fixed set of values: no client id,
// path, token or address ever becomes a label.
//
// Each Metrics has its own registry, so several issuers in one process (the
// tests) do not share counters.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the issuer's collectors and serves them.
type Metrics struct {
	reg     *prometheus.Registry
	handler http.Handler

	httpDuration  *prometheus.HistogramVec
	tokenRequests *prometheus.CounterVec
	clientAuth    *prometheus.CounterVec
	rateLimited   *prometheus.CounterVec
	storeDuration *prometheus.HistogramVec
	storeErrors   *prometheus.CounterVec
}

// New returns the metrics of one issuer; version becomes the version label
// of issuer_build_info.
func New(version string) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "issuer_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by endpoint (the route pattern), method and status code.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"endpoint", "method", "code"}),
		tokenRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "issuer_token_requests_total",
			Help: "Token requests by grant_type (client_credentials, refresh_token, password, simplejwt for the SimpleJWT-compatible endpoints, or other) and outcome (success or the RFC 6749 error code).",
		}, []string{"grant_type", "outcome"}),
		clientAuth: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "issuer_client_auth_total",
			Help: "Client authentications at the token, introspection and revocation endpoints by method (client_secret_basic, client_secret_post, private_key_jwt, federated_jwt; a client assertion of an unknown client counts as private_key_jwt) and outcome (success or failure).",
		}, []string{"method", "outcome"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "issuer_rate_limited_total",
			Help: "Requests refused with 429 by an abuse limit: address (failed authentications from one source address), client (failed authentications of one client id), quota (token requests per client), password_address (failed password logins from one address) or admin_address (wrong admin tokens from one address).",
		}, []string{"limit"}),
		storeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "issuer_store_operation_duration_seconds",
			Help:    "Time of a store operation (embedded or Redis), by operation.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"operation"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "issuer_store_errors_total",
			Help: "Failed store operations by operation and kind: unavailable (the store could not be reached or timed out), not_replicated (the change was made, but fewer Redis replicas than redis_wait_replicas acknowledged it in time) or other. Not found, already exists, reused, revoked and conflict are answers, not errors.",
		}, []string{"operation", "kind"}),
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "issuer_build_info",
		Help:        "Always 1; the version label is the issuer's version.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	build.Set(1)
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		build, m.httpDuration, m.tokenRequests, m.clientAuth, m.rateLimited, m.storeDuration, m.storeErrors,
	)
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{EnableOpenMetrics: true})
	return m
}

// ServeHTTP serves the metrics in the Prometheus text format (or
// OpenMetrics, when the scraper asks for it).
func (m *Metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.handler.ServeHTTP(w, r)
}

// ObserveRequest records one HTTP request to endpoint, a route pattern such
// as /oauth2/token ("other" when no route matched).
func (m *Metrics) ObserveRequest(endpoint, method string, code int, d time.Duration) {
	m.httpDuration.WithLabelValues(endpoint, methodLabel(method), codeLabel(code)).Observe(d.Seconds())
}

// codeLabels are the status codes 100-599 as label values, made once:
// strconv.Itoa would allocate on every request.
var codeLabels = func() (l [500]string) {
	for i := range l {
		l[i] = strconv.Itoa(100 + i)
	}
	return l
}()

func codeLabel(code int) string {
	if code >= 100 && code < 600 {
		return codeLabels[code-100]
	}
	return strconv.Itoa(code)
}

// methodLabel keeps the method label to the standard methods: a client may
// send any token as its method.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "other"
}

// TokenRequest records the outcome of one token request: "success" or an
// RFC 6749 error code.
func (m *Metrics) TokenRequest(grantType, outcome string) {
	switch grantType {
	case "client_credentials", "refresh_token", "password", "simplejwt":
	default:
		grantType = "other"
	}
	m.tokenRequests.WithLabelValues(grantType, outcome).Inc()
}

// ClientAuth records one client authentication: method is the
// token_endpoint_auth_method, outcome success or failure.
func (m *Metrics) ClientAuth(method, outcome string) {
	switch method {
	case "client_secret_basic", "client_secret_post", "private_key_jwt", "federated_jwt":
	default:
		method = "other"
	}
	if outcome != "success" {
		outcome = "failure"
	}
	m.clientAuth.WithLabelValues(method, outcome).Inc()
}

// Limited records a request refused by the abuse limit limit.
func (m *Metrics) Limited(limit string) {
	m.rateLimited.WithLabelValues(limit).Inc()
}

// Key describes a published signing key.
type Key struct {
	ID, Alg string
	// State is next, current or retired.
	State string
	// CreatedAt is when the key was made; NotBefore when it began (or begins)
	// signing.
	CreatedAt, NotBefore time.Time
}

// WatchKeys exports the ages of the signing keys that list returns, read at
// each scrape with the clock now (time.Now when nil):
// issuer_signing_key_age_seconds{kid,alg,state} (since each key was created)
// and issuer_signing_key_current_age_seconds (since the current key began
// signing). Call it once.
func (m *Metrics) WatchKeys(list func() []Key, now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	m.reg.MustRegister(keyCollector{list: list, now: now})
}

var (
	keyAgeDesc = prometheus.NewDesc("issuer_signing_key_age_seconds",
		"Age of each published signing key since it was created, by kid, alg and state (next, current or retired).",
		[]string{"kid", "alg", "state"}, nil)
	currentKeyAgeDesc = prometheus.NewDesc("issuer_signing_key_current_age_seconds",
		"Time since the current signing key began signing (its not_before).", nil, nil)
)

type keyCollector struct {
	list func() []Key
	now  func() time.Time
}

func (c keyCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- keyAgeDesc
	ch <- currentKeyAgeDesc
}

func (c keyCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.now()
	for _, ki := range c.list() {
		ch <- prometheus.MustNewConstMetric(keyAgeDesc, prometheus.GaugeValue,
			now.Sub(ki.CreatedAt).Seconds(), ki.ID, ki.Alg, ki.State)
		if ki.State == "current" {
			ch <- prometheus.MustNewConstMetric(currentKeyAgeDesc, prometheus.GaugeValue, now.Sub(ki.NotBefore).Seconds())
		}
	}
}
