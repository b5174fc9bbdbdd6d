package micro

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/grant"
	"github.com/issuer-oauth/issuer/internal/keys"
	"github.com/issuer-oauth/issuer/internal/oauth"
	"github.com/issuer-oauth/issuer/internal/redistest"
	"github.com/issuer-oauth/issuer/internal/secret"
	"github.com/issuer-oauth/issuer/internal/server"
	"github.com/issuer-oauth/issuer/internal/store"
	"github.com/issuer-oauth/issuer/internal/store/bolt"
	"github.com/issuer-oauth/issuer/internal/store/redis"
)

// stack is the issuer's HTTP handler wired as cmd/issuer wires it, on one
// store, with the request log going to io.Discard.
type stack struct {
	h    http.Handler
	auth map[bool]string // Authorization header of the client with / without refresh
	// st and hasher register further clients.
	st     tokenStore
	hasher *secret.Hasher
}

type tokenStore interface {
	grant.Store
	keys.Store
	server.Checker
	CreateClient(ctx context.Context, c store.Client) error
}

func newStack(b *testing.B, st tokenStore, alg string) *stack {
	b.Helper()
	ctx := context.Background()
	master := []byte(secret.Random(32))
	k, err := keys.New(ctx, st, keys.Config{
		Issuer:        issuer,
		Alg:           alg,
		EncryptionKey: secret.Derive(master, secret.PurposeKeyEncryption),
		RefreshKey:    secret.Derive(master, secret.PurposeRefreshTokens),
	})
	if err != nil {
		b.Fatal(err)
	}
	hasher := secret.NewHasher(secret.Derive(master, secret.PurposeClientSecrets))
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	tokens := grant.New(grant.Config{Issuer: issuer, AccessTTL: 5 * time.Minute, RefreshTTL: 24 * time.Hour}, st, k, hasher, log)
	h, err := server.NewHandler(server.HandlerConfig{
		Issuer: issuer, Token: tokens, Introspect: http.HandlerFunc(tokens.Introspection),
		Revoke: http.HandlerFunc(tokens.Revocation), Keys: k, Store: st, Logger: log,
	})
	if err != nil {
		b.Fatal(err)
	}
	s := &stack{h: h, auth: map[bool]string{}, st: st, hasher: hasher}
	for _, refresh := range []bool{true, false} {
		id, sec := secret.Random(16), secret.NewClientSecret()
		grants := []string{oauth.GrantClientCredentials}
		if refresh {
			grants = append(grants, oauth.GrantRefreshToken)
		}
		now := time.Now()
		err := st.CreateClient(ctx, store.Client{ID: id, Name: id, SecretHash: hasher.Hash(id, sec), GrantTypes: grants,
			Scopes: []string{"read", "write"}, Audiences: []string{"https://api.example.com"},
			AuthMethod: oauth.AuthClientSecretBasic, CreatedAt: now, UpdatedAt: now})
		if err != nil {
			b.Fatal(err)
		}
		s.auth[refresh] = "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+sec))
	}
	return s
}

// post runs one token-endpoint request and returns the response fields.
func (s *stack) post(b *testing.B, path string, refresh bool, body string) map[string]any {
	m, err := s.try(path, refresh, body)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// try is post for other goroutines than the benchmark's (RunParallel),
// which must not call b.Fatal.
func (s *stack) try(path string, refresh bool, body string) (map[string]any, error) {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", s.auth[refresh])
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return nil, fmt.Errorf("%s: %d %s", path, rec.Code, rec.Body)
	}
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		return nil, err
	}
	return m, nil
}

func stores(b *testing.B) map[string]func() tokenStore {
	return map[string]func() tokenStore{
		"embedded": func() tokenStore {
			st, err := bolt.Open(filepath.Join(b.TempDir(), "issuer.db"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Close() })
			return st
		},
		"redis": func() tokenStore {
			srv := redistest.Start(b)
			st, err := redis.Open(context.Background(), srv.URL())
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Close() })
			return st
		},
	}
}

// BenchmarkTokenEndpoint is the whole token endpoint behind the issuer's
// handler (routing, form, client authentication, go-oauth2, signing, the
// store, the JSON response and the request log), one request at a time, on
// each store: the code path the load harness drives over HTTP, for
// -cpuprofile. ES256 as by default.
func BenchmarkTokenEndpoint(b *testing.B) {
	for _, name := range []string{"embedded", "redis"} {
		open := stores(b)[name]
		b.Run(name+"/cc", func(b *testing.B) {
			s := newStack(b, open(), "ES256")
			b.ReportAllocs()
			for b.Loop() {
				s.post(b, server.PathToken, true, "grant_type=client_credentials&scope=read+write")
			}
		})
		// 64 concurrent requests, as the load harness sends: contention on
		// the store's writer (bbolt has one) shows here.
		b.Run(name+"/cc-parallel64", func(b *testing.B) {
			s := newStack(b, open(), "ES256")
			b.SetParallelism(max(64/runtime.GOMAXPROCS(0), 1))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.try(server.PathToken, true, "grant_type=client_credentials&scope=read+write"); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		b.Run(name+"/cc-norefresh", func(b *testing.B) {
			s := newStack(b, open(), "ES256")
			b.ReportAllocs()
			for b.Loop() {
				s.post(b, server.PathToken, false, "grant_type=client_credentials&scope=read+write")
			}
		})
		b.Run(name+"/refresh", func(b *testing.B) {
			s := newStack(b, open(), "ES256")
			rt := s.post(b, server.PathToken, true, "grant_type=client_credentials")["refresh_token"].(string)
			b.ReportAllocs()
			for b.Loop() {
				rt = s.post(b, server.PathToken, true, "grant_type=refresh_token&refresh_token="+rt)["refresh_token"].(string)
			}
		})
		b.Run(name+"/introspect", func(b *testing.B) {
			s := newStack(b, open(), "ES256")
			at := s.post(b, server.PathToken, false, "grant_type=client_credentials")["access_token"].(string)
			b.ReportAllocs()
			for b.Loop() {
				s.post(b, server.PathIntrospect, false, "token="+at)
			}
		})
	}
}
