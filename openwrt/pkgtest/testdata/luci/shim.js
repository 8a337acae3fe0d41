// A stand-in for LuCI's client runtime (luci-base: luci.js, cbi.js,
// rpc.js, fs.js, uci.js, ui.js, validation.js, form.js), enough to run
// luci-app-gogoc's view the way a router runs it. Each piece is written
// from luci-base's source and names the function it follows. Where the
// real runtime is unpleasant, the stand-in is too, on purpose: a string
// child becomes markup, a checkbox validator sees the value attribute, a
// hidden option is deleted on save, the first poll runs at once, and a
// file outside the app's ACL cannot be read. The view has to survive the
// real thing, so the test must not be kinder than it.
//
// The other side (uhttpd-mod-ubus, rpcd with its session ACLs, file and
// uci plugins, LuCI's admin/uci apply and confirm) is the Go test's rpcd
// stand-in; this file only speaks its JSON-RPC.
//
// Real LuCI has one page per view with singletons (L, uci, poll, #view).
// The harness puts several "pages" in one document, so shim.runtime()
// builds the per-page parts around a viewport element; dom, E and the
// classes are shared, as they hold no page state.
'use strict';

(function() {

// ---- cbi.js -------------------------------------------------------------

// _(): cbi.js's translation lookup; there is no catalogue here.
window._ = function(s) { return s; };

// E(): cbi.js `function E() { return L.dom.create.apply(L.dom, arguments) }`.
window.E = function() { return dom.create.apply(dom, arguments); };

// ---- luci.js: baseclass -------------------------------------------------

// Class stands in for luci.js's Class (baseclass): extend() gives a
// constructor that runs __init__, the way ClassConstructor does; what
// __init__ returns is dropped, as there.
function Class() {}
Class.extend = function(proto) {
	var parent = this;
	var C = function() {
		if (typeof this.__init__ === 'function')
			this.__init__.apply(this, arguments);
	};
	C.prototype = Object.create(parent.prototype);
	for (var k in proto)
		C.prototype[k] = proto[k];
	C.prototype.constructor = C;
	C.extend = Class.extend;
	C.super_ = parent;
	return C;
};
// varargs(args, offset, extra...): Class.prototype.varargs, extra first.
Class.prototype.varargs = function(args, offset) {
	return Array.prototype.slice.call(arguments, 2).concat(Array.prototype.slice.call(args, offset));
};

// ---- luci.js: LuCI.dom --------------------------------------------------

var dom = {
	registry: {},

	// dom.elem
	elem: function(e) {
		return (e != null && typeof(e) == 'object' && 'nodeType' in e);
	},

	// dom.parse: the first node of the markup parsed as an HTML body.
	parse: function(s) {
		try {
			return new DOMParser().parseFromString(s, 'text/html').body.firstChild;
		}
		catch (e) {
			return null;
		}
	},

	// dom.matches
	matches: function(node, selector) {
		return this.elem(node) && node.nodeType === 1 ? node.matches(selector) : false;
	},

	// dom.parent
	parent: function(node, selector) {
		if (this.elem(node) && node.closest)
			return node.closest(selector);
		while (this.elem(node))
			if (this.matches(node, selector))
				return node;
			else
				node = node.parentNode;
		return null;
	},

	// dom.append, with its two rules the view depends on: items of an
	// array become text nodes (a null or undefined item too, as the text
	// "null"/"undefined": the check looks at the array, not the item),
	// while a lone non-Node value is assigned to innerHTML: markup.
	append: function(node, children) {
		if (!this.elem(node))
			return null;

		if (Array.isArray(children)) {
			for (var i = 0; i < children.length; i++)
				if (this.elem(children[i]))
					node.appendChild(children[i]);
				else if (children !== null && children !== undefined)
					node.appendChild(document.createTextNode('' + children[i]));

			return node.lastChild;
		}
		else if (typeof(children) === 'function') {
			return this.append(node, children(node));
		}
		else if (this.elem(children)) {
			return node.appendChild(children);
		}
		else if (children !== null && children !== undefined) {
			node.innerHTML = '' + children;
			return node.lastChild;
		}

		return null;
	},

	// dom.content: empty the node, then append.
	content: function(node, children) {
		if (!this.elem(node))
			return null;

		var dataNodes = node.querySelectorAll('[data-idref]');
		for (var i = 0; i < dataNodes.length; i++)
			delete this.registry[dataNodes[i].getAttribute('data-idref')];

		while (node.firstChild)
			node.removeChild(node.firstChild);

		return this.append(node, children);
	},

	// dom.attr: functions become event listeners, objects JSON, null
	// is skipped, anything else goes through setAttribute.
	attr: function(node, key, val) {
		if (!this.elem(node))
			return null;

		var attr = null;

		if (typeof(key) === 'object' && key !== null)
			attr = key;
		else if (typeof(key) === 'string')
			attr = {}, attr[key] = val;

		for (key in attr) {
			if (!attr.hasOwnProperty(key) || attr[key] == null)
				continue;

			switch (typeof(attr[key])) {
			case 'function':
				node.addEventListener(key, attr[key]);
				break;

			case 'object':
				node.setAttribute(key, JSON.stringify(attr[key]));
				break;

			default:
				node.setAttribute(key, attr[key]);
			}
		}
	},

	// dom.create (E): a second argument that is not a plain object (or
	// is an array) is the children; any other object, a Node included,
	// is taken as the attributes.
	create: function() {
		var html = arguments[0],
		    attr = arguments[1],
		    data = arguments[2],
		    elem;

		if (!(attr instanceof Object) || Array.isArray(attr))
			data = attr, attr = null;

		if (Array.isArray(html)) {
			elem = document.createDocumentFragment();
			for (var i = 0; i < html.length; i++)
				elem.appendChild(this.create(html[i]));
		}
		else if (this.elem(html)) {
			elem = html;
		}
		else if (html.charCodeAt(0) === 60) {
			elem = this.parse(html);
		}
		else {
			elem = document.createElement(html);
		}

		if (!elem)
			return null;

		this.attr(elem, attr);
		this.append(elem, data);

		return elem;
	},

	// dom.data, reduced to the set and get the class registry needs.
	data: function(node, key, val) {
		if (!node || !node.getAttribute)
			return null;

		var id = node.getAttribute('data-idref');

		if (arguments.length > 2) {
			if (id == null || !this.registry[id]) {
				id = Date.now().toString(32) + Math.random().toString(32).slice(2);
				node.setAttribute('data-idref', id);
				this.registry[id] = {};
			}
			this.registry[id][key] = val;
			return val;
		}

		return (id != null && this.registry[id]) ? this.registry[id][key] : null;
	},

	// dom.bindClassInstance
	bindClassInstance: function(node, inst) {
		if (!(inst instanceof Class))
			throw new TypeError('Argument must be a class instance');
		return this.data(node, '_class', inst);
	},

	// dom.findClassInstance: the nearest instance up the tree.
	findClassInstance: function(node) {
		var inst = null;

		do {
			inst = this.data(node, '_class');
			node = node.parentNode;
		}
		while (!(inst instanceof Class) && node != null);

		return inst;
	},

	// dom.callClassMethod
	callClassMethod: function(node, method) {
		var inst = this.findClassInstance(node);

		if (inst == null || typeof(inst[method]) != 'function')
			return null;

		return inst[method].apply(inst, Array.prototype.slice.call(arguments, 2));
	}
};

// findParent: ui.js's and validation.js's helper.
function findParent(node, selector) {
	return dom.parent(node, selector);
}

// isObject: L.isObject.
function isObject(v) {
	return (v != null && typeof(v) == 'object');
}

// raise: L.raise, an Error whose name is the type.
function raise(type, msg) {
	var e = new Error(msg);
	e.name = type;
	throw e;
}

// ---- rpc.js -------------------------------------------------------------

// rpc.getStatusText
function getStatusText(statusCode) {
	switch (statusCode) {
	case 0: return _('Command OK');
	case 1: return _('Invalid command');
	case 2: return _('Invalid argument');
	case 3: return _('Method not found');
	case 4: return _('Resource not found');
	case 5: return _('No data received');
	case 6: return _('Permission denied');
	case 7: return _('Request timeout');
	case 8: return _('Not supported');
	case 9: return _('Unspecified error');
	case 10: return _('Connection lost');
	default: return _('Unknown error code');
	}
}

function newRPC(env, log) {
	var rpcRequestID = 1;

	// handleCallReply: a JSON-RPC error or a bad frame rejects; a ubus
	// status other than 0 rejects only for declarations with `reject`,
	// otherwise the number is the result; `expect` digs out one key and
	// falls back to its example value when the type differs.
	var handleCallReply = function(req, msg) {
		var type = Object.prototype.toString, ret = null;

		if (!isObject(msg) || msg.jsonrpc != '2.0')
			raise('RPCError', 'RPC call to ' + req.object + '/' + req.method + ' returned invalid message frame');

		if (isObject(msg.error) && msg.error.code && msg.error.message)
			raise('RPCError', 'RPC call to ' + req.object + '/' + req.method + ' failed with error ' +
				msg.error.code + ': ' + (msg.error.message || '?'));

		if (Array.isArray(msg.result)) {
			if (req.raise && msg.result[0] !== 0)
				raise('RPCError', 'RPC call to ' + req.object + '/' + req.method + ' failed with ubus code ' +
					msg.result[0] + ': ' + getStatusText(msg.result[0]));

			ret = (msg.result.length > 1) ? msg.result[1] : msg.result[0];
		}

		if (req.expect) {
			for (var key in req.expect) {
				if (ret != null && key != '')
					ret = ret[key];

				if (ret == null || type.call(ret) != type.call(req.expect[key]))
					ret = req.expect[key];

				break;
			}
		}

		return ret;
	};

	return {
		getStatusText: getStatusText,

		// rpc.declare: positional arguments become the named params of
		// a `call` to env.ubuspath, with the page's session id.
		declare: function(options) {
			return function() {
				var args = arguments, params = {};

				if (Array.isArray(options.params))
					for (var i = 0; i < options.params.length; i++)
						params[options.params[i]] = args[i];

				var req = { expect: options.expect, object: options.object, method: options.method, raise: options.reject };
				var msg = { jsonrpc: '2.0', id: rpcRequestID++, method: 'call',
					params: [ env.sessionid, options.object, options.method, params ] };

				log.push({ t: Math.round(performance.now()), call: options.object + '.' + options.method, params: params });

				return fetch(env.ubuspath, {
					method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(msg)
				}).then(function(res) {
					if (!res.ok)
						raise('RPCError', 'RPC call to ' + req.object + '/' + req.method + ' failed with HTTP error ' + res.status);
					return res.json();
				}).then(function(reply) {
					return handleCallReply(req, reply);
				});
			};
		}
	};
}

// ---- fs.js --------------------------------------------------------------

// rpcErrors: fs.js's names for ubus status codes.
var rpcErrors = [
	null,
	'InvalidCommandError',
	'InvalidArgumentError',
	'MethodNotFoundError',
	'NotFoundError',
	'NoDataError',
	'PermissionError',
	'TimeoutError',
	'UnsupportedError'
];

// handleRpcReply: a non-zero status becomes an Error named after it
// (PermissionError "Permission denied", NotFoundError "Resource not
// found", ...), a reply without the expected key a TypeError.
function handleRpcReply(expect, rc) {
	if (typeof(rc) == 'number' && rc != 0) {
		var e = new Error(getStatusText(rc));
		e.name = rpcErrors[rc] || 'Error';
		throw e;
	}

	if (expect) {
		var type = Object.prototype.toString;

		for (var key in expect) {
			if (rc != null && key != '')
				rc = rc[key];

			if (rc == null || type.call(rc) != type.call(expect[key])) {
				var e2 = new Error(_('Unexpected reply data format'));
				e2.name = 'TypeError';
				throw e2;
			}

			break;
		}
	}

	return rc;
}

function newFS(rpc) {
	var callFileRead = rpc.declare({ object: 'file', method: 'read', params: [ 'path' ] });
	return {
		// fs.read: rpcd's file plugin decides (ACL, canonical path, errno).
		read: function(path) {
			return callFileRead(path).then(handleRpcReply.bind(this, { data: '' }));
		}
	};
}

// ---- uci.js -------------------------------------------------------------

function newUCI(rpc) {
	var callLoad = rpc.declare({ object: 'uci', method: 'get', params: [ 'config' ], expect: { values: {} }, reject: true });
	var callSet = rpc.declare({ object: 'uci', method: 'set', params: [ 'config', 'section', 'values' ], reject: true });
	var callDelete = rpc.declare({ object: 'uci', method: 'delete', params: [ 'config', 'section', 'options' ], reject: true });

	var isEmpty = function(object, ignore) {
		for (var property in object)
			if (object.hasOwnProperty(property) && property != ignore)
				return false;
		return true;
	};

	var uci = {
		state: { values: {}, changes: {}, deletes: {} },
		loaded: {},

		// resolveSID: named sections only; the view uses 'main'.
		resolveSID: function(conf, sid) {
			if (typeof(sid) == 'string' && sid.charAt(0) == '@')
				throw new Error('stand-in: @type[n] section references are not modelled');
			return sid;
		},

		// loadPackage / load: one `uci get` per config, cached.
		loadPackage: function(packageName) {
			if (this.loaded[packageName] == null)
				return (this.loaded[packageName] = callLoad(packageName));
			return Promise.resolve(this.loaded[packageName]);
		},

		load: function(packages) {
			var self = this, pkgs = [], tasks = [];

			if (!Array.isArray(packages))
				packages = [ packages ];

			for (var i = 0; i < packages.length; i++)
				if (!self.state.values[packages[i]]) {
					pkgs.push(packages[i]);
					tasks.push(self.loadPackage(packages[i]));
				}

			return Promise.all(tasks).then(function(responses) {
				for (var i = 0; i < responses.length; i++)
					self.state.values[pkgs[i]] = responses[i];
				return pkgs;
			});
		},

		// unload
		unload: function(packages) {
			if (!Array.isArray(packages))
				packages = [ packages ];
			for (var i = 0; i < packages.length; i++) {
				delete this.state.values[packages[i]];
				delete this.state.changes[packages[i]];
				delete this.state.deletes[packages[i]];
				delete this.loaded[packages[i]];
			}
		},

		// get: deleted, else changed, else loaded value (options only;
		// whole sections merge the changes in).
		get: function(conf, sid, opt) {
			var v = this.state.values, c = this.state.changes, d = this.state.deletes;

			sid = this.resolveSID(conf, sid);
			if (sid == null)
				return null;

			if (opt != null) {
				if (d[conf] && d[conf][sid])
					if (d[conf][sid] === true || d[conf][sid][opt])
						return null;

				if (c[conf] && c[conf][sid] && c[conf][sid][opt] != null)
					return c[conf][sid][opt];

				if (v[conf] && v[conf][sid])
					return v[conf][sid][opt];

				return null;
			}

			if (v[conf]) {
				var s = v[conf][sid] || null;
				if (s) {
					if (c[conf] && c[conf][sid])
						for (var o in c[conf][sid])
							if (c[conf][sid][o] != null)
								s[o] = c[conf][sid][o];
					if (d[conf] && d[conf][sid])
						for (var o2 in d[conf][sid])
							delete s[o2];
				}
				return s;
			}

			return null;
		},

		// set: an empty or null value deletes (only options that exist
		// in the loaded data), anything else is a change, and only in
		// sections that exist.
		set: function(conf, sid, opt, val) {
			var v = this.state.values, c = this.state.changes, d = this.state.deletes;

			sid = this.resolveSID(conf, sid);

			if (sid == null || opt == null || opt.charAt(0) == '.')
				return;

			if (val != null && val !== '') {
				if (d[conf] && d[conf][sid] === true)
					return;

				if (!v[conf] || !v[conf][sid])
					return;

				if (!c[conf])
					c[conf] = {};

				if (!c[conf][sid])
					c[conf][sid] = {};

				if (d[conf] && d[conf][sid]) {
					if (isEmpty(d[conf][sid], opt))
						delete d[conf][sid];
					else
						delete d[conf][sid][opt];
				}

				c[conf][sid][opt] = val;
			}
			else {
				if (c[conf] && c[conf][sid]) {
					if (isEmpty(c[conf][sid], opt))
						delete c[conf][sid];
					else
						delete c[conf][sid][opt];
				}

				if (v[conf] && v[conf][sid] && v[conf][sid].hasOwnProperty(opt)) {
					if (!d[conf])
						d[conf] = {};

					if (!d[conf][sid])
						d[conf][sid] = {};

					if (d[conf][sid] !== true)
						d[conf][sid][opt] = true;
				}
			}
		},

		// unset
		unset: function(conf, sid, opt) {
			return this.set(conf, sid, opt, null);
		},

		// save: `uci delete` for deletions, `uci set` for changes, then
		// unload and load again.
		save: function() {
			var self = this, d = this.state.deletes, c = this.state.changes, pkgs = {}, tasks = [];

			for (var conf in d) {
				for (var sid in d[conf]) {
					var o = d[conf][sid];
					tasks.push(callDelete(conf, sid, o === true ? null : Object.keys(o)));
				}
				pkgs[conf] = true;
			}

			for (var conf2 in c) {
				for (var sid2 in c[conf2])
					tasks.push(callSet(conf2, sid2, c[conf2][sid2]));
				pkgs[conf2] = true;
			}

			return Promise.all(tasks).then(function() {
				pkgs = Object.keys(pkgs);
				self.unload(pkgs);
				return self.load(pkgs);
			});
		}
	};

	return uci;
}

// ---- luci.js: LuCI.poll -------------------------------------------------

// newPoll: LuCI.poll. One 1 s timer steps through the queue and runs each
// function whose interval divides the tick, unless its last run has not
// finished. LuCI starts the loop at initDOM with an empty queue (tick 0,
// no timer); the first add() then starts the timer and steps at once, so
// a function added by a view runs immediately.
function newPoll() {
	var Poll = {
		queue: [],
		tick: null,

		add: function(fn, interval) {
			if (interval == null || interval <= 0)
				interval = 5;   // env.pollinterval

			if (isNaN(interval) || typeof(fn) != 'function')
				throw new TypeError('Invalid argument to LuCI.poll.add()');

			for (var i = 0; i < this.queue.length; i++)
				if (this.queue[i].fn === fn)
					return false;

			this.queue.push({ r: true, i: interval >>> 0, fn: fn });

			if (this.tick != null && !this.active())
				this.start();

			return true;
		},

		remove: function(fn) {
			var len = this.queue.length;

			for (var i = len; i > 0; i--)
				if (this.queue[i - 1].fn === fn)
					this.queue.splice(i - 1, 1);

			if (!this.queue.length && this.stop())
				this.tick = 0;

			return (this.queue.length != len);
		},

		start: function() {
			if (this.active())
				return false;

			this.tick = 0;

			if (this.queue.length) {
				this.timer = window.setInterval(this.step, 1000);
				this.step();
			}

			return true;
		},

		stop: function() {
			if (!this.active())
				return false;

			window.clearInterval(this.timer);
			delete this.timer;
			delete this.tick;
			return true;
		},

		step: function() {
			for (var i = 0, e = null; (e = Poll.queue[i]) != null; i++) {
				if ((Poll.tick % e.i) != 0)
					continue;

				if (!e.r)
					continue;

				e.r = false;

				Promise.resolve(e.fn()).finally((function() { this.r = true; }).bind(e));
			}

			Poll.tick = (Poll.tick + 1) % Math.pow(2, 32);
		},

		active: function() {
			return (this.timer != null);
		}
	};

	Poll.start();   // initDOM
	return Poll;
}

// ---- validation.js ------------------------------------------------------

// Validator: validation.js's Validator.validate. The value checked is
// field.value: for a checkbox that is its value attribute ('1'), ticked
// or not. An empty value fails unless optional, and then the option's
// validate() is not called; a field outside the page and outside any
// [data-field] is not checked at all.
var Validator = Class.extend({
	__init__: function(field, type, optional, vfunc) {
		if (type !== 'string')
			throw new Error('stand-in: datatype "' + type + '" is not modelled');
		this.field = field;
		this.optional = optional;
		this.vfunc = vfunc;
	},

	assert: function(condition, message) {
		if (!condition) {
			this.field.classList.add('cbi-input-invalid');
			this.error = message;
			return false;
		}

		this.field.classList.remove('cbi-input-invalid');
		this.error = null;
		return true;
	},

	fail: function(message) {
		this.field.setAttribute('data-tooltip', message);
		this.field.setAttribute('data-tooltip-style', 'error');
		this.field.dispatchEvent(new CustomEvent('validation-failure', { bubbles: true, detail: { message: message } }));
		return false;
	},

	validate: function() {
		if (!findParent(this.field, 'body') && !findParent(this.field, '[data-field]'))
			return true;

		this.field.classList.remove('cbi-input-invalid');
		this.value = (this.field.value != null) ? this.field.value : '';
		this.error = null;

		var valid;

		if (this.value.length === 0)
			valid = this.assert(this.optional, _('non-empty value'));
		else
			valid = true;   // the 'string' datatype accepts any text

		if (valid !== true)
			return this.fail(_('Expecting: %s').replace('%s', this.error));

		if (typeof(this.vfunc) == 'function')
			valid = this.vfunc(this.value);

		if (valid !== true) {
			this.assert(false, valid);
			return this.fail(valid);
		}

		this.field.removeAttribute('data-tooltip');
		this.field.removeAttribute('data-tooltip-style');
		this.field.dispatchEvent(new CustomEvent('validation-success', { bubbles: true }));
		return true;
	}
});

// ---- ui.js: widgets -----------------------------------------------------

// addValidator: UI.prototype.addValidator. Validates on the given events
// and once right away (a no-op while the field is detached).
function addValidator(field, type, optional, vfunc) {
	if (type == null)
		return;

	var events = Array.prototype.slice.call(arguments, 4);
	if (events.length == 0)
		events.push('blur', 'keyup');

	var v = new Validator(field, type, optional, vfunc),
	    validatorFn = v.validate.bind(v);

	for (var i = 0; i < events.length; i++)
		field.addEventListener(events[i], validatorFn);

	validatorFn();
	return validatorFn;
}

// UIElement: ui.AbstractElement.
var UIElement = Class.extend({
	getValue: function() {
		if (dom.matches(this.node, 'select') || dom.matches(this.node, 'input'))
			return this.node.value;
		return null;
	},

	setValue: function(value) {
		if (dom.matches(this.node, 'select') || dom.matches(this.node, 'input'))
			this.node.value = value;
	},

	isChanged: function() {
		return (this.node ? this.node.getAttribute('data-changed') : null) == 'true';
	},

	isValid: function() {
		return (this.validState !== false);
	},

	getValidationError: function() {
		return this.validationError || '';
	},

	triggerValidation: function() {
		if (typeof(this.vfunc) != 'function')
			return false;

		var wasValid = this.isValid();
		this.vfunc();
		return (wasValid != this.isValid());
	},

	registerEvents: function(targetNode, synevent, events) {
		var self = this;
		var dispatchFn = function() {
			self.node.dispatchEvent(new CustomEvent(synevent, { bubbles: true }));
		};

		for (var i = 0; i < events.length; i++)
			targetNode.addEventListener(events[i], dispatchFn);
	},

	// setUpdateEvents: the validator watches targetNode (the <input>,
	// <select> or, for a dynamic list, the list's <div>), and its
	// verdict is kept as validState on the widget.
	setUpdateEvents: function(targetNode) {
		var self = this,
		    datatype = this.options.datatype,
		    optional = this.options.hasOwnProperty('optional') ? this.options.optional : true,
		    validate = this.options.validate,
		    events = Array.prototype.slice.call(arguments, 1);

		this.registerEvents(targetNode, 'widget-update', events);

		if (!datatype && !validate)
			return;

		this.vfunc = addValidator.apply(null, [ targetNode, datatype || 'string', optional, validate ].concat(events));

		this.node.addEventListener('validation-success', function() {
			self.validState = true;
			self.validationError = '';
		});

		this.node.addEventListener('validation-failure', function(ev) {
			self.validState = false;
			self.validationError = ev.detail.message;
		});
	},

	// setChangeEvents: a change is re-dispatched as 'widget-change', on
	// which the form re-checks depends and re-validates.
	setChangeEvents: function(targetNode) {
		var node = this.node;
		var tagChanged = function() { node.setAttribute('data-changed', true); };

		for (var i = 1; i < arguments.length; i++)
			targetNode.addEventListener(arguments[i], tagChanged);

		this.registerEvents(targetNode, 'widget-change', Array.prototype.slice.call(arguments, 1));
	}
});

// Textfield: ui.Textfield (no password reveal button).
var UITextfield = UIElement.extend({
	__init__: function(value, options) {
		this.value = value;
		this.options = Object.assign({ optional: true, password: false }, options);
	},

	render: function() {
		var frameEl = E('div', { 'id': this.options.id });
		frameEl.appendChild(E('input', {
			'id': this.options.id ? 'widget.' + this.options.id : null,
			'type': this.options.password ? 'password' : 'text',
			'class': this.options.password ? 'cbi-input-password' : 'cbi-input-text',
			'placeholder': this.options.placeholder,
			'value': this.value
		}));
		return this.bind(frameEl);
	},

	bind: function(frameEl) {
		var inputEl = frameEl.querySelector('input');
		this.node = frameEl;
		this.setUpdateEvents(inputEl, 'keyup', 'blur');
		this.setChangeEvents(inputEl, 'change');
		dom.bindClassInstance(frameEl, this);
		return frameEl;
	},

	getValue: function() {
		return this.node.querySelector('input').value;
	},

	setValue: function(value) {
		this.node.querySelector('input').value = value;
	}
});

// Checkbox: ui.Checkbox. The <input> carries value="1" (value_enabled)
// whatever its state: that attribute is what a validator receives.
var UICheckbox = UIElement.extend({
	__init__: function(value, options) {
		this.value = value;
		this.options = Object.assign({ value_enabled: '1', value_disabled: '0' }, options);
	},

	render: function() {
		var id = 'cb' + Math.floor(Math.random() * 0xffffffff).toString(16);
		var frameEl = E('div', { 'id': this.options.id, 'class': 'cbi-checkbox' });

		frameEl.appendChild(E('input', {
			'id': id,
			'type': 'checkbox',
			'value': this.options.value_enabled,
			'checked': (this.value == this.options.value_enabled) ? '' : null,
			'data-widget-id': this.options.id ? 'widget.' + this.options.id : null
		}));

		frameEl.appendChild(E('label', { 'for': id }));

		return this.bind(frameEl);
	},

	bind: function(frameEl) {
		this.node = frameEl;
		var input = frameEl.querySelector('input[type="checkbox"]');
		this.setUpdateEvents(input, 'click', 'blur');
		this.setChangeEvents(input, 'change');
		dom.bindClassInstance(frameEl, this);
		return frameEl;
	},

	isChecked: function() {
		return this.node.querySelector('input[type="checkbox"]').checked;
	},

	getValue: function() {
		return this.isChecked() ? this.options.value_enabled : this.options.value_disabled;
	},

	setValue: function(value) {
		this.node.querySelector('input[type="checkbox"]').checked = (value == this.options.value_enabled);
	}
});

// Select: ui.Select as a <select> (no radio/checkbox variant).
var UISelect = UIElement.extend({
	__init__: function(value, choices, options) {
		if (!isObject(choices))
			choices = {};

		if (!Array.isArray(value))
			value = (value != null && value != '') ? [ value ] : [];

		this.values = value.slice(0, 1);
		this.choices = choices;
		this.options = Object.assign({}, options);

		if (this.choices.hasOwnProperty(''))
			this.options.optional = true;
	},

	render: function() {
		var frameEl = E('div', { 'id': this.options.id }),
		    keys = Array.isArray(this.options.sort) ? this.options.sort : Object.keys(this.choices);

		frameEl.appendChild(E('select', {
			'id': this.options.id ? 'widget.' + this.options.id : null,
			'class': 'cbi-input-select'
		}));

		if (this.options.optional)
			frameEl.lastChild.appendChild(E('option', {
				'value': '',
				'selected': (this.values.length == 0 || this.values[0] == '') ? '' : null
			}, [ this.choices[''] || this.options.placeholder || _('-- Please choose --') ]));

		for (var i = 0; i < keys.length; i++) {
			if (keys[i] == null || keys[i] == '')
				continue;

			frameEl.lastChild.appendChild(E('option', {
				'value': keys[i],
				'selected': (this.values.indexOf(keys[i]) > -1) ? '' : null
			}, [ this.choices[keys[i]] || keys[i] ]));
		}

		return this.bind(frameEl);
	},

	bind: function(frameEl) {
		this.node = frameEl;
		this.setUpdateEvents(frameEl.firstChild, 'change', 'click', 'blur');
		this.setChangeEvents(frameEl.firstChild, 'change');
		dom.bindClassInstance(frameEl, this);
		return frameEl;
	},

	getValue: function() {
		return this.node.firstChild.value;
	},

	setValue: function(value) {
		if (value == null)
			value = '';
		for (var i = 0; i < this.node.firstChild.options.length; i++)
			this.node.firstChild.options[i].selected = (this.node.firstChild.options[i].value == value);
	}
});

// DynamicList: ui.DynamicList with a text input (no choices). The
// input's validator checks each new entry; Enter adds it as an item.
var UIDynamicList = UIElement.extend({
	__init__: function(values, choices, options) {
		if (!Array.isArray(values))
			values = (values != null && values != '') ? [ values ] : [];

		if (choices)
			throw new Error('stand-in: a DynamicList with choices is not modelled');

		this.values = values;
		this.options = Object.assign({}, options, { multiple: false, optional: true });
	},

	render: function() {
		var dl = E('div', { 'id': this.options.id, 'class': 'cbi-dynlist' }, E('div', { 'class': 'add-item control-group' }));
		var inputEl = E('input', {
			'id': this.options.id ? 'widget.' + this.options.id : null,
			'type': 'text',
			'class': 'cbi-input-text',
			'placeholder': this.options.placeholder
		});

		dl.lastElementChild.appendChild(inputEl);
		dl.lastElementChild.appendChild(E('div', { 'class': 'btn cbi-button cbi-button-add' }, '+'));

		if (this.options.datatype || this.options.validate)
			addValidator(inputEl, this.options.datatype || 'string', true, this.options.validate, 'blur', 'keyup');

		for (var i = 0; i < this.values.length; i++)
			this.addItem(dl, this.values[i], null);

		return this.bind(dl);
	},

	bind: function(dl) {
		var self = this;
		dl.addEventListener('keydown', function(ev) { self.handleKeydown(ev); });
		this.node = dl;
		this.setUpdateEvents(dl, 'cbi-dynlist-change');
		this.setChangeEvents(dl, 'cbi-dynlist-change');
		dom.bindClassInstance(dl, this);
		return dl;
	},

	addItem: function(dl, value, text) {
		var exists = false,
		    newItem = E('div', { 'class': 'item', 'tabindex': 0 }, [
				E('span', {}, [ text || value ]),
				E('input', { 'type': 'hidden', 'value': value }) ]);

		dl.querySelectorAll('.item > input[type="hidden"]').forEach(function(hidden) {
			if (hidden.value === value)
				exists = true;
		});

		if (!exists) {
			var ai = dl.querySelector('.add-item');
			ai.parentNode.insertBefore(newItem, ai);
		}

		dl.dispatchEvent(new CustomEvent('cbi-dynlist-change', { bubbles: true }));
	},

	handleKeydown: function(ev) {
		if (dom.matches(ev.target, '.cbi-input-text') && ev.keyCode == 13) {
			if (ev.target.value.length && !ev.target.classList.contains('cbi-input-invalid')) {
				this.addItem(this.node, ev.target.value, null);
				ev.target.value = '';
			}
			ev.preventDefault();
		}
	},

	// getValue: the items, plus a typed entry that is valid and new.
	getValue: function() {
		var items = this.node.querySelectorAll('.item > input[type="hidden"]'),
		    input = this.node.querySelector('.add-item > input[type="text"]'),
		    v = [];

		for (var i = 0; i < items.length; i++)
			v.push(items[i].value);

		if (input && input.value != null && input.value.match(/\S/) &&
		    input.classList.contains('cbi-input-invalid') == false &&
		    v.filter(function(s) { return s == input.value; }).length == 0)
			v.push(input.value);

		return v;
	}
});

function newUI(env, log) {
	var ui = {
		AbstractElement: UIElement,
		Textfield: UITextfield,
		Checkbox: UICheckbox,
		Select: UISelect,
		DynamicList: UIDynamicList,
		addValidator: addValidator,

		// showModal: the dialog's children go through dom.append.
		showModal: function(title, children) {
			var dlg = E('div', { 'class': 'modal', 'role': 'dialog' });
			dom.content(dlg, children);
			if (title)
				dlg.insertBefore(E('h4', {}, title), dlg.firstChild);
			env.viewport.appendChild(dlg);
			ui.modal = dlg;
			return dlg;
		},

		hideModal: function() {
			if (ui.modal && ui.modal.parentNode)
				ui.modal.parentNode.removeChild(ui.modal);
			ui.modal = null;
		},

		// createHandlerFn: the button's handler, with `this` the view.
		createHandlerFn: function(ctx, fn) {
			if (typeof(fn) == 'string')
				fn = ctx[fn];
			var args = Array.prototype.slice.call(arguments, 2);
			return function(ev) {
				return Promise.resolve(fn.apply(ctx, args.concat([ ev ])));
			};
		},

		// tabs: LuCI turns the tab containers into a tab menu; here every
		// container stays visible, each marked with its data-tab.
		tabs: { initTabGroup: function() {}, updateTabs: function() {} },

		// changes: ui.changes.apply and confirm. Apply POSTs sid and token
		// to admin/uci/apply_rollback (the server runs `uci apply` with
		// rollback and answers a token); after apply_holdoff seconds the
		// page POSTs that token to admin/uci/confirm until it gets 200 or
		// 204, announces 'uci-applied' and reloads after apply_display
		// seconds. LuCI's request() sends a POST's `query` as a form body
		// and adds a cache-busting ?<time> to the URL.
		// checkConnectivityAffected() asks luci-peeraddr whether a changed
		// network.* interface carries this session; this view changes no
		// network.* option, so the stand-in skips it.
		changes: {
			post: function(path, query) {
				var body = Object.keys(query).map(function(k) {
					return encodeURIComponent(k) + '=' + encodeURIComponent(query[k]);
				}).join('&');
				return fetch(env.scriptname + path + '?' + Date.now(), {
					method: 'POST', body: body, headers: { 'Content-Type': 'application/x-www-form-urlencoded' }
				});
			},

			apply: function(checked) {
				log.push({ t: Math.round(performance.now()), call: checked ? 'apply_rollback' : 'apply_unchecked' });
				return ui.changes.post('/admin/uci/' + (checked ? 'apply_rollback' : 'apply_unchecked'),
					{ sid: env.sessionid, token: env.token }).then(function(r) {
					if (r.status === (checked ? 200 : 204))
						return (checked ? r.json() : Promise.resolve(null)).then(function(tok) {
							ui.changes.confirm(checked, Date.now() + env.apply_rollback * 1000, tok && tok.token);
						});
					if (checked && r.status === 204)
						log.push({ t: Math.round(performance.now()), call: 'no-changes' });
					else
						log.push({ t: Math.round(performance.now()), call: 'apply failed: ' + r.status });
				});
			},

			confirm: function(checked, deadline, token) {
				var call = function(r) {
					if (Date.now() >= deadline)
						return;   // rollback(): the router restores the old config
					if (r.status === 200 || r.status === 204) {
						log.push({ t: Math.round(performance.now()), call: 'uci-applied' });
						window.setTimeout(env.reload, env.apply_display * 1000);
						return;
					}
					// LuCI waits 1000 ms minus the last request's duration;
					// the first call (after the hold-off) has none.
					window.setTimeout(function() {
						log.push({ t: Math.round(performance.now()), call: 'confirm' });
						ui.changes.post('/admin/uci/confirm', { token: token || '' }).then(call, call.bind(null, { status: 0 }));
					}, r.status === 0 ? 0 : 1000);
				};
				window.setTimeout(call.bind(null, { status: 0 }), env.apply_holdoff * 1000);
			}
		}
	};
	return ui;
}

// ---- form.js ------------------------------------------------------------

// isEqual: form.js's comparison for depends and changed values.
function isEqual(x, y) {
	if (typeof(y) == 'object' && y instanceof RegExp)
		return (x == null) ? false : y.test(x);

	if (x != null && y != null && typeof(x) != typeof(y))
		return false;

	if ((x == null && y != null) || (x != null && y == null))
		return false;

	if (Array.isArray(x)) {
		if (x.length != y.length)
			return false;

		for (var i = 0; i < x.length; i++)
			if (!isEqual(x[i], y[i]))
				return false;
	}
	else if (typeof(x) == 'object') {
		for (var k in x) {
			if (x.hasOwnProperty(k) && !y.hasOwnProperty(k))
				return false;

			if (!isEqual(x[k], y[k]))
				return false;
		}

		for (var k2 in y)
			if (y.hasOwnProperty(k2) && !x.hasOwnProperty(k2))
				return false;
	}
	else if (x != y) {
		return false;
	}

	return true;
}

function newForm(env, rpc, uci, ui) {
	var callSessionAccess = rpc.declare({
		object: 'session', method: 'access', params: [ 'scope', 'object', 'function' ], expect: { 'access': false }
	});

	// AbstractElement: CBIAbstractElement.
	var CBIAbstractElement = Class.extend({
		__init__: function(title, description) {
			this.title = title || '';
			this.description = description || '';
			this.children = [];
		},

		append: function(obj) {
			this.children.push(obj);
		},

		loadChildren: function() {
			var tasks = [];
			for (var i = 0; i < this.children.length; i++)
				if (!this.children[i].disable)
					tasks.push(this.children[i].load.apply(this.children[i], arguments));
			return Promise.all(tasks);
		},

		renderChildren: function(tab_name) {
			var tasks = [], index = 0;
			for (var i = 0; i < this.children.length; i++)
				if (tab_name === null || this.children[i].tab === tab_name)
					if (!this.children[i].disable)
						tasks.push(this.children[i].render.apply(this.children[i], this.varargs(arguments, 1, index++)));
			return Promise.all(tasks);
		},

		stripTags: function(s) {
			if (typeof(s) == 'string' && !s.match(/[<>]/))
				return s;
			var x = dom.elem(s) ? s : dom.parse('<div>' + s + '</div>');
			return (x.textContent || x.innerText || '').replace(/([ \t]*\n)+/g, '\n');
		}
	});

	// Map: CBIMap.
	var CBIMap = CBIAbstractElement.extend({
		__init__: function(config, title, description) {
			CBIAbstractElement.prototype.__init__.call(this, title, description);
			this.config = config;
			this.data = uci;
		},

		findElements: function() {
			var q = (arguments.length == 1) ? arguments[0] : '[' + arguments[0] + '="' + arguments[1] + '"]';
			return this.root.querySelectorAll(q);
		},

		findElement: function() {
			var res = this.findElements.apply(this, arguments);
			return res.length ? res[0] : null;
		},

		section: function(cbiClass) {
			var obj = Object.create(cbiClass.prototype);
			cbiClass.apply(obj, [ this ].concat(Array.prototype.slice.call(arguments, 1)));
			this.append(obj);
			return obj;
		},

		// load: asks whether the session may write the config (else the
		// form is read-only), loads it, then the children.
		load: function() {
			var self = this;
			var checkACL = (this.readonly == null);
			return Promise.all([
				checkACL ? callSessionAccess('uci', this.config, 'write') : true,
				this.data.load(this.config)
			]).then(function(res) {
				if (res[0] === false)
					self.readonly = true;
				return self.loadChildren();
			});
		},

		parse: function() {
			var tasks = [];
			for (var i = 0; i < this.children.length; i++)
				tasks.push(this.children[i].parse());
			return Promise.all(tasks);
		},

		// save: re-check depends (which re-validates every shown
		// option), parse (which rejects on the first invalid one and
		// removes hidden ones), save through uci, reload, redraw; a
		// failure is shown in a modal "Save error".
		save: function(cb, silent) {
			var self = this;
			this.checkDepends();

			return this.parse()
				.then(cb)
				.then(this.data.save.bind(this.data))
				.then(this.load.bind(this))
				.catch(function(e) {
					if (!silent) {
						ui.showModal(_('Save error'), [
							E('p', {}, [ _('An error occurred while saving the form:') ]),
							E('p', {}, [ E('em', { 'style': 'white-space:pre-wrap' }, [ e.message ]) ]),
							E('div', { 'class': 'right' }, [
								E('button', { 'class': 'cbi-button', 'click': ui.hideModal }, [ _('Dismiss') ])
							])
						]);
					}
					return Promise.reject(e);
				}).then(function() { return self.renderContents(); });
		},

		reset: function() {
			return this.renderContents();
		},

		render: function() {
			return this.load().then(this.renderContents.bind(this));
		},

		// renderContents: the title and description are strings handed
		// to E(), so markup; depends are checked once everything is in.
		renderContents: function() {
			var self = this;
			var mapEl = this.root || (this.root = E('div', {
				'id': 'cbi-' + this.config,
				'class': 'cbi-map',
				'cbi-dependency-check': function(ev) { self.checkDepends(ev); }
			}));

			dom.bindClassInstance(mapEl, this);

			return this.renderChildren(null).then(function(nodes) {
				dom.content(mapEl, null);

				if (self.title != null && self.title != '')
					mapEl.appendChild(E('h2', { 'name': 'content' }, self.title));

				if (self.description != null && self.description != '')
					mapEl.appendChild(E('div', { 'class': 'cbi-map-descr' }, self.description));

				dom.append(mapEl, nodes);

				self.checkDepends();

				return mapEl;
			});
		},

		// lookupOption: finds the option's frame by data-field and the
		// instance bound to it: only rendered options are found.
		lookupOption: function(name, section_id, config_name) {
			var id, elem, sid, inst;

			if (name.indexOf('.') > -1)
				id = 'cbid.' + name;
			else
				id = 'cbid.' + (config_name || this.config) + '.' + section_id + '.' + name;

			elem = this.findElement('data-field', id);
			sid = elem ? id.split(/\./)[2] : null;
			inst = elem ? dom.findClassInstance(elem) : null;

			return (inst instanceof CBIAbstractValue) ? [ inst, sid ] : null;
		},

		checkDepends: function(ev, n) {
			var changed = false;

			for (var i = 0, s; (s = this.children[i]) != null; i++)
				if (s.checkDepends(ev, n))
					changed = true;

			if (changed && (n || 0) < 10)
				this.checkDepends(ev, (n || 10) + 1);

			ui.tabs.updateTabs(ev, this.root);
		},

		// isDependencySatisfied: a hidden option counts as null.
		isDependencySatisfied: function(depends, config_name, section_id) {
			var def = false;

			if (!Array.isArray(depends) || !depends.length)
				return true;

			for (var i = 0; i < depends.length; i++) {
				var istat = true,
				    reverse = depends[i]['!reverse'],
				    contains = depends[i]['!contains'];

				for (var dep in depends[i]) {
					if (dep == '!reverse' || dep == '!contains') {
						continue;
					}
					else if (dep == '!default') {
						def = true;
						istat = false;
					}
					else {
						if (contains)
							throw new Error('stand-in: !contains is not modelled');
						var res = this.lookupOption(dep, section_id, config_name),
						    val = (res && res[0].isActive(res[1])) ? res[0].formvalue(res[1]) : null;

						istat = (istat && isEqual(val, depends[i][dep]));
					}
				}

				if (istat ^ reverse)
					return true;
			}

			return def;
		}
	});

	// AbstractSection: CBIAbstractSection.
	var CBIAbstractSection = CBIAbstractElement.extend({
		__init__: function(map, sectionType, title, description) {
			CBIAbstractElement.prototype.__init__.call(this, title, description);
			this.sectiontype = sectionType;
			this.map = map;
			this.config = map.config;
			this.optional = true;
			this.addremove = false;
			this.dynamic = false;
		},

		load: function() {
			var self = this, section_ids = this.cfgsections(), tasks = [];

			section_ids.forEach(function(sid) {
				tasks.push(self.loadChildren(sid).then(function(set_values) {
					for (var i = 0; i < set_values.length; i++)
						self.children[i].cfgvalue(sid, set_values[i]);
				}));
			});

			return Promise.all(tasks);
		},

		parse: function() {
			var section_ids = this.cfgsections(), tasks = [];
			for (var i = 0; i < section_ids.length; i++)
				for (var j = 0; j < this.children.length; j++)
					tasks.push(this.children[j].parse(section_ids[i]));
			return Promise.all(tasks);
		},

		tab: function(name, title, description) {
			if (this.tabs && this.tabs[name])
				throw 'Tab already declared';

			var entry = { name: name, title: title, description: description, children: [] };

			this.tabs = this.tabs || [];
			this.tabs.push(entry);
			this.tabs[name] = entry;

			this.tab_names = this.tab_names || [];
			this.tab_names.push(name);
		},

		option: function(cbiClass) {
			if (!(cbiClass.prototype instanceof CBIAbstractValue))
				throw new TypeError('Class must be a descendant of CBIAbstractValue');
			var obj = Object.create(cbiClass.prototype);
			cbiClass.apply(obj, [ this.map, this ].concat(Array.prototype.slice.call(arguments, 1)));
			this.append(obj);
			return obj;
		},

		taboption: function(tabName) {
			if (!this.tabs || !this.tabs[tabName])
				throw new ReferenceError('Associated tab not declared');

			var obj = this.option.apply(this, Array.prototype.slice.call(arguments, 1));
			obj.tab = tabName;
			this.tabs[tabName].children.push(obj);
			return obj;
		},

		cfgvalue: function(section_id, option) {
			for (var i = 0, o; (o = this.children[i]) != null; i++)
				if (o.option == option)
					return o.cfgvalue(section_id);
			return null;
		},

		// formvalue: the widget's value once the map is rendered, the
		// loaded value before.
		formvalue: function(section_id, option) {
			for (var i = 0, o; (o = this.children[i]) != null; i++) {
				var func = this.map.root ? o.formvalue : o.cfgvalue;
				if (o.option == option)
					return func.call(o, section_id);
			}
			return null;
		},

		getUIElement: function(section_id, option) {
			for (var i = 0, o; (o = this.children[i]) != null; i++)
				if (o.option == option)
					return o.getUIElement(section_id);
			return null;
		},

		getOption: function(option) {
			for (var i = 0, o; (o = this.children[i]) != null; i++)
				if (o.option == option)
					return o;
			return null;
		},

		renderUCISection: function(section_id) {
			var renderTasks = [];

			if (!this.tabs)
				return this.renderOptions(null, section_id);

			for (var i = 0; i < this.tab_names.length; i++)
				renderTasks.push(this.renderOptions(this.tab_names[i], section_id));

			return Promise.all(renderTasks).then(this.renderTabContainers.bind(this, section_id));
		},

		renderTabContainers: function(section_id, nodes) {
			var containerEls = E([]);

			for (var i = 0; i < nodes.length; i++) {
				var tab_name = this.tab_names[i],
				    tab_data = this.tabs[tab_name],
				    containerEl = E('div', {
					'id': 'container.' + this.map.config + '.' + section_id + '.' + tab_name,
					'data-tab': tab_name,
					'data-tab-title': tab_data.title,
					'data-tab-active': tab_name === this.selected_tab
				    });

				if (tab_data.description != null && tab_data.description != '')
					containerEl.appendChild(E('div', { 'class': 'cbi-tab-descr' }, tab_data.description));

				containerEl.appendChild(nodes[i]);
				containerEls.appendChild(containerEl);
			}

			return containerEls;
		},

		renderOptions: function(tab_name, section_id) {
			return this.renderChildren(tab_name, section_id, false).then(function(nodes) {
				var optionEls = E([]);
				for (var i = 0; i < nodes.length; i++)
					optionEls.appendChild(nodes[i]);
				return optionEls;
			});
		},

		// checkDepends: shows and hides options, and re-validates every
		// shown one (on the first pass).
		checkDepends: function(ev, n) {
			var changed = false, sids = this.cfgsections();

			for (var i = 0, sid; (sid = sids[i]) != null; i++) {
				for (var j = 0, o; (o = this.children[j]) != null; j++) {
					var isActive = o.isActive(sid),
					    isSatisfied = o.checkDepends(sid);

					if (isActive != isSatisfied) {
						o.setActive(sid, !isActive);
						isActive = !isActive;
						changed = true;
					}

					if (!n && isActive)
						o.triggerValidation(sid);
				}
			}

			return changed;
		}
	});

	// NamedSection: CBINamedSection (no add/remove buttons).
	var CBINamedSection = CBIAbstractSection.extend({
		__init__: function(map, section_id, sectionType, title, description) {
			CBIAbstractSection.prototype.__init__.call(this, map, sectionType, title, description);
			this.section = section_id;
		},

		cfgsections: function() {
			return [ this.section ];
		},

		renderContents: function(data) {
			var ucidata = data[0], nodes = data[1],
			    section_id = this.section,
			    sectionEl = E('div', {
				'id': ucidata ? null : 'cbi-' + this.map.config + '-' + section_id,
				'class': 'cbi-section'
			    });

			if (typeof(this.title) === 'string' && this.title !== '')
				sectionEl.appendChild(E('h3', {}, this.title));

			if (typeof(this.description) === 'string' && this.description !== '')
				sectionEl.appendChild(E('div', { 'class': 'cbi-section-descr' }, this.description));

			if (ucidata) {
				if (this.addremove)
					throw new Error('stand-in: addremove is not modelled');
				sectionEl.appendChild(E('div', {
					'id': 'cbi-' + this.map.config + '-' + section_id,
					'class': this.tabs ? 'cbi-section-node cbi-section-node-tabbed' : 'cbi-section-node',
					'data-section-id': section_id
				}, nodes));
			}

			dom.bindClassInstance(sectionEl, this);
			return sectionEl;
		},

		render: function() {
			return Promise.all([
				this.map.data.get(this.map.config, this.section),
				this.renderUCISection(this.section)
			]).then(this.renderContents.bind(this));
		}
	});

	// AbstractValue: CBIAbstractValue.
	var CBIAbstractValue = CBIAbstractElement.extend({
		__init__: function(map, section, option, title, description) {
			CBIAbstractElement.prototype.__init__.call(this, title, description);
			this.section = section;
			this.option = option;
			this.map = map;
			this.config = map.config;
			this.deps = [];
			this.initial = {};
			this.rmempty = true;
			this.default = null;
			this.size = null;
			this.optional = false;
			this.retain = false;
		},

		depends: function(field, value) {
			var deps;
			if (typeof(field) === 'string')
				deps = {}, deps[field] = value;
			else
				deps = field;
			this.deps.push(deps);
		},

		transformDepList: function(section_id) {
			var list = this.deps, deps = [];

			for (var i = 0; i < list.length; i++) {
				var dep = {};

				for (var k in list[i]) {
					if (!list[i].hasOwnProperty(k))
						continue;
					if (k.charAt(0) === '!')
						dep[k] = list[i][k];
					else if (k.indexOf('.') !== -1)
						dep['cbid.' + k] = list[i][k];
					else
						dep['cbid.' + this.map.config + '.' + section_id + '.' + k] = list[i][k];
				}

				for (var k2 in dep) {
					if (dep.hasOwnProperty(k2)) {
						deps.push(dep);
						break;
					}
				}
			}

			return deps;
		},

		transformChoices: function() {
			if (!Array.isArray(this.keylist) || this.keylist.length == 0)
				return null;

			var choices = {};
			for (var i = 0; i < this.keylist.length; i++)
				choices[this.keylist[i]] = this.vallist[i];
			return choices;
		},

		checkDepends: function(section_id) {
			return this.map.isDependencySatisfied(this.deps, this.map.config, section_id);
		},

		cbid: function(section_id) {
			if (section_id == null)
				throw new TypeError('Section ID required');
			return 'cbid.' + this.map.config + '.' + section_id + '.' + this.option;
		},

		load: function(section_id) {
			return this.map.data.get(this.map.config, section_id, this.option);
		},

		getUIElement: function(section_id) {
			var node = this.map.findElement('id', this.cbid(section_id)),
			    inst = node ? dom.findClassInstance(node) : null;
			return (inst instanceof UIElement) ? inst : null;
		},

		cfgvalue: function(section_id, set_value) {
			if (section_id == null)
				throw new TypeError('Section ID required');

			if (arguments.length == 2) {
				this.data = this.data || {};
				this.data[section_id] = set_value;
			}

			return this.data ? this.data[section_id] : null;
		},

		formvalue: function(section_id) {
			var elem = this.getUIElement(section_id);
			return elem ? elem.getValue() : null;
		},

		validate: function(section_id, value) {
			return true;
		},

		isValid: function(section_id) {
			var elem = this.getUIElement(section_id);
			return elem ? elem.isValid() : true;
		},

		getValidationError: function(section_id) {
			var elem = this.getUIElement(section_id);
			return elem ? elem.getValidationError() : '';
		},

		// isActive: shown, i.e. its frame is not .hidden.
		isActive: function(section_id) {
			var field = this.map.findElement('data-field', this.cbid(section_id));
			return (field != null && !field.classList.contains('hidden'));
		},

		setActive: function(section_id, active) {
			var field = this.map.findElement('data-field', this.cbid(section_id));

			if (field && field.classList.contains('hidden') == active) {
				field.classList[active ? 'remove' : 'add']('hidden');
				return true;
			}

			return false;
		},

		triggerValidation: function(section_id) {
			var elem = this.getUIElement(section_id);
			return elem ? elem.triggerValidation() : true;
		},

		// parse: an invalid shown option rejects the save; an empty one
		// is removed (or rejected when rmempty is off); a changed one is
		// written; a hidden one is removed unless `retain` is set.
		parse: function(section_id) {
			var active = this.isActive(section_id);

			if (active && !this.isValid(section_id)) {
				var title = this.stripTags(this.title).trim(),
				    error = this.getValidationError(section_id);

				return Promise.reject(new TypeError(
					_('Option "%s" contains an invalid input value.').replace('%s', title || this.option) + ' ' + error));
			}

			if (active) {
				var cval = this.cfgvalue(section_id),
				    fval = this.formvalue(section_id);

				if (fval == null || fval == '') {
					if (this.rmempty || this.optional)
						return Promise.resolve(this.remove(section_id));

					return Promise.reject(new TypeError(
						_('Option "%s" must not be empty.').replace('%s', this.stripTags(this.title).trim() || this.option)));
				}
				else if (this.forcewrite || !isEqual(cval, fval)) {
					return Promise.resolve(this.write(section_id, fval));
				}
			}
			else if (!this.retain) {
				return Promise.resolve(this.remove(section_id));
			}

			return Promise.resolve();
		},

		write: function(section_id, formvalue) {
			return this.map.data.set(this.map.config, section_id, this.option, formvalue);
		},

		// remove: uci unset (the real one first looks for another shown
		// option aliasing the same uci option via `ucioption`; this view
		// has none).
		remove: function(section_id) {
			if (this.ucioption != null)
				throw new Error('stand-in: ucioption aliases are not modelled');
			this.map.data.unset(this.map.config, section_id, this.option);
		}
	});

	// Value: CBIValue.
	var CBIValue = CBIAbstractValue.extend({
		value: function(key, val) {
			this.keylist = this.keylist || [];
			this.keylist.push(String(key));

			this.vallist = this.vallist || [];
			this.vallist.push(dom.elem(val) ? val : String(val != null ? val : key));
		},

		render: function(option_index, section_id, in_table) {
			return Promise.resolve(this.cfgvalue(section_id))
				.then(this.renderWidget.bind(this, section_id, option_index))
				.then(this.renderFrame.bind(this, section_id, in_table, option_index));
		},

		// renderFrame: the title and description are strings for E():
		// markup. An option with depends starts hidden.
		renderFrame: function(section_id, in_table, option_index, nodes) {
			var self = this,
			    depend_list = this.transformDepList(section_id),
			    optionEl = E('div', {
				'class': 'cbi-value',
				'id': 'cbi-' + this.map.config + '-' + section_id + '-' + this.option,
				'data-index': option_index,
				'data-depends': depend_list,
				'data-field': this.cbid(section_id),
				'data-name': this.option
			    });

			if (typeof(this.title) === 'string' && this.title !== '') {
				optionEl.appendChild(E('label', {
					'class': 'cbi-value-title',
					'for': 'widget.' + this.cbid(section_id)
				}, this.title));

				optionEl.appendChild(E('div', { 'class': 'cbi-value-field' }));
			}

			if (nodes)
				(optionEl.lastChild || optionEl).appendChild(nodes);

			if (typeof(this.description) === 'string' && this.description !== '')
				dom.append(optionEl.lastChild || optionEl,
					E('div', { 'class': 'cbi-value-description' }, this.description.trim()));

			if (depend_list && depend_list.length)
				optionEl.classList.add('hidden');

			optionEl.addEventListener('widget-change', function(ev) { self.map.checkDepends(ev); });

			dom.bindClassInstance(optionEl, this);

			return optionEl;
		},

		renderWidget: function(section_id, option_index, cfgvalue) {
			var value = (cfgvalue != null) ? cfgvalue : this.default;

			if (this.transformChoices())
				throw new Error('stand-in: a Value with choices (Combobox) is not modelled');

			var widget = new UITextfield(Array.isArray(value) ? value.join(' ') : value, {
				id: this.cbid(section_id),
				password: this.password,
				optional: this.optional || this.rmempty,
				datatype: this.datatype,
				placeholder: this.placeholder,
				validate: this.validate.bind(this, section_id)
			});

			return widget.render();
		}
	});

	// DynamicList: CBIDynamicList.
	var CBIDynamicList = CBIValue.extend({
		renderWidget: function(section_id, option_index, cfgvalue) {
			var value = (cfgvalue != null) ? cfgvalue : this.default;
			var widget = new UIDynamicList(value == null ? [] : [].concat(value), this.transformChoices(), {
				id: this.cbid(section_id),
				optional: this.optional || this.rmempty,
				datatype: this.datatype,
				placeholder: this.placeholder,
				validate: this.validate.bind(this, section_id)
			});
			return widget.render();
		}
	});

	// ListValue: CBIListValue (a <select>; no empty entry unless
	// optional).
	var CBIListValue = CBIValue.extend({
		__init__: function() {
			CBIValue.prototype.__init__.apply(this, arguments);
			this.widget = 'select';
			this.deplist = [];
		},

		renderWidget: function(section_id, option_index, cfgvalue) {
			var widget = new UISelect((cfgvalue != null) ? cfgvalue : this.default, this.transformChoices(), {
				id: this.cbid(section_id),
				sort: this.keylist,
				optional: this.optional,
				placeholder: this.placeholder,
				validate: this.validate.bind(this, section_id)
			});
			return widget.render();
		}
	});

	// Flag: CBIFlagValue. Its formvalue() is the ticked state ('1'/'0');
	// its validator, bound to the <input>, sees the value attribute.
	var CBIFlagValue = CBIValue.extend({
		__init__: function() {
			CBIValue.prototype.__init__.apply(this, arguments);
			this.enabled = '1';
			this.disabled = '0';
			this.default = this.disabled;
		},

		renderWidget: function(section_id, option_index, cfgvalue) {
			var widget = new UICheckbox((cfgvalue != null) ? cfgvalue : this.default, {
				id: this.cbid(section_id),
				value_enabled: this.enabled,
				value_disabled: this.disabled,
				validate: this.validate.bind(this, section_id)
			});
			return widget.render();
		},

		formvalue: function(section_id) {
			var elem = this.getUIElement(section_id),
			    checked = elem ? elem.isChecked() : false;
			return checked ? this.enabled : this.disabled;
		},

		// parse: the default value is removed when rmempty, anything else
		// written (even unchanged).
		parse: function(section_id) {
			if (this.isActive(section_id)) {
				var fval = this.formvalue(section_id);

				if (!this.isValid(section_id)) {
					var title = this.stripTags(this.title).trim();
					return Promise.reject(new TypeError(
						_('Option "%s" contains an invalid input value.').replace('%s', title || this.option) + ' ' +
						this.getValidationError(section_id)));
				}

				if (fval == this.default && (this.optional || this.rmempty))
					return Promise.resolve(this.remove(section_id));
				else
					return Promise.resolve(this.write(section_id, fval));
			}
			else if (!this.retain) {
				return Promise.resolve(this.remove(section_id));
			}
		}
	});

	return {
		Map: CBIMap,
		NamedSection: CBINamedSection,
		AbstractValue: CBIAbstractValue,
		Value: CBIValue,
		DynamicList: CBIDynamicList,
		ListValue: CBIListValue,
		Flag: CBIFlagValue
	};
}

// ---- luci.js: LuCI.view -------------------------------------------------

function newView(env, ui) {
	// View: LuCI.view. Constructing it is the page: spinner, load(),
	// render(), the nodes into the viewport, then the footer with Save &
	// Apply, Save and Reset.
	var View = Class.extend({
		__init__: function() {
			var self = this, vp = env.viewport;

			dom.content(vp, E('div', { 'class': 'spinning' }, _('Loading view…')));

			env.ready = Promise.resolve(this.load())
				.then(function(data) { return self.render(data); })
				.then(function(nodes) {
					dom.content(vp, nodes);
					dom.append(vp, self.addFooter());
				});
		},

		load: function() {},

		render: function() {},

		handleSave: function(ev) {
			var tasks = [];
			env.viewport.querySelectorAll('.cbi-map').forEach(function(map) {
				tasks.push(dom.callClassMethod(map, 'save'));
			});
			return Promise.all(tasks);
		},

		handleSaveApply: function(ev, mode) {
			return this.handleSave(ev).then(function() {
				ui.changes.apply(mode == '0');
			});
		},

		handleReset: function(ev) {
			var tasks = [];
			env.viewport.querySelectorAll('.cbi-map').forEach(function(map) {
				tasks.push(dom.callClassMethod(map, 'reset'));
			});
			return Promise.all(tasks);
		},

		// addFooter: LuCI's Save & Apply is a ComboButton whose main
		// choice is mode '0' (apply with rollback); a plain button here.
		addFooter: function() {
			var self = this, footer = E([]);

			if (this.handleSaveApply || this.handleSave || this.handleReset) {
				footer.appendChild(E('div', { 'class': 'cbi-page-actions' }, [
					this.handleSaveApply ? E('button', {
						'class': 'btn cbi-button cbi-button-apply important',
						'click': function(ev) { return self.handleSaveApply(ev, '0').catch(function() {}); }
					}, [ _('Save & Apply') ]) : '', ' ',
					this.handleSave ? E('button', {
						'class': 'cbi-button cbi-button-save',
						'click': function(ev) { return self.handleSave(ev).catch(function() {}); }
					}, [ _('Save') ]) : '', ' ',
					this.handleReset ? E('button', {
						'class': 'cbi-button cbi-button-reset',
						'click': ui.createHandlerFn(this, 'handleReset')
					}, [ _('Reset') ]) : ''
				]));
			}

			return footer;
		}
	});

	return { extend: function(proto) { return View.extend(proto); }, View: View };
}

// ---- the harness side ---------------------------------------------------

var sources = {};

// compileView: luci.js's L.require/compileClass for a view. The leading
// string statements of the source name its modules ('require x [as y]');
// the source becomes the body of (function(window, document, L, ...)),
// whose result must be a View class; requiring it constructs it, which
// renders the page.
function compileView(rt, url) {
	var src = sources[url] || (sources[url] = fetch(url).then(function(r) {
		if (!r.ok)
			raise('NetworkError', 'HTTP error ' + r.status + ' while loading class file "' + url + '"');
		return r.text();
	}));

	return src.then(function(source) {
		var requirematch = /^require[ \t]+(\S+)(?:[ \t]+as[ \t]+([a-zA-Z_]\S*))?$/,
		    strictmatch = /^use[ \t]+strict$/,
		    names = [], deps = [];

		// The same scan as compileClass: quoted strings, skipping
		// comments, until one that is neither 'use strict' nor 'require'.
		for (var i = 0, off = -1, prev = -1, quote = -1, comment = -1, esc = false; i < source.length; i++) {
			var chr = source.charCodeAt(i);

			if (esc) {
				esc = false;
			}
			else if (comment != -1) {
				if ((comment == 47 && chr == 10) || (comment == 42 && prev == 42 && chr == 47))
					comment = -1;
			}
			else if ((chr == 42 || chr == 47) && prev == 47) {
				comment = chr;
			}
			else if (chr == 92) {
				esc = true;
			}
			else if (chr == quote) {
				var s = source.substring(off, i), m = requirematch.exec(s);

				if (m) {
					var dep = m[1], as = m[2] || dep.replace(/[^a-zA-Z0-9_]/g, '_');
					if (!(dep in rt.modules))
						throw new Error('the stand-in has no module ' + dep);
					names.push(as);
					deps.push(rt.modules[dep]);
				}
				else if (!strictmatch.exec(s)) {
					break;
				}

				off = -1;
				quote = -1;
			}
			else if (quote == -1 && (chr == 34 || chr == 39)) {
				off = i + 1;
				quote = chr;
			}

			prev = chr;
		}

		var factory = Function.apply(null, [ 'window', 'document', 'L' ].concat(names, [ source ]));
		var cls = factory.apply(factory, [ window, document, rt.L ].concat(deps));

		if (!(cls && cls.prototype instanceof rt.modules.view.View))
			throw new TypeError('"' + url + '" factory yields no view class');

		var inst = new cls();
		return rt.env.ready.then(function() { return inst; });
	});
}

// shim.runtime({ sessionid, viewport }) is one LuCI page: its env, its
// modules, and what it sent (rt.log).
window.shim = {
	dom: dom,

	runtime: function(opts) {
		var log = [];
		var env = {
			sessionid: opts.sessionid,
			token: 'token-' + opts.sessionid,
			ubuspath: '/ubus/',
			scriptname: '/cgi-bin/luci',
			base_url: '/luci-static/resources',
			pollinterval: 5,
			apply_rollback: 90,
			apply_holdoff: 4,
			apply_timeout: 5,
			apply_display: 1.5,
			viewport: opts.viewport
		};
		var rpc = newRPC(env, log),
		    uci = newUCI(rpc),
		    ui = newUI(env, log),
		    poll = newPoll();
		var rt = {
			env: env,
			log: log,
			L: { env: env },
			modules: {
				rpc: rpc,
				fs: newFS(rpc),
				uci: uci,
				poll: poll,
				ui: ui,
				form: newForm(env, rpc, uci, ui),
				view: newView(env, ui)
			},
			reloads: 0
		};
		// A reload after apply is a new page in the same viewport: the
		// old page's polling ends, everything is loaded afresh.
		env.reload = function() {
			poll.stop();
			var fresh = window.shim.runtime(opts);
			rt.reloaded = fresh.load(rt.url).then(function(inst) {
				rt.reloads++;
				rt.current = fresh;
				return inst;
			});
		};
		rt.current = rt;
		rt.load = function(url) {
			rt.url = url;
			return compileView(rt, url);
		};
		return rt;
	}
};

})();
