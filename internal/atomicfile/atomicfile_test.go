package atomicfile

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/jsklein/gogoc/internal/atomicfile/atomictest"
)

// TestWriteReplacesSymlink: a symlink planted at the final path (say by a
// user who can write the directory, pointing at a file only root may
// change) is replaced by the new file; its target is not touched.
func TestWriteReplacesSymlink(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "status.json")
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, []byte("new\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Errorf("the symlink's target now holds %q", b)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o640 {
		t.Errorf("%s is %v, want a regular file with mode 0640", path, fi.Mode())
	}
	if b, _ := os.ReadFile(path); string(b) != "new\n" {
		t.Errorf("%s holds %q", path, b)
	}
	onlyFiles(t, dir, "status.json", "victim")
}

// TestWriteModeIgnoresUmask: the caller's mode is the file's mode.
func TestWriteModeIgnoresUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "sub", "f")
	if err := Write(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v, %v; want 0644", fi.Mode(), err)
	}
}

// TestWriteFailureKeepsOld: a write that fails half-way leaves the old
// file as it was and no temporary file.
func TestWriteFailureKeepsOld(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "known")
	if err := Write(path, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("disk full")
	err := WriteFunc(path, 0o644, func(w io.Writer) error {
		_, _ = w.Write([]byte("half of the new"))
		return boom
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), path) {
		t.Fatalf("error %v, want the fill error naming %s", err, path)
	}
	if b, _ := os.ReadFile(path); string(b) != "old\n" {
		t.Errorf("after a failed write the file holds %q", b)
	}
	onlyFiles(t, dir, "known")
}

// TestWriteCrash kills a process in the middle of writing (SIGKILL after
// half the new contents): the file keeps its old contents, and the next
// write succeeds beside the temporary file the dead one left.
func TestWriteCrash(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "status.json")
	if err := Write(path, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperCrash$")
	cmd.Env = append(os.Environ(), "ATOMICFILE_CRASH="+path)
	err := cmd.Run()
	if errors.Is(err, syscall.ENOEXEC) {
		t.Skip(atomictest.ForeignSkip)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("helper: %v, want killed by SIGKILL", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "old\n" {
		t.Errorf("after a crash mid-write the file holds %q", b)
	}
	if err := Write(path, []byte("next\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "next\n" {
		t.Errorf("after the next write the file holds %q", b)
	}
}

// TestHelperCrash is the process TestWriteCrash kills; it does nothing in
// a normal run.
func TestHelperCrash(t *testing.T) {
	path := os.Getenv("ATOMICFILE_CRASH")
	if path == "" {
		return
	}
	_ = WriteFunc(path, 0o644, func(w io.Writer) error {
		_, _ = w.Write([]byte("half of the n"))
		return syscall.Kill(os.Getpid(), syscall.SIGKILL)
	})
	select {} // SIGKILL cannot be caught; wait for it
}

// onlyFiles fails unless dir holds exactly the names given.
func onlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, " ") != strings.Join(names, " ") {
		t.Errorf("%s holds %q, want %q", dir, got, names)
	}
}

// TestWriteDurable: the system calls are those of a durable replacement
// (strace of a helper process).
func TestWriteDurable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "tsp-last-server.txt")
	atomictest.RequireDurable(t, "TestHelperWrite", []string{"ATOMICFILE_WRITE=" + path}, path)
}

// TestHelperWrite writes the file TestWriteDurable traces.
func TestHelperWrite(t *testing.T) {
	if path := os.Getenv("ATOMICFILE_WRITE"); path != "" {
		if err := Write(path, []byte("broker.example.net\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
