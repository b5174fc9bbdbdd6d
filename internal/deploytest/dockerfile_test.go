package deploytest

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	line  int               // line of its first word
	cmd   string            // FROM, RUN, … in upper case
	flags map[string]string // --name=value options before the arguments
	args  string            // the arguments after the options
	exec  []string          // args as a JSON array (exec form); nil in shell form
}

// stage is one FROM and the instructions up to the next.
type stage struct {
	index  int
	name   string // AS name, or ""
	base   string // the image or earlier stage it starts from
	from   instruction
	instrs []instruction
}

// dockerfile is a parsed Dockerfile.
type dockerfile struct {
	path       string
	globalArgs []instruction // ARG before the first FROM
	stages     []*stage
}

// final returns the last stage: the image the Dockerfile builds.
func (d *dockerfile) final() *stage { return d.stages[len(d.stages)-1] }

// stage returns the stage named or numbered ref, or nil.
func (d *dockerfile) stage(ref string) *stage {
	for _, s := range d.stages {
		if s.name == ref || fmt.Sprint(s.index) == ref {
			return s
		}
	}
	return nil
}

func readDockerfile(t *testing.T, rel string) *dockerfile {
	t.Helper()
	p := filepath.Join(repoRoot(t), rel)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	d, err := parseDockerfile(rel, string(b))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// parseDockerfile parses src as the Dockerfile reference describes it, for
// the escape character \: comments and parser directives skipped, lines
// ending in \ joined, options (--name=value) split off, exec form (a JSON
// array of strings) recognised.
func parseDockerfile(name, src string) (*dockerfile, error) {
	d := &dockerfile{path: name}
	var (
		logical string
		start   int
		cont    bool
	)
	flush := func() error {
		defer func() { logical, cont = "", false }()
		text := strings.TrimSpace(logical)
		if text == "" {
			return nil
		}
		word, rest, _ := strings.Cut(text, " ")
		if i := strings.IndexAny(word, "\t"); i >= 0 {
			word, rest = word[:i], word[i+1:]+" "+rest
		}
		in := instruction{line: start, cmd: strings.ToUpper(word), flags: map[string]string{}}
		rest = strings.TrimSpace(rest)
		for strings.HasPrefix(rest, "--") {
			tok, after, _ := strings.Cut(rest, " ")
			k, v, _ := strings.Cut(strings.TrimPrefix(tok, "--"), "=")
			in.flags[k] = v
			rest = strings.TrimSpace(after)
		}
		in.args = rest
		if strings.HasPrefix(rest, "[") {
			var a []string
			if json.Unmarshal([]byte(rest), &a) == nil {
				in.exec = a
			}
		}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			if len(f) == 0 {
				return fmt.Errorf("%s:%d: FROM without an image", name, in.line)
			}
			s := &stage{index: len(d.stages), base: f[0], from: in}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			} else if len(f) != 1 {
				return fmt.Errorf("%s:%d: cannot parse FROM %s", name, in.line, in.args)
			}
			d.stages = append(d.stages, s)
			return nil
		}
		if len(d.stages) == 0 {
			if in.cmd != "ARG" {
				return fmt.Errorf("%s:%d: %s before the first FROM", name, in.line, in.cmd)
			}
			d.globalArgs = append(d.globalArgs, in)
			return nil
		}
		s := d.stages[len(d.stages)-1]
		s.instrs = append(s.instrs, in)
		return nil
	}
	for i, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (cont && trimmed == "") {
			continue // comments and empty lines, also inside a continuation
		}
		if !cont {
			start = i + 1
		}
		body := strings.TrimRight(line, " \t\r")
		if strings.HasSuffix(body, `\`) {
			logical += strings.TrimSuffix(body, `\`)
			cont = true
			continue
		}
		logical += body
		if err := flush(); err != nil {
			return nil, err
		}
	}
	if cont {
		return nil, fmt.Errorf("%s: the last instruction ends with a line continuation", name)
	}
	if len(d.stages) == 0 {
		return nil, fmt.Errorf("%s: no FROM", name)
	}
	return d, nil
}

// words splits s at white space outside single or double quotes and removes
// the quotes, as the Dockerfile's ENV and LABEL do.
func words(s string) []string {
	var (
		out   []string
		cur   strings.Builder
		quote rune
		in    bool
	)
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		out = append(out, cur.String())
	}
	return out
}

// envPairs returns the name=value pairs of an ENV (or the name and default
// of an ARG) instruction.
func envPairs(in instruction) [][2]string {
	w := words(in.args)
	if len(w) == 0 {
		return nil
	}
	if !strings.Contains(w[0], "=") { // legacy ENV name value / ARG name
		return [][2]string{{w[0], strings.Join(w[1:], " ")}}
	}
	var out [][2]string
	for _, p := range w {
		k, v, _ := strings.Cut(p, "=")
		out = append(out, [2]string{k, v})
	}
	return out
}

// copySources returns the sources and the destination of a COPY or ADD.
func copySources(in instruction) (srcs []string, dest string) {
	a := in.exec
	if a == nil {
		a = strings.Fields(in.args)
	}
	if len(a) < 2 {
		return nil, ""
	}
	return a[:len(a)-1], a[len(a)-1]
}

// lintOptions are what a Dockerfile must do beyond the general rules.
type lintOptions struct {
	// healthcheck is the exec-form command the final stage's HEALTHCHECK
	// must run; nil allows an explicit HEALTHCHECK NONE instead.
	healthcheck []string
	// versionSymbol is the variable the go build line must set with -X
	// (main.version); empty for none.
	versionSymbol string
}

// rule is one lint check, named like a hadolint rule so that a failure says
// which one.
type rule struct {
	name  string
	check func(d *dockerfile, o lintOptions) []string
}

// secretName matches names of variables that hold secrets: they must not be
// baked into an image (docker history and inspect show them).
var secretName = regexp.MustCompile(`(?i)secret|token|passw|private|credential|api_?key`)

var lintRules = []rule{
	{"pinned-base-image", func(d *dockerfile, _ lintOptions) []string {
		var ps []string
		for _, s := range d.stages {
			ref := s.base
			switch {
			case d.stage(ref) != nil && d.stage(ref).index < s.index, ref == "scratch":
				continue
			case strings.Contains(ref, "$"):
				ps = append(ps, fmt.Sprintf("line %d: FROM %s uses a variable; name a pinned image", s.from.line, ref))
				continue
			}
			if name, digest, ok := strings.Cut(ref, "@"); ok {
				if !strings.HasPrefix(digest, "sha256:") {
					ps = append(ps, fmt.Sprintf("line %d: FROM %s: a digest is sha256:…", s.from.line, name))
				}
				continue
			}
			last := ref[strings.LastIndex(ref, "/")+1:]
			_, tag, ok := strings.Cut(last, ":")
			switch {
			case !ok || tag == "":
				ps = append(ps, fmt.Sprintf("line %d: FROM %s has no tag; pin one (or a digest)", s.from.line, ref))
			case tag == "latest":
				ps = append(ps, fmt.Sprintf("line %d: FROM %s: :latest moves; pin a version", s.from.line, ref))
			}
		}
		return ps
	}},
	{"multi-stage", func(d *dockerfile, _ lintOptions) []string {
		if len(d.stages) < 2 {
			return []string{"one stage only: build in a stage of its own and copy the binary into the final one"}
		}
		for _, in := range d.final().instrs {
			if in.cmd == "COPY" && in.flags["from"] != "" {
				return nil
			}
		}
		return []string{"the final stage copies nothing from the build stage (COPY --from=…)"}
	}},
	{"copy-from-stage", func(d *dockerfile, _ lintOptions) []string {
		var ps []string
		for _, s := range d.stages {
			for _, in := range s.instrs {
				if from := in.flags["from"]; in.cmd == "COPY" && from != "" {
					if src := d.stage(from); src == nil || src.index >= s.index {
						ps = append(ps, fmt.Sprintf("line %d: COPY --from=%s names no earlier stage; build what the image holds here", in.line, from))
					}
				}
			}
		}
		return ps
	}},
	{"minimal-final-stage", func(d *dockerfile, _ lintOptions) []string {
		f := d.final()
		if f.base == "scratch" || strings.HasPrefix(f.base, "gcr.io/distroless/static") {
			return nil
		}
		return []string{fmt.Sprintf("line %d: the final stage starts FROM %s; use gcr.io/distroless/static-… or scratch", f.from.line, f.base)}
	}},
	{"no-run-in-final-stage", func(d *dockerfile, _ lintOptions) []string {
		var ps []string
		for _, in := range d.final().instrs {
			if in.cmd == "RUN" {
				ps = append(ps, fmt.Sprintf("line %d: RUN in the final stage: the image has no shell; do the work in the build stage", in.line))
			}
		}
		return ps
	}},
	{"non-root-user", func(d *dockerfile, _ lintOptions) []string {
		var user string
		for _, in := range d.final().instrs {
			if in.cmd == "USER" {
				user = strings.TrimSpace(in.args)
			}
		}
		uid, _, _ := strings.Cut(user, ":")
		switch {
		case user == "":
			return []string{"the final stage has no USER: the container would run as root"}
		case uid == "0" || uid == "root":
			return []string{"USER " + user + " is root"}
		case strings.Trim(uid, "0123456789") != "":
			// Kubernetes runAsNonRoot can only verify a numeric user.
			return []string{"USER " + user + " is not numeric; use uid:gid (65532:65532) so runAsNonRoot can verify it"}
		}
		return nil
	}},
	{"healthcheck-exec-form", func(d *dockerfile, o lintOptions) []string {
		var hc *instruction
		for i, in := range d.final().instrs {
			if in.cmd == "HEALTHCHECK" {
				hc = &d.final().instrs[i]
			}
		}
		if hc == nil {
			return []string{"the final stage has no HEALTHCHECK"}
		}
		if strings.EqualFold(strings.TrimSpace(hc.args), "NONE") {
			if o.healthcheck != nil {
				return []string{fmt.Sprintf("line %d: HEALTHCHECK NONE; run %q", hc.line, o.healthcheck)}
			}
			return nil
		}
		rest, ok := strings.CutPrefix(hc.args, "CMD ")
		var cmd []string
		if ok && json.Unmarshal([]byte(strings.TrimSpace(rest)), &cmd) != nil {
			cmd = nil
		}
		switch {
		case cmd == nil:
			return []string{fmt.Sprintf("line %d: HEALTHCHECK is not CMD [\"…\"] (exec form): the image has no shell", hc.line)}
		case o.healthcheck != nil && !slices.Equal(cmd, o.healthcheck):
			return []string{fmt.Sprintf("line %d: HEALTHCHECK runs %q, want %q", hc.line, cmd, o.healthcheck)}
		}
		return nil
	}},
	{"exec-form", func(d *dockerfile, _ lintOptions) []string {
		var ps []string
		seen := false
		for _, in := range d.final().instrs {
			if in.cmd != "ENTRYPOINT" && in.cmd != "CMD" {
				continue
			}
			seen = true
			if in.exec == nil {
				ps = append(ps, fmt.Sprintf("line %d: %s %s is in shell form; write a JSON array (no shell in the image, and signals must reach the process)", in.line, in.cmd, in.args))
			}
		}
		if !seen {
			ps = append(ps, "the final stage has neither ENTRYPOINT nor CMD")
		}
		return ps
	}},
	{"no-add-url", func(d *dockerfile, _ lintOptions) []string {
		var ps []string
		for _, s := range d.stages {
			for _, in := range s.instrs {
				if in.cmd != "ADD" {
					continue
				}
				srcs, _ := copySources(in)
				for _, src := range srcs {
					if strings.Contains(src, "://") || strings.HasPrefix(src, "git@") {
						ps = append(ps, fmt.Sprintf("line %d: ADD %s downloads at build time, unverified; fetch with a checksum in a RUN, or vendor it", in.line, src))
					}
				}
			}
		}
		return ps
	}},
	{"chown-writable-dirs", func(d *dockerfile, _ lintOptions) []string {
		f := d.final()
		var user string
		var volumes []string
		for _, in := range f.instrs {
			switch in.cmd {
			case "USER":
				user = strings.TrimSpace(in.args)
			case "VOLUME":
				v := in.exec
				if v == nil {
					v = strings.Fields(in.args)
				}
				volumes = append(volumes, v...)
			}
		}
		var ps []string
		for _, v := range volumes {
			ok := false
			for _, in := range f.instrs {
				_, dest := copySources(in)
				if in.cmd == "COPY" && path.Clean(dest) == path.Clean(v) && in.flags["chown"] != "" && in.flags["chown"] == user {
					ok = true
				}
			}
			if !ok {
				ps = append(ps, fmt.Sprintf("VOLUME %s is not created by a COPY --chown=%s: the non-root user could not write it", v, user))
			}
		}
		return ps
	}},
	{"no-secrets-in-env", func(d *dockerfile, _ lintOptions) []string {
		var ps []string
		all := slices.Clone(d.globalArgs)
		for _, s := range d.stages {
			all = append(all, s.instrs...)
		}
		for _, in := range all {
			if in.cmd != "ENV" && in.cmd != "ARG" {
				continue
			}
			for _, kv := range envPairs(in) {
				if secretName.MatchString(kv[0]) {
					ps = append(ps, fmt.Sprintf("line %d: %s %s: a secret in the image (docker history shows it); pass it at run time", in.line, in.cmd, kv[0]))
				}
			}
		}
		return ps
	}},
	{"static-go-build", func(d *dockerfile, o lintOptions) []string {
		var ps []string
		found := false
		for _, s := range d.stages {
			env := map[string]string{}
			for _, in := range s.instrs {
				if in.cmd == "ENV" {
					for _, kv := range envPairs(in) {
						env[kv[0]] = kv[1]
					}
				}
				if in.cmd != "RUN" || !strings.Contains(in.args, "go build") {
					continue
				}
				found = true
				if !strings.Contains(in.args, "CGO_ENABLED=0") && env["CGO_ENABLED"] != "0" {
					ps = append(ps, fmt.Sprintf("line %d: go build without CGO_ENABLED=0: the binary would need libc, which the final image lacks", in.line))
				}
				if !strings.Contains(in.args, "-trimpath") {
					ps = append(ps, fmt.Sprintf("line %d: go build without -trimpath", in.line))
				}
				if o.versionSymbol != "" && !strings.Contains(in.args, "-X "+o.versionSymbol+"=") {
					ps = append(ps, fmt.Sprintf("line %d: go build does not set the version (-ldflags \"-X %s=…\")", in.line, o.versionSymbol))
				}
			}
		}
		if !found {
			ps = append(ps, "no stage runs go build")
		}
		return ps
	}},
}

// lintDockerfile returns the problems each rule finds, by rule name.
func lintDockerfile(d *dockerfile, o lintOptions) map[string][]string {
	out := map[string][]string{}
	for _, r := range lintRules {
		if ps := r.check(d, o); len(ps) > 0 {
			out[r.name] = ps
		}
	}
	return out
}

// dockerfiles are the repository's Dockerfiles and what each must do.
var dockerfiles = []struct {
	path string
	opts lintOptions
}{
	{"Dockerfile", lintOptions{healthcheck: []string{"/usr/local/bin/issuer", "healthcheck"}, versionSymbol: "main.version"}},
	{"deploy/resource-api/Dockerfile", lintOptions{}},
}

// TestDockerfileLint runs every rule on the repository's Dockerfiles.
func TestDockerfileLint(t *testing.T) {
	for _, df := range dockerfiles {
		d := readDockerfile(t, df.path)
		for _, r := range lintRules {
			t.Run(df.path+"/"+r.name, func(t *testing.T) {
				for _, p := range r.check(d, df.opts) {
					t.Errorf("%s: %s", df.path, p)
				}
			})
		}
	}
}

// goodDockerfile passes every rule; each case of TestLintRules breaks it
// in one place.
const goodDockerfile = `# syntax=docker/dockerfile:1
FROM --platform=$BUILDPLATFORM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-X main.version=${VERSION}" -o /out/app ./cmd/app \
 && mkdir -p /out/data
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/app /app
COPY --from=build --chown=65532:65532 /out/data /data
ENV DATA_DIR=/data
VOLUME ["/data"]
USER 65532:65532
HEALTHCHECK --interval=10s CMD ["/app", "healthcheck"]
ENTRYPOINT ["/app"]
CMD ["serve"]
`

// TestLintRules checks that each rule catches what it is for.
func TestLintRules(t *testing.T) {
	opts := lintOptions{healthcheck: []string{"/app", "healthcheck"}, versionSymbol: "main.version"}
	good, err := parseDockerfile("good", goodDockerfile)
	if err != nil {
		t.Fatal(err)
	}
	if got := lintDockerfile(good, opts); len(got) > 0 {
		t.Fatalf("the good Dockerfile fails: %v", got)
	}
	tests := []struct {
		rule, old, new string
	}{
		{"pinned-base-image", "golang:1.26.8-bookworm", "golang"},
		{"pinned-base-image", "golang:1.26.8-bookworm", "golang:latest"},
		{"pinned-base-image", "static-debian12:nonroot", "static-debian12"},
		{"multi-stage", "COPY --from=build /out/app /app\nCOPY --from=build --chown=65532:65532 /out/data /data\n", ""},
		{"copy-from-stage", "--from=build /out/app", "--from=alpine:3 /bin/sh"},
		{"minimal-final-stage", "gcr.io/distroless/static-debian12:nonroot", "debian:12"},
		{"no-run-in-final-stage", "USER 65532:65532\n", "USER 65532:65532\nRUN mkdir /tmp/x\n"},
		{"non-root-user", "USER 65532:65532\n", ""},
		{"non-root-user", "USER 65532:65532\n", "USER 0:0\n"},
		{"non-root-user", "USER 65532:65532\n", "USER nonroot\n"},
		{"healthcheck-exec-form", `CMD ["/app", "healthcheck"]`, `CMD /app healthcheck`},
		{"healthcheck-exec-form", `HEALTHCHECK --interval=10s CMD ["/app", "healthcheck"]`, "HEALTHCHECK NONE"},
		{"healthcheck-exec-form", `HEALTHCHECK --interval=10s CMD ["/app", "healthcheck"]` + "\n", ""},
		{"healthcheck-exec-form", `CMD ["/app", "healthcheck"]`, `CMD ["/app", "version"]`},
		{"exec-form", `ENTRYPOINT ["/app"]`, "ENTRYPOINT /app"},
		{"exec-form", `ENTRYPOINT ["/app"]` + "\n" + `CMD ["serve"]` + "\n", ""},
		{"no-add-url", "COPY . .", "ADD https://example.com/tool.tgz /tmp/\nCOPY . ."},
		{"chown-writable-dirs", "COPY --from=build --chown=65532:65532 /out/data /data", "COPY --from=build /out/data /data"},
		{"no-secrets-in-env", "ENV DATA_DIR=/data", "ENV DATA_DIR=/data ISSUER_SECRET=x"},
		{"no-secrets-in-env", "ARG VERSION=dev", "ARG VERSION=dev\nARG NPM_TOKEN"},
		{"static-go-build", "CGO_ENABLED=0 ", ""},
		{"static-go-build", "-X main.version=${VERSION}", "-s -w"},
	}
	for _, tc := range tests {
		t.Run(tc.rule, func(t *testing.T) {
			if !strings.Contains(goodDockerfile, tc.old) {
				t.Fatalf("%q is not in the good Dockerfile", tc.old)
			}
			d, err := parseDockerfile("bad", strings.Replace(goodDockerfile, tc.old, tc.new, 1))
			if err != nil {
				t.Fatal(err)
			}
			if got := lintDockerfile(d, opts); len(got[tc.rule]) == 0 {
				t.Errorf("replacing %q by %q: rule %s found nothing (found %v)", tc.old, tc.new, tc.rule, got)
			}
		})
	}
}

// TestParseDockerfile checks the parser on the forms the rules depend on.
func TestParseDockerfile(t *testing.T) {
	d, err := parseDockerfile("good", goodDockerfile)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(d.stages), 2; got != want {
		t.Fatalf("stages: got %d, want %d", got, want)
	}
	b := d.stages[0]
	if b.name != "build" || b.base != "golang:1.26.8-bookworm" || b.from.flags["platform"] != "$BUILDPLATFORM" {
		t.Errorf("build stage: got name %q base %q flags %v", b.name, b.base, b.from.flags)
	}
	run := b.instrs[3]
	if run.cmd != "RUN" || !strings.HasSuffix(run.args, "./cmd/app  && mkdir -p /out/data") {
		t.Errorf("RUN with a continuation: got %s %q", run.cmd, run.args)
	}
	f := d.final()
	var hc, ep instruction
	for _, in := range f.instrs {
		switch in.cmd {
		case "HEALTHCHECK":
			hc = in
		case "ENTRYPOINT":
			ep = in
		}
	}
	if hc.flags["interval"] != "10s" || hc.args != `CMD ["/app", "healthcheck"]` {
		t.Errorf("HEALTHCHECK: got flags %v args %q", hc.flags, hc.args)
	}
	if !slices.Equal(ep.exec, []string{"/app"}) {
		t.Errorf("ENTRYPOINT exec form: got %q", ep.exec)
	}
	if got, want := envPairs(instruction{args: `A=1 B="two words" C=`}), [][2]string{{"A", "1"}, {"B", "two words"}, {"C", ""}}; !slices.Equal(got, want) {
		t.Errorf("ENV pairs: got %q, want %q", got, want)
	}
}
