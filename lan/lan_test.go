package lan

import (
	"context"
	"net/netip"
	"strings"
	"testing"
)

func TestNewNeedsDevice(t *testing.T) {
	if _, err := New(Config{}); err == nil || !strings.Contains(err.Error(), "no LAN device") {
		t.Fatalf("New without a device: %v", err)
	}
}

// The configuration checked subnet_id against the requested prefix
// length; Up checks it against what the broker delegated, before touching
// anything (the device does not exist: a change would fail differently).
func TestUpChecksDelegation(t *testing.T) {
	l, err := New(Config{Interface: "grt-none", SubnetID: 0x100, Advertise: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, tt := range []struct {
		prefix string
		want   string
	}{
		{"", "delegated no prefix"},
		{"2001:db8:8000::/56", "subnet_id 100 does not fit"},
		{"2001:db8:8000::/64", "subnet_id 100 does not fit"},
	} {
		var u Uplink
		if tt.prefix != "" {
			u.Delegated = netip.MustParsePrefix(tt.prefix)
		}
		err := l.Up(context.Background(), u, "gogoc")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Up with prefix %q: %v, want %q", tt.prefix, err, tt.want)
		}
	}
}
