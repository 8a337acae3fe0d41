package radv

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mdlayher/ndp"
)

// serve runs s on a fake conn until the test ends; stop cancels it and
// returns Serve's result.
func serve(t *testing.T, s *Server) (f *fakeConn, stop func() error) {
	t.Helper()
	f = newFakeConn()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, f) }()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("Serve did not return within 5 s of cancel")
			return nil
		}
	}
	t.Cleanup(func() { _ = stop() })
	return f, stop
}

func next(t *testing.T, f *fakeConn, within time.Duration) sent {
	t.Helper()
	select {
	case s := <-f.out:
		return s
	case <-time.After(within):
		t.Fatalf("no RA within %v", within)
		return sent{}
	}
}

func none(t *testing.T, f *fakeConn, within time.Duration) {
	t.Helper()
	select {
	case s := <-f.out:
		t.Fatalf("unexpected RA to %v: %+v", s.dst, s.ra)
	case <-time.After(within):
	}
}

// TestServeUnsolicitedSchedule: an RA at once, the initial ones quick,
// then the regular interval. The interval is long beside the initial one
// (2 s against 30 ms) so that a busy machine's late wake-ups cannot be
// mistaken for either.
func TestServeUnsolicitedSchedule(t *testing.T) {
	const interval = 2 * time.Second
	s, err := New(Config{MinInterval: interval, MaxInterval: interval,
		InitialInterval: 30 * time.Millisecond, MinDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(Params{Up: true, Prefixes: []Prefix{{Prefix: lan1}}}); err != nil {
		t.Fatal(err)
	}
	f, _ := serve(t, s)
	start := time.Now()
	var at []time.Duration
	for range 5 {
		r := next(t, f, 5*interval)
		if r.dst != allNodes {
			t.Fatalf("unsolicited RA to %v", r.dst)
		}
		at = append(at, r.at.Sub(start))
	}
	// The first goes at once (Update and start may each give one), then
	// three quick ones, then the regular interval.
	gaps := make([]time.Duration, 0, 4)
	for i := 1; i < len(at); i++ {
		gaps = append(gaps, at[i]-at[i-1])
	}
	t.Logf("RA times %v, gaps %v", at, gaps)
	if at[0] > interval/2 {
		t.Errorf("first RA after %v, want at once", at[0])
	}
	if last := gaps[len(gaps)-1]; last < interval-50*time.Millisecond {
		t.Errorf("after the initial ones the gap is %v, want the %v interval", last, interval)
	}
	quick := 0
	for _, g := range gaps {
		if g < interval/2 {
			quick++
		}
	}
	if quick < 2 || quick > 3 {
		t.Errorf("%d quick gaps in %v, want the initial RAs quick", quick, gaps)
	}
	if w := s.Stats().Wakeups; w < 5 {
		t.Errorf("wake-ups %d, want at least one per RA", w)
	}
}

func TestServeSolicitations(t *testing.T) {
	s, err := New(Config{MinInterval: time.Hour, MaxInterval: time.Hour, InitialInterval: time.Hour,
		MinDelay: 300 * time.Millisecond, Rand: func(time.Duration) time.Duration { return 0 }})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(Params{Up: true, Prefixes: []Prefix{{Prefix: lan1}}}); err != nil {
		t.Fatal(err)
	}
	f, _ := serve(t, s)
	if r := next(t, f, time.Second); r.dst != allNodes {
		t.Fatalf("first RA to %v", r.dst)
	}
	none(t, f, 50*time.Millisecond)

	// A solicitor with an address gets its own RA at once.
	f.solicit("fe80::2%lan", 255)
	r := next(t, f, 5*time.Second)
	if r.dst != netip.MustParseAddr("fe80::2%lan") || r.ra.RouterLifetime == 0 {
		t.Fatalf("reply to %v: %+v", r.dst, r.ra)
	}

	// Forwarded (hop limit not 255), unspecified source with a link-layer
	// address, no hop limit, no solicitation: all ignored.
	f.solicit("fe80::3", 64)
	f.solicit("::", 255, &ndp.LinkLayerAddress{Direction: ndp.Source, Addr: mac})
	f.in <- received{m: &RouterSolicitation{}, hop: -1, src: netip.MustParseAddr("fe80::4")}
	f.in <- received{m: nil, hop: 255, src: netip.MustParseAddr("fe80::5")}
	none(t, f, 100*time.Millisecond)
	st := s.Stats()
	for deadline := time.Now().Add(5 * time.Second); st.Dropped < 4 && time.Now().Before(deadline); st = s.Stats() {
		time.Sleep(5 * time.Millisecond) // the server may still be reading them
	}
	if st.Dropped != 4 || st.Unicast != 1 {
		t.Fatalf("stats %+v, want 4 dropped, 1 unicast", st)
	}

	// From ::, the reply is multicast, and two in a row give one RA
	// within the rate limit.
	time.Sleep(300 * time.Millisecond) // past MinDelay since the first RA
	f.solicit("::", 255)
	r = next(t, f, 5*time.Second)
	if r.dst != allNodes {
		t.Fatalf("reply to :: went to %v", r.dst)
	}
	f.solicit("::", 255)
	f.solicit("::", 255)
	// One RA for both, not before MinDelay after the last one (the
	// stamps are taken as the RAs are written).
	r2 := next(t, f, 5*time.Second)
	if r2.dst != allNodes {
		t.Fatalf("rate-limited reply to %v", r2.dst)
	}
	if gap := r2.at.Sub(r.at); gap < 300*time.Millisecond-time.Millisecond {
		t.Fatalf("rate-limited reply %v after the previous RA, want ≥ the 300 ms MinDelay", gap)
	}
	none(t, f, 400*time.Millisecond)
}

// TestServeSolicitedBucket: solicitors with addresses get direct replies
// while the bucket has tokens; the rest get one multicast RA, after a
// random delay of at most MaxRADelay, and a token comes back after
// SolicitedInterval. Both are long beside the time 50 solicitations take
// to read, even on a busy machine.
func TestServeSolicitedBucket(t *testing.T) {
	var delays []time.Duration
	var mu sync.Mutex
	s, err := New(Config{MinInterval: time.Hour, MaxInterval: time.Hour, InitialInterval: time.Hour,
		MinDelay: time.Millisecond, MaxRADelay: time.Second, SolicitedBurst: 3, SolicitedInterval: 2 * time.Second,
		Rand: func(span time.Duration) time.Duration {
			mu.Lock()
			defer mu.Unlock()
			delays = append(delays, span)
			return span
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(Params{Up: true, Prefixes: []Prefix{{Prefix: lan1}}}); err != nil {
		t.Fatal(err)
	}
	f, _ := serve(t, s)
	if r := next(t, f, time.Second); r.dst != allNodes {
		t.Fatalf("first RA to %v", r.dst)
	}
	start := time.Now()
	for i := range 50 {
		f.solicit(fmt.Sprintf("fe80::%x", i+1), 255)
	}
	var uni []netip.Addr
	var multi []time.Duration
	for deadline := time.After(10 * time.Second); len(uni)+len(multi) < 4; {
		select {
		case r := <-f.out:
			if r.dst == allNodes {
				multi = append(multi, r.at.Sub(start))
			} else {
				uni = append(uni, r.dst)
			}
		case <-deadline:
			t.Fatalf("after 50 solicitations: direct replies to %v, multicast at %v", uni, multi)
		}
	}
	if len(uni) != 3 || len(multi) != 1 || multi[0] < time.Second {
		t.Fatalf("direct replies to %v, multicast at %v; want 3 and one after the 1 s delay", uni, multi)
	}
	none(t, f, 100*time.Millisecond)
	st := s.Stats()
	if st.Solicits != 50 || st.Unicast != 3 || st.Deferred != 47 {
		t.Fatalf("stats %+v, want 50 solicitations, 3 direct replies, 47 deferred", st)
	}
	// A token is back after the interval.
	time.Sleep(2 * time.Second)
	f.solicit("fe80::99", 255)
	if r := next(t, f, 5*time.Second); r.dst != netip.MustParseAddr("fe80::99") {
		t.Fatalf("after the interval, the reply went to %v", r.dst)
	}
}

func TestBucket(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := bucket{burst: 2, every: time.Second}
	got := []bool{b.take(t0), b.take(t0), b.take(t0), b.take(t0.Add(999 * time.Millisecond)),
		b.take(t0.Add(time.Second)), b.take(t0.Add(time.Second)), b.take(t0.Add(time.Hour)), b.take(t0.Add(time.Hour)), b.take(t0.Add(time.Hour))}
	want := []bool{true, true, false, false, true, false, true, true, false}
	if !slices.Equal(got, want) {
		t.Fatalf("takes %v, want %v", got, want)
	}
	// The baseline's "no limit": a tiny interval does not overflow.
	u := bucket{burst: 1 << 30, every: time.Nanosecond}
	for i := range 1000 {
		if !u.take(t0.Add(time.Duration(i) * 100 * 365 * 24 * time.Hour)) {
			t.Fatalf("unlimited bucket refused take %d", i)
		}
	}
}

func TestServeDownThenFinal(t *testing.T) {
	s, err := New(Config{MinInterval: time.Hour, MaxInterval: time.Hour, MinDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	up := Params{Up: true, Prefixes: []Prefix{{Prefix: lan1}}, DNS: []netip.Addr{dns1}}
	if err := s.Update(up); err != nil {
		t.Fatal(err)
	}
	f, stop := serve(t, s)
	if r := next(t, f, time.Second); r.ra.RouterLifetime != MaxRouterLifetime { // 3 × 1 h, clamped
		t.Fatalf("up: router lifetime %v", r.ra.RouterLifetime)
	}
	down := up
	down.Up = false
	if err := s.Update(down); err != nil {
		t.Fatal(err)
	}
	r := next(t, f, time.Second)
	pi := r.ra.Options[0].(*ndp.PrefixInformation)
	if r.ra.RouterLifetime != 0 || pi.PreferredLifetime == 0 {
		t.Fatalf("down: router lifetime %v, preferred %v; want 0 and the prefix kept", r.ra.RouterLifetime, pi.PreferredLifetime)
	}
	// Drain anything the restarted initial sequence produced.
	for len(f.out) > 0 {
		<-f.out
	}
	if err := stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	var final sent
	for len(f.out) > 0 {
		final = <-f.out
	}
	if final.ra == nil || final.dst != allNodes {
		t.Fatal("no final RA to all nodes")
	}
	pi = final.ra.Options[0].(*ndp.PrefixInformation)
	rd := final.ra.Options[1].(*ndp.RecursiveDNSServer)
	if final.ra.RouterLifetime != 0 || pi.PreferredLifetime != 0 || pi.ValidLifetime != 2*time.Hour || rd.Lifetime != 0 {
		t.Fatalf("final RA %+v %+v %+v", final.ra, pi, rd)
	}
}

func TestServeReadError(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	f := newFakeConn()
	f.readErr = errors.New("socket gone")
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background(), f) }()
	select {
	case err := <-done:
		if err == nil || !errors.Is(err, f.readErr) {
			t.Fatalf("Serve: %v, want the read error", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Serve kept running after a read error")
	}
}

// TestServeLinkGone: a write that says the link is gone ends Serve with
// ErrLinkGone (no final RA on a dead socket); a passing write error does
// not. A second Serve on a new socket starts with an RA at once and keeps
// what the Server knew: the prefix replaced before is still deprecated.
func TestServeLinkGone(t *testing.T) {
	s, err := New(Config{MinInterval: 50 * time.Millisecond, MaxInterval: 50 * time.Millisecond, MinDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(Params{Up: true, Prefixes: []Prefix{{Prefix: lan1}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(Params{Up: true, Prefixes: []Prefix{{Prefix: lan2}}}); err != nil {
		t.Fatal(err)
	}
	f := newFakeConn()
	f.writeErr = fmt.Errorf("radv: send to ff02::1: %w", syscall.ENOBUFS)
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background(), f) }()
	// Two failed writes (one every 50 ms) and Serve still runs.
	for deadline := time.Now().Add(10 * time.Second); s.Stats().WriteErrors < 2; {
		select {
		case err := <-done:
			t.Fatalf("Serve ended on a passing write error: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("write errors %d, want Serve to go on writing", s.Stats().WriteErrors)
		}
	}
	f.setWriteErr(fmt.Errorf("radv: send to ff02::1: %w", syscall.ENODEV))
	select {
	case err := <-done:
		if !errors.Is(err, ErrLinkGone) || !errors.Is(err, syscall.ENODEV) {
			t.Fatalf("Serve: %v, want ErrLinkGone with the errno", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Serve kept writing into a gone link")
	}

	g, stop := serve(t, s)
	r := next(t, g, 5*time.Second)
	if r.dst != allNodes || len(r.ra.Options) < 2 {
		t.Fatalf("first RA on the new socket: %+v to %v", r.ra, r.dst)
	}
	old := r.ra.Options[1].(*ndp.PrefixInformation)
	if old.Prefix != lan1.Addr() || old.PreferredLifetime != 0 {
		t.Fatalf("replaced prefix on the new socket: %+v, want %v deprecated", old, lan1)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
