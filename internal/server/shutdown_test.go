package server

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/config"
	"github.com/issuer-oauth/issuer/internal/testutil"
)

// serveInProcess runs the server as `issuer serve` does (the configuration
// from env plus a fresh data directory and listen address, Run with the
// real http.Server and its timeouts and limits) and waits until it is
// ready. stop ends it and returns its exit code (0 when Run returned nil)
// and its log.
func serveInProcess(t *testing.T, env map[string]string) (addr string, stop func() (int, string)) {
	t.Helper()
	addr = testutil.FreeAddr(t)
	full := map[string]string{
		"ISSUER_ADDR": addr, "ISSUER_URL": "http://" + addr,
		"ISSUER_DATA_DIR": filepath.Join(t.TempDir(), "data"), "ISSUER_ADMIN_TOKEN": adminToken,
		"ISSUER_SHUTDOWN_DRAIN_DELAY": "0s",
	}
	for k, v := range env {
		full[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	logs := &testutil.Buffer{}
	done := make(chan int, 1)
	cfg, err := config.Load("", func(k string) string { return full[k] })
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	go func() {
		srv, err := New(ctx, cfg, Options{Logger: log, Version: "test"})
		if err == nil {
			defer srv.Close()
			err = srv.Run(ctx)
		}
		if err != nil {
			fmt.Fprintf(logs, "server failed: %v\n", err)
			done <- 1
			return
		}
		done <- 0
	}()
	var once sync.Once
	var code int
	stop = func() (int, string) {
		once.Do(func() { cancel(); code = <-done })
		return code, logs.String()
	}
	t.Cleanup(func() { stop() })
	testutil.Eventually(t, 10*time.Second, func() bool {
		select {
		case c := <-done:
			t.Fatalf("serve exited %d: %s", c, logs)
		default:
		}
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return addr, stop
}

// waitClosed reads from conn until the server closes it, and fails the test
// if it does not within d (a bound on a hang, not a performance check).
func waitClosed(t *testing.T, conn net.Conn, d time.Duration, what string) string {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(d))
	got, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("%s: the server kept the connection open for %v", what, d)
	}
	return string(got)
}

// TestServerLimits checks the http.Server that `issuer serve` runs: header
// and body limits, and the read-header, read and idle timeouts.
func TestServerLimits(t *testing.T) {
	addr, _ := serveInProcess(t, map[string]string{
		"ISSUER_READ_HEADER_TIMEOUT": "300ms", "ISSUER_READ_TIMEOUT": "1s", "ISSUER_IDLE_TIMEOUT": "300ms",
	})
	base := "http://" + addr

	t.Run("headers over 16 KiB", func(t *testing.T) {
		req, _ := http.NewRequest("GET", base+"/healthz", nil)
		req.Header.Set("X-Padding", strings.Repeat("a", 40<<10))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("status %d, want 431", resp.StatusCode)
		}
	})
	t.Run("body over max_body_bytes", func(t *testing.T) {
		form := "grant_type=client_credentials&pad=" + strings.Repeat("a", 70<<10)
		resp, err := http.Post(base+"/oauth2/token", "application/x-www-form-urlencoded", strings.NewReader(form))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), `"invalid_request"`) {
			t.Errorf("status %d %s, want 413 invalid_request", resp.StatusCode, body)
		}
	})
	t.Run("headers sent too slowly", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: %s\r\nX-Slow: ", addr) // never finished
		if got := waitClosed(t, conn, 10*time.Second, "incomplete headers"); strings.Contains(got, "200 OK") {
			t.Errorf("answered incomplete headers: %q", got)
		}
	})
	t.Run("body sent too slowly", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /oauth2/token HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\n"+
			"Content-Length: 100\r\n\r\ngrant_type", addr) // 10 of 100 bytes
		if got := waitClosed(t, conn, 10*time.Second, "incomplete body"); strings.Contains(got, "200 OK") {
			t.Errorf("answered an incomplete body with 200: %q", got)
		}
	})
	t.Run("idle keep-alive connection", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Close {
			t.Fatalf("keep-alive request: %d, close %v", resp.StatusCode, resp.Close)
		}
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := br.ReadByte(); err == nil || !errors.Is(err, io.EOF) && !isReset(err) {
			t.Errorf("idle connection: read gave %v, want the server to close it", err)
		}
	})
}

func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

// TestGracefulShutdownUnderLoad sends SIGTERM to a real `issuer serve`
// process while clients keep asking for tokens, the way they do behind a
// load balancer: each client stops sending new requests once it sees
// /readyz fail (the balancer taking the instance out). Not one request may
// fail, a request in flight when the listener closes completes, and the
// process exits 0.
func TestGracefulShutdownUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildIssuer(t)
	addr := testutil.FreeAddr(t)
	base := "http://" + addr
	p := startProcess(t, bin, map[string]string{
		"ISSUER_ADDR": addr, "ISSUER_URL": base, "ISSUER_DATA_DIR": filepath.Join(t.TempDir(), "data"),
		"ISSUER_ADMIN_TOKEN": adminToken, "ISSUER_SHUTDOWN_DRAIN_DELAY": "1s", "ISSUER_LOG_LEVEL": "info",
	})
	ti := &testIssuer{URL: base, base: base, clock: testutil.NewClock(time.Now().UTC().Truncate(time.Second))}
	id, sec := ti.createClient(t, map[string]any{})
	form := url.Values{"grant_type": {"client_credentials"}}.Encode()

	// A request in flight across the whole shutdown: headers and half the
	// body now, the rest once the listener is closed.
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	basic := base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id) + ":" + url.QueryEscape(sec)))
	fmt.Fprintf(slow, "POST /oauth2/token HTTP/1.1\r\nHost: %s\r\nAuthorization: Basic %s\r\n"+
		"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s",
		addr, basic, len(form), form[:len(form)/2])

	var (
		stop      = make(chan struct{}) // the balancer took the instance out
		ok        atomic.Int64
		mu        sync.Mutex
		failures  []string
		wg        sync.WaitGroup
		closeSeen atomic.Bool
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		failures = append(failures, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	const workers = 8
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{}}
			defer client.CloseIdleConnections()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("POST", base+"/oauth2/token", strings.NewReader(form))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(id, sec)
				resp, err := client.Do(req)
				if err != nil {
					fail("worker %d request %d: %v", w, n, err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !strings.Contains(string(body), `"access_token"`) {
					fail("worker %d request %d: %d %s", w, n, resp.StatusCode, body)
					return
				}
				if resp.Close {
					closeSeen.Store(true)
				}
				ok.Add(1)
			}
		}()
	}
	testutil.Eventually(t, 30*time.Second, func() bool { return ok.Load() >= 100 })

	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The balancer: polls /readyz on fresh connections until it fails.
	probe := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	testutil.Eventually(t, 10*time.Second, func() bool {
		resp, err := probe.Get(base + "/readyz")
		if err != nil {
			t.Fatalf("/readyz unreachable before it reported 503: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	// Responses during the drain close their connection, so that clients
	// open their next one elsewhere.
	testutil.Eventually(t, 900*time.Millisecond, closeSeen.Load)
	close(stop)
	wg.Wait()
	before := ok.Load()

	// The listener closes after the drain delay; the slow request still
	// completes.
	testutil.Eventually(t, 15*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	if _, err := io.WriteString(slow, form[len(form)/2:]); err != nil {
		t.Fatalf("finishing the in-flight request: %v", err)
	}
	slow.SetReadDeadline(time.Now().Add(15 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(slow), nil)
	if err != nil {
		t.Fatalf("in-flight request: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"access_token"`) {
		t.Errorf("in-flight request: %d %s, want a token", resp.StatusCode, body)
	}

	select {
	case <-p.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("the process did not exit after SIGTERM: %s", p.Tail())
	}
	if err := p.Err(); err != nil {
		t.Errorf("exit: %v, want status 0: %s", err, p.Tail())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(failures) > 0 {
		t.Errorf("%d failed requests (of %d served) during the shutdown:\n%s", len(failures), before, strings.Join(failures, "\n"))
	}
	logs := p.Output()
	for _, msg := range []string{`"msg":"shutting down"`, `"msg":"stopped"`} {
		if !strings.Contains(logs, msg) {
			t.Errorf("no %s log line", msg)
		}
	}
	t.Logf("%d token requests served, none failed", before)
}
