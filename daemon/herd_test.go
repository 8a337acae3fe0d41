package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jsklein/gogoc/config"
	"github.com/jsklein/gogoc/internal/logx"
	"github.com/jsklein/gogoc/internal/testbroker"
	"github.com/jsklein/gogoc/tsp"
	"github.com/jsklein/gogoc/tunnel"
)

// TestDaemonHerd runs 500 supervisors (in-process, each with its own
// back-off, real TSP negotiation over loopback UDP, a fake data plane)
// against one test broker, then restarts the broker and makes every
// client lose its tunnel at the same instant, the worst case. Each client
// must try again at once, then wait the back-off it drew before the next
// attempt; the waits drawn must spread over the jitter window
// [retry_delay, 2·retry_delay]. The assertions are on order and on the
// drawn waits, which load does not change; the wall-clock histogram of
// the reconnections is printed as the figure.
func TestDaemonHerd(t *testing.T) {
	if testing.Short() {
		t.Skip("500 clients; skipped with -short")
	}
	if raceEnabled {
		// The same paths run under the race detector in the other
		// supervisor tests; 500 clients would take minutes.
		t.Skip("500 clients are too slow under -race")
	}
	const n = 500
	const retry = time.Second
	cfg := testbroker.Config{Limits: testbroker.Limits{MaxPerSource: 4 * n, MaxSessions: 4 * n}}
	b, server := startBroker(t, cfg, "127.0.0.1:0")
	type client struct {
		d     *Daemon
		plane *fakePlane
		rec   *recordingDial
		logMu sync.Mutex
		log   bytes.Buffer
		last  *fakeTunnel
		lost  time.Time
	}
	clients := make([]*client, n)
	for i := range clients {
		c := testConfig(server)
		c.RetryDelay, c.RetryDelayMax = retry, 8*retry
		c.LastServer, c.BrokerList = "", ""
		cl := &client{plane: newFakePlane(), rec: &recordingDial{}}
		o := testOptions(t, c, cl.plane)
		o.Broker = dialBroker(cl.rec.dial, logx.Discard())
		// The back-off transitions say which wait each client drew.
		o.Log = logx.Writer(lockedWriter{&cl.logMu, &cl.log}, logx.LevelWarn)
		d, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		cl.d = d
		clients[i] = cl
		runDaemon(t, d)
	}
	var lastAttempt time.Time
	for _, cl := range clients {
		cl.last = cl.plane.next(t, 50*time.Second)
		for _, a := range cl.rec.attempts() {
			if a.After(lastAttempt) {
				lastAttempt = a
			}
		}
	}
	// Past the one-attempt-per-second window of every first attempt, so
	// that the reconnection is not held back by it.
	time.Sleep(time.Until(lastAttempt.Add(retry + 100*time.Millisecond)))

	// The broker goes away; every client learns it at once.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	for _, cl := range clients {
		cl.lost = time.Now()
		cl.last.emit(tunnel.Event{Kind: tunnel.BrokerControl, Code: 310, Text: "310 TSP status error"})
	}
	// The broker stays away until every client has failed its first
	// attempt, or the first attempt of a late one would succeed.
	deadline := time.Now().Add(50 * time.Second)
	for _, cl := range clients {
		for cl.d.Status().State != StateBackoff && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	startBroker(t, cfg, server) // back on the same address
	back := time.Since(t0)
	for _, cl := range clients {
		cl.plane.next(t, 50*time.Second)
	}

	waitRE := regexp.MustCompile(`next attempt in ([0-9.]+m?s)`)
	const bin = 100 * time.Millisecond
	drawn, wall := map[int]int{}, map[int]int{}
	var firstDelay time.Duration
	for i, cl := range clients {
		var after []time.Time
		for _, a := range cl.rec.attempts() {
			if a.After(t0) {
				after = append(after, a)
			}
		}
		// A loaded machine may bring the broker back after a client's
		// back-off: then it fails again and draws another wait.
		if len(after) < 2 {
			t.Fatalf("client %d made %d attempts after the loss, want at least 2 (one failed at once, one after the back-off)", i, len(after))
		}
		// "At once": lost leads straight to negotiating, never to a
		// back-off (the time it takes is load, so it is only printed).
		tr := cl.d.Transitions()
		if tr[[2]State{StateLost, StateNegotiating}] != 1 || tr[[2]State{StateLost, StateBackoff}] != 0 {
			t.Errorf("client %d: transitions %v, want lost → negotiating once and no back-off before it", i, tr)
		}
		firstDelay = max(firstDelay, after[0].Sub(cl.lost))
		cl.logMu.Lock()
		m := waitRE.FindAllStringSubmatch(cl.log.String(), -1)
		cl.logMu.Unlock()
		if len(m) < len(after)-1 {
			t.Fatalf("client %d: %d back-off waits logged for %d attempts", i, len(m), len(after))
		}
		m = m[len(m)-(len(after)-1):] // the waits before the attempts after the loss
		for k := 1; k < len(after); k++ {
			w, err := time.ParseDuration(m[k-1][1])
			if err != nil {
				t.Fatal(err)
			}
			if ceil := retry << k; w < retry || w > ceil+time.Millisecond {
				t.Errorf("client %d drew a wait of %v, outside [%v, %v]", i, w, retry, ceil)
			}
			// Never sooner than the drawn wait (it is rounded to 1 ms).
			if gap := after[k].Sub(after[k-1]); gap < w-time.Millisecond {
				t.Errorf("client %d: attempt %d came %v after the previous one, sooner than its back-off %v", i, k, gap, w)
			}
			if k == 1 {
				drawn[min(int(w/bin), 19)]++ // 2 s itself, rounded up, joins the last bin
			}
		}
		wall[int(after[len(after)-1].Sub(cl.lost)/bin)]++
	}
	t.Logf("the slowest client tried again %v after the loss", firstDelay.Round(time.Millisecond))
	t.Log(histogram(fmt.Sprintf("%d clients, broker back after %v; successful reconnects after the loss (100 ms bins, wall clock):", n, back.Round(time.Millisecond)), wall))
	t.Log(histogram("first back-off drawn after the loss (100 ms bins):", drawn))
	// Full jitter over [1 s, 2 s]: ten bins of ≈ n/10 each (standard
	// deviation ≈ 7). A herd moving in step would fill one or two.
	for k := 10; k < 20; k++ {
		if drawn[k] < n/10/3 || drawn[k] > n/10*2 {
			t.Errorf("bin %.1f s holds %d of %d drawn waits; not spread over the jitter window", float64(k)/10, drawn[k], n)
		}
	}
}

// histogram renders 100 ms bins as rows of #.
func histogram(title string, bins map[int]int) string {
	var sb strings.Builder
	sb.WriteString(title + "\n")
	lo, hi := 1<<30, 0
	for k := range bins {
		lo, hi = min(lo, k), max(hi, k)
	}
	for k := lo; k <= hi; k++ {
		fmt.Fprintf(&sb, "  %4.1f s %4d %s\n", float64(k)/10, bins[k], strings.Repeat("#", bins[k]/2))
	}
	return sb.String()
}

// TestDaemonReconnectCycles runs 1000 reconnect cycles (negotiation over
// real loopback UDP sockets against the test broker, fake data plane) and
// checks that open file descriptors, goroutines and RSS stay flat.
func TestDaemonReconnectCycles(t *testing.T) {
	if testing.Short() {
		t.Skip("1000 cycles; skipped with -short")
	}
	// The broker runs in a child process (this test binary again), so
	// that the figures are the client's alone: the broker keeps every
	// session it ever saw.
	server := brokerProcess(t)
	dir := runDir(t)
	plane := newFakePlane()
	o := testOptions(t, testConfig(server), plane)
	o.StatusFile, o.StateDir = filepath.Join(dir, "status.json"), dir
	o.Timings.MinAttemptInterval = time.Millisecond
	d, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	runDaemon(t, d)
	cycle := func(k int) {
		for range k {
			d.Reconnect("cycle")
			plane.next(t, 5*time.Second)
		}
	}
	plane.next(t, 5*time.Second)
	cycle(100) // warm-up: pools, buffers, the broker's maps
	f0, g0, r0 := resources(t)
	start := time.Now()
	cycle(1000)
	el := time.Since(start)
	f1, g1, r1 := resources(t)
	t.Logf("1000 reconnect cycles in %v (%v each): fds %d → %d, goroutines %d → %d, RSS %d → %d KiB",
		el.Round(time.Millisecond), (el / 1000).Round(time.Microsecond), f0, f1, g0, g1, r0, r1)
	if f1 > f0+2 {
		t.Errorf("file descriptors grew from %d to %d", f0, f1)
	}
	if g1 > g0+2 {
		t.Errorf("goroutines grew from %d to %d", g0, g1)
	}
	// The race detector's shadow memory and goroutine histories grow on
	// their own: the RSS figure only means something without it.
	if r1 > r0+1024 && !raceEnabled { // ≈ 1 KiB per cycle would show
		t.Errorf("RSS grew by %d KiB", r1-r0)
	}
	if got := d.Status().Reconnects; got < 1100 {
		t.Errorf("status counts %d reconnects, want ≥ 1100", got)
	}
}

// resources returns open fds, goroutines and RSS (KiB) of this process.
func resources(t *testing.T) (fds, goroutines, rssKiB int) {
	t.Helper()
	// Return freed memory to the OS so that RSS reflects what is live, not
	// what earlier tests in this process left in the heap.
	debug.FreeOSMemory()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	raw, _ := os.ReadFile("/proc/self/status")
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rssKiB, _ = strconv.Atoi(strings.Fields(v)[0])
		}
	}
	return len(ents), runtime.NumGoroutine(), rssKiB
}

// sentRecorder keeps what the client sent on each transport.
type sentRecorder struct {
	mu   sync.Mutex
	sent [][]byte
	d    tsp.NetDialer
}

type recordingTransport struct {
	tsp.Transport
	r *sentRecorder
}

func (t recordingTransport) Exchange(ctx context.Context, msg []byte) ([]byte, error) {
	t.r.mu.Lock()
	t.r.sent = append(t.r.sent, append([]byte(nil), msg...))
	t.r.mu.Unlock()
	return t.Transport.Exchange(ctx, msg)
}

// Detach hands the RUDP socket over, as the daemon expects for v6udpv4.
func (t recordingTransport) Detach() net.Conn { return t.Transport.(*tsp.RUDP).Detach() }

func (r *sentRecorder) dial(ctx context.Context, server string, n tsp.Network) (tsp.Transport, error) {
	tr, err := r.d.Dial(ctx, server, n)
	if err != nil {
		return nil, err
	}
	return recordingTransport{tr, r}, nil
}

// TestDaemonLogsNoSecrets runs DIGEST-MD5 and PLAIN sessions with every
// log destination at the highest level (no masking registered, so a leak
// would show) and greps the logs for the password, the digest response and
// the base64 blobs that carry them.
func TestDaemonLogsNoSecrets(t *testing.T) {
	const user, pass = "alice", "Tr0ub4dor&3-horse"
	for _, mech := range []config.AuthMethod{config.AuthDigestMD5, config.AuthPlain} {
		t.Run(string(mech), func(t *testing.T) {
			_, server := startBroker(t, testbroker.Config{Users: map[string]string{user: pass}}, "127.0.0.1:0")
			dir := t.TempDir()
			var stderr bytes.Buffer
			var mu sync.Mutex
			logPath := filepath.Join(dir, "gogoc.log")
			l, err := logx.New(logx.Options{Stderr: lockedWriter{&mu, &stderr}, StderrLevel: 3, FileLevel: 3, FilePath: logPath})
			if err != nil {
				t.Fatal(err)
			}
			c := testConfig(server)
			c.AuthMethod, c.UserID, c.Password = mech, user, "Tr0ub4dor&3-horse"
			rec := &sentRecorder{}
			plane := newFakePlane()
			o := testOptions(t, c, plane)
			// The broker client logs the negotiation: same logger.
			o.StatusFile, o.StateDir, o.Log, o.Broker = filepath.Join(dir, "s.json"), dir, l, dialBroker(rec.dial, l)
			d, err := New(o)
			if err != nil {
				t.Fatal(err)
			}
			stop := runDaemon(t, d)
			plane.next(t, 3*time.Second)
			stop()
			l.Close()

			// What must not appear: the password, and every credential
			// message the client sent, decoded and encoded.
			secrets := []string{pass}
			rec.mu.Lock()
			for _, m := range rec.sent {
				line := strings.TrimRight(string(m), "\r\n")
				raw, err := base64.StdEncoding.DecodeString(line)
				if err != nil {
					if strings.Contains(line, pass) { // PLAIN carries it in the clear
						secrets = append(secrets, line)
					}
					continue
				}
				secrets = append(secrets, line)
				if _, resp, ok := strings.Cut(string(raw), "response="); ok {
					resp, _, _ = strings.Cut(resp, ",")
					secrets = append(secrets, resp)
				}
			}
			rec.mu.Unlock()
			if mech == config.AuthDigestMD5 && len(secrets) < 3 {
				t.Fatalf("found no digest response in what the client sent (%d secrets)", len(secrets))
			}
			fileLog, err := os.ReadFile(logPath)
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			logs := stderr.String() + string(fileLog)
			mu.Unlock()
			if !strings.Contains(logs, "state up") || !strings.Contains(logs, " D gogoc: ") {
				t.Fatalf("logs lack the session at debug level:\n%s", logs)
			}
			for _, s := range secrets {
				if len(s) >= 8 && strings.Contains(logs, s) {
					t.Errorf("log contains a secret %q", s)
				}
			}
			t.Logf("%s: %d log lines, %d secret strings checked, none found", mech, strings.Count(logs, "\n"), len(secrets))
			if t.Failed() {
				t.Log(logs)
			}
		})
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// brokerProcess starts this test binary as a test broker on loopback UDP
// (TestHelperBrokerProcess) and returns its address; it ends with the test.
func brokerProcess(t *testing.T) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperBrokerProcess$")
	cmd.Env = append(os.Environ(), "GDM_HELPER_BROKER=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if err != nil || !ok {
		t.Fatalf("helper broker: %q %v", line, err)
	}
	return addr
}

// TestHelperBrokerProcess is the broker of brokerProcess; it does nothing
// in a normal run.
func TestHelperBrokerProcess(t *testing.T) {
	if os.Getenv("GDM_HELPER_BROKER") != "1" {
		return
	}
	b, err := testbroker.New(testbroker.Config{Limits: testbroker.Limits{MaxSessions: 100000, MaxPerSource: 100000}})
	if err != nil {
		t.Fatal(err)
	}
	udp, _, err := b.Start("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("listening %s\n", udp)
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes it
	_ = b.Close()
}
