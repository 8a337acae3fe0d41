package pkgtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == "uci" {
		os.Exit(runFakeUCI())
	}
	os.Exit(m.Run())
}

const (
	filesDir = "../gogoc/files"
	helper   = "/usr/libexec/gogoc-openwrt"
)

// router is a stubbed OpenWrt root: UCI files, a fake uci, logger, init
// scripts of odhcpd and firewall and a gogoc binary that only record their
// calls in one log, and gogoc's scripts with their absolute paths moved
// into the root.
type router struct {
	t    *testing.T
	root string
	log  string
	env  []string
}

func newRouter(t *testing.T) *router {
	t.Helper()
	root := t.TempDir()
	r := &router{t: t, root: root, log: filepath.Join(root, "calls.log")}
	for _, d := range []string{"etc/config", "bin", "etc/init.d", "usr/libexec", "usr/sbin", "lib", "var/run/gogoc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(exe, filepath.Join(root, "bin/uci")); err != nil {
		t.Fatal(err)
	}
	rec := func(name string) string {
		return "#!/bin/sh\necho \"" + name + "|$*\" >>\"$GOGOC_TEST_LOG\"\n"
	}
	r.write("bin/logger", rec("logger"), 0o755)
	r.write("etc/init.d/odhcpd", rec("odhcpd"), 0o755)
	r.write("etc/init.d/firewall", rec("firewall"), 0o755)
	r.write("usr/sbin/gogoc", rec("gogoc"), 0o755)
	r.write("lib/functions.sh", readFile(t, "testdata/functions.sh"), 0o644)
	r.install(filepath.Join(filesDir, "gogoc-openwrt"), helper, 0o755, "/etc/init.d/")
	r.env = append(os.Environ(),
		"PATH="+filepath.Join(root, "bin")+":"+os.Getenv("PATH"),
		"GOGOC_UCI_DIR="+filepath.Join(root, "etc/config"),
		"GOGOC_TEST_LOG="+r.log,
	)
	return r
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (r *router) write(rel, data string, mode os.FileMode) {
	r.t.Helper()
	p := filepath.Join(r.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		r.t.Fatal(err)
	}
}

// install copies a script into the root at dst, moving each of the given
// absolute paths into the root. A path the script does not use fails the
// test: the stubs would silently stop covering it.
func (r *router) install(src, dst string, mode os.FileMode, paths ...string) string {
	r.t.Helper()
	s := readFile(r.t, src)
	for _, p := range paths {
		if !strings.Contains(s, p) {
			r.t.Fatalf("%s does not use %s any more; update the test", src, p)
		}
		s = strings.ReplaceAll(s, p, r.root+p)
	}
	r.write(strings.TrimPrefix(dst, "/"), s, mode)
	return filepath.Join(r.root, dst)
}

// shell is OpenWrt's shell (busybox ash) when the machine has busybox, else
// the system sh.
func shell() []string {
	if p, err := exec.LookPath("busybox"); err == nil {
		return []string{p, "sh"}
	}
	return []string{"/bin/sh"}
}

func (r *router) run(env []string, args ...string) string {
	r.t.Helper()
	sh := shell()
	cmd := exec.Command(sh[0], append(sh[1:], args...)...)
	cmd.Env = append(slices.Clone(r.env), env...)
	cmd.Dir = r.root
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("%v: %v\n%s", args, err, out)
	}
	return string(out)
}

// calls returns the log and empties it.
func (r *router) calls() []string {
	r.t.Helper()
	b, err := os.ReadFile(r.log)
	if err != nil && !os.IsNotExist(err) {
		r.t.Fatal(err)
	}
	os.Remove(r.log)
	s := strings.TrimSpace(string(b))
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func (r *router) uciGet(ref string) (string, bool) {
	r.t.Helper()
	cmd := exec.Command(filepath.Join(r.root, "bin/uci"), "-q", "get", ref)
	cmd.Env = r.env
	out, err := cmd.Output()
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(out)), true
}

func (r *router) config(pkg, body string) { r.write("etc/config/"+pkg, body, 0o600) }

func (r *router) initScript() string {
	return r.install(filepath.Join(filesDir, "gogoc.init"), "/etc/init.d/gogoc", 0o755, helper)
}

func (r *router) rc(action string) []string {
	r.t.Helper()
	rc, err := filepath.Abs("testdata/rc.common")
	if err != nil {
		r.t.Fatal(err)
	}
	r.run(nil, rc, r.initScript(), action)
	return r.calls()
}

const (
	stockNetwork = `
config interface 'loopback'
	option device 'lo'

config device
	option name 'br-lan'
	option type 'bridge'

config interface 'lan'
	option device 'br-lan'
	option proto 'static'

config interface 'wan'
	option device 'eth1'
	option proto 'dhcp'
`
	stockDHCP = `
config dnsmasq
	option domainneeded '1'

config dhcp 'lan'
	option interface 'lan'
	option dhcpv6 'server'
	option ra 'server'

config dhcp 'wan'
	option interface 'wan'
	option ignore '1'
`
	stockFirewall = `
config defaults
	option input 'REJECT'

config zone
	option name 'lan'
	list network 'lan'

config zone
	option name 'wan'
	list network 'wan'
	list network 'wan6'
	option masq '1'
`
)

func gogocConfig(extra string) string {
	return "config gogoc 'main'\n\toption server 'broker.example.net'\n\toption auth_method 'anonymous'\n" + extra
}

func stockRouter(t *testing.T, gogoc string) *router {
	r := newRouter(t)
	r.config("network", stockNetwork)
	r.config("dhcp", stockDHCP)
	r.config("firewall", stockFirewall)
	r.config("gogoc", gogoc)
	return r
}

func has(calls []string, want string) bool { return slices.Contains(calls, want) }

func index(t *testing.T, calls []string, want string) int {
	t.Helper()
	i := slices.Index(calls, want)
	if i < 0 {
		t.Fatalf("no call %q in\n%s", want, strings.Join(calls, "\n"))
	}
	return i
}

func TestInitDisabledStartsNothing(t *testing.T) {
	t.Parallel()
	r := stockRouter(t, gogocConfig("\toption enabled '0'\n"))
	calls := r.rc("start")
	for _, c := range calls {
		if strings.HasPrefix(c, "procd_open_instance") || strings.HasPrefix(c, "odhcpd") {
			t.Errorf("disabled service made call %q", c)
		}
	}
	if v, _ := r.uciGet("dhcp.lan.ra"); v != "server" {
		t.Errorf("dhcp.lan.ra = %q, want server untouched", v)
	}
}

func TestInitProcdInstance(t *testing.T) {
	t.Parallel()
	r := stockRouter(t, gogocConfig("\toption enabled '1'\n\toption wan_interface 'wwan'\n"))
	calls := r.rc("start")
	open := index(t, calls, "procd_open_instance")
	for _, want := range []string{
		"procd_set_param|command|/usr/sbin/gogoc|run|-uci|/etc/config/gogoc",
		"procd_set_param|file|/etc/config/gogoc|/usr/sbin/gogoc",
		"procd_set_param|respawn|3600|5|5",
		"procd_set_param|term_timeout|15",
		"procd_set_param|stderr|1",
	} {
		if i := index(t, calls, want); i < open {
			t.Errorf("%q before procd_open_instance", want)
		}
	}
	if index(t, calls, "procd_close_instance") < open {
		t.Error("instance closed before it was opened")
	}
	index(t, calls, "procd_add_reload_trigger|gogoc")
	index(t, calls, "procd_add_reload_interface_trigger|wwan")
	// Host mode: odhcpd keeps the RAs.
	if has(calls, "odhcpd|reload") {
		t.Error("host mode reloaded odhcpd")
	}
	if v, _ := r.uciGet("dhcp.lan.ra"); v != "server" {
		t.Errorf("host mode changed dhcp.lan.ra to %q", v)
	}
}

func TestInitDefaultWANTrigger(t *testing.T) {
	t.Parallel()
	r := stockRouter(t, gogocConfig("\toption enabled '1'\n"))
	index(t, r.rc("start"), "procd_add_reload_interface_trigger|wan")
}

const routerMode = "\toption enabled '1'\n\toption host_type 'router'\n\toption if_prefix 'br-lan'\n"

// TestRAOwnership: router mode with ra builtin turns odhcpd's RAs off on
// the LAN before the daemon starts, keeps the old value, stays idempotent
// over reloads, and gives the exact old value back only after the daemon
// has exited.
func TestRAOwnership(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, dhcp, want string
	}{
		{"server", stockDHCP, "server"},
		{"relay", strings.Replace(stockDHCP, "option ra 'server'", "option ra 'relay'", 1), "relay"},
		{"unset", strings.Replace(stockDHCP, "\toption ra 'server'\n", "", 1), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := stockRouter(t, gogocConfig(routerMode))
			r.config("dhcp", tc.dhcp)
			calls := r.rc("start")
			if i, j := index(t, calls, "odhcpd|reload"), index(t, calls, "procd_open_instance"); i > j {
				t.Error("odhcpd still advertised when the daemon started")
			}
			if v, _ := r.uciGet("dhcp.lan.ra"); v != "disabled" {
				t.Fatalf("after start dhcp.lan.ra = %q, want disabled", v)
			}
			if _, ok := r.uciGet("dhcp.wan.ra"); ok {
				t.Error("dhcp.wan touched")
			}
			// The claim is committed: it survives a reboot.
			if cfg := readFile(t, filepath.Join(r.root, "etc/config/dhcp")); !strings.Contains(cfg, "'disabled'") {
				t.Errorf("claim not committed:\n%s", cfg)
			}

			// A reload (config or interface trigger) changes nothing.
			calls = r.rc("reload")
			if has(calls, "odhcpd|reload") {
				t.Error("second start reloaded odhcpd again")
			}
			if v, _ := r.uciGet("dhcp.lan.ra"); v != "disabled" {
				t.Errorf("after reload dhcp.lan.ra = %q", v)
			}

			// Stop: the daemon (a process that logs its exit) must be gone
			// before odhcpd advertises again.
			daemon := exec.Command("sh", "-c", "sleep 1; echo daemon-exited >>\"$GOGOC_TEST_LOG\"")
			daemon.Env = r.env
			if err := daemon.Start(); err != nil {
				t.Fatal(err)
			}
			go daemon.Wait()
			status := filepath.Join(r.root, "var/run/gogoc/status.json")
			r.write("var/run/gogoc/status.json", `{"state":"up","pid":`+strconv.Itoa(daemon.Process.Pid)+`}`, 0o644)
			r.config("gogoc", gogocConfig(routerMode+"\toption status_file '"+status+"'\n"))
			start := time.Now()
			calls = r.rc("stop")
			if i, j := index(t, calls, "daemon-exited"), index(t, calls, "odhcpd|reload"); i > j {
				t.Errorf("odhcpd reloaded before the daemon exited: %v", calls)
			}
			if time.Since(start) > 10*time.Second {
				t.Error("stop waited far longer than the daemon took")
			}
			v, ok := r.uciGet("dhcp.lan.ra")
			if v != tc.want || ok != (tc.want != "") {
				t.Errorf("after stop dhcp.lan.ra = %q (set %v), want %q", v, ok, tc.want)
			}
			if _, ok := r.uciGet("dhcp.lan.gogoc_saved_ra"); ok {
				t.Error("saved value left behind")
			}
			// Stopping again is harmless.
			if calls := r.rc("stop"); has(calls, "odhcpd|reload") {
				t.Error("second stop touched odhcpd")
			}
		})
	}
}

// TestRAHandBack: switching ra to none, or host_type to host, or disabling
// gogoc gives the RAs back on the next reload.
func TestRAHandBack(t *testing.T) {
	t.Parallel()
	for _, change := range []string{
		routerMode + "\toption ra 'none'\n",
		"\toption enabled '1'\n\toption host_type 'host'\n",
		"\toption enabled '0'\n\toption host_type 'router'\n\toption if_prefix 'br-lan'\n",
	} {
		r := stockRouter(t, gogocConfig(routerMode))
		r.rc("start")
		if v, _ := r.uciGet("dhcp.lan.ra"); v != "disabled" {
			t.Fatalf("claim failed: %q", v)
		}
		r.config("gogoc", gogocConfig(change))
		calls := r.rc("reload")
		if !has(calls, "odhcpd|reload") {
			t.Errorf("%q: odhcpd not reloaded", change)
		}
		if v, _ := r.uciGet("dhcp.lan.ra"); v != "server" {
			t.Errorf("%q: dhcp.lan.ra = %q, want server", change, v)
		}
	}
}

// TestRAMovesWithIfPrefix: a new LAN device releases the old LAN's claim.
func TestRAMovesWithIfPrefix(t *testing.T) {
	t.Parallel()
	r := stockRouter(t, gogocConfig(routerMode))
	r.config("network", stockNetwork+"\nconfig interface 'guest'\n\toption device 'br-guest'\n")
	r.config("dhcp", stockDHCP+"\nconfig dhcp 'guest'\n\toption interface 'guest'\n\toption ra 'hybrid'\n")
	r.rc("start")
	r.config("gogoc", gogocConfig(strings.Replace(routerMode, "br-lan", "br-guest", 1)))
	r.rc("reload")
	if v, _ := r.uciGet("dhcp.lan.ra"); v != "server" {
		t.Errorf("old LAN: ra = %q, want server back", v)
	}
	if v, _ := r.uciGet("dhcp.guest.ra"); v != "disabled" {
		t.Errorf("new LAN: ra = %q, want disabled", v)
	}
	if v, _ := r.uciGet("dhcp.guest.gogoc_saved_ra"); v != "hybrid" {
		t.Errorf("new LAN: saved %q, want hybrid", v)
	}
}

func TestUCIDefaultsFirewall(t *testing.T) {
	t.Parallel()
	r := stockRouter(t, gogocConfig("\toption if_tunnel_v6v4 'tb6in4'\n"))
	script := r.install(filepath.Join(filesDir, "gogoc.uci-defaults"), "/etc/uci-defaults/90-gogoc", 0o755, helper)
	for i := 0; i < 2; i++ { // idempotent
		// default_postinst sources uci-defaults scripts and removes them
		// only when they succeed.
		r.run(nil, "-c", ". "+script)
		got, _ := r.uciGet("firewall.@zone[1].device")
		if got != "tb6in4 gogoc gogoc4in6" {
			t.Fatalf("run %d: wan zone devices = %q", i+1, got)
		}
		calls := r.calls()
		if reloaded := has(calls, "firewall|reload"); reloaded != (i == 0) {
			t.Errorf("run %d: firewall reload %v", i+1, reloaded)
		}
	}
	if _, ok := r.uciGet("firewall.@zone[0].device"); ok {
		t.Error("lan zone got a device")
	}
	if cfg := readFile(t, filepath.Join(r.root, "etc/config/firewall")); !strings.Contains(cfg, "list device 'gogoc'") {
		t.Errorf("not committed:\n%s", cfg)
	}
}

func TestUCIDefaultsNoWANZone(t *testing.T) {
	t.Parallel()
	r := stockRouter(t, gogocConfig(""))
	r.config("firewall", "config zone\n\toption name 'lan'\n")
	script := r.install(filepath.Join(filesDir, "gogoc.uci-defaults"), "/etc/uci-defaults/90-gogoc", 0o755, helper)
	out := r.run(nil, "-c", ". "+script)
	if !strings.Contains(out, "no firewall zone 'wan'") {
		t.Errorf("no hint about the missing zone: %q", out)
	}
}

// TestPrermUndoes: package removal runs OpenWrt's default_prerm (stops and
// disables the service) and then gives back the RAs and the firewall
// entries, exactly as they were before installation.
func TestPrermUndoes(t *testing.T) {
	t.Parallel()
	r := stockRouter(t, gogocConfig(routerMode))
	defaults := r.install(filepath.Join(filesDir, "gogoc.uci-defaults"), "/etc/uci-defaults/90-gogoc", 0o755, helper)
	before := readFile(t, filepath.Join(r.root, "etc/config/firewall"))
	beforeDHCP := readFile(t, filepath.Join(r.root, "etc/config/dhcp"))
	r.run(nil, "-c", ". "+defaults)
	r.rc("start")
	if v, _ := r.uciGet("dhcp.lan.ra"); v != "disabled" {
		t.Fatalf("claim failed: %q", v)
	}
	r.calls()
	prerm := r.install("../gogoc/scripts/prerm", "/prerm", 0o755, "/lib/functions.sh", helper)
	r.run([]string{"IPKG_INSTROOT="}, prerm, "remove")
	calls := r.calls()
	if i, j := index(t, calls, "default_prerm|"), index(t, calls, "odhcpd|reload"); i > j {
		t.Error("undo ran before default_prerm stopped the service")
	}
	index(t, calls, "firewall|reload")
	if v, _ := r.uciGet("dhcp.lan.ra"); v != "server" {
		t.Errorf("dhcp.lan.ra = %q after removal", v)
	}
	if _, ok := r.uciGet("firewall.@zone[1].device"); ok {
		t.Error("tunnel devices left in the wan zone")
	}
	if after := readFile(t, filepath.Join(r.root, "etc/config/firewall")); normalize(after) != normalize(before) {
		t.Errorf("firewall config not restored:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if after := readFile(t, filepath.Join(r.root, "etc/config/dhcp")); normalize(after) != normalize(beforeDHCP) {
		t.Errorf("dhcp config not restored:\nbefore:\n%s\nafter:\n%s", beforeDHCP, after)
	}
}

// normalize compares UCI files by content, not layout.
func normalize(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestHotplug(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		gogoc     string
		env       []string
		reconnect bool
	}{
		{"wan up", "\toption enabled '1'\n", []string{"ACTION=ifup", "INTERFACE=wan"}, true},
		{"wan new address", "\toption enabled '1'\n", []string{"ACTION=ifupdate", "INTERFACE=wan", "IFUPDATE_ADDRESSES=1"}, true},
		{"wan dns update", "\toption enabled '1'\n", []string{"ACTION=ifupdate", "INTERFACE=wan", "IFUPDATE_DATA=1"}, false},
		{"wan down", "\toption enabled '1'\n", []string{"ACTION=ifdown", "INTERFACE=wan"}, false},
		{"lan up", "\toption enabled '1'\n", []string{"ACTION=ifup", "INTERFACE=lan"}, false},
		{"configured wan", "\toption enabled '1'\n\toption wan_interface 'wwan'\n", []string{"ACTION=ifup", "INTERFACE=wwan"}, true},
		{"default wan not configured", "\toption enabled '1'\n\toption wan_interface 'wwan'\n", []string{"ACTION=ifup", "INTERFACE=wan"}, false},
		{"disabled", "\toption enabled '0'\n", []string{"ACTION=ifup", "INTERFACE=wan"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := stockRouter(t, gogocConfig(tc.gogoc))
			script := r.install(filepath.Join(filesDir, "gogoc.hotplug"), "/etc/hotplug.d/iface/30-gogoc", 0o644,
				"/lib/functions.sh", "/usr/sbin/gogoc")
			// hotplug-call sources each script in a subshell.
			r.run(tc.env, "-c", "( . "+script+" )")
			calls := r.calls()
			if got := has(calls, "gogoc|reconnect"); got != tc.reconnect {
				t.Errorf("reconnect %v, want %v (calls %v)", got, tc.reconnect, calls)
			}
		})
	}
}
