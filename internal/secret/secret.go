// Package secret holds values that must never reach a log, a status file or
// an error message: passwords and the like.
package secret

import (
	"fmt"
)

// String is a secret text. Every formatting path prints a mask; only Reveal
// gives the real value, so a leak needs an explicit call.
type String string

const mask = "********"

// MinMasked is the shortest secret worth replacing where it appears in
// text (a log line, an error message). Searching for a shorter one would
// garble ordinary words (a one-letter password would mask every "e") and
// hide nothing: that text says little about a 1-3 character password.
// Such a password still never reaches a log, because it is carried as a
// String and every formatting path prints the mask; masking text is the
// second line of defence, for a value that escaped as a plain string.
const MinMasked = 4

// Maskable reports whether s is long enough to be masked in text.
func Maskable(s string) bool { return len(s) >= MinMasked }

// Reveal returns the secret itself, for the code that must put it on the wire.
func (s String) Reveal() string { return string(s) }

// IsZero reports whether no secret is set.
func (s String) IsZero() bool { return s == "" }

// String implements fmt.Stringer with a mask.
func (s String) String() string {
	if s == "" {
		return ""
	}
	return mask
}

// GoString keeps %#v from printing the value.
func (s String) GoString() string { return fmt.Sprintf("secret.String(%q)", s.String()) }

// Format covers every verb, %q and %x included.
func (s String) Format(f fmt.State, verb rune) {
	_, _ = f.Write([]byte(s.String()))
}

// MarshalText masks the value in JSON, XML and similar encodings.
func (s String) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
