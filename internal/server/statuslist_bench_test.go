package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/issuer-oauth/issuer/internal/config"
	"github.com/issuer-oauth/issuer/internal/redistest"
	"github.com/issuer-oauth/issuer/internal/secret"
)

// BenchmarkIssuanceStatusList issues client-credentials tokens through a
// real server (New, its handler in process) with status_list off and on,
// side by side, on each store, with and without refresh tokens. The
// figure of interest is the ratio of on to off in one run (the target:
// on ≥ 0.9 of off's rate).
func BenchmarkIssuanceStatusList(b *testing.B) {
	redisURL, master := redistest.Start(b).URL(), secret.Random(32)
	for _, st := range []string{"embedded", "redis"} {
		for _, grants := range []string{"cc", "cc+refresh"} {
			for _, on := range []bool{false, true} {
				name := st + "/" + grants + "/status_list=off"
				if on {
					name = st + "/" + grants + "/status_list=on"
				}
				b.Run(name, func(b *testing.B) {
					cfg := config.Default()
					cfg.URL, cfg.DataDir, cfg.AdminToken, cfg.StatusList = "http://issuer.test", b.TempDir(), adminToken, on
					if st == "redis" {
						cfg.RedisURL, cfg.Secret = redisURL, master
					}
					app, err := New(context.Background(), cfg, Options{Logger: slog.New(slog.DiscardHandler)})
					if err != nil {
						b.Fatal(err)
					}
					defer app.Close()
					gt := `["client_credentials"]`
					if grants == "cc+refresh" {
						gt = `["client_credentials","refresh_token"]`
					}
					req := httptest.NewRequest("POST", "/admin/clients", strings.NewReader(`{"grant_types":`+gt+`,"audience":["https://api.example.com"]}`))
					req.Header.Set("Authorization", "Bearer "+adminToken)
					req.Header.Set("Content-Type", "application/json")
					w := httptest.NewRecorder()
					app.ServeHTTP(w, req)
					var c map[string]any
					if err := json.Unmarshal(w.Body.Bytes(), &c); err != nil || w.Code != http.StatusCreated {
						b.Fatalf("create client: %d %s", w.Code, w.Body)
					}
					auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(
						url.QueryEscape(c["client_id"].(string))+":"+url.QueryEscape(c["client_secret"].(string))))
					b.ReportAllocs()
					for b.Loop() {
						req := httptest.NewRequest("POST", "/oauth2/token", strings.NewReader("grant_type=client_credentials"))
						req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
						req.Header.Set("Authorization", auth)
						w := httptest.NewRecorder()
						app.ServeHTTP(w, req)
						if w.Code != http.StatusOK {
							b.Fatalf("token: %d %s", w.Code, w.Body)
						}
					}
				})
			}
		}
	}
}
