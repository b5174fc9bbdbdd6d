package deploytest

import (
	"encoding/json"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/issuer-oauth/issuer/internal/redistest"
	"github.com/issuer-oauth/issuer/internal/testutil"
)

// procfile returns the Procfile's commands by process type.
func procfile(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, line := range strings.Split(readRepoFile(t, "Procfile"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		typ, cmd, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("Procfile: %q is not type: command", line)
		}
		out[strings.TrimSpace(typ)] = strings.TrimSpace(cmd)
	}
	return out
}

// runRedisEnv runs deploy/heroku/redis-env with env and returns the
// ISSUER_REDIS_URL its command sees.
func runRedisEnv(t *testing.T, env map[string]string) (string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(repoRoot(t), "deploy", "heroku", "redis-env"), "sh", "-c", `printf %s "$ISSUER_REDIS_URL"`)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%w: %s", err, stderr.String())
	}
	return string(out), nil
}

// TestHerokuRedisEnv checks the mapping of Heroku's Redis variables to
// ISSUER_REDIS_URL: TLS URLs get skip_verify (Heroku Redis certificates are
// self-signed), go-redis and the issuer's configuration accept the result,
// and no Redis at all is refused.
func TestHerokuRedisEnv(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string // "" for an error
	}{
		{"rediss", map[string]string{"REDIS_URL": "rediss://:pw@ec2-1-2-3-4.compute-1.amazonaws.com:12345"},
			"rediss://:pw@ec2-1-2-3-4.compute-1.amazonaws.com:12345?skip_verify=true"},
		{"rediss with query", map[string]string{"REDIS_URL": "rediss://:pw@h:1/0?dial_timeout=3s"},
			"rediss://:pw@h:1/0?dial_timeout=3s&skip_verify=true"},
		{"rediss with skip_verify", map[string]string{"REDIS_URL": "rediss://:pw@h:1?skip_verify=false"},
			"rediss://:pw@h:1?skip_verify=false"},
		{"plain redis", map[string]string{"REDIS_URL": "redis://:pw@h:6379"}, "redis://:pw@h:6379"},
		{"TLS URL preferred", map[string]string{"REDIS_URL": "redis://:pw@h:6379", "REDIS_TLS_URL": "rediss://:pw@h:6380"},
			"rediss://:pw@h:6380?skip_verify=true"},
		{"ISSUER_REDIS_URL wins", map[string]string{"REDIS_URL": "rediss://:pw@h:1", "ISSUER_REDIS_URL": "rediss://:x@mine:6380"},
			"rediss://:x@mine:6380"},
		{"no Redis", map[string]string{}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := runRedisEnv(t, tc.env)
			if tc.want == "" {
				if err == nil || !strings.Contains(err.Error(), "heroku-redis") {
					t.Errorf("got %q, %v; want a refusal that says to add heroku-redis", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ISSUER_REDIS_URL: got %q (%v), want %q", got, err, tc.want)
			}
			opt, err := goredis.ParseURL(got)
			if err != nil {
				t.Fatalf("go-redis refuses %q: %v", got, err)
			}
			if wantSkip := strings.Contains(got, "skip_verify=true"); (opt.TLSConfig != nil && opt.TLSConfig.InsecureSkipVerify) != wantSkip {
				t.Errorf("%q: InsecureSkipVerify is not %v", got, wantSkip)
			}
			if _, err := loadConfig(t, "", map[string]string{"ISSUER_REDIS_URL": got, "ISSUER_SECRET": randomHex(32)}); err != nil {
				t.Errorf("the issuer refuses %q: %v", got, err)
			}
		})
	}
}

// TestHerokuProcfile runs the Procfile's web command as Heroku does (bash,
// the built binary on PATH, PORT and REDIS_URL set): the issuer must listen
// on PORT and use the add-on's Redis.
func TestHerokuProcfile(t *testing.T) {
	web := procfile(t)["web"]
	if web == "" {
		t.Fatal("Procfile: no web process")
	}
	if !strings.HasSuffix(web, "issuer serve") {
		t.Errorf("Procfile web: %q, want it to run issuer serve", web)
	}
	script := strings.Fields(web)[0]
	if info, err := os.Stat(filepath.Join(repoRoot(t), script)); err != nil || info.Mode()&0o111 == 0 {
		t.Fatalf("Procfile web: %s is not an executable file in the repository (%v)", script, err)
	}

	pw := randomHex(16)
	redis := redistest.Start(t, redistest.WithPassword(pw))
	bin := issuerBinary(t)
	for attempt := 0; ; attempt++ {
		port := testutil.FreePort(t)
		// Heroku runs Procfile commands with bash in the app's root.
		p, err := startProcess("heroku web", "bash", []string{"-c", web}, append(appValues(t),
			"PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"),
			"PORT="+strconv.Itoa(port),
			"REDIS_URL=redis://:"+pw+"@"+redis.Addr(),
			"ISSUER_URL=https://issuer-test.herokuapp.com",
			"ISSUER_SECRET="+randomHex(32),
			"ISSUER_SHUTDOWN_DRAIN_DELAY=0s",
		), testutil.WithDir(repoRoot(t)))
		if err != nil {
			t.Fatal(err)
		}
		err = p.WaitReady(t.Context(), 20*time.Second, ready(func() error {
			code, err := httpGetStatus("http://127.0.0.1:" + strconv.Itoa(port) + "/readyz")
			if err == nil && code != http.StatusOK {
				err = fmt.Errorf("GET /readyz: %d", code)
			}
			return err
		}))
		var forwarded error
		if err == nil {
			// As the router forwards it: the client's own X-Forwarded-For,
			// then the address the router got the request from.
			forwarded = getWithHeader("http://127.0.0.1:"+strconv.Itoa(port)+"/heroku-client-addr",
				"X-Forwarded-For", "192.0.2.1, 198.51.100.7")
		}
		_ = p.Stop()
		if err == nil {
			out := p.Output()
			if !strings.Contains(out, `"store":"redis"`) {
				t.Errorf("the issuer did not use Redis:\n%s", p.Tail())
			}
			if forwarded != nil {
				t.Fatal(forwarded)
			}
			if !strings.Contains(out, `"path":"/heroku-client-addr"`) || !strings.Contains(out, `"client_addr":"198.51.100.7"`) {
				t.Errorf("with app.json's settings the client address is not the one the router appended (198.51.100.7):\n%s", p.Tail())
			}
			if strings.Contains(out, `"level":"WARN"`) && strings.Contains(out, "no proxy is trusted") {
				t.Errorf("with app.json's settings the issuer warns that no proxy is trusted:\n%s", p.Tail())
			}
			return
		}
		if err = addrInUse(err, p.Tail()); !errors.Is(err, errAddrInUse) || attempt == 2 {
			t.Fatalf("Procfile web: %v", err)
		}
	}
}

// appJSON is what the tests read of app.json.
type appJSON struct {
	Env map[string]struct {
		Value     string `json:"value"`
		Generator string `json:"generator"`
		Required  *bool  `json:"required"`
	} `json:"env"`
	Addons []struct {
		Plan string `json:"plan"`
	} `json:"addons"`
	Buildpacks []struct {
		URL string `json:"url"`
	} `json:"buildpacks"`
	Formation map[string]any `json:"formation"`
}

func readAppJSON(t *testing.T) appJSON {
	t.Helper()
	var app appJSON
	if err := json.Unmarshal([]byte(readRepoFile(t, "app.json")), &app); err != nil {
		t.Fatalf("app.json: %v", err)
	}
	return app
}

// appValues returns the variables app.json gives a fixed value, as
// NAME=value entries of an environment.
func appValues(t *testing.T) []string {
	t.Helper()
	var env []string
	for k, e := range readAppJSON(t).Env {
		if e.Value != "" {
			env = append(env, k+"="+e.Value)
		}
	}
	return env
}

// TestAppJSON checks app.json: its variables are the issuer's settings or
// the Go buildpack's, secrets are generated, Redis is provisioned, and the
// buildpack builds the issuer with its version.
func TestAppJSON(t *testing.T) {
	app := readAppJSON(t)
	issuerEnv := configEnv()
	for k := range app.Env {
		if !issuerEnv[k] && k != "GO_INSTALL_PACKAGE_SPEC" && k != "GO_LINKER_SYMBOL" {
			t.Errorf("app.json: env %s is neither a setting of the issuer nor of the Go buildpack", k)
		}
	}
	if e := app.Env["ISSUER_URL"]; e.Required == nil || !*e.Required || e.Value != "" {
		t.Error("app.json: ISSUER_URL must be required and have no default (it is the app's own URL)")
	}
	for _, k := range []string{"ISSUER_SECRET", "ISSUER_ADMIN_TOKEN"} {
		if e := app.Env[k]; e.Generator != "secret" || e.Value != "" {
			t.Errorf("app.json: %s must be generated (generator: secret), never a fixed value", k)
		}
	}
	// Heroku's router is the only way to a dyno, its addresses are not
	// published, and it appends the address it got the request from to
	// X-Forwarded-For: trust exactly that one hop, no network.
	if e := app.Env["ISSUER_TRUSTED_PROXY_HOPS"]; e.Value != "1" {
		t.Errorf("app.json: ISSUER_TRUSTED_PROXY_HOPS = %q, want 1 (Heroku's router)", e.Value)
	}
	if _, ok := app.Env["ISSUER_TRUSTED_PROXIES"]; ok {
		t.Error("app.json: ISSUER_TRUSTED_PROXIES is set; the router's addresses are unknown, trust it by ISSUER_TRUSTED_PROXY_HOPS")
	}
	// Heroku's generator makes 64 hex digits: the issuer accepts that.
	if _, err := loadConfig(t, "", map[string]string{"ISSUER_SECRET": randomHex(32), "ISSUER_ADMIN_TOKEN": randomHex(32)}); err != nil {
		t.Errorf("the issuer refuses generated secrets: %v", err)
	}
	hasRedis := false
	for _, a := range app.Addons {
		hasRedis = hasRedis || strings.HasPrefix(a.Plan, "heroku-redis")
	}
	if !hasRedis {
		t.Error("app.json: no heroku-redis add-on; a dyno's disk does not keep the embedded store")
	}
	if len(app.Buildpacks) != 1 || app.Buildpacks[0].URL != "heroku/go" {
		t.Errorf("app.json: buildpacks %+v, want heroku/go", app.Buildpacks)
	}
	for typ := range app.Formation {
		if procfile(t)[typ] == "" {
			t.Errorf("app.json: formation %s is not a Procfile process type", typ)
		}
	}
	// The package the buildpack installs is the issuer's main package, and
	// the linker symbol is the variable the Dockerfile sets too.
	spec := app.Env["GO_INSTALL_PACKAGE_SPEC"].Value
	files, _ := filepath.Glob(filepath.Join(repoRoot(t), filepath.FromSlash(spec), "*.go"))
	isMain := len(files) > 0
	for _, f := range files {
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.PackageClauseOnly)
		if err != nil || (af.Name.Name != "main" && !strings.HasSuffix(f, "_test.go")) {
			isMain = false
		}
	}
	if !isMain {
		t.Errorf("app.json: GO_INSTALL_PACKAGE_SPEC %q is not a main package", spec)
	}
	if sym := app.Env["GO_LINKER_SYMBOL"].Value; sym != dockerfiles[0].opts.versionSymbol {
		t.Errorf("app.json: GO_LINKER_SYMBOL %q, want %q (what the Dockerfile sets and TestDockerfileBuildStage checks)", sym, dockerfiles[0].opts.versionSymbol)
	}
}
