package tunnel

import (
	"bytes"
	"encoding/binary"
	"strings"
	"unicode/utf8"
)

// verdict is what the demultiplexer does with one datagram from the broker.
type verdict uint8

const (
	drop     verdict = iota // neither IPv6 nor control, or malformed
	toDevice                // a raw IPv6 packet for the TUN device
	control                 // a TSP control datagram (spec §1.3 header)
)

// ipv6HeaderLen and rudpHeaderLen are the fixed headers the demux relies on.
const (
	ipv6HeaderLen = 40
	rudpHeaderLen = 8
	// maxControlText bounds what a control datagram may put into an event.
	maxControlText = 256
)

// demux classifies a datagram by its first nibble (spec §14): 6 is an IPv6
// packet, 0xF a TSP control message; anything else is dropped. An IPv6
// packet must hold its header and the payload its header announces.
func demux(p []byte) verdict {
	if len(p) == 0 {
		return drop
	}
	switch p[0] >> 4 {
	case 6:
		if len(p) < ipv6HeaderLen {
			return drop
		}
		if plen := int(binary.BigEndian.Uint16(p[4:6])); ipv6HeaderLen+plen > len(p) {
			return drop
		}
		return toDevice
	case 0xF:
		if len(p) < rudpHeaderLen {
			return drop
		}
		return control
	}
	return drop
}

// controlMessage parses the TSP text of a control datagram: a status line
// like "310 TSP status error\r\n" gives (310, "310 TSP status error"). The
// text is cut at the first line end, made printable and bounded, since it
// comes from the network and ends up in logs. Code is 0 without a status.
func controlMessage(p []byte) (code int, text string) {
	if len(p) < rudpHeaderLen {
		return 0, ""
	}
	body := p[rudpHeaderLen:]
	if i := bytes.IndexAny(body, "\r\n\x00"); i >= 0 {
		body = body[:i]
	}
	if len(body) > maxControlText {
		body = body[:maxControlText]
	}
	// A status line is a decimal code (1200 for a redirect, so up to four
	// digits) followed by a space or the end (spec §2.3).
	n := 0
	for n < len(body) && n < 5 && isDigit(body[n]) {
		n++
	}
	if n >= 3 && n <= 4 && (n == len(body) || body[n] == ' ') {
		for _, d := range body[:n] {
			code = code*10 + int(d-'0')
		}
	}
	text = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, string(body))
	return code, text
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// isBrokerError tells whether a control status means the broker dropped the
// session: 3xx and 5xx are failures and 1200 a redirect (spec §2.3).
func isBrokerError(code int) bool { return code >= 300 }
