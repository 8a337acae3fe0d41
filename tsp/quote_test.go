package tsp

import (
	"strings"
	"testing"
)

// quoteRef is how the username was escaped before quoteEscape replaced
// it (for size): the reference quoteEscape must match.
var quoteRef = strings.NewReplacer(`\`, `\\`, `"`, `\"`)

// FuzzQuoteEscape holds quoteEscape to strings.Replacer's escaping of
// the DIGEST-MD5 username, byte for byte, for any input (invalid UTF-8
// included).
func FuzzQuoteEscape(f *testing.F) {
	for _, s := range []string{"", "alice", `a"b`, `a\b`, `\"`, `"\`, `\\""`, "é\"\xff\\", `"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := quoteEscape(s), quoteRef.Replace(s); got != want {
			t.Fatalf("quoteEscape(%q) = %q, want %q", s, got, want)
		}
	})
}
