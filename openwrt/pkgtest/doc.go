// Package pkgtest holds the tests of the OpenWrt packaging in openwrt/:
// the ipk and apk files scripts/packages.sh builds, the procd init, hotplug,
// uci-defaults and maintainer scripts run against stubbed OpenWrt helpers,
// and the LuCI view rendered in headless Chromium on a stand-in of
// luci-base's client runtime (testdata/luci/shim.js) talking to a stand-in
// of uhttpd, rpcd and LuCI's apply (luci_rpcd_test.go). It has no code of
// its own.
package pkgtest
