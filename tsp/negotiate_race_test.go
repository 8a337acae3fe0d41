package tsp

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// stalled is a transport whose broker never answers: every call blocks
// until the context ends. It records whether it was closed.
type stalled struct {
	scripted
	mu     sync.Mutex
	closed bool
}

func (s *stalled) Exchange(ctx context.Context, _ []byte) ([]byte, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (s *stalled) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

func (s *stalled) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// fireAfterFirst answers the first exchange at once. Before it answers
// the second, it fires the fallback timer and waits until the negotiator
// has taken it: the broker answered, then the fallback delay ran out.
type fireAfterFirst struct {
	*scripted
	fire      chan time.Time // unbuffered: the send returns once taken
	exchanges int
}

func (s *fireAfterFirst) Exchange(ctx context.Context, msg []byte) ([]byte, error) {
	if s.exchanges++; s.exchanges == 2 {
		select {
		case s.fire <- time.Now():
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return s.scripted.Exchange(ctx, msg)
}

// TestNegotiatorTCPRace: UDP silent → TCP starts after TCPFallbackDelay
// (not after the ≈6 s RUDP give-up), wins, and the UDP attempt is closed.
func TestNegotiatorTCPRace(t *testing.T) {
	udp := &stalled{scripted: *newScripted(UDP)}
	var mu sync.Mutex
	var tcpAt time.Duration
	start := time.Now()
	dial := func(_ context.Context, _ string, network Network) (Transport, error) {
		if network == UDP {
			return udp, nil
		}
		mu.Lock()
		tcpAt = time.Since(start)
		mu.Unlock()
		return newScripted(TCP, anonCap, "200 Success\r\n", offerReply(offerXML(V6V4, ""))), nil
	}
	n := &Negotiator{Dial: dial, Creds: Credentials{Method: AuthAnonymous}, Request: Request{Type: V6AnyV4},
		TCPFallbackDelay: 100 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // hang guard
	defer cancel()
	res, err := n.Negotiate(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	if res.Session.T.Network() != TCP {
		t.Fatalf("winner ran over %s, want tcp", res.Session.T.Network())
	}
	mu.Lock()
	defer mu.Unlock()
	// Never before the delay. The upper bound only tells the fallback
	// timer from none (the stalled UDP never gives up): a busy machine
	// may wake the negotiator late.
	if tcpAt < 100*time.Millisecond || tcpAt > 10*time.Second {
		t.Fatalf("TCP dialled after %v, want after the 100 ms fallback delay", tcpAt)
	}
	if !udp.isClosed() {
		t.Fatal("the losing UDP attempt was not closed")
	}
	t.Logf("UDP silent: TCP started after %v and won", tcpAt.Round(time.Millisecond))
}

// TestNegotiatorTCPAtOnce: with TCPAtOnce (tcp_fallback_delay 0) TCP
// starts beside a silent UDP at once, whatever TCPFallbackDelay says.
func TestNegotiatorTCPAtOnce(t *testing.T) {
	udp := &stalled{scripted: *newScripted(UDP)}
	tcpAt := make(chan time.Duration, 1)
	start := time.Now()
	dial := func(_ context.Context, _ string, network Network) (Transport, error) {
		if network == UDP {
			return udp, nil
		}
		tcpAt <- time.Since(start)
		return newScripted(TCP, anonCap, "200 Success\r\n", offerReply(offerXML(V6V4, ""))), nil
	}
	n := &Negotiator{Dial: dial, Creds: Credentials{Method: AuthAnonymous}, Request: Request{Type: V6AnyV4},
		TCPFallbackDelay: time.Hour, TCPAtOnce: true}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := n.Negotiate(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	if res.Session.T.Network() != TCP {
		t.Fatalf("winner ran over %s, want tcp", res.Session.T.Network())
	}
	// Bounded by the test's deadline, not the hour: the order is what counts.
	t.Logf("TCP dialled %v after the start", (<-tcpAt).Round(time.Millisecond))
}

// TestNegotiatorNoRaceWhenUDPAnswers: a UDP broker that answered the
// first exchange is slow, not absent: when the fallback delay runs out
// after that answer, no TCP attempt is started beside it. The test fires
// the fallback timer itself, between the first answer and the second, so
// the order does not depend on how fast the machine is.
func TestNegotiatorNoRaceWhenUDPAnswers(t *testing.T) {
	var tcpDials atomic.Int32
	fire := make(chan time.Time)
	dial := func(_ context.Context, _ string, network Network) (Transport, error) {
		if network == TCP {
			tcpDials.Add(1)
			return newScripted(TCP), nil
		}
		return &fireAfterFirst{scripted: newScripted(UDP, anonCap, "200 Success\r\n", offerReply(offerXML(V6UDPV4, ""))), fire: fire}, nil
	}
	var asked time.Duration
	n := &Negotiator{Dial: dial, Creds: Credentials{Method: AuthAnonymous}, Request: Request{Type: V6AnyV4},
		TCPFallbackDelay: 50 * time.Millisecond,
		fallbackTimer:    func(d time.Duration) <-chan time.Time { asked = d; return fire }}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // hang guard
	defer cancel()
	res, err := n.Negotiate(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	if asked != 50*time.Millisecond {
		t.Errorf("fallback timer set to %v, want the 50 ms TCPFallbackDelay", asked)
	}
	if res.Session.T.Network() != UDP || tcpDials.Load() != 0 {
		t.Fatalf("winner %s, TCP dials %d; want UDP and none", res.Session.T.Network(), tcpDials.Load())
	}
	if _, ok := res.Session.T.(*fireAfterFirst); !ok {
		t.Fatalf("result transport is %T, want the dialled one (not a wrapper)", res.Session.T)
	}
}

// TestNegotiatorTCPRaceWhenUDPSilent is the same order with a broker that
// never answered: the fallback timer firing starts TCP.
func TestNegotiatorTCPRaceWhenUDPSilent(t *testing.T) {
	fired := make(chan time.Time)
	var firedYet atomic.Bool
	udp := &stalled{scripted: *newScripted(UDP)}
	dial := func(_ context.Context, _ string, network Network) (Transport, error) {
		if network == UDP {
			return udp, nil
		}
		if !firedYet.Load() {
			t.Error("TCP dialled before the fallback timer fired")
		}
		return newScripted(TCP, anonCap, "200 Success\r\n", offerReply(offerXML(V6V4, ""))), nil
	}
	n := &Negotiator{Dial: dial, Creds: Credentials{Method: AuthAnonymous}, Request: Request{Type: V6AnyV4},
		TCPFallbackDelay: time.Hour,
		fallbackTimer: func(time.Duration) <-chan time.Time {
			go func() { firedYet.Store(true); fired <- time.Now() }()
			return fired
		}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // hang guard
	defer cancel()
	res, err := n.Negotiate(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	if res.Session.T.Network() != TCP || !udp.isClosed() {
		t.Fatalf("winner %s, UDP closed %v; want TCP and the UDP attempt closed", res.Session.T.Network(), udp.isClosed())
	}
}

// TestNegotiatorV6UDPV4NeverRaces: v6udpv4 waits for UDP only.
func TestNegotiatorV6UDPV4NeverRaces(t *testing.T) {
	tcpDials := 0
	dial := func(_ context.Context, _ string, network Network) (Transport, error) {
		if network == TCP {
			tcpDials++
		}
		return &stalled{scripted: *newScripted(network)}, nil
	}
	n := &Negotiator{Dial: dial, Creds: Credentials{Method: AuthAnonymous}, Request: Request{Type: V6UDPV4},
		TCPFallbackDelay: 10 * time.Millisecond,
		fallbackTimer: func(time.Duration) <-chan time.Time {
			t.Error("v6udpv4 set a TCP fallback timer")
			return nil
		}}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := n.Negotiate(ctx, "b"); err == nil {
		t.Fatal("negotiation with a silent broker succeeded")
	}
	if tcpDials != 0 {
		t.Fatalf("v6udpv4 dialled TCP %d times", tcpDials)
	}
}

// TestNegotiatorOrderBrokers: the hook reorders a redirect's list.
func TestNegotiatorOrderBrokers(t *testing.T) {
	d := &scriptedDialer{brokers: map[string]func(string) []string{
		"b/udp": func(string) []string {
			return []string{"1200 Redirect\r\n<tunnel action=\"info\"><broker><address type=\"dn\">far</address><address type=\"dn\">near</address></broker></tunnel>\r\n"}
		},
		"far/udp":  answering(V6UDPV4),
		"near/udp": answering(V6UDPV4),
	}}
	var got []string
	var gotFrom Origin
	n := &Negotiator{Dial: d.dial, Creds: Credentials{Method: AuthAnonymous}, Request: Request{Type: V6UDPV4},
		OrderBrokers: func(_ context.Context, s []string, from Origin) ([]string, error) {
			got, gotFrom = append([]string(nil), s...), from
			return []string{"near", "far"}, nil
		}}
	res, err := n.Negotiate(context.Background(), "b")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != "far" || res.Server != "near" {
		t.Fatalf("hook saw %q, used %q; want [far near] and near", got, res.Server)
	}
	// The scripted brokers are on 198.51.100.1: a far broker's redirect.
	if want := (Origin{Redirect: true}); gotFrom != want || res.Origin != want {
		t.Fatalf("hook got origin %+v, result %+v; want %+v for both", gotFrom, res.Origin, want)
	}

	// A hook that leaves none explains why.
	n.OrderBrokers = func(context.Context, []string, Origin) ([]string, error) {
		return nil, errors.New("all refused for the test")
	}
	if _, err := n.Negotiate(context.Background(), "b"); !errors.Is(err, ErrRedirect) || !strings.Contains(err.Error(), "all refused for the test") {
		t.Fatalf("hook left none: %v", err)
	}
}
