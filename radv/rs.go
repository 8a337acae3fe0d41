package radv

import (
	"bytes"
	"errors"
	"fmt"
)

// ErrMalformed marks a received message that is not a well-formed Router
// Solicitation. A Conn's ReadFrom may return it (wrapped); Serve counts the
// message as dropped and reads on.
var ErrMalformed = errors.New("not a well-formed router solicitation")

// parseRS decodes an ICMPv6 message that must be a Router Solicitation,
// with the checks RFC 4861 §6.1.1 asks of the message itself (the hop
// limit and source checks are classify's): type 133, code 0, at least 8
// bytes, and options that each have a non-zero length and fit the message.
//
// Every option is walked and checked as ndp would; of their contents
// only the link-layer address options are checked, and only the first
// source address is kept (copied), the one thing a router needs from a
// solicitation: a LAN host's message full of options costs no more than
// the walk. Like ndp, it accepts them of Ethernet size only
// (length 1) and refuses a message with another, so solicitations decode
// as they did through ndp.ParseMessage, which this replaced (FuzzParseRS
// holds the two together). Two differences are deliberate: parseRS does not
// check the contents of options a solicitation has no use for (ndp
// refuses, say, an RS with a malformed prefix option), and it accepts
// options of 256 bytes or more, as RFC 4861 does (ndp's length check
// overflows a uint8 and refuses them).
func parseRS(b []byte) (*RouterSolicitation, error) {
	rs, why := decodeRS(b)
	if why != "" {
		// Nobody reads these but tests and a debugger: one formatted
		// error keeps the parser small.
		return nil, fmt.Errorf("radv: %s: %w", why, ErrMalformed)
	}
	return rs, nil
}

// decodeRS is parseRS; it says what is wrong instead of building errors.
func decodeRS(b []byte) (*RouterSolicitation, string) {
	if len(b) < rsHeaderLen {
		return nil, "shorter than a solicitation"
	}
	if b[0] != icmpRouterSolicitation {
		return nil, "not a solicitation"
	}
	if b[1] != 0 {
		return nil, "code not 0"
	}
	rs := &RouterSolicitation{}
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
		if (o[0] == optSourceLLA || o[0] == optTargetLLA) && o[1] != ethLLAOptLen {
			return nil, "link-layer address option not of Ethernet size"
		}
		// Options other than the source link-layer address are unknown
		// or not meant for a solicitation, and ignored (§4.1). The
		// address is copied: the caller reads the next message into b.
		if o[0] == optSourceLLA && rs.sourceLinkAddr == nil {
			rs.sourceLinkAddr = bytes.Clone(o[2:n])
		}
		o = o[n:]
	}
	return rs, ""
}
