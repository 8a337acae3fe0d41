package radv

import (
	"bytes"
	"errors"
	"fmt"
	"net"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
)

// ErrMalformed marks a received message that is not a well-formed Router
// Solicitation. A Conn's ReadFrom may return it (wrapped); Serve counts the
// message as dropped and reads on.
var ErrMalformed = errors.New("not a well-formed router solicitation")

// Wire constants of a solicitation (RFC 4861 §4.1, §4.6.1).
const (
	optSourceLLA = 1
	optTargetLLA = 2
	// rsHeaderLen is type, code, checksum and the reserved word (§4.1).
	rsHeaderLen = 8
	// ethLLAOptLen is the option length, in units of 8 bytes, of an
	// Ethernet link-layer address option.
	ethLLAOptLen = 1
)

// parseRS decodes an ICMPv6 message that must be a Router Solicitation,
// with the checks RFC 4861 §6.1.1 asks of the message itself (the hop
// limit and source checks are classify's): type 133, code 0, at least 8
// bytes, and options that each have a non-zero length and fit the message.
//
// It decodes only the link-layer address options, the one thing a router
// needs from a solicitation; other options come back as *ndp.RawOption.
// Using ndp.ParseMessage instead would link every option type ndp knows,
// with the IDNA and Unicode tables of DNSSL, into the binary.
//
// Like ndp, whose wire format the RAs use, it accepts link-layer address
// options of Ethernet size only (length 1), and refuses a message with
// another, so solicitations decode as they did through ndp.ParseMessage,
// which this replaced. Two differences are deliberate: parseRS does not
// check the contents of options a solicitation has no use for (ndp
// refuses, say, an RS with a malformed prefix option), and it accepts
// options of 256 bytes or more, as RFC 4861 does (ndp's length check
// overflows a uint8 and refuses them).
func parseRS(b []byte) (*ndp.RouterSolicitation, error) {
	rs, why := decodeRS(b)
	if why != "" {
		// Nobody reads these but tests and a debugger: one formatted
		// error keeps the parser small.
		return nil, fmt.Errorf("radv: %s: %w", why, ErrMalformed)
	}
	return rs, nil
}

// decodeRS is parseRS; it says what is wrong instead of building errors.
func decodeRS(b []byte) (*ndp.RouterSolicitation, string) {
	if len(b) < rsHeaderLen {
		return nil, "shorter than a solicitation"
	}
	if ipv6.ICMPType(b[0]) != ipv6.ICMPTypeRouterSolicitation {
		return nil, "not a solicitation"
	}
	if b[1] != 0 {
		return nil, "code not 0"
	}
	rs := &ndp.RouterSolicitation{}
	for o := b[rsHeaderLen:]; len(o) > 0; {
		if len(o) < 2 {
			return nil, "truncated option"
		}
		n := int(o[1]) * 8
		switch {
		case n == 0:
			return nil, "option of length 0"
		case n > len(o):
			return nil, "option longer than the message"
		}
		switch o[0] {
		case optSourceLLA, optTargetLLA:
			if o[1] != ethLLAOptLen {
				return nil, "link-layer address option not of Ethernet size"
			}
			rs.Options = append(rs.Options, &ndp.LinkLayerAddress{
				Direction: ndp.Direction(o[0]),
				Addr:      net.HardwareAddr(bytes.Clone(o[2:n])),
			})
		default:
			// Unknown or not meant for a solicitation: ignored by the
			// Server (§4.1), kept so the message reads as it came.
			rs.Options = append(rs.Options, &ndp.RawOption{Type: o[0], Length: o[1], Value: bytes.Clone(o[2:n])})
		}
		o = o[n:]
	}
	return rs, ""
}
