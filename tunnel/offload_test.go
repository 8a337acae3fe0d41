package tunnel

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// naiveChecksum is RFC 1071 word by word, the reference for sum/fold.
func naiveChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

func TestSumMatchesRFC1071(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := range 300 {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if n > 3 {
			b[0], b[1] = 0xff, 0xff // exercise carries
		}
		if got, want := fold(sum(b, 0)), naiveChecksum(b); got != want {
			t.Fatalf("len %d: fold(sum) = %#04x, want %#04x", n, got, want)
		}
		// Sums of even-length chunks combine.
		if n >= 10 {
			if got, want := fold(sum(b[10:], sum(b[:10], 0))), naiveChecksum(b); got != want {
				t.Fatalf("len %d chunked: %#04x, want %#04x", n, got, want)
			}
		}
	}
}

var (
	tSrc = netip.MustParseAddr("2001:db8:ab::2")
	tDst = netip.MustParseAddr("2001:db8:1::2")
)

// tcpPacket builds an IPv6/TCP packet with a valid checksum.
func tcpPacket(src, dst netip.Addr, sport, dport uint16, seq, ack uint32, flags uint8, opts, payload []byte) []byte {
	thl := 20 + len(opts)
	p := make([]byte, ipv6HeaderLen+thl+len(payload))
	p[0] = 0x60
	binary.BigEndian.PutUint16(p[4:6], uint16(thl+len(payload)))
	p[6], p[7] = protoTCP, 64
	s, d := src.As16(), dst.As16()
	copy(p[8:24], s[:])
	copy(p[24:40], d[:])
	t := p[ipv6HeaderLen:]
	binary.BigEndian.PutUint16(t[0:2], sport)
	binary.BigEndian.PutUint16(t[2:4], dport)
	binary.BigEndian.PutUint32(t[4:8], seq)
	binary.BigEndian.PutUint32(t[8:12], ack)
	t[12] = byte(thl/4) << 4
	t[13] = flags
	binary.BigEndian.PutUint16(t[14:16], 512)
	copy(t[20:], opts)
	copy(t[thl:], payload)
	binary.BigEndian.PutUint16(t[16:18], ^fold(sum(t, pseudoSum(p, len(t), protoTCP))))
	return p
}

func udpPacket(payload []byte) []byte {
	p := make([]byte, ipv6HeaderLen+8+len(payload))
	p[0] = 0x60
	binary.BigEndian.PutUint16(p[4:6], uint16(8+len(payload)))
	p[6], p[7] = protoUDP, 64
	s, d := tSrc.As16(), tDst.As16()
	copy(p[8:24], s[:])
	copy(p[24:40], d[:])
	u := p[ipv6HeaderLen:]
	binary.BigEndian.PutUint16(u[0:2], 4433)
	binary.BigEndian.PutUint16(u[2:4], 443)
	binary.BigEndian.PutUint16(u[4:6], uint16(8+len(payload)))
	copy(u[8:], payload)
	return p
}

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

var tsOpts = []byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2} // NOP NOP timestamps

// recorder is a datagramWriter that keeps what it is given.
type recorder struct {
	gsoOn    bool
	maxParts int
	msgs     []recMsg
	cur      recMsg
	parts    int
	flushes  int
}

type recMsg struct {
	to   netip.AddrPort
	data []byte
	seg  int
}

func (r *recorder) room(parts int) bool { return r.parts+parts <= r.maxParts }
func (r *recorder) startMsg(to netip.AddrPort) {
	r.cur = recMsg{to: to}
}
func (r *recorder) appendPart(p []byte) {
	r.cur.data = append(r.cur.data, p...)
	r.parts++
}
func (r *recorder) endMsg(seg int) {
	if seg >= len(r.cur.data) {
		seg = 0
	}
	r.cur.seg = seg
	r.msgs = append(r.msgs, r.cur)
}
func (r *recorder) gso() bool { return r.gsoOn }

// datagrams splits the recorded messages the way the kernel would.
func (r *recorder) datagrams() [][]byte {
	var out [][]byte
	for _, m := range r.msgs {
		seg := m.seg
		if seg == 0 {
			seg = len(m.data)
		}
		for d := m.data; len(d) > 0; d = d[min(seg, len(d)):] {
			out = append(out, d[:min(seg, len(d))])
		}
	}
	return out
}

func newRecorder(gso bool, maxParts int) (*recorder, *segmenter) {
	r := &recorder{gsoOn: gso, maxParts: maxParts}
	s := &segmenter{arena: make([]byte, segmentHeader)}
	s.flush = func() error { r.parts = 0; r.flushes++; s.reset(); return nil }
	return r, s
}

func TestSegmentTCP(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const mss = 1208 // MTU 1280 with timestamps
	for _, tc := range []struct {
		name     string
		payload  int
		gso      bool
		maxParts int
		flags    uint8
	}{
		{"64k gso", 65000, true, 1024, tcpACK | tcpPSH},
		{"64k no gso", 65000, false, 1024, tcpACK | tcpPSH | tcpFIN},
		{"64k tiny batches", 65000, true, 9, tcpACK | tcpCWR},
		{"exact multiple", 3 * mss, true, 1024, tcpACK},
		{"one segment", 100, true, 1024, tcpACK | tcpPSH},
	} {
		t.Run(tc.name, func(t *testing.T) {
			payload := randomBytes(r, tc.payload)
			pkt := tcpPacket(tSrc, tDst, 40000, 5001, 1000, 77, tc.flags, tsOpts, payload)
			pkt[ipv6HeaderLen+16], pkt[ipv6HeaderLen+17] = 0, 0 // the kernel leaves it partial
			vh := vnetHdr{flags: vnetNeedsCsum, gsoType: gsoTCPv6, hdrLen: 72, gsoSize: mss, csumStart: 40, csumOffset: 16}
			w, s := newRecorder(tc.gso, tc.maxParts)
			to := netip.MustParseAddrPort("192.0.2.1:3653")
			n, b, err := s.emit(w, vh, pkt, to)
			if err != nil {
				t.Fatal(err)
			}
			want := (tc.payload + mss - 1) / mss
			dgs := w.datagrams()
			if n != want || len(dgs) != want {
				t.Fatalf("%d datagrams reported, %d recorded, want %d", n, len(dgs), want)
			}
			var got []byte
			total := 0
			for i, d := range dgs {
				total += len(d)
				if len(d) > 1280 {
					t.Fatalf("segment %d is %d bytes, more than the MTU", i, len(d))
				}
				tp, ok := parseTCP6(d)
				if !ok || !tcpChecksumOK(d) {
					t.Fatalf("segment %d is not a valid TCP packet (parse %v)", i, ok)
				}
				if tp.seq != uint32(1000+i*mss) {
					t.Fatalf("segment %d seq %d", i, tp.seq)
				}
				last := i == len(dgs)-1
				if wantF := tc.flags &^ (tcpFIN | tcpPSH | tcpCWR); tp.flags&^(tcpFIN|tcpPSH|tcpCWR) != wantF {
					t.Fatalf("segment %d flags %#x", i, tp.flags)
				}
				if got, want := tp.flags&(tcpFIN|tcpPSH) != 0, last && tc.flags&(tcpFIN|tcpPSH) != 0; got != want {
					t.Fatalf("segment %d (last %v): FIN/PSH %v", i, last, got)
				}
				if got, want := tp.flags&tcpCWR != 0, i == 0 && tc.flags&tcpCWR != 0; got != want {
					t.Fatalf("segment %d: CWR %v", i, got)
				}
				got = append(got, d[ipv6HeaderLen+tp.thl:]...)
			}
			if !bytes.Equal(got, payload) {
				t.Fatal("payloads do not add up to the super-packet's")
			}
			if b != total {
				t.Fatalf("reported %d bytes, datagrams hold %d", b, total)
			}
			for _, m := range w.msgs {
				if m.to != to {
					t.Fatalf("message to %v", m.to)
				}
				if m.seg != 0 && (!tc.gso || m.seg != 72+mss) {
					t.Fatalf("message with segment size %d (gso %v)", m.seg, tc.gso)
				}
			}
			if tc.maxParts < 20 && w.flushes == 0 {
				t.Fatal("a small writer was never flushed")
			}
		})
	}
}

func TestSegmentUDP(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	payload := randomBytes(r, 5000)
	pkt := udpPacket(payload)
	vh := vnetHdr{flags: vnetNeedsCsum, gsoType: gsoUDPL4, hdrLen: 48, gsoSize: 1200, csumStart: 40, csumOffset: 6}
	w, s := newRecorder(true, 1024)
	if _, _, err := s.emit(w, vh, pkt, netip.AddrPort{}); err != nil {
		t.Fatal(err)
	}
	dgs := w.datagrams()
	if len(dgs) != 5 {
		t.Fatalf("%d datagrams, want 5", len(dgs))
	}
	var got []byte
	for i, d := range dgs {
		u := d[ipv6HeaderLen:]
		if l := int(binary.BigEndian.Uint16(u[4:6])); l != len(u) {
			t.Fatalf("datagram %d: UDP length %d, have %d", i, l, len(u))
		}
		if fold(sum(u, pseudoSum(d, len(u), protoUDP))) != 0xffff {
			t.Fatalf("datagram %d: bad UDP checksum", i)
		}
		got = append(got, u[8:]...)
	}
	if !bytes.Equal(got, payload) {
		t.Fatal("payload mismatch")
	}
}

func TestSegmentFinishesPartialChecksum(t *testing.T) {
	pkt := tcpPacket(tSrc, tDst, 1, 2, 3, 4, tcpACK, nil, []byte("hello, tunnel"))
	// What the kernel hands over with TUN_F_CSUM: the pseudo-header sum.
	binary.BigEndian.PutUint16(pkt[56:58], fold(pseudoSum(pkt, len(pkt)-40, protoTCP)))
	w, s := newRecorder(true, 16)
	if _, _, err := s.emit(w, vnetHdr{flags: vnetNeedsCsum, csumStart: 40, csumOffset: 16}, pkt, netip.AddrPort{}); err != nil {
		t.Fatal(err)
	}
	if d := w.datagrams(); len(d) != 1 || !tcpChecksumOK(d[0]) {
		t.Fatalf("datagrams %d, checksum not finished", len(d))
	}
}

func TestSegmentRejectsNonsense(t *testing.T) {
	good := tcpPacket(tSrc, tDst, 1, 2, 3, 4, tcpACK, nil, make([]byte, 3000))
	for _, tc := range []struct {
		name string
		vh   vnetHdr
		pkt  []byte
	}{
		{"short", vnetHdr{}, good[:20]},
		{"ipv4", vnetHdr{}, append([]byte{0x45}, good[1:]...)},
		{"csum past end", vnetHdr{flags: vnetNeedsCsum, csumStart: 40, csumOffset: 5000}, good},
		{"gso without mss", vnetHdr{gsoType: gsoTCPv6, csumStart: 40}, good},
		{"gso l4 past end", vnetHdr{gsoType: gsoTCPv6, csumStart: 4000, gsoSize: 100}, good},
		{"gso l4 inside ipv6 header", vnetHdr{gsoType: gsoTCPv6, csumStart: 10, gsoSize: 100}, good},
		{"gso unknown type", vnetHdr{gsoType: 3, csumStart: 40, gsoSize: 100}, good},
	} {
		w, s := newRecorder(true, 1024)
		if _, _, err := s.emit(w, tc.vh, tc.pkt, netip.AddrPort{}); err != errBadOffload {
			t.Errorf("%s: err %v, want errBadOffload", tc.name, err)
		}
		if len(w.msgs) != 0 {
			t.Errorf("%s: %d messages queued", tc.name, len(w.msgs))
		}
	}
}

// writes returns the coalescer's writes as (virtio header, packet bytes).
func writes(c *coalescer) (hdrs []vnetHdr, pkts [][]byte) {
	start := 0
	for _, end := range c.ends {
		parts := c.iovs[start:end]
		start = end
		if c.vnet {
			hdrs = append(hdrs, decodeVnetHdr(parts[0]))
			parts = parts[1:]
		}
		pkts = append(pkts, bytes.Join(parts, nil))
	}
	return hdrs, pkts
}

// segments cuts payload into MSS-sized valid TCP packets from seq on.
func segments(sport uint16, seq uint32, payload []byte, mss int, lastFlags uint8) [][]byte {
	var out [][]byte
	for off := 0; off < len(payload); off += mss {
		end := min(off+mss, len(payload))
		f := uint8(tcpACK)
		if end == len(payload) {
			f |= lastFlags
		}
		out = append(out, tcpPacket(tSrc, tDst, sport, 5001, seq+uint32(off), 9, f, tsOpts, payload[off:end]))
	}
	return out
}

func TestCoalesceMergesAFlow(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	payload := randomBytes(r, 20*1208+500)
	c := newCoalescer(256, true)
	for _, p := range segments(40000, 5000, payload, 1208, tcpPSH) {
		c.add(p)
	}
	c.finish()
	hdrs, pkts := writes(c)
	if len(pkts) != 1 || c.pkts[0] != 21 {
		t.Fatalf("%d writes (packets %v), want one of 21", len(pkts), c.pkts)
	}
	h, p := hdrs[0], pkts[0]
	if h.gsoType != gsoTCPv6 || h.gsoSize != 1208 || h.hdrLen != 72 || h.flags != vnetNeedsCsum || h.csumStart != 40 || h.csumOffset != 16 {
		t.Fatalf("virtio header %+v", h)
	}
	tp, ok := parseTCP6(p)
	if !ok || tp.seq != 5000 || tp.flags != tcpACK|tcpPSH || !bytes.Equal(p[72:], payload) {
		t.Fatalf("merged packet: parse %v, %+v, payload equal %v", ok, tp, bytes.Equal(p[72:], payload))
	}
	// The checksum is left partial; finished, it must be valid.
	if !finishChecksum(p, 40, 16) || !tcpChecksumOK(p) {
		t.Fatal("merged packet's partial checksum does not finish to a valid one")
	}
}

func TestCoalesceKeepsOrderAndRules(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	a := segments(1111, 0, randomBytes(r, 4*1000), 1000, 0)
	b := segments(2222, 0, randomBytes(r, 3*1000), 1000, 0)
	bad := tcpPacket(tSrc, tDst, 1111, 5001, 4000, 9, tcpACK, tsOpts, make([]byte, 1000))
	bad[100] ^= 0xff // corrupt: must not be merged or marked valid
	fin := tcpPacket(tSrc, tDst, 2222, 5001, 3000, 9, tcpACK|tcpFIN, tsOpts, nil)
	gap := tcpPacket(tSrc, tDst, 1111, 5001, 9000, 9, tcpACK, tsOpts, make([]byte, 1000))
	icmp := append([]byte{0x60, 0, 0, 0, 0, 8, 58, 64}, make([]byte, 40)...)

	c := newCoalescer(256, true)
	for _, p := range [][]byte{a[0], b[0], a[1], b[1], icmp, a[2], b[2], fin, a[3], bad, gap} {
		c.add(p)
	}
	c.finish()
	hdrs, pkts := writes(c)
	type w struct {
		sport uint16
		seq   uint32
		n     int
		flags uint8
	}
	var got []w
	for i, p := range pkts {
		tp, ok := parseTCP6(p)
		if !ok {
			got = append(got, w{n: c.pkts[i], flags: hdrs[i].flags})
			continue
		}
		got = append(got, w{binary.BigEndian.Uint16(p[40:42]), tp.seq, c.pkts[i], hdrs[i].flags})
	}
	want := []w{
		{1111, 0, 4, vnetNeedsCsum},    // a merged across interleaving
		{2222, 0, 3, vnetNeedsCsum},    // b merged
		{0, 0, 1, 0},                   // ICMPv6 in between, as it came
		{2222, 3000, 1, 0},             // FIN not merged, after b's data
		{1111, 4000, 1, 0},             // corrupt: alone, left to the kernel to drop
		{1111, 9000, 1, vnetDataValid}, // sequence gap: a run of its own
	}
	if len(got) != len(want) {
		t.Fatalf("writes %+v\nwant   %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("write %d = %+v, want %+v (all %+v)", i, got[i], want[i], got)
		}
	}
	// Flow order holds: b's FIN is written after b's data, a's later
	// segments after a's run.
}

func TestCoalescePlainWritesEachPacket(t *testing.T) {
	c := newCoalescer(16, false)
	for _, p := range segments(1, 0, make([]byte, 3000), 1000, 0) {
		c.add(p)
	}
	c.finish()
	if len(c.ends) != 3 || len(c.iovs) != 3 {
		t.Fatalf("%d writes of %d parts, want 3 of 1", len(c.ends), len(c.iovs))
	}
}

func TestSegmentCoalesceRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	payload := randomBytes(r, 60000)
	pkt := tcpPacket(tSrc, tDst, 40000, 5001, 123456, 77, tcpACK|tcpPSH, tsOpts, payload)
	w, s := newRecorder(true, 1024)
	if _, _, err := s.emit(w, vnetHdr{flags: vnetNeedsCsum, gsoType: gsoTCPv6, gsoSize: 1208, csumStart: 40, csumOffset: 16}, pkt, netip.AddrPort{}); err != nil {
		t.Fatal(err)
	}
	c := newCoalescer(256, true)
	for _, d := range w.datagrams() {
		c.add(d)
	}
	c.finish()
	_, pkts := writes(c)
	if len(pkts) != 1 {
		t.Fatalf("%d writes, want 1", len(pkts))
	}
	got := pkts[0]
	if !finishChecksum(got, 40, 16) || !bytes.Equal(got, pkt) {
		t.Fatal("segmenting then coalescing does not give the super-packet back")
	}
}

func TestVnetHdrRoundTrip(t *testing.T) {
	h := vnetHdr{flags: 1, gsoType: 4, hdrLen: 72, gsoSize: 1208, csumStart: 40, csumOffset: 16}
	b := make([]byte, vnetHdrLen)
	h.encode(b)
	if got := decodeVnetHdr(b); got != h {
		t.Fatalf("%+v != %+v", got, h)
	}
}

// FuzzSegment feeds arbitrary virtio-net headers and packets to the
// segmenter: it must reject or segment, never panic, and every datagram it
// makes must fit the MTU-sized segment the header asked for.
func FuzzSegment(f *testing.F) {
	super := tcpPacket(tSrc, tDst, 40000, 5001, 1, 1, tcpACK, tsOpts, make([]byte, 5000))
	f.Add(uint8(vnetNeedsCsum), uint8(gsoTCPv6), uint16(1208), uint16(40), uint16(16), super)
	f.Add(uint8(vnetNeedsCsum), uint8(gsoUDPL4), uint16(1200), uint16(40), uint16(6), udpPacket(make([]byte, 3000)))
	f.Add(uint8(vnetNeedsCsum), uint8(gsoNone), uint16(0), uint16(40), uint16(16), super[:100])
	f.Fuzz(func(t *testing.T, flags, gsoType uint8, gsoSize, csumStart, csumOffset uint16, pkt []byte) {
		vh := vnetHdr{flags: flags, gsoType: gsoType, gsoSize: gsoSize, csumStart: csumStart, csumOffset: csumOffset}
		for _, gso := range []bool{true, false} {
			w, s := newRecorder(gso, 64)
			n, _, err := s.emit(w, vh, bytes.Clone(pkt), netip.AddrPort{})
			if err != nil {
				if len(w.msgs) != 0 {
					t.Fatal("rejected packet left messages queued")
				}
				continue
			}
			dgs := w.datagrams()
			if len(dgs) != n {
				t.Fatalf("%d datagrams reported, %d made", n, len(dgs))
			}
			if vh.gsoType == gsoNone {
				continue
			}
			for _, d := range dgs {
				if len(d) > maxSegHdr+int(gsoSize) {
					t.Fatalf("datagram of %d bytes for segments of %d", len(d), gsoSize)
				}
			}
		}
	})
}
