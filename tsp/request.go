package tsp

import (
	"fmt"
	"net/netip"
	"strconv"

	"github.com/jsklein/gogoc/internal/hostname"
)

// maxFrame is the largest message the old client sends; brokers size their
// buffers for it (spec Appendix B).
const maxFrame = 4096

// MarshalRequest renders the tunnel "create" request with its Content-length
// header, byte for byte as gogoc 1.2 does (spec §4.1–4.3). client is the
// declared endpoint: IPv4 for the v6 types, IPv6 for v4v6.
func MarshalRequest(r Request, client netip.Addr) ([]byte, error) {
	if err := r.validate(client); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 512)
	b = append(b, `<tunnel action="create" type="`...)
	b = append(b, r.Type...)
	b = append(b, `" proxy="`...)
	b = append(b, yesNo(r.Proxy)...)
	b = append(b, "\">\r\n <client>\r\n"...)
	family := "ipv4"
	if r.Type == V4V6 {
		family = "ipv6"
	}
	b = fmt.Appendf(b, "  <address type=\"%s\">%s</address>\r\n", family, client)
	if r.Keepalive {
		b = fmt.Appendf(b, "  <keepalive interval=\"%d\">\r\n", r.KeepaliveInterval)
		if r.Type == V4V6 {
			b = append(b, "    <address type=\"ipv4\">127.0.0.1</address>\r\n"...)
		} else {
			b = append(b, "    <address type=\"ipv6\">::</address>\r\n"...)
		}
		b = append(b, "  </keepalive>\r\n"...)
	}
	if r.Router {
		b = fmt.Appendf(b, "  <router>\r\n   <prefix length=\"%d\"/>\r\n", r.PrefixLen)
		if len(r.DNSServers) > 0 {
			b = append(b, "   <dns_server>\r\n"...)
			for _, n := range r.DNSServers {
				b = fmt.Appendf(b, "     <address type=\"dn\">%s</address>\r\n", n)
			}
			b = append(b, "   </dns_server>\r\n"...)
		}
		b = append(b, "  </router>\r\n"...)
	}
	b = append(b, " </client>\r\n</tunnel>\r\n"...)
	return frame(b)
}

// frame prefixes body with its Content-length line.
func frame(body []byte) ([]byte, error) {
	out := make([]byte, 0, len(body)+24)
	out = append(out, "Content-length: "...)
	out = strconv.AppendInt(out, int64(len(body)), 10)
	out = append(out, "\r\n"...)
	out = append(out, body...)
	if len(out) > maxFrame {
		return nil, fmt.Errorf("tsp request: %d bytes exceed the %d-byte frame brokers accept", len(out), maxFrame)
	}
	return out, nil
}

// Accept and reject messages (spec §5.4); both bodies are 35 bytes.
var (
	acceptMsg = []byte("Content-length: 35\r\n<tunnel action=\"accept\"></tunnel>\r\n")
	rejectMsg = []byte("Content-length: 35\r\n<tunnel action=\"reject\"></tunnel>\r\n")
)

func (r Request) validate(client netip.Addr) error {
	switch r.Type {
	case V6V4, V6UDPV4, V6AnyV4:
		if !client.Is4() {
			return fmt.Errorf("tsp request: client endpoint %v is not an IPv4 address", client)
		}
	case V4V6:
		if !client.Is6() || client.Is4In6() || client.Zone() != "" {
			return fmt.Errorf("tsp request: client endpoint %v is not a global IPv6 address", client)
		}
	default:
		return fmt.Errorf("tsp request: unknown tunnel type %q", r.Type)
	}
	if r.Keepalive && (r.KeepaliveInterval <= 0 || r.KeepaliveInterval > maxKeepaliveInterval) {
		return fmt.Errorf("tsp request: keepalive interval %d out of range 1..%d", r.KeepaliveInterval, maxKeepaliveInterval)
	}
	if r.Proxy && (r.Type == V6UDPV4 || r.Keepalive) {
		return fmt.Errorf("tsp request: proxy mode excludes v6udpv4 and keepalive")
	}
	if r.Router {
		// Ask only for what the address policy could accept (policy.go):
		// an IPv6 prefix of at most /64.
		if r.Type == V4V6 {
			return fmt.Errorf("tsp request: router mode needs an IPv6 prefix, which a v4v6 tunnel does not delegate")
		}
		if r.PrefixLen < 1 || r.PrefixLen > maxDelegatedBits {
			return fmt.Errorf("tsp request: prefix length %d out of range 1..%d", r.PrefixLen, maxDelegatedBits)
		}
		for _, n := range r.DNSServers {
			if !validHostname(n) {
				return fmt.Errorf("tsp request: dns_server %q is not a host name", n)
			}
		}
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// defaultPort is the TSP port (spec §1.1).
const defaultPort = 3653

// validHostname is the one host-name rule (internal/hostname), which the
// configuration applies too.
func validHostname(s string) bool { return hostname.Check(s) == nil }
