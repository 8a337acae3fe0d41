package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/jsklein/gogoc/config"
)

const testPassword = "Quokka-4471-pw"

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type result struct {
	code           int
	stdout, stderr string
}

func runCheck(args []string, uciPath, legacyPath string) result {
	var out, errb bytes.Buffer
	code := checkConfig(args, &out, &errb, uciPath, legacyPath)
	return result{code, out.String(), errb.String()}
}

func runImport(args ...string) result {
	var out, errb bytes.Buffer
	code := cmdImport(args, &out, &errb)
	return result{code, out.String(), errb.String()}
}

const validUCI = `config gogoc 'main'
	option enabled '1'
	option server 'broker.example.net'
	option auth_method 'digest-md5'
	option userid 'alice'
	option passwd '` + testPassword + `'
	option template 'openwrt'
`

func TestCheckPrintsEveryKeyMasked(t *testing.T) {
	p := writeFile(t, "gogoc", validUCI)
	r := runCheck([]string{"--uci", p}, "/nonexistent", "/nonexistent")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	entries := (&config.Config{}).Entries()
	if len(lines) != len(entries) {
		t.Fatalf("%d lines, want one per key (%d):\n%s", len(lines), len(entries), r.stdout)
	}
	for i, l := range lines {
		if !strings.HasPrefix(l, entries[i].Key+"=") {
			t.Errorf("line %d %q, want key %s", i+1, l, entries[i].Key)
		}
	}
	for _, want := range []string{"enabled=yes\n", "passwd=********\n", "server=broker.example.net\n", "auth_method=digest-md5\n", "retry_delay=30\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("missing %q", want)
		}
	}
	if !strings.Contains(r.stderr, "warning: "+p+":7: option template: ignored") || !strings.Contains(r.stderr, "is valid") {
		t.Errorf("stderr: %s", r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, testPassword) {
		t.Error("password shown")
	}
}

func TestCheckReportsEveryError(t *testing.T) {
	p := writeFile(t, "gogoc.conf", "server=broker.example.net\r\n"+
		"auth_method=plain\r\nuserid="+testPassword+"\r\npasswd="+testPassword+"\r\n"+
		"retry_delay=5000\r\ntunnel_mode=v6foo\r\nkeepalive=perhaps\r\n")
	r := runCheck([]string{"-f", p}, "/nonexistent", "/nonexistent")
	if r.code != 1 || r.stdout != "" {
		t.Fatalf("exit %d, stdout %q", r.code, r.stdout)
	}
	want := p + ":5: retry_delay: 5000 out of range 0..3600\n" +
		p + `:6: tunnel_mode: "v6foo" is not one of v6anyv4, v6v4, v6udpv4, v4v6` + "\n" +
		p + `:7: keepalive: "perhaps" is not a boolean (use yes/no, 1/0, on/off, true/false or enabled/disabled)` + "\n"
	if r.stderr != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", r.stderr, want)
	}
	if strings.Contains(r.stderr, testPassword) {
		t.Error("password shown")
	}
}

func TestCheckSyntaxError(t *testing.T) {
	p := writeFile(t, "gogoc", "config gogoc 'main'\n\toption passwd '"+testPassword+"\n\toption server 'b'\n")
	r := runCheck([]string{"--uci", p}, "/nonexistent", "/nonexistent")
	if r.code != 1 || r.stderr != p+":2: option passwd: unterminated ' quote\n" {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestCheckDefaultFile(t *testing.T) {
	uciPath := writeFile(t, "gogoc", validUCI)
	legacyPath := writeFile(t, "gogoc.conf", "server=legacy.example.net\nauth_method=anonymous\n")

	r := runCheck(nil, uciPath, legacyPath)
	if r.code != 0 || !strings.Contains(r.stdout, "server=broker.example.net\n") {
		t.Errorf("UCI file not preferred: %+v", r)
	}
	r = runCheck(nil, uciPath+".missing", legacyPath)
	if r.code != 0 || !strings.Contains(r.stdout, "server=legacy.example.net\n") || !strings.Contains(r.stdout, "enabled=yes\n") {
		t.Errorf("legacy file not used: %+v", r)
	}
	r = runCheck(nil, uciPath+".missing", legacyPath+".missing")
	if r.code != 1 || !strings.Contains(r.stderr, legacyPath+".missing") {
		t.Errorf("missing files: %+v", r)
	}
}

func TestCheckUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"-f", "a", "--uci", "b"}, 2, "not both"},
		{[]string{"extra"}, 2, "unexpected argument"},
		{[]string{"-x"}, 2, "flag provided but not defined"},
		{[]string{"-h"}, 0, "usage: gogoc check"},
	} {
		r := runCheck(tt.args, "/nonexistent", "/nonexistent")
		if r.code != tt.code || !strings.Contains(r.stderr, tt.msg) {
			t.Errorf("%v: exit %d stderr %q", tt.args, r.code, r.stderr)
		}
	}
}

func TestImport(t *testing.T) {
	legacy := "# old file\nuserid=alice\npasswd=it's " + testPassword + "\nserver=broker.example.net\n" +
		"auth_method=digest-md5\nhost_type=router\nprefixlen=56\nif_prefix=br-lan\n" +
		"dns_server=ns1.example.net:ns2.example.net\ntemplate=linux\n"
	p := writeFile(t, "gogoc.conf", legacy)
	r := runImport(p)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{
		"config gogoc 'main'\n", "\toption enabled '1'\n", "\toption passwd 'it'\\''s " + testPassword + "'\n",
		"\tlist dns_server 'ns1.example.net'\n", "\tlist dns_server 'ns2.example.net'\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("missing %q in\n%s", want, r.stdout)
		}
	}
	if !strings.HasPrefix(r.stdout, "# Imported from ") || !strings.Contains(r.stderr, "template: ignored") {
		t.Errorf("stdout %q\nstderr %q", r.stdout, r.stderr)
	}
	if strings.Contains(r.stderr, testPassword) {
		t.Error("password on stderr")
	}

	// The output is what check reads as the same configuration.
	orig, _, err := config.Load(p, config.FormatLegacy)
	if err != nil {
		t.Fatal(err)
	}
	back, _, err := config.Load(writeFile(t, "gogoc", r.stdout), config.FormatUCI)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(orig, back) {
		t.Errorf("import changed the configuration:\n%+v\n%+v", *orig, *back)
	}
}

func TestImportFailures(t *testing.T) {
	bad := writeFile(t, "gogoc.conf", "server=2001:db8::1\nauth_method=anonymous\npasswd="+testPassword+"\x01\n")
	r := runImport(bad)
	if r.code != 1 || r.stdout != "" ||
		!strings.Contains(r.stderr, bad+`:1: server: "2001:db8::1" looks like an IPv6 address: put it in brackets`) ||
		!strings.Contains(r.stderr, bad+":3: passwd: character 15 is not printable ASCII") {
		t.Errorf("invalid file: %+v", r)
	}
	if strings.Contains(r.stderr, testPassword) {
		t.Error("password shown")
	}
	if r := runImport(); r.code != 2 || !strings.Contains(r.stderr, "usage: gogoc import") {
		t.Errorf("no argument: %+v", r)
	}
	if r := runImport("/nonexistent/gogoc.conf"); r.code != 1 || !strings.Contains(r.stderr, "gogoc import: config: open /nonexistent/gogoc.conf") {
		t.Errorf("missing file: %+v", r)
	}
}

// The sub-commands are reachable through main's dispatcher.
func TestDispatch(t *testing.T) {
	p := writeFile(t, "gogoc", validUCI)
	var out, errb bytes.Buffer
	if code := run([]string{"check", "--uci", p}, &out, &errb); code != 0 || !strings.Contains(out.String(), "userid=alice") {
		t.Errorf("check: %d %s", code, errb.String())
	}
	out.Reset()
	legacy := writeFile(t, "gogoc.conf", "server=b.example.net\nauth_method=anonymous\n")
	if code := run([]string{"import", legacy}, &out, &errb); code != 0 || !strings.Contains(out.String(), "option server 'b.example.net'") {
		t.Errorf("import: %d %s", code, errb.String())
	}
}

// evalShell runs the assignments through a POSIX shell (busybox ash, the
// router's, when installed) and returns each variable's value as the
// shell sees it.
func evalShell(t *testing.T, assignments string, names []string) map[string]string {
	t.Helper()
	sh := []string{"/bin/sh"}
	if p, err := exec.LookPath("busybox"); err == nil {
		sh = []string{p, "sh"}
	}
	script := `eval "$ASSIGN" || exit 1` + "\n"
	for _, n := range names {
		script += `printf '%s\0' "$` + n + `"` + "\n"
	}
	cmd := exec.Command(sh[0], append(sh[1:], "-c", script)...)
	cmd.Env = []string{"ASSIGN=" + assignments, "PATH=/usr/bin:/bin"}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("shell: %v", err)
	}
	vals := strings.Split(string(out), "\x00")
	if len(vals) != len(names)+1 {
		t.Fatalf("shell printed %q", out)
	}
	m := map[string]string{}
	for i, n := range names {
		m[n] = vals[i]
	}
	return m
}

// TestCheckShell: -shell prints what the OpenWrt scripts act on, as the
// daemon reads it, and a shell reads back exactly those values.
func TestCheckShell(t *testing.T) {
	p := writeFile(t, "gogoc", `config gogoc 'main'
	option enabled 'on'
	option server 'broker.example.net'
	option auth_method 'anonymous'
	option host_type 'router'
	option if_prefix 'br-lan.5'
	option wan_interface 'wwan_2'
	option if_tunnel_v6v4 'tb-6in4'
	option ra 'builtin'
`)
	r := runCheck([]string{"-uci", p, "-shell"}, "/nonexistent", "/nonexistent")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	c, _, err := config.Load(p, config.FormatUCI)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range shellVars(c) {
		names = append(names, "gogoc_"+v.Key)
	}
	got := evalShell(t, r.stdout, names)
	want := map[string]string{
		"gogoc_enabled": "1", "gogoc_host_type": "router", "gogoc_ra": "builtin", "gogoc_if_prefix": "br-lan.5",
		"gogoc_wan_interface": "wwan_2", "gogoc_status_file": config.DefaultStatusFile,
		"gogoc_if_tunnel_v6v4": "tb-6in4", "gogoc_if_tunnel_v6udpv4": config.DefaultIfTunnelV6UDPV4,
		"gogoc_if_tunnel_v4v6": config.DefaultIfTunnelV4V6, "gogoc_known_keys": config.DefaultKnownKeys,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("shell reads\n%v\nwant\n%v", got, want)
	}
	if strings.Contains(r.stdout, "passwd") {
		t.Error("-shell prints the password key")
	}
}

// TestCheckShellRefuses: a file the daemon refuses prints no assignment
// (an eval of the output sets nothing) and fails with the file:line
// reasons on stderr.
func TestCheckShellRefuses(t *testing.T) {
	for name, text := range map[string]string{
		"syntax":       "config gogoc 'main'\n\toption enabled '1\n",
		"bad value":    "config gogoc 'main'\n\toption enabled '1'\n\toption server 'b.example.net'\n\toption auth_method 'anonymous'\n\toption host_type 'bridge'\n",
		"no if_prefix": "config gogoc 'main'\n\toption enabled '1'\n\toption server 'b.example.net'\n\toption auth_method 'anonymous'\n\toption host_type 'router'\n",
	} {
		t.Run(name, func(t *testing.T) {
			p := writeFile(t, "gogoc", text)
			r := runCheck([]string{"-uci", p, "-shell"}, "/nonexistent", "/nonexistent")
			if r.code != 1 || r.stdout != "" {
				t.Errorf("exit %d, stdout %q", r.code, r.stdout)
			}
			if !strings.Contains(r.stderr, p+":") {
				t.Errorf("stderr does not name the file and line: %q", r.stderr)
			}
		})
	}
}

// TestShellQuote: whatever a value holds, the shell reads it back as it
// was, and nothing in it runs.
func TestShellQuote(t *testing.T) {
	hostile := []string{"", "plain", "it's", "''", `\'`, "$(touch /tmp/gogoc-pwned)", "`id`", "a b\tc\nd",
		`"; rm -rf /; "`, "${HOME}", "!x", "*", "-e", "'$(x)'\\"}
	var b strings.Builder
	var names []string
	for i, v := range hostile {
		n := "v" + strconv.Itoa(i)
		names = append(names, n)
		b.WriteString(n + "=" + shellQuote(v) + "\n")
	}
	got := evalShell(t, b.String(), names)
	for i, v := range hostile {
		if got[names[i]] != v {
			t.Errorf("%q read back as %q", v, got[names[i]])
		}
	}
}
