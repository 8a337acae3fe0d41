package tsp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// Resolver looks host names up; *net.Resolver is one. Tests inject their
// own so that a name can lead anywhere without a DNS server.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// NetDialer is the production DialFunc: a fresh connected socket per attempt
// (a new UDP source port each time, as the old client), wrapped in the
// matching transport. IPv6 selects the family of the broker address: false
// for the v6-in-v4 types, true for v4v6.
type NetDialer struct {
	IPv6    bool
	Timeout time.Duration // the whole dial, lookup included (TCP connects); 0 means 10 s
	RUDP    RUDPConfig
	TCP     TCPConfig
	// Dialer, when set, is used for sockets (e.g. to bind a WAN source).
	Dialer *net.Dialer
	// Resolver looks the server's name up; nil uses the Dialer's resolver,
	// else net.DefaultResolver. Dial resolves first and then connects to
	// the addresses found, in turn, until one connects; each address must
	// first pass the check of the Origin the context carries (WithOrigin),
	// so a redirect's name that leads to this host or its LAN gets not
	// even a TCP SYN.
	Resolver Resolver
}

// Dial implements DialFunc.
func (d *NetDialer) Dial(ctx context.Context, server string, network Network) (Transport, error) {
	host, port, err := ParseServer(server)
	if err != nil {
		return nil, err
	}
	nd := d.Dialer
	if nd == nil {
		nd = &net.Dialer{}
	}
	timeout := d.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	if nd.Timeout != 0 {
		timeout = nd.Timeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	addrs, err := d.lookup(ctx, nd, host)
	if err != nil {
		return nil, err
	}
	fam := "4"
	if d.IPv6 {
		fam = "6"
	}
	from := OriginOf(ctx)
	var errs []error
	for _, a := range addrs {
		if err := from.Check(server, a); err != nil {
			errs = append(errs, err)
			continue
		}
		addr := netip.AddrPortFrom(a, port).String()
		conn, err := nd.DialContext(ctx, string(network)+fam, addr)
		if err != nil {
			errs = append(errs, fmt.Errorf("connect %s/%s: %w", network, addr, err))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if network == UDP {
			return NewRUDP(conn, d.RUDP), nil
		}
		return NewTCP(conn, d.TCP), nil
	}
	if len(errs) == 1 {
		return nil, errs[0]
	}
	return nil, errors.Join(errs...)
}

// lookup returns the addresses of host in the family asked for: the
// address itself for a literal, else the resolver's answer.
func (d *NetDialer) lookup(ctx context.Context, nd *net.Dialer, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		if a = a.Unmap(); a.Is6() != d.IPv6 {
			return nil, fmt.Errorf("connect %s: %w", host, errWrongFamily(d.IPv6))
		}
		return []netip.Addr{a}, nil
	}
	var r Resolver = net.DefaultResolver
	switch {
	case d.Resolver != nil:
		r = d.Resolver
	case nd.Resolver != nil:
		r = nd.Resolver
	}
	network := "ip4"
	if d.IPv6 {
		network = "ip6"
	}
	found, err := r.LookupNetIP(ctx, network, host)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", host, err)
	}
	var addrs []netip.Addr
	for _, a := range found {
		if a = a.Unmap(); a.Is6() == d.IPv6 {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("resolve %s: %w", host, errWrongFamily(d.IPv6))
	}
	return addrs, nil
}

func errWrongFamily(v6 bool) error {
	if v6 {
		return errors.New("no IPv6 address (v4v6 reaches its broker over IPv6)")
	}
	return errors.New("no IPv4 address")
}
