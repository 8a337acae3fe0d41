package tunnel

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/jsklein/gogoc/internal/logx"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// legacyTracker is the rule of spec §6 alone, as before confirmations.
func legacyTracker() *lossTracker {
	return newLossTracker(KeepaliveConfig{Timeout: 5 * time.Second, Misses: 3, legacy: true}.withDefaults())
}

func TestLossTracker(t *testing.T) {
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	l := legacyTracker()

	// A timely reply: RTT measured, nothing lost.
	s0 := l.send(at(0), false)
	if _, ev := l.reply(s0, at(40)); ev {
		t.Fatal("event on a normal reply")
	}
	if l.st.Received != 1 || l.st.LastRTT != 40*time.Millisecond || l.st.SmoothedRTT != 40*time.Millisecond {
		t.Fatalf("after one reply: %+v", l.st)
	}

	// Three probes time out: the third miss means lost, once.
	for i, sent := range []int{30000, 60000, 90000} {
		l.send(at(sent), false)
		ev, ok := l.expire(at(sent + 5000))
		if i < 2 && ok {
			t.Fatalf("lost after %d misses", i+1)
		}
		if i == 2 && (!ok || ev.Kind != KeepaliveLost || ev.Misses != 3) {
			t.Fatalf("third miss: %+v %v, want KeepaliveLost after 3", ev, ok)
		}
	}
	if !l.st.Lost || l.st.TimedOut != 3 {
		t.Fatalf("stats %+v", l.st)
	}
	// A fourth miss does not repeat the event.
	l.send(at(120000), false)
	if _, ok := l.expire(at(125000)); ok || l.st.Misses != 4 {
		t.Fatalf("fourth miss: event %v, misses %d", ok, l.st.Misses)
	}

	// A late reply (after its probe timed out) changes nothing.
	late := l.send(at(150000), false)
	l.expire(at(155000))
	if _, ok := l.reply(late, at(155500)); ok || l.st.Late != 1 || !l.st.Lost {
		t.Fatalf("late reply: event %v, stats %+v", ok, l.st)
	}
	// A reply past the deadline before expire ran is late too.
	s := l.send(at(180000), false)
	if _, ok := l.reply(s, at(185001)); ok || l.st.Late != 2 {
		t.Fatalf("reply after deadline: event %v, stats %+v", ok, l.st)
	}
	l.expire(at(185001))

	// A timely reply restores and resets the count.
	s = l.send(at(210000), false)
	ev, ok := l.reply(s, at(210100))
	if !ok || ev.Kind != KeepaliveRestored || ev.RTT != 100*time.Millisecond {
		t.Fatalf("restore: %+v %v", ev, ok)
	}
	if l.st.Lost || l.st.Misses != 0 {
		t.Fatalf("after restore: %+v", l.st)
	}
	// Replies never sent by us, or repeated, are ignored.
	if _, ok := l.reply(s, at(210200)); ok || l.st.Received != 2 {
		t.Fatalf("duplicate reply counted: %+v", l.st)
	}
	if _, ok := l.reply(s+5000, at(210200)); ok || l.st.Received != 2 {
		t.Fatalf("stray reply counted: %+v", l.st)
	}
}

func TestLossTrackerReplySupersedesOlderProbes(t *testing.T) {
	// With an interval shorter than the timeout several probes are out at
	// once; an answer to a newer one proves the path, so the older ones
	// must not count as misses later.
	l := newLossTracker(KeepaliveConfig{}.withDefaults())
	l.send(t0, false)
	l.send(t0.Add(time.Second), false)
	s := l.send(t0.Add(2*time.Second), false)
	l.reply(s, t0.Add(2100*time.Millisecond))
	if _, ok := l.expire(t0.Add(time.Minute)); ok || l.st.Misses != 0 || l.st.TimedOut != 0 {
		t.Fatalf("older probes counted after a newer reply: %+v", l.st)
	}
}

// fakeClock moves only when told to. Each (re)arming of a timer is
// signalled on armed, so a test knows the prober is idle again.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	armed  chan struct{}
}

type fakeTimer struct {
	c      *fakeClock
	ch     chan time.Time
	at     time.Time
	active bool
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: t0, armed: make(chan struct{}, 100)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{c: c, ch: make(chan time.Time, 1)}
	c.mu.Lock()
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	t.Reset(d)
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }
func (t *fakeTimer) Stop() {
	t.c.mu.Lock()
	t.active = false
	t.c.mu.Unlock()
}
func (t *fakeTimer) Reset(d time.Duration) {
	t.c.mu.Lock()
	t.at, t.active = t.c.now.Add(d), true
	t.c.mu.Unlock()
	t.c.armed <- struct{}{}
}

// advance moves time and fires due timers; it reports whether one fired.
func (c *fakeClock) advance(d time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	fired := false
	for _, t := range c.timers {
		if t.active && !t.at.After(c.now) {
			t.active = false
			fired = true
			select {
			case t.ch <- c.now:
			default:
			}
		}
	}
	return fired
}

// fakePing records probes and plays back replies.
type fakePing struct {
	sent    chan uint16
	replies chan uint16
	once    sync.Once
	closed  chan struct{}
}

func newFakePing() *fakePing {
	return &fakePing{sent: make(chan uint16, 100), replies: make(chan uint16, 100), closed: make(chan struct{})}
}

func (p *fakePing) WriteEcho(seq uint16) error { p.sent <- seq; return nil }
func (p *fakePing) ReadEcho() (uint16, error) {
	select {
	case s := <-p.replies:
		return s, nil
	case <-p.closed:
		return 0, ErrClosed
	}
}
func (p *fakePing) Close() error { p.once.Do(func() { close(p.closed) }); return nil }

// proberHarness drives a prober step by step on the fake clock.
type proberHarness struct {
	t      *testing.T
	clock  *fakeClock
	ping   *fakePing
	p      *prober
	events chan Event
	due    []dueReply // replies run plays back later
}

type dueReply struct {
	at  time.Time
	seq uint16
}

func newProberHarness(t *testing.T, interval, timeout time.Duration, misses int) *proberHarness {
	return newProberHarnessK(t, KeepaliveConfig{Interval: interval, Timeout: timeout, Misses: misses})
}

// newProberHarnessK runs a prober with k (defaults filled) on a fake clock.
func newProberHarnessK(t *testing.T, k KeepaliveConfig) *proberHarness {
	h := &proberHarness{t: t, clock: newFakeClock(), ping: newFakePing(), events: make(chan Event, 10)}
	k.Clock = h.clock
	h.p = newProber(k.withDefaults(), h.ping, func(e Event) { h.events <- e }, logx.Discard())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.p.run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); h.ping.Close(); <-done })
	h.waitArmed()
	return h
}

func (h *proberHarness) waitArmed() {
	h.t.Helper()
	select {
	case <-h.clock.armed:
	case <-time.After(5 * time.Second):
		h.t.Fatal("prober did not re-arm its timer")
	}
}

// step advances the clock and waits until the prober handled it.
func (h *proberHarness) step(d time.Duration) {
	h.t.Helper()
	h.clock.advance(d)
	h.waitArmed()
}

func (h *proberHarness) sent() uint16 {
	h.t.Helper()
	select {
	case s := <-h.ping.sent:
		return s
	case <-time.After(5 * time.Second):
		h.t.Fatal("no probe sent")
		return 0
	}
}

func (h *proberHarness) noneSent() {
	h.t.Helper()
	select {
	case s := <-h.ping.sent:
		h.t.Fatalf("unexpected probe %d", s)
	default:
	}
}

func (h *proberHarness) reply(seq uint16) {
	h.t.Helper()
	h.ping.replies <- seq
	h.waitArmed()
}

// suspect hands the prober an ICMP error and waits until it handled it.
func (h *proberHarness) suspect(err error) {
	h.t.Helper()
	h.p.suspect(err)
	h.waitArmed()
}

func (h *proberHarness) event() (Event, bool) {
	select {
	case e := <-h.events:
		return e, true
	default:
		return Event{}, false
	}
}

func TestProberSchedule(t *testing.T) {
	h := newProberHarness(t, 30*time.Second, 5*time.Second, 3)

	// The first probe goes out one interval after start, not before (no
	// timer is due, so there is nothing to wait for).
	h.clock.advance(29 * time.Second)
	time.Sleep(10 * time.Millisecond)
	h.noneSent()
	h.step(time.Second)
	s := h.sent()
	h.clock.advance(120 * time.Millisecond)
	h.reply(s)
	if st := h.p.stats(); st.Received != 1 || st.LastRTT != 120*time.Millisecond {
		t.Fatalf("stats %+v", st)
	}

	// Three unanswered probes: lost at the third deadline, 3·I+T after
	// the last good probe.
	h.step(30*time.Second - 120*time.Millisecond) // t=60
	h.sent()
	for i := 0; i < 2; i++ {
		h.step(5 * time.Second) // deadline of the outstanding probe
		if _, ok := h.event(); ok {
			t.Fatalf("event after %d misses", i+1)
		}
		h.step(25 * time.Second) // next probe
		h.sent()
	}
	h.step(5 * time.Second)
	ev, ok := h.event()
	if !ok || ev.Kind != KeepaliveLost || ev.Misses != 3 {
		t.Fatalf("want KeepaliveLost after 3 misses, got %+v %v", ev, ok)
	}
	if got, want := ev.Time.Sub(t0), 30*time.Second+3*30*time.Second+5*time.Second; got != want {
		t.Fatalf("lost at %v, want %v", got, want)
	}

	// The next timely reply restores it.
	h.step(25 * time.Second)
	s = h.sent()
	h.clock.advance(time.Second)
	h.reply(s)
	ev, ok = h.event()
	if !ok || ev.Kind != KeepaliveRestored || ev.RTT != time.Second {
		t.Fatalf("want KeepaliveRestored with RTT 1s, got %+v %v", ev, ok)
	}
	if st := h.p.stats(); st.Lost || st.Misses != 0 || st.Sent != 5 || st.Received != 2 || st.TimedOut != 3 {
		t.Fatalf("stats %+v", st)
	}
}

// errPing fails its reads: a broken keepalive socket.
type errPing struct{ *fakePing }

func (p *errPing) ReadEcho() (uint16, error) { return 0, errors.New("boom") }

func TestProberReportsSocketFailure(t *testing.T) {
	ping := &errPing{newFakePing()}
	events := make(chan Event, 1)
	k := KeepaliveConfig{Interval: time.Second, Timeout: time.Second, Misses: 3, Clock: newFakeClock()}
	p := newProber(k, ping, func(e Event) { events <- e }, logx.Discard())
	done := make(chan struct{})
	go func() { p.run(context.Background()); close(done) }()
	select {
	case ev := <-events:
		if ev.Kind != IOError || ev.Err == nil {
			t.Fatalf("event %+v, want IOError", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no IOError event")
	}
	<-done
}

// trace is what a prober did on the fake clock: probes sent and events,
// each at its time since t0.
type trace struct {
	sent   []time.Duration
	seqs   []uint16
	events []Event
}

// run advances the fake clock in 10 ms steps up to t0+until, answering
// each probe after rtt unless answer says no, and records what happened.
// Call it again to continue from where it stopped (or after suspect).
func (h *proberHarness) run(until time.Duration, rtt time.Duration, answer func(at time.Duration) bool, tr *trace) {
	h.t.Helper()
	const step = 10 * time.Millisecond
	for first := true; h.clock.Now().Sub(t0) < until; first = false {
		if !first && h.clock.advance(step) {
			h.waitArmed()
		}
		now := h.clock.Now()
		for {
			select {
			case s := <-h.ping.sent:
				tr.sent = append(tr.sent, now.Sub(t0))
				tr.seqs = append(tr.seqs, s)
				if answer(now.Sub(t0)) {
					h.due = append(h.due, dueReply{now.Add(rtt), s})
				}
				continue
			default:
			}
			break
		}
		for len(h.due) > 0 && !h.due[0].at.After(now) {
			h.reply(h.due[0].seq)
			h.due = h.due[1:]
		}
		for {
			ev, ok := h.event()
			if !ok {
				break
			}
			tr.events = append(tr.events, ev)
		}
	}
}

func secs(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

// TestProberSilentBroker: the broker stops answering (host gone, packets
// dropped). The first regular probe it leaves unanswered for a second
// starts a confirmation (three probes 0.5 s apart); when none of them is
// answered by that probe's deadline, that is the loss: within interval +
// 5 s of the silence, where the rule of spec §6 alone takes 2–3 intervals.
func TestProberSilentBroker(t *testing.T) {
	h := newProberHarness(t, 30*time.Second, 5*time.Second, 3)
	var tr trace
	silentFrom := secs(45)
	h.run(80*time.Second, 50*time.Millisecond, func(at time.Duration) bool { return at < silentFrom }, &tr)
	t.Logf("probes at %v; events %v", tr.sent, tr.events)
	// Regular at 30 (answered), 60 (not); confirmations at 61, 61.5, 62.
	want := []time.Duration{secs(30), secs(60), secs(61), secs(61.5), secs(62)}
	if len(tr.sent) < len(want) || !slices.Equal(tr.sent[:len(want)], want) {
		t.Fatalf("probes at %v, want %v first", tr.sent, want)
	}
	if len(tr.events) != 1 || tr.events[0].Kind != KeepaliveLost || tr.events[0].Misses < 3 || tr.events[0].Err != nil {
		t.Fatalf("events %v, want one KeepaliveLost after ≥ 3 misses without a cause", tr.events)
	}
	lost := tr.events[0].Time.Sub(t0)
	if lost != secs(65) {
		t.Errorf("lost at %v, want 65s (the deadline of the probe at 60s)", lost)
	}
	if d := lost - silentFrom; d > 30*time.Second+5*time.Second {
		t.Errorf("loss %v after the silence, want ≤ interval + 5 s", d)
	}
	if st := h.p.stats(); !st.Lost || st.Confirmations != 1 {
		t.Errorf("stats %+v: want lost after one confirmation", st)
	}
}

// TestProberConfirmsICMPError: an ICMP error (here ECONNREFUSED, a port
// unreachable from the broker's host) while up starts a confirmation at
// once; three unanswered confirmation probes 0.5 s apart are a loss 2 s
// after the error, with the error as its cause.
func TestProberConfirmsICMPError(t *testing.T) {
	h := newProberHarness(t, 30*time.Second, 5*time.Second, 3)
	var tr trace
	dead := secs(40)
	answer := func(at time.Duration) bool { return at < dead }
	h.run(40*time.Second, 50*time.Millisecond, answer, &tr)
	h.suspect(unix.ECONNREFUSED)
	h.run(50*time.Second, 50*time.Millisecond, answer, &tr)
	t.Logf("probes at %v; events %v", tr.sent, tr.events)
	want := []time.Duration{secs(30), secs(40), secs(40.5), secs(41)}
	if !slices.Equal(tr.sent, want) {
		t.Fatalf("probes at %v, want %v", tr.sent, want)
	}
	if len(tr.events) != 1 || tr.events[0].Kind != KeepaliveLost || !errors.Is(tr.events[0].Err, unix.ECONNREFUSED) {
		t.Fatalf("events %v, want KeepaliveLost caused by ECONNREFUSED", tr.events)
	}
	if lost := tr.events[0].Time.Sub(t0); lost != secs(42) {
		t.Errorf("lost at %v, want 42s", lost)
	}
	if s := tr.events[0].String(); !strings.Contains(s, "connection refused") {
		t.Errorf("event text %q does not say why", s)
	}
	// Back to the regular schedule; a reply restores.
	dead = time.Hour
	h.run(61*time.Second, 50*time.Millisecond, answer, &tr)
	if n := len(tr.events); n != 2 || tr.events[1].Kind != KeepaliveRestored {
		t.Fatalf("events %v, want KeepaliveRestored after the regular probe at 60s", tr.events)
	}
}

// TestProberForgedICMPError: ICMP errors can be forged by anyone on the
// path. On a healthy tunnel one costs a confirmation probe that the broker
// answers, and no event; a flood of them cannot make the prober send more
// than one probe per confirmation interval, nor end the tunnel.
func TestProberForgedICMPError(t *testing.T) {
	h := newProberHarness(t, 30*time.Second, 5*time.Second, 3)
	var tr trace
	always := func(time.Duration) bool { return true }
	h.run(35*time.Second, 40*time.Millisecond, always, &tr)
	h.suspect(unix.ECONNREFUSED)
	h.run(36*time.Second, 40*time.Millisecond, always, &tr)
	if want := []time.Duration{secs(30), secs(35)}; !slices.Equal(tr.sent, want) || len(tr.events) != 0 {
		t.Fatalf("one forged error: probes at %v (want %v), events %v (want none)", tr.sent, want, tr.events)
	}
	// A flood: one forged error every 10 ms for 10 s.
	before := len(tr.sent)
	for range 1000 {
		h.suspect(unix.EHOSTUNREACH)
		h.run(h.clock.Now().Sub(t0)+10*time.Millisecond, 40*time.Millisecond, always, &tr)
	}
	probes := len(tr.sent) - before
	t.Logf("flood of 1000 forged errors in 10 s: %d probes, events %v, stats %+v", probes, tr.events, h.p.stats())
	if probes > 21 {
		t.Errorf("%d probes in 10 s under the flood, want ≤ 21 (one per 500 ms)", probes)
	}
	if len(tr.events) != 0 || h.p.stats().Lost || h.p.stats().Misses != 0 {
		t.Errorf("events %v, stats %+v: the answered confirmations must leave the tunnel alone", tr.events, h.p.stats())
	}
}

// TestProberSlowPath: on a path with a 2 s round trip (or 4.5 s), neither
// slow replies nor an ICMP error may turn into a loss: the confirmation
// deadline grows with the smoothed RTT (up to the 5 s timeout), is the
// timeout while no reply has measured the path, and an overdue regular
// probe keeps its whole timeout.
func TestProberSlowPath(t *testing.T) {
	h := newProberHarness(t, 30*time.Second, 5*time.Second, 3)
	var tr trace
	always := func(time.Duration) bool { return true }
	h.run(100*time.Second, 2*time.Second, always, &tr)
	h.suspect(unix.ECONNREFUSED)
	h.run(130*time.Second, 2*time.Second, always, &tr)
	t.Logf("probes at %v; events %v; stats %+v", tr.sent, tr.events, h.p.stats())
	if len(tr.events) != 0 || h.p.stats().TimedOut != 0 {
		t.Errorf("events %v, stats %+v: want no loss and no miss on a slow but working path", tr.events, h.p.stats())
	}
}

// TestProberLegacyIgnoresICMP: the baseline rule (spec §6 alone, kept for
// the benchmark) does not react to ICMP errors.
func TestProberLegacyIgnoresICMP(t *testing.T) {
	h := newProberHarnessK(t, KeepaliveConfig{Interval: 30 * time.Second, legacy: true})
	var tr trace
	never := func(at time.Duration) bool { return at < 31*time.Second }
	h.run(40*time.Second, 50*time.Millisecond, never, &tr)
	h.suspect(unix.ECONNREFUSED)
	h.run(160*time.Second, 50*time.Millisecond, never, &tr)
	t.Logf("probes at %v; events %v", tr.sent, tr.events)
	if want := []time.Duration{secs(30), secs(60), secs(90), secs(120), secs(150)}; !slices.Equal(tr.sent, want) {
		t.Fatalf("probes at %v, want only the regular ones %v", tr.sent, want)
	}
	if len(tr.events) != 1 || tr.events[0].Time.Sub(t0) != secs(125) {
		t.Fatalf("events %v, want one loss at 125s (3 intervals + timeout after the last reply)", tr.events)
	}
}

func TestProberVerySlowPath(t *testing.T) {
	h := newProberHarness(t, 30*time.Second, 5*time.Second, 3)
	var tr trace
	always := func(time.Duration) bool { return true }
	h.run(100*time.Second, 4500*time.Millisecond, always, &tr)
	h.suspect(unix.ECONNREFUSED)
	h.run(130*time.Second, 4500*time.Millisecond, always, &tr)
	t.Logf("probes at %v; events %v; stats %+v", tr.sent, tr.events, h.p.stats())
	if len(tr.events) != 0 || h.p.stats().TimedOut != 0 {
		t.Errorf("events %v, stats %+v: want no loss and no miss on a slow but working path", tr.events, h.p.stats())
	}
}

// TestProberBeforeFirstReply: before any reply has measured the path, an
// ICMP error is confirmed with the whole 5 s timeout per probe (the path
// may be slow), and a broker silent from the start is lost at the deadline
// of the first probe, interval + 5 s after the start.
func TestProberBeforeFirstReply(t *testing.T) {
	never := func(time.Duration) bool { return false }
	t.Run("icmp", func(t *testing.T) {
		h := newProberHarness(t, 30*time.Second, 5*time.Second, 3)
		var tr trace
		h.run(10*time.Second, 0, never, &tr)
		h.suspect(unix.ECONNREFUSED)
		h.run(20*time.Second, 0, never, &tr)
		if want := []time.Duration{secs(10), secs(10.5), secs(11)}; !slices.Equal(tr.sent, want) {
			t.Fatalf("probes at %v, want %v", tr.sent, want)
		}
		if len(tr.events) != 1 || tr.events[0].Time.Sub(t0) != secs(16) {
			t.Fatalf("events %v, want a loss at 16s", tr.events)
		}
	})
	t.Run("silent", func(t *testing.T) {
		h := newProberHarness(t, 30*time.Second, 5*time.Second, 3)
		var tr trace
		h.run(40*time.Second, 0, never, &tr)
		if want := []time.Duration{secs(30), secs(31), secs(31.5), secs(32)}; !slices.Equal(tr.sent, want) {
			t.Fatalf("probes at %v, want %v", tr.sent, want)
		}
		if len(tr.events) != 1 || tr.events[0].Time.Sub(t0) != secs(35) {
			t.Fatalf("events %v, want a loss at 35s", tr.events)
		}
	})
}
