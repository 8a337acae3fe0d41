package daemon

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jsklein/gogoc/config"
	"github.com/jsklein/gogoc/internal/logx"
	"github.com/jsklein/gogoc/internal/testbroker"
	"github.com/jsklein/gogoc/tsp"
	"github.com/jsklein/gogoc/tunnel"
)

// fakeTunnel stands in for a data plane in the logic tests: the test
// raises its events. The namespace tests use the real one.
type fakeTunnel struct {
	name   string
	typ    tunnel.Type
	ev     chan tunnel.Event
	mu     sync.Mutex
	closed bool
}

func (f *fakeTunnel) Name() string                { return f.name }
func (f *fakeTunnel) Stats() tunnel.Stats         { return tunnel.Stats{} }
func (f *fakeTunnel) Events() <-chan tunnel.Event { return f.ev }
func (f *fakeTunnel) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		close(f.ev)
	}
	return nil
}

// emit raises an event unless the tunnel is already closed.
func (f *fakeTunnel) emit(e tunnel.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.ev <- e
	}
}

// fakePlane builds fakeTunnels and hands each to the test.
type fakePlane struct {
	ups   chan *fakeTunnel
	built atomic.Int64
}

func newFakePlane() *fakePlane { return &fakePlane{ups: make(chan *fakeTunnel, 16)} }

// Build implements TunnelBuilder.
func (p *fakePlane) Build(_ context.Context, cfg tunnel.Config) (tunnel.Tunnel, error) {
	p.built.Add(1)
	t := &fakeTunnel{name: cfg.IfName, typ: cfg.Type, ev: make(chan tunnel.Event, 4)}
	select {
	case p.ups <- t:
	default: // the test does not follow every tunnel
	}
	return t, nil
}

// Plane implements TunnelBuilder.
func (p *fakePlane) Plane(tunnel.Tunnel) string { return "userspace" }

// next waits for the next tunnel to be built.
func (p *fakePlane) next(t testing.TB, within time.Duration) *fakeTunnel {
	t.Helper()
	select {
	case ft := <-p.ups:
		return ft
	case <-time.After(within):
		t.Fatalf("no tunnel within %v", within)
		return nil
	}
}

// startBroker runs an in-process test broker on loopback UDP (and TCP when
// tcp is set) and returns it with its server string.
func startBroker(t testing.TB, cfg testbroker.Config, udpAddr string) (*testbroker.Server, string) {
	t.Helper()
	if cfg.Log == nil {
		cfg.Log = logx.Discard()
	}
	s, err := testbroker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	udp, _, err := s.Start(udpAddr, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, udp.String()
}

// testConfig is an anonymous v6udpv4 client of server with short timers.
func testConfig(server string) *config.Config {
	c := config.Defaults(config.FormatUCI)
	c.Enabled = true
	c.Server = server
	c.AuthMethod = config.AuthAnonymous
	c.TunnelMode = config.TunnelV6UDPV4
	c.RetryDelay = time.Second
	c.RetryDelayMax = 2 * time.Second
	c.KeepaliveInterval = 5 * time.Second
	return &c
}

// testOptions are the logic tests' options: the production broker client
// (real loopback sockets to a test broker), fake tunnels from plane, the
// production timings, no status file and state files in a fresh directory.
func testOptions(t testing.TB, c *config.Config, plane *fakePlane) Options {
	return Options{Config: c, Broker: NewTSPBroker(Params, logx.Discard()), Tunnels: plane, Log: logx.Discard(),
		Timings: DefaultTimings(), StateDir: t.TempDir()}
}

// fastAttempts lets a test ask the same broker again after 10 ms.
func fastAttempts() Timings {
	t := DefaultTimings()
	t.MinAttemptInterval = 10 * time.Millisecond
	return t
}

// dialFunc adapts a test's dial function, which picks the address itself,
// to a Dialer.
type dialFunc func(ctx context.Context, server string, n tsp.Network) (tsp.Transport, error)

func (f dialFunc) Dial(ctx context.Context, server string, n tsp.Network, _ bool) (tsp.Transport, error) {
	return f(ctx, server, n)
}

// dialBroker is the production broker client over a test's dial function.
func dialBroker(dial dialFunc, log *logx.Logger) *TSPBroker {
	b := NewTSPBroker(Params, log)
	b.Dialer = dial
	return b
}

// recordingDial dials real sockets and records when each attempt started.
type recordingDial struct {
	mu    sync.Mutex
	times []time.Time
	d     tsp.NetDialer
}

func (r *recordingDial) dial(ctx context.Context, server string, n tsp.Network) (tsp.Transport, error) {
	r.mu.Lock()
	r.times = append(r.times, time.Now())
	r.mu.Unlock()
	return r.d.Dial(ctx, server, n)
}

func (r *recordingDial) attempts() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.times...)
}

// runDaemon starts d.Run and returns a stop function that cancels it and
// waits for it to return.
func runDaemon(t testing.TB, d *Daemon) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = d.Run(ctx)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Error("daemon did not stop within 5 s")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitState polls until the daemon is in state s.
func waitState(t testing.TB, d *Daemon, s State, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for d.Status().State != s {
		if time.Now().After(deadline) {
			t.Fatalf("state %s, want %s within %v (last error %q)", d.Status().State, s, within, d.Status().LastError)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// testLog logs into the test's output at debug level.
func testLog(t testing.TB) *logx.Logger {
	return logx.Writer(t.Output(), logx.LevelDebug)
}

// runDir is a fresh directory for a status file, in RAM when the machine
// has a tmpfs at /dev/shm, as /var/run is on a router: a test that writes
// the file thousands of times then measures the daemon, not the disk's
// fsync.
func runDir(t testing.TB) string {
	d, err := os.MkdirTemp("/dev/shm", "gogoc-daemon-test-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

// loopbackBase is "127.A.B." unique to this process, so that brokers on the
// fixed port 3653 do not collide with other tests.
func loopbackBase() string {
	p := os.Getpid()
	return fmt.Sprintf("127.%d.%d.", 100+p%100, (p/100)%250)
}

func brokerDefaults() testbroker.Config { return testbroker.Config{} }
