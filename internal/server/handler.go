package server

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/issuer-oauth/issuer/internal/oauth"
	"github.com/issuer-oauth/issuer/internal/request"
)

// Paths of the endpoints; the metadata document advertises them under the
// issuer URL, so clients never need to know them.
const (
	PathMetadata   = "/.well-known/oauth-authorization-server"
	PathJWKS       = "/.well-known/jwks.json"
	PathToken      = "/oauth2/token"
	PathIntrospect = "/oauth2/introspect"
	PathRevoke     = "/oauth2/revoke"
	PathAdmin      = "/admin/"
	PathRegister   = "/admin/clients"
	PathMetrics    = "/metrics"
	// PathStatusLists is where the Token Status Lists are, each under
	// its id (statuslist.PathPrefix).
	PathStatusLists = "/statuslists/"
)

// Listener says which routes a Handler serves.
type Listener int

const (
	// ListenerAll serves every route on one listener: the OAuth endpoints,
	// the documents, health, the admin API and the metrics.
	ListenerAll Listener = iota
	// ListenerPublic serves all but the admin API and the metrics, which
	// answer 404: another listener (ListenerAdmin) serves them.
	ListenerPublic
	// ListenerAdmin serves the admin API, the metrics and health only.
	ListenerAdmin
)

// JWKS provides the JWK Set document (keys.Keys).
type JWKS interface {
	JWKS() (body []byte, etag string, maxAge time.Duration)
}

// Checker reports whether a dependency is usable (the store's Ping).
type Checker interface {
	Ping(ctx context.Context) error
}

// Metrics serves GET /metrics and observes every request (metrics.Metrics).
type Metrics interface {
	http.Handler
	// ObserveRequest records one request to endpoint, the path of the route
	// that served it ("other" when none did).
	ObserveRequest(endpoint, method string, code int, d time.Duration)
}

// StatusLists serves the Token Status Lists (statuslist.Lists).
type StatusLists interface {
	ServeList(w http.ResponseWriter, r *http.Request)
	ServeAggregation(w http.ResponseWriter, r *http.Request)
	AggregationURI() string
}

// HandlerConfig configures the HTTP interface.
type HandlerConfig struct {
	// Issuer is the issuer identifier; every advertised URL starts with it.
	Issuer string
	// GrantTypes are the grant types the token endpoint serves, advertised
	// in the metadata; client_credentials and refresh_token when empty.
	GrantTypes []string
	// AuthMethods are the client authentication methods of the token,
	// introspection and revocation endpoints; client_secret_basic and
	// client_secret_post when empty.
	AuthMethods []string
	// AuthSigningAlgs are the algorithms of client assertions
	// (private_key_jwt); none advertised when empty.
	AuthSigningAlgs []string
	// SigningAlg is the algorithm of the access-token signing key, advertised
	// in the metadata so that resource APIs can pin it.
	SigningAlg string
	// DPoPAlgs are the algorithms of the DPoP proofs the token endpoint
	// accepts (RFC 9449 §5.1), advertised in the metadata.
	DPoPAlgs []string
	// Token serves the token endpoint.
	Token http.Handler
	// Introspect and Revoke serve RFC 7662 introspection and RFC 7009
	// revocation.
	Introspect, Revoke http.Handler
	// Admin serves /admin/; nil turns the admin API off.
	Admin http.Handler
	// AdminURL is the base URL of the admin API, which starts the
	// metadata's registration_endpoint; Issuer when empty.
	AdminURL string
	// Listener is which routes this handler serves; ListenerAll, the zero
	// value, serves them all.
	Listener Listener
	// SimpleJWT, when not nil, serves the SimpleJWT-compatible endpoints
	// under SimpleJWTPath (which ends with a slash).
	SimpleJWT     http.Handler
	SimpleJWTPath string
	// Keys publishes the JWK Set.
	Keys JWKS
	// Store is pinged by /readyz.
	Store Checker
	// Logger receives one line per request.
	Logger *slog.Logger
	// Metrics, when not nil, serves GET /metrics and observes every request.
	Metrics Metrics
	// TrustedProxies are the networks of the reverse proxies whose
	// X-Forwarded-For (the client address) and X-Request-Id are believed;
	// empty trusts nobody.
	TrustedProxies []netip.Prefix
	// TrustedProxyHops, when more than 0, replaces TrustedProxies: every
	// peer is the last of that many proxies, and the client address is the
	// X-Forwarded-For entry that many places from the right
	// (request.Hops).
	TrustedProxyHops int
	// StatusLists, when not nil, serves GET /statuslists/{id} and the
	// aggregation endpoint GET /statuslists, advertised in the metadata.
	StatusLists StatusLists
}

// Handler is the issuer's HTTP interface: the routes and what every request
// goes through.
type Handler struct {
	cfg      HandlerConfig
	mux      *http.ServeMux
	metaDoc  *document
	jwksDoc  atomic.Pointer[document] // the last JWK Set served
	draining chan struct{}
	// clientAddr finds the client address and whether a proxy's headers
	// were believed (request.Proxies or request.Hops).
	clientAddr func(*http.Request) (netip.Addr, bool)
}

// NewHandler builds the handler.
func NewHandler(cfg HandlerConfig) (*Handler, error) {
	s := &Handler{cfg: cfg, mux: http.NewServeMux(), draining: make(chan struct{}), clientAddr: request.Proxies(cfg.TrustedProxies).ClientAddr}
	if cfg.TrustedProxyHops > 0 {
		s.clientAddr = request.Hops(cfg.TrustedProxyHops).ClientAddr
	}
	md, err := s.buildMetadata()
	if err != nil {
		return nil, err
	}
	s.metaDoc = newDocument(md, etag(md), time.Hour)

	public, operator := cfg.Listener != ListenerAdmin, cfg.Listener != ListenerPublic
	if public {
		s.mux.Handle(PathToken, cfg.Token)
		s.mux.Handle(PathIntrospect, cfg.Introspect)
		s.mux.Handle(PathRevoke, cfg.Revoke)
		s.handleGET(PathJWKS, s.serveJWKS)
		if cfg.SimpleJWT != nil {
			s.mux.Handle(cfg.SimpleJWTPath, cfg.SimpleJWT)
		}
		if cfg.StatusLists != nil {
			s.mux.HandleFunc("GET "+PathStatusLists+"{id}", cfg.StatusLists.ServeList)
			s.mux.HandleFunc("GET "+strings.TrimSuffix(PathStatusLists, "/"), cfg.StatusLists.ServeAggregation)
		}
	}
	// Both listeners serve the metadata (the CLI checks at the admin
	// listener that it reached the issuer it meant) and answer the probes,
	// and both turn unready on shutdown.
	s.handleGET(PathMetadata, s.serveMetadata)
	// RFC 8414 §3.1: an issuer with a path (https://host/auth) has its
	// metadata at /.well-known/oauth-authorization-server/auth on the host.
	if u, err := url.Parse(cfg.Issuer); err == nil && strings.Trim(u.Path, "/") != "" {
		s.handleGET(PathMetadata+"/"+strings.Trim(u.Path, "/"), s.serveMetadata)
	}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeStatus(w, http.StatusOK, "ok")
	})
	s.mux.HandleFunc("GET /readyz", s.serveReady)
	if operator && cfg.Metrics != nil {
		s.mux.Handle("GET "+PathMetrics, cfg.Metrics)
	}
	if operator && cfg.Admin != nil {
		s.mux.Handle(PathAdmin, cfg.Admin)
		s.mux.Handle(PathRegister, cfg.Admin)
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"error":"not_found","error_description":"no endpoint at this path; see %s%s"}`+"\n", cfg.Issuer, PathMetadata)
	})
	return s, nil
}

// handleGET routes GET (and HEAD) of path to h, and other methods to a 405
// that names the allowed ones: without it the catch-all would answer 404.
func (s *Handler) handleGET(path string, h http.HandlerFunc) {
	s.mux.HandleFunc("GET "+path, h)
	s.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "GET, HEAD")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusMethodNotAllowed)
		fmt.Fprintf(w, `{"error":"invalid_request","error_description":"method %s not allowed; use GET"}`+"\n", methodName(r.Method))
	})
}

// methodName returns m when it is a standard method, else "other": the
// method is client input and goes into a JSON string.
func methodName(m string) string {
	switch m {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete,
		http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

// ServeHTTP serves a request. It gives the request an id — the
// X-Request-Id of a trusted proxy when it sends a sane one, a new random one
// otherwise — echoed in the X-Request-Id response header, and a client
// address (see request.Proxies.ClientAddr and request.Hops.ClientAddr); both travel in the request
// context, and every log line written with that context carries the id.
// Then it logs the request and observes it in the metrics.
func (s *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	client, viaProxy := s.clientAddr(r)
	id := r.Header.Get("X-Request-Id")
	if !viaProxy || !request.ValidID(id) {
		id = request.NewID()
	}
	ctx := request.With(r.Context(), id, client)
	r = r.WithContext(ctx)

	// The recorder and the request id's header value in one allocation.
	x := &struct {
		rec statusRecorder
		id  [1]string
	}{rec: statusRecorder{ResponseWriter: w, status: http.StatusOK}, id: [1]string{id}}
	rec := &x.rec
	// Header keys are written in canonical form and fixed values shared:
	// Header.Set would canonicalise and allocate on every request.
	h := rec.Header()
	h["X-Content-Type-Options"] = nosniff
	h["X-Request-Id"] = x.id[:]
	if s.isDraining() {
		// Shutting down: the client opens its next connection elsewhere
		// instead of reusing this one.
		h["Connection"] = connClose
	}
	s.mux.ServeHTTP(rec, r)
	d := time.Since(start)

	endpoint := endpointOf(r.Pattern) // the mux set it on this request
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.ObserveRequest(endpoint, r.Method, rec.status, d)
	}
	level := slog.LevelInfo
	if rec.status < 400 && (quiet[endpoint] || strings.HasPrefix(endpoint, PathMetadata+"/")) {
		level = slog.LevelDebug // probes and scrapes would drown the log
	}
	if !s.cfg.Logger.Enabled(ctx, level) {
		return // and spare building the attributes
	}
	// The query string is not logged: it may carry credentials.
	s.cfg.Logger.LogAttrs(ctx, level, "request",
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", rec.status),
		slog.Int64("bytes", rec.bytes),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
		slog.String("client_addr", addrString(client)),
		slog.String("remote", r.RemoteAddr),
	)
}

// Shared header values; net/http never modifies them, and a handler that
// adds to one gets a new slice (their capacity is their length).
var (
	nosniff   = []string{"nosniff"}
	connClose = []string{"close"}
	jsonType  = []string{"application/json"}
)

// quiet are the endpoints whose successful requests are logged at debug
// level: probes, scrapes, and the two public documents, which every
// resource API fetches anonymously and a flood of which would cost more in
// log lines than in serving them. Their failures are logged at info.
var quiet = map[string]bool{"/healthz": true, "/readyz": true, PathMetrics: true, PathJWKS: true, PathMetadata: true}

// endpointOf returns the path of the route pattern p ("GET /healthz" gives
// /healthz), or "other" for no route or the catch-all: a bounded set of
// values for metrics.
func endpointOf(p string) string {
	if i := strings.IndexByte(p, ' '); i >= 0 {
		p = p[i+1:]
	}
	if p == "" || p == "/" {
		return "other"
	}
	return p
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func (s *Handler) isDraining() bool {
	select {
	case <-s.draining:
		return true
	default:
		return false
	}
}

// Drain makes /readyz fail, so load balancers stop sending traffic before
// shutdown, and makes every response close its connection.
func (s *Handler) Drain() {
	select {
	case <-s.draining:
	default:
		close(s.draining)
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	wrote  bool
}

// Unwrap lets http.ResponseController reach the connection (the backup
// lifts the write deadline).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wrote = true
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// metadata is the RFC 8414 authorization-server metadata.
type metadata struct {
	Issuer                            string   `json:"issuer"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	IntrospectionEndpoint             string   `json:"introspection_endpoint"`
	RevocationEndpoint                string   `json:"revocation_endpoint"`
	RegistrationEndpoint              string   `json:"registration_endpoint,omitempty"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	IntrospectionAuthMethodsSupported []string `json:"introspection_endpoint_auth_methods_supported"`
	RevocationAuthMethodsSupported    []string `json:"revocation_endpoint_auth_methods_supported"`
	// The algorithms of client assertions (private_key_jwt), RFC 8414 §2.
	TokenEndpointAuthSigningAlgs         []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	IntrospectionEndpointAuthSigningAlgs []string `json:"introspection_endpoint_auth_signing_alg_values_supported,omitempty"`
	RevocationEndpointAuthSigningAlgs    []string `json:"revocation_endpoint_auth_signing_alg_values_supported,omitempty"`
	// Extensions: the access-token algorithm, and whether verifying access
	// tokens needs a shared secret (HS256), which the JWKS never holds.
	AccessTokenSigningAlgs      []string `json:"access_token_signing_alg_values_supported,omitempty"`
	AccessTokenSharedSecretUsed bool     `json:"access_token_shared_secret_required,omitempty"`
	// DPoPSigningAlgs are the DPoP proof algorithms (RFC 9449 §5.1).
	DPoPSigningAlgs []string `json:"dpop_signing_alg_values_supported,omitempty"`
	// StatusListAggregation lists the live Token Status Lists
	// (draft-ietf-oauth-status-list, section 9.3).
	StatusListAggregation string `json:"status_list_aggregation_endpoint,omitempty"`
}

func (s *Handler) buildMetadata() ([]byte, error) {
	iss := strings.TrimSuffix(s.cfg.Issuer, "/")
	authMethods := s.cfg.AuthMethods
	if len(authMethods) == 0 {
		authMethods = []string{oauth.AuthClientSecretBasic, oauth.AuthClientSecretPost}
	}
	grants := s.cfg.GrantTypes
	if len(grants) == 0 {
		grants = []string{oauth.GrantClientCredentials, oauth.GrantRefreshToken}
	}
	md := metadata{
		Issuer:                            iss,
		TokenEndpoint:                     iss + PathToken,
		JWKSURI:                           iss + PathJWKS,
		IntrospectionEndpoint:             iss + PathIntrospect,
		RevocationEndpoint:                iss + PathRevoke,
		GrantTypesSupported:               grants,
		ResponseTypesSupported:            []string{},
		TokenEndpointAuthMethodsSupported: authMethods,
		IntrospectionAuthMethodsSupported: authMethods,
		RevocationAuthMethodsSupported:    authMethods,
		DPoPSigningAlgs:                   s.cfg.DPoPAlgs,

		TokenEndpointAuthSigningAlgs:         s.cfg.AuthSigningAlgs,
		IntrospectionEndpointAuthSigningAlgs: s.cfg.AuthSigningAlgs,
		RevocationEndpointAuthSigningAlgs:    s.cfg.AuthSigningAlgs,
	}
	if s.cfg.SigningAlg != "" {
		md.AccessTokenSigningAlgs = []string{s.cfg.SigningAlg}
		md.AccessTokenSharedSecretUsed = s.cfg.SigningAlg == "HS256"
	}
	if s.cfg.Admin != nil {
		base := strings.TrimSuffix(s.cfg.AdminURL, "/")
		if base == "" {
			base = iss
		}
		md.RegistrationEndpoint = base + PathRegister
	}
	if s.cfg.StatusLists != nil {
		md.StatusListAggregation = s.cfg.StatusLists.AggregationURI()
	}
	return json.MarshalIndent(md, "", "  ")
}

func (s *Handler) serveMetadata(w http.ResponseWriter, r *http.Request) {
	s.metaDoc.serve(w, r)
}

func (s *Handler) serveJWKS(w http.ResponseWriter, r *http.Request) {
	body, tag, maxAge := s.cfg.Keys.JWKS()
	d := s.jwksDoc.Load()
	if d == nil || d.etag[0] != tag || len(d.body) != len(body) || d.maxAge != maxAge {
		// The keys changed (or this is the first request): prepare the
		// headers of the new set once. The ETag is a hash of the body.
		d = newDocument(body, tag, maxAge)
		s.jwksDoc.Store(d)
	}
	d.serve(w, r)
}

// document is a public JSON document (the metadata, the JWK Set) with its
// response headers computed once.
type document struct {
	body                              []byte
	maxAge                            time.Duration
	etag, cacheControl, contentLength []string
}

func newDocument(body []byte, tag string, maxAge time.Duration) *document {
	// A shared cache (Nginx) may hand out a copy at the end of its own
	// lifetime without an Age header, and its client then keeps it for
	// max-age again; s-maxage = max-age/2 keeps that sum (1.5 x max-age)
	// inside the 2 x max-age for which a next key is published before it
	// signs.
	secs := int(maxAge.Seconds())
	return &document{
		body:          body,
		maxAge:        maxAge,
		etag:          []string{tag},
		cacheControl:  []string{"public, max-age=" + strconv.Itoa(secs) + ", s-maxage=" + strconv.Itoa(secs/2)},
		contentLength: []string{strconv.Itoa(len(body))},
	}
}

// serve writes the document with Cache-Control, ETag and conditional GET
// (304 on a matching If-None-Match).
func (d *document) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h["Content-Type"] = jsonType
	h["Cache-Control"] = d.cacheControl
	h["Etag"] = d.etag
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, d.etag[0]) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h["Content-Length"] = d.contentLength
	_, _ = w.Write(d.body)
}

// etagMatch implements the weak comparison of If-None-Match (RFC 9110 §13.1.2).
func etagMatch(header, tag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == tag {
			return true
		}
	}
	return false
}

func etag(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
}

func (s *Handler) serveReady(w http.ResponseWriter, r *http.Request) {
	if s.isDraining() {
		writeStatus(w, http.StatusServiceUnavailable, "shutting down")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.cfg.Store.Ping(ctx); err != nil {
		s.cfg.Logger.WarnContext(r.Context(), "readiness check failed", "err", err)
		writeStatus(w, http.StatusServiceUnavailable, "store unreachable")
		return
	}
	if body, _, _ := s.cfg.Keys.JWKS(); len(body) == 0 {
		writeStatus(w, http.StatusServiceUnavailable, "no signing keys")
		return
	}
	writeStatus(w, http.StatusOK, "ready")
}

func writeStatus(w http.ResponseWriter, code int, status string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"status": status})
}
