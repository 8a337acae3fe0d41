package rtlink_test

import (
	"errors"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/jsklein/gogoc/internal/rtlink"
	"github.com/jsklein/gogoc/internal/vmtest"
)

// fouPorts lists the namespace's IPv4 fou ports through the library.
func fouPorts(t *testing.T, ns *vmtest.NS) map[int]netlink.Fou {
	t.Helper()
	l, err := ns.NL.FouList(unix.AF_INET)
	if err != nil {
		t.Fatalf("FouList: %v", err)
	}
	out := map[int]netlink.Fou{}
	for _, f := range l {
		out[f.Port] = f
	}
	return out
}

// TestKernelFou checks rtlink's generic netlink against the library's:
// the family id it looks up, a fou port it adds as the library lists and
// removes it, and one the library adds as rtlink removes it. The ports
// carry protocol 41 straight after UDP, as the v6udpv4 kernel plane's.
func TestKernelFou(t *testing.T) {
	vmtest.RequireKernel(t, vmtest.Fou)
	ns := vmtest.NewNS(t, "dn-fou")
	g, err := rtlink.NewGenlAt(ns.H)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()

	id, err := g.FamilyID("fou")
	if err != nil {
		t.Fatalf("FamilyID(fou): %v", err)
	}
	ref, err := ns.NL.GenlFamilyGet("fou")
	if err != nil {
		t.Fatal(err)
	}
	if id != ref.ID {
		t.Fatalf("fou family id %d, the library reads %d", id, ref.ID)
	}
	if _, err := g.FamilyID("gogoc-none"); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("FamilyID of an unknown family: %v, want ENOENT", err)
	}

	const mine, theirs = 3653, 3654
	if err := g.FouAdd(rtlink.FouPort{Family: unix.AF_INET, Port: mine, Protocol: 41}); err != nil {
		t.Fatalf("FouAdd: %v", err)
	}
	if err := ns.NL.FouAdd(netlink.Fou{Family: netlink.FAMILY_V4, Port: theirs, Protocol: 41, EncapType: netlink.FOU_ENCAP_DIRECT}); err != nil {
		t.Fatalf("library FouAdd: %v", err)
	}
	ports := fouPorts(t, ns)
	got, ok := ports[mine]
	if !ok {
		t.Fatalf("port %d added by rtlink is not listed: %+v", mine, ports)
	}
	want := ports[theirs]
	want.Port = mine
	if got.Family != unix.AF_INET || got.Protocol != 41 || got.EncapType != netlink.FOU_ENCAP_DIRECT ||
		got.Family != want.Family || got.Protocol != want.Protocol || got.EncapType != want.EncapType ||
		!got.Local.Equal(want.Local) || !got.Peer.Equal(want.Peer) || got.PeerPort != want.PeerPort || got.IfIndex != want.IfIndex {
		t.Fatalf("rtlink's port reads %+v; the library's, same parameters: %+v", got, want)
	}

	// A port that is taken is refused, and the one there stays.
	if err := g.FouAdd(rtlink.FouPort{Family: unix.AF_INET, Port: theirs, Protocol: 41}); err == nil {
		t.Fatalf("FouAdd on the library's port %d succeeded", theirs)
	}

	// Each removes the other's.
	if err := ns.NL.FouDel(netlink.Fou{Family: netlink.FAMILY_V4, Port: mine}); err != nil {
		t.Fatalf("library FouDel of rtlink's port: %v", err)
	}
	if err := g.FouDel(rtlink.FouPort{Family: unix.AF_INET, Port: theirs}); err != nil {
		t.Fatalf("FouDel of the library's port: %v", err)
	}
	if ports := fouPorts(t, ns); len(ports) != 0 {
		t.Fatalf("ports left: %+v", ports)
	}
	if err := g.FouDel(rtlink.FouPort{Family: unix.AF_INET, Port: mine}); err == nil {
		t.Fatal("FouDel of a port that is gone succeeded")
	}
}
