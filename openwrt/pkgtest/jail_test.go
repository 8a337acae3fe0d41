package pkgtest

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// The capabilities the daemon keeps: CAP_NET_ADMIN (12) and CAP_NET_RAW
// (13), as a mask.
const netCaps = 1<<12 | 1<<13

// gogocUID is the user and group the package declares.
const gogocUID = 3653

// withUjail puts ujail (the model, this test binary) in the chroot.
func (o *owrt) withUjail() {
	o.t.Helper()
	if err := os.Link(o.path(fakeDaemon), o.path("/sbin/ujail")); err != nil {
		o.t.Fatal(err)
	}
}

// addUser creates the package's user and group as its post-install does:
// OpenWrt's add_group_and_user reading /lib/apk/packages/gogoc.rusers.
func (o *owrt) addUser() {
	o.t.Helper()
	o.copyFile(filepath.Join(filesDir, "gogoc.rusers"), "/lib/apk/packages/gogoc.rusers", 0o644)
	o.sh(nil, "-c", "export pkgname=gogoc root=; . /lib/functions.sh; add_group_and_user")
}

func (o *owrt) installCaps() {
	o.copyFile(filepath.Join(filesDir, "gogoc.capabilities"), "/etc/capabilities/gogoc.json", 0o644)
}

// daemonStart returns the fields of the last daemon|start event.
func daemonStart(t *testing.T, calls []string) map[string]string {
	t.Helper()
	for i := len(calls) - 1; i >= 0; i-- {
		if rest, ok := strings.CutPrefix(calls[i], "daemon|start "); ok {
			m := map[string]string{}
			for _, f := range strings.Fields(rest) {
				k, v, _ := strings.Cut(f, "=")
				m[k] = v
			}
			return m
		}
	}
	t.Fatalf("no daemon started:\n\t%s", strings.Join(calls, "\n\t"))
	return nil
}

// mode returns a file's permission bits, owner and group.
func (o *owrt) mode(p string) (os.FileMode, int, int) {
	o.t.Helper()
	fi, err := os.Lstat(o.path(p))
	if err != nil {
		o.t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return fi.Mode(), int(st.Uid), int(st.Gid)
}

func (o *owrt) wantMode(p string, perm os.FileMode, uid, gid int) {
	o.t.Helper()
	m, u, g := o.mode(p)
	if m.Perm() != perm || u != uid || g != gid {
		o.t.Errorf("%s: %v %d:%d, want %v %d:%d", p, m.Perm(), u, g, perm, uid, gid)
	}
}

// TestJailed: with ujail, the capabilities file and the package's user in
// place, procd gets the jail (no namespaces), the capabilities file, the
// user and group and no_new_privs, and the daemon (started through the
// ujail model, so the kernel applies all of it) runs as gogoc with
// CAP_NET_ADMIN and CAP_NET_RAW only, reads the configuration copy the
// init script hands it and writes its state; the password stays
// unreadable to others, and the copy goes when the daemon does.
func TestJailed(t *testing.T) {
	t.Parallel()
	o := newRouter(t, gogocConfig(routerMode+"\toption passwd 'Quokka-4471-pw'\n"))
	o.withUjail()
	o.installCaps()
	o.addUser()
	// What a root daemon of an older version left in its directory.
	o.write("/var/run/gogoc/gogoc.log", "old\n", 0o644)

	mark := len(o.log)
	o.rc("start")
	o.settle()
	calls := o.log[mark:]
	in := gogocInstance(procdMessage(t, calls))
	if in == nil {
		t.Fatal("no instance")
	}
	jail, _ := in["jail"].(map[string]any)
	if jail["name"] != "gogoc" || len(jail) != 2 || jail["mount"] == nil {
		t.Errorf("jail %v, want only the name (no namespaces) and procd.sh's empty mount", jail)
	}
	for k, want := range map[string]any{
		"capabilities": "/etc/capabilities/gogoc.json", "user": "gogoc", "group": "gogoc", "no_new_privs": true,
	} {
		if in[k] != want {
			t.Errorf("%s = %v, want %v", k, in[k], want)
		}
	}
	if cmd := strs(in["command"]); len(cmd) < 4 || !slices.Equal(cmd[:4], []string{daemonPath, "run", "-uci", "/var/etc/gogoc/config"}) {
		t.Errorf("command %q", cmd)
	}
	if f := strs(in["file"]); !slices.Contains(f, "/var/etc/gogoc/config") || !slices.Contains(f, daemonPath) {
		t.Errorf("file %q", f)
	}

	d := daemonStart(t, calls)
	t.Logf("jailed daemon: %v", d)
	want := map[string]string{
		"uid": fmt.Sprint(gogocUID), "gid": fmt.Sprint(gogocUID), "nnp": "1",
		"capeff": fmt.Sprintf("%x", netCaps), "capamb": fmt.Sprintf("%x", netCaps), "capbnd": fmt.Sprintf("%x", netCaps),
	}
	for k, v := range want {
		if d[k] != v {
			t.Errorf("daemon %s=%s, want %s (%v)", k, d[k], v, d)
		}
	}
	if !has(calls, "daemon|ra-start br-lan") {
		t.Errorf("the jailed daemon does not advertise: %q", calls)
	}

	o.wantMode("/etc/config/gogoc", 0o600, 0, 0)
	o.wantMode("/var/etc/gogoc", 0o750, 0, gogocUID)
	o.wantMode("/var/etc/gogoc/config", 0o640, 0, gogocUID)
	o.wantMode("/var/run/gogoc", 0o755, gogocUID, gogocUID)
	o.wantMode("/var/run/gogoc/status.json", 0o644, gogocUID, gogocUID)
	o.wantMode("/etc/gogoc", 0o750, gogocUID, gogocUID)
	if readFile(t, o.path("/var/etc/gogoc/config")) != readFile(t, o.path("/etc/config/gogoc")) {
		t.Error("the daemon's copy differs from /etc/config/gogoc")
	}
	if o.exists("/var/run/gogoc/gogoc.log") {
		t.Error("a root-owned file the daemon cannot append to was left in its directory")
	}

	// A change: the copy follows before the daemon is restarted.
	mark = len(o.log)
	o.config("gogoc", gogocConfig("\toption enabled '1'\n\toption host_type 'host'\n"))
	o.rc("reload")
	o.settle()
	calls = o.log[mark:]
	if d := daemonStart(t, calls); d["mode"] != "host" || d["uid"] != fmt.Sprint(gogocUID) {
		t.Errorf("after the change the daemon runs %v", d)
	}
	if v, _ := o.uciGet("dhcp.lan.ra"); v != "server" {
		t.Errorf("host mode: dhcp.lan.ra %q", v)
	}

	o.rc("stop")
	o.settle()
	if o.exists("/var/etc/gogoc/config") {
		t.Error("the copy with the password outlived the daemon")
	}
}

// TestNotJailed: without ujail, the capabilities file or the user, procd
// gets no jail, user, group, capabilities or no_new_privs (procd's own
// user switch would leave the daemon no capability at all): the daemon
// runs as root as before, and the init script says so in the log.
func TestNotJailed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		prep func(o *owrt)
	}{
		{"no ujail", func(o *owrt) { o.installCaps(); o.addUser() }},
		{"no user", func(o *owrt) { o.withUjail(); o.installCaps() }},
		{"no capabilities file", func(o *owrt) { o.withUjail(); o.addUser() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := newRouter(t, gogocConfig(routerMode))
			tc.prep(o)
			mark := len(o.log)
			o.rc("start")
			o.settle()
			calls := o.log[mark:]
			in := gogocInstance(procdMessage(t, calls))
			for _, k := range []string{"jail", "user", "group", "capabilities", "no_new_privs"} {
				if v, ok := in[k]; ok {
					t.Errorf("%s = %v without everything the jail needs", k, v)
				}
			}
			if !slices.ContainsFunc(calls, regexp.MustCompile(`^logger\|-t gogoc .*the daemon runs as root`).MatchString) {
				t.Errorf("no log line about running as root: %q", calls)
			}
			if d := daemonStart(t, calls); d["uid"] != "0" {
				t.Errorf("daemon %v, want root", d)
			}
			o.wantMode("/var/etc/gogoc/config", 0o640, 0, 0)
		})
	}
}

// TestCapabilitiesFile: the shipped file is what procd's ujail reads
// (parseOCIcapabilities: five arrays of capability names) and names the
// two capabilities in every set, so ambient ones survive the user switch.
func TestCapabilitiesFile(t *testing.T) {
	sets, err := parseCapsFile(filepath.Join(filesDir, "gogoc.capabilities"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"bounding", "effective", "inheritable", "permitted", "ambient"} {
		if sets[k] != netCaps {
			t.Errorf("%s = %x, want %x (CAP_NET_ADMIN, CAP_NET_RAW)", k, sets[k], netCaps)
		}
	}
}
