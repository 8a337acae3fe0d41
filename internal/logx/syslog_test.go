package logx

import (
	"bytes"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jsklein/gogoc/internal/secret"
)

// lockedBuffer is an io.Writer safe for the syslog writer's warnings and
// the test reading them.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestSyslogStuck: a syslog that stops reading (logd hung, its socket
// full) must not stall the goroutines that log. Before, each line waited
// for two 100 ms write deadlines under the logger's lock, so 4 goroutines
// logging 25 lines each took about 20 s. Lines are dropped and counted
// instead, the other destinations are told, and syslog gets the count once
// it reads again.
func TestSyslogStuck(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "log")
	pc, err := net.ListenPacket("unixgram", sock)
	if err != nil {
		t.Skipf("unixgram: %v", err)
	}
	defer pc.Close()
	var stderr lockedBuffer
	l, err := New(Options{SyslogLevel: 2, SyslogAddr: sock, Stderr: &stderr, StderrLevel: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	start := time.Now()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				l.Info("nobody reads this", "g", g, "i", i)
			}
		}()
	}
	wg.Wait()
	// Generous: the calls only queue. Holds at 5x slower by far.
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("100 log calls took %v while syslog did not read", d)
	}
	// The queue (64) and the socket (a few datagrams) take some; the
	// writer keeps dropping while the socket stays full.
	deadline := time.Now().Add(30 * time.Second)
	for l.Dropped() == 0 || !strings.Contains(stderr.String(), "is not taking lines") {
		if time.Now().After(deadline) {
			t.Fatalf("dropped %d, stderr %q", l.Dropped(), stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}

	// syslog reads again: the count of dropped lines comes before the
	// next line, and the other destinations hear about the recovery.
	got := make(chan string, 256)
	go func() {
		buf := make([]byte, 2048)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				close(got)
				return
			}
			got <- string(buf[:n])
		}
	}()
	// Log the marker until one gets through: while the writer works
	// through its full queue (late, on a busy machine), a marker may
	// still be dropped.
	l.Warn("syslog is back")
	again := time.NewTicker(200 * time.Millisecond)
	defer again.Stop()
	sawCount := false
	timeout := time.After(30 * time.Second)
	for {
		select {
		case <-again.C:
			l.Warn("syslog is back")
		case d, ok := <-got:
			if !ok {
				t.Fatal("socket closed")
			}
			if strings.Contains(d, "log lines were dropped") {
				sawCount = true
			}
			if !strings.Contains(d, "syslog is back") {
				continue
			}
			if !sawCount {
				t.Fatal("the marker arrived without the count of dropped lines before it")
			}
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(stderr.String(), "takes lines again") {
				if time.Now().After(deadline) {
					t.Fatalf("stderr not told of the recovery: %q", stderr.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
			return
		case <-timeout:
			t.Fatal("the marker never reached syslog")
		}
	}
}

// TestShortSecretNotMasked: masking a one-letter password replaced every
// "e" in every line. Only secrets of secret.MinMasked bytes or more are
// searched for; a short password still never shows, because it travels as
// a secret.String, which prints the mask.
func TestShortSecretNotMasked(t *testing.T) {
	var out bytes.Buffer
	pw := secret.String("e")
	l, err := New(Options{Stderr: &out, StderrLevel: 3, Secrets: []string{pw.Reveal(), "abc", `a"b`}})
	if err != nil {
		t.Fatal(err)
	}
	l.Info("tunnel established", "server", "broker.example.net", "passwd", pw)
	got := out.String()
	if !strings.Contains(got, "tunnel established server=broker.example.net passwd=********") {
		t.Fatalf("line garbled or password shown: %q", got)
	}
	out.Reset()
	l.Info("abcdef", "q", `a"b`)
	if got := out.String(); !strings.Contains(got, `abcdef q="a\"b"`) {
		t.Fatalf("short secrets masked in text: %q", got)
	}
	// From secret.MinMasked bytes on, text is masked as before.
	out.Reset()
	l, _ = New(Options{Stderr: &out, StderrLevel: 3, Secrets: []string{"pa55"}})
	l.Info("said pa55 to the broker")
	if got := out.String(); strings.Contains(got, "pa55") {
		t.Fatalf("four-letter secret shown: %q", got)
	}
}
