package tunnel

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jsklein/gogoc/internal/logx"
)

// Clock is the time source of the prober; tests use a fake one.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer the prober uses.
type Timer interface {
	C() <-chan time.Time
	Reset(d time.Duration)
	Stop()
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) NewTimer(d time.Duration) Timer {
	return realTimer{time.NewTimer(d)}
}

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time   { return t.t.C }
func (t realTimer) Reset(d time.Duration) { t.t.Reset(d) }
func (t realTimer) Stop()                 { t.t.Stop() }

// PingConn sends ICMPv6 echo requests to the keepalive address and returns
// the replies meant for this prober. NewPingConn opens the real one.
type PingConn interface {
	// WriteEcho sends an echo request with sequence number seq.
	WriteEcho(seq uint16) error
	// ReadEcho blocks until an echo reply for this prober arrives and
	// returns its sequence number. After Close it returns an error.
	ReadEcho() (seq uint16, err error)
	Close() error
}

// maxPending bounds the probes tracked at once; with any sane interval and
// timeout only a handful are outstanding.
const maxPending = 64

type pendingProbe struct {
	seq    uint16
	sent   time.Time
	missAt time.Time // when it counts as a miss if unanswered
	missed bool
	// confirm: sent to confirm a suspected loss, with a shorter deadline.
	confirm bool
}

// lossTracker is the keepalive loss rule, without any clock or I/O.
//
// The rule of spec §6: a probe not answered within timeout is a miss, limit
// consecutive misses mean lost, a timely reply resets the count and ends a
// loss. Alone it notices a dead broker only after 2–3 whole intervals. So
// on a hint that the broker is gone the tracker runs a confirmation: limit
// probes, confirmEvery apart. All of them missed is a loss; any reply
// within timeout to any outstanding probe cancels the confirmation.
//
// The hints: an ICMP error about our packets to the broker (suspect); the
// confirmation probes then count as missed after confirmTimeout, so a
// crashed broker whose host answers "port unreachable" is noticed in about
// two seconds. Or a regular probe unanswered for overdueAfter (a silent
// broker): its probes then count as missed only when that probe does, so
// the loss comes at its deadline (at most interval + timeout after the
// broker went silent, not 2–3 intervals), and a path merely slower than
// usual still has the whole timeout to answer.
//
// The replies are what make it safe: anyone on the path can forge an ICMP
// error, nobody but the far end can answer our echo with its cookie.
type lossTracker struct {
	timeout      time.Duration // regular probe deadline; later replies count for nothing
	limit        int
	confirmEvery time.Duration
	confirmBase  time.Duration // confirmation deadline on a fast path
	legacy       bool          // spec §6 alone: no confirmations (benchmark baseline)

	pending  []pendingProbe // in sending order
	nextSeq  uint16
	lastSent time.Time

	confirming  bool
	confirmSent int   // confirmation probes sent in this confirmation
	cause       error // what started it; nil: a regular probe went unanswered
	// confirmUntil: no confirmation probe counts as missed before it (the
	// deadline of the overdue probe that started the confirmation).
	confirmUntil time.Time

	st KeepaliveStats
}

func newLossTracker(k KeepaliveConfig) *lossTracker {
	return &lossTracker{
		timeout: k.Timeout, limit: k.Misses,
		confirmEvery: k.ConfirmInterval, confirmBase: k.ConfirmTimeout, legacy: k.legacy,
		pending: make([]pendingProbe, 0, maxPending),
	}
}

// overdueAfter is how long a regular probe may go unanswered before a
// confirmation starts: the configured confirmation timeout, raised to three
// smoothed round trips on a slow path, at most the regular timeout. Early
// is harmless here: such a confirmation gives the probe its whole timeout.
func (l *lossTracker) overdueAfter() time.Duration {
	return min(max(l.confirmBase, 3*l.st.SmoothedRTT), l.timeout)
}

// confirmTimeout is the deadline of a confirmation probe: overdueAfter,
// or the regular timeout while no reply has measured the path yet.
func (l *lossTracker) confirmTimeout() time.Duration {
	if l.st.Received == 0 {
		return l.timeout
	}
	return l.overdueAfter()
}

// send registers a probe sent at t and returns its sequence number.
func (l *lossTracker) send(t time.Time, confirm bool) uint16 {
	if len(l.pending) == maxPending {
		// Cannot happen with timeout < maxPending intervals; keep the
		// newest probes and let the oldest count as missed.
		if !l.pending[0].missed {
			l.miss()
		}
		l.pending = append(l.pending[:0], l.pending[1:]...)
	}
	seq := l.nextSeq
	l.nextSeq++
	p := pendingProbe{seq: seq, sent: t, missAt: t.Add(l.timeout), confirm: confirm}
	if confirm {
		if l.confirmUntil.IsZero() {
			p.missAt = t.Add(l.confirmTimeout())
		} else {
			// Started by an overdue probe: missed when that probe is.
			p.missAt = l.confirmUntil
			if at := t.Add(l.overdueAfter()); p.missAt.Before(at) {
				p.missAt = at
			}
		}
		l.confirmSent++
	}
	l.pending = append(l.pending, p)
	l.lastSent = t
	l.st.Sent++
	return seq
}

// suspect starts a confirmation because of cause (an ICMP error about our
// packets to the broker). It reports whether one started: not when one
// runs already, nor while lost.
func (l *lossTracker) suspect(cause error) bool {
	if l.legacy || l.confirming || l.st.Lost {
		return false
	}
	l.startConfirm(cause, time.Time{})
	return true
}

func (l *lossTracker) startConfirm(cause error, until time.Time) {
	l.confirming, l.confirmSent, l.cause, l.confirmUntil = true, 0, cause, until
	l.st.Confirmations++
}

// nextConfirm is when the next confirmation probe is due (at once if in
// the past). Probes stay confirmEvery apart from any probe before them, so
// a flood of forged ICMP errors cannot make us probe faster than that.
func (l *lossTracker) nextConfirm() (time.Time, bool) {
	if !l.confirming || l.confirmSent >= l.limit {
		return time.Time{}, false
	}
	return l.lastSent.Add(l.confirmEvery), true
}

// nextDeadline is the next time expire has something to do: a probe's
// miss, or a regular probe becoming overdue.
func (l *lossTracker) nextDeadline() (time.Time, bool) {
	var dl time.Time
	earlier := func(t time.Time) {
		if dl.IsZero() || t.Before(dl) {
			dl = t
		}
	}
	od := l.overdueAfter()
	for _, p := range l.pending {
		if p.missed {
			continue
		}
		earlier(p.missAt)
		if l.watchOverdue() && !p.confirm {
			earlier(p.sent.Add(od))
		}
	}
	return dl, !dl.IsZero()
}

// watchOverdue: an unanswered regular probe may start a confirmation.
func (l *lossTracker) watchOverdue() bool { return !l.legacy && !l.confirming && !l.st.Lost }

// expire counts every probe whose deadline is at or before now as missed
// and forgets probes older than the timeout. It reports a KeepaliveLost
// event on the transition; and starts a confirmation when a regular probe
// has been unanswered for a confirmation timeout (or missed).
func (l *lossTracker) expire(now time.Time) (Event, bool) {
	wasLost := l.st.Lost
	keep := l.pending[:0]
	for _, p := range l.pending {
		if !p.missed && !now.Before(p.missAt) {
			p.missed = true
			l.miss()
		}
		if now.Before(p.sent.Add(l.timeout)) {
			keep = append(keep, p)
		}
	}
	l.pending = keep
	if l.st.Lost && !wasLost {
		ev := Event{Kind: KeepaliveLost, Time: now, Misses: l.st.Misses, Err: l.cause}
		l.confirming, l.cause = false, nil
		return ev, true
	}
	if l.watchOverdue() {
		od := l.overdueAfter()
		for _, p := range l.pending {
			if !p.confirm && !now.Before(p.sent.Add(od)) {
				l.startConfirm(nil, p.sent.Add(l.timeout))
				break
			}
		}
	}
	return Event{}, false
}

func (l *lossTracker) miss() {
	l.st.TimedOut++
	l.st.Misses++
	if l.st.Misses >= l.limit {
		l.st.Lost = true
	}
}

// reply handles the echo reply for seq received at t. One within timeout
// proves the path: it resets the misses, supersedes older outstanding
// probes, cancels a confirmation (and its outstanding probes), and reports
// KeepaliveRestored when it ends a loss.
func (l *lossTracker) reply(seq uint16, t time.Time) (Event, bool) {
	i := -1
	for j, p := range l.pending {
		if p.seq == seq {
			i = j
			break
		}
	}
	if i < 0 {
		// Not outstanding: timed out already (late), or a duplicate or a
		// stray we never sent.
		if d := l.nextSeq - seq; d > 0 && d <= 1024 {
			l.st.Late++
		}
		return Event{}, false
	}
	p := l.pending[i]
	rtt := t.Sub(p.sent)
	if rtt > l.timeout {
		// The deadline passed but expire has not run yet.
		l.st.Late++
		return Event{}, false
	}
	l.pending = append(l.pending[:0], l.pending[i+1:]...)
	if l.confirming {
		// The confirmation is over: its other probes must not count as
		// misses (a reply to one still counts).
		l.confirming, l.cause = false, nil
		for j := range l.pending {
			if l.pending[j].confirm {
				l.pending[j].missed = true
			}
		}
	}
	l.st.Received++
	l.st.LastRTT = rtt
	if l.st.SmoothedRTT == 0 {
		l.st.SmoothedRTT = rtt
	} else {
		l.st.SmoothedRTT += (rtt - l.st.SmoothedRTT) / 8
	}
	l.st.Misses = 0
	if l.st.Lost {
		l.st.Lost = false
		return Event{Kind: KeepaliveRestored, Time: t, RTT: rtt}, true
	}
	return Event{}, false
}

// prober sends one echo per interval (the first one interval after start,
// spec §6), confirmation probes when the tracker asks for them, and
// applies the loss rule to the replies.
type prober struct {
	conn     PingConn
	clock    Clock
	interval time.Duration
	emit     func(Event)
	log      *logx.Logger
	// suspects carries hints that the broker is gone from the data plane
	// (suspect); one is enough to act, so extra ones are dropped.
	suspects chan error

	mu    sync.Mutex
	track *lossTracker
}

type echoReply struct {
	seq uint16
	at  time.Time
}

func newProber(k KeepaliveConfig, conn PingConn, emit func(Event), log *logx.Logger) *prober {
	return &prober{
		conn:     conn,
		clock:    k.Clock,
		interval: k.Interval,
		emit:     emit,
		log:      log,
		suspects: make(chan error, 1),
		track:    newLossTracker(k),
	}
}

// suspect tells the prober that the broker may be gone: an ICMP error
// came back for a packet to it. It never blocks; the prober confirms with
// probes before it reports anything.
func (p *prober) suspect(cause error) {
	select {
	case p.suspects <- cause:
	default:
	}
}

func (p *prober) stats() KeepaliveStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.track.st
}

// run probes until ctx ends. The caller closes the conn after run returns
// (or to stop it): the reader goroutine ends on the close.
func (p *prober) run(ctx context.Context) {
	replies := make(chan echoReply, 16)
	readErr := make(chan error, 1)
	go p.read(ctx, replies, readErr)

	next := p.clock.Now().Add(p.interval)
	timer := p.clock.NewTimer(p.interval)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-readErr:
			p.log.Error("keepalive socket failed", "err", err)
			p.emit(Event{Kind: IOError, Time: p.clock.Now(), Err: err})
			return
		case r := <-replies:
			p.mu.Lock()
			confirming := p.track.confirming
			ev, ok := p.track.reply(r.seq, r.at)
			cancelled := confirming && !p.track.confirming
			p.mu.Unlock()
			if cancelled {
				p.log.Debug("keepalive: the broker answered, no loss")
			}
			if ok {
				p.log.Info("keepalive restored", "rtt", ev.RTT)
				p.emit(ev)
			}
		case cause := <-p.suspects:
			p.mu.Lock()
			started := p.track.suspect(cause)
			p.mu.Unlock()
			if started {
				// Debug: forged ICMP errors must not fill the log.
				p.log.Debug("keepalive: the broker may be gone, confirming", "cause", cause)
			}
		case <-timer.C():
		}
		p.step(&next)
		timer.Reset(p.wait(next))
	}
}

// step does what is due now: count misses, send the regular probe when
// its time has come and a confirmation probe when one is due.
func (p *prober) step(next *time.Time) {
	now := p.clock.Now()
	p.mu.Lock()
	wasConfirming := p.track.confirming
	ev, lost := p.track.expire(now)
	var seqs [2]uint16
	n := 0
	if !now.Before(*next) {
		seqs[n] = p.track.send(now, false)
		n++
		for !next.After(now) {
			*next = next.Add(p.interval)
		}
	}
	if at, ok := p.track.nextConfirm(); ok && !now.Before(at) {
		seqs[n] = p.track.send(now, true)
		n++
	}
	overdue := !wasConfirming && p.track.confirming
	p.mu.Unlock()
	if lost {
		p.log.Warn("keepalive lost", "misses", ev.Misses, "cause", ev.Err)
		p.emit(ev)
	}
	if overdue {
		p.log.Debug("keepalive: a probe is overdue, confirming")
	}
	for _, seq := range seqs[:n] {
		// A failed send is a probe that will time out: the loss rule,
		// not one error, decides about the tunnel.
		if err := p.conn.WriteEcho(seq); err != nil {
			p.log.Debug("keepalive send failed", "seq", seq, "err", err)
		}
	}
}

// wait is the time until the next send or probe deadline.
func (p *prober) wait(next time.Time) time.Duration {
	p.mu.Lock()
	if dl, ok := p.track.nextDeadline(); ok && dl.Before(next) {
		next = dl
	}
	if at, ok := p.track.nextConfirm(); ok && at.Before(next) {
		next = at
	}
	p.mu.Unlock()
	return max(next.Sub(p.clock.Now()), 0)
}

func (p *prober) read(ctx context.Context, replies chan<- echoReply, readErr chan<- error) {
	for {
		seq, err := p.conn.ReadEcho()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, ErrClosed) {
				readErr <- err
			}
			return
		}
		select {
		case replies <- echoReply{seq, p.clock.Now()}:
		case <-ctx.Done():
			return
		}
	}
}
