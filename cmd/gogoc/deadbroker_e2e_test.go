package main

import (
	"os/exec"
	"testing"
	"time"

	"github.com/jsklein/gogoc/daemon"
)

// TestDaemonBrokerCrashedDefaultInterval: with the keepalive interval
// brokers offer by default (30 s, timeout 5 s), a broker whose process
// crashes while the tunnel carries traffic is noticed from the ICMP errors
// its host sends back, well before one interval (the old client: 65–95 s;
// gogoc before confirmations: 87 s measured), and the supervisor reconnects
// as soon as the broker is back.
func TestDaemonBrokerCrashedDefaultInterval(t *testing.T) {
	dir, gogoc, bin, cns, bns, _ := gdmPair(t, "ping")
	b := newGDMBroker(t, bns, dir, bin, e2eBrokerV4, "-keepalive", "30")
	conf, status := gdmConf(t, dir, e2eBrokerV4, "v6udpv4", "keepalive_interval=30", "keepalive_timeout=5")
	c := startGDMClient(t, cns, dir, gogoc, conf, status)
	c.waitUp(t, hangGuard)

	// A LAN host's traffic through the tunnel, on and on.
	ping := exec.Command("ip", "netns", "exec", cns, "ping", "-6", "-n", "-q", "-i", "0.2", e2eServerV6)
	if err := ping.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ping.Process.Kill(); _ = ping.Wait() }()
	time.Sleep(time.Second)

	b.kill()
	killed := time.Now()
	const interval = 30 * time.Second
	var detected time.Duration
	for {
		st, err := daemon.ReadStatus(status)
		if err == nil && st.State != daemon.StateUp {
			detected = time.Since(killed)
			t.Logf("loss noticed after %v: %s (%s)", detected.Round(time.Millisecond), st.State, st.LastError)
			break
		}
		if time.Since(killed) > interval/2 {
			t.Fatalf("loss not noticed within %v of the crash (half the keepalive interval)", interval/2)
		}
		time.Sleep(20 * time.Millisecond)
	}
	back := b.start()
	up := c.waitUp(t, hangGuard)
	t.Logf("broker crashed: loss noticed after %v (keepalive 30 s; old rule 65–95 s); broker back → tunnel up after %v",
		detected.Round(time.Millisecond), up.Sub(back).Round(time.Millisecond))
	if st := c.readStatus(t); st.Reconnects < 1 || st.State != daemon.StateUp {
		t.Errorf("status after recovery: state %s, reconnects %d", st.State, st.Reconnects)
	}
	c.stop(t)
}
