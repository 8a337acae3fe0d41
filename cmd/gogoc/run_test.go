package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jsklein/gogoc/config"
	"github.com/jsklein/gogoc/internal/caps/captest"
)

func TestRunFlagErrors(t *testing.T) {
	var out, errb strings.Builder
	if code := cmdRun([]string{"-mode", "bogus"}, &out, &errb); code != 2 {
		t.Fatalf("invalid mode: exit %d, want 2 (stderr %q)", code, errb.String())
	}
	if code := cmdRun([]string{"extra"}, &out, &errb); code != 2 {
		t.Fatalf("stray argument: exit %d, want 2", code)
	}
	// -router alone names no LAN device: run refuses, naming the key,
	// instead of sending advertisements on "lo" and failing on every tunnel.
	errb.Reset()
	if code := cmdRun([]string{"-server", "192.0.2.1", "-auth", "anonymous", "-router"}, &out, &errb); code != 2 ||
		!strings.Contains(errb.String(), "if_prefix: missing: host_type router needs the LAN device") {
		t.Fatalf("-router without if_prefix: exit %d, stderr %q", code, errb.String())
	}
	// The shipped OpenWrt default is disabled: run refuses before any traffic.
	errb.Reset()
	if code := cmdRun([]string{"--uci", "../../openwrt/gogoc/files/gogoc.config"}, &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), "enabled '1'") {
		t.Fatalf("disabled config: exit %d, stderr %q", code, errb.String())
	}
}

// TestRunNetns runs the built gogoc and tspbroker -dataplane in two network
// namespaces: the tunnel comes up and carries a ping, survives a broker
// restart by renegotiating, and leaves no device behind after SIGTERM.
func TestRunNetns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces and TUN devices")
	}
	if testing.Short() {
		t.Skip("builds binaries and creates namespaces; skipped with -short")
	}
	for _, tool := range []string{"ip", "ping"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	dir := t.TempDir()
	for _, pkg := range []string{".", "../tspbroker"} {
		out, err := exec.Command("go", "build", "-o", dir+"/", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	gogoc, broker := filepath.Join(dir, "gogoc"), filepath.Join(dir, "tspbroker")

	suffix := fmt.Sprint(os.Getpid() % 100000)
	bns, cns := "gogoc-tb-"+suffix, "gogoc-tc-"+suffix
	sh := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	for _, ns := range []string{bns, cns} {
		_ = exec.Command("ip", "netns", "del", ns).Run()
		sh("ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		sh("ip", "-n", ns, "link", "set", "lo", "up")
	}
	sh("ip", "link", "add", "veth-tc", "netns", cns, "type", "veth", "peer", "name", "veth-tb", "netns", bns)
	sh("ip", "-n", cns, "addr", "add", "192.0.2.2/24", "dev", "veth-tc")
	sh("ip", "-n", bns, "addr", "add", "192.0.2.1/24", "dev", "veth-tb")
	sh("ip", "-n", cns, "link", "set", "veth-tc", "up")
	sh("ip", "-n", bns, "link", "set", "veth-tb", "up")

	startBroker := func() *exec.Cmd {
		t.Helper()
		cmd := exec.Command("ip", "netns", "exec", bns, broker, "-dataplane", "-udp", "192.0.2.1:3653", "-tcp", "",
			"-server-v4", "192.0.2.1", "-server-v6", "2001:db8:ab::1", "-auth", "ANONYMOUS")
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		log, err := os.Create(filepath.Join(dir, "broker.log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = log
		if err := cmd.Start(); err != nil {
			t.Fatalf("start tspbroker: %v", err)
		}
		rd := bufio.NewReader(out)
		line, err := rd.ReadString('\n')
		if !strings.HasPrefix(line, "listening udp") {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			raw, _ := os.ReadFile(log.Name())
			t.Fatalf("tspbroker did not start (%q, %v):\n%s", line, err, raw)
		}
		go func() { _, _ = io.Copy(io.Discard, rd) }() // keep the pipe drained
		return cmd
	}
	stopBroker := func(cmd *exec.Cmd) {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}
	b := startBroker()
	t.Cleanup(func() { stopBroker(b) })

	// v6anyv4 with a declared client_v4 that differs from the source: the
	// broker sees NAT and offers v6udpv4.
	c := startClient(t, cns, dir, gogoc, "-mode", "v6anyv4", "-client-v4", "198.51.100.7")
	c.waitUp(t, "v6udpv4 gogoc ")
	if err := c.ping("2"); err != nil {
		t.Fatalf("ping through the tunnel: %v", err)
	}
	// A restarted broker knows no session: the next packet gets a 310
	// status datagram, and gogoc must renegotiate.
	stopBroker(b)
	b = startBroker()
	_ = c.ping("1") // provokes the 310; the reply cannot come
	c.waitUp(t, "v6udpv4 gogoc ")
	if err := c.ping("2"); err != nil {
		t.Fatalf("ping after renegotiation: %v", err)
	}
	c.stop(t, "gogoc")

	// v6v4: protocol 41 from the address the TSP socket used.
	c = startClient(t, cns, dir, gogoc, "-mode", "v6v4")
	c.waitUp(t, "v6v4 gogoc6in4 ")
	if err := c.ping("2"); err != nil {
		t.Fatalf("ping through the v6v4 tunnel: %v", err)
	}
	c.stop(t, "gogoc6in4")
}

// clientProc is a `gogoc run` in a namespace.
type clientProc struct {
	cmd    *exec.Cmd
	ns     string
	ups    chan string // "tunnel up:" lines
	exited chan error
}

func startClient(t *testing.T, ns, dir, gogoc string, args ...string) *clientProc {
	t.Helper()
	// Each client writes its status file into the test's directory, not
	// the system's /var/run/gogoc.
	args = append([]string{"run", "-server", "192.0.2.1", "-auth", "anonymous", "-keepalive", "5",
		"-status-file", filepath.Join(dir, "status-"+ns+".json")}, args...)
	c := &clientProc{ns: ns, ups: make(chan string, 4)}
	c.cmd, c.exited, _ = startGogocProc(t, ns, dir, gogoc, func(line string) { c.ups <- line }, args...)
	return c
}

// startGogocProc runs `ip netns exec ns gogoc args...` with its stderr in a
// log file in dir, and hands each "tunnel up:" line of its stdout to onUp.
// At the end of the test the process is killed and, when the test failed
// or runs with -v, the tail of its log is shown.
//
// gogoc runs as it does on a router: as an unprivileged uid holding only
// CAP_NET_ADMIN and CAP_NET_RAW (unprivileged), owning dir (its config,
// status and log files). GOGOC_E2E_ROOT=1 runs it as root instead.
func startGogocProc(t *testing.T, ns, dir, gogoc string, onUp func(line string), args ...string) (cmd *exec.Cmd, exited chan error, logPath string) {
	t.Helper()
	return startGogocProcAs(t, e2eCaps(), ns, dir, gogoc, onUp, args...)
}

// e2eCaps is how the namespace tests run gogoc: rootCaps, or the two
// capabilities a router grants it.
func e2eCaps() string {
	if os.Getenv("GOGOC_E2E_ROOT") == "1" {
		return rootCaps
	}
	return "+net_admin,+net_raw"
}

// rootCaps asks startGogocProcAs for a plain root process.
const rootCaps = "root"

// startGogocProcAs is startGogocProc with the privileges given: rootCaps,
// or the capabilities of uid 4242 (captest's "+net_admin,+net_raw" form).
func startGogocProcAs(t *testing.T, privs, ns, dir, gogoc string, onUp func(line string), args ...string) (cmd *exec.Cmd, exited chan error, logPath string) {
	t.Helper()
	if privs == rootCaps {
		cmd = exec.Command("ip", append([]string{"netns", "exec", ns, gogoc}, args...)...)
	} else {
		cmd = captest.Command(t, privs, ns, append([]string{gogoc}, args...)...)
		giveDir(t, dir)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	lf, err := os.CreateTemp(dir, "gogoc-*.log")
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close() // the child has its own descriptor
	cmd.Stderr = lf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start gogoc: %v", err)
	}
	exited = make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() || testing.Verbose() {
			raw, _ := os.ReadFile(lf.Name())
			if len(raw) > 20000 {
				raw = raw[len(raw)-20000:]
			}
			t.Logf("gogoc %s log (tail):\n%s", strings.Join(args, " "), raw)
		}
	})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "tunnel up:") {
				onUp(sc.Text())
			}
		}
	}()
	return cmd, exited, lf.Name()
}

// waitExit wants the process to exit with status 0 within d of a signal.
func waitExit(t *testing.T, exited <-chan error, d time.Duration, signal string) {
	t.Helper()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("gogoc after %s: %v", signal, err)
		}
	case <-time.After(d):
		t.Fatalf("gogoc still running %v after %s", d, signal)
	}
}

// waitUp waits for a "tunnel up" line that contains want.
func (c *clientProc) waitUp(t *testing.T, want string) {
	t.Helper()
	select {
	case line := <-c.ups:
		t.Log(line)
		if !strings.Contains(line, want) {
			t.Fatalf("got %q, want it to contain %q", line, want)
		}
	case err := <-c.exited:
		t.Fatalf("gogoc exited before the tunnel came up: %v", err)
	case <-time.After(hangGuard):
		t.Fatalf("no 'tunnel up' within %v", hangGuard)
	}
}

// ping pings the broker's tunnel address from the client namespace.
func (c *clientProc) ping(count string) error {
	return exec.Command("ip", "netns", "exec", c.ns, "ping", "-6", "-c", count, "-i", "0.2", "-W", "1", "2001:db8:ab::1").Run()
}

// stop sends SIGTERM and checks a clean exit without the device.
func (c *clientProc) stop(t *testing.T, ifName string) {
	t.Helper()
	start := time.Now()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitExit(t, c.exited, hangGuard, "SIGTERM")
	t.Logf("stopped in %v", time.Since(start).Round(time.Millisecond))
	if err := exec.Command("ip", "-n", c.ns, "link", "show", "dev", ifName).Run(); err == nil {
		t.Fatalf("tunnel device %s still exists after SIGTERM", ifName)
	}
}

// TestRouterFlagWithoutLAN: negotiate only asks for a prefix, so -router
// alone is fine there; run would have to advertise it, so it refuses.
func TestRouterFlagWithoutLAN(t *testing.T) {
	for _, needLAN := range []bool{false, true} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		bf := addBrokerFlags(fs)
		bf.needLAN = needLAN
		if err := fs.Parse([]string{"-server", "192.0.2.1", "-auth", "anonymous", "-router"}); err != nil {
			t.Fatal(err)
		}
		var errb strings.Builder
		c, ok := bf.config(fs, "t", &errb)
		if ok == needLAN {
			t.Errorf("needLAN %v: accepted %v (stderr %q)", needLAN, ok, errb.String())
		}
		if !needLAN && (c.HostType != config.HostTypeRouter || c.IfPrefix == "") {
			t.Errorf("negotiate: host_type %s, if_prefix %q; want router with some device", c.HostType, c.IfPrefix)
		}
	}
}

// lanConfig carries the router-mode keys over; ra none keeps the address
// and routes but sends no RAs.
func TestLANConfig(t *testing.T) {
	c := config.Defaults(config.FormatUCI)
	c.HostType, c.IfPrefix, c.SubnetID = config.HostTypeRouter, "br-lan", 0x2a
	c.DNSServersRA = []netip.Addr{netip.MustParseAddr("2001:db8::53")}
	got := lanConfig(&c, nil)
	if got.Interface != "br-lan" || got.SubnetID != 0x2a || !got.Advertise || len(got.DNS) != 1 || got.DNS[0] != c.DNSServersRA[0] {
		t.Fatalf("lanConfig: %+v", got)
	}
	c.RA = config.RANone
	if lanConfig(&c, nil).Advertise {
		t.Fatal("ra none: the LAN side advertises")
	}
	c.RAFlags = []config.RAFlag{config.RAFlagOther, config.RAFlagNone, config.RAFlagManaged}
	if got := lanConfig(&c, nil); !got.Managed || !got.Other || got.HomeAgent {
		t.Fatalf("ra_flags %v: M %v O %v H %v", c.RAFlags, got.Managed, got.Other, got.HomeAgent)
	}
}

// -ra-flags replaces the file's ra_flags (the OpenWrt init script passes
// the dhcp section's list through it); empty keeps them; a bad value is
// refused before anything starts.
func TestRunRAFlagsFlag(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "gogoc")
	if err := os.WriteFile(conf, []byte("config gogoc 'main'\n\toption server 'broker.example.net'\n\toption auth_method 'anonymous'\n\tlist ra_flags 'other-config'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	read := func(args ...string) ([]config.RAFlag, string) {
		fs := flag.NewFlagSet("gogoc run", flag.ContinueOnError)
		var errb strings.Builder
		fs.SetOutput(&errb)
		bf := addBrokerFlags(fs)
		bf.raFlags = fs.String("ra-flags", "", "")
		if err := fs.Parse(append([]string{"-uci", conf}, args...)); err != nil {
			t.Fatal(err)
		}
		c, ok := bf.config(fs, "gogoc run", &errb)
		if !ok {
			return nil, errb.String()
		}
		return c.RAFlags, ""
	}
	if got, _ := read(); !slices.Equal(got, []config.RAFlag{config.RAFlagOther}) {
		t.Errorf("from the file: %v", got)
	}
	if got, _ := read("-ra-flags", "managed-config,other-config"); !slices.Equal(got, []config.RAFlag{config.RAFlagManaged, config.RAFlagOther}) {
		t.Errorf("-ra-flags managed-config,other-config: %v", got)
	}
	if got, _ := read("-ra-flags", ""); !slices.Equal(got, []config.RAFlag{config.RAFlagOther}) {
		t.Errorf("-ra-flags '': %v, want the file's", got)
	}
	if _, msg := read("-ra-flags", "managed"); !strings.Contains(msg, `ra_flags: "managed" is not one of`) {
		t.Errorf("-ra-flags managed: %q", msg)
	}
}

// giveDir hands dir and what is in it to captest.UID, as the OpenWrt init
// script hands the daemon its directory, and lets that uid reach dir
// through the test's temporary directories (mode 0700).
func giveDir(t *testing.T, dir string) {
	t.Helper()
	uid, _ := strconv.Atoi(captest.UID)
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, uid)
	})
	if err != nil {
		t.Fatalf("give %s to uid %d: %v", dir, uid, err)
	}
	captest.Reach(t, filepath.Dir(dir))
}
