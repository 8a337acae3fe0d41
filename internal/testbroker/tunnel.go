package testbroker

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Tunnel types as written in requests and offers.
const (
	typeV6V4    = "v6v4"
	typeV6UDPV4 = "v6udpv4"
	typeV6AnyV4 = "v6anyv4"
	typeV4V6    = "v4v6"
)

// Wire XML of a client request or accept (spec §4.1, §5.4). Pointers tell
// a missing element or attribute from an empty one.
type xmlAddress struct {
	Type string `xml:"type,attr"`
	Text string `xml:",chardata"`
}

type xmlTunnel struct {
	XMLName xml.Name `xml:"tunnel"`
	Action  string   `xml:"action,attr"`
	Type    string   `xml:"type,attr"`
	Proxy   string   `xml:"proxy,attr"`
	Client  *struct {
		Addresses []xmlAddress `xml:"address"`
		Keepalive *struct {
			Interval *string `xml:"interval,attr"`
		} `xml:"keepalive"`
		Router *struct {
			Prefix *struct {
				Length *string `xml:"length,attr"`
			} `xml:"prefix"`
			DNSServer *struct {
				Addresses []xmlAddress `xml:"address"`
			} `xml:"dns_server"`
		} `xml:"router"`
	} `xml:"client"`
}

// decodeTunnel parses one <tunnel> element and refuses anything but blank
// text after it.
func decodeTunnel(body []byte) (*xmlTunnel, error) {
	dec := xml.NewDecoder(bytes.NewReader(body))
	var t xmlTunnel
	if err := dec.Decode(&t); err != nil {
		return nil, fmt.Errorf("tunnel XML: %w", err)
	}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return &t, nil
		}
		if err != nil {
			return nil, fmt.Errorf("after the tunnel element: %w", err)
		}
		if cd, ok := tok.(xml.CharData); !ok || len(bytes.TrimSpace(cd)) != 0 {
			return nil, errors.New("data after the tunnel element")
		}
	}
}

// tunnelRequest is a decoded create request.
type tunnelRequest struct {
	typ       string
	proxy     bool
	v4        string // declared client IPv4 text ("" when absent)
	v6        string // declared client IPv6 text (v4v6)
	keepalive int    // suggested interval, -1 when no keepalive element
	router    bool
	prefixLen int // -1 when the router element has no prefix length
	prefixBad bool
}

func parseRequest(body []byte) (*tunnelRequest, error) {
	t, err := decodeTunnel(body)
	if err != nil {
		return nil, err
	}
	if t.Action != "create" {
		return nil, fmt.Errorf("action %q, want create", t.Action)
	}
	if t.Client == nil {
		return nil, errors.New("no client element")
	}
	r := &tunnelRequest{typ: t.Type, keepalive: -1, prefixLen: -1}
	switch t.Proxy {
	case "yes":
		r.proxy = true
	case "no", "":
	default:
		return nil, fmt.Errorf("proxy %q, want yes or no", t.Proxy)
	}
	for _, a := range t.Client.Addresses {
		switch a.Type {
		case "ipv4":
			r.v4 = strings.TrimSpace(a.Text)
		case "ipv6":
			r.v6 = strings.TrimSpace(a.Text)
		}
	}
	if k := t.Client.Keepalive; k != nil {
		r.keepalive = 0
		if k.Interval != nil {
			n, err := strconv.Atoi(*k.Interval)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("keepalive interval %q is not a number of seconds", *k.Interval)
			}
			r.keepalive = n
		}
	}
	if rt := t.Client.Router; rt != nil {
		r.router = true
		if rt.Prefix != nil && rt.Prefix.Length != nil {
			n, err := strconv.Atoi(*rt.Prefix.Length)
			if err != nil {
				r.prefixBad = true
			} else {
				r.prefixLen = n
			}
		}
	}
	return r, nil
}

// offerError is a refusal of a tunnel request: the status to send and why.
type offerError struct {
	code int
	why  string
}

func (e *offerError) Error() string { return fmt.Sprintf("%d: %s", e.code, e.why) }

func refuse(code int, format string, args ...any) *offerError {
	return &offerError{code: code, why: fmt.Sprintf(format, args...)}
}

// decideOffer turns a request into the session's offer (in info), or a
// refusal. It runs with the server's mutex held (it allocates).
func (s *Server) decideOffer(c *Session, r *tunnelRequest) (*SessionInfo, *offerError) {
	st := s.st
	info := c.info // copy: transport, client, user, version are set
	info.Requested = r.typ
	src := c.remote.Addr()
	udp := c.transport == TransportUDP
	offered := func(capName string) bool { return slices.Contains(st.tunnels, capName) }

	switch r.typ {
	case typeV6V4, typeV6UDPV4, typeV6AnyV4:
		declared, err := netip.ParseAddr(r.v4)
		if err != nil || !declared.Is4() {
			return nil, refuse(stBadIPv4, "client IPv4 %q", r.v4)
		}
		info.DeclaredV4 = declared
		info.NAT = src.Is4() && declared != src
	case typeV4V6:
		declared, err := netip.ParseAddr(r.v6)
		if err != nil || !declared.Is6() || declared.Is4In6() {
			return nil, refuse(stBadIPv6, "client IPv6 %q", r.v6)
		}
	}

	switch r.typ {
	case typeV6V4:
		if !offered(TunnelV6V4) {
			return nil, refuse(stBadTunnel, "v6v4 not offered")
		}
		info.Type = typeV6V4
	case typeV6UDPV4:
		if !offered(TunnelV6UDPV4) || !udp {
			return nil, refuse(stBadTunnel, "v6udpv4 needs the capability and a UDP session")
		}
		info.Type = typeV6UDPV4
	case typeV6AnyV4:
		// NAT between client and server: only UDP gets through, and only
		// over the session's own UDP flow. A proxy client names another
		// device, so UDP (which this session's socket would carry) makes no
		// sense for it.
		switch {
		case info.NAT && udp && !r.proxy && offered(TunnelV6UDPV4):
			info.Type = typeV6UDPV4
		case offered(TunnelV6V4):
			info.Type = typeV6V4
		case udp && offered(TunnelV6UDPV4):
			info.Type = typeV6UDPV4
		default:
			return nil, refuse(stBadTunnel, "v6anyv4: no usable type over %s", c.transport)
		}
	case typeV4V6:
		if !offered(TunnelV4V6) {
			return nil, refuse(stBadTunnel, "v4v6 not offered")
		}
		if !src.Is6() {
			return nil, refuse(stBadTunnel, "v4v6 needs an IPv6 transport")
		}
		info.Type = typeV4V6
	default:
		return nil, refuse(stBadTunnel, "type %q", r.typ)
	}
	if r.proxy && info.Type == typeV6UDPV4 {
		return nil, refuse(stServerError, "proxy with v6udpv4")
	}

	if r.router {
		switch {
		case info.User == "":
			return nil, refuse(stAnonPrefix, "router request from an anonymous client")
		case r.prefixBad:
			return nil, refuse(stBadPrefixLen, "prefix length is not a number")
		case r.prefixLen < 0:
			return nil, refuse(stNoPrefixLen, "router request without a prefix length")
		case info.Type == typeV4V6 || r.prefixLen < 48 || r.prefixLen > 64:
			return nil, refuse(stBadPrefixLen, "prefix length %d (v6: 48..64, v4v6 delegation unsupported)", r.prefixLen)
		}
		p, err := s.alloc.delegate(info.User, r.prefixLen)
		if err != nil {
			return nil, refuse(stPrefixUnavail, "/%d from %s: %v", r.prefixLen, st.prefixPool, err)
		}
		info.Prefix = p
	}

	var err error
	if info.Type == typeV4V6 {
		info.ServerV4 = s.alloc.serverV4Inner()
		info.ServerV6 = c.local
		if !info.ServerV6.Is6() || info.ServerV6.IsUnspecified() {
			return nil, refuse(stServerError, "server IPv6 endpoint unknown: listen on a specific address")
		}
		info.ClientV6 = src
		if info.ClientV4, err = s.alloc.clientV4(info.User, c.remote); err != nil {
			return nil, refuse(stCapacity, "client IPv4: %v", err)
		}
		info.KeepaliveAddr = info.ServerV4
	} else {
		info.ServerV4 = st.serverV4
		if !info.ServerV4.IsValid() {
			info.ServerV4 = c.local
		}
		if !info.ServerV4.Is4() || info.ServerV4.IsUnspecified() {
			return nil, refuse(stServerError, "server IPv4 endpoint unknown: set Config.ServerV4 for a wildcard listener")
		}
		info.ServerV6 = st.serverV6
		info.ClientV4 = info.DeclaredV4
		if src.Is4() && !r.proxy {
			info.ClientV4 = src
		}
		if info.ClientV6, err = s.alloc.clientV6(info.User, c.remote, c.transport); err != nil {
			return nil, refuse(stCapacity, "client IPv6: %v", err)
		}
		info.KeepaliveAddr = info.ServerV6
	}

	switch {
	case st.keepalive > 0:
		info.KeepaliveInterval = st.keepalive
	case st.keepalive < 0 || r.keepalive < 0:
		info.KeepaliveInterval = 0
	default:
		info.KeepaliveInterval = min(max(r.keepalive, 5), 86400)
	}
	if info.KeepaliveInterval == 0 {
		info.KeepaliveAddr = netip.Addr{}
	}
	info.Lifetime = st.lifetime
	if st.clientDomain != "" && info.User != "" {
		info.DNSName = info.User + "." + st.clientDomain
	}
	return &info, nil
}

// offerBody renders "200 Success" and the info element in the layout of the
// gogo6 brokers (spec §5.1), addresses fully expanded.
func (s *Server) offerBody(info *SessionInfo) []byte {
	var b bytes.Buffer
	b.WriteString("200 Success\r\n")
	fmt.Fprintf(&b, `<tunnel action="info" type="%s" lifetime="%d"`, info.Type, info.Lifetime)
	if s.st.mtu > 0 {
		fmt.Fprintf(&b, ` mtu="%d"`, s.st.mtu)
	}
	b.WriteString(">\r\n <server>\r\n")
	writeAddr(&b, "  ", info.ServerV4)
	writeAddr(&b, "  ", info.ServerV6)
	b.WriteString(" </server>\r\n <client>\r\n")
	writeAddr(&b, "  ", info.ClientV4)
	writeAddr(&b, "  ", info.ClientV6)
	if info.DNSName != "" {
		b.WriteString(`  <address type="dn">`)
		_ = xml.EscapeText(&b, []byte(info.DNSName))
		b.WriteString("</address>\r\n")
	}
	if len(s.st.dnsServers) > 0 {
		b.WriteString("  <dns_server>\r\n")
		for _, a := range s.st.dnsServers {
			writeAddr(&b, "   ", a)
		}
		b.WriteString("  </dns_server>\r\n")
	}
	if info.Prefix.IsValid() {
		fmt.Fprintf(&b, "  <router>\r\n   <prefix length=\"%d\">%s</prefix>\r\n  </router>\r\n",
			info.Prefix.Bits(), expand(info.Prefix.Addr()))
	}
	if info.KeepaliveInterval > 0 {
		fmt.Fprintf(&b, "  <keepalive interval=\"%d\">\r\n", info.KeepaliveInterval)
		writeAddr(&b, "   ", info.KeepaliveAddr)
		b.WriteString("  </keepalive>\r\n")
	}
	b.WriteString(" </client>\r\n</tunnel>\r\n")
	return b.Bytes()
}

func writeAddr(b *bytes.Buffer, indent string, a netip.Addr) {
	kind := "ipv6"
	if a.Is4() {
		kind = "ipv4"
	}
	fmt.Fprintf(b, "%s<address type=\"%s\">%s</address>\r\n", indent, kind, expand(a))
}

// redirectBody renders "1200 Redirect" and the broker list (spec §5.5), in
// the configured order.
func redirectBody(list []Broker) []byte {
	var b bytes.Buffer
	b.WriteString("1200 Redirect\r\n<tunnel action=\"info\">\r\n <broker>\r\n")
	for _, e := range list {
		fmt.Fprintf(&b, "  <address type=\"%s\">", e.Kind)
		_ = xml.EscapeText(&b, []byte(e.Address))
		b.WriteString("</address>\r\n")
	}
	b.WriteString(" </broker>\r\n</tunnel>\r\n")
	return b.Bytes()
}
