package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/jsklein/gogoc/internal/rtlink"
)

// WANWatcher watches the path to the broker.
type WANWatcher interface {
	// Watch runs until ctx ends or the watch fails. The daemon sends each
	// new broker address on targets; the watch takes the route to it as
	// the baseline and sends a reason on changed (without blocking; a
	// pending one is enough) whenever the source address, gateway or
	// device towards that address changes.
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
// address and route notifications of the current network namespace.
type NetlinkWAN struct{}

// Watch implements WANWatcher.
func (NetlinkWAN) Watch(ctx context.Context, targets <-chan netip.Addr, changed chan<- string) error {
	h, err := rtlink.NewHandle()
	if err != nil {
		return fmt.Errorf("wan watch: netlink: %w", err)
	}
	defer h.Close()
	done := make(chan struct{})
	defer close(done)
	subErr := make(chan error, 2)
	onErr := func(err error) {
		select {
		case subErr <- err:
		default:
		}
	}
	changes, err := rtlink.WatchChanges(done, onErr)
	if err != nil {
		return fmt.Errorf("wan watch: %w", err)
	}
	var target netip.Addr
	var last path
	var settle <-chan time.Time
	kick := func() {
		if settle == nil {
			settle = time.After(wanDebounce)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-subErr:
			return fmt.Errorf("wan watch: %w", err)
		case t := <-targets:
			target = t
			last = routeTo(h, target)
		case _, ok := <-changes:
			if !ok {
				return fmt.Errorf("wan watch: address and route subscription closed")
			}
			kick()
		case <-settle:
			settle = nil
			if !target.IsValid() {
				continue
			}
			now := routeTo(h, target)
			if !now.same(last) {
				select {
				case changed <- fmt.Sprintf("path to %v changed: %v → %v", target, last, now):
				default:
				}
				last = now
			}
		}
	}
}
