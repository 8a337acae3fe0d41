package main

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/jsklein/gogoc/daemon"
	"github.com/jsklein/gogoc/internal/caps/captest"
	"github.com/jsklein/gogoc/internal/testbroker"
	"github.com/jsklein/gogoc/internal/vmtest"
	"github.com/jsklein/gogoc/tunnel"
)

// Issue 7's footprint figures for the kernel data plane: RSS of the idle
// daemon (target ≤ 8 MiB; the old C client about 4 MiB) and its wake-ups
// per minute. scripts/bench-daemon.sh measures the userspace plane on the
// host; the kernel plane needs sit and fou, so this test runs in the VM
// lane (scripts/vm-test.sh), which puts the built gogoc into the guest.
const (
	idleIf        = "gvdt"  // the daemon's tunnel device in each client namespace
	idleTargetKiB = 8 << 10 // the RSS target
	idleOldKiB    = 4 << 10 // the old C client's RSS, as the issue states it
	idleOldWakes  = 120.0   // old client: tunnel loop polled every 500 ms
	idleSettle    = 3 * time.Second
	// idleWindow is one whole idle period: the keepalive interval, which is
	// also the daemon's status refresh (daemon.Timings.StatusRefresh). A shorter
	// window would miss both and report too few wake-ups.
	idleWindow = 30 * time.Second
)

// idleCase is one daemon: a tunnel mode on a data plane, in lab n.
type idleCase struct {
	name, mode, plane string
	n                 int
}

// idleDaemon is a gogoc process in its own client namespace, linked by a
// veth to a broker namespace holding an in-process test broker and, for
// v6v4, the broker's kernel sit end.
type idleDaemon struct {
	idleCase
	client, broker *vmtest.NS
	brokerV4       netip.Addr
	serverV6       netip.Addr
	status, log    string
	conf           string
	cmd            *exec.Cmd
	exited         chan error
	st             *daemon.Status
	first, last    vmtest.Footprint
	elapsed        time.Duration
	tx, rx         uint64 // tunnel device packets during the window
}

// TestKernelDaemonIdle runs the real gogoc binary, idle with keepalive
// every 30 s, four times at once: v6v4 (sit) and v6udpv4 (sit+fou) with
// data_plane kernel, and the same two with data_plane userspace as the
// baseline of the same run. It checks that each tunnel is up on the plane
// asked for and carries an echo, prints FIGURE lines (collected by
// scripts/vm-test.sh) and fails when an idle RSS exceeds 8 MiB. With
// GOGOC_VM_IDLE=1 (VM_IDLE=1 scripts/vm-test.sh) it also counts wake-ups over
// idleWindow and checks from the device counters that a keepalive
// exchange fell into it; without, it samples RSS after the settle time
// only. Wake-ups are context switches of all threads, as
// scripts/bench-daemon.sh counts them: a figure compared with the
// userspace daemon and the old client, not a limit, since the Go
// runtime's own spinning after each burst of work counts there too.
func TestKernelDaemonIdle(t *testing.T) {
	vmtest.RequireKernel(t, vmtest.Sit, vmtest.Fou, vmtest.Tun)
	gogoc := idleBinary(t)
	dir := t.TempDir()
	cases := []idleCase{
		{name: "kernel-v6v4", mode: "v6v4", plane: "kernel"},
		{name: "kernel-v6udpv4", mode: "v6udpv4", plane: "kernel"},
		{name: "userspace-v6v4", mode: "v6v4", plane: "userspace"},
		{name: "userspace-v6udpv4", mode: "v6udpv4", plane: "userspace"},
	}
	ds := make([]*idleDaemon, len(cases))
	for i, c := range cases {
		c.n = i + 1
		ds[i] = newIdleLab(t, c, dir)
	}
	if e2eCaps() != rootCaps {
		giveDir(t, dir)
	}
	// All at once, so that the lane pays for one settle and one window.
	for _, d := range ds {
		d.start(t, gogoc)
	}
	for _, d := range ds {
		d.waitUp(t, 30*time.Second)
	}
	for _, d := range ds {
		d.checkUp(t)
	}
	if t.Failed() {
		return
	}

	window := idleWindow
	if os.Getenv(vmtest.EnvIdle) != "1" {
		// The window would double the VM cycle; CI keeps RSS only and
		// the wake-up figure is on demand (VM_IDLE=1 scripts/vm-test.sh).
		window = 0
		t.Logf("%s is not 1: RSS only, no wake-up count (it needs a %v window)", vmtest.EnvIdle, idleWindow)
	}
	time.Sleep(idleSettle)
	start := time.Now()
	for _, d := range ds {
		d.first = d.sample(t)
		d.tx, d.rx = d.packets(t)
	}
	time.Sleep(window)
	for _, d := range ds {
		d.last = d.sample(t)
		d.elapsed = time.Since(start)
		tx, rx := d.packets(t)
		d.tx, d.rx = tx-d.tx, rx-d.rx
	}
	for _, d := range ds {
		st, err := daemon.ReadStatus(d.status)
		if err != nil || st.State != daemon.StateUp || st.Reconnects != 0 {
			t.Errorf("%s after the idle window: status %+v, %v; want still up, no reconnect", d.name, st, err)
		}
	}

	byName := make(map[string]*idleDaemon)
	for _, d := range ds {
		byName[d.name] = d
	}
	for _, d := range ds {
		d.report(t, byName["userspace-"+d.mode], window > 0)
	}
	for _, d := range ds {
		d.stop(t)
	}
}

// idleBinary is the gogoc to measure: the lane's build inside the VM, a
// fresh one built as `make build` does elsewhere.
func idleBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(vmtest.EnvGogoc); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s=%s: %v", vmtest.EnvGogoc, p, err)
		}
		return p
	}
	if vmtest.InVM() {
		t.Fatalf("%s not set inside the VM: scripts/vm-test.sh puts gogoc into the guest", vmtest.EnvGogoc)
	}
	out := filepath.Join(t.TempDir(), "gogoc")
	b, err := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// newIdleLab builds lab n: client 10.97.n.2 ── 10.97.n.1 broker, the
// client pool 2001:db8:97:n::/64 and the broker's tunnel address ::1 in it.
func newIdleLab(t *testing.T, c idleCase, dir string) *idleDaemon {
	t.Helper()
	d := &idleDaemon{
		idleCase: c,
		client:   vmtest.NewNS(t, fmt.Sprintf("gvd-c%d", c.n)),
		broker:   vmtest.NewNS(t, fmt.Sprintf("gvd-b%d", c.n)),
		brokerV4: netip.AddrFrom4([4]byte{10, 97, byte(c.n), 1}),
		serverV6: netip.MustParseAddr(fmt.Sprintf("2001:db8:97:%d::1", c.n)),
	}
	clientV4 := netip.AddrFrom4([4]byte{10, 97, byte(c.n), 2})
	pool := netip.MustParsePrefix(fmt.Sprintf("2001:db8:97:%d::/64", c.n))
	vmtest.Veth(t, d.client, "gvdc0", netip.PrefixFrom(clientV4, 24), d.broker, "gvdb0", netip.PrefixFrom(d.brokerV4, 24))

	srv, err := testbroker.New(testbroker.Config{
		Tunnels:    []string{testbroker.TunnelV6V4, testbroker.TunnelV6UDPV4},
		Auth:       []string{testbroker.AuthAnonymous},
		ServerV6:   d.serverV6,
		ClientPool: pool,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	addr := netip.AddrPortFrom(d.brokerV4, 3653).String()
	if err := d.broker.Do(func() error { _, _, err := srv.Start(addr, addr); return err }); err != nil {
		t.Fatalf("test broker in %s: %v", d.broker.Name, err)
	}

	// v6udpv4 data comes back over the broker's TSP socket, whose echo
	// responder answers the client; v6v4 needs the broker's kernel end, as
	// a production broker has it.
	if c.mode == "v6v4" {
		sit := &netlink.Sittun{
			LinkAttrs: netlink.LinkAttrs{Name: "gvdbt", MTU: tunnel.DefaultMTU},
			Local:     net.IP(d.brokerV4.AsSlice()),
			Remote:    net.IP(clientV4.AsSlice()),
			Ttl:       64,
			PMtuDisc:  1,
		}
		if err := d.broker.NL.LinkAdd(sit); err != nil {
			t.Fatalf("broker sit in %s: %v", d.broker.Name, err)
		}
		d.broker.AddrUp(t, "gvdbt", netip.PrefixFrom(d.serverV6, 128))
		d.broker.Route(t, "gvdbt", pool)
	}

	d.status = filepath.Join(dir, c.name+".status.json")
	d.log = filepath.Join(dir, c.name+".log")
	d.conf = filepath.Join(dir, c.name+".conf")
	conf := strings.Join([]string{
		"server=" + d.brokerV4.String(), "auth_method=anonymous", "host_type=host",
		"tunnel_mode=" + c.mode, "data_plane=" + c.plane,
		"if_tunnel_v6v4=" + idleIf, "if_tunnel_v6udpv4=" + idleIf,
		"keepalive=yes", "keepalive_interval=30",
		"log_stderr=2",
	}, "\n") + "\n"
	if err := os.WriteFile(d.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return d
}

// start runs `gogoc run` inside the client namespace: the process is
// forked from a thread that stands in it, and inherits it.
func (d *idleDaemon) start(t *testing.T, gogoc string) {
	t.Helper()
	lf, err := os.Create(d.log)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	args := []string{"run", "-f", d.conf, "-status-file", d.status}
	// As on a router: uid 4242 with CAP_NET_ADMIN and CAP_NET_RAW only,
	// so the kernel planes are shown to work unprivileged (captest's
	// helper drops and executes gogoc in its place: same pid).
	if caps := e2eCaps(); caps == rootCaps {
		d.cmd = exec.Command(gogoc, args...)
	} else {
		d.cmd = captest.Command(t, caps, "", append([]string{gogoc}, args...)...)
	}
	d.cmd.Stdout, d.cmd.Stderr = lf, lf
	if err := d.client.Do(d.cmd.Start); err != nil {
		t.Fatalf("start gogoc (%s): %v", d.name, err)
	}
	d.exited = make(chan error, 1)
	go func() { d.exited <- d.cmd.Wait() }()
	t.Cleanup(func() {
		_ = d.cmd.Process.Kill()
		if t.Failed() {
			raw, _ := os.ReadFile(d.log)
			t.Logf("gogoc %s log:\n%s", d.name, raw)
		}
	})
}

// waitUp polls the status file (reading it does not wake the daemon).
func (d *idleDaemon) waitUp(t *testing.T, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st, err := daemon.ReadStatus(d.status)
		if err == nil && st.State == daemon.StateUp {
			d.st = st
			return
		}
		select {
		case err := <-d.exited:
			t.Fatalf("gogoc %s exited before the tunnel was up: %v", d.name, err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("gogoc %s: no tunnel within %v (status %+v, %v)", d.name, within, st, err)
		}
	}
}

// checkUp asserts the tunnel runs on the plane asked for, on the device
// type that plane builds, and carries an echo to the broker.
func (d *idleDaemon) checkUp(t *testing.T) {
	t.Helper()
	st := d.st
	if st.DataPlane != d.plane || st.TunnelMode != d.mode || st.Interface != idleIf {
		t.Errorf("%s: status says plane %q mode %q interface %q", d.name, st.DataPlane, st.TunnelMode, st.Interface)
	}
	if k := st.Keepalive; k == nil || time.Duration(k.IntervalS)*time.Second != idleWindow {
		t.Errorf("%s: keepalive %+v in the status, want every %v", d.name, k, idleWindow)
	}
	link, err := d.client.NL.LinkByName(idleIf)
	if err != nil {
		t.Errorf("%s: no device %s in the client namespace: %v (%s)", d.name, idleIf, err, d.client.Describe())
		return
	}
	sit, isSit := link.(*netlink.Sittun)
	switch {
	case d.plane == "kernel" && !isSit:
		t.Errorf("%s: %s is a %s device, want sit", d.name, idleIf, link.Type())
	case d.plane == "kernel" && d.mode == "v6udpv4" && sit.EncapType == 0:
		t.Errorf("%s: sit %s without fou encapsulation", d.name, idleIf)
	case d.plane == "kernel" && d.mode == "v6v4" && sit.EncapType != 0:
		t.Errorf("%s: sit %s with encapsulation %d, want plain protocol 41", d.name, idleIf, sit.EncapType)
	case d.plane == "userspace" && link.Type() != "tuntap":
		t.Errorf("%s: %s is a %s device, want tuntap", d.name, idleIf, link.Type())
	}
	src, err := netip.ParseAddr(st.ClientIPv6)
	if err != nil {
		t.Errorf("%s: client IPv6 %q in the status: %v", d.name, st.ClientIPv6, err)
		return
	}
	p, err := tunnel.NewPingConn(d.client.H, idleIf, src, d.serverV6)
	if err != nil {
		t.Fatalf("%s: ping socket: %v", d.name, err)
	}
	if n := vmtest.Ping(p, 2, 3*time.Second); n != 2 {
		t.Errorf("%s: %d of 2 echo replies from %v through %s", d.name, n, d.serverV6, idleIf)
	}
}

func (d *idleDaemon) sample(t *testing.T) vmtest.Footprint {
	t.Helper()
	f, err := vmtest.ReadFootprint(d.cmd.Process.Pid)
	if err != nil {
		t.Fatalf("gogoc %s: %v", d.name, err)
	}
	return f
}

// packets reads the tunnel device's counters: the keepalive echo leaves
// through it and its reply comes back through it, on either plane.
func (d *idleDaemon) packets(t *testing.T) (tx, rx uint64) {
	t.Helper()
	l, err := d.client.NL.LinkByName(idleIf)
	if err != nil || l.Attrs().Statistics == nil {
		t.Fatalf("%s: counters of %s: %v", d.name, idleIf, err)
	}
	s := l.Attrs().Statistics
	return s.TxPackets, s.RxPackets
}

func (d *idleDaemon) wakesPerMin() float64 {
	return float64(d.last.Switches-d.first.Switches) * 60 / d.elapsed.Seconds()
}

// report prints the two figures and checks them against the limits; the
// kernel rows are compared with the userspace daemon of the same mode.
func (d *idleDaemon) report(t *testing.T, user *idleDaemon, wakeups bool) {
	t.Helper()
	mib := func(kib int) float64 { return float64(kib) / 1024 }
	rss, wakes := d.last.RSSKiB, d.wakesPerMin()
	cmpRSS, cmpWakes := "", ""
	if user != nil && user != d {
		cmpRSS = fmt.Sprintf("; %s in the same run %.2f MiB, ratio %.2f", user.name, mib(user.last.RSSKiB), float64(rss)/float64(user.last.RSSKiB))
		cmpWakes = fmt.Sprintf("; %s in the same run %.1f/min", user.name, user.wakesPerMin())
		if uw := user.wakesPerMin(); uw > 0 {
			cmpWakes += fmt.Sprintf(", ratio %.2f", wakes/uw)
		}
	}
	t.Logf("FIGURE daemon-rss     %-17s %5.2f MiB (peak %.2f; target 8 MiB: %.2fx; old C client ~4 MiB: %.2fx%s)",
		d.name, mib(rss), mib(d.last.HWMKiB), float64(rss)/idleTargetKiB, float64(rss)/idleOldKiB, cmpRSS)
	if rss > idleTargetKiB {
		t.Errorf("%s: idle RSS %.2f MiB, over the 8 MiB target", d.name, mib(rss))
	}
	if !wakeups {
		return
	}
	t.Logf("FIGURE daemon-wakeups %-17s %5.1f /min (%d switches of %d threads in %.1f s, %d keepalive packets out, %d in; old client 120/min: %.2fx%s)",
		d.name, wakes, d.last.Switches-d.first.Switches, d.last.Threads, d.elapsed.Seconds(), d.tx, d.rx, wakes/idleOldWakes, cmpWakes)
	if d.tx < 1 || d.rx < 1 {
		t.Errorf("%s: %d packets out and %d in through %s during the %v window: no keepalive exchange in it, the count misses it",
			d.name, d.tx, d.rx, idleIf, idleWindow)
	}
}

// stop sends SIGTERM: the daemon must exit 0 and, on the kernel plane,
// take its sit device and fou port with it.
func (d *idleDaemon) stop(t *testing.T) {
	t.Helper()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.exited:
		if err != nil {
			t.Errorf("gogoc %s after SIGTERM: %v", d.name, err)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("gogoc %s still running 5 s after SIGTERM", d.name)
		return
	}
	if l, err := d.client.NL.LinkByName(idleIf); err == nil {
		t.Errorf("%s: device %s (%s) left behind", d.name, idleIf, l.Type())
	}
	if fous, err := d.client.NL.FouList(netlink.FAMILY_V4); err != nil || len(fous) != 0 {
		t.Errorf("%s: fou ports after exit %+v (%v), want none", d.name, fous, err)
	}
}
