package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Scenarios.
var scenarioNames = []string{"cc", "cc-norefresh", "refresh", "jwks", "metadata", "introspect", "password"}

// allScenarios are what -scenario all runs: every scenario but password,
// whose logins wait for a hashing slot and so want far fewer connections
// than the others' 64 (BENCHMARKS.md, "Password grant").
var allScenarios = slices.DeleteFunc(slices.Clone(scenarioNames), func(s string) bool { return s == "password" })

// worker drives one keep-alive connection.
type worker struct {
	t      *target
	sc     string
	conn   *conn
	req    []byte // the request of static scenarios
	auth   string
	rt     string    // refresh: the current refresh token of this worker's chain
	access string    // introspect: the token this worker introspects
	users  *userPool // password: the users whose logins it sends
	hist   histogram
	ok     uint64
	errs   map[string]uint64
	// restarts counts refresh chains started again after a failure.
	restarts uint64
}

const ccBody = "grant_type=client_credentials&scope=read+write"

func newWorker(t *target, sc string, timeout time.Duration) *worker {
	w := &worker{t: t, sc: sc, conn: newConn(t.proc.addr, timeout), errs: map[string]uint64{}}
	host := t.proc.addr
	switch sc {
	case "cc", "refresh":
		w.auth = t.clients[clientRefresh].basic()
	case "cc-norefresh", "introspect":
		w.auth = t.clients[clientNoRefresh].basic()
	case "password":
		w.auth = t.clients[clientPassword].basic()
	}
	switch sc {
	case "cc", "cc-norefresh":
		w.req = request("POST", host, t.paths.Token, [][2]string{{"Authorization", w.auth}}, []byte(ccBody))
	case "jwks":
		w.req = request("GET", host, t.paths.JWKS, nil, nil)
	case "metadata":
		w.req = request("GET", host, "/.well-known/oauth-authorization-server", nil, nil)
	}
	return w
}

// tokenRequest is the client-credentials request of this worker's client.
func (w *worker) tokenRequest() []byte {
	return request("POST", w.t.proc.addr, w.t.paths.Token, [][2]string{{"Authorization", w.auth}}, []byte(ccBody))
}

// prepare gets what the worker's requests need (a refresh token, an access
// token), outside the measurement; a few tries at most.
func (w *worker) prepare() error {
	switch w.sc {
	case "refresh":
		return w.newChain()
	case "introspect":
		tok, err := w.fetchToken("access_token")
		if err != nil {
			return err
		}
		w.access = tok
		w.req = request("POST", w.t.proc.addr, w.t.paths.Introspection, [][2]string{{"Authorization", w.auth}}, []byte("token="+tok))
	}
	return nil
}

func (w *worker) newChain() error {
	tok, err := w.fetchToken("refresh_token")
	if err != nil {
		return err
	}
	w.rt = tok
	return nil
}

func (w *worker) fetchToken(field string) (string, error) {
	var last error
	for range 5 {
		status, body, err := w.conn.do(w.tokenRequest())
		switch {
		case err != nil:
			last = err
		case status != 200:
			last = fmt.Errorf("token endpoint answered %d: %s", status, bytes.TrimSpace(body))
		default:
			if tok, ok := jsonString(body, field); ok {
				return tok, nil
			}
			last = fmt.Errorf("token response without %s: %s", field, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return "", last
}

// next returns the request to send now.
func (w *worker) next() []byte {
	switch w.sc {
	case "refresh":
		return request("POST", w.t.proc.addr, w.t.paths.Token, [][2]string{{"Authorization", w.auth}},
			[]byte("grant_type=refresh_token&refresh_token="+w.rt))
	case "password":
		return request("POST", w.t.proc.addr, w.t.paths.Token, [][2]string{{"Authorization", w.auth}},
			passwordBody(w.users.take()))
	}
	return w.req
}

// check classifies a response: "" for success, else an error class.
func (w *worker) check(status int, body []byte) string {
	if status != 200 {
		return strconv.Itoa(status)
	}
	switch w.sc {
	case "refresh":
		rt, ok := jsonString(body, "refresh_token")
		if !ok {
			return "no-refresh-token"
		}
		w.rt = rt
	case "introspect":
		if !bytes.Contains(body, []byte(`"active":true`)) {
			return "inactive"
		}
	case "cc":
		if !bytes.Contains(body, []byte(`"refresh_token"`)) {
			return "no-refresh-token"
		}
	case "password":
		if !bytes.Contains(body, []byte(`"access_token"`)) {
			return "no-access-token"
		}
	}
	return ""
}

// errClass names a transport error briefly.
func errClass(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	default:
		return "net"
	}
}

// window is the measured part of a run, shared by the workers.
type window struct {
	start, end time.Time
	stop       atomic.Bool   // set at end, or when maxRequests is reached
	sent       atomic.Uint64 // requests sent, warm-up included
	done       atomic.Uint64 // successful responses (soak sampling)
	failed     atomic.Uint64 // failed responses (soak sampling)
	max        uint64
}

// loop sends requests until the window ends; only requests that start and
// end inside it are recorded.
func (w *worker) loop(win *window) {
	defer w.conn.close()
	for !win.stop.Load() {
		if win.max > 0 && win.sent.Add(1) > win.max {
			win.stop.Store(true)
			return
		}
		t0 := time.Now()
		if !t0.Before(win.end) {
			return
		}
		status, body, err := w.conn.do(w.next())
		t1 := time.Now()
		class := ""
		if err != nil {
			class = errClass(err)
		} else {
			class = w.check(status, body)
		}
		if class == "" {
			win.done.Add(1)
		} else {
			win.failed.Add(1)
		}
		if !t0.Before(win.start) && !t1.After(win.end) {
			w.hist.record(t1.Sub(t0))
			if class == "" {
				w.ok++
			} else {
				w.errs[class]++
			}
		}
		if class != "" {
			if err != nil {
				time.Sleep(time.Millisecond) // the server may be gone: do not spin
			}
			if w.sc == "refresh" { // the chain may be consumed or broken
				w.restarts++
				if w.newChain() != nil {
					time.Sleep(10 * time.Millisecond)
				}
			}
		}
	}
}

// result is one measured run of one target.
type result struct {
	Target   string `json:"target"`
	Scenario string `json:"scenario"`
	Store    string `json:"store"`
	Alg      string `json:"alg"`
	Run      int    `json:"run"`
	Conns    int    `json:"connections"`

	Unsupported string `json:"unsupported,omitempty"`

	DurationS float64           `json:"duration_s"`
	OK        uint64            `json:"ok"`
	Errors    map[string]uint64 `json:"errors,omitempty"`
	Restarts  uint64            `json:"refresh_chain_restarts,omitempty"`
	RPS       float64           `json:"rps"`
	P50ms     float64           `json:"p50_ms"`
	P99ms     float64           `json:"p99_ms"`
	P999ms    float64           `json:"p999_ms"`
	MaxMs     float64           `json:"max_ms"`

	ServerCPUs     float64 `json:"server_cpu_s"`
	ServerCPUPerOK float64 `json:"server_cpu_us_per_ok"`
	ServerRSSKB    int64   `json:"server_rss_kb"`
	ServerHWMKB    int64   `json:"server_peak_rss_kb"`
	// ServerIdleRSSKB is the server's RSS once started and set up, before
	// the first request of the run: its fixed overhead.
	ServerIdleRSSKB int64   `json:"server_idle_rss_kb"`
	RedisCPUs       float64 `json:"redis_cpu_s,omitempty"`
	RedisKeys       int64   `json:"redis_keys,omitempty"`
	RedisMemory     int64   `json:"redis_used_memory_bytes,omitempty"`
	LoadgenCPUs     float64 `json:"loadgen_cpu_s"`
	Dials           int     `json:"dials"`
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runOptions are the load parameters of one run.
type runOptions struct {
	conns       int
	warmup, dur time.Duration
	timeout     time.Duration
	maxRequests uint64
	// sample, when set, is called every sampleEvery during the window
	// (soak mode).
	sample      func(win *window, elapsed time.Duration)
	sampleEvery time.Duration
}

// measure drives target t with the scenario for warmup + dur.
func measure(ctx context.Context, t *target, sc string, redis *redisServer, users *userPool, o runOptions) (result, error) {
	res := result{Target: t.kind, Scenario: sc, Conns: o.conns, DurationS: o.dur.Seconds()}
	workers := make([]*worker, o.conns)
	var wg sync.WaitGroup
	errc := make(chan error, o.conns)
	for i := range workers {
		workers[i] = newWorker(t, sc, o.timeout)
		workers[i].users = users
		wg.Go(func() {
			if err := workers[i].prepare(); err != nil {
				errc <- err
			}
		})
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		for _, w := range workers {
			w.conn.close()
		}
		return res, fmt.Errorf("%s: prepare %s: %w", t.kind, sc, err)
	}

	res.ServerIdleRSSKB, _, _ = memory(t.proc.PID())
	now := time.Now()
	win := &window{start: now.Add(o.warmup), end: now.Add(o.warmup + o.dur), max: o.maxRequests}
	for _, w := range workers {
		wg.Go(func() { w.loop(win) })
	}

	// Sample the processes at the edges of the window.
	var cpu0, rcpu0, self0 time.Duration
	sleepUntil(ctx, win.start)
	cpu0, _ = cpuTime(t.proc.PID())
	self0 = selfCPU()
	if redis != nil {
		rcpu0, _ = cpuTime(redis.PID())
	}
	if o.sample != nil {
		o.sample(win, 0)
		tick := time.NewTicker(o.sampleEvery)
	sampling:
		for {
			select {
			case <-tick.C:
				o.sample(win, time.Since(win.start))
			case <-ctx.Done():
				break sampling
			case <-time.After(time.Until(win.end)):
				break sampling
			}
		}
		tick.Stop()
	}
	sleepUntil(ctx, win.end)
	if o.sample != nil && ctx.Err() == nil {
		o.sample(win, time.Since(win.start))
	}
	cpu1, err := cpuTime(t.proc.PID())
	if err != nil {
		win.stop.Store(true)
		wg.Wait()
		return res, fmt.Errorf("%s died during the run: %s", t.kind, t.proc.Tail())
	}
	self1 := selfCPU()
	res.ServerRSSKB, res.ServerHWMKB, _ = memory(t.proc.PID())
	if redis != nil {
		rcpu1, _ := cpuTime(redis.PID())
		res.RedisCPUs = (rcpu1 - rcpu0).Seconds()
	}
	if ctx.Err() != nil {
		win.stop.Store(true)
	}
	wg.Wait()

	var h histogram
	res.Errors = map[string]uint64{}
	for _, w := range workers {
		h.merge(&w.hist)
		res.OK += w.ok
		for k, v := range w.errs {
			res.Errors[k] += v
		}
		res.Restarts += w.restarts
		res.Dials += w.conn.dials
	}
	if len(res.Errors) == 0 {
		res.Errors = nil
	}
	res.RPS = float64(res.OK) / o.dur.Seconds()
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	res.P50ms, res.P99ms, res.P999ms, res.MaxMs = ms(h.quantile(.5)), ms(h.quantile(.99)), ms(h.quantile(.999)), ms(time.Duration(h.max))
	res.ServerCPUs = (cpu1 - cpu0).Seconds()
	if res.OK > 0 {
		res.ServerCPUPerOK = res.ServerCPUs * 1e6 / float64(res.OK)
	}
	res.LoadgenCPUs = (self1 - self0).Seconds()
	if redis != nil {
		st, err := redis.stats(ctx)
		if err == nil {
			res.RedisKeys, res.RedisMemory = st.Keys, st.UsedMemory
		}
	}
	return res, ctx.Err()
}

func sleepUntil(ctx context.Context, t time.Time) {
	select {
	case <-ctx.Done():
	case <-time.After(time.Until(t)):
	}
}

// logf reports progress on stderr.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}
