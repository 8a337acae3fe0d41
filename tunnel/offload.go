package tunnel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
)

// Segmentation offload between the TUN device and the tunnel socket.
//
// With IFF_VNET_HDR and TUNSETOFFLOAD the kernel hands the device up to
// 64 KiB TCP (and UDP) "super-packets" with a virtio-net header instead of
// MTU-sized packets, and takes such super-packets from us. The tunnel must
// still carry ordinary MTU-sized IPv6 packets with valid checksums, since the
// broker is not ours: the segmenter cuts each super-packet into them on the
// way out, and the coalescer merges consecutive segments of a TCP flow back
// into one super-packet on the way in (what GRO does in the kernel). This
// turns one system call per packet into one per 64 KiB on both sides.

const (
	vnetHdrLen = 10 // struct virtio_net_hdr

	vnetNeedsCsum = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM
	vnetDataValid = 2 // VIRTIO_NET_HDR_F_DATA_VALID

	gsoNone  = 0
	gsoTCPv6 = 4
	gsoUDPL4 = 5
	gsoECN   = 0x80

	protoTCP = 6
	protoUDP = 17

	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpPSH = 0x08
	tcpACK = 0x10
	tcpCWR = 0x80

	// maxSegHdr bounds the headers repeated in every segment (IPv6, any
	// extension headers, TCP with options).
	maxSegHdr = 256
	// maxRunSegs bounds the segments merged into one super-packet, as GRO
	// does; maxSuper is the largest super-packet written to the device.
	maxRunSegs = 64
	maxSuper   = 65535
	// maxOpenRuns is how many flows the coalescer follows at once.
	maxOpenRuns = 8
)

var errBadOffload = errors.New("malformed offload packet")

// vnetHdr is struct virtio_net_hdr. TUN uses the host's byte order for it
// (the legacy virtio layout), which matters on big-endian MIPS routers.
type vnetHdr struct {
	flags      uint8
	gsoType    uint8
	hdrLen     uint16
	gsoSize    uint16
	csumStart  uint16
	csumOffset uint16
}

func decodeVnetHdr(b []byte) vnetHdr {
	e := binary.NativeEndian
	return vnetHdr{
		flags:      b[0],
		gsoType:    b[1],
		hdrLen:     e.Uint16(b[2:4]),
		gsoSize:    e.Uint16(b[4:6]),
		csumStart:  e.Uint16(b[6:8]),
		csumOffset: e.Uint16(b[8:10]),
	}
}

func (h vnetHdr) encode(b []byte) {
	e := binary.NativeEndian
	b[0], b[1] = h.flags, h.gsoType
	e.PutUint16(b[2:4], h.hdrLen)
	e.PutUint16(b[4:6], h.gsoSize)
	e.PutUint16(b[6:8], h.csumStart)
	e.PutUint16(b[8:10], h.csumOffset)
}

// datagramWriter is where the segmenter puts datagrams: batchConn, or a
// recorder in tests. A message is one datagram, or with UDP GSO several of
// equal size.
type datagramWriter interface {
	room(parts int) bool
	startMsg(to netip.AddrPort)
	appendPart(p []byte)
	endMsg(segSize int)
	gso() bool
}

// segmenter turns device packets into tunnel datagrams. Headers of the
// segments are written to arena, which must stay untouched until the
// writer's queue is flushed (flush resets it).
type segmenter struct {
	arena []byte
	used  int
	// flush sends what the writer holds; called when it or the arena is
	// full. It must call reset.
	flush func() error
}

func (s *segmenter) reset() { s.used = 0 }

// emit queues the datagrams for one packet read from the device: vh is its
// virtio-net header, pkt the IPv6 packet (a super-packet if vh says GSO).
// Packets it cannot make sense of are reported with errBadOffload and
// queue nothing.
func (s *segmenter) emit(w datagramWriter, vh vnetHdr, pkt []byte, to netip.AddrPort) (datagrams, bytes int, err error) {
	if len(pkt) < ipv6HeaderLen || pkt[0]>>4 != 6 {
		return 0, 0, errBadOffload
	}
	if vh.gsoType == gsoNone {
		if vh.flags&vnetNeedsCsum != 0 && !finishChecksum(pkt, int(vh.csumStart), int(vh.csumOffset)) {
			return 0, 0, errBadOffload
		}
		if !w.room(1) {
			if err := s.flush(); err != nil {
				return 0, 0, err
			}
		}
		w.startMsg(to)
		w.appendPart(pkt)
		w.endMsg(0)
		return 1, len(pkt), nil
	}

	var proto uint8
	var l4Len int
	l4 := int(vh.csumStart)
	switch vh.gsoType &^ gsoECN {
	case gsoTCPv6:
		proto = protoTCP
		if l4+20 > len(pkt) {
			return 0, 0, errBadOffload
		}
		l4Len = int(pkt[l4+12]>>4) * 4
		if l4Len < 20 {
			return 0, 0, errBadOffload
		}
	case gsoUDPL4:
		proto, l4Len = protoUDP, 8
	default:
		return 0, 0, errBadOffload
	}
	hdrLen := l4 + l4Len
	mss := int(vh.gsoSize)
	if l4 < ipv6HeaderLen || hdrLen > len(pkt) || hdrLen > maxSegHdr || mss == 0 {
		return 0, 0, errBadOffload
	}
	payload := pkt[hdrLen:]
	perMsg := 1
	if w.gso() {
		perMsg = min(maxGSOSegments, maxGSOBytes/(hdrLen+mss))
	}
	var seq uint32
	if proto == protoTCP {
		seq = binary.BigEndian.Uint32(pkt[l4+4:])
	}
	for off, i := 0, 0; off < len(payload) || i == 0; {
		if !w.room(2*perMsg) || len(s.arena)-s.used < perMsg*hdrLen {
			if err := s.flush(); err != nil {
				return datagrams, bytes, err
			}
		}
		w.startMsg(to)
		for k := 0; k < perMsg && (off < len(payload) || i == 0); k++ {
			n := min(mss, len(payload)-off)
			h := s.arena[s.used : s.used+hdrLen]
			s.used += hdrLen
			copy(h, pkt[:hdrLen])
			binary.BigEndian.PutUint16(h[4:6], uint16(hdrLen-ipv6HeaderLen+n))
			seg := payload[off : off+n]
			off += n
			last := off >= len(payload)
			t := h[l4:]
			acc := pseudoSum(h, l4Len+n, proto)
			if proto == protoTCP {
				binary.BigEndian.PutUint32(t[4:8], seq)
				seq += uint32(n)
				if !last {
					t[13] &^= tcpFIN | tcpPSH
				}
				if i > 0 {
					t[13] &^= tcpCWR
				}
				t[16], t[17] = 0, 0
				binary.BigEndian.PutUint16(t[16:18], ^fold(sum(seg, sum(t, acc))))
			} else {
				binary.BigEndian.PutUint16(t[4:6], uint16(l4Len+n))
				t[6], t[7] = 0, 0
				c := ^fold(sum(seg, sum(t, acc)))
				if c == 0 {
					c = 0xffff // RFC 8200 §8.1: zero is not a UDP checksum over IPv6
				}
				binary.BigEndian.PutUint16(t[6:8], c)
			}
			w.appendPart(h)
			w.appendPart(seg)
			datagrams++
			bytes += hdrLen + n
			i++
		}
		w.endMsg(hdrLen + mss)
	}
	return datagrams, bytes, nil
}

// finishChecksum completes a checksum the kernel left partial: the field at
// start+offset holds the pseudo-header sum and the rest is summed from
// start. It reports false if the offsets do not fit the packet.
func finishChecksum(pkt []byte, start, offset int) bool {
	if start < ipv6HeaderLen || start+offset+2 > len(pkt) {
		return false
	}
	c := ^fold(sum(pkt[start:], 0))
	if c == 0 && offset == 6 {
		c = 0xffff // UDP
	}
	binary.BigEndian.PutUint16(pkt[start+offset:], c)
	return true
}

// tcp6 describes a plain IPv6+TCP packet (no extension headers).
type tcp6 struct {
	thl     int // TCP header length
	payload int
	seq     uint32
	flags   uint8
}

func parseTCP6(p []byte) (tcp6, bool) {
	if len(p) < ipv6HeaderLen+20 || p[0]>>4 != 6 || p[6] != protoTCP {
		return tcp6{}, false
	}
	plen := int(binary.BigEndian.Uint16(p[4:6]))
	thl := int(p[ipv6HeaderLen+12]>>4) * 4
	if thl < 20 || ipv6HeaderLen+plen != len(p) || plen < thl {
		return tcp6{}, false
	}
	return tcp6{
		thl:     thl,
		payload: plen - thl,
		seq:     binary.BigEndian.Uint32(p[ipv6HeaderLen+4:]),
		flags:   p[ipv6HeaderLen+13],
	}, true
}

// tcpChecksumOK verifies a received segment before it is merged: the merged
// super-packet is handed to the kernel as already checked.
func tcpChecksumOK(p []byte) bool {
	l := len(p) - ipv6HeaderLen
	return fold(sum(p[ipv6HeaderLen:], pseudoSum(p, l, protoTCP))) == 0xffff
}

// rxRun is one write to the device: a single packet, or consecutive
// segments of one TCP flow merged into a super-packet.
type rxRun struct {
	first    []byte // the first packet, header and payload
	head     int    // first member in coalescer.parts, linked by next
	tail     int
	count    int
	tcp      tcp6 // of the first packet; thl == 0: not mergeable
	nextSeq  uint32
	payload  int
	psh      bool
	open     bool
	verified bool
}

// coalescer collects the IPv6 packets of one receive batch and lays them
// out as device writes (iovecs), merging TCP segments when the device takes
// virtio-net headers. Without them every packet is a write of its own.
type coalescer struct {
	vnet  bool
	parts [][]byte // merged members after the first: their payloads
	next  []int
	runs  []rxRun
	open  []int // runs that may still grow, oldest first
	vh    []byte
	// Output of finish: write i is iovs[ends[i-1]:ends[i]] carrying
	// pkts[i] packets.
	iovs  [][]byte
	ends  []int
	pkts  []int
	bytes uint64 // of the packets added, as they arrived
}

func newCoalescer(maxPkts int, vnet bool) *coalescer {
	return &coalescer{
		vnet:  vnet,
		parts: make([][]byte, 0, maxPkts),
		next:  make([]int, 0, maxPkts),
		runs:  make([]rxRun, 0, maxPkts),
		open:  make([]int, 0, maxOpenRuns),
		vh:    make([]byte, maxPkts*vnetHdrLen),
		iovs:  make([][]byte, 0, 2*maxPkts),
		ends:  make([]int, 0, maxPkts),
		pkts:  make([]int, 0, maxPkts),
	}
}

func (c *coalescer) reset() {
	c.parts, c.next, c.runs, c.open = c.parts[:0], c.next[:0], c.runs[:0], c.open[:0]
	c.iovs, c.ends, c.pkts = c.iovs[:0], c.ends[:0], c.pkts[:0]
	c.bytes = 0
}

// full tells whether another packet would exceed the preallocated room.
func (c *coalescer) full() bool { return len(c.runs) == cap(c.runs) || len(c.parts) == cap(c.parts) }

// add takes one IPv6 packet (whose buffer must stay valid until the writes
// are done).
func (c *coalescer) add(p []byte) {
	c.bytes += uint64(len(p))
	if !c.vnet {
		c.runs = append(c.runs, rxRun{first: p, count: 1})
		return
	}
	t, ok := parseTCP6(p)
	if !ok {
		c.runs = append(c.runs, rxRun{first: p, count: 1})
		return
	}
	// A flow's open run is closed by any later packet of the flow that
	// does not extend it, so the flow's order is kept: runs are written in
	// the order they were started.
	ri := c.findOpen(p)
	mergeable := t.payload > 0 && t.flags&^tcpPSH == tcpACK && tcpChecksumOK(p)
	if ri >= 0 {
		r := &c.runs[ri]
		if mergeable && c.extends(r, p, t) {
			c.parts = append(c.parts, p[ipv6HeaderLen+t.thl:])
			c.next = append(c.next, -1)
			m := len(c.parts) - 1
			if r.head < 0 {
				r.head = m
			} else {
				c.next[r.tail] = m
			}
			r.tail = m
			r.count++
			r.payload += t.payload
			r.nextSeq += uint32(t.payload)
			if t.flags&tcpPSH != 0 || t.payload < r.tcp.payload || r.count == maxRunSegs {
				r.psh = t.flags&tcpPSH != 0
				c.closeRun(ri)
			}
			return
		}
		c.closeRun(ri)
	}
	r := rxRun{first: p, head: -1, tail: -1, count: 1, verified: mergeable}
	if mergeable {
		r.tcp = t
		r.nextSeq = t.seq + uint32(t.payload)
		r.payload = t.payload
		r.open = t.flags&tcpPSH == 0
	}
	c.runs = append(c.runs, r)
	if r.open {
		if len(c.open) == maxOpenRuns {
			c.closeRun(c.open[0])
		}
		c.open = append(c.open, len(c.runs)-1)
	}
}

// findOpen returns the open run of p's flow (addresses and ports), or -1.
func (c *coalescer) findOpen(p []byte) int {
	for _, ri := range c.open {
		if bytes.Equal(c.runs[ri].first[8:44], p[8:44]) {
			return ri
		}
	}
	return -1
}

// extends tells whether segment p continues run r exactly as the kernel's
// GRO would accept it: same IPv6 header fields, next sequence number, same
// ack, window, flags (but PSH) and options, and no larger than the first.
func (c *coalescer) extends(r *rxRun, p []byte, t tcp6) bool {
	f := r.first
	const th = ipv6HeaderLen
	return t.seq == r.nextSeq &&
		t.thl == r.tcp.thl &&
		t.payload <= r.tcp.payload &&
		ipv6HeaderLen+r.tcp.thl+r.payload+t.payload <= maxSuper &&
		bytes.Equal(f[0:4], p[0:4]) && f[7] == p[7] && // traffic class, flow label, hop limit
		bytes.Equal(f[th+8:th+13], p[th+8:th+13]) && // ack, data offset
		f[th+13]&^tcpPSH == p[th+13]&^tcpPSH &&
		bytes.Equal(f[th+14:th+16], p[th+14:th+16]) && // window
		bytes.Equal(f[th+20:th+t.thl], p[th+20:th+t.thl]) // options
}

func (c *coalescer) closeRun(ri int) {
	c.runs[ri].open = false
	for i, o := range c.open {
		if o == ri {
			c.open = append(c.open[:i], c.open[i+1:]...)
			return
		}
	}
}

// mergedTCP finishes the TCP header (after an l3-byte IP header, thl
// bytes) of a super-packet merged from segments of seg payload bytes, and
// returns its virtio-net header. pseudo is the IP pseudo-header sum.
func mergedTCP(p []byte, l3, thl, seg int, psh bool, gso uint8, pseudo uint64) vnetHdr {
	if psh {
		p[l3+13] |= tcpPSH
	}
	// CHECKSUM_PARTIAL: the field holds the pseudo-header sum and the
	// kernel finishes it if the packet ever leaves the host.
	binary.BigEndian.PutUint16(p[l3+16:], fold(pseudo))
	return vnetHdr{
		flags:      vnetNeedsCsum,
		gsoType:    gso,
		hdrLen:     uint16(l3 + thl),
		gsoSize:    uint16(seg),
		csumStart:  uint16(l3),
		csumOffset: 16,
	}
}

// finish lays the runs out as writes in c.iovs/c.ends/c.pkts.
func (c *coalescer) finish() {
	for i := range c.runs {
		r := &c.runs[i]
		if !c.vnet {
			c.iovs = append(c.iovs, r.first)
			c.ends = append(c.ends, len(c.iovs))
			c.pkts = append(c.pkts, 1)
			continue
		}
		vb := c.vh[i*vnetHdrLen : (i+1)*vnetHdrLen]
		var vh vnetHdr
		if r.count > 1 {
			p := r.first
			thl := r.tcp.thl
			binary.BigEndian.PutUint16(p[4:6], uint16(thl+r.payload))
			vh = mergedTCP(p, ipv6HeaderLen, thl, r.tcp.payload, r.psh, gsoTCPv6, pseudoSum(p, thl+r.payload, protoTCP))
		} else if r.verified {
			vh.flags = vnetDataValid
		}
		vh.encode(vb)
		c.iovs = append(c.iovs, vb, r.first)
		if r.count > 1 {
			for m := r.head; m >= 0; m = c.next[m] {
				c.iovs = append(c.iovs, c.parts[m])
			}
		}
		c.ends = append(c.ends, len(c.iovs))
		c.pkts = append(c.pkts, r.count)
	}
}
