package tunnel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netns"

	"github.com/jsklein/gogoc/internal/logx"
	"github.com/jsklein/gogoc/internal/rtlink"
)

// Defaults applied by NewUserspace to zero Config fields.
const (
	DefaultMTU         = 1280
	DefaultRouteMetric = 1024
	DefaultMisses      = 3
	DefaultTimeout     = 5 * time.Second // spec §6: reply deadline of 5000 ms

	// A suspected loss is confirmed by Misses probes this far apart, each
	// with this reply deadline (raised on slow paths): about 2 s from an
	// ICMP error to a declared loss.
	DefaultConfirmInterval = 500 * time.Millisecond
	DefaultConfirmTimeout  = time.Second
)

// Tunnel is one established data plane. Implementations: the userspace
// engine (NewUserspace); kernel tunnels (sit, sit+fou, ip6tnl) fit behind
// the same interface.
type Tunnel interface {
	// Name is the tunnel interface name.
	Name() string
	// Stats is a snapshot of the counters; safe to call at any time.
	Stats() Stats
	// Events delivers what the supervisor must react to. It is closed by
	// Close after the last event. Events are dropped (and counted in
	// Stats.EventsDropped) rather than block the data path when nobody reads.
	Events() <-chan Event
	// Close tears the tunnel down, removing exactly what it added. It does
	// not close Config.Conn, which stays the caller's.
	Close() error
}

// Type is the encapsulation of a tunnel.
type Type int

// Tunnel types (spec §1.5–1.7).
const (
	// V6V4 carries IPv6 in IPv4 as IP protocol 41 (6in4).
	V6V4 Type = iota + 1
	// V6UDPV4 carries IPv6 in UDP over IPv4, on the TSP session's socket
	// (Config.Conn), so that it passes a NAT.
	V6UDPV4
	// V4V6 carries IPv4 in IPv6 with next header 4 (RFC 2473).
	V4V6
)

func (t Type) String() string {
	switch t {
	case V6V4:
		return "v6v4"
	case V6UDPV4:
		return "v6udpv4"
	case V4V6:
		return "v4v6"
	}
	return "type(" + strconv.Itoa(int(t)) + ")"
}

// inner6 tells whether the tunnel carries IPv6 (its inner family).
func (t Type) inner6() bool { return t == V6V4 || t == V6UDPV4 }

// Config describes the tunnel to build in plain values: the caller maps
// whatever negotiated the tunnel (a TSP offer) onto it. Type, Local and
// Remote are required, and the outer endpoints the type needs; the rest
// has defaults.
type Config struct {
	Type Type

	// Local is the client's inner address with its prefix length, assigned
	// to the device (IPv6 for V6V4 and V6UDPV4, IPv4 for V4V6). Remote is
	// the broker's inner address, reached through a host route.
	Local  netip.Prefix
	Remote netip.Addr

	// RemoteEndpoint is the broker's outer address: IPv4 for V6V4, IPv6
	// for V4V6. V6UDPV4 takes both endpoints from Conn.
	RemoteEndpoint netip.Addr
	// LocalEndpoint is the preferred outer source (V6V4, V4V6): used when
	// it is an address of this host, else the route to RemoteEndpoint
	// picks one. A NAT in between makes the address the broker saw
	// foreign, so the caller may pass it without checking.
	LocalEndpoint netip.Addr

	// Conn is, for V6UDPV4, the TSP session's own connected UDP socket (a
	// *net.UDPConn or anything with SyscallConn): reusing its 5-tuple
	// reuses the NAT mapping the broker has seen. Unused otherwise.
	Conn net.Conn

	// DataPlane chooses the implementation New builds: "auto" (default:
	// kernel when usable, else userspace), "kernel" or "userspace".
	DataPlane string

	IfName       string // default "tun6"
	MTU          int    // 1280..65535, default 1280
	RouteMetric  int    // metric of the default route, default 1024
	DefaultRoute bool   // install ::/0 (0.0.0.0/0 for V4V6) via the tunnel
	Keepalive    KeepaliveConfig

	// NetNS, when > 0, is the network namespace in which the device, its
	// configuration and every socket the tunnel opens live (tests). The
	// zero value means the caller's namespace.
	NetNS netns.NsHandle
	// Netlink, when set, is used for all interface configuration instead
	// of a handle opened (in NetNS) by the tunnel. The caller keeps it.
	Netlink *rtlink.Handle

	Log *logx.Logger

	// BatchSize is the number of packets moved per system call; default 64.
	BatchSize int
	// DisableOffload opens the device without virtio-net headers and the
	// socket without UDP GSO/GRO: one system call per packet on the
	// device side. Offloads fall back by themselves where the kernel lacks
	// them; this is for measurements and for kernels that misbehave.
	DisableOffload bool
}

// KeepaliveConfig tunes the echo prober (spec §6): ICMPv6 echo, ICMPv4
// for V4V6.
type KeepaliveConfig struct {
	// Target is the address probed, of the tunnel's inner family; it gets
	// a host route through the tunnel. Required when Interval is set.
	Target netip.Addr
	// Interval between probes; 0 turns the keepalive off.
	Interval time.Duration
	Timeout  time.Duration // reply deadline per probe, default 5 s
	Misses   int           // consecutive misses that mean "lost", default 3

	// A broker that looks gone (an ICMP error about our packets to it, or
	// a probe unanswered for ConfirmTimeout) is not waited for in whole
	// intervals: Misses confirmation probes go out ConfirmInterval apart
	// (default 500 ms), each missed after ConfirmTimeout (default 1 s,
	// raised to three smoothed round trips, at most Timeout). All missed
	// is a loss; any reply cancels it, so a forged ICMP error costs a few
	// probes, never the tunnel.
	ConfirmInterval time.Duration
	ConfirmTimeout  time.Duration

	// legacy keeps to spec §6 alone (whole intervals, no confirmation):
	// the baseline of BenchmarkDeadBroker.
	legacy bool

	// Clock and Conn replace the real clock and ICMPv6 socket (tests). The
	// tunnel closes Conn when it closes.
	Clock Clock
	Conn  PingConn
}

// EventKind says what happened.
type EventKind int

// Event kinds.
const (
	// KeepaliveLost: Misses consecutive probes went unanswered (with an
	// ICMP error as the cause, if one started the confirmation).
	KeepaliveLost EventKind = iota + 1
	// KeepaliveRestored: a timely reply came after KeepaliveLost.
	KeepaliveRestored
	// BrokerControl: the broker sent a TSP control datagram (first nibble
	// 0xF) carrying an error status, e.g. "310 TSP status error", after the
	// tunnel came up. The session is gone on the broker's side.
	BrokerControl
	// IOError: a packet pump stopped on an error it cannot recover from.
	IOError
)

func (k EventKind) String() string {
	switch k {
	case KeepaliveLost:
		return "keepalive-lost"
	case KeepaliveRestored:
		return "keepalive-restored"
	case BrokerControl:
		return "broker-control"
	case IOError:
		return "io-error"
	}
	return "event(" + strconv.Itoa(int(k)) + ")"
}

// Event is one notification from a Tunnel.
type Event struct {
	Kind EventKind
	Time time.Time
	// Code and Text: BrokerControl only. Text is the message after the
	// 8-byte header without the trailing CRLF; Code its status (0 if none).
	Code int
	Text string
	// Misses: KeepaliveLost, the consecutive misses counted.
	Misses int
	// RTT: KeepaliveRestored, the round trip of the reply that restored it.
	RTT time.Duration
	// Err: IOError; KeepaliveLost, the ICMP error that started the
	// confirmation (nil if probes just went unanswered).
	Err error
}

func (e Event) String() string {
	switch e.Kind {
	case BrokerControl:
		return fmt.Sprintf("%v %q", e.Kind, e.Text)
	case KeepaliveLost:
		if e.Err != nil {
			return fmt.Sprintf("%v after %d misses (%v)", e.Kind, e.Misses, e.Err)
		}
		return fmt.Sprintf("%v after %d misses", e.Kind, e.Misses)
	case KeepaliveRestored:
		return fmt.Sprintf("%v rtt=%v", e.Kind, e.RTT)
	case IOError:
		return fmt.Sprintf("%v: %v", e.Kind, e.Err)
	}
	return e.Kind.String()
}

// Stats counts traffic. Tx is towards the broker (device → socket), Rx is
// from the broker (socket → device).
type Stats struct {
	TxPackets, TxBytes uint64
	RxPackets, RxBytes uint64
	// TxErrors: packets the socket refused (e.g. ICMP unreachable from the
	// broker, no route). RxErrors: packets the device refused.
	TxErrors, RxErrors uint64
	// Dropped: datagrams that were neither IPv6 nor a control message, were
	// truncated, carried our own address as source (echoed back by the
	// broker), or (Forwarder) had no peer or a source it may not use; and
	// device packets that were not IPv6 or could not be segmented.
	Dropped uint64
	// Control: TSP control datagrams received (first nibble 0xF).
	Control uint64
	// Unreachable: ICMP errors about our packets to the broker (port,
	// protocol, host or network unreachable), as the socket or, for the
	// kernel planes, the ICMP watch reported them. Each makes the prober
	// confirm at once that the broker still answers.
	Unreachable   uint64
	EventsDropped uint64
	Keepalive     KeepaliveStats
}

// KeepaliveStats describes the prober.
type KeepaliveStats struct {
	Sent, Received uint64
	Late           uint64 // replies after the deadline (do not reset misses)
	TimedOut       uint64 // probes that got no reply in time
	// Confirmations: times the broker looked gone (an ICMP error, an
	// overdue probe) and was probed at once.
	Confirmations uint64
	Misses        int  // current consecutive misses
	Lost          bool // between KeepaliveLost and KeepaliveRestored
	LastRTT       time.Duration
	SmoothedRTT   time.Duration // EWMA, gain 1/8
}

// Errors callers may want to tell apart.
var (
	ErrClosed        = errors.New("tunnel closed")
	ErrUnsupported   = errors.New("tunnel type not supported by this implementation")
	ErrRouteConflict = errors.New("a route with the same destination and metric exists")
	ErrNotOurs       = errors.New("interface exists and is not a tunnel device")
)

// counters are the live, atomically updated Stats fields. Pumps add once per
// batch so that the hot path touches shared cache lines rarely.
type counters struct {
	txPackets, txBytes atomic.Uint64
	rxPackets, rxBytes atomic.Uint64
	txErrors, rxErrors atomic.Uint64
	dropped, control   atomic.Uint64
	unreach            atomic.Uint64
	eventsDropped      atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		TxPackets:     c.txPackets.Load(),
		TxBytes:       c.txBytes.Load(),
		RxPackets:     c.rxPackets.Load(),
		RxBytes:       c.rxBytes.Load(),
		TxErrors:      c.txErrors.Load(),
		RxErrors:      c.rxErrors.Load(),
		Dropped:       c.dropped.Load(),
		Control:       c.control.Load(),
		Unreachable:   c.unreach.Load(),
		EventsDropped: c.eventsDropped.Load(),
	}
}

// eventSink delivers events without ever blocking the sender.
type eventSink struct {
	ch  chan Event
	cnt *counters
	now func() time.Time
}

func (s *eventSink) emit(e Event) {
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	select {
	case s.ch <- e:
	default:
		s.cnt.eventsDropped.Add(1)
	}
}

// NewUserspace builds the userspace data plane for cfg: a TUN device
// configured over netlink, bridged to the broker over cfg.Conn (V6UDPV4), a
// raw protocol-41 socket (V6V4) or a raw IPv6 protocol-4 socket (V4V6), plus
// the keepalive prober. A leftover device named cfg.IfName from an earlier
// run is removed first. On error nothing it added remains. ctx bounds only
// the set-up.
func NewUserspace(ctx context.Context, cfg Config) (Tunnel, error) {
	if cfg.Type == V4V6 {
		return newUserspaceV4V6(ctx, cfg) // TUN (IPv4) ⇄ raw IPv6 protocol-4 socket
	}
	return newUserspace(ctx, cfg)
}

// withDefaults fills zero fields and checks the addresses against the type.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.IfName == "" {
		cfg.IfName = "tun6"
	}
	if len(cfg.IfName) >= 16 {
		return cfg, fmt.Errorf("interface name %q longer than 15 bytes", cfg.IfName)
	}
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.MTU < 1280 || cfg.MTU > 65535 {
		return cfg, fmt.Errorf("MTU %d outside 1280..65535", cfg.MTU)
	}
	if cfg.RouteMetric == 0 {
		cfg.RouteMetric = DefaultRouteMetric
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = defaultBatch
	}
	if cfg.Log == nil {
		cfg.Log = logx.Discard()
	}
	k := cfg.Keepalive
	if k.Interval < 0 || k.Timeout < 0 || k.ConfirmInterval < 0 || k.ConfirmTimeout < 0 || k.Misses < 0 {
		return cfg, errors.New("keepalive: negative interval, timeout or misses")
	}
	cfg.Keepalive = k.withDefaults()
	if err := cfg.checkAddrs(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// checkAddrs checks that each address the type needs is there and of the
// right family: inner addresses of the inner family, outer of the outer.
func (cfg Config) checkAddrs() error {
	is6 := func(a netip.Addr) bool { return a.Is6() && !a.Is4In6() }
	inner, innerName := is6, "IPv6"
	switch cfg.Type {
	case V6V4:
		if !cfg.RemoteEndpoint.Is4() {
			return fmt.Errorf("v6v4 without a broker IPv4 endpoint (%v)", cfg.RemoteEndpoint)
		}
	case V6UDPV4: // endpoints from Conn, checked by the plane
	case V4V6:
		inner, innerName = netip.Addr.Is4, "IPv4"
		if !is6(cfg.RemoteEndpoint) {
			return fmt.Errorf("v4v6 without a broker IPv6 endpoint (%v)", cfg.RemoteEndpoint)
		}
	default:
		return fmt.Errorf("tunnel type %v: %w", cfg.Type, ErrUnsupported)
	}
	if !cfg.Local.IsValid() || !inner(cfg.Local.Addr()) {
		return fmt.Errorf("%v without a local inner %s address (%v)", cfg.Type, innerName, cfg.Local)
	}
	if !inner(cfg.Remote) {
		return fmt.Errorf("%v without a remote inner %s address (%v)", cfg.Type, innerName, cfg.Remote)
	}
	if k := cfg.Keepalive; k.enabled() && !inner(k.Target) {
		// spec §6: an interval without an address is a keepalive error.
		return fmt.Errorf("keepalive every %v but no %s keepalive target (%v)", k.Interval, innerName, k.Target)
	}
	return nil
}

func (k KeepaliveConfig) enabled() bool { return k.Interval > 0 }

// withDefaults fills the zero fields but Interval and Target.
func (k KeepaliveConfig) withDefaults() KeepaliveConfig {
	if k.Timeout == 0 {
		k.Timeout = DefaultTimeout
	}
	if k.Misses == 0 {
		k.Misses = DefaultMisses
	}
	if k.ConfirmInterval == 0 {
		k.ConfirmInterval = DefaultConfirmInterval
	}
	if k.ConfirmTimeout == 0 {
		k.ConfirmTimeout = DefaultConfirmTimeout
	}
	if k.Clock == nil {
		k.Clock = realClock{}
	}
	return k
}
