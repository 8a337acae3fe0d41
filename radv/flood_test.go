package radv

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// raCounter counts the RAs a host receives, unicast and multicast apart,
// with the time of the last one.
type raCounter struct {
	fd int

	mu         sync.Mutex
	uni, multi int
	last       time.Time
	lastMulti  time.Time
	done       chan struct{}
}

// countRAs reads RAs on l's host side until the test ends.
func countRAs(tb testing.TB, l *drLink) *raCounter {
	tb.Helper()
	opts := func(fd int) error {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1); err != nil {
			return err
		}
		// Room for every reply of the unlimited baseline: the count is
		// the figure.
		return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 64<<20)
	}
	fd, _ := rawICMPv6(tb, l.hB, l.ifB, l.llB, ipv6.ICMPTypeRouterAdvertisement, 255, 0, opts)
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 100000})
	c := &raCounter{fd: fd, done: make(chan struct{})}
	stop := make(chan struct{})
	go func() {
		defer close(c.done)
		b, oob := make([]byte, 1500), make([]byte, 128)
		for {
			select {
			case <-stop:
				return
			default:
			}
			n, oobn, _, _, err := unix.Recvmsg(fd, b, oob, 0)
			if err != nil || n == 0 || b[0] != byte(ipv6.ICMPTypeRouterAdvertisement) {
				continue
			}
			multi := false
			if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
				for _, m := range msgs {
					if m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_PKTINFO && len(m.Data) >= 16 {
						multi = m.Data[0] == 0xff
					}
				}
			}
			now := time.Now()
			c.mu.Lock()
			if multi {
				c.multi++
				c.lastMulti = now
			} else {
				c.uni++
			}
			c.last = now
			c.mu.Unlock()
		}
	}()
	tb.Cleanup(func() { close(stop); <-c.done })
	return c
}

// counts returns the unicast and multicast counts and zeroes them.
func (c *raCounter) counts() (uni, multi int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	uni, multi = c.uni, c.multi
	c.uni, c.multi = 0, 0
	return uni, multi
}

// multicastAfter waits up to d for a multicast RA later than t.
func (c *raCounter) multicastAfter(t time.Time, d time.Duration) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		c.mu.Lock()
		ok := c.lastMulti.After(t)
		c.mu.Unlock()
		if ok {
			return true
		}
	}
	return false
}

// floodRS sends n Router Solicitations to ff02::2 from l's host side as
// fast as the socket takes them and returns how long that took. With
// spoofed > 0 they come from that many made-up link-local addresses and
// carry no link-layer address option (answering one directly makes the
// router resolve the address: an incomplete neighbour entry each);
// otherwise from the host's own address with its link-layer address.
func floodRS(tb testing.TB, l *drLink, n, spoofed int) time.Duration {
	tb.Helper()
	freebind := func(fd int) error { return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_FREEBIND, 1) }
	fd, index := rawICMPv6(tb, l.hB, l.ifB, l.llB, ipv6.ICMPTypeRouterSolicitation, 255, 1, freebind)
	ifi, err := interfaceIn(l.hB, l.ifB)
	if err != nil {
		tb.Fatal(err)
	}
	withLLA := append([]byte{133, 0, 0, 0, 0, 0, 0, 0, optSourceLLA, ethLLAOptLen}, ifi.HardwareAddr...)
	bare := []byte{133, 0, 0, 0, 0, 0, 0, 0}
	srcs := make([]netip.Addr, spoofed)
	for i := range srcs {
		var a [16]byte
		a[0], a[1] = 0xfe, 0x80
		binary.BigEndian.PutUint64(a[8:], rand.Uint64())
		srcs[i] = netip.AddrFrom16(a)
	}
	dst := &unix.SockaddrInet6{Addr: allRouters.As16(), ZoneId: uint32(index)}
	start := time.Now()
	for i := range n {
		msg, oob := withLLA, []byte(nil)
		if spoofed > 0 {
			msg, oob = bare, pktinfo(srcs[i%spoofed], index)
		}
		for {
			err := unix.Sendmsg(fd, msg, oob, dst, 0)
			if err == nil {
				break
			}
			if err != unix.EINTR && err != unix.ENOBUFS && err != unix.EAGAIN {
				tb.Fatalf("solicitation %d: %v", i, err)
			}
		}
	}
	return time.Since(start)
}

// pktinfo is an IPV6_PKTINFO control message: send from src on index.
func pktinfo(src netip.Addr, index int) []byte {
	return (&ipv6.ControlMessage{Src: src.AsSlice(), IfIndex: index}).Marshal()
}

// neighbours counts the router's neighbour entries on its LAN link that
// are not usable (incomplete or failed): each is an address the router
// tried to resolve for a reply.
func neighbours(tb testing.TB, l *drLink) int {
	tb.Helper()
	out, err := exec.Command("ip", "-n", l.nsA, "-6", "neigh", "show", "dev", l.ifA).CombinedOutput()
	if err != nil {
		tb.Fatalf("ip neigh: %v\n%s", err, out)
	}
	n := 0
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "INCOMPLETE") || strings.Contains(line, "FAILED") {
			n++
		}
	}
	return n
}

// TestRSFlood sends 10,000 Router Solicitations over a real link to a
// Server in its own process. The replies sent straight to the solicitor
// stay within the token bucket (RFC 4861 §6.2.6 lets a router answer
// directly; it does not have to answer each one), the rest is answered by
// one rate-limited multicast RA, which does come after the flood. Then a
// flood from 500 spoofed addresses: the router tries to resolve no more
// of them than the bucket allows.
func TestRSFlood(t *testing.T) {
	l := newDRLink(t, "grf")
	rx := countRAs(t, l)
	startRAHelper(t, l)
	if !rx.multicastAfter(time.Time{}, 5*time.Second) {
		t.Fatal("no unsolicited RA at start")
	}
	rx.counts()
	floodStart := time.Now()
	took := floodRS(t, l, 10000, 0)
	floodEnd := time.Now()
	// The multicast reply comes within MinDelayBetweenRAs of the first RA
	// plus MAX_RA_DELAY_TIME; generous here.
	answered := rx.multicastAfter(floodEnd, 10*time.Second)
	uni, multi := rx.counts()
	elapsed := time.Since(floodStart)
	maxUni := 10 + int(elapsed/(100*time.Millisecond)) + 1
	maxMulti := 2 + int(elapsed/MinDelayBetweenRAs)
	t.Logf("10000 RSs in %v: %d unicast and %d multicast RAs in %v (bounds %d, %d)", took, uni, multi, elapsed.Round(time.Millisecond), maxUni, maxMulti)
	if uni > maxUni || multi > maxMulti {
		t.Fatalf("%d unicast, %d multicast RAs for a flood of 10000 RSs over %v; want at most %d and %d", uni, multi, elapsed, maxUni, maxMulti)
	}
	if !answered {
		t.Fatal("no multicast RA after the flood: the solicitations beyond the bucket went unanswered")
	}

	before := neighbours(t, l)
	floodStart = time.Now()
	took = floodRS(t, l, 2000, 500)
	time.Sleep(500 * time.Millisecond) // the Server reads what is queued
	after := neighbours(t, l)
	elapsed = time.Since(floodStart)
	maxNeigh := 10 + int(elapsed/(100*time.Millisecond)) + 1
	t.Logf("2000 RSs from 500 spoofed addresses in %v: %d → %d unresolved neighbour entries (bound %d)", took, before, after, maxNeigh)
	if after-before > maxNeigh {
		t.Fatalf("the router tried to resolve %d spoofed solicitors, want at most %d", after-before, maxNeigh)
	}
}

// BenchmarkRSFlood floods a Server in its own process with 10,000
// solicitations from the host's own address and counts the RAs the host
// gets back within 4 s of the flood's end (time for the deferred multicast
// reply), then floods it from 500 spoofed addresses and counts the
// neighbour entries the router is left resolving. It does so for the
// Server as it was before the rate limit (every solicitation answered at
// once: the baseline) and as it is, in the same run, and prints both with
// their ratio. One iteration is the figure (-benchtime 1x).
func BenchmarkRSFlood(b *testing.B) {
	type result struct {
		replies, neigh int
		window, cpu    time.Duration
		stats          string
	}
	run := func(b *testing.B, env ...string) result {
		l := newDRLink(b, "grb")
		rx := countRAs(b, l)
		h := startRAHelper(b, l, env...)
		if !rx.multicastAfter(time.Time{}, 5*time.Second) {
			b.Fatal("no unsolicited RA at start")
		}
		rx.counts()
		start := time.Now()
		floodRS(b, l, 10000, 0)
		time.Sleep(4 * time.Second)
		uni, multi := rx.counts()
		r := result{replies: uni + multi, window: time.Since(start)}
		before := neighbours(b, l)
		floodRS(b, l, 2000, 500)
		time.Sleep(500 * time.Millisecond)
		r.neigh = neighbours(b, l) - before
		r.stats, r.cpu = h.stop()
		return r
	}
	var base, lim result
	report := func(b *testing.B, r result) {
		b.ReportMetric(float64(r.replies)/r.window.Seconds(), "replies/s")
		b.ReportMetric(float64(r.neigh), "neighbours")
		b.ReportMetric(float64(r.cpu.Milliseconds()), "server-cpu-ms")
		b.Logf("%d replies in %v (%s); %d unresolved neighbour entries after 2000 spoofed RSs; server %v CPU; %s",
			r.replies, r.window.Round(time.Millisecond), fmtRate(r.replies, r.window), r.neigh, r.cpu, r.stats)
	}
	b.Run("baseline", func(b *testing.B) {
		for b.Loop() {
			base = run(b, "GOGOC_RADV_BENCH_BASELINE=1")
		}
		report(b, base)
	})
	b.Run("limited", func(b *testing.B) {
		for b.Loop() {
			lim = run(b)
		}
		report(b, lim)
	})
	if base.replies > 0 && lim.replies > 0 {
		b.Logf("replies/s: baseline %s, limited %s (ratio %.4f); unresolved neighbours %d → %d; server CPU %v → %v (ratio %.2f)",
			fmtRate(base.replies, base.window), fmtRate(lim.replies, lim.window),
			(float64(lim.replies)/lim.window.Seconds())/(float64(base.replies)/base.window.Seconds()),
			base.neigh, lim.neigh, base.cpu, lim.cpu, float64(lim.cpu)/float64(max(base.cpu, 1)))
	}
}

// fmtRate formats n events over d per second.
func fmtRate(n int, d time.Duration) string {
	return fmt.Sprintf("%.0f/s", float64(n)/d.Seconds())
}
