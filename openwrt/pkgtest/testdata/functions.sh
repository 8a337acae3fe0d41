#!/bin/sh
# Stand-in for OpenWrt's /lib/functions.sh: config_load and config_get on
# top of `uci` (the test's fake), and default_postinst/default_prerm that
# only record their call in $GOGOC_TEST_LOG.
# shellcheck shell=dash
CONFIG_PACKAGE=
config_load() { CONFIG_PACKAGE=$1; }
# The locals have names no caller uses: the assignment by name would
# otherwise land in them.
config_get() { # var section option [default]
	local _cg_v
	_cg_v=$(uci -q get "$CONFIG_PACKAGE.$2.$3") || _cg_v=${4:-}
	[ -n "$_cg_v" ] || _cg_v=${4:-}
	eval "$1=\$_cg_v"
}
config_get_bool() { # var section option [default]
	local _cgb_v
	config_get _cgb_v "$2" "$3" "${4:-0}"
	case $_cgb_v in
	1 | on | true | yes | enabled) _cgb_v=1 ;;
	*) _cgb_v=0 ;;
	esac
	eval "$1=\$_cgb_v"
}
default_postinst() { printf 'default_postinst|%s\n' "$*" >>"$GOGOC_TEST_LOG"; }
default_prerm() { printf 'default_prerm|%s\n' "$*" >>"$GOGOC_TEST_LOG"; }
