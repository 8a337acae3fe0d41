package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jsklein/gogoc/config"
	"github.com/jsklein/gogoc/daemon"
)

// exitNotRunning is LSB's "program is not running" status code.
const exitNotRunning = 3

// statusFlags are shared by status and reconnect: where the status file is.
type statusFlags struct {
	file, legacy, uci *string
}

func addStatusFlags(fs *flag.FlagSet) *statusFlags {
	return &statusFlags{
		file:   fs.String("status-file", "", "status JSON `file` (default: status_file of the configuration, "+config.DefaultStatusFile+")"),
		legacy: fs.String("f", "", "legacy `gogoc.conf` naming the status file"),
		uci:    fs.String("uci", "", "UCI `file` naming the status file"),
	}
}

// path resolves the status file: the flag, else the configuration's
// status_file, else the default.
func (s *statusFlags) path(cmd string, stderr io.Writer) (string, bool) {
	if *s.file != "" {
		return *s.file, true
	}
	path, format := *s.legacy, config.FormatLegacy
	if *s.uci != "" {
		path, format = *s.uci, config.FormatUCI
	}
	if path == "" {
		return config.DefaultStatusFile, true
	}
	c, ok := load(path, format, cmd, stderr)
	if !ok {
		return "", false
	}
	return c.StatusFile, true
}

// readLive reads the status file and reports whether the daemon that wrote
// it is still running.
func readLive(path string) (*daemon.Status, bool, error) {
	st, err := daemon.ReadStatus(path)
	if err != nil {
		return nil, false, err
	}
	return st, st.State != daemon.StateStopped && isGogoc(st.PID), nil
}

// isGogoc reports whether pid is a running gogoc: a stale status file
// must not make us signal whatever process has the number now.
func isGogoc(pid int) bool {
	if pid <= 0 {
		return false
	}
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	argv0, _, _ := strings.Cut(string(raw), "\x00")
	return argv0[strings.LastIndexByte(argv0, '/')+1:] == "gogoc"
}

// cmdStatus prints the daemon's status file for people, or with --json as
// it is (state "stopped" when its writer is gone).
func cmdStatus(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("gogoc status", flag.ContinueOnError)
	fl.SetOutput(stderr)
	asJSON := fl.Bool("json", false, "print the status as JSON")
	sf := addStatusFlags(fl)
	if code, done := parseFlags(fl, args); done {
		return code
	}
	path, ok := sf.path("gogoc status", stderr)
	if !ok {
		return 2
	}
	st, live, err := readLive(path)
	if errors.Is(err, fs.ErrNotExist) {
		if *asJSON {
			fmt.Fprintln(stdout, `{"state":"stopped"}`)
		} else {
			fmt.Fprintf(stdout, "gogoc is not running (no %s)\n", path)
		}
		return exitNotRunning
	}
	if err != nil {
		fmt.Fprintf(stderr, "gogoc status: %v\n", err)
		return 1
	}
	if !live && st.State != daemon.StateStopped {
		st.State = daemon.StateStopped
		st.LastError = strings.TrimSpace(st.LastError + fmt.Sprintf(" (pid %d is gone)", st.PID))
	}
	if *asJSON {
		b, err := daemon.MarshalStatus(st)
		if err != nil {
			fmt.Fprintf(stderr, "gogoc status: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, string(b))
	} else {
		printStatus(stdout, st, time.Now())
	}
	if !live {
		return exitNotRunning
	}
	return 0
}

func printStatus(w io.Writer, s *daemon.Status, now time.Time) {
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "%-12s%s\n", k+":", v)
		}
	}
	since := s.Since
	if t, err := daemon.ParseStamp(s.Since); err == nil {
		since += " (" + now.Sub(t).Round(time.Second).String() + ")"
	}
	line("state", string(s.State)+" since "+since)
	if s.State != daemon.StateStopped {
		line("pid", strconv.Itoa(s.PID))
	}
	if s.Broker != "" {
		line("broker", s.Broker+transportNote(s.Transport))
	}
	if s.TunnelMode != "" {
		line("tunnel", fmt.Sprintf("%s on %s, %s data plane", s.TunnelMode, s.Interface, s.DataPlane))
	}
	if s.LocalEndpoint != "" {
		line("endpoints", s.LocalEndpoint+" → "+s.RemoteEndpoint)
	}
	if s.ClientIPv6 != "" {
		line("ipv6", s.ClientIPv6+" ↔ "+s.ServerIPv6)
	}
	if s.ClientIPv4 != "" && s.TunnelMode == "v4v6" {
		line("ipv4", s.ClientIPv4+" ↔ "+s.ServerIPv4)
	}
	if s.Prefix != "" {
		p := s.Prefix
		if s.LANPrefix != "" {
			p += " (LAN " + s.LANPrefix + ")"
		}
		line("prefix", p)
	}
	if k := s.Keepalive; k != nil {
		line("keepalive", fmt.Sprintf("every %d s, rtt %.2f ms, %d sent, %d lost", k.IntervalS, k.RTTMs, k.Sent, k.Lost))
	}
	line("reconnects", strconv.FormatUint(s.Reconnects, 10))
	line("last error", s.LastError)
	line("updated", s.Updated)
}

func transportNote(t string) string {
	if t == "" {
		return ""
	}
	return " (" + t + ")"
}

// cmdReconnect asks the running daemon for a new tunnel (SIGUSR1). With no
// daemon running it says so and succeeds: the hotplug script calls it on
// every WAN event, daemon or not.
func cmdReconnect(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("gogoc reconnect", flag.ContinueOnError)
	fl.SetOutput(stderr)
	sf := addStatusFlags(fl)
	if code, done := parseFlags(fl, args); done {
		return code
	}
	path, ok := sf.path("gogoc reconnect", stderr)
	if !ok {
		return 2
	}
	st, live, err := readLive(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(stderr, "gogoc reconnect: %v\n", err)
		return 1
	}
	if !live {
		fmt.Fprintln(stdout, "gogoc reconnect: no gogoc daemon running; nothing to do")
		return 0
	}
	if err := syscall.Kill(st.PID, syscall.SIGUSR1); err != nil {
		fmt.Fprintf(stderr, "gogoc reconnect: signal pid %d: %v\n", st.PID, err)
		return 1
	}
	fmt.Fprintf(stdout, "gogoc reconnect: asked pid %d for a new tunnel\n", st.PID)
	return 0
}
