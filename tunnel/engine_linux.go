package tunnel

import (
	"errors"
	"net/netip"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Batch geometry. Plain mode moves up to defaultBatch MTU-sized packets per
// system call. With offloads a device read is up to 64 KiB, and so is a
// message received with UDP GRO, so fewer but larger buffers are used.
const (
	defaultBatch  = 64
	groMessages   = 16                                 // receive messages per recvmmsg with UDP GRO
	vnetArena     = 256 << 10                          // device read arena with offloads
	maxDevPacket  = vnetHdrLen + ipv6HeaderLen + 65535 // largest TSO packet
	sendIovecs    = 1024                               // iovec budget of one sendmmsg
	segmentHeader = 64 << 10                           // headers of segments waiting for sendmmsg
)

// bufSizeFor returns the packet buffer size for an MTU: room for a full
// packet plus an IPv4 header (raw sockets deliver it), so that a peer with
// a somewhat larger MTU is still carried rather than truncated.
func bufSizeFor(mtu int) int {
	if mtu+128 <= 2048 {
		return 2048
	}
	return mtu + 128
}

// engine pumps packets between a TUN device and a socket in both directions,
// one goroutine each. With a nil peers table it is point to point over a
// connected socket (the client, or a broker for one client); with a table
// it routes by IPv6 address among many peers on one unconnected socket (the
// broker side, see Forwarder).
type engine struct {
	pumpState
	dev   *tunDevice
	conn  *batchConn
	peers *atomic.Pointer[peerTable]
	// control receives TSP control datagrams on the socket reader's
	// goroutine; msg is only valid during the call.
	control func(from netip.AddrPort, msg []byte)
	// own, when set, is the client's tunnel address: a packet from the
	// broker with it as source is one of ours coming back, which a tsps on
	// a little-endian host does to packets whose flow label ends in 0xF?
	// (spec §13.2). Fed to the device it could loop between a forwarding
	// client and the broker until its hop limit runs out.
	own    [16]byte
	ownSet bool

	// device → socket state
	arena   []byte
	maxPkt  int
	pkts    [][]byte
	seg     segmenter
	txBytes uint64
	// socket → device state
	co *coalescer
}

// engineConfig sizes an engine.
type engineConfig struct {
	batch   int
	mtu     int
	offload bool // device with virtio-net headers, socket with GSO/GRO
}

// newEngine wires dev and the socket c together; nothing runs until
// devToNet and netToDev are started.
func newEngine(dev *tunDevice, c any, ec engineConfig) (*engine, error) {
	bufSize := bufSizeFor(ec.mtu)
	conn, err := newBatchConn(c, ec.batch, sendIovecs, bufSize, ec.offload)
	if err != nil {
		return nil, err
	}
	e := &engine{dev: dev, conn: conn}
	if dev.vnet {
		e.arena = make([]byte, vnetArena)
		e.maxPkt = maxDevPacket
		e.pkts = make([][]byte, ec.batch)
	} else {
		e.arena = make([]byte, ec.batch*bufSize)
		e.maxPkt = bufSize
		e.pkts = make([][]byte, ec.batch)
	}
	e.seg = segmenter{arena: make([]byte, segmentHeader), flush: e.flushTx}
	e.co = newCoalescer(conn.maxRx, dev.vnet)
	dev.wiovs = make([]unix.Iovec, 0, 2*conn.maxRx)
	return e, nil
}

// devToNet carries packets the kernel routed into the device to the peer(s)
// until the device is closed.
func (e *engine) devToNet() { e.run("device → socket", e.devToNetOnce, false) }

// devToNetOnce moves one batch: whatever the device has queued (at least
// one packet), cut into datagrams and sent with as few sendmmsg as fit.
func (e *engine) devToNetOnce() error {
	n, err := e.dev.read(e.arena, e.maxPkt, e.pkts)
	if err != nil {
		return err
	}
	var table *peerTable
	if e.peers != nil {
		table = e.peers.Load()
	}
	var dropped uint64
	for _, pkt := range e.pkts[:n] {
		var vh vnetHdr
		if e.dev.vnet {
			if len(pkt) < vnetHdrLen {
				dropped++
				continue
			}
			vh = decodeVnetHdr(pkt)
			pkt = pkt[vnetHdrLen:]
		}
		if len(pkt) < ipv6HeaderLen || pkt[0]>>4 != 6 {
			dropped++ // only IPv6 goes into an IPv6 tunnel
			continue
		}
		var to netip.AddrPort
		if table != nil {
			var ok bool
			if to, ok = table.route(pkt); !ok {
				dropped++
				continue
			}
		}
		_, b, err := e.seg.emit(e.conn, vh, pkt, to)
		if err != nil {
			if errors.Is(err, errBadOffload) {
				dropped++
				continue
			}
			return err
		}
		e.txBytes += uint64(b)
	}
	if dropped > 0 {
		e.cnt.dropped.Add(dropped)
	}
	return e.flushTx()
}

// flushTx sends what the socket has queued and frees the segment headers.
func (e *engine) flushTx() error {
	sent, failed, err := e.conn.send()
	e.noteUnreach(e.conn.takeUnreach())
	e.seg.reset()
	e.countTx(sent, failed, e.txBytes)
	e.txBytes = 0
	return err
}

// netToDev carries datagrams from the socket into the device, handing TSP
// control datagrams to e.control, until the socket is closed or its read
// deadline is forced.
func (e *engine) netToDev() { e.run("socket → device", e.netToDevOnce, true) }

func (e *engine) netToDevOnce() error {
	n, err := e.conn.recv()
	if err != nil {
		return err
	}
	var table *peerTable
	if e.peers != nil {
		table = e.peers.Load()
	}
	r := &e.conn.r
	var dropped uint64
	for i := 0; i < n; i++ {
		msg, seg := r.msgs[i], r.seg[i]
		if msg == nil {
			dropped++ // truncated
			continue
		}
		if seg <= 0 {
			seg = len(msg)
		}
		// A GRO message holds datagrams of seg bytes, the last shorter.
		for len(msg) > 0 {
			d := msg[:min(seg, len(msg))]
			msg = msg[len(d):]
			switch demux(d) {
			case toDevice:
				if e.ownSet && [16]byte(d[8:24]) == e.own {
					dropped++
					continue
				}
				if table != nil && !table.accept(d, r.from[i]) {
					dropped++ // unknown peer, or a source it may not use
					continue
				}
				if e.co.full() {
					if err := e.flushRx(); err != nil {
						return err
					}
				}
				e.co.add(d)
			case control:
				// Counted before the handler runs: whoever the handler's
				// event wakes must find it in Stats.
				e.cnt.control.Add(1)
				if e.control != nil {
					e.control(r.from[i], d)
				}
			default:
				dropped++
			}
		}
	}
	if dropped > 0 {
		e.cnt.dropped.Add(dropped)
	}
	return e.flushRx()
}

// flushRx writes the collected packets to the device.
func (e *engine) flushRx() error {
	co := e.co
	co.finish()
	failed, err := e.dev.write(co.iovs, co.ends, co.pkts)
	var pkts int
	for _, c := range co.pkts {
		pkts += c
	}
	e.countRx(pkts, failed, co.bytes)
	co.reset()
	return err
}
