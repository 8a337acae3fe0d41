package tunnel

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/jsklein/gogoc/internal/vmtest"
)

// TestKernelDeadBroker: the kernel planes (sit, sit+fou, ip6tnl) notice a
// crashed broker through the ICMP errors its host sends back (they have no
// socket that could report one: the ICMP watch reads them), with the
// default keepalive interval of 30 s: well before one interval while the
// tunnel carries traffic. First a forged "port unreachable" against the
// healthy broker: confirmed by answered probes, no event.
func TestKernelDeadBroker(t *testing.T) {
	for _, plane := range []string{"sit", "sit+fou", "ip6tnl"} {
		t.Run(plane, func(t *testing.T) { testKernelDeadBroker(t, plane) })
	}
}

func testKernelDeadBroker(t *testing.T, plane string) {
	const interval = 30 * time.Second
	cfg := Config{Keepalive: KeepaliveConfig{Interval: interval}}
	var (
		tun       Tunnel
		flow      outerFlow
		ping      func() (PingConn, error)
		kill      func()
		client    *vmtest.NS
		brokerNS  *vmtest.NS
		forgeCode uint8 = 3 // port unreachable
	)
	switch plane {
	case "sit", "sit+fou":
		vmtest.RequireKernel(t, vmtest.Sit, vmtest.Fou)
		mode := V6V4
		if plane == "sit+fou" {
			mode = V6UDPV4
		}
		l := newKernelLab(t, mode)
		l.brokerEnd(t, false)
		flow = outerFlow{proto: protoIPv6InIPv4, local: klabClientV4, remote: klabBrokerV4}
		if mode == V6UDPV4 {
			flow.proto, flow.sport, flow.dport = unix.IPPROTO_UDP, l.sessionPort(), klabBrokerPort
		}
		tun = l.up(t, cfg)
		client, brokerNS = l.client, l.broker
		ping = func() (PingConn, error) { return NewPingConn(l.client.H, klabIf, labClientV6, labServerV6) }
		kill = func() {
			if mode == V6UDPV4 {
				// The broker's process and its fou port are gone, the
				// host and its sit device stay.
				fous, _ := l.broker.NL.FouList(0)
				for _, f := range fous {
					if err := l.broker.NL.FouDel(f); err != nil {
						t.Fatal(err)
					}
				}
				return
			}
			// No tunnel for us any more: no handler takes protocol 41.
			if err := l.broker.NL.LinkDel(l.broker.Link(t, klabBrokerIf)); err != nil {
				t.Fatal(err)
			}
		}
	case "ip6tnl":
		l := newKernelV4V6Lab(t)
		flow = outerFlow{v6: true, proto: protoIPIP, local: v46ClientOuter, remote: v46BrokerOuter}
		forgeCode = 4 // ICMPv6 port unreachable
		tun = l.up(t, cfg)
		client, brokerNS = l.client, l.broker
		ping = func() (PingConn, error) { return NewPingConn4(l.client.H, "", v46ClientV4, v46ServerV4) }
		kill = func() {
			if err := l.broker.NL.LinkDel(l.broker.Link(t, k46BrokerIf)); err != nil {
				t.Fatal(err)
			}
		}
	}
	p, err := ping()
	if err != nil {
		t.Fatal(err)
	}
	if n := vmtest.Ping(p, 2, 2*time.Second); n != 2 {
		t.Fatalf("%d of 2 pings answered through %s\n%s", n, plane, client.Describe())
	}

	// A forged error against the healthy broker.
	if err := forgeUnreach(brokerNS.H, flow, forgeCode); err != nil {
		t.Fatalf("forge: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for st := tun.Stats(); st.Keepalive.Received == 0 && time.Now().Before(deadline); st = tun.Stats() {
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case ev := <-tun.Events():
		t.Fatalf("event %v after a forged ICMP error: the broker is healthy", ev)
	case <-time.After(6 * time.Second): // the confirmation probes' deadlines, and some
	}
	st := tun.Stats()
	t.Logf("%s after a forged error: %+v", plane, st)
	if st.Unreachable == 0 || st.Keepalive.Confirmations == 0 || st.Keepalive.Received == 0 || st.Keepalive.Lost {
		t.Fatalf("stats %+v: want the forged error seen and confirmed by an answered probe", st)
	}

	// The broker crashes while the tunnel carries traffic.
	kill()
	killed := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		p, err := ping()
		if err != nil {
			return
		}
		defer p.Close()
		for seq := uint16(0); ctx.Err() == nil; seq++ {
			_ = p.WriteEcho(seq)
			time.Sleep(200 * time.Millisecond)
		}
	}()
	ev := waitEvent(t, tun, KeepaliveLost, interval/2)
	st = tun.Stats()
	t.Logf("%s: broker gone, loss %v later: %v; stats %+v", plane, ev.Time.Sub(killed).Round(time.Millisecond), ev, st)
	var ue *UnreachableError
	if !errors.As(ev.Err, &ue) || !errors.Is(ev.Err, unix.ECONNREFUSED) {
		t.Errorf("cause %v, want the broker host's ICMP port unreachable", ev.Err)
	} else if want := flow.remote; ue.From != want {
		t.Errorf("ICMP error from %v, want %v", ue.From, want)
	}
	if st.Unreachable < 2 {
		t.Errorf("unreachable count %d, want the forged one and the real ones", st.Unreachable)
	}
}
