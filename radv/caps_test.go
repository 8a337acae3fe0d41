package radv

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/jsklein/gogoc/internal/caps/captest"
)

// TestCapabilities: the RA socket (raw ICMPv6) opens for a non-root uid
// with CAP_NET_RAW; without it the error names the capability.
func TestCapabilities(t *testing.T) {
	const name = "TestCapabilities"
	if captest.InHelper(name) {
		c, _, err := Listen(os.Getenv("GOGOC_CAPTEST_LAN"))
		if err == nil {
			_ = c.Close()
		}
		fmt.Printf("listen: %v\n", err)
		os.Exit(0)
	}
	l := newDRLink(t, "gcp")
	t.Setenv("GOGOC_CAPTEST_LAN", l.ifA)
	for caps, want := range map[string]string{
		"+net_admin":          ": socket: operation not permitted (needs CAP_NET_RAW)",
		"+net_admin,+net_raw": "listen: <nil>",
	} {
		out := captest.Run(t, name, caps, l.nsA)
		if !strings.Contains(out, want+"\n") || !strings.HasPrefix(out, "listen: ") ||
			strings.Contains(want, "needs") && !strings.HasPrefix(out, "listen: radv: listen on "+l.ifA+": ") {
			t.Errorf("with %s: no line %q in:\n%s", caps, want, out)
		}
	}
}
