package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/jsklein/gogoc/daemon"
	"github.com/jsklein/gogoc/tunnel"
)

// TestDaemonRedirectRules: the configured broker (192.0.2.1) redirects to
// a name that the client's host resolves to 127.0.0.1 (its own loopback,
// where a listener waits on the TSP port) and to a real broker. The name
// must get nothing: no distance probe, no TSP datagram, no TCP connection
// (v6anyv4 races TCP from the start); the tunnel comes up with the real
// broker, and the broker list holds it as a far broker's redirect target.
// Then auth_method becomes plain (SIGHUP) while the configured broker is
// gone: the list's broker must not get the password in clear.
//
//	client 192.0.2.2    ── 192.0.2.1 redirector (ANONYMOUS, PLAIN, DIGEST-MD5)
//	       198.51.100.2 ── 198.51.100.1 broker (data plane)
func TestDaemonRedirectRules(t *testing.T) {
	const user, pass = "alice", "Pw-for-the-configured-one"
	dir := t.TempDir()
	gogoc, bin := e2eBuild(t, dir)
	s := e2eSuffix()
	cns, rns, fns := "gdm-rc-"+s, "gdm-rr-"+s, "gdm-rf-"+s
	e2eNamespaces(t, cns, rns, fns)
	e2eVeth(t, cns, "gdm-rc"+s, "192.0.2.2/24", rns, "gdm-rr"+s, "192.0.2.1/24")
	e2eVeth(t, cns, "gdm-rcf"+s, "198.51.100.2/24", fns, "gdm-rf"+s, "198.51.100.1/24")
	// ip netns exec puts /etc/netns/<ns>/hosts over /etc/hosts for gogoc.
	hostsDir := filepath.Join("/etc/netns", cns)
	if err := os.MkdirAll(hostsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(hostsDir) })
	if err := os.WriteFile(filepath.Join(hostsDir, "hosts"), []byte("127.0.0.1 localhost inside.test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The listener on the client's own loopback.
	h, err := netns.GetFromName(cns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var pc net.PacketConn
	var ln *net.TCPListener
	if err := tunnel.InNetNS(h, func() error {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:3653"); err != nil {
			return err
		}
		ln, err = net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 3653})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	defer ln.Close()

	far := newGDMBroker(t, fns, dir, bin, "198.51.100.1", "-auth", "ANONYMOUS,PLAIN,DIGEST-MD5", "-user", user+":"+pass)
	r := newGDMBroker(t, rns, dir, bin, "192.0.2.1", "-redirect", "dn=inside.test", "-redirect", "ipv4=198.51.100.1")

	status := filepath.Join(dir, "status.json")
	conf := filepath.Join(dir, "gogoc.conf")
	writeConf := func(auth string) {
		t.Helper()
		lines := []string{"server=192.0.2.1", "userid=" + user, "passwd=" + pass, "auth_method=" + auth,
			"tunnel_mode=v6anyv4", "tcp_fallback_delay=0", "host_type=host",
			"keepalive=yes", "keepalive_interval=2", "keepalive_timeout=1", "keepalive_misses=3",
			"retry_delay=1", "retry_delay_max=1", "log_stderr=3"}
		if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeConf("any")
	c := startGDMClient(t, cns, dir, gogoc, conf, status)
	c.waitUp(t, 15*time.Second)
	if st := c.readStatus(t); st.Broker != "198.51.100.1" {
		t.Errorf("up via %s, want 198.51.100.1", st.Broker)
	}
	reached := func() (datagrams, conns int) {
		buf := make([]byte, 2048)
		for {
			_ = pc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if _, _, err := pc.ReadFrom(buf); err != nil {
				break
			}
			datagrams++
		}
		for {
			_ = ln.SetDeadline(time.Now().Add(50 * time.Millisecond))
			cn, err := ln.Accept()
			if err != nil {
				break
			}
			cn.Close()
			conns++
		}
		return
	}
	if dg, conns := reached(); dg != 0 || conns != 0 {
		t.Errorf("127.0.0.1:3653 in the client's namespace got %d datagrams and %d TCP connections from the redirect to inside.test, want none", dg, conns)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "tsp-broker-list.txt"))
	if string(raw) != "# gogoc: named by a broker's redirect; same_host=no\n198.51.100.1\n" {
		t.Errorf("tsp-broker-list.txt = %q, want the far broker's redirect target only", raw)
	}

	// plain, and the configured broker gone: the list's broker is a
	// redirect target and must not get the password.
	authBefore := countLines(t, far.logf.Name(), "mechanism=PLAIN")
	r.stop()
	writeConf("plain")
	_ = c.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, err := daemon.ReadStatus(status)
		if err == nil && st.State == daemon.StateBackoff {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not in backoff 15 s after the switch to plain (status %+v, %v)", st, err)
		}
		select {
		case <-c.ups:
			t.Fatal("a tunnel came up with plain after the configured broker went")
		case <-time.After(20 * time.Millisecond):
		}
	}
	if n := countLines(t, far.logf.Name(), "mechanism=PLAIN") - authBefore; n != 0 {
		t.Errorf("the broker from the list authenticated %d PLAIN sessions after the switch to plain, want none", n)
	}
	if log, _ := os.ReadFile(c.log); !strings.Contains(string(log), "broker list not used") {
		t.Errorf("the log does not say why the broker list was not used")
	}
	c.stop(t)
}

func countLines(t *testing.T, path, substr string) int {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(raw), substr)
}
