// Package captest runs a test function of the calling test binary again,
// or another program, as an unprivileged user holding only the
// capabilities a test asks for, the way gogoc runs on a router: to show
// that an operation needs a capability and that its error names it, and
// that the daemon works with those two alone.
//
// The privileges are dropped by the test binary itself (this package's
// init, before any test runs, in a process started by Command) and not by
// util-linux setpriv, which the VM lane's guest does not have: bounding
// set cut to the kept capabilities, no supplementary groups, uid and gid
// 4242, the kept ones permitted, effective, inheritable and ambient (so
// they survive the exec), no_new_privs; then the program is executed in
// the same process, so its pid is the one the caller started.
package captest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// UID and GID the program runs as: no account of this machine's.
const UID = "4242"

const (
	envHelper = "GOGOC_CAPTEST_HELPER"
	envDrop   = "GOGOC_CAPTEST_DROP"
)

func init() {
	keep, ok := os.LookupEnv(envDrop)
	if !ok {
		return
	}
	_ = os.Unsetenv(envDrop)
	err := dropAndExec(keep, os.Args[1:])
	fmt.Fprintf(os.Stderr, "captest: %v\n", err)
	os.Exit(127)
}

// InHelper reports whether this process is the re-run of test, started by
// Run: the test then does the operation and prints the result.
func InHelper(test string) bool { return os.Getenv(envHelper) == test }

// Run runs test (a top-level test name) of this binary as uid and gid
// 4242 with only caps ("+net_admin,+net_raw", "+net_raw", "" for none),
// inside network namespace ns when ns is not empty, and returns what it
// printed. It skips the test when the process is not root.
func Run(t *testing.T, test, caps, ns string) string {
	t.Helper()
	out, code := RunStatus(t, test, caps, ns)
	if code != 0 {
		t.Fatalf("%s as uid %s with %q: exit status %d\n%s", test, UID, caps, code, out)
	}
	return out
}

// RunStatus is Run for a helper that may exit non-zero: it returns the
// standard output and the exit status instead of failing the test.
func RunStatus(t *testing.T, test, caps, ns string) (string, int) {
	t.Helper()
	cmd := Command(t, caps, ns, os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(cmd.Env, envHelper+"="+test)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out) + stderr.String(), ee.ExitCode()
	case errors.Is(err, syscall.ENOEXEC):
		// Another architecture under qemu-user without binfmt_misc (the
		// cross lane on a fresh machine); the native lane runs it.
		t.Skip("runs the test binary again, which this kernel cannot execute (qemu-user without binfmt_misc)")
	}
	t.Fatalf("%s as uid %s with %q: %v", test, UID, caps, err)
	return "", 0
}

// Reach lets UID search its way to dir: the directories between the
// system's temporary directory and dir (t.TempDir makes them 0700, and
// they are the test's own) get search permission for others. The
// temporary directory and what is above it are left as they are; when
// other users cannot search them the test is skipped, with the reason.
func Reach(t *testing.T, dir string) {
	t.Helper()
	top := filepath.Clean(os.TempDir())
	p := filepath.Clean(dir)
	for ; p != top && p != "/" && p != "."; p = filepath.Dir(p) {
		if !strings.HasPrefix(p, top+"/") {
			t.Skipf("%s is not under %s: the test does not change its parents' modes", dir, top)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, fi.Mode().Perm()|0o001); err != nil {
			t.Fatal(err)
		}
	}
	for ; p != "/" && p != "."; p = filepath.Dir(p) {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o001 == 0 {
			t.Skipf("%s is not searchable by other users (uid %s must reach %s)", p, UID, dir)
		}
	}
}

// Command returns a command that runs argv as uid and gid 4242 with only
// caps, in network namespace ns (ip netns exec) when ns is not empty. It
// skips the test when the process is not root.
func Command(t *testing.T, caps, ns string, argv ...string) *exec.Cmd {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a program as another user with chosen capabilities")
	}
	if _, err := parseCaps(caps); err != nil {
		t.Fatalf("captest: %v", err)
	}
	args := append([]string{os.Args[0]}, argv...)
	if ns != "" {
		args = append([]string{"ip", "netns", "exec", ns}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), envDrop+"="+caps)
	return cmd
}

// parseCaps reads "+net_admin,+net_raw" (setpriv's spelling) as capability
// numbers; "" is none.
func parseCaps(s string) ([]uintptr, error) {
	var out []uintptr
	for _, f := range strings.Split(s, ",") {
		switch f {
		case "":
		case "+net_admin":
			out = append(out, unix.CAP_NET_ADMIN)
		case "+net_raw":
			out = append(out, unix.CAP_NET_RAW)
		default:
			return nil, fmt.Errorf("capability %q: want +net_admin or +net_raw", f)
		}
	}
	return out, nil
}

// dropAndExec drops this thread's privileges to uid/gid 4242 with keep,
// then executes argv in its place. Credentials and capabilities are per
// thread in the kernel, and only the executing thread's count: the thread
// is locked, changed with raw system calls and makes the execve itself.
func dropAndExec(keep string, argv []string) error {
	caps, err := parseCaps(keep)
	if err != nil {
		return err
	}
	if len(argv) == 0 {
		return errors.New("nothing to run")
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return err
	}
	// Opened while still root: uid 4242 may not search the directories
	// on the way (go test's build directory is root's, 0700). The exec
	// through /proc/self/fd needs only the file's own execute bits.
	fd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	id, _ := strconv.Atoi(UID)
	runtime.LockOSThread()
	var set [2]uint32
	for _, c := range caps {
		set[c/32] |= 1 << (c % 32)
	}
	for c := uintptr(0); c < 64; c++ {
		if set[c/32]&(1<<(c%32)) != 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, c, 0, 0, 0); err != nil {
			if errors.Is(err, unix.EINVAL) {
				break // past the kernel's last capability
			}
			return fmt.Errorf("drop %d from the bounding set: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("keepcaps: %w", err)
	}
	if err := setIDs(id); err != nil {
		return err
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	for i := range data {
		data[i] = unix.CapUserData{Effective: set[i], Permitted: set[i], Inheritable: set[i]}
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	for _, c := range caps {
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, c, 0, 0); err != nil {
			return fmt.Errorf("ambient capability %d: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	return syscall.Exec("/proc/self/fd/"+strconv.Itoa(fd), argv, os.Environ())
}

// setIDs clears the supplementary groups and sets the real, effective and
// saved gid and uid of this thread only (no libc to spread them to the
// other threads; they end at the execve).
func setIDs(id int) error {
	if _, _, e := unix.RawSyscall(sysSetgroups, 0, 0, 0); e != 0 {
		return fmt.Errorf("setgroups: %w", e)
	}
	if _, _, e := unix.RawSyscall(sysSetresgid, uintptr(id), uintptr(id), uintptr(id)); e != 0 {
		return fmt.Errorf("setresgid: %w", e)
	}
	if _, _, e := unix.RawSyscall(sysSetresuid, uintptr(id), uintptr(id), uintptr(id)); e != 0 {
		return fmt.Errorf("setresuid: %w", e)
	}
	return nil
}
