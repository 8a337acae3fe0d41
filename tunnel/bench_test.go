package tunnel

import (
	"bytes"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/jsklein/gogoc/internal/logx"
)

// benchPair is two engines joined by connected UDP sockets on loopback, as
// client and broker. Each engine's "TUN" is one end of a SOCK_DGRAM
// socketpair, which keeps packet boundaries like a TUN does; the benchmark
// plays the kernel at the other ends.
type benchPair struct {
	a, z         *engine
	kernA, kernZ int // the kernel's side of each device
	closing      atomic.Bool
}

func newBenchPair(tb testing.TB, offload bool) *benchPair {
	tb.Helper()
	la, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	lz, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	la.Close()
	lz.Close()
	ca, err := net.DialUDP("udp4", la.LocalAddr().(*net.UDPAddr), lz.LocalAddr().(*net.UDPAddr))
	if err != nil {
		tb.Fatal(err)
	}
	cz, err := net.DialUDP("udp4", lz.LocalAddr().(*net.UDPAddr), la.LocalAddr().(*net.UDPAddr))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ca.Close(); cz.Close() })
	setSocketBuffers(ca, socketBuffer, logx.Discard())
	setSocketBuffers(cz, socketBuffer, logx.Discard())

	p := &benchPair{}
	mk := func(c *net.UDPConn) (*engine, int) {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			tb.Fatal(err)
		}
		for _, fd := range fds {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 4<<20)
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20)
		}
		dev, err := newTunDevice(fds[0], "bench")
		if err != nil {
			tb.Fatal(err)
		}
		dev.vnet = offload
		tb.Cleanup(func() { dev.Close(); unix.Close(fds[1]) })
		e, err := newEngine(dev, c, engineConfig{batch: defaultBatch, mtu: 1280, offload: offload})
		if err != nil {
			tb.Fatal(err)
		}
		e.cnt, e.log, e.closing = &counters{}, logx.Discard(), &p.closing
		return e, fds[1]
	}
	p.a, p.kernA = mk(ca)
	p.z, p.kernZ = mk(cz)
	if offload && (!p.a.conn.gso() || !p.z.conn.gro) {
		tb.Skip("kernel without UDP GSO/GRO")
	}
	return p
}

// BenchmarkForward measures the packet path of both pumps: the "kernel"
// hands engine A one batch (plain: 44 MTU-sized TCP segments; offload: one
// 64 KiB TSO super-packet), A sends it to Z over UDP, and Z delivers it to
// its device, where the "kernel" takes it. It must not allocate.
func BenchmarkForward(b *testing.B) {
	for _, tc := range []struct {
		name    string
		offload bool
	}{{"plain", false}, {"offload", true}} {
		b.Run(tc.name, func(b *testing.B) {
			p := newBenchPair(b, tc.offload)
			const mss = 1208
			payload := bytes.Repeat([]byte("0123456789abcdef"), 53248/16) // 44 segments
			var in [][]byte
			if tc.offload {
				super := tcpPacket(tSrc, tDst, 40000, 5001, 1, 1, tcpACK, tsOpts, payload)
				vh := make([]byte, vnetHdrLen)
				vnetHdr{flags: vnetNeedsCsum, gsoType: gsoTCPv6, hdrLen: 72, gsoSize: mss, csumStart: 40, csumOffset: 16}.encode(vh)
				in = [][]byte{append(vh, super...)}
			} else {
				in = segments(40000, 1, payload, mss, 0)
			}
			want := len(payload)
			rbuf := make([]byte, maxDevPacket)

			b.SetBytes(int64(want))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for _, pkt := range in {
					if _, err := unix.Write(p.kernA, pkt); err != nil {
						b.Fatal(err)
					}
				}
				if err := p.a.devToNetOnce(); err != nil {
					b.Fatal(err)
				}
				for got := 0; got < want; {
					if err := p.z.netToDevOnce(); err != nil {
						b.Fatal(err)
					}
					for {
						n, err := unix.Read(p.kernZ, rbuf)
						if err == unix.EAGAIN {
							break
						}
						if err != nil {
							b.Fatal(err)
						}
						hdr := 72
						if tc.offload {
							hdr += vnetHdrLen
						}
						got += n - hdr
					}
				}
			}
			b.StopTimer()
			sa, sz := p.a.cnt.snapshot(), p.z.cnt.snapshot()
			if sa.TxErrors != 0 || sz.RxErrors != 0 || sz.Dropped != 0 {
				b.Fatalf("errors: client %+v broker %+v", sa, sz)
			}
			b.ReportMetric(float64(sa.TxPackets)/float64(b.N), "datagrams/op")
		})
	}
}

// TestSendSplitsWithoutGSO covers the fallback for kernels that refuse UDP
// GSO on a route (EIO before Linux 6.10 when the device cannot checksum):
// messages already built for GSO go out datagram by datagram.
func TestSendSplitsWithoutGSO(t *testing.T) {
	for _, gso := range []bool{true, false} {
		p := newBenchPair(t, true)
		payload := bytes.Repeat([]byte("z"), 20*1208+77)
		super := tcpPacket(tSrc, tDst, 40000, 5001, 1, 1, tcpACK, tsOpts, payload)
		vh := vnetHdr{flags: vnetNeedsCsum, gsoType: gsoTCPv6, hdrLen: 72, gsoSize: 1208, csumStart: 40, csumOffset: 16}
		n, _, err := p.a.seg.emit(p.a.conn, vh, super, netip.AddrPort{})
		if err != nil || n != 21 {
			t.Fatalf("emit: %d datagrams, %v", n, err)
		}
		if p.a.conn.queued() != 1 {
			t.Fatalf("%d messages queued, want one GSO message", p.a.conn.queued())
		}
		p.a.conn.gsoOff.Store(!gso) // as after an EIO
		sent, failed, err := p.a.conn.send()
		if err != nil || sent != 21 || failed != 0 {
			t.Fatalf("gso %v: sent %d, failed %d, %v", gso, sent, failed, err)
		}
		// The broker side gets every datagram as one valid packet.
		got, msgs := 0, 0
		for got < 21 {
			m, err := p.z.conn.recv()
			if err != nil {
				t.Fatal(err)
			}
			msgs += m
			for i := 0; i < m; i++ {
				msg, seg := p.z.conn.r.msgs[i], p.z.conn.r.seg[i]
				if seg == 0 {
					seg = len(msg)
				}
				for ; len(msg) > 0; msg = msg[min(seg, len(msg)):] {
					if d := msg[:min(seg, len(msg))]; !tcpChecksumOK(d) {
						t.Fatalf("datagram %d invalid", got)
					}
					got++
				}
			}
		}
		// One GSO send arrives whole at a GRO socket on loopback; split
		// sends arrive one by one.
		if wantMsgs := map[bool]int{true: 1, false: 21}[gso]; got != 21 || msgs != wantMsgs {
			t.Fatalf("gso %v: received %d datagrams in %d messages, want 21 in %d", gso, got, msgs, wantMsgs)
		}
	}
}
