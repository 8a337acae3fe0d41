package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jsklein/gogoc/daemon"
)

// TestHostileOfferChangesNothing runs the built gogoc in router mode
// against tspbroker (real sockets, separate namespaces) configured to offer
// what the address policy refuses (tsp/policy.go). For each, the broker
// must see the offer rejected on the wire, gogoc's status must name the
// refused field, and the router's namespace (links, addresses, routes of
// every table, forwarding) must be exactly as before gogoc started, both
// while it retries and after it has stopped.
//
//	gogoc 192.0.2.2 (host_type=router, LAN: a bridge, as br-lan) ── 192.0.2.1 tspbroker
func TestHostileOfferChangesNothing(t *testing.T) {
	dir, gogoc, bin, cns, bns, _ := gdmPair(t)
	lan := "ghl" + e2eSuffix()
	e2eSh(t, "ip", "-n", cns, "link", "add", lan, "type", "bridge")
	e2eSh(t, "ip", "-n", cns, "link", "set", lan, "up")

	cases := []struct {
		name  string
		flags []string // added to the broker's command line
		want  string   // in gogoc's last error
		offer bool     // an offer is made (and must be rejected); else a redirect
	}{
		{"ULA prefix", []string{"-prefix-pool", "fd00:1::/40"}, "delegated prefix fd00:1::/56 refused", true},
		{"loopback tunnel endpoint", []string{"-server-v4", "127.0.0.1"}, "server ipv4 127.0.0.1 refused: loopback", true},
		{"link-local keepalive", []string{"-server-v6", "fe80::1"}, "server ipv6 fe80::1 refused: link-local", true},
		{"loopback DNS server", []string{"-dns", "::1"}, "dns_server ::1 refused: loopback", true},
		{"redirect to loopback", []string{"-redirect", "ipv4=127.0.0.1"}, "redirect broker 127.0.0.1 refused: loopback", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The kernel finishes setting links up on its own time (a
			// bridge's multicast route, say): start from a settled state.
			before := netState(t, cns)
			for i := 0; i < 50; i++ {
				time.Sleep(100 * time.Millisecond)
				now := netState(t, cns)
				if now == before {
					break
				}
				before = now
			}
			logf, err := os.Create(filepath.Join(dir, "broker-"+strings.ReplaceAll(tc.name, " ", "-")+".log"))
			if err != nil {
				t.Fatal(err)
			}
			b := &gdmBroker{t: t, ns: bns, bin: bin, logf: logf, args: append([]string{
				"-udp", e2eBrokerV4 + ":3653", "-tcp", e2eBrokerV4 + ":3653", "-server-v4", e2eBrokerV4, "-server-v6", e2eServerV6,
				"-auth", "DIGEST-MD5", "-user", "alice:secret"}, tc.flags...)}
			b.start()
			t.Cleanup(func() {
				b.stop()
				if t.Failed() {
					raw, _ := os.ReadFile(logf.Name())
					t.Logf("tspbroker log:\n%s", raw)
				}
			})

			status := filepath.Join(dir, "status.json")
			_ = os.Remove(status)
			conf := filepath.Join(dir, "gogoc.conf")
			text := strings.Join([]string{
				"server=" + e2eBrokerV4, "auth_method=digest-md5", "userid=alice", "passwd=secret",
				"host_type=router", "prefixlen=56", "if_prefix=" + lan, "tunnel_mode=v6anyv4",
				"keepalive=yes", "keepalive_interval=5", "retry_delay=1", "retry_delay_max=1",
				"log_stderr=3",
			}, "\n") + "\n"
			if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			ups := make(chan string, 4)
			cmd, exited, _ := startGogocProc(t, cns, dir, gogoc, func(line string) { ups <- line }, "run", "-f", conf, "-status-file", status)

			// Two refused attempts: the refusal holds across the back-off.
			rejected := regexp.MustCompile("offer rejected by the client")
			var st *daemon.Status
			_, ok := waitFor(30*time.Second, func() bool {
				raw, _ := os.ReadFile(logf.Name())
				st, _ = daemon.ReadStatus(status)
				attempts := len(rejected.FindAll(raw, -1))
				if !tc.offer {
					attempts = 2 // a redirect has nothing to reject
				}
				return attempts >= 2 && st != nil && strings.Contains(st.LastError, tc.want)
			})
			if !ok {
				var last string
				if st != nil {
					last = string(st.State) + ": " + st.LastError
				}
				t.Fatalf("no refusal naming %q within 30 s (status %q)", tc.want, last)
			}
			t.Logf("gogoc: %s", st.LastError)
			select {
			case line := <-ups:
				t.Fatalf("tunnel came up: %s", line)
			case err := <-exited:
				t.Fatalf("gogoc exited: %v", err)
			default:
			}
			if st.State == daemon.StateUp {
				t.Fatalf("status %s", st.State)
			}
			if after := netState(t, cns); after != before {
				t.Fatalf("the router's namespace changed while gogoc retried:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			_ = cmd.Process.Signal(os.Interrupt)
			waitExit(t, exited, hangGuard, "SIGINT")
			if after := netState(t, cns); after != before {
				t.Fatalf("the router's namespace changed after gogoc stopped:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

var linkKind = regexp.MustCompile(`link/\S+`)

// netState renders what gogoc could change in ns: links, addresses,
// routes of every table, rules, forwarding. Link-local (fe80::) lines are
// left out: the kernel adds them on its own when links come up.
func netState(t *testing.T, ns string) string {
	t.Helper()
	var b strings.Builder
	// Links by name and kind only: their operational state moves on its
	// own (a new bridge goes from UNKNOWN to DOWN without ports).
	for _, line := range strings.Split(e2eSh(t, "ip", "-n", ns, "-o", "link", "show"), "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			b.WriteString(f[1] + " " + linkKind.FindString(line) + "\n")
		}
	}
	for _, args := range [][]string{
		{"ip", "-n", ns, "-o", "addr", "show"},
		{"ip", "-n", ns, "-4", "route", "show", "table", "all"},
		{"ip", "-n", ns, "-6", "route", "show", "table", "all"},
		{"ip", "-n", ns, "-6", "rule", "show"},
		{"ip", "netns", "exec", ns, "sysctl", "net.ipv6.conf.all.forwarding", "net.ipv4.ip_forward"},
	} {
		for _, line := range strings.Split(e2eSh(t, args...), "\n") {
			if strings.Contains(line, "fe80") {
				continue
			}
			// Lifetimes count down; they are not state gogoc sets here.
			line = regexp.MustCompile(`valid_lft \S+ preferred_lft \S+`).ReplaceAllString(line, "")
			b.WriteString(strings.Join(strings.Fields(line), " ") + "\n")
		}
	}
	return b.String()
}
