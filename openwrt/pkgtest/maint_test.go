package pkgtest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/jsklein/gogoc/internal/apkv2"
)

// lifecycle is one package manager's install, upgrade and removal of the
// built gogoc package in a scratch OpenWrt root.
type lifecycle struct {
	name    string
	install func(o *owrt)
	upgrade func(o *owrt)
	remove  func(o *owrt)
}

// TestMaintainerScripts installs, upgrades and removes the x86_64 package
// with each manager's calling convention (apk-tools 3: src/database.c
// apk_db_install_pkg and apk_ipkg_run_script; opkg-lede:
// libopkg/opkg_install.c prerm_upgrade_old_pkg, opkg_configure,
// opkg_remove.c, pkg.c pkg_run_script) under the stand-in of OpenWrt's
// default_postinst/default_prerm/add_group_and_user: install enables and
// starts the service and runs uci-defaults, an upgrade keeps the service
// enabled and reloads neither firewall nor odhcpd, removal stops and
// disables it and takes the firewall entries out.
func TestMaintainerScripts(t *testing.T) {
	dir := pkgDir(t)
	const version = testVersion + "-r2"
	apkPath := filepath.Join(dir, "x86_64", "gogoc-"+version+".apk")
	ipkPath := filepath.Join(dir, "gogoc_"+version+"_x86_64.ipk")
	conffiles := []string{"/etc/config/gogoc"}

	for _, lc := range []lifecycle{
		{
			name: "apk",
			install: func(o *owrt) {
				p := readAPK(t, apkPath)
				o.unpack(p.Data, conffiles)
				o.apkScript(p, ".post-install", version)
			},
			upgrade: func(o *owrt) {
				// apk runs only the new package's post-upgrade.
				p := readAPK(t, apkPath)
				o.unpack(p.Data, conffiles)
				newBuild(o)
				o.apkScript(p, ".post-upgrade", version, "1.2.3.3~0000000-r1")
			},
			remove: func(o *owrt) {
				p := readAPK(t, apkPath)
				o.apkScript(p, ".pre-deinstall", version)
			},
		},
		{
			name: "opkg",
			install: func(o *owrt) {
				opkgUnpack(t, o, ipkPath, conffiles)
				o.opkgScript("gogoc", "postinst", "configure", false)
			},
			upgrade: func(o *owrt) {
				// The old package's prerm with "upgrade <new>", then the
				// new files, then the new postinst; PKG_UPGRADE=1 for all.
				o.opkgScript("gogoc", "prerm", "upgrade "+version, true)
				opkgUnpack(t, o, ipkPath, conffiles)
				newBuild(o)
				o.opkgScript("gogoc", "postinst", "configure", true)
			},
			remove: func(o *owrt) {
				o.opkgScript("gogoc", "prerm", "remove", false)
			},
		},
	} {
		t.Run(lc.name, func(t *testing.T) {
			o := newOpenWrt(t)
			o.t = t
			// Router mode, so the RA hand-over is part of the state an
			// upgrade must keep (the owner's config is kept as conffile).
			o.write("/etc/config/gogoc", gogocConfig(routerMode), 0o600)
			// A router with procd's ujail: the package's user and
			// capabilities file make the daemon run unprivileged.
			o.withUjail()
			w := newRAWatch(o.procd.odhcpd.advertising())
			phase := func(name string, do func(o *owrt)) []string {
				mark := len(o.log)
				do(o)
				o.settle()
				calls := o.log[mark:]
				w.feed(name, calls)
				return calls
			}
			calls := phase("install", lc.install)
			// add_group_and_user, from Require-User (opkg) or .rusers (apk).
			if pw := readFile(t, o.path("/etc/passwd")); !strings.Contains(pw, "\ngogoc:x:3653:3653:gogoc:/var/run/gogoc:/bin/false\n") {
				t.Errorf("install: no user gogoc:\n%s", pw)
			}
			if gr := readFile(t, o.path("/etc/group")); !strings.Contains(gr, "\ngogoc:x:3653:gogoc\n") {
				t.Errorf("install: no group gogoc:\n%s", gr)
			}
			if d := daemonStart(t, calls); d["uid"] != "3653" || d["capeff"] != fmt.Sprintf("%x", netCaps) {
				t.Errorf("install: daemon runs as %v", d)
			}
			if got := set(w.daemon); !slices.Equal(got, []string{"br-lan"}) || !slices.Equal(o.procd.odhcpd.advertising(), nil) {
				t.Errorf("install: daemon advertises on %q, odhcpd on %q", got, o.procd.odhcpd.advertising())
			}
			if !o.exists("/etc/rc.d/S95gogoc") || !o.exists("/etc/rc.d/K10gogoc") {
				t.Errorf("install: init script not enabled (calls %q)", calls)
			}
			if o.exists("/etc/uci-defaults/90-gogoc") {
				t.Error("install: uci-defaults script not run")
			}
			if !hasPrefix(calls, "ubus|call service set ") {
				t.Errorf("install: service not started (calls %q)", calls)
			}
			if got, _ := o.uciGet("firewall.@zone[1].device"); got != "gogoc6in4 gogoc gogoc4in6" {
				t.Errorf("install: wan zone devices %q", got)
			}
			if v, _ := o.uciGet("dhcp.lan.ra"); v != "disabled" || !has(calls, "odhcpd|reload") {
				t.Errorf("install: RAs not handed to gogoc (dhcp.lan.ra %q, calls %q)", v, calls)
			}

			calls = phase("upgrade", lc.upgrade)
			// The new binary runs: the daemon was restarted.
			if !hasPrefix(calls, "daemon|start") || !slices.Equal(set(w.daemon), []string{"br-lan"}) {
				t.Errorf("upgrade: daemon not restarted on the new binary: %q", calls)
			}
			if !o.exists("/etc/rc.d/S95gogoc") {
				t.Errorf("upgrade: init script disabled (calls %q)", calls)
			}
			if has(calls, "firewall|reload") || has(calls, "odhcpd|reload") {
				t.Errorf("upgrade reloaded the firewall or odhcpd: %q", calls)
			}
			if !hasPrefix(calls, "ubus|call service set ") {
				t.Errorf("upgrade: service not started again (calls %q)", calls)
			}
			if got, _ := o.uciGet("firewall.@zone[1].device"); got != "gogoc6in4 gogoc gogoc4in6" {
				t.Errorf("upgrade: wan zone devices %q", got)
			}
			if v, _ := o.uciGet("dhcp.lan.ra"); v != "disabled" {
				t.Errorf("upgrade: RA hand-over undone (dhcp.lan.ra %q)", v)
			}

			calls = phase("remove", lc.remove)
			if got := set(w.daemon); len(got) != 0 || !slices.Equal(o.procd.odhcpd.advertising(), []string{"br-lan"}) {
				t.Errorf("remove: daemon advertises on %q, odhcpd on %q", got, o.procd.odhcpd.advertising())
			}
			if o.exists("/etc/rc.d/S95gogoc") || o.exists("/etc/rc.d/K10gogoc") {
				t.Errorf("remove: init script still enabled (calls %q)", calls)
			}
			if !hasPrefix(calls, "ubus|call service delete ") {
				t.Errorf("remove: service not stopped (calls %q)", calls)
			}
			if _, ok := o.uciGet("firewall.@zone[1].device"); ok || !has(calls, "firewall|reload") {
				t.Errorf("remove: tunnel devices left in the wan zone (calls %q)", calls)
			}
			if v, _ := o.uciGet("dhcp.lan.ra"); v != "server" || !has(calls, "odhcpd|reload") {
				t.Errorf("remove: RAs not given back (dhcp.lan.ra %q, calls %q)", v, calls)
			}
			for _, f := range w.faults {
				t.Error(f)
			}
		})
	}
}

// newBuild makes the unpacked binary differ from the one running, as a
// new version's does.
func newBuild(o *owrt) {
	f, err := os.OpenFile(o.path(daemonPath), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		o.t.Fatal(err)
	}
	f.Write([]byte{0})
	f.Close()
}

// opkgUnpack installs an ipk's files and its info files (list, control,
// conffiles, scripts) as opkg-lede does.
func opkgUnpack(t *testing.T, o *owrt, path string, conffiles []string) {
	t.Helper()
	p := openIPK(t, path)
	var files []apkv2.File
	for _, e := range p.data {
		files = append(files, apkv2.File{Header: e.hdr, Data: e.data})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Header.Name < files[j].Header.Name })
	list := o.unpack(files, conffiles)
	o.write("/usr/lib/opkg/info/gogoc.list", strings.Join(list, "\n")+"\n", 0o644)
	for name, e := range p.ctrl {
		name = strings.TrimPrefix(name, "./")
		if name == "" || name == "." {
			continue
		}
		o.write("/usr/lib/opkg/info/gogoc."+name, string(e.data), 0o755)
	}
}
