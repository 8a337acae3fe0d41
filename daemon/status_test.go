package daemon

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestWriteStatusAtomic: concurrent readers never see a partial file, and
// the JSON carries the contract's field names.
func TestWriteStatusAtomic(t *testing.T) {
	path := filepath.Join(runDir(t), "run", "status.json")
	big := strings.Repeat("x", 64<<10) // makes a torn write likely if it were not atomic
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			b, err := os.ReadFile(path)
			if err != nil {
				continue // not written yet
			}
			var s Status
			if err := json.Unmarshal(b, &s); err != nil {
				t.Errorf("reader saw a partial file (%d bytes): %v", len(b), err)
				return
			}
		}
	}()
	for i := range 200 {
		s := &Status{State: StateUp, PID: i, LastError: big[:i*300], Keepalive: &Keepalive{IntervalS: 30, RTTMs: 1.25}}
		if err := WriteStatus(path, s); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"state"`, `"since"`, `"pid"`, `"updated"`, `"keepalive"`, `"interval_s"`, `"rtt_ms"`, `"reconnects"`, `"last_error"`} {
		if !strings.Contains(string(raw), key) {
			t.Errorf("status file lacks %s", key)
		}
	}
	if strings.Contains(string(raw), `"broker"`) {
		t.Error("empty broker not omitted")
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
}
