package pkgtest

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jsklein/gogoc/internal/apkv2"
)

// readAPK reads one built .apk with the project's own reader and checks
// the format apk-tools 3 takes from nfpm: unsigned v2, control then data,
// .PKGINFO's datahash the data segment's SHA-256.
func readAPK(t *testing.T, path string) *apkv2.Package {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := apkv2.Read(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if p.Signed {
		t.Errorf("%s: signed (OpenWrt has no key for it; --allow-untrusted installs unsigned ones)", path)
	}
	if got := p.Info["datahash"]; len(got) != 1 || got[0] != p.DataHash {
		t.Errorf("datahash %q, data segment hashes to %s", got, p.DataHash)
	}
	return p
}

// one returns the single value of a .PKGINFO key.
func one(t *testing.T, p *apkv2.Package, key string) string {
	t.Helper()
	v := p.Info[key]
	if len(v) != 1 {
		t.Errorf(".PKGINFO %s = %q, want one value", key, v)
		return ""
	}
	return v[0]
}

// dataFile returns a member of the data segment by absolute path.
func dataFile(t *testing.T, p *apkv2.Package, name string, mode int64) apkv2.File {
	t.Helper()
	for _, f := range p.Data {
		if "/"+strings.TrimPrefix(f.Header.Name, "./") == name {
			if f.Header.Typeflag != tar.TypeReg {
				t.Errorf("%s: not a regular file", name)
			}
			if got := f.Header.Mode & 0o7777; got != mode {
				t.Errorf("%s: mode %o, want %o", name, got, mode)
			}
			if f.Header.Uid != 0 || f.Header.Gid != 0 || (f.Header.Uname != "" && f.Header.Uname != "root") {
				t.Errorf("%s: owned by %d(%s):%d, want root", name, f.Header.Uid, f.Header.Uname, f.Header.Gid)
			}
			return f
		}
	}
	t.Errorf("%s missing", name)
	return apkv2.File{}
}

// checkMeta compares the OpenWrt files under /lib/apk/packages with what
// the package ships, the way include/package-pack.mk makes them.
func checkMeta(t *testing.T, p *apkv2.Package, name string, conffiles []string) {
	t.Helper()
	var shipped []string
	for _, f := range p.Data {
		if f.Header.Typeflag == tar.TypeReg || f.Header.Typeflag == tar.TypeSymlink {
			shipped = append(shipped, "/"+strings.TrimPrefix(f.Header.Name, "./"))
		}
	}
	// The build lists the tree before it adds these three.
	meta := "/lib/apk/packages/" + name
	want := slices.DeleteFunc(slices.Clone(shipped), func(s string) bool {
		return s == meta+".list" || s == meta+".conffiles" || s == meta+".conffiles_static"
	})
	slices.Sort(want)
	list := string(dataFile(t, p, meta+".list", 0o644).Data)
	if got := strings.Split(strings.TrimSuffix(list, "\n"), "\n"); !slices.Equal(got, want) {
		t.Errorf("%s.list:\n%s\nwant the shipped files:\n%s", name, list, strings.Join(want, "\n"))
	}
	if len(conffiles) == 0 {
		return
	}
	if got := string(dataFile(t, p, meta+".conffiles", 0o644).Data); got != strings.Join(conffiles, "\n")+"\n" {
		t.Errorf("%s.conffiles = %q, want %q", name, got, conffiles)
	}
	static := string(dataFile(t, p, meta+".conffiles_static", 0o644).Data)
	var lines []string
	for _, c := range conffiles {
		sum := sha256.Sum256(dataFile(t, p, c, conffileMode(c)).Data)
		lines = append(lines, c+" "+hex.EncodeToString(sum[:]))
	}
	if want := strings.Join(lines, "\n") + "\n"; static != want {
		t.Errorf("%s.conffiles_static = %q, want %q", name, static, want)
	}
}

func conffileMode(string) int64 { return 0o600 }

// apkScripts wants the scripts OpenWrt generates for apk: named package,
// post-install, post-upgrade with PKG_UPGRADE=1, pre-deinstall.
func apkScripts(t *testing.T, p *apkv2.Package, pkg string) {
	t.Helper()
	for name, call := range map[string]string{
		".post-install": "default_postinst", ".post-upgrade": "default_postinst", ".pre-deinstall": "default_prerm",
	} {
		f, ok := p.Control[name]
		if !ok {
			t.Errorf("no %s", name)
			continue
		}
		if f.Header.Mode&0o777 != 0o755 {
			t.Errorf("%s mode %o", name, f.Header.Mode&0o777)
		}
		checkScript(t, name, string(f.Data), pkg, call)
		if name == ".post-upgrade" && !strings.Contains(string(f.Data), "export PKG_UPGRADE=1\n") {
			t.Errorf("%s does not set PKG_UPGRADE=1", name)
		}
	}
	for name := range p.Control {
		if name != ".PKGINFO" && !strings.HasPrefix(name, ".post-") && !strings.HasPrefix(name, ".pre-") {
			t.Errorf("unexpected control member %s", name)
		}
	}
}

// TestAPK reads every .apk: format, .PKGINFO, the OpenWrt metadata files,
// modes, scripts and the binary's ELF header per architecture.
func TestAPK(t *testing.T) {
	dir := pkgDir(t)
	var version string
	for _, a := range arches {
		m, _ := filepath.Glob(filepath.Join(dir, a.name, "gogoc-*.apk"))
		if len(m) != 1 {
			t.Errorf("%s: want one package, found %q", a.name, m)
			continue
		}
		v := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(m[0]), "gogoc-"), ".apk")
		if !versionRE.MatchString(v) || !apkValid(v) {
			t.Errorf("%s: version %q is not one apk and opkg both take", m[0], v)
		}
		if version == "" {
			version = v
		} else if v != version {
			t.Errorf("versions differ: %s and %s", version, v)
		}
		t.Run(a.name, func(t *testing.T) {
			p := readAPK(t, m[0])
			for k, want := range map[string]string{
				"pkgname": "gogoc", "pkgver": v, "arch": a.name, "license": "BSD-3-Clause",
				"url": "https://github.com/jsklein/gogoc", "maintainer": "gogoc developers <gogoc@users.noreply.github.com>",
			} {
				if got := one(t, p, k); got != want {
					t.Errorf(".PKGINFO %s = %q, want %q", k, got, want)
				}
			}
			if d := one(t, p, "pkgdesc"); !strings.Contains(d, "RFC 5572") || strings.Contains(d, "\n") {
				t.Errorf("pkgdesc %q: want one line", d)
			}
			if !slices.Equal(p.Info["depend"], []string{"libc", "kmod-tun", "kmod-sit", "kmod-fou", "kmod-ip6-tunnel"}) {
				t.Errorf("depend %q", p.Info["depend"])
			}
			var size int64
			for _, f := range p.Data {
				size += int64(len(f.Data))
			}
			if n, err := strconv.ParseInt(one(t, p, "size"), 10, 64); err != nil || n != size {
				t.Errorf("size %q for %d bytes of files", one(t, p, "size"), size)
			}
			apkScripts(t, p, "gogoc")
			checkMeta(t, p, "gogoc", []string{"/etc/config/gogoc"})

			bin := dataFile(t, p, "/usr/sbin/gogoc", 0o755)
			dataFile(t, p, "/etc/init.d/gogoc", 0o755)
			dataFile(t, p, "/usr/libexec/gogoc-openwrt", 0o755)
			dataFile(t, p, "/etc/uci-defaults/90-gogoc", 0o755)
			dataFile(t, p, "/etc/hotplug.d/iface/30-gogoc", 0o644)
			dataFile(t, p, "/etc/capabilities/gogoc.json", 0o644)
			// USERID, which the post-install's add_group_and_user reads.
			if r := string(dataFile(t, p, "/lib/apk/packages/gogoc.rusers", 0o644).Data); r != "gogoc=3653:gogoc=3653\n" {
				t.Errorf("gogoc.rusers = %q", r)
			}
			cfg := dataFile(t, p, "/etc/config/gogoc", 0o600)
			if !bytes.Equal(cfg.Data, []byte(readFile(t, filepath.Join(filesDir, "gogoc.config")))) {
				t.Error("/etc/config/gogoc differs from openwrt/gogoc/files/gogoc.config")
			}
			ef, err := elf.NewFile(bytes.NewReader(bin.Data))
			if err != nil {
				t.Fatalf("binary: %v", err)
			}
			if ef.Machine != a.machine || ef.Class != a.class || ef.ByteOrder != a.order {
				t.Errorf("binary is %v %v %v, want %v %v %v", ef.Machine, ef.Class, ef.ByteOrder, a.machine, a.class, a.order)
			}
			if !bytes.Contains(bin.Data, []byte("main.version="+v)) && !bytes.Contains(bin.Data, []byte(v)) {
				t.Errorf("binary does not carry the package version %s", v)
			}
		})
	}

	m, _ := filepath.Glob(filepath.Join(dir, "luci-app-gogoc-*.apk"))
	if len(m) != 1 {
		t.Fatalf("want one luci-app-gogoc apk, found %q", m)
	}
	if want := "luci-app-gogoc-" + version + ".apk"; filepath.Base(m[0]) != want {
		t.Errorf("%s, want %s", filepath.Base(m[0]), want)
	}
	t.Run("luci-app-gogoc", func(t *testing.T) {
		p := readAPK(t, m[0])
		if one(t, p, "pkgname") != "luci-app-gogoc" || one(t, p, "arch") != "noarch" || one(t, p, "pkgver") != version {
			t.Errorf(".PKGINFO %v", p.Info)
		}
		if !slices.Equal(p.Info["depend"], []string{"libc", "luci-base", "gogoc"}) {
			t.Errorf("depend %q", p.Info["depend"])
		}
		apkScripts(t, p, "luci-app-gogoc")
		checkMeta(t, p, "luci-app-gogoc", nil)
		dataFile(t, p, "/www/luci-static/resources/view/gogoc/gogoc.js", 0o644)
		dataFile(t, p, "/usr/share/rpcd/acl.d/luci-app-gogoc.json", 0o644)
	})
}
