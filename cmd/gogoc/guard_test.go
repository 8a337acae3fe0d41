package main

import (
	"os"
	"regexp"
	"testing"
	"time"
)

// hangGuard bounds a wait for something that must happen: long enough for
// a machine many times slower than usual (CI runners are small and shared),
// so that passing it means the event never came. How long the event took
// is a figure, logged by the test, not a limit.
const hangGuard = 30 * time.Second

// waitLog waits until the log file at path matches re at least n times.
func waitLog(t *testing.T, path string, re *regexp.Regexp, n int) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for {
		raw, _ := os.ReadFile(path)
		if len(re.FindAll(raw, -1)) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("log %s: %q seen fewer than %d times in %v:\n%s", path, re, n, hangGuard, raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
