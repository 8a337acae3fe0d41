package daemon

import (
	"testing"
	"time"
)

func TestBackoffWindow(t *testing.T) {
	// With Rand pinned to the window's ends, the bounds are visible.
	for _, tt := range []struct {
		min, max time.Duration
		wantHi   []time.Duration // ceiling after each failure
	}{
		{30 * time.Second, 300 * time.Second, []time.Duration{60e9, 120e9, 240e9, 300e9, 300e9}},
		{time.Second, time.Second, []time.Duration{1e9, 1e9}},
		{time.Second, 3 * time.Second, []time.Duration{2e9, 3e9, 3e9}},
	} {
		lo := &Backoff{Min: tt.min, Max: tt.max, Rand: func() float64 { return 0 }}
		hi := &Backoff{Min: tt.min, Max: tt.max, Rand: func() float64 { return 1 }}
		for i, want := range tt.wantHi {
			if got := lo.Next(); got != tt.min {
				t.Errorf("min %v max %v failure %d: low end %v, want %v", tt.min, tt.max, i, got, tt.min)
			}
			if got := hi.Next(); got != want {
				t.Errorf("min %v max %v failure %d: high end %v, want %v", tt.min, tt.max, i, got, want)
			}
		}
		hi.Reset()
		if got := hi.Next(); got != tt.wantHi[0] {
			t.Errorf("after Reset: %v, want %v", got, tt.wantHi[0])
		}
	}
}

// TestBackoffSpread: real randomness fills the window rather than
// clustering at one end.
func TestBackoffSpread(t *testing.T) {
	const n = 4000
	var bins [10]int
	for range n {
		b := &Backoff{Min: time.Second, Max: 10 * time.Second}
		d := b.Next() // window [1 s, 2 s]
		if d < time.Second || d > 2*time.Second {
			t.Fatalf("first wait %v outside [1s, 2s]", d)
		}
		bins[int((d-time.Second)*10/time.Second)%10]++
	}
	for i, c := range bins {
		if c < n/10/2 || c > n/10*2 {
			t.Errorf("bin %d has %d of %d draws: not uniform (%v)", i, c, n, bins)
		}
	}
}
