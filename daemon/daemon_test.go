package daemon

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jsklein/gogoc/config"
	"github.com/jsklein/gogoc/internal/logx"
	"github.com/jsklein/gogoc/internal/testbroker"
	"github.com/jsklein/gogoc/lan"
	"github.com/jsklein/gogoc/tsp"
	"github.com/jsklein/gogoc/tunnel"
)

// probeBroker replaces the distance probe of a broker client.
type probeBroker struct {
	*TSPBroker
	probe Prober
}

func (p probeBroker) Probe(ctx context.Context, _ *config.Config, server string, _ tsp.Origin) (time.Duration, bool, error) {
	return p.probe(ctx, server)
}

// fakeLAN records the calls the router side gets.
type fakeLAN struct {
	mu    sync.Mutex
	calls []string
}

func (l *fakeLAN) Up(_ context.Context, _ lan.Uplink, ifName string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, "up "+ifName)
	return nil
}
func (l *fakeLAN) Down() { l.mu.Lock(); l.calls = append(l.calls, "down"); l.mu.Unlock() }
func (l *fakeLAN) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, "close")
	return nil
}
func (l *fakeLAN) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.calls, ",")
}

// TestSupervisorLifecycle: up, status and last-server files, immediate
// renegotiation on keepalive loss, a broker 310 and a reconnect request
// (lost → negotiating with no back-off between: an order, which load does
// not change), transitions counted, LAN side told, and a clean stop.
func TestSupervisorLifecycle(t *testing.T) {
	_, server := startBroker(t, testbroker.Config{}, "127.0.0.1:0")
	dir := t.TempDir()
	plane, lan := newFakePlane(), &fakeLAN{}
	var ups []Status
	var mu sync.Mutex
	o := testOptions(t, testConfig(server), plane)
	o.LAN, o.StatusFile, o.StateDir, o.Timings = lan, filepath.Join(dir, "status.json"), dir, fastAttempts()
	o.OnUp = func(s Status) { mu.Lock(); ups = append(ups, s); mu.Unlock() }
	d, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	stop := runDaemon(t, d)
	ft := plane.next(t, 10*time.Second)
	waitState(t, d, StateUp, 10*time.Second)
	var st *Status
	for deadline := time.Now().Add(time.Second); ; time.Sleep(time.Millisecond) {
		if st, err = ReadStatus(filepath.Join(dir, "status.json")); err == nil && st.State == StateUp || time.Now().After(deadline) {
			break
		}
	}
	if st.State != StateUp || st.Broker != server || st.Transport != "udp" || st.TunnelMode != "v6udpv4" ||
		st.Interface != "gogoc" || st.ClientIPv6 == "" || st.RemoteEndpoint != server || st.PID != os.Getpid() || st.DataPlane != "userspace" {
		t.Fatalf("status file: %+v", st)
	}
	last, _ := os.ReadFile(filepath.Join(dir, "tsp-last-server.txt"))
	if want := "# gogoc: the configured server\n" + server + "\n"; string(last) != want {
		t.Fatalf("tsp-last-server.txt = %q, want %q", last, want)
	}

	for i, ev := range []func(){
		func() { ft.emit(tunnel.Event{Kind: tunnel.KeepaliveLost, Misses: 3}) },
		func() { ft.emit(tunnel.Event{Kind: tunnel.BrokerControl, Code: 310, Text: "310 TSP status error"}) },
		func() { d.Reconnect("test") },
	} {
		ev()
		ft = plane.next(t, 10*time.Second)
		waitState(t, d, StateUp, 10*time.Second)
		tr := d.Transitions()
		if n := tr[[2]State{StateLost, StateNegotiating}]; n != uint64(i+1) || tr[[2]State{StateLost, StateBackoff}] != 0 {
			t.Errorf("event %d: lost→negotiating %d times, lost→backoff %d; want %d and none (at once)", i, n, tr[[2]State{StateLost, StateBackoff}], i+1)
		}
	}
	stop()
	tr := d.Transitions()
	want := map[[2]State]uint64{
		{StateIdle, StateNegotiating}: 1, {StateNegotiating, StateUp}: 4, {StateUp, StateLost}: 3,
		{StateLost, StateNegotiating}: 3, {StateUp, StateStopped}: 1,
	}
	for k, v := range want {
		if tr[k] != v {
			t.Errorf("transition %s→%s counted %d, want %d (all: %v)", k[0], k[1], tr[k], v, tr)
		}
	}
	if got := lan.String(); got != "up gogoc,down,up gogoc,down,up gogoc,down,up gogoc,close" {
		t.Errorf("LAN calls %s", got)
	}
	st, _ = ReadStatus(filepath.Join(dir, "status.json"))
	if st.State != StateStopped || st.Reconnects != 3 || st.Interface != "" {
		t.Errorf("final status %+v", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ups) != 4 {
		t.Errorf("OnUp called %d times, want 4", len(ups))
	}
}

// TestSupervisorBackoff: an unreachable broker is retried after the
// back-off, never sooner than retry_delay, and a reconnect request cuts
// the wait short but not below one attempt per second. It waits for
// events, not for fixed times, so a slow machine only makes it longer.
func TestSupervisorBackoff(t *testing.T) {
	// A UDP port nobody listens on: ECONNREFUSED at once.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := pc.LocalAddr().String()
	pc.Close()
	rec := &recordingDial{}
	c := testConfig(server)
	const retry = 2 * time.Second // above the 1 s pace, so a cut-short wait shows
	c.RetryDelay, c.RetryDelayMax = retry, 2*retry
	o := testOptions(t, c, newFakePlane())
	o.Broker = dialBroker(rec.dial, logx.Discard())
	d, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	runDaemon(t, d)
	attempts := func(n int) []time.Time {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			at := rec.attempts()
			if len(at) >= n && d.Status().State == StateBackoff {
				return at
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d attempts and state %s after 30 s, want %d and backoff", len(at), d.Status().State, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	at := attempts(2)
	if gap := at[1].Sub(at[0]); gap < retry {
		t.Errorf("second attempt %v after the first, sooner than retry_delay %v", gap, retry)
	}
	d.Reconnect("test") // during the second wait, at least retry_delay long
	at = attempts(3)
	// Cut short: before the shortest back-off could end; but not sooner
	// than the one attempt per second.
	if gap := at[2].Sub(at[1]); gap < time.Second || gap >= retry {
		t.Errorf("after the reconnect request the attempt came %v after the previous one, want in [1 s, %v)", gap, retry)
	}
	if st := d.Status(); !strings.Contains(st.LastError, "refused") {
		t.Errorf("last error %q", st.LastError)
	}
}

// TestSupervisorRedirectList: a redirect to five brokers, three of them
// dead, is measured, ordered (live ones by distance first), written to
// tsp-broker-list.txt, and the nearest live broker is used. When the
// configured broker then cannot be reached, the daemon fails over through
// the list file.
func TestSupervisorRedirectList(t *testing.T) {
	// Redirect entries carry no port: every broker listens on 3653, each
	// on its own loopback address (unique to this process).
	base := loopbackBase()
	near, nearS := startBroker(t, testbroker.Config{}, base+"2:3653")
	_, farS := startBroker(t, testbroker.Config{}, base+"3:3653")
	nearS, farS = strings.TrimSuffix(nearS, ":3653"), strings.TrimSuffix(farS, ":3653")
	d1, d2, d3 := base+"4", base+"5", base+"6" // nobody listens there
	list := []string{d1, farS, d2, nearS, d3}
	var brokers []testbroker.Broker
	for _, s := range list {
		brokers = append(brokers, testbroker.Broker{Kind: "ipv4", Address: s})
	}
	redir, redirS := startBroker(t, testbroker.Config{Redirect: brokers}, "127.0.0.1:0")
	rtt := map[string]time.Duration{nearS: 5 * time.Millisecond, farS: 20 * time.Millisecond}
	probe := func(ctx context.Context, s string) (time.Duration, bool, error) {
		if r, ok := rtt[s]; ok {
			return r, true, nil
		}
		<-ctx.Done() // dead brokers never answer
		return 0, true, tsp.ErrNoReply
	}
	dir := t.TempDir()
	plane := newFakePlane()
	o := testOptions(t, testConfig(redirS), plane)
	o.StatusFile, o.StateDir, o.Log, o.Timings = filepath.Join(dir, "status.json"), dir, testLog(t), fastAttempts()
	o.Broker = probeBroker{NewTSPBroker(Params, o.Log), probe}
	d, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	runDaemon(t, d)
	plane.next(t, 10*time.Second)
	waitState(t, d, StateUp, 10*time.Second)
	t.Logf("redirect of 5 (3 dead): up via %s after %v", d.Status().Broker, time.Since(start).Round(time.Millisecond))
	if got := d.Status().Broker; got != nearS {
		t.Fatalf("using %s, want the nearest %s", got, nearS)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "tsp-broker-list.txt"))
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	// The redirecting broker is on loopback: the list says so, and its
	// loopback entries stay usable when read back.
	if len(lines) != 6 || lines[0] != "# gogoc: named by a broker's redirect; same_host=yes" || lines[1] != nearS || lines[2] != farS {
		t.Fatalf("tsp-broker-list.txt:\n%s\nwant the origin line, %s, %s, then the three dead ones", raw, nearS, farS)
	}
	last, _ := os.ReadFile(filepath.Join(dir, "tsp-last-server.txt"))
	if string(last) != "# gogoc: named by a broker's redirect; same_host=yes\n"+nearS+"\n" {
		t.Fatalf("tsp-last-server.txt = %q", last)
	}

	// The configured broker and the one in use die: the list file leads
	// to the far one.
	_ = redir.Close()
	_ = near.Close()
	d.Reconnect("test")
	plane.next(t, 10*time.Second)
	waitState(t, d, StateUp, 10*time.Second)
	if got := d.Status().Broker; got != farS {
		t.Fatalf("after failover using %s, want %s", got, farS)
	}
}

// TestSupervisorAlwaysUseSameServer: with the option, the last server
// recorded is used instead of the configured one.
func TestSupervisorAlwaysUseSameServer(t *testing.T) {
	_, server := startBroker(t, testbroker.Config{}, "127.0.0.1:0")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "last"), []byte("# comment\n# gogoc: the configured server\n"+server+"\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := testConfig("192.0.2.99") // unusable: must not be tried
	c.AlwaysUseSameServer = true
	c.LastServer = "last"
	plane := newFakePlane()
	o := testOptions(t, c, plane)
	o.StatusFile, o.StateDir = filepath.Join(dir, "s.json"), dir
	d, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	runDaemon(t, d)
	plane.next(t, 10*time.Second)
	waitState(t, d, StateUp, 10*time.Second)
	if got := d.Status().Broker; got != server {
		t.Fatalf("broker %s, want the last server %s", got, server)
	}
}

// TestSupervisorReload: a change of retry timing is applied without a new
// tunnel; a change of the tunnel mode renegotiates. The daemon's own log
// says when it took each reload, so nothing waits a fixed time.
func TestSupervisorReload(t *testing.T) {
	_, server := startBroker(t, testbroker.Config{}, "127.0.0.1:0")
	plane := newFakePlane()
	c := testConfig(server)
	o := testOptions(t, c, plane)
	o.Timings = fastAttempts()
	tap, log := newLogTap(t)
	o.Log = log
	d, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	runDaemon(t, d)
	plane.next(t, 10*time.Second)
	waitState(t, d, StateUp, 10*time.Second)

	same := *c
	same.RetryDelayMax = 60 * time.Second
	same.LogStderr = 3
	d.Reload(&same)
	tap.wait(t, "configuration reloaded", 1)
	if !strings.Contains(tap.String(), "configuration reloaded renegotiate=false") || plane.built.Load() != 1 || d.Status().State != StateUp {
		t.Fatalf("a retry/log change: %d tunnels built, state %s, log:\n%s", plane.built.Load(), d.Status().State, tap.String())
	}
	changed := same
	changed.TunnelMode = config.TunnelV6AnyV4
	d.Reload(&changed)
	ft := plane.next(t, 10*time.Second)
	if !strings.Contains(tap.String(), "configuration reloaded renegotiate=true") {
		t.Errorf("log:\n%s", tap.String())
	}
	if ft.typ != tunnel.V6UDPV4 && ft.typ != tunnel.V6V4 {
		t.Fatalf("tunnel type %v", ft.typ)
	}
	waitState(t, d, StateUp, 10*time.Second)
}

// TestSupervisorLifetime: the tunnel is renegotiated before the offer's
// lifetime runs out.
func TestSupervisorLifetime(t *testing.T) {
	// 4 s: renegotiation is due at 3.6 s, which leaves 0.4 s for a
	// negotiation of a few milliseconds on a slow machine.
	_, server := startBroker(t, testbroker.Config{Lifetime: 4}, "127.0.0.1:0")
	plane := newFakePlane()
	o := testOptions(t, testConfig(server), plane)
	o.Timings = fastAttempts()
	d, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	runDaemon(t, d)
	plane.next(t, 10*time.Second)
	first := time.Now()
	plane.next(t, 10*time.Second)
	if el := time.Since(first); el < 3*time.Second || el >= 4*time.Second {
		t.Fatalf("renegotiated %v after a 4 s offer, want before it ends (at 90%%)", el)
	}
}

// TestSupervisorRefusalNotFailedOver: a broker that answers and refuses
// (bad credentials) is not a reason to try the list; it backs off.
func TestSupervisorRefusalNotFailedOver(t *testing.T) {
	_, server := startBroker(t, testbroker.Config{Auth: []string{"PLAIN"}, Users: map[string]string{"u": "right"}}, "127.0.0.1:0")
	c := testConfig(server)
	c.AuthMethod, c.UserID, c.Password = config.AuthPlain, "u", "wrong"
	d, err := New(testOptions(t, c, newFakePlane()))
	if err != nil {
		t.Fatal(err)
	}
	runDaemon(t, d)
	waitState(t, d, StateBackoff, 3*time.Second)
	if le := d.Status().LastError; !strings.Contains(le, "300") || strings.Contains(le, "wrong") {
		t.Fatalf("last error %q", le)
	}
}

// TestSupervisorTCPFallback: the broker's UDP port swallows everything
// (no answer, no ICMP) while TCP works. For v6anyv4 the tunnel must come
// up over TCP just after tcp_fallback_delay (1.5 s), not after the old
// client's ≈6 s of RUDP retries; with tcp_fallback_delay 0, at once.
func TestSupervisorTCPFallback(t *testing.T) {
	for _, delay := range []time.Duration{config.DefaultTCPFallbackDelay, 0} {
		t.Run(delay.String(), func(t *testing.T) { testTCPFallback(t, delay) })
	}
}

func testTCPFallback(t *testing.T, delay time.Duration) {
	el, transport, log := tcpFallback(t, delay)
	t.Logf("UDP silent: up over %s after %v; tcp_fallback_delay %v; the old client waited ≈6 s (figure: go test -bench TCPFallback)",
		transport, el.Round(time.Millisecond), delay)
	// Order, not time: TCP was started beside UDP by the fallback timer
	// (before RUDP gave up, which takes 7 s), and not before the delay.
	if transport != "tcp" || el < delay || !strings.Contains(log, "no answer over UDP yet, trying TCP beside it") ||
		strings.Contains(log, "no answer over UDP, trying TCP") {
		t.Fatalf("transport %s after %v, want tcp, started beside a UDP attempt still running, not before %v; log:\n%s", transport, el, delay, log)
	}
}

// BenchmarkTCPFallback: a broker whose UDP port swallows everything, for
// v6anyv4: the time to a tunnel over TCP with the default
// tcp_fallback_delay, beside the old client's rule (TCP only once RUDP
// gave up) measured in the same run.
func BenchmarkTCPFallback(b *testing.B) {
	var gogoc, old time.Duration
	for range b.N {
		el, _, _ := tcpFallback(b, config.DefaultTCPFallbackDelay)
		gogoc += el
		el, _, _ = tcpFallback(b, -1)
		old += el
	}
	b.ReportMetric(float64(gogoc.Milliseconds())/float64(b.N), "ms-to-tcp")
	b.ReportMetric(float64(old.Milliseconds())/float64(b.N), "ms-to-tcp-after-udp-gives-up")
	b.ReportMetric(float64(gogoc)/float64(old), "ratio")
	b.ReportMetric(0, "ns/op")
}

// tcpFallback runs a daemon for v6anyv4 against a broker whose UDP port is
// silent, with tcp_fallback_delay delay (negative: TCP only once UDP gave
// up, as the old client), and returns the time to the tunnel, its
// transport and the log.
func tcpFallback(t testing.TB, delay time.Duration) (time.Duration, string, string) {
	b, err := testbroker.New(testbroker.Config{Log: logx.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	_, tcpAddr, err := b.Start("", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	silent, err := net.ListenPacket("udp", "127.0.0.1:0") // bound, never read
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	var nd tsp.NetDialer
	dial := func(ctx context.Context, _ string, n tsp.Network) (tsp.Transport, error) {
		if n == tsp.UDP {
			return nd.Dial(ctx, silent.LocalAddr().String(), n)
		}
		return nd.Dial(ctx, tcpAddr.String(), n)
	}
	c := testConfig("broker.test")
	c.TunnelMode = config.TunnelV6AnyV4
	c.TCPFallbackDelay = delay
	plane := newFakePlane()
	o := testOptions(t, c, plane)
	tap := &logTap{}
	o.Log = logx.Writer(lockedWriter{&tap.mu, &tap.buf}, logx.LevelDebug)
	o.Broker = dialBroker(dial, o.Log)
	d, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	stop := runDaemon(t, d)
	plane.next(t, 60*time.Second)
	el := time.Since(start)
	waitState(t, d, StateUp, 10*time.Second)
	transport := d.Status().Transport
	stop()
	return el, transport, tap.String()
}

// TestNewRefusesMissingParts: no part and no timing has a hidden default.
func TestNewRefusesMissingParts(t *testing.T) {
	ok := testOptions(t, testConfig("192.0.2.1"), newFakePlane())
	if _, err := New(ok); err != nil {
		t.Fatalf("complete options refused: %v", err)
	}
	for name, mutate := range map[string]func(*Options){
		"no config":          func(o *Options) { o.Config = nil },
		"no broker":          func(o *Options) { o.Broker = nil },
		"no tunnel builder":  func(o *Options) { o.Tunnels = nil },
		"no state dir":       func(o *Options) { o.StateDir = "" },
		"zero timings":       func(o *Options) { o.Timings = Timings{} },
		"zero attempt limit": func(o *Options) { o.Timings.AttemptTimeout = 0 },
		"WAN retry inverted": func(o *Options) { o.Timings.WANRetryMax = o.Timings.WANRetryMin / 2 },
	} {
		o := ok
		mutate(&o)
		if _, err := New(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestSupervisorAutoRetryOff: with auto_retry_connect=no a tunnel that
// failed (keepalive loss) is renegotiated only after a back-off of at least
// retry_delay (a lower bound, which load cannot break), while a reconnect
// the operator asks for stays immediate (lost → negotiating, no back-off
// between: an order).
func TestSupervisorAutoRetryOff(t *testing.T) {
	_, server := startBroker(t, testbroker.Config{}, "127.0.0.1:0")
	plane := newFakePlane()
	c := testConfig(server)
	c.AutoRetryConnect = false
	c.RetryDelay, c.RetryDelayMax = time.Second, time.Second
	o := testOptions(t, c, plane)
	o.Timings = fastAttempts()
	d, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	runDaemon(t, d)
	ft := plane.next(t, 10*time.Second)
	waitState(t, d, StateUp, 10*time.Second)

	lostBackoff, lostNeg := [2]State{StateLost, StateBackoff}, [2]State{StateLost, StateNegotiating}
	start := time.Now()
	ft.emit(tunnel.Event{Kind: tunnel.KeepaliveLost, Misses: 3})
	plane.next(t, 10*time.Second)
	if el := time.Since(start); el < time.Second {
		t.Errorf("renegotiated %v after a keepalive loss, want the back-off of at least 1s first", el)
	}
	waitState(t, d, StateUp, 10*time.Second)
	if tr := d.Transitions(); tr[lostBackoff] != 1 || tr[lostNeg] != 0 {
		t.Errorf("after the keepalive loss: lost→backoff %d, lost→negotiating %d; want 1, 0", tr[lostBackoff], tr[lostNeg])
	}

	d.Reconnect("test")
	plane.next(t, 10*time.Second)
	waitState(t, d, StateUp, 10*time.Second)
	if tr := d.Transitions(); tr[lostBackoff] != 1 || tr[lostNeg] != 1 {
		t.Errorf("after the requested reconnect: lost→backoff %d, lost→negotiating %d; want 1, 1 (at once)", tr[lostBackoff], tr[lostNeg])
	}
}

// flakyWAN fails its first calls at once, as a subscription the kernel
// refuses would; the next call reports one change once it has a target.
type flakyWAN struct {
	fails int
	mu    sync.Mutex
	calls []time.Time
}

func (f *flakyWAN) Watch(ctx context.Context, targets <-chan WANTarget, report func(WANEvent)) error {
	f.mu.Lock()
	f.calls = append(f.calls, time.Now())
	n := len(f.calls)
	f.mu.Unlock()
	if n <= f.fails {
		return fmt.Errorf("subscription %d lost", n)
	}
	var t WANTarget
	select {
	case <-ctx.Done():
		return nil
	case t = <-targets:
	}
	report(WANEvent{Gen: t.Gen, Changed: true, Reason: "test path changed"})
	<-ctx.Done()
	return nil
}

func (f *flakyWAN) started() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.calls...)
}

// TestSupervisorWANWatchRestarts: a WAN watch that ends is started again
// after a back-off (logged each time), and the one that runs then still
// gets the broker's address and has its change acted on.
func TestSupervisorWANWatchRestarts(t *testing.T) {
	_, server := startBroker(t, testbroker.Config{}, "127.0.0.1:0")
	plane := newFakePlane()
	var mu sync.Mutex
	var logs bytes.Buffer
	o := testOptions(t, testConfig(server), plane)
	o.Timings = fastAttempts()
	o.Timings.WANRetryMin, o.Timings.WANRetryMax = 50*time.Millisecond, 200*time.Millisecond
	o.Log = logx.Writer(lockedWriter{&mu, &logs}, logx.LevelWarn)
	wan := &flakyWAN{fails: 2}
	o.WAN = wan
	d, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	runDaemon(t, d)
	plane.next(t, 5*time.Second)
	plane.next(t, 10*time.Second) // renegotiated for the change the third watch saw
	waitState(t, d, StateUp, 5*time.Second)
	calls := wan.started()
	if len(calls) != 3 {
		t.Fatalf("watch started %d times, want 3 (two failures, then one that stays)", len(calls))
	}
	for i := 1; i < len(calls); i++ {
		if gap := calls[i].Sub(calls[i-1]); gap < o.Timings.WANRetryMin {
			t.Errorf("watch %d started %v after the previous one ended, before the back-off of at least %v", i+1, gap, o.Timings.WANRetryMin)
		}
	}
	mu.Lock()
	text := logs.String()
	mu.Unlock()
	if n := strings.Count(text, "WAN watch stopped"); n != 2 || !strings.Contains(text, "subscription 2 lost") ||
		!strings.Contains(text, "WAN change: test path changed") {
		t.Errorf("log (want two restarts and the change):\n%s", text)
	}
}
