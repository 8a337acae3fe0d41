package daemon

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jsklein/gogoc/config"
	"github.com/jsklein/gogoc/internal/logx"
	"github.com/jsklein/gogoc/internal/testbroker"
)

// drivenWAN is a WANWatcher the test drives: it hands the daemon's report
// function to the test and passes on every target the daemon sends.
type drivenWAN struct {
	report  chan func(WANEvent)
	targets chan WANTarget
}

func newDrivenWAN() *drivenWAN {
	return &drivenWAN{report: make(chan func(WANEvent), 1), targets: make(chan WANTarget, 16)}
}

func (w *drivenWAN) Watch(ctx context.Context, targets <-chan WANTarget, report func(WANEvent)) error {
	w.report <- report
	for {
		select {
		case <-ctx.Done():
			return nil
		case t := <-targets:
			w.targets <- t
		}
	}
}

func (w *drivenWAN) nextTarget(t *testing.T) WANTarget {
	t.Helper()
	select {
	case tg := <-w.targets:
		return tg
	case <-time.After(10 * time.Second):
		t.Fatal("no WAN target within 10 s")
		return WANTarget{}
	}
}

// logTap is a test log that can be waited on.
type logTap struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func newLogTap(t *testing.T) (*logTap, *logx.Logger) {
	l := &logTap{}
	return l, logx.Writer(lockedWriter{&l.mu, &l.buf}, logx.LevelDebug)
}

func (l *logTap) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// wait waits until the log holds substr n times.
func (l *logTap) wait(t *testing.T, substr string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(l.String(), substr) < n {
		if time.Now().After(deadline) {
			t.Fatalf("log has %q %d times within 10 s, want %d:\n%s", substr, strings.Count(l.String(), substr), n, l.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// consumed waits until the daemon has taken the pending WAN event.
func consumed(t *testing.T, d *Daemon) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(d.wan) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("WAN event not taken within 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// settleRig is a daemon against a test broker with a driven WAN watch,
// its first tunnel up.
type settleRig struct {
	d      *Daemon
	plane  *fakePlane
	wan    *drivenWAN
	report func(WANEvent)
	first  WANTarget // the first tunnel's
	tap    *logTap
	broker *testbroker.Server
	server string
}

func newSettleRig(t *testing.T, settle time.Duration, c func(*config.Config)) *settleRig {
	t.Helper()
	r := &settleRig{plane: newFakePlane(), wan: newDrivenWAN()}
	r.broker, r.server = startBroker(t, testbroker.Config{}, "127.0.0.1:0")
	cfg := testConfig(r.server)
	if c != nil {
		c(cfg)
	}
	o := testOptions(t, cfg, r.plane)
	o.Timings = fastAttempts()
	o.Timings.WANSettle = settle
	o.WAN = r.wan
	r.tap, o.Log = newLogTap(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", r.tap.String())
		}
	})
	var err error
	if r.d, err = New(o); err != nil {
		t.Fatal(err)
	}
	runDaemon(t, r.d)
	r.report = <-r.wan.report
	r.plane.next(t, 10*time.Second)
	r.first = r.wan.nextTarget(t)
	return r
}

// TestWANStaleEvent: the flake of TestDaemonWANChange, made certain. The
// WAN address is replaced: the watch sees "path → no route", the daemon
// renegotiates on the new path, and the watch's next event, "no route →
// new path", was made against the old tunnel's baseline before the new
// target reached it. That event must not tear down the tunnel just built
// on the very path it reports.
func TestWANStaleEvent(t *testing.T) {
	r := newSettleRig(t, 50*time.Millisecond, nil)
	d, plane, wan, report, first, tap := r.d, r.plane, r.wan, r.report, r.first, r.tap
	report(WANEvent{Gen: first.Gen, Changed: true, Reason: "path to broker changed: src A → no route"})
	plane.next(t, 10*time.Second)
	second := wan.nextTarget(t)
	if second.Gen == first.Gen {
		t.Fatalf("the new tunnel's target has the old generation %d", first.Gen)
	}
	report(WANEvent{Gen: first.Gen, Changed: true, Reason: "path to broker changed: no route → src B"})
	tap.wait(t, "WAN event of an earlier tunnel ignored", 1)
	waitState(t, d, StateUp, 10*time.Second)
	if n := plane.built.Load(); n != 2 {
		t.Fatalf("%d tunnels built, want 2: the stale event renegotiated", n)
	}
}

// TestWANSettleBurst: a burst of changes (address removed, then the new
// one) costs one renegotiation, made once the path is still, for the path
// the burst ended in.
func TestWANSettleBurst(t *testing.T) {
	// Long enough that the second event surely comes before the first
	// would have settled, even on a loaded machine.
	const settle = 2 * time.Second
	r := newSettleRig(t, settle, nil)
	d, plane, report, first, tap := r.d, r.plane, r.report, r.first, r.tap
	report(WANEvent{Gen: first.Gen, Changed: true, Reason: "A → no route"})
	consumed(t, d)
	report(WANEvent{Gen: first.Gen, Changed: true, Reason: "no route → B"})
	plane.next(t, 10*time.Second)
	waitState(t, d, StateUp, 10*time.Second)
	log := tap.String()
	if !strings.Contains(log, `state lost from=up reason="WAN change: no route → B"`) || strings.Count(log, "state lost") != 1 {
		t.Errorf("want one renegotiation, for the path the burst ended in:\n%s", log)
	}
	if n := plane.built.Load(); n != 2 {
		t.Errorf("%d tunnels built, want 2", n)
	}
}

// TestWANSettleBlip: a path that comes back as it was before it settled
// (a link flap) keeps the tunnel.
func TestWANSettleBlip(t *testing.T) {
	const settle = time.Second
	r := newSettleRig(t, settle, nil)
	d, plane, report, first, tap := r.d, r.plane, r.report, r.first, r.tap
	report(WANEvent{Gen: first.Gen, Changed: true, Reason: "A → no route"})
	consumed(t, d)
	report(WANEvent{Gen: first.Gen, Changed: false, Reason: "no route → A"})
	tap.wait(t, "tunnel kept", 1)
	// Nothing may follow once the settle time is over (a loaded machine
	// only makes this wait prove less, never fail).
	select {
	case <-plane.ups:
		t.Fatal("the tunnel was renegotiated though its path came back")
	case <-time.After(settle + settle/2):
	}
	if st := d.Status().State; st != StateUp || plane.built.Load() != 1 {
		t.Fatalf("state %s, %d tunnels built; want up, 1", st, plane.built.Load())
	}
}

// TestWANSettleInBackoff: while the daemon waits out a back-off, any move
// of the path (here: back to what the lost tunnel used) is worth an
// attempt once it has settled, without waiting for the rest of the
// back-off.
func TestWANSettleInBackoff(t *testing.T) {
	const retry = time.Minute
	r := newSettleRig(t, 100*time.Millisecond, func(c *config.Config) {
		c.RetryDelay, c.RetryDelayMax = retry, retry
	})
	d, plane, report, first, tap := r.d, r.plane, r.report, r.first, r.tap
	// The broker goes; the tunnel is renegotiated; the attempt fails:
	// back-off.
	_ = r.broker.Close()
	d.Reconnect("test")
	waitState(t, d, StateBackoff, 10*time.Second)
	startBroker(t, testbroker.Config{}, r.server) // back on the same address
	report(WANEvent{Gen: first.Gen, Changed: false, Reason: "no route → A"})
	plane.next(t, 10*time.Second)
	waitState(t, d, StateUp, 10*time.Second)
	if log := tap.String(); !strings.Contains(log, `state negotiating from=backoff reason="WAN change: no route → A"`) {
		t.Errorf("the attempt after the back-off was cut short gives another reason:\n%s", log)
	}
}
