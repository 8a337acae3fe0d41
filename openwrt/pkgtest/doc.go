// Package pkgtest holds the tests of the OpenWrt packaging in openwrt/:
// the ipk and apk files scripts/packages.sh builds, the procd init, hotplug,
// uci-defaults and maintainer scripts run against stubbed OpenWrt helpers,
// and the LuCI view rendered in headless Chromium. It has no code of its
// own.
package pkgtest
