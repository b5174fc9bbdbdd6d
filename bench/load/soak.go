package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"
)

// soakSample is one observation of a soak run.
type soakSample struct {
	ElapsedS   float64 `json:"elapsed_s"`
	RPS        float64 `json:"rps"`
	Failed     uint64  `json:"failed"`
	ServerPct  float64 `json:"server_cpu_pct"`
	RSSKB      int64   `json:"rss_kb"`
	HWMKB      int64   `json:"peak_rss_kb"`
	RedisKeys  int64   `json:"redis_keys,omitempty"`
	RedisBytes int64   `json:"redis_used_memory_bytes,omitempty"`
}

// soakReport is the outcome of -soak.
type soakReport struct {
	Scenario   string       `json:"scenario"`
	Store      string       `json:"store"`
	Alg        string       `json:"alg"`
	Duration   string       `json:"duration"`
	AccessTTL  string       `json:"access_ttl"`
	RefreshTTL string       `json:"refresh_ttl"`
	Samples    []soakSample `json:"samples"`
	Result     result       `json:"result"`
	// SettledS is when live tokens have reached their steady state (one
	// refresh-token lifetime plus a sample); growth is measured after it.
	SettledS float64 `json:"settled_s"`
	// RSSSlopeKBPerMin and KeysSlopePerMin are least-squares slopes over
	// the settled samples; the growth figures compare the settled
	// samples' first third with their last third.
	RSSSlopeKBPerMin float64 `json:"rss_slope_kb_per_min"`
	RSSGrowthPct     float64 `json:"rss_growth_pct"`
	KeysSlopePerMin  float64 `json:"redis_keys_slope_per_min,omitempty"`
	KeysGrowthPct    float64 `json:"redis_keys_growth_pct,omitempty"`
	// ExpectedLiveFamilies is the settled rate × refresh-token lifetime:
	// the refresh-token families that are legitimately alive (cc only).
	ExpectedLiveFamilies float64 `json:"expected_live_families,omitempty"`
	// KeysPerLive (cc only) is, per settled sample, Redis's key count
	// divided by the tokens issued within one refresh-token lifetime before
	// it: about 1 plus what Redis has not expired yet. Its growth, not the
	// raw key count's, says whether keys outgrow the live tokens when the
	// rate varies (as it does on a shared machine).
	KeysPerLive       []float64 `json:"keys_per_live_token,omitempty"`
	KeysPerLiveGrowth float64   `json:"keys_per_live_growth_pct,omitempty"`
	Flat              bool      `json:"flat"`
}

// soak drives the issuer alone with one scenario for -soak, sampling its
// RSS, its CPU and Redis's key count every -sample.
func soak(ctx context.Context, o options, tmp string, rep *report) error {
	store, alg, sc := o.stores[0], o.algs[0], o.scenarios[0]
	cfg := serverConfig{alg: alg, accessTTL: o.accessTTL, refreshTTL: o.refreshTTL, dir: mkdir(tmp, "soak"),
		serverLog: o.serverLog, issuerBin: o.issuerBin, baselineBin: o.baselineBin}
	if store == "redis" {
		redis, err := startRedis(ctx, mkdir(tmp, "redis"), o.redisAOF)
		if err != nil {
			return err
		}
		defer redis.close()
		cfg.redis = redis
	}
	if sc == "password" {
		users, err := newUserPool(ctx, o.users)
		if err != nil {
			return err
		}
		cfg.users, cfg.hashConcurrency = users, o.hashConcurrency
	}
	t, err := startIssuer(ctx, cfg)
	if err != nil {
		return err
	}
	defer t.proc.Stop()
	sr := &soakReport{Scenario: sc, Store: store, Alg: alg, Duration: o.soak.String(),
		AccessTTL: o.accessTTL.String(), RefreshTTL: o.refreshTTL.String()}
	rep.Soak = sr

	ro := o.run
	ro.dur = o.soak
	ro.maxRequests = 0 // bounded by time: a soak is long on purpose
	var (
		lastOK, lastFailed uint64
		lastCPU            time.Duration
		lastAt             time.Duration
	)
	lastCPU, _ = cpuTime(t.proc.PID())
	ro.sample = func(win *window, elapsed time.Duration) {
		ok, failed := win.done.Load(), win.failed.Load()
		cpu, _ := cpuTime(t.proc.PID())
		s := soakSample{ElapsedS: elapsed.Seconds(), Failed: failed - lastFailed}
		if dt := (elapsed - lastAt).Seconds(); dt > 0 && len(sr.Samples) > 0 {
			s.RPS = float64(ok-lastOK) / dt
			s.ServerPct = 100 * (cpu - lastCPU).Seconds() / dt
		}
		lastOK, lastFailed, lastCPU, lastAt = ok, failed, cpu, elapsed
		s.RSSKB, s.HWMKB, _ = memory(t.proc.PID())
		if cfg.redis != nil {
			if st, err := cfg.redis.stats(ctx); err == nil {
				s.RedisKeys, s.RedisBytes = st.Keys, st.UsedMemory
			}
		}
		sr.Samples = append(sr.Samples, s)
		logf("soak %5.0fs  %7.0f req/s  cpu %5.1f%%  rss %7d KiB  peak %7d KiB  redis keys %8d  used %6.1f MiB  failed %d",
			s.ElapsedS, s.RPS, s.ServerPct, s.RSSKB, s.HWMKB, s.RedisKeys, float64(s.RedisBytes)/(1<<20), s.Failed)
	}
	// The first sample comes at the start of the window: counters and CPU
	// of the warm-up are not charged to the first interval.
	res, err := measure(ctx, t, sc, cfg.redis, cfg.users, ro)
	res.Store, res.Alg = store, alg
	sr.Result = res
	sr.analyse(o.refreshTTL, o.run.sampleEvery)
	return err
}

func (sr *soakReport) analyse(refreshTTL, every time.Duration) {
	sr.SettledS = (refreshTTL + every).Seconds()
	var settled []soakSample
	for _, s := range sr.Samples {
		if s.ElapsedS >= sr.SettledS {
			settled = append(settled, s)
		}
	}
	if len(settled) < 3 {
		// Too short to settle: judge the second half.
		settled = sr.Samples[len(sr.Samples)/2:]
	}
	if len(settled) < 3 {
		return
	}
	xs := make([]float64, len(settled))
	rss := make([]float64, len(settled))
	keys := make([]float64, len(settled))
	var rate []float64
	for i, s := range settled {
		xs[i], rss[i], keys[i] = s.ElapsedS/60, float64(s.RSSKB), float64(s.RedisKeys)
		if s.RPS > 0 {
			rate = append(rate, s.RPS)
		}
	}
	sr.RSSSlopeKBPerMin = slope(xs, rss)
	sr.RSSGrowthPct = growth(rss)
	if keys[0] > 0 {
		sr.KeysSlopePerMin = slope(xs, keys)
		sr.KeysGrowthPct = growth(keys)
	}
	keysOK := sr.KeysGrowthPct < 10
	if sr.Scenario == "cc" {
		sr.ExpectedLiveFamilies = median(rate) * refreshTTL.Seconds()
		sr.KeysPerLive = nil
		for i, s := range sr.Samples {
			if s.ElapsedS < sr.SettledS || s.RedisKeys == 0 {
				continue
			}
			var issued float64 // tokens issued in (t-TTL, t]
			for j := i; j > 0 && sr.Samples[j].ElapsedS > s.ElapsedS-refreshTTL.Seconds(); j-- {
				issued += sr.Samples[j].RPS * (sr.Samples[j].ElapsedS - sr.Samples[j-1].ElapsedS)
			}
			if issued > 0 {
				sr.KeysPerLive = append(sr.KeysPerLive, float64(s.RedisKeys)/issued)
			}
		}
		if len(sr.KeysPerLive) >= 3 {
			sr.KeysPerLiveGrowth = growth(sr.KeysPerLive)
			keysOK = sr.KeysPerLiveGrowth < 10
		}
	}
	sr.Flat = sr.RSSGrowthPct < 10 && keysOK
}

// growth compares the mean of the last third of xs with the first third,
// in percent.
func growth(xs []float64) float64 {
	n := max(len(xs)/3, 1)
	mean := func(s []float64) float64 {
		t := 0.0
		for _, x := range s {
			t += x
		}
		return t / float64(len(s))
	}
	a, b := mean(xs[:n]), mean(xs[len(xs)-n:])
	if a == 0 {
		return 0
	}
	return 100 * (b - a) / a
}

// slope is the least-squares slope of ys over xs.
func slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}

func (rep *report) printSoak(w io.Writer) {
	sr := rep.Soak
	if sr == nil {
		return
	}
	m := rep.Machine
	fmt.Fprintf(w, "\nmachine: %d CPUs (%s), %s, commit %s, load %s → %s\n", m.NumCPU, m.CPUModel, m.GoVersion, m.Commit, m.LoadAvgStart, m.LoadAvgEnd)
	fmt.Fprintf(w, "soak: issuer, %s on %s with %s for %s, %d connections, access TTL %s, refresh TTL %s\n\n",
		sr.Scenario, sr.Store, sr.Alg, sr.Duration, sr.Result.Conns, sr.AccessTTL, sr.RefreshTTL)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "t s\treq/s\tcpu %\tRSS MiB\tpeak MiB\tredis keys\tredis MiB\tfailed\t")
	for _, s := range sr.Samples {
		fmt.Fprintf(tw, "%.0f\t%.0f\t%.0f\t%.1f\t%.1f\t%d\t%.1f\t%d\t\n", s.ElapsedS, s.RPS, s.ServerPct,
			float64(s.RSSKB)/1024, float64(s.HWMKB)/1024, s.RedisKeys, float64(s.RedisBytes)/(1<<20), s.Failed)
	}
	tw.Flush()
	r := sr.Result
	fmt.Fprintf(w, "\nwhole run: %.0f req/s, p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, %.1f µs CPU/req, errors %v\n",
		r.RPS, r.P50ms, r.P99ms, r.P999ms, r.ServerCPUPerOK, r.Errors)
	fmt.Fprintf(w, "after %.0f s (settled): RSS slope %.0f KiB/min, growth %.1f %%; redis keys slope %.0f/min, growth %.1f %%",
		sr.SettledS, sr.RSSSlopeKBPerMin, sr.RSSGrowthPct, sr.KeysSlopePerMin, sr.KeysGrowthPct)
	if sr.ExpectedLiveFamilies > 0 {
		fmt.Fprintf(w, "; expected live families ≈ %.0f", sr.ExpectedLiveFamilies)
	}
	if n := len(sr.KeysPerLive); n > 0 {
		fmt.Fprintf(w, "\nredis keys per token issued within one refresh TTL: %.2f (first settled) → %.2f (last), min %.2f, max %.2f; growth %.1f %%",
			sr.KeysPerLive[0], sr.KeysPerLive[n-1], slices.Min(sr.KeysPerLive), slices.Max(sr.KeysPerLive), sr.KeysPerLiveGrowth)
	}
	fmt.Fprintf(w, "\nmemory flat: %v\n", sr.Flat)
}
