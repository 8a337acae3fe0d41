package daemon

import (
	"math/rand/v2"
	"time"
)

// Backoff computes the wait after a failed attempt: full jitter, uniform
// between Min and a ceiling that starts at 2·Min and doubles with each
// consecutive failure up to Max. The jitter spreads a herd of clients that
// lost the same broker over the window instead of having them return in
// step. The zero value is not usable; set Min and Max.
type Backoff struct {
	Min, Max time.Duration
	// Rand returns a number in [0, 1); nil uses math/rand/v2.
	Rand func() float64
	n    int // consecutive failures
}

// Next returns the wait before the next attempt and counts a failure.
func (b *Backoff) Next() time.Duration {
	lo, hi := b.Min, b.Max
	if hi < lo {
		hi = lo
	}
	ceil := lo
	for i := 0; i <= b.n && ceil < hi; i++ {
		ceil *= 2
		if ceil <= 0 { // overflow or Min == 0
			ceil = hi
		}
	}
	ceil = min(ceil, hi)
	if b.n < 62 {
		b.n++
	}
	r := rand.Float64
	if b.Rand != nil {
		r = b.Rand
	}
	return lo + time.Duration(r()*float64(ceil-lo))
}

// Reset forgets past failures, after a tunnel that stayed up.
func (b *Backoff) Reset() { b.n = 0 }

// Failures is the number of consecutive failures counted.
func (b *Backoff) Failures() int { return b.n }
