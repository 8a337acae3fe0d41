package testbroker

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strconv"
)

// maxAllocations bounds each allocation table. Allocations are never freed
// (they are meant to be stable for the life of the server), so this is what
// keeps a long-running broker's memory bounded.
const maxAllocations = 1 << 16

var errPoolExhausted = errors.New("pool exhausted")

// allocator hands out client addresses and delegated prefixes. It is guarded
// by the server's mutex.
type allocator struct {
	pool6  netip.Prefix
	pool4  netip.Prefix
	prefix netip.Prefix

	addr6 map[string]netip.Addr // "u:user" or "a:ip:port" -> client IPv6
	anon  map[netip.Addr]string // derived anonymous address -> "transport ip:port" holding it
	next6 uint64
	addr4 map[string]netip.Addr // same keys -> v4v6 client IPv4
	next4 uint64
	pfx   map[string]netip.Prefix // "user/len" -> delegated prefix
	nextP uint64                  // cursor in the pool, in units of the upper 64 bits
}

func newAllocator(pool6, pool4, prefix netip.Prefix) *allocator {
	return &allocator{
		pool6: pool6, pool4: pool4, prefix: prefix,
		addr6: make(map[string]netip.Addr),
		anon:  make(map[netip.Addr]string),
		addr4: make(map[string]netip.Addr),
		pfx:   make(map[string]netip.Prefix),
	}
}

func allocKey(user string, src netip.AddrPort) string {
	if user != "" {
		return "u:" + user
	}
	return "a:" + src.String()
}

// clientV6 gives a user a stable address counted up from the pool's ::2 (::1
// is the server). Anonymous clients get tsps's derived address when the pool
// leaves room for it: every bit from the prefix length to bit 79 set, then
// the source IPv4 and port, so it changes with the NAT port like tsps's.
// A UDP and a TCP client may share an IPv4 and port number; the second one
// to ask gets a counted address, so no two sessions share one.
func (a *allocator) clientV6(user string, src netip.AddrPort, transport string) (netip.Addr, error) {
	if user == "" {
		if addr, ok := deriveAnon(a.pool6, src); ok {
			owner := transport + " " + src.String()
			if held, taken := a.anon[addr]; !taken || held == owner {
				if !taken && len(a.anon) < maxAllocations {
					a.anon[addr] = owner
				}
				return addr, nil
			}
		}
	}
	key := allocKey(user, src)
	if user == "" {
		key += "/" + transport
	}
	if addr, ok := a.addr6[key]; ok {
		return addr, nil
	}
	hostBits := 128 - a.pool6.Bits()
	if len(a.addr6) >= maxAllocations || (hostBits < 63 && a.next6+2 >= 1<<hostBits) {
		return netip.Addr{}, errPoolExhausted
	}
	addr := addOffset(a.pool6.Addr(), a.next6+2)
	a.next6++
	a.addr6[key] = addr
	return addr, nil
}

// serverV4Inner is the server's inner IPv4 in v4v6 offers.
func (a *allocator) serverV4Inner() netip.Addr { return a.pool4.Addr().Next() }

// clientV4 gives a v4v6 client an inner IPv4 from the pool, from .2 upwards.
func (a *allocator) clientV4(user string, src netip.AddrPort) (netip.Addr, error) {
	key := allocKey(user, src)
	if addr, ok := a.addr4[key]; ok {
		return addr, nil
	}
	size := uint64(1) << (32 - a.pool4.Bits())
	// Leave out the network address, the server and the broadcast address.
	if len(a.addr4) >= maxAllocations || a.next4+3 >= size {
		return netip.Addr{}, errPoolExhausted
	}
	b := a.pool4.Addr().As4()
	v := binary.BigEndian.Uint32(b[:]) + uint32(a.next4) + 2
	binary.BigEndian.PutUint32(b[:], v)
	a.next4++
	addr := netip.AddrFrom4(b)
	a.addr4[key] = addr
	return addr, nil
}

// delegate returns the user's prefix of the given length, allocating it on
// first use. Blocks are carved from the pool with an aligned bump pointer, so
// no two allocations overlap whatever their lengths.
func (a *allocator) delegate(user string, length int) (netip.Prefix, error) {
	key := user + "/" + strconv.Itoa(length)
	if p, ok := a.pfx[key]; ok {
		return p, nil
	}
	if length < a.prefix.Bits() || length > 64 {
		return netip.Prefix{}, errPoolExhausted
	}
	poolSize := uint64(1) << (64 - a.prefix.Bits())
	size := uint64(1) << (64 - length)
	off := (a.nextP + size - 1) &^ (size - 1)
	if len(a.pfx) >= maxAllocations || off+size > poolSize || off+size < off {
		return netip.Prefix{}, errPoolExhausted
	}
	a.nextP = off + size
	b := a.prefix.Addr().As16()
	hi := binary.BigEndian.Uint64(b[:8]) + off
	binary.BigEndian.PutUint64(b[:8], hi)
	clear(b[8:])
	p := netip.PrefixFrom(netip.AddrFrom16(b), length)
	a.pfx[key] = p
	return p, nil
}

func deriveAnon(pool netip.Prefix, src netip.AddrPort) (netip.Addr, bool) {
	if pool.Bits() > 80 || !src.Addr().Is4() {
		return netip.Addr{}, false
	}
	b := pool.Addr().As16()
	for bit := pool.Bits(); bit < 80; bit++ {
		b[bit/8] |= 0x80 >> (bit % 8)
	}
	v4 := src.Addr().As4()
	copy(b[10:14], v4[:])
	binary.BigEndian.PutUint16(b[14:16], src.Port())
	return netip.AddrFrom16(b), true
}

// addOffset adds n to an IPv6 address, carrying into the upper half.
func addOffset(a netip.Addr, n uint64) netip.Addr {
	b := a.As16()
	hi := binary.BigEndian.Uint64(b[:8])
	lo := binary.BigEndian.Uint64(b[8:])
	sum := lo + n
	if sum < lo {
		hi++
	}
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], sum)
	return netip.AddrFrom16(b)
}
