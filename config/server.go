package config

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// SplitServer checks a server string of the forms in spec §1.1 (host,
// host:port, A.B.C.D, A.B.C.D:port, [v6], [v6]:port) and splits it. The
// port is DefaultPort when none is given; the host comes without brackets.
// An IPv6 address without brackets is refused with a hint, where the old
// client split it at the first colon and failed on the "port".
func SplitServer(s string) (host string, port int, err error) {
	if s == "" {
		return "", 0, errors.New("empty")
	}
	if len(s) > 1025 {
		return "", 0, errors.New("longer than 1025 characters")
	}
	if err := checkCharset(s, "-.:[]"); err != nil {
		return "", 0, err
	}
	port = DefaultPort
	var portText string
	hasPort := false
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", 0, fmt.Errorf("%q has no closing ]", s)
		}
		host = s[1:end]
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() {
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
			return "", 0, fmt.Errorf("%q looks like an IPv6 address: put it in brackets, as in [%s] or [%s]:%d", s, s, s, DefaultPort)
		}
		if err := checkHost(host); err != nil {
			return "", 0, fmt.Errorf("%q: %w", s, err)
		}
	}
	if hasPort {
		p, err := strconv.Atoi(portText)
		if err != nil || portText[0] < '0' || portText[0] > '9' || p < 1 || p > 65535 {
			return "", 0, fmt.Errorf("%q: port must be a number in 1..65535", s)
		}
		port = p
	}
	return host, port, nil
}

// checkHost accepts a dotted-quad IPv4 address or a DNS name.
func checkHost(h string) error {
	if h == "" {
		return errors.New("no host before the port")
	}
	if strings.Trim(h, "0123456789.") == "" {
		if _, err := parseIPv4(h); err != nil {
			return errors.New("not a valid IPv4 address")
		}
		return nil
	}
	name := strings.TrimSuffix(h, ".")
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
	}
	return nil
}
