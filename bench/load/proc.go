package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/issuer-oauth/issuer/internal/testutil"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat:
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// cpuTime returns the CPU time (user + system) that process pid has used.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

// parseStatCPU reads utime and stime (fields 14 and 15) of a /proc/<pid>/stat
// line. The command name (field 2) may hold spaces, so fields are counted
// after its closing parenthesis.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime 15.
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("malformed utime/stime in /proc stat")
	}
	return time.Duration(u+s) * time.Second / clockTicks, nil
}

// memory returns VmRSS and VmHWM (peak RSS) of process pid, in KiB.
func memory(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	return parseStatusMemory(b)
}

func parseStatusMemory(b []byte) (rss, hwm int64, err error) {
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("malformed %s in /proc status: %q", k, v)
		}
		if k == "VmRSS" {
			rss = n
		} else {
			hwm = n
		}
	}
	if rss == 0 || hwm == 0 {
		return 0, 0, errors.New("VmRSS or VmHWM missing from /proc status")
	}
	return rss, hwm, nil
}

// process is a server the harness started (the issuer, the baseline or
// redis-server) and the address it listens on. The kernel kills it if the
// harness dies (see testutil.Process).
type process struct {
	*testutil.Process
	addr string
}

// start starts bin with args and env on a free port (port fills the "%d"
// placeholders), and waits until ready answers nil. It tries a few ports if
// one is taken in between.
func start(ctx context.Context, name, bin string, args func(port int) []string, env func(port int) []string, stdout string, ready func(ctx context.Context, addr string) error) (*process, error) {
	var last error
	for range 3 {
		port, err := testutil.PickPort()
		if err != nil {
			return nil, err
		}
		p, err := launch(ctx, name, bin, args(port), env(port), stdout, port, ready)
		if err == nil {
			return p, nil
		}
		last = err
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return nil, last
}

// launch starts bin with its standard output appended to the file stdout
// (its standard error is kept for error messages), and waits up to 60 s
// until ready answers nil.
func launch(ctx context.Context, name, bin string, args, env []string, stdout string, port int, ready func(ctx context.Context, addr string) error) (*process, error) {
	out, err := os.OpenFile(stdout, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer out.Close() // the child has its own descriptor
	tp, err := testutil.StartProcess(name, bin, args, env, testutil.WithStdout(out))
	if err != nil {
		return nil, err
	}
	p := &process{Process: tp, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	err = p.WaitReady(ctx, 60*time.Second, func(ctx context.Context) error { return ready(ctx, p.addr) })
	if err != nil {
		_ = p.Stop()
		return nil, err
	}
	return p, nil
}

// httpReady is a readiness check: GET /readyz answers 200.
func httpReady(ctx context.Context, addr string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
	resp, err := setupClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/readyz: %s", resp.Status)
	}
	return nil
}

// redisServer is the harness's own redis-server and a client to it.
type redisServer struct {
	*process
	client *goredis.Client
}

// startRedis starts redis-server on a free loopback port with its files in
// dir; aof turns on appendonly with appendfsync always (the production
// setting of deploy/redis/redis.conf).
func startRedis(ctx context.Context, dir string, aof bool) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found on PATH (apt-get install redis-server): %w", err)
	}
	args := func(port int) []string {
		a := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
			"--daemonize", "no", "--save", "", "--logfile", "", "--loglevel", "warning",
			"--maxmemory-policy", "noeviction"}
		if aof {
			return append(a, "--appendonly", "yes", "--appendfsync", "always")
		}
		return append(a, "--appendonly", "no")
	}
	ping := func(ctx context.Context, addr string) error {
		c := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1})
		defer c.Close()
		return c.Ping(ctx).Err()
	}
	p, err := start(ctx, "redis-server", bin, args, func(int) []string { return os.Environ() },
		filepath.Join(dir, "redis.log"), ping)
	if err != nil {
		return nil, err
	}
	return &redisServer{process: p, client: goredis.NewClient(&goredis.Options{Addr: p.addr})}, nil
}

func (r *redisServer) url() string { return "redis://" + r.addr + "/0" }

func (r *redisServer) close() {
	r.client.Close()
	_ = r.Stop()
}

// redisStats is what the harness reads from Redis after a run.
type redisStats struct {
	Keys       int64 `json:"keys"`
	UsedMemory int64 `json:"used_memory_bytes"`
}

func (r *redisServer) stats(ctx context.Context) (redisStats, error) {
	n, err := r.client.DBSize(ctx).Result()
	if err != nil {
		return redisStats{}, err
	}
	info, err := r.client.Info(ctx, "memory").Result()
	if err != nil {
		return redisStats{}, err
	}
	var used int64
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			used, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return redisStats{Keys: n, UsedMemory: used}, nil
}
