package deploytest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/issuer-oauth/issuer/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite deploy/nginx/compose.conf from deploy/nginx/issuer.conf")

// nginxSite is what changes between deploy/nginx/issuer.conf and a
// running copy of it: addresses, files and names.
type nginxSite struct {
	httpListen, httpsListen string    // listen addresses, such as 127.0.0.1:8080 or 8443
	upstreams               [2]string // the two issuer instances
	serverName              string
	cert, key               string // certificate and key files
	cacheDir                string // the proxy_cache_path directory
	accessLog               string
	legacyHTTP2             bool // nginx before 1.25.1: listen … ssl http2 instead of http2 on
}

// render returns deploy/nginx/issuer.conf (src) for site. Each
// substitution must find exactly the expected number of places, so an
// edit of the file that the test would miss fails instead.
func (s nginxSite) render(src string) (string, error) {
	h2 := ""
	if s.legacyHTTP2 {
		h2 = " http2"
	}
	subs := []struct {
		old, new string
		n        int
	}{
		{"listen 80;", "listen " + s.httpListen + ";", 1},
		{"listen 443 ssl;", "listen " + s.httpsListen + " ssl" + h2 + ";", 1},
		{"server 127.0.0.1:8080 max_fails", "server " + s.upstreams[0] + " max_fails", 1},
		{"server 127.0.0.1:8081 max_fails", "server " + s.upstreams[1] + " max_fails", 1},
		{"server_name auth.example.com;", "server_name " + s.serverName + ";", 2},
		{"ssl_certificate     /etc/nginx/tls/issuer.crt;", "ssl_certificate     " + s.cert + ";", 1},
		{"ssl_certificate_key /etc/nginx/tls/issuer.key;", "ssl_certificate_key " + s.key + ";", 1},
		{"proxy_cache_path /var/cache/nginx/issuer ", "proxy_cache_path " + s.cacheDir + " ", 1},
		{"access_log /var/log/nginx/access.log ", "access_log " + s.accessLog + " ", 2},
	}
	if s.legacyHTTP2 {
		subs = append(subs, struct {
			old, new string
			n        int
		}{"    http2 on;\n", "", 1})
	}
	out := src
	for _, sub := range subs {
		if got := strings.Count(out, sub.old); got != sub.n {
			return "", fmt.Errorf("deploy/nginx/issuer.conf: %q appears %d times, want %d; update the substitutions in internal/deploytest/nginx_test.go", sub.old, got, sub.n)
		}
		out = strings.ReplaceAll(out, sub.old, sub.new)
	}
	return out, nil
}

// composeSite is the compose file's Nginx: listening on 8443 (the port of
// ISSUER_URL, the same inside the compose network and on the host), the
// two issuer services as upstreams.
var composeSite = nginxSite{
	httpListen:  "80",
	httpsListen: "8443",
	upstreams:   [2]string{"issuer-1:8080", "issuer-2:8080"},
	serverName:  "localhost",
	cert:        "/etc/nginx/tls/issuer.crt",
	key:         "/etc/nginx/tls/issuer.key",
	cacheDir:    "/var/cache/nginx/issuer",
	accessLog:   "/var/log/nginx/access.log",
}

const composeHeader = `# GENERATED from deploy/nginx/issuer.conf for deploy/compose.yaml: do not
# edit. Change issuer.conf, then run
#   go test ./internal/deploytest -run TestComposeNginxConf -update
# Differences: listen 8443 (the port of the demo's ISSUER_URL), server_name
# localhost, upstreams issuer-1:8080 and issuer-2:8080.

`

func readRepoFile(t testing.TB, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestComposeNginxConf checks that deploy/nginx/compose.conf is
// deploy/nginx/issuer.conf rendered for the compose file, so the compose
// demo runs the configuration CI tests.
func TestComposeNginxConf(t *testing.T) {
	want, err := composeSite.render(readRepoFile(t, "deploy/nginx/issuer.conf"))
	if err != nil {
		t.Fatal(err)
	}
	want = composeHeader + want
	p := filepath.Join(repoRoot(t), "deploy", "nginx", "compose.conf")
	if *update {
		if err := os.WriteFile(p, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("deploy/nginx/compose.conf is not deploy/nginx/issuer.conf rendered for compose; run: go test ./internal/deploytest -run TestComposeNginxConf -update")
	}
}

// TestNginxRenderStrict checks that a changed issuer.conf fails the
// rendering instead of running half-substituted.
func TestNginxRenderStrict(t *testing.T) {
	src := readRepoFile(t, "deploy/nginx/issuer.conf")
	for _, old := range []string{"listen 80;", "server 127.0.0.1:8081 max_fails", "/etc/nginx/tls/issuer.key;"} {
		if _, err := composeSite.render(strings.Replace(src, old, "", 1)); err == nil {
			t.Errorf("rendering without %q: no error", old)
		}
	}
}

// findNginx returns the nginx binary and whether it needs the pre-1.25.1
// listen … http2 syntax. It fails the test when nginx is missing, unless
// ISSUER_SKIP_NGINX=1.
func findNginx(t *testing.T) (bin string, legacyHTTP2 bool) {
	t.Helper()
	if os.Getenv("ISSUER_SKIP_NGINX") == "1" {
		t.Skip("ISSUER_SKIP_NGINX=1: the issuer behind Nginx is not tested")
	}
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr != nil {
			t.Fatal("nginx is not installed: run `make test` (scripts/test-deps.sh installs it with apt-get), " +
				"or set ISSUER_SKIP_NGINX=1 to leave out the test of the issuer behind Nginx")
		}
		bin = "/usr/sbin/nginx"
	}
	out, err := exec.Command(bin, "-v").CombinedOutput()
	m := regexp.MustCompile(`nginx/(\d+)\.(\d+)\.(\d+)`).FindStringSubmatch(string(out))
	if err != nil || m == nil {
		t.Fatalf("%s -v: %v: %s", bin, err, out)
	}
	v := [3]int{}
	for i := range v {
		v[i], _ = strconv.Atoi(m[i+1])
	}
	return bin, slices.Compare(v[:], []int{1, 25, 1}) < 0
}

// stack is the production shape on loopback ports: Nginx with
// deploy/nginx/issuer.conf in front of two issuers (the binary the
// Dockerfile builds) sharing a redis-server started with
// deploy/redis/redis.conf, and the example resource API.
type stack struct {
	root       string // the repository
	dir        string
	issuerURL  string // https://127.0.0.1:port, Nginx: ISSUER_URL of both instances
	httpURL    string // Nginx's plain-http server
	apiURL     string
	audience   string
	adminToken string
	redisAddr  string
	redisPass  string
	upstreams  []string
	issuers    []*testutil.Process
	accessLog  string
	client     *http.Client // trusts the test certificate
	cert       string
	procs      []*testutil.Process
}

func (s *stack) stopAll() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		_ = s.procs[i].Stop()
	}
}

// startStack starts everything, trying other ports when another process
// took one first.
func startStack(t *testing.T) *stack {
	t.Helper()
	nginxBin, legacy := findNginx(t)
	redisBin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server is not installed: run `make test` (scripts/test-deps.sh installs it with apt-get)")
	}
	issuerBin, apiBin := issuerBinary(t), resourceAPIBinary(t)

	// Nginx's workers run as nobody when the test runs as root: the
	// directory must be theirs to read (t.TempDir's parent is 0700).
	dir, err := os.MkdirTemp("", "deploytest-nginx-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &stack{root: repoRoot(t), dir: dir, audience: "https://api.example.com", adminToken: randomHex(32), redisPass: randomHex(16)}
	s.cert, _, err = selfSigned(dir)
	if err != nil {
		t.Fatal(err)
	}
	pem, _ := os.ReadFile(s.cert)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tr := http.DefaultTransport.(*http.Transport).Clone() // ForceAttemptHTTP2: h2 over TLS
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	s.client = &http.Client{
		Transport:     tr,
		Timeout:       15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	for attempt := 0; ; attempt++ {
		err := s.start(nginxBin, legacy, redisBin, issuerBin, apiBin)
		if err == nil {
			break
		}
		s.stopAll()
		if !errors.Is(err, errAddrInUse) || attempt == 2 {
			for _, p := range s.procs {
				t.Logf("%s output:\n%s", p.Name(), p.Tail())
			}
			t.Fatal(err)
		}
		s.procs, s.issuers, s.upstreams = nil, nil, nil
	}
	t.Cleanup(func() {
		s.stopAll()
		if t.Failed() {
			for _, p := range s.procs {
				t.Logf("%s output:\n%s", p.Name(), p.Tail())
			}
			if b, err := os.ReadFile(s.accessLog); err == nil {
				if len(b) > 8<<10 {
					b = b[len(b)-8<<10:]
				}
				t.Logf("nginx access log (end):\n%s", b)
			}
		}
	})
	return s
}

// childEnv is the environment of a child: none of the caller's ISSUER_,
// RESOURCE_ or TLS settings leak in.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "ISSUER_") || strings.HasPrefix(k, "RESOURCE_") || strings.HasPrefix(k, "REDIS") ||
			k == "PORT" || k == "SSL_CERT_FILE" || k == "SSL_CERT_DIR" || k == "PATH" || k == "HOME" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

func (s *stack) start(nginxBin string, legacy bool, redisBin, issuerBin, apiBin string) error {
	ports := make([]int, 6)
	for i := range ports {
		p, err := testutil.PickPort()
		if err != nil {
			return err
		}
		ports[i] = p
	}
	addr := func(i int) string { return "127.0.0.1:" + strconv.Itoa(ports[i]) }
	s.redisAddr = addr(0)
	s.issuerURL = "https://" + addr(1)
	s.httpURL = "http://" + addr(2)
	s.upstreams = []string{addr(3), addr(4)}
	s.apiURL = "http://" + addr(5)

	// Redis, with the compose file's configuration.
	redis, err := startProcess("redis-server", redisBin, []string{
		filepath.Join(s.root, "deploy", "redis", "redis.conf"),
		"--port", strconv.Itoa(ports[0]), "--bind", "127.0.0.1",
		"--dir", s.dir, "--requirepass", s.redisPass, "--daemonize", "no", "--logfile", "",
	}, childEnv())
	if err != nil {
		return err
	}
	s.procs = append(s.procs, redis)
	rc := goredis.NewClient(&goredis.Options{Addr: s.redisAddr, Password: s.redisPass, DialTimeout: time.Second, MaxRetries: -1})
	defer rc.Close()
	if err := redis.WaitReady(context.Background(), 10*time.Second, func(ctx context.Context) error { return rc.Ping(ctx).Err() }); err != nil {
		return addrInUse(fmt.Errorf("redis-server: %w", err), redis.Tail())
	}

	// Two issuers on it, both with the https URL of Nginx as ISSUER_URL.
	secret := randomHex(32)
	var envs [][]string
	for i, up := range s.upstreams {
		env := childEnv(
			"ISSUER_URL="+s.issuerURL,
			"ISSUER_ADDR="+up,
			"ISSUER_REDIS_URL=redis://:"+s.redisPass+"@"+s.redisAddr+"/0",
			"ISSUER_SECRET="+secret,
			"ISSUER_ADMIN_TOKEN="+s.adminToken,
			"ISSUER_DATA_DIR="+filepath.Join(s.dir, "data-"+strconv.Itoa(i)),
			// Nginx on this host: X-Forwarded-For and X-Request-ID from it
			// are believed, as deploy/nginx/issuer.conf says to configure.
			"ISSUER_TRUSTED_PROXIES=127.0.0.1",
			"ISSUER_AUTH_FAILURES_PER_ADDRESS=5",
			"ISSUER_SHUTDOWN_DRAIN_DELAY=0s",
		)
		p, err := startProcess("issuer-"+strconv.Itoa(i+1), issuerBin, []string{"serve"}, env)
		if err != nil {
			return err
		}
		s.procs = append(s.procs, p)
		s.issuers = append(s.issuers, p)
		envs = append(envs, env)
	}
	for i, p := range s.issuers {
		if err := p.WaitReady(context.Background(), 20*time.Second, ready(func() error { return healthcheck(issuerBin, envs[i]) })); err != nil {
			return addrInUse(fmt.Errorf("%s: %w", p.Name(), err), p.Tail())
		}
	}

	// Nginx with deploy/nginx/issuer.conf.
	if err := s.startNginx(nginxBin, legacy, addr(1), addr(2)); err != nil {
		return err
	}

	// The resource API discovers the issuer through Nginx, trusting the
	// test certificate as a deployment trusts its CA.
	api, err := startProcess("resource-api", apiBin, nil, childEnv(
		"ISSUER_URL="+s.issuerURL,
		"RESOURCE_AUDIENCE="+s.audience,
		"RESOURCE_ADDR="+addr(5),
		"SSL_CERT_FILE="+s.cert,
	))
	if err != nil {
		return err
	}
	s.procs = append(s.procs, api)
	// It listens at once and fetches the issuer's keys at the first
	// request with a token.
	err = api.WaitReady(context.Background(), 30*time.Second, ready(func() error {
		code, err := httpGetStatus(s.apiURL + "/healthz")
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("GET /healthz: %d", code)
		}
		return err
	}))
	if err != nil {
		return addrInUse(fmt.Errorf("resource API: %w", err), api.Tail())
	}
	return nil
}

func (s *stack) startNginx(bin string, legacy bool, httpsAddr, httpAddr string) error {
	key := strings.TrimSuffix(s.cert, ".crt") + ".key"
	s.accessLog = filepath.Join(s.dir, "access.log")
	site := nginxSite{
		httpListen:  httpAddr,
		httpsListen: httpsAddr,
		upstreams:   [2]string(s.upstreams),
		serverName:  "auth.example.com 127.0.0.1",
		cert:        s.cert,
		key:         key,
		cacheDir:    filepath.Join(s.dir, "cache"),
		accessLog:   s.accessLog,
		legacyHTTP2: legacy,
	}
	src, err := os.ReadFile(filepath.Join(s.root, "deploy", "nginx", "issuer.conf"))
	if err != nil {
		return err
	}
	conf, err := site.render(string(src))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(s.dir, "issuer.conf"), []byte(conf), 0o644); err != nil {
		return err
	}
	userLine := ""
	if os.Geteuid() == 0 {
		// Workers drop root as in production; Debian's group is nogroup.
		group := "nogroup"
		if _, err := user.LookupGroup(group); err != nil {
			group = "nobody"
		}
		userLine = "user nobody " + group + ";"
	}
	tmp := filepath.Join(s.dir, "tmp")
	main := fmt.Sprintf(`# The test's main file; the site is deploy/nginx/issuer.conf, rendered.
daemon off;
master_process on;
worker_processes 1;
%s
pid %s;
error_log stderr notice;
events { worker_connections 512; }
http {
    default_type application/octet-stream;
    client_body_temp_path %s/body;
    proxy_temp_path %s/proxy;
    fastcgi_temp_path %s/fastcgi;
    uwsgi_temp_path %s/uwsgi;
    scgi_temp_path %s/scgi;
    include %s;
}
`, userLine, filepath.Join(s.dir, "nginx.pid"), tmp, tmp, tmp, tmp, tmp, filepath.Join(s.dir, "issuer.conf"))
	mainPath := filepath.Join(s.dir, "nginx.conf")
	if err := os.WriteFile(mainPath, []byte(main), 0o644); err != nil {
		return err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	args := []string{"-e", "stderr", "-p", s.dir, "-c", mainPath}
	if out, err := exec.Command(bin, append([]string{"-t"}, args...)...).CombinedOutput(); err != nil {
		return fmt.Errorf("nginx -t rejects deploy/nginx/issuer.conf: %v\n%s", err, out)
	}
	// SIGQUIT is Nginx's graceful stop: finish requests, then exit.
	p, err := startProcess("nginx", bin, args, childEnv(), testutil.WithStopSignal(syscall.SIGQUIT))
	if err != nil {
		return err
	}
	s.procs = append(s.procs, p)
	cfg := s.client.Transport.(*http.Transport).TLSClientConfig
	err = p.WaitReady(context.Background(), 10*time.Second, ready(func() error {
		c, err := tls.Dial("tcp", httpsAddr, cfg)
		if err == nil {
			c.Close()
		}
		return err
	}))
	if err != nil {
		return addrInUse(fmt.Errorf("nginx: %w", err), p.Tail())
	}
	return nil
}

// do sends req through s.client and returns the response with its body
// read.
func (s *stack) do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	return doWith(t, s.client, req)
}

func doWith(t *testing.T, c *http.Client, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", req.Method, req.URL, err)
	}
	return resp, body
}

func (s *stack) get(t *testing.T, u string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return s.do(t, req)
}

// tokenRequest posts form to the token endpoint through Nginx with HTTP
// Basic client authentication.
func (s *stack) tokenRequest(t *testing.T, endpoint, id, secret string, form url.Values) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, body := s.do(t, req)
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("token endpoint: %d, not JSON: %q", resp.StatusCode, body)
	}
	return resp, m
}

// checkSecurityHeaders checks that Nginx added each security header once,
// whatever the location and status.
func checkSecurityHeaders(t *testing.T, what string, resp *http.Response) {
	t.Helper()
	for name, want := range map[string]string{
		"Strict-Transport-Security": "max-age=63072000; includeSubDomains",
		"X-Content-Type-Options":    "nosniff",
		"X-Frame-Options":           "DENY",
		"Content-Security-Policy":   "default-src 'none'; frame-ancestors 'none'",
		"Referrer-Policy":           "no-referrer",
	} {
		if got := resp.Header.Values(name); len(got) != 1 || got[0] != want {
			t.Errorf("%s: %s: got %q, want once %q", what, name, got, want)
		}
	}
	if got := resp.Header.Get("Server"); got != "nginx" {
		t.Errorf("%s: Server: got %q, want nginx without a version (server_tokens off)", what, got)
	}
}

// TestNginx runs the issuer as production does: behind Nginx configured
// with deploy/nginx/issuer.conf, two instances on one Redis, and the
// example resource API verifying the tokens it got through Nginx.
func TestNginx(t *testing.T) {
	s := startStack(t)
	ctx := context.Background()

	t.Run("redis runs deploy/redis/redis.conf", func(t *testing.T) {
		rc := goredis.NewClient(&goredis.Options{Addr: s.redisAddr, Password: s.redisPass})
		defer rc.Close()
		for k, want := range map[string]string{"appendonly": "yes", "appendfsync": "always", "maxmemory-policy": "noeviction"} {
			got, err := rc.ConfigGet(ctx, k).Result()
			if err != nil || got[k] != want {
				t.Errorf("CONFIG GET %s: got %v (%v), want %s", k, got, err, want)
			}
		}
	})

	var md map[string]any
	t.Run("metadata over HTTP/2", func(t *testing.T) {
		resp, body := s.get(t, s.issuerURL+"/.well-known/oauth-authorization-server")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("metadata: status %d: %s", resp.StatusCode, body)
		}
		if resp.ProtoMajor != 2 {
			t.Errorf("metadata: protocol %s, want HTTP/2 (http2 on)", resp.Proto)
		}
		checkSecurityHeaders(t, "metadata", resp)
		if err := json.Unmarshal(body, &md); err != nil {
			t.Fatal(err)
		}
		if md["issuer"] != s.issuerURL {
			t.Errorf("issuer: got %v, want ISSUER_URL %s", md["issuer"], s.issuerURL)
		}
		for _, k := range []string{"token_endpoint", "jwks_uri", "registration_endpoint"} {
			if v, _ := md[k].(string); !strings.HasPrefix(v, s.issuerURL+"/") {
				t.Errorf("%s: got %q, want a URL under %s (ISSUER_URL, not the upstream address)", k, v, s.issuerURL)
			}
		}
		resp, _ = s.get(t, s.issuerURL+"/.well-known/oauth-authorization-server", "If-None-Match", resp.Header.Get("ETag"))
		if resp.StatusCode != http.StatusNotModified {
			t.Errorf("metadata with If-None-Match: status %d, want 304", resp.StatusCode)
		}
	})
	if md == nil {
		t.Fatal("no metadata: cannot go on")
	}
	tokenURL := md["token_endpoint"].(string)

	// Admin calls through Nginx from 127.0.0.1, which issuer.conf allows.
	var clientID, clientSecret string
	t.Run("admin API from an allowed address", func(t *testing.T) {
		b, _ := json.Marshal(map[string]any{"client_name": "deploytest", "scope": "read write", "audience": []string{s.audience}})
		req, _ := http.NewRequest(http.MethodPost, md["registration_endpoint"].(string), bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+s.adminToken)
		req.Header.Set("Content-Type", "application/json")
		resp, body := s.do(t, req)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("create client: status %d: %s", resp.StatusCode, body)
		}
		var c struct {
			ID     string `json:"client_id"`
			Secret string `json:"client_secret"`
		}
		if err := json.Unmarshal(body, &c); err != nil {
			t.Fatal(err)
		}
		clientID, clientSecret = c.ID, c.Secret
		checkSecurityHeaders(t, "admin", resp)
	})
	if clientID == "" {
		t.Fatal("no client: cannot go on")
	}

	t.Run("admin API and metrics refused from elsewhere", func(t *testing.T) {
		// 127.0.0.2 is loopback too, but not in issuer.conf's allow list.
		tr := s.client.Transport.(*http.Transport).Clone()
		tr.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}).DialContext
		other := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		defer tr.CloseIdleConnections()
		for _, p := range []string{"/admin/clients", "/metrics"} {
			req, _ := http.NewRequest(http.MethodGet, s.issuerURL+p, nil)
			req.Header.Set("Authorization", "Bearer "+s.adminToken)
			resp, _ := doWith(t, other, req)
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("GET %s from 127.0.0.2: status %d, want 403", p, resp.StatusCode)
			}
			checkSecurityHeaders(t, "403", resp)
		}
	})

	cc := clientcredentials.Config{
		ClientID: clientID, ClientSecret: clientSecret, TokenURL: tokenURL,
		Scopes: []string{"read"}, AuthStyle: oauth2.AuthStyleInHeader,
	}
	octx := context.WithValue(ctx, oauth2.HTTPClient, s.client)
	var readToken *oauth2.Token
	t.Run("client credentials", func(t *testing.T) {
		tok, err := cc.Token(octx)
		if err != nil {
			t.Fatalf("client credentials through Nginx: %v", err)
		}
		if tok.AccessToken == "" || tok.RefreshToken == "" || !strings.EqualFold(tok.TokenType, "Bearer") {
			t.Fatalf("token: got access %t, refresh %t, type %q", tok.AccessToken != "", tok.RefreshToken != "", tok.TokenType)
		}
		readToken = tok
		// The same request by hand, for the headers.
		resp, m := s.tokenRequest(t, tokenURL, clientID, clientSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("token: status %d: %v", resp.StatusCode, m)
		}
		if resp.ProtoMajor != 2 {
			t.Errorf("token: protocol %s, want HTTP/2", resp.Proto)
		}
		if got := resp.Header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("token: Cache-Control %q, want no-store (passed through)", got)
		}
		if got := resp.Header.Get("X-Cache-Status"); got != "" {
			t.Errorf("token: X-Cache-Status %q: the token endpoint must never be cached", got)
		}
		checkSecurityHeaders(t, "token", resp)
	})
	if readToken == nil {
		t.Fatal("no token: cannot go on")
	}

	t.Run("refresh rotation across both instances", func(t *testing.T) {
		first := readToken.RefreshToken
		current := first
		for i := range 4 {
			resp, m := s.tokenRequest(t, tokenURL, clientID, clientSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {current}})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("refresh %d: status %d: %v", i+1, resp.StatusCode, m)
			}
			next, _ := m["refresh_token"].(string)
			if next == "" || next == current {
				t.Fatalf("refresh %d: no new refresh token", i+1)
			}
			current = next
		}
		// Reuse of a retired token, at whichever instance: invalid_grant,
		// and the family is revoked everywhere.
		resp, m := s.tokenRequest(t, tokenURL, clientID, clientSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first}})
		if resp.StatusCode != http.StatusBadRequest || m["error"] != "invalid_grant" {
			t.Errorf("reused refresh token: status %d %v, want 400 invalid_grant", resp.StatusCode, m)
		}
		resp, m = s.tokenRequest(t, tokenURL, clientID, clientSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {current}})
		if resp.StatusCode != http.StatusBadRequest || m["error"] != "invalid_grant" {
			t.Errorf("latest refresh token after reuse detection: status %d %v, want 400 invalid_grant", resp.StatusCode, m)
		}
		// Nginx sent the token requests to both instances.
		used := map[string]bool{}
		for _, l := range accessLog(t, s.accessLog) {
			if l["uri"] == "/oauth2/token" {
				for _, u := range strings.Split(fmt.Sprint(l["upstream"]), ", ") {
					used[u] = true
				}
			}
		}
		for _, up := range s.upstreams {
			if !used[up] {
				t.Errorf("no token request reached the instance at %s (upstreams used: %v)", up, used)
			}
		}
	})

	t.Run("JWKS through the cache", func(t *testing.T) {
		jwksURL := md["jwks_uri"].(string)
		resp, body := s.get(t, jwksURL)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("JWKS: status %d", resp.StatusCode)
		}
		etag := resp.Header.Get("ETag")
		if etag == "" || !strings.Contains(resp.Header.Get("Cache-Control"), "max-age=") {
			t.Errorf("JWKS: ETag %q, Cache-Control %q: want both from the issuer", etag, resp.Header.Get("Cache-Control"))
		}
		checkSecurityHeaders(t, "JWKS", resp)
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(body, &set); err != nil {
			t.Fatal(err)
		}
		// A second fetch is served by Nginx's cache, and a conditional one
		// gets 304.
		resp, _ = s.get(t, jwksURL)
		if got := resp.Header.Get("X-Cache-Status"); got != "HIT" {
			t.Errorf("second JWKS fetch: X-Cache-Status %q, want HIT", got)
		}
		resp, body = s.get(t, jwksURL, "If-None-Match", etag)
		if resp.StatusCode != http.StatusNotModified || len(body) != 0 {
			t.Errorf("JWKS with If-None-Match: status %d, %d bytes; want 304, empty", resp.StatusCode, len(body))
		}
		if got := resp.Header.Get("ETag"); got != etag {
			t.Errorf("304: ETag %q, want %q", got, etag)
		}
		// The access token verifies with the keys from Nginx (go-jose).
		algs := []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.RS256, jose.PS256}
		tok, err := josejwt.ParseSigned(readToken.AccessToken, algs)
		if err != nil {
			t.Fatal(err)
		}
		keys := set.Key(tok.Headers[0].KeyID)
		if len(keys) != 1 || keys[0].Algorithm != tok.Headers[0].Algorithm {
			t.Fatalf("the JWKS from Nginx has no key %q for %s", tok.Headers[0].KeyID, tok.Headers[0].Algorithm)
		}
		var claims josejwt.Claims
		if err := tok.Claims(keys[0].Key, &claims); err != nil {
			t.Fatalf("access token does not verify with the JWKS from Nginx: %v", err)
		}
		if err := claims.ValidateWithLeeway(josejwt.Expected{Issuer: s.issuerURL, AnyAudience: []string{s.audience}, Time: time.Now()}, time.Minute); err != nil {
			t.Errorf("access token claims: %v", err)
		}
	})

	t.Run("resource API verifies tokens from Nginx", func(t *testing.T) {
		call := func(method, token string) (*http.Response, []byte) {
			t.Helper()
			var body io.Reader
			if method == http.MethodPost {
				body = strings.NewReader(`{"name":"through nginx"}`)
			}
			req, _ := http.NewRequest(method, s.apiURL+"/v1/items", body)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			req.Header.Set("Content-Type", "application/json")
			return doWith(t, http.DefaultClient, req)
		}
		if resp, body := call(http.MethodGet, readToken.AccessToken); resp.StatusCode != http.StatusOK {
			t.Errorf("GET /v1/items with a read token: status %d: %s", resp.StatusCode, body)
		}
		if resp, _ := call(http.MethodGet, ""); resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("GET /v1/items without a token: status %d, WWW-Authenticate %q; want 401 Bearer", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		if resp, _ := call(http.MethodPost, readToken.AccessToken); resp.StatusCode != http.StatusForbidden || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "insufficient_scope") {
			t.Errorf("POST /v1/items with a read token: status %d, WWW-Authenticate %q; want 403 insufficient_scope", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		wcc := cc
		wcc.Scopes = []string{"read", "write"}
		wtok, err := wcc.Token(octx)
		if err != nil {
			t.Fatal(err)
		}
		if resp, body := call(http.MethodPost, wtok.AccessToken); resp.StatusCode != http.StatusCreated {
			t.Errorf("POST /v1/items with a write token: status %d: %s", resp.StatusCode, body)
		}
	})

	t.Run("body over the limit stopped by Nginx", func(t *testing.T) {
		form := url.Values{"grant_type": {"client_credentials"}, "pad": {strings.Repeat("a", 100<<10)}}
		req, _ := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(clientID, clientSecret)
		resp, body := s.do(t, req)
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("100 KiB body: status %d, want 413", resp.StatusCode)
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil || m["error"] != "invalid_request" {
			t.Errorf("413 body: got %q, want RFC 6749 JSON with invalid_request", body)
		}
		checkSecurityHeaders(t, "413", resp)
		for _, p := range s.issuers {
			if strings.Contains(p.Output(), `"status":413`) {
				t.Errorf("%s saw the oversized request; Nginx should have stopped it", p.Name())
			}
		}
	})

	t.Run("plain HTTP redirects to HTTPS", func(t *testing.T) {
		resp, _ := s.get(t, s.httpURL+"/.well-known/oauth-authorization-server")
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusMovedPermanently || !strings.HasPrefix(loc, "https://") {
			t.Errorf("http://: status %d, Location %q; want 301 to https://", resp.StatusCode, loc)
		}
	})

	t.Run("access log", func(t *testing.T) {
		lines := accessLog(t, s.accessLog)
		if len(lines) == 0 {
			t.Fatal("nothing logged")
		}
		h2 := false
		for _, l := range lines {
			if strings.Contains(fmt.Sprint(l["uri"]), "?") || l["request_id"] == "" {
				t.Errorf("access log line %v: want a request id and no query string", l)
			}
			h2 = h2 || l["protocol"] == "HTTP/2.0"
		}
		if !h2 {
			t.Error("no HTTP/2.0 request in the access log")
		}
		if b, _ := os.ReadFile(s.accessLog); bytes.Contains(b, []byte(clientSecret)) || bytes.Contains(b, []byte(readToken.AccessToken)) {
			t.Error("the access log contains a secret or a token")
		}
	})

	// A client at 127.0.0.2, which Nginx tells the issuer about.
	tr := s.client.Transport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}).DialContext
	other := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	defer tr.CloseIdleConnections()

	t.Run("client address and request id through Nginx", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, tokenURL, nil) // 405 from the issuer, not cached
		resp, _ := doWith(t, other, req)
		id := resp.Header.Get("X-Request-Id")
		if resp.StatusCode != http.StatusMethodNotAllowed || id == "" {
			t.Fatalf("GET %s: status %d, X-Request-Id %q; want 405 from the issuer with a request id", tokenURL, resp.StatusCode, id)
		}
		// Nginx writes its log line once the response is sent: wait for it.
		t.Logf("waiting for request id %q in Nginx's access log: if it is not there, the issuer's X-Request-Id is not Nginx's (X-Request-ID was not believed)", id)
		testutil.Eventually(t, 5*time.Second, func() bool {
			for _, l := range accessLog(t, s.accessLog) {
				if l["request_id"] == id {
					return true
				}
			}
			return false
		})
		// The issuer logs a request after answering it: wait for the line.
		t.Logf("waiting for an issuer to log request %s", id)
		var line string
		testutil.Eventually(t, 5*time.Second, func() bool {
			for _, p := range s.issuers {
				for _, l := range strings.Split(p.Output(), "\n") {
					if strings.Contains(l, `"request_id":"`+id+`"`) && strings.Contains(l, `"msg":"request"`) {
						line = l
						return true
					}
				}
			}
			return false
		})
		if !strings.Contains(line, `"client_addr":"127.0.0.2"`) {
			t.Errorf("the issuer logged the request as %s; want client_addr 127.0.0.2 from X-Forwarded-For", line)
		}
	})

	t.Run("the issuer's own 429 through Nginx", func(t *testing.T) {
		// Failed authentications from 127.0.0.2 (an unknown client): the
		// issuer counts them for that address, not for Nginx's, and
		// answers 429 with its own Retry-After, which Nginx must not double.
		var resp *http.Response
		var body []byte
		for range 20 {
			req, _ := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader("grant_type=client_credentials"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("no-such-client", "wrong")
			resp, body = doWith(t, other, req)
			if resp.StatusCode == http.StatusTooManyRequests {
				break
			}
		}
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("20 failed authentications from one address: last status %d, want 429 (auth_failures_per_address 5)", resp.StatusCode)
		}
		if ra := resp.Header.Values("Retry-After"); len(ra) != 1 || ra[0] == "" {
			t.Errorf("issuer 429 through Nginx: Retry-After %q, want exactly the issuer's one", ra)
		}
		if !bytes.Contains(body, []byte(`"error"`)) {
			t.Errorf("issuer 429: body %q, want the issuer's JSON error", body)
		}
		checkSecurityHeaders(t, "issuer 429", resp)
		// 127.0.0.1 is not affected: the limit counted the client, not
		// the proxy.
		if resp, m := s.tokenRequest(t, tokenURL, clientID, clientSecret, url.Values{"grant_type": {"client_credentials"}}); resp.StatusCode != http.StatusOK {
			t.Errorf("a client at 127.0.0.1 after another address was limited: status %d %v, want 200", resp.StatusCode, m)
		}
	})

	// Last: it uses up the token endpoint's rate for this address.
	t.Run("token endpoint rate limit", func(t *testing.T) {
		const requests, workers = 400, 10
		var (
			limited atomic.Int64
			once    sync.Once
			wg      sync.WaitGroup
			next    atomic.Int64
		)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= requests {
					resp, err := s.client.Get(tokenURL) // GET: limited like any request, answered 405 by the issuer
					if err != nil {
						once.Do(func() { t.Errorf("GET %s: %v", tokenURL, err) })
						return
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusTooManyRequests {
						continue
					}
					limited.Add(1)
					if resp.Header.Get("Retry-After") != "1" || !bytes.Contains(body, []byte(`"temporarily_unavailable"`)) ||
						resp.Header.Get("Strict-Transport-Security") == "" {
						once.Do(func() {
							t.Errorf("429: Retry-After %q, HSTS %q, body %q; want 1, set, temporarily_unavailable JSON",
								resp.Header.Get("Retry-After"), resp.Header.Get("Strict-Transport-Security"), body)
						})
					}
				}
			}()
		}
		wg.Wait()
		if limited.Load() == 0 {
			t.Errorf("%d token requests at once: none limited (limit_req on /oauth2/token)", requests)
		}
		t.Logf("%d of %d requests limited", limited.Load(), requests)
	})
}

// accessLog parses Nginx's JSON access log.
func accessLog(t *testing.T, p string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("access log line is not JSON: %v: %s", err, line)
		}
		out = append(out, m)
	}
	return out
}
