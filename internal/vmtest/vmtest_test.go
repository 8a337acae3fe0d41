package vmtest_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/jsklein/gogoc/internal/vmtest"
	"github.com/jsklein/gogoc/tunnel"
)

// TestLabHelpers runs the helpers the kernel tests rely on over a plain
// veth, which every kernel has: namespaces, addresses, ping, TCP.
func TestLabHelpers(t *testing.T) {
	vmtest.RequireRoot(t)
	a, b := vmtest.NewNS(t, "gva-a"), vmtest.NewNS(t, "gva-b")
	vmtest.Veth(t, a, "gvaa0", netip.MustParsePrefix("10.95.0.1/24"), b, "gvab0", netip.MustParsePrefix("10.95.0.2/24"))
	a.WireLike(t, "gvaa0")
	b.WireLike(t, "gvab0")
	va, vb := netip.MustParseAddr("2001:db8:95::1"), netip.MustParseAddr("2001:db8:95::2")
	a.AddrUp(t, "gvaa0", netip.PrefixFrom(va, 64))
	b.AddrUp(t, "gvab0", netip.PrefixFrom(vb, 64))

	p, err := tunnel.NewPingConn(a.H, "gvaa0", va, vb)
	if err != nil {
		t.Fatal(err)
	}
	if n := vmtest.Ping(p, 3, 2*time.Second); n != 3 {
		t.Fatalf("%d of 3 echo replies over a veth", n)
	}
	// Nobody owns this address: no reply may be counted.
	p, err = tunnel.NewPingConn(a.H, "gvaa0", va, netip.MustParseAddr("2001:db8:95::9"))
	if err != nil {
		t.Fatal(err)
	}
	if n := vmtest.Ping(p, 1, 300*time.Millisecond); n != 0 {
		t.Fatalf("%d echo replies from an address nobody has", n)
	}
	if bps := vmtest.Transfer(t, a, b, vb, 1<<20); bps <= 0 {
		t.Fatalf("transfer rate %v", bps)
	}
	if bps := vmtest.Stream(t, b, a, va, 200*time.Millisecond); bps <= 0 {
		t.Fatalf("stream rate %v", bps)
	}
	if vmtest.Probe(vmtest.Tun) != nil && vmtest.InVM() {
		t.Error("no TUN inside the VM")
	}
}
