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

// WANWatcher watches the path to the broker.
type WANWatcher interface {
	// Watch runs until ctx ends or the watch fails. The daemon sends each
	// new broker address on targets; the watch takes the route to it as
	// the baseline and sends a reason on changed (without blocking; a
	// pending one is enough) whenever the source address, gateway or
	// device towards that address changes. After a failure the daemon
	// calls Watch again (after a back-off) with the same channels.
	Watch(ctx context.Context, targets <-chan netip.Addr, changed chan<- string) error
}

// wanDebounce lets a burst of netlink messages (an address replaced, a
// DHCP renewal touching routes) settle before the route is looked up.
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
// broker and the path last seen outlive a failed Watch, so a Watch started
// again reports what changed while none ran. Build it with NewNetlinkWAN;
// one Watch may run at a time.
type NetlinkWAN struct {
	// Buffer is the receive buffer the subscription asks for, in bytes.
	Buffer int
	Log    *logx.Logger

	target netip.Addr
	last   path
}

// NewNetlinkWAN returns a NetlinkWAN with rtlink.DefaultWatchBuffer.
func NewNetlinkWAN(log *logx.Logger) *NetlinkWAN {
	return &NetlinkWAN{Buffer: rtlink.DefaultWatchBuffer, Log: log}
}

// Watch implements WANWatcher.
func (w *NetlinkWAN) Watch(ctx context.Context, targets <-chan netip.Addr, changed chan<- string) error {
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
	if w.target.IsValid() {
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
			w.last = routeTo(h, t)
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
			if !w.target.IsValid() {
				continue
			}
			now := routeTo(h, w.target)
			if !now.same(w.last) {
				select {
				case changed <- fmt.Sprintf("path to %v changed: %v → %v", w.target, w.last, now):
				default:
				}
				w.last = now
			}
		}
	}
}
