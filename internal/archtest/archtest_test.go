package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/jsklein/gogoc"

// rules says which packages may not depend on which, directly or through
// others. Production code only: a test may import what it needs (the
// tsp tests use the test broker, say). Paths are relative to the module;
// "x/..." means x and everything below it.
var rules = []struct {
	from, to []string
	except   []string // packages of from that the rule spares
	why      string
}{
	{from: []string{"tsp/..."}, to: []string{"tunnel/...", "config/...", "daemon/...", "router/...", "radv/...", "lan/...", "uci/..."},
		why: "tsp speaks the protocol and knows nothing of tunnels, configuration or the supervisor"},
	{from: []string{"tsp/..."}, to: []string{"internal/jsonw", "internal/jsonread"},
		why: "how an offer is shown (JSON) is the command's business, not the protocol's"},
	{from: []string{"radv/..."}, to: []string{"tsp/...", "daemon/..."},
		why: "radv serves RAs from plain values; it knows no broker and no supervisor"},
	{from: []string{"lan/...", "router/..."}, to: []string{"tsp/...", "daemon/...", "config/..."},
		why: "the LAN side takes the uplink and its settings as plain values; the daemon and the command map offer and configuration"},
	{from: []string{"uci/..."}, to: []string{"config/..."},
		why: "uci is the file grammar; config builds on it, never the reverse"},
	{from: []string{"..."}, to: []string{"internal/testbroker/..."}, except: []string{"cmd/tspbroker", "internal/testbroker/..."},
		why: "the test broker is for tests (and cmd/tspbroker); nothing shipped may link it"},
	{from: []string{"internal/testbroker/..."}, to: []string{"tsp/..."},
		why: "the test broker is an independent oracle of the protocol, not a second use of the client's code"},
	// The data flow of docs/architecture.md: the supervisor maps the
	// configuration and the offer onto plain values for the parts below it.
	{from: []string{"..."}, to: []string{"tsp/..."}, except: []string{"tsp/...", "daemon", "cmd/gogoc"},
		why: "the protocol's types stop at the supervisor: the data plane and the LAN side take plain values (daemon.tunnelConfig, daemon.uplink)"},
	{from: []string{"..."}, to: []string{"config/..."}, except: []string{"config/...", "daemon", "cmd/gogoc"},
		why: "the configuration is mapped onto each part by the supervisor and the command; the parts take plain values"},
	{from: []string{"..."}, to: []string{"daemon/..."}, except: []string{"daemon/...", "cmd/gogoc"},
		why: "the supervisor is the top of the library; nothing below it calls up"},
	{from: []string{"tunnel/..."}, to: []string{"lan/...", "router/...", "radv/..."},
		why: "the data plane and the LAN side are siblings: the daemon hands the tunnel's device name to the LAN side"},
	{from: []string{"lan/...", "router/...", "radv/..."}, to: []string{"tunnel/..."},
		why: "the data plane and the LAN side are siblings: the daemon hands the tunnel's device name to the LAN side"},
	{from: []string{"router/...", "radv/..."}, to: []string{"lan/..."},
		why: "lan drives router and radv, not the reverse"},
	{from: []string{"router/..."}, to: []string{"radv/..."},
		why: "addresses and routes are router's job, advertisements radv's; lan combines them"},
	{from: []string{"radv/..."}, to: []string{"router/..."},
		why: "addresses and routes are router's job, advertisements radv's; lan combines them"},
	{from: []string{"internal/..."}, to: []string{"cmd/...", "config/...", "daemon/...", "lan/...", "radv/...", "router/...", "tsp/...", "tunnel/...", "uci/..."},
		why: "internal packages are leaves the product builds on, never the other way round"},
}

// pkg is what `go list -json` says of one package.
type pkg struct {
	ImportPath string
	Deps       []string // every package it depends on, transitively (no tests)
}

// listPackages runs go list over the module; extra arguments go before the
// pattern (e.g. -overlay).
func listPackages(t *testing.T, extra ...string) []pkg {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	args := append(append([]string{"list", "-json"}, extra...), "./...")
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	var pkgs []pkg
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

// matches: path (a full import path) is one of the module-relative patterns.
func matches(path string, patterns []string) bool {
	rel, ok := strings.CutPrefix(path, module+"/")
	if !ok {
		return false
	}
	for _, p := range patterns {
		if p == "..." {
			return true
		}
		if base, ok := strings.CutSuffix(p, "/..."); ok {
			if rel == base || strings.HasPrefix(rel, base+"/") {
				return true
			}
		} else if rel == p {
			return true
		}
	}
	return false
}

// violations lists every broken rule, one line each.
func violations(pkgs []pkg) []string {
	var out []string
	for _, r := range rules {
		for _, p := range pkgs {
			if !matches(p.ImportPath, r.from) || matches(p.ImportPath, r.except) {
				continue
			}
			for _, d := range p.Deps {
				if matches(d, r.to) {
					out = append(out, fmt.Sprintf("%s depends on %s: %s", p.ImportPath, d, r.why))
				}
			}
		}
	}
	return out
}

func TestImportRules(t *testing.T) {
	for _, v := range violations(listPackages(t)) {
		t.Error(v)
	}
}

// The rules catch a violation in the real tree: go list again with an
// overlay that adds a file importing config to tsp, and one importing the
// test broker to daemon (the tree itself is not touched).
func TestImportRulesCatchAViolation(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list twice more; skipped with -short")
	}
	dir := t.TempDir()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	overlay := map[string]string{}
	for _, f := range []struct{ pkgDir, pkgName, imp string }{
		{"tsp", "tsp", module + "/config"},
		{"daemon", "daemon", module + "/internal/testbroker"},
		{"tunnel", "tunnel", module + "/tsp"},
		{"lan", "lan", module + "/config"},
		{"router", "router", module + "/tunnel"},
		{"internal/logx", "logx", module + "/config"},
	} {
		src := filepath.Join(dir, f.pkgName+".go")
		code := "package " + f.pkgName + "\n\nimport _ \"" + f.imp + "\"\n"
		if err := os.WriteFile(src, []byte(code), 0o644); err != nil {
			t.Fatal(err)
		}
		overlay[filepath.Join(root, f.pkgDir, "zz_archtest_violation.go")] = src
	}
	raw, err := json.Marshal(map[string]map[string]string{"Replace": overlay})
	if err != nil {
		t.Fatal(err)
	}
	ov := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(ov, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(violations(listPackages(t, "-overlay", ov)), "\n")
	for _, want := range []string{
		module + "/tsp depends on " + module + "/config",
		module + "/daemon depends on " + module + "/internal/testbroker",
		module + "/tunnel depends on " + module + "/tsp",
		module + "/lan depends on " + module + "/config",
		module + "/router depends on " + module + "/tunnel",
		module + "/internal/logx depends on " + module + "/config",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("violation %q not reported; got:\n%s", want, got)
		}
	}
}

// The import table in docs/architecture.md is the one scripts/importgraph
// renders from the code now (make docs rewrites it).
func TestArchitectureDocCurrent(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "run", "./scripts/importgraph", "-check", "docs/architecture.md")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}
