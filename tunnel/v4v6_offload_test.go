package tunnel

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// tcp4Packet builds an IPv4+TCP packet (timestamps option, DF) with valid
// checksums.
func tcp4Packet(seq uint32, id uint16, flags uint8, payload []byte) []byte {
	const thl = 20 + 12
	p := make([]byte, ipv4HeaderLen+thl+len(payload))
	p[0], p[6], p[8], p[9] = 0x45, ipv4FlagDF, 64, protoTCP
	binary.BigEndian.PutUint16(p[2:4], uint16(len(p)))
	binary.BigEndian.PutUint16(p[4:6], id)
	copy(p[12:16], []byte{198, 18, 0, 2})
	copy(p[16:20], []byte{10, 46, 1, 2})
	binary.BigEndian.PutUint16(p[10:12], ipv4HeaderSum(p[:ipv4HeaderLen]))
	t := p[ipv4HeaderLen:]
	binary.BigEndian.PutUint16(t[0:2], 40000)
	binary.BigEndian.PutUint16(t[2:4], 5001)
	binary.BigEndian.PutUint32(t[4:8], seq)
	binary.BigEndian.PutUint32(t[8:12], 777)
	t[12], t[13] = thl/4<<4, flags
	binary.BigEndian.PutUint16(t[14:16], 512)
	copy(t[20:thl], tsOpts)
	copy(t[thl:], payload)
	binary.BigEndian.PutUint16(t[16:18], ^fold(sum(t, pseudoSum4(p, len(t), protoTCP))))
	return p
}

func ipv4HeaderOK(p []byte) bool { return fold(sum(p[:ipv4HeaderLen], 0)) == 0xffff }

func TestSegmentCoalesceTCP4(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const mss = 1228 // MTU 1280 with timestamps
	payload := make([]byte, 40*mss+333)
	for i := range payload {
		payload[i] = byte(r.Uint32())
	}
	// The kernel's super-packet: partial checksum, total length of all.
	super := tcp4Packet(1000, 50, tcpACK|tcpPSH, payload)
	vh := vnetHdr{flags: vnetNeedsCsum, gsoType: gsoTCPv4, hdrLen: 52, gsoSize: mss, csumStart: 20, csumOffset: 16}
	rec, seg := newRecorder(false, 16) // a small batch forces flushes mid-packet
	n, b, err := seg.segment4(rec, vh, super, netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	dgs := rec.datagrams()
	if n != 41 || len(dgs) != 41 || rec.flushes == 0 {
		t.Fatalf("%d datagrams (%d recorded, %d flushes), want 41 and flushes", n, len(dgs), rec.flushes)
	}
	var got []byte
	var total int
	for i, d := range dgs {
		total += len(d)
		tp, ok := parseTCP4(d)
		if !ok || !ipv4HeaderOK(d) || !tcp4ChecksumOK(d) {
			t.Fatalf("segment %d: parse %v, header checksum %v, TCP checksum %v", i, ok, ipv4HeaderOK(d), tcp4ChecksumOK(d))
		}
		if tp.seq != 1000+uint32(i*mss) || binary.BigEndian.Uint16(d[4:6]) != 50+uint16(i) {
			t.Fatalf("segment %d: seq %d id %d", i, tp.seq, binary.BigEndian.Uint16(d[4:6]))
		}
		last := i == len(dgs)-1
		if (tp.flags&tcpPSH != 0) != last || (tp.payload == mss) == last {
			t.Fatalf("segment %d: flags %#x, %d bytes", i, tp.flags, tp.payload)
		}
		got = append(got, d[ipv4HeaderLen+tp.thl:]...)
	}
	if !bytes.Equal(got, payload) || b != total {
		t.Fatal("segments do not carry the payload in order")
	}

	// Merged back on the receiving side: one write of one super-packet.
	c := newCoalescer4(64)
	for _, d := range dgs {
		c.add(bytes.Clone(d))
	}
	c.finish()
	if len(c.ends) != 1 || c.pkts[0] != 41 {
		t.Fatalf("%d writes %v, want one of 41 packets", len(c.ends), c.pkts)
	}
	var w []byte
	for _, part := range c.parts {
		w = append(w, part...)
	}
	mvh := decodeVnetHdr(w)
	m := w[vnetHdrLen:]
	if mvh.gsoType != gsoTCPv4 || mvh.gsoSize != mss || mvh.hdrLen != 52 || mvh.flags != vnetNeedsCsum || mvh.csumStart != 20 || mvh.csumOffset != 16 {
		t.Fatalf("virtio-net header %+v", mvh)
	}
	if int(binary.BigEndian.Uint16(m[2:4])) != len(m) || !ipv4HeaderOK(m) || !bytes.Equal(m[52:], payload) || m[33]&tcpPSH == 0 {
		t.Fatalf("merged packet: length %d of %d, header ok %v, flags %#x", binary.BigEndian.Uint16(m[2:4]), len(m), ipv4HeaderOK(m), m[33])
	}
	if want := fold(pseudoSum4(m, len(m)-20, protoTCP)); binary.BigEndian.Uint16(m[36:38]) != want {
		t.Fatalf("TCP checksum field %#x, want the pseudo-header sum %#x", binary.BigEndian.Uint16(m[36:38]), want)
	}
}

func TestCoalesce4KeepsApart(t *testing.T) {
	pl := bytes.Repeat([]byte{7}, 100)
	seg := func(seq uint32, id uint16) []byte { return tcp4Packet(seq, id, tcpACK, pl) }
	otherFlow := seg(100, 2)
	otherFlow[19] = 3 // another destination
	binary.BigEndian.PutUint16(otherFlow[10:12], ipv4HeaderSum(otherFlow[:20]))
	badSum := seg(200, 2)
	badSum[len(badSum)-1] ^= 1
	psh := tcp4Packet(100, 1, tcpACK|tcpPSH, pl)
	fin := tcp4Packet(100, 1, tcpACK|tcpFIN, pl)
	for name, tc := range map[string]struct {
		pkts   [][]byte
		writes []int
	}{
		"in order":        {[][]byte{seg(0, 1), seg(100, 2), seg(200, 3)}, []int{3}},
		"gap":             {[][]byte{seg(0, 1), seg(200, 2)}, []int{1, 1}},
		"other flow":      {[][]byte{seg(0, 1), otherFlow}, []int{1, 1}},
		"bad checksum":    {[][]byte{seg(0, 1), seg(100, 2), badSum}, []int{2, 1}},
		"after PSH":       {[][]byte{seg(0, 1), psh, seg(200, 3)}, []int{2, 1}},
		"FIN":             {[][]byte{seg(0, 1), fin}, []int{1, 1}},
		"larger than 1st": {[][]byte{tcp4Packet(0, 1, tcpACK, pl[:50]), tcp4Packet(50, 2, tcpACK, pl)}, []int{1, 1}},
	} {
		t.Run(name, func(t *testing.T) {
			c := newCoalescer4(8)
			for _, p := range tc.pkts {
				c.add(p)
			}
			c.finish()
			if len(c.pkts) != len(tc.writes) {
				t.Fatalf("writes %v, want %v", c.pkts, tc.writes)
			}
			for i := range tc.writes {
				if c.pkts[i] != tc.writes[i] {
					t.Fatalf("writes %v, want %v", c.pkts, tc.writes)
				}
			}
			// A single packet goes out unchanged behind a zero header.
			if tc.writes[len(tc.writes)-1] == 1 {
				last := c.parts[c.ends[len(c.ends)-1]-1]
				if !bytes.Equal(c.parts[c.ends[len(c.ends)-1]-2], make([]byte, vnetHdrLen)) || !bytes.Equal(last, tc.pkts[len(tc.pkts)-1]) {
					t.Fatal("single packet changed")
				}
			}
			c.reset()
			if len(c.runs)+len(c.parts)+len(c.ends) != 0 || c.bytes != 0 {
				t.Fatal("reset left state")
			}
		})
	}
}

func TestSegment4Refuses(t *testing.T) {
	good := tcp4Packet(0, 1, tcpACK, make([]byte, 3000))
	vh := vnetHdr{flags: vnetNeedsCsum, gsoType: gsoTCPv4, hdrLen: 52, gsoSize: 1228, csumStart: 20, csumOffset: 16}
	udp := bytes.Clone(good)
	udp[9] = protoUDP
	for name, tc := range map[string]struct {
		vh  vnetHdr
		pkt []byte
	}{
		"UDP":          {vh, udp},
		"TCPv6 GSO":    {vnetHdr{gsoType: gsoTCPv6, gsoSize: 1228, csumStart: 20}, good},
		"zero MSS":     {vnetHdr{gsoType: gsoTCPv4, csumStart: 20}, good},
		"csum start":   {vnetHdr{gsoType: gsoTCPv4, gsoSize: 1228, csumStart: 24}, good},
		"short header": {vh, good[:30]},
	} {
		rec, seg := newRecorder(false, 64)
		if _, _, err := seg.segment4(rec, tc.vh, tc.pkt, netip.AddrPort{}); err != errBadOffload || len(rec.msgs) != 0 {
			t.Errorf("%s: err %v, %d datagrams; want errBadOffload and none", name, err, len(rec.msgs))
		}
	}
	// finishChecksum4 completes an ICMP checksum the kernel left partial.
	icmp := []byte{0x45, 0, 0, 28, 0, 0, 0, 0, 64, 1, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 8, 0, 0, 0, 0, 1, 0, 2}
	if !finishChecksum4(icmp, 20, 2) || fold(sum(icmp[20:], 0)) != 0xffff {
		t.Error("ICMP checksum not completed")
	}
	if finishChecksum4(icmp, 12, 2) || finishChecksum4(icmp, 20, 8) {
		t.Error("offsets outside the payload accepted")
	}
}
