'use strict';
'require view';
'require form';
'require fs';
'require poll';
'require uci';

// Settings for /etc/config/gogoc and a live status block read from the
// daemon's status JSON. The checks mirror gogoc's config package (keys.go,
// validate.go, server.go), so LuCI refuses what `gogoc check` would.

// The status file lives in STATUS_DIR: the only place the app's rpcd ACL
// lets this page read, and the only place config/ accepts status_file.
var STATUS_DIR = '/var/run/gogoc';
var STATUS_FILE = STATUS_DIR + '/status.json';

var STATES = {
	idle: _('Idle'),
	negotiating: _('Negotiating with the broker'),
	up: _('Connected'),
	lost: _('Tunnel lost, reconnecting'),
	backoff: _('Waiting before the next attempt'),
	stopped: _('Stopped')
};

function isDigits(v) { return /^[0-9]+$/.test(v); }

// range mirrors parseNumber: decimal digits only, within min..max.
function range(min, max) {
	return function(sid, v) {
		if (v == null || v === '')
			return true;
		if (!isDigits(v) || +v < min || +v > max)
			return _('Expecting a whole number in %d..%d').replace('%d', min).replace('%d', max);
		return true;
	};
}

function charset(v, punct) {
	for (var i = 0; i < v.length; i++) {
		var c = v.charAt(i);
		if (!/[A-Za-z0-9]/.test(c) && punct.indexOf(c) < 0)
			return false;
	}
	return true;
}

function printable(v, max) {
	if (v.length > max)
		return false;
	for (var i = 0; i < v.length; i++) {
		var c = v.charCodeAt(i);
		if (c < 0x20 || c > 0x7e)
			return false;
	}
	return true;
}

function isIPv4(v) {
	var m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(v);
	if (!m)
		return false;
	for (var i = 1; i <= 4; i++)
		if (+m[i] > 255 || String(+m[i]) !== m[i])
			return false;  // canonical dotted quad only, as config/ wants
	return true;
}

// parseIPv6 returns the 8 groups of an IPv6 address (an embedded IPv4
// tail allowed), or null.
function parseIPv6(v) {
	if (!/^[0-9A-Fa-f:.]+$/.test(v) || v.indexOf(':') < 0)
		return null;
	var tail = [];
	var m = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(v);
	if (m) {
		if (!isIPv4(m[2]))
			return null;
		var o = m[2].split('.').map(Number);
		tail = [ (o[0] << 8 | o[1]).toString(16), (o[2] << 8 | o[3]).toString(16) ];
		v = m[1].slice(-2) === '::' ? m[1] : m[1].slice(0, -1);
	}
	var halves = v.split('::');
	if (halves.length > 2)
		return null;
	var head = halves[0] ? halves[0].split(':') : [];
	var rest = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
	var groups = head.concat(rest);
	for (var i = 0; i < groups.length; i++)
		if (!/^[0-9A-Fa-f]{1,4}$/.test(groups[i]))
			return null;
	var n = head.length + rest.length + tail.length;
	if (halves.length === 2) {
		if (n > 7)
			return null;
		var zeros = [];
		for (var j = 0; j < 8 - n; j++)
			zeros.push('0');
		return head.concat(zeros, rest, tail).map(function(g) { return parseInt(g, 16); });
	}
	if (n !== 8)
		return null;
	return head.concat(tail).map(function(g) { return parseInt(g, 16); });
}

// checkHost mirrors config.checkHost: a dotted quad or a DNS name.
function checkHost(h) {
	if (h === '')
		return _('No host before the port');
	if (/^[0-9.]+$/.test(h))
		return isIPv4(h) ? true : _('Not a valid IPv4 address');
	var name = h.replace(/\.$/, '');
	if (name.length > 253)
		return _('Host name longer than 253 characters');
	var labels = name.split('.');
	for (var i = 0; i < labels.length; i++) {
		var l = labels[i];
		if (l === '')
			return _('Empty label in host name');
		if (l.length > 63)
			return _('Host name label longer than 63 characters');
		if (l.charAt(0) === '-' || l.charAt(l.length - 1) === '-')
			return _('Host name label starts or ends with "-"');
	}
	return true;
}

// validateServer mirrors config.SplitServer.
function validateServer(sid, v) {
	if (v == null || v === '')
		return _('Set the broker as host, host:port or [IPv6]:port');
	if (v.length > 1025 || !charset(v, '-.:[]'))
		return _('Allowed are letters, digits and - . : [ ]');
	var port = null;
	if (v.charAt(0) === '[') {
		var end = v.indexOf(']');
		if (end < 0)
			return _('No closing ]');
		if (!parseIPv6(v.substring(1, end)))
			return _('Brackets must hold an IPv6 address');
		var rest = v.substring(end + 1);
		if (rest !== '') {
			if (rest.charAt(0) !== ':')
				return _('Only :port may follow ]');
			port = rest.substring(1);
		}
	}
	else {
		if (/[\[\]]/.test(v))
			return _('Brackets go around an IPv6 address, as in [2001:db8::1]:3653');
		var parts = v.split(':');
		if (parts.length > 2)
			return _('Looks like an IPv6 address: put it in brackets');
		if (parts.length === 2)
			port = parts[1];
		var h = checkHost(parts[0]);
		if (h !== true)
			return h;
	}
	if (port !== null && (!isDigits(port) || +port < 1 || +port > 65535))
		return _('The port must be a number in 1..65535');
	return true;
}

function ifname(punct) {
	return function(sid, v) {
		if (v == null || v === '')
			return true;
		if (v.length > 15)
			return _('Longer than 15 characters, the Linux limit for interface names');
		if (v === '.' || v === '..' || !charset(v, punct))
			return _('Allowed are letters, digits and %s').replace('%s', punct.split('').join(' '));
		return true;
	};
}

function filename(sid, v) {
	if (v == null || v === '')
		return true;
	return (v.length <= 256 && charset(v, '-_./\\')) ? true : _('Allowed are letters, digits and - _ . / \\');
}

// statusFile mirrors config's status_file rule: a file directly in
// STATUS_DIR, so the page can read what the daemon writes.
function statusFile(sid, v) {
	if (v == null || v === '')
		return true;
	var name = v.indexOf(STATUS_DIR + '/') === 0 ? v.substring(STATUS_DIR.length + 1) : null;
	if (name == null || name === '' || name === '.' || name === '..' || v.length > 256 || !charset(name, '-_.'))
		return _('Must be a file in %s/ (letters, digits, - _ .): the only place this page may read').replace('%s', STATUS_DIR);
	return true;
}

function formvalue(opt, sid, name) {
	var v = opt.section.formvalue(sid, name);
	if (v == null || v === '') {
		var o = opt.map.lookupOption(name, sid);
		v = (o && o[0]) ? o[0].default : v;
	}
	return v;
}

function formatDuration(s) {
	s = Math.max(0, Math.floor(s));
	var d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
	var out = (d ? d + 'd ' : '') + ((d || h) ? h + 'h ' : '') + m + 'm ' + (s % 60) + 's';
	return out;
}

// Everything in the status file is data: the broker's own words reach
// last_error, and LuCI's E() turns a lone string child into markup. So
// every value goes in as a text node, and every field is checked for
// its type; a field of the wrong type is named, not shown.
function text(v) {
	return document.createTextNode(String(v));
}

function isObject(v) {
	return v != null && typeof v === 'object' && !Array.isArray(v);
}

function statusRows(st, now) {
	var rows = [], ignored = [];
	var add = function(key, label, value) {
		if (value != null && value !== '')
			rows.push(E('tr', { 'class': 'tr', 'data-field': key }, [
				E('td', { 'class': 'td left', 'width': '33%' }, [ text(label) ]),
				E('td', { 'class': 'td left' }, [ text(value) ])
			]));
	};
	// str and count return a field of the right type, else null, and
	// note a field that is there with another type.
	var str = function(obj, key, name) {
		var v = obj[key];
		if (v == null || v === '')
			return null;
		if (typeof v !== 'string') {
			ignored.push(name || key);
			return null;
		}
		return v;
	};
	var count = function(obj, key, name, whole) {
		var v = obj[key];
		if (v == null)
			return null;
		if (typeof v !== 'number' || !isFinite(v) || v < 0 || (whole && Math.floor(v) !== v)) {
			ignored.push(name || key);
			return null;
		}
		return v;
	};

	add('state', _('State'), (STATES.hasOwnProperty(st.state) ? STATES[st.state] : _('Unknown state')) + ' (' + st.state + ')');
	var since = str(st, 'since');
	if (since != null) {
		var t = Date.parse(since);
		if (isNaN(t))
			ignored.push('since');
		else
			add('uptime', st.state === 'up' ? _('Up for') : _('In this state for'), formatDuration((now - t) / 1000));
	}
	var broker = str(st, 'broker'), transport = str(st, 'transport');
	add('broker', _('Broker'), broker ? broker + (transport ? ' (' + transport + ')' : '') : '');
	var mode = str(st, 'tunnel_mode'), plane = str(st, 'data_plane');
	add('tunnel_mode', _('Tunnel mode'), mode ? mode + (plane ? ', ' + plane : '') : '');
	add('interface', _('Interface'), str(st, 'interface'));
	var local = str(st, 'local_endpoint'), remote = str(st, 'remote_endpoint');
	add('endpoints', _('Endpoints'), local ? local + ' ⇄ ' + (remote || '?') : '');
	add('client_ipv6', _('Client IPv6'), str(st, 'client_ipv6'));
	add('server_ipv6', _('Server IPv6'), str(st, 'server_ipv6'));
	add('client_ipv4', _('Client IPv4'), str(st, 'client_ipv4'));
	add('server_ipv4', _('Server IPv4'), str(st, 'server_ipv4'));
	add('prefix', _('Delegated prefix'), str(st, 'prefix'));
	add('lan_prefix', _('LAN prefix'), str(st, 'lan_prefix'));
	if (st.keepalive != null) {
		if (!isObject(st.keepalive)) {
			ignored.push('keepalive');
		}
		else {
			var ka = st.keepalive,
			    rtt = count(ka, 'rtt_ms', 'keepalive.rtt_ms', false),
			    sent = count(ka, 'sent', 'keepalive.sent', true),
			    lost = count(ka, 'lost', 'keepalive.lost', true);
			if (rtt != null || sent != null || lost != null)
				add('keepalive', _('Keepalive'), (rtt != null ? rtt.toFixed(2) + ' ms RTT, ' : '') +
					(sent || 0) + ' sent, ' + (lost || 0) + ' lost');
		}
	}
	add('reconnects', _('Reconnects'), count(st, 'reconnects', null, true));
	add('last_error', _('Last error'), str(st, 'last_error'));
	add('ignored', _('Ignored (wrong type)'), ignored.join(', '));
	return rows;
}

// statusError says why there is no status to show, from the error
// fs.read gives (rpcd's status code as LuCI names it).
function statusError(path, err) {
	switch (err && err.name) {
	case 'NotFoundError':
		return [ 'not-running', _('gogoc is not running (no status file %s)').replace('%s', path) ];
	case 'PermissionError':
		return [ 'denied', _('Permission denied reading %s: this page may read the status only in %d/, where status_file belongs')
			.replace('%s', path).replace('%d', STATUS_DIR) ];
	case 'NoDataError':
		return [ 'unreadable', _('Unreadable status in %s: the file is empty').replace('%s', path) ];
	default:
		return [ 'error', _('Cannot read %s: %e').replace('%s', path).replace('%e', (err && err.message) || String(err)) ];
	}
}

return view.extend({
	load: function() {
		return uci.load('gogoc');
	},

	// statusPath is the saved status_file as given: rpcd decides what the
	// page may read, and statusError says so when it may not.
	statusPath: function() {
		var p = uci.get('gogoc', 'main', 'status_file');
		return (typeof p === 'string' && p !== '') ? p : STATUS_FILE;
	},

	updateStatus: function(node) {
		var path = this.statusPath();
		var show = function(state, message) {
			node.setAttribute('data-state', state);
			node.replaceChildren(E('em', {}, [ text(message) ]));
		};
		return fs.read(path).then(function(data) {
			var st;
			try {
				st = JSON.parse(data);
			}
			catch (e) {
				return show('unreadable', _('Unreadable status in %s: %e').replace('%s', path).replace('%e', e.message));
			}
			if (!isObject(st))
				return show('unreadable', _('Unreadable status in %s: not a JSON object').replace('%s', path));
			if (typeof st.state !== 'string' || st.state === '')
				return show('unreadable', _('Unreadable status in %s: no state').replace('%s', path));
			node.setAttribute('data-state', STATES.hasOwnProperty(st.state) ? st.state : 'unknown');
			node.replaceChildren(E('table', { 'class': 'table' }, statusRows(st, Date.now())));
		}, function(err) {
			var e = statusError(path, err);
			show(e[0], e[1]);
		});
	},

	render: function() {
		var m, s, o;
		var self = this;

		m = new form.Map('gogoc', _('IPv6 tunnel broker'),
			_('gogoc connects to a TSP tunnel broker (RFC 5572) and brings IPv6 to this router and, in router mode, to the LAN.'));

		s = m.section(form.NamedSection, 'main', 'gogoc');
		s.addremove = false;
		s.tab('connection', _('Connection'));
		s.tab('router', _('Router'));
		s.tab('advanced', _('Advanced'));
		s.tab('logging', _('Logging'));

		o = s.taboption('connection', form.Flag, 'enabled', _('Enable'));
		o.default = '0';
		o.rmempty = false;

		o = s.taboption('connection', form.Value, 'server', _('Broker'),
			_('host, host:port, A.B.C.D:port or [IPv6]:port; the port defaults to 3653'));
		o.rmempty = false;
		o.validate = validateServer;

		o = s.taboption('connection', form.ListValue, 'auth_method', _('Authentication'));
		o.value('any', _('Strongest the broker offers'));
		o.value('passdss-3des-1', 'PASSDSS-3DES-1');
		o.value('digest-md5', 'DIGEST-MD5');
		o.value('plain', _('PLAIN (password in clear)'));
		o.value('anonymous', _('Anonymous'));
		o.default = 'any';

		o = s.taboption('connection', form.Value, 'userid', _('User name'));
		o.depends({ auth_method: 'anonymous', '!reverse': true });
		o.validate = function(sid, v) {
			if (v == null || v === '')
				return formvalue(this, sid, 'auth_method') === 'anonymous' ? true : _('This authentication needs a user name');
			return printable(v, 253) ? true : _('At most 253 printable ASCII characters');
		};

		o = s.taboption('connection', form.Value, 'passwd', _('Password'));
		o.password = true;
		o.depends({ auth_method: 'anonymous', '!reverse': true });
		o.validate = function(sid, v) {
			if (v == null || v === '')
				return formvalue(this, sid, 'auth_method') === 'anonymous' ? true : _('This authentication needs a password');
			return printable(v, 128) ? true : _('At most 128 printable ASCII characters');
		};

		o = s.taboption('connection', form.ListValue, 'server_key_policy', _('Broker key check (PASSDSS)'));
		o.value('strict', _('Known keys only'));
		o.value('tofu', _('Remember the first key'));
		o.value('accept', _('Accept any key'));
		o.default = 'strict';

		o = s.taboption('router', form.ListValue, 'host_type', _('Mode'));
		o.value('host', _('Host: one address for this router'));
		o.value('router', _('Router: also a prefix for the LAN'));
		o.default = 'host';

		o = s.taboption('router', form.Value, 'prefixlen', _('Prefix length'),
			_('Requested prefix length; 64 or shorter leaves a /64 for the LAN'));
		o.placeholder = '64';
		o.depends('host_type', 'router');
		o.validate = function(sid, v) {
			var r = range(1, 128)(sid, v);
			if (r !== true)
				return r;
			if (v && +v > 64 && formvalue(this, sid, 'tunnel_mode') !== 'v4v6')
				return _('Leaves no /64 for the LAN; ask for 64 or shorter');
			return true;
		};

		o = s.taboption('router', form.Value, 'if_prefix', _('LAN device'),
			_('Device that gets the prefix and the Router Advertisements'));
		o.placeholder = 'br-lan';
		o.depends('host_type', 'router');
		o.validate = function(sid, v) {
			if ((v == null || v === '') && formvalue(this, sid, 'host_type') === 'router')
				return _('Router mode needs the LAN device (e.g. br-lan)');
			return ifname('-_.')(sid, v);
		};

		o = s.taboption('router', form.Value, 'subnet_id', _('Subnet ID'), _('Which /64 of the prefix goes on the LAN, in hex'));
		o.placeholder = '0';
		o.depends('host_type', 'router');
		o.validate = function(sid, v) {
			if (v == null || v === '')
				return true;
			var h = v.replace(/^0[xX]/, '');
			if (!/^[0-9A-Fa-f]{1,16}$/.test(h))
				return _('Expecting a hexadecimal number below 2^64');
			// The subnet must fit between the delegated prefix and /64.
			var plen = formvalue(this, sid, 'prefixlen') || '64';
			if (formvalue(this, sid, 'tunnel_mode') !== 'v4v6' && isDigits(plen) && +plen >= 1 && +plen <= 64) {
				var max = (BigInt(1) << BigInt(64 - plen)) - BigInt(1);
				if (BigInt('0x' + h) > max)
					return _('Does not fit a /%d prefix (0..%x)').replace('%d', plen).replace('%x', max.toString(16));
			}
			return true;
		};

		o = s.taboption('router', form.ListValue, 'ra', _('Router Advertisements'),
			_('builtin: gogoc advertises the prefix and turns odhcpd\'s RAs off on that LAN while it runs; none: leave it to odhcpd or radvd'));
		o.value('builtin', _('gogoc sends them'));
		o.value('none', _('Leave to odhcpd / radvd'));
		o.default = 'builtin';
		o.depends('host_type', 'router');

		o = s.taboption('router', form.DynamicList, 'dns_servers_ra', _('DNS servers to announce'));
		o.depends('host_type', 'router');
		o.validate = function(sid, v) {
			if (v == null || v === '')
				return true;
			var g = /^\[/.test(v) || /%/.test(v) ? null : parseIPv6(v);
			if (!g)
				return _('Expecting an IPv6 address (no brackets)');
			var global = (g[0] & 0xe000) === 0x2000 || (g[0] & 0xfe00) === 0xfc00;
			var linklocal = (g[0] & 0xffc0) === 0xfe80;
			return (global || linklocal) ? true : _('Expecting a unicast IPv6 address');
		};

		o = s.taboption('router', form.Value, 'route_metric', _('Route metric'));
		o.placeholder = '1024';
		o.validate = range(0, 2147483647);

		o = s.taboption('advanced', form.ListValue, 'tunnel_mode', _('Tunnel mode'));
		o.value('v6anyv4', _('IPv6 over IPv4, broker chooses (works behind NAT)'));
		o.value('v6v4', _('IPv6 in IPv4 (protocol 41)'));
		o.value('v6udpv4', _('IPv6 in UDP over IPv4 (through NAT)'));
		o.value('v4v6', _('IPv4 over IPv6'));
		o.default = 'v6anyv4';
		o.validate = function(sid, v) {
			// As config/: router mode needs a delegated IPv6 prefix.
			if (v === 'v4v6' && formvalue(this, sid, 'host_type') === 'router')
				return _('v4v6 delegates no IPv6 prefix: use another mode, or host_type host');
			return true;
		};

		o = s.taboption('advanced', form.ListValue, 'data_plane', _('Data plane'));
		o.value('auto', _('Kernel tunnel when available, else userspace'));
		o.value('kernel', _('Kernel (sit, fou, ip6tnl)'));
		o.value('userspace', _('Userspace (TUN)'));
		o.default = 'auto';

		o = s.taboption('advanced', form.Flag, 'keepalive', _('Keepalive'));
		o.default = '1';
		o.rmempty = false;
		o.validate = function(sid, v) {
			// A checkbox's validator is handed the input's value attribute,
			// '1' ticked or not: the ticked state is the option's formvalue.
			if (this.formvalue(sid) === '0' && formvalue(this, sid, 'tunnel_mode') === 'v6udpv4')
				return _('v6udpv4 needs keepalive on: without it the NAT mapping expires');
			return true;
		};

		o = s.taboption('advanced', form.Value, 'keepalive_interval', _('Keepalive interval (s)'));
		o.placeholder = '30';
		o.validate = function(sid, v) {
			var r = range(0, 86400)(sid, v);
			if (r !== true)
				return r;
			if (v === '0' || (v != null && v !== '' && +v === 0))
				return formvalue(this, sid, 'keepalive') === '0' ? true : _('Must be 1 or more while keepalive is on');
			return true;
		};

		o = s.taboption('advanced', form.Value, 'keepalive_timeout', _('Echo reply timeout (s)'));
		o.placeholder = '5';
		o.validate = range(1, 60);

		o = s.taboption('advanced', form.Value, 'keepalive_misses', _('Missed echoes before reconnecting'));
		o.placeholder = '3';
		o.validate = range(1, 100);

		o = s.taboption('advanced', form.Flag, 'auto_retry_connect', _('Reconnect automatically'));
		o.default = '1';

		o = s.taboption('advanced', form.Value, 'retry_delay', _('First retry delay (s)'));
		o.placeholder = '30';
		o.validate = function(sid, v) {
			var r = range(0, 3600)(sid, v);
			if (r !== true)
				return r;
			var max = formvalue(this, sid, 'retry_delay_max');
			if (max == null || max === '')
				max = '300';
			if (v != null && v !== '' && isDigits(max) && +v > +max)
				return _('Greater than the maximum retry delay');
			return true;
		};

		o = s.taboption('advanced', form.Value, 'retry_delay_max', _('Maximum retry delay (s)'));
		o.placeholder = '300';
		o.validate = range(0, 3600);

		o = s.taboption('advanced', form.Value, 'wan_interface', _('WAN interface'),
			_('The network interface whose changes make gogoc reconnect'));
		o.placeholder = 'wan';
		o.validate = function(sid, v) {
			if (v == null || v === '')
				return true;
			return (v.length <= 64 && charset(v, '-_.')) ? true : _('Allowed are letters, digits and - _ .');
		};

		o = s.taboption('advanced', form.Value, 'client_v4', _('Local IPv4 endpoint'));
		o.placeholder = 'auto';
		o.validate = function(sid, v) {
			return (v == null || v === '' || v.toLowerCase() === 'auto' || isIPv4(v)) ? true : _('Expecting auto or a dotted-quad IPv4 address');
		};

		o = s.taboption('advanced', form.Value, 'tcp_fallback_delay', _('TCP fallback delay (ms)'));
		o.placeholder = '1500';
		o.validate = range(0, 60000);

		[ [ 'if_tunnel_v6v4', 'gogoc6in4' ], [ 'if_tunnel_v6udpv4', 'gogoc' ], [ 'if_tunnel_v4v6', 'gogoc4in6' ] ].forEach(function(t) {
			o = s.taboption('advanced', form.Value, t[0], _('Tunnel device (%s)').replace('%s', t[0].replace('if_tunnel_', '')));
			o.placeholder = t[1];
			o.validate = ifname('-.');
		});

		[ [ 'log_syslog', _('Syslog level') ], [ 'log_stderr', _('stderr level (logread under procd)') ],
		  [ 'log_file', _('Log file level') ], [ 'log_console', _('Console level') ] ].forEach(function(l) {
			o = s.taboption('logging', form.ListValue, l[0], l[1]);
			o.value('0', _('off'));
			o.value('1', '1');
			o.value('2', '2');
			o.value('3', _('3 (most)'));
			o.default = l[0] === 'log_stderr' ? '1' : '0';
		});

		o = s.taboption('logging', form.ListValue, 'syslog_facility', _('Syslog facility'));
		[ 'USER', 'LOCAL0', 'LOCAL1', 'LOCAL2', 'LOCAL3', 'LOCAL4', 'LOCAL5', 'LOCAL6', 'LOCAL7' ].forEach(function(f) { o.value(f); });
		o.default = 'USER';

		o = s.taboption('logging', form.Value, 'log_filename', _('Log file'));
		o.placeholder = 'gogoc.log';
		o.validate = filename;

		o = s.taboption('logging', form.Flag, 'log_rotation', _('Rotate the log file'));
		o.default = '1';

		o = s.taboption('logging', form.ListValue, 'log_rotation_size', _('Rotate at (KiB)'));
		[ '16', '32', '128', '1024' ].forEach(function(k) { o.value(k); });
		o.default = '32';

		o = s.taboption('logging', form.Value, 'status_file', _('Status file'),
			_('Must be in %s/, where this page can read it').replace('%s', STATUS_DIR));
		o.placeholder = STATUS_FILE;
		o.validate = statusFile;

		var status = E('div', { 'id': 'gogoc-status', 'class': 'cbi-section', 'data-state': '' },
			[ E('em', {}, [ _('Reading status…') ]) ]);

		// LuCI's poll.add runs the function at once (it starts the poll
		// loop), then every 5 s: no separate first read.
		poll.add(function() { return self.updateStatus(status); }, 5);

		return m.render().then(function(form) {
			return E('div', {}, [
				E('h3', {}, _('Status')),
				status,
				form
			]);
		});
	}
});
