package pkgtest

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// raWatch follows, through the call log, who advertises on which LAN
// device: the daemon from its first RA to its final one (a daemon killed
// without a final RA still counts: the hosts keep its RAs until they
// expire), odhcpd from its first RA to its final one. Two senders on one
// link at any moment is a fault: the hosts flap between them, and a final
// RA (router lifetime 0, from the same link-local address) cancels the
// other sender's default route.
type raWatch struct {
	daemon, odhcpd map[string]bool
	faults         []string
}

func newRAWatch(odhcpd []string) *raWatch {
	w := &raWatch{daemon: map[string]bool{}, odhcpd: map[string]bool{}}
	for _, d := range odhcpd {
		w.odhcpd[d] = true
	}
	return w
}

func (w *raWatch) feed(step string, calls []string) {
	for i, c := range calls {
		who, what, _ := strings.Cut(c, "|")
		ev, dev, _ := strings.Cut(what, " ")
		fault := func(msg string) {
			w.faults = append(w.faults, fmt.Sprintf("%s: %s; log:\n\t%s", step, msg, strings.Join(calls[:i+1], "\n\t")))
		}
		switch {
		case who == "daemon" && ev == "ra-start":
			if w.odhcpd[dev] {
				fault("the daemon advertised on " + dev + " while odhcpd still did")
			}
			w.daemon[dev] = true
		case who == "daemon" && ev == "ra-final":
			w.daemon[dev] = false
		case who == "odhcpd-ra" && ev == "start":
			if w.daemon[dev] {
				fault("odhcpd advertised on " + dev + " before the daemon's final RA")
			}
			w.odhcpd[dev] = true
		case who == "odhcpd-ra" && ev == "final":
			w.odhcpd[dev] = false
		}
	}
}

func set(m map[string]bool) []string {
	var out []string
	for k, v := range m {
		if v {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// step is one thing done to the router and who must advertise where once
// everything has settled.
type step struct {
	name           string
	do             func(o *owrt)
	daemon, odhcpd []string
	check          func(t *testing.T, o *owrt, calls []string)
	// reboot: the router restarted; no daemon's RA is current any more
	// (the next RA from the router's link-local address replaces it).
	reboot bool
}

// handOverNetwork has two LANs, both advertised by odhcpd at first.
const (
	handOverNetwork = stockNetwork + "\nconfig interface 'guest'\n\toption device 'br-guest'\n\toption proto 'static'\n"
	handOverDHCP    = stockDHCP + "\nconfig dhcp 'guest'\n\toption interface 'guest'\n\toption ra 'server'\n"
)

func reconfigure(extra string) func(o *owrt) {
	return func(o *owrt) {
		o.config("gogoc", gogocConfig(extra))
		// uci commit gogoc: procd's config.change trigger runs reload.
		o.rc("reload")
	}
}

func runSteps(t *testing.T, steps []step, odhcpdDelay time.Duration) {
	o := newRouter(t, gogocConfig(""))
	o.procd.odhcpd.delay = odhcpdDelay
	o.config("network", handOverNetwork)
	o.config("dhcp", handOverDHCP)
	o.procd.odhcpd.boot()
	o.calls()
	w := newRAWatch(o.procd.odhcpd.advertising())
	for _, s := range steps {
		mark := len(o.log)
		s.do(o)
		o.settle()
		calls := o.log[mark:]
		if s.reboot {
			w.daemon = map[string]bool{}
		}
		w.feed(s.name, calls)
		if got := set(w.daemon); !slices.Equal(got, s.daemon) {
			t.Errorf("%s: the daemon advertises on %q, want %q; log:\n\t%s", s.name, got, s.daemon, strings.Join(calls, "\n\t"))
		}
		if got := o.procd.odhcpd.advertising(); !slices.Equal(got, s.odhcpd) {
			t.Errorf("%s: odhcpd advertises on %q, want %q; log:\n\t%s", s.name, got, s.odhcpd, strings.Join(calls, "\n\t"))
		}
		if s.check != nil {
			s.check(t, o, calls)
		}
	}
	for _, f := range w.faults {
		t.Error(f)
	}
}

// TestRAHandOver drives the init script through procd (the model starts,
// restarts and stops a daemon that announces its first and final RA) and
// odhcpd (which takes its time to act on a reload) in every order the
// router sees: start, reloads that give the RAs back or move them, stop,
// restart, a crash and respawn, disabling and a reboot. At no moment may
// both advertise on one LAN.
func TestRAHandOver(t *testing.T) {
	t.Parallel()
	lan, guest, both := []string{"br-lan"}, []string{"br-guest"}, []string{"br-guest", "br-lan"}
	noOdhcpd := func(t *testing.T, _ *owrt, calls []string) {
		if has(calls, "odhcpd|reload") {
			t.Errorf("odhcpd reloaded for nothing: %q", calls)
		}
	}
	// Each reload from a running router-mode daemon, and back: the
	// changes that give the RAs back or move them, one chroot each.
	start := step{name: "start", do: reconfigure(routerMode), daemon: lan, odhcpd: guest}
	back := step{name: "back to router mode", do: reconfigure(routerMode), daemon: lan, odhcpd: guest}
	for _, steps := range [][]step{
		{start, {name: "reload unchanged", do: func(o *owrt) { o.rc("reload") }, daemon: lan, odhcpd: guest,
			check: func(t *testing.T, o *owrt, calls []string) {
				noOdhcpd(t, o, calls)
				if hasPrefix(calls, "daemon|start") {
					t.Errorf("unchanged reload restarted the daemon: %q", calls)
				}
			}}},
		{start, {name: "enabled 0", do: reconfigure(strings.Replace(routerMode, "'1'", "'0'", 1)), odhcpd: both}, back},
		{start, {name: "host_type host", do: reconfigure("\toption enabled '1'\n\toption host_type 'host'\n\toption if_prefix 'br-lan'\n"), odhcpd: both}, back},
		{start, {name: "ra none", do: reconfigure(routerMode + "\toption ra 'none'\n"), odhcpd: both}, back},
		{start, {name: "another if_prefix", do: reconfigure(strings.Replace(routerMode, "br-lan", "br-guest", 1)), daemon: guest, odhcpd: lan}, back},
		// A file the daemon would refuse: no daemon, the RAs go back.
		{start, {name: "invalid config", do: reconfigure(routerMode + "\toption tunnel_mode 'v6udpv5'\n"), odhcpd: both}, back},
		// The daemon's copy of the config cannot be written: no daemon,
		// and every LAN's RAs go back, until it can again.
		{start, {name: "config copy fails", do: func(o *owrt) {
			if err := os.RemoveAll(o.path("/var/etc/gogoc")); err != nil {
				o.t.Fatal(err)
			}
			if err := os.WriteFile(o.path("/var/etc/gogoc"), nil, 0o644); err != nil {
				o.t.Fatal(err)
			}
			o.rc("reload")
		}, odhcpd: both}, {name: "config copy again", do: func(o *owrt) {
			if err := os.Remove(o.path("/var/etc/gogoc")); err != nil {
				o.t.Fatal(err)
			}
			o.rc("reload")
		}, daemon: lan, odhcpd: guest}},
		{start, {name: "stop", do: func(o *owrt) { o.rc("stop") }, odhcpd: both,
			check: func(t *testing.T, o *owrt, _ []string) {
				for _, sec := range []string{"lan", "guest"} {
					if v, _ := o.uciGet("dhcp." + sec + ".ra"); v != "server" {
						t.Errorf("after stop dhcp.%s.ra = %q", sec, v)
					}
				}
			}}},
	} {
		t.Run(steps[1].name, func(t *testing.T) {
			t.Parallel()
			runSteps(t, steps, time.Second)
		})
	}
	// odhcpd slower than building procd's message: the daemon must still
	// wait for it.
	t.Run("slow odhcpd", func(t *testing.T) {
		t.Parallel()
		runSteps(t, []step{
			{name: "start", do: reconfigure(routerMode), daemon: lan, odhcpd: guest},
			{name: "stop", do: func(o *owrt) { o.rc("stop") }, odhcpd: both},
		}, 4*time.Second)
	})
	t.Run("lifecycle", func(t *testing.T) {
		t.Parallel()
		runSteps(t, []step{
			{name: "start", do: reconfigure(routerMode), daemon: lan, odhcpd: guest},
			{name: "crash and respawn", do: func(o *owrt) {
				pids := o.procd.running("gogoc")
				if len(pids) != 1 {
					o.t.Fatalf("gogoc pids %v", pids)
				}
				syscall.Kill(pids[0], syscall.SIGKILL)
			}, daemon: lan, odhcpd: guest, check: func(t *testing.T, o *owrt, calls []string) {
				noOdhcpd(t, o, calls)
				if !hasPrefix(calls, "daemon|start") {
					t.Errorf("not respawned: %q", calls)
				}
			}},
			{name: "restart", do: func(o *owrt) { o.rc("restart") }, daemon: lan, odhcpd: guest},
			// Disabled while running: nothing changes until it stops.
			{name: "disable", do: func(o *owrt) { o.rc("enable"); o.rc("disable") }, daemon: lan, odhcpd: guest},
			// A reboot (power cut): the disabled service does not start,
			// and the LAN gets its RAs from odhcpd again once it is up.
			{name: "reboot", do: func(o *owrt) {
				o.reboot()
				o.sh([]string{"ACTION=ifup", "INTERFACE=lan"}, "-c", "( . /etc/hotplug.d/iface/30-gogoc ) || true")
			}, odhcpd: both, reboot: true},
		}, time.Second)
	})
}

// reboot cuts the power: every process dies without a script, /var
// (tmpfs) is empty again, odhcpd starts from the committed configuration
// and the enabled init scripts start.
func (o *owrt) reboot() {
	o.t.Helper()
	o.procd.powerCut()
	for _, d := range []string{"/var/run/gogoc", "/var/etc"} {
		os.RemoveAll(o.path(d))
	}
	o.procd.odhcpd.boot()
	o.sh(nil, "-c", "for s in /etc/rc.d/S*; do [ -x \"$s\" ] && \"$s\" boot; done; true")
}
