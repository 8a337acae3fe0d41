package pkgtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// apk and opkg order versions differently; scripts/version.sh must give
// strings both take and order alike. The two comparators below are
// written from apk-tools 3 (src/version.c: token_first/token_next,
// token_cmp, apk_version_compare) and opkg-lede (libopkg/pkg.c: verrevcmp,
// pkg_compare_versions; libopkg/pkg_parse.c: parse_version), and checked
// against the real tools (apk-tools 3.0.5 `apk version -t`, opkg-lede
// `opkg compare-versions`) on the table in TestComparators.

type apkToken int

const (
	apkInitial apkToken = iota
	apkDigit
	apkLetter
	apkSuffix
	apkSuffixNo
	apkHash
	apkRevision
	apkEnd
	apkInvalid
)

// apkSuffixes in apk's order; "" is the position of no suffix.
var apkSuffixes = []string{"alpha", "beta", "pre", "rc", "", "cvs", "svn", "git", "hg", "p"}

type apkTok struct {
	kind  apkToken
	num   uint64
	value string
	suf   int
}

// apkNext reads the token after prev from s.
func apkNext(prev apkToken, s string) (apkTok, string) {
	digits := func(kind apkToken, s string) (apkTok, string) {
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 {
			return apkTok{kind: apkInvalid}, s
		}
		n, _ := strconv.ParseUint(s[:i], 10, 64)
		return apkTok{kind: kind, num: n, value: s[:i]}, s[i:]
	}
	if prev == apkInvalid {
		return digits(apkInitial, s)
	}
	if s == "" {
		return apkTok{kind: apkEnd}, s
	}
	switch c := s[0]; {
	case c >= 'a' && c <= 'z':
		if prev > apkDigit {
			break
		}
		return apkTok{kind: apkLetter, value: s[:1]}, s[1:]
	case c == '.' || (c >= '0' && c <= '9'):
		if c == '.' {
			if prev > apkDigit {
				break
			}
			s = s[1:]
		}
		switch prev {
		case apkInitial, apkDigit:
			return digits(apkDigit, s)
		case apkSuffix:
			return digits(apkSuffixNo, s)
		}
	case c == '_':
		if prev > apkSuffixNo {
			break
		}
		i := 1
		for i < len(s) && s[i] >= 'a' && s[i] <= 'z' {
			i++
		}
		for n, name := range apkSuffixes {
			if name != "" && s[1:i] == name {
				return apkTok{kind: apkSuffix, suf: n, value: s[1:i]}, s[i:]
			}
		}
	case c == '~':
		if prev >= apkHash {
			break
		}
		i := 1
		for i < len(s) && strings.ContainsRune("0123456789abcdefABCDEF", rune(s[i])) {
			i++
		}
		if i > 1 {
			return apkTok{kind: apkHash, value: s[1:i]}, s[i:]
		}
	case c == '-':
		if prev >= apkRevision || !strings.HasPrefix(s, "-r") {
			break
		}
		return digits(apkRevision, s[2:])
	}
	return apkTok{kind: apkInvalid}, s
}

func apkValid(v string) bool {
	t, s := apkNext(apkInvalid, v)
	for t.kind < apkEnd {
		t, s = apkNext(t.kind, s)
	}
	return t.kind == apkEnd
}

func cmp3[T int | uint64 | string](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func apkCompare(a, b string) int {
	ta, ra := apkNext(apkInvalid, a)
	tb, rb := apkNext(apkInvalid, b)
	for ta.kind == tb.kind && ta.kind < apkEnd {
		var r int
		switch ta.kind {
		case apkDigit:
			if ta.value[0] == '0' || tb.value[0] == '0' {
				r = cmp3(ta.value, tb.value)
				break
			}
			r = cmp3(ta.num, tb.num)
		case apkInitial, apkSuffixNo, apkRevision:
			r = cmp3(ta.num, tb.num)
		case apkLetter:
			r = cmp3(ta.value, tb.value)
		case apkSuffix:
			r = cmp3(ta.suf, tb.suf)
		default:
			r = cmp3(ta.value, tb.value)
		}
		if r != 0 {
			return r
		}
		ta, ra = apkNext(ta.kind, ra)
		tb, rb = apkNext(tb.kind, rb)
	}
	none := 4 // index of "" in apkSuffixes
	switch {
	case ta.kind == tb.kind:
		return 0
	case ta.kind == apkSuffix && ta.suf < none:
		return -1
	case tb.kind == apkSuffix && tb.suf < none:
		return 1
	case ta.kind > tb.kind:
		return -1
	}
	return 1
}

// opkgOrder is verrevcmp's order(): ~ first, then digits and the end,
// letters, then everything else.
func opkgOrder(c byte, ok bool) int {
	switch {
	case !ok:
		return 0
	case c == '~':
		return -1
	case c >= '0' && c <= '9':
		return 0
	case (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'):
		return int(c)
	}
	return int(c) + 256
}

func verrevcmp(a, b string) int {
	isDigit := func(s string, i int) bool { return i < len(s) && s[i] >= '0' && s[i] <= '9' }
	at := func(s string, i int) (byte, bool) {
		if i < len(s) {
			return s[i], true
		}
		return 0, false
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		for (i < len(a) && !isDigit(a, i)) || (j < len(b) && !isDigit(b, j)) {
			ca, oka := at(a, i)
			cb, okb := at(b, j)
			if d := opkgOrder(ca, oka) - opkgOrder(cb, okb); d != 0 {
				return d
			}
			i++
			j++
		}
		for i < len(a) && a[i] == '0' {
			i++
		}
		for j < len(b) && b[j] == '0' {
			j++
		}
		first := 0
		for isDigit(a, i) && isDigit(b, j) {
			if first == 0 {
				first = int(a[i]) - int(b[j])
			}
			i++
			j++
		}
		if isDigit(a, i) {
			return 1
		}
		if isDigit(b, j) {
			return -1
		}
		if first != 0 {
			return first
		}
	}
	return 0
}

// opkgCompare splits epoch:version-revision at the first colon and the
// last dash, as parse_version does.
func opkgCompare(a, b string) int {
	split := func(s string) (uint64, string, string) {
		var epoch uint64
		if e, rest, ok := strings.Cut(s, ":"); ok {
			epoch, _ = strconv.ParseUint(e, 10, 64)
			s = rest
		}
		if i := strings.LastIndexByte(s, '-'); i >= 0 {
			return epoch, s[:i], s[i+1:]
		}
		return epoch, s, ""
	}
	ea, va, ra := split(a)
	eb, vb, rb := split(b)
	if r := cmp3(ea, eb); r != 0 {
		return r
	}
	if r := verrevcmp(va, vb); r != 0 {
		return r
	}
	return verrevcmp(ra, rb)
}

func sign(n int) int { return cmp3(n, 0) }

// TestComparators holds the stand-ins to what the real tools answered.
func TestComparators(t *testing.T) {
	for _, c := range []struct {
		a, b      string
		apk, opkg int
	}{
		{"0.0.0.9~ffffff0-r1", "0.0.0.10~0000000-r1", -1, -1},
		{"0.0.0.123~935ee77-r1", "0.0.0.123~935ee78-r1", -1, -1},
		{"0.0.0.123~abc-r1", "0.1.0-r1", -1, -1},
		{"1.2.3-r1", "1.2.3.1~abc-r1", -1, -1},
		{"1.2.3.1~abc-r1", "1.2.4-r1", -1, -1},
		{"1.2.3.1~abc-r1", "1.2.3.1~abc-r2", -1, -1},
		{"0.0.0~935ee77-r1", "0.0.0.1~1-r1", -1, -1},
		{"1.2.3.1~abc-r1", "1.2.3.1-r1", 1, -1}, // the two disagree: version.sh never makes both
		{"0.0.0~935ee77-r1", "0.0.0~035ee77-r1", 1, 1},
		{"1.2.3.9~abc-r9", "1.2.3.10~abc-r1", -1, -1},
	} {
		if got := apkCompare(c.a, c.b); got != c.apk {
			t.Errorf("apk %s vs %s: %d, real apk says %d", c.a, c.b, got, c.apk)
		}
		if got := sign(opkgCompare(c.a, c.b)); got != c.opkg {
			t.Errorf("opkg %s vs %s: %d, real opkg says %d", c.a, c.b, got, c.opkg)
		}
	}
	// apk version -c on the real tool.
	for v, ok := range map[string]bool{
		"935ee77": false, "0.1.0-1": false, "0.1.0-r1": true, "0.0.0.123~935ee77-r1": true,
		"1.2.3_git5-r1": true, "0.0.0_git20261207.123-r1": false,
	} {
		if apkValid(v) != ok {
			t.Errorf("apk validity of %q: %v, real apk says %v", v, !ok, ok)
		}
	}
}

// TestVersionMonotonic runs scripts/version.sh in a scratch repository
// along a history with tags and checks each commit's version is valid for
// apk and greater than the one before under both comparators.
func TestVersionMonotonic(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "scripts"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "scripts/version.sh"), []byte(readFile(t, "../../scripts/version.sh")), 0o755); err != nil {
		t.Fatal(err)
	}
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.net"}, args...)...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	version := func() string {
		t.Helper()
		cmd := exec.Command("scripts/version.sh")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOGOC_PKG_VERSION=", "GOGOC_PKG_RELEASE=")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("version.sh: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	var prev string
	for i := 1; i <= 14; i++ {
		git("commit", "-q", "--allow-empty", "-m", "c"+strconv.Itoa(i))
		switch i {
		case 5:
			git("tag", "v0.1.0")
		case 9:
			git("tag", "v0.2.0")
		case 10:
			git("tag", "v0.10.0")
		}
		v := version()
		if !apkValid(v) {
			t.Errorf("commit %d: %q is not a valid apk version", i, v)
		}
		if prev != "" && (apkCompare(prev, v) >= 0 || opkgCompare(prev, v) >= 0) {
			t.Errorf("commit %d: %q does not follow %q (apk %d, opkg %d)", i, v, prev, apkCompare(prev, v), opkgCompare(prev, v))
		}
		t.Logf("commit %2d: %s", i, v)
		prev = v
	}
	// A tag apk and opkg read differently is refused.
	git("tag", "v0.11.0-rc1")
	git("commit", "-q", "--allow-empty", "-m", "rc")
	cmd := exec.Command("scripts/version.sh")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("tag v0.11.0-rc1 accepted: %s", out)
	}
}
