package config

import "strings"

// legacyLine is one name=value line of a gogoc.conf.
type legacyLine struct {
	key   string
	value string
	line  int
	// noEquals marks a line without '=': the old client read it as a key
	// with an empty value.
	noEquals bool
}

// readLegacy splits a gogoc.conf the way the old client did (spec §11.1):
// leading white space skipped, '#' lines and blank lines ignored, name and
// value split at the first '=' and trimmed of spaces and tabs, no quoting
// and no inline comments. Unlike the old client it drops the CR of a DOS
// line end and a UTF-8 byte order mark, which editors add and nobody means
// as part of a value. It cannot fail; what the keys mean is checked later.
func readLegacy(data string) []legacyLine {
	data = strings.TrimPrefix(data, "\uFEFF")
	var out []legacyLine
	for n := 1; data != ""; n++ {
		line, rest, _ := strings.Cut(data, "\n")
		data = rest
		line = strings.TrimSuffix(line, "\r")
		line = strings.TrimLeft(line, " \t")
		if line == "" || line[0] == '#' {
			continue
		}
		key, value, found := strings.Cut(line, "=")
		out = append(out, legacyLine{
			key:      strings.Trim(key, " \t"),
			value:    strings.Trim(value, " \t"),
			line:     n,
			noEquals: !found,
		})
	}
	return out
}
