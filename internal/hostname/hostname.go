// Package hostname is gogoc's one rule for host names and server strings,
// applied alike to what the configuration holds (server, dns_server) and to
// what brokers send (redirect targets, the client's DNS name). config and
// tsp both use it, so a name one accepts the other never refuses; tsp may
// not import config, and this package imports nothing of gogoc.
package hostname

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Check reports why s is not a DNS host name (RFC 1123 §2.1: labels of
// letters, digits and '-', not starting or ending with '-', 1 to 63
// characters each, 253 in all), or nil. One trailing dot (an absolute
// name) is allowed.
func Check(s string) error {
	if s == "" {
		return errors.New("empty host name")
	}
	name := strings.TrimSuffix(s, ".")
	if len(name) > 253 {
		return errors.New("host name longer than 253 characters")
	}
	for _, label := range strings.Split(name, ".") {
		switch {
		case label == "":
			return errors.New("empty label in host name")
		case len(label) > 63:
			return errors.New("host name label longer than 63 characters")
		case label[0] == '-' || label[len(label)-1] == '-':
			return errors.New("host name label starts or ends with '-'")
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("host name holds %q; allowed are letters, digits, - and dots", c)
			}
		}
	}
	return nil
}

// CheckHost accepts the host part of a server string: a dotted-quad IPv4
// address or a host name. Something made of digits and dots only is taken
// as a mistyped address (999.1.1.1), not as a name.
func CheckHost(h string) error {
	if h == "" {
		return errors.New("no host before the port")
	}
	if strings.Trim(h, "0123456789.") == "" {
		if a, err := netip.ParseAddr(h); err != nil || !a.Is4() || a.String() != h {
			return errors.New("not a valid IPv4 address")
		}
		return nil
	}
	return Check(h)
}

// SplitServer checks a server string of the forms host, host:port,
// A.B.C.D, A.B.C.D:port, [v6], [v6]:port (the TSP spec §1.1) and splits
// it; port is defaultPort when none is given, the host comes without
// brackets. An IPv6 address without brackets is refused with a hint, where
// gogoc 1.2 split it at the first colon and failed on the "port".
func SplitServer(s string, defaultPort uint16) (host string, port uint16, err error) {
	if s == "" {
		return "", 0, errors.New("empty server address")
	}
	port = defaultPort
	var portText string
	hasPort := false
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", 0, fmt.Errorf("%q has no closing ]", s)
		}
		host = s[1:end]
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() || a.Zone() != "" {
			return "", 0, fmt.Errorf("%q: brackets must hold an IPv6 address", s)
		}
		rest := s[end+1:]
		if rest != "" {
			if rest[0] != ':' {
				return "", 0, fmt.Errorf("%q: only :port may follow ]", s)
			}
			portText, hasPort = rest[1:], true
		}
	} else {
		if strings.ContainsAny(s, "[]") {
			return "", 0, fmt.Errorf("%q: brackets go around an IPv6 address, as in [2001:db8::1]:3653", s)
		}
		switch strings.Count(s, ":") {
		case 0:
			host = s
		case 1:
			host, portText, _ = strings.Cut(s, ":")
			hasPort = true
		default:
			return "", 0, fmt.Errorf("%q looks like an IPv6 address: put it in brackets, as in [%s] or [%s]:%d", s, s, s, defaultPort)
		}
		if err := CheckHost(host); err != nil {
			return "", 0, fmt.Errorf("%q: %w", s, err)
		}
	}
	if hasPort {
		p, err := strconv.ParseUint(portText, 10, 16)
		if err != nil || p == 0 || portText[0] < '0' || portText[0] > '9' {
			return "", 0, fmt.Errorf("%q: port must be a number in 1..65535", s)
		}
		port = uint16(p)
	}
	return host, port, nil
}
