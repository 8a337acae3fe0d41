// Package atomictest checks, for tests, that a file is written the way
// package atomicfile writes it, by tracing the system calls of a test
// helper process with strace.
package atomictest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// RequireDurable runs this test binary's helper test (e.g.
// "TestHelperWrite", with env added to its environment) under strace and
// requires that it wrote path durably: a temporary file in path's
// directory created with O_EXCL, synced, renamed over path, and then the
// directory synced. It skips when strace is missing or cannot trace.
func RequireDurable(t *testing.T, helper string, env []string, path string) {
	t.Helper()
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Skip("needs strace to see the system calls")
	}
	out := filepath.Join(t.TempDir(), "trace")
	cmd := exec.Command(strace, "-f", "-qq", "-s", "512", "-o", out,
		"-e", "trace=open,openat,fsync,fdatasync,rename,renameat,renameat2",
		os.Args[0], "-test.run=^"+helper+"$")
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		if strings.Contains(string(b), "PTRACE") || strings.Contains(string(b), "ptrace") {
			t.Skipf("strace cannot trace here: %s", b)
		}
		if strings.Contains(string(b), "Exec format error") {
			t.Skip(ForeignSkip)
		}
		t.Fatalf("%s under strace: %v\n%s", helper, err, b)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := check(string(raw), path); err != nil {
		t.Errorf("%s: %v\ntrace:\n%s", path, err, relevant(string(raw), filepath.Dir(path)))
	}
}

// ForeignSkip is the reason a test that runs this test binary again
// gives when the kernel cannot execute it: a binary of another
// architecture run by qemu-user without a binfmt_misc registration (the
// cross lane on a fresh machine). The native lane runs it.
const ForeignSkip = "runs the test binary again, which this kernel cannot execute (another architecture under qemu-user without binfmt_misc); the native lane runs it"

var (
	openRE   = regexp.MustCompile(`open(?:at)?\((?:AT_FDCWD, )?"([^"]*)", ([A-Z_|]+)[^)]*\)\s+=\s+(\d+)`)
	fsyncRE  = regexp.MustCompile(`f(?:data)?sync\((\d+)\)\s+=\s+0`)
	renameRE = regexp.MustCompile(`rename(?:at2?)?\((?:AT_FDCWD, )?"([^"]*)", (?:AT_FDCWD, )?"([^"]*)"`)
)

// check walks the trace in order: the steps must come in this order for
// one temporary file of path's directory.
func check(trace, path string) error {
	dir := filepath.Dir(path)
	fds := map[string]string{} // fd → file, as last opened
	var tmp string
	step := 0 // 1 created, 2 synced, 3 renamed, 4 directory synced
	for _, line := range joinResumed(trace) {
		if m := openRE.FindStringSubmatch(line); m != nil {
			fds[m[3]] = m[1]
			if step == 0 && filepath.Dir(m[1]) == dir && m[1] != path && strings.Contains(m[2], "O_CREAT") {
				if !strings.Contains(m[2], "O_EXCL") {
					return fmt.Errorf("temporary file %s created without O_EXCL (%s)", m[1], m[2])
				}
				tmp, step = m[1], 1
			}
			continue
		}
		if m := fsyncRE.FindStringSubmatch(line); m != nil {
			switch f := fds[m[1]]; {
			case step == 1 && f == tmp:
				step = 2
			case step == 3 && f == dir:
				step = 4
			}
			continue
		}
		if m := renameRE.FindStringSubmatch(line); m != nil && step >= 1 && m[1] == tmp && m[2] == path {
			if step != 2 {
				return fmt.Errorf("renamed %s over it before syncing it", tmp)
			}
			step = 3
		}
	}
	switch step {
	case 0:
		return fmt.Errorf("no temporary file created in %s", dir)
	case 1, 2:
		return fmt.Errorf("temporary file %s not synced and renamed over it (step %d)", tmp, step)
	case 3:
		return fmt.Errorf("directory %s not synced after the rename", dir)
	}
	return nil
}

func relevant(trace, dir string) string {
	var b strings.Builder
	for _, line := range strings.Split(trace, "\n") {
		if strings.Contains(line, dir) || fsyncRE.MatchString(line) {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// joinResumed puts back together the calls strace split because another
// thread's call came in between ("<unfinished ...>", "<... resumed>").
func joinResumed(trace string) []string {
	var out []string
	open := map[string]int{} // pid → index in out of its unfinished call
	for _, line := range strings.Split(trace, "\n") {
		pid, rest, _ := strings.Cut(line, " ")
		if i, ok := open[pid]; ok && strings.Contains(rest, " resumed>") {
			_, tail, _ := strings.Cut(rest, " resumed>")
			out[i] += tail
			delete(open, pid)
			continue
		}
		if head, ok := strings.CutSuffix(line, " <unfinished ...>"); ok {
			open[pid] = len(out)
			line = head
		}
		out = append(out, line)
	}
	return out
}
