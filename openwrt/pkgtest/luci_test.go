package pkgtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jsklein/gogoc/config"
	"github.com/jsklein/gogoc/uci"
)

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

type luciResult struct {
	Fields []struct{ Option, Kind, Tab, Value string }
	Tabs   []string
	Cases  []struct {
		Option, Value, Error string
		Context              map[string]string
	}
	States []struct {
		Served, State, Text string
		Reads               []string
		Polls               []float64
		Fields              []string
	}
	Error *string
}

type luci struct {
	t     *testing.T
	bin   string
	srv   *httptest.Server
	shots string
}

func newLUCI(t *testing.T) *luci {
	l := &luci{t: t, bin: chromium(t), shots: artefacts(t)}
	cfg, err := uci.Parse("gogoc", []byte(readFile(t, filepath.Join(filesDir, "gogoc.config"))))
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]map[string]any{}
	for _, s := range cfg.Sections {
		opts := map[string]any{}
		for _, o := range s.Options {
			if o.List {
				opts[o.Name] = o.Values
			} else {
				opts[o.Name] = o.Value()
			}
		}
		sections[s.Name] = opts
	}
	mux := http.NewServeMux()
	file := func(path, typ string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", typ)
			w.Write([]byte(readFile(t, path)))
		}
	}
	mux.Handle("/index.html", file("testdata/luci/index.html", "text/html"))
	mux.Handle("/shim.js", file("testdata/luci/shim.js", "text/javascript"))
	mux.Handle("/view/gogoc.js", file(viewJS, "text/javascript"))
	mux.HandleFunc("/uci/gogoc.json", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(sections)
	})
	mux.HandleFunc("/status.json", func(w http.ResponseWriter, r *http.Request) {
		state := r.URL.Query().Get("state")
		if state == "absent" {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(statusFor(state, time.Now()))
	})
	l.srv = httptest.NewServer(mux)
	t.Cleanup(l.srv.Close)
	return l
}

var resultRE = regexp.MustCompile(`(?s)<pre id="result">(.*?)</pre>`)

// open renders the page with query q in a fresh headless Chromium, saves a
// screenshot as shot.png and returns what the harness observed. Virtual
// time lets the view's 5 s poll run without waiting for it.
func (l *luci) open(q url.Values, shot string) luciResult {
	t := l.t
	t.Helper()
	u := l.srv.URL + "/index.html?" + q.Encode()
	args := func(extra ...string) []string {
		return append([]string{
			"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--user-data-dir=" + t.TempDir(), "--virtual-time-budget=15000", "--window-size=1000,1500",
		}, append(extra, u)...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	// One launch gives both the DOM (stdout) and the screenshot.
	p := filepath.Join(l.shots, shot+".png")
	out, err := exec.CommandContext(ctx, l.bin, args("--dump-dom", "--screenshot="+p)...).Output()
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
	{"status_file", "/tmp/gogoc.json", nil},
}

// TestLuCIForm renders the settings page: every field the issue lists is
// there, in its tab, and the view accepts and refuses exactly what
// config/ does.
func TestLuCIForm(t *testing.T) {
	l := newLUCI(t)
	cases, err := json.Marshal(func() []map[string]any {
		var out []map[string]any
		for _, c := range validationCases {
			out = append(out, map[string]any{"option": c.option, "value": c.value, "context": c.context})
		}
		return out
	}())
	if err != nil {
		t.Fatal(err)
	}
	res := l.open(url.Values{"cases": {string(cases)}}, "form")

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
		"logging":    {"log_syslog", "log_stderr", "syslog_facility"},
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
	// The form shows the shipped defaults.
	for _, f := range res.Fields {
		switch f.Option {
		case "enabled":
			if f.Value != "0" {
				t.Errorf("enabled shows %q", f.Value)
			}
		case "server":
			if f.Value != "broker.example.net" {
				t.Errorf("server shows %q", f.Value)
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

// TestLuCIStatus: the status block shows each daemon state and the fields
// the state carries, read from the configured status file and refreshed
// by polling; without a status file it says the daemon is not running.
func TestLuCIStatus(t *testing.T) {
	l := newLUCI(t)
	states := []string{"idle", "negotiating", "up", "lost", "backoff", "stopped", "absent"}
	res := l.open(url.Values{"states": {strings.Join(states, ",")}}, "status")
	if len(res.States) != len(states) {
		t.Fatalf("%d state results for %d states", len(res.States), len(states))
	}
	for i, state := range states {
		got := res.States[i]
		if got.Served != state {
			t.Fatalf("result %d is for %q, want %q", i, got.Served, state)
		}
		if len(got.Reads) < 2 || !slices.Contains(got.Reads, config.DefaultStatusFile) {
			t.Errorf("%s: status reads %q: want the default status file, polled", state, got.Reads)
		}
		if len(got.Polls) != 1 || got.Polls[0] <= 0 || got.Polls[0] > 10 {
			t.Errorf("%s: poll intervals %v, want one of a few seconds", state, got.Polls)
		}
		if state == "absent" {
			if got.State != "not-running" || !strings.Contains(got.Text, "not running") {
				t.Errorf("no status file: state %q, text %q", got.State, got.Text)
			}
			continue
		}
		if got.State != state || !strings.Contains(got.Text, "("+state+")") {
			t.Errorf("state %q, text %q; want %s", got.State, got.Text, state)
		}
		st := statusFor(state, time.Now())
		want := []string{"state", "uptime", "reconnects"}
		for _, k := range []string{"broker", "tunnel_mode", "client_ipv6", "server_ipv6", "prefix", "lan_prefix", "last_error", "keepalive"} {
			if _, ok := st[k]; ok {
				want = append(want, k)
			}
		}
		for _, k := range want {
			if !slices.Contains(got.Fields, k) {
				t.Errorf("%s: status lacks %s (shows %q)", state, k, got.Fields)
			}
		}
		for _, k := range []string{"broker", "prefix", "last_error", "client_ipv6"} {
			if v, ok := st[k].(string); ok && !strings.Contains(got.Text, v) {
				t.Errorf("%s: status text lacks %s %q:\n%s", state, k, v, got.Text)
			}
		}
		// since is 1 h 2 min 5 s before the page loaded.
		if !strings.Contains(got.Text, "1h 2m") {
			t.Errorf("%s: uptime not shown as 1h 2m…:\n%s", state, got.Text)
		}
		if state == "up" && !strings.Contains(got.Text, "1.25 ms") {
			t.Errorf("keepalive RTT missing:\n%s", got.Text)
		}
	}
}
