package main

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/jsklein/gogoc/config"
	"github.com/jsklein/gogoc/internal/logx"
	"github.com/jsklein/gogoc/tsp"
)

func TestRouterLANOnlyForRouters(t *testing.T) {
	c := config.Defaults(config.FormatLegacy)
	l, err := newLAN(&c, logx.Discard())
	if l != nil || err != nil {
		t.Fatalf("host_type host: %v, %v; want nil, nil", l, err)
	}
	c.HostType = config.HostTypeRouter
	if _, err := newLAN(&c, logx.Discard()); err == nil || !strings.Contains(err.Error(), "if_prefix") {
		t.Fatalf("router without if_prefix: %v", err)
	}
}

// The configuration checked subnet_id against the requested prefix
// length; Up checks it against what the broker delegated, before touching
// anything (the lan has no netlink handle here: any change would panic).
func TestRouterLANUpChecksDelegation(t *testing.T) {
	c := config.Defaults(config.FormatLegacy)
	c.HostType, c.IfPrefix, c.PrefixLen, c.SubnetID = config.HostTypeRouter, "grt-none", 48, 0x100
	l := &lan{cfg: &c, log: logx.Discard()}
	for _, tt := range []struct {
		prefix string
		want   string
	}{
		{"", "delegated no prefix"},
		{"2001:db8:8000::/56", "subnet_id 100 does not fit"},
		{"2001:db8:8000::/64", "subnet_id 100 does not fit"},
	} {
		o := &tsp.Offer{}
		if tt.prefix != "" {
			o.Prefix = netip.MustParsePrefix(tt.prefix)
		}
		err := l.Up(context.Background(), o, "gogoc")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Up with prefix %q: %v, want %q", tt.prefix, err, tt.want)
		}
	}
}
