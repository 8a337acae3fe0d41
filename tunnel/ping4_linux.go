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
	icmpv4EchoReply   = 0
	icmpv4EchoRequest = 8
)

// pingConn4 is the v4v6 keepalive socket (spec §6: ICMPv4 echo from the
// client tunnel IPv4 to the keepalive address): a raw ICMPv4 socket bound
// to the tunnel device and address, connected to the keepalive address and
// filtered to echo replies. Identifier and cookie work as in pingConn.
type pingConn4 struct {
	c      net.Conn
	id     uint16
	cookie [echoCookieLen]byte
	wbuf   [echoHeaderLen + echoCookieLen]byte
	rbuf   [1500]byte
}

// NewPingConn4 opens the ICMPv4 keepalive socket in ns (<= 0: the current
// one): echo from src, through device ifName, to dst.
func NewPingConn4(ns netns.NsHandle, ifName string, src, dst netip.Addr) (PingConn, error) {
	if !dst.Is4() || src.IsValid() && !src.Is4() {
		return nil, fmt.Errorf("keepalive socket: %v → %v is not IPv4", src, dst)
	}
	var c net.Conn
	err := InNetNS(ns, func() error {
		var err error
		c, err = openPing4Socket(ifName, src, dst)
		return err
	})
	if err != nil {
		return nil, err
	}
	p := &pingConn4{c: c, id: uint16(rand.Uint32())}
	binary.BigEndian.PutUint64(p.cookie[:], rand.Uint64())
	return p, nil
}

func openPing4Socket(ifName string, src, dst netip.Addr) (net.Conn, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
	if err != nil {
		return nil, fmt.Errorf("keepalive socket: %w", err)
	}
	f := os.NewFile(uintptr(fd), "icmpv4")
	defer f.Close() // net.FileConn holds its own duplicate
	if ifName != "" {
		if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifName); err != nil {
			return nil, fmt.Errorf("keepalive socket: bind to %s: %w", ifName, err)
		}
	}
	// ICMP_FILTER: a set bit drops that type; keep only echo replies, so
	// the reader is not woken by every ICMP message on the device.
	if err := unix.SetsockoptInt(fd, unix.SOL_RAW, unix.ICMP_FILTER, int(^int32(1<<icmpv4EchoReply))); err != nil {
		return nil, fmt.Errorf("keepalive socket: ICMP filter: %w", err)
	}
	if src.IsValid() {
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: src.As4()}); err != nil {
			return nil, fmt.Errorf("keepalive socket: bind %v: %w", src, err)
		}
	}
	if err := unix.Connect(fd, &unix.SockaddrInet4{Addr: dst.As4()}); err != nil {
		return nil, fmt.Errorf("keepalive socket: connect %v: %w", dst, err)
	}
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("keepalive socket: %w", err)
	}
	return c, nil
}

// WriteEcho sends an echo request. Unlike ICMPv6, the kernel leaves the
// ICMPv4 checksum of a raw socket to us.
func (p *pingConn4) WriteEcho(seq uint16) error {
	b := marshalEcho4(p.wbuf[:], p.id, seq, p.cookie[:])
	if _, err := p.c.Write(b); err != nil {
		return fmt.Errorf("keepalive echo %d: %w", seq, err)
	}
	return nil
}

// marshalEcho4 writes an ICMPv4 echo request with payload into b.
func marshalEcho4(b []byte, id, seq uint16, payload []byte) []byte {
	b = b[:echoHeaderLen+len(payload)]
	b[0], b[1], b[2], b[3] = icmpv4EchoRequest, 0, 0, 0
	binary.BigEndian.PutUint16(b[4:6], id)
	binary.BigEndian.PutUint16(b[6:8], seq)
	copy(b[echoHeaderLen:], payload)
	binary.BigEndian.PutUint16(b[2:4], ^fold(sum(b, 0)))
	return b
}

// ReadEcho returns the sequence number of the next reply to our requests.
func (p *pingConn4) ReadEcho() (uint16, error) {
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

// parseReply takes a packet as a raw ICMPv4 socket delivers it, IPv4
// header first.
func (p *pingConn4) parseReply(pkt []byte) (uint16, bool) {
	b := stripIPv4(pkt)
	if len(b) < echoHeaderLen+echoCookieLen || b[0] != icmpv4EchoReply || b[1] != 0 ||
		fold(sum(b, 0)) != 0xffff || binary.BigEndian.Uint16(b[4:6]) != p.id ||
		!bytes.Equal(b[8:16], p.cookie[:]) {
		return 0, false
	}
	return binary.BigEndian.Uint16(b[6:8]), true
}

func (p *pingConn4) Close() error { return p.c.Close() }
