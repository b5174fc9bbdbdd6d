package micro

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/issuer-oauth/issuer/internal/adminapi"
	"github.com/issuer-oauth/issuer/internal/config"
	"github.com/issuer-oauth/issuer/internal/secret"
	"github.com/issuer-oauth/issuer/internal/server"
)

// BenchmarkClientAuth measures client_credentials token requests through
// the real server (server.New, embedded store) by client authentication
// method: client_secret_basic, and private_key_jwt with ES256 and EdDSA
// assertions (signed beforehand: the client's cost is not the issuer's).
// It reports each assertion method's throughput as a ratio of
// client_secret_basic's, measured in the same run, in interleaved batches.
func BenchmarkClientAuth(b *testing.B) {
	cfg := config.Default()
	cfg.URL = issuer
	cfg.DataDir = b.TempDir()
	cfg.AdminToken = "bench-admin-token-0123456789abcdefghij"
	cfg.AuthFailuresPerAddress, cfg.AuthFailuresPerClient = 0, 0
	s, err := server.New(context.Background(), cfg, server.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	register := func(md adminapi.ClientMetadata) adminapi.ClientInfo {
		md.Audience = []string{"https://api.example.com"}
		body, _ := json.Marshal(md)
		req := httptest.NewRequest("POST", "/admin/clients", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+cfg.AdminToken)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		var c adminapi.ClientInfo
		if rec.Code != http.StatusCreated || json.Unmarshal(rec.Body.Bytes(), &c) != nil {
			b.Fatalf("register: %d %s", rec.Code, rec.Body)
		}
		return c
	}
	enc := base64.RawURLEncoding.EncodeToString
	es, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	esPub, _ := es.PublicKey.Bytes()
	edPub, ed, _ := ed25519.GenerateKey(rand.Reader)
	basic := register(adminapi.ClientMetadata{ClientName: "basic"})
	keyed := register(adminapi.ClientMetadata{ClientName: "keyed", TokenEndpointAuthMethod: "private_key_jwt",
		JWKS: json.RawMessage(`{"keys":[{"kty":"EC","crv":"P-256","kid":"es","x":"` + enc(esPub[1:33]) + `","y":"` + enc(esPub[33:]) +
			`"},{"kty":"OKP","crv":"Ed25519","kid":"ed","x":"` + enc(edPub) + `"}]}`)})
	basicAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte(basic.ClientID+":"+basic.ClientSecret))

	post := func(b *testing.B, body, auth string) {
		req := httptest.NewRequest("POST", "/oauth2/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("token: %d %s", rec.Code, rec.Body)
		}
	}
	sign := func(m jwt.SigningMethod, key any, kid string, n int) []string {
		out := make([]string, n)
		now := time.Now()
		for i := range out {
			tok := jwt.NewWithClaims(m, jwt.MapClaims{"iss": keyed.ClientID, "sub": keyed.ClientID, "aud": issuer,
				"jti": secret.Random(16), "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()})
			tok.Header["kid"] = kid
			out[i], _ = tok.SignedString(key)
		}
		return out
	}
	assertionBody := func(a string) string {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {keyed.ClientID},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
			"client_assertion":      {a}}.Encode()
	}
	// Each round sends a batch of each kind, interleaved, so that the
	// machine's load falls on all of them alike.
	const batch = 50
	var took [3]time.Duration
	for b.Loop() {
		b.StopTimer()
		es256 := sign(jwt.SigningMethodES256, es, "es", batch)
		eddsa := sign(jwt.SigningMethodEdDSA, ed, "ed", batch)
		b.StartTimer()
		start := time.Now()
		for range batch {
			post(b, "grant_type=client_credentials", basicAuth)
		}
		took[0] += time.Since(start)
		start = time.Now()
		for _, a := range es256 {
			post(b, assertionBody(a), "")
		}
		took[1] += time.Since(start)
		start = time.Now()
		for _, a := range eddsa {
			post(b, assertionBody(a), "")
		}
		took[2] += time.Since(start)
	}
	n := float64(b.N * batch)
	b.ReportMetric(float64(took[0].Nanoseconds())/n, "basic-ns/req")
	b.ReportMetric(float64(took[1].Nanoseconds())/n, "es256-ns/req")
	b.ReportMetric(float64(took[2].Nanoseconds())/n, "eddsa-ns/req")
	// Throughput of each assertion kind as a fraction of
	// client_secret_basic's (1 = as fast).
	b.ReportMetric(float64(took[0])/float64(took[1]), "es256/basic")
	b.ReportMetric(float64(took[0])/float64(took[2]), "eddsa/basic")
}
