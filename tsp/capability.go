package tsp

import (
	"bytes"
	"strings"
)

// Capability is the set of tunnel types and mechanisms a broker announces,
// as bits (spec §2.2).
type Capability uint8

// Capability bits, as in the old client.
const (
	CapV6V4      Capability = 0x01
	CapV6UDPV4   Capability = 0x02
	CapV4V6      Capability = 0x04
	CapAnonymous Capability = 0x10
	CapPlain     Capability = 0x20
	CapDigestMD5 Capability = 0x40
	CapPassDSS   Capability = 0x80
)

var capabilityPrefix = []byte("CAPABILITY ")

// ParseCapability parses a broker's answer to VERSION. A status line instead
// of CAPABILITY is returned as its error (*StatusError, *RedirectError).
// Unknown items are ignored, as brokers may announce more than we know.
func ParseCapability(msg []byte) (Capability, error) {
	if !bytes.HasPrefix(msg, capabilityPrefix) {
		if err := checkStatus("capability", msg); err != nil {
			return 0, err
		}
		return 0, malformed("capability", "status 200 where CAPABILITY was expected")
	}
	line, _, _ := bytes.Cut(msg, []byte("\n"))
	if !printable(bytes.TrimSuffix(line, []byte("\r"))) {
		return 0, malformed("capability", "CAPABILITY line is not printable text")
	}
	var c Capability
	for _, item := range strings.Fields(string(line[len(capabilityPrefix):])) {
		key, val, ok := strings.Cut(item, "=")
		if !ok {
			continue
		}
		switch key {
		case "TUNNEL": // values are case-sensitive on the wire
			switch val {
			case "V6V4":
				c |= CapV6V4
			case "V6UDPV4":
				c |= CapV6UDPV4
			case "V4V6":
				c |= CapV4V6
			}
		case "AUTH":
			switch strings.ToUpper(val) {
			case "ANONYMOUS":
				c |= CapAnonymous
			case "PLAIN":
				c |= CapPlain
			case "DIGEST-MD5":
				c |= CapDigestMD5
			case "PASSDSS-3DES-1":
				c |= CapPassDSS
			}
		}
	}
	return c, nil
}

// Supports reports whether the broker can serve the requested tunnel type;
// v6anyv4 needs either IPv6-in-IPv4 flavour.
func (c Capability) Supports(t TunnelType) bool {
	switch t {
	case V6V4:
		return c&CapV6V4 != 0
	case V6UDPV4:
		return c&CapV6UDPV4 != 0
	case V6AnyV4:
		return c&(CapV6V4|CapV6UDPV4) != 0
	case V4V6:
		return c&CapV4V6 != 0
	}
	return false
}

// authString lists only the mechanisms, as AUTH=… items ("no AUTH" when none).
func (c Capability) authString() string {
	if s := (c &^ (CapV6V4 | CapV6UDPV4 | CapV4V6)).String(); s != "" {
		return s
	}
	return "no AUTH"
}

func (c Capability) String() string {
	var parts []string
	for _, n := range []struct {
		bit  Capability
		name string
	}{
		{CapV6V4, "TUNNEL=V6V4"}, {CapV6UDPV4, "TUNNEL=V6UDPV4"}, {CapV4V6, "TUNNEL=V4V6"},
		{CapAnonymous, "AUTH=ANONYMOUS"}, {CapPlain, "AUTH=PLAIN"},
		{CapDigestMD5, "AUTH=DIGEST-MD5"}, {CapPassDSS, "AUTH=PASSDSS-3DES-1"},
	} {
		if c&n.bit != 0 {
			parts = append(parts, n.name)
		}
	}
	return strings.Join(parts, " ")
}
