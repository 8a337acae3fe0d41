package tunnel

import (
	"bytes"
	"encoding/binary"
	"net/netip"

	"golang.org/x/sys/unix"
)

// IPv4 segmentation offload for v4v6, the counterpart of offload.go: the
// device runs with virtio-net headers and TCPv4 segmentation offload, the
// segmenter cuts the kernel's 64 KiB TCP super-packets into MTU-sized IPv4
// packets for the raw socket, and the coalescer merges consecutive received
// segments of a flow back into one super-packet for the device. The wire
// carries ordinary IPv4-in-IPv6 packets either way.

const (
	gsoTCPv4 = 1 // VIRTIO_NET_HDR_GSO_TCPV4

	ipv4FlagDF   = 0x40 // in the high byte of the fragment field
	ipv4MoreFrag = 0x20
)

// setTSO4 asks the device for IPv4 TCP super-packets with partial
// checksums instead of the IPv6 offloads openTUN set. A kernel refusing it
// leaves a device with all-zero virtio-net headers, which is still correct.
func setTSO4(dev *tunDevice) {
	_ = dev.rc.Control(func(fd uintptr) {
		_ = unix.IoctlSetInt(int(fd), unix.TUNSETOFFLOAD, unix.TUN_F_CSUM|unix.TUN_F_TSO4)
	})
}

// ipv4HeaderSum is the header checksum of the IPv4 header h (whose
// checksum field is ignored).
func ipv4HeaderSum(h []byte) uint16 {
	acc := sum(h[:10], 0)
	acc = sum(h[12:], acc)
	return ^fold(acc)
}

// pseudoSum4 is the IPv4 pseudo-header (RFC 793) of the packet with header
// h for an upper-layer length and protocol.
func pseudoSum4(h []byte, length int, proto uint8) uint64 {
	return sum(h[12:20], 0) + uint64(length) + uint64(proto)
}

// finishChecksum4 completes a partial checksum (see finishChecksum) in an
// IPv4 packet.
func finishChecksum4(pkt []byte, start, offset int) bool {
	if start < ipv4HeaderLen || start+offset+2 > len(pkt) {
		return false
	}
	c := ^fold(sum(pkt[start:], 0))
	if c == 0 && offset == 6 {
		c = 0xffff // UDP: zero means "no checksum"
	}
	binary.BigEndian.PutUint16(pkt[start+offset:], c)
	return true
}

// segment4 queues the datagrams for one IPv4 TCP super-packet: a copy of
// the headers per segment, in s.arena, with length, identification,
// sequence number, flags and both checksums fixed up, followed by that
// segment's slice of the payload.
func (s *segmenter) segment4(w datagramWriter, vh vnetHdr, pkt []byte, to netip.AddrPort) (datagrams, bytes int, err error) {
	l4 := int(vh.csumStart)
	ihl := int(pkt[0]&0x0f) * 4
	if vh.gsoType&^gsoECN != gsoTCPv4 || l4 != ihl || pkt[9] != protoTCP || l4+20 > len(pkt) {
		return 0, 0, errBadOffload
	}
	thl := int(pkt[l4+12]>>4) * 4
	hdrLen := l4 + thl
	mss := int(vh.gsoSize)
	if thl < 20 || hdrLen > len(pkt) || hdrLen > maxSegHdr || mss == 0 {
		return 0, 0, errBadOffload
	}
	payload := pkt[hdrLen:]
	id := binary.BigEndian.Uint16(pkt[4:6])
	seq := binary.BigEndian.Uint32(pkt[l4+4:])
	for off, i := 0, 0; off < len(payload) || i == 0; i++ {
		if !w.room(2) || len(s.arena)-s.used < hdrLen {
			if err := s.flush(); err != nil {
				return datagrams, bytes, err
			}
		}
		n := min(mss, len(payload)-off)
		h := s.arena[s.used : s.used+hdrLen]
		s.used += hdrLen
		copy(h, pkt[:hdrLen])
		binary.BigEndian.PutUint16(h[2:4], uint16(hdrLen+n))
		binary.BigEndian.PutUint16(h[4:6], id+uint16(i)) // as the kernel's GSO does
		binary.BigEndian.PutUint16(h[10:12], ipv4HeaderSum(h[:ihl]))
		seg := payload[off : off+n]
		off += n
		t := h[l4:]
		binary.BigEndian.PutUint32(t[4:8], seq)
		seq += uint32(n)
		if off < len(payload) {
			t[13] &^= tcpFIN | tcpPSH
		}
		if i > 0 {
			t[13] &^= tcpCWR
		}
		t[16], t[17] = 0, 0
		binary.BigEndian.PutUint16(t[16:18], ^fold(sum(seg, sum(t, pseudoSum4(h, thl+n, protoTCP)))))
		w.startMsg(to)
		w.appendPart(h)
		w.appendPart(seg)
		w.endMsg(0)
		datagrams++
		bytes += hdrLen + n
	}
	return datagrams, bytes, nil
}

// tcp4 describes a plain IPv4+TCP packet: no IP options, not a fragment.
type tcp4 struct {
	thl     int
	payload int
	seq     uint32
	flags   uint8
}

func parseTCP4(p []byte) (tcp4, bool) {
	if len(p) < ipv4HeaderLen+20 || p[0] != 0x45 || p[9] != protoTCP ||
		p[6]&(ipv4MoreFrag|0x1f) != 0 || p[7] != 0 {
		return tcp4{}, false
	}
	thl := int(p[ipv4HeaderLen+12]>>4) * 4
	tl := int(binary.BigEndian.Uint16(p[2:4]))
	if thl < 20 || tl != len(p) || tl < ipv4HeaderLen+thl {
		return tcp4{}, false
	}
	return tcp4{
		thl:     thl,
		payload: tl - ipv4HeaderLen - thl,
		seq:     binary.BigEndian.Uint32(p[ipv4HeaderLen+4:]),
		flags:   p[ipv4HeaderLen+13],
	}, true
}

// tcp4ChecksumOK verifies a segment before it is merged: the merged
// super-packet is handed to the kernel as already checked.
func tcp4ChecksumOK(p []byte) bool {
	return fold(sum(p[ipv4HeaderLen:], pseudoSum4(p, len(p)-ipv4HeaderLen, protoTCP))) == 0xffff
}

// run4 is one device write of the coalescer: one packet, or consecutive
// segments of one TCP flow.
type run4 struct {
	first   []byte
	tcp     tcp4 // thl == 0: not mergeable
	rest    [][]byte
	nextSeq uint32
	nextID  uint16
	payload int
	psh     bool
}

// coalescer4 lays a receive batch of IPv4 packets out as device writes,
// merging a segment into the run just before it when it continues that
// flow exactly as GRO would accept. Bulk TCP arrives in order, so looking
// one run back catches nearly all of it at little cost.
type coalescer4 struct {
	runs  []run4
	vh    []byte
	parts [][]byte
	ends  []int
	pkts  []int
	bytes uint64
}

func newCoalescer4(maxPkts int) *coalescer4 {
	return &coalescer4{
		runs:  make([]run4, 0, maxPkts),
		vh:    make([]byte, maxPkts*vnetHdrLen),
		parts: make([][]byte, 0, 2*maxPkts),
		ends:  make([]int, 0, maxPkts),
		pkts:  make([]int, 0, maxPkts),
	}
}

func (c *coalescer4) reset() {
	c.runs, c.parts, c.ends, c.pkts, c.bytes = c.runs[:0], c.parts[:0], c.ends[:0], c.pkts[:0], 0
}

// add takes one IPv4 packet, whose buffer stays valid until the writes.
func (c *coalescer4) add(p []byte) {
	c.bytes += uint64(len(p))
	t, ok := parseTCP4(p)
	mergeable := ok && t.payload > 0 && t.flags&^tcpPSH == tcpACK && tcp4ChecksumOK(p)
	if n := len(c.runs); mergeable && n > 0 && c.extends(&c.runs[n-1], p, t) {
		r := &c.runs[n-1]
		r.rest = append(r.rest, p[ipv4HeaderLen+t.thl:])
		r.payload += t.payload
		r.nextSeq += uint32(t.payload)
		r.nextID++
		r.psh = t.flags&tcpPSH != 0
		return
	}
	var r run4
	if len(c.runs) < cap(c.runs) {
		r = c.runs[:len(c.runs)+1][len(c.runs)] // reuse rest's backing array
	}
	r.first, r.tcp, r.rest, r.payload, r.psh = p, tcp4{}, r.rest[:0], 0, false
	if mergeable {
		r.tcp, r.payload, r.psh = t, t.payload, t.flags&tcpPSH != 0
		r.nextSeq = t.seq + uint32(t.payload)
		r.nextID = binary.BigEndian.Uint16(p[4:6]) + 1
	}
	c.runs = append(c.runs, r)
}

// extends: p is the next segment of r's flow with the same IP and TCP
// header fields (but PSH), not larger than the first, no segment after a
// PSH, and the merged packet still fits.
func (c *coalescer4) extends(r *run4, p []byte, t tcp4) bool {
	f := r.first
	const th = ipv4HeaderLen
	df := f[6]&ipv4FlagDF != 0
	return r.tcp.thl != 0 && !r.psh &&
		t.seq == r.nextSeq &&
		t.thl == r.tcp.thl &&
		t.payload <= r.tcp.payload &&
		len(r.rest) < maxRunSegs-1 &&
		ipv4HeaderLen+r.tcp.thl+r.payload+t.payload <= maxSuper &&
		f[1] == p[1] && f[6] == p[6] && f[8] == p[8] && // TOS, DF, TTL
		(df || binary.BigEndian.Uint16(p[4:6]) == r.nextID) &&
		bytes.Equal(f[12:20], p[12:20]) && // addresses
		bytes.Equal(f[th:th+4], p[th:th+4]) && // ports
		bytes.Equal(f[th+8:th+13], p[th+8:th+13]) && // ack, data offset
		f[th+13]&^tcpPSH == p[th+13]&^tcpPSH &&
		bytes.Equal(f[th+14:th+16], p[th+14:th+16]) && // window
		bytes.Equal(f[th+20:th+t.thl], p[th+20:th+t.thl]) // options
}

// finish lays the runs out as writes: a virtio-net header, the first
// packet, the payloads merged into it.
func (c *coalescer4) finish() {
	for i := range c.runs {
		r := &c.runs[i]
		vb := c.vh[i*vnetHdrLen : (i+1)*vnetHdrLen]
		var vh vnetHdr
		if len(r.rest) > 0 {
			p, thl := r.first, r.tcp.thl
			total := ipv4HeaderLen + thl + r.payload
			binary.BigEndian.PutUint16(p[2:4], uint16(total))
			binary.BigEndian.PutUint16(p[10:12], ipv4HeaderSum(p[:ipv4HeaderLen]))
			vh = mergedTCP(p, ipv4HeaderLen, thl, r.tcp.payload, r.psh, gsoTCPv4, pseudoSum4(p, thl+r.payload, protoTCP))
		}
		vh.encode(vb)
		c.parts = append(c.parts, vb, r.first)
		c.parts = append(c.parts, r.rest...)
		c.ends = append(c.ends, len(c.parts))
		c.pkts = append(c.pkts, 1+len(r.rest))
	}
}
