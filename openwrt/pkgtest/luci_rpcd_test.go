package pkgtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jsklein/gogoc/uci"
)

// This file is the router side of the LuCI tests: what the page in
// testdata/luci talks to. It stands in for uhttpd-mod-ubus (JSON-RPC
// `call` at /ubus/, refused with -32002 "Access denied" unless the
// session's ACL allows the ubus object and method), rpcd's session ACLs
// (rpc_login_setup_acl_scope, rpc_session_acl_allowed: fnmatch without
// FNM_PATHNAME, so `*` also matches `/`), rpcd's file plugin
// (rpc_file_read: rpc_canonicalize_path, then the "file" ACL, then stat
// and open, errno mapped by rpc_errno_status; an empty file is
// UBUS_STATUS_NO_DATA, one of 256 KiB or more UBUS_STATUS_NOT_SUPPORTED)
// and uci plugin (get, set, delete staged per session until apply, as
// rpcd keeps a delta per session), and luci-base's admin/uci
// apply_rollback and confirm actions. Each session is one router with
// its own files and /etc/config/gogoc; the login is root's, whose
// `read '*'`/`write '*'` grants every installed ACL group: here
// luci-base's and rpcd's own (written out below) and the app's acl.d file.

const appACL = "../luci-app-gogoc/root/usr/share/rpcd/acl.d/luci-app-gogoc.json"

// ubus status codes (libubus).
const (
	ubusOK           = 0
	ubusInvalidArg   = 2
	ubusNoMethod     = 3
	ubusNotFound     = 4
	ubusNoData       = 5
	ubusDenied       = 6
	ubusNotSupported = 8
)

// rpcFileMaxSize is rpcd's RPC_FILE_MAX_SIZE: rpc_file_read refuses a
// file of that size or more.
const rpcFileMaxSize = 4096 * 64

// grant is one session ACL entry: scope ("ubus", "uci", "file", ...),
// and fnmatch patterns for the object and the function.
type grant struct{ scope, object, function string }

// baseGrants are what luci-base's and rpcd's acl.d files give every root
// login: the ubus uci methods LuCI itself calls, file listing, and
// session access checks.
var baseGrants = []grant{
	{"ubus", "session", "access"}, {"ubus", "session", "login"},
	{"ubus", "luci", "getFeatures"},
	{"ubus", "file", "list"}, {"file", "/", "list"}, {"file", "/*", "list"},
	{"ubus", "uci", "changes"}, {"ubus", "uci", "get"},
	{"ubus", "file", "remove"}, {"file", "/etc/luci-uploads/*", "write"},
	{"ubus", "uci", "add"}, {"ubus", "uci", "apply"}, {"ubus", "uci", "confirm"}, {"ubus", "uci", "delete"},
	{"ubus", "uci", "order"}, {"ubus", "uci", "rename"}, {"ubus", "uci", "set"},
}

// parseACL reads an rpcd acl.d file as rpc_login_setup_acl_file does for
// a login allowed every group and permission: under each group's "read"
// and "write", a scope is either a table object → [functions] or a list
// of objects, whose function is then the permission's name.
func parseACL(data []byte) ([]grant, error) {
	var groups map[string]map[string]json.RawMessage
	if err := json.Unmarshal(data, &groups); err != nil {
		return nil, err
	}
	var out []grant
	for _, g := range groups {
		for _, perm := range []string{"read", "write"} {
			raw, ok := g[perm]
			if !ok {
				continue
			}
			var scopes map[string]json.RawMessage
			if err := json.Unmarshal(raw, &scopes); err != nil {
				return nil, fmt.Errorf("%s: %w", perm, err)
			}
			for scope, v := range scopes {
				var table map[string][]string
				var list []string
				switch {
				case json.Unmarshal(v, &table) == nil:
					for obj, funcs := range table {
						for _, f := range funcs {
							out = append(out, grant{scope, obj, f})
						}
					}
				case json.Unmarshal(v, &list) == nil:
					for _, obj := range list {
						out = append(out, grant{scope, obj, perm})
					}
				default:
					return nil, fmt.Errorf("%s.%s: neither a table nor a list", perm, scope)
				}
			}
		}
	}
	return out, nil
}

func allowed(acl []grant, scope, object, function string) bool {
	for _, g := range acl {
		if g.scope == scope && fnmatch(g.object, object) && fnmatch(g.function, function) {
			return true
		}
	}
	return false
}

// fnmatch is fnmatch(3) with FNM_NOESCAPE and no other flag: `*` and `?`
// match any character including `/` and a leading `.`, brackets hold a
// set (`!` or `^` negates, `a-z` ranges), a backslash is literal.
func fnmatch(pattern, name string) bool {
	if pattern == "" {
		return name == ""
	}
	switch pattern[0] {
	case '*':
		for i := 0; i <= len(name); i++ {
			if fnmatch(pattern[1:], name[i:]) {
				return true
			}
		}
		return false
	case '?':
		return name != "" && fnmatch(pattern[1:], name[1:])
	case '[':
		if name == "" {
			return false
		}
		i := 1
		neg := i < len(pattern) && (pattern[i] == '!' || pattern[i] == '^')
		if neg {
			i++
		}
		first, in := i, false
		for ; i < len(pattern); i++ {
			if pattern[i] == ']' && i > first {
				break
			}
			if i+2 < len(pattern) && pattern[i+1] == '-' && pattern[i+2] != ']' {
				in = in || (pattern[i] <= name[0] && name[0] <= pattern[i+2])
				i += 2
			} else if pattern[i] == name[0] {
				in = true
			}
		}
		if i < len(pattern) {
			return in != neg && fnmatch(pattern[i+1:], name[1:])
		}
		// No closing bracket: the [ is an ordinary character.
	}
	return name != "" && name[0] == pattern[0] && fnmatch(pattern[1:], name[1:])
}

// canonicalPath is rpc_canonicalize_path: repeated slashes and "/./"
// drop out, "/x/../" collapses (back to the start of the string when
// there is no slash left), a trailing slash goes; nothing else, so a
// relative path stays relative and symlinks are not followed.
func canonicalPath(p string) string {
	if p == "" {
		return ""
	}
	out := make([]byte, 0, len(p))
	for i := 0; i < len(p); {
		if p[i] == '/' {
			if i+1 < len(p) && p[i+1] == '/' {
				i++
				continue
			}
			if i+1 < len(p) && p[i+1] == '.' {
				if i+2 == len(p) || p[i+2] == '/' {
					i += 2
					continue
				}
				if p[i+2] == '.' && (i+3 == len(p) || p[i+3] == '/') {
					for len(out) > 0 {
						c := out[len(out)-1]
						out = out[:len(out)-1]
						if c == '/' {
							break
						}
					}
					i += 3
					continue
				}
			}
		}
		out = append(out, p[i])
		i++
	}
	switch {
	case len(out) > 1 && out[len(out)-1] == '/':
		out = out[:len(out)-1]
	case len(out) == 0:
		out = append(out, '/')
	}
	return string(out)
}

// uciOp is one staged change: set (a value or a list) or delete.
type uciOp struct {
	config, section, option string
	values                  []string // nil: delete
	list                    bool
}

// luciRouter is one session's device.
type luciRouter struct {
	acl       []grant
	files     map[string]string // absolute path → content
	committed *uci.File         // /etc/config/gogoc
	staged    []uciOp
	calls     []string
}

// lucid is the stand-in server: the page, the view and the router side.
type lucid struct {
	t        *testing.T
	appGrant []grant
	srv      *httptest.Server

	mu      sync.Mutex
	routers map[string]*luciRouter
	tokens  map[string]string // apply token → session
}

func newLucid(t *testing.T) *lucid {
	t.Helper()
	app, err := parseACL([]byte(readFile(t, appACL)))
	if err != nil {
		t.Fatalf("%s: %v", appACL, err)
	}
	d := &lucid{t: t, appGrant: app, routers: map[string]*luciRouter{}, tokens: map[string]string{}}
	mux := http.NewServeMux()
	file := func(path, typ string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", typ)
			w.Write([]byte(readFile(t, path)))
		}
	}
	mux.Handle("GET /index.html", file("testdata/luci/index.html", "text/html"))
	mux.Handle("GET /shim.js", file("testdata/luci/shim.js", "text/javascript"))
	mux.Handle("GET /luci-static/resources/view/gogoc/gogoc.js", file(viewJS, "text/javascript"))
	mux.Handle("GET /luci-static/resources/view/selftest.js", file("testdata/luci/selftest.js", "text/javascript"))
	mux.HandleFunc("POST /ubus/", d.serveUbus)
	mux.HandleFunc("POST /cgi-bin/luci/admin/uci/apply_rollback", d.serveApply)
	mux.HandleFunc("POST /cgi-bin/luci/admin/uci/confirm", d.serveConfirm)
	d.srv = httptest.NewServer(mux)
	t.Cleanup(d.srv.Close)
	return d
}

// addRouter creates session sid: a router with the given
// /etc/config/gogoc and files.
func (d *lucid) addRouter(sid, config string, files map[string]string) {
	d.t.Helper()
	cfg, err := uci.Parse("gogoc", []byte(config))
	if err != nil {
		d.t.Fatalf("session %s: config: %v", sid, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	acl := append(slices.Clone(baseGrants), d.appGrant...)
	d.routers[sid] = &luciRouter{acl: acl, files: files, committed: cfg}
}

// state returns what session sid's router recorded and its committed
// /etc/config/gogoc.
func (d *lucid) state(sid string) (calls []string, committed string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.routers[sid]
	var b bytes.Buffer
	if err := uci.Write(&b, r.committed); err != nil {
		d.t.Errorf("session %s: the committed config cannot be written: %v", sid, err)
	}
	return slices.Clone(r.calls), b.String()
}

type rpcMsg struct {
	JSONRPC string            `json:"jsonrpc"`
	ID      json.RawMessage   `json:"id"`
	Method  string            `json:"method"`
	Params  []json.RawMessage `json:"params"`
}

func (d *lucid) serveUbus(w http.ResponseWriter, r *http.Request) {
	var body json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var reply any
	if bytes.HasPrefix(bytes.TrimSpace(body), []byte("[")) {
		var msgs []rpcMsg
		if err := json.Unmarshal(body, &msgs); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var replies []any
		for _, m := range msgs {
			replies = append(replies, d.handle(m))
		}
		reply = replies
	} else {
		var m rpcMsg
		if err := json.Unmarshal(body, &m); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		reply = d.handle(m)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(reply)
}

func (d *lucid) handle(m rpcMsg) map[string]any {
	out := map[string]any{"jsonrpc": "2.0", "id": m.ID}
	fail := func(code int, msg string) map[string]any {
		out["error"] = map[string]any{"code": code, "message": msg}
		return out
	}
	if m.Method != "call" || len(m.Params) != 4 {
		return fail(-32601, "Method not found")
	}
	var sid, object, method string
	var args map[string]json.RawMessage
	for i, p := range []any{&sid, &object, &method, &args} {
		if err := json.Unmarshal(m.Params[i], p); err != nil {
			return fail(-32602, "Invalid parameters")
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	rt := d.routers[sid]
	if rt == nil {
		return fail(-32002, "Access denied") // no such session
	}
	if !allowed(rt.acl, "ubus", object, method) {
		return fail(-32002, "Access denied")
	}
	out["result"] = d.call(rt, object, method, args)
	return out
}

func str(args map[string]json.RawMessage, key string) string {
	var s string
	json.Unmarshal(args[key], &s)
	return s
}

// call runs one ubus method for rt and returns the JSON-RPC result:
// [status] or [0, data].
func (d *lucid) call(rt *luciRouter, object, method string, args map[string]json.RawMessage) []any {
	status := func(code int) []any { return []any{code} }
	switch object + "." + method {
	case "session.access":
		return []any{ubusOK, map[string]any{"access": allowed(rt.acl, str(args, "scope"), str(args, "object"), str(args, "function"))}}

	case "file.read":
		// rpc_file_read: canonical path, ACL, stat, size, open, read.
		path := canonicalPath(str(args, "path"))
		code := ubusOK
		data, ok := rt.files[path]
		switch {
		case path == "":
			code = ubusInvalidArg
		case !allowed(rt.acl, "file", path, "read"):
			code = ubusDenied
		case !ok:
			code = ubusNotFound
		case len(data) >= rpcFileMaxSize:
			code = ubusNotSupported
		case data == "":
			code = ubusNoData
		}
		rt.calls = append(rt.calls, fmt.Sprintf("file read %s: %d", path, code))
		if code != ubusOK {
			return status(code)
		}
		return []any{ubusOK, map[string]any{"data": data}}

	case "uci.get":
		conf := str(args, "config")
		if !allowed(rt.acl, "uci", conf, "read") {
			return status(ubusDenied)
		}
		if conf != "gogoc" {
			return status(ubusNotFound)
		}
		return []any{ubusOK, map[string]any{"values": uciValues(rt.view())}}

	case "uci.set", "uci.delete":
		conf, sec := str(args, "config"), str(args, "section")
		if !allowed(rt.acl, "uci", conf, "write") {
			return status(ubusDenied)
		}
		if conf != "gogoc" || rt.view().Section(sec) == nil {
			return status(ubusNotFound)
		}
		if method == "delete" {
			var opts []string
			json.Unmarshal(args["options"], &opts)
			if o := str(args, "option"); o != "" {
				opts = append(opts, o)
			}
			if len(opts) == 0 {
				return status(ubusInvalidArg) // whole sections are not modelled
			}
			for _, o := range opts {
				rt.staged = append(rt.staged, uciOp{config: conf, section: sec, option: o})
				rt.calls = append(rt.calls, fmt.Sprintf("uci delete %s.%s.%s", conf, sec, o))
			}
			return status(ubusOK)
		}
		var values map[string]json.RawMessage
		json.Unmarshal(args["values"], &values)
		for _, k := range slices.Sorted(maps.Keys(values)) {
			op := uciOp{config: conf, section: sec, option: k}
			var one string
			if err := json.Unmarshal(values[k], &one); err == nil {
				op.values = []string{one}
			} else if err := json.Unmarshal(values[k], &op.values); err == nil {
				op.list = true
			} else {
				return status(ubusInvalidArg)
			}
			rt.staged = append(rt.staged, op)
			rt.calls = append(rt.calls, fmt.Sprintf("uci set %s.%s.%s=%s", conf, sec, k, strings.Join(op.values, " ")))
		}
		return status(ubusOK)
	}
	return status(ubusNoMethod)
}

// view is the config as this session sees it: committed plus its delta.
func (rt *luciRouter) view() *uci.File {
	var b bytes.Buffer
	uci.Write(&b, rt.committed)
	f, _ := uci.Parse("gogoc", b.Bytes())
	applyOps(f, rt.staged)
	return f
}

func applyOps(f *uci.File, ops []uciOp) {
	for _, op := range ops {
		s := f.Section(op.section)
		if s == nil {
			continue
		}
		s.Set(op.option, "") // libuci: a set replaces, a delete removes
		for _, v := range op.values {
			if op.list {
				s.AddList(op.option, v)
			} else {
				s.Set(op.option, v)
			}
		}
	}
}

// uciValues is rpcd's `uci get` reply for a whole config: sections by
// name, with .anonymous, .type, .name and .index, lists as arrays.
func uciValues(f *uci.File) map[string]any {
	out := map[string]any{}
	for i, s := range f.Sections {
		name := s.Name
		if name == "" {
			name = fmt.Sprintf("cfg%02x%04x", i, i) // rpcd's cfgXXXXXX ids
		}
		m := map[string]any{".anonymous": s.Name == "", ".type": s.Type, ".name": name, ".index": i}
		for _, o := range s.Options {
			if o.List {
				m[o.Name] = o.Values
			} else {
				m[o.Name] = o.Value()
			}
		}
		out[name] = m
	}
	return out
}

// serveApply is admin/uci/apply_rollback: `uci apply` with rollback
// commits the session's delta and answers a confirm token; with nothing
// staged rpcd says UBUS_STATUS_NO_DATA, which LuCI turns into 204. The
// session comes as the form value sid.
func (d *lucid) serveApply(w http.ResponseWriter, r *http.Request) {
	sid := r.PostFormValue("sid") // LuCI posts its query as a form body
	d.mu.Lock()
	defer d.mu.Unlock()
	rt := d.routers[sid]
	if rt == nil || !allowed(rt.acl, "ubus", "uci", "apply") {
		http.Error(w, "denied", http.StatusForbidden)
		return
	}
	if len(rt.staged) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	applyOps(rt.committed, rt.staged)
	rt.staged = nil
	rt.calls = append(rt.calls, "uci apply rollback")
	token := fmt.Sprintf("%x", len(d.tokens)+1) + "-" + sid
	d.tokens[token] = sid
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"token": token})
}

// serveConfirm is admin/uci/confirm: `uci confirm` for the token's
// session, which keeps the applied config.
func (d *lucid) serveConfirm(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	sid, ok := d.tokens[r.PostFormValue("token")]
	if !ok {
		http.Error(w, "denied", http.StatusForbidden)
		return
	}
	rt := d.routers[sid]
	rt.calls = append(rt.calls, "uci confirm")
	w.WriteHeader(http.StatusNoContent)
}

// TestLuCIRpcdStandIn checks the stand-in's ACL matching and path
// handling against what rpcd's C code does.
func TestLuCIRpcdStandIn(t *testing.T) {
	for _, c := range []struct {
		pattern, name string
		want          bool
	}{
		{"/var/run/gogoc/*", "/var/run/gogoc/status.json", true},
		{"/var/run/gogoc/*", "/var/run/gogoc/a/b", true}, // no FNM_PATHNAME
		{"/var/run/gogoc/*", "/var/run/gogoc", false},
		{"/var/run/gogoc/*", "status.json", false},
		{"/tmp/*", "/tmp/.x", true}, // no FNM_PERIOD
		{"s?ssion", "session", true},
		{"[a-c]x", "bx", true},
		{"[!a-c]x", "bx", false},
		{`a\*`, `a\b`, true}, // FNM_NOESCAPE: the backslash is literal
	} {
		if got := fnmatch(c.pattern, c.name); got != c.want {
			t.Errorf("fnmatch(%q, %q) = %v, want %v", c.pattern, c.name, got, c.want)
		}
	}
	for in, want := range map[string]string{
		"/var/run/gogoc/status.json":         "/var/run/gogoc/status.json",
		"/var/run//gogoc/./status.json":      "/var/run/gogoc/status.json",
		"/var/run/gogoc/../../../etc/shadow": "/etc/shadow",
		"/var/run/gogoc/":                    "/var/run/gogoc",
		"status.json":                        "status.json",
		"x/../y":                             "/y", // the collapse runs back to the start
		"/..":                                "/",
	} {
		if got := canonicalPath(in); got != want {
			t.Errorf("canonicalPath(%q) = %q, want %q", in, got, want)
		}
	}
}
