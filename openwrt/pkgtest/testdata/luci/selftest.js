'use strict';
'require view';
'require form';

// A view that exercises the LuCI stand-in itself (TestLuCIStandIn): a
// Flag whose validator records what it is given, and an option that
// depends on another.
return view.extend({
	seen: [],
	formvalueSeen: [],

	render: function() {
		var self = this, m = new form.Map('gogoc'), s, o;

		s = m.section(form.NamedSection, 'main', 'gogoc');

		o = s.option(form.ListValue, 'host_type', 'Mode');
		o.value('host');
		o.value('router');

		o = s.option(form.Value, 'prefixlen', 'Prefix length');
		o.depends('host_type', 'router');

		o = s.option(form.Flag, 'keepalive', 'Keepalive');
		o.rmempty = false;
		o.validate = function(sid, v) {
			self.seen.push(v);
			self.formvalueSeen.push(this.formvalue(sid));
			return true;
		};

		return m.render();
	}
});
