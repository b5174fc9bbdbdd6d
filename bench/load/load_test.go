package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/password"
	"github.com/issuer-oauth/issuer/internal/redistest"
	"github.com/issuer-oauth/issuer/internal/store"
	"github.com/issuer-oauth/issuer/internal/store/bolt"
	redisstore "github.com/issuer-oauth/issuer/internal/store/redis"
)

// TestHistogramQuantiles compares the histogram with exact quantiles of
// sorted samples: within its 1/64 resolution.
func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	var xs []int64
	r := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		v := int64(r.ExpFloat64() * float64(3*time.Millisecond))
		xs = append(xs, v)
		h.record(time.Duration(v))
	}
	slices.Sort(xs)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := float64(xs[int(q*float64(len(xs)))-1])
		got := float64(h.quantile(q))
		if d := (got - want) / want; d > 1.0/64 || d < -1.0/64 {
			t.Errorf("q%.3f = %v, want %v (±1.6 %%)", q, time.Duration(got), time.Duration(want))
		}
	}
	if h.quantile(1) != time.Duration(xs[len(xs)-1]) {
		t.Errorf("q1 = %v, want the maximum %v", h.quantile(1), time.Duration(xs[len(xs)-1]))
	}
}

func TestHistogramBuckets(t *testing.T) {
	last := -1
	for v := int64(0); v < 1<<20; v += 1 + v/500 {
		b := bucketOf(v)
		if b < last {
			t.Fatalf("bucketOf(%d) = %d < %d: not monotonic", v, b, last)
		}
		last = b
		if mid := valueOf(b); float64(mid-v) > float64(v)/64+1 || float64(v-mid) > float64(v)/64+1 {
			t.Fatalf("valueOf(bucketOf(%d)) = %d: too far", v, mid)
		}
	}
	var h histogram
	h.record(time.Duration(1<<62 + 5)) // the largest bucket exists
	if h.n != 1 {
		t.Fatal("not recorded")
	}
}

func TestParseStat(t *testing.T) {
	// The command may hold spaces and parentheses.
	stat := "4242 (issuer (x) y) S 1 4242 4242 0 -1 4194560 1 0 0 0 250 125 0 0 20 0 9 0 1 1 1\n"
	got, err := parseStatCPU([]byte(stat))
	if err != nil || got != 3750*time.Millisecond {
		t.Errorf("parseStatCPU = %v, %v; want 3.75s", got, err)
	}
	status := "Name:\tissuer\nVmHWM:\t   22220 kB\nVmRSS:\t   20944 kB\nThreads:\t9\n"
	rss, hwm, err := parseStatusMemory([]byte(status))
	if err != nil || rss != 20944 || hwm != 22220 {
		t.Errorf("parseStatusMemory = %d, %d, %v", rss, hwm, err)
	}
}

// TestConn drives the minimal HTTP/1.1 client against net/http: fixed
// length, chunked, 304 and a server that closes the connection.
func TestConn(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/fixed":
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			w.Write(body)
		case "/chunked":
			for i := range 3 {
				fmt.Fprintf(w, "part%d;", i)
				w.(http.Flusher).Flush()
			}
		case "/304":
			w.WriteHeader(http.StatusNotModified)
		case "/close":
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		}
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	c := newConn(host, 5*time.Second)
	defer c.close()
	for _, tc := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"POST", "/fixed", "grant_type=client_credentials", 200, "grant_type=client_credentials"},
		{"GET", "/chunked", "", 200, "part0;part1;part2;"},
		{"GET", "/304", "", 304, ""},
		{"GET", "/close", "", 200, "bye"},
		{"POST", "/fixed", "again", 200, "again"},
	} {
		status, body, err := c.do(request(tc.method, host, tc.path, nil, []byte(tc.body)))
		if err != nil || status != tc.status || string(body) != tc.want {
			t.Errorf("%s %s = %d %q %v; want %d %q", tc.method, tc.path, status, body, err, tc.status, tc.want)
		}
	}
	if c.dials != 2 {
		t.Errorf("dials = %d, want 2 (one keep-alive connection, one more after Connection: close)", c.dials)
	}
}

func TestJSONString(t *testing.T) {
	doc := []byte(`{"access_token":"a.b.c","token_type":"Bearer","refresh_token":"d.e.f"}`)
	if got, ok := jsonString(doc, "refresh_token"); !ok || got != "d.e.f" {
		t.Errorf("refresh_token = %q, %v", got, ok)
	}
	if _, ok := jsonString(doc, "scope"); ok {
		t.Error("missing key found")
	}
}

func TestMedianAndGrowth(t *testing.T) {
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median = %v", got)
	}
	if got := median([]float64{4, 1, 2, 3}); got != 2.5 {
		t.Errorf("median = %v", got)
	}
	if got := growth([]float64{100, 100, 100, 110, 110, 110}); got != 10 {
		t.Errorf("growth = %v", got)
	}
	if got := slope([]float64{0, 1, 2}, []float64{5, 7, 9}); got != 2 {
		t.Errorf("slope = %v", got)
	}
}

func TestRefusedConfig(t *testing.T) {
	err := fmt.Errorf("issuer exited before it was ready: issuer: ISSUER_SIGNING_ALG (signing_alg): HS256 access tokens are not supported yet\nmore")
	msg, ok := refusedConfig(err)
	if !ok || !strings.HasPrefix(msg, "issuer: ISSUER_SIGNING_ALG") || strings.Contains(msg, "more") {
		t.Errorf("refusedConfig = %q, %v", msg, ok)
	}
	if _, ok := refusedConfig(fmt.Errorf("dial tcp: connection refused")); ok {
		t.Error("a network error taken for a refused configuration")
	}
}

func TestPasswordBody(t *testing.T) {
	u := benchUser{Username: "ann+o'neil@example.com", Password: "p&ss=w rd%"}
	form, err := url.ParseQuery(string(passwordBody(u)))
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"grant_type": "password", "username": u.Username, "password": u.Password} {
		if got := form.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

// TestSeedUsers: the users that the harness writes into each store before
// the issuer starts are read back by the store with hashes that the
// issuer's hasher verifies, and the pool hands them out in turn.
func TestSeedUsers(t *testing.T) {
	pool, err := newUserPool(t.Context(), 2)
	if err != nil {
		t.Fatal(err)
	}
	if a, b, c := pool.take(), pool.take(), pool.take(); a.Username == b.Username || a.Username != c.Username {
		t.Errorf("take: %s, %s, %s; want two users in turn", a.Username, b.Username, c.Username)
	}
	h, err := password.New(password.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		where func(t *testing.T) (dataDir, redisURL string)
	}{
		{"embedded", func(t *testing.T) (string, string) { return t.TempDir(), "" }},
		{"redis", func(t *testing.T) (string, string) { return "", redistest.Start(t).URL() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dataDir, redisURL := tc.where(t)
			if err := seedUsers(t.Context(), dataDir, redisURL, pool.users); err != nil {
				t.Fatal(err)
			}
			var st store.Store
			if redisURL != "" {
				st, err = redisstore.Open(t.Context(), redisURL)
			} else {
				st, err = bolt.Open(filepath.Join(dataDir, "issuer.db"))
			}
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			for _, want := range pool.users {
				u, err := st.GetUser(t.Context(), want.Username)
				if err != nil {
					t.Fatalf("GetUser(%s): %v", want.Username, err)
				}
				if ok, rehash, err := h.Verify(t.Context(), u.PasswordHash, want.Password); !ok || rehash || err != nil {
					t.Errorf("Verify(%s) = %v, %v, %v; want true, false, nil", want.Username, ok, rehash, err)
				}
			}
		})
	}
}

// TestAllScenarios: -scenario all is every scenario but password, which is
// run on its own at fewer connections.
func TestAllScenarios(t *testing.T) {
	if slices.Contains(allScenarios, "password") || len(allScenarios) != len(scenarioNames)-1 {
		t.Errorf("allScenarios = %v; want every one of %v but password", allScenarios, scenarioNames)
	}
}
