package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/jsklein/gogoc/tunnel"
)

// TestDaemonWANWatch runs NetlinkWAN in a namespace of its own: a change
// of the source address or of the route towards the broker is reported,
// changes that do not touch that path are not.
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

	ctx, cancel := context.WithCancel(context.Background())
	targets := make(chan netip.Addr, 1)
	changed := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- tunnel.InNetNS(h, func() error { return NetlinkWAN{}.Watch(ctx, targets, changed) }) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("NetlinkWAN: %v", err)
		}
	}()
	targets <- netip.MustParseAddr("192.0.2.1")
	time.Sleep(200 * time.Millisecond) // subscribed and baselined

	expect := func(what string, want bool) {
		t.Helper()
		select {
		case msg := <-changed:
			if !want {
				t.Errorf("%s: reported %q", what, msg)
			} else {
				t.Logf("%s: %s", what, msg)
			}
		case <-time.After(500 * time.Millisecond):
			if want {
				t.Errorf("%s: not reported within 500 ms", what)
			}
		}
	}
	sh("addr", "add", "10.1.0.1/24", "dev", "lan0")
	expect("address on another device", false)
	sh("route", "add", "10.9.0.0/16", "via", "10.1.0.254")
	expect("route elsewhere", false)
	sh("addr", "add", "198.51.100.3/24", "dev", "wan0") // secondary: the source stays .2
	expect("secondary address on the WAN", false)
	sh("route", "replace", "default", "via", "198.51.100.254")
	expect("new gateway towards the broker", true)
	sh("addr", "flush", "dev", "wan0")
	sh("addr", "add", "203.0.113.7/24", "dev", "wan0")
	sh("route", "replace", "default", "via", "203.0.113.1")
	expect("new WAN address", true)
}
