package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/jsklein/gogoc/internal/logx"
	"github.com/jsklein/gogoc/internal/rtlink"
)

// wanDebounce lets a burst of netlink messages (an address replaced, a
// DHCP renewal touching routes) pass before the route is looked up, so
// one lookup serves the burst. When to act on a change is the daemon's
// decision (Timings.WANSettle).
const wanDebounce = 50 * time.Millisecond

// path is what the kernel would use to reach the broker.
type path struct {
	ok       bool
	src, gw  netip.Addr
	linkIdx  int
	errorMsg string
}

func (p path) String() string {
	if !p.ok {
		return "no route (" + p.errorMsg + ")"
	}
	return fmt.Sprintf("src %v via %v dev #%d", p.src, p.gw, p.linkIdx)
}

// same compares the route, not the wording of an error.
func (p path) same(q path) bool {
	return p.ok == q.ok && p.src == q.src && p.gw == q.gw && p.linkIdx == q.linkIdx
}

func routeTo(h *rtlink.Handle, dst netip.Addr) path {
	r, err := h.RouteGet(dst)
	if err != nil {
		return path{errorMsg: err.Error()}
	}
	return path{ok: true, src: r.Src.Unmap(), gw: r.Gw.Unmap(), linkIdx: r.Index}
}

// NetlinkWAN is the production WANWatcher: it subscribes to the kernel's
// link, address and route notifications of the current network namespace
// and looks the route to the broker up after each burst of them. The
// target, its baseline and the path last seen outlive a failed Watch, so a
// Watch started again reports what changed while none ran. Build it with
// NewNetlinkWAN; one Watch may run at a time.
type NetlinkWAN struct {
	// Buffer is the receive buffer the subscription asks for, in bytes.
	Buffer int
	Log    *logx.Logger

	target WANTarget
	base   path // when the target came
	last   path // last looked up
}

// changed: now is not the path the target's tunnel was built on.
func (w *NetlinkWAN) changed(now path) bool {
	return !now.same(w.base) || !w.fits(now)
}

// fits: the tunnel's source address is the one the route uses.
func (w *NetlinkWAN) fits(now path) bool {
	l := w.target.Local
	return !l.IsValid() || now.ok && (!now.src.IsValid() || now.src == l)
}

// NewNetlinkWAN returns a NetlinkWAN with rtlink.DefaultWatchBuffer.
func NewNetlinkWAN(log *logx.Logger) *NetlinkWAN {
	return &NetlinkWAN{Buffer: rtlink.DefaultWatchBuffer, Log: log}
}

// Watch implements WANWatcher.
func (w *NetlinkWAN) Watch(ctx context.Context, targets <-chan WANTarget, report func(WANEvent)) error {
	h, err := rtlink.NewHandle()
	if err != nil {
		return fmt.Errorf("wan watch: netlink: %w", err)
	}
	defer h.Close()
	done := make(chan struct{})
	defer close(done)
	subErr := make(chan error, 1)
	sub, err := rtlink.WatchChanges(done, w.Buffer, func(err error) { subErr <- err })
	if err != nil {
		return fmt.Errorf("wan watch: %w", err)
	}
	w.Log.Debug("WAN watch subscribed", "receive_buffer", sub.Buffer)
	var settle <-chan time.Time
	kick := func() {
		if settle == nil {
			settle = time.After(wanDebounce)
		}
	}
	if w.target.Broker.IsValid() {
		kick() // started again: compare with what the last watch saw
	}
	var overruns uint64
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-subErr:
			return fmt.Errorf("wan watch: %w", err)
		case t := <-targets:
			w.target = t
			w.base = routeTo(h, t.Broker)
			w.last = w.base
			if !w.fits(w.base) {
				report(WANEvent{Gen: t.Gen, Changed: true,
					Reason: fmt.Sprintf("path to %v moved while the tunnel from %v was built: %v", t.Broker, t.Local, w.base)})
			}
		case _, ok := <-sub.C:
			if !ok {
				select {
				case err := <-subErr:
					return fmt.Errorf("wan watch: %w", err)
				default:
					return errors.New("wan watch: link, address and route subscription closed")
				}
			}
			if n := sub.Overruns(); n != overruns {
				// Not an error: the route is looked up anyway.
				w.Log.Debug("WAN watch: kernel notifications lost in a burst; looking the route up again", "overruns", n)
				overruns = n
			}
			kick()
		case <-settle:
			settle = nil
			if !w.target.Broker.IsValid() {
				continue
			}
			now := routeTo(h, w.target.Broker)
			if !now.same(w.last) {
				report(WANEvent{Gen: w.target.Gen, Changed: w.changed(now),
					Reason: fmt.Sprintf("path to %v changed: %v → %v", w.target.Broker, w.last, now)})
				w.last = now
			}
		}
	}
}
