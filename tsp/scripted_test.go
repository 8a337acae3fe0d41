package tsp

import (
	"context"
	"fmt"
	"net/netip"
)

// scripted is an in-memory Transport for the logic tests: it records what
// the client sends and plays back broker replies in order. The end-to-end
// proof runs against the test broker over real sockets.
type scripted struct {
	network Network
	replies [][]byte
	sent    [][]byte
	local   netip.AddrPort
	remote  netip.AddrPort
	closed  bool
}

func newScripted(network Network, replies ...string) *scripted {
	s := &scripted{network: network, local: netip.MustParseAddrPort("192.0.2.10:40000"), remote: netip.MustParseAddrPort("198.51.100.1:3653")}
	for _, r := range replies {
		s.replies = append(s.replies, []byte(r))
	}
	return s
}

func (s *scripted) next() ([]byte, error) {
	if len(s.replies) == 0 {
		return nil, fmt.Errorf("scripted broker: %w", ErrNoReply)
	}
	r := s.replies[0]
	s.replies = s.replies[1:]
	return r, nil
}

func (s *scripted) Exchange(_ context.Context, msg []byte) ([]byte, error) {
	s.sent = append(s.sent, append([]byte(nil), msg...))
	return s.next()
}

func (s *scripted) Send(_ context.Context, msg []byte) error {
	s.sent = append(s.sent, append([]byte(nil), msg...))
	if s.network == UDP { // RUDP waits for an ack
		_, err := s.next()
		return err
	}
	return nil
}

func (s *scripted) Receive(context.Context) ([]byte, error) {
	if s.network == UDP {
		s.sent = append(s.sent, nil) // the poll
	}
	return s.next()
}

func (s *scripted) Network() Network           { return s.network }
func (s *scripted) LocalAddr() netip.AddrPort  { return s.local }
func (s *scripted) RemoteAddr() netip.AddrPort { return s.remote }
func (s *scripted) Close() error               { s.closed = true; return nil }
