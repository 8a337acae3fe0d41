package config

import (
	"slices"
	"strings"

	"github.com/jsklein/gogoc/internal/secret"
	"github.com/jsklein/gogoc/uci"
)

// Entry is one key of the effective configuration, as gogoc.conf would
// write it.
type Entry struct {
	Key   string
	Value string
}

// Entries lists every key with its effective value, in the spec's order
// (enabled first, the new client's keys last), for `gogoc check`. Booleans
// read yes/no, durations are in the key's unit, lists are joined (':' for
// dns_server, ',' for dns_servers_ra) and the password is masked.
func (c *Config) Entries() []Entry {
	out := make([]Entry, 0, len(keys))
	for i := range keys {
		k := &keys[i]
		v := strings.Join(k.get(c), k.join)
		if k.secret {
			v = secret.String(v).String()
		}
		out = append(out, Entry{Key: k.name, Value: v})
	}
	return out
}

// Changed lists the keys whose values differ between a and b, in the
// spec's order, the password's included (compared, never shown). Every
// field of Config is some key's value (TestChangedSeesEveryField).
func Changed(a, b *Config) []string {
	var out []string
	for i := range keys {
		if !slices.Equal(keys[i].get(a), keys[i].get(b)) {
			out = append(out, keys[i].name)
		}
	}
	return out
}

// UCI returns the configuration as an /etc/config/gogoc file: one `config
// gogoc 'main'` section holding enabled and every key whose value is not
// the default, lists as `list` lines. The password is in it in clear text,
// since the file is what the router will read; it is not for logs.
func (c *Config) UCI() *uci.File {
	f := &uci.File{}
	s := f.AddSection("gogoc", "main")
	def := Defaults(FormatUCI)
	for i := range keys {
		k := &keys[i]
		vals := k.get(c)
		if k.name != "enabled" && slices.Equal(vals, k.get(&def)) {
			continue
		}
		if k.list {
			for _, v := range vals {
				s.AddList(k.name, v)
			}
			continue
		}
		v := vals[0]
		if k.boolean {
			// UCI's own spelling, as LuCI's checkboxes write it.
			v = "0"
			if vals[0] == "yes" {
				v = "1"
			}
		}
		s.Set(k.name, v)
	}
	return f
}
