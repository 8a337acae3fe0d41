package pkgtest

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/jsklein/gogoc/config"
)

// runFakeDaemon is the test binary started by the procd model in place of
// `gogoc run`. It reads the configuration with the daemon's own reader
// (config.Load), refuses it as the daemon would, writes the status file
// the init script reads its pid from, and records in the call log what
// matters to the RA hand-over and to the privilege drop:
//
//	daemon|start pid=N ppid=P uid=U gid=G capeff=HEX capamb=HEX capbnd=HEX nnp=0|1 mode=host|router ra_flags=...
//	daemon|ra-start br-lan     its first RA (at once: the worst case)
//	daemon|ra-final br-lan     its last RA (router lifetime 0), after SIGTERM
//
// On SIGTERM it takes its time, as the real one tears down the tunnel and
// the LAN side before it exits, so a script that does not wait for the
// exit lets odhcpd advertise before the final RA.
func runFakeDaemon() int {
	args := os.Args[1:]
	if len(args) == 0 || args[0] != "run" {
		fmt.Fprintln(os.Stderr, "fake gogoc: only run is modelled")
		return 2
	}
	fs := flag.NewFlagSet("gogoc run", flag.ContinueOnError)
	uciPath := fs.String("uci", "", "")
	raFlags := fs.String("ra-flags", "", "")
	statusFlag := fs.String("status-file", "", "")
	if err := fs.Parse(args[1:]); err != nil {
		appendEvent("daemon", "refused flags: "+err.Error())
		return 2
	}
	c, _, err := config.Load(*uciPath, config.FormatUCI)
	if err != nil {
		fmt.Fprintf(os.Stderr, "gogoc run: %v\n", err)
		appendEvent("daemon", "refused config: "+strings.ReplaceAll(err.Error(), "\n", "; "))
		return 2
	}
	// gogoc run -ra-flags replaces the file's list, and the result is
	// validated as the daemon validates it (config.Validate).
	if *raFlags != "" {
		c.RAFlags = nil
		for _, f := range strings.FieldsFunc(*raFlags, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
			c.RAFlags = append(c.RAFlags, config.RAFlag(f))
		}
		if err := c.Validate(); err != nil {
			fmt.Fprintf(os.Stderr, "gogoc run: %v\n", err)
			appendEvent("daemon", "refused flags: "+err.Error())
			return 2
		}
	}
	if !c.Enabled {
		fmt.Fprintln(os.Stderr, "gogoc run: disabled by the configuration (set option enabled '1')")
		appendEvent("daemon", "refused config: disabled")
		return 1
	}
	status := c.StatusFile
	if *statusFlag != "" {
		status = *statusFlag
	}
	writeStatus := func(state string) error {
		// daemon/status.go creates the directory.
		if err := os.MkdirAll(filepath.Dir(status), 0o755); err != nil {
			return err
		}
		return os.WriteFile(status, []byte(fmt.Sprintf("{\n  \"state\": %q,\n  \"pid\": %d\n}\n", state, os.Getpid())), 0o644)
	}
	if err := writeStatus("negotiating"); err != nil {
		appendEvent("daemon", "status file: "+err.Error())
		return 1
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1)

	eff, amb, bnd := capSets()
	nnp, _ := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
	appendEvent("daemon", fmt.Sprintf("start pid=%d ppid=%d uid=%d gid=%d capeff=%x capamb=%x capbnd=%x nnp=%d mode=%s ra_flags=%s",
		os.Getpid(), os.Getppid(), os.Getuid(), os.Getgid(), eff, amb, bnd, nnp, c.HostType, *raFlags))
	dev := ""
	if c.HostType == config.HostTypeRouter && c.RA == config.RABuiltin {
		dev = c.IfPrefix
		appendEvent("daemon", "ra-start "+dev)
	}
	for s := range sigs {
		switch s {
		case syscall.SIGHUP:
			appendEvent("daemon", "sighup")
			continue
		case syscall.SIGUSR1:
			appendEvent("daemon", "reconnect")
			continue
		}
		break
	}
	time.Sleep(500 * time.Millisecond) // tunnel and LAN teardown
	if dev != "" {
		appendEvent("daemon", "ra-final "+dev)
	}
	writeStatus("stopped")
	time.Sleep(100 * time.Millisecond)
	return 0
}

// capSets returns the calling thread's effective and ambient capability
// sets and its bounding set, as bit masks.
func capSets() (eff, amb, bnd uint64) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if unix.Capget(&hdr, &data[0]) == nil {
		eff = uint64(data[0].Effective) | uint64(data[1].Effective)<<32
	}
	for c := 0; c < 64; c++ {
		in, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0)
		if err != nil {
			break
		}
		if in == 1 {
			bnd |= 1 << c
		}
		if a, err := unix.PrctlRetInt(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_IS_SET, uintptr(c), 0, 0); err == nil && a == 1 {
			amb |= 1 << c
		}
	}
	return eff, amb, bnd
}

// capNames are the kernel's capability numbers by procd's names (jail's
// capabilities-names.h: the CAP_ constants in lower case, matched without
// regard to case).
var capNames = []string{
	"cap_chown", "cap_dac_override", "cap_dac_read_search", "cap_fowner", "cap_fsetid", "cap_kill",
	"cap_setgid", "cap_setuid", "cap_setpcap", "cap_linux_immutable", "cap_net_bind_service",
	"cap_net_broadcast", "cap_net_admin", "cap_net_raw", "cap_ipc_lock", "cap_ipc_owner",
	"cap_sys_module", "cap_sys_rawio", "cap_sys_chroot", "cap_sys_ptrace", "cap_sys_pacct",
	"cap_sys_admin", "cap_sys_boot", "cap_sys_nice", "cap_sys_resource", "cap_sys_time",
	"cap_sys_tty_config", "cap_mknod", "cap_lease", "cap_audit_write", "cap_audit_control",
	"cap_setfcap", "cap_mac_override", "cap_mac_admin", "cap_syslog", "cap_wake_alarm",
	"cap_block_suspend", "cap_audit_read", "cap_perfmon", "cap_bpf", "cap_checkpoint_restore",
}

const capAll = ^uint64(0)

// parseCapsFile reads a capabilities file as ujail's
// parseOCIcapabilities_from_file does: five optional arrays of names; an
// absent one leaves that set whole, an unknown name fails the file.
func parseCapsFile(path string) (sets map[string]uint64, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	sets = map[string]uint64{}
	for _, k := range []string{"bounding", "effective", "inheritable", "permitted", "ambient"} {
		v, ok := raw[k]
		if !ok {
			sets[k] = capAll
			continue
		}
		var names []string
		if err := json.Unmarshal(v, &names); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		var m uint64
		for _, n := range names {
			i := capIndex(n)
			if i < 0 {
				return nil, fmt.Errorf("%s: unknown capability %q", k, n)
			}
			m |= 1 << i
		}
		sets[k] = m
	}
	return sets, nil
}

func capIndex(name string) int {
	for i, n := range capNames {
		if strings.EqualFold(n, name) {
			return i
		}
	}
	return -1
}

// runUjail is a model of procd's ujail for the one way gogoc's init script
// uses it, no namespaces: `ujail -t T -n NAME [-U user] [-G group] [-C
// caps.json] [-c] -- command...` (jail/jail.c main, post_start_hook). It
// refuses what real ujail refuses (not root, neither namespaces nor
// capabilities nor seccomp, an unreadable capabilities file, a user that
// does not resolve), drops the bounding set to the file's, switches to
// the user and group keeping the file's capabilities as ambient ones,
// sets no_new_privs, forwards signals and kills the child term_timeout
// seconds after SIGTERM. Namespaces and seccomp are not modelled and
// refused.
// runFlock is flock(1) in the form procd.sh uses, `flock [-n|-s|-x|-u]
// FD`: it locks the open file description FD refers to, which the shell
// that started it shares, so the lock is the shell's until it closes FD
// or exits. An FD that is not open fails, as flock does.
func runFlock() int {
	how, args := unix.LOCK_EX, os.Args[1:]
	for len(args) > 1 {
		switch args[0] {
		case "-n":
			how |= unix.LOCK_NB
		case "-s":
			how = how&unix.LOCK_NB | unix.LOCK_SH
		case "-x":
			how = how&unix.LOCK_NB | unix.LOCK_EX
		case "-u":
			how = how&unix.LOCK_NB | unix.LOCK_UN
		default:
			fmt.Fprintf(os.Stderr, "flock: unknown option %s\n", args[0])
			return 1
		}
		args = args[1:]
	}
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: flock [-sxun] FD")
		return 1
	}
	fd, err := strconv.Atoi(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "flock: %s: not a file descriptor (only flock FD is modelled)\n", args[0])
		return 1
	}
	if err := unix.Flock(fd, how); err != nil {
		fmt.Fprintf(os.Stderr, "flock: %d: %v\n", fd, err)
		return 1
	}
	return 0
}

func runUjail() int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "jail: "+format+"\n", a...)
		return 1
	}
	if os.Getuid() != 0 {
		return fail("not root, aborting")
	}
	args := os.Args[1:]
	term := 5
	var user, group, capsFile string
	nnp := false
	for len(args) > 0 && args[0] != "--" {
		a := args[0]
		args = args[1:]
		next := func() string {
			if len(args) == 0 {
				return ""
			}
			v := args[0]
			args = args[1:]
			return v
		}
		switch a {
		case "-t":
			term, _ = strconv.Atoi(next())
		case "-n":
			next()
		case "-U":
			user = next()
		case "-G":
			group = next()
		case "-C":
			capsFile = next()
		case "-c":
			nnp = true
		default:
			return fail("model: option %s (namespaces, seccomp) is not modelled", a)
		}
	}
	if len(args) < 2 {
		return fail("no command")
	}
	argv := args[1:]
	if capsFile == "" {
		return fail("Not using namespaces, capabilities or seccomp !!!")
	}
	sets, err := parseCapsFile(capsFile)
	if err != nil {
		return fail("failed to read capabilities from file %s: %v", capsFile, err)
	}
	o := &owrt{root: "/"}
	cred := &syscall.Credential{}
	if user != "" {
		uid, gid, ok := o.lookupUser(user)
		if !ok {
			return fail("failed to get uid/gid for user %s: no such user", user)
		}
		cred.Uid, cred.Gid = uint32(uid), uint32(gid)
		cred.Groups = o.groupsOf(user, gid)
	}
	if group != "" {
		gid, ok := o.lookupGroup(group)
		if !ok {
			return fail("failed to get gid for group %s: no such group", group)
		}
		cred.Gid = uint32(gid)
	}

	// Bounding set and no_new_privs are per thread and inherited by the
	// child this thread forks.
	runtime.LockOSThread()
	if b := sets["bounding"]; b != capAll {
		for c := 0; c < 64; c++ {
			if _, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0); err != nil {
				break
			}
			if b&(1<<c) == 0 {
				if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
					return fail("prctl(PR_CAPBSET_DROP, %d): %v", c, err)
				}
			}
		}
	}
	if nnp {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fail("prctl(PR_SET_NO_NEW_PRIVS): %v", err)
		}
	}
	var ambient []uintptr
	if a := sets["ambient"]; a != capAll {
		for c := 0; c < 64; c++ {
			if a&(1<<c) != 0 {
				ambient = append(ambient, uintptr(c))
			}
		}
	}
	cmd := modelExec(argv)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	// ujail's build_envp: the jailed process gets only container=ujail
	// (and -e variables, which procd passes none of here).
	cmd.Env = []string{"container=ujail"}
	cmd.SysProcAttr = &syscall.SysProcAttr{AmbientCaps: ambient}
	if user != "" || group != "" {
		cmd.SysProcAttr.Credential = cred
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2)
	if err := cmd.Start(); err != nil {
		return fail("exec %s: %v", argv[0], err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case s := <-sigs:
			cmd.Process.Signal(s)
			if s == syscall.SIGTERM {
				time.AfterFunc(time.Duration(term)*time.Second, func() { cmd.Process.Kill() })
			}
		case err := <-done:
			if ee, ok := err.(*exec.ExitError); ok {
				return ee.ExitCode() & 0xff
			}
			if err != nil {
				return 1
			}
			return 0
		}
	}
}
