// Command resource-api is an example resource API that verifies the
// issuer's access tokens on its own, offline, with the public package
// github.com/issuer-oauth/issuer/verify.
//
// It discovers the issuer's keys from ISSUER_URL's RFC 8414 metadata (at
// the first request that needs them, so it may start before the issuer),
// requires tokens whose aud contains RESOURCE_AUDIENCE, and listens on
// RESOURCE_ADDR (default :8090). It accepts bearer tokens and DPoP-bound
// tokens (RFC 9449) with their proofs; the URL a proof's htu must name is
// RESOURCE_URL followed by the request's path (RESOURCE_URL is the API's
// public base URL, such as https://api.example.com; when unset,
// "http://" + the request's Host, which is right only without a proxy in
// front):
//
//	GET  /v1/items   needs scope read
//	POST /v1/items   needs scope write
//	GET  /healthz    needs nothing
//
// Tokens that carry a status claim (the issuer's status_list setting) are
// checked against the issuer's Token Status Lists: a revoked token is
// refused within the list's ttl.
//
// Failures follow RFC 6750: 401 with WWW-Authenticate: Bearer (plus
// error="invalid_token" when a token was presented but is not valid) and a
// second challenge DPoP algs="…" (with error="invalid_dpop_proof" when a
// DPoP request's proof is not valid), 403 with error="insufficient_scope"
// when a scope is missing. Proofs are remembered in memory: replicas of
// an API would share verify/dpopredis instead.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/issuer-oauth/issuer/verify"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	if err := run(log); err != nil {
		fmt.Fprintln(os.Stderr, "resource-api:", err)
		os.Exit(1)
	}
}

// newVerifier returns the API's verifier of the issuer's tokens for aud:
// keys discovered from the issuer's metadata, and the status of tokens
// that carry one checked in the issuer's Token Status Lists.
func newVerifier(issuer, aud string, opts ...verify.Option) (*verify.Verifier, error) {
	return verify.New(issuer, aud, append([]verify.Option{verify.WithStatusLists(verify.StatusListConfig{})}, opts...)...)
}

func run(log *slog.Logger) error {
	issuer := envOr("ISSUER_URL", "http://localhost:8080")
	aud := os.Getenv("RESOURCE_AUDIENCE")
	if aud == "" {
		return errors.New("RESOURCE_AUDIENCE is empty; set it to the audience (aud) this API requires, such as https://api.example.com")
	}
	addr := envOr("RESOURCE_ADDR", ":8090")
	publicURL := os.Getenv("RESOURCE_URL")

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	// No I/O here: the first request with a token fetches the keys.
	// Verified tokens are cached (verify.WithTokenCache; on by default),
	// and the keys stop verifying 24 h after the last successful fetch
	// (verify.WithMaxStaleness): the log says when fetches fail. Tokens
	// with a status claim are checked against their status list
	// (newVerifier).
	v, err := newVerifier(issuer, aud, verify.WithFetchHook(logKeyFetches(log)))
	if err != nil {
		return fmt.Errorf("ISSUER_URL %s, RESOURCE_AUDIENCE %s: %w", issuer, aud, err)
	}
	h, err := newHandler(v, publicURL)
	if err != nil {
		return fmt.Errorf("RESOURCE_URL %q: %w", publicURL, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("RESOURCE_ADDR: %w", err)
	}
	srv := &http.Server{
		Handler:           logRequests(log, h),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("listening", "addr", ln.Addr().String(), "issuer", issuer, "audience", aud)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

// logKeyFetches returns a fetch hook that logs the failed fetches of the
// issuer's keys: a warning while the cached keys still verify tokens, an
// error once they are too stale to (every token is then refused). Wire
// such a hook to your alerting.
func logKeyFetches(log *slog.Logger) func(verify.FetchEvent) {
	return func(ev verify.FetchEvent) {
		if ev.Err == nil {
			return
		}
		level, msg := slog.LevelWarn, "fetching the issuer's keys failed; the cached keys still verify tokens"
		switch {
		case ev.Stale:
			level, msg = slog.LevelError, "fetching the issuer's keys failed and the cached keys are too stale: every token is refused"
		case ev.LastSuccess.IsZero():
			msg = "fetching the issuer's keys failed; no token can be verified yet"
		}
		log.LogAttrs(context.Background(), level, msg, slog.String("url", ev.URL),
			slog.String("err", ev.Err.Error()), slog.Duration("age", ev.Age))
	}
}

// item is what the API stores.
type item struct {
	ID        int       `json:"id"`
	Name      string    `json:"name"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
}

type store struct {
	mu    sync.Mutex
	items []item
}

// newHandler routes the API; each route states the scope it needs.
// publicURL is the API's public base URL (RESOURCE_URL), for the htu of
// DPoP proofs; when empty, "http://" + the request's Host.
func newHandler(v *verify.Verifier, publicURL string) (http.Handler, error) {
	cfg := verify.DPoPConfig{BaseURL: publicURL}
	if publicURL == "" {
		cfg.RequestURL = func(r *http.Request) string { return "http://" + r.Host + r.URL.EscapedPath() }
	}
	d, err := verify.NewDPoPVerifier(v, cfg)
	if err != nil {
		return nil, err
	}
	s := &store{items: []item{}}
	mux := http.NewServeMux()
	mux.Handle("GET /v1/items", d.Middleware("read")(http.HandlerFunc(s.list)))
	mux.Handle("POST /v1/items", d.Middleware("write")(http.HandlerFunc(s.create)))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	return mux, nil
}

func (s *store) list(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	items := append([]item{}, s.items...) // [] rather than null when empty
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
}

func (s *store) create(w http.ResponseWriter, r *http.Request) {
	claims, _ := verify.ClaimsFromContext(r.Context())
	var in struct {
		Name string `json:"name"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil || strings.TrimSpace(in.Name) == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{
			"error": "invalid_request", "error_description": `send a JSON object {"name": "…"}`,
		})
		return
	}
	s.mu.Lock()
	it := item{ID: len(s.items) + 1, Name: in.Name, CreatedBy: claims.ClientID, CreatedAt: time.Now().UTC()}
	s.items = append(s.items, it)
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, it)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// logRequests logs one line per request, with the client of a verified
// token; never the token.
func logRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		attrs := []slog.Attr{
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", rec.status),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
		}
		if ch := rec.Header().Get("WWW-Authenticate"); ch != "" {
			attrs = append(attrs, slog.String("challenge", ch))
		}
		log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
