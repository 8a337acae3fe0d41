# shellcheck shell=bash
# Debian packages for the project's scripts (sourced): which are missing,
# and installing them. One apt runs at a time among the scripts (CI builds
# the mips kernel beside the other lanes, and dpkg's own lock does not
# cover apt-get update's lists).

# apt_missing PKG... prints those of PKG... that are not installed, with
# one dpkg-query for all: a second run of a script installs nothing and
# costs next to nothing.
apt_missing() {
	dpkg-query -W -f '${db:Status-Status} ${Package}\n' "$@" 2>/dev/null |
		awk '$1 == "installed" { print $2 }' | sort | comm -13 - <(printf '%s\n' "$@" | sort -u)
}

# apt_install [APT-OPTION...] PKG... installs as root. The package lists
# of a fresh machine may be missing or stale: they are updated when the
# first attempt fails, and the install is tried once more, showing its
# errors.
apt_install() {
	local apt=(flock /var/lib/apt/gogoc.lock apt-get -o DPkg::Lock::Timeout=600 -y -qq)
	export DEBIAN_FRONTEND=noninteractive
	"${apt[@]}" install "$@" >/dev/null 2>&1 ||
		{ "${apt[@]}" update && "${apt[@]}" install "$@" >/dev/null; }
}
