// Package doclinks checks the links of the repository's Markdown pages
// (README.md and docs/*.md): every relative link names a file or directory
// that exists, and every #fragment names a heading (or an HTML id) of the
// page it points into, with GitHub's rules for heading anchors. Its test
// runs the check on the repository, so that moving or renaming a section
// cannot leave a dead link behind.
package doclinks

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"unicode"
)

// Problem is one dead link.
type Problem struct {
	File   string // the page, relative to the root
	Line   int    // 1-based
	Target string // the link as written
	Why    string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s:%d: link %q: %s", p.File, p.Line, p.Target, p.Why)
}

var (
	inlineLink = regexp.MustCompile(`\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	refLink    = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$`)
	codeSpan   = regexp.MustCompile("`+[^`]*`+")
	heading    = regexp.MustCompile(`^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$`)
	htmlID     = regexp.MustCompile(`<a\s+(?:id|name)="([^"]+)"`)
	linkText   = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
)

// Check checks the links of each page (paths relative to root) and
// returns the dead ones.
func Check(root string, pages []string) ([]Problem, error) {
	anchors := map[string]map[string]bool{} // cleaned path → anchors
	anchorsOf := func(path string) (map[string]bool, error) {
		if a, ok := anchors[path]; ok {
			return a, nil
		}
		data, err := os.ReadFile(filepath.Join(root, path))
		if err != nil {
			return nil, err
		}
		a := Anchors(string(data))
		anchors[path] = a
		return a, nil
	}
	var problems []Problem
	for _, page := range pages {
		data, err := os.ReadFile(filepath.Join(root, page))
		if err != nil {
			return nil, err
		}
		for _, l := range links(string(data)) {
			add := func(why string) {
				problems = append(problems, Problem{File: page, Line: l.line, Target: l.target, Why: why})
			}
			u, err := url.Parse(l.target)
			if err != nil {
				add("does not parse")
				continue
			}
			if u.Scheme != "" || u.Host != "" {
				continue // not relative: an http(s) or mailto link
			}
			path := page
			if u.Path != "" {
				if strings.HasPrefix(u.Path, "/") {
					add("starts with /: GitHub resolves it from the site's root, not the repository's; make it relative")
					continue
				}
				path = filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(page), u.Path)))
				if path == ".." || strings.HasPrefix(path, "../") {
					add("points outside the repository")
					continue
				}
				if _, err := os.Stat(filepath.Join(root, path)); err != nil {
					add("no such file or directory: " + path)
					continue
				}
			}
			if u.Fragment == "" {
				continue
			}
			if !strings.HasSuffix(path, ".md") {
				continue // a line anchor of a source file, which GitHub makes
			}
			a, err := anchorsOf(path)
			if err != nil {
				add(err.Error())
				continue
			}
			if !a[u.Fragment] {
				add(fmt.Sprintf("%s has no heading with the anchor #%s", path, u.Fragment))
			}
		}
	}
	return problems, nil
}

type link struct {
	line   int
	target string
}

// links returns the links of a Markdown page, outside code blocks and
// code spans.
func links(md string) []link {
	var out []link
	fenced := false
	for i, line := range strings.Split(md, "\n") {
		if t := strings.TrimSpace(line); strings.HasPrefix(t, "```") || strings.HasPrefix(t, "~~~") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		line = codeSpan.ReplaceAllString(line, "")
		for _, m := range inlineLink.FindAllStringSubmatch(line, -1) {
			out = append(out, link{i + 1, m[1]})
		}
		if m := refLink.FindStringSubmatch(line); m != nil {
			out = append(out, link{i + 1, m[1]})
		}
	}
	return out
}

// Anchors returns the anchors of a Markdown page: its headings' GitHub
// anchors (lower case, punctuation dropped, spaces as hyphens, -1, -2 …
// after repeats) and the ids of its <a id="…"> elements.
func Anchors(md string) map[string]bool {
	a := map[string]bool{}
	seen := map[string]int{}
	fenced := false
	for _, line := range strings.Split(md, "\n") {
		if t := strings.TrimSpace(line); strings.HasPrefix(t, "```") || strings.HasPrefix(t, "~~~") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		for _, m := range htmlID.FindAllStringSubmatch(line, -1) {
			a[m[1]] = true
		}
		m := heading.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		slug := Slug(m[2])
		if n := seen[slug]; n > 0 {
			a[fmt.Sprintf("%s-%d", slug, n)] = true
		} else {
			a[slug] = true
		}
		seen[slug]++
	}
	return a
}

// Slug returns GitHub's anchor of a heading's text.
func Slug(text string) string {
	text = linkText.ReplaceAllString(text, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
			b.WriteRune(r)
		}
	}
	return b.String()
}
