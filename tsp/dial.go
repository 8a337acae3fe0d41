package tsp

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"
)

// NetDialer is the production DialFunc: a fresh connected socket per attempt
// (a new UDP source port each time, as the old client), wrapped in the
// matching transport. IPv6 selects the family of the broker address: false
// for the v6-in-v4 types, true for v4v6.
type NetDialer struct {
	IPv6    bool
	Timeout time.Duration // connect timeout for TCP; 0 means 10 s
	RUDP    RUDPConfig
	TCP     TCPConfig
	// Dialer, when set, is used for sockets (e.g. to bind a WAN source).
	Dialer *net.Dialer
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
	if nd.Timeout == 0 {
		c := *nd
		c.Timeout = d.Timeout
		if c.Timeout == 0 {
			c.Timeout = 10 * time.Second
		}
		nd = &c
	}
	fam := "4"
	if d.IPv6 {
		fam = "6"
	}
	addr := net.JoinHostPort(host, strconv.Itoa(int(port)))
	conn, err := nd.DialContext(ctx, string(network)+fam, addr)
	if err != nil {
		return nil, fmt.Errorf("connect %s/%s: %w", network, addr, err)
	}
	if network == UDP {
		return NewRUDP(conn, d.RUDP), nil
	}
	return NewTCP(conn, d.TCP), nil
}
