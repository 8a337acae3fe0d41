package main

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jsklein/gogoc/daemon"
)

// privLab is the basic client ── broker lab of gdmPair with a status file
// and a log for each gogoc started in it.
type privLab struct {
	dir, gogoc, broker, cns, bns string
}

func newPrivLab(t *testing.T) *privLab {
	dir, gogoc, broker, cns, bns, _ := gdmPair(t)
	return &privLab{dir: dir, gogoc: gogoc, broker: broker, cns: cns, bns: bns}
}

// run starts gogoc with privs and args; it returns the process, its exit
// channel and its log.
func (l *privLab) run(t *testing.T, privs string, args ...string) (*exec.Cmd, chan error, string, chan string) {
	t.Helper()
	ups := make(chan string, 4)
	args = append([]string{"run", "-v", "-server", e2eBrokerV4, "-auth", "anonymous", "-status-file", filepath.Join(l.dir, "status.json")}, args...)
	cmd, exited, logPath := startGogocProcAs(t, privs, l.cns, l.dir, l.gogoc, func(line string) { ups <- line }, args...)
	return cmd, exited, logPath, ups
}

// upLine waits for gogoc's "tunnel up:" line and returns it; gogoc
// exiting first, or the hang guard passing, fails the test with its log.
func upLine(t *testing.T, ups <-chan string, exited <-chan error, logPath string) string {
	t.Helper()
	select {
	case line := <-ups:
		t.Log(line)
		return line
	case err := <-exited:
		raw, _ := os.ReadFile(logPath)
		t.Fatalf("gogoc exited: %v\n%s", err, raw)
	case <-time.After(hangGuard):
		raw, _ := os.ReadFile(logPath)
		t.Fatalf("no tunnel within %v:\n%s", hangGuard, raw)
	}
	return ""
}

// exitFail wants gogoc to exit with status 1 before the hang guard
// passes and returns its log.
func exitFail(t *testing.T, exited <-chan error, logPath string) string {
	t.Helper()
	select {
	case err := <-exited:
		raw, _ := os.ReadFile(logPath)
		if exitCode(err) != 1 {
			t.Fatalf("gogoc exit %v, want status 1; log:\n%s", err, raw)
		}
		return string(raw)
	case <-time.After(hangGuard):
		raw, _ := os.ReadFile(logPath)
		t.Fatalf("gogoc still running after %v; log:\n%s", hangGuard, raw)
		return ""
	}
}

// TestRunMissingCapability drops each of the two capabilities in turn:
// gogoc refuses to start when the configuration needs the missing one for
// certain, naming it and why; when only the broker's answer shows it is
// needed (a userspace v6v4 plane), the failing operation names it, the
// daemon stops trying (it cannot heal) and leaves nothing behind.
func TestRunMissingCapability(t *testing.T) {
	l := newPrivLab(t)
	e2eBroker(t, l.bns, l.dir, l.broker)

	for _, tc := range []struct {
		name, caps string
		args       []string
		want       string
	}{
		{"without CAP_NET_ADMIN", "+net_raw", []string{"-mode", "v6v4", "-keepalive", "0"},
			"gogoc run: missing CAP_NET_ADMIN (for the tunnel device, its addresses and routes); running as uid 4242 gid 4242 with capabilities CAP_NET_RAW"},
		{"without CAP_NET_RAW, keepalive", "+net_admin", []string{"-mode", "v6udpv4", "-keepalive", "5"},
			"gogoc run: missing CAP_NET_RAW (for keepalive (raw ICMP socket)); running as uid 4242 gid 4242 with capabilities CAP_NET_ADMIN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, exited, logPath, _ := l.run(t, tc.caps, tc.args...)
			if out := exitFail(t, exited, logPath); !strings.Contains(out, tc.want) {
				t.Errorf("no %q in:\n%s", tc.want, out)
			}
		})
	}
	t.Run("without CAP_NET_RAW, userspace v6v4 offered", func(t *testing.T) {
		// The userspace plane, whether or not the kernel has sit; asked
		// for v6anyv4, so that only the broker's answer (v6v4, no NAT
		// here) shows a raw socket is needed.
		conf, _ := gdmConf(t, l.dir, e2eBrokerV4, "v6anyv4", "data_plane=userspace", "keepalive=no")
		_, exited, logPath, ups := l.run(t, "+net_admin", "-f", conf)
		out := exitFail(t, exited, logPath)
		select {
		case line := <-ups:
			t.Errorf("tunnel came up: %s", line)
		default:
		}
		for _, want := range []string{
			"protocol-41 socket to " + e2eBrokerV4 + ": dial ip4:41 ",
			": socket: operation not permitted (needs CAP_NET_RAW)",
			"giving up: a capability is missing needs=CAP_NET_RAW",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("no %q in:\n%s", want, out)
			}
		}
		raw, err := os.ReadFile(filepath.Join(l.dir, "status.json"))
		if err != nil {
			t.Fatal(err)
		}
		var st daemon.Status
		if err := json.Unmarshal(raw, &st); err != nil {
			t.Fatal(err)
		}
		if st.State != daemon.StateStopped || !strings.Contains(st.LastError, "(needs CAP_NET_") {
			t.Errorf("status %s, last_error %q; want stopped and the capability named", st.State, st.LastError)
		}
		e2eAssertClean(t, l.cns, "gogoc6in4")
	})
}

// TestRunAsRoot is the root variant: gogoc started as root says so and
// brings the tunnel up as before.
func TestRunAsRoot(t *testing.T) {
	l := newPrivLab(t)
	e2eBroker(t, l.bns, l.dir, l.broker)
	cmd, exited, logPath, ups := l.run(t, rootCaps, "-mode", "v6udpv4", "-keepalive", "5")
	upLine(t, ups, exited, logPath)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	waitExit(t, exited, hangGuard, "SIGTERM")
	raw, _ := os.ReadFile(logPath)
	if !strings.Contains(string(raw), "running as root with all capabilities") {
		t.Errorf("no privileges line in:\n%s", raw)
	}
}

// TestRunUnprivilegedV4V6: IPv4 over an IPv6-only uplink (raw IPv6
// protocol-4 socket and TUN, or ip6tnl) with gogoc as an unprivileged uid
// holding CAP_NET_ADMIN and CAP_NET_RAW: up, an IPv4 ping through it,
// SIGTERM, nothing left.
func TestRunUnprivilegedV4V6(t *testing.T) {
	e2eRequire(t)
	dir := t.TempDir()
	gogoc, broker := e2eBuild(t, dir)
	s := e2eSuffix()
	cns, bns := "gpv-c-"+s, "gpv-b-"+s
	e2eNamespaces(t, cns, bns)
	e2eVeth(t, cns, "gpv-c"+s, "2001:db8:46::2/64", bns, "gpv-b"+s, "2001:db8:46::1/64")

	blog := filepath.Join(dir, "broker.log")
	lf, err := os.Create(blog)
	if err != nil {
		t.Fatal(err)
	}
	bc := exec.Command("ip", "netns", "exec", bns, broker, "-dataplane", "-udp", "[2001:db8:46::1]:3653", "-tcp", "",
		"-tunnels", "V4V6", "-auth", "ANONYMOUS")
	bout, err := bc.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	bc.Stderr = lf
	if err := bc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = bc.Process.Kill()
		_ = bc.Wait()
		if t.Failed() {
			raw, _ := os.ReadFile(blog)
			t.Logf("tspbroker log:\n%s", raw)
		}
	})
	rd := bufio.NewReader(bout)
	if line, err := rd.ReadString('\n'); !strings.HasPrefix(line, "listening udp") {
		t.Fatalf("tspbroker did not start (%q, %v)", line, err)
	}
	go func() { _, _ = io.Copy(io.Discard, rd) }()

	status := filepath.Join(dir, "status.json")
	ups := make(chan string, 4)
	cmd, exited, logPath := startGogocProcAs(t, "+net_admin,+net_raw", cns, dir, gogoc, func(line string) { ups <- line },
		"run", "-v", "-server", "[2001:db8:46::1]", "-auth", "anonymous", "-mode", "v4v6", "-keepalive", "5", "-status-file", status)
	if line := upLine(t, ups, exited, logPath); !strings.Contains(line, "v4v6 gogoc4in6 ") {
		t.Fatalf("up line %q", line)
	}
	raw, err := os.ReadFile(status)
	if err != nil {
		t.Fatal(err)
	}
	var st daemon.Status
	if err := json.Unmarshal(raw, &st); err != nil || st.ServerIPv4 == "" {
		t.Fatalf("status %s: %v", raw, err)
	}
	if out, err := exec.Command("ip", "netns", "exec", cns, "ping", "-4", "-c", "2", "-i", "0.2", "-W", "2", st.ServerIPv4).CombinedOutput(); err != nil {
		t.Fatalf("ping %s through the v4v6 tunnel: %v\n%s", st.ServerIPv4, err, out)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	waitExit(t, exited, hangGuard, "SIGTERM")
	log, _ := os.ReadFile(logPath)
	if !strings.Contains(string(log), "running as uid 4242 gid 4242 with capabilities CAP_NET_ADMIN,CAP_NET_RAW") {
		t.Errorf("no privileges line in:\n%s", log)
	}
	e2eAssertClean(t, cns, "gogoc4in6")
}

// TestRunStateFilesNotFollowed: links planted in the daemon's directory,
// pointing at files the daemon's user could write, are never followed:
// a linked log file stops the start with the reason, a linked status or
// last-server file is replaced by the daemon's own. The state directory
// is created 0750 when missing.
func TestRunStateFilesNotFollowed(t *testing.T) {
	l := newPrivLab(t)
	e2eBroker(t, l.bns, l.dir, l.broker)
	state, victims := filepath.Join(l.dir, "state"), filepath.Join(l.dir, "victims")
	if err := os.Mkdir(victims, 0o700); err != nil {
		t.Fatal(err)
	}
	victim := map[string]string{}
	for _, n := range []string{"status.json", "tsp-last-server.txt", "gogoc.log"} {
		victim[n] = filepath.Join(victims, n)
		if err := os.WriteFile(victim[n], []byte("victim\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	conf, _ := gdmConf(t, l.dir, e2eBrokerV4, "v6udpv4", "log_file=3", "log_filename=gogoc.log")
	status := filepath.Join(state, "status.json")
	start := func() (*exec.Cmd, chan error, string, chan string) {
		ups := make(chan string, 4)
		cmd, exited, logPath := startGogocProcAs(t, "+net_admin,+net_raw", l.cns, l.dir, l.gogoc, func(line string) { ups <- line },
			"run", "-f", conf, "-status-file", status)
		return cmd, exited, logPath, ups
	}

	upAndStop := func() {
		t.Helper()
		cmd, exited, logPath, ups := start()
		upLine(t, ups, exited, logPath)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		waitExit(t, exited, hangGuard, "SIGTERM")
	}

	// A missing state directory is made 0750.
	upAndStop()
	fi, err := os.Lstat(state)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o750 {
		t.Fatalf("state directory: %v %v, want a directory 0750", fi, err)
	}
	// Links in place of its files: the log link stops the start.
	for n, v := range victim {
		p := filepath.Join(state, n)
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(v, p); err != nil {
			t.Fatal(err)
		}
	}
	_, exited, logPath, _ := start() // hands the links to the daemon's user too
	out := exitFail(t, exited, logPath)
	if want := "log file " + filepath.Join(state, "gogoc.log") + " is a symbolic link; not following it"; !strings.Contains(out, want) {
		t.Errorf("no %q in:\n%s", want, out)
	}

	// Without it, the status and last-server links are replaced.
	if err := os.Remove(filepath.Join(state, "gogoc.log")); err != nil {
		t.Fatal(err)
	}
	upAndStop()
	for n, v := range victim {
		if raw, _ := os.ReadFile(v); string(raw) != "victim\n" {
			t.Errorf("%s was written through the link: %q", v, raw)
		}
		if n == "gogoc.log" {
			continue
		}
		fi, err := os.Lstat(filepath.Join(state, n))
		if err != nil || !fi.Mode().IsRegular() {
			t.Errorf("%s: %v %v, want the daemon's own regular file", n, fi, err)
		}
	}
}
