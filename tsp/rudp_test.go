package tsp

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// rudpClock is an injectable clock that reads what the test last set.
type rudpClock struct {
	base time.Time
	off  atomic.Int64
}

func newRUDPClock() *rudpClock {
	return &rudpClock{base: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *rudpClock) now() time.Time      { return c.base.Add(time.Duration(c.off.Load())) }
func (c *rudpClock) set(d time.Duration) { c.off.Store(int64(d)) }

// rudpSlack bounds timings from above. Upper bounds only have to tell a
// working timer from a missing or restarted one (which the error checks
// mostly do already), and the test machine may be busy and many times
// slower than usual, so they are hang guards; lower bounds are tight.
const rudpSlack = 5 * time.Second

// udpDatagram is what the scripted peer received, and when.
type udpDatagram struct {
	data []byte
	at   time.Time
}

// udpPeer is a scripted broker on a real loopback socket. handle sees each
// datagram with its index and returns the replies to send (none drops it).
type udpPeer struct {
	conn   *net.UDPConn
	handle func(i int, d []byte) [][]byte

	mu   sync.Mutex
	got  []udpDatagram
	from *net.UDPAddr
}

func newUDPPeer(t testing.TB, network, addr string, handle func(i int, d []byte) [][]byte) *udpPeer {
	t.Helper()
	la, err := net.ResolveUDPAddr(network, addr)
	if err != nil {
		t.Skipf("no %s loopback: %v", network, err)
	}
	conn, err := net.ListenUDP(network, la)
	if err != nil {
		t.Skipf("no %s loopback: %v", network, err)
	}
	p := &udpPeer{conn: conn, handle: handle}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 70000)
		for i := 0; ; i++ {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			d := bytes.Clone(buf[:n])
			p.mu.Lock()
			p.got = append(p.got, udpDatagram{data: d, at: time.Now()})
			p.from = from
			p.mu.Unlock()
			for _, r := range p.handle(i, d) {
				if _, err := conn.WriteToUDP(r, from); err != nil {
					return
				}
			}
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return p
}

// dial connects a fresh RUDP engine to the peer.
func (p *udpPeer) dial(t testing.TB, cfg RUDPConfig) *RUDP {
	t.Helper()
	la := p.conn.LocalAddr().(*net.UDPAddr)
	network := "udp4"
	if la.IP.To4() == nil {
		network = "udp6"
	}
	c, err := net.DialUDP(network, nil, la)
	if err != nil {
		t.Fatal(err)
	}
	r := NewRUDP(c, cfg)
	t.Cleanup(func() { r.Close() })
	return r
}

func (p *udpPeer) received() []udpDatagram {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]udpDatagram(nil), p.got...)
}

// receivedAtLeast is received once the peer has read n datagrams (or 10 s
// passed): a datagram the client sent without waiting for an answer may
// still be on its way to the peer's read loop.
func (p *udpPeer) receivedAtLeast(n int) []udpDatagram {
	for deadline := time.Now().Add(10 * time.Second); len(p.received()) < n && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	return p.received()
}

// rudpReply echoes the request's header in front of payload, as brokers do.
func rudpReply(req []byte, payload string) []byte {
	return append(bytes.Clone(req[:RUDPHeaderLen]), payload...)
}

// rudpAnswer replies to every datagram with the same payload.
func rudpAnswer(payload string) func(int, []byte) [][]byte {
	return func(_ int, d []byte) [][]byte { return [][]byte{rudpReply(d, payload)} }
}

func rudpSilent(int, []byte) [][]byte { return nil }

// fastRUDP shrinks the timers so that give-up paths run in milliseconds.
func fastRUDP(rto time.Duration) RUDPConfig {
	return RUDPConfig{InitialRTO: rto, MinRTO: rto, MaxRTO: 100 * rto}
}

func rudpHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func rudpWord1(d []byte) uint32 { return binary.BigEndian.Uint32(d) }
func rudpStamp(d []byte) uint32 { return binary.BigEndian.Uint32(d[4:]) }

// Appendix A, reproduced with an injected clock.
func TestRUDPGoldenAppendixA(t *testing.T) {
	p := newUDPPeer(t, "udp4", "127.0.0.1:0", func(i int, d []byte) [][]byte {
		return [][]byte{rudpReply(d, []string{"CAPABILITY TUNNEL=V6V4 AUTH=ANONYMOUS\r\n", "200 Success\r\n", ""}[i])}
	})
	clk := newRUDPClock()
	r := p.dial(t, RUDPConfig{Now: clk.now})
	ctx := context.Background()

	clk.set(42 * time.Millisecond)
	got, err := r.Exchange(ctx, []byte("VERSION=2.0.2\r\n"))
	if err != nil || string(got) != "CAPABILITY TUNNEL=V6V4 AUTH=ANONYMOUS\r\n" {
		t.Fatalf("VERSION exchange = %q, %v", got, err)
	}
	clk.set(3001 * time.Millisecond)
	if got, err = r.Exchange(ctx, []byte("AUTHENTICATE ANONYMOUS\r\n\x00")); err != nil || string(got) != "200 Success\r\n" {
		t.Fatalf("AUTHENTICATE exchange = %q, %v", got, err)
	}
	clk.set(42 * time.Millisecond)
	if got, err = r.Receive(ctx); err != nil || len(got) != 0 {
		t.Fatalf("poll = %q, %v", got, err)
	}

	want := [][]byte{
		rudpHex(t, "f0 00 00 f0 00 00 00 2a 56 45 52 53 49 4f 4e 3d 32 2e 30 2e 32 0d 0a"),
		rudpHex(t, "f0 00 00 f1 00 00 0b b9 41 55 54 48 45 4e 54 49 43 41 54 45 20 41 4e 4f 4e 59 4d 4f 55 53 0d 0a 00"),
		rudpHex(t, "f0 00 00 f2 00 00 00 2a"),
	}
	rx := p.received()
	if len(rx) != len(want) {
		t.Fatalf("peer got %d datagrams, want %d", len(rx), len(want))
	}
	for i := range want {
		if !bytes.Equal(rx[i].data, want[i]) {
			t.Errorf("datagram %d:\n got % x\nwant % x", i, rx[i].data, want[i])
		}
	}
}

func TestRUDPSequencePerExchange(t *testing.T) {
	p := newUDPPeer(t, "udp4", "127.0.0.1:0", func(i int, d []byte) [][]byte {
		return [][]byte{rudpReply(d, "P"+string(rune('0'+i)))}
	})
	r := p.dial(t, RUDPConfig{})
	ctx := context.Background()
	steps := []struct {
		name string
		run  func() (string, error)
		sent string // payload the peer must see
		want string // what the call returns
	}{
		{"exchange", func() (string, error) { b, err := r.Exchange(ctx, []byte("A\r\n")); return string(b), err }, "A\r\n", "P0"},
		{"send", func() (string, error) { return "", r.Send(ctx, []byte("B\r\n\x00")) }, "B\r\n\x00", ""},
		{"receive", func() (string, error) { b, err := r.Receive(ctx); return string(b), err }, "", "P2"},
		{"exchange", func() (string, error) { b, err := r.Exchange(ctx, []byte("C")); return string(b), err }, "C", "P3"},
		{"receive", func() (string, error) { b, err := r.Receive(ctx); return string(b), err }, "", "P4"},
		{"send", func() (string, error) { return "", r.Send(ctx, []byte("D")) }, "D", ""},
	}
	for i, s := range steps {
		got, err := s.run()
		if err != nil || got != s.want {
			t.Fatalf("step %d %s = %q, %v; want %q", i, s.name, got, err, s.want)
		}
	}
	rx := p.receivedAtLeast(len(steps))
	if len(rx) != len(steps) {
		t.Fatalf("peer got %d datagrams, want %d (one per call)", len(rx), len(steps))
	}
	for i, d := range rx {
		if w := rudpWord1(d.data); w != 0xF00000F0+uint32(i) {
			t.Errorf("datagram %d (%s) word1 = %#x, want %#x", i, steps[i].name, w, 0xF00000F0+uint32(i))
		}
		if string(d.data[RUDPHeaderLen:]) != steps[i].sent {
			t.Errorf("datagram %d (%s) payload = %q, want %q", i, steps[i].name, d.data[RUDPHeaderLen:], steps[i].sent)
		}
	}
}

func TestRUDPRetransmitReusesSeq(t *testing.T) {
	// Long enough that the peer's reply to the retransmission usually
	// beats the next one; on a busy machine it may not, which the checks
	// below allow (every retransmission is the same datagram again).
	const rto = 300 * time.Millisecond
	p := newUDPPeer(t, "udp4", "127.0.0.1:0", func(i int, d []byte) [][]byte {
		if i == 0 {
			return nil // lose the first transmission
		}
		return [][]byte{rudpReply(d, "200 Success\r\n")}
	})
	r := p.dial(t, fastRUDP(rto))
	got, err := r.Exchange(context.Background(), []byte("VERSION=2.0.2\r\n"))
	if err != nil || string(got) != "200 Success\r\n" {
		t.Fatalf("Exchange = %q, %v", got, err)
	}
	rx := p.received()
	if len(rx) < 2 {
		t.Fatalf("peer got %d datagrams, want the first and its retransmission", len(rx))
	}
	for i, d := range rx {
		if rudpWord1(d.data) != 0xF00000F0 {
			t.Errorf("datagram %d: sequence word %#x, want 0xf00000f0", i, rudpWord1(d.data))
		}
		if !bytes.Equal(d.data[RUDPHeaderLen:], rx[0].data[RUDPHeaderLen:]) {
			t.Errorf("retransmitted payload differs")
		}
	}
	// A refreshed timestamp, one RTO later.
	if g := rudpSendGaps(rx)[0]; g < rto-2*time.Millisecond {
		t.Errorf("retransmission stamped %v after the first, want >= %v", g, rto)
	}
	// The next exchange moves on.
	if _, err := r.Exchange(context.Background(), []byte("X")); err != nil {
		t.Fatal(err)
	}
	rx = p.received()
	next := 0
	for next < len(rx) && rudpWord1(rx[next].data) == 0xF00000F0 {
		next++
	}
	if next < 2 || next == len(rx) || rudpWord1(rx[next].data) != 0xF00000F1 {
		t.Errorf("after %d transmissions of the first exchange, the next one has word1 %#x, want 0xf00000f1", next, rudpWord1(rx[min(next, len(rx)-1)].data))
	}
}

func TestRUDPIgnoresNonMatching(t *testing.T) {
	p := newUDPPeer(t, "udp4", "127.0.0.1:0", func(i int, d []byte) [][]byte {
		wrongSeq := rudpReply(d, "WRONG")
		wrongSeq[3]++
		return [][]byte{
			d[:5],                                   // shorter than a header
			wrongSeq,                                // another exchange's reply
			append([]byte{0x60, 0, 0, 0}, d[4:]...), // IPv6 data, not control
			append([]byte{0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 1}, "310 TSP status error\r\n"...),
			rudpReply(d, "RIGHT"),
		}
	})
	r := p.dial(t, fastRUDP(time.Second))
	got, err := r.Exchange(context.Background(), []byte("VERSION=2.0.2\r\n"))
	if err != nil || string(got) != "RIGHT" {
		t.Fatalf("Exchange = %q, %v; want RIGHT", got, err)
	}
	if n := len(p.received()); n != 1 {
		t.Errorf("peer got %d datagrams, want 1 (junk must not trigger retransmission)", n)
	}
}

// Junk arriving all the time must not restart the retransmission timer.
func TestRUDPJunkDoesNotExtendTimeout(t *testing.T) {
	const rto = 50 * time.Millisecond
	first := make(chan []byte, 1)
	p := newUDPPeer(t, "udp4", "127.0.0.1:0", func(_ int, d []byte) [][]byte {
		select {
		case first <- d:
		default:
		}
		return nil
	})
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		d := <-first
		junk := rudpReply(d, "junk")
		junk[3] ^= 0x0F // another sequence number
		p.mu.Lock()
		to := p.from
		p.mu.Unlock()
		tk := time.NewTicker(3 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				if _, err := p.conn.WriteToUDP(junk, to); err != nil {
					return
				}
			}
		}
	}()
	r := p.dial(t, fastRUDP(rto))
	// A timer restarted by each junk datagram would never fire.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	_, err := r.Exchange(ctx, []byte("VERSION=2.0.2\r\n"))
	elapsed := time.Since(start)
	if !errors.Is(err, ErrNoReply) {
		t.Fatalf("err = %v, want ErrNoReply", err)
	}
	if n := len(p.receivedAtLeast(3)); n != 3 {
		t.Errorf("%d transmissions, want 3", n)
	}
	if elapsed < 3*rto-2*time.Millisecond || elapsed > 3*rto+rudpSlack {
		t.Errorf("gave up after %v, want about %v", elapsed, 3*rto)
	}
}

// rudpSendGaps is the time between consecutive transmissions as the client
// stamped them (engine clock, whole ms), so the peer's scheduling does not
// blur it.
func rudpSendGaps(rx []udpDatagram) []time.Duration {
	var g []time.Duration
	for i := 1; i < len(rx); i++ {
		g = append(g, time.Duration(rudpStamp(rx[i].data)-rudpStamp(rx[i-1].data))*time.Millisecond)
	}
	return g
}

func TestRUDPGiveUpNoPeer(t *testing.T) {
	const rto = 40 * time.Millisecond
	p := newUDPPeer(t, "udp4", "127.0.0.1:0", rudpSilent)
	r := p.dial(t, fastRUDP(rto))
	start := time.Now()
	_, err := r.Exchange(context.Background(), []byte("VERSION=2.0.2\r\n"))
	elapsed := time.Since(start)
	if !errors.Is(err, ErrNoReply) || !strings.Contains(err.Error(), "3 tries") {
		t.Fatalf("err = %v, want ErrNoReply after 3 tries", err)
	}
	rx := p.receivedAtLeast(3)
	if len(rx) != 3 {
		t.Fatalf("%d transmissions, want 3", len(rx))
	}
	for i, g := range rudpSendGaps(rx) {
		if g < rto-2*time.Millisecond || g > rto+rudpSlack {
			t.Errorf("gap %d = %v, want about %v", i, g, rto)
		}
	}
	if elapsed < 3*rto-2*time.Millisecond || elapsed > 3*rto+rudpSlack {
		t.Errorf("gave up after %v, want about %v", elapsed, 3*rto)
	}

	// The engine is dead: the next call fails at once and sends nothing
	// (an engine that tried would wait three RTOs for the silent peer).
	start = time.Now()
	if _, err := r.Exchange(context.Background(), []byte("X")); !errors.Is(err, ErrNoReply) {
		t.Errorf("call after failure: %v, want the earlier ErrNoReply", err)
	}
	if err := r.Send(context.Background(), []byte("X")); err == nil {
		t.Errorf("Send after failure succeeded")
	}
	t.Logf("calls after failure took %v", time.Since(start))
	time.Sleep(100 * time.Millisecond)
	if n := len(p.received()); n != 3 {
		t.Errorf("dead engine transmitted: peer has %d datagrams", n)
	}
}

func TestRUDPGiveUpPeerSeenBacksOff(t *testing.T) {
	const rto, maxRTO = 20 * time.Millisecond, 120 * time.Millisecond
	p := newUDPPeer(t, "udp4", "127.0.0.1:0", func(i int, d []byte) [][]byte {
		if i == 0 {
			return [][]byte{rudpReply(d, "CAPABILITY TUNNEL=V6V4 AUTH=ANONYMOUS\r\n")}
		}
		return nil
	})
	r := p.dial(t, RUDPConfig{InitialRTO: rto, MinRTO: rto, MaxRTO: maxRTO})
	ctx := context.Background()
	if _, err := r.Exchange(ctx, []byte("VERSION=2.0.2\r\n")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := r.Exchange(ctx, []byte("AUTHENTICATE ANONYMOUS\r\n\x00"))
	elapsed := time.Since(start)
	if !errors.Is(err, ErrNoReply) || !strings.Contains(err.Error(), "8 tries") {
		t.Fatalf("err = %v, want ErrNoReply after 8 tries", err)
	}
	rx := p.receivedAtLeast(9)[1:]
	if len(rx) != 8 {
		t.Fatalf("%d transmissions, want 8", len(rx))
	}
	for _, d := range rx {
		if rudpWord1(d.data) != 0xF00000F1 {
			t.Fatalf("retransmission with word1 %#x, want 0xf00000f1", rudpWord1(d.data))
		}
	}
	// Sends at 0, r, 2r, 3r, 4r, then back-off doubles: +2r, +4r, +8r capped
	// to maxRTO; the last wait is capped too. (TestRUDPRetransmitSchedule
	// pins the exact sequence; here the lower bounds show real waits.)
	want := []time.Duration{rto, rto, rto, rto, 2 * rto, 4 * rto, maxRTO}
	g := rudpSendGaps(rx)
	for i := range want {
		if g[i] < want[i]-2*time.Millisecond || g[i] > want[i]+rudpSlack {
			t.Errorf("gap %d = %v, want about %v (all gaps %v)", i, g[i], want[i], g)
		}
	}
	var total time.Duration
	for _, w := range want {
		total += w
	}
	total += maxRTO
	if elapsed < total-2*time.Millisecond || elapsed > total+rudpSlack {
		t.Errorf("gave up after %v, want about %v", elapsed, total)
	}
}

// The schedule of the old client, exactly, with the spec's default timers:
// no peer, sends at 0, 2, 4 s and failure at 6 s; peer seen, sends at 0, 2,
// 4, 6, 8, 12, 20, 36 s and failure at 66 s (spec §1.3).
func TestRUDPRetransmitSchedule(t *testing.T) {
	schedule := func(peerSeen bool) (sends []time.Duration, fail time.Duration) {
		r := NewRUDP(nil, RUDPConfig{})
		r.peerSeen = peerSeen
		var now time.Duration
		for tries := 1; ; tries++ {
			sends = append(sends, now)
			now += r.rto
			if r.timedOut(tries) {
				return sends, now
			}
		}
	}
	sec := func(s ...int) []time.Duration {
		var d []time.Duration
		for _, v := range s {
			d = append(d, time.Duration(v)*time.Second)
		}
		return d
	}
	if sends, fail := schedule(false); !slices.Equal(sends, sec(0, 2, 4)) || fail != 6*time.Second {
		t.Errorf("no peer: sends %v, failure at %v", sends, fail)
	}
	if sends, fail := schedule(true); !slices.Equal(sends, sec(0, 2, 4, 6, 8, 12, 20, 36)) || fail != 66*time.Second {
		t.Errorf("peer seen: sends %v, failure at %v", sends, fail)
	}
	// Back-off stays on for the session: the next exchange's first timeout
	// doubles at once.
	r := NewRUDP(nil, RUDPConfig{})
	r.peerSeen = true
	for tries := 1; !r.timedOut(tries); tries++ {
	}
	r.rto = 2 * time.Second // as a fresh RTT sample would set it
	if r.timedOut(1) || r.rto != 4*time.Second {
		t.Errorf("after back-off was on: rto %v, want 4s", r.rto)
	}
}

func TestRUDPTooManyExchanges(t *testing.T) {
	p := newUDPPeer(t, "udp4", "127.0.0.1:0", rudpAnswer("200 Success\r\n"))
	r := p.dial(t, RUDPConfig{})
	ctx := context.Background()
	for i := 0; i < 16; i++ {
		if _, err := r.Exchange(ctx, []byte("X")); err != nil {
			t.Fatalf("exchange %d: %v", i+1, err)
		}
	}
	if _, err := r.Exchange(ctx, []byte("X")); !errors.Is(err, ErrTooManyExchanges) {
		t.Fatalf("17th exchange: %v, want ErrTooManyExchanges", err)
	}
	if _, err := r.Receive(ctx); !errors.Is(err, ErrTooManyExchanges) {
		t.Fatalf("17th poll: %v, want ErrTooManyExchanges", err)
	}
	rx := p.received()
	if len(rx) != 16 {
		t.Fatalf("peer got %d datagrams, want 16", len(rx))
	}
	if w := rudpWord1(rx[15].data); w != 0xF00000FF {
		t.Errorf("last word1 = %#x, want 0xf00000ff", w)
	}
}

func TestRUDPContextCancel(t *testing.T) {
	p := newUDPPeer(t, "udp4", "127.0.0.1:0", rudpSilent)
	r := p.dial(t, RUDPConfig{}) // 2 s RTO: only ctx can end this quickly
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := r.Exchange(ctx, []byte("VERSION=2.0.2\r\n"))
	if d := time.Since(start); d > 50*time.Millisecond+rudpSlack {
		t.Errorf("cancel took effect after %v", d)
	}
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrNoReply) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if _, err := r.Exchange(context.Background(), []byte("X")); !errors.Is(err, context.Canceled) {
		t.Errorf("after an interrupted exchange: %v, want the engine dead", err)
	}
}

func TestRUDPContextDeadline(t *testing.T) {
	p := newUDPPeer(t, "udp4", "127.0.0.1:0", rudpSilent)
	r := p.dial(t, RUDPConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := r.Receive(ctx)
	if d := time.Since(start); d > 60*time.Millisecond+rudpSlack {
		t.Errorf("deadline took effect after %v", d)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if n := len(p.receivedAtLeast(1)); n != 1 {
		t.Errorf("%d transmissions, want 1", n)
	}
}

func TestRUDPCancelledBeforeStartKeepsEngine(t *testing.T) {
	p := newUDPPeer(t, "udp4", "127.0.0.1:0", rudpAnswer("ok"))
	r := p.dial(t, RUDPConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Exchange(ctx, []byte("X")); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want Canceled", err)
	}
	got, err := r.Exchange(context.Background(), []byte("X"))
	if err != nil || string(got) != "ok" {
		t.Fatalf("after a call that sent nothing: %q, %v", got, err)
	}
	if w := rudpWord1(p.received()[0].data); w != 0xF00000F0 {
		t.Errorf("word1 = %#x, the refused call must not use a sequence number", w)
	}
}

func TestRUDPSocketErrorFailsAtOnce(t *testing.T) {
	// A port with nobody on it: loopback answers port unreachable, which a
	// connected socket reports as ECONNREFUSED.
	l, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := l.LocalAddr().(*net.UDPAddr)
	l.Close()
	c, err := net.DialUDP("udp4", nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	r := NewRUDP(c, RUDPConfig{InitialRTO: 5 * time.Second})
	defer r.Close()
	start := time.Now()
	_, err = r.Exchange(context.Background(), []byte("VERSION=2.0.2\r\n"))
	// Before the first retransmission, 5 s away: the error ends the
	// exchange, not the timer.
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("socket error surfaced after %v", d)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, ErrNoReply) {
		t.Fatalf("err = %v, want ECONNREFUSED", err)
	}
}

func testRUDPLoopback(t *testing.T, network, addr string) {
	p := newUDPPeer(t, network, addr, rudpAnswer("CAPABILITY TUNNEL=V6UDPV4 AUTH=ANONYMOUS\r\n"))
	r := p.dial(t, RUDPConfig{})
	got, err := r.Exchange(context.Background(), []byte("VERSION=2.0.2\r\n"))
	if err != nil || string(got) != "CAPABILITY TUNNEL=V6UDPV4 AUTH=ANONYMOUS\r\n" {
		t.Fatalf("Exchange = %q, %v", got, err)
	}
	if r.Network() != UDP {
		t.Errorf("Network = %q", r.Network())
	}
	peerAddr := p.conn.LocalAddr().(*net.UDPAddr).AddrPort()
	if ra := r.RemoteAddr(); ra.Addr() != peerAddr.Addr().Unmap() || ra.Port() != peerAddr.Port() {
		t.Errorf("RemoteAddr = %v, want %v", ra, peerAddr)
	}
	la := r.LocalAddr()
	p.mu.Lock()
	from := p.from.AddrPort()
	p.mu.Unlock()
	if la.Addr() != from.Addr().Unmap() || la.Port() != from.Port() {
		t.Errorf("LocalAddr = %v, peer saw %v", la, from)
	}
	if network == "udp4" && !la.Addr().Is4() {
		t.Errorf("LocalAddr %v is not plain IPv4", la)
	}
	if network == "udp6" && !la.Addr().Is6() {
		t.Errorf("LocalAddr %v is not IPv6", la)
	}
}

func TestRUDPIPv4Loopback(t *testing.T) { testRUDPLoopback(t, "udp4", "127.0.0.1:0") }
func TestRUDPIPv6Loopback(t *testing.T) { testRUDPLoopback(t, "udp6", "[::1]:0") }

func TestRUDPDetach(t *testing.T) {
	p := newUDPPeer(t, "udp4", "127.0.0.1:0", func(i int, d []byte) [][]byte {
		if i == 0 {
			return [][]byte{rudpReply(d, "")}
		}
		return nil
	})
	r := p.dial(t, RUDPConfig{})
	// The engine bounds its writes by ctx's deadline; Detach must clear that.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := r.Send(ctx, []byte("Content-length: 35\r\n<tunnel action=\"accept\"></tunnel>\r\n")); err != nil {
		t.Fatal(err)
	}
	c := r.Detach()
	if c == nil {
		t.Fatal("Detach returned nil")
	}
	defer c.Close()
	if r.Detach() != nil {
		t.Error("second Detach returned the socket again")
	}
	if _, err := r.Exchange(context.Background(), []byte("X")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Exchange after Detach: %v, want net.ErrClosed", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("Close after Detach: %v", err)
	}
	<-ctx.Done()
	time.Sleep(10 * time.Millisecond)
	// The socket still works, on the same 5-tuple, for raw IPv6 packets.
	pkt := []byte{0x60, 0, 0, 0, 0, 0, 59, 64}
	if _, err := c.Write(pkt); err != nil {
		t.Fatalf("write on detached socket: %v", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for len(p.received()) < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	rx := p.received()
	if len(rx) != 2 || !bytes.Equal(rx[1].data, pkt) {
		t.Fatalf("peer did not get the raw packet: %d datagrams", len(rx))
	}
	errc := make(chan error, 1)
	go func() { _, err := c.Read(make([]byte, 10)); errc <- err }()
	select {
	case err := <-errc:
		t.Fatalf("read on detached socket returned at once (deadline left behind?): %v", err)
	case <-time.After(30 * time.Millisecond):
	}
}

func TestRUDPHeaderRoundTrip(t *testing.T) {
	cases := []struct {
		seq, ts uint32
		wire    string
	}{
		{0xF0, 0x2A, "f00000f00000002a"},
		{0xFF, 0xFFFFFFFF, "f00000ffffffffff"},
		{0x0FFFFFFF, 0, "ffffffff00000000"},
		{0xF0000001, 1, "f000000100000001"}, // top nibble of seq is not kept
	}
	for _, c := range cases {
		b := AppendRUDPHeader([]byte("x"), c.seq, c.ts)
		if hex.EncodeToString(b[1:]) != c.wire {
			t.Errorf("Append(%#x, %#x) = %x, want %s", c.seq, c.ts, b[1:], c.wire)
		}
		seq, ts, payload, err := ParseRUDPHeader(append(b[1:], "body"...))
		if err != nil || seq != c.seq&0x0FFFFFFF || ts != c.ts || string(payload) != "body" {
			t.Errorf("Parse(%s) = %#x, %#x, %q, %v", c.wire, seq, ts, payload, err)
		}
	}
	for _, bad := range []string{"", "f00000f0000000", "600000f00000002a", "e00000f00000002a"} {
		b, _ := hex.DecodeString(bad)
		if _, _, _, err := ParseRUDPHeader(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%s) err = %v, want ErrMalformed", bad, err)
		}
	}
}

// The estimator is RFC 6298, not the old client's ever-growing rttvar.
func TestRUDPEstimator(t *testing.T) {
	clk := newRUDPClock()
	r := NewRUDP(nil, RUDPConfig{MinRTO: time.Millisecond, MaxRTO: 10 * time.Second, Now: clk.now})
	if r.rto != 2*time.Second {
		t.Fatalf("initial rto %v, want 2s", r.rto)
	}
	feed := func(sentMS, nowMS uint32) time.Duration {
		clk.set(time.Duration(nowMS) * time.Millisecond)
		return r.observe(sentMS, sentMS)
	}
	steps := []struct {
		sent, now uint32
		rto       time.Duration
	}{
		{1000, 1100, 300 * time.Millisecond},     // srtt 100, rttvar 50
		{2000, 2100, 250 * time.Millisecond},     // rttvar shrinks to 37.5
		{3000, 4500, 1787500 * time.Microsecond}, // srtt 275, rttvar 378.125: fraction kept
	}
	for i, s := range steps {
		if got := feed(s.sent, s.now); got != time.Duration(s.now-s.sent)*time.Millisecond {
			t.Errorf("step %d sample %v", i, got)
		}
		if r.rto != s.rto {
			t.Errorf("step %d rto %v, want %v", i, r.rto, s.rto)
		}
	}
	// An echoed stamp this exchange never sent is no sample.
	before := r.rto
	clk.set(5000 * time.Millisecond)
	if got := r.observe(4900, 5050); got != -1 || r.rto != before {
		t.Errorf("stamp after now: sample %v rto %v", got, r.rto)
	}
	if got := r.observe(4900, 4000); got != -1 || r.rto != before {
		t.Errorf("stamp before the exchange: sample %v rto %v", got, r.rto)
	}
	// Clamps.
	clk = newRUDPClock()
	r2 := NewRUDP(nil, RUDPConfig{Now: clk.now})
	clk.set(10 * time.Millisecond)
	r2.observe(0, 0)
	if r2.rto != 2*time.Second {
		t.Errorf("rto %v, want the 2s floor", r2.rto)
	}
	clk.set(60 * time.Second)
	r2.observe(0, 0)
	if r2.rto != 30*time.Second {
		t.Errorf("rto %v, want the 30s ceiling", r2.rto)
	}
}

func FuzzRUDPHeader(f *testing.F) {
	f.Add([]byte("\xf0\x00\x00\xf0\x00\x00\x00\x2aVERSION=2.0.2\r\n"), uint32(0xF0), uint32(42))
	f.Add([]byte("\x60\x00\x00\x00"), uint32(0xFFFFFFFF), uint32(0))
	f.Fuzz(func(t *testing.T, b []byte, seq, ts uint32) {
		s, ts2, payload, err := ParseRUDPHeader(b)
		if err == nil {
			if len(b) < RUDPHeaderLen || b[0]>>4 != 0xF {
				t.Fatalf("accepted % x", b)
			}
			if s > 0x0FFFFFFF || !bytes.Equal(AppendRUDPHeader(nil, s, ts2), b[:RUDPHeaderLen]) || !bytes.Equal(payload, b[RUDPHeaderLen:]) {
				t.Fatalf("parse of % x is not faithful: %#x %#x %q", b, s, ts2, payload)
			}
		} else if len(b) >= RUDPHeaderLen && b[0]>>4 == 0xF {
			t.Fatalf("refused a valid header % x: %v", b, err)
		}
		d := AppendRUDPHeader(nil, seq, ts)
		d = append(d, b...)
		s, ts2, payload, err = ParseRUDPHeader(d)
		if err != nil || s != seq&0x0FFFFFFF || ts2 != ts || !bytes.Equal(payload, b) {
			t.Fatalf("round trip (%#x, %#x, % x) = %#x, %#x, % x, %v", seq, ts, b, s, ts2, payload, err)
		}
	})
}

// BenchmarkRUDPExchange measures one exchange over loopback against an
// echoing peer that allocates nothing, so the figures are the engine's.
func BenchmarkRUDPExchange(b *testing.B) {
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		const capability = "CAPABILITY TUNNEL=V6V4 TUNNEL=V6UDPV4 AUTH=DIGEST-MD5 AUTH=ANONYMOUS\r\n"
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if n < RUDPHeaderLen {
				continue
			}
			m := RUDPHeaderLen + copy(buf[RUDPHeaderLen:], capability)
			if _, err := pc.WriteToUDPAddrPort(buf[:m], from); err != nil {
				return
			}
		}
	}()
	defer func() { pc.Close(); <-done }()
	c, err := net.DialUDP("udp4", nil, pc.LocalAddr().(*net.UDPAddr))
	if err != nil {
		b.Fatal(err)
	}
	r := NewRUDP(c, RUDPConfig{})
	defer r.Close()
	msg := []byte("VERSION=2.0.2\r\n")
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%16 == 0 {
			// A session allows 16 exchanges; rewind rather than re-dial so
			// only the exchange path is measured.
			r.mu.Lock()
			r.seq = rudpFirstSeq
			r.mu.Unlock()
		}
		if _, err := r.Exchange(ctx, msg); err != nil {
			b.Fatal(err)
		}
	}
}
