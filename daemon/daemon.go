package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/jsklein/gogoc/config"
	"github.com/jsklein/gogoc/internal/caps"
	"github.com/jsklein/gogoc/internal/logx"
	"github.com/jsklein/gogoc/lan"
	"github.com/jsklein/gogoc/router"
	"github.com/jsklein/gogoc/tsp"
	"github.com/jsklein/gogoc/tunnel"
)

// LAN is the router-mode LAN side (package lan's *LAN).
type LAN interface {
	// Up applies the delegated prefix and advertises a default router.
	Up(ctx context.Context, u lan.Uplink, tunIf string) error
	// Down: the tunnel is lost; stop advertising a default router.
	Down()
	// Close sends the final advertisement and removes everything.
	Close() error
}

// TunnelBuilder builds the data plane for an accepted offer.
type TunnelBuilder interface {
	Build(ctx context.Context, cfg tunnel.Config) (tunnel.Tunnel, error)
	// Plane names the data plane of a tunnel it built, for the status.
	Plane(t tunnel.Tunnel) string
}

// SystemTunnels is the production TunnelBuilder: tunnel.New, which honours
// data_plane (kernel sit/fou/ip6tnl when the kernel has them under auto,
// else the userspace engine).
type SystemTunnels struct{}

// Build implements TunnelBuilder.
func (SystemTunnels) Build(ctx context.Context, cfg tunnel.Config) (tunnel.Tunnel, error) {
	return tunnel.New(ctx, cfg)
}

// Plane implements TunnelBuilder.
func (SystemTunnels) Plane(t tunnel.Tunnel) string { return tunnel.PlaneOf(t) }

// Timings are the supervisor's own timers (the configuration's retry
// delays and keepalive are separate). DefaultTimings gives the production
// values; every field must be positive.
type Timings struct {
	// MinAttemptInterval: at most one attempt per broker in this time.
	MinAttemptInterval time.Duration
	// StableAfter: a tunnel that stayed up this long resets the back-off.
	StableAfter time.Duration
	// AttemptTimeout bounds one negotiation with one broker, redirects
	// included. RUDP alone may retry one exchange for about a minute on a
	// bad path, and a fresh attempt does better.
	AttemptTimeout time.Duration
	// StatusRefresh is how often the status file is rewritten while up,
	// for the keepalive figures; a longer period wakes the CPU less.
	StatusRefresh time.Duration
	// WANRetryMin and WANRetryMax bound the back-off before a WAN watch
	// that ended is started again.
	WANRetryMin, WANRetryMax time.Duration
	// WANSettle: a changed path to the broker is acted on once no further
	// change came for this long, so a burst (an address replaced, a link
	// flapping, a DHCP renewal) costs one renegotiation, made on the path
	// it ended in, and a tunnel whose path came back as it was is kept.
	WANSettle time.Duration
}

// DefaultTimings are the production timings.
func DefaultTimings() Timings {
	return Timings{
		MinAttemptInterval: time.Second,
		StableAfter:        60 * time.Second,
		AttemptTimeout:     20 * time.Second,
		StatusRefresh:      30 * time.Second,
		WANRetryMin:        time.Second,
		WANRetryMax:        time.Minute,
		WANSettle:          500 * time.Millisecond,
	}
}

func (t Timings) check() error {
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"MinAttemptInterval", t.MinAttemptInterval}, {"StableAfter", t.StableAfter}, {"AttemptTimeout", t.AttemptTimeout},
		{"StatusRefresh", t.StatusRefresh}, {"WANRetryMin", t.WANRetryMin}, {"WANRetryMax", t.WANRetryMax},
		{"WANSettle", t.WANSettle}} {
		if f.d <= 0 {
			return fmt.Errorf("daemon: Timings.%s is %v; start from DefaultTimings()", f.name, f.d)
		}
	}
	if t.WANRetryMax < t.WANRetryMin {
		return fmt.Errorf("daemon: Timings.WANRetryMax %v is below WANRetryMin %v", t.WANRetryMax, t.WANRetryMin)
	}
	return nil
}

// Options configure a Daemon. Config, Broker, Tunnels, Timings and
// StateDir are required; LAN, WAN and OnUp are parts a daemon may lack,
// and nil means it has none.
type Options struct {
	Config *config.Config
	// Broker negotiates tunnels and measures brokers: NewTSPBroker.
	Broker Broker
	// Tunnels builds the data plane: SystemTunnels.
	Tunnels TunnelBuilder
	Log     *logx.Logger // logx.Discard() (nil) logs nothing
	Timings Timings
	// StatusFile is the status JSON kept up to date; "" keeps none.
	StatusFile string
	// StateDir holds relative broker_list and last_server files
	// (production: the status file's directory).
	StateDir string

	LAN LAN // router mode's LAN side
	// WAN watches the path to the broker; without one, a WAN change is
	// noticed by the keepalive only.
	WAN WANWatcher
	// OnUp is called with the status of each tunnel that came up.
	OnUp func(Status)
}

// DefaultRTO is the first and the smallest RUDP retransmission timeout:
// 1 s as RFC 6298 recommends, where the old client used 2 s for both. On a
// lossy path this halves the time to a tunnel; the timeout still adapts to
// the measured round trip, so a slow broker gets no spurious copies.
const DefaultRTO = time.Second

// Daemon supervises one tunnel. Create it with New and call Run once.
type Daemon struct {
	o   Options
	t   Timings
	log *logx.Logger

	reconnect chan string
	reload    chan *config.Config
	wan       chan WANEvent // the latest one only (reportWAN)
	targets   chan WANTarget

	// Owned by the Run goroutine.
	cfg         *config.Config
	backoff     Backoff
	lastAttempt map[string]time.Time
	current     target // broker of the last tunnel; tried first
	pinned      target // always_use_same_server: this broker only
	wanGen      uint64 // of the last WANTarget sent; older events are stale

	mu          sync.Mutex
	status      Status
	transitions map[[2]State]uint64
}

// New checks the options and prepares a daemon in state idle.
func New(o Options) (*Daemon, error) {
	switch {
	case o.Config == nil:
		return nil, errors.New("daemon: Options.Config is required")
	case o.Broker == nil:
		return nil, errors.New("daemon: Options.Broker is required")
	case o.Tunnels == nil:
		return nil, errors.New("daemon: Options.Tunnels is required")
	case o.StateDir == "":
		return nil, errors.New("daemon: Options.StateDir is required")
	}
	if err := o.Timings.check(); err != nil {
		return nil, err
	}
	d := &Daemon{
		o:           o,
		t:           o.Timings,
		log:         o.Log,
		reconnect:   make(chan string, 1),
		reload:      make(chan *config.Config, 1),
		wan:         make(chan WANEvent, 1),
		targets:     make(chan WANTarget, 1),
		cfg:         o.Config,
		lastAttempt: map[string]time.Time{},
		transitions: map[[2]State]uint64{},
	}
	d.setBackoff()
	now := stamp(time.Now())
	d.status = Status{State: StateIdle, Since: now, Updated: now, PID: os.Getpid()}
	return d, nil
}

func (d *Daemon) setBackoff() {
	d.backoff.Min = max(d.cfg.RetryDelay, d.t.MinAttemptInterval)
	d.backoff.Max = max(d.cfg.RetryDelayMax, d.backoff.Min)
}

// Reconnect asks for a new tunnel now (SIGUSR1, `gogoc reconnect`, the
// OpenWrt hotplug script). It never blocks.
func (d *Daemon) Reconnect(reason string) {
	select {
	case d.reconnect <- reason:
	default: // one pending request is enough
	}
}

// Reload hands over a re-read configuration (SIGHUP). The tunnel is
// renegotiated only if something that shapes it changed.
func (d *Daemon) Reload(c *config.Config) {
	for {
		select {
		case d.reload <- c:
			return
		default:
		}
		select { // replace a pending older one
		case <-d.reload:
		default:
		}
	}
}

// Status returns a copy of the current status.
func (d *Daemon) Status() Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.status
	if s.Keepalive != nil {
		k := *s.Keepalive
		s.Keepalive = &k
	}
	return s
}

// Transitions returns how often each state change happened.
func (d *Daemon) Transitions() map[[2]State]uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[[2]State]uint64, len(d.transitions))
	for k, v := range d.transitions {
		out[k] = v
	}
	return out
}

// Run keeps a tunnel up until ctx ends, then tears everything down (the
// LAN side's final advertisement included), writes state stopped and
// returns nil. It returns an error, after the same tear-down, only when
// an attempt failed for want of a capability (caps.MissingError).
func (d *Daemon) Run(ctx context.Context) error {
	d.startup()
	if d.o.WAN != nil {
		wctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.watchWAN(wctx)
		}()
		defer wg.Wait()
		defer stop()
	}
	defer d.stop()
	reason := "start" // the first transition writes the status file
	for ctx.Err() == nil {
		d.transition(StateNegotiating, reason)
		s, err := d.connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if c, ok := caps.IsMissing(err); ok {
				// Trying again cannot help: the process lacks a
				// capability, and only a restart with it can.
				d.setError(err)
				d.log.Error("giving up: a capability is missing", "needs", c.String(), "err", err)
				return err
			}
			wait := d.backoff.Next()
			d.setError(err)
			d.transition(StateBackoff, fmt.Sprintf("%v; next attempt in %v", err, wait.Round(time.Millisecond)))
			reason = d.waitBackoff(ctx, wait)
			continue
		}
		d.setUp(s)
		var fault bool
		reason, fault = d.hold(ctx, s)
		stayed := time.Since(s.upAt)
		d.closeSession(s, ctx.Err() == nil)
		if ctx.Err() != nil {
			break
		}
		if stayed >= d.t.StableAfter {
			d.backoff.Reset()
		}
		d.mu.Lock()
		d.status.Reconnects++
		d.mu.Unlock()
		d.transition(StateLost, reason)
		if fault && !d.cfg.AutoRetryConnect {
			// auto_retry_connect=no (spec §9): a tunnel that failed is
			// not renegotiated at once but after a back-off, like a
			// failed attempt. Requested reconnects stay immediate.
			wait := d.backoff.Next()
			d.transition(StateBackoff, fmt.Sprintf("auto_retry_connect off; next attempt in %v", wait.Round(time.Millisecond)))
			reason = d.waitBackoff(ctx, wait)
		}
	}
	return nil
}

// watchWAN runs the WAN watch until ctx ends and starts it again, after a
// back-off, whenever it stops: without it a WAN change would be noticed by
// the keepalive only, for the rest of the process's life.
func (d *Daemon) watchWAN(ctx context.Context) {
	b := Backoff{Min: d.t.WANRetryMin, Max: d.t.WANRetryMax}
	for {
		start := time.Now()
		err := d.o.WAN.Watch(ctx, d.targets, d.reportWAN)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("ended without an error")
		}
		if time.Since(start) >= d.t.WANRetryMax {
			b.Reset() // it ran a good while: a new failure, not a loop
		}
		wait := b.Next()
		d.log.Warn("WAN watch stopped; starting it again", "err", err, "in", wait.Round(time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// target is a broker to try and who named it. A redirect target stays
// one when it is remembered (the broker in use, the last-server file, the
// broker list): it is dialled under the redirect rules (tsp.Origin).
type target struct {
	server string
	from   tsp.Origin
}

// own gives the configured server its origin, however t was found.
func (d *Daemon) own(t target) target {
	if t.server == d.cfg.Server {
		t.from = tsp.Origin{}
	}
	return t
}

// plainWithheld: auth_method plain sends the password only to the
// configured server, never to one a redirect named.
func (d *Daemon) plainWithheld(t target) bool {
	return t.from.Redirect && d.cfg.AuthMethod == config.AuthPlain
}

// reportWAN hands a WAN event to the Run goroutine without blocking; a
// newer event replaces one not read yet, as it describes the path since.
func (d *Daemon) reportWAN(ev WANEvent) {
	for {
		select {
		case d.wan <- ev:
			return
		default:
		}
		select {
		case <-d.wan:
		default:
		}
	}
}

// wanSettle follows the WAN events of the current tunnel (those of an
// earlier one are stale: its baseline is gone) and says when the path has
// settled. Changes restart the wait; in hold, a path back to the tunnel's
// own cancels it.
type wanSettle struct {
	d       *Daemon
	t       *time.Timer
	pending string // the change waited on; "" when none
}

func (d *Daemon) newWANSettle() *wanSettle {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &wanSettle{d: d, t: t}
}

// C fires once the path has been still for Timings.WANSettle.
func (w *wanSettle) C() <-chan time.Time { return w.t.C }

func (w *wanSettle) stop() { w.t.Stop() }

// event takes one WAN event; anyMove counts a path back to the baseline
// as a change too (no tunnel to keep: the path moved, worth a try).
func (w *wanSettle) event(ev WANEvent, anyMove bool) {
	d := w.d
	switch {
	case ev.Gen != d.wanGen:
		d.log.Debug("WAN event of an earlier tunnel ignored", "event", ev.Reason)
	case ev.Changed || anyMove:
		if w.pending == "" {
			d.log.Info("WAN path changed; waiting for it to settle", "event", ev.Reason, "settle", d.t.WANSettle)
		}
		w.pending = ev.Reason
		w.t.Reset(d.t.WANSettle)
	case w.pending != "":
		d.log.Info("WAN path back to the tunnel's; tunnel kept", "event", ev.Reason)
		w.pending = ""
		w.t.Stop()
	}
}

// startup reads the last server when always_use_same_server asks for it.
func (d *Daemon) startup() {
	d.pinned = target{}
	if !d.cfg.AlwaysUseSameServer || d.cfg.LastServer == "" {
		return
	}
	p := resolvePath(d.o.StateDir, d.cfg.LastServer)
	s, from, marked, err := readLastServer(p)
	switch {
	case err != nil:
		d.log.Warn("cannot read the last server; using the configured one", "file", p, "err", err)
	case s == "":
		d.log.Info("no last server recorded; using the configured one", "file", p)
	default:
		if _, _, err := tsp.ParseServer(s); err != nil {
			d.log.Warn("last server file holds no usable server; using the configured one", "file", p, "err", err)
			return
		}
		if !marked {
			// Written by a release that did not record who named it:
			// unless it is the configured server, it may be a
			// redirect's.
			from = tsp.Origin{Redirect: true}
		}
		t := d.own(target{s, from})
		if d.plainWithheld(t) {
			d.log.Warn("always_use_same_server: the last server was named by a redirect, and auth_method plain sends the password only to the configured server; using the configured one", "server", s)
			return
		}
		d.log.Info("always_use_same_server: staying on the last server", "server", s, "redirect", t.from.Redirect)
		d.pinned = t
	}
}

func (d *Daemon) stop() {
	if d.o.LAN != nil {
		if err := d.o.LAN.Close(); err != nil {
			d.log.Error("LAN side tear-down", "err", err)
		}
	}
	d.transition(StateStopped, "stopped")
}

// transition moves to state to, logs and counts it, and writes the status.
func (d *Daemon) transition(to State, reason string) {
	d.mu.Lock()
	from := d.status.State
	d.transitions[[2]State{from, to}]++
	now := time.Now()
	d.status.State = to
	d.status.Since = stamp(now)
	if to != StateUp {
		d.clearTunnelLocked()
	}
	d.mu.Unlock()
	level := logx.LevelInfo
	if to == StateLost || to == StateBackoff {
		level = logx.LevelWarn
	}
	d.log.Log(context.Background(), level, "state "+string(to), "from", string(from), "reason", reason)
	d.writeStatus()
}

func (d *Daemon) clearTunnelLocked() {
	s := &d.status
	s.Transport, s.TunnelMode, s.DataPlane, s.Interface = "", "", "", ""
	s.LocalEndpoint, s.RemoteEndpoint = "", ""
	s.ClientIPv4, s.ServerIPv4, s.ClientIPv6, s.ServerIPv6 = "", "", "", ""
	s.Prefix, s.LANPrefix, s.Keepalive = "", "", nil
}

func (d *Daemon) setError(err error) {
	d.mu.Lock()
	d.status.LastError = err.Error()
	d.mu.Unlock()
}

func (d *Daemon) writeStatus() {
	if d.o.StatusFile == "" {
		return
	}
	d.mu.Lock()
	d.status.Updated = stamp(time.Now())
	s := d.status
	d.mu.Unlock()
	if err := WriteStatus(d.o.StatusFile, &s); err != nil {
		d.log.Warn("status file", "err", err)
	}
}

// waitBackoff sleeps wait unless a reconnect request, a WAN change or a
// relevant configuration change cuts it short; it says why it ended.
func (d *Daemon) waitBackoff(ctx context.Context, wait time.Duration) string {
	t := time.NewTimer(wait)
	defer t.Stop()
	wan := d.newWANSettle()
	defer wan.stop()
	for {
		select {
		case <-ctx.Done():
			return "stopped"
		case <-t.C:
			return "back-off over"
		case r := <-d.reconnect:
			return "reconnect requested (" + r + ")"
		case ev := <-d.wan:
			wan.event(ev, true)
		case <-wan.C():
			return "WAN change: " + wan.pending
		case c := <-d.reload:
			if d.applyConfig(c) {
				return "configuration changed"
			}
		}
	}
}

// applyConfig takes a reloaded configuration and reports whether the
// tunnel must be renegotiated for it.
func (d *Daemon) applyConfig(c *config.Config) bool {
	relevant := tunnelRelevant(d.cfg, c)
	d.cfg = c
	d.setBackoff()
	d.log.Info("configuration reloaded", "renegotiate", relevant)
	if relevant {
		d.current = target{}
		d.startup()
	}
	return relevant
}

// liveKeys take effect without a new tunnel: retry timing, log settings,
// the status file, the WAN interface name, the TCP fallback delay, and
// two that change nothing a running daemon does.
var liveKeys = []string{
	"retry_delay", "retry_delay_max", "auto_retry_connect",
	"log_console", "log_stderr", "log_file", "log_syslog",
	"log_filename", "log_rotation", "log_rotation_size", "log_rotation_delete", "log_rotation_keep",
	"syslog_facility", "status_file", "wan_interface", "tcp_fallback_delay",
	"gogoc_dir", "enabled",
}

// tunnelRelevant reports whether b differs from a in anything that shapes
// the tunnel or the choice of broker: a key other than liveKeys. (Compared
// key by key rather than with reflect.DeepEqual, which costs the router
// binary some 6 KB compressed.)
func tunnelRelevant(a, b *config.Config) bool {
	for _, k := range config.Changed(a, b) {
		if !slices.Contains(liveKeys, k) {
			return true
		}
	}
	return false
}

// pace waits until server may be asked again (one attempt per
// Timings.MinAttemptInterval) and records the attempt.
func (d *Daemon) pace(ctx context.Context, server string) error {
	now := time.Now()
	if last, ok := d.lastAttempt[server]; ok {
		if w := d.t.MinAttemptInterval - now.Sub(last); w > 0 {
			t := time.NewTimer(w)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
			now = time.Now()
		}
	}
	for s, at := range d.lastAttempt { // keep the map to the recent ones
		if now.Sub(at) >= d.t.MinAttemptInterval {
			delete(d.lastAttempt, s)
		}
	}
	d.lastAttempt[server] = now
	return nil
}

// candidates lists the brokers to try, best guess first: the pinned one
// only; else the broker of the last tunnel, then the configured one.
func (d *Daemon) candidates() []target {
	if d.pinned.server != "" {
		return []target{d.pinned}
	}
	configured := target{server: d.cfg.Server}
	if d.current.server != "" && d.current.server != d.cfg.Server && !d.plainWithheld(d.current) {
		return []target{d.current, configured}
	}
	return []target{configured}
}

// connect negotiates with the candidates in turn, failing over only when a
// broker cannot be reached at all; after them, through the broker list
// file ordered by distance.
func (d *Daemon) connect(ctx context.Context) (*session, error) {
	tried := map[string]bool{}
	var lastErr error
	try := func(targets []target) (*session, bool, error) {
		for _, t := range targets {
			if tried[t.server] {
				continue
			}
			tried[t.server] = true
			if err := d.pace(ctx, t.server); err != nil {
				return nil, true, err
			}
			s, err := d.establish(ctx, t)
			if err == nil {
				return s, true, nil
			}
			lastErr = err
			if ctx.Err() != nil || !tsp.Unreachable(err) {
				return nil, true, err
			}
			d.log.Warn("broker unreachable", "server", t.server, "err", err)
		}
		return nil, false, lastErr
	}
	if s, done, err := try(d.candidates()); done {
		return s, err
	}
	if d.pinned.server != "" || d.cfg.BrokerList == "" {
		return nil, lastErr
	}
	path := resolvePath(d.o.StateDir, d.cfg.BrokerList)
	list, from, err := readBrokerList(path)
	if err != nil {
		d.log.Warn("broker list", "err", err)
	}
	var rest []string
	for _, s := range list {
		if !tried[s] {
			rest = append(rest, s)
		}
	}
	if len(rest) == 0 {
		return nil, lastErr
	}
	if d.plainWithheld(target{from: from}) {
		d.log.Info("broker list not used: its brokers were named by a redirect, and auth_method plain sends the password only to the configured server",
			"file", path, "entries", len(rest))
		return nil, lastErr
	}
	d.log.Info("failing over through the broker list", "file", path, "entries", len(rest))
	ordered, err := d.order(ctx, rest, from, false)
	if len(ordered) == 0 {
		return nil, cmp.Or(err, lastErr)
	}
	targets := make([]target, len(ordered))
	for i, s := range ordered {
		targets[i] = d.own(target{s, from})
	}
	s, _, err := try(targets)
	return s, err
}

// order measures and sorts brokers that from named; with write, the list
// file is replaced by the result (after a redirect of more than one
// broker). A broker whose address the policy refuses is left out (and
// never written); with none left, the error says why.
func (d *Daemon) order(ctx context.Context, servers []string, from tsp.Origin, write bool) ([]string, error) {
	c := d.cfg
	probe := func(ctx context.Context, server string) (time.Duration, bool, error) {
		return d.o.Broker.Probe(ctx, c, server, from)
	}
	ds := Measure(ctx, servers, probe, 100*time.Millisecond)
	out := make([]string, 0, len(ds))
	kept := ds[:0:0]
	var refused []error
	for _, x := range ds {
		if errors.Is(x.Err, tsp.ErrUnsafeOffer) {
			d.log.Warn("redirect target refused", "err", x.Err)
			refused = append(refused, x.Err)
			continue
		}
		out = append(out, x.Server)
		kept = append(kept, x)
	}
	if len(kept) > 0 {
		d.log.Info("broker distances (ms, with penalties)", "brokers", formatDistances(kept))
	}
	if write && len(servers) > 1 && len(out) > 0 && d.cfg.BrokerList != "" {
		p := resolvePath(d.o.StateDir, d.cfg.BrokerList)
		if err := writeBrokerList(p, out, from); err != nil {
			d.log.Warn("broker list", "err", err)
		}
	}
	if len(out) == 0 {
		return nil, errors.Join(refused...)
	}
	return out, nil
}

// detacher is *tsp.RUDP's hand-over of its socket to the data plane.
type detacher interface{ Detach() net.Conn }

// session is one established tunnel and what it came from.
type session struct {
	t       tunnel.Tunnel
	closer  io.Closer // the TSP socket (v6udpv4: the detached one)
	offer   *tsp.Offer
	server  string
	network tsp.Network
	local   netip.AddrPort
	remote  netip.AddrPort
	upAt    time.Time
}

// establish negotiates with server (following redirects), accepts, builds
// the tunnel and brings the LAN side up. On error nothing stays open.
func (d *Daemon) establish(ctx context.Context, t target) (_ *session, err error) {
	c := d.cfg
	nctx, cancel := context.WithTimeout(ctx, d.t.AttemptTimeout)
	defer cancel()
	order := func(ctx context.Context, s []string, from tsp.Origin) ([]string, error) {
		return d.order(ctx, s, from, true)
	}
	res, err := d.o.Broker.Negotiate(nctx, c, t.server, t.from, order)
	if err != nil {
		if ctx.Err() == nil && nctx.Err() != nil {
			err = fmt.Errorf("%w (no tunnel after %v)", tsp.ErrNoReply, d.t.AttemptTimeout)
		}
		return nil, fmt.Errorf("negotiate with %s: %w", t.server, err)
	}
	s := &session{closer: res.Session.T, offer: res.Offer, server: res.Server,
		network: res.Session.T.Network(), local: res.Session.T.LocalAddr(), remote: res.Session.T.RemoteAddr()}
	defer func() {
		if err != nil {
			if s.t != nil {
				_ = s.t.Close()
			}
			_ = s.closer.Close()
		}
	}()
	o := res.Offer
	if err := res.Session.Accept(ctx); err != nil {
		return nil, err
	}
	ifName := c.TunnelInterface(config.TunnelMode(o.Type))
	tcfg, err := tunnelConfig(o, s.local.Addr())
	if err != nil {
		return nil, err
	}
	tcfg.IfName, tcfg.DataPlane, tcfg.Log = ifName, string(c.DataPlane), d.log
	tcfg.DefaultRoute, tcfg.RouteMetric = true, c.RouteMetric
	tcfg.Keepalive.Misses, tcfg.Keepalive.Timeout = c.KeepaliveMisses, c.KeepaliveTimeout
	if o.Type == tsp.V6UDPV4 {
		// The tunnel shares the TSP socket: same 5-tuple, same NAT mapping.
		ru, ok := res.Session.T.(detacher)
		if !ok {
			return nil, fmt.Errorf("v6udpv4 offer over %s transport", res.Session.T.Network())
		}
		conn := ru.Detach()
		if conn == nil {
			return nil, errors.New("v6udpv4: TSP socket already closed")
		}
		s.closer, tcfg.Conn = conn, conn
	}
	if s.t, err = d.o.Tunnels.Build(ctx, tcfg); err != nil {
		return nil, fmt.Errorf("tunnel %s on %s: %w", o.Type, ifName, err)
	}
	if d.o.LAN != nil {
		if err := d.o.LAN.Up(ctx, uplink(o), s.t.Name()); err != nil {
			return nil, fmt.Errorf("LAN side: %w", err)
		}
	}
	s.upAt = time.Now()
	// The file changes only with the broker: reconnects to the same one
	// do not rewrite it.
	cur := d.own(target{res.Server, res.Origin})
	if c.LastServer != "" && cur != d.current {
		if err := writeLastServer(resolvePath(d.o.StateDir, c.LastServer), cur.server, cur.from); err != nil {
			d.log.Warn("last server file", "err", err)
		}
	}
	d.current = cur
	// The WAN watch follows the broker in use; what it said of the path
	// before is stale from now on.
	d.wanGen++
	select {
	case <-d.targets:
	default:
	}
	d.targets <- WANTarget{Broker: s.remote.Addr().Unmap(), Local: s.local.Addr().Unmap(), Gen: d.wanGen}
	return s, nil
}

// uplink maps an offer onto what the LAN side needs of it.
func uplink(o *tsp.Offer) lan.Uplink {
	return lan.Uplink{Delegated: o.Prefix, Lifetime: o.Lifetime, MTU: o.MTU, DNS: o.DNSServers}
}

func (d *Daemon) setUp(s *session) {
	o := s.offer
	plane := d.o.Tunnels.Plane(s.t)
	str := func(a netip.Addr) string {
		if !a.IsValid() {
			return ""
		}
		return a.String()
	}
	d.mu.Lock()
	st := &d.status
	st.Broker = s.server
	st.Transport = string(s.network)
	st.TunnelMode = string(o.Type)
	st.DataPlane = plane
	st.Interface = s.t.Name()
	st.LocalEndpoint = s.local.String()
	st.RemoteEndpoint = s.remote.String()
	st.ClientIPv4, st.ServerIPv4 = str(o.ClientV4), str(o.ServerV4)
	st.ClientIPv6, st.ServerIPv6 = str(o.ClientV6), str(o.ServerV6)
	if o.Prefix.IsValid() {
		st.Prefix = o.Prefix.String()
		if lp, err := router.LANPrefix(o.Prefix, d.cfg.SubnetID); err == nil && d.cfg.HostType == config.HostTypeRouter {
			st.LANPrefix = lp.String()
		}
	}
	st.LastError = ""
	d.mu.Unlock()
	d.refreshKeepalive(s)
	d.transition(StateUp, fmt.Sprintf("%s tunnel %s via %s (%s)", o.Type, s.t.Name(), s.server, s.network))
	if d.o.OnUp != nil {
		d.o.OnUp(d.Status())
	}
}

// refreshKeepalive copies the keepalive figures into the status and
// reports whether they changed (so an unchanged file is not rewritten).
func (d *Daemon) refreshKeepalive(s *session) bool {
	var next *Keepalive
	if s.offer.KeepaliveInterval > 0 {
		k := s.t.Stats().Keepalive
		next = &Keepalive{
			IntervalS: int(s.offer.KeepaliveInterval / time.Second),
			RTTMs:     float64(k.SmoothedRTT.Microseconds()) / 1000,
			Sent:      k.Sent,
			Lost:      k.TimedOut,
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	prev := d.status.Keepalive
	d.status.Keepalive = next
	return (prev == nil) != (next == nil) || (next != nil && *prev != *next)
}

// hold watches an up tunnel and returns why it must go; fault is true when
// the tunnel itself failed (keepalive, broker, I/O) rather than being asked
// to go.
func (d *Daemon) hold(ctx context.Context, s *session) (reason string, fault bool) {
	var expiry <-chan time.Time
	if lt := s.offer.Lifetime; lt > 0 {
		margin := min(lt/10, 5*time.Minute)
		t := time.NewTimer(lt - margin)
		defer t.Stop()
		expiry = t.C
	}
	// Only the keepalive figures change while up: without keepalive
	// nothing needs rewriting, and the daemon sleeps until an event.
	var refresh <-chan time.Time
	if s.offer.KeepaliveInterval > 0 {
		t := time.NewTicker(d.t.StatusRefresh)
		defer t.Stop()
		refresh = t.C
	}
	wan := d.newWANSettle()
	defer wan.stop()
	for {
		select {
		case <-ctx.Done():
			return "stopped", false
		case ev, ok := <-s.t.Events():
			if !ok {
				return "tunnel closed", true
			}
			switch ev.Kind {
			case tunnel.KeepaliveLost, tunnel.BrokerControl, tunnel.IOError:
				d.setError(errors.New(ev.String()))
				return ev.String(), true
			default:
				d.log.Info("tunnel event", "event", ev.String())
				d.refreshKeepalive(s)
				d.writeStatus()
			}
		case r := <-d.reconnect:
			return "reconnect requested (" + r + ")", false
		case ev := <-d.wan:
			wan.event(ev, false)
		case <-wan.C():
			return "WAN change: " + wan.pending, false
		case c := <-d.reload:
			if d.applyConfig(c) {
				return "configuration changed", false
			}
		case <-expiry:
			return fmt.Sprintf("offer lifetime of %v ends soon", s.offer.Lifetime), false
		case <-refresh:
			if d.refreshKeepalive(s) {
				d.writeStatus()
			}
		}
	}
}

// closeSession takes the tunnel down; lost tells the LAN side to stop
// advertising a default router (on stop, LAN.Close does more).
func (d *Daemon) closeSession(s *session, lost bool) {
	if lost && d.o.LAN != nil {
		d.o.LAN.Down()
	}
	if err := s.t.Close(); err != nil {
		d.log.Error("tunnel tear-down", "err", err)
	}
	if err := s.closer.Close(); err != nil {
		d.log.Debug("tsp socket close", "err", err)
	}
}

// Params maps the configuration onto the request and credentials, without
// a prompt for unknown server keys (a daemon has no terminal). The command
// adds its prompt on top of it.
func Params(c *config.Config) (tsp.Request, tsp.Credentials) {
	req := tsp.Request{
		Type:              tsp.TunnelType(c.TunnelMode),
		ClientV4:          c.ClientV4,
		ClientV6:          c.ClientV6,
		Proxy:             c.ProxyClient,
		Keepalive:         c.Keepalive,
		KeepaliveInterval: int(c.KeepaliveInterval / time.Second),
		Router:            c.HostType == config.HostTypeRouter,
		PrefixLen:         c.PrefixLen,
		DNSServers:        c.DNSServers,
	}
	creds := tsp.Credentials{Method: tsp.AuthMethod(c.AuthMethod), UserID: c.UserID, Password: c.Password, Server: c.Server,
		KnownKeys: c.KnownKeys, KeyPolicy: tsp.KeyPolicy(c.ServerKeyPolicy)}
	return req, creds
}
