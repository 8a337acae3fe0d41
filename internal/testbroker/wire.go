package testbroker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// rudpHeaderLen is the size of the header every TSP datagram starts with.
const rudpHeaderLen = 8

// Status codes the server sends (spec §2.3).
const (
	stOK            = 200
	stAuthFailed    = 300
	stCapacity      = 301
	stBadVersion    = 302
	stBadTunnel     = 303
	stServerError   = 310
	stBadRequest    = 500
	stBadIPv4       = 501
	stBadIPv6       = 502
	stPrefixUnavail = 507
	stBadPrefixLen  = 518
	stNoPrefixLen   = 520
	stAnonPrefix    = 522
	stBusy          = 530
	stRedirect      = 1200
)

func statusText(code int) string {
	switch code {
	case stOK:
		return "Success"
	case stAuthFailed:
		return "Authentication failed"
	case stCapacity:
		return "Server reached tunnel capacity"
	case stBadVersion:
		return "Unsupported client version"
	case stBadTunnel:
		return "Unsupported tunnel type"
	case stServerError:
		return "Server side error"
	case stBadRequest:
		return "Invalid request"
	case stBadIPv4:
		return "Invalid IPv4 address"
	case stBadIPv6:
		return "Invalid IPv6 address"
	case 506:
		return "IPv4 prefix already in use"
	case stPrefixUnavail:
		return "Prefix length unavailable"
	case 509:
		return "DNS delegation error"
	case stBadPrefixLen:
		return "Unsupported prefix length"
	case stNoPrefixLen:
		return "Missing prefix length"
	case 521:
		return "Request already in progress"
	case stAnonPrefix:
		return "Prefix requested for anonymous"
	case stBusy:
		return "Server too busy"
	case stRedirect:
		return "Redirect"
	}
	return "Error"
}

// statusLine renders "<code> <text>\r\n".
func statusLine(code int) []byte {
	return []byte(strconv.Itoa(code) + " " + statusText(code) + "\r\n")
}

// framed wraps a body in the Content-length header; the length counts the
// whole body, status line included (spec §4.4).
func framed(body []byte) []byte {
	out := make([]byte, 0, len(body)+24)
	out = append(out, "Content-length: "...)
	out = strconv.AppendInt(out, int64(len(body)), 10)
	out = append(out, "\r\n"...)
	return append(out, body...)
}

// statusErrorDatagram is tsps's answer to data from an unknown client or a
// session in the wrong state: a fake header FF FF FF FF, the time, and a 310.
func statusErrorDatagram(now time.Time) []byte {
	b := make([]byte, rudpHeaderLen, rudpHeaderLen+32)
	binary.BigEndian.PutUint32(b[0:4], 0xFFFFFFFF)
	binary.BigEndian.PutUint32(b[4:8], uint32(now.Unix()))
	return append(b, "310 TSP status error\r\n"...)
}

// expand writes an address the way gogo6 brokers do: IPv6 as eight groups
// of four lower-case hex digits, IPv4 dotted.
func expand(a netip.Addr) string {
	if a.Is4() {
		return a.String()
	}
	b := a.As16()
	var sb strings.Builder
	for i := 0; i < 16; i += 2 {
		if i > 0 {
			sb.WriteByte(':')
		}
		fmt.Fprintf(&sb, "%02x%02x", b[i], b[i+1])
	}
	return sb.String()
}

// hasPrefixFold is bytes.HasPrefix without regard to ASCII case.
func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && strings.EqualFold(string(b[:len(prefix)]), prefix)
}

// trimLine drops the line ending and the NUL gogoc sends after AUTHENTICATE
// lines.
func trimLine(b []byte) []byte {
	return bytes.TrimRight(b, "\r\n\x00")
}

// parseContentLength splits "Content-length: N\r\n<body>" and checks that N
// is exactly the body's length. The header is matched without regard to case
// and may have blanks around N, as tsps allows; the line must end in CRLF.
func parseContentLength(msg []byte) ([]byte, error) {
	if !hasPrefixFold(msg, "Content-length:") {
		return nil, errors.New("no Content-length header")
	}
	rest := msg[len("Content-length:"):]
	eol := bytes.Index(rest, []byte("\r\n"))
	if eol < 0 {
		return nil, errors.New("no CRLF after the Content-length header")
	}
	num := strings.Trim(string(rest[:eol]), " \t")
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 || strings.HasPrefix(num, "+") {
		return nil, fmt.Errorf("length %q in the Content-length header is not a number", num)
	}
	body := rest[eol+2:]
	if n != len(body) {
		return nil, fmt.Errorf("length %d in the Content-length header, but %d body bytes", n, len(body))
	}
	return body, nil
}
