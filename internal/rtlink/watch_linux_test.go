package rtlink_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/jsklein/gogoc/internal/rtlink"
	"github.com/jsklein/gogoc/internal/vmtest"
)

// TestWatchSurvivesOverrun loads 20,000 routes in one netlink batch while
// a watch listens with the smallest receive buffer the kernel grants, so
// that the kernel drops notifications and reports ENOBUFS. The watch must
// count the overrun, leave a token (something changed) and go on: an
// address added afterwards is still reported.
func TestWatchSurvivesOverrun(t *testing.T) {
	vmtest.RequireRoot(t)
	ns := vmtest.NewNS(t, "rtl-storm")
	peer := vmtest.NewNS(t, "rtl-peer")
	vmtest.Veth(t, ns, "st0", netip.MustParsePrefix("10.77.0.1/24"), peer, "st1", netip.MustParsePrefix("10.77.0.2/24"))
	done := make(chan struct{})
	defer close(done)
	failed := make(chan error, 1)
	var w *rtlink.Watch
	if err := ns.Do(func() (err error) {
		w, err = rtlink.WatchChanges(done, 1, func(err error) { failed <- err })
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("receive buffer granted: %d bytes", w.Buffer)
	quiet(t, w)

	st0 := ns.Link(t, "st0").Attrs().Index
	const n = 20000
	if err := vmtest.RouteStorm(ns.H, st0, netip.MustParseAddr("10.128.0.0"), n); err != nil {
		t.Fatal(err)
	}
	last := netip.MustParseAddr("10.128.78.31") // 10.128.0.0 + 19,999
	if p, err := ns.RT.RouteGet(last); err != nil || p.Index != st0 {
		t.Fatalf("route to %v after the storm: %+v, %v; want dev #%d", last, p, err, st0)
	}
	for deadline := time.Now().Add(20 * time.Second); w.Overruns() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d routes did not overflow a %d-byte buffer: the test shows nothing", n, w.Buffer)
		}
	}
	quiet(t, w)
	t.Logf("%d routes: %d overrun(s) reported, the watch goes on", n, w.Overruns())

	ns.AddrUp(t, "st0", netip.MustParsePrefix("10.78.0.1/24"))
	select {
	case _, ok := <-w.C:
		if !ok {
			t.Fatalf("the watch ended: %v", <-failed)
		}
	case err := <-failed:
		t.Fatalf("the watch failed: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("an address added after the storm was not reported within 10 s")
	}
}

// TestWatchBuffer: as root the watch gets the buffer it asks for, beyond
// net.core.rmem_max (SO_RCVBUFFORCE); the kernel reports twice the size.
func TestWatchBuffer(t *testing.T) {
	vmtest.RequireRoot(t)
	done := make(chan struct{})
	defer close(done)
	w, err := rtlink.WatchChanges(done, rtlink.DefaultWatchBuffer, nil)
	if err != nil {
		t.Fatal(err)
	}
	if w.Buffer < rtlink.DefaultWatchBuffer {
		t.Fatalf("receive buffer %d bytes, asked for %d", w.Buffer, rtlink.DefaultWatchBuffer)
	}
}

// quiet drains tokens until none came for 300 ms; a closed watch fails.
func quiet(t *testing.T, w *rtlink.Watch) {
	t.Helper()
	for {
		select {
		case _, ok := <-w.C:
			if !ok {
				t.Fatal("the watch ended")
			}
		case <-time.After(300 * time.Millisecond):
			return
		}
	}
}
