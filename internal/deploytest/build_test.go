package deploytest

import (
	"bufio"
	"bytes"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// shared is a directory that lives as long as the test binary: the
// binaries the build stages make are built once and used by every test.
var shared string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "deploytest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	shared = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// repoRoot returns the repository's root directory.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod at the repository root %s: %v", root, err)
	}
	return root
}

// testVersion is the VERSION build argument of the builds made here; the
// binaries must report it.
const testVersion = "v0.0.0-deploytest"

// dockerignore is the build context's exclusion list. Only the forms the
// repository uses are supported (names and globs without ** or !), so a
// pattern this code would get wrong fails instead.
type dockerignore []string

func readDockerignore(root string) (dockerignore, error) {
	f, err := os.Open(filepath.Join(root, ".dockerignore"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ig dockerignore
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := strings.TrimSpace(sc.Text())
		if p == "" || strings.HasPrefix(p, "#") {
			continue
		}
		if strings.HasPrefix(p, "!") || strings.Contains(p, "**") {
			return nil, fmt.Errorf(".dockerignore: %q: the tests support neither ! nor **; extend internal/deploytest", p)
		}
		ig = append(ig, path.Clean(strings.TrimPrefix(p, "/")))
	}
	return ig, sc.Err()
}

// ignored reports whether rel (slash-separated, relative to the context) is
// excluded: a pattern matches it or one of its parent directories.
func (ig dockerignore) ignored(rel string) bool {
	for _, p := range ig {
		for prefix := rel; prefix != "."; prefix = path.Dir(prefix) {
			if ok, _ := path.Match(p, prefix); ok {
				return true
			}
		}
	}
	return false
}

// copyContext copies src (relative to the context root, "." for all of it)
// to dest as COPY would: a directory's contents into dest, a file to dest,
// or into dest when dest is a directory.
func copyContext(root string, ig dockerignore, src, dest string) error {
	src = path.Clean(src)
	if src != "." && ig.ignored(src) {
		return fmt.Errorf("COPY %s: excluded by .dockerignore", src)
	}
	from := filepath.Join(root, filepath.FromSlash(src))
	info, err := os.Stat(from)
	if err != nil {
		return fmt.Errorf("COPY %s: %w", src, err)
	}
	if !info.IsDir() {
		if st, err := os.Stat(dest); err == nil && st.IsDir() {
			dest = filepath.Join(dest, filepath.Base(from))
		}
		return copyFile(from, dest, info.Mode())
	}
	return filepath.WalkDir(from, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		relToRoot, _ := filepath.Rel(root, p)
		relToRoot = filepath.ToSlash(relToRoot)
		if relToRoot != "." && ig.ignored(relToRoot) {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		relToSrc, _ := filepath.Rel(from, p)
		to := filepath.Join(dest, relToSrc)
		switch {
		case e.IsDir():
			return os.MkdirAll(to, 0o755)
		case e.Type().IsRegular():
			info, err := e.Info()
			if err != nil {
				return err
			}
			return copyFile(p, to, info.Mode())
		}
		return nil // sockets, symlinks: nothing a build needs
	})
}

func copyFile(from, to string, mode fs.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode.Perm()|0o200)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// platformArgs are the build arguments BuildKit sets by itself.
var platformArgs = map[string]string{
	"TARGETOS": runtime.GOOS, "TARGETARCH": runtime.GOARCH,
	"BUILDOS": runtime.GOOS, "BUILDARCH": runtime.GOARCH,
	"TARGETPLATFORM": runtime.GOOS + "/" + runtime.GOARCH,
	"BUILDPLATFORM":  runtime.GOOS + "/" + runtime.GOARCH,
}

// runBuildStage runs, outside Docker, the stage that the final stage of the
// Dockerfile at rel copies its files from: WORKDIR, ARG (defaults, or
// args), ENV and COPY (from a copy of the repository filtered by
// .dockerignore) are emulated under dir, and every RUN line runs with sh
// -c, its container paths of the copied outputs (/out) mapped into dir.
// It returns the host path of every file the final stage copies, by its
// container path, and the log of the commands.
func runBuildStage(ctx context.Context, root, rel, dir string, args map[string]string) (map[string]string, string, error) {
	src, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		return nil, "", err
	}
	d, err := parseDockerfile(rel, string(src))
	if err != nil {
		return nil, "", err
	}
	ig, err := readDockerignore(root)
	if err != nil {
		return nil, "", err
	}

	// What the final stage takes, and from which stage.
	var build *stage
	var outputs []string
	for _, in := range d.final().instrs {
		from := in.flags["from"]
		if in.cmd != "COPY" || from == "" {
			continue
		}
		s := d.stage(from)
		if s == nil || (build != nil && s != build) {
			return nil, "", fmt.Errorf("%s:%d: COPY --from=%s: the test supports one build stage", rel, in.line, from)
		}
		build = s
		srcs, _ := copySources(in)
		outputs = append(outputs, srcs...)
	}
	if build == nil {
		return nil, "", fmt.Errorf("%s: the final stage copies nothing from a build stage", rel)
	}
	// The outputs share one top directory (/out), which RUN lines write to.
	var outRoot string
	for _, o := range outputs {
		parts := strings.SplitN(strings.TrimPrefix(path.Clean(o), "/"), "/", 2)
		if !path.IsAbs(o) || len(parts) < 2 || (outRoot != "" && outRoot != "/"+parts[0]) {
			return nil, "", fmt.Errorf("%s: the build stage's outputs %q must share one top directory such as /out", rel, outputs)
		}
		outRoot = "/" + parts[0]
	}
	fsRoot := filepath.Join(dir, "fs")
	host := func(p string) string { return filepath.Join(fsRoot, filepath.FromSlash(p)) }
	mapOut := regexp.MustCompile(`(^|[\s='"])` + regexp.QuoteMeta(outRoot) + `(/|[\s'"]|$)`)

	vars := map[string]string{}
	expand := func(s string) string { return os.Expand(s, func(k string) string { return vars[k] }) }
	var log bytes.Buffer
	wd := "/"
	for _, in := range build.instrs {
		switch in.cmd {
		case "WORKDIR":
			wd = path.Join(wd, expand(in.args))
			if err := os.MkdirAll(host(wd), 0o755); err != nil {
				return nil, "", err
			}
		case "ARG":
			for _, kv := range envPairs(in) {
				name, def := kv[0], kv[1]
				v, ok := args[name]
				if !ok {
					v, ok = platformArgs[name]
				}
				if !ok {
					v = expand(def)
				}
				vars[name] = v
			}
		case "ENV":
			for _, kv := range envPairs(in) {
				vars[kv[0]] = expand(kv[1])
			}
		case "COPY":
			for k := range in.flags {
				if k != "chown" && k != "chmod" && k != "link" {
					return nil, "", fmt.Errorf("%s:%d: COPY --%s in the build stage is not supported by the test", rel, in.line, k)
				}
			}
			srcs, dest := copySources(in)
			dest = expand(dest)
			if !path.IsAbs(dest) {
				dest = path.Join(wd, dest)
			}
			if len(srcs) > 1 || strings.HasSuffix(in.args, "/") || strings.HasSuffix(in.args, ".") {
				if err := os.MkdirAll(host(dest), 0o755); err != nil {
					return nil, "", err
				}
			}
			for _, s := range srcs {
				if err := copyContext(root, ig, expand(s), host(dest)); err != nil {
					return nil, "", fmt.Errorf("%s:%d: %w", rel, in.line, err)
				}
			}
		case "RUN":
			for k, v := range in.flags {
				if k != "mount" || !strings.Contains(v, "type=cache") {
					return nil, "", fmt.Errorf("%s:%d: RUN --%s=%s is not supported by the test", rel, in.line, k, v)
				}
			}
			script := in.args
			if in.exec != nil {
				script = strings.Join(in.exec, " ")
			}
			script = mapOut.ReplaceAllString(script, "${1}"+host(outRoot)+"${2}")
			cmd := exec.CommandContext(ctx, "sh", "-c", script)
			cmd.Dir = host(wd)
			cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local")
			for k, v := range vars {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			fmt.Fprintf(&log, "+ %s\n", script)
			cmd.Stdout, cmd.Stderr = &log, &log
			start := time.Now()
			if err := cmd.Run(); err != nil {
				return nil, log.String(), fmt.Errorf("%s:%d: RUN failed: %w", rel, in.line, err)
			}
			fmt.Fprintf(&log, "  (%.1fs)\n", time.Since(start).Seconds())
		case "LABEL", "EXPOSE", "USER", "SHELL", "STOPSIGNAL", "ONBUILD", "VOLUME", "HEALTHCHECK", "CMD", "ENTRYPOINT":
			// No effect on the files the stage makes.
		default:
			return nil, "", fmt.Errorf("%s:%d: %s in the build stage is not supported by the test", rel, in.line, in.cmd)
		}
	}
	out := map[string]string{}
	for _, o := range outputs {
		p := host(o)
		if _, err := os.Stat(p); err != nil {
			return nil, log.String(), fmt.Errorf("%s: the final stage copies %s, which the build stage did not make", rel, o)
		}
		out[path.Clean(o)] = p
	}
	return out, log.String(), nil
}

// build is one Dockerfile's build stage, run once per test binary.
type build struct {
	once    sync.Once
	outputs map[string]string
	log     string
	err     error
}

var builds = struct {
	sync.Mutex
	m map[string]*build
}{m: map[string]*build{}}

// buildOutputs runs the build stage of the Dockerfile rel (once for all
// tests, with VERSION=testVersion) and returns its outputs by container
// path.
func buildOutputs(t testing.TB, rel string) map[string]string {
	t.Helper()
	builds.Lock()
	b := builds.m[rel]
	if b == nil {
		b = &build{}
		builds.m[rel] = b
	}
	builds.Unlock()
	b.once.Do(func() {
		dir, err := os.MkdirTemp(shared, "build-")
		if err != nil {
			b.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		b.outputs, b.log, b.err = runBuildStage(ctx, repoRoot(t), rel, dir, map[string]string{"VERSION": testVersion})
	})
	if b.err != nil {
		t.Fatalf("running the build stage of %s: %v\n%s", rel, b.err, b.log)
	}
	return b.outputs
}

// issuerBinary and resourceAPIBinary are the binaries the Dockerfiles'
// build stages make: what the images run.
func issuerBinary(t testing.TB) string {
	return buildOutputs(t, "Dockerfile")["/out/issuer"]
}

func resourceAPIBinary(t testing.TB) string {
	return buildOutputs(t, "deploy/resource-api/Dockerfile")["/out/resource-api"]
}

// TestDockerfileBuildStage runs each Dockerfile's build stage as a script
// and checks what it makes: a static executable (no program interpreter,
// no shared libraries) built without cgo and with -trimpath, that runs, and
// for the issuer reports the VERSION it was built with.
func TestDockerfileBuildStage(t *testing.T) {
	for _, df := range dockerfiles {
		t.Run(df.path, func(t *testing.T) {
			outs := buildOutputs(t, df.path)
			for cpath, p := range outs {
				info, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if info.IsDir() {
					continue // /out/data: the volume's directory
				}
				checkStatic(t, cpath, p)
			}
			if df.opts.versionSymbol == "" {
				return
			}
			out, err := exec.Command(issuerBinary(t), "version").CombinedOutput()
			if err != nil {
				t.Fatalf("issuer version: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), testVersion) {
				t.Errorf("issuer version printed %q, want it to contain the build's VERSION %q", out, testVersion)
			}
		})
	}
}

// checkStatic fails unless the executable at p is statically linked and
// built as the Dockerfile promises.
func checkStatic(t *testing.T, name, p string) {
	t.Helper()
	f, err := elf.Open(p)
	if err != nil {
		t.Fatalf("%s: not an ELF executable: %v", name, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			t.Errorf("%s has a program interpreter (PT_INTERP): it is dynamically linked", name)
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("%s needs shared libraries (DT_NEEDED) %q (err %v): it would not run on distroless/static", name, libs, err)
	}
	if f.Section(".symtab") != nil {
		t.Errorf("%s has a symbol table: the build lost -ldflags -s", name)
	}
	bi, err := buildinfo.ReadFile(p)
	if err != nil {
		t.Fatalf("%s: build info: %v", name, err)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if settings["CGO_ENABLED"] != "0" {
		t.Errorf("%s: CGO_ENABLED=%q, want 0", name, settings["CGO_ENABLED"])
	}
	if settings["-trimpath"] != "true" {
		t.Errorf("%s: built without -trimpath", name)
	}
}

// TestDockerignore checks the build context's exclusions: what the build
// must not see (secrets, local state, build outputs) is left out, and the
// matcher works as Docker's does for these forms.
func TestDockerignore(t *testing.T) {
	ig, err := readDockerignore(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want bool
	}{
		{"deploy/.env", true},
		{"deploy/tls/issuer.key", true},
		{"data/issuer.db", true},
		{".git/config", true},
		{"interop/node_modules/jose/package.json", true},
		{"issuer", true},
		{"x.test", true},
		{"cmd/issuer/main.go", false},
		{"cmd/issuer", false},
		{"deploy/.env.example", false},
		{"internal/deploytest/x.test", false}, // *.test matches at the top only, as in Docker
		{"go.mod", false},
	} {
		if got := ig.ignored(tc.path); got != tc.want {
			t.Errorf("ignored(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
}
