package tsp

import (
	"context"
	"net/netip"
)

// Network names the transport a session runs over.
type Network string

// The two TSP transports. Both may run over IPv4 or IPv6.
const (
	UDP Network = "udp" // "reliable UDP": 8-byte header, retransmission
	TCP Network = "tcp"
)

// MaxMessage bounds any single message the broker may send (a record over
// TCP, a datagram over UDP). A 1000-entry broker list fits; anything larger
// is hostile.
const MaxMessage = 64 << 10

// Transport carries TSP messages to one broker. A message is the TSP text
// without any RUDP header. Implementations: *RUDP and *TCPConn.
type Transport interface {
	// Exchange sends msg and returns the broker's reply to it.
	Exchange(ctx context.Context, msg []byte) ([]byte, error)
	// Send sends msg without wanting an answer. Over UDP it still waits for
	// the broker's (empty) acknowledgement; over TCP it only writes.
	Send(ctx context.Context, msg []byte) error
	// Receive returns the next message from the broker. Over UDP it sends a
	// header-only poll to solicit it.
	Receive(ctx context.Context) ([]byte, error)
	// Network reports UDP or TCP.
	Network() Network
	// LocalAddr is the local end of the connection; with client_v4=auto its
	// address is what the tunnel request declares.
	LocalAddr() netip.AddrPort
	// RemoteAddr is the broker's end.
	RemoteAddr() netip.AddrPort
	// Close releases the connection. After a v6udpv4 accept the data plane
	// may own the socket instead; see RUDP.Detach.
	Close() error
}

// Dialer opens a fresh transport to the broker for each attempt, as every
// version or transport fallback needs a new connection.
type Dialer interface {
	Dial(ctx context.Context, network Network) (Transport, error)
}
