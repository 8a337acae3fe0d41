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
	seq  uint16
	sent time.Time
}

// lossTracker is the keepalive loss rule of spec §6, without any clock or
// I/O: a probe not answered within timeout is a miss, limit consecutive
// misses mean lost, a timely reply resets the count and ends a loss. A late
// reply counts for nothing.
type lossTracker struct {
	timeout time.Duration
	limit   int
	pending []pendingProbe // in sending order
	nextSeq uint16
	st      KeepaliveStats
}

func newLossTracker(timeout time.Duration, limit int) *lossTracker {
	return &lossTracker{timeout: timeout, limit: limit, pending: make([]pendingProbe, 0, maxPending)}
}

// send registers a probe sent at t and returns its sequence number.
func (l *lossTracker) send(t time.Time) uint16 {
	if len(l.pending) == maxPending {
		// Cannot happen with timeout < maxPending intervals; keep the
		// newest probes and let the oldest count as missed.
		l.miss()
		l.pending = append(l.pending[:0], l.pending[1:]...)
	}
	seq := l.nextSeq
	l.nextSeq++
	l.pending = append(l.pending, pendingProbe{seq, t})
	l.st.Sent++
	return seq
}

// nextDeadline is when the oldest outstanding probe times out.
func (l *lossTracker) nextDeadline() (time.Time, bool) {
	if len(l.pending) == 0 {
		return time.Time{}, false
	}
	return l.pending[0].sent.Add(l.timeout), true
}

// expire times out every probe whose deadline is at or before now. It
// reports a KeepaliveLost event on the transition.
func (l *lossTracker) expire(now time.Time) (Event, bool) {
	wasLost := l.st.Lost
	i := 0
	for i < len(l.pending) && !now.Before(l.pending[i].sent.Add(l.timeout)) {
		l.miss()
		i++
	}
	l.pending = append(l.pending[:0], l.pending[i:]...)
	if l.st.Lost && !wasLost {
		return Event{Kind: KeepaliveLost, Time: now, Misses: l.st.Misses}, true
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

// reply handles the echo reply for seq received at t. A timely one resets
// the misses and supersedes older outstanding probes (the path works now);
// it reports KeepaliveRestored when it ends a loss.
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
// spec §6) and applies the loss rule to the replies.
type prober struct {
	conn     PingConn
	clock    Clock
	interval time.Duration
	emit     func(Event)
	log      *logx.Logger

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
		track:    newLossTracker(k.Timeout, k.Misses),
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
			ev, ok := p.track.reply(r.seq, r.at)
			p.mu.Unlock()
			if ok {
				p.log.Info("keepalive restored", "rtt", ev.RTT)
				p.emit(ev)
			}
		case <-timer.C():
			now := p.clock.Now()
			p.mu.Lock()
			ev, lost := p.track.expire(now)
			var seq uint16
			send := !now.Before(next)
			if send {
				seq = p.track.send(now)
				for !next.After(now) {
					next = next.Add(p.interval)
				}
			}
			p.mu.Unlock()
			if lost {
				p.log.Warn("keepalive lost", "misses", ev.Misses)
				p.emit(ev)
			}
			if send {
				// A failed send is a probe that will time out: the loss
				// rule, not one error, decides about the tunnel.
				if err := p.conn.WriteEcho(seq); err != nil {
					p.log.Debug("keepalive send failed", "seq", seq, "err", err)
				}
			}
		}
		timer.Reset(p.wait(next))
	}
}

// wait is the time until the next send or probe deadline.
func (p *prober) wait(next time.Time) time.Duration {
	p.mu.Lock()
	dl, ok := p.track.nextDeadline()
	p.mu.Unlock()
	if ok && dl.Before(next) {
		next = dl
	}
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
