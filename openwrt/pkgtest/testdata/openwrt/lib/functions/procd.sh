# shellcheck shell=dash
# Stand-in for OpenWrt's /lib/functions/procd.sh (package/system/procd),
# for the package tests' chroot. The message is built as the real one
# builds it with jshn (a small JSON writer here instead of libubox's jshn
# binary) and sent with `ubus call service set|delete <json>`, where the
# test's ubus records it. Parameters are typed as procd.sh types them:
# command, file, respawn, netdev as arrays; env, data, limits as tables;
# term_timeout, nice as numbers; user, group, capabilities, seccomp,
# pidfile as strings; stdout, stderr, no_new_privs as booleans;
# procd_add_jail adds a "jail" object with the name, a boolean per flag
# given (log, ubus, procfs, sysfs, ronly, requirejail, netns, userns,
# cgroupsns) and an empty "mount" object. procd_lock takes the real lock
# file with flock, as procd.sh does when it is sourced. A respawn without values gets procd.sh's defaults.
# procd_lock keeps procd.sh's own text: busybox ash has &> and fd 1000.
# shellcheck disable=SC2034,SC2086,SC2154,SC2155,SC2181,SC3020,SC3023,SC3043

_J='' _J_first=1
json_init() { _J='{' _J_first=1; }
_json_key() {
	[ "$_J_first" = 1 ] || _J="$_J,"
	_J_first=0
	[ -z "$1" ] || _J="$_J\"$1\":"
}
json_add_string() {
	_json_key "$1"
	case $2 in
	*[\\\"]*) _J="$_J\"$(printf '%s' "$2" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')\"" ;;
	*) _J="$_J\"$2\"" ;;
	esac
}
json_add_int() { _json_key "$1"; _J="$_J$2"; }
json_add_boolean() {
	_json_key "$1"
	case $2 in 1) _J="${_J}true" ;; *) _J="${_J}false" ;; esac
}
json_add_object() { _json_key "$1"; _J="$_J{" _J_first=1; }
json_close_object() { _J="$_J}" _J_first=0; }
json_add_array() { _json_key "$1"; _J="${_J}[" _J_first=1; }
json_close_array() { _J="$_J]" _J_first=0; }
json_dump() { printf '%s}\n' "$_J"; }

# procd_lock as procd.sh's: a script that already holds the lock on fd
# 1000 (an init script run from another) keeps it, any other waits for it.
procd_lock() {
	local basescript=$(readlink "$initscript")
	local service_name="$(basename ${basescript:-$initscript})"

	flock -n 1000 &> /dev/null
	if [ "$?" != "0" ]; then
		exec 1000>"$IPKG_INSTROOT/var/lock/procd_${service_name}.lock"
		flock 1000
		if [ "$?" != "0" ]; then
			logger "warning: procd flock for $service_name failed"
		fi
	fi
}

_procd_ubus_call() { ubus call service "$1" "$(json_dump)"; }

procd_open_service() {
	_PROCD_SERVICE="$1"
	_PROCD_INSTANCE_SEQ=0
	json_init
	json_add_string name "$1"
	[ -n "$2" ] && json_add_string script "$2"
	json_add_object instances
}

procd_close_service() {
	json_close_object
	json_add_array triggers
	service_triggers
	json_close_array
	_procd_ubus_call "${1:-set}"
}

procd_open_instance() {
	_PROCD_INSTANCE_SEQ=$((_PROCD_INSTANCE_SEQ + 1))
	json_add_object "${1:-instance$_PROCD_INSTANCE_SEQ}"
	_PROCD_RESPAWN_SET=
}

procd_close_instance() { json_close_object; }

_procd_add_array() {
	json_add_array "$1"
	shift
	for v in "$@"; do json_add_string "" "$v"; done
	json_close_array
}

procd_set_param() {
	local type="$1"
	shift
	case "$type" in
	env | data | limits)
		json_add_object "$type"
		for kv in "$@"; do json_add_string "${kv%%=*}" "${kv#*=}"; done
		json_close_object
		;;
	respawn)
		[ $# -gt 0 ] || set -- 3600 5 5
		_procd_add_array respawn "$@"
		;;
	command | netdev | file | watch | watchdog) _procd_add_array "$type" "$@" ;;
	nice | term_timeout) json_add_int "$type" "$1" ;;
	pidfile | user | group | seccomp | capabilities | facility | extroot | overlaydir | tmpoverlaysize | vrf)
		json_add_string "$type" "$1"
		;;
	stdout | stderr | no_new_privs) json_add_boolean "$type" "$1" ;;
	esac
}

procd_add_jail() {
	json_add_object jail
	json_add_string name "$1"
	shift
	for a in "$@"; do
		case $a in
		log | ubus | udebug | procfs | sysfs | ronly | requirejail | netns | userns | cgroupsns)
			json_add_boolean "$a" 1
			;;
		esac
	done
	json_add_object mount
	json_close_object
	json_close_object
}

_procd_trigger() { # event match-key match-value script...
	json_add_array ""
	json_add_string "" "$1"
	json_add_array ""
	json_add_string "" if
	json_add_array ""
	json_add_string "" eq
	json_add_string "" "$2"
	json_add_string "" "$3"
	json_close_array
	shift 3
	_procd_add_array "" run_script "$@"
	json_close_array
	json_add_int "" 1000
	json_close_array
}

procd_add_reload_trigger() {
	local script=$(readlink "$initscript")
	local name=$(basename ${script:-$initscript})
	for file in "$@"; do _procd_trigger config.change package "$file" "/etc/init.d/$name" reload; done
}

procd_add_reload_interface_trigger() {
	local script=$(readlink "$initscript")
	local name=$(basename ${script:-$initscript})
	_procd_trigger "interface.*" interface "$1" "/etc/init.d/$name" reload
}

procd_kill() {
	json_init
	[ -n "$1" ] && json_add_string name "$1"
	[ -n "$2" ] && json_add_string instance "$2"
	_procd_ubus_call delete
}

# procd.sh takes the service's lock when it is sourced (_procd_wrapper).
procd_lock
