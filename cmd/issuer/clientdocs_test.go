package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/adminapi"
)

// TestClientDocs runs every code block of docs/clients.md, as written,
// against a real issuer with a client registered the default way
// (client_secret_basic): Go with this module's golang.org/x/oauth2,
// Python with Debian's requests, Node with interop's openid-client, and
// curl. Each must get a token with scope read.
func TestClientDocs(t *testing.T) {
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(repo, "docs", "clients.md"))
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t)
	c := ts.createClient(t, adminapi.ClientMetadata{ClientName: "docs", Scope: "read write"})
	env := append(os.Environ(), "ISSUER_URL="+ts.URL, "CLIENT_ID="+c.ClientID, "CLIENT_SECRET="+c.ClientSecret)

	langs := map[string]func(t *testing.T, dir, code string) *exec.Cmd{
		"go": func(t *testing.T, dir, code string) *exec.Cmd {
			file := filepath.Join(dir, "main.go")
			write(t, file, code)
			cmd := exec.Command("go", "run", file)
			cmd.Dir = repo // its imports come from this module
			return cmd
		},
		"python": func(t *testing.T, dir, code string) *exec.Cmd {
			file := filepath.Join(dir, "client.py")
			write(t, file, code)
			return exec.Command("/usr/bin/python3", file) // Debian's, which has python3-requests
		},
		"js": func(t *testing.T, dir, code string) *exec.Cmd {
			if _, err := os.Stat(filepath.Join(repo, "interop", "node_modules", "openid-client")); err != nil {
				nodeMissing(t, "interop/node_modules/openid-client is not installed")
			}
			if _, err := exec.LookPath("node"); err != nil {
				nodeMissing(t, "node is not installed")
			}
			// Node resolves openid-client from the script's directory.
			f, err := os.CreateTemp(filepath.Join(repo, "interop"), ".client-example-*.mjs")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Remove(f.Name()) })
			f.Close()
			write(t, f.Name(), code)
			return exec.Command("node", f.Name())
		},
		"sh": func(t *testing.T, dir, code string) *exec.Cmd {
			return exec.Command("bash", "-euo", "pipefail", "-c", code)
		},
	}
	want := map[string]string{
		"go":     "got a token for scope read, valid until ",
		"python": "got a token for scope read, expires in ",
		"js":     "got a token for scope read, expires in ",
		"sh":     `"scope":"read"`,
	}
	seen := map[string]bool{}
	for i, b := range codeBlocks(string(doc)) {
		run, ok := langs[b.lang]
		if !ok {
			t.Errorf("docs/clients.md: block %d is %q, which this test cannot run", i, b.lang)
			continue
		}
		seen[b.lang] = true
		t.Run(fmt.Sprintf("%d-%s", i, b.lang), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := run(t, t.TempDir(), b.code)
			dir := cmd.Dir
			cmd = exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
			cmd.Dir, cmd.Env = dir, env
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			if !strings.Contains(out.String(), want[b.lang]) {
				t.Errorf("output %q, want it to contain %q", out.String(), want[b.lang])
			}
		})
	}
	for lang := range want {
		if !seen[lang] {
			t.Errorf("docs/clients.md has no %s example", lang)
		}
	}
}

func write(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// nodeMissing fails the test, or skips it when ISSUER_SKIP_NODE=1, as the
// interoperability check does.
func nodeMissing(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("ISSUER_SKIP_NODE") == "1" {
		t.Skipf("skipping the Node.js example (ISSUER_SKIP_NODE=1): %s", why)
	}
	t.Fatalf("%s: run make test, which installs the npm packages (npm ci in interop/), or set ISSUER_SKIP_NODE=1", why)
}

type codeBlock struct{ lang, code string }

// codeBlocks returns the fenced code blocks of a Markdown page that name
// their language.
func codeBlocks(md string) []codeBlock {
	var out []codeBlock
	for {
		i := strings.Index(md, "\n```")
		if i < 0 {
			return out
		}
		md = md[i+4:]
		nl := strings.IndexByte(md, '\n')
		if nl < 0 {
			return out
		}
		lang := strings.TrimSpace(md[:nl])
		md = md[nl+1:]
		end := strings.Index(md, "\n```")
		if end < 0 {
			return out
		}
		if lang != "" {
			out = append(out, codeBlock{lang, md[:end+1]})
		}
		md = md[end+4:]
	}
}
