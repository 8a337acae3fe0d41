package tsp

import (
	"bytes"
	"testing"
)

func FuzzCapability(f *testing.F) {
	f.Add([]byte("CAPABILITY TUNNEL=V6V4 TUNNEL=V6UDPV4 AUTH=DIGEST-MD5 AUTH=ANONYMOUS\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCapability(b)
		if err == nil && !bytes.HasPrefix(b, capabilityPrefix) {
			t.Fatalf("accepted %q without CAPABILITY", b)
		}
		if err != nil && c != 0 {
			t.Fatalf("bits %v with error %v", c, err)
		}
	})
}

func FuzzStatusLine(f *testing.F) {
	f.Add([]byte("200 Success\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		code, text, rest, err := parseStatusLine("fuzz", b)
		if err != nil {
			return
		}
		if code < 0 || code > 9999 || len(text) > maxStatusText || len(rest) > len(b) || !printable([]byte(text)) {
			t.Fatalf("bad parse of %q: %d %q", b, code, text)
		}
		_ = checkStatus("fuzz", b) // redirect parsing must not panic either
	})
}

func FuzzOffer(f *testing.F) {
	f.Add([]byte(offerXML(V6UDPV4, "")))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, req := range []Request{{Type: V6AnyV4}, {Type: V6AnyV4, Router: true, PrefixLen: 56}, {Type: V4V6}} {
			o, err := ParseOffer(b, req, UDP)
			if err != nil {
				continue
			}
			// Whatever is accepted must be internally consistent.
			if !o.ServerV4.IsValid() || !o.ClientV6.IsValid() || o.KeepaliveInterval > 0 && !o.KeepaliveAddr.IsValid() {
				t.Fatalf("inconsistent offer %+v from %q", o, b)
			}
			if o.Prefix.IsValid() && o.Prefix != o.Prefix.Masked() {
				t.Fatalf("unmasked prefix %v", o.Prefix)
			}
			if req.Router && !o.Prefix.IsValid() {
				t.Fatal("router offer without prefix accepted")
			}
		}
	})
}
