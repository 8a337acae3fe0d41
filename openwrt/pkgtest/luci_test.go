package pkgtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jsklein/gogoc/config"
	"github.com/jsklein/gogoc/uci"
)

// The LuCI page runs in headless Chromium on testdata/luci/shim.js, a
// stand-in for luci-base's client runtime, against luci_rpcd_test.go's
// stand-in for the router's uhttpd, rpcd and LuCI apply endpoints.

const viewJS = "../luci-app-gogoc/htdocs/luci-static/resources/view/gogoc/gogoc.js"

func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("GOGOC_CHROMIUM"); p != "" {
		return p
	}
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	t.Skip("no chromium on PATH (apt-get install chromium): the LuCI view is not rendered")
	return ""
}

// artefacts is where screenshots go: $GOGOC_ARTIFACTS/luci when set, else
// the test's temporary directory.
func artefacts(t *testing.T) string {
	dir := t.TempDir()
	if a := os.Getenv("GOGOC_ARTIFACTS"); a != "" {
		dir = filepath.Join(a, "luci")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// statusFor is the daemon's status JSON (contract 3) in a given state.
func statusFor(state string, now time.Time) map[string]any {
	st := map[string]any{
		"state": state, "since": now.Add(-3725 * time.Second).UTC().Format(time.RFC3339),
		"pid": 4242, "updated": now.UTC().Format(time.RFC3339),
		"broker": "broker.example.net:3653", "transport": "udp", "reconnects": 2,
	}
	switch state {
	case "up":
		for k, v := range map[string]any{
			"tunnel_mode": "v6udpv4", "data_plane": "kernel", "interface": "gogoc",
			"local_endpoint": "192.0.2.10:3653", "remote_endpoint": "198.51.100.1:3653",
			"client_ipv6": "2001:db8:ffff::2", "server_ipv6": "2001:db8:ffff::1",
			"prefix": "2001:db8:1200::/56", "lan_prefix": "2001:db8:1200::/64",
			"keepalive": map[string]any{"interval_s": 30, "rtt_ms": 1.25, "sent": 10, "lost": 0},
		} {
			st[k] = v
		}
	case "lost", "backoff":
		st["last_error"] = "keepalive: 3 echo requests unanswered"
	case "idle", "stopped":
		delete(st, "broker")
		delete(st, "transport")
	}
	return st
}

func statusJSON(t *testing.T, st any) string {
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type luciField struct {
	Option, Kind, Tab, Value string
	Hidden                   bool
}

type luciPage struct {
	SID    string
	Status struct {
		State, Text      string
		Fields, Elements []string
	}
	Reads []struct {
		T    float64
		Path string
	}
	Calls   []string
	Modal   string
	Reloads int
	Fields  []luciField
	Errors  map[string]string
}

type luciResult struct {
	Fields   []luciField
	Tabs     []string
	Cases    []struct{ Option, Error string }
	Pages    []luciPage
	Selftest *struct {
		StringChild, ArrayChild, NullItem string
		NodeAsAttrs, PollRanAtAdd         int
		Reads                             map[string]string
		FlagValidatorSaw, FlagFormvalue   string
		PrefixlenHidden                   bool
		Calls                             []string
		Reloads                           int
	}
	Pwned any
	Error *string
}

// page is one LuCI page the harness opens (see index.html).
type page struct {
	SID     string      `json:"sid"`
	Title   string      `json:"title,omitempty"`
	Actions [][2]string `json:"actions,omitempty"`
	Save    bool        `json:"save,omitempty"`
	Reads   int         `json:"reads,omitempty"`
	Show    string      `json:"show,omitempty"`
}

var resultRE = regexp.MustCompile(`(?s)<pre id="result">(.*?)</pre>`)

// open renders the harness with run in a fresh headless Chromium, saves
// a screenshot as shot.png and returns what the harness observed.
// Virtual time lets polls and the apply hold-off run without waiting.
func (d *lucid) open(run map[string]any, shot string) luciResult {
	t := d.t
	t.Helper()
	spec, err := json.Marshal(run)
	if err != nil {
		t.Fatal(err)
	}
	u := d.srv.URL + "/index.html?" + url.Values{"run": {string(spec)}}.Encode()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Second)
	defer cancel()
	p := filepath.Join(artefacts(t), shot+".png")
	// One launch gives both the DOM (stdout) and the screenshot.
	out, err := exec.CommandContext(ctx, chromium(t),
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=60000", "--window-size=900,1400",
		"--dump-dom", "--screenshot="+p, u).Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	m := resultRE.FindSubmatch(out)
	if m == nil || len(m[1]) == 0 {
		t.Fatalf("the harness reported nothing; DOM:\n%.3000s", out)
	}
	var res luciResult
	if err := json.Unmarshal([]byte(html.UnescapeString(string(m[1]))), &res); err != nil {
		t.Fatalf("harness result: %v", err)
	}
	if res.Error != nil {
		t.Fatalf("the view failed in the LuCI stand-in: %s", *res.Error)
	}
	if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
		t.Errorf("no screenshot at %s", p)
	} else {
		t.Logf("screenshot %s", p)
	}
	return res
}

func shippedConfig(t *testing.T) string {
	return readFile(t, filepath.Join(filesDir, "gogoc.config"))
}

// withOptions is the shipped config with options of section main set
// (an empty value deletes, a value with a space makes a list).
func withOptions(t *testing.T, opts [][2]string) string {
	t.Helper()
	f, err := uci.Parse("gogoc", []byte(shippedConfig(t)))
	if err != nil {
		t.Fatal(err)
	}
	s := f.Section("main")
	for _, o := range opts {
		s.Set(o[0], "")
		if strings.Contains(o[1], " ") {
			for _, v := range strings.Fields(o[1]) {
				s.AddList(o[0], v)
			}
		} else {
			s.Set(o[0], o[1])
		}
	}
	var b strings.Builder
	if err := uci.Write(&b, f); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

type valCase struct {
	option, value string
	context       map[string]string
}

// refused says whether config/ refuses value for option in context: the
// rule the view's checks must match.
func refused(t *testing.T, c valCase) bool {
	var b strings.Builder
	b.WriteString("config gogoc 'main'\n")
	opts := map[string]string{"server": "broker.example.net", "auth_method": "anonymous"}
	for k, v := range c.context {
		opts[k] = v
	}
	opts[c.option] = c.value
	for k, v := range opts {
		fmt.Fprintf(&b, "\toption %s %s\n", k, uci.Quote(v))
	}
	for _, is := range parseIssues(t, b.String()) {
		if is.Key == c.option {
			return true
		}
	}
	return false
}

// parseIssues returns every problem config/ finds in a UCI document,
// errors and warnings alike.
func parseIssues(t *testing.T, doc string) config.Issues {
	t.Helper()
	_, issues, err := config.Parse("gogoc", []byte(doc), config.FormatUCI)
	var errs config.Issues
	if errors.As(err, &errs) {
		issues = append(issues, errs...)
	} else if err != nil {
		t.Fatalf("%q: %v", doc, err)
	}
	return issues
}

// checkErrors returns config/'s errors (not warnings) for a document:
// what makes `gogoc check` fail.
func checkErrors(t *testing.T, doc string) error {
	t.Helper()
	_, _, err := config.Parse("gogoc", []byte(doc), config.FormatUCI)
	return err
}

var (
	routerCtx = map[string]string{"host_type": "router", "if_prefix": "br-lan"}
	plain     = map[string]string{"auth_method": "plain", "userid": "u", "passwd": "secret"}
)

var validationCases = []valCase{
	{"server", "broker.example.net", nil},
	{"server", "broker.example.net:3653", nil},
	{"server", "192.0.2.1:3653", nil},
	{"server", "[2001:db8::1]:3653", nil},
	{"server", "[2001:db8::1]", nil},
	{"server", "2001:db8::1", nil},
	{"server", "bad host!", nil},
	{"server", "broker.example.net:0", nil},
	{"server", "broker.example.net:65536", nil},
	{"server", "-bad.example.net", nil},
	{"server", "10.0.0.300", nil},
	{"server", "[192.0.2.1]", nil},
	{"server", "", nil},
	{"userid", "", plain},
	{"passwd", "", plain},
	{"userid", "alice", plain},
	{"prefixlen", "56", routerCtx},
	{"prefixlen", "0", routerCtx},
	{"prefixlen", "129", routerCtx},
	{"prefixlen", "x4", routerCtx},
	{"prefixlen", "80", routerCtx},
	{"if_prefix", "br-lan", routerCtx},
	{"if_prefix", "", routerCtx},
	{"if_prefix", "br-lan-too-long-x", routerCtx},
	{"if_prefix", "br lan", routerCtx},
	{"subnet_id", "0", routerCtx},
	{"subnet_id", "ff", routerCtx},
	{"subnet_id", "ff", map[string]string{"host_type": "router", "if_prefix": "br-lan", "prefixlen": "56"}},
	{"subnet_id", "0x100", map[string]string{"host_type": "router", "if_prefix": "br-lan", "prefixlen": "56"}},
	{"subnet_id", "xyz", routerCtx},
	{"dns_servers_ra", "2001:db8::53", routerCtx},
	{"dns_servers_ra", "fe80::1", routerCtx},
	{"dns_servers_ra", "ff02::1", routerCtx},
	{"dns_servers_ra", "192.0.2.53", routerCtx},
	{"dns_servers_ra", "[2001:db8::53]", routerCtx},
	{"route_metric", "2147483647", nil},
	{"route_metric", "2147483648", nil},
	{"keepalive_interval", "86400", nil},
	{"keepalive_interval", "86401", nil},
	{"keepalive_interval", "0", nil},
	{"keepalive_interval", "0", map[string]string{"keepalive": "0"}},
	{"keepalive", "0", map[string]string{"tunnel_mode": "v6udpv4"}},
	{"keepalive", "1", map[string]string{"tunnel_mode": "v6udpv4"}},
	{"tunnel_mode", "v4v6", routerCtx},
	{"tunnel_mode", "v4v6", nil},
	{"tunnel_mode", "v6v4", routerCtx},
	{"keepalive", "0", map[string]string{"tunnel_mode": "v6v4"}},
	{"keepalive_timeout", "0", nil},
	{"keepalive_timeout", "60", nil},
	{"keepalive_misses", "101", nil},
	{"retry_delay", "300", nil},
	{"retry_delay", "301", nil},
	{"retry_delay", "3601", map[string]string{"retry_delay_max": "3600"}},
	{"retry_delay", "-1", nil},
	{"retry_delay_max", "4000", nil},
	{"wan_interface", "wan_6", nil},
	{"wan_interface", "wan 6", nil},
	{"client_v4", "auto", nil},
	{"client_v4", "192.0.2.1", nil},
	{"client_v4", "192.0.2.01", nil},
	{"client_v4", "300.1.1.1", nil},
	{"if_tunnel_v6v4", "tb-6", nil},
	{"if_tunnel_v6v4", "tb_6", nil},
	{"tcp_fallback_delay", "60001", nil},
	{"log_filename", "gogoc.log", nil},
	{"log_filename", "a b", nil},
	{"status_file", "/var/run/gogoc/status.json", nil},
	{"status_file", "/var/run/gogoc/other-1.json", nil},
	{"status_file", "/tmp/gogoc.json", nil},
	{"status_file", "/tmp/run/gogoc/status.json", nil},
	{"status_file", "status.json", nil},
	{"status_file", "/var/run/gogoc/../x.json", nil},
	{"status_file", "/var/run/gogoc/sub/x.json", nil},
	{"status_file", "/var/run/gogoc/", nil},
}

// actionsFor types a case's context (in name order, which puts
// host_type before the options it reveals) and then its value.
func actionsFor(c valCase) [][2]string {
	var a [][2]string
	keys := make([]string, 0, len(c.context))
	for k := range c.context {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		a = append(a, [2]string{k, c.context[k]})
	}
	return append(a, [2]string{c.option, c.value})
}

// TestLuCIForm renders the settings page: every field the issue lists is
// there, in its tab, and the view accepts and refuses exactly what
// config/ does. Each case is typed into a fresh page the way an admin
// would: LuCI validates a field on its own events and every shown field
// again on each change.
func TestLuCIForm(t *testing.T) {
	d := newLucid(t)
	d.addRouter("form", shippedConfig(t), nil)
	var cases []map[string]any
	for _, c := range validationCases {
		cases = append(cases, map[string]any{"sid": "form", "option": c.option, "actions": actionsFor(c)})
	}
	res := d.open(map[string]any{
		"cases": cases,
		// The screenshot: the shipped settings, with refused values.
		"form": map[string]any{"sid": "form", "actions": [][2]string{
			{"retry_delay", "4000"}, {"tunnel_mode", "v6udpv4"}, {"keepalive", "0"}, {"status_file", "/tmp/gogoc.json"},
		}},
	}, "form")

	if want := []string{"connection", "router", "advanced", "logging"}; !slices.Equal(res.Tabs, want) {
		t.Errorf("tabs %q, want %q", res.Tabs, want)
	}
	tabOf := map[string]string{}
	for _, f := range res.Fields {
		tabOf[f.Option] = f.Tab
	}
	for tab, opts := range map[string][]string{
		"connection": {"enabled", "server", "auth_method", "userid", "passwd"},
		"router":     {"host_type", "prefixlen", "if_prefix", "ra"},
		"advanced":   {"tunnel_mode", "keepalive", "keepalive_interval", "retry_delay", "retry_delay_max", "data_plane"},
		"logging":    {"log_syslog", "log_stderr", "syslog_facility", "status_file"},
	} {
		for _, o := range opts {
			if tabOf[o] != tab {
				t.Errorf("field %s in tab %q, want %q", o, tabOf[o], tab)
			}
		}
	}
	// Every field is a key config/ knows: a LuCI typo would write an
	// option the daemon ignores.
	for _, f := range res.Fields {
		doc := "config gogoc 'main'\n\toption " + f.Option + " ''\n"
		for _, is := range parseIssues(t, doc) {
			if is.Key == f.Option && strings.Contains(is.Msg, "unknown") {
				t.Errorf("field %s: %v", f.Option, is)
			}
		}
	}
	// The form shows the shipped values; options that depend on another
	// (router mode, credentials) start hidden.
	for _, f := range res.Fields {
		switch f.Option {
		case "enabled":
			if f.Value != "0" || f.Kind != "checkbox" {
				t.Errorf("enabled shows %q (%s)", f.Value, f.Kind)
			}
		case "server":
			if f.Value != "broker.example.net" {
				t.Errorf("server shows %q", f.Value)
			}
		case "keepalive":
			if f.Value != "1" {
				t.Errorf("keepalive shows %q", f.Value)
			}
		case "prefixlen", "if_prefix", "userid", "passwd":
			if !f.Hidden {
				t.Errorf("%s is shown in host mode with anonymous login", f.Option)
			}
		}
	}

	if len(res.Cases) != len(validationCases) {
		t.Fatalf("%d case results for %d cases", len(res.Cases), len(validationCases))
	}
	for i, c := range validationCases {
		got := res.Cases[i]
		want := refused(t, c)
		if (got.Error != "") != want {
			t.Errorf("%s=%q (context %v): view says %q, config/ refuses: %v", c.option, c.value, c.context, got.Error, want)
		}
	}
}

const statusFileDoc = "config gogoc 'main'\n\toption server 'broker.example.net'\n\toption auth_method 'anonymous'\n"

// TestStatusFileWhereLuCIReads: every status_file config/ accepts is a
// path the app's ACL lets the page read, so the page and the daemon look
// at the same file.
func TestStatusFileWhereLuCIReads(t *testing.T) {
	acl, err := parseACL([]byte(readFile(t, appACL)))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{
		config.DefaultStatusFile, "/var/run/gogoc/other.json", "/tmp/gogoc.json", "/tmp/run/gogoc/status.json",
		"status.json", "gogoc/status.json", "/var/run/gogoc/../../etc/x", "/var/run/gogoc/a/b.json",
		"/var/run/gogoc/", "/var/run/gogoc/.", "/var/run//gogoc/x.json", `/var/run/gogoc/a\b`,
	} {
		doc := statusFileDoc + "\toption status_file " + uci.Quote(p) + "\n"
		accepted := checkErrors(t, doc) == nil
		readable := allowed(acl, "file", canonicalPath(p), "read") && canonicalPath(p) == p
		if accepted && !readable {
			t.Errorf("config/ accepts status_file %q, which the page may not read", p)
		}
	}
	if err := checkErrors(t, statusFileDoc+"\toption status_file '"+config.DefaultStatusFile+"'\n"); err != nil {
		t.Errorf("the default status file is refused: %v", err)
	}
}

// TestLuCIACL: the app's ACL grants the page what it uses and nothing
// more: reading its status files, and its own uci config.
func TestLuCIACL(t *testing.T) {
	acl, err := parseACL([]byte(readFile(t, appACL)))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, g := range acl {
		got = append(got, g.scope+" "+g.object+" "+g.function)
	}
	sort.Strings(got)
	want := []string{
		"file /var/run/gogoc/* read",
		"ubus file read",
		"uci gogoc read",
		"uci gogoc write",
	}
	if !slices.Equal(got, want) {
		t.Errorf("ACL grants\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var menu map[string]struct {
		Depends struct{ ACL []string }
	}
	if err := json.Unmarshal([]byte(readFile(t, "../luci-app-gogoc/root/usr/share/luci/menu.d/luci-app-gogoc.json")), &menu); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(menu["admin/services/gogoc"].Depends.ACL, []string{"luci-app-gogoc"}) {
		t.Errorf("menu entry depends on ACL %v", menu["admin/services/gogoc"].Depends.ACL)
	}
}

const hostile = `<img src=x onerror="window.__gogocPwned=1">`

// TestLuCIStatus: the status block shows each daemon state and the fields
// the state carries, polled from the configured status file; whatever
// the file holds is shown as text, and when there is no status it says
// what happened.
func TestLuCIStatus(t *testing.T) {
	d := newLucid(t)
	now := time.Now()
	def := config.DefaultStatusFile
	states := []string{"idle", "negotiating", "up", "lost", "backoff", "stopped"}

	hostileSt := statusFor("lost", now)
	hostileKeys := []string{"last_error", "broker", "transport", "interface", "prefix", "client_ipv6"}
	for _, k := range hostileKeys {
		hostileSt[k] = hostile
	}
	wrongTypes := statusFor("up", now)
	wrongTypes["keepalive"] = map[string]any{"rtt_ms": "12", "sent": 3, "lost": -1}
	wrongTypes["broker"] = map[string]any{"x": 1}
	wrongTypes["reconnects"] = "many"
	wrongTypes["last_error"] = 42

	type odd struct {
		sid, config string
		files       map[string]string
	}
	odds := []odd{
		{"hostile", shippedConfig(t), map[string]string{def: statusJSON(t, hostileSt)}},
		{"wrong-types", shippedConfig(t), map[string]string{def: statusJSON(t, wrongTypes)}},
		{"array", shippedConfig(t), map[string]string{def: "[]"}},
		{"garbage", shippedConfig(t), map[string]string{def: `{"state": "up", `}},
		{"empty", shippedConfig(t), map[string]string{def: ""}},
		{"no-state", shippedConfig(t), map[string]string{def: `{"pid": 1}`}},
		{"absent", shippedConfig(t), nil},
		// A status_file from before it was restricted: the daemon refuses
		// such a config, and the page may not read there either.
		{"outside", withOptions(t, [][2]string{{"status_file", "/tmp/gogoc.json"}}),
			map[string]string{"/tmp/gogoc.json": statusJSON(t, statusFor("up", now))}},
		{"relative", withOptions(t, [][2]string{{"status_file", "status.json"}}),
			map[string]string{"/status.json": statusJSON(t, statusFor("up", now))}},
		{"custom", withOptions(t, [][2]string{{"status_file", "/var/run/gogoc/other.json"}}),
			map[string]string{"/var/run/gogoc/other.json": statusJSON(t, statusFor("up", now))}},
	}
	var pages []page
	for _, o := range odds {
		d.addRouter(o.sid, o.config, o.files)
		pages = append(pages, page{SID: o.sid, Reads: 2, Show: "status"})
	}
	for _, s := range states {
		d.addRouter(s, shippedConfig(t), map[string]string{def: statusJSON(t, statusFor(s, now))})
		pages = append(pages, page{SID: s, Reads: 2, Show: "status"})
	}
	res := d.open(map[string]any{"pages": pages}, "status")
	if len(res.Pages) != len(pages) {
		t.Fatalf("%d page results for %d pages", len(res.Pages), len(pages))
	}
	if res.Pwned != nil {
		t.Errorf("a status value ran script in the admin's page (window.__gogocPwned = %v)", res.Pwned)
	}
	bySID := map[string]luciPage{}
	for i, p := range res.Pages {
		if p.SID != pages[i].SID {
			t.Fatalf("result %d is for %q, want %q", i, p.SID, pages[i].SID)
		}
		bySID[p.SID] = p
		// LuCI's poll.add runs the function at once and then every 5 s:
		// one read when the page opens, the next about 5 s later.
		if len(p.Reads) < 2 {
			t.Errorf("%s: %d status reads, want the first and a poll", p.SID, len(p.Reads))
			continue
		}
		for j := 1; j < len(p.Reads); j++ {
			if gap := p.Reads[j].T - p.Reads[j-1].T; gap < 1000 {
				t.Errorf("%s: status read twice within %.0f ms (reads %v)", p.SID, gap, p.Reads)
			}
		}
		if gap := p.Reads[1].T - p.Reads[0].T; gap > 10000 {
			t.Errorf("%s: %0.f ms between the first read and the poll", p.SID, gap)
		}
		if len(p.Status.Elements) != 0 {
			t.Errorf("%s: status block holds elements %v", p.SID, p.Status.Elements)
		}
		if strings.Contains(p.Status.Text, "undefined") || strings.Contains(p.Status.Text, "NaN") {
			t.Errorf("%s: status shows %q", p.SID, p.Status.Text)
		}
	}

	for _, state := range states {
		got := bySID[state]
		if got.Reads[0].Path != def {
			t.Errorf("%s: reads %s, want %s", state, got.Reads[0].Path, def)
		}
		if got.Status.State != state || !strings.Contains(got.Status.Text, "("+state+")") {
			t.Errorf("state %q, text %q; want %s", got.Status.State, got.Status.Text, state)
		}
		st := statusFor(state, now)
		want := []string{"state", "uptime", "reconnects"}
		for _, k := range []string{"broker", "tunnel_mode", "client_ipv6", "server_ipv6", "prefix", "lan_prefix", "last_error", "keepalive"} {
			if _, ok := st[k]; ok {
				want = append(want, k)
			}
		}
		for _, k := range want {
			if !slices.Contains(got.Status.Fields, k) {
				t.Errorf("%s: status lacks %s (shows %q)", state, k, got.Status.Fields)
			}
		}
		for _, k := range []string{"broker", "prefix", "last_error", "client_ipv6"} {
			if v, ok := st[k].(string); ok && !strings.Contains(got.Status.Text, v) {
				t.Errorf("%s: status text lacks %s %q:\n%s", state, k, v, got.Status.Text)
			}
		}
		// since is 1 h 2 min 5 s before the page loaded.
		if !strings.Contains(got.Status.Text, "1h 2m") {
			t.Errorf("%s: uptime not shown as 1h 2m…:\n%s", state, got.Status.Text)
		}
		if state == "up" && !strings.Contains(got.Status.Text, "1.25 ms") {
			t.Errorf("keepalive RTT missing:\n%s", got.Status.Text)
		}
	}

	expect := func(sid, state string, texts ...string) {
		t.Helper()
		got := bySID[sid]
		if got.Status.State != state {
			t.Errorf("%s: state %q, want %q (text %q)", sid, got.Status.State, state, got.Status.Text)
		}
		for _, s := range texts {
			if !strings.Contains(got.Status.Text, s) {
				t.Errorf("%s: status text lacks %q:\n%s", sid, s, got.Status.Text)
			}
		}
	}
	// Broker text is text: the markup shows as typed, nothing runs.
	expect("hostile", "lost", hostile, "(lost)")
	if n := strings.Count(bySID["hostile"].Status.Text, hostile); n != len(hostileKeys) {
		t.Errorf("hostile: the markup shows %d times:\n%s", n, bySID["hostile"].Status.Text)
	}
	// A field of the wrong type is named; the rest is shown.
	expect("wrong-types", "up", "(up)", "2001:db8:1200::/56", "Ignored", "broker", "reconnects", "last_error", "keepalive.rtt_ms", "keepalive.lost")
	if slices.Contains(bySID["wrong-types"].Status.Fields, "broker") {
		t.Errorf("wrong-types: a broker object is shown: %q", bySID["wrong-types"].Status.Text)
	}
	expect("array", "unreadable", "not a JSON object")
	expect("garbage", "unreadable", "Unreadable status in "+def)
	expect("empty", "unreadable", "empty")
	expect("no-state", "unreadable", "no state")
	expect("absent", "not-running", "not running", def)
	expect("outside", "denied", "Permission denied", "/tmp/gogoc.json", "/var/run/gogoc/")
	expect("relative", "denied", "Permission denied", "status.json")
	expect("custom", "up", "(up)")
	if r := bySID["custom"].Reads; r[0].Path != "/var/run/gogoc/other.json" {
		t.Errorf("custom: reads %s", r[0].Path)
	}
	for _, p := range res.Pages {
		calls, _ := d.state(p.SID)
		for _, c := range calls {
			if strings.HasPrefix(c, "uci ") {
				t.Errorf("%s: showing the status changed the config: %s", p.SID, c)
			}
		}
	}
}

// saveCase is one Save & Apply: on a router with config, the actions,
// then what must be in /etc/config/gogoc afterwards (an empty value:
// the option is gone), or refused: LuCI shows "Save error" and sends
// nothing.
type saveCase struct {
	sid     string
	config  [][2]string
	actions [][2]string
	refused bool
	want    map[string]string
}

// TestLuCISave clicks Save & Apply: what the page saves passes `gogoc
// check`, what `gogoc check` would refuse is refused by the page, and
// an option the form hides is deleted, as LuCI deletes hidden options.
func TestLuCISave(t *testing.T) {
	d := newLucid(t)
	routerCfg := [][2]string{
		{"host_type", "router"}, {"if_prefix", "br-lan"}, {"prefixlen", "56"}, {"subnet_id", "1"},
		{"ra", "none"}, {"dns_servers_ra", "2001:db8::53 2001:db8::54"},
	}
	cases := []saveCase{{
		// v6udpv4 behind NAT needs the keepalive (config/ refuses it off).
		sid: "udp-no-keepalive", actions: [][2]string{{"tunnel_mode", "v6udpv4"}, {"keepalive", "0"}}, refused: true,
	}, {
		sid: "no-keepalive-then-udp", actions: [][2]string{{"keepalive", "0"}, {"tunnel_mode", "v6udpv4"}}, refused: true,
	}, {
		sid: "udp", actions: [][2]string{{"tunnel_mode", "v6udpv4"}},
		want: map[string]string{"tunnel_mode": "v6udpv4", "keepalive": "1"},
	}, {
		sid: "retry", actions: [][2]string{{"retry_delay", "4000"}}, refused: true,
	}, {
		sid: "status-elsewhere", actions: [][2]string{{"status_file", "/tmp/gogoc.json"}}, refused: true,
	}, {
		sid: "enable", actions: [][2]string{{"enabled", "1"}, {"server", "[2001:db8::1]:3653"}},
		want: map[string]string{"enabled": "1", "server": "[2001:db8::1]:3653"},
	}, {
		sid: "router", actions: [][2]string{
			{"host_type", "router"}, {"if_prefix", "br-lan"}, {"prefixlen", "56"}, {"subnet_id", "ff"}, {"dns_servers_ra", "2001:db8::53"},
		},
		want: map[string]string{"host_type": "router", "if_prefix": "br-lan", "prefixlen": "56", "subnet_id": "ff", "dns_servers_ra": "2001:db8::53"},
	}, {
		sid: "back-to-host", config: routerCfg, actions: [][2]string{{"host_type", "host"}},
		want: map[string]string{"host_type": "host", "if_prefix": "", "prefixlen": "", "subnet_id": "", "ra": "", "dns_servers_ra": ""},
	}, {
		sid: "anonymous", config: [][2]string{{"auth_method", "plain"}, {"userid", "alice"}, {"passwd", "s3cret"}},
		actions: [][2]string{{"auth_method", "anonymous"}},
		want:    map[string]string{"auth_method": "anonymous", "userid": "", "passwd": ""},
	}}
	var pages []page
	for _, c := range cases {
		d.addRouter(c.sid, withOptions(t, c.config), map[string]string{config.DefaultStatusFile: statusJSON(t, statusFor("up", time.Now()))})
		pages = append(pages, page{SID: c.sid, Actions: c.actions, Save: true})
	}
	res := d.open(map[string]any{"pages": pages}, "save")
	if len(res.Pages) != len(pages) {
		t.Fatalf("%d page results for %d pages", len(res.Pages), len(pages))
	}
	for i, c := range cases {
		p := res.Pages[i]
		calls, committed := d.state(c.sid)
		// What the admin asked for, as `uci set` would write it: config/
		// must agree with the page on refusing it.
		asked := checkErrors(t, withOptions(t, append(slices.Clone(c.config), c.actions...)))
		if c.refused {
			if asked == nil {
				t.Errorf("%s: case says refused, but config/ accepts it", c.sid)
			}
			if !strings.Contains(p.Modal, "Save error") {
				t.Errorf("%s: no Save error (field errors %v); router saw %q", c.sid, p.Errors, calls)
			}
			for _, call := range calls {
				if strings.HasPrefix(call, "uci ") {
					t.Errorf("%s: refused, yet the page sent %q", c.sid, call)
				}
			}
			if err := checkErrors(t, committed); err != nil {
				t.Errorf("%s: the router's config fails `gogoc check`: %v\n%s", c.sid, err, committed)
			}
			continue
		}
		if p.Modal != "" {
			t.Errorf("%s: %s", c.sid, p.Modal)
			continue
		}
		// Save & Apply: the changes, then apply with rollback and the
		// confirm, then LuCI reloads the page.
		iSet := slices.IndexFunc(calls, func(s string) bool { return strings.HasPrefix(s, "uci set ") })
		iApply, iConfirm := slices.Index(calls, "uci apply rollback"), slices.Index(calls, "uci confirm")
		if iSet < 0 || iApply < iSet || iConfirm < iApply || p.Reloads != 1 {
			t.Errorf("%s: router saw %q, page reloaded %d times; want uci set…, apply, confirm, one reload", c.sid, calls, p.Reloads)
		}
		if err := checkErrors(t, committed); err != nil {
			t.Errorf("%s: the page saved a config `gogoc check` refuses: %v\n%s", c.sid, err, committed)
		}
		f, err := uci.Parse("gogoc", []byte(committed))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range c.want {
			got := ""
			if o := f.Section("main").Option(k); o != nil {
				got = strings.Join(o.Values, " ")
			}
			if got != v {
				t.Errorf("%s: after Save & Apply %s = %q, want %q", c.sid, k, got, v)
			}
			if v == "" && !slices.Contains(calls, "uci delete gogoc.main."+k) {
				t.Errorf("%s: %s not deleted: %q", c.sid, k, calls)
			}
		}
	}
}

// TestLuCIStandIn pins the behaviours of the LuCI stand-in the view's
// tests rely on, each as luci-base (and rpcd) have it: a kinder stand-in
// would let a broken view pass.
func TestLuCIStandIn(t *testing.T) {
	d := newLucid(t)
	d.addRouter("selftest", withOptions(t, [][2]string{{"host_type", "router"}, {"prefixlen", "56"}}), map[string]string{
		config.DefaultStatusFile:     `{"state":"up"}`,
		"/var/run/gogoc/empty.json":  "",
		"/etc/shadow":                "root:x:",
		"/tmp/run/gogoc/status.json": `{"state":"up"}`,
	})
	st := d.open(map[string]any{"selftest": true}, "standin").Selftest
	if st == nil {
		t.Fatal("no self-test result")
	}
	// luci.js dom.append: a lone string is innerHTML, array items are
	// text nodes, a null item the text "null"; dom.create takes a Node
	// second argument as the attributes.
	if st.StringChild != "B" || st.ArrayChild != "#text" || st.NullItem != "null" || st.NodeAsAttrs != 0 {
		t.Errorf("dom: string child %s, array child %s, null item %q, E(tag, node) children %d",
			st.StringChild, st.ArrayChild, st.NullItem, st.NodeAsAttrs)
	}
	// luci.js Poll.add starts the loop and steps at once.
	if st.PollRanAtAdd != 1 {
		t.Errorf("poll.add ran the function %d times before returning, want 1", st.PollRanAtAdd)
	}
	// fs.read through rpcd's file plugin and the app's ACL.
	for path, want := range map[string]string{
		"/var/run/gogoc/status.json":         `ok:{"state":"up"}`,
		"/var/run//gogoc/./status.json":      `ok:{"state":"up"}`,
		"/var/run/gogoc/none.json":           "NotFoundError:Resource not found",
		"/var/run/gogoc/empty.json":          "NoDataError:No data received",
		"/etc/shadow":                        "PermissionError:Permission denied",
		"/var/run/gogoc/../../../etc/shadow": "PermissionError:Permission denied",
		"status.json":                        "PermissionError:Permission denied",
		"/tmp/run/gogoc/status.json":         "PermissionError:Permission denied",
	} {
		if got := st.Reads[path]; got != want {
			t.Errorf("fs.read(%q): %q, want %q", path, got, want)
		}
	}
	// form.js Flag: the validator gets the input's value attribute, the
	// option's formvalue the ticked state.
	if st.FlagValidatorSaw != "1" || st.FlagFormvalue != "0" {
		t.Errorf("unticked Flag: validator saw %q, formvalue %q; want \"1\" and \"0\"", st.FlagValidatorSaw, st.FlagFormvalue)
	}
	// form.js depends: hidden, and deleted on save.
	calls, committed := d.state("selftest")
	if !st.PrefixlenHidden || !slices.Contains(calls, "uci delete gogoc.main.prefixlen") ||
		!slices.Contains(calls, "uci set gogoc.main.keepalive=0") || st.Reloads != 1 {
		t.Errorf("hidden prefixlen: hidden %v, router saw %q, reloads %d", st.PrefixlenHidden, calls, st.Reloads)
	}
	if strings.Contains(committed, "prefixlen") {
		t.Errorf("prefixlen survived the save:\n%s", committed)
	}
}
