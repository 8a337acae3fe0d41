package tsp

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRUDPEchoProbe(t *testing.T) {
	const delay = 30 * time.Millisecond
	p := newUDPPeer(t, "udp4", "127.0.0.1:0", func(_ int, d []byte) [][]byte {
		time.Sleep(delay)
		return [][]byte{rudpReply(d, "200 Success\r\n")}
	})
	r := p.dial(t, RUDPConfig{})
	rtt, status, err := r.Echo(context.Background(), 3, time.Second)
	if err != nil || status != 200 {
		t.Fatalf("Echo = %v, %d, %v", rtt, status, err)
	}
	if rtt < delay-time.Millisecond || rtt > delay+rudpSlack {
		t.Errorf("rtt %v, want about %v", rtt, delay)
	}
	rx := p.received()
	if len(rx) != 1 {
		t.Fatalf("peer got %d datagrams, want 1", len(rx))
	}
	d := rx[0].data
	if len(d) != 20 || rudpWord1(d) != 0xF00000F0 || string(d[RUDPHeaderLen:]) != "ECHO REQUEST" {
		t.Errorf("probe datagram % x, want f00000f0 <ts> + \"ECHO REQUEST\" (20 bytes)", d)
	}
}

func TestRUDPEchoRetriesThenAnswers(t *testing.T) {
	p := newUDPPeer(t, "udp4", "127.0.0.1:0", func(i int, d []byte) [][]byte {
		if i == 0 {
			return nil
		}
		return [][]byte{rudpReply(d, "302 Unsupported client version\r\n")}
	})
	r := p.dial(t, RUDPConfig{})
	const timeout = 100 * time.Millisecond
	_, status, err := r.Echo(context.Background(), 3, timeout)
	// A non-200 answer still gives a distance; the caller decides (spec §7.1).
	if err != nil || status != 302 {
		t.Fatalf("Echo status %d, err %v; want 302, nil", status, err)
	}
	// Two tries, or three if the busy peer was slower than the timeout.
	rx := p.received()
	if len(rx) < 2 || len(rx) > 3 || rudpWord1(rx[0].data) != 0xF00000F0 || rudpWord1(rx[1].data) != 0xF00000F0 {
		t.Fatalf("want 2 tries with sequence 0xf00000f0, got %d", len(rx))
	}
	if g := rudpSendGaps(rx)[0]; g < timeout-2*time.Millisecond {
		t.Errorf("retried after %v, before the %v timeout", g, timeout)
	}
}

func TestRUDPEchoGivesUp(t *testing.T) {
	const timeout = 30 * time.Millisecond
	p := newUDPPeer(t, "udp4", "127.0.0.1:0", rudpSilent)
	r := p.dial(t, RUDPConfig{})
	start := time.Now()
	_, _, err := r.Echo(context.Background(), 3, timeout)
	elapsed := time.Since(start)
	if !errors.Is(err, ErrNoReply) || !strings.Contains(err.Error(), "3 tries") {
		t.Fatalf("err = %v, want ErrNoReply after 3 tries", err)
	}
	if n := len(p.receivedAtLeast(3)); n != 3 {
		t.Errorf("%d transmissions, want 3", n)
	}
	if elapsed < 3*timeout-2*time.Millisecond || elapsed > 3*timeout+rudpSlack {
		t.Errorf("gave up after %v, want about %v", elapsed, 3*timeout)
	}
	if _, _, err := r.Echo(context.Background(), 0, time.Second); err == nil {
		t.Error("Echo with 0 tries succeeded")
	}
}

func TestLeadingStatusCode(t *testing.T) {
	for in, want := range map[string]int{
		"200 Success\r\n":      200,
		"1200 Redirect\r\n":    1200,
		"302\r\n":              302,
		"530":                  530,
		"200OK":                0, // base64-like run, not a status line
		"12ab34==\r\n":         0,
		"CAPABILITY TUNNEL=..": 0,
		"":                     0,
		" 200 x":               0,
		"1234567890 x":         0, // too long to be a code
		"123456789 x":          123456789,
	} {
		if got := leadingStatusCode([]byte(in)); got != want {
			t.Errorf("leadingStatusCode(%q) = %d, want %d", in, got, want)
		}
	}
}
