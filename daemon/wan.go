package daemon

import (
	"context"
	"net/netip"
)

// WANWatcher watches the path to the broker.
type WANWatcher interface {
	// Watch runs until ctx ends or the watch fails. The daemon sends a
	// target for each tunnel that comes up; the watch takes the route to
	// its broker as the baseline and calls report, which never blocks,
	// whenever the path (source address, gateway, device) changes. After
	// a failure the daemon calls Watch again (after a back-off) with the
	// same channel; a watch started again reports what changed while none
	// ran.
	Watch(ctx context.Context, targets <-chan WANTarget, report func(WANEvent)) error
}

// WANTarget is what the watch follows: the path to Broker, from when the
// tunnel numbered Gen came up. Local is the tunnel's source address: a
// route that no longer uses it is a change even if it was so when the
// baseline was taken (the WAN moved while the tunnel was being built).
type WANTarget struct {
	Broker netip.Addr
	Local  netip.Addr // invalid: not compared
	Gen    uint64
}

// WANEvent is a change of the path to a target's broker. Changed says
// whether the path now differs from the target's baseline; false means it
// is back to it (a blip). Events of an earlier target's Gen are stale: the
// daemon ignores them.
type WANEvent struct {
	Gen     uint64
	Changed bool
	Reason  string
}
