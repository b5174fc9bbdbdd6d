package doclinks

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestRepositoryLinks checks the links of README.md and docs/*.md, and
// that the README links every page of docs/ (its map).
func TestRepositoryLinks(t *testing.T) {
	const root = "../.."
	pages := []string{"README.md"}
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		pages = append(pages, "docs/"+filepath.Base(d))
	}
	if len(pages) < 2 {
		t.Fatal("no pages in docs/")
	}
	problems, err := Check(root, pages)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}

	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var linked []string
	for _, l := range links(string(readme)) {
		linked = append(linked, strings.SplitN(l.target, "#", 2)[0])
	}
	for _, p := range pages[1:] {
		if !slices.Contains(linked, p) {
			t.Errorf("README.md does not link %s: add it to the table under \"Documentation\"", p)
		}
	}
}

// TestCheck: the checker finds each kind of dead link, and passes the
// good ones, in a tree made for it.
func TestCheck(t *testing.T) {
	root := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("main.go", "package main\n")
	write("docs/a.md", "# Page A\n\n## Set-up: the `issuer` command (five minutes)\n\n## Notes\n\n## Notes\n\n<a id=\"custom\"></a>\n")
	write("README.md", strings.Join([]string{
		"# Readme",
		"[ok file](docs/a.md) [ok dir](docs/) [ok source](main.go#L1)",
		"[ok anchor](docs/a.md#set-up-the-issuer-command-five-minutes) [ok repeat](docs/a.md#notes-1)",
		"[ok html id](docs/a.md#custom) [ok self](#readme) [external](https://example.com/x#y)",
		"`[in code](nowhere.md)`",
		"```",
		"[in a block](nowhere.md)",
		"```",
		"[missing file](docs/b.md)",
		"[missing anchor](docs/a.md#setup)",
		"[missing self anchor](#nope)",
		"[absolute](/docs/a.md)",
		"[outside](../x.md)",
		"[ref]: docs/c.md",
	}, "\n"))
	problems, err := Check(root, []string{"README.md"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range problems {
		got = append(got, p.Target)
	}
	want := []string{"docs/b.md", "docs/a.md#setup", "#nope", "/docs/a.md", "../x.md", "docs/c.md"}
	if !slices.Equal(got, want) {
		t.Errorf("dead links = %q, want %q", got, want)
	}
}

func TestSlug(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"Quick start (five minutes, with curl)", "quick-start-five-minutes-with-curl"},
		{"In Go: the `verify` package", "in-go-the-verify-package"},
		{"Running in production: server behaviour", "running-in-production-server-behaviour"},
		{"Behind a [proxy](x.md) — trusted", "behind-a-proxy--trusted"},
		{"key_rotation_period × 2", "key_rotation_period--2"},
	} {
		if got := Slug(tt.in); got != tt.want {
			t.Errorf("Slug(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
