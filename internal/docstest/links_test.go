package docstest

import (
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// Every Markdown file of the repository links only to files that exist
// in it, and mentions no place outside it.
func TestMarkdownLinks(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	files, err := markdownFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"README.md", "docs/architecture.md"} {
		if !slices.Contains(files, want) {
			t.Fatalf("%s not found among the Markdown files %v: is the root right?", want, files)
		}
	}
	repo := dirRepo(root)
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range check(f, string(data), repo) {
			t.Error(p)
		}
	}
}

// The checker itself, on small documents: it must catch each kind of rot.
func TestCheckerCatches(t *testing.T) {
	repo := mapRepo{
		"README.md":       "# gogoc\n\n## The two commands\n\n## Status\n",
		"docs/a.md":       "# A\n\n## Wire formats: RUDP and TCP\n\n## Status\n\n## Status\n",
		"tsp/rudp.go":     "package tsp\n",
		"openwrt/gogoc/x": "",
	}
	for _, c := range []struct {
		name, file, doc string
		want            []string // substrings of the problems, in order; none: clean
	}{
		{"relative links that resolve", "docs/a.md",
			"[x](../README.md) [y](../tsp/rudp.go) ![i](../openwrt/gogoc/x) [z](a.md#status-1) [w](#wire-formats-rudp-and-tcp)\n", nil},
		{"a directory", "README.md", "[t](tsp) [t](tsp/)\n", nil},
		{"external and mail links", "README.md", "[r](https://www.rfc-editor.org/rfc/rfc5572) <https://example.net/> [m](mailto:a@b.example)\n", nil},
		{"missing file", "README.md", "see [spec](docs/spec.md).\n", []string{"README.md:1: link docs/spec.md: no such file"}},
		{"out of the repository", "docs/a.md", "[d](../../shared/DESIGN.md)\n",
			[]string{"docs/a.md:1: mentions ../shared", "docs/a.md:1: link ../../shared/DESIGN.md: outside the repository"}},
		{"shared in code", "README.md", "Design: `../shared/DESIGN.md`.\n", []string{"README.md:1: mentions ../shared"}},
		{"a /work path", "README.md", "```\ncat /work/shared/spec/TSP-CLIENT-SPEC.md\n```\n", []string{"README.md:2: mentions /work/"}},
		{"absolute link", "README.md", "[f](/etc/config/gogoc)\n", []string{"README.md:1: link /etc/config/gogoc: absolute"}},
		{"file URL", "README.md", "[f](file:///tmp/x)\n", []string{"README.md:1: link file:///tmp/x: absolute"}},
		{"missing anchor", "README.md", "[s](docs/a.md#statuses) [t](#the-three-commands)\n",
			[]string{"README.md:1: link docs/a.md#statuses: no heading", "README.md:1: link #the-three-commands: no heading"}},
		{"reference definition", "README.md", "[spec]: docs/gone.md\n", []string{"README.md:1: link docs/gone.md: no such file"}},
		{"HTML", "README.md", `<img src="docs/gone.svg">` + "\n", []string{"README.md:1: link docs/gone.svg: no such file"}},
		{"links in code are text", "README.md", "`[x](gone.md)`\n```\n[y](gone.md)\n```\n", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := check(c.file, c.doc, repo)
			if len(got) != len(c.want) {
				t.Fatalf("problems %q, want %d like %q", got, len(c.want), c.want)
			}
			for i, w := range c.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %d %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}

// GitHub's heading anchors, which the fragments must match.
func TestSlug(t *testing.T) {
	for in, want := range map[string]string{
		"Wire formats: RUDP and TCP":        "wire-formats-rudp-and-tcp",
		"`tsp/policy.go`: the address rule": "tsppolicygo-the-address-rule",
		"From configuration to LAN":         "from-configuration-to-lan",
		"Config → protocol":                 "config--protocol",
		"log_file and 2.0.2":                "log_file-and-202",
		"[Links](x.md) *stay*":              "links-stay",
	} {
		if got := slug(in); got != want {
			t.Errorf("slug(%q) = %q, want %q", in, got, want)
		}
	}
}

// repo answers what check needs to know about the repository.
type repo interface {
	// kind is "file", "dir" or "" (missing) for a slash-separated path
	// relative to the root.
	kind(rel string) string
	// read returns a Markdown file's text.
	read(rel string) (string, error)
}

type dirRepo string

func (r dirRepo) kind(rel string) string {
	st, err := os.Stat(filepath.Join(string(r), filepath.FromSlash(rel)))
	switch {
	case err != nil:
		return ""
	case st.IsDir():
		return "dir"
	}
	return "file"
}

func (r dirRepo) read(rel string) (string, error) {
	b, err := os.ReadFile(filepath.Join(string(r), filepath.FromSlash(rel)))
	return string(b), err
}

type mapRepo map[string]string

func (m mapRepo) kind(rel string) string {
	if _, ok := m[rel]; ok {
		return "file"
	}
	for k := range m {
		if strings.HasPrefix(k, rel+"/") {
			return "dir"
		}
	}
	return ""
}

func (m mapRepo) read(rel string) (string, error) {
	if s, ok := m[rel]; ok {
		return s, nil
	}
	return "", fs.ErrNotExist
}

// markdownFiles lists the *.md files under root, slash-separated and
// relative, leaving out hidden directories and build output.
func markdownFiles(root string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "dist" || d.Name() == "bin") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".md") {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out, err
}

var (
	// Places outside the repository that a document must not lean on:
	// the founding project's shared directory and the build machine.
	outside = regexp.MustCompile(`\.\./shared\b|/work/`)
	fence   = regexp.MustCompile("^ {0,3}(```|~~~)")
	// [text](target "title") and ![alt](target); a target without spaces,
	// optionally in <>.
	inlineLink = regexp.MustCompile(`\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	refDef     = regexp.MustCompile(`^ {0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?`)
	htmlLink   = regexp.MustCompile(`(?:href|src)="([^"]+)"`)
	scheme     = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)
	heading    = regexp.MustCompile(`^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$`)
	htmlAnchor = regexp.MustCompile(`<a\s+(?:name|id)="([^"]+)"`)
)

// check returns the problems of the Markdown file rel (slash-separated,
// relative to the repository root) with text doc, one "file:line: ..."
// each.
func check(rel, doc string, r repo) []string {
	var out []string
	bad := func(line int, format string, args ...any) {
		out = append(out, fmt.Sprintf("%s:%d: ", rel, line)+fmt.Sprintf(format, args...))
	}
	inFence := false
	for i, line := range strings.Split(doc, "\n") {
		n := i + 1
		if m := outside.FindString(line); m != "" {
			bad(n, "mentions %s, which is not part of the repository", strings.TrimSuffix(m, "/")+"/")
		}
		if fence.MatchString(line) {
			inFence = !inFence
			continue
		}
		if inFence {
			continue
		}
		text := stripCode(line)
		var targets []string
		for _, re := range []*regexp.Regexp{inlineLink, refDef, htmlLink} {
			for _, m := range re.FindAllStringSubmatch(text, -1) {
				targets = append(targets, m[1])
			}
		}
		for _, target := range targets {
			if p := checkTarget(rel, target, r); p != "" {
				bad(n, "link %s: %s", target, p)
			}
		}
	}
	return out
}

// checkTarget says what is wrong with one link target, or "".
func checkTarget(from, target string, r repo) string {
	if scheme.MatchString(target) {
		if strings.HasPrefix(strings.ToLower(target), "file:") {
			return "absolute: a file outside the repository"
		}
		return "" // a web or mail address
	}
	if strings.HasPrefix(target, "/") {
		return "absolute: link relative to the file instead"
	}
	p, frag, _ := strings.Cut(target, "#")
	p, err := url.PathUnescape(p)
	if err != nil {
		return "bad escape in the path"
	}
	dest := from
	if p != "" {
		dest = path.Join(path.Dir(from), p)
		if dest == ".." || strings.HasPrefix(dest, "../") {
			return "outside the repository"
		}
		switch r.kind(dest) {
		case "":
			return "no such file in the repository"
		case "dir":
			if frag != "" {
				return "a fragment on a directory"
			}
			return ""
		}
	}
	if frag == "" || !strings.HasSuffix(dest, ".md") {
		return ""
	}
	doc, err := r.read(dest)
	if err != nil {
		return err.Error()
	}
	if !slices.Contains(anchors(doc), frag) {
		return "no heading #" + frag + " in " + dest
	}
	return ""
}

// anchors lists the fragment names a Markdown document defines: its
// headings' slugs (repeats numbered -1, -2, … as GitHub does) and HTML
// name/id anchors.
func anchors(doc string) []string {
	var out []string
	seen := map[string]int{}
	inFence := false
	for _, line := range strings.Split(doc, "\n") {
		if fence.MatchString(line) {
			inFence = !inFence
			continue
		}
		if inFence {
			continue
		}
		for _, m := range htmlAnchor.FindAllStringSubmatch(line, -1) {
			out = append(out, m[1])
		}
		m := heading.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		s := slug(m[1])
		if k := seen[s]; k > 0 {
			out = append(out, fmt.Sprintf("%s-%d", s, k))
		} else {
			out = append(out, s)
		}
		seen[s]++
	}
	return out
}

var linkText = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)

// slug is GitHub's anchor for a heading: the text without markup, lower
// case, keeping letters, digits, '-', '_' and spaces, spaces made '-'.
func slug(h string) string {
	h = linkText.ReplaceAllString(h, "$1")
	var b strings.Builder
	for _, c := range strings.ToLower(h) {
		switch {
		case c == ' ':
			b.WriteByte('-')
		case c == '-' || c == '_' || unicode.IsLetter(c) || unicode.IsNumber(c) || unicode.Is(unicode.M, c):
			b.WriteRune(c)
		}
	}
	return b.String()
}

// stripCode removes inline code spans (a run of backticks up to the next
// run of the same length), whose text is never a link.
func stripCode(line string) string {
	var b strings.Builder
	for i := 0; i < len(line); {
		if line[i] != '`' {
			b.WriteByte(line[i])
			i++
			continue
		}
		n := 0
		for i+n < len(line) && line[i+n] == '`' {
			n++
		}
		ticks := line[i : i+n]
		end := -1
		for j := i + n; j < len(line); {
			k := strings.Index(line[j:], ticks)
			if k < 0 {
				break
			}
			k += j
			m := 0
			for k+m < len(line) && line[k+m] == '`' {
				m++
			}
			if m == n {
				end = k
				break
			}
			j = k + m
		}
		if end < 0 { // no closing run: the backticks are text
			b.WriteString(ticks)
			i += n
			continue
		}
		i = end + n
	}
	return b.String()
}
