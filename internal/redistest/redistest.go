// Package redistest starts real redis-server processes for tests: a single
// server (Start) or a three-master Redis Cluster (StartCluster), each on free
// loopback ports with its data in t.TempDir(). There are no fakes: the tests
// of the Redis store and of the packages above it run against the same
// server they meet in production.
//
// redis-server and redis-cli must be on PATH (`make test` installs them).
// A missing binary fails the test; nothing is skipped.
//
// Every process is killed and waited for in t.Cleanup, and on Linux it is
// also killed by the kernel if the test binary dies first (Pdeathsig), so no
// server outlives the test binary.
package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
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

const (
	// readyTimeout bounds how long Start and Restart wait for PING to answer.
	readyTimeout = 10 * time.Second
	// logTail is how much of the server log a failure report includes.
	logTail = 4 << 10
)

// notFoundHint is the message of a test that cannot find the binaries.
const notFoundHint = "not found: run `make test`, which installs it (apt-get install redis-server)"

// Option configures Start.
type Option func(*config)

type config struct {
	aof      bool
	password string
	args     []string
}

// WithAOF turns on the append-only file with appendfsync always, so that
// every acknowledged write survives Stop and Restart.
func WithAOF() Option {
	return func(c *config) { c.aof = true }
}

// WithPassword makes the server require the password (requirepass); URL
// includes it.
func WithPassword(password string) Option {
	return func(c *config) { c.password = password }
}

// WithArgs appends command-line arguments to redis-server, for instance
// WithArgs("--maxmemory", "10mb"). They come after the package's own, so
// they override them.
func WithArgs(args ...string) Option {
	return func(c *config) { c.args = append(c.args, args...) }
}

// Server is a redis-server process owned by a test.
type Server struct {
	t      testing.TB
	bin    string
	dir    string
	port   int
	config config
	extra  []string // arguments set by StartCluster

	mu   sync.Mutex
	proc *testutil.Process // nil when stopped
}

// Start starts a redis-server on a free loopback port with its files in a
// new t.TempDir(), waits until it answers PING, and registers its shutdown
// with t.Cleanup. RDB snapshots are off; WithAOF turns on the append-only
// file.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	var c config
	for _, opt := range opts {
		opt(&c)
	}
	return start(t, c, nil, testutil.FreePort)
}

func start(t testing.TB, c config, extra []string, port func(testing.TB) int) *Server {
	t.Helper()
	bin := lookPath(t, "redis-server")
	s := &Server{t: t, bin: bin, dir: t.TempDir(), config: c, extra: extra}
	t.Cleanup(s.Stop)
	// Another process may take the port between port and the server's
	// bind; try a few ports before giving up.
	var err error
	for range 3 {
		s.port = port(t)
		if err = s.launch(); err == nil {
			return s
		}
		if !strings.Contains(s.log(), "Address already in use") {
			break
		}
	}
	t.Fatalf("redistest: start redis-server: %v\nserver log (%s):\n%s", err, s.logPath(), s.log())
	return nil
}

// Addr returns the server's host:port.
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// URL returns the server's redis:// URL for database 0, with the password
// if WithPassword was given.
func (s *Server) URL() string {
	if s.config.password != "" {
		return "redis://:" + s.config.password + "@" + s.Addr() + "/0"
	}
	return "redis://" + s.Addr() + "/0"
}

// Dir returns the server's working directory (AOF, logs).
func (s *Server) Dir() string { return s.dir }

// Stop kills the server (SIGKILL, as a crash would) and waits for it to
// exit. Writes acknowledged by a WithAOF server are on disk already. Stop
// on a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	s.proc.Kill()
	s.proc = nil
}

// Restart stops the server if it runs and starts it again on the same port
// with the same directory, so a WithAOF server keeps its data. It returns
// when the server answers PING (after loading its data).
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.launch(); err != nil {
		s.t.Fatalf("redistest: restart redis-server on %s: %v\nserver log (%s):\n%s", s.Addr(), err, s.logPath(), s.log())
	}
}

// Do sends one command to the server and returns its reply as text (a
// simple string, an integer or a bulk string); a Redis error reply is
// returned as an error.
func (s *Server) Do(args ...string) (string, error) {
	return command(s.Addr(), s.config.password, args...)
}

// launch starts the process and waits until it is ready.
func (s *Server) launch() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return errors.New("already running")
	}
	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--daemonize", "no",
		"--save", "",
		"--appendonly", "no",
		"--logfile", "",
		"--loglevel", "notice",
	}
	if s.config.aof {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	}
	if s.config.password != "" {
		args = append(args, "--requirepass", s.config.password)
	}
	args = append(args, s.extra...)
	args = append(args, s.config.args...)

	proc, err := startReady("redis-server on "+s.Addr(), s.bin, s.dir, s.logPath(), args, func() error {
		reply, err := command(s.Addr(), s.config.password, "PING")
		if err == nil && reply != "PONG" {
			err = fmt.Errorf("PING answered %q", reply)
		}
		return err
	})
	if err != nil {
		return err
	}
	s.proc = proc
	return nil
}

func (s *Server) logPath() string { return filepath.Join(s.dir, "redis-server.log") }

// log returns the end of the server log.
func (s *Server) log() string { return tailOf(s.logPath()) }

// tailOf returns the end of the log file at path.
func tailOf(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	if len(b) > logTail {
		b = append([]byte("…"), b[len(b)-logTail:]...)
	}
	return string(b)
}

// lookPath finds a binary or fails the test with the way to install it.
func lookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("redistest: %s %s", name, notFoundHint)
	}
	return p
}

// command sends one command in RESP and reads one non-array reply.
func command(addr, password string, args ...string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return "", err
	}
	r := bufio.NewReader(conn)
	if password != "" {
		if _, err := roundTrip(conn, r, "AUTH", password); err != nil {
			return "", fmt.Errorf("AUTH: %w", err)
		}
	}
	return roundTrip(conn, r, args...)
}

func roundTrip(conn net.Conn, r *bufio.Reader, args ...string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return "", err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", fmt.Errorf("bad bulk length %q", line)
		}
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	default:
		return "", fmt.Errorf("unsupported reply %q", line)
	}
}

// startReady starts bin with args in dir, and waits until ready returns
// nil, for at most readyTimeout; it kills the process if it is not ready.
// The process's standard output (where it logs with logfile "") is
// appended to logPath after a line naming the command; its standard error
// (where it reports a bad configuration) is in the error.
func startReady(name, bin, dir, logPath string, args []string, ready func() error) (*testutil.Process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own descriptor
	fmt.Fprintf(logFile, "--- redistest: %s %s\n", bin, strings.Join(args, " "))
	proc, err := testutil.StartProcess(name, bin, args, nil, testutil.WithDir(dir), testutil.WithStdout(logFile))
	if err != nil {
		return nil, err
	}
	if err := proc.WaitReady(context.Background(), readyTimeout, func(context.Context) error { return ready() }); err != nil {
		proc.Kill()
		return nil, err
	}
	return proc, nil
}
