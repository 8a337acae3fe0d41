package pkgtest

import (
	"os/exec"
	"testing"
)

// TestShellcheck: every shell file of the OpenWrt packaging and its
// scripts is shellcheck-clean (the OpenWrt ones declare dash, the closest
// shellcheck has to busybox ash).
func TestShellcheck(t *testing.T) {
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Skip("shellcheck not installed (apt-get install shellcheck)")
	}
	files := []string{
		"../gogoc/files/gogoc.init", "../gogoc/files/gogoc.hotplug", "../gogoc/files/gogoc.uci-defaults",
		"../gogoc/files/gogoc-openwrt", "../gogoc/scripts/postinst", "../gogoc/scripts/post-upgrade", "../gogoc/scripts/prerm",
		"../luci-app-gogoc/scripts/postinst", "../luci-app-gogoc/scripts/post-upgrade", "../luci-app-gogoc/scripts/prerm",
		"testdata/openwrt/etc/rc.common",
		"testdata/openwrt/lib/functions.sh", "testdata/openwrt/lib/functions/procd.sh",
		"../../scripts/cross.sh", "../../scripts/packages.sh", "../../scripts/version.sh", "../../scripts/size.sh",
		"../../scripts/test-cross.sh",
	}
	out, err := exec.Command(sc, append([]string{"-x"}, files...)...).CombinedOutput()
	if err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
}
