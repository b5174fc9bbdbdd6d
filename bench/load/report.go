package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// report is everything one invocation measured.
type report struct {
	Machine  machine        `json:"machine"`
	Options  map[string]any `json:"options"`
	Started  string         `json:"started"`
	Finished string         `json:"finished"`
	Runs     []result       `json:"runs,omitempty"`
	Summary  []summary      `json:"summary,omitempty"`
	Soak     *soakReport    `json:"soak,omitempty"`
}

// side is the medians of one target's runs of one configuration.
type side struct {
	Runs        int     `json:"runs"`
	Unsupported string  `json:"unsupported,omitempty"`
	RPS         float64 `json:"rps"`
	P50ms       float64 `json:"p50_ms"`
	P99ms       float64 `json:"p99_ms"`
	P999ms      float64 `json:"p999_ms"`
	CPUPerOK    float64 `json:"server_cpu_us_per_ok"`
	PeakRSSKB   int64   `json:"server_peak_rss_kb"`
	IdleRSSKB   int64   `json:"server_idle_rss_kb"`
	Errors      uint64  `json:"errors"`
	RedisKeys   int64   `json:"redis_keys,omitempty"`
	RedisCPUPct float64 `json:"redis_cpu_pct,omitempty"`
	LoadgenPct  float64 `json:"loadgen_cpu_pct"`
	ServerPct   float64 `json:"server_cpu_pct"`
}

// summary compares issuer and baseline on one configuration.
type summary struct {
	Scenario string `json:"scenario"`
	Store    string `json:"store"`
	Alg      string `json:"alg"`
	Issuer   *side  `json:"issuer,omitempty"`
	Baseline *side  `json:"baseline,omitempty"`
	// RPSRatio is the median over runs of issuer/baseline requests per
	// second, pairing the i-th run of each (they ran back to back).
	RPSRatio float64 `json:"rps_ratio,omitempty"`
	// CPURatio is the median over runs of baseline/issuer server CPU per
	// successful request: the share of the issuer's CPU that the physics
	// needs (1 = no overhead). It depends less on the load generator.
	CPURatio float64 `json:"cpu_ratio,omitempty"`
	// Target is the target (BENCHMARKS.md) for this configuration and whether the
	// medians meet it.
	Target string `json:"target,omitempty"`
	Met    *bool  `json:"met,omitempty"` // every target of this row met
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func collect(rs []result, f func(result) float64) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = f(r)
	}
	return out
}

func sideOf(rs []result) *side {
	if len(rs) == 0 {
		return nil
	}
	s := &side{Runs: len(rs)}
	var ok []result
	for _, r := range rs {
		if r.Unsupported != "" {
			s.Unsupported = r.Unsupported
			continue
		}
		ok = append(ok, r)
	}
	if len(ok) == 0 {
		return s
	}
	m := func(f func(result) float64) float64 { return median(collect(ok, f)) }
	s.RPS = m(func(r result) float64 { return r.RPS })
	s.P50ms = m(func(r result) float64 { return r.P50ms })
	s.P99ms = m(func(r result) float64 { return r.P99ms })
	s.P999ms = m(func(r result) float64 { return r.P999ms })
	s.CPUPerOK = m(func(r result) float64 { return r.ServerCPUPerOK })
	s.PeakRSSKB = int64(m(func(r result) float64 { return float64(r.ServerHWMKB) }))
	s.IdleRSSKB = int64(m(func(r result) float64 { return float64(r.ServerIdleRSSKB) }))
	s.RedisKeys = int64(m(func(r result) float64 { return float64(r.RedisKeys) }))
	s.RedisCPUPct = m(func(r result) float64 { return 100 * r.RedisCPUs / r.DurationS })
	s.LoadgenPct = m(func(r result) float64 { return 100 * r.LoadgenCPUs / r.DurationS })
	s.ServerPct = m(func(r result) float64 { return 100 * r.ServerCPUs / r.DurationS })
	for _, r := range ok {
		for _, n := range r.Errors {
			s.Errors += n
		}
	}
	return s
}

// summarize computes the medians, ratios and target checks.
func (rep *report) summarize(o options) {
	rep.Summary = nil
	for _, store := range o.stores {
		for _, alg := range o.algs {
			for _, sc := range o.scenarios {
				var iss, base []result
				for _, r := range rep.Runs {
					if r.Store != store || r.Alg != alg || r.Scenario != sc {
						continue
					}
					if r.Target == kindIssuer {
						iss = append(iss, r)
					} else {
						base = append(base, r)
					}
				}
				if len(iss)+len(base) == 0 {
					continue
				}
				s := summary{Scenario: sc, Store: store, Alg: alg, Issuer: sideOf(iss), Baseline: sideOf(base)}
				var rps, cpu []float64
				for _, a := range iss {
					for _, b := range base {
						if a.Run != b.Run || a.Unsupported != "" || b.Unsupported != "" || b.RPS == 0 || a.ServerCPUPerOK == 0 {
							continue
						}
						rps = append(rps, a.RPS/b.RPS)
						cpu = append(cpu, b.ServerCPUPerOK/a.ServerCPUPerOK)
					}
				}
				s.RPSRatio, s.CPURatio = median(rps), median(cpu)
				s.check(o.run.conns)
				rep.Summary = append(rep.Summary, s)
			}
		}
	}
}

// check applies the targets of BENCHMARKS.md.
func (s *summary) check(conns int) {
	set := func(target string, met bool) {
		if s.Target != "" {
			s.Target += "; "
		}
		s.Target += target + map[bool]string{true: ": met", false: ": MISSED"}[met]
		if s.Met == nil || !met {
			s.Met = &met
		}
	}
	iss := s.Issuer
	if iss == nil || iss.Unsupported != "" || iss.RPS == 0 {
		return
	}
	if s.Baseline != nil && s.RPSRatio > 0 {
		switch {
		case s.Scenario == "cc" && s.Store == "redis":
			set("rate ≥ 60 % of baseline", s.RPSRatio >= 0.60)
		case s.Scenario == "jwks" || s.Scenario == "metadata":
			set("rate ≥ 80 % of static bytes", s.RPSRatio >= 0.80)
		case s.Scenario == "password":
			set("rate ≥ 90 % of bare argon2id", s.RPSRatio >= 0.90)
		}
	}
	// A login's latency is the hash's and the queue's for a slot: no p99
	// target applies to it.
	if s.Alg == "ES256" && conns == 64 && s.Scenario != "jwks" && s.Scenario != "metadata" && s.Scenario != "password" {
		set("p99 < 20 ms at 64 conns", iss.P99ms < 20)
	}
}

func (rep *report) printTable(w io.Writer) {
	m := rep.Machine
	fmt.Fprintf(w, "\nmachine: %d CPUs (%s), GOMAXPROCS %d, %s, kernel %s, commit %s, load %s → %s\n",
		m.NumCPU, m.CPUModel, m.GOMAXPROCS, m.GoVersion, m.Kernel, m.Commit, m.LoadAvgStart, m.LoadAvgEnd)
	fmt.Fprintf(w, "options: %v\n\n", rep.Options)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tstore\talg\tissuer req/s\tbaseline req/s\tratio\tp50 ms\tp99 ms\tp99.9 ms\tbase p99\tcpu µs/req\tbase µs/req\tcpu ratio\tpeak RSS MiB\tidle RSS MiB\terrors\tredis keys\tredis cpu %\tloadgen cpu %\ttarget\t")
	for _, s := range rep.Summary {
		i, b := s.Issuer, s.Baseline
		if i == nil {
			i = &side{}
		}
		if b == nil {
			b = &side{}
		}
		issRPS := fmt.Sprintf("%.0f", i.RPS)
		if i.Unsupported != "" {
			issRPS = "unsupported"
		}
		ratio, cpuRatio := "-", "-"
		if s.RPSRatio > 0 {
			ratio = fmt.Sprintf("%.2f", s.RPSRatio)
			cpuRatio = fmt.Sprintf("%.2f", s.CPURatio)
		}
		target := s.Target
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.0f\t%s\t%.2f\t%.2f\t%.2f\t%.2f\t%.1f\t%.1f\t%s\t%.1f\t%.1f\t%d\t%d\t%.0f\t%.0f\t%s\t\n",
			s.Scenario, s.Store, s.Alg, issRPS, b.RPS, ratio, i.P50ms, i.P99ms, i.P999ms, b.P99ms,
			i.CPUPerOK, b.CPUPerOK, cpuRatio, float64(i.PeakRSSKB)/1024, float64(i.IdleRSSKB)/1024, i.Errors, i.RedisKeys, i.RedisCPUPct, i.LoadgenPct, target)
	}
	tw.Flush()
	var notes []string
	for _, s := range rep.Summary {
		if s.Issuer != nil && s.Issuer.Unsupported != "" {
			notes = append(notes, fmt.Sprintf("issuer %s: %s", s.Alg, s.Issuer.Unsupported))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintf(w, "\n%s\n", strings.Join(slices.Compact(notes), "\n"))
	}
	fmt.Fprintln(w, "\nratio: issuer/baseline req/s (median of paired runs); cpu ratio: baseline/issuer server CPU per request; figures are medians.")
}
