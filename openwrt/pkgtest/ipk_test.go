package pkgtest

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jsklein/gogoc/config"
)

// arches are the OpenWrt architectures the packages are built for and the
// ELF header their binary must have.
var arches = []struct {
	name    string
	machine elf.Machine
	class   elf.Class
	order   binary.ByteOrder
}{
	{"mips_24kc", elf.EM_MIPS, elf.ELFCLASS32, binary.BigEndian},
	{"mipsel_24kc", elf.EM_MIPS, elf.ELFCLASS32, binary.LittleEndian},
	{"arm_cortex-a7_neon-vfpv4", elf.EM_ARM, elf.ELFCLASS32, binary.LittleEndian},
	{"aarch64_cortex-a53", elf.EM_AARCH64, elf.ELFCLASS64, binary.LittleEndian},
	{"x86_64", elf.EM_X86_64, elf.ELFCLASS64, binary.LittleEndian},
}

// pkgDir returns a directory holding the packages of both formats:
// $GOGOC_PKG_DIR when set (CI after `make packages`), else one build with
// scripts/packages.sh shared by the tests of this run (gzip -9 instead of
// zopfli, for time). arches limits the build when it is not already made.
func pkgDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("GOGOC_PKG_DIR"); d != "" {
		return d
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gogoc-pkgtest-")
		if err != nil {
			buildErr = err
			return
		}
		builtDir = dir
		cmd := exec.Command("../../scripts/packages.sh", dir)
		cmd.Env = append(os.Environ(), "GOGOC_PKG_VERSION="+testVersion, "GOGOC_PKG_RELEASE=2", "GOGOC_NO_ZOPFLI=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("scripts/packages.sh: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtDir
}

// testVersion is the upstream version the tests build with.
const testVersion = "1.2.3.4~abc1234"

var (
	buildOnce sync.Once
	builtDir  string
	buildErr  error
)

type entry struct {
	hdr  *tar.Header
	data []byte
}

// untgz reads a gzipped tar, keeping the order of its members.
func untgz(t *testing.T, what string, r io.Reader) ([]string, map[string]entry) {
	t.Helper()
	zr, err := gzip.NewReader(r)
	if err != nil {
		t.Fatalf("%s: not gzip: %v", what, err)
	}
	tr := tar.NewReader(zr)
	var names []string
	m := map[string]entry{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("%s: %s: %v", what, h.Name, err)
		}
		names = append(names, h.Name)
		m[h.Name] = entry{h, b}
	}
	return names, m
}

type ipk struct {
	control  map[string]string
	ctrl     map[string]entry
	data     map[string]entry
	dataSize int64
}

// openIPK checks the OpenWrt layout: an outer tar.gz holding exactly
// ./debian-binary (2.0), ./control.tar.gz and ./data.tar.gz in that order.
func openIPK(t *testing.T, path string) ipk {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	names, outer := untgz(t, path, f)
	if want := []string{"./debian-binary", "./control.tar.gz", "./data.tar.gz"}; !slices.Equal(names, want) {
		t.Fatalf("%s: members %q, want %q", path, names, want)
	}
	if s := string(outer["./debian-binary"].data); s != "2.0\n" {
		t.Errorf("debian-binary = %q", s)
	}
	var p ipk
	_, p.ctrl = untgz(t, "control.tar.gz", bytes.NewReader(outer["./control.tar.gz"].data))
	_, p.data = untgz(t, "data.tar.gz", bytes.NewReader(outer["./data.tar.gz"].data))
	for _, e := range p.data {
		p.dataSize += int64(len(e.data))
	}
	c, ok := p.ctrl["./control"]
	if !ok {
		t.Fatal("no ./control")
	}
	p.control = map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(c.data))
	last := ""
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, " ") && last != "" {
			p.control[last] += "\n" + l
			continue
		}
		k, v, ok := strings.Cut(l, ": ")
		if !ok {
			t.Errorf("control line %q", l)
			continue
		}
		p.control[k] = v
		last = k
	}
	return p
}

func (p ipk) file(t *testing.T, name string, mode int64) entry {
	t.Helper()
	e, ok := p.data["."+name]
	if !ok {
		t.Errorf("%s missing", name)
		return entry{}
	}
	if e.hdr.Typeflag != tar.TypeReg {
		t.Errorf("%s: not a regular file", name)
	}
	if got := e.hdr.Mode & 0o7777; got != mode {
		t.Errorf("%s: mode %o, want %o", name, got, mode)
	}
	if e.hdr.Uid != 0 || e.hdr.Gid != 0 {
		t.Errorf("%s: owned by %d:%d, want root", name, e.hdr.Uid, e.hdr.Gid)
	}
	return e
}

func depends(s string) []string {
	var out []string
	for _, d := range strings.Split(s, ",") {
		out = append(out, strings.TrimSpace(d))
	}
	return out
}

// checkScripts wants the maintainer scripts to name the package for
// OpenWrt's helpers, as the generated apk scripts do, instead of letting
// them guess it from $0.
func (p ipk) checkScripts(t *testing.T, pkg string) {
	t.Helper()
	for name, call := range map[string]string{"./postinst": "default_postinst", "./prerm": "default_prerm"} {
		e, ok := p.ctrl[name]
		if !ok {
			t.Errorf("no %s", name)
			continue
		}
		if e.hdr.Mode&0o777 != 0o755 {
			t.Errorf("%s mode %o", name, e.hdr.Mode&0o777)
		}
		checkScript(t, name, string(e.data), pkg, call)
	}
}

func checkScript(t *testing.T, name, s, pkg, call string) {
	t.Helper()
	if !strings.HasPrefix(s, "#!/bin/sh\n") || !strings.Contains(s, `. "${IPKG_INSTROOT}/lib/functions.sh"`) ||
		!strings.Contains(s, "export pkgname="+pkg+"\n") || !strings.Contains(s, "\n"+call+"\n") {
		t.Errorf("%s does not call %s like OpenWrt's generated scripts:\n%s", name, call, s)
	}
}

var versionRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)*(~[0-9a-f]+)?-r[0-9]+$`)

func TestIPK(t *testing.T) {
	dir := pkgDir(t)
	var version string
	for _, a := range arches {
		m, _ := filepath.Glob(filepath.Join(dir, "gogoc_*_"+a.name+".ipk"))
		if len(m) != 1 {
			t.Errorf("%s: want one package, found %q", a.name, m)
			continue
		}
		v := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(m[0]), "gogoc_"), "_"+a.name+".ipk")
		if !versionRE.MatchString(v) {
			t.Errorf("%s: version %q is not an OpenWrt version", m[0], v)
		}
		if version == "" {
			version = v
		} else if v != version {
			t.Errorf("versions differ: %s and %s", version, v)
		}
		t.Run(a.name, func(t *testing.T) {
			p := openIPK(t, m[0])
			for k, want := range map[string]string{
				"Package": "gogoc", "Version": v, "Architecture": a.name, "Section": "net",
				"Source": "feeds/gogoc/gogoc", "SourceName": "gogoc", "License": "BSD-3-Clause",
				"Require-User": strings.TrimSpace(readFile(t, filepath.Join(filesDir, "gogoc.rusers"))),
			} {
				if got := p.control[k]; got != want {
					t.Errorf("control %s = %q, want %q", k, got, want)
				}
			}
			deps := depends(p.control["Depends"])
			for _, d := range []string{"libc", "kmod-tun", "kmod-sit", "kmod-fou", "kmod-ip6-tunnel"} {
				if !slices.Contains(deps, d) {
					t.Errorf("Depends %q lacks %s", p.control["Depends"], d)
				}
			}
			if n, err := strconv.ParseInt(p.control["Installed-Size"], 10, 64); err != nil || n < p.dataSize/1024-1 || n > p.dataSize/1024+1 {
				t.Errorf("Installed-Size %q for %d bytes", p.control["Installed-Size"], p.dataSize)
			}
			if !strings.Contains(p.control["Description"], "RFC 5572") {
				t.Errorf("Description %q", p.control["Description"])
			}
			if s := string(p.ctrl["./conffiles"].data); !slices.Contains(strings.Fields(s), "/etc/config/gogoc") {
				t.Errorf("conffiles %q lacks /etc/config/gogoc", s)
			}
			p.checkScripts(t, "gogoc")

			bin := p.file(t, "/usr/sbin/gogoc", 0o755)
			p.file(t, "/etc/init.d/gogoc", 0o755)
			p.file(t, "/usr/libexec/gogoc-openwrt", 0o755)
			p.file(t, "/etc/uci-defaults/90-gogoc", 0o755)
			p.file(t, "/etc/hotplug.d/iface/30-gogoc", 0o644)
			p.file(t, "/etc/capabilities/gogoc.json", 0o644)
			cfg := p.file(t, "/etc/config/gogoc", 0o600)
			if !bytes.Equal(cfg.data, []byte(readFile(t, filepath.Join(filesDir, "gogoc.config")))) {
				t.Error("/etc/config/gogoc differs from openwrt/gogoc/files/gogoc.config")
			}

			ef, err := elf.NewFile(bytes.NewReader(bin.data))
			if err != nil {
				t.Fatalf("binary: %v", err)
			}
			if ef.Machine != a.machine || ef.Class != a.class || ef.ByteOrder != a.order {
				t.Errorf("binary is %v %v %v, want %v %v %v", ef.Machine, ef.Class, ef.ByteOrder, a.machine, a.class, a.order)
			}
			for _, prog := range ef.Progs {
				if prog.Type == elf.PT_INTERP || prog.Type == elf.PT_DYNAMIC {
					t.Errorf("binary is dynamically linked (%v)", prog.Type)
				}
			}
			if ef.Section(".symtab") != nil || ef.Section(".debug_info") != nil {
				t.Error("binary is not stripped")
			}
			// The FPU choice is not in the ELF header: check the build
			// settings Go records in the binary.
			if a.machine == elf.EM_MIPS && !bytes.Contains(bin.data, []byte("GOMIPS=softfloat")) {
				t.Error("mips binary not built with GOMIPS=softfloat")
			}
			if a.machine == elf.EM_ARM && !bytes.Contains(bin.data, []byte("GOARM=7")) {
				t.Error("arm binary not built with GOARM=7")
			}
		})
	}

	m, _ := filepath.Glob(filepath.Join(dir, "luci-app-gogoc_*_all.ipk"))
	if len(m) != 1 {
		t.Fatalf("want one luci-app-gogoc package, found %q", m)
	}
	if want := "luci-app-gogoc_" + version + "_all.ipk"; filepath.Base(m[0]) != want {
		t.Errorf("%s, want %s", filepath.Base(m[0]), want)
	}
	t.Run("luci-app-gogoc", func(t *testing.T) {
		p := openIPK(t, m[0])
		if p.control["Package"] != "luci-app-gogoc" || p.control["Architecture"] != "all" || p.control["Version"] != version {
			t.Errorf("control %v", p.control)
		}
		deps := depends(p.control["Depends"])
		for _, d := range []string{"luci-base", "gogoc"} {
			if !slices.Contains(deps, d) {
				t.Errorf("Depends %q lacks %s", p.control["Depends"], d)
			}
		}
		p.checkScripts(t, "luci-app-gogoc")
		js := p.file(t, "/www/luci-static/resources/view/gogoc/gogoc.js", 0o644)
		if !bytes.Contains(js.data, []byte("form.Map('gogoc'")) {
			t.Error("view does not map the gogoc config")
		}
		for _, f := range []string{"/usr/share/luci/menu.d/luci-app-gogoc.json", "/usr/share/rpcd/acl.d/luci-app-gogoc.json"} {
			var v map[string]any
			if err := json.Unmarshal(p.file(t, f, 0o644).data, &v); err != nil {
				t.Errorf("%s: %v", f, err)
			}
		}
	})
}

// TestDefaultConfig: the shipped /etc/config/gogoc is valid, disabled, and
// every option it mentions (commented out with its default) is a key
// config/ knows, with a value config/ accepts.
func TestDefaultConfig(t *testing.T) {
	data := readFile(t, filepath.Join(filesDir, "gogoc.config"))
	c, issues, err := config.Parse("gogoc", []byte(data), config.FormatUCI)
	if err != nil || len(issues) > 0 {
		t.Fatalf("shipped config: %v %v", err, issues)
	}
	if c.Enabled {
		t.Error("shipped config is enabled")
	}
	re := regexp.MustCompile(`(?m)^\t#(option|list) (\w+) '([^']*)'`)
	found := re.FindAllStringSubmatch(data, -1)
	if len(found) < 30 {
		t.Fatalf("only %d commented options found", len(found))
	}
	for _, m := range found {
		one := "config gogoc 'main'\n\toption server 'broker.example.net'\n\toption auth_method 'anonymous'\n\t" + m[1] + " " + m[2] + " '" + m[3] + "'\n"
		_, issues, err := config.Parse("gogoc", []byte(one), config.FormatUCI)
		if err != nil {
			t.Errorf("%s %s: %v", m[2], m[3], err)
			continue
		}
		for _, is := range issues {
			if is.Key == m[2] {
				t.Errorf("shipped example %s '%s' refused: %v", m[2], m[3], is)
			}
		}
	}
}

// TestFeedMatchesNFPM: the SDK feed Makefile and the nfpm recipe install
// the same files with the same modes, declare the same conffiles and
// depend on the same kernel modules, so opkg users get the same package
// from either build.
func TestFeedMatchesNFPM(t *testing.T) {
	mk := readFile(t, "../gogoc/Makefile")
	yml := readFile(t, "../gogoc/nfpm.yaml")

	modes := map[string]string{"INSTALL_BIN": "0755", "INSTALL_CONF": "0600", "INSTALL_DATA": "0644"}
	feed := map[string]string{}
	for _, m := range regexp.MustCompile(`\$\((INSTALL_BIN|INSTALL_CONF|INSTALL_DATA)\) (\S+) \$\(1\)(\S+)`).FindAllStringSubmatch(mk, -1) {
		feed[m[3]] = modes[m[1]] + " " + strings.TrimPrefix(m[2], "./")
	}
	recipe := map[string]string{}
	for _, m := range regexp.MustCompile(`- src: (\S+)\n    dst: (\S+)\n(?:    type: \S+\n)?    file_info: \{mode: (0\d+)`).FindAllStringSubmatch(yml, -1) {
		src := strings.TrimPrefix(m[1], "openwrt/gogoc/")
		if m[2] == "/usr/sbin/gogoc" {
			src = "$(PKG_INSTALL_DIR)/usr/bin/gogoc"
		}
		recipe[m[2]] = m[3] + " " + src
	}
	if len(recipe) < 6 {
		t.Fatalf("read only %d files from nfpm.yaml", len(recipe))
	}
	for dst, want := range recipe {
		if got := feed[dst]; got != want {
			t.Errorf("%s: feed installs %q, nfpm %q", dst, got, want)
		}
	}
	for dst := range feed {
		if _, ok := recipe[dst]; !ok {
			t.Errorf("%s: only the feed installs it", dst)
		}
	}

	if !regexp.MustCompile(`(?s)define Package/gogoc/conffiles\n/etc/config/gogoc\nendef`).MatchString(mk) ||
		!strings.Contains(yml, "dst: /etc/config/gogoc\n    type: config|noreplace") {
		t.Error("/etc/config/gogoc is not a conffile in both")
	}
	dm := regexp.MustCompile(`DEPENDS:=\$\(GO_ARCH_DEPENDS\)(.*)`).FindStringSubmatch(mk)
	if dm == nil {
		t.Fatal("no DEPENDS in the feed Makefile")
	}
	var feedDeps, nfpmDeps []string
	for _, d := range strings.Fields(dm[1]) {
		feedDeps = append(feedDeps, strings.TrimPrefix(d, "+"))
	}
	for _, m := range regexp.MustCompile(`(?m)^  - (kmod-\S+)$`).FindAllStringSubmatch(yml, -1) {
		nfpmDeps = append(nfpmDeps, m[1])
	}
	slices.Sort(feedDeps)
	slices.Sort(nfpmDeps)
	if !slices.Equal(feedDeps, nfpmDeps) {
		t.Errorf("feed depends on %q, nfpm on %q", feedDeps, nfpmDeps)
	}
	if !strings.Contains(mk, "$(eval $(call GoBinPackage,gogoc))") || !strings.Contains(mk, "PKG_BUILD_DEPENDS:=golang/host") ||
		!strings.Contains(mk, "GO_PKG_BUILD_PKG:=github.com/jsklein/gogoc/cmd/gogoc") {
		t.Error("feed Makefile does not build cmd/gogoc with golang-package.mk")
	}
	// One version scheme: the feed asks scripts/version.sh as the nfpm
	// build does, and an opkg upgrade keeps the firewall and RA state.
	if !strings.Contains(mk, "PKG_VERSION:=$(if $(DUMP),x,$(shell $(GOGOC_SRC)/scripts/version.sh --upstream))") ||
		!strings.Contains(readFile(t, "../luci-app-gogoc/Makefile"), "scripts/version.sh --upstream") {
		t.Error("feed Makefiles do not take their version from scripts/version.sh")
	}
	// One user for both builds: the feed's USERID is what the nfpm
	// packages declare (ipk Require-User, apk .rusers).
	rusers := strings.TrimSpace(readFile(t, filepath.Join(filesDir, "gogoc.rusers")))
	if !strings.Contains(mk, "\n  USERID:="+rusers+"\n") || !strings.Contains(yml, "Require-User: "+rusers+"\n") ||
		!strings.Contains(yml, "src: openwrt/gogoc/files/gogoc.rusers\n    dst: /lib/apk/packages/gogoc.rusers\n") {
		t.Errorf("the feed's USERID, the ipk's Require-User and the apk's .rusers differ from %q", rusers)
	}
	if !strings.Contains(mk, "[ \"$${PKG_UPGRADE}\" = 1 ] && exit 0\n/etc/init.d/gogoc stop") {
		t.Error("feed prerm-pkg undoes the firewall and RA state on an upgrade")
	}
	// The SDK build and make cross must compile alike, or the size figures
	// of make size do not describe what the feed ships.
	feedGC := regexp.MustCompile(`(?m)^GO_PKG_GCFLAGS:=(.*)$`).FindStringSubmatch(mk)
	crossGC := regexp.MustCompile(`\$\{GOGOC_GCFLAGS-([^}]*)\}`).FindStringSubmatch(readFile(t, "../../scripts/cross.sh"))
	if feedGC == nil || crossGC == nil || feedGC[1] != crossGC[1] {
		t.Errorf("compiler flags differ: feed %q, scripts/cross.sh %q", feedGC, crossGC)
	}
}
