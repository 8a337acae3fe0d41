package tunnel

import (
	"context"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

// BenchmarkV4V6Throughput measures TCP from the client namespace to the
// broker namespace through the userspace v4v6 tunnel (client tunnel and
// the broker's ForwarderV4V6, the plane tspbroker -dataplane runs) and, in
// the same run and over the same veth, over plain IPv4 as the baseline. It
// reports both rates and their ratio (v4v6 / plain IPv4).
//
//	sudo go test -run '^$' -bench V4V6Throughput -benchtime 5x ./tunnel/
//
// Needs root (namespaces, TUN); skips otherwise.
// "offload" is the default plane; "plain" runs both tunnel ends without
// virtio-net headers (one packet per device read and write).
func BenchmarkV4V6Throughput(b *testing.B) {
	b.Run("offload", func(b *testing.B) { benchV4V6(b, false) })
	b.Run("plain", func(b *testing.B) { benchV4V6(b, true) })
}

func benchV4V6(b *testing.B, plain bool) {
	l := newV4V6Lab(b)
	// The baseline needs IPv4 on the veth; the tunnel does not use it.
	l.client.ip(b, "addr", "add", "10.46.0.2/24", "dev", "c0")
	l.broker.ip(b, "addr", "add", "10.46.0.1/24", "dev", "b0")
	startForwarderV4V6(b, l, plain)
	tun, err := New(context.Background(), withAddrs(Config{DataPlane: PlaneUserspace, IfName: "tun4", NetNS: l.client.h, DisableOffload: plain}, v4v6Addrs()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tun.Close() })

	sink := func(addr netip.Addr) string {
		hp := netip.AddrPortFrom(addr, 5002).String()
		ln := listenTCP(b, l.broker, hp)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() { _, _ = io.Copy(io.Discard, c); c.Close() }()
			}
		}()
		return hp
	}
	viaTunnel, direct := sink(v46ServerV4), sink(netip.MustParseAddr("10.46.0.1"))
	const size = 32 << 20
	buf := make([]byte, 256<<10)
	send := func(hp string) time.Duration {
		c, err := dialTCP(l.client, hp)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for n := 0; n < size; n += len(buf) {
			if _, err := c.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
		// Half-close and wait for the sink's close: all data was taken.
		c.(*net.TCPConn).CloseWrite()
		_, _ = c.Read(make([]byte, 1))
		d := time.Since(start)
		c.Close()
		return d
	}
	send(viaTunnel) // warm up both paths
	send(direct)
	b.ResetTimer()
	var dt, dp time.Duration
	for i := 0; i < b.N; i++ {
		dt += send(viaTunnel)
		dp += send(direct)
	}
	b.StopTimer()
	mbit := func(d time.Duration) float64 { return float64(size) * float64(b.N) * 8 / d.Seconds() / 1e6 }
	b.ReportMetric(mbit(dt), "v4v6_Mbit/s")
	b.ReportMetric(mbit(dp), "ipv4_Mbit/s")
	b.ReportMetric(dp.Seconds()/dt.Seconds(), "ratio")
	b.ReportMetric(0, "ns/op") // the op mixes both paths; the rates say it
	if s := tun.Stats(); s.TxErrors != 0 {
		b.Errorf("tunnel errors: %+v", s)
	}
}
