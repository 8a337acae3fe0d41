// Package captest runs a test function of the calling test binary again as
// an unprivileged user holding only the capabilities a test asks for
// (util-linux setpriv), the way gogoc runs on a router: to show that an
// operation needs a capability, and that its error names it.
package captest

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// UID and GID the helper process runs as: no account of this machine's.
const UID = "4242"

const envHelper = "GOGOC_CAPTEST_HELPER"

// InHelper reports whether this process is the re-run of test, started by
// Run: the test then does the operation and prints the result.
func InHelper(test string) bool { return os.Getenv(envHelper) == test }

// Run runs test (a top-level test name) of this binary as uid and gid
// 4242 with only caps ("+net_admin,+net_raw", "+net_raw", "" for none)
// in every set and no_new_privs, inside network namespace ns when ns is
// not empty, and returns what it printed. It skips the test when the
// process is not root or setpriv is missing.
func Run(t *testing.T, test, caps, ns string) string {
	t.Helper()
	args, ok := Command(t, caps, ns)
	if !ok {
		return ""
	}
	args = append(args, os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), envHelper+"="+test)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s under setpriv (%q): %v\n%s", test, caps, err, out)
	}
	return string(out)
}

// Command returns the argv prefix that runs a command as uid 4242 with
// only caps, in ns if not empty; false (the test skipped) when that cannot
// be done here.
func Command(t *testing.T, caps, ns string) ([]string, bool) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a helper as another user (setpriv)")
		return nil, false
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv (util-linux) not installed")
		return nil, false
	}
	var args []string
	if ns != "" {
		args = []string{"ip", "netns", "exec", ns}
	}
	args = append(args, setpriv, "--reuid", UID, "--regid", UID, "--clear-groups", "--no-new-privs")
	if caps == "" {
		return append(args, "--inh-caps", "-all", "--bounding-set", "-all"), true
	}
	if strings.Contains(caps, "-") {
		t.Fatalf("captest: caps %q: name the ones to keep, as +name", caps)
	}
	return append(args, "--inh-caps", caps, "--ambient-caps", caps, "--bounding-set", "-all,"+caps), true
}

// RunStatus is Run for a helper that may exit non-zero: it returns the
// output and the exit status instead of failing the test.
func RunStatus(t *testing.T, test, caps, ns string) (string, int) {
	t.Helper()
	args, ok := Command(t, caps, ns)
	if !ok {
		return "", 0
	}
	args = append(args, os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), envHelper+"="+test)
	out, err := cmd.Output()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	t.Fatalf("%s under setpriv (%q): %v", test, caps, err)
	return "", 0
}
