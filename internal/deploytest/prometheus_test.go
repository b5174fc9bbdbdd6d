package deploytest

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/issuer-oauth/issuer/internal/metrics"
)

// promtool returns the path of promtool (Debian's prometheus package,
// which scripts/test-deps.sh installs), or fails the test.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is not installed: run make test, whose scripts/test-deps.sh installs Debian's prometheus package (it ships promtool)")
	}
	return p
}

func runPromtool(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestPrometheusRules checks deploy/prometheus/alerts.yml with promtool
// (syntax, then its unit tests: each alert fires on the series that should
// fire it, with its labels and texts), and that it names only metrics the
// issuer exports.
func TestPrometheusRules(t *testing.T) {
	dir := filepath.Join(repoRoot(t), "deploy", "prometheus")
	runPromtool(t, dir, "check", "rules", "alerts.yml")
	runPromtool(t, dir, "test", "rules", "alerts_test.yml")

	data, err := os.ReadFile(filepath.Join(dir, "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert       string
				Expr        string
				Labels      map[string]string
				Annotations map[string]string
			}
		}
	}
	if err := yaml.Unmarshal(data, &rules); err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s: want a severity label and a summary and a description", r.Alert)
			}
		}
	}
	checkMetricNames(t, "deploy/prometheus/alerts.yml", exprs)
}

// TestGrafanaDashboard checks deploy/grafana/issuer.json: valid JSON with
// panels whose queries parse as PromQL (promtool, through recording rules
// made of them) and name only metrics the issuer exports.
func TestGrafanaDashboard(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "grafana", "issuer.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string
		UID    string
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("deploy/grafana/issuer.json: %v", err)
	}
	if dash.Title == "" || dash.UID == "" || len(dash.Panels) == 0 {
		t.Fatalf("deploy/grafana/issuer.json: want a title, a uid and panels")
	}
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var recs []rule
	var exprs []string
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			recs = append(recs, rule{Record: "dashboard:query", Expr: tg.Expr})
			exprs = append(exprs, tg.Expr)
		}
	}
	out, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": recs}}})
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	if err := os.WriteFile(filepath.Join(tmp, "dashboard.yml"), out, 0o644); err != nil {
		t.Fatal(err)
	}
	runPromtool(t, tmp, "check", "rules", "dashboard.yml")
	checkMetricNames(t, "deploy/grafana/issuer.json", exprs)
}

var metricName = regexp.MustCompile(`\bissuer_[a-z0-9_]+\b`)

// checkMetricNames fails for each issuer_ metric in exprs that the
// issuer's /metrics handler does not serve.
func checkMetricNames(t *testing.T, file string, exprs []string) {
	t.Helper()
	served := exportedMetrics(t)
	for _, e := range exprs {
		for _, name := range metricName.FindAllString(e, -1) {
			base := name
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(name, suffix); ok && served[b] == "histogram" {
					base = b
				}
			}
			if served[base] == "" {
				t.Errorf("%s uses %s, which the issuer does not export (it exports %s)", file, name, strings.Join(sortedKeys(served), ", "))
			}
		}
	}
}

// exportedMetrics returns the issuer_ metric families that the metrics
// handler serves, by name, with their type, once every family has a series.
func exportedMetrics(t *testing.T) map[string]string {
	t.Helper()
	m := metrics.New("test")
	m.Store(nil) // creates the store series at zero
	m.TokenRequest("client_credentials", "success")
	m.Limited("address")
	m.ObserveRequest("/oauth2/token", http.MethodPost, http.StatusOK, time.Millisecond)
	now := time.Now()
	m.WatchKeys(func() []metrics.Key {
		return []metrics.Key{{ID: "k1", Alg: "ES256", State: "current", CreatedAt: now, NotBefore: now}}
	}, nil)
	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	out := map[string]string{}
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 4 && f[0] == "#" && f[1] == "TYPE" && strings.HasPrefix(f[2], "issuer_") {
			out[f[2]] = f[3]
		}
	}
	if len(out) == 0 {
		t.Fatal("the metrics handler served no issuer_ metric")
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
