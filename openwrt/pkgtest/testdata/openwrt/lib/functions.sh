# shellcheck shell=dash
# Stand-in for OpenWrt's /lib/functions.sh (package/base-files), for the
# package tests, which run it in a chroot so its absolute paths are the
# router's. Written from the real file; what it models and how:
#  - default_postinst, default_prerm, add_group_and_user, group_add,
#    group_exists, group_add_next, group_add_user, user_add, user_exists:
#    the real behaviour, including guessing the package name from $1
#    (basename without the last .suffix) when $pkgname is unset, which is
#    what breaks scripts that apk runs from /proc/self/fd/N; preferring
#    /lib/apk/packages/<name>.list (apk) over opkg's info list; calling
#    add_group_and_user only for opkg (apk's generated script calls it);
#    running uci-defaults and removing them on success; enabling the init
#    scripts unless PKG_UPGRADE=1 and starting them; and in default_prerm
#    sourcing opkg's prerm-pkg first, then disabling (unless upgrading)
#    and stopping. `lock` is OpenWrt busybox's applet: the test provides it.
#  - config_load/config_get/config_get_bool/get_bool: read through `uci
#    get` instead of `uci -S -n export` and eval; get_bool maps unknown
#    values to the default as the real one does.
# shellcheck disable=SC1090,SC2013,SC2086,SC2155,SC3043

config_load() {
	[ -n "$IPKG_INSTROOT" ] && return 0
	CONFIG_PACKAGE=$1
}

config_get() { # var section option [default]
	local _cg_v
	_cg_v=$(uci -q get "$CONFIG_PACKAGE.$2.$3") || _cg_v=${4:-}
	[ -n "$_cg_v" ] || _cg_v=${4:-}
	eval "$1=\$_cg_v"
}

get_bool() {
	local _tmp="$1"
	case "$_tmp" in
	1 | on | true | yes | enabled) _tmp=1 ;;
	0 | off | false | no | disabled) _tmp=0 ;;
	*) _tmp="$2" ;;
	esac
	printf '%s' "$_tmp"
}

config_get_bool() {
	local _tmp
	config_get _tmp "$2" "$3" "$4"
	_tmp="$(get_bool "$_tmp" "$4")"
	eval "$1=\$_tmp"
}

default_prerm() {
	local root="${IPKG_INSTROOT}"
	[ -z "$pkgname" ] && local pkgname="$(basename ${1%.*})"
	local ret=0
	local filelist="${root}/usr/lib/opkg/info/${pkgname}.list"
	[ -f "$root/lib/apk/packages/${pkgname}.list" ] && filelist="$root/lib/apk/packages/${pkgname}.list"
	if [ -f "$root/usr/lib/opkg/info/${pkgname}.prerm-pkg" ]; then
		(. "$root/usr/lib/opkg/info/${pkgname}.prerm-pkg")
		ret=$?
	fi
	for i in $(grep -s "^/etc/init.d/" "$filelist"); do
		if [ -n "$root" ]; then
			/bin/sh "$root/etc/rc.common" "$root$i" disable
		else
			[ "$PKG_UPGRADE" = "1" ] || "$i" disable
			"$i" stop
		fi
	done
	return $ret
}

add_group_and_user() {
	[ -z "$pkgname" ] && local pkgname="$(basename ${1%.*})"
	local rusers="$(sed -ne 's/^Require-User: *//p' $root/usr/lib/opkg/info/${pkgname}.control 2>/dev/null)"
	[ -f "$root/lib/apk/packages/${pkgname}.rusers" ] && rusers="$(cat $root/lib/apk/packages/${pkgname}.rusers)"
	[ -n "$rusers" ] || return 0
	local tuple uid gid uname gname oIFS="$IFS"
	for tuple in $rusers; do
		IFS=":"
		set -- $tuple
		uname="$1" gname="$2"
		IFS="="
		set -- $uname
		uname="$1" uid="$2"
		set -- $gname
		gname="$1" gid="$2"
		IFS="$oIFS"
		if [ -n "$gname" ] && [ -n "$gid" ]; then
			group_exists "$gname" || group_add "$gname" "$gid"
		elif [ -n "$gname" ]; then
			gid="$(group_add_next "$gname")"
		fi
		if [ -n "$uname" ]; then
			user_exists "$uname" || user_add "$uname" "$uid" "$gid"
		fi
		if [ -n "$uname" ] && [ -n "$gname" ]; then
			group_add_user "$gname" "$uname"
		fi
	done
}

default_postinst() {
	local root="${IPKG_INSTROOT}"
	[ -z "$pkgname" ] && local pkgname="$(basename ${1%.*})"
	local filelist="${root}/usr/lib/opkg/info/${pkgname}.list"
	[ -f "$root/lib/apk/packages/${pkgname}.list" ] && filelist="$root/lib/apk/packages/${pkgname}.list"
	local ret=0
	if [ -e "${root}/usr/lib/opkg/info/${pkgname}.list" ]; then
		filelist="${root}/usr/lib/opkg/info/${pkgname}.list"
		add_group_and_user "${pkgname}"
	fi
	if [ -z "$root" ] && grep -m1 -q -s "^/etc/uci-defaults/" "$filelist"; then
		mkdir -p /tmp/.uci
		for i in $(grep -s "^/etc/uci-defaults/" "$filelist"); do
			([ -f "$i" ] && cd "$(dirname $i)" && . "$i") && rm -f "$i"
		done
		uci commit
	fi
	if [ -f "$root/usr/lib/opkg/info/${pkgname}.postinst-pkg" ]; then
		(. "$root/usr/lib/opkg/info/${pkgname}.postinst-pkg")
		ret=$?
	fi
	for i in $(grep -s "^/etc/init.d/" "$filelist"); do
		if [ -n "$root" ]; then
			/bin/sh "$root/etc/rc.common" "$root$i" enable
		else
			[ "$PKG_UPGRADE" = "1" ] || "$i" enable
			"$i" start
		fi
	done
	return $ret
}

group_add() {
	[ -f "${IPKG_INSTROOT}/etc/group" ] || return 1
	[ -n "$IPKG_INSTROOT" ] || lock /var/lock/group
	echo "${1}:x:${2}:" >>"${IPKG_INSTROOT}/etc/group"
	[ -n "$IPKG_INSTROOT" ] || lock -u /var/lock/group
}

group_exists() { grep -qs "^${1}:" "${IPKG_INSTROOT}/etc/group"; }

group_add_next() {
	local gid gids
	gid=$(grep -s "^${1}:" "${IPKG_INSTROOT}/etc/group" | cut -d: -f3)
	if [ -n "$gid" ]; then
		echo "$gid"
		return
	fi
	gids=$(cut -d: -f3 "${IPKG_INSTROOT}/etc/group")
	gid=32768
	while echo "$gids" | grep -q "^$gid$"; do gid=$((gid + 1)); done
	group_add "$1" "$gid"
	echo "$gid"
}

group_add_user() {
	local grp delim=","
	grp=$(grep -s "^${1}:" "${IPKG_INSTROOT}/etc/group")
	echo "$grp" | cut -d: -f4 | grep -q "$2" && return
	echo "$grp" | grep -q ":$" && delim=""
	[ -n "$IPKG_INSTROOT" ] || lock /var/lock/passwd
	sed -i "s/$grp/$grp$delim$2/g" "${IPKG_INSTROOT}/etc/group"
	[ -n "$IPKG_INSTROOT" ] || lock -u /var/lock/passwd
}

user_add() {
	local name="$1" uid="$2" gid="$3" desc="${4:-$1}" home="${5:-/var/run/$1}" shell="${6:-/bin/false}" uids
	if [ -z "$uid" ]; then
		uids=$(cut -d: -f3 "${IPKG_INSTROOT}/etc/passwd")
		uid=32768
		while echo "$uids" | grep -q "^$uid$"; do uid=$((uid + 1)); done
	fi
	[ -z "$gid" ] && gid=$uid
	[ -f "${IPKG_INSTROOT}/etc/passwd" ] || return 1
	[ -n "$IPKG_INSTROOT" ] || lock /var/lock/passwd
	echo "${name}:x:${uid}:${gid}:${desc}:${home}:${shell}" >>"${IPKG_INSTROOT}/etc/passwd"
	echo "${name}:x:0:0:99999:7:::" >>"${IPKG_INSTROOT}/etc/shadow"
	[ -n "$IPKG_INSTROOT" ] || lock -u /var/lock/passwd
}

user_exists() { grep -qs "^${1}:" "${IPKG_INSTROOT}/etc/passwd"; }
