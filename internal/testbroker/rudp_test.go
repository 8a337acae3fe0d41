package testbroker

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"strings"
	"testing"
	"time"
)

const shortWait = 250 * time.Millisecond

func TestRetransmissionGetsCachedReply(t *testing.T) {
	s, udp, _ := startServer(t, testConfig())
	c := dialUDP(t, udp)
	c.x(msgVersion)
	c.x(msgPlain)
	if got := c.x(plainCreds("alice", "secret")); got != okLine {
		t.Fatalf("auth %q", got)
	}
	// The credentials again under the same sequence, a little later: the
	// cached 200 comes back behind the new header, and nothing advances.
	time.Sleep(5 * time.Millisecond)
	h := c.send(c.seq-1, plainCreds("alice", "secret"))
	b, err := c.recv(5 * time.Second)
	if err != nil || !bytes.Equal(b[:8], h) || string(b[8:]) != okLine {
		t.Fatalf("retransmission reply % x, %v (header % x)", b, err, h)
	}
	req := createMsg("v6udpv4", "127.0.0.1", 30, -1)
	offer := c.x(req)
	if again, err := c.try(c.seq-1, req); err != nil || again != offer {
		t.Fatalf("offer again: %q %v", again, err)
	}
	if got := c.x(msgAccept); got != "" {
		t.Fatalf("accept ack %q", got)
	}
	// A lost accept ack: the retransmitted accept gets the ack again.
	if got, err := c.try(c.seq-1, msgAccept); err != nil || got != "" {
		t.Fatalf("accept again %q %v", got, err)
	}
	if st := s.Stats(); st.Retransmits != 3 || st.Established != 1 || len(s.Sessions()) != 1 {
		t.Fatalf("stats %+v sessions %d", st, len(s.Sessions()))
	}
}

func TestStaleDuplicateIgnored(t *testing.T) {
	_, udp, _ := startServer(t, testConfig())
	c := dialUDP(t, udp)
	c.x(msgVersion)
	c.x(msgPlain)
	c.x(plainCreds("alice", "secret"))
	c.send(0xF00000F1, msgPlain) // older than the last sequence
	c.expectNone(shortWait)
	if offer := mustFramed(t, c.x(createMsg("v6v4", "127.0.0.1", 30, -1))); !strings.HasPrefix(offer, okLine) {
		t.Fatalf("offer %q", offer)
	}
}

// A new session from the same address and port (a retry whose socket got
// the same port, or a NAT keeping its mapping) replaces the old one.
func TestSamePortNewSession(t *testing.T) {
	dp := newRecDP()
	cfg := testConfig()
	cfg.DataPlane = dp
	s, udp, _ := startServer(t, cfg)
	c := dialUDP(t, udp)
	establishUDP(t, c, "v6udpv4", "")
	first := s.Sessions()[0].ID
	c.seq = 0xF00000F0 // a fresh RUDP engine
	if got := c.x(msgVersion); got != capDefault {
		t.Fatalf("VERSION on a reused port: %q", got)
	}
	c.x(msgAnonymous)
	mustFramed(t, c.x(createMsg("v6v4", "127.0.0.1", 30, -1)))
	c.x(msgAccept)
	ss := s.Sessions()
	if len(ss) != 1 || ss[0].ID == first || ss[0].Type != "v6v4" {
		t.Fatalf("sessions %+v", ss)
	}
	// The data plane hears of a session after its reply is on the wire
	// (sendReply's after hook), so the counts may trail the ack a little.
	waitFor(t, "two Established, one Closed", func() bool { e, n := dp.counts(); return e == 2 && n == 1 })
	// The same holds for a session that failed.
	c2 := dialUDP(t, udp)
	c2.x("VERSION=9.9.9\r\n")
	c2.expectOver("stray") // the failed session refuses anything...
	c2.seq = 0xF00000F5
	if got := c2.x(msgVersion); got != capDefault { // ...but a new VERSION starts over
		t.Fatalf("after a failure: %q", got)
	}
}

func TestFaultDropInbound(t *testing.T) {
	cfg := testConfig()
	cfg.Faults.DropInbound = []int{1, 3}
	s, udp, _ := startServer(t, cfg)
	c := dialUDP(t, udp)
	c.send(c.seq, msgVersion)
	c.expectNone(shortWait)
	if got := c.x(msgVersion); got != capDefault { // datagram 2
		t.Fatalf("capability %q", got)
	}
	c.send(c.seq, msgAnonymous) // datagram 3, dropped
	c.expectNone(shortWait)
	if got := c.x(msgAnonymous); got != okLine {
		t.Fatalf("anonymous %q", got)
	}
	if st := s.Stats(); st.DroppedInbound != 2 || st.Retransmits != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFaultDropReply(t *testing.T) {
	cfg := testConfig()
	cfg.Faults.DropReply = []int{3} // capability, anonymous, then the offer
	s, udp, _ := startServer(t, cfg)
	c := dialUDP(t, udp)
	c.x(msgVersion)
	c.x(msgAnonymous)
	req := createMsg("v6v4", "127.0.0.1", 30, -1)
	c.send(c.seq, req)
	c.expectNone(shortWait)
	if offer := mustFramed(t, c.x(req)); !strings.HasPrefix(offer, okLine) {
		t.Fatalf("offer %q", offer)
	}
	c.x(msgAccept)
	if st := s.Stats(); st.DroppedReplies != 1 || st.Retransmits != 1 || st.Established != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFaultDelay(t *testing.T) {
	cfg := testConfig()
	cfg.Faults.Delay = 150 * time.Millisecond
	_, udp, tcp := startServer(t, cfg)
	start := time.Now()
	dialUDP(t, udp).x(msgVersion)
	if d := time.Since(start); d < cfg.Faults.Delay {
		t.Errorf("udp reply after %v", d)
	}
	start = time.Now()
	dialTCP(t, tcp).x(msgVersion)
	if d := time.Since(start); d < cfg.Faults.Delay {
		t.Errorf("tcp reply after %v", d)
	}
}

// runTo drives a UDP session with the given mechanism up to phase and
// returns the reply at that phase.
func runTo(t *testing.T, c *udpClient, phase string) string {
	t.Helper()
	steps := map[string][]string{
		PhaseVersion:   {msgVersion},
		PhaseEcho:      {"ECHO REQUEST"},
		PhaseAuth:      {msgVersion, msgAnonymous},
		PhaseAuthStep:  {msgVersion, msgPlain, plainCreds("alice", "secret")},
		PhaseAuthFinal: {msgVersion, msgDigest, "digest", ""},
		PhaseTunnel:    {msgVersion, msgAnonymous, createMsg("v6v4", "127.0.0.1", 30, -1)},
		PhaseAccept:    {msgVersion, msgAnonymous, createMsg("v6v4", "127.0.0.1", 30, -1), msgAccept},
	}[phase]
	var last, prev string
	for _, m := range steps {
		if m == "digest" {
			line, _ := digestResponse(t, prev, "alice", "secret", "1", "h")
			m = b64(line) + "\r\n"
		}
		last = c.x(m)
		prev = last
	}
	return last
}

func TestFaultStatusAt(t *testing.T) {
	for phase, code := range map[string]int{
		PhaseVersion: 530, PhaseEcho: 500, PhaseAuth: 300, PhaseAuthStep: 301, PhaseAuthFinal: 530, PhaseTunnel: 301, PhaseAccept: 310,
	} {
		t.Run(phase, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			cfg.Faults.StatusAt = map[string]int{phase: code}
			s, udp, _ := startServer(t, cfg)
			c := dialUDP(t, udp)
			got := runTo(t, c, phase)
			want := strconv.Itoa(code) + " " + statusText(code) + "\r\n"
			if phase == PhaseTunnel {
				got = mustFramed(t, got)
			}
			if got != want {
				t.Fatalf("got %q want %q", got, want)
			}
			c.expectOver(msgAccept)
			if len(s.Sessions()) != 0 {
				t.Fatal("session established despite the status")
			}
		})
	}
}

func TestFaultStatusAtTCP(t *testing.T) {
	cfg := testConfig()
	cfg.Faults.StatusAt = map[string]int{PhaseTunnel: 507}
	_, _, tcp := startServer(t, cfg)
	c := dialTCP(t, tcp)
	c.x(msgVersion)
	c.x(msgAnonymous)
	c.write(createMsg("v6v4", "127.0.0.1", 30, -1))
	if got := c.framed(); got != "507 Prefix length unavailable\r\n" {
		t.Fatalf("got %q", got)
	}
	c.expectEOF()
}

func TestFaultRawAt(t *testing.T) {
	cfg := testConfig()
	cfg.Faults.RawAt = map[string][]byte{
		PhaseVersion: []byte("CAPABILITY TUNNEL=V6V4 AUTH=ANONYMOUS"), // no CRLF (spec §2.2 quirk)
		PhaseTunnel:  []byte("not an offer"),
	}
	s, udp, _ := startServer(t, cfg)
	c := dialUDP(t, udp)
	if got := c.x(msgVersion); got != "CAPABILITY TUNNEL=V6V4 AUTH=ANONYMOUS" {
		t.Fatalf("raw capability %q", got)
	}
	// The state machine moved on as if the normal reply had gone out.
	if got := c.x(msgAnonymous); got != okLine {
		t.Fatalf("anonymous %q", got)
	}
	if got := c.x(createMsg("v6v4", "127.0.0.1", 30, -1)); got != "not an offer" {
		t.Fatalf("raw offer %q", got)
	}
	c.x(msgAccept)
	if len(s.Sessions()) != 1 {
		t.Fatal("not established after a raw offer")
	}
}

func TestFaultCloseAt(t *testing.T) {
	cfg := testConfig()
	cfg.Faults.CloseAt = PhaseAuth
	_, udp, tcp := startServer(t, cfg)
	c := dialUDP(t, udp)
	c.x(msgVersion)
	c.send(c.seq, msgAnonymous)
	c.expectNone(shortWait)
	c.send(c.seq, msgAnonymous) // retransmissions meet silence too
	c.expectNone(shortWait)

	tc := dialTCP(t, tcp)
	tc.x(msgVersion)
	tc.write(msgAnonymous)
	tc.expectEOF()

	// CloseAt auth-final over TCP: the proof is written, then the close.
	cfg.Faults.CloseAt = PhaseAuthFinal
	_, _, tcp = startServer(t, cfg)
	tc = dialTCP(t, tcp)
	tc.x(msgVersion)
	line, _ := digestResponse(t, tc.x(msgDigest), "alice", "secret", "1", "h")
	if got := b64decode(t, tc.x(b64(line)+"\r\n")); !strings.HasPrefix(got, "rspauth=") {
		t.Fatalf("proof %q", got)
	}
	tc.expectEOF()
}

func TestSetFaults(t *testing.T) {
	s, udp, _ := startServer(t, testConfig())
	old := dialUDP(t, udp)
	old.x(msgVersion)
	if err := s.SetFaults(Faults{StatusAt: map[string]int{PhaseVersion: 530}}); err != nil {
		t.Fatal(err)
	}
	if got := dialUDP(t, udp).x(msgVersion); got != "530 Server too busy\r\n" {
		t.Fatalf("new session %q", got)
	}
	if got := old.x(msgAnonymous); got != okLine { // keeps its snapshot
		t.Fatalf("running session %q", got)
	}
	if err := s.SetFaults(Faults{CloseAt: "nowhere"}); err == nil {
		t.Fatal("unknown phase accepted")
	}
}

func TestChunkedOffer(t *testing.T) {
	cfg := testConfig()
	_, udp, tcp := startServer(t, cfg)
	whole := anonUDP(t, dialUDP(t, udp), createMsg("v6v4", "127.0.0.1", 30, -1))

	cfg.Faults.Chunk = 100
	_, udp, tcp2 := startServer(t, cfg)
	_ = tcp
	c := dialUDP(t, udp)
	c.x(msgVersion)
	c.x(msgAnonymous)
	got := c.x(createMsg("v6v4", "127.0.0.1", 30, -1))
	if len(got) != 100 || !strings.HasPrefix(got, "Content-length: ") {
		t.Fatalf("first chunk %q", got)
	}
	for i := 0; i < 20 && !strings.HasSuffix(got, "</tunnel>\r\n"); i++ {
		got += c.x("") // gogoc's 8-byte polls collect the rest
	}
	body := mustFramed(t, got)
	// The client address depends on the source port; compare the rest.
	if strings.Count(body, "\n") != strings.Count(whole, "\n") || len(body) != len(whole) {
		t.Fatalf("reassembled:\n%s\nwant:\n%s", body, whole)
	}
	if extra := c.x(""); extra != "" {
		t.Fatalf("poll after the offer: %q", extra)
	}
	c.x(msgAccept)

	tc := dialTCP(t, tcp2)
	tc.x(msgVersion)
	tc.x(msgAnonymous)
	tc.write(createMsg("v6v4", "127.0.0.1", 30, -1))
	if b := tc.framed(); !strings.HasSuffix(b, "</tunnel>\r\n") {
		t.Fatalf("tcp chunked offer %q", b)
	}
}

const redirectWant = "1200 Redirect\r\n<tunnel action=\"info\">\r\n <broker>\r\n" +
	"  <address type=\"ipv4\">198.51.100.20</address>\r\n" +
	"  <address type=\"ipv6\">2001:db8::20</address>\r\n" +
	"  <address type=\"dn\">broker2.example.net</address>\r\n" +
	" </broker>\r\n</tunnel>\r\n"

func TestRedirect(t *testing.T) {
	for _, phase := range []string{PhaseVersion, PhaseAuth, PhaseAuthStep, PhaseAuthFinal, PhaseTunnel} {
		t.Run(phase, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			cfg.Redirect = []Broker{{"ipv4", "198.51.100.20"}, {"ipv6", "2001:db8::20"}, {"dn", "broker2.example.net"}}
			cfg.Faults.RedirectPhase = phase
			if phase == PhaseVersion {
				cfg.Faults.RedirectPhase = "" // the default
			}
			_, udp, tcp := startServer(t, cfg)
			got := runTo(t, dialUDP(t, udp), phase)
			if phase == PhaseTunnel {
				got = mustFramed(t, got)
			}
			if got != redirectWant {
				t.Fatalf("udp:\n%q\nwant\n%q", got, redirectWant)
			}
			if phase != PhaseVersion {
				return
			}
			c := dialTCP(t, tcp)
			c.write(msgVersion)
			b := make([]byte, len(redirectWant))
			if _, err := readFull(c.r, b); err != nil || string(b) != redirectWant {
				t.Fatalf("tcp %q %v", b, err)
			}
			c.expectEOF()
		})
	}
	if _, err := New(Config{Redirect: []Broker{{"ip", "x"}}}); err == nil {
		t.Error("bad redirect kind accepted")
	}
	if _, err := New(Config{Faults: Faults{RedirectPhase: PhaseAccept}}); err == nil {
		t.Error("redirect at accept accepted")
	}
}

func TestEchoRequest(t *testing.T) {
	_, udp, _ := startServer(t, testConfig())
	c := dialUDP(t, udp)
	if got := c.x("ECHO REQUEST"); got != okLine {
		t.Fatalf("echo %q", got)
	}
	if got := c.x(msgVersion); got != capDefault {
		t.Fatalf("version after echo %q", got)
	}
}

func TestStatusErrorForData(t *testing.T) {
	s, udp, _ := startServer(t, testConfig())
	data := append([]byte{0x60, 0, 0, 0, 0, 8, 58, 64}, make([]byte, 40)...)
	check := func(c *udpClient) {
		t.Helper()
		b, err := c.recv(5 * time.Second)
		if err != nil || !bytes.Equal(b[:4], []byte{0xFF, 0xFF, 0xFF, 0xFF}) || string(b[8:]) != "310 TSP status error\r\n" {
			t.Fatalf("got % x %v", b, err)
		}
		if d := time.Unix(int64(binary.BigEndian.Uint32(b[4:8])), 0); time.Since(d).Abs() > time.Minute {
			t.Fatalf("time field %v", d)
		}
	}
	// Unknown client.
	c := dialUDP(t, udp)
	c.sendRaw(data)
	check(c)
	// Negotiating session: it ends.
	c = dialUDP(t, udp)
	c.x(msgVersion)
	c.sendRaw(data)
	check(c)
	c.expectOver(msgAnonymous)
	if st := s.Stats(); st.StatusErrors != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestTSPKeepaliveEcho(t *testing.T) {
	_, udp, _ := startServer(t, testConfig())
	c := dialUDP(t, udp)
	anonUDP(t, c, createMsg("v6udpv4", "127.0.0.1", 30, -1))
	c.x(msgAccept)
	h := c.send(c.seq, "keepalive?")
	b, err := c.recv(5 * time.Second)
	if err != nil || !bytes.Equal(b, append(h, "keepalive?"...)) {
		t.Fatalf("echo % x %v", b, err)
	}
}

func TestOversizedMessage(t *testing.T) {
	_, udp, _ := startServer(t, testConfig())
	c := dialUDP(t, udp)
	c.x(msgVersion)
	c.x(msgAnonymous)
	if got := c.x("Content-length: 5000\r\n" + strings.Repeat("x", 5000)); got != "500 Invalid request\r\n" {
		t.Fatalf("got %q", got)
	}
}

func TestIdleExpiry(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.IdleTimeout = 100 * time.Millisecond
	_, udp, _ := startServer(t, cfg)
	c := dialUDP(t, udp)
	c.x(msgVersion)
	// Well past the timeout: the sweeper (every 25 ms) may run late on a
	// busy machine.
	time.Sleep(2 * time.Second)
	// The session is gone: this lands in a fresh one, which wants VERSION.
	if got := c.x(msgAnonymous); got != "500 Invalid request\r\n" {
		t.Fatalf("after expiry %q", got)
	}
}

func TestStrictRUDP(t *testing.T) {
	cfg := testConfig()
	cfg.StrictRUDP = true
	_, udp, _ := startServer(t, cfg)
	// Network-order numbering from F0000000 looks like data to tsps.
	c := dialUDP(t, udp)
	c.seq = 0xF0000000
	c.send(c.seq, msgVersion)
	b, err := c.recv(5 * time.Second)
	if err != nil || string(b[8:]) != "310 TSP status error\r\n" {
		t.Fatalf("got %q %v", b, err)
	}
	// gogoc's numbering works for 16 exchanges, and no more.
	c = dialUDP(t, udp)
	c.x("ECHO REQUEST")
	for i := 1; i < 16; i++ {
		if got := c.x("ECHO REQUEST"); got != okLine {
			t.Fatalf("exchange %d: %q", i, got)
		}
	}
	c.send(c.seq, "ECHO REQUEST") // 0xF0000100
	if b, err := c.recv(5 * time.Second); err != nil || string(b[8:]) != "310 TSP status error\r\n" {
		t.Fatalf("17th exchange: %q %v", b, err)
	}
}

func TestSessionLimits(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.MaxPerSource = 2
	_, udp, tcp := startServer(t, cfg)
	dialUDP(t, udp).x(msgVersion)
	dialTCP(t, tcp).x(msgVersion)
	if got := dialUDP(t, udp).x(msgVersion); got != "530 Server too busy\r\n" {
		t.Fatalf("udp over the limit: %q", got)
	}
	c := dialTCP(t, tcp)
	if got := c.x(msgVersion); got != "530 Server too busy\r\n" {
		t.Fatalf("tcp over the limit: %q", got)
	}
	c.expectEOF()
}
