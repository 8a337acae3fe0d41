package pkgtest

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jsklein/gogoc/config"
)

func TestMain(m *testing.M) {
	// This binary stands in for several programs in the chroot.
	switch filepath.Base(os.Args[0]) {
	case "uci":
		os.Exit(runFakeUCI())
	case "ubus":
		os.Exit(runUbusClient())
	case "gogoc":
		os.Exit(runFakeDaemon())
	case "ujail":
		os.Exit(runUjail())
	case "flock":
		os.Exit(runFlock())
	}
	// The chroot tests mostly wait: on shells, on the models' timers, on
	// daemons taking their time to exit. Run more of them at once than
	// the default (GOMAXPROCS, 2 on a small CI machine) unless -parallel
	// says otherwise.
	flag.Parse()
	parallelSet := false
	flag.Visit(func(f *flag.Flag) { parallelSet = parallelSet || f.Name == "test.parallel" })
	if !parallelSet {
		flag.Set("test.parallel", "8")
	}
	code := m.Run()
	// The binaries built for this run.
	if gogocBin != "" {
		os.RemoveAll(filepath.Dir(gogocBin))
	}
	if builtDir != "" {
		os.RemoveAll(builtDir)
	}
	os.Exit(code)
}

const (
	filesDir = "../gogoc/files"
	helper   = "/usr/libexec/gogoc-openwrt"
)

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var (
	gogocOnce sync.Once
	gogocBin  string
	gogocErr  error
)

// hostGogoc builds cmd/gogoc for this machine, static, once: the init
// script, the hotplug hook and the helper ask it for the configuration.
func hostGogoc(t *testing.T) string {
	t.Helper()
	gogocOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gogoc-pkgtest-bin-")
		if err != nil {
			gogocErr = err
			return
		}
		gogocBin = filepath.Join(dir, "gogoc")
		cmd := exec.Command("go", "build", "-o", gogocBin, "../../cmd/gogoc")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			gogocErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if gogocErr != nil {
		t.Fatal(gogocErr)
	}
	return gogocBin
}

// newRouter is a chroot with the package's files installed from the
// repository at their router paths, the stock network, dhcp and firewall
// configuration and gogoc's configuration gogoc. /usr/sbin/gogoc is the
// real binary behind a wrapper that records each call.
func newRouter(t *testing.T, gogoc string) *owrt {
	t.Helper()
	o := newOpenWrt(t)
	o.installFiles()
	o.write("/etc/config/gogoc", gogoc, 0o600)
	return o
}

func (o *owrt) installFiles() {
	o.t.Helper()
	o.copyFile(hostGogoc(o.t), "/usr/libexec/gogoc-real", 0o755)
	o.write(daemonPath, "#!/bin/sh\necho \"gogoc|$*\" >>/tmp/calls.log\nexec /usr/libexec/gogoc-real \"$@\"\n", 0o755)
	for src, dst := range map[string]string{
		"gogoc.init":         "/etc/init.d/gogoc",
		"gogoc-openwrt":      helper,
		"gogoc.uci-defaults": "/etc/uci-defaults/90-gogoc",
	} {
		o.copyFile(filepath.Join(filesDir, src), dst, 0o755)
	}
	o.copyFile(filepath.Join(filesDir, "gogoc.hotplug"), "/etc/hotplug.d/iface/30-gogoc", 0o644)
}

// rc runs /etc/init.d/gogoc with an action, as OpenWrt does (the script's
// #! line runs it through /etc/rc.common), and returns what was recorded
// meanwhile.
func (o *owrt) rc(action string, env ...string) []string {
	o.t.Helper()
	o.sh(env, "-c", "/etc/init.d/gogoc "+action)
	return o.calls()
}

// settle waits until procd has no gogoc instance stopping, restarting or
// waiting to respawn and odhcpd has handled every reload, and returns the
// calls and events recorded meanwhile.
func (o *owrt) settle() []string {
	o.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for stable := 0; stable < 3; {
		if time.Now().After(deadline) {
			o.t.Fatal("procd and odhcpd models did not settle in 60 s")
		}
		time.Sleep(100 * time.Millisecond)
		if o.procd.idle("gogoc") && o.procd.odhcpd.idle() && o.daemonsUp() {
			stable++
		} else {
			stable = 0
		}
	}
	return o.calls()
}

// daemonsUp reports that every running gogoc instance has announced
// itself (its first RA, if any, is then in the log too).
func (o *owrt) daemonsUp() bool {
	b, _ := os.ReadFile(o.path("/tmp/calls.log"))
	for _, pid := range o.procd.running("gogoc") {
		// procd's pid is the daemon's, or ujail's when jailed.
		if !strings.Contains(string(b), fmt.Sprintf("daemon|start pid=%d ", pid)) &&
			!strings.Contains(string(b), fmt.Sprintf(" ppid=%d ", pid)) {
			return false
		}
	}
	return true
}

func (o *owrt) config(pkg, body string) { o.write("/etc/config/"+pkg, body, 0o600) }

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

const routerMode = "\toption enabled '1'\n\toption host_type 'router'\n\toption if_prefix 'br-lan'\n"

func has(calls []string, want string) bool { return slices.Contains(calls, want) }

func hasPrefix(calls []string, p string) bool {
	return slices.ContainsFunc(calls, func(c string) bool { return strings.HasPrefix(c, p) })
}

func index(t *testing.T, calls []string, want string) int {
	t.Helper()
	i := slices.Index(calls, want)
	if i < 0 {
		t.Fatalf("no call %q in\n%s", want, strings.Join(calls, "\n"))
	}
	return i
}

// procdMessage returns the last `ubus call service set` message among calls.
func procdMessage(t *testing.T, calls []string) map[string]any {
	t.Helper()
	for i := len(calls) - 1; i >= 0; i-- {
		if msg, ok := strings.CutPrefix(calls[i], "ubus|call service set "); ok {
			var m map[string]any
			if err := json.Unmarshal([]byte(msg), &m); err != nil {
				t.Fatalf("procd message is not JSON: %v\n%s", err, msg)
			}
			return m
		}
	}
	t.Fatalf("no procd message in\n%s", strings.Join(calls, "\n"))
	return nil
}

// gogocInstance returns the message's instance, or nil.
func gogocInstance(m map[string]any) map[string]any {
	insts, _ := m["instances"].(map[string]any)
	in, _ := insts["instance1"].(map[string]any)
	return in
}

func strs(v any) []string {
	a, _ := v.([]any)
	var out []string
	for _, x := range a {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func TestInitDisabledStartsNothing(t *testing.T) {
	t.Parallel()
	o := newRouter(t, gogocConfig("\toption enabled '0'\n\toption host_type 'router'\n\toption if_prefix 'br-lan'\n"))
	calls := append(o.rc("start"), o.settle()...)
	if in := gogocInstance(procdMessage(t, calls)); in != nil {
		t.Errorf("disabled service has an instance: %v", in)
	}
	if hasPrefix(calls, "daemon|start") || has(calls, "odhcpd|reload") {
		t.Errorf("disabled service started something: %q", calls)
	}
	if v, _ := o.uciGet("dhcp.lan.ra"); v != "server" {
		t.Errorf("dhcp.lan.ra = %q, want server untouched", v)
	}
}

func TestInitProcdInstance(t *testing.T) {
	t.Parallel()
	o := newRouter(t, gogocConfig("\toption enabled '1'\n\toption wan_interface 'wwan'\n"))
	calls := o.rc("start")
	m := procdMessage(t, calls)
	in := gogocInstance(m)
	if in == nil {
		t.Fatalf("no instance in %v; log:\n\t%s", m, strings.Join(calls, "\n\t"))
	}
	if got := strs(in["command"]); len(got) < 4 || !slices.Equal(got[:2], []string{daemonPath, "run"}) {
		t.Errorf("command %q", got)
	}
	if got := strs(in["file"]); !slices.Contains(got, daemonPath) {
		t.Errorf("file %q: a changed binary would not restart the daemon", got)
	}
	if got := strs(in["respawn"]); !slices.Equal(got, []string{"3600", "5", "5"}) {
		t.Errorf("respawn %q", got)
	}
	if in["term_timeout"] != float64(15) || in["stderr"] != true || in["stdout"] != true {
		t.Errorf("term_timeout/stdout/stderr: %v", in)
	}
	trig, _ := json.Marshal(m["triggers"])
	for _, want := range []string{`"config.change",["if",["eq","package","gogoc"]`, `"config.change",["if",["eq","package","dhcp"]`,
		`"interface.*",["if",["eq","interface","wwan"]`} {
		if !strings.Contains(string(trig), want) {
			t.Errorf("triggers %s lack %s", trig, want)
		}
	}
	calls = append(calls, o.settle()...)
	if !hasPrefix(calls, "daemon|start") {
		t.Errorf("daemon not started: %q", calls)
	}
	// Host mode: odhcpd keeps the RAs.
	if has(calls, "odhcpd|reload") {
		t.Error("host mode reloaded odhcpd")
	}
	if v, _ := o.uciGet("dhcp.lan.ra"); v != "server" {
		t.Errorf("host mode changed dhcp.lan.ra to %q", v)
	}
}

func TestInitDefaultWANTrigger(t *testing.T) {
	t.Parallel()
	o := newRouter(t, gogocConfig("\toption enabled '1'\n"))
	trig, _ := json.Marshal(procdMessage(t, o.rc("start"))["triggers"])
	if !strings.Contains(string(trig), `["eq","interface","wan"]`) {
		t.Errorf("triggers %s lack the default wan", trig)
	}
}

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
			o := newRouter(t, gogocConfig(routerMode))
			o.config("dhcp", tc.dhcp)
			o.procd.odhcpd.boot()
			o.calls()
			o.rc("start")
			o.settle()
			if v, _ := o.uciGet("dhcp.lan.ra"); v != "disabled" {
				t.Fatalf("after start dhcp.lan.ra = %q, want disabled", v)
			}
			if _, ok := o.uciGet("dhcp.wan.ra"); ok {
				t.Error("dhcp.wan touched")
			}
			// The claim is committed: it survives a reboot.
			if cfg := readFile(t, o.path("/etc/config/dhcp")); !strings.Contains(cfg, "'disabled'") {
				t.Errorf("claim not committed:\n%s", cfg)
			}
			// A reload (config or interface trigger) changes nothing.
			calls := append(o.rc("reload"), o.settle()...)
			if has(calls, "odhcpd|reload") || hasPrefix(calls, "daemon|ra-final") {
				t.Errorf("reload without a change touched odhcpd or the daemon: %q", calls)
			}
			o.rc("stop")
			o.settle()
			v, ok := o.uciGet("dhcp.lan.ra")
			if v != tc.want || ok != (tc.want != "") {
				t.Errorf("after stop dhcp.lan.ra = %q (set %v), want %q", v, ok, tc.want)
			}
			if _, ok := o.uciGet("dhcp.lan.gogoc_saved_ra"); ok {
				t.Error("saved value left behind")
			}
			// Stopping again is harmless.
			if calls := append(o.rc("stop"), o.settle()...); has(calls, "odhcpd|reload") {
				t.Error("second stop touched odhcpd")
			}
		})
	}
}

func TestUCIDefaultsFirewall(t *testing.T) {
	t.Parallel()
	o := newRouter(t, gogocConfig("\toption if_tunnel_v6v4 'tb6in4'\n"))
	for i := 0; i < 2; i++ { // idempotent
		// default_postinst sources uci-defaults scripts and removes them
		// only when they succeed.
		o.sh(nil, "-c", ". /etc/uci-defaults/90-gogoc")
		got, _ := o.uciGet("firewall.@zone[1].device")
		if got != "tb6in4 gogoc gogoc4in6" {
			t.Fatalf("run %d: wan zone devices = %q", i+1, got)
		}
		calls := o.calls()
		if reloaded := has(calls, "firewall|reload"); reloaded != (i == 0) {
			t.Errorf("run %d: firewall reload %v", i+1, reloaded)
		}
	}
	if _, ok := o.uciGet("firewall.@zone[0].device"); ok {
		t.Error("lan zone got a device")
	}
	if cfg := readFile(t, o.path("/etc/config/firewall")); !strings.Contains(cfg, "list device 'gogoc'") {
		t.Errorf("not committed:\n%s", cfg)
	}
}

func TestUCIDefaultsNoWANZone(t *testing.T) {
	t.Parallel()
	o := newRouter(t, gogocConfig(""))
	o.config("firewall", "config zone\n\toption name 'lan'\n")
	out := o.sh(nil, "-c", ". /etc/uci-defaults/90-gogoc")
	if !strings.Contains(out, "no firewall zone 'wan'") {
		t.Errorf("no hint about the missing zone: %q", out)
	}
}

// TestPrermUndoes: package removal runs OpenWrt's default_prerm (stops and
// disables the service) and then gives back the RAs and the firewall
// entries, exactly as they were before installation.
func TestPrermUndoes(t *testing.T) {
	t.Parallel()
	o := newRouter(t, gogocConfig(routerMode))
	before := readFile(t, o.path("/etc/config/firewall"))
	beforeDHCP := readFile(t, o.path("/etc/config/dhcp"))
	o.sh(nil, "-c", ". /etc/uci-defaults/90-gogoc")
	o.write("/usr/lib/opkg/info/gogoc.list", "/etc/init.d/gogoc\n/usr/sbin/gogoc\n", 0o644)
	o.rc("enable")
	o.rc("start")
	o.settle()
	if v, _ := o.uciGet("dhcp.lan.ra"); v != "disabled" {
		t.Fatalf("claim failed: %q", v)
	}
	o.copyFile("../gogoc/scripts/prerm", "/usr/lib/opkg/info/gogoc.prerm", 0o755)
	o.opkgScript("gogoc", "prerm", "remove", false)
	calls := append(o.calls(), o.settle()...)
	if i, j := index(t, calls, "ubus|call service delete {\"name\":\"gogoc\"}"), index(t, calls, "odhcpd|reload"); i > j {
		t.Error("undo ran before default_prerm stopped the service")
	}
	index(t, calls, "firewall|reload")
	if o.exists("/etc/rc.d/S95gogoc") {
		t.Error("service still enabled")
	}
	if v, _ := o.uciGet("dhcp.lan.ra"); v != "server" {
		t.Errorf("dhcp.lan.ra = %q after removal", v)
	}
	if _, ok := o.uciGet("firewall.@zone[1].device"); ok {
		t.Error("tunnel devices left in the wan zone")
	}
	if after := readFile(t, o.path("/etc/config/firewall")); normalize(after) != normalize(before) {
		t.Errorf("firewall config not restored:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if after := readFile(t, o.path("/etc/config/dhcp")); normalize(after) != normalize(beforeDHCP) {
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
	o := newRouter(t, gogocConfig(""))
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
		{"refused file", "\toption enabled '1'\n\toption tunnel_mode 'v6'\n", []string{"ACTION=ifup", "INTERFACE=wan"}, false},
	} {
		o.config("gogoc", gogocConfig(tc.gogoc))
		// hotplug-call sources each script in a subshell.
		o.sh(tc.env, "-c", "( . /etc/hotplug.d/iface/30-gogoc ) || true")
		calls := o.calls()
		if got := has(calls, "gogoc|reconnect"); got != tc.reconnect {
			t.Errorf("%s: reconnect %v, want %v (calls %v)", tc.name, got, tc.reconnect, calls)
		}
	}
}

// TestHotplugDuringServiceAction: while a start or stop holds procd's
// service lock (procd.sh takes it when an init script sources it, and
// holds it while odhcpd lets go of a LAN or the old daemon exits), the
// hotplug hook still runs through: netifd runs hotplug scripts one at a
// time, so a hook that waited would hold up every later one. The init
// script itself does wait there, which shows the stand-in's lock is real.
func TestHotplugDuringServiceAction(t *testing.T) {
	t.Parallel()
	o := newRouter(t, gogocConfig("\toption enabled '1'\n"))
	o.rc("enable")
	holder := exec.Command("/bin/sh", "-c", "exec 1000>/var/lock/procd_gogoc.lock; flock 1000; echo held; read -r _")
	holder.SysProcAttr = &syscall.SysProcAttr{Chroot: o.root}
	holder.Dir = "/"
	holder.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	release, err := holder.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer holder.Wait()
	defer release.Close()
	if line, err := bufio.NewReader(out).ReadString('\n'); line != "held\n" {
		t.Fatalf("lock holder: %q %v", line, err)
	}

	run := func(script string, env ...string) <-chan error {
		done := make(chan error, 1)
		cmd := exec.Command("/bin/sh", "-c", script)
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: o.root}
		cmd.Dir = "/"
		cmd.Env = append(holder.Env, env...)
		go func() {
			out, err := cmd.CombinedOutput()
			if err != nil {
				err = fmt.Errorf("%w: %s", err, out)
			}
			done <- err
		}()
		return done
	}
	const guard = 30 * time.Second // the lock is held until released below
	start := time.Now()
	initDone := run("/etc/init.d/gogoc enabled")
	select {
	case err := <-run("( . /etc/hotplug.d/iface/30-gogoc ) || true", "ACTION=ifup", "INTERFACE=wan"):
		if err != nil {
			t.Fatalf("hotplug: %v", err)
		}
	case <-time.After(guard):
		t.Fatalf("the hotplug hook waits for the service lock (still after %v)", guard)
	}
	if calls := o.calls(); !has(calls, "gogoc|reconnect") {
		t.Errorf("no reconnect from the hook: %q", calls)
	}
	// A second at least for the init script to get through, were the
	// lock not one.
	time.Sleep(time.Second - time.Since(start))
	select {
	case err := <-initDone:
		t.Fatalf("the init script ran while the lock was held (%v): the stand-in's lock is not one", err)
	default:
	}
	release.Close()
	select {
	case err := <-initDone:
		if err != nil {
			t.Errorf("enabled after the lock was released: %v", err)
		}
	case <-time.After(guard):
		t.Fatalf("the init script still waits %v after the lock was released", guard)
	}
}

// TestOneReading: values OpenWrt's shell helpers (config_get_bool,
// string compares) and the daemon would read differently can no longer
// make the scripts and the daemon disagree: the scripts act on the
// daemon's own reading. Whatever the daemon does with each file (run in
// router mode, in host mode, or refuse it), the RAs on the LAN come from
// exactly one sender, and a daemon runs exactly when the daemon's reader
// says the file is valid and enabled.
func TestOneReading(t *testing.T) {
	t.Parallel()
	base := "\toption server 'broker.example.net'\n\toption auth_method 'anonymous'\n"
	for name, file := range map[string]string{
		"enabled YES":       "config gogoc 'main'\n" + base + "\toption enabled 'YES'\n\toption host_type 'router'\n\toption if_prefix 'br-lan'\n",
		"host_type Router":  "config gogoc 'main'\n" + base + "\toption enabled '1'\n\toption host_type 'Router'\n\toption if_prefix 'br-lan'\n",
		"ra Builtin":        "config gogoc 'main'\n" + base + "\toption enabled '1'\n\toption host_type 'router'\n\toption ra 'Builtin'\n\toption if_prefix 'br-lan'\n",
		"nameless section":  "config gogoc\n" + base + "\toption enabled '1'\n\toption host_type 'router'\n\toption if_prefix 'br-lan'\n",
		"enabled yes":       "config gogoc 'main'\n" + base + "\toption enabled 'yes'\n\toption host_type 'router'\n\toption if_prefix 'br-lan'\n",
		"router no prefix":  "config gogoc 'main'\n" + base + "\toption enabled '1'\n\toption host_type 'router'\n",
		"two main sections": "config gogoc 'main'\n" + base + "\toption enabled '0'\n\nconfig gogoc 'main'\n\toption enabled '1'\n\toption host_type 'router'\n\toption if_prefix 'br-lan'\n",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			o := newRouter(t, file)
			w := newRAWatch(o.procd.odhcpd.advertising())
			mark := len(o.log)
			o.rc("start")
			o.settle()
			calls := o.log[mark:]
			w.feed("start", calls)
			for _, f := range w.faults {
				t.Error(f)
			}
			c, _, err := config.Load(o.path("/etc/config/gogoc"), config.FormatUCI)
			runs := err == nil && c.Enabled
			advertises := runs && c.HostType == config.HostTypeRouter && c.RA == config.RABuiltin
			if got := hasPrefix(calls, "daemon|start"); got != runs {
				t.Errorf("daemon started %v; the daemon's reading: err %v, config %+v; log:\n\t%s", got, err, c, strings.Join(calls, "\n\t"))
			}
			if hasPrefix(calls, "daemon|refused") {
				t.Errorf("a daemon was started on a file it refuses: %q", calls)
			}
			wantDaemon, wantOdhcpd := []string(nil), []string{"br-lan"}
			if advertises {
				wantDaemon, wantOdhcpd = []string{"br-lan"}, nil
			}
			if got := set(w.daemon); !slices.Equal(got, wantDaemon) || !slices.Equal(o.procd.odhcpd.advertising(), wantOdhcpd) {
				t.Errorf("daemon advertises on %q, odhcpd on %q; want %q and %q", got, o.procd.odhcpd.advertising(), wantDaemon, wantOdhcpd)
			}
		})
	}
}

// TestInvalidConfigNotStarted: a file the daemon would refuse starts no
// daemon (procd would respawn it until it gave up); the reason, with the
// file and line, is in the log (logger -t gogoc, read with logread) and
// in gogoc check.
func TestInvalidConfigNotStarted(t *testing.T) {
	t.Parallel()
	for name, file := range map[string]string{
		"syntax error": gogocConfig(routerMode + "\toption keepalive_interval '30\n"),
		"bad value":    gogocConfig(routerMode + "\toption tunnel_mode 'v6udpv5'\n"),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			o := newRouter(t, file)
			o.rc("start")
			calls := append(slices.Clone(o.log), o.settle()...)
			if in := gogocInstance(procdMessage(t, calls)); in != nil {
				t.Errorf("instance for a refused file: %v", in)
			}
			if hasPrefix(calls, "daemon|") || has(calls, "odhcpd|reload") {
				t.Errorf("started something: %q", calls)
			}
			logged := ""
			for _, c := range calls {
				if m, ok := strings.CutPrefix(c, "logger|-t gogoc -p daemon.err not started: "); ok {
					logged += m + "\n"
				}
			}
			if !strings.Contains(logged, "/etc/config/gogoc:") {
				t.Errorf("no file:line reason in the log: %q", calls)
			}
			out, _ := exec.Command(hostGogoc(t), "check", "-uci", o.path("/etc/config/gogoc")).CombinedOutput()
			for _, l := range strings.Split(strings.TrimSpace(logged), "\n") {
				if !strings.Contains(string(out), strings.TrimPrefix(l, "/etc/config/gogoc")) {
					t.Errorf("logged %q, gogoc check says:\n%s", l, out)
				}
			}
		})
	}
}

// TestRAFlags: in router mode the daemon's RAs carry the M/O flags odhcpd
// would have sent on that LAN: the init script passes `gogoc run
// -ra-flags` from the ra_flags of the dhcp section odhcpd serves the LAN
// from, read as odhcpd reads it (config.c: parse_ra_flags, the default
// other-config, the section found through its interface option or its
// name); a change to it restarts the daemon with the new flags.
func TestRAFlags(t *testing.T) {
	t.Parallel()
	lanDHCP := func(opts string) string {
		return "config dhcp 'lan'\n\toption interface 'lan'\n\toption ra 'server'\n" + opts
	}
	for _, tc := range []struct {
		name, dhcp, want string
	}{
		{"list", lanDHCP("\tlist ra_flags 'managed-config'\n\tlist ra_flags 'other-config'\n"), "managed-config,other-config"},
		{"unset", lanDHCP(""), "other-config"},
		{"option with spaces", lanDHCP("\toption ra_flags 'managed-config other-config'\n"), "managed-config,other-config"},
		{"none", lanDHCP("\tlist ra_flags 'none'\n"), "none"},
		{"home agent", lanDHCP("\tlist ra_flags 'home-agent'\n"), "home-agent"},
		{"unknown stops", lanDHCP("\tlist ra_flags 'other-config'\n\tlist ra_flags 'stateless'\n\tlist ra_flags 'managed-config'\n"), "other-config"},
		{"unknown first", lanDHCP("\tlist ra_flags 'Managed-Config'\n"), "none"},
		{"section by name", "config dhcp 'lan'\n\toption ra 'server'\n\tlist ra_flags 'managed-config'\n", "managed-config"},
		{"no section for the LAN", "config dhcp 'guest'\n\toption interface 'guest'\n\tlist ra_flags 'managed-config'\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := newRouter(t, gogocConfig(routerMode))
			o.config("dhcp", tc.dhcp)
			mark := len(o.log)
			o.rc("start")
			o.settle()
			calls := o.log[mark:]
			cmd := strs(gogocInstance(procdMessage(t, calls))["command"])
			want := []string{daemonPath, "run", "-uci", "/var/etc/gogoc/config"}
			if tc.want != "" {
				want = append(want, "-ra-flags", tc.want)
			}
			if !slices.Equal(cmd, want) {
				t.Errorf("command %q, want %q", cmd, want)
			}
			if d := daemonStart(t, calls); d["ra_flags"] != tc.want {
				t.Errorf("daemon got ra_flags %q, want %q", d["ra_flags"], tc.want)
			}
		})
	}

	t.Run("change", func(t *testing.T) {
		t.Parallel()
		o := newRouter(t, gogocConfig(routerMode))
		o.rc("start")
		o.settle()
		// uci commit dhcp: the reload trigger runs the init script.
		mark := len(o.log)
		o.config("dhcp", strings.Replace(readFile(t, o.path("/etc/config/dhcp")), "option ra 'disabled'",
			"option ra 'disabled'\n\tlist ra_flags 'managed-config'", 1))
		o.rc("reload")
		o.settle()
		if d := daemonStart(t, o.log[mark:]); d["ra_flags"] != "managed-config" {
			t.Errorf("after the change the daemon has ra_flags %q", d["ra_flags"])
		}
		// Host mode: no flags to pass.
		mark = len(o.log)
		o.config("gogoc", gogocConfig("\toption enabled '1'\n"))
		o.rc("reload")
		o.settle()
		if d := daemonStart(t, o.log[mark:]); d["ra_flags"] != "" || d["mode"] != "host" {
			t.Errorf("host mode daemon: %v", d)
		}
	})
}
