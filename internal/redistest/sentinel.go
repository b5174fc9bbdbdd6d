package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/testutil"
)

// Sentinel is a Redis Sentinel process owned by a test, monitoring one
// master.
type Sentinel struct {
	t      testing.TB
	bin    string
	dir    string
	port   int
	name   string
	master *Server
	config config

	mu   sync.Mutex
	proc *testutil.Process // nil when stopped
}

// StartSentinel starts a Redis Sentinel on a free loopback port that
// monitors master under name (quorum 1, so that it alone can fail it
// over), waits until it answers SENTINEL get-master-addr-by-name with the
// master's address, and registers its shutdown with t.Cleanup. It runs
// redis-sentinel when it is on PATH and `redis-server <conf> --sentinel`
// otherwise. If master has a password, the Sentinel authenticates to it.
// WithPassword makes the Sentinel itself require a password (requirepass);
// WithArgs appends command-line arguments after the configuration file,
// such as WithArgs("--loglevel", "debug"). WithAOF is ignored.
func StartSentinel(t testing.TB, master *Server, name string, opts ...Option) *Sentinel {
	t.Helper()
	var c config
	for _, opt := range opts {
		opt(&c)
	}
	s := &Sentinel{t: t, dir: t.TempDir(), name: name, master: master, config: c}
	if bin, err := exec.LookPath("redis-sentinel"); err == nil {
		s.bin = bin
	} else {
		s.bin = lookPath(t, "redis-server")
	}
	t.Cleanup(s.Stop)
	var err error
	for range 3 {
		s.port = testutil.FreePort(t)
		if err = s.launch(); err == nil {
			return s
		}
		if !strings.Contains(s.log(), "Address already in use") {
			break
		}
	}
	t.Fatalf("redistest: start sentinel: %v\nsentinel log (%s):\n%s", err, s.logPath(), s.log())
	return nil
}

// Addr returns the Sentinel's host:port.
func (s *Sentinel) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Name returns the name under which the Sentinel monitors the master.
func (s *Sentinel) Name() string { return s.name }

// URL returns the redis:// URL of the Sentinel in the form that
// ISSUER_REDIS_URL takes with ISSUER_REDIS_SENTINEL_MASTER: the Sentinel's
// address, the master's password (if any) as user info, and the Sentinel's
// password (if any) as sentinel_password.
func (s *Sentinel) URL() string {
	u := url.URL{Scheme: "redis", Host: s.Addr()}
	if p := s.master.config.password; p != "" {
		u.User = url.UserPassword("", p)
	}
	if p := s.config.password; p != "" {
		u.RawQuery = url.Values{"sentinel_password": {p}}.Encode()
	}
	return u.String()
}

// Do sends one command to the Sentinel and returns its reply as text, as
// Server.Do does; an array reply is returned with its elements separated
// by spaces (for SENTINEL get-master-addr-by-name: "127.0.0.1 6379").
func (s *Sentinel) Do(args ...string) (string, error) {
	reply, err := sentinelCommand(s.Addr(), s.config.password, args...)
	return strings.Join(reply, " "), err
}

// Stop kills the Sentinel and waits for it to exit. Stop on a stopped
// Sentinel does nothing.
func (s *Sentinel) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	s.proc.Kill()
	s.proc = nil
}

// launch writes the configuration file, starts the process and waits
// until the Sentinel names the master.
func (s *Sentinel) launch() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	host, port, _ := net.SplitHostPort(s.master.Addr())
	conf := []string{
		"port " + strconv.Itoa(s.port),
		"bind 127.0.0.1",
		"daemonize no",
		`logfile ""`,
		"dir " + strconv.Quote(s.dir),
		fmt.Sprintf("sentinel monitor %s %s %s 1", s.name, host, port),
	}
	if p := s.master.config.password; p != "" {
		conf = append(conf, fmt.Sprintf("sentinel auth-pass %s %s", s.name, p))
	}
	if p := s.config.password; p != "" {
		conf = append(conf, "requirepass "+p)
	}
	// Sentinel rewrites its configuration file, so it must be its own.
	confPath := filepath.Join(s.dir, "sentinel.conf")
	if err := os.WriteFile(confPath, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	args := []string{confPath}
	if filepath.Base(s.bin) != "redis-sentinel" {
		args = append(args, "--sentinel")
	}
	args = append(args, s.config.args...)

	// Ready when it names the master.
	want := strings.Replace(s.master.Addr(), ":", " ", 1)
	proc, err := startReady("sentinel on "+s.Addr(), s.bin, s.dir, s.logPath(), args, func() error {
		reply, err := sentinelCommand(s.Addr(), s.config.password, "SENTINEL", "get-master-addr-by-name", s.name)
		if got := strings.Join(reply, " "); err == nil && got != want {
			err = fmt.Errorf("SENTINEL get-master-addr-by-name answered %q, want %q", got, want)
		}
		return err
	})
	if err != nil {
		return err
	}
	s.proc = proc
	return nil
}

func (s *Sentinel) logPath() string { return filepath.Join(s.dir, "sentinel.log") }

// log returns the end of the Sentinel log.
func (s *Sentinel) log() string { return tailOf(s.logPath()) }

// sentinelCommand sends one command in RESP and reads one reply, which may
// be an array of simple values (nil elements are left out); a non-array
// reply is a list of one.
func sentinelCommand(addr, password string, args ...string) ([]string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return nil, err
	}
	r := bufio.NewReader(conn)
	if password != "" {
		if _, err := roundTrip(conn, r, "AUTH", password); err != nil {
			return nil, fmt.Errorf("AUTH: %w", err)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return nil, err
	}
	line, err := readLine(r)
	if err != nil {
		return nil, err
	}
	if line[0] != '*' {
		v, ok, err := readValue(r, line)
		if err != nil || !ok {
			return nil, err
		}
		return []string{v}, nil
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil {
		return nil, fmt.Errorf("bad array length %q", line)
	}
	var reply []string
	for range n {
		line, err := readLine(r)
		if err != nil {
			return nil, err
		}
		v, ok, err := readValue(r, line)
		if err != nil {
			return nil, err
		}
		if ok {
			reply = append(reply, v)
		}
	}
	return reply, nil
}

// readLine reads one RESP line without its CRLF.
func readLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply")
	}
	return line, nil
}

// readValue reads the simple value that starts with line; ok is false for
// a nil (RESP2 $-1 or *-1, RESP3 _).
func readValue(r *bufio.Reader, line string) (v string, ok bool, err error) {
	switch line[0] {
	case '+', ':':
		return line[1:], true, nil
	case '_':
		return "", false, nil
	case '-':
		return "", false, errors.New(line[1:])
	case '$', '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n >= 0 && line[0] == '*' {
			return "", false, fmt.Errorf("unsupported reply %q", line)
		}
		if n < 0 {
			return "", false, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", false, err
		}
		return string(buf[:n]), true, nil
	default:
		return "", false, fmt.Errorf("unsupported reply %q", line)
	}
}
