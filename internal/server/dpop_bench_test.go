package server

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/config"
	"github.com/issuer-oauth/issuer/internal/redistest"
	"github.com/issuer-oauth/issuer/internal/secret"
	"github.com/issuer-oauth/issuer/verify/verifytest"
)

// BenchmarkIssuanceDPoPVsBearer issues client-credentials tokens through
// the real handler, with a DPoP proof and without, alternately, so both
// see the same machine load, and reports the throughput ratio
// (with/without = time without / time with; the target is at least 0.5).
// A proof costs one ES256 verification and one single-use write to the
// store. Proofs are made outside the timed sections. The client may not
// refresh ("cc-only") or may ("with-refresh": each token also opens a
// refresh family, one store write either way).
func BenchmarkIssuanceDPoPVsBearer(b *testing.B) {
	stores := map[string]func(*config.Config){
		"embedded": func(*config.Config) {},
		"redis": func(c *config.Config) {
			srv := redistest.Start(b)
			onRedis(srv.URL(), secret.Random(32))(c)
		},
	}
	for _, name := range []string{"embedded", "redis"} {
		for _, grants := range [][]string{{"client_credentials"}, {"client_credentials", "refresh_token"}} {
			label := "cc-only"
			if len(grants) == 2 {
				label = "with-refresh"
			}
			b.Run(name+"/"+label, func(b *testing.B) {
				cfg := config.Default()
				cfg.URL = "https://issuer.example.com"
				cfg.DataDir = b.TempDir()
				cfg.AdminToken = adminToken
				cfg.AuthFailuresPerAddress, cfg.AuthFailuresPerClient = 0, 0
				stores[name](&cfg)
				clock := newClock()
				app, err := New(context.Background(), cfg, Options{Logger: slog.New(slog.DiscardHandler), Now: clock.Now})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { app.Close() })
				reg, _ := json.Marshal(map[string]any{"scope": "read", "grant_types": grants, "audience": []string{"https://api.example.com"}})
				r := httptest.NewRequest("POST", PathRegister, bytes.NewReader(reg))
				r.Header.Set("Authorization", "Bearer "+adminToken)
				r.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				app.ServeHTTP(w, r)
				var client map[string]any
				if err := json.Unmarshal(w.Body.Bytes(), &client); err != nil || w.Code != 201 {
					b.Fatalf("register: %d %s", w.Code, w.Body)
				}
				id, sec := client["client_id"].(string), client["client_secret"].(string)
				key := verifytest.NewDPoPKey(b, "ES256")
				key.Now = clock.Now
				htu := cfg.URL + PathToken
				body := url.Values{"grant_type": {"client_credentials"}}.Encode()
				request := func(proof string) *http.Request {
					r := httptest.NewRequest("POST", PathToken, strings.NewReader(body))
					r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					r.SetBasicAuth(id, sec)
					if proof != "" {
						r.Header.Set("DPoP", proof)
					}
					return r
				}
				var withProof, without time.Duration
				timed := func(r *http.Request, total *time.Duration) {
					w := httptest.NewRecorder()
					start := time.Now()
					app.ServeHTTP(w, r)
					*total += time.Since(start)
					if w.Code != 200 {
						b.Fatalf("status %d: %s", w.Code, w.Body)
					}
				}
				n := 0
				for b.Loop() {
					rp, rb := request(key.Proof(b, "POST", htu, "", "")), request("")
					if n%2 == 0 {
						timed(rp, &withProof)
						timed(rb, &without)
					} else {
						timed(rb, &without)
						timed(rp, &withProof)
					}
					n++
				}
				b.ReportMetric(float64(withProof.Nanoseconds())/float64(n), "dpop-ns/op")
				b.ReportMetric(float64(without.Nanoseconds())/float64(n), "bearer-ns/op")
				b.ReportMetric(float64(without)/float64(withProof), "throughput-ratio")
			})
		}
	}
}
