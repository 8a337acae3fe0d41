package pkgtest

import (
	"archive/tar"
	"debug/elf"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/jsklein/gogoc/internal/apkv2"
)

// owrt is a scratch OpenWrt root the package's scripts run in, chrooted,
// so their absolute paths are the router's: busybox (static) as the shell
// and applets, the stand-ins of /lib/functions.sh, /etc/rc.common and
// /lib/functions/procd.sh from testdata/openwrt, the fake uci and the ubus
// client (this test binary), the procd and odhcpd models behind ubus
// (procd_test.go, odhcpd_test.go), and recorders for logger, lock, flock
// and the firewall init script. Everything appends "name|what" to
// /tmp/calls.log, so the log is the order in which things happened.
type owrt struct {
	t     *testing.T
	root  string
	procd *procd
	seen  int      // bytes of the call log calls() has returned
	log   []string // every line calls() has returned
}

func newOpenWrt(t *testing.T) *owrt {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the package scripts run in a chroot: needs root (CI runs as root)")
	}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("no busybox (apt-get install busybox-static): OpenWrt's shell")
	}
	if f, err := elf.Open(bb); err != nil {
		t.Fatal(err)
	} else {
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Skip("busybox is not static (apt-get install busybox-static)")
			}
		}
		f.Close()
	}
	o := &owrt{t: t, root: t.TempDir()}
	// The root is "/" inside: the daemon's user must be able to walk it.
	if err := os.Chmod(o.root, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "etc/config", "etc/init.d", "etc/rc.d",
		"tmp", "var/run", "var/lock", "usr/lib/opkg/info", "lib/apk/packages", "dev", "proc/self/fd"} {
		o.mkdir(d)
	}
	o.copyFile(bb, "/bin/busybox", 0o755)
	list, err := exec.Command(bb, "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range strings.Fields(string(list)) {
		if err := os.Symlink("busybox", filepath.Join(o.root, "bin", a)); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
	}
	// The stand-ins, at their OpenWrt paths.
	err = filepath.WalkDir("testdata/openwrt", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		o.copyFile(p, strings.TrimPrefix(p, "testdata/openwrt"), 0o755)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	o.copyBinary(exe, fakeDaemon)
	// The same binary is ubus (the client of the procd model) and, when a
	// test puts it there, ujail.
	if err := os.Link(o.path(fakeDaemon), o.path("/bin/ubus")); err != nil {
		t.Fatal(err)
	}
	rec := func(name string) string {
		return "#!/bin/sh\necho \"" + name + "|$*\" >>/tmp/calls.log\n"
	}
	for name, path := range map[string]string{
		"logger": "/usr/bin/logger", "lock": "/usr/bin/lock", "firewall": "/etc/init.d/firewall",
	} {
		o.write(path, rec(name), 0o755)
	}
	// odhcpd's init script: reload is procd_send_signal odhcpd.
	o.write("/etc/init.d/odhcpd", "#!/bin/sh\necho \"odhcpd|$*\" >>/tmp/calls.log\n"+
		"case $1 in reload) ubus call service signal '{\"name\":\"odhcpd\"}' ;; esac\n", 0o755)
	// procd_lock's flock (busybox's applet on OpenWrt; Debian's static
	// busybox has none).
	if err := os.Link(o.path(fakeDaemon), o.path("/usr/bin/flock")); err != nil {
		t.Fatal(err)
	}
	o.write("/etc/passwd", "root:x:0:0:root:/root:/bin/ash\nnobody:*:65534:65534:nobody:/var:/bin/false\n", 0o644)
	o.write("/etc/group", "root:x:0:\nnogroup:x:65534:\n", 0o644)
	o.write("/etc/shadow", "root:::0:99999:7:::\n", 0o600)
	if err := syscall.Mknod(filepath.Join(o.root, "dev/null"), syscall.S_IFCHR|0o666, int(unixMkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	o.write("/etc/config/network", stockNetwork, 0o644)
	o.write("/etc/config/dhcp", stockDHCP, 0o644)
	o.write("/etc/config/firewall", stockFirewall, 0o644)
	if err := os.Chmod(o.path("/tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	o.write("/tmp/calls.log", "", 0o666)
	o.procd = startProcd(o)
	o.procd.odhcpd.boot()
	o.calls()
	return o
}

func unixMkdev(major, minor uint32) uint64 {
	return uint64(major)<<8 | uint64(minor)
}

func (o *owrt) path(p string) string { return filepath.Join(o.root, p) }

func (o *owrt) mkdir(p string) {
	o.t.Helper()
	if err := os.MkdirAll(o.path(p), 0o755); err != nil {
		o.t.Fatal(err)
	}
}

func (o *owrt) write(p, data string, mode os.FileMode) {
	o.t.Helper()
	o.mkdir(filepath.Dir(p))
	// A process another test forks while the file is open for writing
	// holds the descriptor until it execs, and running the file then
	// fails with "text file busy" (golang.org/issue/22315). Holding
	// the fork lock for reading keeps forks out meanwhile.
	syscall.ForkLock.RLock()
	err := os.WriteFile(o.path(p), []byte(data), mode)
	syscall.ForkLock.RUnlock()
	if err != nil {
		o.t.Fatal(err)
	}
	if err := os.Chmod(o.path(p), mode); err != nil {
		o.t.Fatal(err)
	}
}

func (o *owrt) copyFile(src, dst string, mode os.FileMode) {
	o.t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		o.t.Fatal(err)
	}
	o.write(dst, string(b), mode)
}

// copyBinary copies a host binary and, if it is dynamic, its loader and
// libraries (as ldd names them) into the root.
func (o *owrt) copyBinary(src, dst string) {
	o.t.Helper()
	o.copyFile(src, dst, 0o755)
	out, err := exec.Command("ldd", src).Output()
	if err != nil {
		return // static
	}
	for _, m := range regexp.MustCompile(`(/\S+) \(0x`).FindAllStringSubmatch(string(out), -1) {
		lib, err := filepath.EvalSymlinks(m[1])
		if err != nil {
			o.t.Fatal(err)
		}
		o.copyFile(lib, m[1], 0o755)
	}
}

// sh runs a command line in the root, as root, with OpenWrt's PATH.
func (o *owrt) sh(env []string, args ...string) string {
	o.t.Helper()
	cmd := exec.Command("/bin/sh", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: o.root}
	cmd.Dir = "/"
	cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GOGOC_UCI_DIR=/etc/config", "HOME=/root"}, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		o.t.Fatalf("%v: %v\n%s", args, err, out)
	}
	return string(out)
}

// calls returns the calls and events recorded since the last call.
func (o *owrt) calls() []string {
	o.t.Helper()
	b, err := os.ReadFile(o.path("/tmp/calls.log"))
	if err != nil && !os.IsNotExist(err) {
		o.t.Fatal(err)
	}
	if o.seen > len(b) {
		o.seen = 0
	}
	// Only whole lines: a writer may be half way.
	end := strings.LastIndexByte(string(b), '\n') + 1
	if end < o.seen {
		end = o.seen
	}
	s := strings.TrimSpace(string(b[o.seen:end]))
	o.seen = end
	if s == "" {
		return nil
	}
	lines := strings.Split(s, "\n")
	o.log = append(o.log, lines...)
	return lines
}

func (o *owrt) exists(p string) bool {
	_, err := os.Lstat(o.path(p))
	return err == nil
}

func (o *owrt) uciGet(ref string) (string, bool) {
	o.t.Helper()
	cmd := exec.Command("/sbin/uci", "-q", "get", ref)
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: o.root}
	cmd.Dir = "/"
	cmd.Env = []string{"GOGOC_UCI_DIR=/etc/config"}
	out, err := cmd.Output()
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(out)), true
}

// unpack writes a package's files into the root as the package manager
// does; a conffile already there is kept, as both keep a changed one.
func (o *owrt) unpack(files []apkv2.File, conffiles []string) []string {
	o.t.Helper()
	var list []string
	for _, f := range files {
		name := "/" + strings.TrimPrefix(f.Header.Name, "./")
		switch f.Header.Typeflag {
		case tar.TypeDir:
			o.mkdir(name)
			continue
		case tar.TypeReg:
		default:
			o.t.Fatalf("%s: type %c", name, f.Header.Typeflag)
		}
		list = append(list, name)
		if contains(conffiles, name) && o.exists(name) {
			continue
		}
		o.write(name, string(f.Data), os.FileMode(f.Header.Mode&0o7777))
	}
	return list
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// apkScript runs a script the way apk-tools 3 runs it: from a memfd,
// so $0 is /proc/self/fd/N, with the version(s) as arguments.
func (o *owrt) apkScript(p *apkv2.Package, name string, args ...string) string {
	o.t.Helper()
	f, ok := p.Control[name]
	if !ok {
		o.t.Fatalf("no %s", name)
	}
	o.write("/proc/self/fd/6", string(f.Data), 0o755)
	defer os.Remove(o.path("/proc/self/fd/6"))
	return o.sh([]string{"APK_SCRIPT=" + strings.TrimPrefix(name, "."), "APK_PACKAGE=" + p.Info["pkgname"][0]},
		append([]string{"/proc/self/fd/6"}, args...)...)
}

// opkgScript runs an installed package's script as opkg-lede's
// pkg_run_script does: sh -c "<info dir>/<pkg>.<script> <args>", with
// PKG_UPGRADE 1 or 0.
func (o *owrt) opkgScript(pkg, script, args string, upgrade bool) string {
	o.t.Helper()
	u := "PKG_UPGRADE=0"
	if upgrade {
		u = "PKG_UPGRADE=1"
	}
	return o.sh([]string{u, "PKG_ROOT=/"}, "-c", "/usr/lib/opkg/info/"+pkg+"."+script+" "+args)
}
