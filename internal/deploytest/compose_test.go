package deploytest

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/issuer-oauth/issuer/internal/config"
)

// configEnv returns the environment variables the issuer reads: the env
// tags of config.Config, and PORT (honoured when ISSUER_ADDR is unset).
func configEnv() map[string]bool {
	out := map[string]bool{"PORT": true}
	typ := reflect.TypeFor[config.Config]()
	for i := range typ.NumField() {
		if e := typ.Field(i).Tag.Get("env"); e != "" {
			out[e] = true
		}
	}
	return out
}

// loadConfig runs the issuer's own loader on the YAML text file (empty for
// none) and the environment env.
func loadConfig(t *testing.T, file string, env map[string]string) (config.Config, error) {
	t.Helper()
	p := ""
	if file != "" {
		p = filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(p, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return config.Load(p, func(k string) string { return env[k] })
}

// resourceAPIEnv returns the environment variables the example resource
// API reads: the upper-case string constants of its source.
func resourceAPIEnv(t *testing.T) map[string]bool {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "examples", "resource-api")
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files in %s: %v", dir, err)
	}
	name := regexp.MustCompile(`^[A-Z][A-Z0-9_]+$`)
	out := map[string]bool{}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(af, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil && name.MatchString(s) {
					out[s] = true
				}
			}
			return true
		})
	}
	return out
}

// readEnvFile parses KEY=value lines, skipping comments and blank lines.
func readEnvFile(t *testing.T, p string) (keys []string, values map[string]string) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	values = map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not KEY=value", p, line)
		}
		keys = append(keys, k)
		values[k] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return keys, values
}

// runDemoSetup runs deploy/demo-setup.sh into a new directory.
func runDemoSetup(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl is not installed (deploy/demo-setup.sh needs it): apt-get install openssl")
	}
	dir := t.TempDir()
	cmd := exec.Command(filepath.Join(repoRoot(t), "deploy", "demo-setup.sh"))
	cmd.Env = append(os.Environ(), "DEMO_DIR="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("deploy/demo-setup.sh: %v\n%s", err, out)
	}
	return dir
}

// TestDemoSetup runs deploy/demo-setup.sh: it fills in every setting of
// .env.example with values the issuer accepts and makes a certificate that
// verifies for localhost, and a second run keeps both.
func TestDemoSetup(t *testing.T) {
	dir := runDemoSetup(t)
	exampleKeys, _ := readEnvFile(t, filepath.Join(repoRoot(t), "deploy", ".env.example"))
	keys, env := readEnvFile(t, filepath.Join(dir, ".env"))
	if !slices.Equal(keys, exampleKeys) {
		t.Errorf(".env keys %q, want those of .env.example %q", keys, exampleKeys)
	}
	hex64 := regexp.MustCompile(`^[0-9a-f]{64}$`)
	for k, v := range env {
		if !hex64.MatchString(v) {
			t.Errorf(".env: %s=%q, want 64 random hex digits", k, v)
		}
	}
	if info, err := os.Stat(filepath.Join(dir, ".env")); err != nil || info.Mode().Perm()&0o077 != 0 {
		t.Errorf(".env: mode %v (%v), want readable by its owner only", info.Mode(), err)
	}
	env["ISSUER_REDIS_URL"] = "redis://:" + env["REDIS_PASSWORD"] + "@redis:6379/0"
	if _, err := loadConfig(t, "", env); err != nil {
		t.Errorf("the issuer refuses the generated secrets: %v", err)
	}

	certFile, keyFile := filepath.Join(dir, "tls", "issuer.crt"), filepath.Join(dir, "tls", "issuer.key")
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatalf("the certificate and key do not load as a pair: %v", err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	for _, host := range []string{"localhost", "127.0.0.1"} {
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: host, Roots: roots}); err != nil {
			t.Errorf("the certificate, trusted as itself (SSL_CERT_FILE), does not verify for %s: %v", host, err)
		}
	}

	before, _ := os.ReadFile(filepath.Join(dir, ".env"))
	beforeCert, _ := os.ReadFile(certFile)
	runAgain := exec.Command(filepath.Join(repoRoot(t), "deploy", "demo-setup.sh"))
	runAgain.Env = append(os.Environ(), "DEMO_DIR="+dir)
	if out, err := runAgain.CombinedOutput(); err != nil {
		t.Fatalf("second run: %v\n%s", err, out)
	}
	after, _ := os.ReadFile(filepath.Join(dir, ".env"))
	afterCert, _ := os.ReadFile(certFile)
	if string(before) != string(after) || string(beforeCert) != string(afterCert) {
		t.Error("a second run replaced .env or the certificate; it must keep them")
	}
}

// composeFile is the part of the compose file the tests read.
type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	Ports       []string          `yaml:"ports"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	NetworkMode string         `yaml:"network_mode"`
	Healthcheck map[string]any `yaml:"healthcheck"`
	ReadOnly    bool           `yaml:"read_only"`
	CapDrop     []string       `yaml:"cap_drop"`
	SecurityOpt []string       `yaml:"security_opt"`
}

// mount returns the host source of the service's volume mounted at target,
// or "".
func (s composeService) mount(target string) string {
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == target {
			return parts[0]
		}
	}
	return ""
}

// composeVar matches compose interpolation: ${NAME}, ${NAME:?message},
// ${NAME:-default}.
var composeVar = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?][^}]*)?\}`)

// TestCompose checks deploy/compose.yaml: two issuer instances on one
// Redis behind Nginx, and the resource API, wired with names that exist,
// secrets only from the env file, and files that exist.
func TestCompose(t *testing.T) {
	root := repoRoot(t)
	raw := readRepoFile(t, "deploy/compose.yaml")

	// Interpolate as compose does, with the values demo-setup.sh writes.
	exampleKeys, _ := readEnvFile(t, filepath.Join(root, "deploy", ".env.example"))
	demo := runDemoSetup(t)
	_, env := readEnvFile(t, filepath.Join(demo, ".env"))
	used := map[string]bool{}
	interpolated := composeVar.ReplaceAllStringFunc(raw, func(m string) string {
		name := composeVar.FindStringSubmatch(m)[1]
		used[name] = true
		v, ok := env[name]
		if !ok {
			t.Errorf("compose.yaml uses ${%s}, which deploy/.env.example does not document", name)
		}
		return v
	})
	for _, k := range exampleKeys {
		if !used[k] {
			t.Errorf("deploy/.env.example documents %s, which compose.yaml does not use", k)
		}
	}
	var c composeFile
	if err := yaml.Unmarshal([]byte(interpolated), &c); err != nil {
		t.Fatalf("deploy/compose.yaml: %v", err)
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range c.Services {
			if !yield(n) {
				return
			}
		}
	})
	if want := []string{"issuer-1", "issuer-2", "nginx", "redis", "resource-api"}; !slices.Equal(names, want) {
		t.Fatalf("services: got %q, want %q", names, want)
	}

	issuerEnv := configEnv()
	var issuerURL string
	for _, name := range []string{"issuer-1", "issuer-2"} {
		s := c.Services[name]
		if s.Build == nil || path.Join("deploy", s.Build.Context, s.Build.Dockerfile) != "Dockerfile" {
			t.Errorf("%s: build %+v, want the repository's Dockerfile", name, s.Build)
		}
		for k := range s.Environment {
			if !issuerEnv[k] {
				t.Errorf("%s: environment %s is not a setting of the issuer (internal/config)", name, k)
			}
		}
		if !reflect.DeepEqual(s.Environment, c.Services["issuer-1"].Environment) {
			t.Errorf("%s: environment differs from issuer-1's: instances must share ISSUER_URL, the secret and Redis", name)
		}
		cfg, err := loadConfig(t, "", s.Environment)
		if err != nil {
			t.Errorf("%s: the issuer refuses its environment: %v", name, err)
			continue
		}
		issuerURL = cfg.URL
		// The admin API and metrics only from inside the instance (docker
		// compose exec): not even Nginx reaches them.
		h, _, _ := net.SplitHostPort(cfg.AdminAddr)
		if ip, err := netip.ParseAddr(h); err != nil || !ip.IsLoopback() {
			t.Errorf("%s: ISSUER_ADMIN_ADDR %q, want an admin listener on loopback", name, cfg.AdminAddr)
		}
		u, err := url.Parse(cfg.RedisURL)
		if err != nil || u.Hostname() != "redis" {
			t.Errorf("%s: ISSUER_REDIS_URL does not point at the redis service", name)
		} else if pw, _ := u.User.Password(); pw != env["REDIS_PASSWORD"] {
			t.Errorf("%s: ISSUER_REDIS_URL does not carry REDIS_PASSWORD", name)
		}
		if s.DependsOn["redis"].Condition != "service_healthy" {
			t.Errorf("%s: want depends_on redis: service_healthy", name)
		}
		if !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") {
			t.Errorf("%s: want read_only and cap_drop ALL", name)
		}
	}

	// Nginx publishes ISSUER_URL's port and listens on it.
	u, err := url.Parse(issuerURL)
	if err != nil || u.Scheme != "https" || u.Port() == "" {
		t.Fatalf("ISSUER_URL %q: want https with an explicit port", issuerURL)
	}
	ng := c.Services["nginx"]
	checkPinned(t, "nginx", ng.Image)
	if !slices.Contains(ng.Ports, "127.0.0.1:"+u.Port()+":"+u.Port()) {
		t.Errorf("nginx: ports %q do not publish 127.0.0.1:%s:%s (ISSUER_URL's port, the same inside and out; loopback only)", ng.Ports, u.Port(), u.Port())
	}
	confSrc := ng.mount("/etc/nginx/conf.d/default.conf")
	if confSrc != "./nginx/compose.conf" {
		t.Errorf("nginx: /etc/nginx/conf.d/default.conf comes from %q, want ./nginx/compose.conf (tested by TestComposeNginxConf)", confSrc)
	}
	conf := readRepoFile(t, "deploy/nginx/compose.conf")
	if !strings.Contains(conf, "listen "+u.Port()+" ssl;") {
		t.Errorf("deploy/nginx/compose.conf does not listen on %s, ISSUER_URL's port", u.Port())
	}
	for _, up := range []string{"issuer-1:8080", "issuer-2:8080"} {
		if !strings.Contains(conf, "server "+up+" ") {
			t.Errorf("deploy/nginx/compose.conf has no upstream %s", up)
		}
	}
	if ng.mount("/etc/nginx/tls") != "./tls" {
		t.Errorf("nginx: /etc/nginx/tls is not ./tls (made by demo-setup.sh)")
	}
	for _, name := range []string{"issuer-1", "issuer-2"} {
		if ng.DependsOn[name].Condition != "service_healthy" {
			t.Errorf("nginx: want depends_on %s: service_healthy", name)
		}
	}

	// Redis: deploy/redis/redis.conf, the password from the env file.
	r := c.Services["redis"]
	checkPinned(t, "redis", r.Image)
	if len(r.Command) < 2 || r.Command[0] != "redis-server" || r.mount(r.Command[1]) != "./redis/redis.conf" {
		t.Errorf("redis: command %q does not run redis-server with ./redis/redis.conf", r.Command)
	}
	if i := slices.Index(r.Command, "--requirepass"); i < 0 || i+1 >= len(r.Command) || r.Command[i+1] != env["REDIS_PASSWORD"] {
		t.Errorf("redis: no --requirepass REDIS_PASSWORD")
	}
	if vol := strings.Split(r.mount("/data"), ":")[0]; vol == "" || c.Volumes == nil || !hasKey(c.Volumes, vol) {
		t.Errorf("redis: /data is not a named volume (the AOF must survive the container)")
	}
	if r.Healthcheck == nil {
		t.Error("redis: no healthcheck (the issuers wait for it)")
	}
	redisConf := readRepoFile(t, "deploy/redis/redis.conf")
	for _, line := range []string{"appendonly yes", "appendfsync always", "maxmemory-policy noeviction"} {
		if !regexp.MustCompile(`(?m)^` + line + `$`).MatchString(redisConf) {
			t.Errorf("deploy/redis/redis.conf: no %q", line)
		}
	}

	// The resource API, in Nginx's network namespace.
	api := c.Services["resource-api"]
	if api.NetworkMode != "service:nginx" {
		t.Errorf("resource-api: network_mode %q, want service:nginx (so localhost:%s is Nginx)", api.NetworkMode, u.Port())
	}
	if api.Build == nil || path.Join("deploy", api.Build.Context, api.Build.Dockerfile) != "deploy/resource-api/Dockerfile" {
		t.Errorf("resource-api: build %+v, want deploy/resource-api/Dockerfile", api.Build)
	}
	apiEnv := resourceAPIEnv(t)
	for k := range api.Environment {
		if !apiEnv[k] && k != "SSL_CERT_FILE" {
			t.Errorf("resource-api: environment %s is not read by examples/resource-api", k)
		}
	}
	if api.Environment["ISSUER_URL"] != issuerURL {
		t.Errorf("resource-api: ISSUER_URL %q, want the issuers' %q", api.Environment["ISSUER_URL"], issuerURL)
	}
	_, port, _ := net.SplitHostPort(api.Environment["RESOURCE_ADDR"])
	if port == "" || !slices.Contains(ng.Ports, "127.0.0.1:"+port+":"+port) {
		t.Errorf("resource-api: RESOURCE_ADDR %q is not published by nginx %q", api.Environment["RESOURCE_ADDR"], ng.Ports)
	}
	if src := api.mount(api.Environment["SSL_CERT_FILE"]); src != "./tls/issuer.crt" {
		t.Errorf("resource-api: SSL_CERT_FILE is mounted from %q, want ./tls/issuer.crt", src)
	}

	// Every file mounted or built exists (./tls once demo-setup.sh ran).
	for name, s := range c.Services {
		for _, v := range s.Volumes {
			src := strings.Split(v, ":")[0]
			if !strings.HasPrefix(src, ".") {
				continue
			}
			base := filepath.Join(root, "deploy")
			if strings.HasPrefix(src, "./tls") {
				base = demo
			}
			if _, err := os.Stat(filepath.Join(base, src)); err != nil {
				t.Errorf("%s: volume %s: %v", name, v, err)
			}
		}
	}
	if ig := readRepoFile(t, "deploy/.gitignore"); !regexp.MustCompile(`(?m)^\.env$`).MatchString(ig) || !regexp.MustCompile(`(?m)^tls/$`).MatchString(ig) {
		t.Error("deploy/.gitignore must ignore .env and tls/")
	}
}

func hasKey(m map[string]any, k string) bool {
	_, ok := m[k]
	return ok
}

// checkPinned fails unless image has a tag other than latest, or a digest.
func checkPinned(t *testing.T, what, image string) {
	t.Helper()
	if strings.Contains(image, "@sha256:") {
		return
	}
	last := image[strings.LastIndex(image, "/")+1:]
	if _, tag, ok := strings.Cut(last, ":"); !ok || tag == "" || tag == "latest" {
		t.Errorf("%s: image %q: pin a version tag", what, image)
	}
}
