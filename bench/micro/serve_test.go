package micro

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/metrics"
	"github.com/issuer-oauth/issuer/internal/request"
	"github.com/issuer-oauth/issuer/internal/server"
)

const issuer = "http://127.0.0.1:8080"

// jwks is a one-key ES256 JWK Set of the issuer's shape.
var jwks = []byte(`{"keys":[{"kty":"EC","kid":"2yA4Vq0n8m6eRZr2KcJ4d2v3gqgq1mN3m2Xn2c3J5u8","use":"sig","alg":"ES256","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`)

type staticKeys struct{ etag string }

func (k staticKeys) JWKS() ([]byte, string, time.Duration) { return jwks, k.etag, 5 * time.Minute }

type okStore struct{}

func (okStore) Ping(context.Context) error { return nil }

func etag(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
}

// newIssuer is the issuer's handler as cmd/issuer wires it (request-id
// log handler, Prometheus metrics) with the given log level: at Info, the
// default, the request lines of the public documents are not written (they
// are debug lines); Debug writes them.
func newIssuer(b *testing.B, level slog.Level) http.Handler {
	b.Helper()
	nop := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	h, err := server.NewHandler(server.HandlerConfig{
		Issuer: issuer, Token: nop, Introspect: nop, Revoke: nop, Admin: nop,
		Keys: staticKeys{etag(jwks)}, Store: okStore{},
		Logger:  slog.New(request.NewLogHandler(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: level}))),
		Metrics: metrics.New("bench"),
	})
	if err != nil {
		b.Fatal(err)
	}
	return h
}

// static serves body at path with the headers the issuer sends, all
// computed once, behind a ServeMux as in any server with several endpoints:
// the "handler serving static bytes".
func static(path string, body []byte, maxAge time.Duration) http.Handler {
	hdr := http.Header{
		"Content-Type":           {"application/json"},
		"Cache-Control":          {"public, max-age=" + strconv.Itoa(int(maxAge.Seconds()))},
		"Etag":                   {etag(body)},
		"Content-Length":         {strconv.Itoa(len(body))},
		"X-Content-Type-Options": {"nosniff"},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for k, v := range hdr {
			h[k] = v
		}
		_, _ = w.Write(body)
	})
	return mux
}

func serve(b *testing.B, h http.Handler, path string) {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("%s: %d", path, rec.Code)
		}
	}
}

// BenchmarkServeJWKS: the issuer's JWKS endpoint against static bytes.
func BenchmarkServeJWKS(b *testing.B) {
	b.Run("issuer", func(b *testing.B) { serve(b, newIssuer(b, slog.LevelInfo), server.PathJWKS) })
	b.Run("issuer-debug-log", func(b *testing.B) { serve(b, newIssuer(b, slog.LevelDebug), server.PathJWKS) })
	b.Run("static", func(b *testing.B) { serve(b, static(server.PathJWKS, jwks, 5*time.Minute), server.PathJWKS) })
}

// BenchmarkServeMetadata: the RFC 8414 document against static bytes.
func BenchmarkServeMetadata(b *testing.B) {
	b.Run("issuer", func(b *testing.B) { serve(b, newIssuer(b, slog.LevelInfo), server.PathMetadata) })
	b.Run("issuer-debug-log", func(b *testing.B) { serve(b, newIssuer(b, slog.LevelDebug), server.PathMetadata) })
	h := newIssuer(b, slog.LevelWarn)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, server.PathMetadata, nil))
	doc := rec.Body.Bytes()
	if !strings.Contains(string(doc), issuer) {
		b.Fatalf("metadata: %s", doc)
	}
	b.Run("static", func(b *testing.B) { serve(b, static(server.PathMetadata, doc, time.Hour), server.PathMetadata) })
}
