package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jsklein/gogoc/daemon"
	"github.com/jsklein/gogoc/tsp"
)

// referenceNegotiation is how `gogoc negotiate` used to print, entirely
// with encoding/json (the offer as offerRef, offer_json_test.go).
func referenceNegotiation(t *testing.T, n negotiation) []byte {
	t.Helper()
	var offer json.RawMessage = []byte("null")
	if o := n.Offer; o != nil {
		var err error
		offer, err = json.Marshal(refOf(o))
		if err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(struct {
		Server    string          `json:"server"`
		Transport string          `json:"transport"`
		Version   string          `json:"version"`
		Mechanism string          `json:"mechanism"`
		Offer     json.RawMessage `json:"offer"`
	}{n.Server, n.Transport, n.Version, n.Mechanism, offer}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestNegotiationOutputMatchesEncodingJSON(t *testing.T) {
	a := netip.MustParseAddr
	full := &tsp.Offer{Type: tsp.V6V4, Lifetime: 24 * time.Hour, MTU: 1280, ServerV4: a("198.51.100.1"),
		ServerV6: a("2001:db8::1"), ClientV4: a("192.0.2.10"), ClientV6: a("2001:db8::2"), ClientDNSName: "alice.example.net",
		DNSServers: []netip.Addr{a("2001:db8::53")}, Prefix: netip.MustParsePrefix("2001:db8:1200::/56"),
		KeepaliveInterval: 30 * time.Second, KeepaliveAddr: a("2001:db8::1")}
	for name, n := range map[string]negotiation{
		"full":     {Server: "broker.example.net:3653", Transport: "udp", Version: "2.0.1", Mechanism: "DIGEST-MD5", Offer: full},
		"no offer": {Server: "[2001:db8::1]", Transport: "tcp", Version: "2.0.0", Mechanism: "ANONYMOUS"},
		"empty":    {Offer: &tsp.Offer{}},
		"odd":      {Server: "<a&b>\u2028\xff", Mechanism: "\"\\\n", Offer: &tsp.Offer{Type: "x<y", ClientDNSName: "&\u2029"}},
	} {
		got, err := n.marshal()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if want := referenceNegotiation(t, n); !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
	}
}

// TestStatusJSONOutputMatchesEncodingJSON: `gogoc status --json` prints
// what it printed with encoding/json, including the rewrite to "stopped".
func TestStatusJSONOutputMatchesEncodingJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "status.json")
	st := &daemon.Status{State: daemon.StateUp, Since: "2026-01-02T03:04:05Z", PID: os.Getpid(), Updated: "2026-01-02T03:05:05Z",
		Broker: "broker.example.net", Transport: "udp", TunnelMode: "v6udpv4", DataPlane: "userspace", Interface: "gogoc",
		ClientIPv6: "2001:db8::2", ServerIPv6: "2001:db8::1", Prefix: "2001:db8:1200::/56",
		Keepalive: &daemon.Keepalive{IntervalS: 30, RTTMs: 0.123456789, Sent: 10, Lost: 1}, Reconnects: 2, LastError: "a <b> & c"}
	if err := daemon.WriteStatus(path, st); err != nil {
		t.Fatal(err)
	}
	var out, errb strings.Builder
	cmdStatus([]string{"--json", "-status-file", path}, &out, &errb)

	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ref daemon.Status
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	// This test binary is not gogoc, so the command reports it stopped.
	ref.State = daemon.StateStopped
	ref.LastError = strings.TrimSpace(ref.LastError + fmt.Sprintf(" (pid %d is gone)", ref.PID))
	want, err := json.MarshalIndent(&ref, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != string(want)+"\n" {
		t.Errorf("status --json:\n got %s\nwant %s\n(stderr %s)", got, want, errb.String())
	}
}
