package tunnel

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jsklein/gogoc/internal/logx"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func TestLossTracker(t *testing.T) {
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	l := newLossTracker(5*time.Second, 3)

	// A timely reply: RTT measured, nothing lost.
	s0 := l.send(at(0))
	if _, ev := l.reply(s0, at(40)); ev {
		t.Fatal("event on a normal reply")
	}
	if l.st.Received != 1 || l.st.LastRTT != 40*time.Millisecond || l.st.SmoothedRTT != 40*time.Millisecond {
		t.Fatalf("after one reply: %+v", l.st)
	}

	// Three probes time out: the third miss means lost, once.
	for i, sent := range []int{30000, 60000, 90000} {
		l.send(at(sent))
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
	l.send(at(120000))
	if _, ok := l.expire(at(125000)); ok || l.st.Misses != 4 {
		t.Fatalf("fourth miss: event %v, misses %d", ok, l.st.Misses)
	}

	// A late reply (after its probe timed out) changes nothing.
	late := l.send(at(150000))
	l.expire(at(155000))
	if _, ok := l.reply(late, at(155500)); ok || l.st.Late != 1 || !l.st.Lost {
		t.Fatalf("late reply: event %v, stats %+v", ok, l.st)
	}
	// A reply past the deadline before expire ran is late too.
	s := l.send(at(180000))
	if _, ok := l.reply(s, at(185001)); ok || l.st.Late != 2 {
		t.Fatalf("reply after deadline: event %v, stats %+v", ok, l.st)
	}
	l.expire(at(185001))

	// A timely reply restores and resets the count.
	s = l.send(at(210000))
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
	l := newLossTracker(5*time.Second, 3)
	l.send(t0)
	l.send(t0.Add(time.Second))
	s := l.send(t0.Add(2 * time.Second))
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

// advance moves time and fires due timers.
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for _, t := range c.timers {
		if t.active && !t.at.After(c.now) {
			t.active = false
			select {
			case t.ch <- c.now:
			default:
			}
		}
	}
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
}

func newProberHarness(t *testing.T, interval, timeout time.Duration, misses int) *proberHarness {
	h := &proberHarness{t: t, clock: newFakeClock(), ping: newFakePing(), events: make(chan Event, 10)}
	k := KeepaliveConfig{Interval: interval, Timeout: timeout, Misses: misses, Clock: h.clock}
	h.p = newProber(k, h.ping, func(e Event) { h.events <- e }, logx.Discard())
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
