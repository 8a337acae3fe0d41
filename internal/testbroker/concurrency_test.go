package testbroker

import (
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// goT lets the raw-client helpers run in goroutines: a fatal error is
// reported and ends only that goroutine.
type goT struct{ testing.TB }

func (g goT) Fatal(args ...any) { g.TB.Error(args...); runtime.Goexit() }
func (g goT) Fatalf(format string, args ...any) {
	g.TB.Errorf(format, args...)
	runtime.Goexit()
}

func TestConcurrentSessions(t *testing.T) {
	const n = 200
	dp := newRecDP()
	cfg := Config{Users: map[string]string{}, DataPlane: dp}
	for i := range n {
		cfg.Users[fmt.Sprintf("user%d", i)] = fmt.Sprintf("pw%d,\"%d", i, i)
	}
	s, udp, tcp := startServer(t, cfg)

	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Add(1)
	go func() { // observers racing the sessions
		defer readers.Done()
		for {
			select {
			case <-stop:
				return
			default:
				_ = s.Sessions()
				_ = s.Stats()
			}
		}
	}()

	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := goT{t}
			user := fmt.Sprintf("user%d", i)
			pass := cfg.Users[user]
			switch i % 4 {
			case 0: // anonymous UDP behind "NAT"
				c := dialUDP(g, udp)
				anonUDP(g, c, createMsg("v6anyv4", "192.0.2.10", 30, -1))
				c.x(msgAccept)
			case 1: // PLAIN UDP, router
				c := dialUDP(g, udp)
				c.x(msgVersion)
				c.x(msgPlain)
				if got := c.x(plainCreds(user, pass)); got != okLine {
					g.Fatalf("%s: %q", user, got)
				}
				mustFramed(g, c.x(createMsg("v6anyv4", "127.0.0.1", 30, 56)))
				c.x(msgAccept)
			case 2: // DIGEST-MD5 TCP
				c := dialTCP(g, tcp)
				c.x(msgVersion)
				line, proof := digestResponse(g, c.x(msgDigest), user, pass, "99", "broker")
				if got := b64decode(g, c.x(b64(line)+"\r\n")); got != "rspauth="+proof {
					g.Fatalf("%s: proof %q", user, got)
				}
				if got := c.line(); got != okLine {
					g.Fatalf("%s: %q", user, got)
				}
				c.write(createMsg("v6v4", "127.0.0.1", 30, 48))
				c.framed()
				c.write(msgAccept)
			case 3: // anonymous TCP
				c := dialTCP(g, tcp)
				c.x(msgVersion)
				c.x(msgAnonymous)
				c.write(createMsg("v6v4", "127.0.0.1", -1, -1))
				if body := c.framed(); !strings.HasPrefix(body, okLine) {
					g.Fatalf("offer %q", body)
				}
				c.write(msgAccept)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		close(stop)
		return
	}
	waitFor(t, "all sessions established", func() bool { return len(s.Sessions()) == n })
	close(stop)
	readers.Wait()

	seen6 := map[netip.Addr]bool{}
	var prefixes []netip.Prefix
	for _, si := range s.Sessions() {
		if seen6[si.ClientV6] {
			t.Errorf("client address %s given twice", si.ClientV6)
		}
		seen6[si.ClientV6] = true
		if si.Prefix.IsValid() {
			for _, p := range prefixes {
				if p.Overlaps(si.Prefix) {
					t.Errorf("prefixes %s and %s overlap", p, si.Prefix)
				}
			}
			prefixes = append(prefixes, si.Prefix)
		}
		if si.Transport == TransportUDP && (si.Type == "v6udpv4") != si.NAT {
			t.Errorf("session %d: type %s with NAT=%v", si.ID, si.Type, si.NAT)
		}
	}
	if len(prefixes) != n/2 {
		t.Errorf("%d prefixes, want %d", len(prefixes), n/2)
	}
	if st := s.Stats(); st.Established != n || st.AuthFailures != 0 {
		t.Errorf("stats %+v", st)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if e, c := dp.counts(); e != n || c != n {
		t.Errorf("data plane saw %d established, %d closed", e, c)
	}
}
