package hostname

import (
	"net"
	"strconv"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for name, want := range map[string]string{
		"broker.example.net":             "",
		"broker.example.net.":            "",
		"a":                              "",
		"xn--bcher-kva.example":          "",
		"1.2.3.4":                        "", // digit labels are names here; CheckHost takes them as an address
		strings.Repeat("a", 63) + ".net": "",
		"":                               "empty host name",
		".":                              "empty label",
		"a..b":                           "empty label",
		".a":                             "empty label",
		"a.b..":                          "empty label",
		"-a.b":                           "starts or ends with '-'",
		"a-.b":                           "starts or ends with '-'",
		"a.b-":                           "starts or ends with '-'",
		strings.Repeat("a", 64) + ".net": "longer than 63",
		strings.Repeat("a.", 127) + "aa": "longer than 253",
		"a_b.net":                        `holds '_'`,
		"a b":                            `holds ' '`,
		"br\u00fccke.example":            `holds`,
	} {
		err := Check(name)
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("%q: %v, want %q", name, err, want)
		}
	}
}

func TestSplitServer(t *testing.T) {
	for in, want := range map[string]string{
		"broker.example.net":     "broker.example.net 3653",
		"broker.example.net:443": "broker.example.net 443",
		"192.0.2.1":              "192.0.2.1 3653",
		"[2001:db8::1]:99":       "2001:db8::1 99",
		"b:1":                    "b 1",
		"2001:db8::1":            "error: put it in brackets",
		"999.1.1.1":              "error: not a valid IPv4 address",
		"01.2.3.4":               "error: not a valid IPv4 address",
		"-a.b:3653":              "error: starts or ends with '-'",
		"[fe80::1%eth0]":         "error: brackets must hold an IPv6 address",
		"host:+5":                "error: port must be",
		"host:0":                 "error: port must be",
		":3653":                  "error: no host before the port",
		"":                       "error: empty",
	} {
		h, p, err := SplitServer(in, 3653)
		got := h + " " + strconv.Itoa(int(p))
		if err != nil {
			got = "error: " + err.Error()
		}
		if !strings.HasPrefix(want, "error: ") && got != want || strings.HasPrefix(want, "error: ") && !strings.Contains(got, strings.TrimPrefix(want, "error: ")) {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}

// FuzzSplitServer: whatever is accepted joins back into a string that
// splits the same way, and its host is an IPv4 or IPv6 literal or a name
// of letters, digits, '-' and '.' only.
func FuzzSplitServer(f *testing.F) {
	for _, s := range []string{"broker.example.net:443", "[2001:db8::1]:99", "192.0.2.1", "-a.b", "a..b:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, p, err := SplitServer(s, 3653)
		if err != nil {
			return
		}
		if p == 0 || h == "" || strings.Trim(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.:") != "" {
			t.Fatalf("%q: host %q port %d", s, h, p)
		}
		h2, p2, err := SplitServer(net.JoinHostPort(h, strconv.Itoa(int(p))), 1)
		if err != nil || h2 != h || p2 != p {
			t.Fatalf("%q: %q %d does not round-trip: %q %d %v", s, h, p, h2, p2, err)
		}
	})
}
