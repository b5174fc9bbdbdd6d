package dpopredis_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/issuer-oauth/issuer/verify"
	"github.com/issuer-oauth/issuer/verify/dpopredis"
	"github.com/issuer-oauth/issuer/verify/verifytest"
)

// startRedis starts a real redis-server on a free loopback port for the
// test and returns its address. (verify's tests import nothing of the
// issuer's internal packages, so this is a small copy of what
// internal/redistest does.) A missing redis-server fails the test.
func startRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server not found: run `make test`, which installs it (apt-get install redis-server)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	for i := 0; ; i++ {
		if rdb.Ping(context.Background()).Err() == nil {
			return addr
		}
		if i == 200 {
			t.Fatalf("redis-server on %s does not answer PING", addr)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

const (
	audience = "https://api.example.com"
	apiURL   = "https://api.example.com"
)

// replica is one replica of a resource API: its own Verifier, its own
// Redis client on the shared server, served over HTTP.
func replica(t *testing.T, iss *verifytest.Issuer, addr string) *httptest.Server {
	t.Helper()
	v, err := verify.New(iss.URL, audience)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { rdb.Close() })
	d, err := verify.NewDPoPVerifier(v, verify.DPoPConfig{BaseURL: apiURL, Replay: dpopredis.New(rdb, "")})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d.Middleware("read")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})))
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, srv *httptest.Server, tok, proof string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+"/v1/items", nil)
	req.Header.Set("Authorization", "DPoP "+tok)
	req.Header.Set("DPoP", proof)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestTwoReplicasShareRedis: a proof accepted by one replica is refused
// by the other, and of 20 concurrent requests with one proof over both
// exactly one passes.
func TestTwoReplicasShareRedis(t *testing.T) {
	addr := startRedis(t)
	iss := verifytest.NewIssuer(t)
	a, b := replica(t, iss, addr), replica(t, iss, addr)
	key := verifytest.NewDPoPKey(t, "ES256")
	tok := iss.DPoPToken(t, key.Thumbprint(), audience, "read")
	url := apiURL + "/v1/items"

	proof := key.Proof(t, "GET", url, tok, "")
	if got := get(t, a, tok, proof); got != 204 {
		t.Fatalf("at A: %d", got)
	}
	if got := get(t, b, tok, proof); got != 401 {
		t.Fatalf("replayed at B: %d, want 401", got)
	}
	if got := get(t, b, tok, key.Proof(t, "GET", url, tok, "")); got != 204 {
		t.Fatalf("a new proof at B: %d", got)
	}

	proof = key.Proof(t, "GET", url, tok, "")
	var (
		wg sync.WaitGroup
		mu sync.Mutex
		ok int
	)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if get(t, []*httptest.Server{a, b}[i%2], tok, proof) == 204 {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ok != 1 {
		t.Fatalf("%d of 20 concurrent requests with one proof passed, want 1", ok)
	}
}

// TestCacheExpiry: the key expires when the proof would be too old, and a
// Redis that cannot be reached is an error, not a pass.
func TestCacheExpiry(t *testing.T) {
	addr := startRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	c := dpopredis.New(rdb, "p:")
	ctx := context.Background()
	until := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	if err := c.Use(ctx, "jkt:jti", until); err != nil {
		t.Fatal(err)
	}
	if err := c.Use(ctx, "jkt:jti", until); !errors.Is(err, verify.ErrDPoPReplay) {
		t.Fatalf("second Use = %v, want ErrDPoPReplay", err)
	}
	at, err := rdb.PExpireTime(ctx, "p:jkt:jti").Result()
	if err != nil || at != time.Duration(until.UnixMilli())*time.Millisecond {
		t.Fatalf("PEXPIRETIME = %v, %v; want %d ms", at, err, until.UnixMilli())
	}

	down := dpopredis.New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1}), "")
	if err := down.Use(ctx, "x", until); err == nil || errors.Is(err, verify.ErrDPoPReplay) {
		t.Fatalf("Use with Redis down = %v, want an error that is not a replay", err)
	}
}
