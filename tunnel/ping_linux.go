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
)

const (
	icmpv6EchoRequest = 128
	icmpv6EchoReply   = 129
	echoHeaderLen     = 8
	echoCookieLen     = 8
)

// pingConn is a raw ICMPv6 socket bound to the tunnel device and its
// address and connected to the keepalive address, so the kernel routes the
// probes through the tunnel and hands back only replies from that address.
// It works the same for TUN and kernel tunnels. The identifier and a random
// cookie in the payload tell our replies from other pingers' in the netns.
type pingConn struct {
	c      net.Conn
	id     uint16
	cookie [echoCookieLen]byte
	wbuf   [echoHeaderLen + echoCookieLen]byte
	rbuf   [1500]byte
}

// NewPingConn opens the keepalive socket in ns (<= 0: the current one):
// ICMPv6 echo from src, through device ifName, to dst.
func NewPingConn(ns netns.NsHandle, ifName string, src, dst netip.Addr) (PingConn, error) {
	var c net.Conn
	err := InNetNS(ns, func() error {
		var err error
		c, err = openPingSocket(ifName, src, dst)
		return err
	})
	if err != nil {
		return nil, err
	}
	p := &pingConn{c: c, id: uint16(rand.Uint32())}
	binary.BigEndian.PutUint64(p.cookie[:], rand.Uint64())
	return p, nil
}

func openPingSocket(ifName string, src, dst netip.Addr) (net.Conn, error) {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMPV6)
	if err != nil {
		return nil, fmt.Errorf("keepalive socket: %w", err)
	}
	f := os.NewFile(uintptr(fd), "icmpv6")
	defer f.Close() // net.FileConn holds its own duplicate
	if ifName != "" {
		if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifName); err != nil {
			return nil, fmt.Errorf("keepalive socket: bind to %s: %w", ifName, err)
		}
	}
	var filt unix.ICMPv6Filter
	for i := range filt.Data {
		filt.Data[i] = 0xffffffff // block everything ...
	}
	filt.Data[icmpv6EchoReply>>5] &^= 1 << (icmpv6EchoReply & 31) // ... but echo replies
	if err := unix.SetsockoptICMPv6Filter(fd, unix.SOL_ICMPV6, unix.ICMPV6_FILTER, &filt); err != nil {
		return nil, fmt.Errorf("keepalive socket: ICMPv6 filter: %w", err)
	}
	if src.IsValid() {
		if err := unix.Bind(fd, &unix.SockaddrInet6{Addr: src.As16()}); err != nil {
			return nil, fmt.Errorf("keepalive socket: bind %v: %w", src, err)
		}
	}
	if err := unix.Connect(fd, &unix.SockaddrInet6{Addr: dst.As16()}); err != nil {
		return nil, fmt.Errorf("keepalive socket: connect %v: %w", dst, err)
	}
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("keepalive socket: %w", err)
	}
	return c, nil
}

// WriteEcho sends an echo request; the kernel fills in the checksum, as it
// always does on ICMPv6 raw sockets.
func (p *pingConn) WriteEcho(seq uint16) error {
	b := p.wbuf[:]
	b[0], b[1], b[2], b[3] = icmpv6EchoRequest, 0, 0, 0
	binary.BigEndian.PutUint16(b[4:6], p.id)
	binary.BigEndian.PutUint16(b[6:8], seq)
	copy(b[8:], p.cookie[:])
	if _, err := p.c.Write(b); err != nil {
		return fmt.Errorf("keepalive echo %d: %w", seq, err)
	}
	return nil
}

// ReadEcho returns the sequence number of the next reply to our requests.
func (p *pingConn) ReadEcho() (uint16, error) {
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

func (p *pingConn) parseReply(b []byte) (uint16, bool) {
	if len(b) < echoHeaderLen+echoCookieLen || b[0] != icmpv6EchoReply || b[1] != 0 ||
		binary.BigEndian.Uint16(b[4:6]) != p.id || !bytes.Equal(b[8:16], p.cookie[:]) {
		return 0, false
	}
	return binary.BigEndian.Uint16(b[6:8]), true
}

func (p *pingConn) Close() error { return p.c.Close() }
