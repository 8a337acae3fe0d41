package tunnel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/jsklein/gogoc/internal/caps"
)

const (
	icmpv6EchoRequest = 128
	icmpv6EchoReply   = 129
	echoHeaderLen     = 8
	echoCookieLen     = 8
)

// echoConn is a raw ICMP socket bound to the tunnel device and its address
// and connected to the keepalive address, so the kernel routes the probes
// through the tunnel and hands back only replies from that address. It
// works the same for TUN and kernel tunnels. The identifier and a random
// cookie in the payload tell our replies from other pingers' in the netns.
// F is the ICMP version: icmp6, or icmp4 for v4v6 (pingConn4).
type echoConn[F echoFamily] struct {
	c      net.Conn
	id     uint16
	cookie [echoCookieLen]byte
	wbuf   [echoHeaderLen + echoCookieLen]byte
	rbuf   [1500]byte
}

// echoFamily is what differs between ICMPv6 and ICMPv4 echo.
type echoFamily interface {
	socket() pingSocket
	// request writes an echo request into b.
	request(b []byte, id, seq uint16, payload []byte) []byte
	// reply returns the ICMP message in a packet as the socket delivers
	// it, or false if it is malformed.
	reply(pkt []byte) ([]byte, bool)
	replyType() byte
}

// pingSocket describes the raw socket of an ICMP version.
type pingSocket struct {
	domain, proto int
	name          string
	filter        func(fd int) error // lets only echo replies through
	sockaddr      func(netip.Addr) unix.Sockaddr
}

// icmp6 is ICMPv6 echo: the kernel fills in the checksum, as it always
// does on ICMPv6 raw sockets, and delivers the message without IP header.
type icmp6 struct{}

func (icmp6) socket() pingSocket {
	return pingSocket{
		domain: unix.AF_INET6, proto: unix.IPPROTO_ICMPV6, name: "icmpv6",
		filter: func(fd int) error {
			var filt unix.ICMPv6Filter
			for i := range filt.Data {
				filt.Data[i] = 0xffffffff // block everything ...
			}
			filt.Data[icmpv6EchoReply>>5] &^= 1 << (icmpv6EchoReply & 31) // ... but echo replies
			if err := unix.SetsockoptICMPv6Filter(fd, unix.SOL_ICMPV6, unix.ICMPV6_FILTER, &filt); err != nil {
				return fmt.Errorf("ICMPv6 filter: %w", err)
			}
			return nil
		},
		sockaddr: func(a netip.Addr) unix.Sockaddr { return &unix.SockaddrInet6{Addr: a.As16()} },
	}
}

func (icmp6) request(b []byte, id, seq uint16, payload []byte) []byte {
	return marshalEcho(b, icmpv6EchoRequest, id, seq, payload)
}

func (icmp6) reply(pkt []byte) ([]byte, bool) { return pkt, true }
func (icmp6) replyType() byte                 { return icmpv6EchoReply }

// NewPingConn opens the keepalive socket in ns (<= 0: the current one):
// ICMPv6 echo from src, through device ifName, to dst.
func NewPingConn(ns netns.NsHandle, ifName string, src, dst netip.Addr) (PingConn, error) {
	p, err := newEchoConn[icmp6](ns, ifName, src, dst)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return p, nil
}

func newEchoConn[F echoFamily](ns netns.NsHandle, ifName string, src, dst netip.Addr) (*echoConn[F], error) {
	var c net.Conn
	err := InNetNS(ns, func() error {
		var err error
		var f F
		c, err = openPingSocket(f.socket(), ifName, src, dst)
		return err
	})
	if err != nil {
		return nil, err
	}
	p := &echoConn[F]{c: c, id: uint16(rand.Uint32())}
	binary.BigEndian.PutUint64(p.cookie[:], rand.Uint64())
	return p, nil
}

func openPingSocket(s pingSocket, ifName string, src, dst netip.Addr) (net.Conn, error) {
	fd, err := unix.Socket(s.domain, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, s.proto)
	if err != nil {
		return nil, fmt.Errorf("keepalive socket: %w", caps.Annotate(err, caps.NetRaw))
	}
	f := os.NewFile(uintptr(fd), s.name)
	defer f.Close() // net.FileConn holds its own duplicate
	if ifName != "" {
		if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifName); err != nil {
			// Binding a socket that is not bound yet needs no
			// capability since Linux 5.7, CAP_NET_RAW before.
			return nil, fmt.Errorf("keepalive socket: bind to %s: %w", ifName, caps.Annotate(err, caps.NetRaw))
		}
	}
	if err := s.filter(fd); err != nil {
		return nil, fmt.Errorf("keepalive socket: %w", err)
	}
	if src.IsValid() {
		if err := unix.Bind(fd, s.sockaddr(src)); err != nil {
			return nil, fmt.Errorf("keepalive socket: bind %v: %w", src, err)
		}
	}
	if err := unix.Connect(fd, s.sockaddr(dst)); err != nil {
		return nil, fmt.Errorf("keepalive socket: connect %v: %w", dst, err)
	}
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("keepalive socket: %w", err)
	}
	return c, nil
}

// marshalEcho writes an echo request of type typ with payload into b,
// checksum zero.
func marshalEcho(b []byte, typ byte, id, seq uint16, payload []byte) []byte {
	b = b[:echoHeaderLen+len(payload)]
	b[0], b[1], b[2], b[3] = typ, 0, 0, 0
	binary.BigEndian.PutUint16(b[4:6], id)
	binary.BigEndian.PutUint16(b[6:8], seq)
	copy(b[echoHeaderLen:], payload)
	return b
}

// WriteEcho sends an echo request.
func (p *echoConn[F]) WriteEcho(seq uint16) error {
	var f F
	if _, err := p.c.Write(f.request(p.wbuf[:], p.id, seq, p.cookie[:])); err != nil {
		return fmt.Errorf("keepalive echo %d: %w", seq, err)
	}
	return nil
}

// ReadEcho returns the sequence number of the next reply to our requests.
func (p *echoConn[F]) ReadEcho() (uint16, error) {
	for {
		n, err := p.c.Read(p.rbuf[:])
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return 0, ErrClosed
			}
			return 0, fmt.Errorf("keepalive read: %w", err)
		}
		if seq, ok := p.parseReply(p.rbuf[:n]); ok {
			return seq, nil
		}
	}
}

func (p *echoConn[F]) parseReply(pkt []byte) (uint16, bool) {
	var f F
	b, ok := f.reply(pkt)
	if !ok || len(b) < echoHeaderLen+echoCookieLen || b[0] != f.replyType() || b[1] != 0 ||
		binary.BigEndian.Uint16(b[4:6]) != p.id || !bytes.Equal(b[8:16], p.cookie[:]) {
		return 0, false
	}
	return binary.BigEndian.Uint16(b[6:8]), true
}

func (p *echoConn[F]) Close() error { return p.c.Close() }
