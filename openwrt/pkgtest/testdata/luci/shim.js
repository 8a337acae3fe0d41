// A small stand-in for the LuCI runtime, enough to load and render
// luci-app-gogoc's view the way LuCI does: the view's source is fetched,
// its 'require x' lines name the modules, and it runs as the body of a
// function taking those modules. Only what the view uses exists here.
'use strict';

window._ = function(s) { return s; };

window.E = function(tag, attrs, children) {
	var el = document.createElement(tag);
	if (attrs && (Array.isArray(attrs) || typeof attrs !== 'object' || attrs instanceof Node)) {
		children = attrs;
		attrs = null;
	}
	for (var k in (attrs || {}))
		if (attrs[k] != null)
			el.setAttribute(k, attrs[k]);
	(Array.isArray(children) ? children : (children == null ? [] : [ children ])).forEach(function(c) {
		el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
	});
	return el;
};

var shim = { uci: {} };
window.shim = shim;

var uci = {
	load: function(conf) {
		return fetch('/uci/' + conf + '.json').then(function(r) { return r.json(); })
			.then(function(d) { shim.uci[conf] = d; return d; });
	},
	get: function(conf, sid, opt) {
		var s = (shim.uci[conf] || {})[sid];
		return s ? s[opt] : null;
	}
};

// newFS gives one view instance its own file reads: every read returns
// what statusURL serves, and is recorded in inst.reads.
function newFS(inst) {
	return {
		read: function(path) {
			inst.reads.push(path);
			return fetch(inst.statusURL).then(function(r) {
				if (!r.ok)
					throw new Error('No such file or directory');
				return r.text();
			});
		}
	};
}

function newPoll(inst) {
	return {
		add: function(fn, interval) {
			inst.polls.push(interval);
			setInterval(fn, interval * 1000);
		}
	};
}

var view = {
	extend: function(proto) { return proto; }
};

// form: options render as a labelled widget with an error slot; validation
// runs on input, as LuCI's widgets do, through the option's validate().
function AbstractValue(section, name, title, description) {
	this.section = section;
	this.map = section.map;
	this.option = name;
	this.title = title;
	this.description = description;
	this.choices = [];
	this.deps = [];
}
AbstractValue.prototype.value = function(k, v) { this.choices.push([ k, v == null ? k : v ]); };
AbstractValue.prototype.depends = function(k, v) { this.deps.push(typeof k === 'object' ? k : { [k]: v }); };
AbstractValue.prototype.cfgvalue = function(sid) {
	var v = uci.get(this.map.config, sid, this.option);
	return Array.isArray(v) ? v.join(' ') : v;
};
AbstractValue.prototype.widgetId = function(sid) { return 'widget.cbid.' + this.map.config + '.' + sid + '.' + this.option; };
AbstractValue.prototype.formvalue = function(sid) {
	var el = document.getElementById(this.widgetId(sid));
	if (!el)
		return null;
	if (el.type === 'checkbox')
		return el.checked ? '1' : '0';
	return el.value;
};
AbstractValue.prototype.check = function(sid) {
	var v = this.formvalue(sid);
	var res = (typeof this.validate === 'function') ? this.validate(sid, v) : true;
	if (res === true && this.choices.length && v !== '' && !this.choices.some(function(c) { return c[0] === v; }))
		res = 'not a choice';
	var err = document.getElementById(this.widgetId(sid) + '.error');
	err.textContent = res === true ? '' : String(res);
	return res;
};
AbstractValue.prototype.renderWidget = function(sid) {
	var self = this, cur = this.cfgvalue(sid), el;
	if (cur == null || cur === '')
		cur = this.default != null ? this.default : '';
	if (this.kind === 'flag') {
		el = E('input', { type: 'checkbox' });
		el.checked = cur === '1';
	}
	else if (this.kind === 'list') {
		el = E('select', {}, this.choices.map(function(c) { return E('option', { value: c[0] }, c[1]); }));
		el.value = cur;
	}
	else {
		el = E('input', { type: this.password ? 'password' : 'text', placeholder: this.placeholder || null });
		el.value = cur;
	}
	el.id = this.widgetId(sid);
	el.setAttribute('data-option', this.option);
	el.setAttribute('data-kind', this.kind);
	el.addEventListener('input', function() { self.check(sid); });
	el.addEventListener('change', function() { self.check(sid); });
	return E('div', { 'class': 'cbi-value', 'data-tab': this.tab || '', 'data-depends': JSON.stringify(this.deps) }, [
		E('label', { 'class': 'cbi-value-title', 'for': el.id }, this.title || this.option),
		E('div', { 'class': 'cbi-value-field' }, [ el,
			E('div', { 'class': 'cbi-value-error', id: el.id + '.error' }),
			this.description ? E('div', { 'class': 'cbi-value-description' }, this.description) : '' ])
	]);
};

function kind(k) {
	var C = function(section, name, title, description) { AbstractValue.call(this, section, name, title, description); this.kind = k; };
	C.prototype = Object.create(AbstractValue.prototype);
	return C;
}

function NamedSection(map, sid, type, title) {
	this.map = map;
	this.sid = sid;
	this.sectiontype = type;
	this.title = title;
	this.tabs = [];
	this.children = [];
}
NamedSection.prototype.tab = function(name, title) { this.tabs.push([ name, title ]); };
NamedSection.prototype.option = function(cls, name, title, description) {
	var o = new cls(this, name, title, description);
	this.children.push(o);
	return o;
};
NamedSection.prototype.taboption = function(tab, cls, name, title, description) {
	if (!this.tabs.some(function(t) { return t[0] === tab; }))
		throw new Error('unknown tab ' + tab);
	var o = this.option(cls, name, title, description);
	o.tab = tab;
	return o;
};
NamedSection.prototype.formvalue = function(sid, name) {
	var o = this.children.filter(function(c) { return c.option === name; })[0];
	return o ? o.formvalue(sid) : null;
};
NamedSection.prototype.render = function() {
	var self = this;
	return E('div', { 'class': 'cbi-section', 'data-section': this.sid }, this.tabs.map(function(t) {
		return E('fieldset', { 'class': 'cbi-tab', 'data-tab': t[0] }, [ E('legend', {}, t[1]) ].concat(
			self.children.filter(function(c) { return c.tab === t[0]; }).map(function(c) { return c.renderWidget(self.sid); })));
	}));
};

function FormMap(config, title, description) {
	this.config = config;
	this.title = title;
	this.description = description;
	this.sections = [];
}
FormMap.prototype.section = function(cls, sid, type, title) {
	var s = new cls(this, sid, type, title);
	this.sections.push(s);
	return s;
};
FormMap.prototype.lookupOption = function(name, sid) {
	for (var i = 0; i < this.sections.length; i++)
		for (var j = 0; j < this.sections[i].children.length; j++)
			if (this.sections[i].children[j].option === name)
				return [ this.sections[i].children[j], sid ];
	return null;
};
FormMap.prototype.render = function() {
	return Promise.resolve(E('div', { 'class': 'cbi-map', 'data-config': this.config }, [
		E('h2', {}, this.title), E('div', { 'class': 'cbi-map-descr' }, this.description || '')
	].concat(this.sections.map(function(s) { return s.render(); }))));
};

var form = {
	Map: FormMap, NamedSection: NamedSection,
	Value: kind('value'), Flag: kind('flag'), ListValue: kind('list'), DynamicList: kind('dynlist')
};
shim.form = form;

// loadView does what LuCI's L.require does for a view. Each call is a
// separate instance (as separate page loads would be) whose status reads
// are served by statusURL; it resolves to { view, reads, polls }.
shim.loadView = function(url, statusURL) {
	var inst = { statusURL: statusURL || '/status.json', reads: [], polls: [] };
	var modules = { view: view, form: form, fs: newFS(inst), poll: newPoll(inst), uci: uci };
	return fetch(url).then(function(r) { return r.text(); }).then(function(src) {
		var names = [], args = [], re = /^\s*'require\s+([\w.]+)(?:\s+as\s+(\w+))?'\s*;/gm, m;
		while ((m = re.exec(src)) !== null) {
			if (!(m[1] in modules))
				throw new Error('the shim has no module ' + m[1]);
			names.push(m[2] || m[1].split('.').pop());
			args.push(modules[m[1]]);
		}
		inst.view = Function.apply(null, names.concat([ src ])).apply(null, args);
		return inst;
	});
};
