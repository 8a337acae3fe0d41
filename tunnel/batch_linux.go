package tunnel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr is struct mmsghdr; Go pads it to the C size on every arch.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// sockaddr holds either a sockaddr_in or a sockaddr_in6.
type sockaddr = unix.RawSockaddrInet6

// cmsgLen is the room for one control message with an int (UDP_SEGMENT
// takes a u16, UDP_GRO delivers an int).
var cmsgLen = unix.CmsgSpace(4)

// Limits of one UDP GSO send: the kernel refuses more than 64 segments
// (UDP_MAX_SEGMENTS on older kernels) and a datagram larger than 64 KiB.
const (
	maxGSOSegments = 64
	maxGSOBytes    = 65507
	maxMsgBuf      = 65535 // a receive buffer that holds any GRO message
)

// batchConn moves datagrams in batches (recvmmsg/sendmmsg) on a socket owned
// by someone else (a net.Conn or net.PacketConn), through its RawConn so that
// waiting happens in the runtime poller and deadlines work. On UDP sockets it
// uses segmentation offload both ways when the kernel has it: one sent
// message may carry many equal-sized datagrams (UDP_SEGMENT) and one
// received message may hold many (UDP_GRO). All buffers and headers are set
// up once; a batch allocates nothing.
type batchConn struct {
	rc     syscall.RawConn
	family int  // AF_INET or AF_INET6, for addressing an unconnected socket
	ipHdr  bool // raw IPv4 socket: each received datagram starts with the IPv4 header
	udp    bool
	gsoOff atomic.Bool // UDP_SEGMENT unusable (not UDP, or the kernel said EIO)
	gro    bool        // UDP_GRO enabled: received messages may hold many datagrams
	maxRx  int         // most datagrams one recv can return
	r      recvBatch
	w      sendBatch
}

// recvBatch is the reader's state. bufs are fixed at creation.
type recvBatch struct {
	bufs  [][]byte
	msgs  [][]byte // received payloads, sub-slices of bufs; nil if truncated
	seg   []int    // GRO segment size of msgs[i], 0 when it is one datagram
	from  []netip.AddrPort
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	names []sockaddr
	cmsgs []byte
	n     int
	err   error
	fn    func(fd uintptr) bool
}

// sendBatch is the writer's state. A message is started with startMsg,
// given its parts with appendPart and finished with endMsg; send flushes.
type sendBatch struct {
	hdrs   []mmsghdr
	iovs   []unix.Iovec
	names  []sockaddr
	cmsgs  []byte
	seg    []int // per message: UDP GSO segment size, 0 for one datagram
	first  []int // per message: its first iovec
	size   []int // per message: bytes
	nmsg   int
	niov   int
	msgIov int // first iov of the message being built
	msgLen int
	// send progress
	sent, failed int // datagrams
	done         int // messages handled
	err          error
	// unreach: the last ICMP error the socket reported while sending
	// (see unreachErrno), 0 if none; takeUnreach reads and clears it.
	unreach syscall.Errno
	fn      func(fd uintptr) bool
	one     unix.Msghdr // scratch for sending one datagram of a split message
}

// newBatchConn wraps c (a *net.UDPConn, *net.IPConn or anything with
// SyscallConn). msgs is the number of messages per system call, iovs the
// iovec budget of a send batch, bufSize the receive buffer per message.
// With gro it enables UDP_GRO when possible; it then receives groMessages
// messages of up to 64 KiB each instead.
func newBatchConn(c any, msgs, iovs, bufSize int, gro bool) (*batchConn, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("%T has no SyscallConn", c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("syscall conn: %w", err)
	}
	b := &batchConn{rc: rc}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		var sa unix.Sockaddr
		if sa, serr = unix.Getsockname(int(fd)); serr != nil {
			return
		}
		b.family = unix.AF_INET6
		if _, ok := sa.(*unix.SockaddrInet4); ok {
			b.family = unix.AF_INET
		}
		var typ int
		if typ, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE); serr != nil {
			return
		}
		// Only raw IPv4 sockets hand the IP header to the reader.
		b.ipHdr = typ == unix.SOCK_RAW && b.family == unix.AF_INET
		b.udp = typ == unix.SOCK_DGRAM
		if b.udp && gro {
			b.gro = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO, 1) == nil
		}
	}); err != nil {
		return nil, fmt.Errorf("socket control: %w", err)
	}
	if serr != nil {
		return nil, fmt.Errorf("socket family and type: %w", serr)
	}
	b.gsoOff.Store(!b.udp)
	rmsgs := msgs
	if b.gro {
		rmsgs, bufSize = groMessages, maxMsgBuf
	}

	r := &b.r
	r.bufs = make([][]byte, rmsgs)
	r.msgs = make([][]byte, rmsgs)
	r.seg = make([]int, rmsgs)
	r.from = make([]netip.AddrPort, rmsgs)
	r.hdrs = make([]mmsghdr, rmsgs)
	r.iovs = make([]unix.Iovec, rmsgs)
	r.names = make([]sockaddr, rmsgs)
	r.cmsgs = make([]byte, rmsgs*cmsgLen)
	backing := make([]byte, rmsgs*bufSize)
	for i := range rmsgs {
		r.bufs[i] = backing[i*bufSize : (i+1)*bufSize : (i+1)*bufSize]
		r.iovs[i].Base = &r.bufs[i][0]
		r.iovs[i].SetLen(bufSize)
		r.hdrs[i].hdr.Iov = &r.iovs[i]
		r.hdrs[i].hdr.SetIovlen(1)
		r.hdrs[i].hdr.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		if b.gro {
			r.hdrs[i].hdr.Control = &r.cmsgs[i*cmsgLen]
		}
	}
	r.fn = b.doRecv
	b.maxRx = rmsgs
	if b.gro {
		b.maxRx = rmsgs * maxGSOSegments
	}

	w := &b.w
	w.hdrs = make([]mmsghdr, msgs)
	w.iovs = make([]unix.Iovec, iovs)
	w.names = make([]sockaddr, msgs)
	w.cmsgs = make([]byte, msgs*cmsgLen)
	w.seg = make([]int, msgs)
	w.first = make([]int, msgs)
	w.size = make([]int, msgs)
	w.fn = b.doSend
	return b, nil
}

// gso reports whether a sent message may carry several datagrams.
func (b *batchConn) gso() bool { return !b.gsoOff.Load() }

// recv waits for at least one message and returns how many arrived: they
// are b.r.msgs[:n] from b.r.from[:n], message i holding datagrams of
// b.r.seg[i] bytes (the last may be shorter) when that is not 0.
func (b *batchConn) recv() (int, error) {
	r := &b.r
	for i := range r.hdrs {
		h := &r.hdrs[i].hdr
		h.Namelen = uint32(unsafe.Sizeof(sockaddr{}))
		h.Flags = 0
		if b.gro {
			h.SetControllen(cmsgLen)
		}
	}
	r.n, r.err = 0, nil
	if err := b.rc.Read(r.fn); err != nil {
		return 0, err
	}
	if r.err != nil {
		return 0, r.err
	}
	for i := 0; i < r.n; i++ {
		h := &r.hdrs[i]
		r.from[i] = decodeSockaddr(&r.names[i], h.hdr.Namelen)
		r.seg[i] = 0
		msg := r.bufs[i][:h.n]
		switch {
		case h.hdr.Flags&unix.MSG_TRUNC != 0:
			msg = nil
		case b.ipHdr:
			msg = stripIPv4(msg)
		case b.gro:
			r.seg[i] = groSize(r.cmsgs[i*cmsgLen:(i+1)*cmsgLen], int(h.hdr.Controllen))
		}
		r.msgs[i] = msg
	}
	return r.n, nil
}

// groSize reads the UDP_GRO control message: the size of the datagrams the
// kernel merged into one message, 0 if there is none.
func groSize(c []byte, n int) int {
	if n < unix.CmsgLen(4) || len(c) < unix.CmsgLen(4) {
		return 0
	}
	h := (*unix.Cmsghdr)(unsafe.Pointer(&c[0]))
	if h.Level != unix.IPPROTO_UDP || h.Type != unix.UDP_GRO {
		return 0
	}
	return int(*(*int32)(unsafe.Pointer(&c[unix.CmsgLen(0)])))
}

func (b *batchConn) doRecv(fd uintptr) bool {
	r := &b.r
	for {
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), uintptr(len(r.hdrs)), 0, 0, 0)
		switch {
		case e == 0:
			r.n = int(n)
			return true
		case e == unix.EINTR:
		case e == unix.EAGAIN:
			return false
		default:
			r.err = e
			return true
		}
	}
}

// stripIPv4 removes the IPv4 header a raw socket delivers; nil if malformed.
func stripIPv4(p []byte) []byte {
	p, ok := ipv4Packet(p)
	if !ok {
		return nil
	}
	return p[int(p[0]&0x0f)*4:]
}

func decodeSockaddr(sa *sockaddr, n uint32) netip.AddrPort {
	switch {
	case sa.Family == unix.AF_INET6 && n >= unix.SizeofSockaddrInet6:
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), port)
	case sa.Family == unix.AF_INET && n >= unix.SizeofSockaddrInet4:
		s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&s4.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom4(s4.Addr), port)
	}
	return netip.AddrPort{}
}

// encodeSockaddr writes to into sa for a socket of the given family and
// returns the length; 0 if it cannot be addressed from this socket.
func encodeSockaddr(sa *sockaddr, family int, to netip.AddrPort) uint32 {
	a := to.Addr()
	var port [2]byte
	binary.BigEndian.PutUint16(port[:], to.Port())
	if family == unix.AF_INET {
		if !a.Is4() && !a.Is4In6() {
			return 0
		}
		s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		*s4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.Unmap().As4()}
		*(*[2]byte)(unsafe.Pointer(&s4.Port)) = port
		return unix.SizeofSockaddrInet4
	}
	*sa = sockaddr{Family: unix.AF_INET6, Addr: a.As16()} // As16 maps IPv4 for dual-stack sockets
	*(*[2]byte)(unsafe.Pointer(&sa.Port)) = port
	return unix.SizeofSockaddrInet6
}

// room tells whether a message of up to parts iovecs fits in the batch.
func (b *batchConn) room(parts int) bool {
	w := &b.w
	return w.nmsg < len(w.hdrs) && w.niov+parts <= len(w.iovs)
}

// startMsg begins a message to to (the zero AddrPort on a connected
// socket). The caller checked room.
func (b *batchConn) startMsg(to netip.AddrPort) {
	w := &b.w
	h := &w.hdrs[w.nmsg].hdr
	*h = unix.Msghdr{}
	if to.IsValid() {
		h.Name = (*byte)(unsafe.Pointer(&w.names[w.nmsg]))
		h.Namelen = encodeSockaddr(&w.names[w.nmsg], b.family, to)
	}
	w.msgIov, w.msgLen = w.niov, 0
}

// appendPart adds p to the message being built.
func (b *batchConn) appendPart(p []byte) {
	w := &b.w
	w.iovs[w.niov].Base = unsafe.SliceData(p)
	w.iovs[w.niov].SetLen(len(p))
	w.niov++
	w.msgLen += len(p)
}

// endMsg finishes the message; segSize > 0 asks the kernel to cut it into
// datagrams of that size, the last possibly shorter (UDP GSO).
func (b *batchConn) endMsg(segSize int) {
	w := &b.w
	h := &w.hdrs[w.nmsg].hdr
	h.Iov = &w.iovs[w.msgIov]
	h.SetIovlen(w.niov - w.msgIov)
	if segSize >= w.msgLen {
		segSize = 0
	}
	w.seg[w.nmsg] = segSize
	w.first[w.nmsg] = w.msgIov
	w.size[w.nmsg] = w.msgLen
	if segSize > 0 {
		c := w.cmsgs[w.nmsg*cmsgLen : (w.nmsg+1)*cmsgLen]
		ch := (*unix.Cmsghdr)(unsafe.Pointer(&c[0]))
		ch.Level, ch.Type = unix.IPPROTO_UDP, unix.UDP_SEGMENT
		ch.SetLen(unix.CmsgLen(2))
		*(*uint16)(unsafe.Pointer(&c[unix.CmsgLen(0)])) = uint16(segSize)
		h.Control = &c[0]
		h.SetControllen(unix.CmsgSpace(2))
	}
	w.nmsg++
}

// queued is the number of messages waiting for send.
func (b *batchConn) queued() int { return b.w.nmsg }

// send transmits the queued messages and empties the queue. It returns the
// datagrams sent and refused. Datagrams the network refuses (unreachable,
// no buffer, filtered) are dropped and counted; only an error that ends the
// socket is returned.
func (b *batchConn) send() (sent, failed int, err error) {
	w := &b.w
	if w.nmsg == 0 {
		return 0, 0, nil
	}
	w.sent, w.failed, w.done, w.err = 0, 0, 0, nil
	err = b.rc.Write(w.fn)
	sent, failed = w.sent, w.failed
	for i := 0; i < w.niov; i++ {
		w.iovs[i].Base = nil // do not keep packet buffers reachable
	}
	w.nmsg, w.niov = 0, 0
	if err != nil {
		return sent, failed, err
	}
	return sent, failed, w.err
}

// datagrams is how many datagrams message i carries.
func (w *sendBatch) datagrams(i int) int {
	if w.seg[i] == 0 {
		return 1
	}
	return (w.size[i] + w.seg[i] - 1) / w.seg[i]
}

func (b *batchConn) doSend(fd uintptr) bool {
	w := &b.w
	for w.done < w.nmsg {
		if w.seg[w.done] > 0 && b.gsoOff.Load() {
			// GSO was refused on this path: send the message's datagrams
			// one by one.
			if !b.sendSplit(fd, w.done) {
				return false
			}
			w.done++
			continue
		}
		n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&w.hdrs[w.done])), uintptr(w.nmsg-w.done), 0, 0, 0)
		switch {
		case e == 0:
			for i := w.done; i < w.done+int(n); i++ {
				w.sent += w.datagrams(i)
			}
			w.done += int(n)
		case e == unix.EINTR:
		case e == unix.EAGAIN:
			return false
		case e == unix.EIO && w.seg[w.done] > 0:
			// The route's device cannot checksum for us, which UDP GSO
			// needs: never ask again on this socket.
			b.gsoOff.Store(true)
		case transientSendErr(e):
			w.failed += w.datagrams(w.done) // the first message of the rest was refused
			w.done++
			if unreachErrno(e) {
				w.unreach = e
			}
		default:
			w.err = e
			return true
		}
	}
	return true
}

// sendSplit sends message i as separate datagrams of w.seg[i] bytes by
// regrouping its iovecs. Our messages are built from whole datagrams, so
// datagram boundaries fall on iovec boundaries. It reports false when the
// socket is full; called again, it skips the datagrams already sent.
func (b *batchConn) sendSplit(fd uintptr, i int) bool {
	w := &b.w
	first, end, seg := w.first[i], w.first[i]+int(w.hdrs[i].hdr.Iovlen), w.seg[i]
	start, size := first, 0
	for j := first; j < end; j++ {
		size += int(w.iovs[j].Len)
		if size < seg && j < end-1 {
			continue
		}
		if w.iovs[start].Base != nil { // nil: sent before an EAGAIN
			w.one = w.hdrs[i].hdr
			w.one.Control = nil
			w.one.SetControllen(0)
			w.one.Iov = &w.iovs[start]
			w.one.SetIovlen(j + 1 - start)
			for {
				_, _, e := unix.Syscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&w.one)), 0)
				if e == unix.EINTR {
					continue
				}
				if e == unix.EAGAIN {
					return false
				}
				if e == 0 {
					w.sent++
				} else {
					w.failed++
					if unreachErrno(e) {
						w.unreach = e
					}
				}
				break
			}
			w.iovs[start].Base = nil
		}
		start, size = j+1, 0
	}
	return true
}

// takeUnreach returns the ICMP error the last sends reported, if any, and
// forgets it.
func (b *batchConn) takeUnreach() syscall.Errno {
	e := b.w.unreach
	b.w.unreach = 0
	return e
}

// transientSendErr: errors about one datagram or a passing network state,
// after which the socket is still good.
func transientSendErr(e syscall.Errno) bool {
	switch e {
	case unix.ENETDOWN, unix.ENOBUFS, unix.ENOMEM, unix.EPERM, unix.EACCES,
		unix.EMSGSIZE, unix.EADDRNOTAVAIL, unix.EINVAL, unix.EDESTADDRREQ, unix.EIO:
		return true
	}
	return unreachErrno(e)
}

// transientRecvErr: receive errors that report an earlier ICMP error on a
// connected socket rather than a broken socket.
func transientRecvErr(err error) bool {
	var e syscall.Errno
	if !errors.As(err, &e) {
		return false
	}
	switch e {
	case unix.ENETDOWN, unix.EMSGSIZE, unix.ENOMEM, unix.ENOBUFS:
		return true
	}
	return unreachErrno(e)
}

// unreachErrno: the errors a connected socket reports for an ICMP error
// that says the peer cannot be reached (net/ipv4/icmp.c icmp_err_convert,
// net/ipv6/icmp.c icmpv6_err_convert): port unreachable (ECONNREFUSED),
// host or network unreachable, time exceeded, protocol unreachable
// (ENOPROTOOPT: no handler for protocol 41 or 4 at the far end), parameter
// problem (EPROTO: unknown next header). Anyone on the path can forge one,
// so they are hints to confirm (prober.suspect), never a verdict; and a
// send may report them locally too (no route).
func unreachErrno(e syscall.Errno) bool {
	switch e {
	case unix.ECONNREFUSED, unix.EHOSTUNREACH, unix.ENETUNREACH, unix.EHOSTDOWN,
		unix.ENOPROTOOPT, unix.EPROTO:
		return true
	}
	return false
}

// connLocalAddr is a helper for logs.
func connLocalAddr(c any) string {
	if lc, ok := c.(interface{ LocalAddr() net.Addr }); ok && lc.LocalAddr() != nil {
		return lc.LocalAddr().String()
	}
	return "?"
}
