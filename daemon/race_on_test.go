//go:build race

package daemon

// raceEnabled: the race detector slows goroutines several times over, so
// tests that assert wall-clock timing of hundreds of clients skip.
const raceEnabled = true
