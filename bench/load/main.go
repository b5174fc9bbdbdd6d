// Command load is the issuer's load harness (BENCHMARKS.md). It builds (or takes)
// the issuer binary and the baseline server (bench/baseline), starts each on
// a free loopback port — on the embedded store in a fresh data directory, or
// on its own redis-server — registers its own clients through the admin API,
// and drives the real HTTP interface with -c keep-alive HTTP/1.1 connections
// for -d after a warm-up. Issuer and baseline run the same scenario in the
// same invocation, interleaved run by run, each in a fresh process, so every
// figure is reported as a ratio to what the physics allows, as medians of
// -runs runs.
//
// The password scenario logs -users users in turn in with the password
// grant (RFC 6749 §4.3), the issuer running with ISSUER_PASSWORD_GRANT on;
// its baseline computes one Argon2id key per login and nothing else. The
// users are hashed once per invocation with internal/password and written
// into the issuer's store (the embedded store's file, or Redis) before the
// issuer starts: the admin API has no users calls.
//
//	go run ./bench/load -scenario cc -alg ES256 -redis -runs 3
//	go run ./bench/load -scenario all -store embedded,redis -json out.json
//	go run ./bench/load -scenario password -store embedded,redis -c 16 -runs 5
//	go run ./bench/load -soak 10m -scenario cc -redis
//
// It reports requests/s, p50/p99/p99.9 latency, errors by status, the
// server's CPU time (utime+stime from /proc/<pid>/stat) per successful
// request, its RSS (VmRSS, VmHWM) and Redis's key count. Everything runs on
// loopback, every loop is bounded in time and count, and every process it
// starts is stopped when it ends (and killed by the kernel if it dies).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

type options struct {
	scenarios, stores, algs, targets []string
	runs                             int
	run                              runOptions
	issuerBin, baselineBin           string
	issuerRev, label                 string
	accessTTL, refreshTTL            time.Duration
	redisAOF                         bool
	serverLog                        string
	jsonOut                          string
	soak                             time.Duration
	keep                             bool
	users, hashConcurrency           int
}

func main() {
	os.Exit(run())
}

func run() int {
	var (
		o                               options
		scenarios, stores, algs, target string
		redisFlag                       bool
	)
	flag.StringVar(&scenarios, "scenario", "cc", "comma-separated `scenarios`: "+strings.Join(scenarioNames, ", ")+", or all (every one but password)")
	flag.StringVar(&stores, "store", "embedded", "comma-separated `stores`: embedded, redis")
	flag.BoolVar(&redisFlag, "redis", false, "shorthand for -store redis: start a redis-server and run the servers on it")
	flag.StringVar(&algs, "alg", "ES256", "comma-separated signing `algorithms`: ES256, EdDSA, RS256, PS256, HS256")
	flag.StringVar(&target, "target", "issuer,baseline", "comma-separated `targets`: issuer, baseline")
	flag.IntVar(&o.run.conns, "c", 64, "concurrent keep-alive connections (workers)")
	flag.DurationVar(&o.run.dur, "d", 10*time.Second, "measured `duration` of each run")
	flag.DurationVar(&o.run.warmup, "warmup", 3*time.Second, "warm-up before each measured run (not recorded)")
	flag.DurationVar(&o.run.timeout, "timeout", 5*time.Second, "per-request timeout")
	flag.Uint64Var(&o.run.maxRequests, "max-requests", 50_000_000, "upper bound on the requests of one run, warm-up included")
	flag.IntVar(&o.runs, "runs", 3, "runs per target; figures are medians")
	flag.StringVar(&o.issuerBin, "issuer-bin", "", "issuer `binary` (default: build ./cmd/issuer)")
	flag.StringVar(&o.issuerRev, "issuer-rev", "", "build the issuer from this git `revision` (git archive), not from the work tree")
	flag.StringVar(&o.label, "label", "", "free `text` recorded in the report (what was measured)")
	flag.StringVar(&o.baselineBin, "baseline-bin", "", "baseline `binary` (default: build ./bench/baseline)")
	flag.DurationVar(&o.accessTTL, "access-ttl", 5*time.Minute, "ISSUER_ACCESS_TOKEN_TTL of the servers")
	flag.DurationVar(&o.refreshTTL, "refresh-ttl", 24*time.Hour, "ISSUER_REFRESH_TOKEN_TTL of the servers")
	flag.BoolVar(&o.redisAOF, "redis-aof", false, "run redis-server with appendonly yes, appendfsync always (as deploy/redis/redis.conf)")
	flag.StringVar(&o.serverLog, "server-log", os.DevNull, "`file` that receives the servers' stdout (the issuer's JSON request log)")
	flag.StringVar(&o.jsonOut, "json", "", "also write every run and the summary as JSON to `file` (- for stdout)")
	flag.DurationVar(&o.soak, "soak", 0, "soak mode: drive the issuer alone for this long, sampling RSS and Redis every -sample")
	flag.DurationVar(&o.run.sampleEvery, "sample", 10*time.Second, "soak sampling interval")
	flag.IntVar(&o.users, "users", 64, "password scenario: `number` of users, logged in in turn")
	flag.IntVar(&o.hashConcurrency, "password-hash-concurrency", 0, "password scenario: ISSUER_PASSWORD_HASH_CONCURRENCY of the issuer and -hash-concurrency of the baseline (0: their default, the number of CPUs)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (binaries, data, logs)")
	flag.Parse()

	o.scenarios = list(scenarios)
	if slices.Contains(o.scenarios, "all") {
		o.scenarios = allScenarios
	}
	o.stores, o.algs, o.targets = list(stores), list(algs), list(target)
	if redisFlag {
		o.stores = []string{"redis"}
	}
	setTTLs := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { setTTLs[f.Name] = true })
	if o.soak > 0 {
		// Short lifetimes, so that live tokens reach a steady state well
		// within the soak and any growth beyond them shows.
		if !setTTLs["access-ttl"] {
			o.accessTTL = 30 * time.Second
		}
		if !setTTLs["refresh-ttl"] {
			o.refreshTTL = time.Minute
		}
	}
	if err := o.validate(); err != nil {
		fmt.Fprintf(os.Stderr, "load: %v\n", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tmp, err := os.MkdirTemp("", "issuer-bench-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "load: %v\n", err)
		return 1
	}
	if o.keep {
		logf("keeping %s", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	if err := o.build(ctx, tmp); err != nil {
		fmt.Fprintf(os.Stderr, "load: %v\n", err)
		return 1
	}
	rep := report{Machine: machineInfo(), Started: time.Now().UTC().Format(time.RFC3339), Options: o.describe()}
	if o.soak > 0 {
		err = soak(ctx, o, tmp, &rep)
	} else {
		err = matrix(ctx, o, tmp, &rep)
	}
	rep.Finished = time.Now().UTC().Format(time.RFC3339)
	rep.Machine.LoadAvgEnd = loadAvg()
	if o.soak == 0 {
		rep.summarize(o)
		rep.printTable(os.Stdout)
	} else {
		rep.printSoak(os.Stdout)
	}
	if o.jsonOut != "" {
		if werr := writeJSON(o.jsonOut, rep); werr != nil {
			fmt.Fprintf(os.Stderr, "load: %v\n", werr)
			return 1
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "load: %v\n", err)
		return 1
	}
	return 0
}

func list(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func (o options) validate() error {
	for _, s := range o.scenarios {
		if !slices.Contains(scenarioNames, s) {
			return fmt.Errorf("-scenario: unknown scenario %q; use %s or all", s, strings.Join(scenarioNames, ", "))
		}
	}
	for _, s := range o.stores {
		if s != "embedded" && s != "redis" {
			return fmt.Errorf("-store: unknown store %q; use embedded or redis", s)
		}
	}
	for _, a := range o.algs {
		if !slices.Contains([]string{"ES256", "EdDSA", "RS256", "PS256", "HS256"}, a) {
			return fmt.Errorf("-alg: unknown algorithm %q; use ES256, EdDSA, RS256, PS256 or HS256", a)
		}
	}
	for _, t := range o.targets {
		if t != kindIssuer && t != kindBaseline {
			return fmt.Errorf("-target: unknown target %q; use issuer or baseline", t)
		}
	}
	switch {
	case len(o.scenarios) == 0 || len(o.stores) == 0 || len(o.algs) == 0 || len(o.targets) == 0:
		return fmt.Errorf("-scenario, -store, -alg and -target need at least one value each")
	case o.run.conns < 1 || o.run.conns > 4096:
		return fmt.Errorf("-c %d: use 1 to 4096 connections", o.run.conns)
	case o.run.dur <= 0 || o.run.dur > time.Hour:
		return fmt.Errorf("-d %s: use a duration above 0 and at most 1h", o.run.dur)
	case o.run.warmup < 0 || o.run.timeout <= 0:
		return fmt.Errorf("-warmup must be ≥ 0 and -timeout > 0")
	case o.runs < 1 || o.runs > 100:
		return fmt.Errorf("-runs %d: use 1 to 100", o.runs)
	case o.soak < 0 || o.soak > 24*time.Hour:
		return fmt.Errorf("-soak %s: use at most 24h", o.soak)
	case o.soak > 0 && (len(o.scenarios) != 1 || len(o.stores) != 1 || len(o.algs) != 1):
		return fmt.Errorf("-soak runs one scenario on one store with one algorithm")
	case o.soak > 0 && o.run.sampleEvery <= 0:
		return fmt.Errorf("-sample must be > 0")
	case o.users < 1 || o.users > 10_000:
		return fmt.Errorf("-users %d: use 1 to 10000", o.users)
	case o.hashConcurrency < 0 || o.hashConcurrency > 1024:
		return fmt.Errorf("-password-hash-concurrency %d: use 0 (the default) to 1024", o.hashConcurrency)
	case o.refreshTTL <= o.accessTTL:
		return fmt.Errorf("-refresh-ttl must be longer than -access-ttl (as the issuer requires)")
	}
	return nil
}

func (o options) describe() map[string]any {
	return map[string]any{
		"scenarios": o.scenarios, "stores": o.stores, "algs": o.algs, "targets": o.targets,
		"connections": o.run.conns, "duration": o.run.dur.String(), "warmup": o.run.warmup.String(),
		"runs": o.runs, "access_ttl": o.accessTTL.String(), "refresh_ttl": o.refreshTTL.String(),
		"redis_aof": o.redisAOF, "issuer_bin": o.issuerBin, "issuer_rev": o.issuerRev, "label": o.label, "soak": o.soak.String(), "sample": o.run.sampleEvery.String(),
		"users": o.users, "password_hash_concurrency": o.hashConcurrency,
	}
}

// build compiles the binaries that were not given, as `make build` does
// (CGO off, trimmed paths), from the module the harness runs in.
func (o *options) build(ctx context.Context, tmp string) error {
	root := ""
	if o.issuerBin == "" || o.baselineBin == "" {
		out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
		if err != nil || strings.TrimSpace(string(out)) == "" || strings.TrimSpace(string(out)) == os.DevNull {
			return fmt.Errorf("run in the issuer module (go env GOMOD), or pass -issuer-bin and -baseline-bin: %v", err)
		}
		root = filepath.Dir(strings.TrimSpace(string(out)))
	}
	issuerRoot := root
	if o.issuerBin == "" && o.issuerRev != "" {
		src := mkdir(tmp, "issuer-src")
		rev, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "--short", o.issuerRev).Output()
		if err != nil {
			return fmt.Errorf("-issuer-rev %s: %v", o.issuerRev, err)
		}
		o.issuerRev = strings.TrimSpace(string(rev))
		logf("extracting %s into %s", o.issuerRev, src)
		archive := exec.CommandContext(ctx, "git", "-C", root, "archive", "--format=tar", o.issuerRev)
		untar := exec.CommandContext(ctx, "tar", "-x", "-C", src)
		pipe, err := archive.StdoutPipe()
		if err != nil {
			return err
		}
		untar.Stdin = pipe
		if err := untar.Start(); err != nil {
			return fmt.Errorf("tar: %w", err)
		}
		if err := archive.Run(); err != nil {
			return fmt.Errorf("git archive %s: %w", o.issuerRev, err)
		}
		if err := untar.Wait(); err != nil {
			return fmt.Errorf("tar: %w", err)
		}
		issuerRoot = src
	}
	for _, b := range []struct {
		bin      *string
		pkg, dir string
	}{{&o.issuerBin, "./cmd/issuer", issuerRoot}, {&o.baselineBin, "./bench/baseline", root}} {
		if *b.bin != "" {
			continue
		}
		out := filepath.Join(tmp, filepath.Base(b.pkg))
		logf("building %s in %s", b.pkg, b.dir)
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, b.pkg)
		cmd.Dir = b.dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if msg, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", b.pkg, err, msg)
		}
		*b.bin = out
	}
	return nil
}

// matrix runs every scenario × store × algorithm, each target -runs times,
// interleaved: run i starts the issuer then the baseline, run i+1 the
// baseline first, each in a fresh process (and a flushed Redis).
func matrix(ctx context.Context, o options, tmp string, rep *report) error {
	var redis *redisServer
	if slices.Contains(o.stores, "redis") {
		var err error
		if redis, err = startRedis(ctx, mkdir(tmp, "redis"), o.redisAOF); err != nil {
			return err
		}
		defer redis.close()
	}
	var users *userPool
	if slices.Contains(o.scenarios, "password") {
		logf("hashing the passwords of %d users", o.users)
		var err error
		if users, err = newUserPool(ctx, o.users); err != nil {
			return err
		}
	}
	n := 0
	docs := &documents{} // the issuer's, as last captured: the baseline serves them
	for _, store := range o.stores {
		var rs *redisServer
		if store == "redis" {
			rs = redis
		}
		for _, alg := range o.algs {
			for _, sc := range o.scenarios {
				unsupported := map[string]bool{}
				*docs = documents{}
				for r := range o.runs {
					order := slices.Clone(o.targets)
					if r%2 == 1 {
						slices.Reverse(order)
					}
					for _, kind := range order {
						if ctx.Err() != nil {
							return ctx.Err()
						}
						if unsupported[kind] {
							continue
						}
						n++
						cfg := serverConfig{alg: alg, redis: rs, accessTTL: o.accessTTL, refreshTTL: o.refreshTTL,
							dir: mkdir(tmp, fmt.Sprintf("run-%d", n)), serverLog: o.serverLog,
							issuerBin: o.issuerBin, baselineBin: o.baselineBin, docs: docs}
						if sc == "password" {
							cfg.users, cfg.hashConcurrency = users, o.hashConcurrency
						}
						res, err := oneRun(ctx, o, kind, sc, store, cfg)
						res.Run = r + 1
						var ue *unsupportedError
						if errors.As(err, &ue) {
							unsupported[kind] = true
							res.Unsupported = ue.msg
							logf("%-8s %-8s %-5s %-12s unsupported: %s", kind, store, alg, sc, ue.msg)
						} else if err != nil {
							return err
						}
						rep.Runs = append(rep.Runs, res)
					}
				}
			}
		}
	}
	return nil
}

// unsupportedError is a server that refused its configuration at start-up
// (the issuer with HS256 today).
type unsupportedError struct{ msg string }

func (e *unsupportedError) Error() string { return "unsupported: " + e.msg }

// oneRun starts a fresh server of kind, measures one run and stops it.
func oneRun(ctx context.Context, o options, kind, sc, store string, cfg serverConfig) (result, error) {
	res := result{Target: kind, Scenario: sc, Store: store, Alg: cfg.alg, Conns: o.run.conns}
	if cfg.redis != nil {
		if err := cfg.redis.client.FlushAll(ctx).Err(); err != nil {
			return res, fmt.Errorf("redis FLUSHALL: %w", err)
		}
	}
	var (
		t   *target
		err error
	)
	if kind == kindIssuer {
		t, err = startIssuer(ctx, cfg)
	} else {
		t, err = startBaseline(ctx, cfg)
	}
	if err != nil {
		var ue *unsupportedError
		if errors.As(err, &ue) {
			return res, err
		}
		if msg, ok := refusedConfig(err); ok {
			return res, &unsupportedError{msg}
		}
		return res, err
	}
	defer t.proc.Stop()
	m, err := measure(ctx, t, sc, cfg.redis, cfg.users, o.run)
	m.Store, m.Alg = store, cfg.alg
	if err != nil {
		return m, err
	}
	logf("%-8s %-8s %-5s %-12s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  cpu %6.1f µs/req  rss %6d KiB  errors %v",
		kind, store, cfg.alg, sc, m.RPS, m.P50ms, m.P99ms, m.ServerCPUPerOK, m.ServerHWMKB, m.Errors)
	return m, nil
}

// refusedConfig recognises a server that exited at start-up because of its
// configuration, and returns its message.
func refusedConfig(err error) (string, bool) {
	msg := err.Error()
	_, after, ok := strings.Cut(msg, "exited before it was ready: ")
	if !ok {
		return "", false
	}
	if !strings.Contains(after, "ISSUER_") && !strings.Contains(after, "configuration") {
		return "", false
	}
	if i := strings.IndexByte(after, '\n'); i >= 0 {
		after = after[:i]
	}
	return after, true
}

func mkdir(parent, name string) string {
	d := filepath.Join(parent, name)
	if err := os.MkdirAll(d, 0o700); err != nil {
		panic(err) // in our own temporary directory
	}
	return d
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = os.Stdout.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// machineInfo describes where the figures come from.
type machine struct {
	NumCPU       int    `json:"nproc"`
	GOMAXPROCS   int    `json:"gomaxprocs"`
	CPUModel     string `json:"cpu_model"`
	GoVersion    string `json:"go_version"`
	Kernel       string `json:"kernel"`
	Commit       string `json:"commit"`
	LoadAvgStart string `json:"loadavg_start"`
	LoadAvgEnd   string `json:"loadavg_end"`
}

func machineInfo() machine {
	m := machine{NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(), LoadAvgStart: loadAvg()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
	}
	return m
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
