package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/jsklein/gogoc/daemon"
	"github.com/jsklein/gogoc/internal/logx"
	"github.com/jsklein/gogoc/internal/testbroker"
	"github.com/jsklein/gogoc/tunnel"
)

// The TestDaemon… tests run the built gogoc (the supervisor of package
// daemon) and tspbroker -dataplane in network namespaces named gdm-…-<pid>
// and check the supervisor's timing against faults: a killed broker, a
// changed WAN address, packet loss, a broker list with dead entries, and
// the control paths (signals, `gogoc status`, `gogoc reconnect`).

// gdmBroker is a tspbroker process that the test may kill and restart.
type gdmBroker struct {
	t      *testing.T
	ns     string
	bin    string
	args   []string
	logf   *os.File
	cmd    *exec.Cmd
	exited chan struct{}
}

// start runs the broker and waits until it listens; it returns that time.
func (b *gdmBroker) start() time.Time {
	t := b.t
	t.Helper()
	b.cmd = exec.Command("ip", append([]string{"netns", "exec", b.ns, b.bin}, b.args...)...)
	out, err := b.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	b.cmd.Stderr = b.logf
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("start tspbroker: %v", err)
	}
	b.exited = make(chan struct{})
	cmd, exited := b.cmd, b.exited
	go func() { _ = cmd.Wait(); close(exited) }()
	rd := bufio.NewReader(out)
	line, err := rd.ReadString('\n')
	if !strings.HasPrefix(line, "listening udp") {
		_ = cmd.Process.Kill()
		t.Fatalf("tspbroker did not start (%q, %v)", line, err)
	}
	ready := time.Now()
	go func() { _, _ = io.Copy(io.Discard, rd) }()
	return ready
}

// kill sends SIGKILL and waits for the process to go.
func (b *gdmBroker) kill() {
	_ = b.cmd.Process.Signal(syscall.SIGKILL)
	<-b.exited
}

func (b *gdmBroker) stop() {
	if b.cmd == nil {
		return
	}
	select {
	case <-b.exited:
		return
	default:
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exited:
	case <-time.After(3 * time.Second):
		b.kill()
	}
}

// newGDMBroker prepares (and starts) tspbroker -dataplane in ns on addr.
func newGDMBroker(t *testing.T, ns, dir, bin, addr string, extra ...string) *gdmBroker {
	t.Helper()
	lf, err := os.Create(filepath.Join(dir, "broker-"+ns+".log"))
	if err != nil {
		t.Fatal(err)
	}
	b := &gdmBroker{t: t, ns: ns, bin: bin, logf: lf, args: append([]string{"-dataplane", "-udp", addr + ":3653", "-tcp", addr + ":3653",
		"-server-v4", addr, "-server-v6", e2eServerV6, "-auth", "ANONYMOUS"}, extra...)}
	b.start()
	t.Cleanup(func() {
		b.stop()
		if t.Failed() {
			raw, _ := os.ReadFile(lf.Name())
			t.Logf("tspbroker log:\n%s", raw)
		}
	})
	return b
}

// gdmClient is `gogoc run -f conf` in a namespace; ups receives the time
// of each "tunnel up:" line.
type gdmClient struct {
	cmd    *exec.Cmd
	ups    chan time.Time
	lines  chan string
	exited chan error
	status string
	start  time.Time
	log    string // its stderr
}

// gdmConf writes a legacy configuration for a supervisor with short
// timers: keepalive every 2 s with a 1 s reply deadline, back-off 1 s.
// status is for `run -status-file` (status_file itself must be in
// /var/run/gogoc/).
func gdmConf(t *testing.T, dir, server, mode string, extra ...string) (conf, status string) {
	t.Helper()
	status = filepath.Join(dir, "status.json")
	lines := append([]string{
		"server=" + server, "auth_method=anonymous", "tunnel_mode=" + mode, "host_type=host",
		"keepalive=yes", "keepalive_interval=2", "keepalive_timeout=1", "keepalive_misses=3",
		"retry_delay=1", "retry_delay_max=1", "log_stderr=3",
	}, extra...)
	conf = filepath.Join(dir, "gogoc.conf")
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return conf, status
}

func startGDMClient(t *testing.T, ns, dir, gogoc, conf, status string) *gdmClient {
	t.Helper()
	c := &gdmClient{ups: make(chan time.Time, 16), lines: make(chan string, 16), status: status, start: time.Now()}
	c.cmd, c.exited, c.log = startGogocProc(t, ns, dir, gogoc, func(line string) {
		c.ups <- time.Now()
		select {
		case c.lines <- line:
		default:
		}
	}, "run", "-f", conf, "-status-file", status)
	return c
}

// waitUp returns the time of the next "tunnel up".
func (c *gdmClient) waitUp(t *testing.T, within time.Duration) time.Time {
	t.Helper()
	select {
	case at := <-c.ups:
		return at
	case err := <-c.exited:
		t.Fatalf("gogoc exited: %v", err)
	case <-time.After(within):
		t.Fatalf("no 'tunnel up' within %v", within)
	}
	return time.Time{}
}

// readStatus reads the client's status file.
func (c *gdmClient) readStatus(t *testing.T) *daemon.Status {
	t.Helper()
	st, err := daemon.ReadStatus(c.status)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// stop sends SIGTERM and wants exit status 0; it returns how long that
// took.
func (c *gdmClient) stop(t *testing.T) time.Duration {
	t.Helper()
	start := time.Now()
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	waitExit(t, c.exited, hangGuard, "SIGTERM")
	return time.Since(start)
}

// pingServer pings the broker's tunnel address from ns until one reply
// comes, for at most hangGuard: the first echo may be lost while
// neighbours are resolved on a busy machine, and a tunnel may still be
// replaced (its device gone for a moment) by a late report of the change
// it was built for.
func pingServer(ns string) error {
	deadline := time.Now().Add(hangGuard)
	for {
		err := exec.Command("ip", "netns", "exec", ns, "ping", "-6", "-c", "1", "-w", "5", e2eServerV6).Run()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// gdmPair is the basic lab: client 192.0.2.2 ── 192.0.2.1 broker.
func gdmPair(t *testing.T, tools ...string) (dir, gogoc, broker, cns, bns, cdev string) {
	e2eRequire(t, tools...)
	dir = t.TempDir()
	gogoc, broker = e2eBuild(t, dir)
	s := e2eSuffix()
	cns, bns = "gdm-c-"+s, "gdm-b-"+s
	e2eNamespaces(t, cns, bns)
	cdev = "gdm-c" + s
	e2eVeth(t, cns, cdev, "192.0.2.2/24", bns, "gdm-b"+s, e2eBrokerV4+"/24")
	return
}

// TestDaemonBrokerKilled: the broker is SIGKILLed while the tunnel is
// idle. The loss must be noticed from the keepalive, and once the broker
// is back the tunnel must come up again by itself. How long each took is
// printed (about 3 s and 0.5 s; the old client: up to 95 s and about
// 20 s); tunnel/ tests and make bench-deadpeer hold the detection timing.
func TestDaemonBrokerKilled(t *testing.T) {
	dir, gogoc, bin, cns, bns, _ := gdmPair(t)
	b := newGDMBroker(t, bns, dir, bin, e2eBrokerV4, "-keepalive", "2")
	conf, status := gdmConf(t, dir, e2eBrokerV4, "v6udpv4")
	c := startGDMClient(t, cns, dir, gogoc, conf, status)
	c.waitUp(t, hangGuard)
	time.Sleep(3 * time.Second) // idle, keepalives answered

	b.kill()
	killed := time.Now()
	var detected time.Duration
	for {
		st, err := daemon.ReadStatus(status)
		if err == nil && st.State != daemon.StateUp {
			detected = time.Since(killed)
			t.Logf("loss noticed after %v: %s (%s)", detected.Round(time.Millisecond), st.State, st.LastError)
			break
		}
		// The keepalive interval is 2 s: a loss not noticed after many
		// intervals is not noticed by the keepalive at all.
		if time.Since(killed) > hangGuard {
			t.Fatalf("loss not noticed within %v", hangGuard)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(2500 * time.Millisecond) // a few failed attempts while it is gone
	back := b.start()
	up := c.waitUp(t, hangGuard)
	again := up.Sub(back)
	t.Logf("broker killed: loss noticed after %v (keepalive 2 s; old client up to 95 s); broker back → tunnel up after %v (retry_delay 1 s; old client ≈ 20 s)",
		detected.Round(time.Millisecond), again.Round(time.Millisecond))
	if err := pingServer(cns); err != nil {
		t.Errorf("ping through the new tunnel: %v", err)
	}
	if st := c.readStatus(t); st.Reconnects < 1 || st.State != daemon.StateUp {
		t.Errorf("status after recovery: state %s, reconnects %d", st.State, st.Reconnects)
	}
	t.Logf("stopped in %v", c.stop(t).Round(time.Millisecond))
}

// TestDaemonWANChange: the client's WAN IPv4 address changes (as after a
// new DHCP lease), in two steps that the netlink watch may see apart (the
// old address goes: no route; the new one comes). The daemon must wait
// for the path to settle, bring one new tunnel from the new address
// without waiting for the keepalive (30 s), give the WAN change as its
// reason, and keep that tunnel: a second teardown would catch the new
// device half configured. The time it took is printed.
func TestDaemonWANChange(t *testing.T) {
	dir, gogoc, bin, cns, bns, cdev := gdmPair(t)
	newGDMBroker(t, bns, dir, bin, e2eBrokerV4, "-keepalive", "30")
	conf, status := gdmConf(t, dir, e2eBrokerV4, "v6udpv4")
	c := startGDMClient(t, cns, dir, gogoc, conf, status)
	c.waitUp(t, hangGuard)
	if st := c.readStatus(t); !strings.HasPrefix(st.LocalEndpoint, "192.0.2.2:") {
		t.Fatalf("local endpoint %s before the change", st.LocalEndpoint)
	}
	time.Sleep(1100 * time.Millisecond) // outside the one-attempt-per-second window
	changed := time.Now()
	e2eSh(t, "ip", "-n", cns, "addr", "del", "192.0.2.2/24", "dev", cdev)
	e2eSh(t, "ip", "-n", cns, "addr", "add", "192.0.2.3/24", "dev", cdev)
	up := c.waitUp(t, hangGuard)
	st := c.readStatus(t)
	t.Logf("WAN address 192.0.2.2 → 192.0.2.3: new tunnel from %s after %v (%v of it the settle time)",
		st.LocalEndpoint, up.Sub(changed).Round(time.Millisecond), daemon.DefaultTimings().WANSettle)
	if raw, _ := os.ReadFile(c.log); !regexp.MustCompile(`state lost from=up reason="WAN change: `).Match(raw) {
		t.Errorf("the tunnel was not left for the WAN change:\n%s", raw)
	}
	if st.State != daemon.StateUp || !strings.HasPrefix(st.LocalEndpoint, "192.0.2.3:") || st.Reconnects != 1 {
		t.Fatalf("status after the change: %s from %s, %d reconnects; want up from the new address, 1 reconnect", st.State, st.LocalEndpoint, st.Reconnects)
	}
	// The tunnel stays: no second one once the settle time is over (a
	// loaded machine only makes this wait prove less, never fail).
	select {
	case <-c.ups:
		t.Fatalf("a second new tunnel after the change (status %+v)", c.readStatus(t))
	case <-time.After(2 * daemon.DefaultTimings().WANSettle):
	}
	if err := pingServer(cns); err != nil {
		t.Errorf("ping through the new tunnel: %v", err)
	}
	if st := c.readStatus(t); st.State != daemon.StateUp || st.Reconnects != 1 {
		t.Errorf("status after the ping: %s, %d reconnects; want up, 1", st.State, st.Reconnects)
	}
	c.stop(t)
}

// TestDaemonPacketLoss: a router between client and broker drops 30% of
// the packets it forwards, in each direction (nftables numgen random).
// The tunnel must still come up; the time to the first tunnel is printed
// for three cold starts. v6anyv4 lets the TCP fallback race UDP.
//
//	client 10.88.0.2 ── 10.88.0.1 router 192.0.2.254 ── 192.0.2.1 broker
func TestDaemonPacketLoss(t *testing.T) {
	e2eRequire(t, "nft", "sysctl")
	dir := t.TempDir()
	gogoc, bin := e2eBuild(t, dir)
	s := e2eSuffix()
	cns, rns, bns := "gdm-pc-"+s, "gdm-pr-"+s, "gdm-pb-"+s
	e2eNamespaces(t, cns, rns, bns)
	e2eVeth(t, cns, "gdm-pc"+s, "10.88.0.2/24", rns, "gdm-prc"+s, "10.88.0.1/24")
	e2eVeth(t, rns, "gdm-prb"+s, "192.0.2.254/24", bns, "gdm-pb"+s, e2eBrokerV4+"/24")
	e2eSh(t, "ip", "-n", cns, "route", "add", "default", "via", "10.88.0.1")
	e2eSh(t, "ip", "-n", bns, "route", "add", "10.88.0.0/24", "via", "192.0.2.254")
	e2eSh(t, "ip", "netns", "exec", rns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	newGDMBroker(t, bns, dir, bin, e2eBrokerV4, "-keepalive", "30")
	rules := "table inet gdmloss {\n\tchain lossy { type filter hook forward priority 0; policy accept; numgen random mod 100 < 30 counter drop; }\n}\n"
	nftFile := filepath.Join(dir, "loss.nft")
	if err := os.WriteFile(nftFile, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	e2eSh(t, "ip", "netns", "exec", rns, "nft", "-f", nftFile)
	var times []time.Duration
	var transports []string
	for i := range 3 {
		run := filepath.Join(dir, fmt.Sprint(i))
		if err := os.MkdirAll(run, 0o755); err != nil {
			t.Fatal(err)
		}
		conf, status := gdmConf(t, run, e2eBrokerV4, "v6anyv4")
		c := startGDMClient(t, cns, dir, gogoc, conf, status)
		up := c.waitUp(t, 60*time.Second)
		times = append(times, up.Sub(c.start))
		st := c.readStatus(t)
		transports = append(transports, st.Transport+"/"+st.TunnelMode)
		c.stop(t)
		if times[i] > 10*time.Second { // say where the time went
			raw, _ := os.ReadFile(c.log)
			var steps []string
			for l := range strings.Lines(string(raw)) {
				if strings.Contains(l, " gogoc: state ") || strings.Contains(l, "TCP") {
					steps = append(steps, strings.TrimSpace(l))
				}
			}
			t.Logf("run %d took %v:\n\t%s", i, times[i].Round(time.Millisecond), strings.Join(steps, "\n\t"))
		}
	}
	out := e2eSh(t, "ip", "netns", "exec", rns, "nft", "list", "table", "inet", "gdmloss")
	var dropped int
	if i := strings.Index(out, "counter packets "); i >= 0 {
		_, _ = fmt.Sscanf(out[i:], "counter packets %d", &dropped)
	}
	if dropped == 0 {
		t.Fatalf("the router dropped nothing:\n%s", out)
	}
	slices.Sort(times)
	t.Logf("30%% loss each way on the path (%d packets dropped): tunnel up after %v (sorted; transport/mode %v)", dropped, times, transports)
}

// TestDaemonBrokerList: the configured broker redirects to five brokers;
// three cannot be reached (port closed, packets dropped, no host). The
// nearest live broker (the other live one answers 0.5 s later, so that a
// busy machine cannot reverse them) must be in use, tsp-broker-list.txt
// must hold the five with it first and tsp-last-server.txt the broker in
// use, each after the line that says a far broker's redirect named them.
// The slow broker is second when its answer came in time, else among the
// unreachable ones: probing stops once a broker answered and the others
// stayed silent as long again (daemon.Measure). The time to the tunnel,
// process start included, is printed.
//
//	client 192.0.2.2  ─ 192.0.2.1 redirector, .10 slow broker, .11 closed, .12 dropped, .13 absent
//	       198.51.100.2 ─ 198.51.100.1 fast broker (data plane)
func TestDaemonBrokerList(t *testing.T) {
	e2eRequire(t, "nft")
	dir := t.TempDir()
	gogoc, bin := e2eBuild(t, dir)
	s := e2eSuffix()
	cns, rns, fns := "gdm-lc-"+s, "gdm-lr-"+s, "gdm-lf-"+s
	e2eNamespaces(t, cns, rns, fns)
	e2eVeth(t, cns, "gdm-lc"+s, "192.0.2.2/24", rns, "gdm-lr"+s, "192.0.2.1/24")
	e2eVeth(t, cns, "gdm-lcf"+s, "198.51.100.2/24", fns, "gdm-lf"+s, "198.51.100.1/24")
	for _, a := range []string{"192.0.2.10/24", "192.0.2.11/24", "192.0.2.12/24"} {
		e2eSh(t, "ip", "-n", rns, "addr", "add", a, "dev", "gdm-lr"+s)
	}
	nftFile := filepath.Join(dir, "drop.nft")
	if err := os.WriteFile(nftFile, []byte("table ip gdmdrop {\n\tchain in { type filter hook input priority 0; ip daddr 192.0.2.12 drop; }\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e2eSh(t, "ip", "netns", "exec", rns, "nft", "-f", nftFile)

	// The fast broker carries the tunnel.
	newGDMBroker(t, fns, dir, bin, "198.51.100.1")
	// The slow one runs in this process (its replies held back 20 ms),
	// with its socket in the redirector's namespace.
	h, err := netns.GetFromName(rns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	slow, err := testbroker.New(testbroker.Config{Faults: testbroker.Faults{Delay: 500 * time.Millisecond}, Log: logx.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	if err := tunnel.InNetNS(h, func() error { _, _, err := slow.Start("192.0.2.10:3653", ""); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = slow.Close() })
	order := []string{"192.0.2.11", "192.0.2.10", "192.0.2.12", "198.51.100.1", "192.0.2.13"}
	redir := []string{"-udp", "192.0.2.1:3653", "-tcp", "", "-auth", "ANONYMOUS"}
	for _, a := range order {
		redir = append(redir, "-redirect", "ipv4="+a)
	}
	lf, err := os.Create(filepath.Join(dir, "redirector.log"))
	if err != nil {
		t.Fatal(err)
	}
	r := &gdmBroker{t: t, ns: rns, bin: bin, logf: lf, args: redir}
	r.start()
	t.Cleanup(r.stop)

	conf, status := gdmConf(t, dir, "192.0.2.1", "v6udpv4")
	c := startGDMClient(t, cns, dir, gogoc, conf, status)
	up := c.waitUp(t, hangGuard)
	el := up.Sub(c.start)
	st := c.readStatus(t)
	t.Logf("redirect to 5 brokers (3 unreachable): up via %s after %v (process start included)", st.Broker, el.Round(time.Millisecond))
	if st.Broker != "198.51.100.1" {
		t.Errorf("in use: %s, want the nearest live broker 198.51.100.1", st.Broker)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "tsp-broker-list.txt"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	t.Logf("tsp-broker-list.txt:\n%s", raw)
	const origin = "# gogoc: named by a broker's redirect; same_host=no"
	if len(lines) != 6 || lines[0] != origin || lines[1] != "198.51.100.1" || !strings.HasSuffix(string(raw), "\n") {
		t.Errorf("tsp-broker-list.txt: want the origin line, 198.51.100.1, then the other four")
	} else if rest := slices.Sorted(slices.Values(lines[2:])); !slices.Equal(rest, []string{"192.0.2.10", "192.0.2.11", "192.0.2.12", "192.0.2.13"}) {
		t.Errorf("other entries %v", rest)
	}
	last, _ := os.ReadFile(filepath.Join(dir, "tsp-last-server.txt"))
	if want := origin + "\n198.51.100.1\n"; string(last) != want {
		t.Errorf("tsp-last-server.txt = %q, want %q", last, want)
	}
	c.stop(t)
}

// TestDaemonControl: SIGUSR1 and `gogoc reconnect` bring a new tunnel,
// `gogoc status --json` reports the daemon, SIGHUP with an unchanged file
// keeps the tunnel and with a changed keepalive renegotiates, SIGTERM
// exits 0 (the time it took is printed) leaving state stopped, after which
// `gogoc reconnect` says nobody runs and succeeds.
func TestDaemonControl(t *testing.T) {
	dir, gogoc, bin, cns, bns, _ := gdmPair(t)
	newGDMBroker(t, bns, dir, bin, e2eBrokerV4)
	conf, status := gdmConf(t, dir, e2eBrokerV4, "v6udpv4")
	c := startGDMClient(t, cns, dir, gogoc, conf, status)
	c.waitUp(t, hangGuard)

	out, err := exec.Command(gogoc, "status", "--json", "-status-file", status).Output()
	if err != nil {
		t.Fatalf("gogoc status --json: %v", err)
	}
	var st daemon.Status
	if err := json.Unmarshal(out, &st); err != nil || st.State != daemon.StateUp || st.PID != c.cmd.Process.Pid || st.TunnelMode != "v6udpv4" {
		t.Fatalf("gogoc status --json: %v\n%s", err, out)
	}
	human, _ := exec.Command(gogoc, "status", "-status-file", status).Output()
	if !strings.Contains(string(human), "state:      up since") || !strings.Contains(string(human), "v6udpv4 on gogoc") {
		t.Errorf("gogoc status:\n%s", human)
	}

	time.Sleep(1100 * time.Millisecond)
	_ = c.cmd.Process.Signal(syscall.SIGUSR1)
	c.waitUp(t, hangGuard)
	time.Sleep(1100 * time.Millisecond)
	out, err = exec.Command(gogoc, "reconnect", "-status-file", status).CombinedOutput()
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("pid %d", c.cmd.Process.Pid)) {
		t.Fatalf("gogoc reconnect: %v\n%s", err, out)
	}
	c.waitUp(t, hangGuard)

	time.Sleep(1100 * time.Millisecond)
	_ = c.cmd.Process.Signal(syscall.SIGHUP)
	// Once the daemon says it read the file and found nothing relevant,
	// a renegotiation would have begun already.
	waitLog(t, c.log, regexp.MustCompile(`configuration reloaded renegotiate=false`), 1)
	select {
	case <-c.ups:
		t.Fatal("SIGHUP with an unchanged configuration renegotiated")
	case <-time.After(100 * time.Millisecond):
	}
	conf2, _ := gdmConf(t, dir, e2eBrokerV4, "v6udpv4", "keepalive_interval=7")
	if conf2 != conf {
		t.Fatal("configuration path changed")
	}
	_ = c.cmd.Process.Signal(syscall.SIGHUP)
	c.waitUp(t, hangGuard)
	t.Logf("SIGUSR1, gogoc reconnect and a relevant SIGHUP each renegotiated; an unchanged SIGHUP did not")

	took := c.stop(t)
	if st := c.readStatus(t); st.State != daemon.StateStopped {
		t.Errorf("state after SIGTERM: %s", st.State)
	}
	e2eAssertClean(t, cns, "gogoc")
	out, err = exec.Command(gogoc, "reconnect", "-status-file", status).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "no gogoc daemon running") {
		t.Errorf("gogoc reconnect without a daemon: %v\n%s", err, out)
	}
	if code := exitCode(exec.Command(gogoc, "status", "-status-file", status).Run()); code != exitNotRunning {
		t.Errorf("gogoc status without a daemon: exit %d, want %d", code, exitNotRunning)
	}
	t.Logf("SIGTERM: exit 0 after %v, nothing left behind", took.Round(time.Millisecond))
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}
