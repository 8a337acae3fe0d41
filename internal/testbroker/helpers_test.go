package testbroker

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jsklein/gogoc/internal/logx"
)

// Exact client messages from the spec (§2.1, §3.1, §5.4).
const (
	msgVersion   = "VERSION=2.0.2\r\n"
	msgAnonymous = "AUTHENTICATE ANONYMOUS\r\n\x00"
	msgPlain     = "AUTHENTICATE PLAIN\r\n\x00"
	msgDigest    = "AUTHENTICATE DIGEST-MD5\r\n\x00"
	msgAccept    = "Content-length: 35\r\n<tunnel action=\"accept\"></tunnel>\r\n"
	capDefault   = "CAPABILITY TUNNEL=V6V4 TUNNEL=V6UDPV4 AUTH=ANONYMOUS AUTH=PLAIN AUTH=DIGEST-MD5\r\n"
	okLine       = "200 Success\r\n"
)

// testConfig is a hybrid broker with two users.
func testConfig() Config {
	return Config{Users: map[string]string{"alice": "secret", "bob@example.net": "p,w\"x"}}
}

// startServer runs cfg on loopback UDP and TCP ports until the test ends.
func startServer(t testing.TB, cfg Config) (*Server, netip.AddrPort, netip.AddrPort) {
	t.Helper()
	if cfg.Log == nil {
		cfg.Log = logx.Writer(t.Output(), logx.LevelWarn)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	udp, tcp, err := s.Start("127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, udp, tcp
}

// plainCreds is PLAIN's "NUL user NUL pass CRLF" (spec §3.3).
func plainCreds(user, pass string) string { return "\x00" + user + "\x00" + pass + "\r\n" }

// createXML builds a tunnel request with the exact layout of spec §4.1.
// ka < 0 leaves keepalive out; prefixLen < 0 leaves the router out.
func createXML(typ, v4 string, ka, prefixLen int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<tunnel action=\"create\" type=\"%s\" proxy=\"no\">\r\n <client>\r\n", typ)
	if typ == "v4v6" {
		fmt.Fprintf(&b, "  <address type=\"ipv6\">%s</address>\r\n", v4)
	} else {
		fmt.Fprintf(&b, "  <address type=\"ipv4\">%s</address>\r\n", v4)
	}
	if ka >= 0 {
		addr := "::"
		kind := "ipv6"
		if typ == "v4v6" {
			addr, kind = "127.0.0.1", "ipv4"
		}
		fmt.Fprintf(&b, "  <keepalive interval=\"%d\">\r\n    <address type=\"%s\">%s</address>\r\n  </keepalive>\r\n", ka, kind, addr)
	}
	if prefixLen >= 0 {
		fmt.Fprintf(&b, "  <router>\r\n   <prefix length=\"%d\"/>\r\n  </router>\r\n", prefixLen)
	}
	b.WriteString(" </client>\r\n</tunnel>\r\n")
	return b.String()
}

func createMsg(typ, v4 string, ka, prefixLen int) string {
	x := createXML(typ, v4, ka, prefixLen)
	return "Content-length: " + strconv.Itoa(len(x)) + "\r\n" + x
}

// udpClient speaks RUDP with gogoc's numbering: 0xF00000F0 upwards.
type udpClient struct {
	t     testing.TB
	conn  *net.UDPConn
	seq   uint32
	start time.Time
	wait  time.Duration // per-try reply timeout
	tries int
}

func dialUDP(t testing.TB, to netip.AddrPort) *udpClient {
	t.Helper()
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(to))
	if err != nil {
		t.Fatalf("dial udp: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return &udpClient{t: t, conn: c, seq: 0xF00000F0, start: time.Now(), wait: 2 * time.Second, tries: 3}
}

func (c *udpClient) local() netip.AddrPort {
	return c.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

func (c *udpClient) header(seq uint32) []byte {
	h := make([]byte, 8)
	binary.BigEndian.PutUint32(h, seq)
	binary.BigEndian.PutUint32(h[4:], uint32(time.Since(c.start).Milliseconds()))
	return h
}

func (c *udpClient) sendRaw(b []byte) {
	c.t.Helper()
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatalf("udp write: %v", err)
	}
}

// send transmits payload under sequence seq and returns the header used.
func (c *udpClient) send(seq uint32, payload string) []byte {
	c.t.Helper()
	h := c.header(seq)
	c.sendRaw(append(h, payload...))
	return h
}

// recv returns the next datagram, or an error on timeout.
func (c *udpClient) recv(d time.Duration) ([]byte, error) {
	buf := make([]byte, 65535)
	if err := c.conn.SetReadDeadline(time.Now().Add(d)); err != nil {
		return nil, err
	}
	n, err := c.conn.Read(buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// try sends payload under seq and waits for the reply with a matching
// sequence word, retransmitting as gogoc does. It returns the payload.
func (c *udpClient) try(seq uint32, payload string) (string, error) {
	for i := 0; i < c.tries; i++ {
		h := c.send(seq, payload)
		deadline := time.Now().Add(c.wait)
		for time.Now().Before(deadline) {
			b, err := c.recv(time.Until(deadline))
			if err != nil {
				break
			}
			if len(b) >= 8 && bytes.Equal(b[:4], h[:4]) {
				return string(b[8:]), nil
			}
		}
	}
	return "", fmt.Errorf("no reply to seq %08x (%q)", seq, payload)
}

// x is one exchange with the next sequence number; it fails the test when
// no reply comes.
func (c *udpClient) x(payload string) string {
	c.t.Helper()
	r, err := c.try(c.seq, payload)
	if err != nil {
		c.t.Fatal(err)
	}
	c.seq++
	return r
}

// expectNone checks that nothing arrives for d.
func (c *udpClient) expectNone(d time.Duration) {
	c.t.Helper()
	if b, err := c.recv(d); err == nil {
		c.t.Fatalf("unexpected datagram % x", b)
	}
}

// expectOver checks that the session has ended: whatever comes next is
// refused as a fresh session would refuse it.
func (c *udpClient) expectOver(next string) {
	c.t.Helper()
	if got := c.x(next); got != "500 Invalid request\r\n" {
		c.t.Fatalf("after the end of the session: %q", got)
	}
}

// tcpClient reads whole lines and Content-length records.
type tcpClient struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func dialTCP(t testing.TB, to netip.AddrPort) *tcpClient {
	t.Helper()
	c, err := net.Dial("tcp", to.String())
	if err != nil {
		t.Fatalf("dial tcp: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return &tcpClient{t: t, conn: c, r: bufio.NewReader(c)}
}

func (c *tcpClient) write(s string) {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(s)); err != nil {
		c.t.Fatalf("tcp write: %v", err)
	}
}

func (c *tcpClient) line() string {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	s, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("tcp read line (got %q): %v", s, err)
	}
	return s
}

// framed reads "Content-length: M CRLF" and M bytes, returning the body.
func (c *tcpClient) framed() string {
	c.t.Helper()
	h := c.line()
	if !strings.HasPrefix(h, "Content-length: ") {
		c.t.Fatalf("want Content-length, got %q", h)
	}
	n, err := strconv.Atoi(strings.TrimSpace(h[len("Content-length: "):]))
	if err != nil {
		c.t.Fatalf("bad length in %q", h)
	}
	body := make([]byte, n)
	if _, err := readFull(c.r, body); err != nil {
		c.t.Fatalf("read %d-byte body: %v", n, err)
	}
	return string(body)
}

func readFull(r *bufio.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// x writes a message and reads one line back.
func (c *tcpClient) x(msg string) string {
	c.t.Helper()
	c.write(msg)
	return c.line()
}

// expectEOF checks that the server closes the connection without sending.
func (c *tcpClient) expectEOF() {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := c.r.ReadByte()
	if err == nil {
		c.t.Fatalf("want EOF, got byte %q", b)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.t.Fatal("want EOF, connection still open")
	}
}

// digestResponse builds the client's DIGEST-MD5 response line (spec §3.4
// step 4), computed here independently of the server's code.
func digestResponse(t testing.TB, challengeLine, user, pass, cnonce, server string) (line, rspauth string) {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(challengeLine))
	if err != nil {
		t.Fatalf("challenge %q is not base64: %v", challengeLine, err)
	}
	fields := map[string]string{}
	for _, f := range strings.Split(string(raw), ",") {
		k, v, _ := strings.Cut(f, "=")
		fields[k] = strings.Trim(v, `"`)
	}
	realm, nonce := fields["realm"], fields["nonce"]
	uri := "tsp/" + server
	h := md5.Sum([]byte(user + ":" + realm + ":" + pass))
	a1 := md5.Sum(append(h[:], ":"+nonce+":"+cnonce...))
	ha1 := hex.EncodeToString(a1[:])
	hx := func(s string) string { v := md5.Sum([]byte(s)); return hex.EncodeToString(v[:]) }
	resp := hx(ha1 + ":" + nonce + ":00000001:" + cnonce + ":auth:" + hx("AUTHENTICATE:"+uri))
	rspauth = hx(ha1 + ":" + nonce + ":00000001:" + cnonce + ":auth:" + hx(":"+uri))
	esc := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(user)
	line = fmt.Sprintf(`charset=%s,username="%s",realm="%s",nonce="%s",nc=00000001,cnonce="%s",digest-uri="%s",response=%s,qop=auth`,
		fields["charset"], esc, realm, nonce, cnonce, uri, resp)
	return line, rspauth
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// b64decode decodes a base64 reply line.
func b64decode(t testing.TB, s string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(strings.TrimRight(s, "\r\n"))
	if err != nil {
		t.Fatalf("%q is not base64: %v", s, err)
	}
	return string(b)
}

// offerField pulls one value out of an offer for assertions: the text of
// the first element matching open (e.g. `<address type="ipv6">` after
// `<client>`).
func offerField(t testing.TB, offer, after, open string) string {
	t.Helper()
	i := strings.Index(offer, after)
	if i < 0 {
		t.Fatalf("no %q in offer:\n%s", after, offer)
	}
	rest := offer[i:]
	j := strings.Index(rest, open)
	if j < 0 {
		t.Fatalf("no %q after %q in offer:\n%s", open, after, offer)
	}
	rest = rest[j+len(open):]
	return rest[:strings.IndexByte(rest, '<')]
}

// anonUDP runs an anonymous session over UDP up to the offer and returns it
// (the body after Content-length), leaving the accept to the caller.
func anonUDP(t testing.TB, c *udpClient, req string) string {
	t.Helper()
	if got := c.x(msgVersion); !strings.HasPrefix(got, "CAPABILITY ") {
		t.Fatalf("capability: %q", got)
	}
	if got := c.x(msgAnonymous); got != okLine {
		t.Fatalf("anonymous: %q", got)
	}
	return mustFramed(t, c.x(req))
}

// mustFramed strips and checks the Content-length header of a reply.
func mustFramed(t testing.TB, reply string) string {
	t.Helper()
	head, body, ok := strings.Cut(reply, "\r\n")
	n, err := strconv.Atoi(strings.TrimPrefix(head, "Content-length: "))
	if !ok || !strings.HasPrefix(head, "Content-length: ") || err != nil || n != len(body) {
		t.Fatalf("reply is not a Content-length record: %q", reply)
	}
	return body
}

// waitFor polls cond for up to 20 s (a hang guard).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
