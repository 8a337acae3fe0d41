package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jsklein/gogoc/daemon"
)

// TestStatusCommand: a status file whose writer is this process (a test
// binary, not gogoc) and one from a gone pid both count as not running;
// --json carries the contract's fields; reconnect then does nothing and
// succeeds.
func TestStatusCommand(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "status.json")
	st := &daemon.Status{State: daemon.StateUp, Since: "2026-01-02T03:04:05Z", PID: os.Getpid(), Broker: "broker.example.net",
		Transport: "udp", TunnelMode: "v6udpv4", DataPlane: "userspace", Interface: "gogoc", ClientIPv6: "2001:db8::2",
		ServerIPv6: "2001:db8::1", Prefix: "2001:db8:1200::/56", LANPrefix: "2001:db8:1200::/64",
		Keepalive: &daemon.Keepalive{IntervalS: 30, RTTMs: 1.25, Sent: 10}}
	if err := daemon.WriteStatus(path, st); err != nil {
		t.Fatal(err)
	}
	var out, errb strings.Builder
	code := cmdStatus([]string{"-status-file", path}, &out, &errb)
	if code != exitNotRunning {
		t.Errorf("status of a file not written by a gogoc process: exit %d, want %d", code, exitNotRunning)
	}
	for _, want := range []string{"state:      stopped", "broker:     broker.example.net (udp)", "v6udpv4 on gogoc, userspace data plane",
		"prefix:     2001:db8:1200::/56 (LAN 2001:db8:1200::/64)", "keepalive:  every 30 s, rtt 1.25 ms, 10 sent, 0 lost"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("human output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	cmdStatus([]string{"--json", "-status-file", path}, &out, &errb)
	var got map[string]any
	if err := json.Unmarshal([]byte(out.String()), &got); err != nil {
		t.Fatalf("--json: %v\n%s", err, out.String())
	}
	if got["state"] != "stopped" || got["tunnel_mode"] != "v6udpv4" || got["keepalive"].(map[string]any)["rtt_ms"] != 1.25 {
		t.Errorf("--json: %v", got)
	}
	out.Reset()
	if code := cmdReconnect([]string{"-status-file", path}, &out, &errb); code != 0 || !strings.Contains(out.String(), "no gogoc daemon running") {
		t.Errorf("reconnect without a daemon: exit %d, %q", code, out.String())
	}
	out.Reset()
	if code := cmdStatus([]string{"-status-file", filepath.Join(dir, "none")}, &out, &errb); code != exitNotRunning ||
		!strings.Contains(out.String(), "not running") {
		t.Errorf("no status file: exit %d, %q", code, out.String())
	}
}
