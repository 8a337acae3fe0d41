package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/jsklein/gogoc/tunnel"
)

// TestDaemonWANWatch runs NetlinkWAN in a namespace of its own: a change
// of the source address or of the route towards the broker is reported,
// saying whether the path differs from the target's baseline (a path back
// as it was does not); changes that do not touch that path are not. A burst of 20,000 routes
// in one netlink batch, more than the watch's receive buffer holds (the
// kernel drops notifications and says ENOBUFS), must not end the watch:
// the changes after it are still reported.
func TestDaemonWANWatch(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skipf("needs ip: %v", err)
	}
	ns := fmt.Sprintf("gdm-w-%d", os.Getpid()%100000)
	sh := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	_ = exec.Command("ip", "netns", "del", ns).Run()
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	// veth pairs: this kernel may lack the dummy device.
	sh("link", "add", "wan0", "type", "veth", "peer", "name", "wan1")
	sh("link", "add", "lan0", "type", "veth", "peer", "name", "lan1")
	// An IPv4-only WAN, as many are: no IPv6 address comes or goes with it.
	if out, err := exec.Command("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.wan0.disable_ipv6=1").CombinedOutput(); err != nil {
		t.Fatalf("sysctl: %v\n%s", err, out)
	}
	sh("link", "set", "wan1", "up")
	sh("link", "set", "lan1", "up")
	sh("addr", "add", "198.51.100.2/24", "dev", "wan0")
	sh("link", "set", "wan0", "up")
	sh("link", "set", "lan0", "up")
	sh("route", "add", "default", "via", "198.51.100.1")
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()

	// Unbuffered: a target is taken only once the watch has subscribed,
	// and its baseline is looked up before anything else is read.
	targets := make(chan WANTarget)
	events := make(chan WANEvent, 64)
	report := func(ev WANEvent) {
		select {
		case events <- ev:
		default:
			t.Errorf("more than 64 events unread: %q", ev.Reason)
		}
	}
	w := NewNetlinkWAN(testLog(t))
	// watch runs w.Watch in the namespace until the returned stop.
	watch := func() (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- tunnel.InNetNS(h, func() error { return w.Watch(ctx, targets, report) }) }()
		var once sync.Once
		stop = func() {
			once.Do(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("NetlinkWAN: %v", err)
				}
			})
		}
		t.Cleanup(stop)
		return stop
	}
	stop := watch()
	broker := netip.MustParseAddr("192.0.2.1")
	gen := uint64(1)
	targets <- WANTarget{Broker: broker, Local: netip.MustParseAddr("198.51.100.2"), Gen: gen}

	// quiet: nothing may be reported for 0.5 s.
	quiet := func(what string) {
		t.Helper()
		select {
		case ev := <-events:
			t.Errorf("%s: reported %q", what, ev.Reason)
		case <-time.After(500 * time.Millisecond):
		}
	}
	// reported: an event must end in the path want within 5 s (0.1 s on
	// an idle machine), of the current target, saying whether it differs
	// from the baseline. A change made by several commands may be seen
	// half done first; such events are passed over.
	reported := func(what, want string, changed bool) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case ev := <-events:
				_, now, _ := strings.Cut(ev.Reason, "→ ")
				if !strings.HasPrefix(now, want) {
					t.Logf("%s: half done: %s", what, ev.Reason)
					continue
				}
				t.Logf("%s: %s (changed %v)", what, ev.Reason, ev.Changed)
				if ev.Gen != gen || ev.Changed != changed {
					t.Errorf("%s: event of target %d, changed %v; want target %d, changed %v", what, ev.Gen, ev.Changed, gen, changed)
				}
				return
			case <-deadline:
				t.Errorf("%s: no report of a path %q within 5 s", what, want)
				return
			}
		}
	}
	sh("addr", "add", "10.1.0.1/24", "dev", "lan0")
	quiet("address on another device")
	sh("route", "add", "10.9.0.0/16", "via", "10.1.0.254")
	quiet("route elsewhere")
	routeStorm(t, ns, "lan0", 20000)
	quiet("20,000 routes elsewhere in one batch")
	sh("addr", "add", "198.51.100.3/24", "dev", "wan0") // secondary: the source stays .2
	quiet("secondary address on the WAN")
	sh("route", "replace", "default", "via", "198.51.100.254")
	reported("new gateway towards the broker", "src 198.51.100.2 via 198.51.100.254 ", true)
	sh("route", "replace", "default", "via", "198.51.100.1")
	reported("gateway back as it was", "src 198.51.100.2 via 198.51.100.1 ", false)
	// Each step below moves the path once, so that one event stands for it.
	sh("addr", "add", "203.0.113.7/24", "dev", "wan0")
	sh("route", "replace", "default", "via", "203.0.113.1")
	reported("new WAN address", "src 203.0.113.7 via 203.0.113.1 ", true)
	sh("addr", "del", "198.51.100.2/24", "dev", "wan0") // takes the secondary .3 along
	quiet("old WAN addresses removed")
	// The IPv4 routes that go with a device going down go without a
	// route notification, and without IPv6 no address goes either: the
	// link's own notification must do.
	sh("link", "set", "wan0", "down")
	reported("WAN link down", "no route (network is unreachable)", true)

	// The watch ends (as after a failure); the WAN comes back while none
	// runs. The watch started again knows the target and the path last
	// seen, and reports the change it missed.
	stop()
	sh("link", "set", "wan0", "up")
	sh("route", "replace", "default", "via", "203.0.113.1")
	watch()
	reported("WAN back while no watch ran", "src 203.0.113.7 via 203.0.113.1 ", true)

	// A tunnel built from an address the route no longer uses (the WAN
	// moved while it was negotiated) is reported at once, against its own
	// target.
	gen++
	targets <- WANTarget{Broker: broker, Local: netip.MustParseAddr("198.51.100.2"), Gen: gen}
	select {
	case ev := <-events:
		if ev.Gen != gen || !ev.Changed || !strings.Contains(ev.Reason, "moved while the tunnel from 198.51.100.2 was built") {
			t.Errorf("target with a stale source: event %+v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Error("target with a stale source: nothing reported within 5 s")
	}
	gen++
	targets <- WANTarget{Broker: broker, Local: netip.MustParseAddr("203.0.113.7"), Gen: gen}
	quiet("target whose source the route uses")
}

// routeStorm adds n host routes through dev in ns with ip -batch while
// this process is stopped, as a router busy elsewhere would be: the kernel
// queues the notifications for the watch until its receive buffer is full
// and drops the rest (ENOBUFS on the next read). The shell resumes this
// process whatever happens to ip.
func routeStorm(t *testing.T, ns, dev string, n int) {
	t.Helper()
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "route add 10.%d.%d.%d/32 dev %s\n", 128+i>>16, i>>8&255, i&255, dev)
	}
	batch := filepath.Join(t.TempDir(), "routes")
	if err := os.WriteFile(batch, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `trap 'kill -CONT $PPID' EXIT; kill -STOP $PPID; ip -n "$1" -batch "$2"`
	start := time.Now()
	if out, err := exec.Command("sh", "-c", script, "storm", ns, batch).CombinedOutput(); err != nil {
		t.Fatalf("ip -batch with %d routes: %v\n%s", n, err, out)
	}
	t.Logf("%d routes added in %v while the watch could not read", n, time.Since(start).Round(time.Millisecond))
}
