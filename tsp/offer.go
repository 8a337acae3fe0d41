package tsp

import (
	"bytes"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Bounds on broker-provided values. Anything outside is refused rather than
// handed to the data plane.
const (
	maxKeepaliveInterval = 86400
	maxLifetime          = 1 << 31
	maxBrokers           = 50  // spec §5.5
	maxBrokerAddr        = 254 // spec §5.5
	maxDNSServers        = 8
	maxXMLDepth          = 8
)

// The xml struct tags below are not read by the shipped code (tsp/xml.go
// fills these types by hand); the encoding/xml reference decoder in the tests
// uses them, so both decoders share one definition of the shape.

type xmlAddr struct {
	Type  string `xml:"type,attr"`
	Value string `xml:",chardata"`
}

type xmlAddrList struct {
	Addrs []xmlAddr `xml:"address"`
}

type xmlServer struct {
	Addrs []xmlAddr `xml:"address"`
}

type xmlPrefix struct {
	Length string `xml:"length,attr"`
	Value  string `xml:",chardata"`
}

type xmlRouter struct {
	Prefix []xmlPrefix `xml:"prefix"`
}

type xmlKeepalive struct {
	Interval string    `xml:"interval,attr"`
	Addrs    []xmlAddr `xml:"address"`
}

type xmlClient struct {
	Addrs     []xmlAddr      `xml:"address"`
	DNSServer []xmlAddrList  `xml:"dns_server"`
	Router    []xmlRouter    `xml:"router"`
	Keepalive []xmlKeepalive `xml:"keepalive"`
}

// xmlTunnel covers both the offer (§5.1) and the redirect payload (§5.5).
// Unknown elements and attributes are skipped, as the old parser did.
type xmlTunnel struct {
	Action   string        `xml:"action,attr"`
	Type     string        `xml:"type,attr"`
	Lifetime string        `xml:"lifetime,attr"`
	MTU      string        `xml:"mtu,attr"`
	Server   []xmlServer   `xml:"server"`
	Client   []xmlClient   `xml:"client"`
	Broker   []xmlAddrList `xml:"broker"`
}

// decodeTunnelXML decodes one <tunnel> element strictly: valid UTF-8, no NUL,
// nesting of at most maxXMLDepth, nothing but white space after it.
func decodeTunnelXML(phase string, data []byte) (*xmlTunnel, error) {
	// NUL gets its own message: it usually means a framing bug, not bad XML.
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return nil, malformed(phase, "NUL byte at offset %d of the XML", i)
	}
	t, err := parseXMLTunnel(data)
	if errors.Is(err, errNoTunnel) {
		return nil, malformed(phase, "no <tunnel> element")
	}
	if err != nil {
		return nil, malformed(phase, "XML %v", err)
	}
	return t, nil
}

// ParseOffer parses the body of a tunnel reply whose status was 200: the XML
// after the status line. req is what was asked for, network the transport
// used and broker the address it reached the broker at; the offer must fit
// them and pass the address policy (policy.go).
func ParseOffer(xmlBody []byte, req Request, network Network, broker netip.Addr) (*Offer, error) {
	const phase = "offer"
	t, err := decodeTunnelXML(phase, xmlBody)
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(t.Action, "info") {
		return nil, malformed(phase, "tunnel action %q, want info", t.Action)
	}
	o := &Offer{Type: TunnelType(strings.ToLower(t.Type))}
	switch o.Type {
	case V6V4, V6UDPV4, V4V6:
	default:
		return nil, malformed(phase, "unknown tunnel type %q", t.Type)
	}
	if !typeFits(req.Type, o.Type) {
		return nil, &ProtocolError{Phase: phase, Reason: "broker offered " + string(o.Type) + " for a " + string(req.Type) + " request"}
	}
	if o.Type == V6UDPV4 && network != UDP {
		// IPv6 packets would have to go down the TCP stream (spec §1.5).
		return nil, malformed(phase, "v6udpv4 offered on a TCP session")
	}
	if t.Lifetime != "" {
		n, err := parseUint(t.Lifetime, maxLifetime)
		if err != nil {
			return nil, malformed(phase, "lifetime %q: %v", t.Lifetime, err)
		}
		o.Lifetime = time.Duration(n) * time.Second
	}
	if t.MTU != "" {
		n, err := parseUint(t.MTU, 65535)
		if err != nil || n < 1280 {
			return nil, malformed(phase, "mtu %q: want 1280..65535", t.MTU)
		}
		o.MTU = int(n)
	}
	if len(t.Server) != 1 || len(t.Client) != 1 {
		return nil, malformed(phase, "want exactly one <server> and one <client>, got %d and %d", len(t.Server), len(t.Client))
	}
	// Outer endpoints and inner addresses swap families for v4v6.
	if o.ServerV4, o.ServerV6, err = addrPair(phase, "server", t.Server[0].Addrs); err != nil {
		return nil, err
	}
	c := t.Client[0]
	if o.ClientV4, o.ClientV6, err = addrPair(phase, "client", c.Addrs); err != nil {
		return nil, err
	}
	for _, a := range c.Addrs {
		if a.Type == "dn" {
			name := strings.TrimSpace(a.Value)
			if !validHostname(name) {
				return nil, malformed(phase, "client DNS name %s is not a host name", quoteSnippet([]byte(name)))
			}
			o.ClientDNSName = strings.ToLower(name)
		}
	}
	for _, l := range c.DNSServer {
		for _, a := range l.Addrs {
			ip, err := parseAddr(a.Value, a.Type)
			if err != nil {
				return nil, malformed(phase, "client dns_server: %v", err)
			}
			if len(o.DNSServers) == maxDNSServers {
				return nil, malformed(phase, "more than %d DNS servers", maxDNSServers)
			}
			o.DNSServers = append(o.DNSServers, ip)
		}
	}
	if len(c.Router) > 1 {
		return nil, malformed(phase, "more than one <router>")
	}
	if len(c.Router) == 1 && len(c.Router[0].Prefix) > 0 {
		if len(c.Router[0].Prefix) > 1 {
			return nil, malformed(phase, "more than one delegated prefix")
		}
		p := c.Router[0].Prefix[0]
		if o.Prefix, err = parsePrefix(p.Value, p.Length); err != nil {
			return nil, malformed(phase, "delegated prefix: %v", err)
		}
	}
	if req.Router && !o.Prefix.IsValid() {
		return nil, malformed(phase, "router mode requested but the offer delegates no prefix")
	}
	if len(c.Keepalive) > 1 {
		return nil, malformed(phase, "more than one <keepalive>")
	}
	if len(c.Keepalive) == 1 {
		ka := c.Keepalive[0]
		n, err := parseUint(ka.Interval, maxKeepaliveInterval)
		if err != nil {
			return nil, malformed(phase, "keepalive interval %q: %v", ka.Interval, err)
		}
		o.KeepaliveInterval = time.Duration(n) * time.Second
		want := "ipv6"
		if o.Type == V4V6 {
			want = "ipv4"
		}
		for _, a := range ka.Addrs {
			if a.Type != want {
				return nil, malformed(phase, "keepalive address of type %q in a %s tunnel", a.Type, o.Type)
			}
			if o.KeepaliveAddr, err = parseAddr(a.Value, a.Type); err != nil {
				return nil, malformed(phase, "keepalive: %v", err)
			}
		}
		if n > 0 && !o.KeepaliveAddr.IsValid() {
			return nil, malformed(phase, "keepalive interval %d without a keepalive address", n)
		}
	}
	if err := checkOffer(o, req, broker.Unmap().IsLoopback()); err != nil {
		return nil, err
	}
	return o, nil
}

// typeFits: a concrete request must be answered in kind; v6anyv4 lets the
// broker pick either IPv6-over-IPv4 flavour.
func typeFits(asked, got TunnelType) bool {
	if asked == V6AnyV4 {
		return got == V6V4 || got == V6UDPV4
	}
	return asked == got
}

// addrPair takes exactly one ipv4 and one ipv6 address from an element.
func addrPair(phase, elem string, addrs []xmlAddr) (v4, v6 netip.Addr, err error) {
	for _, a := range addrs {
		switch a.Type {
		case "ipv4", "ipv6":
		default:
			continue
		}
		ip, err := parseAddr(a.Value, a.Type)
		if err != nil {
			return v4, v6, malformed(phase, "%s address: %v", elem, err)
		}
		dst := &v4
		if a.Type == "ipv6" {
			dst = &v6
		}
		if dst.IsValid() {
			return v4, v6, malformed(phase, "%s has more than one %s address", elem, a.Type)
		}
		*dst = ip
	}
	if !v4.IsValid() {
		return v4, v6, malformed(phase, "%s has no ipv4 address", elem)
	}
	if !v6.IsValid() {
		return v4, v6, malformed(phase, "%s has no ipv6 address", elem)
	}
	return v4, v6, nil
}

// parseAddr parses an address of the family its type attribute names. It
// checks the syntax only; which addresses are acceptable is the address
// policy's question (policy.go).
func parseAddr(s, typ string) (netip.Addr, error) {
	s = strings.TrimSpace(s)
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, errors.New(quoteSnippet([]byte(s)) + " is not an IP address")
	}
	switch {
	case typ == "ipv4" && !ip.Is4(), typ == "ipv6" && !ip.Is6():
		return netip.Addr{}, errors.New(ip.String() + " is not of type " + typ)
	case typ != "ipv4" && typ != "ipv6":
		return netip.Addr{}, errors.New("unknown address type " + quoteSnippet([]byte(typ)))
	case ip.Zone() != "":
		return netip.Addr{}, errors.New(s + " carries a zone")
	}
	return ip, nil
}

// parsePrefix reads the delegated prefix, an IPv6 one whatever the tunnel
// type, and normalises it with netip (the broker sends the fully expanded
// form). Its range is the address policy's question.
func parsePrefix(addr, length string) (netip.Prefix, error) {
	n, err := parseUint(length, 128)
	if err != nil {
		return netip.Prefix{}, errors.New("length " + quoteSnippet([]byte(length)) + " out of range 0..128")
	}
	ip, err := netip.ParseAddr(strings.TrimSpace(addr))
	if err != nil {
		return netip.Prefix{}, errors.New(quoteSnippet([]byte(addr)) + " is not an IP address")
	}
	if !ip.Is6() || ip.Zone() != "" {
		return netip.Prefix{}, errors.New(ip.String() + " is not an ipv6 prefix")
	}
	return netip.PrefixFrom(ip, int(n)).Masked(), nil
}

// parseUint accepts plain decimal digits only (no sign, no space inside).
func parseUint(s string, max uint64) (uint64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty number")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("not a decimal number")
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > max {
		return 0, errors.New("out of range 0.." + strconv.FormatUint(max, 10))
	}
	return n, nil
}

// parseRedirect reads the broker list after a redirect status line (§5.5).
// Entries keep document order within each family (the old client reversed
// them by accident); ipv4 first, then ipv6, then names.
func parseRedirect(phase string, payload []byte) ([]Broker, error) {
	if len(bytes.TrimSpace(payload)) == 0 {
		return nil, malformed(phase, "redirect without a broker list")
	}
	t, err := decodeTunnelXML(phase, payload)
	if err != nil {
		return nil, err
	}
	var byKind [3][]Broker
	total := 0
	for _, l := range t.Broker {
		for _, a := range l.Addrs {
			total++
			if total > maxBrokers {
				return nil, malformed(phase, "redirect lists more than %d brokers", maxBrokers)
			}
			v := strings.TrimSpace(a.Value)
			if len(v) > maxBrokerAddr {
				return nil, malformed(phase, "broker address longer than %d characters", maxBrokerAddr)
			}
			var k int
			switch a.Type {
			case "ipv4", "ipv6":
				ip, err := parseAddr(v, a.Type)
				if err != nil {
					return nil, malformed(phase, "broker %v", err)
				}
				v = ip.String()
				if a.Type == "ipv6" {
					k = 1
				}
			case "dn":
				if !validHostname(v) {
					return nil, malformed(phase, "broker name %s is not a host name", quoteSnippet([]byte(v)))
				}
				k = 2
			default:
				return nil, malformed(phase, "broker address of unknown type %s", quoteSnippet([]byte(a.Type)))
			}
			byKind[k] = append(byKind[k], Broker{Kind: a.Type, Address: v})
		}
	}
	out := append(append(byKind[0], byKind[1]...), byKind[2]...)
	if len(out) == 0 {
		return nil, malformed(phase, "redirect with an empty broker list")
	}
	return out, nil
}
