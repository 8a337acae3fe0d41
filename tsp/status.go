package tsp

import (
	"bytes"
	"strconv"
	"unicode/utf8"
)

// maxStatusText bounds the text kept from a status line; brokers send a few
// words, anything longer is truncated before it reaches a log.
const maxStatusText = 128

// parseStatusLine reads "<code> SP <text> CRLF" at the start of msg and
// returns the code, the text and whatever follows the line.
func parseStatusLine(phase string, msg []byte) (code int, text string, rest []byte, err error) {
	line, rest, _ := bytes.Cut(msg, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	i := 0
	for i < len(line) && line[i] >= '0' && line[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, "", nil, malformed(phase, "expected a status line, got %s", quoteSnippet(line))
	}
	if i > 4 {
		return 0, "", nil, malformed(phase, "status code %s out of range", quoteSnippet(line[:i]))
	}
	code, _ = strconv.Atoi(string(line[:i]))
	if i < len(line) && line[i] != ' ' {
		return 0, "", nil, malformed(phase, "expected a status line, got %s", quoteSnippet(line))
	}
	t := bytes.TrimSpace(line[i:])
	if !printable(t) {
		return 0, "", nil, malformed(phase, "status %d text is not printable text", code)
	}
	if len(t) > maxStatusText {
		t = t[:maxStatusText]
	}
	return code, string(t), rest, nil
}

// checkStatus turns a status reply into nil (200), a *RedirectError (> 1000,
// the broker list following the line), or a *StatusError.
func checkStatus(phase string, msg []byte) error {
	code, text, rest, err := parseStatusLine(phase, msg)
	if err != nil {
		return err
	}
	switch {
	case code == StatusOK:
		return nil
	case code > 1000:
		brokers, err := parseRedirect(phase, rest)
		if err != nil {
			return err
		}
		return &RedirectError{Phase: phase, Brokers: brokers}
	}
	return &StatusError{Phase: phase, Code: code, Text: text}
}

// printable accepts valid UTF-8 without control characters other than tab.
func printable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, c := range b {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// quoteSnippet renders at most 40 bytes of broker input safely for an error.
func quoteSnippet(b []byte) string {
	const max = 40
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "…"
	}
	return strconv.Quote(string(b))
}
